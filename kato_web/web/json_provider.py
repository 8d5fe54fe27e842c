"""Flask's JSON provider on orjson: responses serialised ~10× faster, the same parsed values.

A predictions response at a large node runs to hundreds of kilobytes (100 full predictions and
one `future_potentials` entry per distinct future of every candidate); the standard library's
encoder spends more time on it than the prediction itself (docs/benchmarks-scale.md).

The output is compact JSON that parses to exactly the same values as Flask's default provider
gives: floats are written as their shortest round-trip representation by both, keys keep their
insertion order. Differences are in spelling only: non-ASCII characters are written as UTF-8
instead of ``\\uXXXX`` escapes, exponents without a ``+`` (``1e16``), and a float NaN or
infinity is written as ``null`` (the standard encoder writes ``NaN``/``Infinity``, which is not
JSON and which strict parsers reject). Anything else orjson does not serialise the same way
(dates, dataclasses, Decimal, integers beyond 64 bits, non-string keys) goes to the default
provider, so those keep Flask's representation. KATO_FAST_JSON=0 turns it off.
"""
from __future__ import annotations

from typing import Any

from flask.json.provider import DefaultJSONProvider

try:
    import orjson
except ImportError:  # pragma: no cover - orjson is pinned in requirements.txt
    orjson = None

_OPTIONS = (orjson.OPT_PASSTHROUGH_DATETIME | orjson.OPT_PASSTHROUGH_DATACLASS
            | orjson.OPT_PASSTHROUGH_SUBCLASS) if orjson else 0


def writes_raw_json(app) -> bool:
    """Whether `app`'s provider can embed ready JSON text given as `raw_json(text)`."""
    return orjson is not None and isinstance(app.json, FastJSONProvider)


def raw_json(data: bytes) -> Any:
    """Wrap JSON text so the orjson provider writes it verbatim, without parsing it."""
    return orjson.Fragment(data)


class _Fallback(Exception):
    """Raised from ``default`` to hand the whole object to the standard encoder."""


def _refuse(value: Any) -> Any:
    raise _Fallback


class FastJSONProvider(DefaultJSONProvider):
    """DefaultJSONProvider whose compact dumps go through orjson when it gives the same values."""

    def _fast(self, obj: Any, newline: bool = False) -> bytes | None:
        try:
            # orjson appends the response's newline itself: a megabyte predictions answer is
            # then not copied once more to add it.
            data = orjson.dumps(obj, default=_refuse,
                                option=(_OPTIONS | orjson.OPT_APPEND_NEWLINE) if newline else _OPTIONS)
        except (_Fallback, TypeError, orjson.JSONEncodeError):
            return None
        return data

    def dumps(self, obj: Any, **kwargs: Any) -> str:
        if orjson is not None and not kwargs.get("indent") and not kwargs.get("sort_keys", self.sort_keys):
            data = self._fast(obj)
            if data is not None:
                return data.decode("utf-8")
        return super().dumps(obj, **kwargs)

    def response(self, *args: Any, **kwargs: Any):
        obj = self._prepare_response_obj(args, kwargs)
        compact = not ((self.compact is None and self._app.debug) or self.compact is False)
        if orjson is not None and compact and not self.sort_keys:
            data = self._fast(obj, newline=True)
            if data is not None:
                return self._app.response_class(data, mimetype=self.mimetype)
        return super().response(*args, **kwargs)


def init_app(app, enabled: bool = True) -> None:
    """Install the fast provider (unless disabled: KATO_FAST_JSON=0, or orjson is missing); keys unsorted."""
    if orjson is not None and enabled:
        app.json = FastJSONProvider(app)
    app.json.sort_keys = False
