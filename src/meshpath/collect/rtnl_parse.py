"""Pure rtnetlink message parsing: bytes of RTM_NEWLINK/NEWADDR/NEWROUTE/NEWRULE -> model.

Each ``parse_*`` takes a received buffer and the bounds of one message's payload (as
:func:`meshpath.collect.netlink.split_messages` frames them), so the unit tests feed recorded
dumps and the live collector feeds the socket's buffers through the same code.

Numbers and layouts come from the kernel's uapi headers (``linux/rtnetlink.h``,
``linux/if_link.h``, ``linux/if_addr.h``, ``linux/fib_rules.h``); names follow iproute2's
spelling so that a snapshot reads like ``ip`` output. The route path is written for speed
(one million routes is a real table): no ``ipaddress`` objects, cached strings, gc-free Structs.
"""

from __future__ import annotations

import errno
import os
import socket
import struct
import sys
from collections.abc import Iterable, Mapping
from typing import Final

import msgspec

from meshpath.errors import NetlinkError as NetlinkError  # re-exported: its old home
from meshpath.state.model import (
    ROUTE_TYPE_NAMES,
    Address,
    Link,
    Nexthop,
    PortRange,
    Route,
    Rule,
)

AF_INET: Final = socket.AF_INET
AF_INET6: Final = socket.AF_INET6
_ORDER: Final = sys.byteorder  # netlink integers are in host byte order

_ATTR = struct.Struct("=HH").unpack_from
_IFINFOMSG = struct.Struct("=BxHiII").unpack_from  # family, type, index, flags, change
_IFADDRMSG = struct.Struct("=BBBBI").unpack_from  # family, prefixlen, flags, scope, index
_RTMSG = struct.Struct(
    "=BBBBBBBBI"
).unpack_from  # family dst_len src_len tos table proto scope type flags
_FIB_RULE_HDR = _RTMSG  # family dst_len src_len tos table res1 res2 action flags: same layout
_RTNEXTHOP = struct.Struct("=HBBi").unpack_from  # len, flags, hops, ifindex
_NLHDR = struct.Struct("=IH").unpack_from  # nlmsg_len, nlmsg_type
_U32 = struct.Struct("=I").unpack_from
_ERRNO = struct.Struct("=i").unpack_from
_ntop = socket.inet_ntop
_DEFAULT: Final = {AF_INET: "0.0.0.0/0", AF_INET6: "::/0"}
_PAIR16 = struct.Struct("=HH").unpack
_PAIR32 = struct.Struct("=II").unpack

# Attribute numbers (uapi).
IFLA_ADDRESS, IFLA_IFNAME, IFLA_MTU, IFLA_MASTER = 1, 3, 4, 10
IFLA_OPERSTATE, IFLA_LINKINFO, IFLA_GROUP, IFLA_CARRIER = 16, 18, 27, 33
IFLA_INFO_KIND = 1
IFA_ADDRESS, IFA_LOCAL = 1, 2
RTA_DST, RTA_OIF, RTA_GATEWAY, RTA_PRIORITY, RTA_PREFSRC = 1, 4, 5, 6, 7
RTA_METRICS, RTA_MULTIPATH, RTA_TABLE, RTA_VIA = 8, 9, 15, 18
RTAX_MTU = 2
FRA_DST, FRA_SRC, FRA_IIFNAME, FRA_GOTO, FRA_PRIORITY, FRA_FWMARK = 1, 2, 3, 4, 6, 10
FRA_SUPPRESS_IFGROUP, FRA_SUPPRESS_PREFIXLEN, FRA_TABLE, FRA_FWMASK = 13, 14, 15, 16
FRA_OIFNAME, FRA_L3MDEV, FRA_UID_RANGE, FRA_PROTOCOL = 17, 19, 20, 21
FRA_IP_PROTO, FRA_SPORT_RANGE, FRA_DPORT_RANGE = 22, 23, 24

NLMSG_ERROR: Final = 2
NLMSG_DONE: Final = 3
RTM_NEWROUTE: Final = 24
RTM_F_CLONED: Final = 0x200
FIB_RULE_INVERT: Final = 0x2
_NONE_U32: Final = 0xFFFFFFFF  # the kernel's "-1": suppress_prefixlength/ifgroup unset

RULE_ACTION_NAMES: Final = {
    1: "lookup",
    2: "goto",
    3: "nop",
    6: "blackhole",
    7: "unreachable",
    8: "prohibit",
}
OPERSTATES: Final = ("UNKNOWN", "NOTPRESENT", "DOWN", "LOWERLAYERDOWN", "TESTING", "DORMANT", "UP")
# IFF_* in the order iproute2 prints them (RUNNING is folded into the carrier field).
IFF_NAMES: Final = (
    (0x8, "LOOPBACK"),
    (0x2, "BROADCAST"),
    (0x10, "POINTOPOINT"),
    (0x1000, "MULTICAST"),
    (0x80, "NOARP"),
    (0x200, "ALLMULTI"),
    (0x100, "PROMISC"),
    (0x20, "NOTRAILERS"),
    (0x4, "DEBUG"),
    (0x8000, "DYNAMIC"),
    (0x4000, "AUTOMEDIA"),
    (0x2000, "PORTSEL"),
    (0x1, "UP"),
    (0x10000, "LOWER_UP"),
    (0x20000, "DORMANT"),
    (0x40000, "ECHO"),
    (0x400, "MASTER"),
    (0x800, "SLAVE"),
)
# RTNH_F_* (per nexthop, also in rtm_flags of a single-path route) and RTM_F_* route flags.
ROUTE_FLAG_NAMES: Final = (
    (0x1, "dead"),
    (0x2, "pervasive"),
    (0x4, "onlink"),
    (0x8, "offload"),
    (0x10, "linkdown"),
    (0x20, "unresolved"),
    (0x40, "trap"),
    (0x4000, "rt_offload"),
    (0x8000, "rt_trap"),
    (0x20000000, "rt_offload_failed"),
)


def netlink_error(buf: bytes, start: int) -> NetlinkError:
    """The NetlinkError for an NLMSG_ERROR whose payload (struct nlmsgerr) starts at ``start``."""
    code = -_ERRNO(buf, start)[0]
    name = errno.errorcode.get(code, str(code))
    return NetlinkError(f"netlink request failed: {name} ({os.strerror(code)})")


def attrs(buf: bytes, off: int, end: int) -> dict[int, bytes]:
    """The attributes (type -> payload) between ``off`` and ``end``; nested flags masked."""
    out: dict[int, bytes] = {}
    unpack = _ATTR
    while off + 4 <= end:
        alen, atype = unpack(buf, off)
        if alen < 4:
            break
        out[atype & 0x3FFF] = buf[off + 4 : off + alen]
        off += (alen + 3) & ~3
    return out


_RARE_ROUTE_ATTRS: Final = frozenset({RTA_METRICS, RTA_MULTIPATH, RTA_VIA})


def _route_attrs(
    buf: bytes, off: int, end: int, table: int
) -> tuple[int, int, int, int, int, int, bool]:
    """One pass over a route's attributes: (table, then payload offsets of dst, gateway,
    oif, priority, prefsrc (0 when absent), and whether a rarer attribute is present).

    An if-chain rather than a dict of offsets: this runs a million times for a big table."""
    d = g = o = m = s = 0
    rare = False
    while off < end:
        alen, atype = _ATTR(buf, off)
        if alen < 4:
            break
        atype &= 0x3FFF
        if atype == RTA_TABLE:
            table = _U32(buf, off + 4)[0]
        elif atype == RTA_DST:
            d = off + 4
        elif atype == RTA_GATEWAY:
            g = off + 4
        elif atype == RTA_OIF:
            o = off + 4
        elif atype == RTA_PRIORITY:
            m = off + 4
        elif atype == RTA_PREFSRC:
            s = off + 4
        elif atype in _RARE_ROUTE_ATTRS:
            rare = True
        off += (alen + 3) & ~3
    return table, d, g, o, m, s, rare


def u32(raw: bytes) -> int:
    return int.from_bytes(raw[:4], _ORDER)


def _cstr(raw: bytes) -> str:
    return sys.intern(raw.split(b"\0", 1)[0].decode("utf-8", "replace"))


def _flag_names(value: int, table: Iterable[tuple[int, str]]) -> tuple[str, ...]:
    return tuple(name for bit, name in table if value & bit)


# ---------------------------------------------------------------------------------- links


def parse_link(buf: bytes, start: int, end: int) -> tuple[Link, int]:
    """One RTM_NEWLINK: the Link (master left unresolved) and its master's ifindex (0: none)."""
    _family, _type, index, flags, _change = _IFINFOMSG(buf, start)
    a = attrs(buf, start + 16, end)
    kind = attrs(a[IFLA_LINKINFO], 0, len(a[IFLA_LINKINFO])) if IFLA_LINKINFO in a else {}
    lladdr = a.get(IFLA_ADDRESS)
    operstate = a[IFLA_OPERSTATE][0] if IFLA_OPERSTATE in a else 0
    link = Link(
        index=index,
        name=_cstr(a.get(IFLA_IFNAME, b"")),
        kind=_cstr(kind[IFLA_INFO_KIND]) if IFLA_INFO_KIND in kind else "",
        flags=_flag_names(flags, IFF_NAMES),
        operstate=OPERSTATES[operstate] if operstate < len(OPERSTATES) else str(operstate),
        carrier=bool(a[IFLA_CARRIER][0]) if IFLA_CARRIER in a else bool(flags & 0x10000),
        mtu=u32(a[IFLA_MTU]) if IFLA_MTU in a else 0,
        address=":".join(f"{b:02x}" for b in lladdr) if lladdr else None,
        group=u32(a[IFLA_GROUP]) if IFLA_GROUP in a else 0,
    )
    return link, u32(a[IFLA_MASTER]) if IFLA_MASTER in a else 0


def resolve_masters(parsed: Iterable[tuple[Link, int]]) -> tuple[Link, ...]:
    """Links with ``master`` as a name (the kernel gives an ifindex)."""
    items = list(parsed)
    names = {link.index: link.name for link, _ in items}
    return tuple(
        msgspec.structs.replace(link, master=names.get(master, str(master))) if master else link
        for link, master in items
    )


# ------------------------------------------------------------------------------ addresses


def parse_address(buf: bytes, start: int, end: int, names: Mapping[int, str]) -> Address:
    """One RTM_NEWADDR. IFA_LOCAL is the local address when present; IFA_ADDRESS then is
    the peer (point-to-point), as in iproute2's print_addrinfo."""
    family, prefixlen, _flags, scope, index = _IFADDRMSG(buf, start)
    a = attrs(buf, start + 8, end)
    local_raw = a.get(IFA_LOCAL) or a.get(IFA_ADDRESS, b"")
    peer_raw = a.get(IFA_ADDRESS)
    peer = socket.inet_ntop(family, peer_raw) if peer_raw and peer_raw != local_raw else None
    return Address(
        dev=names.get(index, str(index)),
        family=4 if family == AF_INET else 6,
        local=socket.inet_ntop(family, local_raw),
        prefixlen=prefixlen,
        scope=scope,
        peer=peer,
    )


# --------------------------------------------------------------------------------- routes


class _Addresses(dict[bytes, str]):
    """Raw address bytes -> text, computed once per distinct address (4 or 16 bytes)."""

    def __missing__(self, raw: bytes) -> str:
        text = self[raw] = _ntop(AF_INET if len(raw) == 4 else AF_INET6, raw)
        return text


class _RouteFlags(dict[int, tuple[str, ...]]):
    """rtm_flags -> flag names, one shared tuple per distinct value."""

    def __missing__(self, value: int) -> tuple[str, ...]:
        names = self[value] = _flag_names(value, ROUTE_FLAG_NAMES)
        return names


class _DeviceNames(dict[int, str]):
    """ifindex -> name; an index the link dump did not show stays visible as its number."""

    def __missing__(self, index: int) -> str:
        return str(index)


class RouteParser:
    """Parses RTM_NEWROUTE messages with caches shared across one dump.

    Gateways, sources and flag tuples repeat across a big table, so each distinct value is
    built once and shared; device names come from the ifindex map (interned once). The
    caches are dicts with ``__missing__`` so a hit costs one C-level subscript.
    """

    def __init__(self, names: Mapping[int, str]) -> None:
        self.names = _DeviceNames(names)
        self._addr = _Addresses()
        self._flags = _RouteFlags()
        self.routes: list[Route] = []

    def feed(self, buf: bytes) -> bool:
        """Parse every route of one received dump buffer into ``routes``; True at NLMSG_DONE.

        Framing and parsing share one loop on purpose: at a million routes every Python
        step per message shows in the benchmark (bench/README.md).
        """
        off = 0
        size = len(buf)
        append = self.routes.append
        parse = self.parse
        while off + 16 <= size:
            length, mtype = _NLHDR(buf, off)
            if length < 16:
                raise NetlinkError(f"malformed netlink message (length {length}) at {off}")
            if mtype == RTM_NEWROUTE:
                route = parse(buf, off + 16, off + length)
                if route is not None:
                    append(route)
            elif mtype == NLMSG_DONE:
                return True
            elif mtype == NLMSG_ERROR:
                raise netlink_error(buf, off + 16)
            off += (length + 3) & ~3
        return False

    def parse(self, buf: bytes, start: int, end: int) -> Route | None:
        """One route; None for a cloned (cache) entry, which is no FIB route."""
        family, dst_len, _src_len, tos, table, proto, scope, rtype, flags = _RTMSG(buf, start)
        if flags & RTM_F_CLONED:
            return None
        table, d, g, o, m, s, rare = _route_attrs(buf, start + 12, end, table)
        width = 4 if family == AF_INET else 16
        addr = self._addr
        route = Route(
            table=table,
            family=4 if family == AF_INET else 6,
            dst=f"{_ntop(family, buf[d : d + width])}/{dst_len}" if d else _DEFAULT[family],
            type=ROUTE_TYPE_NAMES[rtype] if rtype < len(ROUTE_TYPE_NAMES) else str(rtype),
            gateway=addr[buf[g : g + width]] if g else None,
            dev=self.names[_U32(buf, o)[0]] if o else None,
            metric=_U32(buf, m)[0] if m else 0,
            protocol=proto,
            scope=scope,
            prefsrc=addr[buf[s : s + width]] if s else None,
            tos=tos,
            flags=self._flags[flags],
        )
        return self._complete(route, family, attrs(buf, start + 12, end)) if rare else route

    def _complete(self, route: Route, family: int, a: dict[int, bytes]) -> Route:
        """The rarer parts: metrics (mtu), multipath legs, an RTA_VIA gateway."""
        changes: dict[str, object] = {}
        if RTA_METRICS in a:
            metrics = attrs(a[RTA_METRICS], 0, len(a[RTA_METRICS]))
            if RTAX_MTU in metrics:
                changes["mtu"] = u32(metrics[RTAX_MTU])
        if RTA_MULTIPATH in a:
            changes["nexthops"] = self._nexthops(family, a[RTA_MULTIPATH])
        if RTA_VIA in a:
            changes["gateway"] = _via(a[RTA_VIA])
        return msgspec.structs.replace(route, **changes) if changes else route

    def _nexthops(self, family: int, raw: bytes) -> tuple[Nexthop, ...]:
        legs = []
        off = 0
        while off + 8 <= len(raw):
            length, flags, hops, ifindex = _RTNEXTHOP(raw, off)
            if length < 8:
                break
            sub = attrs(raw, off + 8, off + length)
            gw = sub.get(RTA_GATEWAY)
            legs.append(
                Nexthop(
                    gateway=self._addr[gw] if gw else _via_or_none(sub.get(RTA_VIA)),
                    dev=self.names[ifindex],
                    weight=hops + 1,
                    flags=self._flags[flags],
                )
            )
            off += (length + 3) & ~3
        return tuple(legs)


def _via(raw: bytes) -> str:
    # struct rtvia { __kernel_sa_family_t rtvia_family (u16); u8 rtvia_addr[]; }
    family = int.from_bytes(raw[:2], _ORDER)
    return socket.inet_ntop(family, raw[2:])


def _via_or_none(raw: bytes | None) -> str | None:
    return _via(raw) if raw else None


# ---------------------------------------------------------------------------------- rules


def _prefix(family: int, raw: bytes | None, length: int) -> str | None:
    if raw is None:
        return None
    return f"{socket.inet_ntop(family, raw)}/{length}"


def _u32_or_none(a: Mapping[int, bytes], key: int) -> int | None:
    raw = a.get(key)
    if raw is None:
        return None
    value = u32(raw)
    return None if value == _NONE_U32 else value


def _range(raw: bytes | None, wide: bool) -> PortRange | None:
    if raw is None:
        return None
    start, end = (_PAIR32 if wide else _PAIR16)(raw[: 8 if wide else 4])
    return PortRange(start=start, end=end)


def parse_rule(buf: bytes, start: int, end: int) -> Rule:
    """One RTM_NEWRULE (fib_rule_hdr + FRA_* attributes)."""
    family, dst_len, src_len, tos, table, _r1, _r2, action, flags = _FIB_RULE_HDR(buf, start)
    a = attrs(buf, start + 12, end)
    table_id = u32(a[FRA_TABLE]) if FRA_TABLE in a else table
    fwmark = u32(a[FRA_FWMARK]) if FRA_FWMARK in a else None
    fwmask = u32(a[FRA_FWMASK]) if FRA_FWMASK in a else None
    return Rule(
        family=4 if family == AF_INET else 6,
        priority=u32(a[FRA_PRIORITY]) if FRA_PRIORITY in a else 0,
        action=RULE_ACTION_NAMES.get(action, f"action-{action}"),
        table=table_id or None,
        goto=u32(a[FRA_GOTO]) if FRA_GOTO in a else None,
        invert=bool(flags & FIB_RULE_INVERT),
        src=_prefix(family, a.get(FRA_SRC), src_len),
        dst=_prefix(family, a.get(FRA_DST), dst_len),
        iif=_cstr(a[FRA_IIFNAME]) if FRA_IIFNAME in a else None,
        oif=_cstr(a[FRA_OIFNAME]) if FRA_OIFNAME in a else None,
        fwmark=fwmark,
        fwmask=fwmask,
        tos=tos,
        ipproto=a[FRA_IP_PROTO][0] if FRA_IP_PROTO in a else None,
        sport=_range(a.get(FRA_SPORT_RANGE), wide=False),
        dport=_range(a.get(FRA_DPORT_RANGE), wide=False),
        uidrange=_range(a.get(FRA_UID_RANGE), wide=True),
        l3mdev=bool(a[FRA_L3MDEV][0]) if FRA_L3MDEV in a else False,
        suppress_prefixlength=_u32_or_none(a, FRA_SUPPRESS_PREFIXLEN),
        suppress_ifgroup=_u32_or_none(a, FRA_SUPPRESS_IFGROUP),
        protocol=a[FRA_PROTOCOL][0] if FRA_PROTOCOL in a else 0,
    )
