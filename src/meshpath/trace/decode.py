"""Link, IP and TCP/ICMP decoding on raw bytes: the per-packet hot path.

Speed matters here (a 200 MB capture holds ~2.3M packets), so the decoder works on the
capture buffer in place with precompiled :mod:`struct` formats, and only packets that can
change a verdict (SYN, RST, FIN, ICMP errors, the handshake's last ACK) become
:class:`~meshpath.trace.packet.Packet` objects; plain data segments of a known flow only
bump a counter, and everything else is counted and dropped.

Interface keys: an SLL2 packet carries the kernel ifindex (key = ifindex > 0); pcapng
interfaces without one get ``IDB_BASE + idb_index``; Linux cooked v1 records only the
hardware type, so its key is ``-1 - hatype`` (tun and Ethernet devices stay apart, two
Ethernet devices do not).
"""

from __future__ import annotations

import mmap
import struct
from collections import Counter
from collections.abc import Callable
from typing import TYPE_CHECKING, Final

from meshpath.trace.packet import (
    PKTTYPE_OUTGOING,
    PROTO_ICMP,
    PROTO_ICMP6,
    PROTO_TCP,
    Direction,
    Inner,
    Packet,
)

Buffer = bytes | mmap.mmap  # slices of both are bytes

IDB_BASE: Final = 1 << 32
LINKTYPE_ETHERNET: Final = 1
LINKTYPE_RAW: Final = 101
LINKTYPE_LINUX_SLL: Final = 113
LINKTYPE_IPV4: Final = 228
LINKTYPE_IPV6: Final = 229
LINKTYPE_LINUX_SLL2: Final = 276
SUPPORTED_LINKTYPES: Final = {
    LINKTYPE_ETHERNET: "EN10MB",
    LINKTYPE_RAW: "RAW",
    LINKTYPE_LINUX_SLL: "LINUX_SLL",
    LINKTYPE_IPV4: "IPV4",
    LINKTYPE_IPV6: "IPV6",
    LINKTYPE_LINUX_SLL2: "LINUX_SLL2",
}

ETH_IPV4: Final = 0x0800
ETH_IPV6: Final = 0x86DD
_VLAN_TYPES: Final = frozenset({0x8100, 0x88A8})
_IPV6_EXT: Final = frozenset({0, 43, 60})  # hop-by-hop, routing, destination options
_IPV6_FRAG: Final = 44
_IN: Final = Direction.IN
_OUT: Final = Direction.OUT

_SLL: Final = struct.Struct("!HH10xH")  # pkttype, hatype, (halen, addr), protocol
_SLL2: Final = struct.Struct("!H2xIHB")  # protocol, ifindex, hatype, pkttype
_ETH_TYPE: Final = struct.Struct("!H")
_IP4: Final = struct.Struct("!BxH2xHxB")  # ver/ihl, total length, flags/fragment, protocol
_IP6: Final = struct.Struct("!4xHB")  # payload length, next header
_TCP: Final = struct.Struct("!HHIIBxH")  # sport, dport, seq, ack, data offset, window
_PORTS_SEQ: Final = struct.Struct("!HHI")
_ICMP: Final = struct.Struct("!BB")

if TYPE_CHECKING:
    from meshpath.trace.flows import Tracker

LinkDecoder = Callable[[Buffer, int, int, int, int, Direction], None]


class Decoder:
    """Turns frames into tracker calls; counts what it skips and why."""

    def __init__(self, sink: Tracker) -> None:
        self.sink = sink
        self.legs = sink.legs
        self.packets = 0
        self.ignored = 0  # valid packets that cannot matter (non-TCP, unknown flows)
        self.skipped: Counter[str] = Counter()
        self.by_linktype: dict[int, LinkDecoder] = {
            LINKTYPE_ETHERNET: self.ethernet,
            LINKTYPE_RAW: self.raw,
            LINKTYPE_IPV4: self.raw,
            LINKTYPE_IPV6: self.raw,
            LINKTYPE_LINUX_SLL: self.sll,
            LINKTYPE_LINUX_SLL2: self.sll2,
        }

    def skip(self, reason: str) -> None:
        self.skipped[reason] += 1

    # -- link layers -------------------------------------------------------------------

    def sll(self, buf: Buffer, o: int, end: int, ts: int, ifkey: int, edir: Direction) -> None:
        """Linux cooked v1 (LINKTYPE_LINUX_SLL): packet type gives the direction."""
        if end - o < 16:
            self.skip("shorter than its link header")
            return
        pkttype, hatype, proto = _SLL.unpack_from(buf, o)
        dirn = _OUT if pkttype == PKTTYPE_OUTGOING else _IN
        self.l3(buf, o + 16, end, ts, -1 - hatype, dirn, pkttype, proto)

    def sll2(self, buf: Buffer, o: int, end: int, ts: int, ifkey: int, edir: Direction) -> None:
        """Linux cooked v2 (LINKTYPE_LINUX_SLL2): interface index and packet type."""
        if end - o < 20:
            self.skip("shorter than its link header")
            return
        proto, ifindex, _hatype, pkttype = _SLL2.unpack_from(buf, o)
        dirn = _OUT if pkttype == PKTTYPE_OUTGOING else _IN
        if proto == ETH_IPV4:  # the common case, without the l3() hop
            self.ip4(buf, o + 20, end, ts, ifindex, dirn, pkttype)
        else:
            self.l3(buf, o + 20, end, ts, ifindex, dirn, pkttype, proto)

    def ethernet(self, buf: Buffer, o: int, end: int, ts: int, ifkey: int, edir: Direction) -> None:
        """Ethernet II, with at most one 802.1Q/802.1ad tag."""
        if end - o < 14:
            self.skip("shorter than its link header")
            return
        (etype,) = _ETH_TYPE.unpack_from(buf, o + 12)
        o += 14
        if etype in _VLAN_TYPES:
            if end - o < 4:
                self.skip("shorter than its link header")
                return
            (etype,) = _ETH_TYPE.unpack_from(buf, o + 2)
            o += 4
        self.l3(buf, o, end, ts, ifkey, edir, -1, etype)

    def raw(self, buf: Buffer, o: int, end: int, ts: int, ifkey: int, edir: Direction) -> None:
        """Raw IP (LINKTYPE_RAW / IPV4 / IPV6): the version nibble says which."""
        if end <= o:
            self.skip("empty packet")
            return
        version = buf[o] >> 4
        self.l3(buf, o, end, ts, ifkey, edir, -1, ETH_IPV6 if version == 6 else ETH_IPV4)

    def l3(
        self,
        buf: Buffer,
        o: int,
        end: int,
        ts: int,
        iface: int,
        dirn: Direction,
        pkttype: int,
        etype: int,
    ) -> None:
        if etype == ETH_IPV4:
            self.ip4(buf, o, end, ts, iface, dirn, pkttype)
        elif etype == ETH_IPV6:
            self.ip6(buf, o, end, ts, iface, dirn, pkttype)
        else:
            self.ignored += 1

    # -- IP ----------------------------------------------------------------------------

    def ip4(
        self, buf: Buffer, o: int, end: int, ts: int, iface: int, dirn: Direction, pkttype: int
    ) -> None:
        if end - o < 20:
            self.skip("shorter than its IPv4 header")
            return
        vihl, total, frag, proto = _IP4.unpack_from(buf, o)
        ihl = (vihl & 15) << 2
        if vihl >> 4 != 4 or ihl < 20 or total < ihl or end - o < ihl:
            self.skip("malformed IPv4 header")
            return
        if frag & 0x1FFF:  # a later fragment carries no transport header
            self.ignored += 1
            return
        ipend = o + total  # snaplen may cut the packet; total says what was sent
        if ipend > end:
            ipend = end
        t = o + ihl
        if proto == PROTO_TCP:
            self.tcp(buf, o + 12, 4, t, ipend, total - ihl, ts, iface, dirn, pkttype)
        elif proto == PROTO_ICMP:
            self.icmp(buf, o + 12, 4, t, ipend, total - ihl, ts, iface, dirn, pkttype)
        else:
            self.ignored += 1

    def ip6(
        self, buf: Buffer, o: int, end: int, ts: int, iface: int, dirn: Direction, pkttype: int
    ) -> None:
        if end - o < 40:
            self.skip("shorter than its IPv6 header")
            return
        if buf[o] >> 4 != 6:
            self.skip("malformed IPv6 header")
            return
        plen, nxt = _IP6.unpack_from(buf, o)
        ipend = min(o + 40 + plen, end)
        t = o + 40
        while nxt in _IPV6_EXT or nxt == _IPV6_FRAG:
            if ipend - t < 8:
                self.skip("shorter than its IPv6 extension headers")
                return
            if nxt == _IPV6_FRAG and _ETH_TYPE.unpack_from(buf, t + 2)[0] & 0xFFF8:
                self.ignored += 1
                return
            size = 8 if nxt == _IPV6_FRAG else (buf[t + 1] + 1) * 8
            nxt = buf[t]
            t += size
        payload = plen - (t - o - 40)
        if nxt == PROTO_TCP:
            self.tcp(buf, o + 8, 16, t, ipend, payload, ts, iface, dirn, pkttype)
        elif nxt == PROTO_ICMP6:
            self.icmp(buf, o + 8, 16, t, ipend, payload, ts, iface, dirn, pkttype)
        else:
            self.ignored += 1

    # -- transport ---------------------------------------------------------------------

    def tcp(
        self,
        buf: Buffer,
        a: int,
        alen: int,
        t: int,
        ipend: int,
        seglen: int,
        ts: int,
        iface: int,
        dirn: Direction,
        pkttype: int,
    ) -> None:
        """``a`` is where the source address starts; the destination follows it."""
        if ipend - t < 20:
            self.skip("shorter than its TCP header")
            return
        flags = buf[t + 13]
        if not flags & 0x07:  # no SYN/FIN/RST: only known flows care, and only to count
            flow = self.legs.get(buf[a : a + 2 * alen] + buf[t : t + 4])
            if flow is None:
                self.ignored += 1
                return
            if not flow.want_ack:
                flow.data_packets += 1
                return
        sport, dport, seq, ack, doff, win = _TCP.unpack_from(buf, t)
        src = buf[a : a + alen]
        dst = buf[a + alen : a + 2 * alen]
        length = max(seglen - ((doff >> 4) << 2), 0)
        self.sink.packet(
            Packet(
                ts, iface, dirn, pkttype, src, dst, PROTO_TCP, sport, dport, flags, seq, ack,
                win, length,
            )
        )  # fmt: skip

    def icmp(
        self,
        buf: Buffer,
        a: int,
        alen: int,
        t: int,
        ipend: int,
        length: int,
        ts: int,
        iface: int,
        dirn: Direction,
        pkttype: int,
    ) -> None:
        """ICMP / ICMPv6 errors that quote a TCP header (RFC 792, RFC 4443)."""
        if ipend - t < 8:
            self.skip("shorter than its ICMP header")
            return
        itype, code = _ICMP.unpack_from(buf, t)
        v6 = alen == 16
        if itype not in ((1, 3) if v6 else (3, 11)):
            self.ignored += 1
            return
        inner = quoted_header(buf, t + 8, ipend)
        if inner is None:
            self.skip("ICMP error quoting no usable header")
            return
        proto = PROTO_ICMP6 if v6 else PROTO_ICMP
        src, dst = buf[a : a + alen], buf[a + alen : a + 2 * alen]
        self.sink.packet(
            Packet(
                ts, iface, dirn, pkttype, src, dst, proto, 0, 0, 0, 0, 0, 0, length, itype,
                code, inner,
            )
        )  # fmt: skip


def quoted_header(buf: Buffer, o: int, end: int) -> Inner | None:
    """The IPv4/IPv6 header plus 8 transport bytes an ICMP error quotes, if TCP."""
    if end - o < 20:
        return None
    version = buf[o] >> 4
    if version == 4:
        ihl = (buf[o] & 15) << 2
        proto, src, dst, t = buf[o + 9], buf[o + 12 : o + 16], buf[o + 16 : o + 20], o + ihl
    elif version == 6 and end - o >= 40:
        proto, src, dst, t = buf[o + 6], buf[o + 8 : o + 24], buf[o + 24 : o + 40], o + 40
    else:
        return None
    if proto != PROTO_TCP or end - t < 8 or t < o + 20:
        return None
    sport, dport, seq = _PORTS_SEQ.unpack_from(buf, t)
    return Inner(src, dst, proto, sport, dport, seq)
