"""worker.clients.instantly against a fake Instantly API v2 over real HTTP (no database)."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import UTC, date, datetime

import pytest

from tests.fakes.instantly import API_KEY, FakeInstantly, analytics, campaign, email_item, instantly_error
from tests.fakes.server import Reply
from worker.clients.instantly import CampaignAnalytics, InstantlyClient, ReplyEmail
from worker.config import reset_settings
from worker.crypto import encrypt_json, generate_key
from worker.errors import AuthRevoked, PermanentError, RateLimited, TransientError
from worker.models import Integration

MAILBOX = "rep@outbound.example"
ANALYTICS = r"/api/v2/campaigns/analytics"
EMAILS = r"/api/v2/emails"


@pytest.fixture(autouse=True)
def _unpaced() -> Iterator[None]:
    """No database here: the shared pacing (a database row) is off; test_rate_limits.py tests it."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("INSTANTLY_REQUESTS_PER_S", "0")
        reset_settings()
        yield
    reset_settings()


@pytest.fixture
def fake_instantly() -> Iterator[FakeInstantly]:
    """A running fake Instantly with two active campaigns, one paused, and a page size of 2."""
    with FakeInstantly(page_size=2) as fake:
        fake.campaigns = [campaign("c1", "Q4 SaaS"), campaign("c2", "Agencies"), campaign("c3", "Old", status=2)]
        fake.analytics = [
            analytics("c1", "Q4 SaaS", sent=1000, opened=350, replied=25, bounced=12),
            analytics("c2", "Agencies", sent=400, opened=60, replied=4, bounced=30, unique=False),
            analytics("c3", "Old", sent=90, opened=9, replied=0, bounced=1, status=2),
        ]
        yield fake


@pytest.fixture
def client(fake_instantly: FakeInstantly) -> Iterator[InstantlyClient]:
    """A client for the fake, closed after the test."""
    with InstantlyClient(API_KEY, base_url=fake_instantly.base_url, timeout_s=5, integration_id="int-1") as c:
        yield c


def test_list_active_campaigns_follows_the_cursor(fake_instantly: FakeInstantly, client: InstantlyClient) -> None:
    fake_instantly.campaigns.append(campaign("c4", "New"))
    campaigns = client.list_campaigns()
    assert [(c.id, c.name, c.status) for c in campaigns] == [
        ("c1", "Q4 SaaS", 1),
        ("c2", "Agencies", 1),
        ("c4", "New", 1),
    ]
    calls = fake_instantly.requests_to("GET", r"/api/v2/campaigns")
    assert calls[0].headers["authorization"] == f"Bearer {API_KEY}"
    assert [(r.arg("status"), r.arg("limit"), r.arg("starting_after")) for r in calls] == [
        ("1", "100", None),
        ("1", "100", "c2"),
    ]


def test_active_campaign_analytics_maps_the_wire_fields(fake_instantly: FakeInstantly, client: InstantlyClient) -> None:
    rows = client.active_campaign_analytics(start_date=date(2026, 11, 1), end_date=date(2026, 11, 24))

    assert rows == [
        CampaignAnalytics(
            campaign_id="c1",
            name="Q4 SaaS",
            status=1,
            sent=1000,
            opened=350,
            replied=25,
            bounced=12,
            unsubscribed=2,
            leads=1500,
            contacted=1200,
        ),
        CampaignAnalytics(
            campaign_id="c2",
            name="Agencies",
            status=1,
            sent=400,
            opened=60,
            replied=4,
            bounced=30,
            unsubscribed=2,
            leads=1500,
            contacted=1200,
        ),
    ]  # c1 uses the *_unique counts, c2 (older shape) the totals; the paused c3 is left out
    (request,) = fake_instantly.requests_to("GET", ANALYTICS)
    assert (request.arg("start_date"), request.arg("end_date")) == ("2026-11-01", "2026-11-24")
    assert request.arg("exclude_total_leads_count") == "true"


def test_analytics_of_one_campaign_asks_by_id(fake_instantly: FakeInstantly, client: InstantlyClient) -> None:
    (row,) = client.campaign_analytics(["c3"])
    assert (row.campaign_id, row.sent, row.status) == ("c3", 90, 2)
    assert fake_instantly.requests_to("GET", ANALYTICS)[0].arg("id") == "c3"


def test_no_active_campaigns_means_no_analytics_call(fake_instantly: FakeInstantly, client: InstantlyClient) -> None:
    fake_instantly.campaigns = []
    assert client.active_campaign_analytics() == []
    assert fake_instantly.requests_to("GET", ANALYTICS) == []


def test_recent_replies_keeps_lead_emails_since_the_cutoff(
    fake_instantly: FakeInstantly, client: InstantlyClient
) -> None:
    fake_instantly.emails = [  # newest first, as sort_order=desc returns them
        email_item(
            "e5",
            sender="cto@acme.test",
            mailbox=MAILBOX,
            lead="cto@acme.test",
            campaign_id="c1",
            at="2026-11-25T08:30:00.000Z",
            text="Yes, let's talk Thursday",
        ),
        email_item(
            "e4",
            sender=MAILBOX,
            mailbox=MAILBOX,
            lead="cto@acme.test",
            campaign_id="c1",
            at="2026-11-25T08:00:00.000Z",
            ue_type=1,
        ),  # our own campaign email: not a reply
        email_item(
            "e3",
            sender="ooo@beta.test",
            mailbox=MAILBOX,
            lead="ooo@beta.test",
            campaign_id="c2",
            at="2026-11-24T22:00:00.000Z",
            text="I am out of office",
            auto=1,
        ),
        email_item(
            "e2",
            sender="old@gamma.test",
            mailbox=MAILBOX,
            lead="old@gamma.test",
            campaign_id="c1",
            at="2026-11-23T10:00:00.000Z",
        ),  # before the cutoff
        email_item(
            "e1",
            sender="older@gamma.test",
            mailbox=MAILBOX,
            lead="older@gamma.test",
            campaign_id="c1",
            at="2026-11-22T10:00:00.000Z",
        ),
    ]

    replies = client.recent_replies(datetime(2026, 11, 24, 9, 0, tzinfo=UTC))

    assert [r.id for r in replies] == ["e5", "e3"]
    first = replies[0]
    assert first == ReplyEmail(
        id="e5",
        campaign_id="c1",
        thread_id="thread-e5",
        message_id="<e5@mail.example>",
        from_email="cto@acme.test",
        to=MAILBOX,
        mailbox=MAILBOX,
        lead_email="cto@acme.test",
        subject="Re: hi",
        body_text="Yes, let's talk Thursday",
        received_at=datetime(2026, 11, 25, 8, 30, tzinfo=UTC),
        is_auto_reply=False,
    )
    assert replies[1].is_auto_reply is True
    calls = fake_instantly.requests_to("GET", EMAILS)
    # page size 2: the second page crossed the cutoff, so the third (e1) was never asked for
    assert [r.arg("starting_after") for r in calls] == [None, "e4"]
    assert all(r.arg("email_type") == "received" and r.arg("sort_order") == "desc" for r in calls)
    assert all(int(r.arg("limit")) <= 100 for r in calls)


def test_recent_replies_of_one_campaign(fake_instantly: FakeInstantly, client: InstantlyClient) -> None:
    fake_instantly.emails = [
        email_item(
            "e2", sender="a@x.test", mailbox=MAILBOX, lead="a@x.test", campaign_id="c2", at="2026-11-25T08:00:00Z"
        ),
        email_item(
            "e1", sender="b@x.test", mailbox=MAILBOX, lead="b@x.test", campaign_id="c1", at="2026-11-25T07:00:00Z"
        ),
    ]
    replies = client.recent_replies(datetime(2026, 11, 25, tzinfo=UTC), campaign_id="c1")
    assert [r.id for r in replies] == ["e1"]
    assert fake_instantly.requests_to("GET", EMAILS)[0].arg("campaign_id") == "c1"


def test_recent_replies_refuses_naive_since(client: InstantlyClient) -> None:
    with pytest.raises(ValueError, match="naive"):
        client.recent_replies(datetime(2026, 11, 25))


def test_429_with_retry_after_is_rate_limited(fake_instantly: FakeInstantly, client: InstantlyClient) -> None:
    fake_instantly.script(
        "GET", ANALYTICS, instantly_error(429, "Too Many Requests", "Rate limit exceeded", {"Retry-After": "42"})
    )
    with pytest.raises(RateLimited, match="Rate limit exceeded") as info:
        client.campaign_analytics()
    assert info.value.retry_after_s == 42.0


def test_429_without_retry_after_waits_one_second(fake_instantly: FakeInstantly, client: InstantlyClient) -> None:
    fake_instantly.script("GET", EMAILS, instantly_error(429, "Too Many Requests", "Rate limit exceeded"))
    with pytest.raises(RateLimited) as info:
        client.recent_replies(datetime(2026, 11, 25, tzinfo=UTC))
    assert info.value.retry_after_s == 1.0


def test_5xx_is_transient(fake_instantly: FakeInstantly, client: InstantlyClient) -> None:
    fake_instantly.script("GET", r"/api/v2/campaigns", Reply(502, "<html>Bad gateway</html>"))
    with pytest.raises(TransientError, match="HTTP 502") as info:
        client.list_campaigns()
    assert not isinstance(info.value, RateLimited)


def test_wrong_key_is_auth_revoked_for_the_integration(fake_instantly: FakeInstantly) -> None:
    with (
        InstantlyClient("wrong", base_url=fake_instantly.base_url, integration_id="int-9") as bad,
        pytest.raises(AuthRevoked, match="Invalid API key") as info,
    ):
        bad.list_campaigns()
    assert (info.value.provider, info.value.integration_id) == ("instantly", "int-9")


@pytest.mark.parametrize("status", [400, 403, 404])
def test_other_4xx_is_permanent(fake_instantly: FakeInstantly, client: InstantlyClient, status: int) -> None:
    fake_instantly.script("GET", ANALYTICS, instantly_error(status, "Bad Request", "Start Date must be earlier"))
    with pytest.raises(PermanentError, match="Start Date must be earlier") as info:
        client.campaign_analytics()
    assert not isinstance(info.value, AuthRevoked | TransientError)


def test_malformed_body_is_transient(fake_instantly: FakeInstantly, client: InstantlyClient) -> None:
    fake_instantly.script("GET", ANALYTICS, Reply(200, b"{not json"))
    with pytest.raises(TransientError, match="not JSON"):
        client.campaign_analytics()


def test_a_stalled_api_times_out_as_transient(fake_instantly: FakeInstantly) -> None:
    fake_instantly.script("GET", r"/api/v2/campaigns", Reply(200, {"items": []}, delay_s=30))
    with (
        InstantlyClient(API_KEY, base_url=fake_instantly.base_url, timeout_s=0.3) as slow,
        pytest.raises(TransientError, match="timed out"),
    ):
        slow.list_campaigns()


def test_client_from_an_integration_row_uses_settings(
    fake_instantly: FakeInstantly, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ENCRYPTION_KEYS", generate_key())
    monkeypatch.setenv("INSTANTLY_API_URL", fake_instantly.base_url)
    reset_settings()
    try:
        row = Integration(id=uuid.uuid4(), provider="instantly", credentials=encrypt_json({"api_key": API_KEY}))
        with InstantlyClient.for_integration(row) as from_row:
            assert [c.id for c in from_row.list_campaigns()] == ["c1", "c2"]
            assert from_row.integration_id == row.id
    finally:
        reset_settings()


def test_a_missing_key_is_permanent() -> None:
    with pytest.raises(PermanentError, match="no Instantly API key"):
        InstantlyClient("")
