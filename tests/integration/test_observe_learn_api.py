"""Observe, STM, learn and clear through HTTP on the real database (api.md §6–§7.4, engine.md §2–§4)."""
from __future__ import annotations

import re

import pytest
from sqlalchemy import text

from kato_web.engine.pattern import pattern_name

OBS_ID = re.compile(r"^obs-[0-9a-f]{32}$")


@pytest.fixture
def sid(new_session):
    return new_session("alice")


def observe(client, sid, **body):
    resp = client.post(f"/sessions/{sid}/observe", json=body)
    assert resp.status_code == 200, resp.get_json()
    return resp.get_json()


def stm(client, sid):
    return client.get(f"/sessions/{sid}/stm").get_json()["stm"]


def learn_events(client, sid, events, **extra):
    for event in events:
        observe(client, sid, strings=event, **extra)
    return client.post(f"/sessions/{sid}/learn").get_json()["pattern_name"]


SNAPSHOT_QUERIES = {
    "nodes": "SELECT * FROM nodes", "patterns": "SELECT * FROM patterns", "symbols": "SELECT * FROM symbols",
    "settings": "SELECT * FROM settings", "symbol_affinity": "SELECT * FROM symbol_affinity",
    "vectors": "SELECT * FROM vectors",
    # expiry and access count slide on every request, rejected ones included (decision 10.3)
    "sessions": "SELECT session_id, config, state, prediction_input, predictions FROM sessions",
}


def snapshot(kato):
    """Every stored row, to prove a rejected request changed nothing."""
    with kato.db.engine.connect() as conn:
        return {t: sorted(map(repr, conn.execute(text(q)).all())) for t, q in SNAPSHOT_QUERIES.items()}


def test_observe_response_shape(client, sid):
    # api.md §6.2
    body = observe(client, sid, strings=["world", "hello"], emotives={"joy": 0.8}, metadata={"source": "chat"},
                   unique_id="ignored")
    assert body["status"] == "okay" and body["session_id"] == sid and body["processor_id"] == "alice"
    assert body["stm_length"] == 1 and body["time"] == 1 and body["auto_learned_pattern"] is None
    assert OBS_ID.match(body["unique_id"])
    assert stm(client, sid) == [["hello", "world"]]


def test_worked_example_observe_then_learn(client, sid):
    # api.md §10: observe three events, then learn
    observe(client, sid, strings=["b", "a"])
    observe(client, sid, strings=["c"], emotives={"joy": 1.0})
    observe(client, sid, strings=["d"])
    assert client.get(f"/sessions/{sid}/stm").get_json() == {
        "stm": [["a", "b"], ["c"], ["d"]], "session_id": sid, "length": 3}
    resp = client.post(f"/sessions/{sid}/learn").get_json()
    # engine.md §4.1 verified value for [['a', 'b'], ['c'], ['d']]
    assert resp == {"status": "learned", "pattern_name": "PTRN|d31a36e9ce0eb82e3ec5e48ff40e4861474db5a1",
                    "session_id": sid, "processor_id": None,
                    "message": "Learned pattern PTRN|d31a36e9ce0eb82e3ec5e48ff40e4861474db5a1 from 0 events"}
    assert stm(client, sid) == []
    got = client.get("/pattern/PTRN%7Cd31a36e9ce0eb82e3ec5e48ff40e4861474db5a1",
                     headers={"x-node-id": "alice"}).get_json()
    assert got == {"pattern": {"status": "okay", "pattern": {
        "name": "PTRN|d31a36e9ce0eb82e3ec5e48ff40e4861474db5a1", "pattern_data": [["a", "b"], ["c"], ["d"]],
        "length": 4, "frequency": 1, "emotives": [{"joy": 1.0}], "metadata": {}}}, "node_id": "alice_kato"}


@pytest.mark.parametrize("events, expected", [
    # engine.md §10.1
    ([["z", "a", "m"]], [["a", "m", "z"]]),
    ([["Zoo", "Apple", "apple"]], [["Apple", "Zoo", "apple"]]),
    ([["10", "2", "1", "20", "100", "3"]], [["1", "10", "100", "2", "20", "3"]]),
    ([["z", "", "a", "middle"]], [["", "a", "middle", "z"]]),
    ([["z", "y", "x"], ["c", "b", "a"], ["3", "2", "1"]], [["x", "y", "z"], ["a", "b", "c"], ["1", "2", "3"]]),
])
def test_sorting(client, sid, events, expected):
    for event in events:
        observe(client, sid, strings=event)
    assert stm(client, sid) == expected


def test_sort_symbols_off_is_honoured(client, sid):
    # spec/README.md decision 2: sort_symbols is honoured per session
    client.post(f"/sessions/{sid}/config", json={"config": {"sort_symbols": False}})
    observe(client, sid, strings=["z", "a"])
    assert stm(client, sid) == [["z", "a"]]


def test_empty_observations_advance_time_only(client, sid):
    # engine.md §2.4, §10.1
    observe(client, sid, strings=["first"])
    body = observe(client, sid)
    assert body["time"] == 2 and body["stm_length"] == 1
    observe(client, sid, strings=["second"])
    observe(client, sid, strings=[], vectors=[])
    observe(client, sid, strings=["third"])
    assert stm(client, sid) == [["first"], ["second"], ["third"]]


def test_vectors(client, new_session):
    # engine.md §2.3 verified name; vectors come first in the event
    sid = new_session("vec-node")
    observe(client, sid, strings=["Apple"], vectors=[[1.0, 2.0, 3.0]])
    assert stm(client, sid) == [["VCTR|fe5de4472f7e4d5c9cdd19cadebfa06fe3da8e43", "Apple"]]
    observe(client, sid, vectors=[[0.5, 0.5, 0.0], [1.0, 0.0, 0.0]])
    assert len(stm(client, sid)) == 2


@pytest.mark.parametrize("dim", [2, 128, 512])
def test_vector_only_observations_predict(client, new_session, dim):
    # api.md §11 item 21: vector-only observations on a fresh node work and yield a predictions list
    sid = new_session(f"vec-{dim}")
    for i in range(3):
        observe(client, sid, vectors=[[float(i + j) for j in range(dim)]])
    assert client.post(f"/sessions/{sid}/learn").get_json()["pattern_name"].startswith("PTRN|")
    for i in range(2):
        observe(client, sid, vectors=[[float(i + j) for j in range(dim)]])
    preds = client.get(f"/sessions/{sid}/predictions").get_json()["predictions"]
    assert isinstance(preds, list) and len(preds) == 1


def test_ragged_vectors_are_400_and_change_nothing(client, kato, new_session):
    # spec/README.md decision 10.5: a ragged list inside one observation is a 400 with shape B
    sid = new_session("dim-node")
    observe(client, sid, vectors=[[1.0, 2.0]])
    before = snapshot(kato)
    ragged = client.post(f"/sessions/{sid}/observe", json={"vectors": [[1.0, 2.0], [1.0]]})
    assert ragged.status_code == 400
    detail = ragged.get_json()["detail"]
    assert detail["error"] == "VectorDimensionError"
    assert detail["expected_dimension"] == 2 and detail["actual_dimension"] == 1
    assert snapshot(kato) == before
    # Changed by kato-3.10.md decision 17: no per-node dimension lock, other dimensions are accepted.
    assert client.post(f"/sessions/{sid}/observe", json={"vectors": [[1.0, 2.0, 3.0]]}).status_code == 200
    other = new_session("dim-node")
    assert client.post(f"/sessions/{other}/observe", json={"vectors": [[1.0]]}).status_code == 200


@pytest.mark.parametrize("body, loc", [
    ({"strings": [1]}, ["body", "strings", 0]),
    ({"strings": [None]}, ["body", "strings", 0]),
    ({"strings": "abc"}, ["body", "strings"]),
    ({"emotives": {"joy": "very"}}, ["body", "emotives", "joy"]),
    ({"emotives": [1]}, ["body", "emotives"]),
    ({"vectors": [["x"]]}, ["body", "vectors", 0, 0]),
    ({"vectors": [1, 2]}, ["body", "vectors", 0]),
    ({"metadata": "m"}, ["body", "metadata"]),
])
def test_bad_observations_are_422_and_change_nothing(client, kato, sid, body, loc):
    observe(client, sid, strings=["keep"], emotives={"joy": 1})
    before = snapshot(kato)
    resp = client.post(f"/sessions/{sid}/observe", json=body)
    assert resp.status_code == 422
    assert any(item["loc"] == loc for item in resp.get_json()["detail"]), resp.get_json()
    after = snapshot(kato)
    assert after == before


def test_numeric_string_emotives_are_coerced(client, sid):
    # api.md §6.1: numeric strings and bools coerce to float
    observe(client, sid, strings=["a"], emotives={"joy": "0.5", "calm": True})
    percept = client.get(f"/sessions/{sid}/percept-data").get_json()["percept_data"]
    assert percept["emotives"] == {"joy": 0.5, "calm": 1.0}


def test_missing_session_wins_over_bad_body(client):
    # api.md §2.3: the session check runs before body validation
    resp = client.post("/sessions/nope/observe", json={"strings": [1]})
    assert resp.status_code == 404 and resp.get_json()["error"]["code"] == "SESSION_NOT_FOUND"
    for path in ("stm", "predictions", "percept-data", "cognition-data"):
        assert client.get(f"/sessions/nope/{path}").status_code == 404
    for path in ("learn", "clear-stm", "clear-all", "observe-sequence"):
        assert client.post(f"/sessions/nope/{path}", json={}).status_code == 404


def test_learn_rules(client, sid):
    # api.md §7.3.4, engine.md §10.2
    resp = client.post(f"/sessions/{sid}/learn")
    assert resp.status_code == 400 and resp.get_json() == {"detail": "Cannot learn from empty STM"}
    observe(client, sid, strings=["single"])
    assert client.post(f"/sessions/{sid}/learn").get_json()["pattern_name"] == ""
    assert stm(client, sid) == []
    assert learn_events(client, sid, [["a", "b"]]) == "PTRN|395314cc2f2880a00c3e6e11f1e02d8b8c45a0e4"
    names = {learn_events(client, sid, order) for order in ([["a"], ["b"], ["c"]], [["c"], ["b"], ["a"]],
                                                            [["b"], ["a"], ["c"]])}
    assert len(names) == 3
    assert learn_events(client, sid, [["a"], ["b"], ["c"]]) == "PTRN|b98534b32c1d7489d4ce1a48724aa65aeecbdba9"


def test_frequency_emotives_window_and_metadata(client, sid):
    # engine.md §4.4 worked example and §4.6 / §10.5 metadata rules
    name = learn_events(client, sid, [["happy"]], emotives={"joy": 0.9, "energy": 0.8})
    assert name == ""  # one symbol: nothing stored, accumulators still reset
    observe(client, sid, strings=["happy"], emotives={"joy": 0.9, "energy": 0.8}, metadata={"book": "title1"})
    observe(client, sid, strings=["sad"], emotives={"joy": 0.1, "energy": 0.2}, metadata={"book": "title2"})
    observe(client, sid, strings=["neutral"], emotives={"joy": 0.5, "energy": 0.5},
            metadata={"count": 123, "price": 45.67, "flag": True})
    name = client.post(f"/sessions/{sid}/learn").get_json()["pattern_name"]
    for event in (["happy"], ["sad"], ["neutral"]):
        observe(client, sid, strings=event, emotives={"joy": 1.0} if event == ["happy"] else {},
                metadata={"book": "title1"})
    assert client.post(f"/sessions/{sid}/learn").get_json()["pattern_name"] == name
    pattern = client.get(f"/pattern/{name.replace('|', '%7C')}?node_id=alice").get_json()["pattern"]["pattern"]
    assert pattern["frequency"] == 2
    # kato-3.10.md decision 16: the raw dicts of each observation, appended by the re-learn
    assert pattern["emotives"] == [{"joy": 0.9, "energy": 0.8}, {"joy": 0.1, "energy": 0.2},
                                   {"joy": 0.5, "energy": 0.5}, {"joy": 1.0}]
    assert pattern["metadata"] == {"book": ["title1", "title2"], "count": ["123"], "flag": ["True"],
                                   "price": ["45.67"]}
    observe(client, sid, strings=["happy"])
    observe(client, sid, strings=["sad"])
    pred = client.get(f"/sessions/{sid}/predictions").get_json()["predictions"][0]
    # kato-3.10.md decision 16: the per-key mean over the stored raw dicts
    assert pred["frequency"] == 2 and pred["emotives"] == {"joy": 0.625, "energy": 0.5}


def test_persistence_window_is_per_session(client, sid):
    # spec/README.md decision 2: persistence is honoured per session
    client.post(f"/sessions/{sid}/config", json={"config": {"persistence": 2}})
    for value in (1.0, 2.0, 3.0):
        name = learn_events(client, sid, [["p"], ["q"]], emotives={"v": value})
    pattern = client.get(f"/pattern/{name}?node_id=alice").get_json()["pattern"]["pattern"]
    # kato-3.10.md decision 16: the window counts observations (2 per learn here), not learns
    assert pattern["emotives"] == [{"v": 3.0}, {"v": 3.0}]


def test_clear_stm_discards_accumulators(client, sid):
    # engine.md §10.5 test_metadata: clear-STM discards accumulated metadata
    observe(client, sid, strings=["a"], metadata={"k": "v"}, emotives={"e": 1})
    assert client.post(f"/sessions/{sid}/clear-stm").get_json() == {"status": "cleared", "session_id": sid}
    assert client.get(f"/sessions/{sid}/percept-data").get_json() == {
        "percept_data": {}, "session_id": sid, "node_id": "alice"}
    name = learn_events(client, sid, [["a"], ["b"]])
    pattern = client.get(f"/pattern/{name}?node_id=alice").get_json()["pattern"]["pattern"]
    assert pattern["metadata"] == {} and "emotives" not in pattern


def test_auto_learn_clear_and_rolling(client, sid):
    # engine.md §3 worked examples
    client.post(f"/sessions/{sid}/config", json={"config": {"max_pattern_length": 3}})
    names = [observe(client, sid, strings=[s])["auto_learned_pattern"] for s in ("clear1", "clear2", "clear3")]
    assert names == [None, None, pattern_name([["clear1"], ["clear2"], ["clear3"]])]
    assert stm(client, sid) == []
    client.post(f"/sessions/{sid}/config", json={"config": {"stm_mode": "ROLLING"}})
    learned = [observe(client, sid, strings=[s])["auto_learned_pattern"] for s in "ABCDE"]
    assert learned == [None, None, pattern_name([["A"], ["B"], ["C"]]), pattern_name([["B"], ["C"], ["D"]]),
                       pattern_name([["C"], ["D"], ["E"]])]
    assert stm(client, sid) == [["D"], ["E"]]


def test_observe_sequence(client, sid):
    # api.md §7.3.2 test expectations and §6.4 shape
    body = client.post(f"/sessions/{sid}/observe-sequence", json={"observations": [
        {"strings": ["hello"]}, {"strings": ["world"], "unique_id": "u1"}, {"strings": ["test"]}]}).get_json()
    assert body["status"] == "completed" and body["processor_id"] == "alice"
    assert body["observations_processed"] == 3 and body["initial_stm_length"] == 0
    assert body["final_stm_length"] == 3 and body["final_learned_pattern"] is None and body["isolated"] is False
    assert [r["sequence_position"] for r in body["results"]] == [0, 1, 2]
    assert body["results"][1]["unique_id"] == "u1" and body["results"][0]["unique_id"].startswith("seq-obs-")
    assert [r["time"] for r in body["results"]] == [1, 2, 3]
    assert stm(client, sid) == [["hello"], ["world"], ["test"]]

    body = client.post(f"/sessions/{sid}/observe-sequence", json={
        "observations": [{"strings": ["x"]}, {"strings": ["y"]}], "learn_at_end": True}).get_json()
    assert body["initial_stm_length"] == 3 and body["final_stm_length"] == 0
    assert body["auto_learned_patterns"] == [body["final_learned_pattern"]]
    assert body["final_learned_pattern"] == pattern_name([["hello"], ["world"], ["test"], ["x"], ["y"]])

    body = client.post(f"/sessions/{sid}/observe-sequence", json={
        "observations": [{"strings": ["a1", "a2"]}, {"strings": ["b1", "b2"]}, {"strings": ["c1", "c2"]}],
        "clear_stm_between": True, "learn_after_each": True}).get_json()
    assert len(body["auto_learned_patterns"]) == 3 and body["isolated"] is True
    assert stm(client, sid) == []

    client.post(f"/sessions/{sid}/observe-sequence", json={
        "observations": [{"strings": ["p"]}, {"strings": ["q"]}], "clear_stm_between": True})
    assert stm(client, sid) == [["q"]]


def test_observe_sequence_empty_and_invalid(client, kato, sid):
    observe(client, sid, strings=["a"])
    body = client.post(f"/sessions/{sid}/observe-sequence", json={"observations": []}).get_json()
    assert body["observations_processed"] == 0 and body["initial_stm_length"] == body["final_stm_length"] == 1
    before = snapshot(kato)
    resp = client.post(f"/sessions/{sid}/observe-sequence", json={"observations": "not_a_list"})
    assert resp.status_code == 422
    assert resp.get_json()["detail"][0]["type"] == "list_type"
    resp = client.post(f"/sessions/{sid}/observe-sequence", json={
        "observations": [{"strings": ["ok"]}, {"strings": [5]}], "learn_at_end": True})
    assert resp.status_code == 422
    assert snapshot(kato) == before


def test_observe_sequence_dimension_error_index(client, kato, new_session):
    sid = new_session("seq-dim")
    before = snapshot(kato)
    resp = client.post(f"/sessions/{sid}/observe-sequence", json={"observations": [
        # kato-3.10.md decision 17: only a ragged list inside one observation is still an error
        {"strings": ["a"], "vectors": [[1.0, 2.0]]}, {"vectors": [[1.0], [1.0, 2.0]]}], "learn_after_each": True})
    assert resp.status_code == 400
    assert resp.get_json()["detail"]["observation_index"] == 1
    assert snapshot(kato) == before


def test_emotive_and_metadata_placement_irrelevance(client, sid):
    # api.md §9.5: placement within the sequence does not matter
    names = []
    for placement in range(3):
        observations = [{"strings": [s]} for s in ("m1", "m2", "m3")]
        observations[placement]["emotives"] = {"joy": 0.5}
        observations[placement]["metadata"] = {"tag": "t"}
        body = client.post(f"/sessions/{sid}/observe-sequence", json={
            "observations": observations, "learn_at_end": True}).get_json()
        names.append(body["final_learned_pattern"])
    assert len(set(names)) == 1
    pattern = client.get(f"/pattern/{names[0]}?node_id=alice").get_json()["pattern"]["pattern"]
    assert pattern["frequency"] == 3 and pattern["emotives"] == [{"joy": 0.5}] * 3
    assert pattern["metadata"] == {"tag": ["t"]}


def test_clear_all_wipes_node_not_other_sessions(client, new_session):
    # api.md §7.3.6
    a, b = new_session("shared"), new_session("shared")
    name = learn_events(client, a, [["x"], ["y"]])
    observe(client, b, strings=["keep"])
    assert client.post(f"/sessions/{a}/clear-all").get_json() == {"status": "cleared", "session_id": a,
                                                                  "scope": "all"}
    got = client.get(f"/pattern/{name}?node_id=shared").get_json()
    assert got["pattern"] == {"status": "error", "message": f"Pattern {name} not found"}
    assert stm(client, b) == [["keep"]]
    # the node learns again from scratch: counters reset
    assert learn_events(client, a, [["x"], ["y"]]) == name
    assert client.get(f"/pattern/{name}?node_id=shared").get_json()["pattern"]["pattern"]["frequency"] == 1


def test_node_isolation_and_shared_ltm(client, new_session):
    # api.md §3.1: same node shares LTM, different nodes are isolated
    a, b, c = new_session("n1"), new_session("n1"), new_session("n2")
    name = learn_events(client, a, [["x"], ["y"]])
    for sid in (b, c):
        observe(client, sid, strings=["x"])
        observe(client, sid, strings=["y"])
    assert len(client.get(f"/sessions/{b}/predictions").get_json()["predictions"]) == 1
    assert client.get(f"/sessions/{c}/predictions").get_json()["predictions"] == []
    assert client.get(f"/pattern/{name}?node_id=n2").get_json()["pattern"]["status"] == "error"


def test_percept_and_cognition_data(client, sid):
    # api.md §6.11, §7.3.8, §7.3.9, §11 item 14
    learn_events(client, sid, [["hello"], ["world"], ["again"]])
    observe(client, sid, strings=["world", "hello"], emotives={"joy": 0.8}, metadata={"m": 1})
    percept = client.get(f"/sessions/{sid}/percept-data").get_json()
    assert percept == {"percept_data": {"strings": ["hello", "world"], "vectors": [], "emotives": {"joy": 0.8},
                                        "path": [], "metadata": {"m": 1}}, "session_id": sid, "node_id": "alice"}
    cognition = client.get(f"/sessions/{sid}/cognition-data").get_json()
    data = cognition["cognition_data"]
    assert cognition["node_id"] == "alice" and len(data["predictions"]) == 1
    assert data["emotives"] == {"joy": 0.8} and data["symbols"] == ["hello", "world"]
    assert data["short_term_memory"] == [["hello", "world"]] and data["time"] == 4  # learn keeps time
    assert data["predictions"] == client.get(f"/sessions/{sid}/predictions").get_json()["predictions"]
    client.post(f"/sessions/{sid}/clear-stm")
    assert client.get(f"/sessions/{sid}/cognition-data").get_json()["cognition_data"]["predictions"] == []


def test_observe_time_predictions_precede_auto_learn(client, sid):
    # engine.md §2.6 / §3: observe-time predictions are computed before that observation's auto-learn
    learn_events(client, sid, [["a"], ["b"], ["z"]])
    client.post(f"/sessions/{sid}/config", json={"config": {"max_pattern_length": 2}})
    observe(client, sid, strings=["a"])
    body = observe(client, sid, strings=["b"])
    assert body["auto_learned_pattern"] == pattern_name([["a"], ["b"]])
    preds = client.get(f"/sessions/{sid}/cognition-data").get_json()["cognition_data"]["predictions"]
    assert [p["name"] for p in preds] == [pattern_name([["a"], ["b"], ["z"]])[5:]]


def test_process_predictions_off(client, sid):
    learn_events(client, sid, [["a"], ["b"]])
    client.post(f"/sessions/{sid}/config", json={"config": {"process_predictions": False}})
    observe(client, sid, strings=["a"])
    observe(client, sid, strings=["b"])
    assert client.get(f"/sessions/{sid}/cognition-data").get_json()["cognition_data"]["predictions"] == []
    assert len(client.get(f"/sessions/{sid}/predictions").get_json()["predictions"]) == 1


def test_node_level_views(client):
    # api.md §7.4
    body = client.get("/percept-data", headers={"x-test-id": "foo"}).get_json()
    assert body["percept_data"] == {} and body["node_id"] == "test_foo_kato" and "warning" in body
    body = client.get("/cognition-data?node_id=bar").get_json()
    assert body["node_id"] == "bar_kato" and body["cognition_data"]["predictions"] == []
    assert client.get("/pattern/PTRN%7Cnothing").get_json()["node_id"] == "default_node_kato"


def test_stm_capped_at_1000(client, sid):
    # api.md §4.6 and §11 item 20
    body = client.post(f"/sessions/{sid}/observe-sequence", json={
        "observations": [{"strings": [f"s{i}"]} for i in range(1100)]}).get_json()
    assert body["final_stm_length"] == 1000
    events = stm(client, sid)
    assert len(events) == 1000 and events[-1] == ["s1099"] and events[0] == ["s100"]


def test_multimodal_event_order(client, new_session):
    # engine.md §10.1: strings ['multi','modal'] plus 2 vectors → one VCTR symbol, then 'modal', 'multi'
    sid = new_session("mm-node")
    observe(client, sid, strings=["multi", "modal"], vectors=[[0.5, 0.5], [1.0, 0.0]])
    assert stm(client, sid) == [["VCTR|f11daefdddee30b6a7a043c084fad802f0553a99", "modal", "multi"]]


def test_hashing_is_case_sensitive_and_ignores_emotives(client, sid):
    # engine.md §10.2 test_edge_cases_comprehensive.py and test_pattern_hashing.py
    lower = learn_events(client, sid, [["hello"], ["world"]])
    upper = learn_events(client, sid, [["Hello"], ["World"]])
    with_emotives = learn_events(client, sid, [["hello"], ["world"]], emotives={"joy": 0.3})
    assert lower != upper and lower == with_emotives
    assert re.fullmatch(r"PTRN\|[0-9a-f]{40}", lower)


def test_oversized_observe_is_413_and_changes_nothing(database_url):
    # spec/README.md decision 8: request size is capped; nothing stored changes
    from kato_web import create_app
    from tests.conftest import make_config

    app = create_app(make_config(database_url, max_request_bytes=2000))
    client = app.test_client()
    kato = app.extensions["kato"]
    try:
        sid = client.post("/sessions", json={"node_id": "big"}).get_json()["session_id"]
        observe(client, sid, strings=["small"])
        before = snapshot(kato)
        resp = client.post(f"/sessions/{sid}/observe", json={"strings": ["x" * 5000]})
        assert resp.status_code == 413 and resp.get_json() == {"detail": "Request Entity Too Large"}
        assert snapshot(kato) == before
        assert stm(client, sid) == [["small"]]
    finally:
        kato.db.dispose()


def _cognition_predictions(client, sid):
    return client.get(f"/sessions/{sid}/cognition-data").get_json()["cognition_data"]["predictions"]


@pytest.mark.parametrize("flags, config", [
    ({"learn_after_each": True}, {}),
    ({"learn_after_each": True, "learn_at_end": True}, {"max_pattern_length": 3}),
    ({}, {"max_pattern_length": 2}),
], ids=["learn_after_each", "with_auto_learn", "auto_learn_only"])
def test_observe_sequence_predictions_see_its_earlier_learns_and_none_after(client, new_session, flags, config):
    """The last item's observe-time predictions, computed while its learns are stored in one
    batch, equal those of the same items sent one request at a time to a twin node and read
    before the learns that follow them: frequencies, emotive windows, symbol statistics and
    affinity all as the earlier learns left them, the later ones unseen."""
    history = [[["a", "b"]], [["b", "c"], ["d"]], [["a", "b"]], [["c", "e"]]]
    items = [(["a", "b"], {"joy": 0.5}), (["c", "d"], {}), (["a", "b"], {"joy": 0.25, "fear": 0.1}),
             (["b", "e"], {}), (["a", "c"], {"joy": 1.0}), (["a", "b"], {"fear": 0.3})]
    batch, single = new_session("twin-batch"), new_session("twin-single")
    for sid in (batch, single):
        for events in history:  # the same knowledge before, with emotive windows and affinity
            learn_events(client, sid, events, emotives={"joy": 0.2})
        assert client.post(f"/sessions/{sid}/config", json={"config": config}).status_code == 200
    body = client.post(f"/sessions/{batch}/observe-sequence", json={
        "observations": [{"strings": s, "emotives": e} for s, e in items], **flags})
    assert body.status_code == 200, body.get_json()
    for k, (strings, emotives) in enumerate(items):
        observe(client, single, strings=strings, emotives=emotives)
        if k == len(items) - 1:
            want = _cognition_predictions(client, single)  # before the learns that follow it
        if flags.get("learn_after_each") and stm(client, single):
            client.post(f"/sessions/{single}/learn")
    if flags.get("learn_at_end") and stm(client, single):
        client.post(f"/sessions/{single}/learn")
    got = _cognition_predictions(client, batch)
    assert got == want and len(got) >= 2
    assert {p["frequency"] for p in got} != {1}  # the earlier learns and the history count
    # And both nodes end the same: every learn stored, in the same order.
    probe = client.post(f"/sessions/{batch}/clear-stm"), client.post(f"/sessions/{single}/clear-stm")
    assert all(r.status_code == 200 for r in probe)
    for sid in (batch, single):
        observe(client, sid, strings=["a"])
    assert (client.get(f"/sessions/{batch}/predictions").get_json()["predictions"]
            == client.get(f"/sessions/{single}/predictions").get_json()["predictions"])
