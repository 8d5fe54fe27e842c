"""Expired sessions are deleted (exactly those), one sweeper at a time; the per-worker node
index cache stays within its memory budget without changing any answer (issue 14)."""
from __future__ import annotations

import subprocess
import sys

from sqlalchemy import text

from bench import load_node
from kato_web.services import knowledge, monitoring, sweep
from tests.support import ROOT


def _session_ids(kato) -> set[str]:
    with kato.db.engine.connect() as conn:
        return {r[0] for r in conn.execute(text("SELECT session_id FROM sessions"))}


def _make_sessions(client, clock, n_short: int, n_long: int) -> tuple[set, set]:
    short = {client.post("/sessions", json={"node_id": "sw", "ttl_seconds": 2}).get_json()["session_id"]
             for _ in range(n_short)}
    long = {client.post("/sessions", json={"node_id": "sw", "ttl_seconds": 600}).get_json()["session_id"]
            for _ in range(n_long)}
    return short, long


def test_sweep_deletes_exactly_the_expired_rows(client, kato, clock):
    short, long = _make_sessions(client, clock, 25, 5)
    clock.advance(1)
    assert sweep.sweep_expired_sessions(kato.db, now=clock(), batch=7).deleted == 0
    clock.advance(2)  # the short ones are now at or past expires_at
    result = sweep.sweep_expired_sessions(kato.db, now=clock(), batch=7)
    assert (result.deleted, result.batches) == (25, 4)  # 7 + 7 + 7 + 4
    assert _session_ids(kato) == long
    figures = monitoring.sweep_figures(kato)
    assert figures["last_deleted"] == 25 and figures["total_deleted"] == 25 and figures["last_run_at"]
    body = client.get("/metrics").get_json()
    assert body["session_sweep"]["total_deleted"] == 25
    prom = client.get("/metrics?format=prometheus").get_data(as_text=True)
    assert "kato_session_sweep_deleted_total 25.0" in prom
    assert "kato_session_sweep_last_run_timestamp_seconds" in prom


def test_one_sweeper_per_interval_across_workers(kato, client, clock):
    short, long = _make_sessions(client, clock, 3, 1)
    clock.advance(5)
    # Two workers (two holders) waking in the same interval: only the first sweeps.
    first = sweep.sweep_if_due(kato.db, interval=60, batch=100, clock=clock)
    sweep._holder, real = (lambda: "other-host:1"), sweep._holder
    try:
        assert sweep.sweep_if_due(kato.db, interval=60, batch=100, clock=clock) is None
        clock.advance(61)  # the lease has run out: the other worker takes its turn
        assert sweep.sweep_if_due(kato.db, interval=60, batch=100, clock=clock) is not None
    finally:
        sweep._holder = real
    assert first.deleted == 3 and _session_ids(kato) == long


def test_sweep_sessions_command(client, kato, clock, database_url):
    # Real time here: the command uses the clock of its own process.
    import time

    with kato.db.transaction() as conn:
        conn.execute(text("UPDATE sessions SET expires_at = 0"))
    short, long = _make_sessions(client, clock, 0, 2)
    with kato.db.transaction() as conn:
        conn.execute(text("UPDATE sessions SET expires_at = :t WHERE session_id IN :ids")
                     .bindparams(__import__("sqlalchemy").bindparam("ids", expanding=True)),
                     {"t": time.time() + 600, "ids": sorted(long)})
    expired = {client.post("/sessions", json={"node_id": "sw"}).get_json()["session_id"] for _ in range(4)}
    with kato.db.transaction() as conn:
        conn.execute(text("UPDATE sessions SET expires_at = 1 WHERE session_id IN :ids")
                     .bindparams(__import__("sqlalchemy").bindparam("ids", expanding=True)),
                     {"ids": sorted(expired)})
    proc = subprocess.run([sys.executable, "-m", "kato_web", "sweep-sessions"], cwd=ROOT, timeout=300,
                          env={"KATO_DATABASE_URL": database_url, "PATH": "/usr/bin:/bin"},
                          capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith("deleted 4 expired sessions")
    assert _session_ids(kato) == long


def _predict_all(client, sids, stms):
    out = []
    for sid, stm in zip(sids, stms):
        client.post(f"/sessions/{sid}/clear-stm")
        for event in stm:
            client.post(f"/sessions/{sid}/observe", json={"strings": event})
        out.append(client.get(f"/sessions/{sid}/predictions").get_json()["predictions"])
    return out


def test_index_cache_evicts_least_recently_used_and_answers_stay_identical(client, kato, monkeypatch):
    nodes = ["lru_a", "lru_b", "lru_c"]
    for k, node in enumerate(nodes):
        load_node.load(kato, node, 300, seed=k, batch=300)
    sids = [client.post("/sessions", json={"node_id": n}).get_json()["session_id"] for n in nodes]
    stm = [next(load_node.synthetic_sequences(1, k))[:2] for k in range(3)]  # each node's own start
    unbounded = _predict_all(client, sids, stm)
    assert all(unbounded)
    registry, _lock = knowledge._registry(kato)
    sizes = {k: v.footprint for k, v in registry.items()}
    assert len(sizes) == 3 and all(sizes.values())

    # A budget that holds about two of the three nodes.
    knowledge.forget(kato)
    one = max(sizes.values())
    budget = int(one * 2.5)
    monkeypatch.setattr(knowledge, "_budget", lambda ctx: budget)
    before = monitoring.index_cache_figures(monitoring.samples())
    for _ in range(2):
        assert _predict_all(client, sids, stm) == unbounded
        held = sum(k.footprint for k in registry.values())
        assert held <= budget and len(registry) == 2
        assert list(registry) == [f"{nodes[1]}_kato", f"{nodes[2]}_kato"]  # a, least recent, went
    # A budget smaller than one node: the node in use is still served, alone.
    monkeypatch.setattr(knowledge, "_budget", lambda ctx: 1)
    assert _predict_all(client, sids, stm) == unbounded
    assert len(registry) == 1
    after = monitoring.index_cache_figures(monitoring.samples())
    assert after["evictions"] - before["evictions"] >= 6
    assert after["misses"] > before["misses"] and after["hits"] >= before["hits"]
    assert 0 < after["bytes"] <= one
    prom = client.get("/metrics?format=prometheus").get_data(as_text=True)
    assert 'kato_index_cache_total{result="eviction"}' in prom and "kato_index_cache_bytes " in prom


def test_preloaded_nodes_are_shared_so_no_worker_budget_counts_or_evicts_them(client, kato, monkeypatch):
    # scaling.md "Memory per instance": KATO_PRELOAD_NODES loads nodes in gunicorn's master; the
    # workers share those pages, so they are outside each worker's LRU budget.
    for k, node in enumerate(["pre_big", "pre_x", "pre_y"]):
        load_node.load(kato, node, 300, seed=k, batch=300)
    knowledge.forget(kato)
    loaded = knowledge.preload(kato, ("pre_big", "pre_none"), lambda n: f"{n}_kato")
    assert loaded == [("pre_big_kato", 300), ("pre_none_kato", None)]
    registry, _lock = knowledge._registry(kato)
    assert list(registry) == ["pre_big_kato"] and registry["pre_big_kato"].shared
    index = registry["pre_big_kato"].index
    assert index._indexed == len(index) == 300  # postings built before the fork

    monkeypatch.setattr(knowledge, "_budget", lambda ctx: 1)  # smaller than any node
    stm = [next(load_node.synthetic_sequences(1, k))[:2] for k in range(3)]
    for node, events in zip(["pre_big", "pre_x", "pre_y"], stm):
        sid = client.post("/sessions", json={"node_id": node}).get_json()["session_id"]
        for event in events:
            client.post(f"/sessions/{sid}/observe", json={"strings": event})
        assert client.get(f"/sessions/{sid}/predictions").get_json()["predictions"]
    # The private nodes evict each other; the shared one stays, with the same index object.
    assert list(registry) == ["pre_big_kato", "pre_y_kato"]
    assert registry["pre_big_kato"].index is index

    # A clear-all makes the next load a private copy again, which the budget then governs.
    sid = client.post("/sessions", json={"node_id": "pre_big"}).get_json()["session_id"]
    assert client.post(f"/sessions/{sid}/clear-all").status_code == 200
    client.post(f"/sessions/{sid}/observe", json={"strings": ["a"]})
    client.post(f"/sessions/{sid}/observe", json={"strings": ["b"]})
    client.get(f"/sessions/{sid}/predictions")
    assert not registry["pre_big_kato"].shared
