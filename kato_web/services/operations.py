"""Session-scoped KATO operations: observe, learn, STM, clear, percept and cognition data.

Each mutating call holds the session row lock for its whole transaction (api.md §4.7),
so concurrent requests on one session never lose an event. Learning goes through
`repo.learn_patterns`, which serialises on the node row and upserts atomically.
"""
from __future__ import annotations

import time

import orjson

from kato_web.engine import stm as stm_engine
from kato_web.engine import vectors as vector_engine
from kato_web.engine.observation import Observation, VectorDimensionError
from kato_web.engine.pattern import LearnRequest, merge_metadata, push_emotive_records
from kato_web.services import knowledge, monitoring, predict, security
from kato_web.services.context import Context
from kato_web.services.session_config import effective_config
from kato_web.services.sessions import open_session, open_session_with_defaults, slide_time
from kato_web.store import repositories as repo
from kato_web.web.errors import ApiError


def _stm_config(config: dict) -> stm_engine.StmConfig:
    return stm_engine.StmConfig(max_pattern_length=config["max_pattern_length"], stm_mode=config["stm_mode"],
                                sort_symbols=config["sort_symbols"],
                                process_predictions=config["process_predictions"])


def _owned_state(data: dict | None) -> stm_engine.SessionState:
    """Wrap a state the database driver just decoded for this request, without copying it.

    SessionState.from_dict deep-copies, which is right for shared data; a freshly decoded
    row is ours alone, and the engine copies before it changes anything. Copying the
    whole STM twice per observe was a cost that grew with its length.
    """
    data = data or {}
    return stm_engine.SessionState(stm=data.get("stm") or [], emotives=data.get("emotives") or [],
                                   metadata=data.get("metadata") or [], time=int(data.get("time") or 0),
                                   percept=data.get("percept") or {}, vectors=data.get("vectors") or [])


def _state_row(state: stm_engine.SessionState) -> dict:
    """Return the JSON dict stored for `state` (no copy: it is serialised at once and dropped)."""
    row = {"stm": state.stm, "emotives": state.emotives, "metadata": state.metadata, "time": state.time,
           "percept": state.percept}
    if state.vectors:  # most sessions never observe a vector: their rows stay as they were
        row["vectors"] = state.vectors
    return row


def _load(ctx: Context, conn, session_id: str):
    """Lock the session's row and read it (with the server defaults) for a write.

    Its expiry is slid by the write itself (`_save`): sliding it here as well would make two new
    versions of the row, each with the whole state, per request.
    """
    row, defaults = open_session_with_defaults(ctx, conn, session_id, slide_later=True)
    config = effective_config(row["config"] or {}, defaults)
    return row, config, _owned_state(row["state"])


def _save(ctx: Context, conn, session_id: str, **values) -> None:
    """Write a session `_load` read, sliding its expiry."""
    slide_at = slide_time(ctx)
    if values or slide_at is not None:
        repo.update_session_written(conn, session_id, slide_at=slide_at, **values)


def store_learn(ctx: Context, conn, kb_id: str, request: LearnRequest, persistence: int) -> dict:
    """Record one learned pattern in the node's long-term memory (engine.md §4).

    kato-3.10.md: the raw emotive dicts join the pattern's window (decision 16), their mean is
    added to every distinct symbol's affinity (§1.4c), and the session's pending vectors are
    stored on the node (decision 17), all in the learn's transaction.
    """
    return store_learns(ctx, conn, kb_id, [request], persistence).results[0]


def store_learns(ctx: Context, conn, kb_id: str, requests: list[LearnRequest], persistence: int,
                 view_after: int | None = None) -> repo.LearnedBatch:
    """Record learned patterns, in order, as `store_learn` would one by one, in a few statements.

    `view_after=n`: the answer's view is the node as it stood after the first n (see
    repo.learn_patterns).
    """
    if requests:
        monitoring.count("patterns_learned", len(requests))
    return repo.learn_patterns(conn, kb_id, [_pattern_learn(request, persistence) for request in requests],
                               now=ctx.clock(), view_after=view_after)


def _pattern_learn(request: LearnRequest, persistence: int) -> repo.PatternLearn:
    return repo.PatternLearn(
        request.hash, request.events, request.length, request.symbol_counts,
        emotives_window_fn=lambda old: push_emotive_records(old, request.emotive_records, persistence),
        metadata_merge_fn=lambda old, _is_new: merge_metadata(old, request.metadata),
        affinity=request.affinity,
        vectors=[(name, len(values), vector_engine.encode(values)) for name, values in request.vectors])


def _vector_memory(ctx: Context, conn, kb_id: str, observations: list[Observation]):
    """Return the node's learned vectors as this worker holds them (None: no vector observed)."""
    if not any(o.vectors for o in observations):
        return None
    return knowledge.node_vectors(ctx, conn, kb_id)


def check_stm_bounds(ctx: Context, stm: list) -> None:
    """Refuse an STM above KATO_MAX_STM_EVENTS (422) or KATO_MAX_STM_BYTES (413), before storing.

    Without a bound a session with auto-learn off grows with every observe, and each observe
    rewrites the whole STM: a client could make every later request slower and fill the disk.
    """
    limit = ctx.config.max_stm_events
    if len(stm) > limit:
        raise ApiError(422, [{"type": "too_long", "loc": ["body"],
                              "msg": f"The session's STM would hold {len(stm)} events; at most {limit} are "
                                     "allowed (learn or clear it first)",
                              "input": None, "ctx": {"max_length": limit}}])
    size_limit = ctx.config.max_stm_bytes
    # orjson writes the STM's JSON in C (~30 us for 1,000 events): the size as stored.
    if len(orjson.dumps(stm)) > size_limit:
        raise ApiError(413, f"The session's STM would exceed {size_limit} bytes; learn or clear it first")


def _dimension_error(err: VectorDimensionError) -> ApiError:
    return ApiError(400, err.as_detail())


def _prediction_fields(ctx: Context, kb_id: str, prediction_stm, config: dict, learns_follow: bool,
                       final_stm=None) -> dict:
    """Decide what the session stores for observe-time predictions (spec/README.md decision 9).

    Predictions are computed lazily on the first cognition-data read, from the stored
    inputs. When a learn follows in this same request it would change the knowledge the
    predictions must see, so then they are computed now, before that learn is stored.
    The input STM is stored only when it differs from the session's own (usually it is the
    same list, and a long STM would otherwise be written twice on every observe).
    """
    if prediction_stm is None:
        return {"prediction_input": None, "predictions": []}
    prediction_input = {"config": predict.prediction_settings(config)}
    if prediction_stm != final_stm:
        prediction_input["stm"] = prediction_stm
    if learns_follow:  # as JSON: they are only stored (store/jsoncodec.py writes that text)
        return {"prediction_input": prediction_input,
                "predictions": predict.compute(ctx, kb_id, prediction_stm, config, as_json=True)[0]}
    return {"prediction_input": prediction_input, "predictions": None}


def observe(ctx: Context, session_id: str, obs: Observation) -> dict:
    with ctx.db.transaction() as conn:
        row, config, state = _load(ctx, conn, session_id)
        memory = _vector_memory(ctx, conn, row["kb_id"], [obs])
        try:
            # The state was decoded for this request alone; an error discards it with the transaction.
            outcome = stm_engine.observe(state, obs, _stm_config(config), in_place=True, vector_memory=memory)
        except VectorDimensionError as err:
            raise _dimension_error(err) from None
        check_stm_bounds(ctx, outcome.state.stm)
        values = {"state": _state_row(outcome.state)}
        # An observation that adds no event leaves no observe-time predictions (api.md §7.3.1).
        values.update(_prediction_fields(ctx, row["kb_id"], outcome.prediction_stm, config,
                                         learns_follow=bool(outcome.learned), final_stm=outcome.state.stm))
        store_learns(ctx, conn, row["kb_id"], outcome.learned, config["persistence"])
        _save(ctx, conn, session_id, **values)
    monitoring.count("observations")
    return {"status": "okay", "session_id": session_id, "processor_id": row["node_id"],
            "stm_length": len(outcome.state.stm), "time": outcome.state.time,
            "unique_id": obs.unique_id, "auto_learned_pattern": outcome.auto_learned_pattern}


def observe_sequence(ctx: Context, session_id: str, observations: list[Observation],
                     learn_after_each: bool, learn_at_end: bool, clear_stm_between: bool) -> dict:
    with ctx.db.transaction() as conn:
        row, config, state = _load(ctx, conn, session_id)
        memory = _vector_memory(ctx, conn, row["kb_id"], observations)
        try:
            outcome = stm_engine.observe_sequence(
                state, observations, _stm_config(config), learn_after_each=learn_after_each,
                learn_at_end=learn_at_end, clear_stm_between=clear_stm_between, vector_memory=memory)
        except VectorDimensionError as err:
            raise _dimension_error(err) from None
        check_stm_bounds(ctx, outcome.state.stm)
        if observations:
            values = {"state": _state_row(outcome.state)}
            split = outcome.learns_before_prediction
            # When learns follow the last item's observe, its predictions must see this
            # request's earlier learns (not yet committed, so only this transaction sees them)
            # and none of the later ones: they are computed now, on the node as it stood after
            # learn `split`, which the learns' statements describe (no rows are read back).
            eager = outcome.prediction_stm is not None and len(outcome.learned) > split
            batch = store_learns(ctx, conn, row["kb_id"], outcome.learned, config["persistence"],
                                 view_after=split if eager else None)
            if eager:
                values.update({
                    "prediction_input": {"stm": outcome.prediction_stm,
                                         "config": predict.prediction_settings(config)},
                    "predictions": predict.compute_after_learns(
                        ctx, row["kb_id"], outcome.prediction_stm, config, batch)[0]})
            elif outcome.predictions_updated:
                values.update(_prediction_fields(ctx, row["kb_id"], outcome.prediction_stm, config,
                                                 learns_follow=False, final_stm=outcome.state.stm))
            _save(ctx, conn, session_id, **values)
        else:
            _save(ctx, conn, session_id)  # an empty batch changes nothing but the expiry
    monitoring.count("observations", len(observations))
    return {"status": "completed", "processor_id": row["node_id"],
            "observations_processed": len(observations),
            "initial_stm_length": outcome.initial_stm_length, "final_stm_length": outcome.final_stm_length,
            "results": outcome.results, "auto_learned_patterns": outcome.auto_learned_patterns,
            "final_learned_pattern": outcome.final_learned_pattern, "isolated": clear_stm_between}


def get_stm(ctx: Context, session_id: str) -> dict:
    with ctx.db.statements() as conn:  # one UPDATE … RETURNING
        row = open_session(ctx, conn, session_id)
    stm = _owned_state(row["state"]).stm
    return {"stm": stm, "session_id": session_id, "length": len(stm)}


def learn(ctx: Context, session_id: str) -> dict:
    with ctx.db.transaction() as conn:
        row, config, state = _load(ctx, conn, session_id)
        if not state.stm:
            raise ApiError(400, "Cannot learn from empty STM")
        new_state, request = stm_engine.learn(state)
        if request is not None:
            store_learn(ctx, conn, row["kb_id"], request, config["persistence"])
        _save(ctx, conn, session_id, state=_state_row(new_state))
    name = request.name if request is not None else ""
    return {"status": "learned", "pattern_name": name, "session_id": session_id, "processor_id": None,
            "message": f"Learned pattern {name} from {len(new_state.stm)} events"}


def clear_stm(ctx: Context, session_id: str) -> dict:
    with ctx.db.transaction() as conn:
        row = open_session(ctx, conn, session_id)
        state = stm_engine.clear_stm(stm_engine.SessionState.from_dict(row["state"]))
        repo.update_session(conn, session_id, state=state.to_dict(), prediction_input=None, predictions=[])
    return {"status": "cleared", "session_id": session_id}


def clear_all(ctx: Context, session_id: str) -> dict:
    with ctx.db.transaction() as conn:
        row = open_session(ctx, conn, session_id)
        repo.clear_node(conn, row["kb_id"], ctx.clock())
        security.record(ctx, conn, "clear_all", target=row["node_id"], detail={"kb_id": row["kb_id"],
                                                                             "session_id": session_id})
        state = stm_engine.clear_stm(stm_engine.SessionState.from_dict(row["state"]))
        repo.update_session(conn, session_id, state=state.to_dict(), prediction_input=None, predictions=[])
    return {"status": "cleared", "session_id": session_id, "scope": "all"}


def finalize_training(ctx: Context, session_id: str) -> dict:
    """Mark the session's node finalized (kato-3.10.md §1.1, decision 15).

    Nothing is precomputed: on a finalized node the whole-pattern entropies are computed live
    at prediction time, so they stay right after later learns. The answer has KATO's six keys
    with the node's real pattern count and this call's elapsed time.
    """
    started = time.perf_counter()
    with ctx.db.transaction() as conn:
        row = open_session(ctx, conn, session_id)
        count = repo.finalize_node(conn, row["kb_id"], ctx.clock())
    elapsed = round((time.perf_counter() - started) * 1000.0, 2)
    return {"status": "completed", "patterns_processed": count, "time_ms": elapsed,
            "session_id": session_id, "node_id": row["node_id"],
            "message": f"Computed Shannon entropy and TF vectors for {count} patterns in {elapsed}ms"}


def percept_data(ctx: Context, session_id: str) -> dict:
    with ctx.db.statements() as conn:
        row = open_session(ctx, conn, session_id)
    percept = stm_engine.SessionState.from_dict(row["state"]).percept
    return {"percept_data": percept, "session_id": session_id, "node_id": row["node_id"]}


def cognition_data(ctx: Context, session_id: str) -> dict:
    with ctx.db.transaction() as conn:
        row = open_session(ctx, conn, session_id, with_predictions=True)
        predictions = row["predictions"]
        if predictions is None:
            prediction_input = row["prediction_input"]
            predictions = []
            if prediction_input:
                stm = prediction_input.get("stm", stm_engine.SessionState.from_dict(row["state"]).stm)
                predictions = predict.compute_from_settings(ctx, row["kb_id"], stm,
                                                            prediction_input["config"])[0]
            repo.update_session(conn, session_id, predictions=predictions)
    state = stm_engine.SessionState.from_dict(row["state"])
    return {"cognition_data": {
        "predictions": predictions,
        "emotives": dict(state.emotives[-1]) if state.emotives else {},
        "symbols": [symbol for event in state.stm for symbol in event],
        "command": "", "metadata": dict(state.metadata[-1]) if state.metadata else {},
        "path": [], "strings": [], "vectors": [],
        "short_term_memory": state.stm, "time": state.time,
    }, "session_id": session_id, "node_id": row["node_id"]}
