"""Cloudflare's reserved address ranges, and who else lives in the same CGNAT space.

Defaults follow Cloudflare's documentation of the Zero Trust / Mesh reserved ranges. An
account can move them, so a :class:`CloudflareRanges` is always built from the defaults
plus overrides (config file, then flags) and validated: each override must be a proper
network of the right family, and no two Cloudflare ranges may overlap.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, fields, replace
from typing import Final

from meshpath.errors import RangeError

IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network


@dataclass(frozen=True, slots=True)
class RangeInfo:
    """What a range is for, for people reading `meshpath ranges`."""

    key: str
    purpose: str
    family: int
    # Cloudflare's Reserved IPs page marks each IPv6 row "Configurable: No": an account
    # cannot move them, so an override could only describe a network that does not exist.
    configurable: bool = True


RANGE_INFO: Final[tuple[RangeInfo, ...]] = (
    RangeInfo("source_v4", "Cloudflare source IPs (Workers / Mesh traffic arrives from here)", 4),
    RangeInfo("source_v6", "Cloudflare source IPs, IPv6", 6, configurable=False),
    RangeInfo("device_v4", "Device IPs (WARP clients, Mesh nodes, connectors)", 4),
    RangeInfo("device_v6", "Device IPs, IPv6", 6, configurable=False),
    RangeInfo("gateway_v4", "Gateway initial resolved IPs (older accounts: 100.80.0.0/16)", 4),
    RangeInfo("gateway_v6", "Gateway initial resolved IPs, IPv6", 6, configurable=False),
    RangeInfo("lb_v4", "Private load balancer IPs", 4),
)
RANGE_KEYS: Final[frozenset[str]] = frozenset(info.key for info in RANGE_INFO)
LEGACY_GATEWAY_V4: Final = ipaddress.IPv4Network("100.80.0.0/16")


@dataclass(frozen=True, slots=True)
class CloudflareRanges:
    """The Cloudflare ranges in force for one host (defaults unless overridden)."""

    source_v4: ipaddress.IPv4Network = ipaddress.IPv4Network("100.64.0.0/12")
    # The IPv6 rows of Cloudflare's Reserved IPs page (checked 2026: Device IPs
    # 2606:4700:0cf1:1000::/64, Gateway initial resolved IPs 2606:4700:0cf1:4000::/64,
    # Cloudflare source IPs 2606:4700:0cf1:5000::/64, each "Configurable: No"):
    # https://developers.cloudflare.com/cloudflare-one/networks/routes/reserved-ips/
    source_v6: ipaddress.IPv6Network = ipaddress.IPv6Network("2606:4700:cf1:5000::/64")
    device_v4: ipaddress.IPv4Network = ipaddress.IPv4Network("100.96.0.0/12")
    device_v6: ipaddress.IPv6Network = ipaddress.IPv6Network("2606:4700:cf1:1000::/64")
    gateway_v4: ipaddress.IPv4Network = ipaddress.IPv4Network("172.64.128.0/20")
    gateway_v6: ipaddress.IPv6Network = ipaddress.IPv6Network("2606:4700:cf1:4000::/64")
    lb_v4: ipaddress.IPv4Network = ipaddress.IPv4Network("100.112.0.0/16")

    def items(self) -> Iterator[tuple[str, IPNetwork]]:
        for f in fields(self):
            yield f.name, getattr(self, f.name)

    def source_ranges(self) -> tuple[IPNetwork, ...]:
        """Where Worker traffic comes from: what the connector must route back to the tunnel."""
        return (self.source_v4, self.source_v6)

    def worker_probe(self) -> str:
        """A Worker source address to simulate: the field report's 100.64.12.189 when it lies
        in the source range in force, else the range's first host."""
        report = ipaddress.IPv4Address("100.64.12.189")
        return str(report if report in self.source_v4 else self.source_v4.network_address + 1)

    def worker_probe_v6(self) -> str:
        """An IPv6 Worker source to simulate: ``::5`` in the v6 source range (the lab's
        Mesh edge uses the same address)."""
        return str(self.source_v6.network_address + 5)

    def source_for(self, address: str) -> IPNetwork:
        """The source range of ``address``'s family: what replies to it must route back."""
        return self.source_v6 if ":" in address else self.source_v4

    def classify(self, address: str) -> str | None:
        """The key of the Cloudflare range holding ``address``, or None."""
        ip = ipaddress.ip_address(address)
        for key, net in self.items():
            if ip.version == net.version and ip in net:
                return key
        return None

    def with_overrides(self, overrides: Mapping[str, str]) -> CloudflareRanges:
        """A copy with ``overrides`` (key -> CIDR text) applied and the result validated."""
        changes: dict[str, IPNetwork] = {}
        for key, text in overrides.items():
            changes[key] = parse_override(key, text)
        updated = replace(self, **changes)  # type: ignore[arg-type]
        updated.check_disjoint()
        return updated

    def check_disjoint(self) -> None:
        """Raise RangeError when two Cloudflare ranges overlap."""
        pairs = list(self.items())
        for i, (key_a, net_a) in enumerate(pairs):
            for key_b, net_b in pairs[i + 1 :]:
                if net_a.version == net_b.version and net_a.overlaps(net_b):
                    raise RangeError(f"range {key_a}={net_a} overlaps {key_b}={net_b}")


def parse_override(key: str, text: str) -> IPNetwork:
    """Parse one ``key=CIDR`` override; the family must match the key."""
    info = next((i for i in RANGE_INFO if i.key == key), None)
    if info is None:
        known = ", ".join(sorted(RANGE_KEYS))
        raise RangeError(f"unknown range {key!r}; known ranges: {known}")
    try:
        net = ipaddress.ip_network(text.strip(), strict=True)
    except ValueError as exc:
        raise RangeError(f"range {key}={text!r} is not a valid network: {exc}") from exc
    if net.version != info.family:
        raise RangeError(f"range {key}={text!r} must be IPv{info.family}")
    if not info.configurable:
        raise RangeError(
            f"range {key}={text!r}: Cloudflare fixes this range (Reserved IPs: "
            "'Configurable: No'); it cannot be overridden"
        )
    return net


def parse_override_flag(flag: str) -> tuple[str, str]:
    """Split a ``--range key=CIDR`` flag."""
    key, sep, value = flag.partition("=")
    if not sep or not key or not value:
        raise RangeError(f"--range {flag!r}: expected KEY=CIDR, e.g. source_v4=100.64.0.0/12")
    return key.strip(), value.strip()


@dataclass(frozen=True, slots=True)
class Neighbour:
    """Another user of the CGNAT space that may share a connector host or LAN."""

    name: str
    network: IPNetwork
    excluded: tuple[IPNetwork, ...]
    note: str

    def contains(self, address: str) -> bool:
        ip = ipaddress.ip_address(address)
        if ip.version != self.network.version or ip not in self.network:
            return False
        return not any(ip in ex for ex in self.excluded if ex.version == ip.version)


TAILSCALE: Final = Neighbour(
    name="tailscale",
    network=ipaddress.IPv4Network("100.64.0.0/10"),
    # ChromeOS's ARC++ uses 100.115.92.0/23, so Tailscale never hands those out.
    excluded=(ipaddress.IPv4Network("100.115.92.0/23"),),
    note="tailnet addresses (CGNAT); routes in table 52, rule 5270, ts-input/ts-forward chains",
)
NEIGHBOURS: Final[tuple[Neighbour, ...]] = (TAILSCALE,)

DEFAULT_RANGES: Final = CloudflareRanges()
