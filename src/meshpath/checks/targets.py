"""Worker targets: the one parser of ``IP:PORT`` text (:func:`parse_target`) and the one
default-target policy (:func:`choose_targets`), for doctor, watch, fix, flow and trace.

The policy: the targets the user gave, else one address in each LAN subnet the connector
reaches (:func:`default_targets`), port 80. It beats the LAN's default gateway on 443 (what
fix used to predict with): every LAN the Worker may call is covered, a host without an IPv4
default route still has targets, and an IPv6 LAN gets its own v6 target. The port matters
to the simulator only through firewall rules; 80 is what a bare ``IP`` means everywhere.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Sequence
from dataclasses import dataclass

from meshpath.ranges import CloudflareRanges
from meshpath.state import TABLE_MAIN, Snapshot
from meshpath.values import endpoint, parse_hostport

DEFAULT_PORT = 80


@dataclass(frozen=True, slots=True)
class Target:
    address: str
    port: int
    lan_dev: str | None = None  # the interface the connector reaches it by, when known

    def __str__(self) -> str:
        return self.endpoint

    @property
    def endpoint(self) -> str:
        """``IP:PORT`` as parse_target reads it back: IPv6 in brackets."""
        return endpoint(self.address, self.port)


def parse_target(text: str, what: str = "target", *, port_required: bool = False) -> Target:
    """``10.0.1.50:3000`` or ``10.0.1.50`` (port 80); ``[2001:db8::5]:443`` for IPv6.

    ``port_required``: a bare address is refused (``trace --target`` filters a capture by
    the exact endpoint, where a guessed port would hide every other flow)."""
    default = None if port_required else DEFAULT_PORT
    parsed = parse_hostport(text, what, default_port=default)
    return Target(str(parsed.address), parsed.port)


def choose_targets(
    snapshot: Snapshot, tunnel: str, given: Sequence[Target] = ()
) -> tuple[Target, ...]:
    """The one default-target policy: ``given`` when the user named targets, else
    :func:`default_targets` (may be empty: the host reaches no LAN)."""
    return tuple(given) or default_targets(snapshot, tunnel)


def worker_for(target: Target, ranges: CloudflareRanges, given: str | None = None) -> str:
    """The Worker source a flow to ``target`` comes from: ``given`` when its family matches,
    else the probe of the target's family (a v6 LAN is reached from the v6 source range)."""
    v6 = ":" in target.address
    if given is not None and (":" in given) == v6:
        return given
    return ranges.worker_probe_v6() if v6 else ranges.worker_probe()


def default_targets(snapshot: Snapshot, tunnel: str) -> tuple[Target, ...]:
    """One address in each LAN subnet the connector reaches (not the tunnel, not lo).

    Connected subnets give the first host that is not the connector itself; routed subnets
    (via a LAN gateway, not the default route) give their first host.
    """
    own = {a.local for a in snapshot.addresses}
    found: dict[str, Target] = {}
    for route in snapshot.routes:
        if route.table != TABLE_MAIN or route.type != "unicast":
            continue
        if route.dev in (None, "lo", tunnel) or route.dst in ("0.0.0.0/0", "::/0"):
            continue
        net = ipaddress.ip_network(route.dst, strict=False)
        if net.prefixlen >= net.max_prefixlen - 1 or net.is_loopback or net.is_link_local:
            continue
        if net.is_multicast:
            continue
        # The first host that is not the connector; none when it holds them all (a /30
        # with both addresses on this host).
        host = next((str(h) for h in net.hosts() if str(h) not in own), None)
        if host is not None:
            found.setdefault(route.dst, Target(host, DEFAULT_PORT, route.dev))
    return tuple(found.values())
