"""Two kato-web instances behind nginx behave as one service (issue 16).

Each instance is its own gunicorn (own port, own workers, own in-memory node copies) on the one
database; nginx (Debian's, on a loopback port, round robin) sits in front. Shared state lives only
in the database, so whichever instance serves a request the answer is the same, and losing one
instance loses no acknowledged write.
"""
from __future__ import annotations

import re
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from types import SimpleNamespace

import pytest
import requests

from kato_web.engine.pattern import pattern_name
from tests.support import Gunicorn, Nginx

pytestmark = pytest.mark.e2e

PASSWORD = "two instances, one service"
TOKEN = re.compile(r'name="csrf_token" value="([^"]+)"')


@pytest.fixture(scope="module")
def cluster(database_url, tmp_path_factory):
    env = {"KATO_ADMIN_PASSWORD": PASSWORD}
    a = Gunicorn(database_url, workers=2, threads=4, env=env)
    b = Gunicorn(database_url, workers=2, threads=4, env=env)
    lb = None
    try:
        a.wait_ready()
        b.wait_ready()
        lb = Nginx([a.url, b.url], tmp_path_factory.mktemp("nginx")).wait_ready()
        yield SimpleNamespace(a=a, b=b, lb=lb)
    finally:
        if lb is not None:
            lb.stop()
        a.stop()
        b.stop()


def _node(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def _session(url: str, node_id: str, http=None) -> str:
    resp = (http or requests).post(url + "/sessions", json={"node_id": node_id})
    assert resp.status_code == 200, resp.text
    return resp.json()["session_id"]


def _sequence(http, url, sid, events, **flags):
    return http.post(f"{url}/sessions/{sid}/observe-sequence",
                     json={"observations": [{"strings": e} for e in events], **flags}, timeout=30)


def _port(upstream: str) -> str:
    return upstream.rsplit(":", 1)[-1]


def test_concurrent_learns_of_one_pattern_spread_over_both_instances_count_exactly(cluster):
    node, clients, per_client = _node("two-learn"), 4, 30
    upstreams: set[str] = set()

    def client(_):
        http = requests.Session()
        sid = _session(cluster.lb.url, node, http)
        for _ in range(per_client):
            resp = _sequence(http, cluster.lb.url, sid, [["a"], ["b"]], learn_at_end=True)
            assert resp.status_code == 200, resp.text
            upstreams.add(_port(resp.headers["X-Upstream"]))
        return True

    with ThreadPoolExecutor(clients) as pool:
        assert all(pool.map(client, range(clients)))
    assert upstreams == {str(cluster.a.port), str(cluster.b.port)}  # both instances learned
    name = pattern_name([["a"], ["b"]])
    for url in (cluster.a.url, cluster.b.url):
        got = requests.get(f"{url}/pattern/{name}", params={"node_id": node}).json()
        assert got["pattern"]["pattern"]["frequency"] == clients * per_client


def test_one_sessions_observes_alternating_between_instances_lose_nothing_and_keep_order(cluster):
    sid = _session(cluster.lb.url, _node("two-observe"))
    clients, per_client = 3, 30

    def client(c):
        http = {cluster.a.url: requests.Session(), cluster.b.url: requests.Session()}
        for i in range(per_client):
            url = (cluster.a.url, cluster.b.url)[i % 2]  # A, B, A, B, …
            resp = http[url].post(f"{url}/sessions/{sid}/observe", json={"strings": [f"c{c}-{i:03d}"]})
            assert resp.status_code == 200, resp.text
        return True

    with ThreadPoolExecutor(clients) as pool:
        assert all(pool.map(client, range(clients)))
    for url in (cluster.a.url, cluster.b.url, cluster.lb.url):
        stm = [event[0] for event in requests.get(f"{url}/sessions/{sid}/stm").json()["stm"]]
        assert sorted(stm) == sorted(f"c{c}-{i:03d}" for c in range(clients) for i in range(per_client))
        for c in range(clients):  # each client's events in the order it sent them
            assert [x for x in stm if x.startswith(f"c{c}-")] == [f"c{c}-{i:03d}" for i in range(per_client)]


def test_a_learn_through_one_instance_is_seen_by_the_next_predictions_through_the_other(cluster):
    # An older node learning in step keeps its version equal to the other instance's copy of
    # the node under test, so a mix-up of node versions would show (the SQLite flake).
    older = _session(cluster.a.url, _node("two-older"))
    node = _node("two-visible")
    sid = _session(cluster.lb.url, node)
    http = requests.Session()
    for round_, (learner, reader) in enumerate([(cluster.a, cluster.b), (cluster.b, cluster.a)] * 2):
        if round_:  # the reader holds a copy of the node as it stands before the learn
            assert http.get(f"{reader.url}/sessions/{sid}/predictions").status_code == 200
        assert http.post(f"{learner.url}/sessions/{sid}/clear-stm").status_code == 200
        learned = _sequence(http, learner.url, sid, [[f"r{round_}"], ["world"], ["again"]],
                            learn_at_end=True).json()["final_learned_pattern"]
        _sequence(http, learner.url, sid, [[f"r{round_}"], ["world"]])
        answer = http.get(f"{reader.url}/sessions/{sid}/predictions").json()
        assert answer["count"] == round_ + 1
        assert learned.removeprefix("PTRN|") in [p["name"] for p in answer["predictions"]]
        # Identical answers from both instances and through nginx, byte for byte.
        bodies = {http.get(f"{url}/sessions/{sid}/predictions").content
                  for url in (cluster.a.url, cluster.b.url, cluster.lb.url)}
        assert len(bodies) == 1
        _sequence(http, cluster.a.url, older, [[f"o{round_}"], ["x"]], learn_at_end=True)


def test_a_clear_all_through_one_instance_empties_the_next_answer_through_the_other(cluster):
    # A clear-all starts a new generation of the node: B's copy must be dropped, not patched.
    sid = _session(cluster.lb.url, _node("two-clear"))
    http = requests.Session()
    _sequence(http, cluster.a.url, sid, [["p"], ["q"], ["r"]], learn_at_end=True)
    _sequence(http, cluster.a.url, sid, [["p"], ["q"]])
    assert http.get(f"{cluster.b.url}/sessions/{sid}/predictions").json()["count"] == 1  # B holds a copy
    assert http.post(f"{cluster.a.url}/sessions/{sid}/clear-all").status_code == 200
    _sequence(http, cluster.a.url, sid, [["p"], ["q"]])
    assert http.get(f"{cluster.b.url}/sessions/{sid}/predictions").json()["count"] == 0
    # and a learn after the clear-all is the only pattern B then knows
    assert http.post(f"{cluster.a.url}/sessions/{sid}/clear-stm").status_code == 200
    _sequence(http, cluster.a.url, sid, [["p"], ["z"]], learn_at_end=True)
    _sequence(http, cluster.a.url, sid, [["p"], ["q"]])
    answer = http.get(f"{cluster.b.url}/sessions/{sid}/predictions").json()
    assert [p["name"] for p in answer["predictions"]] == [pattern_name([["p"], ["z"]]).removeprefix("PTRN|")]


def _admin(url: str) -> requests.Session:
    http = requests.Session()
    token = TOKEN.search(http.get(f"{url}/admin/login").text).group(1)
    resp = http.post(f"{url}/admin/login", data={"password": PASSWORD, "csrf_token": token},
                     allow_redirects=False)
    assert resp.status_code == 302, resp.text
    return http


def _save_setting(http: requests.Session, url: str, **values) -> None:
    token = TOKEN.search(http.get(f"{url}/admin/settings").text).group(1)
    resp = http.post(f"{url}/admin/settings", data={"csrf_token": token, **values}, allow_redirects=False)
    assert resp.status_code == 302, resp.text


def test_admin_settings_saved_on_one_instance_rule_the_others_next_request(cluster):
    sid = _session(cluster.b.url, _node("two-admin"))
    for events in ([["a"], ["b"], ["c"]], [["a"], ["b"], ["d"]]):
        assert _sequence(requests, cluster.b.url, sid, events, learn_at_end=True).status_code == 200
    _sequence(requests, cluster.b.url, sid, [["a"], ["b"]])
    assert requests.get(f"{cluster.b.url}/sessions/{sid}/predictions").json()["count"] == 2
    admin = _admin(cluster.a.url)
    try:
        _save_setting(admin, cluster.a.url, max_predictions="1")
        # B's very next request follows the setting saved through A.
        assert requests.get(f"{cluster.b.url}/sessions/{sid}/predictions").json()["count"] == 1
        assert requests.get(f"{cluster.b.url}/sessions/{sid}/config").json()["config"]["max_predictions"] == 1
    finally:
        _save_setting(admin, cluster.a.url, max_predictions="100")  # the default: row removed
    assert requests.get(f"{cluster.b.url}/sessions/{sid}/predictions").json()["count"] == 2


def test_kill_9_of_one_instance_mid_load_loses_no_acknowledged_write(cluster):
    # Runs last in this module: instance A does not come back.
    node, clients = _node("two-kill"), 4
    sessions = [(_session(cluster.lb.url, node), _session(cluster.lb.url, node)) for _ in range(clients)]
    acked_observes: list[list[str]] = [[] for _ in range(clients)]
    acked_learns: list[list[str]] = [[] for _ in range(clients)]
    results: list[tuple[float, int, str]] = []  # (start time, status, upstream)
    stop = threading.Event()

    def client(c):
        http = requests.Session()
        observe_sid, learn_sid = sessions[c]
        i = 0
        while not stop.is_set():
            symbol = f"k{c}-{i:04d}"
            for kind in ("observe", "learn"):
                started = time.monotonic()
                try:
                    if kind == "observe":
                        resp = http.post(f"{cluster.lb.url}/sessions/{observe_sid}/observe",
                                         json={"strings": [symbol]}, timeout=30)
                    else:
                        resp = _sequence(http, cluster.lb.url, learn_sid, [[symbol], ["learned"]],
                                         learn_at_end=True)
                    status, upstream = resp.status_code, resp.headers.get("X-Upstream", "")
                except requests.RequestException:
                    status, upstream = 0, ""
                results.append((started, status, upstream))
                if status == 200:  # acknowledged: it must be in the database
                    if kind == "observe":
                        acked_observes[c].append(symbol)
                    else:
                        acked_learns[c].append(resp.json()["final_learned_pattern"])
            i += 1

    threads = [threading.Thread(target=client, args=(c,)) for c in range(clients)]
    for thread in threads:
        thread.start()
    time.sleep(2.0)
    killed_at = time.monotonic()
    cluster.a.kill()  # master and workers, SIGKILL, mid-load
    time.sleep(3.0)
    stop.set()
    for thread in threads:
        thread.join(timeout=60)

    before = [r for r in results if r[0] < killed_at]
    after = [r for r in results if r[0] > killed_at + 0.5]
    print(f"kill -9 mid-load: {len(before)} requests before, {len(results) - len(before) - len(after)} "
          f"in the 0.5 s after ({sum(1 for r in results if r[1] != 200)} not acknowledged in all), "
          f"{len(after)} after; acknowledged {sum(map(len, acked_observes))} observes, "
          f"{sum(map(len, acked_learns))} learns")
    assert {_port(r[2]) for r in before if r[1] == 200} == {str(cluster.a.port), str(cluster.b.port)}
    # nginx keeps serving from B: every request begun after the crash settled succeeds.
    assert after and all(status == 200 for _, status, _ in after), \
        [r for r in after if r[1] != 200][:5]
    assert {_port(r[2]) for r in after} == {str(cluster.b.port)}

    # Every acknowledged write is in the database, read through the surviving instance.
    b = requests.Session()
    for c, (observe_sid, _) in enumerate(sessions):
        stm = [event[0] for event in b.get(f"{cluster.b.url}/sessions/{observe_sid}/stm").json()["stm"]]
        position = 0  # acknowledged observes appear in order (an unacknowledged one may too)
        for symbol in acked_observes[c]:
            position = stm.index(symbol, position) + 1
    learned = [name for names in acked_learns for name in names]
    assert len(learned) >= 10
    for name in learned:
        got = b.get(f"{cluster.b.url}/pattern/{name}", params={"node_id": node}).json()
        assert got["pattern"]["status"] == "okay" and got["pattern"]["pattern"]["frequency"] == 1, name
