"""The candidate index and compiled scoring give exactly what scoring every pattern gives."""

import dataclasses
import random

import numpy as np
import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from kato_web.engine import index as index_module
from kato_web.engine.index import PatternIndex
from kato_web.engine.index.ensemble import universe_ranks
from kato_web.engine.pattern import pattern_hash
from kato_web.engine.predictor import (RANK_KEYS, JSONList, PatternRecord, PredictConfig, SymbolStats,
                                      predict)

from .reference_impl import build_kb, reference_predict
from .test_predictor_property import STATE_SYMBOLS, configs, learn, stm_strategy

pytestmark = pytest.mark.skipif(not index_module.FAST, reason="numba kernels unavailable")


def _index(records, stats, path="index"):
    index = PatternIndex.from_records(records, stats)
    if path == "scan":  # everything in the unindexed tail: the direct-scan branch
        index._indexed, index._indptr = 0, index._indptr[:1]
        index.TAIL_REBUILD = 10 ** 9
    elif path == "index":  # always the inverted index (count bound or prefix filter)
        index.scan_ratio = float("inf")
    elif path == "tail":  # the first half indexed, the rest appended after the build
        index = PatternIndex.from_records(records[: len(records) // 2], stats)
        index.scan_ratio = float("inf")
        index.TAIL_REBUILD = 10 ** 9
        for record in records[len(records) // 2:]:
            index.add_record(record)
    return index


@given(st.lists(learn, min_size=1, max_size=12), stm_strategy, configs(),
       st.sampled_from(["index", "scan", "tail", "auto"]), st.booleans())
@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
def test_index_equals_reference(learns, stm, cfg, path, finalized):
    """Produce the reference's predictions, order and floats, θ = 0 included; one-symbol
    states, fuzzy thresholds, affinity weights and finalized nodes (kato-3.10.md) too."""
    records, stats = build_kb(learns)
    stats = dataclasses.replace(stats, finalized=finalized)
    index = _index(records, stats, path)
    got = predict(stm, index, stats, cfg)
    assert got == reference_predict(stm, records, stats, cfg)
    assert index.predict(stm, stats, cfg) == got  # predicting changes nothing


# Symbols JSON must escape or encode as multi-byte UTF-8, to stand for the plain ones.
JSON_SYMBOLS = ['"', "\\", "é", "✓", "\n", "\x00", "\x1f", "\u2028", "😀", 'a"b\\c/', "plain"]


@given(st.lists(learn, min_size=1, max_size=12), stm_strategy, configs(),
       st.sampled_from(["index", "scan", "tail", "auto"]),
       st.none() | st.permutations(JSON_SYMBOLS), st.booleans())
@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
def test_futures_json_is_orjson_of_the_list(learns, stm, cfg, path, names, finalized):
    """Write future_potentials as exactly the bytes orjson gives for the list, on every path."""
    if names is not None:
        rename = dict(zip(STATE_SYMBOLS, names))
        learns = [([[rename[x] for x in e] for e in events], *rest) for events, *rest in learns]
        stm = [[rename[x] for x in e] for e in stm]
    records, stats = build_kb(learns)
    stats = dataclasses.replace(stats, finalized=finalized)
    index = _index(records, stats, path)
    predictions, futures = index.predict(stm, stats, cfg)
    want = orjson.dumps(futures)
    got = index.predict(stm, stats, cfg, futures_json=True)
    assert got == (predictions, want)
    assert orjson.loads(got[1]) == futures
    assert predict(stm, index, stats, cfg, futures_json=True) == got
    assert predict(stm, records, stats, cfg, futures_json=True) == got
    # The predictions' objects written as JSON (emotives, matches, missing, extras, floats):
    # orjson's bytes for the list, with its length; the direct engine gives the same.
    as_json = index.predict(stm, stats, cfg, futures_json=True, predictions_json=True)
    assert as_json == (JSONList(orjson.dumps(predictions), len(predictions)), want)
    assert predict(stm, records, stats, cfg, futures_json=True, predictions_json=True) == as_json


# Symbol texts up to, at and beyond the length below which the futures' JSON is sized from
# symbol counts alone (json_writers._SIZE_BY_COUNT_MAX_LEN), one- and multi-byte characters.
LONG_SYMBOLS = ["a" * 62, "b" * 63, "c" * 200, "é" * 40, '"' * 31, "d", "e" * 64, "\x01" * 11,
                "f" * 1000, "g" * 10, "h" * 61]


@given(st.lists(learn, min_size=1, max_size=12), stm_strategy, configs(),
       st.permutations(LONG_SYMBOLS), st.integers(0, len(LONG_SYMBOLS)))
@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
def test_futures_json_with_long_symbols(learns, stm, cfg, names, short):
    """Give orjson's bytes whether the output is sized from the symbol counts (every symbol
    text at most 64 bytes) or from the texts themselves (a longer one is known)."""
    names = names[:short] + [x[:8] for x in names[short:]]  # some runs have only short ones
    names = list(dict.fromkeys(names + [f"s{i}" for i in range(len(STATE_SYMBOLS))]))
    rename = dict(zip(STATE_SYMBOLS, names))
    learns = [([[rename[x] for x in e] for e in events], *rest) for events, *rest in learns]
    stm = [[rename[x] for x in e] for e in stm]
    records, stats = build_kb(learns)
    index = _index(records, stats, "auto")
    predictions, futures = index.predict(stm, stats, cfg)
    assert index.predict(stm, stats, cfg, futures_json=True) == (predictions, orjson.dumps(futures))


@pytest.mark.parametrize("vocabulary", [60, 3000])
def test_futures_json_on_a_larger_knowledge_base(vocabulary):
    """Give orjson's bytes for thousands of futures (long events, large counts and floats)."""
    records, symbols, weights, rng = _synthetic(1500, vocabulary, vocabulary + 1)
    stats = _stats(records)
    index = PatternIndex.from_records(records, stats)
    sizes, kept = [], []
    for trial in range(6):
        base = rng.choice(records)
        stm = [[x] for x in base.flat[: rng.randint(2, 8)]]
        stm += [[x] for x in rng.choices(symbols, weights, k=rng.randint(0, 5))]
        stm.append(["never-learned"])
        for theta in (0.0, 0.1, 0.3):
            cfg = PredictConfig(recall_threshold=theta, max_predictions=5)
            predictions, futures = index.predict(stm, stats, cfg)
            got = index.predict(stm, stats, cfg, futures_json=True)
            assert got == (predictions, orjson.dumps(futures))
            sizes.append(len(futures))
            for top in (0, 1, 100):  # the objects as JSON, however many are kept
                capped = PredictConfig(recall_threshold=theta, max_predictions=top)
                want = index.predict(stm, stats, capped)[0]
                text, _ = index.predict(stm, stats, capped, futures_json=True, predictions_json=True)
                assert text == JSONList(orjson.dumps(want), len(want))
                kept.append(len(want))
        if trial < 2:  # the direct engine over records: the same bytes
            assert predict(stm, records, stats, cfg, futures_json=True) == got
    assert max(sizes) > 300
    assert max(kept) == 100  # full pages of objects were written


@given(st.lists(learn, min_size=1, max_size=12), stm_strategy, configs(),
       st.sampled_from(["index", "scan", "auto"]))
@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
def test_count_matches_counts_what_an_uncapped_prediction_returns(learns, stm, cfg, path):
    """The admin preview's count at each θ: every pattern the reference would score."""
    records, stats = build_kb(learns)
    index = _index(records, stats, path)
    uncapped = PredictConfig(**{**cfg.__dict__, "max_predictions": len(records) + 1})
    assert index.count_matches(stm, stats, cfg) == len(reference_predict(stm, records, stats, uncapped)[0])


def _synthetic(n, vocabulary, seed, zipf=1.1):
    rng = random.Random(seed)
    weights = [1.0 / (r ** zipf) for r in range(1, vocabulary + 1)]
    symbols = [f"s{i:05d}" for i in range(vocabulary)]
    out, seen = [], set()
    while len(out) < n:
        events = [sorted(set(rng.choices(symbols, weights, k=rng.randint(1, 3))))
                  for _ in range(rng.randint(3, 8))]
        name = pattern_hash(events)
        if name not in seen:
            seen.add(name)
            out.append(PatternRecord(name, events, rng.choice([1, 1, 1, 2, 7]),
                                     [{"joy": 0.25}] if rng.random() < 0.05 else []))
    return out, symbols, weights, rng


def _stats(records):
    pmf = {}
    for r in records:
        for x in r.symbol_set:
            pmf[x] = pmf.get(x, 0) + 1
    return SymbolStats(pmf, len(pmf), len(records), len(records))


@pytest.mark.parametrize("vocabulary", [60, 3000])
def test_larger_knowledge_bases_match_direct_scan(vocabulary):
    """Agree with the direct engine on a Zipf workload (large ensembles, long itfdf vectors)."""
    records, symbols, weights, rng = _synthetic(1500, vocabulary, vocabulary)
    stats = _stats(records)
    index = PatternIndex.from_records(records, stats)
    indexed = PatternIndex.from_records(records, stats)
    indexed.scan_ratio = float("inf")  # never fall back to the scan
    for trial in range(12):
        base = rng.choice(records)
        stm = [[x] for x in base.flat[: rng.randint(2, 8)]]
        stm += [[x] for x in rng.choices(symbols, weights, k=rng.randint(0, 5))]
        if trial % 4 == 3:
            stm = stm * 8  # more than 64 state symbols: the multi-word LCS
        stm.append(["never-learned"])
        if trial % 4 == 1:
            stm = [[base.flat[0]]]  # one symbol (kato-3.10.md decision 14)
        cfg = PredictConfig(recall_threshold=rng.choice([0.0, 0.1, 0.3, 0.5]),
                            rank_sort_algo=RANK_KEYS[trial % len(RANK_KEYS)],
                            max_predictions=rng.choice([3, 100, 5000]))
        for finalized in (False, True):  # kato-3.10.md §1.4e: whole-pattern values
            node = dataclasses.replace(stats, finalized=finalized)
            want = predict(stm, records, node, cfg)
            assert predict(stm, index, node, cfg) == want
            assert predict(stm, indexed, node, cfg) == want
            got = index.predict(stm, node, cfg, futures_json=True, predictions_json=True)
            assert got == (JSONList(orjson.dumps(want[0]), len(want[0])), orjson.dumps(want[1]))


def test_incremental_updates_equal_a_fresh_build():
    """Append, re-learn (frequency, emotives) and pmf updates give what a fresh build gives."""
    records, symbols, weights, rng = _synthetic(600, 200, 7)
    index = PatternIndex()
    index.TAIL_REBUILD = 50  # rebuild postings now and then, scan the tail in between
    live = []
    for k, record in enumerate(records):
        index.add_record(record, created_seq=10 * k + 3)
        live.append(record)
        if k % 97 == 0 and k:
            index.build_postings()
        if k % 13 == 0:
            j = rng.randrange(len(live))
            old = live[j]
            live[j] = PatternRecord(old.name, old.events, old.frequency + 2, [{"fear": 0.5}])
            position = index.position_of_seq(10 * j + 3)
            assert position == j
            index.update(position, live[j].frequency, live[j].emotives)
    stats = _stats(live)
    index.set_pmfs(stats.pmf.items())
    fresh = PatternIndex.from_records(live, stats)
    assert index.position_of_seq(4) is None
    for _ in range(10):
        stm = [[x] for x in rng.choice(live).flat[:6]] + [[rng.choice(symbols)]]
        for theta in (0.0, 0.2, 0.4):
            cfg = PredictConfig(recall_threshold=theta)
            want = predict(stm, live, stats, cfg)
            assert predict(stm, index, stats, cfg) == want
            assert predict(stm, fresh, stats, cfg) == want
    assert [r.name for r in index.records()] == [r.name for r in live]
    assert [r.frequency for r in index.values()] == [r.frequency for r in live]


def test_symbol_order_follows_a_growing_vocabulary():
    """Keep the itfdf string order right as new symbols (and never-seen state symbols) come."""
    rng = random.Random(4)
    index, live = PatternIndex(), []
    for step in range(40):
        # New symbols sort before, between and after the known ones (the ranks are merged).
        fresh = [f"{rng.choice('0Amz~')}{rng.random():.3f}" for _ in range(rng.randint(0, 4))]
        pool = sorted({x for r in live for x in r.flat}) + fresh
        events = [sorted(set(rng.choices(pool or ["a"], k=rng.randint(1, 3))))
                  for _ in range(rng.randint(2, 5))]
        if pattern_hash(events) not in {r.name for r in live}:
            live.append(PatternRecord(pattern_hash(events), events, 1, []))
            index.add_record(live[-1], created_seq=step)
        stats = _stats(live)
        index.set_pmfs(stats.pmf.items())
        base = rng.choice(live).flat
        stm = [[x] for x in base[:4]] + [["A-unseen", "zz-unseen"], ["m-unseen"], ["A-unseen2"]]
        cfg = PredictConfig(recall_threshold=rng.choice([0.0, 0.2]), rank_sort_algo="itfdf_similarity")
        assert predict(stm, index, stats, cfg) == predict(stm, live, stats, cfg)
        # The symbols' JSON text grows with the vocabulary too.
        assert index.predict(stm, stats, cfg, futures_json=True)[1] == orjson.dumps(
            index.predict(stm, stats, cfg)[1])
        # The ranks themselves: D then the state symbols outside it, in string order.
        state = list(dict.fromkeys(x for e in stm for x in e))
        node = np.array([index._sym_id.get(x, -1) for x in state], np.int64)
        dom = np.array(rng.sample(range(index.n_symbols), rng.randint(0, index.n_symbols)), np.int64)
        in_dom = np.isin(node, dom)
        universe = [index._sym_names[x] for x in dom] + [x for x, d in zip(state, in_dom) if not d]
        rank = {x: r for r, x in enumerate(sorted(universe))}
        dom_rank, state_rank = universe_ranks(index, dom, state, node, in_dom)
        assert dom_rank.tolist() == [rank[index._sym_names[x]] for x in dom]
        assert state_rank.tolist() == [rank[x] for x in state]


def test_index_rejects_out_of_order_and_bad_names():
    index = PatternIndex()
    index.add("a" * 40, [["x"], ["y"]], 1, created_seq=5)
    with pytest.raises(ValueError):
        index.add("b" * 40, [["x"], ["z"]], 1, created_seq=5)
    with pytest.raises(ValueError):
        index.add("not-hex", [["x"], ["z"]], 1, created_seq=9)


def test_copy_is_independent():
    records, stats = build_kb([([["a"], ["b"], ["c"]], 1), ([["b"], ["x"]], 2)])
    index = PatternIndex.from_records(records, stats)
    other = index.copy()
    other.update(0, 9)
    other.add(pattern_hash([["a"], ["z"]]), [["a"], ["z"]], 1)
    other.set_pmf("z", 1)
    assert len(index) == 2 and index.record(0).frequency == 1 and "z" not in index.pmf()
    assert len(other) == 3 and other.record(0).frequency == 9


def test_names_order_ties_like_strings():
    """Break ties by name as strings do: the digest words compare in hex order."""
    names = ["f" * 40, "0" * 39 + "1", "0" * 40, "8" + "0" * 39, "7" + "f" * 39]
    index = PatternIndex()
    for k, name in enumerate(names):
        index.add(name, [["a"], ["b"], [f"c{k}"]], 1)
    index.set_pmfs([("a", 5), ("b", 5)] + [(f"c{k}", 1) for k in range(5)])
    stats = SymbolStats(index.pmf(), 7, 5, 5)
    got = predict([["a"], ["b"]], index, stats, PredictConfig())
    assert [p["name"] for p in got[0]] == sorted(names)


def test_character_mode_falls_back_to_the_direct_scan():
    records, stats = build_kb([([["abc"], ["abd"]], 1), ([["xyz"], ["abd"]], 1)])
    index = PatternIndex.from_records(records, stats)
    cfg = PredictConfig(use_token_matching=False, recall_threshold=0.2)
    assert predict([["abc"], ["abe"]], index, stats, cfg) == reference_predict(
        [["abc"], ["abe"]], records, stats, cfg)


def test_add_many_equals_add():
    """Build the same arrays whether patterns arrive one by one or in batches."""
    records, _symbols, _weights, _rng = _synthetic(300, 80, 3)
    one, many = PatternIndex(), PatternIndex()
    for k, r in enumerate(records):
        one.add(r.name, r.events, r.frequency, r.emotives, created_seq=2 * k)
    rows = [(r.name, r.events, r.frequency, r.emotives, 2 * k) for k, r in enumerate(records)]
    many.add_many(rows[:7])
    many.add_many(rows[7:200])
    many.add_many(rows[200:])
    with pytest.raises(ValueError):
        many.add_many([(records[0].name, records[0].events, 1, (), 5)])
    assert one._flat_len == many._flat_len and one._eb_len == many._eb_len
    used = {"_flat": one._flat_len, "_ebounds": one._eb_len}
    used["_fhash"] = one._eb_len
    for attr in ("_flat", "_pstart", "_ebounds", "_fhash", "_ebstart", "_freq", "_seq", "_distinct",
                 "_digest"):
        size = used.get(attr, len(one) + 1)
        assert (getattr(one, attr)[:size] == getattr(many, attr)[:size]).all(), attr
    assert list(one.records()) == list(many.records())
    assert [r.emotives for r in one.records()] == [r.emotives for r in many.records()]


def test_provisional_changes_are_undone():
    """Show provisional learns inside the block only; restore the index exactly on exit."""
    records, _symbols, _weights, rng = _synthetic(400, 120, 9)
    base, extra = records[:300], records[300:]
    stats_before = _stats(base)
    index = PatternIndex.from_records(base, stats_before)
    stm = [[x] for x in base[3].flat[:5]] + [[x] for x in extra[0].flat[:3]]
    cfg = PredictConfig(recall_threshold=0.2)
    before = predict(stm, index, stats_before, cfg)
    arrays = {k: v.copy() for k, v in vars(index).items() if hasattr(v, "copy") and not isinstance(v, dict)}
    live = list(base)
    live[3] = PatternRecord(base[3].name, base[3].events, 5, [{"joy": 1.0}])
    live += extra
    stats_after = _stats(live)
    with index.provisional():
        index.update(3, 5, [{"joy": 1.0}])
        index.add_many((r.name, r.events, r.frequency, r.emotives, 1000 + k) for k, r in enumerate(extra))
        index.set_pmfs(stats_after.pmf.items())
        assert predict(stm, index, stats_after, cfg) == predict(stm, live, stats_after, cfg)
    assert predict(stm, index, stats_before, cfg) == before
    assert len(index) == 300 and dict(index.pmf()) == dict(stats_before.pmf)
    used = {"_flat": index._flat_len, "_ebounds": index._eb_len, "_pstart": 301, "_ebstart": 301,
            "_freq": 300, "_seq": 300, "_distinct": 300, "_digest": 300}
    for key, size in used.items():
        assert (getattr(index, key)[:size] == arrays[key][:size]).all(), key
    n_sym = len(arrays["_has_pmf"])
    assert (index._has_pmf[:n_sym] == arrays["_has_pmf"]).all() and not index._has_pmf[n_sym:].any()
    assert (index._pmf[:n_sym] == arrays["_pmf"]).all()
    assert list(index.records()) == list(base)


def test_fuzzy_and_affinity_on_a_larger_knowledge_base():
    """kato-3.10.md §1.4b/§1.4d through the index (compiled candidates, direct scoring): the
    direct engine's answer, bytes included, with many anomalies ("s00012" ~ "s00021")."""
    records, symbols, weights, rng = _synthetic(800, 300, 11)
    base = _stats(records)
    frequency = {x: sum(r.flat.count(x) * r.frequency for r in records) for x in base.pmf}
    affinity = {x: {"joy": round(rng.uniform(-2, 2), 3)} for x in symbols[::3]}
    stats = dataclasses.replace(base, frequency=frequency, affinity=affinity, finalized=True)
    index = PatternIndex.from_records(records, stats)
    anomalies = 0
    for trial in range(6):
        stm = [[x] for x in rng.choice(records).flat[:5]] + [["s99999"]]
        if trial == 5:
            stm = [["s00001"]]
        cfg = PredictConfig(recall_threshold=rng.choice([0.0, 0.1, 0.3]), fuzzy_token_threshold=0.8,
                            affinity_emotive="joy" if trial % 2 else None,
                            rank_sort_algo=RANK_KEYS[(5 * trial) % len(RANK_KEYS)], max_predictions=50)
        want = predict(stm, records, stats, cfg)
        assert predict(stm, index, stats, cfg) == want
        got = index.predict(stm, stats, cfg, futures_json=True, predictions_json=True)
        assert got == (JSONList(orjson.dumps(want[0]), len(want[0])), orjson.dumps(want[1]))
        anomalies += sum(len(p["anomalies"]) for p in want[0])
    assert anomalies > 10


def test_compiled_fuzzy_tokens_and_weights_equal_the_direct_engine_on_ties():
    """options.py against the direct engine (kato-3.10.md §1.4b, §1.4d): symbols of a small
    alphabet so that many pattern symbols tie on fuzz.ratio (the first in pattern order wins),
    repeated state symbols, state symbols the node never saw, and every candidate shown."""
    rng = random.Random(5)
    alphabet = ["ab", "ba", "abc", "bca", "cab", "a", "b", "aab", "bba", "ca", "ac", "cc"]
    records = []
    for k in range(150):
        events = [sorted(set(rng.sample(alphabet, rng.randint(1, 3)))) for _ in range(rng.randint(2, 5))]
        records.append(PatternRecord(pattern_hash(events), events, rng.randint(1, 4), []))
    records = list({r.name: r for r in records}.values())
    base = _stats(records)
    frequency = {x: rng.randint(1, 9) for x in alphabet}
    affinity = {x: {"joy": rng.choice([-1.5, 0.0, 0.25, 2.0])} for x in alphabet[::2]}
    stats = dataclasses.replace(base, frequency=frequency, affinity=affinity)
    index = PatternIndex.from_records(records, stats)
    compared = anomalies = 0
    for trial in range(40):
        stm = [sorted(set(rng.sample(alphabet + ["zz", "abz"], rng.randint(1, 3)))) for _ in range(rng.randint(1, 4))]
        if trial % 5 == 0:
            stm = stm + [stm[0]]  # the same symbols again
        cfg = PredictConfig(recall_threshold=rng.choice([0.0, 0.1, 0.3]),
                            fuzzy_token_threshold=rng.choice([0.0, 0.3, 0.5, 0.67, 0.8]),
                            affinity_emotive=rng.choice([None, "joy", "calm"]),
                            rank_sort_algo=rng.choice(["potential", "weighted_similarity", "weighted_snr",
                                                       "evidence", "similarity"]),
                            max_predictions=500)
        if cfg.fuzzy_token_threshold == 0 and cfg.affinity_emotive is None:
            cfg = dataclasses.replace(cfg, fuzzy_token_threshold=0.5)
        want = predict(stm, records, stats, cfg)
        assert predict(stm, index, stats, cfg) == want, (stm, cfg)
        got = index.predict(stm, stats, cfg, futures_json=True, predictions_json=True)
        assert got == (JSONList(orjson.dumps(want[0]), len(want[0])), orjson.dumps(want[1]))
        compared += len(want[0])
        anomalies += sum(len(p["anomalies"]) for p in want[0])
    assert compared > 1000 and anomalies > 500
