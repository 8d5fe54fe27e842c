"""The signed cookie session, opened only for the admin pages.

Flask opens its cookie session on every request, which builds a signing serializer each
time. Only the admin UI (login marker, CSRF token) uses a session; the KATO API is
stateless per request and keeps its sessions in the database. So every other path gets
Flask's null session: nothing is parsed, signed or written for it.

The signing key is KATO_SECRET_KEY, or else a random key made once and kept in the database,
so every worker and instance signs alike (read here on the first admin request). The cookie
is `Secure` as KATO_COOKIE_SECURE says: always (1), never (0), or when the request came over
HTTPS (auto; behind a proxy that needs KATO_PROXY_COUNT so X-Forwarded-Proto is believed).
"""
from __future__ import annotations

import threading

from flask import request
from flask.sessions import SecureCookieSessionInterface

ADMIN_PREFIX = "/admin"
_key_lock = threading.Lock()


class AdminOnlySessionInterface(SecureCookieSessionInterface):
    def open_session(self, app, request):
        path = request.path
        if path != ADMIN_PREFIX and not path.startswith(ADMIN_PREFIX + "/"):
            return self.make_null_session(app)
        if not app.secret_key:
            with _key_lock:
                if not app.secret_key:
                    from kato_web.services.security import cookie_secret
                    app.secret_key = cookie_secret(app.extensions["kato"])
        return super().open_session(app, request)

    def get_cookie_secure(self, app) -> bool:
        mode = app.extensions["kato"].config.cookie_secure
        if mode == "auto":
            return request.is_secure
        return mode == "1"
