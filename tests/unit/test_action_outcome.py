"""What an approval's message says once its approved action has an outcome: the words chosen from the
attempt (worker/engine/approvals.py `action_report`), the message built from them (blocks/outcome.py), and
which failures wait for Google instead of failing (engine `_parks`, retry classes)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from blocks.email import email_sent, email_sent_with_undo
from blocks.outcome import action_outcome, offers_action, shows_state
from tests.unit.test_blocks_messages import assert_valid
from worker.engine.approval_records import ActionReport, action_report, approval_step_of
from worker.engine.dag import ApprovalSpec, Sequence, Step
from worker.engine.executor import REVOKED_GIVE_UP, _parks
from worker.engine.retry import classify, decide_retry
from worker.errors import AuthRevoked, EffectUncertain, GoogleNotConnected, PermanentError

NOW = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)
LINK = "https://proactive.example/oauth/google/start?token=abc.def.ghi"


def _noop(ctx, inputs):  # pragma: no cover - never run
    return {}


# --------------------------------------------------------------------------- error classes and parking


def test_no_google_connection_is_its_own_class_and_never_retried_as_such() -> None:
    err = GoogleNotConnected("Alice Moreau has no Google connection")
    assert classify(err) == "not_connected" and err.provider == "google"
    assert not decide_retry(err, 1, 3).retry
    assert classify(EffectUncertain("started by attempt 1")) == "uncertain"
    assert not decide_retry(EffectUncertain("x"), 1, 3).retry


def test_no_google_connection_parks_like_revoked_credentials_until_the_give_up() -> None:
    err = GoogleNotConnected("Alice Moreau has no Google connection")
    assert _parks(err, {"created_at": NOW - timedelta(hours=2)}, NOW)
    assert not _parks(err, {"created_at": NOW - REVOKED_GIVE_UP - timedelta(seconds=1)}, NOW)
    assert not _parks(PermanentError("no recipient address for this email"), {"created_at": NOW}, NOW)
    assert not _parks(AuthRevoked("revoked key", provider="instantly"), {"created_at": NOW}, NOW)


# --------------------------------------------------------------------------- which step carries out an approval


def test_the_step_after_an_approval_carries_it_out() -> None:
    seq = Sequence(
        "test_outcome",
        steps=(
            Step("classify", _noop),
            Step("review", _noop, deps=("classify",), approval=ApprovalSpec("email_preview")),
            Step("send", _noop, deps=("review", "classify")),
            Step("log", _noop, deps=("send",)),
        ),
    )
    assert approval_step_of(seq, seq.step("send")).name == "review"
    assert approval_step_of(seq, seq.step("log")) is None
    assert approval_step_of(seq, seq.step("classify")) is None


# --------------------------------------------------------------------------- the words


def test_parked_send_says_it_waits_for_google_with_a_connect_link() -> None:
    report = action_report("queued", "not_connected", "Alice Moreau has no Google connection", parked=True)
    assert report == ActionReport("waiting", todo="{link} and it will be sent", link_label="connect here")
    revoked = action_report("queued", "auth_revoked", "invalid_grant", parked=True)
    assert revoked is not None and revoked.link_label == "reconnect here"


def test_ordinary_retries_leave_the_message_alone_and_a_success_is_reported() -> None:
    assert action_report("queued", "transient", "timeout") is None
    assert action_report("skipped", None, None) is None
    assert action_report("succeeded", None, None) == ActionReport("sent")  # replaced only where stale


def test_a_message_that_still_offers_undo_or_says_waiting_is_stale_once_sent() -> None:
    now = datetime.now(UTC)
    undo = email_sent_with_undo("a1", "hank@initech.example", "Next steps", now)["blocks"]
    sent = email_sent("hank@initech.example", "Next steps", now, "Alice")["blocks"]
    assert offers_action(undo, "email_undo") is True
    assert offers_action(sent, "email_undo") is False
    assert offers_action(None, "email_undo") is False


@pytest.mark.parametrize(
    ("error_class", "message", "state", "why", "link_label"),
    [
        ("not_connected", "x has no Google connection", "not_sent", "Google was still not connected", "connect Google"),
        ("auth_revoked", "invalid_grant", "not_sent", "Google access was revoked", "reconnect Google"),
        ("uncertain", "side effect started", "maybe_sent", "may have gone out", ""),
        ("transient", "503 backendError", "not_sent", "Google did not answer (503 backendError)", ""),
        ("rate_limited", "quota", "not_sent", "Google did not answer (quota)", ""),
        ("permanent", "no recipient address for this email", "not_sent", "no recipient address for this email", ""),
        ("unknown", "KeyError 'to'", "not_sent", "something went wrong (KeyError 'to')", ""),
        ("poison", "gave up: claimed 4 times", "maybe_sent", "stopped each time it tried", ""),
        ("", "", "not_sent", "something went wrong", ""),
    ],
)
def test_a_final_failure_says_why_and_what_to_do(
    error_class: str, message: str, state: str, why: str, link_label: str
) -> None:
    report = action_report("failed", error_class, message, job_id="J1")
    assert report is not None
    assert report.state == state and why in report.why and report.link_label == link_label
    assert report.todo  # always something to do
    assert ("{link}" in report.todo) == bool(link_label)
    if error_class in ("unknown", ""):
        assert "proactive job J1" in report.todo


# --------------------------------------------------------------------------- the message


def test_not_sent_message_has_the_reason_and_a_working_link() -> None:
    message = action_outcome(
        "Follow-up: Globex <dispatch>",
        "not_sent",
        why="Google was still not connected after waiting",
        todo="{link}, then send it yourself",
        link=LINK,
        link_label="connect Google",
    )
    assert_valid(message)
    line = message["blocks"][1]["elements"][0]["text"]
    assert line == (
        ":warning: Not sent: Google was still not connected after waiting"
        f" — <{LINK}|connect Google>, then send it yourself"
    )
    assert message["blocks"][0]["text"]["text"] == "*Follow-up: Globex &lt;dispatch&gt;*"
    assert message["text"].startswith("Follow-up: Globex <dispatch>: Not sent: Google was still not connected")
    assert f"connect Google: {LINK}" in message["text"]
    assert not any(b["type"] == "actions" for b in message["blocks"])  # nothing left to click


def test_waiting_message_reads_approved_waiting_for_google() -> None:
    message = action_outcome(
        "Follow-up", "waiting", todo="{link} and it will be sent", link=LINK, link_label="connect here"
    )
    line = message["blocks"][1]["elements"][0]["text"]
    assert line == f":hourglass_flowing_sand: Approved — waiting for Google: <{LINK}|connect here> and it will be sent"


def test_without_a_link_the_fallback_words_stand_in() -> None:
    message = action_outcome(
        "Follow-up",
        "waiting",
        todo="{link} and it will be sent",
        link_label="connect here",
        no_link="ask an admin for your connect link",
    )
    assert "ask an admin for your connect link and it will be sent" in message["blocks"][1]["elements"][0]["text"]
    assert "<" not in message["blocks"][1]["elements"][0]["text"]


def test_sent_message_says_when() -> None:
    message = action_outcome("Proposal for Globex", "sent", at="2026-11-26 12:00 UTC")
    assert message["blocks"][1]["elements"][0]["text"] == ":white_check_mark: Sent (2026-11-26 12:00 UTC)"


@given(
    title=st.text(max_size=5000),
    why=st.text(max_size=8000),
    todo=st.text(max_size=3000),
    state=st.sampled_from(["waiting", "not_sent", "maybe_sent", "sent", "other_state"]),
)
def test_any_text_stays_within_block_kit_limits(title: str, why: str, todo: str, state: str) -> None:
    message = action_outcome(title, state, why=why, todo=todo + "{link}", link=LINK, link_label="connect")
    assert_valid(message)
    assert f"<{LINK}|connect>" in message["blocks"][1]["elements"][0]["text"]  # the link is never cut


def test_the_outcome_line_names_its_state_so_sent_replaces_only_waiting() -> None:
    waiting = action_outcome("Follow-up", "waiting", todo="{link} and it will be sent", link=LINK, link_label="here")
    assert shows_state(waiting["blocks"], "waiting") and not shows_state(waiting["blocks"], "not_sent")
    assert not shows_state([{"type": "section"}], "waiting") and not shows_state(None, "waiting")


# --------------------------------------------------------------------------- the CLI's status column


def test_a_completed_job_with_failed_steps_never_reads_like_a_clean_run() -> None:
    import click

    from worker.ops.cli import job_status_text

    assert click.unstyle(job_status_text("completed", 2)) == "completed · 2 errors"
    assert click.unstyle(job_status_text("completed", 1)) == "completed · 1 error"
    assert click.unstyle(job_status_text("completed", 0)) == "completed"
    assert click.unstyle(job_status_text("failed", 1)) == "failed"  # its error is shown instead
