"""A call in a few lines for the rep (who met, what the prospect said, the agreed next steps), and
the wording of action items and buying signals that the debrief, the follow-up email and proposals
reuse. Pure functions (no I/O).
"""

from __future__ import annotations

import re
from collections.abc import Collection, Mapping

from sequences.skills.meetings.action_items import ActionItem, strip_item
from sequences.skills.meetings.due_dates import names_a_date, short_day_text
from sequences.skills.meetings.intents import MONEY, BuyingSignal, Intents, SignalKind
from sequences.skills.meetings.perspective import QUOTE_TO_PROSPECT, QUOTE_TO_REP, swap
from sequences.skills.meetings.speakers import attributed_sentences, rep_speakers
from sequences.skills.meetings.text import capital, first_name, fold, is_german, is_question, rx, word_count
from sequences.skills.meetings.transcript import UNKNOWN_SPEAKER, Transcript

MAX_SUMMARY_CHARS = 1200  # chars: the summary fits in a Slack section with room to spare
MIN_SUMMARY_WORDS = 4  # words: shorter sentences ("Sounds good.") carry no content on their own


def _shorten(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"


SIGNAL_LABELS: Mapping[SignalKind, str] = {
    SignalKind.BUDGET: "Budget",
    SignalKind.PRICING: "Pricing",
    SignalKind.DECISION_MAKER: "Decision",
    SignalKind.TIMELINE: "Timeline",
    SignalKind.COMPETITOR: "Competition",
}  # in the order a summary lists them
_WORD_MONEY_RE = rx(r"\w+ (?:thousand|million|hundred thousand|k)", r"\w+tausend")
MAX_SUMMARY_QUOTE_CHARS = 200  # chars of one prospect sentence quoted in a summary line
SIGNAL_SENTENCES = 2  # prospect sentences per kind of signal in a summary line (the first ones)


def _signal_kind(sentence: str, kinds: set[SignalKind]) -> SignalKind:
    """The one kind a sentence is filed under: an amount makes it budget, else the most specific."""
    folded = fold(sentence)
    if SignalKind.BUDGET in kinds and (re.search(MONEY, folded) or _WORD_MONEY_RE.search(folded)):
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
        _point(quote, QUOTE_TO_PROSPECT)
        for kind in SIGNAL_LABELS
        for quote in filed.get(kind, [])[:SIGNAL_SENTENCES]
        if not is_question(quote)
    ]


def _point(sentence: str, mapping: Mapping[str, str]) -> str:
    """A prospect's sentence as a summary point: in the reader's perspective, or a question quoted as asked."""
    if is_question(sentence):
        return f'they asked "{_shorten(sentence.strip(), MAX_SUMMARY_QUOTE_CHARS)}"'
    return capital(_shorten(swap(strip_item(sentence), mapping), MAX_SUMMARY_QUOTE_CHARS)) + "."


def _names(people: list[str]) -> str:
    return people[0] if len(people) == 1 else ", ".join(people[:-1]) + " and " + people[-1]


def _by(item: ActionItem) -> str:
    """ " by Fri 11 Dec", unless the task already names its date ("a call next Tuesday")."""
    return f" by {short_day_text(item.due)}" if item.due and not names_a_date(item.text) else ""


def task_line(item: ActionItem) -> str:
    """An action item as one line: "Send the proposal by Fri 11 Dec — owner: Alice"."""
    due = _by(item)
    owner = first_name(item.who) if item.who != UNKNOWN_SPEAKER else ""
    return f"{item.text}{due}" + (f" — owner: {owner}" if owner else "")


def _step_phrase(item: ActionItem) -> str:
    """ "Alice to send the proposal by Fri 11 Dec" (German items as said: "Bruno: Ich schicke …")."""
    who = first_name(item.who) if item.who != UNKNOWN_SPEAKER else "Someone"
    due = _by(item)
    if is_german(item.text):
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
    points = signal_points(intents.buying_signals, QUOTE_TO_REP)
    if not points:
        said = [
            sentence
            for speaker, sentence, rep in attributed_sentences(t, rep_names)
            if not rep and word_count(sentence) >= 2 * MIN_SUMMARY_WORDS and not is_question(sentence)
        ]
        longest = sorted(said, key=lambda x: -word_count(x))[:2]
        points = [f"They said: {_point(x, QUOTE_TO_REP)}" for x in said if x in longest]
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
