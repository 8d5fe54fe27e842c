"""Fuzzy tokens and affinity weights over all candidates at once (kato-3.10.md §1.4b, §1.4d).

The direct engine scores these options pattern by pattern in Python (``matching.fuzzy_matches``,
``metrics.weighted_values``). Here the same numbers come from compiled passes over the
candidates, bit for bit:

- fuzzy tokens: each distinct state symbol is scored once against every symbol the candidates
  use (``rapidfuzz.process.cdist`` with ``fuzz.ratio``, the scorer ``process.extractOne`` uses),
  then ``_fuzzy_best`` picks, per candidate and state symbol, the first pattern symbol in
  pattern order with the highest score at or above 100·τ — ``extractOne``'s choice. The
  (matches, anomalies) lists are built only for the predictions that are shown
  (``FuzzyResults``);
- affinity weights: w(σ) once per symbol the call uses, then ``_weight_sums`` adds them in the
  order the direct engine does (left to right, from 0), so w(M), w(P), w(ρ) and w(X) are the
  same floats, and the four weighted values follow with the same operations.
"""
from __future__ import annotations

import numpy as np
from rapidfuzz import fuzz, process

from ..metrics import AffinityWeights
from .compiled import jit as _jit

__all__ = ["FuzzyResults", "fuzzy_best", "used_symbols", "weighted_columns"]

_I64 = np.int64


@_jit
def _used_symbols(cp, flat, pstart, n_symbols):
    """Return the sorted ids of the symbols the candidates' patterns hold."""
    seen = np.zeros(n_symbols, np.bool_)
    count = 0
    for c in range(cp.shape[0]):
        p = cp[c]
        for t in range(pstart[p], pstart[p + 1]):
            x = flat[t]
            if not seen[x]:
                seen[x] = True
                count += 1
    out = np.empty(count, _I64)
    k = 0
    for x in range(n_symbols):
        if seen[x]:
            out[k] = x
            k += 1
    return out


@_jit
def _fuzzy_best(cp, flat, pstart, scores, col_of, cutoff):
    """Per candidate and distinct state symbol: (the best pattern symbol's id or -1, its score).

    The best is the first symbol in pattern order with the highest score >= cutoff, as
    ``process.extractOne`` over the flat pattern returns it.
    """
    nc = cp.shape[0]
    k = scores.shape[0]
    best = np.full((nc, k), -1, _I64)
    best_score = np.zeros((nc, k), np.float64)
    for c in range(nc):
        p = cp[c]
        a = pstart[p]
        b = pstart[p + 1]
        for l in range(k):
            top = -1.0
            found = -1
            for t in range(a, b):
                x = flat[t]
                sc = scores[l, col_of[x]]
                if sc >= cutoff and sc > top:
                    top = sc
                    found = x
            best[c, l] = found
            if found >= 0:
                best_score[c, l] = top
    return best, best_score


@_jit
def _weight_sums(cp, e1, e2, flat, pstart, ebstart, ebounds, w_node, s_node, s_loc, s_w, per, jk,
                 fuzzy, best):
    """Return w(M), w(P), w(ρ) and w(X) of every candidate, each summed left to right from 0.

    M: the matched state symbols (the matching blocks' in block order; with fuzzy tokens, the
    state symbols that found a match, in state order). P: the flat pattern. ρ: the flat present.
    X: the state symbols outside the present, fuzzy-observed ones (matched to another symbol)
    excluded, in state order.
    """
    nc = cp.shape[0]
    n = s_node.shape[0]
    out = np.zeros((nc, 4), np.float64)
    block = 0
    for c in range(nc):
        p = cp[c]
        a = pstart[p]
        lo = a + ebounds[ebstart[p] + e1[c]]
        hi = a + ebounds[ebstart[p] + e2[c]]
        w_p = 0.0
        for t in range(a, pstart[p + 1]):
            w_p = w_p + w_node[flat[t]]
        w_rho = 0.0
        for t in range(lo, hi):
            w_rho = w_rho + w_node[flat[t]]
        w_m = 0.0
        if fuzzy:
            for j in range(n):
                if best[c, s_loc[j]] >= 0:
                    w_m = w_m + s_w[j]
        else:
            for u in range(block, block + per[c]):
                for j in range(jk[u, 0], jk[u, 0] + jk[u, 1]):
                    w_m = w_m + s_w[j]
        block += per[c]
        w_x = 0.0
        for j in range(n):
            x = s_node[j]
            inside = False
            if x >= 0:
                for t in range(lo, hi):
                    if flat[t] == x:
                        inside = True
                        break
            if not inside and fuzzy:
                u = best[c, s_loc[j]]
                inside = u >= 0 and u != x  # an anomaly's observed symbol
            if not inside:
                w_x = w_x + s_w[j]
        out[c, 0] = w_m
        out[c, 1] = w_p
        out[c, 2] = w_rho
        out[c, 3] = w_x
    return out


def used_symbols(ix, cp) -> np.ndarray:
    """The ids of the symbols the candidates' patterns hold, ascending."""
    return _used_symbols(cp, ix._flat, ix._pstart, max(1, len(ix._sym_names)))


def fuzzy_best(ix, local: dict, cp, used: np.ndarray, tau: float):
    """Fuzzy matching of every candidate: (best id or -1, its score) per candidate and distinct
    state symbol (``local``'s order)."""
    names = ix._names_arr[used].tolist()
    scores = process.cdist(list(local), names, scorer=fuzz.ratio, processor=None, dtype=np.float64,
                           workers=1)
    col_of = np.zeros(max(1, len(ix._sym_names)), _I64)
    col_of[used] = np.arange(used.shape[0], dtype=_I64)
    return _fuzzy_best(cp, ix._flat, ix._pstart, np.ascontiguousarray(scores, np.float64), col_of,
                       float(100 * tau))


class FuzzyResults:
    """(matches, anomalies) of candidate c, built when asked for (only the shown predictions)."""

    def __init__(self, ix, s: list[str], s_loc: np.ndarray, best: np.ndarray, best_score: np.ndarray):
        self._names = ix._names_arr
        self._s = s
        self._s_loc = s_loc.tolist()
        self._best = best
        self._score = best_score

    def __getitem__(self, c: int) -> tuple[list[str], list[dict]]:
        best, score, names = self._best[c].tolist(), self._score[c].tolist(), self._names
        matches: list[str] = []
        anomalies: list[dict] = []
        for t, l in zip(self._s, self._s_loc):
            x = best[l]
            if x < 0:
                continue
            matches.append(t)
            u = names[x]
            if u != t:
                anomalies.append({"observed": t, "expected": u, "similarity": score[l] / 100})
        return matches, anomalies


def weighted_columns(ix, weights: AffinityWeights, s: list[str], s_loc: np.ndarray,
                     local_node: np.ndarray, cp, e1, e2, used: np.ndarray, per, jk,
                     best: np.ndarray | None) -> np.ndarray:
    """The (nc × 4) weighted similarity, evidence, confidence and snr of every candidate."""
    w_node = np.zeros(max(1, len(ix._sym_names)), np.float64)
    names = ix._names_arr[used].tolist()
    w_node[used] = [weights.sum((name,)) for name in names]
    s_w = np.array([weights.sum((t,)) for t in s], np.float64)
    s_node = local_node[s_loc]
    fuzzy = best is not None
    sums = _weight_sums(cp, e1, e2, ix._flat, ix._pstart, ix._ebstart, ix._ebounds, w_node, s_node, s_loc,
                        s_w, per, np.ascontiguousarray(jk, _I64).reshape(-1, 2),
                        fuzzy, best if fuzzy else np.zeros((1, 1), _I64))
    w_m, w_p, w_rho, w_x = sums[:, 0], sums[:, 1], sums[:, 2], sums[:, 3]
    w_s = weights.sum(s)
    out = np.empty((cp.shape[0], 4), np.float64)
    # metrics.weighted_metrics, column by column: w(S) + w(P) >= 0.02, so never None.
    out[:, 0] = 2 * w_m / (w_s + w_p)
    with np.errstate(divide="ignore", invalid="ignore"):
        out[:, 1] = np.where(w_p != 0, w_m / np.where(w_p != 0, w_p, 1.0), 0.0)
        out[:, 2] = np.where(w_rho != 0, w_m / np.where(w_rho != 0, w_rho, 1.0), 0.0)
        both = w_m + w_x
        out[:, 3] = np.where(both != 0, w_m / np.where(both != 0, both, 1.0), 0.0)
    return out
