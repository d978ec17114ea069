"""What every check receives: the snapshot, the settings in force, and the simulated flows."""

from __future__ import annotations

import ipaddress
from collections.abc import Iterator
from dataclasses import dataclass, field

from meshpath.config import Settings
from meshpath.sim import Fib
from meshpath.state import Link, Route, Snapshot


@dataclass(frozen=True, slots=True)
class CheckContext:
    snapshot: Snapshot
    settings: Settings
    lan_interfaces: tuple[str, ...] = field(default=())
    fib: Fib = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        # One compiled model per context: every flow and probe the checks simulate shares
        # it and its memos (no module-level cache keeps models alive between contexts).
        object.__setattr__(self, "fib", Fib.from_snapshot(self.snapshot))

    @property
    def tunnel(self) -> str:
        return self.settings.tunnel_interface

    @property
    def tunnel_link(self) -> Link | None:
        return self.snapshot.link(self.tunnel)

    @property
    def tunnel_has_v6(self) -> bool:
        """The tunnel carries IPv6: a global (scope 0) address on it."""
        return any(a.family == 6 and a.scope == 0 for a in self.snapshot.addresses_of(self.tunnel))

    def routes_via(self, dev: str, table: int | None = None) -> Iterator[Route]:
        for route in self.snapshot.routes:
            if (table is None or route.table == table) and route.dev == dev:
                yield route


def network(text: str) -> ipaddress.IPv4Network | ipaddress.IPv6Network:
    return ipaddress.ip_network(text, strict=False)


def lan_interfaces(snapshot: Snapshot, settings: Settings) -> tuple[str, ...]:
    """Interfaces with a global IPv4 address that are neither loopback nor an overlay tunnel."""
    overlays = {settings.tunnel_interface, "lo", "tailscale0"}
    names = {a.dev for a in snapshot.addresses if a.family == 4 and a.scope == 0}
    return tuple(sorted(names - overlays))
