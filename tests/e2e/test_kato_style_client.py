"""KATO's users bring their own client: one written from the description of KATO's example
client (kato-3.10.md §5; tests/e2e/kato_style_client.py) runs unchanged against kato-web."""
from __future__ import annotations

import pytest
import requests

from tests.e2e.kato_style_client import KATOClient
from tests.support import Gunicorn

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def server(database_url):
    srv = Gunicorn(database_url, workers=2, threads=2).wait_ready()
    yield srv
    srv.stop()


def test_kato_style_client_runs_unchanged(server):
    # Non-default settings: the constructor sends them as a wrapped config update (§5).
    with KATOClient(server.url, node_id="kato-user", max_predictions=10, recall_threshold=0.2,
                    metadata={"who": "kato-user"}) as kato:
        assert kato.get_root_info()["docs"] == "/docs"
        config = kato.get_session_config()
        assert config["max_predictions"] == 10 and config["recall_threshold"] == 0.2
        assert kato.get_session_info()["metadata"] == {"who": "kato-user"}
        for strings in (["hello"], ["world"], ["again"]):
            assert kato.observe(strings, emotives={"joy": 0.5})["status"] == "okay"
        assert kato.get_stm()["stm"] == [["hello"], ["world"], ["again"]]
        name = kato.learn()["pattern_name"]
        assert name.startswith("PTRN|")
        seq = kato.observe_sequence([{"strings": ["x"]}, {"strings": ["y"]}], learn_at_end=True)
        assert seq["status"] == "completed" and seq["final_learned_pattern"] in seq["auto_learned_patterns"]
        kato.observe(["hello"])
        kato.observe(["world"])
        predictions = kato.get_predictions()["predictions"]
        assert predictions[0]["name"] == name[len("PTRN|"):] and predictions[0]["future"] == [["again"]]
        pattern = kato.get_pattern(name)
        assert pattern["pattern"]["status"] == "okay"
        assert pattern["pattern"]["pattern"]["pattern_data"] == [["hello"], ["world"], ["again"]]
        assert pattern["pattern"]["pattern"]["emotives"][-1]["joy"] == 0.5
        assert "percept_data" in kato.get_percept_data()
        assert "cognition_data" in kato.get_cognition_data()
        finalized = kato.finalize_training()
        assert finalized["status"] == "completed" and finalized["patterns_processed"] == 2
        assert kato.extend_session(600)["status"] == "extended"
        assert kato.clear_stm()["status"] == "cleared"
        # The monitoring routes the example client calls.
        assert kato.health_check()["status"] == "healthy"
        assert "base_processor_id" in kato.get_status()
        assert "cache_performance" in kato.get_cache_stats()
        assert kato.invalidate_cache()["status"] == "success"
        assert kato.get_distributed_stm_stats()["status"] == "disabled"
        assert "performance" in kato.get_metrics()
        assert kato.get_stats(5)["time_range_minutes"] == 5
        assert kato.get_metric_history("kato_requests_total", 5)["metric_name"] == "kato_requests_total"
        assert "status" in kato.get_connection_pools_status()
        session_id = kato.session_id
    # The context manager deleted the session.
    assert requests.get(f"{server.url}/sessions/{session_id}/exists").json()["exists"] is False
