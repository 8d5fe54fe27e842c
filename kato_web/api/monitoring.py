"""Monitoring endpoints (api.md §7.6), request metrics and structured request logs.

GET /metrics answers KATO's JSON by default and Prometheus text when the client
prefers text/plain or OpenMetrics (the way a Prometheus scraper asks) or says
?format=prometheus. Scrapers get the classic text format 0.0.4 even when they
prefer OpenMetrics: every Prometheus version and prometheus_client's own parser
read it, and OpenMetrics would add nothing here (no exemplars; multiprocess mode
has no _created samples).
"""
from __future__ import annotations

import json
import logging
import os
import sys
import time

from flask import Blueprint, Flask, Response, jsonify, request

from kato_web.api import responses as R
from kato_web.api.context import ctx
from kato_web.api.schemas import query_int
from kato_web.services import knowledge
from kato_web.services import monitoring as svc
from kato_web.web.errors import ApiError
from kato_web.web.openapi import Param, describe

bp = Blueprint("monitoring", __name__)

PROMETHEUS_TYPES = ("text/plain", "application/openmetrics-text")
ROUTE_KEY = "kato.route"
METHODS = frozenset({"GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"})

access_log = logging.getLogger("kato_web.access")
error_log = logging.getLogger("kato_web.requests")


def _quality(accept: list[tuple[str, float]], mimetype: str) -> float:
    """Return the quality the client gives `mimetype`: its most specific matching entry's q."""
    major = mimetype.split("/")[0]
    best, specificity = 0.0, -1
    for value, q in accept:
        if value == mimetype:
            rank = 2
        elif value == major + "/*":
            rank = 1
        elif value == "*/*":
            rank = 0
        else:
            continue
        if rank > specificity or (rank == specificity and q > best):
            best, specificity = q, rank
    return best


def _parse_accept(header: str) -> list[tuple[str, float]]:
    entries = []
    for part in header.split(","):
        value, *params = part.strip().split(";")
        q = 1.0
        for param in params:
            key, _, raw = param.strip().partition("=")
            if key.strip().lower() == "q":
                try:
                    q = float(raw)
                except ValueError:
                    q = 0.0
        if value.strip():
            entries.append((value.strip().lower(), q))
    return entries


def wants_prometheus(accept_header: str | None, format_arg: str | None = None) -> bool:
    """Tell whether a /metrics request asks for Prometheus text rather than KATO's JSON."""
    if format_arg:
        return format_arg.lower() in ("prometheus", "text", "openmetrics")
    if not accept_header:
        return False
    accept = _parse_accept(accept_header)
    prometheus = max(_quality(accept, t) for t in PROMETHEUS_TYPES)
    # Ties (e.g. */*, or "application/json, text/plain, */*") go to JSON: KATO's clients.
    return prometheus > _quality(accept, "application/json")


@bp.get("/metrics")
@describe(summary="Service metrics: KATO's JSON, or Prometheus text for a scraper", tag="monitoring",
          response=R.Metrics, params=(Param("format", "query", {"type": "string", "enum": ["json", "prometheus", "text", "openmetrics"]},
                                            "`prometheus` asks for Prometheus text (so does an `Accept: text/plain` header)."),),
          alternatives={"text/plain": {"schema": {"type": "string"}}})
def metrics():
    if wants_prometheus(request.headers.get("Accept"), request.args.get("format")):
        return Response(svc.prometheus_text(ctx()), mimetype=None,
                        headers={"Content-Type": svc.PROMETHEUS_CONTENT_TYPE})
    return jsonify(svc.summary(ctx()))


@bp.get("/stats")
@describe(summary="Status and time series over a window", tag="monitoring", response=R.Stats,
          params=(Param("minutes", "query", {"type": "integer", "default": 10}, "The window, in minutes."),), errors=("validation",))
def stats():
    return jsonify(svc.stats(ctx(), query_int(request, "minutes", 10)))


@bp.get("/metrics/<metric_name>")
@describe(summary="One metric's time series", tag="monitoring", response=R.MetricSeries,
          params=(Param("minutes", "query", {"type": "integer", "default": 10}, "The window, in minutes."),), errors=("validation", "no_data"))
def metric(metric_name):
    minutes = query_int(request, "minutes", 10)
    body = svc.metric_series(metric_name, minutes)
    if body is None:
        raise ApiError(404, f"No data available for metric '{metric_name}' in the last {minutes} minutes")
    return jsonify(body)


@bp.get("/concurrency")
@describe(summary="Requests in flight against capacity", tag="monitoring", response=R.Concurrency)
def concurrency():
    return jsonify(svc.concurrency(ctx()))


@bp.get("/cache/stats")
@describe(summary="The workers' knowledge caches", tag="monitoring", response=R.CacheStats)
def cache_stats():
    return jsonify(svc.cache_stats(ctx()))


@bp.post("/cache/invalidate")
@describe(summary="Drop this worker's cached knowledge (never the stored knowledge)", tag="monitoring",
          response=R.CacheInvalidated, errors=("failed",),
          params=(Param("session_id", "query", {"type": "string"}, "Only the node of this session."),))
def cache_invalidate():
    try:
        return jsonify(knowledge.invalidate(ctx(), request.args.get("session_id")))
    except Exception as exc:  # KATO's shape for a failed invalidation (api.md §7.6)
        raise ApiError(500, f"Cache invalidation failed: {type(exc).__name__}") from exc


@bp.get("/distributed-stm/stats")
@describe(summary="KATO's distributed-STM report (always disabled: STM lives in the database)",
          tag="monitoring", response=R.DistributedSTMStats)
def distributed_stm_stats():
    return jsonify(svc.distributed_stm_stats())


@bp.get("/connection-pools")
@describe(summary="Database connection pools", tag="monitoring", response=R.ConnectionPools)
def connection_pools():
    return jsonify(svc.connection_pools(ctx()))


class RequestMetricsMiddleware:
    """Time every request, count it by route, and write the access log line if asked."""

    def __init__(self, wsgi_app, log_access: bool):
        self.wsgi_app = wsgi_app
        self.log_access = log_access

    def __call__(self, environ, start_response):
        started = svc.request_started()
        seen = [500, None]  # status, response headers

        def _start_response(status_line, headers, exc_info=None):
            seen[0] = int(status_line[:3])
            seen[1] = headers
            return start_response(status_line, headers, exc_info)

        try:
            return self.wsgi_app(environ, _start_response)
        finally:
            self._finish(environ, started, seen[0], seen[1])

    def _finish(self, environ, started: float, status: int, headers) -> None:
        # The route pattern, not the raw path: one series per endpoint, not per session id.
        endpoint = environ.get(ROUTE_KEY, svc.UNMATCHED)
        method = environ.get("REQUEST_METHOD", "GET")
        if method not in METHODS:
            method = "OTHER"
        seconds = svc.request_finished(started, endpoint, method, status)
        if self.log_access or status >= 500:
            fields = {
                "ts": round(time.time(), 3), "method": method, "path": environ.get("PATH_INFO", ""),
                "endpoint": endpoint, "status": status, "ms": round(seconds * 1000.0, 2),
                "trace_id": _header(headers, "X-Trace-ID"), "pid": os.getpid(),
            }
            line = json.dumps(fields, separators=(",", ":"))
            if self.log_access:
                access_log.info(line, extra={"fields": fields, "json_message": "request"})
            if status >= 500:
                # The traceback itself was logged by the error handler (kato_web.errors).
                error_log.error("request failed %s", line)


def _header(headers, name: str) -> str | None:
    for key, value in headers or ():
        if key == name:
            return value
    return None


def configure_logging(log_access: bool, log_format: str = "text") -> None:
    """Send access lines to stdout and errors (with tracebacks) to gunicorn's error log or stderr,
    in one format (kato_web/web/logs.py)."""
    from kato_web.web import logs

    logs.app_logger(log_format)
    if log_access and not access_log.handlers:
        handler = logging.StreamHandler(sys.stdout)
        # Text mode keeps the line as it always was: one JSON object, nothing around it.
        handler.setFormatter(logs.JsonFormatter() if log_format == "json" else logging.Formatter("%(message)s"))
        access_log.addHandler(handler)
        access_log.propagate = False
    access_log.setLevel(logging.INFO if log_access else logging.WARNING)


def _label_route() -> None:
    # Flask clears environ["werkzeug.request"] when the request ends, so the middleware
    # finds the route here. First of the before_request hooks: set even when a later one
    # raises.
    rule = request.url_rule
    request.environ[ROUTE_KEY] = rule.rule if rule is not None else svc.UNMATCHED


def init_app(app: Flask, log_access: bool, flush_seconds: float = 1.0, log_format: str = "text") -> None:
    """Register the monitoring endpoints and wrap the app in the request-metrics middleware."""
    configure_logging(log_access, log_format)
    svc.set_flush_interval(flush_seconds)
    app.register_blueprint(bp)
    app.before_request_funcs.setdefault(None, []).insert(0, _label_route)
    svc.watch_pool(app.extensions["kato"].db.engine.pool)
    app.wsgi_app = RequestMetricsMiddleware(app.wsgi_app, log_access)
