"""Node-level symbol statistics and affinity (kato-3.10.md §1.1).

The node is resolved like /pattern's. The fixed routes come first; a symbol is one path
segment, percent-decoded (`|` is sent as %7C), so a symbol holding `/` cannot be addressed.
"""
from __future__ import annotations

from flask import Blueprint, jsonify

from kato_web.api import responses as R
from kato_web.api.context import ctx
from kato_web.api.operations import request_node
from kato_web.services import symbols as svc
from kato_web.web.openapi import NODE_PARAMS, describe

bp = Blueprint("symbols", __name__)


@bp.get("/symbols/stats")
@describe(summary="Every symbol of a node: total frequency and number of patterns holding it", tag="knowledge",
          response=R.SymbolStatsResponse, params=NODE_PARAMS)
def symbol_stats():
    return jsonify(svc.symbol_stats(ctx(), request_node()))


@bp.get("/symbols/affinity")
@describe(summary="Every symbol's affinity to each emotive, for a node", tag="knowledge",
          response=R.AffinitiesResponse, params=NODE_PARAMS,
          description="Only symbols with some affinity appear; an unknown node answers `{}`.")
def all_affinities():
    return jsonify(svc.all_affinities(ctx(), request_node()))


@bp.get("/symbols/<symbol>/affinity")
@describe(summary="One symbol's affinity to each emotive", tag="knowledge", response=R.SymbolAffinityResponse,
          params=NODE_PARAMS,
          description="The symbol is one percent-encoded path segment (`|` as `%7C`); an unknown symbol "
                      "answers `{}`.")
def symbol_affinity(symbol):
    return jsonify(svc.symbol_affinity(ctx(), request_node(), symbol))
