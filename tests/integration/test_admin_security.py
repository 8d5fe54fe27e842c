"""The admin area's defences and the audit trail, through HTTP on the real database.

The cookie key is random and shared through the database (not derived from the password),
sign-in attempts are limited per address and in total on counters every worker shares,
signing out kills the session server-side, cookies are Secure over HTTPS, and every
sign-in, setting change, key and clear-all leaves an audit record.
"""
from __future__ import annotations

import json
import re

import pytest
from sqlalchemy import text

from kato_web import create_app
from tests.conftest import make_config
from tests.support import wipe

PASSWORD = "a long admin password"
TOKEN = re.compile(r'name="csrf_token" value="([^"]+)"')


def make_app(database_url, **overrides):
    settings = {"secret_key": None, "admin_password": PASSWORD, **overrides}
    return create_app(make_config(database_url, **settings))


@pytest.fixture
def apps(database_url):
    """Two apps on one database: two gunicorn workers (or two instances) as far as state goes."""
    made = []

    def build(**overrides):
        app = make_app(database_url, **overrides)
        made.append(app)
        return app

    first = build()
    wipe(first.extensions["kato"].db.engine)
    yield build
    for app in made:
        app.extensions["kato"].db.dispose()


def csrf(client, path="/admin/login") -> str:
    match = TOKEN.search(client.get(path).get_data(as_text=True))
    assert match, path
    return match.group(1)


def login(client, password=PASSWORD, address="10.0.0.1"):
    return client.post("/admin/login", data={"password": password, "csrf_token": csrf(client)},
                       environ_base={"REMOTE_ADDR": address})


def audit_rows(app) -> list[dict]:
    with app.extensions["kato"].db.engine.connect() as conn:
        rows = [dict(r) for r in conn.execute(text("SELECT * FROM audit_log ORDER BY id")).mappings()]
    for row in rows:  # a JSON column read through text() is a string on SQLite
        if isinstance(row["detail"], str):
            row["detail"] = json.loads(row["detail"])
    return rows


def test_the_cookie_key_is_random_shared_and_not_the_password(apps):
    worker_a, worker_b = apps(), apps()
    client = worker_a.test_client()
    assert login(client).status_code == 302
    # The second worker recognises the first one's sign-in: the key came from the database.
    cookie = client.get_cookie("session", path="/")
    other = worker_b.test_client()
    other.set_cookie("session", cookie.value)
    assert other.get("/admin/settings").status_code == 200
    with worker_a.extensions["kato"].db.engine.connect() as conn:
        stored = conn.execute(text("SELECT value FROM app_secrets WHERE name = 'admin_cookie_key'")).scalar_one()
    assert worker_a.secret_key == worker_b.secret_key == stored and len(stored) == 64
    assert PASSWORD not in stored
    # Another password does not change the key (it signs everyone out instead).
    third = apps(admin_password="another password entirely")
    third.test_client().get("/admin/login")
    assert third.secret_key == stored


def test_kato_secret_key_wins(apps):
    app = apps(secret_key="from-the-environment-0123456789")
    client = app.test_client()
    assert login(client).status_code == 302
    assert app.secret_key == "from-the-environment-0123456789"


def test_sign_in_attempts_are_limited_per_address_and_in_total(apps):
    worker_a = apps(admin_login_limit="3 per minute", admin_login_global_limit="5 per minute")
    worker_b = apps(admin_login_limit="3 per minute", admin_login_global_limit="5 per minute")
    a, b = worker_a.test_client(), worker_b.test_client()
    # Three guesses from one address, spread over two workers: the counters are shared.
    assert login(a, "guess 1").status_code == 401
    assert login(b, "guess 2").status_code == 401
    assert login(a, "guess 3").status_code == 401
    resp = login(b, PASSWORD)  # even the right password waits now
    assert resp.status_code == 429
    retry = int(resp.headers["Retry-After"])
    assert 1 <= retry <= 62  # the one-minute window (the limiter rounds its reset time up)
    assert f"Try again in {retry} s." in resp.get_data(as_text=True)
    # Other addresses still get through, until the total limit (5 attempts) is reached.
    assert login(a, "guess 5", address="10.0.0.2").status_code == 401
    assert login(b, "guess 6", address="10.0.0.3").status_code == 401
    assert login(b, PASSWORD, address="10.0.0.4").status_code == 429
    outcomes = [(r["action"], r["outcome"], r["address"]) for r in audit_rows(worker_a)]
    assert outcomes.count(("admin_login", "failed", "10.0.0.1")) == 3
    assert ("admin_login", "limited", "10.0.0.1") in outcomes and ("admin_login", "limited", "10.0.0.4") in outcomes


def test_sign_out_ends_the_session_on_the_server(apps):
    app = apps()
    client = app.test_client()
    login(client)
    stolen = client.get_cookie("session", path="/").value
    resp = client.post("/admin/logout", data={"csrf_token": csrf(client, "/admin/settings")})
    assert resp.status_code == 302
    thief = app.test_client()
    thief.set_cookie("session", stolen)
    resp = thief.get("/admin/settings")
    assert resp.status_code == 302 and "/admin/login" in resp.headers["Location"]
    assert [r["action"] for r in audit_rows(app)] == ["admin_login", "admin_logout"]


@pytest.mark.parametrize("mode, base_url, secure", [
    ("auto", "http://localhost", False), ("auto", "https://localhost", True),
    ("1", "http://localhost", True), ("0", "https://localhost", False),
])
def test_secure_cookies(apps, mode, base_url, secure):
    app = apps(cookie_secure=mode)
    client = app.test_client()
    resp = client.get("/admin/login", base_url=base_url)
    cookie = resp.headers["Set-Cookie"]
    assert ("; Secure" in cookie) is secure
    assert "HttpOnly" in cookie and "SameSite=Strict" in cookie


def test_https_behind_a_trusted_proxy(apps):
    app = apps(proxy_count=1)
    resp = app.test_client().get("/admin/login", headers={"X-Forwarded-Proto": "https", "X-Forwarded-For": "1.2.3.4"})
    assert "; Secure" in resp.headers["Set-Cookie"]


def test_audit_trail_of_settings_keys_and_clear_all(apps):
    app = apps()
    admin = app.test_client()
    login(admin)
    token = csrf(admin, "/admin/settings")
    assert admin.post("/admin/settings", data={"csrf_token": token, "recall_threshold": "0.4"}).status_code == 302
    resp = admin.post("/admin/keys", data={"csrf_token": token, "name": "loader", "node_prefix": "acme-",
                                           "read_only": "1"})
    assert resp.status_code == 200
    key = re.search(r'<code class="api-key">(kato_[^<]+)</code>', resp.get_data(as_text=True)).group(1)
    assert key not in admin.get("/admin/keys").get_data(as_text=True)  # shown once
    second = admin.post("/admin/keys", data={"csrf_token": token, "name": "writer"})
    writer = re.search(r'<code class="api-key">(kato_[^<]+)</code>', second.get_data(as_text=True)).group(1)
    api = app.test_client()
    headers = {"Authorization": f"Bearer {writer}"}
    sid = api.post("/sessions", json={"node_id": "acme-7"}, headers=headers).get_json()["session_id"]
    assert api.post(f"/sessions/{sid}/clear-all", headers=headers,
                    environ_base={"REMOTE_ADDR": "10.9.8.7"}).status_code == 200
    with app.extensions["kato"].db.engine.connect() as conn:
        key_id = conn.execute(text("SELECT id FROM api_keys WHERE name = 'loader'")).scalar_one()
    assert admin.post(f"/admin/keys/{key_id}/revoke", data={"csrf_token": token}).status_code == 302
    rows = audit_rows(app)
    actions = [r["action"] for r in rows]
    assert actions == ["admin_login", "setting_changed", "key_created", "key_created", "clear_all", "key_revoked"]
    setting = rows[1]
    assert (setting["target"], setting["detail"]) == ("recall_threshold", {"old": 0.1, "new": 0.4})
    clear = rows[4]
    assert clear["target"] == "acme-7" and clear["address"] == "10.9.8.7"
    assert clear["actor"] == "key " + writer[:13] + "…"
    assert rows[2]["detail"] == {"node_prefix": "acme-", "read_only": True}
    # The audit page lists and filters them.
    page = admin.get("/admin/audit?action=clear_all").get_data(as_text=True)
    assert "acme-7" in page and "10.9.8.7" in page and "setting_changed" in page  # (the filter's options)
    assert page.count("<tr>") == 2  # header + one record
    assert admin.get("/admin/audit?q=recall_threshold").get_data(as_text=True).count("<tr>") == 2
    assert admin.get("/admin/audit?hours=abc").status_code == 400
    assert admin.get("/admin/audit?page=99999999999999999999999").status_code == 200


def test_audit_retention(apps):
    app = apps(audit_retention_days=1)
    kato = app.extensions["kato"]
    client = app.test_client()
    login(client)
    with kato.db.engine.begin() as conn:
        conn.execute(text("UPDATE audit_log SET at = at - 2 * 86400"))
    login(app.test_client(), "wrong")
    page = client.get("/admin/audit").get_data(as_text=True)
    assert "kept 1 days" in page
    assert [r["outcome"] for r in audit_rows(app)] == ["failed"]


def test_imports_are_audited(apps, tmp_path):
    from kato_web.services import transfer
    app = apps()
    kato = app.extensions["kato"]
    client = app.test_client()
    sid = client.post("/sessions", json={"node_id": "imp"}).get_json()["session_id"]
    for event in (["a"], ["b"]):
        client.post(f"/sessions/{sid}/observe", json={"strings": event})
    client.post(f"/sessions/{sid}/learn")
    path = tmp_path / "imp.jsonl"
    with open(path, "w", encoding="utf-8") as out:
        transfer.export_node(kato.db, "imp_kato", out)
    transfer.import_file(kato.db, str(path), kb_id="copy_kato")
    [row] = [r for r in audit_rows(app) if r["action"] == "import"]
    assert (row["target"], row["actor"], row["detail"]["patterns"]) == ("copy_kato", "command line", 1)


def test_rate_limit_counters_lose_no_hit_under_concurrency(apps):
    # Every worker counts in the same rows: hits from many threads at once all count
    # (one atomic upsert each, no read-modify-write).
    from concurrent.futures import ThreadPoolExecutor

    from kato_web.store.limits_storage import SqlStorage
    app = apps()
    storage = SqlStorage("kato-sql://", database=app.extensions["kato"].db)
    with ThreadPoolExecutor(max_workers=4) as pool:
        results = list(pool.map(lambda _: storage.incr("login/10.0.0.9", 60), range(100)))
    assert sorted(results) == list(range(1, 101))
    assert storage.get("login/10.0.0.9") == 100
    assert 0 < storage.get_expiry("login/10.0.0.9") - __import__("time").time() <= 60
    storage.clear("login/10.0.0.9")
    assert storage.get("login/10.0.0.9") == 0
