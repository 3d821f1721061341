"""Worker heartbeats: a killed worker's running steps and Slack deliveries run again within seconds,
not after their lease.

Each worker process (the main `celery worker` process; its prefork children claim as
`<instance>/<pid>`, worker/engine/claimant.py) keeps one `worker_heartbeats` row and moves its `beat_at` every
PROACTIVE_WORKER_HEARTBEAT_S from a daemon thread of its own, independent of the tasks it runs: a
busy or slow worker keeps beating and keeps its leases. Every claim records its claimant: a step's
(`step_runs.claimed_by`) and a Slack delivery's lease of its outbox row (`slack_outbox.claimed_by`).
After each beat the worker re-queues and publishes the running steps of claimants silent for
PROACTIVE_WORKER_DEAD_AFTER_S and gives back their outbox leases, publishing those deliveries again
(sweeper.reclaim_orphaned; a delivery given back looks in the channel's history before posting, so
a message the dead worker posted is not posted twice); a worker started again under the same name
does both for its previous instance at once. After each beat the main process also does both for its
own pool children that are gone (killed, crashed): their worker still beats, so nobody else would
take their steps or rows before the lease.

A worker judges the others only after its own beats have succeeded without a gap for
JUDGE_AFTER_BEATS intervals (6 s; the whole window if that is shorter): after a database outage
every row is stale, and the worker that reconnects first must not take the steps of workers that
have not had the chance to beat again (a live worker beats within one interval of the database's
return). A whole window was asked before: a worker started just before a peer died then waited
10 s of its own before judging, and two kills close together cost ~16 s instead of ~11 s. A
worker judged wrongly (its beat thread stuck past that) loses only time: its late results are
refused. Beats are stamped with each machine's clock, so clocks must agree to well within the
window (NTP).
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path

from celery.signals import worker_init, worker_ready, worker_shutdown
from sqlalchemy import delete, insert, select, update

from worker.config import get_settings
from worker.db import once_more_on_disconnect, transaction
from worker.engine import claimant, sweeper
from worker.engine import jobstore as store
from worker.models import utcnow, worker_heartbeats
from worker.slack import delivery

log = logging.getLogger(__name__)
HB = worker_heartbeats

# Rows of workers silent this long are deleted (their steps were re-queued long before).
FORGET_AFTER = timedelta(hours=1)


def _pid_alive(pid: int) -> bool:
    """True when a process with this pid runs on this machine."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _child_gone(pid: int, parent: int) -> bool:
    """True when `pid` is no longer a live child of `parent`: no such process, a zombie not yet reaped,
    or (the pid reused) another process's child. Without /proc, only whether the pid runs."""
    if not Path("/proc/self/stat").exists():
        return not _pid_alive(pid)
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return True
    except OSError:
        return False  # unreadable: keep the step (its lease still bounds the wait)
    state, ppid = stat[stat.rindex(")") + 2 :].split()[:2]  # after "pid (comm) "
    return state in ("Z", "X", "x") or int(ppid) != parent


# How many beat intervals this worker's own beats must have succeeded in a row before it judges others.
JUDGE_AFTER_BEATS = 3


@dataclass
class Heartbeat:
    """This worker process's heartbeat row and the thread that keeps it fresh."""

    name: str
    interval_s: float
    dead_after_s: float
    instance: str = field(default_factory=lambda: uuid.uuid4().hex)
    hostname: str = field(default_factory=socket.gethostname)
    pid: int = field(default_factory=os.getpid)
    started_at: datetime = field(default_factory=utcnow)
    registered: bool = False
    healthy_since: float | None = None  # monotonic time since which every beat succeeded in time
    last_ok: float | None = None
    requeued_at_start: int = 0  # steps and deliveries of this name's previous run, re-published at registration
    start_error: str | None = None  # why the registration at start failed
    beat_failed: bool = False  # the last beat failed (the database was unreachable)
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def _row(self, now: datetime) -> dict[str, object]:
        return {
            "instance": self.instance,
            "name": self.name[:200],
            "hostname": self.hostname[:200],
            "pid": self.pid,
            "started_at": self.started_at,
            "beat_at": now,
        }

    def _gone(self, row: object) -> bool:
        """Whether an earlier row of this worker's name is a previous incarnation (on another host,
        this very pid after a container restart, or a pid that no longer runs here), not a second
        live worker started by mistake under the same name."""
        return row.hostname != self.hostname[:200] or row.pid == self.pid or not _pid_alive(row.pid)  # type: ignore[attr-defined]

    def register(self) -> int:
        """Write this instance's row, forget the earlier instances of this name that are gone and
        re-queue the steps and Slack deliveries they held; how many were published again."""
        now = utcnow()
        with transaction() as conn:
            earlier = conn.execute(
                select(HB.c.instance, HB.c.hostname, HB.c.pid).where(HB.c.name == self.name[:200])
            ).all()
            gone = [r.instance for r in earlier if r.instance != self.instance and self._gone(r)]
            if gone:
                conn.execute(delete(HB).where(HB.c.instance.in_(gone)))
            conn.execute(insert(HB).values(self._row(now)))
        self.registered = True
        claimant.set_current(self.instance)  # the claimant of this process and its pool children
        return sweeper.reclaim_orphaned(now, now, claimants=gone) if gone else 0

    def beat(self) -> None:
        """Move this instance's `beat_at` to now (the row again if it was removed meanwhile)."""
        now = utcnow()
        with transaction() as conn:
            moved = conn.execute(update(HB).where(HB.c.instance == self.instance).values(beat_at=now)).rowcount
            if not moved:
                conn.execute(insert(HB).values(self._row(now)))
            conn.execute(delete(HB).where(HB.c.beat_at < now - FORGET_AFTER))

    def reclaim_dead_children(self) -> int:
        """Re-queue and publish the running steps and the Slack deliveries claimed by this worker's
        pool children that are gone (this process beats for them, so no other worker would); how many.
        A live child keeps its steps and leases, and a child that exited normally held none."""
        with transaction() as conn:
            held = set(store.child_claimants(conn, self.instance))
            held |= set(delivery.child_claimants(conn, self.instance))
        dead = [c for c in sorted(held) if (pid := claimant.child_pid(c, self.instance)) and _child_gone(pid, self.pid)]
        if not dead:
            return 0
        log.warning("pool child(ren) gone while running a step or a delivery: %s", dead)
        return sweeper.reclaim_orphaned(utcnow(), None, claimants=dead)

    def _note_success(self, at: float) -> None:
        """Track since when this worker has beaten without a gap longer than half the window."""
        if self.last_ok is None or at - self.last_ok > self.dead_after_s / 2 or self.healthy_since is None:
            self.healthy_since = at
        self.last_ok = at

    def may_judge(self, at: float) -> bool:
        """True once this worker's own beats have succeeded for JUDGE_AFTER_BEATS intervals (the
        whole window if shorter)."""
        needed = min(self.dead_after_s, JUDGE_AFTER_BEATS * self.interval_s)
        return self.healthy_since is not None and at - self.healthy_since >= needed

    def tick(self) -> int:
        """One beat (the registration first), then the re-queue of silent claimants' steps and
        deliveries when this worker may judge; how many were published again."""
        requeued = 0
        try:
            if self.registered:
                once_more_on_disconnect(self.beat, "worker heartbeat")
            else:
                requeued = self.register()
        except Exception as exc:  # a database outage: judge nobody until the beats flow again
            self.healthy_since = None
            self.beat_failed = True
            log.warning("worker heartbeat failed: %s", exc)
            return 0
        if self.beat_failed:  # the database is back: what the outage refused runs now, not at the next sweep
            self.beat_failed = False
            sweeper.recover("database back")
        at = time.monotonic()
        self._note_success(at)
        try:
            requeued += self.reclaim_dead_children()
        except Exception as exc:
            log.warning("re-queueing the work of gone pool children failed: %s", exc)
        if not self.may_judge(at):
            return requeued
        now = utcnow()
        try:
            return requeued + sweeper.reclaim_orphaned(now, now - timedelta(seconds=self.dead_after_s))
        except Exception as exc:
            log.warning("re-queueing the work of silent workers failed: %s", exc)
            return requeued

    def _run(self) -> None:
        while not self._stop.is_set():
            self.tick()
            self._stop.wait(self.interval_s)

    def start(self) -> None:
        """Beat from a daemon thread until `stop()`."""
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="proactive-heartbeat", daemon=True)
            self._thread.start()

    def stop(self) -> None:
        """Stop beating, hand back what this worker and its pool children still hold, and remove the
        row. At `worker_shutdown` the pool has stopped, so nothing of this instance runs any more; a
        step still `running` under its name was cut off (a SIGTERM to the whole process group, as a
        container platform sends, kills the pool children at once): it is re-queued and published
        now, not when another worker may judge this one (its own beats must flow for a whole window
        first, so a replacement started after this one would wait ~10 s)."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=self.interval_s + 5)
        claimant.set_current(None)
        if self.registered:
            try:  # failing that, any judging worker re-queues them, as after a kill
                sweeper.reclaim_orphaned(utcnow(), None, claimants=[self.instance])
            except Exception as exc:
                log.warning("handing back the steps this worker held at shutdown failed: %s", exc)
        try:
            with transaction() as conn:
                conn.execute(delete(HB).where(HB.c.instance == self.instance))
        except Exception as exc:
            log.warning("removing the worker heartbeat failed: %s", exc)


_current: Heartbeat | None = None


@worker_init.connect
def _register_on_init(sender: object = None, **_kwargs: object) -> None:
    """Before the pool forks: register this worker, so every step a child claims names it."""
    global _current
    settings = get_settings()
    if settings.worker_heartbeat_s <= 0:
        return
    name = str(getattr(sender, "hostname", None) or f"celery@{socket.gethostname()}")
    _current = Heartbeat(name, settings.worker_heartbeat_s, settings.worker_dead_after_s)
    try:
        _current.requeued_at_start = _current.register()
    except Exception as exc:  # never keep a worker from starting: the thread registers later
        _current.start_error = str(exc)


@worker_ready.connect
def _beat_when_ready(**_kwargs: object) -> None:
    """Once the pool runs (no thread is alive while it forks), beat from a thread; say what the
    registration did (logging is set up only now)."""
    if _current is None:
        return
    if _current.start_error:
        log.warning("worker heartbeat registration failed (retried by the heartbeat): %s", _current.start_error)
    elif _current.requeued_at_start:
        count = _current.requeued_at_start
        log.info("worker start: re-queued %d step(s) or delivery(ies) its previous run held", count)
    _current.start()


@worker_shutdown.connect
def _stop_on_shutdown(**_kwargs: object) -> None:
    """Stop beating and remove the row."""
    global _current
    if _current is not None:
        _current.stop()
        _current = None
