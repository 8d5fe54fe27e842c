"""The client: one `Client` per server, one `Session` per short-term memory.

Retries. GET and DELETE are retried (they are idempotent) on connection failures and on 502,
503 and 504, waiting the server's Retry-After when it sends one. Every other call (observe,
observe-sequence, learn, clear, config, extend, create) is retried only when the connection
failed *before the request was sent* (nothing reached the server). An observe is never
retried blindly: if the connection breaks after it was sent, the server may or may not have
applied it, and a second observe would add a second event; the client raises
`ConnectionFailed(sent=True)` and leaves the decision to you (read `session.stm()` to see).
"""
from __future__ import annotations

import gzip
import json
import time
from typing import Any, Iterable, Mapping, Optional, Sequence
from urllib.parse import quote

import httpx

from kato_web_client import errors as E
from kato_web_client.models import (FinalizeResult, Health, LearnResult, ObserveResult, ObserveSequenceResult,
                                    Pattern, Predictions, SessionInfo, SymbolStats, build)

IDEMPOTENT = frozenset({"GET", "HEAD", "DELETE"})
RETRY_STATUSES = frozenset({502, 503, 504})
# Failures raised before any byte of the request went out: safe to retry any method.
NOT_SENT = (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout)


def _session_path(session_id: str, tail: str = "") -> str:
    return "/sessions/" + quote(session_id, safe="") + tail


class Client:
    """A connection to one kato-web server.

    `base_url`: e.g. "http://127.0.0.1:8000". `api_key`: sent as `X-API-Key` (servers with
    authentication on). `timeout`: seconds per request. `retries`: extra attempts where a
    retry is safe (module doc). `gzip_min_bytes`: request bodies at least this large are sent
    gzip-compressed (0 disables).
    """

    def __init__(self, base_url: str = "http://127.0.0.1:8000", api_key: Optional[str] = None,
                 timeout: float = 30.0, retries: int = 2, backoff: float = 0.2, max_retry_wait: float = 10.0,
                 gzip_min_bytes: int = 8192, headers: Optional[Mapping[str, str]] = None,
                 transport: Optional[httpx.BaseTransport] = None):
        default_headers = {"Accept": "application/json", "User-Agent": "kato-web-client/0.1"}
        if api_key:
            default_headers["X-API-Key"] = api_key
        default_headers.update(headers or {})
        self.base_url = base_url.rstrip("/")
        self.retries = retries
        self.backoff = backoff
        self.max_retry_wait = max_retry_wait
        self.gzip_min_bytes = gzip_min_bytes
        self._http = httpx.Client(base_url=self.base_url, timeout=timeout, headers=default_headers,
                                  transport=transport)

    # -- plumbing ---------------------------------------------------------------------------

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> "Client":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def request(self, method: str, path: str, json_body: Any = None, params: Optional[dict] = None,
                headers: Optional[dict] = None) -> Any:
        """Send one request and return the decoded JSON answer, or raise a `KatoError`."""
        method = method.upper()
        content, request_headers = None, dict(headers or {})
        if json_body is not None:
            content = json.dumps(json_body, separators=(",", ":"), ensure_ascii=False).encode("utf-8")
            request_headers["Content-Type"] = "application/json"
            if self.gzip_min_bytes and len(content) >= self.gzip_min_bytes:
                content = gzip.compress(content, compresslevel=1)
                request_headers["Content-Encoding"] = "gzip"
        attempt = 0
        while True:
            try:
                response = self._http.request(method, path, content=content, params=params,
                                              headers=request_headers)
            except NOT_SENT as exc:
                if attempt < self.retries:
                    attempt += 1
                    time.sleep(self._wait(attempt, None))
                    continue
                raise E.ConnectionFailed(f"{method} {path}: {exc}", sent=False) from exc
            except httpx.TransportError as exc:
                if method in IDEMPOTENT and attempt < self.retries:
                    attempt += 1
                    time.sleep(self._wait(attempt, None))
                    continue
                raise E.ConnectionFailed(f"{method} {path}: {exc}", sent=True) from exc
            if (response.status_code in RETRY_STATUSES and method in IDEMPOTENT
                    and attempt < self.retries):
                attempt += 1
                time.sleep(self._wait(attempt, _retry_after(response)))
                continue
            return self._decode(method, path, response)

    def _wait(self, attempt: int, retry_after: Optional[float]) -> float:
        if retry_after is not None:
            return min(max(retry_after, 0.0), self.max_retry_wait)
        return min(self.backoff * (2 ** (attempt - 1)), self.max_retry_wait)

    @staticmethod
    def _decode(method: str, path: str, response: httpx.Response) -> Any:
        try:
            body = response.json()
        except ValueError:
            body = response.text
        status = response.status_code
        if status < 400:
            return body
        raise _error(status, body, path, response)

    # -- service ----------------------------------------------------------------------------

    def root(self) -> dict:
        return self.request("GET", "/")

    def health(self) -> Health:
        return build(Health, self.request("GET", "/health"))

    def status(self) -> dict:
        return self.request("GET", "/status")

    def openapi(self) -> dict:
        """The server's OpenAPI document."""
        return self.request("GET", "/openapi.json")

    def metrics(self) -> dict:
        return self.request("GET", "/metrics")

    # -- sessions ---------------------------------------------------------------------------

    def create_session(self, node_id: str, *, metadata: Optional[dict] = None,
                       ttl_seconds: Optional[int] = None, config: Optional[dict] = None) -> SessionInfo:
        """Create a session (KATO semantics: invalid `config` values are dropped silently)."""
        body: dict[str, Any] = {"node_id": node_id}
        if metadata is not None:
            body["metadata"] = metadata
        if ttl_seconds is not None:
            body["ttl_seconds"] = ttl_seconds
        if config is not None:
            body["config"] = config
        return build(SessionInfo, self.request("POST", "/sessions", body))

    def session(self, node_id: str, *, metadata: Optional[dict] = None, ttl_seconds: Optional[int] = None,
                **config: Any) -> "Session":
        """Create a session on `node_id` with these settings; usable as a context manager.

        Settings are applied with the checked update, so an invalid one raises
        `ConfigurationError` (and the session is deleted) instead of being dropped.
        """
        info = self.create_session(node_id, metadata=metadata, ttl_seconds=ttl_seconds)
        session = Session(self, info.session_id, node_id, info)
        if config:
            try:
                session.update_config(**config)
            except Exception:
                session.close()
                raise
        return session

    def attach(self, session_id: str) -> "Session":
        """A `Session` for an existing session id (raises SessionNotFound if it is gone)."""
        info = build(SessionInfo, self.request("GET", _session_path(session_id)))
        return Session(self, session_id, info.node_id, info)

    def session_exists(self, session_id: str) -> bool:
        return bool(self.request("GET", _session_path(session_id, "/exists"))["exists"])

    def session_count(self) -> int:
        return int(self.request("GET", "/sessions/count")["active_session_count"])

    # -- node-level knowledge -----------------------------------------------------------------

    def pattern(self, node_id: str, name: str) -> Optional[Pattern]:
        """The learned pattern `name` (`PTRN|…` or bare hash) of `node_id`, or None."""
        answer = self.request("GET", "/pattern/" + quote(name, safe=""), params={"node_id": node_id})
        found = answer.get("pattern") or {}
        if found.get("status") != "okay":
            return None
        return build(Pattern, found["pattern"])

    def symbol_stats(self, node_id: str) -> dict[str, SymbolStats]:
        """Every symbol of the node: total frequency and number of patterns holding it."""
        answer = self.request("GET", "/symbols/stats", params={"node_id": node_id})
        return {name: build(SymbolStats, {"name": name, **stats})
                for name, stats in (answer.get("symbols") or {}).items()}

    def affinity(self, node_id: str, symbol: Optional[str] = None) -> dict:
        """The node's symbol affinities ({symbol: {emotive: value}}), or one symbol's ({emotive: value})."""
        if symbol is None:
            return self.request("GET", "/symbols/affinity", params={"node_id": node_id}).get("affinities") or {}
        answer = self.request("GET", "/symbols/" + quote(symbol, safe="") + "/affinity",
                              params={"node_id": node_id})
        return answer.get("affinity") or {}


class Session:
    """One session: a short-term memory on a node. `with client.session(...) as s:` deletes it at the end."""

    def __init__(self, client: Client, session_id: str, node_id: str, info: Optional[SessionInfo] = None):
        self.client = client
        self.session_id = session_id
        self.node_id = node_id
        self.created = info

    def __repr__(self) -> str:
        return f"Session({self.session_id!r}, node_id={self.node_id!r})"

    def __enter__(self) -> "Session":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def _call(self, method: str, tail: str = "", body: Any = None, params: Optional[dict] = None) -> Any:
        return self.client.request(method, _session_path(self.session_id, tail), body, params)

    # -- observe / learn / predict ----------------------------------------------------------

    def observe(self, strings: Iterable[str] = (), *, vectors: Optional[Sequence[Sequence[float]]] = None,
                emotives: Optional[Mapping[str, float]] = None,
                metadata: Optional[Mapping[str, Any]] = None) -> ObserveResult:
        """Add one event (not retried once sent: see the module doc)."""
        return build(ObserveResult, self._call("POST", "/observe", _observation(strings, vectors, emotives,
                                                                                metadata)))

    def observe_sequence(self, observations: Iterable[Mapping[str, Any] | Sequence[str]], *,
                         learn_after_each: bool = False, learn_at_end: bool = False,
                         clear_stm_between: bool = False) -> ObserveSequenceResult:
        """Observe several events in one request; each item a list of strings or an observation dict."""
        items = [dict(o) if isinstance(o, Mapping) else {"strings": list(o)} for o in observations]
        body = {"observations": items, "learn_after_each": learn_after_each, "learn_at_end": learn_at_end,
                "clear_stm_between": clear_stm_between}
        return ObserveSequenceResult.from_json(self._call("POST", "/observe-sequence", body))

    def learn(self) -> LearnResult:
        """Learn the short-term memory as one pattern and clear it (`pattern_name` "" if < 2 symbols)."""
        return build(LearnResult, self._call("POST", "/learn"))

    def predictions(self) -> Predictions:
        return Predictions.from_json(self._call("GET", "/predictions"))

    def stm(self) -> list[list[str]]:
        return self._call("GET", "/stm")["stm"]

    def clear_stm(self) -> None:
        self._call("POST", "/clear-stm")

    def clear_all(self) -> None:
        """Delete ALL knowledge of this session's node (every session of the node sees it) and clear the STM."""
        self._call("POST", "/clear-all")

    def finalize_training(self) -> FinalizeResult:
        return build(FinalizeResult, self._call("POST", "/finalize-training"))

    def percept_data(self) -> dict:
        return self._call("GET", "/percept-data")["percept_data"]

    def cognition_data(self) -> dict:
        return self._call("GET", "/cognition-data")["cognition_data"]

    # -- settings and lifetime --------------------------------------------------------------

    def config(self) -> dict[str, Any]:
        """The effective settings (overrides over server defaults)."""
        return self._call("GET", "/config")["config"]

    def update_config(self, **settings: Any) -> None:
        """Change settings, all or nothing (`ConfigurationError` names each invalid one)."""
        self._call("POST", "/config", {"config": settings})

    def extend(self, ttl_seconds: int = 3600) -> None:
        self._call("POST", "/extend", params={"ttl_seconds": ttl_seconds})

    def info(self) -> SessionInfo:
        return build(SessionInfo, self._call("GET"))

    def exists(self) -> bool:
        return self.client.session_exists(self.session_id)

    def close(self) -> None:
        """Delete the session (its node's knowledge stays); a session already gone is fine."""
        try:
            self._call("DELETE")
        except E.SessionNotFound:
            pass

    # -- the node's knowledge -----------------------------------------------------------------

    def pattern(self, name: str) -> Optional[Pattern]:
        return self.client.pattern(self.node_id, name)

    def symbol_stats(self) -> dict[str, SymbolStats]:
        return self.client.symbol_stats(self.node_id)

    def affinity(self, symbol: Optional[str] = None) -> dict:
        return self.client.affinity(self.node_id, symbol)


def _observation(strings, vectors, emotives, metadata) -> dict:
    if isinstance(strings, str):
        raise TypeError("strings must be a list of strings, not one string")
    body: dict[str, Any] = {"strings": list(strings)}
    if vectors:
        body["vectors"] = [list(v) for v in vectors]
    if emotives:
        body["emotives"] = dict(emotives)
    if metadata:
        body["metadata"] = dict(metadata)
    return body


def _retry_after(response: httpx.Response) -> Optional[float]:
    value = response.headers.get("Retry-After")
    if value is None:
        return None
    try:
        return float(value)
    except ValueError:
        return None  # an HTTP date: fall back to the client's own backoff


def _message(body: Any) -> str:
    if isinstance(body, dict):
        detail = body.get("detail", body.get("error"))
        if isinstance(detail, str):
            return detail
        if isinstance(detail, dict):
            return str(detail.get("message") or detail.get("error") or detail)
        if isinstance(detail, list) and detail:
            return "; ".join(f"{'.'.join(map(str, i.get('loc', [])))}: {i.get('msg')}" for i in detail
                             if isinstance(i, dict))
    return str(body)[:500]


def _error(status: int, body: Any, path: str, response: httpx.Response) -> E.KatoError:
    message = _message(body)
    detail = body.get("detail") if isinstance(body, dict) else None
    if status == 404 and path.startswith("/sessions/"):
        error = body.get("error") if isinstance(body, dict) else None
        session_id = error.get("session_id") if isinstance(error, dict) else None
        if isinstance(error, dict) or "not found or expired" in message:
            return E.SessionNotFound(status, message, body, session_id or path.split("/")[2])
    if status == 400 and isinstance(detail, dict) and "validation_errors" in detail:
        return E.ConfigurationError(status, message, body, dict(detail["validation_errors"]))
    if status == 422:
        return E.ValidationError(status, message, body, list(detail) if isinstance(detail, list) else [])
    if status == 503:
        return E.ServiceUnavailable(status, message, body, _retry_after(response))
    kinds = {400: E.BadRequest, 401: E.Unauthorized, 403: E.Forbidden, 404: E.NotFound, 413: E.PayloadTooLarge}
    if status in kinds:
        return kinds[status](status, message, body)
    return (E.ServerError if status >= 500 else E.KatoError)(status, message, body)
