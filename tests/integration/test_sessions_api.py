"""Session API through Flask's test client on the real database (api.md §4, §5, §7.2)."""
from __future__ import annotations

import re

import pytest

from kato_web.config import SESSION_DEFAULTS
from kato_web.services.session_config import OPTIONAL_KEYS
from kato_web.services.sessions import kb_id_for

# The 22 keys every effective configuration shows (kato-3.10.md §1.3: the optional ones only once set).
BASE_KEYS = [key for key in SESSION_DEFAULTS if key not in OPTIONAL_KEYS]

SESSION_ID = re.compile(r"^session-[0-9a-f]{32}-\d{13}$")
ISO_Z = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z$")


def test_create_session_shape(client):
    # api.md §7.2 POST /sessions and §10 worked example
    resp = client.post("/sessions", json={"node_id": "alice", "ttl_seconds": 600,
                                          "metadata": {"app": "demo"},
                                          "config": {"recall_threshold": 0.3}})
    assert resp.status_code == 200
    body = resp.get_json()
    assert SESSION_ID.match(body["session_id"])
    assert body["node_id"] == "alice"
    assert ISO_Z.match(body["created_at"]) and ISO_Z.match(body["expires_at"])
    assert body["ttl_seconds"] == 600
    assert body["metadata"] == {"app": "demo"}
    assert list(body["session_config"]) == BASE_KEYS
    assert body["session_config"]["recall_threshold"] == 0.3
    assert body["session_config"]["filter_pipeline"] == []  # spec/README.md decision 3
    assert resp.headers["X-Session-ID"] == body["session_id"]
    assert resp.headers["X-Trace-ID"]


def test_create_defaults_and_echo(client):
    body = client.post("/sessions", json={"node_id": "n", "metadata": None}).get_json()
    assert body["ttl_seconds"] == 3600 and body["metadata"] == {}
    assert body["session_config"] == {k: v for k, v in SESSION_DEFAULTS.items() if k in BASE_KEYS}


@pytest.mark.parametrize("payload, loc, kind", [
    ({}, ["body", "node_id"], "missing"),
    ({"node_id": None}, ["body", "node_id"], "string_type"),
    ({"node_id": 5}, ["body", "node_id"], "string_type"),
    ({"node_id": "x", "metadata": "no"}, ["body", "metadata"], "dict_type"),
    ({"node_id": "x", "ttl_seconds": "soon"}, ["body", "ttl_seconds"], "int_parsing"),
    ({"node_id": "x", "ttl_seconds": -5}, ["body", "ttl_seconds"], "greater_than_equal"),
    ({"node_id": "x", "ttl_seconds": 2**31}, ["body", "ttl_seconds"], "less_than_equal"),
    ([1, 2], ["body"], "model_type"),
])
def test_create_session_validation(client, payload, loc, kind):
    # api.md §2.2 shape C
    resp = client.post("/sessions", json=payload)
    assert resp.status_code == 422
    items = resp.get_json()["detail"]
    assert any(i["loc"] == loc and i["type"] == kind for i in items), items
    assert all(set(i) >= {"type", "loc", "msg", "input"} for i in items)
    assert client.get("/sessions/count").get_json() == {"active_session_count": 0}


def test_create_invalid_config_silently_dropped(client):
    # api.md §5.3: one bad value rolls back every key of the request
    body = client.post("/sessions", json={"node_id": "x", "config": {
        "recall_threshold": 0.5, "max_predictions": 0}}).get_json()
    assert body["session_config"]["recall_threshold"] == 0.1
    assert body["session_config"]["max_predictions"] == 100


def test_malformed_json_and_missing_body(client):
    resp = client.post("/sessions", data="{not json", content_type="application/json")
    assert resp.status_code == 422
    assert resp.get_json()["detail"][0]["type"] == "json_invalid"
    resp = client.post("/sessions")
    assert resp.status_code == 422
    assert resp.get_json()["detail"] == [{"type": "missing", "loc": ["body"], "msg": "Field required",
                                          "input": None}]


def test_count_exists_get_delete(client, new_session):
    ids = [new_session() for _ in range(5)]
    assert client.get("/sessions/count").get_json()["active_session_count"] == 5
    assert client.get(f"/sessions/{ids[0]}/exists").get_json() == {
        "exists": True, "expired": False, "session_id": ids[0]}
    info = client.get(f"/sessions/{ids[0]}").get_json()
    assert info["session_id"] == ids[0] and 3598 <= info["ttl_seconds"] <= 3600
    for sid in ids:
        assert client.delete(f"/sessions/{sid}").get_json() == {"status": "deleted", "session_id": sid}
    assert client.get("/sessions/count").get_json()["active_session_count"] == 0
    # a second delete gets the middleware 404 (shape D)
    resp = client.delete(f"/sessions/{ids[0]}")
    assert resp.status_code == 404
    assert resp.get_json() == {"error": {"code": "SESSION_NOT_FOUND",
                                         "message": f"Session {ids[0]} not found or expired",
                                         "session_id": ids[0]}}
    assert client.get(f"/sessions/{ids[0]}/exists").get_json() == {
        "exists": False, "expired": False, "session_id": ids[0]}


def test_missing_session_shapes(client):
    # api.md §2.3: shape A only for GET /sessions/{id}, shape D elsewhere
    resp = client.get("/sessions/nope")
    assert resp.status_code == 404
    assert resp.get_json() == {"detail": "Session nope not found or expired"}
    for method, path in [("get", "/sessions/nope/config"), ("post", "/sessions/nope/config"),
                         ("post", "/sessions/nope/extend"), ("delete", "/sessions/nope")]:
        resp = getattr(client, method)(path, json={})
        assert resp.status_code == 404
        assert resp.get_json()["error"]["code"] == "SESSION_NOT_FOUND"


def test_config_get_and_update(client, new_session):
    sid = new_session()
    resp = client.post(f"/sessions/{sid}/config", json={"config": {
        "max_pattern_length": 3, "stm_mode": "ROLLING", "unknown_key": 1}})
    assert resp.get_json() == {"status": "okay", "message": "Configuration updated", "session_id": sid}
    config = client.get(f"/sessions/{sid}/config").get_json()
    assert config["session_id"] == sid
    assert config["config"]["max_pattern_length"] == 3 and config["config"]["stm_mode"] == "ROLLING"
    assert list(config["config"]) == BASE_KEYS
    # the flat form works too (api.md §5.4 step 1)
    client.post(f"/sessions/{sid}/config", json={"recall_threshold": 0.7})
    assert client.get(f"/sessions/{sid}/config").get_json()["config"]["recall_threshold"] == 0.7


def test_config_auto_toggle_and_invalid_mode(client, new_session):
    sid = new_session()
    client.post(f"/sessions/{sid}/config", json={"config": {"use_token_matching": False}})
    config = client.get(f"/sessions/{sid}/config").get_json()["config"]
    assert config["use_token_matching"] is False and config["sort_symbols"] is False
    client.post(f"/sessions/{sid}/config", json={"config": {"stm_mode": "SIDEWAYS"}})
    assert client.get(f"/sessions/{sid}/config").get_json()["config"]["stm_mode"] == "CLEAR"


ALGOS = ("potential, similarity, evidence, confidence, snr, fragmentation, frequency, normalized_entropy, "
         "global_normalized_entropy, itfdf_similarity, confluence, predictive_information, "
         "bayesian_posterior, bayesian_prior, bayesian_likelihood, tfidf_score, "
         # kato-3.10.md §1.3: the four weighted_* names follow the 16 old ones
         "weighted_similarity, weighted_evidence, weighted_confidence, weighted_snr")


@pytest.mark.parametrize("key, value, message", [
    # api.md §5.4 messages, and the invalid values of §11 item 8
    ("recall_threshold", -0.1, "Must be a number between 0.0 and 1.0"),
    ("recall_threshold", 1.1, "Must be a number between 0.0 and 1.0"),
    ("recall_threshold", "invalid", "Must be a number between 0.0 and 1.0"),
    ("max_pattern_length", -1, "Must be a non-negative integer"),
    ("persistence", 0, "Must be an integer between 1 and 100"),
    ("persistence", 101, "Must be an integer between 1 and 100"),
    ("max_predictions", 0, "Must be an integer between 1 and 10000"),
    ("max_predictions", 10001, "Must be an integer between 1 and 10000"),
    ("indexer_type", "INVALID", "Must be one of: VI, LSH, ANNOY, FAISS"),
    ("rank_sort_algo", "invalid_algo", "Must be one of: " + ALGOS),
    ("stm_mode", 5, "Must be a string"),
    ("process_predictions", "yes", "Must be a boolean (true/false)"),
    ("use_token_matching", 1, "Must be a boolean (true/false)"),
    ("sort", "x", "Must be a boolean (true/false)"),
])
def test_config_validation_messages(client, new_session, key, value, message):
    sid = new_session()
    before = client.get(f"/sessions/{sid}/config").get_json()
    resp = client.post(f"/sessions/{sid}/config", json={"config": {key: value, "jaccard_min_overlap": 3}})
    assert resp.status_code == 400
    assert resp.get_json() == {"detail": {"error": "Configuration validation failed",
                                          "validation_errors": {key: message}}}
    # nothing applied, not even the valid key sent alongside
    assert client.get(f"/sessions/{sid}/config").get_json() == before


def test_filter_pipeline_validated(client, new_session):
    sid = new_session()
    resp = client.post(f"/sessions/{sid}/config", json={"config": {"filter_pipeline": ["length", "nope"]}})
    assert resp.status_code == 400
    assert "filter_pipeline" in resp.get_json()["detail"]["validation_errors"]
    resp = client.post(f"/sessions/{sid}/config", json={"config": {"filter_pipeline": ["length", "jaccard"]}})
    assert resp.status_code == 200
    assert client.get(f"/sessions/{sid}/config").get_json()["config"]["filter_pipeline"] == ["length", "jaccard"]


def test_config_body_not_object(client, new_session):
    sid = new_session()
    resp = client.post(f"/sessions/{sid}/config", json=[1, 2])
    assert resp.status_code == 422
    resp = client.post(f"/sessions/{sid}/config", json={"config": "x"})
    assert resp.status_code == 422
    assert client.post(f"/sessions/{sid}/config", json={"config": None}).status_code == 200


def test_expiry_and_sliding(client, new_session, clock):
    # api.md §4.3, spec/README.md decision 10.3: every access slides expiry, reads included
    sid = new_session(ttl_seconds=5)
    for _ in range(6):
        clock.advance(2)
        assert client.get(f"/sessions/{sid}/config").status_code == 200
    clock.advance(6)
    assert client.get(f"/sessions/{sid}/config").status_code == 404
    assert client.get(f"/sessions/{sid}").status_code == 404


def test_exists_does_not_slide_and_reports_expired(client, new_session, clock):
    sid = new_session(ttl_seconds=5)
    clock.advance(3)
    assert client.get(f"/sessions/{sid}/exists").get_json()["exists"] is True
    clock.advance(3)  # 6 s after creation: exists did not extend it
    assert client.get(f"/sessions/{sid}/exists").get_json() == {
        "exists": False, "expired": True, "session_id": sid}
    assert client.get(f"/sessions/{sid}/exists").get_json()["expired"] is False  # record removed


def test_extend(client, new_session, clock):
    # api.md §4.4 and §11 item 11; decision 10.3: an explicit extend lasts until the time it set
    sid = new_session(ttl_seconds=5)
    resp = client.post(f"/sessions/{sid}/extend?ttl_seconds=60")
    assert resp.get_json() == {"status": "extended", "session_id": sid, "ttl_seconds": 60}
    clock.advance(30)
    assert client.get(f"/sessions/{sid}/config").status_code == 200  # slide keeps the later expiry
    clock.advance(25)
    assert client.get(f"/sessions/{sid}/config").status_code == 200
    clock.advance(5.5)  # 60.5 s: past the extension, and the slides were within it
    info = client.get(f"/sessions/{sid}")
    assert info.status_code == 404


def test_extend_validation(client, new_session):
    sid = new_session()
    assert client.post(f"/sessions/{sid}/extend?ttl_seconds=0").status_code == 422
    assert client.post(f"/sessions/{sid}/extend?ttl_seconds=-3").status_code == 422
    assert client.post(f"/sessions/{sid}/extend?ttl_seconds={2**31}").status_code == 422
    resp = client.post(f"/sessions/{sid}/extend?ttl_seconds=abc")
    assert resp.status_code == 422 and resp.get_json()["detail"][0]["loc"] == ["query", "ttl_seconds"]
    assert client.post(f"/sessions/{sid}/extend").get_json()["ttl_seconds"] == 3600


def test_session_count_excludes_expired(client, new_session, clock):
    new_session(ttl_seconds=5)
    new_session(ttl_seconds=50)
    clock.advance(10)
    assert client.get("/sessions/count").get_json()["active_session_count"] == 1


def test_kb_id_derivation():
    # api.md §3.2
    assert kb_id_for("user-alice", "kato") == "user_alice_kato"
    assert kb_id_for("a.b", "kato") == kb_id_for("a-b", "kato") == kb_id_for("a_b", "kato") == "a_b_kato"
    long_id = kb_id_for("x" * 100, "kato")
    assert len(long_id) <= 60 and long_id.endswith("_kato")


def test_writes_slide_expiry_and_count_one_access_each(client, kato, new_session, clock):
    """observe, observe-sequence (an empty one too) and learn lock the row and slide its expiry
    in the write itself: expiry moves as a read's does, never backwards, once per request."""
    from kato_web.store import repositories as repo

    sid = new_session(ttl_seconds=5)

    def row():
        with kato.db.transaction() as conn:
            return repo.get_session(conn, sid)

    writes = [("observe", {"strings": ["a", "b"]}), ("observe-sequence", {"observations": []}),
              ("observe-sequence", {"observations": [{"strings": ["c"]}], "learn_at_end": True}),
              ("observe", {"strings": ["d"]}), ("learn", None)]
    for path, body in writes:
        before = row()
        clock.advance(4)
        assert client.post(f"/sessions/{sid}/{path}", json=body).status_code == 200, path
        after = row()
        assert after["expires_at"] == clock.now + 5, path
        assert after["access_count"] == before["access_count"] + 1, path
    assert client.post(f"/sessions/{sid}/extend?ttl_seconds=60").status_code == 200
    clock.advance(1)
    assert client.post(f"/sessions/{sid}/observe", json={"strings": ["e"]}).status_code == 200
    assert row()["expires_at"] == clock.now - 1 + 60  # the extension's later expiry is kept
    # A refused write changes nothing, its expiry included.
    before = row()
    clock.advance(1)
    assert client.post(f"/sessions/{sid}/observe", json={"vectors": [[1.0], [1.0, 2.0]]}).status_code == 400
    assert row() == before
    # Without auto-extend a write leaves expiry and count alone.
    kato.config.session_auto_extend = False
    client.post(f"/sessions/{sid}/observe", json={"strings": ["f"]})
    assert (row()["expires_at"], row()["access_count"]) == (before["expires_at"], before["access_count"])
    assert client.get(f"/sessions/{sid}/stm").get_json()["stm"] == [["e"], ["f"]]
