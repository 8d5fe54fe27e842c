"""What kato-3.10's prediction options cost the engine: one-symbol STMs, finalized nodes,
fuzzy tokens and affinity weights, against the default multi-symbol answer.

One process, one index of N patterns (bench/bulk_load's workload, Zipf vocabulary), the same
seeded STMs as bench/predict_bench.py; every variant is timed on every STM in turn, so all see
the same machine noise. Answers are written as JSON, as the HTTP path asks. The symbols' f(σ)
are their learn counts; one symbol in three gets an affinity sum for "joy".

    python -m bench.options_cost --patterns 10000 --repeats 3
"""
from __future__ import annotations

import argparse
import dataclasses
import random
import statistics
import sys
import time
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.bulk_load import learned_events  # noqa: E402
from bench.load_node import Vocabulary  # noqa: E402
from bench.predict_bench import make_stms  # noqa: E402
from kato_web.engine.index import PatternIndex, warm_up  # noqa: E402
from kato_web.engine.types import PatternRecord, PredictConfig, SymbolStats  # noqa: E402

VARIANTS = {
    "default": ({}, False, False),
    "one symbol": ({}, False, True),
    "finalized node": ({}, True, False),
    "fuzzy τ 0.8": ({"fuzzy_token_threshold": 0.8}, False, False),
    "affinity joy": ({"affinity_emotive": "joy"}, False, False),
}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--patterns", type=int, default=10_000)
    parser.add_argument("--stms", type=int, default=20)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--thresholds", type=float, nargs="+", default=[0.1, 0.3, 0.9])
    args = parser.parse_args(argv)

    rows = list(learned_events(args.patterns, args.seed))
    pmf, frequency = Counter(), Counter()
    for _name, events, _length in rows:
        pmf.update({x for e in events for x in e})
        frequency.update(x for e in events for x in e)
    rng = random.Random(args.seed)
    affinity = {x: {"joy": rng.uniform(-1, 1)} for x in sorted(pmf)[::3]}
    stats = SymbolStats(dict(pmf), len(pmf), args.patterns, args.patterns,
                        frequency=dict(frequency), affinity=affinity)
    index = PatternIndex.from_records((PatternRecord(n, e, 1) for n, e, _ in rows), stats)
    warm_up()
    stms = make_stms(index, Vocabulary(), args.stms, args.seed)
    singles = [[[stm[0][0]]] for stm in stms]
    print(f"{args.patterns} patterns, {len(stms)} STMs x {args.repeats}; engine p50 ms "
          f"(answers as JSON)")
    print("theta  " + "  ".join(f"{name:>14}" for name in VARIANTS))
    for theta in args.thresholds:
        times = {name: [] for name in VARIANTS}
        for _ in range(args.repeats):
            for k in range(len(stms)):
                for name, (options, finalized, one) in VARIANTS.items():
                    cfg = PredictConfig(recall_threshold=theta, **options)
                    node = dataclasses.replace(stats, finalized=finalized)
                    stm = singles[k] if one else stms[k]
                    started = time.perf_counter()
                    index.predict(stm, node, cfg, futures_json=True, predictions_json=True)
                    times[name].append((time.perf_counter() - started) * 1000)
        print(f"{theta:5}  " + "  ".join(f"{statistics.median(t):14.3f}" for t in times.values()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
