"""An org's stored modes: dry-run (sends recorded, Slack kept in the console inbox) and who set it;
and its retention (how many days content is kept before worker/ops/retention.py purges it).

A seeded demo org starts in dry-run so that a fleet started on the demo data never messages a real
person; an admin turns it live with `proactive org live`. The mode is read when an event is accepted
and stored on the job (`sequence_jobs.dry_run`): a job finishes in the mode it started in.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select, update

from worker import audit
from worker.db import transaction
from worker.models import Org

# The orgs.settings key holding the stored dry-run mode (JSON true/false; absent = live).
DRY_RUN_KEY = "dry_run"
# The orgs.settings key holding how many days content is kept (worker/ops/retention.py), and its bounds.
RETENTION_KEY = "retention_days"
RETENTION_DEFAULT_DAYS = 90
RETENTION_MIN_DAYS = 7
RETENTION_MAX_DAYS = 3650


def org_dry_run(settings: Mapping[str, Any] | None) -> bool:
    """True when the org's stored settings put it in dry-run (only a JSON `true` does)."""
    return settings is not None and settings.get(DRY_RUN_KEY) is True


def check_retention_days(value: Any) -> int:
    """A valid retention in days (a whole number from 7 to 3650), or ValueError saying what is wrong."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValueError(
            f"retention_days must be a whole number of days from {RETENTION_MIN_DAYS} to {RETENTION_MAX_DAYS}, "
            f"not {value!r}"
        )
    if not RETENTION_MIN_DAYS <= value <= RETENTION_MAX_DAYS:
        raise ValueError(f"retention_days must be from {RETENTION_MIN_DAYS} to {RETENTION_MAX_DAYS} days, not {value}")
    return value


def org_retention_days(settings: Mapping[str, Any] | None) -> tuple[int, str | None]:
    """The org's retention in days and, when its stored value is unreadable, the problem (the default,
    90 days, is used then: a bad setting never purges more than the default would)."""
    if settings is None or settings.get(RETENTION_KEY) is None:
        return RETENTION_DEFAULT_DAYS, None
    try:
        return check_retention_days(settings[RETENTION_KEY]), None
    except ValueError as err:
        return RETENTION_DEFAULT_DAYS, f"{err}; using {RETENTION_DEFAULT_DAYS}"


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
    retention_days: int = RETENTION_DEFAULT_DAYS

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return {
            "org_id": str(self.org_id),
            "name": self.name,
            "enabled": self.enabled,
            "dry_run": self.dry_run,
            "retention_days": self.retention_days,
        }


def org_mode(org_id: uuid.UUID) -> OrgMode:
    """The org's name, enabled flag, dry-run mode and retention."""
    with transaction() as conn:
        row = conn.execute(select(Org.id, Org.name, Org.enabled, Org.settings).where(Org.id == org_id)).one()
    days, _problem = org_retention_days(row.settings)
    return OrgMode(row.id, row.name, bool(row.enabled), org_dry_run(row.settings), days)


def set_dry_run(org_id: uuid.UUID, on: bool, *, actor: str) -> bool:
    """Store the org's dry-run mode (audited); returns whether it changed. Jobs already accepted keep
    the mode they started with."""
    action = "org.dry_run_on" if on else "org.dry_run_off"
    return _set_setting(org_id, DRY_RUN_KEY, on, action=action, actor=actor, changed=lambda s: org_dry_run(s) != on)


def set_retention_days(org_id: uuid.UUID, days: int, *, actor: str) -> bool:
    """Store how many days the org's content is kept (validated, audited with the old and new value);
    returns whether it changed. The next purge (daily, or `proactive purge`) applies it."""
    days = check_retention_days(days)
    return _set_setting(
        org_id, RETENTION_KEY, days, action="org.retention", actor=actor, audit_values=True,
        changed=lambda s: s.get(RETENTION_KEY) != days,
    )  # fmt: skip


def _set_setting(
    org_id: uuid.UUID,
    key: str,
    value: Any,
    *,
    action: str,
    actor: str,
    changed: Callable[[dict[str, Any]], bool],
    audit_values: bool = False,
) -> bool:
    """Set one key of the org's settings under a row lock, audited as `action` (with the old and new
    value when `audit_values`); nothing is written when `changed(settings)` says it would not change."""
    with transaction() as conn:
        settings = conn.execute(select(Org.settings).where(Org.id == org_id).with_for_update()).scalar_one()
        settings = dict(settings or {})
        if not changed(settings):
            return False
        before = settings.get(key)
        settings[key] = value
        conn.execute(update(Org).where(Org.id == org_id).values(settings=settings))
        audit.record(
            conn,
            org_id,
            action=action,
            target_type="org",
            target_id=str(org_id),
            actor=actor,
            data={"before": before, "after": value} if audit_values else None,
        )
    return True
