"""KATO 3.10.1's storage and API changes, through HTTP (kato-3.10.md, decisions 13, 15–17, §1.1, §1.3).

The engine-side answers (one-symbol predictions, entropies on a finalized node, fuzzy matching,
weighted metrics) are tested with the predictor; these are the routes, the stored data and the
session configuration.
"""
from __future__ import annotations

import math

import numpy as np
import pytest
from sqlalchemy import text

import kato_web
from kato_web.config import Config
from kato_web.engine.observation import vector_symbol
from kato_web.engine.pattern import pattern_name
from kato_web.services import knowledge
from kato_web.services.sessions import kb_id_for


def observe(client, sid, **body):
    resp = client.post(f"/sessions/{sid}/observe", json=body)
    assert resp.status_code == 200, resp.get_json()
    return resp.get_json()


def learn(client, sid, events, emotives=None):
    """Observe `events` (each with `emotives`, when given) and learn them; return the name."""
    for event in events:
        observe(client, sid, strings=event, **({"emotives": emotives} if emotives else {}))
    resp = client.post(f"/sessions/{sid}/learn")
    assert resp.status_code == 200, resp.get_json()
    return resp.get_json()["pattern_name"]


def node_row(kato, node_id):
    with kato.db.engine.connect() as conn:
        return conn.execute(text("SELECT * FROM nodes WHERE kb_id = :k"),
                            {"k": kb_id_for(node_id, "kato")}).mappings().one()


# ---------------------------------------------------------------- decision 13

def test_root_and_status_name_the_kato_release_and_kato_webs_own_version(client):
    # kato-3.10.md decision 13
    for path in ("/", "/status"):
        body = client.get(path).get_json()
        assert body["kato_api_version"] == "3.10.1"
        assert body["version"] == kato_web.__version__ != "3.10.1"


# ---------------------------------------------------------------- finalize-training (§1.1, decision 15)

def test_finalize_training_of_a_missing_session_is_404_shape_d(client):
    # kato-3.10.md §1.1: the session middleware answers 404 shape D
    resp = client.post("/sessions/no-such-session/finalize-training")
    assert resp.status_code == 404
    assert resp.get_json() == {"error": {"code": "SESSION_NOT_FOUND",
                                         "message": "Session no-such-session not found or expired",
                                         "session_id": "no-such-session"}}


def test_finalize_training_answers_six_keys_with_the_real_count(client, kato, new_session):
    # kato-3.10.md §1.1 and decision 15: the six keys, the node's real count, the elapsed time
    sid = new_session("fin-node")
    empty = client.post(f"/sessions/{sid}/finalize-training").get_json()
    assert empty["patterns_processed"] == 0 and empty["status"] == "completed"
    learn(client, sid, [["a"], ["b"]])
    learn(client, sid, [["a"], ["b"]])  # a re-learn is the same pattern
    other = new_session("fin-node")  # the whole node counts, not only this session's patterns
    learn(client, other, [["c", "d"]])
    learn(client, new_session("elsewhere"), [["x"], ["y"]])
    resp = client.post(f"/sessions/{sid}/finalize-training")
    assert resp.status_code == 200
    body = resp.get_json()
    assert list(body) == ["status", "patterns_processed", "time_ms", "session_id", "node_id", "message"]
    assert body["status"] == "completed" and body["patterns_processed"] == 2
    assert body["session_id"] == sid and body["node_id"] == "fin-node"  # as given, not the kb id
    assert isinstance(body["time_ms"], float) and body["time_ms"] >= 0 and round(body["time_ms"], 2) == body["time_ms"]
    assert body["message"] == f"Computed Shannon entropy and TF vectors for 2 patterns in {body['time_ms']}ms"
    assert resp.headers["X-Session-ID"] == sid


def test_finalized_flag_is_stored_seen_by_the_worker_copy_and_cleared_by_clear_all(client, kato, new_session):
    # kato-3.10.md decision 15: stored per node, cleared by clear-all, every worker sees it at once
    sid = new_session("flag-node")
    learn(client, sid, [["a"], ["b"]])
    kb_id = kb_id_for("flag-node", "kato")
    assert knowledge.node_knowledge(kato, kb_id).finalized is False  # this worker now holds a copy
    seq = node_row(kato, "flag-node")["change_seq"]
    client.post(f"/sessions/{sid}/finalize-training")
    row = node_row(kato, "flag-node")
    assert row["finalized"] is True or row["finalized"] == 1
    assert row["change_seq"] == seq + 1  # so every worker's copy refreshes
    assert knowledge.node_knowledge(kato, kb_id).finalized is True
    assert knowledge.node_knowledge(kato, kb_id).stats().finalized is True
    client.post(f"/sessions/{sid}/clear-all")
    assert not node_row(kato, "flag-node")["finalized"]
    assert knowledge.node_knowledge(kato, kb_id).stats().finalized is False


# ---------------------------------------------------------------- pattern emotives (decision 16)

def test_pattern_emotives_are_the_raw_observation_dicts_appended_on_relearn(client, new_session):
    # kato-3.10.md §1.4l (KATO 3.10.1's own rolling-window test) and decision 16
    sid = new_session("emo-node")
    observe(client, sid, strings=["hello"], emotives={"happiness": 0.8})
    observe(client, sid, strings=["world"], emotives={"happiness": 0.7})
    name = client.post(f"/sessions/{sid}/learn").get_json()["pattern_name"]
    pattern = lambda: client.get(f"/pattern/{name.replace('|', '%7C')}",  # noqa: E731
                                 query_string={"node_id": "emo-node"}).get_json()["pattern"]["pattern"]
    assert pattern()["emotives"] == [{"happiness": 0.8}, {"happiness": 0.7}]
    again = new_session("emo-node")
    observe(client, again, strings=["hello"], emotives={"happiness": 0.2})
    observe(client, again, strings=["world"], emotives={"happiness": 0.3, "calm": 0.0})  # zeros kept
    assert client.post(f"/sessions/{again}/learn").get_json()["pattern_name"] == name
    assert pattern()["emotives"] == [{"happiness": 0.8}, {"happiness": 0.7}, {"happiness": 0.2},
                                     {"happiness": 0.3, "calm": 0.0}]


def test_the_window_keeps_the_learning_sessions_persistence_and_accumulators_reset(client, new_session):
    # kato-3.10.md decision 16 (the session's persistence) with decision 11 (reset by every learn)
    sid = new_session("emo-window", config={"persistence": 3})
    name = learn(client, sid, [["a"], ["b"]], emotives={"v": 1.0})
    learn(client, sid, [["a"], ["b"]], emotives={"v": 2.0})
    got = client.get(f"/pattern/{name}", query_string={"node_id": "emo-window"}).get_json()
    assert got["pattern"]["pattern"]["emotives"] == [{"v": 1.0}, {"v": 2.0}, {"v": 2.0}]
    learn(client, sid, [["a"], ["b"]])  # a learn without emotives adds nothing
    got = client.get(f"/pattern/{name}", query_string={"node_id": "emo-window"}).get_json()
    assert got["pattern"]["pattern"]["emotives"] == [{"v": 1.0}, {"v": 2.0}, {"v": 2.0}]


# ---------------------------------------------------------------- /symbols/stats (§1.1)

def test_symbol_stats_count_every_learn_and_distinct_patterns(client, new_session):
    # kato-3.10.md §1.1: frequency counts re-learns (by count in the pattern), pmf distinct patterns
    sid = new_session("stats-node")
    learn(client, sid, [["a"], ["a", "b"]])
    learn(client, sid, [["a"], ["a", "b"]])
    learn(client, sid, [["b"], ["c"]])
    body = client.get("/symbols/stats", query_string={"node_id": "stats-node"}).get_json()
    assert body == {"symbols": {
        "a": {"name": "a", "frequency": 4, "pattern_member_frequency": 1},
        "b": {"name": "b", "frequency": 3, "pattern_member_frequency": 2},
        "c": {"name": "c", "frequency": 1, "pattern_member_frequency": 1}},
        "node_id": kb_id_for("stats-node", "kato")}


def test_symbol_routes_resolve_the_node_like_pattern(client, new_session):
    # kato-3.10.md §1.1: ?node_id › x-test-id › x-node-id › default_node (api.md §3.3)
    for node in ("default_node", "test_t1", "hdr-node", "query-node"):
        learn(client, new_session(node), [[node], ["z"]], emotives={"joy": 1.0})
    cases = [({}, {}, "default_node"), ({}, {"x-test-id": "t1"}, "test_t1"),
             ({}, {"x-node-id": "hdr-node", "x-test-id": "t1"}, "test_t1"),
             ({}, {"x-node-id": "hdr-node"}, "hdr-node"),
             ({"node_id": "query-node"}, {"x-test-id": "t1"}, "query-node")]
    for query, headers, node in cases:
        stats = client.get("/symbols/stats", query_string=query, headers=headers).get_json()
        assert stats["node_id"] == kb_id_for(node, "kato") and set(stats["symbols"]) == {node, "z"}
        affinity = client.get("/symbols/affinity", query_string=query, headers=headers).get_json()
        assert affinity["node_id"] == kb_id_for(node, "kato") and set(affinity["affinities"]) == {node, "z"}
        one = client.get("/symbols/z/affinity", query_string=query, headers=headers).get_json()
        assert one == {"symbol": "z", "affinity": {"joy": 1.0}, "node_id": kb_id_for(node, "kato")}


def test_unknown_nodes_and_symbols_answer_the_empty_forms(client, new_session):
    # kato-3.10.md §1.1: an unknown node or symbol is 200 with {}
    learn(client, new_session("known"), [["a"], ["b"]])
    q = {"node_id": "never-seen"}
    assert client.get("/symbols/stats", query_string=q).get_json() == {
        "symbols": {}, "node_id": kb_id_for("never-seen", "kato")}
    assert client.get("/symbols/affinity", query_string=q).get_json() == {
        "affinities": {}, "node_id": kb_id_for("never-seen", "kato")}
    for node in ("never-seen", "known"):
        resp = client.get("/symbols/nope/affinity", query_string={"node_id": node})
        assert resp.status_code == 200
        assert resp.get_json() == {"symbol": "nope", "affinity": {}, "node_id": kb_id_for(node, "kato")}
    # a known symbol learned without emotives has no affinity either
    assert client.get("/symbols/a/affinity", query_string={"node_id": "known"}).get_json()["affinity"] == {}
    assert client.get("/symbols/affinity", query_string={"node_id": "known"}).get_json()["affinities"] == {}


# ---------------------------------------------------------------- affinity (§1.4c, §1.1)

def test_affinity_adds_each_learns_mean_to_every_distinct_symbol(client, new_session):
    # kato-3.10.md §1.4c: KATO's examples ([A]{joy:.8},[B]{joy:.4} → 0.6 each; then A:1, B:3, C:2)
    sid = new_session("aff-one")
    observe(client, sid, strings=["A"], emotives={"joy": 0.8})
    observe(client, sid, strings=["B"], emotives={"joy": 0.4})
    client.post(f"/sessions/{sid}/learn")
    body = client.get("/symbols/affinity", query_string={"node_id": "aff-one"}).get_json()
    assert set(body["affinities"]) == {"A", "B"}
    assert all(math.isclose(body["affinities"][s]["joy"], 0.6, abs_tol=0.01) for s in "AB")

    learn(client, new_session("aff-two"), [["A"], ["B"]], emotives={"joy": 1.0})
    learn(client, new_session("aff-two"), [["B"], ["C"]], emotives={"joy": 2.0})
    body = client.get("/symbols/affinity", query_string={"node_id": "aff-two"}).get_json()
    assert body == {"affinities": {"A": {"joy": 1.0}, "B": {"joy": 3.0}, "C": {"joy": 2.0}},
                    "node_id": kb_id_for("aff-two", "kato")}
    # a re-learn adds again; a symbol twice in a pattern gets the mean once
    learn(client, new_session("aff-two"), [["A"], ["B"]], emotives={"joy": 1.0, "fear": -0.5})
    learn(client, new_session("aff-two"), [["C"], ["C"]], emotives={"joy": 1.0})
    body = client.get("/symbols/affinity", query_string={"node_id": "aff-two"}).get_json()["affinities"]
    assert body == {"A": {"fear": -0.5, "joy": 2.0}, "B": {"fear": -0.5, "joy": 4.0}, "C": {"joy": 3.0}}


def test_one_symbols_affinity_is_percent_decoded_and_routed_after_the_fixed_routes(client, new_session):
    # kato-3.10.md §1.1: `|` arrives percent-encoded; /symbols/stats and /symbols/affinity win
    sid = new_session("aff-path")
    for symbol in ("x|y", "stats", "affinity", "ü"):
        observe(client, sid, strings=[symbol], emotives={"joy": 0.5})
    client.post(f"/sessions/{sid}/learn")
    q = {"node_id": "aff-path"}
    for symbol, path in (("x|y", "x%7Cy"), ("stats", "stats"), ("affinity", "affinity"), ("ü", "%C3%BC")):
        got = client.get(f"/symbols/{path}/affinity", query_string=q).get_json()
        assert got == {"symbol": symbol, "affinity": {"joy": 0.5}, "node_id": kb_id_for("aff-path", "kato")}
    assert "symbols" in client.get("/symbols/stats", query_string=q).get_json()
    assert "affinities" in client.get("/symbols/affinity", query_string=q).get_json()
    assert client.get("/symbols/a/b/affinity", query_string=q).status_code == 404  # `/` cannot be addressed


def test_clear_all_wipes_affinity_and_symbol_stats(client, new_session):
    # kato-3.10.md §1.4c: only clear-all resets affinity
    sid = new_session("aff-clear")
    learn(client, sid, [["a"], ["b"]], emotives={"joy": 1.0})
    client.post(f"/sessions/{sid}/clear-all")
    q = {"node_id": "aff-clear"}
    assert client.get("/symbols/affinity", query_string=q).get_json()["affinities"] == {}
    assert client.get("/symbols/stats", query_string=q).get_json()["symbols"] == {}
    learn(client, sid, [["a"], ["b"]], emotives={"joy": 0.25})
    assert client.get("/symbols/a/affinity", query_string=q).get_json()["affinity"] == {"joy": 0.25}


def test_affinity_reaches_the_worker_copy_incrementally(client, kato, new_session):
    # kato-3.10.md §1.4c + decision 19: the engine reads f(σ) and affinity from this worker's copy
    sid = new_session("aff-copy")
    learn(client, sid, [["a"], ["b"]], emotives={"joy": 1.0})
    kb_id = kb_id_for("aff-copy", "kato")
    stats = knowledge.node_knowledge(kato, kb_id).stats()
    assert stats.affinity == {"a": {"joy": 1.0}, "b": {"joy": 1.0}} and stats.frequency == {"a": 1, "b": 1}
    learn(client, new_session("aff-copy"), [["b"], ["c"]], emotives={"joy": 0.5, "calm": 1.0})
    stats = knowledge.node_knowledge(kato, kb_id).stats()  # an incremental refresh, not a reload
    assert stats.affinity == {"a": {"joy": 1.0}, "b": {"joy": 1.5, "calm": 1.0}, "c": {"joy": 0.5, "calm": 1.0}}
    assert stats.frequency == {"a": 1, "b": 2, "c": 1}


# ---------------------------------------------------------------- session configuration (§1.3)

def test_new_keys_are_shown_only_once_set_at_kato_positions(client, new_session):
    # kato-3.10.md §1.3: after use_token_matching and after rank_sort_algo, only once set
    sid = new_session("cfg-node")
    keys = list(client.get(f"/sessions/{sid}").get_json()["session_config"])
    assert "fuzzy_token_threshold" not in keys and "affinity_emotive" not in keys and len(keys) == 22
    resp = client.post(f"/sessions/{sid}/config",
                       json={"config": {"fuzzy_token_threshold": 1, "affinity_emotive": "joy"}})
    assert resp.status_code == 200
    config = client.get(f"/sessions/{sid}/config").get_json()["config"]
    keys = list(config)
    assert keys[keys.index("use_token_matching") + 1] == "fuzzy_token_threshold"
    assert keys[keys.index("rank_sort_algo") + 1] == "affinity_emotive"
    assert config["fuzzy_token_threshold"] == 1.0 and isinstance(config["fuzzy_token_threshold"], float)
    assert config["affinity_emotive"] == "joy"
    client.post(f"/sessions/{sid}/config", json={"config": {"affinity_emotive": None}})  # null turns it off
    assert "affinity_emotive" not in client.get(f"/sessions/{sid}/config").get_json()["config"]
    created = client.post("/sessions", json={"node_id": "cfg-node", "config": {"fuzzy_token_threshold": 0.85}})
    assert created.get_json()["session_config"]["fuzzy_token_threshold"] == 0.85


@pytest.mark.parametrize("key, value, message", [
    ("fuzzy_token_threshold", 2.0, "Must be a number between 0.0 and 1.0"),
    ("fuzzy_token_threshold", -0.1, "Must be a number between 0.0 and 1.0"),
    ("fuzzy_token_threshold", "0.5", "Must be a number between 0.0 and 1.0"),
    ("fuzzy_token_threshold", True, "Must be a number between 0.0 and 1.0"),
    ("affinity_emotive", 3, "Must be a non-empty string (an emotive name) or null"),
    ("affinity_emotive", "", "Must be a non-empty string (an emotive name) or null"),
])
def test_new_keys_are_validated_on_update_and_create(client, new_session, key, value, message):
    # kato-3.10.md §1.3 and decision 20: 400 shape B on update (stricter than KATO); create rolls back
    sid = new_session("cfg-bad")
    before = client.get(f"/sessions/{sid}/config").get_json()
    resp = client.post(f"/sessions/{sid}/config", json={"config": {key: value, "max_predictions": 7}})
    assert resp.status_code == 400
    assert resp.get_json() == {"detail": {"error": "Configuration validation failed",
                                          "validation_errors": {key: message}}}
    assert client.get(f"/sessions/{sid}/config").get_json() == before
    created = client.post("/sessions", json={"node_id": "cfg-bad", "config": {key: value, "max_predictions": 7}})
    assert created.status_code == 200
    config = created.get_json()["session_config"]
    assert key not in config and config["max_predictions"] == 100  # the whole config is rolled back


def test_weighted_rank_names_are_accepted(client, new_session):
    # kato-3.10.md §1.3: 20 allowed rank_sort_algo names
    sid = new_session("cfg-rank")
    learn(client, sid, [["a"], ["b"], ["c"]])
    learn(client, sid, [["a"], ["b"], ["d"]])
    for name in ("weighted_similarity", "weighted_evidence", "weighted_confidence", "weighted_snr"):
        assert client.post(f"/sessions/{sid}/config", json={"config": {"rank_sort_algo": name}}).status_code == 200
        assert client.get(f"/sessions/{sid}/config").get_json()["config"]["rank_sort_algo"] == name
        # ranking by a weighted key with affinity off never fails (decision 19: null ranks last)
        observe(client, sid, strings=["a"])
        observe(client, sid, strings=["b"])
        resp = client.get(f"/sessions/{sid}/predictions")
        assert resp.status_code == 200 and len(resp.get_json()["predictions"]) == 2
        client.post(f"/sessions/{sid}/clear-stm")


def test_server_default_fuzzy_threshold_is_checked_at_start(monkeypatch):
    # kato-3.10.md §1.3: KATO_FUZZY_TOKEN_THRESHOLD, validated like a session's value
    monkeypatch.setenv("KATO_FUZZY_TOKEN_THRESHOLD", "0.9")
    assert Config.from_env().session_defaults["fuzzy_token_threshold"] == 0.9
    monkeypatch.setenv("KATO_FUZZY_TOKEN_THRESHOLD", "1.5")
    with pytest.raises(ValueError, match="KATO_FUZZY_TOKEN_THRESHOLD"):
        Config.from_env()


# ---------------------------------------------------------------- vectors (decision 17, §1.4m)

def _vector_event(client, sid, vector):
    observe(client, sid, vectors=[vector])
    return client.get(f"/sessions/{sid}/stm").get_json()["stm"][-1]


def test_observed_vectors_get_the_three_nearest_learned_vectors_of_their_dimension(client, new_session):
    # kato-3.10.md decision 17: 3 nearest stored, same dimension, Euclidean, with its own name
    sid = new_session("vec-node")
    stored2 = [[0.0, 0.0], [1.0, 0.0], [0.0, 2.0], [3.0, 3.0], [10.0, 10.0]]
    stored3 = [[0.0, 0.0, 0.0], [1.0, 1.0, 1.0]]
    for vector in stored2 + stored3:
        observe(client, sid, vectors=[vector], strings=["v"])
    assert client.post(f"/sessions/{sid}/learn").status_code == 200
    reader = new_session("vec-node")
    query = [0.9, 0.2]
    nearest = sorted(stored2, key=lambda v: (math.dist(v, query), vector_symbol([v])))[:3]
    want = sorted({vector_symbol([query])} | {vector_symbol([v]) for v in nearest})
    assert _vector_event(client, reader, query) == want
    # a stored vector's own name is among its neighbours (distance 0)
    event = _vector_event(client, reader, [10.0, 10.0])
    assert vector_symbol([[10.0, 10.0]]) in event and len(event) == 3
    # a dimension with fewer than 3 learned vectors gives what there is; a new dimension none
    assert _vector_event(client, reader, [0.5, 0.5, 0.5]) == sorted(
        {vector_symbol([[0.5, 0.5, 0.5]])} | {vector_symbol([v]) for v in stored3})
    assert _vector_event(client, reader, [1.0] * 4) == [vector_symbol([[1.0] * 4])]
    # an observation's vectors are summed, and the sum is what is searched
    observe(client, reader, vectors=[[10.0, 0.0], [0.0, 10.0]])
    event = client.get(f"/sessions/{reader}/stm").get_json()["stm"][-1]
    assert vector_symbol([[10.0, 10.0]]) in event and vector_symbol([[10.0, 0.0], [0.0, 10.0]]) in event


def test_vectors_are_stored_at_learn_only_and_ties_go_by_name(client, kato, new_session):
    # kato-3.10.md decision 17: stored at learn (not at observe), per node; equal distances by name
    sid = new_session("vec-tie")
    square = [[1.0, 0.0], [-1.0, 0.0], [0.0, 1.0], [0.0, -1.0]]  # all at distance 1 from the origin
    for vector in square:
        observe(client, sid, vectors=[vector])
    reader = new_session("vec-tie")
    assert _vector_event(client, reader, [0.0, 0.0]) == [vector_symbol([[0.0, 0.0]])]  # nothing learned yet
    client.post(f"/sessions/{sid}/learn")
    with kato.db.engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM vectors")).scalar_one() == 4
    names = sorted(vector_symbol([v]) for v in square)
    assert _vector_event(client, reader, [0.0, 0.0]) == sorted([vector_symbol([[0.0, 0.0]])] + names[:3])
    # unsorted events keep the own name first, then the neighbours nearest first (ties by name)
    client.post(f"/sessions/{reader}/config", json={"config": {"sort_symbols": False}})
    assert _vector_event(client, reader, [0.0, 0.0]) == [vector_symbol([[0.0, 0.0]])] + names[:3]


def test_clear_stm_drops_pending_vectors_and_clear_all_wipes_learned_ones(client, kato, new_session):
    # kato-3.10.md decision 17: "observed since its last learn or clear"; clear-all empties the node
    sid = new_session("vec-clear")
    observe(client, sid, vectors=[[5.0, 5.0]], strings=["a"])
    client.post(f"/sessions/{sid}/clear-stm")
    learn(client, sid, [["a"], ["b"]])
    def count():
        with kato.db.engine.connect() as conn:
            return conn.execute(text("SELECT count(*) FROM vectors")).scalar_one()

    assert count() == 0
    observe(client, sid, vectors=[[5.0, 5.0]], strings=["a"])
    observe(client, sid, vectors=[[6.0, 5.0]], strings=["b"])
    client.post(f"/sessions/{sid}/learn")
    assert count() == 2
    client.post(f"/sessions/{sid}/clear-all")
    assert count() == 0
    assert _vector_event(client, sid, [5.0, 5.0]) == [vector_symbol([[5.0, 5.0]])]


def test_another_worker_sees_learned_vectors_at_once(client, app, database_url, new_session):
    # kato-3.10.md decision 17: each worker's matrix is refreshed from the node's change sequence
    from kato_web import create_app
    from tests.conftest import make_config

    other_app = create_app(make_config(database_url))  # a second worker: its own caches
    other = other_app.test_client()
    try:
        sid = new_session("vec-workers")
        reader = other.post("/sessions", json={"node_id": "vec-workers"}).get_json()["session_id"]
        assert _vector_event(other, reader, [0.0, 0.0]) == [vector_symbol([[0.0, 0.0]])]  # cached, empty
        for vector in ([1.0, 1.0], [2.0, 2.0]):
            observe(client, sid, vectors=[vector], strings=["s"])
        client.post(f"/sessions/{sid}/learn")
        want = sorted(vector_symbol([v]) for v in ([0.0, 0.0], [1.0, 1.0], [2.0, 2.0]))
        assert _vector_event(other, reader, [0.0, 0.0]) == want
    finally:
        other_app.extensions["kato"].db.dispose()


def test_observe_sequence_sees_vectors_learned_earlier_in_the_same_request(client, new_session):
    # kato-3.10.md decision 17: a learn stores its vectors for the observations after it
    sid = new_session("vec-seq")
    body = {"observations": [{"vectors": [[1.0, 2.0]], "strings": ["a"]}, {"vectors": [[1.0, 2.5]]}],
            "learn_after_each": True}
    assert client.post(f"/sessions/{sid}/observe-sequence", json=body).status_code == 200
    observe(client, sid, vectors=[[1.0, 2.4]])
    event = client.get(f"/sessions/{sid}/stm").get_json()["stm"][-1]
    assert event == sorted({vector_symbol([[1.0, 2.4]]), vector_symbol([[1.0, 2.0]]),
                            vector_symbol([[1.0, 2.5]])})


# ---------------------------------------------------------------- both halves together

def _predictions(client, sid, stm):
    client.post(f"/sessions/{sid}/clear-stm")
    for event in stm:
        observe(client, sid, strings=event)
    resp = client.get(f"/sessions/{sid}/predictions")
    assert resp.status_code == 200
    return {p["name"]: p for p in resp.get_json()["predictions"]}


def test_finalize_switches_entropies_to_whole_patterns_until_clear_all(client, new_session):
    # kato-3.10.md §1.4e worked example and decision 15 (live values after finalize)
    sid = new_session("fin-example")
    p1 = learn(client, sid, [["a"], ["b"], ["c"]]).removeprefix("PTRN|")
    p2 = learn(client, sid, [["a"], ["d"]]).removeprefix("PTRN|")
    keys = ("normalized_entropy", "global_normalized_entropy", "entropy")
    live = _predictions(client, sid, [["a"], ["b"]])
    assert [live[p1][k] for k in keys] == [0.5, 0.25, 1.0]
    assert [live[p2][k] for k in keys] == [0.0, 0.0, 0.0]
    assert live[p1]["tfidf_score"] == 0.75
    client.post(f"/sessions/{sid}/finalize-training")
    final = _predictions(client, sid, [["a"], ["b"]])
    assert [final[p1][k] for k in keys] == [0.792481250360578, 0.5, 1.584962500721156]
    assert [final[p2][k] for k in keys] == [0.5, 0.25, 1.0]
    assert final[p1]["tfidf_score"] == 0.5555555555555555
    # computed live: a later learn changes N_sym and π, and the answers follow
    learn(client, sid, [["e"], ["f"]])
    later = _predictions(client, sid, [["a"], ["b"]])
    assert later[p1]["normalized_entropy"] != final[p1]["normalized_entropy"]
    assert later[p1]["entropy"] == final[p1]["entropy"]  # log2 over the pattern alone
    client.post(f"/sessions/{sid}/clear-all")
    p1 = learn(client, sid, [["a"], ["b"], ["c"]]).removeprefix("PTRN|")
    learn(client, sid, [["a"], ["d"]])
    assert [_predictions(client, sid, [["a"], ["b"]])[p1][k] for k in keys] == [0.5, 0.25, 1.0]


def test_learned_affinity_weights_the_predictions_of_a_session_that_asks(client, new_session):
    # kato-3.10.md §1.4c–d and decision 19: w(t) = |aff(t,e)|/f(t) + 0.01, else 0.01
    teacher = new_session("weights")
    p1 = learn(client, teacher, [["a"], ["b"], ["c"]], emotives={"joy": 1.0}).removeprefix("PTRN|")
    learn(client, new_session("weights"), [["a"], ["d"]])  # f(a) = 2, no affinity added
    reader = new_session("weights")
    off = _predictions(client, reader, [["a"], ["b"]])[p1]
    assert [off[k] for k in ("weighted_similarity", "weighted_evidence", "weighted_confidence",
                             "weighted_snr")] == [None, None, None, None]
    client.post(f"/sessions/{reader}/config", json={"config": {"affinity_emotive": "joy"}})
    on = _predictions(client, reader, [["a"], ["b"]])[p1]
    wa, wb, wc = 1.0 / 2 + 0.01, 1.0 / 1 + 0.01, 1.0 / 1 + 0.01
    assert on["weighted_similarity"] == pytest.approx(2 * (wa + wb) / ((wa + wb) + (wa + wb + wc)), rel=1e-12)
    assert on["weighted_evidence"] == pytest.approx((wa + wb) / (wa + wb + wc), rel=1e-12)
    assert on["weighted_confidence"] == pytest.approx(1.0, rel=1e-12)
    assert on["weighted_snr"] == pytest.approx(1.0, rel=1e-12)
    # potential uses the weighted trio when affinity is on
    assert on["potential"] - off["potential"] == pytest.approx(
        (on["weighted_evidence"] + on["weighted_confidence"]) * on["weighted_snr"]
        - (off["evidence"] + off["confidence"]) * off["snr"], rel=1e-9)
    # a later learn with emotives changes the weights at once (the worker's copy is refreshed)
    learn(client, new_session("weights"), [["a"], ["x"]], emotives={"joy": 3.0})
    again = _predictions(client, reader, [["a"], ["b"]])[p1]
    wa = (1.0 + 3.0) / 3 + 0.01
    assert again["weighted_evidence"] == pytest.approx((wa + wb) / (wa + wb + wc), rel=1e-12)


def test_vector_copies_count_against_the_index_memory_budget(client, kato, new_session):
    # kato-3.10.md decision 17 with KATO_INDEX_MEMORY_MB: a worker drops the least recently used
    # node's vectors when indexes and vectors together exceed the budget (never the one in use)
    from bench.vector_bench import fill

    for node in ("vec-big", "vec-small"):
        new_session(node)
    rng = np.random.default_rng(5)
    fill(kato.db.engine, kb_id_for("vec-big", "kato"), rng, 3000, 64)  # ~2.3 MB of matrices
    fill(kato.db.engine, kb_id_for("vec-small", "kato"), rng, 10, 64)
    kato.config.index_memory_mb = 1
    cache = lambda: set(kato.local.get("vectors", {}))  # noqa: E731
    with kato.db.engine.connect() as conn:
        big = knowledge.node_vectors(kato, conn, kb_id_for("vec-big", "kato"))
        assert len(big.vectors) == 3000 and big.footprint > 2_000_000
        assert cache() == {kb_id_for("vec-big", "kato")}  # over budget alone, but in use: kept
        knowledge.node_vectors(kato, conn, kb_id_for("vec-small", "kato"))
        assert cache() == {kb_id_for("vec-small", "kato")}
        kato.config.index_memory_mb = 0  # no budget: nothing is dropped
        knowledge.node_vectors(kato, conn, kb_id_for("vec-big", "kato"))
        assert cache() == {kb_id_for("vec-small", "kato"), kb_id_for("vec-big", "kato")}
