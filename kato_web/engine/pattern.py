"""Pattern naming and the learn-time helpers for emotives and metadata (engine.md §4)."""

from __future__ import annotations

import hashlib
from collections import Counter
from dataclasses import dataclass, field
from typing import Any, Iterable

PATTERN_PREFIX = "PTRN|"


def _normalise_events(events: Iterable[Iterable[str]]) -> list[list[str]]:
    """Return `events` as a plain list of plain lists of str, rejecting non-str symbols."""
    normalised: list[list[str]] = []
    for event in events:
        symbols: list[str] = []
        for symbol in event:
            if not isinstance(symbol, str):
                # Hashing a non-str would silently give a name KATO can never produce.
                raise TypeError(f"pattern symbols must be str, got {type(symbol).__name__}")
            # str(symbol) turns a str subclass into a plain str, whose repr is the one KATO hashes.
            symbols.append(str(symbol))
        normalised.append(symbols)
    return normalised


def pattern_hash(events: Iterable[Iterable[str]]) -> str:
    """Return the bare SHA-1 digest of Python's str() of the event list (engine.md §4.1)."""
    return hashlib.sha1(str(_normalise_events(events)).encode("utf-8")).hexdigest()


def pattern_name(events: Iterable[Iterable[str]]) -> str:
    """Return the prefixed pattern name `PTRN|<digest>`."""
    return PATTERN_PREFIX + pattern_hash(events)


def strip_prefix(name: str) -> str:
    """Remove a leading `PTRN|` from `name` if present."""
    return name[len(PATTERN_PREFIX):] if name.startswith(PATTERN_PREFIX) else name


def total_symbols(events: Iterable[Iterable[str]]) -> int:
    """Return the number of symbols across all events."""
    return sum(len(list(event)) for event in events)


def average_emotives(dicts: list[dict[str, float]]) -> dict[str, float]:
    """Average each emotive over only the dicts that contain it (engine.md §4.4).

    Keys keep their first-appearance order. Each mean is `sum(values) / count` with the values
    summed left to right in accumulation order, so the float result is reproducible.
    """
    collected: dict[str, list[float]] = {}
    for record in dicts:
        for key, value in record.items():
            collected.setdefault(key, []).append(value)
    return {key: float(sum(values) / len(values)) for key, values in collected.items()}


def emotive_snapshot(accumulator: list[dict[str, float]]) -> dict[str, float]:
    """Return the learn-time emotives `e*`: the accumulator average without exact-zero keys."""
    return {key: value for key, value in average_emotives(accumulator).items() if value != 0}


def push_emotive_window(
    window: list[dict[str, float]], snapshot: dict[str, float], persistence: int
) -> list[dict[str, float]]:
    """Return a new window with `snapshot` appended (if non-empty), keeping the last `persistence`."""
    if persistence < 1:
        # window[-0:] would keep everything, so a zero persistence must not slip through.
        raise ValueError("persistence must be >= 1")
    updated = [dict(entry) for entry in window]
    if snapshot:
        updated.append(dict(snapshot))
    return updated[-persistence:]


def push_emotive_records(
    window: list[dict[str, float]], records: Iterable[dict[str, float]], persistence: int
) -> list[dict[str, float]]:
    """Return `window` with the learn's raw emotive dicts appended, keeping the last `persistence`.

    kato-3.10.md decision 16: one entry per observation that carried emotives (zeros kept),
    appended on every learn of the pattern; the window counts observations, not learns.
    """
    if persistence < 1:
        raise ValueError("persistence must be >= 1")
    updated = [dict(entry) for entry in window]
    updated.extend(dict(record) for record in records if record)
    return updated[-persistence:]


def accumulate_metadata(dicts: list[dict[str, Any]]) -> dict[str, list[str]]:
    """Collect, per key, the sorted unique `str(value)` over all dicts (engine.md §4.6).

    A value is stringified as a whole (a list value becomes one string such as "['a', 'b']"),
    as `str(value)` in engine.md §4.6 says. Keys are returned sorted, for determinism.
    """
    collected: dict[str, set[str]] = {}
    for record in dicts:
        for key, value in record.items():
            collected.setdefault(key, set()).add(str(value))
    return {key: sorted(collected[key]) for key in sorted(collected)}


def merge_metadata(old: dict[str, list[str]], new: dict[str, list[str]]) -> dict[str, list[str]]:
    """Merge two accumulated metadata dicts as the per-key sorted union (keys sorted)."""
    merged: dict[str, set[str]] = {}
    for source in (old, new):
        for key, values in source.items():
            merged.setdefault(key, set()).update(values)
    return {key: sorted(merged[key]) for key in sorted(merged)}


@dataclass(frozen=True)
class LearnRequest:
    """A pattern to store: the storage layer executes it (frequency, emotives, metadata, §4.5)."""

    name: str
    hash: str
    events: list[list[str]]
    length: int
    emotives: dict[str, float] = field(default_factory=dict)
    metadata: dict[str, list[str]] = field(default_factory=dict)
    # The raw emotive dicts of the learned observations (kato-3.10.md decision 16).
    emotive_records: tuple[dict[str, float], ...] = ()
    # (VCTR| name, summed vector) observed since the last learn: stored with it (decision 17).
    vectors: tuple[tuple[str, tuple[float, ...]], ...] = ()

    @property
    def affinity(self) -> dict[str, float]:
        """Return what this learn adds to each distinct symbol's affinity (kato-3.10.md §1.4c):
        the per-key mean of the raw emotive dicts, zeros kept."""
        return average_emotives(list(self.emotive_records))

    @property
    def symbol_counts(self) -> dict[str, int]:
        """Return symbol -> occurrences in this pattern, sorted by symbol (engine.md §4.5)."""
        counts = Counter(symbol for event in self.events for symbol in event)
        return {symbol: counts[symbol] for symbol in sorted(counts)}


def make_learn_request(
    events: Iterable[Iterable[str]],
    emotives_acc: list[dict[str, float]],
    metadata_acc: list[dict[str, Any]],
    vectors_acc: Iterable[Iterable[Any]] = (),
) -> LearnRequest | None:
    """Build the LearnRequest for `events`, or None when they hold fewer than 2 symbols (§4.2)."""
    normalised = _normalise_events(events)
    length = total_symbols(normalised)
    if length < 2:
        return None
    digest = hashlib.sha1(str(normalised).encode("utf-8")).hexdigest()
    return LearnRequest(
        name=PATTERN_PREFIX + digest,
        hash=digest,
        events=normalised,
        length=length,
        emotives=emotive_snapshot(emotives_acc),
        metadata=accumulate_metadata(metadata_acc),
        emotive_records=tuple(dict(record) for record in emotives_acc if record),
        vectors=tuple((str(name), tuple(float(x) for x in values)) for name, values in vectors_acc),
    )
