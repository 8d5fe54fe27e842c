"""Session management endpoints (api.md §7.2)."""
from __future__ import annotations

from flask import Blueprint, jsonify, request

from kato_web.api.context import add_session_route, ctx, mark_session, session_body
from kato_web.api.schemas import CreateSessionRequest, parse, query_int, read_json
from kato_web.web.errors import RequestValidationError
from kato_web.services import sessions as svc
from kato_web.web import auth

bp = Blueprint("sessions", __name__)


def _check_ttl(ttl: int | None, where: str) -> None:
    """Refuse (422) a session lifetime above KATO_MAX_SESSION_TTL."""
    limit = ctx().config.max_session_ttl
    if ttl is not None and ttl > limit:
        raise RequestValidationError([{"type": "less_than_equal", "loc": [where, "ttl_seconds"],
                                       "msg": f"Input should be less than or equal to {limit}",
                                       "input": ttl, "ctx": {"le": limit}}])


@bp.post("/sessions")
def create_session():
    body = parse(CreateSessionRequest, read_json(request))
    auth.authorize_node(body.node_id)
    _check_ttl(body.ttl_seconds, "body")
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
    body = session_body(session_id, lambda: read_json(request, required=False))
    result = svc.update_config(ctx(), session_id, body)
    mark_session(session_id)
    return jsonify(result)


@bp.post("/sessions/<session_id>/extend")
def extend_session(session_id):
    ttl = query_int(request, "ttl_seconds", 3600)
    _check_ttl(ttl, "query")
    result = svc.extend_session(ctx(), session_id, ttl)
    mark_session(session_id)
    return jsonify(result)
