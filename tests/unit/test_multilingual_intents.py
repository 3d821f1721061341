"""Offline intent rules on real-shaped emails in English, German, French and Spanish.

Each case is a subject and a body as a mail client sends it: a greeting, the person's words, a
signature and usually the quoted thread below. Both classifiers read the same emails: the inbox
one (``classify_email``: booking, reply, out of office, unsubscribe) and the campaign-reply one
(``classify_reply``: positive, out of office, unsubscribe).
"""

from __future__ import annotations

import pytest

from sequences.skills.campaigns.replies import ReplyLabel, classify_reply
from sequences.skills.email.intents import EmailIntentKind, classify_email

SENDER = "contact@prospect.example"
QUOTE_EN = (
    "\n\nOn Tue, 1 Dec 2026 at 09:12, Alice Moreau <alice@northwind.example> wrote:\n"
    "> Hi, quick follow-up on fleet telematics.\n> Best, Alice\n"
)
QUOTE_DE = (
    "\n\nAm 01.12.2026 um 09:12 schrieb Alice Moreau <alice@northwind.example>:\n"
    "> Guten Tag, kurze Nachfrage zu unserer Telematik-Lösung.\n> Viele Grüße, Alice\n"
)
QUOTE_FR = (
    "\n\nLe mar. 1 déc. 2026 à 09:12, Alice Moreau <alice@northwind.example> a écrit :\n"
    "> Bonjour, un petit suivi concernant la télématique.\n> Cordialement, Alice\n"
)
QUOTE_ES = (
    "\n\nEl mar, 1 dic 2026 a las 09:12, Alice Moreau (<alice@northwind.example>) escribió:\n"
    "> Hola, un breve seguimiento sobre la telemática.\n> Saludos, Alice\n"
)

SCHEDULING = [
    (
        "en",
        "Re: Q1 rollout",
        "Hi Alice,\n\nAre you free Thursday at 2pm ET for a quick call?\n\nThanks,\nMark\n\nSent from my iPhone"
        + QUOTE_EN,
    ),
    (
        "en",
        "RE: Fleet telematics",
        "Alice - can we set up a call with our CFO next week? What times work for you?\n\nRegards,\n"
        "Dana Whitfield\nVP Sales Operations | Northwind Logistics" + QUOTE_EN,
    ),
    (
        "en",
        "Re: Fleet telematics",
        "Hi Alice,\n\nCould we talk on Tuesday afternoon? Happy to bring our ops lead.\n\nThanks,\n"
        "Priya Nair\nHead of Operations" + QUOTE_EN,
    ),
    (
        "en",
        "Re: Intro",
        "Hi Alice,\n\nThis is timely. Could you send a case study and a few times for a call next week?\n\nBest,\nPriya"
        + QUOTE_EN,
    ),
    (
        "de",
        "AW: Telematik für 40 Standorte",
        "Hallo Frau Moreau,\n\n"
        "Interessant! Können wir nächste Woche telefonieren? Wie sieht die Preisgestaltung aus?\n\n"
        "Viele Grüße\nLea Weber\nPraxis Weber GmbH" + QUOTE_DE,
    ),
    (
        "de",
        "AW: Ihre Anfrage",
        "Guten Tag,\n\n"
        "ich würde gerne ein kurzes Telefonat vereinbaren. Wann passt es Ihnen am Donnerstag?\n\n"
        "Mit freundlichen Grüßen\nJonas Brandt" + QUOTE_DE,
    ),
    (
        "de",
        "AW: Demo",
        "Hallo Alice,\n\nkönnten wir uns kurz austauschen, vielleicht am Mittwoch um 10 Uhr?\n\nGruß\nMarkus"
        + QUOTE_DE,
    ),
    ("de", "AW: Telematik", "Hallo,\n\nKÖNNEN WIR NÄCHSTE WOCHE TELEFONIEREN?\n\nLG\nSabine" + QUOTE_DE),
    (
        "fr",
        "RE: Télématique",
        "Bonjour Alice,\n\n"
        "Pouvons-nous nous parler mardi prochain ? Je suis disponible l'après-midi.\n\n"
        "Cordialement,\nCamille Laurent\nDirectrice des opérations" + QUOTE_FR,
    ),
    (
        "fr",
        "RE: Votre proposition",
        "Bonjour,\n\n"
        "Merci pour votre message. Seriez-vous disponible jeudi pour un échange de 30 minutes ?\n\n"
        "Bien à vous,\nThomas Girard" + QUOTE_FR,
    ),
    (
        "fr",
        "RE: Démo",
        "Bonjour,\n\nOn peut planifier un appel la semaine prochaine pour voir la démo ?\n\nMerci,\nJulie" + QUOTE_FR,
    ),
    (
        "fr",
        "RE: Télématique",
        "Bonjour,\n\npourrions-nous echanger rapidement demain matin ?\n\nCordialement\nLuc" + QUOTE_FR,
    ),
    (
        "es",
        "RE: Telemática",
        "Hola Alice,\n\n¿Podemos hablar el martes? Me interesa conocer más detalles.\n\nSaludos,\n"
        "María López\nJefa de Logística" + QUOTE_ES,
    ),
    (
        "es",
        "RE: Propuesta",
        "Buenos días,\n\n¿Podríamos reunirnos la próxima semana? ¿Qué día le viene bien?\n\nUn saludo,\nCarlos Ruiz"
        + QUOTE_ES,
    ),
    (
        "es",
        "RE: Demo",
        "Hola,\n\nMe gustaría programar una llamada para ver la demo con mi equipo.\n\nGracias,\nLucía" + QUOTE_ES,
    ),
    ("es", "RE: Telemática", "Hola,\n\n¿podriamos tener una llamada el jueves?\n\nSaludos\nJavier" + QUOTE_ES),
]

PRICING = [
    (
        "en",
        "Re: Fleet telematics",
        "Hi Alice,\n\nHow much does it cost for 60 vehicles? A rough quote is fine.\n\nBest,\nDana" + QUOTE_EN,
    ),
    (
        "en",
        "Re: Proposal",
        "Hi Alice,\n\nPlease send your price list for the enterprise tier.\n\nThanks,\n"
        "Dana Whitfield\nVP Sales Operations" + QUOTE_EN,
    ),
    (
        "en",
        "Re: Intro",
        "Hi,\n\nWhat would it cost to add the driver app? Is that priced per seat?\n\nCheers,\nTom" + QUOTE_EN,
    ),
    ("en", "Re: Renewal", "Hello Alice,\n\nCan you share pricing for a three-year term?\n\nRegards,\nBill" + QUOTE_EN),
    (
        "de",
        "AW: Angebot",
        "Hallo Frau Moreau,\n\n"
        "was kostet die Lösung für 40 Standorte? Bitte senden Sie uns Ihre Preisliste.\n\n"
        "Mit freundlichen Grüßen\nLea Weber" + QUOTE_DE,
    ),
    ("de", "AW: Telematik", "Guten Tag,\n\nWie sieht die Preisgestaltung aus?\n\nViele Grüße\nJonas" + QUOTE_DE),
    (
        "de",
        "AW: Demo",
        "Hallo,\n\nkönnten Sie mir die Konditionen für eine Laufzeit von drei Jahren schicken?\n\nGruß\nMarkus"
        + QUOTE_DE,
    ),
    (
        "de",
        "AW: Lizenz",
        "Hallo Alice,\n\nmit welchen Kosten müssen wir pro Fahrzeug rechnen?\n\nBeste Grüße\nSabine" + QUOTE_DE,
    ),
    ("fr", "RE: Télématique", "Bonjour,\n\nQuel est le prix pour 40 dépôts ?\n\nCordialement,\nCamille" + QUOTE_FR),
    (
        "fr",
        "RE: Proposition",
        "Bonjour Alice,\n\nPourriez-vous m'envoyer vos tarifs et un devis pour 60 véhicules ?\n\nBien à vous,\nThomas"
        + QUOTE_FR,
    ),
    ("fr", "RE: Démo", "Bonjour,\n\nCombien ça coûte par an ?\n\nMerci,\nJulie" + QUOTE_FR),
    ("fr", "RE: Licence", "Bonjour,\n\nQuels sont les couts de mise en place ?\n\nCordialement\nLuc" + QUOTE_FR),
    ("es", "RE: Telemática", "Hola Alice,\n\n¿Cuánto cuesta para 40 almacenes?\n\nSaludos,\nMaría" + QUOTE_ES),
    (
        "es",
        "RE: Propuesta",
        "Buenos días,\n\n¿Podría enviarnos un presupuesto y sus tarifas?\n\nUn saludo,\nCarlos" + QUOTE_ES,
    ),
    ("es", "RE: Demo", "Hola,\n\n¿Cuál es el precio por vehículo?\n\nGracias,\nLucía" + QUOTE_ES),
    ("es", "RE: Licencia", "Hola,\n\nNecesito una cotizacion para tres años, por favor.\n\nSaludos\nJavier" + QUOTE_ES),
]

UNSUBSCRIBE = [
    ("en", "Re: Fleet telematics", "Please remove me from your mailing list.\n\nTom Hale" + QUOTE_EN),
    ("en", "Re: Intro", "Hi,\n\nStop emailing me, we are not a fit.\n\nKim" + QUOTE_EN),
    ("en", "unsubscribe", "" + QUOTE_EN),
    ("en", "Re: Follow-up", "Hello,\n\nPlease take me off this list. Thanks.\n\n--\nKim Park\nNorth Clinic" + QUOTE_EN),
    (
        "de",
        "AW: Telematik",
        "Bitte entfernen Sie mich aus dem Verteiler.\n\nMit freundlichen Grüßen\nJonas Brandt" + QUOTE_DE,
    ),
    (
        "de",
        "AW: Angebot",
        "Guten Tag,\n\nbitte tragen Sie mich aus, ich möchte keine weiteren E-Mails erhalten.\n\nGruß\nMarkus"
        + QUOTE_DE,
    ),
    ("de", "Abmelden", "Abmelden.\n\nSabine Koch" + QUOTE_DE),
    ("de", "AW: Demo", "Hallo,\n\nbitte nehmen Sie mich aus Ihrem Verteiler nehmen. Danke.\n\nLea" + QUOTE_DE),
    (
        "fr",
        "RE: Télématique",
        "Bonjour,\n\nMerci de me désinscrire de votre liste.\n\nCordialement,\nCamille" + QUOTE_FR,
    ),
    ("fr", "RE: Proposition", "Bonjour,\n\nJe souhaite ne plus recevoir vos emails.\n\nThomas" + QUOTE_FR),
    ("fr", "Désinscription", "Merci.\n\nJulie" + QUOTE_FR),
    ("fr", "RE: Démo", "Bonjour,\n\nVeuillez me retirer de votre liste de diffusion.\n\nLuc" + QUOTE_FR),
    ("es", "RE: Telemática", "Hola,\n\nPor favor, quiero darme de baja de esta lista.\n\nMaría" + QUOTE_ES),
    ("es", "RE: Propuesta", "Buenos días,\n\nPor favor eliminarme de su lista de correo.\n\nCarlos" + QUOTE_ES),
    ("es", "RE: Demo", "No quiero recibir más correos, gracias.\n\nLucía" + QUOTE_ES),
    ("es", "Baja", "Baja.\n\nJavier" + QUOTE_ES),
]

OUT_OF_OFFICE = [
    (
        "en",
        "Automatic reply: Fleet telematics",
        "Thank you for your email. I am out of the office until 14 December with limited access to email.\n\nDana",
    ),
    (
        "en",
        "Re: Intro",
        "Hi,\n\nI'm currently on annual leave and will be back on Monday 7 December.\n\nKind regards,\nTom",
    ),
    (
        "en",
        "Out of Office",
        "I will be out of the office until January 4th. For urgent matters contact support@prospect.example.",
    ),
    ("en", "Re: Proposal", "I'll be away from my desk until Friday. Your message will not be forwarded.\n\nBill"),
    (
        "de",
        "Abwesenheitsnotiz: Telematik",
        "Vielen Dank für Ihre Nachricht. Ich bin bis zum 14. Dezember nicht im Büro "
        "und habe keinen Zugriff auf meine E-Mails.\n"
        "\nMit freundlichen Grüßen\nJonas Brandt",
    ),
    (
        "de",
        "AW: Angebot",
        "Guten Tag,\n\n"
        "ich bin bis einschließlich 11.12. im Urlaub. "
        "In dringenden Fällen wenden Sie sich an vertrieb@prospect.example.\n"
        "\nGruß\nMarkus",
    ),
    ("de", "Automatische Antwort: Demo", "Ich bin ab dem 7. Dezember wieder erreichbar.\n\nSabine Koch"),
    (
        "de",
        "AW: Telematik",
        "Hallo,\n\nich bin derzeit nur eingeschränkt erreichbar und ab Montag wieder im Buro.\n\nLea",
    ),
    (
        "fr",
        "Réponse automatique : Télématique",
        "Bonjour,\n\nJe suis absent du bureau jusqu'au 14 décembre inclus.\n\nCordialement,\nThomas Girard",
    ),
    (
        "fr",
        "RE: Proposition",
        "Bonjour,\n\nJe serai absente jusqu'au lundi 7 décembre avec un accès limité à mes e-mails.\n\nCamille",
    ),
    ("fr", "RE: Démo", "Bonjour,\n\nJe suis en congés, de retour le 4 janvier.\n\nJulie"),
    ("fr", "Absent du bureau", "Merci pour votre message, je le traiterai à mon retour.\n\nLuc"),
    (
        "es",
        "Respuesta automática: Telemática",
        "Hola,\n\nEstoy fuera de la oficina hasta el 14 de diciembre.\n\nSaludos,\nMaría López",
    ),
    (
        "es",
        "RE: Propuesta",
        "Buenos días,\n\nEstaré ausente hasta el lunes 7 de diciembre con acceso limitado al correo.\n\nCarlos",
    ),
    ("es", "RE: Demo", "Hola,\n\nEstoy de vacaciones hasta el 4 de enero.\n\nLucía"),
    ("es", "Fuera de la oficina", "Gracias por su mensaje. Responderé a mi regreso.\n\nJavier"),
]


def _ids(cases: list[tuple[str, str, str]]) -> list[str]:
    return [f"{lang}-{i}" for i, (lang, _, _) in enumerate(cases)]


def test_every_language_has_at_least_four_emails_per_intent():
    for cases in (SCHEDULING, PRICING, UNSUBSCRIBE, OUT_OF_OFFICE):
        for lang in ("en", "de", "fr", "es"):
            assert sum(1 for c in cases if c[0] == lang) >= 4, lang


@pytest.mark.parametrize(("lang", "subject", "body"), SCHEDULING, ids=_ids(SCHEDULING))
def test_a_request_to_talk_is_a_booking_request(lang, subject, body):
    result = classify_email(subject, body, SENDER)
    assert result.intent is EmailIntentKind.BOOKING_REQUEST, result.signals
    assert result.scheduling_text and "wrote:" not in result.scheduling_text and "schrieb" not in result.scheduling_text


@pytest.mark.parametrize(("lang", "subject", "body"), SCHEDULING, ids=_ids(SCHEDULING))
def test_a_campaign_reply_asking_to_talk_is_positive(lang, subject, body):
    assert classify_reply(subject, body).label is ReplyLabel.POSITIVE


@pytest.mark.parametrize(("lang", "subject", "body"), PRICING, ids=_ids(PRICING))
def test_a_price_question_needs_a_reply_and_is_named_as_pricing(lang, subject, body):
    result = classify_email(subject, body, SENDER)
    assert result.intent is EmailIntentKind.REPLY_REQUIRED, result.signals
    assert any(s.startswith("pricing:") for s in result.signals), result.signals


@pytest.mark.parametrize(("lang", "subject", "body"), PRICING, ids=_ids(PRICING))
def test_a_campaign_reply_asking_for_prices_is_positive(lang, subject, body):
    assert classify_reply(subject, body).label is ReplyLabel.POSITIVE


@pytest.mark.parametrize(("lang", "subject", "body"), UNSUBSCRIBE, ids=_ids(UNSUBSCRIBE))
def test_a_removal_request_is_an_unsubscribe_in_both_classifiers(lang, subject, body):
    assert classify_email(subject, body, SENDER).intent is EmailIntentKind.UNSUBSCRIBE
    assert classify_reply(subject, body).label is ReplyLabel.UNSUBSCRIBE


@pytest.mark.parametrize(("lang", "subject", "body"), OUT_OF_OFFICE, ids=_ids(OUT_OF_OFFICE))
def test_an_absence_notice_is_out_of_office_in_both_classifiers(lang, subject, body):
    assert classify_email(subject, body, SENDER).intent is EmailIntentKind.OUT_OF_OFFICE
    assert classify_reply(subject, body).label is ReplyLabel.OUT_OF_OFFICE


@pytest.mark.parametrize(
    ("plain", "accented"),
    [
        ("Ich bin nicht im Buro.", "Ich bin nicht im Büro."),
        ("merci de me desinscrire", "merci de me désinscrire"),
        ("ESTOY FUERA DE LA OFICINA", "Estoy fuera de la oficina"),
        ("Quel est le prix ?", "QUEL EST LE PRIX ?"),
    ],
)
def test_matching_ignores_accents_and_case(plain, accented):
    assert classify_email("Re: Telematik", plain, SENDER).intent is classify_email("Re: x", accented, SENDER).intent
    assert classify_reply("Re: x", plain).label is classify_reply("Re: x", accented).label


def test_the_quoted_thread_does_not_decide_the_intent():
    body = "Thanks, that answers it.\n\nBest,\nDana" + QUOTE_DE.replace("Nachfrage", "Können wir telefonieren?")
    assert classify_email("AW: Telematik", body, SENDER).intent is EmailIntentKind.FYI
