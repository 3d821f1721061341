"""A local fake of the Slack Web API, driven by the real slack_sdk WebClient (`base_url=fake.url`).

It speaks the wire format: requests arrive as JSON (`chat.postMessage`, `chat.update`, `views.open`,
`chat.postEphemeral`) or form-encoded (`conversations.open`, `auth.test`), the bot token in
`Authorization: Bearer`; answers
have the shapes of the vendor samples in real-payloads/slack/api/ (`chat.postMessage.ok.json`,
`chat.update.ok.json`, `views.open.ok.json`, `error_invalid_auth.*.json`,
`ratelimited_429.http.json`). Every call is recorded (method, params, headers, time, status) and
failures can be scripted per method and channel: a 429 with `retry-after`, a Slack error such as
`channel_not_found`, or a 5xx.

Posted messages keep their `metadata` and are served back by `conversations.history` (a GET, as
slack_sdk sends it) in Slack's documented shape (docs.slack.dev/reference/methods/conversations.history:
newest first, `has_more`, `pin_count`, `response_metadata.next_cursor`; a message's `metadata`
{event_type, event_payload} only with `include_all_metadata`, as in java-slack-sdk's
json-logs/samples/api/conversations.history.json). `hold_next(method)` makes the next such call take
effect (the message is posted) and then keeps its answer back until `release()`, so a test can kill
the caller between Slack's side effect and the caller learning of it.

    with FakeSlack() as slack:
        slack.ratelimit_next("chat.postMessage", retry_after_s=1)
        ... WebClient(token=slack.token, base_url=slack.url) ...
        assert [c.status for c in slack.calls("chat.postMessage")] == [429, 200]

It also plays the `response_url`s of clicks: `response_url(channel, ts)` hands out a URL on the same
host (as `https://hooks.slack.com/actions/...` would be) tied to a posted message; a JSON POST to it
with `replace_original: true` replaces that message, any other is an ephemeral answer. Each is
recorded as a call of method "response_url" (`responses()`). Like Slack, a URL takes 5 posts: the
6th and later get 404 `used_url` (Slack's wording is not published; the status is what matters).
"""

from __future__ import annotations

import base64
import itertools
import json
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl, urlsplit

DEFAULT_TOKEN = "xoxb-fake-bot-token"
# As python-slack-sdk's own mock server answers a rate-limited call (ratelimited_429.http.json).
RATELIMITED_BODY = '{"ok":false,"error":"ratelimited"}'
RATELIMITED_HEADERS = {"content-type": "application/json;charset=utf-8", "connection": "close"}
JSON_CONTENT_TYPE = "application/json; charset=utf-8"
BOT = {"bot_id": "B19LU7CSY", "username": "proactive", "user": "U0FAKEBOT", "team": "T0FAKETEAM"}
RESPONSE_URL_PREFIX = "/actions/"
RESPONSE_URL_MAX_USES = 5  # Slack: 5 posts to one response_url, within 30 minutes
HISTORY_DEFAULT_LIMIT = 100  # conversations.history without `limit`
HELD_ANSWER_TIMEOUT_S = 60.0  # a held answer goes out after this long even if nobody releases it


@dataclass(frozen=True)
class Call:
    """One request the fake received and what it answered."""

    method: str
    params: dict[str, Any]
    headers: dict[str, str]
    at: float  # wall clock, time.time()
    monotonic: float  # time.monotonic(), for spacing measurements
    status: int
    response: dict[str, Any]

    @property
    def ok(self) -> bool:
        """True when the answer was a success."""
        return self.status == 200 and bool(self.response.get("ok"))


@dataclass
class _Scripted:
    method: str
    channel: str | None
    status: int
    body: str
    headers: dict[str, str] = field(default_factory=dict)


class FakeSlack:
    """A threaded HTTP server on 127.0.0.1:<free port> answering Slack Web API methods."""

    def __init__(self, token: str = DEFAULT_TOKEN) -> None:
        self.token = token
        self.tokens = {token}
        self._lock = threading.Lock()
        self._calls: list[Call] = []
        self._script: list[_Scripted] = []
        self._dms: dict[str, str] = {}
        self._dm_numbers = itertools.count(1)
        self._ts_numbers = itertools.count(1)
        self.messages: dict[tuple[str, str], dict[str, Any]] = {}
        self.unknown_users: set[str] = set()
        self._hooks: dict[str, tuple[str | None, str | None]] = {}  # response_url path -> message
        self._hook_uses: dict[str, int] = {}
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self._holds: list[tuple[str, str | None]] = []  # (method, channel) whose next answer is held
        self.held = threading.Event()  # set once a held call took effect and waits for release()
        self._release = threading.Event()
        # Seconds every Web API answer is held after the call took effect (a slow network or a busy
        # Slack): the window between "Slack posted it" and "we stored the ts" a crash can fall into.
        self.latency_s = 0.0
        self._stopping = threading.Event()

    # ------------------------------------------------------------------ lifecycle

    def start(self) -> FakeSlack:
        """Listen on a free port in a daemon thread."""
        self._stopping.clear()
        fake = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self) -> None:
                fake._handle(self)

            def do_GET(self) -> None:
                fake._handle(self)

            def log_message(self, format: str, *args: Any) -> None:
                return

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, name="fake-slack", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving and close the socket."""
        self._stopping.set()
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def __enter__(self) -> FakeSlack:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def url(self) -> str:
        """The base URL for WebClient / SLACK_API_URL (ends with '/')."""
        assert self._server is not None, "start() the fake first"
        return f"http://127.0.0.1:{self._server.server_address[1]}/api/"

    # ------------------------------------------------------------------ scripting and inspection

    def ratelimit_next(self, method: str, retry_after_s: int = 1, channel: str | None = None) -> None:
        """The next call of `method` (to `channel`, if given) gets a 429 with `retry-after`."""
        headers = {**RATELIMITED_HEADERS, "retry-after": str(retry_after_s)}
        self._push(_Scripted(method, channel, 429, RATELIMITED_BODY, headers))

    def fail_next(self, method: str, error: str, channel: str | None = None) -> None:
        """The next call of `method` (to `channel`) gets HTTP 200 `{"ok": false, "error": error}`."""
        self._push(_Scripted(method, channel, 200, json.dumps({"ok": False, "error": error})))

    def server_error_next(self, method: str, status: int = 500, channel: str | None = None) -> None:
        """The next call of `method` (to `channel`) gets an HTML 5xx page, as a load balancer sends."""
        self._push(_Scripted(method, channel, status, "<html><body><h1>Internal Server Error</h1></body></html>"))

    def hold_next(self, method: str, channel: str | None = None) -> None:
        """The next call of `method` (to `channel`) takes effect, sets `held`, and answers only after
        `release()` (or HELD_ANSWER_TIMEOUT_S): the caller can die between the two."""
        with self._lock:
            self.held.clear()
            self._release.clear()
            self._holds.append((method, channel))

    def release(self) -> None:
        """Let a held answer go (to a caller that may no longer listen)."""
        self._release.set()

    def _take_hold(self, method: str, params: Mapping[str, Any]) -> bool:
        with self._lock:
            for i, (m, channel) in enumerate(self._holds):
                if m == method and (channel is None or channel == params.get("channel")):
                    del self._holds[i]
                    return True
        return False

    def messages_with_metadata(self, key: str, value: str) -> list[tuple[str, str]]:
        """(channel, ts) of every posted message whose metadata payload has `key` == `value`."""
        with self._lock:
            return [
                where
                for where, msg in self.messages.items()
                if str(((msg.get("metadata") or {}).get("event_payload") or {}).get(key)) == value
            ]

    def _push(self, item: _Scripted) -> None:
        with self._lock:
            self._script.append(item)

    def calls(self, method: str | None = None, **params: Any) -> list[Call]:
        """Recorded calls, oldest first, filtered by method and by equal params (e.g. channel="C1")."""
        with self._lock:
            found = list(self._calls)
        return [
            c
            for c in found
            if (method is None or c.method == method) and all(c.params.get(k) == v for k, v in params.items())
        ]

    def response_url(self, channel: str | None = None, ts: str | None = None) -> str:
        """A new response_url for a click on the message (channel, ts)."""
        assert self._server is not None, "start() the fake first"
        with self._lock:
            number = len(self._hooks) + 1
            path = f"{RESPONSE_URL_PREFIX}{BOT['team']}/{number:06d}/hook{number}"
            self._hooks[path] = (channel, ts)
        return f"http://127.0.0.1:{self._server.server_address[1]}{path}"

    def responses(self, *, ephemeral: bool | None = None, url: str | None = None) -> list[Call]:
        """Posts to response_urls, oldest first: ephemeral answers (True), replacements (False) or all."""
        found = self.calls("response_url")
        if url is not None:
            found = [c for c in found if url.endswith(c.params["_path"])]
        if ephemeral is not None:
            found = [c for c in found if (not c.params.get("replace_original")) == ephemeral]
        return found

    def dm_channel(self, slack_user_id: str) -> str:
        """The DM channel id conversations.open returns for this user (stable per fake)."""
        with self._lock:
            if slack_user_id not in self._dms:
                self._dms[slack_user_id] = f"D{next(self._dm_numbers):08d}"
            return self._dms[slack_user_id]

    def reset(self) -> None:
        """Forget calls, scripts and messages (DM channel ids stay stable)."""
        with self._lock:
            self._calls.clear()
            self._script.clear()
            self.messages.clear()
            self._holds.clear()

    # ------------------------------------------------------------------ the HTTP side

    def _parse(self, handler: BaseHTTPRequestHandler) -> tuple[str, dict[str, Any], dict[str, str]]:
        parts = urlsplit(handler.path)
        method = parts.path.rsplit("/", 1)[-1]
        params: dict[str, Any] = dict(parse_qsl(parts.query))
        length = int(handler.headers.get("Content-Length") or 0)
        raw = handler.rfile.read(length) if length else b""
        content_type = (handler.headers.get("Content-Type") or "").lower()
        if raw and content_type.startswith("application/json"):
            params.update(json.loads(raw.decode("utf-8")))
        elif raw:
            params.update(parse_qsl(raw.decode("utf-8"), keep_blank_values=True))
        return method, params, {k.lower(): v for k, v in handler.headers.items()}

    def _token_ok(self, params: Mapping[str, Any], headers: Mapping[str, str]) -> str | None:
        """None when the token is good, else Slack's error code."""
        auth = headers.get("authorization", "")
        token = auth[len("Bearer ") :] if auth.startswith("Bearer ") else params.get("token")
        if not token:
            return "not_authed"
        return None if token in self.tokens else "invalid_auth"

    def _scripted(self, method: str, params: Mapping[str, Any]) -> _Scripted | None:
        with self._lock:
            for i, item in enumerate(self._script):
                if item.method == method and (item.channel is None or item.channel == params.get("channel")):
                    return self._script.pop(i)
        return None

    def _handle(self, handler: BaseHTTPRequestHandler) -> None:
        if urlsplit(handler.path).path.startswith(RESPONSE_URL_PREFIX):
            self._hook(handler)
            return
        method, params, headers = self._parse(handler)
        status, body, extra = 200, "", {"content-type": JSON_CONTENT_TYPE}
        token_error = self._token_ok(params, headers)
        scripted = None if token_error else self._scripted(method, params)
        if token_error:
            body = json.dumps({"ok": False, "error": token_error})
        elif scripted is not None:
            status, body = scripted.status, scripted.body
            extra = scripted.headers or {"content-type": "text/html" if status >= 500 else JSON_CONTENT_TYPE}
        else:
            body = json.dumps(self._answer(method, params))
        try:
            parsed = json.loads(body)
        except ValueError:
            parsed = {"ok": False, "raw": body}
        with self._lock:
            self._calls.append(Call(method, params, headers, time.time(), time.monotonic(), status, parsed))
        if not token_error and scripted is None and self._take_hold(method, params):
            self.held.set()
            self._release.wait(HELD_ANSWER_TIMEOUT_S)
        elif self.latency_s:
            self._stopping.wait(self.latency_s)  # ends at once when the fake stops
        data = body.encode("utf-8")
        try:
            handler.send_response(status)
            for key, value in extra.items():
                handler.send_header(key, value)
            handler.send_header("Content-Length", str(len(data)))
            handler.end_headers()
            handler.wfile.write(data)
        except OSError:  # the caller is gone (killed while its answer was held)
            handler.close_connection = True

    def _hook(self, handler: BaseHTTPRequestHandler) -> None:
        """A POST to a response_url: replace the clicked message, or answer ephemerally."""
        path = urlsplit(handler.path).path
        _method, params, headers = self._parse(handler)
        with self._lock:
            known = path in self._hooks
            uses = self._hook_uses[path] = self._hook_uses.get(path, 0) + 1
            target = self._hooks.get(path, (None, None))
        if not known:
            status, answer = 404, {"ok": False, "error": "invalid_url"}
        elif uses > RESPONSE_URL_MAX_USES:
            status, answer = 404, {"ok": False, "error": "used_url"}
        else:
            status, answer = 200, {"ok": True}
            if params.get("replace_original") is True:
                with self._lock:
                    msg = self.messages.get(target)  # type: ignore[arg-type]
                    if msg is not None:
                        msg.update(text=params.get("text", msg["text"]), edits=msg["edits"] + 1)
                        msg["blocks"] = params.get("blocks")
        call = Call("response_url", {**params, "_path": path}, headers, time.time(), time.monotonic(), status, answer)
        with self._lock:
            self._calls.append(call)
        data = json.dumps(answer).encode("utf-8")
        handler.send_response(status)
        handler.send_header("content-type", JSON_CONTENT_TYPE)
        handler.send_header("Content-Length", str(len(data)))
        handler.end_headers()
        handler.wfile.write(data)

    # ------------------------------------------------------------------ methods

    def _answer(self, method: str, params: dict[str, Any]) -> dict[str, Any]:
        handlers = {
            "chat.postMessage": self._post_message,
            "chat.update": self._update,
            "conversations.open": self._open,
            "views.open": self._views_open,
            "chat.postEphemeral": self._post_ephemeral,
            "auth.test": self._auth_test,
            "conversations.history": self._history,
        }
        fn = handlers.get(method)
        return fn(params) if fn else {"ok": False, "error": "unknown_method"}

    def _next_ts(self) -> str:
        return f"{int(time.time())}.{next(self._ts_numbers):06d}"

    def _post_message(self, params: dict[str, Any]) -> dict[str, Any]:
        channel = params.get("channel")
        if not channel:
            return {"ok": False, "error": "channel_not_found"}
        if not params.get("text") and not params.get("blocks"):
            return {"ok": False, "error": "no_text"}
        ts = self._next_ts()
        message = {
            "bot_id": BOT["bot_id"],
            "subtype": "bot_message",
            "text": params.get("text", ""),
            "ts": ts,
            "type": "message",
            "username": BOT["username"],
        }
        if params.get("blocks"):
            message["blocks"] = params["blocks"]
        metadata = params.get("metadata")
        if isinstance(metadata, str):  # a form-encoded call sends it as a JSON string
            try:
                metadata = json.loads(metadata)
            except ValueError:
                return {"ok": False, "error": "invalid_metadata_format"}
        if metadata is not None:  # Slack requires an event_type and an object payload
            if not isinstance(metadata, dict) or not metadata.get("event_type"):
                return {"ok": False, "error": "invalid_metadata_format"}
            if not isinstance(metadata.get("event_payload", {}), dict):
                return {"ok": False, "error": "invalid_metadata_format"}
            message["metadata"] = metadata
        with self._lock:
            self.messages[(channel, ts)] = {
                "text": params.get("text", ""),
                "blocks": params.get("blocks"),
                "edits": 0,
                "metadata": metadata,
            }
        return {"channel": channel, "message": message, "ok": True, "ts": ts}

    def _update(self, params: dict[str, Any]) -> dict[str, Any]:
        key = (params.get("channel"), params.get("ts"))
        with self._lock:
            msg = self.messages.get(key)  # type: ignore[arg-type]
            if msg is None:
                return {"ok": False, "error": "message_not_found"}
            msg.update(text=params.get("text", msg["text"]), edits=msg["edits"] + 1)
            if "blocks" in params:
                msg["blocks"] = params["blocks"]
        text = params.get("text", "")
        return {
            "channel": key[0],
            "message": {"text": text, "user": BOT["user"]},
            "ok": True,
            "text": text,
            "ts": key[1],
        }

    def _history(self, params: dict[str, Any]) -> dict[str, Any]:
        """conversations.history: the channel's messages between `oldest` and `latest` (exclusive
        unless `inclusive`), newest first, `limit` per page, paged by `cursor`."""
        channel = params.get("channel")
        if not channel:
            return {"ok": False, "error": "channel_not_found"}
        inclusive = _flag(params.get("inclusive"))
        oldest = float(params.get("oldest") or 0)
        latest = float(params.get("latest") or "inf")
        cursor = str(params.get("cursor") or "")
        if cursor:
            try:
                latest = float(base64.b64decode(cursor).decode().removeprefix("next_ts:"))
                inclusive = False
            except ValueError:
                return {"ok": False, "error": "invalid_cursor"}
        limit = max(1, min(int(params.get("limit") or HISTORY_DEFAULT_LIMIT), 999))
        with self._lock:
            found = [
                (ts, dict(msg))
                for (ch, ts), msg in self.messages.items()
                if ch == channel
                and (oldest <= float(ts) if inclusive else oldest < float(ts))
                and (float(ts) <= latest if inclusive else float(ts) < latest)
            ]
        found.sort(key=lambda item: _ts_key(item[0]), reverse=True)
        page, more = found[:limit], len(found) > limit
        with_metadata = _flag(params.get("include_all_metadata"))
        messages = [self._history_message(ts, msg, with_metadata) for ts, msg in page]
        next_cursor = base64.b64encode(f"next_ts:{page[-1][0]}".encode()).decode() if more else ""
        return {
            "ok": True,
            "messages": messages,
            "has_more": more,
            "pin_count": 0,
            "response_metadata": {"next_cursor": next_cursor},
        }

    @staticmethod
    def _history_message(ts: str, msg: Mapping[str, Any], with_metadata: bool) -> dict[str, Any]:
        message: dict[str, Any] = {
            "type": "message",
            "subtype": "bot_message",
            "text": msg.get("text", ""),
            "ts": ts,
            "bot_id": BOT["bot_id"],
            "username": BOT["username"],
        }
        if msg.get("blocks"):
            message["blocks"] = msg["blocks"]
        if msg.get("edits"):
            message["edited"] = {"user": BOT["user"], "ts": ts}
        if with_metadata and msg.get("metadata"):
            message["metadata"] = msg["metadata"]
        return message

    def _post_ephemeral(self, params: dict[str, Any]) -> dict[str, Any]:
        if not params.get("channel"):
            return {"ok": False, "error": "channel_not_found"}
        if not params.get("user"):
            return {"ok": False, "error": "user_not_in_channel"}
        return {"ok": True, "message_ts": self._next_ts()}

    def _open(self, params: dict[str, Any]) -> dict[str, Any]:
        users = [u for u in str(params.get("users") or "").split(",") if u]
        if not users:
            return {"ok": False, "error": "users_list_not_supplied"}
        if any(u in self.unknown_users for u in users):
            return {"ok": False, "error": "user_not_found"}
        return {"ok": True, "channel": {"id": self.dm_channel(",".join(users))}}

    def _views_open(self, params: dict[str, Any]) -> dict[str, Any]:
        view = params.get("view")
        if isinstance(view, str):
            view = json.loads(view)
        if not params.get("trigger_id") or not isinstance(view, dict):
            return {
                "error": "invalid_arguments",
                "ok": False,
                "response_metadata": {"messages": ["invalid `trigger_id`"]},
            }
        return {
            "ok": True,
            "view": {
                **view,
                "app_id": "AA4928AQ",
                "bot_id": BOT["bot_id"],
                "id": f"V{next(self._ts_numbers):08d}",
                "state": {"values": {}},
                "team_id": BOT["team"],
            },
        }

    def _auth_test(self, params: dict[str, Any]) -> dict[str, Any]:
        return {
            "ok": True,
            "url": "https://fake.slack.com/",
            "team": "Fake team",
            "user": "proactive",
            "team_id": BOT["team"],
            "user_id": BOT["user"],
            "bot_id": BOT["bot_id"],
        }


def _flag(value: Any) -> bool:
    """A boolean argument as slack_sdk sends it (`1`/`0`, or true/false in a JSON body)."""
    return value is True or str(value).lower() in ("1", "true")


def _ts_key(ts: str) -> tuple[int, int]:
    """A message ts as a sortable pair (seconds, sequence)."""
    seconds, _, fraction = ts.partition(".")
    return int(seconds), int(fraction or 0)
