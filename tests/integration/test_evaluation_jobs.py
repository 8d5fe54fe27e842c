"""The admin evaluate mode on a real database: start, run (the job process's body), progress,
cancel, time limit, stale jobs, applying the suggestion through the settings validation, and
the pages. (The spawned process and the browser are in tests/e2e/test_admin_browser.py.)"""
from __future__ import annotations

import io
import time

import pytest

from kato_web.services import evaluation_jobs as jobs
from kato_web.services.sessions import kb_id_for, server_defaults
from kato_web.store import repositories as repo
from tests.integration.test_admin_pages import PASSWORD, csrf, login

NODE = "evalnode"
KB = kb_id_for(NODE, "kato")


def learn(client, sequences):
    sid = client.post("/sessions", json={"node_id": NODE}).get_json()["session_id"]
    for sequence in sequences:
        for event in sequence:
            assert client.post(f"/sessions/{sid}/observe", json={"strings": event}).status_code == 200
        assert client.post(f"/sessions/{sid}/learn").status_code == 200


@pytest.fixture
def node(client):
    """A node whose patterns are cycles over a b c d e: the next symbol is always known."""
    ring = "abcde"
    sequences = [[[ring[(start + i) % 5]] for i in range(length)]
                 for length in (4, 5, 6) for start in range(5)]
    learn(client, sequences)
    return KB


def job_row(kato, job_id):
    with kato.db.transaction(write=False) as conn:
        return repo.get_evaluation(conn, job_id)


def defaults(kato):
    with kato.db.transaction(write=False) as conn:
        return server_defaults(kato, conn)


def test_run_reports_progress_and_a_result_table(kato, node):
    job_id = jobs.start(kato, node, "last", n="5", spawn=False)
    assert job_row(kato, job_id)["status"] == "queued"
    assert jobs.run(kato.config, job_id) == 0
    row = job_row(kato, job_id)
    assert row["status"] == "done" and row["progress_done"] == row["progress_total"] > 0
    view = jobs.detail(kato, job_id)
    result = view["result"]
    assert result["queries"] == 5 and result["patterns"] == 10
    assert [r["threshold"] for r in result["table"]] == [0.0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9]
    assert result["max_predictions"] == [1, 3, 10, 100]
    assert sum(r["current"] for r in result["table"]) == 1  # the default 0.1 is marked
    assert result["current_row"]["max_predictions"] == 100
    best = result["suggestion"]
    assert best["hit1"] == 1.0  # each held-out cycle continues as every learned one does
    assert result["markov"]["hit1"] == 1.0
    # The job's process never runs twice.
    assert jobs.run(kato.config, job_id) == 1


def test_apply_saves_the_suggestion_through_the_settings_validation(kato, node):
    job_id = jobs.start(kato, node, "last", n="5", spawn=False)
    jobs.run(kato.config, job_id)
    errors, changed, suggestion = jobs.apply_suggestion(kato, job_id)
    assert errors == {}
    now = defaults(kato)
    assert (now["recall_threshold"], now["max_predictions"]) == (suggestion["threshold"],
                                                                 suggestion["max_predictions"])
    assert set(changed) <= {"recall_threshold", "max_predictions"} and changed
    assert jobs.detail(kato, job_id)["result"]["applied"] is True
    # The audit trail holds the per-key changes and the evaluation that suggested them.
    from kato_web.services import security
    audit = security.audit_page(kato, None, None, None, 1)["rows"]
    assert {row["target"] for row in audit if row["action"] == "setting_changed"} == set(changed)
    applied = [row for row in audit if row["action"] == "evaluation_applied"]
    assert [row["target"] for row in applied] == [job_id]


def test_uploaded_sequences_are_evaluated_against_every_pattern(kato, node):
    upload = b'[["c"], ["d"], ["e"], ["a"]]\n\n["b", "c", "d"]\n'
    job_id = jobs.start(kato, node, "upload", upload=upload, spawn=False)
    jobs.run(kato.config, job_id)
    result = jobs.detail(kato, job_id)["result"]
    assert (result["held_out"], result["queries"], result["patterns"]) == (2, 2, 15)


def test_cancel_stops_the_job_with_what_it_finished(kato, node):
    job_id = jobs.start(kato, node, "last", n="5", spawn=False)
    assert jobs.cancel(kato, job_id) is True
    assert jobs.run(kato.config, job_id) == 3
    row = job_row(kato, job_id)
    assert row["status"] == "cancelled" and "Cancelled" in row["error"]
    assert jobs.cancel(kato, job_id) is False  # already ended
    errors, _changed, _ = jobs.apply_suggestion(kato, job_id)
    assert errors  # only a finished evaluation can be applied


def test_time_limit_stops_the_job(kato, node):
    job_id = jobs.start(kato, node, "last", n="5", spawn=False)
    with kato.db.transaction() as conn:
        repo.claim_evaluation(conn, job_id, 1, time.time())
        job = repo.get_evaluation(conn, job_id, with_sequences=True)
    jobs._run_claimed(kato.db, job, time.monotonic(), deadline=time.monotonic() - 1)
    row = job_row(kato, job_id)
    assert row["status"] == "timeout" and "time limit" in row["error"]


def test_a_job_that_stopped_reporting_is_marked_failed(kato, node, clock):
    job_id = jobs.start(kato, node, "last", n="5", spawn=False)
    with pytest.raises(jobs.EvaluationError, match="Another evaluation is running"):
        jobs.start(kato, node, "last", n="5", spawn=False)
    clock.advance(jobs.STALE_SECONDS + 1)
    assert jobs.recent(kato)[0]["status"] == "failed"
    assert "stopped reporting" in job_row(kato, job_id)["error"]
    jobs.start(kato, node, "last", n="5", spawn=False)  # the way is free again


@pytest.mark.parametrize("kwargs, field, message", [
    ({"kb_id": "", "sample": "last", "n": "5"}, "kb_id", "Choose a node"),
    ({"kb_id": "nope_kato", "sample": "last", "n": "5"}, "kb_id", "No node"),
    ({"kb_id": KB, "sample": "last", "n": "0"}, "n", "whole number"),
    ({"kb_id": KB, "sample": "last", "n": "x"}, "n", "whole number"),
    ({"kb_id": KB, "sample": "last", "n": "15"}, "n", "hold out fewer"),
    ({"kb_id": KB, "sample": "other"}, "sample", "Choose"),
    ({"kb_id": KB, "sample": "upload"}, "upload", "Choose a JSONL file"),
    ({"kb_id": KB, "sample": "upload", "upload": b"[1, 2]\n"}, "upload", "Line 1 must be"),
    ({"kb_id": KB, "sample": "upload", "upload": b'["a"]\n{oops\n'}, "upload", "Line 2 is not valid JSON"),
    ({"kb_id": KB, "sample": "upload", "upload": b"\xff\xfe"}, "upload", "UTF-8"),
    ({"kb_id": KB, "sample": "upload", "upload": b'["a", "\\ud800"]'}, "upload", "Line 1 is not valid JSON"),
    ({"kb_id": KB, "sample": "upload", "upload": b'["a", "b\\u0000"]'}, "upload", "Line 1 must be"),
    ({"kb_id": KB, "sample": "upload", "upload": b"\n\n"}, "upload", "no sequence"),
    ({"kb_id": KB, "sample": "last", "n": "5", "rank_sort_algo": "bogus"}, "rank_sort_algo", "Unknown"),
])
def test_bad_requests_are_refused_with_the_field_at_fault(kato, node, kwargs, field, message):
    with pytest.raises(jobs.EvaluationError) as err:
        jobs.start(kato, spawn=False, **kwargs)
    assert err.value.field == field and message in err.value.message
    with kato.db.transaction(write=False) as conn:
        assert repo.list_evaluations(conn) == []


def test_limits_on_sample_and_node_size(kato, node):
    kato.config.eval_max_sample = 3
    with pytest.raises(jobs.EvaluationError, match="1 to 3"):
        jobs.start(kato, node, "last", n="4", spawn=False)
    with pytest.raises(jobs.EvaluationError, match="More than 3 sequences"):
        jobs.start(kato, node, "upload", upload=b'["a", "b"]\n' * 4, spawn=False)
    kato.config.eval_max_patterns = 14
    with pytest.raises(jobs.EvaluationError, match="limited to 14"):
        jobs.start(kato, node, "last", n="2", spawn=False)


def test_config_refuses_bad_limits(monkeypatch):
    from kato_web.config import Config, ConfigError
    for name, value in (("KATO_EVAL_MAX_SECONDS", "0"), ("KATO_EVAL_MAX_SAMPLE", "many"),
                        ("KATO_EVAL_MAX_MEMORY_MB", "-1")):
        monkeypatch.setenv(name, value)
        with pytest.raises(ConfigError, match=f"{name}="):
            Config.from_env()
        monkeypatch.delenv(name)
    monkeypatch.setenv("KATO_EVAL_MAX_SECONDS", "30")
    assert Config.from_env().eval_max_seconds == 30


# ---------------------------------------------------------------- pages

@pytest.fixture
def signed_in(kato, client):
    kato.config.admin_password = PASSWORD
    assert login(client).status_code == 302
    return client


def test_pages_start_show_and_apply(kato, node, signed_in, monkeypatch):
    launched = []
    monkeypatch.setattr(jobs, "launch", lambda config, job_id: launched.append(job_id))
    page = signed_in.get("/admin/evaluate")
    assert page.status_code == 200 and 'name="upload"' in page.get_data(as_text=True)
    token = csrf(signed_in, "/admin/evaluate")
    resp = signed_in.post("/admin/evaluate", data={"csrf_token": token, "kb_id": node, "sample": "last", "n": "5",
                                                   "rank_sort_algo": "potential"})
    assert resp.status_code == 302 and launched
    job_id = launched[0]
    assert resp.headers["Location"].endswith(f"/admin/evaluate/{job_id}")
    running = signed_in.get(f"/admin/evaluate/{job_id}").get_data(as_text=True)
    assert '<meta http-equiv="refresh" content="1">' in running and "Cancel evaluation" in running
    jobs.run(kato.config, job_id)
    done = signed_in.get(f"/admin/evaluate/{job_id}").get_data(as_text=True)
    assert 'http-equiv="refresh"' not in done and 'id="evaluation-table"' in done and "Save suggested value" in done
    resp = signed_in.post(f"/admin/evaluate/{job_id}/apply", data={"csrf_token": token})
    assert resp.status_code == 302 and resp.headers["Location"].endswith("/admin/settings")
    assert "Saved the suggested recall_threshold" in signed_in.get("/admin/settings").get_data(as_text=True)


def test_pages_refuse_bad_input_and_missing_tokens(kato, node, signed_in):
    token = csrf(signed_in, "/admin/evaluate")
    resp = signed_in.post("/admin/evaluate", data={"csrf_token": token, "kb_id": node, "sample": "upload",
                                                   "upload": (io.BytesIO(b"not json\n"), "s.jsonl")},
                          content_type="multipart/form-data")
    assert resp.status_code == 422 and "Line 1 is not valid JSON" in resp.get_data(as_text=True)
    assert signed_in.post("/admin/evaluate", data={"kb_id": node, "sample": "last", "n": "5"}).status_code == 400
    assert signed_in.get("/admin/evaluate/0123").status_code == 404
    assert signed_in.post("/admin/evaluate/0123/cancel", data={"csrf_token": token}).status_code == 302
    with kato.db.transaction(write=False) as conn:
        assert repo.list_evaluations(conn) == []


def test_pages_need_a_login(kato, client):
    kato.config.admin_password = PASSWORD
    for path in ("/admin/evaluate", "/admin/evaluate/abc"):
        resp = client.get(path)
        assert resp.status_code == 302 and "/admin/login" in resp.headers["Location"]


def test_a_process_that_cannot_start_fails_the_job(kato, node, monkeypatch):
    def broken(config, job_id):
        raise OSError("no such interpreter")
    monkeypatch.setattr(jobs, "launch", broken)
    with pytest.raises(jobs.EvaluationError, match="Could not start"):
        jobs.start(kato, node, "last", n="5")
    assert [job["status"] for job in jobs.recent(kato)] == ["failed"]
