"""Which Worker targets the doctor simulates when none are given, and target parsing."""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass

from meshpath.state import TABLE_MAIN, Snapshot
from meshpath.values import parse_hostport

DEFAULT_PORT = 80


@dataclass(frozen=True, slots=True)
class Target:
    address: str
    port: int
    lan_dev: str | None = None  # the interface the connector reaches it by, when known

    def __str__(self) -> str:
        return f"{self.address}:{self.port}"


def parse_target(text: str) -> Target:
    """``10.0.1.50:3000`` or ``10.0.1.50`` (port 80); ``[2001:db8::5]:443`` for IPv6."""
    parsed = parse_hostport(text, "target", default_port=DEFAULT_PORT)
    return Target(str(parsed.address), parsed.port)


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
