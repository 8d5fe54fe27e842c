"""The session row and the server settings are read by one statement; both must be right."""
from __future__ import annotations

from kato_web.store import repositories as repo


def test_admin_settings_reach_sessions_through_the_folded_read(client, kato, new_session):
    sid = new_session()
    assert client.get(f"/sessions/{sid}/config").get_json()["config"]["max_predictions"] == 100
    with kato.db.transaction() as conn:
        # one of each JSON type a setting can have
        repo.save_setting(conn, "max_predictions", 7, 0.0)
        repo.save_setting(conn, "recall_threshold", 0.25, 0.0)
        repo.save_setting(conn, "filter_pipeline", ["length", "jaccard"], 0.0)
        repo.save_setting(conn, "stm_mode", "ROLLING", 0.0)
        repo.save_setting(conn, "sort_symbols", False, 0.0)
        repo.save_setting(conn, "not_a_session_key", {"x": 1}, 0.0)
    config = client.get(f"/sessions/{sid}/config").get_json()["config"]
    assert (config["max_predictions"], config["recall_threshold"], config["filter_pipeline"],
            config["stm_mode"], config["sort_symbols"]) == (7, 0.25, ["length", "jaccard"], "ROLLING", False)
    assert "not_a_session_key" not in config
    assert client.get(f"/sessions/{sid}").get_json()["session_config"]["max_predictions"] == 7
    # observe uses them too: sort_symbols False keeps the client's order
    client.post(f"/sessions/{sid}/observe", json={"strings": ["b", "a"]})
    assert client.get(f"/sessions/{sid}/stm").get_json()["stm"] == [["b", "a"]]


def test_touch_session_with_settings_matches_separate_reads(kato, new_session):
    sid = new_session()
    with kato.db.transaction() as conn:
        repo.save_setting(conn, "persistence", 9, 0.0)
    for slide in (True, False):
        with kato.db.transaction() as conn:
            row, settings = repo.touch_session(conn, sid, 1.0, slide=slide, with_settings=True)
            plain = repo.touch_session(conn, sid, 1.0, slide=slide)
            assert settings == repo.load_settings(conn) == {"persistence": 9}
        # The folded read leaves out the stored observe-time predictions (cognition-data's alone).
        assert set(row) == set(plain) - {"predictions", "prediction_input"} and row["session_id"] == sid
        assert {"predictions", "prediction_input"} <= set(plain)
    with kato.db.transaction() as conn:
        assert repo.touch_session(conn, "missing", 1.0, slide=True, with_settings=True) == (None, {})
        repo.delete_setting(conn, "persistence")
        assert repo.touch_session(conn, sid, 1.0, slide=True, with_settings=True)[1] == {}


def test_touch_session_with_node_reports_the_nodes_version_as_get_node_does(client, kato, new_session):
    # Another node first, at a different version: the version must be the session's own node's
    # (on SQLite the correlation was once lost and the first node's version came back).
    other = new_session("node-first")
    client.post(f"/sessions/{other}/observe", json={"strings": ["x", "y"]})
    client.post(f"/sessions/{other}/learn")
    sid = new_session("node-second")

    def versions():
        with kato.db.transaction() as conn:
            row, _ = repo.touch_session(conn, sid, 1.0, slide=True, with_settings=True, with_node=True)
            # without sliding (KATO_SESSION_AUTO_EXTEND=false) the statement is a SELECT: same answer
            unslid, _ = repo.touch_session(conn, sid, 1.0, slide=False, with_settings=True, with_node=True)
            node = repo.get_node(conn, row["kb_id"])
            assert NODE_KEYS.isdisjoint(row)  # the helper columns never leak into the row
        assert unslid["node_version"] == row["node_version"]
        return row["node_version"], {"generation": node["generation"], "change_seq": node["change_seq"]}

    seen, expected = versions()
    assert seen == expected
    client.post(f"/sessions/{sid}/observe", json={"strings": ["a", "b"]})
    client.post(f"/sessions/{sid}/learn")  # a learn moves the change sequence
    after, expected = versions()
    assert after == expected and after["change_seq"] > seen["change_seq"]
    client.post(f"/sessions/{sid}/clear-all")  # a clear-all moves the generation
    cleared, expected = versions()
    assert cleared == expected and cleared["generation"] > after["generation"]


NODE_KEYS = set(repo.NODE_COLUMNS)


def test_stored_observe_time_predictions_are_read_only_by_cognition_data(client, kato, new_session):
    sid = new_session()
    for event in (["a", "b"], ["c"]):
        client.post(f"/sessions/{sid}/observe", json={"strings": event})
    client.post(f"/sessions/{sid}/learn")
    for event in (["a", "b"], ["c"]):
        client.post(f"/sessions/{sid}/observe", json={"strings": event})
    stored = client.get(f"/sessions/{sid}/cognition-data").get_json()["cognition_data"]["predictions"]
    assert len(stored) == 1  # computed on first read and stored
    with kato.db.transaction() as conn:
        lean = repo.touch_session(conn, sid, 1.0, slide=True, with_predictions=False)
        full = repo.touch_session(conn, sid, 1.0, slide=True, with_predictions=True)
    assert "predictions" not in lean and "prediction_input" not in lean
    assert len(full["predictions"]) == 1 and full["prediction_input"] is not None
    # every other request still works without them, and the stored ones are still served
    assert client.get(f"/sessions/{sid}/stm").get_json()["stm"] == [["a", "b"], ["c"]]
    assert client.get(f"/sessions/{sid}/cognition-data").get_json()["cognition_data"]["predictions"] == stored
