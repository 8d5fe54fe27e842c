"""Pattern hashing and the learn-time emotive/metadata helpers (engine.md §4)."""

import re

import pytest

from kato_web.engine.pattern import (
    PATTERN_PREFIX,
    LearnRequest,
    accumulate_metadata,
    average_emotives,
    emotive_snapshot,
    make_learn_request,
    merge_metadata,
    pattern_hash,
    pattern_name,
    push_emotive_window,
    strip_prefix,
    total_symbols,
)

# engine.md §4.1: all eleven verified names.
VERIFIED_NAMES = [
    ([["a", "b"], ["c"]], "PTRN|e9e43f2309079f2843665ab773996d99489306d6"),
    ([["a"], ["b"], ["c"]], "PTRN|b98534b32c1d7489d4ce1a48724aa65aeecbdba9"),
    ([["a", "b"], ["c"], ["d"]], "PTRN|d31a36e9ce0eb82e3ec5e48ff40e4861474db5a1"),
    ([["hello", "world"], ["bar", "foo"]], "PTRN|0405596c4d7172818bfeb508925e83226d4c4971"),
    ([["a", "b"]], "PTRN|395314cc2f2880a00c3e6e11f1e02d8b8c45a0e4"),
    ([["a"], ["b"]], "PTRN|76d7efca2e96cb5eeddf4e06ac96a0f424630135"),
    ([["b"], ["a"]], "PTRN|596fdf45f7ff90e6bfc83b767a9de2695132ed03"),
    ([["it's"], ["x"]], "PTRN|271339250f33fe945c5a24f7deb31f02ce16ddb5"),
    ([["\u00e9"], ["b"]], "PTRN|81004b3a350f00f7ee0ee7355d3d23a8ad01407b"),
    ([["x", "y"], ["tab\tchar"]], "PTRN|f006975523a8a12f0d0a639fc6077bb380609af3"),
    (
        [["VCTR|fe5de4472f7e4d5c9cdd19cadebfa06fe3da8e43", "hello"]],
        "PTRN|a858f23400979aae40617fc94af41a140a2da9af",
    ),
]


@pytest.mark.parametrize(("events", "expected"), VERIFIED_NAMES)
def test_verified_pattern_names(events, expected):
    # engine.md §4.1
    assert pattern_name(events) == expected
    assert pattern_hash(events) == expected[len(PATTERN_PREFIX):]


def test_hash_input_is_python_repr_with_escapes():
    # engine.md §4.1: the TAB symbol is hashed as backslash + t, "it's" with double quotes.
    assert str([["x", "y"], ["tab\tchar"]]) == "[['x', 'y'], ['tab\\tchar']]"
    assert str([["it's"], ["x"]]) == "[[\"it's\"], ['x']]"


def test_tuples_hash_like_lists():
    # Normalising to plain lists: a tuple's repr uses parentheses and would give another digest.
    assert pattern_name((("a", "b"), ("c",))) == VERIFIED_NAMES[0][1]


def test_non_str_symbols_are_rejected():
    with pytest.raises(TypeError):
        pattern_hash([["a", 1]])


def test_name_format():
    # engine.md §10.2: PTRN| plus 40 lowercase hex.
    assert re.fullmatch(r"PTRN\|[0-9a-f]{40}", pattern_name([["x"], ["y"]]))


def test_grouping_order_and_case_change_the_name():
    # engine.md §4.1 and §10.2: grouping matters; abc/cba/bac differ; case-sensitive.
    assert pattern_name([["a", "b"]]) != pattern_name([["a"], ["b"]])
    orders = [[["a"], ["b"], ["c"]], [["c"], ["b"], ["a"]], [["b"], ["a"], ["c"]]]
    assert len({pattern_name(p) for p in orders}) == 3
    assert pattern_name([["Hello"], ["World"]]) != pattern_name([["hello"], ["world"]])


def test_strip_prefix():
    assert strip_prefix("PTRN|abc") == "abc"
    assert strip_prefix("abc") == "abc"
    assert strip_prefix("xPTRN|abc") == "xPTRN|abc"


def test_total_symbols():
    assert total_symbols([]) == 0
    assert total_symbols([["a", "b"], ["c"], [""]]) == 4


# engine.md §4.4
def test_average_emotives_per_key_over_dicts_containing_it():
    result = average_emotives([{"happy": 4, "sad": 2}, {"happy": 6}, {"sad": 4}])
    assert result == {"happy": 5.0, "sad": 3.0}
    assert all(isinstance(v, float) for v in result.values())


def test_average_emotives_keeps_first_appearance_order():
    assert list(average_emotives([{"b": 1.0}, {"a": 1.0, "b": 2.0}, {"c": 0.0}])) == ["b", "a", "c"]


def test_average_emotives_sums_in_accumulation_order():
    # sum left-to-right then divide: (0.1 + 0.2) + 0.3 is not 0.1 + (0.2 + 0.3) in floats.
    values = [0.1, 0.2, 0.3]
    expected = ((0.1 + 0.2) + 0.3) / 3
    assert average_emotives([{"x": v} for v in values])["x"] == expected


def test_average_of_nothing_is_empty():
    assert average_emotives([]) == {}


def test_emotive_snapshot_drops_exact_zeros():
    # engine.md §4.4 "e*": keys whose average is exactly 0 are removed.
    assert emotive_snapshot([{"joy": 1.0, "fear": 0.5}, {"fear": -0.5}]) == {"joy": 1.0}
    assert emotive_snapshot([]) == {}


def test_emotive_window_worked_example():
    # engine.md §4.4: e* = {joy:.5, energy:.5}; re-learn with {joy:1.0}; prediction reports the average.
    accumulator = [{"joy": 0.9, "energy": 0.8}, {"joy": 0.1, "energy": 0.2}, {"joy": 0.5, "energy": 0.5}]
    first = emotive_snapshot(accumulator)
    assert first == {"joy": 0.5, "energy": 0.5}
    window = push_emotive_window([], first, persistence=5)
    assert window == [{"joy": 0.5, "energy": 0.5}]
    window = push_emotive_window(window, emotive_snapshot([{"joy": 1.0}]), persistence=5)
    assert window == [{"joy": 0.5, "energy": 0.5}, {"joy": 1.0}]
    assert average_emotives(window) == {"joy": 0.75, "energy": 0.5}


def test_emotive_window_keeps_last_persistence_entries_and_skips_empty():
    window: list[dict] = []
    for i in range(7):
        window = push_emotive_window(window, {"v": float(i)}, persistence=5)
    assert window == [{"v": float(i)} for i in range(2, 7)]
    assert push_emotive_window(window, {}, persistence=5) == window


def test_emotive_window_returns_a_new_list():
    window = [{"v": 1.0}]
    updated = push_emotive_window(window, {"v": 2.0}, persistence=5)
    assert window == [{"v": 1.0}]
    assert updated is not window


def test_emotive_window_rejects_zero_persistence():
    with pytest.raises(ValueError):
        push_emotive_window([], {"v": 1.0}, persistence=0)


# engine.md §4.6 and §10.5
def test_metadata_values_are_stringified():
    result = accumulate_metadata([{"count": 123, "price": 45.67, "flag": True, "name": "test"}])
    assert result == {"count": ["123"], "flag": ["True"], "name": ["test"], "price": ["45.67"]}
    assert list(result) == ["count", "flag", "name", "price"]


def test_metadata_accumulates_unique_sorted_values():
    result = accumulate_metadata(
        [
            {"book": "title2", "author": "Smith", "chapter": 2, "tag": "x"},
            {"book": "title1", "author": "Smith", "chapter": 1, "tag": "y"},
            {"tag": "x"},
        ]
    )
    assert result == {
        "author": ["Smith"],
        "book": ["title1", "title2"],
        "chapter": ["1", "2"],
        "tag": ["x", "y"],
    }


def test_metadata_list_value_is_stringified_whole():
    assert accumulate_metadata([{"tags": ["a", "b"]}]) == {"tags": ["['a', 'b']"]}


def test_empty_metadata_gives_empty_dict():
    assert accumulate_metadata([]) == {}


def test_merge_metadata_is_a_sorted_union():
    # engine.md §4.6 [REF] and §10.5: re-learn unions version {v1, v2}.
    old = {"version": ["v1"], "b": ["x"]}
    new = {"version": ["v2", "v1"], "a": ["y"]}
    merged = merge_metadata(old, new)
    assert merged == {"a": ["y"], "b": ["x"], "version": ["v1", "v2"]}
    assert list(merged) == ["a", "b", "version"]
    assert old == {"version": ["v1"], "b": ["x"]}


# engine.md §4.2: fewer than 2 symbols -> nothing to store.
def test_make_learn_request_needs_two_symbols():
    assert make_learn_request([], [], []) is None
    assert make_learn_request([["x"]], [{"joy": 1.0}], [{"k": "v"}]) is None


def test_single_event_with_several_symbols_is_a_pattern():
    request = make_learn_request([["alpha", "beta", "gamma"]], [], [])
    assert request is not None
    assert request.length == 3
    assert request.events == [["alpha", "beta", "gamma"]]


def test_make_learn_request_fields():
    events = [["a", "b"], ["c"], ["d"]]
    request = make_learn_request(events, [{"joy": 1.0}, {"joy": 0.0, "calm": 0.0}], [{"k": 1}])
    assert request == LearnRequest(
        name="PTRN|d31a36e9ce0eb82e3ec5e48ff40e4861474db5a1",
        hash="d31a36e9ce0eb82e3ec5e48ff40e4861474db5a1",
        events=[["a", "b"], ["c"], ["d"]],
        length=4,
        emotives={"joy": 0.5},
        metadata={"k": ["1"]},
        # kato-3.10.md decision 16: the raw dicts travel with the request (zeros kept).
        emotive_records=({"joy": 1.0}, {"joy": 0.0, "calm": 0.0}),
    )
    assert request.affinity == {"joy": 0.5, "calm": 0.0}  # kato-3.10.md §1.4c: the per-key mean
    # The request owns its events: later STM changes cannot leak into storage.
    events[0].append("z")
    assert request.events[0] == ["a", "b"]


def test_symbol_counts_are_sorted_by_symbol():
    request = make_learn_request([["b", "a"], ["b"], ["c", "b"]], [], [])
    assert list(request.symbol_counts.items()) == [("a", 1), ("b", 3), ("c", 1)]


def test_symbol_counts_support_the_global_counter_example():
    # engine.md §4.5: learn [[a],[b],[c]] twice, [[a],[b],[d]], [[x],[y]].
    learns = [[["a"], ["b"], ["c"]], [["a"], ["b"], ["c"]], [["a"], ["b"], ["d"]], [["x"], ["y"]]]
    freq: dict[str, int] = {}
    pmf: dict[str, int] = {}
    seen: set[str] = set()
    tsipf = 0
    for events in learns:
        request = make_learn_request(events, [], [])
        for symbol, count in request.symbol_counts.items():
            freq[symbol] = freq.get(symbol, 0) + count
            if request.hash not in seen:
                pmf[symbol] = pmf.get(symbol, 0) + 1
        seen.add(request.hash)
        tsipf += request.length
    assert freq == {"a": 3, "b": 3, "c": 2, "d": 1, "x": 1, "y": 1}
    assert pmf == {"a": 2, "b": 2, "c": 1, "d": 1, "x": 1, "y": 1}
    assert tsipf == 11
    assert len(seen) == 3
