"""Text primitives shared by the meeting rules: words, sentences, case folding, word-bounded patterns.

Pure functions (no I/O). Words count CJK characters two to a word; sentences split after . ! ? …
and CJK stops, not after common abbreviations ("Dr.", "e.g.", "z.B.").
"""

from __future__ import annotations

import math
import re

WORDS_PER_MINUTE = 150  # words/min: conversational speaking rate, to estimate a turn's length without timestamps
CJK_CHARS_PER_WORD = 2  # chars: Japanese/Chinese are spoken at about twice as many characters as words
DEDUPE_SIMILARITY = 0.8  # Jaccard of content words at or above which two items are the same


_WORD_RE = re.compile(r"[^\W_]+(?:['\u2019][^\W_]+)*")
_CJK_RE = re.compile(r"[\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]")
_SENTENCE_RE = re.compile(r"(?<=[.!?…])\s+(?=\S)|(?<=[\u3002\uff01\uff1f])")
_ABBREVIATIONS = (
    "dr.",
    "mr.",
    "mrs.",
    "ms.",
    "prof.",
    "e.g.",
    "i.e.",
    "etc.",
    "vs.",
    "approx.",
    "inc.",
    "z.b.",
    "bzw.",
)
_QUESTION_END = ("?", "\uff1f")


def word_count(text: str) -> int:
    """Spoken words in a text; CJK characters count two to a word."""
    cjk = len(_CJK_RE.findall(text))
    latin = sum(1 for w in _WORD_RE.findall(text) if not _CJK_RE.search(w))
    return latin + math.ceil(cjk / CJK_CHARS_PER_WORD)


def estimate_duration_s(text: str) -> float:
    """Seconds to say a text at WORDS_PER_MINUTE."""
    return round(word_count(text) * 60.0 / WORDS_PER_MINUTE, 2)


def split_sentences(text: str) -> list[str]:
    """Sentences of a turn, split after . ! ? … and CJK stops, not after common abbreviations."""
    pieces = [p.strip() for p in _SENTENCE_RE.split(text) if p and p.strip()]
    merged: list[str] = []
    for piece in pieces:
        if merged and merged[-1].casefold().endswith(_ABBREVIATIONS):
            merged[-1] = f"{merged[-1]} {piece}"
        else:
            merged.append(piece)
    return merged


def fold(text: str) -> str:
    """The text casefolded, with curly apostrophes made straight and whitespace runs made one space."""
    return " ".join(text.replace("\u2019", "'").replace("\u2018", "'").casefold().split())


def is_question(sentence: str) -> bool:
    """Whether a sentence ends in a question mark (Latin or full-width)."""
    return sentence.rstrip().endswith(_QUESTION_END)


def rx(*alternatives: str) -> re.Pattern[str]:
    """A pattern matching any of the alternatives as whole words (for folded text)."""
    return re.compile(r"(?<!\w)(?:" + "|".join(alternatives) + r")(?!\w)")


_STOPWORDS = frozenset(
    {
        "a",
        "an",
        "the",
        "to",
        "of",
        "for",
        "and",
        "or",
        "with",
        "on",
        "in",
        "at",
        "by",
        "our",
        "your",
        "my",
        "i",
        "i'll",
        "we",
        "we'll",
        "will",
        "let",
        "let's",
        "me",
        "us",
        "you",
        "it",
        "this",
        "that",
        "over",
        "up",
        "is",
        "be",
        "are",
        "can",
        "just",
        "so",
        "okay",
        "ok",
        "then",
        "also",
        "get",
        "going",
        "gonna",
    }
)


def content_words(text: str) -> frozenset[str]:
    """The words that carry meaning (stop words out, a plural "s" dropped), to compare two texts."""
    return frozenset(w.rstrip("s") if len(w) > 3 else w for w in _WORD_RE.findall(fold(text)) if w not in _STOPWORDS)


def similar(a: frozenset[str], b: frozenset[str]) -> bool:
    """Whether two sets of content words overlap enough (Jaccard ≥ DEDUPE_SIMILARITY) to be the same."""
    if not a or not b:
        return False
    return len(a & b) / len(a | b) >= DEDUPE_SIMILARITY


def capital(text: str) -> str:
    """The text with its first letter in upper case (the rest as it was)."""
    return text[:1].upper() + text[1:]


def first_name(name: str | None) -> str:
    """The first word of a name ("Alice" of "Alice Smith"), or "" without one."""
    tokens = (name or "").split()
    return tokens[0] if tokens else ""


_GERMAN_RE = rx(r"ich", r"wir", r"sie", r"ihnen", r"uns", r"lassen")  # German items are kept as said


def is_german(text: str) -> bool:
    """Whether a sentence is German (by its pronouns): German items are kept as said, not reworded."""
    return bool(_GERMAN_RE.search(fold(text)))
