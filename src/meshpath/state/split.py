"""WARP's Split Tunnels as table 65743 shows them (pure): no warp-cli needed.

The WARP client installs, in table 65743, a route via ``CloudflareWARP`` for everything the
Split Tunnels send through Cloudflare: in *Exclude* mode the complement of the exclude list
(nearly the whole address space), in *Include* mode just the included prefixes.
Cloudflare's Split Tunnels page says so ("Exclude IPs and domains" / "Include IPs and
domains"): https://developers.cloudflare.com/cloudflare-one/team-and-resources/devices/cloudflare-one-client/configure/route-traffic/split-tunnels/

So the table answers two questions a snapshot alone can answer:

* which mode the profile looks like: more than half of the IPv4 space covered = exclude;
* whether each Cloudflare range (source, device; v4 and v6) goes through the tunnel, and if
  not, the *gap* around it: the maximal uncovered block, which in exclude mode is exactly
  what the exclude list holds there (the default 100.64.0.0/10 shows up as that gap).

Coverage follows longest-prefix match: a more specific non-tunnel route (throw, blackhole,
another device) in table 65743 punches a hole into a broader tunnel route.
"""

from __future__ import annotations

import bisect
import ipaddress
from collections.abc import Iterable, Sequence
from typing import Final

from meshpath.state.model import TABLE_WARP, RangeCover, Route, Snapshot, SplitView

IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network
# (start, end exclusive, covered) segments over one family's address space.
Segment = tuple[int, int, bool]
RANGE_KEYS: Final = ("source_v4", "device_v4", "source_v6", "device_v6")
_BITS: Final = {4: 32, 6: 128}


def paint(routes: Iterable[Route], tunnel: str, family: int) -> list[Segment]:
    """Disjoint sorted segments of ``family``'s space with whether the tunnel covers them.

    Routes are applied from the least to the most specific, each overwriting its range:
    what is left is what longest-prefix match would pick for every address. A prefix never
    straddles the boundary of a shorter one, so each lands inside exactly one segment.
    """
    size = 1 << _BITS[family]
    starts, segments = [0], [(0, size, False)]
    nets = sorted(
        ((ipaddress.ip_network(r.dst, strict=False), _via_tunnel(r, tunnel)) for r in routes),
        key=lambda item: item[0].prefixlen,
    )
    for net, covered in nets:
        if net.version != family:
            continue
        start = int(net.network_address)
        end = start + net.num_addresses
        i = bisect.bisect_right(starts, start) - 1
        seg_start, seg_end, seg_cov = segments[i]
        pieces = [(seg_start, start, seg_cov), (start, end, covered), (end, seg_end, seg_cov)]
        pieces = [p for p in pieces if p[0] < p[1]]
        segments[i : i + 1] = pieces
        starts[i : i + 1] = [p[0] for p in pieces]
    return _merge(segments)


def _via_tunnel(route: Route, tunnel: str) -> bool:
    if route.type != "unicast":
        return False
    if route.nexthops:
        return all(nh.dev == tunnel for nh in route.nexthops)
    return route.dev == tunnel


def _merge(segments: Sequence[Segment]) -> list[Segment]:
    out: list[Segment] = []
    for seg in segments:
        if out and out[-1][2] == seg[2] and out[-1][1] == seg[0]:
            out[-1] = (out[-1][0], seg[1], seg[2])
        elif seg[0] < seg[1]:
            out.append(seg)
    return out


def covered_share(segments: Sequence[Segment]) -> float:
    total = segments[-1][1] if segments else 1
    return sum(e - s for s, e, c in segments if c) / total


def cover_of(segments: Sequence[Segment], net: IPNetwork) -> str:
    """'full', 'partial' or 'none': how much of ``net`` the tunnel covers."""
    start, end = int(net.network_address), int(net.broadcast_address) + 1
    inside = [(max(s, start), min(e, end), c) for s, e, c in segments if s < end and e > start]
    covered = sum(e - s for s, e, c in inside if c)
    if covered == end - start:
        return "full"
    return "partial" if covered else "none"


def gap_around(segments: Sequence[Segment], net: IPNetwork) -> tuple[str, ...]:
    """The maximal uncovered blocks that touch ``net``, as CIDRs (collapsed)."""
    start, end = int(net.network_address), int(net.broadcast_address) + 1
    blocks = [(s, e) for s, e, c in segments if not c and s < end and e > start]
    return tuple(str(n) for s, e in blocks for n in _cidrs(net.version, s, e))


def _cidrs(family: int, start: int, end: int) -> Iterable[IPNetwork]:
    if family == 4:
        v4 = ipaddress.IPv4Address
        return ipaddress.summarize_address_range(v4(start), v4(end - 1))
    v6 = ipaddress.IPv6Address
    return ipaddress.summarize_address_range(v6(start), v6(end - 1))


def infer_split(
    snapshot: Snapshot, tunnel: str, ranges: dict[str, IPNetwork], table: int = TABLE_WARP
) -> SplitView:
    """Table ``table``'s view of the Split Tunnels: mode and each range's coverage."""
    routes = snapshot.routes_in(table)
    via = sum(1 for r in routes if _via_tunnel(r, tunnel))
    painted = {family: paint(routes, tunnel, family) for family in (4, 6)}
    mode = _mode(via, painted[4])
    covers = tuple(
        RangeCover(
            key=key,
            range=str(net),
            cover=(cover := cover_of(painted[net.version], net)),
            gap=() if cover == "full" else gap_around(painted[net.version], net),
        )
        for key, net in ranges.items()
    )
    return SplitView(table_routes=via, mode=mode, ranges=covers)


def split_ranges(ranges: object) -> dict[str, IPNetwork]:
    """The four ranges the Split Tunnels must carry, from a CloudflareRanges."""
    return {key: getattr(ranges, key) for key in RANGE_KEYS}


def _mode(via_tunnel: int, v4: Sequence[Segment]) -> str:
    if via_tunnel == 0:
        return "empty"
    return "exclude" if covered_share(v4) > 0.5 else "include"


def cover_for(view: SplitView, key: str) -> RangeCover | None:
    return next((c for c in view.ranges if c.key == key), None)


# -- the documented remedy, computed ---------------------------------------------------
def entry_network(value: str) -> IPNetwork | None:
    """The network a Split Tunnels entry names, or None for a host entry."""
    try:
        return ipaddress.ip_network(value, strict=False)
    except ValueError:
        return None


def _minus(net: IPNetwork, hole: IPNetwork) -> list[IPNetwork]:
    if net.version != hole.version or not net.overlaps(hole):
        return [net]
    if net.subnet_of(hole):  # type: ignore[arg-type]
        return []
    return sorted(net.address_exclude(hole))  # type: ignore[arg-type]


def carve(entries: Sequence[str], needed: Sequence[IPNetwork]) -> tuple[list[str], list[str]]:
    """The Exclude-mode edit that lets ``needed`` through: (entries to delete, pieces to
    add back). Each exclude entry overlapping a needed range is deleted and what it held
    outside the needed ranges is added back, as the Reserved IPs page shows (delete
    100.64.0.0/10, add back 100.80.0.0/12 and 100.112.0.0/12):
    https://developers.cloudflare.com/cloudflare-one/networks/routes/reserved-ips/#exclude-mode-default
    """
    deletes: list[str] = []
    adds: list[str] = []
    for value in entries:
        net = entry_network(value)
        if net is None or not any(net.overlaps(n) for n in needed if n.version == net.version):
            continue
        deletes.append(value)
        pieces = [net]
        for hole in needed:
            pieces = [p for piece in pieces for p in _minus(piece, hole)]
        adds.extend(_collapsed(pieces))
    return deletes, adds


def _collapsed(pieces: Sequence[IPNetwork]) -> list[str]:
    v4 = [p for p in pieces if isinstance(p, ipaddress.IPv4Network)]
    v6 = [p for p in pieces if isinstance(p, ipaddress.IPv6Network)]
    return [str(n) for n in ipaddress.collapse_addresses(v4)] + [
        str(n) for n in ipaddress.collapse_addresses(v6)
    ]


def missing_includes(entries: Sequence[str], needed: Sequence[IPNetwork]) -> list[str]:
    """The needed ranges that the Include list does not fully cover (to be added)."""
    nets = [n for n in (entry_network(e) for e in entries) if n is not None]
    out = []
    for want in needed:
        left = [want]
        for net in nets:
            left = [p for piece in left for p in _minus(piece, net)]
        if left:
            out.append(str(want))
    return out
