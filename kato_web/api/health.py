"""Root, health, liveness, readiness and status endpoints (api.md §7.1, §7.5)."""
from __future__ import annotations

from flask import Blueprint, jsonify

from kato_web.api import responses as R
from kato_web.api.context import ctx
from kato_web.config import KATO_API_VERSION, VERSION
from kato_web.services import health as svc
from kato_web.web.openapi import describe

bp = Blueprint("health", __name__)


@bp.get("/")
@describe(summary="What this service is, and where its documentation lives", tag="service",
          response=R.RootInfo)
def root():
    return jsonify({
        "service": "KATO API", "version": VERSION, "kato_api_version": KATO_API_VERSION,
        "description": "Knowledge Abstraction for Traceable Outcomes with Multi-User Support",
        "docs": "/docs", "health": "/health", "status": "running",
        "uptime_seconds": svc.uptime(ctx()), "architecture": "modular", "session_support": True,
    })


@bp.get("/health")
@describe(summary="Health (always 200; problems are reported in the body)", tag="service", response=R.Health)
def health():
    return jsonify(svc.health(ctx()))


@bp.get("/livez")
@describe(summary="Liveness: the process answers", tag="service", response=R.Liveness)
def livez():
    """The process answers (nothing else is asked: a restart would not fix the database)."""
    return jsonify({"status": "alive"})


@bp.get("/readyz")
@describe(summary="Readiness: database reachable and migrated, kernels loaded", tag="service",
          response=R.Readiness, errors=("not_ready",))
def readyz():
    """Database reachable, migrations at head, kernels ready: 200, else 503 with the reasons."""
    body, ready = svc.readiness(ctx())
    response = jsonify(body)
    if not ready:
        response.status_code = 503
        response.headers["Retry-After"] = str(svc.RETRY_AFTER_SECONDS)
    return response


@bp.get("/status")
@describe(summary="Sessions, nodes and version", tag="service", response=R.Status)
def status():
    return jsonify(svc.status(ctx()))
