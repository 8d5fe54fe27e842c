"""Predictions for a session's STM against its node's knowledge (engine.md §5, api.md §7.3.7)."""
from __future__ import annotations

from kato_web.engine.predictor import JSONList, PredictConfig, predict
from kato_web.services import monitoring
from kato_web.services.context import Context
from kato_web.services.knowledge import as_seen_after, as_seen_by, node_knowledge
from kato_web.services.sessions import open_session_with_defaults
from kato_web.services.session_config import effective_config

# The session settings that change what predictions contain.
PREDICTION_KEYS = ("recall_threshold", "max_predictions", "use_token_matching", "rank_sort_algo",
                   "filter_pipeline", "length_min_ratio", "length_max_ratio", "jaccard_threshold",
                   "jaccard_min_overlap", "fuzzy_token_threshold", "affinity_emotive")


def prediction_settings(config: dict) -> dict:
    # fuzzy_token_threshold and affinity_emotive are in the effective config only once set
    # (kato-3.10.md §1.3); a missing one is None, which PredictConfig reads as its default.
    return {key: config.get(key) for key in PREDICTION_KEYS}


def compute_from_settings(ctx: Context, kb_id: str, stm: list, settings: dict,
                          node: dict | None = None, as_json: bool = False
                          ) -> tuple[list | JSONList, list | bytes]:
    """Return (predictions, future_potentials) for `stm` on the node's latest knowledge.

    `node`: the node row read after the request started, if the caller has it (saves a query).
    `as_json`: for a caller that only sends them, the predictions come as a JSONList (their
    JSON text and number) and future_potentials as the JSON bytes of that list: engine/index/
    writes them without building thousands of Python objects.
    """
    if not any(stm):  # one symbol is enough (kato-3.10.md decision 14); an empty STM is not
        return (JSONList(b"[]", 0), b"[]") if as_json else ([], [])
    knowledge = node_knowledge(ctx, kb_id, node)
    with knowledge.lock:
        result = predict(stm, knowledge.index, knowledge.stats(), PredictConfig.from_mapping(settings),
                         futures_json=as_json, predictions_json=as_json)
    monitoring.predictions_computed(len(result[0]))
    return result


def compute_in_transaction(conn, kb_id: str, stm: list, config: dict,
                           ctx: Context | None = None) -> tuple[list, list]:
    """Return predictions on the knowledge as `conn`'s own transaction sees it (its own learns too).

    With `ctx`, this worker's index is used, with `conn`'s newer rows applied provisionally;
    without, the index is built from `conn`'s rows.
    """
    if not any(stm):
        return [], []
    with as_seen_by(ctx, conn, kb_id) as (index, stats):
        result = predict(stm, index, stats, PredictConfig.from_mapping(prediction_settings(config)))
    monitoring.predictions_computed(len(result[0]))
    return result


def compute_after_learns(ctx: Context, kb_id: str, stm: list, config: dict, batch) -> tuple[JSONList, bytes]:
    """Return predictions on the node as the transaction's learns `batch` (repo.LearnedBatch,
    stored with a view) left it after the first of them (see knowledge.as_seen_after), as JSON
    (see compute_from_settings): they are only stored."""
    if not any(stm):
        return JSONList(b"[]", 0), b"[]"
    with as_seen_after(ctx, kb_id, batch.seq_before, batch.view) as (index, stats):
        result = predict(stm, index, stats, PredictConfig.from_mapping(prediction_settings(config)),
                         futures_json=True, predictions_json=True)
    monitoring.predictions_computed(len(result[0]))
    return result


def compute(ctx: Context, kb_id: str, stm: list, config: dict, node: dict | None = None,
            as_json: bool = False) -> tuple[list | JSONList, list | bytes]:
    return compute_from_settings(ctx, kb_id, stm, prediction_settings(config), node, as_json)


def session_predictions(ctx: Context, session_id: str, as_json: bool = False) -> dict:
    """Compute predictions from the session's STM with its settings; changes nothing stored.

    `as_json`: "predictions" is a JSONList and "future_potentials" JSON bytes (see
    compute_from_settings).
    """
    # One statement: the session (sliding its expiry) with the node's change sequence as it
    # stood when this request reached the database. The worker's index is refreshed only when
    # that moved, so a predictions call sees every learn committed before it started.
    with ctx.db.statements() as conn:
        row, defaults = open_session_with_defaults(ctx, conn, session_id, with_node=True)
    config = effective_config(row["config"] or {}, defaults)
    stm = (row["state"] or {}).get("stm") or []  # decoded for this request: no copy needed
    node = row["node_version"]
    predictions, future_potentials = compute(ctx, row["kb_id"], stm, config, node, as_json)
    return {"predictions": predictions, "future_potentials": future_potentials, "session_id": session_id,
            "processor_id": None, "count": len(predictions), "time": None, "unique_id": None}
