"""Predictions for a session's STM against its node's knowledge (engine.md §5, api.md §7.3.7)."""
from __future__ import annotations

from kato_web.engine.predictor import PatternRecord, PredictConfig, SymbolStats, predict
from kato_web.store import repositories as repo
from kato_web.services.context import Context
from kato_web.services.knowledge import node_knowledge
from kato_web.services.sessions import open_session, server_defaults
from kato_web.services.session_config import effective_config
from kato_web.engine.stm import SessionState

# The session settings that change what predictions contain.
PREDICTION_KEYS = ("recall_threshold", "max_predictions", "use_token_matching", "rank_sort_algo",
                   "filter_pipeline", "length_min_ratio", "length_max_ratio", "jaccard_threshold",
                   "jaccard_min_overlap")


def prediction_settings(config: dict) -> dict:
    return {key: config[key] for key in PREDICTION_KEYS}


def compute_from_settings(ctx: Context, kb_id: str, stm: list, settings: dict) -> tuple[list, list]:
    """Return (predictions, future_potentials) for `stm` on the node's latest knowledge."""
    if sum(len(event) for event in stm) < 2:
        return [], []
    knowledge = node_knowledge(ctx, kb_id)
    with knowledge.lock:
        return predict(stm, knowledge.patterns.values(), knowledge.stats(),
                       PredictConfig.from_mapping(settings))


def compute_in_transaction(conn, kb_id: str, stm: list, config: dict) -> tuple[list, list]:
    """Return predictions on the knowledge as `conn`'s own transaction sees it (slow path)."""
    if sum(len(event) for event in stm) < 2:
        return [], []
    node = repo.get_node(conn, kb_id) or {}
    seq = node.get("change_seq", 0)
    patterns = [PatternRecord(name=r["name"], events=r["events"], frequency=int(r["frequency"]),
                              emotives=r["emotives"] or [])
                for r in sorted(repo.patterns_changed_since(conn, kb_id, -1, seq), key=lambda r: r["name"])]
    pmf = {sym: int(p) for sym, p, _f in repo.symbols_changed_since(conn, kb_id, -1, seq)}
    stats = SymbolStats(pmf=pmf, n_symbols=int(node.get("symbol_count", 0)),
                        total_unique_patterns=int(node.get("total_unique_patterns", 0)),
                        total_pattern_frequencies=int(node.get("total_pattern_frequencies", 0)))
    return predict(stm, patterns, stats, PredictConfig.from_mapping(prediction_settings(config)))


def compute(ctx: Context, kb_id: str, stm: list, config: dict) -> tuple[list, list]:
    return compute_from_settings(ctx, kb_id, stm, prediction_settings(config))


def session_predictions(ctx: Context, session_id: str) -> dict:
    """Compute predictions from the session's STM with its settings; changes nothing stored."""
    with ctx.db.transaction() as conn:
        row = open_session(ctx, conn, session_id)
        config = effective_config(row["config"] or {}, server_defaults(ctx, conn))
    stm = SessionState.from_dict(row["state"]).stm
    predictions, future_potentials = compute(ctx, row["kb_id"], stm, config)
    return {"predictions": predictions, "future_potentials": future_potentials, "session_id": session_id,
            "processor_id": None, "count": len(predictions), "time": None, "unique_id": None}
