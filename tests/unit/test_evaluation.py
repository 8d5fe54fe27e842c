"""The accuracy evaluation (services/evaluation.py): metrics on hand-made cases, the protocol,
and a sweep over a set built so that exactly one threshold predicts best."""
from __future__ import annotations

import pytest

from kato_web.engine.predictor import PatternRecord, PredictConfig, predict
from kato_web.services import evaluation as ev

A, B, C, X, Y = ("a",), ("b",), ("c",), ("x",), ("y",)


# ---------------------------------------------------------------- metrics

def test_first_events_keep_rank_order_skip_empty_futures_and_repeats():
    futures = [[["y"], ["z"]], [], None, [["x"]], [["y"]], [["c", "b"]]]
    assert ev.first_events(futures) == [Y, X, ("b", "c")]


def test_rank_of_compares_events_as_symbol_sets():
    assert ev.rank_of([Y, ("b", "c")], ["c", "b"]) == 2
    assert ev.rank_of([Y], X) is None


def test_score_hand_made_case():
    guesses = [[X, Y], [Y, X], [Y, A, B, C, X], [], [A]]
    targets = [X, X, X, X, X]
    s = ev.score(guesses, targets, k=2)
    assert s.queries == 5
    assert s.hit1 == pytest.approx(1 / 5)      # only the first query has x first
    assert s.hitk == pytest.approx(2 / 5)      # x within the first 2: queries 1 and 2
    assert s.coverage == pytest.approx(4 / 5)  # the fourth query got no guess
    assert s.mrr == pytest.approx((1 + 1 / 2 + 1 / 5) / 5)


def test_score_of_nothing_and_bad_input():
    assert ev.score([], [], 3) == ev.Scores(0, 0.0, 0.0, 0.0, 0.0, 3)
    with pytest.raises(ValueError):
        ev.score([[X]], [], 1)
    with pytest.raises(ValueError):
        ev.score([[X]], [X], 0)


def test_markov_and_popular_baselines():
    train = [[["a"], ["b"]], [["a"], ["b"]], [["a"], ["c"]], [["c"], ["a"]]]
    markov = ev.MarkovBaseline(train)
    assert markov.guesses([["z"], ["a"]], 5) == [B, C]      # b followed a twice, c once
    assert markov.guesses([["b"]], 5) == []                 # nothing ever followed b
    popular = ev.PopularBaseline(train)
    assert popular.guesses([["q"]], 2) == [A, B]            # a: 4 times, b: 2, c: 2 (ties by event)
    queries = [ev.Query((A,), B), ev.Query((A,), C), ev.Query((B,), A)]
    result = ev.evaluate_baseline(markov, queries, k=1)
    assert (result["hit1"], result["hitk"], result["coverage"]) == pytest.approx((1 / 3, 1 / 3, 2 / 3))
    assert result["mrr"] == pytest.approx((1 + 1 / 2) / 3)


# ---------------------------------------------------------------- protocol

def test_split_is_seeded_disjoint_and_complete():
    data = [[[str(i)], ["z"]] for i in range(50)]
    train, test = ev.split(data, 0.2, seed=3)
    assert len(test) == 10 and len(train) == 40
    assert sorted(map(str, train + test)) == sorted(map(str, data))
    assert (train, test) == ev.split(data, 0.2, seed=3)
    assert test != ev.split(data, 0.2, seed=4)[1]


def test_queries_need_two_symbols_of_context_and_are_seeded():
    sequences = [[["a"], ["b"], ["c"], ["d"], ["e"]], [["a", "b"], ["c"]], [["a"], ["b"]], [["a"]]]
    queries = ev.make_queries(sequences, seed=1, max_context=3)
    assert queries == ev.make_queries(sequences, seed=1, max_context=3)
    assert len(queries) == 2  # [a] [b] has one symbol before its last event; [a] has none
    for q in queries:
        assert sum(len(e) for e in q.context) >= 2 and len(q.context) <= 3
    assert queries[1] == ev.Query((("a", "b"),), ("c",))


def test_build_knowledge_counts_like_learning():
    # engine.md §4.5's example: [[a],[b],[c]] twice, then [[a],[b],[d]], then [[x],[y]].
    index, stats = ev.build_knowledge([[["a"], ["b"], ["c"]], [["a"], ["b"], ["c"]],
                                       [["a"], ["b"], ["d"]], [["x"], ["y"]], [["lone"]]])
    assert dict(stats.pmf) == {"a": 2, "b": 2, "c": 1, "d": 1, "x": 1, "y": 1}
    assert (stats.n_symbols, stats.total_unique_patterns, stats.total_pattern_frequencies) == (6, 3, 3)
    records = list(index.records())
    assert [r.frequency for r in records] == [2, 1, 1]
    assert records[0].name == ev.pattern_digest([["a"], ["b"], ["c"]])


def test_index_answers_like_the_direct_predictor():
    train = [[["a"], ["b"], ["c"], ["d"]], [["a"], ["c"], ["e"]], [["b"], ["c"], ["f"], ["g"]]] * 2
    index, stats = ev.build_knowledge(train)
    records = [PatternRecord(r.name, r.events, r.frequency) for r in index.records()]
    for theta in (0.0, 0.4):
        cfg = PredictConfig(recall_threshold=theta)
        assert predict([["a"], ["c"]], index, stats, cfg) == predict([["a"], ["c"]], records, stats, cfg)


# ---------------------------------------------------------------- the sweep

def known_threshold_set(groups: int = 4):
    """Each group: a right pattern of similarity 6/11 ≈ 0.545 to its question and a distractor of
    similarity 4/9 ≈ 0.444, learned 3 times. Ranked by frequency, the distractor comes first
    whenever it is admitted (θ ≤ 0.4, wrong guess); at θ = 0.5 only the right one passes (right
    guess); from 0.6 nothing does (no guess). So θ = 0.5 is the one best threshold."""
    train, queries = [], []
    for g in range(groups):
        a, b, c, x, y = (f"{s}{g}" for s in "abcxy")
        train.append([[a], [b], [c], [x]] + [[f"p{g}_{i}"] for i in range(4)])
        train += [[[a], [b], [y]] + [[f"q{g}_{i}"] for i in range(3)]] * 3
        queries.append(ev.Query(((a,), (b,), (c,)), (x,)))
    return train, queries


def test_sweep_finds_the_known_best_threshold():
    train, queries = known_threshold_set()
    index, stats = ev.build_knowledge(train)
    spec = ev.SweepSpec(thresholds=ev.THRESHOLDS, max_predictions=(1, 10), rank_sort_algos=("frequency",), k=2)
    rows = ev.sweep(index, stats, queries, spec)
    hit1 = {(r["threshold"], r["max_predictions"]): r["hit1"] for r in rows if r["source"] == "predictions"}
    assert hit1[(0.5, 1)] == 1.0 and hit1[(0.5, 10)] == 1.0
    assert all(v == 0.0 for (theta, _m), v in hit1.items() if theta != 0.5)
    coverage = {r["threshold"]: r["coverage"] for r in rows if r["max_predictions"] == 10}
    assert coverage[0.4] == 1.0 and coverage[0.6] == 0.0
    hitk = {r["threshold"]: r["hitk"] for r in rows if r["max_predictions"] == 10}
    assert hitk[0.0] == 1.0  # the right answer is second when both are admitted
    best = ev.suggest(rows, "predictions")
    assert (best["threshold"], best["max_predictions"]) == (0.5, 1)


def test_truncated_answers_equal_calls_at_each_max_predictions():
    train, queries = known_threshold_set()
    index, stats = ev.build_knowledge(train)
    spec = ev.SweepSpec(thresholds=(0.0,), max_predictions=(1, 10), rank_sort_algos=("frequency",), k=2)
    rows = ev.sweep(index, stats, queries, spec)
    for m in (1, 10):
        cfg = PredictConfig(recall_threshold=0.0, max_predictions=m, rank_sort_algo="frequency")
        guesses = [ev.first_events(p["future"] for p in predict([list(e) for e in q.context], index, stats, cfg)[0])
                   for q in queries]
        expected = ev.score(guesses, [q.target for q in queries], 2)
        row = next(r for r in rows if r["max_predictions"] == m)
        assert (row["hit1"], row["hitk"], row["coverage"], row["mrr"]) == (
            expected.hit1, expected.hitk, expected.coverage, expected.mrr)


def test_sweep_reports_progress_and_stops_with_the_finished_rows():
    train, queries = known_threshold_set()
    index, stats = ev.build_knowledge(train)
    spec = ev.SweepSpec(thresholds=(0.0, 0.5, 0.9), max_predictions=(1,), k=1)
    seen = []
    with pytest.raises(ev.EvaluationStopped) as stopped:
        ev.sweep(index, stats, queries, spec, progress=lambda d, t: seen.append((d, t)),
                 should_stop=lambda: "cancelled" if len(seen) >= 6 else None)
    assert stopped.value.reason == "cancelled"
    assert seen[-1] == (6, 12)
    assert [r["threshold"] for r in stopped.value.rows] == [0.0, 0.0]  # θ 0.0: predictions and futures


def test_sweep_is_deterministic_apart_from_timings():
    train, queries = known_threshold_set()
    index, stats = ev.build_knowledge(train)
    spec = ev.SweepSpec(thresholds=(0.0, 0.5), max_predictions=(1, 3), rank_sort_algos=("potential", "frequency"))
    strip = lambda rows: [{k: v for k, v in r.items() if not k.startswith("ms_")} for r in rows]  # noqa: E731
    assert strip(ev.sweep(index, stats, queries, spec)) == strip(ev.sweep(index, stats, queries, spec))


def test_sweep_spec_rejects_bad_settings():
    for spec in (ev.SweepSpec(thresholds=(1.5,)), ev.SweepSpec(max_predictions=(0,)),
                 ev.SweepSpec(rank_sort_algos=("nope",)), ev.SweepSpec(k=0)):
        with pytest.raises(ValueError):
            spec.validate()
