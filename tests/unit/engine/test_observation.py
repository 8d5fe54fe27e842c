"""Observation processing: string sorting, vector symbols and event assembly (engine.md §2)."""

import re

import numpy as np
import pytest

from kato_web.engine.observation import (
    Observation,
    ObservationError,
    VectorDimensionError,
    build_event,
    vector_dimension,
    vector_symbol,
)

VCTR_123 = "VCTR|fe5de4472f7e4d5c9cdd19cadebfa06fe3da8e43"


# engine.md §2.2 and §10.1 (test_sorting_behavior.py): plain code-point order, duplicates kept.
@pytest.mark.parametrize(
    ("strings", "expected"),
    [
        (["Zoo", "Apple", "apple"], ["Apple", "Zoo", "apple"]),
        (["test_2", "test_1", "test_10"], ["test_1", "test_10", "test_2"]),
        (["z", "", "a", "middle"], ["", "a", "middle", "z"]),
        (["z", "a", "m"], ["a", "m", "z"]),
        (["10", "2", "1", "20", "100", "3"], ["1", "10", "100", "2", "20", "3"]),
        (["zebra", "alpha", "beta"], ["alpha", "beta", "zebra"]),
        (["b", "a", "b"], ["a", "b", "b"]),
    ],
)
def test_strings_are_sorted_by_code_point(strings, expected):
    assert build_event(strings, [], sort_symbols=True) == expected


def test_sorting_off_keeps_the_given_order():
    # Spec README decision 2: the session's sort_symbols is honoured.
    assert build_event(["z", "a", "m"], [], sort_symbols=False) == ["z", "a", "m"]


def test_build_event_does_not_mutate_its_input():
    strings = ["z", "a"]
    build_event(strings, [], sort_symbols=True)
    assert strings == ["z", "a"]


# engine.md §2.4: no strings and no vectors -> no event; [''] is a real event.
def test_empty_inputs_build_an_empty_event():
    assert build_event([], [], sort_symbols=True) == []


def test_empty_string_is_a_symbol():
    assert build_event([""], [], sort_symbols=True) == [""]


# engine.md §2.3: the three verified vector names.
@pytest.mark.parametrize(
    ("vectors", "expected"),
    [
        ([[1.0, 2.0, 3.0]], VCTR_123),
        ([[0.5, 0.5], [1.0, 0.0]], "VCTR|f11daefdddee30b6a7a043c084fad802f0553a99"),
        ([[0.1, 0.2, 0.3]], "VCTR|e09ff768f2b2a0f5d5e78932dc977709e8c35f57"),
    ],
)
def test_verified_vector_names(vectors, expected):
    assert vector_symbol(vectors) == expected


def test_integer_and_bool_components_are_coerced_to_float():
    # engine.md §2.3: '[1 2 3]' would hash differently; kato-web coerces like the API layer does.
    assert vector_symbol([[1, 2, 3]]) == VCTR_123
    assert vector_symbol([[True, False]]) == vector_symbol([[1.0, 0.0]])


def test_vectors_are_summed_before_naming():
    # engine.md §2.3 step 1: one symbol for the element-wise sum.
    assert vector_symbol([[0.5, 1.0, 1.5], [0.5, 1.0, 1.5]]) == VCTR_123


def test_vector_name_ignores_global_numpy_print_options():
    # str(ndarray) follows global print options; names must not.
    with np.printoptions(precision=2, floatmode="fixed"):
        assert vector_symbol([[0.1, 0.2, 0.3]]) == "VCTR|e09ff768f2b2a0f5d5e78932dc977709e8c35f57"


def test_vector_names_collide_after_8_digit_rounding():
    # engine.md §2.3: numpy prints at most 8 fractional digits, so these collide (documented quirk).
    assert vector_symbol([[0.1, 0.2]]) == vector_symbol([[0.1 + 1e-12, 0.2]])
    assert vector_symbol([[0.1, 0.2]]) != vector_symbol([[0.1 + 1e-6, 0.2]])


def test_vector_symbol_rejects_an_empty_list():
    with pytest.raises(ValueError):
        vector_symbol([])


def test_vector_symbol_rejects_an_empty_vector():
    with pytest.raises(VectorDimensionError):
        vector_symbol([[]])


def test_ragged_vectors_are_rejected_not_broadcast():
    with pytest.raises(VectorDimensionError) as info:
        vector_symbol([[1.0, 2.0, 3.0], [1.0]])
    assert info.value.expected_dimension == 3
    assert info.value.actual_dimension == 1
    assert info.value.vector_name is None
    assert isinstance(info.value, ObservationError)
    assert isinstance(info.value, ValueError)


def test_vector_dimension():
    assert vector_dimension([]) is None
    assert vector_dimension([[1.0, 2.0], [3.0, 4.0]]) == 2
    assert vector_dimension([[1.0, 2.0]], expected_dim=2) == 2


def test_vector_dimension_checks_the_expected_dimension():
    with pytest.raises(VectorDimensionError) as info:
        vector_dimension([[1.0, 2.0]], expected_dim=3)
    assert (info.value.expected_dimension, info.value.actual_dimension) == (3, 2)
    assert info.value.message == str(info.value)


def test_vector_dimension_rejects_an_empty_inner_vector():
    with pytest.raises(VectorDimensionError) as info:
        vector_dimension([[1.0], []])
    assert info.value.actual_dimension == 0


def test_error_detail_has_the_api_shape_b_fields():
    # api.md §7.3.1: the 400 body's detail object.
    error = VectorDimensionError("bad", expected_dimension=3, actual_dimension=2)
    assert error.as_detail() == {
        "error": "VectorDimensionError",
        "message": "bad",
        "expected_dimension": 3,
        "actual_dimension": 2,
        "vector_name": None,
    }
    error.observation_index = 4
    assert error.as_detail()["observation_index"] == 4


# engine.md §2.4: vector symbols first, even though 'A' < 'V'.
def test_vector_symbols_come_before_strings():
    assert build_event(["Apple"], [[1.0, 2.0, 3.0]], sort_symbols=True) == [VCTR_123, "Apple"]


def test_multimodal_event_has_one_vector_symbol_and_sorted_strings():
    # engine.md §10.1: strings ['multi','modal'] plus 2 vectors -> 'modal' before 'multi'; [REF] 1 VCTR.
    event = build_event(["multi", "modal"], [[0.1, 0.2], [0.3, 0.4]], sort_symbols=True)
    assert len(event) == 3
    assert re.fullmatch(r"VCTR\|[0-9a-f]{40}", event[0])
    assert event[1:] == ["modal", "multi"]


def test_vector_only_event():
    assert build_event([], [[1.0, 2.0, 3.0]], sort_symbols=False) == [VCTR_123]


def test_observation_defaults_are_independent():
    first, second = Observation(), Observation()
    first.strings.append("a")
    first.emotives["joy"] = 1.0
    assert second.strings == [] and second.emotives == {}
    assert second.vectors == [] and second.metadata == {} and second.unique_id is None
