"""A fake Google: the OAuth token endpoint (refresh and authorization-code grants), Calendar v3 (freeBusy,
events.insert/get) and Gmail v1 users.messages.send, users.watch and users.getProfile, at Google's own
paths, driven by the real google-auth and googleapiclient. Sent messages are found again by
users.messages.list with `q=rfc822msgid:<id>` (tests/fakes/gmail_inbox.py).

Point the clients at it with GOOGLE_TOKEN_URI=`token_uri` and GOOGLE_API_URL=`url`. Bodies follow
the samples in tests/fixtures/real-payloads/google (token answers, copied below) and the discovery schemas
bundled with google-api-python-client (FreeBusyResponse, Event, Message, WatchResponse, and Google's JSON error
`{"error": {"code", "message", "errors": [{"domain", "reason", "message"}], "status"}}`).
"""

from __future__ import annotations

import base64
import email
import itertools
import re
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from email.message import Message
from typing import Any
from urllib.parse import unquote

from tests.fakes.server import FakeServer, Recorded, Reply

# real-payloads/google/oauth_refresh_ok.json (Google Identity, "Refreshing an access token").
REFRESH_OK_SAMPLE = {
    "access_token": "1/fFAGRNJru1FTz70BzhT3Zg",
    "expires_in": 3920,
    "scope": "https://www.googleapis.com/auth/drive.metadata.readonly "
    "https://www.googleapis.com/auth/calendar.readonly",
    "token_type": "Bearer",
}
# Google Identity "Using OAuth 2.0 for Web Server Applications", step 5 (exchange an authorization code):
# the refresh answer's fields plus `refresh_token` (no file in real-payloads: the shape, as documented).
CODE_EXCHANGE_SAMPLE = dict(REFRESH_OK_SAMPLE, refresh_token="1//xEoDL4iW3cxlI7yDbSRFYNG01kVKM2C-259HOF2aQbI")
# The scopes Proactive asks for (worker.google.oauth.SCOPES): what a code grants unless told otherwise.
CONNECT_SCOPES = (
    "https://www.googleapis.com/auth/gmail.readonly https://www.googleapis.com/auth/gmail.send "
    "https://www.googleapis.com/auth/calendar.events https://www.googleapis.com/auth/calendar.freebusy"
)
# real-payloads/google/oauth_invalid_grant.json (Chromium's gaia tests; sent with HTTP 400).
INVALID_GRANT = {"error": "invalid_grant"}
# real-payloads/google/oauth_invalid_grant_rapt_required.json
INVALID_GRANT_RAPT_REQUIRED = {
    "error": "invalid_grant",
    "error_subtype": "rapt_required",
    "error_description": "reauth related error",
}

# real-payloads/google/gmail_watch_response.json: both fields are strings (uint64/int64 in discovery).
WATCH_SAMPLE = {"historyId": "1234567890", "expiration": "1431990098200"}
WATCH_DURATION = timedelta(days=7)  # how long Gmail keeps a watch
TOPIC_NAME = re.compile(r"projects/[^/]+/topics/[^/]+")
LABEL_FILTER_BEHAVIORS = frozenset({"include", "exclude"})  # discovery enum; the push guide writes INCLUDE

CLIENT_ID = "fake-client-id.apps.googleusercontent.com"
CLIENT_SECRET = "fake-client-secret"
EVENT_ID = re.compile(r"[0-9a-v]{5,1024}")


def google_error(
    status: int,
    message: str,
    reason: str,
    *,
    domain: str = "global",
    state: str = "",
    headers: dict[str, str] | None = None,
) -> Reply:
    """An error answer in the shape Google APIs send."""
    body = {
        "error": {
            "code": status,
            "message": message,
            "errors": [{"message": message, "domain": domain, "reason": reason}],
            "status": state,
        }
    }
    return Reply(status, body, headers or {})


def rate_limited(retry_after: str | None = None, *, status: int = 429, reason: str = "rateLimitExceeded") -> Reply:
    """A Google rate-limit answer (429 RESOURCE_EXHAUSTED or 403 usageLimits)."""
    headers = {"Retry-After": retry_after} if retry_after is not None else {}
    state = "RESOURCE_EXHAUSTED" if status == 429 else "PERMISSION_DENIED"
    return google_error(status, "Rate Limit Exceeded", reason, domain="usageLimits", state=state, headers=headers)


def _rfc3339(when: datetime) -> str:
    return when.astimezone(UTC).isoformat().replace("+00:00", "Z")


def _parse(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


@dataclass
class SentMessage:
    """A message Gmail 'sent': the decoded MIME, and the threadId asked for."""

    id: str
    thread_id: str
    raw: str
    mime: Message = field(repr=False)
    mailbox: str = ""  # whose mailbox sent it (the access token's), "" when unknown


class FakeGoogle(FakeServer):
    """Token endpoint + Calendar + Gmail, with per-test state (valid refresh tokens, busy times, events)."""

    def __init__(self) -> None:
        super().__init__()
        self.refresh_tokens: dict[str, dict[str, Any]] = {}  # refresh token -> error body to answer (or {})
        self.access_tokens: set[str] = set()
        self.mailboxes: dict[str, str] = {}  # access or refresh token -> the Gmail address it is for
        self.busy: dict[str, list[tuple[datetime, datetime]]] = {}
        self.events: dict[tuple[str, str], dict[str, Any]] = {}
        self.sent: list[SentMessage] = []
        self.watches: list[dict[str, Any]] = []  # {mailbox, body, historyId, expiration} per watch answered
        self.codes: dict[str, dict[str, Any]] = {}  # code -> {refresh_token, mailbox, scope, redirect_uri}
        self.watch_errors: dict[str, Reply] = {}  # mailbox -> the answer its users.watch gets instead
        self.history_id = WATCH_SAMPLE["historyId"]  # what users.watch answers as the mailbox's history id
        self._seq = itertools.count(1)
        self.route("POST", r"/token", self._token)
        self.route("POST", r"/calendar/v3/freeBusy", self._free_busy)
        self.route("POST", r"/calendar/v3/calendars/([^/]+)/events", self._insert_event)
        self.route("GET", r"/calendar/v3/calendars/([^/]+)/events/([^/]+)", self._get_event)
        self.route("POST", r"/gmail/v1/users/([^/]+)/messages/send", self._send)
        self.route("POST", r"/gmail/v1/users/([^/]+)/watch", self._watch)
        self.route("GET", r"/gmail/v1/users/([^/]+)/profile", self._profile)
        from tests.fakes.gmail_inbox import GmailInbox

        self.inbox = GmailInbox(self)  # users.history.list, messages.get, messages.list

    @property
    def token_uri(self) -> str:
        """What GOOGLE_TOKEN_URI should be."""
        return f"{self.url}/token"

    def grant(self, refresh_token: str, mailbox: str | None = None) -> None:
        """Accept `refresh_token` at the token endpoint (its access tokens are `mailbox`'s)."""
        self.refresh_tokens[refresh_token] = {}
        if mailbox is not None:
            self.mailboxes[refresh_token] = mailbox

    def revoke(self, refresh_token: str, error: dict[str, Any] | None = None) -> None:
        """Refuse `refresh_token` with `error` (HTTP 400; default: the invalid_grant sample)."""
        self.refresh_tokens[refresh_token] = error or INVALID_GRANT

    def issue_access_token(self, mailbox: str | None = None) -> str:
        """A new valid access token (for `mailbox`: what `users/me` means with it)."""
        token = f"ya29.fake-{next(self._seq)}"
        self.access_tokens.add(token)
        if mailbox is not None:
            self.mailboxes[token] = mailbox
        return token

    def issue_code(
        self,
        email: str,
        *,
        refresh_token: str | None = None,
        scope: str = CONNECT_SCOPES,
        redirect_uri: str | None = None,
    ) -> str:
        """A one-time authorization code for `email`'s mailbox, as Google's consent screen hands out;
        exchanging it grants `refresh_token` (default: a new one) and `scope`. With `redirect_uri`, the
        exchange must send that one (else `redirect_uri_mismatch`)."""
        code = f"4/0Afake-{next(self._seq)}"
        self.codes[code] = {
            "refresh_token": refresh_token or f"1//fake-refresh-{next(self._seq)}",
            "mailbox": email,
            "scope": scope,
            "redirect_uri": redirect_uri,
        }
        return code

    # ---------------------------------------------------------------- OAuth

    def _token(self, request: Recorded, _m: re.Match[str]) -> Reply:
        form = request.form
        if form.get("client_id") != CLIENT_ID or form.get("client_secret") != CLIENT_SECRET:
            return Reply(401, {"error": "invalid_client", "error_description": "The OAuth client was not found."})
        if form.get("grant_type") == "authorization_code":
            return self._exchange_code(form)
        if form.get("grant_type") != "refresh_token":
            return Reply(400, {"error": "unsupported_grant_type"})
        refresh_token = form.get("refresh_token", "")
        refused = self.refresh_tokens.get(refresh_token, INVALID_GRANT)
        if refused:
            return Reply(400, refused)
        answer = dict(REFRESH_OK_SAMPLE, access_token=self.issue_access_token(self.mailboxes.get(refresh_token)))
        if form.get("scope"):
            answer["scope"] = form["scope"]
        return Reply(200, answer)

    def _exchange_code(self, form: dict[str, str]) -> Reply:
        granted = self.codes.pop(form.get("code", ""), None)  # a code works once
        if granted is None:
            return Reply(400, INVALID_GRANT)
        if granted["redirect_uri"] is not None and form.get("redirect_uri") != granted["redirect_uri"]:
            return Reply(400, {"error": "redirect_uri_mismatch", "error_description": "Bad Request"})
        self.grant(granted["refresh_token"], granted["mailbox"])
        return Reply(
            200,
            dict(
                CODE_EXCHANGE_SAMPLE,
                access_token=self.issue_access_token(granted["mailbox"]),
                refresh_token=granted["refresh_token"],
                scope=granted["scope"],
            ),
        )

    @staticmethod
    def _bearer(request: Recorded) -> str:
        header = request.headers.get("authorization", "")
        return header[len("Bearer ") :] if header.startswith("Bearer ") else ""

    def _authorized(self, request: Recorded) -> Reply | None:
        if self._bearer(request) in self.access_tokens:
            return None
        return google_error(
            401, "Request had invalid authentication credentials.", "authError", state="UNAUTHENTICATED"
        )

    # ---------------------------------------------------------------- Calendar

    def _free_busy(self, request: Recorded, _m: re.Match[str]) -> Reply:
        if (denied := self._authorized(request)) is not None:
            return denied
        body = request.json or {}
        try:
            lo, hi = _parse(body["timeMin"]), _parse(body["timeMax"])
        except (KeyError, ValueError):
            return google_error(400, "Bad Request", "badRequest", state="INVALID_ARGUMENT")
        calendars: dict[str, Any] = {}
        for item in body.get("items", []):
            cal = item["id"]
            if cal not in self.busy:
                calendars[cal] = {"errors": [{"domain": "global", "reason": "notFound"}], "busy": []}
                continue
            overlapping = [(s, e) for s, e in self.busy[cal] if s < hi and e > lo]
            calendars[cal] = {"busy": [{"start": _rfc3339(s), "end": _rfc3339(e)} for s, e in overlapping]}
        return Reply(
            200,
            {
                "kind": "calendar#freeBusy",
                "timeMin": body["timeMin"],
                "timeMax": body["timeMax"],
                "calendars": calendars,
            },
        )

    def _insert_event(self, request: Recorded, match: re.Match[str]) -> Reply:
        if (denied := self._authorized(request)) is not None:
            return denied
        calendar_id = unquote(match.group(1))
        body = request.json or {}
        event_id = body.get("id") or f"fake{next(self._seq):08d}"
        if not EVENT_ID.fullmatch(event_id):
            return google_error(400, "Invalid resource id value.", "invalid", state="INVALID_ARGUMENT")
        if (calendar_id, event_id) in self.events:
            return google_error(409, "The requested identifier already exists.", "duplicate", state="ALREADY_EXISTS")
        now = _rfc3339(datetime.now(UTC))
        event = {
            "kind": "calendar#event",
            "etag": f'"{next(self._seq)}"',
            "id": event_id,
            "status": "confirmed",
            "htmlLink": f"https://www.google.com/calendar/event?eid={event_id}",
            "created": now,
            "updated": now,
            "summary": body.get("summary", ""),
            "description": body.get("description", ""),
            "creator": {"email": calendar_id, "self": True},
            "organizer": {"email": calendar_id, "self": True},
            "start": body.get("start", {}),
            "end": body.get("end", {}),
            "iCalUID": f"{event_id}@google.com",
            "sequence": 0,
            "attendees": [{"email": a["email"], "responseStatus": "needsAction"} for a in body.get("attendees", [])],
            "reminders": {"useDefault": True},
            "eventType": "default",
        }
        self.events[(calendar_id, event_id)] = event
        return Reply(200, event)

    def _get_event(self, request: Recorded, match: re.Match[str]) -> Reply:
        if (denied := self._authorized(request)) is not None:
            return denied
        event = self.events.get((unquote(match.group(1)), unquote(match.group(2))))
        if event is None:
            return google_error(404, "Not Found", "notFound", state="NOT_FOUND")
        return Reply(200, event)

    # ---------------------------------------------------------------- Gmail

    def _send(self, request: Recorded, match: re.Match[str]) -> Reply:
        if (denied := self._authorized(request)) is not None:
            return denied
        body = request.json or {}
        raw = body.get("raw", "")
        try:
            mime = email.message_from_bytes(base64.urlsafe_b64decode(raw + "=" * (-len(raw) % 4)))
        except (ValueError, TypeError):
            return google_error(400, "Invalid value for ByteString", "invalidArgument", state="INVALID_ARGUMENT")
        if not mime.get("To"):
            return google_error(400, "Invalid To header", "invalidArgument", state="INVALID_ARGUMENT")
        message_id = f"18c{next(self._seq):013x}"
        thread_id = body.get("threadId") or message_id
        mailbox = self.mailboxes.get(self._bearer(request), "") if match.group(1) == "me" else unquote(match.group(1))
        self.sent.append(SentMessage(message_id, thread_id, raw, mime, mailbox))
        return Reply(200, {"id": message_id, "threadId": thread_id, "labelIds": ["SENT"]})

    def _profile(self, request: Recorded, match: re.Match[str]) -> Reply:
        """users.getProfile (discovery schema Profile: emailAddress, messagesTotal, threadsTotal, historyId)."""
        if (denied := self._authorized(request)) is not None:
            return denied
        user_id = unquote(match.group(1))
        mailbox = self.mailboxes.get(self._bearer(request), user_id) if user_id == "me" else user_id
        profile = {"emailAddress": mailbox, "messagesTotal": 0, "threadsTotal": 0, "historyId": str(self.history_id)}
        return Reply(200, profile)

    def _watch(self, request: Recorded, match: re.Match[str]) -> Reply:
        if (denied := self._authorized(request)) is not None:
            return denied
        user_id = unquote(match.group(1))
        mailbox = self.mailboxes.get(self._bearer(request), user_id) if user_id == "me" else user_id
        if (error := self.watch_errors.get(mailbox)) is not None:
            return error
        body = request.json or {}
        if not isinstance(body.get("topicName"), str) or not TOPIC_NAME.fullmatch(body["topicName"]):
            message = "Invalid topicName does not match projects/SOME_PROJECT/topics/*"
            return google_error(400, message, "invalidArgument", state="INVALID_ARGUMENT")
        labels, behavior = body.get("labelIds", []), body.get("labelFilterBehavior", "include")
        if not isinstance(labels, list) or not all(isinstance(label, str) for label in labels):
            return google_error(400, "Invalid value at 'label_ids'", "invalidArgument", state="INVALID_ARGUMENT")
        if not isinstance(behavior, str) or behavior.lower() not in LABEL_FILTER_BEHAVIORS:
            message = f"Invalid value at 'label_filter_behavior' ({behavior!r})"
            return google_error(400, message, "invalidArgument", state="INVALID_ARGUMENT")
        expiration = datetime.now(UTC) + WATCH_DURATION
        answer = {"historyId": str(self.history_id), "expiration": str(int(expiration.timestamp() * 1000))}
        self.watches.append({"mailbox": mailbox, "body": body, **answer})
        return Reply(200, answer)
