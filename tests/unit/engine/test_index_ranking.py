"""The predictions-CPU shortcuts (issue 16) give exactly what the full computations give.

- Ranking (engine.md §5.5, ties by name, decision 5): ``top_ranked`` sorts only the candidates at
  or above the max_predictions-th value; ``_group_order`` orders the future groups (engine.md
  §6.15: one entry per distinct future, ordered by aggregate potential, ties by the group's
  first appearance in the ranking) from each group's best member, without ranking every
  candidate. Both against the full sorts they replace, on values with many ties.
- future_potentials JSON (engine.md §6.15): each distinct float is formatted once and placed by
  index; the text is ``orjson.dumps`` of the list, byte for byte.
"""
from __future__ import annotations

import numpy as np
import orjson
import pytest

from kato_web.engine import index as index_module
from kato_web.engine.index.ensemble import _first_members, _group_order, top_ranked
from kato_web.engine.index.json_writers import float_texts

pytestmark = pytest.mark.skipif(not index_module.FAST, reason="numba kernels unavailable")


def _full_ranking(values, digest):
    by_name = np.lexsort((digest[:, 2], digest[:, 1], digest[:, 0]))
    return by_name[np.argsort(-values[by_name], kind="stable")]


def _case(rng, nc, distinct_values, ngroups, shared_heads):
    values = rng.choice(rng.random(distinct_values), nc)
    values[rng.random(nc) < 0.1] = 0.0
    values[rng.random(nc) < 0.05] = -0.0  # equal to 0.0 for every sort
    digest = rng.integers(0, 2 ** 63, (nc, 3), dtype=np.int64).astype(np.uint64)
    if shared_heads:  # names sharing their first 8 or 16 bytes: later words decide
        digest[:, 0] = rng.integers(0, 3, nc).astype(np.uint64)
        digest[: nc // 2, 1] = 7
    group_of = rng.integers(-1, ngroups, nc).astype(np.int64)
    used = np.unique(group_of[group_of >= 0])
    remap = np.full(ngroups, -1, np.int64)
    remap[used] = np.arange(used.shape[0])
    group_of = np.where(group_of >= 0, remap[np.maximum(group_of, 0)], -1)
    agg = rng.choice(rng.random(max(1, ngroups // 8)), used.shape[0])
    return values, digest, group_of, agg


@pytest.mark.parametrize("seed", range(40))
def test_top_ranked_and_group_order_equal_the_full_sorts(seed):  # engine.md §5.5, §6.15
    rng = np.random.default_rng(seed)
    nc = int(rng.integers(1, 3000))
    values, digest, group_of, agg = _case(rng, nc, int(rng.integers(1, 50)),
                                          int(rng.integers(1, nc + 2)), seed % 3 == 0)
    ranked = _full_ranking(values, digest)
    for count in (0, 1, 5, 100, nc - 1, nc, nc + 10):
        assert top_ranked(values, digest, count).tolist() == ranked[: max(0, count)].tolist()
    if agg.shape[0]:
        groups, members = _first_members(ranked, group_of, agg.shape[0])
        by_agg = np.argsort(-agg[groups], kind="stable")
        got_groups, got_members = _group_order(values, digest, group_of, agg)
        assert got_groups.tolist() == groups[by_agg].tolist()
        assert got_members.tolist() == members[by_agg].tolist()


@pytest.mark.parametrize("values", [
    [], [0.5], [0.1, 0.1, 0.2, 0.1], [0.0, -0.0, 1e-300, 5e-324, 1.0 / 3, 2.0 / 3, 1e22, 123456.789],
    list(np.random.default_rng(3).random(500)) + [0.25] * 500,
])
def test_float_texts_are_orjsons(values):  # engine.md §6.15: the floats as orjson writes them
    values = np.array(values, np.float64)
    text, starts, index = float_texts(values)
    got = [bytes(text[starts[i]: starts[i + 1] - 1]) for i in index.tolist()]
    assert b"[" + b",".join(got) + b"]" == orjson.dumps(values.tolist())
    assert (text[starts[-1]:] == 0).all() and text.shape[0] - starts[-1] >= 7  # padding for _copy


# -- the futures' precomputed hashes (columns._future_hashes) ------------------------------

def _futures_by_hash(index):
    """Return {hash: set of futures} over every pattern and cut point (e < m)."""
    seen = {}
    for p in range(len(index)):
        events = [tuple(sorted(e)) for e in index.events(p)]
        b0 = int(index._ebstart[p])
        for e in range(len(events)):
            seen.setdefault(int(index._fhash[b0 + e]), set()).add(tuple(events[e:]))
        assert index._fhash[b0 + len(events)] == 0
    return seen


def _same_hashes(a, b):
    assert a._eb_len == b._eb_len
    assert (a._fhash[: a._eb_len] == b._fhash[: b._eb_len]).all()


def test_future_hashes_follow_learns_relearns_provisional_and_copies():
    """engine.md §6.15 groups predictions by their future (a list of events, each a multiset):
    the hash kept per pattern and cut point is the same for equal futures, and stays right as
    patterns are appended (one by one or in batches), re-learned (frequency, emotives),
    appended provisionally and undone, copied, prepared for sharing, or the node is cleared."""
    from kato_web.engine.predictor import PatternRecord, PredictConfig, SymbolStats, predict
    from kato_web.engine.pattern import pattern_hash
    from kato_web.engine.index import PatternIndex
    import random

    rng = random.Random(5)
    symbols = [f"s{i}" for i in range(12)]
    records, seen = [], set()
    while len(records) < 400:  # a small vocabulary: many equal futures of different patterns
        events = [sorted(set(rng.choices(symbols, k=rng.randint(1, 3)))) for _ in range(rng.randint(2, 6))]
        name = pattern_hash(events)
        if name not in seen:
            seen.add(name)
            records.append(PatternRecord(name, events, rng.choice([1, 1, 3]), []))

    def stats_of(recs):
        pmf = {}
        for r in recs:
            for x in r.symbol_set:
                pmf[x] = pmf.get(x, 0) + 1
        return SymbolStats(pmf, len(pmf), len(recs), sum(r.frequency for r in recs))

    one = PatternIndex()
    for k, r in enumerate(records[:300]):
        one.add(r.name, r.events, r.frequency, (), created_seq=k)
    many = PatternIndex()
    many.add_many([(r.name, r.events, r.frequency, (), k) for k, r in enumerate(records[:300])])
    _same_hashes(one, many)
    groups = _futures_by_hash(one)
    futures = {}
    for h, fs in groups.items():
        for f in fs:
            assert futures.setdefault(f, h) == h  # equal futures, equal hashes
    assert sum(len(fs) for fs in groups.values()) == len(futures) > 0

    stm = [[symbols[0]], [symbols[1], symbols[2]]]
    cfg = PredictConfig(recall_threshold=0.1)
    # A provisional block appends and is undone: the hashes of what is appended after it are
    # those of a fresh build.
    copy = one.copy()
    with one.provisional():
        one.add_many([(r.name, r.events, r.frequency, (), 1000 + k) for k, r in enumerate(records[300:350])])
        inside = stats_of(records[:350])
        one.set_pmfs(inside.pmf.items())
        assert predict(stm, one, inside, cfg) == predict(stm, records[:350], inside, cfg)
    one.add_many([(r.name, r.events, r.frequency, (), 2000 + k) for k, r in enumerate(records[350:])])
    live = records[:300] + records[350:]
    fresh = PatternIndex.from_records(live)
    _same_hashes(one, fresh)
    assert copy._eb_len < one._eb_len and (copy._fhash[: copy._eb_len] == one._fhash[: copy._eb_len]).all()
    # A re-learn changes a group's weight, not its hash.
    one.update(7, 9, [{"joy": 1.0}])
    live[7] = PatternRecord(live[7].name, live[7].events, 9, [{"joy": 1.0}])
    one.prepare_shared()  # preloaded nodes (PatternColumns.prepare_shared)
    stats = stats_of(live)
    one.set_pmfs(stats.pmf.items())
    for theta in (0.0, 0.1, 0.5):
        cfg = PredictConfig(recall_threshold=theta)
        want = predict(stm, live, stats, cfg, futures_json=True, predictions_json=True)
        assert predict(stm, one, stats, cfg, futures_json=True, predictions_json=True) == want
    # Clear-all: the knowledge cache starts a new, empty index (services/knowledge.py).
    cleared = PatternIndex()
    assert cleared._eb_len == 0
    cleared.add_many([(r.name, r.events, r.frequency, (), k) for k, r in enumerate(records[:50])])
    _same_hashes(cleared, PatternIndex.from_records(records[:50]))
