"""The connection table of the balanced gthread worker (kato_web/web/balanced_worker.py)."""
from __future__ import annotations

import time

import pytest

from kato_web.web import balanced_worker as bw


class _Planned:
    """What gunicorn's master holds for a worker before forking it: its age (and a slot)."""

    def __init__(self, age: int):
        self.age = age


def _worker(slot: int, pid: int, conns: int) -> bw.BalancedThreadWorker:
    # The accept rule only needs these attributes; gunicorn's own set-up is not involved.
    w = object.__new__(bw.BalancedThreadWorker)
    w.kato_slot, w.pid, w.nr_conns = slot, pid, conns
    return w


def _plan(n: int) -> None:
    """Assign slots 0 … n-1 as the master does for n workers."""
    live = []
    for age in range(1, n + 1):
        w = _Planned(age)
        bw.assign_slot(w, live)
        live.append(w)


@pytest.fixture(autouse=True)
def empty_table():
    bw._table[:] = bytes(len(bw._table))
    yield
    bw._table[:] = bytes(len(bw._table))


def test_slots_are_never_shared_by_live_workers():
    live = []
    for age in (1, 2, 3):
        w = _Planned(age)
        bw.assign_slot(w, live)
        live.append(w)
    assert [w.kato_slot for w in live] == [0, 1, 2]
    assert bw._in_use() == 3
    # A replacement for a dead worker (gunicorn recycles workers all the time: ages keep
    # growing) takes the freed slot, and its old entry is cleared; the table does not grow.
    bw._ENTRY.pack_into(bw._table, bw._offset(1), 999, 7, time.monotonic())
    for age in range(4, 4 + 3 * bw.SLOTS):
        again = _Planned(age)
        bw.assign_slot(again, [live[0], live[2]])
        assert again.kato_slot == 1
    assert bw._ENTRY.unpack_from(bw._table, bw._offset(1)) == (0, 0, 0.0)
    assert bw._in_use() == 3
    # With every slot held, a new worker still gets one (the last).
    held = [_Planned(0) for _ in range(bw.SLOTS)]
    for i, w in enumerate(held):
        w.kato_slot = i
    extra = _Planned(10_000)
    bw.assign_slot(extra, held)
    assert extra.kato_slot == bw.SLOTS - 1


def test_a_worker_stops_accepting_only_when_ahead_of_the_least_loaded():
    _plan(3)
    a, b, c = _worker(0, 101, 5), _worker(1, 102, 4), _worker(2, 103, 9)
    for w in (a, b, c):
        w._publish()
    assert bw.live_connections() == {101: 5, 102: 4, 103: 9}
    assert not a._ahead()  # 5 <= 4 + SLACK
    assert not b._ahead()  # the least loaded always accepts
    assert c._ahead()  # 9 > 4 + 1
    a.nr_conns = 6
    assert a._ahead()
    b.nr_conns = 5
    b._publish()
    assert not a._ahead()


def test_a_silent_worker_does_not_hold_the_others_back():
    _plan(2)
    busy, stuck = _worker(0, 201, 12), _worker(1, 202, 0)
    busy._publish()
    stuck._publish()
    assert busy._ahead()
    # The stuck worker's entry ages past STALE_SECONDS: it no longer counts.
    bw._ENTRY.pack_into(bw._table, bw._offset(1), 202, 0, time.monotonic() - bw.STALE_SECONDS - 0.1)
    assert not busy._ahead()
    assert bw.live_connections() == {201: 12}


def test_a_worker_without_a_slot_balances_nothing():
    lone = _worker(-1, 301, 50)
    _plan(1)
    _worker(0, 302, 0)._publish()
    assert not lone._ahead()
