"""60 slow-header clients cannot stall the service behind deploy/nginx.conf (but do without it).

A real nginx (Debian's package; `make test` installs it) runs the shipped configuration with
only its upstream and listen address rewritten, in front of a real gunicorn with one worker
and two threads. Sixty sockets send their request headers a byte every two seconds, from
several loopback source addresses (127.0.0.2-7, as sixty clients would), while a normal client
keeps creating sessions and observing. Behind nginx every normal request answers quickly;
straight to gunicorn (the control) the same sockets hold both threads and a normal request
waits. Latency bounds are generous: the machine is shared and slow under load.
"""
from __future__ import annotations

import os
import re
import shutil
import socket
import subprocess
import threading
import time

import pytest
import requests

from tests.support import ROOT, Gunicorn, free_port

pytestmark = pytest.mark.e2e

SLOW_SOCKETS = 60
DRIP_SECONDS = 2.0
NORMAL_BOUND_SECONDS = 3.0


def nginx_binary() -> str:
    found = shutil.which("nginx") or ("/usr/sbin/nginx" if os.path.exists("/usr/sbin/nginx") else None)
    assert found, "nginx is not installed: `make test` installs it (Makefile target nginx)"
    return found


@pytest.fixture
def backend(tmp_path):
    from kato_web.store.migrate import upgrade
    url = f"sqlite:///{tmp_path / 'kato.sqlite3'}"
    upgrade(url)
    server = Gunicorn(url, workers=1, threads=2, env={"KATO_PROXY_COUNT": "1"}).wait_ready()
    yield server
    server.stop()


@pytest.fixture
def nginx(tmp_path, backend):
    conf = (ROOT / "deploy" / "nginx.conf").read_text()
    port = free_port()
    conf = conf.replace("server 127.0.0.1:8000;", f"server 127.0.0.1:{backend.port};")
    conf, listens = re.subn(r"listen 80;", f"listen 127.0.0.1:{port};", conf)
    assert listens == 1
    prefix = tmp_path / "nginx"
    (prefix / "logs").mkdir(parents=True)
    (prefix / "nginx.conf").write_text(conf)
    directives = f"daemon off; pid {prefix / 'nginx.pid'}; error_log {prefix / 'logs' / 'error.log'} warn;"
    if os.geteuid() == 0:
        directives += " user root;"  # its workers must reach this test's private temp directory
    proc = subprocess.Popen([nginx_binary(), "-p", str(prefix), "-c", str(prefix / "nginx.conf"), "-g", directives],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    deadline = time.time() + 20
    while time.time() < deadline:
        assert proc.poll() is None, proc.stderr.read().decode()
        try:
            if requests.get(url + "/health", timeout=2).status_code == 200:
                break
        except requests.RequestException:
            time.sleep(0.1)
    else:
        raise RuntimeError("nginx did not come up")
    yield url
    proc.terminate()
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


class SlowClients:
    """Sockets that send a request's headers one byte per DRIP_SECONDS."""

    def __init__(self, port: int, count: int):
        self.port = port
        self.count = count
        self.stop = threading.Event()
        self.sockets: list[socket.socket] = []
        self.thread = threading.Thread(target=self._drip, daemon=True)

    def __enter__(self) -> "SlowClients":
        for i in range(self.count):
            sock = socket.socket()
            sock.bind((f"127.0.0.{2 + i % 6}", 0))
            sock.settimeout(5)
            sock.connect(("127.0.0.1", self.port))
            sock.sendall(b"GET /sessions/count HTTP/1.1\r\nHost: slow\r\n")
            self.sockets.append(sock)
        self.thread.start()
        time.sleep(0.5)  # let the server pick them up
        return self

    def _drip(self) -> None:
        while not self.stop.wait(DRIP_SECONDS):
            for sock in list(self.sockets):
                try:
                    sock.send(b"X")
                except OSError:
                    self.sockets.remove(sock)  # the server gave up on it: that is the point

    def __exit__(self, *exc) -> None:
        self.stop.set()
        self.thread.join(timeout=5)
        for sock in self.sockets:
            sock.close()


def normal_client(url: str, rounds: int) -> list[float]:
    """Create a session and observe, timing each request; return the latencies."""
    latencies = []
    http = requests.Session()
    for _ in range(rounds):
        started = time.monotonic()
        sid = http.post(url + "/sessions", json={"node_id": "busy"}, timeout=30).json()["session_id"]
        latencies.append(time.monotonic() - started)
        started = time.monotonic()
        resp = http.post(f"{url}/sessions/{sid}/observe", json={"strings": ["a"]}, timeout=30)
        assert resp.status_code == 200
        latencies.append(time.monotonic() - started)
        time.sleep(0.5)
    return latencies


def test_slow_header_clients_do_not_delay_normal_requests_behind_nginx(nginx, backend):
    port = int(nginx.rsplit(":", 1)[1])
    with SlowClients(port, SLOW_SOCKETS):
        latencies = normal_client(nginx, rounds=8)  # ~6 s while all sixty drip
    print(f"\nbehind nginx, {SLOW_SOCKETS} slow sockets: normal requests max {max(latencies):.3f} s, "
          f"median {sorted(latencies)[len(latencies) // 2]:.3f} s")
    assert max(latencies) < NORMAL_BOUND_SECONDS

    # Control: the same sockets straight at gunicorn hold both of its threads.
    with SlowClients(backend.port, SLOW_SOCKETS):
        started = time.monotonic()
        with pytest.raises(requests.RequestException):
            requests.get(backend.url + "/sessions/count", timeout=NORMAL_BOUND_SECONDS)
        waited = time.monotonic() - started
    print(f"straight to gunicorn: a normal request got no answer in {waited:.1f} s")
    assert waited >= NORMAL_BOUND_SECONDS * 0.9
