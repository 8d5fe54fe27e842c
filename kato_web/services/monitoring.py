"""Metrics for monitoring (api.md §7.6), aggregated across gunicorn workers.

Every figure lives in one prometheus_client registry. Under gunicorn, each worker
writes its values to memory-mapped files in PROMETHEUS_MULTIPROC_DIR
(gunicorn.conf.py sets it up) and a scrape served by any worker reads all of them,
so counts include every worker. The JSON views of KATO's monitoring endpoints are
derived from the same registry.

The hot path never touches the mapped files: a request adds its figures to plain
per-process dictionaries under one lock (about 1 µs), and a daemon thread flushes
them into the registry every `FLUSH_SECONDS` (a scrape also flushes its own worker
first). A worker's figures therefore reach the other workers' scrapes within that
interval. A multiprocess write costs 2.5–5 µs each, and a request would need ten.
"""
from __future__ import annotations

import os
import threading
import time
from bisect import bisect_left
from collections import deque
from datetime import datetime, timezone

from prometheus_client import (CollectorRegistry, Counter, Gauge, Histogram, disable_created_metrics,
                               generate_latest)
from prometheus_client.core import GaugeMetricFamily

MULTIPROCESS = bool(os.environ.get("PROMETHEUS_MULTIPROC_DIR"))
FLUSH_SECONDS = 1.0  # Config.metrics_flush_seconds (KATO_METRICS_FLUSH_SECONDS) via set_flush_interval
# The classic text format: what every Prometheus version and prometheus_client's own
# parser read (generate_latest writes it; 0.26 merely labels it version=1.0.0).
PROMETHEUS_CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"

# `_created` series exist only in single-process mode; leave them out so both modes
# expose the same series.
disable_created_metrics()

LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
                   float("inf"))
PREDICTION_BUCKETS = (0, 1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 10000, float("inf"))
UNMATCHED = "<unmatched>"  # the endpoint label of a request no route matched (never the raw path)

_registry = CollectorRegistry(auto_describe=False)

REQUESTS = Counter("kato_http_requests_total", "HTTP requests answered, by route, method and status.",
                   ["endpoint", "method", "status"], registry=_registry)
LATENCY = Histogram("kato_http_request_duration_seconds", "Time to produce a response, by route.",
                    ["endpoint", "method"], buckets=LATENCY_BUCKETS, registry=_registry)
OPERATIONS = Counter("kato_operations_total",
                     "KATO operations: observations processed, patterns learned, prediction calls.",
                     ["operation"], registry=_registry)
PREDICTIONS = Histogram("kato_predictions_per_call", "Predictions returned by one prediction computation.",
                        buckets=PREDICTION_BUCKETS, registry=_registry)
KNOWLEDGE = Counter("kato_knowledge_cache_total",
                    "Uses of a worker's in-memory node knowledge: hit (unchanged), refresh "
                    "(newer rows read), reload (built from scratch).", ["result"], registry=_registry)
CACHED_PATTERNS = Gauge("kato_knowledge_cache_patterns", "Patterns held in the workers' node caches.",
                        multiprocess_mode="livesum", registry=_registry)
CACHED_SYMBOLS = Gauge("kato_knowledge_cache_symbols", "Symbols held in the workers' node caches.",
                       multiprocess_mode="livesum", registry=_registry)
IN_FLIGHT = Gauge("kato_http_requests_in_flight", "Requests being served (sampled at each flush).",
                  multiprocess_mode="livesum", registry=_registry)
PEAK_IN_FLIGHT = Gauge("kato_http_requests_in_flight_peak", "Most requests one worker served at once.",
                       multiprocess_mode="livemax", registry=_registry)
POOL_CHECKED_OUT = Gauge("kato_db_pool_checked_out", "Database connections checked out of the pools.",
                         multiprocess_mode="livesum", registry=_registry)
POOL_CAPACITY = Gauge("kato_db_pool_capacity", "Connections the pools may open (size + overflow).",
                      multiprocess_mode="livesum", registry=_registry)
INDEX_CACHE = Counter("kato_index_cache_total",
                      "Node index lookups in the workers' bounded caches: hit (held), miss (loaded), "
                      "eviction (dropped, least recently used, to stay within KATO_INDEX_MEMORY_MB).",
                      ["result"], registry=_registry)
INDEX_BYTES = Gauge("kato_index_cache_bytes", "Estimated bytes held by the workers' node indexes.",
                    multiprocess_mode="livesum", registry=_registry)
INDEX_BYTES_MAX = Gauge("kato_index_cache_bytes_worker_max",
                        "Estimated bytes held by the node indexes of the fullest worker.",
                        multiprocess_mode="livemax", registry=_registry)
INDEX_BUDGET = Gauge("kato_index_cache_budget_bytes", "Each worker's index budget (0: unbounded).",
                     multiprocess_mode="livemax", registry=_registry)
# Set when a worker starts (not on its first request), so idle workers are counted too.
WORKERS = Gauge("kato_workers", "Live worker processes.", multiprocess_mode="livesum", registry=_registry)
# "max": a process that never set it (the master, a worker before it starts) holds 0, which
# "min" would report; every worker sets the same value, the time the master started.
STARTED = Gauge("kato_start_time_seconds", "Unix time the server started.", multiprocess_mode="max",
                registry=_registry)
CPU = Gauge("kato_cpu_usage_percent", "Machine CPU use over the last flush interval.",
            multiprocess_mode="livemax", registry=_registry)

_OPERATION_NAMES = ("observations", "patterns_learned", "prediction_calls")


class _Recorder:
    """This process's not-yet-flushed figures."""

    def __init__(self):
        self.lock = threading.Lock()
        self.pid = os.getpid()
        self.started = False
        self.in_flight = 0
        self.peak = 0
        self.pool = None  # the SQLAlchemy pool whose use is sampled at each flush
        self.cached: dict[str, tuple[int, int]] = {}
        self.index_bytes = 0
        self.index_budget = 0
        self._fresh()

    def _fresh(self):
        self.requests: dict[tuple, int] = {}
        self.latency: dict[tuple, list] = {}
        self.operations: dict[str, int] = {}
        self.predictions = [0.0, [0] * len(PREDICTION_BUCKETS)]
        self.knowledge: dict[str, int] = {}
        self.index_cache: dict[str, int] = {}

    def take(self):
        """Return the pending figures and start new ones (call with the lock held)."""
        taken = (self.requests, self.latency, self.operations, self.predictions, self.knowledge,
                 self.index_cache)
        self._fresh()
        return taken


_rec = _Recorder()
_flush_lock = threading.Lock()
_history: deque = deque(maxlen=720)  # this worker's snapshots for /stats, one per ≥ 5 s


def _after_fork() -> None:
    # A forked child starts with nothing pending and its own lock and flusher; it keeps watching
    # the pool the app registered (the app may be built before the fork: gunicorn's preload).
    global _rec
    pool = _rec.pool
    _rec = _Recorder()
    _rec.pool = pool


os.register_at_fork(after_in_child=_after_fork)


def set_flush_interval(seconds: float) -> None:
    """Set how often each worker moves its pending figures into the shared registry."""
    global FLUSH_SECONDS
    FLUSH_SECONDS = max(float(seconds), 0.05)


def worker_started() -> None:
    """Count this process as a live worker now, and start its flusher (gunicorn's
    post_worker_init; otherwise the first request does it)."""
    if not _rec.started:
        _start_flusher()


def _start_flusher() -> None:
    rec = _rec
    with rec.lock:
        if rec.started:
            return
        rec.started = True
    STARTED.set(float(os.environ.get("KATO_SERVER_STARTED_AT") or time.time()))
    WORKERS.set(1)
    thread = threading.Thread(target=_flush_forever, name="kato-metrics-flush", daemon=True)
    thread.start()


def _flush_forever() -> None:
    import psutil

    psutil.cpu_percent(interval=None)  # starts the measurement interval
    while True:
        time.sleep(FLUSH_SECONDS)
        try:
            CPU.set(psutil.cpu_percent(interval=None))
            flush()
        except Exception:  # a metrics failure must never take the worker down
            pass


# ---------------------------------------------------------------- hot path

def request_started() -> float:
    """Count a request in flight; return its start time."""
    rec = _rec
    if not rec.started:
        _start_flusher()
    with rec.lock:
        rec.in_flight += 1
        if rec.in_flight > rec.peak:
            rec.peak = rec.in_flight
    return time.perf_counter()


def request_finished(started: float, endpoint: str, method: str, status: int) -> float:
    """Record one answered request; return its duration in seconds."""
    seconds = time.perf_counter() - started
    bucket = bisect_left(LATENCY_BUCKETS, seconds)
    rec = _rec
    with rec.lock:
        rec.in_flight -= 1
        key = (endpoint, method, status)
        rec.requests[key] = rec.requests.get(key, 0) + 1
        lat = rec.latency.get((endpoint, method))
        if lat is None:
            lat = rec.latency[(endpoint, method)] = [0.0, [0] * len(LATENCY_BUCKETS)]
        lat[0] += seconds
        lat[1][bucket] += 1
    return seconds


def count(operation: str, amount: int = 1) -> None:
    """Count KATO operations: observations, patterns_learned."""
    rec = _rec
    with rec.lock:
        rec.operations[operation] = rec.operations.get(operation, 0) + amount


def predictions_computed(n: int) -> None:
    """Record one prediction computation that returned `n` predictions."""
    rec = _rec
    bucket = bisect_left(PREDICTION_BUCKETS, n)
    with rec.lock:
        rec.operations["prediction_calls"] = rec.operations.get("prediction_calls", 0) + 1
        rec.predictions[0] += n
        rec.predictions[1][bucket] += 1


def knowledge_used(result: str, kb_id: str | None = None, patterns: int = 0, symbols: int = 0) -> None:
    """Record a use of a worker's node knowledge ('hit', 'refresh', 'reload') and its size."""
    rec = _rec
    with rec.lock:
        rec.knowledge[result] = rec.knowledge.get(result, 0) + 1
        if kb_id is not None and result != "hit":
            rec.cached[kb_id] = (patterns, symbols)


def index_cache_used(hit: bool) -> None:
    rec = _rec
    key = "hit" if hit else "miss"
    with rec.lock:
        rec.index_cache[key] = rec.index_cache.get(key, 0) + 1


def index_cache_state(total_bytes: int, budget_bytes: int, evictions: int = 0) -> None:
    """Record this worker's index bytes and budget after a load or eviction."""
    rec = _rec
    with rec.lock:
        rec.index_bytes, rec.index_budget = total_bytes, budget_bytes
        if evictions:
            rec.index_cache["eviction"] = rec.index_cache.get("eviction", 0) + evictions


def knowledge_forgotten(kb_id: str | None = None) -> None:
    with _rec.lock:
        if kb_id is None:
            _rec.cached.clear()
        else:
            _rec.cached.pop(kb_id, None)


def watch_pool(pool) -> None:
    """Sample this SQLAlchemy pool's use at each flush (no per-checkout cost)."""
    _rec.pool = pool


# ---------------------------------------------------------------- flush and collect

def _add_histogram(child, total: float, buckets: list[int]) -> None:
    # prometheus_client has no batch observe; its child keeps one value per bucket
    # (non-cumulative) plus a sum, which is what observe() increments (pinned 0.26.0;
    # tests/integration/test_monitoring.py checks this matches observe()).
    for i, n in enumerate(buckets):
        if n:
            child._buckets[i].inc(n)
    child._sum.inc(total)


def flush() -> None:
    """Move this process's pending figures into the (multiprocess) registry."""
    rec = _rec
    with _flush_lock:
        with rec.lock:
            requests, latency, operations, predictions, knowledge, index_cache = rec.take()
            in_flight, peak = rec.in_flight, rec.peak
            index_bytes, index_budget = rec.index_bytes, rec.index_budget
            cached_patterns = sum(p for p, _s in rec.cached.values())
            cached_symbols = sum(s for _p, s in rec.cached.values())
        for (endpoint, method, status), n in requests.items():
            REQUESTS.labels(endpoint, method, str(status)).inc(n)
        for (endpoint, method), (total, buckets) in latency.items():
            _add_histogram(LATENCY.labels(endpoint, method), total, buckets)
        for name, n in operations.items():
            OPERATIONS.labels(name).inc(n)
        if any(predictions[1]):
            _add_histogram(PREDICTIONS, predictions[0], predictions[1])
        for result, n in knowledge.items():
            KNOWLEDGE.labels(result).inc(n)
        for result, n in index_cache.items():
            INDEX_CACHE.labels(result).inc(n)
        INDEX_BYTES.set(index_bytes)
        INDEX_BYTES_MAX.set(index_bytes)
        INDEX_BUDGET.set(index_budget)
        CACHED_PATTERNS.set(cached_patterns)
        CACHED_SYMBOLS.set(cached_symbols)
        IN_FLIGHT.set(in_flight)
        PEAK_IN_FLIGHT.set(peak)
        pool = rec.pool
        if pool is not None:
            POOL_CHECKED_OUT.set(pool.checkedout())
            POOL_CAPACITY.set(pool.size() + max(getattr(pool, "_max_overflow", 0), 0))


class _NodePatterns:
    """Patterns per node, read from the nodes table at scrape time."""

    def __init__(self, ctx):
        self.ctx = ctx

    def collect(self):
        from kato_web.store import repositories as repo

        family = GaugeMetricFamily("kato_node_patterns", "Unique patterns learned by each node.",
                                   labels=["node"])
        try:
            with self.ctx.db.transaction(write=False) as conn:
                nodes = repo.list_nodes(conn)
        except Exception:  # a scrape reports what it can
            nodes = []
        for node in nodes:
            family.add_metric([node["kb_id"]], float(node["total_unique_patterns"]))
        yield family


class _SessionSweep:
    """The session sweep's figures for the whole service, read from its maintenance row."""

    def __init__(self, ctx):
        self.ctx = ctx

    def collect(self):
        row = sweep_figures(self.ctx)
        deleted = GaugeMetricFamily("kato_session_sweep_deleted_total",
                                    "Expired sessions deleted by the sweep (all workers, all time).")
        deleted.add_metric([], float(row["total_deleted"]))
        last = GaugeMetricFamily("kato_session_sweep_last_deleted", "Sessions deleted by the last sweep.")
        last.add_metric([], float(row["last_deleted"]))
        when = GaugeMetricFamily("kato_session_sweep_last_run_timestamp_seconds",
                                 "Unix time the last session sweep finished (0: never).")
        when.add_metric([], float(row["last_run_at"] or 0.0))
        yield from (deleted, last, when)


def sweep_figures(ctx) -> dict:
    """{last_run_at, last_deleted, total_deleted} of the session sweep (zeros if never run)."""
    from kato_web.services import sweep

    try:
        row = sweep.last_run(ctx.db) or {}
    except Exception:  # a scrape reports what it can
        row = {}
    return {"last_run_at": row.get("last_run_at"), "last_deleted": int(row.get("last_count") or 0),
            "total_deleted": int(row.get("total_count") or 0)}


class _Scrape:
    def __init__(self, sources):
        self.sources = sources

    def collect(self):
        for source in self.sources:
            yield from source.collect()


def _source():
    if MULTIPROCESS:
        from prometheus_client import multiprocess

        registry = CollectorRegistry(auto_describe=False)
        multiprocess.MultiProcessCollector(registry)
        return registry
    return _registry


def prometheus_text(ctx) -> bytes:
    """Return every metric, all workers aggregated, in Prometheus text format 0.0.4."""
    if not _rec.started:
        _start_flusher()
    flush()
    return generate_latest(_Scrape([_source(), _NodePatterns(ctx), _SessionSweep(ctx)]))


def samples() -> dict[str, list]:
    """Return {sample name: [(labels, value), …]} for every metric, all workers aggregated."""
    if not _rec.started:
        _start_flusher()
    flush()
    out: dict[str, list] = {}
    for family in _source().collect():
        for s in family.samples:
            out.setdefault(s.name, []).append((s.labels, s.value))
    return out


# ---------------------------------------------------------------- KATO's JSON views

def _sum(values, name, where=lambda labels: True) -> float:
    return sum(v for labels, v in values.get(name, ()) if where(labels))


def _resources(values) -> dict:
    import psutil

    cpu = max((v for _labels, v in values.get("kato_cpu_usage_percent", ())), default=0.0)
    return {"cpu_percent": float(cpu),
            "memory_percent": float(psutil.virtual_memory().percent),
            "disk_percent": float(psutil.disk_usage("/").percent)}


def _started_at(values, ctx) -> float:
    starts = [v for _labels, v in values.get("kato_start_time_seconds", ()) if v > 0]
    return min(starts) if starts else ctx.started_at


def _is_session_route(labels) -> bool:
    return labels.get("endpoint", "").startswith("/sessions/<session_id>")


def _totals(values) -> dict:
    requests = _sum(values, "kato_http_requests_total")
    errors = _sum(values, "kato_http_requests_total", lambda l: l.get("status", "").startswith("5"))
    latency_sum = _sum(values, "kato_http_request_duration_seconds_sum")
    latency_count = _sum(values, "kato_http_request_duration_seconds_count")
    ok = lambda route, method: (lambda l: l.get("endpoint") == route and l.get("method") == method  # noqa: E731
                                and l.get("status") == "200")
    return {
        "requests": requests, "errors": errors,
        "average_response_time": latency_sum / latency_count if latency_count else 0.0,
        "sessions_created": _sum(values, "kato_http_requests_total", ok("/sessions", "POST")),
        "sessions_deleted": _sum(values, "kato_http_requests_total", ok("/sessions/<session_id>", "DELETE")),
        "session_operations": _sum(values, "kato_http_requests_total", _is_session_route),
    }


def _processors(ctx) -> dict:
    from kato_web.services import health

    try:
        return health.status(ctx)["processors"]
    except Exception:
        return {"total_processors": 0, "max_processors": None, "processors": []}


def _active_sessions(ctx) -> int:
    from kato_web.store import repositories as repo

    try:
        with ctx.db.transaction(write=False) as conn:
            return repo.count_live_sessions(conn, ctx.clock())
    except Exception:
        return 0


def _database_section(ctx, values) -> dict:
    empty = {"operations": 0, "errors": 0, "avg_response_time": 0.0}
    # KATO's three stores do not exist here; the keys stay for its clients, zeroed.
    section = {"mongodb": dict(empty), "qdrant": dict(empty), "redis": dict(empty)}
    # kato-web's one store: its connection pools, all workers summed.
    section[ctx.db.engine.dialect.name] = {
        "pool_checked_out": int(_sum(values, "kato_db_pool_checked_out")),
        "pool_capacity": int(_sum(values, "kato_db_pool_capacity")),
    }
    return section


def summary(ctx) -> dict:
    """Return GET /metrics as JSON (api.md §7.6)."""
    values = samples()
    totals = _totals(values)
    now = time.time()
    uptime = max(now - _started_at(values, ctx), 1e-6)
    return {
        "timestamp": now,
        "sessions": {"total_created": int(totals["sessions_created"]),
                     "total_deleted": int(totals["sessions_deleted"]),
                     "active": _active_sessions(ctx),
                     "operations_total": int(totals["session_operations"])},
        "performance": {"total_requests": int(totals["requests"]), "total_errors": int(totals["errors"]),
                        "error_rate": totals["errors"] / totals["requests"] if totals["requests"] else 0.0,
                        "average_response_time": totals["average_response_time"]},
        "resources": _resources(values),
        "databases": _database_section(ctx, values),
        "processor_manager": _processors(ctx),
        "rates": {"requests_per_second": totals["requests"] / uptime,
                  "requests_per_minute": totals["requests"] / uptime * 60.0},
        "operations": {name: int(_sum(values, "kato_operations_total", lambda l, n=name: l["operation"] == n))
                       for name in _OPERATION_NAMES},
        "uptime_seconds": uptime,
        # kato-web's own sections (KATO clients ignore keys they do not know).
        "session_sweep": sweep_figures(ctx),
        "index_cache": index_cache_figures(values),
    }


def index_cache_figures(values) -> dict:
    """The workers' bounded node-index caches: lookups, evictions and bytes (all workers)."""
    by = {r: int(_sum(values, "kato_index_cache_total", lambda l, r=r: l["result"] == r))
          for r in ("hit", "miss", "eviction")}
    return {"hits": by["hit"], "misses": by["miss"], "evictions": by["eviction"],
            "bytes": int(_sum(values, "kato_index_cache_bytes")),
            "bytes_worker_max": int(max((v for _l, v in values.get("kato_index_cache_bytes_worker_max", ())),
                                        default=0)),
            "budget_bytes_per_worker": int(max((v for _l, v in values.get("kato_index_cache_budget_bytes", ())),
                                               default=0))}


# /stats keys, exactly KATO's (api.md §7.6); KATO's three stores have no series here.
TIME_SERIES_KEYS = (
    "kato_cpu_usage_percent", "kato_memory_usage_percent", "kato_memory_usage_bytes",
    "kato_disk_usage_percent", "load_average_1m", "kato_requests_total", "kato_request_duration_seconds",
    "kato_errors_total", "sessions_created", "sessions_deleted", "session_operations",
    "mongodb_operations", "mongodb_response_time", "mongodb_errors", "qdrant_operations",
    "qdrant_response_time", "qdrant_errors", "redis_operations", "redis_response_time", "redis_errors",
)


def _snapshot() -> tuple[float, dict]:
    import psutil

    values = samples()
    totals = _totals(values)
    memory = psutil.virtual_memory()
    point = {
        "kato_cpu_usage_percent": _resources(values)["cpu_percent"],
        "kato_memory_usage_percent": float(memory.percent),
        "kato_memory_usage_bytes": float(memory.used),
        "kato_disk_usage_percent": float(psutil.disk_usage("/").percent),
        "load_average_1m": float(os.getloadavg()[0]),
        "kato_requests_total": totals["requests"],
        "kato_request_duration_seconds": totals["average_response_time"],
        "kato_errors_total": totals["errors"],
        "sessions_created": totals["sessions_created"],
        "sessions_deleted": totals["sessions_deleted"],
        "session_operations": totals["session_operations"],
    }
    return time.time(), point


def series(window_seconds: float) -> dict[str, list]:
    """Return KATO's time series over the last `window_seconds` (this worker's snapshots + now)."""
    now, point = _snapshot()
    if not _history or now - _history[-1][0] >= 5.0:
        _history.append((now, point))
    since = now - window_seconds
    points = [p for p in _history if p[0] >= since]
    if not points or points[-1][0] != now:
        points.append((now, point))
    return {key: [{"timestamp": ts, "value": values[key], "labels": {}} for ts, values in points
                  if key in values] for key in TIME_SERIES_KEYS}


def stats(ctx, minutes: int) -> dict:
    """Return GET /stats?minutes= (api.md §7.6)."""
    summary_body = summary(ctx)
    cpu, memory = summary_body["resources"]["cpu_percent"], summary_body["resources"]["memory_percent"]
    uptime = summary_body["uptime_seconds"]
    errors_per_second = summary_body["performance"]["total_errors"] / uptime
    issues = []
    if cpu > 80:
        issues.append(f"High CPU usage: {cpu:.1f}%")
    if memory > 90:
        issues.append(f"High memory usage: {memory:.1f}%")
    if errors_per_second > 10:
        issues.append(f"High error rate: {errors_per_second:.1f}/s")
    status = "unhealthy" if memory > 90 else ("degraded" if issues else "healthy")
    return {
        "time_range_minutes": minutes, "timestamp": time.time(),
        "processor_manager": summary_body["processor_manager"],
        "current_status": {"status": status, "issues": issues,
                           "metrics": {"cpu_percent": cpu, "memory_percent": memory,
                                       "error_rate_per_min": errors_per_second},
                           "timestamp": time.time()},
        "time_series": series(minutes * 60),
        "summary": {key: summary_body[key] for key in ("sessions", "performance", "resources", "databases")},
    }


def metric_series(name: str, minutes: int) -> dict | None:
    """Return GET /metrics/{name} over `minutes` minutes, or None when there is no data."""
    # KATO passes the minutes as seconds (api.md §7.6); kato-web uses the window it documents.
    points = series(minutes * 60).get(name)
    if not points:
        return None
    values = [p["value"] for p in points]
    return {"metric_name": name, "time_range_minutes": minutes, "timestamp": time.time(),
            "statistics": {"count": len(values), "min": min(values), "max": max(values),
                           "avg": sum(values) / len(values)},
            "data_points": points}


def _iso_now() -> str:
    return datetime.now(timezone.utc).isoformat()


def cache_stats(ctx) -> dict:
    """Return GET /cache/stats: the workers' node-knowledge caches (api.md §7.6)."""
    values = samples()
    by_result = {r: _sum(values, "kato_knowledge_cache_total", lambda l, r=r: l["result"] == r)
                 for r in ("hit", "refresh", "reload")}
    uses = sum(by_result.values())
    uptime = max(time.time() - _started_at(values, ctx), 1e-6)
    performance = {
        "hit_rate_percent": 100.0 * by_result["hit"] / uses if uses else 0.0,
        "cache_hits": int(by_result["hit"]), "cache_misses": int(by_result["refresh"] + by_result["reload"]),
        "patterns_in_cache": int(_sum(values, "kato_knowledge_cache_patterns")),
        "symbols_in_cache": int(_sum(values, "kato_knowledge_cache_symbols")),
        "patterns_cached_total": int(_sum(values, "kato_knowledge_cache_patterns")),
        "symbols_cached_total": int(_sum(values, "kato_knowledge_cache_symbols")),
        "redis_memory_used_mb": 0.0, "uptime_seconds": uptime,
        "requests_per_second": _sum(values, "kato_http_requests_total") / uptime,
    }
    # The only caches are each worker's in-memory node copies (services/knowledge.py): there is
    # no Redis behind them, so none is reported connected.
    health = {"status": "healthy", "redis_connected": False,
              "cache_stats": {"backend": "worker-memory", "refreshes": int(by_result["refresh"]),
                              "reloads": int(by_result["reload"]),
                              "workers": int(_sum(values, "kato_workers")) or 1}}
    return {"cache_performance": performance, "cache_health": health, "timestamp": _iso_now()}


def concurrency(ctx) -> dict:
    """Return GET /concurrency: requests in flight against gunicorn's capacity."""
    values = samples()
    server = ctx.config.server
    capacity = max(server.workers * server.threads, 1)
    current = int(_sum(values, "kato_http_requests_in_flight"))
    current = max(current, 1)  # this very request is in flight
    peak = int(max((v for _l, v in values.get("kato_http_requests_in_flight_peak", ())), default=current))
    warning, critical = 80, 95
    utilisation = 100.0 * current / capacity
    status = "critical" if utilisation >= critical else ("warning" if utilisation >= warning else "healthy")
    recommendations = []
    if status != "healthy":
        recommendations.append({"level": status,
                                "message": "Requests are queueing: add workers or threads (KATO_WORKERS, "
                                           "KATO_THREADS) or scale out."})
    else:
        recommendations.append({"level": "info", "message": "Concurrency is within limits."})
    return {
        "status": status,
        "current": {"concurrent_requests": current, "utilization_percent": utilisation},
        "peak": {"concurrent_requests": peak, "utilization_percent": 100.0 * peak / capacity},
        "limits": {"per_worker": server.threads, "warning_threshold": warning,
                   "critical_threshold": critical, "total_capacity": capacity},
        "configuration": {"workers": server.workers, "threads": server.threads, "backlog": server.backlog,
                          "max_requests": server.max_requests},
        "recommendations": recommendations,
        "timestamp": _iso_now(),
    }


def distributed_stm_stats() -> dict:
    """Return KATO's disabled body: STM lives in the database, shared by every worker."""
    return {"status": "disabled", "distributed_stm_enabled": False,
            "reason": "No processors with distributed STM available",
            "processor_info": {"total_active_processors": 0}, "timestamp": _iso_now()}


def connection_pools(ctx) -> dict:
    """Return GET /connection-pools from this worker's pool and the aggregated pool gauges."""
    values = samples()
    pool = ctx.db.engine.pool
    checked_out = int(_sum(values, "kato_db_pool_checked_out"))
    capacity = int(_sum(values, "kato_db_pool_capacity"))
    status = "healthy" if not capacity or checked_out < capacity else "degraded"
    return {
        "status": status,
        "health": {"database": ctx.db.engine.dialect.name, "pool_exhausted": status == "degraded"},
        "pool_statistics": {
            "all_workers": {"checked_out": checked_out, "capacity": capacity},
            "this_worker": {"pid": os.getpid(), "size": pool.size(), "checked_out": pool.checkedout(),
                            "checked_in": pool.checkedin() if hasattr(pool, "checkedin") else 0,
                            "overflow": pool.overflow() if hasattr(pool, "overflow") else 0,
                            "status": pool.status()},
        },
        "connection_optimization": {"pool_per_worker": True, "pool_pre_ping": not ctx.db.sqlite,
                                    "pool_size_follows_threads": True},
        "performance_improvements": {"keep_alive": True, "gzip_responses": True,
                                     "metrics_batched_per_worker": True},
        "timestamp": _iso_now(),
    }
