"""Sessions live in the database, so any gunicorn worker serves any session."""
from __future__ import annotations

import os

import pytest
import requests

from tests.support import Gunicorn

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def server(database_url):
    srv = Gunicorn(database_url, workers=2, threads=2).wait_ready()
    yield srv
    srv.stop()


def test_session_used_across_workers(server):
    http = requests.Session()
    sid = http.post(server.url + "/sessions", json={"node_id": "e2e-node"}).json()["session_id"]
    pids = set()
    for i in range(40):
        # A fresh connection each time lets the kernel hand it to either worker.
        resp = requests.post(f"{server.url}/sessions/{sid}/config",
                             json={"config": {"max_predictions": 10 + i}},
                             headers={"Connection": "close"})
        assert resp.status_code == 200, resp.text
        pids.add(resp.headers.get("X-Worker-PID"))
        got = requests.get(f"{server.url}/sessions/{sid}/config", headers={"Connection": "close"}).json()
        assert got["config"]["max_predictions"] == 10 + i
    assert len(pids) == 2, f"only one worker answered: {pids}"
    assert http.get(f"{server.url}/sessions/{sid}").status_code == 200


def test_keep_alive_and_json_errors(server):
    http = requests.Session()
    for _ in range(5):
        assert http.get(server.url + "/health").json()["status"] == "healthy"
    resp = http.get(server.url + "/sessions/missing/config")
    assert resp.status_code == 404 and resp.json()["error"]["code"] == "SESSION_NOT_FOUND"
    resp = http.post(server.url + "/sessions", data="{", headers={"Content-Type": "application/json"})
    assert resp.status_code == 422 and resp.json()["detail"][0]["type"] == "json_invalid"
