"""A PostgreSQL cluster of a test's own (initdb + pg_ctl on a free port), so the test may stop and
start it: a database outage without touching the machine's shared server.

    with own_cluster() as cluster:          # initdb, start, a database migrated to head
        url = cluster.url                   # postgresql+psycopg://postgres@127.0.0.1:<port>/proactive
        cluster.stop()                      # pg_ctl stop -m fast: every connection is cut
        cluster.start()                     # pg_ctl start -w: accepting connections again

As root (CI, containers) the server runs as the `postgres` OS user (`runuser -u postgres --`), since
PostgreSQL refuses to run as root; its data directory is then owned by that user. Trust auth, local
connections only unless `listen` names more addresses (e.g. a veth address).
"""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

# Where Debian/Ubuntu install the server binaries (newest first); PG_BIN overrides.
PG_BIN_GLOB = "/usr/lib/postgresql/*/bin"
# How long pg_ctl may wait for the server to start or stop (seconds).
PG_CTL_TIMEOUT_S = 60
# The OS user the server runs as when the tests run as root.
PG_OS_USER = "postgres"
DATABASE = "proactive"


def pg_bin() -> Path | None:
    """The directory holding initdb and pg_ctl, or None when PostgreSQL's server is not installed."""
    if explicit := os.environ.get("PG_BIN"):
        return Path(explicit)
    installed = [Path(p) for p in glob.glob(PG_BIN_GLOB) if Path(p, "initdb").exists()]
    if installed:
        return max(installed, key=lambda p: int(p.parent.name) if p.parent.name.isdigit() else 0)
    initdb = shutil.which("initdb")
    return Path(initdb).parent if initdb else None


def missing() -> str | None:
    """Why an own cluster cannot be made here (a skip reason), or None."""
    bindir = pg_bin()
    if bindir is None or not (bindir / "pg_ctl").exists():
        return f"no PostgreSQL server binaries (initdb, pg_ctl) in {PG_BIN_GLOB} or on PATH; set PG_BIN"
    if os.geteuid() == 0:
        try:
            pwd.getpwnam(PG_OS_USER)
        except KeyError:
            return f"running as root without a `{PG_OS_USER}` OS user to run the server as"
        if shutil.which("runuser") is None:
            return "running as root without `runuser` to start the server as another user"
    return None


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port nothing listens on right now."""
    with socket.socket() as probe:
        probe.bind((host, 0))
        return probe.getsockname()[1]


@dataclass
class PgCluster:
    """One cluster: its data directory, port and the addresses it listens on."""

    data_dir: Path
    port: int
    listen: tuple[str, ...]
    bindir: Path

    @property
    def log_path(self) -> Path:
        return self.data_dir.parent / "server.log"

    def url_at(self, host: str, database: str = DATABASE) -> str:
        """The SQLAlchemy URL of `database` on this cluster, reached at `host`."""
        return f"postgresql+psycopg://postgres@{host}:{self.port}/{database}"

    @property
    def url(self) -> str:
        """The SQLAlchemy URL of the test database on 127.0.0.1."""
        return self.url_at("127.0.0.1")

    def _run(self, *args: str) -> str:
        command = [str(self.bindir / args[0]), *args[1:]]
        if os.geteuid() == 0:
            command = ["runuser", "-u", PG_OS_USER, "--", *command]
        done = subprocess.run(command, capture_output=True, text=True, timeout=PG_CTL_TIMEOUT_S + 30, check=False)
        if done.returncode != 0:
            raise RuntimeError(f"`{' '.join(command)}` exited {done.returncode}: {done.stderr or done.stdout}")
        return done.stdout

    def init(self) -> None:
        """initdb with trust auth for the `postgres` role; host lines for every listen address."""
        self._run("initdb", "-D", str(self.data_dir), "-U", "postgres", "-A", "trust", "-E", "UTF8", "--no-sync")
        extra = [f"host all all {addr}/32 trust" for addr in self.listen if addr != "127.0.0.1"]
        if extra:
            with (self.data_dir / "pg_hba.conf").open("a") as hba:
                hba.write("\n".join(extra) + "\n")

    def start(self) -> None:
        """pg_ctl start, returning once the server accepts connections."""
        options = (
            f"-p {self.port} -c listen_addresses='{','.join(self.listen)}' "
            f"-c unix_socket_directories='{self.data_dir}' -c fsync=off -c full_page_writes=off"
        )
        self._run("pg_ctl", "-D", str(self.data_dir), "-l", str(self.log_path), "-o", options, "-w", "-t",
                  str(PG_CTL_TIMEOUT_S), "start")  # fmt: skip

    def stop(self, mode: str = "fast") -> None:
        """pg_ctl stop -m `mode` (fast: every session is cut, as a restart or failover does)."""
        self._run("pg_ctl", "-D", str(self.data_dir), "-m", mode, "-w", "-t", str(PG_CTL_TIMEOUT_S), "stop")

    def running(self) -> bool:
        """True while the postmaster runs (pg_ctl status)."""
        try:
            self._run("pg_ctl", "-D", str(self.data_dir), "status")
        except RuntimeError:
            return False
        return True

    def create_database(self, name: str = DATABASE) -> str:
        """Create `name` and migrate it to head; its URL."""
        import psycopg

        from worker import migrate

        with psycopg.connect(f"postgresql://postgres@127.0.0.1:{self.port}/postgres", autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        url = self.url_at("127.0.0.1", name)
        migrate.upgrade(url)
        return url


@contextmanager
def own_cluster(listen: Sequence[str] = ("127.0.0.1",)) -> Iterator[PgCluster]:
    """A started cluster with the test database migrated to head; stopped (immediate) and removed
    however the test ends. The caller skips first when `missing()` says why it cannot."""
    bindir = pg_bin()
    assert bindir is not None, missing()
    root = Path(tempfile.mkdtemp(prefix="proactive-pg-"))  # not under a root-only 0700 directory
    data_dir = root / "data"
    data_dir.mkdir()
    if os.geteuid() == 0:
        user = pwd.getpwnam(PG_OS_USER)
        for path in (root, data_dir):
            os.chown(path, user.pw_uid, user.pw_gid)
        root.chmod(0o755)
    data_dir.chmod(0o700)
    cluster = PgCluster(data_dir, free_port(), tuple(listen), bindir)
    try:
        cluster.init()
        cluster.start()
        cluster.create_database()
        yield cluster
    finally:
        if cluster.running():
            cluster.stop("immediate")
        shutil.rmtree(root, ignore_errors=True)
