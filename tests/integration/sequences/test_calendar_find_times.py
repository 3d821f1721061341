"""calendar_find_times end to end: parse the request, ask Google freeBusy, offer slots in Slack, act.

The fake Google answers freeBusy from `w.google.busy["primary"]` (the rep's own calendar, read with
the rep's token); each test sets it before firing. Alice works in America/New_York, and "next week"
is the Monday-Friday after the current local week there.
"""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import select

from tests.fakes.google import SentMessage
from tests.fakes.slack import Call
from tests.integration.sequences.conftest import World, wait_delivered, wait_job
from tests.support.engine import all_step_rows, approvals_of, job_row, pending_approval, step_rows
from tests.support.waiting import wait_for
from worker.crypto import decrypt_json
from worker.db import transaction
from worker.engine.approvals import decide
from worker.engine.events import fire_event
from worker.models import Integration
from worker.ops.seed import demo_id

pytestmark = pytest.mark.slow

NEW_YORK = ZoneInfo("America/New_York")
TEXT = "Let's find an hour next week, ideally an afternoon"
BILL = {"contact_id": str(demo_id("contact", "bill")), "deal_id": str(demo_id("deal", "initech-platform"))}
STEPS = ("parse-scheduling-request", "find-available-slots", "present-time-options", "act")
CAL_BUTTONS = ["cal_send_invite", "cal_send_times", "cal_more", "cal_handle"]
FREEBUSY = r"/calendar/v3/freeBusy"
INSERT = r"/calendar/v3/calendars/primary/events"
GMAIL_SEND = r"/gmail/v1/users/me/messages/send"


def next_week() -> tuple[date, date]:
    """Monday and Friday of the week after the current one in alice's zone."""
    today = datetime.now(NEW_YORK).date()
    monday = today - timedelta(days=today.weekday()) + timedelta(days=7)
    return monday, monday + timedelta(days=4)


def local(day: date, hour: int, minute: int = 0) -> datetime:
    return datetime.combine(day, time(hour, minute), tzinfo=NEW_YORK)


def utc(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


def rfc3339(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


def busy_afternoons() -> list[tuple[datetime, datetime]]:
    """Alice's busy blocks next week: most of Monday and Wednesday afternoon, a Tuesday meeting."""
    monday, _friday = next_week()
    return [
        (local(monday, 12), local(monday, 15, 30)),
        (local(monday + timedelta(days=1), 13), local(monday + timedelta(days=1), 14, 30)),
        (local(monday + timedelta(days=2), 12), local(monday + timedelta(days=2), 17)),
    ]


def fire(w: World, payload: dict[str, Any]) -> uuid.UUID:
    return fire_event(w.event("calendar_find_times", {"scheduling_text": TEXT, **payload})).job_id


def states(job_id: uuid.UUID) -> dict[str, tuple[str, str | None]]:
    return {name: (row.status, row.reason) for name, row in step_rows(job_id).items()}


def approval_post(w: World, approval_id: uuid.UUID) -> Call:
    """The one chat.postMessage of this approval in alice's DM (waits for its delivery)."""

    def posted() -> list[Call]:
        return [
            c
            for c in w.slack.calls("chat.postMessage", channel=w.dm("alice"))
            if f"approval:{approval_id}" in [b.get("block_id") for b in c.params.get("blocks") or []]
        ]

    found = wait_for(posted, what=f"approval {approval_id} posted")
    assert len(found) == 1 and found[0].ok
    return found[0]


def approval_update(w: World, post: Call, count: int = 1) -> Call:
    """The last of `count` replacements of the approval's message (the decision; then, when the
    approved action failed, what became of it)."""
    found = wait_for(
        lambda: (
            (u := w.slack.calls("chat.update", channel=w.dm("alice"), ts=post.response["ts"])) and len(u) >= count and u
        ),
        what=f"approval message replaced {count}x",
    )
    assert len(found) == count and all(c.ok for c in found)
    return found[-1]


def approval_outcome(w: World, post: Call, says: str) -> list[Call]:
    """The replacements of the approval's message once the last says `says` (what became of the
    approved action). One or two: the decision's replacement, then the outcome's, or the outcome's
    alone when it was written before the decision's was delivered (the outbox row holds the latest
    content, and one chat.update carries it)."""
    found = wait_for(
        lambda: (
            (u := w.slack.calls("chat.update", channel=w.dm("alice"), ts=post.response["ts"]))
            and says in u[-1].params["text"]
            and u
        ),
        what=f"approval message replaced with {says!r}",
    )
    assert len(found) <= 2 and all(c.ok for c in found)  # at most the decision and the outcome
    return found


def elements(call: Call) -> list[dict[str, Any]]:
    return [e for b in call.params["blocks"] if b["type"] == "actions" for e in b["elements"]]


def awaiting_slots(w: World, job: uuid.UUID) -> tuple[Any, Call]:
    """Wait for the calendar_slots approval and its Slack message; returns both."""
    assert wait_job(job, "awaiting_approval") == "awaiting_approval"
    approval = pending_approval(job)
    assert approval.kind == "calendar_slots"
    return approval, approval_post(w, approval.id)


def alice_token() -> str:
    with transaction() as conn:
        sealed = conn.execute(
            select(Integration.credentials).where(Integration.id == demo_id("integration", "google", "alice"))
        ).scalar_one()
    return decrypt_json(sealed)["token"]


def slack_methods(w: World) -> list[tuple[str, str | None]]:
    """Every Slack call of this test: method and its channel (users for conversations.open)."""
    return [(c.method, c.params.get("channel") or c.params.get("users")) for c in w.slack.calls()]


def one_approval_calls(w: World) -> list[tuple[str, str | None]]:
    """The Slack calls of one decided approval: open alice's DM, post it there, replace it."""
    return [("conversations.open", "U0ALICE"), ("chat.postMessage", w.dm("alice")), ("chat.update", w.dm("alice"))]


def decoded_body(sent: SentMessage) -> str:
    return sent.mime.get_payload(decode=True).decode("utf-8").replace("\r\n", "\n")


def test_slots_avoid_busy_times_and_send_invite_books_the_chosen_one(w: World):
    w.google.busy["primary"] = busy_afternoons()
    job = fire(w, BILL)
    approval, post = awaiting_slots(w, job)
    monday, friday = next_week()

    [freebusy] = w.google.requests_to("POST", FREEBUSY)
    assert freebusy.json == {
        "timeMin": rfc3339(local(monday, 0)),
        "timeMax": rfc3339(local(friday + timedelta(days=1), 0)),
        "items": [{"id": "primary"}],
    }
    assert freebusy.headers["authorization"] == f"Bearer {alice_token()}"

    got = states(job)
    assert [got[s] for s in STEPS[:2]] == [("succeeded", None)] * 2
    assert got["present-time-options"][0] == "awaiting_approval" and "act" not in got
    rows = step_rows(job)
    request = rows["parse-scheduling-request"].output["request"]
    assert (request["duration_minutes"], request["part_of_day"], request["window_text"]) == (
        60,
        "afternoon",
        "next week",
    )
    found = rows["find-available-slots"].output
    assert (found["source"], found["timezone"], found["extra_days"]) == ("google", "America/New_York", 0)
    slots = found["slots"]
    assert 0 < len(slots) <= 5
    for slot in slots:
        start, end = utc(slot["start"]).astimezone(NEW_YORK), utc(slot["end"]).astimezone(NEW_YORK)
        assert end - start == timedelta(hours=1)
        assert monday <= start.date() <= friday and start.weekday() < 5
        assert time(12) <= start.time() and end.time() <= time(17) and start.date() == end.date()
        assert not any(start < b_end and b_start < end for b_start, b_end in w.google.busy["primary"]), slot
        assert slot["label"].endswith(start.tzname()) and start.strftime("%H:%M") in slot["label"]
    assert [s["start"] for s in slots] == sorted(s["start"] for s in slots)

    preview = approval.preview
    assert preview["title"] == "Times to meet Bill Lumbergh" and preview["contact_email"] == "bill@initech.example"
    assert preview["slots"] == slots and approval.approver_user_ids == [str(w.user("alice"))]
    radio, *rest = elements(post)
    assert radio["type"] == "radio_buttons" and radio["action_id"] == "cal_select_slot"
    assert [(o["value"], o["text"]["text"]) for o in radio["options"]] == [(s["start"], s["label"]) for s in slots]
    assert radio["initial_option"]["value"] == slots[0]["start"]
    assert [(e["action_id"], e["value"]) for e in rest] == [(a, str(approval.id)) for a in CAL_BUTTONS]

    chosen = slots[1]
    decide(approval.id, "send_invite", user_id=w.user("alice"), data={"slot": chosen["start"]})
    assert wait_job(job) == "completed"
    assert [states(job)[s] for s in STEPS] == [("succeeded", None)] * 4

    [insert] = w.google.requests_to("POST", INSERT)
    assert insert.arg("sendUpdates") == "all"
    event = insert.json
    assert utc(event["start"]["dateTime"]) == utc(chosen["start"]) and utc(event["end"]["dateTime"]) == utc(
        chosen["end"]
    )
    assert event["attendees"] == [{"email": "bill@initech.example"}]
    assert w.google.events[("primary", event["id"])]["attendees"][0]["email"] == "bill@initech.example"
    act = step_rows(job)["act"].output
    assert (act["action"], act["slot_start"], act["result"]["id"]) == ("invite", chosen["start"], event["id"])
    assert w.google.sent == [] and len(w.google.requests_to("POST", FREEBUSY)) == 1

    replaced = approval_update(w, post)
    assert "Invite sent by @Alice Moreau" in replaced.params["text"] and elements(replaced) == []
    wait_delivered(job)
    assert slack_methods(w) == one_approval_calls(w)


def test_more_options_searches_ten_days_longer_and_asks_again(w: World):
    w.google.busy["primary"] = busy_afternoons()
    job = fire(w, BILL)
    first, first_post = awaiting_slots(w, job)

    decide(first.id, "more", user_id=w.user("alice"))
    second = wait_for(
        lambda: next((a for a in approvals_of(job) if a.status == "pending" and a.id != first.id), None),
        what="a new calendar_slots approval",
    )
    second_post = approval_post(w, second.id)
    assert "Replaced by newer options (@Alice Moreau asked for more" in approval_update(w, first_post).params["text"]
    assert [a.status for a in approvals_of(job)] == ["superseded", "pending"]
    assert job_row(job).iteration == 1 and job_row(job).status == "awaiting_approval"

    runs = {(r.step, r.iteration): r for r in all_step_rows(job)}
    assert sorted(runs) == sorted((s, i) for s in STEPS[:3] for i in (0, 1))
    assert [(runs[s, 0].status, runs[s, 0].superseded) for s in STEPS[:2]] == [("succeeded", True)] * 2
    assert (runs["present-time-options", 0].status, runs["present-time-options", 0].reason) == (
        "cancelled",
        "more options requested",
    )
    assert [runs[s, 1].status for s in STEPS[:3]] == ["succeeded", "succeeded", "awaiting_approval"]
    found = runs["find-available-slots", 1].output
    assert found["extra_days"] == 10 and found["window_text"] == "next week or in the 10 days after"
    assert 0 < len(found["slots"]) <= 5 and second.preview["slots"] == found["slots"]
    assert [e["action_id"] for e in elements(second_post)][1:] == CAL_BUTTONS

    before, after = (r.json for r in w.google.requests_to("POST", FREEBUSY))
    assert after["timeMin"] == before["timeMin"]
    assert utc(after["timeMax"]) - utc(before["timeMax"]) == timedelta(days=10)
    assert w.google.requests_to("POST", INSERT) == [] and w.google.sent == []
    wait_delivered(job)
    # the first message replaced and the second posted are independent deliveries: any order
    assert sorted(slack_methods(w)) == sorted(one_approval_calls(w) + one_approval_calls(w)[:2])
    # free the deal for the next test: one live calendar_find_times per rep and deal (docs/events.md)
    decide(second.id, "handle", user_id=w.user("alice"))
    assert wait_job(job) == "cancelled"
    wait_delivered(job)


def test_send_times_emails_the_slots_to_the_contact(w: World):
    w.google.busy["primary"] = busy_afternoons()
    job = fire(w, BILL)
    approval, post = awaiting_slots(w, job)
    slots = approval.preview["slots"]

    decide(approval.id, "send_times", user_id=w.user("alice"))
    assert wait_job(job) == "completed"
    assert [states(job)[s] for s in STEPS] == [("succeeded", None)] * 4
    assert step_rows(job)["act"].output["action"] == "times_emailed"

    [sent] = w.google.sent
    assert len(w.google.requests_to("POST", GMAIL_SEND)) == 1 and "threadId" not in w.google.requests[-1].json
    assert sent.mime["To"] == "bill@initech.example" and sent.mime["Subject"] == "A few times to meet"
    body = decoded_body(sent)
    assert body.startswith("Hi Bill,")
    assert [line.strip(" •") for line in body.splitlines() if line.startswith("  • ")] == [s["label"] for s in slots]
    assert w.google.requests_to("POST", INSERT) == []
    assert "Times emailed by @Alice Moreau" in approval_update(w, post).params["text"]
    wait_delivered(job)
    assert slack_methods(w) == one_approval_calls(w)


def test_ill_handle_it_cancels_the_job_and_sends_nothing(w: World):
    w.google.busy["primary"] = []
    job = fire(w, BILL)
    approval, post = awaiting_slots(w, job)

    decide(approval.id, "handle", user_id=w.user("alice"))
    assert wait_job(job) == "cancelled"
    got = states(job)
    assert [got[s] for s in STEPS[:2]] == [("succeeded", None)] * 2
    assert got["present-time-options"] == ("cancelled", "Alice Moreau chose I'll handle it")
    assert got["act"] == ("skipped", "job_cancelled")
    assert job_row(job).reason == "Alice Moreau chose I'll handle it"
    assert "Taken over by @Alice Moreau" in approval_update(w, post).params["text"]
    wait_delivered(job)
    assert slack_methods(w) == one_approval_calls(w)
    assert w.google.sent == [] and w.google.requests_to("POST", INSERT) == []
    assert [r.path for r in w.google.requests] == ["/calendar/v3/freeBusy"]


def test_send_invite_without_a_contact_fails_naming_it(w: World):
    w.google.busy["primary"] = []
    job = fire(w, {})
    approval, post = awaiting_slots(w, job)
    assert approval.preview["title"] == "Times to meet your contact" and approval.preview["contact_email"] is None

    decide(approval.id, "send_invite", user_id=w.user("alice"), data={"slot": approval.preview["slots"][0]["start"]})
    assert wait_job(job) == "failed"
    act = step_rows(job)["act"]
    assert (act.status, act.error_class, act.attempt) == ("failed", "permanent", 1)
    assert "names no contact (contact_id)" in act.error
    assert job_row(job).error_step == "act"
    assert w.google.requests_to("POST", INSERT) == [] and w.google.sent == []
    # the approved invite did not happen: the message says so, why, and what to do
    updates = approval_outcome(
        w, post, "Not sent: cannot send an invite: the event names no contact (contact_id) — send it yourself"
    )
    if len(updates) == 2:  # the decision's replacement was delivered before the outcome was written
        assert "by @Alice Moreau" in updates[0].params["text"]
    assert elements(updates[-1]) == []
    wait_delivered(job)
    assert slack_methods(w) == one_approval_calls(w) + [("chat.update", w.dm("alice"))] * (len(updates) - 1)


def test_the_chosen_slot_is_matched_by_its_instant_and_a_time_never_offered_is_refused(w: World):
    w.google.busy["primary"] = []
    job = fire(w, BILL)
    approval, post = awaiting_slots(w, job)
    chosen = approval.preview["slots"][2]
    typed = utc(chosen["start"]).astimezone(NEW_YORK).isoformat()  # the same instant, spelled as a rep types it
    decide(approval.id, "send_invite", user_id=w.user("alice"), data={"slot": typed})
    assert wait_job(job) == "completed"
    [insert] = w.google.requests_to("POST", INSERT)
    assert utc(insert.json["start"]["dateTime"]) == utc(chosen["start"])
    approval_update(w, post)
    wait_delivered(job)

    other = fire(w, BILL)
    approval, post = awaiting_slots(w, other)
    saturday = rfc3339(local(next_week()[1] + timedelta(days=1), 13))  # slots never fall on a weekend
    decide(approval.id, "send_invite", user_id=w.user("alice"), data={"slot": saturday})
    assert wait_job(other) == "failed"
    act = step_rows(other)["act"]
    assert (act.status, act.error_class) == ("failed", "permanent") and saturday in act.error
    assert len(w.google.requests_to("POST", INSERT)) == 1
    approval_outcome(w, post, f"Not sent: the chosen slot '{saturday}' is not one of the offered times")
    wait_delivered(other)
