"""A node's patterns as flat integer arrays: append, update, read back (engine.md §4).

``PatternColumns`` keeps every pattern of a node in learn order in flat integer arrays (symbols
interned to ids), an inverted index symbol → pattern positions with per-pattern counts (CSR,
built by ``candidates._build_postings``), and the symbol table (pmf). It supports the
incremental updates a worker's cache needs: append new patterns (learn order = ``created_seq``
order), update the frequency and emotives of an existing one, set a symbol's pmf, and
``provisional`` changes that are undone on exit. It reads patterns back as lists of str or
``PatternRecord`` objects. ``PatternIndex`` (pattern_index.py) predicts over it.

Memory: per pattern about 4 bytes per symbol (flat ids) + 6 bytes per distinct symbol (postings)
+ 8 bytes per event boundary (its offset, and the hash of the future from there) + 48 bytes of
fixed columns (offsets, frequency, created_seq,
digest), and per distinct symbol its JSON text + 8 bytes once futures were written as JSON; see
docs/benchmarks-scale.md for measured figures.
"""

from __future__ import annotations

from contextlib import contextmanager
from typing import Iterable, Iterator, Mapping, Sequence

import numpy as np
import orjson

from ..types import PatternRecord
from . import compiled
from .candidates import _build_postings, _distinct_counts
from .compiled import jit as _jit

__all__ = ["PatternColumns"]

_I32 = np.int32
_I64 = np.int64


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


_FNV = np.uint64(1099511628211)
_FNV0 = np.uint64(14695981039346656037)


@_jit
def _future_hashes(flat, pstart, ebstart, ebounds, lo, hi, out):
    """Write, for each pattern p in lo..hi - 1 and each of its events e, a hash of its future
    events[e:] (each event as a multiset: its ids sorted) at out[ebstart[p] + e], and 0 at
    e = m (no future). ``_ensemble`` groups futures by these (engine.md §6.15), checking
    equality whenever two hashes meet, so the hash only has to be the same for equal futures.
    """
    longest = 1
    for p in range(lo, hi):
        longest = max(longest, pstart[p + 1] - pstart[p])
    buf = np.empty(longest, _I64)
    for p in range(lo, hi):
        a = pstart[p]
        b0 = ebstart[p]
        m = ebstart[p + 1] - b0 - 1
        out[b0 + m] = 0
        h = _FNV0
        for e in range(m - 1, -1, -1):
            start = a + ebounds[b0 + e]
            size = a + ebounds[b0 + e + 1] - start
            for t in range(size):  # insertion sort: events hold a few symbols
                v = np.int64(flat[start + t])
                u = t - 1
                while u >= 0 and buf[u] > v:
                    buf[u + 1] = buf[u]
                    u -= 1
                buf[u + 1] = v
            g = (_FNV0 ^ np.uint64(size + 1)) * _FNV
            for t in range(size):
                g = (g ^ np.uint64(buf[t] + 7)) * _FNV
            h = (h ^ g) * _FNV
            h = h ^ (h >> np.uint64(29))
            out[b0 + e] = np.uint32(h & np.uint64(0xFFFFFFFF))


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

    def __init__(self, index: "PatternColumns"):
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


class PatternColumns:
    """One node's patterns in learn order, interned to integer arrays, with an inverted index.

    ``PatternIndex`` adds prediction. Not thread-safe: callers serialise updates and
    predictions (the knowledge cache holds a lock).
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
        self._sym_json_max = 0  # the longest of those texts, in bytes
        self._pmf = np.zeros(16, _I64)
        self._has_pmf = np.zeros(16, np.bool_)
        self._n = 0
        self._flat = np.zeros(64, _I32)
        self._flat_len = 0
        self._pstart = np.zeros(17, _I64)
        self._ebounds = np.zeros(64, _I32)
        # Parallel to _ebounds: the hash of each pattern's future from each event on
        # (_future_hashes), so a prediction groups futures without hashing them (4 B per event).
        self._fhash = np.zeros(64, np.uint32)
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
        self._fhash = _grow(self._fhash, self._eb_len + len(bounds))
        self._eb_len += len(bounds)
        self._pstart[i + 1] = self._flat_len
        self._ebstart[i + 1] = self._eb_len
        if compiled.COMPILED:
            _future_hashes(self._flat, self._pstart, self._ebstart, self._ebounds, i, i + 1,
                           self._fhash)
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
        self._fhash = _grow(self._fhash, eb_len + bounds.shape[0])
        self._eb_len = eb_len + bounds.shape[0]
        self._pstart[i + 1: j + 1] = flat_len + np.cumsum(lengths)
        self._ebstart[i + 1: j + 1] = eb_len + np.cumsum(ev_per + 1)
        self._freq[i:j] = np.asarray(frequencies, dtype=_I64)
        self._seq[i:j] = seq_arr
        if compiled.COMPILED:
            _future_hashes(self._flat, self._pstart, self._ebstart, self._ebounds, i, j, self._fhash)
        if compiled.FAST:
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
            # 8 bytes of slack past the last text: the JSON writers copy 8 bytes at a time.
            self._sym_json = _grow(self._sym_json, used + len(joined) + 8)
            self._sym_json[used: used + len(joined)] = np.frombuffer(joined, np.uint8)
            self._sym_joff = _grow(self._sym_joff, n + 1)
            self._sym_joff[done + 1: n + 1] = used + np.cumsum(
                np.fromiter(map(len, texts), _I64, count=n - done))
            self._sym_json_n = n
            self._sym_json_max = max(self._sym_json_max, max(map(len, texts)))
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

    def copy(self):
        """Return an independent copy (updates to either never show in the other)."""
        other = type(self).__new__(type(self))
        for key, value in self.__dict__.items():
            if isinstance(value, np.ndarray):
                value = value.copy()
            elif isinstance(value, (dict, list)):
                value = value.copy()  # emotive windows are replaced on update, never mutated
            setattr(other, key, value)
        return other

    def nbytes(self) -> int:
        """Return the bytes held by the numpy arrays (capacity included)."""
        arrays = (self._pmf, self._has_pmf, self._flat, self._pstart, self._ebounds, self._fhash,
                  self._ebstart,
                  self._freq, self._seq, self._distinct, self._digest, self._indptr,
                  self._positions, self._counts, self._srank, self._sym_json, self._sym_joff)
        return int(sum(a.nbytes for a in arrays))

    def prepare_shared(self) -> None:
        """Build now everything a prediction would otherwise build on first use (the postings
        of every pattern, the symbols' string order and JSON texts, the count-bound scratch),
        so processes forked after this only read the arrays and share their pages."""
        if self._indexed != self._n:
            self.build_postings()
        self._string_order()
        self._symbol_json()
        if compiled.FAST and self._acc.shape[0] < self._indexed:
            self._acc = np.zeros(self._indexed, np.int32)

    def build_postings(self) -> None:
        """(Re)build the inverted index over every pattern."""
        if not compiled.FAST:
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
