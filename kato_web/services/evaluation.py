"""How well a node predicts the next event: the protocol, the metrics and the settings sweep.

One place for the evaluation that ``bench/accuracy.py`` (public and synthetic data, against CPT+
and simple baselines) and the admin page's evaluate mode (a node's own held-out patterns) both
run. Pure: no Flask, no SQL; the engine is driven in-process (``PatternIndex.predict``, the same
call a predictions request makes), so the time per query measured here is the engine's own
time for one prediction call, without HTTP, JSON or the database.

The protocol
------------
* A sequence is a list of events, each a list of symbols; symbols are sorted inside an event
  (as observing with ``sort_symbols`` on does) and empty events are dropped.
* Training: each training sequence is learned as ONE pattern, in order, exactly as a client's
  ``learn`` after observing it would (a repeated sequence raises the pattern's frequency; pmf,
  N_sym, TUP and TPF follow engine.md §4.5). Whole sequences rather than auto-learned windows:
  a prediction's ``future`` is the rest of a learned pattern after the matched span, so the
  longer the stored episode, the more there is to predict from; auto-learn cuts the stream into
  consecutive chunks, and a query at a chunk boundary would find no future at all.
* Queries: for each test sequence, one cut point t is drawn (seeded) among those whose context
  holds at least 2 symbols (KATO predicts nothing from fewer, engine.md §5.1); the STM is the
  last ``max_context`` events before t and the truth is event t. Every predictor sees the same
  queries.
* Guesses: KATO's answer to "what comes next" is read two ways. ``predictions``: the first
  event of each ranked prediction's ``future``, in rank order, repeats removed (what a client
  reading ``predictions`` gets; depends on ``rank_sort_algo`` and ``max_predictions``).
  ``futures``: the first event of each ``future_potentials`` entry, in order (KATO's ensemble
  vote over every candidate; independent of ``max_predictions``).
* Metrics over all queries: hit@1 (the first guess is the true event), hit@k (it is among the
  first k), coverage (the query got any guess), MRR (mean of 1/rank of the true event, 0 when
  absent), and the time of the prediction call. A query without a guess counts as a miss.
  Events compare as sets of symbols.

A prediction call's cost and its accuracy at several ``max_predictions`` come from ONE call at
the largest value: the engine ranks every candidate and truncates afterwards (engine.md §5.7),
so the top m predictions of that call are exactly those of a call with ``max_predictions = m``.
The time reported is that of the call at the largest ``max_predictions``.
"""
from __future__ import annotations

import bisect
import dataclasses
import hashlib
import math
import random
import statistics
import time
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from typing import Callable, Iterable, Mapping, Sequence

from kato_web.engine.index import PatternIndex
from kato_web.engine.predictor import RANK_KEYS, PredictConfig, SymbolStats, predict

Event = tuple[str, ...]

THRESHOLDS: tuple[float, ...] = tuple(round(i / 10, 1) for i in range(10))  # 0.0 … 0.9
MAX_PREDICTIONS: tuple[int, ...] = (1, 3, 10, 100)
SOURCES = ("predictions", "futures")


class EvaluationStopped(Exception):
    """The sweep was cancelled or ran out of time; ``rows`` holds what was finished."""

    def __init__(self, reason: str, rows: list):
        super().__init__(reason)
        self.reason = reason
        self.rows = rows


# ---------------------------------------------------------------- data and protocol

def normalise_sequence(sequence: Iterable[Iterable[str]], sort_symbols: bool = True) -> list[list[str]]:
    """Return the events as lists of str, sorted inside each event, without empty events."""
    events = []
    for event in sequence:
        symbols = [str(s) for s in event]
        if symbols:
            events.append(sorted(symbols) if sort_symbols else symbols)
    return events


def split(sequences: Sequence, test_share: float, seed: int) -> tuple[list, list]:
    """Split sequences into (train, test) at random but reproducibly; both keep input order."""
    if not 0.0 < test_share < 1.0:
        raise ValueError("test_share must be between 0 and 1")
    order = list(range(len(sequences)))
    random.Random(seed).shuffle(order)
    n_test = int(round(len(sequences) * test_share))
    test_ids = set(order[:n_test])
    train = [s for i, s in enumerate(sequences) if i not in test_ids]
    test = [s for i, s in enumerate(sequences) if i in test_ids]
    return train, test


@dataclass(frozen=True)
class Query:
    """One next-event question: the STM (context events) and the true next event."""

    context: tuple[Event, ...]
    target: Event


def make_queries(sequences: Iterable[Sequence[Sequence[str]]], seed: int, max_context: int = 10,
                 limit: int | None = None) -> list[Query]:
    """Draw one query per sequence (seeded cut point; context of at least 2 symbols)."""
    if max_context < 1:
        raise ValueError("max_context must be at least 1")
    rng = random.Random(seed)
    queries = []
    for sequence in sequences:
        events = [tuple(e) for e in sequence]
        valid = []
        for t in range(1, len(events)):
            context = events[max(0, t - max_context):t]
            if sum(len(e) for e in context) >= 2:
                valid.append(t)
        if not valid:
            continue
        t = valid[rng.randrange(len(valid))]
        queries.append(Query(tuple(events[max(0, t - max_context):t]), events[t]))
        if limit is not None and len(queries) >= limit:
            break
    return queries


def pattern_digest(events: Sequence[Sequence[str]]) -> str:
    """Return the bare pattern name KATO gives these events (engine.md §4.1)."""
    return hashlib.sha1(str([list(e) for e in events]).encode("utf-8")).hexdigest()


def build_knowledge(sequences: Iterable[Sequence[Sequence[str]]],
                    frequencies: Iterable[int] | None = None) -> tuple[PatternIndex, SymbolStats]:
    """Learn each sequence as one pattern, in order, as KATO would; return the index and stats.

    ``frequencies`` (one per sequence) stands for a pattern learned that many times, as a
    node's stored patterns carry it. Sequences of fewer than 2 symbols are not learned (§4.2).
    """
    frequency_of: dict[str, int] = {}
    events_of: dict[str, list] = {}
    pmf: Counter = Counter()
    freqs = iter(frequencies) if frequencies is not None else None
    for sequence in sequences:
        count = next(freqs) if freqs is not None else 1
        events = [list(e) for e in sequence]
        if sum(len(e) for e in events) < 2:
            continue
        name = pattern_digest(events)
        if name in frequency_of:
            frequency_of[name] += count
            continue
        frequency_of[name] = count
        events_of[name] = events
        pmf.update({x for e in events for x in e})
    index = PatternIndex()
    index.add_many((name, events_of[name], frequency_of[name], (), i)
                   for i, name in enumerate(frequency_of))
    index.set_pmfs(sorted(pmf.items()))
    index.build_postings()
    stats = SymbolStats(index.pmf(), len(pmf), len(frequency_of), len(frequency_of))
    return index, stats


# ---------------------------------------------------------------- metrics

def event_key(event: Iterable[str]) -> Event:
    """Return the event as a comparable key: its symbols as a sorted tuple (a set, in order)."""
    return tuple(sorted(event))


def first_events(futures: Iterable[Sequence[Sequence[str]] | None]) -> list[Event]:
    """Return the first event of each non-empty future, in order, each distinct event once."""
    guesses, seen = [], set()
    for future in futures:
        if not future:
            continue
        key = event_key(future[0])
        if key not in seen:
            seen.add(key)
            guesses.append(key)
    return guesses


def rank_of(guesses: Sequence[Event], target: Event) -> int | None:
    """Return the 1-based rank of the target among the guesses, or None."""
    key = event_key(target)
    for i, guess in enumerate(guesses):
        if guess == key:
            return i + 1
    return None


@dataclass(frozen=True)
class Scores:
    """Accuracy over a set of queries (each a share of all queries, 0 … 1)."""

    queries: int
    hit1: float
    hitk: float
    coverage: float
    mrr: float
    k: int

    def as_dict(self) -> dict:
        return dataclasses.asdict(self)


def score(guess_lists: Sequence[Sequence[Event]], targets: Sequence[Event], k: int = 5) -> Scores:
    """Score ranked guess lists against the true events: hit@1, hit@k, coverage and MRR."""
    if len(guess_lists) != len(targets):
        raise ValueError("one guess list per target")
    if k < 1:
        raise ValueError("k must be at least 1")
    n = len(targets)
    hit1 = hitk = covered = 0
    rr = 0.0
    for guesses, target in zip(guess_lists, targets):
        if guesses:
            covered += 1
        rank = rank_of(guesses, target)
        if rank is not None:
            hit1 += rank == 1
            hitk += rank <= k
            rr += 1.0 / rank
    if n == 0:
        return Scores(0, 0.0, 0.0, 0.0, 0.0, k)
    return Scores(n, hit1 / n, hitk / n, covered / n, rr / n, k)


# ---------------------------------------------------------------- simple baselines

class MarkovBaseline:
    """First-order Markov: rank next events by how often they followed the last event."""

    name = "markov-1"

    def __init__(self, sequences: Iterable[Sequence[Sequence[str]]]):
        self.next: dict[Event, Counter] = defaultdict(Counter)
        for sequence in sequences:
            keys = [event_key(e) for e in sequence]
            for a, b in zip(keys, keys[1:]):
                self.next[a][b] += 1

    def guesses(self, context: Sequence[Sequence[str]], k: int) -> list[Event]:
        counts = self.next.get(event_key(context[-1])) if context else None
        if not counts:
            return []
        # Most frequent first, ties by the event itself: deterministic.
        return [e for e, _ in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))[:k]]


class PopularBaseline:
    """Most frequent events of the training data, whatever the context."""

    name = "most-frequent"

    def __init__(self, sequences: Iterable[Sequence[Sequence[str]]]):
        counts = Counter(event_key(e) for s in sequences for e in s)
        self.ranked = [e for e, _ in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))]

    def guesses(self, context: Sequence[Sequence[str]], k: int) -> list[Event]:
        return self.ranked[:k]


def evaluate_baseline(model, queries: Sequence[Query], k: int = 5, depth: int = 100) -> dict:
    """Score a baseline (``guesses(context, depth)``) on the queries; time per query in ms."""
    guess_lists, times = [], []
    for q in queries:
        started = time.perf_counter()
        guess_lists.append(model.guesses(q.context, depth))
        times.append((time.perf_counter() - started) * 1000.0)
    result = score(guess_lists, [q.target for q in queries], k).as_dict()
    result.update(_timing(times))
    result["model"] = model.name
    return result


# ---------------------------------------------------------------- the KATO sweep

def _timing(times_ms: Sequence[float]) -> dict:
    if not times_ms:
        return {"ms_median": 0.0, "ms_mean": 0.0, "ms_p95": 0.0}
    ordered = sorted(times_ms)
    return {"ms_median": statistics.median(ordered), "ms_mean": statistics.fmean(ordered),
            "ms_p95": ordered[min(len(ordered) - 1, int(math.ceil(0.95 * len(ordered))) - 1)]}


@dataclass
class SweepSpec:
    """What to sweep: thresholds × max_predictions × rank_sort_algo, and the other settings."""

    thresholds: Sequence[float] = THRESHOLDS
    max_predictions: Sequence[int] = MAX_PREDICTIONS
    rank_sort_algos: Sequence[str] = ("potential",)
    k: int = 5
    settings: Mapping[str, object] = field(default_factory=dict)  # other prediction settings

    def validate(self) -> None:
        if not self.thresholds or any(not (0.0 <= t <= 1.0) for t in self.thresholds):
            raise ValueError("thresholds must be within 0 … 1")
        if not self.max_predictions or any(int(m) < 1 for m in self.max_predictions):
            raise ValueError("max_predictions values must be at least 1")
        for algo in self.rank_sort_algos:
            if algo not in RANK_KEYS:
                raise ValueError(f"unknown rank_sort_algo: {algo!r}")
        if self.k < 1:
            raise ValueError("k must be at least 1")

    @property
    def steps(self) -> int:
        """How many (rank_sort_algo, threshold) passes over the queries the sweep makes."""
        return len(self.rank_sort_algos) * len(self.thresholds)


def sweep(index: PatternIndex, stats: SymbolStats, queries: Sequence[Query], spec: SweepSpec,
          progress: Callable[[int, int], None] | None = None,
          should_stop: Callable[[], str | None] | None = None) -> list[dict]:
    """Predict every query at every (rank_sort_algo, threshold); return one row per setting.

    Rows: ``{"rank_sort_algo", "threshold", "max_predictions", "source", "queries", "hit1",
    "hitk", "coverage", "mrr", "k", "ms_median", "ms_mean", "ms_p95", "candidates_mean"}``;
    the ``futures`` rows have ``max_predictions`` None. ``progress(done, total)`` is called
    after each query; ``should_stop()`` is asked as often and returns a reason to stop
    (cancel, time limit), upon which EvaluationStopped carries the finished rows.
    """
    spec.validate()
    mps = sorted({int(m) for m in spec.max_predictions})
    widest = mps[-1]
    targets = [q.target for q in queries]
    total = spec.steps * len(queries)
    done = 0
    rows: list[dict] = []
    for algo in spec.rank_sort_algos:
        for theta in spec.thresholds:
            config = PredictConfig.from_mapping({**spec.settings, "recall_threshold": float(theta),
                                                 "max_predictions": widest, "rank_sort_algo": algo})
            by_mp: dict[int, list] = {m: [] for m in mps}
            futures_guesses, times, counts = [], [], []
            for q in queries:
                stm = [list(e) for e in q.context]
                started = time.perf_counter()
                predictions, future_potentials = predict(stm, index, stats, config)
                times.append((time.perf_counter() - started) * 1000.0)
                counts.append(len(predictions))
                futures = [p["future"] for p in predictions]
                for m in mps:
                    by_mp[m].append(first_events(futures[:m]))
                futures_guesses.append(first_events(fp["future"] for fp in future_potentials))
                done += 1
                if progress is not None:
                    progress(done, total)
                if should_stop is not None:
                    reason = should_stop()
                    if reason:
                        raise EvaluationStopped(reason, rows)
            timing = _timing(times)
            common = {"rank_sort_algo": algo, "threshold": float(theta), **timing,
                      "predictions_mean": statistics.fmean(counts) if counts else 0.0}
            for m in mps:
                rows.append({**common, "max_predictions": m, "source": "predictions",
                             **score(by_mp[m], targets, spec.k).as_dict()})
            rows.append({**common, "max_predictions": None, "source": "futures",
                         **score(futures_guesses, targets, spec.k).as_dict()})
    return rows


def suggest(rows: Sequence[dict], source: str = "predictions", rank_sort_algo: str | None = None) -> dict | None:
    """Pick the best setting: highest hit@1, then hit@k, then MRR, then coverage.

    Among equals the highest threshold wins (fewest candidates: the cheapest call), then the
    smallest max_predictions. Timings never decide, so the same data gives the same answer.
    """
    pool = [r for r in rows if r["source"] == source
            and (rank_sort_algo is None or r["rank_sort_algo"] == rank_sort_algo)]
    if not pool:
        return None
    return max(pool, key=lambda r: (r["hit1"], r["hitk"], r["mrr"], r["coverage"], r["threshold"],
                                    -(r["max_predictions"] or 0)))


def nearest(values: Sequence[float], value: float) -> float:
    """Return the grid value closest to ``value`` (to mark the current setting on a grid)."""
    ordered = sorted(values)
    i = bisect.bisect_left(ordered, value)
    near = [v for v in ordered[max(0, i - 1):i + 1]]
    return min(near, key=lambda v: (abs(v - value), v))
