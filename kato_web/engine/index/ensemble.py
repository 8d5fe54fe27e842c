"""Ensemble and metrics, compiled: every per-candidate metric in one pass (engine.md §6).

Owns the symbol domain D of the candidates' presents, the ensemble sums (F, Σ sim·prior, each
future group's W_φ and their total), the future groups themselves, and each metric, every float
evaluated in the order ``predictor`` evaluates it: sequential sums in learn order (never numpy's
pairwise sums), the itfdf cosine through the very BLAS ``ddot`` numpy's ``dot`` calls (so the
blocked summation of that kernel is reproduced by construction), libm's log10/log2/pow like
CPython's ``math``. Also the string-order ranks of the itfdf vectors (``universe_ranks``) and the
order in which future groups first appear in the ranking (``_first_members``).
"""

from __future__ import annotations

import math

import numpy as np

from .compiled import ddot as _ddot, jit as _jit

__all__ = ["top_ranked", "universe_ranks"]

_I64 = np.int64
_U1 = np.uint64(1)


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
def _ranks_before(c, b, values, digest):
    """Tell whether candidate c ranks before candidate b: higher value, or equal and a name
    (digest words, big-endian) that sorts first. Names are unique, so this is a total order."""
    if values[c] != values[b]:
        return values[c] > values[b]
    if digest[c, 0] != digest[b, 0]:
        return digest[c, 0] < digest[b, 0]
    if digest[c, 1] != digest[b, 1]:
        return digest[c, 1] < digest[b, 1]
    return digest[c, 2] < digest[b, 2]


@_jit
def _group_before(g, h, agg, lead, values, digest):
    """Tell whether group g comes before group h: higher aggregate potential, or equal and
    its first member in the ranking ranks first."""
    if agg[g] != agg[h]:
        return agg[g] > agg[h]
    return _ranks_before(lead[g], lead[h], values, digest)


@_jit
def _group_order(values, digest, group_of, agg):
    """Return (groups, their first member in the ranking), in future_potentials order.

    The same as ``_first_members`` over the full ranking by (−value, name) followed by a stable
    sort by −agg, without ranking every candidate: each group's first member is its best one,
    and the groups are merge-sorted (stable) by (−agg, their first member's rank). No value may
    be NaN.
    """
    ng = agg.shape[0]
    lead = np.full(ng, -1, _I64)
    for c in range(values.shape[0]):
        g = group_of[c]
        if g >= 0 and (lead[g] < 0 or _ranks_before(c, lead[g], values, digest)):
            lead[g] = c
    a = np.arange(ng)
    b = np.empty(ng, _I64)
    width = 1  # bottom-up merges (one comparison site keeps the compile short)
    while width < ng:
        for lo in range(0, ng, 2 * width):
            mid = min(lo + width, ng)
            hi = min(lo + 2 * width, ng)
            i = lo
            j = mid
            for k in range(lo, hi):
                if j >= hi or (i < mid and not _group_before(a[j], a[i], agg, lead, values, digest)):
                    b[k] = a[i]
                    i += 1
                else:
                    b[k] = a[j]
                    j += 1
        tmp = a
        a = b
        b = tmp
        width *= 2
    return a, lead[a]


def top_ranked(values: np.ndarray, digest: np.ndarray, count: int) -> np.ndarray:
    """Return the first ``count`` candidates of the ranking by (−value, name), in that order.

    Only the candidates at or above the count-th largest value are sorted (a partition finds
    it): the ranking's first ``count`` are among them, in the same order. No value may be NaN.
    """
    nc = values.shape[0]
    if count <= 0:
        return np.zeros(0, _I64)
    if count < nc:
        cut = np.partition(values, nc - count)[nc - count]
        chosen = np.flatnonzero(values >= cut)
    else:
        chosen = np.arange(nc)
    d = digest[chosen]
    order = np.lexsort((d[:, 2], d[:, 1], d[:, 0], -values[chosen]))
    return chosen[order[:count]]


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
def _tally(flat, lo, hi, slot_of, rsym, rcnt):
    """Count flat[lo:hi] by symbol in first-appearance order into rsym/rcnt; return how many.

    ``slot_of`` maps a symbol to its slot and must be all -1 on entry; the caller resets the
    slots it used (``slot_of[rsym[u]] = -1`` for u < the returned count).
    """
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
    return nd


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
        nd = _tally(flat, lo, hi, slot_of, rsym, rcnt)
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
def _ensemble(cp, sim, m_arr, r_arr, e1, e2, flat, pstart, ebstart, ebounds, fhash, freq, pmf,
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
        h = np.uint64(fhash[ebstart[p] + e2[c]])  # columns._future_hashes
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
        nd = _tally(flat, lo, hi, slot_of, rsym, rcnt)
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
            nd = _tally(flat, a, a + length, slot_of, rsym, rcnt)
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


def universe_ranks(ix, dom, state_names, local_node, in_dom):
    """Return the ranks in string order among D ∪ s of D's symbols and of the state's.

    The universe is D (node ids) then the state symbols outside D, in state order; the ranks
    are 0 … |D ∪ s| − 1 for the itfdf vectors (engine.md §9: sorted symbol list). A node
    symbol keys as 2·rank + 1 in the vocabulary's string order; a symbol the node never saw
    keys as 2·(how many node symbols sort before it), ties among those broken by string.
    """
    srank, by_rank = ix._string_order()
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
