"""FRR's view as typed values: the one walk over its show commands' JSON.

:mod:`meshpath.collect.frr` runs vtysh and decodes the text; these functions turn the
documents into BGP peers, the routes each peer is sent and staticd's routes. A snapshot keeps
the documents as evidence; readers use ``snapshot.frr.view`` (derived once per value, so
snapshots saved by any meshpath version read the same way), and the live pollers (fix's wait
for BGP, meshpath watch, the lab) decode through :mod:`meshpath.collect.frr` into the same
values.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Final

ESTABLISHED: Final = "Established"
# The address family meshpath's fixes advertise in (`show bgp summary json` key).
IPV4_UNICAST: Final = "ipv4Unicast"
IPV6_UNICAST: Final = "ipv6Unicast"
FAMILIES: Final = (IPV4_UNICAST, IPV6_UNICAST)


@dataclass(frozen=True, slots=True)
class BgpPeer:
    """One neighbour in ``show bgp summary json``."""

    address: str  # an IP address, or an interface for an unnumbered session
    state: str | None  # Established, Active, Idle, ...; None when FRR did not say
    peer_state: str | None = None  # "Policy" when RFC 8212 holds the session
    pfx_rcd: int | str | None = None  # a count, or "(Policy)"
    pfx_snt: int | str | None = None

    @property
    def established(self) -> bool:
        return self.state == ESTABLISHED

    @property
    def policy_blocked(self) -> bool:
        """RFC 8212 (ebgp-requires-policy): FRR shows "(Policy)" instead of the counts."""
        counts = (str(self.pfx_rcd), str(self.pfx_snt))
        return self.peer_state == "Policy" or "(Policy)" in counts


@dataclass(frozen=True, slots=True)
class FrrRoute:
    """One entry of ``show ip route json`` (a prefix may have several)."""

    prefix: str
    protocol: str
    selected: bool = False
    installed: bool = False
    interfaces: tuple[str, ...] = ()  # the nexthops' interfaceName, in order


# BGP NOTIFICATION error code 2, "OPEN Message Error" (RFC 4271 4.5, 6.2): the peer and we
# disagree on the session's parameters (AS numbers, router id, version, capabilities, role);
# every retry sends the same OPEN and meets the same error, until a configuration changes.
OPEN_MESSAGE_ERROR: Final = 2


@dataclass(frozen=True, slots=True)
class PeerReset:
    """Why a BGP session last went down, from ``show bgp neighbors PEER json``."""

    due_to: str  # lastResetDueTo: "BGP Notification received", "BGP Notification send", ...
    age: float | None  # seconds since that reset (lastResetTimerMsecs)
    code: int | None = None  # the NOTIFICATION's error code and subcode, when one was
    subcode: int | None = None  # exchanged (lastErrorCodeSubcode "0202": 2/2)
    reason: str = ""  # lastNotificationReason: "OPEN Message Error/Bad Peer AS"

    @property
    def open_refused(self) -> bool:
        """An OPEN was refused: waiting cannot bring the session up."""
        return self.code == OPEN_MESSAGE_ERROR

    def describe(self) -> str:
        """``BGP Notification received: OPEN Message Error/Bad Peer AS (2/2), 12 s ago``."""
        text = self.due_to
        if self.code is not None:
            text += f": {self.reason or 'NOTIFICATION'} ({self.code}/{self.subcode})"
        return text if self.age is None else f"{text}, {self.age:g} s ago"


def last_reset(neighbors: Mapping[str, Any] | None, peer: str) -> PeerReset | None:
    """``peer``'s last reset in a ``show bgp neighbors PEER json`` document; None when the
    session never went down (or FRR does not know the peer)."""
    info = (neighbors or {}).get(peer)
    if not isinstance(info, Mapping) or not isinstance(info.get("lastResetDueTo"), str):
        return None
    msecs = info.get("lastResetTimerMsecs")
    age = msecs / 1000 if isinstance(msecs, int | float) and not isinstance(msecs, bool) else None
    code, subcode = _code_subcode(info.get("lastErrorCodeSubcode"))
    reason = info.get("lastNotificationReason")
    return PeerReset(
        info["lastResetDueTo"], age, code, subcode, reason if isinstance(reason, str) else ""
    )


def _code_subcode(text: Any) -> tuple[int | None, int | None]:
    """``"0202"`` (two bytes in hex, as FRR prints them) -> (2, 2)."""
    if not isinstance(text, str) or len(text) != 4:
        return None, None
    try:
        return int(text[:2], 16), int(text[2:], 16)
    except ValueError:
        return None, None


@dataclass(frozen=True, slots=True)
class FrrView:
    peers: tuple[BgpPeer, ...] = ()  # IPv4 unicast, in FRR's order
    # peer -> the prefixes it is sent; None when FRR was not asked or did not answer
    advertised: Mapping[str, frozenset[str] | None] = field(default_factory=dict)
    statics: tuple[FrrRoute, ...] = ()  # staticd's routes, in FRR's order
    # peer -> why its session last went down (only peers not Established are asked)
    resets: Mapping[str, PeerReset] = field(default_factory=dict)
    peers6: tuple[BgpPeer, ...] = ()  # the IPv6 unicast family's peers
    advertised6: Mapping[str, frozenset[str] | None] = field(default_factory=dict)

    def peer(self, address: str) -> BgpPeer | None:
        return next((p for p in self.peers if p.address == address), None)


def frr_view(
    bgp_summary: Mapping[str, Any] | None,
    bgp_advertised: Mapping[str, Any] | None,
    ip_route: Mapping[str, Any] | None,
    ipv6_route: Mapping[str, Any] | None = None,
    bgp_neighbors: Mapping[str, Any] | None = None,
    bgp_advertised6: Mapping[str, Any] | None = None,
) -> FrrView:
    """The typed view of the show commands' documents a snapshot keeps."""
    both = (*routes(ip_route), *routes(ipv6_route))
    resets = {str(peer): last_reset(bgp_neighbors, str(peer)) for peer in bgp_neighbors or {}}
    return FrrView(
        peers=bgp_peers(bgp_summary),
        advertised={peer: advertised_routes(doc) for peer, doc in (bgp_advertised or {}).items()},
        statics=tuple(r for r in both if r.protocol == "static"),
        resets={peer: reset for peer, reset in resets.items() if reset is not None},
        peers6=bgp_peers(bgp_summary, IPV6_UNICAST),
        advertised6={p: advertised_routes(doc) for p, doc in (bgp_advertised6 or {}).items()},
    )


def bgp_peers(summary: Mapping[str, Any] | None, afi: str = IPV4_UNICAST) -> tuple[BgpPeer, ...]:
    """The peers of one address family in a ``show bgp summary json`` document."""
    family = (summary or {}).get(afi)
    peers = family.get("peers") if isinstance(family, Mapping) else None
    if not isinstance(peers, Mapping):
        return ()
    return tuple(_peer(str(address), info) for address, info in peers.items())


def _peer(address: str, info: Any) -> BgpPeer:
    if not isinstance(info, Mapping):
        return BgpPeer(address, None)
    state = info.get("state")
    peer_state = info.get("peerState")
    return BgpPeer(
        address,
        None if state is None else str(state),
        None if peer_state is None else str(peer_state),
        _count(info.get("pfxRcd")),
        _count(info.get("pfxSnt")),
    )


def _count(value: Any) -> int | str | None:
    if value is None or isinstance(value, int):
        return value
    return str(value)


def advertised_routes(doc: Any) -> frozenset[str] | None:
    """The prefixes in ``show ip bgp neighbors PEER advertised-routes json``; None when the
    document holds no route table (FRR not asked, or it answered with an error)."""
    table = doc.get("advertisedRoutes") if isinstance(doc, Mapping) else None
    return frozenset(str(p) for p in table) if isinstance(table, Mapping) else None


def learned_from(bgp_table: Mapping[str, Any] | None, peer: str) -> frozenset[str]:
    """Prefixes in ``show bgp ipv4 unicast json`` with a path from ``peer``."""
    table = (bgp_table or {}).get("routes")
    return frozenset(
        str(prefix)
        for prefix, paths in (table.items() if isinstance(table, Mapping) else ())
        if isinstance(paths, list)
        and any(isinstance(p, Mapping) and p.get("peerId") == peer for p in paths)
    )


def path_lengths(prefix_doc: Mapping[str, Any] | None) -> dict[str, int]:
    """``show bgp ipv4 unicast PREFIX json``: each peer's path to PREFIX -> AS path length."""
    out: dict[str, int] = {}
    paths = (prefix_doc or {}).get("paths")
    for path in paths if isinstance(paths, list) else ():
        peer = path.get("peer") if isinstance(path, Mapping) else None
        peer_id = peer.get("peerId") if isinstance(peer, Mapping) else None
        if peer_id:
            aspath = path.get("aspath")
            length = aspath.get("length", 0) if isinstance(aspath, Mapping) else 0
            out[str(peer_id)] = int(length)
    return out


def bfd_status(peers: Sequence[Any] | None) -> dict[str, str]:
    """``show bfd peers json`` (a list of sessions): peer address -> status (up, down, ...)."""
    return {
        str(p.get("peer")): str(p.get("status"))
        for p in peers or ()
        if isinstance(p, Mapping) and "peer" in p
    }


def routes(ip_route: Mapping[str, Any] | None) -> tuple[FrrRoute, ...]:
    """Every entry of a ``show ip route json`` document, prefix by prefix."""
    return tuple(
        _route(str(prefix), entry)
        for prefix, entries in (ip_route or {}).items()
        if isinstance(entries, list)
        for entry in entries
        if isinstance(entry, Mapping)
    )


def _route(prefix: str, entry: Mapping[str, Any]) -> FrrRoute:
    hops = entry.get("nexthops")
    return FrrRoute(
        prefix=prefix,
        protocol=str(entry.get("protocol", "")),
        selected=bool(entry.get("selected")),
        installed=bool(entry.get("installed")),
        interfaces=tuple(
            str(h["interfaceName"])
            for h in (hops if isinstance(hops, list) else ())
            if isinstance(h, Mapping) and "interfaceName" in h
        ),
    )
