"""Do requests still answer promptly while an admin evaluation runs? (docs/admin.md)

Serves kato-web with gunicorn on a throw-away SQLite database holding one node of N synthetic
patterns, times ``GET /health`` and ``GET /sessions/{id}/predictions`` back to back, then starts
an evaluation of that node from the admin page (held-out: its last patterns) and times the
same requests again while the evaluation's process works. Prints medians and 95th percentiles.

    .venv/bin/python -m bench.evaluation_responsiveness --patterns 20000 --held-out 300
"""
from __future__ import annotations

import argparse
import re
import statistics
import sys
import tempfile
import time
from pathlib import Path

import requests

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.load_node import load  # noqa: E402
from kato_web.store.migrate import upgrade  # noqa: E402
from tests.support import Gunicorn  # noqa: E402

PASSWORD = "bench admin passphrase"
TOKEN = re.compile(r'name="csrf_token" value="([^"]+)"')


def timed(http, url: str) -> float:
    started = time.perf_counter()
    resp = http.get(url)
    elapsed = (time.perf_counter() - started) * 1000.0
    resp.raise_for_status()
    return elapsed


def summary(times: list[float]) -> str:
    ordered = sorted(times)
    p95 = ordered[min(len(ordered) - 1, int(0.95 * len(ordered)))]
    return f"median {statistics.median(ordered):6.2f} ms, p95 {p95:6.2f} ms, n={len(ordered)}"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--patterns", type=int, default=20000)
    parser.add_argument("--held-out", type=int, default=300)
    parser.add_argument("--samples", type=int, default=200, help="requests timed before the evaluation")
    args = parser.parse_args()
    folder = Path(tempfile.mkdtemp(prefix="kato-eval-bench-"))
    url = f"sqlite:///{folder / 'kato.sqlite3'}"
    upgrade(url)
    load(url, "bench", args.patterns, seed=0)
    server = Gunicorn(url, workers=2, threads=2, env={"KATO_ADMIN_PASSWORD": PASSWORD}).wait_ready(60)
    try:
        http = requests.Session()
        sid = http.post(server.url + "/sessions", json={"node_id": "other"}).json()["session_id"]
        for event in (["s0001"], ["s0002"], ["s0003"]):
            http.post(f"{server.url}/sessions/{sid}/observe", json={"strings": event})
        http.post(f"{server.url}/sessions/{sid}/learn")
        for event in (["s0001"], ["s0002"]):
            http.post(f"{server.url}/sessions/{sid}/observe", json={"strings": event})
        paths = {"health": server.url + "/health", "predictions": f"{server.url}/sessions/{sid}/predictions"}
        for _ in range(20):  # warm both workers
            for path in paths.values():
                timed(http, path)
        before = {name: [timed(http, path) for _ in range(args.samples)] for name, path in paths.items()}

        admin = requests.Session()
        token = TOKEN.search(admin.get(server.url + "/admin/login").text).group(1)
        admin.post(server.url + "/admin/login", data={"password": PASSWORD, "csrf_token": token})
        token = TOKEN.search(admin.get(server.url + "/admin/evaluate").text).group(1)
        started = time.perf_counter()
        resp = admin.post(server.url + "/admin/evaluate", allow_redirects=False,
                          data={"csrf_token": token, "kb_id": "bench_kato", "sample": "last",
                                "n": str(args.held_out), "rank_sort_algo": "potential"})
        job_url = server.url + resp.headers["Location"]
        during = {name: [] for name in paths}
        status = "queued"
        while True:
            for name, path in paths.items():
                during[name].append(timed(http, path))
            if len(during["health"]) % 20 == 0:
                page = admin.get(job_url).text
                status = re.search(r'id="job-status">([^<]+)<', page).group(1).strip()
                if status not in ("queued", "running") and not status.startswith("running"):
                    break
        seconds = time.perf_counter() - started
        print(f"node: {args.patterns} patterns; evaluation of {args.held_out} held-out patterns: "
              f"{status} after {seconds:.1f} s")
        for name in paths:
            print(f"{name:12s} before: {summary(before[name])}")
            print(f"{name:12s} during: {summary(during[name])}")
    finally:
        server.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
