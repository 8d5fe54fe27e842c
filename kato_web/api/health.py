"""Root, health and status endpoints (api.md §7.1, §7.5)."""
from __future__ import annotations

from flask import Blueprint, jsonify

from kato_web.api import responses as R
from kato_web.api.context import ctx
from kato_web.config import VERSION
from kato_web.services import health as svc
from kato_web.web.openapi import describe

bp = Blueprint("health", __name__)


@bp.get("/")
@describe(summary="What this service is, and where its documentation lives", tag="service",
          response=R.RootInfo)
def root():
    return jsonify({
        "service": "KATO API", "version": VERSION,
        "description": "Knowledge Abstraction for Traceable Outcomes with Multi-User Support",
        "docs": "/docs", "health": "/health", "status": "running",
        "uptime_seconds": svc.uptime(ctx()), "architecture": "modular", "session_support": True,
    })


@bp.get("/health")
@describe(summary="Health (always 200; problems are reported in the body)", tag="service", response=R.Health)
def health():
    return jsonify(svc.health(ctx()))


@bp.get("/status")
@describe(summary="Sessions, nodes and version", tag="service", response=R.Status)
def status():
    return jsonify(svc.status(ctx()))
