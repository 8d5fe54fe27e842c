"""Session management endpoints (api.md §7.2)."""
from __future__ import annotations

from flask import Blueprint, jsonify, request

from kato_web.api.context import add_session_route, ctx, mark_session
from kato_web.api.schemas import CreateSessionRequest, parse, query_int, read_json, reject_lone_surrogates
from kato_web.services import sessions as svc

bp = Blueprint("sessions", __name__)


@bp.post("/sessions")
def create_session():
    body = parse(CreateSessionRequest, read_json(request))
    result = svc.create_session(ctx(), body.node_id, body.metadata, body.ttl_seconds, body.config)
    mark_session(result["session_id"])
    return jsonify(result)


@bp.get("/sessions/count")
def count_sessions():
    return jsonify({"active_session_count": svc.count_sessions(ctx())})


@bp.get("/sessions/<session_id>/exists")
def session_exists(session_id):
    return jsonify(svc.session_exists(ctx(), session_id))


add_session_route(bp, "/sessions/<session_id>", "GET", svc.get_session)
add_session_route(bp, "/sessions/<session_id>", "DELETE", svc.delete_session)
add_session_route(bp, "/sessions/<session_id>/config", "GET", svc.get_config)


@bp.post("/sessions/<session_id>/config")
def update_config(session_id):
    reject_lone_surrogates(request.get_data(cache=True))
    body = request.get_json(silent=True, force=True)
    result = svc.update_config(ctx(), session_id, body)
    mark_session(session_id)
    return jsonify(result)


@bp.post("/sessions/<session_id>/extend")
def extend_session(session_id):
    result = svc.extend_session(ctx(), session_id, query_int(request, "ttl_seconds", 3600))
    mark_session(session_id)
    return jsonify(result)
