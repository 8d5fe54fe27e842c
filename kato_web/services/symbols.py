"""Per-node symbol statistics and emotive affinity (kato-3.10.md §1.1, §1.4c).

Read straight from the database, so every worker answers the latest committed learns. An
unknown node or symbol answers the empty forms, as KATO does.
"""
from __future__ import annotations

from kato_web.services.context import Context
from kato_web.store import repositories as repo


def symbol_stats(ctx: Context, kb_id: str) -> dict:
    """Return f(σ) and pmf(σ) of every symbol of the node, keyed by symbol (in symbol order)."""
    with ctx.db.transaction(write=False) as conn:
        rows = repo.symbol_stats(conn, kb_id)
    return {"symbols": {symbol: {"name": symbol, "frequency": int(frequency),
                                 "pattern_member_frequency": int(pmf)}
                        for symbol, frequency, pmf in rows},
            "node_id": kb_id}


def all_affinities(ctx: Context, kb_id: str) -> dict:
    """Return the affinity sums of every symbol that has some."""
    with ctx.db.transaction(write=False) as conn:
        affinities = repo.symbol_affinities(conn, kb_id)
    return {"affinities": affinities, "node_id": kb_id}


def symbol_affinity(ctx: Context, kb_id: str, symbol: str) -> dict:
    """Return one symbol's affinity sums ({} for a symbol without any)."""
    with ctx.db.transaction(write=False) as conn:
        affinity = repo.symbol_affinities(conn, kb_id, symbol).get(symbol, {})
    return {"symbol": symbol, "affinity": affinity, "node_id": kb_id}
