"""Action items of a call: commitment sentences turned into tasks with an owner, an assignee and a
due date. Pure functions (no I/O); ``extract_action_items`` states the rules.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Mapping
from datetime import date, datetime
from enum import StrEnum

from pydantic import BaseModel, ConfigDict

from sequences.skills.meetings.commitments import ACTION_VERB_RE, is_commitment
from sequences.skills.meetings.due_dates import WEEKDAYS, due_from_text
from sequences.skills.meetings.perspective import PROSPECT_TO_REP, REP_TO_REP, swap
from sequences.skills.meetings.speakers import attributed_sentences, name_tokens, rep_speakers
from sequences.skills.meetings.text import capital, content_words, fold, is_german, is_question, rx, similar
from sequences.skills.meetings.transcript import UNKNOWN_SPEAKER, Transcript

MAX_ITEM_CHARS = 240  # chars of one action item's text


class Owner(StrEnum):
    """Who owns an action item; stored as its string value."""

    REP = "rep"
    PROSPECT = "prospect"


class ActionItem(BaseModel):
    """A task someone took on in the call: what, whose side, by when, who said it and who does it."""

    model_config = ConfigDict(frozen=True)

    text: str  # a task, as the rep reads it: "Send over a proposal with the rollout plan"
    owner: Owner
    due: date | None = None
    speaker: str  # who said it
    assignee: str = ""  # who does it: the speaker, or the person they named ("Lena will send…")

    @property
    def who(self) -> str:
        """The person who does it (the speaker when nobody else was named)."""
        return self.assignee or self.speaker


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
_IN_CALL_RE = rx(r"right now", r"now", r"right away", r"in a (?:second|moment|minute)", r"on (?:the )?screen")
_REQUEST_RE = re.compile(
    r"(?:(?:can|could) (?:we|you|i)(?: also)?|let's|let us|(?:i|we)(?: would like| need| want)(?: to)?)"
    r" (?P<verb>get|have|see|set up|schedule|book|find|arrange|organi[sz]e|send)\s+(?P<obj>.+)$",
    re.IGNORECASE,
)  # a request the next speaker answers with "I'll set that up"
_DELIVERABLE_RE = rx(
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
    + "|".join(WEEKDAYS)
    + r")(?: (?:morning|afternoon|evening))?)|\b(?:tomorrow|today|tonight|later today))\s*$",
    re.IGNORECASE,
)


_PROMISE_CLAUSE_RE = re.compile(r"[,;:]\s+(?=(?:i|we)(?:'ll|\u2019ll| will| am going to|'m going to)\s)", re.IGNORECASE)
_ONGOING_RE = re.compile(r"(?:i'm|i am|we're|we are) (?:still )?(?P<verb>[a-z]+ing) (?P<obj>.+?)[.!]?$", re.IGNORECASE)


def strip_item(sentence: str) -> str:
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
    text = strip_item(sentence)
    assignee = ""
    named = _NAMED_RE.match(text)
    if named and _is_name(named.group("name")):
        assignee = names.get(named.group("name").casefold(), named.group("name"))
        text = named.group("rest")
    else:
        text = _LET_RE.sub("", _SELF_RE.sub("", text, count=1), count=1)
    text = _PUSH_VERB_RE.sub(lambda m: m.group(1) + (m.group(2) or ""), text)
    folded = fold(text)
    if not folded or _IN_CALL_RE.search(folded):
        return None
    referential = _REFERENTIAL_RE.match(text)
    if referential:
        return f"@ref {referential.group('verb')}{referential.group('particle') or ''}", assignee
    if not ACTION_VERB_RE.search(folded):
        if _DELIVERABLE_RE.search(folded) and re.match(r"^(?:an?|the|two|three|some|our|a revised)\b", folded):
            text = f"send {text}"
        elif not is_german(text):
            return None  # "I'll keep the demo to twenty minutes": a promise about this call, not a task
    if due is not None:
        text = _TRAILING_DEADLINE_RE.sub("", text)
    text = swap(text, REP_TO_REP if speaker_is_rep and not assignee else PROSPECT_TO_REP)
    return capital(text.strip(" ,")), assignee


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


def _request(sentence: str, verb: str, rep: bool) -> str | None:
    """The task "I'll <verb> that" makes of a request ("Can we also get a sandbox for the security
    review?" + "set up" → "Set up a sandbox for the security review"), or None if it is no request."""
    request = _REQUEST_RE.search(strip_item(sentence).rstrip("?"))
    if request is None:
        return None
    obj = swap(request.group("obj").strip(" ,"), REP_TO_REP if rep else PROSPECT_TO_REP)
    return capital(f"{verb} {obj}")


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
    names = {name_tokens(s)[0]: s for s in t.speakers if name_tokens(s) and s != UNKNOWN_SPEAKER}
    items: list[ActionItem] = []
    keys: list[frozenset[str]] = []
    origins: list[int] = []  # the sentence each item came from
    said = attributed_sentences(t, rep_names)
    for index, (speaker, sentence, rep) in enumerate(said):
        named = _NAMED_RE.match(strip_item(sentence))
        third_person = bool(named and _is_name(named.group("name")) and ACTION_VERB_RE.search(fold(sentence)))
        if not (is_commitment(sentence) or third_person) or is_question(sentence):
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
                    resolved = capital(f"finish {ongoing.group('verb')} {ongoing.group('obj')}")
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
        key = content_words(item.text)
        duplicate = next(
            (
                i
                for i, (old, old_key) in enumerate(zip(items, keys, strict=True))
                if old.who == item.who and (similar(old_key, key) or (key and (key <= old_key or old_key <= key)))
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
