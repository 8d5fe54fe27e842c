"""Every admin page through Flask's test client: login, CSRF, disabled mode, rendering."""
from __future__ import annotations

import re

import pytest

from kato_web import create_app
from kato_web.config import Config
from kato_web.engine.pattern import pattern_hash
from kato_web.services.sessions import kb_id_for
from kato_web.store import repositories as repo

PASSWORD = "correct horse battery"
TOKEN = re.compile(r'name="csrf_token" value="([^"]+)"')
PAGES = ("/admin/", "/admin/settings", "/admin/preview", "/admin/nodes", "/admin/sessions",
         "/admin/nodes/n_kato/patterns", "/admin/nodes/n_kato/patterns/abc", "/admin/sessions/s-1")


def csrf(client, path="/admin/login") -> str:
    match = TOKEN.search(client.get(path).get_data(as_text=True))
    assert match, f"no CSRF field on {path}"
    return match.group(1)


def login(client, password=PASSWORD):
    return client.post("/admin/login", data={"password": password, "csrf_token": csrf(client)})


def stored_settings(kato) -> dict:
    with kato.db.transaction(write=False) as conn:
        return repo.load_settings(conn)


@pytest.fixture
def admin(kato, client):
    """A client of an app with the admin area enabled, not yet signed in."""
    kato.config.admin_password = PASSWORD
    return client


@pytest.fixture
def signed_in(admin):
    assert login(admin).status_code == 302
    return admin


@pytest.fixture
def knowledge(client):
    """Node 'n' with three learned patterns and a session whose STM is [a] [b]."""
    sid = client.post("/sessions", json={"node_id": "n"}).get_json()["session_id"]
    for events in ([["a"], ["b"], ["c"]], [["a"], ["x"], ["y"]], [["q"], ["<script>"], ["s"]]):
        for event in events:
            client.post(f"/sessions/{sid}/observe", json={"strings": event, "emotives": {"joy": 0.5},
                                                          "metadata": {"who": "tester"}})
        assert client.post(f"/sessions/{sid}/learn").status_code == 200
    for event in (["a"], ["b"]):
        client.post(f"/sessions/{sid}/observe", json={"strings": event})
    return {"sid": sid, "kb_id": kb_id_for("n", "kato")}


# ---------------------------------------------------------------- disabled and login

@pytest.mark.parametrize("path", PAGES + ("/admin/login",))
def test_disabled_without_password_explains_how_to_enable(client, path):
    """Answer 404 with instructions on every admin page when no password is set."""
    resp = client.get(path)
    assert resp.status_code == 404
    assert "KATO_ADMIN_PASSWORD" in resp.get_data(as_text=True)
    assert resp.mimetype == "text/html"


@pytest.mark.parametrize("path", ("/admin/login", "/admin/settings", "/admin/logout"))
def test_disabled_admin_accepts_no_form(client, kato, path):
    """Refuse every form POST when no password is set, and store nothing."""
    resp = client.post(path, data={"password": "", "recall_threshold": "0.9"})
    assert resp.status_code == 404 and "KATO_ADMIN_PASSWORD" in resp.get_data(as_text=True)
    assert stored_settings(kato) == {}


@pytest.mark.parametrize("path", PAGES)
def test_pages_require_login(admin, path):
    """Redirect every page to the login form, remembering where to return."""
    resp = admin.get(path)
    assert resp.status_code == 302
    assert resp.headers["Location"] == "/admin/login?next=" + path


def test_login_returns_to_the_full_url_with_its_query(admin):
    """Keep a page's query string across the login detour."""
    target = "/admin/preview?run=1&kb_id=x"
    location = admin.get(target).headers["Location"]
    assert location == "/admin/login?next=/admin/preview?run%3D1%26kb_id%3Dx"
    resp = admin.post("/admin/login", data={"password": PASSWORD, "csrf_token": csrf(admin),
                                            "next": target})
    assert resp.headers["Location"] == target


def test_login_with_the_right_password_returns_to_next(admin):
    """Sign in and land on the page first asked for."""
    token = csrf(admin)
    resp = admin.post("/admin/login", data={"password": PASSWORD, "csrf_token": token,
                                            "next": "/admin/nodes"})
    assert resp.status_code == 302 and resp.headers["Location"] == "/admin/nodes"
    assert admin.get("/admin/nodes").status_code == 200


def test_login_with_a_wrong_password_is_refused(admin):
    """Answer 401 with a message and stay signed out."""
    resp = login(admin, password="wrong")
    assert resp.status_code == 401 and "Wrong password." in resp.get_data(as_text=True)
    assert admin.get("/admin/settings").status_code == 302


def test_login_without_csrf_token_is_refused(admin):
    """Reject a login POST that lacks the CSRF token, even with the right password."""
    admin.get("/admin/login")
    resp = admin.post("/admin/login", data={"password": PASSWORD})
    assert resp.status_code == 400
    assert admin.get("/admin/settings").status_code == 302


def test_login_refuses_redirects_off_the_admin_area(admin, app):
    """Ignore a `next` that leaves the admin area (no open redirect)."""
    for target in ("https://evil.example/", "//evil.example/admin", "/sessions"):
        browser = app.test_client()  # signed out each time
        token = csrf(browser)
        resp = browser.post("/admin/login", data={"password": PASSWORD, "csrf_token": token, "next": target})
        assert resp.headers["Location"] == "/admin/settings", target


def test_a_new_password_signs_everyone_out(signed_in, kato):
    """Invalidate existing logins when the admin password changes."""
    assert signed_in.get("/admin/settings").status_code == 200
    kato.config.admin_password = PASSWORD + "!"
    assert signed_in.get("/admin/settings").status_code == 302


def test_workers_without_secret_key_share_the_login(database_url):
    """Accept a login made by one app instance in another, as gunicorn workers must."""
    def worker(password):
        return create_app(Config(database_url=database_url, testing=True, admin_password=password))

    first, second, other = worker(PASSWORD), worker(PASSWORD), worker("another password")
    try:
        browser = first.test_client()
        assert login(browser).status_code == 302
        cookie = browser.get_cookie("session").value
        # Without KATO_SECRET_KEY each process would otherwise sign with a random key of its own.
        for app, expected in ((second, 200), (other, 302)):
            client = app.test_client()
            client.set_cookie("session", cookie)
            assert client.get("/admin/settings").status_code == expected
    finally:
        for app in (first, second, other):
            app.extensions["kato"].db.dispose()


def test_logout_needs_csrf_and_ends_the_login(signed_in):
    """Keep the login on a token-less logout POST; end it with the token."""
    assert signed_in.post("/admin/logout").status_code == 400
    assert signed_in.get("/admin/settings").status_code == 200
    resp = signed_in.post("/admin/logout", data={"csrf_token": csrf(signed_in, "/admin/settings")})
    assert resp.status_code == 302 and resp.headers["Location"] == "/admin/login"
    assert signed_in.get("/admin/settings").status_code == 302


def test_login_cookie_is_httponly_and_samesite(admin):
    """Send the session cookie HttpOnly and SameSite=Strict."""
    resp = login(admin)
    cookie = resp.headers["Set-Cookie"]
    assert "HttpOnly" in cookie and "SameSite=Strict" in cookie


# ---------------------------------------------------------------- settings

def test_settings_page_lists_every_setting_primary_first(signed_in):
    """Show all 24 settings, recall_threshold and max_predictions first, with ranges."""
    html = signed_in.get("/admin/settings").get_data(as_text=True)
    labels = re.findall(r'<label for="([a-z_]+)">', html)
    # 22 + kato-3.10.md §1.3's fuzzy_token_threshold and affinity_emotive
    assert labels[:2] == ["recall_threshold", "max_predictions"] and len(labels) == 24
    assert {"fuzzy_token_threshold", "affinity_emotive"} <= set(labels)
    assert "Allowed: 0.0 – 1.0" in html and "Allowed: 1 – 10000" in html


def test_settings_save_applies_to_new_sessions(signed_in, kato, client):
    """Store a valid form and apply it to a new session's configuration."""
    token = csrf(signed_in, "/admin/settings")
    resp = signed_in.post("/admin/settings", data={"csrf_token": token, "recall_threshold": "0.6",
                                                   "max_predictions": "4"})
    assert resp.status_code == 302
    assert stored_settings(kato) == {"recall_threshold": 0.6, "max_predictions": 4}
    sid = client.post("/sessions", json={"node_id": "fresh"}).get_json()["session_id"]
    config = client.get(f"/sessions/{sid}/config").get_json()["config"]
    assert config["recall_threshold"] == 0.6 and config["max_predictions"] == 4
    html = signed_in.get("/admin/settings").get_data(as_text=True)
    assert "Saved: recall_threshold, max_predictions." in html and 'value="0.6"' in html


def test_settings_bad_value_shows_error_and_saves_nothing(signed_in, kato):
    """Re-render with the error beside the field and leave the settings table untouched."""
    token = csrf(signed_in, "/admin/settings")
    resp = signed_in.post("/admin/settings", data={"csrf_token": token, "recall_threshold": "1.5",
                                                   "max_predictions": "4"})
    html = resp.get_data(as_text=True)
    assert resp.status_code == 422
    assert re.search(r'id="recall_threshold-error">Must be a number between 0.0 and 1.0<', html)
    assert 'value="1.5"' in html  # what was typed stays in the field
    assert "Nothing was saved." in html
    assert stored_settings(kato) == {}


@pytest.mark.parametrize("token", [None, "", "forged-token"])
def test_settings_post_without_valid_csrf_is_refused(signed_in, kato, token):
    """Answer 400 and change nothing when the CSRF token is missing or wrong."""
    data = {"recall_threshold": "0.9"}
    if token is not None:
        data["csrf_token"] = token
    resp = signed_in.post("/admin/settings", data=data)
    assert resp.status_code == 400 and "nothing was changed" in resp.get_data(as_text=True)
    assert stored_settings(kato) == {}


def test_csrf_token_of_another_browser_is_refused(signed_in, app, kato):
    """Accept only the token of the same browser session."""
    other = app.test_client()
    assert login(other).status_code == 302
    foreign = csrf(other, "/admin/settings")
    mine = csrf(signed_in, "/admin/settings")
    assert foreign != mine
    assert signed_in.post("/admin/settings", data={"csrf_token": foreign, "max_predictions": "3"}).status_code == 400
    assert stored_settings(kato) == {}


# ---------------------------------------------------------------- preview

def test_preview_shows_a_row_per_threshold(signed_in, knowledge):
    """Show counts and timings for 0.0 … 1.0 and the selected threshold's predictions."""
    resp = signed_in.get("/admin/preview", query_string={
        "run": "1", "kb_id": knowledge["kb_id"], "stm": '[["a"], ["b"]]', "threshold": "0.5",
        "max_predictions": "10"})
    html = resp.get_data(as_text=True)
    assert resp.status_code == 200
    table = html.split('id="threshold-table"')[1].split("</table>")[0]
    rows = re.findall(r'<th scope="row">([0-9.]+)</th>\s*<td class="num">(\d+)</td>', table)
    assert rows[0] == ("0.0", "3") and rows[5] == ("0.5", "1") and len(rows) == 11
    assert html.count('<rect class="bar') == 11
    assert pattern_hash([["a"], ["b"], ["c"]])[:12] in html.split('id="top-table"')[1]


def test_preview_from_a_session_id(signed_in, knowledge):
    """Take the STM from a live session."""
    html = signed_in.get("/admin/preview", query_string={"run": "1", "session_id": knowledge["sid"]}
                         ).get_data(as_text=True)
    assert "3 patterns" in html and knowledge["sid"] in html and 'id="threshold-table"' in html


def test_preview_errors_are_shown_beside_the_field(signed_in, knowledge):
    """Answer 422 with the message next to the bad field."""
    resp = signed_in.get("/admin/preview", query_string={"run": "1", "kb_id": knowledge["kb_id"],
                                                         "stm": "[oops"})
    assert resp.status_code == 422
    assert re.search(r'id="stm-error">Not valid JSON', resp.get_data(as_text=True))


def test_preview_form_alone_lists_nodes(signed_in, knowledge):
    """Offer the nodes to choose from before anything runs."""
    html = signed_in.get("/admin/preview").get_data(as_text=True)
    assert f'<option value="{knowledge["kb_id"]}"' in html and 'id="threshold-table"' not in html


# ---------------------------------------------------------------- knowledge and sessions

def test_nodes_page_lists_pattern_counts(signed_in, knowledge):
    """List each node with its number of patterns."""
    html = signed_in.get("/admin/nodes").get_data(as_text=True)
    row = html.split(f'>{knowledge["kb_id"]}</a></th>')[1].split("</tr>")[0]
    assert re.search(r'<td class="num">3</td>', row)


def test_nodes_page_shows_finalized_state_and_vectors(signed_in, client, knowledge):
    """kato-3.10.md decisions 15 and 17: each node's finalized flag and learned vector count."""
    cell = lambda html: html.split(f'>{knowledge["kb_id"]}</a></th>')[1].split("</tr>")[0]  # noqa: E731
    row = cell(signed_in.get("/admin/nodes").get_data(as_text=True))
    assert '<td class="finalized">no</td>' in row
    sid = knowledge["sid"]
    client.post(f"/sessions/{sid}/observe", json={"vectors": [[1.0, 2.0]], "strings": ["v"]})
    client.post(f"/sessions/{sid}/learn")
    client.post(f"/sessions/{sid}/finalize-training")
    row = cell(signed_in.get("/admin/nodes").get_data(as_text=True))
    assert '<td class="finalized">yes</td>' in row and re.search(r'<td class="num">1</td>\s*<td class="finalized">', row)
    client.post(f"/sessions/{sid}/clear-all")
    assert '<td class="finalized">no</td>' in cell(signed_in.get("/admin/nodes").get_data(as_text=True))


def test_knowledge_browser_shows_affinity_per_symbol(signed_in, knowledge):
    """kato-3.10.md §1.4c: a pattern's symbols and a searched symbol with their affinity sums."""
    name = pattern_hash([["a"], ["b"], ["c"]])
    html = signed_in.get(f"/admin/nodes/{knowledge['kb_id']}/patterns/PTRN|{name}").get_data(as_text=True)
    table = html.split('id="symbols-table"')[1].split("</table>")[0]
    # "a" is in two learned patterns, each learned with joy 0.5
    row_a = table.split("<code class=\"wrap-any\">a</code>")[1].split("</tr>")[0]
    assert re.findall(r'<td class="num">(\d+)</td>', row_a) == ["2", "2"]
    assert 'joy <span class="num">1</span>' in row_a or 'joy <span class="num">1.0</span>' in row_a
    found = signed_in.get(f"/admin/nodes/{knowledge['kb_id']}/patterns",
                          query_string={"symbol": "x"}).get_data(as_text=True)
    assert 'id="symbol-stats"' in found and "joy" in found.split('id="symbol-stats"')[1].split("</table>")[0]


def test_settings_page_takes_the_new_settings(signed_in, kato, client):
    """kato-3.10.md §1.3: fuzzy_token_threshold checked like the API; affinity_emotive empty = off."""
    token = csrf(signed_in, "/admin/settings")
    bad = signed_in.post("/admin/settings", data={"csrf_token": token, "fuzzy_token_threshold": "1.5"})
    assert "Must be a number between 0.0 and 1.0" in bad.get_data(as_text=True) and stored_settings(kato) == {}
    token = csrf(signed_in, "/admin/settings")
    resp = signed_in.post("/admin/settings", data={"csrf_token": token, "fuzzy_token_threshold": "0.8",
                                                   "affinity_emotive": "joy"})
    assert resp.status_code == 302
    assert stored_settings(kato) == {"fuzzy_token_threshold": 0.8, "affinity_emotive": "joy"}
    sid = client.post("/sessions", json={"node_id": "fresh"}).get_json()["session_id"]
    config = client.get(f"/sessions/{sid}/config").get_json()["config"]
    assert config["fuzzy_token_threshold"] == 0.8 and config["affinity_emotive"] == "joy"
    token = csrf(signed_in, "/admin/settings")
    signed_in.post("/admin/settings", data={"csrf_token": token, "affinity_emotive": ""})
    assert stored_settings(kato) == {"fuzzy_token_threshold": 0.8}


def test_patterns_page_searches_and_escapes(signed_in, knowledge):
    """Filter by symbol, show emotives and metadata, and escape symbols."""
    url = f"/admin/nodes/{knowledge['kb_id']}/patterns"
    html = signed_in.get(url).get_data(as_text=True)
    assert "3 patterns" in html and "tester" in html and "joy" in html
    assert "<script>" not in html and "&lt;script&gt;" in html
    found = signed_in.get(url, query_string={"symbol": "x"}).get_data(as_text=True)
    assert "1 pattern match" in found and pattern_hash([["a"], ["x"], ["y"]])[:12] in found
    assert signed_in.get("/admin/nodes/nope_kato/patterns").status_code == 404


def test_patterns_page_paginates(signed_in, client, kato):
    """Split a long list into pages with working next links."""
    sid = client.post("/sessions", json={"node_id": "many"}).get_json()["session_id"]
    for i in range(27):
        client.post(f"/sessions/{sid}/observe", json={"strings": [f"s{i}", "t"]})
        client.post(f"/sessions/{sid}/learn")
    url = f"/admin/nodes/{kb_id_for('many', 'kato')}/patterns"
    first = signed_in.get(url).get_data(as_text=True)
    assert "Page 1 of 2" in first and 'rel="next"' in first
    second = signed_in.get(url, query_string={"page": "2"}).get_data(as_text=True)
    assert second.count("<tr>") - 1 == 2  # 27 patterns, 25 per page; minus the header row


def test_pattern_detail_page(signed_in, knowledge):
    """Show a pattern's name, frequency, events and emotives; 404 for an unknown one."""
    name = pattern_hash([["a"], ["b"], ["c"]])
    html = signed_in.get(f"/admin/nodes/{knowledge['kb_id']}/patterns/PTRN|{name}").get_data(as_text=True)
    assert f"PTRN|{name}" in html and 'id="pattern-frequency">1<' in html and "Average" in html
    assert signed_in.get(f"/admin/nodes/{knowledge['kb_id']}/patterns/{'0' * 40}").status_code == 404


def test_sessions_page_and_detail(signed_in, knowledge):
    """List live sessions and explain one session's predictions."""
    html = signed_in.get("/admin/sessions").get_data(as_text=True)
    assert knowledge["sid"][:20] in html and "1 live session," in html
    detail = signed_in.get(f"/admin/sessions/{knowledge['sid']}").get_data(as_text=True)
    assert "Current predictions (2)" in detail
    assert '<span class="sym matched">a</span>' in detail and "similarity" in detail
    assert signed_in.get("/admin/sessions/session-missing").status_code == 404


# ---------------------------------------------------------------- headers and odds

def test_admin_responses_carry_protective_headers(signed_in):
    """Forbid framing, scripts and cross-origin reads of admin pages."""
    resp = signed_in.get("/admin/settings", headers={"Origin": "https://evil.example"})
    assert resp.headers["X-Frame-Options"] == "DENY"
    assert "frame-ancestors 'none'" in resp.headers["Content-Security-Policy"]
    assert resp.headers["Access-Control-Allow-Origin"] != "https://evil.example"
    assert resp.headers["Cache-Control"] == "no-store"


def test_stylesheet_is_served_locally_without_login(admin):
    """Serve the vendored CSS to anyone, from the app itself."""
    resp = admin.get("/admin/static/admin.css")
    assert resp.status_code == 200 and resp.mimetype == "text/css" and b"@media" in resp.data


def test_unknown_admin_page_is_an_html_404(signed_in):
    """Answer an unknown admin path with the admin's own 404 page."""
    resp = signed_in.get("/admin/no/such/page")
    assert resp.status_code == 404 and resp.mimetype == "text/html"


def test_api_errors_stay_json(admin):
    """Keep the API's JSON errors untouched by the admin blueprint."""
    resp = admin.get("/sessions/missing/config")
    assert resp.status_code == 404 and resp.get_json()["error"]["code"] == "SESSION_NOT_FOUND"
