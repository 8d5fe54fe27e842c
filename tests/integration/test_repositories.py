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


def _node_rows(conn, kb_id):
    """Everything a node stores, without the columns that only say when (sequences of symbols
    and affinity rows name the batch, not the learn)."""
    from sqlalchemy import select

    def rows(table, *columns, order):
        return [tuple(r) for r in conn.execute(select(*(table.c[c] for c in columns))
                                               .where(table.c.kb_id == kb_id).order_by(*(table.c[o] for o in order)))]

    node = repo.get_node(conn, kb_id)
    return {
        "node": {k: node[k] for k in ("change_seq", "generation", "total_unique_patterns",
                                      "total_pattern_frequencies", "total_symbols_in_patterns_frequencies",
                                      "symbol_count")},
        "patterns": rows(repo.patterns_t, "name", "events", "length", "frequency", "emotives", "metadata",
                         "created_seq", "updated_seq", order=("created_seq",)),
        "symbols": rows(repo.symbols_t, "symbol", "frequency", "pattern_member_frequency", order=("symbol",)),
        "affinity": rows(repo.affinity_t, "symbol", "emotive", "total", order=("symbol", "emotive")),
        "vectors": rows(repo.vectors_t, "name", "dim", "components", "created_seq", order=("name",)),
    }


def test_a_batch_of_learns_stores_what_learning_them_one_by_one_stores(kato):
    """learn_patterns (one node lock, a few multi-row statements) against learn_pattern per learn:
    the same rows, counters, sequences and results, with repeated patterns, a pattern already
    stored, emotive windows, metadata, affinity sums whose float additions must keep learn order,
    and vectors (one learned twice)."""
    import random

    from kato_web.engine.pattern import make_learn_request
    from kato_web.services.operations import _pattern_learn

    rng = random.Random(7)
    requests = []
    for k in range(40):
        events = [[f"x{rng.randrange(3)}", f"y{rng.randrange(2)}"]] + [[f"z{rng.randrange(3)}"]] * rng.randrange(2)
        emotives = [{"joy": rng.choice([0.1, 0.2, 0.3, 1e-17]), "fear": -0.7}] if k % 3 else []
        metadata = [{"tag": f"t{k % 4}"}] if k % 5 == 0 else []
        vectors = [[f"VCTR|{k % 3:040d}", [float(k % 3), 1.5]]] if k % 7 == 0 else []
        requests.append(make_learn_request(events, emotives, metadata, vectors))
    assert len({r.hash for r in requests}) < len(requests)  # some patterns recur in the batch
    learns = [_pattern_learn(r, persistence=3) for r in requests]
    with kato.db.transaction() as conn:
        for kb_id in ("one_kato", "batch_kato"):  # both nodes know the first pattern already
            repo.learn_pattern(conn, kb_id, *learns[0][:6], now=1.0)
    with kato.db.transaction() as conn:
        singly = [repo.learn_patterns(conn, "one_kato", [learn], now=2.0).results[0] for learn in learns]
        batched = repo.learn_patterns(conn, "batch_kato", learns, now=2.0).results
        one, batch = _node_rows(conn, "one_kato"), _node_rows(conn, "batch_kato")
    assert batched == singly
    assert [r["is_new"] for r in batched].count(True) == len({r.hash for r in requests}) - 1
    assert batch == one
    assert len(batch["affinity"]) > 0 and len(batch["vectors"]) == 3
    assert max(f for *_, f, _e, _m, _c, _u in batch["patterns"]) > 2


def test_a_batch_learning_more_distinct_patterns_than_one_statement_carries(kato):
    from kato_web.engine.pattern import make_learn_request
    from kato_web.services.operations import _pattern_learn

    learns = [_pattern_learn(make_learn_request([[f"p{k}"], [f"q{k % 7}"]], [], []), persistence=5)
              for k in range(260)] * 2
    with kato.db.transaction() as conn:
        results = repo.learn_patterns(conn, "many_kato", learns, now=3.0).results
        rows = _node_rows(conn, "many_kato")
    assert [r["seq"] for r in results] == list(range(1, 521))
    assert [r["frequency"] for r in results] == [1] * 260 + [2] * 260
    assert rows["node"]["total_unique_patterns"] == 260 and rows["node"]["symbol_count"] == 267
    assert [p[6] for p in rows["patterns"]] == list(range(1, 261))  # created_seq: the first learn's
    assert [p[7] for p in rows["patterns"]] == list(range(261, 521))  # updated_seq: the last learn's


def test_the_view_after_the_first_learns_of_a_batch_is_what_storing_only_those_leaves(kato):
    """An observe-sequence's predictions see its learns before them and none after: the view
    learn_patterns builds from its statements' answers equals what the database holds when only
    the first n learns are stored (read as a worker reads changes), for every n."""
    import random

    from kato_web.engine.pattern import make_learn_request
    from kato_web.services.operations import _pattern_learn

    rng = random.Random(11)
    requests = []
    for k in range(14):
        events = [[f"x{rng.randrange(3)}", f"y{rng.randrange(2)}"]] + [["z"]] * rng.randrange(2)
        emotives = [{"joy": rng.choice([0.1, 0.2, 0.7]), "calm": 0.3}] if k % 2 else []
        requests.append(make_learn_request(events, emotives, [{"k": k}] if k % 4 == 0 else []))
    learns = [_pattern_learn(r, persistence=4) for r in requests]
    for cut in range(len(learns) + 1):
        part, whole = f"part{cut}_kato", f"whole{cut}_kato"
        with kato.db.transaction() as conn:
            for kb_id in (part, whole):  # the same history before the batch
                repo.learn_patterns(conn, kb_id, learns[3:6] + learns[:2], now=1.0)
            before = repo.get_node(conn, part)["change_seq"]
            repo.learn_patterns(conn, part, learns[:cut], now=2.0)
            want = repo.node_changes_since(conn, part, before)
            view = repo.learn_patterns(conn, whole, learns, now=2.0, view_after=cut).view
        node, patterns, symbols, affinities = view
        by_seq = lambda rows: sorted(rows, key=lambda r: r["created_seq"])  # noqa: E731
        assert node == want[0], cut
        assert by_seq(patterns) == by_seq(want[1]), cut
        assert sorted(symbols) == sorted(want[2]), cut
        assert sorted(affinities) == sorted(want[3]), cut
        if cut == 8:
            assert patterns and symbols and affinities
