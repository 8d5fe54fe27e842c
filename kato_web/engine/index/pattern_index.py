"""PatternIndex: a node's patterns with an exact, fast prediction path (engine.md §5, §6, §8.6).

``PatternIndex.predict`` returns exactly what ``predictor.predict`` returns over the same
patterns in the same order, bit for bit, at a fraction of the cost. This module ties the path
together; each step lives in a module of its own:

1. Candidates (candidates.py). θ = 0 admits every pattern (§5.3). For θ > 0 the lossless bounds
   of §8.6 prune before any exact work: the length window, the count bound over the inverted
   index, the prefix filter, or a direct scan when that is cheaper. Learn order throughout.
2. Exact matching (matching.py): the LCS, ``sim = 2·LCS/(L + n) >= θ``, then difflib's matching
   blocks and the event span, only for the patterns that pass.
3. Ensemble and metrics for all candidates in one compiled pass (ensemble.py), each float in
   the order ``predictor`` evaluates it.
4. Ranking by (−key, name), here: a stable sort by −key of the candidates in name order (the
   names' SHA-1 digests; hex order equals byte order), and the full 34-key objects only for the
   top ``max_predictions``. With ``futures_json`` the future_potentials come as the bytes
   ``orjson.dumps`` gives for that list, and with ``predictions_json`` the top objects likewise
   (a ``JSONList``), both written by the kernels of json_writers.py.

KATO 3.10.1 (kato-3.10.md decisions 14, 15, 18, 19): a one-symbol STM predicts like any other;
the entropies are per prediction, over its present, or over the whole pattern when
``stats.finalized`` (compiled, ``ensemble._entropies`` and ``_ensemble``'s ``whole``). A call
with ``fuzzy_token_threshold`` > 0 or an ``affinity_emotive`` scores its fuzzy matches and
affinity weights in compiled passes over all candidates (options.py): same bits as the direct
engine.

How the knowledge service feeds it: patterns, frequencies, emotive windows and each symbol's pmf
as before (``add_columns``/``update``/``set_pmf``); everything else of kato-3.10 comes in the
``SymbolStats`` given to ``predict``: ``frequency`` (f(σ), the symbols table's frequency),
``affinity`` (σ → emotive → sum) and ``finalized`` (the node row's flag), next to N_sym, TUP
and TPF. The index keeps no copy of them, so nothing needs invalidating when they change.

The storage (append, update, read back, postings) is ``PatternColumns`` (columns.py). The index
is pure (numpy, numba and orjson; no Flask, no SQL). When numba or numpy's bundled OpenBLAS is
missing, or ``use_compiled(False)`` switched the compiled path off, ``predict`` falls back to
the direct scan over ``PatternRecord`` objects (same results, slower).
"""

from __future__ import annotations

import dataclasses
import gc
import os
import threading
from contextlib import contextmanager
from time import perf_counter
from typing import Iterable, Sequence

import numpy as np
import orjson

from .. import metrics as mx
from ..metrics import AffinityWeights
from ..predictor import predict as _direct_predict
from ..types import JSONList, PatternRecord, PredictConfig, RANK_KEYS, SymbolStats, WEIGHTED_KEYS
from . import compiled
from . import options as _opt
from .candidates import _count_bound, candidate_positions
from .columns import PatternColumns
from .ensemble import (_domain, _ensemble, _entropies, _first_members, _group_order, top_ranked,
                       universe_ranks)
from .json_writers import _futures_json, float_texts, predictions_json
from .matching import _match, _top_blocks, encode_state

__all__ = ["PatternIndex", "warm_up"]

_I64 = np.int64


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


class PatternIndex(PatternColumns):
    """One node's patterns in learn order (``PatternColumns``) that predicts over them.

    Not thread-safe: callers serialise updates and predictions (the knowledge cache holds a lock).
    """

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
        if cfg.rank_sort_algo not in RANK_KEYS:
            raise ValueError(f"unknown rank_sort_algo: {cfg.rank_sort_algo!r}")
        if not compiled.FAST or not cfg.use_token_matching:
            # Character similarity has no compiled path: score every pattern directly.
            return _direct_predict(stm, list(self.records()),
                                   dataclasses.replace(stats, pmf=self.pmf()), cfg,
                                   futures_json=futures_json, predictions_json=predictions_json)
        stm = [list(e) for e in stm]
        s = [x for e in stm for x in e]
        n = len(s)
        if n < 1 or self._n == 0:  # one symbol predicts (kato-3.10.md decision 14)
            return _nothing(futures_json, predictions_json)
        return self._predict(stm, s, stats, cfg, futures_json, predictions_json)

    def _phase(self, name: str, started: float, **counts) -> float:
        now = perf_counter()
        if self.phase_times is not None:
            self.phase_times[name] = self.phase_times.get(name, 0.0) + now - started
            for key, value in counts.items():
                self.phase_times[key] = value
        return now

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
        if not compiled.FAST or not cfg.use_token_matching:
            uncapped = dataclasses.replace(cfg, max_predictions=self._n)
            return len(self.predict(stm, stats, uncapped)[0])
        return int(self._matches(s, cfg)[-1][0].shape[0])

    def _matches(self, s, cfg: PredictConfig):
        """Encode the state and find the patterns passing θ and the filters, with their scores."""
        started = perf_counter()
        n = len(s)
        theta = float(cfg.recall_threshold)
        state = encode_state(self, s)
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
        cand = candidate_positions(self, theta, n, local_node, counts, len_lo, len_hi)
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
        dom_rank, local_rank = universe_ranks(self, dom, state_names, local_node, in_dom)
        (ev, conf, snr, itfdf, pot, confl, tfidf, prob, strength, info, prior, post, group_of, gw,
         gcount, agg, grep, total_f, evidence_sum, pi) = _ensemble(
            cp, sim, m_arr, r_arr, e1, e2, self._flat, self._pstart, self._ebstart, self._ebounds,
            self._fhash, self._freq, self._pmf, self._has_pmf, int(stats.total_unique_patterns),
            int(stats.total_pattern_frequencies), n, local_of, local_node, counts, local_rank, dom,
            dom_rank, n_symbols, self._max_len, whole)
        options = None
        if cfg.fuzzy_token_threshold > 0 or cfg.affinity_emotive is not None:
            options, ev, conf, snr, pot = self._options(s, stats, cfg, state, cp, m_arr, r_arr,
                                                        e1, e2, ev, conf, snr, itfdf, pot)

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
        if options is not None and options[1] is not None and key in WEIGHTED_KEYS:
            values = options[1][:, WEIGHTED_KEYS.index(key)]
        elif key in ("normalized_entropy", "global_normalized_entropy"):  # per candidate (§1.4e)
            values = self._entropies(cp, e1, e2, stats, whole)[
                1 if key == "normalized_entropy" else 2]
        elif values is None:  # a weighted_* key with affinity off: every value null, name order
            values = np.zeros(cp.shape[0])
        # Descending by value, ties by name ascending (decision 5): name = digest byte order.
        # Only the top max_predictions are ranked (top_ranked), and the future groups are
        # ordered by their first member in that ranking without ranking the rest
        # (_group_order); a NaN value (never seen; sorts last) ranks every candidate instead.
        digest = self._digest[cp]
        values = np.ascontiguousarray(values, np.float64)
        if np.isnan(values).any() or np.isnan(agg).any():
            by_name = np.lexsort((digest[:, 2], digest[:, 1], digest[:, 0]))
            ranked = by_name[np.argsort(-values[by_name], kind="stable")]
            top = ranked[: max(0, int(cfg.max_predictions))]
            groups, members = _first_members(ranked, group_of, gw.shape[0])
            by_agg = np.argsort(-agg[groups], kind="stable")
            group_order = (groups[by_agg], members[by_agg])
        else:
            top = top_ranked(values, digest, int(cfg.max_predictions))
            group_order = None  # _build orders the groups by (values, digest)

        with _collector_paused():
            predictions, future_potentials = self._build(
                stm, s, n, cfg, started, (top, values, digest, group_order), cp, sim, m_arr, r_arr, e1, e2, ev, conf, snr,
                itfdf, pot, confl, tfidf, prob, strength, info, prior, post, group_of, gw, gcount,
                agg, freq, local_of, pos_ptr, pos, (stats, whole), futures_json,
                (state_names, s_loc) if predictions_json else None, options)
            if options is not None and predictions_json:
                predictions = JSONList(orjson.dumps(predictions), len(predictions))
            return predictions, future_potentials

    def _options(self, s, stats: SymbolStats, cfg: PredictConfig, state, cp, m_arr, r_arr, e1, e2,
                 ev, conf, snr, itfdf, pot):
        """Apply fuzzy tokens and affinity weights to every candidate (kato-3.10.md §1.4b, §1.4d).

        Returns ((per-candidate (matches, anomalies) or None, an (nc × 4) array of the weighted
        values or None), evidence, confidence, snr, potential). Fuzzy matching changes M, hence
        evidence, confidence and snr; affinity changes potential; every other metric is the
        compiled one. options.py computes both for all candidates in compiled passes, with the
        direct engine's scorer and summation order (so the same bits).
        """
        local, s_loc, k, words, pm, counts, pos_ptr, pos, local_node, local_of = state
        n = len(s)
        tau, emotive = cfg.fuzzy_token_threshold, cfg.affinity_emotive
        per, jk, _ = _top_blocks(cp, e1, e2, self._flat, self._pstart, self._ebstart,
                                 self._ebounds, local_of, n, pos_ptr, pos, self._max_len)
        used = _opt.used_symbols(self, cp)
        lengths = self._pstart[cp + 1] - self._pstart[cp]
        lo = self._ebounds[self._ebstart[cp] + e1]
        hi = self._ebounds[self._ebstart[cp] + e2]
        fuzzy = best = None
        if tau > 0:
            best, best_score = _opt.fuzzy_best(self, local, cp, used, tau)
            fuzzy = _opt.FuzzyResults(self, s, s_loc, best, best_score)
        weighted = None
        if emotive is not None:
            weighted = _opt.weighted_columns(self, AffinityWeights(stats, emotive), s, s_loc, local_node,
                                             cp, e1, e2, used, per, jk, best)
        rho = hi - lo
        if fuzzy is not None:  # evidence, confidence and snr with the fuzzy M (engine.md §6.6-6.8)
            m = (best[:, s_loc] >= 0).sum(axis=1).astype(_I64) if n else np.zeros(cp.shape[0], _I64)
            ev = np.where(lengths > 0, m / np.maximum(lengths, 1), 0.0)
            conf = np.where(rho > 0, m / np.maximum(rho, 1), 0.0)
            extra = n - m
            den = 2.0 * m + extra
            snr = np.where(den != 0, (2.0 * m - extra) / np.where(den != 0, den, 1.0), 0.0)
        frag = r_arr - 1
        g = np.where(frag == -1, 0.0, 1 / np.maximum(frag + 1, 1))
        if weighted is not None:  # potential = (w_ev + w_conf)·w_snr + itfdf + g (§1.4d)
            pot = (weighted[:, 1] + weighted[:, 2]) * weighted[:, 3] + itfdf + g
        elif fuzzy is not None:
            pot = (ev + conf) * snr + itfdf + g
        return (fuzzy, weighted), ev, conf, snr, pot

    def _build(self, stm, s, n, cfg, started, ranked, cp, sim, m_arr, r_arr, e1, e2, ev, conf, snr,
               itfdf, pot, confl, tfidf, prob, strength, info, prior, post, group_of, gw, gcount,
               agg, freq, local_of, pos_ptr, pos, scope, futures_json, as_json, options=None):
        """Build the top predictions' 34-key objects (or, given ``as_json`` = (the state's
        distinct symbols, their local ids in the state), their JSON) and the future_potentials
        list (or its JSON bytes). ``ranked``: (the top candidates in rank order, the values and
        name digests they were ranked by, and the future groups' order as (groups, first
        members), or None to derive it from those values and digests)."""
        top, values, digest, group_order = ranked
        predictions = []
        # The top's entropies (per present, or whole pattern on a finalized node).
        entropies = self._entropies(cp[top], e1[top], e2[top], *scope)
        if options is not None:
            as_json = None  # built as objects; the caller serialises them
        if as_json is not None:
            predictions = predictions_json(
                self, stm, as_json, top, cp, e1, e2, sim, r_arr, ev, conf, snr, itfdf, pot, confl,
                tfidf, prob, strength, info, prior, post, freq, local_of, n, pos_ptr, pos,
                entropies)
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
            fuzzy, weighted = options if options is not None else (None, None)
            rows = zip(top.tolist(), self._names(tp), tp.tolist(), per.tolist(), all_events, e1[top].tolist(),
                       e2[top].tolist(), pot[top].tolist(), ev[top].tolist(), sim[top].tolist(),
                       (r_arr[top] - 1).astype(np.float64).tolist(), snr[top].tolist(),
                       confl[top].tolist(), info[top].tolist(), conf[top].tolist(),
                       itfdf[top].tolist(), tfidf[top].tolist(), prob[top].tolist(),
                       strength[top].tolist(), post[top].tolist(), prior[top].tolist(),
                       freq[top].tolist(), *(column.tolist() for column in entropies))
            for (c, name, p, r, events, a, b, v_pot, v_ev, v_sim, v_frag, v_snr, v_confl, v_info,
                 v_conf, v_itfdf, v_tfidf, v_prob, v_strength, v_post, v_prior, v_freq,
                 v_entropy, v_normalized, v_global) in rows:
                matches = []
                for j, k in jk[block: block + r]:
                    matches.extend(s[j: j + k])
                block += r
                present = events[a:b]
                anomalies = []
                if fuzzy is not None:  # kato-3.10.md §1.4b
                    matches, anomalies = list(fuzzy[c][0]), [dict(x) for x in fuzzy[c][1]]
                matched = set(matches)
                in_present = {x for e in present for x in e}
                if anomalies:  # decision 18: a fuzzy pair is neither missing nor extra
                    matched.update(x["expected"] for x in anomalies)
                    in_present.update(x["observed"] for x in anomalies)
                w_sim, w_ev, w_conf, w_snr = (None,) * 4 if weighted is None else weighted[c].tolist()
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
                    "anomalies": anomalies,
                    "weighted_similarity": w_sim,
                    "weighted_evidence": w_ev,
                    "weighted_confidence": w_conf,
                    "weighted_snr": w_snr,
                })

        started = self._phase("ranking_and_top", started)
        # One entry per distinct future; a group's future and its place among equal aggregate
        # potentials come from its first member in the full ranked list: groups in order of first
        # appearance there, then stably by descending aggregate potential.
        ngroups = gw.shape[0]
        if ngroups == 0:
            return predictions, (b"[]" if futures_json else [])
        if group_order is None:
            group_order, reps = _group_order(values, digest, group_of, agg)
        else:
            group_order, reps = group_order
        if futures_json:
            sym_json, sym_off = self._symbol_json()
            future_potentials = _futures_json(
                cp[reps], e2[reps], self._flat, self._pstart, self._ebstart, self._ebounds,
                sym_json, sym_off, self._sym_json_max, gcount[group_order],
                *float_texts(agg[group_order]), *float_texts(gw[group_order])).tobytes()
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


_kernels_ready = threading.Event()


def kernels_ready() -> bool:
    """Whether every kernel is loaded in this process (warm_up finished)."""
    return _kernels_ready.is_set()


def kernel_cache_dir() -> str | None:
    """Where numba keeps the compiled kernels on disk (next to the code, or NUMBA_CACHE_DIR)."""
    try:
        return os.path.dirname(_count_bound._cache._cache_path + os.sep)
    except AttributeError:
        return None


def _kernels() -> list[tuple[str, object]]:
    """(name, dispatcher) of every numba kernel defined in this package, in module order."""
    import importlib
    import pkgutil

    from numba.core.registry import CPUDispatcher

    package = __name__.rpartition(".")[0]
    found = []
    for info in pkgutil.iter_modules(importlib.import_module(package).__path__):
        module = importlib.import_module(f"{package}.{info.name}")
        found.extend((name, value) for name, value in vars(module).items()
                     if isinstance(value, CPUDispatcher) and value.__module__ == module.__name__)
    return found


def kernels_cached() -> bool:
    """Whether numba's on-disk cache holds every kernel for the current source (so warm_up only
    loads machine code). False when unsure."""
    try:
        kernels = _kernels()
        for _name, kernel in kernels:
            if not kernel._cache._cache_file._load_index():  # numba's index: {} if stale
                return False
        return bool(kernels)
    except Exception:  # numba's cache internals moved: assume nothing is cached
        return False


# A first start compiles the kernels in two processes at once (kato_web/services/kernels.py), each
# into numba's on-disk cache. The second part compiles these four kernels (and what they call),
# the first part all the others: ~11 s each of the ~22 s the top-level kernels take in one
# process on this machine (2026-12-04). The split only decides who compiles what; any kernel it
# misses is compiled by the serving process from the cache's gaps, as before, so a stale split
# costs time, never correctness (tests/unit/engine/test_index_kernels.py checks that the two
# parts leave no gap).
_SECOND_PART = frozenset({"_ensemble", "_count_bound", "_predictions_json", "_futures_json"})
# How long a part waits for the other to cache a kernel it cannot run as plain Python.
_BORROW_WAIT_S = 90.0


def compile_part(part: int, parts: int = 2) -> None:
    """Compile this process's share of the kernels into numba's cache (part 0 or 1 of 2).

    Both parts run the same warm-up. A kernel of the other part is not compiled here: it is
    loaded from the cache if the other part has already written it, otherwise its Python
    source runs instead (the warm-up's answers are thrown away; only the argument types reach
    the kernels compiled here, and they are the same). A kernel whose source cannot run as
    Python (it calls BLAS through an address) waits for the other part to cache it.
    """
    import warnings

    if not compiled.FAST:
        return
    if parts == 2:
        for name, kernel in _kernels():
            if (name in _SECOND_PART) != (part == 1):
                kernel._compile_for_args = _borrowed(kernel)
    with warnings.catch_warnings(), np.errstate(all="ignore"):
        warnings.simplefilter("ignore")  # the Python sources overflow where the kernels wrap
        warm_up()


def _borrowed(kernel):
    """A `_compile_for_args` for a kernel the other part compiles (see compile_part)."""
    import time

    def cached(signature) -> bool:
        return kernel._cache.load_overload(signature, kernel.targetctx) is not None

    def run_python_or_wait(*args):
        try:
            return kernel.py_func(*args)
        except Exception:
            signature = tuple(kernel.typeof_pyval(arg) for arg in args)
            deadline = time.monotonic() + _BORROW_WAIT_S
            while not cached(signature) and time.monotonic() < deadline:
                time.sleep(0.05)
            return kernel.compile(signature)(*args)  # loads it (or compiles it after all)

    def compile_for_args(*args):
        signature = tuple(kernel.typeof_pyval(arg) for arg in args)
        if cached(signature):
            return kernel.compile(signature)  # loads the other part's machine code
        return run_python_or_wait

    return compile_for_args


def warm_up() -> bool:
    """Load (or compile, the first time) every kernel, off the request path; return FAST."""
    if not compiled.FAST:
        return False
    if _kernels_ready.is_set():
        return True
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
    options = dataclasses.replace(stats, frequency={"a": 1, "b": 2}, affinity={"a": {"joy": 0.5}})
    for tau, emotive in ((0.5, None), (0.0, "joy"), (0.5, "joy")):  # options.py's kernels
        index.predict([["a"], ["cc"]], options, PredictConfig(recall_threshold=0.1, fuzzy_token_threshold=tau,
                                                              affinity_emotive=emotive))
    long_state = [[f"s{i}"] for i in range(70)] + [["a"]]
    index.predict(long_state, stats, PredictConfig(recall_threshold=0.0))
    one = np.ones(1, _I64)
    _first_members(one * 0, one * 0, 1)  # the ranking of a NaN value (PatternIndex._predict)
    _count_bound(index._indptr, index._positions, index._counts, one * 0, one, index._indexed,
                 index._n, index._pstart, 3, 0.5, 0, 10, 0, np.zeros(index._indexed, np.int32))
    _kernels_ready.set()
    return True
