"""Instantly (cold-email campaigns) API v2: active campaigns, their analytics, and recent lead replies.

Base URL `INSTANTLY_API_URL` (default https://api.instantly.ai/api/v2), `Authorization: Bearer <key>`;
the key is the org's Instantly integration (encrypted credentials `{"api_key": ...}`).

Wire format, from Instantly's API reference (developer.instantly.ai, OpenAPI
https://api.instantly.ai/openapi/api_v2.json, pages "List campaign", "Get campaign(s) analytics",
"List email", seen via the search corpus; not checked against the live API):

- `GET /campaigns?status=1&limit=&starting_after=` -> `{"items": [{"id", "name", "status", ...}],
  "next_starting_after": "..."}`; status 1 = Active (0 Draft, 2 Paused, 3 Completed, 4 Running
  Subsequences, -99 Suspended, -1 Accounts Unhealthy, -2 Bounce Protect).
- `GET /campaigns/analytics?id=&start_date=&end_date=&exclude_total_leads_count=` -> a JSON **array**
  of `{"campaign_id", "campaign_name", "campaign_status", "emails_sent_count", "open_count",
  "open_count_unique", "reply_count", "reply_count_unique", "bounced_count", "unsubscribed_count",
  "leads_count", "contacted_count", ...}`. Without `id` it answers every campaign; the `ids` list
  parameter's encoding is not documented, so several campaigns are filtered here instead.
  `*_unique` counts appear in the newer reference only; we prefer them and fall back to the totals.
- `GET /emails?limit=(<=100)&starting_after=&campaign_id=&sort_order=desc` -> `{"items": [{"id",
  "timestamp_email", "timestamp_created", "message_id", "subject", "from_address_email",
  "to_address_email_list", "eaccount", "lead", "campaign_id", "thread_id", "is_auto_reply",
  "ue_type", "body": {"text", "html"}, "content_preview", ...}], "next_starting_after"}`.
  NOT CONFIRMED for v2: the `email_type=received` filter (documented for API v1, used against v2 in
  public code) and the meaning of each `ue_type` value. So we send `email_type=received` and also
  keep only emails whose sender is not the Instantly mailbox (`from_address_email != eaccount`),
  which needs no undocumented field.
- Errors: JSON `{"statusCode", "error", "message"}`; 429 on rate limits (Retry-After not documented:
  `RateLimited` after it, else 1 s).
- Rate limits ("Rate Limit" page): 100 requests/s and 6,000/min per workspace, shared by API v1 and
  v2 and every key of it. Our calls are paced per integration (the org's workspace) with
  `INSTANTLY_REQUESTS_PER_S`, one `rate_slots` key shared by every worker: a call waits for its slot
  up to 2 s, or the step is retried later (`RateLimited`, which does not use up its attempts).

Every wire field name lives in ANALYTICS_FIELDS / REPLY_FIELDS below; change them there only.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from datetime import UTC, date, datetime
from typing import Any

import httpx
from pydantic import BaseModel

from worker import ratelimit
from worker.clients.http import api_error_message, error_for_status
from worker.config import get_settings
from worker.crypto import decrypt_json
from worker.errors import PermanentError, TransientError

PROVIDER = "instantly"
CAMPAIGN_STATUS_ACTIVE = 1
PAGE_LIMIT = 100  # the API refuses limit > 100
MAX_PAGES = 20  # stop paginating after this many pages (2,000 items) per call
USER_AGENT = "proactive/0.1"  # Cloudflare in front of the API is reported to block some default agents
PACE_BURST_S = 1.0  # an idle workspace may take one second of our per-second budget at once

# Our name -> wire names in order of preference (the first present wins).
ANALYTICS_FIELDS: dict[str, tuple[str, ...]] = {
    "campaign_id": ("campaign_id",),
    "name": ("campaign_name",),
    "status": ("campaign_status",),
    "sent": ("emails_sent_count",),
    "opened": ("open_count_unique", "open_count"),
    "replied": ("reply_count_unique", "reply_count"),
    "bounced": ("bounced_count",),
    "unsubscribed": ("unsubscribed_count",),
    "leads": ("leads_count",),
    "contacted": ("contacted_count",),
}
REPLY_FIELDS: dict[str, tuple[str, ...]] = {
    "id": ("id",),
    "campaign_id": ("campaign_id",),
    "thread_id": ("thread_id",),
    "message_id": ("message_id",),
    "from_email": ("from_address_email",),
    "to": ("to_address_email_list",),
    "mailbox": ("eaccount",),
    "lead_email": ("lead",),
    "subject": ("subject",),
    "received_at": ("timestamp_email", "timestamp_created"),
    "is_auto_reply": ("is_auto_reply",),
}
# What `sort_order` sorts emails by ("email creation date"): the cut-off for "since" uses it.
EMAIL_SORT_FIELDS: tuple[str, ...] = ("timestamp_created", "timestamp_email")


class CampaignAnalytics(BaseModel):
    """Counts for one campaign over the requested window."""

    campaign_id: str
    name: str = ""
    status: int | None = None
    sent: int = 0
    opened: int = 0
    replied: int = 0
    bounced: int = 0
    unsubscribed: int = 0
    leads: int | None = None
    contacted: int | None = None


class ReplyEmail(BaseModel):
    """An email a lead sent to one of the org's Instantly mailboxes."""

    id: str
    campaign_id: str | None = None
    thread_id: str | None = None
    message_id: str | None = None
    from_email: str
    to: str = ""
    mailbox: str = ""
    lead_email: str | None = None
    subject: str = ""
    body_text: str = ""
    received_at: datetime
    is_auto_reply: bool = False


class Campaign(BaseModel):
    """A campaign as listed: id, name, status code."""

    id: str
    name: str = ""
    status: int | None = None


def _pick(item: Mapping[str, Any], names: tuple[str, ...]) -> Any:
    for name in names:
        if item.get(name) is not None:
            return item[name]
    return None


def _mapped(item: Mapping[str, Any], fields: Mapping[str, tuple[str, ...]]) -> dict[str, Any]:
    return {ours: value for ours, names in fields.items() if (value := _pick(item, names)) is not None}


def _timestamp(value: str) -> datetime:
    when = datetime.fromisoformat(value.replace("Z", "+00:00"))
    return when if when.tzinfo else when.replace(tzinfo=UTC)


def _is_received(item: Mapping[str, Any]) -> bool:
    sender = str(item.get("from_address_email") or "").strip().lower()
    mailbox = str(item.get("eaccount") or "").strip().lower()
    return bool(sender) and sender != mailbox


class InstantlyClient:
    """One org's Instantly API (sync, one httpx connection pool; close it or use `with`)."""

    def __init__(
        self, api_key: str, *, base_url: str | None = None, timeout_s: float | None = None, integration_id: Any = None
    ) -> None:
        if not api_key:
            raise PermanentError("no Instantly API key: connect Instantly for this org")
        settings = get_settings()
        self.integration_id = integration_id
        self._http = httpx.Client(
            base_url=(base_url or settings.instantly_api_url).rstrip("/") + "/",
            headers={"Authorization": f"Bearer {api_key}", "Accept": "application/json", "User-Agent": USER_AGENT},
            timeout=timeout_s if timeout_s is not None else settings.instantly_timeout_s,
        )

    @classmethod
    def for_integration(cls, integration: Any, **kwargs: Any) -> InstantlyClient:
        """A client from an `Integration` row whose decrypted credentials hold `api_key`."""
        data = decrypt_json(integration.credentials) if integration.credentials else {}
        return cls(str(data.get("api_key") or ""), integration_id=integration.id, **kwargs)

    def __enter__(self) -> InstantlyClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Close the connection pool."""
        self._http.close()

    def _pace(self) -> None:
        """Wait for this workspace's next call slot (none without an integration id: nothing to key on)."""
        if self.integration_id is None:
            return
        rate = get_settings().instantly_requests_per_s
        what = f"instantly integration {self.integration_id} ({rate:g} requests/s)"
        ratelimit.pace(f"instantly:{self.integration_id}", rate, rate * PACE_BURST_S, what)

    def _get(self, path: str, params: Mapping[str, Any]) -> Any:
        query = {k: v for k, v in params.items() if v is not None}
        self._pace()
        try:
            response = self._http.get(path.lstrip("/"), params=query)
        except httpx.TimeoutException as exc:
            raise TransientError(f"instantly timed out: {exc!r}") from exc
        except httpx.TransportError as exc:
            raise TransientError(f"instantly connection failed: {exc!r}") from exc
        if response.status_code >= 400:
            raise error_for_status(
                response.status_code,
                api_error_message(response.content),
                provider=PROVIDER,
                retry_after=response.headers.get("retry-after"),
                auth_statuses=(401,),
                integration_id=self.integration_id,
            )
        try:
            return response.json()
        except ValueError as exc:
            raise TransientError(
                f"instantly answered HTTP {response.status_code} with a body that is not JSON"
            ) from exc

    def _pages(self, path: str, params: Mapping[str, Any]) -> Iterator[dict[str, Any]]:
        cursor: str | None = None
        for _ in range(MAX_PAGES):
            page = self._get(path, {**params, "limit": PAGE_LIMIT, "starting_after": cursor})
            if not isinstance(page, dict):
                raise TransientError(f"instantly {path} answered {type(page).__name__}, expected an object")
            yield from (i for i in page.get("items") or [] if isinstance(i, dict))
            cursor = page.get("next_starting_after")
            if not cursor:
                return

    def list_campaigns(self, *, status: int | None = CAMPAIGN_STATUS_ACTIVE) -> list[Campaign]:
        """Campaigns with `status` (default: active; None = all)."""
        return [
            Campaign(id=str(c["id"]), name=str(c.get("name") or ""), status=c.get("status"))
            for c in self._pages("campaigns", {"status": status})
            if c.get("id")
        ]

    def campaign_analytics(
        self, campaign_ids: list[str] | None = None, *, start_date: date | None = None, end_date: date | None = None
    ) -> list[CampaignAnalytics]:
        """Analytics of the given campaigns (None = all) between the dates (inclusive, optional)."""
        single = campaign_ids[0] if campaign_ids and len(campaign_ids) == 1 else None
        rows = self._get(
            "campaigns/analytics",
            {
                "id": single,
                "start_date": start_date.isoformat() if start_date else None,
                "end_date": end_date.isoformat() if end_date else None,
                "exclude_total_leads_count": "true",
            },
        )
        if not isinstance(rows, list):
            raise TransientError(f"instantly campaigns/analytics answered {type(rows).__name__}, expected a list")
        wanted = set(campaign_ids) if campaign_ids is not None else None
        result = []
        for row in rows:
            values = _mapped(row, ANALYTICS_FIELDS) if isinstance(row, dict) else {}
            if "campaign_id" not in values or (wanted is not None and values["campaign_id"] not in wanted):
                continue
            result.append(CampaignAnalytics.model_validate(values))
        return result

    def active_campaign_analytics(
        self, *, start_date: date | None = None, end_date: date | None = None
    ) -> list[CampaignAnalytics]:
        """Analytics of every active campaign (the morning campaign check)."""
        campaigns = self.list_campaigns(status=CAMPAIGN_STATUS_ACTIVE)
        if not campaigns:
            return []
        names = {c.id: c.name for c in campaigns}
        rows = self.campaign_analytics(list(names), start_date=start_date, end_date=end_date)
        return [r if r.name else r.model_copy(update={"name": names[r.campaign_id]}) for r in rows]

    def recent_replies(self, since: datetime, *, campaign_id: str | None = None) -> list[ReplyEmail]:
        """Emails leads sent to the org's mailboxes at or after `since` (aware), newest first."""
        if since.tzinfo is None:
            raise ValueError(f"naive datetime {since!r}: pass a timezone-aware datetime")
        replies = []
        params = {"email_type": "received", "sort_order": "desc", "campaign_id": campaign_id}
        for item in self._pages("emails", params):
            values = _mapped(item, REPLY_FIELDS)
            sorted_by = _pick(item, EMAIL_SORT_FIELDS)
            if sorted_by is not None and _timestamp(str(sorted_by)) < since:
                break  # sorted newest first: everything after this is older
            if "received_at" not in values or "id" not in values or not _is_received(item):
                continue
            received_at = _timestamp(str(values["received_at"]))
            body = item.get("body") if isinstance(item.get("body"), dict) else {}
            values.update(
                received_at=received_at,
                is_auto_reply=bool(values.get("is_auto_reply")),
                body_text=str(body.get("text") or item.get("content_preview") or ""),
            )
            replies.append(ReplyEmail.model_validate(values))
        return replies
