"""Session-scoped KATO operations and node-level lookups (api.md §7.3, §7.4)."""
from __future__ import annotations

import uuid

from flask import Blueprint, current_app, jsonify, request

from kato_web.api.context import add_session_route, ctx, mark_session
from kato_web.api.schemas import ObservationRequest, ObservationSequenceRequest, parse, read_json
from kato_web.engine.observation import Observation
from kato_web.services import operations as ops
from kato_web.services import patterns as pattern_svc
from kato_web.services import predict as predict_svc
from kato_web.services.sessions import open_session
from kato_web.web import gcpause, json_provider
from kato_web.web.errors import RequestValidationError

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
def observe(session_id):
    body = _validated(ObservationRequest, session_id)
    # /observe ignores a client unique_id and always makes one (api.md §6.1)
    result = ops.observe(ctx(), session_id, _observation(body, "obs-" + uuid.uuid4().hex))
    mark_session(session_id)
    return jsonify(result)


@bp.post("/sessions/<session_id>/observe-sequence")
def observe_sequence(session_id):
    body = _validated(ObservationSequenceRequest, session_id)
    observations = [_observation(item, item.unique_id or None) for item in body.observations]
    result = ops.observe_sequence(ctx(), session_id, observations, body.learn_after_each,
                                  body.learn_at_end, body.clear_stm_between)
    mark_session(session_id)
    return jsonify(result)


add_session_route(bp, "/sessions/<session_id>/stm", "GET", ops.get_stm)
add_session_route(bp, "/sessions/<session_id>/learn", "POST", ops.learn)
add_session_route(bp, "/sessions/<session_id>/clear-stm", "POST", ops.clear_stm)
add_session_route(bp, "/sessions/<session_id>/clear-all", "POST", ops.clear_all)
add_session_route(bp, "/sessions/<session_id>/finalize-training", "POST", ops.finalize_training)
add_session_route(bp, "/sessions/<session_id>/percept-data", "GET", ops.percept_data)
add_session_route(bp, "/sessions/<session_id>/cognition-data", "GET", ops.cognition_data,
                  large_answer=True)


@bp.get("/sessions/<session_id>/predictions", endpoint="session_predictions")
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
def get_pattern(pattern_id):
    return jsonify(pattern_svc.get_pattern(ctx(), request_node(), pattern_id))


@bp.get("/percept-data")
def node_percept_data():
    return jsonify(pattern_svc.node_percept_data(request_node()))


@bp.get("/cognition-data")
def node_cognition_data():
    return jsonify(pattern_svc.node_cognition_data(request_node()))
