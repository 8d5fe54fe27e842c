"""A learn is visible to the very next predictions call, whichever worker serves it.

Regression for a flake seen with KATO's bulk tests on SQLite (api.md §7.3.2 observe-sequence with
learn_at_end, then predictions): the predictions call compared the worker's copy of the session's
node with the version of *another* node (the first row of the nodes table: the correlated
subquery lost its table names in SQLite's RETURNING clause), and when the two versions were equal
it skipped the refresh and answered from a copy taken before the learn: 0 predictions. It needed
an older node whose (generation, change_seq) equalled the copy's, which is why it only showed on
a server that had already served other nodes and never on a fresh one.
"""
from __future__ import annotations

import pytest

from kato_web import create_app
from tests.conftest import make_config

EVENTS = [["hello"], ["world"], ["again"]]


def _sequence(client, sid, events, **flags):
    resp = client.post(f"/sessions/{sid}/observe-sequence",
                       json={"observations": [{"strings": e} for e in events], **flags})
    assert resp.status_code == 200, resp.get_json()
    return resp.get_json()


def _session(client, node_id):
    resp = client.post("/sessions", json={"node_id": node_id})
    assert resp.status_code == 200
    return resp.get_json()["session_id"]


def test_predictions_see_a_learn_at_end_when_an_older_node_has_the_same_version(client):
    # kato-3.10.md §1.4b: predictions see every learn committed before the call.
    # An older node, never learned into: version (0, 0), the first row of the nodes table.
    _session(client, "an-older-node")
    sid = _session(client, "the-node")
    # The observe-time predictions of this batch load this worker's copy of the node at (0, 0),
    # before its learn_at_end commits (0, 1).
    learned = _sequence(client, sid, EVENTS, learn_at_end=True)["final_learned_pattern"]
    assert client.post(f"/sessions/{sid}/clear-stm").status_code == 200
    _sequence(client, sid, EVENTS[:2])
    predictions = client.get(f"/sessions/{sid}/predictions").get_json()["predictions"]
    assert [p["name"] for p in predictions] == [learned.removeprefix("PTRN|")]
    assert predictions[0]["future"] == [["again"]]


@pytest.fixture
def second_worker(database_url):
    """Another worker of the same service: its own app, index copies and connection pool."""
    app = create_app(make_config(database_url))
    yield app.test_client()
    app.extensions["kato"].db.dispose()


def test_a_learn_through_one_worker_is_seen_by_the_next_predictions_through_another(client, second_worker):
    # The older node learns in step with the other, so its version always equals what the
    # second worker's copy of the other node was taken at: any mix-up of the two shows.
    older = _session(client, "an-older-node")
    sid = _session(client, "the-node")
    _sequence(client, sid, [["r0"], ["world"]])
    for round_ in range(3):
        # The second worker takes its copy of the node as it stands now...
        assert second_worker.get(f"/sessions/{sid}/predictions").status_code == 200
        # ...the first learns one more pattern, and the second must see it at once.
        assert client.post(f"/sessions/{sid}/clear-stm").status_code == 200
        _sequence(client, sid, [[f"r{round_}"], ["world"], ["again"]], learn_at_end=True)
        _sequence(client, sid, [[f"r{round_}"], ["world"]])
        after = second_worker.get(f"/sessions/{sid}/predictions").get_json()
        assert after["count"] == round_ + 1
        assert any(p["matches"] == [f"r{round_}", "world"] for p in after["predictions"])
        _sequence(client, older, [[f"o{round_}"], ["x"]], learn_at_end=True)
        _sequence(client, sid, [[f"r{round_ + 1}"], ["world"]])
