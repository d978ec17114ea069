"""The lab's network: sysctls, the tunnel emulator, links and addresses (I/O edge)."""

from __future__ import annotations

import json
import os
import signal
import sys
from collections.abc import Callable, Sequence
from typing import Any

from meshpath.collect.iproute import ip_json
from meshpath.lab import topology
from meshpath.lab.base import LabBase
from meshpath.lab.procs import wait_for
from meshpath.lab.scenarios import Scenario


class Wiring(LabBase):
    """Namespaces' sysctls and links, the tunnel between edge and conn."""

    def _sysctls(self, node: str) -> None:
        pairs = [f"{k}={v}" for k, v in topology.sysctls_for(node).items()]
        self.exec(node, ["sysctl", "-q", "-w", *pairs], check=True)

    def _start_tunnel(self) -> None:
        status = self.run_dir / "tunnel.json"
        argv = [sys.executable, "-m", "meshpath.lab.tunnel", "--edge-ns", self.ns("edge")]
        argv += ["--conn-ns", self.ns("conn"), "--status", str(status)]
        child = self._spawn("tunnel", "edge", argv)
        wait_for("tunnel emulator", lambda: child.poll() is None and status.exists(), 10.0)
        for node, dev in (("edge", topology.TUN_EDGE), ("conn", topology.TUN_CONN)):
            wait_for(f"carrier on {dev}", self._lower_up_probe(node, dev), 5.0)

    def _lower_up_probe(self, node: str, dev: str) -> Callable[[], bool]:
        return lambda: self._lower_up(node, dev)

    def _lower_up(self, node: str, dev: str) -> bool:
        done = self.exec(node, ["ip", "-j", "link", "show", "dev", dev])
        return done.ok and "LOWER_UP" in ip_json(done.stdout)[0].get("flags", [])

    def _wire(self, scn: Scenario, nodes: Sequence[str]) -> None:
        hosts = [n for n in topology.HOSTS if n in nodes]
        self.ip_batch("lan", topology.lan_batch(self.instance, hosts))
        for host in hosts:
            self.ip_batch(host, topology.host_batch(host))
        self.ip_batch("edge", topology.edge_batch())
        via, via6 = topology.LAN_ADDR["conn"], topology.LAN_ADDR6["conn"]
        if scn.lan == "broken":
            # Cloudflare's docs advise LAN hosts to route the CGNAT range to the connector;
            # the IPv6 counterpart is Cloudflare's /48 of reserved IPv6 ranges.
            text = f"route add {topology.CGNAT} via {via} dev eth0\n"
            text += f"route add {topology.CF_RESERVED6} via {via6} dev eth0\n"
            self.ip_batch("svc", text)
        elif scn.lan == "router":
            # The Mesh Routes page's return route, on the LAN router (svc's gateway).
            text = f"route add {topology.SOURCE_RANGE} via {via} dev eth0\n"
            text += f"route add {topology.SOURCE_RANGE6} via {via6} dev eth0\n"
            self.ip_batch("router", text)

    def tunnel_status(self) -> dict[str, Any]:
        """The tunnel emulator's counters: edge_to_conn, conn_to_edge, dropped, paused."""
        data: dict[str, Any] = json.loads((self.run_dir / "tunnel.json").read_text())
        return data

    def pause_tunnel(self, paused: bool = True) -> None:
        """Emulate a tunnel outage (``paused=False`` ends it); returns once it took effect."""
        pid = int(self.tunnel_status()["pid"])
        os.kill(pid, signal.SIGUSR1 if paused else signal.SIGUSR2)
        wait_for("tunnel pause", lambda: self.tunnel_status()["paused"] == paused, 3.0)

    def route_get(self, node: str, dest: str) -> dict[str, Any]:
        done = self.exec(node, ["ip", "-j", "route", "get", dest], check=True)
        return ip_json(done.stdout)[0]
