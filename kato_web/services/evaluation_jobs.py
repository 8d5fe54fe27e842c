"""The admin page's evaluate mode: accuracy of a node at every threshold, as a background job.

The evaluation itself is kato_web/services/evaluation.py (the same code as bench/accuracy.py).
Here it becomes a job an operator starts, watches, cancels and applies:

* State lives in the ``evaluations`` table only (status, progress, cancel flag, result), so any
  gunicorn worker of any instance can show or cancel a job started by another.
* The work runs in a process of its own (``python -m kato_web evaluate JOB_ID``), never in a
  request thread: the engine's scoring holds the GIL, and a worker thread sweeping for
  minutes would stall every request of that worker. The worker that starts the job only
  spawns the process and waits for it in a daemon thread (to reap it, and kill it past the
  time limit).
* Bounds: ``eval_max_seconds`` (the process checks its deadline between queries, and a CPU
  rlimit backs that up), ``eval_max_sample`` held-out sequences, ``eval_max_patterns`` in the
  node (the process builds its own index of them) and ``eval_max_memory_mb`` (an rlimit on its
  data memory). One evaluation runs at a time.
* A job whose process stopped reporting for STALE_SECONDS (killed, machine restarted) is
  marked failed the next time anyone looks.
* Applying a suggestion goes through the settings page's own validation (services/admin.py).
"""
from __future__ import annotations

import logging
import math
import os
import subprocess
import sys
import threading
import time
import traceback
import uuid

import orjson

from kato_web.config import PROJECT_ROOT, Config
from kato_web.services import admin as admin_svc
from kato_web.services import evaluation as ev
from kato_web.services import predict as predict_svc
from kato_web.services import security
from kato_web.services.context import Context
from kato_web.services.sessions import server_defaults
from kato_web.store import repositories as repo

log = logging.getLogger("kato_web.evaluation")

STALE_SECONDS = 60.0
PROGRESS_EVERY = 0.5  # seconds between progress writes (and cancel checks)
CONTEXT_EVENTS = 10
HIT_K = 5
SEED = 0
BASE_MAX_PREDICTIONS = (1, 3, 10)
ACTIVE = repo.ACTIVE_EVALUATION
LABELS = {"queued": "queued", "running": "running", "done": "done", "cancelled": "cancelled",
          "timeout": "stopped at the time limit", "failed": "failed"}


class EvaluationError(ValueError):
    """A start request that cannot run; ``field`` names the form field at fault."""

    def __init__(self, field: str, message: str):
        super().__init__(message)
        self.field = field
        self.message = message


# ---------------------------------------------------------------- starting

def parse_jsonl(data: bytes, cap: int) -> list[list[list[str]]]:
    """Parse uploaded sequences: one JSON list of events (each a list of strings) per line.

    A line may also be a flat list of strings (one symbol per event). Blank lines are skipped.
    """
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        raise EvaluationError("upload", "The file is not UTF-8 text") from None
    sequences = []
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            # orjson refuses lone surrogates, which no database could store.
            value = orjson.loads(line.encode("utf-8"))
        except ValueError:
            raise EvaluationError("upload", f"Line {number} is not valid JSON") from None
        if isinstance(value, list) and all(isinstance(s, str) for s in value):
            value = [[s] for s in value]
        if not isinstance(value, list) or not all(
                isinstance(e, list) and all(isinstance(s, str) and "\x00" not in s for s in e) for e in value):
            raise EvaluationError("upload", f"Line {number} must be a list of events, each a list of "
                                            "strings without NUL characters, e.g. "
                                            '[["a"], ["b", "c"]]')
        sequences.append(value)
        if len(sequences) > cap:
            raise EvaluationError("upload", f"More than {cap} sequences; the limit is {cap} "
                                            "(KATO_EVAL_MAX_SAMPLE)")
    if not sequences:
        raise EvaluationError("upload", "The file holds no sequence")
    return sequences


def _sample_size(raw, cap: int) -> int:
    text = str(raw or "").strip()
    if not text.isdigit() or not 1 <= int(text) <= cap:
        raise EvaluationError("n", f"Must be a whole number from 1 to {cap}")
    return int(text)


def _stale(jobs: list[dict], now: float) -> list[dict]:
    return [job for job in jobs if now - (job["heartbeat_at"] or job["created_at"]) > STALE_SECONDS]


def _reap_stale(conn, now: float) -> None:
    for job in _stale(repo.active_evaluations(conn), now):
        repo.finish_evaluation(conn, job["job_id"], "failed", now,
                               error="The evaluation process stopped reporting (it was killed, "
                                     "or the server restarted).")


def _reap_if_stale(ctx: Context, now: float) -> None:
    # Pages poll every second: look in a read transaction, write only when something is stale.
    with ctx.db.transaction(write=False) as conn:
        stale = _stale(repo.active_evaluations(conn), now)
    if stale:
        with ctx.db.transaction() as conn:
            _reap_stale(conn, now)


def start(ctx: Context, kb_id: str, sample: str, n=None, upload: bytes | None = None,
          rank_sort_algo: str | None = None, spawn: bool = True) -> str:
    """Validate and queue an evaluation of ``kb_id``, spawn its process; return the job id.

    ``sample``: ``last`` (hold out the node's last n learned patterns) or ``upload`` (the
    sequences of an uploaded JSONL file, against every pattern of the node).
    """
    config = ctx.config
    if sample not in ("last", "upload"):
        raise EvaluationError("sample", "Choose the last learned patterns or an uploaded file")
    if not kb_id:
        raise EvaluationError("kb_id", "Choose a node")
    sequences = None
    if sample == "last":
        n = _sample_size(n, config.eval_max_sample)
    else:
        if not upload:
            raise EvaluationError("upload", "Choose a JSONL file of sequences")
        sequences = parse_jsonl(upload, config.eval_max_sample)
        n = len(sequences)
    now = ctx.clock()
    job_id = uuid.uuid4().hex
    with ctx.db.transaction() as conn:
        node = repo.get_node(conn, kb_id)
        if node is None:
            raise EvaluationError("kb_id", f"No node {kb_id}")
        patterns = repo.count_patterns(conn, kb_id)
        if patterns > config.eval_max_patterns:
            raise EvaluationError("kb_id", f"The node has {patterns} patterns; evaluations are limited to "
                                           f"{config.eval_max_patterns} (KATO_EVAL_MAX_PATTERNS)")
        if sample == "last" and n >= patterns:
            raise EvaluationError("n", f"The node has {patterns} patterns: hold out fewer, so some are "
                                       "left to learn from")
        defaults = server_defaults(ctx, conn)
        algo = rank_sort_algo or defaults["rank_sort_algo"]
        if algo not in ev.RANK_KEYS:
            raise EvaluationError("rank_sort_algo", "Unknown rank_sort_algo")
        current_theta = float(defaults["recall_threshold"])
        current_mp = int(defaults["max_predictions"])
        params = {"sample": sample, "n": n, "k": HIT_K, "context": CONTEXT_EVENTS, "seed": SEED,
                  "rank_sort_algo": algo, "sort_symbols": bool(defaults["sort_symbols"]),
                  "thresholds": sorted(set(ev.THRESHOLDS) | {current_theta}),
                  "max_predictions": sorted(set(BASE_MAX_PREDICTIONS) | {current_mp}),
                  "settings": predict_svc.prediction_settings(defaults),
                  "current": {"recall_threshold": current_theta, "max_predictions": current_mp},
                  "limits": {"seconds": config.eval_max_seconds, "memory_mb": config.eval_max_memory_mb}}
        repo.lock_evaluations(conn)
        _reap_stale(conn, now)
        if repo.active_evaluations(conn):
            raise EvaluationError("kb_id", "Another evaluation is running; wait for it or cancel it first")
        repo.insert_evaluation(conn, {"job_id": job_id, "kb_id": kb_id, "status": "queued", "params": params,
                                      "sequences": sequences, "progress_done": 0, "progress_total": 0,
                                      "cancel_requested": False, "created_at": now})
    if spawn:
        try:
            launch(config, job_id)
        except OSError as err:
            with ctx.db.transaction() as conn:
                repo.finish_evaluation(conn, job_id, "failed", ctx.clock(),
                                       error=f"Could not start the evaluation process: {err}")
            raise EvaluationError("kb_id", f"Could not start the evaluation process: {err}") from None
    return job_id


def launch(config: Config, job_id: str) -> subprocess.Popen:
    """Start the job's process; a daemon thread reaps it and kills it past the time limit."""
    env = dict(os.environ)
    env.update({"KATO_DATABASE_URL": config.database_url,
                "KATO_EVAL_MAX_SECONDS": str(config.eval_max_seconds),
                "KATO_EVAL_MAX_MEMORY_MB": str(config.eval_max_memory_mb),
                "KATO_EVAL_MAX_SAMPLE": str(config.eval_max_sample),
                "KATO_EVAL_MAX_PATTERNS": str(config.eval_max_patterns),
                "PYTHONPATH": os.pathsep.join(filter(None, [str(PROJECT_ROOT), env.get("PYTHONPATH")]))})
    proc = subprocess.Popen([sys.executable, "-m", "kato_web", "evaluate", job_id], cwd=PROJECT_ROOT,
                            env=env, stdin=subprocess.DEVNULL, start_new_session=True, close_fds=True)
    limit = config.eval_max_seconds + 30  # the process stops itself at the limit; this is the backstop

    def watch() -> None:
        try:
            proc.wait(timeout=limit)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()

    threading.Thread(target=watch, name=f"evaluation-{job_id[:8]}", daemon=True).start()
    return proc


# ---------------------------------------------------------------- the job's process

def _limit_resources(config: Config) -> None:
    try:
        import resource
    except ImportError:  # pragma: no cover - not on Linux
        return
    cpu = config.eval_max_seconds + 60
    resource.setrlimit(resource.RLIMIT_CPU, (cpu, cpu + 10))
    if config.eval_max_memory_mb > 0:
        cap = config.eval_max_memory_mb * 1024 * 1024
        resource.setrlimit(resource.RLIMIT_DATA, (cap, cap))


def _load(db, job: dict) -> tuple[list, list, list]:
    """Return (training sequences, their frequencies, held-out sequences) of a job."""
    params = job["params"]
    events, frequencies = [], []
    with db.transaction(write=False, snapshot=True) as conn:
        node = repo.get_node(conn, job["kb_id"])
        if node is None:
            raise ValueError(f"The node {job['kb_id']} no longer exists")
        for rows in repo.iter_patterns_in_learn_order(conn, job["kb_id"], node["change_seq"], batch=10000):
            _names, texts, freqs, _emotives, _seqs = zip(*rows)
            events.extend(orjson.loads("[" + ",".join(texts) + "]"))
            frequencies.extend(int(f) for f in freqs)
    if params["sample"] == "last":
        n = params["n"]
        return events[:-n], frequencies[:-n], events[-n:]
    held_out = [ev.normalise_sequence(s, params["sort_symbols"]) for s in job["sequences"] or []]
    return events, frequencies, held_out


def run(config: Config, job_id: str) -> int:
    """Run one queued evaluation to its end (the body of ``python -m kato_web evaluate``)."""
    from kato_web.store.db import Database

    started = time.monotonic()
    deadline = started + config.eval_max_seconds
    _limit_resources(config)
    db = Database(config.database_url, pool_size=1, max_overflow=1)
    try:
        with db.transaction() as conn:
            if not repo.claim_evaluation(conn, job_id, os.getpid(), time.time()):
                return 1
            job = repo.get_evaluation(conn, job_id, with_sequences=True)
        return _run_claimed(db, job, started, deadline)
    finally:
        db.dispose()


def _run_claimed(db, job: dict, started: float, deadline: float) -> int:
    job_id, params = job["job_id"], job["params"]
    state = {"last": 0.0, "cancel": False, "done": 0, "total": 0}

    def report(done: int, total: int, force: bool = False) -> None:
        state["done"], state["total"] = done, total
        now = time.monotonic()
        if force or now - state["last"] >= PROGRESS_EVERY:
            state["last"] = now
            with db.transaction() as conn:
                state["cancel"] = repo.evaluation_progress(conn, job_id, done, total, time.time())

    def should_stop() -> str | None:
        if state["cancel"]:
            return "cancelled"
        if time.monotonic() > deadline:
            return "timeout"
        return None

    rows: list = []
    extra: dict = {}
    try:
        train, frequencies, held_out = _load(db, job)
        index, stats = ev.build_knowledge(train, frequencies)
        queries = ev.make_queries(held_out, params["seed"], params["context"])
        if not queries:
            raise ValueError("No held-out sequence has an event after at least 2 symbols of context, "
                             "so there is nothing to predict")
        spec = ev.SweepSpec(thresholds=params["thresholds"], max_predictions=params["max_predictions"],
                            rank_sort_algos=(params["rank_sort_algo"],), k=params["k"],
                            settings=params["settings"])
        report(0, spec.steps * len(queries), force=True)
        extra = {"queries": len(queries), "held_out": len(held_out), "patterns": len(index),
                 "train_sequences": len(train),
                 "markov": ev.evaluate_baseline(ev.MarkovBaseline(train), queries, params["k"])}
        rows = ev.sweep(index, stats, queries, spec, progress=report, should_stop=should_stop)
        status, error = "done", None
    except ev.EvaluationStopped as stop:
        rows, status = stop.rows, stop.reason
        error = ("Cancelled from the admin page." if status == "cancelled" else
                 "Stopped at the time limit (KATO_EVAL_MAX_SECONDS); the thresholds finished are shown.")
    except MemoryError:
        status, error = "failed", "Ran out of its memory limit (KATO_EVAL_MAX_MEMORY_MB)."
    except Exception as err:  # any other failure is reported on the page, not lost
        traceback.print_exc()
        status, error = "failed", f"{type(err).__name__}: {err}"
    result = None
    if rows or extra:
        result = {**extra, "rows": rows, "seconds": time.monotonic() - started,
                  "suggestion": ev.suggest(rows, "predictions") if rows else None}
    if state["total"]:
        report(state["done"], state["total"], force=True)
    with db.transaction() as conn:
        repo.finish_evaluation(conn, job_id, status, time.time(), result=result, error=error)
    return 0 if status == "done" else 3


# ---------------------------------------------------------------- reading, cancelling, applying

def _summary(job: dict, now: float) -> dict:
    done, total = job["progress_done"], job["progress_total"]
    end = job["finished_at"] or now
    return {"job_id": job["job_id"], "kb_id": job["kb_id"], "status": job["status"],
            "label": LABELS.get(job["status"], job["status"]), "active": job["status"] in ACTIVE,
            "params": job["params"], "done": done, "total": total,
            "percent": int(100 * done / total) if total else 0,
            "created_at": time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(job["created_at"])),
            "elapsed": (end - job["started_at"]) if job["started_at"] else 0.0,
            "cancel_requested": job["cancel_requested"], "error": job["error"]}


def recent(ctx: Context, limit: int = 10) -> list[dict]:
    now = ctx.clock()
    _reap_if_stale(ctx, now)
    with ctx.db.transaction(write=False) as conn:
        return [_summary(job, now) for job in repo.list_evaluations(conn, limit)]


def detail(ctx: Context, job_id: str) -> dict | None:
    """Return a job for its page: progress, and when finished the result table."""
    now = ctx.clock()
    _reap_if_stale(ctx, now)
    with ctx.db.transaction(write=False) as conn:
        job = repo.get_evaluation(conn, job_id)
        defaults = server_defaults(ctx, conn)
    if job is None:
        return None
    view = _summary(job, now)
    view["result"] = _result_view(job["params"], job["result"], defaults) if job["result"] else None
    return view


def _result_view(params: dict, result: dict, defaults: dict) -> dict:
    current = params["current"]
    suggestion = result.get("suggestion")
    mps = params["max_predictions"]
    by_theta: dict[float, dict] = {}
    for row in result["rows"]:
        entry = by_theta.setdefault(row["threshold"], {"threshold": row["threshold"], "cells": {},
                                                       "ms_median": row["ms_median"],
                                                       "predictions_mean": row["predictions_mean"]})
        if row["source"] == "futures":
            entry["futures"] = row
        else:
            entry["cells"][row["max_predictions"]] = row
    table = []
    for theta in sorted(by_theta):
        entry = by_theta[theta]
        entry["current"] = math.isclose(theta, current["recall_threshold"])
        entry["cells"] = [dict(entry["cells"][m], current=entry["current"] and m == current["max_predictions"],
                               suggested=bool(suggestion) and math.isclose(theta, suggestion["threshold"])
                               and m == suggestion["max_predictions"]) if m in entry["cells"] else None
                          for m in mps]
        table.append(entry)
    current_row = next((c for e in table if e["current"] for c in e["cells"]
                        if c and c["current"]), None)
    saved = {"recall_threshold": float(defaults["recall_threshold"]),
             "max_predictions": int(defaults["max_predictions"])}
    applied = bool(suggestion) and math.isclose(saved["recall_threshold"], suggestion["threshold"]) \
        and saved["max_predictions"] == suggestion["max_predictions"]
    return {**result, "table": table, "max_predictions": mps, "current": current,
            "current_row": current_row, "suggestion": suggestion, "applied": applied, "saved": saved}


def cancel(ctx: Context, job_id: str) -> bool:
    """Ask a running evaluation to stop (its process sees the flag within a second)."""
    with ctx.db.transaction() as conn:
        return repo.request_evaluation_cancel(conn, job_id)


def apply_suggestion(ctx: Context, job_id: str) -> tuple[dict, list[str], dict | None]:
    """Save the job's suggested recall_threshold and max_predictions as the server defaults.

    Goes through services/admin.save_settings (the settings page's own validation and
    storage). Returns (errors, changed keys, the suggestion).
    """
    with ctx.db.transaction(write=False) as conn:
        job = repo.get_evaluation(conn, job_id)
    suggestion = (job or {}).get("result", None) and job["result"].get("suggestion")
    if not suggestion or job["status"] != "done":
        return {"job": "This evaluation has no suggestion to apply"}, [], None
    form = {"recall_threshold": repr(float(suggestion["threshold"])),
            "max_predictions": str(int(suggestion["max_predictions"]))}
    errors, changed = admin_svc.save_settings(ctx, form)
    if not errors:
        record_applied(ctx, job_id, suggestion, changed)
    return errors, changed, suggestion


def record_applied(ctx: Context, job_id: str, suggestion: dict, changed: list[str]) -> None:
    """Add the saved suggestion to the audit trail, beside save_settings' per-key records.

    save_settings already records each changed key (old → new); this record ties them to the
    evaluation that suggested them.
    """
    security.record_now(ctx, "evaluation_applied", target=job_id,
                        detail={"recall_threshold": suggestion["threshold"],
                                "max_predictions": suggestion["max_predictions"],
                                "changed": list(changed)})
    log.info("evaluation %s applied: recall_threshold=%s max_predictions=%s (changed: %s)", job_id,
             suggestion["threshold"], suggestion["max_predictions"], ", ".join(changed) or "nothing")