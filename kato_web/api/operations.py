"""Session-scoped KATO operations and node-level lookups (api.md §7.3, §7.4)."""
from __future__ import annotations

import uuid

from flask import Blueprint, current_app, jsonify, request

from kato_web.api import responses as R
from kato_web.api.context import add_session_route, ctx, mark_session
from kato_web.api.schemas import ObservationRequest, ObservationSequenceRequest, parse, read_json
from kato_web.engine.observation import Observation
from kato_web.services import operations as ops
from kato_web.services import patterns as pattern_svc
from kato_web.services import predict as predict_svc
from kato_web.services.sessions import open_session
from kato_web.web import gcpause, json_provider
from kato_web.web.errors import RequestValidationError
from kato_web.web.openapi import NODE_PARAMS, Operation, describe

bp = Blueprint("operations", __name__)


def _validated(model, session_id: str):
    """Validate the body, but let a missing session win over a bad body (api.md §2.3)."""
    try:
        return parse(model, read_json(request))
    except RequestValidationError:
        with ctx().db.transaction() as conn:
            open_session(ctx(), conn, session_id)
        raise


def _observation(item: ObservationRequest, unique_id: str | None) -> Observation:
    return Observation(strings=list(item.strings), vectors=[list(v) for v in item.vectors],
                       emotives=dict(item.emotives), metadata=dict(item.metadata), unique_id=unique_id)


@bp.post("/sessions/<session_id>/observe")
@describe(summary="Observe one event", tag="operations", body=ObservationRequest, response=R.ObserveResult,
          errors=("session", "validation", "vector"),
          description="Strings (sorted within the event), vectors, emotives and metadata. An observation "
                      "with neither strings nor vectors adds no event but advances `time`. Not idempotent: "
                      "a repeated request is a second observation. `unique_id` is ignored here.")
def observe(session_id):
    body = _validated(ObservationRequest, session_id)
    # /observe ignores a client unique_id and always makes one (api.md §6.1)
    result = ops.observe(ctx(), session_id, _observation(body, "obs-" + uuid.uuid4().hex))
    mark_session(session_id)
    return jsonify(result)


@bp.post("/sessions/<session_id>/observe-sequence")
@describe(summary="Observe a sequence of events, optionally learning", tag="operations",
          body=ObservationSequenceRequest, response=R.ObserveSequenceResult,
          errors=("session", "validation", "vector"),
          description="All in one transaction: if one item fails, no STM change is kept.")
def observe_sequence(session_id):
    body = _validated(ObservationSequenceRequest, session_id)
    observations = [_observation(item, item.unique_id or None) for item in body.observations]
    result = ops.observe_sequence(ctx(), session_id, observations, body.learn_after_each,
                                  body.learn_at_end, body.clear_stm_between)
    mark_session(session_id)
    return jsonify(result)


add_session_route(bp, "/sessions/<session_id>/stm", "GET", ops.get_stm, doc=Operation(
    summary="Read the short-term memory", tag="operations", response=R.STMResponse, errors=("session",)))
add_session_route(bp, "/sessions/<session_id>/learn", "POST", ops.learn, doc=Operation(
    summary="Learn the short-term memory as one pattern, then clear it", tag="operations",
    response=R.LearnResult, errors=("session", "empty_stm"),
    description="No body. Re-learning the same events adds to that pattern's frequency."))
add_session_route(bp, "/sessions/<session_id>/clear-stm", "POST", ops.clear_stm, doc=Operation(
    summary="Clear the short-term memory and the emotive and metadata accumulators", tag="operations",
    response=R.ClearResult, errors=("session",)))
add_session_route(bp, "/sessions/<session_id>/clear-all", "POST", ops.clear_all, doc=Operation(
    summary="Delete all of the node's knowledge and clear this session", tag="operations",
    response=R.ClearAllResult, errors=("session",),
    description="Affects every session of the node: its patterns and symbol statistics are deleted."))
add_session_route(bp, "/sessions/<session_id>/finalize-training", "POST", ops.finalize_training, doc=Operation(
    summary="Finalize training of the session's node", tag="operations", response=R.FinalizeResult,
    errors=("session",),
    description="Marks the node finalized: from then on `entropy`, the normalised entropies and the TF part "
                "of `tfidf_score` are computed over whole patterns, live (later learns are included). "
                "`clear-all` undoes it."))
add_session_route(bp, "/sessions/<session_id>/percept-data", "GET", ops.percept_data, doc=Operation(
    summary="The last observation as processed", tag="operations", response=R.PerceptDataResponse,
    errors=("session",)))
add_session_route(bp, "/sessions/<session_id>/cognition-data", "GET", ops.cognition_data,
                  large_answer=True, doc=Operation(
                      summary="The session's cognition data (STM, last emotives, observe-time predictions)",
                      tag="operations", response=R.CognitionDataResponse, errors=("session",)))


@bp.get("/sessions/<session_id>/predictions", endpoint="session_predictions")
@describe(summary="Predictions for the short-term memory", tag="operations", response=R.PredictionsResponse,
          errors=("session",),
          description="Computed now from the STM with the session's settings, ranked by `rank_sort_algo` "
                      "(ties by name), at most `max_predictions`. Changes nothing stored.")
def predictions(session_id):
    # future_potentials can be thousands of entries, and each prediction has 29 keys: with the
    # orjson provider the engine writes both lists' JSON text directly and it is embedded as is
    # (the same bytes as serialising the lists). The collector stays paused while the answer's
    # objects live (web/gcpause.py).
    raw = json_provider.writes_raw_json(current_app)
    with gcpause.paused():
        result = predict_svc.session_predictions(ctx(), session_id, as_json=raw)
        if raw:
            result["predictions"] = json_provider.raw_json(result["predictions"].text)
            result["future_potentials"] = json_provider.raw_json(result["future_potentials"])
        mark_session(session_id)
        return jsonify(result)


def request_node() -> str:
    """The kb id of a node-level request: ?node_id › x-test-id › x-node-id › default (api.md §3.3)."""
    return pattern_svc.resolve_node(ctx(), request.args.get("node_id"), request.headers.get("x-test-id"),
                                    request.headers.get("x-node-id"))


@bp.get("/pattern/<path:pattern_id>")
@describe(summary="Look up one learned pattern of a node", tag="knowledge", response=R.PatternResponse,
          params=NODE_PARAMS,
          description="`pattern_id` with or without `PTRN|` (percent-encode the `|`). An unknown pattern "
                      "answers 200 with `pattern.status: \"error\"`, as KATO does.")
def get_pattern(pattern_id):
    return jsonify(pattern_svc.get_pattern(ctx(), request_node(), pattern_id))


@bp.get("/percept-data")
@describe(summary="Deprecated node-level percept data (always empty)", tag="knowledge",
          response=R.NodePerceptData, params=NODE_PARAMS)
def node_percept_data():
    return jsonify(pattern_svc.node_percept_data(request_node()))


@bp.get("/cognition-data")
@describe(summary="Deprecated node-level cognition data (always empty)", tag="knowledge",
          response=R.NodeCognitionData, params=NODE_PARAMS)
def node_cognition_data():
    return jsonify(pattern_svc.node_cognition_data(request_node()))
