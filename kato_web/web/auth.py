"""API keys: who may call the API, on which nodes, and whether they may write.

Keys are optional. With none configured the API is open, as KATO's is (its clients send no
credentials), and gunicorn refuses to bind a non-loopback address unless
KATO_ALLOW_ANONYMOUS=1 says that is meant (gunicorn.conf.py). Once any key exists, in
KATO_API_KEYS or made on the admin page, every API request needs one:
``Authorization: Bearer <key>`` or ``X-API-Key: <key>``; /livez, /readyz and /health stay
open for probes, and the admin area has its own login.

A key may be limited to node ids starting with a prefix (a tenant) and to reading (GET).
A prefix-limited key reaches its nodes' sessions and node lookups, never the service-wide
endpoints (metrics, cache, status), which need an unrestricted key.

Keys are random and long, so a plain SHA-256 is a safe thing to store and look up by.
Lookups are cached per process for KEY_CACHE_SECONDS: a revoked key stops working in every
worker within that time, and the common request costs no query.
"""
from __future__ import annotations

import hmac
import threading
import time

from flask import Flask, current_app, g, request

from kato_web.web.errors import KatoError
from kato_web.services import security
from kato_web.services.api_keys import ANONYMOUS, Principal, hash_key, parse_env_keys  # noqa: F401

KEY_CACHE_SECONDS = 2.0
READ_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
OPEN_ENDPOINTS = frozenset({"health.health", "health.livez", "health.readyz", "ops.livez", "ops.readyz"})
# The API's description and its readers (a browser cannot send a key to load a page; the
# document describes KATO's public API, and every call made from it still needs a key).
OPEN_PREFIXES = ("docs.",)
OPEN_PATHS = frozenset({"/livez", "/readyz", "/health"})
# Node-level lookups: the node comes from ?node_id= or the X-Test-ID / X-Node-ID headers.
NODE_ENDPOINTS = frozenset({"operations.get_pattern", "operations.node_percept_data",
                            "operations.node_cognition_data"})
CREATE_SESSION = "sessions.create_session"


class ApiKeys:
    """The keys of one app: those of the environment, and the database's (cached briefly)."""

    def __init__(self, env_keys: dict[str, Principal], ctx, clock=time.monotonic):
        self.env_keys = env_keys
        self.ctx = ctx
        self.clock = clock
        self._lock = threading.Lock()
        self._active: tuple[float, int] | None = None
        self._found: dict[str, tuple[float, Principal | None]] = {}

    def forget(self) -> None:
        """Drop the cache (after this process made or revoked a key)."""
        with self._lock:
            self._active = None
            self._found.clear()

    def required(self) -> bool:
        """Whether keys are configured at all (then every API request needs one)."""
        if self.env_keys:
            return True
        now = self.clock()
        cached = self._active
        if cached is not None and now - cached[0] < KEY_CACHE_SECONDS:
            return cached[1] > 0
        try:
            count = security.active_key_count(self.ctx)
        except Exception:
            # Never open the door because the table cannot be read: only an unmigrated
            # database has no table, and that one has no keys either.
            if security.keys_table_exists(self.ctx):
                raise
            count = 0
        self._active = (now, count)
        return count > 0

    def lookup(self, key: str) -> Principal | None:
        digest = hash_key(key)
        for known, principal in self.env_keys.items():
            if hmac.compare_digest(known, digest):
                return principal
        now = self.clock()
        cached = self._found.get(digest)
        if cached is not None and now - cached[0] < KEY_CACHE_SECONDS:
            return cached[1]
        row = security.find_key(self.ctx, digest)
        principal = None if row is None else Principal(
            label="key " + row["key_prefix"] + "…", node_prefix=row["node_prefix"] or None,
            read_only=bool(row["read_only"]), authenticated=True)
        if len(self._found) > 10_000:  # bounded: random wrong keys must not grow it forever
            self._found.clear()
        self._found[digest] = (now, principal)
        return principal


class AuthError(KatoError):
    def __init__(self, status: int, message: str):
        super().__init__(status, {"detail": message})


def presented_key(req) -> str | None:
    header = req.headers.get("Authorization", "")
    scheme, _, value = header.partition(" ")
    if scheme.lower() == "bearer" and value.strip():
        return value.strip()
    value = req.headers.get("X-API-Key", "").strip()
    return value or None


def keys() -> ApiKeys:
    return current_app.extensions["kato.keys"]


def principal() -> Principal:
    return getattr(g, "kato_principal", ANONYMOUS)


def authorize_node(node_id: str) -> None:
    """Refuse (403) a node outside the caller's key's prefix."""
    prefix = principal().node_prefix
    if prefix is not None and not node_id.startswith(prefix):
        raise AuthError(403, f"This API key is limited to node ids starting with {prefix!r}")


def _is_admin(path: str) -> bool:
    return path == "/admin" or path.startswith("/admin/")


def authenticate(req) -> None:
    """Run before every view: set g.kato_principal, or refuse with 401/403."""
    if req.method == "OPTIONS" or req.path in OPEN_PATHS or _is_admin(req.path) \
            or req.endpoint in OPEN_ENDPOINTS or (req.endpoint or "").startswith(OPEN_PREFIXES):
        return
    registry = keys()
    if not registry.required():
        return
    key = presented_key(req)
    if key is None:
        err = AuthError(401, "An API key is required: send Authorization: Bearer <key> or X-API-Key")
        raise err
    found = registry.lookup(key) if len(key) <= 200 else None
    if found is None:
        raise AuthError(401, "Unknown or revoked API key")
    g.kato_principal = found
    if found.read_only and req.method not in READ_METHODS:
        raise AuthError(403, "This API key is read-only")
    if found.node_prefix is None:
        return
    endpoint = req.endpoint or ""
    session_id = (req.view_args or {}).get("session_id")
    if session_id is not None:
        from kato_web.services.sessions import session_node
        node_id = session_node(current_app.extensions["kato"], session_id)
        if node_id is not None:  # a missing session gets its usual 404 from the view
            authorize_node(node_id)
    elif endpoint in NODE_ENDPOINTS:
        from kato_web.services.patterns import requested_node
        authorize_node(requested_node(req.args.get("node_id"), req.headers.get("x-test-id"),
                                      req.headers.get("x-node-id")))
    elif endpoint == CREATE_SESSION:
        pass  # the view checks the node id of the body (kato_web/api/sessions.py)
    elif req.url_rule is not None:
        raise AuthError(403, "This API key is limited to some nodes; service-wide endpoints need an "
                             "unrestricted key")


def init_app(app: Flask) -> None:
    kato = app.extensions["kato"]
    app.extensions["kato.keys"] = ApiKeys(parse_env_keys(kato.config.api_keys), kato)

    @app.after_request
    def _challenge(response):
        if response.status_code == 401 and not _is_admin(request.path):
            response.headers["WWW-Authenticate"] = 'Bearer realm="kato"'
        return response


def is_loopback_bind(bind: str) -> bool:
    """Tell whether a gunicorn bind address is reachable from this machine only."""
    import ipaddress
    if bind.startswith(("unix:", "fd://")):
        return True  # a local socket: whatever stands in front decides who reaches it
    host = bind.rsplit(":", 1)[0] if ":" in bind and not bind.endswith("]") else bind
    host = host.strip("[]")
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False  # a host name: it may resolve to anything


def anonymous_bind_refusal(config, binds: list[str]) -> str | None:
    """Return why the server must not start (None: it may).

    Without keys the API is open to whoever reaches the port. On a loopback address that is
    this machine's users only; on any other address it must be a decision, not a default.
    """
    exposed = [b for b in binds if not is_loopback_bind(b)]
    if not exposed or config.allow_anonymous or parse_env_keys(config.api_keys):
        return None
    if security.active_keys_in(config.database_url):
        return None
    return (f"kato-web: refusing to serve the API without keys on {', '.join(exposed)} (not a loopback "
            "address): make a key (KATO_API_KEYS, or the admin page's API keys) or set "
            "KATO_ALLOW_ANONYMOUS=1 to serve it open on purpose")
