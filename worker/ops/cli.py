"""The `proactive` command: an interface for operators, not a script.

Exit codes: 0 ok, 1 something failed (a job, a service), 2 bad usage or input. Errors print one
line that says what to do.
"""

from __future__ import annotations

import datetime as dt
import getpass
import json
import logging
import os
import sys
import textwrap
import time
import types
import typing
import uuid
from collections.abc import Callable, Mapping
from contextlib import nullcontext
from datetime import timedelta
from pathlib import Path
from typing import Any, NoReturn

import click

from worker.config import get_settings, state_dir
from worker.engine.dag import DefinitionError
from worker.engine.payloads import EventType
from worker.engine.states import JOB_FINAL, JobStatus
from worker.errors import ProactiveError
from worker.ops.fleet import FleetError, exec_fleet, find_procfile, plan_fleet
from worker.ops.show import cell, job_status_text, ms, print_inbox, print_timeline, status_text
from worker.slack.clicks import KIND_OF_PREFIX, VERBS

FINAL_OR_PAUSED = JOB_FINAL | {JobStatus.AWAITING_APPROVAL}

# The one `--json` flag of every command a script reads (keys are stable; new keys may be added).
json_option = click.option(
    "--json", "as_json", is_flag=True, help="Print JSON for scripts instead of text (stable keys)."
)


def fail(message: str, code: int = 2) -> NoReturn:
    """Print a one-line error and exit with `code`."""
    click.echo(click.style("error: ", fg="red", bold=True) + message, err=True)
    sys.exit(code)


def run_or_fail(fn: Callable[[], Any]) -> Any:
    """Call `fn`; turn our user-facing errors into one-line messages with their exit code."""

    try:
        return fn()
    except ProactiveError as err:
        fail(str(err), err.exit_code)
    except OSError as err:
        fail(f"{err} (is the database reachable? DATABASE_URL={database_shown()})", 1)


def database_shown() -> str:
    """DATABASE_URL as an error may print it: the password masked."""
    # imported when the command runs: the database layer costs 0.2-0.6 s that `proactive --help` would pay
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError

    url = get_settings().database_url
    try:
        return make_url(url).render_as_string(hide_password=True)
    except ArgumentError:
        return "(unparseable)"


def fail_on_database(err: Exception) -> NoReturn:
    """Exit with one line saying why the database cannot be used (found by probing DATABASE_URL);
    the driver's own words when the probe itself fails (the server went down meanwhile)."""
    # imported when the command runs: the database layer costs 0.2-0.6 s that `proactive --help` would pay
    from worker.migrate import DatabaseUnavailable, explain_connection_error

    try:
        problem: ProactiveError = explain_connection_error(err)
    except Exception:  # the probe failed too: the driver's words, with the database they are about
        cause = " ".join(str(getattr(err, "orig", None) or err).split())[:300]
        problem = DatabaseUnavailable(f"database error at {database_shown()}: {cause}; retry, or check DATABASE_URL")
    fail(str(problem), problem.exit_code)


def parse_json(text: str | None, what: str) -> dict[str, Any]:
    """Parse a JSON object given on the command line (exit 2 with the reason otherwise)."""
    if not text:
        return {}
    try:
        value = json.loads(text)
    except json.JSONDecodeError as err:
        fail(f"{what} is not valid JSON: {err}")
    if not isinstance(value, dict):
        fail(f"{what} must be a JSON object")
    return value


def resolve_org(ref: str | None) -> uuid.UUID:
    """An org by id or exact name; the only org when there is just one."""
    # imported when the command runs: the database layer costs 0.2-0.6 s that `proactive --help` would pay
    from sqlalchemy import select

    from worker.db import transaction
    from worker.models import Org

    with transaction() as conn:
        if ref is None:
            ids = list(conn.execute(select(Org.id).limit(2)).scalars())
            if len(ids) == 1:
                return ids[0]
            fail("--org is required (several orgs exist)" if ids else "no org exists yet: run `proactive seed --demo`")
        try:
            org_id = conn.execute(select(Org.id).where(Org.id == uuid.UUID(ref))).scalar()
        except ValueError:
            org_id = conn.execute(select(Org.id).where(Org.name == ref)).scalar()
    if org_id is None:
        fail(f"unknown org {ref!r} (give its id or exact name)")
    return org_id


def resolve_user(org_id: uuid.UUID, ref: str | None) -> uuid.UUID | None:
    """A user of `org_id` by id or email."""
    if ref is None:
        return None
    # imported when the command runs: the database layer costs 0.2-0.6 s that `proactive --help` would pay
    from sqlalchemy import select

    from worker.db import transaction
    from worker.models import User

    with transaction() as conn:
        try:
            user_id = conn.execute(select(User.id).where(User.id == uuid.UUID(ref), User.org_id == org_id)).scalar()
        except ValueError:
            user_id = conn.execute(select(User.id).where(User.email == ref, User.org_id == org_id)).scalar()
    if user_id is None:
        fail(f"unknown user {ref!r} in org {org_id} (give an id or email)")
    return user_id


def wait_for_job(job_id: uuid.UUID, timeout_s: float) -> str:
    """Poll the job until it is final or paused, or `timeout_s` passes; returns its status."""
    # imported when the command runs: the database layer costs 0.2-0.6 s that `proactive --help` would pay
    from sqlalchemy import select

    from worker.db import transaction
    from worker.models import jobs

    deadline = time.monotonic() + timeout_s
    while True:
        with transaction() as conn:
            status = conn.execute(select(jobs.c.status).where(jobs.c.id == job_id)).scalar_one()
        if status in FINAL_OR_PAUSED or time.monotonic() >= deadline:
            return status
        time.sleep(0.05)


class ProactiveGroup(click.Group):
    """The `proactive` group: a database that cannot be reached is one line saying why, never a
    traceback (whichever command met it)."""

    def invoke(self, ctx: click.Context) -> Any:
        """Run the command; turn a failed or lost database connection into `error: ...` and its exit
        code (the database as host:port/name and the cause, never the password)."""
        # imported when the command runs: the database layer costs 0.2-0.6 s that `proactive --help` would pay
        from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError

        try:
            return super().invoke(ctx)
        except DBAPIError as err:
            if not isinstance(err, OperationalError | InterfaceError) and not err.connection_invalidated:
                raise
            fail_on_database(err)


@click.group(cls=ProactiveGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.option("-v", "--verbose", is_flag=True, help="Log engine activity to stderr.")
def main(verbose: bool) -> None:
    """Proactive: events -> sequences of skills on Celery, with Slack approvals."""

    logging.basicConfig(
        level=logging.INFO if verbose else logging.WARNING, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )


# --------------------------------------------------------------------------- db


@main.group()
def db() -> None:
    """The database: create it, migrate its schema, show its revision.

    Exit codes when DATABASE_URL does not work: 2 when the URL is wrong as written (unparseable, an
    unknown host, credentials the server refuses), 1 when no server answers at its host and port or
    the server refuses to create the database.
    """


@db.command("create")
def db_create() -> None:
    """Create the PostgreSQL database DATABASE_URL names (exit 0 if it already exists)."""
    # imported when the command runs: the database layer costs 0.2-0.6 s that `proactive --help` would pay
    from worker import migrate

    target = run_or_fail(migrate.pg_target)
    if target is None:
        click.echo(f"nothing to create: the SQLite file is created by `proactive db upgrade` ({_safe_url()})")
        return
    created = run_or_fail(migrate.ensure_database)
    click.echo(f"created {target}" if created else f"{target} already exists")


@db.command("upgrade")
@click.option("--revision", default="head", show_default=True, help="Migrate up to this revision.")
def db_upgrade(revision: str) -> None:
    """Create the database if missing (PostgreSQL), then apply migrations (or the embedded SQLite file)."""
    # imported when the command runs: the database layer costs 0.2-0.6 s that `proactive --help` would pay
    from worker import migrate

    run_or_fail(lambda: migrate.check_revision(revision))
    if run_or_fail(migrate.ensure_database):
        click.echo(f"created {migrate.pg_target()}")
    run_or_fail(lambda: migrate.upgrade(revision=revision))
    click.echo(f"database at {', '.join(migrate.current()) or 'base'} ({_safe_url()})")


@db.command("current")
@json_option
def db_current(as_json: bool) -> None:
    """Show the schema revision; exit 1 when not at head."""
    # imported when the command runs: the database layer costs 0.2-0.6 s that `proactive --help` would pay
    from worker import migrate

    cur = run_or_fail(migrate.current)
    head = migrate.heads()
    at_head = set(cur) == set(head)
    if as_json:
        out = {"current": list(cur), "head": list(head), "at_head": at_head, "database": _safe_url()}
        click.echo(json.dumps(out))
    else:
        click.echo(f"current: {', '.join(cur) or 'base'}  head: {', '.join(head)}")
    sys.exit(0 if at_head else 1)


@db.command("reencrypt")
@json_option
def db_reencrypt(as_json: bool) -> None:
    """Re-encrypt every stored credential with the first key of ENCRYPTION_KEYS.

    Step 3 of a key rotation: put a new key first (ENCRYPTION_KEYS=NEW,OLD) everywhere, run this,
    then remove the old key. One transaction per org, progress on stderr; safe to run again.
    """
    # imported when the command runs: the database layer costs 0.2-0.6 s that `proactive --help` would pay
    from worker.crypto import encrypt_json
    from worker.ops.reencrypt import reencrypt_all

    run_or_fail(lambda: encrypt_json({"probe": True}))  # a missing or malformed key fails before any row

    def progress(done: int, total: int, count: int) -> None:
        if not as_json:
            click.echo(f"org {done}/{total}: {count} credential(s) re-encrypted", err=True)

    result = run_or_fail(lambda: reencrypt_all(progress))
    if as_json:
        click.echo(json.dumps({"orgs": result.orgs, "credentials": result.credentials}))
    else:
        click.echo(f"re-encrypted {result.credentials} credential(s) in {result.orgs} org(s) with the first key")


def _safe_url() -> str:
    # imported when the command runs: the database layer costs 0.2-0.6 s that `proactive --help` would pay
    from sqlalchemy.engine import make_url

    return make_url(get_settings().database_url).render_as_string(hide_password=True)


# --------------------------------------------------------------------------- processes


@main.command(context_settings={"ignore_unknown_options": True, "allow_extra_args": True})
@click.option("-Q", "--queues", default="steps,slow,edge", show_default=True)
@click.option("-c", "--concurrency", type=int, default=None, help="Worker processes (default: CPU count).")
@click.option("-P", "--pool", default=None, help="prefork (default), threads or solo.")
@click.pass_context
def worker(ctx: click.Context, queues: str, concurrency: int | None, pool: str | None) -> None:
    """Run a Celery worker on the engine's queues (extra args go to `celery worker`)."""
    args = [sys.executable, "-m", "celery", "-A", "worker.celery_app", "worker", "-Q", queues, "-l", "INFO"]
    if concurrency:
        args += ["-c", str(concurrency)]
    if pool or get_settings().is_sqlite:
        args += ["-P", pool or "threads"]
    os.execv(sys.executable, args + list(ctx.args))


@main.command(context_settings={"ignore_unknown_options": True, "allow_extra_args": True})
@click.pass_context
def beat(ctx: click.Context) -> None:
    """Run Celery Beat with beat_schedule.py (run exactly one; a second one does no harm)."""
    args = [
        sys.executable,
        "-m",
        "celery",
        "-A",
        "beat_schedule",
        "beat",
        "-l",
        "INFO",
        "-s",
        str(_state_file("celerybeat-schedule")),
    ]
    os.execv(sys.executable, args + list(ctx.args))


def _state_file(name: str) -> Any:

    d = state_dir()
    d.mkdir(parents=True, exist_ok=True)
    return d / name


# gunicorn restarts a worker silent for this long (seconds): above `POST /api/events?wait=30`.
WEB_TIMEOUT_S = 60
# Threads per web worker (gthread): a request waiting on PostgreSQL or Redis lets another run.
# bench/edge.py, same run: 2 workers x 8 threads answered 198 clicks/s at 200/s offered (p99 0.31 s)
# where 2 sync workers answered 126/s (p99 5.9 s), and took 431 vs 350 events/s.
WEB_THREADS = 8


@main.command()
@click.option("--bind", default="127.0.0.1:8000", show_default=True)
@click.option("--workers", type=int, default=2, show_default=True)
@click.option("--threads", type=int, default=WEB_THREADS, show_default=True)
def web(bind: str, workers: int, threads: int) -> None:
    """Serve the webhooks and API with gunicorn (gthread workers)."""
    args = [
        sys.executable,
        "-m",
        "gunicorn",
        "-c",
        "python:webhooks.gunicorn_conf",  # server hooks (metrics of exited workers)
        "-k",
        "gthread",
        "-w",
        str(workers),
        "--threads",
        str(threads),
        "--timeout",
        str(WEB_TIMEOUT_S),
        "-b",
        bind,
    ]
    os.execv(sys.executable, [*args, "webhooks:create_app()"])


# --------------------------------------------------------------------------- events and jobs


# The `fire` epilog's columns: event type, then its payload fields (wrapped at EPILOG_WIDTH characters).
EPILOG_TYPE_WIDTH = 22
EPILOG_WIDTH = 76  # click indents the epilog by 2: 78 columns in all


def field_kind(annotation: Any) -> str:
    """A payload field's type as a person reads it: uuid, text, YYYY-MM-DD, list of uuid..."""

    args = [a for a in typing.get_args(annotation) if a is not type(None)]
    origin = typing.get_origin(annotation)
    if origin in (types.UnionType, typing.Union):
        return " or ".join(field_kind(a) for a in args)
    if origin is list:
        return f"list of {field_kind(args[0])}" if args else "list"
    names = {uuid.UUID: "uuid", str: "text", dt.date: "YYYY-MM-DD", int: "integer", float: "number", bool: "bool"}
    return names.get(annotation, getattr(annotation, "__name__", str(annotation)))


def payload_fields_help() -> str:
    """The `fire` epilog: every event type with its payload fields (required ones starred), their types
    and the model's note, generated from `worker.engine.payloads` so the help cannot drift from what is
    accepted. `\\b` keeps click from rewrapping the table."""

    # imported when the command runs: the database layer costs 0.2-0.6 s that `proactive --help` would pay
    from worker.engine.payloads import ORG_LEVEL_TYPES, PAYLOAD_MODELS

    lines = ["\b", "Event types and their payload fields (* = required):"]
    indent = " " * (2 + EPILOG_TYPE_WIDTH)
    for event_type, model in PAYLOAD_MODELS.items():
        fields = []
        for name, info in model.model_fields.items():
            example = f", e.g. {info.examples[0]}" if info.examples else ""
            fields.append(f"{name}{'*' if info.is_required() else ''} ({field_kind(info.annotation)}{example})")
        doc = (model.__doc__ or "").strip()
        notes = [doc.splitlines()[0]] if doc else []  # e.g. email_received: which fields go together
        if event_type in ORG_LEVEL_TYPES:
            notes.append("Org-level: --user is optional.")
        row, filled = f"  {event_type:<{EPILOG_TYPE_WIDTH}}", False
        for i, field in enumerate(fields):  # wrap between fields, never inside one
            part = field + ("," if i < len(fields) - 1 else "")
            if filled and len(row) + 1 + len(part) > EPILOG_WIDTH:
                lines.append(row)
                row, filled = indent, False
            row, filled = (f"{row} {part}" if filled else row + part), True
        lines.append(row if fields else row + "(none)")
        for note in notes:
            lines += textwrap.wrap(note, EPILOG_WIDTH, initial_indent=indent, subsequent_indent=indent)
    lines += [
        "",
        "\b",
        "Example:",
        "  proactive fire calendar_find_times --user alice@example.com \\",
        '    --payload \'{"scheduling_text": "30 min next Tuesday"}\' --wait 10',
        "",
        "Envelope, default keys, every field and the refusals: docs/events.md.",
    ]
    return "\n".join(lines)


@main.command(epilog=payload_fields_help())
@click.argument("event_type")
@click.option("--org", "org_ref", help="Org id or exact name (default: the only org).")
@click.option("--user", "user_ref", help="User id or email.")
@click.option("--payload", default=None, help="Payload JSON object.")
@click.option("--key", default=None, help="Idempotency key (default: the type's key, see docs/events.md).")
@click.option(
    "--delay-minutes",
    "delay_minutes",
    type=float,
    default=None,
    help="Start the job's steps this many minutes from now (the job is listed meanwhile; `proactive cancel` stops it).",
)
@click.option(
    "--replace",
    is_flag=True,
    help="Deal-bound types: cancel the live job of this rep and deal (at its step boundary) and start this one.",
)
@click.option("--wait", "wait_s", type=float, default=0, help="Wait up to SECONDS for a final or paused state.")
@json_option
def fire(
    event_type: str,
    org_ref: str | None,
    user_ref: str | None,
    payload: str | None,
    key: str | None,
    delay_minutes: float | None,
    replace: bool,
    wait_s: float,
    as_json: bool,
) -> None:
    """Fire one event (EVENT_TYPE is one of the nine) and print {job_id, status, duplicate}. Its
    source is `cli`; its key is stored under `caller:` (docs/events.md)."""
    # imported when the command runs: the database layer costs 0.2-0.6 s that `proactive --help` would pay
    from worker.engine.events import fire_public_event

    org_id = resolve_org(org_ref)
    user_id = resolve_user(org_id, user_ref)
    data: dict[str, Any] = {
        "type": event_type,
        "org_id": str(org_id),
        "payload": parse_json(payload, "--payload"),
    }
    if user_id:
        data["user_id"] = str(user_id)
    if key is not None:
        data["idempotency_key"] = key
    if delay_minutes is not None:
        data["delay_minutes"] = delay_minutes
    if replace:
        data["replace"] = True
    result = run_or_fail(lambda: fire_public_event(data, source="cli"))
    status = result.status
    delayed = result.scheduled_for is not None
    if wait_s > 0 and status not in FINAL_OR_PAUSED and not delayed:
        status = wait_for_job(result.job_id, wait_s)
    out = {**result.as_dict(), "status": status}
    if as_json:
        click.echo(json.dumps(out))
    else:
        dup = " (duplicate: the job already existed)" if result.duplicate else ""
        reason = f" — {result.reason}" if result.reason else ""
        live = ""
        if result.live_job_id:
            live = f": see job {result.live_job_id} (--replace cancels it and starts this one)"
        when = f", scheduled for {result.scheduled_for:%Y-%m-%d %H:%M} UTC" if delayed else ""
        late = ""
        if wait_s > 0 and status == "running":
            late = f" (still running after {wait_s:g} s: `proactive job {result.job_id}` follows it)"
        click.echo(f"job {result.job_id} {status_text(status)}{when}{reason}{live}{dup}{late}")
    if (
        wait_s > 0 and status == "queued" and not delayed
    ):  # nothing claimed its first step: no worker consumes the queues
        fail(
            f"no worker picked up job {result.job_id} within {wait_s:g} s — is a worker running? "
            "start one with `proactive worker`",
            1,
        )
    sys.exit(1 if status in ("failed", "timeout") else 0)


@main.command()
@click.option(
    "--status", type=click.Choice([s.value for s in JobStatus]), default=None, help="Only jobs in this status."
)
@click.option(
    "--type", "event_type", type=click.Choice([t.value for t in EventType]), default=None, help="Only this event type."
)
@click.option("--org", "org_ref", default=None)
@click.option("--limit", type=click.IntRange(min=1), default=30, show_default=True, help="Newest N jobs.")
@json_option
def jobs(status: str | None, event_type: str | None, org_ref: str | None, limit: int, as_json: bool) -> None:
    """List recent jobs, newest first; with `--status skipped`, also the settings problems the crons
    met (an unreadable zone or briefing time skips nothing, but is worth fixing)."""
    # imported when the command runs: the database layer costs 0.2-0.6 s that `proactive --help` would pay
    from worker.crons.tasks import cron_warnings
    from worker.db import transaction
    from worker.ops.views import list_jobs

    org_id = resolve_org(org_ref) if org_ref else None
    warnings: list[dict[str, Any]] = []
    with transaction() as conn:
        rows = run_or_fail(lambda: list_jobs(conn, org_id=org_id, status=status, event_type=event_type, limit=limit))
        if status == "skipped" and not as_json:  # the JSON output is a list of jobs: kept as it was
            warnings = run_or_fail(lambda: cron_warnings(conn, org_id))
    if as_json:
        click.echo(json.dumps(rows))
        return
    if not rows:
        click.echo("no jobs")
    else:
        click.echo(f"{'JOB':36}  {'TYPE':20}  {'STATUS':22}  {'SOURCE':16}  {'DURATION':>9}  CREATED")
    for r in rows:
        note = f"  {r['reason'] or r['error'] or ''}"[:60] if (r["reason"] or r["error"]) else ""
        note = f"  [dry-run]{note}" if r.get("dry_run") else note
        if r.get("scheduled_for") and r["status"] == "queued":
            note = f"  [scheduled for {r['scheduled_for'][:16]}]{note}"
        if r.get("live_job_id"):
            note = f"{note} (see job {r['live_job_id']})"
        click.echo(
            f"{r['id']:36}  {r['event_type']:20}  {cell(job_status_text(r['status'], r.get('errors', 0)), 22)}  "
            f"{r['source']:16}  {ms(r['duration_ms']):>9}  {r['created_at'][:19]}{note}"
        )
    if warnings:
        print_cron_warnings(warnings)


def print_cron_warnings(warnings: list[dict[str, Any]]) -> None:
    """One line per user or org whose settings the crons could not read (their latest warnings)."""
    click.echo()
    click.echo("Settings problems met by the crons (last 7 days):")
    for w in warnings:
        click.echo(f"{w['subject']:36}  org {w['org_id']:36}  {w['at'][:19]}  {'; '.join(w['warnings'])}")


@main.command("job")
@click.argument("job_id")
@json_option
@click.option("--outputs", is_flag=True, help="Show each step's output.")
def job_cmd(job_id: str, as_json: bool, outputs: bool) -> None:
    """A job's timeline: steps with status, attempt, duration, error; approvals with who and when."""
    # imported when the command runs: the database layer costs 0.2-0.6 s that `proactive --help` would pay
    from worker.db import transaction
    from worker.ops.views import job_detail

    jid = _uuid(job_id, "JOB_ID")
    with transaction() as conn:
        detail = run_or_fail(lambda: job_detail(conn, jid))
    if as_json:
        click.echo(json.dumps(detail, default=str))
        return
    print_timeline(detail, outputs=outputs)


def _uuid(value: str, what: str) -> uuid.UUID:
    try:
        return uuid.UUID(value)
    except ValueError:
        fail(f"{what} must be a UUID, got {value!r}")


@main.command()
@click.option("--org", "org_ref", default=None)
@click.option("--limit", type=click.IntRange(min=1), default=20, show_default=True)
@json_option
def inbox(org_ref: str | None, limit: int, as_json: bool) -> None:
    """Messages Slack would have shown (the console inbox), oldest first."""
    # imported when the command runs: the database layer costs 0.2-0.6 s that `proactive --help` would pay
    from worker.db import transaction
    from worker.slack.console_inbox import entries
    from worker.slack.delivery import inbox as inbox_rows

    org_id = resolve_org(org_ref) if org_ref else None
    with transaction() as conn:
        if as_json:
            rows = inbox_rows(conn, org_id, limit)
            # imported when the command runs: the database layer costs 0.2-0.6 s that `proactive --help` would pay
            from sqlalchemy import select

            from worker.models import User

            names = dict(conn.execute(select(User.id, User.name)).all())
            click.echo(json.dumps([inbox_dict(r, names.get(r.user_id)) for r in rows]))
            return
        messages = entries(conn, org_id, limit)
    print_inbox(messages)


def inbox_dict(r: Any, to_name: str | None) -> dict[str, Any]:
    """One outbox message for `inbox --json`."""
    return {
        "id": str(r.id),
        "org_id": str(r.org_id),
        "to": to_name or r.channel,
        "user_id": str(r.user_id) if r.user_id else None,
        "channel": r.channel,
        "kind": r.kind,
        "status": r.status,
        "job_id": str(r.job_id) if r.job_id else None,
        "approval_id": str(r.approval_id) if r.approval_id else None,
        "created_at": r.created_at.isoformat(),
        "sent_at": r.sent_at.isoformat() if r.sent_at else None,
        "error_code": r.error_code,
        "error": r.error,
        "text": r.text,
        "blocks": r.blocks,
    }


def offered_decisions(kind: str, spec: Any) -> dict[str, list[str]]:
    """The decisions an approval of `kind` (its step's ApprovalSpec `spec`) offers, by outcome
    ("proceed", "rerun", "stop"): the verbs of its kind's Slack buttons, then the generic
    approve/reject every kind also has, then its re-run decisions; only those the step accepts."""

    prefixes = [p for p, k in KIND_OF_PREFIX.items() if k == kind] + ["orch"]
    candidates = [*(verb for p in prefixes for verb in sorted(VERBS[p])), *spec.rerun_from]
    offered: dict[str, list[str]] = {"proceed": [], "rerun": [], "stop": []}
    for decision in dict.fromkeys(candidates):
        try:
            outcome = spec.outcome(decision)
        except KeyError:
            continue  # a button that is not a decision (select_slot, undo)
        offered[outcome].append(decision)
    return offered


def _decision_problem(command: str, decision: str, job: Mapping[str, Any], step: str, kind: str) -> str | None:
    """Why `decision` is not one `command` (approve or reject) can make on this approval, listing the
    valid ones; None when it is. `job` ({event_type, definition_hash}): the decisions are those of
    the definition the job started with (worker/engine/pinned.py), as the engine applies them."""
    # imported when the command runs: the database layer costs 0.2-0.6 s that `proactive --help` would pay
    from worker.db import transaction
    from worker.engine import pinned, registry

    try:
        with transaction() as conn:
            spec = pinned.for_job(conn, job).step(step).approval
    except (registry.UnknownSequence, DefinitionError, KeyError):
        return None  # the sequence is not loaded here: the engine's own check decides
    if spec is None:
        return None
    offered = offered_decisions(kind, spec)
    stop = offered["stop"]
    go = offered["proceed"] + offered["rerun"]
    if command == "reject" and decision not in stop:
        return f"{decision!r} is not a way to reject a {kind} approval; one of: {', '.join(stop)}"
    if command == "approve" and decision not in go:
        also = f" (to stop the job: `proactive reject --decision {'|'.join(stop)}`)" if stop else ""
        return f"{decision!r} is not a decision of a {kind} approval; one of: {', '.join(go)}{also}"
    return None


def _decide(command: str, approval_id: str, decision: str, as_user: str | None, data: str | None) -> None:
    # imported when the command runs: the database layer costs 0.2-0.6 s that `proactive --help` would pay
    from sqlalchemy import select

    from worker.db import transaction
    from worker.engine import approvals
    from worker.models import approvals as table
    from worker.models import jobs as jobs_table

    aid = _uuid(approval_id, "APPROVAL_ID")
    with transaction() as conn:
        row = conn.execute(
            select(
                table.c.org_id,
                table.c.approver_user_ids,
                table.c.kind,
                table.c.step,
                jobs_table.c.event_type,
                jobs_table.c.definition_hash,
            )
            .join(jobs_table, (jobs_table.c.id == table.c.job_id) & (jobs_table.c.org_id == table.c.org_id))
            .where(table.c.id == aid)  # the entry lookup: the operator gives an approval id, its row the org
        ).first()
    if row is None:
        fail(f"approval {aid} not found")
    job = {"event_type": row.event_type, "definition_hash": row.definition_hash}
    problem = _decision_problem(command, decision, job, row.step, row.kind)
    if problem:  # bad input is recorded, as the engine records the refusals it makes itself
        # imported when the command runs: the database layer costs 0.2-0.6 s that `proactive --help` would pay
        from worker.engine.events import record_rejected

        attempt = {"approval_id": str(aid), "command": command, "decision": decision, "as": as_user}
        record_rejected("cli", problem, "InvalidDecision", body=json.dumps(attempt), org_id=row.org_id)
        fail(problem)
    if as_user:
        user_id = resolve_user(row.org_id, as_user)
    elif len(row.approver_user_ids or []) == 1:
        user_id = uuid.UUID(row.approver_user_ids[0])
    else:
        fail("--as USER is required (this approval has several approvers)")
    assert user_id is not None
    result = run_or_fail(
        lambda: approvals.decide(
            aid, decision, user_id=user_id, data=parse_json(data, "--data"), org_id=row.org_id, actor="cli"
        )
    )
    click.echo(f"approval {aid} {status_text(result.status)} ({result.decision}); job {result.job_id} resumes")


@main.command()
@click.argument("approval_id")
@click.option("--as", "as_user", default=None, help="Decide as this user (id or email).")
@click.option("--data", default=None, help="Decision data JSON (e.g. edited draft, chosen slot).")
@click.option(
    "--decision",
    default="approve",
    show_default=True,
    help="A decision the approval offers, e.g. send_now, send_invite, more.",
)
def approve(approval_id: str, as_user: str | None, data: str | None, decision: str) -> None:
    """Approve a paused job (exactly once; a second decision is refused)."""
    _decide("approve", approval_id, decision, as_user, data)


@main.command()
@click.argument("approval_id")
@click.option("--as", "as_user", default=None, help="Decide as this user (id or email).")
@click.option("--data", default=None, help="Decision data JSON.")
@click.option(
    "--decision",
    default="reject",
    show_default=True,
    help="A stopping decision the approval offers, e.g. skip, cancel, handle.",
)
def reject(approval_id: str, as_user: str | None, data: str | None, decision: str) -> None:
    """Reject a paused job: it ends `cancelled` and its remaining steps are skipped."""
    _decide("reject", approval_id, decision, as_user, data)


@main.command()
@click.argument("job_id")
def cancel(job_id: str) -> None:
    """Cancel a job: at once if no step is running, else at the next step boundary."""
    # imported when the command runs: the database layer costs 0.2-0.6 s that `proactive --help` would pay
    from worker.engine.executor import request_cancel

    result = run_or_fail(lambda: request_cancel(_uuid(job_id, "JOB_ID"), actor="cli"))
    when = "now" if result.immediate else "at the next step boundary"
    if result.status in JOB_FINAL - {JobStatus.CANCELLED}:
        fail(f"job {job_id} already ended ({result.status}); nothing to cancel", 1)
    click.echo(f"job {job_id} {status_text(result.status)} (cancel honoured {when})")


@main.command()
@json_option
def sweep(as_json: bool) -> None:
    """One sweeper pass: re-publish lost steps, expire approvals, fire due follow-ups, time out jobs."""
    # imported when the command runs: the database layer costs 0.2-0.6 s that `proactive --help` would pay
    from worker.engine.sweeper import sweep as run_sweep

    report = run_or_fail(run_sweep).as_dict()
    if as_json:
        click.echo(json.dumps(report))
    else:
        click.echo("  ".join(f"{k} {v}" for k, v in report.items()))


@main.command()
@click.option("--source", default=None, help="Only this source (a prefix works: slack = slack:action + slack:events).")
@click.option("--reason", default=None, help="Only rows whose reason or error type contains TEXT (any case).")
@click.option("--since", default=None, help="Only rows since 30m, 1h, 1d, 2w ago, or a date/time (UTC by default).")
@click.option("--org", "org_ref", default=None, help="Only this org (id or exact name).")
@click.option("--limit", type=click.IntRange(min=1), default=20, show_default=True)
@json_option
def rejected(
    source: str | None, reason: str | None, since: str | None, org_ref: str | None, limit: int, as_json: bool
) -> None:
    """Recently rejected input (the dead letter), newest first; `proactive replay ID` handles one again."""
    # imported when the command runs: the database layer costs 0.2-0.6 s that `proactive --help` would pay
    from worker.db import transaction
    from worker.models import utcnow
    from worker.ops.rejected import RejectedFilter, list_rejected, parse_since

    try:
        since_at = parse_since(since, utcnow()) if since else None
    except ValueError as err:
        fail(str(err))
    wanted = RejectedFilter(
        source=source, reason=reason, since=since_at, org_id=resolve_org(org_ref) if org_ref else None, limit=limit
    )
    with transaction() as conn:
        rows = list_rejected(conn, wanted)
    if as_json:
        click.echo(json.dumps([rejected_dict(r) for r in rows]))
        return
    for r in rows:
        if r.replay_job_id:
            replay = f" replayed -> {r.replay_job_id}"
        elif r.replayed_at:
            replay = f" replayed {r.replayed_at:%Y-%m-%d %H:%M}"
        else:
            replay = ""
        click.echo(
            f"{r.id}  {r.created_at:%Y-%m-%d %H:%M:%S}  {r.source:17} {r.error_type:20} {r.reason[:120]}{replay}"
        )
    if not rows:
        click.echo("nothing rejected" + (" matches" if (source or reason or since or org_ref) else ""))


def rejected_dict(r: Any) -> dict[str, Any]:
    """One rejected_events row for `rejected --json` (the body as stored; headers left out)."""
    return {
        "id": str(r.id),
        "org_id": str(r.org_id) if r.org_id else None,
        "source": r.source,
        "error_type": r.error_type,
        "reason": r.reason,
        "created_at": r.created_at.isoformat(),
        "replayed_at": r.replayed_at.isoformat() if r.replayed_at else None,
        "replay_job_id": str(r.replay_job_id) if r.replay_job_id else None,
        "body": r.body,
    }


def cli_actor() -> str:
    """Who runs this command, as the audit log names them."""

    return f"cli:{getpass.getuser()}"


@main.command()
@click.argument("rejected_id")
@click.option(
    "--force",
    is_flag=True,
    help="Replay one refused for its signature, token, key or content type (that check is skipped; audited).",
)
@json_option
def replay(rejected_id: str, force: bool, as_json: bool) -> None:
    """Handle a rejected request again, as a new request, from its stored body (after fixing what it
    referred to). Exit 2 when it cannot be replayed or is refused again (nothing changed)."""
    # imported when the command runs: the database layer costs 0.2-0.6 s that `proactive --help` would pay
    from worker.ops.replay import replay as run_replay

    rid = _uuid(rejected_id, "REJECTED_ID")
    done = run_or_fail(lambda: run_replay(rid, force=force, actor=cli_actor()))
    if as_json:
        click.echo(json.dumps(done.as_dict()))
        return
    forced = click.style(" (forced: audited)", fg="yellow") if done.forced else ""
    click.echo(f"replayed {rid} ({done.source}): {done.summary}{forced}")


@main.command()
@click.option("--demo", is_flag=True, help="Seed the demo org (idempotent).")
def seed(demo: bool) -> None:
    """Create seed data (the demo org with --demo)."""
    # imported when the command runs: the database layer costs 0.2-0.6 s that `proactive --help` would pay
    from worker import migrate
    from worker.ops.seed import seed_demo

    if not demo:
        fail("nothing to seed: pass --demo")
    run_or_fail(migrate.upgrade)
    result = run_or_fail(seed_demo)
    click.echo(
        f"demo org {result.org_id} {'created' if result.created else 'already there'}; users: "
        + ", ".join(f"{k}={v}" for k, v in result.users.items())
    )


OUTCOME_COLOURS = {"passed": "green", "paused": "yellow", "skipped": "bright_black", "failed": "red"}


@main.command()
@click.option("--org", "org_ref", default=None, help="Org id or exact name (default: the only org).")
@click.option("--sequences", default=None, help="Comma-separated event types (default: all nine).")
@click.option("--timeout", "timeout_s", type=float, default=30, show_default=True, help="Seconds per event.")
@click.option(
    "--worker/--no-worker",
    "in_process",
    default=None,
    help="Run a worker in this process (default: only on the embedded SQLite broker).",
)
@json_option
def smoke(org_ref: str | None, sequences: str | None, timeout_s: float, in_process: bool | None, as_json: bool) -> None:
    """Fire every sequence end to end in dry-run against fixture records; exit 0 only if none failed."""

    # imported when the command runs: the database layer costs 0.2-0.6 s that `proactive --help` would pay
    from worker import migrate
    from worker.ops.inprocess import EmbeddedWorker
    from worker.ops.smoke import as_dicts, run_smoke, summary

    if get_settings().is_sqlite:
        run_or_fail(migrate.upgrade)
    org_id = resolve_org(org_ref)
    chosen = [t.strip() for t in sequences.split(",") if t.strip()] if sequences else None
    if in_process is None:
        in_process = get_settings().broker_url.startswith("proactive+sqlite")

    def show(line: Any) -> None:
        if not as_json:
            colour = OUTCOME_COLOURS.get(line.outcome)
            click.echo(
                f"{click.style(f'{line.outcome:8}', fg=colour)} {line.event_type:22} "
                f"{line.steps_completed:>2}/{line.steps_total:<2} steps {ms(line.duration_ms):>8}  "
                f"{line.detail[:100]}"
            )

    embedded = EmbeddedWorker() if in_process else None
    with embedded or nullcontext():
        lines = run_or_fail(lambda: run_smoke(org_id, sequences=chosen, timeout_s=timeout_s, on_line=show))
    if as_json:  # `leftovers`: earlier commands' jobs the in-process worker ran meanwhile (not counted)
        leftovers = embedded.leftovers() if embedded else []
        click.echo(json.dumps({"results": as_dicts(lines), "summary": summary(lines), "leftovers": leftovers}))
    else:
        for note in embedded.leftover_lines() if embedded else []:
            click.echo(click.style(note, fg="bright_black"))
        click.echo(summary(lines))
    sys.exit(1 if any(line.outcome == "failed" for line in lines) else 0)  # this run's jobs only


@main.command()
@click.option("--timeout", "timeout_s", type=float, default=60, show_default=True)
def demo(timeout_s: float) -> None:
    """Seed the embedded database, run a worker in-process, fire the sequences, show the results."""
    # imported when the command runs: the database layer costs 0.2-0.6 s that `proactive --help` would pay
    from worker.ops.demo import run_demo

    sys.exit(run_demo(timeout_s=timeout_s, echo=click.echo))


# --------------------------------------------------------------------------- metrics


@main.command()
@click.option("--org", "org_ref", default=None, help="Org id or exact name (default: the only org).")
@click.option(
    "--range",
    "range_name",
    type=click.Choice(["7d", "30d", "90d"]),
    default="7d",
    show_default=True,
    help="The last 7, 30 or 90 days in the org's time zone, today included.",
)
@json_option
def metrics(org_ref: str | None, range_name: str, as_json: bool) -> None:
    """An org's metrics: jobs by status/type/source, durations, success rate, stuck jobs, daily
    counts, top skills, errors, approvals and Slack latency (docs/metrics.md)."""
    # imported when the command runs: the database layer costs 0.2-0.6 s that `proactive --help` would pay
    from worker.db import transaction
    from worker.metrics.report import org_metrics, parse_range

    org_id = resolve_org(org_ref)
    with transaction() as conn:
        data = run_or_fail(lambda: org_metrics(conn, org_id, parse_range(range_name)))
    if as_json:
        click.echo(json.dumps(data))
        return
    print_metrics(data)


@main.command("metrics-rollup")
@click.option(
    "--batch", type=click.IntRange(1, 50_000), default=5000, show_default=True, help="Jobs folded per transaction."
)
@json_option
def metrics_rollup(batch: int, as_json: bool) -> None:
    """Fold every settled job into the metrics roll-up now, with progress (Beat does it each minute;
    run this once after upgrading a database with history, docs/metrics.md)."""
    # imported when the command runs: the database layer costs 0.2-0.6 s that `proactive --help` would pay
    from worker.db import transaction
    from worker.metrics.rollup import roll_up, unrolled

    with transaction() as conn:
        waiting = unrolled(conn)
    if not as_json:
        click.echo(f"{waiting:,} jobs not rolled up yet; folding the settled ones, {batch:,} per transaction")
    started = time.monotonic()

    def progress(total: int) -> None:
        if not as_json:
            rate = total / max(time.monotonic() - started, 1e-9)
            click.echo(f"  {total:,} folded ({rate:,.0f} jobs/s)")

    folded = roll_up(batch=batch, progress=progress)
    with transaction() as conn:
        left = unrolled(conn)
    seconds = time.monotonic() - started
    if as_json:
        click.echo(json.dumps({"folded": folded, "not_settled": left, "seconds": round(seconds, 3)}))
        return
    click.echo(
        f"{folded:,} jobs folded in {seconds:.1f} s; {left:,} not settled yet (running, awaiting approval, "
        "finished in the last 5 min or a message still to send): the metrics read them live"
    )


@main.command()
@click.option(
    "--org", "org_ref", default=None, help="Only this org (id or exact name); default: every org and the log tables."
)
@click.option("--dry-run", is_flag=True, help="Count what would go; change nothing.")
@click.option(
    "--batch", type=click.IntRange(1, 10_000), default=1000, show_default=True, help="Rows per statement (and commit)."
)
@json_option
def purge(org_ref: str | None, dry_run: bool, batch: int, as_json: bool) -> None:
    """Purge content older than each org's retention (`retention_days`, default 90: payloads, step
    outputs, drafts, email bodies, transcripts, audit data; the rows and their metadata stay) and
    delete log rows older than 30 days, in batches, with progress. Beat does it daily at 03:41 UTC for
    at most a minute; run this to catch up or to see (--dry-run) what would go."""
    # imported when the command runs: the database layer costs 0.2-0.6 s that `proactive --help` would pay
    from worker.ops.retention import WHAT
    from worker.ops.retention import purge as run_purge

    org_id = resolve_org(org_ref) if org_ref else None
    last = [time.monotonic()]

    def progress(report: Any) -> None:
        if not as_json and time.monotonic() - last[0] >= 2.0:
            last[0] = time.monotonic()
            click.echo(f"  {report.total:,} rows so far ({report.total / max(report.seconds, 1e-9):,.0f} rows/s)")

    report = run_or_fail(lambda: run_purge(org_id=org_id, dry_run=dry_run, batch=batch, progress=progress))
    if as_json:
        click.echo(json.dumps(report.as_dict()))
        return
    for o in report.orgs:
        line = f"{o.name}  {o.org_id}  retention {o.days} days: content created before {o.cutoff:%Y-%m-%d %H:%M} UTC"
        click.echo(line + (click.style(f"  ({o.problem})", fg="yellow") if o.problem else ""))
    if org_id is not None:
        click.echo("(--org: cron_runs, gmail_pushes and rejected_events are left to a run without --org)")
    verb = "would go" if dry_run else "went"
    click.echo(f"\n{'table':<18} {'rows':>10}  {'what ' + verb}")
    for table, n in report.rows.items():
        click.echo(f"{table:<18} {n:>10,}  {WHAT.get(table, '')}")
    summary = f"{report.total:,} rows {'would be purged or deleted' if dry_run else 'purged or deleted'}"
    click.echo(f"\n{summary} in {report.seconds:.1f} s" + ("; nothing changed (dry run)" if dry_run else ""))


def _rate(value: float | None) -> str:
    return "-" if value is None else f"{value * 100:.1f} %"


def _counts_line(counts: dict[str, int]) -> str:
    return "  ".join(f"{name} {n}" for name, n in counts.items()) or "-"


def print_metrics(m: dict[str, Any]) -> None:
    """Print `org_metrics` as a few aligned tables."""
    title = f"{m['org_name']} · last {m['range_days']} days ({m['timezone']}, since {m['window_start'][:16]} UTC)"
    click.echo(click.style(title, bold=True))
    stuck = len(m["stuck_jobs"])
    cards = [
        ("jobs", str(m["total_sequences"])),
        ("success rate", _rate(m["success_rate"])),
        ("p50 duration", ms(m["p50_duration_ms"])),
        ("avg duration", ms(m["avg_duration_ms"])),
        ("p95 duration", ms(m["p95_duration_ms"])),
        ("stuck", click.style(str(stuck), fg="red" if stuck else "green")),
    ]
    click.echo("   ".join(f"{name}: {value}" for name, value in cards))
    click.echo()
    click.echo(f"by status  {_counts_line({status_text(k): v for k, v in m['sequences_by_status'].items()})}")
    click.echo(f"by type    {_counts_line(m['sequences_by_type'])}")
    click.echo(f"by source  {_counts_line(m['sequences_by_source'])}")
    if m["stuck_jobs"]:
        click.echo()
        click.echo(click.style("Stuck", fg="red", bold=True))
        for s in m["stuck_jobs"]:
            click.echo(f"  {s['job_id']:36}  {s['type']:20}  since {s['since'][:16]}  {s['why']}")
    click.echo()
    click.echo(f"{'DAY':10}  {'TOTAL':>5}  {'DONE':>5}  {'FAILED':>6}")
    for d in m["daily_counts"]:
        failed = click.style(f"{d['failed']:>6}", fg="red") if d["failed"] else f"{d['failed']:>6}"
        click.echo(f"{d['date']:10}  {d['total']:>5}  {d['completed']:>5}  {failed}")
    if m["top_skills"]:
        click.echo()
        click.echo(f"{'SKILL':32}  {'RUNS':>6}  {'FAILED':>7}  {'P95':>9}")
        for k in m["top_skills"]:
            click.echo(
                f"{k['step'][:32]:32}  {k['runs']:>6}  {_rate(k['failure_rate']):>7}  {ms(k['p95_duration_ms']):>9}"
            )
    if m["error_summary"]:
        click.echo()
        click.echo(f"{'ERRORS':>6}  {'CLASS':12}  MESSAGE (example job)")
        for e in m["error_summary"]:
            click.echo(f"{e['count']:>6}  {e['error_class'][:12]:12}  {e['message'][:70]} ({e['example_job_id']})")
    h = m["hitl"]
    click.echo()
    click.echo(
        f"Approvals: {h['opened']} opened, {h['decided']} decided, {h['expired']} expired, {h['pending']} pending; "
        f"time to decision median {ms(h['median_decision_ms'])}, p90 {ms(h['p90_decision_ms'])}"
    )
    for r in h["pending_by_rep"]:
        click.echo(f"  {r['name'][:30]:30}  {r['pending']:>3} pending, oldest {ms(r['oldest_age_ms'])}")
    sl = m["slack"]
    click.echo(
        f"Slack: first message queued p50 {ms(sl['first_message_queued_p50_ms'])} / p95 "
        f"{ms(sl['first_message_queued_p95_ms'])}, sent p50 {ms(sl['first_message_sent_p50_ms'])} / p95 "
        f"{ms(sl['first_message_sent_p95_ms'])}; outbox {sl['outbox_pending']} pending, oldest "
        f"{ms(sl['outbox_oldest_pending_age_ms'])}"
    )


# `proactive prometheus`'s port (danihodovic/celery-exporter's default too: move one if both run).
PROMETHEUS_PORT = 9808


@main.command()
@click.option("--host", default="0.0.0.0", show_default=True, help="Address to listen on.")
@click.option(
    "--port", type=click.IntRange(0, 65535), default=PROMETHEUS_PORT, show_default=True, help="Port to listen on."
)
def prometheus(host: str, port: int) -> None:
    """Serve GET /metrics for a machine that runs only Celery workers: the values its processes write
    to PROMETHEUS_MULTIPROC_DIR, added up, and the database gauges (the web edge's /metrics does this
    where it runs; README, "Prometheus"). Ctrl-C or SIGTERM stops it."""
    # asyncio and the HTTP server load only for this command (50 ms on every other one)
    from worker.metrics.exporter import ExporterError
    from worker.metrics.exporter import run as run_exporter

    try:
        run_exporter(host, port, echo=click.echo)
    except ExporterError as err:
        fail(str(err), err.exit_code)


# --------------------------------------------------------------------------- API keys


@main.group()
def keys() -> None:
    """Org API keys for POST /api/events and GET /api/jobs, and with the admin role the org's admin
    API (stored hashed; shown once)."""


# A key's roles (worker.access.api_keys.ApiKeyRole), spelled out here so `--help` works without importing it.
KEY_ROLES = ("events", "admin")


@keys.command("create")
@click.option("--org", "org_ref", default=None, help="Org id or exact name (default: the only org).")
@click.option("--name", required=True, help="What the key is for (e.g. 'crm-sync').")
@click.option(
    "--role",
    type=click.Choice(KEY_ROLES),
    default="events",
    show_default=True,
    help="events: fire events and read jobs; admin: also GET /api/admin/metrics for its org.",
)
@json_option
def keys_create(org_ref: str | None, name: str, role: str, as_json: bool) -> None:
    """Create a key and print it once (only its SHA-256 is stored)."""
    # imported when the command runs: the database layer costs 0.2-0.6 s that `proactive --help` would pay
    from worker.access.api_keys import create_key

    org_id = resolve_org(org_ref)
    key, info = run_or_fail(lambda: create_key(org_id, name, role=role))
    if as_json:
        click.echo(json.dumps({**info.as_dict(), "key": key}))
        return
    click.echo(key)
    click.echo(
        f"key {info.id} ({info.name}, role {info.role}) for org {org_id}: copy it now, it is not shown again",
        err=True,
    )


@keys.command("list")
@click.option("--org", "org_ref", default=None, help="Org id or exact name (default: every org).")
@json_option
def keys_list(org_ref: str | None, as_json: bool) -> None:
    """Keys with their prefix, role, org, last use and revocation."""
    # imported when the command runs: the database layer costs 0.2-0.6 s that `proactive --help` would pay
    from worker.access.api_keys import list_keys
    from worker.db import transaction

    org_id = resolve_org(org_ref) if org_ref else None
    with transaction() as conn:
        rows = run_or_fail(lambda: list_keys(conn, org_id))
    if as_json:
        click.echo(json.dumps([r.as_dict() for r in rows]))
        return
    if not rows:
        click.echo("no API keys")
    for r in rows:
        state = click.style("revoked", fg="magenta") if r.revoked_at else click.style("active ", fg="green")
        used = f"{r.last_used_at:%Y-%m-%d %H:%M}" if r.last_used_at else "never"
        click.echo(f"{r.id}  {r.prefix}…  {state}  {r.role:6}  org {r.org_id}  used {used:16}  {r.name}")


@keys.command("revoke")
@click.argument("key_id")
def keys_revoke(key_id: str) -> None:
    """Revoke a key: requests with it are refused from now on."""
    # imported when the command runs: the database layer costs 0.2-0.6 s that `proactive --help` would pay
    from worker.access.api_keys import revoke

    info = run_or_fail(lambda: revoke(_uuid(key_id, "KEY_ID")))
    click.echo(f"key {info.id} ({info.name}) revoked at {info.revoked_at:%Y-%m-%d %H:%M:%S} UTC")


# --------------------------------------------------------------------------- Gmail


@main.group()
def gmail() -> None:
    """Gmail push: the `users.watch` that makes Gmail publish new INBOX mail to GMAIL_PUBSUB_TOPIC."""


@gmail.command("renew")
@click.option("--org", "org_ref", default=None, help="Org id or exact name (default: every org).")
@click.option("--all", "renew_all", is_flag=True, help="Every active Google integration, not only the due ones.")
@click.option("--json", "as_json", is_flag=True, help="Print the results as a JSON list instead of the table.")
def gmail_renew(org_ref: str | None, renew_all: bool, as_json: bool) -> None:
    """Renew the Gmail watches expiring within 24 h (or expired, or never set); exit 1 if one failed."""
    # imported when the command runs: the database layer costs 0.2-0.6 s that `proactive --help` would pay
    from worker.google import watch as gmail_watch
    from worker.models import utcnow

    org_id = resolve_org(org_ref) if org_ref else None
    within = None if renew_all else gmail_watch.DUE_WITHIN
    results = run_or_fail(lambda: gmail_watch.renew_due(utcnow(), org_id=org_id, within=within))
    failed = sum(not r.ok for r in results)
    if as_json:
        click.echo(json.dumps([r.as_dict() for r in results]))
    else:
        click.echo(gmail_watch.format_table(results))
        if results:
            summary = f"{len(results) - failed} renewed, {failed} failed"
            click.echo(click.style(summary, fg="red" if failed else "green"))
    sys.exit(1 if failed else 0)


@gmail.command("link")
@click.option("--user", "user_ref", required=True, help="The rep's id or email.")
@click.option("--org", "org_ref", default=None, help="Org id or exact name (default: the only org).")
def gmail_link(user_ref: str, org_ref: str | None) -> None:
    """Print the rep's signed link to connect Google (Gmail + Calendar), valid 7 days."""
    # imported when the command runs: the database layer costs 0.2-0.6 s that `proactive --help` would pay
    from worker.google.links import connect_url

    org_id = resolve_org(org_ref)
    user_id = resolve_user(org_id, user_ref)
    assert user_id is not None
    click.echo(run_or_fail(lambda: connect_url(org_id, user_id)))


@main.command()
@click.argument("processes", nargs=-1)
@click.option("--procfile", default=None, help="Procfile to run (default: ./Procfile, else the project's).")
@click.option("-c", "--concurrency", default=None, help="How many of each, e.g. worker=3 (honcho's -c).")
@click.option("-p", "--port", type=int, default=None, help="First port (honcho's -p; default $PORT or 5000).")
def fleet(processes: tuple[str, ...], procfile: str | None, concurrency: str | None, port: int | None) -> None:
    """Run the Procfile (web, worker, ticks, beat, flower; or the PROCESSES named) with honcho, this
    installation's programs first on PATH. Ctrl-C stops them all."""

    try:
        plan = plan_fleet(
            find_procfile(Path.cwd(), procfile),
            processes,
            os.environ,
            Path(sys.executable).parent,
            state_dir=state_dir(),
            concurrency=concurrency,
            port=port,
        )
    except FleetError as exc:
        fail(str(exc))
    click.echo(f"starting {', '.join(plan.processes)} from {plan.procfile} ({_safe_url()})")
    exec_fleet(plan)


@main.group()
def org() -> None:
    """An org's modes: dry-run (nothing it does reaches a real person) or live; its retention."""


def _print_org_mode(mode: Any) -> None:
    state = click.style("dry-run", fg="cyan") if mode.dry_run else click.style("live", fg="green")
    note = (
        " (sends recorded, not made; Slack kept in the console inbox; `proactive org live` to go live)"
        if mode.dry_run
        else ""
    )
    click.echo(f"{mode.name}  {mode.org_id}  {state}{'' if mode.enabled else '  disabled'}{note}")
    click.echo(f"retention: content kept {mode.retention_days} days (`proactive org retention DAYS` to change)")


@org.command("show")
@click.option("--org", "org_ref", default=None, help="Org id or exact name (default: the only org).")
@click.option("--json", "as_json", is_flag=True, help="Print the org's modes as a JSON object.")
def org_show(org_ref: str | None, as_json: bool) -> None:
    """Show whether the org is live or in dry-run."""
    # imported when the command runs: the database layer costs 0.2-0.6 s that `proactive --help` would pay
    from worker.orgs import org_mode

    mode = run_or_fail(lambda: org_mode(resolve_org(org_ref)))
    if as_json:
        click.echo(json.dumps(mode.as_dict()))
    else:
        _print_org_mode(mode)


@org.command("live")
@click.option("--org", "org_ref", default=None, help="Org id or exact name (default: the only org).")
def org_live(org_ref: str | None) -> None:
    """Turn dry-run off: new jobs send emails, invites and Slack messages for real (audited)."""
    _set_dry_run(org_ref, on=False)


@org.command("dry-run")
@click.option("--org", "org_ref", default=None, help="Org id or exact name (default: the only org).")
def org_dry_run(org_ref: str | None) -> None:
    """Turn dry-run on: new jobs record their sends and keep Slack in the console inbox (audited)."""
    _set_dry_run(org_ref, on=True)


def _set_dry_run(org_ref: str | None, *, on: bool) -> None:

    # imported when the command runs: the database layer costs 0.2-0.6 s that `proactive --help` would pay
    from worker.orgs import org_mode, set_dry_run

    org_id = resolve_org(org_ref)
    changed = run_or_fail(lambda: set_dry_run(org_id, on, actor=f"cli:{getpass.getuser()}"))
    mode = org_mode(org_id)
    if changed:
        click.echo("jobs already accepted keep the mode they started in")
    _print_org_mode(mode)


@org.command("retention")
@click.argument("days", type=int)
@click.option("--org", "org_ref", default=None, help="Org id or exact name (default: the only org).")
def org_retention(days: int, org_ref: str | None) -> None:
    """Keep the org's content (payloads, step outputs, drafts, email bodies, transcripts) DAYS days
    (7 to 3650; default 90) before the daily purge clears it (audited)."""

    # imported when the command runs: the database layer costs 0.2-0.6 s that `proactive --help` would pay
    from worker.orgs import check_retention_days, org_mode, set_retention_days

    try:
        check_retention_days(days)
    except ValueError as err:
        fail(str(err))
    org_id = resolve_org(org_ref)
    changed = run_or_fail(lambda: set_retention_days(org_id, days, actor=f"cli:{getpass.getuser()}"))
    if changed:
        click.echo(f"content older than {days} days goes at the next purge (daily at 03:41 UTC, or `proactive purge`)")
    _print_org_mode(org_mode(org_id))


# --------------------------------------------------------------------------- recorder


@main.group()
def recorder() -> None:
    """The meeting recorder's webhook: each org's secret for POST /webhooks/recording/<org_id>."""


@recorder.command("secret")
@click.option("--org", "org_ref", required=True, help="Org id or exact name.")
@click.option("--rotate", is_flag=True, help="Make a new secret; the current one stays valid for --grace-days.")
@click.option(
    "--grace-days",
    type=click.IntRange(min=0, max=90),
    default=7,
    show_default=True,
    help="With --rotate: days the previous secret keeps working (0: it stops now).",
)
@click.option("--finish", is_flag=True, help="End a rotation now: only the newest secret works.")
@json_option
def recorder_secret(org_ref: str, rotate: bool, grace_days: int, finish: bool, as_json: bool) -> None:
    """Make the org's recorder secret and print it once (needs ENCRYPTION_KEYS; audited)."""

    # imported when the command runs: the database layer costs 0.2-0.6 s that `proactive --help` would pay
    from worker.recorder import secrets as recorder_secrets

    if rotate and finish:
        fail("--rotate and --finish do not go together: rotate first, finish once the recorder uses the new secret")
    org_id = resolve_org(org_ref)
    actor = cli_actor()
    if finish:
        info = run_or_fail(lambda: recorder_secrets.finish_rotation(org_id, actor=actor))
    elif rotate:
        grace = timedelta(days=grace_days)
        info = run_or_fail(lambda: recorder_secrets.rotate(org_id, actor=actor, grace=grace))
    else:
        info = run_or_fail(lambda: recorder_secrets.create(org_id, actor=actor))
    if as_json:
        click.echo(json.dumps(info.as_dict()))
        return
    if info.secret:
        click.echo(info.secret)
        url = f"{get_settings().app_url.rstrip('/')}/webhooks/recording/{org_id}"
        click.echo(
            f"recorder secret for org {org_id}: copy it now, it is not shown again; the recorder posts to {url}",
            err=True,
        )
    if info.previous_expires_at:
        click.echo(
            f"the previous secret keeps working until {info.previous_expires_at:%Y-%m-%d %H:%M} UTC "
            "(`proactive recorder secret --org ID --finish` ends it sooner)",
            err=True,
        )
    elif finish:
        click.echo(f"rotation finished for org {org_id}: only the newest recorder secret works")


# --------------------------------------------------------------------------- admin pages


@main.group()
def admin() -> None:
    """The admin pages in a browser (job timelines): one-time sign-in links."""


@admin.command("link")
@click.option("--org", "org_ref", default=None, help="Sign in to this org only (id or exact name); default: every org.")
@click.option(
    "--minutes",
    type=click.IntRange(min=1),
    default=15,
    show_default=True,
    help="How long the link works (at most 1440); it signs in once.",
)
@click.option("--next", "next_path", default=None, help="The admin page to open once signed in, e.g. /admin/jobs/ID.")
def admin_link(org_ref: str | None, minutes: int, next_path: str | None) -> None:
    """Print a one-time sign-in link for the admin pages (needs ADMIN_SESSION_SECRET, here and on the
    web server)."""
    # imported when the command runs: the database layer costs 0.2-0.6 s that `proactive --help` would pay
    from worker.access.admin_auth import create_link

    org_id = resolve_org(org_ref) if org_ref else None
    try:
        link = run_or_fail(lambda: create_link(org_id, minutes, next_path))
    except ValueError as err:
        fail(f"--minutes: {err}")
    click.echo(link.url)
    scope = f"org {org_id}" if org_id else "every org"
    click.echo(f"signs in once, to {scope}, until {link.expires_at:%Y-%m-%d %H:%M} UTC", err=True)


if __name__ == "__main__":
    main()
