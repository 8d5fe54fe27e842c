"""Each worker's in-memory copy of a node's long-term memory, kept fresh from the database.

The database is the truth. A worker keeps, per node, the patterns and symbol
statistics it needs for predictions, and before every use asks the node row for its
change sequence: nothing changed → use the copy; newer learns → read only the rows
whose `updated_seq` is newer; a clear-all (new generation) → reload. So a predictions
call sees every learn committed before it started, whichever worker learned it.
"""
from __future__ import annotations

import threading
from dataclasses import dataclass, field

from kato_web.engine.predictor import PatternRecord, SymbolStats
from kato_web.services.context import Context
from kato_web.store import repositories as repo


@dataclass
class NodeKnowledge:
    kb_id: str
    generation: int = -1
    seq: int = -1
    patterns: dict[str, PatternRecord] = field(default_factory=dict)
    pmf: dict[str, int] = field(default_factory=dict)
    n_symbols: int = 0
    total_unique_patterns: int = 0
    total_pattern_frequencies: int = 0
    lock: threading.RLock = field(default_factory=threading.RLock)

    def stats(self) -> SymbolStats:
        return SymbolStats(pmf=self.pmf, n_symbols=self.n_symbols,
                           total_unique_patterns=self.total_unique_patterns,
                           total_pattern_frequencies=self.total_pattern_frequencies)


def _record(row: dict) -> PatternRecord:
    return PatternRecord(name=row["name"], events=row["events"], frequency=int(row["frequency"]),
                         emotives=row["emotives"] or [])


def _registry(ctx: Context) -> tuple[dict, threading.Lock]:
    if "knowledge" not in ctx.local:
        ctx.local["knowledge"] = ({}, threading.Lock())
    return ctx.local["knowledge"]


def node_knowledge(ctx: Context, kb_id: str) -> NodeKnowledge:
    """Return this worker's copy of `kb_id`, refreshed to the latest committed state.

    The caller must hold `knowledge.lock` while it reads the copy.
    """
    nodes, registry_lock = _registry(ctx)
    with registry_lock:
        knowledge = nodes.get(kb_id)
        if knowledge is None:
            knowledge = nodes[kb_id] = NodeKnowledge(kb_id)
    with knowledge.lock:
        refresh(ctx, knowledge)
    return knowledge


def refresh(ctx: Context, knowledge: NodeKnowledge) -> None:
    with ctx.db.transaction(write=False, snapshot=True) as conn:
        node = repo.get_node(conn, knowledge.kb_id)
        if node is None:
            knowledge.generation, knowledge.seq = -1, -1
            knowledge.patterns, knowledge.pmf = {}, {}
            knowledge.n_symbols = knowledge.total_unique_patterns = knowledge.total_pattern_frequencies = 0
            return
        if node["generation"] == knowledge.generation and node["change_seq"] == knowledge.seq:
            return
        if node["generation"] != knowledge.generation:
            knowledge.patterns, knowledge.pmf, after = {}, {}, -1
        else:
            after = knowledge.seq
        upto = node["change_seq"]
        for row in repo.patterns_changed_since(conn, knowledge.kb_id, after, upto):
            knowledge.patterns[row["name"]] = _record(row)
        for symbol, pmf, _freq in repo.symbols_changed_since(conn, knowledge.kb_id, after, upto):
            knowledge.pmf[symbol] = int(pmf)
        knowledge.generation, knowledge.seq = node["generation"], upto
        knowledge.n_symbols = int(node["symbol_count"])
        knowledge.total_unique_patterns = int(node["total_unique_patterns"])
        knowledge.total_pattern_frequencies = int(node["total_pattern_frequencies"])


def forget(ctx: Context, kb_id: str | None = None) -> int:
    """Drop this worker's cached copies (all, or one node); return how many were dropped."""
    nodes, registry_lock = _registry(ctx)
    with registry_lock:
        if kb_id is None:
            count = len(nodes)
            nodes.clear()
            return count
        return 1 if nodes.pop(kb_id, None) is not None else 0
