"""Input PostgreSQL cannot store, or whose sums would overflow, is a 422 on both databases
(never a 500, nothing stored). Both were found by schemathesis (tests/e2e/test_schemathesis.py)."""
from __future__ import annotations

import pytest


@pytest.mark.parametrize("body", [
    b'{"strings": ["a\\u0000b"]}',
    b'{"metadata": {"k\\u0000": 1}}',
    b'{"strings": ["x"], "emotives": {"joy\\u0000": 1.0}}',
])
def test_nul_characters_are_refused(client, new_session, body):
    sid = new_session()
    resp = client.post(f"/sessions/{sid}/observe", data=body, content_type="application/json")
    assert resp.status_code == 422 and resp.get_json()["detail"][0]["type"] == "string_nul"
    assert client.get(f"/sessions/{sid}/stm").get_json()["stm"] == []
    seq = client.post(f"/sessions/{sid}/observe-sequence", data=b'{"observations": [' + body + b']}',
                      content_type="application/json")
    assert seq.status_code == 422
    config = client.post(f"/sessions/{sid}/config", data=b'{"config": {"affinity_emotive": "j\\u0000"}}',
                         content_type="application/json")
    assert config.status_code == 422


def test_an_escaped_backslash_before_u0000_is_ordinary_text(client, new_session):
    sid = new_session()
    resp = client.post(f"/sessions/{sid}/observe", data=b'{"strings": ["a\\\\u0000b"]}',
                       content_type="application/json")
    assert resp.status_code == 200
    assert client.get(f"/sessions/{sid}/stm").get_json()["stm"] == [["a\\u0000b"]]


@pytest.mark.parametrize("body", [
    {"strings": ["a"], "emotives": {"joy": 1.7976931348623157e308}},
    {"strings": ["a"], "emotives": {"joy": -1e101}},
    {"vectors": [[1e101, 0.0]]},
])
def test_magnitudes_that_could_overflow_are_refused(client, new_session, body):
    sid = new_session()
    resp = client.post(f"/sessions/{sid}/observe", json=body)
    assert resp.status_code == 422, resp.get_json()
    assert client.get(f"/sessions/{sid}/stm").get_json()["stm"] == []


def test_large_but_bounded_emotives_learn_and_sum(client, new_session):
    # The affinity totals add these up across learns: no overflow at the bound.
    sid = new_session(config={"affinity_emotive": "joy"})
    for _ in range(3):
        for s in ("a", "b"):
            assert client.post(f"/sessions/{sid}/observe",
                               json={"strings": [s], "emotives": {"joy": 1e100}}).status_code == 200
        assert client.post(f"/sessions/{sid}/learn").status_code == 200
