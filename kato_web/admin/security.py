"""Login state and CSRF tokens for the admin area, kept in Flask's signed session cookie.

The CSRF token is random per browser session, sent back in a hidden form field, and
compared in constant time on every POST; a POST without it is refused before any view
runs. The login marker is an HMAC of the password under the app's secret key, so the
cookie reveals nothing about the password and a new password signs everyone out.
"""
from __future__ import annotations

import hashlib
import hmac
import secrets

from flask import current_app, request, session

CSRF_FIELD = "csrf_token"
_CSRF_KEY = "admin_csrf"
_LOGIN_KEY = "admin_login"
# Stretching makes guessing the password from a cookie signature slow, when the signing
# key has to be derived from it (no KATO_SECRET_KEY); an iteration count like Werkzeug's
# own password hashing would slow every worker's start, this one costs some 50 ms.
_KEY_ITERATIONS = 100_000


def derived_secret_key(password: str) -> str:
    """Return a signing key every worker derives alike from the admin password."""
    return hashlib.pbkdf2_hmac("sha256", password.encode("utf-8"), b"kato-web admin session",
                               _KEY_ITERATIONS).hex()


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


def log_in(password: str) -> None:
    # A fresh session (and CSRF token) on login, so a token planted beforehand is useless.
    session.clear()
    session[_LOGIN_KEY] = _login_marker(password)
    csrf_token()


def logged_in(password: str | None) -> bool:
    marker = session.get(_LOGIN_KEY)
    if not password or not isinstance(marker, str):
        return False
    return hmac.compare_digest(marker.encode("utf-8"), _login_marker(password).encode("utf-8"))


def log_out() -> None:
    session.clear()
