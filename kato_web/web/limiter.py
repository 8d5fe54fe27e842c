"""Rate limits (Flask-Limiter) on counters every worker and instance shares.

Only the admin sign-in is limited: per client address (KATO_ADMIN_LOGIN_LIMIT) and in total
(KATO_ADMIN_LOGIN_GLOBAL_LIMIT), so neither one address nor many together can guess the
password quickly. The counters live in the database (kato_web/store/limits_storage.py):
each gunicorn worker is a process of its own, so per-process counters would multiply the
allowance by the number of workers.
"""
from __future__ import annotations

import math
import time

from flask import Flask, current_app, g, request
from flask_limiter import Limiter, RequestLimit
from flask_limiter.errors import RateLimitExceeded

import kato_web.store.limits_storage  # noqa: F401  (registers the kato-sql:// storage)

LOGIN_ADDRESS_SCOPE = "admin-login-address"
LOGIN_TOTAL_SCOPE = "admin-login-total"


def client_address() -> str:
    # request.remote_addr is the proxy's unless KATO_PROXY_COUNT trusts its X-Forwarded-For.
    return request.remote_addr or "unknown"


def _remember_breach(limit: RequestLimit) -> None:
    g.kato_retry_at = max(getattr(g, "kato_retry_at", 0.0), float(limit.reset_at))


def init_app(app: Flask) -> None:
    kato = app.extensions["kato"]
    limiter = Limiter(client_address, app=app, storage_uri="kato-sql://",
                      storage_options={"database": kato.db}, strategy="fixed-window",
                      headers_enabled=False, default_limits=[], key_prefix="kato")
    # Only the sign-in is limited, explicitly in its view (count_login_attempt). The
    # extension's own per-request hooks would look for limits on every API request and
    # cost each ~0.2 ms (measured) to find none, so they are taken off again.
    app.before_request_funcs[None].remove(limiter._check_request_limit)
    app.after_request_funcs[None] = [f for f in app.after_request_funcs[None]
                                     if getattr(getattr(f, "func", None), "__name__", "") != "__inject_headers"]
    app.extensions["kato.limiter"] = limiter


class TooManyAttempts(Exception):
    def __init__(self, retry_after: int):
        super().__init__(retry_after)
        self.retry_after = retry_after


def count_login_attempt() -> None:
    """Count one sign-in attempt against both limits; raise TooManyAttempts when over either."""
    limiter: Limiter = current_app.extensions["kato.limiter"]
    config = current_app.extensions["kato"].config
    try:
        with limiter.limit(config.admin_login_limit, scope=LOGIN_ADDRESS_SCOPE, on_breach=_remember_breach):
            pass
        with limiter.limit(config.admin_login_global_limit, key_func=lambda: "all", scope=LOGIN_TOTAL_SCOPE,
                           on_breach=_remember_breach):
            pass
    except RateLimitExceeded:
        retry_at = getattr(g, "kato_retry_at", time.time() + 60)
        raise TooManyAttempts(max(1, math.ceil(retry_at - time.time()))) from None
