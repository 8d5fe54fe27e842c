"""KATO_PRELOAD_NODES: the workers share the master's copy of a node's index (issue 16, memory).

gunicorn's master loads the named nodes before it forks; each worker then serves predictions
from pages it shares with the master (copy-on-write) instead of building a private copy. Checked
on a real gunicorn with two workers, against the same server without the setting:

- the log says what was preloaded;
- answers are byte-identical with and without preloading, and a learn made after the fork is
  seen by every worker (each refreshes its inherited copy from the database);
- the memory each worker holds privately after serving the node is smaller by most of the
  index's size (read from /proc/<pid>/smaps_rollup; the index's bytes come from loading the
  same node in this process).
"""
from __future__ import annotations

import json
import re
import sys
import time
from pathlib import Path

import pytest
import requests

from kato_web.config import Config
from kato_web.services import knowledge
from kato_web.services.context import Context
from kato_web.store.db import Database
from tests.support import Gunicorn

pytestmark = [pytest.mark.e2e, pytest.mark.skipif(sys.platform != "linux", reason="reads /proc")]

NODE = "preload-shared"
KB_ID = "preload_shared_kato"
PATTERNS = 150_000


@pytest.fixture(scope="module")
def node_db(tmp_path_factory):
    """A database of its own holding NODE with PATTERNS synthetic patterns."""
    from bench.bulk_load import bulk_load
    from kato_web.store.migrate import upgrade
    from tests.support import throwaway_database

    with throwaway_database(tmp_path_factory.mktemp("preload-db")) as url:
        upgrade(url)
        bulk_load(url, NODE, PATTERNS, seed=7)
        yield url


def _private_kb(pid: int) -> int:
    figures = {}
    for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines()[1:]:
        key, value = line.split(":", 1)
        figures[key] = int(value.split()[0])
    return figures["Private_Clean"] + figures["Private_Dirty"]


def _workers(server: Gunicorn) -> list[int]:
    pid = server.proc.pid
    return sorted(int(x) for x in Path(f"/proc/{pid}/task/{pid}/children").read_text().split())


def _from_every_worker(server: Gunicorn, sid: str, workers: int = 2) -> dict[int, bytes]:
    """GET the session's predictions until each worker has answered once; body by worker pid."""
    for _ in range(300):  # gunicorn forks its workers one after the other
        if len(_workers(server)) >= workers:
            break
        time.sleep(0.1)
    pids = set(_workers(server))
    assert len(pids) == workers, pids
    bodies: dict[int, bytes] = {}
    for _ in range(200):
        resp = requests.get(f"{server.url}/sessions/{sid}/predictions", headers={"Connection": "close"},
                            timeout=120)
        assert resp.status_code == 200, resp.text
        bodies[int(resp.headers["X-Worker-PID"])] = resp.content
        if pids <= set(bodies):
            return bodies
    raise AssertionError(f"workers {sorted(pids - set(bodies))} never answered")


def _session(url: str, events) -> str:
    sid = requests.post(url + "/sessions", json={"node_id": NODE}).json()["session_id"]
    for event in events:
        assert requests.post(f"{url}/sessions/{sid}/observe", json={"strings": event}).status_code == 200
    return sid


def _serve(node_db, tmp_path, preload: bool):
    env = {"KATO_PRELOAD_NODES": NODE} if preload else {}
    # KATO_THREADS=1: one request at a time per worker, so both workers take turns.
    return Gunicorn(node_db, workers=2, threads=1, env={**env, "KATO_LOG_LEVEL": "info"},
                    output=tmp_path / ("preload" if preload else "plain")).wait_ready(timeout=120)


def test_preloaded_node_is_shared_by_the_workers_and_stays_current(node_db, tmp_path):
    # The index's own size, from loading the node here the way a worker does.
    ctx = Context(config=Config(database_url=node_db), db=Database(node_db, 1, 1))
    try:
        index_kb = knowledge.node_knowledge(ctx, KB_ID).index.nbytes() // 1024
    finally:
        ctx.db.dispose()
    assert index_kb > 20_000  # big enough to stand out from the workers' own heaps

    private, answers = {}, {}
    for preload in (False, True):
        server = _serve(node_db, tmp_path, preload)
        try:
            sid = _session(server.url, [["s0001"], ["s0002"]])
            bodies = _from_every_worker(server, sid)
            assert len(set(bodies.values())) == 1  # every worker gives the same bytes
            answers[preload] = next(iter(bodies.values()))
            private[preload] = [_private_kb(pid) for pid in _workers(server)]

            if preload:
                log = (tmp_path / "preload" / "stderr.log").read_text()
                assert re.search(rf"preloaded {KB_ID}: {PATTERNS:,} patterns", log), log[-2000:]
                # A learn after the fork: every worker's inherited copy picks it up.
                learner = _session(server.url, [["fresh-a"], ["fresh-b"]])
                learned = requests.post(f"{server.url}/sessions/{learner}/learn").json()["pattern_name"].removeprefix("PTRN|")
                probe = _session(server.url, [["fresh-a"], ["fresh-b"]])
                after = _from_every_worker(server, probe)
                for body in after.values():
                    assert learned.encode() in body
        finally:
            server.stop()
    # Preloading changes no answer (all but the session's own id).
    plain, preloaded = (json.loads(answers[k]) for k in (False, True))
    assert plain.pop("session_id") != preloaded.pop("session_id")
    assert plain == preloaded and plain["predictions"]
    # Without preloading each worker holds the index privately; with it, the pages stay shared.
    for plain, shared in zip(sorted(private[False]), sorted(private[True])):
        assert plain - shared > 0.6 * index_kb, (private, index_kb)
    print(f"index {index_kb} kB; private kB per worker: plain {private[False]}, preloaded {private[True]}")
