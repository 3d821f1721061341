"""Inbound email rules (email_received, offline): sender, intent, return date, first reply.

Pure decisions (no I/O): the email_received steps pass the message's subject, body and headers in
and store the values that come out. Everything is rule-based and deterministic (``now`` is passed in).

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
import unicodedata
from datetime import date, datetime, timedelta
from email.header import decode_header, make_header
from email.utils import getaddresses
from enum import StrEnum

from pydantic import BaseModel, ConfigDict, Field

from sequences.skills.dates import MONTHS

FREE_MAIL_DOMAINS: frozenset[str] = frozenset(
    {
        # global webmail
        "gmail.com",
        "googlemail.com",
        "outlook.com",
        "hotmail.com",
        "live.com",
        "msn.com",
        "icloud.com",
        "me.com",
        "mac.com",
        "aol.com",
        "aim.com",
        "proton.me",
        "protonmail.com",
        "protonmail.ch",
        "pm.me",
        "tutanota.com",
        "tutanota.de",
        "tuta.io",
        "zoho.com",
        "zohomail.com",
        "fastmail.com",
        "fastmail.fm",
        "hey.com",
        "mail.com",
        "email.com",
        "gmx.com",
        "gmx.net",
        "yahoo.com",
        "ymail.com",
        "rocketmail.com",
        "yandex.com",
        "yandex.ru",
        "ya.ru",
        # Europe
        "gmx.de",
        "gmx.at",
        "gmx.ch",
        "web.de",
        "t-online.de",
        "freenet.de",
        "posteo.de",
        "mailbox.org",
        "arcor.de",
        "orange.fr",
        "wanadoo.fr",
        "free.fr",
        "laposte.net",
        "sfr.fr",
        "libero.it",
        "virgilio.it",
        "tiscali.it",
        "seznam.cz",
        "wp.pl",
        "o2.pl",
        "interia.pl",
        "onet.pl",
        "btinternet.com",
        "sky.com",
        "virginmedia.com",
        "telenet.be",
        "ziggo.nl",
        "bluewin.ch",
        "mail.ru",
        "inbox.ru",
        "list.ru",
        "bk.ru",
        "rambler.ru",
        # Americas
        "comcast.net",
        "verizon.net",
        "att.net",
        "sbcglobal.net",
        "bellsouth.net",
        "cox.net",
        "charter.net",
        "earthlink.net",
        "uol.com.br",
        "bol.com.br",
        "terra.com.br",
        # Asia
        "qq.com",
        "163.com",
        "126.com",
        "yeah.net",
        "sina.com",
        "sina.cn",
        "sohu.com",
        "aliyun.com",
        "naver.com",
        "daum.net",
        "hanmail.net",
        "rediffmail.com",
    }
)  # consumer mailbox providers: a sender here says nothing about their company
FREE_MAIL_FAMILIES: frozenset[str] = frozenset(
    {"yahoo", "hotmail", "outlook", "live", "gmx", "yandex", "aol"}
)  # providers with a domain per country: "<family>.<country suffix>" is free mail (yahoo.co.uk, gmx.fr)

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
SIGNATURE_MAX_LINES = 8  # lines after a closing ("Best,") that can still be a signature block
SCHEDULING_TEXT_MAX_CHARS = 2000  # chars handed to calendar_find_times (its parser needs no more)
ANCHOR_WINDOW_CHARS = 40  # chars before a date in which "until"/"back on" anchors it as the return date


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


class EmailDraft(BaseModel):
    """A drafted email: subject and plain-text body, for a person to review before sending."""

    model_config = ConfigDict(frozen=True)

    subject: str
    body: str


# --- addresses ---------------------------------------------------------------------------------------

_ADDRESS_RE = re.compile(r"[^@\s<>(),;:\"\[\]]+@[^@\s<>(),;:\"\[\]]+")
_SUFFIX_LABEL_RE = re.compile(r"[a-z]{2,3}")


def _decode_header(header: str) -> str:
    try:
        return str(make_header(decode_header(header)))
    except (ValueError, LookupError, UnicodeError, TypeError):  # malformed encoded words: keep the raw text
        return header


def parse_address(header: str | None) -> tuple[str, str | None]:
    """Split a From/To header into ``(display name, email)``; the email is lower-cased, None if absent.

    Handles ``Name <a@b.com>``, ``"Last, First" <a@b.com>``, ``a@b.com (Name)``, bare addresses and
    RFC 2047 encoded names; for a list of addresses the first one with an ``@`` wins.
    """
    if not header or not header.strip():
        return "", None
    text = _decode_header(header.replace("\r", " ").replace("\n", " "))
    for name, address in getaddresses([text]):
        address = address.strip().strip(".")
        if _ADDRESS_RE.fullmatch(address):
            return name.strip().strip('"').strip(), address.lower()
    found = _ADDRESS_RE.search(text)
    if found is None:
        return text.strip().strip('"').strip() if "@" not in text else "", None
    name = text[: found.start()].strip().strip("<").strip().strip('"').strip()
    return name, found.group(0).strip(".").lower()


def domain_of(email: str | None) -> str | None:
    """The lower-cased domain of an address or header (``"Dana <dana@Acme.io>"`` → ``acme.io``)."""
    _, address = parse_address(email)
    if address is None:
        return None
    domain = address.rsplit("@", 1)[1].strip(".")
    return domain or None


def is_free_mail(email: str | None) -> bool:
    """Whether the address is at a consumer mailbox provider (so its domain names no company)."""
    domain = domain_of(email)
    if domain is None:
        return False
    if domain in FREE_MAIL_DOMAINS:
        return True
    family, _, suffix = domain.partition(".")
    labels = suffix.split(".")
    return family in FREE_MAIL_FAMILIES and 1 <= len(labels) <= 2 and all(_SUFFIX_LABEL_RE.fullmatch(x) for x in labels)


# --- quoted replies and signatures -----------------------------------------------------------------

_REPLY_HEADER_RES = (
    re.compile(r"^\s*on\b.{0,300}\bwrote\s*:\s*$"),
    re.compile(r"^\s*am\b.{0,300}\bschrieb\b.{0,200}:\s*$"),
    re.compile(r"^\s*le\b.{0,300}\ba écrit\s*:\s*$"),
    re.compile(r"^\s*el\b.{0,300}\bescribió\s*:\s*$"),
    re.compile(r"^.{0,300}書きました\s*[:\uff1a]\s*$"),
    re.compile(
        r"^\s*-{2,}\s*(?:original message|ursprüngliche nachricht|message d'origine|mensaje original|"
        r"forwarded message|weitergeleitete nachricht)\s*-{2,}\s*$"
    ),
    re.compile(r"^\s*_{10,}\s*$"),
)
_FROM_LINE_RE = re.compile(r"^\s*\*?(?:from|von|de|envoyé par)\s*:?\*?\s*:?\s*\S")
_HEADER_LINE_RE = re.compile(
    r"^\s*\*?(?:sent|date|to|subject|gesendet|datum|an|betreff|envoyé|à|objet|enviado|para|asunto)\s*:"
)
_DEVICE_SIGNATURE_RE = re.compile(
    r"^\s*(?:sent from my \w+|sent from (?:outlook|mail) for \w+|get outlook for \w+|von meinem \w+ gesendet|"
    r"envoyé de mon \w+|enviado desde mi \w+)"
)
_CLOSINGS = frozenset(
    {
        "best",
        "best regards",
        "best wishes",
        "regards",
        "kind regards",
        "warm regards",
        "warmest regards",
        "many thanks",
        "thanks",
        "thank you",
        "thanks again",
        "thanks so much",
        "cheers",
        "sincerely",
        "yours sincerely",
        "yours truly",
        "all the best",
        "talk soon",
        "br",
        "rgds",
        "thx",
        "mit freundlichen grüßen",
        "mit freundlichen grüssen",
        "freundliche grüße",
        "freundliche grüsse",
        "viele grüße",
        "viele grüsse",
        "beste grüße",
        "beste grüsse",
        "liebe grüße",
        "liebe grüsse",
        "lg",
        "vg",
        "mfg",
        "gruß",
        "gruss",
        "grüße",
        "grüsse",
        "danke",
        "vielen dank",
        "cordialement",
        "bien à vous",
        "bien cordialement",
        "merci",
        "merci beaucoup",
        "bonne journée",
        "saludos",
        "un saludo",
        "atentamente",
        "saludos cordiales",
        "gracias",
        "muchas gracias",
    }
)  # sign-off lines that open a signature block


def _is_reply_header(lines: list[str], index: int) -> bool:
    line = lines[index].casefold()
    joined = " ".join(x.casefold().strip() for x in lines[index : index + 3])
    if any(rx.match(line) for rx in _REPLY_HEADER_RES):
        return True
    if line.lstrip().startswith(("on ", "am ", "le ", "el ")):
        two = " ".join(x.casefold().strip() for x in lines[index : index + 2])
        if any(rx.match(two) for rx in _REPLY_HEADER_RES[:4]):
            return True
    if _FROM_LINE_RE.match(line):
        following = [x.casefold() for x in lines[index + 1 : index + 4]]
        return sum(1 for x in following if _HEADER_LINE_RE.match(x)) >= 2 or "wrote:" in joined
    return False


def _signature_start(lines: list[str]) -> int | None:
    seen_content = False
    for index, raw in enumerate(lines):
        line = raw.strip()
        if raw.rstrip("\n") in ("-- ", "--") or line == "--":
            return index
        if _DEVICE_SIGNATURE_RE.match(line.casefold()):
            return index
        closing = line.casefold().rstrip(",.!;: ").strip()
        if seen_content and closing in _CLOSINGS:
            rest = [x for x in lines[index + 1 :] if x.strip()]
            if len(rest) <= SIGNATURE_MAX_LINES:
                return index
        if line:
            seen_content = True
    return None


def strip_quoted(body: str | None) -> str:
    """The body without quoted replies, forwarded headers and the signature.

    Cuts at the first reply header ("On … wrote:", "Am … schrieb …:", "Le … a écrit :", "El … escribió:",
    "-----Original Message-----", an Outlook "From:/Sent:/To:" block, a line of underscores), drops
    lines starting with ">", then cuts at a signature: a "-- " line, "Sent from my iPhone" and the like,
    or a closing such as "Best," / "Viele Grüße" followed by at most 8 lines.
    """
    if not body:
        return ""
    lines = body.replace("\r\n", "\n").replace("\r", "\n").split("\n")
    for index in range(len(lines)):
        if _is_reply_header(lines, index):
            lines = lines[:index]
            break
    lines = [x for x in lines if not x.lstrip().startswith(">")]
    cut = _signature_start(lines)
    if cut is not None:
        lines = lines[:cut]
    text = "\n".join(x.rstrip() for x in lines).strip()
    return re.sub(r"\n{3,}", "\n\n", text)


# --- classification ----------------------------------------------------------------------------------


def _fold(text: str) -> str:
    return text.replace("\u2019", "'").replace("\u2018", "'").casefold()


def _accentless(text: str) -> str:
    """Decomposed and without combining marks (é → e, ü → u), ß as ss: how people type in a hurry."""
    decomposed = unicodedata.normalize("NFKD", text.replace("ß", "ss"))
    return "".join(ch for ch in decomposed if not unicodedata.combining(ch))


def _key(text: str) -> str:
    """Text as the classification rules read it: case-folded, accent-free, straight apostrophes."""
    return _accentless(_fold(text))


def _rx(*alternatives: str, unbounded: tuple[str, ...] = ()) -> re.Pattern[str]:
    """Alternatives matched as whole words; ``unbounded`` ones (CJK, which has no spaces) anywhere.

    Patterns are written with their accents and matched accent-free (against ``_key`` text), so
    "nicht im Büro", "NICHT IM BÜRO" and "nicht im Buro" all match one phrase.
    """
    pattern = r"(?<!\w)(?:" + "|".join(alternatives) + r")(?!\w)"
    return re.compile(_accentless(pattern + ("|" + "|".join(unbounded) if unbounded else "")))


_OOO_SUBJECT_RE = _rx(
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
_OOO_BODY_RE = _rx(
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
_UNSUBSCRIBE_RE = _rx(
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
)  # accent-free, as ``_key`` leaves a subject
_UNSUBSCRIBE_WORD_RE = _rx(r"unsubscribe")
_NO_REPLY_LOCAL_RE = re.compile(
    r"^(?:no[-_.]?reply|do[-_.]?not[-_.]?reply|donotreply|notifications?|notify|newsletters?|news|"
    r"mailer[-_.]?daemon|postmaster|bounces?|marketing|updates|digest|alerts?)(?:[-_.+]\S*)?$"
)
_BULK_RE = _rx(
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
_SPAM_RE = _rx(
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
_BOOKING_STRONG_RE = _rx(
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
_BOOKING_WEAK_RE = _rx(r"calendar", r"schedule", r"available", r"availability", r"meet", r"meeting", r"call", r"zeit")
_PRICING_RE = _rx(
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
_REQUEST_RE = _rx(
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
    folded_subject = _key(subject).strip()
    folded_body = _key(clean)
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


# --- out-of-office return date -------------------------------------------------------------------------

_MONTHS = MONTHS  # month names (en/de/fr/es, case-folded) → month number
_WEEKDAYS: dict[str, int] = {
    **{d: i for i, d in enumerate(["monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday"])},
    **{d: i for i, d in enumerate(["montag", "dienstag", "mittwoch", "donnerstag", "freitag", "samstag", "sonntag"])},
    **{d: i for i, d in enumerate(["lundi", "mardi", "mercredi", "jeudi", "vendredi", "samedi", "dimanche"])},
    **{d: i for i, d in enumerate(["lunes", "martes", "miércoles", "jueves", "viernes", "sábado", "domingo"])},
    "miercoles": 2,
    "sabado": 5,
}  # weekday names (en/de/fr/es, case-folded) → Monday=0

_MONTH_ALT = "|".join(sorted(map(re.escape, _MONTHS), key=len, reverse=True))
_WEEKDAY_ALT = "|".join(sorted(map(re.escape, _WEEKDAYS), key=len, reverse=True))
_ISO_DATE_RE = re.compile(r"(?<!\d)(\d{4})-(\d{1,2})-(\d{1,2})(?!\d)")
_NUMERIC_DATE_RE = re.compile(r"(?<![\d.:/])(\d{1,2})([./])(\d{1,2})(?:\2(\d{4}|\d{2}))?(?![\d/]|\.\d)")
_DAY_MONTH_RE = re.compile(
    rf"(?<!\w)(\d{{1,2}})(?:st|nd|rd|th|er|\.)?\s+(?:of\s+|de\s+)?({_MONTH_ALT})(?!\w)\.?(?:,?\s+(?:de\s+)?(\d{{4}}))?"
)
_MONTH_DAY_RE = re.compile(rf"(?<!\w)({_MONTH_ALT})\.?\s+(\d{{1,2}})(?:st|nd|rd|th)?(?!\d)(?:,?\s+(\d{{4}}))?")
_WEEKDAY_RE = re.compile(rf"(?<!\w)({_WEEKDAY_ALT})(?!\w)")
_RELATIVE_RE = _rx(
    r"tomorrow",
    r"morgen",
    r"demain",
    r"mañana",
    r"next week",
    r"nächste woche",
    r"nächsten woche",
    r"la semaine prochaine",
    r"la próxima semana",
    r"la semana que viene",
)
_ANCHOR_RE = _rx(
    r"until",
    r"till",
    r"til",
    r"through",
    r"thru",
    r"back",
    r"return\w*",
    r"in the office",
    r"bis",
    r"zurück",
    r"wieder",
    r"ab",
    r"jusqu'au",
    r"jusqu'à",
    r"retour",
    r"hasta",
    r"regreso",
    r"regresaré",
    r"vuelvo",
    r"volveré",
    r"de vuelta",
)


def _in_year(today: date, month: int, day: int, year: int | None) -> date | None:
    try:
        if year is not None:
            return date(year + 2000 if year < 100 else year, month, day)
        candidate = date(today.year, month, day)
        return candidate if candidate >= today else date(today.year + 1, month, day)
    except ValueError:
        return None


def _date_mentions(text: str, today: date) -> list[tuple[int, date]]:
    """Every date the text names, as (position, date), explicit dates before weekday/relative ones."""
    found: list[tuple[int, date]] = []
    taken: list[tuple[int, int]] = []

    def add(start: int, end: int, value: date | None) -> None:
        if value is not None and not any(s < end and start < e for s, e in taken):
            found.append((start, value))
            taken.append((start, end))

    for m in _ISO_DATE_RE.finditer(text):
        add(m.start(), m.end(), _in_year(today, int(m.group(2)), int(m.group(3)), int(m.group(1))))
    for m in _DAY_MONTH_RE.finditer(text):
        year = int(m.group(3)) if m.group(3) else None
        add(m.start(), m.end(), _in_year(today, _MONTHS[m.group(2)], int(m.group(1)), year))
    for m in _MONTH_DAY_RE.finditer(text):
        year = int(m.group(3)) if m.group(3) else None
        add(m.start(), m.end(), _in_year(today, _MONTHS[m.group(1)], int(m.group(2)), year))
    for m in _NUMERIC_DATE_RE.finditer(text):
        a, sep, b = int(m.group(1)), m.group(2), int(m.group(3))
        year = int(m.group(4)) if m.group(4) else None
        orders = [(b, a)] if sep == "." else [(a, b), (b, a)]  # "." is day.month; "/" may be either
        options = [d for d in (_in_year(today, mo, dy, year) for mo, dy in orders) if d is not None]
        add(m.start(), m.end(), min(options) if options else None)
    for m in _WEEKDAY_RE.finditer(text):
        ahead = (_WEEKDAYS[m.group(1)] - today.weekday() - 1) % 7 + 1  # strictly after today
        add(m.start(), m.end(), today + timedelta(days=ahead))
    for m in _RELATIVE_RE.finditer(text):
        word = m.group(0)
        if "week" in word or "woche" in word or "semaine" in word or "semana" in word:
            add(m.start(), m.end(), today + timedelta(days=7 - today.weekday()))  # next Monday
        else:
            add(m.start(), m.end(), today + timedelta(days=1))
    return found


def ooo_until(body: str | None, now: datetime | date) -> date | None:
    """Best-effort return date from an out-of-office reply, or None.

    Dates: ISO ``2026-12-03``; ``3 December``/``December 3rd``/``3. Dezember``/``3 de diciembre`` (en, de,
    fr, es month names); numeric ``03.12.`` (day.month) and ``12/03`` (either order: the reading that
    comes soonest on or after today); weekday names (the next such day strictly after today); "tomorrow",
    "next week" (its Monday). A date without a year is the next one on or after today. A date within 40
    characters after "until", "back", "returning", "bis", "zurück", "jusqu'au", "hasta", … is the return
    date (the latest such one wins); without any anchor the latest date named wins. The date is returned
    as written: "until 3 December" gives 3 December, whether or not that day is still away.
    """
    text = _fold(strip_quoted(body))
    if not text:
        return None
    today = now.date() if isinstance(now, datetime) else now
    mentions = _date_mentions(text, today)
    if not mentions:
        return None
    anchored = [d for pos, d in mentions if _ANCHOR_RE.search(text[max(0, pos - ANCHOR_WINDOW_CHARS) : pos])]
    return max(anchored or [d for _, d in mentions])


# --- drafting ------------------------------------------------------------------------------------------

_REPLY_PREFIX_RE = re.compile(
    r"^\s*(?:(?:re|aw|sv|vs|antw|antwort|ref|rif|r|odp|res|回复|回覆|答复)\s*(?:\[\d+\]|\(\d+\))?\s*[:\uff1a]\s*)+",
    re.IGNORECASE,
)
_SENTENCE_SPLIT_RE = re.compile(r"(?<=[.!?\u3002\uff01\uff1f])\s*|\n+")
MAX_QUOTED_QUESTIONS = 3  # questions echoed back in a reply draft
MAX_QUESTION_CHARS = 200  # chars of one echoed question


def reply_subject(subject: str | None) -> str:
    """``Re: <subject>`` with any existing reply prefixes (Re:, RE[2]:, AW:, SV:, …) folded into one."""
    core = _REPLY_PREFIX_RE.sub("", subject or "").strip()
    return f"Re: {core}" if core else "Re: your email"


def _first_name(name: str | None, fallback: str) -> str:
    if not name or "@" in name:
        return fallback
    clean = name.strip().strip('"').strip()
    if "," in clean:  # "Whitfield, Dana"
        clean = clean.split(",", 1)[1].strip() or clean.split(",", 1)[0].strip()
    parts = clean.split()
    return parts[0] if parts else fallback


def _questions(body: str) -> list[str]:
    found = []
    for sentence in _SENTENCE_SPLIT_RE.split(strip_quoted(body)):
        sentence = sentence.strip()
        if sentence and sentence[-1] in "?\uff1f" and sentence not in found:
            found.append(sentence[:MAX_QUESTION_CHARS])
    return found[:MAX_QUOTED_QUESTIONS]


def draft_reply(
    intent: EmailIntent | EmailIntentKind | str,
    subject: str | None,
    body: str | None,
    sender_name: str | None,
    rep_name: str | None,
) -> EmailDraft:
    """A short plain-text reply for a person to review: greeting, an answer shaped by the intent, sign-off.

    email_received only drafts for ``reply_required``; the other intents still get a sensible polite note so the
    function is total. Questions in the email (up to 3) are echoed so the rep sees what to answer.
    """
    kind = EmailIntentKind(intent.intent if isinstance(intent, EmailIntent) else intent)
    greeting = f"Hi {_first_name(sender_name, 'there')},"
    signer = _first_name(rep_name, "")
    if kind is EmailIntentKind.REPLY_REQUIRED:
        questions = _questions(body or "")
        if questions:
            listed = "\n".join(f"- {q}" for q in questions)
            noun = "question" if len(questions) == 1 else "questions"
            middle = (
                f"Thanks for your email. I'm looking into your {noun} and will get back to you shortly:\n\n{listed}"
                "\n\nIf it's easier, happy to walk through it on a quick call."
            )
        else:
            middle = "Thanks for your email. I'm on it and will get back to you shortly."
    elif kind is EmailIntentKind.BOOKING_REQUEST:
        middle = "Thanks for reaching out. Happy to find a time; I'll send over a few options shortly."
    elif kind is EmailIntentKind.OUT_OF_OFFICE:
        middle = "Thanks for letting me know. I'll follow up once you're back."
    elif kind is EmailIntentKind.UNSUBSCRIBE:
        middle = "Understood. I've removed you from our outreach and you won't hear from me again. Sorry for the noise."
    else:
        middle = "Thanks for the update."
    closing = f"Best,\n{signer}" if signer else "Best regards"
    return EmailDraft(subject=reply_subject(subject), body=f"{greeting}\n\n{middle}\n\n{closing}")
