"""What a call says the deal needs next: commitments, the prospect's buying signals, follow-ups, and
the rep's promise to send a proposal or set up a meeting. Pure functions (no I/O);
``detect_intents`` states the rules.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Iterable
from datetime import date, datetime
from enum import StrEnum

from pydantic import BaseModel, ConfigDict, Field

from sequences.skills.meetings.commitments import FILLER_RE, LET_US_RE, PROMISE_RE, is_commitment
from sequences.skills.meetings.due_dates import due_from_text
from sequences.skills.meetings.speakers import attributed_sentences
from sequences.skills.meetings.text import fold, is_question, rx
from sequences.skills.meetings.transcript import Transcript

MAX_SIGNALS = 20  # buying signals kept per call (first ones)


class SignalKind(StrEnum):
    """The kinds of buying signal; stored as their string value."""

    BUDGET = "budget"
    PRICING = "pricing"
    TIMELINE = "timeline"
    DECISION_MAKER = "decision_maker"
    COMPETITOR = "competitor"


class BuyingSignal(BaseModel):
    """A prospect sentence that says something about budget, pricing, timeline, decision or competition."""

    model_config = ConfigDict(frozen=True)

    kind: SignalKind
    quote: str
    speaker: str


class SentenceRef(BaseModel):
    """A sentence someone said, and the date it names (resolved against the meeting's date), if any."""

    model_config = ConfigDict(frozen=True)

    text: str
    speaker: str
    when: date | None = None


class Intents(BaseModel):
    """What the call says the deal needs next (``detect_intents``)."""

    model_config = ConfigDict(frozen=True)

    commitments: list[str] = Field(default_factory=list)  # explicit promises, either side
    buying_signals: list[BuyingSignal] = Field(default_factory=list)  # prospect sentences only
    follow_ups: list[str] = Field(default_factory=list)  # sentences about further contact
    send_proposal: SentenceRef | None = None  # a rep's commitment to send a proposal/quote/pricing
    schedule_meeting: SentenceRef | None = None  # a rep's commitment to set up a meeting (→ scheduling_text)


MONEY = (
    r"[$€£]\s?\d[\d,.]*\s?(?:k|m|mm|thousand|million)?"
    r"|\d[\d,.]*\s?(?:k|thousand|million|tausend)?\s?(?:€|euro|eur|usd|dollars?)"
)
_SIGNAL_RES: dict[SignalKind, re.Pattern[str]] = {
    SignalKind.BUDGET: re.compile(
        r"(?<!\w)(?:budget\w*|funding|funded|allocated|set aside|earmarked|spend(?:ing)?|haushalt|etat)(?!\w)|" + MONEY
    ),
    SignalKind.PRICING: rx(
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
    SignalKind.TIMELINE: rx(
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
    SignalKind.DECISION_MAKER: rx(
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
    SignalKind.COMPETITOR: rx(
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
FOLLOW_UP_RE = rx(
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
_PROPOSAL_NOUN_RE = rx(
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
_SEND_VERB_RE = rx(
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
_SCHEDULE_VERB_RE = rx(
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
_MEETING_NOUN_RE = rx(
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
_PROPOSE_RE = rx(r"can we", r"could we", r"shall we", r"should we", r"why don't we", r"how about")


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
    competitor_re = rx(*(re.escape(fold(c)) for c in competitors if c.strip())) if competitors else None
    commitments: list[str] = []
    signals: list[BuyingSignal] = []
    follow_ups: list[str] = []
    proposals: list[SentenceRef] = []
    meetings: list[SentenceRef] = []
    for speaker, sentence, rep in attributed_sentences(t, rep_names):
        folded = fold(sentence)
        committed = is_commitment(sentence)
        strong = committed and bool(PROMISE_RE.search(FILLER_RE.sub(" ", folded)))
        if strong and sentence not in commitments:
            commitments.append(sentence)
        if FOLLOW_UP_RE.search(folded) and sentence not in follow_ups:
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
        proposing = committed or bool(LET_US_RE.search(folded))
        offers = _PROPOSAL_NOUN_RE.search(folded) and _SEND_VERB_RE.search(folded)
        if proposing and offers and not is_question(sentence):
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
