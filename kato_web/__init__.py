"""kato-web: KATO's deterministic, explainable sequence memory as a WSGI service."""
from __future__ import annotations

import os
import time
import uuid

from flask import Flask, g, request

from kato_web.config import VERSION, Config
from kato_web.services.context import Context
from kato_web.store.db import Database
from kato_web.web import heap, json_provider
from kato_web.web.errors import register_error_handlers
from kato_web.web import guard, limiter, request_body

__version__ = VERSION


def create_app(config: Config | None = None) -> Flask:
    """Build the WSGI app: settings, database, blueprints and error handlers."""
    config = config or Config.from_env()
    app = Flask(__name__, static_folder=None)
    # "//" in a path is not merged by a redirect (werkzeug's answer would be an HTML page):
    # such a path names no route and gets the usual JSON 404, as on KATO.
    app.url_map.merge_slashes = False
    app.config.update(
        MAX_CONTENT_LENGTH=config.max_request_bytes,
        # None: the admin cookie key is made once and kept in the database (admin/cookie_session.py).
        SECRET_KEY=config.secret_key or None,
        JSON_SORT_KEYS=False,
        TESTING=config.testing,
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Strict",
    )
    json_provider.init_app(app, config.fast_json)  # orjson-backed, keys in insertion order
    from kato_web.admin.cookie_session import AdminOnlySessionInterface
    app.session_interface = AdminOnlySessionInterface()
    register_extensions(app, config)
    register_blueprints(app)
    register_error_handlers(app)
    register_request_hooks(app, config)
    guard.init_app(app, tuple(config.cors_origins))
    limiter.init_app(app)
    heap.init_app(app, config.trim_after_bytes, config.trim_delay_seconds)
    register_middleware(app, config)
    if config.proxy_count:
        from werkzeug.middleware.proxy_fix import ProxyFix
        # Trust exactly that many proxies' X-Forwarded-For/-Proto/-Host (client address for
        # rate limits and the audit log; HTTPS for Secure cookies), never a client's own.
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=config.proxy_count, x_proto=config.proxy_count,
                                x_host=config.proxy_count)
    return app


def register_extensions(app: Flask, config: Config) -> None:
    db = Database(config.database_url, config.db_pool_size, config.db_max_overflow, config.db_pre_ping,
                  config.db_ping_idle_seconds)
    app.extensions["kato"] = Context(config=config, db=db)
    from kato_web.engine import index as engine_index
    engine_index.use_compiled(config.fast_predict)
    if config.warm_up and engine_index.FAST and not engine_index.kernels_ready():
        # Outside gunicorn (tests, a debugger): load them in the background. Under gunicorn
        # wsgi.py has loaded them already, before any worker exists (prepare_kernels).
        from kato_web.services import knowledge
        knowledge.start_warm_up()


def prepare_kernels(config: Config) -> str:
    """Load (or compile, the first time after an install) the prediction kernels now, and log
    one line saying which path serves predictions; return that line.

    gunicorn's master calls this (wsgi.py, preloaded) before it forks the workers, so every
    worker inherits the compiled code and no request ever waits for a compilation.
    """
    from kato_web.web import logs
    from kato_web.engine import index as engine_index

    log = logs.app_logger(config.log_format)
    engine_index.use_compiled(config.fast_predict)
    if not engine_index.FAST:
        reason = "KATO_FAST_PREDICT=0" if engine_index.COMPILED else "numba is unavailable"
        line = f"predictions served by the pure Python path ({reason})"
    elif not config.warm_up:
        line = "compiled prediction path; kernels load on first use (KATO_WARM_UP=0)"
    else:
        started = time.perf_counter()
        how = "loaded from"
        if not engine_index.kernels_cached():
            # The first start after an install compiles, in a child process that writes numba's
            # cache and exits: the compiler's memory (~120 MB) then never lives in the master
            # every worker is forked from. The master only loads the machine code.
            how = "compiled into"
            from kato_web.services.kernels import compile_kernels

            compile_kernels()
        engine_index.warm_up()  # loads the cache (compiles here only if it could not be written)
        line = (f"compiled prediction path ready in {time.perf_counter() - started:.1f} s "
                f"({how} numba's cache: {engine_index.kernel_cache_dir() or 'none'})")
    log.info(line)
    return line


def preload_nodes(app: Flask) -> list[str]:
    """Load the nodes KATO_PRELOAD_NODES names into this process, to be shared with the workers
    gunicorn forks from it (wsgi.py); log and return one line per node.

    A node that cannot be loaded (database down, say) is left to the workers' first requests,
    as without this setting: the start goes on, with a warning.
    """
    from kato_web.services import knowledge
    from kato_web.services.sessions import kb_id_for
    from kato_web.web import logs

    kato = app.extensions["kato"]
    nodes = tuple(kato.config.preload_nodes)
    if not nodes:
        return []
    log = logs.app_logger(kato.config.log_format)
    started = time.perf_counter()
    try:
        loaded = knowledge.preload(kato, nodes, lambda node: kb_id_for(node, kato.config.service_name))
    except Exception as exc:  # the workers load on first use instead
        line = f"preloading {','.join(nodes)} failed ({type(exc).__name__}: {exc}); workers load nodes on first use"
        log.warning(line)
        return [line]
    heap.trim()
    lines = [f"preloaded {kb_id}: {count:,} patterns, shared copy-on-write with the workers"
             if count is not None else f"preload: no node {kb_id} in the database yet (loaded on first use)"
             for kb_id, count in loaded]
    done = sum(1 for _, count in loaded if count is not None)
    lines.append(f"preloaded {done} node(s) in {time.perf_counter() - started:.1f} s")
    for line in lines:
        log.info(line)
    return lines


def start_worker(app: Flask) -> None:
    """Start a serving process's background work: its metrics flusher (which counts it as a live
    worker) and the periodic session sweep. gunicorn calls this in each worker after the fork
    (post_worker_init): threads never cross a fork."""
    from kato_web.services import monitoring, sweep

    kato = app.extensions["kato"]
    monitoring.worker_started()
    if not kato.config.testing:
        sweep.start(kato.db, kato.config.session_sweep_seconds, kato.config.session_sweep_batch)


def register_blueprints(app: Flask) -> None:
    from kato_web.admin import bp as admin_bp
    from kato_web.api.health import bp as health_bp
    from kato_web.api.operations import bp as operations_bp
    from kato_web.api.sessions import bp as sessions_bp
    from kato_web.api.symbols import bp as symbols_bp
    from kato_web.web.docs import bp as docs_bp

    app.register_blueprint(health_bp)
    app.register_blueprint(sessions_bp)
    app.register_blueprint(operations_bp)
    app.register_blueprint(symbols_bp)
    app.register_blueprint(admin_bp)  # the admin UI at /admin
    app.register_blueprint(docs_bp)  # /openapi.json, /docs, /redoc


def register_middleware(app: Flask, config: Config) -> None:
    """gzip both ways (innermost), then request metrics and access logs (outermost)."""
    from kato_web.api import monitoring
    from kato_web.web import compression

    compression.init_app(app, config.max_request_bytes, config.gzip_min_bytes, config.gzip_level)
    # Outside the gzip layer: a broken chunked body is a 400 for every reader of the body.
    app.wsgi_app = request_body.SafeInputMiddleware(app.wsgi_app)
    monitoring.init_app(app, config.server.access_log, config.metrics_flush_seconds, config.log_format)


def register_request_hooks(app: Flask, config: Config) -> None:
    @app.before_request
    def _trace():
        g.trace_id = request.headers.get("X-Trace-ID") or f"kato-{uuid.uuid4().hex}"

    @app.after_request
    def _headers(response):
        response.headers["X-Trace-ID"] = getattr(g, "trace_id", None) or f"kato-{uuid.uuid4().hex}"
        session_id = getattr(g, "session_id", None)
        if session_id is None and not request.path.startswith("/sessions/"):
            session_id = request.headers.get("X-Session-ID") or request.cookies.get("session_id")
        if session_id:
            response.headers["X-Session-ID"] = session_id
        if config.expose_worker_pid:
            response.headers["X-Worker-PID"] = str(os.getpid())
        return response
