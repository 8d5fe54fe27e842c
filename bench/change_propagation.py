"""How does a worker learn that a node changed? Today's per-request check against LISTEN/NOTIFY.

Today every session request that may predict reads the node's (generation, change_seq) inside the
statement it makes anyway (two primary-key subqueries in the session's UPDATE … RETURNING), and
refreshes its copy only when they moved. The alternative: every learn sends a PostgreSQL NOTIFY
and every worker keeps a LISTEN connection that marks its copies stale. This prints, on one
PostgreSQL (medians and p95 in microseconds, wall clock, one client):

  session read                         the statement every session request makes, without the version
  session read + node version          the same statement with today's two subqueries (the check)
  session read, then version apart     what the check would cost as a statement of its own
  learn                                one learn transaction, as the service stores it
  learn + NOTIFY                       the same with pg_notify in the transaction
  NOTIFY delivery                      COMMIT sent → a LISTEN connection holds the notification:
                                       the window in which a LISTEN-only worker would answer stale

    python -m bench.change_propagation [--server-url postgresql+psycopg://postgres@127.0.0.1:5432/postgres] [-n 2000]

It makes a database of its own and drops it afterwards.
"""
from __future__ import annotations

import argparse
import os
import statistics
import sys
import threading
import time
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import psycopg  # noqa: E402
from sqlalchemy import create_engine, text  # noqa: E402
from sqlalchemy.engine import make_url  # noqa: E402

from kato_web.store import repositories as repo  # noqa: E402
from kato_web.store.db import Database  # noqa: E402
from kato_web.store.migrate import upgrade  # noqa: E402

CHANNEL = "kato_node_changed"


def _figures(samples: list[float]) -> str:
    us = sorted(s * 1e6 for s in samples)
    return f"median {statistics.median(us):8.1f}   p95 {us[int(0.95 * (len(us) - 1))]:8.1f}"


def _backend_cpu(pid: int) -> float:
    """CPU seconds the PostgreSQL backend `pid` has used (the server runs on this machine)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


class Variant:
    def __init__(self, name: str, step):
        self.name, self.step, self.wall, self.server_cpu, self.client_cpu = name, step, [], 0.0, 0.0


def _interleaved(variants: list[Variant], n: int, backend: int | None, block: int = 50) -> None:
    """Run the variants in alternating blocks, so a shared machine's noise falls on all alike."""
    done = 0
    while done < n:
        for variant in variants:
            cpu0, thread0 = _backend_cpu(backend) if backend else 0.0, time.thread_time()
            for i in range(done, done + block):
                started = time.perf_counter()
                variant.step(i)
                variant.wall.append(time.perf_counter() - started)
            variant.client_cpu += time.thread_time() - thread0
            if backend:
                variant.server_cpu += _backend_cpu(backend) - cpu0
        done += block


def _learn(conn, kb_id: str, i: int) -> dict:
    return repo.learn_pattern(conn, kb_id, f"{i:040x}", [[f"a{i}"], ["b"]], 2, {f"a{i}": 1, "b": 1},
                              emotives_window_fn=lambda old: old, metadata_merge_fn=lambda old, _new: old,
                              now=time.time())


def run(url: str, n: int) -> None:
    db = Database(url, pool_size=1, max_overflow=0)  # one backend, whose CPU is read
    kb_id, sid, now = "bench_kato", "session-bench", time.time()
    with db.transaction() as conn:
        repo.ensure_node(conn, kb_id, now)
        repo.insert_session(conn, {"session_id": sid, "node_id": "bench", "kb_id": kb_id, "created_at": now,
                                   "expires_at": now + 3600, "ttl_seconds": 3600, "metadata": {}, "config": {},
                                   "state": {}, "prediction_input": None, "predictions": None,
                                   "access_count": 0})

    def session_read(with_node: bool):
        def step(_):
            with db.statements() as conn:
                repo.touch_session(conn, sid, time.time(), slide=True, with_settings=True, with_node=with_node)
        return step

    def read_then_version(_):
        with db.statements() as conn:
            repo.touch_session(conn, sid, time.time(), slide=True, with_settings=True)
            repo.get_node(conn, kb_id)

    counter = iter(range(10**9))

    def learn(notify: bool):
        def step(_):
            with db.transaction() as conn:
                seq = _learn(conn, kb_id, next(counter))["seq"]
                if notify:
                    conn.execute(text("SELECT pg_notify(:channel, :payload)"),
                                 {"channel": CHANNEL, "payload": f"{kb_id} 0 {seq}"})
        return step

    with db.statements() as conn:
        backend = conn.execute(text("SELECT pg_backend_pid()")).scalar_one()
    if not Path(f"/proc/{backend}/stat").exists():
        backend = None  # a remote server: wall clock only
    reads = [Variant("session read", session_read(False)),
             Variant("session read + node version", session_read(True)),
             Variant("session read, then version apart", read_then_version)]
    learns = [Variant("learn", learn(False)), Variant("learn + NOTIFY", learn(True))]
    _interleaved(reads, 200, None)  # warm the statements and the server's caches
    _interleaved(learns, 100, None)
    for variant in reads + learns:
        variant.wall, variant.server_cpu, variant.client_cpu = [], 0.0, 0.0
    _interleaved(reads, n, backend)
    _interleaved(learns, n // 4, backend)

    # Delivery: a listener as a worker would run it (its own connection, a thread blocked on it).
    listener = psycopg.connect(make_url(url).set(drivername="postgresql").render_as_string(hide_password=False),
                               autocommit=True)
    listener.execute(f"LISTEN {CHANNEL}")
    received: dict[str, float] = {}
    ready = threading.Event()

    def listen():
        ready.set()
        for note in listener.notifies():
            received[note.payload] = time.perf_counter()
            if note.payload == "stop":
                break

    thread = threading.Thread(target=listen, daemon=True)
    thread.start()
    ready.wait()
    committed: dict[str, float] = {}
    for i in range(n // 4):
        with db.transaction() as conn:
            seq = _learn(conn, kb_id, next(counter))["seq"]
            payload = f"{kb_id} 0 {seq}"
            conn.execute(text("SELECT pg_notify(:channel, :payload)"), {"channel": CHANNEL, "payload": payload})
            committed[payload] = time.perf_counter()  # the COMMIT follows: delivery counts from here
        time.sleep(0.002)  # a learn now and then, not a burst
    with db.transaction() as conn:
        conn.execute(text("SELECT pg_notify(:channel, 'stop')"), {"channel": CHANNEL})
    thread.join(timeout=10)
    listener.close()
    delivery = [received[p] - t for p, t in committed.items() if p in received]
    lost = len(committed) - len(delivery)

    print(f"wall clock in microseconds; server and client CPU per operation"
          f"{'' if backend else ' (server CPU: remote server, not measured)'}")
    for variant in reads + learns:
        k = len(variant.wall)
        print(f"{variant.name:<36} n={k:5d}   {_figures(variant.wall)}   server CPU {1e6 * variant.server_cpu / k:7.1f}"
              f"   client CPU {1e6 * variant.client_cpu / k:7.1f}")
    print(f"{'NOTIFY delivery (commit -> listener)':<36} n={len(delivery):5d}   {_figures(delivery)}"
          f"   not received: {lost}")
    base, folded, apart = (statistics.median(v.wall) for v in reads)
    print(f"\ntoday's check, folded into the session statement: {1e6 * (folded - base):+.1f} us wall, "
          f"{1e6 * (reads[1].server_cpu - reads[0].server_cpu) / n:+.1f} us server CPU per request")
    print(f"the same check as a statement of its own:          {1e6 * (apart - base):+.1f} us wall, "
          f"{1e6 * (reads[2].server_cpu - reads[0].server_cpu) / n:+.1f} us server CPU per request")
    print(f"NOTIFY in every learn:                             "
          f"{1e6 * (statistics.median(learns[1].wall) - statistics.median(learns[0].wall)):+.1f} us wall, "
          f"{1e6 * (learns[1].server_cpu - learns[0].server_cpu) / len(learns[0].wall):+.1f} us server CPU per learn")
    db.dispose()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--server-url", default="postgresql+psycopg://postgres@127.0.0.1:5432/postgres")
    parser.add_argument("-n", type=int, default=2000, help="samples per figure (learns: n/4)")
    args = parser.parse_args()
    server = make_url(args.server_url)
    name = f"kato_bench_propagation_{uuid.uuid4().hex[:8]}"
    admin = create_engine(server, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        url = server.set(database=name).render_as_string(hide_password=False)
        upgrade(url)
        run(url, args.n)
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


if __name__ == "__main__":
    main()
