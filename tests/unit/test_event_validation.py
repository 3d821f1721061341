"""Event envelope and payload validation, gates and default idempotency keys (docs/events.md).

tests.support.sequences replaces most event types' sequences with test DAGs whose payload model is
permissive; the `real_payloads` fixture puts the product's payload models back for one test.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

import pytest

from worker.engine import events, registry
from worker.engine.dag import Sequence, Step
from worker.engine.events import default_idempotency_key, gate_reason, stored_key, validate_event, validate_public
from worker.engine.payloads import (
    MAX_CHAIN_DEPTH,
    MAX_PAYLOAD_BYTES,
    ORG_LEVEL_TYPES,
    PAYLOAD_MODELS,
    DealRiskScan,
    Event,
    EventType,
    MeetingEnded,
    PublicEvent,
    Source,
    api_source,
    is_caller_source,
)
from worker.errors import InvalidEvent
from worker.metrics.prom import source_label

ORG = uuid.UUID("00000000-0000-4000-8000-00000000000a")
USER = uuid.UUID("00000000-0000-4000-8000-00000000000b")
PARENT = uuid.UUID("00000000-0000-4000-8000-00000000000c")
MEETING = uuid.UUID("00000000-0000-4000-8000-0000000000d1")
CAL_EVENT = uuid.UUID("00000000-0000-4000-8000-0000000000d2")
EMAIL = uuid.UUID("00000000-0000-4000-8000-0000000000d3")
DEAL = uuid.UUID("00000000-0000-4000-8000-0000000000d4")
REPLY = uuid.UUID("00000000-0000-4000-8000-0000000000d5")
# Sunday 15 March 2026, 23:30 UTC: already Monday 16 March in Kolkata, still Sunday in New York.
NOW = datetime(2026, 3, 15, 23, 30, tzinfo=UTC)

NINE_TYPES = [
    "meeting_ended",
    "pre_meeting_90min",
    "email_received",
    "proposal_generation",
    "calendar_find_times",
    "stale_deal_revival",
    "campaign_daily_check",
    "coaching_weekly",
    "deal_risk_scan",
]
DOCUMENTED_SOURCES = [
    "webhook:recording",
    "webhook:gmail",
    "slack:action",
    "cron:morning",
    "cron:meeting-prep",
    "cron:daily",
    "cron:weekly",
    "chain",
    "api",
    "cli",
    "smoke",
]
VALID_PAYLOADS = {
    "meeting_ended": {"meeting_id": str(MEETING)},
    "pre_meeting_90min": {"calendar_event_id": str(CAL_EVENT)},
    "email_received": {"email_id": str(EMAIL)},
    "proposal_generation": {"deal_id": str(DEAL)},
    "calendar_find_times": {"scheduling_text": "30 minutes next week"},
    "stale_deal_revival": {"deal_id": str(DEAL)},
    "campaign_daily_check": {},
    "coaching_weekly": {},
    "deal_risk_scan": {},
}


def noop(ctx, inputs):
    return None


def envelope(**over):
    data = {"type": "deal_risk_scan", "source": "cron:daily", "org_id": str(ORG), "user_id": str(USER), "payload": {}}
    data.update(over)
    return {k: v for k, v in data.items() if v is not ...}


def fields(err: InvalidEvent) -> set[str]:
    return {e["field"] for e in err.errors}


@pytest.fixture
def real_payloads(monkeypatch):
    """Every event type validated by its product payload model (not the test DAGs' permissive one)."""
    real = {t: Sequence(t, (Step("only", noop),), payload_model=m) for t, m in PAYLOAD_MODELS.items()}

    def get(event_type):
        try:
            return real[event_type]
        except KeyError:
            raise registry.UnknownSequence(event_type) from None

    monkeypatch.setattr(registry, "get", get)


# --------------------------------------------------------------------------- the contract's enums


def test_event_types_are_the_nine_of_the_spec():
    assert sorted(e.value for e in EventType) == sorted(NINE_TYPES)
    assert set(PAYLOAD_MODELS) == set(NINE_TYPES)


def test_sources_are_the_spec_enum():
    assert sorted(s.value for s in Source) == sorted(DOCUMENTED_SOURCES)


def test_org_level_types():
    assert {t.value for t in ORG_LEVEL_TYPES} == {"deal_risk_scan", "campaign_daily_check"}


# --------------------------------------------------------------------------- envelope


def test_a_valid_event_parses_into_typed_values():
    event, payload = validate_event(envelope(payload={"date": "2026-03-15", "deal_ids": [str(DEAL)]}))
    assert event.type is EventType.DEAL_RISK_SCAN
    assert event.source is Source.CRON_DAILY
    assert event.org_id == ORG
    assert event.depth == 0
    assert isinstance(payload, DealRiskScan)
    assert payload.deal_ids == [DEAL]
    assert str(payload.date) == "2026-03-15"


def test_an_event_object_is_accepted_as_is():
    event = Event(type="deal_risk_scan", source="api", org_id=ORG)
    got, payload = validate_event(event)
    assert got is event
    assert isinstance(payload, DealRiskScan)


def test_unknown_type():
    with pytest.raises(InvalidEvent, match=r"^invalid event: type: ") as exc:
        validate_event(envelope(type="meeting_started"))
    assert fields(exc.value) == {"type"}


@pytest.mark.parametrize("source", ["webhook:zoom", "cron", "API", "", "api:", "api:" + "k" * 97])
def test_bad_source(source):
    with pytest.raises(InvalidEvent) as exc:
        validate_event(envelope(source=source))
    assert fields(exc.value) == {"source"}


@pytest.mark.parametrize("source", DOCUMENTED_SOURCES)
def test_every_spec_source_is_accepted(source):
    event, _ = validate_event(envelope(source=source))
    assert event.source == source


@pytest.mark.parametrize("event_type", sorted(set(NINE_TYPES) - {"deal_risk_scan", "campaign_daily_check"}))
def test_rep_level_types_need_a_user(real_payloads, event_type):
    data = envelope(type=event_type, user_id=..., payload=VALID_PAYLOADS[event_type])
    with pytest.raises(InvalidEvent, match=f"user_id is required for {event_type} events") as exc:
        validate_event(data)
    assert len(exc.value.errors) == 1
    # the same event with a user is fine
    validate_event({**data, "user_id": str(USER)})


@pytest.mark.parametrize("event_type", ["deal_risk_scan", "campaign_daily_check"])
def test_org_level_types_do_not_need_a_user(real_payloads, event_type):
    event, _ = validate_event(envelope(type=event_type, user_id=...))
    assert event.user_id is None


def test_extra_envelope_field_is_refused():
    with pytest.raises(InvalidEvent, match="Extra inputs are not permitted") as exc:
        validate_event(envelope(priority="high"))
    assert fields(exc.value) == {"priority"}


@pytest.mark.parametrize(
    ("over", "field"),
    [
        ({"org_id": "not-a-uuid"}, "org_id"),
        ({"org_id": ...}, "org_id"),
        ({"user_id": "42"}, "user_id"),
        ({"parent_job_id": "x"}, "parent_job_id"),
        ({"depth": -1}, "depth"),
        ({"depth": "deep"}, "depth"),
        ({"item_index": -1}, "item_index"),
        ({"delay_minutes": -5}, "delay_minutes"),
        ({"delay_minutes": 60 * 24 * 30 + 1}, "delay_minutes"),
        ({"idempotency_key": ""}, "idempotency_key"),
        ({"idempotency_key": "k" * 301}, "idempotency_key"),
        ({"payload": ["not", "an", "object"]}, "payload"),
    ],
)
def test_bad_envelope_fields(over, field):
    with pytest.raises(InvalidEvent) as exc:
        validate_event(envelope(**over))
    assert fields(exc.value) == {field}
    assert str(exc.value).startswith(f"invalid event: {field}: ")


def test_every_envelope_error_is_listed():
    with pytest.raises(InvalidEvent) as exc:
        validate_event(envelope(type="nope", source="nope", depth=-1, colour="red"))
    assert fields(exc.value) == {"type", "source", "depth", "colour"}
    assert all(e["message"] for e in exc.value.errors)
    for name in ("type", "source", "depth", "colour"):
        assert f"{name}: " in str(exc.value)


def test_the_limits_themselves_are_accepted():
    event, _ = validate_event(
        envelope(depth=MAX_CHAIN_DEPTH + 3, item_index=0, delay_minutes=60 * 24 * 30, idempotency_key="k" * 300)
    )
    assert event.depth == 8  # accepted here; refused later by the gate, as a visible skipped job


# --------------------------------------------------------------------------- the caller's envelope


def test_the_public_envelope_has_only_the_callers_fields():
    assert set(PublicEvent.model_fields) == {
        "type",
        "org_id",
        "user_id",
        "payload",
        "idempotency_key",
        "delay_minutes",
        "replace",
    }


def test_a_public_event_gets_the_edges_source():
    data = {"type": "deal_risk_scan", "org_id": str(ORG), "payload": {}, "delay_minutes": 5}
    event, _ = validate_public(data, "api:crm-sync")
    assert (event.source, event.depth, event.parent_job_id, event.delay_minutes) == ("api:crm-sync", 0, None, 5)
    assert validate_public(data, "cli")[0].source is Source.CLI


@pytest.mark.parametrize(
    "internal", [{"source": "smoke"}, {"depth": 6}, {"parent_job_id": str(PARENT)}, {"item_index": 0}]
)
def test_a_field_only_the_server_sets_is_refused_naming_it(internal):
    data = {"type": "deal_risk_scan", "org_id": str(ORG), "payload": {}, **internal}
    with pytest.raises(InvalidEvent) as exc:
        validate_public(data, "api:crm-sync")
    [(name, message)] = [(e["field"], e["message"]) for e in exc.value.errors]
    assert name == next(iter(internal))
    assert message.startswith("set by the server") and "not by the caller" in message


def test_replace_needs_a_deal_bound_event():
    deal_bound = {"type": "stale_deal_revival", "org_id": str(ORG), "user_id": str(USER), "replace": True}
    assert validate_public({**deal_bound, "payload": {"deal_id": str(DEAL)}}, "cli")[0].replace is True
    for data in (
        {**deal_bound, "type": "deal_risk_scan", "payload": {}},
        {**deal_bound, "type": "calendar_find_times", "payload": {"scheduling_text": "soon"}},  # not from a deal
    ):
        with pytest.raises(InvalidEvent) as exc:
            validate_public(data, "cli")
        assert fields(exc.value) == {"replace"}


def test_sources_of_callers_and_their_key_namespace():
    assert api_source("crm-sync") == "api:crm-sync" and api_source(None) == "api"
    assert len(api_source("k" * 500)) == 100  # cut to fit the metrics roll-up's key
    assert [s for s in ("api", "api:x", "cli", "cron:daily", "chain", "smoke") if is_caller_source(s)] == [
        "api",
        "api:x",
        "cli",
    ]
    assert stored_key("api:x", "deal_risk_scan:o:2026-03-15") == "caller:deal_risk_scan:o:2026-03-15"
    assert stored_key("cron:daily", "deal_risk_scan:o:2026-03-15") == "deal_risk_scan:o:2026-03-15"


def test_every_api_key_is_one_prometheus_series():
    assert source_label("api:crm-sync") == source_label("api:dashboards") == "api"
    assert source_label("cron:daily") == "cron:daily" and source_label("carrier-pigeon") == "other"


@pytest.mark.parametrize("data", [["type", "deal_risk_scan"], "deal_risk_scan", None, 7])
def test_an_event_must_be_an_object(data):
    with pytest.raises(InvalidEvent, match="an event must be a JSON object") as exc:
        validate_event(data)
    assert exc.value.errors == []


def test_a_type_without_a_registered_sequence(monkeypatch):
    def get(event_type):
        raise registry.UnknownSequence(f"no sequence is registered for event type {event_type!r}")

    monkeypatch.setattr(registry, "get", get)
    with pytest.raises(InvalidEvent, match="no sequence is registered for event type 'deal_risk_scan'"):
        validate_event(envelope())


def test_invalid_event_is_a_422_user_error():
    err = InvalidEvent("x", errors=[{"field": "type", "message": "m"}])
    assert (err.http_status, err.exit_code) == (422, 2)
    assert InvalidEvent("x").errors == []


# --------------------------------------------------------------------------- payloads


@pytest.mark.parametrize(
    ("payload", "field"),
    [
        ({"surprise": 1}, "payload.surprise"),
        ({"date": "yesterday"}, "payload.date"),
        ({"date": 3.5}, "payload.date"),
        ({"deal_ids": "all"}, "payload.deal_ids"),
        ({"deal_ids": [str(DEAL), "nope"]}, "payload.deal_ids.1"),
        ({"deal_ids": [str(uuid.uuid4()) for _ in range(501)]}, "payload.deal_ids"),
    ],
)
def test_deal_risk_scan_payload_errors(payload, field):
    with pytest.raises(InvalidEvent, match=r"^invalid deal_risk_scan payload: ") as exc:
        validate_event(envelope(payload=payload))
    assert fields(exc.value) == {field}
    assert f"{field}: " in str(exc.value)


def test_every_payload_error_is_listed():
    with pytest.raises(InvalidEvent) as exc:
        validate_event(envelope(payload={"date": "x", "deal_ids": ["y"], "extra": True}))
    assert fields(exc.value) == {"payload.date", "payload.deal_ids.0", "payload.extra"}


@pytest.mark.parametrize(
    ("event_type", "payload", "field", "message"),
    [
        ("meeting_ended", {}, "payload.meeting_id", "Field required"),
        ("meeting_ended", {"meeting_id": 42}, "payload.meeting_id", "UUID"),
        ("meeting_ended", {"meeting_id": str(MEETING), "title": "x"}, "payload.title", "Extra inputs"),
        ("pre_meeting_90min", {}, "payload.calendar_event_id", "Field required"),
        ("proposal_generation", {"deal_id": str(DEAL), "notes": 5}, "payload.notes", "string"),
        ("calendar_find_times", {"scheduling_text": ""}, "payload.scheduling_text", "at least 1"),
        ("calendar_find_times", {}, "payload.scheduling_text", "Field required"),
        ("stale_deal_revival", {"deal_id": None}, "payload.deal_id", "UUID"),
        ("coaching_weekly", {"week": "2026-W1"}, "payload.week", "pattern"),
        ("campaign_daily_check", {"campaign_ids": [1]}, "payload.campaign_ids.0", "UUID"),
        ("email_received", {}, "payload", "give email_id, or from_email and body"),
        ("email_received", {"from_email": "a@b.co"}, "payload", "give email_id, or from_email and body"),
    ],
)
def test_payload_schema_errors_name_the_field(real_payloads, event_type, payload, field, message):
    with pytest.raises(InvalidEvent, match=f"^invalid {event_type} payload: ") as exc:
        validate_event(envelope(type=event_type, payload=payload))
    assert fields(exc.value) == {field}
    assert message in exc.value.errors[0]["message"]


@pytest.mark.parametrize("event_type", NINE_TYPES)
def test_valid_payload_of_every_type(real_payloads, event_type):
    _, payload = validate_event(envelope(type=event_type, payload=VALID_PAYLOADS[event_type]))
    assert isinstance(payload, PAYLOAD_MODELS[event_type])


def test_payload_models_can_be_used_directly():
    assert MeetingEnded.model_validate({"meeting_id": str(MEETING)}).meeting_id == MEETING
    with pytest.raises(ValueError, match="Extra inputs"):
        PAYLOAD_MODELS["pre_meeting_90min"].model_validate({"calendar_event_id": str(CAL_EVENT), "x": 1})


def test_payload_too_large(real_payloads):
    # 100,000 characters pass the schema, but each is 6 bytes once serialised (\\u00e9)
    data = envelope(type="email_received", payload={"from_email": "a@b.co", "body": "é" * 100_000})
    with pytest.raises(InvalidEvent, match=rf"^payload too large: \d+ bytes \(max {MAX_PAYLOAD_BYTES}\)$"):
        validate_event(data)


def test_payload_size_limit_boundary(monkeypatch):
    payload = {"deal_ids": [str(DEAL)]}
    size = len('{"deal_ids": ["' + str(DEAL) + '"]}')
    monkeypatch.setattr(events, "MAX_PAYLOAD_BYTES", size)
    validate_event(envelope(payload=payload))
    monkeypatch.setattr(events, "MAX_PAYLOAD_BYTES", size - 1)
    with pytest.raises(InvalidEvent, match=f"payload too large: {size} bytes"):
        validate_event(envelope(payload=payload))


# --------------------------------------------------------------------------- gates


def gate(depth=0, *, org_enabled=True, enabled_sequences=None, opted_out=None, event_type="meeting_ended"):
    return gate_reason(
        event_type, depth, org_enabled=org_enabled, enabled_sequences=enabled_sequences, opted_out=opted_out
    )


def test_no_gate_refuses_a_normal_event():
    assert gate() is None
    assert gate(enabled_sequences=["meeting_ended"], opted_out=["coaching_weekly"]) is None


def test_chain_depth_limit():
    assert gate(MAX_CHAIN_DEPTH) is None
    assert gate(MAX_CHAIN_DEPTH + 1) == "chain_too_deep"


def test_gate_order():
    everything_wrong = {"org_enabled": False, "enabled_sequences": [], "opted_out": ["meeting_ended"]}
    assert gate(6, **everything_wrong) == "chain_too_deep"
    assert gate(0, **everything_wrong) == "org_disabled"
    assert gate(0, enabled_sequences=["deal_risk_scan"], opted_out=["meeting_ended"]) == "sequence_disabled"
    assert gate(0, opted_out=["meeting_ended"]) == "user_opted_out"


def test_enabled_sequences_none_means_all_and_empty_means_none():
    assert gate(enabled_sequences=None) is None
    assert gate(enabled_sequences=[]) == "sequence_disabled"


def test_opt_out_is_per_sequence():
    assert gate(opted_out=[]) is None
    assert gate(opted_out=["deal_risk_scan"]) is None
    assert gate(opted_out=["deal_risk_scan"], event_type="deal_risk_scan") == "user_opted_out"


# --------------------------------------------------------------------------- default keys


def key_for(event_type, payload, tz="UTC", now=NOW, **env):
    event, parsed = validate_event(envelope(type=event_type, payload=payload, **env))
    return default_idempotency_key(event, parsed, now, tz)


@pytest.mark.usefixtures("real_payloads")
class TestDefaultKeys:
    def test_meeting_ended(self):
        assert key_for("meeting_ended", {"meeting_id": str(MEETING)}) == f"meeting_ended:{MEETING}"

    def test_pre_meeting(self):
        got = key_for("pre_meeting_90min", {"calendar_event_id": str(CAL_EVENT)})
        assert got == f"pre_meeting:{CAL_EVENT}:{USER}"

    def test_email_by_gmail_message_id(self):
        assert key_for("email_received", {"message_id": "18c2f0a9d3e4b5c6", "email_id": str(EMAIL)}) == (
            "email:18c2f0a9d3e4b5c6"
        )
        assert key_for("email_received", {"email_id": str(EMAIL)}) == f"email:{EMAIL}"

    def test_email_from_a_campaign_reply(self):
        payload = {"from_email": "lead@acme.test", "body": "Interested", "campaign_reply_id": str(REPLY)}
        assert key_for("email_received", payload) == f"email:reply:{REPLY}"

    @pytest.mark.parametrize("event_type", ["proposal_generation", "calendar_find_times"])
    @pytest.mark.parametrize("index", [0, 3])
    def test_chain_keys(self, event_type, index):
        got = key_for(
            event_type, VALID_PAYLOADS[event_type], source="chain", parent_job_id=str(PARENT), depth=1, item_index=index
        )
        assert got == f"{event_type}:{PARENT}:{index}"

    def test_coaching_weekly_uses_the_users_week(self):
        monday_1am_berlin = datetime(2026, 5, 31, 23, 0, tzinfo=UTC)  # Monday 1 June 01:00 CEST
        berlin = key_for("coaching_weekly", {}, "Europe/Berlin", monday_1am_berlin)
        assert berlin == f"coaching_weekly:{USER}:2026-W23"
        assert key_for("coaching_weekly", {}, "UTC", monday_1am_berlin) == f"coaching_weekly:{USER}:2026-W22"
        assert key_for("coaching_weekly", {}, None, monday_1am_berlin) == f"coaching_weekly:{USER}:2026-W22"

    def test_coaching_weekly_uses_the_iso_year(self):
        new_years_day = datetime(2027, 1, 1, 12, 0, tzinfo=UTC)  # a Friday in ISO week 2026-W53
        assert key_for("coaching_weekly", {}, "UTC", new_years_day) == f"coaching_weekly:{USER}:2026-W53"

    def test_coaching_weekly_explicit_week(self):
        assert key_for("coaching_weekly", {"week": "2026-W05"}) == f"coaching_weekly:{USER}:2026-W05"

    def test_campaign_daily_check_uses_the_local_date(self):
        assert key_for("campaign_daily_check", {}, "Asia/Kolkata") == f"campaign_daily_check:{ORG}:2026-03-16"
        assert key_for("campaign_daily_check", {}, "America/New_York") == f"campaign_daily_check:{ORG}:2026-03-15"
        got = key_for("campaign_daily_check", {"date": "2026-01-02"}, "Asia/Kolkata")
        assert got == f"campaign_daily_check:{ORG}:2026-01-02"

    def test_deal_risk_scan(self):
        assert key_for("deal_risk_scan", {}, "Asia/Kolkata", user_id=...) == f"deal_risk_scan:{ORG}:2026-03-16"
        assert key_for("deal_risk_scan", {}, "UTC") == f"deal_risk_scan:{ORG}:2026-03-15"
        assert key_for("deal_risk_scan", {"date": "2026-02-01"}) == f"deal_risk_scan:{ORG}:2026-02-01"

    def test_stale_deal_revival(self):
        assert key_for("stale_deal_revival", {"deal_id": str(DEAL)}) == f"stale_deal_revival:{DEAL}:2026-W11"
        # already Monday of the next week in Kolkata
        got = key_for("stale_deal_revival", {"deal_id": str(DEAL)}, "Asia/Kolkata")
        assert got == f"stale_deal_revival:{DEAL}:2026-W12"

    def test_bad_time_zone_falls_back_to_utc(self):
        assert key_for("deal_risk_scan", {}, "Mars/Base") == f"deal_risk_scan:{ORG}:2026-03-15"

    @pytest.mark.parametrize(
        ("event_type", "payload", "env"),
        [
            ("proposal_generation", {"deal_id": str(DEAL)}, {"source": "api"}),
            ("calendar_find_times", {"scheduling_text": "tomorrow"}, {"source": "cli"}),
            ("email_received", {"from_email": "a@b.co", "body": "hi"}, {"source": "slack:action"}),
            # a parent without an item index is not a chain key
            ("proposal_generation", {"deal_id": str(DEAL)}, {"source": "chain", "parent_job_id": str(PARENT)}),
        ],
    )
    def test_explicit_firing_without_a_default_gets_a_unique_key(self, event_type, payload, env):
        first = key_for(event_type, payload, **env)
        second = key_for(event_type, payload, **env)
        assert first != second
        prefix = f"{event_type}:{env['source']}:"
        assert first.startswith(prefix)
        uuid.UUID(first[len(prefix) :])

    def test_every_message_id_the_schema_accepts_gives_a_key_that_fits_the_column(self):
        accepted = []
        for length in range(250, 320):
            try:
                key = key_for("email_received", {"message_id": "m" * length, "email_id": str(EMAIL)})
            except InvalidEvent:
                break
            accepted.append(length)
            assert len(key) <= 300, f"a {length}-char message id makes a {len(key)}-char key"
        assert accepted, "no message id length accepted at all"
        assert accepted[-1] < 319, "message_id has no length limit"
