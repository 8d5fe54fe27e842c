"""The OpenAPI 3.1 document, assembled from the routes and the pydantic models they use.

A route is described next to its view: `@describe(...)` (or `add_session_route(..., doc=...)`)
attaches an `Operation` to the view function, naming the pydantic model that validates its
request body (kato_web/api/schemas.py) and the model of its answer (kato_web/api/responses.py).
`build_document(app)` walks the app's URL map, so a path, its methods and its path parameters
come from Flask itself, and every schema comes from `model_json_schema`: there is no second,
hand-written copy. A route that is neither described nor explicitly left out (`undocumented`)
fails tests/integration/test_openapi.py.

Error answers are KATO's shapes (api.md §2.2), shared as `components.responses`:
422 shape C, 400 shape A/B, 404 shape D (session) or A, 413.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any, Callable, Optional, Union

from flask import Flask
from pydantic import BaseModel
from pydantic.json_schema import models_json_schema

from kato_web.api import responses as R
from kato_web.config import KATO_API_VERSION, VERSION
from kato_web.web import auth

OPENAPI_VERSION = "3.1.0"
SCHEMA_REF = "#/components/schemas/{model}"
UNDOCUMENTED = "undocumented"

TAGS = [
    {"name": "sessions", "description": "Create, inspect, configure, extend and delete sessions "
                                        "(one session = one short-term memory on a node)."},
    {"name": "operations", "description": "Observe, learn and predict within a session."},
    {"name": "knowledge", "description": "Node-level long-term memory: patterns and symbols."},
    {"name": "service", "description": "Root, health and readiness."},
    {"name": "monitoring", "description": "Metrics (JSON or Prometheus), statistics and caches."},
]


@dataclass(frozen=True)
class Param:
    """A query parameter or request header of an operation."""

    name: str
    location: str  # "query" or "header"
    schema: dict
    description: str = ""
    required: bool = False

    def as_dict(self) -> dict:
        out = {"name": self.name, "in": self.location, "required": self.required, "schema": self.schema}
        if self.description:
            out["description"] = self.description
        return out


# Body: a pydantic model (the one that validates the request), or a callable returning a
# JSON schema built by the code that validates it (session settings: session_config.py).
Body = Union[type[BaseModel], Callable[[], dict], None]


@dataclass(frozen=True)
class Operation:
    """What the document says about one view."""

    summary: str
    tag: str
    response: Optional[type[BaseModel]]
    description: str = ""
    body: Body = None
    body_required: bool = True
    errors: tuple[str, ...] = ()
    params: tuple[Param, ...] = ()
    # Other media types of the 200 answer, e.g. Prometheus text for /metrics.
    alternatives: dict[str, dict] = field(default_factory=dict)


# Every error answer the API gives, by the name operations use: (status, description, model).
ERRORS: dict[str, tuple[int, str, type[BaseModel]]] = {
    "validation": (422, "The body, a query parameter or the path failed validation (shape C).",
                   R.ValidationErrorResponse),
    "session": (404, "No such session, or it expired (shape D).", R.SessionNotFoundError),
    "session_text": (404, "No such session, or it expired (shape A).", R.ErrorMessage),
    "config": (400, "A session setting has an invalid value; nothing was applied (shape B).",
               R.ConfigValidationError),
    "empty_stm": (400, "The short-term memory is empty: nothing to learn (shape A).", R.ErrorMessage),
    "vector": (400, "Vectors of different lengths in one observation (shape B).", R.ObjectError),
    "bad_gzip": (400, "A gzip-encoded body that does not inflate (shape A).", R.ErrorMessage),
    "too_large": (413, "The request body (after inflating) exceeds KATO_MAX_REQUEST_BYTES.", R.ErrorMessage),
    "no_data": (404, "No data for that metric in the window (shape A).", R.ErrorMessage),
    "failed": (500, "The operation failed (shape A).", R.ErrorMessage),
    "unauthorized": (401, "API keys are configured and the request carries none, or an unknown or revoked "
                          "one: send `Authorization: Bearer <key>` or `X-API-Key: <key>`.", R.ErrorMessage),
    "forbidden": (403, "The API key is read-only (a write), or limited to node ids with another prefix; or a "
                       "browser write from an origin outside KATO_CORS_ORIGINS.", R.ErrorMessage),
    "unsupported_media": (415, "A request body that is not UTF-8 JSON (`Content-Type: application/json` "
                               "or a `+json` type; the gzip of it is inflated first).", R.ErrorMessage),
    "unavailable": (503, "The database is unreachable or saturated; nothing was changed: retry after "
                         "`Retry-After` seconds.", R.ErrorMessage),
    "not_ready": (503, "Not ready (the body says why); retry after `Retry-After` seconds.", R.Readiness),
}
# Headers that come with an error answer.
RETRY_AFTER = {"Retry-After": {"description": "Seconds to wait before retrying.", "schema": {"type": "integer"}}}
ERROR_HEADERS: dict[str, dict] = {"unavailable": RETRY_AFTER, "not_ready": RETRY_AFTER}
# Errors any operation with a request body can give.
BODY_ERRORS = ("too_large", "bad_gzip", "unsupported_media")
# Errors every operation of the API can give.
COMMON_ERRORS: tuple[str, ...] = ("unavailable",)
# Errors of the operations that need a key once keys are configured (all but the open ones).
AUTH_ERRORS: tuple[str, ...] = ("unauthorized", "forbidden")
# The two ways to present a key (web/auth.py); without configured keys none is asked for.
SECURITY_SCHEMES = {
    "bearerKey": {"type": "http", "scheme": "bearer",
                  "description": "An API key as `Authorization: Bearer <key>` (KATO_API_KEYS or /admin/keys)."},
    "apiKeyHeader": {"type": "apiKey", "in": "header", "name": "X-API-Key",
                     "description": "The same API key in the X-API-Key header."},
}
# `{}` first: a service without configured keys is open, as KATO is.
SECURITY = [{}, {"bearerKey": []}, {"apiKeyHeader": []}]


def is_open(endpoint: str, rule: str) -> bool:
    """Whether a route answers without a key even when keys are configured (web/auth.py's list)."""
    return (endpoint in auth.OPEN_ENDPOINTS or endpoint.startswith(auth.OPEN_PREFIXES)
            or rule in auth.OPEN_PATHS)

SESSION_ID = {"type": "string", "description": "The id `POST /sessions` returned."}
NODE_PARAMS = (
    Param("node_id", "query", {"type": "string"},
          "The node (first choice). Its knowledge-base id is derived as in KATO: `alice` → `alice_kato`."),
    Param("x-test-id", "header", {"type": "string"}, "The node, prefixed `test_` (second choice)."),
    Param("x-node-id", "header", {"type": "string"}, "The node as given (third choice; else `default_node`)."),
)


def describe(**kwargs) -> Callable:
    """Attach an `Operation` to a view function (order with the route decorator does not matter)."""
    operation = Operation(**kwargs)

    def mark(view):
        view.openapi = operation
        return view
    return mark


def undocumented(view):
    """Leave a route out of the API document on purpose (the documentation pages themselves)."""
    view.openapi = UNDOCUMENTED
    return view


_CONVERTER = re.compile(r"<(?:(?P<conv>[a-zA-Z_]+)(?:\([^)]*\))?:)?(?P<name>[a-zA-Z_][a-zA-Z0-9_]*)>")
_CONVERTER_SCHEMA = {"int": {"type": "integer"}, "float": {"type": "number"}}


def openapi_path(rule: str) -> tuple[str, list[tuple[str, dict]]]:
    """Turn a Flask rule into an OpenAPI path and its path parameters."""
    params = []

    def repl(m):
        params.append((m.group("name"), _CONVERTER_SCHEMA.get(m.group("conv") or "", {"type": "string"})))
        return "{" + m.group("name") + "}"
    return _CONVERTER.sub(repl, rule), params


def is_excluded(endpoint: str) -> bool:
    """Routes that are not part of the JSON API: the admin HTML pages and Flask's static files."""
    return endpoint == "static" or endpoint.startswith("admin.")


def described_routes(app: Flask):
    """Yield (rule, method, Operation or None or UNDOCUMENTED) for every API route and method."""
    for rule in app.url_map.iter_rules():
        if is_excluded(rule.endpoint):
            continue
        operation = getattr(app.view_functions[rule.endpoint], "openapi", None)
        for method in sorted((rule.methods or set()) - {"HEAD", "OPTIONS"}):
            yield rule, method, operation


def _error_responses(names: tuple[str, ...], refs: dict) -> dict:
    by_status: dict[int, list[str]] = {}
    for name in names:
        status = ERRORS[name][0]
        by_status.setdefault(status, [])
        if name not in by_status[status]:
            by_status[status].append(name)
    out = {}
    for status, group in sorted(by_status.items()):
        if len(group) == 1:
            out[str(status)] = {"$ref": f"#/components/responses/{_response_name(group[0])}"}
        else:
            out[str(status)] = {
                "description": " Or: ".join(ERRORS[n][1] for n in group),
                "content": {"application/json": {"schema": {"anyOf": [refs[ERRORS[n][2], "serialization"]
                                                                      for n in group]}}},
            }
            headers = {k: v for n in group for k, v in ERROR_HEADERS.get(n, {}).items()}
            if headers:
                out[str(status)]["headers"] = headers
    return out


def _response_name(error: str) -> str:
    return "".join(part.capitalize() for part in error.split("_")) + "Error"


def _operation_id(endpoint: str, method: str, methods: int) -> str:
    name = endpoint.split(".")[-1]
    return f"{name}_{method.lower()}" if methods > 1 else name


def build_document(app: Flask) -> dict:
    """Return the OpenAPI 3.1 document of `app`'s JSON API."""
    routes = [(rule, method, op) for rule, method, op in described_routes(app)
              if isinstance(op, Operation)]
    models: list[tuple[type[BaseModel], str]] = []

    def want(model, mode):
        if (model, mode) not in models:
            models.append((model, mode))
    for _rule, _method, op in routes:
        if isinstance(op.body, type) and issubclass(op.body, BaseModel):
            want(op.body, "validation")
        if op.response is not None:
            want(op.response, "serialization")
    for _status, _text, model in ERRORS.values():
        want(model, "serialization")
    refs, defs = models_json_schema(models, ref_template=SCHEMA_REF)

    paths: dict[str, dict] = {}
    methods_per_endpoint: dict[str, int] = {}
    for rule, _method, _op in routes:
        methods_per_endpoint[rule.endpoint] = methods_per_endpoint.get(rule.endpoint, 0) + 1
    for rule, method, op in sorted(routes, key=lambda r: (r[0].rule, r[1])):
        path, path_params = openapi_path(rule.rule)
        entry: dict[str, Any] = {
            "operationId": _operation_id(rule.endpoint, method, methods_per_endpoint[rule.endpoint]),
            "summary": op.summary, "tags": [op.tag],
        }
        if op.description:
            entry["description"] = op.description
        parameters = [{"name": name, "in": "path", "required": True,
                       "schema": SESSION_ID if name == "session_id" else schema}
                      for name, schema in path_params]
        parameters += [p.as_dict() for p in op.params]
        if parameters:
            entry["parameters"] = parameters
        errors = list(op.errors) + list(COMMON_ERRORS)
        if is_open(rule.endpoint, rule.rule):
            entry["security"] = []
        else:
            errors += [e for e in AUTH_ERRORS if e not in errors]
        if op.body is not None:
            schema = (refs[op.body, "validation"] if isinstance(op.body, type) else op.body())
            entry["requestBody"] = {"required": op.body_required,
                                    "content": {"application/json": {"schema": schema}}}
            errors += [e for e in BODY_ERRORS if e not in errors]
        ok: dict[str, Any] = {"description": (op.response.__doc__ or "Success").strip().split("\n")[0]
                              if op.response else "Success"}
        if op.response is not None:
            ok["content"] = {"application/json": {"schema": refs[op.response, "serialization"]}}
            ok["content"].update(op.alternatives)
        entry["responses"] = {"200": ok, **_error_responses(tuple(errors), refs)}
        paths.setdefault(path, {})[method.lower()] = entry

    return {
        "openapi": OPENAPI_VERSION,
        "info": {
            "title": "kato-web",
            "version": VERSION,
            "summary": "KATO's deterministic, explainable sequence memory over HTTP.",
            "description": (
                "kato-web answers like KATO " + KATO_API_VERSION + " (field names, status codes and "
                "error shapes; see the differences table in the README). Every operation on a "
                "session that does not exist or has expired answers 404 with "
                "`{\"error\": {\"code\": \"SESSION_NOT_FOUND\", …}}`."),
            "license": {"name": "MIT", "identifier": "MIT"},
            "x-kato-api-version": KATO_API_VERSION,
        },
        "tags": TAGS,
        "security": SECURITY,
        "paths": paths,
        "components": {
            "securitySchemes": SECURITY_SCHEMES,
            "schemas": defs.get("$defs", {}),
            "responses": {
                _response_name(name): {"description": text,
                                       "content": {"application/json": {"schema": refs[model, "serialization"]}},
                                       **({"headers": ERROR_HEADERS[name]} if name in ERROR_HEADERS else {})}
                for name, (_status, text, model) in ERRORS.items()
            },
        },
    }


def document(app: Flask) -> dict:
    """Return the app's document, built once (routes do not change after start)."""
    doc = app.extensions.get("kato.openapi")
    if doc is None:
        doc = app.extensions["kato.openapi"] = build_document(app)
    return doc
