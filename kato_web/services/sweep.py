"""Deleting expired sessions: a periodic sweep inside the service, and on demand from the CLI.

A session past its `expires_at` is already invisible (every read checks expiry); the sweep only
gives its row back. Every worker runs a daemon thread that wakes every `KATO_SESSION_SWEEP_SECONDS`
(with a random offset, so workers do not wake together) and tries to take the `session_sweep`
lease in the `maintenance` table; only the worker that gets it sweeps, so one worker at a time
across every worker and instance sharing the database sweeps, once per interval. The sweep
deletes in batches of `KATO_SESSION_SWEEP_BATCH` rows, each batch its own short transaction
(PostgreSQL skips rows a request has locked), pausing between batches so requests waiting for
SQLite's write lock get in. Rows deleted and the last sweep time are kept in the table, so
`/metrics` reports them for the whole service whichever worker answers.
"""
from __future__ import annotations

import logging
import os
import random
import socket
import threading
import time
from dataclasses import dataclass

from kato_web.store import repositories as repo

log = logging.getLogger("kato_web.sweep")

JOB = "session_sweep"
_PAUSE_BETWEEN_BATCHES = 0.01


@dataclass
class SweepResult:
    deleted: int
    batches: int
    seconds: float


def _holder() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


def sweep_expired_sessions(db, now: float | None = None, batch: int = 1000) -> SweepResult:
    """Delete every session expired at `now` (default: the current time), in batches."""
    now = time.time() if now is None else now
    started = time.perf_counter()
    deleted = batches = 0
    while True:
        with db.transaction() as conn:
            count = repo.delete_expired_sessions_batch(conn, now, batch)
        deleted += count
        batches += 1
        if count < batch:
            break
        time.sleep(_PAUSE_BETWEEN_BATCHES)
    with db.transaction() as conn:
        repo.record_job_run(conn, JOB, time.time(), deleted)
    return SweepResult(deleted, batches, time.perf_counter() - started)


def sweep_if_due(db, interval: float, batch: int, clock=time.time) -> SweepResult | None:
    """Sweep if no other worker swept (or is sweeping) within the last `interval` seconds."""
    now = clock()
    with db.transaction() as conn:
        if not repo.take_lease(conn, JOB, _holder(), now, now + interval):
            return None
    return sweep_expired_sessions(db, now, batch)


def last_run(db) -> dict | None:
    """The job's row: last_run_at, last_count (rows deleted then), total_count (ever)."""
    with db.transaction(write=False) as conn:
        return repo.get_job(conn, JOB)


_thread: threading.Thread | None = None
_thread_pid: int | None = None


def start(db, interval: float, batch: int) -> bool:
    """Start this process's sweeper thread (once per process; 0 s interval: never)."""
    global _thread, _thread_pid
    if interval <= 0 or (_thread is not None and _thread_pid == os.getpid()):
        return False

    def run():
        time.sleep(random.uniform(0.1, 1.0) * interval)
        while True:
            try:
                result = sweep_if_due(db, interval, batch)
                if result is not None and result.deleted:
                    log.info("session sweep: %d expired sessions deleted in %.2f s",
                             result.deleted, result.seconds)
            except Exception as err:  # the database may be down: try again next interval
                log.warning("session sweep failed: %s", str(err).splitlines()[0][:300] if str(err) else err)
            time.sleep(interval * random.uniform(0.9, 1.1))

    _thread = threading.Thread(target=run, name="kato-session-sweep", daemon=True)
    _thread_pid = os.getpid()
    _thread.start()
    return True
