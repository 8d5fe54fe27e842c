"""The JSON columns' codec (store/jsoncodec.py): orjson for speed, the standard library where
orjson would store or read something else."""
from __future__ import annotations

import json

from kato_web.store import jsoncodec
from kato_web.store import repositories as repo


def test_the_codec_reads_back_what_it_writes_and_keeps_the_escapes_of_non_ascii_text():
    values = [
        {"stm": [["a", "b"], ["c"]], "time": 3, "emotives": [{"joy": 0.1 + 0.2, "x": -1e-300, "y": 1e16}]},
        [{"name": "é✓", "tags": ["\u2028", "q\"uote", "back\\slash", "\x01"]}],
        {"big": 2 ** 70, "small": -(2 ** 63)},  # beyond orjson's 64 bits: the standard library
        {1: "int key"},  # orjson refuses non-string keys; json writes "1"
    ]
    deep = current = []
    for _ in range(400):  # deeper than orjson writes (254 levels)
        current.append([])
        current = current[0]
    values.append(deep)
    for value in values:
        text = jsoncodec.dumps(value)
        assert jsoncodec.loads(text) == json.loads(json.dumps(value))
        assert jsoncodec.loads(text.encode()) == json.loads(text)
    assert jsoncodec.dumps(["é"]) == json.dumps(["é"]) == '["\\u00e9"]'
    assert jsoncodec.dumps({"a": [1.5, "b"]}) == '{"a":[1.5,"b"]}'  # compact, ASCII
    # Text the standard library wrote: NaN, and integers beyond 64 bits, which orjson would
    # read as floats, are read exactly.
    for text in ('[NaN, 1]', '{"e": [12345678901234567890123, -98765432109876543210]}',
                 '["s12345678901234567890", 1.2345678901234567e+300]'):
        got, want = jsoncodec.loads(text), json.loads(text)
        assert repr(got) == repr(want) and repr(jsoncodec.loads(text.encode())) == repr(want)
    assert type(jsoncodec.loads("[18446744073709551615]")[0]) is int
    # Predictions the engine wrote as JSON are stored as that text.
    from kato_web.engine.types import JSONList

    written = JSONList('[{"name":"n","v":0.1}]'.encode(), 1)
    assert jsoncodec.dumps(written) == '[{"name":"n","v":0.1}]'


def test_a_scalar_json_value_reads_back(kato):
    # SQLite stores the JSON text "9" as the number 9 (a JSON column has numeric affinity) and
    # hands back the number, which SQLAlchemy passes through when the parser refuses it.
    with kato.db.transaction() as conn:
        for key, value in (("n", 9), ("f", 0.5), ("s", "text"), ("b", True), ("l", [1, "é"])):
            repo.save_setting(conn, key, value, 0.0)
        assert repo.load_settings(conn) == {"n": 9, "f": 0.5, "s": "text", "b": True, "l": [1, "é"]}


def test_a_learned_non_ascii_symbol_is_found_by_the_pattern_search(kato):
    events = [["café", "naïve"], ["✓"]]
    learn = repo.PatternLearn("b" * 40, events, 3, {"café": 1, "naïve": 1, "✓": 1},
                              emotives_window_fn=lambda old: old, metadata_merge_fn=lambda old, _new: old)
    with kato.db.transaction() as conn:
        repo.learn_patterns(conn, "json_search_kato", [learn], now=1.0)
        found = repo.search_patterns(conn, "json_search_kato", symbol="naïve")
        missing = repo.search_patterns(conn, "json_search_kato", symbol="naive")
    assert [row["name"] for row in found] == ["b" * 40] and found[0]["events"] == events
    assert missing == []
