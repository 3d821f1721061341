"""How sequences/skills/common.py runs a skill's statements, on both backends: the same rows as
Connection.execute; on PostgreSQL an IN-list runs as `= ANY(array)` (precompiled), and the reads that
come before the step's first write run without a transaction of their own, while the step's writes
still commit or roll back together."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import UTC, datetime

import pytest
from psycopg.pq import TransactionStatus
from sqlalchemy import Column, Connection, Integer, MetaData, String, Table, Uuid, bindparam, insert, select

from sequences.skills import common
from tests.conftest import Backend
from worker.db import get_engine, transaction
from worker.engine.context import StepContext

scratch = MetaData()
things = Table(
    f"skill_statements_probe_{uuid.uuid4().hex[:8]}",
    scratch,
    Column("id", Uuid, primary_key=True),
    Column("name", String(40), nullable=False),
    Column("n", Integer, nullable=False),
)
_ID = bindparam("b_id", type_=Uuid())
BY_ID = select(things.c.name, things.c.n).where(things.c.id == _ID)
LOCKED = select(things.c.name).where(things.c.id == _ID).with_for_update()
BY_IDS = select(things.c.name).where(things.c.id.in_(bindparam("b_ids", expanding=True))).order_by(things.c.n)
NOT_NAMED = select(things.c.name).where(things.c.name.not_in(["a", "b"])).order_by(things.c.n)
ADD = insert(things).values(id=bindparam("b_id", type_=Uuid()), name=bindparam("b_name"), n=bindparam("b_n"))

ROWS = [{"id": uuid.uuid4(), "name": name, "n": n} for n, name in enumerate(("a", "b", "c", "d"))]


@pytest.fixture(scope="module")
def table(backend: Backend) -> Iterator[Table]:
    scratch.create_all(get_engine())
    with transaction() as conn:
        conn.execute(insert(things), ROWS)
    try:
        yield things
    finally:
        scratch.drop_all(get_engine())


@pytest.fixture
def step(table: Table) -> Iterator[StepContext]:
    """A skill's context on a connection of its own, as the engine gives it."""
    with get_engine().connect() as conn:
        ctx = StepContext(
            org_id=uuid.uuid4(),
            user_id=None,
            job_id=uuid.uuid4(),
            step_run_id=uuid.uuid4(),
            event_type="probe",
            step="probe",
            attempt=1,
            iteration=0,
            payload={},
            now=datetime.now(UTC),
            connection=conn,
        )
        try:
            yield ctx
        finally:
            ctx.close_scope(commit=False)


def _status(conn: Connection | None) -> TransactionStatus | None:
    """The PostgreSQL session's transaction status (None on SQLite)."""
    assert conn is not None
    if conn.dialect.name != "postgresql":
        return None
    return conn.connection.driver_connection.info.transaction_status  # type: ignore[union-attr]


def test_in_lists_return_what_connection_execute_returns(step: StepContext, backend: Backend):
    ids = [ROWS[2]["id"], ROWS[0]["id"], uuid.uuid4()]
    assert common.scalars(step, BY_IDS, b_ids=ids) == ["a", "c"]
    assert common.scalars(step, BY_IDS, b_ids=[]) == []
    assert common.scalars(step, NOT_NAMED) == ["c", "d"]
    with step.transaction() as conn:  # (SQLite: the step's transaction holds the write lock)
        assert list(conn.execute(BY_IDS, {"b_ids": ids}).scalars()) == ["a", "c"]
        runner, _row = common._direct(conn, BY_IDS)
    assert (runner is not None) == (backend.name == "postgres")  # = ANY on PostgreSQL: precompiled


def test_reads_before_the_first_write_open_no_transaction(step: StepContext, backend: Backend):
    row = common.first(step, BY_ID, b_id=ROWS[1]["id"])
    assert (row.name, row.n) == ("b", 1)
    if backend.name == "postgres":
        assert _status(step.connection) == TransactionStatus.IDLE  # no BEGIN was sent for it
        assert step.connection.connection.driver_connection.autocommit is False  # type: ignore[union-attr]


def test_a_locking_read_opens_the_transaction(step: StepContext, backend: Backend):
    assert common.scalars(step, LOCKED, b_id=ROWS[0]["id"]) == ["a"]
    if backend.name == "postgres":
        assert _status(step.connection) == TransactionStatus.INTRANS  # the lock is held until the step ends


def test_the_writes_of_a_step_still_roll_back_together(step: StepContext, backend: Backend):
    first, second = uuid.uuid4(), uuid.uuid4()
    assert common.first(step, BY_ID, b_id=ROWS[3]["id"]) is not None
    common.execute(step, ADD, b_id=first, b_name="new", b_n=10)
    if backend.name == "postgres":
        assert _status(step.connection) == TransactionStatus.INTRANS
    assert common.first(step, BY_ID, b_id=first) is not None  # a read after a write sees it: same transaction
    common.execute(step, ADD, b_id=second, b_name="new", b_n=11)
    step.close_scope(commit=False)  # the skill raised
    with transaction() as conn:
        assert conn.execute(select(things.c.id).where(things.c.id.in_([first, second]))).all() == []


def test_the_writes_of_a_step_commit_together(step: StepContext):
    added = uuid.uuid4()
    assert common.first(step, BY_ID, b_id=added) is None
    common.execute(step, ADD, b_id=added, b_name="kept", b_n=12)
    step.close_scope(commit=True)
    with transaction() as conn:
        assert conn.execute(select(things.c.name).where(things.c.id == added)).scalar() == "kept"


def test_the_org_users_read_with_a_row_are_those_read_alone(step: StepContext, table: Table):
    from tests.support.engine import make_org
    from worker.models import CalendarEvent, User

    org = make_org()
    event_id = uuid.uuid4()
    with transaction() as conn:
        conn.execute(insert(User.__table__), {"id": uuid.uuid4(), "org_id": org.id, "email": "Odd@Ex.com", "name": ""})
        conn.execute(
            insert(CalendarEvent.__table__),
            {"id": event_id, "org_id": org.id, "user_id": org.rep, "title": "t"}
            | {"start_at": step.now, "end_at": step.now},
        )
    step.org_id = org.id
    row = common.load(step, CalendarEvent, event_id, "calendar event", with_org_users=True)
    assert row.title == "t"
    packed = (common.internal_names(step), common.internal_emails(step))
    step.memo.clear()
    assert packed == (common.internal_names(step), common.internal_emails(step))  # read alone this time
    assert packed[0] == {"rep", "other_rep", "admin"} and "odd@ex.com" in packed[1] and len(packed[1]) == 4
