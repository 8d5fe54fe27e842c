"""A database outage under a running gunicorn: /readyz flips to 503 and back by itself (issue 14).

Uses a throwaway PostgreSQL cluster that the test creates with initdb and starts/stops with
pg_ctl on a free port (never the shared server).
"""
from __future__ import annotations

import glob
import os
import shutil
import subprocess
import tempfile
import time

import pytest
import requests

from kato_web.store.migrate import upgrade
from tests.support import Gunicorn, free_port

pytestmark = pytest.mark.e2e

_BINS = sorted(glob.glob("/usr/lib/postgresql/*/bin"))


class Cluster:
    """A private PostgreSQL cluster in a temporary directory (postgres must not run as root)."""

    def __init__(self):
        self.bin = _BINS[-1]
        self.dir = tempfile.mkdtemp(prefix="kato-pg-")
        self.port = free_port()
        self.as_user = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
        if self.as_user:
            shutil.chown(self.dir, "postgres", "postgres")
        self._run("initdb", "-D", f"{self.dir}/data", "-A", "trust", "-U", "postgres", "--no-sync")
        self.url = f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/postgres"

    def _run(self, tool: str, *args: str) -> None:
        subprocess.run([*self.as_user, f"{self.bin}/{tool}", *args], check=True, capture_output=True,
                       timeout=120)

    def start(self) -> None:
        self._run("pg_ctl", "-D", f"{self.dir}/data", "-w", "-l", f"{self.dir}/log", "-o",
                  f"-p {self.port} -k {self.dir} -c listen_addresses=127.0.0.1 -c fsync=off", "start")

    def stop(self) -> None:
        self._run("pg_ctl", "-D", f"{self.dir}/data", "-w", "-m", "fast", "stop")

    def destroy(self) -> None:
        try:
            self.stop()
        except subprocess.CalledProcessError:
            pass
        shutil.rmtree(self.dir, ignore_errors=True)


@pytest.fixture
def cluster():
    if not _BINS:
        pytest.fail("PostgreSQL server binaries are missing (/usr/lib/postgresql/*/bin)")
    pg = Cluster()
    try:
        pg.start()
        yield pg
    finally:
        pg.destroy()


def _wait_for(url: str, status: int, timeout: float = 30.0) -> requests.Response:
    deadline = time.time() + timeout
    while True:
        resp = requests.get(url, timeout=5)
        if resp.status_code == status or time.time() > deadline:
            return resp
        time.sleep(0.2)


def test_readiness_follows_the_database(cluster):
    upgrade(cluster.url)
    server = Gunicorn(cluster.url, workers=1, threads=2,
                      env={"KATO_DB_PING_IDLE_SECONDS": "0"}).wait_ready(timeout=120)
    try:
        ready = _wait_for(server.url + "/readyz", 200, timeout=120)  # kernels load before traffic
        assert ready.status_code == 200, ready.text
        sid = requests.post(server.url + "/sessions", json={"node_id": "outage"}).json()["session_id"]

        cluster.stop()
        down = _wait_for(server.url + "/readyz", 503)
        assert down.status_code == 503 and down.headers["Retry-After"] == "5"
        assert down.json()["reasons"][0].startswith("database: unreachable")
        for resp in (requests.get(f"{server.url}/sessions/{sid}"),
                     requests.post(server.url + "/sessions", json={"node_id": "outage"})):
            assert resp.status_code == 503 and resp.headers["Retry-After"] == "5", resp.text
            assert resp.json() == {"detail": "Database unavailable, retry later"}
        assert requests.get(server.url + "/livez").status_code == 200
        assert requests.get(server.url + "/health").json()["status"] == "unhealthy"

        cluster.start()
        back = _wait_for(server.url + "/readyz", 200)
        assert back.status_code == 200, back.text
        # The same pool serves again without a restart, and nothing stored was lost.
        assert requests.get(f"{server.url}/sessions/{sid}").status_code == 200
        assert requests.post(server.url + "/sessions", json={"node_id": "outage"}).status_code == 200
    finally:
        server.stop()
