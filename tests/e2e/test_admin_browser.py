"""The admin UI in real headless Chromium against a real gunicorn with two workers.

Debian's chromium (the Makefile installs it) is driven by playwright; playwright never
downloads a browser of its own. Each page is photographed; with KATO_UPDATE_SCREENSHOTS=1
the pictures replace those under docs/screenshots/ (shown in the README), otherwise they go
to a temporary folder so a test run leaves the work tree clean.
"""
from __future__ import annotations

import os
import re
import tempfile
import time
from pathlib import Path

import pytest
import requests
from sqlalchemy import create_engine

from kato_web.engine.pattern import pattern_hash
from tests.support import ROOT, Gunicorn, wipe

pytestmark = pytest.mark.e2e

PASSWORD = "e2e admin passphrase"
SHOTS = (ROOT / "docs" / "screenshots" if os.environ.get("KATO_UPDATE_SCREENSHOTS") == "1"
         else Path(tempfile.mkdtemp(prefix="kato-screenshots-")))
NODE = "e2e-admin"
KB_ID = "e2e_admin_kato"
# Against the STM [a] [b] these score similarity 0.8, 0.4 and 0.0.
CLOSE = [["a"], ["b"], ["c"]]
FAR = [["a"], ["x"], ["y"]]
NONE = [["q"], ["r"], ["s"]]


@pytest.fixture(scope="module")
def server(database_url):
    engine = create_engine(database_url)
    wipe(engine)  # no settings or patterns left by other tests
    # No KATO_SECRET_KEY: both workers must share the random cookie key kept in the database.
    # Every test here signs in from 127.0.0.1 within a minute or two; the sign-in limit has tests
    # of its own (tests/integration/test_admin_security.py), so it is raised here.
    srv = Gunicorn(database_url, workers=2, threads=2,
                   env={"KATO_ADMIN_PASSWORD": PASSWORD, "KATO_ADMIN_LOGIN_LIMIT": "1000 per minute",
                        "KATO_ADMIN_LOGIN_GLOBAL_LIMIT": "1000 per minute"}).wait_ready()
    yield srv
    srv.stop()
    wipe(engine)
    engine.dispose()


@pytest.fixture(scope="module")
def learned(server):
    """Learn CLOSE, FAR and NONE through the HTTP API; return a session whose STM is [a z] [b]."""
    http = requests.Session()
    sid = http.post(server.url + "/sessions", json={"node_id": NODE}).json()["session_id"]
    for events, emotive in ((CLOSE, 0.9), (FAR, 0.2), (NONE, 0.5), (CLOSE, 0.7)):
        for event in events:
            resp = http.post(f"{server.url}/sessions/{sid}/observe",
                             json={"strings": event, "emotives": {"joy": emotive}, "metadata": {"source": "e2e"}})
            assert resp.status_code == 200, resp.text
        assert http.post(f"{server.url}/sessions/{sid}/learn").json()["status"] == "learned"
    for event in (["a", "z"], ["b"]):  # z: an extra symbol for the explanation view
        http.post(f"{server.url}/sessions/{sid}/observe", json={"strings": event})
    return sid


@pytest.fixture
def page(browser):
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    tab = context.new_page()
    tab.set_default_timeout(15_000)
    yield tab
    context.close()


def shot(page, name: str) -> None:
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / f"{name}.png"), full_page=True)


def sign_in(page, server) -> None:
    page.goto(server.url + "/admin/")
    page.get_by_label("Admin password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(re.compile(r"/admin/settings$"))


def save_settings(page, server, **values) -> None:
    page.goto(server.url + "/admin/settings")
    for key, value in values.items():
        page.locator(f"#{key}").fill(str(value))
    page.get_by_role("button", name="Save settings").click()


def new_session_with_stm(server, *events) -> str:
    sid = requests.post(server.url + "/sessions", json={"node_id": NODE}).json()["session_id"]
    for event in events:
        requests.post(f"{server.url}/sessions/{sid}/observe", json={"strings": event})
    return sid


def effective(server, sid: str) -> dict:
    return requests.get(f"{server.url}/sessions/{sid}/config").json()["config"]


def prediction_names(server, sid: str) -> list[str]:
    body = requests.get(f"{server.url}/sessions/{sid}/predictions").json()
    assert body["count"] == len(body["predictions"])
    return [p["name"] for p in body["predictions"]]


def test_login_page_refuses_a_wrong_password(page, server):
    """Show the login form, refuse a wrong password, then let the right one in."""
    page.goto(server.url + "/admin/settings")
    page.wait_for_url(re.compile(r"/admin/login\?next="))
    shot(page, "login")
    page.get_by_label("Admin password").fill("not it")
    page.get_by_role("button", name="Sign in").click()
    assert page.locator("#password-error").inner_text() == "Wrong password."
    page.get_by_label("Admin password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    # Back on the page first asked for, which the other worker may well have served.
    page.wait_for_url(re.compile(r"/admin/settings$"))
    assert page.get_by_role("heading", name="Session settings").is_visible()


def test_settings_change_reaches_new_sessions_and_their_predictions(page, server, learned):
    """Change max_predictions and recall_threshold and watch new sessions obey them."""
    before = new_session_with_stm(server, ["a"], ["b"])
    assert sorted(prediction_names(server, before)) == sorted([pattern_hash(CLOSE), pattern_hash(FAR)])
    sign_in(page, server)

    save_settings(page, server, max_predictions=1)
    assert "Saved: max_predictions." in page.locator(".notice").inner_text()
    capped = new_session_with_stm(server, ["a"], ["b"])
    assert effective(server, capped)["max_predictions"] == 1
    assert prediction_names(server, capped) == [pattern_hash(CLOSE)]  # truncated to the best one

    save_settings(page, server, max_predictions=100, recall_threshold=0.5)
    strict = new_session_with_stm(server, ["a"], ["b"])
    config = effective(server, strict)
    assert config["recall_threshold"] == 0.5 and config["max_predictions"] == 100
    # FAR's similarity is 0.4 < 0.5, so only CLOSE is left although nothing caps the count.
    assert prediction_names(server, strict) == [pattern_hash(CLOSE)]
    # The session opened before the change has no override, so it follows the new default too.
    assert effective(server, before)["recall_threshold"] == 0.5
    assert page.locator("#recall_threshold").input_value() == "0.5"
    shot(page, "settings")


def test_bad_value_shows_an_error_and_changes_nothing(page, server):
    """Show the API's message beside the field and keep every stored value."""
    sign_in(page, server)
    before = effective(server, new_session_with_stm(server))
    save_settings(page, server, recall_threshold="1.5", max_predictions=7)
    error = page.locator("#recall_threshold-error")
    assert error.inner_text() == "Must be a number between 0.0 and 1.0"
    assert page.locator("#recall_threshold").get_attribute("aria-invalid") == "true"
    assert "Nothing was saved." in page.get_by_role("alert").inner_text()
    shot(page, "settings-error")
    # max_predictions=7 was valid, but nothing of a rejected form is stored.
    assert effective(server, new_session_with_stm(server)) == before


def test_form_post_without_csrf_token_is_refused(server):
    """Answer 400 to a signed-in POST without the token, and change nothing."""
    http = requests.Session()
    token = re.search(r'name="csrf_token" value="([^"]+)"', http.get(server.url + "/admin/login").text).group(1)
    resp = http.post(server.url + "/admin/login", data={"password": PASSWORD, "csrf_token": token})
    assert resp.url.endswith("/admin/settings") and resp.status_code == 200  # signed in
    before = effective(server, new_session_with_stm(server))
    refused = http.post(server.url + "/admin/settings", data={"max_predictions": "3"}, allow_redirects=False)
    assert refused.status_code == 400
    assert effective(server, new_session_with_stm(server)) == before
    # The same request with the page's token goes through: the token was all that was missing.
    token = re.search(r'name="csrf_token" value="([^"]+)"', http.get(server.url + "/admin/settings").text).group(1)
    accepted = http.post(server.url + "/admin/settings", data={"max_predictions": "3", "csrf_token": token},
                         allow_redirects=False)
    assert accepted.status_code == 302
    assert effective(server, new_session_with_stm(server))["max_predictions"] == 3
    restore = http.post(server.url + "/admin/settings", data={"max_predictions": "100", "csrf_token": token},
                        allow_redirects=False)
    assert restore.status_code == 302


def test_preview_table_shows_numbers_for_a_loaded_node(page, server, learned):
    """Run the threshold preview on the learned node and read its table and chart."""
    sign_in(page, server)
    page.get_by_role("navigation", name="Admin sections").get_by_role("link", name="Threshold preview").click()
    page.get_by_label("Node").select_option(KB_ID)
    page.get_by_label("STM as JSON").fill('[["a"], ["b"]]')
    page.get_by_label("Selected recall_threshold").fill("0.4")
    page.get_by_label("max_predictions").fill("10")
    with page.expect_navigation():  # count() does not wait: let the result page load first
        page.get_by_role("button", name="Run preview").click()
    rows = page.locator("#threshold-table tbody tr")
    assert rows.count() == 11
    counts = {rows.nth(i).locator("th").inner_text(): int(rows.nth(i).locator("td").first.inner_text())
              for i in range(11)}
    assert counts["0.0"] == 3 and counts["0.4"] == 2 and counts["0.5"] == 1 and counts["1.0"] == 0
    times = [float(rows.nth(i).locator("td").nth(2).inner_text()) for i in range(11)]
    assert all(t >= 0 for t in times)
    assert page.locator("figure.chart svg rect.bar").count() == 11
    assert page.locator("#top-table tbody tr").count() == 2
    shot(page, "preview")


def test_knowledge_browser(page, server, learned):
    """Browse nodes, search a node's patterns and open one pattern."""
    sign_in(page, server)
    page.get_by_role("navigation", name="Admin sections").get_by_role("link", name="Knowledge").click()
    row = page.locator("#nodes-table tbody tr", has_text=KB_ID)
    assert row.locator("td").first.inner_text() == "3"
    shot(page, "nodes")
    row.get_by_role("link", name=KB_ID).click()
    assert page.locator("#pattern-count").inner_text().startswith("3 patterns")
    shot(page, "patterns")
    page.get_by_label("Contains symbol").fill("x")
    with page.expect_navigation():  # count() does not wait: let the search page load first
        page.get_by_role("button", name="Search").click()
    assert page.locator("#patterns-table tbody tr").count() == 1
    page.get_by_label("Contains symbol").fill("")
    page.get_by_role("button", name="Search").click()
    page.locator("#patterns-table tbody tr").first.get_by_role("link").click()
    assert page.locator("#pattern-name").inner_text() == "PTRN|" + pattern_hash(CLOSE)
    assert page.locator("#pattern-frequency").inner_text() == "2"
    shot(page, "pattern")


def test_kato310_state_in_the_admin_pages(page, server):
    """kato-3.10.md: finalized per node, affinity per symbol, anomalies per prediction."""
    http = requests.Session()
    teacher = http.post(server.url + "/sessions", json={"node_id": "b310"}).json()["session_id"]
    http.post(f"{server.url}/sessions/{teacher}/observe",
              json={"strings": ["apple", "banana"], "emotives": {"joy": 0.5}})
    name = http.post(f"{server.url}/sessions/{teacher}/learn").json()["pattern_name"]
    http.post(f"{server.url}/sessions/{teacher}/finalize-training")
    reader = http.post(server.url + "/sessions", json={"node_id": "b310",
                                                       "config": {"fuzzy_token_threshold": 0.85}}).json()["session_id"]
    http.post(f"{server.url}/sessions/{reader}/observe", json={"strings": ["apple", "bannana"]})
    sign_in(page, server)
    page.goto(server.url + "/admin/nodes")
    row = page.locator("#nodes-table tbody tr", has_text="b310_kato")
    assert row.locator("td.finalized").inner_text() == "yes"
    page.goto(f"{server.url}/admin/nodes/b310_kato/patterns/{name}")
    banana = page.locator("#symbols-table tbody tr", has_text="banana")
    assert "joy" in banana.locator("td.affinity").inner_text() and "0.5" in banana.locator("td.affinity").inner_text()
    page.goto(f"{server.url}/admin/sessions/{reader}")
    anomaly = page.locator("article.prediction").first.locator("tr.anomalies")
    assert "bannana" in anomaly.inner_text() and "banana" in anomaly.inner_text()


def test_sessions_pages_explain_predictions(page, server, learned):
    """List live sessions and open one to see its STM and explained predictions."""
    sign_in(page, server)
    with page.expect_navigation():  # count() does not wait: let the sessions page load first
        page.get_by_role("navigation", name="Admin sections").get_by_role("link", name="Sessions").click()
    assert page.locator("#sessions-table tbody tr").count() >= 1
    shot(page, "sessions")
    page.goto(f"{server.url}/admin/sessions/{learned}")
    assert page.locator("#stm .sym").all_inner_texts() == ["a", "z", "b"]
    assert page.locator("article.prediction").count() >= 1
    first = page.locator("article.prediction").first
    assert first.locator(".events .sym.matched").count() == 2
    # CLOSE against [a z] [b]: similarity 2*2/(3+3), z is extra and [c] is still to come.
    assert first.locator("dl.metrics dt").first.text_content() == "similarity"
    assert first.locator("dl.metrics dd").first.inner_text() == "0.6667"
    assert first.locator("tr", has_text="Extras").locator(".sym").all_inner_texts() == ["z"]
    assert first.locator("tr", has_text="Future").locator(".sym").all_inner_texts() == ["c"]
    shot(page, "session")


def test_pages_fit_a_phone_screen(browser, server, learned):
    """Lay every page out without sideways scrolling at 390 px."""
    context = browser.new_context(viewport={"width": 390, "height": 844})
    page = context.new_page()
    try:
        sign_in(page, server)
        for path in ("/admin/settings", "/admin/nodes", f"/admin/sessions/{learned}", "/admin/evaluate",
                     f"/admin/preview?run=1&kb_id={KB_ID}&stm=%5B%5B%22a%22%5D%2C%5B%22b%22%5D%5D"):
            page.goto(server.url + path)
            width = page.evaluate("document.documentElement.scrollWidth")
            assert width <= 390, f"{path} is {width}px wide"
        page.goto(server.url + "/admin/settings")
        shot(page, "settings-phone")
    finally:
        context.close()


def test_sign_out(page, server):
    """Sign out with the header button and be asked to sign in again."""
    sign_in(page, server)
    page.get_by_role("button", name="Sign out").click()
    page.wait_for_url(re.compile(r"/admin/login$"))
    assert "Signed out." in page.locator(".notice").inner_text()
    page.goto(server.url + "/admin/settings")
    page.wait_for_url(re.compile(r"/admin/login\?next="))


EVAL_NODE = "e2e-eval"
EVAL_KB = "e2e_eval_kato"


def test_evaluate_runs_in_the_background_and_saves_its_suggestion(page, server):
    """Start an evaluation, watch its progress, read the result table, save the suggested value."""
    http = requests.Session()
    sid = http.post(server.url + "/sessions", json={"node_id": EVAL_NODE}).json()["session_id"]
    ring = "abcdefgh"
    for length in (4, 5, 6, 7):
        for start in range(len(ring)):
            for i in range(length):
                http.post(f"{server.url}/sessions/{sid}/observe", json={"strings": [ring[(start + i) % len(ring)]]})
            assert http.post(f"{server.url}/sessions/{sid}/learn").json()["status"] == "learned"
    sign_in(page, server)
    page.goto(server.url + "/admin/preview")
    page.get_by_role("link", name="evaluate accuracy on held-out data").click()
    page.get_by_label("Node", exact=True).select_option(EVAL_KB)
    page.get_by_label("How many").fill("8")
    with page.expect_navigation():
        page.get_by_role("button", name="Start evaluation").click()
    # The job's process takes a moment to start, so the first page shows it under way.
    assert page.locator("#job-progress").is_visible()
    assert page.locator("#job-status").inner_text() in ("queued", "running")
    assert page.get_by_role("button", name="Cancel evaluation").is_visible()
    shot(page, "evaluate-progress")
    # The page reloads itself every second until the result is there.
    page.wait_for_selector("#evaluation-table", timeout=90_000)
    assert page.locator("#job-status").inner_text() == "done"
    rows = page.locator("#evaluation-table tbody tr")
    assert rows.count() == 10  # θ 0.0 … 0.9 (the current 0.1 is on that grid)
    assert page.locator("#evaluation-table tbody tr.current").count() == 1
    assert page.locator("#evaluation-table td.suggested").count() == 1
    heading = page.locator("#suggestion h3").inner_text()
    match = re.fullmatch(r"Suggested: recall_threshold ([0-9.]+), max_predictions (\d+)", heading)
    assert match, heading
    shot(page, "evaluate-result")
    with page.expect_navigation():
        page.get_by_role("button", name="Save suggested value").click()
    page.wait_for_url(re.compile(r"/admin/settings$"))
    assert "Saved the suggested recall_threshold" in page.locator(".notice").inner_text()
    config = effective(server, new_session_with_stm(server))
    assert config["recall_threshold"] == float(match.group(1))
    assert config["max_predictions"] == int(match.group(2))
    save_settings(page, server, recall_threshold=0.1, max_predictions=100)  # as the other tests expect


def _past_key_caches() -> None:
    """Wait until every worker's cached view of the keys has expired (web/auth.py): a worker that
    answered within the last KEY_CACHE_SECONDS may still hold the state before the change."""
    from kato_web.web.auth import KEY_CACHE_SECONDS

    time.sleep(KEY_CACHE_SECONDS + 0.5)


def test_keys_made_and_revoked_on_the_page_rule_the_api_and_are_audited(page, server):
    """Make a prefix-limited read-only key, use it, revoke it, and find both in the audit log.

    Last in this file: while the key lives, every API request needs one (README "Security")."""
    sign_in(page, server)
    page.goto(server.url + "/admin/keys")
    page.get_by_label("Name (who uses it)").fill("browser dashboard")
    page.get_by_label("Only node ids starting with (empty: every node)").fill("e2e-")
    page.get_by_label("Read-only (GET requests)").check()
    page.get_by_role("button", name="Make a key").click()
    key = page.locator("#new-key code.api-key").inner_text().strip()
    assert key.startswith("kato_")
    shot(page, "keys")
    row = page.locator("#keys-table tbody tr").first.inner_text()
    assert "browser dashboard" in row and "read-only" in row and key not in row

    count = server.url + "/sessions/count"
    own = server.url + f"/percept-data?node_id={NODE}"
    # Every worker demands a key within seconds; this one reads its own nodes only.
    _past_key_caches()
    assert all(requests.get(count, headers={"Connection": "close"}).status_code == 401 for _ in range(4))
    assert requests.get(own, headers={"X-API-Key": key}).status_code == 200
    assert requests.get(count, headers={"X-API-Key": key}).status_code == 403
    assert requests.post(server.url + "/sessions", json={"node_id": "e2e-x"},
                         headers={"X-API-Key": key}).status_code == 403

    page.get_by_role("button", name="Revoke").first.click()
    assert "Revoked" in page.locator(".notice").inner_text()
    # No live key left: the API is open again in every worker.
    _past_key_caches()
    assert all(requests.get(count, headers={"Connection": "close"}).status_code == 200 for _ in range(4))

    page.goto(server.url + "/admin/audit")
    text = page.locator("main").inner_text()
    assert "key_created" in text and "key_revoked" in text and "browser dashboard" in text
    shot(page, "audit")
