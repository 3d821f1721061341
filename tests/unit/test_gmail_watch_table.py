"""The pure parts of worker.google.watch: Gmail's watch answer and the renewal table."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

import pytest

from worker.errors import PermanentError
from worker.google.watch import RenewResult, format_table, parse_watch_response, watch_body

OLD = datetime(2026, 3, 1, 8, 30, tzinfo=UTC)
NEW = datetime(2026, 3, 8, 9, 15, 42, tzinfo=UTC)


def result(
    account: str | None, *, ok: bool = True, error: str | None = None, old: datetime | None = OLD
) -> RenewResult:
    return RenewResult(uuid.uuid4(), uuid.uuid4(), uuid.uuid4(), account, old, NEW if ok else None, ok, error)


def test_watch_answer_expiration_is_epoch_milliseconds() -> None:
    answer = {"historyId": "1234567890", "expiration": "1431990098200"}  # real-payloads gmail_watch_response.json
    expiry, history_id = parse_watch_response(answer)
    assert expiry == datetime(2015, 5, 18, 23, 1, 38, 200_000, tzinfo=UTC)
    assert history_id == "1234567890"


def test_watch_answer_with_numbers_or_without_history_id() -> None:
    expiry, history_id = parse_watch_response({"expiration": 1431990098200})
    assert expiry.year == 2015 and history_id is None


@pytest.mark.parametrize("answer", [{}, {"expiration": "soon"}, {"expiration": None}, None])
def test_watch_answer_without_a_valid_expiration_is_permanent(answer: object) -> None:
    with pytest.raises(PermanentError, match="without a valid expiration"):
        parse_watch_response(answer)


def test_watch_body_asks_for_inbox_mail_only() -> None:
    assert watch_body("projects/p/topics/t") == {
        "topicName": "projects/p/topics/t",
        "labelIds": ["INBOX"],
        "labelFilterBehavior": "include",
    }


def test_format_table_aligns_user_expiries_and_result() -> None:
    table = format_table(
        [
            result("alice@example.com"),
            result("b@example.com", ok=False, error="google HTTP 403:\nUser not authorized"),
            result("new.rep.with.a.long.address@example.com", old=None),
        ]
    )
    lines = table.splitlines()
    assert lines == [
        "USER                                     OLD EXPIRY            NEW EXPIRY            RESULT",
        "alice@example.com                        2026-03-01 08:30 UTC  2026-03-08 09:15 UTC  ok",
        "b@example.com                            2026-03-01 08:30 UTC  -                     "
        "google HTTP 403: User not authorized",
        "new.rep.with.a.long.address@example.com  never                 2026-03-08 09:15 UTC  ok",
    ]


def test_format_table_shortens_long_errors_and_names_accountless_rows() -> None:
    row = result(None, ok=False, error="x" * 500)
    line = format_table([row]).splitlines()[1]
    assert line.startswith(str(row.user_id))
    assert line.endswith("x…") and len(line.split()[-1]) == 120


def test_format_table_of_nothing() -> None:
    assert format_table([]) == "no Gmail watch to renew"
