"""The session state machine: observe, auto-learn, learn, clear, observe-sequence.

engine.md §2.5, §2.6, §3, §10.1, §10.2, §13; api.md §6.4, §6.11, §7.3, §10; spec README decision 11.
"""

import itertools
import json
import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from kato_web.engine.observation import Observation, VectorDimensionError
from kato_web.engine.pattern import average_emotives, merge_metadata, pattern_name, push_emotive_window
from kato_web.engine.stm import (
    MAX_ACCUMULATOR,
    MAX_STM_EVENTS,
    SessionState,
    StmConfig,
    clear_stm,
    learn,
    observe,
    observe_sequence,
)

DEFAULT = StmConfig()


def obs(*strings, **kwargs) -> Observation:
    return Observation(strings=list(strings), **kwargs)


def run(observations, cfg=DEFAULT, state=None):
    """Observe each item in turn; return the final state and the list of outcomes."""
    state = state or SessionState()
    outcomes = []
    for item in observations:
        outcome = observe(state, item, cfg)
        outcomes.append(outcome)
        state = outcome.state
    return state, outcomes


def counter_ids():
    counter = itertools.count()
    return lambda: f"seq-obs-{next(counter)}"


# ---------------------------------------------------------------- observe basics (engine.md §10.1)


def test_observe_single_string():
    state, _ = run([obs("hello")])
    assert state.stm == [["hello"]]
    assert state.time == 1


def test_observe_several_strings_make_one_event():
    state, outcomes = run([obs("a", "b", "c")])
    assert state.stm == [["a", "b", "c"]]
    assert outcomes[0].event == ["a", "b", "c"]


def test_empty_observation_leaves_stm_but_advances_time():
    # engine.md §2.4, §2.5: ignored for STM purposes, time still advances.
    state, outcomes = run([obs("a"), Observation()])
    assert state.stm == [["a"]]
    assert state.time == 2
    assert outcomes[1].event == []
    assert outcomes[1].learned == [] and outcomes[1].prediction_stm is None


def test_empty_observations_between_events():
    state, _ = run([obs("first"), obs(), obs("second"), obs(), obs("third")])
    assert state.stm == [["first"], ["second"], ["third"]]
    assert state.time == 5


def test_vector_observation_yields_exactly_one_vctr_symbol():
    # engine.md §10.1 / §2.3 step 4: [REF] exactly one VCTR symbol.
    state, _ = run([Observation(vectors=[[1.0, 2.0, 3.0]])])
    assert state.stm == [["VCTR|fe5de4472f7e4d5c9cdd19cadebfa06fe3da8e43"]]


def test_events_are_sorted_individually():
    # engine.md §10.1 test_sorting_behavior.py
    state, _ = run([obs("z", "y", "x"), obs("c", "b", "a"), obs("3", "2", "1")])
    assert state.stm == [["x", "y", "z"], ["a", "b", "c"], ["1", "2", "3"]]


def test_sort_symbols_false_is_honoured():
    # Spec README decision 2.
    state, _ = run([obs("z", "a")], StmConfig(sort_symbols=False))
    assert state.stm == [["z", "a"]]


def test_empty_string_observation_adds_an_event():
    state, _ = run([obs("")])
    assert state.stm == [[""]]


def test_emotives_only_observation_changes_accumulator_not_stm():
    # engine.md §11.5: {"emotives": ...} alone is accepted and leaves STM alone.
    state, _ = run([obs("a"), Observation(emotives={"joy": 1.0})])
    assert state.stm == [["a"]]
    assert state.emotives == [{"joy": 1.0}]


# ---------------------------------------------------------------- percept (api.md §6.11)


def test_percept_data():
    state, _ = run(
        [
            obs("x", emotives={"joy": 0.2}),
            Observation(
                strings=["b", "a"], vectors=[[1, 2]], emotives={"joy": 0.4, "calm": 1.0}, metadata={"src": "chat"}
            ),
        ],
        StmConfig(sort_symbols=False),
    )
    assert state.percept == {
        "strings": ["a", "b"],  # sorted even when sort_symbols is off
        "vectors": [[1.0, 2.0]],
        "emotives": average_emotives([{"joy": 0.2}, {"joy": 0.4, "calm": 1.0}]),
        "path": [],
        "metadata": {"src": "chat"},
    }
    assert state.percept["emotives"]["calm"] == 1.0


def test_percept_is_replaced_by_an_empty_observation():
    state, _ = run([obs("x", metadata={"k": "v"}), obs()])
    assert state.percept == {"strings": [], "vectors": [], "emotives": {}, "path": [], "metadata": {}}


def test_percept_emotives_are_computed_before_auto_learn_reset():
    state, outcomes = run([obs("a"), obs("b", emotives={"joy": 0.8})], StmConfig(max_pattern_length=2))
    assert outcomes[1].learned[0].emotives == {"joy": 0.8}
    assert state.emotives == []
    assert state.percept["emotives"] == {"joy": 0.8}


# ------------------------------------------------ minimum one symbol (kato-3.10.md decision 14)


def test_one_symbol_gives_predictions():
    _, outcomes = run([obs("alpha")])
    # Changed by kato-3.10.md decision 14: was None (engine.md §2.6's ≥ 2 rule), one symbol predicts.
    assert outcomes[0].prediction_stm == [["alpha"]]


@pytest.mark.parametrize("observations", [[obs("one"), obs("two")], [obs("one", "two")]])
def test_two_symbols_give_predictions(observations):
    state, outcomes = run(observations)
    assert outcomes[-1].prediction_stm == state.stm
    assert outcomes[-1].prediction_stm is not state.stm


def test_empty_observations_do_not_make_predictions():
    # engine.md §10.1: an empty observation adds no event and makes no predictions.
    _, outcomes = run([obs("x"), obs(), obs(), obs("y")])
    # Changed by kato-3.10.md decision 14: [x] alone now predicts (was None first).
    assert [o.prediction_stm for o in outcomes] == [[["x"]], None, None, [["x"], ["y"]]]


def test_vector_symbols_count_towards_the_minimum():
    _, outcomes = run([Observation(strings=["a"], vectors=[[1.0]])])
    assert outcomes[0].prediction_stm is not None


def test_process_predictions_false_gives_none():
    _, outcomes = run([obs("a", "b")], StmConfig(process_predictions=False))
    assert outcomes[0].prediction_stm is None


def test_prediction_stm_is_taken_before_auto_learn():
    # engine.md §3: auto-learn runs after the observation's predictions.
    state, outcomes = run([obs("a"), obs("b")], StmConfig(max_pattern_length=2))
    assert outcomes[1].prediction_stm == [["a"], ["b"]]
    assert state.stm == []


# ---------------------------------------------------------------- auto-learn (engine.md §3)


def test_clear_mode_empties_stm():
    cfg = StmConfig(max_pattern_length=3, stm_mode="CLEAR")
    state, outcomes = run([obs("clear1"), obs("clear2"), obs("clear3")], cfg)
    assert state.stm == []
    assert outcomes[2].auto_learned_pattern == pattern_name([["clear1"], ["clear2"], ["clear3"]])
    assert [o.auto_learned_pattern for o in outcomes[:2]] == [None, None]
    state, _ = run([obs("after_clear")], cfg, state)
    assert state.stm == [["after_clear"]]


def test_rolling_mode_keeps_last_events():
    cfg = StmConfig(max_pattern_length=3, stm_mode="ROLLING")
    state, _ = run([obs("roll1"), obs("roll2"), obs("roll3")], cfg)
    assert state.stm == [["roll2"], ["roll3"]]
    state, _ = run([obs("roll4")], cfg, state)
    assert state.stm == [["roll3"], ["roll4"]]


def test_rolling_a_to_e_learns_abc_bcd_cde():
    cfg = StmConfig(max_pattern_length=3, stm_mode="ROLLING")
    state, outcomes = run([obs(s) for s in "ABCDE"], cfg)
    names = [o.auto_learned_pattern for o in outcomes]
    assert names == [
        None,
        None,
        pattern_name([["A"], ["B"], ["C"]]),
        pattern_name([["B"], ["C"], ["D"]]),
        pattern_name([["C"], ["D"], ["E"]]),
    ]
    assert [o.learned[0].events for o in outcomes[2:]] == [
        [["A"], ["B"], ["C"]],
        [["B"], ["C"], ["D"]],
        [["C"], ["D"], ["E"]],
    ]
    assert state.stm == [["D"], ["E"]]


@pytest.mark.parametrize(("mpl", "symbols", "final_size"), [(2, "ABC", 1), (4, "ABCDE", 3)])
def test_rolling_final_sizes(mpl, symbols, final_size):
    state, _ = run([obs(s) for s in symbols], StmConfig(max_pattern_length=mpl, stm_mode="ROLLING"))
    assert len(state.stm) == final_size


def test_rolling_with_multi_symbol_events():
    cfg = StmConfig(max_pattern_length=3, stm_mode="ROLLING")
    state, _ = run([obs("single"), obs("multi", "symbol"), obs("another"), obs("event", "last")], cfg)
    assert state.stm == [["another"], ["event", "last"]]


def test_max_pattern_length_zero_never_learns():
    state, outcomes = run([obs(f"e{i}") for i in range(10)], StmConfig(max_pattern_length=0))
    assert len(state.stm) == 10
    assert all(o.learned == [] and o.auto_learned_pattern is None for o in outcomes)


def test_invalid_mode_behaves_as_clear():
    cfg = StmConfig(max_pattern_length=3, stm_mode="INVALID_MODE")
    state, outcomes = run([obs("a"), obs("b"), obs("c")], cfg)
    assert state.stm == []
    assert outcomes[2].auto_learned_pattern == pattern_name([["a"], ["b"], ["c"]])


@pytest.mark.parametrize("mode", ["CLEAR", "ROLLING"])
def test_single_one_symbol_event_is_cleared_without_a_pattern(mode):
    # engine.md §3: len(STM) == 1 in any mode; nothing stored, STM still cleared.
    state, outcomes = run([obs("x")], StmConfig(max_pattern_length=1, stm_mode=mode))
    assert state.stm == []
    assert outcomes[0].auto_learned_pattern is None
    assert outcomes[0].learned == []


def test_single_two_symbol_event_is_learned_with_mpl_one():
    state, outcomes = run([obs("x", "y")], StmConfig(max_pattern_length=1, stm_mode="ROLLING"))
    assert state.stm == []
    assert outcomes[0].auto_learned_pattern == pattern_name([["x", "y"]])


def test_rolling_with_longer_pre_existing_stm_keeps_mpl_minus_one():
    # max_pattern_length raised mid-session: the whole STM is learned, the last mpl-1 events kept.
    start = SessionState(stm=[["a"], ["b"], ["c"], ["d"]])
    state, outcomes = run([obs("e")], StmConfig(max_pattern_length=3, stm_mode="ROLLING"), start)
    assert outcomes[0].auto_learned_pattern == pattern_name([["a"], ["b"], ["c"], ["d"], ["e"]])
    assert state.stm == [["d"], ["e"]]


def test_rolling_with_mpl_one_and_pre_existing_stm_keeps_nothing():
    # Decision: "keep the last mpl-1 = 0 events" (api.md §9.3), not Python's STM[-0:] (everything).
    start = SessionState(stm=[["a"], ["b"]])
    state, outcomes = run([obs("c")], StmConfig(max_pattern_length=1, stm_mode="ROLLING"), start)
    assert outcomes[0].auto_learned_pattern == pattern_name([["a"], ["b"], ["c"]])
    assert state.stm == []


def test_auto_learned_pattern_includes_the_same_observations_emotives_and_metadata():
    # engine.md §2.5 [REF]: accumulated before the event and before auto-learn.
    cfg = StmConfig(max_pattern_length=2)
    items = [obs("a", emotives={"joy": 0.2}), obs("b", emotives={"joy": 0.4}, metadata={"k": 1})]
    _, outcomes = run(items, cfg)
    request = outcomes[1].learned[0]
    assert request.emotives == {"joy": (0.2 + 0.4) / 2}
    assert request.metadata == {"k": ["1"]}


def test_auto_learn_resets_accumulators():
    # Spec README decision 11.
    cfg = StmConfig(max_pattern_length=2)
    state, outcomes = run(
        [obs("a", emotives={"joy": 1.0}), obs("b"), obs("c", emotives={"joy": 0.5}), obs("d")], cfg
    )
    assert [o.learned[0].emotives for o in outcomes if o.learned] == [{"joy": 1.0}, {"joy": 0.5}]
    assert state.emotives == [] and state.metadata == []


def test_auto_learn_that_stores_nothing_still_resets_accumulators():
    # Decision: every learn call resets the accumulators, also when it stores nothing (engine.md §13).
    state, _ = run([obs("x", emotives={"joy": 1.0}, metadata={"k": "v"})], StmConfig(max_pattern_length=1))
    assert state.emotives == [] and state.metadata == []


def test_auto_learn_leaves_time_alone():
    state, _ = run([obs("a"), obs("b")], StmConfig(max_pattern_length=2))
    assert state.time == 2


def test_vector_pattern_name_end_to_end():
    # engine.md §4.1: [['VCTR|fe5d…', 'hello']] has a verified name.
    state, _ = run([Observation(strings=["hello"], vectors=[[1.0, 2.0, 3.0]])])
    _, request = learn(state)
    assert request.name == "PTRN|a858f23400979aae40617fc94af41a140a2da9af"


# ---------------------------------------------------------------- manual learn (engine.md §3, §10.2)


def test_manual_learn_clears_stm_and_keeps_time():
    state, _ = run([obs("x"), obs("y"), obs("z")])
    learned_state, request = learn(state)
    assert re.fullmatch(r"PTRN\|[0-9a-f]{40}", request.name)
    assert request.name == pattern_name([["x"], ["y"], ["z"]])
    assert learned_state.stm == []
    assert learned_state.time == 3
    assert learned_state.percept == state.percept


def test_manual_learn_of_api_example_carries_emotives():
    # api.md §10: observe [b,a], [c] with joy 1.0, [d]; learn.
    state, _ = run([obs("b", "a"), obs("c", emotives={"joy": 1.0}), obs("d")])
    assert state.stm == [["a", "b"], ["c"], ["d"]]
    _, request = learn(state)
    assert request.name == "PTRN|d31a36e9ce0eb82e3ec5e48ff40e4861474db5a1"
    assert request.length == 4
    assert request.emotives == {"joy": 1.0}


def test_learning_a_single_symbol_gives_nothing():
    state, _ = run([obs("single")])
    learned_state, request = learn(state)
    assert request is None
    assert learned_state.stm == []


def test_learning_an_empty_stm_is_safe():
    learned_state, request = learn(SessionState(time=4))
    assert request is None
    assert learned_state.stm == [] and learned_state.time == 4


def test_same_sequence_twice_gives_the_same_name():
    names = []
    for _ in range(2):
        state, _ = run([obs("a"), obs("b"), obs("c")])
        names.append(learn(state)[1].name)
    assert names[0] == names[1] == pattern_name([["a"], ["b"], ["c"]])


def test_emotives_do_not_change_the_name():
    plain, _ = run([obs("a"), obs("b")])
    moved, _ = run([obs("a", emotives={"joy": 1.0}), obs("b", metadata={"k": "v"})])
    assert learn(plain)[1].name == learn(moved)[1].name


def test_manual_learn_resets_accumulators():
    # Spec README decision 11: the next pattern carries only what was observed after the learn.
    state, _ = run([obs("a", emotives={"joy": 0.9}, metadata={"v": "v1"}), obs("b")])
    state, first = learn(state)
    assert state.emotives == [] and state.metadata == []
    state, _ = run([obs("c", emotives={"calm": 0.5}), obs("d")], state=state)
    _, second = learn(state)
    assert first.emotives == {"joy": 0.9} and first.metadata == {"v": ["v1"]}
    assert second.emotives == {"calm": 0.5} and second.metadata == {}


def test_learn_that_stores_nothing_resets_accumulators():
    state, _ = run([obs("x", emotives={"joy": 1.0})])
    state, request = learn(state)
    assert request is None
    assert state.emotives == []


def test_emotive_window_worked_example_through_sessions():
    # engine.md §4.4: the pattern's window gives {joy: 0.75, energy: 0.5}.
    state, _ = run(
        [
            obs("happy", emotives={"joy": 0.9, "energy": 0.8}),
            obs("sad", emotives={"joy": 0.1, "energy": 0.2}),
            obs("neutral", emotives={"joy": 0.5, "energy": 0.5}),
        ]
    )
    state, first = learn(state)
    assert first.emotives == {"joy": 0.5, "energy": 0.5}
    state, _ = run([obs("happy", emotives={"joy": 1.0}), obs("sad"), obs("neutral")], state=state)
    _, second = learn(state)
    assert second.name == first.name
    window = push_emotive_window(push_emotive_window([], first.emotives, 5), second.emotives, 5)
    assert window == [{"joy": 0.5, "energy": 0.5}, {"joy": 1.0}]
    assert average_emotives(window) == {"joy": 0.75, "energy": 0.5}


# ---------------------------------------------------------------- metadata (engine.md §4.6, §10.5)


def test_metadata_across_observations():
    state, _ = run(
        [
            obs("p1", metadata={"book": "title1", "author": "Smith", "chapter": 1, "tag": "t"}),
            obs("p2", metadata={"book": "title2", "author": "Smith", "chapter": 2, "tag": "u"}),
            obs("p3", metadata={"tag": "t"}),
        ]
    )
    _, request = learn(state)
    assert request.metadata == {
        "author": ["Smith"],
        "book": ["title1", "title2"],
        "chapter": ["1", "2"],
        "tag": ["t", "u"],
    }


def test_metadata_stringification_through_learn():
    state, _ = run([obs("a", "b", metadata={"count": 123, "price": 45.67, "flag": True, "name": "test"})])
    _, request = learn(state)
    assert request.metadata == {"count": ["123"], "flag": ["True"], "name": ["test"], "price": ["45.67"]}


def test_metadata_union_on_relearn():
    state, _ = run([obs("a", metadata={"version": "v1"}), obs("b")])
    state, first = learn(state)
    state, _ = run([obs("a", metadata={"version": "v2"}), obs("b")], state=state)
    _, second = learn(state)
    assert first.name == second.name
    assert merge_metadata(first.metadata, second.metadata) == {"version": ["v1", "v2"]}


def test_no_metadata_gives_empty_dict():
    state, _ = run([obs("a"), obs("b")])
    assert learn(state)[1].metadata == {}


def test_clear_stm_discards_accumulated_metadata():
    state, _ = run([obs("a", metadata={"secret": "x"}, emotives={"joy": 1.0})])
    state = clear_stm(state)
    state, _ = run([obs("b"), obs("c")], state=state)
    _, request = learn(state)
    assert request.metadata == {} and request.emotives == {}


# ---------------------------------------------------------------- clear (api.md §7.3.5)


def test_clear_stm_resets_everything():
    state, _ = run([obs("a", emotives={"joy": 1.0}, metadata={"k": "v"}), obs("b")])
    cleared = clear_stm(state)
    assert cleared == SessionState(stm=[], emotives=[], metadata=[], time=0, percept={})
    assert state.time == 2 and state.stm == [["a"], ["b"]]


# ---------------------------------------------------------------- caps (api.md §4.6)


def test_stm_and_accumulators_are_capped_keeping_the_most_recent():
    items = [obs(f"e{i}", emotives={"n": float(i)}, metadata={"i": i}) for i in range(1100)]
    outcome = observe_sequence(SessionState(), items, DEFAULT, id_factory=counter_ids())
    state = outcome.state
    assert MAX_STM_EVENTS == 1000 and MAX_ACCUMULATOR == 1000
    assert len(state.stm) == 1000
    assert state.stm[0] == ["e100"] and state.stm[-1] == ["e1099"]
    assert len(state.emotives) == 1000 and state.emotives[0] == {"n": 100.0}
    assert len(state.metadata) == 1000 and state.metadata[-1] == {"i": 1099}
    assert state.time == 1100


def test_single_observe_drops_the_oldest_entry_at_the_cap():
    start = SessionState(
        stm=[[f"e{i}"] for i in range(1000)],
        emotives=[{"n": float(i)} for i in range(1000)],
        metadata=[{"i": i} for i in range(1000)],
    )
    state = observe(start, obs("new", emotives={"n": -1.0}, metadata={"i": -1}), DEFAULT).state
    assert len(state.stm) == 1000 and state.stm[0] == ["e1"] and state.stm[-1] == ["new"]
    assert len(state.emotives) == 1000
    assert state.emotives[0] == {"n": 1.0} and state.emotives[-1] == {"n": -1.0}
    assert len(state.metadata) == 1000 and state.metadata[0] == {"i": 1}


# ---------------------------------------------------------------- vectors and the node dimension


def test_observe_checks_the_expected_dimension_without_changing_state():
    start = SessionState(stm=[["a"]], time=3)
    with pytest.raises(VectorDimensionError):
        observe(start, Observation(vectors=[[1.0, 2.0]]), DEFAULT, expected_dim=3)
    assert start == SessionState(stm=[["a"]], time=3)


def test_observe_reports_the_vector_dimension():
    assert observe(SessionState(), Observation(vectors=[[1.0, 2.0]]), DEFAULT).vector_dimension == 2
    assert observe(SessionState(), obs("a"), DEFAULT).vector_dimension is None


# ---------------------------------------------------------------- observe-sequence (api.md §6.4, §7.3.2)


def test_sequence_of_three_single_items():
    items = [obs("hello"), obs("world"), obs("test")]
    outcome = observe_sequence(SessionState(), items, DEFAULT, id_factory=counter_ids())
    assert outcome.state.stm == [["hello"], ["world"], ["test"]]
    assert [r["stm_length"] for r in outcome.results] == [1, 2, 3]
    assert [r["sequence_position"] for r in outcome.results] == [0, 1, 2]
    assert [r["unique_id"] for r in outcome.results] == ["seq-obs-0", "seq-obs-1", "seq-obs-2"]
    assert all(r["status"] == "okay" and r["auto_learned_pattern"] is None for r in outcome.results)
    assert outcome.auto_learned_patterns == [] and outcome.final_learned_pattern is None
    assert outcome.learned == []


def test_sequence_learn_at_end():
    outcome = observe_sequence(SessionState(), [obs("a"), obs("b"), obs("c")], DEFAULT, learn_at_end=True)
    name = pattern_name([["a"], ["b"], ["c"]])
    assert outcome.auto_learned_patterns == [name]
    assert outcome.final_learned_pattern == name
    assert [r.name for r in outcome.learned] == [name]
    assert outcome.state.stm == [] and outcome.final_stm_length == 0


def test_sequence_learn_at_end_with_one_symbol_gives_empty_name():
    outcome = observe_sequence(SessionState(), [obs("a")], DEFAULT, learn_at_end=True)
    assert outcome.final_learned_pattern == ""
    assert outcome.auto_learned_patterns == [""]
    assert outcome.learned == [] and outcome.state.stm == []


def test_sequence_clear_stm_between_keeps_only_the_last_event():
    start = SessionState(stm=[["old"]], emotives=[{"joy": 1.0}], time=7)
    outcome = observe_sequence(start, [obs("a"), obs("b"), obs("c")], DEFAULT, clear_stm_between=True)
    assert outcome.state.stm == [["c"]]
    # Item 0 keeps the pre-existing STM; accumulators and time are not reset.
    assert [r["stm_length"] for r in outcome.results] == [2, 1, 1]
    assert outcome.state.emotives == [{"joy": 1.0}]
    assert outcome.state.time == 10


def test_sequence_clear_between_and_learn_after_each_gives_three_names():
    items = [obs("a1", "a2"), obs("b1", "b2"), obs("c1", "c2")]
    outcome = observe_sequence(SessionState(), items, DEFAULT, learn_after_each=True, clear_stm_between=True)
    assert outcome.auto_learned_patterns == [
        pattern_name([["a1", "a2"]]),
        pattern_name([["b1", "b2"]]),
        pattern_name([["c1", "c2"]]),
    ]
    assert outcome.state.stm == [] and outcome.final_stm_length == 0
    assert [r["stm_length"] for r in outcome.results] == [0, 0, 0]  # measured after learn_after_each


def test_sequence_learn_after_each_appends_empty_names():
    outcome = observe_sequence(SessionState(), [obs("a"), obs(), obs("b")], DEFAULT, learn_after_each=True)
    # The empty item leaves STM empty, so no learn happens for it.
    assert outcome.auto_learned_patterns == ["", ""]
    assert outcome.learned == []


def test_sequence_api_example():
    # api.md §10: pre-existing STM of 2 events at time 5; x (u1), y; learn_at_end.
    start = SessionState(stm=[["p"], ["q"]], time=5)
    outcome = observe_sequence(
        start,
        [obs("x", unique_id="u1"), obs("y")],
        DEFAULT,
        learn_at_end=True,
        id_factory=lambda: "seq-obs-4be1",
    )
    assert outcome.initial_stm_length == 2 and outcome.final_stm_length == 0
    common = {"status": "okay", "auto_learned_pattern": None}
    assert outcome.results == [
        {**common, "sequence_position": 0, "stm_length": 3, "time": 6, "unique_id": "u1"},
        {**common, "sequence_position": 1, "stm_length": 4, "time": 7, "unique_id": "seq-obs-4be1"},
    ]
    name = pattern_name([["p"], ["q"], ["x"], ["y"]])
    assert outcome.auto_learned_patterns == [name] and outcome.final_learned_pattern == name


def test_default_sequence_ids_are_fresh_hex():
    outcome = observe_sequence(SessionState(), [obs("a"), obs("b", unique_id="")], DEFAULT)
    ids = [r["unique_id"] for r in outcome.results]
    assert all(re.fullmatch(r"seq-obs-[0-9a-f]{32}", i) for i in ids)
    assert ids[0] != ids[1]


def test_sequence_orders_learn_after_each_before_auto_learn():
    # api.md §6.4: per item the learn_after_each name first, then the auto-learn name;
    # `learned` keeps execution order (auto-learn ran first).
    start = SessionState(stm=[["p"]])
    cfg = StmConfig(max_pattern_length=2, stm_mode="ROLLING")
    outcome = observe_sequence(start, [obs("q", "r")], cfg, learn_after_each=True)
    auto, after = pattern_name([["p"], ["q", "r"]]), pattern_name([["q", "r"]])
    assert outcome.auto_learned_patterns == [after, auto]
    assert [r.name for r in outcome.learned] == [auto, after]
    assert outcome.results[0]["auto_learned_pattern"] == auto
    assert outcome.state.stm == []


def test_sequence_auto_learn_names_are_collected():
    cfg = StmConfig(max_pattern_length=2)
    outcome = observe_sequence(SessionState(), [obs("a"), obs("b"), obs("c"), obs("d")], cfg)
    names = [pattern_name([["a"], ["b"]]), pattern_name([["c"], ["d"]])]
    assert outcome.auto_learned_patterns == names
    assert [r["auto_learned_pattern"] for r in outcome.results] == [None, names[0], None, names[1]]


def test_empty_sequence_changes_nothing():
    start = SessionState(stm=[["a"]], time=3)
    outcome = observe_sequence(start, [], DEFAULT, learn_at_end=True)
    assert outcome.state == start
    assert outcome.results == [] and outcome.auto_learned_patterns == []
    assert outcome.final_learned_pattern is None
    assert outcome.initial_stm_length == outcome.final_stm_length == 1
    assert outcome.predictions_updated is False


def test_sequence_prediction_stm_is_the_last_items():
    outcome = observe_sequence(SessionState(), [obs("a"), obs("b"), obs("c")], DEFAULT, learn_at_end=True)
    assert outcome.prediction_stm == [["a"], ["b"], ["c"]]
    assert outcome.predictions_updated is True
    outcome = observe_sequence(SessionState(), [obs("a"), obs("b"), obs()], DEFAULT)
    assert outcome.prediction_stm is None and outcome.predictions_updated is True


def test_sequence_emotives_reach_the_final_pattern_wherever_placed():
    # api.md §9.5 placement irrelevance, with learn_at_end.
    joy = {"joy": 1.0}
    first = observe_sequence(SessionState(), [obs("a", emotives=joy), obs("b")], DEFAULT, learn_at_end=True)
    last = observe_sequence(SessionState(), [obs("a"), obs("b", emotives=joy)], DEFAULT, learn_at_end=True)
    assert first.learned[0].emotives == last.learned[0].emotives == {"joy": 1.0}


def test_sequence_vector_error_carries_the_index_and_changes_nothing():
    start = SessionState(stm=[["a"]])
    # A ragged list inside one observation is still an error (kato-3.10.md decision 17).
    items = [obs("x"), Observation(vectors=[[1.0, 2.0]]), Observation(vectors=[[1.0, 2.0], [1.0, 2.0, 3.0]])]
    with pytest.raises(VectorDimensionError) as info:
        observe_sequence(start, items, DEFAULT)
    assert info.value.observation_index == 2
    assert (info.value.expected_dimension, info.value.actual_dimension) == (2, 3)
    assert start == SessionState(stm=[["a"]])


def test_sequence_items_may_have_vectors_of_different_dimensions():
    # Changed with kato-3.10.md decision 17: no dimension lock, so items of two dimensions pass.
    items = [Observation(vectors=[[1.0, 2.0]]), Observation(vectors=[[1.0, 2.0, 3.0]])]
    outcome = observe_sequence(SessionState(), items, DEFAULT)
    assert len(outcome.state.stm) == 2
    assert [len(v) for _name, v in outcome.state.vectors] == [2, 3]  # both pending for the next learn


def test_sequence_reports_the_locked_dimension():
    outcome = observe_sequence(SessionState(), [obs("x"), Observation(vectors=[[1.0, 2.0]])], DEFAULT)
    assert outcome.vector_dimension == 2


# ---------------------------------------------------------------- state serialisation


def test_state_round_trips_through_json():
    state, _ = run([obs("a", emotives={"joy": 1.0}, metadata={"nested": {"k": [1, 2]}}), obs("b")])
    restored = SessionState.from_dict(json.loads(json.dumps(state.to_dict())))
    assert restored == state


def test_from_dict_defaults():
    assert SessionState.from_dict(None) == SessionState()
    assert SessionState.from_dict({"time": 3}) == SessionState(time=3)


def test_copy_is_deep():
    state = SessionState(stm=[["a"]], metadata=[{"k": ["v"]}], percept={"strings": ["a"]})
    clone = state.copy()
    clone.stm[0].append("b")
    clone.metadata[0]["k"].append("w")
    clone.percept["strings"].append("z")
    assert state == SessionState(stm=[["a"]], metadata=[{"k": ["v"]}], percept={"strings": ["a"]})


# ---------------------------------------------------------------- purity and determinism


def snapshot(state: SessionState) -> str:
    return json.dumps(state.to_dict(), sort_keys=True)


def test_operations_never_mutate_their_input():
    state, _ = run([obs("a", emotives={"joy": 1.0}, metadata={"k": [1]}), obs("b")])
    before = snapshot(state)
    item = Observation(strings=["z", "c"], vectors=[[1, 2]], emotives={"joy": 0.5}, metadata={"k": [2]})
    out = observe(state, item, StmConfig(max_pattern_length=3, stm_mode="ROLLING"))
    learn(state)
    clear_stm(state)
    options = {"learn_after_each": True, "learn_at_end": True, "clear_stm_between": True}
    observe_sequence(state, [item, item], DEFAULT, **options)
    assert snapshot(state) == before
    assert item.strings == ["z", "c"] and item.metadata == {"k": [2]}
    # The returned state shares nothing mutable with the input.
    out.state.emotives.append({"x": 1.0})
    out.state.metadata.append({"x": 1})
    assert snapshot(state) == before


def test_same_input_gives_identical_output():
    items = [
        obs("b", "a", emotives={"joy": 0.3}),
        Observation(vectors=[[0.1, 0.2]]),
        obs("c", metadata={"m": 1}),
    ]
    cfg = StmConfig(max_pattern_length=2, stm_mode="ROLLING")
    outcomes = [
        observe_sequence(SessionState(), items, cfg, learn_at_end=True, id_factory=counter_ids())
        for _ in range(2)
    ]
    assert outcomes[0] == outcomes[1]
    assert outcomes[0].learned  # something was actually compared


symbol = st.text(alphabet="abcxyz", max_size=3)
observation = st.builds(
    Observation,
    strings=st.lists(symbol, max_size=3),
    emotives=st.dictionaries(st.sampled_from(["joy", "fear"]), st.floats(-1, 1), max_size=2),
)


@settings(max_examples=60, deadline=None)
@given(
    items=st.lists(observation, max_size=12),
    mpl=st.integers(0, 4),
    mode=st.sampled_from(["CLEAR", "ROLLING", "OTHER"]),
)
def test_stm_invariants(items, mpl, mode):
    cfg = StmConfig(max_pattern_length=mpl, stm_mode=mode)
    state, outcomes = run(items, cfg)
    # Events are never empty, time counts every observation, auto-learn keeps STM below mpl.
    assert all(event for event in state.stm)
    assert state.time == len(items)
    if mpl > 0:
        assert len(state.stm) < mpl
    for outcome in outcomes:
        for request in outcome.learned:
            assert request.length >= 2 and request.name == pattern_name(request.events)


def test_observe_in_place_gives_the_same_outcome_as_observe_on_a_copy():
    # The service observes in place on a state it just decoded; the answer must not differ.
    cfg = StmConfig(max_pattern_length=3, stm_mode="ROLLING")
    for items in ([obs("a")], [obs("a"), obs("b", "c")], [obs("x", emotives={"j": 1.0}), obs("y"), obs("z")]):
        base, _ = run(items)
        item = Observation(strings=["q"], emotives={"j": 0.5}, metadata={"m": [1]})
        copied = observe(base, item, cfg)
        owned = SessionState.from_dict(base.to_dict())
        in_place = observe(owned, item, cfg, in_place=True)
        assert in_place == copied
        assert in_place.state is owned  # really no copy


def test_observe_offers_predictions_from_one_symbol_on():
    # kato-3.10.md decision 14: predictions need one symbol in the STM (engine.md §5.1 said two).
    one, _ = run([])
    # Changed by decision 14: was None.
    assert observe(one, obs("a"), DEFAULT).prediction_stm == [["a"]]
    two = observe(one, obs("a", "b"), DEFAULT)
    assert two.prediction_stm == [["a", "b"]]
    three, _ = run([obs("a")])
    assert observe(three, obs("b"), DEFAULT).prediction_stm == [["a"], ["b"]]


def test_an_in_place_prediction_stm_keeps_its_moment():
    # The observe-time prediction STM is the STM right after its event: later observes on the
    # same (in-place) state append to the state's STM, auto-learn replaces it, and neither may
    # reach a prediction STM handed out before.
    state, _ = run([obs("a"), obs("b")])
    first = observe(state, obs("c"), DEFAULT, in_place=True)
    assert first.prediction_stm == [["a"], ["b"], ["c"]]
    observe(state, obs("d"), DEFAULT, in_place=True)
    assert state.stm == [["a"], ["b"], ["c"], ["d"]]
    assert first.prediction_stm == [["a"], ["b"], ["c"]]
    learning = StmConfig(max_pattern_length=5, stm_mode="ROLLING")
    fifth = observe(state, obs("e"), learning, in_place=True)
    assert fifth.learned and state.stm == [["b"], ["c"], ["d"], ["e"]]
    assert fifth.prediction_stm == [["a"], ["b"], ["c"], ["d"], ["e"]]
    assert first.prediction_stm == [["a"], ["b"], ["c"]]
