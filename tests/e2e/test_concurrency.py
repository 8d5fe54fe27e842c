"""No lost update under concurrency, through a real multi-worker gunicorn (api.md §4.7, §9.6)."""
from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import pytest
import requests

from kato_web.engine.pattern import pattern_name
from tests.support import Gunicorn

pytestmark = pytest.mark.e2e

CLIENTS = 4


@pytest.fixture(scope="module")
def server(database_url):
    srv = Gunicorn(database_url, workers=3, threads=4).wait_ready()
    yield srv
    srv.stop()


def _session(server, node_id, http=None, **config):
    http = http or requests.Session()
    sid = http.post(server.url + "/sessions", json={"node_id": node_id, "config": config}).json()["session_id"]
    return http, sid


def test_concurrent_learns_of_one_pattern_count_exactly(server):
    per_client = 250

    def worker(_):
        http, sid = _session(server, "conc-learn")
        for _ in range(per_client):
            assert http.post(f"{server.url}/sessions/{sid}/observe", json={"strings": ["a"]}).status_code == 200
            assert http.post(f"{server.url}/sessions/{sid}/observe", json={"strings": ["b"]}).status_code == 200
            resp = http.post(f"{server.url}/sessions/{sid}/learn")
            assert resp.status_code == 200, resp.text
        return True

    with ThreadPoolExecutor(CLIENTS) as pool:
        assert all(pool.map(worker, range(CLIENTS)))
    name = pattern_name([["a"], ["b"]])
    got = requests.get(f"{server.url}/pattern/{name}", params={"node_id": "conc-learn"}).json()
    assert got["pattern"]["pattern"]["frequency"] == CLIENTS * per_client


def test_concurrent_learns_sum_affinity_exactly(server):
    # kato-3.10.md §1.4c: the per-node affinity sums are updated in the learn transaction, so
    # concurrent learns on several workers lose nothing (like frequencies)
    per_client = 40
    body = {"observations": [{"strings": ["p"], "emotives": {"joy": 0.5}}, {"strings": ["q"]}],
            "learn_at_end": True}

    def worker(_):
        http, sid = _session(server, "conc-affinity")
        for _ in range(per_client):
            resp = http.post(f"{server.url}/sessions/{sid}/observe-sequence", json=body)
            assert resp.status_code == 200, resp.text
        return True

    with ThreadPoolExecutor(CLIENTS) as pool:
        assert all(pool.map(worker, range(CLIENTS)))
    params = {"node_id": "conc-affinity"}
    affinity = requests.get(f"{server.url}/symbols/affinity", params=params).json()["affinities"]
    assert affinity == {"p": {"joy": 0.5 * CLIENTS * per_client}, "q": {"joy": 0.5 * CLIENTS * per_client}}
    stats = requests.get(f"{server.url}/symbols/stats", params=params).json()["symbols"]
    assert stats["p"] == {"name": "p", "frequency": CLIENTS * per_client, "pattern_member_frequency": 1}


def test_concurrent_observes_on_one_session_all_land(server):
    per_client = 100
    _, sid = _session(server, "conc-observe", max_pattern_length=0)

    def worker(client):
        http = requests.Session()
        for i in range(per_client):
            resp = http.post(f"{server.url}/sessions/{sid}/observe", json={"strings": [f"c{client}-{i}"]})
            assert resp.status_code == 200, resp.text
        return True

    with ThreadPoolExecutor(CLIENTS) as pool:
        assert all(pool.map(worker, range(CLIENTS)))
    body = requests.get(f"{server.url}/sessions/{sid}/stm").json()
    assert body["length"] == CLIENTS * per_client
    seen = {event[0] for event in body["stm"]}
    assert seen == {f"c{c}-{i}" for c in range(CLIENTS) for i in range(per_client)}
    # each client's own events stay in its order
    for c in range(CLIENTS):
        mine = [e[0] for e in body["stm"] if e[0].startswith(f"c{c}-")]
        assert mine == [f"c{c}-{i}" for i in range(per_client)]


def test_sessions_on_one_node_never_mix_stm(server):
    # api.md §9.6 test_stm_isolation_concurrent_same_node
    sessions = [_session(server, "iso-node") for _ in range(5)]

    def worker(index):
        http, sid = sessions[index]
        for i in range(30):
            assert http.post(f"{server.url}/sessions/{sid}/observe",
                             json={"strings": [f"s{index}-{i}"]}).status_code == 200
        return http.get(f"{server.url}/sessions/{sid}/stm").json()["stm"]

    with ThreadPoolExecutor(5) as pool:
        results = list(pool.map(worker, range(5)))
    for index, stm in enumerate(results):
        assert stm == [[f"s{index}-{i}"] for i in range(30)]


def test_learn_in_one_worker_is_seen_by_predictions_in_all(server):
    # a predictions call sees every learn committed before it started, whichever worker learned it
    http, sid = _session(server, "fresh-node")
    for step in range(12):
        symbols = [f"x{step}", f"y{step}"]
        for s in symbols:
            http.post(f"{server.url}/sessions/{sid}/observe", json={"strings": [s]})
        http.post(f"{server.url}/sessions/{sid}/learn")
        for s in symbols:
            http.post(f"{server.url}/sessions/{sid}/observe", json={"strings": [s]})
        # a new connection may land on any worker
        preds = requests.get(f"{server.url}/sessions/{sid}/predictions",
                             headers={"Connection": "close"}).json()["predictions"]
        assert [p["name"] for p in preds] == [pattern_name([[symbols[0]], [symbols[1]]])[5:]]
        http.post(f"{server.url}/sessions/{sid}/clear-stm")
