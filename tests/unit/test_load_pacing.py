"""The load scenarios' pacing at an offered load (bench/pacing.py): users on fixed clocks that
never fall into step, and the burst summary bench/run_load.py reports for every run."""
from __future__ import annotations

import pytest

from bench.pacing import burstiness, steady_throughput


class _User:
    def __init__(self, user_id: int):
        self.user_id = user_id


class _Clock:
    def __init__(self):
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def _run(users, wait, clock, task_time, until: float) -> list[tuple[float, int]]:
    """Simulate Locust's loop for each user (task, then wait) on one clock; return the starts."""
    due = {u.user_id: clock.now for u in users}
    starts = []
    while True:
        uid = min(due, key=lambda k: (due[k], k))
        if due[uid] >= until:
            return starts
        clock.now = due[uid]
        starts.append((clock.now, uid))
        clock.now += task_time(clock.now, uid)
        due[uid] = clock.now + wait(users[uid])


def test_each_user_keeps_its_own_clock_through_a_stall():
    clock = _Clock()
    wait = steady_throughput(5.0, seed=1, clock=clock)  # one task every 0.2 s per user
    users = [_User(i) for i in range(8)]

    # Every task takes 1 ms, except between t=110 and t=110.5 (a 0.5 s stall of the server).
    def task_time(now, uid):
        return 0.5 if 110.0 <= now < 110.2 else 0.001

    starts = _run(users, wait, clock, task_time, until=115.0)
    phases = {}
    for t, uid in starts[len(users) * 2:]:  # after each user's first wait (its phase)
        phase = round((t - 100.0) % 0.2, 6)
        if t < 110.0 or t > 111.0:
            phases.setdefault(uid, set()).add(phase)
    # A user's starts fall on one grid: the same phase before and after the stall.
    for uid, seen in phases.items():
        assert len({round(p, 4) % 0.2 for p in seen}) == 1, (uid, seen)
    # The users do not share a phase after the stall (Locust's constant_throughput would put
    # every delayed user on the stall's end).
    after = {uid: t for t, uid in starts if t > 111.0}
    assert len({round((t - 100.0) % 0.2, 4) for t in after.values()}) == len(users)


def test_missed_ticks_are_skipped_not_made_up():
    clock = _Clock()
    wait = steady_throughput(10.0, seed=3, clock=clock)
    user = _User(0)
    first = wait(user)
    assert 0.0 <= first < 0.1
    clock.now += first + 0.35  # a task that ran 3.5 periods
    second = wait(user)
    # The next tick still ahead (0.05 s: 4 periods after the first tick), not a run of
    # catch-up starts with no wait.
    assert second == pytest.approx(0.05, abs=1e-9)
    clock.now += second + 0.001  # a 1 ms task: the period's remainder is waited
    assert wait(user) == pytest.approx(0.099, abs=1e-9)


def test_the_phase_is_seeded():
    a, b = _Clock(), _Clock()
    assert steady_throughput(4.0, 7, a)(_User(3)) == steady_throughput(4.0, 7, b)(_User(3))
    assert steady_throughput(4.0, 7, a)(_User(3)) != steady_throughput(4.0, 8, b)(_User(3))
    with pytest.raises(ValueError):
        steady_throughput(0.0)


def test_burstiness_tells_spread_arrivals_from_lockstep_ones():
    # Bins run from the first start + 10 s; 0.0 puts that edge between the other starts.
    spread = [0.0] + [0.0025 + i * 0.005 for i in range(20_000)]  # one start every 5 ms, 100 s
    lockstep = [0.0] + [0.005 + i // 20 * 0.1 for i in range(20_000)]  # 20 at once every 100 ms
    even, bursts = burstiness(spread), burstiness(lockstep)
    assert even["mean"] == pytest.approx(2.0, abs=0.01)
    assert even["max"] == 2 and even["share_in_bursts"] == 0.0
    assert bursts["max"] == 20 and bursts["share_in_bursts"] == 1.0
    assert burstiness([]) == {}
