"""A minimal three-namespace connector for recording real captures (root only).

    mptr-<tag>-edge                 mptr-<tag>-conn                       mptr-<tag>-svc
    Worker 100.64.12.189 (lo)       CloudflareWARP 100.96.0.5/30          eth0 10.0.1.50/24
    cf0 100.96.0.6/30 ===veth=====  eth0 10.0.1.2/24 =======veth========  listener :3000
                                    default via 10.0.1.1 (static neigh)

The "tunnel" is a veth named like WARP's device (the lab proper uses a tun relay); what
matters for a trace is that the connector has a tunnel side and a LAN side. Scenarios
set the connector's and the service's routes, nft, and forwarding the way the field
report's situations do. Nothing is linked to the root namespace; every namespace is
deleted by :meth:`NetLab.close` (use it as a context manager).
"""

from __future__ import annotations

import os
import subprocess
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Final

CLIENT: Final = "100.64.12.189"
CLIENT_PORT: Final = 9025
SERVER: Final = "10.0.1.50"
SERVER_PORT: Final = 3000
SCENARIOS: Final = (
    "broken",
    "route",
    "nat",
    "gateway",
    "refused",
    "icmp",
    "no-forward",
    "no-syn",
)
EXPECTED: Final = {
    "broken": "return-misrouted",
    "route": "ok",
    "nat": "ok",
    "gateway": "no-reply",
    "refused": "refused",
    "icmp": "icmp-unreachable",
    "no-forward": "not-forwarded",
    "no-syn": "no-syn",
}
_LISTENER: Final = (
    "import socket,sys\n"
    "s=socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)\n"
    "s.bind(('0.0.0.0', 3000)); s.listen(16); print('ready', flush=True)\n"
    "while True:\n"
    "    c, _ = s.accept(); c.close()\n"
)


def _run(argv: Sequence[str], ns: str | None = None, check: bool = True) -> str:
    full = ["ip", "netns", "exec", ns, *argv] if ns else list(argv)
    proc = subprocess.run(full, capture_output=True, text=True, check=False, timeout=30)
    if check and proc.returncode != 0:
        raise RuntimeError(f"{full} failed ({proc.returncode}): {proc.stderr.strip()}")
    return proc.stdout


@dataclass
class NetLab:
    scenario: str
    tag: str = field(default_factory=lambda: str(os.getpid()))
    procs: list[subprocess.Popen[str]] = field(default_factory=list)

    @property
    def edge(self) -> str:
        return f"mptr-{self.tag}-edge"

    @property
    def conn(self) -> str:
        return f"mptr-{self.tag}-conn"

    @property
    def svc(self) -> str:
        return f"mptr-{self.tag}-svc"

    def __enter__(self) -> NetLab:
        try:
            self._build()
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        for proc in self.procs:
            if proc.poll() is None:
                proc.kill()
                proc.wait(timeout=10)
            if proc.stdout is not None:
                proc.stdout.close()
        for ns in (self.edge, self.conn, self.svc):
            subprocess.run(["ip", "netns", "del", ns], capture_output=True, check=False)

    # -- topology ----------------------------------------------------------------------

    def _build(self) -> None:
        e, c, s = self.edge, self.conn, self.svc
        for ns in (e, c, s):
            _run(["ip", "netns", "add", ns])
            _run(["ip", "link", "set", "lo", "up"], ns)
        _run(["ip", "link", "add", "cf0", "netns", e, "type", "veth", "peer", "CloudflareWARP",
              "netns", c])  # fmt: skip
        _run(["ip", "link", "add", "eth0", "netns", c, "type", "veth", "peer", "eth0", "netns", s])
        self._addr(e, "cf0", "100.96.0.6/30")
        self._addr(e, "lo", f"{CLIENT}/32")
        self._addr(c, "CloudflareWARP", "100.96.0.5/30")
        self._addr(c, "eth0", "10.0.1.2/24")
        self._addr(s, "eth0", f"{SERVER}/24")
        _run(["ip", "route", "add", "10.0.1.0/24", "via", "100.96.0.5", "src", CLIENT], e)
        _run(["ip", "neigh", "add", "10.0.1.1", "lladdr", "02:00:00:00:01:01", "dev", "eth0",
              "nud", "permanent"], c)  # fmt: skip
        _run(["ip", "route", "add", "default", "via", "10.0.1.1"], c)
        forward = "0" if self.scenario == "no-forward" else "1"
        _run(["sysctl", "-qw", f"net.ipv4.ip_forward={forward}"], c)
        _run(["sysctl", "-qw", "net.ipv4.conf.all.rp_filter=0"], c)
        self._scenario()

    def _addr(self, ns: str, dev: str, cidr: str) -> None:
        _run(["ip", "addr", "add", cidr, "dev", dev], ns)
        _run(["ip", "link", "set", dev, "up"], ns)

    def _scenario(self) -> None:
        c, s = self.conn, self.svc
        tunnel_route = ["ip", "route", "add", "100.64.0.0/12", "via", "100.96.0.6"]
        svc_route = ["ip", "route", "add", "100.64.0.0/10", "via", "10.0.1.2"]
        name = self.scenario
        if name in ("broken", "route", "refused", "icmp", "no-forward", "no-syn"):
            _run(svc_route, s)
        if name in ("route", "nat", "refused", "icmp"):
            _run(tunnel_route, c)
        if name == "nat":
            _run(["nft", "table inet mp { chain post { type nat hook postrouting priority srcnat;"
                  " oifname eth0 ip saddr 100.64.0.0/12 masquerade; }; }"], c)  # fmt: skip
        if name == "icmp":
            _run(["nft", "table inet mp { chain in { type filter hook input priority 0;"
                  " tcp dport 3000 reject with icmp type host-unreachable; }; }"], s)  # fmt: skip
        if name != "refused":
            self._listen()

    def _listen(self) -> None:
        proc = subprocess.Popen(
            ["ip", "netns", "exec", self.svc, "python3", "-c", _LISTENER],
            stdout=subprocess.PIPE,
            text=True,
        )
        self.procs.append(proc)
        assert proc.stdout is not None
        if proc.stdout.readline().strip() != "ready":
            raise RuntimeError("listener in the service namespace did not start")

    # -- traffic -----------------------------------------------------------------------

    def request(self, timeout: float = 1.6) -> None:
        """One Worker-like connection attempt from the edge (or from the LAN for no-syn)."""
        if self.scenario == "no-syn":
            ns, src, port = self.conn, "10.0.1.2", 41000
        else:
            ns, src, port = self.edge, CLIENT, CLIENT_PORT
        code = (
            "import socket\n"
            f"s=socket.socket(); s.settimeout({timeout!r}); s.bind(({src!r}, {port}))\n"
            f"try:\n    s.connect(({SERVER!r}, {SERVER_PORT})); s.close()\n"
            "except OSError: pass\n"
        )
        _run(["python3", "-c", code], ns)

    def start_capture(self, path: Path) -> subprocess.Popen[str]:
        """tcpdump -i any (SLL2) in the connector; returns once it writes its header."""
        proc = subprocess.Popen(
            [
                "ip",
                "netns",
                "exec",
                self.conn,
                "tcpdump",
                "-i",
                "any",
                "-y",
                "LINUX_SLL2",
                "-n",
                "--immediate-mode",
                "-U",
                "-s",
                "256",
                "-w",
                str(path),
                "tcp or icmp",
            ],  # fmt: skip
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            text=True,
        )
        self.procs.append(proc)
        wait_for(lambda: path.exists() and path.stat().st_size >= 24, "tcpdump to start")
        return proc

    def link_names(self) -> dict[int, str]:
        names: dict[int, str] = {}
        for line in _run(["ip", "-o", "link", "show"], self.conn).splitlines():
            index, name = line.split(":")[:2]
            names[int(index)] = name.strip().split("@")[0]
        return names


def wait_for(check: object, what: str, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if callable(check) and check():
            return
        time.sleep(0.02)
    raise TimeoutError(f"timed out waiting for {what}")


def stop_capture(proc: subprocess.Popen[str]) -> None:
    """SIGINT lets tcpdump flush and close the file."""
    proc.send_signal(2)
    proc.wait(timeout=10)
