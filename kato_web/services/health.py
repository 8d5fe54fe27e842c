"""Health and status reports (api.md §7.5)."""
from __future__ import annotations

import time

from kato_web.config import KATO_API_VERSION, VERSION
from kato_web.services import readiness as checks
from kato_web.services.context import Context
from kato_web.services.sessions import iso_offset
from kato_web.store import repositories as repo


def uptime(ctx: Context) -> float:
    return max(time.time() - ctx.started_at, 1e-6)


def health(ctx: Context) -> dict:
    """Report health; a database failure is folded into the body, never raised."""
    now = ctx.clock()
    try:
        with ctx.db.statements() as conn:
            active = repo.count_live_sessions(conn, now)
        status, processor_status, issues = "healthy", "healthy", []
    except Exception as exc:  # the report itself must always answer
        active, status, processor_status = 0, "unhealthy", "unknown"
        issues = [f"Health check error: {type(exc).__name__}"]
    return {
        "status": status, "processor_status": processor_status,
        "service_name": ctx.config.service_name, "uptime_seconds": uptime(ctx),
        "issues": issues, "metrics_collected": 0, "last_collection": ctx.started_at,
        "active_sessions": active, "timestamp": iso_offset(time.time()),
    }


# What a 503 tells clients to wait before trying again (readiness, database outages).
RETRY_AFTER_SECONDS = 5


def readiness(ctx: Context) -> tuple[dict, bool]:
    """Return (body, ready): each check with its detail, and the reasons when not ready."""
    report = {"database": checks.check_database(ctx.db), "kernels": checks.check_kernels()}
    ready = all(ok for ok, _ in report.values())
    body = {"status": "ready" if ready else "not ready",
            "checks": {name: {"ok": ok, "detail": detail} for name, (ok, detail) in report.items()}}
    if not ready:
        body["reasons"] = [f"{name}: {detail}" for name, (ok, detail) in report.items() if not ok]
    return body, ready


def status(ctx: Context) -> dict:
    now = ctx.clock()
    with ctx.db.transaction(write=False) as conn:
        active = repo.count_live_sessions(conn, now)
        nodes = repo.list_nodes(conn)
    backend = "postgresql" if ctx.db.engine.dialect.name == "postgresql" else "sqlite"
    return {
        "status": "healthy", "base_processor_id": ctx.config.service_name,
        "uptime_seconds": uptime(ctx),
        "sessions": {"total_sessions": active, "active_sessions": active, "expired_sessions": 0,
                     "backend": backend},
        "processors": {"total_processors": len(nodes), "max_processors": None,
                       "eviction_ttl_seconds": ctx.config.session_ttl,
                       "processors": [{"processor_id": n["kb_id"], "created_at": iso_offset(n["created_at"])}
                                      for n in nodes[:100]]},
        "version": VERSION, "kato_api_version": KATO_API_VERSION,
    }
