"""Export and import of a node (issue 14): exact round trip, idempotent, all-or-nothing."""
from __future__ import annotations

import json
import subprocess
import sys

from bench import load_node
from kato_web.services import transfer
from tests.integration.test_load_node import node_state
from tests.support import ROOT


def _comparable(state: dict) -> dict:
    """Everything stored about the node except the internal change sequences (renumbered on
    import, in the same order) and the node's generation."""
    return {"node": state["node"][2:],
            "patterns": sorted(p[:6] for p in state["patterns"]),
            "learn_order": [p[0] for p in sorted(state["patterns"], key=lambda p: p[6])],
            "symbols": [s[:3] for s in state["symbols"]]}


def _answers(client, sid: str) -> list:
    """Full predictions answers for a few STMs and thresholds."""
    out = []
    for stm in ([["s17"], ["s3", "s40"]], [["s5"]], [["joy-a"], ["joy-b"]]):
        for theta in (0.0, 0.2):
            client.post(f"/sessions/{sid}/config", json={"config": {"recall_threshold": theta}})
            client.post(f"/sessions/{sid}/clear-stm")
            for event in stm:
                assert client.post(f"/sessions/{sid}/observe", json={"strings": event}).status_code == 200
            body = client.get(f"/sessions/{sid}/predictions").get_json()
            out.append({k: v for k, v in body.items() if k not in ("timestamp", "time")})
    return out


def _build(client, kato):
    load_node.load(kato, "xfer", 1000, seed=11, batch=200)
    sid = client.post("/sessions", json={"node_id": "xfer"}).get_json()["session_id"]
    for k in range(3):  # emotives and metadata too
        for event in (["joy-a"], ["joy-b"], [f"tail-{k}"]):
            client.post(f"/sessions/{sid}/observe", json={
                "strings": event, "emotives": {"joy": 0.25 * k, "calm": -1.5},
                "metadata": {"source": [f"run-{k}"]}})
        assert client.post(f"/sessions/{sid}/learn").status_code == 200
    return sid


def test_export_clear_import_gives_identical_predictions(client, kato, tmp_path):
    sid = _build(client, kato)
    before_answers = _answers(client, sid)
    assert any(a["predictions"] for a in before_answers)
    before = node_state(kato.db.engine, "xfer_kato")
    path = tmp_path / "xfer.jsonl"
    with open(path, "w", encoding="utf-8") as out:
        header = transfer.export_node(kato.db, "xfer_kato", out)
    assert header["patterns"] == 1003

    client.post(f"/sessions/{sid}/clear-all")
    assert node_state(kato.db.engine, "xfer_kato")["patterns"] == []

    assert transfer.import_file(kato.db, str(path)) == {"node": "xfer_kato", "patterns": 1003,
                                                         "symbols": header["symbols"]}
    after = node_state(kato.db.engine, "xfer_kato")
    assert _comparable(after) == _comparable(before)
    assert _answers(client, sid) == before_answers

    # Importing again changes nothing observable.
    transfer.import_file(kato.db, str(path))
    assert _comparable(node_state(kato.db.engine, "xfer_kato")) == _comparable(before)
    assert _answers(client, sid) == before_answers


def test_malformed_line_is_named_and_nothing_is_imported(client, kato, tmp_path):
    load_node.load(kato, "small", 20, seed=2, batch=20)
    good = tmp_path / "good.jsonl"
    with open(good, "w", encoding="utf-8") as out:
        transfer.export_node(kato.db, "small_kato", out)
    lines = good.read_text(encoding="utf-8").splitlines()
    pattern = json.loads(lines[5])
    cases = {
        "not JSON": lines[:7] + ['{"kind": "pattern", '] + lines[8:],
        "name is not the SHA-1": lines[:7] + [json.dumps({**pattern, "events": [["other"]], "length": 1})]
        + lines[8:],
        "unknown kind 'vectors'": lines[:7] + ['{"kind": "vectors"}'] + lines[7:],
        "frequency must be an integer": lines[:7] + [json.dumps({**pattern, "frequency": "3"})] + lines[8:],
    }
    # The node changes after the export: a refused import must leave it exactly as it is.
    load_node.load(kato, "small", 5, seed=99, batch=5)
    stored = node_state(kato.db.engine, "small_kato")
    for expected, content in cases.items():
        bad = tmp_path / "bad.jsonl"
        bad.write_text("\n".join(content) + "\n", encoding="utf-8")
        try:
            transfer.import_file(kato.db, str(bad))
        except transfer.MalformedExport as err:
            assert err.line == 8, (expected, str(err))
            assert expected in str(err)
        else:
            raise AssertionError(f"{expected}: imported")
        assert node_state(kato.db.engine, "small_kato") == stored
    truncated = tmp_path / "truncated.jsonl"
    truncated.write_text("\n".join(lines[:-3]) + "\n", encoding="utf-8")
    try:
        transfer.import_file(kato.db, str(truncated))
    except transfer.MalformedExport as err:
        assert "truncated" in str(err)
    assert node_state(kato.db.engine, "small_kato") == stored


def test_command_line_round_trip(kato, database_url, tmp_path):
    load_node.load(kato, "cli", 30, seed=5, batch=30)
    before = _comparable(node_state(kato.db.engine, "cli_kato"))
    env = {"KATO_DATABASE_URL": database_url, "PATH": "/usr/bin:/bin"}
    run = lambda *args: subprocess.run([sys.executable, "-m", "kato_web", *args], cwd=ROOT, env=env,  # noqa: E731
                                       capture_output=True, text=True, timeout=300)
    exported = run("export", "cli")  # the node id; its kb_id works too
    assert exported.returncode == 0, exported.stderr
    path = tmp_path / "cli.jsonl"
    path.write_text(exported.stdout, encoding="utf-8")
    assert json.loads(exported.stdout.splitlines()[0])["node"] == "cli_kato"
    imported = run("import", str(path), "--node", "copy_kato")
    assert imported.returncode == 0, imported.stderr
    assert _comparable(node_state(kato.db.engine, "copy_kato")) == before
    path.write_text(exported.stdout.replace('"kind":"symbol"', '"kind":"symbol","x":1', 1), encoding="utf-8")
    refused = run("import", str(path))
    assert refused.returncode == 1 and "nothing imported" in refused.stderr
    assert "line " in refused.stderr and "unknown fields x" in refused.stderr


def test_export_carries_the_kato310_node_data(client, kato, tmp_path):
    # kato-3.10.md decisions 15–17: finalized flag, affinity sums, learned vectors, raw emotives
    sid = client.post("/sessions", json={"node_id": "x310"}).get_json()["session_id"]
    for event, emotives in ((["a"], {"joy": 0.8}), (["b"], {"joy": 0.4, "calm": 0.0})):
        client.post(f"/sessions/{sid}/observe", json={"strings": event, "emotives": emotives,
                                                      "vectors": [[0.1 * len(event), 1 / 3]]})
    client.post(f"/sessions/{sid}/observe", json={"strings": ["c"], "vectors": [[2.5, -0.0, 1e-300]]})
    name = client.post(f"/sessions/{sid}/learn").get_json()["pattern_name"]
    client.post(f"/sessions/{sid}/finalize-training")
    q = {"node_id": "x310"}
    snapshot = lambda: (client.get("/symbols/affinity", query_string=q).get_json(),  # noqa: E731
                        client.get("/symbols/stats", query_string=q).get_json(),
                        client.get(f"/pattern/{name}", query_string=q).get_json(),
                        node_state(kato.db.engine, "x310_kato")["node"][2:])
    before = snapshot()
    assert before[0]["affinities"]["a"] == {"calm": 0.0, "joy": 0.6000000000000001}
    with kato.db.engine.connect() as conn:
        from sqlalchemy import text
        stored = conn.execute(text("SELECT name, dim, components FROM vectors ORDER BY name")).all()
    assert len(stored) == 2
    path = tmp_path / "x310.jsonl"
    with open(path, "w", encoding="utf-8") as out:
        header = transfer.export_node(kato.db, "x310_kato", out)
    assert (header["version"], header["affinities"], header["vectors"]) == (2, 10, 2)  # 5 symbols × 2 emotives
    client.post(f"/sessions/{sid}/clear-all")
    transfer.import_file(kato.db, str(path))
    assert snapshot() == before
    with kato.db.engine.connect() as conn:
        again = conn.execute(text("SELECT name, dim, components FROM vectors ORDER BY name")).all()
    assert [(n, d, bytes(c)) for n, d, c in again] == [(n, d, bytes(c)) for n, d, c in stored]
    # the imported vectors are neighbours again
    client.post(f"/sessions/{sid}/observe", json={"vectors": [[2.5, 0.0, 0.0]]})
    event = client.get(f"/sessions/{sid}/stm").get_json()["stm"][-1]
    assert [n for n, d, _c in stored if n in event] == [n for n, d, _c in stored if d == 3]  # same dimension only


def test_a_version_1_file_still_imports(client, kato, tmp_path):
    load_node.load(kato, "old", 5, seed=3, batch=5)
    path = tmp_path / "v2.jsonl"
    with open(path, "w", encoding="utf-8") as out:
        transfer.export_node(kato.db, "old_kato", out)
    lines = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]
    lines[0]["version"] = 1
    del lines[0]["affinities"], lines[0]["vectors"]
    del lines[1]["finalized"]
    lines[1]["vector_dim"] = 4  # the dimension lock of older files is dropped
    old = tmp_path / "v1.jsonl"
    old.write_text("".join(json.dumps(line) + "\n" for line in lines), encoding="utf-8")
    before = _comparable(node_state(kato.db.engine, "old_kato"))
    assert transfer.import_file(kato.db, str(old), "old_kato")["patterns"] == 5
    assert _comparable(node_state(kato.db.engine, "old_kato")) == before
