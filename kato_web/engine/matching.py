"""Symbol matching for predictions: LCS similarity, difflib matching blocks, extraction, alignment.

engine.md §5.2–§5.5. Symbols are compared by value (``==``); a pattern ``p`` and the state ``s`` are
flat lists of symbols, a pattern's events and the STM are lists of events.
"""

from __future__ import annotations

from bisect import bisect_left
from dataclasses import dataclass
from typing import Hashable, Sequence

from rapidfuzz import fuzz, process
from rapidfuzz.distance import LCSseq

__all__ = [
    "Block",
    "lcs_length",
    "token_similarity",
    "char_similarity",
    "similarity",
    "BlockMatcher",
    "matching_blocks",
    "Extraction",
    "extract",
    "Alignment",
    "event_span",
    "split",
    "align",
    "prefix_sums",
    "fuzzy_matches",
]

Block = tuple[int, int, int]  # (i in p, j in s, size), like difflib's Match without the sentinel


def _as_ids(a: Sequence[Hashable], b: Sequence[Hashable]) -> tuple[list[int], list[int]]:
    """Encode two sequences as small ints so rapidfuzz compares values, never hashes."""
    ids: dict[Hashable, int] = {}
    b_ids = [ids.setdefault(x, len(ids)) for x in b]
    # Elements of a that never occur in b cannot match; dropping them leaves the LCS unchanged.
    a_ids = [ids[x] for x in a if x in ids]
    return a_ids, b_ids


def lcs_length(a: Sequence[Hashable], b: Sequence[Hashable]) -> int:
    """Return the length of the longest common subsequence of two symbol sequences."""
    # rapidfuzz hashes multi-character strings with hash(); mapping to ints first rules out any
    # collision, so the result is the exact LCS.
    a_ids, b_ids = _as_ids(a, b)
    if not a_ids:
        return 0
    return int(LCSseq.similarity(a_ids, b_ids))


def token_similarity(p: Sequence[str], s: Sequence[str]) -> float:
    """Return 2·LCS(p, s)/(|p| + |s|), 0.0 when both are empty (engine.md §5.2 token mode)."""
    total = len(p) + len(s)
    if total == 0:
        return 0.0
    return (2 * lcs_length(p, s)) / total


def char_similarity(p: Sequence[str], s: Sequence[str]) -> float:
    """Return fuzz.ratio of the space-joined sequences divided by 100 (§5.2 character mode)."""
    return fuzz.ratio(" ".join(p), " ".join(s)) / 100


def similarity(p: Sequence[str], s: Sequence[str], use_token_matching: bool = True) -> float:
    """Return the similarity of pattern p to state s in the configured mode."""
    if use_token_matching:
        return token_similarity(p, s)
    return char_similarity(p, s)


class BlockMatcher:
    """Compute difflib's matching blocks (``autojunk=False``) of many sequences against one ``b``.

    The index of ``b`` is built once, so matching every candidate pattern against the same state
    costs only the walk over the pattern. Without junk and without the popular-element heuristic,
    difflib's ``find_longest_match`` reduces to the dynamic programme below; its extension loops
    can never grow a maximal match, so they are omitted. The result equals
    ``SequenceMatcher(None, a, b, autojunk=False).get_matching_blocks()[:-1]`` (property-tested).
    """

    __slots__ = ("b", "b2j")

    def __init__(self, b: Sequence[Hashable]):
        self.b = b
        b2j: dict[Hashable, list[int]] = {}
        for j, x in enumerate(b):
            b2j.setdefault(x, []).append(j)
        self.b2j = b2j

    def hits(self, a: Sequence[Hashable]) -> list[tuple[int, list[int]]]:
        """Return (i, positions of a[i] in b) for every i whose element occurs in b."""
        get = self.b2j.get
        return [(i, js) for i, x in enumerate(a) if (js := get(x)) is not None]

    def blocks(self, a: Sequence[Hashable], hits: list | None = None) -> list[Block]:
        """Return the merged matching blocks of a against b, without difflib's sentinel."""
        if hits is None:
            hits = self.hits(a)
        if not hits:
            return []
        found: list[Block] = []
        queue = [(0, len(a), 0, len(self.b))]
        while queue:
            alo, ahi, blo, bhi = queue.pop()
            besti, bestj, bestsize = alo, blo, 0
            # j2len[j] = length of the match ending at a[i-1], b[j]; difflib resets it whenever
            # a[i] has no occurrence in b, which is a gap in ``hits``.
            j2len: dict[int, int] = {}
            previous = -2
            for i, js in hits:
                if i < alo:
                    continue
                if i >= ahi:
                    break
                if i != previous + 1:
                    j2len = {}
                previous = i
                get = j2len.get
                new: dict[int, int] = {}
                for j in js:
                    if j < blo:
                        continue
                    if j >= bhi:
                        break
                    k = new[j] = get(j - 1, 0) + 1
                    if k > bestsize:
                        besti, bestj, bestsize = i - k + 1, j - k + 1, k
                j2len = new
            if bestsize:
                found.append((besti, bestj, bestsize))
                if alo < besti and blo < bestj:
                    queue.append((alo, besti, blo, bestj))
                if besti + bestsize < ahi and bestj + bestsize < bhi:
                    queue.append((besti + bestsize, ahi, bestj + bestsize, bhi))
        found.sort()
        merged: list[Block] = []
        i1 = j1 = k1 = 0
        for i2, j2, k2 in found:
            if i1 + k1 == i2 and j1 + k1 == j2:
                k1 += k2
            else:
                if k1:
                    merged.append((i1, j1, k1))
                i1, j1, k1 = i2, j2, k2
        if k1:
            merged.append((i1, j1, k1))
        return merged


def matching_blocks(a: Sequence[Hashable], b: Sequence[Hashable]) -> list[Block]:
    """Return difflib's matching blocks of a against b (autojunk off), without the sentinel."""
    return BlockMatcher(b).blocks(a)


@dataclass(frozen=True, slots=True)
class Extraction:
    """The flat extraction of one pattern against the state (engine.md §5.4)."""

    matches: list[str]  # matched state symbols, state order, with multiplicity
    m: int  # |matches|
    number_of_blocks: int  # r
    a0: int  # flat past length
    q: int  # flat present length


def extract(p_length: int, s: Sequence[str], blocks: Sequence[Block]) -> Extraction:
    """Build matches, M, r, a0 and q from the matching blocks of a pattern of p_length symbols."""
    if not blocks:
        return Extraction([], 0, 0, 0, p_length)
    matches: list[str] = []
    for _, j, k in blocks:
        matches.extend(s[j : j + k])
    first_i = blocks[0][0]
    last_i, _, last_k = blocks[-1]
    return Extraction(matches, len(matches), len(blocks), first_i, last_i + last_k - first_i)


@dataclass(frozen=True, slots=True)
class Alignment:
    """A pattern's events split around the matched span, with missing and extras (§5.5)."""

    past: list[list[str]]
    present: list[list[str]]
    future: list[list[str]]
    missing: list[list[str]]
    extras: list[list[str]]


def prefix_sums(events: Sequence[Sequence[str]]) -> tuple[int, ...]:
    """Return C_0 = 0, C_1, …, C_m: the flat offsets of the event boundaries."""
    out = [0]
    for event in events:
        out.append(out[-1] + len(event))
    return tuple(out)


def event_span(
    events: Sequence[Sequence[str]], offsets: Sequence[int], extraction: Extraction
) -> tuple[int, int]:
    """Return (e1, e2): the present is events[e1:e2], after the tail-event correction (§5.5)."""
    a0, q, matches = extraction.a0, extraction.q, extraction.matches
    e1 = bisect_left(offsets, a0)
    e2 = bisect_left(offsets, a0 + q, e1)
    # Tail-event correction: by value, so it also fires on an aligned boundary when the preceding
    # event happens to hold the first matched symbol (engine.md §7.4).
    if e1 > 0 and matches and matches[0] in events[e1 - 1]:
        e1 -= 1
    return e1, e2


def split(
    events: Sequence[Sequence[str]],
    e1: int,
    e2: int,
    matches: Sequence[str],
    stm: Sequence[Sequence[str]],
    anomalies: Sequence[dict] = (),
) -> Alignment:
    """Build past/present/future, missing (per present event) and extras (per STM event).

    A fuzzy-matched pair (an anomaly, kato-3.10.md §1.4b) shows in neither list: its expected
    symbol is left out of ``missing`` and its observed symbol out of ``extras`` (decision 18).
    """
    past = [list(e) for e in events[:e1]]
    present = [list(e) for e in events[e1:e2]]
    future = [list(e) for e in events[e2:]]
    matched = set(matches)
    in_present = {x for e in present for x in e}
    if anomalies:
        matched.update(a["expected"] for a in anomalies)
        in_present = in_present.union(a["observed"] for a in anomalies)
    missing = [[x for x in e if x not in matched] for e in present]
    extras = [[x for x in e if x not in in_present] for e in stm]
    return Alignment(past, present, future, missing, extras)


def fuzzy_matches(p: Sequence[str], s: Sequence[str], tau: float) -> tuple[list[str], list[dict]]:
    """Return (matches, anomalies) of fuzzy token matching (kato-3.10.md §1.4b steps 1 and 3).

    For each state symbol t, in state order with duplicates, the best pattern symbol u by
    ``fuzz.ratio`` over the whole flat pattern with a score >= 100·τ (inclusive; the first best
    in pattern order on ties, as ``process.extractOne`` picks it). A match appends t to
    ``matches``; a match with t != u also appends {observed, expected, similarity} to
    ``anomalies``. The state symbols without a match are the flat extras of snr.
    """
    matches: list[str] = []
    anomalies: list[dict] = []
    if not p:
        return matches, anomalies
    cutoff = 100 * tau
    choices = list(p)
    best: dict[str, tuple | None] = {}  # the same state symbol twice: the same best match
    for t in s:
        if t in best:
            found = best[t]
        else:
            found = best[t] = process.extractOne(t, choices, scorer=fuzz.ratio, processor=None,
                                                 score_cutoff=cutoff)
        if found is None:
            continue
        matches.append(t)
        u, score = found[0], found[1]
        if u != t:
            anomalies.append({"observed": t, "expected": u, "similarity": score / 100})
    return matches, anomalies


def align(
    events: Sequence[Sequence[str]],
    offsets: Sequence[int],
    extraction: Extraction,
    stm: Sequence[Sequence[str]],
) -> Alignment:
    """Split the pattern events around the matched span and derive missing and extras (§5.5)."""
    e1, e2 = event_span(events, offsets, extraction)
    return split(events, e1, e2, extraction.matches, stm)
