"""CPU time of one GET /sessions/{id}/predictions on the load suite's 10,000-pattern node.

In process, no server: the node of bench/load_node.py (10,000 patterns, seed 1, 2,000-symbol
Zipf vocabulary) in a SQLite file, the app of ``create_app`` through Flask's test client with
``Accept-Encoding: gzip`` as the locust mix sends it, default session settings (θ = 0.1).
STMs as the mix's users build them: 1-4 observed events of 1-3 symbols from the same
vocabulary (seeded). Reported, as medians over ``--runs`` runs of the per-call medians:

- request: process CPU ms of a whole predictions request (session query, engine, JSON, gzip);
- engine: CPU ms of ``predict`` alone on the worker's index (futures and predictions as JSON);
- gzip: CPU ms of compressing the answer as the app does (ISA-L, ``KATO_GZIP_LEVEL``);
- the engine's per-phase split (``PatternIndex.phase_times``).

    python -m bench.predict_cpu                    # builds /tmp/kato_predict_cpu.db once
    python -m bench.predict_cpu --runs 5 --calls 60 --db /tmp/kato_predict_cpu.db
    python -m bench.predict_cpu --ab e9e7b51       # also: that revision's engine, paired

With ``--ab REV``, REV's ``kato_web/engine`` (exported as bench/engine_ab.py does) predicts on
an index of the same patterns in this process, each STM on both engines in alternating order
(both see the same noise), and the answers are compared byte for byte.

Also writes, with ``--digest``, the SHA-256 of every answer body (decompressed), so two trees
can be checked for byte-identical answers.
"""
from __future__ import annotations

import argparse
import gzip
import hashlib
import os
import random
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.load_node import Vocabulary, load  # noqa: E402

NODE = "load"


def ensure_node(db_path: str, n: int, seed: int) -> str:
    url = f"sqlite:///{db_path}"
    if not os.path.exists(db_path):
        from kato_web.store.migrate import upgrade

        upgrade(url)
        started = time.perf_counter()
        load(url, NODE, n, seed)
        print(f"# loaded {n} patterns in {time.perf_counter() - started:.0f} s into {db_path}",
              file=sys.stderr)
    return url


def make_stms(count: int, seed: int) -> list[list[list[str]]]:
    rng = random.Random(seed)
    vocabulary = Vocabulary()
    return [[vocabulary.event(rng, rng.randint(1, 3)) for _ in range(rng.randint(1, 4))]
            for _ in range(count)]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--db", default="/tmp/kato_predict_cpu.db")
    parser.add_argument("-n", type=int, default=10_000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--calls", type=int, default=40, help="predictions calls per run")
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--digest", help="write each answer's SHA-256 to this file")
    parser.add_argument("--ab", metavar="REV", help="also time REV's engine, paired with this one")
    args = parser.parse_args(argv)

    url = ensure_node(args.db, args.n, args.seed)
    from kato_web import create_app
    from kato_web.config import Config
    from kato_web.engine import index as engine_index
    from kato_web.engine.predictor import PredictConfig, predict
    from kato_web.services import knowledge
    from kato_web.web import gcpause
    from kato_web.web.compression import compressor

    engine_index.warm_up()
    config = Config.from_env()
    config.database_url = url
    app = create_app(config)
    kato = app.extensions["kato"]
    client = app.test_client()
    stms = make_stms(args.calls, 7)
    sessions = []
    for stm in stms:
        sid = client.post("/sessions", json={"node_id": NODE}).get_json()["session_id"]
        for event in stm:
            assert client.post(f"/sessions/{sid}/observe", json={"strings": event}).status_code == 200
        sessions.append(sid)
    headers = {"Accept-Encoding": "gzip"}
    bodies = [client.get(f"/sessions/{sid}/predictions", headers=headers) for sid in sessions]
    plain = [gzip.decompress(b.data) if b.headers.get("Content-Encoding") == "gzip" else b.data
             for b in bodies]
    # The digests leave out the session ids (new each run), so two trees' files compare.
    same_ids = [body.replace(sid.encode(), b"SESSION") for body, sid in zip(plain, sessions)]
    if args.digest:
        Path(args.digest).write_text("".join(hashlib.sha256(b).hexdigest() + "\n" for b in same_ids))
    sizes = [len(b) for b in plain]
    node = knowledge.node_knowledge(kato, _kb_id(kato))
    index, stats = node.index, node.stats()
    cfg = PredictConfig(recall_threshold=0.1)
    engine_stms = [client.get(f"/sessions/{sid}/stm").get_json()["stm"] for sid in sessions]
    compress = compressor(config.gzip_level)

    cpu = time.process_time
    request_runs, engine_runs, gzip_runs, phase_runs = [], [], [], []
    for _ in range(args.runs):
        per = []
        for sid in sessions:
            t0 = cpu()
            client.get(f"/sessions/{sid}/predictions", headers=headers)
            per.append(cpu() - t0)
        request_runs.append(1000 * statistics.median(per))
        per, phases = [], []
        for stm in engine_stms:
            index.phase_times = {}
            t0 = cpu()
            with gcpause.paused():
                result = predict(stm, index, stats, cfg, futures_json=True, predictions_json=True)
                del result
            per.append(cpu() - t0)
            phases.append(index.phase_times)
        index.phase_times = None
        engine_runs.append(1000 * statistics.median(per))
        phase_runs.append({k: 1000 * statistics.median(p.get(k, 0.0) for p in phases)
                           for k in ("candidates", "matching", "ensemble", "ranking_and_top",
                                     "future_potentials")})
        per = []
        for body in plain:
            t0 = cpu()
            compress(body)
            per.append(cpu() - t0)
        gzip_runs.append(1000 * statistics.median(per))
    kato.db.dispose()

    print(f"answers: median {statistics.median(sizes) / 1e6:.2f} MB JSON "
          f"(min {min(sizes) / 1e6:.2f}, max {max(sizes) / 1e6:.2f}), {len(sessions)} STMs")
    print(f"request CPU ms/call, median of runs: {statistics.median(request_runs):.2f}  "
          f"runs {[round(x, 2) for x in request_runs]}")
    print(f"engine  CPU ms/call, median of runs: {statistics.median(engine_runs):.2f}  "
          f"runs {[round(x, 2) for x in engine_runs]}")
    print(f"gzip    CPU ms/call, median of runs: {statistics.median(gzip_runs):.2f}  "
          f"(level {config.gzip_level})")
    print("engine phases (ms, median of runs): " + ", ".join(
        f"{k} {statistics.median(r[k] for r in phase_runs):.2f}" for k in phase_runs[0]))
    if args.ab:
        paired(args.ab, index, stats, engine_stms, args.runs)
    return 0


def paired(rev: str, index, stats, stms, runs: int) -> None:
    """Time REV's engine and this one on the same patterns, alternating; print both medians."""
    import tempfile

    from bench.engine_ab import _engine, export_engine
    from kato_web.engine.predictor import PredictConfig

    with tempfile.TemporaryDirectory() as tmp:
        sys.path.insert(0, tmp)
        module, _record, stats_cls, config_cls = _engine(export_engine(rev, Path(tmp)))
        base_stats = stats_cls(dict(index.pmf()), stats.n_symbols, stats.total_unique_patterns,
                               stats.total_pattern_frequencies)
        base = module.PatternIndex.from_records(list(index.records()), base_stats)
        module.warm_up()
        sides = {"base": (base, base_stats, config_cls(recall_threshold=0.1)),
                 "this": (index, stats, PredictConfig(recall_threshold=0.1))}
        times = {"base": [], "this": []}
        same = True
        cpu = time.process_time
        for r in range(runs):
            for k, stm in enumerate(stms):
                answers = {}
                for label in (("base", "this") if (k + r) % 2 == 0 else ("this", "base")):
                    ix, st, cfg = sides[label]
                    t0 = cpu()
                    predictions, futures = ix.predict(stm, st, cfg, futures_json=True,
                                                      predictions_json=True)
                    times[label].append(1000 * (cpu() - t0))
                    answers[label] = (predictions.text, futures)
                same = same and answers["base"] == answers["this"]
    b, t = statistics.median(times["base"]), statistics.median(times["this"])
    print(f"paired engine CPU ms/call: {rev} {b:.2f}, this tree {t:.2f} (ratio {t / b:.2f}), "
          f"same bytes: {same}")


def _kb_id(kato) -> str:
    from kato_web.services.sessions import kb_id_for

    return kb_id_for(NODE, kato.config.service_name)


if __name__ == "__main__":
    sys.exit(main())
