"""The admin pages: server-rendered HTML for people — sign-in, the orchestrator dashboard, the job
list, one job's timeline.

A browser signs in with a one-time link from `proactive admin link` (`GET /admin/login?token=`,
worker/access/admin_auth.py) and then carries an HttpOnly, SameSite=Strict session cookie scoped to one
org or to every org (Secure when APP_URL is https). A page without a session redirects to the
sign-in page, which says how to get a link. Pages only read; the one form that changes state
(cancel a job) and sign-out carry a CSRF token, refused with 403 without it. Another org's job,
like a malformed id, is 404. Pages never show payloads, step outputs, tokens or credentials.

Templates live in webhooks/templates/, the stylesheet in webhooks/static/ (served by the app's
/static route); no CDN: the timeline's bars and the dashboard's chart are inline SVG computed on the
server (webhooks/timeline.py, webhooks/dashboard.py); the one script is the dashboard's auto-refresh
(static/dashboard.js), nothing inline. Every page is sent with a strict Content-Security-Policy.
"""

from __future__ import annotations

import functools
import logging
import uuid
from collections.abc import Callable
from datetime import datetime
from typing import Any

from flask import Blueprint, Response, g, make_response, redirect, render_template, request, url_for
from sqlalchemy import select
from sqlalchemy.exc import DBAPIError, OperationalError
from werkzeug.exceptions import HTTPException

import blocks
from webhooks import dashboard, timeline
from webhooks.errors import request_id
from worker.access.admin_auth import (
    HOME_PATH,
    LINK_MINUTES,
    SESSION_MAX_AGE,
    AdminAuthNotConfigured,
    AdminSession,
    LoginRefused,
    csrf_ok,
    csrf_token,
    read_session,
    redeem,
    safe_next,
    session_cookie,
)
from worker.config import get_settings
from worker.db import transaction
from worker.engine.executor import request_cancel
from worker.engine.states import JOB_FINAL, JobStatus
from worker.errors import NotFound
from worker.metrics.report import RANGES, org_metrics, parse_range
from worker.models import Org, utcnow
from worker.ops.views import job_detail, list_jobs, org_names

log = logging.getLogger(__name__)

blueprint = Blueprint("pages", __name__)

COOKIE = "proactive_admin"
COOKIE_PATH = "/admin"  # the session goes to the pages only, never to the APIs or webhooks
JOB_LIST_LIMIT = 50  # newest jobs on the list page
CSRF_FIELD = "csrf_token"
# Scripts and styles from our own static files only (the dashboard's auto-refresh), nothing inline,
# the favicon inline; no framing, no leaking
# the login token through Referer.
SECURITY_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; form-action 'self'; "
        "frame-ancestors 'none'; base-uri 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
}


@blueprint.after_request
def _secure(response: Response) -> Response:
    response.headers.update(SECURITY_HEADERS)
    return response


def _current_session() -> AdminSession | None:
    """The browser's session, or None (no cookie, altered, too old, or sign-in not configured)."""
    try:
        return read_session(request.cookies.get(COOKIE))
    except AdminAuthNotConfigured:
        return None


def _here() -> str:
    """This page's path and query, to come back to after signing in."""
    query = request.query_string.decode("ascii", "replace")
    return request.path + (f"?{query}" if query else "")


def _page(template: str, status: int = 200, **context: Any) -> Response:
    response = make_response(render_template(template, **context), status)
    response.headers["Content-Type"] = "text/html; charset=utf-8"
    return response


def _problem(status: int, title: str, message: str) -> Response:
    return _page("admin/problem.html", status, title=title, message=message)


def signed_in(view: Callable[..., Any]) -> Callable[..., Any]:
    """The page needs a session (in `g.admin`); without one, redirect to the sign-in page."""

    @functools.wraps(view)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        session = _current_session()
        if session is None:
            return redirect(url_for("pages.login", next=_here()), code=303)
        g.admin = session
        return view(*args, **kwargs)

    return wrapper


def changes_state(view: Callable[..., Any]) -> Callable[..., Any]:
    """A POST that changes something: it needs a session (401 otherwise) and this session's CSRF
    token in the form (403 otherwise)."""

    @functools.wraps(view)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        session = _current_session()
        if session is None:
            return _page("admin/signin.html", 401, next_path=HOME_PATH, reason="Your session has ended.")
        if not csrf_ok(session, request.form.get(CSRF_FIELD)):
            return _problem(
                403,
                "This form has expired",
                "The form did not carry this session's security token (CSRF). Reload the page and try again.",
            )
        g.admin = session
        return view(*args, **kwargs)

    return wrapper


@blueprint.context_processor
def _helpers() -> dict[str, Any]:
    """What every template may use: the session, its CSRF token, and the display helpers."""
    session = getattr(g, "admin", None)
    return {
        "admin": session,
        "admin_scope": getattr(g, "admin_scope", ""),
        "csrf_field": CSRF_FIELD,
        "csrf_value": csrf_token(session) if session is not None else "",
        "when": _when,
        "duration": timeline.duration_text,
        "tone": timeline.tone,
        "words": _words,
        "home_path": HOME_PATH,
        "link_minutes": LINK_MINUTES,
        "session_hours": int(SESSION_MAX_AGE.total_seconds() // 3600),
    }


def _when(value: str | datetime | None) -> str:
    """A timestamp as `2026-12-05 14:03:07` (UTC)."""
    if not value:
        return timeline.UNKNOWN
    moment = timeline.parse_time(value) if isinstance(value, str) else value
    return f"{moment:%Y-%m-%d %H:%M:%S}" if moment else timeline.UNKNOWN


def _words(code: str | None) -> str:
    """A snake_case code in words: meeting_ended -> meeting ended."""
    return (code or "").replace("_", " ")


def _scope_name(session: AdminSession) -> str:
    if session.all_orgs:
        return "All orgs"
    with transaction() as conn:
        return org_names(conn, [session.org_id]).get(str(session.org_id), "an org that no longer exists")


def _job_id(value: str) -> uuid.UUID | None:
    try:
        return uuid.UUID(value)
    except ValueError:
        return None


# --------------------------------------------------------------------------- sign-in


@blueprint.get("/admin")
@blueprint.get("/admin/")
def home() -> Any:
    """The admin pages start at the orchestrator dashboard."""
    return redirect(url_for("pages.orchestrator_page"), code=303)


@blueprint.get("/admin/login")
def login() -> Any:
    """With `?token=`: sign in once, set the session cookie, go on to `?next=` (or the dashboard).
    Without: the page that says how to get a sign-in link."""
    next_path = safe_next(request.args.get("next"))
    token = request.args.get("token")
    if not token:
        if _current_session() is not None:  # already signed in: nothing to do here
            return redirect(next_path, code=303)
        signed_out = request.args.get("signed_out") == "1"
        reason = "You are signed out." if signed_out else "This page needs you to sign in."
        return _page("admin/signin.html", 401, next_path=next_path, reason=reason)
    try:
        session = redeem(token)
    except LoginRefused as err:
        return _page("admin/signin.html", 401, next_path=next_path, reason=str(err), refused=True)
    g.admin = session
    g.admin_scope = _scope_name(session)
    # A page that moves on by itself rather than a 30x: the cookie is SameSite=Strict, and a browser
    # leaves it off a redirect that started on another site (a link clicked in Slack or mail), so the
    # first page would ask to sign in again; a navigation started by this page carries it.
    response = _page("admin/signed_in.html", next_path=next_path)
    response.set_cookie(
        COOKIE,
        session_cookie(session),
        max_age=int(SESSION_MAX_AGE.total_seconds()),
        path=COOKIE_PATH,
        secure=get_settings().app_url.lower().startswith("https://"),
        httponly=True,
        samesite="Strict",
    )
    return response


@blueprint.post("/admin/logout")
@changes_state
def logout() -> Any:
    """Forget the session in this browser."""
    response = redirect(url_for("pages.login", signed_out="1"), code=303)
    response.delete_cookie(COOKIE, path=COOKIE_PATH, httponly=True, samesite="Strict")
    return response


# --------------------------------------------------------------------------- jobs


@blueprint.get("/admin/jobs")
@signed_in
def jobs_page() -> Any:
    """The newest jobs of the session's scope, optionally of one status."""
    g.admin_scope = _scope_name(g.admin)
    status = request.args.get("status") or None
    statuses = [s.value for s in JobStatus]
    if status is not None and status not in statuses:
        return _problem(400, "Unknown status", f"Unknown status {status[:40]!r}; choose one of: {', '.join(statuses)}.")
    with transaction() as conn:
        rows = list_jobs(conn, org_id=g.admin.org_id, status=status, limit=JOB_LIST_LIMIT)
        orgs = org_names(conn, {r["org_id"] for r in rows}) if g.admin.all_orgs else {}
    return _page(
        "admin/jobs.html",
        jobs=rows,
        orgs=orgs,
        status=status,
        statuses=statuses,
        status_label=timeline.status_label,
        limit=JOB_LIST_LIMIT,
    )


@blueprint.get("/admin/jobs/<job_id>")
@signed_in
def job_page(job_id: str) -> Any:
    """One job's timeline: steps as bars, approvals, Slack messages, effects, related jobs."""
    g.admin_scope = _scope_name(g.admin)
    jid = _job_id(job_id)
    if jid is None:
        return _problem(404, "Job not found", "That is not a job id (a job id is a UUID).")
    try:
        with transaction() as conn:
            job = job_detail(conn, jid, g.admin.org_id)
            org = org_names(conn, [job["org_id"]]).get(job["org_id"], job["org_id"])
    except NotFound:  # another org's job looks exactly like a missing one
        return _problem(404, "Job not found", f"No job {jid} is visible to this session.")
    start, end = timeline.window(job, utcnow())
    asking = {a["step"] for a in job["approvals"]}
    bars = {s["id"]: timeline.bar(s, start, end, asks_a_person=s["step"] in asking) for s in job["steps"]}
    return _page(
        "admin/job.html",
        job=job,
        org=org,
        bars=bars,
        axis=(start, end, timeline.duration_text((end - start).total_seconds() * 1000)),
        label=timeline.status_label(job["status"], job["errors"]),
        can_cancel=job["status"] not in JOB_FINAL and not job["cancel_requested"],
        decision_label=_decision_label,
    )


def _decision_label(decision: str | None) -> str:
    return blocks.decision_label(decision) if decision else timeline.UNKNOWN


@blueprint.post("/admin/jobs/<job_id>/cancel")
@changes_state
def cancel_job(job_id: str) -> Any:
    """Cancel the job (now if nothing runs, else at the next step boundary), then show it again."""
    jid = _job_id(job_id)
    if jid is None:
        return _problem(404, "Job not found", "That is not a job id (a job id is a UUID).")
    try:
        request_cancel(jid, org_id=g.admin.org_id, actor="admin-page")
    except NotFound:
        return _problem(404, "Job not found", f"No job {jid} is visible to this session.")
    return redirect(url_for("pages.job_page", job_id=str(jid)), code=303)


# --------------------------------------------------------------------------- dashboard

ORG_SWITCH_LIMIT = 200  # orgs listed in the all-orgs switcher


@blueprint.get("/admin/orchestrator")
@signed_in
def orchestrator_page() -> Any:
    """The orchestrator dashboard: one org's metrics over 7, 30 or 90 days (worker/metrics/report.py)."""
    g.admin_scope = _scope_name(g.admin)
    range_name = request.args.get("range") or "7d"
    try:
        days = parse_range(range_name)
    except ValueError:
        return _problem(400, "Unknown range", f"Unknown range {range_name[:20]!r}; choose one of: {', '.join(RANGES)}.")
    asked = request.args.get("org_id")
    org_id = _job_id(asked) if asked else g.admin.org_id
    if asked and (org_id is None or (not g.admin.all_orgs and org_id != g.admin.org_id)):
        return _problem(404, "Org not found", "No such org is visible to this session.")
    with transaction() as conn:
        orgs = []
        if g.admin.all_orgs:
            orgs = [
                (str(r.id), r.name)
                for r in conn.execute(select(Org.id, Org.name).order_by(Org.name).limit(ORG_SWITCH_LIMIT))
            ]
            if org_id is None:
                if not orgs:
                    return _problem(
                        404, "No orgs yet", "Create one with `proactive org create` or run `proactive demo`."
                    )
                org_id = uuid.UUID(orgs[0][0])
        try:
            m = org_metrics(conn, org_id, days)
        except NotFound:
            return _problem(404, "Org not found", "No such org is visible to this session.")
    if orgs and str(org_id) not in {i for i, _ in orgs}:  # past the switcher's limit: still listed
        orgs.insert(0, (str(org_id), m["org_name"]))
    return _page(
        "admin/orchestrator.html",
        m=m,
        range_name=range_name,
        ranges=list(RANGES),
        orgs=orgs,
        org_id=str(org_id),
        chart=dashboard.daily_chart(m["daily_counts"]),
        shares=dashboard.shares,
        percent=dashboard.percent,
        refresh_s=dashboard.refresh_seconds(request.args.get("refresh")),
        refresh_param=request.args.get("refresh"),
    )


# --------------------------------------------------------------------------- errors as pages


@blueprint.errorhandler(AdminAuthNotConfigured)
def _not_configured(err: AdminAuthNotConfigured) -> Response:
    return _problem(503, "Sign-in is not configured", str(err))


@blueprint.errorhandler(OperationalError)
@blueprint.errorhandler(DBAPIError)
def _database_down(err: Exception) -> Response:
    log.warning("database unavailable (request %s): %s", request_id(), err)
    return _problem(503, "The database is unavailable", "Reload this page in a few seconds.")


@blueprint.errorhandler(HTTPException)
def _http(err: HTTPException) -> Response:
    return _problem(err.code or 500, err.name or "Error", err.description or "")


@blueprint.errorhandler(Exception)
def _unexpected(err: Exception) -> Response:
    log.exception("unexpected error on an admin page (request %s)", request_id())
    return _problem(500, "Something went wrong", f"The request id {request_id()} helps us find what happened.")
