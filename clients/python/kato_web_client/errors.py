"""What can go wrong, one exception class per kind of answer (kato-web's error shapes)."""
from __future__ import annotations

from typing import Any


class KatoError(Exception):
    """An error answer from the server: `status` and the decoded JSON `body` (or text)."""

    def __init__(self, status: int, message: str, body: Any = None):
        super().__init__(f"{status}: {message}")
        self.status = status
        self.message = message
        self.body = body


class BadRequest(KatoError):
    """400: e.g. learning from an empty short-term memory, or vectors of different lengths."""


class ConfigurationError(BadRequest):
    """400: a session setting has an invalid value; nothing was applied."""

    def __init__(self, status: int, message: str, body: Any, validation_errors: dict[str, str]):
        super().__init__(status, message, body)
        self.validation_errors = validation_errors


class Unauthorized(KatoError):
    """401: no API key, or an unknown one."""


class Forbidden(KatoError):
    """403: the API key may not do this."""


class NotFound(KatoError):
    """404 that is not about a session (e.g. a metric without data, an unknown route)."""


class SessionNotFound(NotFound):
    """404: the session does not exist or has expired (its short-term memory is gone)."""

    def __init__(self, status: int, message: str, body: Any, session_id: str | None):
        super().__init__(status, message, body)
        self.session_id = session_id


class PayloadTooLarge(KatoError):
    """413: the request body exceeds the server's limit."""


class ValidationError(KatoError):
    """422: the request failed validation; `items` are the server's `{type, loc, msg, input}`."""

    def __init__(self, status: int, message: str, body: Any, items: list[dict]):
        super().__init__(status, message, body)
        self.items = items


class ServiceUnavailable(KatoError):
    """503: the server is overloaded or not ready; `retry_after` is its hint in seconds, if any."""

    def __init__(self, status: int, message: str, body: Any, retry_after: float | None):
        super().__init__(status, message, body)
        self.retry_after = retry_after


class ServerError(KatoError):
    """Any other 5xx."""


class ConnectionFailed(KatoError):
    """The server could not be reached, or the connection broke (status 0).

    `sent` tells whether the request may have reached the server: when True, a
    non-idempotent call (observe, learn, …) may or may not have been applied.
    """

    def __init__(self, message: str, sent: bool):
        super().__init__(0, message, None)
        self.sent = sent
