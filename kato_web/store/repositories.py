"""Repositories: the only place that speaks SQL. They take an open connection.

Each function runs inside the caller's transaction (see `Database.transaction`),
so a service composes several of them atomically.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, NamedTuple

from sqlalchemy import (BigInteger, Float, Integer, Text, bindparam, case, cast, delete, func, insert, literal,
                        literal_column, null, select, text, union_all, update)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection

from . import jsoncodec
from .models import (Evaluation, Maintenance, Node, Pattern, Session, Setting, Symbol, SymbolAffinity,
                     Vector)

nodes_t = Node.__table__
patterns_t = Pattern.__table__
symbols_t = Symbol.__table__
sessions_t = Session.__table__
settings_t = Setting.__table__
affinity_t = SymbolAffinity.__table__
vectors_t = Vector.__table__
maintenance_t = Maintenance.__table__
evaluations_t = Evaluation.__table__

# SQLite caps bound parameters per statement; stay well below it.
_ROWS_PER_STATEMENT = 500

# The upserts of learning and session creation, as SQL that PostgreSQL and SQLite (3.35+) both
# accept. The dialects' INSERT … ON CONFLICT constructs are never cached by SQLAlchemy (they
# carry no cache key), so each use compiled them anew: ~0.5 ms of CPU per statement, two per
# learn (measured: a learn request's CPU fell by ~2 ms). A text statement is compiled once;
# its JSON parameters and results keep the columns' types.
# One row per distinct pattern of a batch of learns: `frequency` is how many of the batch's
# learns it has, created_seq the sequence of the first of them, updated_seq of the last.
# What the learning upserts do with a row that exists, for both the VALUES (SQLite) and the
# unnest (PostgreSQL) forms below: add the learns and counts atomically, take the newer sequence.
_PATTERNS_INTO = """
INSERT INTO patterns (kb_id, name, events, length, frequency, emotives, metadata, created_at,
                      created_seq, updated_seq)"""
_PATTERNS_ON_CONFLICT = """
ON CONFLICT (kb_id, name) DO UPDATE SET frequency = patterns.frequency + excluded.frequency,
                                        updated_seq = excluded.updated_seq
RETURNING name, frequency, emotives, metadata, created_seq"""
_SYMBOLS_INTO = """
INSERT INTO symbols (kb_id, symbol, frequency, pattern_member_frequency, updated_seq)"""
_SYMBOLS_ON_CONFLICT = """
ON CONFLICT (kb_id, symbol) DO UPDATE SET
    frequency = symbols.frequency + excluded.frequency,
    pattern_member_frequency = symbols.pattern_member_frequency + excluded.pattern_member_frequency,
    updated_seq = excluded.updated_seq
RETURNING symbol, frequency, pattern_member_frequency"""
_AFFINITY_INTO = """
INSERT INTO symbol_affinity (kb_id, symbol, emotive, total, updated_seq)"""
_AFFINITY_ON_CONFLICT = """
ON CONFLICT (kb_id, symbol, emotive) DO UPDATE SET
    total = symbol_affinity.total + excluded.total,
    updated_seq = excluded.updated_seq
RETURNING symbol, emotive, total"""

_PATTERNS_UPSERT = _PATTERNS_INTO + """
VALUES {rows}""" + _PATTERNS_ON_CONFLICT

_PATTERNS_PER_STATEMENT = 100

_PATTERN_VALUES_UPDATE = """
UPDATE patterns SET emotives = :w_emotives, metadata = :w_metadata
WHERE kb_id = :w_kb_id AND name = :w_name"""

_NODE_COUNTERS = """
UPDATE nodes SET total_unique_patterns = total_unique_patterns + :new_patterns,
                 total_pattern_frequencies = total_pattern_frequencies + :new_patterns,
                 total_symbols_in_patterns_frequencies = total_symbols_in_patterns_frequencies + :symbols,
                 symbol_count = symbol_count + :new_symbols
WHERE kb_id = :kb_id"""

_ENSURE_NODE = """
INSERT INTO nodes (kb_id, created_at, change_seq, generation, finalized, total_unique_patterns,
                   total_pattern_frequencies, total_symbols_in_patterns_frequencies, symbol_count)
VALUES (:kb_id, :now, 0, 0, false, 0, 0, 0, 0)
ON CONFLICT (kb_id) DO NOTHING"""

_SYMBOLS_UPSERT = _SYMBOLS_INTO + """
VALUES {rows}""" + _SYMBOLS_ON_CONFLICT

# Affinity sums (kato-3.10.md §1.4c): an atomic add per (symbol, emotive), exact whatever the
# concurrency (learns on a node are serialised by its row lock anyway).
_AFFINITY_UPSERT = _AFFINITY_INTO + """
VALUES {rows}""" + _AFFINITY_ON_CONFLICT

# A vector is named by its content (VCTR|sha1), so a second learn of it stores nothing new.
_VECTOR_INSERT = """
INSERT INTO vectors (kb_id, name, dim, components, created_seq)
VALUES (:v_kb_id, :v_name, :v_dim, :v_components, :v_seq)
ON CONFLICT (kb_id, name) DO NOTHING"""

# Statements on the hot path are built once (with bound parameters) and reused:
# building a Core statement and its cache key costs more CPU than running it
# (~1 ms for touch_session), and a reused statement's cache key is memoised.
_statements: dict[tuple, Any] = {}


def _statement(key: tuple, build):
    stmt = _statements.get(key)
    if stmt is None:
        stmt = _statements[key] = build()
    return stmt


def _upsert(conn: Connection, table):
    """Return the dialect's INSERT that supports ON CONFLICT."""
    if conn.dialect.name == "postgresql":
        return postgresql.insert(table)
    if conn.dialect.name == "sqlite":
        return sqlite.insert(table)
    raise RuntimeError(f"unsupported database dialect {conn.dialect.name!r}")


# ---------------------------------------------------------------- sessions

def insert_session(conn: Connection, row: dict) -> None:
    conn.execute(insert(sessions_t).values(**row))


def _settings_object_for(dialect: str):
    """Return a scalar subquery: every server setting as one JSON object (NULL when none)."""
    if dialect == "postgresql":
        agg = func.json_object_agg(settings_t.c.key, settings_t.c.value)
    else:
        agg = func.json_group_object(settings_t.c.key, func.json(settings_t.c.value))
    return select(agg).scalar_subquery().label(SETTINGS_COLUMN)


SETTINGS_COLUMN = "server_settings_"
NODE_COLUMNS = ("node_generation_", "node_change_seq_")


def _node_version_columns():
    """Scalar subqueries: the session's node's generation and change sequence.

    Written as SQL text on purpose. SQLAlchemy renders an UPDATE's RETURNING clause for SQLite
    without table names, nested subqueries included, so the Core form
    ``select(nodes.generation).where(nodes.kb_id == sessions.kb_id)`` became
    ``(SELECT nodes.generation FROM nodes WHERE kb_id = kb_id)``: both names resolve to
    nodes.kb_id, the condition is always true, and SQLite answered the FIRST node's version for
    every session. A worker then compared its copy of the session's node with another node's
    (generation, change_seq) and, when the two happened to be equal, skipped the refresh and
    predicted from a copy that missed the latest learns (0 predictions right after a learn).
    """
    return tuple(literal_column(f"(SELECT nodes.{column} FROM nodes WHERE nodes.kb_id = sessions.kb_id)",
                                BigInteger).label(label)
                 for column, label in zip(("generation", "change_seq"), NODE_COLUMNS))


def _split_settings(row) -> tuple[dict, dict]:
    values = dict(row)
    settings = values.pop(SETTINGS_COLUMN)
    if isinstance(settings, str):  # SQLite hands JSON back as text
        settings = json.loads(settings)
    if NODE_COLUMNS[0] in values:
        values["node_version"] = {"generation": values.pop(NODE_COLUMNS[0]),
                                  "change_seq": values.pop(NODE_COLUMNS[1])}
    return values, settings or {}


# Stored observe-time predictions can be a hundred full objects: decoded only by the one
# request that reads them (cognition-data), never by every session request.
_OBSERVE_TIME_COLUMNS = ("predictions", "prediction_input")


def _touch_statement(dialect: str, slide: bool, lock: bool, with_settings: bool, with_node: bool = False,
                     with_predictions: bool = True):
    extra = (_settings_object_for(dialect),) if with_settings else ()
    if with_node:
        extra += _node_version_columns()
    row_columns = [c for c in sessions_t.c if with_predictions or c.name not in _OBSERVE_TIME_COLUMNS]
    sid, now = bindparam("sid"), bindparam("now", type_=Float)
    live = (sessions_t.c.session_id == sid, sessions_t.c.expires_at > now)
    if slide:
        new_expiry = now + sessions_t.c.ttl_seconds
        return (update(sessions_t).where(*live)
                .values(expires_at=case((sessions_t.c.expires_at < new_expiry, new_expiry),
                                        else_=sessions_t.c.expires_at),
                        access_count=sessions_t.c.access_count + 1)
                .returning(*row_columns, *extra))
    stmt = select(*row_columns, *extra).where(*live)
    if lock:
        stmt = stmt.with_for_update(of=sessions_t) if with_settings else stmt.with_for_update()
    return stmt


def touch_session(conn: Connection, session_id: str, now: float, slide: bool,
                  lock: bool = True, with_settings: bool = False, with_node: bool = False,
                  with_predictions: bool | None = None):
    """Return the live session row (locked until commit when `lock`), sliding its expiry.

    Sliding never moves expiry backwards, so an explicit extend lasts at least until
    the time it set (spec/README.md decision 10.3). With `with_settings` it returns
    (row, server settings) instead, read by the same statement: one round trip fewer
    on every session-scoped request. With `with_node` (and `with_settings`) the row also
    has "node_version": the node's {"generation", "change_seq"} as this statement saw them.
    `with_predictions` (default: without settings only) includes the stored observe-time
    predictions and their input; otherwise the row has neither key.
    """
    dialect = conn.dialect.name
    with_node = with_node and with_settings
    if with_predictions is None:
        with_predictions = not with_settings
    stmt = _statement(("touch", dialect, slide, lock and not slide, with_settings, with_node, with_predictions),
                      lambda: _touch_statement(dialect, slide, lock, with_settings, with_node, with_predictions))
    row = conn.execute(stmt, {"sid": session_id, "now": now}).mappings().first()
    if not with_settings:
        return dict(row) if row else None
    return _split_settings(row) if row else (None, {})


# The write path's two statements (observe, observe-sequence, learn: lock and read the session
# with the server settings, then write it), sent straight to the driver. Through SQLAlchemy Core
# each cost more Python than the database spent on it: compiling the cache key, building the
# result's metadata and a mapping row, running the type processors one column at a time
# (measured: ~0.2 ms of an observe's ~1 ms of app CPU). The SQL is the same as the Core forms
# above (touch_session(slide=False, lock=True, with_settings=True) and update_session(slide_at=…));
# the JSON columns are decoded and encoded by jsoncodec as the engine's JSON type does.
_LOCKED_COLUMNS = ("session_id", "node_id", "kb_id", "created_at", "expires_at", "ttl_seconds", "metadata",
                   "config", "state", "access_count")
_LOCK_FOR_WRITE = {
    "postgresql": ("SELECT " + ", ".join(_LOCKED_COLUMNS)
                   + ", (SELECT json_object_agg(settings.key, settings.value) FROM settings)"
                   " FROM sessions WHERE session_id = %(sid)s AND expires_at > %(now)s FOR UPDATE OF sessions"),
    "sqlite": ("SELECT " + ", ".join(_LOCKED_COLUMNS)
               + ", (SELECT json_group_object(settings.key, json(settings.value)) FROM settings)"
               " FROM sessions WHERE session_id = :sid AND expires_at > :now"),
}
_WRITE_JSON_COLUMNS = frozenset(("state", "prediction_input", "predictions"))


def _placeholder(dialect: str, name: str) -> str:
    return f"%({name})s" if dialect == "postgresql" else f":{name}"


def _driver_execute(conn: Connection, sql: str, params: dict, fetch: bool = False):
    """Run `sql` on the connection's driver connection, in its transaction; return the first row
    when `fetch`.

    A driver error goes through SQLAlchemy's own handling, as for any statement: it is raised
    wrapped (sqlalchemy.exc.OperationalError for a database that went away, answered 503), and
    a disconnect invalidates the connection and the pool.
    """
    cursor = conn.connection.dbapi_connection.cursor()
    try:
        cursor.execute(sql, params)
        return cursor.fetchone() if fetch else None
    except BaseException as err:
        conn._handle_dbapi_exception(err, sql, params, cursor, None)
        raise  # not reached: the handler raises
    finally:
        cursor.close()


def _json_value(value):
    """A JSON column's value as the driver hands it: text on SQLite, decoded on PostgreSQL."""
    return jsoncodec.loads(value) if isinstance(value, (str, bytes)) else value


def lock_session_for_write(conn: Connection, session_id: str, now: float) -> tuple[dict | None, dict]:
    """Return (live session row locked until commit, server settings), or (None, {}).

    The row is touch_session(slide=False, lock=True, with_settings=True)'s: without the
    observe-time predictions; the write that follows slides the expiry (update_session_written).
    """
    dialect = conn.dialect.name
    if dialect not in _LOCK_FOR_WRITE:
        return touch_session(conn, session_id, now, slide=False, lock=True, with_settings=True)
    found = _driver_execute(conn, _LOCK_FOR_WRITE[dialect], {"sid": session_id, "now": now}, fetch=True)
    if found is None:
        return None, {}
    row = dict(zip(_LOCKED_COLUMNS, found))
    for key in ("metadata", "config", "state"):
        row[key] = _json_value(row[key])
    return row, _json_value(found[-1]) or {}


def update_session_written(conn: Connection, session_id: str, slide_at: float | None, **values: Any) -> None:
    """update_session(conn, session_id, slide_at=slide_at, **values) for the JSON columns a write
    changes (state, prediction_input, predictions), straight on the driver.

    None is written as SQL NULL, as update_session does.
    """
    dialect = conn.dialect.name
    if dialect not in _LOCK_FOR_WRITE or not _WRITE_JSON_COLUMNS.issuperset(values):
        update_session(conn, session_id, slide_at=slide_at, **values)
        return
    keys = tuple(sorted(values))
    nulls = tuple(k for k in keys if values[k] is None)
    slide = slide_at is not None
    if not keys and not slide:
        return
    key = ("update_session_written", dialect, keys, nulls, slide)
    sql = _statements.get(key)
    if sql is None:
        cast = "::json" if dialect == "postgresql" else ""
        sets = [f"{k} = NULL" if k in nulls else f"{k} = {_placeholder(dialect, 'v_' + k)}{cast}" for k in keys]
        if slide:
            new_expiry = f"{_placeholder(dialect, 'slide_at')} + sessions.ttl_seconds"
            sets.append(f"expires_at = CASE WHEN (sessions.expires_at < {new_expiry}) THEN {new_expiry} "
                        "ELSE sessions.expires_at END")
            sets.append("access_count = (sessions.access_count + 1)")
        sql = _statements[key] = (f"UPDATE sessions SET {', '.join(sets)} "
                                  f"WHERE sessions.session_id = {_placeholder(dialect, 'sid')}")
    params = {"v_" + k: jsoncodec.dumps(v) for k, v in values.items() if v is not None}
    params["sid"] = session_id
    if slide:
        params["slide_at"] = slide_at
    _driver_execute(conn, sql, params)


def get_session(conn: Connection, session_id: str) -> dict | None:
    row = conn.execute(select(sessions_t).where(sessions_t.c.session_id == session_id)).mappings().first()
    return dict(row) if row else None


def update_session(conn: Connection, session_id: str, slide_at: float | None = None, **values: Any) -> None:
    """Write `values` into the session's row.

    `slide_at`: also slide its expiry as touch_session(slide=True) does at that time (and count
    the access), for a write that read the row with touch_session(slide=False, lock=True): one
    new row version per request instead of two (sliding, then the write).
    """
    keys = tuple(sorted(values))
    # None is written as SQL NULL, as .values(key=None) does (a bound None would be JSON null).
    nulls = tuple(k for k in keys if values[k] is None)
    slide = slide_at is not None

    def build():
        # Parameter names must differ from column names in an UPDATE's SET clause.
        columns = {k: null() if k in nulls else bindparam("v_" + k, type_=sessions_t.c[k].type) for k in keys}
        if slide:
            new_expiry = bindparam("slide_at", type_=Float) + sessions_t.c.ttl_seconds
            columns["expires_at"] = case((sessions_t.c.expires_at < new_expiry, new_expiry),
                                         else_=sessions_t.c.expires_at)
            columns["access_count"] = sessions_t.c.access_count + 1
        return update(sessions_t).where(sessions_t.c.session_id == bindparam("sid")).values(columns)

    params = {"v_" + k: v for k, v in values.items() if v is not None}
    params["sid"] = session_id
    if slide:
        params["slide_at"] = slide_at
    conn.execute(_statement(("update_session", keys, nulls, slide), build), params)


def delete_session(conn: Connection, session_id: str) -> bool:
    return conn.execute(delete(sessions_t).where(sessions_t.c.session_id == session_id)).rowcount > 0


def count_live_sessions(conn: Connection, now: float) -> int:
    return conn.execute(select(func.count()).select_from(sessions_t)
                        .where(sessions_t.c.expires_at > now)).scalar_one()


def count_sessions(conn: Connection) -> int:
    """Every session row, expired ones included."""
    return conn.execute(select(func.count()).select_from(sessions_t)).scalar_one()


def delete_expired_sessions(conn: Connection, now: float) -> int:
    return conn.execute(delete(sessions_t).where(sessions_t.c.expires_at <= now)).rowcount


def delete_expired_sessions_batch(conn: Connection, now: float, limit: int) -> int:
    """Delete up to `limit` sessions that expired at or before `now`; return how many.

    PostgreSQL skips rows a request holds locked (a session being touched right now is never
    waited for; the next sweep gets it if it is still expired then).
    """
    if conn.dialect.name == "postgresql":
        victims = (select(sessions_t.c.session_id).where(sessions_t.c.expires_at <= now)
                   .limit(limit).with_for_update(skip_locked=True))
    else:
        victims = select(sessions_t.c.session_id).where(sessions_t.c.expires_at <= now).limit(limit)
    return conn.execute(delete(sessions_t).where(sessions_t.c.session_id.in_(victims.scalar_subquery()))).rowcount


_TAKE_LEASE = text("""
INSERT INTO maintenance (name, holder, lease_until, last_run_at, last_count, total_count)
VALUES (:name, :holder, :until, NULL, 0, 0)
ON CONFLICT (name) DO UPDATE SET holder = excluded.holder, lease_until = excluded.lease_until
WHERE maintenance.lease_until <= :now OR maintenance.holder = excluded.holder
RETURNING name""")


def take_lease(conn: Connection, name: str, holder: str, now: float, until: float) -> bool:
    """Hold job `name` until `until` if nobody else holds it at `now` (one atomic statement)."""
    return conn.execute(_TAKE_LEASE, {"name": name, "holder": holder, "now": now,
                                      "until": until}).first() is not None


def record_job_run(conn: Connection, name: str, now: float, count: int) -> None:
    """Note that job `name` finished at `now` having handled `count` rows."""
    conn.execute(text(
        "INSERT INTO maintenance (name, holder, lease_until, last_run_at, last_count, total_count) "
        "VALUES (:name, '', 0, :now, :count, :count) ON CONFLICT (name) DO UPDATE SET "
        "last_run_at = excluded.last_run_at, last_count = excluded.last_count, "
        "total_count = maintenance.total_count + excluded.total_count"),
        {"name": name, "now": now, "count": count})


def get_job(conn: Connection, name: str) -> dict | None:
    row = conn.execute(select(maintenance_t).where(maintenance_t.c.name == name)).mappings().first()
    return dict(row) if row else None


def list_sessions(conn: Connection, now: float, limit: int = 100, offset: int = 0) -> list[dict]:
    rows = conn.execute(
        select(sessions_t).where(sessions_t.c.expires_at > now)
        .order_by(sessions_t.c.created_at.desc(), sessions_t.c.session_id)
        .limit(limit).offset(offset)
    ).mappings().all()
    return [dict(r) for r in rows]


# ---------------------------------------------------------------- nodes

def ensure_node(conn: Connection, kb_id: str, now: float) -> None:
    """Create the node's row unless it exists (every session creation asks)."""
    conn.execute(_statement(("ensure_node",), lambda: text(_ENSURE_NODE).bindparams(
        bindparam("now", type_=Float))), {"kb_id": kb_id, "now": now})


def get_node(conn: Connection, kb_id: str) -> dict | None:
    stmt = _statement(("get_node",), lambda: select(nodes_t).where(nodes_t.c.kb_id == bindparam("kb_id")))
    row = conn.execute(stmt, {"kb_id": kb_id}).mappings().first()
    return dict(row) if row else None


def lock_node_for_change(conn: Connection, kb_id: str, now: float, steps: int = 1) -> dict:
    """Move the node's change sequence on by `steps`, locking its row until commit; return the row.

    The node row almost always exists (creating a session makes it), so the UPDATE comes
    first and the row is only created, then updated, when it was missing.
    """
    stmt = _statement(("bump_node",), lambda: (
        update(nodes_t).where(nodes_t.c.kb_id == bindparam("node_kb_id"))
        .values(change_seq=nodes_t.c.change_seq + bindparam("node_steps", type_=BigInteger))
        .returning(*nodes_t.c)))
    params = {"node_kb_id": kb_id, "node_steps": steps}
    row = conn.execute(stmt, params).mappings().first()
    if row is None:
        ensure_node(conn, kb_id, now)
        row = conn.execute(stmt, params).mappings().one()
    return dict(row)


def finalize_node(conn: Connection, kb_id: str, now: float) -> int:
    """Mark the node finalized (kato-3.10.md decision 15); return its patterns with ≥ 1 symbol.

    The change sequence is bumped with it, so every worker's copy sees the flag on its next use.
    """
    lock_node_for_change(conn, kb_id, now)
    conn.execute(update(nodes_t).where(nodes_t.c.kb_id == kb_id).values(finalized=True))
    return conn.execute(select(func.count()).select_from(patterns_t)
                        .where(patterns_t.c.kb_id == kb_id, patterns_t.c.length >= 1)).scalar_one()


def list_nodes(conn: Connection) -> list[dict]:
    rows = conn.execute(select(nodes_t).order_by(nodes_t.c.kb_id)).mappings().all()
    return [dict(r) for r in rows]


# ---------------------------------------------------------------- settings

def load_settings(conn: Connection) -> dict:
    return {r.key: r.value for r in conn.execute(select(settings_t.c.key, settings_t.c.value))}


def save_setting(conn: Connection, key: str, value: Any, now: float) -> None:
    stmt = _upsert(conn, settings_t).values(key=key, value=value, updated_at=now)
    stmt = stmt.on_conflict_do_update(index_elements=["key"],
                                      set_={"value": stmt.excluded.value,
                                            "updated_at": stmt.excluded.updated_at})
    conn.execute(stmt)


def delete_setting(conn: Connection, key: str) -> None:
    conn.execute(delete(settings_t).where(settings_t.c.key == key))


# ---------------------------------------------------------------- patterns and symbols

class PatternLearn(NamedTuple):
    """One learn of a pattern, as `learn_patterns` stores it.

    `emotives_window_fn(old_window)` and `metadata_merge_fn(old_metadata, is_new)` compute the
    pattern's new JSON values from its stored ones (called while the pattern row is locked);
    `affinity` (emotive → value) is added to every distinct symbol of the pattern; `vectors`
    ((name, dimension, float64 bytes)) are stored unless the node has them already.
    """

    name: str
    events: list
    length: int
    symbol_counts: dict[str, int]
    emotives_window_fn: Any
    metadata_merge_fn: Any
    affinity: dict[str, float] | None = None
    vectors: tuple | list = ()


def learn_pattern(conn: Connection, kb_id: str, name: str, events: list, length: int,
                  symbol_counts: dict[str, int], emotives_window_fn, metadata_merge_fn,
                  now: float, affinity: dict[str, float] | None = None,
                  vectors: list[tuple[str, int, bytes]] = ()) -> dict:
    """Record one learn of a pattern atomically; return {'frequency', 'is_new', 'seq'}.

    The same as `learn_patterns` with one learn (see there).
    """
    return learn_patterns(conn, kb_id, [PatternLearn(name, events, length, symbol_counts, emotives_window_fn,
                                                     metadata_merge_fn, affinity, vectors)], now).results[0]


@dataclass
class LearnedBatch:
    """What `learn_patterns` did.

    `results`: per learn, {'frequency' (the pattern's, right after that learn), 'is_new', 'seq'}.
    `view`: with `view_after=n`, the node as it stood after the first n learns, in the shape
    `node_changes_since` answers (node row, patterns, symbols, affinities), relative to the
    node as it was before the batch (whose change sequence is view.node["change_seq"] - n).
    """

    results: list[dict]
    view: tuple | None = None
    seq_before: int = -1  # the node's change sequence before the batch


def learn_patterns(conn: Connection, kb_id: str, learns: list[PatternLearn], now: float,
                   view_after: int | None = None) -> LearnedBatch:
    """Record learns of patterns, in order, atomically (see LearnedBatch for the answer).

    The node row is locked first and its change sequence moved on by one per learn, so learns
    on one node are serialised and every learn has its own sequence number, as if each had been
    stored alone: learn i of the list gets the (i+1)-th new number, a pattern it creates gets
    that number as created_seq (the learn order every worker's index follows), and rows it
    changes get a number within the batch's range (workers read changes by range).

    Whatever the number of learns, the statements are the same few: the node's lock, one
    upsert of all the patterns (several learns of one pattern are one row that adds their
    count), one of all the symbols, the node's counters, and only when needed the patterns'
    changed emotive windows and metadata, the affinity sums and the vectors. Storing the
    learns of an observe-sequence one at a time cost four statements each, all of them while
    the node's lock was held: batch learning was as slow as its round trips.

    The results are exactly those of storing the learns one by one: frequencies and symbol
    statistics are integer sums; the emotive windows and metadata are computed learn after
    learn; affinity sums (floats, where the order of additions matters) are added in learn
    order, a pair that recurs going to a later statement.

    `view_after=n`: also return what the node held after its first n learns (an
    observe-sequence's predictions must see the learns before them and none after), built
    from what the statements return: the integer sums less the later learns' share, the
    windows as they were after learn n, affinity sums as returned by a statement that ends
    at learn n. No statement more is made for it.
    """
    if not learns:
        return LearnedBatch([], None, -1)
    node = lock_node_for_change(conn, kb_id, now, steps=len(learns))
    last_seq = int(node["change_seq"])
    first_seq = last_seq - len(learns) + 1
    cut = len(learns) if view_after is None else view_after

    # Patterns: one row per distinct name, in first-learn order.
    groups: dict[str, list[int]] = {}
    for i, learn in enumerate(learns):
        groups.setdefault(learn.name, []).append(i)
    # name → (frequency after the batch, emotives, metadata, created_seq)
    stored = _upsert_patterns(conn, kb_id, now, [
        (name, learns[indexes[0]].events, learns[indexes[0]].length, len(indexes), first_seq + indexes[0],
         first_seq + indexes[-1]) for name, indexes in groups.items()])

    results: list[dict] = [{}] * len(learns)
    changed_values = []
    view_patterns = []
    new_patterns = new_patterns_in_view = 0
    creates: list[bool] = [False] * len(learns)  # does learn i create its pattern?
    for name, indexes in groups.items():
        frequency, old_window, old_metadata, created_seq = stored[name]
        old_window, old_metadata = old_window or [], old_metadata or {}
        is_new = frequency == len(indexes)  # inserted now: older rows count earlier learns too
        new_patterns += is_new
        new_patterns_in_view += is_new and indexes[0] < cut
        creates[indexes[0]] = is_new
        window, metadata = old_window, old_metadata
        for ordinal, i in enumerate(indexes):
            learn = learns[i]
            window = learn.emotives_window_fn(window)
            metadata = learn.metadata_merge_fn(metadata, is_new and ordinal == 0)
            results[i] = {"frequency": frequency - len(indexes) + ordinal + 1,
                          "is_new": is_new and ordinal == 0, "seq": first_seq + i}
            if i < cut and (ordinal + 1 == len(indexes) or indexes[ordinal + 1] >= cut):
                view_patterns.append({"name": name, "events": learn.events, "frequency": results[i]["frequency"],
                                      "emotives": window, "length": learn.length, "created_seq": created_seq,
                                      "updated_seq": first_seq + i})
        if window != old_window or metadata != old_metadata:
            changed_values.append({"w_kb_id": kb_id, "w_name": name, "w_emotives": window,
                                   "w_metadata": metadata})
    if changed_values:
        conn.execute(_statement(("pattern_values",), _pattern_values_update), changed_values)

    # Symbols: per symbol, the occurrences of every learn and one membership per created
    # pattern, in total and (for the view) within the first `cut` learns.
    added: dict[str, list[int]] = {}
    for i, (learn, created) in enumerate(zip(learns, creates)):
        early = i < cut
        for symbol, count in learn.symbol_counts.items():
            sums = added.get(symbol)
            if sums is None:
                sums = added[symbol] = [0, 0, 0, 0]
            sums[0] += count
            sums[1] += created
            if early:
                sums[2] += count
                sums[3] += created
    new_symbols = new_symbols_in_view = 0
    view_symbols = []
    items = sorted(added.items())  # rows are locked in one order everywhere
    for symbol, frequency, member in _upsert_symbols(conn, kb_id, last_seq,
                                                     [(symbol, sums[0], sums[1]) for symbol, sums in items]):
        count, members, early_count, early_members = added[symbol]
        # A row is new iff its frequency is what this batch added (older rows are larger).
        is_new = frequency == count
        new_symbols += is_new
        if early_count:
            new_symbols_in_view += is_new
            view_symbols.append((symbol, member - members + early_members, frequency - count + early_count))

    # Affinity: each statement adds to a (symbol, emotive) at most once, and one ends at `cut`.
    rounds: list[list[tuple]] = []
    seen: set[tuple[str, str]] = set()
    view_rounds = 0
    for i, learn in enumerate(learns):
        if i == cut:
            view_rounds, seen = len(rounds), set()
        if not learn.affinity:
            continue
        emotives = sorted(learn.affinity.items())
        pairs = [(symbol, key, float(value)) for symbol in sorted(learn.symbol_counts) for key, value in emotives]
        if not seen or any((symbol, key) in seen for symbol, key, _ in pairs):
            rounds.append([])
            seen = set()
        rounds[-1].extend(pairs)
        seen.update((symbol, key) for symbol, key, _ in pairs)
    if cut == len(learns):
        view_rounds = len(rounds)
    view_affinity: dict[tuple[str, str], float] = {}
    for r, pairs in enumerate(rounds):
        totals = _add_affinity(conn, kb_id, sorted(pairs), last_seq)
        if r < view_rounds:
            view_affinity.update(totals)

    vector_rows, vector_names = [], set()
    for i, learn in enumerate(learns):
        for vector_name, dim, components in learn.vectors:
            if vector_name not in vector_names:  # the first learn of a vector stores it
                vector_names.add(vector_name)
                vector_rows.append({"v_kb_id": kb_id, "v_name": vector_name, "v_dim": dim,
                                    "v_components": components, "v_seq": first_seq + i})
    if vector_rows:
        conn.execute(_statement(("learn_vector",), _vector_insert), vector_rows)

    conn.execute(_statement(("node_counters",), lambda: text(_NODE_COUNTERS)), {
        "kb_id": kb_id, "new_patterns": new_patterns, "new_symbols": new_symbols,
        "symbols": sum(learn.length for learn in learns)})
    if view_after is None:
        return LearnedBatch(results, None, first_seq - 1)
    # The bump's row has the counters as they were before the batch.
    view_node = {"change_seq": first_seq - 1 + cut, "generation": node["generation"],
                 "symbol_count": node["symbol_count"] + new_symbols_in_view,
                 "total_unique_patterns": node["total_unique_patterns"] + new_patterns_in_view,
                 "total_pattern_frequencies": node["total_pattern_frequencies"] + new_patterns_in_view,
                 "finalized": bool(node["finalized"])}
    return LearnedBatch(results, (view_node, view_patterns, view_symbols,
                                  [(symbol, emotive, total) for (symbol, emotive), total
                                   in sorted(view_affinity.items())]), first_seq - 1)


# PostgreSQL gets the rows of the learning upserts as arrays (unnest): one statement text
# whatever the number of rows, which psycopg converts once and the server prepares once. Rows
# spelled out in VALUES made a new text for every row count, and with more than 50 parameters
# psycopg parsed the text anew on every execution. SQLite gets VALUES (no such costs there).
_PATTERNS_UPSERT_PG = _PATTERNS_INTO + """
SELECT :p_kb_id, t.name, CAST(t.events AS JSON), t.length, t.frequency, CAST('[]' AS JSON),
       CAST('{}' AS JSON), :p_now, t.created_seq, t.updated_seq
FROM unnest(CAST(:names AS TEXT[]), CAST(:events AS TEXT[]), CAST(:lengths AS INTEGER[]),
            CAST(:frequencies AS BIGINT[]), CAST(:created AS BIGINT[]), CAST(:updated AS BIGINT[]))
     AS t(name, events, length, frequency, created_seq, updated_seq)""" + _PATTERNS_ON_CONFLICT

_SYMBOLS_UPSERT_PG = _SYMBOLS_INTO + """
SELECT :s_kb_id, t.symbol, t.frequency, t.member, :s_seq
FROM unnest(CAST(:symbols AS TEXT[]), CAST(:frequencies AS BIGINT[]), CAST(:members AS BIGINT[]))
     AS t(symbol, frequency, member)""" + _SYMBOLS_ON_CONFLICT

_AFFINITY_UPSERT_PG = _AFFINITY_INTO + """
SELECT :a_kb_id, t.symbol, t.emotive, t.total, :a_seq
FROM unnest(CAST(:symbols AS TEXT[]), CAST(:emotives AS TEXT[]), CAST(:totals AS DOUBLE PRECISION[]))
     AS t(symbol, emotive, total)""" + _AFFINITY_ON_CONFLICT


def _upsert_patterns(conn: Connection, kb_id: str, now: float, rows: list[tuple]) -> dict[str, tuple]:
    """Upsert (name, events, length, learns, created_seq, updated_seq) rows; return
    {name: (frequency, emotives, metadata, created_seq)} as stored after it."""
    stored = {}
    if conn.dialect.name == "postgresql":
        names, events, lengths, frequencies, created, updated = zip(*rows)
        result = conn.execute(_statement(("learn_patterns_pg",), lambda: text(_PATTERNS_UPSERT_PG).bindparams(
            bindparam("p_now", type_=Float)).columns(name=Text, frequency=Integer, emotives=patterns_t.c.events.type,
                                                     metadata=patterns_t.c.events.type, created_seq=BigInteger)),
            {"p_kb_id": kb_id, "p_now": now, "names": list(names), "events": [jsoncodec.dumps(e) for e in events],
             "lengths": list(lengths), "frequencies": list(frequencies), "created": list(created),
             "updated": list(updated)})
        for name, frequency, emotives, metadata, created_seq in result:
            stored[name] = (int(frequency), emotives, metadata, int(created_seq))
        return stored
    for start in range(0, len(rows), _PATTERNS_PER_STATEMENT):
        chunk = rows[start:start + _PATTERNS_PER_STATEMENT]
        params: dict[str, Any] = {"p_kb_id": kb_id, "p_now": now, "p_emotives": [], "p_metadata": {}}
        for k, (name, events, length, frequency, created_seq, updated_seq) in enumerate(chunk):
            params[f"n{k}"], params[f"e{k}"], params[f"l{k}"] = name, events, length
            params[f"f{k}"], params[f"c{k}"], params[f"u{k}"] = frequency, created_seq, updated_seq
        for name, frequency, emotives, metadata, created_seq in conn.execute(
                _statement(("learn_patterns", len(chunk)), lambda: _patterns_upsert(len(chunk))), params):
            stored[name] = (int(frequency), emotives, metadata, int(created_seq))
    return stored


def _upsert_symbols(conn: Connection, kb_id: str, seq: int, rows: list[tuple]) -> list[tuple]:
    """Add (symbol, occurrences, memberships) rows (sorted by symbol) to the node's symbol
    statistics; return (symbol, frequency, pattern-member frequency) as stored after it."""
    if not rows:
        return []
    if conn.dialect.name == "postgresql":
        symbols, frequencies, members = zip(*rows)
        return [tuple(r) for r in conn.execute(
            _statement(("learn_symbols_pg",), lambda: text(_SYMBOLS_UPSERT_PG).columns(
                symbol=Text, frequency=Integer, pattern_member_frequency=Integer)),
            {"s_kb_id": kb_id, "s_seq": seq, "symbols": list(symbols), "frequencies": list(frequencies),
             "members": list(members)})]
    out = []
    for start in range(0, len(rows), _ROWS_PER_STATEMENT):
        chunk = rows[start:start + _ROWS_PER_STATEMENT]
        params = {"s_kb_id": kb_id, "s_seq": seq}
        for k, (symbol, frequency, member) in enumerate(chunk):
            params[f"s{k}"], params[f"f{k}"], params[f"m{k}"] = symbol, frequency, member
        out.extend(tuple(r) for r in conn.execute(
            _statement(("learn_symbols", len(chunk)), lambda: _symbols_upsert(len(chunk))), params))
    return out


def _add_affinity(conn: Connection, kb_id: str, pairs: list[tuple[str, str, float]],
                  seq: int) -> dict[tuple[str, str], float]:
    """Add each (symbol, emotive, value) of `pairs` (sorted, no pair twice) to the node's sums;
    return the sums they make."""
    if conn.dialect.name == "postgresql":
        symbols, emotives, values = zip(*pairs)
        rows = conn.execute(_statement(("learn_affinity_pg",), lambda: text(_AFFINITY_UPSERT_PG).columns(
            symbol=Text, emotive=Text, total=Float)), {"a_kb_id": kb_id, "a_seq": seq, "symbols": list(symbols),
                                                      "emotives": list(emotives), "totals": list(values)})
        return {(sym, key): float(total) for sym, key, total in rows}
    per_statement = _ROWS_PER_STATEMENT // 3
    totals = {}
    for start in range(0, len(pairs), per_statement):
        chunk = pairs[start:start + per_statement]
        params = {"a_kb_id": kb_id, "a_seq": seq}
        for k, (sym, key, value) in enumerate(chunk):
            params[f"s{k}"], params[f"e{k}"], params[f"v{k}"] = sym, key, value
        for sym, key, total in conn.execute(
                _statement(("learn_affinity", len(chunk)), lambda: _affinity_upsert(len(chunk))), params):
            totals[(sym, key)] = float(total)
    return totals


def _affinity_upsert(n: int):
    rows = ", ".join(f"(:a_kb_id, :s{k}, :e{k}, :v{k}, :a_seq)" for k in range(n))
    return text(_AFFINITY_UPSERT.format(rows=rows)).bindparams(
        *(bindparam(f"v{k}", type_=Float) for k in range(n))).columns(symbol=Text, emotive=Text, total=Float)


def _vector_insert():
    return text(_VECTOR_INSERT).bindparams(bindparam("v_components", type_=vectors_t.c.components.type))


def _patterns_upsert(n: int):
    json = patterns_t.c.events.type
    rows = ", ".join(f"(:p_kb_id, :n{k}, :e{k}, :l{k}, :f{k}, :p_emotives, :p_metadata, :p_now, :c{k}, :u{k})"
                     for k in range(n))
    return (text(_PATTERNS_UPSERT.format(rows=rows))
            .bindparams(bindparam("p_emotives", type_=json), bindparam("p_metadata", type_=json),
                        bindparam("p_now", type_=Float), *(bindparam(f"e{k}", type_=json) for k in range(n)))
            .columns(name=Text, frequency=Integer, emotives=json, metadata=json, created_seq=BigInteger))


def _pattern_values_update():
    json = patterns_t.c.events.type
    return text(_PATTERN_VALUES_UPDATE).bindparams(bindparam("w_emotives", type_=json),
                                                   bindparam("w_metadata", type_=json))


def _symbols_upsert(n: int):
    rows = ", ".join(f"(:s_kb_id, :s{k}, :f{k}, :m{k}, :s_seq)" for k in range(n))
    return text(_SYMBOLS_UPSERT.format(rows=rows)).columns(symbol=Text, frequency=Integer,
                                                           pattern_member_frequency=Integer)


def clear_node(conn: Connection, kb_id: str, now: float) -> None:
    """Delete all long-term memory of a node and reset its counters (clear-all)."""
    lock_node_for_change(conn, kb_id, now)
    conn.execute(delete(patterns_t).where(patterns_t.c.kb_id == kb_id))
    conn.execute(delete(symbols_t).where(symbols_t.c.kb_id == kb_id))
    conn.execute(delete(affinity_t).where(affinity_t.c.kb_id == kb_id))
    conn.execute(delete(vectors_t).where(vectors_t.c.kb_id == kb_id))
    conn.execute(update(nodes_t).where(nodes_t.c.kb_id == kb_id).values(
        generation=nodes_t.c.generation + 1, finalized=False,
        total_unique_patterns=0, total_pattern_frequencies=0,
        total_symbols_in_patterns_frequencies=0, symbol_count=0,
    ))
    # Stored observe-time predictions of this node's sessions are part of its LTM view.
    conn.execute(update(sessions_t).where(sessions_t.c.kb_id == kb_id)
                 .values(predictions=None, prediction_input=None))


def get_pattern(conn: Connection, kb_id: str, name: str) -> dict | None:
    row = conn.execute(select(patterns_t).where(patterns_t.c.kb_id == kb_id,
                                                patterns_t.c.name == name)).mappings().first()
    return dict(row) if row else None


def node_changes_since(conn: Connection, kb_id: str, after_seq: int
                       ) -> tuple[dict | None, list[dict], list[tuple], list[tuple]]:
    """Return (node row, patterns changed, symbols changed, affinities changed) in one statement.

    The changes are the rows whose updated_seq is in (after_seq, the node's change_seq], the
    same as ``patterns_changed_since``/``symbols_changed_since``/``affinity_changed_since`` up
    to that change_seq in a snapshot transaction, in one round trip instead of a transaction's
    five or more. The node row holds "change_seq", "generation", "symbol_count",
    "total_unique_patterns", "total_pattern_frequencies", "finalized" (None: no such node).
    Symbols are (symbol, pattern-member frequency, frequency); affinities (symbol, emotive, sum).
    """
    rows = conn.execute(_statement(("node_changes",), _node_changes_statement),
                        {"kb_id": kb_id, "after": after_seq}).all()
    node, patterns, symbols, affinities = None, [], [], []
    for kind, a, b, c, d, e, g, name, name2, total, events, emotives in rows:
        if kind == 0:
            node = {"change_seq": a, "generation": b, "symbol_count": c, "total_unique_patterns": d,
                    "total_pattern_frequencies": e, "finalized": bool(g)}
        elif kind == 1:
            patterns.append({"name": name, "events": events, "frequency": c, "emotives": emotives,
                             "length": d, "created_seq": a, "updated_seq": b})
        elif kind == 2:
            symbols.append((name, c, d))
        else:
            affinities.append((name, name2, total))
    return node, patterns, symbols, affinities


def _node_changes_statement():
    kb_id, after = bindparam("kb_id"), bindparam("after")
    json_type = patterns_t.c.events.type
    upto = select(nodes_t.c.change_seq).where(nodes_t.c.kb_id == kb_id).scalar_subquery()
    no_int, no_text, no_json = cast(null(), BigInteger), cast(null(), Text), cast(null(), json_type)
    no_float = cast(null(), Float)
    node = select(literal(0, Integer).label("kind"), nodes_t.c.change_seq.label("a"),
                  nodes_t.c.generation.label("b"), nodes_t.c.symbol_count.label("c"),
                  nodes_t.c.total_unique_patterns.label("d"),
                  nodes_t.c.total_pattern_frequencies.label("e"),
                  cast(case((nodes_t.c.finalized, 1), else_=0), BigInteger).label("g"),
                  no_text.label("name"), no_text.label("name2"), no_float.label("total"),
                  no_json.label("events"), no_json.label("emotives")).where(nodes_t.c.kb_id == kb_id)
    patterns = select(literal(1, Integer), patterns_t.c.created_seq, patterns_t.c.updated_seq,
                      patterns_t.c.frequency, patterns_t.c.length, no_int, no_int, patterns_t.c.name,
                      no_text, no_float, patterns_t.c.events, patterns_t.c.emotives).where(
        patterns_t.c.kb_id == kb_id, patterns_t.c.updated_seq > after, patterns_t.c.updated_seq <= upto)
    symbols = select(literal(2, Integer), no_int, no_int, symbols_t.c.pattern_member_frequency,
                     symbols_t.c.frequency, no_int, no_int, symbols_t.c.symbol, no_text, no_float,
                     no_json, no_json).where(
        symbols_t.c.kb_id == kb_id, symbols_t.c.updated_seq > after, symbols_t.c.updated_seq <= upto)
    affinities = select(literal(3, Integer), no_int, no_int, no_int, no_int, no_int, no_int,
                        affinity_t.c.symbol, affinity_t.c.emotive, affinity_t.c.total, no_json, no_json).where(
        affinity_t.c.kb_id == kb_id, affinity_t.c.updated_seq > after, affinity_t.c.updated_seq <= upto)
    return union_all(node, patterns, symbols, affinities)


def patterns_changed_since(conn: Connection, kb_id: str, after_seq: int, upto_seq: int) -> list[dict]:
    rows = conn.execute(
        select(patterns_t.c.name, patterns_t.c.events, patterns_t.c.frequency, patterns_t.c.emotives,
               patterns_t.c.length, patterns_t.c.created_seq, patterns_t.c.updated_seq)
        .where(patterns_t.c.kb_id == kb_id, patterns_t.c.updated_seq > after_seq,
               patterns_t.c.updated_seq <= upto_seq)
    ).mappings().all()
    return [dict(r) for r in rows]


def iter_patterns_in_learn_order(conn: Connection, kb_id: str, upto_seq: int,
                                  batch: int = 20000):
    """Yield lists of at most `batch` rows, all patterns of the node, in learn order (created_seq).

    Each row is (name, events JSON text, frequency, emotives JSON text, created_seq): the caller
    parses a whole batch at once, much faster than one decode per value. Streams (a server-side
    cursor on PostgreSQL), so a worker can load a million patterns without holding every row.
    """
    stmt = (select(patterns_t.c.name, cast(patterns_t.c.events, Text), patterns_t.c.frequency,
                   cast(patterns_t.c.emotives, Text), patterns_t.c.created_seq)
            .where(patterns_t.c.kb_id == kb_id, patterns_t.c.updated_seq <= upto_seq)
            .order_by(patterns_t.c.created_seq))
    result = conn.execution_options(stream_results=True, yield_per=batch).execute(stmt)
    for rows in result.partitions(batch):
        yield rows


def symbols_changed_since(conn: Connection, kb_id: str, after_seq: int, upto_seq: int) -> list[tuple]:
    return [tuple(r) for r in conn.execute(
        select(symbols_t.c.symbol, symbols_t.c.pattern_member_frequency, symbols_t.c.frequency)
        .where(symbols_t.c.kb_id == kb_id, symbols_t.c.updated_seq > after_seq,
               symbols_t.c.updated_seq <= upto_seq)
    )]


def affinity_changed_since(conn: Connection, kb_id: str, after_seq: int, upto_seq: int) -> list[tuple]:
    """Return (symbol, emotive, sum) of the affinity rows changed in (after_seq, upto_seq]."""
    return [tuple(r) for r in conn.execute(
        select(affinity_t.c.symbol, affinity_t.c.emotive, affinity_t.c.total)
        .where(affinity_t.c.kb_id == kb_id, affinity_t.c.updated_seq > after_seq,
               affinity_t.c.updated_seq <= upto_seq)
        .order_by(affinity_t.c.symbol, affinity_t.c.emotive)
    )]


def symbol_stats(conn: Connection, kb_id: str) -> list[tuple]:
    """Return (symbol, frequency, pattern-member frequency) of every symbol of the node, by symbol."""
    return [tuple(r) for r in conn.execute(
        select(symbols_t.c.symbol, symbols_t.c.frequency, symbols_t.c.pattern_member_frequency)
        .where(symbols_t.c.kb_id == kb_id).order_by(symbols_t.c.symbol))]


def symbols_by_name(conn: Connection, kb_id: str, symbols: list[str]) -> dict[str, tuple[int, int]]:
    """Return {symbol: (frequency, pattern-member frequency)} of the given symbols the node has."""
    out = {}
    for start in range(0, len(symbols), _ROWS_PER_STATEMENT):
        chunk = symbols[start:start + _ROWS_PER_STATEMENT]
        for symbol, frequency, pmf in conn.execute(
                select(symbols_t.c.symbol, symbols_t.c.frequency, symbols_t.c.pattern_member_frequency)
                .where(symbols_t.c.kb_id == kb_id, symbols_t.c.symbol.in_(chunk))):
            out[symbol] = (int(frequency), int(pmf))
    return out


def symbol_affinities(conn: Connection, kb_id: str, symbol: str | None = None,
                      symbols: list[str] | None = None) -> dict[str, dict[str, float]]:
    """Return {symbol: {emotive: sum}} of the node (or of one symbol, or of some), sorted."""
    if symbols is not None:
        out: dict[str, dict[str, float]] = {}
        for start in range(0, len(symbols), _ROWS_PER_STATEMENT):
            out.update(_affinities(conn, kb_id, affinity_t.c.symbol.in_(symbols[start:start + _ROWS_PER_STATEMENT])))
        return dict(sorted(out.items()))
    return _affinities(conn, kb_id, affinity_t.c.symbol == symbol if symbol is not None else None)


def _affinities(conn: Connection, kb_id: str, condition) -> dict[str, dict[str, float]]:
    stmt = (select(affinity_t.c.symbol, affinity_t.c.emotive, affinity_t.c.total)
            .where(affinity_t.c.kb_id == kb_id).order_by(affinity_t.c.symbol, affinity_t.c.emotive))
    if condition is not None:
        stmt = stmt.where(condition)
    out: dict[str, dict[str, float]] = {}
    for sym, emotive, total in conn.execute(stmt):
        out.setdefault(sym, {})[emotive] = float(total)
    return out


def vectors_since(conn: Connection, kb_id: str, after_seq: int, upto_seq: int) -> list[tuple]:
    """Return (name, dim, components bytes) of the node's vectors learned in (after, upto], in learn order."""
    return [tuple(r) for r in conn.execute(
        select(vectors_t.c.name, vectors_t.c.dim, vectors_t.c.components)
        .where(vectors_t.c.kb_id == kb_id, vectors_t.c.created_seq > after_seq,
               vectors_t.c.created_seq <= upto_seq)
        .order_by(vectors_t.c.created_seq, vectors_t.c.name))]


def count_vectors_by_node(conn: Connection) -> dict[str, int]:
    rows = conn.execute(select(vectors_t.c.kb_id, func.count()).group_by(vectors_t.c.kb_id))
    return {kb_id: int(count) for kb_id, count in rows}


def count_patterns(conn: Connection, kb_id: str) -> int:
    return conn.execute(select(func.count()).select_from(patterns_t)
                        .where(patterns_t.c.kb_id == kb_id)).scalar_one()


def search_patterns(conn: Connection, kb_id: str, name_prefix: str | None = None,
                    symbol: str | None = None, limit: int = 50, offset: int = 0) -> list[dict]:
    stmt = select(patterns_t).where(patterns_t.c.kb_id == kb_id)
    if name_prefix:
        stmt = stmt.where(patterns_t.c.name.startswith(name_prefix, autoescape=True))
    if symbol:
        # Events are stored as JSON text; a quoted symbol occurs in it iff the symbol does.
        stmt = stmt.where(cast(patterns_t.c.events, Text).contains(json.dumps(symbol), autoescape=True))
    stmt = stmt.order_by(patterns_t.c.frequency.desc(), patterns_t.c.name).limit(limit).offset(offset)
    return [dict(r) for r in conn.execute(stmt).mappings().all()]



# ---------------------------------------------------------------- admin browsing

def count_search_patterns(conn: Connection, kb_id: str, name_prefix: str | None = None,
                          symbol: str | None = None) -> int:
    """Count what `search_patterns` would page through (same filters, no limit)."""
    stmt = select(func.count()).select_from(patterns_t).where(patterns_t.c.kb_id == kb_id)
    if name_prefix:
        stmt = stmt.where(patterns_t.c.name.startswith(name_prefix, autoescape=True))
    if symbol:
        stmt = stmt.where(cast(patterns_t.c.events, Text).contains(json.dumps(symbol), autoescape=True))
    return conn.execute(stmt).scalar_one()


def pattern_counts_by_node(conn: Connection) -> dict[str, int]:
    rows = conn.execute(select(patterns_t.c.kb_id, func.count()).group_by(patterns_t.c.kb_id))
    return {kb_id: int(count) for kb_id, count in rows}


def live_session_counts_by_node(conn: Connection, now: float) -> dict[str, int]:
    rows = conn.execute(select(sessions_t.c.kb_id, func.count()).where(sessions_t.c.expires_at > now)
                        .group_by(sessions_t.c.kb_id))
    return {kb_id: int(count) for kb_id, count in rows}


# ---------------------------------------------------------------- export and import of a node

_EXPORT_PATTERN_COLUMNS = ("name", "events", "length", "frequency", "emotives", "metadata", "created_at",
                           "created_seq")


def iter_patterns_for_export(conn: Connection, kb_id: str, batch: int = 5000):
    """Yield the node's pattern rows (dicts) in learn order, a batch of rows at a time."""
    after = -1
    columns = [patterns_t.c[name] for name in _EXPORT_PATTERN_COLUMNS]
    while True:
        rows = conn.execute(select(*columns).where(patterns_t.c.kb_id == kb_id, patterns_t.c.created_seq > after)
                            .order_by(patterns_t.c.created_seq).limit(batch)).mappings().all()
        if not rows:
            return
        yield [dict(r) for r in rows]
        after = rows[-1]["created_seq"]


def iter_symbols_for_export(conn: Connection, kb_id: str, batch: int = 10000):
    """Yield the node's symbol rows (symbol, frequency, pattern_member_frequency) in symbol order."""
    after = None
    while True:
        stmt = select(symbols_t.c.symbol, symbols_t.c.frequency, symbols_t.c.pattern_member_frequency).where(
            symbols_t.c.kb_id == kb_id)
        if after is not None:
            stmt = stmt.where(symbols_t.c.symbol > after)
        rows = conn.execute(stmt.order_by(symbols_t.c.symbol).limit(batch)).all()
        if not rows:
            return
        yield [tuple(r) for r in rows]
        after = rows[-1][0]


def replace_node_content(conn: Connection, kb_id: str, node: dict, now: float) -> int:
    """Empty the node (as clear-all does: a new generation, so every worker reloads it), set its
    counters to `node`'s, and return the first change sequence the caller may give rows."""
    clear_node(conn, kb_id, now)
    row = lock_node_for_change(conn, kb_id, now)
    conn.execute(update(nodes_t).where(nodes_t.c.kb_id == kb_id).values(
        finalized=bool(node.get("finalized", False)), total_unique_patterns=node["total_unique_patterns"],
        total_pattern_frequencies=node["total_pattern_frequencies"],
        total_symbols_in_patterns_frequencies=node["total_symbols_in_patterns_frequencies"],
        symbol_count=node["symbol_count"]))
    return int(row["change_seq"])


def insert_imported_patterns(conn: Connection, kb_id: str, rows: list[dict]) -> None:
    """Insert pattern rows (with created_seq/updated_seq set by the caller) into an emptied node."""
    if rows:
        conn.execute(insert(patterns_t), [{"kb_id": kb_id, **row} for row in rows])


def insert_imported_symbols(conn: Connection, kb_id: str, rows: list[tuple], seq: int) -> None:
    if rows:
        conn.execute(insert(symbols_t), [{"kb_id": kb_id, "symbol": s, "frequency": f,
                                          "pattern_member_frequency": m, "updated_seq": seq}
                                         for s, f, m in rows])


def iter_affinity_for_export(conn: Connection, kb_id: str, batch: int = 10000):
    """Yield the node's affinity rows (symbol, emotive, total) in (symbol, emotive) order."""
    after = None
    while True:
        stmt = select(affinity_t.c.symbol, affinity_t.c.emotive, affinity_t.c.total).where(
            affinity_t.c.kb_id == kb_id)
        if after is not None:
            stmt = stmt.where((affinity_t.c.symbol > after[0])
                              | ((affinity_t.c.symbol == after[0]) & (affinity_t.c.emotive > after[1])))
        rows = conn.execute(stmt.order_by(affinity_t.c.symbol, affinity_t.c.emotive).limit(batch)).all()
        if not rows:
            return
        yield [(r[0], r[1], float(r[2])) for r in rows]
        after = (rows[-1][0], rows[-1][1])


def iter_vectors_for_export(conn: Connection, kb_id: str, batch: int = 2000):
    """Yield the node's vector rows (name, dim, components bytes) in learn order, then name."""
    after = None
    while True:
        stmt = select(vectors_t.c.name, vectors_t.c.dim, vectors_t.c.components, vectors_t.c.created_seq).where(
            vectors_t.c.kb_id == kb_id)
        if after is not None:
            stmt = stmt.where((vectors_t.c.created_seq > after[0])
                              | ((vectors_t.c.created_seq == after[0]) & (vectors_t.c.name > after[1])))
        rows = conn.execute(stmt.order_by(vectors_t.c.created_seq, vectors_t.c.name).limit(batch)).all()
        if not rows:
            return
        yield [(r[0], r[1], bytes(r[2])) for r in rows]
        after = (rows[-1][3], rows[-1][0])


def insert_imported_affinities(conn: Connection, kb_id: str, rows: list[tuple], seq: int) -> None:
    if rows:
        conn.execute(insert(affinity_t), [{"kb_id": kb_id, "symbol": s, "emotive": e, "total": t,
                                           "updated_seq": seq} for s, e, t in rows])


def insert_imported_vectors(conn: Connection, kb_id: str, rows: list[tuple], seq: int) -> None:
    """Insert (name, dim, float64 bytes) rows, in order: the learn order the file kept."""
    if rows:
        conn.execute(insert(vectors_t), [{"kb_id": kb_id, "name": n, "dim": d, "components": c,
                                          "created_seq": seq} for n, d, c in rows])


def set_change_seq(conn: Connection, kb_id: str, seq: int) -> None:
    conn.execute(update(nodes_t).where(nodes_t.c.kb_id == kb_id).values(change_seq=seq))


# ---------------------------------------------------------------- evaluations (admin page)

ACTIVE_EVALUATION = ("queued", "running")


def insert_evaluation(conn: Connection, row: dict) -> None:
    conn.execute(insert(evaluations_t).values(**row))


def get_evaluation(conn: Connection, job_id: str, with_sequences: bool = False) -> dict | None:
    columns = [c for c in evaluations_t.c if with_sequences or c.name != "sequences"]
    row = conn.execute(select(*columns).where(evaluations_t.c.job_id == job_id)).mappings().first()
    return dict(row) if row is not None else None


def list_evaluations(conn: Connection, limit: int = 20) -> list[dict]:
    columns = [c for c in evaluations_t.c if c.name not in ("sequences", "result")]
    rows = conn.execute(select(*columns).order_by(evaluations_t.c.created_at.desc(),
                                                  evaluations_t.c.job_id).limit(limit)).mappings().all()
    return [dict(r) for r in rows]


def active_evaluations(conn: Connection) -> list[dict]:
    rows = conn.execute(select(evaluations_t.c.job_id, evaluations_t.c.status, evaluations_t.c.created_at,
                               evaluations_t.c.heartbeat_at, evaluations_t.c.pid)
                        .where(evaluations_t.c.status.in_(ACTIVE_EVALUATION))).mappings().all()
    return [dict(r) for r in rows]


def claim_evaluation(conn: Connection, job_id: str, pid: int, now: float) -> bool:
    """Move a queued evaluation to running (one process only); False if it was not queued."""
    result = conn.execute(update(evaluations_t)
                          .where(evaluations_t.c.job_id == job_id, evaluations_t.c.status == "queued")
                          .values(status="running", pid=pid, started_at=now, heartbeat_at=now))
    return result.rowcount == 1


def evaluation_progress(conn: Connection, job_id: str, done: int, total: int, now: float) -> bool:
    """Record progress of a running evaluation; return whether a cancel was asked for."""
    conn.execute(update(evaluations_t)
                 .where(evaluations_t.c.job_id == job_id, evaluations_t.c.status == "running")
                 .values(progress_done=done, progress_total=total, heartbeat_at=now))
    flag = conn.execute(select(evaluations_t.c.cancel_requested)
                        .where(evaluations_t.c.job_id == job_id)).scalar_one_or_none()
    return bool(flag)


def finish_evaluation(conn: Connection, job_id: str, status: str, now: float,
                      result: dict | None = None, error: str | None = None) -> bool:
    """End an active evaluation (done, cancelled, timeout or failed); False if it had ended."""
    outcome = conn.execute(update(evaluations_t)
                           .where(evaluations_t.c.job_id == job_id,
                                  evaluations_t.c.status.in_(ACTIVE_EVALUATION))
                           .values(status=status, result=result, error=error, finished_at=now,
                                   heartbeat_at=now))
    return outcome.rowcount == 1


def request_evaluation_cancel(conn: Connection, job_id: str) -> bool:
    """Ask an active evaluation to stop; False if there is no such active evaluation."""
    outcome = conn.execute(update(evaluations_t)
                           .where(evaluations_t.c.job_id == job_id,
                                  evaluations_t.c.status.in_(ACTIVE_EVALUATION))
                           .values(cancel_requested=True))
    return outcome.rowcount == 1


def lock_evaluations(conn: Connection) -> None:
    """Serialise the starting of evaluations (one runs at a time) until the transaction ends.

    SQLite's write transactions (BEGIN IMMEDIATE) are already serialised; PostgreSQL takes a
    table lock that only other starters wait for (reads of the table are not blocked).
    """
    if conn.dialect.name == "postgresql":
        conn.execute(text("LOCK TABLE evaluations IN SHARE ROW EXCLUSIVE MODE"))
