"""What every kato-web load scenario shares: a user with its own KATO session and connection.

Each simulated user opens one KATO session on start (and deletes it on stop) and
keeps one HTTP connection alive for all its requests, as KATO's clients do. Users
send back to back (no think time): the figures are the service's capacity for that
many concurrent clients.

The default client is Locust's FastHttpUser (geventhttpclient, keep-alive): server
and Locust share the machine's two cores, and it needs about a fifth of the CPU per
request of HttpUser (python-requests), so more of the machine serves requests.
KATO_LOCUST_CLIENT=requests switches to HttpUser (also keep-alive, via a
requests.Session) to compare.
"""
from __future__ import annotations

import itertools
import os
import random
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from locust import HttpUser, constant, constant_throughput, events  # noqa: E402
from locust.contrib.fasthttp import FastHttpUser  # noqa: E402

from bench.load_node import Vocabulary  # noqa: E402
from bench.pacing import steady_throughput  # noqa: E402

# The node the loader filled (make load: bench/run_load.py passes it on).
LOAD_NODE = os.environ.get("KATO_LOAD_NODE", "load")
SEED = int(os.environ.get("KATO_LOAD_SEED", "1"))
VOCABULARY = Vocabulary(int(os.environ.get("KATO_LOAD_VOCABULARY", "2000")))
_user_ids = itertools.count()

_Base = HttpUser if os.environ.get("KATO_LOCUST_CLIENT") == "requests" else FastHttpUser

# Like KATO's Python clients (requests sends it by default): big predictions come gzipped.
HEADERS = {"Accept-Encoding": "gzip, deflate"}


# Offered load (bench/run_load.py --rate): each user runs this many tasks a second, so the users
# together offer a fixed rate instead of sending back to back. "steady" (the default) gives
# each user a fixed clock (bench/pacing.py: why); "locust" is Locust's own constant_throughput,
# whose users fall into step after a stall and then send in bursts.
_RATE = float(os.environ.get("KATO_LOAD_USER_RATE", "0"))
_PACING = os.environ.get("KATO_LOAD_PACING", "steady")

if _RATE > 0:
    _WAIT = steady_throughput(_RATE, SEED) if _PACING == "steady" else constant_throughput(_RATE)
else:
    _WAIT = constant(0)

# KATO_LOAD_TRACE=<file>: every request's start time (seconds, one per line), to see how
# evenly the users spread their requests.
_TRACE = os.environ.get("KATO_LOAD_TRACE")
_starts: list[float] = []
if _TRACE:
    @events.request.add_listener
    def _record(start_time=None, **_kwargs):
        if start_time is not None:
            _starts.append(start_time)

    @events.quitting.add_listener
    def _write(**_kwargs):
        Path(_TRACE).write_text("\n".join(f"{t:.6f}" for t in _starts))


class KatoUser(_Base):
    """A client with its own KATO session on `node_id`, and a seeded symbol source."""

    abstract = True
    wait_time = _WAIT
    node_id = LOAD_NODE
    session_config: dict | None = None

    def on_start(self):
        self.user_id = next(_user_ids)
        self.rng = random.Random(SEED * 1_000_003 + self.user_id)
        self.stm_events = 0
        body = {"node_id": self.node_id}
        if self.session_config:
            body["config"] = self.session_config
        with self.client.post("/sessions", json=body, name="/sessions", catch_response=True) as resp:
            if resp.status_code != 200:
                resp.failure(f"create session: {resp.status_code}")
                raise RuntimeError("could not create a session")
            self.session_id = resp.json()["session_id"]
        self.base = f"/sessions/{self.session_id}"

    def on_stop(self):
        if getattr(self, "session_id", None):
            self.client.delete(self.base, name="/sessions/[id]")

    def event(self) -> list[str]:
        return VOCABULARY.event(self.rng, self.rng.randint(1, 3))

    # One method per KATO call, each named by its route so Locust groups them.
    def observe(self):
        self.client.post(f"{self.base}/observe", json={"strings": self.event()}, headers=HEADERS,
                         name="/sessions/[id]/observe")
        self.stm_events += 1

    def predictions(self):
        self.client.get(f"{self.base}/predictions", headers=HEADERS, name="/sessions/[id]/predictions")

    def learn(self):
        self.client.post(f"{self.base}/learn", headers=HEADERS, name="/sessions/[id]/learn")
        self.stm_events = 0

    def stm(self):
        self.client.get(f"{self.base}/stm", headers=HEADERS, name="/sessions/[id]/stm")

    def clear_stm(self):
        self.client.post(f"{self.base}/clear-stm", headers=HEADERS, name="/sessions/[id]/clear-stm")
        self.stm_events = 0
