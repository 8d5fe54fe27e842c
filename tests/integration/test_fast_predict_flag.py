"""KATO_FAST_PREDICT=0 switches to scoring every pattern directly: the same answers."""
from __future__ import annotations

from kato_web import create_app
from kato_web.engine import index as engine_index
from tests.conftest import make_config
from tests.support import wipe


def _answers(database_url, fast: bool):
    app = create_app(make_config(database_url, fast_predict=fast, warm_up=False))
    try:
        assert engine_index.FAST is fast
        kato = app.extensions["kato"]
        wipe(kato.db.engine)
        client = app.test_client()
        sid = client.post("/sessions", json={"node_id": "flag"}).get_json()["session_id"]
        for events in ([["a", "b"], ["c"], ["d", "e"]], [["a"], ["c", "x"], ["y"]], [["b"], ["d"], ["e"], ["f"]]):
            for event in events:
                client.post(f"/sessions/{sid}/observe", json={"strings": event})
            client.post(f"/sessions/{sid}/learn")
        for event in (["a", "b"], ["c"], ["d"]):
            client.post(f"/sessions/{sid}/observe", json={"strings": event})
        # The session id is the one part that differs between the two runs.
        return client.get(f"/sessions/{sid}/predictions").data.replace(sid.encode(), b"SID")
    finally:
        app.extensions["kato"].db.dispose()
        engine_index.use_compiled(True)


def test_the_direct_path_answers_byte_for_byte_what_the_compiled_path_answers(database_url):
    direct = _answers(database_url, fast=False)
    compiled = _answers(database_url, fast=True)
    assert b'"count":3' in compiled
    assert direct == compiled
