"""The Beat schedule: what runs when (UTC). Run with `proactive beat`.

Every cron task writes a `cron_runs` slot row (or, for the sweeper, only makes conditional
changes), so a second Beat process or a retried tick does no double work.
"""

from __future__ import annotations

from celery.schedules import schedule

from worker.celery_app import celery_app

# How often the sweeper runs (seconds): lost publishes and expired leases are repaired this fast.
SWEEP_EVERY_S = 60.0

BEAT_SCHEDULE = {
    "sweeper": {"task": "proactive.sweep", "schedule": schedule(SWEEP_EVERY_S), "options": {"queue": "beat"}},
}

celery_app.conf.beat_schedule = BEAT_SCHEDULE
app = celery_app
