"""ShortMemory (worker/memo.py): remembered briefly, bounded, forgettable."""

from __future__ import annotations

import time

import pytest

from worker.memo import ShortMemory


def test_a_value_is_remembered_until_its_time_is_up(monkeypatch: pytest.MonkeyPatch) -> None:
    clock = [100.0]
    monkeypatch.setattr(time, "monotonic", lambda: clock[0])
    memo: ShortMemory[str, int] = ShortMemory(5.0)
    memo.put("a", 1)
    clock[0] = 104.9
    assert memo.get("a") == 1
    clock[0] = 105.0
    assert memo.get("a") is None
    assert memo.get("never") is None


def test_a_full_memory_starts_over_instead_of_growing() -> None:
    memo: ShortMemory[int, int] = ShortMemory(60.0, max_entries=3)
    for i in range(3):
        memo.put(i, i)
    memo.put(3, 3)
    assert [memo.get(i) for i in range(4)] == [None, None, None, 3]


def test_forget_one_or_all() -> None:
    memo: ShortMemory[str, int] = ShortMemory(60.0)
    memo.put("a", 1)
    memo.put("b", 2)
    memo.forget("a")
    assert (memo.get("a"), memo.get("b")) == (None, 2)
    memo.forget()
    assert memo.get("b") is None
