"""gzip in both directions, with the request-size cap applied to the inflated body.

Requests: a body sent with `Content-Encoding: gzip` is inflated by a WSGI middleware
before Flask sees it, in chunks and with a hard limit, so a small "zip bomb" costs at
most `max_bytes + 1` bytes of memory before it is refused with 413. A body that is not
valid gzip gets 400. Both errors are raised inside Flask (a before_request hook reads
the verdict the middleware left in the environ), so they get KATO's JSON shape and the
usual headers.

Responses: a body larger than `min_size` bytes is gzipped when the client accepts
gzip (predictions can run to hundreds of kilobytes of JSON, which shrink ~4-10×). The
compressor is ISA-L's (the `isal` package: the same gzip format, measured ~3.5× faster
than zlib at level 1 on a 1 MB predictions answer, and a little smaller); zlib's gzip is
the fallback when it is not installed.
"""
from __future__ import annotations

import gzip
import io
import zlib

from flask import Flask, Response, request
from werkzeug.exceptions import RequestEntityTooLarge

from kato_web.web.errors import ApiError

try:
    from isal.igzip import compress as _isal_compress
except ImportError:  # pragma: no cover - isal is pinned in requirements.txt
    _isal_compress = None
ISAL_MAX_LEVEL = 3  # ISA-L's levels are 0-3; a higher KATO_GZIP_LEVEL asks zlib for more squeeze


def compressor(level: int):
    """Return f(body) → gzip bytes at `level`: ISA-L up to its level 3, zlib above it."""
    if _isal_compress is not None and level <= ISAL_MAX_LEVEL:
        return lambda body: _isal_compress(body, level, mtime=0)
    return lambda body: gzip.compress(body, compresslevel=level, mtime=0)

ERROR_KEY = "kato.request_body_error"
READ_CHUNK = 64 * 1024
COMPRESSIBLE = ("application/json", "text/", "application/openmetrics-text", "application/javascript")


class _TooLarge(Exception):
    pass


def _inflate(stream, length: int | None, max_bytes: int) -> bytes:
    """Inflate a gzip stream (members may be concatenated), refusing more than `max_bytes` out."""
    out = bytearray()
    inflater = zlib.decompressobj(16 + zlib.MAX_WBITS)
    remaining = length
    seen_input = False
    while remaining is None or remaining > 0:
        chunk = stream.read(READ_CHUNK if remaining is None else min(READ_CHUNK, remaining))
        if not chunk:
            break
        seen_input = True
        if remaining is not None:
            remaining -= len(chunk)
        data = chunk
        while data:
            if inflater.eof:
                inflater = zlib.decompressobj(16 + zlib.MAX_WBITS)
            # max_length bounds what one call may produce, so the limit holds within a chunk too.
            piece = inflater.decompress(data, max_bytes + 1 - len(out))
            out += piece
            if len(out) > max_bytes:
                raise _TooLarge()
            data = inflater.unused_data + inflater.unconsumed_tail if inflater.eof else inflater.unconsumed_tail
    if seen_input and not inflater.eof:
        raise zlib.error("truncated gzip stream")
    return bytes(out)


class GzipRequestMiddleware:
    """Inflate `Content-Encoding: gzip` request bodies with a size limit."""

    def __init__(self, wsgi_app, max_bytes: int):
        self.wsgi_app = wsgi_app
        self.max_bytes = max_bytes

    def __call__(self, environ, start_response):
        encoding = environ.get("HTTP_CONTENT_ENCODING")
        if encoding and encoding.strip().lower() in ("gzip", "x-gzip"):
            self._replace_body(environ)
        return self.wsgi_app(environ, start_response)

    def _replace_body(self, environ) -> None:
        raw_length = environ.get("CONTENT_LENGTH") or ""
        try:
            length = int(raw_length) if raw_length.strip() else None
        except ValueError:
            length = None
        body = b""
        try:
            body = _inflate(environ["wsgi.input"], length, self.max_bytes)
        except _TooLarge:
            environ[ERROR_KEY] = 413
        except (zlib.error, EOFError, OSError):
            environ[ERROR_KEY] = 400
        environ["wsgi.input"] = io.BytesIO(body)
        environ["CONTENT_LENGTH"] = str(len(body))
        environ.pop("HTTP_CONTENT_ENCODING", None)
        # The body is now plain and complete; werkzeug must not wait for more.
        environ["wsgi.input_terminated"] = False


def _accepts_gzip(header: str | None) -> bool:
    """Tell whether an Accept-Encoding header allows gzip (q > 0, by name or by `*`)."""
    if not header or ("gzip" not in header and "*" not in header):
        return False
    wildcard = None
    for part in header.split(","):
        name, *params = part.strip().split(";")
        quality = 1.0
        for param in params:
            key, _, value = param.strip().partition("=")
            if key.strip().lower() == "q":
                try:
                    quality = float(value)
                except ValueError:
                    quality = 0.0
        name = name.strip().lower()
        if name in ("gzip", "x-gzip"):
            return quality > 0
        if name == "*":
            wildcard = quality > 0
    return bool(wildcard)


def init_app(app: Flask, max_bytes: int, min_size: int = 1024, level: int = 1) -> None:
    """Install request inflation and response compression on `app`."""
    app.wsgi_app = GzipRequestMiddleware(app.wsgi_app, max_bytes)
    compress = compressor(level)

    @app.before_request
    def _request_body_verdict():
        error = request.environ.get(ERROR_KEY)
        if error == 413:
            raise RequestEntityTooLarge()
        if error == 400:
            raise ApiError(400, "Request body is not valid gzip")

    @app.after_request
    def _compress(response: Response) -> Response:
        if (response.direct_passthrough or response.is_streamed or response.status_code < 200
                or response.status_code in (204, 304) or "Content-Encoding" in response.headers):
            return response
        if not (response.mimetype or "").startswith(COMPRESSIBLE):
            return response
        body = response.get_data()
        if len(body) <= min_size:  # never compressed, so it does not vary by encoding
            return response
        response.vary.add("Accept-Encoding")
        if not _accepts_gzip(request.headers.get("Accept-Encoding")):
            return response
        response.set_data(compress(body))
        response.headers["Content-Encoding"] = "gzip"
        return response
