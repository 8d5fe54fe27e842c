"""Predictions through HTTP: every acceptance case of engine.md §10.3–§10.5, the worked examples
of §7, and the promise that predictions never change stored state.

The acceptance cases live once, in tests/unit/engine/test_predictor_acceptance.py, written
against a `run(learns, stm, **config)` helper. Here that helper is replaced by one that learns
through the HTTP API on the real database and asks GET /sessions/{id}/predictions, and also
checks that the HTTP answer equals the engine's, field for field and float for float.
"""
from __future__ import annotations

import inspect
import itertools
import uuid

import pytest
from sqlalchemy import text

from kato_web.engine.predictor import PredictConfig, predict
from tests.unit.engine import test_predictor_acceptance as acceptance
from tests.unit.engine.reference_impl import build_kb


class HttpRunner:
    """Learn and predict through the HTTP API of a Flask test client."""

    def __init__(self, client):
        self.client = client
        self.last = None

    def session(self, node_id: str, **config) -> str:
        sid = self.client.post("/sessions", json={"node_id": node_id}).get_json()["session_id"]
        if config:
            resp = self.client.post(f"/sessions/{sid}/config", json={"config": config})
            assert resp.status_code == 200, resp.get_json()
        return sid

    def observe(self, sid: str, event, **extra) -> None:
        resp = self.client.post(f"/sessions/{sid}/observe", json={"strings": list(event), **extra})
        assert resp.status_code == 200, resp.get_json()

    def learn(self, sid: str, learns) -> None:
        for item in learns:
            events, times = item[0], item[1]
            snapshots = list(item[2]) if len(item) > 2 else []
            for t in range(times):
                for i, event in enumerate(events):
                    emotives = snapshots[t] if (i == 0 and t < len(snapshots)) else {}
                    self.observe(sid, event, emotives=emotives)
                assert self.client.post(f"/sessions/{sid}/learn").get_json()["pattern_name"].startswith("PTRN|")

    def run(self, learns, stm, **config):
        node = f"acc-{uuid.uuid4().hex[:12]}"
        sid = self.session(node, **config)
        self.learn(sid, learns)
        for event in stm:
            self.observe(sid, event)
        body = self.client.get(f"/sessions/{sid}/predictions").get_json()
        assert body["count"] == len(body["predictions"]) and body["session_id"] == sid
        records, stats = build_kb(learns)
        expected, expected_fp = predict(stm, records, stats, PredictConfig(**config))
        assert body["predictions"] == expected
        assert body["future_potentials"] == expected_fp
        self.last = (sid, body)
        return body["predictions"]


def _cases():
    for name, func in inspect.getmembers(acceptance, inspect.isfunction):
        if not name.startswith("test_"):
            continue
        marks = [m for m in getattr(func, "pytestmark", []) if m.name == "parametrize"]
        if not marks:
            yield pytest.param(name, {}, id=name)
            continue
        argnames = [a.strip() for a in marks[0].args[0].split(",")]
        for i, values in enumerate(marks[0].args[1]):
            values = values if len(argnames) > 1 else (values,)
            yield pytest.param(name, dict(zip(argnames, values)), id=f"{name}[{i}]")


@pytest.mark.parametrize("name, params", list(_cases()))
def test_acceptance_case_through_http(client, monkeypatch, name, params):
    # engine.md §10.3–§10.5, each case run against the HTTP service
    runner = HttpRunner(client)
    monkeypatch.setattr(acceptance, "run", runner.run)
    getattr(acceptance, name)(**params)
    assert runner.last is not None  # the case really went through HTTP


def test_worked_example_7_8_ensemble_through_http(client):
    # engine.md §7.8: every field given with full precision, ranking P1, P3, P2, future_potentials
    runner = HttpRunner(client)
    learns = [([["a"], ["b"], ["c"]], 1), ([["b"], ["x"]], 2), ([["a"], ["a"], ["d"]], 1)]
    preds = runner.run(learns, [["a"], ["b"], ["z"]])
    assert [p["sequence"] for p in preds] == [[["a"], ["b"], ["c"]], [["a"], ["a"], ["d"]], [["b"], ["x"]]]
    p1, p3, p2 = preds
    assert (p1["potential"], p3["potential"], p2["potential"]) == (3.0, 1.926776695296637, 1.8535533905932737)
    assert (p1["bayesian_posterior"], p3["bayesian_posterior"], p2["bayesian_posterior"]) == (
        0.37037037037037035, 0.18518518518518517, 0.4444444444444445)
    assert (p1["confluence"], p3["confluence"], p2["confluence"]) == (
        0.18518518518518517, 0.11111111111111112, 0.22222222222222224)
    # Changed by kato-3.10.md decision 15 (per present): was 0.6826061944859854 (the state's).
    assert p1["normalized_entropy"] == 0.43067655807339306
    assert p1["global_normalized_entropy"] == 0.3359061818834564
    assert (p3["normalized_entropy"], p3["global_normalized_entropy"]) == (0.0, 0.1679530909417282)
    assert (p3["itfdf_similarity"], p2["itfdf_similarity"]) == (0.9267766952966369, 0.8535533905932737)
    assert {p["predictive_information"] for p in preds} == {0.45}
    fps = runner.last[1]["future_potentials"]
    assert [fp["future"] for fp in fps] == [[["x"]], [["c"]], [["a"], ["d"]]]
    assert [fp["aggregate_potential"] for fp in fps] == [0.4444444444444445, 0.37037037037037035,
                                                         0.18518518518518517]
    assert fps[0]["total_weighted_frequency"] == 0.8 and fps[0]["supporting_patterns"] == 1


def test_worked_example_7_1_through_http(client):
    # engine.md §7.1, the canonical case, every field
    runner = HttpRunner(client)
    (p,) = runner.run([([["a", "b"], ["c"], ["d"]], 1)], [["a"], ["c"]])
    assert p["name"] == "d31a36e9ce0eb82e3ec5e48ff40e4861474db5a1"
    assert (p["past"], p["present"], p["future"]) == ([], [["a", "b"], ["c"]], [["d"]])
    assert (p["missing"], p["extras"], p["matches"]) == ([["b"], []], [[], []], ["a", "c"])
    assert p["similarity"] == 0.6666666666666666 and p["fragmentation"] == 1
    # Changed by kato-3.10.md decision 15: normalized_entropy over the present [a,b,c] (was 0.5).
    assert p["entropy"] == 1.584962500721156 and p["normalized_entropy"] == 0.792481250360578
    assert p["itfdf_similarity"] == 0.8164965809277259 and p["tfidf_score"] == 0.3333333333333333
    assert p["potential"] == 2.4831632475943923 and p["predictive_information"] == 0.6666666666666666
    assert runner.last[1]["future_potentials"] == [{"future": [["d"]], "aggregate_potential": 1.0,
                                                    "supporting_patterns": 1,
                                                    "total_weighted_frequency": 0.6666666666666666}]


def test_one_symbol_predicts(client):
    # kato-3.10.md decision 14 (§1.4a): one symbol predicts, with the normal algorithm;
    # engine.md §2.6's ≥ 2 rule (and §10.1 test_minimum_pattern_requirement.py) no longer holds.
    runner = HttpRunner(client)
    sid = runner.session("min-node")
    runner.learn(sid, [([["one"], ["two"], ["three"]], 1)])
    assert client.get(f"/sessions/{sid}/predictions").get_json()["count"] == 0  # empty STM
    runner.observe(sid, ["one"])
    body = client.get(f"/sessions/{sid}/predictions").get_json()
    # Changed by decision 14: was {"predictions": [], "future_potentials": [], "count": 0, ...}.
    (p,) = body["predictions"]
    assert (p["past"], p["present"], p["future"]) == ([], [["one"]], [["two"], ["three"]])
    assert p["similarity"] == 0.5 and p["matches"] == ["one"] and p["anomalies"] == []
    assert body["future_potentials"] == [{"future": [["two"], ["three"]], "aggregate_potential": 1.0,
                                          "supporting_patterns": 1, "total_weighted_frequency": 0.5}]
    # Observe-time predictions too (cognition data), from the first symbol on.
    cognition = client.get(f"/sessions/{sid}/cognition-data").get_json()["cognition_data"]
    assert cognition["predictions"] == body["predictions"]
    client.post(f"/sessions/{sid}/observe", json={})
    client.post(f"/sessions/{sid}/observe", json={})
    assert client.get(f"/sessions/{sid}/predictions").get_json()["count"] == 1  # was 0 (decision 14)
    runner.observe(sid, ["two"])
    assert client.get(f"/sessions/{sid}/predictions").get_json()["count"] == 1
    client.post(f"/sessions/{sid}/clear-stm")
    runner.observe(sid, ["one", "two"])
    assert client.get(f"/sessions/{sid}/predictions").get_json()["count"] == 1


def test_one_symbol_predictions_through_http_equal_the_engine(client):
    # kato-3.10.md decision 14: one symbol, θ applies, every metric; future_potentials are this
    # request's (HttpRunner compares the whole answer with the engine's)
    runner = HttpRunner(client)
    preds = runner.run(acceptance.ENSEMBLE, [["x"]])
    assert preds and all(p["matches"] == ["x"] for p in preds)
    assert runner.last[1]["future_potentials"]
    assert runner.run(acceptance.ENSEMBLE, [["never-learned"]]) == []
    assert len(runner.run(acceptance.ENSEMBLE, [["never-learned"]], recall_threshold=0.0)) == 4


def test_fuzzy_anomalies_through_http(client):
    # kato-3.10.md §1.4b worked example, decision 18: the fuzzy pair is in anomalies only
    runner = HttpRunner(client)
    (p,) = runner.run([([["apple", "banana"]], 1)], [["apple", "bannana"]],
                      fuzzy_token_threshold=0.85)
    assert p["anomalies"] == [{"observed": "bannana", "expected": "banana",
                               "similarity": 0.923076923076923}]
    assert p["matches"] == ["apple", "bannana"] and (p["missing"], p["extras"]) == ([[]], [[]])
    assert (p["evidence"], p["confidence"], p["snr"], p["similarity"]) == (1.0, 1.0, 1.0, 0.5)
    (q,) = runner.run([([["apple", "banana"]], 1)], [["apple", "bannana"]])  # τ = 0: off
    assert q["anomalies"] == [] and q["missing"] == [["banana"]] and q["extras"] == [["bannana"]]




@pytest.mark.parametrize("rank_key", ["weighted_similarity", "weighted_evidence",
                                      "weighted_confidence", "weighted_snr", "normalized_entropy"])
def test_new_rank_names_with_affinity_off(client, rank_key):
    # kato-3.10.md §1.3/decision 19: the four weighted_* names are accepted; with affinity off
    # every value is null and null ranks last, so the order is by name
    runner = HttpRunner(client)
    preds = runner.run(acceptance.ENSEMBLE, [["x"], ["y"], ["q"]], rank_sort_algo=rank_key)
    assert len(preds) == 4
    if rank_key.startswith("weighted_"):
        assert all(p[rank_key] is None for p in preds)
        assert [p["name"] for p in preds] == sorted(p["name"] for p in preds)
    else:
        keys = [(-p[rank_key], p["name"]) for p in preds]
        assert keys == sorted(keys)


def test_per_present_entropies_through_http(client):
    # kato-3.10.md §1.4e worked example, the live column
    runner = HttpRunner(client)
    preds = runner.run([([["a"], ["b"], ["c"]], 1), ([["a"], ["d"]], 1)], [["a"], ["b"]])
    by_len = {len(p["sequence"]): p for p in preds}
    assert (by_len[3]["normalized_entropy"], by_len[2]["normalized_entropy"]) == (0.5, 0.0)
    assert (by_len[3]["global_normalized_entropy"], by_len[2]["global_normalized_entropy"]) == (0.25, 0.0)
    assert (by_len[3]["entropy"], by_len[3]["tfidf_score"]) == (1.0, 0.75)


@pytest.mark.parametrize("rank_key", ["normalized_entropy", "global_normalized_entropy"])
def test_entropy_rank_keys_per_prediction(client, rank_key):
    # kato-3.10.md decision 15: the entropies differ per prediction now, so ranking by them
    # really orders (descending, ties by name)
    runner = HttpRunner(client)
    preds = runner.run(acceptance.ENSEMBLE, [["x"], ["y"], ["q"]], rank_sort_algo=rank_key)
    keys = [(-p[rank_key], p["name"]) for p in preds]
    assert len(preds) == 4 and keys == sorted(keys) and len({k for k, _ in keys}) > 1


def test_prediction_name_is_bare_digest(client):
    # engine.md §10.2 test_determinism_preservation.py
    runner = HttpRunner(client)
    sid = runner.session("name-node")
    for event in (["x"], ["y"], ["z"]):
        runner.observe(sid, event)
    name = client.post(f"/sessions/{sid}/learn").get_json()["pattern_name"]
    runner.observe(sid, ["x"])
    runner.observe(sid, ["y"])
    (pred,) = client.get(f"/sessions/{sid}/predictions").get_json()["predictions"]
    assert "PTRN|" + pred["name"] == name
    assert pred["present"] == [["x"], ["y"]] and pred["future"] == [["z"]]


@pytest.mark.parametrize("rank_key", ["bayesian_posterior", "tfidf_score", "similarity", "frequency",
                                      "fragmentation", "confluence"])
def test_rank_sort_algo_is_honoured(client, rank_key):
    # spec/README.md decision 2 and 5: descending by the session's key, ties by name
    runner = HttpRunner(client)
    preds = runner.run(acceptance.ENSEMBLE, [["x"], ["y"], ["q"]], rank_sort_algo=rank_key)
    keys = [(-p[rank_key], p["name"]) for p in preds]
    assert len(preds) == 4 and keys == sorted(keys)


def test_max_predictions_truncates_after_ensemble(client):
    # engine.md §5.7: truncation after the ensemble metrics; future_potentials is not truncated
    runner = HttpRunner(client)
    full = runner.run(acceptance.ENSEMBLE, [["x"], ["y"]])
    all_fp = runner.last[1]["future_potentials"]
    top = runner.run(acceptance.ENSEMBLE, [["x"], ["y"]], max_predictions=2)
    assert top == full[:2]
    assert runner.last[1]["future_potentials"] == all_fp


def test_filter_pipeline_length_and_jaccard(client):
    # spec/README.md decision 3: length and jaccard apply exactly; the others are lossless
    runner = HttpRunner(client)
    learns = [([["a"], ["b"], ["c"], ["d"], ["e"], ["f"]], 1), ([["a"], ["b"]], 1), ([["a"], ["q"]], 1)]
    everything = runner.run(learns, [["a"], ["b"]])
    assert len(everything) == 3
    assert len(runner.run(learns, [["a"], ["b"]], filter_pipeline=["length"])) == 2  # L ≤ int(2·2.0)
    assert len(runner.run(learns, [["a"], ["b"]], filter_pipeline=["jaccard"])) == 2  # overlap ≥ 2
    lossless = runner.run(learns, [["a"], ["b"]], filter_pipeline=["minhash", "bloom", "rapidfuzz"])
    assert lossless == everything


def _dump(kato):
    with kato.db.engine.connect() as conn:
        return {t: sorted(map(repr, conn.execute(text(f"SELECT * FROM {t}")).all()))
                for t in ("nodes", "patterns", "symbols", "settings")}


def test_predictions_never_change_stored_state(client, kato):
    runner = HttpRunner(client)
    sid = runner.session("pure-node")
    runner.learn(sid, acceptance.ENSEMBLE)
    runner.observe(sid, ["x"])
    runner.observe(sid, ["y"])
    query = "SELECT config, state, prediction_input, predictions FROM sessions"
    with kato.db.engine.connect() as conn:
        sessions_before = conn.execute(text(query)).all()
    before = _dump(kato)
    first = client.get(f"/sessions/{sid}/predictions").get_json()
    second = client.get(f"/sessions/{sid}/predictions").get_json()
    assert first == second and first["count"] == 4
    assert _dump(kato) == before
    with kato.db.engine.connect() as conn:
        assert conn.execute(text(query)).all() == sessions_before


def test_same_inputs_same_outputs_across_app_instances(database_url, client):
    # spec/README.md decision 6: a second app (as a second worker would) answers identically
    from kato_web import create_app
    from tests.conftest import make_config

    runner = HttpRunner(client)
    runner.run(acceptance.ENSEMBLE, [["x"], ["y"], ["q"]])
    sid, body = runner.last
    other = create_app(make_config(database_url))
    try:
        again = other.test_client().get(f"/sessions/{sid}/predictions").get_json()
    finally:
        other.extensions["kato"].db.dispose()
    assert again == body


def test_acceptance_cases_collected():
    # guard: the parametrisation above really covers the engine acceptance module
    names = {p.values[0] for p in _cases()}
    assert len(names) >= 30 and "test_prediction_with_emotives" in names
    assert all(name.startswith("test_") for name in itertools.islice(names, 5))
