"""Observe latency of a vector observation on a node holding many learned vectors (kato-3.10.md
decision 17: the 3 nearest learned vectors of the same dimension join the event).

A throw-away database gets N stored vectors of one dimension on one node (inserted directly,
as learns would store them), then one session observes fresh random vectors through the Flask
app in this process (the same service and SQL path as over HTTP, without the HTTP server).
Reported: the first observe (this worker loads the node's matrix), then p50/p90/max of the
warm observes, and the search alone (VectorSet.nearest) for comparison. The STM is cleared
every 10 observes (untimed), as a client that learns or clears now and then would.

    python -m bench.vector_bench                       # 100,000 × 128 on SQLite
    python -m bench.vector_bench --database-url postgresql+psycopg://postgres@127.0.0.1:5432/test
"""
from __future__ import annotations

import argparse
import hashlib
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from sqlalchemy import insert, text  # noqa: E402

from kato_web import create_app  # noqa: E402
from kato_web.config import Config  # noqa: E402
from kato_web.engine.vectors import VectorSet  # noqa: E402
from kato_web.services.sessions import kb_id_for  # noqa: E402
from kato_web.store.migrate import upgrade  # noqa: E402
from kato_web.store.models import Vector  # noqa: E402
from tests.support import throwaway_database  # noqa: E402

NODE = "vector-bench"


def _pct(values: list[float], q: float) -> float:
    values = sorted(values)
    return values[min(len(values) - 1, int(round(q * (len(values) - 1))))]


def fill(engine, kb_id: str, rng, count: int, dim: int) -> None:
    rows = []
    for start in range(0, count, 5000):
        block = rng.standard_normal((min(5000, count - start), dim))
        # Names by a hash of the bytes: the real str()-based name costs ~1.5 ms a vector to make,
        # and the search never looks at how a name was made.
        rows = [{"kb_id": kb_id, "name": "VCTR|" + hashlib.sha1(v.tobytes()).hexdigest(), "dim": dim,
                 "components": v.tobytes(), "created_seq": 1} for v in block]
        with engine.begin() as conn:
            conn.execute(insert(Vector.__table__), rows)
    with engine.begin() as conn:
        conn.execute(text("UPDATE nodes SET change_seq = 1 WHERE kb_id = :k"), {"k": kb_id})


def run(database_url: str, count: int, dim: int, observes: int, seed: int) -> dict:
    rng = np.random.default_rng(seed)
    upgrade(database_url)
    app = create_app(Config(database_url=database_url, testing=True, secret_key="bench", warm_up=False))
    kato = app.extensions["kato"]
    client = app.test_client()
    sid = client.post("/sessions", json={"node_id": NODE}).get_json()["session_id"]
    started = time.perf_counter()
    fill(kato.db.engine, kb_id_for(NODE, kato.config.service_name), rng, count, dim)
    fill_s = time.perf_counter() - started

    cpu = []  # this thread's CPU time per observe: what the machine's other load cannot inflate

    def observe(vector) -> float:
        t0, c0 = time.perf_counter(), time.thread_time()
        resp = client.post(f"/sessions/{sid}/observe", json={"vectors": [vector]})
        elapsed = (time.perf_counter() - t0) * 1000.0
        cpu.append((time.thread_time() - c0) * 1000.0)
        assert resp.status_code == 200, resp.get_json()
        return elapsed

    cold = observe(rng.standard_normal(dim).tolist())
    event = client.get(f"/sessions/{sid}/stm").get_json()["stm"][-1]
    assert len(event) == 4, event  # its own name and 3 neighbours
    warm = []
    for i in range(observes):
        if i % 10 == 0:
            client.post(f"/sessions/{sid}/clear-stm")
        warm.append(observe(rng.standard_normal(dim).tolist()))

    strings = []  # the same session observing one string: what a vector adds to an observe
    for i in range(observes):
        if i % 10 == 0:
            client.post(f"/sessions/{sid}/clear-stm")
        t0 = time.perf_counter()
        assert client.post(f"/sessions/{sid}/observe", json={"strings": [f"s{i}"]}).status_code == 200
        strings.append((time.perf_counter() - t0) * 1000.0)

    vectors = VectorSet()
    for k, v in enumerate(rng.standard_normal((count, dim))):
        vectors.add(f"v{k}", v)
    search, search_cpu = [], []
    for _ in range(observes):
        query = rng.standard_normal(dim)
        t0, c0 = time.perf_counter(), time.thread_time()
        vectors.nearest(query)
        search.append((time.perf_counter() - t0) * 1000.0)
        search_cpu.append((time.thread_time() - c0) * 1000.0)
    kato.db.dispose()
    return {"vectors": count, "dim": dim, "observes": observes, "fill_s": fill_s, "cold_ms": cold,
            "p50_ms": statistics.median(warm), "cpu_p50_ms": statistics.median(cpu[1:]),
            "search_cpu_p50_ms": statistics.median(search_cpu), "load": os.getloadavg()[0], "p90_ms": _pct(warm, 0.9), "max_ms": max(warm),
            "strings_p50_ms": statistics.median(strings),
            "search_p50_ms": statistics.median(search), "search_p90_ms": _pct(search, 0.9),
            "backend": "postgresql" if database_url.startswith("postgresql") else "sqlite"}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--vectors", type=int, default=100_000)
    parser.add_argument("--dim", type=int, default=128)
    parser.add_argument("--observes", type=int, default=200)
    parser.add_argument("--seed", type=int, default=17)
    parser.add_argument("--database-url", default=None,
                        help="a PostgreSQL URL to make a throw-away database next to (default: SQLite)")
    args = parser.parse_args()
    if args.database_url:
        os.environ["KATO_TEST_DATABASE_URL"] = args.database_url
    else:
        os.environ.pop("KATO_TEST_DATABASE_URL", None)
    with tempfile.TemporaryDirectory() as tmp, throwaway_database(Path(tmp)) as url:
        result = run(url, args.vectors, args.dim, args.observes, args.seed)
    print(f"{result['backend']}: {result['vectors']:,} stored vectors of dimension {result['dim']}, "
          f"{result['observes']} observes (filled in {result['fill_s']:.1f} s)")
    print(f"  first observe (loads the matrix): {result['cold_ms']:.1f} ms")
    print(f"  observe p50 {result['p50_ms']:.2f} ms, p90 {result['p90_ms']:.2f} ms, max {result['max_ms']:.2f} ms"
          f" (CPU p50 {result['cpu_p50_ms']:.2f} ms)")
    print(f"  a string observe on the same session p50 {result['strings_p50_ms']:.2f} ms")
    print(f"  search alone p50 {result['search_p50_ms']:.2f} ms, p90 {result['search_p90_ms']:.2f} ms"
          f" (CPU p50 {result['search_cpu_p50_ms']:.2f} ms); load average {result['load']:.1f}")


if __name__ == "__main__":
    main()
