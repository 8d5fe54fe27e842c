"""SQL of the security features: API keys, audit log, app secrets, admin sessions, rate limits."""
from __future__ import annotations

from typing import Any

from sqlalchemy import delete, func, insert, select, text, update
from sqlalchemy.engine import Connection

from .models import AdminSession, ApiKey, AppSecret, AuditEvent

keys_t = ApiKey.__table__
audit_t = AuditEvent.__table__
secrets_t = AppSecret.__table__
admin_sessions_t = AdminSession.__table__


# ---------------------------------------------------------------- API keys

def insert_api_key(conn: Connection, row: dict) -> int:
    return conn.execute(insert(keys_t).values(**row).returning(keys_t.c.id)).scalar_one()


def find_api_key(conn: Connection, key_hash: str) -> dict | None:
    row = conn.execute(select(keys_t).where(keys_t.c.key_hash == key_hash,
                                            keys_t.c.revoked_at.is_(None))).mappings().first()
    return dict(row) if row else None


def count_active_api_keys(conn: Connection) -> int:
    return conn.execute(select(func.count()).select_from(keys_t).where(keys_t.c.revoked_at.is_(None))).scalar_one()


def list_api_keys(conn: Connection) -> list[dict]:
    rows = conn.execute(select(keys_t).order_by(keys_t.c.id.desc())).mappings().all()
    return [dict(r) for r in rows]


def revoke_api_key(conn: Connection, key_id: int, now: float) -> dict | None:
    """Revoke a live key; return its row (None when there is no such live key)."""
    row = conn.execute(update(keys_t).where(keys_t.c.id == key_id, keys_t.c.revoked_at.is_(None))
                       .values(revoked_at=now).returning(*keys_t.c)).mappings().first()
    return dict(row) if row else None


# ---------------------------------------------------------------- audit log

def insert_audit(conn: Connection, row: dict) -> None:
    conn.execute(insert(audit_t).values(**row))


def delete_audit_before(conn: Connection, before: float) -> int:
    return conn.execute(delete(audit_t).where(audit_t.c.at < before)).rowcount


def _audit_conditions(action: str | None, text_filter: str | None, since: float | None) -> list:
    conditions = []
    if action:
        conditions.append(audit_t.c.action == action)
    if since is not None:
        conditions.append(audit_t.c.at >= since)
    if text_filter:
        like = "%" + text_filter.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
        conditions.append(audit_t.c.actor.like(like, escape="\\") | audit_t.c.target.like(like, escape="\\")
                          | audit_t.c.address.like(like, escape="\\"))
    return conditions


def count_audit(conn: Connection, action: str | None, text_filter: str | None, since: float | None) -> int:
    conditions = _audit_conditions(action, text_filter, since)
    return conn.execute(select(func.count()).select_from(audit_t).where(*conditions)).scalar_one()


def search_audit(conn: Connection, action: str | None, text_filter: str | None, since: float | None,
                 limit: int, offset: int) -> list[dict]:
    conditions = _audit_conditions(action, text_filter, since)
    rows = conn.execute(select(audit_t).where(*conditions).order_by(audit_t.c.id.desc())
                        .limit(limit).offset(offset)).mappings().all()
    return [dict(r) for r in rows]


def audit_actions(conn: Connection) -> list[str]:
    return list(conn.execute(select(audit_t.c.action).distinct().order_by(audit_t.c.action)).scalars())


# ---------------------------------------------------------------- app secrets

_INSERT_SECRET = text("INSERT INTO app_secrets (name, value, created_at) VALUES (:name, :value, :now) "
                      "ON CONFLICT (name) DO NOTHING")


def get_or_create_secret(conn: Connection, name: str, candidate: str, now: float) -> str:
    """Store `candidate` under `name` unless a value is there already; return the stored one.

    ON CONFLICT DO NOTHING makes concurrent first starts agree: whoever inserts first wins,
    every other worker reads that value.
    """
    conn.execute(_INSERT_SECRET, {"name": name, "value": candidate, "now": now})
    return conn.execute(select(secrets_t.c.value).where(secrets_t.c.name == name)).scalar_one()


# ---------------------------------------------------------------- admin sessions

def insert_admin_session(conn: Connection, session_id: str, now: float, expires_at: float) -> None:
    conn.execute(delete(admin_sessions_t).where(admin_sessions_t.c.expires_at <= now))
    conn.execute(insert(admin_sessions_t).values(id=session_id, created_at=now, expires_at=expires_at))


def admin_session_live(conn: Connection, session_id: str, now: float) -> bool:
    return conn.execute(select(admin_sessions_t.c.id).where(admin_sessions_t.c.id == session_id,
                                                            admin_sessions_t.c.expires_at > now)).first() is not None


def delete_admin_session(conn: Connection, session_id: str) -> None:
    conn.execute(delete(admin_sessions_t).where(admin_sessions_t.c.id == session_id))


def delete_all_admin_sessions(conn: Connection) -> None:
    conn.execute(delete(admin_sessions_t))


# ---------------------------------------------------------------- rate limits

_HIT = text("""
INSERT INTO rate_limits (key, count, expires_at) VALUES (:key, :amount, :expires_at)
ON CONFLICT (key) DO UPDATE SET
    count = CASE WHEN rate_limits.expires_at <= :now THEN :amount ELSE rate_limits.count + :amount END,
    expires_at = CASE WHEN rate_limits.expires_at <= :now THEN :expires_at ELSE rate_limits.expires_at END
RETURNING count, expires_at""")


def rate_limit_hit(conn: Connection, key: str, amount: int, now: float, expires_at: float) -> tuple[int, float]:
    """Add `amount` to a fixed-window counter atomically (a new window when the old one ended)."""
    row = conn.execute(_HIT, {"key": key, "amount": amount, "now": now, "expires_at": expires_at}).first()
    return int(row[0]), float(row[1])


def rate_limit_get(conn: Connection, key: str, now: float) -> tuple[int, float | None]:
    row = conn.execute(text("SELECT count, expires_at FROM rate_limits WHERE key = :key AND expires_at > :now"),
                       {"key": key, "now": now}).first()
    return (int(row[0]), float(row[1])) if row else (0, None)


def rate_limit_clear(conn: Connection, key: str | None = None, now: float | None = None) -> int:
    if key is not None:
        return conn.execute(text("DELETE FROM rate_limits WHERE key = :key"), {"key": key}).rowcount
    return conn.execute(text("DELETE FROM rate_limits WHERE expires_at <= :now"), {"now": now}).rowcount




# ---------------------------------------------------------------- session ownership

def session_owner(conn: Connection, session_id: str) -> tuple[str, float] | None:
    """Return (node_id, expires_at) of a session without reading its state."""
    from .models import Session
    t = Session.__table__
    row = conn.execute(select(t.c.node_id, t.c.expires_at).where(t.c.session_id == session_id)).first()
    return (row[0], row[1]) if row else None
