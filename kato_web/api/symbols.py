"""Node-level symbol statistics and affinity (kato-3.10.md §1.1).

The node is resolved like /pattern's. The fixed routes come first; a symbol is one path
segment, percent-decoded (`|` is sent as %7C), so a symbol holding `/` cannot be addressed.
"""
from __future__ import annotations

from flask import Blueprint, jsonify

from kato_web.api.context import ctx
from kato_web.api.operations import request_node
from kato_web.services import symbols as svc

bp = Blueprint("symbols", __name__)


@bp.get("/symbols/stats")
def symbol_stats():
    return jsonify(svc.symbol_stats(ctx(), request_node()))


@bp.get("/symbols/affinity")
def all_affinities():
    return jsonify(svc.all_affinities(ctx(), request_node()))


@bp.get("/symbols/<symbol>/affinity")
def symbol_affinity(symbol):
    return jsonify(svc.symbol_affinity(ctx(), request_node(), symbol))
