"""Proposals (proposal_generation): template precedence (industry, size band, stage), filling
placeholders with missing data, and the offline executive summary."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from sequences.skills.deals.risk_rules import STAGES
from sequences.skills.proposals.templates import (
    DEFAULT_TEMPLATES,
    NEUTRAL,
    UNKNOWN_PLACEHOLDER,
    ProposalFacts,
    ProposalSection,
    ProposalTemplate,
    executive_summary,
    format_money,
    populate,
    select_template,
    template_by_key,
)

FULL = ProposalFacts(
    deal_name="Acme sales onboarding",
    deal_value=Decimal("48000"),
    currency="USD",
    stage="proposal",
    close_date=date(2026, 12, 18),
    contact_name="Dana Reyes",
    contact_title="VP Sales",
    contact_email="dana@acme.example",
    company_name="Acme Corp",
    industry="Software",
    employees=250,
    rep_name="Sam Lee",
    meeting_notes="Acme wants to cut ramp time for new reps from 6 to 3 months. Salesforce sync is a must.",
    action_items=["Send pricing for 40 seats", "Book a security review with IT"],
)


def key(stage, value, industry=None, employees=None, templates=DEFAULT_TEMPLATES) -> str:
    return select_template(stage, value, industry, employees, templates).template_key


# --------------------------------------------------------------------------- templates


def test_default_templates_cover_the_required_kinds():
    keys = {t.key for t in DEFAULT_TEMPLATES}
    assert {"starter", "standard", "enterprise", "healthcare"} <= keys
    assert len(keys) == len(DEFAULT_TEMPLATES)
    healthcare = template_by_key("healthcare")
    assert any("Compliance" in s.heading for s in healthcare.sections)
    for template in DEFAULT_TEMPLATES:
        assert template.sections
        assert set(template.stages) <= set(STAGES)


def test_template_by_key_raises_for_an_unknown_key():
    with pytest.raises(KeyError):
        template_by_key("nope")


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (Decimal("4999"), "starter"),
        (Decimal("14999.99"), "starter"),
        (Decimal("15000"), "standard"),  # bands include their lower bound
        (Decimal("99999"), "standard"),
        (Decimal("100000"), "enterprise"),
        (Decimal("2500000"), "enterprise"),
        (0, "starter"),
        (48000.0, "standard"),
    ],
)
def test_size_band_by_value(value, expected):
    choice = select_template("proposal", value, "Software", 120)
    assert choice.template_key == expected
    assert choice.rule == "size"


def test_employees_make_a_small_deal_enterprise():
    choice = select_template("demo", Decimal(5000), "Logistics", 1000)
    assert (choice.template_key, choice.rule) == ("enterprise", "size")
    assert "1,000 employees" in choice.reason
    assert key("demo", Decimal(5000), "Logistics", 999) == "starter"


def test_industry_comes_before_size():
    choice = select_template("negotiation", Decimal(250_000), "Hospital & Health Care", 5000)
    assert (choice.template_key, choice.rule) == ("healthcare", "industry")
    assert key("proposal", 9000, "Pharmaceuticals", None) == "healthcare"
    assert key("proposal", 9000, "  MEDICAL devices ", None) == "healthcare"
    assert key("proposal", 9000, "Wealth management", None) == "starter"  # "wealth" is not "health"


def test_stage_decides_only_without_size_information():
    choice = select_template("discovery", None, None, None)
    assert (choice.template_key, choice.rule) == ("pilot", "stage")
    assert key("Discovery", None, "", None) == "pilot"  # stage names are matched case-insensitively
    assert key("discovery", Decimal(20_000), None, None) == "standard"  # size first


def test_stage_restricted_templates_serve_only_their_stages():
    # pilot only serves early stages: a late-stage deal without a value falls back to the default
    choice = select_template("negotiation", None, None, None)
    assert (choice.template_key, choice.rule) == ("standard", "default")


@pytest.mark.parametrize("stage", ["closed_won", "closed_lost", None, "", "some custom stage"])
def test_any_stage_gets_a_template(stage):
    assert key(stage, None, None, None) == "standard"
    assert key(stage, Decimal(500), None, None) == "starter"


def test_org_templates_and_their_precedence():
    fintech = ProposalTemplate(
        key="fintech",
        name="Fintech",
        industries=["bank", "fintech"],
        min_value=50_000,
        sections=[ProposalSection(heading="Regulation", body_template="For {company_name}.")],
    )
    small_fintech = fintech.model_copy(update={"key": "fintech_small", "min_value": None, "max_value": 50_000})
    renewal = ProposalTemplate(
        key="renewal", name="Renewal", stages=["negotiation"], sections=[ProposalSection(heading="x", body_template="")]
    )
    templates = (small_fintech, fintech, renewal)
    assert key("proposal", 80_000, "Retail banking", None, templates) == "fintech"  # industry + size band
    assert key("proposal", 10_000, "Retail banking", None, templates) == "fintech_small"
    assert key("proposal", None, "Fintech", None, templates) == "fintech_small"  # first industry match
    assert key("negotiation", None, "Retail", None, templates) == "renewal"  # stage rule
    # no industry, size or stage match, and no "standard": the first template
    assert select_template("proposal", None, None, None, templates).rule == "default"
    assert key("proposal", None, None, None, templates) == "fintech_small"


def test_no_templates_is_an_error():
    with pytest.raises(ValueError, match="at least one template"):
        select_template("proposal", 1000, None, None, ())


# --------------------------------------------------------------------------- populate


def test_populate_with_full_facts_has_nothing_missing():
    draft = populate(template_by_key("standard"), FULL)
    assert draft.template_key == "standard"
    assert draft.title == "Proposal for Acme Corp: Acme sales onboarding"
    assert draft.missing == []
    text = "\n".join(f"{s.heading}\n{s.body}" for s in draft.sections)
    assert "$48,000" in text
    assert "18 December 2026" in text
    assert "Dana Reyes, VP Sales at Acme Corp" in text
    assert "- Send pricing for 40 seats\n- Book a security review with IT" in text
    assert "{" not in text and "}" not in text


@pytest.mark.parametrize("template", DEFAULT_TEMPLATES, ids=lambda t: t.key)
def test_populate_with_no_facts_never_fails(template):
    draft = populate(template, ProposalFacts())
    text = draft.title + "\n".join(s.heading + s.body for s in draft.sections)
    assert "{" not in text and "}" not in text
    assert "None" not in text
    assert draft.missing
    assert "company_name" in draft.missing and "deal_name" in draft.missing
    assert len(draft.missing) == len(set(draft.missing))
    assert "executive_summary" not in draft.missing  # always written from what is known


def test_missing_data_gets_neutral_phrases():
    facts = FULL.model_copy(update={"contact_name": None, "deal_value": None, "close_date": None, "action_items": []})
    draft = populate(template_by_key("starter"), facts)
    assert draft.missing == ["contact_first_name", "deal_value", "contact_name", "action_items", "close_date"]
    by_heading = {s.heading: s.body for s in draft.sections}
    assert by_heading["Overview"].startswith("Hi there, here is our proposal for Acme sales onboarding")
    assert by_heading["Investment"] == "The investment we agree together, billed annually."  # capitalised
    assert "Agreed with your team so far:\n- next steps to be agreed together" in by_heading["Next steps"]
    assert "by a date we agree together." in by_heading["Next steps"]


def test_blank_strings_count_as_missing():
    facts = FULL.model_copy(update={"company_name": "   ", "meeting_notes": "\n", "action_items": ["", "  "]})
    draft = populate(template_by_key("standard"), facts)
    assert {"company_name", "meeting_notes", "action_items"} <= set(draft.missing)
    assert draft.title == "Proposal for your organisation: Acme sales onboarding"


def test_unknown_placeholders_and_literal_braces():
    template = ProposalTemplate(
        key="odd",
        name="Odd",
        sections=[
            ProposalSection(heading="{company_name} x {{brand}}", body_template="{discount_code} {0} {a.b} {deal_name"),
            ProposalSection(heading="Data", body_template='{"json": true} {{{deal_name}}}'),
        ],
    )
    draft = populate(template, FULL)
    assert draft.sections[0].heading == "Acme Corp x {brand}"
    assert draft.sections[0].body == f"{UNKNOWN_PLACEHOLDER} {{0}} {{a.b}} {{deal_name"
    assert draft.sections[1].body == '{"json": true} {Acme sales onboarding}'
    assert draft.missing == ["discount_code"]


def test_long_meeting_notes_are_shortened():
    facts = FULL.model_copy(update={"meeting_notes": "word " * 500})
    body = populate(template_by_key("starter"), facts).sections[1].body
    assert len(body) <= 601 and body.endswith("…")


@pytest.mark.parametrize(
    ("value", "currency", "text"),
    [
        (Decimal("48000"), "USD", "$48,000"),
        (Decimal("1250.5"), "eur", "€1,250.50"),
        (Decimal("9900"), "CHF", "CHF 9,900"),
        (Decimal("0"), "GBP", "£0"),
        (None, "USD", None),
    ],
)
def test_format_money(value, currency, text):
    assert format_money(value, currency) == text


def test_neutral_phrases_cover_every_known_placeholder():
    draft = populate(
        ProposalTemplate(
            key="all",
            name="All",
            sections=[ProposalSection(heading="All", body_template=" ".join(f"{{{name}}}" for name in NEUTRAL))],
        ),
        ProposalFacts(currency=""),
    )
    assert UNKNOWN_PLACEHOLDER not in draft.sections[0].body
    assert set(draft.missing) == set(NEUTRAL) - {"executive_summary"}


@given(
    body=st.text(alphabet=st.sampled_from(list("{}_ab0 .deal_namecompany")), max_size=60),
    name=st.none() | st.text(max_size=20),
)
def test_populate_never_raises(body, name):
    template = ProposalTemplate(key="t", name="t", sections=[ProposalSection(heading="h", body_template=body)])
    draft = populate(template, ProposalFacts(deal_name=name))
    assert isinstance(draft.sections[0].body, str)


# --------------------------------------------------------------------------- executive summary


def test_executive_summary_from_full_facts():
    summary = executive_summary(FULL)
    assert summary.startswith("In our conversations, Acme Corp, a 250-person Software organisation, told us:")
    assert "cut ramp time for new reps from 6 to 3 months" in summary
    assert "Salesforce" not in summary  # only the first sentence of the notes
    assert "We propose Acme sales onboarding for $48,000, with a decision targeted for 18 December 2026." in summary
    assert summary.endswith("Agreed next steps: Send pricing for 40 seats; Book a security review with IT.")


def test_executive_summary_without_data_is_still_a_sentence():
    summary = executive_summary(ProposalFacts())
    assert summary == "This proposal sets out how we can help your organisation. We propose a tailored plan."


def test_executive_summary_lists_at_most_three_next_steps():
    facts = FULL.model_copy(update={"action_items": ["a", "b", "c", "d"], "industry": None})
    summary = executive_summary(facts)
    assert "Agreed next steps: a; b; c; and more." in summary
    assert "In our conversations, Acme Corp told us:" in summary


def test_facts_are_frozen():
    with pytest.raises(ValueError, match="frozen"):
        FULL.deal_name = "other"
