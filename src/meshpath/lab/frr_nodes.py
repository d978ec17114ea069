"""FRR in the lab's nodes: render, check, start, and read BGP and kernel routes (I/O edge)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from meshpath.collect.frr import decode_show
from meshpath.collect.iproute import host_prefix, ip_json
from meshpath.errors import LabConfigError as LabConfigError  # re-exported: its old home
from meshpath.fsafe import atomic_write, ensure_dir
from meshpath.lab import frr, topology
from meshpath.lab.base import LabBase
from meshpath.lab.procs import frr_pathspace, wait_for
from meshpath.lab.scenarios import Scenario
from meshpath.state import frr as frr_state


class FrrNodes(LabBase):
    """zebra, staticd and bgpd per node, through vtysh."""

    def vtysh(self, node: str, command: str) -> str:
        return self.runner.run(frr.vtysh_argv(str(self._frr_dir(node)), command)).stdout

    def vtysh_json(self, node: str, command: str) -> dict[str, Any]:
        value, _problem = decode_show(command, self.vtysh(node, command) or "{}")
        return value or {}

    def _frr_dir(self, node: str) -> Path:
        return frr_pathspace(self.ns(node))

    def start_frr(self, node: str, cfg: frr.FrrConfig) -> None:
        """Render ``cfg``, start its daemons in ``node`` (zebra, staticd, bgpd, bfdd if asked),
        wait until they answer."""
        d = self._frr_dir(node)
        # The dir belongs to the frr user: never follow a link planted in it (as root).
        ensure_dir(d, 0o755, owner=("frr", "frr"))
        for daemon, text in frr.render_all(cfg, str(d / "frr.log")).items():
            conf = d / f"{daemon}.conf"
            atomic_write(conf, text.encode(), mode=0o644)
            self.check_frr_config(node, daemon, conf)
            self.exec(node, frr.daemon_argv(daemon, str(conf), str(d)), check=True)
        wait_for(f"FRR in {node}", lambda: self._frr_answers(node), 10.0)

    def check_frr_config(self, node: str, daemon: str, conf: Path) -> None:
        """FRR's own parser on a rendered file; LabConfigError naming the bad lines.

        Run inside ``node``: a daemon's ``-C`` still starts up far enough to open netlink
        (zebra) or a BGP listener (bgpd), which must never happen in the root namespace.
        """
        done = self.exec(node, frr.check_argv(daemon, str(conf)))
        problems = frr.check_problems(done.stdout + done.stderr)
        if not done.ok or problems:
            detail = "; ".join(problems) or done.stderr.strip()
            raise LabConfigError(f"lab: FRR rejects {conf}: {detail}")

    def _frr_answers(self, node: str) -> bool:
        argv = frr.vtysh_argv(str(self._frr_dir(node)), "show bgp summary json")
        done = self.runner.run(argv, check=False)
        return done.ok and done.stdout.strip().startswith("{")

    def _start_frr_base(self, scn: Scenario) -> None:
        self.start_frr("router", frr.router_config(scn.tailnet, scn.ha))
        if scn.tailnet:
            self.start_frr("ts", frr.tailnet_config())
            node = f"{topology.TAILNET_NODE}/32"
            wait_for("tailnet route on the router", lambda: node in self.bgp_routes("router"), 15.0)

    def bgp_routes(self, node: str, family: int = 4) -> dict[str, str]:
        """Kernel routes of ``family`` installed by BGP in ``node``: prefix -> gateway."""
        return self._kernel_routes(node, "bgp", family)

    def frr_statics(self, node: str) -> frozenset[str]:
        """Kernel routes installed by FRR staticd in ``node`` (protocol 196, not 'static')."""
        return frozenset(self._kernel_routes(node, "196"))

    def _kernel_routes(self, node: str, proto: str, family: int = 4) -> dict[str, str]:
        done = self.exec(node, ["ip", "-j", f"-{family}", "route", "show", "proto", proto])
        if not done.ok or not done.stdout.strip():
            return {}
        # A multipath route (FRR installs an IPv6 route learned over an IPv4 session via the
        # peer's global and link-local addresses) has no single gateway: "".
        return {_prefix(r["dst"], family): r.get("gateway", "") for r in ip_json(done.stdout)}

    def bgp_peer_state(self, node: str, peer: str) -> str | None:
        peers = frr_state.bgp_peers(self.vtysh_json(node, "show bgp summary json"))
        return next((p.state for p in peers if p.address == peer), None)

    def bgp_learned(self, node: str, peer: str, family: int = 4) -> frozenset[str]:
        """Prefixes of ``family`` in ``node``'s BGP table with a path from ``peer``."""
        afi = "ipv6" if family == 6 else "ipv4"
        return frr_state.learned_from(self.vtysh_json(node, f"show bgp {afi} unicast json"), peer)


def _prefix(dst: str, family: int) -> str:
    """``ip -j`` prints host routes without a length."""
    return host_prefix(dst) if family == 4 or "/" in dst else f"{dst}/128"
