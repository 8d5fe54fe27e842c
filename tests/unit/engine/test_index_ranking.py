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
