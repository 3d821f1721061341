"""A meeting transcript parsed into speaker turns, with each turn's start and duration.

Pure functions (no I/O): the meeting_ended steps pass the stored transcript text in. The rules:

Parsing (``parse_transcript``)
    One utterance per speaker turn. A line opens a turn when it is ``Speaker: text``,
    ``[00:01:23] Speaker: text`` (brackets or parentheses), ``00:01:23 Speaker: text`` or WebVTT
    ``<v Speaker>text</v>``; WebVTT/SRT cue timings (``00:00:01.000 --> …``) give the next cue's start,
    and ``WEBVTT``/``NOTE`` headers and cue numbers are skipped. A speaker label is 1-5 name-like
    words (each capitalised, a particle such as "van"/"de", a number as in "Speaker 2", or a bracketed
    note) — or any label used at least twice as a line prefix — and never a heading such as "Next
    steps" or "Agenda". A bracketed timestamp without a label opens a new turn for the previous speaker.
    Any other line continues the previous turn (an ``Unknown`` turn if none); blank lines are skipped.
Durations
    With timestamps, a turn lasts until the next turn's start, capped at twice its spoken-word
    estimate plus 5 s (a silence is not talk); without (or for the last turn) it is estimated at 150
    words per minute. CJK text counts two characters as one word.
"""

from __future__ import annotations

import re

from pydantic import BaseModel, ConfigDict, Field

from sequences.skills.meetings.text import estimate_duration_s

MAX_DURATION_FACTOR = 2.0  # times: a timed turn lasts at most this multiple of its word estimate (silence is not talk)
MAX_DURATION_SLACK_S = 5.0  # s: … plus this, so a short turn followed by a pause is not cut to nothing
UNKNOWN_SPEAKER = "Unknown"  # the speaker of lines before any speaker label
MAX_LABEL_WORDS = 5  # words: longer "Label:" prefixes are sentences, not speakers


class Utterance(BaseModel):
    """One speaker turn: who, what, when it started (s from the recording start) and how long it lasted."""

    model_config = ConfigDict(frozen=True)

    speaker: str
    text: str
    start_s: float | None = None  # None when the transcript has no timestamps
    duration_s: float = 0.0  # from the next timestamp, else estimated from words (module docstring)


class Transcript(BaseModel):
    """A parsed transcript: its turns in order."""

    model_config = ConfigDict(frozen=True)

    utterances: list[Utterance] = Field(default_factory=list)

    @property
    def is_empty(self) -> bool:
        """Whether no turn has any words (an empty or whitespace-only transcript)."""
        return not any(u.text.strip() for u in self.utterances)

    @property
    def timed(self) -> bool:
        """Whether the transcript carried timestamps."""
        return any(u.start_s is not None for u in self.utterances)

    @property
    def speakers(self) -> list[str]:
        """Speaker labels in order of first appearance."""
        return list(dict.fromkeys(u.speaker for u in self.utterances))

    @property
    def text(self) -> str:
        """The turns as "Speaker: text" lines (what the call-type keywords are matched against)."""
        return "\n".join(f"{u.speaker}: {u.text}" for u in self.utterances)


_TS = r"(?:\d{1,2}:)?\d{1,2}:\d{2}(?:[.,]\d{1,3})?"
_CUE_RE = re.compile(rf"^\s*(?P<start>{_TS})\s*-->\s*(?:{_TS})")
_BRACKET_TS_RE = re.compile(rf"^\s*[\[(](?P<ts>{_TS})[\])]\s*(?:[-\u2013\u2014|]\s*)?(?P<rest>.*)$")
_BARE_TS_RE = re.compile(rf"^\s*(?P<ts>{_TS})\s+(?:[-\u2013\u2014|]\s*)?(?P<rest>.*)$")
_VOICE_RE = re.compile(r"<v(?:\.[\w.-]{0,40})?\s+(?P<name>[^>]{1,80})>(?P<text>.*?)(?:</v>|(?=<v[\s.])|$)")
_TAG_RE = re.compile(r"</?[a-z][^>]{0,80}>|<\d{1,2}:\d{2}[:.\d]{0,10}>", re.IGNORECASE)
_LABEL_RE = re.compile(r"^\s*(?P<label>[^\W\d_][^:\uff1a\n]{0,60}?)\s*[:\uff1a](?P<text>.*)$")
_PARTICLES = frozenset(
    {"van", "von", "de", "der", "den", "da", "di", "du", "la", "le", "del", "dos", "y", "bin", "al", "ten"}
)  # lower-case words inside names
_NOT_SPEAKERS = frozenset(
    {
        "note",
        "notes",
        "next step",
        "next steps",
        "action item",
        "action items",
        "agenda",
        "summary",
        "question",
        "questions",
        "answer",
        "update",
        "updates",
        "re",
        "subject",
        "http",
        "https",
        "ps",
        "p.s",
        "fyi",
        "todo",
        "to do",
        "tl;dr",
        "warning",
        "important",
        "decision",
        "decisions",
        "status",
        "recap",
        "attendees",
        "participants",
        "date",
        "time",
        "title",
        "meeting",
        "webvtt",
        "transcript",
        "nächste schritte",
        "zusammenfassung",
        "tagesordnung",
        "bonus",
        "update on",
        "also",
        "so",
        "but",
        "and",
        "well",
        "anyway",
    }
)


def _seconds(stamp: str) -> float:
    parts = stamp.replace(",", ".").split(":")
    total = 0.0
    for part in parts:
        total = total * 60 + float(part)
    return total


def _name_like(label: str) -> bool:
    tokens = label.split()
    if not 1 <= len(tokens) <= MAX_LABEL_WORDS or label.casefold().rstrip(".") in _NOT_SPEAKERS:
        return False
    for token in tokens:
        if token.startswith(("(", "[")) or token.isdigit() or token.casefold() in _PARTICLES:
            continue
        first = token[0]
        if not first.isalpha() or first.islower() or token[-1] in ",;!?":
            return False
    return True


def _label_of(line: str) -> tuple[str, str] | None:
    match = _LABEL_RE.match(line)
    if match is None:
        return None
    label = " ".join(match.group("label").split())
    text = match.group("text").strip()
    if text.startswith("//") or len(label.split()) > MAX_LABEL_WORDS:  # a URL, or a sentence with a colon
        return None
    return label, text


def _clean_line(line: str) -> str:
    return " ".join(_TAG_RE.sub("", line).split())


class _Builder:
    """Accumulates turns while the parser walks the lines."""

    def __init__(self) -> None:
        self.turns: list[list] = []  # [speaker, text, start_s]

    def open(self, speaker: str, text: str, start_s: float | None) -> None:
        self.turns.append([speaker, text, start_s])

    def extend(self, text: str) -> None:
        if not text:
            return
        if not self.turns:
            self.open(UNKNOWN_SPEAKER, text, None)
        else:
            turn = self.turns[-1]
            turn[1] = f"{turn[1]} {text}".strip()

    @property
    def last_speaker(self) -> str:
        return self.turns[-1][0] if self.turns else UNKNOWN_SPEAKER


def _known_labels(lines: list[str]) -> set[str]:
    """Labels accepted as speakers even when not name-like: used as a line prefix at least twice."""
    counts: dict[str, int] = {}
    for line in lines:
        found = _BRACKET_TS_RE.match(line) or _BARE_TS_RE.match(line)
        parsed = _label_of(found.group("rest") if found else line)
        if parsed is not None and parsed[1]:
            key = parsed[0].casefold()
            counts[key] = counts.get(key, 0) + 1
    return {k for k, n in counts.items() if n >= 2 and len(k.split()) <= 3 and k.rstrip(".") not in _NOT_SPEAKERS}


def _speaker_of(line: str, known: set[str]) -> tuple[str, str] | None:
    parsed = _label_of(line)
    if parsed is None:
        return None
    label, text = parsed
    if _name_like(label) or label.casefold() in known:
        return label, text
    return None


def _durations(turns: list[list]) -> list[Utterance]:
    utterances = []
    for index, (speaker, text, start_s) in enumerate(turns):
        estimate = estimate_duration_s(text)
        duration = estimate
        following = turns[index + 1][2] if index + 1 < len(turns) else None
        if start_s is not None and following is not None and following >= start_s:
            duration = min(following - start_s, estimate * MAX_DURATION_FACTOR + MAX_DURATION_SLACK_S)
        utterances.append(Utterance(speaker=speaker, text=text, start_s=start_s, duration_s=round(duration, 2)))
    return utterances


def parse_transcript(text: str | None) -> Transcript:
    """Parse a transcript into speaker turns by the rules in the module docstring; never raises."""
    if not text or not text.strip():
        return Transcript()
    lines = text.replace("\r\n", "\n").replace("\r", "\n").replace("\x00", "").split("\n")
    known = _known_labels(lines)
    builder = _Builder()
    pending_start: float | None = None
    for index, raw in enumerate(lines):
        line = raw.strip()
        if not line or line.upper().startswith(("WEBVTT", "NOTE ")) or line.upper() == "NOTE":
            continue
        cue = _CUE_RE.match(line)
        if cue is not None:
            pending_start = _seconds(cue.group("start"))
            continue
        if line.isdigit() and index + 1 < len(lines) and _CUE_RE.match(lines[index + 1].strip()):
            continue  # a cue number
        if "<v" in line:
            voices = list(_VOICE_RE.finditer(line))
            if voices:
                for voice in voices:
                    builder.open(" ".join(voice.group("name").split()), _clean_line(voice.group("text")), pending_start)
                    pending_start = None
                continue
        start_s, rest, bracketed = pending_start, line, False
        stamp = _BRACKET_TS_RE.match(line)
        if stamp is not None:
            start_s, rest, bracketed = _seconds(stamp.group("ts")), stamp.group("rest"), True
        else:
            bare = _BARE_TS_RE.match(line)
            if bare is not None and _speaker_of(bare.group("rest"), known) is not None:
                start_s, rest = _seconds(bare.group("ts")), bare.group("rest")
        speaker = _speaker_of(rest, known)
        if speaker is not None:
            label, said = speaker
            builder.open(label, _clean_line(said), start_s)
            pending_start = None
        elif bracketed or pending_start is not None:
            builder.open(builder.last_speaker, _clean_line(rest), start_s)
            pending_start = None
        else:
            builder.extend(_clean_line(rest))
    turns = [t for t in builder.turns if t[1]]
    return Transcript(utterances=_durations(turns))
