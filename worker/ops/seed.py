"""A believable demo org: reps in different time zones, companies, contacts, deals, activities.

Ids are derived from names (uuid5), so seeding twice changes nothing: `proactive seed --demo` and
`proactive demo` can be run again and again. Dates are relative to "now" so the data always looks
fresh (a deal silent for 20 days is silent for 20 days whenever you run it).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal

from sqlalchemy.orm import Session

from worker.db import session_factory
from worker.integrations import IntegrationStatus
from worker.models import (
    Activity,
    CalendarEvent,
    Campaign,
    CampaignReply,
    Company,
    Contact,
    Deal,
    Email,
    Integration,
    Meeting,
    Org,
    Task,
    User,
    utcnow,
)
from worker.ops import seed_content as content
from worker.orgs import DRY_RUN_KEY

NAMESPACE = uuid.UUID("6f1c1d0e-57a1-4c5e-9b0a-2f3c9a7d1e42")
DEMO_ORG_NAME = "Northwind Demo"


def demo_id(*parts: str) -> uuid.UUID:
    """A stable id for a demo record named by `parts`."""
    return uuid.uuid5(NAMESPACE, "/".join(parts))


@dataclass(frozen=True)
class SeedResult:
    org_id: uuid.UUID
    users: dict[str, uuid.UUID]
    created: bool


REPS = (
    # key, name, email, role, time zone, briefing time
    ("alice", "Alice Moreau", "alice@northwind.example", "member", "America/New_York", "08:00"),
    ("bruno", "Bruno Keller", "bruno@northwind.example", "member", "Europe/Berlin", "07:45"),
    ("maya", "Maya Chen", "maya@northwind.example", "admin", "America/Los_Angeles", "08:30"),
)

COMPANIES = (
    # key, name, domain, industry, employees
    ("globex", "Globex Logistics", "globex.example", "logistics", 1200),
    ("initech", "Initech Software", "initech.example", "software", 340),
    ("umbrella", "Umbrella Health", "umbrella-health.example", "healthcare", 5400),
    ("hooli", "Hooli Retail", "hooli.example", "retail", 800),
    ("vandelay", "Vandelay Imports", "vandelay.example", "manufacturing", 150),
    ("stark", "Stark Energy", "stark-energy.example", "energy", 9000),
    ("wayne", "Wayne Foods", "waynefoods.example", "food", 2100),
    ("tyrell", "Tyrell Robotics", "tyrell.example", "robotics", 610),
    ("soylent", "Soylent Labs", "soylent.example", "biotech", 95),
    ("cyberdyne", "Cyberdyne Security", "cyberdyne.example", "security", 430),
    ("oscorp", "Oscorp Materials", "oscorp.example", "chemicals", 2600),
)

CONTACTS = (
    # company key, name, email local part, title
    ("globex", "Hank Scorpio", "hank", "COO"),
    ("globex", "Lena Ortiz", "lena", "Head of Ops"),
    ("initech", "Bill Lumbergh", "bill", "VP Engineering"),
    ("initech", "Joanna Park", "joanna", "IT Manager"),
    ("umbrella", "Alexia Ashford", "alexia", "CIO"),
    ("hooli", "Gavin Belson", "gavin", "CEO"),
    ("hooli", "Monica Hall", "monica", "Procurement"),
    ("vandelay", "Art Vandelay", "art", "Owner"),
    ("stark", "Pepper Potts", "pepper", "CEO"),
    ("stark", "Happy Hogan", "happy", "Security Lead"),
    ("wayne", "Lucius Fox", "lucius", "CTO"),
    ("tyrell", "Eldon Tyrell", "eldon", "Founder"),
    ("soylent", "Sol Roth", "sol", "Research Director"),
    ("cyberdyne", "Miles Dyson", "miles", "Director of R&D"),
    ("oscorp", "Norman Osborn", "norman", "CEO"),
)

DEALS = (
    # key, company, owner, stage, value, close in days, days since activity, primary contact,
    # how many of the four history touches it had (emails, a meeting)
    ("globex-fleet", "globex", "alice", "negotiation", 84000, 5, 16, "hank", 2),
    ("initech-platform", "initech", "alice", "proposal", 42000, -3, 9, "bill", 4),
    ("umbrella-pilot", "umbrella", "bruno", "discovery", 18000, 6, 2, "alexia", 4),
    ("hooli-rollout", "hooli", "bruno", "demo", 125000, 40, 21, "gavin", 0),
    ("vandelay-starter", "vandelay", "alice", "qualification", 6500, 30, 1, "art", 4),
    ("stark-grid", "stark", "bruno", "negotiation", 210000, 12, 3, "pepper", 4),
    ("wayne-analytics", "wayne", "alice", "prospecting", 9000, 60, 12, "lucius", 3),
    ("tyrell-vision", "tyrell", "maya", "proposal", 56000, -1, 15, "eldon", 1),
    ("soylent-lab", "soylent", "bruno", "closed_won", 23000, -20, 25, "sol", 4),
    ("cyberdyne-soc", "cyberdyne", "alice", "closed_lost", 31000, -45, 50, "miles", 4),
    ("oscorp-expansion", "oscorp", "maya", "discovery", 72000, 25, 30, "norman", 4),
)


DEAL_NAMES = {
    "globex-fleet": "Fleet telematics, 40 depots",
    "initech-platform": "Platform licence renewal",
    "umbrella-pilot": "Clinical scheduling pilot",
    "hooli-rollout": "Store rollout, phase 1",
    "vandelay-starter": "Starter plan",
    "stark-grid": "Grid analytics enterprise",
    "wayne-analytics": "Supply analytics",
    "tyrell-vision": "Vision QA line 2",
    "soylent-lab": "Lab notebook seats",
    "cyberdyne-soc": "SOC tooling",
    "oscorp-expansion": "Plant expansion",
}


def _get_or_add(session: Session, model: type, obj_id: uuid.UUID, **values: object) -> bool:
    if session.get(model, obj_id) is not None:
        return False
    session.add(model(id=obj_id, **values))
    return True


def seed_demo(now: datetime | None = None) -> SeedResult:
    """Create the demo org and its CRM data if missing; returns its ids. A new demo org is in dry-run
    (nothing it does reaches a real person) until an admin runs `proactive org live`."""
    now = now or utcnow()
    org_id = demo_id("org")
    users = {key: demo_id("user", key) for key, *_ in REPS}
    with session_factory().begin() as session:
        created = _get_or_add(
            session,
            Org,
            org_id,
            name=DEMO_ORG_NAME,
            timezone="America/New_York",
            enabled=True,
            slack_team_id="T0DEMO0001",
            settings={"days_inactive": 7, "stale_deal_hour": 9, DRY_RUN_KEY: True},
        )
        org = session.get(Org, org_id)
        if org is not None and DRY_RUN_KEY not in (org.settings or {}):  # seeded before the mode existed
            org.settings = {**(org.settings or {}), DRY_RUN_KEY: True}  # an admin's `org live` (False) stays
        session.flush()
        for key, name, email, role, tz, brief in REPS:
            _get_or_add(
                session,
                User,
                users[key],
                org_id=org_id,
                name=name,
                email=email,
                role=role,
                timezone=tz,
                briefing_time=brief,
                slack_user_id=f"U0{key.upper()[:6]}",
                opted_out_sequences=[],
                quiet_hours={"start": "20:00", "end": "07:00"},
                max_notifications_per_hour=10,
            )
        for key, name, domain, industry, employees in COMPANIES:
            _get_or_add(
                session,
                Company,
                demo_id("company", key),
                org_id=org_id,
                name=name,
                domain=domain,
                industry=industry,
                employees=employees,
            )
        session.flush()
        for company, name, local, title in CONTACTS:
            domain = next(c[2] for c in COMPANIES if c[0] == company)
            _get_or_add(
                session,
                Contact,
                demo_id("contact", local),
                org_id=org_id,
                company_id=demo_id("company", company),
                name=name,
                email=f"{local}@{domain}",
                title=title,
            )
        session.flush()
        for key, company, owner, stage, value, close_in, silent, contact, touches in DEALS:
            deal_id = demo_id("deal", key)
            added = _get_or_add(
                session,
                Deal,
                deal_id,
                org_id=org_id,
                company_id=demo_id("company", company),
                name=DEAL_NAMES.get(key, key.replace("-", " ").title()),
                stage=stage,
                value=Decimal(value),
                currency="USD",
                owner_id=users[owner],
                primary_contact_id=demo_id("contact", contact),
                close_date=(now + timedelta(days=close_in)).date(),
                last_activity_at=now - timedelta(days=silent),
                stage_changed_at=now - timedelta(days=silent + 10),
                created_at=now - timedelta(days=90),
                lost_reason="went with a competitor" if stage == "closed_lost" else None,
            )
            if added:
                session.flush()
                _activities(session, org_id, deal_id, company, contact, users[owner], silent, touches, now)
        session.flush()
        _meetings_and_calendar(session, org_id, users, now)
        _emails(session, org_id, users, now)
        _campaigns(session, org_id, users, now)
        _tasks(session, org_id, users, now)
    return SeedResult(org_id, users, created)


def _put(session: Session, model: type, obj_id: uuid.UUID, fresh: dict[str, object], **values: object) -> None:
    """Insert the row, or refresh its time-relative columns `fresh` (so the demo always looks current)."""
    row = session.get(model, obj_id)
    if row is None:
        session.add(model(id=obj_id, **values, **fresh))
    else:
        for key, value in fresh.items():
            setattr(row, key, value)


def _attendees(users: dict[str, uuid.UUID], owner: str, contact_keys: tuple[str, ...]) -> list[dict[str, object]]:
    rep = next(r for r in REPS if r[0] == owner)
    people: list[dict[str, object]] = [{"name": rep[1], "email": rep[2], "internal": True}]
    for key in contact_keys:
        company, name, local, title = next(c for c in CONTACTS if c[2] == key)
        domain = next(c[2] for c in COMPANIES if c[0] == company)
        people.append({"name": name, "email": f"{local}@{domain}", "title": title, "internal": False})
    return people


def _meetings_and_calendar(session: Session, org_id: uuid.UUID, users: dict[str, uuid.UUID], now: datetime) -> None:
    """Recorded meetings (multi-speaker transcripts) and upcoming calendar events, relative to now."""
    for key, owner, deal, contacts, title, ended_h, minutes, transcript in content.MEETINGS:
        attendees = _attendees(users, owner, contacts)
        if key == "team-standup":
            attendees += [{"name": r[1], "email": r[2], "internal": True} for r in REPS if r[0] != owner]
        end = now - timedelta(hours=ended_h)
        deal_id = demo_id("deal", deal) if deal else None
        company_id = next((demo_id("company", d[1]) for d in DEALS if d[0] == deal), None)
        _put(
            session,
            Meeting,
            demo_id("meeting", key),
            {"start_at": end - timedelta(minutes=minutes), "end_at": end},
            org_id=org_id,
            user_id=users[owner],
            deal_id=deal_id,
            company_id=company_id,
            external_id=f"rec-{key}",
            title=title,
            attendees=attendees,
            attendees_count=len(attendees),
            transcript=transcript or None,
        )
    for key, owner, deal, contacts, title, starts_min, minutes in content.CALENDAR:
        attendees = _attendees(users, owner, contacts)
        start = now + timedelta(minutes=starts_min)
        _put(
            session,
            CalendarEvent,
            demo_id("event", key),
            {"start_at": start, "end_at": start + timedelta(minutes=minutes)},
            org_id=org_id,
            user_id=users[owner],
            deal_id=demo_id("deal", deal) if deal else None,
            external_id=f"gcal-{key}",
            title=title,
            attendees=attendees,
            attendees_count=len(attendees),
        )


def _emails(session: Session, org_id: uuid.UUID, users: dict[str, uuid.UUID], now: datetime) -> None:
    """Inbound emails waiting to be handled (a question, a booking request, an out-of-office, a lead)."""
    for key, owner, contact, sender, subject, body, hours in content.EMAILS:
        rep = next(r for r in REPS if r[0] == owner)
        from_addr = sender.split("<")[-1].rstrip(">")
        _put(
            session,
            Email,
            demo_id("email", key),
            {"received_at": now - timedelta(hours=hours)},
            org_id=org_id,
            user_id=users[owner],
            contact_id=demo_id("contact", contact) if contact else None,
            message_id=f"msg-{key}",
            thread_id=f"thread-{key}",
            rfc822_message_id=f"<{key}@mail.example>",
            from_addr=from_addr,
            to_addrs=[rep[2]],
            subject=subject,
            snippet=body[:200],
            body=body,
        )


def _campaigns(session: Session, org_id: uuid.UUID, users: dict[str, uuid.UUID], now: datetime) -> None:
    """An Instantly integration, its campaigns' last known analytics, and their replies."""
    _put(
        session,
        Integration,
        demo_id("integration", "instantly"),
        {},
        org_id=org_id,
        user_id=None,
        provider="instantly",
        account="Northwind (Instantly)",
        status=IntegrationStatus.ACTIVE,
        scopes=[],
    )
    for key, owner, name, sent, opened, replied, bounced in content.CAMPAIGNS:
        _put(
            session,
            Campaign,
            demo_id("campaign", key),
            {},
            org_id=org_id,
            owner_id=users[owner],
            external_id=f"inst-{key}",
            name=name,
            status="active",
            metrics={"sent": sent, "opened": opened, "replied": replied, "bounced": bounced},
        )
    session.flush()
    for key, campaign, _from_name, from_email, subject, body, hours in content.CAMPAIGN_REPLIES:
        _put(
            session,
            CampaignReply,
            demo_id("reply", key),
            {"received_at": now - timedelta(hours=hours)},
            org_id=org_id,
            campaign_id=demo_id("campaign", campaign),
            external_id=f"inst-{key}",
            from_email=from_email,
            subject=subject,
            body=body,
            status="open",
        )


def _tasks(session: Session, org_id: uuid.UUID, users: dict[str, uuid.UUID], now: datetime) -> None:
    for i, (owner, title, due_h, deal) in enumerate(content.TASKS):
        _put(
            session,
            Task,
            demo_id("task", str(i)),
            {"due_at": now + timedelta(hours=due_h)},
            org_id=org_id,
            user_id=users[owner],
            deal_id=demo_id("deal", deal),
            title=title,
            status="open",
        )


def _activities(
    session: Session,
    org_id: uuid.UUID,
    deal_id: uuid.UUID,
    company: str,
    contact: str,
    owner: uuid.UUID,
    silent_days: int,
    touches: int,
    now: datetime,
) -> None:
    """A little history per deal: the last `touches` of emails and a meeting before it went quiet."""
    contact_id = demo_id("contact", contact)
    company_id = demo_id("company", company)
    history = [
        ("email", "outbound", "Intro and next steps"),
        ("email", "inbound", "Re: Intro and next steps"),
        ("meeting", None, "Discovery call"),
        ("email", "outbound", "Follow-up: pricing"),
    ]
    history = history[len(history) - touches :] if touches else []
    for i, (kind, direction, subject) in enumerate(history):
        when = now - timedelta(days=silent_days + 3 * (len(history) - i - 1))
        session.add(
            Activity(
                id=demo_id("activity", str(deal_id), str(i)),
                org_id=org_id,
                deal_id=deal_id,
                contact_id=contact_id,
                company_id=company_id,
                user_id=owner,
                kind=kind,
                direction=direction,
                subject=subject,
                occurred_at=when,
            )
        )
