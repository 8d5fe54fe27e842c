"""/docs (Swagger UI) and /redoc render the API document in headless Chromium, offline.

Every request the pages make is recorded: every script, style sheet, font and data request must
go to kato-web itself (no CDN, no web fonts), and the operations of the document must appear on
the page. The one exception is ReDoc's attribution logo, an image on its maker's CDN: the
page's Content-Security-Policy refuses it, the logo hides itself, and nothing else depends on it.
"""
from __future__ import annotations

import os

import pytest

from tests.e2e.test_admin_browser import SHOTS
from tests.support import Gunicorn

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def server(database_url):
    srv = Gunicorn(database_url, workers=1, threads=2).wait_ready()
    yield srv
    srv.stop()


def _open(browser, url: str):
    context = browser.new_context(viewport={"width": 1280, "height": 900}, offline=False)
    page = context.new_page()
    page.set_default_timeout(20_000)
    requested: list[tuple[str, str]] = []
    errors: list[str] = []
    page.on("request", lambda r: requested.append((r.url, r.resource_type)))
    page.on("pageerror", lambda e: errors.append(str(e)))
    # Anything not served by kato-web is refused, as it would be on a machine without network.
    page.route("**/*", lambda route: route.continue_() if route.request.url.startswith(url.rsplit("/", 1)[0])
               else route.abort())
    response = page.goto(url)
    assert "default-src 'self'" in response.headers["content-security-policy"]
    return context, page, requested, errors


def test_swagger_ui_renders_offline(server, browser):
    context, page, requested, errors = _open(browser, server.url + "/docs")
    try:
        page.wait_for_selector('[data-path="/sessions/{session_id}/observe"]')
        page.wait_for_selector("text=Observe one event")
        assert page.locator(".opblock").count() >= 30
        SHOTS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(SHOTS / "api-docs.png"))
    finally:
        context.close()
    assert not errors, errors
    foreign = [u for u, _kind in requested if not u.startswith(server.url)]
    assert not foreign, foreign


def test_redoc_renders_offline(server, browser):
    context, page, requested, errors = _open(browser, server.url + "/redoc")
    try:
        page.wait_for_selector("h1:has-text('kato-web')")
        page.wait_for_selector("text=Create, inspect, configure, extend and delete sessions")
        assert "/sessions/{session_id}/extend" in page.content()
    finally:
        context.close()
    assert not errors, errors
    foreign = [(u, kind) for u, kind in requested if not u.startswith(server.url)]
    assert all(kind == "image" and "logo" in u for u, kind in foreign), foreign
