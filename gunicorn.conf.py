"""gunicorn settings for kato-web, from KATO_* environment variables (kato_web/config.py).

Why these choices (measured on 2 cores, server and Locust on the same machine,
PostgreSQL, 2026-11-27; docs/benchmarks.md has the full tables):
- worker_class "gthread": a request is short and waits on the database two or three
  times, so a few threads per process overlap those waits, and HTTP keep-alive works
  (sync workers close every connection; Locust and real clients reuse them). gevent
  would need psycopg's green support and buys nothing over threads at this size.
- workers and threads: KATO_WORKERS (default one per core = 2 here) and KATO_THREADS
  (default 8), chosen 2026-12-03 by memory and throughput (bench/footprint.py; the whole
  sweep is in docs/operations.md). With the app and kernels preloaded, idle memory of all
  processes summed (MiB, RSS / PSS) and predictions at 16 keep-alive clients on a 2,000-
  pattern node (req/s, two 15 s runs; the machine was shared, load average 15-18, so runs
  of one layout differ by up to 2x):
        workers×threads   idle RSS / PSS    req/s (run 1, run 2)
        1×8                343 / 147          94,  76
        2×4                462 / 157          62, 117
        2×8                462 / 157         109,  93
        3×4                581 / 166          71,   –
        3×8                581 / 167           –,  70
        5×4                819 / 186          76,  64
  The prediction kernels release the GIL, so threads of one process run them on both
  cores at once; more processes add memory (each worker's own heap, and each touches its
  own copy of pages it writes) but no throughput on 2 cores. Earlier (2026-11-27, 32 Locust
  users, PostgreSQL) one thread per worker was clearly worst and layouts of 2-5 workers
  with 2-4 threads tied on throughput. One worker per core keeps a spare process if one
  dies or is recycled; 8 threads give 16 request slots, so short requests (observe, STM)
  pass long predictions calls instead of queueing. Each worker's database pool follows
  KATO_THREADS (kato_web/config.py).
- Connections spread evenly (KATO_BALANCE_CONNECTIONS, on by default): a gthread worker
  serves a kept-alive connection for its whole life, and when many clients connect at once
  whichever worker wakes first takes most of them (32 Locust clients on 2 workers: one worker
  did 75-84 % of the work, run after run; 24 clients connecting together in the e2e test all
  went to one worker). kato_web/web/balanced_worker.py keeps gthread but has a worker stop
  accepting while it holds more than one connection above the least-loaded live worker
  (a shared table the master sets up in pre_fork). Measured 2026-12-04, 45 s runs, 32 users,
  alternating: /health 825, 978 → 1,042, 1,225 requests/s; the mix 358, 409 → 418, 483.
- keepalive 30 s: clients keep their connection between requests (the gthread worker
  parks idle keep-alive sockets in its poller, so they cost no thread).
- timeout 120 s: predictions at very large nodes can be slow; the arbiter only kills a
  worker that stops heart-beating for that long.
- graceful_timeout 30 s: on restart/shutdown a worker finishes its in-flight requests.
- max_requests 20,000 ± 2,000 jitter: workers are recycled now and then, staggered,
  so a slow leak can never build up and never all workers restart at once. A recycled
  worker re-reads a node's knowledge from the database on first use.
- preload: the master imports the app once (wsgi.py) and loads the compiled prediction
  kernels (numba, from its on-disk cache, or compiling them once per install) before it
  forks; workers share that code and memory copy-on-write, never compile on a request, and a
  recycled worker starts in milliseconds. What must not cross a fork starts in each worker:
  database connections (the engine opens none in the master and a forked process drops the
  parent's pool, store/db.py), the metrics files (prometheus_client keys them by pid) and
  threads (the metrics flusher and the session sweep start in post_worker_init).
- control socket: gunicorn 25+ opens one at a fixed per-user path by default, so two
  instances under one user would fight over it; each instance gets its own, named after its
  bind address, under instance/ (KATO_CONTROL_SOCKET overrides it, "off" disables it).
- logs: KATO_LOG_FORMAT=json puts gunicorn's error and access loggers and the app's logger
  in one JSON-per-line format (kato_web/web/logs.py).
- No open API on the network by accident: without API keys, gunicorn refuses to bind a
  non-loopback address unless KATO_ALLOW_ANONYMOUS=1 (on_starting, kato_web/web/auth.py).
- Slow clients: a gthread worker reads a request's headers in one of its threads, so
  clients that trickle bytes can hold every thread. Production runs behind nginx
  (deploy/nginx.conf), which buffers whole requests before passing them on.
- Prometheus multiprocess mode: every worker writes its metrics to files in
  PROMETHEUS_MULTIPROC_DIR, so a scrape of any worker sees them all. When the variable
  is unset a private temporary directory is made here (and removed on exit); stale
  files are cleared on start, and a dead worker's live gauges are dropped.
"""
import glob
import os
import shutil
import tempfile
import time

# Must be in the environment before anything imports prometheus_client (it picks its
# value class at import), so before kato_web too.
_OWN_METRICS_DIR = not os.environ.get("PROMETHEUS_MULTIPROC_DIR")
if _OWN_METRICS_DIR:
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = tempfile.mkdtemp(prefix="kato-metrics-")
os.environ.setdefault("KATO_SERVER_STARTED_AT", repr(time.time()))

import sys  # noqa: E402

from kato_web.config import Config, ConfigError, unknown_variables  # noqa: E402

# Every KATO_* variable is checked here, in the master, before anything binds or forks: a bad
# value stops the start with one line naming it (no traceback, no worker boot loop).
try:
    _config = Config.from_env()
except ConfigError as _err:
    print(f"kato-web: configuration error: {_err}", file=sys.stderr, flush=True)
    sys.exit(2)
_server = _config.server
for _name in unknown_variables():
    print(f"kato-web: warning: {_name} is set but no setting reads it (a typo?)", file=sys.stderr, flush=True)

from kato_web.web import wire_errors  # noqa: E402

wire_errors.install()  # gunicorn's own 400/414/431 answers in JSON too

bind = _server.bind
workers = _server.workers
# gthread, or gthread that spreads new connections evenly over the workers (below).
worker_class = "kato_web.web.balanced_worker.BalancedThreadWorker" if _server.balance_connections else "gthread"
threads = _server.threads
keepalive = _server.keepalive
timeout = _server.timeout
graceful_timeout = _server.graceful_timeout
max_requests = _server.max_requests
max_requests_jitter = _server.max_requests_jitter
backlog = _server.backlog
preload_app = True
# Access lines come from the app (kato_web/api/monitoring.py: one JSON line per request
# with method, path, route, status, ms and trace id) when KATO_ACCESS_LOG=1; gunicorn's
# own access log stays off so a request is never logged twice.
accesslog = None
errorlog = "-"
loglevel = _server.log_level
if _config.log_format == "json":
    from kato_web.web.logs import gunicorn_logconfig  # noqa: E402

    logconfig_dict = gunicorn_logconfig("json", _server.log_level)


def _control_socket_path(bind: str) -> str | None:
    if _server.control_socket == "off":
        return None
    if _server.control_socket:
        return _server.control_socket
    from kato_web.config import INSTANCE_DIR

    name = "gunicorn-" + "".join(c if c.isalnum() or c in "-." else "_" for c in bind) + ".ctl"
    path = os.path.join(str(INSTANCE_DIR), name)
    if len(path) > 100:  # a Unix socket path is at most 107 bytes
        path = os.path.join(tempfile.gettempdir(), f"kato-{os.getuid()}-{name}")
    return path


_control = _control_socket_path(bind)
if _control is None:
    control_socket_disable = True
else:
    os.makedirs(os.path.dirname(_control), exist_ok=True)
    control_socket = _control


def on_starting(server):
    # Before any socket is bound: an open API on a non-loopback address must be meant.
    from kato_web.web.auth import anonymous_bind_refusal

    refusal = anonymous_bind_refusal(_config, list(server.cfg.bind))
    if refusal:
        sys.exit(refusal)
    metrics_dir = os.environ["PROMETHEUS_MULTIPROC_DIR"]
    os.makedirs(metrics_dir, exist_ok=True)
    # Files left by an earlier run would be added to this run's counts.
    for path in glob.glob(os.path.join(metrics_dir, "*.db")):
        os.remove(path)
    os.environ["KATO_SERVER_STARTED_AT"] = repr(time.time())


def pre_fork(server, worker):
    # In the master, before each fork: the worker's entry in the connection table.
    if _server.balance_connections:
        from kato_web.web import balanced_worker

        balanced_worker.assign_slot(worker, server.WORKERS.values())


def post_worker_init(worker):
    # In the worker, after the fork and after the (preloaded) app is in place.
    from kato_web import start_worker

    start_worker(worker.wsgi)


def worker_exit(server, worker):
    # Push the last second's figures to the shared files before the worker goes.
    try:
        from kato_web.services import monitoring

        monitoring.flush()
    except Exception:
        pass


def child_exit(server, worker):
    from prometheus_client import multiprocess

    multiprocess.mark_process_dead(worker.pid)


def on_exit(server):
    if _OWN_METRICS_DIR:
        shutil.rmtree(os.environ["PROMETHEUS_MULTIPROC_DIR"], ignore_errors=True)
