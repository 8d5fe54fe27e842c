"""Reproduce KATO's prediction-latency table at 10,000 to 1,000,000 patterns, over HTTP.

For each N: a fresh PostgreSQL database is filled by bench/bulk_load.py, gunicorn serves it
(tests/support.Gunicorn), every worker loads its index (warm), and then for each recall_threshold
the same STMs are asked GET /sessions/{id}/predictions over keep-alive HTTP. Reported per
(N, θ): predictions returned, candidates (patterns passing θ), future groups, p50/p95 HTTP
latency, and the engine-only time (the same index code in this process, with a per-phase split).
Per N: the worker's RSS, the index's own arrays, the time a worker takes to load the index, and
learn throughput through the HTTP API (observe-sequence + learn_at_end, 4 clients).

STMs: 10 single-symbol events, "the flattened first events of a random learned pattern plus
noise": a random learned pattern's symbols in order, up to 7, then symbols drawn from the same
Zipf vocabulary up to 10. Seeded, so every run asks the same questions. With --one-symbol, each
STM is one event of one symbol, a random learned pattern's first (kato-3.10.md decision 14).

    python -m bench.predict_bench --sizes 10000 100000 1000000 --json docs/benchmarks-scale.json
    python -m bench.predict_bench --plot-only docs/benchmarks-scale.json   # redraw the PNG

The databases are dropped at the end (a million patterns take ~0.5 GB of disk).
"""
from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import sys
import threading
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.bulk_load import bulk_load  # noqa: E402
from bench.load_node import Vocabulary, load_http  # noqa: E402

THRESHOLDS = (0.1, 0.3, 0.5, 0.7, 0.9)
# KATO's performance guide, 10,000 patterns, 10-element observation (ms).
KATO_GUIDE_MS = {0.1: 412, 0.3: 156, 0.5: 73, 0.7: 31, 0.9: 18}
KATO_1M_MS = 12_000  # "about 12 s a query" at 1,000,000 patterns (KATO's notes)
NODE = "bench"


def make_stms(index, vocabulary: Vocabulary, count: int, seed: int,
              one_symbol: bool = False) -> list[list[list[str]]]:
    rng = random.Random(seed)
    stms = []
    for _ in range(count):
        flat = [x for e in index.events(rng.randrange(len(index))) for x in e][:7]
        if one_symbol:  # kato-3.10.md decision 14: a one-symbol STM, a learned pattern's first
            stms.append([flat[:1]])
            continue
        while len(flat) < 10:
            flat.append(vocabulary.draw(rng))
        stms.append([[x] for x in flat])
    return stms


def _pct(values, q):
    values = sorted(values)
    return values[min(len(values) - 1, int(round(q * (len(values) - 1))))]


def load_index(url: str, kb_id: str):
    """Load the node's index as a worker does; return (context, knowledge, memory figures)."""
    from kato_web.config import Config
    from kato_web.services import knowledge
    from kato_web.services.context import Context
    from kato_web.store.db import Database

    import psutil

    ctx = Context(config=Config(database_url=url), db=Database(url, 2, 2))
    rss0 = psutil.Process().memory_info().rss
    started = time.perf_counter()
    node = knowledge.node_knowledge(ctx, kb_id)
    load_s = time.perf_counter() - started
    rss1 = psutil.Process().memory_info().rss
    memory = {"index_bytes": node.index.nbytes(), "load_s": load_s, "load_rss_delta": rss1 - rss0,
              "patterns": len(node.index), "symbols": node.index.n_symbols}
    return ctx, node, memory


def engine_times(node, stms, repeats: int, budget: float) -> dict:
    """Time predict() per threshold in this process, with the index's per-phase split.

    Timed as the HTTP endpoint calls it: predictions and future_potentials written as JSON, and the
    collector paused until the answer is dropped (api/operations.py). Each threshold asks the
    STMs in order until `budget` seconds are spent (at least 5 STMs).
    """
    from kato_web.web import gcpause
    from kato_web.engine.predictor import PredictConfig, predict

    index, stats = node.index, node.stats()
    out = {}
    for theta in THRESHOLDS:
        cfg = PredictConfig(recall_threshold=theta)
        times, phases = [], []
        counts = {"predictions": [], "candidates": [], "groups": [], "scored": []}
        deadline = time.perf_counter() + budget
        for k, stm in enumerate(stms):
            if k >= 5 and time.perf_counter() > deadline:
                break
            for _ in range(repeats):
                index.phase_times = {}
                t0 = time.perf_counter()
                with gcpause.paused():
                    preds, futures = predict(stm, index, stats, cfg, futures_json=True,
                                             predictions_json=True)
                    count = len(preds)
                    del preds
                times.append(time.perf_counter() - t0)
                phases.append(index.phase_times)
            counts["predictions"].append(count)
            counts["groups"].append(index.phase_times.get("groups", 0))
            counts["candidates"].append(index.phase_times.get("passed", 0))
            counts["scored"].append(index.phase_times.get("scored", 0))
        index.phase_times = None
        split = {}
        for name in ("candidates", "matching", "ensemble", "ranking_and_top", "future_potentials"):
            split[name] = 1000 * statistics.median(p.get(name, 0.0) for p in phases)
        out[theta] = {"engine_p50_ms": 1000 * statistics.median(times), "samples": len(times),
                      "engine_p95_ms": 1000 * _pct(times, 0.95),
                      "phases_ms": split,
                      **{f"{k}_median": statistics.median(v) for k, v in counts.items()}}
    return out


class LeanClient:
    """A keep-alive HTTP/1.1 client on http.client, with requests' few methods used here.

    python-requests spends ~1-3 ms of client CPU per call here (on these 2 shared cores that is
    part of every latency it measures); this client sends the same requests with a fraction of
    that, so the figures are closer to the server's own latency. `--client requests` compares.
    """

    class _Response:
        def __init__(self, status: int, content: bytes):
            self.status_code, self.content = status, content

        def json(self):
            return json.loads(self.content)

        def raise_for_status(self):
            if self.status_code >= 400:
                raise RuntimeError(f"HTTP {self.status_code}: {self.content[:200]!r}")

    def __init__(self, base_url: str, gzip: bool):
        import http.client
        from urllib.parse import urlsplit

        parts = urlsplit(base_url)
        self._conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=600)
        self._prefix = len(base_url)
        self._headers = {"Accept-Encoding": "gzip" if gzip else "identity"}

    def _call(self, method: str, url: str, body=None):
        headers = dict(self._headers)
        data = None
        if body is not None:
            data = json.dumps(body).encode()
            headers["Content-Type"] = "application/json"
        self._conn.request(method, url[self._prefix:], body=data, headers=headers)
        resp = self._conn.getresponse()
        return self._Response(resp.status, resp.read())

    def get(self, url, timeout=None):
        return self._call("GET", url)

    def post(self, url, json=None, timeout=None):
        return self._call("POST", url, json)

    def delete(self, url, timeout=None):
        return self._call("DELETE", url)


def http_times(server_url: str, stms, repeats: int, gzip: bool = False, budget: float = 120,
               client: str = "lean") -> dict:
    import requests

    if client == "lean":
        http = LeanClient(server_url, gzip)
    else:
        http = requests.Session()
        if not gzip:
            # A client on the same host gains nothing from compression (KATO sends none either).
            http.headers["Accept-Encoding"] = "identity"
    sids = []
    for stm in stms:
        sid = http.post(f"{server_url}/sessions", json={"node_id": NODE}, timeout=60).json()["session_id"]
        r = http.post(f"{server_url}/sessions/{sid}/observe-sequence", timeout=600,
                      json={"observations": [{"strings": e} for e in stm]})
        r.raise_for_status()
        sids.append(sid)
    out = {}
    for theta in THRESHOLDS:
        for sid in sids:
            http.post(f"{server_url}/sessions/{sid}/config", json={"config": {"recall_threshold": theta}},
                      timeout=60).raise_for_status()
        times, sizes, counts = [], [], []
        deadline = time.perf_counter() + budget
        for k, sid in enumerate(sids):
            if k >= 5 and time.perf_counter() > deadline:
                break
            http.get(f"{server_url}/sessions/{sid}/predictions", timeout=600)  # untimed: same as timed
            for _ in range(repeats):
                t0 = time.perf_counter()
                r = http.get(f"{server_url}/sessions/{sid}/predictions", timeout=600)
                body = r.content
                times.append(time.perf_counter() - t0)
                r.raise_for_status()
            sizes.append(len(body))
            counts.append(r.json()["count"])
        out[theta] = {"http_p50_ms": 1000 * statistics.median(times), "http_p95_ms": 1000 * _pct(times, 0.95),
                      "response_kb_median": statistics.median(sizes) / 1024,
                      "count_median": statistics.median(counts), "samples": len(times)}
    # The floor: the same session read without predictions (session row, no engine).
    floor = []
    for sid in sids[:20]:
        for _ in range(3):
            t0 = time.perf_counter()
            http.get(f"{server_url}/sessions/{sid}", timeout=60).content
            floor.append(time.perf_counter() - t0)
    out["session_get_p50_ms"] = 1000 * statistics.median(floor)
    for sid in sids:
        http.delete(f"{server_url}/sessions/{sid}", timeout=60)
    return out


def warm_workers(server_url: str, workers: int, timeout: float = 900) -> list[int]:
    """Make every worker load the node's index: fresh connections until each pid has answered."""
    import requests

    # θ = 0.9: the warming request itself must not be a huge prediction (two common symbols at
    # θ = 0.1 would match most of a large node).
    sid = requests.post(f"{server_url}/sessions", json={"node_id": NODE, "config": {"recall_threshold": 0.9}},
                        timeout=60).json()["session_id"]
    requests.post(f"{server_url}/sessions/{sid}/observe-sequence", timeout=60,
                  json={"observations": [{"strings": ["s0000"]}, {"strings": ["s0001"]}]})
    seen: dict[int, float] = {}
    deadline = time.time() + timeout
    lock = threading.Lock()

    def ask():
        t0 = time.perf_counter()
        r = requests.get(f"{server_url}/sessions/{sid}/predictions", timeout=timeout,
                         headers={"Connection": "close"}, params={"w": uuid.uuid4().hex})
        with lock:
            pid = int(r.headers.get("X-Worker-PID", 0))
            seen.setdefault(pid, time.perf_counter() - t0)

    while len(seen) < workers and time.time() < deadline:
        threads = [threading.Thread(target=ask) for _ in range(workers * 2)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    requests.delete(f"{server_url}/sessions/{sid}", timeout=60)
    return sorted(seen.items())


def learn_throughput(server_url: str, clients: int = 4, per_client: int = 250) -> float:
    results = []

    def run(k):
        results.append(load_http(server_url, f"learn-bench-{k}", per_client, seed=1000 + k))

    started = time.perf_counter()
    threads = [threading.Thread(target=run, args=(k,)) for k in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    elapsed = time.perf_counter() - started
    return sum(r["patterns_learned"] for r in results) / elapsed


def worker_rss(gunicorn) -> list[int]:
    import psutil

    master = psutil.Process(gunicorn.proc.pid)
    return [child.memory_info().rss for child in master.children(recursive=True)]


def run_size(base_url: str, n: int, args) -> dict:
    from sqlalchemy import create_engine, text
    from sqlalchemy.engine import make_url

    from kato_web.store.migrate import upgrade
    from tests.support import Gunicorn

    name = f"{args.db_prefix}_{n}"
    admin = create_engine(make_url(base_url), isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    url = make_url(base_url).set(database=name).render_as_string(hide_password=False)
    result = {"n": n, "load_average_before": os.getloadavg()}
    try:
        upgrade(url)
        vocabulary = Vocabulary(args.vocabulary, args.zipf)
        loaded = bulk_load(url, NODE, n, args.seed, vocabulary)
        result["bulk_load_s"] = loaded["seconds"]
        print(f"[{n}] bulk load {loaded['seconds']:.1f} s", flush=True)
        kb_id = loaded["kb_id"]
        # Engine first (this process), so the server's workers do not compete for the cores.
        from kato_web.engine.index import warm_up

        warm_up()
        ctx, node, memory = load_index(url, kb_id)
        stms = make_stms(node.index, vocabulary, args.stms, args.seed + 1, args.one_symbol)
        result["memory"] = memory
        result["engine"] = engine = engine_times(node, stms, args.repeats, args.budget)
        ctx.db.dispose()
        del ctx, node
        print(f"[{n}] engine {json.dumps({t: round(v['engine_p50_ms'], 2) for t, v in engine.items()})}",
              flush=True)
        server = Gunicorn(url, workers=args.workers, threads=args.threads,
                          env={"KATO_TIMEOUT": "900", "KATO_MAX_REQUESTS": "0"})
        try:
            server.wait_ready(60)
            started = time.perf_counter()
            warmed = warm_workers(server.url, args.workers)
            result["first_request_s"] = {str(pid): s for pid, s in warmed}
            result["warm_s"] = time.perf_counter() - started
            time.sleep(1)
            result["worker_rss"] = worker_rss(server)
            result["http"] = http_times(server.url, stms, args.repeats, args.gzip, args.budget, args.client)
            print(f"[{n}] http {json.dumps({t: round(v['http_p50_ms'], 2) for t, v in result['http'].items() if isinstance(v, dict)})}",
                  flush=True)
            result["worker_rss_after"] = worker_rss(server)
            result["load_average_after_http"] = os.getloadavg()
            if not args.skip_learn:
                result["learn_patterns_per_s"] = learn_throughput(server.url)
                print(f"[{n}] learn {result['learn_patterns_per_s']:.0f} patterns/s", flush=True)
        finally:
            server.stop()
    finally:
        if not args.keep:
            with admin.connect() as conn:
                conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()
    return result


def plot(results: list[dict], path: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (left, right) = plt.subplots(1, 2, figsize=(12, 4.8))
    sizes = [r["n"] for r in results]
    for theta in THRESHOLDS:
        key = str(theta)
        http = [r["http"][key]["http_p50_ms"] for r in results]
        engine = [r["engine"][key]["engine_p50_ms"] for r in results]
        line, = left.plot(sizes, http, marker="o", label=f"θ={theta} HTTP p50")
        left.plot(sizes, engine, marker=".", linestyle="--", color=line.get_color(), alpha=0.7)
    left.plot([10_000], [KATO_GUIDE_MS[0.1]], "k^", label="KATO guide, θ=0.1 (10k)")
    left.plot([1_000_000], [KATO_1M_MS], "kv", label="KATO notes (1M)")
    left.set_xscale("log")
    left.set_yscale("log")
    left.set_xlabel("patterns in the node (N)")
    left.set_ylabel("latency (ms); dashed: engine only")
    left.set_title("GET /sessions/{id}/predictions, p50")
    left.grid(True, which="both", alpha=0.3)
    left.legend(fontsize=7)
    for r in results:
        http = [r["http"][str(t)]["http_p50_ms"] for t in THRESHOLDS]
        right.plot(THRESHOLDS, http, marker="o", label=f"N={r['n']:,} HTTP p50")
    right.plot(THRESHOLDS, [KATO_GUIDE_MS[t] for t in THRESHOLDS], "k--", marker="^",
               label="KATO guide (N=10,000)")
    right.set_yscale("log")
    right.set_xlabel("recall_threshold")
    right.set_ylabel("latency (ms)")
    right.set_title("latency against threshold")
    right.grid(True, which="both", alpha=0.3)
    right.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def markdown(results: list[dict]) -> str:
    """Return the results as the markdown tables of docs/benchmarks-scale.md."""
    lines = ["| N | θ | predictions | candidates | future groups | HTTP p50 ms | HTTP p95 ms | "
             "engine p50 ms | KATO guide ms | KATO ÷ kato-web (HTTP p50) |",
             "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for r in results:
        for theta in THRESHOLDS:
            e, h = r["engine"][str(theta)], r["http"][str(theta)]
            guide = KATO_GUIDE_MS[theta] if r["n"] == 10_000 else (KATO_1M_MS if r["n"] == 1_000_000 else None)
            ratio = f"{guide / h['http_p50_ms']:.0f}×" if guide else "—"
            lines.append(f"| {r['n']:,} | {theta} | {e['predictions_median']:g} | {e['candidates_median']:,.0f} | "
                         f"{e['groups_median']:,.0f} | {h['http_p50_ms']:.1f} | {h['http_p95_ms']:.1f} | "
                         f"{e['engine_p50_ms']:.2f} | {guide if guide else '—'} | {ratio} |")
    lines += ["", "| N | engine phase split at θ (ms): candidates / matching / ensemble / ranking+top / "
              "future_potentials | scored exactly |", "|---:|---|---|"]
    for r in results:
        for theta in THRESHOLDS:
            e = r["engine"][str(theta)]
            ph = e["phases_ms"]
            lines.append(f"| {r['n']:,} | θ={theta}: {ph['candidates']:.2f} / {ph['matching']:.2f} / "
                         f"{ph['ensemble']:.2f} / {ph['ranking_and_top']:.2f} / {ph['future_potentials']:.2f} | "
                         f"{e['scored_median']:,.0f} |")
    lines += ["", "| N | worker RSS (MB, each) | index arrays (MB) | index load (s, this process) | "
              "first request per worker (s) | session GET p50 ms | learn patterns/s (HTTP, 4 clients) | "
              "bulk load (s) |", "|---:|---|---:|---:|---|---:|---:|---:|"]
    for r in results:
        m = r["memory"]
        rss = ", ".join(f"{x / 2 ** 20:.0f}" for x in r.get("worker_rss_after") or r.get("worker_rss", []))
        first = ", ".join(f"{v:.1f}" for v in r.get("first_request_s", {}).values())
        floor = r["http"].get("session_get_p50_ms")
        lines.append(f"| {r['n']:,} | {rss} | {m['index_bytes'] / 2 ** 20:.0f} | {m['load_s']:.1f} | {first} | "
                     f"{floor:.1f} | {r.get('learn_patterns_per_s', 0):.0f} | {r.get('bulk_load_s', 0):.0f} |"
                     if floor is not None else
                     f"| {r['n']:,} | {rss} | {m['index_bytes'] / 2 ** 20:.0f} | {m['load_s']:.1f} | {first} | — | "
                     f"{r.get('learn_patterns_per_s', 0):.0f} | {r.get('bulk_load_s', 0):.0f} |")
    return "\n".join(lines)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--database-url", default=os.environ.get(
        "KATO_BENCH_DATABASE_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"),
        help="a PostgreSQL server (a database per size is created next to this one)")
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000, 1_000_000])
    parser.add_argument("--stms", type=int, default=40)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--threads", type=int, default=4)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--vocabulary", type=int, default=10_000)
    parser.add_argument("--zipf", type=float, default=1.0)
    parser.add_argument("--budget", type=float, default=90,
                        help="seconds per threshold and path (at least 5 STMs are always asked)")
    parser.add_argument("--skip-learn", action="store_true")
    parser.add_argument("--one-symbol", action="store_true",
                        help="ask from one-symbol STMs (a learned pattern's first symbol) instead")
    parser.add_argument("--gzip", action="store_true", help="accept gzip-compressed responses")
    parser.add_argument("--client", choices=("lean", "requests"), default="lean",
                        help="HTTP client: http.client keep-alive (default) or python-requests")
    parser.add_argument("--keep", action="store_true", help="keep the databases")
    parser.add_argument("--db-prefix", default="kato_bench",
                        help="databases are named <prefix>_<N> (distinct prefixes let runs coexist)")
    parser.add_argument("--json", default=str(ROOT / "docs" / "benchmarks-scale.json"))
    parser.add_argument("--png", default=str(ROOT / "docs" / "prediction-latency.png"))
    parser.add_argument("--plot-only", metavar="JSON")
    args = parser.parse_args(argv)
    if args.plot_only:
        results = json.loads(Path(args.plot_only).read_text())["results"]
        plot(results, args.png)
        print(markdown(results))
        return 0
    existing = {}
    if Path(args.json).exists():
        existing = {r["n"]: r for r in json.loads(Path(args.json).read_text()).get("results", [])}
    for n in args.sizes:
        result = run_size(args.database_url, n, args)
        result["workload"] = {"vocabulary": args.vocabulary, "zipf": args.zipf, "seed": args.seed,
                              "gzip": args.gzip, "client": args.client,
                              "one_symbol": args.one_symbol,
                              "stms": args.stms, "repeats": args.repeats, "workers": args.workers,
                              "threads": args.threads}
        existing[n] = json.loads(json.dumps(result, default=float))
        ordered = [existing[k] for k in sorted(existing)]
        Path(args.json).write_text(json.dumps({"date": time.strftime("%Y-%m-%d"), "results": ordered},
                                              indent=1))
        print(f"[{n}] done", flush=True)
    ordered = [existing[k] for k in sorted(existing)]
    if all("http" in r for r in ordered):
        plot(ordered, args.png)
    return 0


if __name__ == "__main__":
    sys.exit(main())
