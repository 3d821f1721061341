"""An email or calendar event happens exactly once although the worker sending it is killed (kill -9
of the whole process group) at chosen moments: during the preparation (the per-user quota wait), in
the provider call before Google received it, and after Google acted but before we stored it; also
when Gmail sent the message and the connection closed without an answer (which httplib2 alone
would send again), and when the search that settles it fails for a while or for good.
Counted at the fake Google, driven through the real googleapiclient, with real `celery worker`s on
PostgreSQL + Redis."""

from __future__ import annotations

import re
import time
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from sqlalchemy import select, update

from tests.conftest import Backend
from tests.fakes.google import FakeGoogle, google_error
from tests.fakes.server import Recorded, Reply
from tests.support import effect_sequences
from tests.support.engine import TestOrg, event, reached, step_rows
from tests.support.google import connect, credentials
from tests.support.waiting import wait_for
from tests.support.workers import WorkerProcess
from worker.db import transaction
from worker.engine import registry
from worker.engine.events import fire_event
from worker.engine.sweeper import sweep
from worker.google.client import gmail_service
from worker.google.gmail_send import build_mime, find_sent, message_id_for, send
from worker.models import RateSlot, User

pytestmark = [pytest.mark.slow, pytest.mark.postgres]

# The fake's own paths (their groups are what its routes read).
SEND = r"/gmail/v1/users/([^/]+)/messages/send"
SEARCH = r"/gmail/v1/users/([^/]+)/messages"
INSERT = r"/calendar/v3/calendars/([^/]+)/events"
CLIENT = "lena@client.test"
STALL_S = 60.0  # an answer held this long: the worker is killed while it waits (the fake frees it at stop)
# The quota slot the test keeps this far ahead until the worker takes the next one: the worker then
# waits about this long (under PACE_WAIT_MAX_S, so it waits instead of rescheduling).
QUOTA_AHEAD_S = 1.9

WorkerFactory = Callable[..., WorkerProcess]


@pytest.fixture
def effect_workers(pg: Backend, fake_google: FakeGoogle, request: pytest.FixtureRequest) -> Iterator[WorkerFactory]:
    """Start workers that know the effect test sequence (and the fake Google); stopped at the end."""
    started: list[WorkerProcess] = []
    env = {**pg.env, "PROACTIVE_SEQUENCE_MODULES": "sequences,tests.support.effect_sequences"}

    def make(**extra_env: str) -> WorkerProcess:
        name = f"{request.node.name[:40]}-{len(started)}"
        started.append(WorkerProcess({**env, **extra_env}, pg.log_dir, name).start())
        return started[-1]

    yield make
    for worker in started:
        worker.stop()


@pytest.fixture
def rep(pg: Backend, fake_google: FakeGoogle) -> tuple[TestOrg, str, uuid.UUID]:
    """An org whose rep has Google connected: (org, the rep's address, the integration id)."""
    from tests.support.engine import make_org

    org = make_org()
    with transaction() as conn:
        address = conn.execute(select(User.email).where(User.id == org.rep)).scalar_one()
    integration_id = connect(org, address, None, creds=credentials(fake_google, address))
    return org, address, integration_id


def fire(org: TestOrg, kind: str = "email") -> uuid.UUID:
    """Fire the test sequence's event: one step that sends an email (or creates an event) to CLIENT."""
    with registry.overridden(effect_sequences.SEQUENCES):
        return fire_event(event(org, effect_sequences.EVENT_TYPE, {"kind": kind, "to": CLIENT})).job_id


def finished(job_id: uuid.UUID) -> str:
    """Wait until the job is final, sweeping so that the killed step's expired lease is taken over."""
    return wait_for(
        lambda: sweep().reclaimed >= 0 and reached(job_id, "completed", "failed"),
        timeout_s=45,
        what="job final after the kill",
    )


def stall_first(fake: FakeGoogle, path: str, route: Callable[[Recorded, re.Match[str]], Reply]) -> None:
    """Let the first request to `path` act through `route`, then hold its answer (the worker dies
    waiting); later requests are answered at once."""
    used: list[bool] = []

    def acting_then_stalling(request: Recorded, match: re.Match[str]) -> Reply:
        reply = route(request, match)
        if used:
            return reply
        used.append(True)
        return Reply(reply.status, reply.body, reply.headers, delay_s=STALL_S)

    fake.route("POST", path, acting_then_stalling)
    fake._routes.insert(0, fake._routes.pop())  # before the fake's own answer


def route_first(fake: FakeGoogle, method: str, path: str, route: Callable[[Recorded, re.Match[str]], Reply]) -> None:
    """Answer `method` `path` with `route` instead of the fake's own route (scripted answers still win)."""
    fake.route(method, path, route)
    fake._routes.insert(0, fake._routes.pop())


UNAVAILABLE = google_error(503, "The service is currently unavailable.", "backendError")


def unavailable(_request: Recorded, _match: re.Match[str]) -> Reply:
    return UNAVAILABLE


def sent_to_client(fake: FakeGoogle) -> list[Any]:
    return [m for m in fake.sent if m.mime["To"] == CLIENT]


def test_a_kill_during_the_quota_wait_sends_the_email_once_on_retry(
    effect_workers: WorkerFactory, fake_google: FakeGoogle, rep: tuple[TestOrg, str, uuid.UUID]
):
    org, address, integration_id = rep
    slot = f"google:{integration_id}"
    ahead = time.time() + QUOTA_AHEAD_S
    with transaction() as conn:
        conn.execute(RateSlot.__table__.insert().values(key=slot, next_at_s=ahead))
    victim = effect_workers()
    job_id = fire(org)

    def worker_took_the_slot() -> bool:
        """Keep the slot QUOTA_AHEAD_S ahead until the worker reserves after it (it moves it on)."""
        nonlocal ahead
        new = time.time() + QUOTA_AHEAD_S
        with transaction() as conn:
            kept = conn.execute(
                update(RateSlot.__table__)
                .where(RateSlot.key == slot, RateSlot.next_at_s < ahead + 0.01)
                .values(next_at_s=new)
            ).rowcount
        ahead = new if kept else ahead
        return not kept

    wait_for(worker_took_the_slot, what="the worker waiting for its quota slot")
    victim.kill()  # while it sleeps until its slot, before the send
    assert fake_google.requests_to("POST", SEND) == []

    effect_workers()
    assert finished(job_id) == "completed"
    (message,) = sent_to_client(fake_google)
    assert message.mime["Message-ID"] == message_id_for(f"{job_id}:act:0:send-email", address)
    act = step_rows(job_id)["act"]
    assert act.attempt == 2 and act.output["effect"] == {"id": message.id, "threadId": message.thread_id}


def test_a_kill_after_gmail_sent_finds_that_message_instead_of_sending_again(
    effect_workers: WorkerFactory, fake_google: FakeGoogle, rep: tuple[TestOrg, str, uuid.UUID]
):
    org, _, _ = rep
    stall_first(fake_google, SEND, fake_google._send)  # Gmail sends, its answer never arrives
    victim = effect_workers()
    job_id = fire(org)
    wait_for(lambda: sent_to_client(fake_google), what="the message sent by the first attempt")
    victim.kill()

    effect_workers()
    assert finished(job_id) == "completed"
    (message,) = sent_to_client(fake_google)
    assert len(fake_google.requests_to("POST", SEND)) == 1  # found by its Message-ID, not sent again
    (search,) = fake_google.requests_to("GET", SEARCH)
    assert search.arg("q") == f"rfc822msgid:{message.mime['Message-ID'].strip('<>')}"
    act = step_rows(job_id)["act"]
    assert act.attempt == 2 and act.output["effect"] == {"id": message.id, "threadId": message.thread_id}


def test_a_kill_before_gmail_received_the_send_sends_it_on_retry(
    effect_workers: WorkerFactory, fake_google: FakeGoogle, rep: tuple[TestOrg, str, uuid.UUID]
):
    org, _, _ = rep
    fake_google.script("POST", SEND, Reply(503, {}, delay_s=STALL_S))  # the request hangs, nothing is sent
    victim = effect_workers()
    job_id = fire(org)
    wait_for(lambda: fake_google.requests_to("POST", SEND), what="the first attempt inside its send")
    victim.kill()

    effect_workers()
    assert finished(job_id) == "completed"
    (message,) = sent_to_client(fake_google)  # the search found nothing, so the retry sent it, once
    assert len(fake_google.requests_to("GET", SEARCH)) == 1
    assert step_rows(job_id)["act"].output["effect"]["id"] == message.id


def test_when_the_mailbox_cannot_be_searched_the_step_fails_as_uncertain(
    effect_workers: WorkerFactory, fake_google: FakeGoogle, rep: tuple[TestOrg, str, uuid.UUID]
):
    org, address, _ = rep
    fake_google.script("POST", SEND, Reply(503, {}, delay_s=STALL_S))
    fake_google.script("GET", SEARCH, google_error(403, "Insufficient Permission", "insufficientPermissions"))
    victim = effect_workers()
    job_id = fire(org)
    wait_for(lambda: fake_google.requests_to("POST", SEND), what="the first attempt inside its send")
    victim.kill()

    effect_workers()
    assert finished(job_id) == "failed"
    assert sent_to_client(fake_google) == [] and len(fake_google.requests_to("POST", SEND)) == 1
    act = step_rows(job_id)["act"]
    assert act.error_class == "uncertain"
    assert f"Sent folder of {address}" in act.error and "Message-ID <" in act.error


def test_a_send_that_timed_out_after_gmail_sent_it_is_found_not_sent_again(
    effect_workers: WorkerFactory, fake_google: FakeGoogle, rep: tuple[TestOrg, str, uuid.UUID]
):
    org, _, _ = rep
    stall_first(fake_google, SEND, fake_google._send)  # Gmail sends; the client gives up waiting
    effect_workers(GOOGLE_TIMEOUT_S="1")
    job_id = fire(org)

    assert finished(job_id) == "completed"
    (message,) = sent_to_client(fake_google)
    assert len(fake_google.requests_to("POST", SEND)) == 1  # the retry searched first and found it
    act = step_rows(job_id)["act"]
    assert act.attempt == 2 and act.output["effect"] == {"id": message.id, "threadId": message.thread_id}


def test_a_kill_after_calendar_created_the_event_gets_that_event_on_retry(
    effect_workers: WorkerFactory, fake_google: FakeGoogle, rep: tuple[TestOrg, str, uuid.UUID]
):
    org, _, _ = rep
    stall_first(fake_google, INSERT, fake_google._insert_event)  # Calendar creates it, its answer never arrives
    victim = effect_workers()
    job_id = fire(org, "event")
    wait_for(lambda: fake_google.events, what="the event created by the first attempt")
    victim.kill()

    effect_workers()
    assert finished(job_id) == "completed"
    ((_, event_id),) = fake_google.events  # one event, although the insert was sent twice
    assert len(fake_google.requests_to("POST", INSERT)) == 2
    assert step_rows(job_id)["act"].output["effect"]["id"] == event_id


def test_find_sent_finds_a_sent_message_by_its_message_id(fake_google: FakeGoogle):
    from google.oauth2.credentials import Credentials

    token = fake_google.issue_access_token("rep@example.com")
    with gmail_service(Credentials(token=token)) as service:
        message_id = message_id_for("job:act:0:send-email", "rep@example.com")
        assert find_sent(service, message_id) is None
        sent = send(service, build_mime("rep@example.com", [CLIENT], "Hi", "b", message_id=message_id))
        assert find_sent(service, message_id) == sent
        assert find_sent(service, message_id_for("job:act:1:send-email", "rep@example.com")) is None
    other = fake_google.issue_access_token("other@example.com")
    with gmail_service(Credentials(token=other)) as service:
        assert find_sent(service, message_id) is None  # another mailbox did not send it
    (search,) = [r for r in fake_google.requests_to("GET", SEARCH) if r.arg("q")][:1]
    assert search.arg("includeSpamTrash") == "true"


def test_a_send_whose_answer_was_lost_is_found_not_sent_again(
    effect_workers: WorkerFactory, fake_google: FakeGoogle, rep: tuple[TestOrg, str, uuid.UUID]
):
    org, _, _ = rep
    fake_google.script("POST", SEND, Reply(drop=True))  # Gmail sends; the connection closes, no answer
    effect_workers()
    job_id = fire(org)

    assert finished(job_id) == "completed"
    (message,) = sent_to_client(fake_google)
    assert len(fake_google.requests_to("POST", SEND)) == 1  # not re-sent by httplib2 nor by the retry
    (search,) = fake_google.requests_to("GET", SEARCH)
    assert search.arg("q") == f"rfc822msgid:{message.mime['Message-ID'].strip('<>')}"
    act = step_rows(job_id)["act"]
    assert act.attempt == 2 and act.output["effect"] == {"id": message.id, "threadId": message.thread_id}


def test_a_search_that_failed_once_is_asked_again_on_the_next_attempt(
    effect_workers: WorkerFactory, fake_google: FakeGoogle, rep: tuple[TestOrg, str, uuid.UUID]
):
    org, _, _ = rep
    fake_google.script("POST", SEND, Reply(drop=True))
    fake_google.script("GET", SEARCH, UNAVAILABLE)  # the first search: 503
    effect_workers()
    job_id = fire(org)

    assert finished(job_id) == "completed"
    (message,) = sent_to_client(fake_google)
    assert len(fake_google.requests_to("POST", SEND)) == 1
    assert len(fake_google.requests_to("GET", SEARCH)) == 2
    act = step_rows(job_id)["act"]
    assert act.attempt == 3 and act.output["effect"] == {"id": message.id, "threadId": message.thread_id}


def test_a_search_that_keeps_failing_ends_the_step_as_uncertain_after_its_attempts(
    effect_workers: WorkerFactory, fake_google: FakeGoogle, rep: tuple[TestOrg, str, uuid.UUID]
):
    org, address, _ = rep
    fake_google.script("POST", SEND, Reply(drop=True))
    route_first(fake_google, "GET", SEARCH, unavailable)  # every search: 503
    effect_workers()
    job_id = fire(org)

    assert finished(job_id) == "failed"
    assert len(sent_to_client(fake_google)) == 1 and len(fake_google.requests_to("POST", SEND)) == 1
    assert len(fake_google.requests_to("GET", SEARCH)) == 2  # attempts 2 and 3 asked; 3 was the last
    act = step_rows(job_id)["act"]
    assert act.attempt == 3 and act.error_class == "uncertain"
    assert "may have happened" in act.error and f"check the Sent folder of {address}" in act.error


def test_after_a_failed_send_a_refused_search_ends_the_step_as_uncertain_at_once(
    effect_workers: WorkerFactory, fake_google: FakeGoogle, rep: tuple[TestOrg, str, uuid.UUID]
):
    org, address, _ = rep
    fake_google.script("POST", SEND, UNAVAILABLE)  # Gmail answers 503: did it send?
    fake_google.script("GET", SEARCH, google_error(403, "Insufficient Permission", "insufficientPermissions"))
    effect_workers()
    job_id = fire(org)

    assert finished(job_id) == "failed"
    assert sent_to_client(fake_google) == [] and len(fake_google.requests_to("POST", SEND)) == 1
    act = step_rows(job_id)["act"]
    assert act.attempt == 2 and act.error_class == "uncertain"
    assert "which failed" in act.error and f"check the Sent folder of {address}" in act.error


def test_after_a_failed_send_a_search_that_failed_once_is_asked_again_then_sends(
    effect_workers: WorkerFactory, fake_google: FakeGoogle, rep: tuple[TestOrg, str, uuid.UUID]
):
    org, _, _ = rep
    fake_google.script("POST", SEND, UNAVAILABLE)  # nothing sent
    fake_google.script("GET", SEARCH, UNAVAILABLE)
    effect_workers()
    job_id = fire(org)

    assert finished(job_id) == "completed"
    (message,) = sent_to_client(fake_google)
    assert len(fake_google.requests_to("POST", SEND)) == 2 and len(fake_google.requests_to("GET", SEARCH)) == 2
    act = step_rows(job_id)["act"]
    assert act.attempt == 3 and act.output["effect"]["id"] == message.id
