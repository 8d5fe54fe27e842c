"""Pooled PostgreSQL connections: the idle ping, autocommit statements, and what a restart costs.

These always run against the machine's PostgreSQL (KATO_TEST_DATABASE_URL, else the local
server CI uses), whichever database the rest of the suite runs on: the ping and the
autocommit path exist only for PostgreSQL.
"""
from __future__ import annotations

import os
import time

import pytest
from sqlalchemy import create_engine, exc, text

from kato_web.store.db import Database
from tests import support

PG_URL = (support.test_database_url() if (support.test_database_url() or "").startswith("postgresql")
          else os.environ.get("KATO_CI_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"))


def _backend_pid(db: Database) -> int:
    with db.transaction(write=False) as conn:
        return conn.execute(text("SELECT pg_backend_pid()")).scalar_one()


def _terminate(pid: int) -> None:
    admin = create_engine(PG_URL, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            assert conn.execute(text("SELECT pg_terminate_backend(:p)"), {"p": pid}).scalar_one()
        # The backend is gone once it no longer shows in pg_stat_activity.
        deadline = time.monotonic() + 5
        with admin.connect() as conn:
            while conn.execute(text("SELECT count(*) FROM pg_stat_activity WHERE pid = :p"),
                               {"p": pid}).scalar_one() and time.monotonic() < deadline:
                time.sleep(0.02)
    finally:
        admin.dispose()


@pytest.fixture
def make_db():
    made = []

    def make(**kw) -> Database:
        db = Database(PG_URL, pool_size=1, max_overflow=0, **kw)
        made.append(db)
        return db
    yield make
    for db in made:
        db.dispose()


def test_an_idle_connection_killed_by_the_server_is_replaced_without_an_error(make_db):
    db = make_db(ping_idle_seconds=0.05)
    pid = _backend_pid(db)
    _terminate(pid)
    time.sleep(0.1)  # idle longer than the ping threshold
    assert _backend_pid(db) != pid  # the ping found it dead; the pool opened a new one


def test_a_connection_in_steady_use_is_not_pinged(make_db):
    db = make_db(ping_idle_seconds=60)
    pings = []
    original = db.engine.dialect.do_ping
    db.engine.dialect.do_ping = lambda conn: pings.append(1) or original(conn)
    for _ in range(5):
        _backend_pid(db)
    assert pings == []
    db.engine.dialect.do_ping = original


def test_without_the_ping_a_dead_connection_fails_one_request_then_the_pool_recovers(make_db):
    # What the idle window trades: a server restart inside it costs the request in flight.
    db = make_db(ping_idle_seconds=60)
    pid = _backend_pid(db)
    _terminate(pid)
    with pytest.raises(exc.OperationalError):
        _backend_pid(db)
    assert _backend_pid(db) != pid


def test_statements_run_in_autocommit_and_give_the_connection_back_unchanged(make_db):
    db = make_db()
    with db.statements() as conn:
        # In autocommit each statement is its own transaction: no transaction is open between them.
        conn.execute(text("SELECT 1"))
        assert conn.connection.dbapi_connection.info.transaction_status.name == "IDLE"
        assert conn.connection.dbapi_connection.autocommit is True
    with db.transaction() as conn:
        dbapi_conn = conn.connection.dbapi_connection
        assert dbapi_conn.autocommit is False
        conn.execute(text("SELECT 1"))
        assert dbapi_conn.info.transaction_status.name == "INTRANS"


def test_statements_restore_the_connection_after_an_error(make_db):
    db = make_db()
    with pytest.raises(exc.ProgrammingError):
        with db.statements() as conn:
            conn.execute(text("SELECT no_such_column FROM pg_class"))
    with db.transaction() as conn:
        assert conn.connection.dbapi_connection.autocommit is False
        assert conn.execute(text("SELECT 1")).scalar_one() == 1
