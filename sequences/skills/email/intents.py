"""What an inbound email wants (email_received, offline): reply, booking, out of office, unsubscribe,
FYI or spam. Pure functions (no I/O): the email_received steps pass the message's subject, body
and sender in and store the values that come out.

Classification (``classify_email``) works on the subject plus the body *after* ``strip_quoted``
(quoted replies, forwarded headers and the signature removed), case-folded, accent-free (é → e,
ü → u, ß → ss: "Buro" matches "Büro") and with curly apostrophes straightened; ``signals`` quote the
phrases in that form. Phrases cover English, German, French and Spanish, with a few Japanese markers.
The first intent in this priority order whose rule matches wins:

====  ===================  ==========================================================================
prio  intent               rule
====  ===================  ==========================================================================
1     ``out_of_office``    an auto-reply subject ("Automatic reply", "Out of office", "OOO",
                           "Abwesenheitsnotiz", "Réponse automatique", …), or an absence phrase in
                           the body ("away until", "on leave", "im Urlaub", "en congé", "estoy
                           fuera", …) in a body that asks no question (a person writing "I'm out next
                           week, can we meet before?" is not an auto-reply)
2     ``unsubscribe``      the sender asks to be removed ("unsubscribe me", "remove me from",
                           "stop emailing", "opt out", "abmelden", "désabonner", "darme de baja", …),
                           a subject that is just "unsubscribe"/"remove"/"stop", or the bare word
                           "unsubscribe" in a short body that is not a newsletter. A legal obligation,
                           so it outranks everything a person might also have written
3     ``spam``             two or more spam points: spam phrases ("you have won", "wire transfer",
                           "crypto", "claim your prize", …) and suspicious patterns (shouting
                           subject, "!!!", URL shorteners, links to bare IP addresses, many money
                           amounts). Before booking/reply so a scam question never gets a drafted reply
4     ``fyi`` (bulk)       automated or bulk mail: a no-reply/newsletter/notification sender, bulk
                           footers ("view in browser", "manage preferences", "you are receiving
                           this"), or a message from the user themself
5     ``booking_request``  a scheduling phrase ("find a time", "book a call", "are you free", "your
                           availability", "what time works", "could we meet", "Termin", "können wir
                           telefonieren", "pouvons-nous parler", "créneau", "¿podemos hablar el
                           martes?", "日程", …), or two scheduling words ("calendar", "schedule",
                           "available", …) with a question; ``scheduling_text`` is the cleaned body
6     ``reply_required``   a question ("?", its full-width form, "でしょうか") or a request ("can you", "please send",
                           "let me know", "könnten Sie", "pourriez-vous", "por favor", "ください", …);
                           a price question ("pricing", "Preisgestaltung", "tarifs", "¿cuánto cuesta?")
                           adds ``pricing:`` signals
7     ``fyi``              nothing above: information only
====  ===================  ==========================================================================

Confidence is a fixed rule strength in 0..1 (documented next to each constant), raised a little when
several signals agree; ``signals`` names every rule that fired, including ones that did not win.
"""

from __future__ import annotations

import re
from enum import StrEnum

from pydantic import BaseModel, ConfigDict, Field

from sequences.skills.email.addresses import parse_address
from sequences.skills.email.quoted_text import strip_quoted
from sequences.skills.email.text import key, rx

OOO_SUBJECT_CONFIDENCE = 0.9  # 0..1: an auto-reply subject is a machine marker, rarely wrong
OOO_BODY_CONFIDENCE = 0.8  # 0..1: an absence phrase in a body without a question
UNSUBSCRIBE_CONFIDENCE = 0.9  # 0..1: an explicit removal request
SPAM_BASE_CONFIDENCE = 0.5  # 0..1: plus SPAM_POINT_CONFIDENCE per spam point, at most MAX_CONFIDENCE
SPAM_POINT_CONFIDENCE = 0.1  # 0..1 per spam point
SPAM_MIN_POINTS = 2  # points: one spammy phrase alone is not enough (sales emails say "act now" too)
BULK_CONFIDENCE = 0.85  # 0..1: a no-reply sender or a bulk footer
BOOKING_STRONG_CONFIDENCE = 0.85  # 0..1: a scheduling phrase
BOOKING_WEAK_CONFIDENCE = 0.6  # 0..1: only scheduling words and a question
REPLY_CONFIDENCE = 0.6  # 0..1: plus 0.1 per extra question/request signal, at most REPLY_MAX_CONFIDENCE
REPLY_MAX_CONFIDENCE = 0.9  # 0..1
FYI_CONFIDENCE = 0.5  # 0..1: nothing actionable found, which is a weak statement
EMPTY_CONFIDENCE = 0.3  # 0..1: no subject and no body
MAX_CONFIDENCE = 0.95  # 0..1: rules never claim certainty
SHORT_BODY_WORDS = 30  # words: a bare "unsubscribe" in a body this short is a request, not a footer
SCHEDULING_TEXT_MAX_CHARS = 2000  # chars handed to calendar_find_times (its parser needs no more)


class EmailIntentKind(StrEnum):
    """What an inbound email wants; stored as its string value."""

    REPLY_REQUIRED = "reply_required"
    BOOKING_REQUEST = "booking_request"
    OUT_OF_OFFICE = "out_of_office"
    UNSUBSCRIBE = "unsubscribe"
    FYI = "fyi"
    SPAM = "spam"


class EmailIntent(BaseModel):
    """The classification of one email: its intent, how sure the rules are, and why."""

    model_config = ConfigDict(frozen=True)

    intent: EmailIntentKind
    confidence: float = Field(ge=0.0, le=1.0)
    signals: list[str] = Field(default_factory=list)  # every rule that fired, winner first
    scheduling_text: str | None = None  # booking_request only: the cleaned body for calendar_find_times


_OOO_SUBJECT_RE = rx(
    r"automatic reply",
    r"auto[- ]?reply",
    r"autoreply",
    r"auto[- ]?response",
    r"automated response",
    r"out of (?:the )?office",
    r"ooo",
    r"away from (?:the )?office",
    r"on vacation",
    r"on leave",
    r"abwesenheit\w*",
    r"automatische antwort",
    r"nicht im büro",
    r"réponse automatique",
    r"absente? du bureau",
    r"respuesta automática",
    r"fuera de la oficina",
    r"ausente",
    r"afwezig",
    r"fuori ufficio",
    r"risposta automatica",
    unbounded=(r"不在", r"自動返信"),
)
_OOO_BODY_RE = rx(
    r"out of (?:the )?office",
    r"(?:i am|i'm) (?:currently )?(?:out|away)",
    r"i will be (?:out|away)",
    r"i'll be (?:out|away)",
    r"away until",
    r"away from (?:the |my )?(?:office|desk)",
    r"on (?:annual |parental |maternity |paternity |sick )?leave",
    r"on (?:vacation|holiday|holidays|pto)",
    r"limited (?:access to (?:my )?e-?mail|connectivity)",
    r"back in the office",
    r"return(?:ing)? to the office",
    r"nicht im büro",
    r"ausser haus",
    r"außer haus",
    r"abwesend",
    r"im urlaub",
    r"in urlaub",
    r"nicht (?:mehr )?im (?:büro|buero|haus)",
    r"(?:nur )?eingeschränkt erreichbar",
    r"nicht erreichbar",
    r"wieder im büro",
    r"wieder erreichbar",
    r"keinen zugriff auf (?:meine )?e-?mails",
    r"je suis absente?",
    r"absente? du bureau",
    r"je serai absente?",
    r"absente? jusqu'(?:au|à)",
    r"en déplacement",
    r"accès limité à mes (?:e-?mails|courriels|messages)",
    r"en congé",
    r"de retour le",
    r"en vacances",
    r"estoy fuera",
    r"fuera de la oficina",
    r"de vacaciones",
    r"estaré fuera",
    r"estaré ausente",
    r"estoy ausente",
    r"acceso limitado (?:al|a mi) correo",
    r"ausente",
    unbounded=(r"不在", r"休暇"),
)
_UNSUBSCRIBE_RE = rx(
    r"unsubscribe me",
    r"please unsubscribe",
    r"remove me from",
    r"take me off",
    r"opt (?:me )?out",
    r"stop (?:e-?mailing|sending|contacting|messaging|writing to)",
    r"no more e-?mails",
    r"do not (?:contact|e-?mail|write to) me",
    r"don't (?:contact|e-?mail|write to) me",
    r"melden sie mich ab",
    r"bitte austragen",
    r"entfernen sie mich",
    r"tragen sie mich (?:bitte )?aus",
    r"(?:aus (?:dem|ihrem|eurem) )?(?:verteiler|mailverteiler|e-?mail-?verteiler) (?:nehmen|entfernen|streichen)",
    r"keine werbung",
    r"abmelden",
    r"keine (?:weiteren )?(?:e-?mails|nachrichten)",
    r"désabonner",
    r"désinscri\w*",
    r"ne plus recevoir",
    r"retirez-moi",
    r"(?:me )?retirer de (?:votre|la) liste",
    r"supprimez-moi",
    r"ne (?:plus )?m'(?:envoyez|écrivez) plus",
    r"darme de baja",
    r"(?:eliminarme|sacarme|borrarme|quitarme) de (?:su|tu|la|vuestra) lista",
    r"no quiero recibir (?:más )?(?:correos|e-?mails|mensajes)",
    r"dejen? de (?:enviarme|escribirme)",
    r"dar de baja",
    r"no me (?:envíe|envíen|escriba)n?",
    r"cancelar (?:la )?suscripción",
    unbounded=(r"配信停止",),
)
_UNSUBSCRIBE_SUBJECTS = frozenset(
    {"unsubscribe", "remove", "remove me", "stop", "abmelden", "austragen", "desabonner", "desinscription", "baja"}
)  # accent-free, as ``key`` leaves a subject
_UNSUBSCRIBE_WORD_RE = rx(r"unsubscribe")
_NO_REPLY_LOCAL_RE = re.compile(
    r"^(?:no[-_.]?reply|do[-_.]?not[-_.]?reply|donotreply|notifications?|notify|newsletters?|news|"
    r"mailer[-_.]?daemon|postmaster|bounces?|marketing|updates|digest|alerts?)(?:[-_.+]\S*)?$"
)
_BULK_RE = rx(
    r"view (?:this (?:e-?mail|message) )?in (?:your |a )?browser",
    r"view (?:it |this e-?mail )?online",
    r"manage (?:your )?(?:e-?mail |subscription |notification )?preferences",
    r"update your preferences",
    r"you (?:are receiving|received) this (?:e-?mail|message)",
    r"this (?:e-?mail|message) was sent to",
    r"this is an automated (?:message|e-?mail|notification)",
    r"do not reply to this (?:e-?mail|message)",
    r"please do not reply",
    r"im browser (?:ansehen|anzeigen|öffnen)",
    r"newsletter abbestellen",
    r"afficher dans (?:le|votre) navigateur",
    r"ver en (?:el|tu|su) navegador",
)
_SPAM_RE = rx(
    r"viagra",
    r"cialis",
    r"casino",
    r"lottery",
    r"you have won",
    r"you've won",
    r"winner",
    r"claim your (?:prize|reward)",
    r"crypto(?:currency)?",
    r"bitcoin",
    r"btc",
    r"usdt",
    r"wire transfer",
    r"western union",
    r"inheritance",
    r"beneficiary",
    r"next of kin",
    r"100% free",
    r"risk[- ]free",
    r"act now",
    r"limited time offer",
    r"make money fast",
    r"earn \$\d+",
    r"work from home",
    r"weight loss",
    r"cheap meds",
    r"dear friend",
    r"verify your account",
    r"your password (?:has )?expired",
    r"gift card",
    r"urgent reply",
    r"million dollars",
    r"click here",
    r"double your",
)
_SHORTENER_RE = re.compile(r"(?<!\w)(?:bit\.ly|tinyurl\.com|goo\.gl|t\.co|ow\.ly|is\.gd|buff\.ly)/", re.IGNORECASE)
_IP_URL_RE = re.compile(r"https?://\d{1,3}\.\d{1,3}\.\d{1,3}\.\d{1,3}")
_MONEY_RE = re.compile(r"[$€£]\s?\d[\d,.]*|\d[\d,.]*\s?(?:usd|eur|dollars|euros)\b")
_BOOKING_STRONG_RE = rx(
    r"find (?:a|some) (?:time|slot)",
    r"book (?:a|an|some) (?:call|meeting|demo|time|slot|session)",
    r"schedule (?:a |an |the |some )?(?:call|meeting|demo|time|chat|session|follow-up)",
    r"set up (?:a |an )?(?:call|meeting|demo|time|chat)",
    r"are you (?:free|available)",
    r"your availability",
    r"what times? (?:works?|suits?)",
    r"when (?:works|would work|suits|are you free|is good)",
    r"does (?:monday|tuesday|wednesday|thursday|friday|tomorrow|next week)\b.{0,30}\bwork",
    r"meet next week",
    r"(?:can|could|shall|should) we (?:meet|talk|speak|chat|hop on|jump on)",
    r"meet (?:before|on|this|next) (?:monday|tuesday|wednesday|thursday|friday|week)",
    r"(?:hop|jump) on a (?:quick )?call",
    r"send (?:me |over )?(?:a |an )?(?:calendar )?invite",
    r"calendly",
    r"time slots?",
    r"available for a (?:quick )?(?:call|chat|meeting)",
    r"grab (?:some )?time",
    r"(?:can|could) we talk",
    r"(?:a|some) (?:few )?times? for a (?:quick )?(?:call|chat|meeting)",
    r"termin\w*",
    r"haben sie zeit",
    r"hätten sie zeit",
    r"passt (?:es )?ihnen",
    r"telefonieren",
    r"(?:können|könnten) wir (?:uns )?(?:kurz )?(?:treffen|sprechen|austauschen|telefonieren)",
    r"(?:gespräch|telefonat|call|videocall) (?:vereinbaren|ausmachen)",
    r"(?:kurzes|kurzen) (?:telefonat|gespräch|call)",
    r"wann (?:passt|hätten sie|haben sie)",
    r"rendez-vous",
    r"créneau\w*",
    r"êtes-vous disponible",
    r"(?:pouvons|pourrions)[- ]nous (?:nous )?(?:parler|échanger|rencontrer|appeler|voir|planifier)",
    r"(?:planifier|organiser|caler|fixer) (?:un|une) (?:appel|réunion|échange|rendez-vous|rdv)",
    r"(?:seriez|êtes)[- ]vous (?:libre|disponible)",
    r"un appel (?:mardi|lundi|mercredi|jeudi|vendredi|la semaine prochaine|demain)",
    r"disponibilit\w*",
    r"agendar",
    r"tienes tiempo",
    r"tiene tiempo",
    r"(?:podemos|podríamos|pudiéramos) (?:hablar|reunirnos|vernos|llamarnos|tener una (?:llamada|reunión))",
    r"(?:programar|organizar|concertar) una (?:llamada|reunión|cita)",
    r"(?:cuándo|qué día) (?:te|le) (?:viene|va) bien",
    r"(?:estás|está) (?:libre|disponible)",
    unbounded=(r"日程", r"ご都合"),
)
_BOOKING_WEAK_RE = rx(r"calendar", r"schedule", r"available", r"availability", r"meet", r"meeting", r"call", r"zeit")
_PRICING_RE = rx(
    r"pricing",
    r"price(?:s|list| list)?",
    r"how much (?:does|do|would|will|is|are)",
    r"(?:a|your) quote",
    r"what (?:does|would|will) (?:it|this|that) cost",
    r"costs?",
    r"preis\w*",
    r"was kostet",
    r"kosten",
    r"konditionen",
    r"(?:ein|ihr) angebot",
    r"prix",
    r"tarif\w*",
    r"combien (?:ça|cela|ca)? ?(?:coûte|coute)",
    r"devis",
    r"coût\w*",
    r"precio\w*",
    r"cuánto (?:cuesta|cuestan|costaría|vale)",
    r"tarifas?",
    r"cotización",
    r"presupuesto",
    r"costes?",
    r"costos?",
)  # a question about price: a buying signal, always worth a reply
_QUESTION_RE = re.compile(r"[?\uff1f]|でしょうか|ますか")
_REQUEST_RE = rx(
    r"can you",
    r"could you",
    r"would you",
    r"will you",
    r"please (?:send|share|confirm|let me know|advise|review|provide|call|reply|get back)",
    r"let me know",
    r"i'd like to",
    r"i would like to",
    r"we need",
    r"we'd need",
    r"looking forward to (?:hearing|your)",
    r"what do you think",
    r"your thoughts",
    r"kindly",
    r"können sie",
    r"könnten sie",
    r"(?:können|könnten) wir",
    r"wie sieht",
    r"ich (?:hätte|würde) gerne?",
    r"würden sie",
    r"bitte (?:senden|schicken|bestätigen|teilen|melden)",
    r"pourriez-vous",
    r"pouvez-vous",
    r"(?:pouvons|pourrions)[- ]nous",
    r"quel(?:le)?s? (?:est|sont)",
    r"j'aimerais",
    r"merci de (?:me|nous)",
    r"podría",
    r"podrías",
    r"(?:podemos|podríamos)",
    r"me gustaría",
    r"puede enviar",
    r"por favor",
    unbounded=(r"ください", r"お願いします", r"お願いいたします", r"教えて"),
)
_LETTER_RE = re.compile(r"[^\W\d_]")


def _shouting(subject: str) -> bool:
    letters = [c for c in subject if c.isalpha() and (c.isupper() or c.islower())]
    return len(letters) >= 8 and sum(1 for c in letters if c.isupper()) / len(letters) >= 0.8


def _spam_points(subject: str, folded: str) -> list[str]:
    points = [f"spam:{m}" for m in sorted({m.group(0) for m in _SPAM_RE.finditer(folded)})]
    if _shouting(subject):
        points.append("spam:shouting_subject")
    if "!!!" in subject or subject.count("!") >= 3:
        points.append("spam:exclamations")
    if _SHORTENER_RE.search(folded):
        points.append("spam:url_shortener")
    if _IP_URL_RE.search(folded):
        points.append("spam:ip_link")
    if len(_MONEY_RE.findall(folded)) >= 3:
        points.append("spam:money_amounts")
    return points


def _cap(value: float) -> float:
    return round(max(0.0, min(MAX_CONFIDENCE, value)), 3)


def classify_email(
    subject: str | None,
    body: str | None,
    from_email: str | None,
    *,
    to_user_email: str | None = None,
) -> EmailIntent:
    """Classify one inbound email by the rules and priority order in the module docstring.

    ``from_email`` may be a bare address or a From header; ``to_user_email`` is the rep's own address
    (a message from it is ``fyi``). Never raises on any text; ``confidence`` is always in 0..1.
    """
    subject = subject or ""
    clean = strip_quoted(body)
    folded_subject = key(subject).strip()
    folded_body = key(clean)
    folded = f"{folded_subject}\n{folded_body}"
    sender = parse_address(from_email)[1] or ""
    user = parse_address(to_user_email)[1] if to_user_email else None
    local = sender.split("@", 1)[0] if sender else ""
    asks_question = bool(_QUESTION_RE.search(clean))
    body_words = len(folded_body.split())

    signals: list[str] = []
    ooo_subject = bool(_OOO_SUBJECT_RE.search(folded_subject))
    ooo_body = bool(_OOO_BODY_RE.search(folded_body))
    if ooo_subject:
        signals.append("ooo:subject")
    if ooo_body:
        signals.append("ooo:body")
    bulk_markers = [f"bulk:{m.group(0)}" for m in _BULK_RE.finditer(folded_body)]
    if _UNSUBSCRIBE_WORD_RE.search(folded_body) and body_words >= SHORT_BODY_WORDS:
        bulk_markers.append("bulk:unsubscribe_footer")
    unsubscribe = [f"unsubscribe:{m.group(0)}" for m in _UNSUBSCRIBE_RE.finditer(folded)]
    if folded_subject.strip(" .!") in _UNSUBSCRIBE_SUBJECTS:
        unsubscribe.append("unsubscribe:subject")
    if not unsubscribe and not bulk_markers and body_words < SHORT_BODY_WORDS and _UNSUBSCRIBE_WORD_RE.search(folded):
        unsubscribe.append("unsubscribe:short_request")
    signals += unsubscribe
    spam = _spam_points(subject, folded)
    signals += spam
    if sender and _NO_REPLY_LOCAL_RE.match(local):
        bulk_markers.insert(0, "bulk:no_reply_sender")
    if sender and user and sender == user:
        bulk_markers.insert(0, "fyi:from_self")
    signals += bulk_markers
    booking_strong = sorted({m.group(0) for m in _BOOKING_STRONG_RE.finditer(folded)})
    booking_weak = sorted({m.group(0) for m in _BOOKING_WEAK_RE.finditer(folded)})
    signals += [f"booking:{m}" for m in booking_strong]
    requests = sorted({m.group(0) for m in _REQUEST_RE.finditer(folded)})
    pricing = sorted({m.group(0) for m in _PRICING_RE.finditer(folded)})
    if asks_question:
        signals.append("reply:question")
    signals += [f"reply:{m}" for m in requests] + [f"pricing:{m}" for m in pricing]

    def decide(intent: EmailIntentKind, confidence: float, winner: list[str], text: str | None = None) -> EmailIntent:
        ordered = winner + [s for s in signals if s not in winner]
        return EmailIntent(intent=intent, confidence=_cap(confidence), signals=ordered, scheduling_text=text)

    if ooo_subject:
        boost = 0.05 if ooo_body else 0.0
        return decide(EmailIntentKind.OUT_OF_OFFICE, OOO_SUBJECT_CONFIDENCE + boost, ["ooo:subject"])
    if ooo_body and not asks_question:
        return decide(EmailIntentKind.OUT_OF_OFFICE, OOO_BODY_CONFIDENCE, ["ooo:body"])
    if unsubscribe:
        return decide(EmailIntentKind.UNSUBSCRIBE, UNSUBSCRIBE_CONFIDENCE + 0.05 * (len(unsubscribe) - 1), unsubscribe)
    if len(spam) >= SPAM_MIN_POINTS:
        return decide(EmailIntentKind.SPAM, SPAM_BASE_CONFIDENCE + SPAM_POINT_CONFIDENCE * len(spam), spam)
    if bulk_markers:
        return decide(EmailIntentKind.FYI, BULK_CONFIDENCE + 0.05 * (len(bulk_markers) - 1), bulk_markers)
    scheduling_text = (clean or subject).strip()[:SCHEDULING_TEXT_MAX_CHARS] or None
    if booking_strong:
        winner = [f"booking:{m}" for m in booking_strong]
        confidence = BOOKING_STRONG_CONFIDENCE + 0.05 * (len(booking_strong) - 1)
        return decide(EmailIntentKind.BOOKING_REQUEST, confidence, winner, scheduling_text)
    if len(booking_weak) >= 2 and asks_question:
        winner = [f"booking_weak:{m}" for m in booking_weak]
        return decide(EmailIntentKind.BOOKING_REQUEST, BOOKING_WEAK_CONFIDENCE, winner, scheduling_text)
    reply = (["reply:question"] if asks_question else []) + [f"reply:{m}" for m in requests]
    reply += [f"pricing:{m}" for m in pricing] if reply or asks_question else []
    if reply:
        confidence = min(REPLY_MAX_CONFIDENCE, REPLY_CONFIDENCE + 0.1 * (len(reply) - 1))
        return decide(EmailIntentKind.REPLY_REQUIRED, confidence, reply)
    if not folded_subject and not folded_body.strip():
        return decide(EmailIntentKind.FYI, EMPTY_CONFIDENCE, ["fyi:empty"])
    if not _LETTER_RE.search(folded):
        return decide(EmailIntentKind.FYI, EMPTY_CONFIDENCE, ["fyi:no_text"])
    return decide(EmailIntentKind.FYI, FYI_CONFIDENCE, ["fyi:nothing_actionable"])
