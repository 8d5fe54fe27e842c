"""Hostile input that only a real socket can carry, against a real gunicorn; and the start check.

Raw UTF-8 encodings of surrogates and malformed chunked bodies cannot be expressed through
a WSGI test client (it hands the app a finished body). Here they go byte for byte to
gunicorn. Each answer must be a 4xx with a JSON body, and nothing may be stored.
"""
from __future__ import annotations

import json
import os
import socket
import subprocess
import sys

import pytest
import requests

from tests.support import ROOT, Gunicorn, free_port

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    from kato_web.store.migrate import upgrade
    url = f"sqlite:///{tmp_path_factory.mktemp('sockets') / 'kato.sqlite3'}"
    upgrade(url)
    gunicorn = Gunicorn(url, workers=1, threads=2).wait_ready()
    yield gunicorn
    gunicorn.stop()


def exchange(server, raw: bytes) -> tuple[int, dict | None, bytes]:
    """Send raw bytes, half-close, and return (status, parsed JSON body or None, raw body)."""
    with socket.create_connection(("127.0.0.1", server.port), timeout=20) as sock:
        sock.sendall(raw)
        sock.shutdown(socket.SHUT_WR)
        data = b""
        while chunk := sock.recv(65536):
            data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    status = int(head.split(b" ", 2)[1])
    assert b"content-type: application/json" in head.lower(), data[:300]
    return status, json.loads(body), body


def post(path: bytes, body: bytes = b"", headers: bytes = b"", chunked: bytes | None = None) -> bytes:
    start = b"POST " + path + b" HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\nConnection: close\r\n"
    if chunked is not None:
        return start + b"Transfer-Encoding: chunked\r\n" + headers + b"\r\n" + chunked
    return start + b"Content-Length: " + str(len(body)).encode() + b"\r\n" + headers + b"\r\n" + body


def session_count(server) -> int:
    return requests.get(server.url + "/sessions/count", timeout=10).json()["active_session_count"]


@pytest.mark.parametrize("body", [b'{"node_id": "\xed\xa0\x80"}', b'{"node_id": "a\xed\xbf\xbfb"}',
                                  b'{"node_id": "\xf4\x90\x80\x80"}', b'{"node_id": "\xc0\xaf"}'])
def test_raw_surrogates_and_invalid_utf8_on_the_wire(server, body):
    before = session_count(server)
    status, detail, _ = exchange(server, post(b"/sessions", body))
    assert status == 422 and detail["detail"][0]["type"] in ("string_unicode", "json_invalid")
    assert session_count(server) == before


@pytest.mark.parametrize("name, chunks", [
    ("non-hex size", b"zz\r\nabc\r\n0\r\n\r\n"),
    ("negative size", b"-3\r\nabc\r\n0\r\n\r\n"),
    ("enormous size", b"ffffffffffffffffffffff\r\nabc\r\n0\r\n\r\n"),
    ("missing terminator", b"3\r\nabcXX0\r\n\r\n"),
    ("cut off", b"10\r\n{\"node"),
    ("NUL in an extension", b"3;\x00=1\r\nabc\r\n0\r\n\r\n"),
])
def test_malformed_chunked_bodies(server, name, chunks):
    before = session_count(server)
    status, detail, _ = exchange(server, post(b"/sessions", chunked=chunks))
    assert 400 <= status < 500, name
    assert "detail" in detail
    assert session_count(server) == before


def test_a_well_formed_chunked_body_works(server):
    body = b'{"node_id": "chunky"}'
    chunks = hex(len(body))[2:].encode() + b"\r\n" + body + b"\r\n0\r\n\r\n"
    status, detail, _ = exchange(server, post(b"/sessions", chunked=chunks))
    assert status == 200 and detail["node_id"] == "chunky"


def test_smuggling_shapes_get_json_from_gunicorn_itself(server):
    # Content-Length together with chunked: gunicorn's parser refuses it before the app runs.
    status, detail, _ = exchange(server, post(b"/sessions", headers=b"Content-Length: 5\r\n", chunked=b"0\r\n\r\n"))
    assert status == 400 and "detail" in detail
    status, detail, _ = exchange(server, b"GET /" + b"a" * 9000 + b" HTTP/1.1\r\nHost: x\r\n\r\n")
    assert status == 414 and "detail" in detail


# ---------------------------------------------------------------- the start check

def start(env: dict, timeout: float = 60) -> subprocess.CompletedProcess:
    environment = {k: v for k, v in os.environ.items() if k != "KATO_ALLOW_ANONYMOUS"}
    environment.update({"KATO_WORKERS": "1", "KATO_THREADS": "1", "KATO_LOG_LEVEL": "warning", **env})
    return subprocess.run([sys.executable, "-m", "gunicorn", "-c", str(ROOT / "gunicorn.conf.py"), "wsgi:app"],
                          cwd=ROOT, env=environment, capture_output=True, text=True, timeout=timeout)


def test_no_open_api_on_a_public_address_by_accident(tmp_path):
    url = f"sqlite:///{tmp_path / 'kato.sqlite3'}"
    result = start({"KATO_DATABASE_URL": url, "KATO_BIND": f"0.0.0.0:{free_port()}", "KATO_API_KEYS": ""})
    assert result.returncode == 1
    refusal = [line for line in result.stderr.splitlines() if line.startswith("kato-web:")]
    assert len(refusal) == 1 and "KATO_ALLOW_ANONYMOUS=1" in refusal[0] and "0.0.0.0" in refusal[0]


@pytest.mark.parametrize("env", [{"KATO_ALLOW_ANONYMOUS": "1"}, {"KATO_API_KEYS": "a-key-of-sixteen-chars"}])
def test_a_public_address_with_keys_or_on_purpose(tmp_path, env):
    from kato_web.store.migrate import upgrade
    url = f"sqlite:///{tmp_path / 'kato.sqlite3'}"
    upgrade(url)
    port = free_port()
    server = Gunicorn(url, workers=1, threads=1, env={"KATO_BIND": f"0.0.0.0:{port}", **env})
    server.url = f"http://127.0.0.1:{port}"
    try:
        server.wait_ready()
        status = requests.get(server.url + "/sessions/count", timeout=10).status_code
        assert status == (200 if "KATO_ALLOW_ANONYMOUS" in env else 401)
    finally:
        server.stop()
