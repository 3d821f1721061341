"""Inbound email rules (email_received, offline): addresses, quoted replies, intents, OOO dates, drafts."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sequences.skills.email.addresses import FREE_MAIL_DOMAINS, domain_of, is_free_mail, parse_address
from sequences.skills.email.drafts import EmailDraft, draft_reply, reply_subject
from sequences.skills.email.intents import EmailIntent, EmailIntentKind, classify_email
from sequences.skills.email.out_of_office import ooo_until
from sequences.skills.email.quoted_text import strip_quoted

NOW = datetime(2026, 11, 25, 9, 30, tzinfo=UTC)  # a Wednesday
TODAY = NOW.date()

# --- realistic emails ------------------------------------------------------------------------------------

GMAIL_REPLY = """\
Hi Alex,

Thanks for the demo yesterday. Could you send over the SOC 2 report and a rough quote for 60 seats?

Best,
Dana Whitfield
VP Sales Operations | Northwind Logistics
+1 415 555 0142

On Tue, Nov 24, 2026 at 4:02 PM Alex Morgan <alex@proactive.example>
wrote:
> Hi Dana, great to meet you today. Are you free next week for a follow-up?
>
> Alex
"""

OUTLOOK_REPLY = """\
Sounds good, thanks.

________________________________
From: Alex Morgan <alex@proactive.example>
Sent: Tuesday, November 24, 2026 4:02 PM
To: Dana Whitfield <dana@northwind.example>
Subject: Proposal

Can you confirm the number of seats? When works for a call?
"""

GERMAN_OOO = """\
Vielen Dank für Ihre Nachricht.

Ich bin bis einschließlich 8. Dezember im Urlaub und habe keinen Zugriff auf meine E-Mails.
In dringenden Fällen wenden Sie sich bitte an vertrieb@hansen.example.

Mit freundlichen Grüßen
Lena Vogel
"""

ENGLISH_OOO = """\
Hello,

I am out of the office with limited access to email and will be back on Monday, November 30.
For urgent matters please contact support@acme.example.

Thanks,
Maria
"""

NEWSLETTER = """\
View this email in your browser

The Revenue Weekly: 5 ways to shorten your sales cycle

Are your reps spending too much time on admin? This week we look at how top teams automate follow-ups,
what the best managers ask in pipeline reviews, and why deal risk scoring is back in fashion.

Read more on our blog.

You are receiving this email because you subscribed to The Revenue Weekly.
Unsubscribe | Manage preferences
"""

SPAM = """\
Dear friend,

Congratulations! You have won $1,000,000 in our annual lottery. To claim your prize please send a
wire transfer fee of $250 to our agent. Click here: http://bit.ly/claim-now

Act now, this is a limited time offer worth $5,000 in bonus gifts!
"""

BOOKING = """\
Hi Jordan,

Linda (our CFO) would like to join the next conversation. Could we find a time next Tuesday afternoon?
She is free after 2pm Pacific.

Thanks,
Maria
"""

JAPANESE = """\
ジョーダン様

お世話になっております。先日はデモをありがとうございました。
セキュリティに関する資料を共有いただけますでしょうか。

田中
"""

JAPANESE_NOTICE = "いつもご利用いただきありがとうございます。本日のお知らせです。新しい機能が追加されました。"


# --- addresses ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        ("Dana Whitfield <Dana@Northwind.Example>", ("Dana Whitfield", "dana@northwind.example")),
        ('"Whitfield, Dana" <dana@northwind.example>', ("Whitfield, Dana", "dana@northwind.example")),
        ("dana@northwind.example", ("", "dana@northwind.example")),
        ("dana@northwind.example (Dana Whitfield)", ("Dana Whitfield", "dana@northwind.example")),
        ("=?utf-8?q?J=C3=BCrgen_M=C3=BCller?= <jm@firma.example>", ("Jürgen Müller", "jm@firma.example")),
        ("Dana <dana@northwind.example>, Tom <tom@northwind.example>", ("Dana", "dana@northwind.example")),
        ("Lena Vogel", ("Lena Vogel", None)),
        ("", ("", None)),
        (None, ("", None)),
    ],
)
def test_parse_address(header, expected):
    assert parse_address(header) == expected


@pytest.mark.parametrize(
    ("email", "domain"),
    [
        ("Dana <Dana@Northwind.Example>", "northwind.example"),
        ("ops@Sub.Acme.CO.UK", "sub.acme.co.uk"),
        ("not an address", None),
        ("", None),
        (None, None),
    ],
)
def test_domain_of(email, domain):
    assert domain_of(email) == domain


@pytest.mark.parametrize(
    "email",
    [
        "someone@gmail.com",
        "Someone <someone@GoogleMail.com>",
        "x@yahoo.com",
        "x@yahoo.co.uk",
        "x@yahoo.fr",
        "x@outlook.com",
        "x@hotmail.com",
        "x@hotmail.de",
        "x@live.com",
        "x@icloud.com",
        "x@me.com",
        "x@aol.com",
        "x@proton.me",
        "x@protonmail.com",
        "x@gmx.de",
        "x@gmx.net",
        "x@web.de",
        "x@mail.ru",
        "x@yandex.ru",
        "x@qq.com",
        "x@163.com",
    ],
)
def test_free_mail_domains(email):
    assert is_free_mail(email)


@pytest.mark.parametrize(
    "email",
    ["dana@northwind.example", "x@live.company.com", "x@gmail.com.evil.example", "x@yahoo-inc.com", "nobody", None],
)
def test_company_domains_are_not_free_mail(email):
    assert not is_free_mail(email)


def test_free_mail_constant():
    assert isinstance(FREE_MAIL_DOMAINS, frozenset)
    assert {"gmail.com", "googlemail.com", "outlook.com", "web.de", "qq.com", "163.com"} <= FREE_MAIL_DOMAINS
    assert all(d == d.lower() and "@" not in d for d in FREE_MAIL_DOMAINS)


# --- strip_quoted --------------------------------------------------------------------------------------------


def test_strip_gmail_reply_with_wrapped_header_and_signature():
    assert strip_quoted(GMAIL_REPLY) == (
        "Hi Alex,\n\nThanks for the demo yesterday. "
        "Could you send over the SOC 2 report and a rough quote for 60 seats?"
    )


def test_strip_outlook_reply_block():
    assert strip_quoted(OUTLOOK_REPLY) == "Sounds good, thanks."


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        (
            "Works for me.\n\nAm 24.11.2026 um 16:02 schrieb Jonas Weber <jonas@p.example>:\n> Passt Dienstag?",
            "Works for me.",
        ),
        ("D'accord.\n\nLe mar. 24 nov. 2026 à 16:02, Alex <a@p.example> a écrit :\n> Mardi ?", "D'accord."),
        ("Perfecto.\n\nEl mar, 24 nov 2026 a las 16:02, Alex <a@p.example> escribió:\n> ¿Martes?", "Perfecto."),
        ("Yes please.\n\n-----Original Message-----\nFrom: Alex\nAre you free?", "Yes please."),
        ("Top reply\n> quoted line\n>> older\nmore top", "Top reply\nmore top"),
        ("Short answer: yes.\n\n-- \nDana Whitfield\nNorthwind", "Short answer: yes."),
        ("Sure thing.\n\nSent from my iPhone", "Sure thing."),
        ("Klingt gut.\n\nVon meinem iPhone gesendet", "Klingt gut."),
        ("Passt für mich.\n\nViele Grüße\nLena Vogel\nHansen GmbH", "Passt für mich."),
    ],
)
def test_strip_quoted_variants(body, expected):
    assert strip_quoted(body) == expected


def test_strip_quoted_keeps_text_that_only_looks_like_a_closing():
    # "Thanks!" opening the mail is not a signature; a closing followed by a long text is not either
    assert strip_quoted("Thanks!\nCan you send the deck?") == "Thanks!\nCan you send the deck?"
    body = "Quick update.\nThanks\n" + "\n".join(f"Point {n} about the rollout." for n in range(12))
    assert strip_quoted(body) == body
    assert strip_quoted("") == "" and strip_quoted(None) == ""


# --- classify_email --------------------------------------------------------------------------------------


def test_reply_required_ignores_the_quoted_question_and_signature():
    result = classify_email("Re: Great to meet you", GMAIL_REPLY, "Dana Whitfield <dana@northwind.example>")
    assert result.intent is EmailIntentKind.REPLY_REQUIRED
    assert result.signals[:2] == ["reply:question", "reply:could you"]
    assert result.confidence == pytest.approx(0.7)
    assert result.scheduling_text is None
    # the quoted "Are you free next week" is not a booking request from Dana
    assert not any(s.startswith("booking") for s in result.signals)


def test_quoted_question_alone_does_not_require_a_reply():
    result = classify_email("RE: Proposal", OUTLOOK_REPLY, "dana@northwind.example")
    assert result.intent is EmailIntentKind.FYI
    assert result.signals == ["fyi:nothing_actionable"]


def test_booking_request_carries_the_cleaned_body_as_scheduling_text():
    result = classify_email("Next call with our CFO", BOOKING, "Maria Gonzalez <maria@acme.example>")
    assert result.intent is EmailIntentKind.BOOKING_REQUEST
    assert "booking:find a time" in result.signals
    assert result.confidence >= 0.85
    assert result.scheduling_text == (
        "Hi Jordan,\n\nLinda (our CFO) would like to join the next conversation. "
        "Could we find a time next Tuesday afternoon?\nShe is free after 2pm Pacific."
    )


@pytest.mark.parametrize(
    "body",
    [
        "Are you free on Thursday for 30 minutes?",
        "What's your availability next week?",
        "Happy to book a call, just send me an invite.",
        "Let's meet next week to go through the contract.",
        "Here is my Calendly link: https://calendly.com/dana",
        "Können wir einen Termin für nächste Woche vereinbaren?",
        "Quel créneau vous conviendrait la semaine prochaine ?",
        "¿Tienes tiempo el martes para una llamada?",
    ],
)
def test_booking_phrases(body):
    assert classify_email("Quick question", body, "dana@northwind.example").intent is EmailIntentKind.BOOKING_REQUEST


def test_scheduling_words_need_a_question():
    weak = classify_email("Call", "Is the calendar for the meeting fixed?", "dana@northwind.example")
    assert weak.intent is EmailIntentKind.BOOKING_REQUEST
    assert weak.confidence == pytest.approx(0.6)
    statement = classify_email("Call", "I put the meeting in my calendar.", "dana@northwind.example")
    assert statement.intent is EmailIntentKind.FYI


def test_english_out_of_office():
    result = classify_email("Automatic reply: Proposal for Acme", ENGLISH_OOO, "maria@acme.example")
    assert result.intent is EmailIntentKind.OUT_OF_OFFICE
    assert result.confidence == pytest.approx(0.95)
    assert result.signals[:2] == ["ooo:subject", "ooo:body"]
    assert ooo_until(ENGLISH_OOO, NOW) == date(2026, 11, 30)


def test_german_out_of_office():
    result = classify_email("Abwesenheitsnotiz: Ihr Angebot", GERMAN_OOO, "lena.vogel@hansen.example")
    assert result.intent is EmailIntentKind.OUT_OF_OFFICE
    assert ooo_until(GERMAN_OOO, NOW) == date(2026, 12, 8)


@pytest.mark.parametrize(
    ("subject", "body"),
    [
        ("Réponse automatique : Proposition", "Je suis absente du bureau jusqu'au 2 décembre."),
        ("Respuesta automática", "Estoy fuera de la oficina hasta el 3 de diciembre."),
        ("OOO", "Back Monday."),
        ("Re: Proposal", "I am currently on parental leave until March 2027 with no access to email."),
    ],
)
def test_out_of_office_in_other_languages_and_body_only(subject, body):
    assert classify_email(subject, body, "x@acme.example").intent is EmailIntentKind.OUT_OF_OFFICE


def test_a_person_mentioning_absence_with_a_question_is_not_an_auto_reply():
    body = "I'm out of office next week, could we meet before Friday instead?"
    result = classify_email("Re: Demo", body, "dana@northwind.example")
    assert result.intent is EmailIntentKind.BOOKING_REQUEST
    assert "ooo:body" in result.signals


@pytest.mark.parametrize(
    ("subject", "body"),
    [
        ("Re: Quick idea", "Please remove me from your mailing list."),
        ("Re: Quick idea", "Stop emailing me."),
        ("Unsubscribe", ""),
        ("Re: Following up", "unsubscribe"),
        ("Re: Following up", "Not interested. Please take me off your list, are you a bot?"),
        ("AW: Ihr Angebot", "Bitte melden Sie mich ab, keine weiteren E-Mails."),
        ("RE: Offre", "Merci de me désinscrire de votre liste."),
        ("RE: Oferta", "Por favor, darme de baja."),
    ],
)
def test_unsubscribe_requests(subject, body):
    result = classify_email(subject, body, "dana@northwind.example")
    assert result.intent is EmailIntentKind.UNSUBSCRIBE
    assert result.confidence >= 0.9


def test_newsletter_with_an_unsubscribe_footer_is_fyi():
    result = classify_email("The Revenue Weekly #42", NEWSLETTER, "The Revenue Weekly <news@revenueweekly.example>")
    assert result.intent is EmailIntentKind.FYI
    assert result.signals[0] == "bulk:no_reply_sender"
    assert "bulk:view this email in your browser" in result.signals
    assert "bulk:unsubscribe_footer" in result.signals
    assert result.confidence == pytest.approx(0.95)


def test_no_reply_sender_is_fyi_even_with_a_question():
    result = classify_email("Your invoice", "Questions about your bill?", "no-reply@billing.example")
    assert (result.intent, result.signals[0]) == (EmailIntentKind.FYI, "bulk:no_reply_sender")


def test_email_from_the_user_themself_is_fyi():
    result = classify_email(
        "Can you check this?",
        "Can you check this?",
        "Alex Morgan <Alex@Proactive.example>",
        to_user_email="alex@proactive.example",
    )
    assert (result.intent, result.signals[0]) == (EmailIntentKind.FYI, "fyi:from_self")


def test_spam():
    result = classify_email("YOU HAVE WON!!! CLAIM NOW", SPAM, "promo@lucky-winner.example")
    assert result.intent is EmailIntentKind.SPAM
    assert {"spam:you have won", "spam:wire transfer", "spam:shouting_subject", "spam:url_shortener"} <= set(
        result.signals
    )
    assert result.confidence == pytest.approx(0.95)


def test_one_spammy_phrase_in_a_real_email_is_not_spam():
    body = "Can you click here to confirm the meeting notes are right? Then I'll share them with the team."
    result = classify_email("Notes", body, "dana@northwind.example")
    assert result.intent is EmailIntentKind.REPLY_REQUIRED
    assert "spam:click here" in result.signals


def test_japanese_body_with_a_polite_question_requires_a_reply():
    result = classify_email("資料のお願い", JAPANESE, "tanaka@example.co.jp")
    assert result.intent is EmailIntentKind.REPLY_REQUIRED
    assert "reply:question" in result.signals


def test_japanese_scheduling_and_notice():
    booking = classify_email("打ち合わせ", "来週の打ち合わせの日程をご相談させてください。", "tanaka@example.co.jp")
    assert booking.intent is EmailIntentKind.BOOKING_REQUEST
    notice = classify_email("お知らせ", JAPANESE_NOTICE, "tanaka@example.co.jp")
    assert notice.intent is EmailIntentKind.FYI


def test_german_question_requires_a_reply():
    body = "Guten Tag Herr Weber,\n\nkönnten Sie mir das Angebot noch einmal schicken?\n\nViele Grüße\nLena Vogel"
    result = classify_email("Angebot", body, "lena.vogel@hansen.example")
    assert result.intent is EmailIntentKind.REPLY_REQUIRED
    assert "reply:konnten sie" in result.signals  # signals are matched accent-free


@pytest.mark.parametrize(
    ("subject", "body", "signal"),
    [
        ("", "", "fyi:empty"),
        (None, None, "fyi:empty"),
        ("12345", "----", "fyi:no_text"),
        ("Thanks", "Got it, thanks for sending this over.", "fyi:nothing_actionable"),
    ],
)
def test_fyi_when_nothing_is_actionable(subject, body, signal):
    result = classify_email(subject, body, None)
    assert result.intent is EmailIntentKind.FYI
    assert result.signals == [signal]
    assert 0.0 <= result.confidence <= 0.5


def test_priority_out_of_office_beats_unsubscribe_beats_spam():
    # an auto-reply quoting "unsubscribe" is still an auto-reply
    ooo = classify_email("Automatic reply: unsubscribe", "I am away until Monday.", "x@acme.example")
    assert ooo.intent is EmailIntentKind.OUT_OF_OFFICE
    # a removal request in a spammy-looking mail is still honoured
    angry = classify_email("STOP SENDING THIS!!!", "Remove me from your list, this is spam.", "x@acme.example")
    assert angry.intent is EmailIntentKind.UNSUBSCRIBE
    assert "spam:shouting_subject" in angry.signals


def test_email_intent_model():
    intent = EmailIntent(intent="fyi", confidence=0.5)
    assert intent.intent is EmailIntentKind.FYI
    assert intent.signals == [] and intent.scheduling_text is None
    with pytest.raises(ValueError, match="less than or equal"):
        EmailIntent(intent="fyi", confidence=1.5)


@settings(max_examples=300, deadline=None)
@given(st.text(), st.text(), st.text())
def test_classify_email_never_raises(subject, body, sender):
    result = classify_email(subject, body, sender, to_user_email=sender)
    assert 0.0 <= result.confidence <= 1.0
    assert result.intent in set(EmailIntentKind)
    if result.intent is not EmailIntentKind.BOOKING_REQUEST:
        assert result.scheduling_text is None


@settings(max_examples=200, deadline=None)
@given(st.text(), st.dates())
def test_parsers_never_raise(text, today):
    strip_quoted(text)
    parse_address(text)
    domain_of(text)
    is_free_mail(text)
    reply_subject(text)
    found = ooo_until(text, today)
    assert found is None or isinstance(found, date)


# --- ooo_until ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        ("I'm away, back on Monday.", date(2026, 11, 30)),
        ("Out of office until 3 December.", date(2026, 12, 3)),
        ("Out of office until December 3rd, 2026.", date(2026, 12, 3)),
        ("Returning 12/03.", date(2026, 12, 3)),  # 3 Dec comes before 12 Mar
        ("Returning 25/12.", date(2026, 12, 25)),  # only day/month is valid
        ("Back on 2026-12-07.", date(2026, 12, 7)),
        ("Ich bin vom 1. bis 5. Dezember nicht im Büro.", date(2026, 12, 5)),
        ("Ab dem 07.12. bin ich wieder erreichbar.", date(2026, 12, 7)),
        ("Je suis absente jusqu'au 2 janvier.", date(2027, 1, 2)),  # a passed date means next year
        ("Estoy de vacaciones hasta el 15 de enero.", date(2027, 1, 15)),
        ("I'm out from December 1 until December 4, back on Monday December 7.", date(2026, 12, 7)),
        ("I'm at a conference on 2 December.", date(2026, 12, 2)),  # no anchor: the latest date named
        ("I am on leave, back tomorrow.", date(2026, 11, 26)),
        ("Back next week.", date(2026, 11, 30)),
        ("Back on Wednesday.", date(2026, 12, 2)),  # today is Wednesday: next week's
        ("I am out of the office with limited access to email.", None),
        ("Back on 31 February.", None),
        ("", None),
    ],
)
def test_ooo_until(body, expected):
    assert ooo_until(body, NOW) == expected
    assert ooo_until(body, TODAY) == expected


def test_ooo_until_ignores_the_quoted_message():
    body = "Back on Monday.\n\nOn Tue, Nov 24, 2026 at 4:02 PM Alex wrote:\n> Shall we meet on 18 December?"
    assert ooo_until(body, NOW) == date(2026, 11, 30)


# --- draft_reply ------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("subject", "expected"),
    [
        ("Proposal", "Re: Proposal"),
        ("Re: Proposal", "Re: Proposal"),
        ("Re: Re: Proposal", "Re: Proposal"),
        ("RE: re:Proposal", "Re: Proposal"),
        ("AW: Re: Angebot", "Re: Angebot"),
        ("Re[2]: SV: Offer", "Re: Offer"),
        ("Re: Fwd: Deck", "Re: Fwd: Deck"),
        ("Regarding the proposal", "Re: Regarding the proposal"),
        ("", "Re: your email"),
        (None, "Re: your email"),
    ],
)
def test_reply_subject_has_one_re(subject, expected):
    assert reply_subject(subject) == expected


def test_draft_reply_to_a_question_echoes_it_and_signs_with_the_first_name():
    intent = classify_email("Re: Re: Great to meet you", GMAIL_REPLY, "dana@northwind.example")
    draft = draft_reply(intent, "Re: Re: Great to meet you", GMAIL_REPLY, "Dana Whitfield", "Alex Morgan")
    assert draft.subject == "Re: Great to meet you"
    assert draft.body.startswith("Hi Dana,\n\nThanks for your email.")
    assert "- Could you send over the SOC 2 report and a rough quote for 60 seats?" in draft.body
    assert "Are you free next week" not in draft.body  # quoted text is not echoed
    assert draft.body.endswith("Best,\nAlex")


@pytest.mark.parametrize(
    ("intent", "phrase"),
    [
        (EmailIntentKind.BOOKING_REQUEST, "Happy to find a time"),
        (EmailIntentKind.OUT_OF_OFFICE, "once you're back"),
        (EmailIntentKind.UNSUBSCRIBE, "removed you"),
        (EmailIntentKind.FYI, "Thanks for the update."),
        (EmailIntentKind.SPAM, "Thanks for the update."),
        ("reply_required", "I'm on it"),
    ],
)
def test_draft_reply_for_every_intent(intent, phrase):
    draft = draft_reply(intent, "Hello", "Just a note.", "Maria Gonzalez", "Jordan Lee")
    assert isinstance(draft, EmailDraft)
    assert phrase in draft.body
    assert draft.subject == "Re: Hello"


def test_draft_reply_without_names():
    draft = draft_reply("fyi", "Hi", "", "dana@northwind.example", None)
    assert draft.body.startswith("Hi there,")
    assert draft.body.endswith("Best regards")
    assert draft_reply("fyi", "Hi", "", "Whitfield, Dana", "Alex").body.startswith("Hi Dana,")
    with pytest.raises(ValueError, match="not a valid"):
        draft_reply("maybe", "Hi", "", "Dana", "Alex")
