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
        metadata_merge_fn=lambda old, _new: {**old, **(metadata or {})}, now=7.0)


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
