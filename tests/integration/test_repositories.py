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
