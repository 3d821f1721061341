"""The Beat schedule: what runs when (UTC). Run with `proactive beat` (or the Procfile's `beat`).

Local times are not in the schedule: each tick works out whose local time falls in its slot
(worker/crons/tasks.py, worker/crons/slots.py). Every cron task claims a `cron_runs` slot row first (the
sweeper only makes conditional changes), so a second Beat process or a retried tick does no
double work. PROACTIVE_BEAT_TICK_S > 0 makes every entry tick that often instead (tests, demos).
"""

from __future__ import annotations

from typing import Any

from celery.schedules import crontab, schedule

from worker.celery_app import celery_app
from worker.config import get_settings

# How often the sweeper runs (seconds): lost publishes and expired leases are repaired this fast.
SWEEP_EVERY_S = 60.0
# How often settled jobs are folded into the metrics roll-up (seconds).
ROLLUP_EVERY_S = 60.0

# name -> (task, UTC schedule)
ENTRIES: dict[str, tuple[str, Any]] = {
    "morning-brief": ("proactive.cron.morning_brief", crontab(minute="*/15")),
    "meeting-prep": ("proactive.cron.meeting_prep", crontab(minute="0,30")),
    "stale-deals": ("proactive.cron.stale_deals", crontab(minute=5)),  # hourly; each org at its local hour
    "gmail-watch-renewal": ("proactive.cron.gmail_watch", crontab(hour=3, minute=17)),
    "sweeper": ("proactive.sweep", schedule(SWEEP_EVERY_S)),
    # settled jobs folded into metrics_rollups (worker/metrics/rollup.py)
    "metrics-rollup": ("proactive.metrics_rollup", schedule(ROLLUP_EVERY_S)),
    # content past each org's retention purged, old log rows deleted, in batches (worker/ops/retention.py)
    "retention": ("proactive.retention", crontab(hour=3, minute=41)),
}


def beat_schedule(tick_s: float = 0.0) -> dict[str, dict[str, Any]]:
    """Celery's `beat_schedule` setting; with `tick_s` > 0 every entry runs every `tick_s` seconds."""
    return {
        name: {"task": task, "schedule": schedule(tick_s) if tick_s > 0 else when, "options": {"queue": "beat"}}
        for name, (task, when) in ENTRIES.items()
    }


BEAT_SCHEDULE = beat_schedule(get_settings().beat_tick_s)
celery_app.conf.beat_schedule = BEAT_SCHEDULE
app = celery_app
