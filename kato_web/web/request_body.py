"""Strict JSON request bodies: one parser for every endpoint, so hostile input is refused early.

Every body is parsed here (views never call ``request.get_json``). The parser refuses, with
KATO's 422 items (api.md §2.2 shape C), everything that could later become a 500 or a value
the database or engine cannot hold:

- anything that is not UTF-8 JSON text: UTF-16/32 bodies, a byte-order mark, invalid bytes,
  raw UTF-8 encodings of surrogates (``ED A0 80``) and ``\\ud800``-style lone surrogate escapes;
- ``NaN``, ``Infinity`` and numbers that overflow a double (``1e400``);
- nesting deeper than 1,024 levels (the parser never recurses on the C stack past that);
- integers outside the signed 64-bit range (a database BIGINT, the engine's int64);
- strings (values or keys) holding NUL, which PostgreSQL text cannot store.

orjson does the parse (it already refuses the first three); the last two need a walk of the
parsed value, which runs only when a cheap scan of the raw bytes finds a candidate (a run of
19+ digits, or a ``\\u0000`` escape), so ordinary bodies pay nothing for it.
"""
from __future__ import annotations

import re
from typing import Any

import orjson
from werkzeug.exceptions import BadRequest

from kato_web.web.errors import ApiError, RequestValidationError

INT64_MIN, INT64_MAX = -(2 ** 63), 2 ** 63 - 1
_LONG_DIGITS = re.compile(rb"\d{19,}")
_NUL_ESCAPE = b"\\u0000"


def _item(type_: str, loc: list, msg: str, input_: Any = None, **ctx) -> dict:
    item = {"type": type_, "loc": loc, "msg": msg, "input": input_}
    if ctx:
        item["ctx"] = ctx
    return item


_SURROGATE_UTF8 = re.compile(rb"\xed[\xa0-\xbf]")


def invalid_json(message: str, pos: int = 0, raw: bytes = b"") -> RequestValidationError:
    if "not valid UTF-8" in message and not _SURROGATE_UTF8.search(raw):
        return RequestValidationError([_item("json_invalid", ["body", pos], "JSON decode error", {},
                                             error="the body is not UTF-8 text: send UTF-8 JSON")])
    if "surrogate" in message:
        return RequestValidationError([_item("string_unicode", ["body"],
                                             "Input should be a valid string: lone UTF-16 surrogate "
                                             "(" + message + ")")])
    return RequestValidationError([_item("json_invalid", ["body", pos], "JSON decode error", {},
                                         error=message)])


def _big_ints(raw: bytes) -> list[tuple[list, int]]:
    """Return (path, value) of every integer literal outside int64, parsing `raw` exactly.

    orjson turns integers beyond 64 bits into floats, so the literal text is needed: the
    standard parser keeps them exact. Depth is already bounded by orjson's parse.
    """
    import json
    found: list[int] = []

    def parse_int(text: str) -> int:
        value = int(text)
        if not INT64_MIN <= value <= INT64_MAX:
            found.append(value)
        return value

    try:
        parsed = json.loads(raw, parse_int=parse_int)
    except RecursionError:
        raise invalid_json("nested too deeply") from None
    except ValueError:
        # More than 4,300 digits (Python's limit on int-from-text): far beyond int64 anyway.
        return [([], 0)]
    if not found:
        return []
    out = []
    _walk(parsed, ["body"], lambda v: isinstance(v, int) and not isinstance(v, bool)
          and not INT64_MIN <= v <= INT64_MAX, out)
    return out or [([], 0)]


def _walk(value: Any, path: list, bad, out: list, key_check=None) -> None:
    """Collect (path, value) of leaves for which `bad` holds (iteratively: depth is no risk)."""
    stack = [(value, path)]
    while stack and len(out) < 10:
        item, where = stack.pop()
        if isinstance(item, dict):
            for k, v in item.items():
                if key_check is not None and key_check(k):
                    out.append((where + [k], k))
                stack.append((v, where + [k]))
        elif isinstance(item, list):
            for i, v in enumerate(item):
                stack.append((v, where + [i]))
        elif bad(item):
            out.append((where, item))


def _has_nul(value: Any) -> bool:
    return isinstance(value, str) and "\x00" in value


def parse_json_bytes(raw: bytes) -> Any:
    """Parse a request body strictly (see the module docstring); raise shape C on refusal."""
    try:
        body = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise invalid_json(exc.msg, exc.pos, raw) from None
    if _LONG_DIGITS.search(raw):
        big = _big_ints(raw)
        if big:
            loc, value = big[0]
            raise RequestValidationError([
                _item("int_too_big", loc or ["body"],
                      "Input should be an integer between -2^63 and 2^63-1", str(value) if value else None)])
    if _NUL_ESCAPE in raw:
        found: list = []
        _walk(body, ["body"], _has_nul, found, key_check=_has_nul)
        if found:
            raise RequestValidationError([
                _item("string_nul", loc, "Input should be a string without NUL characters", value)
                for loc, value in found])
    return body


# ---------------------------------------------------------------- malformed bodies on the wire

class MalformedBody(ApiError):
    def __init__(self):
        super().__init__(400, "The request body is malformed (its chunked encoding or length is broken)")


def _body_errors() -> tuple:
    errors: list = [OSError, ValueError]  # NoMoreData is an IOError; a broken length a ValueError
    try:
        from gunicorn.http.errors import ParseException
        errors.append(ParseException)  # InvalidChunkSize, ChunkMissingTerminator, InvalidChunkExtension
    except ImportError:  # pragma: no cover - gunicorn is pinned; other servers raise OSError
        pass
    return tuple(errors)


_BODY_ERRORS = _body_errors()


class _SafeInput:
    """wsgi.input whose broken-wire errors become a 400 (MalformedBody) instead of a 500.

    The server parses a chunked body while the app reads it, so a bad chunk size or a
    missing terminator surfaces as an exception from `read()`, in the middle of a view.
    """

    def __init__(self, stream):
        self._stream = stream

    def _guard(self, method, *args):
        try:
            return method(*args)
        except MalformedBody:
            raise
        except BadRequest:
            raise  # werkzeug's own (ClientDisconnected, …) are 400s already
        except _BODY_ERRORS as exc:
            raise MalformedBody() from exc

    def read(self, *args):
        return self._guard(self._stream.read, *args)

    def readline(self, *args):
        return self._guard(self._stream.readline, *args)

    def readlines(self, *args):
        return self._guard(self._stream.readlines, *args)

    def __iter__(self):
        while True:
            line = self.readline()
            if not line:
                return
            yield line

    def close(self):
        close = getattr(self._stream, "close", None)
        if close is not None:
            close()


class SafeInputMiddleware:
    """Wrap wsgi.input so every reader (gzip inflation, JSON, forms) sees a 400 for a broken body."""

    def __init__(self, wsgi_app):
        self.wsgi_app = wsgi_app

    def __call__(self, environ, start_response):
        stream = environ.get("wsgi.input")
        if stream is not None:
            environ["wsgi.input"] = _SafeInput(stream)
        return self.wsgi_app(environ, start_response)
