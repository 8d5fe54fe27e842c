"""Login state and CSRF tokens for the admin area, kept in Flask's signed session cookie.

The CSRF token is random per browser session, sent back in a hidden form field, and
compared in constant time on every POST; a POST without it is refused before any view
runs. A sign-in is a row in the database (admin_sessions) named in the cookie: signing out
deletes the row, so a copy of the cookie is worthless afterwards. The cookie also carries an
HMAC of the password under the signing key, so a new password signs everyone out. The
signing key is random and kept in the database (kato_web/services/security.py), or
KATO_SECRET_KEY: never derived from the password, which a cookie would let its holder guess
offline.
"""
from __future__ import annotations

import hashlib
import hmac
import secrets

from flask import current_app, g, request, session

from kato_web.services import security as svc

CSRF_FIELD = "csrf_token"
_CSRF_KEY = "admin_csrf"
_LOGIN_KEY = "admin_login"
_SESSION_KEY = "admin_sid"


def csrf_token() -> str:
    """Return this browser session's CSRF token, creating it on first use."""
    token = session.get(_CSRF_KEY)
    if not token:
        token = session[_CSRF_KEY] = secrets.token_urlsafe(32)
    return token


def csrf_valid() -> bool:
    expected = session.get(_CSRF_KEY)
    given = request.form.get(CSRF_FIELD, "")
    if not expected or not given:
        return False
    return hmac.compare_digest(given.encode("utf-8"), expected.encode("utf-8"))


def _login_marker(password: str) -> str:
    key = str(current_app.secret_key).encode("utf-8")
    return hmac.new(key, b"admin:" + password.encode("utf-8"), hashlib.sha256).hexdigest()


def _ctx():
    return current_app.extensions["kato"]


def log_in(password: str) -> None:
    # A fresh session (and CSRF token) on login, so a token planted beforehand is useless.
    session.clear()
    session[_SESSION_KEY] = svc.start_admin_session(_ctx())
    session[_LOGIN_KEY] = _login_marker(password)
    csrf_token()
    g.kato_admin = True


def logged_in(password: str | None) -> bool:
    cached = getattr(g, "kato_admin", None)
    if cached is not None:
        return cached
    marker = session.get(_LOGIN_KEY)
    sid = session.get(_SESSION_KEY)
    ok = bool(password) and isinstance(marker, str) and isinstance(sid, str) and hmac.compare_digest(
        marker.encode("utf-8"), _login_marker(password).encode("utf-8")) and svc.admin_session_live(_ctx(), sid)
    g.kato_admin = ok
    return ok


def log_out() -> None:
    sid = session.get(_SESSION_KEY)
    svc.end_admin_session(_ctx(), sid if isinstance(sid, str) else None)
    session.clear()
    g.kato_admin = False
