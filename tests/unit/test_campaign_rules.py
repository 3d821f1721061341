"""Campaign rules (campaign_daily_check): rates, thresholds at their edges, reply classes, the report."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from sequences.skills.campaigns.health import CampaignCounts, CampaignStatus, campaign_health, delivered_base
from sequences.skills.campaigns.replies import ReplyClass, ReplyLabel, classify_reply, reply_text
from sequences.skills.campaigns.report import SNIPPET_MAX, ReplyIn, build_report, snippet

U, W, H, N = (
    CampaignStatus.UNDERPERFORMING,
    CampaignStatus.WARNING,
    CampaignStatus.HEALTHY,
    CampaignStatus.NO_DATA,
)


def counts(
    sent: int = 10_000,
    opened: int = 5_000,
    replied: int = 500,
    bounced: int = 0,
    delivered: int | None = None,
    campaign_id: str = "c-1",
    name: str = "Q4 VP Sales outreach",
) -> CampaignCounts:
    return CampaignCounts(
        campaign_id=campaign_id,
        name=name,
        sent=sent,
        delivered=delivered,
        opened=opened,
        replied=replied,
        bounced=bounced,
    )


# --------------------------------------------------------------------------------------------------
# Rates and denominators


def test_zero_sent_is_no_data_with_zero_rates():
    health = campaign_health(counts(sent=0, opened=0, replied=0, bounced=0))
    assert (health.open_rate, health.reply_rate, health.bounce_rate) == (0.0, 0.0, 0.0)
    assert health.status == N == "no_data"
    assert health.reasons == ["no emails sent yet"]
    assert health.suggestions


def test_opens_and_replies_over_sent_minus_bounced_bounces_over_sent():
    health = campaign_health(counts(sent=1_000, opened=485, replied=29, bounced=30))
    # 485 / 970 = 50.0 %, 29 / 970 = 2.99 → 3.0 %, 30 / 1000 = 3.0 %
    assert (health.open_rate, health.reply_rate, health.bounce_rate) == (50.0, 3.0, 3.0)
    assert delivered_base(counts(sent=1_000, bounced=30)) == 970


def test_reported_delivered_is_the_denominator_when_given():
    health = campaign_health(counts(sent=1_000, delivered=800, opened=400, replied=40, bounced=10))
    assert (health.open_rate, health.reply_rate, health.bounce_rate) == (50.0, 5.0, 1.0)
    assert health.status == H
    assert health.reasons == []
    assert health.suggestions == []


def test_hundred_percent_bounce_is_underperforming():
    health = campaign_health(counts(sent=250, opened=0, replied=0, bounced=250))
    assert health.bounce_rate == 100.0
    assert (health.open_rate, health.reply_rate) == (0.0, 0.0)
    assert health.status == U
    assert health.reasons[0] == "none of the 250 emails was delivered"
    assert "bounce rate 100.0 % is above 5 %" in health.reasons
    assert any("verify" in s for s in health.suggestions)


def test_sent_but_nothing_delivered_nor_bounced_yet_is_no_data():
    health = campaign_health(counts(sent=50, delivered=0, opened=0, replied=0, bounced=0))
    assert health.status == N
    assert health.reasons == ["50 sent but none delivered yet"]


def test_counts_from_a_drifting_api_are_clamped():
    health = campaign_health(counts(sent=100, opened=150, replied=-3, bounced=-1))
    assert health.open_rate == 100.0
    assert health.reply_rate == 0.0
    assert health.bounce_rate == 0.0


def test_rates_round_half_up_and_the_rounded_rate_is_compared():
    assert campaign_health(counts(opened=1_995)).open_rate == 20.0  # 19.95 → 20.0
    assert campaign_health(counts(opened=1_996)).status == H  # shown as 20.0 %: not "below 20 %"
    assert campaign_health(counts(opened=1_994)).open_rate == 19.9
    assert campaign_health(counts(opened=1_994)).status == U


# --------------------------------------------------------------------------------------------------
# Thresholds at their edges (strict comparisons)


@pytest.mark.parametrize(
    ("opened", "replied", "status", "rules"),
    [
        (2_000, 500, H, []),  # open exactly 20.0 %
        (1_990, 500, U, ["open rate 19.9 % is below 20 %"]),
        (5_000, 200, H, []),  # reply exactly 2.0 %
        (3_000, 190, U, ["reply rate 1.9 % is below 2 %"]),
        (4_000, 100, U, ["reply rate 1.0 % is below 2 %"]),  # open exactly 40.0 %: not "above 40 %"
        (4_010, 100, W, ["open rate 40.1 % is above 40 % but reply rate 1.0 % is below 2 %"]),
        (4_010, 200, H, []),  # high opens, reply exactly 2.0 %
        (1_000, 100, U, ["open rate 10.0 % is below 20 %", "reply rate 1.0 % is below 2 %"]),
    ],
)
def test_open_and_reply_thresholds(opened, replied, status, rules):
    health = campaign_health(counts(opened=opened, replied=replied))
    assert health.status == status
    assert health.reasons == rules


@pytest.mark.parametrize(
    ("bounced", "rate", "status"),
    [
        (20, 2.0, H),  # exactly 2.0 %: not above
        (21, 2.1, W),
        (50, 5.0, W),  # exactly 5.0 %: not above 5 %, but above 2 %
        (51, 5.1, U),
    ],
)
def test_bounce_thresholds(bounced, rate, status):
    health = campaign_health(counts(sent=1_000, opened=500, replied=50, bounced=bounced))
    assert health.bounce_rate == rate
    assert health.status == status
    assert len(health.reasons) == (0 if status == H else 1)  # never both bounce rules


def test_underperforming_wins_and_every_rule_that_fired_is_reported():
    health = campaign_health(counts(sent=1_000, opened=100, replied=30, bounced=30))
    assert health.status == U
    assert health.reasons == ["open rate 10.3 % is below 20 %", "bounce rate 3.0 % is above 2 %"]
    assert any("subject lines" in s for s in health.suggestions)
    assert any("verification" in s for s in health.suggestions)


def test_high_opens_low_replies_is_a_copy_warning_with_copy_suggestions():
    health = campaign_health(counts(opened=6_000, replied=50))
    assert health.status == W
    assert any("call to action" in s for s in health.suggestions)
    assert not any("subject lines:" in s.lower() for s in health.suggestions)


def test_suggestions_are_specific_to_the_reasons():
    low_open = campaign_health(counts(opened=1_000, replied=300))
    assert any("subject lines" in s for s in low_open.suggestions)
    assert any("warm up" in s for s in low_open.suggestions)
    low_reply = campaign_health(counts(opened=3_000, replied=100))
    assert any("call to action" in s for s in low_reply.suggestions)
    high_bounce = campaign_health(counts(sent=1_000, opened=500, replied=50, bounced=80))
    assert any("Pause the campaign" in s for s in high_bounce.suggestions)
    assert len(high_bounce.suggestions) == len(set(high_bounce.suggestions))


@given(
    sent=st.integers(-10, 10**7),
    delivered=st.none() | st.integers(-10, 10**7),
    opened=st.integers(-10, 10**7),
    replied=st.integers(-10, 10**7),
    bounced=st.integers(-10, 10**7),
)
def test_rates_are_percentages_and_status_is_always_defined(sent, delivered, opened, replied, bounced):
    health = campaign_health(
        CampaignCounts(
            campaign_id="c", name="n", sent=sent, delivered=delivered, opened=opened, replied=replied, bounced=bounced
        )
    )
    for rate in (health.open_rate, health.reply_rate, health.bounce_rate):
        assert 0.0 <= rate <= 100.0
        assert round(rate, 1) == rate
    assert health.status in set(CampaignStatus)
    if sent <= 0:
        assert health.status == CampaignStatus.NO_DATA
    if health.status == CampaignStatus.HEALTHY:
        assert not health.reasons and not health.suggestions
        assert health.open_rate >= 20.0 and health.bounce_rate <= 2.0 and health.reply_rate >= 2.0
    if health.status in (CampaignStatus.UNDERPERFORMING, CampaignStatus.WARNING):
        assert health.reasons and health.suggestions
    if health.bounce_rate > 5.0:
        assert health.status == CampaignStatus.UNDERPERFORMING


# --------------------------------------------------------------------------------------------------
# Reply classification


@pytest.mark.parametrize(
    ("subject", "body"),
    [
        ("Re: Quick question", "Sounds good, let's talk next week. Can you send me pricing?"),
        ("Re: Quick question", "I'm interested - what does your availability look like on Thursday?"),
        ("AW: Kurze Frage", "Klingt gut, gerne nächste Woche einen Termin."),
        ("RE: Question rapide", "Avec plaisir, ça m'intéresse. Rendez-vous jeudi ?"),
        ("RE: Pregunta rápida", "Me interesa, hablemos el jueves."),
        ("R: Domanda veloce", "Sono interessato, sentiamoci la prossima settimana."),
        ("Antw: Snelle vraag", "Ik ben geïnteresseerd, graag een afspraak."),
        ("RE: Pergunta rápida", "Tenho interesse, vamos conversar."),
    ],
)
def test_positive_replies(subject, body):
    verdict = classify_reply(subject, body)
    assert verdict.label == ReplyLabel.POSITIVE
    assert verdict.confidence >= 0.6
    assert all(s.startswith("positive:") for s in verdict.signals)


@pytest.mark.parametrize(
    "body",
    [
        "Not interested, thanks.",
        "I\u2019m not interested at this time.",
        "Thanks, but we already use a competitor.",
        "Vielen Dank, aber kein Interesse.",
        "Merci, mais nous ne sommes pas intéressés.",
        "No me interesa, gracias.",
        "Grazie, non siamo interessati.",
        "Nee, dank je. Geen interesse.",
        "Não temos interesse, obrigado.",
    ],
)
def test_negative_replies(body):
    verdict = classify_reply("Re: Quick question", body)
    assert verdict.label == ReplyLabel.NEGATIVE
    assert verdict.confidence >= 0.85


@pytest.mark.parametrize(
    ("subject", "body", "confidence"),
    [
        ("Automatic reply: Quick question", "Thank you for your email.", 0.95),
        ("Out of Office: Quick question", "", 0.95),
        ("Abwesenheitsnotiz: Kurze Frage", "Ich bin bis 8. Dezember nicht im Büro.", 0.95),
        ("Réponse automatique : Question rapide", "Je suis absente du bureau jusqu'au 3 janvier.", 0.95),
        ("Respuesta automática: Pregunta", "Estoy fuera de la oficina.", 0.95),
        ("Re: Quick question", "I am currently on parental leave with limited access to email.", 0.9),
        ("Re: Quick question", "I'm on vacation until Monday, happy to chat after that.", 0.85),
    ],
)
def test_out_of_office_replies(subject, body, confidence):
    verdict = classify_reply(subject, body)
    assert verdict.label == ReplyLabel.OUT_OF_OFFICE
    assert verdict.confidence == confidence


@pytest.mark.parametrize(
    ("subject", "body"),
    [
        ("Re: Quick question", "Please remove me from your list."),
        ("Re: Quick question", "Unsubscribe"),
        ("Re: Quick question", "STOP"),
        ("Unsubscribe", ""),
        ("Re: Quick question", "Not interested. Do not contact me again."),
        ("AW: Frage", "Bitte abmelden, keine weiteren E-Mails."),
        ("RE: Question", "Merci de ne plus me contacter."),
        ("RE: Pregunta", "Por favor, darme de baja."),
        ("Antw: Vraag", "Graag uitschrijven."),
    ],
)
def test_unsubscribe_replies_win_over_everything_else(subject, body):
    verdict = classify_reply(subject, body)
    assert verdict.label == ReplyLabel.UNSUBSCRIBE
    assert verdict.confidence == 0.95


def test_not_interested_is_not_read_as_interested():
    verdict = classify_reply("Re: hi", "We are not interested.")
    assert verdict.label == ReplyLabel.NEGATIVE
    assert "positive:interested" not in verdict.signals


def test_mixed_signals_lean_negative_with_lower_confidence():
    verdict = classify_reply("Re: hi", "Not right now, but happy to talk in Q2.")
    assert verdict.label == ReplyLabel.NEGATIVE
    assert verdict.confidence == 0.6


def test_no_thanks_for_reaching_out_is_not_a_refusal():
    assert classify_reply("Re: hi", "No, thanks for reaching out! Happy to chat.").label == ReplyLabel.POSITIVE


def test_quoted_campaign_text_and_its_footer_are_ignored():
    body = (
        "Who gave you my address?\n\n"
        "On Tue, Dec 2, 2025 at 10:30 AM Ana Lima <ana@vendor.com> wrote:\n"
        "> Interested in a quick call? Let's talk.\n"
        "> To unsubscribe, click here.\n"
    )
    verdict = classify_reply("Re: Interested in cutting costs?", body)
    assert verdict.label == ReplyLabel.OTHER  # neither the quote nor the echoed subject counts
    assert reply_text(body) == "Who gave you my address?"


def test_outlook_quote_header_is_cut():
    body = "Yes, let's book a call.\n\nFrom: Ana Lima <ana@vendor.com>\nSent: Tuesday\nSubject: unsubscribe info"
    assert reply_text(body) == "Yes, let's book a call."
    assert classify_reply("RE: hi", body).label == ReplyLabel.POSITIVE


def test_bottom_posted_reply_keeps_the_answer():
    body = "On Mon, Ana wrote:\n> Would you like a demo?\n\nSure, I'm interested."
    assert reply_text(body) == "Sure, I'm interested."
    assert classify_reply("Re: demo", body).label == ReplyLabel.POSITIVE


def test_weak_words_alone_are_positive_with_low_confidence():
    verdict = classify_reply("Re: hi", "yes")
    assert (verdict.label, verdict.confidence) == (ReplyLabel.POSITIVE, 0.45)


@pytest.mark.parametrize(("subject", "body"), [(None, None), ("", ""), ("   ", "\n\n")])
def test_empty_replies_are_other_with_no_confidence(subject, body):
    verdict = classify_reply(subject, body)
    assert (verdict.label, verdict.confidence, verdict.signals) == (ReplyLabel.OTHER, 0.0, [])


def test_a_question_without_signals_is_other():
    verdict = classify_reply("Re: hi", "Who is this?")
    assert (verdict.label, verdict.confidence) == (ReplyLabel.OTHER, 0.3)


@given(st.none() | st.text(max_size=300), st.none() | st.text(max_size=3_000))
def test_classify_reply_never_raises(subject, body):
    verdict = classify_reply(subject, body)
    assert verdict.label in set(ReplyLabel)
    assert 0.0 <= verdict.confidence <= 1.0


def test_huge_reply_is_classified_quickly():
    verdict = classify_reply("Re: hi", "Not interested. " + "blah " * 200_000)
    assert verdict.label == ReplyLabel.NEGATIVE


# --------------------------------------------------------------------------------------------------
# Report


def reply(reply_id: str, campaign_id: str, body: str, hour: int, **extra: object) -> ReplyIn:
    return ReplyIn(
        reply_id=reply_id,
        campaign_id=campaign_id,
        from_email=f"{reply_id}@prospect.com",
        from_name=f"Prospect {reply_id}",
        subject="Re: Quick question",
        body=body,
        received_at=datetime(2026, 12, 2, hour, 0, tzinfo=UTC),
        **extra,
    )


def test_report_orders_campaigns_worst_first_and_replies_to_answer_first():
    campaigns = [
        counts(campaign_id="healthy", name="Healthy", sent=2_000, opened=1_000, replied=100),
        counts(campaign_id="empty", name="Not started", sent=0, opened=0, replied=0),
        counts(campaign_id="warn", name="Copy issue", sent=1_000, opened=600, replied=10),
        counts(campaign_id="bad", name="Bad list", sent=500, opened=50, replied=1, bounced=60),
    ]
    replies = [
        reply("r1", "healthy", "Not interested.", 9),
        reply("r2", "warn", "Sounds good, let's talk Thursday.", 8),
        reply("r3", "bad", "Please unsubscribe me.", 10),
        reply("r4", "warn", "Who is this?", 11),
        reply("r5", "healthy", "I'm interested, send me more info.", 12),
        reply("r6", "gone", "I am out of the office.", 7),
    ]
    report = build_report(date(2026, 12, 2), campaigns, replies)
    assert [c.campaign_id for c in report.campaigns] == ["bad", "warn", "healthy", "empty"]
    assert [c.status for c in report.campaigns] == [U, W, H, N]
    assert [r.reply_id for r in report.replies] == ["r5", "r2", "r4", "r1", "r6", "r3"]
    assert [r.classification for r in report.replies][:2] == [ReplyLabel.POSITIVE, ReplyLabel.POSITIVE]
    assert report.replies[-2].campaign_name == "gone"  # unknown campaign: its id
    assert report.replies[0].campaign_name == "Healthy"
    warn = report.campaigns[1]
    assert warn.replies_by_label == {"positive": 1, "other": 1}
    assert report.totals.campaigns == 4
    assert report.totals.sent == 3_500
    assert report.totals.bounced == 60
    assert report.totals.by_status == {"healthy": 1, "warning": 1, "underperforming": 1, "no_data": 1}
    assert report.totals.replies == 6
    assert report.totals.replies_by_label["positive"] == 2
    assert (
        report.headline == "Wed 2 Dec: 2 of 4 campaigns need attention (1 underperforming, 1 warning) · "
        "6 new replies (2 positive)"
    )


def test_campaign_lines_dump_flat_rates_for_the_slack_report():
    report = build_report(date(2026, 12, 2), [counts(opened=1_000, replied=100)], [])
    dumped = report.model_dump(mode="json")["campaigns"][0]
    for key in (
        "campaign_id",
        "name",
        "sent",
        "opened",
        "replied",
        "bounced",
        "open_rate",
        "reply_rate",
        "bounce_rate",
        "status",
        "suggestions",
        "reasons",
    ):
        assert key in dumped
    assert dumped["status"] == "underperforming"
    assert dumped["open_rate"] == 10.0


def test_totals_pool_counts_with_the_same_denominators():
    report = build_report(
        date(2026, 12, 2),
        [
            counts(sent=1_000, opened=500, replied=50, bounced=0),
            counts(sent=1_000, opened=300, replied=10, bounced=100),
        ],
        [],
    )
    assert report.totals.delivered == 1_900
    assert report.totals.open_rate == 42.1  # 800 / 1900
    assert report.totals.reply_rate == 3.2  # 60 / 1900
    assert report.totals.bounce_rate == 5.0  # 100 / 2000


def test_llm_classification_is_kept_and_snippet_is_short_and_unquoted():
    long_body = ("We might be open to this. " * 20) + "\n\nOn Mon, Ana wrote:\n> Hi there, unsubscribe here"
    given = ReplyClass(label=ReplyLabel.POSITIVE, confidence=0.77, signals=["llm"])
    report = build_report(date(2026, 12, 2), [counts()], [reply("r1", "c-1", long_body, 9, classification=given)])
    line = report.replies[0]
    assert (line.classification, line.confidence, line.signals) == (ReplyLabel.POSITIVE, 0.77, ["llm"])
    assert len(line.snippet) <= SNIPPET_MAX
    assert line.snippet.endswith("\u2026")
    assert "unsubscribe" not in line.snippet
    assert "\n" not in line.snippet


def test_empty_report():
    report = build_report(date(2026, 12, 2), [], [])
    assert report.campaigns == [] and report.replies == []
    assert report.totals.sent == 0 and report.totals.open_rate == 0.0
    assert report.headline == "Wed 2 Dec: no active campaigns · 0 new replies"


def test_all_healthy_headline():
    report = build_report(
        date(2026, 12, 2), [counts(campaign_id="a"), counts(campaign_id="b")], [reply("r", "a", "ok", 9)]
    )
    assert report.headline == "Wed 2 Dec: All 2 campaigns healthy · 1 new reply (0 positive)"


def test_snippet_cuts_at_a_word():
    text = "word " * 100
    cut = snippet(text)
    assert len(cut) <= SNIPPET_MAX
    assert cut.endswith("word\u2026")
    assert snippet("  short\n text ") == "short text"
    assert snippet(None) == ""


def test_conditional_si_is_not_a_yes():
    verdict = classify_reply("RE: Question", "Je ne sais pas si c'est pertinent pour nous.")
    assert verdict.label == ReplyLabel.OTHER
