"""Each worker's in-memory copy of a node's long-term memory, kept fresh from the database.

The database is the truth. A worker keeps, per node, a `PatternIndex` (engine/index/: the
patterns in learn order as numpy arrays, an inverted index, the symbols' pmf) and the node
counters, and before every use asks the node row for its change sequence: nothing changed →
use the copy; newer learns → read only the rows whose `updated_seq` is newer (new patterns are
appended in `created_seq` order, re-learned ones get their new frequency and emotives, changed
symbols their pmf); a clear-all (new generation) → reload, streamed in learn order. So a
predictions call sees every learn committed before it started, whichever worker learned it.

Memory: about 200 bytes per pattern of ~11 symbols (docs/benchmarks-scale.md), against several
kilobytes for Python pattern objects.
"""
from __future__ import annotations

import contextlib
import gc
import json
import threading
from collections import ChainMap, OrderedDict
from dataclasses import dataclass, field
from datetime import datetime, timezone

from kato_web.engine import index as engine_index
from kato_web.engine.index import PatternIndex
from kato_web.engine.types import SymbolStats
from kato_web.engine.vectors import VectorSet
from kato_web.services import monitoring
from kato_web.services.context import Context
from kato_web.store import repositories as repo
from kato_web.web import gcpause, heap

try:
    from orjson import loads as _loads  # several times faster than json on a batch of events
except ImportError:  # pragma: no cover - orjson is pinned in requirements.txt
    _loads = json.loads

# After a reload this large, the load's garbage is collected and the survivors are frozen out
# of the collector's generations, so later collections do not walk them again.
_FREEZE_AFTER = 10_000


@dataclass
class NodeKnowledge:
    kb_id: str
    generation: int = -1
    seq: int = -1
    index: PatternIndex = field(default_factory=PatternIndex)
    n_symbols: int = 0
    total_unique_patterns: int = 0
    total_pattern_frequencies: int = 0
    # kato-3.10.md (decisions 15 and 19): f(σ), the affinity sums and the finalized flag; the
    # engine reads them from the SymbolStats that stats() hands to every prediction.
    frequency: dict = field(default_factory=dict)
    affinity: dict = field(default_factory=dict)
    finalized: bool = False
    lock: threading.RLock = field(default_factory=threading.RLock)
    footprint: int = 0  # estimated bytes held (see _footprint), updated after each refresh
    # Loaded by gunicorn's master before the fork (preload): the pages are shared by every
    # worker, so the copy counts against no worker's budget and is never evicted. A full
    # reload (clear-all) makes a private copy again.
    shared: bool = False

    @property
    def patterns(self) -> PatternIndex:
        """The node's patterns in learn order (``len``, and ``values()`` yields PatternRecords)."""
        return self.index

    @property
    def pmf(self):
        """A read-only Mapping symbol → pattern-member frequency."""
        return self.index.pmf()

    def stats(self) -> SymbolStats:
        return SymbolStats(pmf=self.index.pmf(), n_symbols=self.n_symbols,
                           total_unique_patterns=self.total_unique_patterns,
                           total_pattern_frequencies=self.total_pattern_frequencies,
                           frequency=self.frequency, affinity=self.affinity, finalized=self.finalized)

    def apply_symbols(self, symbols: list[tuple], affinities: list[tuple]) -> None:
        """Take changed symbol rows (symbol, pmf, frequency) and affinity rows (symbol, emotive, sum)."""
        for symbol, pmf, freq in symbols:
            self.index.set_pmf(symbol, int(pmf))
            self.frequency[symbol] = int(freq)
        for symbol, emotive, total in affinities:
            self.affinity.setdefault(symbol, {})[emotive] = float(total)


def _registry(ctx: Context) -> tuple[OrderedDict, threading.Lock]:
    if "knowledge" not in ctx.local:
        ctx.local["knowledge"] = (OrderedDict(), threading.Lock())  # least recently used first
    return ctx.local["knowledge"]


# Python objects the numpy arrays do not count: each pattern's name (a 40-character str, 89
# bytes, and its slots in object arrays and dicts) and each symbol's name, id entry and JSON
# text. Measured with tracemalloc on 100,000 synthetic patterns of ~11 symbols: 152 bytes per
# pattern beyond nbytes() with the name strings not counted, so ~250 with them.
_BYTES_PER_PATTERN = 250
_BYTES_PER_SYMBOL = 200
_BYTES_PER_NODE = 16 * 1024


def _footprint(knowledge: NodeKnowledge) -> int:
    index = knowledge.index
    return (index.nbytes() + len(index) * _BYTES_PER_PATTERN + index.n_symbols * _BYTES_PER_SYMBOL
            + len(index._emotives) * 200 + _BYTES_PER_NODE)


def _budget(ctx: Context) -> int:
    return int(getattr(ctx.config, "index_memory_mb", 0) or 0) * 1024 * 1024


def _evict(ctx: Context, keep: str) -> None:
    """Drop least-recently-used nodes while the worker's indexes exceed the budget.

    `keep` (the node just used) is never dropped, so a node larger than the budget on its own
    is still served; it is the first to go once another node is used. A request still reading
    a dropped node keeps its reference: the memory is freed when it finishes.
    """
    budget = _budget(ctx)
    nodes, registry_lock = _registry(ctx)
    evicted = []
    with registry_lock:
        total = sum(k.footprint for k in nodes.values() if not k.shared)
        if budget:
            for kb_id in list(nodes):
                if total <= budget:
                    break
                if kb_id == keep or nodes[kb_id].shared:
                    continue
                total -= nodes.pop(kb_id).footprint
                evicted.append(kb_id)
    for kb_id in evicted:
        monitoring.knowledge_forgotten(kb_id)
    monitoring.index_cache_state(total, budget, len(evicted))


def node_knowledge(ctx: Context, kb_id: str, node: dict | None = None) -> NodeKnowledge:
    """Return this worker's copy of `kb_id`, refreshed to the latest committed state.

    `node` may be the node row as the caller's transaction just read it (after the request
    started): when the copy is already at its generation and change sequence, no query is made.
    The caller must hold `knowledge.lock` while it reads the copy.
    """
    nodes, registry_lock = _registry(ctx)
    with registry_lock:
        knowledge = nodes.get(kb_id)
        if knowledge is None:
            knowledge = nodes[kb_id] = NodeKnowledge(kb_id)
            monitoring.index_cache_used(hit=False)
        else:
            nodes.move_to_end(kb_id)
            monitoring.index_cache_used(hit=True)
    with knowledge.lock:
        if (node is not None and node.get("generation") == knowledge.generation
                and node.get("change_seq") == knowledge.seq):
            monitoring.knowledge_used("hit")
            return knowledge
        refresh(ctx, knowledge)
        knowledge.footprint = _footprint(knowledge)
    _evict(ctx, keep=kb_id)
    return knowledge


def preload(ctx: Context, node_ids: tuple[str, ...], kb_id_of) -> list[tuple[str, int | None]]:
    """Load nodes into this process's cache now; return (kb_id, patterns) of each, with None
    for a node the database does not hold (yet).

    gunicorn's master calls this (wsgi.py, KATO_PRELOAD_NODES) before it forks the workers, so
    they inherit the indexes and share their pages copy-on-write instead of each building its
    own copy (docs/scaling.md, "Memory per instance"). ``("*",)`` loads every node, largest
    first, while the estimated footprints stay within KATO_INDEX_MEMORY_MB. The arrays are
    filled to their final form here (postings, string order, JSON texts of the symbols), so
    the workers' predictions only read them; a later learn writes only the pages it touches.
    The database connections are closed at the end: none may cross the fork.
    """
    try:
        if tuple(node_ids) == ("*",):
            with ctx.db.transaction(write=False) as conn:
                rows = repo.list_nodes(conn)
            rows.sort(key=lambda r: (-int(r["total_unique_patterns"]), r["kb_id"]))
            budget, planned, kb_ids = _budget(ctx), 0, []
            for row in rows:
                estimate = int(row["total_unique_patterns"]) * (_BYTES_PER_PATTERN + 64) + _BYTES_PER_NODE
                if budget and kb_ids and planned + estimate > budget:
                    continue
                planned += estimate
                kb_ids.append(row["kb_id"])
        else:
            kb_ids = list(dict.fromkeys(kb_id_of(node) for node in node_ids))
        loaded = []
        for kb_id in kb_ids:
            knowledge = node_knowledge(ctx, kb_id)
            with knowledge.lock:
                if knowledge.generation < 0:  # no such node (yet): nothing to share
                    loaded.append((kb_id, None))
                    continue
                knowledge.index.prepare_shared()
                knowledge.footprint = _footprint(knowledge)
                knowledge.shared = True
                loaded.append((kb_id, len(knowledge.index)))
        for kb_id, count in loaded:
            if count is None:
                forget(ctx, kb_id)
        return loaded
    finally:
        ctx.db.dispose()


def _load_all(conn, knowledge: NodeKnowledge, upto: int) -> None:
    """Rebuild the index from every pattern of the node, streamed in learn order."""
    index = PatternIndex()
    with gcpause.paused():  # the decoded batches are acyclic; collections would only rescan them
        _stream_into(conn, knowledge.kb_id, upto, index)
    knowledge.index = index
    knowledge.frequency, knowledge.affinity = {}, {}
    knowledge.apply_symbols(repo.symbols_changed_since(conn, knowledge.kb_id, -1, upto),
                            repo.affinity_changed_since(conn, knowledge.kb_id, -1, upto))
    index.build_postings()
    if len(index) >= _FREEZE_AFTER:
        gc.collect()
        gc.freeze()
        heap.trim()


def _stream_into(conn, kb_id: str, upto: int, index: PatternIndex) -> None:
    for rows in repo.iter_patterns_in_learn_order(conn, kb_id, upto, batch=10000):
        names, events, frequencies, emotives, seqs = zip(*rows)
        # One decode per batch: the rows' JSON texts joined into one array.
        events = _loads("[" + ",".join(events) + "]")
        emotives = [json.loads(text) if text not in ("[]", "null", None) else () for text in emotives]
        index.add_columns(names, events, frequencies, emotives, seqs)


def _apply_changes(conn, knowledge: NodeKnowledge, after: int, upto: int) -> bool:
    """Apply the rows changed in (after, upto] to the index; False if a reload is needed."""
    return _apply_rows(knowledge, after, repo.patterns_changed_since(conn, knowledge.kb_id, after, upto),
                       repo.symbols_changed_since(conn, knowledge.kb_id, after, upto),
                       repo.affinity_changed_since(conn, knowledge.kb_id, after, upto))


def _apply_rows(knowledge: NodeKnowledge, after: int, patterns: list[dict], symbols: list[tuple],
                affinities: list[tuple] = ()) -> bool:
    """Apply changed pattern and symbol rows (updated after `after`) to the index; False if a
    reload is needed."""
    index = knowledge.index
    created, updated = [], []
    for row in patterns:
        (created if row["created_seq"] > after else updated).append(row)
    for row in updated:
        position = index.position_of_seq(int(row["created_seq"]))
        if position is None:
            return False
        index.update(position, int(row["frequency"]), row["emotives"] or ())
    # Learn order (created_seq) in every worker: the engine's ensemble float sums follow it,
    # so this makes results identical everywhere.
    index.add_many((row["name"], row["events"], row["frequency"], row["emotives"], row["created_seq"])
                   for row in sorted(created, key=lambda r: r["created_seq"]))
    knowledge.apply_symbols(symbols, affinities)
    return True


def _take_counters(knowledge: NodeKnowledge, node: dict) -> None:
    knowledge.generation, knowledge.seq = node["generation"], node["change_seq"]
    knowledge.n_symbols = int(node["symbol_count"])
    knowledge.total_unique_patterns = int(node["total_unique_patterns"])
    knowledge.total_pattern_frequencies = int(node["total_pattern_frequencies"])
    knowledge.finalized = bool(node.get("finalized", False))


def refresh(ctx: Context, knowledge: NodeKnowledge) -> None:
    """Bring the worker's copy up to the node's latest committed state.

    The common case — the same generation, some learns since — takes one statement (node row
    and changed rows in one snapshot); a new generation (clear-all), a first load or changes
    that cannot be applied incrementally reload in a snapshot transaction.
    """
    if knowledge.generation >= 0:
        with ctx.db.statements(write=False) as conn:
            node, patterns, symbols, affinities = repo.node_changes_since(conn, knowledge.kb_id, knowledge.seq)
        if node is not None and node["generation"] == knowledge.generation:
            if node["change_seq"] == knowledge.seq:
                monitoring.knowledge_used("hit")
                return
            if _apply_rows(knowledge, knowledge.seq, patterns, symbols, affinities):
                _take_counters(knowledge, node)
                monitoring.knowledge_used("refresh", knowledge.kb_id, len(knowledge.index),
                                          len(knowledge.pmf))
                return
    with ctx.db.transaction(write=False, snapshot=True) as conn:
        node = repo.get_node(conn, knowledge.kb_id)
        if node is None:
            knowledge.generation, knowledge.seq = -1, -1
            knowledge.index = PatternIndex()
            knowledge.n_symbols = knowledge.total_unique_patterns = knowledge.total_pattern_frequencies = 0
            knowledge.frequency, knowledge.affinity, knowledge.finalized = {}, {}, False
            monitoring.knowledge_used("reload", knowledge.kb_id)
            return
        if node["generation"] == knowledge.generation and node["change_seq"] == knowledge.seq:
            monitoring.knowledge_used("hit")
            return
        # Incremental changes were tried above (or there is no copy yet): load everything.
        _load_all(conn, knowledge, node["change_seq"])
        knowledge.shared = False  # this worker's own copy now
        _take_counters(knowledge, node)
    monitoring.knowledge_used("reload", knowledge.kb_id, len(knowledge.index), len(knowledge.pmf))


@contextlib.contextmanager
def as_seen_by(ctx: Context | None, conn, kb_id: str):
    """Yield (index, stats): the node's knowledge as `conn`'s transaction sees it.

    `conn`'s own uncommitted learns included. When `conn` sees what this worker's copy holds,
    that copy is used as is; when it sees more (learns earlier in the same transaction), those
    rows are applied to the worker's copy provisionally — undone when the block exits, so no
    other request ever sees them — under the copy's lock. Without a context (or after a clear-all
    inside the transaction) the index is built from `conn`'s rows.
    """
    node = repo.get_node(conn, kb_id) or {}
    stats = SymbolStats(pmf={}, n_symbols=int(node.get("symbol_count", 0)),
                        total_unique_patterns=int(node.get("total_unique_patterns", 0)),
                        total_pattern_frequencies=int(node.get("total_pattern_frequencies", 0)))
    upto = int(node.get("change_seq", 0))
    finalized = bool(node.get("finalized", False))
    if ctx is not None:
        knowledge = node_knowledge(ctx, kb_id, node)
        with knowledge.lock:
            if knowledge.generation == node.get("generation"):
                if knowledge.seq == upto:
                    yield knowledge.index, knowledge.stats()
                    return
                with knowledge.index.provisional():
                    scratch = NodeKnowledge(kb_id, index=knowledge.index)
                    if _apply_changes(conn, scratch, knowledge.seq, upto):
                        # The transaction's changed symbols over the copy's, without copying it.
                        affinity = {symbol: {**knowledge.affinity.get(symbol, {}), **sums}
                                    for symbol, sums in scratch.affinity.items()}
                        yield knowledge.index, SymbolStats(
                            knowledge.index.pmf(), stats.n_symbols, stats.total_unique_patterns,
                            stats.total_pattern_frequencies,
                            frequency=ChainMap(scratch.frequency, knowledge.frequency),
                            affinity=ChainMap(affinity, knowledge.affinity), finalized=finalized)
                        return
    fresh = NodeKnowledge(kb_id)
    if upto >= 0:
        _load_all(conn, fresh, upto)
    yield fresh.index, SymbolStats(fresh.index.pmf(), stats.n_symbols, stats.total_unique_patterns,
                                   stats.total_pattern_frequencies, frequency=fresh.frequency,
                                   affinity=fresh.affinity, finalized=finalized)


@dataclass
class NodeVectors:
    """This worker's copy of a node's learned vectors (kato-3.10.md decision 17)."""

    kb_id: str
    generation: int = -1
    seq: int = -1
    vectors: VectorSet = field(default_factory=VectorSet)
    lock: threading.Lock = field(default_factory=threading.Lock)
    footprint: int = 0  # bytes held, counted against KATO_INDEX_MEMORY_MB with the indexes

    def nearest(self, vector, k, extra=()):
        """The engine's lookup (engine/stm.py): under the lock, as a refresh may be adding rows."""
        with self.lock:
            return self.vectors.nearest(vector, k, extra)


def node_vectors(ctx: Context, conn, kb_id: str) -> NodeVectors:
    """Return this worker's copy of the node's vectors, refreshed to what `conn` sees.

    Like the pattern index, the copy follows the node's generation (clear-all) and change
    sequence: vectors are only ever added, each with the sequence of the learn that stored it,
    so a refresh reads just the rows learned since the copy's sequence.
    """
    nodes, registry_lock = _registry(ctx)
    with registry_lock:
        cache = _vector_registry(ctx)
        copy = cache.get(kb_id)
        if copy is None:
            copy = cache[kb_id] = NodeVectors(kb_id)
        else:
            cache.move_to_end(kb_id)
    node = repo.get_node(conn, kb_id)
    generation, upto = (node["generation"], node["change_seq"]) if node else (-1, -1)
    with copy.lock:
        if copy.generation == generation and copy.seq >= upto:
            return copy  # (ahead: another request refreshed it to learns committed since)
        if copy.generation != generation:
            copy.vectors, copy.seq = VectorSet(), -1
        copy.vectors.add_bytes(repo.vectors_since(conn, kb_id, copy.seq, upto))
        copy.generation, copy.seq = generation, upto
        copy.footprint = copy.vectors.nbytes()
    _evict_vectors(ctx, keep=kb_id)
    return copy


def _vector_registry(ctx: Context) -> OrderedDict:
    """This worker's NodeVectors by kb id, least recently used first (guarded by the registry lock)."""
    return ctx.local.setdefault("vectors", OrderedDict())


def _evict_vectors(ctx: Context, keep: str) -> None:
    """Drop least-recently-used vector copies while indexes and vectors together exceed the
    KATO_INDEX_MEMORY_MB budget (the node just used is kept, as _evict does)."""
    budget = _budget(ctx)
    if not budget:
        return
    nodes, registry_lock = _registry(ctx)
    with registry_lock:
        cache = _vector_registry(ctx)
        total = (sum(k.footprint for k in nodes.values() if not k.shared)
                 + sum(v.footprint for v in cache.values()))
        for kb_id in list(cache):
            if total <= budget:
                break
            if kb_id != keep:
                total -= cache.pop(kb_id).footprint


def forget(ctx: Context, kb_id: str | None = None) -> int:
    """Drop this worker's cached copies (all, or one node); return how many were dropped."""
    nodes, registry_lock = _registry(ctx)
    monitoring.knowledge_forgotten(kb_id)
    with registry_lock:
        vectors = _vector_registry(ctx)
        if kb_id is None:
            vectors.clear()
        else:
            vectors.pop(kb_id, None)
        if kb_id is None:
            count = len(nodes)
            nodes.clear()
        else:
            count = 1 if nodes.pop(kb_id, None) is not None else 0
        total = sum(k.footprint for k in nodes.values() if not k.shared)
    monitoring.index_cache_state(total, _budget(ctx))
    return count


def forget_counted(ctx: Context, kb_id: str | None = None) -> tuple[int, int]:
    """Drop this worker's cached copies (all, or one node); return (patterns, symbols) dropped."""
    nodes, registry_lock = _registry(ctx)
    with registry_lock:
        dropped = list(nodes.values()) if kb_id is None else [k for k in [nodes.get(kb_id)] if k]
    patterns = symbols = 0
    for knowledge in dropped:
        with knowledge.lock:
            patterns += len(knowledge.index)
            symbols += len(knowledge.pmf)
    forget(ctx, kb_id)
    return patterns, symbols


def invalidate(ctx: Context, session_id: str | None) -> dict:
    """Answer POST /cache/invalidate: drop this worker's copies (all, or the session's node).

    Only the copies go; long-term memory is untouched (api.md §7.6). An unknown session drops
    nothing.
    """
    kb_id = None
    if session_id:
        with ctx.db.transaction(write=False) as conn:
            row = repo.get_session(conn, session_id)
        kb_id = row["kb_id"] if row else None
    patterns = symbols = 0
    if not session_id or kb_id is not None:
        patterns, symbols = forget_counted(ctx, kb_id)
    return {"status": "success", "patterns_invalidated": patterns, "symbols_invalidated": symbols,
            "session_id": session_id, "timestamp": datetime.now(timezone.utc).isoformat()}


def _warm_up() -> None:
    try:
        engine_index.warm_up()
        warm = VectorSet()  # the vector screening kernel (engine/vectors.py)
        for k in range(16):
            warm.add(str(k), [float(k), 0.0])
        warm.nearest([0.5, 0.0])
    except Exception:  # pragma: no cover - a failed warm-up only means a slower first call
        pass


_warm_up_started = threading.Event()


def start_warm_up() -> None:
    """Load (or compile, the first time) the prediction kernels in the background, once per
    process, so no request pays for it (create_app calls this in every worker)."""
    if not _warm_up_started.is_set() and not engine_index.kernels_ready():
        _warm_up_started.set()
        threading.Thread(target=_warm_up, name="kato-warm-up", daemon=True).start()
