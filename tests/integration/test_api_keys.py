"""API keys, browser rules (CORS, JSON-only writes, cross-origin writes) through HTTP.

Keys come from KATO_API_KEYS or the admin page (stored hashed); with none the API is open as
KATO's is (api.md §1: no authentication).
"""
from __future__ import annotations

import pytest

from kato_web import create_app
from kato_web.services import security
from tests.conftest import make_config
from tests.support import wipe

FULL = "full-key-0123456789abcdef"
TENANT = "tenant-key-0123456789abcdef"
READER = "reader-key-0123456789abcdef"


@pytest.fixture
def keyed(database_url):
    app = create_app(make_config(database_url, api_keys=f"{FULL}, {TENANT}:acme-, {READER}::ro"))
    wipe(app.extensions["kato"].db.engine)
    yield app
    app.extensions["kato"].db.dispose()


def bearer(key: str) -> dict:
    return {"Authorization": f"Bearer {key}"}


def test_without_keys_the_api_is_open(client):
    # KATO's clients send no credentials: nothing configured, nothing asked.
    resp = client.post("/sessions", json={"node_id": "n"})
    assert resp.status_code == 200
    assert client.get("/metrics").status_code == 200


def test_keys_are_required_once_configured(keyed):
    client = keyed.test_client()
    resp = client.post("/sessions", json={"node_id": "n"})
    assert resp.status_code == 401
    assert resp.get_json() == {"detail": "An API key is required: send Authorization: Bearer <key> or X-API-Key"}
    assert resp.headers["WWW-Authenticate"].startswith("Bearer")
    assert client.post("/sessions", json={"node_id": "n"}, headers=bearer("wrong-key-0123456789")).status_code == 401
    assert client.get("/sessions/count", headers={"Authorization": "Basic abc"}).status_code == 401
    assert client.post("/sessions", json={"node_id": "n"}, headers=bearer(FULL)).status_code == 200
    assert client.get("/sessions/count", headers={"X-API-Key": FULL}).status_code == 200
    for open_path in ("/health", "/livez", "/openapi.json", "/docs", "/redoc"):
        assert client.get(open_path).status_code == 200, open_path
    for closed in ("/", "/status", "/metrics", "/stats", "/sessions/count", "/percept-data"):
        assert client.get(closed).status_code == 401, closed


def test_a_read_only_key_reads_and_never_writes(keyed):
    client = keyed.test_client()
    sid = client.post("/sessions", json={"node_id": "n"}, headers=bearer(FULL)).get_json()["session_id"]
    assert client.get(f"/sessions/{sid}/stm", headers=bearer(READER)).status_code == 200
    for path in ("/sessions", f"/sessions/{sid}/observe", f"/sessions/{sid}/clear-all", f"/sessions/{sid}/learn"):
        resp = client.post(path, json={"node_id": "n", "strings": ["a"]}, headers=bearer(READER))
        assert resp.status_code == 403 and resp.get_json() == {"detail": "This API key is read-only"}
    assert client.delete(f"/sessions/{sid}", headers=bearer(READER)).status_code == 403
    assert client.get(f"/sessions/{sid}/stm", headers=bearer(FULL)).get_json()["stm"] == []


def test_a_node_prefix_key_reaches_its_nodes_only(keyed):
    client = keyed.test_client()
    ours = client.post("/sessions", json={"node_id": "acme-1"}, headers=bearer(TENANT))
    assert ours.status_code == 200
    ours = ours.get_json()["session_id"]
    theirs = client.post("/sessions", json={"node_id": "globex"}, headers=bearer(FULL)).get_json()["session_id"]
    assert client.post("/sessions", json={"node_id": "globex"}, headers=bearer(TENANT)).status_code == 403
    assert client.post(f"/sessions/{ours}/observe", json={"strings": ["a"]}, headers=bearer(TENANT)).status_code == 200
    for method, path in (("GET", f"/sessions/{theirs}"), ("GET", f"/sessions/{theirs}/stm"),
                         ("POST", f"/sessions/{theirs}/clear-all"), ("DELETE", f"/sessions/{theirs}"),
                         ("GET", f"/sessions/{theirs}/predictions")):
        resp = client.open(path, method=method, headers=bearer(TENANT))
        assert resp.status_code == 403, (method, path)
        assert "limited to node ids starting with 'acme-'" in resp.get_json()["detail"]
    assert client.get("/percept-data?node_id=acme-1", headers=bearer(TENANT)).status_code == 200
    assert client.get("/percept-data?node_id=globex", headers=bearer(TENANT)).status_code == 403
    assert client.get("/pattern/PTRN|x", headers={**bearer(TENANT), "X-Node-ID": "globex"}).status_code == 403
    # Service-wide endpoints need an unrestricted key; a missing session is still a 404.
    assert client.get("/metrics", headers=bearer(TENANT)).status_code == 403
    assert client.get("/sessions/nope/stm", headers=bearer(TENANT)).status_code == 404
    assert client.get(f"/sessions/{theirs}/stm", headers=bearer(FULL)).status_code == 200


def test_database_keys_are_hashed_shown_once_and_revocable(app, kato):
    client = app.test_client()
    key, row = security.create_key(kato, "ci", None, False)
    other, other_row = security.create_key(kato, "ops", None, False)
    app.extensions["kato.keys"].forget()
    assert key.startswith("kato_") and len(key) > 40
    stored = security.list_keys(kato)
    assert [k["key_prefix"] for k in stored] == [other[:13], key[:13]]
    assert key not in repr(stored) and other not in repr(stored)
    assert client.get("/sessions/count").status_code == 401  # a key now exists: the door is shut
    assert client.get("/sessions/count", headers=bearer(key)).status_code == 200
    security.revoke_key(kato, row["id"])
    app.extensions["kato.keys"].forget()
    assert client.get("/sessions/count", headers=bearer(key)).status_code == 401
    assert client.get("/sessions/count", headers=bearer(other)).status_code == 200
    security.revoke_key(kato, other_row["id"])
    app.extensions["kato.keys"].forget()
    assert client.get("/sessions/count").status_code == 200  # no live key: open again


# ---------------------------------------------------------------- browsers

@pytest.mark.parametrize("content_type", ["text/plain", "application/x-www-form-urlencoded", "multipart/form-data",
                                          "text/html", "application/xml", "application/json; charset=latin-1"])
def test_writes_must_be_json(client, content_type):
    resp = client.post("/sessions", data=b'{"node_id": "n"}', headers={"Content-Type": content_type})
    assert resp.status_code == 415 and "JSON" in resp.get_json()["detail"]
    assert client.get("/sessions/count").get_json()["active_session_count"] == 0


def test_bodyless_posts_need_no_content_type(client, new_session):
    # KATO's clients POST learn, clear-stm, clear-all and extend without a body or a type.
    sid = new_session()
    client.post(f"/sessions/{sid}/observe", json={"strings": ["a", "b"]})
    for path in ("learn", "clear-stm", "clear-all", "extend?ttl_seconds=60"):
        assert client.post(f"/sessions/{sid}/{path}").status_code == 200, path
    # A form's empty POST (what a cross-site <form> sends) is still refused.
    resp = client.post(f"/sessions/{sid}/clear-all", headers={"Content-Type": "application/x-www-form-urlencoded"})
    assert resp.status_code == 415
    assert client.post("/sessions", data=b'{"node_id": "n"}',
                       headers={"Content-Type": "application/vnd.kato+json"}).status_code == 200


def test_cross_origin_writes_are_refused(client, new_session):
    sid = new_session()
    resp = client.post(f"/sessions/{sid}/clear-all", headers={"Origin": "https://evil.example"})
    assert resp.status_code == 403
    assert client.get(f"/sessions/{sid}", headers={"Origin": "https://evil.example"}).status_code == 200
    # The service's own origin may write.
    assert client.post(f"/sessions/{sid}/clear-stm", headers={"Origin": "http://localhost"}).status_code == 200


def test_no_cors_headers_by_default(client):
    resp = client.get("/health", headers={"Origin": "https://evil.example"})
    assert "Access-Control-Allow-Origin" not in resp.headers
    assert "Access-Control-Allow-Credentials" not in resp.headers
    preflight = client.options("/sessions", headers={"Origin": "https://evil.example",
                                                     "Access-Control-Request-Method": "POST"})
    assert "Access-Control-Allow-Origin" not in preflight.headers


def test_cors_allow_list(database_url):
    app = create_app(make_config(database_url, cors_origins=("https://app.example",)))
    client = app.test_client()
    try:
        ok = client.options("/sessions", headers={"Origin": "https://app.example",
                                                  "Access-Control-Request-Method": "POST",
                                                  "Access-Control-Request-Headers": "content-type, authorization"})
        assert ok.headers["Access-Control-Allow-Origin"] == "https://app.example"
        assert "Access-Control-Allow-Credentials" not in ok.headers
        resp = client.post("/sessions", json={"node_id": "n"}, headers={"Origin": "https://app.example"})
        assert resp.status_code == 200 and resp.headers["Access-Control-Allow-Origin"] == "https://app.example"
        assert "X-Session-ID" in resp.headers["Access-Control-Expose-Headers"]
        other = client.post("/sessions", json={"node_id": "n"}, headers={"Origin": "https://evil.example"})
        assert other.status_code == 403 and "Access-Control-Allow-Origin" not in other.headers
        admin = client.get("/admin/login", headers={"Origin": "https://app.example"})
        assert "Access-Control-Allow-Origin" not in admin.headers
    finally:
        app.extensions["kato"].db.dispose()


@pytest.mark.parametrize("raw, message", [
    ("short", "16-200 characters"), ("good-key-0123456789:prefix:rx", "'ro' or 'rw'"),
])
def test_bad_key_settings_are_refused_at_start_without_printing_them(monkeypatch, raw, message):
    from kato_web.config import Config, ConfigError
    monkeypatch.setenv("KATO_API_KEYS", raw)
    with pytest.raises(ConfigError, match=message) as err:
        Config.from_env()
    assert str(err.value).startswith("KATO_API_KEYS='<hidden>' is not allowed")
    assert raw not in str(err.value)


@pytest.mark.parametrize("name, value", [
    ("KATO_CORS_ORIGINS", "app.example"), ("KATO_COOKIE_SECURE", "sometimes"),
    ("KATO_ADMIN_LOGIN_LIMIT", "lots"), ("KATO_MAX_SYMBOL_BYTES", "4096"), ("KATO_MAX_SESSION_TTL", "0"),
    ("KATO_PROXY_COUNT", "-1"), ("KATO_MAX_STM_EVENTS", "0"),
])
def test_bad_security_settings_are_refused_at_start(monkeypatch, name, value):
    from kato_web.config import Config, ConfigError
    monkeypatch.setenv(name, value)
    with pytest.raises(ConfigError, match=name):
        Config.from_env()


def test_security_settings_from_the_environment(monkeypatch):
    from kato_web.config import Config
    monkeypatch.setenv("KATO_CORS_ORIGINS", "https://a.example/, https://b.example")
    monkeypatch.setenv("KATO_COOKIE_SECURE", "true")
    config = Config.from_env()
    assert config.cors_origins == ("https://a.example", "https://b.example")
    assert config.cookie_secure == "1"


# ---------------------------------------------------------------- command line

def _cli(database_url: str, *args: str):
    import os
    import subprocess
    import sys

    from tests.support import ROOT

    env = {k: v for k, v in os.environ.items() if not k.startswith("KATO_")}
    env["KATO_DATABASE_URL"] = database_url
    return subprocess.run([sys.executable, "-m", "kato_web", "keys", *args], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=120)


def test_keys_from_the_command_line_work_like_the_admin_pages(app, kato, database_url):
    # README "Security": `python -m kato_web keys create|list|revoke`, audited as the page's.
    client = app.test_client()
    made = _cli(database_url, "create", "deploy bot", "--node-prefix", "acme-", "--read-only")
    assert made.returncode == 0, made.stderr
    key = made.stdout.strip()
    assert key.startswith("kato_") and "\n" not in key and key not in made.stderr
    assert "shown only now" in made.stderr
    app.extensions["kato.keys"].forget()
    assert client.get("/sessions/count").status_code == 401
    sid = client.post("/sessions", json={"node_id": "acme-1"}, headers=bearer(FULL))
    assert sid.status_code == 401  # FULL is not configured here: only the new key exists
    assert client.get("/percept-data?node_id=acme-1", headers=bearer(key)).status_code == 200
    assert client.get("/percept-data?node_id=globex", headers=bearer(key)).status_code == 403
    assert client.post("/sessions", json={"node_id": "acme-1"}, headers=bearer(key)).status_code == 403

    listing = _cli(database_url, "list", "--json")
    rows = __import__("json").loads(listing.stdout)
    assert [(r["name"], r["node_prefix"], r["read_only"], r["revoked_at"]) for r in rows] == [
        ("deploy bot", "acme-", True, None)]
    assert key not in listing.stdout
    table = _cli(database_url).stdout  # `keys` alone lists
    assert "deploy bot" in table and "acme-, read-only" in table and "live" in table

    assert _cli(database_url, "revoke", "999999").returncode == 1
    revoked = _cli(database_url, "revoke", str(rows[0]["id"]))
    assert revoked.returncode == 0 and "revoked" in revoked.stdout
    app.extensions["kato.keys"].forget()
    assert client.get("/sessions/count").status_code == 200  # no live key left: open again
    actions = [(r["action"], r["actor"]) for r in security.audit_page(kato, None, None, None, 1)["rows"]]
    assert ("key_created", "command line") in actions and ("key_revoked", "command line") in actions
    assert _cli(database_url, "create", "").returncode == 1
