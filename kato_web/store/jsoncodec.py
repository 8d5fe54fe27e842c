"""How the JSON columns are written and read: orjson, with the standard library behind it.

Every observe reads and rewrites the session's state (the whole STM); a batch learn stores up
to max_predictions observe-time predictions; the standard json module took most of that time
(decoding a 340-event state: 0.38 ms against orjson's 0.04 ms; encoding 100 stored
predictions: 2.4 ms against 0.12 ms, while the node's lock was held). The values read back are
the same: orjson writes a float's shortest round-trip form, and both parsers read it exactly.

The standard library still does what orjson cannot do the same way:
- text with a non-ASCII character is written by `json.dumps`, whose ``\\uXXXX`` escapes the
  stored text has always had: the pattern search (repositories.search_patterns) looks for a
  symbol's `json.dumps` form in the stored events;
- values orjson refuses to write (nested deeper than its 254 levels, integers beyond 64 bits,
  keys that are not strings) go to json;
- text orjson refuses to read (NaN, which the standard library wrote for a float NaN, e.g. in
  an SQLite database) goes to json, and so does text with a run of 20 or more digits: orjson
  would read an integer beyond 64 bits (an imported emotive, say) as a float, json reads it
  exactly. (A float's repr never has 20 digits in a row; finding the run costs ~2 us per KB.)
Predictions the engine hands over as their JSON text (engine.types.JSONList: an observe's
stored predictions, which only cognition-data ever reads) are stored as that text.
One difference remains: a float NaN or infinity is written as null, as the JSON answers on the
wire already show it (web/json_provider.py); the request parser lets neither in.
The stored text is compact (no spaces after separators); nothing reads the text itself except
through a JSON parser and the search above.
"""
from __future__ import annotations

import json

import orjson

from kato_web.engine.types import JSONList


def dumps(value) -> str:
    """Return the JSON text stored for `value`."""
    if isinstance(value, JSONList):  # predictions the engine wrote as JSON (orjson's text)
        return value.text.decode("utf-8")
    try:
        raw = orjson.dumps(value)
    except TypeError:  # orjson.JSONEncodeError is one: too deep, an int beyond 64 bits, …
        return json.dumps(value)
    if raw.isascii():
        return raw.decode("ascii")
    return json.dumps(value)


_DIGITS_AS_ZERO = bytes.maketrans(b"123456789", b"000000000")
_LONG_INTEGER = b"0" * 20


def loads(text):
    """Return the value of stored JSON text (str or bytes)."""
    if isinstance(text, str):
        raw = text.encode("utf-8", "surrogatepass")
    elif isinstance(text, bytes):
        raw = text
    else:  # SQLite hands a scalar JSON number back as a number: json's TypeError says so
        return json.loads(text)
    if _LONG_INTEGER in raw.translate(_DIGITS_AS_ZERO):
        return json.loads(text)
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError:
        return json.loads(text)
