"""`proactive gmail link`: a rep's signed Google connect link, from the CLI."""

from __future__ import annotations

from urllib.parse import unquote

import pytest
from click.testing import CliRunner

from tests.support.engine import make_org
from worker.config import reset_settings
from worker.google.oauth import read_connect_token
from worker.models import utcnow
from worker.ops.cli import main

pytestmark = [pytest.mark.postgres, pytest.mark.usefixtures("pg")]
SECRET = "s" * 40


def test_the_link_names_the_rep_and_verifies(monkeypatch: pytest.MonkeyPatch) -> None:
    org = make_org()
    monkeypatch.setenv("OAUTH_STATE_SECRET", SECRET)
    monkeypatch.setenv("APP_URL", "https://proactive.example")
    reset_settings()
    try:
        result = CliRunner().invoke(main, ["gmail", "link", "--org", str(org.id), "--user", str(org.rep)])
        assert result.exit_code == 0, result.output
        url = result.output.strip()
        assert url.startswith("https://proactive.example/oauth/google/start?token=")
        grant = read_connect_token(unquote(url.split("token=", 1)[1]), utcnow())
        assert (grant.org_id, grant.user_id) == (org.id, org.rep)
    finally:
        reset_settings()


def test_without_the_secret_the_cli_says_which_setting(monkeypatch: pytest.MonkeyPatch) -> None:
    org = make_org()
    monkeypatch.delenv("OAUTH_STATE_SECRET", raising=False)
    reset_settings()
    result = CliRunner().invoke(main, ["gmail", "link", "--org", str(org.id), "--user", str(org.rep)])
    assert result.exit_code != 0 and "OAUTH_STATE_SECRET" in result.output
