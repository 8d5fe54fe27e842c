"""Property-based run over the OpenAPI document against a live gunicorn (schemathesis).

Schemathesis generates requests from /openapi.json (valid and invalid ones, every operation,
then stateful sequences that follow the document's links) and checks each answer: never a
5xx, every status documented, every body conforming to its schema, the documented content
type. A live session and a learned pattern are handed to it so that session routes are
exercised beyond 404. Bounded: KATO_SCHEMATHESIS_SECONDS (default 30) for the whole run,
with a fixed seed so CI runs are repeatable (KATO_SCHEMATHESIS_SEED picks another).
"""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import requests

from tests.support import Gunicorn

pytestmark = pytest.mark.e2e

CHECKS = ("not_a_server_error", "status_code_conformance", "content_type_conformance",
          "response_schema_conformance", "response_headers_conformance")
SECONDS = int(os.environ.get("KATO_SCHEMATHESIS_SECONDS", "30"))
SEED = os.environ.get("KATO_SCHEMATHESIS_SEED", "20261203")


@pytest.fixture(scope="module")
def server(database_url):
    srv = Gunicorn(database_url, workers=2, threads=2).wait_ready()
    yield srv
    srv.stop()


def test_schemathesis_finds_no_failure(server, tmp_path):
    http = requests.Session()
    sid = http.post(server.url + "/sessions", json={"node_id": "fuzz"}).json()["session_id"]
    for event in (["a", "b"], ["c"], ["d"]):
        http.post(f"{server.url}/sessions/{sid}/observe", json={"strings": event})
    pattern = http.post(f"{server.url}/sessions/{sid}/learn").json()["pattern_name"]
    http.post(f"{server.url}/sessions/{sid}/observe", json={"strings": ["a"]})
    before = http.get(server.url + "/metrics").json()["operations"]["observations"]
    # DELETE gets a session of its own: deleting the shared one early would turn every later
    # session request into a 404 and leave the engine unexercised.
    doomed = http.post(server.url + "/sessions", json={"node_id": "fuzz"}).json()["session_id"]
    config = tmp_path / "schemathesis.toml"
    config.write_text(
        "[parameters]\n"
        f'session_id = "{sid}"\n'
        f'pattern_id = "{pattern}"\n'
        'metric_name = "kato_requests_total"\n'
        'node_id = "fuzz"\n'
        "\n[[operations]]\n"
        'include-name = "DELETE /sessions/{session_id}"\n'
        f'parameters = {{ session_id = "{doomed}" }}\n')
    st = Path(sys.executable).with_name("st")
    command = [str(st), "--config-file", str(config), "run", server.url + "/openapi.json",
               "--checks", ",".join(CHECKS), "--workers", "1", "--max-time", str(SECONDS),
               "--seed", SEED, "--generation-database", "none", "--no-color", "--request-timeout", "30",
               "--suppress-health-check", "too_slow,filter_too_much"]
    run = subprocess.run(command, capture_output=True, text=True, timeout=SECONDS + 120)
    summary = run.stdout[-6000:]
    assert run.returncode == 0, summary + run.stderr[-2000:]
    assert " passed" in run.stdout, summary
    # The run reached the engine, not only 404s and 422s: generated observations were stored.
    after = requests.get(server.url + "/metrics").json()["operations"]["observations"]
    assert after > before + 10, (before, after, summary)
