"""A node's patterns as numpy arrays, with an exact, fast prediction path (engine.md §5, §6, §8.6).

``PatternIndex`` keeps every pattern of a node in learn order in flat integer arrays (symbols
interned to ids), an inverted index symbol → pattern positions with per-pattern counts (CSR), and
the symbol table (pmf). ``PatternIndex.predict`` returns exactly what ``predictor.predict`` returns
over the same patterns in the same order, bit for bit, at a fraction of the cost:

1. Candidates. θ = 0 admits every pattern (§5.3). For θ > 0 the lossless bounds of §8.6 prune
   before any exact work: the length window and the count bound
   ``LCS ≤ Σ_σ min(c_σ(p), c_σ(s))``, either summed over the inverted index of the state's
   symbols or, when θ asks for more common symbols than the state's most frequent ones can
   give, as a prefix filter (only the postings of the state's rarer symbols are read). When the
   postings to read cover most of the node, a direct compiled scan is cheaper and gives the same
   set. Candidates always come in learn order.
2. Exact matching, compiled with numba: the LCS by Hyyrö's bit-parallel algorithm (exact, one
   machine word per 64 state symbols), ``sim = 2·LCS/(L + n) >= θ``, then difflib's matching blocks
   (``autojunk=False``, the same recursion as ``matching.BlockMatcher``) and the event span with
   the tail-event correction, only for the patterns that pass.
3. Ensemble and metrics for all candidates in one compiled pass, each float in the order
   ``predictor`` evaluates it: sequential sums in learn order (never numpy's pairwise sums), the
   itfdf cosine through the very BLAS ``ddot`` numpy's ``dot`` calls (so the blocked summation of
   that kernel is reproduced by construction), libm's log10/log2/pow like CPython's ``math``.
4. Ranking by (−key, name): a stable sort by −key of the candidates in name order (the names'
   SHA-1 digests; hex order equals byte order), and the full 29-key objects only for the top
   ``max_predictions``. With ``futures_json`` the future_potentials come as the bytes
   ``orjson.dumps`` gives for that list, written by a compiled kernel (no per-entry objects),
   and with ``predictions_json`` the top objects likewise (a ``JSONList``).

The index is pure (numpy, numba and orjson; no Flask, no SQL) and supports the incremental
updates a worker's cache needs: append new patterns (learn order = ``created_seq`` order), update
the frequency and emotives of an existing one, set a symbol's pmf. When numba or numpy's bundled
OpenBLAS is missing, ``FAST`` is False and ``predict`` falls back to the direct scan over
``PatternRecord`` objects (same results, slower).

Memory: per pattern about 4 bytes per symbol (flat ids) + 6 bytes per distinct symbol (postings)
+ 4 bytes per event boundary + 48 bytes of fixed columns (offsets, frequency, created_seq,
digest), and per distinct symbol its JSON text + 8 bytes once futures were written as JSON; see
docs/benchmarks-scale.md for measured figures.
"""

from __future__ import annotations

import dataclasses
import gc
import glob
import math
import os
from contextlib import contextmanager
from time import perf_counter
from typing import Iterable, Iterator, Mapping, Sequence

import numpy as np
import orjson

from . import metrics as mx
from .predictor import JSONList, PatternRecord, PredictConfig, RANK_KEYS, SymbolStats

__all__ = ["FAST", "PatternIndex", "use_compiled", "warm_up"]

_I32 = np.int32
_I64 = np.int64

# ----------------------------------------------------------------------------------------------
# numba kernels. If numba or numpy's bundled OpenBLAS symbol is unavailable, FAST is False.

FAST = False
_ddot = None
try:  # pragma: no branch
    import llvmlite.binding as _llvm
    from numba import njit, types as _nt

    _libs = sorted(glob.glob(os.path.join(os.path.dirname(np.__file__), os.pardir, "numpy.libs",
                                          "libscipy_openblas64_*.so")))
    if _libs:
        _llvm.load_library_permanently(_libs[0])
        # numpy's 1-D float64 dot is ``0. + cblas_ddot(n, x, 1, y, 1)`` on this very symbol; calling
        # it gives numpy's result to the last bit, whatever kernel OpenBLAS picked for this CPU.
        _ddot = _nt.ExternalFunction(
            "scipy_cblas_ddot64_",
            _nt.float64(_nt.int64, _nt.voidptr, _nt.int64, _nt.voidptr, _nt.int64))
        FAST = True
except ImportError:  # pragma: no cover - numba is pinned in requirements.txt
    FAST = False
COMPILED = FAST  # whether the compiled path can run here at all


def use_compiled(enabled: bool) -> bool:
    """Switch the compiled path on or off (KATO_FAST_PREDICT via the app's config); return FAST.

    Off, every prediction scores all patterns directly (same answers, far slower): a way to
    check the compiled path against the reference on live data.
    """
    global FAST
    FAST = COMPILED and bool(enabled)
    return FAST

if _ddot is not None:
    _jit = njit(cache=True, nogil=True)
    _U0 = np.uint64(0)
    _U1 = np.uint64(1)
    _UALL = np.uint64(0xFFFFFFFFFFFFFFFF)
    _M1 = np.uint64(0x5555555555555555)
    _M2 = np.uint64(0x3333333333333333)
    _M4 = np.uint64(0x0F0F0F0F0F0F0F0F)
    _H01 = np.uint64(0x0101010101010101)
    _FNV = np.uint64(1099511628211)
    _FNV0 = np.uint64(14695981039346656037)

    @_jit
    def _popcount(x):
        x = x - ((x >> _U1) & _M1)
        x = (x & _M2) + ((x >> np.uint64(2)) & _M2)
        x = (x + (x >> np.uint64(4))) & _M4
        return np.int64((x * _H01) >> np.uint64(56))

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

    @_jit
    def _lcs(loc, length, pm, words, n, vbuf):
        """Return the LCS of the pattern (local ids, -1 = absent from the state) and the state."""
        if words == 1:
            v = _UALL
            for t in range(length):
                x = loc[t]
                if x >= 0:
                    m = pm[x, 0]
                    u = v & m
                    v = (v + u) | (v - u)
            if n == 64:
                return _popcount(~v)
            return _popcount(~v & ((_U1 << np.uint64(n)) - _U1))
        for w in range(words):
            vbuf[w] = _UALL
        for t in range(length):
            x = loc[t]
            if x < 0:
                continue
            carry = _U0
            for w in range(words):
                vw = vbuf[w]
                u = vw & pm[x, w]
                s1 = vw + carry
                c1 = _U1 if s1 < carry else _U0
                s2 = s1 + u
                c2 = _U1 if s2 < u else _U0
                vbuf[w] = s2 | (vw - u)
                carry = c1 | c2
        total = 0
        for w in range(words):
            bits = n - 64 * w
            vw = ~vbuf[w]
            if bits < 64:
                vw = vw & ((_U1 << np.uint64(bits)) - _U1)
            total += _popcount(vw)
        return total

    @_jit
    def _blocks(loc, length, n, pos_ptr, pos, prv, cur, found, queue):
        """Fill ``found`` with difflib's merged matching blocks (autojunk off); return their count.

        ``prv``/``cur`` are zeroed int arrays of n + 1 entries (left zeroed on return).
        """
        nfound = 0
        queue[0, 0] = 0
        queue[0, 1] = length
        queue[0, 2] = 0
        queue[0, 3] = n
        nq = 1
        while nq > 0:
            nq -= 1
            alo = queue[nq, 0]
            ahi = queue[nq, 1]
            blo = queue[nq, 2]
            bhi = queue[nq, 3]
            besti = alo
            bestj = blo
            bestsize = 0
            last = -1  # the local symbol whose positions are set in prv
            for i in range(alo, ahi):
                x = loc[i]
                if x >= 0:
                    for t in range(pos_ptr[x], pos_ptr[x + 1]):
                        j = pos[t]
                        if j < blo:
                            continue
                        if j >= bhi:
                            break
                        k = prv[j] + 1  # prv[j] holds the run ending at b[j - 1]
                        cur[j + 1] = k
                        if k > bestsize:
                            besti = i - k + 1
                            bestj = j - k + 1
                            bestsize = k
                if last >= 0:
                    for t in range(pos_ptr[last], pos_ptr[last + 1]):
                        prv[pos[t] + 1] = 0
                tmp = prv
                prv = cur
                cur = tmp
                last = x
            if last >= 0:
                for t in range(pos_ptr[last], pos_ptr[last + 1]):
                    prv[pos[t] + 1] = 0
            if bestsize > 0:
                found[nfound, 0] = besti
                found[nfound, 1] = bestj
                found[nfound, 2] = bestsize
                nfound += 1
                if alo < besti and blo < bestj:
                    queue[nq, 0] = alo
                    queue[nq, 1] = besti
                    queue[nq, 2] = blo
                    queue[nq, 3] = bestj
                    nq += 1
                if besti + bestsize < ahi and bestj + bestsize < bhi:
                    queue[nq, 0] = besti + bestsize
                    queue[nq, 1] = ahi
                    queue[nq, 2] = bestj + bestsize
                    queue[nq, 3] = bhi
                    nq += 1
        # Sort by (i, j): blocks never overlap in the pattern, so i alone orders them.
        for u in range(1, nfound):
            a0 = found[u, 0]
            a1 = found[u, 1]
            a2 = found[u, 2]
            v = u - 1
            while v >= 0 and found[v, 0] > a0:
                found[v + 1, 0] = found[v, 0]
                found[v + 1, 1] = found[v, 1]
                found[v + 1, 2] = found[v, 2]
                v -= 1
            found[v + 1, 0] = a0
            found[v + 1, 1] = a1
            found[v + 1, 2] = a2
        merged = 0
        for u in range(nfound):
            if merged > 0 and (found[merged - 1, 0] + found[merged - 1, 2] == found[u, 0]
                               and found[merged - 1, 1] + found[merged - 1, 2] == found[u, 1]):
                found[merged - 1, 2] += found[u, 2]
            else:
                found[merged, 0] = found[u, 0]
                found[merged, 1] = found[u, 1]
                found[merged, 2] = found[u, 2]
                merged += 1
        return merged

    @_jit
    def _match(cand, flat, pstart, ebstart, ebounds, distinct, local_of, s_loc, n, k_state, pm,
               words, pos_ptr, pos, theta, len_lo, len_hi, jac_on, jac_min, jac_thr, max_len):
        """Score the candidates exactly; return (positions, sim, M, r, e1, e2) of those that pass."""
        nc = cand.shape[0]
        out_p = np.empty(nc, _I64)
        out_sim = np.empty(nc, np.float64)
        out_m = np.empty(nc, _I64)
        out_r = np.empty(nc, _I64)
        out_e1 = np.empty(nc, _I64)
        out_e2 = np.empty(nc, _I64)
        loc = np.empty(max_len + 1, _I64)
        vbuf = np.empty(words, np.uint64)
        prv = np.zeros(n + 2, _I64)
        cur = np.zeros(n + 2, _I64)
        found = np.empty((n + 1, 3), _I64)
        queue = np.empty((2 * n + 4, 4), _I64)
        seen = np.zeros(k_state, np.uint8)
        kept = 0
        for c in range(nc):
            p = cand[c]
            a = pstart[p]
            length = pstart[p + 1] - a
            if length < len_lo or length > len_hi:
                continue
            total = length + n
            shorter = length if length < n else n
            if theta > 0 and (2 * shorter) / total < theta:
                continue  # lossless: the LCS never exceeds the shorter sequence (§8.6)
            hits = 0
            for t in range(length):
                x = local_of[flat[a + t]]
                loc[t] = x
                if x >= 0:
                    hits += 1
            if jac_on:
                overlap = 0
                for t in range(length):
                    x = loc[t]
                    if x >= 0 and seen[x] == 0:
                        seen[x] = 1
                        overlap += 1
                for t in range(length):
                    x = loc[t]
                    if x >= 0:
                        seen[x] = 0
                if overlap < jac_min:
                    continue
                union = distinct[p] + k_state - overlap
                if not overlap / union >= jac_thr:
                    continue
            if hits == 0:
                if theta > 0:
                    continue
                sim = 0.0
            else:
                shorter = hits if hits < n else n
                if theta > 0 and (2 * shorter) / total < theta:
                    continue  # lossless: only positions holding a state symbol can match
                sim = (2 * _lcs(loc, length, pm, words, n, vbuf)) / total
                if not sim >= theta:
                    continue
            r = 0
            if hits > 0:
                r = _blocks(loc, length, n, pos_ptr, pos, prv, cur, found, queue)
            if r == 0:
                if theta > 0:
                    continue
                m = 0
                a0 = 0
                q = length
            else:
                m = 0
                for u in range(r):
                    m += found[u, 2]
                a0 = found[0, 0]
                q = found[r - 1, 0] + found[r - 1, 2] - a0
            b0 = ebstart[p]
            b1 = ebstart[p + 1]  # ebounds[b0:b1] = C_0 = 0, C_1, ..., C_m
            e1 = 0
            while ebounds[b0 + e1] < a0:
                e1 += 1
            e2 = e1
            while ebounds[b0 + e2] < a0 + q:
                e2 += 1
            if e1 > 0 and m > 0:
                first = s_loc[found[0, 1]]
                for t in range(ebounds[b0 + e1 - 1], ebounds[b0 + e1]):
                    if loc[t] == first:
                        e1 -= 1
                        break
            out_p[kept] = p
            out_sim[kept] = sim
            out_m[kept] = m
            out_r[kept] = r
            out_e1[kept] = e1
            out_e2[kept] = e2
            kept += 1
        return (out_p[:kept], out_sim[:kept], out_m[:kept], out_r[:kept], out_e1[:kept],
                out_e2[:kept])

    @_jit
    def _entropy(ids):
        """Return ``metrics.entropy`` of a present (its symbol ids in order), bit for bit.

        The terms −p·log2(p) are added left to right in first-appearance order of the symbols.
        """
        size = ids.shape[0]
        order = np.argsort(ids, kind="mergesort")  # stable: equal ids by position
        first = np.empty(size, _I64)
        count = np.empty(size, _I64)
        nd = 0
        u = 0
        while u < size:
            v = u + 1
            while v < size and ids[order[v]] == ids[order[u]]:
                v += 1
            first[nd] = order[u]
            count[nd] = v - u
            nd += 1
            u = v
        h = 0.0
        for w in np.argsort(first[:nd]):
            q = count[w] / size
            h = h + -q * math.log2(q)
        return h

    @_jit
    def _entropies(cp, e1, e2, flat, pstart, ebstart, ebounds, pmf, has_pmf, tup, n_sym, whole,
                   n_symbols, max_len):
        """Return (entropy, normalized_entropy, global_normalized_entropy) of each candidate.

        Over its present, or over the whole pattern when ``whole`` (a finalized node), as
        ``predictor._Ensemble.entropies`` computes them (kato-3.10.md §1.4e): terms over the
        distinct symbols in first appearance, added left to right; φ_N(p) = −p·(log p/log N),
        which is CPython's ``math.log(p, N)``; π(σ) = pmf(σ)/TUP live from the symbol table.
        """
        nc = cp.shape[0]
        ent = np.zeros(nc, np.float64)
        nor = np.zeros(nc, np.float64)
        glo = np.zeros(nc, np.float64)
        slot_of = np.full(n_symbols, -1, _I64)
        rsym = np.empty(max_len + 1, _I64)
        rcnt = np.empty(max_len + 1, _I64)
        log_n = math.log(n_sym) if n_sym > 1 else 1.0
        for c in range(nc):
            p = cp[c]
            a = pstart[p]
            if whole:
                lo = a
                hi = pstart[p + 1]
            else:
                lo = a + ebounds[ebstart[p] + e1[c]]
                hi = a + ebounds[ebstart[p] + e2[c]]
            size = hi - lo
            if size == 0:
                continue
            nd = 0
            for t in range(lo, hi):
                x = flat[t]
                u = slot_of[x]
                if u < 0:
                    slot_of[x] = nd
                    rsym[nd] = x
                    rcnt[nd] = 1
                    nd += 1
                else:
                    rcnt[u] += 1
            h = 0.0
            v = 0.0
            g = 0.0
            for u in range(nd):
                x = rsym[u]
                slot_of[x] = -1
                q = rcnt[u] / size
                h = h + -q * math.log2(q)
                if n_sym > 1:
                    v = v + -q * (math.log(q) / log_n)
                    if has_pmf[x] and tup != 0:
                        pi = pmf[x] / tup
                        if pi > 0:
                            g = g + -pi * (math.log(pi) / log_n)
            ent[c] = h
            nor[c] = v
            glo[c] = g
        return ent, nor, glo

    @_jit
    def _top_blocks(cp, e1, e2, flat, pstart, ebstart, ebounds, local_of, n, pos_ptr, pos,
                    max_len):
        """Return (blocks per candidate, their (j, k) in the state, present entropies).

        For the few candidates whose full objects are built.
        """
        nc = cp.shape[0]
        loc = np.empty(max_len + 1, _I64)
        prv = np.zeros(n + 2, _I64)
        cur = np.zeros(n + 2, _I64)
        found = np.empty((n + 1, 3), _I64)
        queue = np.empty((2 * n + 4, 4), _I64)
        per = np.zeros(nc, _I64)
        out = np.empty((nc * (n + 1), 2), _I64)
        ent = np.zeros(nc, np.float64)
        k = 0
        for c in range(nc):
            p = cp[c]
            a = pstart[p]
            length = pstart[p + 1] - a
            lo = a + ebounds[ebstart[p] + e1[c]]
            hi = a + ebounds[ebstart[p] + e2[c]]
            if hi > lo:
                ent[c] = _entropy(flat[lo:hi])
            hits = 0
            for t in range(length):
                x = local_of[flat[a + t]]
                loc[t] = x
                if x >= 0:
                    hits += 1
            if hits == 0:
                continue
            r = _blocks(loc, length, n, pos_ptr, pos, prv, cur, found, queue)
            per[c] = r
            for u in range(r):
                out[k, 0] = found[u, 1]
                out[k, 1] = found[u, 2]
                k += 1
        return per, out[:k], ent

    @_jit
    def _domain(cp, e1, e2, flat, pstart, ebstart, ebounds, n_symbols):
        """Return D, every symbol of every present span (engine.md §6), in first appearance."""
        mark = np.zeros(n_symbols, np.uint8)
        out = np.empty(n_symbols, _I64)
        k = 0
        for c in range(cp.shape[0]):
            p = cp[c]
            a = pstart[p]
            b0 = ebstart[p]
            for t in range(a + ebounds[b0 + e1[c]], a + ebounds[b0 + e2[c]]):
                x = flat[t]
                if mark[x] == 0:
                    mark[x] = 1
                    out[k] = x
                    k += 1
        return out[:k]

    @_jit
    def _gather_events(ps, starts, flat, pstart, ebstart, ebounds):
        """Return (symbol ids, event bounds, pattern bounds) of events[start:] of each pattern.

        Event e holds ids[ebnd[e]:ebnd[e + 1]]; pattern u holds events pbnd[u]:pbnd[u + 1].
        """
        total = 0
        nev = 0
        for u in range(ps.shape[0]):
            p = ps[u]
            b0 = ebstart[p]
            total += ebounds[ebstart[p + 1] - 1] - ebounds[b0 + starts[u]]
            nev += ebstart[p + 1] - b0 - 1 - starts[u]
        ids = np.empty(total, _I64)
        ebnd = np.empty(nev + 1, _I64)
        pbnd = np.empty(ps.shape[0] + 1, _I64)
        ebnd[0] = 0
        pbnd[0] = 0
        k = 0
        e = 0
        for u in range(ps.shape[0]):
            p = ps[u]
            a = pstart[p]
            b0 = ebstart[p]
            m = ebstart[p + 1] - b0 - 1
            for ev in range(starts[u], m):
                for t in range(a + ebounds[b0 + ev], a + ebounds[b0 + ev + 1]):
                    ids[k] = flat[t]
                    k += 1
                e += 1
                ebnd[e] = k
            pbnd[u + 1] = e
        return ids, ebnd, pbnd

    def _text(raw: bytes) -> np.ndarray:
        return np.array(list(raw), np.uint8)

    # The constant parts of a future_potentials entry, as orjson writes them (compact).
    _J_FUTURE = _text(b'{"future":')
    _J_AGG = _text(b',"aggregate_potential":')
    _J_SUP = _text(b',"supporting_patterns":')
    _J_TWF = _text(b',"total_weighted_frequency":')

    @_jit
    def _put(out, k, src, lo, hi):
        """Copy src[lo:hi] into out at k; return the position after it."""
        for t in range(lo, hi):
            out[k] = src[t]
            k += 1
        return k

    @_jit
    def _int_size(v):
        """Return the number of decimal digits of v >= 0."""
        size = 1
        while v >= 10:
            v //= 10
            size += 1
        return size

    @_jit
    def _next_number(text, k, out, at):
        """Copy the number of an orjson array ``text`` that starts at k (after '[' or ','); return
        (the position of the ',' or ']' that ends it, the position after it in ``out``)."""
        while text[k] != 44 and text[k] != 93:  # ',' and ']'
            out[at] = text[k]
            at += 1
            k += 1
        return k, at

    @_jit
    def _open_list(out, k, after_item):
        """Write the '[' opening a list that is an item of a JSON list (after a ',' if not first)."""
        if after_item:
            out[k] = 44
            k += 1
        out[k] = 91
        return k + 1

    @_jit
    def _close_list(out, k):
        out[k] = 93  # ']'
        return k + 1

    @_jit
    def _put_item(out, k, first, src, lo, hi):
        """Write src[lo:hi] as an item of a JSON list: after a ',' unless it is the first."""
        if not first:
            out[k] = 44
            k += 1
        return _put(out, k, src, lo, hi)

    @_jit
    def _put_events(out, k, p, lo_ev, hi_ev, flat, pstart, ebstart, ebounds, sym_json, sym_off):
        """Write events[lo_ev:hi_ev] of pattern p as a JSON list of lists of strings."""
        a = pstart[p]
        b0 = ebstart[p]
        out[k] = 91
        k += 1
        for ev in range(lo_ev, hi_ev):
            k = _open_list(out, k, ev > lo_ev)
            lo = a + ebounds[b0 + ev]
            hi = a + ebounds[b0 + ev + 1]
            for t in range(lo, hi):
                if t > lo:
                    out[k] = 44
                    k += 1
                x = flat[t]
                k = _put(out, k, sym_json, sym_off[x], sym_off[x + 1])
            out[k] = 93
            k += 1
        out[k] = 93
        return k + 1

    @_jit
    def _futures_json(ps, starts, flat, pstart, ebstart, ebounds, sym_json, sym_off, counts,
                      agg_text, w_text):
        """Write ``orjson.dumps`` of the future_potentials list, byte for byte, as uint8.

        Entry u is the future events[starts[u]:] of pattern ps[u] (each symbol's JSON string
        taken from ``sym_json[sym_off[x]:sym_off[x + 1]]``), its count as an int, and the u-th
        numbers of ``agg_text`` and ``w_text``, two float64 arrays as orjson writes them, so
        every float has exactly orjson's text. Counts are positive. One pass sizes the output,
        the second fills it.
        """
        ng = ps.shape[0]
        # The list's brackets and commas (as many as in either float text), the keys and
        # braces, the floats' text.
        sep = ng + 1 if ng else 2
        size = sep + ng * (_J_FUTURE.shape[0] + _J_AGG.shape[0] + _J_SUP.shape[0]
                           + _J_TWF.shape[0] + 1)
        size += agg_text.shape[0] - sep + w_text.shape[0] - sep
        for u in range(ng):
            p = ps[u]
            a = pstart[p]
            b0 = ebstart[p]
            m = ebstart[p + 1] - b0 - 1
            size += 1 + max(m - starts[u], 1) + _int_size(counts[u])  # [ , ... ] then the count
            for ev in range(starts[u], m):
                lo = a + ebounds[b0 + ev]
                hi = a + ebounds[b0 + ev + 1]
                size += 1 + max(hi - lo, 1)
                for t in range(lo, hi):
                    x = flat[t]
                    size += sym_off[x + 1] - sym_off[x]
        out = np.empty(size, np.uint8)
        k = 0
        ka = 0  # the '[' or ',' before the next number of agg_text, and of w_text
        kw = 0
        out[k] = 91  # '['
        k += 1
        for u in range(ng):
            if u:
                out[k] = 44
                k += 1
            k = _put(out, k, _J_FUTURE, 0, _J_FUTURE.shape[0])
            p = ps[u]
            k = _put_events(out, k, p, starts[u], ebstart[p + 1] - ebstart[p] - 1, flat, pstart,
                            ebstart, ebounds, sym_json, sym_off)
            k = _put(out, k, _J_AGG, 0, _J_AGG.shape[0])
            ka, k = _next_number(agg_text, ka + 1, out, k)
            k = _put(out, k, _J_SUP, 0, _J_SUP.shape[0])
            v = counts[u]
            digits = _int_size(v)
            for t in range(digits - 1, -1, -1):
                out[k + t] = 48 + v % 10
                v //= 10
            k += digits
            k = _put(out, k, _J_TWF, 0, _J_TWF.shape[0])
            kw, k = _next_number(w_text, kw + 1, out, k)
            out[k] = 125  # '}'
            k += 1
        out[k] = 93
        return out

    # The keys of a prediction object after its head ("type", "name", "frequency", "emotives",
    # written by Python), as orjson writes them; the floats' keys in column order of the
    # numbers matrix given to _predictions_json.
    _P_LISTS = (b',"matches":', b',"past":', b',"present":', b',"missing":', b',"extras":')
    _P_FLOATS = (b',"potential":', b',"evidence":', b',"similarity":', b',"fragmentation":',
                 b',"snr":', b',"confluence":', b',"predictive_information":',
                 b',"sequence":', b',"future":',  # two event lists, between the 7th and 8th float
                 b',"confidence":', b',"entropy":', b',"normalized_entropy":',
                 b',"global_normalized_entropy":', b',"itfdf_similarity":', b',"tfidf_score":',
                 b',"pattern_probability":', b',"weighted_strength":', b',"bayesian_posterior":',
                 b',"bayesian_prior":', b',"bayesian_likelihood":')
    _P_KEYS = _text(b"".join(_P_LISTS + _P_FLOATS))
    # The keys kato-3.10.md adds after bayesian_likelihood, as the compiled writer always has
    # them: no fuzzy threshold and no affinity emotive (a prediction call with either is built
    # from Python objects, see PatternIndex._predict_direct).
    _P_TAIL = _text(b',"anomalies":[],"weighted_similarity":null,"weighted_evidence":null,'
                    b'"weighted_confidence":null,"weighted_snr":null')
    _P_KOFF = np.cumsum(np.array([0] + [len(x) for x in _P_LISTS + _P_FLOATS], _I64))
    _P_NKEYS = len(_P_LISTS) + len(_P_FLOATS)
    _P_NFLOATS = len(_P_FLOATS) - 2

    @_jit
    def _put_key(out, k, i):
        return _put(out, k, _P_KEYS, _P_KOFF[i], _P_KOFF[i + 1])

    @_jit
    def _predictions_json(tp, e1, e2, flat, pstart, ebstart, ebounds, sym_json, sym_off,
                          local_of, s_loc, stm_eb, loc_json, loc_off, per, jk, heads, head_off,
                          numbers):
        """Write ``orjson.dumps`` of the top predictions' objects, byte for byte, as uint8.

        Prediction u is pattern tp[u] with present events e1[u]:e2[u]. ``heads`` holds each
        object's text from its "{" through its "emotives" value (written by the caller);
        ``numbers`` is orjson's text of the (predictions × 18) float64 matrix of its floats in
        key order, so each float has exactly orjson's spelling. Matches are the state symbols
        of the prediction's matching blocks (``jk``: (start, size) in the state, ``per[u]`` of
        them); missing, the present symbols not matched; extras, each state event's symbols not
        in the present (``stm_eb``: the state events' bounds in the flattened state, whose
        symbols' local ids are ``s_loc``; ``local_of`` maps node ids to them).
        """
        nt = tp.shape[0]
        n = s_loc.shape[0]
        nloc = loc_off.shape[0] - 1
        state_text = 0
        for t in range(n):
            state_text += loc_off[s_loc[t] + 1] - loc_off[s_loc[t]] + 1
        nev = stm_eb.shape[0] - 1
        # An upper bound of the size: the heads and numbers as given, every key, each pattern's
        # events at most four times over (sequence; past, present and future; missing), the state
        # twice (matches, extras) with its brackets.
        size = head_off[nt] + numbers.shape[0] + 2 + nt * (_P_KEYS.shape[0] + _P_TAIL.shape[0] + 16
                                                           + 2 * (state_text + 2 * nev + 4))
        for u in range(nt):
            p = tp[u]
            a = pstart[p]
            for t in range(a, pstart[p + 1]):
                x = flat[t]
                size += 4 * (sym_off[x + 1] - sym_off[x] + 1)
            size += 4 * (3 * (ebstart[p + 1] - ebstart[p]) + 4)
        out = np.empty(size, np.uint8)
        matched = np.zeros(max(nloc, 1), _I64)  # stamp u + 1: the local symbol is matched
        present = np.zeros(max(nloc, 1), _I64)  # stamp u + 1: the local symbol is in the present
        k = 0
        kn = 0  # in ``numbers``: the '[' of the matrix, then the ']' ending each row
        block = 0
        out[k] = 91
        k += 1
        for u in range(nt):
            if u:
                out[k] = 44
                k += 1
            stamp = u + 1
            p = tp[u]
            a = pstart[p]
            b0 = ebstart[p]
            m = ebstart[p + 1] - b0 - 1
            k = _put(out, k, heads, head_off[u], head_off[u + 1])
            # matches
            k = _open_list(out, _put_key(out, k, 0), False)
            first = True
            for r in range(block, block + per[u]):
                for t in range(jk[r, 0], jk[r, 0] + jk[r, 1]):
                    x = s_loc[t]
                    matched[x] = stamp
                    k = _put_item(out, k, first, loc_json, loc_off[x], loc_off[x + 1])
                    first = False
            block += per[u]
            k = _close_list(out, k)
            k = _put_key(out, k, 1)
            k = _put_events(out, k, p, 0, e1[u], flat, pstart, ebstart, ebounds, sym_json, sym_off)
            k = _put_key(out, k, 2)
            k = _put_events(out, k, p, e1[u], e2[u], flat, pstart, ebstart, ebounds, sym_json,
                            sym_off)
            # missing: per present event, its symbols not matched
            k = _open_list(out, _put_key(out, k, 3), False)
            for ev in range(e1[u], e2[u]):
                k = _open_list(out, k, ev > e1[u])
                first = True
                for t in range(a + ebounds[b0 + ev], a + ebounds[b0 + ev + 1]):
                    x = flat[t]
                    lx = local_of[x]
                    if lx >= 0:
                        present[lx] = stamp
                        if matched[lx] == stamp:
                            continue
                    k = _put_item(out, k, first, sym_json, sym_off[x], sym_off[x + 1])
                    first = False
                k = _close_list(out, k)
            k = _close_list(out, k)
            # extras: per state event, its symbols not in the present
            k = _open_list(out, _put_key(out, k, 4), False)
            for ev in range(nev):
                k = _open_list(out, k, ev > 0)
                first = True
                for t in range(stm_eb[ev], stm_eb[ev + 1]):
                    x = s_loc[t]
                    if present[x] != stamp:
                        k = _put_item(out, k, first, loc_json, loc_off[x], loc_off[x + 1])
                        first = False
                k = _close_list(out, k)
            k = _close_list(out, k)
            # the floats, with "sequence" and "future" after the 7th
            kn += 1  # the row's '['
            for f in range(_P_NFLOATS):
                if f == 7:
                    k = _put_key(out, k, 5 + 7)
                    k = _put_events(out, k, p, 0, m, flat, pstart, ebstart, ebounds, sym_json,
                                    sym_off)
                    k = _put_key(out, k, 5 + 8)
                    k = _put_events(out, k, p, e2[u], m, flat, pstart, ebstart, ebounds,
                                    sym_json, sym_off)
                k = _put_key(out, k, 5 + f + (2 if f >= 7 else 0))
                kn, k = _next_number(numbers, kn + 1, out, k)
            kn += 1  # past the row's ']': the ',' before the next row, or the matrix's ']'
            k = _put(out, k, _P_TAIL, 0, _P_TAIL.shape[0])
            out[k] = 125
            k += 1
        out[k] = 93
        return out[: k + 1]

    @_jit
    def _first_members(ranked, group_of, ngroups):
        """Return (groups, their first member) in the order groups first appear in ``ranked``."""
        seen = np.zeros(ngroups, np.uint8)
        groups = np.empty(ngroups, _I64)
        members = np.empty(ngroups, _I64)
        k = 0
        for u in range(ranked.shape[0]):
            c = ranked[u]
            g = group_of[c]
            if g >= 0 and seen[g] == 0:
                seen[g] = 1
                groups[k] = g
                members[k] = c
                k += 1
        return groups, members

    @_jit
    def _sorted_event(flat, lo, hi, buf):
        """Copy flat[lo:hi] into buf sorted ascending (an event as a multiset); return its size."""
        size = hi - lo
        for t in range(size):
            v = flat[lo + t]
            u = t - 1
            while u >= 0 and buf[u] > v:
                buf[u + 1] = buf[u]
                u -= 1
            buf[u + 1] = v
        return size

    @_jit
    def _future_hash(p, e2, flat, pstart, ebstart, ebounds, buf):
        a = pstart[p]
        b0 = ebstart[p]
        b1 = ebstart[p + 1]
        h = _FNV0
        for e in range(e2, b1 - b0 - 1):
            size = _sorted_event(flat, a + ebounds[b0 + e], a + ebounds[b0 + e + 1], buf)
            h = (h ^ np.uint64(size + 1)) * _FNV
            for t in range(size):
                h = (h ^ np.uint64(buf[t] + 7)) * _FNV
        return h

    @_jit
    def _future_equal(p, e2, q, f2, flat, pstart, ebstart, ebounds, buf, buf2):
        """Tell whether two futures are equal as lists of sorted events (KATO's group key)."""
        mp = ebstart[p + 1] - ebstart[p] - 1
        mq = ebstart[q + 1] - ebstart[q] - 1
        if mp - e2 != mq - f2:
            return False
        ap = pstart[p]
        aq = pstart[q]
        bp = ebstart[p]
        bq = ebstart[q]
        for u in range(mp - e2):
            s1 = _sorted_event(flat, ap + ebounds[bp + e2 + u], ap + ebounds[bp + e2 + u + 1], buf)
            s2 = _sorted_event(flat, aq + ebounds[bq + f2 + u], aq + ebounds[bq + f2 + u + 1], buf2)
            if s1 != s2:
                return False
            for t in range(s1):
                if buf[t] != buf2[t]:
                    return False
        return True

    @_jit
    def _ensemble(cp, sim, m_arr, r_arr, e1, e2, flat, pstart, ebstart, ebounds, freq, pmf,
                  has_pmf, tup, tpf, n, local_of, local_node, local_count, local_rank, dom,
                  dom_rank, n_symbols, max_len, whole):
        """Compute the ensemble quantities and every per-candidate metric (engine.md §6).

        Every float is evaluated as ``predictor._Ensemble`` evaluates it; sums run left to right
        in candidate (learn) order. ``whole``: a finalized node, whose tfidf takes its TF over
        the whole pattern (idf live from the symbol table, kato-3.10.md §1.4e).
        """
        nc = cp.shape[0]
        k_state = local_node.shape[0]
        total_f = 0
        for c in range(nc):
            total_f += freq[cp[c]]

        # π, log10 q and idf over D.
        pi = np.zeros(n_symbols, np.float64)
        in_dom = np.zeros(n_symbols, np.uint8)
        rank = np.zeros(n_symbols, _I64)
        log10q = np.zeros(n_symbols, np.float64)
        idf = np.zeros(n_symbols, np.float64)
        for u in range(dom.shape[0]):
            x = dom[u]
            in_dom[x] = 1
            rank[x] = dom_rank[u]
            if has_pmf[x] and tup != 0:
                pi[x] = pmf[x] / tup
            v = pi[x]
            log10q[x] = math.log10(v if v > 0 else 1e-10)
            if tup != 0:
                w = np.int64(v * tup)
                if w == 0:
                    w = 1
                idf[x] = math.log2(tup / w) + 1
        # The state's half of the itfdf vectors: π(σ)·count_s(σ), 0 outside D.
        state_w = np.zeros(k_state, np.float64)
        state_any = False
        for l in range(k_state):
            x = local_node[l]
            if x >= 0 and in_dom[x]:
                state_w[l] = pi[x] * local_count[l]
            if state_w[l] != 0:
                state_any = True

        # Σ sim·prior and the future groups, in candidate order.
        evidence_sum = 0.0
        group_of = np.full(nc, -1, _I64)
        gw = np.zeros(nc, np.float64)
        gcount = np.zeros(nc, _I64)
        grep = np.zeros(nc, _I64)
        ghash = np.zeros(nc, np.uint64)
        size = 1
        while size < 2 * nc + 2:
            size *= 2
        table = np.full(size, -1, _I64)
        mask = np.uint64(size - 1)
        buf = np.empty(max_len + 1, _I64)
        buf2 = np.empty(max_len + 1, _I64)
        ngroups = 0
        for c in range(nc):
            p = cp[c]
            f = freq[p]
            prior = f / total_f if total_f else 0.0
            evidence_sum = evidence_sum + sim[c] * prior
            m_events = ebstart[p + 1] - ebstart[p] - 1
            if e2[c] >= m_events:
                continue
            h = _future_hash(p, e2[c], flat, pstart, ebstart, ebounds, buf)
            slot = h & mask
            g = -1
            while True:
                g0 = table[slot]
                if g0 < 0:
                    break
                if ghash[g0] == h:
                    rc = grep[g0]
                    if _future_equal(p, e2[c], cp[rc], e2[rc], flat, pstart, ebstart, ebounds,
                                     buf, buf2):
                        g = g0
                        break
                slot = (slot + _U1) & mask
            if g < 0:
                g = ngroups
                ngroups += 1
                table[slot] = g
                ghash[g] = h
                grep[g] = c
            group_of[c] = g
            gw[g] = gw[g] + f * sim[c]
            gcount[g] += 1
        w_total = 0.0
        for g in range(ngroups):
            w_total = w_total + gw[g]
        agg = np.zeros(ngroups, np.float64)
        for g in range(ngroups):
            agg[g] = gw[g] / w_total if w_total else 0.0

        ev = np.empty(nc, np.float64)
        conf = np.empty(nc, np.float64)
        snr = np.empty(nc, np.float64)
        itfdf = np.empty(nc, np.float64)
        pot = np.empty(nc, np.float64)
        confl = np.empty(nc, np.float64)
        tfidf = np.empty(nc, np.float64)
        prob = np.empty(nc, np.float64)
        strength = np.empty(nc, np.float64)
        info = np.empty(nc, np.float64)
        prior_a = np.empty(nc, np.float64)
        post = np.empty(nc, np.float64)
        # Scratch for one candidate's present counts (first appearance) and its itfdf vectors.
        slot_of = np.full(n_symbols, -1, _I64)
        rsym = np.empty(max_len + 1, _I64)
        rcnt = np.empty(max_len + 1, _I64)
        ucap = max_len + k_state + 1
        urank = np.empty(ucap, _I64)
        ua = np.empty(ucap, np.float64)
        ub = np.empty(ucap, np.float64)
        va = np.empty(ucap, np.float64)
        vb = np.empty(ucap, np.float64)
        for c in range(nc):
            p = cp[c]
            f = freq[p]
            m = m_arr[c]
            a = pstart[p]
            length = pstart[p + 1] - a
            b0 = ebstart[p]
            lo = a + ebounds[b0 + e1[c]]
            hi = a + ebounds[b0 + e2[c]]
            rho = hi - lo
            nd = 0
            for t in range(lo, hi):
                x = flat[t]
                s = slot_of[x]
                if s < 0:
                    slot_of[x] = nd
                    rsym[nd] = x
                    rcnt[nd] = 1
                    nd += 1
                else:
                    rcnt[s] += 1
            e = m / length if length else 0.0
            cf = m / rho if rho else 0.0
            extra = n - m
            den = 2.0 * m + extra
            sg = (2.0 * m - extra) / den if den != 0 else 0.0
            frag = r_arr[c] - 1
            # itfdf: cosine of the π-weighted count vectors over sorted(ρ ∪ s) (engine.md §6.13).
            if total_f == 0:
                it = 0.0
            else:
                rho_any = False
                for u in range(nd):
                    if pi[rsym[u]] != 0:
                        rho_any = True
                        break
                if state_any and rho_any:
                    nu = 0
                    for l in range(k_state):
                        x = local_node[l]
                        urank[nu] = local_rank[l]
                        ua[nu] = state_w[l]
                        bval = 0.0
                        if x >= 0:
                            s = slot_of[x]
                            if s >= 0:
                                bval = pi[x] * rcnt[s]
                        ub[nu] = bval
                        nu += 1
                    for u in range(nd):
                        x = rsym[u]
                        l = local_of[x]
                        if l >= 0:
                            continue
                        urank[nu] = rank[x]
                        ua[nu] = 0.0
                        ub[nu] = pi[x] * rcnt[u]
                        nu += 1
                    # Insertion sort by string rank (at most |ρ| + k entries).
                    for u in range(1, nu):
                        kr = urank[u]
                        xa = ua[u]
                        xb = ub[u]
                        v = u - 1
                        while v >= 0 and urank[v] > kr:
                            urank[v + 1] = urank[v]
                            ua[v + 1] = ua[v]
                            ub[v + 1] = ub[v]
                            v -= 1
                        urank[v + 1] = kr
                        ua[v + 1] = xa
                        ub[v + 1] = xb
                    for u in range(nu):
                        va[u] = ua[u]
                        vb[u] = ub[u]
                    dab = 0.0 + _ddot(nu, va.ctypes.data, 1, vb.ctypes.data, 1)
                    daa = 0.0 + _ddot(nu, va.ctypes.data, 1, va.ctypes.data, 1)
                    dbb = 0.0 + _ddot(nu, vb.ctypes.data, 1, vb.ctypes.data, 1)
                    d = 1 - dab / (math.sqrt(daa) * math.sqrt(dbb))
                else:
                    d = 1.0
                it = 1 - d * f / total_f
            gval = 0.0 if frag == -1 else 1 / (frag + 1)
            ev[c] = e
            conf[c] = cf
            snr[c] = sg
            itfdf[c] = it
            pot[c] = (e + cf) * sg + it + gval
            # confluence: (f/TPF)·(1 − 10 ** Σ log10 q(x)) over the flat present, in order.
            lsum = 0.0
            for t in range(lo, hi):
                lsum = lsum + log10q[flat[t]]
            ratio = f / tpf if tpf else 0.0
            confl[c] = ratio * (1 - 10.0 ** lsum)
            # tfidf: mean over distinct present symbols (first appearance) of tf·idf.
            if whole:
                # Finalized: over the whole pattern's distinct symbols, π(σ) live for those
                # outside D (the same value D's π has for those inside).
                for u in range(nd):
                    slot_of[rsym[u]] = -1
                nd = 0
                for t in range(a, a + length):
                    x = flat[t]
                    s = slot_of[x]
                    if s < 0:
                        slot_of[x] = nd
                        rsym[nd] = x
                        rcnt[nd] = 1
                        nd += 1
                    else:
                        rcnt[s] += 1
                if length == 0 or tup == 0:
                    tfidf[c] = 0.0
                else:
                    tsum = 0.0
                    for u in range(nd):
                        x = rsym[u]
                        if in_dom[x]:
                            ix = idf[x]
                        else:
                            v = pmf[x] / tup if has_pmf[x] else 0.0
                            w = np.int64(v * tup)
                            if w == 0:
                                w = 1
                            ix = math.log2(tup / w) + 1
                        tsum = tsum + (rcnt[u] / length) * ix
                    tfidf[c] = tsum / nd
            elif rho == 0 or tup == 0:
                tfidf[c] = 0.0
            else:
                tsum = 0.0
                for u in range(nd):
                    tsum = tsum + (rcnt[u] / rho) * idf[rsym[u]]
                tfidf[c] = tsum / nd
            for u in range(nd):
                slot_of[rsym[u]] = -1
            if total_f:
                prob[c] = f / total_f
                strength[c] = sim[c] * f / total_f
                prior_a[c] = f / total_f
            else:
                prob[c] = 0.0
                strength[c] = 0.0
                prior_a[c] = 0.0
            gi = group_of[c]
            a_phi = agg[gi] if gi >= 0 else 0.0
            info[c] = strength[c] / a_phi if a_phi else 0.0
            post[c] = sim[c] * prior_a[c] / evidence_sum if evidence_sum else 0.0
        return (ev, conf, snr, itfdf, pot, confl, tfidf, prob, strength, info, prior_a, post,
                group_of, gw[:ngroups], gcount[:ngroups], agg, grep[:ngroups], total_f,
                evidence_sum, pi)


# ----------------------------------------------------------------------------------------------


def _nothing(futures_json: bool, predictions_json: bool):
    """The answer with no predictions, in the forms asked for."""
    return (JSONList(b"[]", 0) if predictions_json else []), (b"[]" if futures_json else [])


@contextmanager
def _collector_paused():
    """Pause the cyclic garbage collector while building many acyclic containers.

    A response at θ = 0.1 over 100,000 patterns holds ~200,000 lists and dicts; with the
    collector on, its full collections walk the growing result again and again.
    """
    enabled = gc.isenabled()
    if enabled:
        gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def _grow(array: np.ndarray, need: int) -> np.ndarray:
    """Return ``array`` with room for at least ``need`` entries (capacity doubles)."""
    if need <= array.shape[0]:
        return array
    size = max(need, 2 * array.shape[0], 16)
    grown = np.zeros(size, dtype=array.dtype)
    grown[: array.shape[0]] = array
    return grown


class _PmfView(Mapping):
    """A read-only Mapping symbol → pmf over an index's symbol table."""

    def __init__(self, index: "PatternIndex"):
        self._index = index

    def __getitem__(self, symbol: str) -> int:
        ix = self._index
        i = ix._sym_id.get(symbol)
        if i is None or not ix._has_pmf[i]:
            raise KeyError(symbol)
        return int(ix._pmf[i])

    def __iter__(self) -> Iterator[str]:
        ix = self._index
        has = ix._has_pmf
        return (s for i, s in enumerate(ix._sym_names) if has[i])

    def __len__(self) -> int:
        return int(np.count_nonzero(self._index._has_pmf[: len(self._index._sym_names)]))


class PatternIndex:
    """One node's patterns in learn order, interned to integer arrays, with an inverted index.

    Not thread-safe: callers serialise updates and predictions (the knowledge cache holds a lock).
    """

    # A fresh postings build is due when this many patterns were appended since the last one
    # (and at least 1/16 of the node): the appended tail is scanned directly meanwhile.
    TAIL_REBUILD = 4096

    def __init__(self) -> None:
        self._sym_id: dict[str, int] = {}
        self._sym_names: list[str] = []
        self._names_arr = np.empty(16, dtype=object)  # the same names, for C-speed gathers
        self._srank = np.zeros(16, _I64)  # each symbol's rank in string order (see _string_order)
        self._by_rank = np.empty(0, dtype=object)  # the ranked names, in that order
        # Each symbol's JSON string, concatenated, with offsets (see _symbol_json).
        self._sym_json = np.zeros(64, np.uint8)
        self._sym_joff = np.zeros(17, _I64)
        self._sym_json_n = 0
        self._pmf = np.zeros(16, _I64)
        self._has_pmf = np.zeros(16, np.bool_)
        self._n = 0
        self._flat = np.zeros(64, _I32)
        self._flat_len = 0
        self._pstart = np.zeros(17, _I64)
        self._ebounds = np.zeros(64, _I32)
        self._eb_len = 0
        self._ebstart = np.zeros(17, _I64)
        self._freq = np.zeros(16, _I64)
        self._seq = np.zeros(16, _I64)
        self._distinct = np.zeros(16, _I32)
        self._digest = np.zeros((16, 3), np.uint64)  # big-endian words of the SHA-1 name
        self._emotives: dict[int, list] = {}
        self._max_len = 0
        self._indexed = 0
        self._indptr = np.zeros(1, _I64)
        self._positions = np.zeros(0, _I32)
        self._counts = np.zeros(0, np.int16)
        self._acc = np.zeros(0, np.int32)  # all-zero scratch for the count bound
        # Postings summed beyond this share of the node's symbols: scan every pattern instead.
        self.scan_ratio = 0.5
        self._undo: dict | None = None  # see provisional()
        # Set to a dict to have ``predict`` record where its time goes (bench/predict_bench.py).
        self.phase_times: dict | None = None

    # ------------------------------------------------------------------ building

    def __len__(self) -> int:
        return self._n

    @property
    def n_symbols(self) -> int:
        """Return how many distinct symbols the index has interned."""
        return len(self._sym_names)

    def _intern(self, symbol: str) -> int:
        i = self._sym_id.get(symbol)
        if i is None:
            i = self._sym_id[symbol] = len(self._sym_names)
            self._sym_names.append(symbol)
            if i >= self._pmf.shape[0]:
                self._pmf = _grow(self._pmf, i + 1)
                self._has_pmf = _grow(self._has_pmf, i + 1)
                names = np.empty(self._pmf.shape[0], dtype=object)
                names[: self._names_arr.shape[0]] = self._names_arr
                self._names_arr = names
            self._names_arr[i] = symbol
        return i

    def set_pmf(self, symbol: str, pmf: int) -> None:
        """Set a symbol's pattern-member frequency (engine.md §4.5)."""
        i = self._intern(symbol)
        if self._undo is not None and i not in self._undo["pmf"]:
            self._undo["pmf"][i] = (int(self._pmf[i]), bool(self._has_pmf[i]))
        self._pmf[i] = int(pmf)
        self._has_pmf[i] = True

    def set_pmfs(self, items: Iterable[tuple[str, int]]) -> None:
        """Set many symbols' pmf."""
        for symbol, pmf in items:
            self.set_pmf(symbol, pmf)

    def pmf(self) -> Mapping[str, int]:
        """Return a read-only Mapping symbol → pmf."""
        return _PmfView(self)

    def last_seq(self) -> int:
        """Return the created_seq of the most recently added pattern (-1 when empty)."""
        return int(self._seq[self._n - 1]) if self._n else -1

    def add(self, name: str, events: Sequence[Sequence[str]], frequency: int,
            emotives: Sequence[Mapping[str, float]] = (), created_seq: int | None = None) -> int:
        """Append a pattern learned after every pattern already in the index; return its position.

        ``name`` is the bare 40-hex SHA-1 digest. ``created_seq`` must grow with each add (it is
        how ``position_of_seq`` finds the pattern again); it defaults to the position.
        """
        digest = bytes.fromhex(name)
        if len(digest) != 20:
            raise ValueError(f"pattern name must be a 40-hex digest: {name!r}")
        i = self._n
        seq = i if created_seq is None else int(created_seq)
        if i and seq <= self._seq[i - 1]:
            raise ValueError("patterns must be added in learn order (created_seq ascending)")
        ids = [self._intern(x) for e in events for x in e]
        length = len(ids)
        self._reserve_patterns(i + 1)
        self._flat = _grow(self._flat, self._flat_len + length)
        self._flat[self._flat_len: self._flat_len + length] = ids
        self._flat_len += length
        bounds = [0]
        for e in events:
            bounds.append(bounds[-1] + len(e))
        self._ebounds = _grow(self._ebounds, self._eb_len + len(bounds))
        self._ebounds[self._eb_len: self._eb_len + len(bounds)] = bounds
        self._eb_len += len(bounds)
        self._pstart[i + 1] = self._flat_len
        self._ebstart[i + 1] = self._eb_len
        self._freq[i] = int(frequency)
        self._seq[i] = seq
        self._distinct[i] = len(set(ids))
        self._digest[i, 0] = int.from_bytes(digest[:8], "big")
        self._digest[i, 1] = int.from_bytes(digest[8:16], "big")
        self._digest[i, 2] = int.from_bytes(digest[16:], "big")
        if emotives:
            self._emotives[i] = [dict(x) for x in emotives]
        if length > self._max_len:
            self._max_len = length
        self._n = i + 1
        return i

    def _reserve_patterns(self, need: int) -> None:
        """Make the per-pattern arrays hold more than ``need`` entries (capacity doubles)."""
        if need < self._freq.shape[0]:
            return
        cap = max(16, need, 2 * self._freq.shape[0])
        self._freq = _grow(self._freq, cap)
        self._seq = _grow(self._seq, cap)
        self._distinct = _grow(self._distinct, cap)
        self._pstart = _grow(self._pstart, cap + 1)
        self._ebstart = _grow(self._ebstart, cap + 1)
        digests = np.zeros((cap, 3), np.uint64)
        digests[: self._digest.shape[0]] = self._digest
        self._digest = digests

    def add_many(self, rows: Iterable[tuple[str, Sequence[Sequence[str]], int, Sequence, int]]) -> None:
        """Append many (name, events, frequency, emotives, created_seq) in learn order, at once."""
        rows = list(rows)
        if rows:
            names, events, frequencies, emotives, seqs = zip(*rows)
            self.add_columns(names, events, frequencies, emotives, seqs)

    def add_columns(self, names: Sequence[str], events: Sequence[Sequence[Sequence[str]]],
                    frequencies: Sequence[int], emotives: Sequence[Sequence], seqs: Sequence[int]) -> None:
        """Append many patterns given column by column, in learn order (vectorised)."""
        count = len(names)
        if not count:
            return
        seq_arr = np.asarray(seqs, dtype=_I64)
        if (self._n and seq_arr[0] <= self._seq[self._n - 1]) or np.any(np.diff(seq_arr) <= 0):
            raise ValueError("patterns must be added in learn order (created_seq ascending)")
        joined = "".join(names)
        if len(joined) != 40 * count:
            raise ValueError("pattern names must be 40-hex digests")
        digests = np.frombuffer(bytes.fromhex(joined), dtype=np.uint8).reshape(count, 20)
        symbols = [x for pattern in events for event in pattern for x in event]
        sym_id = self._sym_id
        for x in dict.fromkeys(symbols):  # first appearance: ids as one-by-one adds give them
            if x not in sym_id:
                self._intern(x)
        flat = np.fromiter(map(sym_id.__getitem__, symbols), dtype=_I32, count=len(symbols))
        ev_sizes = np.fromiter((len(e) for pattern in events for e in pattern), dtype=_I64)
        ev_per = np.fromiter(map(len, events), dtype=_I64, count=count)
        # Per pattern: 0 then the running sum of its event sizes (C_0 … C_m).
        ends = np.cumsum(ev_sizes)
        first_event = np.cumsum(ev_per) - ev_per
        starts = np.concatenate(([0], ends))[first_event]
        bounds = np.zeros(ev_sizes.shape[0] + count, dtype=_I32)
        zero_at = first_event + np.arange(count)
        keep = np.ones(bounds.shape[0], dtype=bool)
        keep[zero_at] = False
        bounds[keep] = ends - np.repeat(starts, ev_per)
        lengths = np.concatenate((starts[1:], [ends[-1] if ends.shape[0] else 0])) - starts

        i, j = self._n, self._n + count
        self._reserve_patterns(j + 1)
        flat_len, eb_len = self._flat_len, self._eb_len
        self._flat = _grow(self._flat, flat_len + flat.shape[0])
        self._flat[flat_len: flat_len + flat.shape[0]] = flat
        self._flat_len = flat_len + flat.shape[0]
        self._ebounds = _grow(self._ebounds, eb_len + bounds.shape[0])
        self._ebounds[eb_len: eb_len + bounds.shape[0]] = bounds
        self._eb_len = eb_len + bounds.shape[0]
        self._pstart[i + 1: j + 1] = flat_len + np.cumsum(lengths)
        self._ebstart[i + 1: j + 1] = eb_len + np.cumsum(ev_per + 1)
        self._freq[i:j] = np.asarray(frequencies, dtype=_I64)
        self._seq[i:j] = seq_arr
        if FAST:
            self._distinct[i:j] = _distinct_counts(self._flat, self._pstart, i, j, len(self._sym_names))
        else:  # pragma: no cover
            self._distinct[i:j] = [len(set(self._flat[self._pstart[p]: self._pstart[p + 1]].tolist()))
                                   for p in range(i, j)]
        self._digest[i:j, 0] = digests[:, :8].copy().view(">u8").ravel()
        self._digest[i:j, 1] = digests[:, 8:16].copy().view(">u8").ravel()
        self._digest[i:j, 2] = digests[:, 16:].copy().view(">u4").ravel()
        for k, window in enumerate(emotives):
            if window:
                self._emotives[i + k] = [dict(x) for x in window]
        if lengths.shape[0]:
            self._max_len = max(self._max_len, int(lengths.max()))
        self._n = j

    def add_record(self, record: PatternRecord, created_seq: int | None = None) -> int:
        """Append a PatternRecord (see ``add``)."""
        return self.add(record.name, record.events, record.frequency, record.emotives, created_seq)

    def position_of_seq(self, created_seq: int) -> int | None:
        """Return the position of the pattern created at ``created_seq``, or None."""
        i = int(np.searchsorted(self._seq[: self._n], created_seq))
        if i < self._n and self._seq[i] == created_seq:
            return i
        return None

    def update(self, position: int, frequency: int, emotives: Sequence[Mapping[str, float]] = ()) -> None:
        """Set the frequency and emotive window of an existing pattern (a re-learn)."""
        if self._undo is not None and position < self._undo["n"] and position not in self._undo["freq"]:
            self._undo["freq"][position] = (int(self._freq[position]), self._emotives.get(position))
        self._freq[position] = int(frequency)
        if emotives:
            self._emotives[position] = [dict(x) for x in emotives]
        else:
            self._emotives.pop(position, None)

    def name(self, position: int) -> str:
        """Return the bare SHA-1 name of the pattern at ``position``."""
        hi, mid, lo = (int(v) for v in self._digest[position])
        return (hi.to_bytes(8, "big") + mid.to_bytes(8, "big") + lo.to_bytes(4, "big")).hex()

    def _names(self, positions: np.ndarray) -> list[str]:
        """Return the bare SHA-1 names of many patterns, with one hex conversion for all."""
        digest = self._digest[positions]
        raw = np.empty((digest.shape[0], 20), np.uint8)
        raw[:, :16] = digest[:, :2].astype(">u8").view(np.uint8)
        raw[:, 16:] = digest[:, 2:].astype(">u4").view(np.uint8)
        text = raw.tobytes().hex()
        return [text[i: i + 40] for i in range(0, len(text), 40)]

    def _string_order(self) -> tuple[np.ndarray, np.ndarray]:
        """Return (each symbol's rank in string order, the names in that order), kept current.

        The itfdf vectors run over sorted names (engine.md §9). The vocabulary is ranked once,
        then the symbols interned since are merged in (O(V) array work, only when it grew), so a
        prediction orders its symbol domain by integer ranks instead of sorting strings.
        """
        n, done = len(self._sym_names), self._by_rank.shape[0]
        if done < n:
            fresh = self._sym_names[done:]
            order = sorted(range(n - done), key=fresh.__getitem__)
            at = np.searchsorted(self._by_rank, self._names_arr[done:n][order])
            self._srank = _grow(self._srank, n)
            old = self._srank[:done]
            old += np.searchsorted(at, old, side="right")  # old names after each insertion
            self._srank[done + np.array(order, _I64)] = at + np.arange(n - done, dtype=_I64)
            by_rank = np.empty(n, dtype=object)
            by_rank[self._srank[:n]] = self._names_arr[:n]
            self._by_rank = by_rank
        return self._srank, self._by_rank

    def _symbol_json(self) -> tuple[np.ndarray, np.ndarray]:
        """Return (every symbol's ``orjson.dumps`` text concatenated, offsets by id), kept current.

        Futures written as JSON copy these bytes instead of encoding each symbol again; symbols
        interned since the last call are encoded and appended (only when the vocabulary grew).
        """
        n, done = len(self._sym_names), self._sym_json_n
        if done < n:
            texts = [orjson.dumps(x) for x in self._sym_names[done:n]]
            joined = b"".join(texts)
            used = int(self._sym_joff[done])
            self._sym_json = _grow(self._sym_json, used + len(joined))
            self._sym_json[used: used + len(joined)] = np.frombuffer(joined, np.uint8)
            self._sym_joff = _grow(self._sym_joff, n + 1)
            self._sym_joff[done + 1: n + 1] = used + np.cumsum(
                np.fromiter(map(len, texts), _I64, count=n - done))
            self._sym_json_n = n
        return self._sym_json, self._sym_joff

    def events(self, position: int, start: int = 0) -> list[list[str]]:
        """Return the pattern's events[start:] as fresh lists of str."""
        names = self._sym_names
        a = int(self._pstart[position])
        b0, b1 = int(self._ebstart[position]), int(self._ebstart[position + 1])
        bounds = self._ebounds[b0:b1].tolist()
        ids = self._flat[a + bounds[start]: a + bounds[-1]].tolist()
        base = bounds[start]
        return [[names[x] for x in ids[lo - base: hi - base]]
                for lo, hi in zip(bounds[start:-1], bounds[start + 1:])]

    def events_many(self, positions, starts) -> list[list[list[str]]]:
        """Return events[start:] of many patterns at once, as fresh lists of str."""
        events, bounds = self._event_lists(positions, starts)
        return [events[a:b] for a, b in zip(bounds, bounds[1:])]

    def _event_lists(self, positions, starts) -> tuple[list[list[str]], list[int]]:
        """Return (every event of events[start:] of each pattern, pattern bounds in that list).

        The events of pattern u are ``events[bounds[u]:bounds[u + 1]]``; callers slice them where
        they build their own containers, sparing a pass of Python over the patterns.
        """
        ids, ebnd, pbnd = _gather_events(np.asarray(positions, _I64), np.asarray(starts, _I64),
                                         self._flat, self._pstart, self._ebstart, self._ebounds)
        symbols = self._names_arr[ids].tolist()
        ebnd = ebnd.tolist()
        return [symbols[a:b] for a, b in zip(ebnd, ebnd[1:])], pbnd.tolist()

    def record(self, position: int) -> PatternRecord:
        """Return the pattern at ``position`` as a PatternRecord."""
        return PatternRecord(self.name(position), self.events(position), int(self._freq[position]),
                             self._emotives.get(position, []))

    def records(self) -> Iterator[PatternRecord]:
        """Yield every pattern as a PatternRecord, in learn order."""
        for i in range(self._n):
            yield self.record(i)

    def values(self) -> Iterator[PatternRecord]:
        """Yield every pattern as a PatternRecord (so an index can stand where a dict was)."""
        return self.records()

    def copy(self) -> "PatternIndex":
        """Return an independent copy (updates to either never show in the other)."""
        other = PatternIndex.__new__(PatternIndex)
        for key, value in self.__dict__.items():
            if isinstance(value, np.ndarray):
                value = value.copy()
            elif isinstance(value, (dict, list)):
                value = value.copy()  # emotive windows are replaced on update, never mutated
            setattr(other, key, value)
        return other

    def nbytes(self) -> int:
        """Return the bytes held by the numpy arrays (capacity included)."""
        arrays = (self._pmf, self._has_pmf, self._flat, self._pstart, self._ebounds, self._ebstart,
                  self._freq, self._seq, self._distinct, self._digest, self._indptr,
                  self._positions, self._counts, self._srank, self._sym_json, self._sym_joff)
        return int(sum(a.nbytes for a in arrays))

    def build_postings(self) -> None:
        """(Re)build the inverted index over every pattern."""
        if not FAST:
            return
        self._indptr, self._positions, self._counts = _build_postings(
            self._flat, self._pstart, self._n, max(1, len(self._sym_names)))
        self._indexed = self._n

    @contextmanager
    def provisional(self):
        """Apply changes inside the block for a moment: everything is undone when it exits.

        For predictions that must see a transaction's own uncommitted learns without copying a
        large index: append and update as usual inside the block, predict, and on exit the
        index is exactly as before (appended patterns, frequencies, emotives and pmf restored;
        no postings are rebuilt meanwhile). The caller holds the index's lock throughout.
        """
        if self._undo is not None:
            raise RuntimeError("provisional blocks do not nest")
        self._undo = {"n": self._n, "flat_len": self._flat_len, "eb_len": self._eb_len,
                      "max_len": self._max_len, "freq": {}, "pmf": {}}
        try:
            yield self
        finally:
            undo, self._undo = self._undo, None
            for position, (frequency, window) in undo["freq"].items():
                self._freq[position] = frequency
                if window is None:
                    self._emotives.pop(position, None)
                else:
                    self._emotives[position] = window
            for i, (pmf, has) in undo["pmf"].items():
                self._pmf[i] = pmf
                self._has_pmf[i] = has
            for position in range(undo["n"], self._n):
                self._emotives.pop(position, None)
            self._n, self._flat_len, self._eb_len = undo["n"], undo["flat_len"], undo["eb_len"]
            self._max_len = undo["max_len"]

    def _maybe_build_postings(self) -> None:
        if self._undo is not None:
            return  # provisional patterns stay in the scanned tail
        tail = self._n - self._indexed
        if tail and (self._indexed == 0 or tail >= max(self.TAIL_REBUILD, self._n // 16)):
            self.build_postings()

    # ------------------------------------------------------------------ prediction

    def predict(self, stm: Sequence[Sequence[str]], stats: SymbolStats, cfg: PredictConfig,
                futures_json: bool = False, predictions_json: bool = False
                ) -> tuple[list[dict] | JSONList, list[dict] | bytes]:
        """Return (predictions, future_potentials), identical to ``predictor.predict``.

        The counters N_sym, TUP and TPF come from ``stats``; pmf comes from the index. With
        ``futures_json``, future_potentials are ``orjson.dumps`` of that list, byte for byte,
        written by a compiled kernel: at a low θ the list holds thousands of entries whose
        Python objects cost more to build, serialise and free than the prediction itself. With
        ``predictions_json``, the predictions come as a ``JSONList``: ``orjson.dumps`` of the
        list of objects, byte for byte, and their number.
        """
        from .predictor import predict as direct

        if cfg.rank_sort_algo not in RANK_KEYS:
            raise ValueError(f"unknown rank_sort_algo: {cfg.rank_sort_algo!r}")
        if not FAST or not cfg.use_token_matching:
            # Character similarity has no compiled path: score every pattern directly.
            return direct(stm, list(self.records()), dataclasses.replace(stats, pmf=self.pmf()),
                          cfg, futures_json=futures_json, predictions_json=predictions_json)
        stm = [list(e) for e in stm]
        s = [x for e in stm for x in e]
        n = len(s)
        if n < 1 or self._n == 0:  # one symbol predicts (kato-3.10.md decision 14)
            return _nothing(futures_json, predictions_json)
        if cfg.fuzzy_token_threshold > 0 or cfg.affinity_emotive is not None:
            return self._predict_direct(stm, s, stats, cfg, futures_json, predictions_json)
        return self._predict(stm, s, stats, cfg, futures_json, predictions_json)

    def _predict_direct(self, stm, s, stats: SymbolStats, cfg: PredictConfig, futures_json: bool,
                        predictions_json: bool):
        """Predict with fuzzy tokens or affinity weights (kato-3.10.md §1.4b, §1.4d).

        Both change every candidate's metrics in ways the compiled ensemble does not model, so
        the compiled index only finds the candidates (lossless, learn order) and the direct
        engine scores and ranks exactly those: the same code as ``predictor.predict``, so the
        same bits, at the direct engine's cost per candidate (not per pattern of the node).
        """
        from .predictor import State, rank_ensemble, score_candidate

        matched = self._matches(s, cfg)[-1]
        state = State(stm)
        theta, token, tau = cfg.recall_threshold, cfg.use_token_matching, cfg.fuzzy_token_threshold
        candidates = []
        for p in matched[0].tolist():
            cand = score_candidate(self.record(p), state, theta, token, tau)
            if cand is not None:  # always: the compiled test is the same
                candidates.append(cand)
        with _collector_paused():
            predictions, future_potentials = rank_ensemble(
                candidates, state, dataclasses.replace(stats, pmf=self.pmf()), cfg)
        if predictions_json:
            predictions = JSONList(orjson.dumps(predictions), len(predictions))
        return predictions, orjson.dumps(future_potentials) if futures_json else future_potentials

    def _state(self, s: list[str]):
        """Encode the state: local ids, masks, positions, and the node ids of its symbols."""
        local: dict[str, int] = {}
        s_loc = np.array([local.setdefault(x, len(local)) for x in s], _I64)
        k = len(local)
        n = len(s)
        words = (n + 63) // 64
        pm = np.zeros((k, words), np.uint64)
        counts = np.zeros(k, _I64)
        pos_lists: list[list[int]] = [[] for _ in range(k)]
        for j, l in enumerate(s_loc.tolist()):
            pm[l, j // 64] |= np.uint64(1) << np.uint64(j % 64)
            counts[l] += 1
            pos_lists[l].append(j)
        pos_ptr = np.zeros(k + 1, _I64)
        pos_ptr[1:] = np.cumsum([len(x) for x in pos_lists])
        pos = np.array([j for lst in pos_lists for j in lst], _I64)
        local_node = np.array([self._sym_id.get(x, -1) for x in local], _I64)
        local_of = np.full(max(1, len(self._sym_names)), -1, _I64)
        known = local_node >= 0
        local_of[local_node[known]] = np.nonzero(known)[0]
        return local, s_loc, k, words, pm, counts, pos_ptr, pos, local_node, local_of

    def _candidates(self, theta: float, n: int, local_node, counts, len_lo: int, len_hi: int):
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
            return np.arange(self._n, dtype=_I64)

        if theta <= 0:
            return everything()
        self._maybe_build_postings()
        known = local_node >= 0
        q_syms = local_node[known]
        q_counts = counts[known].astype(_I64)
        if q_syms.size == 0:
            return np.zeros(0, _I64)  # no state symbol occurs in any pattern: nothing can pass
        if n > 32767 or self._indexed == 0:
            return everything()  # (postings count at most 32767 occurrences per pattern)
        inside = q_syms < self._indptr.shape[0] - 1  # symbols new since the build: tail only
        q_syms, q_counts = q_syms[inside], q_counts[inside]
        sizes = self._indptr[q_syms + 1] - self._indptr[q_syms]
        least = 1
        while not (2 * least) / (least + n) >= theta:
            least += 1
            if least > n:
                return np.zeros(0, _I64) if self._indexed == self._n else np.arange(
                    self._indexed, self._n, dtype=_I64)
        # Leave out the most common symbols while they hold at most least - 1 state symbols.
        order = np.argsort(-sizes, kind="stable")
        held = np.cumsum(q_counts[order])
        dropped = int(np.searchsorted(held, least - 1, side="right"))
        rare = order[dropped:]
        if float(sizes[rare].sum()) > self.scan_ratio * float(self._pstart[self._indexed]):
            return everything()
        # The left-out symbols add at most their state counts to a pattern's bound.
        extra = int(held[dropped - 1]) if dropped else 0
        if self._acc.shape[0] < self._indexed:
            self._acc = np.zeros(self._indexed, np.int32)
        return _count_bound(self._indptr, self._positions, self._counts, q_syms[rare],
                            q_counts[rare], self._indexed, self._n, self._pstart, n, float(theta),
                            len_lo, len_hi, extra, self._acc)

    def _phase(self, name: str, started: float, **counts) -> float:
        now = perf_counter()
        if self.phase_times is not None:
            self.phase_times[name] = self.phase_times.get(name, 0.0) + now - started
            for key, value in counts.items():
                self.phase_times[key] = value
        return now

    def _universe_ranks(self, dom, state_names, local_node, in_dom):
        """Return the ranks in string order among D ∪ s of D's symbols and of the state's.

        The universe is D (node ids) then the state symbols outside D, in state order; the ranks
        are 0 … |D ∪ s| − 1 for the itfdf vectors (engine.md §9: sorted symbol list). A node
        symbol keys as 2·rank + 1 in the vocabulary's string order; a symbol the node never saw
        keys as 2·(how many node symbols sort before it), ties among those broken by string.
        """
        srank, by_rank = self._string_order()
        nd = dom.shape[0]
        outside = np.flatnonzero(~in_dom)
        node_out = local_node[outside]
        key = np.empty(nd + outside.shape[0], _I64)
        tie = np.zeros(key.shape[0], _I64)
        key[:nd] = 2 * srank[dom] + 1
        key[nd:] = 2 * srank[node_out] + 1
        unseen = np.flatnonzero(node_out < 0)
        if unseen.shape[0]:
            names = [state_names[u] for u in outside[unseen].tolist()]
            key[nd + unseen] = 2 * np.searchsorted(by_rank, np.array(names, dtype=object))
            tie[nd + unseen[sorted(range(len(names)), key=names.__getitem__)]] = np.arange(
                len(names), dtype=_I64)
        order = np.lexsort((tie, key))
        ranks = np.empty(key.shape[0], _I64)
        ranks[order] = np.arange(key.shape[0], dtype=_I64)
        local_rank = np.empty(local_node.shape[0], _I64)
        local_rank[outside] = ranks[nd:]
        inside = np.flatnonzero(in_dom)  # node symbols: their key is unique among the universe
        local_rank[inside] = np.searchsorted(key[order], 2 * srank[local_node[inside]] + 1)
        return ranks[:nd], local_rank

    def _entropies(self, cp, e1, e2, stats: SymbolStats, whole: bool):
        """Return (entropy, normalized, global normalized) arrays of the candidates cp."""
        return _entropies(cp, e1, e2, self._flat, self._pstart, self._ebstart, self._ebounds,
                          self._pmf, self._has_pmf, int(stats.total_unique_patterns),
                          int(stats.n_symbols), whole, max(1, len(self._sym_names)), self._max_len)

    def count_matches(self, stm: Sequence[Sequence[str]], stats: SymbolStats, cfg: PredictConfig) -> int:
        """Return how many patterns ``predict`` would score (those passing θ and the filters),
        without building any answer: the admin threshold preview asks this at every θ."""
        s = [x for e in stm for x in e]
        if len(s) < 1 or self._n == 0:
            return 0
        if not FAST or not cfg.use_token_matching:
            uncapped = dataclasses.replace(cfg, max_predictions=self._n)
            return len(self.predict(stm, stats, uncapped)[0])
        return int(self._matches(s, cfg)[-1][0].shape[0])

    def _matches(self, s, cfg: PredictConfig):
        """Encode the state and find the patterns passing θ and the filters, with their scores."""
        started = perf_counter()
        n = len(s)
        theta = float(cfg.recall_threshold)
        state = self._state(s)
        local, s_loc, k, words, pm, counts, pos_ptr, pos, local_node, local_of = state
        len_lo, len_hi = 0, np.iinfo(_I64).max
        jac_on, jac_min, jac_thr = False, 0, 0.0
        for stage in cfg.filter_pipeline:
            if stage == "length":
                # A ratio of 0 falls back to the default through ``or``, as in KATO (§8.2).
                len_lo = max(len_lo, max(1, int(n * (cfg.length_min_ratio or 0.5))))
                len_hi = min(len_hi, int(n * (cfg.length_max_ratio or 2.0)))
            elif stage == "jaccard":
                jac_on, jac_min, jac_thr = True, int(cfg.jaccard_min_overlap), float(cfg.jaccard_threshold)
        cand = self._candidates(theta, n, local_node, counts, len_lo, len_hi)
        started = self._phase("candidates", started, scored=cand.shape[0])
        matched = _match(
            cand, self._flat, self._pstart, self._ebstart, self._ebounds, self._distinct, local_of,
            s_loc, n, k, pm, words, pos_ptr, pos, theta, len_lo, len_hi, jac_on, jac_min, jac_thr,
            self._max_len)
        started = self._phase("matching", started, passed=matched[0].shape[0])
        return started, state, matched

    def _predict(self, stm, s, stats: SymbolStats, cfg: PredictConfig, futures_json: bool,
                 predictions_json: bool):
        n = len(s)
        started, state, matched = self._matches(s, cfg)
        local, s_loc, k, words, pm, counts, pos_ptr, pos, local_node, local_of = state
        cp, sim, m_arr, r_arr, e1, e2 = matched
        if cp.shape[0] == 0:
            return _nothing(futures_json, predictions_json)
        n_symbols = max(1, len(self._sym_names))
        whole = bool(stats.finalized)  # kato-3.10.md §1.4e: whole-pattern values
        dom = _domain(cp, e1, e2, self._flat, self._pstart, self._ebstart, self._ebounds, n_symbols)
        state_names = list(local)
        in_dom = np.isin(local_node, dom)
        dom_rank, local_rank = self._universe_ranks(dom, state_names, local_node, in_dom)
        (ev, conf, snr, itfdf, pot, confl, tfidf, prob, strength, info, prior, post, group_of, gw,
         gcount, agg, grep, total_f, evidence_sum, pi) = _ensemble(
            cp, sim, m_arr, r_arr, e1, e2, self._flat, self._pstart, self._ebstart, self._ebounds,
            self._freq, self._pmf, self._has_pmf, int(stats.total_unique_patterns),
            int(stats.total_pattern_frequencies), n, local_of, local_node, counts, local_rank, dom,
            dom_rank, n_symbols, self._max_len, whole)

        started = self._phase("ensemble", started)
        freq = self._freq[cp]
        key = cfg.rank_sort_algo
        values = {
            "potential": pot, "similarity": sim, "bayesian_likelihood": sim, "evidence": ev,
            "confidence": conf, "snr": snr, "fragmentation": (r_arr - 1).astype(np.float64),
            "frequency": freq.astype(np.float64), "itfdf_similarity": itfdf,
            "confluence": confl, "tfidf_score": tfidf, "predictive_information": info,
            "bayesian_posterior": post, "bayesian_prior": prior,
        }.get(key)
        if key in ("normalized_entropy", "global_normalized_entropy"):  # per candidate (§1.4e)
            values = self._entropies(cp, e1, e2, stats, whole)[
                1 if key == "normalized_entropy" else 2]
        elif values is None:  # a weighted_* key with affinity off: every value null, name order
            values = np.zeros(cp.shape[0])
        # Descending by value, ties by name ascending (decision 5): name = digest byte order.
        # lexsort's result in two sorts rather than four: the digests' first words alone order
        # the names unless two of them are equal.
        digest = self._digest[cp]
        by_name = np.argsort(digest[:, 0])
        head = digest[by_name, 0]
        if np.any(head[1:] == head[:-1]):
            by_name = np.lexsort((digest[:, 2], digest[:, 1], digest[:, 0]))
        ranked = by_name[np.argsort(-values[by_name], kind="stable")]

        with _collector_paused():
            return self._build(stm, s, n, cfg, started, ranked, cp, sim, m_arr, r_arr, e1, e2, ev,
                               conf, snr, itfdf, pot, confl, tfidf, prob, strength, info, prior,
                               post, group_of, gw, gcount, agg, freq, local_of, pos_ptr, pos,
                               (stats, whole), futures_json,
                               (state_names, s_loc) if predictions_json else None)

    def _build(self, stm, s, n, cfg, started, ranked, cp, sim, m_arr, r_arr, e1, e2, ev, conf, snr,
               itfdf, pot, confl, tfidf, prob, strength, info, prior, post, group_of, gw, gcount,
               agg, freq, local_of, pos_ptr, pos, scope, futures_json, as_json):
        """Build the top predictions' 29-key objects (or, given ``as_json`` = (the state's
        distinct symbols, their local ids in the state), their JSON) and the future_potentials
        list (or its JSON bytes)."""
        top = ranked[: max(0, int(cfg.max_predictions))]
        predictions = []
        # The top's entropies (per present, or whole pattern on a finalized node).
        entropies = self._entropies(cp[top], e1[top], e2[top], *scope)
        if as_json is not None:
            predictions = self._predictions_json(
                stm, as_json, top, cp, e1, e2, sim, r_arr, ev, conf, snr, itfdf, pot, confl, tfidf,
                prob, strength, info, prior, post, freq, local_of, n, pos_ptr, pos, entropies)
        elif top.shape[0]:
            tp = cp[top]
            per, jk, _ = _top_blocks(tp, e1[top], e2[top], self._flat, self._pstart,
                                     self._ebstart, self._ebounds, local_of, n, pos_ptr,
                                     pos, self._max_len)
            all_events = self.events_many(tp, np.zeros(tp.shape[0], _I64))
            jk = jk.tolist()
            block = 0
            copy = list.copy
            emotives = self._emotives
            rows = zip(self._names(tp), tp.tolist(), per.tolist(), all_events, e1[top].tolist(),
                       e2[top].tolist(), pot[top].tolist(), ev[top].tolist(), sim[top].tolist(),
                       (r_arr[top] - 1).astype(np.float64).tolist(), snr[top].tolist(),
                       confl[top].tolist(), info[top].tolist(), conf[top].tolist(),
                       itfdf[top].tolist(), tfidf[top].tolist(), prob[top].tolist(),
                       strength[top].tolist(), post[top].tolist(), prior[top].tolist(),
                       freq[top].tolist(), *(column.tolist() for column in entropies))
            for (name, p, r, events, a, b, v_pot, v_ev, v_sim, v_frag, v_snr, v_confl, v_info,
                 v_conf, v_itfdf, v_tfidf, v_prob, v_strength, v_post, v_prior, v_freq,
                 v_entropy, v_normalized, v_global) in rows:
                matches = []
                for j, k in jk[block: block + r]:
                    matches.extend(s[j: j + k])
                block += r
                present = events[a:b]
                matched = set(matches)
                in_present = {x for e in present for x in e}
                predictions.append({
                    "type": "prototypical",
                    "name": name,
                    "frequency": v_freq,
                    "emotives": mx.average_emotives(emotives[p]) if p in emotives else {},
                    "matches": matches,
                    "past": list(map(copy, events[:a])),
                    "present": list(map(copy, present)),
                    "missing": [[x for x in e if x not in matched] for e in present],
                    "extras": [[x for x in e if x not in in_present] for e in stm],
                    "potential": v_pot,
                    "evidence": v_ev,
                    "similarity": v_sim,
                    "fragmentation": v_frag,
                    "snr": v_snr,
                    "confluence": v_confl,
                    "predictive_information": v_info,
                    "sequence": events,
                    "future": list(map(copy, events[b:])),
                    "confidence": v_conf,
                    "entropy": v_entropy,
                    "normalized_entropy": v_normalized,
                    "global_normalized_entropy": v_global,
                    "itfdf_similarity": v_itfdf,
                    "tfidf_score": v_tfidf,
                    "pattern_probability": v_prob,
                    "weighted_strength": v_strength,
                    "bayesian_posterior": v_post,
                    "bayesian_prior": v_prior,
                    "bayesian_likelihood": v_sim,
                    "anomalies": [],
                    "weighted_similarity": None,
                    "weighted_evidence": None,
                    "weighted_confidence": None,
                    "weighted_snr": None,
                })

        started = self._phase("ranking_and_top", started)
        # One entry per distinct future; a group's future and its place among equal aggregate
        # potentials come from its first member in the full ranked list: groups in order of first
        # appearance there, then stably by descending aggregate potential.
        ngroups = gw.shape[0]
        if ngroups == 0:
            return predictions, (b"[]" if futures_json else [])
        groups, members = _first_members(ranked, group_of, ngroups)
        by_agg = np.argsort(-agg[groups], kind="stable")
        group_order, reps = groups[by_agg], members[by_agg]
        if futures_json:
            sym_json, sym_off = self._symbol_json()
            numbers = orjson.OPT_SERIALIZE_NUMPY  # float64s in the very text of Python floats
            future_potentials = _futures_json(
                cp[reps], e2[reps], self._flat, self._pstart, self._ebstart, self._ebounds,
                sym_json, sym_off, gcount[group_order],
                np.frombuffer(orjson.dumps(agg[group_order], option=numbers), np.uint8),
                np.frombuffer(orjson.dumps(gw[group_order], option=numbers), np.uint8)).tobytes()
            self._phase("future_potentials", started, groups=ngroups)
            return predictions, future_potentials
        events, bounds = self._event_lists(cp[reps], e2[reps])
        future_potentials = [
            {"future": events[lo:hi], "aggregate_potential": a, "supporting_patterns": k,
             "total_weighted_frequency": w}
            for lo, hi, a, k, w in zip(bounds, bounds[1:], agg[group_order].tolist(),
                                       gcount[group_order].tolist(), gw[group_order].tolist())
        ]
        self._phase("future_potentials", started, groups=ngroups)
        return predictions, future_potentials

    _HEAD = b'{"type":"prototypical","name":'

    def _predictions_json(self, stm, state, top, cp, e1, e2, sim, r_arr, ev, conf, snr, itfdf,
                          pot, confl, tfidf, prob, strength, info, prior, post, freq, local_of, n,
                          pos_ptr, pos, entropies) -> JSONList:
        """Write the top predictions' objects as ``orjson.dumps`` of their list (a compiled
        kernel, the same bytes as building and serialising them)."""
        nt = top.shape[0]
        if nt == 0:
            return JSONList(b"[]", 0)
        tp, t1, t2 = cp[top], e1[top], e2[top]
        per, jk, _ = _top_blocks(tp, t1, t2, self._flat, self._pstart, self._ebstart,
                                 self._ebounds, local_of, n, pos_ptr, pos, self._max_len)
        # Each object's head, through its emotives (the few nonempty ones averaged in Python).
        emotives, dumps, head = self._emotives, orjson.dumps, self._HEAD
        heads = [b"%s%s,\"frequency\":%d,\"emotives\":%s" % (
                     head, dumps(name), f,
                     dumps(mx.average_emotives(emotives[p])) if p in emotives else b"{}")
                 for name, p, f in zip(self._names(tp), tp.tolist(), freq[top].tolist())]
        head_off = np.zeros(nt + 1, _I64)
        np.cumsum(np.fromiter(map(len, heads), _I64, count=nt), out=head_off[1:])
        columns = (pot, ev, sim, (r_arr - 1).astype(np.float64), snr, confl, info, conf, None,
                   None, None, itfdf, tfidf, prob, strength, post, prior, sim)
        numbers = np.empty((nt, len(columns)), np.float64)
        for j, column in enumerate(columns):
            if column is not None:
                numbers[:, j] = column[top]
        numbers[:, 8], numbers[:, 9], numbers[:, 10] = entropies
        names, s_loc = state
        local_texts = [dumps(x) for x in names]
        loc_off = np.zeros(len(names) + 1, _I64)
        np.cumsum(np.fromiter(map(len, local_texts), _I64, count=len(names)), out=loc_off[1:])
        stm_eb = np.zeros(len(stm) + 1, _I64)
        np.cumsum(np.fromiter(map(len, stm), _I64, count=len(stm)), out=stm_eb[1:])
        sym_json, sym_off = self._symbol_json()
        text = _predictions_json(
            tp, t1, t2, self._flat, self._pstart, self._ebstart, self._ebounds, sym_json, sym_off,
            local_of, s_loc, stm_eb, np.frombuffer(b"".join(local_texts), np.uint8), loc_off, per,
            jk, np.frombuffer(b"".join(heads), np.uint8), head_off,
            np.frombuffer(dumps(numbers, option=orjson.OPT_SERIALIZE_NUMPY), np.uint8))
        return JSONList(text.tobytes(), nt)

    @classmethod
    def from_records(cls, records: Iterable[PatternRecord], stats: SymbolStats | None = None) -> "PatternIndex":
        """Build an index from records in learn order (and the pmf of ``stats``)."""
        index = cls()
        for record in records:
            index.add_record(record)
        if stats is not None:
            index.set_pmfs(stats.pmf.items())
        index.build_postings()
        return index


def warm_up() -> bool:
    """Load (or compile, the first time) every kernel, off the request path; return FAST."""
    if not FAST:
        return False
    index = PatternIndex()
    index.add_many([("0" * 40, [["a", "b"], ["c"], ["d"]], 1, (), 1),
                    ("1" * 40, [["b"], ["x"]], 2, (), 2)])
    index.add("2" * 40, [["c"], ["x"]], 1, created_seq=3)
    index.set_pmfs([("a", 1), ("b", 2), ("c", 2), ("d", 1), ("x", 2)])
    stats = SymbolStats(index.pmf(), 5, 3, 3)
    index.predict([["a"], ["c"], ["b"]], stats, PredictConfig(recall_threshold=0.5))  # builds postings
    for ratio in (0.0, float("inf")):  # the direct scan, then the inverted index
        index.scan_ratio = ratio
        for theta in (0.0, 0.1, 0.5, 0.9):
            index.predict([["a"], ["c"], ["b"]], stats, PredictConfig(recall_threshold=theta))
    index.predict([["a"], ["c"]], stats, PredictConfig(recall_threshold=0.1,
                                                         filter_pipeline=("length", "jaccard")))
    index.predict([["a"], ["c"], ["b"]], stats, PredictConfig(recall_threshold=0.0),
                  futures_json=True, predictions_json=True)
    index.predict([["a"]], stats, PredictConfig(recall_threshold=0.1))  # one symbol (decision 14)
    finalized = dataclasses.replace(stats, finalized=True)
    index.predict([["a"], ["c"]], finalized, PredictConfig(recall_threshold=0.1))
    index.predict([["a"], ["c"]], finalized, PredictConfig(recall_threshold=0.1),
                  futures_json=True, predictions_json=True)
    long_state = [[f"s{i}"] for i in range(70)] + [["a"]]
    index.predict(long_state, stats, PredictConfig(recall_threshold=0.0))
    one = np.ones(1, _I64)
    _count_bound(index._indptr, index._positions, index._counts, one * 0, one, index._indexed,
                 index._n, index._pstart, 3, 0.5, 0, 10, 0, np.zeros(index._indexed, np.int32))
    return True
