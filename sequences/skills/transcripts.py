"""Meeting transcripts (meeting_ended, offline): what a recorded call says, as decision values.

Pure functions (no I/O): the meeting_ended steps load the meeting, pass its title, transcript text,
the rep's name and the meeting's start in, and store what comes out. Rules are English first, with
German cues for commitments, dates, proposals and meetings. Every rule is listed here once:

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
Reps (``rep_speakers``)
    Labels and rep names compare case-insensitively without titles (Dr, Mr, …) or bracketed notes.
    A label exactly equal to a rep's full name is that rep, and then only such labels are. Otherwise a
    label with the rep's first name is the rep when either side is a first name only, or their last
    names agree (equal, or one is the initial of the other: "Alex M."). So with rep "Sam Patel",
    "Sam Rivera" is a prospect. Every turn that is not a rep's — ``Unknown`` included — is the prospect's.
Commitments
    A sentence (not a question) with an explicit promise ("I'll", "I will", "we'll", "we will", "I'm
    going to", "let me send/share/…", "next step", "action item", "ich werde", "ich schicke", "wir
    werden", …), where fillers ("I'll be honest"), in-call narration ("I'll show you"), needs ("we will
    need") and negations ("I will not") do not count; or with "let's" plus an action verb; or with a
    deadline ("by Friday", "tomorrow", "end of week", …) plus an action verb ("send", "review", …).
    Action items are the commitment sentences; ``Intents.commitments`` only the explicit promises.
Due dates (``due_from_text``), relative to the meeting's date as given
    today/EOD → that day; tomorrow → +1; day after tomorrow → +2; end of week/this week/EOW → the
    first Friday on or after it; next week → the Friday of the following week; end of month → its last
    day; "next <weekday>" → that weekday in the following (Monday-started) week; a bare weekday ("by
    Friday", "on Tuesday") → the first such day strictly after the meeting; "in N days/weeks"; "December
    3"/"3rd of December"/"3. Dezember" → the next such date on or after the meeting. A date introduced
    by "by"/"until"/"before"/"bis" wins over other dates in the sentence, else the first.
Call types (``classify_call_type``)
    A stored type with confidence ≥ 0.5 is kept. Otherwise keywords (whole words) are counted in the
    title (3 points each) and in the transcript (1 point per distinct keyword); the best type wins
    (table order breaks ties) when it has a title hit, or two distinct transcript keywords; else
    ``unknown``. Sales types: names containing discover, demo, clos(e/ing), negotiat, proposal or pitch,
    plus ``unknown``; coaching is on for sales types and any type listed in ``coaching_call_types``.
"""

from __future__ import annotations

import math
import re
from collections.abc import Collection, Iterable, Mapping
from datetime import date, datetime, timedelta
from enum import StrEnum

from pydantic import BaseModel, ConfigDict, Field

from sequences.skills.coaching_rules import question_target
from sequences.skills.dates import MONTHS
from sequences.skills.email_rules import EmailDraft

WORDS_PER_MINUTE = 150  # words/min: conversational speaking rate, to estimate a turn's length without timestamps
MAX_DURATION_FACTOR = 2.0  # times: a timed turn lasts at most this multiple of its word estimate (silence is not talk)
MAX_DURATION_SLACK_S = 5.0  # s: … plus this, so a short turn followed by a pause is not cut to nothing
CJK_CHARS_PER_WORD = 2  # chars: Japanese/Chinese are spoken at about twice as many characters as words
UNKNOWN_SPEAKER = "Unknown"  # the speaker of lines before any speaker label
MAX_LABEL_WORDS = 5  # words: longer "Label:" prefixes are sentences, not speakers
KEEP_CALL_TYPE_CONFIDENCE = 0.5  # 0..1: a stored call type at or above this is kept
TITLE_KEYWORD_POINTS = 3  # points per call-type keyword in the title (a title names the meeting)
TRANSCRIPT_MIN_KEYWORDS = 2  # distinct keywords a transcript-only classification needs
UNKNOWN_CONFIDENCE = 0.2  # 0..1: confidence of the "unknown" (treated as sales) call type
MAX_ITEM_CHARS = 240  # chars of one action item's text
DEDUPE_SIMILARITY = 0.8  # Jaccard of content words at or above which two items are the same
MAX_SIGNALS = 20  # buying signals kept per call (first ones)
HIGH_TALK_RATIO = 0.65  # 0..1: rep share of words above which the tip says to let the prospect talk
LOW_TALK_RATIO = 0.25  # 0..1: rep share below which the tip says to steer the call
MIN_REP_WORDS_FOR_QUESTIONS = 150  # words: below this the question count says little
LONG_MONOLOGUE_S = 150.0  # s: a rep monologue longer than this (2.5 min) is worth a tip
CLEAR_NEXT_STEP = 0.5  # 0..1: next-step clarity below this is worth a tip
TAIL_SHARE = 0.25  # share of turns at the end of the call searched for the closing next step
MIN_TAIL_TURNS = 4  # turns: the tail is at least this long
MAX_NEXT_ACTIONS = 5  # suggestions returned
MAX_SUMMARY_CHARS = 1200  # chars: the summary fits in a Slack section with room to spare


# --- models ------------------------------------------------------------------------------------------


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True)


class Utterance(_Frozen):
    """One speaker turn: who, what, when it started (s from the recording start) and how long it lasted."""

    speaker: str
    text: str
    start_s: float | None = None  # None when the transcript has no timestamps
    duration_s: float = 0.0  # from the next timestamp, else estimated from words (module docstring)


class Transcript(_Frozen):
    """A parsed transcript: its turns in order."""

    utterances: list[Utterance] = Field(default_factory=list)

    @property
    def is_empty(self) -> bool:
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
        return "\n".join(f"{u.speaker}: {u.text}" for u in self.utterances)


class CallTypeResult(_Frozen):
    call_type: str
    is_sales: bool
    coaching_enabled: bool
    confidence: float = Field(ge=0.0, le=1.0)
    matched: list[str] = Field(default_factory=list)  # "existing", "title:<kw>", "transcript:<kw>"


class Owner(StrEnum):
    """Who owns an action item; stored as its string value."""

    REP = "rep"
    PROSPECT = "prospect"


class ActionItem(_Frozen):
    text: str  # a task, as the rep reads it: "Send over a proposal with the rollout plan"
    owner: Owner
    due: date | None = None
    speaker: str  # who said it
    assignee: str = ""  # who does it: the speaker, or the person they named ("Lena will send…")

    @property
    def who(self) -> str:
        """The person who does it (the speaker when nobody else was named)."""
        return self.assignee or self.speaker


class SignalKind(StrEnum):
    """The kinds of buying signal; stored as their string value."""

    BUDGET = "budget"
    PRICING = "pricing"
    TIMELINE = "timeline"
    DECISION_MAKER = "decision_maker"
    COMPETITOR = "competitor"


class BuyingSignal(_Frozen):
    kind: SignalKind
    quote: str
    speaker: str


class SentenceRef(_Frozen):
    """A sentence someone said, and the date it names (resolved against the meeting's date), if any."""

    text: str
    speaker: str
    when: date | None = None


class Intents(_Frozen):
    commitments: list[str] = Field(default_factory=list)  # explicit promises, either side
    buying_signals: list[BuyingSignal] = Field(default_factory=list)  # prospect sentences only
    follow_ups: list[str] = Field(default_factory=list)  # sentences about further contact
    send_proposal: SentenceRef | None = None  # a rep's commitment to send a proposal/quote/pricing
    schedule_meeting: SentenceRef | None = None  # a rep's commitment to set up a meeting (→ scheduling_text)


class CoachingStats(_Frozen):
    talk_ratio: float = Field(ge=0.0, le=1.0)  # rep share of words
    question_count: int  # rep sentences ending in a question mark
    longest_monologue_s: float  # longest run of consecutive rep turns
    next_step_clarity: float = Field(ge=0.0, le=1.0)
    rep_words: int
    total_words: int
    call_minutes: float = 0.0  # the recording's length (last turn's end, else the turns' durations)
    question_target: int = 2  # coaching_rules.question_target for this length
    tip: str


class NextAction(_Frozen):
    text: str
    reason: str
    priority: int  # 1 = do first


# --- text helpers ------------------------------------------------------------------------------------

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


def _fold(text: str) -> str:
    return " ".join(text.replace("\u2019", "'").replace("\u2018", "'").casefold().split())


def _is_question(sentence: str) -> bool:
    return sentence.rstrip().endswith(_QUESTION_END)


def _rx(*alternatives: str) -> re.Pattern[str]:
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


def _content_words(text: str) -> frozenset[str]:
    return frozenset(w.rstrip("s") if len(w) > 3 else w for w in _WORD_RE.findall(_fold(text)) if w not in _STOPWORDS)


def _similar(a: frozenset[str], b: frozenset[str]) -> bool:
    if not a or not b:
        return False
    return len(a & b) / len(a | b) >= DEDUPE_SIMILARITY


# --- parsing ------------------------------------------------------------------------------------------

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


# --- reps -------------------------------------------------------------------------------------------

_HONORIFICS = frozenset({"dr", "mr", "mrs", "ms", "mx", "prof", "sir", "herr", "frau", "mme", "m", "sr", "sra"})
_NAME_TOKEN_RE = re.compile(r"[^\W\d_]+(?:['\u2019-][^\W\d_]+)*")


def _name_tokens(name: str) -> tuple[str, ...]:
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
    labels = {s: _name_tokens(s) for s in speakers}
    found: set[str] = set()
    for rep in {_name_tokens(r) for r in rep_names if r and r.strip()}:
        if not rep:
            continue
        exact = {s for s, tokens in labels.items() if tokens == rep}
        found |= exact if exact else {s for s, tokens in labels.items() if _same_person(tokens, rep)}
    return found


def is_rep_speaker(speaker: str, rep_names: Collection[str]) -> bool:
    """Whether one label, on its own, is a rep (see ``rep_speakers`` for the transcript-wide rule)."""
    return speaker in rep_speakers([speaker], rep_names)


def _sentences(t: Transcript, rep_names: Collection[str]) -> list[tuple[str, str, bool]]:
    """(speaker, sentence, is_rep) for every sentence in order."""
    reps = rep_speakers(t.speakers, rep_names)
    return [(u.speaker, s, u.speaker in reps) for u in t.utterances for s in split_sentences(u.text)]


# --- call type ----------------------------------------------------------------------------------------

DEFAULT_CALL_TYPES: Mapping[str, list[str]] = {
    "discovery": [
        "discovery",
        "intro",
        "introduction",
        "intro call",
        "first call",
        "initial call",
        "qualification",
        "exploratory",
        "erstgespräch",
        "kennenlernen",
        "bedarfsanalyse",
    ],
    "demo": ["demo", "demonstration", "walkthrough", "walk-through", "product tour", "vorführung", "produktdemo"],
    "negotiation": [
        "negotiation",
        "pricing discussion",
        "contract",
        "closing",
        "close plan",
        "redlines",
        "procurement",
        "legal review",
        "order form",
        "verhandlung",
        "vertrag",
    ],
    "onboarding": ["onboarding", "kickoff", "kick-off", "implementation", "training", "go-live", "einführung"],
    "support": ["support", "troubleshooting", "escalation", "ticket", "bug", "outage"],
    "internal": [
        "standup",
        "stand-up",
        "internal",
        "1:1",
        "one-on-one",
        "team sync",
        "retro",
        "retrospective",
        "sprint",
        "all hands",
        "all-hands",
        "pipeline review",
        "forecast call",
        "blockers",
        "teammeeting",
    ],
    "interview": ["interview", "candidate", "hiring", "bewerbungsgespräch"],
    "qbr": ["qbr", "quarterly business review", "business review", "renewal", "account review"],
}  # call type → keywords; the org's own table replaces this one
_SALES_NAME_RE = re.compile(r"discover|demo|clos(?:e|ing)|negotiat|proposal|pitch")


def is_sales_call_type(call_type: str) -> bool:
    """Whether a call type's name is a sales call (discovery/demo/close names, and unknown)."""
    name = call_type.strip().casefold()
    return name == "unknown" or bool(_SALES_NAME_RE.search(name))


def _keyword_hits(text: str, keywords: Iterable[str]) -> list[str]:
    folded = _fold(text)
    return [k for k in dict.fromkeys(_fold(k) for k in keywords) if k and _rx(re.escape(k)).search(folded)]


def classify_call_type(
    title: str | None,
    transcript: Transcript | str | None,
    existing_type: str | None,
    existing_confidence: float | None,
    org_call_types: Mapping[str, list[str]] | None = None,
    *,
    coaching_call_types: Collection[str] = (),
) -> CallTypeResult:
    """The meeting's call type by the rules in the module docstring."""
    coaching_extra = {c.casefold() for c in coaching_call_types}

    def result(call_type: str, confidence: float, matched: list[str]) -> CallTypeResult:
        sales = is_sales_call_type(call_type)
        return CallTypeResult(
            call_type=call_type,
            is_sales=sales,
            coaching_enabled=sales or call_type.casefold() in coaching_extra,
            confidence=round(max(0.0, min(1.0, confidence)), 3),
            matched=matched,
        )

    if existing_type and existing_type.strip() and (existing_confidence or 0.0) >= KEEP_CALL_TYPE_CONFIDENCE:
        return result(existing_type.strip(), existing_confidence or 0.0, ["existing"])
    table = DEFAULT_CALL_TYPES if org_call_types is None else org_call_types
    body = transcript.text if isinstance(transcript, Transcript) else (transcript or "")
    best: tuple[int, str, list[str], list[str]] | None = None
    for call_type, keywords in table.items():
        in_title = _keyword_hits(title or "", keywords)
        in_body = _keyword_hits(body, keywords)
        if not in_title and len(in_body) < TRANSCRIPT_MIN_KEYWORDS:
            continue
        score = TITLE_KEYWORD_POINTS * len(in_title) + len(in_body)
        if best is None or score > best[0]:
            best = (score, call_type, in_title, in_body)
    if best is None:
        return result("unknown", UNKNOWN_CONFIDENCE, [])
    _, call_type, in_title, in_body = best
    # a title hit is strong (0.8, 0.9 when the transcript agrees); a transcript-only match at most 0.6
    confidence = (0.8 + 0.1 * bool(in_body)) if in_title else min(0.6, 0.3 + 0.1 * len(in_body))
    matched = [f"title:{k}" for k in in_title] + [f"transcript:{k}" for k in in_body]
    return result(call_type, confidence, matched)


# --- dates ---------------------------------------------------------------------------------------------

_WEEKDAYS: dict[str, int] = {
    **{d: i for i, d in enumerate(["monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday"])},
    **{d: i for i, d in enumerate(["montag", "dienstag", "mittwoch", "donnerstag", "freitag", "samstag", "sonntag"])},
}  # weekday names (en/de) → Monday=0
_MONTHS = MONTHS  # month names (en/de/fr/es) → month number
_NUMBERS = {"a": 1, "an": 1, "one": 1, "two": 2, "three": 3, "four": 4, "five": 5, "six": 6, "seven": 7}
_WD = "|".join(sorted(_WEEKDAYS, key=len, reverse=True))
_MO = "|".join(sorted(_MONTHS, key=len, reverse=True))
_DUE_RE = re.compile(
    r"(?P<anchor>(?<!\w)(?:by|until|before|no later than|bis(?: zum| spätestens)?|spätestens)\s+"
    r"(?:(?:the|this|on|am|end of)\s+)?)?"
    r"(?:"
    rf"(?P<nextwd>(?<!\w)(?:next|nächsten|nächster|kommenden)\s+(?P<wd1>{_WD}))"
    r"|(?P<nextweek>(?<!\w)(?:next week|nächste woche|nächsten woche|kommende woche))"
    rf"|(?P<wd2>(?<!\w)(?:{_WD}))"
    r"|(?P<dat>(?<!\w)(?:day after tomorrow|übermorgen))"
    r"|(?P<tom>(?<!\w)tomorrow|(?<!guten )(?<!\w)morgen)"
    r"|(?P<today>(?<!\w)(?:today|tonight|eod|end of (?:the )?day|heute))"
    r"|(?P<eow>(?<!\w)(?:end of (?:the )?week|eow|this week|diese woche|ende der woche))"
    r"|(?P<eom>(?<!\w)(?:end of (?:the )?month|eom|ende des monats|monatsende))"
    r"|(?P<in>(?<!\w)in\s+(?P<n>\d{1,2}|a|an|one|two|three|four|five|six|seven)\s+(?P<unit>days?|weeks?|tagen?|wochen?))"
    rf"|(?P<md>(?<!\w)(?P<mo1>{_MO})\.?\s+(?P<d1>\d{{1,2}})(?:st|nd|rd|th)?(?!\d))"
    rf"|(?P<dm>(?<!\w)(?P<d2>\d{{1,2}})(?:st|nd|rd|th|\.)?\s+(?:of\s+)?(?P<mo2>{_MO}))"
    r")(?!\w)"
)


def _first_on_or_after(day: date, weekday: int) -> date:
    return day + timedelta(days=(weekday - day.weekday()) % 7)


def _next_monday(day: date) -> date:
    return day + timedelta(days=7 - day.weekday())


def _month_day(day: date, month: int, dom: int) -> date | None:
    try:
        candidate = date(day.year, month, dom)
        return candidate if candidate >= day else date(day.year + 1, month, dom)
    except ValueError:
        return None


def _resolve(match: re.Match[str], day: date) -> date | None:
    if match.group("nextwd"):
        return _next_monday(day) + timedelta(days=_WEEKDAYS[match.group("wd1")])
    if match.group("nextweek"):
        return _next_monday(day) + timedelta(days=4)
    if match.group("wd2"):
        return day + timedelta(days=(_WEEKDAYS[match.group("wd2")] - day.weekday() - 1) % 7 + 1)
    if match.group("dat"):
        return day + timedelta(days=2)
    if match.group("tom"):
        return day + timedelta(days=1)
    if match.group("today"):
        return day
    if match.group("eow"):
        return _first_on_or_after(day, 4)
    if match.group("eom"):
        following = date(day.year + (day.month == 12), day.month % 12 + 1, 1)
        return following - timedelta(days=1)
    if match.group("in"):
        raw = match.group("n")
        count = int(raw) if raw.isdigit() else _NUMBERS[raw]
        unit = match.group("unit")
        return day + timedelta(days=count * (7 if unit.startswith(("week", "woche")) else 1))
    if match.group("md"):
        return _month_day(day, _MONTHS[match.group("mo1")], int(match.group("d1")))
    return _month_day(day, _MONTHS[match.group("mo2")], int(match.group("d2")))


def due_from_text(text: str, meeting_date: date | datetime) -> date | None:
    """The date a sentence names, relative to the meeting's date (rules in the module docstring)."""
    day = meeting_date.date() if isinstance(meeting_date, datetime) else meeting_date
    matches = list(_DUE_RE.finditer(_fold(text)))
    if not matches:
        return None
    anchored = [m for m in matches if m.group("anchor")]
    for match in anchored + [m for m in matches if not m.group("anchor")]:
        resolved = _resolve(match, day)
        if resolved is not None:
            return resolved
    return None


# --- commitments and action items ------------------------------------------------------------------------

_FILLER_RE = _rx(
    r"i'll be (?:honest|frank|candid|quick|brief)",
    r"i'll tell you",
    r"i'll say",
    r"i will say",
    r"i'll admit",
    r"i'll give you that",
    r"we'll see",
    r"i'll be there",
    r"i'll take that",
    r"i'll leave it there",
    r"(?:i|we)(?:'ll| will) (?:need|want|have to see)",
    r"we'll have to see",
    r"i'll (?:show|walk) you(?: through)?",
    r"i'll (?:share|stop sharing) my screen",
    r"i'll (?:start|quickly)",
    r"i'll hand (?:it )?over",
)  # phrases with "I'll"/"we will" that promise nothing after the call
_STRONG_RE = _rx(
    r"i'll",
    r"i will(?! not)",
    r"we'll",
    r"we will(?! not)",
    r"i'm going to",
    r"i am going to",
    r"we're going to",
    r"we are going to",
    r"i can send",
    r"i'll make sure",
    r"let me (?:send|share|follow up|check|get|loop|set up|put together|draft|book|schedule|email|forward|confirm)",
    r"next steps?",
    r"action items?",
    r"to-?do",
    r"ich werde",
    r"ich schicke",
    r"ich sende",
    r"ich melde mich",
    r"ich kümmere mich",
    r"wir werden",
    r"wir schicken",
    r"wir senden",
    r"nächsten? schritte?",
)
_LET_US_RE = _rx(r"let's", r"let us", r"lass uns", r"lassen sie uns")
_DEADLINE_RE = _rx(
    r"(?:by|before|until) (?:the )?(?:end of (?:the )?(?:day|week|month)|eod|eow|tomorrow|next week|"
    + "|".join(_WEEKDAYS)
    + ")",
    r"tomorrow",
    r"end of (?:the )?(?:day|week|month)",
    r"eod",
    r"eow",
    r"bis (?:morgen|" + "|".join(_WEEKDAYS) + ")",
)
_ACTION_VERB_RE = _rx(
    r"send",
    r"sending",
    r"share",
    r"sharing",
    r"review",
    r"sign",
    r"check",
    r"schedule",
    r"set up",
    r"book",
    r"prepare",
    r"draft",
    r"follow up",
    r"loop in",
    r"confirm",
    r"deliver",
    r"introduce",
    r"circulate",
    r"update",
    r"finali[sz]e",
    r"call",
    r"email",
    r"forward",
    r"get back",
    r"put together",
    r"provide",
    r"meet",
    r"reconvene",
    r"open (?:a )?(?:ticket|case|issue)",
    r"file",
    r"raise",
    r"regroup",
    r"circle back",
    r"plan",
    r"walk through",
    r"talk",
    r"sync",
    r"schicke\w*",
    r"sende\w*",
    r"prüfe\w*",
    r"besprechen",
    r"melde\w*",
    r"vorbereite\w*",
    r"anrufe\w*",
    r"einrichte\w*",
    r"vereinbare\w*",
    r"abstimme\w*",
    r"termin\w*",
)


def is_commitment(sentence: str) -> bool:
    """Whether a sentence commits someone to doing something (rules in the module docstring)."""
    if _is_question(sentence):
        return False
    folded = _FILLER_RE.sub(" ", _fold(sentence))
    if _STRONG_RE.search(folded):
        return True
    verb = bool(_ACTION_VERB_RE.search(folded))
    return verb and bool(_LET_US_RE.search(folded) or _DEADLINE_RE.search(folded))


_ITEM_LABEL_RE = re.compile(
    r"^(?:as )?(?:(?:a|the) )?(?:next steps?|action items?|to-?dos?)"
    r"(?: (?:on|for) (?:my|our|your|their) (?:side|end)| for (?:me|us))?\s*(?:is|are|:|,|-)\s*",
    re.IGNORECASE,
)  # "Next step on my side:", "The action item for me is", "As a next step,"
_SELF_RE = re.compile(
    r"^(?:i|we)(?:'ll|\u2019ll| will| shall|'m going to| am going to|'re going to| are going to| can)"
    r"\s+(?:also\s+|then\s+|just\s+|quickly\s+|definitely\s+)*",
    re.IGNORECASE,
)
_LET_RE = re.compile(r"^(?:let(?:'s|\u2019s| us| me)|please)\s+", re.IGNORECASE)
_NAMED_RE = re.compile(r"^(?P<name>[A-Z][\w'-]+)(?: will| is going to| can| to|'ll)\s+(?P<rest>.+)$")
_TASK_FILLER_RE = re.compile(
    r"^(?:absolutely|sounds good|works for me|of course|definitely|certainly|perfect|great|sure|then|and|"
    r"so|okay|ok|yes|yeah|alright|understood|got it|honestly|well|but|also|to be honest)\b[,.!\s-]*",
    re.IGNORECASE,
)
_REFERENTIAL_RE = re.compile(
    r"^(?P<verb>[a-z]+(?: up| over| out| in| through| together)?) (?:that|it|this|those|them|these)"
    r"(?P<particle> up| over| out| in| through| together)?\b",
    re.IGNORECASE,
)  # "set that up", "schedule it", "get that to you": the object is in an earlier sentence
_IN_CALL_RE = _rx(r"right now", r"now", r"right away", r"in a (?:second|moment|minute)", r"on (?:the )?screen")
_REQUEST_RE = re.compile(
    r"(?:(?:can|could) (?:we|you|i)(?: also)?|let's|let us|(?:i|we)(?: would like| need| want)(?: to)?)"
    r" (?P<verb>get|have|see|set up|schedule|book|find|arrange|organi[sz]e|send)\s+(?P<obj>.+)$",
    re.IGNORECASE,
)  # a request the next speaker answers with "I'll set that up"
_DELIVERABLE_RE = _rx(
    r"quote",
    r"proposal",
    r"pricing",
    r"price list",
    r"deck",
    r"contract",
    r"order form",
    r"addendum",
    r"case study",
    r"sow",
    r"summary",
    r"recap",
    r"options?",
)  # a noun an item may name alone ("the action item for me is a revised quote"): it gets "Send"
_PUSH_VERB_RE = re.compile(r"^(send|get|share|forward|email|give|mail)( over)? you\b", re.IGNORECASE)
_TRAILING_DEADLINE_RE = re.compile(
    r"\s*,?\s*(?:\b(?:by|before|until|no later than) (?:the )?(?:end of (?:the )?(?:day|week|month)|eod|eow|"
    r"tomorrow|today|tonight|next week|this week|(?:next |this )?(?:"
    + "|".join(_WEEKDAYS)
    + r")(?: (?:morning|afternoon|evening))?)|\b(?:tomorrow|today|tonight|later today))\s*$",
    re.IGNORECASE,
)
# Perspective: a task is stored as the rep reads it ("their CFO", never the prospect's "our CFO").
_PROSPECT_TO_REP = {
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
_REP_TO_REP = {"your": "their", "yours": "theirs", "you": "them"}
_TO_PROSPECT = {"their": "your", "theirs": "yours", "them": "you", "they": "you"}  # the rep's words to the prospect
_QUOTE_TO_PROSPECT = {
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
_QUOTE_TO_REP = {
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


def _swap(text: str, mapping: Mapping[str, str]) -> str:
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
    return _swap(text, _TO_PROSPECT)


def _capital(text: str) -> str:
    return text[:1].upper() + text[1:]


_PROMISE_CLAUSE_RE = re.compile(r"[,;:]\s+(?=(?:i|we)(?:'ll|\u2019ll| will| am going to|'m going to)\s)", re.IGNORECASE)
_ONGOING_RE = re.compile(r"(?:i'm|i am|we're|we are) (?:still )?(?P<verb>[a-z]+ing) (?P<obj>.+?)[.!]?$", re.IGNORECASE)


def _strip_item(sentence: str) -> str:
    """The sentence without fillers, item labels, what comes before its promise ("The sync failed
    again, I'll open a ticket" → "I'll open a ticket") and its final punctuation."""
    text = sentence.strip().rstrip(".!;")
    clause = _PROMISE_CLAUSE_RE.search(text)
    if clause:
        text = text[clause.end() :]
    for _ in range(4):
        before = text
        text = _TASK_FILLER_RE.sub("", text, count=1)
        text = _ITEM_LABEL_RE.sub("", text, count=1)
        if text == before:
            break
    return text.strip()


def _task(sentence: str, due: date | None, speaker_is_rep: bool, names: Mapping[str, str]) -> tuple[str, str] | None:
    """(task text, assignee label or "") of a commitment sentence, or None when it asks nothing after the call.

    "I'll send over a proposal by Friday" → ("Send over a proposal", ""); "Lena will send you the depot
    list" → ("Send the depot list", "Lena Ortiz"); "the action item for me is a revised quote" →
    ("Send a revised quote", ""). A task starts with "@ref " when its object is in an earlier sentence
    ("I'll set that up").
    """
    text = _strip_item(sentence)
    assignee = ""
    named = _NAMED_RE.match(text)
    if named and _is_name(named.group("name")):
        assignee = names.get(named.group("name").casefold(), named.group("name"))
        text = named.group("rest")
    else:
        text = _LET_RE.sub("", _SELF_RE.sub("", text, count=1), count=1)
    text = _PUSH_VERB_RE.sub(lambda m: m.group(1) + (m.group(2) or ""), text)
    folded = _fold(text)
    if not folded or _IN_CALL_RE.search(folded):
        return None
    referential = _REFERENTIAL_RE.match(text)
    if referential:
        return f"@ref {referential.group('verb')}{referential.group('particle') or ''}", assignee
    if not _ACTION_VERB_RE.search(folded):
        if _DELIVERABLE_RE.search(folded) and re.match(r"^(?:an?|the|two|three|some|our|a revised)\b", folded):
            text = f"send {text}"
        elif not _GERMAN_RE.search(folded):
            return None  # "I'll keep the demo to twenty minutes": a promise about this call, not a task
    if due is not None:
        text = _TRAILING_DEADLINE_RE.sub("", text)
    text = _swap(text, _REP_TO_REP if speaker_is_rep and not assignee else _PROSPECT_TO_REP)
    return _capital(text.strip(" ,")), assignee


_NOT_NAMES = frozenset(
    {
        *("it", "this", "that", "there", "these", "those", "everything", "nothing", "someone", "everyone"),
        *("anyone", "somebody", "nobody", "which", "what", "who", "he", "she", "they", "we", "i", "you"),
        *("one", "each", "both", "all", "none", "legal", "procurement", "finance", "security"),
    }
)  # sentence starters before "will" that are not a person ("Legal will review" stays the speaker's)


def _is_name(word: str) -> bool:
    """Whether a capitalised word opening "<word> will <verb>" names a person ("Lena", "Monica")."""
    return word.casefold() not in _NOT_NAMES


_GERMAN_RE = _rx(r"ich", r"wir", r"sie", r"ihnen", r"uns", r"lassen")  # German items are kept as said


def _request(sentence: str, verb: str, rep: bool) -> str | None:
    """The task "I'll <verb> that" makes of a request ("Can we also get a sandbox for the security
    review?" + "set up" → "Set up a sandbox for the security review"), or None if it is no request."""
    request = _REQUEST_RE.search(_strip_item(sentence).rstrip("?"))
    if request is None:
        return None
    obj = _swap(request.group("obj").strip(" ,"), _REP_TO_REP if rep else _PROSPECT_TO_REP)
    return _capital(f"{verb} {obj}")


def extract_action_items(
    t: Transcript,
    rep_names: Collection[str],
    meeting_start: datetime | date,
) -> list[ActionItem]:
    """Commitment sentences that ask for something after the call, as tasks: owner, assignee and due.

    A task is the sentence without its speaker's promise ("I'll", "let's", "next step on my side:") or
    deadline (kept as ``due``), in the rep's perspective ("their CFO"). A named person ("Lena will send
    you the depot list") is the assignee. Promises about the call itself ("I'll keep the demo to twenty
    minutes") are dropped: a task needs an action verb. "I'll set that up" takes its object from the
    request before it ("Can we get a sandbox?" → "Set up a sandbox…") or merges into the same person's
    item just before it (its due date); with neither it is dropped. Near-identical items of the same
    person (content words with Jaccard ≥ 0.8, or one contained in the other) are kept once: the first,
    taking a later duplicate's due date when it had none.
    """
    reps = rep_speakers(t.speakers, rep_names)
    names = {_name_tokens(s)[0]: s for s in t.speakers if _name_tokens(s) and s != UNKNOWN_SPEAKER}
    items: list[ActionItem] = []
    keys: list[frozenset[str]] = []
    origins: list[int] = []  # the sentence each item came from
    said = _sentences(t, rep_names)
    for index, (speaker, sentence, rep) in enumerate(said):
        named = _NAMED_RE.match(_strip_item(sentence))
        third_person = bool(named and _is_name(named.group("name")) and _ACTION_VERB_RE.search(_fold(sentence)))
        if not (is_commitment(sentence) or third_person) or _is_question(sentence):
            continue
        due = due_from_text(sentence, meeting_start)
        task = _task(sentence, due, rep, names)
        if task is None:
            continue
        text, assignee = task
        who = assignee or speaker
        if text.startswith("@ref "):  # the nearest of the two sentences before: a request, or the same item
            resolved = merged = None
            for back in (index - 1, index - 2):
                if back < 0:
                    break
                if items and origins[-1] == back and items[-1].who == who:  # "I'll get that to you tomorrow"
                    merged = items[-1]
                    break
                resolved = _request(said[back][1], text[5:], said[back][2])
                ongoing = _ONGOING_RE.match(said[back][1].strip()) if said[back][0] == speaker else None
                if resolved is None and ongoing:  # "I'm still fixing the sheet. I'll have it done by EOD."
                    resolved = _capital(f"finish {ongoing.group('verb')} {ongoing.group('obj')}")
                if resolved is not None:
                    due = due or due_from_text(said[back][1], meeting_start)
                    break
            if merged is not None and merged.due is None and due is not None:
                items[-1] = merged.model_copy(update={"due": due})
            if resolved is None:
                continue
            text = resolved
        item = ActionItem(
            text=text if len(text) <= MAX_ITEM_CHARS else text[: MAX_ITEM_CHARS - 1].rstrip() + "…",
            owner=Owner.REP if who in reps else Owner.PROSPECT,
            due=due,
            speaker=speaker,
            assignee=assignee,
        )
        key = _content_words(item.text)
        duplicate = next(
            (
                i
                for i, (old, old_key) in enumerate(zip(items, keys, strict=True))
                if old.who == item.who and (_similar(old_key, key) or (key and (key <= old_key or old_key <= key)))
            ),
            None,
        )
        if duplicate is None:
            items.append(item)
            keys.append(key)
            origins.append(index)
        elif items[duplicate].due is None and item.due is not None:
            items[duplicate] = items[duplicate].model_copy(update={"due": item.due})
    return items


# --- intents -----------------------------------------------------------------------------------------------

_MONEY = (
    r"[$€£]\s?\d[\d,.]*\s?(?:k|m|mm|thousand|million)?"
    r"|\d[\d,.]*\s?(?:k|thousand|million|tausend)?\s?(?:€|euro|eur|usd|dollars?)"
)
_SIGNAL_RES: dict[SignalKind, re.Pattern[str]] = {
    SignalKind.BUDGET: re.compile(
        r"(?<!\w)(?:budget\w*|funding|funded|allocated|set aside|earmarked|spend(?:ing)?|haushalt|etat)(?!\w)|" + _MONEY
    ),
    SignalKind.PRICING: _rx(
        r"pric\w*",
        r"costs?",
        r"costing",
        r"how much",
        r"per (?:seat|user|licen[cs]e|month|year)",
        r"licen[cs]\w*",
        r"discount\w*",
        r"quote",
        r"rate card",
        r"roi",
        r"preis\w*",
        r"kosten",
        r"lizenz\w*",
        r"rabatt",
        r"angebot",
    ),
    SignalKind.TIMELINE: _rx(
        r"timeline",
        r"time ?frame",
        r"go[- ]live",
        r"roll ?out",
        r"launch\w*",
        r"deadline",
        r"this quarter",
        r"next quarter",
        r"q[1-4]",
        r"start date",
        r"implement\w*",
        r"by (?:the )?end of (?:the )?(?:year|quarter|month)",
        r"(?:before|by) (?:the )?year[- ]end",
        r"zeitplan",
        r"bis ende",
        r"einführung",
        r"stichtag",
        r"quartal\w*",
    ),
    SignalKind.DECISION_MAKER: _rx(
        r"cfo",
        r"ceo",
        r"cto",
        r"cio",
        r"coo",
        r"cro",
        r"vp",
        r"vice president",
        r"head of",
        r"director",
        r"decision[- ]?makers?",
        r"sign[- ]off",
        r"signs? off",
        r"approv\w*",
        r"procurement",
        r"legal",
        r"the board",
        r"my boss",
        r"budget holder",
        r"economic buyer",
        r"geschäftsführ\w*",
        r"entscheid\w*",
        r"freigabe",
        r"vorstand",
        r"einkauf",
    ),
    SignalKind.COMPETITOR: _rx(
        r"competitors?",
        r"also (?:looking at|looked at|evaluating|evaluated|talking to)",
        r"evaluating",
        r"compared? (?:to|with)",
        r"currently (?:use|using)",
        r"switch(?:ing)? from",
        r"alternatives?",
        r"versus",
        r"wettbewerb\w*",
        r"konkurren\w*",
        r"alternativen",
        r"vergleichen",
    ),
}
DEFAULT_COMPETITORS = (
    "Gong",
    "Chorus",
    "Clari",
    "Salesloft",
    "HubSpot",
    "Salesforce Einstein",
    "Pipedrive",
    "Avoma",
    "Fireflies",
    "Otter",
    "People.ai",
    "Apollo",
)  # products a Proactive prospect is likely to compare us with; the caller may pass the org's own list
_FOLLOW_UP_RE = _rx(
    r"follow(?:ing)? up",
    r"follow-up (?:call|meeting|session|conversation)",
    r"circle back",
    r"check in",
    r"touch base",
    r"get back to",
    r"reconnect",
    r"reach out",
    r"next (?:call|meeting|session|conversation)",
    r"loop (?:in|back)",
    r"send (?:you |over )?(?:a |the )?recap",
    r"melde mich",
    r"nächsten termin",
    r"rückmeldung",
)
_PROPOSAL_NOUN_RE = _rx(
    r"proposal",
    r"quote",
    r"pricing",
    r"price sheet",
    r"price list",
    r"order form",
    r"contract",
    r"sow",
    r"statement of work",
    r"estimate",
    r"offer",
    r"angebot",
    r"kostenvoranschlag",
    r"vertragsentwurf",
)
_SEND_VERB_RE = _rx(
    r"send\w*",
    r"share",
    r"put together",
    r"prepare",
    r"draft",
    r"get (?:you|it|that) (?:over|across)?",
    r"email",
    r"shoot (?:it |you |that )?over",
    r"forward",
    r"schicke\w*",
    r"sende\w*",
    r"zukommen lassen",
    r"erstelle\w*",
)
_SCHEDULE_VERB_RE = _rx(
    r"schedule",
    r"set up",
    r"setup",
    r"book",
    r"arrange",
    r"find (?:a )?time",
    r"put (?:something|a \w+|time) on",
    r"send (?:you |over )?(?:a |an )?(?:calendar )?invite",
    r"get (?:something|a \w+|time) on",
    r"organi[sz]e",
    r"vereinbare\w*",
    r"ansetze\w*",
    r"einplane\w*",
    r"organisiere\w*",
    r"einen termin",
)
_MEETING_NOUN_RE = _rx(
    r"meeting",
    r"call",
    r"demo",
    r"session",
    r"sync",
    r"follow-?up",
    r"time",
    r"invite",
    r"workshop",
    r"review",
    r"chat",
    r"calendar",
    r"termin\w*",
    r"gespräch\w*",
    r"telefonat",
    r"besprechung",
)
_PROPOSE_RE = _rx(r"can we", r"could we", r"shall we", r"should we", r"why don't we", r"how about")


def _pick(refs: list[SentenceRef]) -> SentenceRef | None:
    """The most concrete reference: the last one naming a date, else the last one."""
    if not refs:
        return None
    dated = [r for r in refs if r.when is not None]
    return (dated or refs)[-1]


def detect_intents(
    t: Transcript,
    rep_names: Collection[str],
    meeting_start: datetime | date | None = None,
    *,
    competitors: Iterable[str] = DEFAULT_COMPETITORS,
) -> Intents:
    """Commitments, prospect buying signals, follow-ups, and the rep's proposal/meeting commitments.

    ``send_proposal``: a rep sentence with a commitment (or "let's"), a proposal noun (proposal, quote,
    pricing, order form, SOW, Angebot, …) and a send verb. ``schedule_meeting``: a rep sentence with a
    commitment, "let's" or "can we/shall we/how about", a scheduling verb (schedule, set up, book, send
    an invite, vereinbaren, …) and a meeting noun. Of several, the last one naming a date wins, else the
    last. Their ``when`` is ``due_from_text`` against ``meeting_start`` (None without it).
    """
    competitor_re = _rx(*(re.escape(_fold(c)) for c in competitors if c.strip())) if competitors else None
    commitments: list[str] = []
    signals: list[BuyingSignal] = []
    follow_ups: list[str] = []
    proposals: list[SentenceRef] = []
    meetings: list[SentenceRef] = []
    for speaker, sentence, rep in _sentences(t, rep_names):
        folded = _fold(sentence)
        committed = is_commitment(sentence)
        strong = committed and bool(_STRONG_RE.search(_FILLER_RE.sub(" ", folded)))
        if strong and sentence not in commitments:
            commitments.append(sentence)
        if _FOLLOW_UP_RE.search(folded) and sentence not in follow_ups:
            follow_ups.append(sentence)
        if not rep:
            for kind, pattern in _SIGNAL_RES.items():
                hit = pattern.search(folded) or (
                    competitor_re.search(folded) if kind is SignalKind.COMPETITOR and competitor_re else None
                )
                if hit and len(signals) < MAX_SIGNALS:
                    signals.append(BuyingSignal(kind=kind, quote=sentence, speaker=speaker))
            continue
        when = due_from_text(sentence, meeting_start) if meeting_start is not None else None
        ref = SentenceRef(text=sentence, speaker=speaker, when=when)
        proposing = committed or bool(_LET_US_RE.search(folded))
        offers = _PROPOSAL_NOUN_RE.search(folded) and _SEND_VERB_RE.search(folded)
        if proposing and offers and not _is_question(sentence):
            proposals.append(ref)
        if (
            (proposing or _PROPOSE_RE.search(folded))
            and _SCHEDULE_VERB_RE.search(folded)
            and _MEETING_NOUN_RE.search(folded)
        ):
            meetings.append(ref)
    return Intents(
        commitments=commitments,
        buying_signals=signals,
        follow_ups=follow_ups,
        send_proposal=_pick(proposals),
        schedule_meeting=_pick(meetings),
    )


# --- coaching ----------------------------------------------------------------------------------------------

_OWNER_RE = _rx(r"i", r"i'll", r"i will", r"let me", r"you", r"you'll", r"you will", r"ich", r"sie werden")
_SHARED_OWNER_RE = _rx(r"we", r"we'll", r"we will", r"let's", r"let us", r"wir", r"lass uns")
_CLOCK_RE = re.compile(
    r"(?<!\w)(?:\d{1,2}(?::\d{2})?\s?(?:am|pm|uhr)|\d{1,2}:\d{2}|noon|morning|afternoon|vormittag|nachmittag)(?!\w)"
)


def _step_clarity(sentence: str, meeting_day: date) -> float:
    """0.4 for a next step, 0.3 for a named owner (0.15 for "we"), 0.3 for a time."""
    if not is_commitment(sentence) and not _FOLLOW_UP_RE.search(_fold(sentence)):
        return 0.0
    folded = _fold(sentence)
    score = 0.4
    if _OWNER_RE.search(folded):
        score += 0.3
    elif _SHARED_OWNER_RE.search(folded):
        score += 0.15
    if due_from_text(sentence, meeting_day) is not None or _CLOCK_RE.search(folded):
        score += 0.3
    return round(min(1.0, score), 2)


def _tip(stats: dict, reps_found: bool) -> str:
    ratio, questions, monologue = stats["talk_ratio"], stats["question_count"], stats["longest_monologue_s"]
    if stats["total_words"] == 0:
        return "There was no transcript for this call, so there is no coaching feedback."
    if not reps_found:
        return "The rep was not recognised among the transcript's speakers, so talk time could not be measured."
    if ratio > HIGH_TALK_RATIO:
        return f"You talked {ratio:.0%} of the call: ask an open question and let the prospect talk more."
    if stats["next_step_clarity"] < CLEAR_NEXT_STEP:
        return "Close with a concrete next step: who does what, by when."
    asked = f"{questions} question{'' if questions == 1 else 's'}"
    target = stats["question_target"]
    if questions < target and stats["rep_words"] >= MIN_REP_WORDS_FOR_QUESTIONS:
        return f"You asked {asked} where a call this long needs about {target}: ask more open discovery questions."
    if monologue > LONG_MONOLOGUE_S:
        minutes = monologue / 60
        return f"Your longest monologue ran {minutes:.1f} min: pause for a check-in question every minute or two."
    if ratio < LOW_TALK_RATIO:
        return f"You talked only {ratio:.0%} of the call: make sure you steer it toward a next step."
    if questions >= target:  # praise the questions only when they reached the target (never a zero)
        return f"Good balance: {ratio:.0%} talk time, {asked} and a clear next step."
    return f"Good balance: {ratio:.0%} talk time and a clear next step."


def coaching_stats(t: Transcript, rep_names: Collection[str]) -> CoachingStats:
    """Talk ratio, rep questions, longest rep monologue, next-step clarity and one rule-based tip.

    Next-step clarity is the best ``_step_clarity`` over the sentences in the last quarter of the turns
    (at least the last 4): 0.4 for a commitment or follow-up, +0.3 for a named owner ("I", "you"; +0.15
    for "we"), +0.3 for a date or time. Tips, first that applies: no transcript; rep not found; talk
    ratio > 65%; clarity < 0.5; fewer questions than ``question_target`` for the call's length (with ≥ 150
    rep words); a monologue > 150 s; talk ratio < 25%; otherwise praise, which names the question count
    only when it reached the target.
    """
    reps = rep_speakers(t.speakers, rep_names)
    day = date(2000, 1, 3)  # any date: clarity only asks whether a date is named, not which one
    total = rep_words = questions = 0
    longest = run = 0.0
    for u in t.utterances:
        words = word_count(u.text)
        total += words
        if u.speaker in reps:
            rep_words += words
            questions += sum(1 for s in split_sentences(u.text) if _is_question(s))
            run += u.duration_s
            longest = max(longest, run)
        else:
            run = 0.0
    turns = t.utterances
    tail = turns[-max(MIN_TAIL_TURNS, math.ceil(len(turns) * TAIL_SHARE)) :] if turns else []
    clarity = max((_step_clarity(s, day) for u in tail for s in split_sentences(u.text)), default=0.0)
    timed = [u.start_s + u.duration_s for u in turns if u.start_s is not None]
    call_minutes = round((max(timed) if timed else sum(u.duration_s for u in turns)) / 60, 1)
    stats = {
        "talk_ratio": round(rep_words / total, 3) if total else 0.0,
        "question_count": questions,
        "longest_monologue_s": round(longest, 1),
        "next_step_clarity": clarity,
        "rep_words": rep_words,
        "total_words": total,
        "call_minutes": call_minutes,
        "question_target": question_target(call_minutes),
    }
    return CoachingStats(**stats, tip=_tip(stats, bool(reps)))


# --- next actions -------------------------------------------------------------------------------------------

_STAGE_ACTIONS: Mapping[str, tuple[str, str, str | None]] = {
    "prospecting": ("Qualify budget, authority, need and timing", "the deal is still in prospecting", None),
    "qualification": ("Qualify budget, authority, need and timing", "the deal is in qualification", None),
    "discovery": ("Schedule a tailored demo", "discovery calls lead to a demo", "meeting"),
    "demo": ("Send a proposal", "after a demo the next stage is a proposal", "proposal"),
    "proposal": ("Confirm the decision process and the sign-off date", "the proposal is out", None),
    "negotiation": ("Send the order form and confirm the legal review", "the deal is in negotiation", None),
}  # deal stage → (action, reason, the intent that already covers it: a meeting or a proposal being set up)


def suggest_next_actions(items: list[ActionItem], intents: Intents, deal_stage: str | None) -> list[NextAction]:
    """Ranked suggestions (priority 1 first, at most 5) that the items and intents do not already cover.

    A suggestion is dropped when its content words are contained in, or ≥ 80% similar to, those of an
    item, a commitment, a follow-up or the proposal/meeting sentence.
    """
    kinds = {s.kind: s for s in intents.buying_signals}
    stage = (deal_stage or "").strip().casefold()
    candidates: list[NextAction] = []

    def add(text: str, reason: str, priority: int) -> None:
        candidates.append(NextAction(text=text, reason=reason, priority=priority))

    if intents.schedule_meeting is None:
        if SignalKind.DECISION_MAKER in kinds:
            add("Book a meeting with the decision maker", f'they said: "{kinds[SignalKind.DECISION_MAKER].quote}"', 1)
        else:
            add("Book the next meeting", "no follow-up meeting was agreed on the call", 1)
    if intents.send_proposal is None and (SignalKind.PRICING in kinds or SignalKind.BUDGET in kinds):
        signal = kinds.get(SignalKind.PRICING) or kinds[SignalKind.BUDGET]
        add("Send pricing options", f'they said: "{signal.quote}"', 1 if stage in ("demo", "proposal") else 2)
    if SignalKind.COMPETITOR in kinds:
        add("Prepare a competitive comparison", f'they said: "{kinds[SignalKind.COMPETITOR].quote}"', 2)
    if SignalKind.TIMELINE in kinds:
        add("Agree a mutual action plan against their timeline", f'they said: "{kinds[SignalKind.TIMELINE].quote}"', 2)
    if stage in _STAGE_ACTIONS:
        text, reason, covered_by = _STAGE_ACTIONS[stage]
        planned = {"meeting": intents.schedule_meeting, "proposal": intents.send_proposal}.get(covered_by or "")
        if planned is None:
            add(text, reason, 2)
    undated = [i for i in items if i.owner is Owner.REP and i.due is None]
    if undated:
        add("Put a date on each of your open action items", f"{len(undated)} of your items have no due date", 3)
    if any(i.owner is Owner.PROSPECT for i in items):
        add("Remind the prospect of what they agreed to do", "the prospect took on action items", 3)

    covered = [
        _content_words(x)
        for x in (
            [i.text for i in items]
            + intents.commitments
            + intents.follow_ups
            + [r.text for r in (intents.send_proposal, intents.schedule_meeting) if r is not None]
        )
    ]
    kept: list[NextAction] = []
    for action in sorted(candidates, key=lambda a: a.priority):
        key = _content_words(action.text)
        if any(key <= old or _similar(key, old) for old in covered):
            continue
        covered.append(key)
        kept.append(action)
    return kept[:MAX_NEXT_ACTIONS]


# --- summary and follow-up email ---------------------------------------------------------------------------

MIN_SUMMARY_WORDS = 4  # words: shorter sentences ("Sounds good.") carry no content on their own


def _first_name(name: str | None) -> str:
    tokens = (name or "").split()
    return tokens[0] if tokens else ""


def _shorten(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"


SIGNAL_LABELS: Mapping[SignalKind, str] = {
    SignalKind.BUDGET: "Budget",
    SignalKind.PRICING: "Pricing",
    SignalKind.DECISION_MAKER: "Decision",
    SignalKind.TIMELINE: "Timeline",
    SignalKind.COMPETITOR: "Competition",
}  # in the order a summary lists them
_WORD_MONEY_RE = _rx(r"\w+ (?:thousand|million|hundred thousand|k)", r"\w+tausend")
MAX_SUMMARY_QUOTE_CHARS = 200  # chars of one prospect sentence quoted in a summary line
SIGNAL_SENTENCES = 2  # prospect sentences per kind of signal in a summary line (the first ones)


def _signal_kind(sentence: str, kinds: set[SignalKind]) -> SignalKind:
    """The one kind a sentence is filed under: an amount makes it budget, else the most specific."""
    folded = _fold(sentence)
    if SignalKind.BUDGET in kinds and (re.search(_MONEY, folded) or _WORD_MONEY_RE.search(folded)):
        return SignalKind.BUDGET
    for kind in (SignalKind.DECISION_MAKER, SignalKind.TIMELINE, SignalKind.COMPETITOR, SignalKind.PRICING):
        if kind in kinds:
            return kind
    return SignalKind.BUDGET


def _filed(signals: list[BuyingSignal]) -> dict[SignalKind, list[str]]:
    """Each signal sentence under the one kind it is filed as, in the order said."""
    kinds_of: dict[str, set[SignalKind]] = {}
    for signal in signals:
        kinds_of.setdefault(signal.quote, set()).add(signal.kind)
    filed: dict[SignalKind, list[str]] = {}
    for quote, kinds in kinds_of.items():
        filed.setdefault(_signal_kind(quote, kinds), []).append(quote)
    return filed


def signal_points(signals: list[BuyingSignal], mapping: Mapping[str, str]) -> list[str]:
    """One "Budget: …" line per kind of signal (its first two sentences), in the prospect's words
    turned to the reader's perspective by ``mapping`` ("we set aside" → "they set aside")."""
    filed = _filed(signals)
    return [
        f"{label}: " + " ".join(_point(quote, mapping) for quote in filed[kind][:SIGNAL_SENTENCES])
        for kind, label in SIGNAL_LABELS.items()
        if kind in filed
    ]


def what_they_said(signals: list[BuyingSignal]) -> list[str]:
    """The prospect's statements (questions left out) as they would read them back: "You set aside
    about eighty thousand for this in Q1." (for a proposal's "what we heard")."""
    filed = _filed(signals)
    return [
        _point(quote, _QUOTE_TO_PROSPECT)
        for kind in SIGNAL_LABELS
        for quote in filed.get(kind, [])[:SIGNAL_SENTENCES]
        if not _is_question(quote)
    ]


def _point(sentence: str, mapping: Mapping[str, str]) -> str:
    """A prospect's sentence as a summary point: in the reader's perspective, or a question quoted as asked."""
    if _is_question(sentence):
        return f'they asked "{_shorten(sentence.strip(), MAX_SUMMARY_QUOTE_CHARS)}"'
    return _capital(_shorten(_swap(_strip_item(sentence), mapping), MAX_SUMMARY_QUOTE_CHARS)) + "."


def _names(people: list[str]) -> str:
    return people[0] if len(people) == 1 else ", ".join(people[:-1]) + " and " + people[-1]


def _short_due(due: date) -> str:
    return f"{_WEEKDAY_NAMES[due.weekday()][:3]} {due.day} {_MONTH_NAMES[due.month - 1][:3]}"


def _by(item: ActionItem) -> str:
    """ " by Fri 11 Dec", unless the task already names its date ("a call next Tuesday")."""
    return f" by {_short_due(item.due)}" if item.due and not _DUE_RE.search(_fold(item.text)) else ""


def task_line(item: ActionItem) -> str:
    """An action item as one line: "Send the proposal by Fri 11 Dec — owner: Alice"."""
    due = _by(item)
    owner = _first_name(item.who) if item.who != UNKNOWN_SPEAKER else ""
    return f"{item.text}{due}" + (f" — owner: {owner}" if owner else "")


def _step_phrase(item: ActionItem) -> str:
    """ "Alice to send the proposal by Fri 11 Dec" (German items as said: "Bruno: Ich schicke …")."""
    who = _first_name(item.who) if item.who != UNKNOWN_SPEAKER else "Someone"
    due = _by(item)
    if _GERMAN_RE.search(_fold(item.text)):
        return f"{who}: {item.text}"
    return f"{who} to {item.text[:1].lower()}{item.text[1:]}{due}"


def summarize(
    t: Transcript,
    items: list[ActionItem],
    intents: Intents,
    title: str | None,
    rep_names: Collection[str] = (),
) -> str:
    """A summary of the call in a few lines (≤ 1,200 chars): who met, what the prospect said about
    budget, pricing, decision makers, timeline and competition (one line each, their sentence in the
    third person: "Budget: they set aside about eighty thousand for this in Q1."), and the agreed next
    steps ("Alice to send over a proposal by Fri 11 Dec; Lena to send the depot list by Sun 6 Dec").
    Without signals, the prospect's two longest sentences stand for what was discussed.
    """
    if t.is_empty:
        return f"{title.strip()}: no transcript was available." if title and title.strip() else "No transcript."
    reps = rep_speakers(t.speakers, rep_names)
    ours = [s for s in t.speakers if s in reps]
    theirs = [s for s in t.speakers if s not in reps and s != UNKNOWN_SPEAKER]
    if ours and theirs:
        lines = [f"{_names(ours)} met {_names(theirs)}."]
    else:
        people = ours + theirs
        lines = [f"Call with {_names(people)}." if people else "Call with an unnamed speaker."]
    points = signal_points(intents.buying_signals, _QUOTE_TO_REP)
    if not points:
        said = [
            sentence
            for speaker, sentence, rep in _sentences(t, rep_names)
            if not rep and word_count(sentence) >= 2 * MIN_SUMMARY_WORDS and not _is_question(sentence)
        ]
        longest = sorted(said, key=lambda x: -word_count(x))[:2]
        points = [f"They said: {_point(x, _QUOTE_TO_REP)}" for x in said if x in longest]
    lines += points
    if items:
        lines.append("Agreed next steps: " + "; ".join(_step_phrase(i) for i in items) + ".")
    else:
        lines.append("No next step was agreed.")
    summary = ""
    for line in lines:
        if len(summary) + len(line) + 1 > MAX_SUMMARY_CHARS:
            break
        summary = f"{summary}\n{line}" if summary else line
    return summary or _shorten(lines[0], MAX_SUMMARY_CHARS)


_WEEKDAY_NAMES = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")
_MONTH_NAMES = (
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
)
_FOLLOW_UP_PREFIX_RE = re.compile(r"^\s*(?:(?:follow[- ]?up|re|fwd?)\s*:\s*)+", re.IGNORECASE)


def _due_text(due: date) -> str:
    return f"{_WEEKDAY_NAMES[due.weekday()]} {due.day} {_MONTH_NAMES[due.month - 1]}"


def _item_line(item: ActionItem, with_owner: bool) -> str:
    """An item of the follow-up email, as the prospect reads it ("their CFO" → "your CFO")."""
    who = f"{_first_name(item.who)}: " if with_owner and item.who != UNKNOWN_SPEAKER else ""
    due = f" (by {_due_text(item.due)})" if item.due and not _DUE_RE.search(_fold(item.text)) else ""
    text = for_prospect(item.text)
    return f"- {who}{text[:1].lower() + text[1:] if who and not _GERMAN_RE.search(_fold(text)) else text}{due}"


def draft_followup_email(
    meeting_title: str | None,
    contact_name: str | None,
    rep_name: str | None,
    items: list[ActionItem],
    intents: Intents,
) -> EmailDraft:
    """The follow-up email to the primary external attendee: recap, both sides' next steps, rep's sign-off.

    Subject "Follow-up: <title>" (an existing "Follow-up:"/"Re:" prefix is not doubled). The recap is
    what the prospect said about budget, pricing, decision, timeline and competition, in the second
    person ("Budget: you set aside about eighty thousand for this in Q1."); the next steps are the
    tasks, the prospect's with who takes them ("- Lena: send the depot list and current volumes").
    """
    title = _FOLLOW_UP_PREFIX_RE.sub("", meeting_title or "").strip()
    subject = f"Follow-up: {title}" if title else "Follow-up: our conversation"
    greeting = f"Hi {_first_name(contact_name) or 'there'},"
    opening = f'Thanks for your time today on "{title}".' if title else "Thanks for your time today."
    recap = signal_points(intents.buying_signals, _QUOTE_TO_PROSPECT)
    parts = [greeting, f"{opening} Here is what I took away:" if recap else opening]
    if recap:
        parts.append("\n".join(f"- {line}" for line in recap))
    ours = [_item_line(i, with_owner=False) for i in items if i.owner is Owner.REP]
    theirs = [_item_line(i, with_owner=True) for i in items if i.owner is Owner.PROSPECT]
    if ours:
        parts.append("Next steps on our side:\n" + "\n".join(ours))
    if theirs:
        parts.append("Next steps on your side:\n" + "\n".join(theirs))
    if not ours and not theirs:
        parts.append("We didn't capture specific action items; reply with anything I missed.")
    if intents.schedule_meeting is not None:
        when = intents.schedule_meeting.when
        on = f" on {_due_text(when)}" if when else ""
        parts.append(f"I'll send a calendar invite for our next conversation{on}.")
    signer = _first_name(rep_name)
    parts.append(f"Best,\n{signer}" if signer else "Best regards")
    return EmailDraft(subject=subject, body="\n\n".join(parts))
