"""A direct, slow, obviously-correct implementation of KATO's prediction (engine.md §5–§6).

It shares no code with ``kato_web.engine``: a DP LCS, difflib's own matching blocks, plain loops
over the formulas. It follows the same arithmetic order and the same documented tie-breaks: sums in
the order the patterns are given (learn order), distinct symbols in first-appearance order, itfdf
vectors over the sorted symbols, ranking ties by name. So ``predict`` must agree with it to the
last bit.

``build_kb`` turns a list of learn calls into pattern records and KB counters by the rules of
engine.md §4.5, for the example and acceptance tests.
"""

from __future__ import annotations

import difflib
import hashlib
import json
import math

import numpy as np
from rapidfuzz import fuzz

from kato_web.engine.predictor import PatternRecord, SymbolStats

PREDICTION_KEYS = (
    "type", "name", "frequency", "emotives", "matches", "past", "present", "missing", "extras",
    "potential", "evidence", "similarity", "fragmentation", "snr", "confluence",
    "predictive_information", "sequence", "future", "confidence", "entropy", "normalized_entropy",
    "global_normalized_entropy", "itfdf_similarity", "tfidf_score", "pattern_probability",
    "weighted_strength", "bayesian_posterior", "bayesian_prior", "bayesian_likelihood",
    # kato-3.10.md decisions 18-19, appended after the 29.
    "anomalies", "weighted_similarity", "weighted_evidence", "weighted_confidence", "weighted_snr",
)


def pattern_name(events):
    """Return the bare SHA-1 name of a pattern (engine.md §4.1)."""
    return hashlib.sha1(str([list(e) for e in events]).encode("utf-8")).hexdigest()


def build_kb(learns):
    """Learn each (events, times[, emotive snapshots]) in turn; return (records, SymbolStats).

    The stats carry f(σ) (every learn adds each symbol's count) and the affinity sums.

    A new pattern adds 1 to pmf of each distinct symbol, to TUP and to TPF; a re-learn only bumps
    its frequency (engine.md §4.5). Emotive snapshots, one per learn call, form the window.
    """
    order, freq, window, pmf, sym_freq, affinity = [], {}, {}, {}, {}, {}
    for item in learns:
        events, times = item[0], item[1]
        snapshots = list(item[2]) if len(item) > 2 else []
        events = [list(e) for e in events]
        name = pattern_name(events)
        for t in range(times):
            if name not in freq:
                order.append((name, events))
                freq[name] = 0
                window[name] = []
                for x in {x for e in events for x in e}:
                    pmf[x] = pmf.get(x, 0) + 1
            freq[name] += 1
            for x in (x for e in events for x in e):
                sym_freq[x] = sym_freq.get(x, 0) + 1
            if t < len(snapshots) and snapshots[t]:
                window[name].append(dict(snapshots[t]))
                # kato-3.10.md §1.4c: the learn's emotives added once to each distinct symbol.
                for x in dict.fromkeys(x for e in events for x in e):
                    sums = affinity.setdefault(x, {})
                    for k, v in snapshots[t].items():
                        sums[k] = sums.get(k, 0) + v
    records = [PatternRecord(n, ev, freq[n], window[n]) for n, ev in order]
    stats = SymbolStats(dict(pmf), len(pmf), len(order), len(order), frequency=sym_freq,
                        affinity=affinity)
    return records, stats


def dp_lcs(a, b):
    """Return the LCS length by the textbook dynamic programme."""
    table = [[0] * (len(b) + 1) for _ in range(len(a) + 1)]
    for i in range(1, len(a) + 1):
        for j in range(1, len(b) + 1):
            if a[i - 1] == b[j - 1]:
                table[i][j] = table[i - 1][j - 1] + 1
            else:
                table[i][j] = max(table[i - 1][j], table[i][j - 1])
    return table[len(a)][len(b)]


def difflib_blocks(a, b):
    """Return difflib's matching blocks with autojunk off, sentinel dropped."""
    matcher = difflib.SequenceMatcher(None, list(a), list(b), autojunk=False)
    return [tuple(m) for m in matcher.get_matching_blocks()[:-1]]


def _add_all(values):
    total = 0
    for v in values:
        total = total + v
    return total


def _counts(symbols):
    out = {}
    for x in symbols:
        if x in out:
            out[x] += 1
        else:
            out[x] = 1
    return out


def _phi(x, n):
    if x > 0 and n > 1:
        return -x * math.log(x, n)
    return 0


def _future_key(future):
    encoded = json.dumps([sorted(e) for e in future], sort_keys=True).encode()
    return hashlib.sha1(encoded).hexdigest()


def _passes_filters(p, s, stages, cfg):
    n = len(s)
    for stage in stages:
        if stage == "length":
            lo = max(1, int(n * (cfg.length_min_ratio or 0.5)))
            hi = int(n * (cfg.length_max_ratio or 2.0))
            if not lo <= len(p) <= hi:
                return False
        if stage == "jaccard":
            t, q = set(p), set(s)
            inter = len(t & q)
            if inter < cfg.jaccard_min_overlap or not inter / len(t | q) >= cfg.jaccard_threshold:
                return False
    return True


def _fuzzy(p, s, tau):
    """kato-3.10.md §1.4b steps 1 and 3, literally: the first best pattern token per state token."""
    matches, anomalies = [], []
    for t in s:
        best, best_score = None, None
        for u in p:
            score = fuzz.ratio(t, u)
            if score >= 100 * tau and (best_score is None or score > best_score):
                best, best_score = u, score
        if best is not None:
            matches.append(t)
            if best != t:
                anomalies.append({"observed": t, "expected": best, "similarity": best_score / 100})
    return matches, anomalies


def _weight(x, emotive, stats):
    f = stats.frequency.get(x, 0)
    a = abs(stats.affinity.get(x, {}).get(emotive, 0.0))
    return a / f + 0.01 if f > 0 and a > 0 else 0.01


def _one(record, stm, s, theta, token, tau=0.0):
    """Return the per-pattern part of a prediction, or None when it fails the threshold."""
    events = [list(e) for e in record.events]
    p = [x for e in events for x in e]
    if token:
        sim = (2 * dp_lcs(p, s)) / (len(p) + len(s))
    else:
        sim = fuzz.ratio(" ".join(p), " ".join(s)) / 100
    if not sim >= theta:
        return None
    blocks = difflib_blocks(p, s)
    if not blocks and theta > 0:
        return None
    matches = []
    for _, j, k in blocks:
        for t in range(k):
            matches.append(s[j + t])
    if blocks:
        a0 = blocks[0][0]
        q = blocks[-1][0] + blocks[-1][2] - blocks[0][0]
    else:
        a0, q = 0, len(p)
    bounds = [0]
    for e in events:
        bounds.append(bounds[-1] + len(e))
    e1 = 0
    while bounds[e1] < a0:
        e1 += 1
    e2 = e1
    while bounds[e2] < a0 + q:
        e2 += 1
    if e1 > 0 and matches and matches[0] in events[e1 - 1]:
        e1 -= 1
    present = events[e1:e2]
    flat_present = [x for e in present for x in e]
    anomalies = []
    if tau > 0:
        matches, anomalies = _fuzzy(p, s, tau)
    expected = [a["expected"] for a in anomalies]
    observed = [a["observed"] for a in anomalies]
    return {
        "record": record,
        "p": p,
        "sim": sim,
        "matches": matches,
        "anomalies": anomalies,
        "r": len(blocks),
        "past": events[:e1],
        "present": present,
        "future": events[e2:],
        "missing": [[x for x in e if x not in matches and x not in expected] for e in present],
        "extras": [[x for x in e if x not in flat_present and x not in observed] for e in stm],
        "rho": flat_present,
    }


def reference_predict(stm, patterns, stats, cfg):
    """Return (predictions, future_potentials) computed the slow, literal way."""
    stm = [list(e) for e in stm]
    s = [x for e in stm for x in e]
    n = len(s)
    if n < 1:
        return [], []
    tau = getattr(cfg, "fuzzy_token_threshold", 0.0)
    emotive = getattr(cfg, "affinity_emotive", None)
    finalized = getattr(stats, "finalized", False)
    cands = []
    for record in patterns:
        if not _passes_filters(list(record.flat), s, cfg.filter_pipeline, cfg):
            continue
        c = _one(record, stm, s, cfg.recall_threshold, cfg.use_token_matching, tau)
        if c is not None:
            cands.append(c)
    if not cands:
        return [], []

    big_f = _add_all(c["record"].frequency for c in cands)
    tup, tpf, nsym = stats.total_unique_patterns, stats.total_pattern_frequencies, stats.n_symbols
    pi = {}
    for c in cands:
        # D = every symbol of every present span (with fuzzy matching, matches ∪ missing no
        # longer spells it: matches hold observed tokens, missing hides expected ones).
        for x in c["rho"]:
            if x not in pi:
                if x not in stats.pmf:
                    pi[x] = 0
                elif tup == 0:
                    pi[x] = 0.0
                else:
                    pi[x] = stats.pmf[x] / tup
    state_counts = _counts(s)

    def live_pi(x):  # the symbol table's π, for whole-pattern symbols outside D
        if x in pi:
            return pi[x]
        if x not in stats.pmf:
            return 0
        return stats.pmf[x] / tup if tup else 0.0

    evidence_total = _add_all(c["sim"] * (c["record"].frequency / big_f) for c in cands)
    group_w, group_n = {}, {}
    for c in cands:
        if c["future"]:
            key = _future_key(c["future"])
            group_w[key] = group_w.get(key, 0) + c["record"].frequency * c["sim"]
            group_n[key] = group_n.get(key, 0) + 1
    w_all = _add_all(group_w.values())

    preds = []
    for c in cands:
        rec = c["record"]
        f, sim, rho = rec.frequency, c["sim"], c["rho"]
        m = len(c["matches"])
        e = n - m
        rho_counts = _counts(rho)
        evidence = m / len(c["p"])
        confidence = m / len(rho)
        snr = (2.0 * m - e) / (2.0 * m + e)
        frag = c["r"] - 1
        # kato-3.10.md §1.4e: over the present, or the whole pattern on a finalized node.
        scope = c["p"] if finalized else rho
        scope_counts = _counts(scope)
        entropy = _add_all(-(k / len(scope)) * math.log2(k / len(scope))
                           for k in scope_counts.values())
        norm_h = _add_all(_phi(k / len(scope), nsym) for k in scope_counts.values())
        global_h = _add_all(_phi(live_pi(x), nsym) for x in scope_counts)
        universe = sorted(set(rho) | set(s))
        va = np.array([pi.get(x, 0) * state_counts.get(x, 0) for x in universe], dtype=float)
        vb = np.array([pi.get(x, 0) * rho_counts.get(x, 0) for x in universe], dtype=float)
        if np.any(va != 0) and np.any(vb != 0):
            d = 1 - np.dot(va, vb) / (np.linalg.norm(va) * np.linalg.norm(vb))
        else:
            d = 1.0
        itfdf = 1 - d * f / big_f
        log_sum = _add_all(math.log10(pi[x] if pi[x] > 0 else 1e-10) for x in rho)
        confluence = ((f / tpf) if tpf else 0) * (1 - 10 ** log_sum)
        if tup:
            terms = []
            for x, k in scope_counts.items():
                w = int(live_pi(x) * tup) or 1
                terms.append((k / len(scope)) * (math.log2(tup / w) + 1))
            tfidf = _add_all(terms) / len(terms)
        else:
            tfidf = 0.0
        prob = f / big_f
        strength = sim * f / big_f
        if c["future"]:
            a = group_w[_future_key(c["future"])] / w_all if w_all else 0
            pinfo = strength / a if a else 0.0
        else:
            pinfo = 0.0
        prior = f / big_f
        posterior = sim * prior / evidence_total if evidence_total else 0.0
        g = 0 if frag == -1 else 1 / (frag + 1)
        potential = (evidence + confidence) * snr + itfdf + g
        weighted = [None] * 4
        if emotive is not None:
            def wsum(xs):
                return _add_all(_weight(x, emotive, stats) for x in xs)
            w_m = wsum(c["matches"])
            w_x = wsum([x for e in c["extras"] for x in e])
            w_sim = 2 * w_m / (wsum(s) + wsum(c["p"]))
            w_ev = w_m / wsum(c["p"])
            w_conf = w_m / wsum(rho)
            w_snr = w_m / (w_m + w_x) if w_m + w_x else 0.0
            weighted = [w_sim, w_ev, w_conf, w_snr]
            potential = (w_ev + w_conf) * w_snr + itfdf + g
        emo = {}
        for snap in rec.emotives:
            for k, v in snap.items():
                emo.setdefault(k, []).append(v)
        emotives = {k: float(_add_all(v) / len(v)) for k, v in emo.items()}
        values = [
            "prototypical", rec.name, f, emotives, c["matches"], c["past"], c["present"],
            c["missing"], c["extras"], float(potential), float(evidence), float(sim), float(frag),
            float(snr), float(confluence), float(pinfo), [list(x) for x in rec.events],
            c["future"], float(confidence), float(entropy), float(norm_h), float(global_h),
            float(itfdf), float(tfidf), float(prob), float(strength), float(posterior),
            float(prior), float(sim), c["anomalies"], *weighted,
        ]
        preds.append(dict(zip(PREDICTION_KEYS, values)))

    key = cfg.rank_sort_algo
    # None (a weighted_* key with affinity off) ranks last; ties by name.
    ranked = sorted(preds, key=lambda d: (d[key] is None, -(d[key] or 0), d["name"]))
    fps, seen = [], []
    for d in ranked:
        if d["future"]:
            k = _future_key(d["future"])
            if k not in seen:
                seen.append(k)
                fps.append({
                    "future": d["future"],
                    "aggregate_potential": float(group_w[k] / w_all if w_all else 0.0),
                    "supporting_patterns": group_n[k],
                    "total_weighted_frequency": float(group_w[k]),
                })
    fps = sorted(fps, key=lambda x: -x["aggregate_potential"])
    return ranked[: cfg.max_predictions], fps
