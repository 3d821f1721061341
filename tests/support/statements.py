"""Counting what a block of code sends to the database: its statements and its round trips."""

from __future__ import annotations

from collections import Counter
from typing import Any

from sqlalchemy import event

from worker import precompiled
from worker.db import get_engine


class Sent:
    """What this process sends to the database while counting: statements by verb and table, and
    the round trips (a pipeline is one)."""

    def __init__(self) -> None:
        self.statements: list[str] = []
        self.begins = self.commits = self.autocommitted = 0
        self._stats: Counter[str] = Counter()

    def __enter__(self) -> Sent:
        engine = get_engine()
        event.listen(engine, "before_cursor_execute", self._statement)
        event.listen(engine, "begin", self._begin)
        event.listen(engine, "commit", self._commit)
        self._stats = Counter(precompiled.stats)
        return self

    def __exit__(self, *exc: Any) -> None:
        engine = get_engine()
        event.remove(engine, "before_cursor_execute", self._statement)
        event.remove(engine, "begin", self._begin)
        event.remove(engine, "commit", self._commit)
        self._stats = Counter(precompiled.stats) - self._stats

    def _statement(self, conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        self.statements.append(" ".join(statement.split()))
        self.autocommitted += bool(conn.connection.driver_connection.autocommit)

    def _begin(self, conn: Any) -> None:
        self.begins += 1

    def _commit(self, conn: Any) -> None:
        self.commits += 1

    @property
    def round_trips(self) -> int:
        """BEGIN, statements and COMMIT, less what went in pipelines (each one round trip, its BEGIN
        and COMMIT included: the transaction's own commit then sends nothing) and the BEGIN and
        COMMIT of a statement run in autocommit (SQLAlchemy's, which send nothing)."""
        pipelined = self._stats["batched"] - self._stats["batches"] + self._stats["batched_begins"]
        pipelined += self._stats["batched_commits"]
        return self.begins + len(self.statements) + self.commits - pipelined - 2 * self.autocommitted
