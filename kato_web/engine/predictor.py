"""KATO's prediction: candidates → similarity → alignment → metrics → ranking (engine.md §5).

The work is split at one seam so that a candidate index can replace the full scan later:

* ``State.from_stm`` prepares everything that depends only on the STM;
* ``score_candidate`` scores ONE pattern against the state and returns a ``Candidate`` or None;
* ``rank_ensemble`` computes the ensemble metrics over all candidates, ranks and truncates.

``predict`` wires them together over every pattern given, after the optional filter stages.

Choices where KATO is nondeterministic or silent (README decisions 3–5, engine.md §9):

* Ensemble float sums (F, Σ sim·prior, each future group's W_φ and their total) run over the
  candidates in the order the patterns were given, which callers must make the order in which the
  patterns were first learned (the store's insertion order; an index must restore it). The
  worked examples of engine.md §7.8 were computed in that order: its f = 1 variant gives
  different last bits when summed in name order.
* Ranking is descending by the rank key, ties by name ascending; truncation happens after every
  ensemble metric was computed over all candidates.
* ``future_potentials`` ties keep first-seen order in the full ranked list, and a group's
  ``future`` is that of its first member in that list.
* Character mode (``use_token_matching`` false) changes only the similarity (§5.2). Matching
  blocks, matches and the event alignment stay token based, computed on the symbol lists p and s
  (§5.4). A pattern whose symbols share no whole symbol with the state has no block: it is
  rejected when θ > 0 however similar its characters are, and admitted with the no-block shape
  when θ = 0.
* The ``minhash``, ``bloom`` and ``rapidfuzz`` filter stages are lossless no-ops (decision 3), so
  θ = 0 still admits zero-overlap patterns whatever the pipeline; ``length`` and ``jaccard``
  apply exactly as engine.md §8.2 states.
* ``fragmentation`` is reported as a float like the other metrics; ``frequency`` stays an int.
"""

from __future__ import annotations

from typing import Iterable, Mapping, Sequence

import orjson
from rapidfuzz import fuzz
from rapidfuzz.distance import LCSseq

from . import metrics as mx
from .matching import BlockMatcher, event_span, extract, fuzzy_matches, split
# The shared types live in types.py; they stay importable from here, where callers found them.
from .types import JSONList, PatternRecord, PredictConfig, RANK_KEYS, SymbolStats, WEIGHTED_KEYS

__all__ = [
    "JSONList",
    "PatternRecord",
    "SymbolStats",
    "PredictConfig",
    "RANK_KEYS",
    "FILTER_STAGES",
    "PREDICTION_KEYS",
    "State",
    "Candidate",
    "score_candidate",
    "passes_filters",
    "rank_ensemble",
    "rank_order",
    "WEIGHTED_KEYS",
    "predict",
]

FILTER_STAGES: tuple[str, ...] = ("minhash", "length", "jaccard", "bloom", "rapidfuzz")

# Output key order of a prediction object, as KATO builds it (engine.md §6).
PREDICTION_KEYS: tuple[str, ...] = (
    "type",
    "name",
    "frequency",
    "emotives",
    "matches",
    "past",
    "present",
    "missing",
    "extras",
    "potential",
    "evidence",
    "similarity",
    "fragmentation",
    "snr",
    "confluence",
    "predictive_information",
    "sequence",
    "future",
    "confidence",
    "entropy",
    "normalized_entropy",
    "global_normalized_entropy",
    "itfdf_similarity",
    "tfidf_score",
    "pattern_probability",
    "weighted_strength",
    "bayesian_posterior",
    "bayesian_prior",
    "bayesian_likelihood",
    # kato-3.10.md decisions 18–19: appended after KATO's 29 keys, in 3.10.1's relative order
    # (anomalies, then the four weighted_* keys), so the older keys keep their places.
    "anomalies",
    "weighted_similarity",
    "weighted_evidence",
    "weighted_confidence",
    "weighted_snr",
)


class State:
    """Everything about the STM that is shared by all candidates of one prediction call."""

    __slots__ = ("stm", "s", "n", "ids", "s_ids", "joined", "matcher", "counts")

    def __init__(self, stm: Sequence[Sequence[str]]):
        self.stm = [list(e) for e in stm]
        self.s = [x for e in self.stm for x in e]
        self.n = len(self.s)
        ids: dict[str, int] = {}
        self.s_ids = [ids.setdefault(x, len(ids)) for x in self.s]
        self.ids = ids  # state symbol → small int, for exact LCS through rapidfuzz
        self.joined = " ".join(self.s)
        self.matcher = BlockMatcher(self.s)
        self.counts = mx.first_appearance_counts(self.s)

    @classmethod
    def from_stm(cls, stm: Sequence[Sequence[str]]) -> "State":
        """Prepare the state of an STM."""
        return cls(stm)


class Candidate:
    """One pattern that passed the recall threshold: its similarity, matches and event span.

    With fuzzy token matching (τ > 0, kato-3.10.md §1.4b) ``matches`` and ``m`` are the fuzzy
    ones and ``anomalies`` lists the inexact pairs; the event span and ``number_of_blocks``
    always come from the exact matching blocks.
    """

    __slots__ = ("record", "similarity", "matches", "m", "number_of_blocks", "e1", "e2", "rho",
                 "anomalies")

    def __init__(self, record: PatternRecord, sim: float, extraction, e1: int, e2: int,
                 fuzzy: tuple[list[str], list[dict]] | None = None):
        self.record = record
        self.similarity = sim
        if fuzzy is None:
            self.matches = extraction.matches
            self.m = extraction.m
            self.anomalies = []
        else:
            self.matches, self.anomalies = fuzzy
            self.m = len(self.matches)
        self.number_of_blocks = extraction.number_of_blocks
        self.e1 = e1  # present = events[e1:e2]
        self.e2 = e2
        offsets = record.offsets
        self.rho = record.flat[offsets[e1] : offsets[e2]]  # flat(present)

    def future_key(self) -> tuple | None:
        """Return the future's grouping key, or None when the future is empty.

        KATO groups by SHA1(json.dumps([sorted(e) for e in future])); the tuple of sorted events
        is the same partition without the hashing cost.
        """
        future = self.record.events[self.e2 :]
        if not future:
            return None
        return tuple(tuple(sorted(e)) for e in future)


def score_candidate(
    record: PatternRecord, state: State, threshold: float, use_token_matching: bool = True,
    fuzzy_token_threshold: float = 0.0,
) -> Candidate | None:
    """Score one pattern against the state; return its Candidate, or None below the threshold."""
    p = record.flat
    length = len(p)
    total = length + state.n
    matcher = state.matcher
    hits = None
    if use_token_matching:
        if threshold > 0 and (2 * min(length, state.n)) / total < threshold:
            return None  # lossless: the LCS can never exceed the shorter sequence (§8.6)
        hits = matcher.hits(p)
        if not hits:
            sim = 0.0
        elif threshold > 0 and (2 * min(len(hits), state.n)) / total < threshold:
            return None  # lossless: only pattern positions holding a state symbol can match
        else:
            ids = state.ids
            p_ids = [ids[p[i]] for i, _ in hits]
            sim = (2 * int(LCSseq.similarity(p_ids, state.s_ids))) / total
    else:
        sim = fuzz.ratio(" ".join(p), state.joined) / 100
    if not sim >= threshold:
        return None
    blocks = matcher.blocks(p, hits)
    if not blocks and threshold > 0:
        return None  # extract rejects a pattern without blocks unless θ = 0 (engine.md §5.3)
    extraction = extract(length, state.s, blocks)
    e1, e2 = event_span(record.events, record.offsets, extraction)
    fuzzy = fuzzy_matches(p, state.s, fuzzy_token_threshold) if fuzzy_token_threshold > 0 else None
    return Candidate(record, sim, extraction, e1, e2, fuzzy)


def passes_filters(record: PatternRecord, state: State, cfg: PredictConfig) -> bool:
    """Apply the deterministic filter stages (length, jaccard); the others keep everything."""
    for stage in cfg.filter_pipeline:
        if stage == "length":
            # A ratio of 0 falls back to the default through ``or``, as in KATO (engine.md §8.2).
            rmin = cfg.length_min_ratio or 0.5
            rmax = cfg.length_max_ratio or 2.0
            length = record.length
            if not (max(1, int(state.n * rmin)) <= length <= int(state.n * rmax)):
                return False
        elif stage == "jaccard":
            tokens = record.symbol_set
            overlap = len(tokens.intersection(state.counts))
            if overlap < cfg.jaccard_min_overlap:
                return False
            union = len(tokens) + len(state.counts) - overlap
            if not overlap / union >= cfg.jaccard_threshold:
                return False
        # minhash, bloom and rapidfuzz are lossless in kato-web (README decision 3).
    return True


class _Ensemble:
    """The ensemble-wide quantities of one prediction call (engine.md §6)."""

    def __init__(self, candidates: Sequence[Candidate], state: State, stats: SymbolStats,
                 affinity_emotive: str | None = None):
        self.state = state
        self.tup = tup = stats.total_unique_patterns
        self.tpf = stats.total_pattern_frequencies
        self.n_symbols = stats.n_symbols
        self.pmf = pmf = stats.pmf
        self.finalized = bool(stats.finalized)
        self.total_f = mx.seq_sum(c.record.frequency for c in candidates)

        # π over the domain D: every symbol of every present span.
        pi: dict[str, float] = {}
        for c in candidates:
            for x in c.rho:
                if x not in pi:
                    pi[x] = mx.symbol_probability(x, pmf, tup)
        self.pi = pi
        self.log10_q = {x: mx.confluence_q_log10(v) for x, v in pi.items()}
        self.idf = {x: mx.tfidf_idf(v, tup) for x, v in pi.items()} if tup else {}
        counts = state.counts
        # The state's half of the itfdf vectors: π(σ)·count_s(σ), 0 outside D.
        self.state_weight = {x: pi.get(x, 0) * c for x, c in counts.items()}
        self.state_weight_any = any(self.state_weight.values())

        # Affinity weights w(t) (kato-3.10.md §1.4d, decision 19), only when asked for.
        self.weights = None
        if affinity_emotive is not None:
            self.weights = mx.AffinityWeights(stats, affinity_emotive)
            self.w_state = self.weights.sum(state.s)

        # Σ sim·prior and the future groups' W_φ, summed in candidate (learn) order.
        total_f = self.total_f
        evidence_sum = 0
        groups: dict[tuple, list] = {}
        keys = []
        for c in candidates:
            f = c.record.frequency
            prior = f / total_f if total_f else 0.0
            evidence_sum = evidence_sum + c.similarity * prior
            key = c.future_key()
            keys.append(key)
            if key is not None:
                group = groups.get(key)
                if group is None:
                    group = groups[key] = [0, 0]  # [W_φ, supporting patterns]
                group[0] = group[0] + f * c.similarity
                group[1] += 1
        self.evidence_sum = evidence_sum
        self.groups = groups
        self.future_keys = keys
        w_total = mx.seq_sum(g[0] for g in groups.values())
        self.aggregate = {k: (g[0] / w_total if w_total else 0.0) for k, g in groups.items()}

    def weighted(self, c: Candidate) -> tuple | None:
        """Return (weighted similarity, evidence, confidence, snr), or None when off (§1.4d)."""
        if self.weights is None:
            return None
        return mx.weighted_values(self.weights, self.w_state, self.state.s, c.record.flat, c.rho,
                               c.matches, c.anomalies)

    def itfdf(self, c: Candidate, rho_counts: Mapping[str, int]) -> float:
        """Return the candidate's itfdf_similarity (engine.md §6.13)."""
        if self.total_f == 0:
            return 0.0
        pi = self.pi
        state_weight = self.state_weight
        # Every present symbol is in D, so pi[x] exists for each key of rho_counts. When either
        # vector is all zeros d = 1 without building it (same as mx.itfdf_distance).
        if self.state_weight_any and any(pi[x] for x in rho_counts):
            universe = sorted(state_weight.keys() | rho_counts.keys())
            d = mx.cosine_distance(
                [state_weight.get(x, 0) for x in universe],
                [pi[x] * rho_counts[x] if x in rho_counts else 0 for x in universe],
            )
        else:
            d = 1.0
        return mx.itfdf_similarity(d, c.record.frequency, self.total_f)

    def core(self, c: Candidate, rho_counts: Mapping[str, int]) -> tuple:
        """Return (evidence, confidence, snr, fragmentation, itfdf, potential, weighted).

        With affinity on, potential = (w_ev + w_conf)·w_snr + itfdf + 1/(frag + 1) (§1.4d).
        """
        m = c.m
        ev = mx.evidence(m, len(c.record.flat))
        conf = mx.confidence(m, len(c.rho))
        signal = mx.snr(m, self.state.n - m)
        frag = mx.fragmentation(c.number_of_blocks)
        itfdf = self.itfdf(c, rho_counts)
        weighted = self.weighted(c)
        if weighted is None:
            pot = mx.potential(ev, conf, signal, itfdf, frag)
        else:
            pot = mx.potential(weighted[1], weighted[2], weighted[3], itfdf, frag)
        return ev, conf, signal, frag, itfdf, pot, weighted

    def bayes(self, c: Candidate, key: tuple | None) -> tuple:
        """Return probability, weighted strength, predictive information, prior, posterior."""
        f = c.record.frequency
        sim = c.similarity
        total_f = self.total_f
        probability = f / total_f if total_f else 0.0
        strength = sim * f / total_f if total_f else 0.0
        a_phi = self.aggregate[key] if key is not None else 0
        information = strength / a_phi if a_phi else 0.0
        prior = f / total_f if total_f else 0.0
        posterior = sim * prior / self.evidence_sum if self.evidence_sum else 0.0
        return probability, strength, information, prior, posterior

    def confluence(self, c: Candidate) -> float:
        """Return the candidate's confluence (engine.md §6.14)."""
        log10_q = self.log10_q
        return mx.confluence(c.record.frequency, self.tpf, [log10_q[x] for x in c.rho])

    def _scope(self, c: Candidate, rho_counts: Mapping[str, int]) -> tuple[Mapping[str, int], int]:
        """Return (counts, size) of what the entropies and TF run over: the present, or the
        whole pattern on a finalized node (kato-3.10.md §1.4e, decision 15)."""
        if self.finalized:
            return mx.first_appearance_counts(c.record.flat), len(c.record.flat)
        return rho_counts, len(c.rho)

    def probability(self, x: str) -> float:
        """Return π(x): from D's map for a present symbol, else live from the symbol table."""
        v = self.pi.get(x)
        return mx.symbol_probability(x, self.pmf, self.tup) if v is None else v

    def entropies(self, c: Candidate, rho_counts: Mapping[str, int]) -> tuple:
        """Return (entropy, normalized_entropy, global_normalized_entropy) of the candidate.

        Over its present (kato-3.10.md §1.4e), or over the whole pattern with the live symbol
        table on a finalized node; distinct symbols in first-appearance order.
        """
        counts, size = self._scope(c, rho_counts)
        n_symbols = self.n_symbols
        return (mx.entropy(counts, size), mx.normalized_entropy(counts, size, n_symbols),
                mx.global_normalized_entropy(counts, {x: self.probability(x) for x in counts},
                                             n_symbols))

    def tfidf(self, c: Candidate, rho_counts: Mapping[str, int]) -> float:
        """Return the candidate's tfidf_score (engine.md §6.15; TF over the whole pattern on a
        finalized node, idf always live, kato-3.10.md §1.4e)."""
        counts, size = self._scope(c, rho_counts)
        idf = self.idf
        if self.finalized and self.tup:
            idf = {x: idf[x] if x in idf else mx.tfidf_idf(self.probability(x), self.tup)
                   for x in counts}
        return mx.tfidf_score(counts, size, idf, self.tup)

    def rank_value(self, c: Candidate, key: tuple | None, rank_key: str):
        """Return the value of one ranking key for a candidate, computing only what it needs."""
        if rank_key in ("similarity", "bayesian_likelihood"):
            return c.similarity
        if rank_key == "frequency":
            return c.record.frequency
        if rank_key == "fragmentation":
            return mx.fragmentation(c.number_of_blocks)
        if rank_key == "evidence":
            return mx.evidence(c.m, len(c.record.flat))
        if rank_key == "confidence":
            return mx.confidence(c.m, len(c.rho))
        if rank_key == "snr":
            return mx.snr(c.m, self.state.n - c.m)
        if rank_key == "normalized_entropy":
            return self.entropies(c, mx.first_appearance_counts(c.rho))[1]
        if rank_key == "global_normalized_entropy":
            return self.entropies(c, mx.first_appearance_counts(c.rho))[2]
        if rank_key == "confluence":
            return self.confluence(c)
        if rank_key == "tfidf_score":
            return self.tfidf(c, mx.first_appearance_counts(c.rho))
        if rank_key == "itfdf_similarity":
            return self.itfdf(c, mx.first_appearance_counts(c.rho))
        if rank_key == "potential":
            return self.core(c, mx.first_appearance_counts(c.rho))[5]
        if rank_key in WEIGHTED_KEYS:
            weighted = self.weighted(c)
            return None if weighted is None else weighted[WEIGHTED_KEYS.index(rank_key)]
        probability, strength, information, prior, posterior = self.bayes(c, key)
        if rank_key == "predictive_information":
            return information
        if rank_key == "bayesian_prior":
            return prior
        return posterior  # bayesian_posterior

    def prediction(self, c: Candidate, key: tuple | None) -> dict:
        """Build the full 34-key prediction object of a candidate (PREDICTION_KEYS order)."""
        rec = c.record
        rho_counts = mx.first_appearance_counts(c.rho)
        ev, conf, signal, frag, itfdf, pot, weighted = self.core(c, rho_counts)
        probability, strength, information, prior, posterior = self.bayes(c, key)
        entropy, normalized_entropy, global_normalized_entropy = self.entropies(c, rho_counts)
        parts = split(rec.events, c.e1, c.e2, c.matches, self.state.stm, c.anomalies)
        w_sim, w_ev, w_conf, w_snr = (None,) * 4 if weighted is None else weighted
        return {
            "type": "prototypical",
            "name": rec.name,
            "frequency": rec.frequency,
            "emotives": mx.average_emotives(rec.emotives),
            "matches": list(c.matches),
            "past": parts.past,
            "present": parts.present,
            "missing": parts.missing,
            "extras": parts.extras,
            "potential": float(pot),
            "evidence": float(ev),
            "similarity": float(c.similarity),
            "fragmentation": float(frag),
            "snr": float(signal),
            "confluence": float(self.confluence(c)),
            "predictive_information": float(information),
            "sequence": [list(e) for e in rec.events],
            "future": parts.future,
            "confidence": float(conf),
            "entropy": float(entropy),
            "normalized_entropy": float(normalized_entropy),
            "global_normalized_entropy": float(global_normalized_entropy),
            "itfdf_similarity": float(itfdf),
            "tfidf_score": float(self.tfidf(c, rho_counts)),
            "pattern_probability": float(probability),
            "weighted_strength": float(strength),
            "bayesian_posterior": float(posterior),
            "bayesian_prior": float(prior),
            "bayesian_likelihood": float(c.similarity),
            "anomalies": [dict(a) for a in c.anomalies],
            "weighted_similarity": _float_or_none(w_sim),
            "weighted_evidence": _float_or_none(w_ev),
            "weighted_confidence": _float_or_none(w_conf),
            "weighted_snr": _float_or_none(w_snr),
        }


def _float_or_none(value) -> float | None:
    return None if value is None else float(value)


def rank_order(values: Sequence, names: Sequence[str]) -> list[int]:
    """Return the positions ranked descending by value, ties by name ascending (decision 5);
    a None value (a weighted_* key with affinity off) ranks after every number."""
    ranked = sorted(range(len(values)), key=names.__getitem__)
    if any(v is None for v in values):
        ranked.sort(key=lambda i: (values[i] is not None, values[i] or 0), reverse=True)
    else:
        ranked.sort(key=values.__getitem__, reverse=True)
    return ranked


def rank_ensemble(
    candidates: Sequence[Candidate], state: State, stats: SymbolStats, cfg: PredictConfig
) -> tuple[list[dict], list[dict]]:
    """Compute the ensemble metrics over all candidates, rank, truncate, aggregate futures.

    ``candidates`` must be in learn order: it is the order of every ensemble float sum.
    """
    rank_key = cfg.rank_sort_algo
    if rank_key not in RANK_KEYS:
        raise ValueError(f"unknown rank_sort_algo: {rank_key!r}")
    if not candidates:
        return [], []
    ens = _Ensemble(candidates, state, stats, cfg.affinity_emotive)
    keys = ens.future_keys
    values = [ens.rank_value(c, keys[i], rank_key) for i, c in enumerate(candidates)]
    ranked = rank_order(values, [c.record.name for c in candidates])

    predictions = [
        ens.prediction(candidates[i], keys[i]) for i in ranked[: max(0, cfg.max_predictions)]
    ]

    # One entry per distinct future over ALL candidates; ties keep first-seen ranked order.
    future_potentials = []
    seen = set()
    for i in ranked:
        key = keys[i]
        if key is None or key in seen:
            continue
        seen.add(key)
        c = candidates[i]
        weight, supporting = ens.groups[key]
        future_potentials.append(
            {
                "future": [list(e) for e in c.record.events[c.e2 :]],
                "aggregate_potential": float(ens.aggregate[key]),
                "supporting_patterns": supporting,
                "total_weighted_frequency": float(weight),
            }
        )
    future_potentials.sort(key=lambda fp: fp["aggregate_potential"], reverse=True)
    return predictions, future_potentials


def predict(
    stm: Sequence[Sequence[str]],
    patterns: Iterable[PatternRecord],
    stats: SymbolStats,
    cfg: PredictConfig,
    futures_json: bool = False,
    predictions_json: bool = False,
) -> tuple[list[dict] | JSONList, list[dict] | bytes]:
    """Return (predictions, future_potentials) for an STM against a knowledge base.

    Give ``patterns`` in the order they were first learned: ensemble float sums follow it.
    ``patterns`` may also be an ``index.PatternIndex``, which gives the same result through its
    candidate index and compiled scoring (its own pmf table is used; ``stats`` gives N_sym, TUP,
    TPF and kato-3.10's f(σ), affinity sums and finalized flag). With ``futures_json``, future_potentials come as ``orjson.dumps`` of that list,
    and with ``predictions_json`` the predictions as a ``JSONList`` (``orjson.dumps`` of the
    list and its length): an index writes both directly, without the Python objects.
    """
    # An index predicts by itself. Recognised by its method, not its class: the index imports
    # this module for its fallback, and this module must not import the index back.
    own_predict = getattr(patterns, "predict", None)
    if callable(own_predict):
        return own_predict(stm, stats, cfg, futures_json=futures_json,
                           predictions_json=predictions_json)
    predictions, future_potentials = _predict_records(stm, patterns, stats, cfg)
    if predictions_json:
        predictions = JSONList(orjson.dumps(predictions), len(predictions))
    return predictions, orjson.dumps(future_potentials) if futures_json else future_potentials


def _predict_records(stm, patterns, stats, cfg):
    """Score every record directly: ``predict`` over plain records."""
    if cfg.rank_sort_algo not in RANK_KEYS:
        raise ValueError(f"unknown rank_sort_algo: {cfg.rank_sort_algo!r}")
    state = State(stm)
    if state.n < 1:
        return [], []  # an STM of one symbol predicts (kato-3.10.md decision 14); empty does not
    threshold = cfg.recall_threshold
    token = cfg.use_token_matching
    tau = cfg.fuzzy_token_threshold
    filtering = any(stage in ("length", "jaccard") for stage in cfg.filter_pipeline)
    candidates = []
    for record in patterns:
        if filtering and not passes_filters(record, state, cfg):
            continue
        cand = score_candidate(record, state, threshold, token, tau)
        if cand is not None:
            candidates.append(cand)
    return rank_ensemble(candidates, state, stats, cfg)
