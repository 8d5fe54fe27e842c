"""Session management endpoints (api.md §7.2)."""
from __future__ import annotations

from flask import Blueprint, jsonify, request

from kato_web.api import responses as R
from kato_web.api.context import add_session_route, ctx, mark_session
from kato_web.api.schemas import CreateSessionRequest, parse, query_int, read_json, reject_lone_surrogates
from kato_web.services import session_config
from kato_web.services import sessions as svc
from kato_web.web.openapi import Operation, Param, describe

bp = Blueprint("sessions", __name__)


@bp.post("/sessions")
@describe(summary="Create a session", tag="sessions", body=CreateSessionRequest, response=R.SessionResponse,
          errors=("validation",),
          description="Always a new session (never reused). Invalid settings in `config` are dropped "
                      "all together and the session is still created, as KATO does (api.md §5.3).")
def create_session():
    body = parse(CreateSessionRequest, read_json(request))
    result = svc.create_session(ctx(), body.node_id, body.metadata, body.ttl_seconds, body.config)
    mark_session(result["session_id"])
    return jsonify(result)


@bp.get("/sessions/count")
@describe(summary="Count live sessions", tag="sessions", response=R.SessionCount)
def count_sessions():
    return jsonify({"active_session_count": svc.count_sessions(ctx())})


@bp.get("/sessions/<session_id>/exists")
@describe(summary="Tell whether a session exists (does not extend it)", tag="sessions",
          response=R.SessionExists, description="Always 200; an expired session is removed and "
                                                "reported as `expired: true`.")
def session_exists(session_id):
    return jsonify(svc.session_exists(ctx(), session_id))


add_session_route(bp, "/sessions/<session_id>", "GET", svc.get_session, doc=Operation(
    summary="Get a session", tag="sessions", response=R.SessionResponse, errors=("session_text",),
    description="The 404 of this route is KATO's `{\"detail\": …}` text, unlike every other session route."))
add_session_route(bp, "/sessions/<session_id>", "DELETE", svc.delete_session, doc=Operation(
    summary="Delete a session (its node's knowledge stays)", tag="sessions", response=R.SessionDeleted,
    errors=("session",)))
add_session_route(bp, "/sessions/<session_id>/config", "GET", svc.get_config, doc=Operation(
    summary="Get a session's effective settings", tag="sessions", response=R.SessionConfigResponse,
    errors=("session",)))


def _config_update_schema() -> dict:
    settings = session_config.json_schema()
    return {
        "type": "object",
        "description": "`{\"config\": {…}}` (what KATO's clients send), or the settings map itself. "
                       "Unknown keys are ignored; `null` resets a setting to the server default.",
        "properties": {"config": {"anyOf": [settings, {"type": "null"}]}, **settings["properties"]},
    }


@bp.post("/sessions/<session_id>/config")
@describe(summary="Change a session's settings", tag="sessions", body=_config_update_schema,
          response=R.ConfigUpdated, errors=("session", "config", "validation"),
          description="All or nothing: one invalid value and nothing is applied (400).")
def update_config(session_id):
    reject_lone_surrogates(request.get_data(cache=True))
    body = request.get_json(silent=True, force=True)
    result = svc.update_config(ctx(), session_id, body)
    mark_session(session_id)
    return jsonify(result)


@bp.post("/sessions/<session_id>/extend")
@describe(summary="Extend a session's expiry once", tag="sessions", response=R.SessionExtended,
          errors=("session", "validation"),
          params=(Param("ttl_seconds", "query", {"type": "integer", "exclusiveMinimum": 0,
                                                 "maximum": svc.MAX_TTL_SECONDS, "default": 3600},
                        "Expire this many seconds from now (later requests slide it by the session's "
                        "own ttl_seconds again)."),))
def extend_session(session_id):
    result = svc.extend_session(ctx(), session_id, query_int(request, "ttl_seconds", 3600))
    mark_session(session_id)
    return jsonify(result)
