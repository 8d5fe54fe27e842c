"""Checks every request passes before a view runs: request shape, browser origin, text.

- Request bodies of the API are JSON: a POST/PUT/PATCH that carries a body must say
  ``Content-Type: application/json`` (or a ``+json`` type; the gzip of it is inflated before
  this check), in UTF-8, else 415. The three types a browser may send cross-site without
  asking first (forms and ``text/plain``) are refused even on an empty body, so a page on
  another site can never make a "simple" write request. KATO's clients send JSON, or no body
  and no Content-Type at all (learn, clear-stm, clear-all, extend), which stays accepted.
- A write from a browser page of another origin (its ``Origin`` header) is refused with 403
  unless that origin is in KATO_CORS_ORIGINS: a request without a body and without a
  Content-Type is "simple" too, and the Origin header is what tells it apart.
- Path parameters, query parameters and the node headers must not hold NUL characters:
  PostgreSQL text cannot hold them, so they would fail deep in a query (422, or the admin
  area's 400 page).
"""
from __future__ import annotations

from flask import Flask, abort, request

from kato_web.web.errors import ApiError, RequestValidationError
from kato_web.services.security import Actor, current_actor

WRITE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
# The types a browser sends cross-site without a CORS preflight (the Fetch standard's
# "CORS-safelisted" request content types).
SIMPLE_TYPES = frozenset({"application/x-www-form-urlencoded", "multipart/form-data", "text/plain"})
CHECKED_HEADERS = ("X-Node-ID", "X-Test-ID", "X-Session-ID")
ADMIN_PREFIX = "/admin"


def _is_admin(path: str) -> bool:
    return path == ADMIN_PREFIX or path.startswith(ADMIN_PREFIX + "/")


def _has_body(req) -> bool:
    return bool(req.content_length) or "chunked" in req.headers.get("Transfer-Encoding", "").lower()


def _json_type(mimetype: str) -> bool:
    return mimetype == "application/json" or (mimetype.startswith("application/") and mimetype.endswith("+json"))


def check_content_type(req) -> None:
    if req.method not in WRITE_METHODS:
        return
    mimetype = req.mimetype or ""
    if _has_body(req) or mimetype in SIMPLE_TYPES:
        if not _json_type(mimetype):
            raise ApiError(415, "Request bodies must be JSON: send Content-Type: application/json")
        charset = req.mimetype_params.get("charset")
        if charset and charset.strip().lower().replace("_", "-") not in ("utf-8", "utf8"):
            raise ApiError(415, "Request bodies must be UTF-8 JSON")


def origin_allowed(req, origin: str, allowed: tuple[str, ...]) -> bool:
    origin = origin.rstrip("/")
    if origin == req.host_url.rstrip("/"):
        return True
    return "*" in allowed or origin in allowed


def check_origin(req, allowed: tuple[str, ...]) -> None:
    origin = req.headers.get("Origin")
    if origin and req.method in WRITE_METHODS and not origin_allowed(req, origin, allowed):
        raise ApiError(403, "Cross-origin writes from this origin are not allowed (KATO_CORS_ORIGINS)")


def check_text(req, admin: bool) -> None:
    # The raw path and query string first: almost every request has no NUL anywhere.
    environ = req.environ
    headers = req.headers
    if "\x00" not in environ.get("PATH_INFO", "") and "%00" not in environ.get("QUERY_STRING", "") \
            and "\x00" not in environ.get("QUERY_STRING", "") \
            and not any("\x00" in (headers.get(name) or "") for name in CHECKED_HEADERS):
        return
    where = []
    for name, value in (req.view_args or {}).items():
        if isinstance(value, str) and "\x00" in value:
            where.append(("path", name, value))
    for name, value in req.args.items(multi=True):
        if "\x00" in value or "\x00" in name:
            where.append(("query", name, value))
    for name in CHECKED_HEADERS:
        value = headers.get(name)
        if value and "\x00" in value:
            where.append(("header", name, value))
    if not where:
        return
    if admin:
        abort(400, "A field holds a NUL character, which nothing here can store or search for.")
    raise RequestValidationError([{"type": "string_nul", "loc": [kind, name],
                                   "msg": "Input should be a string without NUL characters", "input": value}
                                  for kind, name, value in where])


def init_app(app: Flask, cors_origins: tuple[str, ...]) -> None:
    """Install the checks, API-key authentication between them, and CORS for allowed origins."""
    from kato_web.web import auth

    auth.init_app(app)

    @app.before_request
    def _guard():
        req = request._get_current_object()  # once: each proxy lookup costs a context-stack walk
        admin = _is_admin(req.path)
        check_text(req, admin)  # first: a NUL must not reach the key or session lookups
        auth.authenticate(req)
        if admin:
            return  # forms with CSRF tokens: the admin area's own rules (kato_web/admin)
        check_origin(req, cors_origins)
        check_content_type(req)
        # Who is asking, for the audit records this request may write (clear-all, …).
        current_actor.set(Actor(auth.principal().label, req.remote_addr))

    if cors_origins:
        from flask_cors import CORS
        # The API only; the admin area answers its own origin alone. No cookies cross origins
        # (keys travel in headers), so credentials stay off.
        CORS(app, resources={r"^/(?!admin(/|$)).*": {"origins": "*" if "*" in cors_origins else list(cors_origins)}},
             supports_credentials=False, expose_headers=["X-Session-ID", "X-Trace-ID"], max_age=600)
