"""Meeting notes a rep reads: the offline summary and the action items as tasks.

On the demo org's transcripts (worker/ops/seed_content.py) and on two more calls with the habits of real
ones: filler promises ("I'll be quick", "I'll share my screen"), promises about the call itself,
"I'll send them over" answering a request, and a person named as the one who does it.
"""

from __future__ import annotations

from datetime import UTC, date, datetime

from blocks import meeting_debrief, render_text
from sequences.skills.meetings.action_items import Owner, extract_action_items
from sequences.skills.meetings.followup_email import draft_followup_email
from sequences.skills.meetings.intents import detect_intents
from sequences.skills.meetings.summary import summarize, task_line
from sequences.skills.meetings.transcript import parse_transcript
from worker.ops import seed_content

REPS = {"Alice Moreau", "Bruno Keller", "Maya Chen", "Sam Patel"}
FRIDAY = datetime(2026, 12, 4, 15, 0, tzinfo=UTC)  # a Friday afternoon

NEGOTIATION = """\
(00:00:02) Sam Patel: Thanks for joining, Rachel. I know procurement week is busy, so I'll be quick.
(00:00:09) Rachel Green: Appreciate it. Legal has two open points on the MSA: liability cap and data residency.
(00:00:21) Sam Patel: On the cap, we can go to twelve months of fees. Data stays in the EU region.
(00:00:33) Rachel Green: That works. Can you send the MSA redlines with those two changes?
(00:00:39) Sam Patel: Sure, I'll send them over by Tuesday.
(00:00:44) Rachel Green: Our CFO signs anything above 100k, and we want to sign before year end.
(00:00:53) Sam Patel: Understood. I'll share my screen for a second to show the order form.
(00:01:05) Rachel Green: Looks fine. Monica will review the order form and confirm the PO number tomorrow.
(00:01:14) Sam Patel: Great. Let's book thirty minutes next Thursday to sign.
(00:01:19) Rachel Green: Works for me.
"""

RENEWAL_QBR = """\
Sam Patel: Welcome everyone. I'll start with usage and then we'll see where the time goes.
Priya Raman: Sounds good. We rolled out to two more regions this quarter.
Sam Patel: Adoption is at 87 percent of seats, up from 70.
Priya Raman: The renewal budget is about 45,000 dollars, same as last year.
Sam Patel: We will keep this short and leave time for questions.
Priya Raman: We are also evaluating Salesforce Einstein for forecasting.
Sam Patel: Fair enough. I'll put together a comparison for your forecasting team by end of week.
Priya Raman: Tom will send the usage report for the new regions.
Sam Patel: Perfect, thanks. Talk soon.
"""


def _meeting(text: str, rep: set[str] = REPS, start: datetime = FRIDAY):
    t = parse_transcript(text)
    items = extract_action_items(t, rep, start)
    intents = detect_intents(t, rep, start)
    return t, items, intents


def test_the_globex_discovery_summary_reads_as_notes_not_a_transcript():
    t, items, intents = _meeting(seed_content.GLOBEX_DISCOVERY)
    lines = summarize(t, items, intents, "Discovery call — Globex dispatch", REPS).splitlines()
    assert lines == [
        "Alice Moreau met Hank Scorpio and Lena Ortiz.",
        "Budget: They set aside about eighty thousand for this in Q1.",
        "Decision: Their CFO, Dana, owns the budget.",
        "Timeline: They'd like to go live before the spring peak, so a decision by the end of January.",
        "Competition: They also looked at RouteMax last year but the integration with their TMS was a mess.",
        "Agreed next steps: Alice to send over a proposal with the rollout plan by Fri 11 Dec; Alice to set up a "
        "call next Tuesday afternoon with Dana to walk through pricing; Lena to send the depot list and current "
        "volumes by Sat 5 Dec.",
    ]


def test_the_globex_items_are_tasks_with_owners_and_one_for_lena():
    _, items, _ = _meeting(seed_content.GLOBEX_DISCOVERY)
    assert [task_line(i) for i in items] == [
        "Send over a proposal with the rollout plan by Fri 11 Dec — owner: Alice",
        "Set up a call next Tuesday afternoon with Dana to walk through pricing — owner: Alice",
        "Send the depot list and current volumes by Sat 5 Dec — owner: Lena",  # Hank named her; "I'll get that…"
    ]
    assert [i.owner for i in items] == [Owner.REP, Owner.REP, Owner.PROSPECT]


def test_the_initech_demo_drops_promises_about_the_call_and_resolves_i_will_set_that_up():
    _, items, _ = _meeting(seed_content.INITECH_DEMO)
    assert [(i.text, i.due) for i in items] == [
        ("Send a revised quote", date(2026, 12, 9)),
        ("Set up a sandbox for the security review", date(2026, 12, 4)),
        (
            "Schedule a time next week for a technical deep dive with their architects, about an hour",
            date(2026, 12, 11),
        ),
    ]
    assert not any("twenty minutes" in i.text or "mapping screen" in i.text for i in items)


def test_the_tyrell_follow_up_names_the_competitor_and_the_one_task():
    t, items, intents = _meeting(seed_content.TYRELL_FOLLOWUP)
    summary = summarize(t, items, intents, None, REPS)
    assert "Competition: They are also talking to Cognex, to be transparent." in summary.splitlines()
    assert [task_line(i) for i in items] == ["Send the updated data processing addendum by Sat 5 Dec — owner: Maya"]


def test_a_negotiation_call_turns_answers_to_requests_into_tasks():
    t, items, intents = _meeting(NEGOTIATION)
    assert [task_line(i) for i in items] == [
        "Send over the MSA redlines with those two changes by Tue 8 Dec — owner: Sam",
        "Review the order form and confirm the PO number by Sat 5 Dec — owner: Monica",
        "Book thirty minutes next Thursday to sign — owner: Sam",
    ]
    lines = summarize(t, items, intents, None, REPS).splitlines()
    assert lines[0] == "Sam Patel met Rachel Green."
    assert lines[1] == (
        "Decision: Legal has two open points on the MSA: liability cap and data residency. Their CFO signs "
        "anything above 100k, and they want to sign before year end."
    )
    assert not any("be quick" in i.text or "screen" in i.text for i in items)


def test_a_renewal_review_keeps_real_tasks_only():
    t, items, intents = _meeting(RENEWAL_QBR)
    assert [task_line(i) for i in items] == [
        "Put together a comparison for their forecasting team by Fri 4 Dec — owner: Sam",
        "Send the usage report for the new regions — owner: Tom",
    ]
    lines = summarize(t, items, intents, None, REPS).splitlines()
    assert "Budget: The renewal budget is about 45,000 dollars, same as last year." in lines
    assert "Competition: They are also evaluating Salesforce Einstein for forecasting." in lines


def test_the_debrief_shows_tasks_without_speaker_labels():
    t, items, intents = _meeting(seed_content.GLOBEX_DISCOVERY)
    text = render_text(
        meeting_debrief(
            {
                "meeting_title": "Discovery call — Globex dispatch",
                "summary": summarize(t, items, intents, None, REPS),
                "action_items": [i.model_dump(mode="json") for i in items],
            }
        )
    )
    assert "• Send over a proposal with the rollout plan by Fri 11 Dec — owner: Alice" in text
    assert "You:" not in text and "Prospect:" not in text and "Alice:" not in text


def test_the_follow_up_email_recaps_in_the_second_person():
    _, items, intents = _meeting(seed_content.GLOBEX_DISCOVERY)
    body = draft_followup_email("Discovery call — Globex dispatch", "Hank Scorpio", "Alice Moreau", items, intents).body
    assert "- Budget: You set aside about eighty thousand for this in Q1." in body
    assert "- Lena: send the depot list and current volumes (by Saturday 5 December)" in body
    assert "Alice Moreau met" not in body and "Hank:" not in body


def test_a_proposal_after_the_call_reads_back_what_the_prospect_said():
    from sequences.skills.meetings.summary import what_they_said
    from sequences.skills.proposals.templates import ProposalFacts, executive_summary

    _, _, intents = _meeting(seed_content.GLOBEX_DISCOVERY)
    heard = what_they_said(intents.buying_signals)
    assert heard[:2] == ["You set aside about eighty thousand for this in Q1.", "Your CFO, Dana, owns the budget."]
    summary = executive_summary(ProposalFacts(company_name="Globex Logistics", meeting_notes="\n".join(heard)))
    assert summary.startswith("In our conversations, you told us that you set aside about eighty thousand")
    assert "I'll" not in summary and "Next step on my side" not in summary
