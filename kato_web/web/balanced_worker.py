"""gunicorn's gthread worker, with new connections spread evenly over an instance's workers.

Clients keep their connection open (HTTP keep-alive) and a gthread worker serves a connection
for its whole life, so whichever worker accepted it serves all its requests. The workers of an
instance all wait on the one listening socket and whichever wakes first takes the connection:
when many clients connect at once, one worker routinely ends up with most of them (measured with
32 Locust clients on 2 workers: one worker spent 80 % of the CPU, run after run). That worker's
threads then queue for its one interpreter lock while the other worker idles, and every request
on it waits longer.

Here each worker publishes how many connections it holds in a small table shared by the
instance's workers (an anonymous shared memory map made in the master before the first fork),
and stops accepting while it holds more than one above the least-loaded live worker; the
others take the new connections. A worker that has not refreshed its entry for
``STALE_SECONDS`` (dead, or stuck) does not count, so a connection never waits on it: at least
one live worker (the least loaded) always accepts, as plain gthread would. Everything else is
gthread's own code.
"""
from __future__ import annotations

import mmap
import struct
import time

from gunicorn.workers.gthread import ThreadWorker

# One entry per worker slot: (pid, connections, last refresh in CLOCK_MONOTONIC seconds).
_ENTRY = struct.Struct("qqd")
SLOTS = 256  # KATO_WORKERS' upper bound (config.ServerSettings)
STALE_SECONDS = 2.0  # a live worker refreshes its entry at least once a second
SLACK = 1  # accept while holding at most this many connections more than the least loaded

_HEADER = struct.Struct("q")  # one past the highest slot ever assigned: the entries to scan
# MAP_SHARED | MAP_ANONYMOUS: the master's forks all map the same pages.
_table = mmap.mmap(-1, _HEADER.size + _ENTRY.size * SLOTS)


def _offset(slot: int) -> int:
    return _HEADER.size + slot * _ENTRY.size


def _in_use() -> int:
    return _HEADER.unpack_from(_table, 0)[0]


def assign_slot(worker, live_workers) -> None:
    """Give `worker` (about to be forked) the lowest table slot no live worker holds (gunicorn's
    pre_fork hook, in the master). A replacement for a dead or recycled worker takes its slot
    back, so the table scanned stays as long as the most workers ever alive at once."""
    taken = {getattr(w, "kato_slot", None) for w in live_workers if w is not worker}
    slot = 0
    while slot in taken and slot < SLOTS - 1:
        slot += 1
    worker.kato_slot = slot
    _ENTRY.pack_into(_table, _offset(slot), 0, 0, 0.0)
    if slot >= _in_use():
        _HEADER.pack_into(_table, 0, slot + 1)


def _read_all() -> list[tuple[int, int, float]]:
    return [_ENTRY.unpack_from(_table, _offset(i)) for i in range(_in_use())]


def live_connections(now: float | None = None) -> dict[int, int]:
    """Return {pid: connections} of the workers that refreshed their entry recently."""
    now = time.monotonic() if now is None else now
    return {pid: conns for pid, conns, seen in _read_all() if pid and now - seen <= STALE_SECONDS}


class BalancedThreadWorker(ThreadWorker):
    """gthread, accepting new connections only while not ahead of the least-loaded worker."""

    kato_slot = None

    def init_process(self):
        if self.kato_slot is None:  # forked without the pre_fork hook: balance nothing
            self.kato_slot = -1
        self._publish()
        super().init_process()

    def _publish(self) -> None:
        if self.kato_slot is not None and self.kato_slot >= 0:
            _ENTRY.pack_into(_table, _offset(self.kato_slot), self.pid, self.nr_conns,
                             time.monotonic())

    def _ahead(self) -> bool:
        """Whether this worker holds more than SLACK connections above the least-loaded one."""
        if self.kato_slot is None or self.kato_slot < 0:
            return False
        others = [conns for pid, conns in live_connections().items() if pid != self.pid]
        return bool(others) and self.nr_conns > min(others) + SLACK

    def set_accept_enabled(self, enabled):
        # gthread's loop calls this whenever its own rule (below worker_connections) differs
        # from the current state: while this worker is held back it asks again every loop
        # (at least once a second), so it resumes once the others have caught up.
        super().set_accept_enabled(enabled and not self._ahead())

    def accept(self, listener):
        super().accept(listener)
        self._publish()
        if self._ahead():  # stop at once, before the next queued connection is taken
            super().set_accept_enabled(False)

    def wait_for_and_dispatch_events(self, timeout):
        self._publish()
        super().wait_for_and_dispatch_events(timeout)
