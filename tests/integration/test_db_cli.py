"""`proactive db ...` against a real PostgreSQL server: the database is created when missing, and a
DATABASE_URL that cannot work is one line saying what to do (exit 2 wrong URL, 1 server down)."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator

import psycopg
import pytest
from click.testing import CliRunner, Result

from tests.support.services import ensure_postgres
from worker import migrate
from worker.config import reset_settings
from worker.db import reset_engine
from worker.ops.cli import main

pytestmark = pytest.mark.postgres
ADMIN = "postgresql://postgres@127.0.0.1:5432/postgres"


def _exists(name: str) -> bool:
    with psycopg.connect(ADMIN) as conn:
        return conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone() is not None


@pytest.fixture
def fresh_name() -> Iterator[str]:
    """A database name nobody uses; dropped afterwards if a test created it."""
    ensure_postgres()
    name = f"proactive_cli_{uuid.uuid4().hex[:10]}"
    yield name
    with psycopg.connect(ADMIN, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def run(monkeypatch: pytest.MonkeyPatch, url: str, *args: str) -> Result:
    """`proactive *args` in this process with DATABASE_URL=url."""
    monkeypatch.setenv("DATABASE_URL", url)
    reset_settings()
    reset_engine()
    try:
        return CliRunner().invoke(main, list(args))
    finally:
        monkeypatch.undo()
        reset_settings()
        reset_engine()


def one_error_line(result: Result) -> str:
    """The single `error: ...` line the command printed (and no traceback)."""
    assert isinstance(result.exception, SystemExit), result.exception
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.output
    return lines[0]


def test_upgrade_creates_a_missing_database_then_migrates(monkeypatch: pytest.MonkeyPatch, fresh_name: str):
    url = f"postgresql://postgres@127.0.0.1:5432/{fresh_name}"
    done = run(monkeypatch, url, "db", "upgrade")
    assert done.exit_code == 0, done.output
    assert done.output.splitlines()[0] == f"created database {fresh_name} on 127.0.0.1:5432"
    assert migrate.at_head(url.replace("postgresql://", "postgresql+psycopg://"))

    again = run(monkeypatch, url, "db", "upgrade")
    assert again.exit_code == 0 and "created" not in again.output

    current = run(monkeypatch, url, "db", "current", "--json")
    assert current.exit_code == 0
    assert json.loads(current.output) == {
        "current": list(migrate.heads()),
        "head": list(migrate.heads()),
        "at_head": True,
        "database": f"postgresql+psycopg://postgres@127.0.0.1:5432/{fresh_name}",
    }


def test_create_only_creates_and_is_idempotent(monkeypatch: pytest.MonkeyPatch, fresh_name: str):
    url = f"postgresql://postgres@127.0.0.1:5432/{fresh_name}"
    first = run(monkeypatch, url, "db", "create")
    assert (first.exit_code, first.output.strip()) == (0, f"created database {fresh_name} on 127.0.0.1:5432")
    assert _exists(fresh_name)
    second = run(monkeypatch, url, "db", "create")
    assert (second.exit_code, second.output.strip()) == (0, f"database {fresh_name} on 127.0.0.1:5432 already exists")
    current = run(monkeypatch, url, "db", "current", "--json")  # created, never migrated
    assert current.exit_code == 1 and json.loads(current.output)["current"] == []


def test_an_unknown_revision_lists_the_known_ones_and_creates_nothing(monkeypatch: pytest.MonkeyPatch, fresh_name: str):
    url = f"postgresql://postgres@127.0.0.1:5432/{fresh_name}"
    done = run(monkeypatch, url, "db", "upgrade", "--revision", "nonsense")
    assert done.exit_code == 2
    head = migrate.heads()[0]
    assert one_error_line(done) == (
        f"error: unknown revision 'nonsense'; known: {', '.join(migrate.known_revisions()[:-1])}, {head} (head)"
    )
    assert not _exists(fresh_name)


def test_a_missing_database_is_one_line_for_any_command(monkeypatch: pytest.MonkeyPatch, fresh_name: str):
    url = f"postgresql://postgres@127.0.0.1:5432/{fresh_name}"
    for args in (("db", "current"), ("jobs",)):
        done = run(monkeypatch, url, *args)
        assert done.exit_code == 1
        assert "does not exist: create it with `proactive db upgrade`" in one_error_line(done)
    assert not _exists(fresh_name)


def test_a_server_that_does_not_answer_is_exit_1(monkeypatch: pytest.MonkeyPatch):
    import socket

    with socket.socket() as probe:  # a port nothing listens on: bound, never listening
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
        done = run(monkeypatch, f"postgresql://postgres@127.0.0.1:{port}/proactive", "db", "upgrade")
    assert done.exit_code == 1
    assert f"no PostgreSQL answers at 127.0.0.1:{port}" in one_error_line(done)


@pytest.mark.parametrize(
    ("url", "says"),
    [
        ("postgresql://nobody_at_all@127.0.0.1:5432/proactive", 'refused the connection: FATAL: role "nobody_at_all"'),
        ("postgresql://postgres@no-such-host.invalid:5432/proactive", "unknown host 'no-such-host.invalid'"),
        ("postgresql://postgres@127.0.0.1:5432", "DATABASE_URL names no database"),
    ],
)
def test_a_wrong_database_url_is_exit_2(monkeypatch: pytest.MonkeyPatch, url: str, says: str):
    ensure_postgres()
    done = run(monkeypatch, url, "db", "upgrade")
    assert done.exit_code == 2
    assert says in one_error_line(done)
