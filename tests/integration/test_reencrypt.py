"""`proactive db reencrypt`, step 3 of an ENCRYPTION_KEYS rotation, on a fresh PostgreSQL database
and a fresh SQLite file: every stored credential ends under the new key (the old key can go), a row
no key decrypts stops the command with one line naming it, and unusable keys fail before any row."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner, Result
from sqlalchemy import select

from tests.conftest import _fresh_database
from tests.support.engine import make_org
from tests.support.google import connect as connect_integration
from worker import migrate
from worker.config import reset_settings
from worker.crypto import decrypt_json, encrypt_json, generate_key
from worker.db import reset_engine, transaction
from worker.models import Integration
from worker.ops.cli import main

OLD, NEW, STRANGER = generate_key(), generate_key(), generate_key()
integrations = Integration.__table__


@pytest.fixture(params=["postgres", "sqlite"])
def database(request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """A fresh, migrated database of this test's own (other tests' rows use other keys)."""
    if request.param == "postgres":
        request.applymarker(pytest.mark.postgres)
        with _fresh_database() as url:
            yield from _applied(url, monkeypatch)
    else:
        url = f"sqlite:///{tmp_path / 'keys.db'}"
        migrate.upgrade(url)
        yield from _applied(url, monkeypatch)


def _applied(url: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    monkeypatch.setenv("DATABASE_URL", url)
    reset_settings()
    reset_engine()
    yield url
    reset_engine()
    reset_settings()


def connect(provider: str, data: dict, key: str | None) -> uuid.UUID:
    """An integration of a new org whose credentials are `data` encrypted with `key` (None: none)."""
    creds = encrypt_json(data, keys=key) if key else None
    return connect_integration(make_org(), f"{provider}@example.com", None, creds=creds, provider=provider)


def stored(integration_id: uuid.UUID) -> bytes | None:
    with transaction() as conn:
        return conn.execute(select(integrations.c.credentials).where(integrations.c.id == integration_id)).scalar()


def reencrypt(monkeypatch: pytest.MonkeyPatch, keys: str | None, *args: str) -> Result:
    """`proactive db reencrypt ARGS` with ENCRYPTION_KEYS=keys (unset for None)."""
    if keys is None:
        monkeypatch.delenv("ENCRYPTION_KEYS", raising=False)
    else:
        monkeypatch.setenv("ENCRYPTION_KEYS", keys)
    reset_settings()
    return CliRunner().invoke(main, ["db", "reencrypt", *args])


def test_every_credential_ends_under_the_new_key(database: str, monkeypatch: pytest.MonkeyPatch):
    google = connect("google", {"refresh_token": "1//r"}, OLD)
    recorder = connect("recorder", {"secrets": [{"secret": "s"}]}, OLD)
    already = connect("instantly", {"api_key": "k"}, NEW)
    empty = connect("google", {}, None)

    result = reencrypt(monkeypatch, f"{NEW},{OLD}", "--json")

    assert result.exit_code == 0, result.output
    assert json.loads(result.output) == {"orgs": 4, "credentials": 3}
    assert decrypt_json(stored(google), keys=NEW) == {"refresh_token": "1//r"}  # the old key can go
    assert decrypt_json(stored(recorder), keys=NEW) == {"secrets": [{"secret": "s"}]}
    assert decrypt_json(stored(already), keys=NEW) == {"api_key": "k"}
    assert stored(empty) is None
    again = reencrypt(monkeypatch, NEW)  # once more, the old key gone: nothing breaks
    assert again.exit_code == 0, again.output
    assert "re-encrypted 3 credential(s) in 4 org(s)" in again.output
    assert again.output.count("org ") >= 4  # progress: a line per org


def test_a_row_no_key_decrypts_stops_with_one_line_naming_it(database: str, monkeypatch: pytest.MonkeyPatch):
    lost = connect("google", {"refresh_token": "1//x"}, STRANGER)

    result = reencrypt(monkeypatch, f"{NEW},{OLD}")

    assert result.exit_code == 1
    error = result.output.strip().splitlines()[-1]
    assert error.startswith("error: the google credentials of integration ") and str(lost) in error
    assert "put back the key that encrypted them" in error
    assert decrypt_json(stored(lost), keys=STRANGER) == {"refresh_token": "1//x"}  # left as it was


@pytest.mark.parametrize("keys", [None, "not-a-key"])
def test_unusable_keys_fail_before_any_row(database: str, monkeypatch: pytest.MonkeyPatch, keys: str | None):
    kept = connect("google", {"refresh_token": "1//k"}, OLD)
    before = stored(kept)

    result = reencrypt(monkeypatch, keys)

    assert result.exit_code != 0
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ENCRYPTION_KEYS"), result.output
    assert stored(kept) == before
