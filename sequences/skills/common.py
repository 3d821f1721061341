"""What every skill needs around its pure logic: org-scoped loading with errors that name what is
missing, the rep's names and time zone, and the LLM-or-offline switch.

A skill that cannot find the record it was given fails with a PermanentError that says which record
(never a KeyError): retrying would not make a deleted deal reappear.
"""

from __future__ import annotations

import uuid
from collections import namedtuple
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta
from typing import Any, NamedTuple, TypeVar
from zoneinfo import ZoneInfo

from pydantic import BaseModel
from sqlalchemy import (
    ARRAY,
    Connection,
    Executable,
    Row,
    Select,
    String,
    Uuid,
    all_,
    any_,
    bindparam,
    func,
    or_,
    select,
)
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql import operators, visitors
from sqlalchemy.sql.elements import BinaryExpression, BindParameter
from sqlalchemy.sql.functions import GenericFunction
from sqlalchemy.types import NullType

from worker.config import get_settings
from worker.engine.context import StepContext, StepResult
from worker.errors import PermanentError, TransientError
from worker.models import Activity, Org, User, of_org
from worker.precompiled import DIRECT_DIALECTS, Precompiled, on_its_own
from worker.slack import delivery
from worker.worktime import next_working_morning, zone

M = TypeVar("M")
T = TypeVar("T", bound=BaseModel)


def as_uuid(value: Any, what: str) -> uuid.UUID:
    """`value` as a UUID, or a PermanentError naming the field."""
    try:
        return value if isinstance(value, uuid.UUID) else uuid.UUID(str(value))
    except (ValueError, TypeError):
        raise PermanentError(f"{what} is not a valid id: {value!r}") from None


_LOADERS: dict[tuple[type, bool], Any] = {}
# The org's users (name, email) packed in one string by `_org_users_column`: a record separator
# between users, a unit separator between the fields (control characters no name or address has).
_USER_SEP, _FIELD_SEP = "\x1e", "\x1f"


class _string_agg(GenericFunction[str]):  # noqa: N801 - named like the SQL function
    """`string_agg(value, separator)`, `group_concat(value, separator)` on SQLite, with the separator
    a plain bind parameter (SQLAlchemy's aggregate_strings renders it into the SQL at each run, which
    the precompiled path cannot do)."""

    identifier = "proactive_string_agg"
    name = "string_agg"
    type = String()
    inherit_cache = True


@compiles(_string_agg, "sqlite")
def _group_concat(element: _string_agg, compiler: Any, **kw: Any) -> str:
    return f"group_concat{compiler.process(element.clause_expr, **kw)}"


def _org_users_column(org_id: Any) -> Any:
    """A scalar subquery reading the org's users (name, email) with another row, as one string."""
    packed = _string_agg(func.coalesce(User.name, "") + _FIELD_SEP + User.email, _USER_SEP)
    return select(packed).where(User.org_id == org_id).scalar_subquery().label("org_users")


def _loader(model: type, with_org_users: bool = False) -> Any:
    """`SELECT * FROM <table> WHERE id = :id AND org_id = :org` (with the org's users packed in a last
    column `org_users` when asked), built once per model."""
    key = (model, with_org_users)
    if key not in _LOADERS:
        table = model.__table__  # type: ignore[attr-defined]
        columns = [table, _org_users_column(table.c.org_id)] if with_org_users else [table]
        _LOADERS[key] = select(*columns).where(
            table.c.id == bindparam("b_id", type_=Uuid()), of_org(table.c.org_id, bindparam("b_org", type_=Uuid()))
        )
    return _LOADERS[key]


# Statements the skills run on the driver's cursor where the dialect allows (worker/precompiled.py:
# about a third of the CPU of Connection.execute), by (statement id, dialect): the statement (kept, so
# its id stays its own), its runner (None: Connection.execute) and the row type naming its columns.
_DIRECT: dict[tuple[int, str], tuple[Executable, Precompiled | None, Any]] = {}


def _direct(conn: Connection, statement: Executable) -> tuple[Precompiled | None, Any]:
    """The precompiled runner of `statement` on this connection and its row type; (None, None) where
    Connection.execute must run it (an IN-list parameter on SQLite, or of unknown type; an UPDATE that
    leaves onupdate columns). On PostgreSQL an IN-list runs as `= ANY(array)`."""
    key = (id(statement), conn.dialect.name)
    entry = _DIRECT.get(key)
    if entry is None:
        pre: Precompiled | None = None
        row_type = None
        runnable = statement
        if conn.dialect.name == "postgresql":
            runnable = _in_lists_as_any(statement)
        compiled = runnable.compile(dialect=conn.dialect)
        rendered_each_run = compiled.post_compile_params or compiled.literal_execute_params
        if conn.dialect.name in DIRECT_DIALECTS and not rendered_each_run:
            try:
                pre = Precompiled(runnable)
                keys = pre.keys(conn)  # compiles it: a result type it cannot process raises here
            except (ValueError, TypeError):  # an UPDATE leaving onupdate columns, a NUMERIC column
                pre = None
            if pre is not None and isinstance(statement, Select):
                row_type = namedtuple("Row", keys, rename=True)  # type: ignore[misc]
        entry = _DIRECT[key] = (statement, pre, row_type)
    return entry[1], entry[2]


def _in_lists_as_any(statement: Executable) -> Executable:
    """The statement with each `x IN (:list)` written `x = ANY(:list)` (and NOT IN as `!= ALL`): the
    list goes as one array parameter, so the statement compiles once and runs precompiled instead of
    being expanded by SQLAlchemy on every run (PostgreSQL). A list whose type is unknown stays IN."""

    def swap(element: Any, **_kw: Any) -> Any:
        if not (isinstance(element, BinaryExpression) and isinstance(element.right, BindParameter)):
            return None
        right = element.right
        wanted = {operators.in_op: any_, operators.not_in_op: all_}.get(element.operator)
        item = next((t for t in (element.left.type, right.type) if not isinstance(t, NullType)), None)
        if not right.expanding or wanted is None or item is None:
            return None
        array = bindparam(right.key, value=right.value, type_=ARRAY(item), unique=right.unique)
        return element.left == wanted(array) if wanted is any_ else element.left != wanted(array)

    return visitors.replacement_traverse(statement, {}, swap)  # type: ignore[no-any-return]


def rows(ctx: StepContext, statement: Executable, **params: Any) -> list[Any]:
    """Every row of a Core SELECT (built once, with bind parameters) in the step's transaction, with
    its columns as attributes."""
    with ctx.transaction() as conn, _alone_if_first(conn, statement):
        pre, row_type = _direct(conn, statement)
        if pre is None:
            return list(conn.execute(statement, params))
        return [row_type._make(r) for r in pre.rows(conn, params)]


@contextmanager
def _alone_if_first(conn: Connection, statement: Executable) -> Iterator[None]:
    """Run a plain SELECT that comes before the step's first write on its own, without BEGIN and
    COMMIT (PostgreSQL, autocommit for that statement): a read-only skill then costs one round trip
    per read instead of two more for its transaction, and its COMMIT finds nothing to do.

    Under READ COMMITTED each statement sees its own snapshot anyway, so the reads see what they
    would have seen in the transaction; a plain SELECT takes no row lock to hold. The step's writes
    still go in one transaction: once one has run, the transaction is open and this does nothing.
    """
    if not isinstance(statement, Select) or statement._for_update_arg is not None:
        yield
        return
    with on_its_own(conn):
        yield


def first(ctx: StepContext, statement: Executable, **params: Any) -> Any | None:
    """The first row of a Core SELECT in the step's transaction, or None."""
    found = rows(ctx, statement, **params)
    return found[0] if found else None


def scalars(ctx: StepContext, statement: Executable, **params: Any) -> list[Any]:
    """The first column of every row of a Core SELECT in the step's transaction."""
    return [r[0] for r in rows(ctx, statement, **params)]


def execute(ctx: StepContext, statement: Executable, **params: Any) -> int:
    """Run a Core write statement in the step's transaction; the number of rows it matched."""
    with ctx.transaction() as conn:
        return execute_on(conn, statement, **params)


def execute_on(conn: Connection, statement: Executable, **params: Any) -> int:
    """`execute` on a connection the caller holds (several writes in one `ctx.transaction()` block)."""
    pre, _row_type = _direct(conn, statement)
    if pre is None:
        return conn.execute(statement, params).rowcount
    return pre.count(conn, params)


def load(ctx: StepContext, model: type[M], record_id: Any, what: str, *, with_org_users: bool = False) -> M:
    """The org's `model` row with this id (a read-only row with the model's attribute names);
    PermanentError("<what> <id> not found") if none. `with_org_users`: the org's users come in the
    same statement (for `internal_names` / `internal_emails` later in the step)."""
    rid = as_uuid(record_id, what)
    row = first(ctx, _loader(model, with_org_users), b_id=rid, b_org=ctx.org_id)
    if row is None:
        raise PermanentError(f"{what} {rid} not found in this org (deleted?)")
    if with_org_users:
        packed = [u.split(_FIELD_SEP, 1) for u in row.org_users.split(_USER_SEP)] if row.org_users else []
        ctx.memo.setdefault("org_users", [_OrgUser(name or None, email) for name, email in packed])
    return row  # type: ignore[return-value]


_ACTIVITIES: dict[tuple[bool, bool, bool, int], Any] = {}


def recent_activities(
    ctx: StepContext,
    *,
    since: datetime,
    limit: int,
    contact_ids: Iterable[uuid.UUID] = (),
    company_id: uuid.UUID | None = None,
    deal_id: Any = None,
) -> list[Row[Any]]:
    """The org's activities (kind, direction, subject, body, occurred_at) since `since` with any of
    these contacts, this company or this deal, newest first (at most `limit`); none when nobody is
    named (not the whole org's activity)."""
    contacts = list(contact_ids)
    shape = (bool(contacts), bool(company_id), bool(deal_id), limit)
    if not any(shape[:3]):
        return []
    if shape not in _ACTIVITIES:
        who = [
            cond
            for cond, wanted in (
                (Activity.contact_id.in_(bindparam("b_contacts", expanding=True)), shape[0]),
                (Activity.company_id == bindparam("b_company", type_=Uuid()), shape[1]),
                (Activity.deal_id == bindparam("b_deal", type_=Uuid()), shape[2]),
            )
            if wanted
        ]
        _ACTIVITIES[shape] = (
            select(Activity.kind, Activity.direction, Activity.subject, Activity.body, Activity.occurred_at)
            .where(
                Activity.org_id == bindparam("b_org", type_=Uuid()),
                or_(*who),
                Activity.occurred_at >= bindparam("b_since", type_=Activity.occurred_at.type),
            )
            .order_by(Activity.occurred_at.desc())
            .limit(limit)
        )
    params: dict[str, Any] = {"b_org": ctx.org_id, "b_since": since}
    if contacts:
        params["b_contacts"] = contacts
    if company_id:
        params["b_company"] = company_id
    if deal_id:
        params["b_deal"] = as_uuid(deal_id, "deal")
    return rows(ctx, _ACTIVITIES[shape], **params)


def load_optional(ctx: StepContext, model: type[M], record_id: Any) -> M | None:
    """The org's row with this id, or None when the id is empty or unknown."""
    if not record_id:
        return None
    try:
        return load(ctx, model, record_id, model.__name__)
    except PermanentError:
        return None


def require(value: M | None, message: str) -> M:
    """`value`, or a PermanentError with `message` when it is missing/empty."""
    if value is None or value == "" or value == []:
        raise PermanentError(message)
    return value


def _memo(ctx: StepContext, key: str, compute: Callable[[], Any]) -> Any:
    if key not in ctx.memo:
        ctx.memo[key] = compute()
    return ctx.memo[key]


_ORG = select(Org.timezone, Org.settings).where(Org.id == bindparam("b_org", type_=Uuid()))
# The rep's row with the org's time zone and settings (the org row `org()` would read next).
_REP = select(
    User.__table__,
    _ORG.where(Org.id == User.org_id).with_only_columns(Org.timezone).scalar_subquery().label("org_timezone"),
    _ORG.where(Org.id == User.org_id).with_only_columns(Org.settings).scalar_subquery().label("org_settings"),
).where(User.id == bindparam("b_id", type_=Uuid()), of_org(User.org_id, bindparam("b_org", type_=Uuid())))


def rep(ctx: StepContext, user_id: Any = None) -> User:
    """The rep the job is for (or `user_id`); looked up once per step, with the org's time zone and
    settings (so `rep_zone` and `org_settings` need no read of their own)."""
    uid = user_id or require(ctx.user_id, "this job has no user")

    def read() -> User:
        rid = as_uuid(uid, "user")
        row = first(ctx, _REP, b_id=rid, b_org=ctx.org_id)
        if row is None:
            raise PermanentError(f"user {rid} not found in this org (deleted?)")
        ctx.memo.setdefault("org", _OrgRow(row.org_timezone, row.org_settings))
        return row  # type: ignore[no-any-return]

    return _memo(ctx, f"user:{uid}", read)


class _OrgRow(NamedTuple):
    """The org's columns the skills read (as `org()` returns them)."""

    timezone: str | None
    settings: dict[str, Any] | None


class _OrgUser(NamedTuple):
    """A user of the org as `internal_names` / `internal_emails` read it."""

    name: str | None
    email: str


_ORG_USERS = select(User.name, User.email).where(User.org_id == bindparam("b_org", type_=Uuid()))


def org(ctx: StepContext) -> Row[Any] | None:
    """The org's (timezone, settings); read once per step."""
    return _memo(ctx, "org", lambda: first(ctx, _ORG, b_org=ctx.org_id))


def org_settings(ctx: StepContext) -> dict[str, Any]:
    """The org's settings ({} when none)."""
    row = org(ctx)
    return (row.settings if row is not None else None) or {}


def rep_zone(ctx: StepContext, user: User | None = None) -> ZoneInfo:
    """The rep's time zone (the org's when the rep has none or an invalid one)."""
    row = org(ctx)
    return zone(user.timezone if user else None, (row.timezone if row is not None else None) or "UTC")


def _org_users(ctx: StepContext) -> list[Row[Any]]:
    """(name, email) of the org's users; read once per step."""
    return _memo(ctx, "org_users", lambda: rows(ctx, _ORG_USERS, b_org=ctx.org_id))


def internal_names(ctx: StepContext) -> set[str]:
    """Full names of the org's users (the reps), to tell rep speech from prospect speech."""
    return {u.name for u in _org_users(ctx) if u.name}


def internal_emails(ctx: StepContext) -> set[str]:
    """The org's users' email addresses, lower-cased."""
    return {u.email.lower() for u in _org_users(ctx)}


def first_name(name: str | None) -> str:
    """First word of a name ("there" when unknown)."""
    return (name or "").split()[0] if (name or "").split() else "there"


def think(
    ctx: StepContext, schema: type[T], system: str, user: str | Callable[[], str], offline: Callable[[], T]
) -> StepResult:
    """Ask the LLM for `schema` when one is configured, else (or on the last attempt after bad
    output) use the offline logic (invalid JSON -> transient error, then the offline result). `user`,
    the prompt, may be a function: it is then built only when a model is asked."""
    if not get_settings().llm_base_url.strip():  # llm.llm_enabled(), without importing the client
        return StepResult(output=offline())
    from worker.clients import llm  # httpx (~7 MiB) loads only in a worker that talks to a model

    ctx.checkpoint()  # no transaction stays open across the model's answer
    try:
        result = llm.complete_json(schema, system, user if isinstance(user, str) else user())
    except llm.InvalidLLMOutput:
        if ctx.attempt >= 2:
            return StepResult(output=offline())
        raise
    except TransientError:
        if ctx.attempt >= 3:
            return StepResult(output=offline())
        raise
    return StepResult(output=result.value, cost_usd=result.cost_usd, tokens=result.tokens_in + result.tokens_out)


def unique(items: Iterable[str]) -> list[str]:
    """Items in order without repeats (case-insensitive)."""
    seen: set[str] = set()
    out = []
    for item in items:
        key = item.strip().lower()
        if key and key not in seen:
            seen.add(key)
            out.append(item)
    return out


SEND_DECISIONS = frozenset({"send_now", "edit", "approve", "approve_send"})


def send_after(review_step: str) -> Callable[[Any], Any]:
    """A `start_after` for a send step behind an email approval: 30 s after "send now"/"edit" (the
    Undo window), the chosen instant or the rep's next working morning for "send later"."""

    def start_after(w: Any) -> datetime | None:
        decided = w.output(review_step, "decided_at")
        decision = w.output(review_step, "decision")
        if not decided:
            return None
        decided_at = datetime.fromisoformat(decided)
        data = w.output(review_step, "data") or {}
        if decision == "send_later":
            preview = w.output(review_step, "preview") or {}
            tz = zone(preview.get("timezone"))
            if data.get("send_at"):
                try:
                    send_at = datetime.fromisoformat(str(data["send_at"]))
                except ValueError:
                    send_at = None  # unreadable: fall back to the rep's next working morning
                if send_at is not None:
                    return send_at if send_at.tzinfo else send_at.replace(tzinfo=tz)  # a bare time is the rep's
            return next_working_morning(decided_at, tz)
        if decision in SEND_DECISIONS:  # the Undo window (30 s; PROACTIVE_UNDO_WINDOW_S)
            return decided_at + timedelta(seconds=get_settings().undo_window_s)
        return None

    return start_after


def edited(review: dict[str, Any] | None, key: str, default: Any) -> Any:
    """The value of `key` after an Edit (the decision data), else the draft's."""
    data = (review or {}).get("data") or {}
    value = data.get(key)
    return value if value not in (None, "") else default


def zone_of(name: str | None) -> ZoneInfo:
    """ZoneInfo for a stored zone name (UTC when missing or unknown)."""
    return zone(name)


def notify(
    ctx: StepContext,
    kind: str,
    message: dict[str, Any],
    *,
    user_id: Any,
    key: str = "",
    urgent: bool = False,
    not_before: Any = None,
) -> Any:
    """Queue a Slack message to a user once per job step (and `key`); delivery is handed to a worker
    when the transaction commits. In dry-run (smoke, demo) it only reaches the console inbox.
    Returns the outbox id, or None when this step already queued it (a retry)."""
    dedupe = f"{kind}:{ctx.job_id}:{ctx.step}:{ctx.iteration}:{key}"
    with ctx.transaction() as conn:
        return delivery.enqueue_message(
            conn,
            ctx.org_id,
            kind=kind,
            message=message,
            dedupe_key=dedupe,
            now=ctx.now,
            user_id=as_uuid(user_id, "user") if user_id else None,
            job_id=ctx.job_id,
            console=ctx.dry_run,
            urgent=urgent,
            not_before=not_before,
        )
