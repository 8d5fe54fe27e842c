"""Session use cases: create, inspect, configure, extend, delete (api.md §4, §5, §7.2).

Each function runs in one transaction. Every session-scoped call slides the expiry
to now + ttl_seconds (with auto-extend on), reads included (spec/README.md 10.3).
"""
from __future__ import annotations

import hashlib
import re
import uuid
from datetime import datetime, timezone

from kato_web.services import session_config
from kato_web.services.context import Context
from kato_web.store import repositories as repo
from kato_web.store import security as sec_repo
from kato_web.web.errors import ApiError, SessionNotFound

# A session lifetime beyond this would put its expiry past what a timestamp can show (the
# answers' `expires_at`): about 68 years.
MAX_TTL_SECONDS = 2**31 - 1

_NODE_UNSAFE = re.compile(r'[/\\. "$*<>:|?\-]')
KB_ID_MAX = 60


def kb_id_for(node_id: str, service_name: str) -> str:
    """Derive the long-term-memory namespace of a node (api.md §3.2)."""
    node = _NODE_UNSAFE.sub("_", node_id)
    service = service_name.replace("-", "_")
    candidate = f"{node}_{service}"
    if len(candidate) <= KB_ID_MAX:
        return candidate
    digest = hashlib.md5(node.encode("utf-8")).hexdigest()[:8]
    node = f"{node[:KB_ID_MAX - len(service) - 10]}_{digest}"
    return f"{node}_{service}"


def new_session_id(now: float) -> str:
    return f"session-{uuid.uuid4().hex}-{int(now * 1000)}"


def iso_z(ts: float) -> str:
    """Format an epoch like pydantic does for an aware UTC datetime: microseconds and Z."""
    return datetime.fromtimestamp(ts, timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def iso_offset(ts: float) -> str:
    return datetime.fromtimestamp(ts, timezone.utc).isoformat()


def server_defaults(ctx: Context, conn) -> dict:
    """Return the effective server defaults: environment, overlaid by admin settings."""
    return defaults_from_settings(ctx, repo.load_settings(conn))


def defaults_from_settings(ctx: Context, settings: dict) -> dict:
    """Overlay the admin settings `settings` on the environment's session defaults."""
    defaults = dict(ctx.config.session_defaults)
    for key, value in settings.items():
        if key in defaults:
            defaults[key] = value
    return defaults


def session_view(row: dict, defaults: dict, now: float, ttl_seconds: int | None = None) -> dict:
    return {
        "session_id": row["session_id"],
        "node_id": row["node_id"],
        "created_at": iso_z(row["created_at"]),
        "expires_at": iso_z(row["expires_at"]),
        "ttl_seconds": ttl_seconds if ttl_seconds is not None else max(0, int(row["expires_at"] - now)),
        "metadata": row["metadata"] or {},
        "session_config": session_config.effective_config(row["config"] or {}, defaults),
    }


def open_session(ctx: Context, conn, session_id: str, shape: str = "D", with_predictions: bool = False) -> dict:
    """Return the live session row, locked and with its expiry slid, or raise 404.

    `with_predictions`: include the stored observe-time predictions (cognition-data only).
    """
    now = ctx.clock()
    row = repo.touch_session(conn, session_id, now, slide=ctx.config.session_auto_extend,
                             with_predictions=with_predictions)
    if row is None:
        raise SessionNotFound(session_id, shape)
    return row


def open_session_with_defaults(ctx: Context, conn, session_id: str, shape: str = "D",
                               with_node: bool = False, slide_later: bool = False) -> tuple[dict, dict]:
    """Return (live session row, server defaults) like open_session + server_defaults, in one query.

    `with_node`: the row also carries "node_version", the node's generation and change
    sequence read by the same statement (see repo.touch_session).
    `slide_later`: lock the row without sliding its expiry; the caller writes the row in the
    same transaction with `repo.update_session(..., slide_at=slide_time(ctx))`.
    """
    now = ctx.clock()
    if slide_later and not with_node:  # the write path: its statement goes straight to the driver
        row, settings = repo.lock_session_for_write(conn, session_id, now)
    else:
        row, settings = repo.touch_session(conn, session_id, now,
                                           slide=ctx.config.session_auto_extend and not slide_later,
                                           with_settings=True, with_node=with_node)
    if row is None:
        raise SessionNotFound(session_id, shape)
    return row, defaults_from_settings(ctx, settings)


def slide_time(ctx: Context) -> float | None:
    """The `slide_at` for a write that opened its session with `slide_later` (None: no sliding)."""
    return ctx.clock() if ctx.config.session_auto_extend else None


def create_session(ctx: Context, node_id: str, metadata: dict | None, ttl_seconds: int | None,
                   config: dict | None) -> dict:
    now = ctx.clock()
    ttl = ttl_seconds or ctx.config.session_ttl
    kb_id = kb_id_for(node_id, ctx.config.service_name)
    row = {
        "session_id": new_session_id(now), "node_id": node_id, "kb_id": kb_id,
        "created_at": now, "expires_at": now + ttl, "ttl_seconds": ttl,
        "metadata": metadata or {}, "config": session_config.overrides_from_create(config),
        "state": {}, "prediction_input": None, "predictions": None, "access_count": 0,
    }
    with ctx.db.transaction() as conn:
        repo.ensure_node(conn, kb_id, now)
        repo.insert_session(conn, row)
        defaults = server_defaults(ctx, conn)
    return session_view(row, defaults, now, ttl_seconds=ttl)


def count_sessions(ctx: Context) -> int:
    with ctx.db.statements() as conn:
        return repo.count_live_sessions(conn, ctx.clock())


def session_live(ctx: Context, session_id: str) -> bool:
    """Tell whether a session is live, changing nothing (not even its expiry)."""
    return session_node(ctx, session_id) is not None


def session_node(ctx: Context, session_id: str) -> str | None:
    """Return the node id of a live session (None when there is none), changing nothing."""
    with ctx.db.transaction(write=False) as conn:
        owner = sec_repo.session_owner(conn, session_id)
    return owner[0] if owner is not None and owner[1] > ctx.clock() else None


def session_exists(ctx: Context, session_id: str) -> dict:
    """Check a session without sliding its expiry; an expired record is removed."""
    now = ctx.clock()
    with ctx.db.transaction() as conn:
        row = repo.get_session(conn, session_id)
        if row is None:
            return {"exists": False, "expired": False, "session_id": session_id}
        if row["expires_at"] <= now:
            repo.delete_session(conn, session_id)
            return {"exists": False, "expired": True, "session_id": session_id}
    return {"exists": True, "expired": False, "session_id": session_id}


def get_session(ctx: Context, session_id: str) -> dict:
    with ctx.db.statements() as conn:  # one UPDATE … RETURNING
        row, defaults = open_session_with_defaults(ctx, conn, session_id, shape="A")
    return session_view(row, defaults, ctx.clock())


def delete_session(ctx: Context, session_id: str) -> dict:
    with ctx.db.transaction() as conn:
        open_session(ctx, conn, session_id)
        repo.delete_session(conn, session_id)
    return {"status": "deleted", "session_id": session_id}


def get_config(ctx: Context, session_id: str) -> dict:
    with ctx.db.statements() as conn:
        row, defaults = open_session_with_defaults(ctx, conn, session_id)
    return {"session_id": session_id, "config": session_config.effective_config(row["config"] or {}, defaults)}


def update_config(ctx: Context, session_id: str, body) -> dict:
    with ctx.db.transaction() as conn:
        row = open_session(ctx, conn, session_id)
        if not isinstance(body, dict):
            raise ApiError(422, [{"type": "dict_type", "loc": ["body"],
                                  "msg": "Input should be a valid dictionary", "input": body}])
        update = body.get("config", body) if "config" in body else body
        if update is None:
            update = {}
        if not isinstance(update, dict):
            raise ApiError(422, [{"type": "dict_type", "loc": ["body", "config"],
                                  "msg": "Input should be a valid dictionary", "input": update}])
        applied, errors = session_config.overrides_from_update(update)
        if errors:
            raise ApiError(400, {"error": "Configuration validation failed", "validation_errors": errors})
        repo.update_session(conn, session_id,
                            config=session_config.merge_overrides(row["config"] or {}, applied))
    return {"status": "okay", "message": "Configuration updated", "session_id": session_id}


def extend_session(ctx: Context, session_id: str, ttl_seconds: int) -> dict:
    with ctx.db.transaction() as conn:
        open_session(ctx, conn, session_id)
        if ttl_seconds <= 0:
            raise ApiError(422, [{"type": "greater_than", "loc": ["query", "ttl_seconds"],
                                  "msg": "Input should be greater than 0", "input": ttl_seconds,
                                  "ctx": {"gt": 0}}])
        if ttl_seconds > MAX_TTL_SECONDS:
            raise ApiError(422, [{"type": "less_than_equal", "loc": ["query", "ttl_seconds"],
                                  "msg": f"Input should be less than or equal to {MAX_TTL_SECONDS}",
                                  "input": ttl_seconds, "ctx": {"le": MAX_TTL_SECONDS}}])
        repo.update_session(conn, session_id, expires_at=ctx.clock() + ttl_seconds)
    return {"status": "extended", "session_id": session_id, "ttl_seconds": ttl_seconds}


def sweep_expired(ctx: Context) -> int:
    with ctx.db.transaction() as conn:
        return repo.delete_expired_sessions(conn, ctx.clock())
