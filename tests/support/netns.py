"""A network namespace of a test's own, joined to this one by a veth pair, so the test can cut one
process off the network (a partition) and restore it, with real sockets that hang, not refuse.

    with veth_namespace() as ns:                       # ip netns add + veth 10.a.b.1/30 <-> 10.a.b.2/30
        with reachable_from(ns, env) as ns_env:       # 127.0.0.1:PORT in env -> 10.a.b.1:PORT' (socat)
            WorkerProcess(ns_env, ..., prefix=ns.prefix).start()   # `ip netns exec NS ...`
            ns.cut()                                   # ip link set <host side> down: packets vanish
            ns.restore()                               # up again: TCP retransmits, sockets carry on

Services here listen on 127.0.0.1 only, which a namespace cannot reach: `reachable_from` starts a
`socat` forwarder on the host side address for every 127.0.0.1:PORT found in an env's values. The
namespace and the veth pair are always removed (the namespace's end removes its side of the pair).
Needs root (CAP_NET_ADMIN) and `ip`, `socat`: `unavailable()` says precisely what is missing.
"""

from __future__ import annotations

import contextlib
import os
import random
import re
import shutil
import signal
import socket
import subprocess
import uuid
from collections.abc import Iterator, Mapping
from dataclasses import dataclass

from tests.support.waiting import wait_for

# The /30 subnets the namespaces take: 10.<SUBNET_SECOND>.<0-255>.0/30 (one not on any interface).
SUBNET_SECOND = range(200, 251)
# How long a forwarder may take to listen (seconds).
FORWARDER_READY_S = 10.0
LOCALHOST_PORT = re.compile(r"127\.0\.0\.1:(\d+)")


def _ip(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(["ip", *args], capture_output=True, text=True, timeout=30, check=False)
    if check and done.returncode != 0:
        raise RuntimeError(f"`ip {' '.join(args)}` exited {done.returncode}: {done.stderr.strip()}")
    return done


def unavailable() -> str | None:
    """Why a namespace with a forwarded service cannot be made here (a skip reason), or None."""
    for tool in ("ip", "socat"):
        if shutil.which(tool) is None:
            return f"`{tool}` is not installed (needed to put a worker in a network namespace of its own)"
    probe = f"pa-probe-{uuid.uuid4().hex[:6]}"
    done = _ip("netns", "add", probe, check=False)
    if done.returncode != 0:
        return f"`ip netns add` is not permitted here ({done.stderr.strip()}); run as root (CAP_NET_ADMIN)"
    _ip("netns", "del", probe, check=False)
    return None


@dataclass
class Namespace:
    """A namespace and its veth pair: `host_addr` on this side, `ns_addr` inside."""

    name: str
    host_if: str
    ns_if: str
    host_addr: str
    ns_addr: str

    @property
    def prefix(self) -> list[str]:
        """The command prefix that runs a program inside the namespace."""
        return ["ip", "netns", "exec", self.name]

    def cut(self) -> None:
        """Take the host side of the link down: whatever the namespace sends is lost, unanswered."""
        _ip("link", "set", self.host_if, "down")

    def restore(self) -> None:
        """Bring the link up again."""
        _ip("link", "set", self.host_if, "up")


def _free_subnet() -> tuple[str, str]:
    """(host address, namespace address) of a 10.x.y.0/30 no interface of this machine uses."""
    used = _ip("-o", "-4", "addr", "show").stdout
    for _ in range(100):
        second, third = random.choice(SUBNET_SECOND), random.randrange(256)
        if f"10.{second}.{third}." not in used:
            return f"10.{second}.{third}.1", f"10.{second}.{third}.2"
    raise RuntimeError("no free 10.x.y.0/30 subnet found for a test namespace")


@contextlib.contextmanager
def veth_namespace() -> Iterator[Namespace]:
    """A new namespace with loopback up and a veth pair to this one; removed however the test ends."""
    tag = uuid.uuid4().hex[:6]
    host_addr, ns_addr = _free_subnet()
    ns = Namespace(f"pa-{tag}", f"pvh{tag}", f"pvn{tag}", host_addr, ns_addr)
    try:
        _ip("netns", "add", ns.name)
        _ip("link", "add", ns.host_if, "type", "veth", "peer", "name", ns.ns_if)
        _ip("link", "set", ns.ns_if, "netns", ns.name)
        _ip("addr", "add", f"{host_addr}/30", "dev", ns.host_if)
        _ip("link", "set", ns.host_if, "up")
        inside = ["netns", "exec", ns.name, "ip"]
        _ip(*inside, "addr", "add", f"{ns_addr}/30", "dev", ns.ns_if)
        _ip(*inside, "link", "set", ns.ns_if, "up")
        _ip(*inside, "link", "set", "lo", "up")
        yield ns
    finally:
        _ip("link", "del", ns.host_if, check=False)  # removes both ends
        _ip("netns", "del", ns.name, check=False)


def _listening(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=1.0):
            return True
    except OSError:
        return False


@contextlib.contextmanager
def reachable_from(ns: Namespace, env: Mapping[str, str]) -> Iterator[dict[str, str]]:
    """`env` for a process inside `ns`: every 127.0.0.1:PORT in its values becomes the host side
    address and a port where a `socat` forwarder relays to 127.0.0.1:PORT. The forwarders stop
    when the block ends."""
    ports = sorted({int(p) for value in env.values() for p in LOCALHOST_PORT.findall(value)})
    forwarders: list[subprocess.Popen[bytes]] = []
    mapping: dict[int, int] = {}
    try:
        for port in ports:
            with socket.socket() as probe:
                probe.bind((ns.host_addr, 0))
                mapping[port] = probe.getsockname()[1]
            listen = f"TCP-LISTEN:{mapping[port]},bind={ns.host_addr},reuseaddr,fork"
            forwarders.append(
                subprocess.Popen(
                    ["socat", listen, f"TCP:127.0.0.1:{port}"],
                    stdout=subprocess.DEVNULL,
                    stderr=subprocess.DEVNULL,
                    start_new_session=True,  # its forked relays in one group, stopped together
                )
            )
            wait_for(
                lambda p=mapping[port]: _listening(ns.host_addr, p),
                timeout_s=FORWARDER_READY_S,
                what=f"socat forwarder {ns.host_addr}:{mapping[port]} -> 127.0.0.1:{port}",
            )
        yield {
            key: LOCALHOST_PORT.sub(lambda m: f"{ns.host_addr}:{mapping[int(m.group(1))]}", value)
            for key, value in env.items()
        }
    finally:
        for proc in forwarders:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGTERM)
            proc.wait(timeout=10)
