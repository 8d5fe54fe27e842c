"""The worked examples of kato-3.10.md (decisions 14, 15, 18, 19) on the direct engine and the
compiled index: the same values, to the last bit, from both."""

import dataclasses

import pytest

from kato_web.engine import index as index_module
from kato_web.engine.index import PatternIndex
from kato_web.engine.predictor import PREDICTION_KEYS, PredictConfig, predict

from .reference_impl import build_kb, pattern_name

PATHS = ["direct"] + (["index"] if index_module.FAST else [])


def run(learns, stm, path, finalized=False, **cfg):
    records, stats = build_kb(learns)
    stats = dataclasses.replace(stats, finalized=finalized)
    patterns = records
    if path == "index":
        patterns = PatternIndex.from_records(records, stats)  # f(σ), affinity: from stats
    return predict(stm, patterns, stats, PredictConfig(**cfg))


# kato-3.10.md §1.4e worked example: P1 = [[a],[b],[c]], P2 = [[a],[d]]; N_sym = 4, TUP = 2.
ENTROPY_KB = [([["a"], ["b"], ["c"]], 1), ([["a"], ["d"]], 1)]


@pytest.mark.parametrize("path", PATHS)
def test_1_4e_entropies_over_the_present(path):
    """kato-3.10.md §1.4e, "3.10.1 live" column: per-prediction values over the present."""
    predictions, _ = run(ENTROPY_KB, [["a"], ["b"]], path)
    p1, p2 = sorted(predictions, key=lambda p: len(p["sequence"]), reverse=True)
    assert p1["name"] == pattern_name([["a"], ["b"], ["c"]])
    assert (p1["normalized_entropy"], p2["normalized_entropy"]) == (0.5, 0.0)
    assert (p1["global_normalized_entropy"], p2["global_normalized_entropy"]) == (0.25, 0.0)
    assert (p1["entropy"], p2["entropy"]) == (1.0, 0.0)
    assert p1["tfidf_score"] == 0.75
    # b3e39bf gave both predictions the state's 0.5 and 0.25 (engine.md §6.11-6.12).


@pytest.mark.parametrize("path", PATHS)
def test_1_4e_entropies_on_a_finalized_node(path):
    """kato-3.10.md §1.4e, "finalized" column: whole-pattern values (live symbol table)."""
    predictions, _ = run(ENTROPY_KB, [["a"], ["b"]], path, finalized=True)
    p1, p2 = sorted(predictions, key=lambda p: len(p["sequence"]), reverse=True)
    assert (p1["normalized_entropy"], p2["normalized_entropy"]) == (0.792481250360578, 0.5)
    assert (p1["global_normalized_entropy"], p2["global_normalized_entropy"]) == (0.5, 0.25)
    assert (p1["entropy"], p2["entropy"]) == (1.584962500721156, 1.0)
    assert p1["tfidf_score"] == 0.5555555555555555
    # Only those four change: the present-based metrics are the live ones.
    live, _ = run(ENTROPY_KB, [["a"], ["b"]], path)
    changed = {"entropy", "normalized_entropy", "global_normalized_entropy", "tfidf_score"}
    for a, b in zip(sorted(live, key=lambda p: p["name"]), sorted(predictions, key=lambda p: p["name"])):
        assert {k for k in PREDICTION_KEYS if a[k] != b[k]} <= changed


@pytest.mark.parametrize("path", PATHS)
def test_1_4b_fuzzy_tokens_and_anomalies(path):
    """kato-3.10.md §1.4b worked example, with decision 18's missing/extras (pair hidden)."""
    learns = [([["apple", "banana"]], 1)]
    predictions, _ = run(learns, [["apple", "bannana"]], path, fuzzy_token_threshold=0.85)
    (p,) = predictions
    assert p["matches"] == ["apple", "bannana"]
    assert p["similarity"] == 0.5
    assert p["present"] == [["apple", "banana"]]
    # Decision 18: the fuzzy pair shows in neither list (3.10.1's code shows [['banana']] and
    # [['bannana']]).
    assert p["missing"] == [[]] and p["extras"] == [[]]
    assert p["anomalies"] == [{"observed": "bannana", "expected": "banana",
                               "similarity": 0.923076923076923}]
    assert (p["evidence"], p["confidence"], p["snr"]) == (1.0, 1.0, 1.0)
    # τ = 0: no anomalies, the exact answer (the pair is missing and extra).
    (q,) = run(learns, [["apple", "bannana"]], path)[0]
    assert q["anomalies"] == [] and q["matches"] == ["apple"]
    assert q["missing"] == [["banana"]] and q["extras"] == [["bannana"]]
    assert run(learns, [["apple", "bannana"]], path, fuzzy_token_threshold=0.93)[0][0]["anomalies"] == []
    # The cutoff 100·τ is inclusive: ratio("ab", "ac") = 50.0 passes at τ = 0.5.
    (r,) = run([([["ab", "x"]], 1)], [["ac", "x"]], path, fuzzy_token_threshold=0.5)[0]
    assert r["anomalies"] == [{"observed": "ac", "expected": "ab", "similarity": 0.5}]
    assert run([([["ab", "x"]], 1)], [["ac", "x"]], path, fuzzy_token_threshold=0.51)[0][0]["anomalies"] == []


# kato-3.10.md §1.4c example: [A],[B] with joy 1.0, then [B],[C] with joy 2.0:
# aff = {A: 1.0, B: 3.0, C: 2.0}, f = {A: 1, B: 2, C: 1}.
AFFINITY_KB = [([["A"], ["B"]], 1, [{"joy": 1.0}]), ([["B"], ["C"]], 1, [{"joy": 2.0}])]


@pytest.mark.parametrize("path", PATHS)
def test_1_4d_weighted_metrics_and_potential(path):
    """kato-3.10.md §1.4d with decision 19: w = |aff|/f + 0.01, else 0.01; potential weighted."""
    records, stats = build_kb(AFFINITY_KB)
    assert stats.affinity == {"A": {"joy": 1.0}, "B": {"joy": 3.0}, "C": {"joy": 2.0}}
    off, _ = run(AFFINITY_KB, [["A"], ["X"]], path)
    predictions, _ = run(AFFINITY_KB, [["A"], ["X"]], path, affinity_emotive="joy")
    (p,) = predictions
    (q,) = off
    w_a, w_b, w_x = 1.0 / 1 + 0.01, 3.0 / 2 + 0.01, 0.01  # X was never learned: 0.01
    assert p["weighted_similarity"] == 2 * w_a / ((w_a + w_x) + (w_a + w_b))
    assert p["weighted_evidence"] == w_a / (w_a + w_b)
    assert p["weighted_confidence"] == w_a / w_a
    assert p["weighted_snr"] == w_a / (w_a + w_x)  # X is the one displayed extra
    frag_term = 1 / (p["fragmentation"] + 1)
    assert p["potential"] == (p["weighted_evidence"] + p["weighted_confidence"]) * p["weighted_snr"] \
        + p["itfdf_similarity"] + frag_term
    assert p["potential"] != q["potential"]
    assert {k: q[k] for k in PREDICTION_KEYS[-4:]} == dict.fromkeys(PREDICTION_KEYS[-4:])
    # An emotive no symbol has: every weight 0.01, so the weighted values are the plain ratios.
    (r,) = run(AFFINITY_KB, [["A"], ["X"]], path, affinity_emotive="calm")[0]
    assert r["weighted_evidence"] == 0.01 / (0.01 + 0.01)


@pytest.mark.parametrize("path", PATHS)
def test_ranking_by_a_weighted_key(path):
    """Rank by weighted_*: descending with affinity on; null (off) ranks last, ties by name."""
    learns = AFFINITY_KB + [([["B"], ["D"]], 1)]
    on, _ = run(learns, [["B"]], path, affinity_emotive="joy", rank_sort_algo="weighted_evidence")
    values = [p["weighted_evidence"] for p in on]
    assert values == sorted(values, reverse=True) and len(values) == 3
    off, _ = run(learns, [["B"]], path, rank_sort_algo="weighted_evidence")
    assert [p["name"] for p in off] == sorted(p["name"] for p in off)
    assert all(p["weighted_evidence"] is None for p in off)


@pytest.mark.parametrize("path", PATHS)
def test_one_symbol_state(path):
    """kato-3.10.md decision 14: [['a']] predicts with the normal algorithm."""
    predictions, futures = run(ENTROPY_KB, [["a"]], path)
    assert len(predictions) == 2 and len(futures) == 2
    for p in predictions:
        assert p["matches"] == ["a"] and p["present"] == [["a"]] and p["past"] == []
    assert run(ENTROPY_KB, [["q"]], path) == ([], [])  # θ 0.1: nothing shares q
    assert len(run(ENTROPY_KB, [["q"]], path, recall_threshold=0.0)[0]) == 2
