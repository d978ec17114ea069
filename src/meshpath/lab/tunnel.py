"""The tunnel emulator: one tun in the edge namespace, one in conn, packets relayed between.

Run as ``python -m meshpath.lab.tunnel --edge-ns NS --conn-ns NS --status FILE`` (the lab
starts it inside the edge namespace so ``ip netns pids`` finds it at teardown). It stands in
for the WARP session: whatever the edge writes to its tun appears on ``CloudflareWARP`` in
conn, and back. MTU 1280 like WARP's. ``SIGUSR1`` pauses the relay (packets are read and
dropped: a tunnel outage), ``SIGUSR2`` resumes, ``SIGHUP`` is a WARP reconnect (the conn
tun is closed, so the kernel deletes ``CloudflareWARP`` with every route and address on it,
and opened again: a new device with a new ifindex), ``SIGTERM`` ends it. Packet counts are
written to the JSON status file (atomically) whenever they change, at most every 100 ms.

A tun device is created in the network namespace of the thread calling ``TUNSETIFF``, so
each open happens between ``setns`` into the target namespace and ``setns`` back home.
"""

from __future__ import annotations

import argparse
import ctypes
import fcntl
import json
import os
import select
import signal
import socket
import struct
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path
from types import FrameType

TUNSETIFF = 0x400454CA
IFF_TUN = 0x0001
IFF_NO_PI = 0x1000
IFF_UP = 0x1
SIOCGIFFLAGS = 0x8913
SIOCSIFFLAGS = 0x8914
SIOCSIFMTU = 0x8922
CLONE_NEWNET = 0x40000000
MTU = 1280

_libc = ctypes.CDLL(None, use_errno=True)


def _setns(fd: int) -> None:
    if _libc.setns(fd, CLONE_NEWNET) != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"setns: {os.strerror(err)}")


@contextmanager
def in_netns(name: str) -> Iterator[None]:
    """Run the body with this thread in network namespace ``name``, then return home."""
    home = os.open("/proc/thread-self/ns/net", os.O_RDONLY)
    target = os.open(f"/run/netns/{name}", os.O_RDONLY)
    try:
        _setns(target)
        yield
    finally:
        _setns(home)
        os.close(target)
        os.close(home)


def _ifreq(name: str, fmt: str, *values: int) -> bytes:
    return struct.pack(f"16s{fmt}", name.encode(), *values).ljust(40, b"\0")


def _bring_up(name: str, mtu: int) -> None:
    """Set MTU and IFF_UP with ioctls on a socket of the current namespace."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        fcntl.ioctl(s, SIOCSIFMTU, _ifreq(name, "i", mtu))
        got = fcntl.ioctl(s, SIOCGIFFLAGS, _ifreq(name, "H", 0))
        flags = struct.unpack("16sH", got[:18])[1]
        fcntl.ioctl(s, SIOCSIFFLAGS, _ifreq(name, "H", flags | IFF_UP))


def open_tun(netns: str, name: str, mtu: int = MTU) -> int:
    """Create (and hold open) tun ``name`` inside ``netns``; returns its fd."""
    with in_netns(netns):
        fd = os.open("/dev/net/tun", os.O_RDWR)
        try:
            fcntl.ioctl(fd, TUNSETIFF, struct.pack("16sH", name.encode(), IFF_TUN | IFF_NO_PI))
            _bring_up(name, mtu)
        except OSError:
            os.close(fd)
            raise
    return fd


@dataclass(slots=True)
class Status:
    pid: int
    edge: str
    conn: str
    mtu: int
    ready: bool = False
    paused: bool = False
    edge_to_conn: int = 0
    conn_to_edge: int = 0
    dropped: int = 0
    reconnects: int = 0


class Relay:
    """Copies packets between two tun fds, counting them; pausable by signals."""

    def __init__(
        self, edge_fd: int, conn_fd: int, status: Status, path: Path, conn_ns: str = ""
    ) -> None:
        self.fds = {edge_fd: conn_fd, conn_fd: edge_fd}
        self.edge_fd = edge_fd
        self.conn_fd = conn_fd
        self.conn_ns = conn_ns
        self.status = status
        self.path = path
        self.running = True
        self.dirty = True
        self.reconnect = False

    def on_signal(self, signum: int, _frame: FrameType | None) -> None:
        if signum == signal.SIGUSR1:
            self.status.paused = True
        elif signum == signal.SIGUSR2:
            self.status.paused = False
        elif signum == signal.SIGHUP:
            self.reconnect = True
        else:
            self.running = False
        self.dirty = True

    def reopen_conn(self, poller: select.poll) -> None:
        """A WARP reconnect: close the conn tun (the kernel deletes the device and all that
        was on it) and create it again."""
        poller.unregister(self.conn_fd)
        os.close(self.conn_fd)
        self.conn_fd = open_tun(self.conn_ns, self.status.conn, self.status.mtu)
        self.fds = {self.edge_fd: self.conn_fd, self.conn_fd: self.edge_fd}
        poller.register(self.conn_fd, select.POLLIN)
        self.status.reconnects += 1
        self.reconnect = False
        self.dirty = True

    def write_status(self) -> None:
        tmp = self.path.with_suffix(".tmp")
        tmp.write_text(json.dumps(asdict(self.status)))
        os.replace(tmp, self.path)
        self.dirty = False

    def forward(self, fd: int) -> None:
        packet = os.read(fd, 65535)
        self.dirty = True
        if self.status.paused:
            self.status.dropped += 1
            return
        os.write(self.fds[fd], packet)
        if fd == self.edge_fd:
            self.status.edge_to_conn += 1
        else:
            self.status.conn_to_edge += 1

    def run(self) -> None:
        poller = select.poll()
        for fd in self.fds:
            poller.register(fd, select.POLLIN)
        last = 0.0
        while self.running:
            if self.reconnect:
                self.reopen_conn(poller)
            for fd, _event in poller.poll(100):
                if fd in self.fds:
                    self.forward(fd)
            now = time.monotonic()
            if self.dirty and (now - last >= 0.1 or not self.running):
                self.write_status()
                last = now
        self.write_status()


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="meshpath.lab.tunnel", description=__doc__)
    p.add_argument("--edge-ns", required=True)
    p.add_argument("--conn-ns", required=True)
    p.add_argument("--edge-dev", default="cfedge")
    p.add_argument("--conn-dev", default="CloudflareWARP")
    p.add_argument("--mtu", type=int, default=MTU)
    p.add_argument("--status", type=Path, required=True)
    args = p.parse_args(argv)
    edge_fd = open_tun(args.edge_ns, args.edge_dev, args.mtu)
    conn_fd = open_tun(args.conn_ns, args.conn_dev, args.mtu)
    status = Status(os.getpid(), args.edge_dev, args.conn_dev, args.mtu, ready=True)
    relay = Relay(edge_fd, conn_fd, status, args.status, args.conn_ns)
    for sig in (signal.SIGUSR1, signal.SIGUSR2, signal.SIGHUP, signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, relay.on_signal)
    relay.write_status()
    relay.run()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
