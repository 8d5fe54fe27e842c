"""Store-level guarantees that the HTTP tests reach only indirectly."""
from __future__ import annotations

from kato_web.store import repositories as repo


def _learn(conn, kb_id, name="a" * 40):
    return repo.learn_pattern(conn, kb_id, name, [["a"], ["b"]], 2, {"a": 1, "b": 1},
                              emotives_window_fn=lambda old: old, metadata_merge_fn=lambda old, _new: old,
                              now=5.0)


def test_a_learn_on_a_node_without_a_row_creates_it_then_bumps_it(kato):
    with kato.db.transaction() as conn:
        assert repo.get_node(conn, "fresh_kato") is None
        first = _learn(conn, "fresh_kato")
    with kato.db.transaction() as conn:
        node = repo.get_node(conn, "fresh_kato")
        second = _learn(conn, "fresh_kato")
    assert (first["seq"], first["is_new"]) == (1, True)
    assert node["change_seq"] == 1 and node["total_unique_patterns"] == 1 and node["created_at"] == 5.0
    assert (second["seq"], second["is_new"], second["frequency"]) == (2, False, 2)


def _learn_events(conn, kb_id, events, emotives=None, metadata=None):
    from kato_web.engine.pattern import pattern_hash

    counts: dict[str, int] = {}
    for event in events:
        for symbol in event:
            counts[symbol] = counts.get(symbol, 0) + 1
    return repo.learn_pattern(
        conn, kb_id, pattern_hash(events), events, sum(map(len, events)), counts,
        emotives_window_fn=lambda old: old + [emotives] if emotives else old,
        metadata_merge_fn=lambda old, _new: {**old, **(metadata or {})}, now=7.0, affinity=emotives)


def _symbol_rows(conn, kb_id):
    from sqlalchemy import select

    t = repo.symbols_t
    return {r.symbol: (r.frequency, r.pattern_member_frequency)
            for r in conn.execute(select(t.c.symbol, t.c.frequency, t.c.pattern_member_frequency)
                                  .where(t.c.kb_id == kb_id))}


def test_learning_counts_symbols_across_upsert_batches(kato):
    # More distinct symbols than one upsert statement carries (500): the new-symbol count, the
    # frequencies and the pattern membership must add up across the batches.
    wide = [[f"w{k:04d}" for k in range(j, j + 3)] for j in range(0, 1203, 3)] + [["w0000"]]
    with kato.db.transaction() as conn:
        first = _learn_events(conn, "wide_kato", wide)
    with kato.db.transaction() as conn:
        again = _learn_events(conn, "wide_kato", wide)
        other = _learn_events(conn, "wide_kato", [["w0000", "w0001"], ["new1", "new2"], ["new3"]])
        node = repo.get_node(conn, "wide_kato")
        symbols = _symbol_rows(conn, "wide_kato")
    assert first["is_new"] and not again["is_new"] and again["frequency"] == 2 and other["is_new"]
    assert node["symbol_count"] == 1206 == len(symbols)
    assert node["total_unique_patterns"] == 2
    assert node["total_symbols_in_patterns_frequencies"] == 2 * 1204 + 5
    assert symbols["w0000"] == (2 + 2 + 1, 2)  # twice in `wide`, learned twice; once in `other`
    assert symbols["w0600"] == (2, 1) and symbols["new3"] == (1, 1)


def test_learned_json_values_round_trip(kato):
    events = [["a\"q", "é"], ["back\\slash", "✓"]]
    with kato.db.transaction() as conn:
        _learn_events(conn, "json_kato", events, emotives={"joy": 0.25}, metadata={"tag": ["x", "ü"]})
        result = _learn_events(conn, "json_kato", events, emotives={"joy": -1.5})
        from kato_web.engine.pattern import pattern_hash

        row = repo.get_pattern(conn, "json_kato", pattern_hash(events))
    assert result["frequency"] == 2
    assert row["events"] == events
    assert row["emotives"] == [{"joy": 0.25}, {"joy": -1.5}]
    assert row["metadata"] == {"tag": ["x", "ü"]}


def test_node_changes_since_reads_what_the_snapshot_reads_in_one_statement(kato):
    with kato.db.transaction() as conn:
        _learn_events(conn, "chg_kato", [["a"], ["b"]])
    with kato.db.transaction() as conn:
        after = repo.get_node(conn, "chg_kato")["change_seq"]
        _learn_events(conn, "chg_kato", [["a"], ["b"]], emotives={"joy": 1.0})  # an update
        _learn_events(conn, "chg_kato", [["c", "é"], ["a"]])  # a new pattern, new symbols
    with kato.db.transaction(write=False, snapshot=True) as conn:
        node = repo.get_node(conn, "chg_kato")
        upto = node["change_seq"]
        want = (repo.patterns_changed_since(conn, "chg_kato", after, upto),
                repo.symbols_changed_since(conn, "chg_kato", after, upto),
                repo.affinity_changed_since(conn, "chg_kato", after, upto))
    with kato.db.statements(write=False) as conn:
        got_node, patterns, symbols, affinities = repo.node_changes_since(conn, "chg_kato", after)
        missing = repo.node_changes_since(conn, "no_such_kato", 0)
    by_seq = lambda rows: sorted(rows, key=lambda r: r["created_seq"])  # noqa: E731
    assert by_seq(patterns) == by_seq(want[0]) and len(patterns) == 2
    assert sorted(symbols) == sorted(want[1]) and {s for s, *_ in symbols} == {"a", "b", "c", "é"}
    assert got_node == {k: node[k] for k in ("change_seq", "generation", "symbol_count",
                                             "total_unique_patterns", "total_pattern_frequencies", "finalized")}
    assert [p["emotives"] for p in by_seq(patterns)][0] == [{"joy": 1.0}]
    # kato-3.10.md §1.4c: the re-learn with emotives added to both symbols' affinity
    assert sorted(affinities) == want[2] == [("a", "joy", 1.0), ("b", "joy", 1.0)]
    assert missing == (None, [], [], [])


def test_a_worker_copy_refreshed_step_by_step_equals_a_fresh_load(kato):
    # Learns from "another worker" (this process's store, not its copy), applied incrementally
    # from one statement each time, give the index a full reload gives; after a clear-all (a
    # new generation) the copy reloads.
    from kato_web.engine.predictor import PredictConfig, predict
    from kato_web.services import knowledge

    from kato_web.services import monitoring

    copy = knowledge.node_knowledge(kato, "step_kato")
    def refreshes():
        # The background flush moves pending counts into the registry at any moment (a loaded
        # machine makes this loop outlast its period): flush, then read the registry's total.
        monitoring.flush()
        return monitoring.KNOWLEDGE.labels("refresh")._value.get()

    before = refreshes()
    for k in range(12):
        with kato.db.transaction() as conn:
            _learn_events(conn, "step_kato", [[f"s{k % 5}"], [f"t{k % 3}", "u"], ["v"]],
                          emotives={"e": float(k)} if k % 4 == 0 else None)
        copy = knowledge.node_knowledge(kato, "step_kato")
        fresh = knowledge.NodeKnowledge("step_kato")
        knowledge.refresh(kato, fresh)  # a first load: the snapshot path
        stm, cfg = [["s1"], ["t1", "u"]], PredictConfig(recall_threshold=0.1)
        with copy.lock:
            assert predict(stm, copy.index, copy.stats(), cfg) == predict(stm, fresh.index, fresh.stats(), cfg)
            assert (copy.seq, copy.n_symbols, copy.total_unique_patterns) == (
                fresh.seq, fresh.n_symbols, fresh.total_unique_patterns)
    assert len(copy.index) == 12  # (k mod 5, k mod 3) differ for k < 15: every learn was new
    # The first learn created the node (a load); the eleven after it were applied incrementally.
    assert refreshes() - before == 11
    with kato.db.transaction() as conn:
        repo.clear_node(conn, "step_kato", 9.0)
        _learn_events(conn, "step_kato", [["new"], ["one"]])
    copy = knowledge.node_knowledge(kato, "step_kato")
    assert len(copy.index) == 1 and copy.n_symbols == 2
