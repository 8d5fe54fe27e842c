"""gunicorn as operators run it (issue 14): kernels ready before traffic, every worker counted,
the start time set, one control socket per instance, and one JSON log format for everything."""
from __future__ import annotations

import json
import os
import stat
import time

import pytest
import requests

from kato_web.config import INSTANCE_DIR
from tests.support import Gunicorn

pytestmark = pytest.mark.e2e


def _prometheus_value(text: str, name: str) -> float:
    for line in text.splitlines():
        if line.startswith(name + " "):
            return float(line.split()[1])
    raise AssertionError(f"{name} missing")


def test_two_instances_json_logs_metrics_and_control_sockets(database_url, tmp_path):
    env = {"KATO_LOG_FORMAT": "json", "KATO_ACCESS_LOG": "1", "KATO_LOG_LEVEL": "info"}
    started = time.time()
    servers = [Gunicorn(database_url, workers=2, threads=2, env=env, output=tmp_path / f"s{i}")
               for i in range(2)]
    try:
        for server in servers:
            server.wait_ready(timeout=180)
        for server in servers:
            # Ready on the very first ask: the kernels were loaded before any worker served.
            ready = requests.get(server.url + "/readyz")
            assert ready.status_code == 200, ready.text
            assert ready.json()["checks"]["kernels"]["detail"] == "compiled path ready"
            text = requests.get(server.url + "/metrics?format=prometheus").text
            # Both workers count, though at most one of them has served a request.
            assert _prometheus_value(text, "kato_workers") == 2
            assert started - 5 <= _prometheus_value(text, "kato_start_time_seconds") <= time.time()
            sid = requests.post(server.url + "/sessions", json={"node_id": "ops"}).json()["session_id"]
            assert requests.get(f"{server.url}/sessions/{sid}/predictions").status_code == 200
        sockets = [INSTANCE_DIR / f"gunicorn-127.0.0.1_{server.port}.ctl" for server in servers]
        for path in sockets:
            assert stat.S_ISSOCK(os.stat(path).st_mode), path
    finally:
        for server in servers:
            server.stop()
    for path in sockets:
        assert not path.exists()  # each instance removed its own, and only its own

    for i in range(2):
        records = []
        for name in ("stdout.log", "stderr.log"):
            for line in (tmp_path / f"s{i}" / name).read_text().splitlines():
                if line.strip():
                    record = json.loads(line)  # every line, gunicorn's and the app's, is JSON
                    assert {"ts", "level", "logger", "pid", "message"} <= set(record), line
                    records.append(record)
        messages = [r["message"] for r in records]
        assert any(m.startswith("compiled prediction path ready") for m in messages)
        assert any(r["logger"] == "gunicorn.error" and m.startswith("Listening at") for r, m in
                   zip(records, messages))
        access = [r for r in records if r["logger"] == "kato_web.access"]
        assert any(r["path"] == "/readyz" and r["status"] == 200 for r in access)
