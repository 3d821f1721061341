"""Whether a sentence commits someone to doing something after the call, and the phrase patterns
that decide it. Pure functions (no I/O). The rules:

Commitments
    A sentence (not a question) with an explicit promise ("I'll", "I will", "we'll", "we will", "I'm
    going to", "let me send/share/…", "next step", "action item", "ich werde", "ich schicke", "wir
    werden", …), where fillers ("I'll be honest"), in-call narration ("I'll show you"), needs ("we will
    need") and negations ("I will not") do not count; or with "let's" plus an action verb; or with a
    deadline ("by Friday", "tomorrow", "end of week", …) plus an action verb ("send", "review", …).
    Action items are the commitment sentences; ``Intents.commitments`` only the explicit promises.
"""

from __future__ import annotations

from sequences.skills.meetings.due_dates import WEEKDAYS
from sequences.skills.meetings.text import fold, is_question, rx

FILLER_RE = rx(
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
PROMISE_RE = rx(
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
LET_US_RE = rx(r"let's", r"let us", r"lass uns", r"lassen sie uns")
_DEADLINE_RE = rx(
    r"(?:by|before|until) (?:the )?(?:end of (?:the )?(?:day|week|month)|eod|eow|tomorrow|next week|"
    + "|".join(WEEKDAYS)
    + ")",
    r"tomorrow",
    r"end of (?:the )?(?:day|week|month)",
    r"eod",
    r"eow",
    r"bis (?:morgen|" + "|".join(WEEKDAYS) + ")",
)
ACTION_VERB_RE = rx(
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
    if is_question(sentence):
        return False
    folded = FILLER_RE.sub(" ", fold(sentence))
    if PROMISE_RE.search(folded):
        return True
    verb = bool(ACTION_VERB_RE.search(folded))
    return verb and bool(LET_US_RE.search(folded) or _DEADLINE_RE.search(folded))
