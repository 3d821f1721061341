"""How the `proactive` command prints for people: coloured statuses, durations, a job's timeline and
the console inbox. Shared by the commands (worker/ops/cli.py) and the demo (worker/ops/demo.py),
which prints the same timelines and inbox at its end.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

import click

import blocks

if TYPE_CHECKING:  # the inbox module loads the database layer; printing needs only the type
    from worker.slack.console_inbox import InboxEntry

STATUS_COLOURS = {
    "completed": "green",
    "succeeded": "green",
    "approved": "green",
    "console": "green",
    "sent": "green",
    "running": "cyan",
    "queued": "cyan",
    "awaiting_approval": "yellow",
    "pending": "yellow",
    "skipped": "bright_black",
    "superseded": "bright_black",
    "failed": "red",
    "timeout": "red",
    "expired": "magenta",
    "cancelled": "magenta",
    "rejected": "magenta",
}


def status_text(status: str) -> str:
    """A status word coloured by meaning (plain when not a terminal)."""
    return click.style(status, fg=STATUS_COLOURS.get(status))


def ms(value: int | None) -> str:
    """Durations for people: 850 ms, 2.4 s, 3.1 min."""
    if value is None:
        return "-"
    if value < 1000:
        return f"{value} ms"
    if value < 60_000:
        return f"{value / 1000:.1f} s"
    return f"{value / 60_000:.1f} min"


def job_status_text(status: str, errors: int) -> str:
    """A job's coloured status with its failed steps counted ("completed · 2 errors"), so a run whose
    best-effort steps failed never reads like a clean one (a failed job names its error instead)."""
    if not errors or status == "failed":
        return status_text(status)
    return status_text(status) + click.style(f" · {errors} error{'s' if errors != 1 else ''}", fg="yellow")


def cell(text: str, width: int) -> str:
    """`text` padded to `width` visible characters (colour codes take no room)."""
    return text + " " * max(0, width - len(click.unstyle(text)))


def pad(status: str) -> int:
    return len(status_text(status)) - len(status)


def print_timeline(d: dict[str, Any], outputs: bool = False) -> None:
    """Print one job as a readable timeline."""
    extra = f" — {d['reason']}" if d.get("reason") else ""
    status = job_status_text(d["status"], d.get("errors", 0))
    click.echo(click.style(f"{d['event_type']}", bold=True) + f"  job {d['id']}  {status}{extra}")
    click.echo(
        f"  source {d['source']}  key {d['idempotency_key']}  created {d['created_at'][:19]}  "
        f"duration {ms(d['duration_ms'])}" + (f"  trace {d['trace_id']}" if d.get("trace_id") else "")
    )
    if d.get("parent"):
        p = d["parent"]
        click.echo(f"  follow-up of {p['event_type']} job {p['id']} ({status_text(p['status'])})")
    if d.get("live_job_id"):
        click.echo(f"  the live job of this rep and deal: job {d['live_job_id']} (fire with replace to cancel it)")
    if d.get("scheduled_for"):
        click.echo(f"  scheduled: its steps start at {d['scheduled_for'][:16]} (`proactive cancel` stops it before)")
    if d.get("dry_run"):
        click.echo(click.style("  dry-run: sends recorded, not made; Slack kept in the console inbox", fg="cyan"))
    if d.get("purged"):  # retention cleared the content: an empty payload or output is not the job's own
        click.echo(click.style(f"  {d['purged']}", fg="yellow"))
    if d.get("error"):
        click.echo(click.style(f"  error in {d['error_step']}: {d['error'][:300]}", fg="red"))
    elif d.get("failed_steps"):
        names = ", ".join(f["step"] for f in d["failed_steps"])
        click.echo(click.style(f"  failed steps (best-effort, the job went on): {names}", fg="yellow"))
    for s in d["steps"]:
        mark = " (superseded)" if s["superseded"] else ""
        it = f"#{s['iteration']}" if s["iteration"] else ""
        detail = s["error"] or (s["reason"] or "").replace("_", " ")  # skip reasons are codes: not_sales
        if s["status"] == "succeeded" and s["error"]:
            detail = f"(after a retry: {s['error']})"
        if s.get("waiting"):
            detail = f"waiting for Google, next try {(s['not_before'] or '')[:16]}: {s['error']}"
        click.echo(
            f"  {s['step'] + it:32} {status_text(s['status']):{20 + pad(s['status'])}} "
            f"try {s['attempt']}  {ms(s['duration_ms']):>8}  {detail[:160]}{mark}"
        )
        if outputs and s.get("purged_at"):
            click.echo(f"      (output purged on {s['purged_at'][:10]})")
        elif outputs and s["output"] is not None:
            click.echo("      " + json.dumps(s["output"], default=str)[:400])
    for m in d.get("messages", []):
        problem = f"  {m['error_code']}: {(m['error'] or '')[:100]}" if m["error_code"] else ""
        held = f"  not before {m['not_before'][:19]}" if m["not_before"] and m["status"] == "pending" else ""
        click.echo(f"  slack {m['kind'].replace('_', ' '):28} {status_text(m['status'])}{held}{problem}")
    for a in d["approvals"]:
        who = f" by {a['decided_by']} at {(a['decided_at'] or '?')[:19]}" if a["decided_by"] else ""
        chosen = f" ({blocks.decision_label(a['decision'])})" if a["decision"] else ""
        purged = f"  (draft purged on {a['purged_at'][:10]})" if a.get("purged_at") else ""
        click.echo(
            f"  approval {a['id']} [{a['kind'].replace('_', ' ')}] {status_text(a['status'])}"
            f"{chosen}{who}  approvers: {', '.join(a['approvers'])}{purged}"
        )
    for e in d.get("effects", []):
        what = f"{', '.join(e['recipients'])}: {e['subject']}" if e["subject"] else ", ".join(e["recipients"])
        how = "recorded (dry-run)" if e["dry_run"] else (f"id {e['provider_id']}" if e["provider_id"] else "")
        click.echo(
            f"  effect {e['name']:26} {status_text(e['status'])}  try {e['attempt']}  "
            f"step {e['step']}  {what[:100]}  {how}".rstrip()
        )
    for f in d.get("follow_ups", []):
        click.echo(f"  follow-up {f['event_type']} job {f['id']} ({status_text(f['status'])})")
    for f in d.get("scheduled_follow_ups", []):
        click.echo(f"  follow-up {f['event_type']} scheduled for {(f['fire_at'] or '')[:16]}")


def print_inbox(messages: Iterable[InboxEntry]) -> None:
    """The console inbox's messages as Slack would show them, oldest first."""
    messages = list(messages)
    if not messages:
        click.echo("inbox is empty")
        return
    for m in messages:
        status = "" if m.status == "console" else f" · {m.status}"
        click.echo(click.style(f"── to {m.to} · {m.kind} · {m.created_at:%Y-%m-%d %H:%M:%S}{status}", fg="cyan"))
        click.echo(m.text)
        click.echo()
