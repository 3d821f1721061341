"""How the email rules read text: case-folded, accent-free (é → e, ü → u, ß → ss) and with straight
apostrophes, matched by whole-word patterns written with their accents. Pure functions (no I/O).
"""

from __future__ import annotations

import re
import unicodedata


def fold(text: str) -> str:
    """The text casefolded, with curly apostrophes made straight (accents kept; ``key`` drops them)."""
    return text.replace("\u2019", "'").replace("\u2018", "'").casefold()


def _accentless(text: str) -> str:
    """Decomposed and without combining marks (é → e, ü → u), ß as ss: how people type in a hurry."""
    decomposed = unicodedata.normalize("NFKD", text.replace("ß", "ss"))
    return "".join(ch for ch in decomposed if not unicodedata.combining(ch))


def key(text: str) -> str:
    """Text as the classification rules read it: case-folded, accent-free, straight apostrophes."""
    return _accentless(fold(text))


def rx(*alternatives: str, unbounded: tuple[str, ...] = ()) -> re.Pattern[str]:
    """Alternatives matched as whole words; ``unbounded`` ones (CJK, which has no spaces) anywhere.

    Patterns are written with their accents and matched accent-free (against ``key`` text), so
    "nicht im Büro", "NICHT IM BÜRO" and "nicht im Buro" all match one phrase.
    """
    pattern = r"(?<!\w)(?:" + "|".join(alternatives) + r")(?!\w)"
    return re.compile(_accentless(pattern + ("|" + "|".join(unbounded) if unbounded else "")))
