"""bench/bulk_load.py writes exactly the rows real learning writes; the index keeps up with both."""
from __future__ import annotations

from bench import bulk_load, load_node
from kato_web.engine.predictor import PredictConfig, predict
from kato_web.services import knowledge
from tests.integration.test_load_node import node_state


def test_bulk_load_equals_real_learning(kato, database_url):
    n, seed = 120, 5
    load_node.load(kato, "learned", n, seed, batch=40)  # store_learn, one learn at a time
    result = bulk_load.bulk_load(database_url, "bulk", n, seed)
    assert result["patterns_learned"] == n
    learned, bulk = node_state(kato.db.engine, "learned_kato"), node_state(kato.db.engine, "bulk_kato")
    assert bulk["node"][2] == n
    assert bulk == learned


def _records(kato, kb_id):
    with kato.db.transaction(write=False) as conn:
        from kato_web.store import repositories as repo

        rows = sorted(repo.patterns_changed_since(conn, kb_id, -1, 10 ** 12), key=lambda r: r["created_seq"])
    from kato_web.engine.predictor import PatternRecord

    return [PatternRecord(r["name"], r["events"], int(r["frequency"]), r["emotives"] or []) for r in rows]


def test_worker_index_follows_learns_after_a_bulk_load(client, kato, database_url):
    bulk_load.bulk_load(database_url, "grow", 300, 11)
    first = next(load_node.synthetic_sequences(1, 11))
    stm = [sorted(e) for e in first[:3]]
    cached = knowledge.node_knowledge(kato, "grow_kato")
    assert len(cached.index) == 300
    cfg = PredictConfig(recall_threshold=0.1)

    def check():
        fresh = knowledge.node_knowledge(kato, "grow_kato")
        records = _records(kato, "grow_kato")
        want = predict(stm, records, fresh.stats(), cfg)
        with fresh.lock:
            assert predict(stm, fresh.index, fresh.stats(), cfg) == want
        return want

    before = check()
    # A new pattern and a re-learn (frequency 2) through the API: the index refreshes in place.
    sid = client.post("/sessions", json={"node_id": "grow"}).get_json()["session_id"]
    for events in (stm + [["zz-new"]], first):
        for strings in events:
            client.post(f"/sessions/{sid}/observe", json={"strings": strings})
        assert client.post(f"/sessions/{sid}/learn").status_code == 200
    after = check()
    assert after != before
    assert len(knowledge.node_knowledge(kato, "grow_kato").index) == 301
    got = client.get(f"/sessions/{sid}/predictions")
    assert got.status_code == 200


def test_predictions_inside_a_transaction_see_its_own_learns_only(kato, database_url):
    """compute_in_transaction sees the transaction's uncommitted learn; nobody else ever does."""
    from kato_web.engine.pattern import make_learn_request
    from kato_web.services import predict as predict_svc
    from kato_web.services.operations import store_learn

    bulk_load.bulk_load(database_url, "txn", 200, 3)
    stm = [["q-new"], ["r-new"]]
    config = {key: None for key in predict_svc.PREDICTION_KEYS}
    config.update(recall_threshold=0.1, max_predictions=100, use_token_matching=True,
                  rank_sort_algo="potential", filter_pipeline=[])
    committed = knowledge.node_knowledge(kato, "txn_kato")
    assert predict_svc.compute_from_settings(kato, "txn_kato", stm, predict_svc.prediction_settings(config)) == ([], [])

    class Rollback(Exception):
        pass

    request = make_learn_request([["q-new"], ["r-new"], ["s0000"]], [], [])
    try:
        with kato.db.transaction() as conn:
            store_learn(kato, conn, "txn_kato", request, 5)
            inside, futures = predict_svc.compute_in_transaction(conn, "txn_kato", stm, config, ctx=kato)
            assert [p["name"] for p in inside] == [request.hash] and futures[0]["future"] == [["s0000"]]
            # The worker's copy was lent for the call and is back to the committed state.
            assert len(committed.index) == 200 and "q-new" not in committed.index.pmf()
            raise Rollback
    except Rollback:
        pass
    assert predict_svc.compute_from_settings(kato, "txn_kato", stm, predict_svc.prediction_settings(config)) == ([], [])
