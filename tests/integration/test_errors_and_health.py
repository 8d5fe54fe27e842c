"""Error shapes for routing and size, plus root/health/status (api.md §2.2, §7.1, §7.5)."""
from __future__ import annotations

import pytest


def test_unknown_route_is_json_404(client):
    resp = client.get("/no/such/route")
    assert resp.status_code == 404
    assert resp.is_json and resp.get_json() == {"detail": "Not Found"}


@pytest.mark.parametrize("path", ["/observe", "/stm", "/learn", "/predictions", "/clear-stm",
                                  "/gene/x", "/genes/update", "/ws"])
def test_removed_node_level_routes(client, path):
    # api.md §8: the pre-3.0 node-level API must not exist
    assert client.get(path).status_code in (404, 405)
    assert client.post(path, json={}).status_code in (404, 405)


def test_wrong_method_is_json_405(client):
    resp = client.put("/sessions")
    assert resp.status_code == 405
    assert resp.get_json() == {"detail": "Method Not Allowed"}
    assert "POST" in resp.headers["Allow"]


def test_oversized_body_is_json_413(database_url):
    from kato_web import create_app
    from tests.conftest import make_config

    app = create_app(make_config(database_url, max_request_bytes=1000))
    resp = app.test_client().post("/sessions", data=b'{"node_id": "' + b"x" * 5000 + b'"}',
                                  content_type="application/json")
    assert resp.status_code == 413
    assert resp.get_json() == {"detail": "Request Entity Too Large"}
    app.extensions["kato"].db.dispose()


def test_root(client):
    body = client.get("/").get_json()
    assert body["service"] == "KATO API" and body["session_support"] is True
    assert body["uptime_seconds"] > 0


def test_health(client, new_session):
    new_session()
    body = client.get("/health").get_json()
    assert body["status"] == "healthy" and body["processor_status"] == "healthy"
    assert body["service_name"] == "kato" and body["issues"] == []
    assert body["uptime_seconds"] > 0 and body["active_sessions"] == 1
    assert {"metrics_collected", "last_collection", "timestamp"} <= set(body)
    assert body["timestamp"].endswith("+00:00")


def test_status(client, new_session):
    new_session("alice")
    body = client.get("/status").get_json()
    assert body["base_processor_id"] == "kato" and body["uptime_seconds"] > 0
    assert body["sessions"]["active_sessions"] == 1
    assert any(p["processor_id"] == "alice_kato" for p in body["processors"]["processors"])


def test_trace_id_echo(client):
    resp = client.get("/health", headers={"X-Trace-ID": "kato-abc"})
    assert resp.headers["X-Trace-ID"] == "kato-abc"
    assert client.get("/health").headers["X-Trace-ID"].startswith("kato-")


LONE = '"\\ud800"'  # JSON text for a string holding a lone UTF-16 surrogate


@pytest.mark.parametrize("path_kind, body", [
    ("create", '{"node_id": ' + LONE + '}'),
    ("observe", '{"strings": [' + LONE + ', "a"]}'),
    ("observe", '{"strings": ["a"], "emotives": {' + LONE + ': 1.0}}'),
    ("observe", '{"strings": ["a"], "metadata": {"k": ["x", ' + LONE + ']}}'),
    ("sequence", '{"observations": [{"strings": [' + LONE + ']}]}'),
    ("config", '{"config": {"stm_mode": ' + LONE + '}}'),
])
def test_a_lone_surrogate_is_a_clear_422_and_stores_nothing(client, kato, new_session, path_kind, body):
    # Rule: bad input gets a 4xx JSON error, never a 500, and changes nothing stored.
    sid = new_session()
    before = client.get(f"/sessions/{sid}").get_json()
    path = {"create": "/sessions", "observe": f"/sessions/{sid}/observe",
            "sequence": f"/sessions/{sid}/observe-sequence", "config": f"/sessions/{sid}/config"}[path_kind]
    resp = client.post(path, data=body, content_type="application/json")
    assert resp.status_code == 422, resp.data
    assert "surrogate" in resp.get_json()["detail"][0]["msg"]
    after = client.get(f"/sessions/{sid}").get_json()
    assert (after["session_config"], client.get(f"/sessions/{sid}/stm").get_json()["stm"]) == (
        before["session_config"], [])
    assert client.get("/sessions/count").get_json()["active_session_count"] == 1


def test_a_surrogate_pair_is_ordinary_text(client, new_session):
    sid = new_session()
    resp = client.post(f"/sessions/{sid}/observe", data='{"strings": ["\\ud83d\\ude00", "a"]}',
                       content_type="application/json")
    assert resp.status_code == 200
    assert client.get(f"/sessions/{sid}/stm").get_json()["stm"] == [["a", "😀"]]
