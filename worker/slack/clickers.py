"""Who clicked: the Proactive user behind a Slack (team, user), remembered for a few seconds so a
burst of clicks costs one read. Every lookup of a click is scoped by the org found here."""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from sqlalchemy import select

from worker.db import transaction
from worker.memo import ShortMemory
from worker.models import Org, User

users, orgs = User.__table__, Org.__table__


@dataclass(frozen=True)
class Clicker:
    """The Proactive user behind a Slack user in a workspace."""

    org_id: uuid.UUID
    user_id: uuid.UUID
    name: str
    role: str


# (team, Slack user) -> the clicker. A role or membership change shows within CLICKER_MEMORY_S;
# every decision re-reads its user anyway.
CLICKER_MEMORY_S = 5.0
_clickers: ShortMemory[tuple[str, str], Clicker] = ShortMemory(CLICKER_MEMORY_S)


def resolve(team_id: str | None, slack_user_id: str | None) -> tuple[uuid.UUID | None, Clicker | None]:
    """(org id, user) for a Slack (team, user); the org alone when only the team is known."""
    if not team_id or not slack_user_id:
        return None, None
    known = _clickers.get((team_id, slack_user_id))
    if known is not None:
        return known.org_id, known
    with transaction() as conn:
        row = conn.execute(
            select(orgs.c.id.label("org_id"), users.c.id.label("user_id"), users.c.name, users.c.email, users.c.role)
            .select_from(
                orgs.outerjoin(users, (users.c.org_id == orgs.c.id) & (users.c.slack_user_id == slack_user_id[:32]))
            )
            .where(orgs.c.slack_team_id == team_id[:32])
        ).first()
    if row is None:
        return None, None
    if row.user_id is None:
        return row.org_id, None
    clicker = Clicker(row.org_id, row.user_id, row.name or row.email, row.role)
    _clickers.put((team_id, slack_user_id), clicker)
    return row.org_id, clicker


def forget_clickers() -> None:
    """Drop this process's memory of Slack users: a test hook, for tests that seed users in another
    database (or change them) while an earlier test's clicks may still be remembered."""
    _clickers.forget()
