"""Input checks for a fix, against the snapshot (pure): bad input raises before any I/O."""

from __future__ import annotations

import ipaddress
from collections.abc import Sequence

from meshpath.errors import BadInputError, EnvironmentProblem, MissingToolError
from meshpath.fix.model import FixOptions, Mode
from meshpath.ranges import IPNetwork
from meshpath.state import TABLE_MAIN, Snapshot

ASN_MAX = 4_294_967_295


def require_link(snap: Snapshot, name: str, what: str) -> None:
    if snap.link(name) is None:
        known = ", ".join(link.name for link in snap.links) or "none"
        raise BadInputError(f"{what} interface {name!r} does not exist (interfaces: {known})")


def lan_interface(snap: Snapshot, tunnel: str, given: str | None) -> str:
    """``--lan-if``, else the device of the main table's IPv4 default route."""
    if given is not None:
        require_link(snap, given, "LAN")
        return given
    for route in snap.routes_in(TABLE_MAIN):
        if route.family == 4 and route.dst == "0.0.0.0/0" and route.dev and route.dev != tunnel:
            return route.dev
    raise BadInputError("cannot tell the LAN interface (no IPv4 default route): pass --lan-if")


def check_asn(asn: int | None) -> int:
    if asn is None:
        raise BadInputError("bgp mode needs --asn N (the connector's AS number)")
    if not 1 <= asn <= ASN_MAX:
        raise BadInputError(f"--asn {asn}: an AS number is 1..{ASN_MAX}")
    return asn


def check_peer_asn(text: str) -> str:
    if text in ("external", "internal"):
        return text
    if not text.isdigit() or not 1 <= int(text) <= ASN_MAX:
        raise BadInputError(f"--peer-asn {text!r}: expected 1..{ASN_MAX}, external or internal")
    return str(int(text))


def check_peer(peer: str | None, ranges: Sequence[IPNetwork]) -> str:
    if peer is None:
        raise BadInputError("bgp mode needs --peer IP (the LAN router to peer with)")
    try:
        ip = ipaddress.ip_address(peer)
    except ValueError as exc:
        raise BadInputError(f"--peer {peer!r} is not an IP address") from exc
    if ip.version != 4 or ip.is_unspecified or ip.is_multicast or ip.is_loopback:
        raise BadInputError(f"--peer {peer}: expected a unicast IPv4 address on the LAN")
    if any(ip in net for net in ranges if net.version == 4):
        raise BadInputError(f"--peer {peer} lies inside a range meshpath routes to the tunnel")
    return str(ip)


def check_no_lan_overlap(snap: Snapshot, tunnel: str, ranges: Sequence[IPNetwork]) -> None:
    """A range that overlaps a LAN subnet would pull LAN traffic into the tunnel."""
    for addr in snap.addresses:
        if addr.dev in (tunnel, "lo"):
            continue
        net = ipaddress.ip_interface(f"{addr.local}/{addr.prefixlen}").network
        for rng in ranges:
            if rng.version == net.version and rng.overlaps(net):
                raise BadInputError(
                    f"range {rng} overlaps {net} on {addr.dev}: routing it to {tunnel} "
                    "would cut that subnet off; fix the range (--range) first"
                )


def check_frr(snap: Snapshot, mode: Mode) -> None:
    """bgp mode needs FRR's zebra, staticd and bgpd running for this host/namespace."""
    if mode != "bgp":
        return
    if not snap.frr.available:
        raise MissingToolError("vtysh", "bgp mode needs FRR (apt-get install frr)")
    missing = [d for d in ("zebra", "staticd", "bgpd") if d not in snap.frr.daemons]
    if not snap.frr.running or missing:
        need = ", ".join(missing) or "zebra, staticd, bgpd"
        raise EnvironmentProblem(f"bgp mode needs FRR running: {need} not running")


def check_options(snap: Snapshot, mode: Mode, options: FixOptions) -> None:
    if mode != "bgp" and (options.peer or options.asn is not None or options.replace_nat):
        raise BadInputError(f"--peer/--asn/--replace-nat only apply to --mode bgp, not {mode}")
    if mode == "bgp":
        check_asn(options.asn)
        check_peer_asn(options.peer_asn)
        check_peer(options.peer, ())
