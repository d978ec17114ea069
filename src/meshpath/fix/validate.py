"""Input checks for a fix, against the snapshot (pure): bad input raises before any I/O."""

from __future__ import annotations

import ipaddress
from collections.abc import Sequence

from meshpath.errors import BadInputError, EnvironmentProblem, MissingToolError
from meshpath.fix.model import FixOptions, Mode
from meshpath.ranges import IPNetwork
from meshpath.state import TABLE_MAIN, Snapshot
from meshpath.values import IfName, parse_asn, parse_ifname, parse_peer, parse_peer_asn


def require_link(snap: Snapshot, name: str, what: str) -> IfName:
    ifname = parse_ifname(name, f"{what} interface")
    if snap.link(ifname) is None:
        known = ", ".join(repr(link.name) for link in snap.links) or "none"
        raise BadInputError(f"{what} interface {name!r} does not exist (interfaces: {known})")
    return ifname


def lan_interface(snap: Snapshot, tunnel: str, given: str | None) -> IfName:
    """``--lan-if``, else the device of the main table's IPv4 default route; never the
    tunnel nor a loopback (NAT or routes "to the LAN" there would loop into the tunnel
    or go nowhere)."""
    if given is not None:
        lan = require_link(snap, given, "LAN")
    else:
        lan = _default_route_dev(snap, tunnel)
    link = snap.link(lan)
    if lan == tunnel:
        raise BadInputError(f"LAN interface {lan!r} is the tunnel; give the LAN side (--lan-if)")
    if lan == "lo" or (link is not None and "LOOPBACK" in link.flags):
        raise BadInputError(f"LAN interface {lan!r} is a loopback; give the LAN side (--lan-if)")
    return lan


def _default_route_dev(snap: Snapshot, tunnel: str) -> IfName:
    for route in snap.routes_in(TABLE_MAIN):
        if route.family == 4 and route.dst == "0.0.0.0/0" and route.dev and route.dev != tunnel:
            return parse_ifname(route.dev, "LAN interface (of the default route)")
    raise BadInputError("cannot tell the LAN interface (no IPv4 default route): pass --lan-if")


def check_asn(asn: int | None) -> int:
    if asn is None:
        raise BadInputError("bgp mode needs --asn N (the connector's AS number)")
    return parse_asn(asn, "--asn")


ROLES = ("primary", "standby")


def check_role(role: str | None) -> str | None:
    """``--role``: primary or standby (or not given: no preference)."""
    if role is not None and role not in ROLES:
        raise BadInputError(f"--role {role[:40]!r}: expected primary or standby")
    return role


def check_peer_asn(text: str) -> str:
    return parse_peer_asn(text, "--peer-asn")


def check_peer(peer: str | None, ranges: Sequence[IPNetwork]) -> str:
    if peer is None:
        raise BadInputError("bgp mode needs --peer IP (the LAN router to peer with)")
    address = parse_peer(peer, "--peer")
    ip = ipaddress.ip_address(address)
    if any(ip in net for net in ranges if net.version == ip.version):
        raise BadInputError(f"--peer {peer} lies inside a range meshpath routes to the tunnel")
    return address


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
    bgp_only = options.peer or options.asn is not None or options.replace_nat
    if mode != "bgp" and (bgp_only or options.role is not None or options.bfd):
        raise BadInputError(
            f"--peer/--asn/--replace-nat/--role/--bfd only apply to --mode bgp, not {mode}"
        )
    if options.nat6 and mode != "nat":
        raise BadInputError(f"--nat6 only applies to --mode nat, not {mode}")
    if mode == "bgp":
        check_role(options.role)
        check_asn(options.asn)
        check_peer_asn(options.peer_asn)
        check_peer(options.peer, ())
