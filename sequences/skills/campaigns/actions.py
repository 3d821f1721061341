"""The campaign report's buttons (`camp_*`, docs/sequences.md): what a click on a reply or a
campaign does. Registered with worker/slack/action_registry.py when this module is imported (the
campaign sequence, sequences/campaign_daily_check.py, imports it), so worker/slack/route.py hands
these clicks here once it knows the clicker.

The button's value is a reply id, or a campaign id for `CAMPAIGN_VERBS`; every lookup is scoped by
the clicker's org, and only the campaign's owner or an org admin may act.
"""

from __future__ import annotations

import uuid

from sqlalchemy import Connection, Row, select, update

import blocks
from worker.audit import record
from worker.db import transaction
from worker.engine.events import fire_event
from worker.engine.jobstore import insert_ignoring_conflicts
from worker.errors import InvalidEvent
from worker.models import Campaign, CampaignReply, NurtureEntry, of_org, utcnow
from worker.slack.action_registry import register_action
from worker.slack.answers import EPHEMERAL_TEXT_MAX, NOT_FOUND, NOT_YOURS, SOURCE, answer, refuse
from worker.slack.clickers import Clicker
from worker.slack.clicks import ActionRef, Click, ClickOutcome, Out, as_uuid

replies, campaigns, nurture = CampaignReply.__table__, Campaign.__table__, NurtureEntry.__table__

REPLY_VERBS = frozenset({"draft_response", "view_thread", "mark_closed", "add_nurture"})  # value = reply id
CAMPAIGN_VERBS = frozenset({"apply_suggestion", "keep_testing"})  # value = campaign id


def _may_act(clicker: Clicker, owner_id: uuid.UUID | None) -> bool:
    """A campaign's owner or an org admin (reports of unowned campaigns go to admins)."""
    return clicker.role == "admin" or (owner_id is not None and owner_id == clicker.user_id)


def campaign_click(click: Click, ref: ActionRef, clicker: Clicker) -> ClickOutcome:
    """`camp_*`: act on the reply (or campaign) named by the button's value, in the clicker's org."""
    target = as_uuid(click.value)
    if target is None:
        return refuse(
            click,
            Out.NOT_FOUND,
            f"{click.action_id}: {click.value[:100]!r} is not an id",
            "NotFound",
            NOT_FOUND,
            clicker.org_id,
        )
    if ref.verb in CAMPAIGN_VERBS:
        return _campaign_choice(click, ref, clicker, target)
    with transaction() as conn:
        reply = conn.execute(
            select(replies, campaigns.c.owner_id)
            .join(campaigns, campaigns.c.id == replies.c.campaign_id)
            .where(
                replies.c.id == target, of_org(replies.c.org_id, clicker.org_id), campaigns.c.org_id == clicker.org_id
            )
        ).first()
        allowed = reply is not None and _may_act(clicker, reply.owner_id)
        text = _reply_action(conn, ref.verb, reply, clicker) if allowed else ""
    if reply is None:
        return refuse(
            click, Out.NOT_FOUND, f"{click.action_id}: reply {target} not found", "NotFound", NOT_FOUND, clicker.org_id
        )
    if not allowed:
        return refuse(
            click,
            Out.NOT_YOURS,
            f"{click.action_id}: not the owner of reply {target}'s campaign",
            "NotAuthorized",
            NOT_YOURS,
            clicker.org_id,
        )
    if ref.verb == "draft_response":
        text = _draft_response(reply, clicker)
    answer(click, text)
    return Out.DONE


def _reply_action(conn: Connection, verb: str, reply: Row, clicker: Clicker) -> str:
    """The database side of a reply button, in the caller's transaction; returns the answer."""
    who = reply.from_email
    if verb == "view_thread":
        subject = reply.subject or "(no subject)"
        body = (reply.body or "(no text)").strip()
        return f"*{blocks.escape(subject)}* from {blocks.escape(who)}\n>>> {blocks.escape(body)}"[:EPHEMERAL_TEXT_MAX]
    if verb == "mark_closed":
        _set_reply_status(conn, reply, "closed")
        record(
            conn,
            clicker.org_id,
            actor=SOURCE,
            actor_user_id=clicker.user_id,
            action="campaign_reply.close",
            target_type="campaign_reply",
            target_id=str(reply.id),
        )
        return f":white_check_mark: Marked the reply from {blocks.escape(who)} as closed."
    if verb == "add_nurture":
        added = _add_nurture(conn, reply, clicker)
        _set_reply_status(conn, reply, "nurture")
        record(
            conn,
            clicker.org_id,
            actor=SOURCE,
            actor_user_id=clicker.user_id,
            action="campaign_reply.nurture",
            target_type="campaign_reply",
            target_id=str(reply.id),
            data={"added": added},
        )
        return (
            f":seedling: Added {blocks.escape(who)} to the nurture queue."
            if added
            else f":seedling: {blocks.escape(who)} is already in the nurture queue."
        )
    return ""  # draft_response: fired after this transaction


def _set_reply_status(conn: Connection, reply: Row, status: str) -> None:
    conn.execute(
        update(replies).where(replies.c.id == reply.id, of_org(replies.c.org_id, reply.org_id)).values(status=status)
    )


def _add_nurture(conn: Connection, reply: Row, clicker: Clicker) -> bool:
    """One nurture_queue row per contact (or address when the reply has no contact); True when added."""
    if reply.contact_id is None:
        exists = conn.execute(
            select(nurture.c.id).where(nurture.c.org_id == reply.org_id, nurture.c.email == reply.from_email)
        ).first()
        if exists is not None:
            return False
    row = conn.execute(
        insert_ignoring_conflicts(conn, nurture, ["org_id", "contact_id"])
        .values(
            id=uuid.uuid4(),
            org_id=reply.org_id,
            contact_id=reply.contact_id,
            email=reply.from_email,
            campaign_id=reply.campaign_id,
            reason=f"campaign reply ({reply.classification or 'unclassified'})"[:200],
            added_by=clicker.user_id,
            created_at=utcnow(),
        )
        .returning(nurture.c.id)
    ).first()
    return row is not None


def _draft_response(reply: Row, clicker: Clicker) -> str:
    """Fire `email_received` with the reply's content (the rep reviews the drafted answer)."""
    try:
        result = fire_event(
            {
                "type": "email_received",
                "source": SOURCE,
                "org_id": str(clicker.org_id),
                "user_id": str(clicker.user_id),
                "payload": {
                    "from_email": reply.from_email,
                    "subject": reply.subject or "",
                    "body": reply.body or reply.subject or "(no text)",
                    "campaign_reply_id": str(reply.id),
                },
            }
        )
    except InvalidEvent as err:  # recorded by fire_event
        return f":warning: Could not draft a response: {err}"
    if result.duplicate:
        return f":information_source: A response to {blocks.escape(reply.from_email)} is already being drafted."
    with transaction() as conn:
        conn.execute(
            update(replies)
            .where(replies.c.id == reply.id, of_org(replies.c.org_id, reply.org_id), replies.c.status == "open")
            .values(status="drafted")
        )
        record(
            conn,
            clicker.org_id,
            actor=SOURCE,
            actor_user_id=clicker.user_id,
            action="campaign_reply.draft",
            target_type="campaign_reply",
            target_id=str(reply.id),
            data={"job_id": str(result.job_id)},
        )
    return f":pencil: Drafting a response to {blocks.escape(reply.from_email)}; it will come here for your review."


def _campaign_choice(click: Click, ref: ActionRef, clicker: Clicker, campaign_id: uuid.UUID) -> ClickOutcome:
    """Apply suggestion / Keep testing: an audit row and the choice kept in the campaign's metrics."""
    now = utcnow()
    with transaction() as conn:
        campaign = conn.execute(
            select(campaigns)
            .where(campaigns.c.id == campaign_id, of_org(campaigns.c.org_id, clicker.org_id))
            .with_for_update()
        ).first()
        allowed = campaign is not None and _may_act(clicker, campaign.owner_id)
        if allowed:
            metrics = dict(campaign.metrics or {})
            metrics["suggestion_decision"] = {"choice": ref.verb, "by": str(clicker.user_id), "at": now.isoformat()}
            conn.execute(
                update(campaigns)
                .where(campaigns.c.id == campaign_id, of_org(campaigns.c.org_id, clicker.org_id))
                .values(metrics=metrics)
            )
            record(
                conn,
                clicker.org_id,
                actor=SOURCE,
                actor_user_id=clicker.user_id,
                action=f"campaign.{ref.verb}",
                target_type="campaign",
                target_id=str(campaign_id),
            )
    if campaign is None:
        return refuse(
            click,
            Out.NOT_FOUND,
            f"{click.action_id}: campaign {campaign_id} not found",
            "NotFound",
            NOT_FOUND,
            clicker.org_id,
        )
    if not allowed:
        return refuse(
            click,
            Out.NOT_YOURS,
            f"{click.action_id}: not the owner of campaign {campaign_id}",
            "NotAuthorized",
            NOT_YOURS,
            clicker.org_id,
        )
    label = "apply the suggestion" if ref.verb == "apply_suggestion" else "keep testing"
    answer(click, f":ballot_box_with_check: Noted: {label} for *{blocks.escape(campaign.name)}*.")
    return Out.DONE


register_action("camp_", campaign_click, verbs=REPLY_VERBS | CAMPAIGN_VERBS)
