"""worker/precompiled.py against Connection.execute on both backends: the same rows and types back,
the same rowcounts, listeners told, DBAPI errors wrapped as SQLAlchemy's (a terminated
connection: tests/integration/test_db_reconnect.py), defaults filled where a row leaves them out."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from sqlalchemy import (
    Boolean,
    Column,
    Float,
    Integer,
    MetaData,
    Numeric,
    String,
    Table,
    Uuid,
    bindparam,
    event,
    select,
    update,
)
from sqlalchemy.exc import IntegrityError

from tests.conftest import Backend
from worker import precompiled
from worker.db import get_engine, transaction
from worker.models import JSONType, UTCDateTime
from worker.precompiled import Deferred, LeaseLost, Precompiled, PrecompiledInsert, batch

scratch = MetaData()
things = Table(
    f"precompiled_probe_{uuid.uuid4().hex[:8]}",
    scratch,
    Column("id", Uuid, primary_key=True),
    Column("name", String(40), nullable=False),
    Column("n", Integer, default=7),
    Column("at", UTCDateTime, nullable=True),
    Column("doc", JSONType, nullable=True),
    Column("flag", Boolean, default=False),
    Column("score", Float, nullable=True),  # their result processors need the driver's column type
    Column("amount", Numeric(12, 2), nullable=True),
)
BY_ID = select(things).where(things.c.id == bindparam("b_id", type_=Uuid()))
RENAME = update(things).where(things.c.n >= bindparam("b_min", type_=Integer())).values(name=bindparam("b_name"))
# A rename of the rows whose n is in [b_lo, b_hi]: the tests below each write their own range.
RENAME_RANGE = (
    update(things)
    .where(things.c.n.between(bindparam("b_lo", type_=Integer()), bindparam("b_hi", type_=Integer())))
    .values(name=bindparam("b_name"))
)
WHEN = datetime(2026, 12, 6, 6, 30, 1, 123456, tzinfo=UTC)


@pytest.fixture(scope="module")
def table(backend: Backend) -> Iterator[Table]:
    scratch.create_all(get_engine())
    try:
        yield things
    finally:
        scratch.drop_all(get_engine())


def row(**values: object) -> dict[str, object]:
    base = {"id": uuid.uuid4(), "name": "a", "n": 1, "at": WHEN, "doc": {"k": [1, "two", None]}, "flag": True}
    return base | {"score": 0.25, "amount": Decimal("1234.50")} | values


def test_rows_and_types_are_those_of_connection_execute(table: Table):
    full, empty = row(), row(at=None, doc=None, flag=False, score=None, amount=None)
    with transaction() as conn:
        PrecompiledInsert(table).run(conn, [full, empty])
    by_id = Precompiled(BY_ID)
    with transaction() as conn:
        for r in (full, empty):
            fast = by_id.first(conn, {"b_id": r["id"]})
            slow = tuple(conn.execute(BY_ID, {"b_id": r["id"]}).one())
            assert fast == slow == tuple(r.values())
            assert fast is not None and [type(v) for v in fast] == [type(v) for v in slow]
        assert by_id.keys(conn) == ("id", "name", "n", "at", "doc", "flag", "score", "amount")
        assert by_id.first(conn, {"b_id": uuid.uuid4()}) is None
    got = dict(zip(("id", "name", "n", "at", "doc", "flag", "score", "amount"), fast, strict=True))
    assert got["at"] is None and got["doc"] is None


def test_a_write_counts_the_rows_it_matched(table: Table):
    with transaction() as conn:
        PrecompiledInsert(table).run(conn, [row(n=100), row(n=101), row(n=5)])
        assert Precompiled(RENAME).count(conn, {"b_min": 100, "b_name": "big"}) == 2
        assert Precompiled(RENAME).count(conn, {"b_min": 10_000, "b_name": "none"}) == 0
        names = conn.execute(select(things.c.name).where(things.c.n >= 100)).scalars().all()
    assert names == ["big", "big"]


def test_a_literal_percent_a_repeated_parameter_and_a_long_statement_run_as_written(table: Table):
    """On PostgreSQL the SQL goes with numbered placeholders on a RawCursor (worker/precompiled.py
    `_numbered`): a `%` in the SQL, a parameter used twice and a statement over psycopg's 4 KiB /
    50-parameter caching limits must mean what they mean through Connection.execute."""
    r = row(name="50% off", n=42)
    with transaction() as conn:
        PrecompiledInsert(table).run(conn, [r])
    twice = select(things.c.name, (things.c.n + bindparam("b_k", type_=Integer())).label("m")).where(
        things.c.name.like("%\\% off", escape="\\"), things.c.n == bindparam("b_k", type_=Integer()) - 0
    )
    many = select(things.c.id).where(
        things.c.n.in_([bindparam(f"b_{i}", type_=Integer()) for i in range(60)]),
        things.c.name == bindparam("b_name", type_=String()),
    )
    with transaction() as conn:
        assert Precompiled(twice).rows(conn, {"b_k": 42}) == [("50% off", 84)]
        assert tuple(conn.execute(twice, {"b_k": 42}).one()) == ("50% off", 84)
        values = {f"b_{i}": 1000 + i for i in range(60)} | {"b_59": 42, "b_name": "50% off"}
        assert Precompiled(many).rows(conn, values) == [(r["id"],)]


def test_listeners_see_each_statement(table: Table):
    seen: list[str] = []

    def listen(_conn, _cursor, statement, _params, _context, _many) -> None:  # type: ignore[no-untyped-def]
        seen.append(statement.split()[0])

    event.listen(get_engine(), "before_cursor_execute", listen)
    try:
        with transaction() as conn:
            r = row()
            PrecompiledInsert(table).run(conn, [r])
            Precompiled(BY_ID).first(conn, {"b_id": r["id"]})
            Precompiled(RENAME).count(conn, {"b_min": 0, "b_name": "x"})
    finally:
        event.remove(get_engine(), "before_cursor_execute", listen)
    assert [s for s in seen if s in ("INSERT", "SELECT", "UPDATE")] == ["INSERT", "SELECT", "UPDATE"]


def test_a_driver_error_is_sqlalchemys_and_the_connection_recovers(table: Table):
    r = row()
    with transaction() as conn:
        PrecompiledInsert(table).run(conn, [r])
    with pytest.raises(IntegrityError), transaction() as conn:
        PrecompiledInsert(table).run(conn, [row(id=r["id"])])
    with transaction() as conn:
        assert Precompiled(BY_ID).first(conn, {"b_id": r["id"]}) is not None


def test_rows_without_their_defaults_get_them_filled(table: Table):
    r = {"id": uuid.uuid4(), "name": "defaults", "at": WHEN + timedelta(hours=1)}
    with transaction() as conn:
        PrecompiledInsert(table).run(conn, [r])
        got = Precompiled(BY_ID).first(conn, {"b_id": r["id"]})
    assert got is not None and got[2] == 7 and got[5] is False


def test_an_update_that_leaves_an_onupdate_column_out_is_refused_when_built():
    from worker.models import Integration

    table = Integration.__table__
    with pytest.raises(ValueError, match="onupdate columns itself: \\['updated_at'\\]"):
        Precompiled(update(table).values(status="revoked"))
    Precompiled(update(table).values(status="revoked", updated_at=WHEN))  # sets it: accepted


def test_a_batch_returns_what_the_statements_return_one_by_one(table: Table, backend: Backend):
    r = row(n=500)
    with transaction() as conn:
        PrecompiledInsert(table).run(conn, [r])
    before = dict(precompiled.stats)
    with transaction() as conn:
        with batch(conn) as b:
            got = b.send(Precompiled(BY_ID), {"b_id": r["id"]})
            renamed = b.send(Precompiled(RENAME), {"b_min": 500, "b_name": "batched"})
            again = b.send(Precompiled(BY_ID), {"b_id": r["id"]})  # runs after the UPDATE: sees it
            nothing = b.send(Precompiled(BY_ID), {"b_id": uuid.uuid4()})
        assert got.first() == tuple(r.values())
        assert renamed.count() == 1
        assert again.rows() == [(r["id"], "batched", *tuple(r.values())[2:])]
        assert nothing.first() is None and nothing.rows() == []
    sent = {k: precompiled.stats[k] - before.get(k, 0) for k in ("batches", "batched", "batched_begins")}
    pipelined = backend.name == "postgres"
    assert sent == ({"batches": 1, "batched": 4, "batched_begins": 1} if pipelined else dict.fromkeys(sent, 0))


def test_an_error_in_a_batch_is_sqlalchemys_and_rolls_the_transaction_back(table: Table):
    r = row(n=600)
    with transaction() as conn:
        PrecompiledInsert(table).run(conn, [r])
    clash = Precompiled(update(things).where(things.c.n == 600).values(id=bindparam("b_other", type_=Uuid())))
    other = row(n=601)
    with transaction() as conn:
        PrecompiledInsert(table).run(conn, [other])

    def rename_then_clash() -> None:
        with transaction() as conn, batch(conn) as b:
            b.send(Precompiled(RENAME), {"b_min": 600, "b_name": "rolled back"})
            b.send(clash, {"b_other": other["id"]})  # primary key taken

    with pytest.raises(IntegrityError):
        rename_then_clash()
    with transaction() as conn:
        names = conn.execute(select(things.c.name).where(things.c.n >= 600).order_by(things.c.n)).scalars().all()
    assert names == ["a", "a"]


def _names(low: int) -> list[str]:
    """The names of the rows whose n is in [low, low + 49], in order of n."""
    with transaction() as conn:
        query = select(things.c.name).where(things.c.n.between(low, low + 49)).order_by(things.c.n)
        return list(conn.execute(query).scalars())


def test_a_committing_flush_stores_its_writes_in_one_round_trip(table: Table, backend: Backend):
    """Checks first, then the writes that depend on them: one statement in its own transaction on
    PostgreSQL (no BEGIN, no COMMIT); the writes and the transaction's commit elsewhere."""
    with transaction() as conn:
        PrecompiledInsert(table).run(conn, [row(n=700)])
    before = dict(precompiled.stats)
    with transaction() as conn:
        later = Deferred(conn)
        later.write(
            Precompiled(RENAME_RANGE), {"b_lo": 700, "b_hi": 700, "b_name": "committed"}, expect=1, what="the 700 row"
        )
        later.insert(PrecompiledInsert(table), [row(n=701, name="new"), row(n=702, name="newer")])
        later.flush(commit=True)
    assert _names(700) == ["committed", "new", "newer"]
    sent = {k: precompiled.stats[k] - before.get(k, 0) for k in ("autocommitted", "batches")}
    assert sent == ({"autocommitted": 1, "batches": 0} if backend.name == "postgres" else dict.fromkeys(sent, 0))


def test_a_committing_flush_in_an_open_transaction_commits_in_its_pipeline(table: Table, backend: Backend):
    with transaction() as conn:
        PrecompiledInsert(table).run(conn, [row(n=750)])
    before = dict(precompiled.stats)
    with transaction() as conn:
        assert Precompiled(BY_ID).first(conn, {"b_id": uuid.uuid4()}) is None  # the transaction is open now
        later = Deferred(conn)
        later.write(
            Precompiled(RENAME_RANGE), {"b_lo": 750, "b_hi": 799, "b_name": "committed"}, expect=1, what="the 750 row"
        )
        later.flush(commit=True)
    assert _names(750) == ["committed"]
    sent = {k: precompiled.stats[k] - before.get(k, 0) for k in ("autocommitted", "batches", "batched_commits")}
    pipelined = backend.name == "postgres"
    assert sent == ({"autocommitted": 0, "batches": 1, "batched_commits": 1} if pipelined else dict.fromkeys(sent, 0))


def test_a_committing_flush_whose_check_fails_writes_nothing_after_it(table: Table):
    with transaction() as conn:
        PrecompiledInsert(table).run(conn, [row(n=900), row(n=901)])

    def rename_expecting_one() -> None:
        with transaction() as conn:
            later = Deferred(conn)
            later.write(
                Precompiled(RENAME_RANGE),
                {"b_lo": 900, "b_hi": 999, "b_name": "never"},
                expect=1,
                what="one of the 900s",
            )
            later.insert(PrecompiledInsert(table), [row(n=902, name="never")])
            later.flush(commit=True)

    with pytest.raises(LeaseLost, match=r"^one of the 900s: matched 2 rows, expected 1$"):
        rename_expecting_one()
    assert _names(900) == ["a", "a"]


def test_a_committing_flush_whose_count_is_off_stores_nothing(table: Table, backend: Backend):
    """A write queued before the check is undone with it. On PostgreSQL the flush is one statement
    whose parts all see the table as it was before it (the UPDATE does not see the row the INSERT
    before it adds: 2 rows); elsewhere they run one after the other (3)."""
    with transaction() as conn:
        PrecompiledInsert(table).run(conn, [row(n=800), row(n=801)])

    def rename_expecting_one() -> None:
        with transaction() as conn:
            later = Deferred(conn)
            later.insert(PrecompiledInsert(table), [row(n=802, name="never")])
            later.write(
                Precompiled(RENAME_RANGE),
                {"b_lo": 800, "b_hi": 899, "b_name": "never"},
                expect=1,
                what="one of the 800s",
            )
            later.flush(commit=True)

    matched = 2 if backend.name == "postgres" else 3
    with pytest.raises(LeaseLost, match=rf"^one of the 800s: matched {matched} rows, expected 1$"):
        rename_expecting_one()
    assert _names(800) == ["a", "a"]  # neither the insert before the check nor the rename stayed
    with transaction() as conn:  # the connection is usable again
        assert conn.execute(select(things.c.n).where(things.c.n == 800)).scalar() == 800


def test_a_checked_write_with_returning_counts_the_rows_it_returned(table: Table):
    """An UPDATE ... RETURNING queued with a count to match (a decision and its audit row) is checked
    by the rows it matched on every backend: sqlite3 reports such a statement's rowcount only once its
    rows are fetched."""
    with transaction() as conn:
        PrecompiledInsert(table).run(conn, [row(n=300)])
    renamed = Precompiled(RENAME_RANGE.returning(things.c.id))

    def rename(lo: int, hi: int) -> None:
        with transaction() as conn:
            later = Deferred(conn)
            later.write(renamed, {"b_lo": lo, "b_hi": hi, "b_name": "seven"}, expect=1, what="the 300")
            later.insert(PrecompiledInsert(table), [row(n=310, name="with it")])
            later.flush(commit=True)

    rename(300, 300)
    assert _names(300) == ["seven", "with it"]
    with pytest.raises(LeaseLost, match=r"^the 300: matched 0 rows, expected 1$"):
        rename(301, 309)
    assert _names(300) == ["seven", "with it"]  # the insert queued with the failed check did not stay
