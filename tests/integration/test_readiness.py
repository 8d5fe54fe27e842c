"""Liveness, readiness and database outages answer JSON, never a 500 (issue 14)."""
from __future__ import annotations

from kato_web import create_app
from kato_web.engine import index as engine_index
from tests.conftest import make_config
from tests.support import free_port


def test_livez_and_readyz_when_ready(client):
    engine_index.warm_up()  # what the server does before it takes traffic
    assert client.get("/livez").get_json() == {"status": "alive"}
    resp = client.get("/readyz")
    assert resp.status_code == 200, resp.get_json()
    body = resp.get_json()
    assert body["status"] == "ready" and "reasons" not in body
    assert body["checks"]["database"]["ok"] and body["checks"]["kernels"]["ok"]


def test_readyz_names_missing_migrations(tmp_path):
    app = create_app(make_config(f"sqlite:///{tmp_path}/unmigrated.sqlite3"))
    resp = app.test_client().get("/readyz")
    assert resp.status_code == 503 and resp.headers["Retry-After"] == "5"
    body = resp.get_json()
    assert body["status"] == "not ready"
    assert any(r.startswith("database: migrations not at head") for r in body["reasons"])
    app.extensions["kato"].db.dispose()


def test_unreachable_database_is_503_with_retry_after():
    # Nothing listens on this port: every connection attempt is refused at once.
    url = f"postgresql+psycopg://kato@127.0.0.1:{free_port()}/kato"
    app = create_app(make_config(url))
    client = app.test_client()
    assert client.get("/livez").status_code == 200
    ready = client.get("/readyz")
    assert ready.status_code == 503 and ready.headers["Retry-After"] == "5"
    assert ready.get_json()["reasons"][0].startswith("database: unreachable")
    for resp in (client.post("/sessions", json={"node_id": "n"}), client.get("/sessions/abc"),
                 client.get("/status")):
        assert resp.status_code == 503, resp.get_data(as_text=True)
        assert resp.headers["Retry-After"] == "5"
        assert resp.get_json() == {"detail": "Database unavailable, retry later"}
    health = client.get("/health")  # KATO's shape: 200, the failure folded into the body
    assert health.status_code == 200 and health.get_json()["status"] == "unhealthy"
    app.extensions["kato"].db.dispose()
