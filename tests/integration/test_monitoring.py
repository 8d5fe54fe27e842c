"""Monitoring endpoints (api.md §7.6), Prometheus exposition and request logs."""
from __future__ import annotations

import json
import logging

import pytest
from prometheus_client import CollectorRegistry, Histogram
from prometheus_client.parser import text_string_to_metric_families

from kato_web.api.monitoring import wants_prometheus
from kato_web.services import monitoring

SCRAPER_ACCEPT = "application/openmetrics-text;version=1.0.0,text/plain;version=0.0.4;q=0.5,*/*;q=0.1"
OBSERVE_ROUTE = "/sessions/<session_id>/observe"


def scrape(client) -> dict:
    """Return {(sample name, frozenset(labels)): value} from a scraper-style GET /metrics."""
    resp = client.get("/metrics", headers={"Accept": SCRAPER_ACCEPT})
    assert resp.status_code == 200
    assert resp.headers["Content-Type"].startswith("text/plain; version=0.0.4")
    out = {}
    for family in text_string_to_metric_families(resp.get_data(as_text=True)):
        for s in family.samples:
            out[(s.name, frozenset(s.labels.items()))] = s.value
    return out


def value(samples: dict, name: str, **labels) -> float:
    return samples.get((name, frozenset(labels.items())), 0.0)


def teach(client, sid, sequences):
    for events in sequences:
        for event in events:
            assert client.post(f"/sessions/{sid}/observe", json={"strings": event}).status_code == 200
        assert client.post(f"/sessions/{sid}/learn").status_code == 200


@pytest.mark.parametrize("accept, expected", [
    (SCRAPER_ACCEPT, True),
    # Prometheus 3's default scrape header.
    ("application/openmetrics-text;version=1.0.0;escaping=underscores,application/openmetrics-text;"
     "version=0.0.1;q=0.9,text/plain;version=1.0.0;escaping=underscores;q=0.8,text/plain;version=0.0.4;"
     "q=0.7,*/*;q=0.6", True),
    ("text/plain", True),
    ("text/plain;version=0.0.4;q=0.5,*/*;q=0.1", True),
    ("*/*", False),
    ("application/json", False),
    (None, False),
    ("application/json, text/plain, */*", False),  # axios-style: a tie goes to JSON
    ("text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8", False),  # a browser
])
def test_negotiation(accept, expected):
    assert wants_prometheus(accept) is expected


def test_format_parameter_forces_prometheus(client):
    resp = client.get("/metrics?format=prometheus", headers={"Accept": "application/json"})
    assert resp.headers["Content-Type"].startswith("text/plain")
    assert "kato_http_requests_total" in resp.get_data(as_text=True)


@pytest.mark.parametrize("accept", [None, "*/*", "application/json"])
def test_plain_request_gets_katos_json(client, new_session, accept):
    sid = new_session()
    client.post(f"/sessions/{sid}/observe", json={"strings": ["a"]})
    headers = {"Accept": accept} if accept else {}
    before = client.get("/metrics", headers=headers).get_json()
    assert {"timestamp", "sessions", "performance", "resources", "databases", "rates",
            "processor_manager"} <= set(before)
    assert {"total_created", "total_deleted", "active", "operations_total"} <= set(before["sessions"])
    assert {"total_requests", "total_errors", "error_rate", "average_response_time"} <= set(before["performance"])
    assert {"total_processors", "processors"} <= set(before["processor_manager"])
    assert {"requests_per_second", "requests_per_minute"} <= set(before["rates"])
    for key in ("cpu_percent", "memory_percent", "disk_percent"):
        assert 0.0 <= before["resources"][key] <= 100.0
    assert before["performance"]["average_response_time"] > 0
    assert before["sessions"]["active"] >= 1
    # KATO's three stores stay as zeroed keys for its clients; kato-web's own store shows its pools
    dialect = client.application.extensions["kato"].db.engine.dialect.name
    assert {"mongodb", "qdrant", "redis", dialect} <= set(before["databases"])
    assert before["databases"]["mongodb"] == {"operations": 0, "errors": 0, "avg_response_time": 0.0}
    assert before["databases"][dialect]["pool_capacity"] > 0
    for _ in range(3):
        client.get("/health")
    after = client.get("/metrics", headers=headers).get_json()
    # the three /health calls and the first /metrics call have been counted since
    assert after["performance"]["total_requests"] >= before["performance"]["total_requests"] + 4


def test_scrape_counts_requests_by_route_not_path(client, new_session):
    sid = new_session()
    before = scrape(client)
    for i in range(7):
        assert client.post(f"/sessions/{sid}/observe", json={"strings": [f"s{i}"]}).status_code == 200
    client.get("/no/such/route")
    resp = client.get("/metrics", headers={"Accept": SCRAPER_ACCEPT})
    text = resp.get_data(as_text=True)
    after = scrape(client)
    assert sid not in text  # raw paths would make one series per session
    key = dict(endpoint=OBSERVE_ROUTE, method="POST", status="200")
    assert value(after, "kato_http_requests_total", **key) - value(before, "kato_http_requests_total", **key) == 7
    count = "kato_http_request_duration_seconds_count"
    assert value(after, count, endpoint=OBSERVE_ROUTE, method="POST") - \
        value(before, count, endpoint=OBSERVE_ROUTE, method="POST") == 7
    unmatched = dict(endpoint=monitoring.UNMATCHED, method="GET", status="404")
    assert value(after, "kato_http_requests_total", **unmatched) > value(before, "kato_http_requests_total",
                                                                           **unmatched)


def test_operation_counters_and_predictions_histogram(client, new_session):
    sid = new_session("counted")
    before = scrape(client)
    teach(client, sid, [[["a", "b"], ["c"]], [["a"], ["b", "d"]]])  # 4 observations, 2 learns
    client.post(f"/sessions/{sid}/observe", json={"strings": ["a", "b"]})
    predictions = client.get(f"/sessions/{sid}/predictions").get_json()
    assert predictions["count"] > 0
    after = scrape(client)
    delta = lambda name, **l: value(after, name, **l) - value(before, name, **l)  # noqa: E731
    assert delta("kato_operations_total", operation="observations") == 5
    assert delta("kato_operations_total", operation="patterns_learned") == 2
    assert delta("kato_operations_total", operation="prediction_calls") == 1
    assert delta("kato_predictions_per_call_count") == 1
    assert delta("kato_predictions_per_call_sum") == predictions["count"]
    # the patterns-per-node gauge is read from the nodes table at scrape time
    assert value(after, "kato_node_patterns", node="counted_kato") == 2


def test_pool_gauges(client, kato):
    samples = scrape(client)
    pool = kato.db.engine.pool
    assert value(samples, "kato_db_pool_capacity") == pool.size() + pool._max_overflow
    assert value(samples, "kato_db_pool_checked_out") >= 0


def test_pool_follows_threads():
    from kato_web.config import Config

    import os
    saved = {k: os.environ.get(k) for k in ("KATO_THREADS", "KATO_DB_POOL_SIZE", "KATO_DB_MAX_OVERFLOW")}
    try:
        os.environ["KATO_THREADS"] = "7"
        os.environ.pop("KATO_DB_POOL_SIZE", None)
        os.environ.pop("KATO_DB_MAX_OVERFLOW", None)
        config = Config.from_env()
        assert (config.db_pool_size, config.db_max_overflow) == (7, 7)
        os.environ["KATO_DB_POOL_SIZE"] = "3"
        assert Config.from_env().db_pool_size == 3  # an explicit size still wins
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def test_batched_histogram_equals_observe():
    # The flush adds pending buckets through prometheus_client internals; this pins that
    # the result is exactly what observe() would have produced.
    observed_values = [0.0004, 0.003, 0.003, 0.07, 2.0, 30.0]
    reg_a, reg_b = CollectorRegistry(), CollectorRegistry()
    direct = Histogram("t_seconds", "t", buckets=monitoring.LATENCY_BUCKETS, registry=reg_a)
    batched = Histogram("t_seconds", "t", buckets=monitoring.LATENCY_BUCKETS, registry=reg_b)
    pending = [0] * len(monitoring.LATENCY_BUCKETS)
    for v in observed_values:
        direct.observe(v)
        from bisect import bisect_left
        pending[bisect_left(monitoring.LATENCY_BUCKETS, v)] += 1
    monitoring._add_histogram(batched, sum(observed_values), pending)
    samples = lambda reg: [(s.name, s.labels, s.value) for f in reg.collect() for s in f.samples  # noqa: E731
                           if not s.name.endswith("_created")]
    assert samples(reg_a) == samples(reg_b)


def test_knowledge_cache_stats_and_invalidate(client, new_session):
    sid = new_session("cached")
    teach(client, sid, [[["a", "b"], ["c"]], [["a", "b"], ["d"]]])
    client.post(f"/sessions/{sid}/observe", json={"strings": ["a", "b"]})
    client.get(f"/sessions/{sid}/predictions")  # loads the node into this worker
    first = client.get("/cache/stats").get_json()
    assert set(first) == {"cache_performance", "cache_health", "timestamp"}
    perf = first["cache_performance"]
    assert {"hit_rate_percent", "cache_hits", "cache_misses", "patterns_in_cache", "symbols_in_cache",
            "patterns_cached_total", "symbols_cached_total", "redis_memory_used_mb", "uptime_seconds",
            "requests_per_second"} == set(perf)
    assert perf["patterns_in_cache"] >= 2
    client.get(f"/sessions/{sid}/predictions")  # nothing learned since: a hit
    second = client.get("/cache/stats").get_json()["cache_performance"]
    assert second["cache_hits"] == perf["cache_hits"] + 1
    assert 0 < second["hit_rate_percent"] <= 100

    dropped = client.post(f"/cache/invalidate?session_id={sid}").get_json()
    assert dropped["status"] == "success" and dropped["session_id"] == sid
    assert dropped["patterns_invalidated"] == 2 and dropped["symbols_invalidated"] == 4
    client.get(f"/sessions/{sid}/predictions")  # rebuilt from the database: a miss
    third = client.get("/cache/stats").get_json()["cache_performance"]
    assert third["cache_misses"] == second["cache_misses"] + 1
    # long-term memory is untouched by a cache invalidation
    assert client.get(f"/sessions/{sid}/predictions").get_json()["count"] == 2
    everything = client.post("/cache/invalidate").get_json()
    assert everything["session_id"] is None and everything["patterns_invalidated"] == 2


def test_stats_and_metric_series(client):
    client.get("/health")
    body = client.get("/stats?minutes=3").get_json()
    assert body["time_range_minutes"] == 3
    assert set(body["time_series"]) == set(monitoring.TIME_SERIES_KEYS) and len(monitoring.TIME_SERIES_KEYS) == 20
    assert {"status", "issues", "metrics", "timestamp"} <= set(body["current_status"])
    assert {"cpu_percent", "memory_percent", "error_rate_per_min"} == set(body["current_status"]["metrics"])
    assert {"sessions", "performance", "resources", "databases"} == set(body["summary"])
    point = body["time_series"]["kato_requests_total"][-1]
    assert set(point) == {"timestamp", "value", "labels"} and point["value"] >= 1

    series = client.get("/metrics/kato_requests_total?minutes=5").get_json()
    assert series["metric_name"] == "kato_requests_total" and series["time_range_minutes"] == 5
    stats = series["statistics"]
    assert stats["count"] == len(series["data_points"]) >= 1 and stats["min"] <= stats["avg"] <= stats["max"]

    missing = client.get("/metrics/no_such_metric")
    assert missing.status_code == 404
    assert missing.get_json() == {"detail": "No data available for metric 'no_such_metric' in the last 10 minutes"}
    assert client.get("/stats?minutes=abc").status_code == 422


def test_static_ish_endpoints(client):
    conc = client.get("/concurrency").get_json()
    assert conc["status"] in {"healthy", "warning", "critical"}
    assert {"concurrent_requests", "utilization_percent"} == set(conc["current"]) == set(conc["peak"])
    assert conc["current"]["concurrent_requests"] >= 1  # this request
    assert {"per_worker", "warning_threshold", "critical_threshold", "total_capacity"} == set(conc["limits"])
    assert {"workers", "backlog", "max_requests"} <= set(conc["configuration"])
    assert conc["timestamp"].endswith("+00:00")

    stm = client.get("/distributed-stm/stats").get_json()
    assert stm["status"] == "disabled" and stm["distributed_stm_enabled"] is False
    assert stm["processor_info"] == {"total_active_processors": 0}

    pools = client.get("/connection-pools").get_json()
    assert pools["status"] in {"healthy", "degraded"}
    assert {"health", "pool_statistics", "connection_optimization", "performance_improvements",
            "timestamp"} <= set(pools)


def test_access_log_line(database_url, caplog):
    from kato_web import create_app
    from tests.conftest import make_config

    config = make_config(database_url)
    config.server.access_log = True
    app = create_app(config)
    access = logging.getLogger("kato_web.access")
    access.addHandler(caplog.handler)
    try:
        app.test_client().get("/health", headers={"X-Trace-ID": "kato-trace-1"})
    finally:
        access.removeHandler(caplog.handler)
        access.setLevel(logging.WARNING)  # later apps in this process log no access lines
        app.extensions["kato"].db.dispose()
    lines = [json.loads(r.getMessage()) for r in caplog.records if r.name == "kato_web.access"]
    assert len(lines) == 1
    line = lines[0]
    assert (line["method"], line["path"], line["endpoint"], line["status"]) == ("GET", "/health", "/health", 200)
    assert line["ms"] > 0 and line["trace_id"] == "kato-trace-1"


def test_unhandled_error_is_logged_with_traceback(database_url, caplog):
    from kato_web import create_app
    from tests.conftest import make_config

    app = create_app(make_config(database_url))

    def boom():
        raise RuntimeError("kaput")
    app.add_url_rule("/boom", view_func=boom)
    handlers = [logging.getLogger(n) for n in ("kato_web.errors", "kato_web.requests")]
    for logger in handlers:
        logger.addHandler(caplog.handler)
    try:
        resp = app.test_client().get("/boom")
    finally:
        for logger in handlers:
            logger.removeHandler(caplog.handler)
        app.extensions["kato"].db.dispose()
    assert resp.status_code == 500 and resp.get_json() == {"detail": "Internal Server Error"}
    tracebacks = [r for r in caplog.records if r.name == "kato_web.errors" and r.exc_info]
    assert tracebacks and "kaput" in str(tracebacks[0].exc_info[1])
    request_lines = [r.getMessage() for r in caplog.records if r.name == "kato_web.requests"]
    assert any('"path":"/boom"' in m and '"status":500' in m for m in request_lines)
