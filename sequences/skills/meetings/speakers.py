"""Which speakers of a transcript are the rep(s); every other turn is the prospect's.

Pure functions (no I/O). The rules:

Reps (``rep_speakers``)
    Labels and rep names compare case-insensitively without titles (Dr, Mr, …) or bracketed notes.
    A label exactly equal to a rep's full name is that rep, and then only such labels are. Otherwise a
    label with the rep's first name is the rep when either side is a first name only, or their last
    names agree (equal, or one is the initial of the other: "Alex M."). So with rep "Sam Patel",
    "Sam Rivera" is a prospect. Every turn that is not a rep's — ``Unknown`` included — is the prospect's.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Iterable

from sequences.skills.meetings.text import split_sentences
from sequences.skills.meetings.transcript import Transcript

_HONORIFICS = frozenset({"dr", "mr", "mrs", "ms", "mx", "prof", "sir", "herr", "frau", "mme", "m", "sr", "sra"})
_NAME_TOKEN_RE = re.compile(r"[^\W\d_]+(?:['\u2019-][^\W\d_]+)*")


def name_tokens(name: str) -> tuple[str, ...]:
    """A name's words, casefolded, without bracketed notes or leading titles ("Dr", "Frau"), to compare names."""
    bare = re.sub(r"[(\[][^)\]]*[)\]]", " ", name)
    tokens = [t for t in _NAME_TOKEN_RE.findall(bare.casefold())]
    while len(tokens) > 1 and tokens[0] in _HONORIFICS:
        tokens = tokens[1:]
    return tuple(tokens)


def _same_person(label: tuple[str, ...], rep: tuple[str, ...]) -> bool:
    if not label or not rep or label[0] != rep[0]:
        return False
    if len(label) == 1 or len(rep) == 1:
        return True
    a, b = label[-1], rep[-1]
    return a == b or (len(a) == 1 and b.startswith(a)) or (len(b) == 1 and a.startswith(b))


def rep_speakers(speakers: Iterable[str], rep_names: Collection[str]) -> set[str]:
    """The speaker labels that are the rep(s), by the matching rules in the module docstring."""
    labels = {s: name_tokens(s) for s in speakers}
    found: set[str] = set()
    for rep in {name_tokens(r) for r in rep_names if r and r.strip()}:
        if not rep:
            continue
        exact = {s for s, tokens in labels.items() if tokens == rep}
        found |= exact if exact else {s for s, tokens in labels.items() if _same_person(tokens, rep)}
    return found


def is_rep_speaker(speaker: str, rep_names: Collection[str]) -> bool:
    """Whether one label, on its own, is a rep (see ``rep_speakers`` for the transcript-wide rule)."""
    return speaker in rep_speakers([speaker], rep_names)


def attributed_sentences(t: Transcript, rep_names: Collection[str]) -> list[tuple[str, str, bool]]:
    """(speaker, sentence, is_rep) for every sentence in order."""
    reps = rep_speakers(t.speakers, rep_names)
    return [(u.speaker, s, u.speaker in reps) for u in t.utterances for s in split_sentences(u.text)]
