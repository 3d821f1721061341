"""Which failures wait for a reconnect instead of failing the job (worker/engine/executor.py `_parks`)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from worker.engine.executor import REVOKED_GIVE_UP, _parks
from worker.errors import AuthRevoked, PermanentError

NOW = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)


def test_revoked_google_credentials_park_a_young_job() -> None:
    assert _parks(AuthRevoked("invalid_grant", provider="google"), {"created_at": NOW - timedelta(hours=5)}, NOW)


def test_a_job_waiting_longer_than_the_give_up_fails_instead() -> None:
    old = {"created_at": NOW - REVOKED_GIVE_UP - timedelta(seconds=1)}
    assert not _parks(AuthRevoked("invalid_grant", provider="google"), old, NOW)


def test_other_providers_and_other_errors_do_not_park() -> None:
    young = {"created_at": NOW}
    assert not _parks(AuthRevoked("revoked key", provider="instantly"), young, NOW)
    assert not _parks(PermanentError("bad data"), young, NOW)
