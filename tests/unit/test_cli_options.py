"""The CLI's option validation: bad input is refused by click with the valid choices, exit 2, before
any database or broker is touched; every `--json` flag says what it does."""

from __future__ import annotations

import click
import pytest
from click.testing import CliRunner

from worker.engine.payloads import EventType
from worker.engine.states import JobStatus
from worker.ops.cli import main


@pytest.mark.parametrize(
    ("args", "says", "lists"),
    [
        (["jobs", "--status", "faild"], "Invalid value for '--status'", [s.value for s in JobStatus]),
        (["jobs", "--type", "nonsense"], "Invalid value for '--type'", [t.value for t in EventType]),
        (["jobs", "--limit", "-5"], "Invalid value for '--limit'", ["x>=1"]),
        (["inbox", "--limit", "0"], "Invalid value for '--limit'", ["x>=1"]),
        (["rejected", "--limit", "-1"], "Invalid value for '--limit'", ["x>=1"]),
    ],
)
def test_bad_filters_exit_2_listing_what_is_valid(args: list[str], says: str, lists: list[str]):
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 2, result.output
    assert says in result.output
    for valid in lists:
        assert valid in result.output


def _commands(group: click.Group, prefix: str = "") -> list[tuple[str, click.Command]]:
    found = []
    for name, command in group.commands.items():
        if isinstance(command, click.Group):
            found += _commands(command, f"{prefix}{name} ")
        else:
            found.append((f"{prefix}{name}", command))
    return found


def test_every_json_flag_has_a_help_text():
    with_json = {
        name: param
        for name, command in _commands(main)
        for param in command.params
        if isinstance(param, click.Option) and "--json" in param.opts
    }
    assert {"inbox", "rejected", "db current", "jobs", "job", "fire", "smoke"} <= set(with_json)
    assert [name for name, param in with_json.items() if not param.help] == []


def test_the_decisions_an_approval_offers_follow_its_kind():
    from worker.engine.dag import ApprovalSpec
    from worker.ops.cli import offered_decisions

    slots = offered_decisions("calendar_slots", ApprovalSpec("calendar_slots", rerun_from={"more": "prepare"}))
    assert slots == {
        "proceed": ["send_invite", "send_times", "approve", "edit"],
        "rerun": ["more"],
        "stop": ["handle", "reject"],
    }
    email = offered_decisions("email_preview", ApprovalSpec("email_preview"))
    assert email["proceed"] == ["edit", "send_later", "send_now", "approve"] and email["stop"] == ["cancel", "reject"]
    assert "more" not in email["rerun"]  # no re-run declared: not offered
    generic = offered_decisions("crm_update", ApprovalSpec("crm_update"))
    assert generic == {"proceed": ["approve", "edit"], "rerun": [], "stop": ["reject"]}


def test_keys_create_refuses_an_unknown_role_listing_the_roles():
    from worker.access.api_keys import ApiKeyRole
    from worker.ops.cli import KEY_ROLES

    assert tuple(r.value for r in ApiKeyRole) == KEY_ROLES  # the CLI's choices are the roles the API knows
    result = CliRunner().invoke(main, ["keys", "create", "--org", "x", "--name", "n", "--role", "root"])
    assert result.exit_code == 2, result.output
    assert "Invalid value for '--role'" in result.output
    assert all(role in result.output for role in KEY_ROLES)
