"""An org's stored modes: dry-run (sends recorded, Slack kept in the console inbox) and who set it.

A seeded demo org starts in dry-run so that a fleet started on the demo data never messages a real
person; an admin turns it live with `proactive org live`. The mode is read when an event is accepted
and stored on the job (`sequence_jobs.dry_run`): a job finishes in the mode it started in.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select, update

from worker import audit
from worker.db import transaction
from worker.models import Org

# The orgs.settings key holding the stored dry-run mode (JSON true/false; absent = live).
DRY_RUN_KEY = "dry_run"


def org_dry_run(settings: Mapping[str, Any] | None) -> bool:
    """True when the org's stored settings put it in dry-run (only a JSON `true` does)."""
    return settings is not None and settings.get(DRY_RUN_KEY) is True


def job_dry_run(*, process_dry_run: bool, source: str, org_settings: Mapping[str, Any] | None) -> bool:
    """Whether a job accepted now runs dry: the process setting, a smoke event, or the org's mode."""
    return process_dry_run or source == "smoke" or org_dry_run(org_settings)


@dataclass(frozen=True)
class OrgMode:
    """What `proactive org show` prints."""

    org_id: uuid.UUID
    name: str
    enabled: bool
    dry_run: bool

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return {"org_id": str(self.org_id), "name": self.name, "enabled": self.enabled, "dry_run": self.dry_run}


def org_mode(org_id: uuid.UUID) -> OrgMode:
    """The org's name, enabled flag and dry-run mode."""
    with transaction() as conn:
        row = conn.execute(select(Org.id, Org.name, Org.enabled, Org.settings).where(Org.id == org_id)).one()
    return OrgMode(row.id, row.name, bool(row.enabled), org_dry_run(row.settings))


def set_dry_run(org_id: uuid.UUID, on: bool, *, actor: str) -> bool:
    """Store the org's dry-run mode (audited); returns whether it changed. Jobs already accepted keep
    the mode they started with."""
    with transaction() as conn:
        settings = conn.execute(select(Org.settings).where(Org.id == org_id).with_for_update()).scalar_one()
        settings = dict(settings or {})
        if org_dry_run(settings) == on:
            return False
        settings[DRY_RUN_KEY] = on
        conn.execute(update(Org).where(Org.id == org_id).values(settings=settings))
        audit.record(
            conn,
            org_id,
            action="org.dry_run_on" if on else "org.dry_run_off",
            target_type="org",
            target_id=str(org_id),
            actor=actor,
        )
    return True
