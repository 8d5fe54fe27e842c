"""Database engine and transactions, with the same guarantees on SQLite and PostgreSQL.

PostgreSQL serialises writers with row locks (`UPDATE … RETURNING` and
`SELECT … FOR UPDATE` hold the row until commit). SQLite has no row locks, so
every write transaction starts with `BEGIN IMMEDIATE`, which takes the database
write lock up front; WAL mode lets readers proceed meanwhile.
"""
from __future__ import annotations

import os
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

from sqlalchemy import create_engine, event
from sqlalchemy.engine import Connection, Engine, make_url

SQLITE_BUSY_TIMEOUT_MS = 30_000


def is_sqlite(engine_or_url) -> bool:
    url = engine_or_url.url if isinstance(engine_or_url, Engine) else make_url(engine_or_url)
    return url.get_backend_name() == "sqlite"


def make_engine(url: str, pool_size: int = 5, max_overflow: int = 5, pre_ping: bool = True) -> Engine:
    """Create an engine for `url`, configured for concurrent use by threads and processes.

    `pre_ping` tests each pooled PostgreSQL connection before use (one extra round trip
    per transaction) so a database restart never surfaces as a failed request.
    """
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        if parsed.database and parsed.database != ":memory:":
            Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(
            url,
            pool_size=pool_size,
            max_overflow=max_overflow,
            connect_args={"timeout": SQLITE_BUSY_TIMEOUT_MS / 1000, "check_same_thread": False},
        )
        _configure_sqlite(engine)
        return engine
    return create_engine(
        url,
        pool_size=pool_size,
        max_overflow=max_overflow,
        pool_pre_ping=pre_ping,
        pool_recycle=1800,
    )


def _configure_sqlite(engine: Engine) -> None:
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn, _record):
        # Take over transaction control from the driver so we can say BEGIN IMMEDIATE.
        dbapi_conn.isolation_level = None
        cur = dbapi_conn.cursor()
        cur.execute("PRAGMA journal_mode=WAL")
        cur.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
        cur.execute("PRAGMA synchronous=NORMAL")
        cur.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Connection):
        conn.exec_driver_sql("BEGIN IMMEDIATE" if conn.info.get("write", True) else "BEGIN")


class Database:
    """The engine plus transaction helpers; one per process."""

    def __init__(self, url: str, pool_size: int = 5, max_overflow: int = 5, pre_ping: bool = True):
        self.url = url
        self.engine = make_engine(url, pool_size, max_overflow, pre_ping)
        self.sqlite = is_sqlite(self.engine)
        self._pid = os.getpid()

    def _check_fork(self) -> None:
        # A forked worker must not reuse the parent's sockets.
        if os.getpid() != self._pid:
            self.engine.dispose(close=False)
            self._pid = os.getpid()

    @contextmanager
    def transaction(self, write: bool = True, snapshot: bool = False) -> Iterator[Connection]:
        """Run a block in one transaction: commit on success, roll back on error.

        `snapshot` asks for one consistent view across several reads (PostgreSQL
        REPEATABLE READ; a SQLite read transaction in WAL mode already is one).
        """
        self._check_fork()
        with self.engine.connect() as conn:
            conn.info["write"] = write
            if snapshot and not self.sqlite:
                conn = conn.execution_options(isolation_level="REPEATABLE READ")
            with conn.begin():
                yield conn

    def dispose(self) -> None:
        self.engine.dispose()
