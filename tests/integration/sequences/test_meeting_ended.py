"""meeting_ended end to end: the debrief, CRM and tasks, follow-up events, and the follow-up email
reviewed in Slack (edit / send later + undo / cancel), sent through Gmail as the rep.

Alice's DMs go out at once whatever the hour (quiet hours and hourly budget lifted for this module,
restored after), so every assertion on Slack is about what the sequence asked for, not when.
"""

from __future__ import annotations

import base64
import email
import uuid
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import delete, insert, select, update

from tests.fakes.slack import Call
from tests.integration.sequences.conftest import World, children, wait_delivered, wait_job
from tests.support.engine import approvals_of, job_row, pending_approval, step_rows
from tests.support.waiting import wait_for
from worker.db import transaction
from worker.engine.approvals import decide, undo
from worker.engine.events import fire_event
from worker.models import Activity, AuditLog, Deal, Meeting, SlackOutbox, Task, User, steps, utcnow
from worker.ops.seed import demo_id

pytestmark = pytest.mark.slow

GLOBEX = demo_id("meeting", "globex-discovery")
GLOBEX_DEAL = demo_id("deal", "globex-fleet")
STANDUP = demo_id("meeting", "team-standup")
SOLO = demo_id("meeting", "solo-prep")
HANK = "hank@globex.example"
PROPOSAL_ITEM = "Send over a proposal with the rollout plan"  # "Next step on my side: I'll send over … by Friday."
CALL_ITEM = "Set up a call next Tuesday afternoon with Dana to walk through pricing"
CALL_SENTENCE = "And let's set up a call next Tuesday afternoon with Dana to walk through pricing."
LENA_ITEM = "Send the depot list and current volumes"  # Hank: "Lena will send you…"; Lena: "I'll get that to you"
HEARD = (  # what Hank and Lena said, read back to them in the proposal
    "You set aside about eighty thousand for this in Q1.\nYour CFO, Dana, owns the budget.\n"
    "You'd like to go live before the spring peak, so a decision by the end of January.\n"
    "You also looked at RouteMax last year but the integration with your TMS was a mess."
)
EMAIL_BUTTONS = ["email_send_now", "email_edit", "email_send_later", "email_cancel"]
SALES_STEPS = (
    "classify-call-type",
    "extract-action-items",
    "detect-intents",
    "coaching-micro-feedback",
    "suggest-next-actions",
    "draft-followup-email",
    "update-crm-from-meeting",
    "create-tasks-from-actions",
    "notify-slack-summary",
)
GMAIL_SEND = "/gmail/v1/users/me/messages/send"


# --------------------------------------------------------------------------- fixtures and helpers


@pytest.fixture(scope="module", autouse=True)
def alice_reachable(world: World) -> Iterator[None]:
    """No quiet hours and no hourly budget for Alice while this module runs (restored after)."""
    users = User.__table__
    with transaction() as conn:
        before = conn.execute(
            select(users.c.quiet_hours, users.c.max_notifications_per_hour).where(users.c.id == world.user("alice"))
        ).one()
        conn.execute(
            update(users)
            .where(users.c.id == world.user("alice"))
            .values(quiet_hours=None, max_notifications_per_hour=0)
        )
    try:
        yield
    finally:
        with transaction() as conn:
            conn.execute(
                update(users)
                .where(users.c.id == world.user("alice"))
                .values(quiet_hours=before.quiet_hours, max_notifications_per_hour=before.max_notifications_per_hour)
            )


@pytest.fixture(scope="module", autouse=True)
def demo_data_restored(world: World) -> Iterator[None]:
    """What this module's jobs write on the shared demo records is taken back after it: the Globex
    deal's next step and last activity, the meetings' stored call types, new activities and tasks."""
    deals, meetings = Deal.__table__, Meeting.__table__
    with transaction() as conn:
        deal = conn.execute(select(deals.c.next_step, deals.c.last_activity_at).where(deals.c.id == GLOBEX_DEAL)).one()
        call_types = list(
            conn.execute(
                select(meetings.c.id, meetings.c.call_type, meetings.c.call_type_confidence).where(
                    meetings.c.id.in_([GLOBEX, STANDUP])
                )
            )
        )
        activities = list(conn.execute(select(Activity.id).where(Activity.deal_id == GLOBEX_DEAL)).scalars())
        tasks = list(conn.execute(select(Task.id).where(Task.meeting_id.in_([GLOBEX, STANDUP]))).scalars())
    try:
        yield
    finally:
        with transaction() as conn:
            conn.execute(
                update(deals)
                .where(deals.c.id == GLOBEX_DEAL)
                .values(next_step=deal.next_step, last_activity_at=deal.last_activity_at)
            )
            for m in call_types:
                conn.execute(
                    update(meetings)
                    .where(meetings.c.id == m.id)
                    .values(call_type=m.call_type, call_type_confidence=m.call_type_confidence)
                )
            conn.execute(
                delete(Activity.__table__).where(Activity.deal_id == GLOBEX_DEAL, Activity.id.not_in(activities))
            )
            conn.execute(delete(Task.__table__).where(Task.meeting_id.in_([GLOBEX, STANDUP]), Task.id.not_in(tasks)))


def _meeting_event(w: World, meeting_id: uuid.UUID, user: str = "alice") -> dict[str, Any]:
    return w.event("meeting_ended", {"meeting_id": str(meeting_id)}, user=user)


def _tasks_of(meeting_id: uuid.UUID) -> list[Any]:
    with transaction() as conn:
        return list(conn.execute(select(Task.__table__).where(Task.meeting_id == meeting_id).order_by(Task.title)))


def _clear_tasks(meeting_id: uuid.UUID) -> None:
    with transaction() as conn:
        conn.execute(delete(Task.__table__).where(Task.meeting_id == meeting_id))


def _outbox(*job_ids: uuid.UUID) -> list[Any]:
    with transaction() as conn:
        return list(
            conn.execute(
                select(SlackOutbox.__table__).where(SlackOutbox.job_id.in_(job_ids)).order_by(SlackOutbox.created_at)
            )
        )


def _settled_steps(job_id: uuid.UUID) -> dict[str, Any]:
    """The job's step rows once none is queued or running (a step that ran alongside a failed critical
    one may still be finishing when the job turns failed)."""

    def settled() -> dict[str, Any] | None:
        rows = step_rows(job_id)
        return rows if all(r.status not in ("queued", "running") for r in rows.values()) else None

    return wait_for(settled, what=f"every step of job {job_id} ended")


def _dm_traffic(w: World, who: str) -> list[Call]:
    """Every Slack call about `who`'s DM: conversations.open for them, and posts/edits in the channel."""
    dm, slack_user = w.dm(who), f"U0{who.upper()[:6]}"
    return [
        c
        for c in w.slack.calls()
        if c.params.get("channel") == dm or (c.method == "conversations.open" and c.params.get("users") == slack_user)
    ]


def _posted_kinds(w: World, who: str, rows: list[Any]) -> list[str]:
    """The outbox kind of each chat.postMessage in `who`'s DM ("?" for a message not among `rows`)."""
    kind_by_ts = {r.ts: r.kind for r in rows if r.ts}
    return sorted(
        kind_by_ts.get(c.response.get("ts"), "?") for c in w.slack.calls("chat.postMessage", channel=w.dm(who))
    )


def _action_ids(blocks: list[dict[str, Any]] | None) -> list[str]:
    return [e["action_id"] for b in blocks or [] if b["type"] == "actions" for e in b["elements"]]


def _approval_post(w: World, approval: Any) -> Call:
    posts = [
        c for c in w.slack.calls("chat.postMessage", channel=w.dm("alice")) if c.response.get("ts") == approval.slack_ts
    ]
    assert len(posts) == 1, posts
    return posts[0]


def _email_review(w: World, job: uuid.UUID) -> Any:
    """Wait for the job's email_preview approval to be posted in Alice's DM; returns the approval row."""
    assert wait_job(job, "awaiting_approval", "failed", "completed") == "awaiting_approval"
    approval = pending_approval(job)
    assert approval.kind == "email_preview" and approval.step == "review-followup-email"
    wait_delivered(job)
    return _approval_row(approval.id, job)


def _approval_row(approval_id: uuid.UUID, job: uuid.UUID) -> Any:
    """The approval as stored now (status, Slack channel and ts of its message)."""
    return next(a for a in approvals_of(job) if a.id == approval_id)


def _check_review_message(w: World, approval: Any, subject: str) -> None:
    """The review in Alice's DM: To, subject and the four email_ buttons, each naming the approval."""
    post = _approval_post(w, approval)
    blocks = post.params["blocks"]
    assert _action_ids(blocks) == EMAIL_BUTTONS
    buttons = [e for b in blocks if b["type"] == "actions" for e in b["elements"]]
    assert {e["value"] for e in buttons} == {str(approval.id)}
    assert [b["block_id"] for b in blocks if b["type"] == "actions"] == [f"approval:{approval.id}"]
    assert post.params["text"] == f"Review email to {HANK}: {subject}"


def _replacement(w: World, approval: Any, *, count: int = 1, undo: bool = False) -> Call:
    """The last of `count` chat.updates of the review message: its buttons gone, or only Undo while
    an approved email waits for its Undo window."""
    updates = wait_for(
        lambda: (
            (u := w.slack.calls("chat.update", channel=w.dm("alice"), ts=approval.slack_ts)) and len(u) >= count and u
        ),
        what=f"review replaced {count}x",
    )
    assert len(updates) == count
    assert _action_ids(updates[-1].params.get("blocks")) == (["email_undo"] if undo else [])
    return updates[-1]


def _sent_mime(w: World) -> email.message.Message:
    assert len(w.google.sent) == 1
    return email.message_from_bytes(base64.urlsafe_b64decode(w.google.sent[0].raw + "=="))


def _text_of(mime: email.message.Message) -> str:
    payload = mime.get_payload(decode=True)
    assert isinstance(payload, bytes)
    return payload.decode().replace("\r\n", "\n").rstrip("\n")


# --------------------------------------------------------------------------- the Globex discovery call


def test_globex_discovery_edit_then_send_after_the_undo_window(w: World, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setitem(w.google.busy, "primary", [])  # Alice's calendar, free, for calendar_find_times
    _clear_tasks(GLOBEX)
    with transaction() as conn:
        conn.execute(update(Deal.__table__).where(Deal.id == GLOBEX_DEAL).values(next_step="(before the call)"))
    job = fire_event(_meeting_event(w, GLOBEX)).job_id
    approval = _email_review(w, job)

    rows = step_rows(job)
    assert {s: rows[s].status for s in SALES_STEPS} == dict.fromkeys(SALES_STEPS, "succeeded")
    assert rows["review-followup-email"].status == "awaiting_approval"
    assert "send-followup-email" not in rows
    out = {s: rows[s].output for s in SALES_STEPS}
    assert out["classify-call-type"]["call_type"] == "discovery" and out["classify-call-type"]["is_sales"] is True
    items = out["extract-action-items"]["items"]
    assert [(i["text"], i["owner"]) for i in items] == [
        (PROPOSAL_ITEM, "rep"),
        (CALL_ITEM, "rep"),
        (LENA_ITEM, "prospect"),
    ]
    assert all(i["due"] for i in items)
    intents = out["detect-intents"]
    kinds = {s["kind"] for s in intents["intents"]["buying_signals"]}
    assert kinds == {"budget", "decision_maker", "timeline", "competitor"}  # "We also looked at RouteMax"
    assert intents["follow_ups"] == ["proposal_generation", "calendar_find_times"]
    assert rows["detect-intents"].follow_ups and len(rows["detect-intents"].follow_ups) == 2
    draft = out["draft-followup-email"]
    assert (draft["to"], draft["contact_name"]) == (HANK, "Hank Scorpio")
    assert draft["subject"] == "Follow-up: Discovery call — Globex dispatch"
    assert draft["body"].startswith("Hi Hank,") and PROPOSAL_ITEM in draft["body"]
    assert out["create-tasks-from-actions"] == {"created": 2, "titles": [PROPOSAL_ITEM, CALL_ITEM]}
    assert out["update-crm-from-meeting"]["next_step"] == PROPOSAL_ITEM
    assert out["notify-slack-summary"]["failed_steps"] == []

    # CRM: next step on the deal, one meeting activity, one audit row; one task per rep-owned item
    with transaction() as conn:
        assert conn.execute(select(Deal.next_step).where(Deal.id == GLOBEX_DEAL)).scalar_one() == PROPOSAL_ITEM
        audits = list(
            conn.execute(
                select(AuditLog.__table__).where(
                    AuditLog.action == "deal.next_step", AuditLog.data["meeting"].as_string() == str(GLOBEX)
                )
            )
        )
        mine = [a for a in audits if a.data["before"] == {"next_step": "(before the call)"}]
        assert len(mine) == 1 and mine[0].target_id == str(GLOBEX_DEAL) and mine[0].data["after"] == PROPOSAL_ITEM
        activity = conn.execute(
            select(Activity.__table__).where(
                Activity.id == uuid.uuid5(uuid.NAMESPACE_URL, f"{job}:update-crm-from-meeting:0:meeting")
            )
        ).one()
    assert (activity.kind, activity.deal_id, activity.subject) == (
        "meeting",
        GLOBEX_DEAL,
        "Discovery call — Globex dispatch",
    )
    tasks = _tasks_of(GLOBEX)
    assert sorted(t.title for t in tasks) == sorted([PROPOSAL_ITEM, CALL_ITEM])
    assert {(t.source_job_id, t.user_id, t.deal_id, t.status) for t in tasks} == {
        (job, w.user("alice"), GLOBEX_DEAL, "open")
    }

    # Slack so far: the debrief and the email review, each after a conversations.open for Alice
    traffic = _dm_traffic(w, "alice")
    assert sorted(c.method for c in traffic) == ["chat.postMessage"] * 2 + ["conversations.open"] * 2
    assert all(c.ok for c in traffic)
    assert _posted_kinds(w, "alice", _outbox(job)) == ["approval", "meeting_debrief"]
    debrief = next(r for r in _outbox(job) if r.kind == "meeting_debrief")
    post = next(c for c in traffic if c.method == "chat.postMessage" and c.response["ts"] == debrief.ts)
    assert post.params["text"] == "Debrief: Discovery call — Globex dispatch · 3 action items"
    shown = str(post.params["blocks"])
    for fragment in (
        "• Send over a proposal with the rollout plan by ",
        "— owner: Alice",
        "• Send the depot list and current volumes by ",
        "— owner: Lena",
        "Alice Moreau met Hank Scorpio and Lena Ortiz.",
        "Buying signals",
        "Our CFO, Dana, owns the budget.",
    ):
        assert fragment in shown
    assert _action_ids(post.params["blocks"]) == []
    _check_review_message(w, approval, draft["subject"])

    # Edit: the rep's text goes out, once, after the undo window
    edited = {
        "subject": "Globex: proposal Friday, pricing call Tuesday",
        "body": "Hi Hank,\n\nThanks again. Proposal by Friday; pricing call with Dana on Tuesday.\n\nAlice",
    }
    decided = decide(approval.id, "edit", user_id=w.user("alice"), data=edited)
    assert wait_job(job) == "completed"
    rows = step_rows(job)
    review, send = rows["review-followup-email"], rows["send-followup-email"]
    assert (review.status, review.output["decision"], review.output["data"]) == ("succeeded", "edit", edited)
    assert send.status == "succeeded"
    assert send.started_at >= decided.decided_at + timedelta(seconds=0.5)  # PROACTIVE_UNDO_WINDOW_S
    mime = _sent_mime(w)
    assert (mime["From"], mime["To"], mime["Subject"]) == ("alice@northwind.example", HANK, edited["subject"])
    assert _text_of(mime) == edited["body"]
    assert mime["In-Reply-To"] is None and mime["References"] is None
    sends = [r for r in w.google.requests if r.path == GMAIL_SEND]
    assert len(sends) == 1 and "threadId" not in sends[0].json
    assert send.output == {
        "to": HANK,
        "subject": edited["subject"],
        "result": {"id": w.google.sent[0].id, "threadId": w.google.sent[0].thread_id},
    }
    with transaction() as conn:
        logged = list(
            conn.execute(
                select(Activity.__table__).where(
                    Activity.kind == "email", Activity.deal_id == GLOBEX_DEAL, Activity.subject == edited["subject"]
                )
            )
        )
    assert len(logged) == 1 and logged[0].body == edited["body"]

    sent_note = _replacement(w, approval, count=2)
    # after an approved send the message offers Undo until the email goes out, then says it was sent
    replaced = w.slack.calls("chat.update", ts=approval.slack_ts)[0]
    assert "Sending email to hank@globex.example (undo available)" in replaced.params["text"]
    assert _action_ids(replaced.params["blocks"]) == ["email_undo"]
    assert sent_note.params["text"] == f"Email sent to {HANK}"
    assert "edited and approved by @Alice Moreau" in str(sent_note.params["blocks"])
    assert _approval_row(approval.id, job).status == "approved"

    # follow-ups fired when the job completed: chain source, depth 1, keys {type}:{parent}:{index}
    kids = sorted(children(job), key=lambda k: k.idempotency_key.rsplit(":", 1)[1])  # fired in one transaction
    assert [(k.event_type, k.source, k.depth, k.idempotency_key) for k in kids] == [
        ("proposal_generation", "chain", 1, f"proposal_generation:{job}:0"),
        ("calendar_find_times", "chain", 1, f"calendar_find_times:{job}:1"),
    ]
    hank_id = str(demo_id("contact", "hank"))
    assert kids[0].payload == {
        "deal_id": str(GLOBEX_DEAL),
        "meeting_id": str(GLOBEX),
        "contact_id": hank_id,
        "notes": HEARD,
    }
    assert kids[1].payload == {
        "scheduling_text": CALL_SENTENCE,
        "meeting_id": str(GLOBEX),
        "deal_id": str(GLOBEX_DEAL),
        "contact_id": hank_id,
    }
    assert {k.user_id for k in kids} == {w.user("alice")}
    for kid in kids:  # let them post their own reviews so nothing leaks into the next test
        assert wait_job(kid.id, "awaiting_approval", "completed", "failed") == "awaiting_approval"
        wait_delivered(kid.id)

    # every Slack call about Alice's DM: 2 posts of this job + 1 review per follow-up, 2 edits (decided, sent)
    every = _outbox(job, *(k.id for k in kids))
    assert _posted_kinds(w, "alice", every) == ["approval"] * 3 + ["meeting_debrief"]
    traffic = _dm_traffic(w, "alice")
    assert sorted(c.method for c in traffic) == (
        ["chat.postMessage"] * 4 + ["chat.update"] * 2 + ["conversations.open"] * 4
    )
    assert all(c.ok for c in traffic)
    assert {c.response["channel"]["id"] for c in traffic if c.method == "conversations.open"} == {w.dm("alice")}
    assert len(w.google.sent) == 1  # the follow-ups only drafted
    assert sorted(r.path for r in w.google.requests) == ["/calendar/v3/freeBusy", GMAIL_SEND]


def test_send_later_then_undo_cancels_and_sends_nothing(w: World):
    job = fire_event(_meeting_event(w, GLOBEX)).job_id
    approval = _email_review(w, job)
    send_at = (utcnow() + timedelta(hours=1)).replace(microsecond=0)
    decide(approval.id, "send_later", user_id=w.user("alice"), data={"send_at": send_at.isoformat()})
    # the decision is applied: the send waits for its instant
    snoozed = wait_for(lambda: step_rows(job).get("send-followup-email"), what="send step queued")
    assert (snoozed.status, snoozed.not_before) == ("queued", send_at)
    assert wait_job(job, "running") == "running"

    assert undo(approval.id, user_id=w.user("alice")) == "Alice Moreau"
    assert wait_job(job) == "cancelled"
    row = job_row(job)
    assert row.reason == "undone by Alice Moreau"
    rows = step_rows(job)
    assert rows["review-followup-email"].status == "succeeded"
    assert rows["review-followup-email"].output["decision"] == "send_later"
    assert (rows["send-followup-email"].status, rows["send-followup-email"].reason) == ("skipped", "job_cancelled")
    assert children(job) == []
    replaced = _replacement(w, approval, count=2)  # "Send later by …", then "not sent (undone)"
    assert replaced.params["text"] == f"Email to {HANK} not sent (undone)"
    assert (
        "Scheduled to send later by @Alice Moreau"
        in w.slack.calls("chat.update", ts=approval.slack_ts)[0].params["text"]
    )
    assert _posted_kinds(w, "alice", _outbox(job)) == ["approval", "meeting_debrief"]
    assert sorted(c.method for c in _dm_traffic(w, "alice")) == (
        ["chat.postMessage"] * 2 + ["chat.update"] * 2 + ["conversations.open"] * 2
    )
    assert w.google.sent == [] and w.google.requests == []


def test_cancel_ends_the_job_and_tasks_are_not_created_twice(w: World):
    _clear_tasks(GLOBEX)
    with transaction() as conn:  # as if an earlier run had already created the first task
        conn.execute(
            insert(Task.__table__).values(
                id=uuid.uuid4(),
                org_id=w.org_id,
                user_id=w.user("alice"),
                deal_id=GLOBEX_DEAL,
                meeting_id=GLOBEX,
                title=PROPOSAL_ITEM,
                status="open",
                created_at=utcnow(),
            )
        )
    job = fire_event(_meeting_event(w, GLOBEX)).job_id
    approval = _email_review(w, job)
    assert step_rows(job)["create-tasks-from-actions"].output == {"created": 1, "titles": [CALL_ITEM]}
    assert sorted(t.title for t in _tasks_of(GLOBEX)) == sorted([PROPOSAL_ITEM, CALL_ITEM])

    decide(approval.id, "cancel", user_id=w.user("alice"))
    assert wait_job(job) == "cancelled"
    assert job_row(job).reason == "Alice Moreau chose Cancel"
    rows = step_rows(job)
    assert (rows["review-followup-email"].status, rows["review-followup-email"].reason) == (
        "cancelled",
        "Alice Moreau chose Cancel",
    )
    assert (rows["send-followup-email"].status, rows["send-followup-email"].reason) == ("skipped", "job_cancelled")
    assert children(job) == []
    replaced = _replacement(w, approval)
    assert "Cancelled by @Alice Moreau" in replaced.params["text"]
    assert _approval_row(approval.id, job).status == "rejected"
    assert sorted(c.method for c in _dm_traffic(w, "alice")) == (
        ["chat.postMessage"] * 2 + ["chat.update"] + ["conversations.open"] * 2
    )
    assert w.google.sent == [] and w.google.requests == []


# --------------------------------------------------------------------------- other meetings


def test_internal_standup_is_debriefed_without_sales_steps(w: World):
    _clear_tasks(STANDUP)
    job = fire_event(_meeting_event(w, STANDUP)).job_id
    assert wait_job(job) == "completed"
    rows = step_rows(job)
    assert {s: (r.status, r.reason) for s, r in rows.items()} == {
        "classify-call-type": ("succeeded", None),
        "extract-action-items": ("succeeded", None),
        "detect-intents": ("skipped", "not_sales"),
        "coaching-micro-feedback": ("skipped", "coaching_off"),
        "suggest-next-actions": ("skipped", "not_sales"),
        "draft-followup-email": ("skipped", "not_sales"),
        "update-crm-from-meeting": ("succeeded", None),
        "create-tasks-from-actions": ("succeeded", None),
        "notify-slack-summary": ("succeeded", None),
        "review-followup-email": ("skipped", "not_sales"),
        "send-followup-email": ("skipped", "not_sales"),
    }
    assert rows["classify-call-type"].output["is_sales"] is False
    assert rows["update-crm-from-meeting"].output == {
        "deal_id": None,
        "next_step": None,
        "close_date_hint": None,
        "activity_logged": False,
    }
    assert rows["create-tasks-from-actions"].output["titles"] == ["Update the forecast sheet after lunch"]
    assert approvals_of(job) == [] and children(job) == []

    delivered = wait_delivered(job)
    assert [(r.kind, r.status) for r in delivered] == [("meeting_debrief", "sent")]
    traffic = _dm_traffic(w, "alice")
    assert [c.method for c in traffic] == ["conversations.open", "chat.postMessage"]
    assert traffic[1].response["ts"] == delivered[0].ts
    assert traffic[1].params["text"] == "Debrief: Sales team standup · 1 action item"
    assert w.google.requests == []


def test_single_attendee_meeting_is_skipped_by_the_gate(w: World):
    result = fire_event(_meeting_event(w, SOLO, user="bruno"))
    assert (result.status, result.reason, result.duplicate) == ("skipped", "single_attendee", False)
    row = job_row(result.job_id)
    assert (row.status, row.reason) == ("skipped", "single_attendee") and row.finished_at is not None
    assert step_rows(result.job_id) == {}
    assert _outbox(result.job_id) == []


@pytest.fixture
def silent_meeting(w: World) -> Iterator[uuid.UUID]:
    """A recorded two-person sales call whose transcript never arrived."""
    meeting_id = uuid.uuid4()
    end = utcnow() - timedelta(minutes=5)
    with transaction() as conn:
        conn.execute(
            insert(Meeting.__table__).values(
                id=meeting_id,
                org_id=w.org_id,
                user_id=w.user("alice"),
                deal_id=GLOBEX_DEAL,
                title="Demo — Globex dispatch (no recording)",
                start_at=end - timedelta(minutes=30),
                end_at=end,
                attendees=[
                    {"name": "Alice Moreau", "email": "alice@northwind.example", "internal": True},
                    {"name": "Hank Scorpio", "email": HANK, "internal": False},
                ],
                attendees_count=2,
                transcript=None,
                created_at=utcnow(),
            )
        )
    try:
        yield meeting_id
    finally:
        with transaction() as conn:
            conn.execute(delete(Meeting.__table__).where(Meeting.id == meeting_id))


def test_meeting_without_transcript_fails_naming_it(w: World, silent_meeting: uuid.UUID):
    job = fire_event(_meeting_event(w, silent_meeting)).job_id
    assert wait_job(job) == "failed"
    rows = _settled_steps(job)
    extract = rows["extract-action-items"]
    message = f"meeting {silent_meeting} ('Demo — Globex dispatch (no recording)') has no transcript"
    assert (extract.status, extract.error_class, extract.attempt) == ("failed", "permanent", 1)
    assert extract.error == f"PermanentError: {message}"
    row = job_row(job)
    assert (row.error_step, row.error) == ("extract-action-items", extract.error)
    assert rows["classify-call-type"].status == "succeeded"
    for name in ("detect-intents", "coaching-micro-feedback"):  # ran alongside: same error, or never started
        assert (rows[name].status, rows[name].error) in {("failed", extract.error), ("skipped", None)}
    for name in (
        "suggest-next-actions",
        "draft-followup-email",
        "update-crm-from-meeting",
        "create-tasks-from-actions",
        "notify-slack-summary",
        "review-followup-email",
        "send-followup-email",
    ):
        assert (rows[name].status, rows[name].reason) == ("skipped", "job_failed")
    with transaction() as conn:
        errors = list(conn.execute(select(steps.c.error).where(steps.c.job_id == job, steps.c.error.is_not(None))))
    assert errors and not any("KeyError" in e.error for e in errors)
    assert _outbox(job) == [] and children(job) == [] and _tasks_of(silent_meeting) == []
