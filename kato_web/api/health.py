"""Root, health, liveness, readiness and status endpoints (api.md §7.1, §7.5)."""
from __future__ import annotations

from flask import Blueprint, jsonify

from kato_web.api.context import ctx
from kato_web.config import KATO_API_VERSION, VERSION
from kato_web.services import health as svc

bp = Blueprint("health", __name__)


@bp.get("/")
def root():
    return jsonify({
        "service": "KATO API", "version": VERSION, "kato_api_version": KATO_API_VERSION,
        "description": "Knowledge Abstraction for Traceable Outcomes with Multi-User Support",
        "docs": "/docs", "health": "/health", "status": "running",
        "uptime_seconds": svc.uptime(ctx()), "architecture": "modular", "session_support": True,
    })


@bp.get("/health")
def health():
    return jsonify(svc.health(ctx()))


@bp.get("/livez")
def livez():
    """The process answers (nothing else is asked: a restart would not fix the database)."""
    return jsonify({"status": "alive"})


@bp.get("/readyz")
def readyz():
    """Database reachable, migrations at head, kernels ready: 200, else 503 with the reasons."""
    body, ready = svc.readiness(ctx())
    response = jsonify(body)
    if not ready:
        response.status_code = 503
        response.headers["Retry-After"] = str(svc.RETRY_AFTER_SECONDS)
    return response


@bp.get("/status")
def status():
    return jsonify(svc.status(ctx()))
