"""Core statements compiled once per dialect and run straight on the DBAPI cursor (the step path).

A statement executed through `Connection.execute` costs about three times the CPU of the same SQL on
the driver's cursor: SQLAlchemy builds an execution context, looks up its compiled cache, constructs
the parameters and a `CursorResult` on every call (bench/profile_engine.py measured ~180 us against
~50 us per statement). The engine runs a handful of statements several times per step, so its hot
statements (worker/engine/jobstore.py, the skills' through sequences/skills/common.py) stay Core,
written once, and run here: compiled for the connection's dialect on first use, their bind and result
processors (UTC timestamps, JSON, UUIDs, numerics) applied as SQLAlchemy would, the SQL passed to the
driver (psycopg prepares it after a few runs; on PostgreSQL with numbered placeholders, see
`_numbered`).

Observability and error handling stay SQLAlchemy's: `before_cursor_execute` listeners see each
statement (the statement counters of bench/profile_engine.py, the tenant-scope test), and a DBAPI
error is wrapped and handled by the connection (a dropped connection invalidates the pool entry and
raises `sqlalchemy.exc.OperationalError` as before). On SQLite the same runs on the sqlite3
cursor (positional parameters). A statement with an expanding (IN-list) parameter is refused: it
needs SQLAlchemy's expansion on every call.

`batch()` sends several such statements in one round trip on PostgreSQL (psycopg's pipeline mode,
the transaction's BEGIN included): the server still runs them one after the other, each with its own
snapshot, so a read sent after a `FOR UPDATE` sees what the lock holder committed.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any

from psycopg import RawCursor
from psycopg.pq import TransactionStatus
from sqlalchemy import (
    Connection,
    Select,
    Table,
    Update,
    bindparam,
    insert,
    literal_column,
    select,
    text,
)
from sqlalchemy.exc import DBAPIError
from sqlalchemy.sql.compiler import SQLCompiler

# Dialects whose statements run on the cursor; the others go through Connection.execute.
DIRECT_DIALECTS = frozenset({"postgresql", "sqlite"})
# Dialects whose driver sends several statements in one round trip (psycopg's pipeline mode).
PIPELINE_DIALECTS = frozenset({"postgresql"})
# How the error of a failed check starts (`_Composed`: a one-statement flush).
GUARD_MARK = "proactive guard: "
# What this process sent in pipelines: `batches` round trips that carried `batched` statements (and
# the BEGIN of each batch that opened its transaction, the COMMIT of each that closed it), for
# bench/profile_engine.py's round-trip count.
stats: Counter[str] = Counter()


# A named psycopg placeholder `%(name)s`, or an escaped `%%`.
_PYFORMAT = re.compile(r"%%|%\(([^)]+)\)s")


def _numbered(sql: str) -> tuple[str, tuple[str, ...]] | None:
    """`sql` (psycopg's named placeholders `%(name)s`, a literal `%` written `%%`) with PostgreSQL's own
    placeholders `$1, $2...` (one number per name), and the names in number order; None when the SQL
    holds another `%` form. psycopg sends such SQL as it is (`RawCursor`): no parsing of the query
    and no reordering of the parameters on each run (and a statement over 4 KiB or 50 parameters,
    which psycopg does not cache the parsing of, costs as little as a short one)."""
    names: dict[str, int] = {}

    def number(m: re.Match[str]) -> str:
        if m.group(0) == "%%":
            return "%"
        return f"${names.setdefault(m.group(1), len(names) + 1)}"

    if "%" in _PYFORMAT.sub("", sql):
        return None
    return _PYFORMAT.sub(number, sql), tuple(names)


def _driver_query(sql: str, dialect: str, named: bool) -> tuple[str, tuple[str, ...] | None]:
    """What the driver runs for `sql` and, when its placeholders are numbered, the parameter names in
    number order: numbered on PostgreSQL (see `_numbered`), as it is elsewhere."""
    converted = _numbered(sql) if named and dialect in PIPELINE_DIALECTS else None
    return converted if converted is not None else (sql, None)


class _Plan:
    """One statement compiled for one dialect: its SQL, bind processors and result column processors.

    `sql` is the statement as SQLAlchemy compiled it; `query` is what the driver runs: on PostgreSQL
    the same with numbered placeholders (`numbered`: the parameter names in number order, see
    `_numbered`), run on a RawCursor with the parameters as a tuple."""

    __slots__ = ("binds", "compiled", "keys", "numbered", "positions", "query", "results", "sql")

    def __init__(self, statement: Any, conn: Connection) -> None:
        dialect = conn.dialect
        compiled = statement.compile(dialect=dialect)
        assert isinstance(compiled, SQLCompiler)
        if any(b.expanding for b in compiled.binds.values()):
            raise ValueError("an IN-list (expanding) parameter needs Connection.execute: use = ANY(array)")
        if compiled.literal_execute_params:  # SQLAlchemy writes their values into the SQL at each run
            raise ValueError("a literal-execute parameter needs Connection.execute")
        self.compiled = compiled
        self.sql: str = compiled.string
        self.binds: dict[str, Callable[[Any], Any]] = dict(compiled._bind_processors)
        # sqlite3 takes `?` parameters in order; psycopg numbered ones in order (or named ones by name)
        self.positions: tuple[str, ...] | None = tuple(compiled.positiontup or ()) if compiled.positional else None
        self.query, self.numbered = _driver_query(self.sql, dialect.name, self.positions is None)
        self.keys: tuple[str, ...] = tuple(c[0] for c in compiled._result_columns)
        # the result processors, made on the first result: some need the driver's column type (a
        # PostgreSQL NUMERIC or FLOAT column's processor depends on its OID)
        self.results: tuple[Callable[[Any], Any] | None, ...] | None = None

    def named(self, values: Mapping[str, Any]) -> dict[str, Any]:
        """The statement's parameters from `values` by name, converted by the bind processors."""
        params = self.compiled.construct_params(values, _check=False)
        for name, process in self.binds.items():
            if name in params:
                params[name] = process(params[name])
        return params

    def params(self, values: Mapping[str, Any]) -> dict[str, Any] | tuple[Any, ...]:
        """The parameters `query` takes from `values`: by name, or a tuple in order (a positional
        driver's, or numbered placeholders)."""
        params = self.named(values)
        order = self.positions if self.positions is not None else self.numbered
        return params if order is None else tuple(params[name] for name in order)

    def rows(self, cursor: Any) -> list[tuple[Any, ...]]:
        """The cursor's rows with the result processors applied."""
        if not self.keys:
            return []
        if self.results is None:
            dialect, columns = self.compiled.dialect, self.compiled._result_columns
            self.results = tuple(
                c[3]._cached_result_processor(dialect, d[1]) for c, d in zip(columns, cursor.description, strict=True)
            )
        procs = self.results
        return [
            tuple(v if p is None or v is None else p(v) for p, v in zip(procs, r, strict=True))
            for r in cursor.fetchall()
        ]


class Precompiled:
    """A Core statement run on the DBAPI cursor where the dialect allows (see the module docstring).

    `rows()` returns plain tuples in the statement's column order (`keys` names them); `count()` the
    number of rows a write matched.
    """

    def __init__(self, statement: Any) -> None:
        if isinstance(statement, Update):
            table = statement.table
            given = {getattr(c, "key", c) for c in statement._values or ()}
            missed = [c.key for c in getattr(table, "columns", ()) if c.onupdate is not None and c.key not in given]
            if missed:  # Connection.execute would fill them in; the cursor would not
                raise ValueError(f"an UPDATE of {table} must set its onupdate columns itself: {missed}")
        self.statement = statement
        self._plans: dict[str, _Plan] = {}

    def _plan(self, conn: Connection) -> _Plan | None:
        name = conn.dialect.name
        if name not in DIRECT_DIALECTS:
            return None
        plan = self._plans.get(name)
        if plan is None:
            plan = self._plans[name] = _Plan(self.statement, conn)
        return plan

    def keys(self, conn: Connection) -> tuple[str, ...]:
        """The result columns' names."""
        plan = self._plan(conn)
        return plan.keys if plan is not None else tuple(self.statement.exported_columns.keys())

    def rows(self, conn: Connection, values: Mapping[str, Any]) -> list[tuple[Any, ...]]:
        """Run the statement; its result rows as tuples."""
        plan = self._plan(conn)
        if plan is None:
            return [tuple(r) for r in conn.execute(self.statement, dict(values))]
        cursor = _run(conn, plan, plan.params(values))
        try:
            return plan.rows(cursor)
        finally:
            cursor.close()

    def first(self, conn: Connection, values: Mapping[str, Any]) -> tuple[Any, ...] | None:
        """Run the statement; its first row as a tuple, or None."""
        found = self.rows(conn, values)
        return found[0] if found else None

    def count(self, conn: Connection, values: Mapping[str, Any]) -> int:
        """Run a write; how many rows it matched."""
        plan = self._plan(conn)
        if plan is None:
            return conn.execute(self.statement, dict(values)).rowcount
        cursor = _run(conn, plan, plan.params(values))
        try:
            return cursor.rowcount
        finally:
            cursor.close()


def _run(conn: Connection, plan: _Plan, params: Any, many: bool = False) -> Any:
    """Execute `plan` with `params` (a list of them when `many`) on a cursor of the connection's DBAPI
    connection, as SQLAlchemy would: the listeners told first, a DBAPI error handled (and re-raised
    wrapped) by the connection. Returns the open cursor."""
    if not conn.in_transaction():
        conn.begin()  # as Connection.execute would (SQLite's BEGIN IMMEDIATE included)
    dbapi_conn = conn.connection.dbapi_connection
    assert dbapi_conn is not None
    cursor = RawCursor(dbapi_conn) if plan.numbered is not None else dbapi_conn.cursor()  # type: ignore[arg-type]
    try:
        if conn._has_events or conn.engine._has_events:
            for listener in conn.dispatch.before_cursor_execute:
                listener(conn, cursor, plan.query, params, None, many)
        if many:
            cursor.executemany(plan.query, params)
        else:
            cursor.execute(plan.query, params)
    except conn.dialect.loaded_dbapi.Error as err:
        cursor.close()
        conn._handle_dbapi_exception(err, plan.query, params, cursor, None)
    except BaseException:
        cursor.close()
        raise
    return cursor


class PrecompiledInsert:
    """`INSERT INTO table` of whole rows (every column with a Python-side default given), run as one
    `executemany` on the cursor (psycopg pipelines it: one round trip); rows without those columns,
    and other dialects, go through Connection.execute (which fills the defaults in)."""

    def __init__(self, table: Table) -> None:
        self.table = table
        self._needed = frozenset(c.key for c in table.columns if c.default is not None)
        self._by_keys: dict[tuple[str, ...], Precompiled] = {}

    def _statement(self, conn: Connection, rows: Sequence[Mapping[str, Any]]) -> Precompiled | None:
        """The compiled INSERT for `rows`' keys, or None when they go through Connection.execute."""
        keys = tuple(sorted(rows[0]))
        whole = self._needed.issubset(keys) and all(len(r) == len(keys) and r.keys() >= set(keys) for r in rows)
        if conn.dialect.name not in DIRECT_DIALECTS or not whole:
            return None
        pre = self._by_keys.get(keys)
        if pre is None:
            values = {k: bindparam(k, type_=self.table.c[k].type) for k in keys}
            pre = self._by_keys[keys] = Precompiled(insert(self.table).values(values))
        return pre

    def run(self, conn: Connection, rows: Sequence[Mapping[str, Any]]) -> None:
        """Insert `rows` (all with the same keys)."""
        if not rows:
            return
        pre = self._statement(conn, rows)
        plan = pre._plan(conn) if pre is not None else None
        if plan is None:
            conn.execute(insert(self.table), [dict(r) for r in rows])
            return
        _run(conn, plan, [plan.params(r) for r in rows], many=True).close()

    def queue(self, b: Batch, rows: Sequence[Mapping[str, Any]]) -> None:
        """Send the insert of `rows` in batch `b` (one statement per row in the pipeline)."""
        if not rows:
            return
        pre = self._statement(b.conn, rows)
        if pre is None or not b.pipelined:
            self.run(b.conn, rows)
            return
        for r in rows:
            b.send(pre, r)


class Pending:
    """The result of a statement sent in a `batch()`: read it once the batch block has ended."""

    __slots__ = ("_count", "_cursor", "_plan", "_rows")

    def __init__(self, plan: _Plan | None, cursor: Any = None, rows: list[tuple[Any, ...]] | None = None) -> None:
        self._plan, self._cursor, self._rows, self._count = plan, cursor, rows, -1

    def _collect(self) -> None:
        if self._cursor is not None:
            if getattr(self._cursor.connection, "_pipeline", None) is not None:
                raise RuntimeError("a batched statement's result is read once its batch block has ended")
            assert self._plan is not None
            cursor, self._cursor = self._cursor, None
            try:
                self._rows = self._plan.rows(cursor)
                # A statement with rows (RETURNING, SELECT ... FOR UPDATE) matched as many as it returned:
                # sqlite3 counts an UPDATE ... RETURNING only once its rows are fetched, and a SELECT never.
                self._count = len(self._rows) if self._plan.keys else cursor.rowcount
            finally:
                cursor.close()

    def rows(self) -> list[tuple[Any, ...]]:
        """The statement's rows as tuples."""
        self._collect()
        assert self._rows is not None
        return self._rows

    def first(self) -> tuple[Any, ...] | None:
        """Its first row, or None."""
        found = self.rows()
        return found[0] if found else None

    def count(self) -> int:
        """How many rows the write matched."""
        self._collect()
        return self._count


class Batch:
    """Statements queued by `batch()`; each call returns its `Pending` result."""

    def __init__(self, conn: Connection, pipelined: bool) -> None:
        self.conn, self.pipelined = conn, pipelined
        self._sent: list[tuple[_Plan | None, Any, Any]] = []
        self.committed = False

    def commit(self) -> None:
        """Send the transaction's COMMIT last in this pipeline (its results come with the others').
        The caller's transaction block then finds nothing left to commit (psycopg skips a COMMIT when
        the server reports no open transaction)."""
        assert self.pipelined, "only a pipeline carries its COMMIT"
        driver = self.conn.connection.driver_connection
        assert driver is not None
        cursor = driver.cursor()
        cursor.execute("COMMIT", prepare=False)
        self._sent.append((None, {}, cursor))
        self.committed = True

    def send(self, pre: Precompiled, values: Mapping[str, Any]) -> Pending:
        """Send `pre` with `values` (run at once where there is no pipeline)."""
        plan = pre._plan(self.conn)
        if plan is None:
            result = self.conn.execute(pre.statement, dict(values))
            pending = Pending(None, rows=[tuple(r) for r in result] if result.returns_rows else [])
            pending._count = result.rowcount
            return pending
        params = plan.params(values)
        cursor = _run(self.conn, plan, params)
        pending = Pending(plan, cursor)
        if self.pipelined:
            self._sent.append((plan, params, cursor))
        else:
            pending._collect()  # run already: read it now
        return pending


@contextmanager
def batch(conn: Connection) -> Iterator[Batch]:
    """Send the statements of the block together: in one round trip on PostgreSQL (their results are
    read once the block ends), one after the other elsewhere. Only `Batch.send` may run SQL inside
    the block (a statement through Connection.execute would find no result yet)."""
    if conn.dialect.name not in PIPELINE_DIALECTS:
        yield Batch(conn, pipelined=False)
        return
    driver = conn.connection.driver_connection  # psycopg's Connection
    assert driver is not None
    b = Batch(conn, pipelined=True)
    opens = driver.info.transaction_status == TransactionStatus.IDLE  # its BEGIN goes in the batch
    try:
        with driver.pipeline():
            yield b
        for plan, _params, cursor in b._sent:
            if plan is None:  # the COMMIT's (the others close when their result is read)
                cursor.close()
        stats["batches"] += 1
        stats["batched"] += len(b._sent) - b.committed  # the COMMIT is counted apart
        stats["batched_begins"] += opens and bool(b._sent)
        stats["batched_commits"] += b.committed
    except conn.dialect.loaded_dbapi.Error as err:
        plan, params, cursor = b._sent[-1] if b._sent else (None, None, None)
        for _plan, _params, sent in b._sent:
            sent.close()
        conn._handle_dbapi_exception(err, plan.query if plan else None, params, cursor, None)


class LeaseLost(Exception):
    """A deferred write that had to match one row matched none (see `Deferred.flush`)."""


class _Composed:
    """Several statements run as one (`Deferred.flush(commit=True)` on PostgreSQL): each a CTE
    `w<i>` returning a row per row it matched, each after the first check conditional on every check
    before it holding; the main SELECT fails unless every check matched its count, so a statement
    that failed a check wrote nothing, whatever came before the check."""

    __slots__ = ("checks", "numbered", "parts", "query", "sql")

    def __init__(self, parts: Sequence[tuple[Callable[[str | None], Any], int | None]], conn: Connection) -> None:
        self.parts: list[_Plan] = []
        self.checks: list[tuple[int, int]] = []  # (part index, the count it must match)
        ctes: list[str] = []
        gate: str | None = None
        for i, (build, expect) in enumerate(parts):
            statement = build(gate)
            if not isinstance(statement, Select) and not statement._returning:
                statement = statement.returning(literal_column("1"))
            plan = _Plan(statement, conn)
            self.parts.append(plan)
            ctes.append(f"w{i} AS ({_PLACEHOLDER.sub(lambda m, i=i: f'%(p{i}_{m.group(1)})s', plan.sql)})")
            if expect is not None:
                self.checks.append((i, expect))
                held = f"(SELECT count(*) FROM w{i}) = {expect}"
                gate = held if gate is None else f"{gate} AND {held}"
        # Every check holds, or the statement fails (and so writes nothing) with the counts it met.
        counts = [f"(SELECT count(*) FROM w{i})" for i, _ in self.checks]
        held = " AND ".join(f"{c} = {expect}" for c, (_, expect) in zip(counts, self.checks, strict=True)) or "true"
        verdict = f"CASE WHEN {held} THEN '0' ELSE '{GUARD_MARK}' || concat_ws(',', {', '.join(counts) or 'NULL'}) END"
        self.sql = f"WITH {', '.join(ctes)} SELECT CAST({verdict} AS INTEGER)"
        self.query, self.numbered = _driver_query(self.sql, conn.dialect.name, True)

    def failed(self, message: str, whats: Sequence[str]) -> str | None:
        """What failed, from the error the statement raised (None when it was not a check's)."""
        if GUARD_MARK not in message:
            return None
        met = message.split(GUARD_MARK, 1)[1].split('"', 1)[0].split(",")
        for (i, expect), got in zip(self.checks, met, strict=False):
            if int(got) != expect:
                return f"{whats[i]}: matched {got} rows, expected {expect}"
        return message

    def params(self, values: Sequence[Mapping[str, Any]]) -> dict[str, Any] | tuple[Any, ...]:
        """The parameters of every part (`values[i]` for part i), processed and renamed `p<i>_<name>`
        (as a tuple in `numbered` order when the placeholders are numbered)."""
        merged: dict[str, Any] = {}
        for i, (plan, given) in enumerate(zip(self.parts, values, strict=True)):
            merged.update({f"p{i}_{k}": v for k, v in plan.named(given).items()})
        return merged if self.numbered is None else tuple(merged[name] for name in self.numbered)


# A named psycopg placeholder, `%(name)s`.
_PLACEHOLDER = re.compile(r"%\(([^)]+)\)s")
_COMPOSED: dict[tuple[Any, ...], _Composed] = {}


def _gated(statement: Any) -> Callable[[str | None], Any]:
    """`statement` with a condition (SQL) added to its WHERE when there is one."""
    return lambda gate: statement if gate is None else statement.where(text(gate))


def _gated_insert(table: Table, keys: tuple[str, ...]) -> Callable[[str | None], Any]:
    """`INSERT INTO table (keys) SELECT :keys [WHERE condition]`: one row, written only if the
    condition holds."""
    row = select(*(bindparam(k, type_=table.c[k].type) for k in keys))
    return lambda gate: insert(table).from_select(list(keys), row if gate is None else row.where(text(gate)))


@contextmanager
def on_its_own(conn: Connection) -> Iterator[bool]:
    """Run the block's statements each in a transaction of its own (autocommit: one round trip, no
    BEGIN or COMMIT sent), when the connection's transaction has sent nothing yet on PostgreSQL:
    yields True then, False (nothing changed) otherwise. The caller's transaction block then finds
    nothing to commit."""
    driver = conn.connection.driver_connection if conn.dialect.name in PIPELINE_DIALECTS else None
    if driver is None or driver.autocommit or driver.info.transaction_status != TransactionStatus.IDLE:
        yield False
        return
    driver.autocommit = True
    try:
        yield True
    finally:
        if not driver.closed:  # a dropped connection is thrown away (invalidated), never reused
            driver.autocommit = False


def _as_one_statement(conn: Connection, queued: Sequence[tuple[Any, Any, int | None, str]]) -> bool:
    """Run the queued writes as one statement, those after a check conditional on it, and end the
    transaction in the same round trip: a transaction of its own when none is open (autocommit: no
    BEGIN or COMMIT sent), else the statement and the COMMIT in one pipeline. True when done,
    LeaseLost when a check failed (the statement failed: nothing of the transaction stays). False,
    with nothing run, where that cannot be: not PostgreSQL, rows an insert cannot take as they are."""
    driver = conn.connection.driver_connection if conn.dialect.name in PIPELINE_DIALECTS else None
    if driver is None or driver.autocommit:  # (a caller's autocommit: there is no transaction to end)
        return False
    parts: list[tuple[Any, Mapping[str, Any], int | None, str]] = []
    for pre, args, expect, what in queued:
        if isinstance(pre, PrecompiledInsert):
            if pre._statement(conn, args) is None:
                return False
            keys = tuple(sorted(args[0]))
            parts.extend(((pre.table, keys), row, None, "") for row in args)
        else:
            parts.append((pre, args, expect, what))
    key = tuple((id(part[0]) if isinstance(part[0], Precompiled) else part[0], part[2]) for part in parts)
    composed = _COMPOSED.get(key)
    if composed is None:
        builders = [
            (_gated_insert(*p) if isinstance(p, tuple) else _gated(p.statement), expect) for p, _a, expect, _w in parts
        ]
        composed = _COMPOSED[key] = _Composed(builders, conn)
    params = composed.params([args for _p, args, _e, _w in parts])
    with on_its_own(conn) as alone:
        try:
            if alone:
                _run(conn, composed, params).close()  # type: ignore[arg-type]
            else:
                with batch(conn) as b:
                    b._sent.append((None, params, _run(conn, composed, params)))  # type: ignore[arg-type]
                    b.commit()
        except DBAPIError as err:
            failed = composed.failed(str(err.orig), [what for _p, _a, _e, what in parts])
            if failed is None:
                raise
            raise LeaseLost(failed) from err
    stats["autocommitted"] += alone
    return True


class Queued:
    """The handle of a read queued in a `Deferred`: its `result` once the flush has sent it."""

    __slots__ = ("result",)

    def __init__(self) -> None:
        self.result: Pending | None = None


class Deferred:
    """Writes queued now and sent together at `flush()` (one round trip on PostgreSQL), each with the
    row count it must match; a mismatch raises LeaseLost, and the caller rolls the transaction back.

    How a completion stores its step's outcome and the steps that follow in one round trip: the
    finish (`... WHERE attempt = ours AND status = running`, exactly one row) is queued with what
    planning decided, and checked before the commit. Whoever runs other SQL on the connection
    before the flush must flush first (the queued writes come first in the transaction).
    """

    def __init__(self, conn: Connection) -> None:
        self.conn = conn
        self._queued: list[tuple[Precompiled | PrecompiledInsert, Any, int | None, str]] = []
        self._reads: dict[int, Queued] = {}  # position in _queued -> the handle of a queued read

    def __bool__(self) -> bool:
        return bool(self._queued)

    def write(self, pre: Precompiled, values: Mapping[str, Any], *, expect: int | None = None, what: str = "") -> None:
        """Queue a write; `expect`: the row count it must match (None: any)."""
        self._queued.append((pre, values, expect, what))

    def read(self, pre: Precompiled, values: Mapping[str, Any]) -> Queued:
        """Queue a read to run in its place among the writes; its result is on the handle once flushed."""
        handle = self._reads[len(self._queued)] = Queued()
        self._queued.append((pre, values, None, ""))
        return handle

    def insert(self, pre: PrecompiledInsert, rows: Sequence[Mapping[str, Any]]) -> None:
        """Queue a PrecompiledInsert of `rows`."""
        if rows:
            self._queued.append((pre, rows, None, ""))

    def flush(
        self, then: Precompiled | None = None, values: Mapping[str, Any] | None = None, *, commit: bool = False
    ) -> Pending | None:
        """Send the queued writes in order (one pipeline on PostgreSQL) and check their counts; `then`
        (with `values`) goes last in the same round trip, and its result is returned.

        `commit` ends the transaction in the same round trip on PostgreSQL, and nothing may run on the
        connection after such a flush. The writes go as one statement (`_as_one_statement`; its parts
        all see the tables as they were before it, so queue no two writes of one row): in a transaction
        of its own when none has started yet (no BEGIN, no COMMIT sent), else followed by the COMMIT
        in one pipeline; a count off fails the statement (nothing of the transaction stays) and raises
        LeaseLost here. With reads or `then`, the statements go one by one in the pipeline, the COMMIT
        after them only when none has a count to check; elsewhere, and on other dialects, the counts
        are checked here (LeaseLost: the caller rolls back) and the caller's block commits as usual."""
        queued, self._queued = self._queued, []
        reads, self._reads = self._reads, {}
        if not queued and then is None:
            return None
        if commit and not reads and then is None and _as_one_statement(self.conn, queued):
            return None
        # the COMMIT in the pipeline too, when nothing is left to check before it
        commit_here = commit and self.conn.dialect.name in PIPELINE_DIALECTS and all(q[2] is None for q in queued)
        checks: list[tuple[Pending, int, str]] = []
        with batch(self.conn) as b:
            for position, (pre, args, expect, what) in enumerate(queued):
                if isinstance(pre, PrecompiledInsert):
                    pre.queue(b, args)
                elif position in reads:
                    reads[position].result = b.send(pre, args)
                else:
                    pending = b.send(pre, args)
                    if expect is not None:
                        checks.append((pending, expect, what))
            last = b.send(then, values or {}) if then is not None else None
            if commit_here:
                b.commit()
        for pending, expect, what in checks:
            if (got := pending.count()) != expect:
                raise LeaseLost(f"{what}: matched {got} rows, expected {expect}")
        return last
