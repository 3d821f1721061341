"""Whose words: pronoun swaps that turn what a speaker said into the reader's perspective.

A task is stored as the rep reads it ("their CFO", never the prospect's "our CFO"); the follow-up
email turns it to the prospect ("your CFO"); a summary quotes the prospect in the third person
("they set aside …") and the follow-up email in the second ("you set aside …"). Pure (no I/O).
"""

from __future__ import annotations

import re
from collections.abc import Mapping

PROSPECT_TO_REP = {
    "our": "their",
    "ours": "theirs",
    "my": "their",
    "mine": "theirs",
    "us": "them",
    "me": "them",
    "we": "they",
    "i": "they",
    "you": "us",
    "your": "our",
    "yours": "ours",
}
REP_TO_REP = {"your": "their", "yours": "theirs", "you": "them"}
_TO_PROSPECT = {"their": "your", "theirs": "yours", "them": "you", "they": "you"}  # the rep's words to the prospect
QUOTE_TO_PROSPECT = {
    "our": "your",
    "ours": "yours",
    "my": "your",
    "mine": "yours",
    "us": "you",
    "me": "you",
    "we": "you",
    "i": "you",
    "i'm": "you're",
    "we're": "you're",
    "i've": "you've",
    "we've": "you've",
    "i'd": "you'd",
    "we'd": "you'd",
    "i'll": "you'll",
    "we'll": "you'll",
    "i am": "you are",
    "i was": "you were",
}
QUOTE_TO_REP = {
    "our": "their",
    "ours": "theirs",
    "my": "their",
    "mine": "theirs",
    "us": "them",
    "me": "them",
    "we": "they",
    "i": "they",
    "i'm": "they're",
    "we're": "they're",
    "i've": "they've",
    "we've": "they've",
    "i'd": "they'd",
    "we'd": "they'd",
    "i'll": "they'll",
    "we'll": "they'll",
    "i am": "they are",
    "i was": "they were",
}
_PRONOUN_RE = re.compile(r"(?<![\w'])(?:i'm|we're|i've|we've|i'd|we'd|i'll|we'll|[a-z]+)(?![\w'])", re.IGNORECASE)


def swap(text: str, mapping: Mapping[str, str]) -> str:
    """Replace whole words by ``mapping`` (case-insensitive, keeping a capital first letter)."""

    def one(match: re.Match[str]) -> str:
        word = match.group(0)
        new = mapping.get(word.replace("\u2019", "'").lower())
        if new is None:
            return word
        return new[0].upper() + new[1:] if word[0].isupper() and word.lower() != "i" else new

    for phrase in (k for k in mapping if " " in k):  # "I am" → "they are": the verb follows the pronoun
        text = re.sub(rf"(?<!\w){phrase}(?!\w)", mapping[phrase], text, flags=re.IGNORECASE)
    return _PRONOUN_RE.sub(one, text)


def for_prospect(text: str) -> str:
    """A task or summary line as the prospect reads it (the rep's "their CFO" becomes "your CFO")."""
    return swap(text, _TO_PROSPECT)
