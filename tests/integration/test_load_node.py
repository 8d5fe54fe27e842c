"""bench/load_node.py: its fast direct path leaves exactly the state real learning leaves."""
from __future__ import annotations

import itertools
from collections import Counter

from sqlalchemy import text

from bench import load_node
from kato_web.engine.pattern import pattern_hash


def node_state(engine, kb_id: str) -> dict:
    """Return everything learning stores for a node, minus wall-clock timestamps."""
    with engine.connect() as conn:
        node = conn.execute(text(
            "SELECT change_seq, generation, total_unique_patterns, total_pattern_frequencies, "
            "total_symbols_in_patterns_frequencies, symbol_count FROM nodes WHERE kb_id = :k"), {"k": kb_id}).one()
        patterns = conn.execute(text(
            "SELECT name, events, length, frequency, emotives, metadata, created_seq, updated_seq "
            "FROM patterns WHERE kb_id = :k ORDER BY name"), {"k": kb_id}).all()
        symbols = conn.execute(text(
            "SELECT symbol, frequency, pattern_member_frequency, updated_seq FROM symbols "
            "WHERE kb_id = :k ORDER BY symbol"), {"k": kb_id}).all()
    as_json = lambda v: v if not isinstance(v, str) else __import__("json").loads(v)  # noqa: E731 (SQLite)
    return {"node": tuple(node),
            "patterns": [(p[0], as_json(p[1]), p[2], p[3], as_json(p[4]), as_json(p[5]), p[6], p[7])
                         for p in patterns],
            "symbols": [tuple(s) for s in symbols]}


def test_direct_load_equals_learning_through_the_api(client, kato):
    n, seed = 60, 7
    # The API path: one session, each sequence observed event by event, then learned.
    sid = client.post("/sessions", json={"node_id": "via-api"}).get_json()["session_id"]
    for events in load_node.synthetic_sequences(n, seed):
        for strings in events:
            assert client.post(f"/sessions/{sid}/observe", json={"strings": strings}).status_code == 200
        assert client.post(f"/sessions/{sid}/learn").get_json()["status"] == "learned"
    # The direct path, in transactions of 25 learns.
    result = load_node.load(kato, "direct", n, seed, batch=25)
    assert result == {"node_id": "direct", "kb_id": "direct_kato", "patterns_learned": n}

    via_api, direct = node_state(kato.db.engine, "via_api_kato"), node_state(kato.db.engine, "direct_kato")
    assert direct["node"][2] == n  # n unique patterns
    assert direct == via_api
    # and a predictions call sees the same knowledge either way
    other = client.post("/sessions", json={"node_id": "direct"}).get_json()["session_id"]
    first = next(load_node.synthetic_sequences(1, seed))
    for s in (sid, other):
        client.post(f"/sessions/{s}/clear-stm")
        for strings in first[:2]:
            client.post(f"/sessions/{s}/observe", json={"strings": strings})
    api_pred = client.get(f"/sessions/{sid}/predictions").get_json()["predictions"]
    direct_pred = client.get(f"/sessions/{other}/predictions").get_json()["predictions"]
    assert api_pred and api_pred == direct_pred


def test_sequences_are_reproducible_and_shaped():
    first = list(load_node.synthetic_sequences(300, seed=3))
    assert first == list(load_node.synthetic_sequences(300, seed=3))
    assert first != list(load_node.synthetic_sequences(300, seed=4))
    names = {pattern_hash([sorted(e) for e in events]) for events in first}
    assert len(names) == 300  # duplicates are skipped
    for events in first:
        assert 3 <= len(events) <= 8
        assert all(1 <= len(e) <= 3 and len(set(e)) == len(e) for e in events)
    counts = Counter(itertools.chain.from_iterable(itertools.chain.from_iterable(first)))
    # Zipf: the first-ranked symbol is drawn far more often than the hundredth
    assert counts["s0000"] > 10 * max(counts["s0099"], 1)
