"""Paired A/B of the prediction engine: another git revision's engine against this tree's.

A shared machine makes back-to-back benchmark runs differ by more than a refactor could; this
times both engines in ONE process on the same index and STMs, each STM on both in alternating
order, so both sides see the same noise. The other revision's ``kato_web/engine`` is exported
with ``git archive`` into a temporary package (the engine imports nothing else of kato_web).
It also checks that both give the same bytes for every answer.

    python -m bench.engine_ab --rev a2a7fa3 --patterns 10000 --repeats 5
"""
from __future__ import annotations

import argparse
import importlib
import io
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.bulk_load import learned_events  # noqa: E402
from bench.load_node import Vocabulary  # noqa: E402
from bench.predict_bench import THRESHOLDS, make_stms  # noqa: E402


def export_engine(rev: str, into: Path) -> str:
    """Unpack ``rev``'s kato_web/engine as the package ``engine_<rev>`` under ``into``."""
    name = "engine_" + "".join(c if c.isalnum() else "_" for c in rev)
    raw = subprocess.run(["git", "archive", rev, "kato_web/engine"], cwd=ROOT, check=True,
                         capture_output=True).stdout
    with tarfile.open(fileobj=io.BytesIO(raw)) as tar:
        for member in tar.getmembers():
            if member.isfile():
                target = into / name / Path(member.name).relative_to("kato_web/engine")
                target.parent.mkdir(parents=True, exist_ok=True)
                target.write_bytes(tar.extractfile(member).read())
    return name


def _engine(package: str):
    """Return (index module, PatternRecord, SymbolStats, PredictConfig) of an engine package."""
    index = importlib.import_module(f"{package}.index")
    predictor = importlib.import_module(f"{package}.predictor")  # re-exports the shared types
    return index, predictor.PatternRecord, predictor.SymbolStats, predictor.PredictConfig


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rev", required=True, help="the git revision to compare against")
    parser.add_argument("--patterns", type=int, default=10_000)
    parser.add_argument("--stms", type=int, default=40)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)

    rows = list(learned_events(args.patterns, args.seed))
    pmf = Counter()
    for _name, events, _length in rows:
        pmf.update({x for e in events for x in e})
    with tempfile.TemporaryDirectory() as tmp:
        sys.path.insert(0, tmp)
        sides = {}
        for label, package in (("base", export_engine(args.rev, Path(tmp))), ("this", "kato_web.engine")):
            index, record, stats_cls, config = _engine(package)
            stats = stats_cls(dict(pmf), len(pmf), args.patterns, args.patterns)
            built = index.PatternIndex.from_records((record(n, e, 1) for n, e, _ in rows), stats)
            index.warm_up()
            sides[label] = (built, stats, config)
        stms = make_stms(sides["this"][0], Vocabulary(), args.stms, args.seed)
        print(f"{args.patterns} patterns, {len(stms)} STMs x {args.repeats}; engine p50 in ms "
              f"(futures and predictions written as JSON, as the HTTP path asks)")
        print("theta   base    this   this/base  same bytes")
        for theta in THRESHOLDS:
            times = {"base": [], "this": []}
            same = True
            for r in range(args.repeats):
                for k, stm in enumerate(stms):
                    order = ("base", "this") if (k + r) % 2 == 0 else ("this", "base")
                    answers = {}
                    for label in order:
                        built, stats, config = sides[label]
                        cfg = config(recall_threshold=theta)
                        started = time.perf_counter()
                        predictions, futures = built.predict(stm, stats, cfg, futures_json=True,
                                                             predictions_json=True)
                        times[label].append((time.perf_counter() - started) * 1000)
                        answers[label] = (predictions.text, futures)
                    same = same and answers["base"] == answers["this"]
            base, this = statistics.median(times["base"]), statistics.median(times["this"])
            print(f"{theta:5} {base:7.3f} {this:7.3f} {this / base:9.2f}  {same}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
