"""The deal-risk alert: one Slack message per deal owner listing their deals at risk.

Deals are listed highest score first, each with its level, the change since the last scan and its
heaviest risk factors. An owner with hundreds of alerts gets the riskest deals that fit in one
message and a last line saying how many more were left out.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from decimal import Decimal, InvalidOperation
from typing import Any

from blocks.limits import (
    FALLBACK_TEXT_MAX,
    HEADER_TEXT_MAX,
    Block,
    cap_blocks,
    context,
    divider,
    escape,
    header,
    section,
    truncate,
)

TOP_FACTORS = 3  # factors shown per deal: the heaviest ones; the rest are counted
NAME_MAX = 200  # characters kept of a deal or company name, so one deal stays readable
DETAIL_MAX = 300  # characters kept of one factor's detail
LEVEL_EMOJI = {"high": ":red_circle:", "medium": ":large_orange_circle:", "low": ":large_yellow_circle:"}
UNKNOWN_LEVEL_EMOJI = ":white_circle:"  # a level outside high/medium/low


def _int(value: Any, default: int = 0) -> int:
    try:
        return int(value)
    except (TypeError, ValueError, OverflowError):
        return default


def _decimal(value: Any) -> Decimal:
    try:
        amount = Decimal(str(value))
    except (InvalidOperation, ValueError):
        return Decimal(0)
    return amount if amount.is_finite() else Decimal(0)


def _name(value: Any, fallback: str) -> str:
    text = str(value).strip() if value is not None else ""
    return escape(truncate(text or fallback, NAME_MAX))


def _money(value: Any, currency: Any) -> str:
    if value is None:
        return "value unknown"
    amount = f"{_decimal(value):,.0f}"
    code = str(currency).strip() if currency else ""
    return escape(truncate(f"{code} {amount}" if code else amount, NAME_MAX))


def _delta(score: int, previous: Any) -> str:
    if previous is None:
        return "newly at risk"
    change = score - _int(previous, score)
    if change > 0:
        return f"↑ +{change} since last scan"
    if change < 0:
        return f"↓ {change} since last scan"
    return "unchanged since last scan"


def _factor_texts(factors: Any) -> list[str]:
    rows = [f for f in (factors or ()) if isinstance(f, Mapping)]
    rows.sort(key=lambda f: -_int(f.get("points")))
    texts = []
    for factor in rows[:TOP_FACTORS]:
        detail = str(factor.get("detail") or factor.get("rule") or "risk factor")
        texts.append(f"• {escape(truncate(detail, DETAIL_MAX))} (+{_int(factor.get('points'))})")
    if len(rows) > TOP_FACTORS:
        texts.append(f"+{len(rows) - TOP_FACTORS} more")
    return texts or ["No risk factors recorded"]


def _deal_blocks(alert: Mapping[str, Any]) -> list[Block]:
    score = _int(alert.get("score"))
    level = str(alert.get("level") or "").strip().lower()
    name = _name(alert.get("deal_name"), "Unnamed deal")
    company = alert.get("company")
    title = f"*{name}* · {_name(company, '')}" if company and str(company).strip() else f"*{name}*"
    stage = _name(str(alert.get("stage") or "").replace("_", " ").capitalize(), "Stage unknown")
    facts = " · ".join(
        [
            f"Score *{score}*/100 ({escape(truncate(level or 'unknown', 20))})",
            _delta(score, alert.get("previous_score")),
            stage,
            _money(alert.get("value"), alert.get("currency")),
        ]
    )
    emoji = LEVEL_EMOJI.get(level, UNKNOWN_LEVEL_EMOJI)
    return [section(f"{emoji} {title}\n{facts}"), context(_factor_texts(alert.get("factors"))), divider()]


def deal_risk_alerts(owner_name: str, alerts: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """Build one owner's deal-risk message ``{"text", "blocks"}``, riskest deals first.

    Each alert has deal_name, company (or None), value, currency, stage, score (0-100), level,
    previous_score (or None), factors (``{"rule", "points", "detail"}``) and deal_id. A deal listed
    twice is shown once. However many alerts, the message stays within Block Kit limits.
    """
    seen: set[str] = set()
    unique = []
    ordered = sorted(
        alerts,
        key=lambda a: (-_int(a.get("score")), -_decimal(a.get("value")), str(a.get("deal_name") or "")),
    )
    for alert in ordered:
        deal_id = alert.get("deal_id")
        if deal_id is not None and str(deal_id) in seen:
            continue
        if deal_id is not None:
            seen.add(str(deal_id))
        unique.append(alert)

    owner = owner_name.strip() or "you"
    count = len(unique)
    noun = "deal" if count == 1 else "deals"
    if not unique:
        return {
            "text": f"No deals at risk for {escape(truncate(owner, NAME_MAX))}",
            "blocks": [header(f"No deals at risk for {owner}")],
        }
    levels = [str(a.get("level") or "").strip().lower() for a in unique]
    tally = ", ".join(f"{levels.count(lv)} {lv}" for lv in ("high", "medium", "low") if levels.count(lv))
    title = truncate(f"{count} {noun} at risk for {owner}", HEADER_TEXT_MAX)
    intro = context([f"Riskiest first{f' · {tally}' if tally else ''} · scores 0-100, 60+ is high"])
    entries: list[Block | list[Block]] = [header(f":warning: {title}"), intro]
    entries.extend(_deal_blocks(alert) for alert in unique)
    text = truncate(escape(f"{title}{f' ({tally})' if tally else ''}"), FALLBACK_TEXT_MAX)
    return {"text": text, "blocks": cap_blocks(entries, noun="deal")}
