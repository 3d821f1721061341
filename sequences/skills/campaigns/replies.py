"""What a reply to a campaign email is: positive, negative, out of office, unsubscribe or other.

Pure functions (no I/O): the offline fallback of the classify-replies step; ``classify_reply``
states the rules.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable, Sequence
from enum import StrEnum

from pydantic import BaseModel, ConfigDict, Field

CLASSIFY_MAX_CHARS = 20_000  # characters of a reply body read by the classifier (the rest is quotes/signatures)


class ReplyLabel(StrEnum):
    """What a reply to a campaign email is (the classify-replies step)."""

    POSITIVE = "positive"
    NEGATIVE = "negative"
    OUT_OF_OFFICE = "out_of_office"
    UNSUBSCRIBE = "unsubscribe"
    OTHER = "other"


class ReplyClass(BaseModel):
    """A reply's label, how sure the rules are (0..1) and the phrases that decided it."""

    model_config = ConfigDict(frozen=True)

    label: ReplyLabel
    confidence: float = Field(ge=0.0, le=1.0)
    signals: list[str] = Field(default_factory=list)


def _patterns(*sources: str) -> tuple[re.Pattern[str], ...]:
    return tuple(re.compile(s) for s in sources)


# Matched against text that is casefolded, accent-free (é → e, ß → ss) and with straight apostrophes.
_UNSUBSCRIBE = _patterns(
    r"\bunsubscrib\w*",
    r"\bunsub\b",
    r"\bremove (me|us|my (e-?mail|address)|our (e-?mail|address))\b",
    r"\btake (me|us) off\b",
    r"\bopt(ing)?[ -]?out\b",
    r"\bstop (e-?mailing|contacting|sending|messaging|writing)\b",
    r"\b(don't|do not|never) (e-?mail|contact|message|write to) (me|us)\b",
    r"\bno more (e-?mails|messages|mails)\b",
    # de
    r"\babmelden\b",
    r"\babbestellen\b",
    r"\bbitte austragen\b",
    r"\b(entfernen sie mich|tragen sie mich aus)\b",
    r"\b(nehmen|entfernen|streichen) sie mich (bitte )?aus\b",
    r"\baus (dem|ihrem|eurem) (e-?mail-?|mail-?)?verteiler\b",
    r"\btragen sie mich bitte aus\b",
    r"\bkeine (weiteren )?(e-?mails|nachrichten|mails)\b",
    # fr
    r"\bdesabonn\w*",
    r"\bdesinscri\w*",
    r"\bretirez[- ]moi\b",
    r"\bne plus recevoir\b",
    r"\bme retirer de (votre|vos|la|cette) liste\b",
    r"\bsupprimez[- ]moi\b",
    r"\bne plus me (contacter|ecrire|solliciter)\b",
    r"\bne me (contactez|ecrivez|sollicitez) plus\b",
    # es
    r"\b(dar|darme|darnos) de baja\b",
    r"\b(eliminarme|sacarme|borrarme|quitarme) de (su|tu|la|vuestra|esta) lista\b",
    r"\bno quiero recibir (mas )?(correos|e-?mails|mensajes)\b",
    r"\bdejen? de (enviarme|escribirme)\b",
    r"\bdesuscrib\w*",
    r"\bno me (contacten|contactes|escriban|escribas|envien|envies)\b",
    # it
    r"\bdisiscriv\w*",
    r"\bcancellami\b",
    r"\brimuovetemi\b",
    r"\bnon (mi )?contattate(mi)? piu\b",
    # nl
    r"\buitschrijven\b",
    r"\bafmelden\b",
    r"\bverwijder (mij|me)\b",
    # pt
    r"\bdescadastr\w*",
    r"\bnao (me )?(envie|enviem|contate|contatem) mais\b",
)
_UNSUBSCRIBE_WHOLE = re.compile(r"(stop|stopp|remove|unsubscribe|abmelden|baja|remove me)[.! ]*")  # whole message
_OUT_OF_OFFICE = _patterns(
    r"\bout of (the )?office\b",
    r"\bout-of-office\b",
    r"\booo\b",
    r"\bautomatic reply\b",
    r"\bauto[- ]?repl(y|ies)\b",
    r"\bauto[- ]?respon(se|der)\b",
    r"\bautomated (reply|response)\b",
    r"\b(i am|i'm) (currently )?(away from|out of the office|on (annual |parental |maternity |paternity |sick )?leave"
    r"|on vacation|on holiday|on pto)\b",
    r"\b(limited|no) access to (my )?e-?mail\b",
    r"\bwill be back (on|in the office|at the office)\b",
    r"\bi will return on\b",
    r"\b(i'll|i will) be (away|out of (the )?office|on (leave|vacation|holiday))\b",
    r"\baway from my desk\b",
    # de
    r"\babwesenheitsnotiz\b",
    r"\babwesend\b",
    r"\bautomatische antwort\b",
    r"\bnicht im (buro|buero)\b",
    r"\bim urlaub\b",
    r"\bausser haus\b",
    r"\bin elternzeit\b",
    r"\b(nur )?eingeschrankt erreichbar\b",
    r"\bwieder (im (buro|buero)|erreichbar)\b",
    # fr
    r"\babsente? du bureau\b",
    r"\breponse automatique\b",
    r"\ben conges?\b",
    r"\ben vacances\b",
    r"\bje suis absente?\b",
    r"\bje serai absente?\b",
    r"\bacces limite a mes (e-?mails|courriels|messages)\b",
    # es
    r"\bfuera de la oficina\b",
    r"\brespuesta automatica\b",
    r"\bde vacaciones\b",
    r"\bestoy ausente\b",
    r"\bestare (ausente|fuera)\b",
    r"\bacceso limitado (al|a mi) correo\b",
    # it
    r"\bfuori (ufficio|sede)\b",
    r"\brisposta automatica\b",
    r"\bin ferie\b",
    r"\bsono assente\b",
    # nl
    r"\bafwezig\b",
    r"\bautomatisch antwoord\b",
    r"\bmet vakantie\b",
    r"\bniet op kantoor\b",
    # pt / nordic
    r"\bfora do escritorio\b",
    r"\bresposta automatica\b",
    r"\bde ferias\b",
    r"\bautosvar\b",
    r"\bautomatisk svar\b",
)
_NEGATIVE = _patterns(
    r"\bnot (currently |really |at all )?interested\b",
    r"\bno interest\b",
    r"\bnot (a|the right) (fit|priority|time)\b",
    r"\bno,? thank(s| you)\b(?! for)",
    r"\bnot (right )?now\b",
    r"\bnot at (this|the) (time|moment)\b",
    r"\bnot looking\b",
    r"\balready (have|use|using|work with|working with)\b",
    r"\b(we're|we are) all set\b",
    r"\b(we'll|we will|i'll|i will) pass\b",
    r"\bno need\b",
    r"\bno budget\b",
    r"\b(don't|do not) (need|want)\b",
    r"\bnot for us\b",
    r"\bnot relevant\b",
    r"\btoo expensive\b",
    # de
    r"\bkeine?n? interesse\b",
    r"\bnicht interessiert\b",
    r"\bnein,? danke\b",
    r"\bkeine?n? bedarf\b",
    r"\bzu teuer\b",
    # fr
    r"\bpas interesse(e|s|es)?\b",
    r"\bpas d'interet\b",
    r"\bnon,? merci\b",
    r"\bpas besoin\b",
    r"\btrop cher\b",
    # es
    r"\bno (estoy|estamos) interesad[oa]s?\b",
    r"\bno (me|nos) interesa\b",
    r"\bno,? gracias\b",
    r"\bsin interes\b",
    r"\bdemasiado caro\b",
    # it
    r"\bnon (sono|siamo) interessat[oiae]\b",
    r"\bnon (mi|ci) interessa\b",
    r"\bno,? grazie\b",
    # nl
    r"\bgeen interesse\b",
    r"\bniet geinteresseerd\b",
    r"\bnee,? dank(je|u| je| u)?( wel)?\b",
    # pt
    r"\bnao (tenho|temos) interesse\b",
    r"\bnao (estou|estamos) interessad[oa]s?\b",
    r"\bnao,? obrigad[oa]\b",
)
_POSITIVE = _patterns(
    r"\binterested\b",
    r"\bsounds (good|great|interesting)\b",
    r"\blet'?s (talk|chat|connect|meet|set up|schedule|book|find a time|do it)\b",
    r"\b(happy|glad|open) to (talk|chat|connect|meet|learn more|hear more|discuss)\b",
    r"\btell me more\b",
    r"\b(send|share) (me |us )?(some )?(more )?"
    r"(info|information|details|pricing|a deck|the deck|a proposal|case stud\w*)",
    r"\bmore (info|information|details)\b",
    r"\b(book|schedule|set up|arrange) (a |an )?(call|meeting|demo|time|chat)\b",
    r"\b(when|what time) (are you|is good|works|would work)\b",
    r"\byour (calendar|availability)\b",
    r"\bcalendly\b",
    r"\bworks for me\b",
    r"\bcall me\b",
    r"\b(can|could|shall|should) we (talk|meet|speak|chat|hop on|jump on|set up)\b",
    r"\bare you (free|available)\b",
    r"\b(a few|some) (times|slots) for a (quick )?(call|chat|meeting)\b",
    r"\b(send|share) (me |us )?(a |an |the |some |your )?(case stud\w*|deck|proposal|quote|price list|brochure)",
    r"\bhow much (does|do|would|will|is|are)\b",
    r"\bwhat (would|does|will) (it|this|that) cost\b",
    # de
    r"\binteressiert\b",
    r"\binteresse\b",
    r"\bgerne?\b",
    r"\bklingt (gut|interessant|spannend)\b",
    r"\btermin\b",
    r"\b(lassen sie uns|lass uns) (sprechen|telefonieren|reden)\b",
    r"\bmehr (infos|informationen)\b",
    r"\binteressant\b",
    r"\btelefonieren\b",
    r"\b(konnen|konnten) wir (uns )?(kurz )?(treffen|sprechen|austauschen|telefonieren)\b",
    r"\b(telefonat|gesprach|call) (vereinbaren|ausmachen)\b",
    r"\bwas kostet\b",
    r"\bpreis(gestaltung|liste|e|modell)?\b",
    r"\b(konditionen|kosten)\b",
    # fr
    r"\binteresse(e|s|es)?\b",
    r"\bavec plaisir\b",
    r"\bvolontiers\b",
    r"\brendez[- ]vous\b",
    r"\bm'interesse\b",
    r"\bplus d'(infos|informations)\b",
    r"\b(pouvons|pourrions)[- ]nous (nous )?(parler|echanger|rencontrer|appeler|voir)\b",
    r"\b(seriez|etes)[- ]vous (libre|disponible)\b",
    r"\b(planifier|organiser|caler|fixer) (un|une) (appel|reunion|echange|rendez-vous|rdv)\b",
    r"\b(prix|tarifs?|devis|couts?)\b",
    r"\bcombien (ca |cela )?coute\b",
    # es
    r"\bme interesa\b",
    r"\binteresad[oa]s?\b",
    r"\bcon gusto\b",
    r"\bhablemos\b",
    r"\breunion\b",
    r"\bmas informacion\b",
    r"\b(podemos|podriamos) (hablar|reunirnos|vernos|llamarnos|tener una (llamada|reunion))\b",
    r"\b(programar|organizar|agendar|concertar) una (llamada|reunion|cita)\b",
    r"\b(cuando|que dia) (te|le) (viene|va) bien\b",
    r"\bcuanto (cuesta|cuestan|costaria|vale)\b",
    r"\b(precios?|tarifas?|presupuesto|cotizacion)\b",
    # it
    r"\binteressat[oiae]\b",
    r"\bvolentieri\b",
    r"\bmi interessa\b",
    r"\bsentiamoci\b",
    # nl
    r"\bgeinteresseerd\b",
    r"\bgraag\b",
    r"\bafspraak\b",
    r"\bklinkt goed\b",
    # pt
    r"\btenho interesse\b",
    r"\bvamos conversar\b",
    r"\bcom certeza\b",
    r"\breuniao\b",
)
_WEAK_POSITIVE = _patterns(
    r"\b(yes|yep|yeah|sure|absolutely|definitely|ja|oui|sim)\b", r"\b(how much|pricing|price|demo)\b"
)
# Where the quoted original starts: "On … wrote:" (and its translations), Outlook headers, separators.
_QUOTE_STARTS = _patterns(
    r"(?im)^[ \t]*on\b[^\n]{0,300}(\n[^\n]{0,300})?\bwrote:[ \t]*$",
    r"(?im)^[ \t]*am\b[^\n]{0,300}(\n[^\n]{0,300})?\bschrieb[^\n]{0,80}:[ \t]*$",
    r"(?im)^[ \t]*le\b[^\n]{0,300}(\n[^\n]{0,300})?\ba [ée]crit[ \t]*:[ \t]*$",
    r"(?im)^[ \t]*el\b[^\n]{0,300}(\n[^\n]{0,300})?\bescribi[oó][ \t]*:[ \t]*$",
    r"(?im)^[ \t]*il\b[^\n]{0,300}(\n[^\n]{0,300})?\bha scritto[ \t]*:[ \t]*$",
    r"(?im)^[ \t]*op\b[^\n]{0,300}(\n[^\n]{0,300})?\bschreef[^\n]{0,80}:[ \t]*$",
    r"(?im)^[ \t]*em\b[^\n]{0,300}(\n[^\n]{0,300})?\bescreveu[ \t]*:[ \t]*$",
    r"(?im)^[ \t]*-{2,}[ \t]*(original message|urspr[üu]ngliche nachricht|message d'origine|mensaje original"
    r"|messaggio originale|oorspronkelijk bericht|mensagem original)",
    r"(?im)^[ \t]*(from|von|de|da|van)[ \t]*:[^\n]*\n([^\n]*\n){0,3}?[ \t]*(sent|date|gesendet|datum|envoy[ée]"
    r"|enviado|inviato|verzonden|data)[ \t]*:",
    r"(?m)^[ \t]*_{10,}[ \t]*$",
    r"(?m)^-- ?$",  # signature delimiter
)
_REPLY_PREFIX = re.compile(r"^\s*((re|aw|sv|antw|rv|r|vs|odp|wg|fw|fwd|tr)\s*:\s*)+", re.IGNORECASE)


def _fold(text: str) -> str:
    """Casefolded, accent-free, straight apostrophes, whitespace collapsed."""
    decomposed = unicodedata.normalize("NFKD", text)
    plain = "".join(ch for ch in decomposed if not unicodedata.combining(ch)).casefold()
    plain = plain.replace("\u2019", "'").replace("\u2018", "'").replace("\u02bc", "'")
    return " ".join(plain.split())


def reply_text(body: str | None) -> str:
    """The reply's own words: quoted lines (``>``), the quoted original and the signature removed.

    A bottom-posted reply (nothing above the "On … wrote:" line) keeps what follows the quote.
    """
    text = body if isinstance(body, str) else ("" if body is None else str(body))
    text = text[:CLASSIFY_MAX_CHARS].replace("\r\n", "\n").replace("\r", "\n")
    lines = [line for line in text.split("\n") if not line.lstrip().startswith(">")]
    text = "\n".join(lines)
    cuts = [m for m in (p.search(text) for p in _QUOTE_STARTS) if m is not None]
    if not cuts:
        return text.strip()
    first = min(cuts, key=lambda m: m.start())
    head = text[: first.start()].strip()
    if head:
        return head
    return text[first.end() :].strip()  # bottom-posted: the quote was removed, the answer follows


def _find(patterns: Iterable[re.Pattern[str]], text: str) -> list[str]:
    found: list[str] = []
    for pattern in patterns:
        for match in pattern.finditer(text):
            phrase = match.group(0).strip()
            if phrase not in found:
                found.append(phrase)
    return found


def _without(patterns: Iterable[re.Pattern[str]], text: str) -> str:
    for pattern in patterns:
        text = pattern.sub(" ", text)
    return text


def classify_reply(subject: str | None, body: str | None) -> ReplyClass:
    """Label a reply to a campaign email with offline rules; never raises.

    Priority: unsubscribe (an explicit opt-out must be honoured whatever else it says) >
    out_of_office (an auto-reply) > negative > positive > other. Negative phrases are removed before
    looking for positive ones ("not interested" does not count as "interested"). Only the reply's own
    words count (quotes and signature removed); the subject counts for auto-reply markers and for an
    opt-out subject, but not when it is the campaign's own subject echoed back ("Re: …").
    Confidence: unsubscribe 0.95; auto-reply 0.95 by subject, else 0.85 + 0.05 per further body
    phrase (max 0.95); negative 0.85 + 0.05 per further phrase (max 0.9), but 0.6 when positive
    phrases are present too; positive 0.6 + 0.1 per further signal (max 0.9), 0.45 on weak words
    only ("yes", "sure", "pricing", "demo"); other 0.3, or 0.0 for an empty reply.
    """
    raw_subject = subject if isinstance(subject, str) else ("" if subject is None else str(subject))
    subject_text = _fold(raw_subject[:1000])
    own_subject = "" if _REPLY_PREFIX.match(raw_subject) else subject_text
    text = _fold(reply_text(body))

    def result(label: ReplyLabel, confidence: float, signals: Sequence[str]) -> ReplyClass:
        return ReplyClass(label=label, confidence=round(confidence, 2), signals=[f"{label.value}:{s}" for s in signals])

    unsubscribe = _find(_UNSUBSCRIBE, text) + [f"{s} (subject)" for s in _find(_UNSUBSCRIBE, own_subject)]
    first_line = _fold(next((line for line in reply_text(body).splitlines() if line.strip()), ""))
    whole = next((t for t in (text, first_line) if _UNSUBSCRIBE_WHOLE.fullmatch(t)), None)
    if whole and not unsubscribe:
        unsubscribe = [whole]
    if unsubscribe:
        return result(ReplyLabel.UNSUBSCRIBE, 0.95, unsubscribe)

    ooo_subject = _find(_OUT_OF_OFFICE, subject_text)
    ooo_body = _find(_OUT_OF_OFFICE, text)
    if ooo_subject or ooo_body:
        confidence = 0.95 if ooo_subject else min(0.95, 0.85 + 0.05 * (len(ooo_body) - 1))
        return result(ReplyLabel.OUT_OF_OFFICE, confidence, [f"{s} (subject)" for s in ooo_subject] + ooo_body)

    negative = _find(_NEGATIVE, text)
    rest = _without(_NEGATIVE, text)
    positive = _find(_POSITIVE, rest)
    weak = _find(_WEAK_POSITIVE, rest)
    if negative:
        return result(ReplyLabel.NEGATIVE, 0.6 if positive else min(0.9, 0.85 + 0.05 * (len(negative) - 1)), negative)
    if positive:
        confidence = min(0.9, 0.6 + 0.1 * (len(positive) + len(weak) - 1))
        return result(ReplyLabel.POSITIVE, confidence, positive + weak)
    if weak:
        return result(ReplyLabel.POSITIVE, 0.45, weak)
    return result(ReplyLabel.OTHER, 0.3 if (text or subject_text) else 0.0, [])
