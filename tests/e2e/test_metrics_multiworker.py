"""/metrics aggregates every gunicorn worker (Prometheus multiprocess mode)."""
from __future__ import annotations

import gzip
import json
import os
import signal
import time

import pytest
import requests
from prometheus_client.parser import text_string_to_metric_families

from tests.support import Gunicorn

pytestmark = pytest.mark.e2e

SCRAPER_ACCEPT = "application/openmetrics-text;version=1.0.0,text/plain;version=0.0.4;q=0.5,*/*;q=0.1"
FRESH = {"Connection": "close"}  # a new connection each time lets the kernel pick either worker


@pytest.fixture(scope="module")
def server(database_url):
    srv = Gunicorn(database_url, workers=2, threads=2, env={"KATO_METRICS_FLUSH_SECONDS": "0.2"}).wait_ready()
    yield srv
    srv.stop()


def scrape(server) -> tuple[dict, str]:
    """Return ({(name, frozenset(labels)): value}, answering worker pid) from a scraper's GET /metrics."""
    resp = requests.get(server.url + "/metrics", headers={"Accept": SCRAPER_ACCEPT, **FRESH}, timeout=10)
    assert resp.status_code == 200
    assert resp.headers["Content-Type"].startswith("text/plain; version=0.0.4")
    samples = {}
    for family in text_string_to_metric_families(resp.text):
        for s in family.samples:
            samples[(s.name, frozenset(s.labels.items()))] = s.value
    return samples, resp.headers["X-Worker-PID"]


def requests_for(samples, route, method="POST", status="200") -> float:
    return samples.get(("kato_http_requests_total",
                        frozenset({"endpoint": route, "method": method, "status": status}.items())), 0.0)


def wait_for(predicate, timeout=15.0):
    deadline = time.time() + timeout
    while time.time() < deadline:
        result = predicate()
        if result:
            return result
        time.sleep(0.1)
    return predicate()


def observe_on_both_workers(server, sid) -> tuple[int, set]:
    """Observe until both workers have answered; return (observations sent, worker pids)."""
    pids, sent = set(), 0
    while len(pids) < 2 and sent < 200:
        resp = requests.post(f"{server.url}/sessions/{sid}/observe", json={"strings": [f"s{sent}"]},
                             headers=FRESH, timeout=10)
        assert resp.status_code == 200, resp.text
        pids.add(resp.headers["X-Worker-PID"])
        sent += 1
    assert len(pids) == 2, "only one worker answered"
    return sent, pids


def test_scrape_counts_requests_of_every_worker(server):
    sid = requests.post(server.url + "/sessions", json={"node_id": "metrics-e2e"}).json()["session_id"]
    sent, pids = observe_on_both_workers(server, sid)
    route = "/sessions/<session_id>/observe"
    seen_by = {}

    def both_workers_report_all():
        samples, pid = scrape(server)
        seen_by[pid] = samples
        return len(seen_by) == 2 and all(requests_for(s, route) == sent for s in seen_by.values())

    # Whichever worker answers the scrape, it reports the observes both workers served.
    assert wait_for(both_workers_report_all), {pid: requests_for(s, route) for pid, s in seen_by.items()}
    samples = next(iter(seen_by.values()))
    assert samples[("kato_operations_total", frozenset({"operation": "observations"}.items()))] == sent
    assert samples[("kato_workers", frozenset())] == 2
    assert samples[("kato_node_patterns", frozenset({"node": "metrics_e2e_kato"}.items()))] == 0
    assert samples[("kato_db_pool_capacity", frozenset())] == 2 * (2 + 2)  # pool follows KATO_THREADS

    # A plain request still gets KATO's JSON, with the same aggregated count.
    body = requests.get(server.url + "/metrics", headers=FRESH, timeout=10).json()
    assert {"timestamp", "sessions", "performance", "resources", "databases", "rates",
            "processor_manager"} <= set(body)
    assert body["operations"]["observations"] == sent
    assert body["performance"]["total_requests"] >= sent + 1


def test_counts_survive_a_worker_restart(server):
    sid = requests.post(server.url + "/sessions", json={"node_id": "metrics-restart"}).json()["session_id"]
    before, _pid = scrape(server)
    sent, pids = observe_on_both_workers(server, sid)
    route = "/sessions/<session_id>/observe"
    target = requests_for(before, route) + sent
    assert wait_for(lambda: requests_for(scrape(server)[0], route) == target)

    # gunicorn replaces a worker that dies; its counts stay, its live gauges go.
    victim = int(sorted(pids)[0])
    os.kill(victim, signal.SIGTERM)

    def replaced():
        samples, pid = scrape(server)
        return pid != str(victim) and samples[("kato_workers", frozenset())] == 2 and samples

    samples = wait_for(replaced)
    assert samples, "the dead worker was not replaced or is still counted as live"
    assert requests_for(samples, route) == target


def test_gzip_through_gunicorn(server):
    sid = requests.post(server.url + "/sessions", json={"node_id": "gzip-e2e"}).json()["session_id"]
    body = gzip.compress(json.dumps({"strings": ["q", "p"]}).encode())

    def chunks():  # no Content-Length: gunicorn hands over a chunked body
        yield body[:7]
        yield body[7:]

    for data in (body, chunks()):
        resp = requests.post(f"{server.url}/sessions/{sid}/observe", data=data,
                             headers={"Content-Encoding": "gzip", "Content-Type": "application/json"})
        assert resp.status_code == 200, resp.text
    assert requests.get(f"{server.url}/sessions/{sid}/stm").json()["stm"] == [["p", "q"], ["p", "q"]]
    metrics = requests.get(server.url + "/metrics?format=prometheus", headers={"Accept-Encoding": "gzip"})
    # requests inflates transparently; the header shows the text travelled gzipped
    assert metrics.headers["Content-Encoding"] == "gzip"
    assert "kato_http_requests_total" in metrics.text
