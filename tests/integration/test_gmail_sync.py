"""Gmail history sync (worker.google.sync) on PostgreSQL, through google-auth and googleapiclient
against the fake Google (history.list pages and 404, messages.get, messages.list)."""

from __future__ import annotations

import uuid
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import select, update

from tests.fakes.google import FakeGoogle
from tests.support.engine import TestOrg, make_org
from tests.support.google import connect, credentials
from worker.db import transaction
from worker.google import sync as gmail_sync
from worker.models import Email, Integration, SlackOutbox, jobs, utcnow

pytestmark = [pytest.mark.postgres, pytest.mark.usefixtures("pg")]

ACCOUNT = "rep@acme.example"


def mailbox(fake: FakeGoogle, org: TestOrg, *, history_id: str | None) -> uuid.UUID:
    """A connected Gmail integration for the org's rep at `history_id`."""
    return connect(org, ACCOUNT, None, creds=credentials(fake, ACCOUNT), history_id=history_id)


def stored(org: TestOrg) -> list[Any]:
    with transaction() as conn:
        return conn.execute(select(Email.__table__).where(Email.org_id == org.id).order_by(Email.received_at)).all()


def fired(org: TestOrg) -> list[Any]:
    with transaction() as conn:
        return conn.execute(
            select(jobs.c.idempotency_key, jobs.c.payload, jobs.c.source, jobs.c.user_id).where(
                jobs.c.org_id == org.id, jobs.c.event_type == "email_received"
            )
        ).all()


def integration(integration_id: uuid.UUID) -> Any:
    with transaction() as conn:
        return conn.execute(select(Integration.__table__).where(Integration.id == integration_id)).one()


def test_new_inbox_mail_across_pages_becomes_one_event_per_message(fake_google: FakeGoogle) -> None:
    org = make_org()
    box = fake_google.inbox.box(ACCOUNT)
    start = str(box.history_id)
    iid = mailbox(fake_google, org, history_id=start)
    sent = [
        fake_google.inbox.deliver(ACCOUNT, sender=f"Buyer {i} <buyer{i}@client.example>", subject=f"Question {i}")
        for i in range(5)
    ]
    fake_google.inbox.deliver(ACCOUNT, sender=f"Me <{ACCOUNT}>", subject="my own reply")
    fake_google.inbox.deliver(ACCOUNT, sender="News <news@x.example>", subject="archived", labels=("CATEGORY_UPDATES",))

    report = gmail_sync.sync_mailbox(org.id, iid)

    assert report is not None and not report.resynced
    history_calls = fake_google.requests_to("GET", r"/gmail/v1/users/me/history")
    assert len(history_calls) == 3  # 6 INBOX additions, 2 per page
    assert {c.arg("startHistoryId") for c in history_calls} == {start}
    assert report.seen == 6 and report.own == 1 and report.stored == 5
    rows = stored(org)
    assert [r.message_id for r in rows] == [m.id for m in sent]
    assert rows[0].from_addr == "buyer0@client.example" and rows[0].subject == "Question 0"
    assert rows[0].rfc822_message_id == sent[0].headers["Message-ID"] and rows[0].user_id == org.rep
    events = fired(org)
    assert sorted(e.idempotency_key for e in events) == sorted(f"email:{m.id}" for m in sent)
    assert {e.source for e in events} == {"webhook:gmail"} and {e.user_id for e in events} == {org.rep}
    assert integration(iid).history_id == str(box.history_id)  # advanced with the events
    assert integration(iid).sync_lease_until is None


def test_a_second_sync_without_new_mail_changes_nothing(fake_google: FakeGoogle) -> None:
    org = make_org()
    box = fake_google.inbox.box(ACCOUNT)
    iid = mailbox(fake_google, org, history_id=str(box.history_id))
    fake_google.inbox.deliver(ACCOUNT, sender="a@client.example", subject="one")
    gmail_sync.sync_mailbox(org.id, iid)

    again = gmail_sync.sync_mailbox(org.id, iid)

    assert again is not None and again.seen == 0 and again.stored == 0
    assert len(stored(org)) == 1 and len(fired(org)) == 1


def test_history_gone_resyncs_the_recent_inbox_without_duplicates(fake_google: FakeGoogle) -> None:
    org = make_org()
    box = fake_google.inbox.box(ACCOUNT)
    iid = mailbox(fake_google, org, history_id=str(box.history_id))
    first = fake_google.inbox.deliver(ACCOUNT, sender="a@client.example", subject="before")
    gmail_sync.sync_mailbox(org.id, iid)
    later = fake_google.inbox.deliver(ACCOUNT, sender="b@client.example", subject="after")
    with transaction() as conn:  # a history id Gmail no longer keeps
        conn.execute(update(Integration.__table__).where(Integration.id == iid).values(history_id="5"))
    fake_google.inbox.forget_history(ACCOUNT)
    box.oldest_history_id = 6  # "5" is too old; later ids are fine

    report = gmail_sync.sync_mailbox(org.id, iid)

    assert report is not None and report.resynced
    assert fake_google.requests_to("GET", r"/gmail/v1/users/me/messages")[-1].arg("maxResults") == "50"
    assert [r.message_id for r in stored(org)] == [first.id, later.id]  # the old one not stored twice
    assert sorted(e.idempotency_key for e in fired(org)) == sorted([f"email:{first.id}", f"email:{later.id}"])
    assert integration(iid).history_id == str(later.history_id)


def test_a_mailbox_never_synced_starts_from_the_recent_inbox(fake_google: FakeGoogle) -> None:
    org = make_org()
    iid = mailbox(fake_google, org, history_id=None)
    msg = fake_google.inbox.deliver(ACCOUNT, sender="a@client.example", subject="hello")

    report = gmail_sync.sync_mailbox(org.id, iid)

    assert report is not None and report.resynced and report.stored == 1
    assert integration(iid).history_id == str(msg.history_id)


def test_one_sync_at_a_time_and_a_push_during_a_sync_makes_it_run_again(fake_google: FakeGoogle) -> None:
    org = make_org()
    box = fake_google.inbox.box(ACCOUNT)
    iid = mailbox(fake_google, org, history_id=str(box.history_id))
    now = utcnow()
    with transaction() as conn:  # another process holds the mailbox
        conn.execute(
            update(Integration.__table__)
            .where(Integration.id == iid)
            .values(sync_lease_until=now + timedelta(minutes=1))
        )
    assert gmail_sync.sync_mailbox(org.id, iid) is None  # coalesced: that one will catch up
    assert fake_google.requests_to("GET", r"/gmail/v1/users/me/history") == []

    with transaction() as conn:  # its lease ran out (it died): the next sync takes over
        conn.execute(
            update(Integration.__table__)
            .where(Integration.id == iid)
            .values(sync_lease_until=now - timedelta(seconds=1), sync_wanted_at=now + timedelta(hours=1))
        )
    fake_google.inbox.deliver(ACCOUNT, sender="a@client.example", subject="one")
    report = gmail_sync.sync_mailbox(org.id, iid)
    # sync_wanted_at is "later than any pass started": every pass sees a push it has not covered,
    # so it keeps going until MAX_PASSES, then gives the mailbox back.
    assert report is not None and report.passes == gmail_sync.MAX_PASSES
    assert report.stored == 1 and integration(iid).sync_lease_until is None


def test_revoked_access_marks_the_integration_and_frees_the_mailbox(fake_google: FakeGoogle) -> None:
    org = make_org()
    iid = connect(org, ACCOUNT, None, creds=credentials(fake_google, ACCOUNT, revoked=True), history_id="1000")

    report = gmail_sync.sync_mailbox(org.id, iid)

    row = integration(iid)
    assert report is not None and report.stored == 0
    assert row.status == "revoked" and "refresh token" in (row.last_error or "")
    assert row.sync_lease_until is None
    with transaction() as conn:  # one reconnect DM, with the link
        dms = conn.execute(select(SlackOutbox.kind, SlackOutbox.text).where(SlackOutbox.org_id == org.id)).all()
    assert [d.kind for d in dms] == ["reconnect"] and "Reconnect" in dms[0].text
    assert gmail_sync.sync_mailbox(org.id, iid) is None  # revoked: never synced again


def test_another_orgs_id_is_not_synced(fake_google: FakeGoogle) -> None:
    org, other = make_org(), make_org()
    iid = mailbox(fake_google, org, history_id="1000")
    assert gmail_sync.sync_mailbox(other.id, iid) is None
