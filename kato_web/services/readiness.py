"""Readiness: is this process able to serve (database reachable, schema at head, kernels ready)?

`/livez` only says the process answers; `/readyz` (and `python -m kato_web check`) asks the
three things a request needs. A failed check is a reason in the answer, never an exception.
"""
from __future__ import annotations

import functools
import time

from kato_web.store import migrate


@functools.lru_cache(maxsize=1)
def _heads() -> tuple[str, ...]:
    return migrate.head_revisions()  # the scripts do not change while the process runs


def check_database(db) -> tuple[bool, str]:
    """Reachable and migrated to head (ok, detail)."""
    try:
        with db.statements(write=False) as conn:
            current = migrate.current_revisions(conn)
    except Exception as err:  # the report must answer whatever the driver raised
        return False, f"unreachable: {type(err).__name__}: {str(err).splitlines()[0][:200] if str(err) else ''}"
    heads = _heads()
    if current != heads:
        return False, (f"migrations not at head: database at {', '.join(current) or 'no revision'}, "
                       f"code expects {', '.join(heads)} (run: python -m kato_web migrate)")
    return True, f"reachable, migrations at head {', '.join(heads)}"


def check_kernels(wait: bool = False) -> tuple[bool, str]:
    """Whether predictions can be served without compiling anything on a request."""
    from kato_web.engine import index as engine_index

    if not engine_index.FAST:
        reason = "switched off (KATO_FAST_PREDICT=0)" if engine_index.COMPILED else "numba unavailable"
        return True, f"pure Python path serves ({reason})"
    if wait:
        started = time.perf_counter()
        if not engine_index.kernels_cached():
            from kato_web.services.kernels import compile_kernels

            compile_kernels()  # in two processes at once where two cores are free
        engine_index.warm_up()
        return True, f"compiled path ready in {time.perf_counter() - started:.1f} s"
    if engine_index.kernels_ready():
        return True, "compiled path ready"
    return False, "compiled kernels still loading"


def check_all(config, compile_kernels: bool = False, db=None) -> dict[str, tuple[bool, str]]:
    """Database and kernels, each (ok, detail); `db` defaults to a one-connection Database."""
    own = db is None
    if own:
        from kato_web.store.db import Database

        db = Database(config.database_url, 1, 0)
    try:
        report = {"database": check_database(db)}
    finally:
        if own:
            db.dispose()
    report["kernels"] = check_kernels(wait=compile_kernels)
    return report
