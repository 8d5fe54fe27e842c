"""Run one Locust scenario headless against gunicorn on PostgreSQL; write CSV stats.

    make load SCENARIO=mix USERS=32 DURATION=60s
    python -m bench.run_load --scenario observe --users 32 --duration 60s

Steps: make sure a template database holding the pre-loaded node exists (built once
with bench/load_node.py, reused while its pattern count matches), copy it into a fresh
run database (CREATE DATABASE … TEMPLATE, a file copy, so every run starts from the
same 10,000 patterns), start gunicorn on it, run Locust for a fixed user count and
duration, save Locust's CSV files, a server-side /metrics snapshot and a summary line
under bench/results/, then stop gunicorn.

With --instances N (N > 1, or --nginx), N gunicorns (each with --workers workers) serve the same
database behind Debian's nginx (round robin, keep-alive; tests.support.Nginx) and Locust talks to
nginx: the issue-16 comparison of one instance against two. CPU per request then sums every
instance and nginx.
"""
from __future__ import annotations

import argparse
import csv
import json
import os
import resource
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

import requests
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench import load_node, pacing  # noqa: E402
from tests.support import Nginx, free_port  # noqa: E402

SCENARIOS = ("mix", "observe", "predict", "batch", "learn", "health")
RESULTS = ROOT / "bench" / "results"


def _admin(url: str):
    return create_engine(make_url(url).set(database="postgres"), isolation_level="AUTOCOMMIT")


def _database_exists(admin, name: str) -> bool:
    with admin.connect() as conn:
        return conn.execute(text("SELECT 1 FROM pg_database WHERE datname = :n"), {"n": name}).first() is not None


def _node_patterns(url: str, kb_id: str) -> int:
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            row = conn.execute(text("SELECT total_unique_patterns FROM nodes WHERE kb_id = :k"),
                               {"k": kb_id}).first()
            return int(row[0]) if row else 0
    except Exception:
        return -1
    finally:
        engine.dispose()


def prepare_database(base_url: str, run_db: str, node: str, patterns: int, seed: int) -> str:
    """Return the URL of a fresh run database holding `patterns` patterns in `node`."""
    from kato_web.services.sessions import kb_id_for
    from kato_web.store.migrate import upgrade

    url = make_url(base_url)
    template = f"{run_db}_template_{patterns}_{seed}"
    template_url = url.set(database=template).render_as_string(hide_password=False)
    admin = _admin(base_url)
    kb_id = kb_id_for(node, os.environ.get("KATO_SERVICE_NAME", "kato"))
    try:
        if not _database_exists(admin, template) or _node_patterns(template_url, kb_id) != patterns:
            with admin.connect() as conn:
                conn.execute(text(f'DROP DATABASE IF EXISTS "{template}" WITH (FORCE)'))
                conn.execute(text(f'CREATE DATABASE "{template}"'))
            upgrade(template_url)
            if patterns:
                started = time.perf_counter()
                load_node.load(template_url, node, patterns, seed)
                print(f"loaded {patterns} patterns into {template} in {time.perf_counter() - started:.0f} s")
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{run_db}" WITH (FORCE)'))
            conn.execute(text(f'CREATE DATABASE "{run_db}" TEMPLATE "{template}"'))
    finally:
        admin.dispose()
    return url.set(database=run_db).render_as_string(hide_password=False)


def start_gunicorn(database_url: str, workers: int, threads: int, extra_env: dict) -> tuple[subprocess.Popen, str]:
    port = free_port()
    env = dict(os.environ)
    env.pop("PROMETHEUS_MULTIPROC_DIR", None)  # gunicorn.conf.py makes a private one
    env.update({"KATO_DATABASE_URL": database_url, "KATO_BIND": f"127.0.0.1:{port}",
                "KATO_WORKERS": str(workers), "KATO_THREADS": str(threads), "KATO_LOG_LEVEL": "warning"})
    env.update(extra_env)
    proc = subprocess.Popen([sys.executable, "-m", "gunicorn", "-c", str(ROOT / "gunicorn.conf.py"), "wsgi:app"],
                            cwd=ROOT, env=env, start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    deadline = time.time() + 60
    while time.time() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"gunicorn exited with {proc.returncode}")
        try:
            if requests.get(url + "/health", timeout=1).status_code == 200:
                return proc, url
        except requests.RequestException:
            pass
        time.sleep(0.2)
    stop(proc)
    raise RuntimeError("gunicorn did not become ready")


def stop(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=40)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


def _server_cpu(procs, run_db: str, nginx: subprocess.Popen | None = None) -> dict[str, dict[int, float]]:
    """Return CPU seconds so far of gunicorn's processes (one or several instances), of nginx
    (when there is one) and of PostgreSQL's backends for `run_db`."""
    import psutil

    def seconds(p, reaped=False):
        t = p.cpu_times()
        # The master's figure includes the workers it has reaped (recycled after max_requests
        # or dead), so their CPU is not lost when they exit between two readings.
        return t.user + t.system + ((t.children_user + t.children_system) if reaped else 0.0)

    out = {"gunicorn": {}, "postgres": {}}
    groups = [("gunicorn", proc) for proc in (procs if isinstance(procs, (list, tuple)) else [procs])]
    if nginx is not None:
        out["nginx"] = {}
        groups.append(("nginx", nginx))
    for part, proc in groups:
        try:
            master = psutil.Process(proc.pid)
            out[part][master.pid] = seconds(master, reaped=part == "gunicorn")
            for p in master.children(recursive=True):
                out[part][p.pid] = seconds(p)
        except psutil.Error:
            pass
    for p in psutil.process_iter(["name", "cmdline"]):
        try:
            if p.info["name"] == "postgres" and any(f" {run_db} " in c for c in (p.info["cmdline"] or [])):
                out["postgres"][p.pid] = seconds(p)
        except psutil.Error:
            pass
    return out


def wait_idle(proc, run_db: str, timeout: float = 120.0) -> None:
    """Wait until the workers have finished warming up (prediction kernels load in the background)."""
    deadline = time.time() + timeout
    last = _server_cpu(proc, run_db)
    while time.time() < deadline:
        time.sleep(1.0)
        now = _server_cpu(proc, run_db)
        if _cpu_used(last, now)["gunicorn"] < 0.05:
            return
        last = now


def _cpu_used(before: dict, after: dict) -> dict[str, float]:
    """CPU seconds used between two readings, by part. gunicorn's (and nginx's) processes are
    summed whole, before and after: a worker that exited in between is in its master's reaped
    figure afterwards. PostgreSQL backends are taken pid by pid (an exited one is lost)."""
    used = {}
    for part in after:
        if part == "postgres":
            used[part] = sum(v - before[part].get(pid, 0.0) for pid, v in after[part].items())
        else:
            used[part] = sum(after[part].values()) - sum(before[part].values())
    return used


def summarise(stats_csv: Path) -> dict:
    """Return the Aggregated row of Locust's stats CSV as rps, p50/p95/p99 ms and error %."""
    with stats_csv.open() as fh:
        rows = list(csv.DictReader(fh))
    out = {}
    for row in rows:
        name = row["Name"]
        requests_n = int(row["Request Count"])
        failures = int(row["Failure Count"])
        out[name] = {
            "requests": requests_n, "failures": failures,
            "rps": float(row["Requests/s"]),
            "p50_ms": float(row["50%"] or 0), "p95_ms": float(row["95%"] or 0), "p99_ms": float(row["99%"] or 0),
            "avg_ms": float(row["Average Response Time"] or 0),
            "error_pct": 100.0 * failures / requests_n if requests_n else 0.0,
        }
    return out


def main(argv: list[str] | None = None) -> int:
    code, _line = run(argv)
    return code


def default_layout() -> tuple[int, int]:
    """(workers, threads) gunicorn.conf.py would use here."""
    from kato_web.config import ServerSettings

    server = ServerSettings.from_env()
    return server.workers, server.threads


def run(argv: list[str] | None = None) -> tuple[int, dict]:
    """Run one scenario; return (exit code, the summary line with per-name figures)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scenario", choices=SCENARIOS, default="mix")
    parser.add_argument("--users", type=int, default=32)
    parser.add_argument("--spawn-rate", type=float, default=0, help="users started per second (default: all at once)")
    parser.add_argument("--duration", default="60s")
    parser.add_argument("--patterns", type=int, default=10_000, help="patterns pre-loaded into the node")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--node", default="load")
    parser.add_argument("--workers", type=int, default=int(os.environ.get("KATO_WORKERS", "0")) or None)
    parser.add_argument("--threads", type=int, default=int(os.environ.get("KATO_THREADS", "0")) or None)
    parser.add_argument("--database-url", default=os.environ.get(
        "KATO_LOAD_DATABASE_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/kato_load"))
    parser.add_argument("--tag", default="", help="added to the result file names")
    parser.add_argument("--instances", type=int, default=1, help="gunicorn instances (more than 1: behind nginx)")
    parser.add_argument("--nginx", action="store_true", help="put nginx in front even of one instance")
    parser.add_argument("--rate", type=float, default=0,
                        help="offered load: tasks per second of all users together (Locust constant "
                             "throughput); default: back to back")
    parser.add_argument("--pacing", choices=("steady", "locust"), default="steady",
                        help="with --rate: each user on a fixed clock (steady, bench/pacing.py) or "
                             "Locust's constant_throughput (its users fall into step after a stall)")
    args = parser.parse_args(argv)

    default_workers, default_threads = default_layout()
    workers = args.workers or default_workers
    threads = args.threads or default_threads
    patterns = args.patterns if args.scenario in ("mix", "predict") else 0
    run_db = make_url(args.database_url).database
    database_url = prepare_database(args.database_url, run_db, args.node, patterns, args.seed)

    RESULTS.mkdir(parents=True, exist_ok=True)
    stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    layout = f"-i{args.instances}" + ("n" if args.instances > 1 or args.nginx else "")
    prefix = RESULTS / f"{args.scenario}-u{args.users}-w{workers}t{threads}{layout}{args.tag}-{stamp}"
    trace = prefix.with_name(prefix.name + "_starts.txt")  # each request's start time (Locust)
    procs, nginx = [], None
    try:
        for _ in range(max(1, args.instances)):
            procs.append(start_gunicorn(database_url, workers, threads, {}))
        url = procs[0][1]
        if args.instances > 1 or args.nginx:
            nginx_dir = Path(tempfile.mkdtemp(prefix="kato-load-nginx-"))
            nginx = Nginx([u for _, u in procs], nginx_dir).wait_ready()
            url = nginx.url
    except BaseException:
        for proc, _ in procs:
            stop(proc)
        raise
    proc = [p for p, _ in procs]
    nginx_proc = nginx.proc if nginx else None
    wait_idle(proc, run_db)
    load_before = os.getloadavg()[0]
    cpu_before = _server_cpu(proc, run_db, nginx_proc)
    children_before = resource.getrusage(resource.RUSAGE_CHILDREN)
    try:
        env = dict(os.environ, KATO_LOAD_NODE=args.node, KATO_LOAD_SEED=str(args.seed),
                   KATO_LOAD_USER_RATE=repr(args.rate / args.users if args.rate else 0.0),
                   KATO_LOAD_PACING=args.pacing, KATO_LOAD_TRACE=str(trace))
        cmd = [sys.executable, "-m", "locust", "-f", str(ROOT / "locustfiles" / f"{args.scenario}.py"),
               "--headless", "-u", str(args.users), "-r", str(args.spawn_rate or args.users),
               "-t", args.duration, "--host", url, "--csv", str(prefix), "--only-summary",
               "--stop-timeout", "10", "--loglevel", "WARNING"]
        locust = subprocess.run(cmd, cwd=ROOT, env=env)
        children_after = resource.getrusage(resource.RUSAGE_CHILDREN)
        cpu_after = _server_cpu(proc, run_db, nginx_proc)
        cpu = _cpu_used(cpu_before, cpu_after)
        # Each gunicorn process's share (the master's first): a worker that holds more of the
        # keep-alive connections than the others serves more of the load.
        per_process = [round(v - cpu_before["gunicorn"].get(pid, 0.0), 2) for pid, v in cpu_after["gunicorn"].items()]
        cpu["locust"] = (children_after.ru_utime + children_after.ru_stime
                         - children_before.ru_utime - children_before.ru_stime)
        load_after = os.getloadavg()[0]
        metrics = requests.get(url + "/metrics", timeout=30).json()
        prefix.with_name(prefix.name + "_server_metrics.json").write_text(json.dumps(metrics, indent=1))
        # The server's own view of each route's time (the app's latency histogram), next to
        # Locust's: the gap is queueing in gunicorn, the network and the client.
        prom = requests.get(url + "/metrics", params={"format": "prometheus"}, timeout=30).text
        prefix.with_name(prefix.name + "_server_metrics.prom").write_text(prom)
    finally:
        if nginx is not None:
            nginx.stop()
            shutil.rmtree(nginx_dir, ignore_errors=True)
        for p in proc:
            stop(p)
    summary = summarise(prefix.with_name(prefix.name + "_stats.csv"))
    agg = summary.get("Aggregated", {})
    line = {"scenario": args.scenario, "users": args.users, "duration": args.duration, "rate": args.rate or None,
            "workers": workers,
            "threads": threads, "instances": max(1, args.instances), "nginx": nginx is not None, "patterns": patterns, "loadavg_before": round(load_before, 2),
            "loadavg_after": round(load_after, 2), **agg}
    # CPU milliseconds per request, by process group: robust to other load on the machine
    # (throughput is not), and 2000 / their sum estimates requests/s on 2 idle cores.
    if agg.get("requests"):
        line["cpu_ms_per_request"] = {k: round(1000.0 * v / agg["requests"], 3) for k, v in cpu.items()}
        line["gunicorn_cpu_s_by_process"] = per_process
    if args.rate:
        line["pacing"] = args.pacing
    if trace.exists():  # how evenly the requests arrived (10 ms bins; bench/pacing.py)
        line["arrivals"] = pacing.burstiness([float(t) for t in trace.read_text().split()])
    prefix.with_name(prefix.name + "_summary.json").write_text(json.dumps({"aggregated": line, "by_name": summary},
                                                                           indent=1))
    print(json.dumps(line))
    for name, row in summary.items():
        if name != "Aggregated":
            print(f"  {name:40s} {row['rps']:8.1f}/s p50 {row['p50_ms']:6.0f} p95 {row['p95_ms']:6.0f} "
                  f"p99 {row['p99_ms']:6.0f} ms err {row['error_pct']:.2f}%")
    line["by_name"] = {name: row for name, row in summary.items() if name != "Aggregated"}
    return (locust.returncode if locust.returncode not in (1,) else 0), line


if __name__ == "__main__":
    sys.exit(main())
