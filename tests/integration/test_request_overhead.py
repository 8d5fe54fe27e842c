"""Per-request work the API skips: the admin cookie session, and the collector during big answers."""
from __future__ import annotations

import gc

from kato_web.services import predict as predict_svc


def test_api_requests_never_open_or_write_the_cookie_session(client, new_session):
    sid = new_session()
    client.set_cookie("session", "not-a-valid-signed-cookie")
    for resp in (client.get("/health"), client.get(f"/sessions/{sid}"),
                 client.post(f"/sessions/{sid}/observe", json={"strings": ["a"]})):
        assert resp.status_code == 200
        assert "Set-Cookie" not in resp.headers
        assert "Cookie" not in resp.headers.get("Vary", "")  # the session was never read


def test_the_admin_pages_still_get_their_cookie_session(app, client):
    app.extensions["kato"].config.admin_password = "pw"
    resp = client.get("/admin/login")
    assert resp.status_code == 200
    assert "session=" in resp.headers.get("Set-Cookie", "")  # the CSRF token lives there


def test_predictions_are_built_with_the_collector_paused_and_it_resumes(client, new_session, monkeypatch):
    sid = new_session()
    client.post(f"/sessions/{sid}/observe", json={"strings": ["a", "b"]})
    client.post(f"/sessions/{sid}/learn")
    client.post(f"/sessions/{sid}/observe", json={"strings": ["a", "b"]})
    states = []
    original = predict_svc.monitoring.predictions_computed
    monkeypatch.setattr(predict_svc.monitoring, "predictions_computed",
                        lambda n: states.append(gc.isenabled()) or original(n))
    resp = client.get(f"/sessions/{sid}/predictions")
    assert resp.status_code == 200 and resp.get_json()["count"] == 1
    assert states == [False]
    assert gc.isenabled()


def test_predictions_embed_the_engines_json_byte_for_byte(app, client, new_session):
    # The endpoint writes the predictions and future_potentials from the engine's JSON text;
    # the answer must be the very bytes that serialising the object answer gives (emotives,
    # matches, missing, extras with a symbol never learned, symbols that JSON escapes).
    import orjson

    sid = new_session()
    for k, events in enumerate(([["a", "b"], ["c"], ["d", "e"]], [["a"], ["c", "x"], ["y"]],
                                [["b"], ["d"], ["é", "✓"]], [["a", "b"], ["c"], ["q\"uote"]])):
        for event in events:
            client.post(f"/sessions/{sid}/observe",
                        json={"strings": event, "emotives": {"joy": 0.25 * k, "fear": -1.5} if k % 2 else {}})
        client.post(f"/sessions/{sid}/learn")
    for event in (["a", "b", "never"], ["c"], ["z\\"]):
        client.post(f"/sessions/{sid}/observe", json={"strings": event})
    body = client.get(f"/sessions/{sid}/predictions").data
    with app.app_context():
        objects = predict_svc.session_predictions(app.extensions["kato"], sid)
    assert len(objects["future_potentials"]) >= 3
    assert objects["count"] >= 3 and any(p["emotives"] for p in objects["predictions"])
    assert any(p["extras"] != [[] for _ in p["extras"]] for p in objects["predictions"])
    assert body == orjson.dumps(objects) + b"\n"


def test_large_answers_give_the_heap_back_once_they_stop(database_url):
    # heap.py: each response over KATO_TRIM_AFTER_BYTES, once sent, (re)arms a timer; one
    # malloc_trim runs when none followed for KATO_TRIM_DELAY_SECONDS. Smaller answers arm
    # nothing, and 0 bytes switches it off.
    import platform
    import time

    from kato_web import create_app
    from kato_web.web import heap

    from ..conftest import make_config, wipe

    glibc = platform.libc_ver()[0] == "glibc"
    delay = 1.0
    apps = [create_app(make_config(database_url, trim_after_bytes=after, trim_delay_seconds=delay))
            for after in (1000, 0)]
    try:
        wipe(apps[0].extensions["kato"].db.engine)
        client, unset = apps[0].test_client(), apps[1].test_client()
        sid = client.post("/sessions", json={"node_id": "heap"}).get_json()["session_id"]
        for k in range(12):  # some patterns, so the predictions answer is a few kB
            client.post(f"/sessions/{sid}/observe-sequence", json={
                "observations": [{"strings": ["a", f"x{k}"]}, {"strings": ["b"]}], "learn_at_end": True})
        client.post(f"/sessions/{sid}/observe-sequence",
                    json={"observations": [{"strings": ["a"]}, {"strings": ["b"]}]})

        def trims_after(test_client, path, requests=1, expect_one=False):
            before = heap.trims
            for _ in range(requests):
                response = test_client.get(path, buffered=True)  # buffered: closed once read
                assert response.status_code == 200
            assert heap.trims == before  # nothing while answers may still be coming
            deadline = time.monotonic() + (delay + 10 if expect_one else 0)
            while heap.trims == before and time.monotonic() < deadline:
                time.sleep(0.05)
            time.sleep(delay + 0.5)  # a (further) trim would have come by now
            return heap.trims - before, len(response.data)

        trimmed, size = trims_after(client, f"/sessions/{sid}/predictions", requests=3, expect_one=glibc)
        assert size > 1000 and trimmed == (1 if glibc else 0)  # three large answers, one trim
        assert trims_after(client, f"/sessions/{sid}")[0] == 0  # a small answer
        assert trims_after(unset, f"/sessions/{sid}/predictions")[0] == 0  # switched off
    finally:
        for app in apps:
            app.extensions["kato"].db.dispose()
