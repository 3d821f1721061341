"""The Http under the Google clients never sends a POST twice by itself: plain httplib2 re-sends any
request whose connection closed without a status line (it takes it for a stale keep-alive socket),
and for `messages.send` that is a second email. Driven against a tiny local HTTP server that counts
what it received and, when told, closes the connection after reading a request without answering."""

from __future__ import annotations

import socketserver
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field

import httplib2
import pytest

from worker.google.client import NoAnswer, NoResendHttp

# What the server does with each request, in order: "drop" (close without an answer), "answer"
# (200, connection kept alive), "answer-then-close" (200, then the server closes the idle socket).
DROP, ANSWER, ANSWER_THEN_CLOSE = "drop", "answer", "answer-then-close"


@dataclass
class CountingServer:
    """Requests received as "METHOD /path", and the scripted actions (then "answer" for the rest)."""

    received: list[str] = field(default_factory=list)
    actions: list[str] = field(default_factory=list)
    url: str = ""


class _Handler(socketserver.StreamRequestHandler):
    server: _Server

    def handle(self) -> None:
        state = self.server.state
        while True:
            line = self.rfile.readline()
            if not line:
                return
            length = 0
            while (header := self.rfile.readline()) not in (b"\r\n", b"\n", b""):
                name, _, value = header.decode("latin-1").partition(":")
                length = int(value) if name.strip().lower() == "content-length" else length
            self.rfile.read(length)
            method, path = line.decode("latin-1").split()[:2]
            state.received.append(f"{method} {path}")
            action = state.actions.pop(0) if state.actions else ANSWER
            if action == DROP:
                return  # the socket closes with nothing written
            self.wfile.write(b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 2\r\n\r\nok")
            self.wfile.flush()
            if action == ANSWER_THEN_CLOSE:
                return


class _Server(socketserver.ThreadingTCPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, state: CountingServer) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.state = state


@pytest.fixture
def server() -> Iterator[CountingServer]:
    state = CountingServer()
    with _Server(state) as httpd:
        thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True)
        thread.start()
        state.url = f"http://127.0.0.1:{httpd.server_address[1]}"
        yield state
        httpd.shutdown()
        thread.join(timeout=5)


def test_plain_httplib2_sends_a_dropped_post_twice(server: CountingServer):
    """The hole itself: why the Google clients do not use a plain httplib2.Http."""
    server.actions = [DROP]
    response, _ = httplib2.Http(timeout=5).request(f"{server.url}/send", "POST", body="x")
    assert response.status == 200 and server.received == ["POST /send", "POST /send"]


@pytest.mark.parametrize("method", ["POST", "PATCH"])
def test_a_write_whose_answer_never_comes_is_sent_once_and_raises(server: CountingServer, method: str):
    server.actions = [DROP]
    http = NoResendHttp(timeout=5)
    with pytest.raises(NoAnswer):
        http.request(f"{server.url}/send", method, body="x")
    assert server.received == [f"{method} /send"]
    response, content = http.request(f"{server.url}/after", "GET")  # the Http stays usable
    assert (response.status, content) == (200, b"ok")


def test_a_dropped_get_is_still_sent_again(server: CountingServer):
    server.actions = [DROP]
    response, _ = NoResendHttp(timeout=5).request(f"{server.url}/list", "GET")
    assert response.status == 200 and server.received == ["GET /list", "GET /list"]


def test_a_post_after_the_server_closed_the_idle_connection_goes_on_a_fresh_one(server: CountingServer):
    """A kept-alive socket the server closed while idle is not taken for a lost answer: the POST is
    sent on a new connection and answered, once."""
    server.actions = [ANSWER_THEN_CLOSE]
    http = NoResendHttp(timeout=5)
    assert http.request(f"{server.url}/list", "GET")[0].status == 200
    response, _ = http.request(f"{server.url}/send", "POST", body="x")
    assert response.status == 200 and server.received == ["GET /list", "POST /send"]
