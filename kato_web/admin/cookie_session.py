"""The signed cookie session, opened only for the admin pages.

Flask opens its cookie session on every request, which builds a signing serializer each
time. Only the admin UI (login marker, CSRF token) uses a session; the KATO API is
stateless per request and keeps its sessions in the database. So every other path gets
Flask's null session: nothing is parsed, signed or written for it.
"""
from __future__ import annotations

from flask.sessions import SecureCookieSessionInterface

ADMIN_PREFIX = "/admin"


class AdminOnlySessionInterface(SecureCookieSessionInterface):
    def open_session(self, app, request):
        path = request.path
        if path != ADMIN_PREFIX and not path.startswith(ADMIN_PREFIX + "/"):
            return self.make_null_session(app)
        return super().open_session(app, request)
