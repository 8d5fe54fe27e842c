"""The Python client (clients/python) against a live gunicorn, on the test database.

Its README walkthrough runs as written; its answers are the document's shapes; its errors
are typed; it retries only where that is safe (checked against a scripted HTTP server that
answers 503, or breaks the connection, and counts what it received).
"""
from __future__ import annotations

import contextlib
import dataclasses
import io
import os
import re
import socket
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import httpx
import pytest

import kato_web_client as kwc
from kato_web_client import models
from tests.support import ROOT, Gunicorn, free_port

pytestmark = pytest.mark.e2e

CLIENT_README = ROOT / "clients" / "python" / "README.md"


@pytest.fixture(scope="module")
def server(database_url):
    srv = Gunicorn(database_url, workers=2, threads=2).wait_ready()
    yield srv
    srv.stop()


@pytest.fixture
def kato(server):
    with kwc.Client(server.url) as client:
        yield client


def readme_python_blocks(path) -> list[str]:
    return re.findall(r"```python\n(.*?)```", path.read_text(), flags=re.S)


def test_readme_walkthrough_runs(server, monkeypatch):
    blocks = readme_python_blocks(CLIENT_README)
    assert blocks, "the client README has no python walkthrough"
    monkeypatch.setenv("KATO_URL", server.url)
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        exec(compile(blocks[0], str(CLIENT_README), "exec"), {})
    lines = out.getvalue().splitlines()
    assert lines[0] == "healthy"
    assert re.fullmatch(r"PTRN\|[0-9a-f]{40}", lines[1])
    name, rest = lines[2].split(" ", 1)
    assert name == lines[1][5:] and rest == "[['again']] 0.8"
    assert lines[3] == "1"


def test_session_walkthrough_and_typed_answers(kato):
    with kato.session("client-node", metadata={"app": "test"}, ttl_seconds=600, max_predictions=7,
                      recall_threshold=0.2) as session:
        assert session.config()["max_predictions"] == 7
        assert session.info().metadata == {"app": "test"}
        first = session.observe(["b", "a"], emotives={"joy": 1.0}, metadata={"k": "v"})
        assert isinstance(first, kwc.ObserveResult) and first.stm_length == 1 and first.time == 1
        seq = session.observe_sequence([["c"], {"strings": ["d"], "unique_id": "mine"}])
        assert seq.results[1].unique_id == "mine" and seq.final_stm_length == 3
        assert session.stm() == [["a", "b"], ["c"], ["d"]]
        learned = session.learn()
        assert learned.pattern_name.startswith("PTRN|") and session.stm() == []
        session.observe(["a"])
        session.observe(["b"])
        predictions = session.predictions()
        assert len(predictions) == 1 and isinstance(predictions[0], kwc.Prediction)
        best = predictions[0]
        assert best.pattern_name == learned.pattern_name and best.future == [["c"], ["d"]]
        assert best.emotives == {"joy": 1.0} and best.extra == {}
        assert predictions.future_potentials[0].future == [["c"], ["d"]]
        pattern = session.pattern(learned.pattern_name)
        assert pattern.pattern_data == [["a", "b"], ["c"], ["d"]] and pattern.frequency == 1
        assert kato.pattern("client-node", "PTRN|" + "0" * 40) is None
        assert session.percept_data()["strings"] == ["b"]
        assert session.cognition_data()["short_term_memory"] == [["a"], ["b"]]
        session.extend(120)
        assert session.exists()
        session.clear_stm()
        assert session.stm() == []
        sid = session.session_id
        assert kato.attach(sid).node_id == "client-node"
    assert not kato.session_exists(sid)  # the context manager deleted it
    with pytest.raises(kwc.SessionNotFound) as missing:
        kato.attach(sid)
    assert missing.value.session_id == sid and missing.value.status == 404


def test_node_knowledge_and_finalize(kato):
    """Symbol statistics, affinity and finalize-training (kato-3.10.md §1.1) through the client."""
    with kato.session("client-symbols", affinity_emotive="joy") as session:
        for strings, joy in ((["a", "b"], 1.0), (["c"], 0.5)):
            session.observe(strings, emotives={"joy": joy})
        session.learn()
        session.observe(["a", "b"])
        session.observe(["d"])
        session.learn()
        stats = session.symbol_stats()
        assert isinstance(stats["a"], kwc.SymbolStats)
        assert (stats["a"].frequency, stats["a"].pattern_member_frequency) == (2, 2)
        assert (stats["c"].frequency, stats["c"].pattern_member_frequency) == (1, 1)
        affinities = session.affinity()
        assert set(affinities) >= {"a", "b", "c"} and set(affinities["a"]) == {"joy"}
        assert session.affinity("a") == affinities["a"]
        assert session.affinity("never-seen") == {}
        assert kato.symbol_stats("no-such-node") == {}
        finalized = session.finalize_training()
        assert isinstance(finalized, kwc.FinalizeResult)
        assert finalized.status == "completed" and finalized.patterns_processed == 2
        assert finalized.node_id == "client-symbols" and finalized.time_ms >= 0


def test_answers_match_the_document(kato):
    """Every field of the client's dataclasses is a property of the document's schema, and back."""
    schemas = kato.openapi()["components"]["schemas"]
    pairs = {models.SessionInfo: "SessionResponse", models.ObserveResult: "ObserveResult",
             models.ObserveSequenceResult: "ObserveSequenceResult", models.SequenceItemResult: "SequenceItemResult",
             models.LearnResult: "LearnResult", models.Prediction: "Prediction",
             models.FuturePotential: "FuturePotential", models.Pattern: "Pattern",
             models.SymbolStats: "SymbolStats", models.FinalizeResult: "FinalizeResult"}
    for cls, name in pairs.items():
        fields = {f.name for f in dataclasses.fields(cls)} - {"extra"}
        assert fields == set(schemas[name]["properties"]), (cls.__name__, fields ^ set(schemas[name]["properties"]))
    predictions = {f.name for f in dataclasses.fields(models.Predictions)} - {"extra"}
    assert predictions <= set(schemas["PredictionsResponse"]["properties"])


def test_errors_are_typed(kato):
    with kato.session("client-errors") as session:
        with pytest.raises(kwc.BadRequest) as empty:
            session.learn()  # empty STM (api.md §7.3.4)
        assert "empty" in empty.value.message.lower()
        with pytest.raises(kwc.ConfigurationError) as bad:
            session.update_config(max_predictions=0, recall_threshold=2)
        assert set(bad.value.validation_errors) == {"max_predictions", "recall_threshold"}
        with pytest.raises(kwc.ValidationError) as invalid:
            kato.request("POST", f"/sessions/{session.session_id}/observe", {"strings": [1]})
        assert invalid.value.items[0]["loc"] == ["body", "strings", 0]
        assert invalid.value.items[0]["type"] == "string_type"
        with pytest.raises(TypeError):
            session.observe("hello")  # one string is not a list of symbols
    with pytest.raises(kwc.ConfigurationError):
        kato.session("client-errors", persistence=0)
    with pytest.raises(kwc.SessionNotFound):
        kwc.Session(kato, "session-gone", "x").observe(["a"])
    with pytest.raises(kwc.NotFound) as no_metric:
        kato.request("GET", "/metrics/no_such_metric")
    assert not isinstance(no_metric.value, kwc.SessionNotFound)


def test_large_bodies_are_sent_gzipped(server):
    seen = []

    class Recording(httpx.HTTPTransport):
        def handle_request(self, request):
            seen.append((request.url.path, request.headers.get("Content-Encoding")))
            return super().handle_request(request)

    with kwc.Client(server.url, gzip_min_bytes=2048, transport=Recording()) as kato, \
            kato.session("client-gzip") as session:
        symbols = [f"symbol-{i:05d}" for i in range(400)]
        session.observe(symbols)
        session.observe(["small"])
        assert session.stm() == [sorted(symbols), ["small"]]
    observes = [encoding for path, encoding in seen if path.endswith("/observe")]
    assert observes == ["gzip", None]


class Scripted(BaseHTTPRequestHandler):
    """Answers from a script per method: 'ok', '503', or 'drop' (close without answering)."""

    script: dict = {}
    received: list = []

    def log_message(self, *args):
        pass

    def _handle(self):
        length = int(self.headers.get("Content-Length") or 0)
        if length:
            self.rfile.read(length)
        self.received.append((self.command, self.path))
        action = self.script[self.command].pop(0) if self.script[self.command] else "ok"
        if action == "drop":
            self.connection.shutdown(socket.SHUT_RDWR)
            self.close_connection = True
            return
        status, body = (503, b'{"detail": "busy"}') if action == "503" else (200, b'{"stm": [], "status": "okay"}')
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        if status == 503:
            self.send_header("Retry-After", "0.05")
        self.end_headers()
        self.wfile.write(body)

    do_GET = do_POST = do_DELETE = _handle


@pytest.fixture
def scripted():
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Scripted)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    Scripted.received = []
    yield httpd, f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()
    httpd.server_close()


def test_reads_are_retried_after_503_and_broken_connections(scripted):
    _httpd, url = scripted
    Scripted.script = {"GET": ["503", "drop", "ok"], "POST": [], "DELETE": []}
    with kwc.Client(url, retries=2, backoff=0.01) as kato:
        assert kwc.Session(kato, "s1", "n").stm() == []
    assert len(Scripted.received) == 3


def test_503_is_raised_with_retry_after_once_retries_are_spent(scripted):
    _httpd, url = scripted
    Scripted.script = {"GET": ["503", "503"], "POST": [], "DELETE": []}
    with kwc.Client(url, retries=1, backoff=0.01) as kato, pytest.raises(kwc.ServiceUnavailable) as busy:
        kwc.Session(kato, "s1", "n").stm()
    assert busy.value.retry_after == 0.05 and len(Scripted.received) == 2


def test_an_observe_is_never_retried_once_sent(scripted):
    _httpd, url = scripted
    Scripted.script = {"GET": [], "POST": ["drop"], "DELETE": []}
    with kwc.Client(url, retries=3, backoff=0.01) as kato:
        session = kwc.Session(kato, "s1", "n")
        with pytest.raises(kwc.ConnectionFailed) as broken:
            session.observe(["a"])
        assert broken.value.sent is True
        assert len(Scripted.received) == 1  # the server saw it once, the client did not repeat it
        Scripted.script["POST"] = ["503"]
        with pytest.raises(kwc.ServiceUnavailable):
            session.observe(["a"])
        assert len(Scripted.received) == 2


def test_unreachable_server_is_retried_then_reported_unsent():
    url = f"http://127.0.0.1:{free_port()}"  # nothing listens there
    with kwc.Client(url, retries=2, backoff=0.01) as kato, pytest.raises(kwc.ConnectionFailed) as down:
        kwc.Session(kato, "s1", "n").observe(["a"])
    assert down.value.sent is False


def test_api_key_is_sent(scripted):
    _httpd, url = scripted
    Scripted.script = {"GET": [], "POST": [], "DELETE": []}
    headers = []
    original = Scripted._handle

    def capture(self):
        headers.append(self.headers.get("X-API-Key"))
        original(self)
    Scripted.do_GET = capture
    try:
        with kwc.Client(url, api_key="k-123") as kato:
            kato.request("GET", "/health")
    finally:
        Scripted.do_GET = original
    assert headers == ["k-123"]
