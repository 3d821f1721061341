"""A tiny threaded HTTP server for fakes of external APIs: records every request, answers from a
subclass's routes, and lets a test queue scripted answers (a 429 with Retry-After, a 500, a stall,
a malformed body) that win over the routes, once each, in order.

    with FakeLLM() as fake:                       # starts on 127.0.0.1:<free port>
        fake.script("POST", "/v1/chat/completions", Reply(429, {"error": ...}, {"Retry-After": "7"}))
        ...
        assert fake.requests[-1].json["model"] == "m"

A scripted `delay_s` makes the fake hold its answer (to provoke a client timeout); the wait ends at
once when the server stops, so no test waits on a stalled handler.

A scripted `Reply(drop=True)` lets the route act as usual (the message is sent, the event created),
then closes the connection without a status line: the server did the work and the answer was lost
(a client sees RemoteDisconnected). A route may return a dropping reply too.
"""

from __future__ import annotations

import json
import re
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Self
from urllib.parse import parse_qs, urlsplit

POLL_INTERVAL_S = 0.02  # how often serve_forever checks for shutdown: bounds each fake's stop time


@dataclass(frozen=True)
class Recorded:
    """One request as the fake received it."""

    method: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]  # lower-cased names
    body: bytes

    @property
    def json(self) -> Any:
        """The body parsed as JSON (None when empty)."""
        return json.loads(self.body) if self.body else None

    @property
    def form(self) -> dict[str, str]:
        """The body parsed as application/x-www-form-urlencoded (first value of each key)."""
        return {k: v[0] for k, v in parse_qs(self.body.decode()).items()}

    def arg(self, name: str) -> str | None:
        """First value of a query parameter."""
        values = self.query.get(name)
        return values[0] if values else None


@dataclass
class Reply:
    """An answer: status, body (dict/list -> JSON, str/bytes as is), headers, optional delay; `drop`:
    no answer at all (scripted: after the route acted), the connection is closed instead."""

    status: int = 200
    body: Any = None
    headers: dict[str, str] = field(default_factory=dict)
    delay_s: float = 0.0
    drop: bool = False

    def encoded(self) -> tuple[bytes, str]:
        if isinstance(self.body, bytes):
            return self.body, "application/octet-stream"
        if isinstance(self.body, str):
            return self.body.encode(), "text/plain; charset=utf-8"
        if self.body is None:
            return b"", "application/json"
        return json.dumps(self.body).encode(), "application/json; charset=utf-8"


Route = Callable[[Recorded, re.Match[str]], Reply]


class FakeServer:
    """Base of the fakes: subclasses register routes with `self.route(method, regex, handler)`."""

    def __init__(self) -> None:
        self.requests: list[Recorded] = []
        self._routes: list[tuple[str, re.Pattern[str], Route]] = []
        self._scripted: list[tuple[str, re.Pattern[str], Reply]] = []
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._httpd: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # -------------------------------------------------------------- configuration

    def route(self, method: str, path_regex: str, handler: Route) -> None:
        """Answer `method` on paths fully matching `path_regex` with `handler(request, match)`."""
        self._routes.append((method.upper(), re.compile(path_regex), handler))

    def script(self, method: str, path_regex: str, *replies: Reply) -> None:
        """Queue answers for matching requests; each is used once, before the routes."""
        with self._lock:
            self._scripted.extend((method.upper(), re.compile(path_regex), r) for r in replies)

    def requests_to(self, method: str, path_regex: str) -> list[Recorded]:
        """The recorded requests matching a method and a path regex."""
        pattern = re.compile(path_regex)
        return [r for r in self.requests if r.method == method.upper() and pattern.fullmatch(r.path)]

    # -------------------------------------------------------------- lifecycle

    @property
    def url(self) -> str:
        """Base URL, no trailing slash."""
        assert self._httpd is not None, "fake server not started"
        host, port = self._httpd.server_address[:2]
        return f"http://{host}:{port}"

    def start(self) -> Self:
        """Listen on 127.0.0.1 on a free port and serve in a daemon thread."""
        fake = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            # Headers and body go out in two writes; with Nagle on, a keep-alive client's delayed ACK
            # held every answer ~40 ms (real Google answers over HTTP/2 without that stall).
            disable_nagle_algorithm = True

            # http.server dispatches on do_<METHOD>; every method goes through the same recorder.
            def do_GET(self) -> None:
                fake._dispatch(self)

            def do_POST(self) -> None:
                fake._dispatch(self)

            def do_PUT(self) -> None:
                fake._dispatch(self)

            def do_PATCH(self) -> None:
                fake._dispatch(self)

            def do_DELETE(self) -> None:
                fake._dispatch(self)

            def log_message(self, format: str, *args: Any) -> None:
                pass  # keep test output clean

        class Server(ThreadingHTTPServer):
            daemon_threads = True

            def handle_error(self, request: Any, client_address: Any) -> None:
                pass  # a client that gave up (timeout) closes the socket under us: expected

        self._httpd = Server(("127.0.0.1", 0), Handler)
        self._thread = threading.Thread(
            target=self._httpd.serve_forever,
            kwargs={"poll_interval": POLL_INTERVAL_S},
            name=type(self).__name__,
            daemon=True,
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        """Release stalled handlers, stop serving and close the socket."""
        self._stopping.set()
        if self._httpd is not None:
            self._httpd.shutdown()
            self._httpd.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -------------------------------------------------------------- dispatch

    def _dispatch(self, handler: BaseHTTPRequestHandler) -> None:
        parts = urlsplit(handler.path)
        length = int(handler.headers.get("Content-Length") or 0)
        body = handler.rfile.read(length) if length else b""
        request = Recorded(
            method=handler.command,
            path=parts.path,
            query=parse_qs(parts.query, keep_blank_values=True),
            headers={k.lower(): v for k, v in handler.headers.items()},
            body=body,
        )
        with self._lock:
            self.requests.append(request)
            reply = self._take_scripted(request)
        if reply is None:
            reply = self._route(request)
        elif reply.drop:
            self._route(request)  # the route acts; its answer is lost
        if reply.delay_s and self._stopping.wait(reply.delay_s):
            return
        if reply.drop:
            handler.close_connection = True  # the socket closes with nothing written: no status line
            return
        payload, content_type = reply.encoded()
        handler.send_response(reply.status)
        headers = {"Content-Type": content_type, **reply.headers, "Content-Length": str(len(payload))}
        for name, value in headers.items():
            handler.send_header(name, value)
        handler.end_headers()
        handler.wfile.write(payload)

    def _take_scripted(self, request: Recorded) -> Reply | None:
        for index, (method, pattern, reply) in enumerate(self._scripted):
            if method == request.method and pattern.fullmatch(request.path):
                del self._scripted[index]
                return reply
        return None

    def _route(self, request: Recorded) -> Reply:
        for method, pattern, handler in self._routes:
            match = pattern.fullmatch(request.path)
            if method == request.method and match:
                return handler(request, match)
        return Reply(404, {"error": {"code": 404, "message": f"fake: no route for {request.method} {request.path}"}})
