"""What one instance costs in memory: gunicorn with W workers that have all served a large node.

Starts one gunicorn (the project's gunicorn.conf.py, W workers) on PostgreSQL with a node of N
patterns (bench/bulk_load.py; the database is kept between runs and reused when it already holds
the node), makes every worker answer a predictions call on that node (so each holds its index),
then reads /proc/<pid>/smaps_rollup of the master and every worker and prints RSS, PSS and USS
(private pages). RSS counts a page shared by several processes once in each of them, so the
instance's real footprint is the sum of PSS; the sum of RSS is printed next to it for contrast.
The issue-16 target: N = 1,000,000, W = 4, sum of PSS ≤ 1.2 GB.

    python -m bench.instance_memory [-n 1000000] [--workers 4] [--preload] [--learns K] \\
        [--server-url postgresql+psycopg://postgres@127.0.0.1:5432/postgres]
"""
from __future__ import annotations

import argparse
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import requests  # noqa: E402
from sqlalchemy import create_engine, text  # noqa: E402
from sqlalchemy.engine import make_url  # noqa: E402

NODE = "memory"


def _database(server_url: str, n: int) -> str:
    """Return the URL of a database holding node NODE with n patterns, making it if needed."""
    from bench.bulk_load import bulk_load
    from kato_web.store.migrate import upgrade

    server = make_url(server_url)
    name = f"kato_instance_memory_{n}"
    admin = create_engine(server, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        exists = conn.execute(text("SELECT 1 FROM pg_database WHERE datname = :n"), {"n": name}).first()
        if not exists:
            conn.execute(text(f'CREATE DATABASE "{name}"'))
    admin.dispose()
    url = server.set(database=name).render_as_string(hide_password=False)
    upgrade(url)
    engine = create_engine(url)
    with engine.connect() as conn:
        have = conn.execute(text("SELECT total_unique_patterns FROM nodes WHERE kb_id = :k"),
                            {"k": f"{NODE}_kato"}).scalar()
    engine.dispose()
    if have is None:
        started = time.perf_counter()
        bulk_load(url, NODE, n)
        print(f"loaded {n} patterns in {time.perf_counter() - started:.0f} s")
    elif have != n:
        raise SystemExit(f"database {name} holds {have} patterns, not {n}: drop it first")
    return url


def _smaps(pid: int) -> dict[str, int]:
    """kB figures of /proc/<pid>/smaps_rollup."""
    figures = {}
    for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines()[1:]:
        key, value = line.split(":", 1)
        figures[key] = int(value.split()[0])
    return figures


def _children(pid: int) -> list[int]:
    return [int(x) for x in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _serve_everyone(base: str, sid: str, pids: set[int]) -> set[str]:
    """Ask for predictions until every worker has answered once; return the pids that never did."""
    served: set[str] = set()
    started = time.perf_counter()
    # A new connection per call lets the workers' accept race spread the calls over all.
    while {str(p) for p in pids} - served and time.perf_counter() - started < 600:
        resp = requests.get(f"{base}/sessions/{sid}/predictions", headers={"Connection": "close"},
                            timeout=300)
        served.add(resp.headers.get("X-Worker-PID", ""))
    return {str(p) for p in pids} - served


def _report(title: str, master: int, pids: set[int], missing: set[str]) -> None:
    time.sleep(6)  # past the heap trimmer's quiet delay, as a serving instance would be
    rows = [("master", master, _smaps(master))] + [("worker", p, _smaps(p)) for p in sorted(pids)]
    print(f"\n{title}{'' if not missing else f' (workers that never answered: {sorted(missing)})'}")
    print(f"{'process':<8} {'pid':>8} {'RSS MB':>9} {'PSS MB':>9} {'USS MB':>9}")
    for role, pid, f in rows:
        uss = f.get("Private_Clean", 0) + f.get("Private_Dirty", 0)
        print(f"{role:<8} {pid:>8} {f['Rss'] / 1024:9.0f} {f['Pss'] / 1024:9.0f} {uss / 1024:9.0f}")
    print(f"{'total':<8} {'':>8} {sum(f['Rss'] for *_, f in rows) / 1024:9.0f} "
          f"{sum(f['Pss'] for *_, f in rows) / 1024:9.0f}", flush=True)


def _run_copy(url: str) -> str:
    """Return the URL of a fresh copy of the kept database, for a run that learns into it."""
    kept = make_url(url)
    run_name = f"{kept.database}_run"
    admin = create_engine(kept.set(database="postgres"), isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{run_name}" WITH (FORCE)'))
        conn.execute(text(f'CREATE DATABASE "{run_name}" TEMPLATE "{kept.database}"'))
    admin.dispose()
    return kept.set(database=run_name).render_as_string(hide_password=False)


def run(url: str, workers: int, patterns: int, preload: bool = False, learns: int = 0) -> None:
    if learns:
        url = _run_copy(url)  # the kept database stays at exactly `patterns` patterns
    port = _free_port()
    base = f"http://127.0.0.1:{port}"
    env = dict(os.environ, KATO_DATABASE_URL=url, KATO_BIND=f"127.0.0.1:{port}", KATO_WORKERS=str(workers),
               KATO_EXPOSE_WORKER_PID="1", KATO_LOG_LEVEL="warning")
    if preload:
        env["KATO_PRELOAD_NODES"] = NODE  # the master loads it before forking; workers share it
    proc = subprocess.Popen([sys.executable, "-m", "gunicorn", "-c", str(ROOT / "gunicorn.conf.py"), "wsgi:app"],
                            cwd=ROOT, env=env, start_new_session=True)
    try:
        deadline = time.time() + 120
        while True:
            try:
                if requests.get(base + "/health", timeout=1).status_code == 200:
                    break
            except requests.RequestException:
                pass
            if time.time() > deadline or proc.poll() is not None:
                raise SystemExit("gunicorn did not start")
            time.sleep(0.2)
        sid = requests.post(base + "/sessions", json={"node_id": NODE}).json()["session_id"]
        for symbol in ("s0001", "s0002"):
            requests.post(f"{base}/sessions/{sid}/observe", json={"strings": [symbol]})
        while len(_children(proc.pid)) < workers and time.time() < deadline:
            time.sleep(0.2)  # gunicorn forks its workers one after the other
        pids = set(_children(proc.pid))
        title = (f"one instance, {workers} workers, node of {patterns:,} patterns"
                 f"{', preloaded by the master (KATO_PRELOAD_NODES)' if preload else ''}")
        _report(title, proc.pid, pids, _serve_everyone(base, sid, pids))
        if learns:
            # New patterns learned after the fork: each worker applies them to its copy, which
            # writes (and so un-shares) the pages they touch.
            # θ 0.9 for the learner: its observe-time predictions stay cheap (the learns, not
            # predictions over a million patterns at θ 0.1, are what this step measures).
            learner = requests.post(base + "/sessions", json={
                "node_id": NODE, "config": {"recall_threshold": 0.9}}).json()["session_id"]
            for k in range(learns):
                events = [{"strings": [f"new{k:06d}a"]}, {"strings": [f"new{k:06d}b", "s0001"]}]
                resp = requests.post(f"{base}/sessions/{learner}/observe-sequence",
                                     json={"observations": events, "learn_at_end": True}, timeout=120)
                resp.raise_for_status()
            _report(f"{title}, after {learns:,} learns", proc.pid, pids, _serve_everyone(base, sid, pids))
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=60)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--server-url", default="postgresql+psycopg://postgres@127.0.0.1:5432/postgres")
    parser.add_argument("-n", type=int, default=1_000_000, help="patterns in the node")
    parser.add_argument("--workers", type=int, default=4)
    parser.add_argument("--preload", action="store_true",
                        help="set KATO_PRELOAD_NODES so the workers share the master's copy")
    parser.add_argument("--learns", type=int, default=0,
                        help="then learn this many new patterns (into a copy of the database) and "
                             "measure again")
    args = parser.parse_args()
    run(_database(args.server_url, args.n), args.workers, args.n, args.preload, args.learns)


if __name__ == "__main__":
    main()
