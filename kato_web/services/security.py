"""Security use cases: the audit trail, API keys, the shared cookie key, admin sign-ins.

The caller of a request is known to the web layer only; it sets `current_actor` once per
request (kato_web/web/guard.py), and every audit record made while serving that request
names it. Audit records are written in the same transaction as the change they describe,
so there is never a change without its record, nor a record of a change that rolled back.
"""
from __future__ import annotations

import secrets
from contextvars import ContextVar
from dataclasses import dataclass

from kato_web.services.api_keys import hash_key
from kato_web.services.context import Context
from kato_web.store import security as sec_repo

ADMIN_SESSION_SECONDS = 8 * 3600  # a sign-in lasts a working day at most
AUDIT_PAGE_SIZE = 50


@dataclass(frozen=True)
class Actor:
    label: str            # "admin", "key kato_ab12…", "anonymous"
    address: str | None   # the client's address (behind KATO_PROXY_COUNT proxies: the forwarded one)


current_actor: ContextVar[Actor] = ContextVar("kato_actor", default=Actor("anonymous", None))


def record(ctx: Context, conn, action: str, target: str | None = None, outcome: str = "ok",
           detail: dict | None = None, actor: Actor | None = None) -> None:
    """Add one audit record inside the caller's transaction."""
    record_at(conn, ctx.clock(), action, target, outcome, detail, actor)


def record_at(conn, at: float, action: str, target: str | None = None, outcome: str = "ok",
              detail: dict | None = None, actor: Actor | None = None) -> None:
    """record() for callers without a request context (the command line's import)."""
    actor = actor or current_actor.get()
    sec_repo.insert_audit(conn, {"at": at, "action": action, "actor": actor.label[:100],
                                 "address": (actor.address or "")[:64] or None, "target": target,
                                 "outcome": outcome, "detail": detail or {}})


def record_now(ctx: Context, action: str, target: str | None = None, outcome: str = "ok",
               detail: dict | None = None) -> None:
    """Add one audit record in a transaction of its own (events that change nothing else)."""
    with ctx.db.transaction() as conn:
        record(ctx, conn, action, target, outcome, detail)


def prune_audit(ctx: Context) -> int:
    """Delete audit records older than KATO_AUDIT_RETENTION_DAYS."""
    with ctx.db.transaction() as conn:
        return sec_repo.delete_audit_before(conn, ctx.clock() - ctx.config.audit_retention_days * 86400)


def audit_page(ctx: Context, action: str | None, text: str | None, since_hours: float | None,
               page: int) -> dict:
    prune_audit(ctx)
    since = ctx.clock() - since_hours * 3600 if since_hours else None
    with ctx.db.transaction(write=False, snapshot=True) as conn:
        total = sec_repo.count_audit(conn, action or None, text or None, since)
        pages = max(1, -(-total // AUDIT_PAGE_SIZE))
        page = min(page, pages)  # also keeps the offset within what the database accepts
        rows = sec_repo.search_audit(conn, action or None, text or None, since, AUDIT_PAGE_SIZE,
                                     (page - 1) * AUDIT_PAGE_SIZE)
        actions = sec_repo.audit_actions(conn)
    return {"rows": rows, "total": total, "page": page, "pages": pages, "actions": actions}


def iso_utc(ts: float) -> str:
    from datetime import datetime, timezone
    return datetime.fromtimestamp(ts, timezone.utc).strftime("%Y-%m-%d %H:%M:%S")


# ---------------------------------------------------------------- the cookie key

def cookie_secret(ctx: Context) -> str:
    """Return the admin cookie signing key every worker and instance shares.

    Made at random the first time and kept in the database (never derived from the
    password: a cookie would then let its holder test password guesses offline).
    """
    with ctx.db.transaction() as conn:
        return sec_repo.get_or_create_secret(conn, "admin_cookie_key", secrets.token_hex(32), ctx.clock())


# ---------------------------------------------------------------- admin sign-ins

def start_admin_session(ctx: Context) -> str:
    session_id = secrets.token_urlsafe(32)
    now = ctx.clock()
    with ctx.db.transaction() as conn:
        sec_repo.insert_admin_session(conn, session_id, now, now + ADMIN_SESSION_SECONDS)
        record(ctx, conn, "admin_login")
    return session_id


def admin_session_live(ctx: Context, session_id: str) -> bool:
    with ctx.db.transaction(write=False) as conn:
        return sec_repo.admin_session_live(conn, session_id, ctx.clock())


def end_admin_session(ctx: Context, session_id: str | None) -> None:
    with ctx.db.transaction() as conn:
        if session_id:
            sec_repo.delete_admin_session(conn, session_id)
        record(ctx, conn, "admin_logout")


# ---------------------------------------------------------------- API keys

def new_key() -> str:
    return "kato_" + secrets.token_urlsafe(32)


def create_key(ctx: Context, name: str, node_prefix: str | None, read_only: bool) -> tuple[str, dict]:
    """Make a key; return (the key itself, shown once; its stored row)."""
    key = new_key()
    row = {"name": name, "key_hash": hash_key(key), "key_prefix": key[:13], "node_prefix": node_prefix or None,
           "read_only": read_only, "created_at": ctx.clock(), "revoked_at": None}
    with ctx.db.transaction() as conn:
        row["id"] = sec_repo.insert_api_key(conn, row)
        record(ctx, conn, "key_created", target=f"{row['key_prefix']}… ({name})",
               detail={"node_prefix": node_prefix or None, "read_only": read_only})
    return key, row


def revoke_key(ctx: Context, key_id: int) -> dict | None:
    with ctx.db.transaction() as conn:
        row = sec_repo.revoke_api_key(conn, key_id, ctx.clock())
        if row is not None:
            record(ctx, conn, "key_revoked", target=f"{row['key_prefix']}… ({row['name']})")
    return row


def list_keys(ctx: Context) -> list[dict]:
    with ctx.db.transaction(write=False) as conn:
        return sec_repo.list_api_keys(conn)


def active_key_count(ctx: Context) -> int:
    with ctx.db.transaction(write=False) as conn:
        return sec_repo.count_active_api_keys(conn)


def find_key(ctx: Context, key_hash: str) -> dict | None:
    with ctx.db.transaction(write=False) as conn:
        return sec_repo.find_api_key(conn, key_hash)


def keys_table_exists(ctx: Context) -> bool:
    from sqlalchemy import inspect
    return "api_keys" in inspect(ctx.db.engine).get_table_names()


def active_keys_in(database_url: str) -> int:
    """Count live API keys in a database before any app exists (the server's start check)."""
    from kato_web.store.db import make_engine
    engine = make_engine(database_url, pool_size=1, max_overflow=0)
    try:
        with engine.connect() as conn:
            try:
                return sec_repo.count_active_api_keys(conn)
            except Exception:
                return 0  # not migrated yet: no keys table, so no keys
    finally:
        engine.dispose()
