"""Node-level lookups: one pattern, and KATO's deprecated node-level views (api.md §7.4)."""
from __future__ import annotations

from kato_web.engine.pattern import PATTERN_PREFIX, strip_prefix
from kato_web.services.context import Context
from kato_web.services.sessions import kb_id_for
from kato_web.store import repositories as repo

DEPRECATION = ("Node-level {what} is deprecated: there is no node-level state any more. "
               "Use GET /sessions/{{session_id}}/{what} instead.")


def requested_node(query_node: str | None, test_id: str | None, node_header: str | None) -> str:
    """Pick the node id of a node-level request (api.md §3.3)."""
    if query_node is not None:
        return query_node
    if test_id:
        return test_id if test_id.startswith("test_") else "test_" + test_id
    if node_header:
        return node_header
    return "default_node"


def resolve_node(ctx: Context, query_node: str | None, test_id: str | None, node_header: str | None) -> str:
    """Pick the node of a node-level request and return its kb id (api.md §3.3)."""
    return kb_id_for(requested_node(query_node, test_id, node_header), ctx.config.service_name)


def pattern_view(row: dict) -> dict:
    """Return the pattern object of api.md §6.10."""
    view = {"name": PATTERN_PREFIX + row["name"], "pattern_data": row["events"], "length": row["length"],
            "frequency": row["frequency"]}
    if row["emotives"]:
        view["emotives"] = row["emotives"]
    view["metadata"] = row["metadata"] or {}
    return view


def get_pattern(ctx: Context, kb_id: str, pattern_id: str) -> dict:
    with ctx.db.transaction(write=False) as conn:
        row = repo.get_pattern(conn, kb_id, strip_prefix(pattern_id))
    if row is None:
        return {"pattern": {"status": "error", "message": f"Pattern {pattern_id} not found"}, "node_id": kb_id}
    return {"pattern": {"status": "okay", "pattern": pattern_view(row)}, "node_id": kb_id}


def node_percept_data(kb_id: str) -> dict:
    return {"percept_data": {}, "node_id": kb_id, "warning": DEPRECATION.format(what="percept-data")}


def node_cognition_data(kb_id: str) -> dict:
    return {"cognition_data": {"predictions": [], "emotives": {}, "symbols": [], "command": "", "metadata": {},
                               "path": [], "strings": [], "vectors": [], "short_term_memory": []},
            "node_id": kb_id, "warning": DEPRECATION.format(what="cognition-data")}
