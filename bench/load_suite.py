"""The issue-16 load targets in one run: every scenario back to back, then a Markdown table.

    python -m bench.load_suite [--duration 45s] [--offered-duration 180s] [--quick]

Runs, one after the other on the same machine and settings (bench/run_load.py; PostgreSQL;
the default gunicorn layout unless --workers/--threads):

1. GET /health, observe only, the KATO stress mix and predictions only, 32 users back to back;
2. the mix again at half its measured requests/s as offered load (Locust constant throughput),
   for --offered-duration (the target: p95 ≤ 50 ms, p99 ≤ 150 ms, 0 errors over 3 minutes);
3. batch learning (observe-sequence, 10 learns a request) with 8 users, and single-pattern
   learning (observe, observe, learn) with 4 users;
4. through nginx: one instance (nginx's own cost), then two instances on the same cores, each
   with half the workers (as many serving processes as one instance has), for the mix, observe,
   predictions and batch learning; and the mix with two full instances (twice the processes).

and prints each run's throughput, latencies, errors and CPU per request, the ratios the issue
sets targets for, and writes the same to bench/results/suite-<stamp>.md and .json.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench import run_load  # noqa: E402


def _run(name: str, scenario: str, users: int, duration: str, extra: list[str], common: list[str]) -> dict:
    argv = ["--scenario", scenario, "--users", str(users), "--duration", duration, f"--tag=-suite-{name}",
            *common, *extra]
    print(f"\n=== {name}: {' '.join(argv)}", flush=True)
    started = time.time()
    code, line = run_load.run(argv)
    line["name"], line["exit"], line["wall_s"] = name, code, round(time.time() - started, 1)
    return line


def _cpu(line: dict) -> str:
    cpu = line.get("cpu_ms_per_request") or {}
    return " + ".join(f"{cpu[k]:.2f}" for k in ("gunicorn", "nginx", "postgres", "locust") if k in cpu)


def _table(runs: list[dict]) -> str:
    rows = ["| run | users | offered | requests/s | p50 ms | p95 ms | p99 ms | errors | CPU ms/request "
            "(gunicorn [+ nginx] + PostgreSQL + Locust) | load avg before |",
            "|---|---:|---:|---:|---:|---:|---:|---:|---|---:|"]
    for r in runs:
        rows.append(f"| {r['name']} | {r['users']} | {r.get('rate') or '—'} | {r.get('rps', 0):,.1f} | "
                    f"{r.get('p50_ms', 0):.0f} | {r.get('p95_ms', 0):.0f} | {r.get('p99_ms', 0):.0f} | "
                    f"{r.get('failures', 0)} of {r.get('requests', 0):,} | {_cpu(r)} | {r['loadavg_before']} |")
    return "\n".join(rows)


def _by_name(line: dict, suffix: str) -> float:
    return sum(row["rps"] for name, row in (line.get("by_name") or {}).items() if name.endswith(suffix))


def _verdicts(runs: dict[str, dict]) -> list[str]:
    out = []
    health = runs["health"]["rps"]

    def check(label, value, target, unit="", higher=True):
        ok = value >= target if higher else value <= target
        out.append(f"- {label}: **{value:,.1f}{unit}** (target {'≥' if higher else '≤'} {target:,}{unit}) — "
                   f"{'met' if ok else 'NOT met'}")

    check("observe / health", 100 * runs["observe"]["rps"] / health, 50, " %")
    check("mix / health", 100 * runs["mix"]["rps"] / health, 40, " %")
    half = runs["mix-half"]
    check("mix at half load, p95", half["p95_ms"], 50, " ms", higher=False)
    check("mix at half load, p99", half["p99_ms"], 150, " ms", higher=False)
    check("mix at half load, errors", half["failures"], 0, "", higher=False)
    check("batch learning, patterns/s", 10 * _by_name(runs["batch"], "/observe-sequence"), 800)
    check("single-pattern learning, patterns/s", _by_name(runs["learn"], "/learn"), 80)
    check("two instances behind nginx / one instance, mix", 100 * runs["mix-2n"]["rps"] / runs["mix"]["rps"], 90,
          " %")
    check("two full instances behind nginx / one instance, mix",
          100 * runs["mix-2n-full"]["rps"] / runs["mix"]["rps"], 90, " %")
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", default="45s")
    parser.add_argument("--offered-duration", default="180s")
    parser.add_argument("--workers", type=int)
    parser.add_argument("--threads", type=int)
    parser.add_argument("--quick", action="store_true", help="5 s runs, to try the suite itself")
    args = parser.parse_args()
    duration = "5s" if args.quick else args.duration
    offered = "5s" if args.quick else args.offered_duration
    common = ([f"--workers={args.workers}"] if args.workers else []) + \
             ([f"--threads={args.threads}"] if args.threads else [])

    runs: dict[str, dict] = {}
    plan = [("health", "health", 32, []), ("observe", "observe", 32, []), ("mix", "mix", 32, []),
            ("predict", "predict", 32, [])]
    for name, scenario, users, extra in plan:
        runs[name] = _run(name, scenario, users, duration, extra, common)
    # Half the mix's maximum, offered as tasks/s (a mix task is ~1.02 requests).
    rate = round(runs["mix"]["rps"] / 2, 1)
    runs["mix-half"] = _run("mix-half", "mix", 32, offered, [f"--rate={rate}"], common)
    runs["batch"] = _run("batch", "batch", 8, duration, [], common)
    runs["learn"] = _run("learn", "learn", 4, duration, [], common)
    runs["mix-1n"] = _run("mix-1n", "mix", 32, duration, ["--nginx"], common)
    # Two instances on the same cores: each with half the workers (one each by default), so the
    # machine runs as many serving processes as with one instance; then the mix once more with
    # the full layout in each instance (twice the processes).
    workers = args.workers or run_load.default_layout()[0]
    half = [f"--workers={max(1, workers // 2)}"] + [a for a in common if not a.startswith("--workers")]
    for name, scenario, users in (("mix-2n", "mix", 32), ("observe-2n", "observe", 32),
                                  ("predict-2n", "predict", 32), ("batch-2n", "batch", 8)):
        runs[name] = _run(name, scenario, users, duration, ["--instances=2"], half)
    runs["mix-2n-full"] = _run("mix-2n-full", "mix", 32, duration, ["--instances=2"], common)

    stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    text = "\n".join([f"Load suite {stamp} ({os.cpu_count()} cores)", "", _table(list(runs.values())), "",
                      *_verdicts(runs)])
    print("\n" + text)
    results = run_load.RESULTS
    (results / f"suite-{stamp}.md").write_text(text + "\n")
    (results / f"suite-{stamp}.json").write_text(json.dumps(runs, indent=1))


if __name__ == "__main__":
    main()
