"""Admin views: parse the request, call kato_web.services.admin, render a template."""
from __future__ import annotations

import logging
import math

from flask import (Blueprint, abort, current_app, flash, redirect, render_template, request,
                   url_for)
from werkzeug.exceptions import HTTPException

from kato_web.admin import security
from kato_web.services import admin as svc
from kato_web.services import evaluation_jobs as jobs
from kato_web.services.context import Context

log = logging.getLogger("kato_web.admin")

bp = Blueprint("admin", __name__, url_prefix="/admin", template_folder="templates",
               static_folder="static")

NAV = (("settings", "admin.settings", "Settings"), ("preview", "admin.preview", "Threshold preview"),
       ("nodes", "admin.nodes", "Knowledge"), ("sessions", "admin.sessions", "Sessions"))
SECTIONS = {"admin.settings": "settings", "admin.preview": "preview", "admin.evaluate": "preview",
            "admin.evaluation": "preview", "admin.nodes": "nodes",
            "admin.patterns": "nodes", "admin.pattern": "nodes", "admin.sessions": "sessions",
            "admin.session": "sessions"}

# No script runs in the admin area at all, and nothing is loaded from elsewhere.
CSP = ("default-src 'none'; style-src 'self'; img-src 'self' data:; form-action 'self'; "
       "frame-ancestors 'none'; base-uri 'none'")


def _ctx() -> Context:
    return current_app.extensions["kato"]


@bp.record_once
def _signing_key(state) -> None:
    # Without KATO_SECRET_KEY every worker would pick a random key of its own, and a login
    # made on one worker would not be recognised by the next.
    config = state.app.extensions["kato"].config
    if not config.secret_key and config.admin_password:
        state.app.secret_key = security.derived_secret_key(config.admin_password)


@bp.before_request
def _guard():
    if request.endpoint == "admin.static":
        return None
    kato = _ctx()
    if not svc.admin_enabled(kato):
        return render_template("admin/disabled.html"), 404
    if request.method == "POST" and not security.csrf_valid():
        abort(400, "The form's security token is missing or out of date, so nothing was changed. "
                   "Reload the page and try again.")
    if request.endpoint != "admin.login" and not security.logged_in(kato.config.admin_password):
        return redirect(url_for("admin.login", next=request.full_path.rstrip("?")))
    return None


@bp.after_request
def _headers(response):
    response.headers["Content-Security-Policy"] = CSP
    response.headers["X-Frame-Options"] = "DENY"
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["Referrer-Policy"] = "same-origin"
    # The API answers any origin; the admin area only its own (the app's hook keeps this value).
    response.headers["Access-Control-Allow-Origin"] = request.host_url.rstrip("/")
    if request.endpoint != "admin.static":
        response.headers["Cache-Control"] = "no-store"
    return response


@bp.errorhandler(HTTPException)
def _http_error(err: HTTPException):
    return render_template("admin/error.html", error=err), err.code or 500


@bp.errorhandler(Exception)
def _unexpected(err: Exception):
    log.exception("admin page failed")
    return render_template("admin/error.html", error=None), 500


@bp.context_processor
def _template_context() -> dict:
    kato = _ctx()
    return {"csrf_token": security.csrf_token, "csrf_field": security.CSRF_FIELD, "nav": NAV,
            "section": SECTIONS.get(request.endpoint or ""),
            "admin_logged_in": svc.admin_enabled(kato) and security.logged_in(kato.config.admin_password)}


@bp.app_template_filter("admin_num")
def _number(value, digits: int = 4) -> str:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return str(value)
    if isinstance(value, int):
        return str(value)
    if not math.isfinite(value):
        return str(value)
    return format(value, f".{digits}g")


def _safe_next(target: str | None) -> str | None:
    # Only a path inside the admin area: never an open redirect to another site.
    if target and target.startswith("/admin") and not target.startswith("//") and "\\" not in target:
        return target
    return None


@bp.get("/")
def index():
    return redirect(url_for("admin.settings"))


@bp.route("/login", methods=["GET", "POST"])
def login():
    kato = _ctx()
    next_url = _safe_next(request.values.get("next"))
    if request.method == "POST":
        if svc.password_matches(kato, request.form.get("password", "")):
            security.log_in(kato.config.admin_password)
            return redirect(next_url or url_for("admin.settings"))
        return render_template("admin/login.html", error="Wrong password.", next=next_url), 401
    if security.logged_in(kato.config.admin_password):
        return redirect(next_url or url_for("admin.settings"))
    return render_template("admin/login.html", error=None, next=next_url)


@bp.post("/logout")
def logout():
    security.log_out()
    flash("Signed out.")
    return redirect(url_for("admin.login"))


@bp.route("/settings", methods=["GET", "POST"])
def settings():
    kato = _ctx()
    if request.method == "POST":
        form = request.form.to_dict()
        errors, changed = svc.save_settings(kato, form)
        if errors:
            rows = svc.settings_form(kato, submitted=form, errors=errors)
            return render_template("admin/settings.html", rows=rows, errors=errors), 422
        flash("Saved: " + ", ".join(changed) + "." if changed else "Saved; nothing changed.")
        return redirect(url_for("admin.settings"))
    return render_template("admin/settings.html", rows=svc.settings_form(kato), errors={})


@bp.get("/preview")
def preview():
    kato = _ctx()
    args = request.args
    defaults, _stored = svc.current_settings(kato)
    form = {"kb_id": args.get("kb_id", ""), "stm": args.get("stm", ""),
            "session_id": args.get("session_id", "").strip(),
            "threshold": args.get("threshold", svc.format_value(defaults["recall_threshold"])),
            "max_predictions": args.get("max_predictions", svc.format_value(defaults["max_predictions"]))}
    result, error, status = None, None, 200
    if args.get("run"):
        try:
            result = svc.threshold_preview(kato, kb_id=form["kb_id"] or None, stm_text=form["stm"],
                                           session_id=form["session_id"] or None,
                                           threshold=form["threshold"], max_predictions=form["max_predictions"])
        except svc.PreviewError as err:
            error, status = err, 422
    return render_template("admin/preview.html", nodes=svc.nodes_overview(kato), form=form, result=result,
                           error=error, thresholds=svc.THRESHOLDS), status


@bp.route("/evaluate", methods=["GET", "POST"])
def evaluate():
    kato = _ctx()
    defaults, _stored = svc.current_settings(kato)
    form = {"kb_id": request.values.get("kb_id", ""), "sample": request.values.get("sample", "last"),
            "n": request.values.get("n", "200"),
            "rank_sort_algo": request.values.get("rank_sort_algo", defaults["rank_sort_algo"])}
    error, status = None, 200
    if request.method == "POST":
        upload = request.files.get("upload")
        try:
            job_id = jobs.start(kato, form["kb_id"], form["sample"], n=form["n"],
                                upload=upload.read() if upload else None,
                                rank_sort_algo=form["rank_sort_algo"])
            return redirect(url_for("admin.evaluation", job_id=job_id))
        except jobs.EvaluationError as err:
            error, status = err, 422
    return render_template("admin/evaluate.html", nodes=svc.nodes_overview(kato), form=form, error=error,
                           recent=jobs.recent(kato), algos=svc.SETTING_INFO["rank_sort_algo"].choices,
                           limits=kato.config), status


@bp.get("/evaluate/<job_id>")
def evaluation(job_id):
    job = jobs.detail(_ctx(), job_id)
    if job is None:
        abort(404, f"There is no evaluation {job_id}.")
    return render_template("admin/evaluation.html", job=job)


@bp.post("/evaluate/<job_id>/cancel")
def evaluation_cancel(job_id):
    flash("Cancelling: the evaluation stops within a second." if jobs.cancel(_ctx(), job_id)
          else "That evaluation had already ended.")
    return redirect(url_for("admin.evaluation", job_id=job_id))


@bp.post("/evaluate/<job_id>/apply")
def evaluation_apply(job_id):
    errors, changed, suggestion = jobs.apply_suggestion(_ctx(), job_id)
    if errors:
        flash("Not saved: " + "; ".join(f"{k}: {v}" for k, v in errors.items()))
        return redirect(url_for("admin.evaluation", job_id=job_id))
    flash(f"Saved the suggested recall_threshold {suggestion['threshold']:g} and max_predictions "
          f"{suggestion['max_predictions']}" + (f" (changed: {', '.join(changed)})." if changed
                                                else "; they were already the defaults."))
    return redirect(url_for("admin.settings"))


@bp.get("/nodes")
def nodes():
    return render_template("admin/nodes.html", nodes=svc.nodes_overview(_ctx()))


@bp.get("/nodes/<kb_id>/patterns")
def patterns(kb_id):
    listing = svc.node_patterns(_ctx(), kb_id, symbol=request.args.get("symbol"),
                                prefix=request.args.get("prefix"), page=request.args.get("page", 1))
    if listing is None:
        abort(404, f"There is no node {kb_id}.")
    return render_template("admin/patterns.html", listing=listing)


@bp.get("/nodes/<kb_id>/patterns/<path:name>")
def pattern(kb_id, name):
    detail = svc.pattern_detail(_ctx(), kb_id, name)
    if detail is None:
        abort(404, f"Node {kb_id} has no pattern {name}.")
    return render_template("admin/pattern.html", pattern=detail)


@bp.get("/sessions")
def sessions():
    return render_template("admin/sessions.html",
                           listing=svc.sessions_overview(_ctx(), page=request.args.get("page", 1)))


@bp.get("/sessions/<session_id>")
def session(session_id):
    detail = svc.session_detail(_ctx(), session_id)
    if detail is None:
        abort(404, f"There is no live session {session_id}.")
    return render_template("admin/session.html", s=detail)


@bp.route("/<path:_unknown>", methods=["GET", "POST"])
def unknown(_unknown):
    abort(404, "There is no such admin page.")
