"""Act, then hold the answer: a fake provider does what the next matching request asks (the email is
sent, the event created) and keeps its answer back until the test releases it, so a test can kill
the caller between "the provider did it" and "we stored that it did".

    with ActThenHold(fake_google, "POST", GMAIL_SEND) as hold:
        ...                                  # a worker sends; Gmail has sent it, no answer yet
        wait_for(hold.held.is_set, what="the send held")
        victim.kill()
    # leaving the block releases the held answer (to a caller that may be gone) and restores the route

FakeSlack has its own (`hold_next`, `held`, `release`); this is the same for any FakeServer route
(tests/fakes/server.py), e.g. FakeGoogle's Gmail send and Calendar insert.
"""

from __future__ import annotations

import re
import threading
import time

from tests.fakes.server import FakeServer, Recorded, Reply, Route

# The FakeGoogle routes a chaos test holds (their patterns as tests/fakes/google.py registers them).
GMAIL_SEND = r"/gmail/v1/users/([^/]+)/messages/send"
CALENDAR_INSERT = r"/calendar/v3/calendars/([^/]+)/events"
# A held answer goes out after this long even if nobody releases it (no handler thread hangs forever).
HOLD_TIMEOUT_S = 60.0


class ActThenHold:
    """Wrap one route of `fake` (method + its exact pattern): the next request it serves after
    `arm()` (armed at entry) acts through the route, sets `held`, and answers only after `release()`,
    HOLD_TIMEOUT_S, or the fake stopping. Later requests are answered as usual."""

    def __init__(self, fake: FakeServer, method: str, pattern: str, *, timeout_s: float = HOLD_TIMEOUT_S) -> None:
        self.fake = fake
        self.method = method.upper()
        self.pattern = pattern
        self.timeout_s = timeout_s
        self.held = threading.Event()  # set once a request took effect and its answer waits
        self.request: Recorded | None = None  # the request whose answer is held
        self._armed = threading.Event()
        self._release = threading.Event()
        self._index: int | None = None
        self._original: Route | None = None

    def _find(self) -> int:
        for i, (method, pattern, _route) in enumerate(self.fake._routes):
            if method == self.method and pattern.pattern == self.pattern:
                return i
        raise LookupError(f"{type(self.fake).__name__} has no route {self.method} {self.pattern}")

    def install(self) -> ActThenHold:
        """Put the wrapper in place of the route and arm it."""
        self._index = self._find()
        method, pattern, route = self.fake._routes[self._index]
        self._original = route
        self.fake._routes[self._index] = (method, pattern, self._acting_then_holding)
        self.arm()
        return self

    def arm(self) -> None:
        """Hold the answer of the next matching request."""
        self.held.clear()
        self._release = threading.Event()  # a new one: a previous held answer keeps its own
        self._armed.set()

    def release(self) -> None:
        """Let the held answer go (to a caller that may no longer listen)."""
        self._release.set()

    def uninstall(self) -> None:
        """Release any held answer and put the original route back."""
        self._armed.clear()
        self.release()
        if self._index is not None and self._original is not None:
            method, pattern, _ = self.fake._routes[self._index]
            self.fake._routes[self._index] = (method, pattern, self._original)
        self._index = self._original = None

    def __enter__(self) -> ActThenHold:
        return self.install()

    def __exit__(self, *exc: object) -> None:
        self.uninstall()

    def _acting_then_holding(self, request: Recorded, match: re.Match[str]) -> Reply:
        assert self._original is not None
        reply = self._original(request, match)  # the provider acts
        if not self._armed.is_set():
            return reply
        self._armed.clear()
        released = self._release
        self.request = request
        self.held.set()
        deadline = time.monotonic() + self.timeout_s
        # a fake's handler thread, not a test: wait for release, the deadline or the fake stopping
        while not released.wait(0.05):
            if self.fake._stopping.is_set() or time.monotonic() >= deadline:
                break
        return reply
