"""New keep-alive connections are spread evenly over gunicorn's workers
(kato_web/web/balanced_worker.py), and a stopped worker never holds them back."""
from __future__ import annotations

import http.client
import os
import signal
import threading
import time
from collections import Counter

import pytest

from tests.support import Gunicorn

pytestmark = pytest.mark.e2e


def _connect(server, timeout: float = 10.0) -> tuple[http.client.HTTPConnection, int]:
    """Open a keep-alive connection, ask /health on it, return it and the answering worker."""
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=timeout)
    conn.request("GET", "/health")
    resp = conn.getresponse()
    resp.read()
    assert resp.status == 200
    return conn, int(resp.getheader("X-Worker-PID"))


def _open_at_once(server, n: int) -> list[tuple[http.client.HTTPConnection, int]]:
    opened, gate = [], threading.Barrier(n)

    def one():
        gate.wait()
        opened.append(_connect(server))

    threads = [threading.Thread(target=one) for _ in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert len(opened) == n
    return opened


def _wait_for_both_workers(server, timeout: float = 90.0) -> None:
    """Return once both workers have answered. /health answering proves only one is up: on a
    fresh clone the other may still be starting (a worker not yet serving publishes nothing and
    rightly holds nobody back, so every connection would go to the first)."""
    seen, deadline = set(), time.time() + timeout
    while len(seen) < 2 and time.time() < deadline:
        conn, pid = _connect(server)
        conn.close()  # closed at once: neither worker keeps a count from this
        seen.add(pid)
        if len(seen) < 2:
            time.sleep(0.05)
    assert len(seen) == 2, f"only {seen} answered in {timeout} s"
    time.sleep(0.3)  # both have refreshed their entries since the probes closed


@pytest.fixture()
def server(database_url):
    srv = Gunicorn(database_url, workers=2, threads=4).wait_ready()
    _wait_for_both_workers(srv)
    yield srv
    srv.stop()


def test_clients_connecting_together_are_spread_over_the_workers(server):
    # 24 clients connect at the same moment (plain gthread gave all 24 to one worker here).
    opened = _open_at_once(server, 24)
    by_worker = Counter(pid for _, pid in opened)
    assert len(by_worker) == 2, by_worker
    assert max(by_worker.values()) - min(by_worker.values()) <= 4, by_worker
    # Connections opened one after another, each kept open, alternate too.
    more = [_connect(server) for _ in range(12)]
    by_worker.update(pid for _, pid in more)
    assert max(by_worker.values()) - min(by_worker.values()) <= 4, by_worker
    # Every kept connection still answers on the worker that accepted it.
    for conn, pid in opened + more:
        conn.request("GET", "/health")
        resp = conn.getresponse()
        resp.read()
        assert int(resp.getheader("X-Worker-PID")) == pid
        conn.close()


def test_a_stopped_worker_does_not_hold_new_connections_back(server):
    opened = _open_at_once(server, 12)
    pids = sorted({pid for _, pid in opened})
    assert len(pids) == 2
    frozen, other = pids
    os.kill(frozen, signal.SIGSTOP)
    try:
        # The frozen worker can accept nothing; the other one takes every new connection even
        # while it holds more than the frozen one (whose entry goes stale), within the timeout.
        fresh = [_connect(server, timeout=15.0) for _ in range(8)]
        assert {pid for _, pid in fresh} == {other}
    finally:
        os.kill(frozen, signal.SIGCONT)
    for conn, _ in opened + fresh:
        conn.close()
