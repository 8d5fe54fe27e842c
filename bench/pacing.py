"""How the load scenarios pace their users at an offered load, and how to check the arrivals.

Pure Python (no Locust import, so tests can use it): locustfiles/common.py takes the wait-time
function from here, and bench/run_load.py reports how bursty each run's arrivals were.
"""
from __future__ import annotations

import math
import random
from time import perf_counter
from typing import Callable, Sequence


def steady_throughput(rate: float, seed: int = 0, clock: Callable[[], float] = perf_counter):
    """Return a Locust wait-time function: each user starts a task on its own fixed clock,
    every 1/rate seconds from a random phase (seeded by ``seed`` and the user's ``user_id``).

    Locust's ``constant_throughput`` waits 1/rate minus the last task's run time, so each
    user's clock restarts from its last task: after any stall (a slow response, a pause of the
    client) every delayed user starts its next task at the same moment, and from then on they
    all keep that common phase. The offered load becomes bursts of one request per user: with
    32 users at 183 tasks/s, 77 % of the requests started within 10 ms windows holding three
    times the average (docs/benchmarks.md). Here a user's ticks never move: a tick missed
    during a stall is skipped rather than made up, so the users stay spread over the period.
    """
    if not rate > 0:
        raise ValueError("rate must be positive")
    period = 1.0 / rate

    def wait(user) -> float:
        now = clock()
        tick = getattr(user, "_steady_tick", None)
        if tick is None:  # the first wait: a phase of the user's own
            tick = now + random.Random(seed * 7_919 + user.user_id).random() * period
        else:
            tick += period
            if tick < now:  # missed during a stall: skip to the next tick still ahead
                tick += math.ceil((now - tick) / period) * period
        user._steady_tick = tick
        return tick - now

    return wait


def burstiness(starts: Sequence[float], window: float = 0.010, skip: float = 10.0) -> dict:
    """Summarise request start times (seconds): per ``window``-long bin, the mean and 99th
    percentile of starts and the busiest bin, and the share of requests that started in bins
    holding at least three times the mean. The first ``skip`` seconds (users starting) and the
    last 5 are left out."""
    times = sorted(starts)
    if not times:
        return {}
    lo, hi = times[0] + skip, times[-1] - 5.0
    times = [t for t in times if lo <= t < hi]
    if not times:
        return {}
    bins = [0] * (int((hi - lo) / window) + 1)
    for t in times:
        bins[int((t - lo) / window)] += 1
    mean = len(times) / len(bins)
    ordered = sorted(bins)
    return {"window_ms": round(window * 1000, 3), "mean": round(mean, 2),
            "p99": ordered[min(len(ordered) - 1, int(0.99 * len(ordered)))], "max": ordered[-1],
            "share_in_bursts": round(sum(b for b in bins if b >= 3 * mean) / len(times), 3)}
