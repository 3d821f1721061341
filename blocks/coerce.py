"""Tolerant readers for the plain data the builders receive.

Previews and report data come from skills, the LLM and customers' CRMs: a key may be missing, a
list may be a string, a number may be ``"12"``, ``None`` or NaN. These readers turn anything into
the expected type or a default, so a builder never raises on odd data.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

MAX_ABS_NUMBER = 10**18  # beyond this a count or amount is corrupt data; treated as unknown

_EMPTY: Mapping[str, Any] = {}


def text(value: Any, default: str = "") -> str:
    """``value`` as stripped text; ``None`` or blank gives ``default``."""
    if value is None:
        return default
    result = value.strip() if isinstance(value, str) else str(value).strip()
    return result or default


def number(value: Any) -> float | None:
    """``value`` as a finite float (numbers or numeric strings), else ``None``."""
    if isinstance(value, bool) or value is None:
        return None
    try:
        result = float(value)
    except (TypeError, ValueError, OverflowError):
        return None
    if not math.isfinite(result) or abs(result) > MAX_ABS_NUMBER:
        return None
    return result


def integer(value: Any) -> int | None:
    """``value`` as an int (floats rounded), else ``None``."""
    result = number(value)
    return None if result is None else round(result)


def mapping(value: Any) -> Mapping[str, Any]:
    """``value`` if it is a mapping, else an empty one."""
    return value if isinstance(value, Mapping) else _EMPTY


def mappings(value: Any) -> list[Mapping[str, Any]]:
    """The mappings in a list (other items dropped); anything but a list gives ``[]``."""
    if isinstance(value, Mapping | str | bytes) or not isinstance(value, Sequence):
        return []
    return [item for item in value if isinstance(item, Mapping)]


def strings(value: Any) -> list[str]:
    """The non-blank texts in a list; a single string is a list of one."""
    if isinstance(value, str):
        value = [value]
    if isinstance(value, Mapping | bytes) or not isinstance(value, Sequence):
        return []
    return [t for t in (text(item) for item in value) if t]
