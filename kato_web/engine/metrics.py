"""KATO's prediction metrics (engine.md §6), one function per formula.

Every function evaluates its formula in the order engine.md §6 writes it, because KATO's floats
are reproduced to the last bit (README decision 4). Sums are left-to-right additions starting from
the integer 0 (``seq_sum``): that is what CPython <= 3.11's builtin ``sum`` does, and pinning it
keeps the results stable on later interpreters, whose ``sum`` of floats is compensated. The
posteriors of engine.md §7.8's f = 1 variant confirm it: a compensated (3.12-style) sum misses
them in the last bit.

Readings where engine.md does not pin the exact operation (none is distinguishable by the worked
examples of §7, which all reproduce):

* log base N is ``math.log(x, N)``, which CPython computes as log(x)/log(N); numpy gives the same
  bits here. "log2" (entropy, tfidf) is ``math.log2``, which is NOT always equal to
  ``math.log(x, 2)``.
* products written ``a·f/F`` are evaluated left to right, ``(a*f)/F``: weighted_strength is
  ``sim*f/F`` (not ``sim*(f/F)``) and itfdf is ``1 − d*f/F``.

Where KATO iterates a hash-ordered ``set`` (the symbols of the state or of the present), we
iterate distinct symbols in first-appearance order (README decision 5); the one exception is the
itfdf vector, which engine.md §9 asks to build over the sorted symbol list.
"""

from __future__ import annotations

import math
from functools import reduce
from operator import add
from typing import Iterable, Mapping, Sequence

import numpy as np

__all__ = [
    "seq_sum",
    "first_appearance_counts",
    "expectation",
    "classic_expectation",
    "symbol_probability",
    "evidence",
    "confidence",
    "snr",
    "fragmentation",
    "entropy",
    "normalized_entropy",
    "global_normalized_entropy",
    "cosine_distance",
    "itfdf_distance",
    "itfdf_similarity",
    "confluence_q_log10",
    "confluence",
    "tfidf_idf",
    "tfidf_score",
    "potential",
    "average_emotives",
    "affinity_weight",
    "weighted_metrics",
    "AffinityWeights",
    "weighted_values",
]

AFFINITY_FLOOR = 0.01  # w(t) of a symbol without affinity, and added to every weight (§1.4d)

CONFLUENCE_FLOOR = 1e-10  # q(x) for a symbol with probability 0 (engine.md §6.14)


def seq_sum(values: Iterable[float]) -> float:
    """Add values left to right starting from the integer 0, like CPython 3.11's ``sum``."""
    return reduce(add, values, 0)


def first_appearance_counts(symbols: Iterable[str]) -> dict[str, int]:
    """Count symbols in a dict whose key order is first appearance."""
    counts: dict[str, int] = {}
    get = counts.get
    for x in symbols:
        counts[x] = get(x, 0) + 1
    return counts


def expectation(p: float, n: int) -> float:
    """Return φ_N(p) = −p·log_N(p), or 0 when p <= 0 or N <= 1 (``metrics.expectation``)."""
    # math.log(p, N) is log(p)/log(N) evaluated in C; it is what ``log(p, N)`` gives in KATO.
    if p > 0 and n > 1:
        return -p * math.log(p, n)
    return 0


def classic_expectation(p: float) -> float:
    """Return the Shannon term −p·log2(p), or 0 when p <= 0."""
    if p > 0:
        return -p * math.log2(p)
    return 0


def symbol_probability(symbol: str, pmf: Mapping[str, int], tup: int) -> float:
    """Return π(σ) = pmf(σ)/TUP for a known symbol, 0.0 when TUP = 0, 0 for an unknown one."""
    count = pmf.get(symbol)
    if count is None:
        return 0
    if tup == 0:
        return 0.0
    return count / tup


def evidence(m: int, length: int) -> float:
    """Return M/L, 0 when L = 0 (engine.md §6.6)."""
    return m / length if length else 0.0


def confidence(m: int, present_size: int) -> float:
    """Return M/|ρ|, 0 when the present is empty (engine.md §6.7)."""
    return m / present_size if present_size else 0.0


def snr(m: int, e: int) -> float:
    """Return (2.0·M − E)/(2.0·M + E), 0 when the denominator is 0 (engine.md §6.8)."""
    denominator = 2.0 * m + e
    if denominator == 0:
        return 0.0
    return (2.0 * m - e) / denominator


def fragmentation(number_of_blocks: int) -> int:
    """Return r − 1, i.e. −1 when there are no blocks (engine.md §6.9)."""
    return number_of_blocks - 1


def entropy(present_counts: Mapping[str, int], present_size: int) -> float:
    """Return the Shannon entropy (bits) of the present multiset (engine.md §6.10)."""
    if present_size == 0:
        return 0.0
    return seq_sum(classic_expectation(c / present_size) for c in present_counts.values())


def normalized_entropy(counts: Mapping[str, int], n: int, n_symbols: int) -> float:
    """Return Σ φ_{N_sym}(c_σ/n) over distinct symbols in first appearance.

    kato-3.10.md §1.4e: the counts are a prediction's present (or, on a finalized node, its
    whole pattern), no longer the STM state of engine.md §6.11. Terms are added left to right
    from 0, which gives the bits of 3.10.1's ``v -= p·log(p, N)`` from 0.0.
    """
    if n == 0:
        return 0.0
    return seq_sum(expectation(c / n, n_symbols) for c in counts.values())


def global_normalized_entropy(
    symbols: Iterable[str], pi: Mapping[str, float], n_symbols: int
) -> float:
    """Return Σ φ_{N_sym}(π(σ)) over the given distinct symbols, in their order.

    kato-3.10.md §1.4e: the distinct symbols of a prediction's present (or whole pattern on a
    finalized node) in first-appearance order; 3.10.1 iterates a hash-ordered set, kato-web
    fixes this order (decision 5).
    """
    return seq_sum(expectation(pi.get(x, 0), n_symbols) for x in symbols)


def cosine_distance(a: Sequence[float], b: Sequence[float]) -> float:
    """Return 1 − a·b/(‖a‖‖b‖) as numpy computes it, or 1.0 unless both have a non-zero entry."""
    if not (any(a) and any(b)):
        return 1.0
    va = np.array(a, dtype=np.float64)
    vb = np.array(b, dtype=np.float64)
    # np.linalg.norm(v) is sqrt(v.dot(v)) and both square roots are correctly rounded, so this
    # equals 1 − np.dot(a, b)/(norm(a)·norm(b)) bit for bit. The norm product, not
    # sqrt(a·a · b·b): the two differ in the last bit (engine.md §7.1).
    return 1 - va.dot(vb) / (math.sqrt(va.dot(va)) * math.sqrt(vb.dot(vb)))


def itfdf_distance(
    present_counts: Mapping[str, int], state_counts: Mapping[str, int], pi: Mapping[str, float]
) -> float:
    """Return the cosine distance d of the π-weighted state and present count vectors (§6.13).

    The vectors run over the sorted symbols of ρ ∪ s (engine.md §9), zeros included: BLAS may sum
    in blocks, so where the zeros sit is part of the result.
    """
    universe = sorted(set(present_counts).union(state_counts))
    a = [pi.get(x, 0) * state_counts.get(x, 0) for x in universe]
    b = [pi.get(x, 0) * present_counts.get(x, 0) for x in universe]
    return cosine_distance(a, b)


def itfdf_similarity(distance: float, frequency: int, total_frequency: int) -> float:
    """Return 1 − d·f/F, 0 when F = 0 (engine.md §6.13)."""
    if total_frequency == 0:
        return 0.0
    return 1 - distance * frequency / total_frequency


def confluence_q_log10(p: float) -> float:
    """Return log10 q(x) for a symbol of probability p (q = p, or 1e−10 when p is 0)."""
    return math.log10(p if p > 0 else CONFLUENCE_FLOOR)


def confluence(frequency: int, tpf: int, present_log10_q: Iterable[float]) -> float:
    """Return (f/TPF)·(1 − 10 ** Σ log10 q(x)) over the flat present (engine.md §6.14)."""
    try:
        ratio = frequency / tpf if tpf else 0
        return ratio * (1 - 10 ** seq_sum(present_log10_q))
    except (OverflowError, ValueError, ZeroDivisionError):
        # KATO turns any exception of this metric into 0.
        return 0.0


def tfidf_idf(p: float, tup: int) -> float:
    """Return idf_σ = log2(TUP/w_σ) + 1 with w_σ = int(π·TUP), 1 when that is 0 (§6.15)."""
    w = int(p * tup)
    if w == 0:
        w = 1
    return math.log2(tup / w) + 1


def tfidf_score(
    present_counts: Mapping[str, int], present_size: int, idf: Mapping[str, float], tup: int
) -> float:
    """Return the mean over distinct present symbols of tf·idf (engine.md §6.15)."""
    if present_size == 0 or tup == 0:
        return 0.0
    terms = [(c / present_size) * idf[x] for x, c in present_counts.items()]
    return seq_sum(terms) / len(terms)


def potential(ev: float, conf: float, signal: float, itfdf: float, frag: int) -> float:
    """Return (evidence + confidence)·snr + itfdf + g with g = 1/(fragmentation + 1) (§6.19)."""
    g = 0 if frag == -1 else 1 / (frag + 1)
    return (ev + conf) * signal + itfdf + g


def average_emotives(window: Sequence[Mapping[str, float]]) -> dict[str, float]:
    """Average each emotive over only the snapshots that contain it, keys in first appearance."""
    values: dict[str, list[float]] = {}
    for snapshot in window:
        for key, value in snapshot.items():
            values.setdefault(key, []).append(value)
    return {key: float(seq_sum(v) / len(v)) for key, v in values.items()}


def affinity_weight(frequency: int, affinity: float) -> float:
    """Return w(t) = |aff(t, e)|/f(t) + 0.01 when f(t) > 0 and |aff| > 0, else 0.01 (§1.4d).

    Decision 19: a symbol without affinity weighs 0.01 (the documented formula), pattern-only
    symbols included.
    """
    magnitude = abs(affinity)
    if frequency > 0 and magnitude > 0:
        return magnitude / frequency + AFFINITY_FLOOR
    return AFFINITY_FLOOR


def weighted_metrics(w_m: float, w_s: float, w_p: float, w_rho: float, w_x: float) -> tuple:
    """Return (weighted_similarity, weighted_evidence, weighted_confidence, weighted_snr).

    From the weight sums of the matches M, the state S, the flat pattern P, the flat present ρ
    and the displayed extras X (kato-3.10.md §1.4d): 2·w(M)/(w(S)+w(P)) (None on a zero
    denominator), w(M)/w(P), w(M)/w(ρ), w(M)/(w(M)+w(X)) (0 on a zero denominator; every
    weight is at least 0.01, so only empty sums can be zero).
    """
    denominator = w_s + w_p
    similarity = 2 * w_m / denominator if denominator else None
    evidence = w_m / w_p if w_p else 0.0
    confidence = w_m / w_rho if w_rho else 0.0
    both = w_m + w_x
    signal = w_m / both if both else 0.0
    return similarity, evidence, confidence, signal


class AffinityWeights:
    """The weights w(t) of one prediction call (kato-3.10.md §1.4d, decision 19)."""

    __slots__ = ("cache", "frequency", "affinity", "emotive")

    def __init__(self, stats, emotive: str):
        self.cache: dict[str, float] = {}
        self.frequency = stats.frequency
        self.affinity = stats.affinity
        self.emotive = emotive

    def sum(self, symbols: Iterable[str]) -> float:
        """Return Σ w(t) over the symbols, left to right, each weight computed once per call."""
        cache = self.cache
        total = 0
        for t in symbols:
            w = cache.get(t)
            if w is None:
                w = cache[t] = affinity_weight(
                    self.frequency.get(t, 0), (self.affinity.get(t) or {}).get(self.emotive, 0.0))
            total = total + w
        return total


def weighted_values(weights: AffinityWeights, w_state: float, s: Sequence[str],
                    flat: Sequence[str], rho: Sequence[str], matches: Sequence[str],
                    anomalies: Sequence[dict]) -> tuple:
    """Return (weighted similarity, evidence, confidence, snr) of one prediction (§1.4d).

    M = the matches, S = the state (its weight sum ``w_state``), P = the flat pattern, ρ = the
    flat present, X = the displayed extras flattened: the state symbols outside the present,
    fuzzy-observed ones excluded (decision 18).
    """
    in_present = set(rho)
    if anomalies:
        in_present.update(a["observed"] for a in anomalies)
    extras = [t for t in s if t not in in_present]
    return weighted_metrics(weights.sum(matches), w_state, weights.sum(flat), weights.sum(rho),
                               weights.sum(extras))
