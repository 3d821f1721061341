"""Campaign rules: the health of one outbound campaign, the class of one reply, and the daily report.

Pure decisions (no I/O): the campaign_daily_check steps fetch the Instantly analytics and the new
replies, call ``campaign_health``, ``classify_reply`` (the offline fallback of the *LLM* step) and
``build_report``, and deliver the result. The status rules are those of docs/sequences.md#campaign_daily_check.

Rates are percentages rounded to one decimal (half up), each clamped to 0..100:

* open and reply rates are over the emails that reached an inbox: ``delivered`` when the API
  reports it, else ``sent - bounced``;
* the bounce rate is over ``sent``.

The rules compare those rounded rates, so a status never contradicts the number shown (19.96 %
shows as 20.0 % and is not "below 20 %"). Every comparison is strict:

==========================  ================  =======================================================
rule                        status            when
==========================  ================  =======================================================
``open_low``                underperforming   open rate < 20 %
``reply_low``               underperforming   reply rate < 2 % **and** open rate ≤ 40 %
``bounce_high``             underperforming   bounce rate > 5 %
``bounce_elevated``         warning           bounce rate > 2 % (and ≤ 5 %, else ``bounce_high``)
``copy_not_converting``     warning           open rate > 40 % **and** reply rate < 2 %
==========================  ================  =======================================================

Reading of the rules' overlap: read literally, "reply < 2 %" makes every campaign with "open > 40 %
with reply < 2 %" underperforming, and that warning rule could never fire. We read the warning as
the more specific rule: many opens and few replies means the subject lines and the deliverability
work and the copy or the call to action does not, a fixable problem rather than a failing campaign.
So ``reply_low`` applies only when the open rate is at most 40 %. Every rule that fires is reported
(reasons in rule order, underperforming ones first); the status is the worst tier that fired.

Edge cases: nothing sent → all rates 0 and status ``no_data``. Emails sent but none delivered
because all bounced → the bounce rules decide (100 % bounce is underperforming). Emails sent, none
delivered and none bounced (the API has not counted deliveries yet) → ``no_data``; the open and
reply rules are never evaluated on an empty denominator. Negative counts count as 0.
"""

from __future__ import annotations

import re
import unicodedata
from collections import Counter
from collections.abc import Iterable, Sequence
from datetime import date, datetime
from decimal import ROUND_HALF_UP, Decimal
from enum import StrEnum

from pydantic import BaseModel, ConfigDict, Field, computed_field

OPEN_LOW_PCT = 20.0  # %: open rate below this is underperforming
REPLY_LOW_PCT = 2.0  # %: reply rate below this is underperforming, or a warning with high opens
BOUNCE_HIGH_PCT = 5.0  # %: bounce rate above this is underperforming; it harms the sending domain
BOUNCE_ELEVATED_PCT = 2.0  # %: bounce rate above this is a warning
OPEN_HIGH_PCT = 40.0  # %: open rate above this with low replies points at the copy, a warning
SNIPPET_MAX = 200  # characters of a reply kept in the report
CLASSIFY_MAX_CHARS = 20_000  # characters of a reply body read by the classifier (the rest is quotes/signatures)

_STATUS_RANK = {"underperforming": 0, "warning": 1, "healthy": 2, "no_data": 3}  # report order, worst first
_REPLY_RANK = {"positive": 0, "other": 1, "negative": 2, "out_of_office": 3, "unsubscribe": 4}  # to answer first
_DAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")


class CampaignStatus(StrEnum):
    """A campaign's health; stored and shown as its string value."""

    HEALTHY = "healthy"
    WARNING = "warning"
    UNDERPERFORMING = "underperforming"
    NO_DATA = "no_data"


class ReplyLabel(StrEnum):
    """What a reply to a campaign email is (the classify-replies step)."""

    POSITIVE = "positive"
    NEGATIVE = "negative"
    OUT_OF_OFFICE = "out_of_office"
    UNSUBSCRIBE = "unsubscribe"
    OTHER = "other"


class CampaignCounts(BaseModel):
    """One campaign's cumulative counts from the analytics API (``delivered`` when it reports it)."""

    model_config = ConfigDict(frozen=True)

    campaign_id: str
    name: str
    sent: int
    delivered: int | None = None
    opened: int = 0
    replied: int = 0
    bounced: int = 0
    unsubscribed: int = 0


class CampaignHealth(BaseModel):
    """Rates (percentages, one decimal), the status, why, and what to try."""

    model_config = ConfigDict(frozen=True)

    open_rate: float
    reply_rate: float
    bounce_rate: float
    status: CampaignStatus
    reasons: list[str] = Field(default_factory=list)
    suggestions: list[str] = Field(default_factory=list)


class ReplyClass(BaseModel):
    """A reply's label, how sure the rules are (0..1) and the phrases that decided it."""

    model_config = ConfigDict(frozen=True)

    label: ReplyLabel
    confidence: float = Field(ge=0.0, le=1.0)
    signals: list[str] = Field(default_factory=list)


class ReplyIn(BaseModel):
    """A new reply to a campaign; ``classification`` when the LLM already gave one, else rules decide."""

    model_config = ConfigDict(frozen=True)

    reply_id: str
    campaign_id: str
    from_email: str
    from_name: str | None = None
    subject: str | None = None
    body: str | None = None
    received_at: datetime | None = None
    campaign_name: str | None = None  # when the caller knows it better than the campaign list
    classification: ReplyClass | None = None


class CampaignLine(BaseModel):
    """One campaign in the report: its counts, its health, and today's replies by label.

    The health's rates, status, reasons and suggestions are repeated flat (computed fields) so that
    ``model_dump()`` is what the Slack report builder reads.
    """

    model_config = ConfigDict(frozen=True)

    campaign_id: str
    name: str
    sent: int
    delivered: int  # the open/reply denominator used (reported, or sent - bounced)
    opened: int
    replied: int
    bounced: int
    unsubscribed: int
    health: CampaignHealth
    replies_by_label: dict[str, int] = Field(default_factory=dict)

    @computed_field  # type: ignore[prop-decorator]
    @property
    def open_rate(self) -> float:
        return self.health.open_rate

    @computed_field  # type: ignore[prop-decorator]
    @property
    def reply_rate(self) -> float:
        return self.health.reply_rate

    @computed_field  # type: ignore[prop-decorator]
    @property
    def bounce_rate(self) -> float:
        return self.health.bounce_rate

    @computed_field  # type: ignore[prop-decorator]
    @property
    def status(self) -> CampaignStatus:
        return self.health.status

    @computed_field  # type: ignore[prop-decorator]
    @property
    def reasons(self) -> list[str]:
        return list(self.health.reasons)

    @computed_field  # type: ignore[prop-decorator]
    @property
    def suggestions(self) -> list[str]:
        return list(self.health.suggestions)


class ReplyLine(BaseModel):
    """One reply in the report: who, which campaign, a one-paragraph snippet and its class."""

    model_config = ConfigDict(frozen=True)

    reply_id: str
    campaign_id: str
    campaign_name: str
    from_email: str
    from_name: str | None
    snippet: str = Field(max_length=SNIPPET_MAX)
    classification: ReplyLabel
    confidence: float
    signals: list[str] = Field(default_factory=list)
    received_at: datetime | None = None


class CampaignTotals(BaseModel):
    """Sums over the report's campaigns, the pooled rates, and counts by status and reply label."""

    model_config = ConfigDict(frozen=True)

    campaigns: int
    sent: int
    delivered: int
    opened: int
    replied: int
    bounced: int
    unsubscribed: int
    open_rate: float
    reply_rate: float
    bounce_rate: float
    by_status: dict[str, int]
    replies: int
    replies_by_label: dict[str, int]


class CampaignReport(BaseModel):
    """The daily campaign report: campaigns worst first, replies to answer first, totals, headline."""

    model_config = ConfigDict(frozen=True)

    date: date
    campaigns: list[CampaignLine]
    replies: list[ReplyLine]
    totals: CampaignTotals
    headline: str


# --------------------------------------------------------------------------------------------------
# Health


def _count(value: int | None) -> int:
    return max(0, int(value or 0))


def _pct(part: int, whole: int) -> float:
    """``part / whole`` as a percentage, one decimal rounded half up, clamped to 0..100; 0 when empty."""
    if whole <= 0:
        return 0.0
    share = Decimal(min(max(part, 0), whole)) * 100 / Decimal(whole)
    return float(share.quantize(Decimal("0.1"), rounding=ROUND_HALF_UP))


def delivered_base(c: CampaignCounts) -> int:
    """The open/reply denominator: ``delivered`` when reported, else ``sent - bounced`` (never < 0)."""
    if c.delivered is not None:
        return _count(c.delivered)
    return max(0, _count(c.sent) - _count(c.bounced))


_SUGGESTIONS: dict[str, tuple[str, ...]] = {
    "open_low": (
        "Test new subject lines: short, specific, no spam-trigger words; A/B test two at a time",
        "Check deliverability: warm up the sending domains/mailboxes and verify SPF, DKIM and DMARC",
    ),
    "reply_low": (
        "Rewrite the copy around one pain point and a single low-friction call to action (a yes/no question)",
        "Personalise the first line and tighten the targeting to the segment that replies",
    ),
    "bounce_high": (
        "Pause the campaign and verify the remaining leads before sending more",
        "Clean the list: remove invalid, catch-all and role addresses and review the lead source",
    ),
    "bounce_elevated": ("Run the remaining leads through email verification and drop risky addresses",),
    "copy_not_converting": (
        "Subject lines work but the body does not convert: A/B test the copy and the call to action",
        "Add a follow-up step with a different angle (a case study or a short question)",
    ),
    "nothing_delivered": ("Check the sending accounts and the campaign schedule: nothing was delivered",),
}


def campaign_health(c: CampaignCounts) -> CampaignHealth:
    """Rates, status, reasons and suggestions of one campaign (rules in the module docstring)."""
    sent, bounced = _count(c.sent), _count(c.bounced)
    if sent <= 0:
        return CampaignHealth(
            open_rate=0.0,
            reply_rate=0.0,
            bounce_rate=0.0,
            status=CampaignStatus.NO_DATA,
            reasons=["no emails sent yet"],
            suggestions=["Check the campaign is active, has leads and a sending schedule"],
        )
    base = delivered_base(c)
    open_rate = _pct(_count(c.opened), base)
    reply_rate = _pct(_count(c.replied), base)
    bounce_rate = _pct(bounced, sent)

    fired: list[tuple[str, CampaignStatus, str]] = []
    if base > 0:
        if open_rate < OPEN_LOW_PCT:
            fired.append(("open_low", CampaignStatus.UNDERPERFORMING, f"open rate {open_rate:.1f} % is below 20 %"))
        if reply_rate < REPLY_LOW_PCT and open_rate <= OPEN_HIGH_PCT:
            fired.append(("reply_low", CampaignStatus.UNDERPERFORMING, f"reply rate {reply_rate:.1f} % is below 2 %"))
    if bounce_rate > BOUNCE_HIGH_PCT:
        fired.append(("bounce_high", CampaignStatus.UNDERPERFORMING, f"bounce rate {bounce_rate:.1f} % is above 5 %"))
    elif bounce_rate > BOUNCE_ELEVATED_PCT:
        fired.append(("bounce_elevated", CampaignStatus.WARNING, f"bounce rate {bounce_rate:.1f} % is above 2 %"))
    if base > 0 and open_rate > OPEN_HIGH_PCT and reply_rate < REPLY_LOW_PCT:
        fired.append(
            (
                "copy_not_converting",
                CampaignStatus.WARNING,
                f"open rate {open_rate:.1f} % is above 40 % but reply rate {reply_rate:.1f} % is below 2 %",
            )
        )

    if base <= 0 and not fired:
        return CampaignHealth(
            open_rate=open_rate,
            reply_rate=reply_rate,
            bounce_rate=bounce_rate,
            status=CampaignStatus.NO_DATA,
            reasons=[f"{sent:,} sent but none delivered yet"],
            suggestions=list(_SUGGESTIONS["nothing_delivered"]),
        )
    if base <= 0:
        nothing = f"none of the {sent:,} emails was delivered"
        fired.insert(0, ("nothing_delivered", CampaignStatus.UNDERPERFORMING, nothing))

    fired.sort(key=lambda f: _STATUS_RANK[f[1]])  # stable: rule order within a tier
    status = fired[0][1] if fired else CampaignStatus.HEALTHY
    suggestions: list[str] = []
    for rule, _, _ in fired:
        suggestions.extend(s for s in _SUGGESTIONS[rule] if s not in suggestions)
    return CampaignHealth(
        open_rate=open_rate,
        reply_rate=reply_rate,
        bounce_rate=bounce_rate,
        status=status,
        reasons=[reason for _, _, reason in fired],
        suggestions=suggestions,
    )


# --------------------------------------------------------------------------------------------------
# Reply classification


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


# --------------------------------------------------------------------------------------------------
# Report


def snippet(text: str | None, limit: int = SNIPPET_MAX) -> str:
    """One paragraph of at most ``limit`` characters, cut at a word with "…" when longer."""
    flat = " ".join((text or "").split())
    if len(flat) <= limit:
        return flat
    cut = flat[: limit - 1]
    space = cut.rfind(" ")
    if space >= limit * 3 // 4:
        cut = cut[:space]
    return cut.rstrip(" ,.;:-") + "\u2026"


def _labels(replies: Iterable[ReplyLine], campaign_id: str) -> dict[str, int]:
    return dict(Counter(r.classification.value for r in replies if r.campaign_id == campaign_id))


def _day_label(day: date) -> str:
    return f"{_DAYS[day.weekday()]} {day.day} {_MONTHS[day.month - 1]}"


def _plural(count: int, noun: str, plural: str | None = None) -> str:
    return f"{count:,} {noun if count == 1 else plural or noun + 's'}"


def _headline(day: date, lines: Sequence[CampaignLine], replies: Sequence[ReplyLine]) -> str:
    when = _day_label(day)
    statuses = Counter(line.status.value for line in lines)
    positive = sum(1 for r in replies if r.classification is ReplyLabel.POSITIVE)
    reply_part = f"{_plural(len(replies), 'new reply', 'new replies')}" + (f" ({positive} positive)" if replies else "")
    if not lines:
        return f"{when}: no active campaigns · {reply_part}"
    attention = statuses["underperforming"] + statuses["warning"]
    if attention:
        detail = ", ".join(f"{statuses[s]} {s}" for s in ("underperforming", "warning") if statuses[s])
        head = f"{attention} of {_plural(len(lines), 'campaign')} need attention ({detail})"
    elif statuses["healthy"] == len(lines):
        head = f"All {_plural(len(lines), 'campaign')} healthy"
    elif statuses["healthy"]:
        head = f"{statuses['healthy']} of {_plural(len(lines), 'campaign')} healthy, {statuses['no_data']} without data"
    else:
        head = f"{_plural(len(lines), 'campaign')} without data yet"
    return f"{when}: {head} · {reply_part}"


def build_report(date: date, campaigns: Sequence[CampaignCounts], replies: Sequence[ReplyIn]) -> CampaignReport:
    """The campaign_daily_check report for one org's local ``date``.

    Campaigns are ordered underperforming, warning, healthy, no_data, then by emails sent (most
    first) and name. Replies are ordered positive, other, negative, out_of_office, unsubscribe (the
    ones to answer first), then newest first; a reply without an LLM classification is classified
    by ``classify_reply``. A reply's campaign name comes from the reply, else the campaign list,
    else its campaign id. Totals pool the counts: their rates use the same denominators.
    """
    classified: list[ReplyLine] = []
    names = {c.campaign_id: c.name for c in campaigns}
    for reply in replies:
        verdict = reply.classification or classify_reply(reply.subject, reply.body)
        words = reply_text(reply.body) or reply.body or reply.subject
        classified.append(
            ReplyLine(
                reply_id=reply.reply_id,
                campaign_id=reply.campaign_id,
                campaign_name=reply.campaign_name or names.get(reply.campaign_id) or reply.campaign_id,
                from_email=reply.from_email,
                from_name=reply.from_name,
                snippet=snippet(words),
                classification=verdict.label,
                confidence=verdict.confidence,
                signals=list(verdict.signals),
                received_at=reply.received_at,
            )
        )
    newest_first = sorted(classified, key=lambda r: r.received_at.timestamp() if r.received_at else float("-inf"))
    newest_first.reverse()
    ordered_replies = sorted(newest_first, key=lambda r: _REPLY_RANK[r.classification.value])

    lines = [
        CampaignLine(
            campaign_id=c.campaign_id,
            name=c.name,
            sent=_count(c.sent),
            delivered=delivered_base(c),
            opened=_count(c.opened),
            replied=_count(c.replied),
            bounced=_count(c.bounced),
            unsubscribed=_count(c.unsubscribed),
            health=campaign_health(c),
            replies_by_label=_labels(classified, c.campaign_id),
        )
        for c in campaigns
    ]
    lines.sort(key=lambda line: (_STATUS_RANK[line.status.value], -line.sent, line.name.casefold()))

    sent = sum(line.sent for line in lines)
    delivered = sum(line.delivered for line in lines)
    opened = sum(line.opened for line in lines)
    replied = sum(line.replied for line in lines)
    bounced = sum(line.bounced for line in lines)
    totals = CampaignTotals(
        campaigns=len(lines),
        sent=sent,
        delivered=delivered,
        opened=opened,
        replied=replied,
        bounced=bounced,
        unsubscribed=sum(line.unsubscribed for line in lines),
        open_rate=_pct(opened, delivered),
        reply_rate=_pct(replied, delivered),
        bounce_rate=_pct(bounced, sent),
        by_status={s.value: sum(1 for line in lines if line.status is s) for s in CampaignStatus},
        replies=len(classified),
        replies_by_label={label.value: sum(1 for r in classified if r.classification is label) for label in ReplyLabel},
    )
    return CampaignReport(
        date=date,
        campaigns=lines,
        replies=ordered_replies,
        totals=totals,
        headline=_headline(date, lines, ordered_replies),
    )
