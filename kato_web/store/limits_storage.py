"""A storage for the `limits` library (and so Flask-Limiter) in kato-web's own database.

Rate limits must hold across every gunicorn worker and every instance, and the embedded
default has no Redis; the database is the one thing they all share. Counters are fixed
windows in the `rate_limits` table, each hit one atomic upsert (a new window starts when
the old one has expired), so concurrent hits never lose a count on either database.
Use it as ``storage_uri="kato-sql://"`` with ``storage_options={"database": <Database>}``.
"""
from __future__ import annotations

import time

from limits.storage import Storage
from sqlalchemy.exc import SQLAlchemyError

from kato_web.store import security as sec_repo


class SqlStorage(Storage):
    STORAGE_SCHEME = ["kato-sql"]

    def __init__(self, uri: str | None = None, wrap_exceptions: bool = False, database=None, **options):
        super().__init__(uri, wrap_exceptions=wrap_exceptions, **options)
        if database is None:
            raise ValueError("kato-sql:// needs storage_options={'database': Database}")
        self.database = database

    @property
    def base_exceptions(self):
        return SQLAlchemyError

    def incr(self, key: str, expiry: int, amount: int = 1) -> int:
        now = time.time()
        with self.database.transaction() as conn:
            count, _ = sec_repo.rate_limit_hit(conn, key, amount, now, now + expiry)
        return count

    def get(self, key: str) -> int:
        with self.database.transaction(write=False) as conn:
            return sec_repo.rate_limit_get(conn, key, time.time())[0]

    def get_expiry(self, key: str) -> float:
        with self.database.transaction(write=False) as conn:
            _, expires_at = sec_repo.rate_limit_get(conn, key, time.time())
        return expires_at if expires_at is not None else time.time()

    def check(self) -> bool:
        try:
            with self.database.transaction(write=False) as conn:
                sec_repo.rate_limit_get(conn, "", 0.0)
            return True
        except SQLAlchemyError:
            return False

    def reset(self) -> int | None:
        """Drop expired windows (live ones keep counting)."""
        with self.database.transaction() as conn:
            return sec_repo.rate_limit_clear(conn, now=time.time())

    def clear(self, key: str) -> None:
        with self.database.transaction() as conn:
            sec_repo.rate_limit_clear(conn, key=key)
