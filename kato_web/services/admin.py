"""Admin use cases: the password, server-wide settings, the threshold preview, and browsing.

The admin views (kato_web/admin/) only parse a request, call one function here and
render its result; nothing here reads Flask's request or session. Browsing never
touches a session's expiry: an administrator looking at a session is not its client,
so looking must not keep it alive.
"""
from __future__ import annotations

import hashlib
import hmac
import json
import math
import re
import time
from dataclasses import dataclass

from kato_web.engine.pattern import PATTERN_PREFIX, strip_prefix
from kato_web.engine.predictor import PredictConfig, predict
from kato_web.engine.stm import SessionState
from kato_web.services import predict as predict_svc
from kato_web.services import session_config
from kato_web.services.context import Context
from kato_web.services.knowledge import node_knowledge
from kato_web.services.sessions import iso_z, server_defaults
from kato_web.store import repositories as repo

THRESHOLDS: tuple[float, ...] = tuple(round(i / 10, 1) for i in range(11))
PATTERNS_PER_PAGE = 25
SESSIONS_PER_PAGE = 50
# The preview lists at most this many predictions of the selected threshold: enough to
# judge a max_predictions choice, few enough to keep the page readable.
PREVIEW_TOP_ROWS = 25


# ---------------------------------------------------------------- password

def admin_enabled(ctx: Context) -> bool:
    return bool(ctx.config.admin_password)


def password_matches(ctx: Context, candidate: str) -> bool:
    """Tell whether `candidate` is the admin password, in constant time."""
    expected = ctx.config.admin_password
    if not expected or not isinstance(candidate, str):
        return False
    # Digests first, so the comparison does not even reveal the password's length.
    return hmac.compare_digest(hashlib.sha256(candidate.encode("utf-8")).digest(),
                               hashlib.sha256(expected.encode("utf-8")).digest())


# ---------------------------------------------------------------- settings

@dataclass(frozen=True)
class SettingInfo:
    kind: str  # int, float, bool, choice, list or text (empty = none)
    allowed: str
    help: str
    choices: tuple[str, ...] = ()


SETTING_INFO: dict[str, SettingInfo] = {
    "recall_threshold": SettingInfo(
        "float", "0.0 – 1.0",
        "Minimum similarity for a pattern to become a prediction: higher gives fewer, closer matches."),
    "max_predictions": SettingInfo(
        "int", "1 – 10000", "How many predictions are returned at most (the top ones after ranking)."),
    "max_pattern_length": SettingInfo(
        "int", "0 or more", "Auto-learn once the STM holds this many events (0 = never auto-learn)."),
    "persistence": SettingInfo(
        "int", "1 – 100", "How many emotive snapshots each learned pattern keeps (rolling window)."),
    "indexer_type": SettingInfo(
        "choice", "VI, LSH, ANNOY, FAISS", "Vector indexer name, kept for KATO compatibility.",
        session_config.INDEXER_TYPES),
    "sort_symbols": SettingInfo("bool", "true / false", "Sort the symbols inside each observed event."),
    "process_predictions": SettingInfo(
        "bool", "true / false", "Compute predictions at observe time (what cognition data reports)."),
    "use_token_matching": SettingInfo(
        "bool", "true / false", "Match whole symbols (true) or characters of the joined symbols (false)."),
    "fuzzy_token_threshold": SettingInfo(
        "float", "0.0 – 1.0",
        "Pair an observed symbol with a similar pattern symbol at least this close (reported as an "
        "anomaly, counted as a match); 0.0 = off."),
    "affinity_emotive": SettingInfo(
        "text", "an emotive name, or empty for off",
        "Weigh matches by the symbols' learned affinity for this emotive (the weighted_* metrics, "
        "and potential uses them)."),
    "stm_mode": SettingInfo(
        "choice", "CLEAR, ROLLING",
        "After an auto-learn: CLEAR empties the STM, ROLLING keeps its last max_pattern_length − 1 events.",
        session_config.STM_MODES),
    "rank_sort_algo": SettingInfo(
        "choice", "one of 20 metrics", "The prediction field that ranks predictions, highest first.",
        session_config.RANK_SORT_ALGOS),
    "filter_pipeline": SettingInfo(
        "list", ", ".join(session_config.FILTER_STAGES),
        "Candidate filters applied before scoring, comma-separated; empty scores every pattern.",
        session_config.FILTER_STAGES),
    "length_min_ratio": SettingInfo(
        "float", "0.0 – 1.0", "Length filter: shortest pattern, as a fraction of the STM's symbol count."),
    "length_max_ratio": SettingInfo(
        "float", "1.0 or more", "Length filter: longest pattern, as a multiple of the STM's symbol count."),
    "jaccard_threshold": SettingInfo(
        "float", "0.0 – 1.0", "Jaccard filter: least symbol-set similarity a pattern needs."),
    "jaccard_min_overlap": SettingInfo(
        "int", "1 or more", "Jaccard filter: least number of symbols a pattern must share with the STM."),
    "minhash_threshold": SettingInfo(
        "float", "0.0 – 1.0", "MinHash filter threshold (accepted; the stage is lossless in kato-web)."),
    "minhash_bands": SettingInfo("int", "1 – 100", "MinHash LSH bands (accepted; lossless in kato-web)."),
    "minhash_rows": SettingInfo("int", "1 – 20", "Rows per MinHash band (accepted; lossless in kato-web)."),
    "minhash_num_hashes": SettingInfo(
        "int", "10 – 256", "MinHash signature size (accepted; lossless in kato-web)."),
    "bloom_false_positive_rate": SettingInfo(
        "float", "0.0001 – 0.1", "Bloom pre-filter false-positive rate (accepted; lossless in kato-web)."),
    "max_candidates_per_stage": SettingInfo(
        "int", "100 or more", "Safety cap on the candidates one filter stage may pass on."),
    "enable_filter_metrics": SettingInfo(
        "bool", "true / false", "Log per-stage filter timings and counts (no effect on results)."),
}

# The two settings this page exists for come first, then the rest in KATO's order.
SETTING_KEYS: tuple[str, ...] = ("recall_threshold", "max_predictions") + tuple(
    key for key in session_config.CONFIG_KEYS if key not in ("recall_threshold", "max_predictions"))
PRIMARY_KEYS = SETTING_KEYS[:2]

_INT = re.compile(r"[+-]?\d+")


def parse_form_value(key: str, raw: str):
    """Turn a form string into the setting's type; leave it a string when it is not one.

    A string that is no valid value of the type is passed on as is, so the API's own
    checks (session_config.CHECKS) reject it with the API's own message.
    """
    kind = SETTING_INFO[key].kind
    text = (raw or "").strip()
    if kind == "int":
        return int(text) if _INT.fullmatch(text) else text
    if kind == "float":
        try:
            value = float(text)
        except ValueError:
            return text
        return value if math.isfinite(value) else text
    if kind == "bool":
        return {"true": True, "false": False}.get(text.lower(), text)
    if kind == "list":
        return [part.strip() for part in text.split(",") if part.strip()]
    if kind == "text":
        return text or None
    return text


def format_value(value) -> str:
    """Render a setting's value the way the form takes it back."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (list, tuple)):
        return ", ".join(str(v) for v in value)
    return str(value)


def display_value(value) -> str:
    """Render a setting's value for reading: lists as JSON, so an empty one shows as []."""
    if value is None:
        return "(off)"
    if isinstance(value, (list, tuple)):
        return json.dumps(list(value))
    return format_value(value)


def current_settings(ctx: Context) -> tuple[dict, dict]:
    """Return (effective server defaults, the keys stored in the settings table)."""
    with ctx.db.transaction(write=False) as conn:
        stored = repo.load_settings(conn)
        effective = server_defaults(ctx, conn)
    return effective, {k: v for k, v in stored.items() if k in SETTING_INFO}


def settings_form(ctx: Context, submitted: dict | None = None, errors: dict | None = None) -> list[dict]:
    """Return one row per setting: value, environment default, allowed range, help and error."""
    effective, stored = current_settings(ctx)
    env = ctx.config.session_defaults
    errors = errors or {}
    rows = []
    for key in SETTING_KEYS:
        info = SETTING_INFO[key]
        shown = submitted[key] if submitted and key in submitted else format_value(effective[key])
        rows.append({"key": key, "value": shown, "kind": info.kind, "allowed": info.allowed,
                     "help": info.help, "choices": info.choices, "error": errors.get(key),
                     "env_default": display_value(env[key]), "stored": key in stored,
                     "primary": key in PRIMARY_KEYS})
    return rows


def save_settings(ctx: Context, form: dict) -> tuple[dict, list[str]]:
    """Validate and store the submitted server defaults: all of them, or none on any error.

    Returns (errors, changed keys). A value equal to the environment default removes the
    stored row, so the environment governs that key again.
    """
    submitted = {key: parse_form_value(key, form[key]) for key in SETTING_KEYS if key in form}
    # The API's own update check and normalisation, so both accept exactly the same values.
    applied, errors = session_config.overrides_from_update(submitted)
    if errors:
        return errors, []
    env = ctx.config.session_defaults
    now = ctx.clock()
    changed = []
    with ctx.db.transaction() as conn:
        before = server_defaults(ctx, conn)
        for key, value in applied.items():
            if value == env[key] and type(value) is type(env[key]):
                repo.delete_setting(conn, key)
            else:
                repo.save_setting(conn, key, value, now)
            if value != before[key]:
                changed.append(key)
    return {}, changed


# ---------------------------------------------------------------- threshold preview

class PreviewError(ValueError):
    """A preview request that cannot run; `field` names the form field at fault."""

    def __init__(self, field: str, message: str):
        super().__init__(message)
        self.field = field
        self.message = message


def parse_stm(text: str) -> list[list[str]]:
    """Parse an STM typed as JSON: a list of events, each a list of strings."""
    try:
        stm = json.loads(text)
    except (ValueError, TypeError):
        raise PreviewError("stm", 'Not valid JSON; write a list of events, e.g. [["a"], ["b", "c"]]') from None
    if not isinstance(stm, list) or not all(
            isinstance(event, list) and all(isinstance(s, str) for s in event) for event in stm):
        raise PreviewError("stm", "Must be a list of events, each a list of strings")
    return [list(event) for event in stm if event]


def _number(field: str, raw, check_key: str):
    value = parse_form_value(check_key, str(raw))
    message = session_config.CHECKS[check_key](value)
    if message:
        raise PreviewError(field, message)
    return value


def _live_session(conn, session_id: str, now: float) -> dict | None:
    row = repo.get_session(conn, session_id)
    return row if row is not None and row["expires_at"] > now else None


def _prediction_row(prediction: dict) -> dict:
    return {key: prediction[key] for key in
            ("name", "similarity", "potential", "evidence", "frequency", "matches", "missing", "future")}


def threshold_preview(ctx: Context, kb_id: str | None = None, stm_text: str | None = None,
                      session_id: str | None = None, threshold=None, max_predictions=None) -> dict:
    """Predict one STM on one node at every threshold 0.0, 0.1, … 1.0, with counts and timings.

    The STM is typed as JSON or taken from a live session (whose node then wins). Every
    other prediction setting is the server default, so the table shows what a new
    session would get. Raises PreviewError for a bad form field.
    """
    now = ctx.clock()
    with ctx.db.transaction(write=False) as conn:
        defaults = server_defaults(ctx, conn)
        session_row = None
        if session_id:
            session_row = _live_session(conn, session_id, now)
            if session_row is None:
                raise PreviewError("session_id", f"No live session {session_id}")
            kb_id = session_row["kb_id"]
        if not kb_id:
            raise PreviewError("kb_id", "Choose a node")
        node = repo.get_node(conn, kb_id)
    if node is None:
        raise PreviewError("kb_id", f"No node {kb_id}")
    if session_row is not None:
        stm = SessionState.from_dict(session_row["state"]).stm
    elif stm_text and stm_text.strip():
        stm = parse_stm(stm_text)
        if defaults["sort_symbols"]:
            # A typed STM is taken as observed events, which the server would sort.
            stm = [sorted(event) for event in stm]
    else:
        raise PreviewError("stm", "Type an STM or give a session id")
    selected = _number("threshold", defaults["recall_threshold"] if threshold in (None, "") else threshold,
                       "recall_threshold")
    cap = _number("max_predictions", defaults["max_predictions"] if max_predictions in (None, "")
                  else max_predictions, "max_predictions")

    knowledge = node_knowledge(ctx, kb_id)
    settings = predict_svc.prediction_settings(defaults)
    rows = []
    # The worker's own index of the node (engine/index/), as live predictions use it: at each
    # θ the count of patterns that pass (no answer built), then the answer itself, capped as
    # a client would get it, timed. Each step holds the node's lock only for itself.
    for value in THRESHOLDS:
        config = PredictConfig.from_mapping({**settings, "recall_threshold": value, "max_predictions": cap})
        with knowledge.lock:
            index, stats = knowledge.index, knowledge.stats()
            candidates = index.count_matches(stm, stats, config)
            started = time.perf_counter()
            predictions, _ = predict(stm, index, stats, config)
            elapsed = (time.perf_counter() - started) * 1000.0
        rows.append({"threshold": value, "candidates": candidates,
                     "returned": len(predictions), "ms": elapsed,
                     "selected": math.isclose(value, selected),
                     "top": _prediction_row(predictions[0]) if predictions else None})
    config = PredictConfig.from_mapping({**settings, "recall_threshold": selected, "max_predictions": cap})
    with knowledge.lock:
        index, stats = knowledge.index, knowledge.stats()
        top, _ = predict(stm, index, stats, config)
        patterns = len(index)
    return {"kb_id": kb_id, "session_id": session_row["session_id"] if session_row else None,
            "stm": stm, "symbols": sum(len(e) for e in stm), "patterns": patterns,
            "threshold": selected, "max_predictions": cap, "rows": rows,
            "top": [_prediction_row(p) for p in top[:PREVIEW_TOP_ROWS]], "top_total": len(top),
            "chart": preview_chart(rows), "settings": settings}


def preview_chart(rows: list[dict], width: int = 640, height: int = 240) -> dict:
    """Lay out an SVG chart: a bar per threshold for the count, a line for the time."""
    left, right, top, bottom = 48, 56, 16, 36
    plot_w, plot_h = width - left - right, height - top - bottom
    max_count = max((r["candidates"] for r in rows), default=0) or 1
    max_ms = max((r["ms"] for r in rows), default=0.0) or 1.0
    slot = plot_w / max(1, len(rows))
    bars, points = [], []
    for i, row in enumerate(rows):
        h = plot_h * row["candidates"] / max_count
        x = left + i * slot
        bars.append({"x": round(x + slot * 0.15, 1), "y": round(top + plot_h - h, 1),
                     "w": round(slot * 0.7, 1), "h": round(h, 1), "cx": round(x + slot / 2, 1),
                     "label": f"{row['threshold']:.1f}", "count": row["candidates"],
                     "selected": row["selected"]})
        points.append(f"{x + slot / 2:.1f},{top + plot_h - plot_h * row['ms'] / max_ms:.1f}")
    return {"width": width, "height": height, "left": left, "right": width - right, "top": top,
            "bottom": top + plot_h, "bars": bars, "time_line": " ".join(points),
            "max_count": max_count, "max_ms": max_ms}


# ---------------------------------------------------------------- knowledge

def nodes_overview(ctx: Context) -> list[dict]:
    """Return every node with its pattern, symbol and live-session counts."""
    with ctx.db.transaction(write=False) as conn:
        nodes = repo.list_nodes(conn)
        patterns = repo.pattern_counts_by_node(conn)
        sessions = repo.live_session_counts_by_node(conn, ctx.clock())
        vectors = repo.count_vectors_by_node(conn)
    return [{"kb_id": n["kb_id"], "patterns": patterns.get(n["kb_id"], 0), "symbols": n["symbol_count"],
             "sessions": sessions.get(n["kb_id"], 0), "vectors": vectors.get(n["kb_id"], 0),
             "finalized": bool(n["finalized"]),
             "generation": n["generation"], "created_at": iso_z(n["created_at"])} for n in nodes]


def _page_number(page) -> int:
    try:
        return max(1, int(page))
    except (TypeError, ValueError):
        return 1


def _pages(total: int, per_page: int) -> int:
    return max(1, -(-total // per_page))


def _pattern_item(kb_id: str, row: dict) -> dict:
    return {"kb_id": kb_id, "name": row["name"], "full_name": PATTERN_PREFIX + row["name"],
            "events": row["events"], "length": row["length"], "frequency": row["frequency"],
            "emotives": row["emotives"] or [], "metadata": row["metadata"] or {}}


def node_patterns(ctx: Context, kb_id: str, symbol: str | None = None, prefix: str | None = None,
                  page=1, per_page: int = PATTERNS_PER_PAGE) -> dict | None:
    """Return one page of a node's patterns (most frequent first), or None for no such node."""
    symbol = (symbol or "").strip() or None
    name_prefix = strip_prefix((prefix or "").strip()).lower() or None
    page = _page_number(page)
    with ctx.db.transaction(write=False) as conn:
        if repo.get_node(conn, kb_id) is None:
            return None
        total = repo.count_search_patterns(conn, kb_id, name_prefix, symbol)
        pages = _pages(total, per_page)
        page = min(page, pages)
        rows = repo.search_patterns(conn, kb_id, name_prefix, symbol, limit=per_page,
                                    offset=(page - 1) * per_page)
        symbol_rows = _symbol_rows(conn, kb_id, [symbol]) if symbol else []
    return {"kb_id": kb_id, "rows": [_pattern_item(kb_id, r) for r in rows], "total": total,
            "page": page, "pages": pages, "symbol": symbol or "", "prefix": prefix or "",
            "symbol_rows": symbol_rows}


def _symbol_rows(conn, kb_id: str, symbols: list[str]) -> list[dict]:
    """Return each symbol's frequency, pattern-member frequency and affinity sums (kato-3.10.md §1.4c)."""
    stats = repo.symbols_by_name(conn, kb_id, symbols)
    affinity = repo.symbol_affinities(conn, kb_id, symbols=symbols)
    return [{"symbol": symbol, "frequency": stats.get(symbol, (0, 0))[0],
             "pattern_member_frequency": stats.get(symbol, (0, 0))[1], "affinity": affinity.get(symbol, {})}
            for symbol in symbols]


def pattern_detail(ctx: Context, kb_id: str, name: str) -> dict | None:
    """Return one pattern with its emotive averages, or None if there is none."""
    with ctx.db.transaction(write=False) as conn:
        row = repo.get_pattern(conn, kb_id, strip_prefix(name))
        if row is None:
            return None
        symbols = sorted({symbol for event in row["events"] for symbol in event})
        symbol_rows = _symbol_rows(conn, kb_id, symbols)
    item = _pattern_item(kb_id, row)
    item["symbols"] = symbol_rows
    window = item["emotives"]
    keys = sorted({k for snapshot in window for k in snapshot})
    item["emotive_keys"] = keys
    item["emotive_averages"] = {k: sum(s.get(k, 0.0) for s in window if k in s)
                                / sum(1 for s in window if k in s) for k in keys}
    item["created_at"] = iso_z(row["created_at"])
    return item


# ---------------------------------------------------------------- sessions

def sessions_overview(ctx: Context, page=1, per_page: int = SESSIONS_PER_PAGE) -> dict:
    """Return one page of live sessions, newest first, with STM length and expiry."""
    now = ctx.clock()
    page = _page_number(page)
    with ctx.db.transaction(write=False) as conn:
        total = repo.count_live_sessions(conn, now)
        pages = _pages(total, per_page)
        page = min(page, pages)
        rows = repo.list_sessions(conn, now, limit=per_page, offset=(page - 1) * per_page)
    items = []
    for row in rows:
        stm = SessionState.from_dict(row["state"]).stm
        items.append({"session_id": row["session_id"], "node_id": row["node_id"], "kb_id": row["kb_id"],
                      "stm_length": len(stm), "symbols": sum(len(e) for e in stm),
                      "created_at": iso_z(row["created_at"]), "expires_at": iso_z(row["expires_at"]),
                      "expires_in": max(0, int(row["expires_at"] - now)),
                      "overrides": len(row["config"] or {})})
    return {"rows": items, "total": total, "page": page, "pages": pages}


def explain(prediction: dict) -> dict:
    """Lay a prediction out per event: past, present (matched vs missing), extras, future."""
    present = []
    for i, event in enumerate(prediction["present"]):
        missing = set(prediction["missing"][i]) if i < len(prediction["missing"]) else set()
        present.append([{"symbol": s, "matched": s not in missing} for s in event])
    return {"name": prediction["name"], "past": prediction["past"], "present": present,
            "extras": prediction["extras"], "future": prediction["future"],
            "matches": prediction["matches"], "missing": prediction["missing"],
            # Fuzzy pairs (kato-3.10.md §1.4b): observed symbol, expected symbol, similarity.
            "anomalies": prediction.get("anomalies") or [],
            "metrics": {key: prediction[key] for key in
                        ("similarity", "evidence", "confidence", "snr", "potential", "frequency",
                         "fragmentation")}}


def session_detail(ctx: Context, session_id: str) -> dict | None:
    """Return a live session's STM, configuration and explained current predictions, or None."""
    now = ctx.clock()
    with ctx.db.transaction(write=False) as conn:
        row = _live_session(conn, session_id, now)
        if row is None:
            return None
        defaults = server_defaults(ctx, conn)
    overrides = row["config"] or {}
    config = session_config.effective_config(overrides, defaults)
    state = SessionState.from_dict(row["state"])
    predictions, future_potentials = predict_svc.compute(ctx, row["kb_id"], state.stm, config)
    return {"session_id": session_id, "node_id": row["node_id"], "kb_id": row["kb_id"],
            "created_at": iso_z(row["created_at"]), "expires_at": iso_z(row["expires_at"]),
            "expires_in": max(0, int(row["expires_at"] - now)), "ttl_seconds": row["ttl_seconds"],
            "metadata": row["metadata"] or {}, "stm": state.stm, "time": state.time,
            "emotives": state.emotives[-1] if state.emotives else {},
            "config": [{"key": k, "value": display_value(v), "override": k in overrides}
                       for k, v in config.items()],
            "predictions": [explain(p) for p in predictions],
            "future_potentials": future_potentials}
