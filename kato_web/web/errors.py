"""One place that turns exceptions into KATO-shaped JSON errors (api.md §2.2).

Shapes: A `{"detail": "text"}`, B `{"detail": {...}}`, C 422 `{"detail": [..]}`,
D the session-middleware 404 `{"error": {...}}`, F routing 404/405. kato-web never
answers an HTML page, and never a 500 for bad input.
"""
from __future__ import annotations

import logging

from flask import Flask, jsonify
from sqlalchemy import exc as sa_exc
from werkzeug.exceptions import HTTPException

log = logging.getLogger("kato_web.errors")
DATABASE_RETRY_AFTER_SECONDS = 5


class KatoError(Exception):
    """An error with a status code and a JSON body."""

    status = 400

    def __init__(self, status: int, body: dict):
        super().__init__(body)
        self.status = status
        self.body = body


class ApiError(KatoError):
    """Shape A (string detail) or B (object detail)."""

    def __init__(self, status: int, detail):
        super().__init__(status, {"detail": detail})


class RequestValidationError(KatoError):
    """Shape C: a 422 with a list of pydantic-style error items."""

    def __init__(self, errors: list[dict]):
        super().__init__(422, {"detail": errors})


class SessionNotFound(KatoError):
    """A missing or expired session: shape D, or shape A for GET /sessions/{id}."""

    def __init__(self, session_id: str, shape: str = "D"):
        message = f"Session {session_id} not found or expired"
        if shape == "A":
            body = {"detail": message}
        else:
            body = {"error": {"code": "SESSION_NOT_FOUND", "message": message, "session_id": session_id}}
        super().__init__(404, body)
        self.session_id = session_id


def register_error_handlers(app: Flask) -> None:
    @app.errorhandler(KatoError)
    def _kato_error(err: KatoError):
        return jsonify(err.body), err.status

    @app.errorhandler(HTTPException)
    def _http_error(err: HTTPException):
        # Werkzeug's names ("Not Found", "Method Not Allowed", …) are FastAPI's too (shape F).
        response = jsonify({"detail": err.name})
        response.status_code = err.code or 500
        if err.code == 405 and getattr(err, "valid_methods", None):
            response.headers["Allow"] = ", ".join(err.valid_methods)
        return response

    @app.errorhandler(sa_exc.OperationalError)
    @app.errorhandler(sa_exc.InterfaceError)
    @app.errorhandler(sa_exc.DisconnectionError)
    @app.errorhandler(sa_exc.TimeoutError)
    def _database_unavailable(err: Exception):
        # The database is down, restarting, unreachable or saturated: the request changed
        # nothing (its transaction never committed), so the client may simply retry. The pool
        # drops dead connections on such errors, so service resumes by itself when the
        # database is back.
        log.warning("database unavailable: %s", str(err).splitlines()[0][:300] if str(err) else type(err).__name__)
        response = jsonify({"detail": "Database unavailable, retry later"})
        response.status_code = 503
        response.headers["Retry-After"] = str(DATABASE_RETRY_AFTER_SECONDS)
        return response

    @app.errorhandler(Exception)
    def _unexpected(err: Exception):
        log.exception("unhandled error")
        return jsonify({"detail": "Internal Server Error"}), 500
