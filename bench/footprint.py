"""Memory and start-up of gunicorn layouts: idle RSS/PSS of all processes, and throughput.

    python -m bench.footprint --layouts 1x8 2x4 3x4 5x4 [--patterns 2000] [--seconds 10]

For each workers×threads layout: start gunicorn (gunicorn.conf.py, wsgi:app) on a fresh SQLite
database holding one node of --patterns synthetic patterns, wait for /readyz, let every worker
answer a predictions call (a request per connection until each pid was seen), wait for the
heap trim, and sum the resident (RSS) and proportional (PSS: shared pages divided among the
processes sharing them) memory of the master and its workers. Then --seconds of predictions
from 16 threads (keep-alive clients) give requests/s and the median latency. Prints one table
row per layout (docs/operations.md holds the figures).
"""
from __future__ import annotations

import argparse
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import psutil
import requests

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench import load_node  # noqa: E402
from tests.support import free_port  # noqa: E402


def _memory(pid: int) -> tuple[float, float, int]:
    """(RSS MB, PSS MB, processes) of `pid` and its children."""
    master = psutil.Process(pid)
    rss = pss = 0
    procs = [master, *master.children(recursive=True)]
    for proc in procs:
        info = proc.memory_full_info()
        rss += info.rss
        pss += info.pss
    return rss / 2**20, pss / 2**20, len(procs)


def _load(url: str, seconds: float, threads: int = 16) -> tuple[float, float]:
    """Predictions for `seconds` from `threads` keep-alive clients: (requests/s, median ms)."""
    latencies: list[float] = []
    lock = threading.Lock()
    stop = time.time() + seconds
    stm = next(load_node.synthetic_sequences(1, 0))[:2]

    def client():
        http = requests.Session()
        sid = http.post(url + "/sessions", json={"node_id": "fp"}).json()["session_id"]
        for event in stm:
            http.post(f"{url}/sessions/{sid}/observe", json={"strings": event})
        mine = []
        while time.time() < stop:
            t = time.perf_counter()
            assert http.get(f"{url}/sessions/{sid}/predictions").status_code == 200
            mine.append(time.perf_counter() - t)
        with lock:
            latencies.extend(mine)

    workers = [threading.Thread(target=client) for _ in range(threads)]
    started = time.time()
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    return len(latencies) / (time.time() - started), statistics.median(latencies) * 1000


def measure(workers: int, threads: int, patterns: int, seconds: float) -> dict:
    tmp = tempfile.mkdtemp(prefix="kato-fp-")
    url_db = f"sqlite:///{tmp}/fp.sqlite3"
    env = dict(os.environ, KATO_DATABASE_URL=url_db, KATO_WORKERS=str(workers), KATO_THREADS=str(threads),
               KATO_LOG_LEVEL="warning", KATO_EXPOSE_WORKER_PID="1")
    subprocess.run([sys.executable, "-m", "kato_web", "migrate"], cwd=ROOT, env=env, check=True,
                   capture_output=True)
    if patterns:
        load_node.load(url_db, "fp", patterns, seed=0)
    port = free_port()
    env["KATO_BIND"] = f"127.0.0.1:{port}"
    url = f"http://127.0.0.1:{port}"
    started = time.time()
    proc = subprocess.Popen([sys.executable, "-m", "gunicorn", "-c", "gunicorn.conf.py", "wsgi:app"],
                            cwd=ROOT, env=env, start_new_session=True)
    try:
        while True:
            try:
                if requests.get(url + "/readyz", timeout=2).status_code == 200:
                    break
            except requests.RequestException:
                pass
            time.sleep(0.2)
        ready = time.time() - started
        while len(psutil.Process(proc.pid).children()) < workers:  # every worker booted
            time.sleep(0.1)
        time.sleep(1.0)
        idle_rss, idle_pss, nprocs = _memory(proc.pid)
        sid = requests.post(url + "/sessions", json={"node_id": "fp"}).json()["session_id"]
        requests.post(f"{url}/sessions/{sid}/observe", json={"strings": ["s1"]})
        seen: set = set()
        for _ in range(200):
            if len(seen) == workers:
                break
            resp = requests.get(f"{url}/sessions/{sid}/predictions", headers={"Connection": "close"})
            seen.add(resp.headers.get("X-Worker-PID"))
        time.sleep(6)  # the heap trim runs 5 s after the last large answer
        warm_rss, warm_pss, _ = _memory(proc.pid)
        rps, p50 = _load(url, seconds) if seconds else (0.0, 0.0)
        return {"layout": f"{workers}x{threads}", "processes": nprocs, "ready_s": ready,
                "idle_rss": idle_rss, "idle_pss": idle_pss, "warm_rss": warm_rss, "warm_pss": warm_pss,
                "rps": rps, "p50_ms": p50}
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=30)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--layouts", nargs="+", default=["1x8", "2x4", "3x4", "5x4"])
    parser.add_argument("--patterns", type=int, default=2000)
    parser.add_argument("--seconds", type=float, default=10.0)
    args = parser.parse_args(argv)
    print(f"{'layout':>7} {'procs':>5} {'ready s':>7} {'idle RSS':>9} {'idle PSS':>9} {'warm RSS':>9} "
          f"{'warm PSS':>9} {'req/s':>7} {'p50 ms':>7}  (MB = MiB, all processes summed)")
    for layout in args.layouts:
        workers, threads = (int(x) for x in layout.split("x"))
        r = measure(workers, threads, args.patterns, args.seconds)
        print(f"{r['layout']:>7} {r['processes']:>5} {r['ready_s']:>7.1f} {r['idle_rss']:>9.0f} "
              f"{r['idle_pss']:>9.0f} {r['warm_rss']:>9.0f} {r['warm_pss']:>9.0f} {r['rps']:>7.1f} "
              f"{r['p50_ms']:>7.1f}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
