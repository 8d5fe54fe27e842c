"""Exact matching, compiled: the LCS, difflib's matching blocks and the event span (engine.md §5).

Owns the kernels that decide, for each candidate, whether it reaches θ and how it aligns with
the state: the LCS by Hyyrö's bit-parallel algorithm (exact, one machine word per 64 state
symbols), ``sim = 2·LCS/(L + n) >= θ``, then difflib's matching blocks (``autojunk=False``, the
same recursion as ``engine.matching.BlockMatcher``) and the event span with the tail-event
correction, only for the patterns that pass; the length and jaccard filters on the way; and, for
the top predictions only, their blocks in the state and their present's entropy. Also how the
state is encoded for these kernels (``encode_state``).
"""

from __future__ import annotations

import math

import numpy as np

from .compiled import jit as _jit

__all__ = ["encode_state"]

_I64 = np.int64
_U0 = np.uint64(0)
_U1 = np.uint64(1)
_UALL = np.uint64(0xFFFFFFFFFFFFFFFF)
_M1 = np.uint64(0x5555555555555555)
_M2 = np.uint64(0x3333333333333333)
_M4 = np.uint64(0x0F0F0F0F0F0F0F0F)
_H01 = np.uint64(0x0101010101010101)


@_jit
def _popcount(x):
    x = x - ((x >> _U1) & _M1)
    x = (x & _M2) + ((x >> np.uint64(2)) & _M2)
    x = (x + (x >> np.uint64(4))) & _M4
    return np.int64((x * _H01) >> np.uint64(56))


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
def _blocks(loc, hit, nh, n, pos_ptr, pos, runs, found, queue):
    """Fill ``found`` with difflib's merged matching blocks (autojunk off); return their count.

    ``hit[:nh]``: the pattern positions holding a state symbol (``loc[i] >= 0``), ascending;
    the other positions match nothing and only end the runs, so only these are walked.
    ``runs`` is a zeroed (2 × (n + 2)) int array (left zeroed on return): row ``prv`` holds the
    runs ending at the previous pattern position, row ``1 - prv`` the current one's (two rows
    of one array rather than two arrays swapped: swapping arrays costs reference counting).
    """
    nfound = 0
    queue[0, 0] = 0
    queue[0, 1] = hit[nh - 1] + 1 if nh > 0 else 0
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
        last = -1  # the local symbol whose positions are set in prv (the runs ending at row i - 1)
        last_i = -2
        prv = 0
        for h in range(nh):
            i = hit[h]
            if i < alo:
                continue
            if i >= ahi:
                break
            x = loc[i]
            if last >= 0 and last_i != i - 1:  # a row without a match ended those runs
                for t in range(pos_ptr[last], pos_ptr[last + 1]):
                    runs[prv, pos[t] + 1] = 0
                last = -1
            for t in range(pos_ptr[x], pos_ptr[x + 1]):
                j = pos[t]
                if j < blo:
                    continue
                if j >= bhi:
                    break
                k = runs[prv, j] + 1  # the run ending at b[j - 1]
                runs[1 - prv, j + 1] = k
                if k > bestsize:
                    besti = i - k + 1
                    bestj = j - k + 1
                    bestsize = k
            if last >= 0:
                for t in range(pos_ptr[last], pos_ptr[last + 1]):
                    runs[prv, pos[t] + 1] = 0
            prv = 1 - prv
            last = x
            last_i = i
        if last >= 0:
            for t in range(pos_ptr[last], pos_ptr[last + 1]):
                runs[prv, pos[t] + 1] = 0
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
    hit = np.empty(max_len + 1, _I64)
    vbuf = np.empty(words, np.uint64)
    runs = np.zeros((2, n + 2), _I64)
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
                hit[hits] = t
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
            r = _blocks(loc, hit, hits, n, pos_ptr, pos, runs, found, queue)
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
def _top_blocks(cp, e1, e2, flat, pstart, ebstart, ebounds, local_of, n, pos_ptr, pos,
                max_len):
    """Return (blocks per candidate, their (j, k) in the state, present entropies).

    For the few candidates whose full objects are built.
    """
    nc = cp.shape[0]
    loc = np.empty(max_len + 1, _I64)
    hit = np.empty(max_len + 1, _I64)
    runs = np.zeros((2, n + 2), _I64)
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
                hit[hits] = t
                hits += 1
        if hits == 0:
            continue
        r = _blocks(loc, hit, hits, n, pos_ptr, pos, runs, found, queue)
        per[c] = r
        for u in range(r):
            out[k, 0] = found[u, 1]
            out[k, 1] = found[u, 2]
            k += 1
    return per, out[:k], ent


def encode_state(ix, s: list[str]):
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
    local_node = np.array([ix._sym_id.get(x, -1) for x in local], _I64)
    local_of = np.full(max(1, len(ix._sym_names)), -1, _I64)
    known = local_node >= 0
    local_of[local_node[known]] = np.nonzero(known)[0]
    return local, s_loc, k, words, pm, counts, pos_ptr, pos, local_node, local_of
