"""The database itself: created when missing, and its schema migrated through Alembic (configured
in code, no alembic.ini needed once installed).

What goes wrong with DATABASE_URL is one error naming what to do: `BadDatabaseUrl` (exit 2) when
the variable cannot work as written (unparseable, a host name that does not resolve, credentials or
a database the server refuses), `DatabaseUnavailable` (exit 1) when nothing answers at the host and
port, the server does not take connections (starting, stopping), the database does not exist yet, or
the server refuses to create it.
"""

from __future__ import annotations

import re
import socket
from dataclasses import dataclass
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from alembic.util import CommandError

from worker.config import get_settings
from worker.db import make_engine
from worker.errors import ProactiveError, UserError

MIGRATIONS_DIR = Path(__file__).resolve().parent.parent / "migrations"
# How long PostgreSQL may take to accept a connection before it counts as unreachable (seconds).
CONNECT_TIMEOUT_S = 5
# What libpq says when the server refused who we are (not when it was down or going down).
CREDENTIALS_REFUSED = re.compile(r"authentication|password|role \".*\" does not exist|pg_hba", re.IGNORECASE)
# The database every PostgreSQL server has: a missing database is created through it.
MAINTENANCE_DB = "postgres"
DEFAULT_PG_PORT = 5432


class BadDatabaseUrl(UserError):
    """DATABASE_URL cannot work as written (unparseable, unknown host, refused credentials): fix it."""


class DatabaseUnavailable(ProactiveError):
    """No server answers at DATABASE_URL, or the database is missing and was not (or could not be)
    created: start the server or create the database."""

    exit_code = 1


class UnknownRevision(UserError):
    """A migration revision that is not in the graph."""


@dataclass(frozen=True)
class PgTarget:
    """A PostgreSQL DATABASE_URL taken apart: libpq URLs for its database and the maintenance one."""

    host: str | None  # None or a directory: a Unix socket
    port: int
    name: str
    user: str | None
    conninfo: str
    maintenance: str

    def __str__(self) -> str:
        return f"database {self.name} on {self.host or 'the local socket'}:{self.port}"

    @property
    def where(self) -> str:
        """host:port/name, for one-line errors (never the credentials)."""
        return f"{self.host or 'the local socket'}:{self.port}/{self.name}"


def pg_target(url: str | None = None) -> PgTarget | None:
    """Where a PostgreSQL URL points (None for SQLite); BadDatabaseUrl when it cannot be parsed."""
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError

    raw = url or get_settings().database_url
    try:
        parsed = make_url(raw)
    except ArgumentError:
        raise BadDatabaseUrl(f"DATABASE_URL is not a database URL: {raw!r} (e.g. postgresql://user@host/db)") from None
    if not parsed.drivername.startswith("postgresql"):
        return None
    if not parsed.database:
        raise BadDatabaseUrl("DATABASE_URL names no database: add it after the host (postgresql://user@host/proactive)")
    libpq = parsed.set(drivername="postgresql")
    return PgTarget(
        host=parsed.host,
        port=parsed.port or DEFAULT_PG_PORT,
        name=parsed.database,
        user=parsed.username,
        conninfo=libpq.render_as_string(hide_password=False),
        maintenance=libpq.set(database=MAINTENANCE_DB).render_as_string(hide_password=False),
    )


def _server_said(err: Exception) -> str:
    """libpq's reason on one line, without the 'connection to server at ... failed:' preamble."""
    return " ".join(str(err).split()).rsplit("failed: ", 1)[-1]


def _check_reachable(t: PgTarget) -> None:
    """BadDatabaseUrl when the host does not resolve, DatabaseUnavailable when nothing listens."""
    if t.host is None or t.host.startswith("/"):
        return  # a Unix socket: libpq's own error says more than a TCP probe could
    try:
        socket.getaddrinfo(t.host, t.port)
    except socket.gaierror:
        raise BadDatabaseUrl(f"unknown host {t.host!r} in DATABASE_URL: fix the host name") from None
    try:
        socket.create_connection((t.host, t.port), timeout=CONNECT_TIMEOUT_S).close()
    except OSError as err:
        raise DatabaseUnavailable(
            f"no PostgreSQL answers at {t.where} ({err.strerror or err}): start it, "
            "or point DATABASE_URL at a running server"
        ) from None


def ensure_database(url: str | None = None, *, create: bool = True) -> bool:
    """Make sure DATABASE_URL's PostgreSQL database exists, creating it through the server's
    `postgres` database when missing (unless `create` is False); True when this call created it.

    Nothing to do on SQLite: the first connection creates the file. Raises BadDatabaseUrl or
    DatabaseUnavailable (see the module docstring) when the database cannot be reached.
    """
    import psycopg
    from psycopg import errors, sql

    t = pg_target(url)
    if t is None:
        return False
    try:
        psycopg.connect(t.conninfo, connect_timeout=CONNECT_TIMEOUT_S).close()
        return False
    except psycopg.OperationalError as err:
        refused = err
    _check_reachable(t)
    try:
        admin = psycopg.connect(t.maintenance, autocommit=True, connect_timeout=CONNECT_TIMEOUT_S)
    except psycopg.OperationalError:
        if t.host is None or t.host.startswith("/"):
            raise DatabaseUnavailable(f"cannot connect to {t}: {_server_said(refused)}") from None
        if not CREDENTIALS_REFUSED.search(str(refused)):  # starting, stopping, crashed: not our URL's fault
            raise DatabaseUnavailable(
                f"PostgreSQL at {t.where} did not take the connection: {_server_said(refused)}; retry once it is up"
            ) from None
        raise BadDatabaseUrl(
            f"PostgreSQL at {t.host}:{t.port} refused the connection: {_server_said(refused)}; "
            "fix the user or password in DATABASE_URL"
        ) from None
    with admin:
        if admin.execute("SELECT 1 FROM pg_database WHERE datname = %s", (t.name,)).fetchone():
            raise BadDatabaseUrl(f"PostgreSQL refused {t}: {_server_said(refused)}; fix DATABASE_URL") from None
        if not create:
            raise DatabaseUnavailable(
                f"{t} does not exist: create it with `proactive db upgrade` (creates and migrates)"
            )
        try:
            admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(t.name)))
        except errors.DuplicateDatabase:
            return False  # another process created it meanwhile
        except errors.InsufficientPrivilege:
            raise DatabaseUnavailable(
                f"user {t.user or '(default)'} may not create {t}: create it as a superuser "
                f"(`createdb -h {t.host} -p {t.port} {t.name}`) or grant the user CREATEDB"
            ) from None
    return True


def database_exists(url: str | None = None) -> bool:
    """True when DATABASE_URL's database can be connected to (SQLite: always)."""
    try:
        ensure_database(url, create=False)
    except DatabaseUnavailable:
        return False
    return True


def explain_connection_error(err: Exception, url: str | None = None) -> ProactiveError:
    """The error to print for a failed connection: why DATABASE_URL does not work, found by probing
    it; the driver's message on one line when probing finds nothing wrong (a transient failure)."""
    try:
        ensure_database(url, create=False)
    except ProactiveError as known:
        return known
    first = " ".join(str(getattr(err, "orig", None) or err).split())[:300]
    try:
        target = pg_target(url)
    except BadDatabaseUrl:
        target = None
    where = f" at {target.where}" if target else ""
    return DatabaseUnavailable(f"database error{where}: {first}; retry, or check DATABASE_URL")


def known_revisions() -> list[str]:
    """Every revision id of the migration graph, oldest first."""
    script = ScriptDirectory.from_config(alembic_config("sqlite://"))
    return [r.revision for r in reversed(list(script.walk_revisions()))]


def check_revision(revision: str) -> None:
    """UnknownRevision unless `revision` names a point of the graph (an id, `head`, `base`, `+N`...)."""
    if re.fullmatch(r"[+-]\d+", revision):
        return  # relative steps are resolved by Alembic against the current revision
    try:
        ScriptDirectory.from_config(alembic_config("sqlite://")).get_revisions(revision)
    except CommandError:
        ids = known_revisions()
        heads_ = set(heads())
        listed = ", ".join(f"{r} (head)" if r in heads_ else r for r in ids)
        raise UnknownRevision(f"unknown revision {revision!r}; known: {listed}") from None


def alembic_config(url: str | None = None) -> Config:
    """An Alembic Config pointing at our migrations and at `url` (default DATABASE_URL)."""
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    cfg.set_main_option("sqlalchemy.url", (url or get_settings().database_url).replace("%", "%%"))
    return cfg


def upgrade(url: str | None = None, revision: str = "head") -> None:
    """Apply migrations up to `revision` (creates the SQLite file and its directory if needed)."""
    command.upgrade(alembic_config(url), revision)


def downgrade(url: str | None = None, revision: str = "base") -> None:
    """Revert migrations down to `revision`."""
    command.downgrade(alembic_config(url), revision)


def heads() -> tuple[str, ...]:
    """The head revisions of the migration graph (exactly one when the graph is healthy)."""
    return tuple(ScriptDirectory.from_config(alembic_config("sqlite://")).get_heads())


def current(url: str | None = None) -> tuple[str, ...]:
    """The revisions the database is at (empty when never migrated)."""
    engine = make_engine(url)
    try:
        with engine.connect() as conn:
            return tuple(MigrationContext.configure(conn).get_current_heads())
    finally:
        engine.dispose()


def at_head(url: str | None = None) -> bool:
    """True when the database is at the single head (used by `/readyz` and the CLI)."""
    return set(current(url)) == set(heads())
