"""A TCP proxy a test can pause: a broker that hangs without closing its connections (as a stopped
process or a stalled network would), for servers the test cannot SIGSTOP (RabbitMQ is shared).

While paused, connections are still accepted (the kernel would accept them too) but no byte moves
in either direction; `resume()` lets everything through again. While refusing (`refuse()`, a broker
that is down), a new connection is reset as soon as it arrives; `accept()` ends that. Threads only;
`close()` ends them.
"""

from __future__ import annotations

import contextlib
import select
import socket
import struct
import threading

# How often a pump re-checks the pause and close flags while its socket is quiet (seconds).
CHECK_S = 0.05


class PausableProxy:
    """Forwards 127.0.0.1:<port> to `target`; `pause()` / `resume()` stop and restart the traffic."""

    def __init__(self, target: tuple[str, int]) -> None:
        self.target = target
        self._flowing = threading.Event()
        self._flowing.set()
        self._refusing = threading.Event()
        self._closed = threading.Event()
        self._sockets: list[socket.socket] = []
        self._listener = socket.create_server(("127.0.0.1", 0))
        self._listener.settimeout(CHECK_S)
        self.port: int = self._listener.getsockname()[1]
        threading.Thread(target=self._accept, daemon=True, name="proxy-accept").start()

    def pause(self) -> None:
        """Stop moving bytes (connections stay open)."""
        self._flowing.clear()

    def resume(self) -> None:
        """Move bytes again."""
        self._flowing.set()

    def refuse(self) -> None:
        """Reset every new connection at once (open ones are left alone)."""
        self._refusing.set()

    def accept(self) -> None:
        """Forward new connections again."""
        self._refusing.clear()

    def close(self) -> None:
        """Stop the proxy and close every connection."""
        self._closed.set()
        self._flowing.set()
        for sock in [self._listener, *self._sockets]:
            with contextlib.suppress(OSError):
                sock.close()

    def _accept(self) -> None:
        while not self._closed.is_set():
            try:
                client, _ = self._listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            if self._refusing.is_set():  # SO_LINGER 0: close sends a reset, as a closed port does
                client.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                client.close()
                continue
            try:
                upstream = socket.create_connection(self.target)
            except OSError:
                client.close()
                continue
            self._sockets += [client, upstream]
            threading.Thread(target=self._pump, args=(client, upstream), daemon=True).start()
            threading.Thread(target=self._pump, args=(upstream, client), daemon=True).start()

    def _pump(self, src: socket.socket, dst: socket.socket) -> None:
        while not self._closed.is_set():
            if not self._flowing.wait(CHECK_S):
                continue
            try:
                readable, _, _ = select.select([src], [], [], CHECK_S)
                if not readable:
                    continue
                data = src.recv(65536)
            except (OSError, ValueError):  # closed under us
                break
            if not data:
                break
            while not self._flowing.wait(CHECK_S):  # paused between reading and writing: hold it
                if self._closed.is_set():
                    return
            try:
                dst.sendall(data)
            except OSError:
                break
        for sock in (src, dst):
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
