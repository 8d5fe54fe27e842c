"""The orjson-backed JSON provider gives the values Flask's default provider gives."""
import datetime
import decimal
import json
import math
import random

from flask import Flask
from flask.json.provider import DefaultJSONProvider

from kato_web.web import json_provider


def _apps():
    fast, slow = Flask("fast"), Flask("slow")
    json_provider.init_app(fast)
    slow.json = DefaultJSONProvider(slow)
    slow.json.sort_keys = False
    return fast, slow


def test_same_values_as_the_default_provider():
    fast, slow = _apps()
    assert isinstance(fast.json, json_provider.FastJSONProvider)
    rng = random.Random(1)
    floats = [rng.random() * 10 ** rng.randint(-12, 18) for _ in range(500)] + [0.1, 1e16, 1e-10, -0.0, 2.0]
    obj = {"floats": floats, "text": "ünïcödé ✓ \"q\" \\", "ints": [1, -2, 2 ** 62], "nested": [{"b": 1, "a": [None, True]}]}
    with fast.app_context():
        fast_body = fast.json.response(obj).get_data()
    with slow.app_context():
        slow_body = slow.json.response(obj).get_data()
    assert json.loads(fast_body) == json.loads(slow_body)
    assert list(json.loads(fast_body)) == ["floats", "text", "ints", "nested"]  # insertion order
    assert [math.copysign(1, x) for x in json.loads(fast_body)["floats"]] == [math.copysign(1, x) for x in floats]


def test_falls_back_where_orjson_would_differ():
    fast, slow = _apps()
    for obj in ({"big": 2 ** 70}, {"when": datetime.date(2026, 11, 27)},
                {"d": decimal.Decimal("1.5")}, {1: "int key"}):
        with fast.app_context():
            got = fast.json.response(obj).get_data()
        with slow.app_context():
            want = slow.json.response(obj).get_data()
        assert got == want, obj
    with fast.app_context():
        # NaN is not JSON: written as null (the standard encoder's NaN token breaks strict parsers)
        assert json.loads(fast.json.response({"x": float("nan")}).get_data()) == {"x": None}
        assert fast.json.dumps({"a": 1}) == '{"a":1}'
        assert json.loads(fast.json.dumps({"a": [1.5]}, indent=2)) == {"a": [1.5]}
