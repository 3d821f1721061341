"""Gmail watch renewal (worker.gmail_watch, `proactive gmail renew`) on PostgreSQL, through the real
google-auth and googleapiclient against the fake Google."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from click.testing import CliRunner
from sqlalchemy import select

from tests.fakes.google import FakeGoogle, google_error
from tests.support.engine import TestOrg, make_org
from tests.support.google import connect, credentials
from worker import gmail_watch
from worker.cli import main
from worker.config import reset_settings
from worker.db import transaction
from worker.gmail_watch import due, renew_due, renew_one
from worker.models import Integration, SlackOutbox, utcnow

pytestmark = [pytest.mark.postgres, pytest.mark.usefixtures("pg")]

TOPIC = "projects/proactive-test/topics/gmail-push"
WATCH = "/gmail/v1/users/me/watch"
integrations = Integration.__table__


@pytest.fixture
def google(fake_google: FakeGoogle) -> Iterator[FakeGoogle]:
    """The fake Google with GMAIL_PUBSUB_TOPIC set."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("GMAIL_PUBSUB_TOPIC", TOPIC)
        reset_settings()
        yield fake_google
    reset_settings()


def stored(integration_id: uuid.UUID) -> Any:
    with transaction() as conn:
        return conn.execute(select(integrations).where(integrations.c.id == integration_id)).one()


def answered_expiry(watch: dict[str, Any]) -> datetime:
    return datetime.fromtimestamp(int(watch["expiration"]) / 1000, UTC)


# --------------------------------------------------------------------------- due


def test_due_selects_active_google_watches_expiring_within_a_day(org: TestOrg) -> None:
    now = utcnow()
    soon = connect(org, "soon@example.com", now + timedelta(hours=23))
    connect(org, "later@example.com", now + timedelta(hours=25))
    expired = connect(org, "expired@example.com", now - timedelta(hours=1))
    never = connect(org, "never@example.com", None)
    connect(org, "revoked@example.com", now + timedelta(hours=1), status="revoked")
    connect(org, "instantly@example.com", now + timedelta(hours=1), provider="instantly")
    other_org = make_org()
    elsewhere = connect(other_org, "elsewhere@example.com", now + timedelta(hours=1))

    with transaction() as conn:
        rows = due(conn, now, org_id=org.id)
        everywhere = {r.id for r in due(conn, now)}
        of_other = [r.id for r in due(conn, now, org_id=other_org.id)]
        all_active = {r.account for r in due(conn, now, within=None, org_id=org.id)}

    assert [r.id for r in rows] == [never, expired, soon]  # never watched first, then soonest
    by_id = {r.id: r for r in rows}
    assert by_id[soon].account == "soon@example.com"
    assert by_id[soon].user_id == org.rep and by_id[soon].org_id == org.id
    assert by_id[soon].watch_expiration == now + timedelta(hours=23)
    assert by_id[never].watch_expiration is None
    assert {never, expired, soon, elsewhere} <= everywhere
    assert of_other == [elsewhere]
    assert all_active == {"soon@example.com", "later@example.com", "expired@example.com", "never@example.com"}


def test_due_window_is_configurable(org: TestOrg) -> None:
    now = utcnow()
    in_two_days = connect(org, "two-days@example.com", now + timedelta(hours=47))
    with transaction() as conn:
        assert [r.id for r in due(conn, now, org_id=org.id)] == []
        assert [r.id for r in due(conn, now, within=timedelta(hours=48), org_id=org.id)] == [in_two_days]


# --------------------------------------------------------------------------- renewing


def test_renew_stores_the_expiry_and_the_first_history_id(google: FakeGoogle, org: TestOrg) -> None:
    google.history_id = "4242"
    integration_id = connect(org, "rep@example.com", None, creds=credentials(google, "rep@example.com"))
    before = utcnow()

    result = renew_one(org.id, integration_id, utcnow())

    (watch,) = google.watches
    expiry = answered_expiry(watch)
    assert result.error is None and result.ok
    assert (result.integration_id, result.org_id, result.user_id) == (integration_id, org.id, org.rep)
    assert (result.account, result.old_expiry, result.new_expiry) == ("rep@example.com", None, expiry)
    assert before + timedelta(days=7) - timedelta(seconds=1) <= expiry <= utcnow() + timedelta(days=7)
    (request,) = google.requests_to("POST", WATCH)
    assert request.json == {"topicName": TOPIC, "labelIds": ["INBOX"], "labelFilterBehavior": "include"}
    assert watch["mailbox"] == "rep@example.com"
    row = stored(integration_id)
    assert row.watch_expiration == expiry
    assert row.history_id == "4242"
    assert (row.status, row.last_error) == ("active", None)


def test_renewal_keeps_the_stored_history_id(google: FakeGoogle, org: TestOrg) -> None:
    old_expiry = utcnow() + timedelta(hours=2)
    integration_id = connect(
        org,
        "rep@example.com",
        old_expiry,
        creds=credentials(google, "rep@example.com"),
        history_id="500",
        last_error="an earlier failure",
    )
    google.history_id = "999"

    result = renew_one(org.id, integration_id, utcnow())

    assert result.ok, result.error
    assert result.old_expiry == old_expiry
    row = stored(integration_id)
    assert row.history_id == "500"  # history sync owns it: overwriting would skip unsynced mail
    assert row.watch_expiration == answered_expiry(google.watches[0]) > old_expiry
    assert row.last_error is None


def test_an_error_is_stored_and_the_others_are_still_renewed(google: FakeGoogle, org: TestOrg) -> None:
    now = utcnow()
    first = connect(org, "first@example.com", None, creds=credentials(google, "first@example.com"))
    failing_expiry = now - timedelta(hours=2)
    failing = connect(org, "failing@example.com", failing_expiry, creds=credentials(google, "failing@example.com"))
    last = connect(org, "last@example.com", now - timedelta(hours=1), creds=credentials(google, "last@example.com"))
    message = "User not authorized to perform this action."
    google.watch_errors["failing@example.com"] = google_error(403, message, "forbidden", state="PERMISSION_DENIED")

    results = renew_due(now, org_id=org.id)

    assert [(r.integration_id, r.ok) for r in results] == [(first, True), (failing, False), (last, True)]
    assert message in (results[1].error or "")
    assert results[1].new_expiry is None and results[1].old_expiry == failing_expiry
    row = stored(failing)
    assert message in (row.last_error or "")
    assert "ya29." not in row.last_error and "1//" not in row.last_error  # never a token
    assert (row.watch_expiration, row.status) == (failing_expiry, "active")  # the old expiry is kept
    assert {w["mailbox"] for w in google.watches} == {"first@example.com", "last@example.com"}
    assert stored(first).watch_expiration > now + timedelta(days=6)
    assert stored(last).watch_expiration > now + timedelta(days=6)


def test_an_unexpected_failure_does_not_stop_the_others(
    google: FakeGoogle, org: TestOrg, monkeypatch: pytest.MonkeyPatch
) -> None:
    broken = connect(org, "broken@example.com", None, creds=credentials(google, "broken@example.com"))
    fine = connect(org, "fine@example.com", utcnow(), creds=credentials(google, "fine@example.com"))
    real_watch = gmail_watch._watch

    def watch(row: Any, topic: str) -> Any:
        if row.id == broken:
            raise RuntimeError("boom")
        return real_watch(row, topic)

    monkeypatch.setattr(gmail_watch, "_watch", watch)
    results = renew_due(utcnow(), org_id=org.id)

    assert [(r.integration_id, r.ok, r.error) for r in results] == [
        (broken, False, "RuntimeError: boom"),
        (fine, True, None),
    ]


def test_a_refused_refresh_token_marks_the_integration_revoked(google: FakeGoogle, org: TestOrg) -> None:
    old_expiry = utcnow() + timedelta(hours=1)
    revoked = connect(org, "gone@example.com", old_expiry, creds=credentials(google, "gone@example.com", revoked=True))

    (result,) = renew_due(utcnow(), org_id=org.id)

    assert (result.integration_id, result.ok) == (revoked, False)
    assert "invalid_grant" in (result.error or "")
    row = stored(revoked)
    assert row.status == "revoked"
    assert "invalid_grant" in (row.last_error or "")
    assert row.watch_expiration == old_expiry
    assert len(google.requests_to("POST", "/token")) >= 1
    assert google.requests_to("POST", WATCH) == [] and google.watches == []
    with transaction() as conn:  # its user is asked once to reconnect
        dms = conn.execute(select(SlackOutbox.kind, SlackOutbox.user_id).where(SlackOutbox.org_id == org.id)).all()
        assert [(d.kind, d.user_id) for d in dms] == [("reconnect", org.rep)]
        assert due(conn, utcnow(), org_id=org.id) == []
    renew_due(utcnow(), org_id=org.id)  # already revoked: not due, no second DM
    with transaction() as conn:
        assert len(conn.execute(select(SlackOutbox.id).where(SlackOutbox.org_id == org.id)).all()) == 1


def test_a_missing_topic_is_an_error_without_a_call(fake_google: FakeGoogle, org: TestOrg) -> None:
    old_expiry = utcnow() + timedelta(hours=1)
    integration_id = connect(org, "rep@example.com", old_expiry, creds=credentials(fake_google, "rep@example.com"))

    (result,) = renew_due(utcnow(), org_id=org.id)

    assert not result.ok
    assert (result.error or "").startswith("GMAIL_PUBSUB_TOPIC is not set: set it")
    assert fake_google.requests == []
    row = stored(integration_id)
    assert (row.watch_expiration, row.status, row.last_error) == (old_expiry, "active", None)


def test_a_malformed_topic_is_refused_by_gmail_and_stored(
    google: FakeGoogle, org: TestOrg, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("GMAIL_PUBSUB_TOPIC", "gmail-push")  # not projects/P/topics/T
    reset_settings()
    integration_id = connect(org, "rep@example.com", None, creds=credentials(google, "rep@example.com"))

    result = renew_one(org.id, integration_id, utcnow())

    assert not result.ok
    assert "HTTP 400: Invalid topicName" in (result.error or "")
    (request,) = google.requests_to("POST", WATCH)
    assert request.json["topicName"] == "gmail-push"
    row = stored(integration_id)
    assert (row.status, row.watch_expiration) == ("active", None)
    assert "Invalid topicName" in (row.last_error or "")


def test_an_integration_of_another_org_is_not_renewed(google: FakeGoogle, org: TestOrg) -> None:
    integration_id = connect(org, "rep@example.com", None, creds=credentials(google, "rep@example.com"))
    other = make_org()

    result = renew_one(other.id, integration_id, utcnow())

    assert not result.ok and result.error == "no such integration in this org"
    assert google.requests == []
    assert stored(integration_id).watch_expiration is None


# --------------------------------------------------------------------------- CLI


def test_cli_prints_the_table_and_exits_1_when_one_failed(google: FakeGoogle, org: TestOrg) -> None:
    now = utcnow()
    connect(org, "ok@example.com", None, creds=credentials(google, "ok@example.com"))
    connect(org, "bad@example.com", now + timedelta(hours=3), creds=credentials(google, "bad@example.com"))
    connect(org, "not-due@example.com", now + timedelta(days=3), creds=credentials(google, "not-due@example.com"))
    google.watch_errors["bad@example.com"] = google_error(500, "Backend Error", "backendError")
    runner = CliRunner()

    result = runner.invoke(main, ["gmail", "renew", "--org", str(org.id)])

    assert result.exit_code == 1, result.output
    lines = result.output.splitlines()
    assert lines[0].split() == ["USER", "OLD", "EXPIRY", "NEW", "EXPIRY", "RESULT"]
    table = {line.split()[0]: line for line in lines[1:3]}
    assert set(table) == {"ok@example.com", "bad@example.com"}
    assert table["ok@example.com"].split()[1] == "never" and table["ok@example.com"].endswith("  ok")
    assert "HTTP 500: Backend Error" in table["bad@example.com"]
    assert lines[3] == "1 renewed, 1 failed"
    for column in ("OLD EXPIRY", "NEW EXPIRY", "RESULT"):  # aligned under the header
        at = lines[0].index(column)
        assert all(line[at - 2 : at] == "  " and line[at] != " " for line in lines[1:3])

    del google.watch_errors["bad@example.com"]
    again = runner.invoke(main, ["gmail", "renew", "--org", f"Test org {org.id.hex[:6]}", "--all", "--json"])

    assert again.exit_code == 0, again.output
    renewed = json.loads(again.output)
    assert {r["account"] for r in renewed} == {"ok@example.com", "bad@example.com", "not-due@example.com"}
    assert all(r["ok"] and r["error"] is None and r["new_expiry"] for r in renewed)


def test_cli_with_nothing_due_exits_0(google: FakeGoogle, org: TestOrg) -> None:
    connect(org, "fresh@example.com", utcnow() + timedelta(days=5), creds=credentials(google, "fresh@example.com"))

    result = CliRunner().invoke(main, ["gmail", "renew", "--org", str(org.id)])

    assert (result.exit_code, result.output.strip()) == (0, "no Gmail watch to renew")
    assert google.requests == []
