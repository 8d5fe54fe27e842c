"""Next-event accuracy of kato-web against CPT+ and simple baselines (docs/accuracy.md).

    .venv/bin/python -m bench.accuracy            # the documented run (a few minutes)
    .venv/bin/python -m bench.accuracy --quick    # a smoke run (seconds)

Protocol, metrics and the settings sweep live in kato_web/services/evaluation.py (shared with
the admin page's evaluate mode). Per data set: a seeded 80/20 split of the sequences; the
training sequences are learned as patterns in-process (no HTTP, no database); one query per
test sequence (seeded cut point, up to ``--context`` events of context, the next event as the
truth); then kato-web at every recall_threshold × max_predictions × rank_sort_algo, CPT+ (the
``cpt`` package), a first-order Markov model and the most frequent events, on the same queries.
Writes docs/accuracy.json (every row), docs/accuracy-tables.md and the PNG plots.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import time
from datetime import datetime, timezone
from pathlib import Path

from bench import accuracy_data as data
from kato_web.engine import index as engine_index
from kato_web.services import evaluation as ev

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"
RANK_ALGOS = ("potential", "similarity", "frequency", "bayesian_posterior")
# CPT+ settings chosen on a pilot run on KOSARAK (its best of a few): noise reduction on, and
# the last 3 events as the query (CPT looks for training sequences holding every query item).
CPT_SETTINGS = {"noise_ratio": 0.1, "MBR": 5}
CPT_CONTEXT = 3


class CptPeer:
    """CPT+ through the ``cpt`` package, on the last few events of each query."""

    name = "CPT+"

    def __init__(self, train, context: int = CPT_CONTEXT, **settings):
        from cpt.cpt import Cpt

        self.context = context
        self.model = Cpt(**settings)
        self.model.fit([[ev.event_key(e) for e in s] for s in train])

    def guesses(self, context, k):
        query = [ev.event_key(e) for e in context][-self.context:]
        # One query per call and one thread, so the time per query compares with the others.
        return [tuple(g) for g in self.model.predict_k([query], k, multithreading=False)[0]]


def datasets(quick: bool, kosarak_size: int) -> dict:
    n = 400 if quick else 2000
    sets = {name: make(n=n) for name, make in data.SYNTHETIC.items()}
    try:
        sets = {"kosarak": data.kosarak(limit=2000 if quick else kosarak_size, seed=0), **sets}
    except FileNotFoundError as err:
        print(f"(skipping KOSARAK: {err})")
    return sets


def run(args) -> dict:
    engine_index.warm_up()
    thresholds = (0.0, 0.3, 0.6) if args.quick else ev.THRESHOLDS
    algos = ("potential",) if args.quick else RANK_ALGOS
    results = {"date": datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
               "machine": f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}",
               "settings": {"test_share": args.test_share, "seed": args.seed, "queries": args.queries,
                            "context": args.context, "k": args.k, "thresholds": list(thresholds),
                            "max_predictions": list(ev.MAX_PREDICTIONS), "rank_sort_algos": list(algos),
                            "cpt": {**CPT_SETTINGS, "context": CPT_CONTEXT}},
               "datasets": {}}
    for name, sequences in datasets(args.quick, args.kosarak_size).items():
        started = time.perf_counter()
        train, test = ev.split(sequences, args.test_share, args.seed)
        queries = ev.make_queries(test, args.seed, args.context,
                                  limit=min(args.queries, 150) if args.quick else args.queries)
        index, stats = ev.build_knowledge(train)
        spec = ev.SweepSpec(thresholds=thresholds, max_predictions=ev.MAX_PREDICTIONS,
                            rank_sort_algos=algos, k=args.k)
        rows = ev.sweep(index, stats, queries, spec)
        peers = [ev.evaluate_baseline(CptPeer(train, **CPT_SETTINGS), queries, args.k),
                 ev.evaluate_baseline(ev.MarkovBaseline(train), queries, args.k),
                 ev.evaluate_baseline(ev.PopularBaseline(train), queries, args.k)]
        results["datasets"][name] = {
            "sequences": len(sequences), "train": len(train), "patterns": len(index),
            "symbols": stats.n_symbols, "queries": len(queries),
            "mean_length": sum(len(s) for s in sequences) / max(1, len(sequences)),
            "bayes_hit1": data.BAYES_HIT1.get(name), "rows": rows, "peers": peers,
            "best": {algo: ev.suggest(rows, "predictions", algo) for algo in algos}
            | {"futures": ev.suggest(rows, "futures", "potential")},
            "seconds": time.perf_counter() - started}
        best = results["datasets"][name]["best"]["potential"]
        print(f"{name}: {len(queries)} queries, {len(index)} patterns, "
              f"{results['datasets'][name]['seconds']:.1f} s; kato best hit@1 {best['hit1']:.3f} "
              f"(θ={best['threshold']}, m={best['max_predictions']}); "
              + ", ".join(f"{p['model']} {p['hit1']:.3f}" for p in peers), flush=True)
    return results


# ---------------------------------------------------------------- report

def _pct(x: float) -> str:
    return f"{100 * x:.1f}"


def tables(results: dict) -> str:
    out = [f"# Accuracy benchmark: generated tables\n",
           f"Written by `python -m bench.accuracy` on {results['date']} ({results['machine']}; a "
           f"machine shared with other developers' work, so times are indicative). Figures are % of "
           f"queries; times are the median milliseconds of one in-process prediction call. "
           f"Protocol and reading: [accuracy.md](accuracy.md).\n"]
    for name, d in results["datasets"].items():
        out.append(f"## {name}\n")
        out.append(f"{d['sequences']} sequences (mean length {d['mean_length']:.1f} events), "
                   f"{d['train']} learned as {d['patterns']} patterns over {d['symbols']} symbols, "
                   f"{d['queries']} queries"
                   + (f"; best possible hit@1 ≈ {_pct(d['bayes_hit1'])}" if d["bayes_hit1"] else "") + ".\n")
        out.append("| predictor | hit@1 | hit@5 | coverage | MRR | ms/query |")
        out.append("|---|---:|---:|---:|---:|---:|")
        for algo, row in d["best"].items():
            if row is None:
                continue
            label = ("kato-web future_potentials" if algo == "futures" else
                     f"kato-web predictions, {algo}") + f" (θ={row['threshold']}"
            label += f", max_predictions={row['max_predictions']})" if row["max_predictions"] else ")"
            out.append(f"| {label} | {_pct(row['hit1'])} | {_pct(row['hitk'])} | {_pct(row['coverage'])} "
                       f"| {row['mrr']:.3f} | {row['ms_median']:.2f} |")
        for p in d["peers"]:
            out.append(f"| {p['model']} | {_pct(p['hit1'])} | {_pct(p['hitk'])} | {_pct(p['coverage'])} "
                       f"| {p['mrr']:.3f} | {p['ms_median']:.3f} |")
        out.append("")
        out.append("By threshold (rank_sort_algo potential; predictions at max_predictions 1 / 10 / 100, "
                   "then future_potentials):\n")
        out.append("| θ | hit@1 m=1 | hit@1 m=10 | hit@5 m=10 | hit@5 m=100 | coverage m=1 | coverage m=100 "
                   "| futures hit@1 | futures hit@5 | predictions per call | ms/query |")
        out.append("|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
        rows = [r for r in d["rows"] if r["rank_sort_algo"] == "potential"]
        for theta in sorted({r["threshold"] for r in rows}):
            at = {(r["source"], r["max_predictions"]): r for r in rows if r["threshold"] == theta}
            p1, p10, p100 = (at.get(("predictions", m)) for m in (1, 10, 100))
            fut = at[("futures", None)]
            out.append(f"| {theta:.1f} | {_pct(p1['hit1'])} | {_pct(p10['hit1'])} | {_pct(p10['hitk'])} "
                       f"| {_pct(p100['hitk'])} | {_pct(p1['coverage'])} | {_pct(p100['coverage'])} "
                       f"| {_pct(fut['hit1'])} | {_pct(fut['hitk'])} | {fut['predictions_mean']:.1f} "
                       f"| {fut['ms_median']:.2f} |")
        out.append("")
        algos = sorted({r["rank_sort_algo"] for r in d["rows"]})
        if len(algos) > 1:
            out.append("hit@1 by rank_sort_algo (predictions, max_predictions 10):\n")
            out.append("| θ | " + " | ".join(algos) + " |")
            out.append("|---:|" + "---:|" * len(algos))
            for theta in sorted({r["threshold"] for r in d["rows"]}):
                cells = []
                for algo in algos:
                    row = next(r for r in d["rows"] if r["rank_sort_algo"] == algo and r["threshold"] == theta
                               and r["max_predictions"] == 10)
                    cells.append(_pct(row["hit1"]))
                out.append(f"| {theta:.1f} | " + " | ".join(cells) + " |")
            out.append("")
    return "\n".join(out) + "\n"


def plots(results: dict, folder: Path) -> list[Path]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = list(results["datasets"])
    written = []
    fig, axes = plt.subplots(2, len(names), figsize=(4.2 * len(names), 7), squeeze=False)
    for col, name in enumerate(names):
        d = results["datasets"][name]
        rows = d["rows"]
        ax, cov = axes[0][col], axes[1][col]
        thetas = sorted({r["threshold"] for r in rows})

        def series(source, m, metric, algo="potential"):
            return [next(r[metric] for r in rows if r["threshold"] == t and r["source"] == source
                         and r["max_predictions"] == m and r["rank_sort_algo"] == algo) for t in thetas]

        for algo in sorted({r["rank_sort_algo"] for r in rows}):
            ax.plot(thetas, series("predictions", 10, "hit1", algo), marker="o", ms=3,
                    label=f"kato predictions ({algo})")
        ax.plot(thetas, series("futures", None, "hit1"), marker="s", ms=3, color="black",
                label="kato future_potentials")
        styles = {"CPT+": ("tab:red", "--"), "markov-1": ("tab:gray", ":"), "most-frequent": ("tab:brown", "-.")}
        for p in d["peers"]:
            color, dash = styles.get(p["model"], ("tab:pink", "--"))
            ax.axhline(p["hit1"], color=color, linestyle=dash, label=p["model"])
        if d["bayes_hit1"]:
            ax.axhline(d["bayes_hit1"], color="green", linewidth=0.8, label="best possible")
        ax.set_title(f"{name}: hit@1")
        ax.set_ylim(0, 1)
        ax.set_xlabel("recall_threshold")
        cov.plot(thetas, series("predictions", 1, "coverage"), marker="o", ms=3, label="coverage, max_predictions 1")
        cov.plot(thetas, series("predictions", 100, "coverage"), marker="o", ms=3, label="coverage, max_predictions 100")
        cov.plot(thetas, series("futures", None, "hitk"), marker="s", ms=3, color="black", label="futures hit@5")
        cov.set_ylim(0, 1.05)
        cov.set_xlabel("recall_threshold")
        cov.set_title(f"{name}: coverage and hit@5")
        tm = cov.twinx()
        tm.plot(thetas, series("futures", None, "ms_median"), color="tab:purple", linestyle="--", label="ms/query")
        tm.set_ylabel("ms per prediction call (median)")
        if col == 0:
            ax.legend(fontsize=7, loc="upper right")
            cov.legend(fontsize=7, loc="lower left")
            tm.legend(fontsize=7, loc="upper right")
    fig.suptitle("kato-web next-event accuracy vs recall_threshold (max_predictions 10 unless noted)")
    fig.tight_layout()
    path = folder / "accuracy.png"
    fig.savefig(path, dpi=90)
    plt.close(fig)
    written.append(path)
    return written


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a smoke run: small sets, 3 thresholds")
    parser.add_argument("--queries", type=int, default=400, help="queries per data set")
    parser.add_argument("--kosarak-size", type=int, default=10000, help="KOSARAK sequences sampled (seeded)")
    parser.add_argument("--test-share", type=float, default=0.2)
    parser.add_argument("--context", type=int, default=10, help="events of context per query (at most)")
    parser.add_argument("--k", type=int, default=5)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--out", type=Path, default=DOCS, help="where the JSON, tables and PNG go")
    args = parser.parse_args()
    started = time.perf_counter()
    results = run(args)
    results["seconds"] = time.perf_counter() - started
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "accuracy.json").write_text(json.dumps(results, indent=1, sort_keys=True) + "\n")
    (args.out / "accuracy-tables.md").write_text(tables(results))
    for path in plots(results, args.out):
        print("wrote", path.relative_to(ROOT) if path.is_relative_to(ROOT) else path)
    print(f"total {results['seconds']:.0f} s")


if __name__ == "__main__":
    main()
