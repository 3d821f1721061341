"""`proactive fire --help` lists the nine event types and their payload fields, generated from the
payload models in worker/engine/payloads.py (so the help cannot drift from what `fire` accepts)."""

from __future__ import annotations

import pytest
from click.testing import CliRunner

from worker.engine.payloads import PAYLOAD_MODELS, EventType
from worker.ops.cli import field_kind, main

# One field of each type as an operator reads it in the help (required ones starred).
EXPECTED = {
    "meeting_ended": "meeting_id* (uuid)",
    "pre_meeting_90min": "calendar_event_id* (uuid)",
    "email_received": "from_email (text)",
    "proposal_generation": "deal_id* (uuid)",
    "calendar_find_times": "scheduling_text* (text)",
    "stale_deal_revival": "deal_id* (uuid)",
    "campaign_daily_check": "campaign_ids (list of uuid)",
    "coaching_weekly": "week (text, e.g. 2026-W48)",
    "deal_risk_scan": "date (YYYY-MM-DD)",
}


@pytest.fixture(scope="module")
def help_text() -> str:
    result = CliRunner().invoke(main, ["fire", "--help"])
    assert result.exit_code == 0, result.output
    return result.output


def test_help_names_every_event_type_at_the_start_of_its_row(help_text: str):
    assert set(EXPECTED) == {t.value for t in EventType}
    rows = [line.split()[0] for line in help_text.splitlines() if line.startswith("    ") and line.split()]
    for event_type in EventType:
        assert event_type.value in rows, f"{event_type.value} has no row in `fire --help`"


@pytest.mark.parametrize(("event_type", "field"), sorted(EXPECTED.items()))
def test_help_shows_a_field_of_each_type(help_text: str, event_type: str, field: str):
    assert field in help_text


def rows_of(help_text: str, event_type: str) -> str:
    """The help's lines for `event_type`: its row and the continuation lines under it."""
    out: list[str] = []
    for line in help_text.splitlines():
        starts_row = line.startswith("    ") and not line.startswith("     ")
        if starts_row:
            if out:
                break
            if line.split()[0] == event_type:
                out.append(line)
        elif out:
            out.append(line)
    return " ".join(" ".join(out).split())


@pytest.mark.parametrize("event_type", sorted(PAYLOAD_MODELS))
def test_help_lists_every_payload_field_and_whether_it_is_required(help_text: str, event_type: str):
    mine = rows_of(help_text, event_type)
    for name, info in PAYLOAD_MODELS[event_type].model_fields.items():
        star = "*" if info.is_required() else ""
        assert f"{name}{star} ({field_kind(info.annotation)}" in mine, name
        assert f"{name}{'' if star else '*'} (" not in mine, name


def test_help_keeps_its_table_within_a_terminal_and_unwrapped(help_text: str):
    assert max(len(line) for line in help_text.splitlines()) <= 80
    assert "    meeting_ended         meeting_id* (uuid)" in help_text  # \b kept click's rewrapping out
    assert "Org-level: --user is optional." in help_text
    assert "docs/events.md" in help_text
