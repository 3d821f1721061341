"""A fake Instantly API v2 (`{url}/api/v2`): campaigns list, campaigns analytics, emails list.

Shapes follow Instantly's API reference examples (see worker/clients/instantly.py): cursor pages
`{"items": [...], "next_starting_after": id}` for lists, a bare array for analytics, and errors
`{"statusCode", "error", "message"}`. `page_size` caps a page below the requested limit so tests
see pagination.
"""

from __future__ import annotations

import re
from typing import Any

from tests.fakes.server import FakeServer, Recorded, Reply

API_KEY = "inst-test-key"


def instantly_error(status: int, error: str, message: str, headers: dict[str, str] | None = None) -> Reply:
    """An error answer in Instantly's shape."""
    return Reply(status, {"statusCode": status, "error": error, "message": message}, headers or {})


def campaign(cid: str, name: str, status: int = 1) -> dict[str, Any]:
    """A campaign item as GET /campaigns lists it (the fields we read, plus a few others)."""
    return {
        "id": cid,
        "name": name,
        "status": status,
        "pl_value": 100,
        "is_evergreen": False,
        "timestamp_created": "2026-11-01T09:00:00.000Z",
        "timestamp_updated": "2026-11-20T09:00:00.000Z",
        "daily_limit": 100,
        "stop_on_reply": True,
    }


def analytics(
    cid: str, name: str, *, sent: int, opened: int, replied: int, bounced: int, status: int = 1, unique: bool = True
) -> dict[str, Any]:
    """A GET /campaigns/analytics row (with or without the `*_unique` counts)."""
    row = {
        "campaign_name": name,
        "campaign_id": cid,
        "campaign_status": status,
        "campaign_is_evergreen": False,
        "leads_count": 1500,
        "contacted_count": 1200,
        "emails_sent_count": sent,
        "new_leads_contacted_count": 200,
        "open_count": opened + 40,
        "reply_count": replied + 3,
        "link_click_count": 0,
        "bounced_count": bounced,
        "unsubscribed_count": 2,
        "completed_count": 1100,
        "total_opportunities": 0,
        "total_opportunity_value": 0,
    }
    if unique:
        row.update(open_count_unique=opened, reply_count_unique=replied)
    else:
        row.update(open_count=opened, reply_count=replied)
    return row


def email_item(
    eid: str,
    *,
    sender: str,
    mailbox: str,
    lead: str,
    campaign_id: str,
    at: str,
    subject: str = "Re: hi",
    text: str = "Sounds good",
    ue_type: int = 2,
    auto: int = 0,
) -> dict[str, Any]:
    """A GET /emails item."""
    return {
        "id": eid,
        "timestamp_created": at,
        "timestamp_email": at,
        "message_id": f"<{eid}@mail.example>",
        "subject": subject,
        "to_address_email_list": lead if sender == mailbox else mailbox,
        "body": {"text": text, "html": f"<p>{text}</p>"},
        "organization_id": "org-1",
        "eaccount": mailbox,
        "from_address_email": sender,
        "campaign_id": campaign_id,
        "lead": lead,
        "ue_type": ue_type,
        "is_unread": 1,
        "is_auto_reply": auto,
        "i_status": 0,
        "thread_id": f"thread-{eid}",
        "content_preview": text[:40],
    }


class FakeInstantly(FakeServer):
    """State: `campaigns`, `analytics` rows, `emails` (kept newest first, as sort_order=desc asks)."""

    def __init__(self, *, api_key: str = API_KEY, page_size: int = 100) -> None:
        super().__init__()
        self.api_key = api_key
        self.page_size = page_size
        self.campaigns: list[dict[str, Any]] = []
        self.analytics: list[dict[str, Any]] = []
        self.emails: list[dict[str, Any]] = []
        self.route("GET", r"/api/v2/campaigns", self._campaigns)
        self.route("GET", r"/api/v2/campaigns/analytics", self._analytics)
        self.route("GET", r"/api/v2/emails", self._emails)

    @property
    def base_url(self) -> str:
        """What INSTANTLY_API_URL should be."""
        return f"{self.url}/api/v2"

    def _auth(self, request: Recorded) -> Reply | None:
        if request.headers.get("authorization") == f"Bearer {self.api_key}":
            return None
        return instantly_error(401, "Unauthorized", "Invalid API key")

    def _page(self, request: Recorded, items: list[dict[str, Any]]) -> Reply:
        limit = int(request.arg("limit") or 10)
        if limit > 100:
            return instantly_error(400, "Bad Request", "querystring/limit must be <= 100")
        start = 0
        if after := request.arg("starting_after"):
            ids = [i["id"] for i in items]
            start = ids.index(after) + 1 if after in ids else len(items)
        page = items[start : start + min(limit, self.page_size)]
        more = start + len(page) < len(items)
        return Reply(200, {"items": page, "next_starting_after": page[-1]["id"] if page and more else None})

    def _campaigns(self, request: Recorded, _m: re.Match[str]) -> Reply:
        if (denied := self._auth(request)) is not None:
            return denied
        status = request.arg("status")
        items = [c for c in self.campaigns if status is None or str(c["status"]) == status]
        return self._page(request, items)

    def _analytics(self, request: Recorded, _m: re.Match[str]) -> Reply:
        if (denied := self._auth(request)) is not None:
            return denied
        single = request.arg("id")
        return Reply(200, [row for row in self.analytics if single is None or row["campaign_id"] == single])

    def _emails(self, request: Recorded, _m: re.Match[str]) -> Reply:
        if (denied := self._auth(request)) is not None:
            return denied
        items = self.emails
        if campaign_id := request.arg("campaign_id"):
            items = [e for e in items if e["campaign_id"] == campaign_id]
        return self._page(request, items)
