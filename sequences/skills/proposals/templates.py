"""Proposal templates: which template fits a deal, and the draft it gives once filled with the deal's facts.

Pure decisions (no I/O) for proposal_generation: select-proposal-template calls
``select_template``, populate-proposal calls ``populate``, and generate-custom-sections falls back
to ``executive_summary`` when no LLM is configured. The skills load the org's templates and facts.

Template choice (``select_template``), first rule that gives a template:

1. *stage filter*: a template whose ``stages`` list is non-empty only serves those stages (no
   template left → the filter is dropped);
2. *industry*: the templates whose ``industries`` keywords occur in the deal's industry
   (case-insensitive substring: "health" matches "Hospital & Health Care"); among several, the
   one whose size band also fits, then the first;
3. *size band*, among the templates without industries: an employee threshold first
   (``employees >= min_employees``; the highest threshold met wins), then the value band
   (``min_value <= value < max_value``; the narrowest band wins);
4. *stage*: the first template without industries that lists the deal's stage;
5. *default*: the ``standard`` template when present, else the first template.

Default bands: starter below 15,000; standard 15,000 up to 100,000; enterprise from 100,000 or for
1,000 employees and more; healthcare for healthcare/medical/pharma industries (any size); pilot for
early stages when the value is unknown.

Filling (``populate``): ``{name}`` placeholders are replaced by the facts; ``{{`` and ``}}`` are
literal braces; any other text is kept as written. A placeholder without data (or unknown to the
facts) gets a neutral phrase and is listed in ``ProposalDraft.missing`` (first appearance order):
a template never raises.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from datetime import date
from decimal import Decimal, InvalidOperation
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

DEFAULT_TEMPLATE_KEY = "standard"  # the template used when no rule picks another
STARTER_MAX_VALUE = 15_000  # deal currency units: below this a deal gets the short starter proposal
ENTERPRISE_MIN_VALUE = 100_000  # deal currency units: from this value, the enterprise proposal
ENTERPRISE_MIN_EMPLOYEES = 1_000  # employees: from this company size, the enterprise proposal
EARLY_STAGES = ("prospecting", "qualification", "discovery")  # sales stages (risk_rules.STAGES) before a demo
MAX_NOTES_CHARS = 600  # characters of meeting notes quoted in a proposal: a summary, not a transcript
CURRENCY_SYMBOLS = {"USD": "$", "EUR": "€", "GBP": "£", "JPY": "¥", "INR": "₹"}  # others print their code


class ProposalSection(BaseModel):
    """One section of a template: its heading and a body with ``{placeholders}``."""

    model_config = ConfigDict(frozen=True)

    heading: str
    body_template: str


class ProposalTemplate(BaseModel):
    """A proposal layout and the deals it is meant for (empty lists and None bounds: any)."""

    model_config = ConfigDict(frozen=True)

    key: str
    name: str
    stages: list[str] = Field(default_factory=list)  # deal stages served; empty = all
    min_value: float | None = None  # deal currency units, inclusive
    max_value: float | None = None  # deal currency units, exclusive
    min_employees: int | None = None  # company size that selects this template whatever the value
    industries: list[str] = Field(default_factory=list)  # lower-case keywords; empty = generic
    sections: list[ProposalSection]


class TemplateChoice(BaseModel):
    """The template picked for a deal, the rule that picked it and why, in words."""

    model_config = ConfigDict(frozen=True)

    template_key: str
    reason: str
    rule: Literal["industry", "size", "stage", "default"]


class ProposalFacts(BaseModel):
    """Everything a proposal may quote; every field is optional (missing data is reported, not fatal)."""

    model_config = ConfigDict(frozen=True)

    deal_name: str | None = None
    deal_value: Decimal | None = None  # in `currency`
    currency: str = "USD"
    stage: str | None = None
    close_date: date | None = None
    contact_name: str | None = None
    contact_title: str | None = None
    contact_email: str | None = None
    company_name: str | None = None
    industry: str | None = None
    employees: int | None = None
    rep_name: str | None = None
    meeting_notes: str | None = None
    action_items: list[str] = Field(default_factory=list)


class DraftSection(BaseModel):
    """A filled section of a draft."""

    model_config = ConfigDict(frozen=True)

    heading: str
    body: str


class ProposalDraft(BaseModel):
    """A filled proposal: title, sections, and the placeholders that had no data."""

    model_config = ConfigDict(frozen=True)

    template_key: str
    title: str
    sections: list[DraftSection]
    missing: list[str]


def _section(heading: str, body: str) -> ProposalSection:
    return ProposalSection(heading=heading, body_template=body)


_NEXT_STEPS = _section(
    "Next steps",
    "Agreed with {contact_name} so far:\n{action_items}\n\n"
    "We propose to finalise by {close_date}. Reply to this email or reach {rep_name} directly.",
)

DEFAULT_TEMPLATES: tuple[ProposalTemplate, ...] = (
    ProposalTemplate(
        key="starter",
        name="Starter proposal",
        max_value=STARTER_MAX_VALUE,
        sections=[
            _section("Overview", "Hi {contact_first_name}, here is our proposal for {deal_name} at {company_name}."),
            _section("What we heard", "{meeting_notes}"),
            _section("Investment", "{deal_value}, billed annually."),
            _NEXT_STEPS,
        ],
    ),
    ProposalTemplate(
        key="standard",
        name="Standard proposal",
        min_value=STARTER_MAX_VALUE,
        max_value=ENTERPRISE_MIN_VALUE,
        sections=[
            _section("Executive summary", "{executive_summary}"),
            _section(
                "Your goals",
                "From our conversations with {contact_name}, {contact_title} at {company_name}:\n{meeting_notes}",
            ),
            _section(
                "Proposed solution",
                "{deal_name}: a rollout sized for {company_name}, with onboarding and support from {rep_name}'s team.",
            ),
            _section("Investment", "{deal_value} for the first year."),
            _NEXT_STEPS,
        ],
    ),
    ProposalTemplate(
        key="enterprise",
        name="Enterprise proposal",
        min_value=ENTERPRISE_MIN_VALUE,
        min_employees=ENTERPRISE_MIN_EMPLOYEES,
        sections=[
            _section("Executive summary", "{executive_summary}"),
            _section(
                "Business objectives",
                "{company_name} ({employees} employees, {industry}) shared these priorities:\n{meeting_notes}",
            ),
            _section(
                "Solution and scope",
                "{deal_name}, deployed in phases across {company_name}'s teams, with a named success manager.",
            ),
            _section(
                "Implementation plan",
                "Phase 1: pilot team and success criteria. Phase 2: rollout. Phase 3: review with {contact_name}.",
            ),
            _section(
                "Security and governance", "SSO, audit logs and a data processing agreement are included as standard."
            ),
            _section("Commercials", "{deal_value} per year, with a multi-year option on request."),
            _NEXT_STEPS,
        ],
    ),
    ProposalTemplate(
        key="healthcare",
        name="Healthcare proposal",
        industries=["health", "hospital", "medical", "pharma", "clinic", "life science", "biotech"],
        sections=[
            _section("Executive summary", "{executive_summary}"),
            _section("Clinical and operational goals", "{meeting_notes}"),
            _section("Proposed solution", "{deal_name} for {company_name}, configured for {industry} workflows."),
            _section(
                "Compliance",
                "We sign a HIPAA Business Associate Agreement with {company_name} before any patient data is "
                "processed. Data is encrypted in transit and at rest, access is role-based and logged, and "
                "audit reports are available on request.",
            ),
            _section("Investment", "{deal_value} for the first year."),
            _NEXT_STEPS,
        ],
    ),
    ProposalTemplate(
        key="pilot",
        name="Pilot proposal",
        stages=list(EARLY_STAGES),
        sections=[
            _section("Why a pilot", "A short pilot lets {company_name} prove the value of {deal_name} first."),
            _section("What we heard", "{meeting_notes}"),
            _section("Pilot scope", "Four weeks, one team, success criteria agreed with {contact_name} up front."),
            _NEXT_STEPS,
        ],
    ),
)


# --------------------------------------------------------------------------- choosing


def _norm(text: str | None) -> str:
    return " ".join((text or "").casefold().replace("_", " ").split())


def _serves_stage(template: ProposalTemplate, stage: str) -> bool:
    return not template.stages or stage in {_norm(s) for s in template.stages}


def _fits_value(template: ProposalTemplate, value: Decimal | None) -> bool:
    if value is None or (template.min_value is None and template.max_value is None):
        return False
    low_ok = template.min_value is None or value >= Decimal(str(template.min_value))
    high_ok = template.max_value is None or value < Decimal(str(template.max_value))
    return low_ok and high_ok


def _fits_employees(template: ProposalTemplate, employees: int | None) -> bool:
    return employees is not None and template.min_employees is not None and employees >= template.min_employees


def _band_width(template: ProposalTemplate) -> float:
    if template.min_value is None or template.max_value is None:
        return float("inf")
    return template.max_value - template.min_value


def _as_decimal(value: Decimal | float | int | None) -> Decimal | None:
    if value is None:
        return None
    try:
        return Decimal(str(value))
    except InvalidOperation:
        return None


def select_template(
    stage: str | None,
    value: Decimal | float | None,
    industry: str | None,
    employees: int | None,
    templates: Sequence[ProposalTemplate] = DEFAULT_TEMPLATES,
) -> TemplateChoice:
    """Pick the template for a deal by industry, then size band, then stage (module docstring)."""
    if not templates:
        raise ValueError("select_template needs at least one template")
    stage_key, industry_key, amount = _norm(stage), _norm(industry), _as_decimal(value)
    eligible = [t for t in templates if _serves_stage(t, stage_key)] or list(templates)

    by_industry = [t for t in eligible if industry_key and any(_norm(k) in industry_key for k in t.industries if k)]
    if by_industry:
        sized = [t for t in by_industry if _fits_employees(t, employees) or _fits_value(t, amount)]
        chosen = (sized or by_industry)[0]
        return TemplateChoice(template_key=chosen.key, reason=f"industry {industry!r} matches", rule="industry")

    generic = [t for t in eligible if not t.industries]
    by_employees = [t for t in generic if _fits_employees(t, employees)]
    if by_employees:
        chosen = max(by_employees, key=lambda t: t.min_employees or 0)
        reason = f"{employees:,} employees (at least {chosen.min_employees:,})"
        return TemplateChoice(template_key=chosen.key, reason=reason, rule="size")
    by_value = [t for t in generic if _fits_value(t, amount)]
    if by_value:
        chosen = min(by_value, key=_band_width)
        return TemplateChoice(template_key=chosen.key, reason=f"value {amount:,.0f} is in its band", rule="size")

    by_stage = [t for t in generic if t.stages and stage_key in {_norm(s) for s in t.stages}]
    if by_stage:
        return TemplateChoice(template_key=by_stage[0].key, reason=f"stage {stage!r} with no value", rule="stage")

    fallback = next((t for t in templates if t.key == DEFAULT_TEMPLATE_KEY), templates[0])
    return TemplateChoice(template_key=fallback.key, reason="no industry, size or stage match", rule="default")


def template_by_key(key: str, templates: Sequence[ProposalTemplate] = DEFAULT_TEMPLATES) -> ProposalTemplate:
    """The template with this key (KeyError when the org has none by that key)."""
    for template in templates:
        if template.key == key:
            return template
    raise KeyError(key)


# --------------------------------------------------------------------------- filling


def format_money(value: Decimal | None, currency: str) -> str | None:
    """``$48,000`` / ``€1,250.50`` / ``CHF 9,900``; None without a value."""
    if value is None:
        return None
    code = (currency or "").strip().upper()
    amount = f"{value:,.0f}" if value == value.to_integral_value() else f"{value:,.2f}"
    symbol = CURRENCY_SYMBOLS.get(code)
    if symbol:
        return f"{symbol}{amount}"
    return f"{code} {amount}".strip()


def _text(value: str | None) -> str | None:
    cleaned = " ".join((value or "").split())
    return cleaned or None


def _notes(value: str | None) -> str | None:
    notes = (value or "").strip()
    if not notes:
        return None
    if len(notes) <= MAX_NOTES_CHARS:
        return notes
    cut = notes[:MAX_NOTES_CHARS].rsplit(" ", 1)[0]
    return f"{cut}…"


def _bullets(items: Sequence[str]) -> str | None:
    lines = [f"- {text}" for item in items if (text := _text(item))]
    return "\n".join(lines) or None


def _first_name(name: str | None) -> str | None:
    cleaned = _text(name)
    return cleaned.split(" ")[0] if cleaned else None


def _long_date(day: date | None) -> str | None:
    return f"{day.day} {day:%B} {day.year}" if day else None


NEUTRAL: dict[str, str] = {
    "deal_name": "this project",
    "deal_value": "the investment we agree together",
    "currency": "the agreed currency",
    "stage": "our current stage",
    "close_date": "a date we agree together",
    "contact_name": "your team",
    "contact_first_name": "there",
    "contact_title": "our main contact",
    "contact_email": "your team's inbox",
    "company_name": "your organisation",
    "industry": "your industry",
    "employees": "many",
    "rep_name": "your account team",
    "meeting_notes": "We will confirm your priorities together in our next conversation.",
    "action_items": "- next steps to be agreed together",
    "executive_summary": "A summary will follow once we have confirmed the details together.",
}  # the phrase a placeholder without data becomes: reads naturally where the templates use it
UNKNOWN_PLACEHOLDER = "[to be completed]"  # a placeholder the facts know nothing about (template typo)


def _values(facts: ProposalFacts) -> dict[str, Callable[[], str | None]]:
    return {
        "deal_name": lambda: _text(facts.deal_name),
        "deal_value": lambda: format_money(facts.deal_value, facts.currency),
        "currency": lambda: _text(facts.currency) and facts.currency.strip().upper(),
        "stage": lambda: _text(facts.stage) and facts.stage.replace("_", " ").strip(),
        "close_date": lambda: _long_date(facts.close_date),
        "contact_name": lambda: _text(facts.contact_name),
        "contact_first_name": lambda: _first_name(facts.contact_name),
        "contact_title": lambda: _text(facts.contact_title),
        "contact_email": lambda: _text(facts.contact_email),
        "company_name": lambda: _text(facts.company_name),
        "industry": lambda: _text(facts.industry),
        "employees": lambda: f"{facts.employees:,}" if facts.employees else None,
        "rep_name": lambda: _text(facts.rep_name),
        "meeting_notes": lambda: _notes(facts.meeting_notes),
        "action_items": lambda: _bullets(facts.action_items),
        "executive_summary": lambda: executive_summary(facts),
    }


_PLACEHOLDER = re.compile(r"\{\{|\}\}|\{([A-Za-z_][A-Za-z0-9_]*)\}")


def _fill(template_text: str, values: dict[str, Callable[[], str | None]], missing: list[str]) -> str:
    def replace(match: re.Match[str]) -> str:
        token = match.group(0)
        if token in ("{{", "}}"):
            return token[0]
        name = match.group(1)
        getter = values.get(name)
        value = getter() if getter else None
        if value is not None:
            return value
        if name not in missing:
            missing.append(name)
        phrase = NEUTRAL.get(name, UNKNOWN_PLACEHOLDER)
        before = match.string[: match.start()].rstrip(" ")
        if not before or before[-1] in ".!?\n":  # a neutral phrase opening a sentence
            phrase = phrase[:1].upper() + phrase[1:]
        return phrase

    return _PLACEHOLDER.sub(replace, template_text)


TITLE_TEMPLATE = "Proposal for {company_name}: {deal_name}"  # the draft's title


def populate(template: ProposalTemplate, facts: ProposalFacts) -> ProposalDraft:
    """Fill the template's sections with the facts; never raises on missing or unknown placeholders."""
    values = _values(facts)
    missing: list[str] = []
    title = _fill(TITLE_TEMPLATE, values, missing)
    sections = [
        DraftSection(heading=_fill(s.heading, values, missing), body=_fill(s.body_template, values, missing))
        for s in template.sections
    ]
    return ProposalDraft(template_key=template.key, title=title, sections=sections, missing=missing)


def _first_sentence(notes: str | None) -> str | None:
    text = _text(notes)
    if not text:
        return None
    sentence = re.split(r"(?<=[.!?])\s+", text, maxsplit=1)[0].rstrip(".!?")
    return sentence[:200].rstrip() if sentence else None


def executive_summary(facts: ProposalFacts) -> str:
    """A short, factual executive summary from the facts alone (the offline "custom sections")."""
    company = _text(facts.company_name) or "your organisation"
    who = company
    if facts.industry and facts.employees:
        who = f"{company}, a {facts.employees:,}-person {_text(facts.industry)} organisation,"
    elif facts.industry:
        who = f"{company}, in {_text(facts.industry)},"
    parts = []
    heard = _first_sentence(facts.meeting_notes)
    if heard and heard.startswith("You "):  # the prospect's own words read back (meeting_ended's notes)
        parts.append(f"In our conversations, you told us that {heard[0].lower()}{heard[1:]}.")
    elif heard:
        parts.append(f"In our conversations, {who} told us: {heard}.")
    else:
        parts.append(f"This proposal sets out how we can help {who.rstrip(',')}.")
    offer = f"We propose {_text(facts.deal_name)}" if _text(facts.deal_name) else "We propose a tailored plan"
    money = format_money(facts.deal_value, facts.currency)
    if money:
        offer += f" for {money}"
    if facts.close_date:
        offer += f", with a decision targeted for {_long_date(facts.close_date)}"
    parts.append(offer + ".")
    items = [text for item in facts.action_items if (text := _text(item))]
    if items:
        shown = "; ".join(items[:3]) + ("; and more" if len(items) > 3 else "")
        parts.append(f"Agreed next steps: {shown}.")
    return " ".join(parts)
