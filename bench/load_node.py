"""Fill a node with N synthetic patterns, reproducibly, for benchmarks and load tests.

Patterns: 3–8 events of 1–3 distinct symbols each, symbols drawn from a Zipf-distributed
vocabulary (`s0000` is the most frequent), all from one seeded generator, so the same
(n, seed, vocabulary, zipf) always gives the same patterns. Duplicates are skipped:
the node ends with exactly n more unique patterns.

Two paths, same result (tests/integration/test_load_node.py compares them):
- direct (a database URL or a service Context): each pattern goes through the STM
  engine (observe each event, then learn) and `services.operations.store_learn`,
  as a real learn does, but thousands per transaction. Fast.
- HTTP (an http:// URL): one observe-sequence with learn_at_end per pattern.

    python -m bench.load_node --database-url postgresql+psycopg://…/kato_load --node load -n 10000
    python -m bench.load_node --url http://127.0.0.1:8000 --node load -n 1000
"""
from __future__ import annotations

import argparse
import bisect
import itertools
import random
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from kato_web.engine import stm as stm_engine  # noqa: E402
from kato_web.engine.observation import Observation  # noqa: E402
from kato_web.engine.pattern import pattern_hash  # noqa: E402

DEFAULT_VOCABULARY = 2000
DEFAULT_ZIPF = 1.1
DEFAULT_BATCH = 2000


@dataclass(frozen=True)
class Vocabulary:
    """Symbols `s0000…` with Zipf weights 1/rank^s, sampled by cumulative weight."""

    size: int = DEFAULT_VOCABULARY
    zipf: float = DEFAULT_ZIPF

    def __post_init__(self):
        weights = [1.0 / (rank ** self.zipf) for rank in range(1, self.size + 1)]
        object.__setattr__(self, "symbols", [f"s{i:04d}" for i in range(self.size)])
        object.__setattr__(self, "cumulative", list(itertools.accumulate(weights)))

    def draw(self, rng: random.Random) -> str:
        return self.symbols[bisect.bisect_left(self.cumulative, rng.random() * self.cumulative[-1])]

    def event(self, rng: random.Random, k: int) -> list[str]:
        """Return k distinct symbols in draw order (the engine sorts them, as for a client)."""
        chosen: list[str] = []
        while len(chosen) < k:
            symbol = self.draw(rng)
            if symbol not in chosen:
                chosen.append(symbol)
        return chosen


def synthetic_sequences(n: int, seed: int, vocabulary: Vocabulary | None = None) -> Iterator[list[list[str]]]:
    """Yield n distinct event sequences (as a client would observe them) for `seed`."""
    vocabulary = vocabulary or Vocabulary()
    rng = random.Random(seed)
    seen: set[str] = set()
    while len(seen) < n:
        events = [vocabulary.event(rng, rng.randint(1, 3)) for _ in range(rng.randint(3, 8))]
        key = pattern_hash([sorted(e) for e in events])
        if key in seen:
            continue
        seen.add(key)
        yield events


def learn_requests(sequences, stm_config: stm_engine.StmConfig):
    """Turn observed sequences into the LearnRequests a session's manual learn would make."""
    for events in sequences:
        state = stm_engine.SessionState()
        for strings in events:
            state = stm_engine.observe(state, Observation(strings=list(strings)), stm_config).state
        _state, request = stm_engine.learn(state)
        if request is not None:
            yield request


def _context(database_url: str):
    from kato_web.config import Config
    from kato_web.services.context import Context
    from kato_web.store.db import Database

    config = Config.from_env()
    config.database_url = database_url
    return Context(config=config, db=Database(database_url, 2, 2))


def load_direct(ctx, node_id: str, n: int, seed: int, vocabulary: Vocabulary | None = None,
                batch: int = DEFAULT_BATCH) -> dict:
    """Learn n synthetic patterns into `node_id` through store_learn, `batch` per transaction."""
    from kato_web.services.operations import _stm_config, store_learn
    from kato_web.services.session_config import effective_config
    from kato_web.services.sessions import kb_id_for, server_defaults
    from kato_web.store import repositories as repo

    kb_id = kb_id_for(node_id, ctx.config.service_name)
    with ctx.db.transaction() as conn:
        repo.ensure_node(conn, kb_id, ctx.clock())
        config = effective_config({}, server_defaults(ctx, conn))
    requests = learn_requests(synthetic_sequences(n, seed, vocabulary), _stm_config(config))
    learned = 0
    while True:
        chunk = list(itertools.islice(requests, batch))
        if not chunk:
            break
        with ctx.db.transaction() as conn:
            for request in chunk:
                store_learn(ctx, conn, kb_id, request, config["persistence"])
        learned += len(chunk)
    return {"node_id": node_id, "kb_id": kb_id, "patterns_learned": learned}


def load_http(base_url: str, node_id: str, n: int, seed: int, vocabulary: Vocabulary | None = None) -> dict:
    """Learn n synthetic patterns into `node_id` through the HTTP API (observe-sequence)."""
    import requests

    http = requests.Session()
    session = http.post(f"{base_url}/sessions", json={"node_id": node_id}, timeout=30)
    session.raise_for_status()
    sid = session.json()["session_id"]
    learned = 0
    for events in synthetic_sequences(n, seed, vocabulary):
        resp = http.post(f"{base_url}/sessions/{sid}/observe-sequence", timeout=60, json={
            "observations": [{"strings": e} for e in events], "learn_at_end": True})
        resp.raise_for_status()
        learned += 1
    http.delete(f"{base_url}/sessions/{sid}", timeout=30)
    return {"node_id": node_id, "patterns_learned": learned}


def load(ctx_or_url, node_id: str, n: int, seed: int = 0, vocabulary: Vocabulary | None = None,
         batch: int = DEFAULT_BATCH) -> dict:
    """Learn n synthetic patterns into `node_id`: directly (Context or database URL) or over HTTP."""
    if isinstance(ctx_or_url, str) and ctx_or_url.startswith(("http://", "https://")):
        return load_http(ctx_or_url.rstrip("/"), node_id, n, seed, vocabulary)
    if isinstance(ctx_or_url, str):
        ctx = _context(ctx_or_url)
        try:
            return load_direct(ctx, node_id, n, seed, vocabulary, batch)
        finally:
            ctx.db.dispose()
    return load_direct(ctx_or_url, node_id, n, seed, vocabulary, batch)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    target = parser.add_mutually_exclusive_group(required=True)
    target.add_argument("--database-url", help="load directly into this database (fast)")
    target.add_argument("--url", help="load through a running server's HTTP API")
    parser.add_argument("--node", default="load", help="node_id to fill (default: load)")
    parser.add_argument("-n", type=int, default=10_000, help="unique patterns to add (default 10000)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--vocabulary", type=int, default=DEFAULT_VOCABULARY)
    parser.add_argument("--zipf", type=float, default=DEFAULT_ZIPF)
    parser.add_argument("--batch", type=int, default=DEFAULT_BATCH, help="learns per transaction")
    parser.add_argument("--migrate", action="store_true", help="upgrade the database schema first")
    args = parser.parse_args(argv)
    vocabulary = Vocabulary(args.vocabulary, args.zipf)
    started = time.perf_counter()
    if args.database_url:
        if args.migrate:
            from kato_web.store.migrate import upgrade

            upgrade(args.database_url)
        result = load(args.database_url, args.node, args.n, args.seed, vocabulary, args.batch)
    else:
        result = load(args.url, args.node, args.n, args.seed, vocabulary)
    elapsed = time.perf_counter() - started
    print(f"learned {result['patterns_learned']} patterns into node {args.node!r} in {elapsed:.1f} s "
          f"({result['patterns_learned'] / max(elapsed, 1e-9):.0f}/s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
