"""The admin services on the real test database: settings, threshold preview, browsing."""
from __future__ import annotations

import pytest

from kato_web.config import SESSION_DEFAULTS
from kato_web.engine.observation import Observation
from kato_web.engine.pattern import pattern_hash
from kato_web.services import admin as svc
from kato_web.services import operations as ops
from kato_web.services import session_config
from kato_web.services import sessions as sessions_svc
from kato_web.store import repositories as repo

# Against the STM [["a"], ["b"]] these score 2*LCS/(|p|+|s|): 0.8, 0.4 and 0.0.
CLOSE = [["a"], ["b"], ["c"]]
FAR = [["a"], ["x"], ["y"]]
NONE = [["q"], ["r"], ["s"]]


def observe(kato, sid, *events, **extra):
    for event in events:
        ops.observe(kato, sid, Observation(strings=list(event), **extra))


def learn(kato, sid, events, **extra) -> str:
    observe(kato, sid, *events, **extra)
    return ops.learn(kato, sid)["pattern_name"]


def new_session(kato, node="admin-node", config=None) -> str:
    return sessions_svc.create_session(kato, node, None, None, config)["session_id"]


@pytest.fixture
def node(kato):
    """A node that learned CLOSE, FAR and NONE; returns (kb_id, session id)."""
    sid = new_session(kato)
    for events in (CLOSE, FAR, NONE):
        learn(kato, sid, events)
    return sessions_svc.kb_id_for("admin-node", kato.config.service_name), sid


def stored_settings(kato) -> dict:
    with kato.db.transaction(write=False) as conn:
        return repo.load_settings(conn)


# ---------------------------------------------------------------- password

def test_password_matches_only_the_configured_password(kato):
    """Accept the admin password and nothing else."""
    kato.config.admin_password = "correct horse"
    assert svc.admin_enabled(kato)
    assert svc.password_matches(kato, "correct horse")
    assert not svc.password_matches(kato, "correct hors")
    assert not svc.password_matches(kato, "")
    assert not svc.password_matches(kato, None)


def test_no_password_disables_the_admin_area(kato):
    """Refuse every password when none is configured."""
    kato.config.admin_password = None
    assert not svc.admin_enabled(kato)
    # An empty guess must not match an empty (unset) password.
    assert not svc.password_matches(kato, "")


# ---------------------------------------------------------------- settings

def test_setting_keys_cover_every_session_setting_primary_first():
    """List all 22 session settings, recall_threshold and max_predictions first."""
    assert svc.SETTING_KEYS[:2] == ("recall_threshold", "max_predictions")
    assert sorted(svc.SETTING_KEYS) == sorted(SESSION_DEFAULTS)
    assert len(svc.SETTING_KEYS) == 24  # 22 + kato-3.10.md §1.3's two keys
    assert set(svc.SETTING_INFO) == set(SESSION_DEFAULTS)


@pytest.mark.parametrize("key, raw, expected", [
    ("recall_threshold", " 0.35 ", 0.35),
    ("recall_threshold", "1", 1.0),
    ("recall_threshold", "abc", "abc"),
    ("recall_threshold", "nan", "nan"),
    ("max_predictions", "12", 12),
    ("max_predictions", "2.5", "2.5"),
    ("sort_symbols", "False", False),
    ("sort_symbols", "maybe", "maybe"),
    ("filter_pipeline", "length, jaccard", ["length", "jaccard"]),
    ("filter_pipeline", "", []),
    ("rank_sort_algo", "evidence", "evidence"),
])
def test_parse_form_value(key, raw, expected):
    """Turn form strings into typed values, leaving invalid ones as strings."""
    assert svc.parse_form_value(key, raw) == expected
    assert type(svc.parse_form_value(key, raw)) is type(expected)


def test_settings_form_shows_every_setting_with_range_and_default(kato):
    """Show value, allowed range, help and environment default for each setting."""
    rows = svc.settings_form(kato)
    assert [r["key"] for r in rows] == list(svc.SETTING_KEYS)
    first = rows[0]
    assert first["value"] == "0.1" and first["allowed"] == "0.0 – 1.0" and first["help"]
    assert first["env_default"] == "0.1" and not first["stored"] and first["primary"]
    assert all(r["help"] and r["allowed"] for r in rows)
    pipeline = rows[svc.SETTING_KEYS.index("filter_pipeline")]
    # The form takes a comma list; the default is shown as JSON so an empty list stays visible.
    assert pipeline["value"] == "" and pipeline["env_default"] == "[]"


def test_saved_settings_reach_new_sessions(kato):
    """Store valid values so a new session's effective config uses them."""
    errors, changed = svc.save_settings(kato, {"recall_threshold": "0.45", "max_predictions": "7"})
    assert errors == {} and sorted(changed) == ["max_predictions", "recall_threshold"]
    assert stored_settings(kato) == {"recall_threshold": 0.45, "max_predictions": 7}
    config = sessions_svc.get_config(kato, new_session(kato))["config"]
    assert config["recall_threshold"] == 0.45 and config["max_predictions"] == 7
    rows = {r["key"]: r for r in svc.settings_form(kato)}
    assert rows["recall_threshold"]["value"] == "0.45" and rows["recall_threshold"]["stored"]


def test_existing_session_without_override_follows_and_override_wins(kato):
    """Apply a new default to sessions without their own value, not to overridden ones."""
    plain = new_session(kato)
    own = new_session(kato, config={"max_predictions": 3})
    assert svc.save_settings(kato, {"max_predictions": "9"})[0] == {}
    assert sessions_svc.get_config(kato, plain)["config"]["max_predictions"] == 9
    assert sessions_svc.get_config(kato, own)["config"]["max_predictions"] == 3


def test_one_bad_value_saves_nothing_with_the_api_message(kato):
    """Reject the whole form when any value is invalid, with the API's message."""
    svc.save_settings(kato, {"max_predictions": "5"})
    before = stored_settings(kato)
    errors, changed = svc.save_settings(kato, {"recall_threshold": "1.5", "max_predictions": "8",
                                               "persistence": "x"})
    assert changed == []
    # The very messages POST /sessions/{id}/config answers (api.md §5.4).
    assert errors == session_config.check_values({"recall_threshold": 1.5, "persistence": "x"})
    assert errors["recall_threshold"] == "Must be a number between 0.0 and 1.0"
    assert stored_settings(kato) == before


def test_value_equal_to_environment_default_removes_the_stored_one(kato):
    """Delete a stored setting when it is saved back to the environment default."""
    svc.save_settings(kato, {"recall_threshold": "0.3"})
    assert "recall_threshold" in stored_settings(kato)
    errors, changed = svc.save_settings(kato, {"recall_threshold": "0.1"})
    assert errors == {} and changed == ["recall_threshold"]
    assert "recall_threshold" not in stored_settings(kato)


def test_full_form_round_trip_changes_nothing(kato):
    """Resubmit every displayed value and store nothing new."""
    form = {r["key"]: r["value"] for r in svc.settings_form(kato)}
    errors, changed = svc.save_settings(kato, form)
    assert errors == {} and changed == []
    # Every value equals the environment default, so no row is kept.
    assert stored_settings(kato) == {}


# ---------------------------------------------------------------- threshold preview

def test_threshold_preview_counts_each_threshold(kato, node):
    """Count the predictions every threshold lets through, exactly."""
    kb_id, _ = node
    result = svc.threshold_preview(kato, kb_id=kb_id, stm_text='[["a"], ["b"]]', threshold="0.5",
                                   max_predictions="10")
    counts = {row["threshold"]: row["candidates"] for row in result["rows"]}
    # θ = 0 admits every pattern; 0.4 and 0.8 are hit exactly by FAR and CLOSE.
    assert counts == {0.0: 3, 0.1: 2, 0.2: 2, 0.3: 2, 0.4: 2, 0.5: 1, 0.6: 1, 0.7: 1, 0.8: 1,
                      0.9: 0, 1.0: 0}
    assert [row["threshold"] for row in result["rows"]] == list(svc.THRESHOLDS)
    assert all(row["ms"] >= 0 for row in result["rows"])
    assert [row["threshold"] for row in result["rows"] if row["selected"]] == [0.5]
    assert result["patterns"] == 3 and result["symbols"] == 2
    assert [p["name"] for p in result["top"]] == [pattern_hash(CLOSE)]
    assert result["top"][0]["similarity"] == 0.8 and result["top"][0]["future"] == [["c"]]


def test_threshold_preview_caps_returned_at_max_predictions(kato, node):
    """Report both the uncapped count and what max_predictions would return."""
    kb_id, _ = node
    result = svc.threshold_preview(kato, kb_id=kb_id, stm_text='[["a"], ["b"]]', threshold="0.0",
                                   max_predictions="1")
    zero = result["rows"][0]
    assert (zero["candidates"], zero["returned"]) == (3, 1)
    assert result["top_total"] == 1 and len(result["top"]) == 1


def test_threshold_preview_defaults_to_server_settings(kato, node):
    """Select the server's recall_threshold and max_predictions when none is given."""
    kb_id, _ = node
    svc.save_settings(kato, {"recall_threshold": "0.3", "max_predictions": "2"})
    result = svc.threshold_preview(kato, kb_id=kb_id, stm_text='[["a"], ["b"]]')
    assert result["threshold"] == 0.3 and result["max_predictions"] == 2
    assert sorted(p["name"] for p in result["top"]) == sorted([pattern_hash(CLOSE), pattern_hash(FAR)])


def test_threshold_preview_from_a_live_session(kato, node):
    """Take the STM and node from a session id."""
    _, sid = node
    observe(kato, sid, ["b"], ["a"])
    result = svc.threshold_preview(kato, session_id=sid, threshold="0.1")
    assert result["stm"] == [["b"], ["a"]] and result["session_id"] == sid
    assert result["kb_id"] == node[0] and result["rows"][0]["candidates"] == 3


def test_threshold_preview_sorts_typed_events(kato, node):
    """Sort the symbols of a typed STM as observing it would."""
    kb_id, _ = node
    result = svc.threshold_preview(kato, kb_id=kb_id, stm_text='[["b", "a"]]')
    assert result["stm"] == [["a", "b"]]


@pytest.mark.parametrize("kwargs, field", [
    ({"stm_text": "[[1]]"}, "stm"),
    ({"stm_text": "not json"}, "stm"),
    ({"stm_text": '{"a": 1}'}, "stm"),
    ({"stm_text": ""}, "stm"),
    ({"stm_text": '[["a"]]', "threshold": "1.5"}, "threshold"),
    ({"stm_text": '[["a"]]', "max_predictions": "0"}, "max_predictions"),
    ({"stm_text": '[["a"]]', "kb_id": "no_such_node"}, "kb_id"),
    ({"stm_text": '[["a"]]', "kb_id": ""}, "kb_id"),
    ({"session_id": "session-missing"}, "session_id"),
])
def test_threshold_preview_rejects_bad_input(kato, node, kwargs, field):
    """Name the form field at fault for every bad preview request."""
    kwargs.setdefault("kb_id", node[0])
    with pytest.raises(svc.PreviewError) as info:
        svc.threshold_preview(kato, **kwargs)
    assert info.value.field == field and info.value.message


def test_preview_chart_scales_bars_to_the_largest_count():
    """Draw the tallest bar at full plot height and a zero bar flat."""
    rows = [{"threshold": t, "candidates": c, "ms": ms, "selected": t == 0.5}
            for t, c, ms in ((0.0, 4, 2.0), (0.5, 2, 1.0), (1.0, 0, 0.5))]
    chart = svc.preview_chart(rows, width=400, height=200)
    plot_height = chart["bottom"] - chart["top"]
    heights = [bar["h"] for bar in chart["bars"]]
    assert heights == [round(plot_height, 1), round(plot_height / 2, 1), 0.0]
    assert [bar["selected"] for bar in chart["bars"]] == [False, True, False]
    # The slowest call sits at the top of the plot.
    assert chart["time_line"].split()[0].endswith(f",{chart['top']:.1f}")


# ---------------------------------------------------------------- knowledge

def test_nodes_overview_counts_patterns_and_live_sessions(kato, node):
    """Count each node's patterns and live sessions."""
    new_session(kato, node="empty-node")
    overview = {n["kb_id"]: n for n in svc.nodes_overview(kato)}
    assert overview[node[0]]["patterns"] == 3 and overview[node[0]]["sessions"] == 1
    assert overview[node[0]]["symbols"] == 8  # a b c x y q r s
    empty = sessions_svc.kb_id_for("empty-node", kato.config.service_name)
    assert overview[empty]["patterns"] == 0 and overview[empty]["sessions"] == 1


def test_node_patterns_paginates_and_searches(kato, node):
    """Page through a node's patterns and find them by symbol or name prefix."""
    kb_id, sid = node
    learn(kato, sid, CLOSE)  # CLOSE now has frequency 2, so it lists first
    first = svc.node_patterns(kato, kb_id, page=1, per_page=2)
    assert first["total"] == 3 and first["pages"] == 2 and len(first["rows"]) == 2
    assert first["rows"][0]["name"] == pattern_hash(CLOSE) and first["rows"][0]["frequency"] == 2
    last = svc.node_patterns(kato, kb_id, page=99, per_page=2)
    assert last["page"] == 2 and len(last["rows"]) == 1
    by_symbol = svc.node_patterns(kato, kb_id, symbol="a")
    assert sorted(r["name"] for r in by_symbol["rows"]) == sorted([pattern_hash(CLOSE), pattern_hash(FAR)])
    assert by_symbol["total"] == 2
    prefix = "PTRN|" + pattern_hash(NONE)[:6].upper()
    by_name = svc.node_patterns(kato, kb_id, prefix=prefix)
    assert [r["name"] for r in by_name["rows"]] == [pattern_hash(NONE)] and by_name["total"] == 1
    assert svc.node_patterns(kato, kb_id, symbol="zzz")["total"] == 0
    assert svc.node_patterns(kato, "no_such_node") is None


def test_pattern_detail_shows_emotives_and_metadata(kato):
    """Return a pattern's emotive window, its averages and its metadata."""
    sid = new_session(kato)
    kb_id = sessions_svc.kb_id_for("admin-node", kato.config.service_name)
    name = learn(kato, sid, CLOSE, emotives={"joy": 1.0}, metadata={"src": "one"})
    learn(kato, sid, CLOSE, emotives={"joy": 0.5}, metadata={"src": "two"})
    detail = svc.pattern_detail(kato, kb_id, name)
    assert detail["full_name"] == name and detail["frequency"] == 2 and detail["length"] == 3
    # kato-3.10.md decision 16: one raw dict per observation (3 per learn here), the last 5 kept.
    assert detail["emotives"] == [{"joy": 1.0}, {"joy": 1.0}, {"joy": 0.5}, {"joy": 0.5}, {"joy": 0.5}]
    assert detail["emotive_keys"] == ["joy"] and detail["emotive_averages"] == {"joy": 0.7}
    # kato-3.10.md §1.4c: each distinct symbol's affinity got each learn's mean (1.0, then 0.5).
    assert [(r["symbol"], r["frequency"], r["affinity"]) for r in detail["symbols"]] == [
        (symbol, 2, {"joy": 1.5}) for symbol in sorted({x for event in CLOSE for x in event})]
    assert detail["metadata"] == {"src": ["one", "two"]}
    assert svc.pattern_detail(kato, kb_id, "PTRN|" + "0" * 40) is None


# ---------------------------------------------------------------- sessions

def test_sessions_overview_lists_live_sessions_with_stm_length(kato, clock):
    """List live sessions with node, STM length and time to expiry."""
    sid = new_session(kato, node="alice")
    observe(kato, sid, ["a"], ["b", "c"])
    gone = sessions_svc.create_session(kato, "bob", None, 10, None)["session_id"]
    clock.advance(60)  # bob's session has expired by now
    listing = svc.sessions_overview(kato)
    assert [r["session_id"] for r in listing["rows"]] == [sid] and gone not in str(listing)
    row = listing["rows"][0]
    assert row["node_id"] == "alice" and row["stm_length"] == 2 and row["symbols"] == 3
    assert row["expires_in"] == 3600 - 60


def test_session_detail_explains_predictions_without_extending(kato, clock, node):
    """Explain predictions per event and leave the session's expiry alone."""
    _, sid = node
    observe(kato, sid, ["a", "z"], ["b"])
    with kato.db.transaction(write=False) as conn:
        before = repo.get_session(conn, sid)["expires_at"]
    clock.advance(30)
    detail = svc.session_detail(kato, sid)
    with kato.db.transaction(write=False) as conn:
        # An administrator looking is not the client: no sliding expiry.
        assert repo.get_session(conn, sid)["expires_at"] == before
    assert detail["stm"] == [["a", "z"], ["b"]]
    best = detail["predictions"][0]
    assert best["name"] == pattern_hash(CLOSE)
    assert best["present"] == [[{"symbol": "a", "matched": True}], [{"symbol": "b", "matched": True}]]
    assert best["extras"] == [["z"], []] and best["future"] == [["c"]] and best["past"] == []
    assert set(best["metrics"]) == {"similarity", "evidence", "confidence", "snr", "potential",
                                    "frequency", "fragmentation"}
    # kato-3.10.md §1.3: the two optional keys are shown only once set.
    assert {c["key"] for c in detail["config"]} == set(SESSION_DEFAULTS) - session_config.OPTIONAL_KEYS
    assert svc.session_detail(kato, "session-missing") is None


def test_session_detail_uses_the_session_configuration(kato, node):
    """Compute predictions with the session's own overrides."""
    kb_id, _ = node
    sid = new_session(kato, config={"recall_threshold": 0.5})
    observe(kato, sid, ["a"], ["b"])
    detail = svc.session_detail(kato, sid)
    assert [p["name"] for p in detail["predictions"]] == [pattern_hash(CLOSE)]
    assert {c["key"]: c["override"] for c in detail["config"]}["recall_threshold"] is True


def test_explain_marks_missing_symbols_of_present_events():
    """Flag each present symbol as matched or missing."""
    prediction = {"name": "n", "past": [["p"]], "present": [["a", "b"], ["c"]], "missing": [["b"], []],
                  "extras": [["x"]], "future": [["f"]], "matches": ["a", "c"], "similarity": 0.5,
                  "evidence": 0.4, "confidence": 0.6, "snr": 0.1, "potential": 1.2, "frequency": 1,
                  "fragmentation": 0}
    explained = svc.explain(prediction)
    assert explained["present"] == [[{"symbol": "a", "matched": True}, {"symbol": "b", "matched": False}],
                                    [{"symbol": "c", "matched": True}]]
    assert explained["metrics"]["potential"] == 1.2 and explained["past"] == [["p"]]


def test_explain_carries_fuzzy_anomalies():
    """kato-3.10.md §1.4b: the session view lists a prediction's anomalies ([] when there are none)."""
    base = {"name": "n", "past": [], "present": [["apple", "banana"]], "missing": [[]], "extras": [[]],
            "future": [], "matches": ["apple", "bannana"], "similarity": 0.5, "evidence": 1.0,
            "confidence": 1.0, "snr": 1.0, "potential": 3.0, "frequency": 1, "fragmentation": 0}
    anomaly = {"observed": "bannana", "expected": "banana", "similarity": 0.923076923076923}
    assert svc.explain({**base, "anomalies": [anomaly]})["anomalies"] == [anomaly]
    assert svc.explain(base)["anomalies"] == []
