"""Gmail push end to end: a signed Pub/Sub push -> the web edge -> the history sync on a real worker
-> one `email_received` job per new message -> the email sequence pauses on the reply approval.
Redeliveries and further pushes for the same mail make no second job."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import timedelta

import pytest
from flask.testing import FlaskClient
from sqlalchemy import select, update

from tests.fakes.google_certs import FakeGoogleCerts
from tests.integration.sequences.conftest import World, wait_job
from tests.support.engine import pending_approval
from tests.support.pubsub import AUDIENCE, SERVICE_ACCOUNT, deliver, push_body
from tests.support.waiting import wait_for
from webhooks import create_app
from worker.config import reset_settings
from worker.crypto import encrypt_json
from worker.db import transaction
from worker.models import Email, Integration, jobs, utcnow
from worker.ops.seed import demo_id

pytestmark = pytest.mark.slow

ALICE = "alice@northwind.example"
QUESTION = (
    "Quick question before Tuesday: does your pricing include the driver app licences, or are those extra? "
    "Could you send me a breakdown per depot?"
)


@pytest.fixture(scope="module")
def pubsub(world: World) -> Iterator[FlaskClient]:
    """This process's web edge with Pub/Sub settings and a fake Google certs endpoint."""
    with FakeGoogleCerts() as certs, pytest.MonkeyPatch.context() as mp:
        mp.setenv("PUBSUB_AUDIENCE", AUDIENCE)
        mp.setenv("PUBSUB_SERVICE_ACCOUNT", SERVICE_ACCOUNT)
        mp.setenv("GOOGLE_CERTS_URL", certs.certs_url)
        reset_settings()
        client = create_app().test_client()
        client.certs = certs  # type: ignore[attr-defined]
        yield client
    reset_settings()


def alice_mailbox(w: World) -> uuid.UUID:
    """Alice's Google integration, pointed at her fake mailbox from its current history id."""
    integration_id = demo_id("integration", "google", "alice")
    refresh = f"1//e2e-{uuid.uuid4().hex[:6]}"
    w.google.grant(refresh, ALICE)
    creds = {
        "token": w.google.issue_access_token(ALICE),
        "refresh_token": refresh,
        "expiry": (utcnow() + timedelta(hours=1)).isoformat(),
        "scopes": ["https://www.googleapis.com/auth/gmail.readonly", "https://www.googleapis.com/auth/gmail.send"],
    }
    with transaction() as conn:
        conn.execute(
            update(Integration.__table__)
            .where(Integration.id == integration_id)
            .values(
                account=ALICE,
                credentials=encrypt_json(creds),
                status="active",
                history_id=str(w.google.inbox.box(ALICE).history_id),
                sync_lease_until=None,
            )
        )
    return integration_id


def jobs_for(w: World, gmail_id: str) -> list[uuid.UUID]:
    with transaction() as conn:
        return list(
            conn.execute(
                select(jobs.c.id).where(jobs.c.org_id == w.org_id, jobs.c.idempotency_key == f"email:{gmail_id}")
            ).scalars()
        )


def test_a_signed_push_becomes_one_paused_reply_per_new_message(w: World, pubsub: FlaskClient) -> None:
    certs = pubsub.certs  # type: ignore[attr-defined]
    alice_mailbox(w)
    question = w.google.inbox.deliver(
        ALICE, sender="Hank Scorpio <hank@globex.example>", subject="Re: Intro and next steps", snippet=QUESTION
    )
    w.google.inbox.deliver(ALICE, sender=f"Alice Moreau <{ALICE}>", subject="Re: Intro and next steps")  # her own
    body = push_body(ALICE, history_id=str(question.history_id + 1))

    assert deliver(pubsub, certs, body).status_code == 204

    [job] = wait_for(lambda: jobs_for(w, question.id), timeout_s=30, what="the email_received job")
    assert wait_job(job, "awaiting_approval") == "awaiting_approval"
    approval = pending_approval(job)
    assert approval.kind == "email_preview" and approval.approver_user_ids == [str(w.user("alice"))]
    with transaction() as conn:
        stored = conn.execute(
            select(Email.__table__).where(Email.org_id == w.org_id, Email.message_id == question.id)
        ).one()
        own = conn.execute(select(Email.id).where(Email.org_id == w.org_id, Email.from_addr == ALICE)).all()
    assert stored.from_addr == "hank@globex.example" and stored.snippet == QUESTION
    assert own == []  # her own reply is not an inbound email

    # Pub/Sub redelivers the same message, and Gmail publishes another notification: no second job.
    assert deliver(pubsub, certs, body).status_code == 204
    assert deliver(pubsub, certs, push_body(ALICE, history_id=str(question.history_id + 1))).status_code == 204
    wait_for(
        lambda: (
            w.google.requests_to("GET", r"/gmail/v1/users/me/history")
            and _lease_free(demo_id("integration", "google", "alice"))
        ),
        timeout_s=30,
        what="the later syncs to finish",
    )
    assert jobs_for(w, question.id) == [job]


def _lease_free(integration_id: uuid.UUID) -> bool:
    with transaction() as conn:
        row = conn.execute(
            select(Integration.sync_lease_until, Integration.sync_wanted_at).where(Integration.id == integration_id)
        ).one()
    return row.sync_lease_until is None and row.sync_wanted_at is not None
