"""Meeting transcript skills (meeting_ended, offline): parsing, call type, items, intents, coaching,
next actions, summary and follow-up email, on realistic multi-speaker transcripts and their edge cases."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sequences.skills.meetings.action_items import ActionItem, Owner, extract_action_items
from sequences.skills.meetings.call_coaching import coaching_stats
from sequences.skills.meetings.call_types import DEFAULT_CALL_TYPES, classify_call_type, is_sales_call_type
from sequences.skills.meetings.commitments import is_commitment
from sequences.skills.meetings.due_dates import due_from_text
from sequences.skills.meetings.followup_email import draft_followup_email
from sequences.skills.meetings.intents import BuyingSignal, Intents, SentenceRef, SignalKind, detect_intents
from sequences.skills.meetings.next_actions import MAX_NEXT_ACTIONS, suggest_next_actions
from sequences.skills.meetings.speakers import is_rep_speaker, rep_speakers
from sequences.skills.meetings.summary import MAX_SUMMARY_CHARS, summarize, task_line
from sequences.skills.meetings.text import estimate_duration_s, split_sentences, word_count
from sequences.skills.meetings.transcript import UNKNOWN_SPEAKER, Transcript, Utterance, parse_transcript

# --- realistic transcripts -----------------------------------------------------------------------------

# Discovery call, "[hh:mm:ss] Speaker: text", one continuation line; rep Alex Morgan. Tuesday 24 Nov 2026.
DISCOVERY = """\
[00:00:04] Alex Morgan: Hi Dana, hi Priya, thanks for making the time today.
[00:00:09] Dana Whitfield: Of course. Happy to be here.
[00:00:12] Alex Morgan: To make the most of the call, could you walk me through how your reps handle follow-ups today?
[00:00:21] Dana Whitfield: Sure. Right now everything lives in Salesforce and in people's inboxes.
Honestly, half the follow-ups after calls never get sent.
[00:00:38] Priya Nair: And the ones that do go out are often two or three days late.
[00:00:45] Alex Morgan: How many reps are on the team?
[00:00:49] Dana Whitfield: Forty-two account executives across three regions.
[00:00:55] Alex Morgan: What happens to a deal when a follow-up slips?
[00:01:02] Priya Nair: It goes stale. We lost two renewals last quarter because nobody followed up in time.
[00:01:15] Alex Morgan: Got it. Are you looking at other tools at the moment?
[00:01:20] Dana Whitfield: We're also evaluating Gong, mostly for call recording.
[00:01:27] Alex Morgan: That makes sense. What would a good outcome look like for you?
[00:01:33] Dana Whitfield: Follow-ups sent the same day, and managers seeing the risk on deals before they slip.
[00:01:45] Alex Morgan: And in terms of budget, is there money set aside for this?
[00:01:50] Dana Whitfield: We have about $60k budgeted for sales tooling this fiscal year.
[00:01:58] Priya Nair: Our CFO signs off on anything above fifty thousand, so she will want to see the numbers.
[00:02:08] Alex Morgan: Understood. What is your timeline?
[00:02:12] Dana Whitfield: We want to go live by the end of Q1, before the new territories start.
[00:02:20] Alex Morgan: Great. I'll send you a short case study from a logistics customer by Thursday.
[00:02:28] Priya Nair: I'll pull our follow-up numbers from last quarter and share them before the next call.
[00:02:36] Alex Morgan: Perfect. As a next step, let's book a demo next Wednesday with your sales managers.
[00:02:44] Dana Whitfield: Works for me. I'll loop in our two regional managers.
[00:02:50] Alex Morgan: Thanks both, talk soon.
"""

# Demo without timestamps, "Speaker: text" with a continuation line; rep Jordan Lee. Thursday 19 Nov 2026.
DEMO = """\
Jordan Lee: Thanks for joining, Maria and Tom. Today I'll show you how Proactive works inside Slack.
Maria Gonzalez: Great, we've been looking forward to this.
Jordan Lee: When a call ends, Proactive reads the transcript and drafts the follow-up email.
The rep reviews it in Slack and sends it with one click.
Tom Becker: Where is the transcript stored, and who can see it?
Jordan Lee: It stays in your own workspace, encrypted at rest, and only the rep and their manager can see it.
Tom Becker: Good. We will need the security questionnaire filled in before anything goes live.
Jordan Lee: Of course. Here is the deal risk view: every morning the manager gets the deals that went quiet.
Maria Gonzalez: That is exactly what I was missing last quarter.
Maria Gonzalez: How does pricing work for a team of our size?
Jordan Lee: It is per seat, with a discount above fifty seats.
Maria Gonzalez: We have around sixty reps, so that would apply.
Jordan Lee: What does your approval process look like on your side?
Maria Gonzalez: I can approve up to twenty thousand. Above that our CFO, Linda, has to sign off.
Jordan Lee: Understood. Would it help if I joined that conversation?
Maria Gonzalez: Yes, that would help a lot.
Tom Becker: I'll send the security questionnaire tomorrow.
Jordan Lee: Perfect. I'll send over the proposal by Friday.
Jordan Lee: And let's set up a call next Tuesday afternoon with your CFO to walk through the numbers.
Maria Gonzalez: Sounds good. I'll check Linda's calendar and confirm.
Jordan Lee: Great, thank you both.
Tom Becker: Thanks, bye.
"""

# Internal standup as WebVTT with cue numbers and timings; Priya Shah runs it. Tuesday 24 Nov 2026.
STANDUP = """\
WEBVTT

1
00:00:01.000 --> 00:00:05.000
<v Priya Shah>Morning everyone, let's do the standup.</v>

2
00:00:05.500 --> 00:00:14.000
<v Ben Okafor>Yesterday I finished the pipeline review for the west region. No blockers.</v>

3
00:00:14.500 --> 00:00:24.000
<v Carla Diaz>I'm still fixing the forecast sheet. I'll have it done by end of day.</v>

4
00:00:24.500 --> 00:00:31.000
<v Priya Shah>Thanks. Any blockers on the sprint board?</v>

5
00:00:31.500 --> 00:00:40.000
<v Ben Okafor>The CRM sync failed again overnight, I'll open a ticket with IT.</v>

6
00:00:40.500 --> 00:00:46.000
<v Priya Shah>Okay, that's it for today. Same time tomorrow.</v>
"""

# German discovery call, "hh:mm:ss Speaker: text"; rep Jonas Weber. Monday 23 Nov 2026.
GERMAN = """\
00:00:03 Jonas Weber: Guten Morgen Frau Vogel, guten Morgen Herr Hansen, danke für Ihre Zeit.
00:00:09 Lena Vogel: Guten Morgen! Gerne.
00:00:12 Jonas Weber: Wie organisieren Sie heute die Nachbereitung Ihrer Kundentermine?
00:00:20 Lena Vogel: Ehrlich gesagt sehr manuell. Die Notizen landen in Excel und im CRM.
00:00:31 Markus Hansen: Und oft werden die Follow-up-Mails erst Tage später verschickt.
00:00:39 Jonas Weber: Wie viele Vertriebsmitarbeiter sind betroffen?
00:00:44 Lena Vogel: Zwölf im Außendienst und vier im Innendienst.
00:00:51 Jonas Weber: Gibt es schon ein Budget für ein solches Werkzeug?
00:00:57 Markus Hansen: Wir haben für nächstes Jahr etwa 15.000 Euro eingeplant.
00:01:06 Jonas Weber: Und wer entscheidet am Ende über die Anschaffung?
00:01:11 Markus Hansen: Das entscheide ich als Geschäftsführer, zusammen mit Frau Vogel.
00:01:19 Jonas Weber: Schauen Sie sich auch andere Anbieter an?
00:01:24 Lena Vogel: Wir haben uns HubSpot angesehen, aber das war uns zu aufwendig.
00:01:33 Jonas Weber: Verstehe. Bis wann möchten Sie eine Lösung im Einsatz haben?
00:01:39 Markus Hansen: Idealerweise zum Start des zweiten Quartals.
00:01:46 Jonas Weber: Gut. Ich schicke Ihnen das Angebot bis Freitag.
00:01:52 Lena Vogel: Ich schicke Ihnen die Liste unserer Vertriebsmitarbeiter bis morgen.
00:01:59 Jonas Weber: Lassen Sie uns einen Termin für nächsten Dienstag vereinbaren, um das Angebot zu besprechen.
00:02:07 Markus Hansen: Einverstanden. Dienstagnachmittag passt mir gut.
00:02:12 Jonas Weber: Perfekt, dann sende ich Ihnen gleich die Einladung.
00:02:17 Lena Vogel: Vielen Dank, bis Dienstag!
00:02:20 Jonas Weber: Danke Ihnen, auf Wiederhören.
"""

DISCOVERY_START = datetime(2026, 11, 24, 15, 0, tzinfo=UTC)  # a Tuesday
DEMO_START = datetime(2026, 11, 19, 16, 0, tzinfo=UTC)  # a Thursday
STANDUP_START = datetime(2026, 11, 24, 9, 0, tzinfo=UTC)  # a Tuesday
GERMAN_START = datetime(2026, 11, 23, 10, 0, tzinfo=UTC)  # a Monday


def texts(items: list[ActionItem]) -> list[str]:
    return [i.text for i in items]


def kinds(intents: Intents) -> dict[SignalKind, list[str]]:
    found: dict[SignalKind, list[str]] = {}
    for signal in intents.buying_signals:
        found.setdefault(signal.kind, []).append(signal.quote)
    return found


# --- parse_transcript --------------------------------------------------------------------------------------


def test_discovery_transcript_parses_bracketed_timestamps_and_continuations():
    t = parse_transcript(DISCOVERY)
    assert t.speakers == ["Alex Morgan", "Dana Whitfield", "Priya Nair"]
    assert len(t.utterances) == 23
    assert t.timed
    first = t.utterances[0]
    assert (first.speaker, first.start_s) == ("Alex Morgan", 4.0)
    assert first.text == "Hi Dana, hi Priya, thanks for making the time today."
    # the unlabelled line is appended to Dana's turn
    assert t.utterances[3].text == (
        "Sure. Right now everything lives in Salesforce and in people's inboxes. "
        "Honestly, half the follow-ups after calls never get sent."
    )
    assert t.utterances[3].start_s == 21.0
    assert t.utterances[-1].start_s == 170.0


def test_timed_durations_run_to_the_next_turn_but_a_silence_is_not_talk():
    t = parse_transcript(DISCOVERY)
    assert t.utterances[0].duration_s == 5.0  # 00:04 → 00:09
    gap = parse_transcript("[00:00:01] Dana Whitfield: Hi.\n[00:10:00] Alex Morgan: Hello again.")
    hi = gap.utterances[0]
    assert hi.duration_s == pytest.approx(estimate_duration_s("Hi.") * 2 + 5)  # capped, not 599 s
    # the last turn has no next timestamp: estimated from its words
    assert gap.utterances[1].duration_s == estimate_duration_s("Hello again.")


def test_untimed_transcript_estimates_durations_at_150_words_per_minute():
    t = parse_transcript(DEMO)
    assert not t.timed
    assert all(u.start_s is None for u in t.utterances)
    assert t.speakers == ["Jordan Lee", "Maria Gonzalez", "Tom Becker"]
    assert len(t.utterances) == 21
    assert t.utterances[2].text.endswith("email. The rep reviews it in Slack and sends it with one click.")
    for u in t.utterances:
        assert u.duration_s == pytest.approx(word_count(u.text) * 60 / 150, abs=0.01)
    assert estimate_duration_s(" ".join(["word"] * 150)) == 60.0


def test_webvtt_voices_cue_timings_and_headers():
    t = parse_transcript(STANDUP)
    assert [(u.speaker, u.start_s) for u in t.utterances] == [
        ("Priya Shah", 1.0),
        ("Ben Okafor", 5.5),
        ("Carla Diaz", 14.5),
        ("Priya Shah", 24.5),
        ("Ben Okafor", 31.5),
        ("Priya Shah", 40.5),
    ]
    assert t.utterances[0].text == "Morning everyone, let's do the standup."
    assert "WEBVTT" not in t.text and "-->" not in t.text


def test_german_transcript_with_bare_timestamps():
    t = parse_transcript(GERMAN)
    assert t.speakers == ["Jonas Weber", "Lena Vogel", "Markus Hansen"]
    assert len(t.utterances) == 22
    assert t.utterances[1].start_s == 9.0
    assert t.utterances[-1].start_s == 140.0
    assert t.utterances[6].text == "Zwölf im Außendienst und vier im Innendienst."


@pytest.mark.parametrize("text", [None, "", "   ", "\n\n\t\n"])
def test_empty_input_is_an_empty_transcript(text):
    t = parse_transcript(text)
    assert t == Transcript()
    assert t.is_empty and not t.timed and t.speakers == []


def test_transcript_without_speakers_is_one_unknown_turn():
    t = parse_transcript("we went through the roadmap\nand then pricing came up\n\nthey want a proposal")
    assert [(u.speaker, u.text) for u in t.utterances] == [
        (UNKNOWN_SPEAKER, "we went through the roadmap and then pricing came up they want a proposal")
    ]


@pytest.mark.parametrize(
    ("line", "speaker", "text", "start_s"),
    [
        ("Dana Whitfield: We need this by March.", "Dana Whitfield", "We need this by March.", None),
        ("[00:01:23] Dana Whitfield: Hello.", "Dana Whitfield", "Hello.", 83.0),
        ("(01:23) Dana: Hello.", "Dana", "Hello.", 83.0),
        ("[1:02:03.5] Alex M.: Hello.", "Alex M.", "Hello.", 3723.5),
        ("00:01:23 Dana: Hello.", "Dana", "Hello.", 83.0),
        ("00:01:23 - Dana: Hello.", "Dana", "Hello.", 83.0),
        ("<v Dana Whitfield>Hello.</v>", "Dana Whitfield", "Hello.", None),
        ("<v.loud Dana>Hello <b>there</b>.</v>", "Dana", "Hello there.", None),
        ("Speaker 2: Hello.", "Speaker 2", "Hello.", None),
        ("Dr. Jean-Luc van der Berg: Hello.", "Dr. Jean-Luc van der Berg", "Hello.", None),
        ("Dana (Northwind): Hello.", "Dana (Northwind)", "Hello.", None),
        ("田中\uff1a本日はありがとうございます。", "田中", "本日はありがとうございます。", None),  # full-width colon
    ],
)
def test_supported_line_formats(line, speaker, text, start_s):
    (u,) = parse_transcript(line).utterances
    assert (u.speaker, u.text, u.start_s) == (speaker, text, start_s)


def test_headings_urls_and_clock_times_are_not_speakers():
    t = parse_transcript(
        "Alex Morgan: Here is the recap.\nNext steps: send the deck\nAgenda: pricing\n"
        "See https://example.com/deck\n10:30 works for me"
    )
    assert len(t.utterances) == 1
    assert t.utterances[0].text == (
        "Here is the recap. Next steps: send the deck Agenda: pricing See https://example.com/deck 10:30 works for me"
    )


def test_lower_case_labels_count_when_used_repeatedly():
    t = parse_transcript("alex: hi dana\ndana: hi alex\nalex: how is the rollout going?\ndana: slowly")
    assert t.speakers == ["alex", "dana"]
    assert len(t.utterances) == 4


def test_speaker_on_its_own_line_and_timestamp_without_speaker():
    t = parse_transcript("Dana Whitfield:\nHello there.\n[00:00:05] Alex Morgan: Hi.\n[00:00:09] and one more thing")
    assert [(u.speaker, u.text, u.start_s) for u in t.utterances] == [
        ("Dana Whitfield", "Hello there.", None),
        ("Alex Morgan", "Hi.", 5.0),
        ("Alex Morgan", "and one more thing", 9.0),
    ]


def test_srt_cues_without_voice_tags():
    srt = "1\n00:00:01,000 --> 00:00:03,000\nDana: Hello.\n\n2\n00:00:03,500 --> 00:00:06,000\nstill me talking\n"
    t = parse_transcript(srt)
    assert [(u.speaker, u.text, u.start_s) for u in t.utterances] == [
        ("Dana", "Hello.", 1.0),
        ("Dana", "still me talking", 3.5),
    ]


def test_word_count_and_sentences():
    assert word_count("I'll send the proposal, OK?") == 5
    assert word_count("本日はありがとう") == 4  # 8 CJK characters, two to a word
    assert split_sentences("Dr. Smith agreed. Next step is a demo! Right?") == [
        "Dr. Smith agreed.",
        "Next step is a demo!",
        "Right?",
    ]
    assert split_sentences("見積もりを送ります。来週です。") == ["見積もりを送ります。", "来週です。"]


@settings(max_examples=300, deadline=None)
@given(st.text())
def test_parse_transcript_never_raises(text):
    t = parse_transcript(text)
    assert all(u.text for u in t.utterances)
    assert all(u.duration_s >= 0 for u in t.utterances)


@settings(max_examples=150, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.sampled_from(["Alex Morgan", "Dana", "[00:00:01] Priya Nair", "00:01:02 Tom", "<v Sam>", "", "NOTE"]),
            st.text(alphabet=st.characters(blacklist_categories=("Cs",)), max_size=40),
        ),
        max_size=30,
    )
)
def test_parse_transcript_never_raises_on_transcript_like_text(lines):
    text = "\n".join(f"{prefix}: {said}" if prefix else said for prefix, said in lines)
    t = parse_transcript(text)
    stats = coaching_stats(t, {"Alex Morgan"})
    assert 0.0 <= stats.talk_ratio <= 1.0
    assert 0.0 <= stats.next_step_clarity <= 1.0
    detect_intents(t, {"Alex Morgan"}, DEMO_START)
    extract_action_items(t, {"Alex Morgan"}, DEMO_START)


# --- reps --------------------------------------------------------------------------------------------------


def test_rep_name_shared_with_a_prospects_first_name():
    labels = ["Sam Patel", "Sam Rivera", "Sam"]
    assert rep_speakers(labels, {"Sam Patel"}) == {"Sam Patel"}  # the exact full name wins
    assert rep_speakers(["Sam Rivera", "Sam"], {"Sam Patel"}) == {"Sam"}  # a bare first name matches
    assert rep_speakers(["SAM PATEL", "sam rivera"], {"sam patel"}) == {"SAM PATEL"}
    assert rep_speakers(["Sam P.", "Sam Rivera"], {"Sam Patel"}) == {"Sam P."}
    assert rep_speakers(["Dr. Sam Patel (Proactive)"], {"Sam Patel"}) == {"Dr. Sam Patel (Proactive)"}
    assert rep_speakers(["Sam Patel", "Sam Rivera"], {"Sam"}) == {"Sam Patel", "Sam Rivera"}  # first name only
    assert rep_speakers(["Sam Patel"], set()) == set()
    assert is_rep_speaker("alex", {"Alex Morgan"})
    assert not is_rep_speaker("Alexandra Morgan", {"Alex Morgan"})


def test_namesake_prospect_owns_their_own_commitment():
    t = parse_transcript(
        "Sam Patel: Thanks for the time today, Sam.\n"
        "Sam Rivera: Likewise. I'll send you our current process document tomorrow.\n"
        "Sam Patel: Great, and I'll send over the proposal by Friday.\n"
    )
    items = extract_action_items(t, {"Sam Patel"}, DEMO_START)
    assert [(i.owner, i.speaker) for i in items] == [(Owner.PROSPECT, "Sam Rivera"), (Owner.REP, "Sam Patel")]
    intents = detect_intents(t, {"Sam Patel"}, DEMO_START)
    assert intents.send_proposal == SentenceRef(
        text="Great, and I'll send over the proposal by Friday.", speaker="Sam Patel", when=date(2026, 11, 20)
    )


# --- classify_call_type ------------------------------------------------------------------------------------


def test_existing_call_type_is_kept_at_confidence_half_or_more():
    kept = classify_call_type("Weekly standup", None, "negotiation", 0.5, None)
    assert (kept.call_type, kept.is_sales, kept.coaching_enabled, kept.confidence, kept.matched) == (
        "negotiation",
        True,
        True,
        0.5,
        ["existing"],
    )
    replaced = classify_call_type("Weekly standup", None, "negotiation", 0.49, None)
    assert (replaced.call_type, replaced.is_sales, replaced.coaching_enabled) == ("internal", False, False)
    assert classify_call_type("Weekly standup", None, "", 0.9, None).call_type == "internal"


@pytest.mark.parametrize(
    ("title", "transcript", "call_type", "is_sales"),
    [
        ("Intro call - Northwind Logistics / Proactive", DISCOVERY, "discovery", True),
        ("Acme Corp <> Proactive demo", DEMO, "demo", True),
        ("Daily standup - Sales team", STANDUP, "internal", False),
        ("Erstgespräch Hansen GmbH", GERMAN, "discovery", True),
        ("Contract redlines with Acme", "", "negotiation", True),
        ("Acme onboarding kickoff", "", "onboarding", False),
        ("Q3 QBR - Globex", "", "qbr", False),
        ("Interview: senior AE candidate", "", "interview", False),
    ],
)
def test_call_type_from_title_keywords(title, transcript, call_type, is_sales):
    result = classify_call_type(title, parse_transcript(transcript), None, None, None)
    assert (result.call_type, result.is_sales, result.coaching_enabled) == (call_type, is_sales, is_sales)
    assert result.confidence >= 0.8
    assert any(m.startswith("title:") for m in result.matched)


def test_call_type_from_the_transcript_alone_needs_two_keywords():
    standup_words = "Priya: Quick standup today. Ben: No blockers from me, the sprint is on track."
    result = classify_call_type("Tuesday sync", standup_words, None, None, None)
    assert (result.call_type, result.is_sales) == ("internal", False)
    assert 0.3 <= result.confidence <= 0.6
    assert set(result.matched) == {"transcript:standup", "transcript:sprint", "transcript:blockers"}
    one_word = classify_call_type("Tuesday sync", "Dana: any blockers?", None, None, None)
    assert one_word.call_type == "unknown"


def test_unknown_call_type_is_sales():
    result = classify_call_type("Catch-up with Dana", "Dana: Nice to see you again.", None, None, None)
    assert result.model_dump() == {
        "call_type": "unknown",
        "is_sales": True,
        "coaching_enabled": True,
        "confidence": 0.2,
        "matched": [],
    }
    assert classify_call_type(None, None, None, None, None).call_type == "unknown"


def test_org_call_types_replace_the_default_table():
    org = {"renewal pitch": ["renewal"], "partner sync": ["partner"], "closing call": ["signature"]}
    renewal = classify_call_type("Globex renewal", None, None, None, org)
    assert (renewal.call_type, renewal.is_sales) == ("renewal pitch", True)
    partner = classify_call_type("Partner update", None, None, None, org, coaching_call_types={"partner sync"})
    assert (partner.call_type, partner.is_sales, partner.coaching_enabled) == ("partner sync", False, True)
    assert classify_call_type("Final signature", None, None, None, org).call_type == "closing call"
    # the default table's keywords no longer apply
    assert classify_call_type("Product demo", None, None, None, org).call_type == "unknown"


def test_sales_call_type_names():
    assert set(DEFAULT_CALL_TYPES) >= {"discovery", "demo", "negotiation", "onboarding", "support", "internal"}
    assert [n for n in DEFAULT_CALL_TYPES if is_sales_call_type(n)] == ["discovery", "demo", "negotiation"]
    assert all(is_sales_call_type(n) for n in ["Close", "closing", "Negotiation", "proposal review", "unknown"])
    assert not any(is_sales_call_type(n) for n in ["support", "internal", "interview", "qbr", "onboarding"])


def test_keywords_match_whole_words_only():
    # "demonstrate" is not "demo", "supportive" is not "support"
    result = classify_call_type("We demonstrate supportive leadership", None, None, None, None)
    assert result.call_type == "unknown"


# --- due dates ---------------------------------------------------------------------------------------------

TUESDAY = date(2026, 11, 24)


@pytest.mark.parametrize(
    ("text", "due"),
    [
        ("I'll send it today.", TUESDAY),
        ("I'll send it by EOD.", TUESDAY),
        ("I'll send it tomorrow.", date(2026, 11, 25)),
        ("I'll send it the day after tomorrow.", date(2026, 11, 26)),
        ("I'll send it by Friday.", date(2026, 11, 27)),
        ("I'll send it on Tuesday.", date(2026, 12, 1)),  # the same weekday means next week's
        ("I'll send it next Tuesday.", date(2026, 12, 1)),
        ("I'll send it next Monday.", date(2026, 11, 30)),
        ("Let's meet next Friday.", date(2026, 12, 4)),
        ("I'll send it by end of week.", date(2026, 11, 27)),
        ("I'll send it by the end of the week.", date(2026, 11, 27)),
        ("I'll send it next week.", date(2026, 12, 4)),
        ("I'll send it by the end of the month.", date(2026, 11, 30)),
        ("I'll send it in two weeks.", date(2026, 12, 8)),
        ("I'll send it in 3 days.", date(2026, 11, 27)),
        ("I'll send it by December 3rd.", date(2026, 12, 3)),
        ("I'll send it by the 5th of January.", date(2027, 1, 5)),
        ("I'll send it by March 2.", date(2027, 3, 2)),
        ("Ich schicke es bis Freitag.", date(2026, 11, 27)),
        ("Ich schicke es bis morgen.", date(2026, 11, 25)),
        ("Ich schicke es nächsten Dienstag.", date(2026, 12, 1)),
        ("Ich schicke es bis 3. Dezember.", date(2026, 12, 3)),
        ("Guten Morgen zusammen.", None),
        ("I'll send it soon.", None),
        ("I'll send it by February 30.", None),
        # an explicit "by" date wins over a meeting day mentioned earlier
        ("After Monday's offsite I'll send it by Thursday.", date(2026, 11, 26)),
    ],
)
def test_due_from_text(text, due):
    assert due_from_text(text, TUESDAY) == due
    assert due_from_text(text, datetime(2026, 11, 24, 23, 0, tzinfo=UTC)) == due


def test_end_of_week_on_a_weekend_is_the_next_friday():
    saturday = date(2026, 11, 28)
    assert due_from_text("by end of week", saturday) == date(2026, 12, 4)
    assert due_from_text("by end of week", date(2026, 11, 27)) == date(2026, 11, 27)  # on a Friday: that day
    assert due_from_text("by the end of the month", date(2026, 12, 10)) == date(2026, 12, 31)


# --- action items ------------------------------------------------------------------------------------------


def test_discovery_action_items_are_tasks_in_the_reps_perspective():
    items = extract_action_items(parse_transcript(DISCOVERY), {"Alex Morgan"}, DISCOVERY_START)
    assert [(i.text, i.owner, i.due, i.who) for i in items] == [
        ("Send a short case study from a logistics customer", Owner.REP, date(2026, 11, 26), "Alex Morgan"),
        (
            "Pull their follow-up numbers from last quarter and share them before the next call",
            Owner.PROSPECT,
            None,
            "Priya Nair",
        ),
        ("Book a demo next Wednesday with their sales managers", Owner.REP, date(2026, 12, 2), "Alex Morgan"),
        ("Loop in their two regional managers", Owner.PROSPECT, None, "Dana Whitfield"),
    ]
    first = "Send a short case study from a logistics customer by Thu 26 Nov — owner: Alex"
    assert task_line(items[0]) == first
    assert (
        task_line(items[2]) == "Book a demo next Wednesday with their sales managers — owner: Alex"
    )  # date in the text


def test_demo_action_items_skip_narration_and_needs():
    items = extract_action_items(parse_transcript(DEMO), {"Jordan Lee"}, DEMO_START)
    assert [(i.text, i.owner, i.due) for i in items] == [
        ("Send the security questionnaire", Owner.PROSPECT, date(2026, 11, 20)),
        ("Send over the proposal", Owner.REP, date(2026, 11, 20)),
        (
            "Set up a call next Tuesday afternoon with their CFO to walk through the numbers",
            Owner.REP,
            date(2026, 11, 24),
        ),
        ("Check Linda's calendar and confirm", Owner.PROSPECT, None),
    ]
    # "Today I'll show you how…" (narration) and "We will need the questionnaire…" (a need) are not items
    assert not any("show you" in t or "will need" in t for t in texts(items))


def test_german_action_items_are_kept_as_said():
    items = extract_action_items(parse_transcript(GERMAN), {"Jonas Weber"}, GERMAN_START)
    assert [(i.text, i.owner, i.due) for i in items] == [
        ("Ich schicke Ihnen das Angebot bis Freitag", Owner.REP, date(2026, 11, 27)),
        ("Ich schicke Ihnen die Liste unserer Vertriebsmitarbeiter bis morgen", Owner.PROSPECT, date(2026, 11, 24)),
        (
            "Lassen Sie uns einen Termin für nächsten Dienstag vereinbaren, um das Angebot zu besprechen",
            Owner.REP,
            date(2026, 12, 1),
        ),
    ]


def test_standup_items_belong_to_non_reps_and_take_their_object_from_context():
    items = extract_action_items(parse_transcript(STANDUP), {"Priya Shah"}, STANDUP_START)
    assert [(i.text, i.who, i.owner, i.due) for i in items] == [
        ("Finish fixing the forecast sheet", "Carla Diaz", Owner.PROSPECT, STANDUP_START.date()),  # "I'll have it done"
        ("Open a ticket with IT", "Ben Okafor", Owner.PROSPECT, None),  # "The CRM sync failed again, I'll open…"
    ]


def test_near_identical_items_are_kept_once_with_the_later_due_date():
    t = parse_transcript(
        "Alex Morgan: I'll send the pricing sheet.\n"
        "Dana Whitfield: Great.\n"
        "Alex Morgan: So, I will send the pricing sheet by Friday.\n"
        "Dana Whitfield: And I'll send the pricing sheet to our CFO.\n"
        "Alex Morgan: Also, I'll send over the pricing sheets.\n"
    )
    items = extract_action_items(t, {"Alex Morgan"}, TUESDAY)
    assert [(i.text, i.owner, i.due) for i in items] == [
        ("Send the pricing sheet", Owner.REP, date(2026, 11, 27)),
        ("Send the pricing sheet to their CFO", Owner.PROSPECT, None),  # "our CFO" as the rep reads it
    ]


@pytest.mark.parametrize(
    ("sentence", "expected"),
    [
        ("I'll send the deck.", True),
        ("We will share the security docs by Friday.", True),
        ("Let me send you the recording.", True),
        ("The next step is a technical review.", True),
        ("Action item: Dana to confirm headcount.", True),
        ("Let's schedule the pilot kickoff.", True),
        ("Please review the contract by end of week.", True),
        ("I'm going to loop in our CTO.", True),
        ("Ich werde das mit dem Vorstand besprechen.", True),
        ("What are the next steps?", False),
        ("I'll be honest, the last tool failed.", False),
        ("I will not be able to join.", False),
        ("Let's get started.", False),
        ("See you tomorrow!", False),
        ("Today I'll show you the dashboard.", False),
        ("We'll need legal to look at it.", False),
        ("The weather is nice.", False),
    ],
)
def test_is_commitment(sentence, expected):
    assert is_commitment(sentence) is expected


def test_items_from_a_transcript_without_speakers_are_the_prospects():
    t = parse_transcript("we'll send the signed order form by friday\nand then kickoff")
    (item,) = extract_action_items(t, {"Alex Morgan"}, TUESDAY)
    assert (item.owner, item.speaker, item.due) == (Owner.PROSPECT, UNKNOWN_SPEAKER, date(2026, 11, 27))


def test_no_items_from_an_empty_transcript():
    assert extract_action_items(parse_transcript(""), {"Alex Morgan"}, TUESDAY) == []


# --- intents -----------------------------------------------------------------------------------------------


def test_demo_intents_send_proposal_and_schedule_meeting():
    intents = detect_intents(parse_transcript(DEMO), {"Jordan Lee"}, DEMO_START)
    assert intents.send_proposal == SentenceRef(
        text="I'll send over the proposal by Friday.", speaker="Jordan Lee", when=date(2026, 11, 20)
    )
    assert intents.schedule_meeting == SentenceRef(
        text="And let's set up a call next Tuesday afternoon with your CFO to walk through the numbers.",
        speaker="Jordan Lee",
        when=date(2026, 11, 24),
    )
    assert kinds(intents) == {
        SignalKind.PRICING: ["How does pricing work for a team of our size?"],
        SignalKind.DECISION_MAKER: [
            "I can approve up to twenty thousand.",
            "Above that our CFO, Linda, has to sign off.",
        ],
    }
    assert "I'll send over the proposal by Friday." in intents.commitments
    assert "I'll send the security questionnaire tomorrow." in intents.commitments
    # the rep's own question about approval is not a buying signal
    assert all(s.speaker != "Jordan Lee" for s in intents.buying_signals)


def test_discovery_buying_signals():
    intents = detect_intents(parse_transcript(DISCOVERY), {"Alex Morgan"}, DISCOVERY_START)
    assert kinds(intents) == {
        SignalKind.COMPETITOR: ["We're also evaluating Gong, mostly for call recording."],
        SignalKind.BUDGET: ["We have about $60k budgeted for sales tooling this fiscal year."],
        SignalKind.DECISION_MAKER: [
            "Our CFO signs off on anything above fifty thousand, so she will want to see the numbers."
        ],
        SignalKind.TIMELINE: ["We want to go live by the end of Q1, before the new territories start."],
    }
    assert intents.send_proposal is None  # a case study is not a proposal
    assert intents.schedule_meeting is not None
    assert intents.schedule_meeting.when == date(2026, 12, 2)
    priya = "I'll pull our follow-up numbers from last quarter and share them before the next call."
    assert priya in intents.follow_ups


def test_german_intents():
    intents = detect_intents(parse_transcript(GERMAN), {"Jonas Weber"}, GERMAN_START)
    assert intents.send_proposal is not None
    assert intents.send_proposal.text == "Ich schicke Ihnen das Angebot bis Freitag."
    assert intents.send_proposal.when == date(2026, 11, 27)
    assert intents.schedule_meeting is not None
    assert intents.schedule_meeting.when == date(2026, 12, 1)
    assert set(kinds(intents)) == set(SignalKind) - {SignalKind.PRICING}  # only the rep said "Angebot"
    assert kinds(intents)[SignalKind.BUDGET] == ["Wir haben für nächstes Jahr etwa 15.000 Euro eingeplant."]
    assert kinds(intents)[SignalKind.COMPETITOR] == ["Wir haben uns HubSpot angesehen, aber das war uns zu aufwendig."]


def test_prospect_promises_do_not_become_rep_intents():
    t = parse_transcript(
        "Dana Whitfield: I'll send over our proposal template by Friday.\n"
        "Dana Whitfield: Let's set up a call next week with procurement.\n"
        "Alex Morgan: Sounds good.\n"
    )
    intents = detect_intents(t, {"Alex Morgan"}, TUESDAY)
    assert intents.send_proposal is None
    assert intents.schedule_meeting is None
    assert len(intents.commitments) == 1


def test_rep_question_to_schedule_counts_and_the_dated_reference_wins():
    t = parse_transcript(
        "Alex Morgan: Can we set up a follow-up call next Thursday at 2pm?\n"
        "Dana Whitfield: Yes.\n"
        "Alex Morgan: Great, I'll send you an invite.\n"
    )
    intents = detect_intents(t, {"Alex Morgan"}, TUESDAY)
    assert intents.schedule_meeting == SentenceRef(
        text="Can we set up a follow-up call next Thursday at 2pm?", speaker="Alex Morgan", when=date(2026, 12, 3)
    )


def test_intents_without_meeting_start_have_no_dates():
    intents = detect_intents(parse_transcript(DEMO), {"Jordan Lee"})
    assert intents.send_proposal is not None and intents.send_proposal.when is None


def test_custom_competitor_list():
    t = parse_transcript("Dana Whitfield: Honestly we like Acmetrics a lot.\nAlex Morgan: Noted.")
    assert kinds(detect_intents(t, {"Alex Morgan"}, competitors=["Acmetrics"])) == {
        SignalKind.COMPETITOR: ["Honestly we like Acmetrics a lot."]
    }
    assert kinds(detect_intents(t, {"Alex Morgan"})) == {}


# --- coaching ----------------------------------------------------------------------------------------------


def test_coaching_on_the_discovery_call():
    stats = coaching_stats(parse_transcript(DISCOVERY), {"Alex Morgan"})
    assert stats.question_count == 7
    assert 0.3 < stats.talk_ratio < 0.6
    assert (
        stats.rep_words
        + sum(word_count(u.text) for u in parse_transcript(DISCOVERY).utterances if u.speaker != "Alex Morgan")
        == stats.total_words
    )
    assert stats.longest_monologue_s == 9.0
    assert stats.next_step_clarity == 1.0
    assert stats.tip.startswith("Good balance")


def test_coaching_empty_transcript():
    stats = coaching_stats(parse_transcript(None), {"Alex Morgan"})
    assert stats.model_dump(exclude={"tip"}) == {
        "talk_ratio": 0.0,
        "question_count": 0,
        "longest_monologue_s": 0.0,
        "next_step_clarity": 0.0,
        "rep_words": 0,
        "total_words": 0,
        "call_minutes": 0.0,
        "question_target": 11,  # no length: the 45-minute target
    }
    assert "no transcript" in stats.tip


def test_coaching_when_the_rep_is_not_a_speaker():
    stats = coaching_stats(parse_transcript(DEMO), {"Someone Else"})
    assert (stats.rep_words, stats.talk_ratio) == (0, 0.0)
    assert "not recognised" in stats.tip


def test_coaching_tip_for_a_rep_who_talks_too_much():
    pitch = " ".join(["Our platform reads every call and drafts the follow-up for you."] * 25)  # 300 words, 120 s
    t = parse_transcript(
        f"[00:00:00] Alex Morgan: {pitch}\n"
        f"[00:02:10] Alex Morgan: {pitch}\n"
        "[00:04:20] Dana Whitfield: Okay.\n"
        "[00:04:22] Alex Morgan: I'll send the deck by Friday.\n"
    )
    stats = coaching_stats(t, {"Alex Morgan"})
    assert stats.talk_ratio > 0.65
    assert stats.longest_monologue_s == pytest.approx(260.0)  # two consecutive turns: 00:00 → 04:20
    assert stats.tip == "You talked 100% of the call: ask an open question and let the prospect talk more."


def test_coaching_tip_for_a_vague_ending_and_next_step_clarity_scale():
    t = parse_transcript(
        "Alex Morgan: What made you look at this now?\n"
        "Dana Whitfield: Our reps miss follow-ups and the managers cannot see risk early enough.\n"
        "Alex Morgan: How do you track it today?\n"
        "Dana Whitfield: Spreadsheets, mostly, and a weekly pipeline meeting.\n"
        "Alex Morgan: Who else cares about this?\n"
        "Dana Whitfield: Our CRO, she asked for it.\n"
        "Alex Morgan: Thanks, this was helpful.\n"
        "Dana Whitfield: Likewise, bye.\n"
    )
    stats = coaching_stats(t, {"Alex Morgan"})
    assert stats.next_step_clarity == 0.0
    assert stats.tip.startswith("Close with a concrete next step")
    vague = parse_transcript(t.text + "\nAlex Morgan: We'll follow up at some point.")
    assert coaching_stats(vague, {"Alex Morgan"}).next_step_clarity == 0.55  # step + "we", no time
    owned = parse_transcript(t.text + "\nAlex Morgan: I'll follow up with the deck.")
    assert coaching_stats(owned, {"Alex Morgan"}).next_step_clarity == 0.7  # step + owner, no time


def test_coaching_tip_for_few_questions():
    facts = " ".join(["We integrate with Slack and your CRM and the setup takes one afternoon."] * 15)
    t = parse_transcript(
        f"Alex Morgan: {facts}\nDana Whitfield: {facts} {facts}\nAlex Morgan: Any questions?\n"
        "Dana Whitfield: No.\nAlex Morgan: I'll send the recap tomorrow."
    )
    stats = coaching_stats(t, {"Alex Morgan"})
    assert (stats.question_count, stats.next_step_clarity) == (1, 1.0)
    assert stats.question_target == 2
    assert stats.tip == "You asked 1 question where a call this long needs about 2: ask more open discovery questions."


def test_praise_never_counts_questions_below_the_target():
    t = parse_transcript(
        "[00:00:00] Alex Morgan: Thanks for joining, Dana.\n"
        "[00:00:04] Dana Whitfield: Happy to. We run 40 depots and dispatch is all spreadsheets today.\n"
        "[00:00:12] Alex Morgan: Got it. I'll send the proposal by Friday.\n"
        "[00:00:18] Dana Whitfield: Great, talk then.\n"
    )
    stats = coaching_stats(t, {"Alex Morgan"})
    assert stats.question_count == 0 and stats.question_target == 2
    assert stats.tip.startswith("Good balance") and "question" not in stats.tip


def test_the_debrief_and_the_digest_share_one_question_target():
    from sequences.skills.coaching.rules import MeetingStats, aggregate_week, coaching_digest, question_target

    assert [question_target(m) for m in (None, 0, 3, 10, 45, 60)] == [11, 11, 2, 3, 11, 15]
    stats = coaching_stats(parse_transcript(DISCOVERY), {"Alex Morgan"})
    meeting = MeetingStats(
        meeting_id="m1",
        start=datetime(2026, 11, 24, 15, tzinfo=UTC),
        talk_ratio=stats.talk_ratio,
        question_count=stats.question_count,
        longest_monologue_s=stats.longest_monologue_s,
        next_step_clarity=stats.next_step_clarity,
        call_minutes=stats.call_minutes,
    )
    assert meeting.question_target == stats.question_target
    week = aggregate_week([meeting], "2026-W48", "UTC")
    assert week.question_target == stats.question_target
    digest = coaching_digest("Alex Morgan", week, None, None)
    assert f"(aim for {stats.question_target}+)" in digest.text
    assert not any("11" in s for s in digest.suggestions + digest.highlights)


# --- next actions ------------------------------------------------------------------------------------------


def test_next_actions_do_not_repeat_items_or_intents():
    t = parse_transcript(DEMO)
    items = extract_action_items(t, {"Jordan Lee"}, DEMO_START)
    intents = detect_intents(t, {"Jordan Lee"}, DEMO_START)
    actions = suggest_next_actions(items, intents, "demo")
    # the proposal and the CFO call are already promised: no "Send a proposal"/"Book a meeting…"
    assert [a.text for a in actions] == ["Remind the prospect of what they agreed to do"]


def test_next_actions_for_the_discovery_call_are_ranked():
    t = parse_transcript(DISCOVERY)
    items = extract_action_items(t, {"Alex Morgan"}, DISCOVERY_START)
    intents = detect_intents(t, {"Alex Morgan"}, DISCOVERY_START)
    actions = suggest_next_actions(items, intents, "discovery")
    assert [a.text for a in actions] == [
        "Send pricing options",
        "Prepare a competitive comparison",
        "Agree a mutual action plan against their timeline",
        "Remind the prospect of what they agreed to do",
    ]
    assert [a.priority for a in actions] == sorted(a.priority for a in actions)
    assert "Gong" in actions[1].reason
    # the demo is already booked, so the discovery-stage "Schedule a tailored demo" is not suggested
    assert "Schedule a tailored demo" not in [a.text for a in actions]


def test_next_actions_with_nothing_agreed():
    actions = suggest_next_actions([], Intents(), None)
    assert [(a.text, a.priority) for a in actions] == [("Book the next meeting", 1)]


def test_next_actions_compare_normalised_text():
    items = [ActionItem(text="I'll BOOK the next meetings!", owner=Owner.REP, due=TUESDAY, speaker="Alex Morgan")]
    signal = BuyingSignal(kind=SignalKind.DECISION_MAKER, quote="Our CFO decides.", speaker="Dana")
    actions = suggest_next_actions(items, Intents(buying_signals=[signal]), "negotiation")
    assert "Book the next meeting" not in [a.text for a in actions]
    assert actions[0].text == "Book a meeting with the decision maker"
    assert "Send the order form and confirm the legal review" in [a.text for a in actions]


def test_next_actions_are_capped():
    signals = [BuyingSignal(kind=k, quote=f"quote {k.value}", speaker="Dana") for k in SignalKind]
    items = [
        ActionItem(text="I'll send the deck.", owner=Owner.REP, speaker="Alex"),
        ActionItem(text="I'll loop in IT.", owner=Owner.PROSPECT, speaker="Dana"),
    ]
    actions = suggest_next_actions(items, Intents(buying_signals=signals), "demo")
    assert len(actions) == MAX_NEXT_ACTIONS
    assert actions[0].priority == 1


# --- summary and follow-up email ------------------------------------------------------------------------------


def test_summary_of_the_demo_says_who_met_what_they_said_and_the_next_steps():
    t = parse_transcript(DEMO)
    items = extract_action_items(t, {"Jordan Lee"}, DEMO_START)
    intents = detect_intents(t, {"Jordan Lee"}, DEMO_START)
    summary = summarize(t, items, intents, "Acme Corp <> Proactive demo", {"Jordan Lee"})
    assert len(summary) <= MAX_SUMMARY_CHARS
    lines = summary.splitlines()
    assert lines[0] == "Jordan Lee met Maria Gonzalez and Tom Becker."
    assert 'Pricing: they asked "How does pricing work for a team of our size?"' in lines
    assert "Decision: They can approve up to twenty thousand. Above that their CFO, Linda, has to sign off." in lines
    assert lines[-1] == (
        "Agreed next steps: Tom to send the security questionnaire by Fri 20 Nov; Jordan to send over the "
        "proposal by Fri 20 Nov; Jordan to set up a call next Tuesday afternoon with their CFO to walk through "
        "the numbers; Maria to check Linda's calendar and confirm."
    )
    assert "encrypted at rest" not in summary  # product talk is not a signal or a next step
    assert "Jordan:" not in summary and "I'll" not in summary  # no speaker labels, no raw promises


def test_summary_of_the_discovery_call_files_each_signal_once():
    t = parse_transcript(DISCOVERY)
    items = extract_action_items(t, {"Alex Morgan"}, DISCOVERY_START)
    intents = detect_intents(t, {"Alex Morgan"}, DISCOVERY_START)
    lines = summarize(t, items, intents, None, {"Alex Morgan"}).splitlines()
    assert lines[:5] == [
        "Alex Morgan met Dana Whitfield and Priya Nair.",
        "Budget: They have about $60k budgeted for sales tooling this fiscal year.",
        "Decision: Their CFO signs off on anything above fifty thousand, so she will want to see the numbers.",
        "Timeline: They want to go live by the end of Q1, before the new territories start.",
        "Competition: They're also evaluating Gong, mostly for call recording.",
    ]


def test_summary_is_capped_and_handles_empty_transcripts():
    long_line = "I'll send the detailed integration plan for every region and every team by Friday. " * 3
    t = parse_transcript("\n".join(f"Alex Morgan: {long_line} ({n})" for n in range(20)))
    items = extract_action_items(t, {"Alex Morgan"}, TUESDAY)
    assert len(summarize(t, items, Intents(), "A very long call", {"Alex Morgan"})) <= MAX_SUMMARY_CHARS
    assert summarize(parse_transcript(""), [], Intents(), "Demo") == "Demo: no transcript was available."
    assert summarize(parse_transcript("Dana: Hello there, nice to meet you."), [], Intents(), None) == (
        "Call with Dana.\nNo next step was agreed."
    )


def test_followup_email_for_the_demo_speaks_to_the_prospect():
    t = parse_transcript(DEMO)
    items = extract_action_items(t, {"Jordan Lee"}, DEMO_START)
    intents = detect_intents(t, {"Jordan Lee"}, DEMO_START)
    draft = draft_followup_email("Acme Corp <> Proactive demo", "Maria Gonzalez", "Jordan Lee", items, intents)
    assert draft.subject == "Follow-up: Acme Corp <> Proactive demo"
    body = draft.body
    assert body.startswith("Hi Maria,\n\n")
    assert body.endswith("Best,\nJordan")
    assert "- Decision: You can approve up to twenty thousand." in body
    ours, theirs = body.index("Next steps on our side:"), body.index("Next steps on your side:")
    assert ours < body.index("- Send over the proposal (by Friday 20 November)") < theirs
    assert "- Set up a call next Tuesday afternoon with your CFO to walk through the numbers" in body
    assert body.index("- Tom: send the security questionnaire (by Friday 20 November)") > theirs
    assert "- Maria: check Linda's calendar and confirm" in body
    assert "I'll send a calendar invite for our next conversation on Tuesday 24 November." in body
    assert body.count("Acme Corp <> Proactive demo") == 1
    assert "Jordan Lee met" not in body  # the internal summary is not the prospect's recap


def test_followup_email_edge_cases():
    draft = draft_followup_email("Follow-up: Pricing", None, None, [], Intents())
    assert draft.subject == "Follow-up: Pricing"
    assert draft.body.startswith("Hi there,")
    assert "We didn't capture specific action items" in draft.body
    assert draft.body.endswith("Best regards")
    assert draft_followup_email("", "Dana", "Alex Morgan", [], Intents()).subject == "Follow-up: our conversation"


def test_models_are_frozen():
    u = Utterance(speaker="Dana", text="Hi.")
    with pytest.raises(ValueError, match="frozen"):
        u.text = "changed"  # type: ignore[misc]
