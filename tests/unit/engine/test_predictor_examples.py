"""The worked examples of engine.md §7, field by field.

Floats the spec prints at full precision are compared with ``==``. Where it rounds (0.6667, 0.3333,
0.1667, 0.0833), the comparison is with the exact fraction computed in Python (2/3, 1/3, 1/6, 1/12):
each of those is the correctly rounded double of the same rational, so ``==`` stays bit-exact.
"""

import pytest

from kato_web.engine.predictor import PREDICTION_KEYS, PredictConfig, predict

from .reference_impl import build_kb, pattern_name

A_B_C_D = [["a", "b"], ["c"], ["d"]]


def run(learns, stm, **cfg):
    """Learn the patterns into a fresh KB and predict from the STM."""
    records, stats = build_kb(learns)
    return predict(stm, records, stats, PredictConfig(**cfg))


def only(learns, stm, **cfg):
    """Return the single prediction of a one-pattern KB."""
    predictions, _ = run(learns, stm, **cfg)
    assert len(predictions) == 1
    return predictions[0]


def test_7_1_canonical_case_every_field():
    """Reproduce engine.md §7.1 for every field and the future potentials."""
    predictions, futures = run([(A_B_C_D, 1)], [["a"], ["c"]])
    assert len(predictions) == 1
    p = predictions[0]
    assert tuple(p) == PREDICTION_KEYS  # output key order of engine.md §6
    assert p == {
        "type": "prototypical",
        "name": "d31a36e9ce0eb82e3ec5e48ff40e4861474db5a1",  # engine.md §4.1 table, bare
        "frequency": 1,
        "emotives": {},
        "matches": ["a", "c"],
        "past": [],
        "present": [["a", "b"], ["c"]],
        "missing": [["b"], []],
        "extras": [[], []],
        "potential": 2.4831632475943923,
        "evidence": 0.5,
        "similarity": 0.6666666666666666,
        "fragmentation": 1,
        "snr": 1.0,
        "confluence": 0.0,
        "predictive_information": 0.6666666666666666,
        "sequence": A_B_C_D,
        "future": [["d"]],
        "confidence": 2 / 3,
        "entropy": 1.584962500721156,
        # Changed by kato-3.10.md decision 15: over the present [a,b,c], 3·φ_4(⅓) = log_4 3
        # (engine.md §7.1's old value over the state [a,c] was 0.5).
        "normalized_entropy": 0.792481250360578,
        "global_normalized_entropy": 0.0,  # π = 1 for a, b, c: still 0 over the present
        "itfdf_similarity": 0.8164965809277259,
        "tfidf_score": 0.3333333333333333,
        "pattern_probability": 1.0,
        "weighted_strength": 2 / 3,  # spec: 0.6667
        "bayesian_posterior": 1.0,
        "bayesian_prior": 1.0,
        "bayesian_likelihood": 2 / 3,  # spec: 0.6667, equals the similarity
        # kato-3.10.md decisions 18-19: no fuzzy threshold, no affinity emotive.
        "anomalies": [],
        "weighted_similarity": None,
        "weighted_evidence": None,
        "weighted_confidence": None,
        "weighted_snr": None,
    }
    # itfdf distance d = 0.18350341907227408 (spec), so itfdf = 1 − d exactly.
    assert 1 - 0.18350341907227408 == p["itfdf_similarity"]
    assert futures == [
        {
            "future": [["d"]],
            "aggregate_potential": 1.0,
            "supporting_patterns": 1,
            "total_weighted_frequency": 0.6666666666666666,
        }
    ]


def test_7_1_floats_are_plain_python_floats():
    """Return plain floats (not numpy scalars) for every float metric."""
    p = only([(A_B_C_D, 1)], [["a"], ["c"]])
    for key in ("potential", "itfdf_similarity", "similarity", "snr", "bayesian_posterior"):
        assert type(p[key]) is float, key


def test_7_2_mid_event_past_boundary():
    """Reproduce engine.md §7.2: the tail correction pulls [a,b] into the present."""
    p = only([(A_B_C_D, 1)], [["b"], ["c"]])
    assert p["past"] == []
    assert p["present"] == [["a", "b"], ["c"]]
    assert p["future"] == [["d"]]
    assert p["missing"] == [["a"], []]
    assert p["matches"] == ["b", "c"]
    assert p["fragmentation"] == 0
    assert p["confidence"] == 2 / 3
    assert p["evidence"] == 0.5
    assert p["similarity"] == 4 / 6
    assert p["potential"] == 2.9831632475943923


def test_7_3_lcs_differs_from_difflib():
    """Reproduce engine.md §7.3: similarity from LCS, matches from difflib blocks."""
    p = only([([["a"], ["b"], ["a"]], 1)], [["b"], ["c"], ["a"]])
    assert p["similarity"] == 2 * 2 / 6
    assert p["matches"] == ["a"]
    assert p["past"] == []
    assert p["present"] == [["a"]]
    assert p["future"] == [["b"], ["a"]]
    assert p["missing"] == [[]]
    assert p["extras"] == [["b"], ["c"], []]
    assert p["snr"] == 0.0
    assert p["evidence"] == 1 / 3
    assert p["confidence"] == 1.0
    assert p["fragmentation"] == 0
    assert p["potential"] == 2.0


def test_7_4_value_membership_quirk():
    """Reproduce engine.md §7.4: an aligned past event moves because it holds 'a'."""
    p = only([([["a"], ["a"], ["b"]], 1)], [["a"], ["b"]])
    assert p["present"] == [["a"], ["a"], ["b"]]
    assert p["past"] == []
    assert p["future"] == []
    assert p["missing"] == [[], [], []]
    assert p["similarity"] == 0.8
    assert p["evidence"] == 2 / 3
    assert p["confidence"] == 2 / 3
    assert p["potential"] == 3.282016631383847


def test_7_5_snr_uses_positional_extras():
    """Reproduce engine.md §7.5: E = n − M = 2 although extras show one symbol."""
    p = only([([["a"], ["b"]], 1)], [["a"], ["x"], ["a"]])
    assert p["similarity"] == 0.4
    assert p["present"] == [["a"]]
    assert p["future"] == [["b"]]
    assert p["extras"] == [[], ["x"], []]
    assert p["snr"] == 0.0
    assert p["potential"] == 2.0


def test_7_6_negative_snr():
    """Reproduce engine.md §7.6: snr −0.2, itfdf 1.0, potential 1.7."""
    p = only([([["a"], ["b"]], 1)], [["a", "x", "y"], ["z"]])
    assert p["similarity"] == 2 / 6
    assert p["matches"] == ["a"]
    assert p["extras"] == [["x", "y"], ["z"]]
    assert p["snr"] == -0.2
    assert p["itfdf_similarity"] == 1.0
    assert p["potential"] == 1.7


def test_7_7_zero_overlap_at_threshold_zero():
    """Reproduce engine.md §7.7: θ = 0 admits a zero-overlap pattern with the no-block shape."""
    learns = [([["u"], ["v"], ["w"]], 1)]
    p = only(learns, [["p"], ["q"]], recall_threshold=0.0)
    assert p["similarity"] == 0.0
    assert p["present"] == [["u"], ["v"], ["w"]]
    assert p["past"] == []
    assert p["future"] == []
    assert p["missing"] == [["u"], ["v"], ["w"]]
    assert p["extras"] == [["p"], ["q"]]
    assert p["matches"] == []
    assert p["evidence"] == 0.0
    assert p["confidence"] == 0.0
    assert p["snr"] == -1.0
    assert p["fragmentation"] == -1
    assert p["itfdf_similarity"] == 0.0
    assert p["bayesian_posterior"] == 0.0
    assert p["predictive_information"] == 0.0
    assert p["potential"] == 0.0
    # "With θ = 0.1 the result is no prediction."
    assert run(learns, [["p"], ["q"]], recall_threshold=0.1) == ([], [])


LEARNS_7_8 = [
    ([["a"], ["b"], ["c"]], 1),  # P1
    ([["b"], ["x"]], 2),  # P2
    ([["a"], ["a"], ["d"]], 1),  # P3
]


def test_7_8_kb_counters():
    """Build the §7.8 KB as the spec states: N_sym 5, pmf, TUP = TPF = 3."""
    _, stats = build_kb(LEARNS_7_8)
    assert stats.n_symbols == 5
    assert dict(stats.pmf) == {"a": 2, "b": 2, "c": 1, "x": 1, "d": 1}
    assert stats.total_unique_patterns == stats.total_pattern_frequencies == 3


def test_7_8_ensemble_with_frequencies():
    """Reproduce engine.md §7.8: every tabulated field, ranking P1, P3, P2, future potentials."""
    predictions, futures = run(LEARNS_7_8, [["a"], ["b"], ["z"]])
    by_seq = {str(p["sequence"]): p for p in predictions}
    p1 = by_seq[str([["a"], ["b"], ["c"]])]
    p3 = by_seq[str([["a"], ["a"], ["d"]])]
    p2 = by_seq[str([["b"], ["x"]])]
    assert [p["name"] for p in predictions] == [p1["name"], p3["name"], p2["name"]]
    assert p1["name"] == pattern_name([["a"], ["b"], ["c"]])
    assert p2["frequency"] == 2 and p1["frequency"] == p3["frequency"] == 1

    rows = [
        # matches, present, future, extras
        (p1, ["a", "b"], [["a"], ["b"]], [["c"]], [[], [], ["z"]]),
        (p3, ["a"], [["a"]], [["a"], ["d"]], [[], ["b"], ["z"]]),
        (p2, ["b"], [["b"]], [["x"]], [["a"], [], ["z"]]),
    ]
    for p, matches, present, future, extras in rows:
        assert (p["matches"], p["present"], p["future"], p["extras"]) == (
            matches, present, future, extras
        )

    assert [p["similarity"] for p in (p1, p3, p2)] == [0.6666666666666666, 0.3333333333333333, 0.4]
    assert [p["evidence"] for p in (p1, p3, p2)] == [2 / 3, 1 / 3, 0.5]  # spec: 0.6667 / 0.3333
    assert [p["confidence"] for p in (p1, p3, p2)] == [1.0, 1.0, 1.0]
    assert [p["snr"] for p in (p1, p3, p2)] == [0.6, 0.0, 0.0]
    # Changed by kato-3.10.md decision 15: per present, no longer the state's value for all
    # (engine.md §7.8's old values: 0.6826061944859854 and 0.3359061818834564 for each).
    # P1 over [a,b]: 2·φ_5(½) = log_5 2; 2·φ_5(⅔). P3 over [a], P2 over [b]: 0; φ_5(⅔).
    assert [p["normalized_entropy"] for p in (p1, p3, p2)] == [0.43067655807339306, 0.0, 0.0]
    assert [p["global_normalized_entropy"] for p in (p1, p3, p2)] == [
        0.3359061818834564, 0.1679530909417282, 0.1679530909417282]
    for p in (p1, p3, p2):
        assert p["predictive_information"] == 0.45
    assert [p["itfdf_similarity"] for p in (p1, p3, p2)] == [
        1.0, 0.9267766952966369, 0.8535533905932737
    ]
    assert [p["confluence"] for p in (p1, p3, p2)] == [
        0.18518518518518517, 0.11111111111111112, 0.22222222222222224
    ]
    assert [p["entropy"] for p in (p1, p3, p2)] == [1.0, 0.0, 0.0]
    assert [p["tfidf_score"] for p in (p1, p3, p2)] == [
        0.792481250360578, 1.584962500721156, 1.584962500721156
    ]
    assert [p["pattern_probability"] for p in (p1, p3, p2)] == [0.25, 0.25, 0.5]
    # spec: 0.1667 / 0.0833 / 0.2
    assert [p["weighted_strength"] for p in (p1, p3, p2)] == [1 / 6, 1 / 12, 0.2]
    assert [p["bayesian_prior"] for p in (p1, p3, p2)] == [0.25, 0.25, 0.5]
    assert [p["bayesian_posterior"] for p in (p1, p3, p2)] == [
        0.37037037037037035, 0.18518518518518517, 0.4444444444444445
    ]
    assert [p["bayesian_likelihood"] for p in (p1, p3, p2)] == [
        p["similarity"] for p in (p1, p3, p2)
    ]
    assert [p["potential"] for p in (p1, p3, p2)] == [3.0, 1.926776695296637, 1.8535533905932737]

    assert futures == [
        {
            "future": [["x"]],
            "aggregate_potential": 0.4444444444444445,
            "supporting_patterns": 1,
            "total_weighted_frequency": 0.8,
        },
        {
            "future": [["c"]],
            "aggregate_potential": 0.37037037037037035,
            "supporting_patterns": 1,
            "total_weighted_frequency": 2 / 3,  # spec: 0.6667
        },
        {
            "future": [["a"], ["d"]],
            "aggregate_potential": 0.18518518518518517,
            "supporting_patterns": 1,
            "total_weighted_frequency": 1 / 3,  # spec: 0.3333
        },
    ]


def test_7_8_every_pattern_learned_once_ties_break_by_name():
    """Reproduce the §7.8 f = 1 variant and order its tied potentials by name ascending."""
    learns = [(events, 1) for events, _ in LEARNS_7_8]
    predictions, _ = run(learns, [["a"], ["b"], ["z"]])
    p1, first_tied, second_tied = predictions
    assert p1["sequence"] == [["a"], ["b"], ["c"]]
    assert p1["potential"] == 3.0
    assert first_tied["potential"] == second_tied["potential"] == 1.9023689270621826
    # README decision 5: P3 (4d6b…) sorts before P2 (e77e…).
    assert first_tied["name"] < second_tied["name"]
    assert first_tied["sequence"] == [["a"], ["a"], ["d"]]
    by_seq = {str(p["sequence"]): p for p in predictions}
    p2 = by_seq[str([["b"], ["x"]])]
    p3 = by_seq[str([["a"], ["a"], ["d"]])]
    assert [p["bayesian_prior"] for p in (p1, p2, p3)] == [1 / 3] * 3
    assert [p["bayesian_posterior"] for p in (p1, p2, p3)] == [
        0.4761904761904762, 0.28571428571428575, 0.2380952380952381
    ]
    assert {p["predictive_information"] for p in predictions} == {0.4666666666666666}
    assert p2["itfdf_similarity"] == p3["itfdf_similarity"] == 0.9023689270621825


def test_7_9_single_event_pattern():
    """Reproduce engine.md §7.9: one event with a missing middle symbol."""
    p = only([([["alpha", "beta", "gamma"]], 1)], [["alpha", "gamma"]])
    assert p["fragmentation"] == 1
    assert p["present"] == [["alpha", "beta", "gamma"]]
    assert p["future"] == []
    assert p["missing"] == [["beta"]]
    assert p["similarity"] == 0.8
    assert p["evidence"] == p["confidence"] == 2 / 3
    assert p["snr"] == 1.0
    assert p["potential"] == 2.6498299142610593


def test_7_10_stm_longer_than_pattern():
    """Reproduce engine.md §7.10: extras per STM event and snr 1/7."""
    p = only([([["a"], ["b"]], 1)], [["a"], ["b"], ["c"], ["d"], ["e"]])
    assert p["similarity"] == 4 / 7 == 0.5714285714285714
    assert p["present"] == [["a"], ["b"]]
    assert p["extras"] == [[], [], ["c"], ["d"], ["e"]]
    assert p["snr"] == 0.14285714285714285
    assert p["evidence"] == p["confidence"] == 1.0
    assert p["potential"] == 2.2857142857142856


def test_4_4_prediction_emotives_average_the_window():
    """Report avg(W) per key over the snapshots holding it (engine.md §4.4 worked example)."""
    learns = [([["happy"], ["sad"], ["neutral"]], 2, [{"joy": 0.5, "energy": 0.5}, {"joy": 1.0}])]
    p = only(learns, [["happy"], ["sad"]])
    assert p["emotives"] == {"joy": 0.75, "energy": 0.5}
    assert list(p["emotives"]) == ["joy", "energy"]  # first-appearance key order


@pytest.mark.parametrize("stm", [[], [[]]])
def test_an_empty_state_gives_nothing(stm):
    """Return no predictions and no future potentials from an empty STM."""
    # Changed by kato-3.10.md decision 14: [[alpha]] and [[x], []] used to give nothing too
    # (engine.md §2.6's ≥ 2 rule); one symbol now predicts (test below).
    assert run([([["alpha"], ["x"]], 1)], stm, recall_threshold=0.0) == ([], [])


def test_one_symbol_predicts_with_the_normal_algorithm():
    """kato-3.10.md decision 14 (§1.4a option ii): one symbol, n = 1, every field and metric."""
    predictions, futures = run([([["alpha"], ["x"]], 1), ([["y"], ["alpha"], ["z"]], 2)],
                               [["alpha"]])
    first, second = predictions  # both hold alpha; 2·1/(3+1) = 0.5 and 2·1/(2+1)
    assert first["sequence"] == [["alpha"], ["x"]] and first["similarity"] == 2 / 3
    assert first["present"] == [["alpha"]] and first["future"] == [["x"]] and first["past"] == []
    assert second["past"] == [["y"]] and second["future"] == [["z"]]
    assert second["similarity"] == 0.5 and second["frequency"] == 2
    assert first["matches"] == second["matches"] == ["alpha"]
    assert first["snr"] == 1.0  # the regular (2M − E)/(2M + E), not 3.10.1's M/(M + E)
    assert first["fragmentation"] == 0.0 and tuple(first) == PREDICTION_KEYS
    # future_potentials belong to this request: both futures, weighted by f·sim.
    assert [fp["future"] for fp in futures] == [[["z"]], [["x"]]]
    assert futures[0]["total_weighted_frequency"] == 1.0
    # recall_threshold applies (3.10.1's first-symbol path ignores it): 0.6 keeps only the first.
    predictions, _ = run([([["alpha"], ["x"]], 1), ([["y"], ["alpha"], ["z"]], 2)], [["alpha"]],
                         recall_threshold=0.6)
    assert [p["sequence"] for p in predictions] == [[["alpha"], ["x"]]]


def test_7_8_truncation_happens_after_ensemble_metrics():
    """Keep ensemble values and all future potentials when max_predictions cuts (§5.7)."""
    predictions, futures = run(LEARNS_7_8, [["a"], ["b"], ["z"]], max_predictions=1)
    assert len(predictions) == 1
    assert predictions[0]["sequence"] == [["a"], ["b"], ["c"]]
    # Still normalised over all three candidates, so the survivor's posterior is not 1.
    assert predictions[0]["bayesian_posterior"] == 0.37037037037037035
    assert len(futures) == 3


def test_7_8_ranking_by_other_keys_is_descending():
    """Rank by the session's rank_sort_algo, descending, ties by name (decisions 2 and 5)."""
    predictions, _ = run(LEARNS_7_8, [["a"], ["b"], ["z"]], rank_sort_algo="frequency")
    assert [p["frequency"] for p in predictions] == [2, 1, 1]
    assert predictions[1]["name"] < predictions[2]["name"]
    predictions, _ = run(LEARNS_7_8, [["a"], ["b"], ["z"]], rank_sort_algo="similarity")
    assert [p["similarity"] for p in predictions] == [0.6666666666666666, 0.4, 0.3333333333333333]


def test_metric_helpers_on_spec_values():
    """Check the metric formulas on the spec's own numbers (§4.4, §6.15, §7.1)."""
    from kato_web.engine import metrics as mx

    # engine.md §7.1: d = 1 − 2/√6 for a = (1,0,1), b = (1,1,1) over U = {a,b,c}.
    pi = {"a": 1.0, "b": 1.0, "c": 1.0}
    d = mx.itfdf_distance({"a": 1, "b": 1, "c": 1}, {"a": 1, "c": 1}, pi)
    assert d == 0.18350341907227408
    # engine.md §6.15: int((3/47)·47) = 2, so idf uses w = 2, not 3.
    assert mx.tfidf_idf(3 / 47, 47) == mx.tfidf_idf(2 / 47, 47) != mx.tfidf_idf(3 / 47 + 1e-15, 47)
    # engine.md §4.4: per-key mean over only the snapshots holding the key.
    window = [{"happy": 4, "sad": 2}, {"happy": 6}, {"sad": 4}]
    assert mx.average_emotives(window) == {"happy": 5.0, "sad": 3.0}
    assert mx.average_emotives([]) == {}
    # engine.md §6.8: snr written literally; 0 when the denominator is 0.
    assert mx.snr(1, 3) == -0.2 and mx.snr(0, 0) == 0.0  # §7.6: M = 1, E = 3
