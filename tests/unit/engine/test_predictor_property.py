"""Property tests: predict() agrees bit for bit with the literal reference implementation."""

import copy
import dataclasses
import random

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from kato_web.engine.predictor import (
    FILTER_STAGES,
    PREDICTION_KEYS,
    RANK_KEYS,
    PredictConfig,
    predict,
)

from .reference_impl import build_kb, reference_predict

# "bc" and "cd" give fuzzy matches (kato-3.10.md §1.4b): ratio(b, bc) = 66.7, ratio(bc, cd) = 50.
PATTERN_SYMBOLS = ["a", "b", "c", "d", "e", "bc"]
STATE_SYMBOLS = PATTERN_SYMBOLS + ["z", "cd"]  # 'z' and 'cd' are never learned: π = 0

event = st.lists(st.sampled_from(PATTERN_SYMBOLS), min_size=1, max_size=3)
pattern_events = st.lists(event, min_size=1, max_size=4).filter(
    lambda evs: sum(len(e) for e in evs) >= 2  # learn stores only patterns of >= 2 symbols
)
emotive_snapshot = st.dictionaries(
    st.sampled_from(["joy", "fear"]), st.sampled_from([0.1, 0.5, 1.0, -0.3]), max_size=2
)
learn = st.tuples(pattern_events, st.integers(1, 3), st.lists(emotive_snapshot, max_size=3))
stm_strategy = st.lists(
    st.lists(st.sampled_from(STATE_SYMBOLS), min_size=1, max_size=3), min_size=1, max_size=5
)


@st.composite
def configs(draw):
    pipeline = ()
    if draw(st.integers(0, 3)) == 0:
        pipeline = tuple(draw(st.lists(st.sampled_from(FILTER_STAGES), max_size=3, unique=True)))
    return PredictConfig(
        recall_threshold=draw(st.sampled_from([0, 0.1, 0.25, 0.5, 0.75, 1.0])),
        max_predictions=draw(st.integers(1, 15)),
        use_token_matching=draw(st.sampled_from([True, True, True, False])),
        rank_sort_algo=draw(st.sampled_from(RANK_KEYS)),
        filter_pipeline=pipeline,
        length_min_ratio=draw(st.sampled_from([0.0, 0.5, 1.0])),
        length_max_ratio=draw(st.sampled_from([0.0, 1.0, 2.0, 3.0])),
        jaccard_threshold=draw(st.sampled_from([0.0, 0.3, 0.6])),
        jaccard_min_overlap=draw(st.integers(1, 3)),
        # kato-3.10.md decisions 18-19: fuzzy tokens (0.5 is the "cd"/"bc" boundary) and weights.
        fuzzy_token_threshold=draw(st.sampled_from([0.0, 0.0, 0.5, 0.6, 1.0])),
        affinity_emotive=draw(st.sampled_from([None, None, "joy", "fear", "never"])),
    )


SETTINGS = settings(
    max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)


@given(st.lists(learn, min_size=1, max_size=12), stm_strategy, configs(), st.booleans())
@SETTINGS
def test_predict_equals_reference(learns, stm, cfg, finalized):
    """Produce the same predictions, order and floats as the reference implementation
    (one-symbol states, fuzzy thresholds, affinity weights and finalized nodes included)."""
    records, stats = build_kb(learns)
    stats = dataclasses.replace(stats, finalized=finalized)
    inputs = copy.deepcopy((stm, records, stats, cfg))
    got = predict(stm, records, stats, cfg)
    want = reference_predict(stm, records, stats, cfg)
    assert got == want
    for prediction in got[0]:
        assert tuple(prediction) == PREDICTION_KEYS
    # predict never mutates its inputs ...
    assert (stm, records, stats, cfg) == inputs
    assert [r.emotives for r in records] == [r.emotives for r in inputs[1]]
    # ... and the same inputs give the same outputs.
    assert predict(stm, records, stats, cfg) == got


@given(st.lists(learn, min_size=2, max_size=12), stm_strategy, st.randoms(use_true_random=False))
@settings(max_examples=80, deadline=None)
def test_pattern_order_changes_only_last_bits(learns, stm, rnd):
    """Give the same predictions up to float rounding whatever order the patterns come in."""
    records, stats = build_kb(learns)
    cfg = PredictConfig(recall_threshold=0.0, max_predictions=100)
    shuffled = list(records)
    rnd.shuffle(shuffled)
    first, futures_a = predict(stm, records, stats, cfg)
    second, futures_b = predict(stm, shuffled, stats, cfg)
    by_name = {p["name"]: p for p in second}
    assert sorted(by_name) == sorted(p["name"] for p in first)
    for p in first:
        q = by_name[p["name"]]
        for key in PREDICTION_KEYS:
            if isinstance(p[key], float):
                assert q[key] == pytest.approx(p[key], rel=1e-12, abs=1e-12)
            else:
                assert q[key] == p[key]
    assert len(futures_a) == len(futures_b)


def test_outputs_do_not_alias_records():
    """Return fresh lists, so editing a prediction cannot change the stored pattern."""
    records, stats = build_kb([([["a"], ["b"], ["c"]], 1)])
    predictions, futures = predict([["a"], ["b"]], records, stats, PredictConfig())
    predictions[0]["sequence"][0].append("mutated")
    predictions[0]["future"][0].append("mutated")
    futures[0]["future"][0].append("mutated")
    assert [list(e) for e in records[0].events] == [["a"], ["b"], ["c"]]
    again, again_futures = predict([["a"], ["b"]], records, stats, PredictConfig())
    assert again[0]["future"] == [["c"]] and again_futures[0]["future"] == [["c"]]


def test_larger_random_knowledge_bases_match_reference():
    """Agree with the reference on bigger random KBs than hypothesis explores."""
    rng = random.Random(2024)
    alphabet = [f"s{k}" for k in range(12)]
    for _ in range(25):
        learns = []
        for _ in range(rng.randint(20, 60)):
            evs = [[rng.choice(alphabet) for _ in range(rng.randint(1, 3))]
                   for _ in range(rng.randint(1, 5))]
            if sum(map(len, evs)) >= 2:
                learns.append((evs, rng.randint(1, 4)))
        records, stats = build_kb(learns)
        stm = [[rng.choice(alphabet + ["zz"]) for _ in range(rng.randint(1, 3))]
               for _ in range(rng.randint(1, 5))]
        cfg = PredictConfig(
            recall_threshold=rng.choice([0, 0.1, 0.2, 0.4]),
            max_predictions=rng.randint(1, 40),
            rank_sort_algo=rng.choice(RANK_KEYS),
        )
        assert predict(stm, records, stats, cfg) == reference_predict(stm, records, stats, cfg)


def test_unknown_rank_key_raises():
    """Reject a rank_sort_algo outside the 16 names, as KATO does with ValueError."""
    records, stats = build_kb([([["a"], ["b"]], 1)])
    with pytest.raises(ValueError):
        predict([["a"], ["b"]], records, stats, PredictConfig(rank_sort_algo="bogus"))


def test_from_mapping_picks_prediction_settings():
    """Build a PredictConfig from a full 22-key effective configuration."""
    effective = {
        "max_pattern_length": 0, "persistence": 5, "recall_threshold": 0.3, "indexer_type": "VI",
        "max_predictions": 7, "sort_symbols": True, "process_predictions": True,
        "use_token_matching": False, "stm_mode": "CLEAR", "rank_sort_algo": "similarity",
        "filter_pipeline": ["length", "jaccard"], "length_min_ratio": 0.25,
        "length_max_ratio": 3.0, "jaccard_threshold": 0.4, "jaccard_min_overlap": 1,
        "minhash_threshold": 0.7, "minhash_bands": 20, "minhash_rows": 5,
        "minhash_num_hashes": 100, "bloom_false_positive_rate": 0.01,
        "max_candidates_per_stage": 100000, "enable_filter_metrics": True,
    }
    assert PredictConfig.from_mapping(effective) == PredictConfig(
        recall_threshold=0.3, max_predictions=7, use_token_matching=False,
        rank_sort_algo="similarity", filter_pipeline=("length", "jaccard"),
        length_min_ratio=0.25, length_max_ratio=3.0, jaccard_threshold=0.4,
        jaccard_min_overlap=1,
    )
    # Null overrides mean "server default".
    assert PredictConfig.from_mapping({"recall_threshold": None}) == PredictConfig()


def test_rank_keys_are_the_twenty_session_names():
    """List exactly the rank_sort_algo values kato-3.10.md §1.3 accepts, in its order."""
    # Changed by kato-3.10.md §1.3: 16 → 20, the four weighted_* names after tfidf_score.
    assert len(RANK_KEYS) == len(set(RANK_KEYS)) == 20
    assert RANK_KEYS[15:] == ("tfidf_score", "weighted_similarity", "weighted_evidence",
                              "weighted_confidence", "weighted_snr")
    assert set(RANK_KEYS) <= set(PREDICTION_KEYS)


def test_length_and_jaccard_filters():
    """Apply the length and jaccard stages exactly as engine.md §8.2 specifies."""
    records, stats = build_kb([
        ([["a"], ["b"]], 1),  # L = 2, shares a,b
        ([["a"], ["b"], ["c"], ["d"], ["e"]], 1),  # L = 5 > int(2·2.0)
        ([["a"], ["q"]], 1),  # overlap 1 < 2
    ])
    stm = [["a"], ["b"]]
    names = lambda cfg: sorted(p["sequence"][-1][0] for p in predict(stm, records, stats, cfg)[0])
    assert names(PredictConfig()) == ["b", "e", "q"]
    assert names(PredictConfig(filter_pipeline=("length",))) == ["b", "q"]
    assert names(PredictConfig(filter_pipeline=("jaccard",))) == ["b", "e"]
    assert names(PredictConfig(filter_pipeline=("length", "jaccard"))) == ["b"]
    # A 0 ratio falls back to the default through ``or`` (engine.md §8.2).
    assert names(PredictConfig(filter_pipeline=("length",), length_max_ratio=0.0)) == ["b", "q"]
    # minhash, bloom and rapidfuzz are lossless in kato-web (README decision 3), even at θ = 0.
    lossless = PredictConfig(filter_pipeline=("minhash", "bloom", "rapidfuzz"), recall_threshold=0)
    assert len(predict([["x"], ["y"]], records, stats, lossless)[0]) == 3
