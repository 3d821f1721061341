"""Sign-in to the admin pages without a browser (Flask test client, PostgreSQL and SQLite): one-time
links, the session cookie's attributes, org scoping, CSRF, and the `proactive admin link` command."""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterator
from datetime import timedelta

import pytest
from click.testing import CliRunner
from flask.testing import FlaskClient
from sqlalchemy import select

from tests.conftest import Backend
from tests.support.engine import TestOrg, event, make_org
from webhooks import create_app
from webhooks.pages import COOKIE
from worker.access import admin_auth
from worker.access.admin_auth import LOGIN_SALT, LoginRefused, create_link, redeem
from worker.config import reset_settings
from worker.db import transaction
from worker.engine.events import fire_event
from worker.models import AdminLogin, jobs, utcnow

SECRET = "test-admin-session-" + uuid.uuid4().hex  # 51 characters


@pytest.fixture(autouse=True)
def session_secret(backend: Backend) -> Iterator[str]:
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("ADMIN_SESSION_SECRET", SECRET)
        reset_settings()
        yield SECRET
    reset_settings()


@pytest.fixture
def client() -> FlaskClient:
    return create_app({"TESTING": True}).test_client()


def queued_job(org: TestOrg) -> uuid.UUID:
    """A job that is accepted and waits for a worker (none runs in these tests)."""
    return fire_event(event(org, "campaign_daily_check")).job_id


def path_of(url: str) -> str:
    """The path and query of an absolute URL (the test client takes paths)."""
    return "/" + url.split("/", 3)[3]


def sign_in(client: FlaskClient, org_id: uuid.UUID | None, next_path: str | None = None) -> None:
    response = client.get(path_of(create_link(org_id, next_path=next_path).url))
    assert response.status_code == 200, response.text


def test_a_link_signs_in_once_with_a_strict_http_only_cookie(client):
    org = make_org()
    link = create_link(org.id, next_path="/admin/jobs?status=failed")
    assert link.url.startswith("http://127.0.0.1:8000/admin/login?token=")
    response = client.get(path_of(link.url))
    assert response.status_code == 200
    assert '<meta http-equiv="refresh" content="0; url=/admin/jobs?status=failed">' in response.text
    assert response.headers["Referrer-Policy"] == "no-referrer"  # the token never leaves in a Referer
    cookie = response.headers["Set-Cookie"]
    assert cookie.startswith(f"{COOKIE}=")
    assert "HttpOnly" in cookie and "SameSite=Strict" in cookie and "Path=/admin" in cookie
    assert "Secure" not in cookie  # APP_URL is http here
    assert client.get("/admin/jobs").status_code == 200
    signed_in = client.get("/admin/login?next=/admin/jobs/x")  # nothing to sign in to: go on
    assert signed_in.status_code == 303 and signed_in.headers["Location"] == "/admin/jobs/x"

    again = create_app({"TESTING": True}).test_client().get(path_of(link.url))
    assert again.status_code == 401
    assert "already used" in again.text and "proactive admin link" in again.text
    assert "Set-Cookie" not in again.headers


def test_the_cookie_is_secure_when_the_app_url_is_https(client, monkeypatch):
    monkeypatch.setenv("APP_URL", "https://proactive.example.com")
    reset_settings()
    link = create_link(None)
    assert link.url.startswith("https://proactive.example.com/admin/login?token=")
    cookie = client.get(path_of(link.url)).headers["Set-Cookie"]
    assert "Secure" in cookie and "SameSite=Strict" in cookie


def test_expired_altered_and_unknown_links_are_refused_with_401(client):
    serializer = admin_auth._serializer(LOGIN_SALT)
    past = int((utcnow() - timedelta(minutes=1)).timestamp())
    expired = serializer.dumps({"j": "gone", "e": past})
    response = client.get(f"/admin/login?token={expired}")
    assert response.status_code == 401 and "expired" in response.text

    token = path_of(create_link(None).url).split("token=")[1]
    response = client.get(f"/admin/login?token={token[:-2]}xx")
    assert response.status_code == 401 and "not valid" in response.text

    unknown = serializer.dumps({"j": "never-issued", "e": past + 3600})
    response = client.get(f"/admin/login?token={unknown}")
    assert response.status_code == 401 and "unknown or expired" in response.text
    assert COOKIE not in response.headers.get("Set-Cookie", "")


def test_a_link_expires_after_its_minutes():
    link = create_link(None, minutes=1)
    token = link.url.split("token=")[1]
    with pytest.raises(LoginRefused, match="expired"):
        redeem(token, now=link.expires_at + timedelta(seconds=1))
    assert redeem(token, now=link.expires_at - timedelta(seconds=1)).all_orgs  # still good before that


def test_without_a_session_a_page_redirects_to_how_to_get_a_link(client):
    job_id = uuid.uuid4()
    response = client.get(f"/admin/jobs/{job_id}")
    assert response.status_code == 303
    assert response.headers["Location"] == f"/admin/login?next=/admin/jobs/{job_id}"
    page = client.get(response.headers["Location"])
    assert page.status_code == 401
    assert f"proactive admin link --next '/admin/jobs/{job_id}'" in page.text
    assert "ADMIN_SESSION_SECRET" in page.text

    client.set_cookie(COOKIE, "altered-or-old", path="/admin")
    assert client.get("/admin/jobs").status_code == 303


def test_an_org_session_sees_its_jobs_only_and_bad_ids_are_404(client):
    mine, theirs = make_org(), make_org()
    my_job, their_job = queued_job(mine), queued_job(theirs)
    sign_in(client, mine.id)
    page = client.get(f"/admin/jobs/{my_job}")
    assert page.status_code == 200 and str(my_job) in page.text
    assert client.get(f"/admin/jobs/{their_job}").status_code == 404
    assert client.get("/admin/jobs/not-a-uuid").status_code == 404
    assert client.get(f"/admin/jobs/{uuid.uuid4()}").status_code == 404
    listing = client.get("/admin/jobs")
    assert str(my_job) in listing.text and str(their_job) not in listing.text
    assert client.get("/admin/jobs?status=nonsense").status_code == 400

    admin = create_app({"TESTING": True}).test_client()
    sign_in(admin, None)
    assert admin.get(f"/admin/jobs/{their_job}").status_code == 200


def test_cancel_needs_the_session_csrf_token(client):
    org = make_org()
    job_id = queued_job(org)
    sign_in(client, org.id)
    page = client.get(f"/admin/jobs/{job_id}").text
    token = re.search(r'name="csrf_token" value="([^"]+)"', page)[1]

    assert client.post(f"/admin/jobs/{job_id}/cancel").status_code == 403
    assert client.post(f"/admin/jobs/{job_id}/cancel", data={"csrf_token": "forged"}).status_code == 403
    other = create_app({"TESTING": True}).test_client()
    sign_in(other, org.id)  # another session's token is not this session's
    assert other.post(f"/admin/jobs/{job_id}/cancel", data={"csrf_token": token}).status_code == 403
    assert status_of(job_id) == "queued"

    done = client.post(f"/admin/jobs/{job_id}/cancel", data={"csrf_token": token})
    assert done.status_code == 303 and done.headers["Location"] == f"/admin/jobs/{job_id}"
    assert status_of(job_id) == "cancelled"
    anonymous = create_app({"TESTING": True}).test_client()
    assert anonymous.post(f"/admin/jobs/{job_id}/cancel", data={"csrf_token": token}).status_code == 401


def test_an_org_session_cannot_cancel_another_orgs_job(client):
    mine, theirs = make_org(), make_org()
    their_job = queued_job(theirs)
    sign_in(client, mine.id)
    token = re.search(r'name="csrf_token" value="([^"]+)"', client.get("/admin/jobs").text)[1]
    assert client.post(f"/admin/jobs/{their_job}/cancel", data={"csrf_token": token}).status_code == 404
    assert status_of(their_job) == "queued"


def test_sign_out_forgets_the_session(client):
    sign_in(client, None)
    token = re.search(r'name="csrf_token" value="([^"]+)"', client.get("/admin/jobs").text)[1]
    assert client.post("/admin/logout").status_code == 403
    response = client.post("/admin/logout", data={"csrf_token": token})
    assert response.status_code == 303 and "signed_out=1" in response.headers["Location"]
    assert client.get("/admin/jobs").status_code == 303


def test_pages_never_show_the_secret_the_token_or_the_payload(client):
    org = make_org()
    payload = {"from_email": "a@example.com", "body": "my password is sk-live-should-not-show"}
    job_id = fire_event(event(org, "email_received", payload)).job_id
    link = create_link(org.id)
    sign_in_page = client.get(path_of(link.url)).text
    job_page = client.get(f"/admin/jobs/{job_id}").text
    for page in (sign_in_page, job_page):
        assert SECRET not in page
        assert link.url.split("token=")[1] not in page
        assert "sk-live-should-not-show" not in page
    assert "Content-Security-Policy" in client.get("/admin/jobs").headers


def test_sign_in_says_what_to_set_when_the_secret_is_missing(client, monkeypatch):
    link = create_link(None)
    monkeypatch.delenv("ADMIN_SESSION_SECRET")
    reset_settings()
    response = client.get(path_of(link.url))
    assert response.status_code == 503 and "ADMIN_SESSION_SECRET is not set" in response.text
    result = CliRunner().invoke(main_cli(), ["admin", "link"])
    assert result.exit_code == 1 and "ADMIN_SESSION_SECRET is not set" in result.output


def test_admin_link_command_prints_a_link_for_one_org_or_every_org():
    org = make_org()
    result = CliRunner().invoke(main_cli(), ["admin", "link", "--org", str(org.id), "--minutes", "5"])
    assert result.exit_code == 0, result.output
    url = result.stdout.strip()
    assert url.startswith("http://127.0.0.1:8000/admin/login?token=")
    assert f"signs in once, to org {org.id}" in result.stderr
    assert redeem(url.split("token=")[1]).org_id == org.id
    with_next = CliRunner().invoke(main_cli(), ["admin", "link", "--next", "/admin/jobs/x"])
    assert with_next.exit_code == 0 and "next=%2Fadmin%2Fjobs%2Fx" in with_next.stdout

    for bad in (["--minutes", "0"], ["--minutes", "1441"], ["--org", "no-such-org"]):
        result = CliRunner().invoke(main_cli(), ["admin", "link", *bad])
        assert result.exit_code == 2, (bad, result.output)
    with transaction() as conn:
        rows = conn.execute(select(AdminLogin.org_id).where(AdminLogin.org_id == org.id)).all()
    assert len(rows) == 1


def main_cli():
    from worker.ops.cli import main

    return main


def status_of(job_id: uuid.UUID) -> str:
    with transaction() as conn:
        return conn.execute(select(jobs.c.status).where(jobs.c.id == job_id)).scalar_one()
