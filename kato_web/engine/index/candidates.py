"""Candidate search: which patterns can reach θ at all, before any exact work (engine.md §5.3, §8.6).

Owns the inverted index (postings: for each symbol, the patterns holding it and how often), each
pattern's distinct-symbol count, and the lossless bounds that prune on them: the length window,
the count bound ``LCS ≤ Σ_σ min(c_σ(p), c_σ(s))`` and the prefix filter (only the postings of the
state's rarer symbols are read when θ asks for more common symbols than its most frequent ones
can give). When the postings to read cover most of the node, every pattern is scanned instead
(same set, less work). Candidates always come in learn order.
"""

from __future__ import annotations

import numpy as np

from .compiled import jit as _jit

__all__ = ["candidate_positions"]

_I32 = np.int32
_I64 = np.int64


@_jit
def _build_postings(flat, pstart, n_patterns, n_symbols):
    """Return (indptr, positions, counts): for each symbol, the patterns holding it, ascending."""
    seen = np.full(n_symbols, -1, _I64)
    sizes = np.zeros(n_symbols + 1, _I64)
    for p in range(n_patterns):
        for t in range(pstart[p], pstart[p + 1]):
            x = flat[t]
            if seen[x] != p:
                seen[x] = p
                sizes[x + 1] += 1
    indptr = np.zeros(n_symbols + 1, _I64)
    for x in range(n_symbols):
        indptr[x + 1] = indptr[x] + sizes[x + 1]
    positions = np.empty(indptr[n_symbols], _I32)
    counts = np.zeros(indptr[n_symbols], np.int16)
    fill = indptr[:-1].copy()
    slot = np.full(n_symbols, -1, _I64)
    seen[:] = -1
    for p in range(n_patterns):
        for t in range(pstart[p], pstart[p + 1]):
            x = flat[t]
            if seen[x] != p:
                seen[x] = p
                slot[x] = fill[x]
                positions[fill[x]] = p
                fill[x] += 1
            if counts[slot[x]] < 32767:
                counts[slot[x]] += 1
    return indptr, positions, counts

@_jit
def _distinct_counts(flat, pstart, lo, hi, n_symbols):
    """Return the number of distinct symbols of each pattern in [lo, hi)."""
    seen = np.full(n_symbols, -1, _I64)
    out = np.zeros(hi - lo, _I32)
    for p in range(lo, hi):
        k = 0
        for t in range(pstart[p], pstart[p + 1]):
            x = flat[t]
            if seen[x] != p:
                seen[x] = p
                k += 1
        out[p - lo] = k
    return out

@_jit
def _count_bound(indptr, positions, counts, q_syms, q_counts, n_indexed, n_patterns, pstart,
                 n, theta, len_lo, len_hi, extra, acc):
    """Return the positions (ascending) whose count bound can reach θ.

    The bound is Σ min(c_p, c_s) over ``q_syms`` plus ``extra`` (at most what the state's
    other symbols can add), capped at L; a pattern must hold one of ``q_syms``. Patterns
    appended after the postings were built (positions >= n_indexed) are all kept; the exact
    pass decides. ``acc`` is an all-zero scratch of n_indexed entries, left all zero: when
    few postings are read only the patterns they touch are visited (then sorted), so the
    cost follows the postings read, not the node's size.
    """
    total = 0
    for u in range(q_syms.shape[0]):
        total += indptr[q_syms[u] + 1] - indptr[q_syms[u]]
    sparse = total * 8 < n_indexed
    touched = np.empty(total if sparse else 0, _I64)
    nt = 0
    for u in range(q_syms.shape[0]):
        x = q_syms[u]
        c_s = q_counts[u]
        for t in range(indptr[x], indptr[x + 1]):
            c = counts[t]
            p = positions[t]
            if sparse and acc[p] == 0:
                touched[nt] = p
                nt += 1
            acc[p] += c if c < c_s else c_s
    if sparse:
        touched = np.sort(touched[:nt])
    out = np.empty((nt if sparse else n_indexed) + n_patterns - n_indexed, _I64)
    k = 0
    for i in range(nt if sparse else n_indexed):
        p = touched[i] if sparse else i
        a = acc[p]
        if a > 0:
            acc[p] = 0
            length = pstart[p + 1] - pstart[p]
            if length < len_lo or length > len_hi:
                continue
            bound = a + extra
            if bound > length:
                bound = length
            if (2 * bound) / (length + n) >= theta:
                out[k] = p
                k += 1
    for p in range(n_indexed, n_patterns):
        out[k] = p
        k += 1
    return out[:k]


def candidate_positions(ix, theta: float, n: int, local_node, counts, len_lo: int, len_hi: int):
    """Return the positions to score exactly, ascending (learn order). Lossless (§8.6).

    Let b be the least LCS that can reach θ: since L ≥ LCS, sim ≤ 2·LCS/(LCS + n), so a
    pattern whose LCS is below the least integer b with 2b/(b + n) ≥ θ (the same float
    comparison the exact test makes) cannot pass. The LCS is at most the count bound
    Σ_σ min(c_σ(p), c_σ(s)), so a pattern needs a count bound of b. Hence (prefix
    filtering) when the state's most common symbols hold at most b − 1 of its symbols, a
    pattern must contain one of the others: only the rarer symbols' postings are read, and
    the left-out symbols count at most their state counts in the bound. When the postings to
    read cover most of the node, every pattern is scanned directly (same set, less work).
    """
    def everything():  # built only when needed: 8 MB at a million patterns
        return np.arange(ix._n, dtype=_I64)

    if theta <= 0:
        return everything()
    ix._maybe_build_postings()
    known = local_node >= 0
    q_syms = local_node[known]
    q_counts = counts[known].astype(_I64)
    if q_syms.size == 0:
        return np.zeros(0, _I64)  # no state symbol occurs in any pattern: nothing can pass
    if n > 32767 or ix._indexed == 0:
        return everything()  # (postings count at most 32767 occurrences per pattern)
    inside = q_syms < ix._indptr.shape[0] - 1  # symbols new since the build: tail only
    q_syms, q_counts = q_syms[inside], q_counts[inside]
    sizes = ix._indptr[q_syms + 1] - ix._indptr[q_syms]
    least = 1
    while not (2 * least) / (least + n) >= theta:
        least += 1
        if least > n:
            return np.zeros(0, _I64) if ix._indexed == ix._n else np.arange(
                ix._indexed, ix._n, dtype=_I64)
    # Leave out the most common symbols while they hold at most least - 1 state symbols.
    order = np.argsort(-sizes, kind="stable")
    held = np.cumsum(q_counts[order])
    dropped = int(np.searchsorted(held, least - 1, side="right"))
    rare = order[dropped:]
    if float(sizes[rare].sum()) > ix.scan_ratio * float(ix._pstart[ix._indexed]):
        return everything()
    # The left-out symbols add at most their state counts to a pattern's bound.
    extra = int(held[dropped - 1]) if dropped else 0
    if ix._acc.shape[0] < ix._indexed:
        ix._acc = np.zeros(ix._indexed, np.int32)
    return _count_bound(ix._indptr, ix._positions, ix._counts, q_syms[rare],
                        q_counts[rare], ix._indexed, ix._n, ix._pstart, n, float(theta),
                        len_lo, len_hi, extra, ix._acc)
