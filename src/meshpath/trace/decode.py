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
LINKTYPE_NULL: Final = 0
LINKTYPE_ETHERNET: Final = 1
LINKTYPE_PPP: Final = 9
LINKTYPE_RAW_BSD: Final = 12  # DLT_RAW as most BSDs number it, seen in files they wrote
LINKTYPE_RAW_OPENBSD: Final = 14  # DLT_RAW on OpenBSD
LINKTYPE_PPP_HDLC: Final = 50
LINKTYPE_RAW: Final = 101
LINKTYPE_LOOP: Final = 108
LINKTYPE_LINUX_SLL: Final = 113
LINKTYPE_IPV4: Final = 228
LINKTYPE_IPV6: Final = 229
LINKTYPE_NFLOG: Final = 239
LINKTYPE_LINUX_SLL2: Final = 276
SUPPORTED_LINKTYPES: Final = {
    LINKTYPE_NULL: "NULL",
    LINKTYPE_ETHERNET: "EN10MB",
    LINKTYPE_PPP: "PPP",
    LINKTYPE_RAW_BSD: "RAW",
    LINKTYPE_RAW_OPENBSD: "RAW",
    LINKTYPE_PPP_HDLC: "PPP_HDLC",
    LINKTYPE_RAW: "RAW",
    LINKTYPE_LOOP: "LOOP",
    LINKTYPE_LINUX_SLL: "LINUX_SLL",
    LINKTYPE_IPV4: "IPV4",
    LINKTYPE_IPV6: "IPV6",
    LINKTYPE_NFLOG: "NFLOG",
    LINKTYPE_LINUX_SLL2: "LINUX_SLL2",
}
# Capture link types that record every interface of the host (tcpdump -i any, nflog):
# a capture of one of these can follow a connection from the tunnel to the LAN.
ALL_INTERFACE_LINKTYPES: Final = frozenset(
    {LINKTYPE_LINUX_SLL, LINKTYPE_LINUX_SLL2, LINKTYPE_NFLOG}
)
# Names of link types meshpath does not read, for the error message (libpcap's names).
OTHER_LINKTYPES: Final = {
    6: "IEEE802_5", 7: "ARCNET_BSD", 8: "SLIP", 10: "FDDI", 51: "PPP_ETHER",
    100: "ATM_RFC1483", 104: "C_HDLC", 105: "IEEE802_11", 107: "FRELAY",
    119: "PRISM_HEADER", 122: "IP_OVER_FC", 123: "SUNATM", 127: "IEEE802_11_RADIOTAP",
    129: "ARCNET_LINUX", 137: "JUNIPER_ATM1", 138: "APPLE_IP_OVER_IEEE1394",
    143: "DOCSIS", 163: "IEEE802_11_AVS", 178: "JUNIPER_ETHER", 187: "BLUETOOTH_HCI_H4",
    189: "USB_LINUX", 192: "PPI", 195: "IEEE802_15_4", 201: "BLUETOOTH_HCI_H4_WITH_PHDR",
    220: "USB_LINUX_MMAPPED", 226: "IPNET", 231: "DBUS", 242: "IPOIB", 249: "USBPCAP",
    253: "NETLINK", 258: "PKTAP", 271: "VSOCK", 281: "DSA_TAG_BRCM", 284: "DSA_TAG_DSA",
    285: "DSA_TAG_EDSA",
}  # fmt: skip


def linktype_name(linktype: int) -> str:
    """``N (NAME)`` as the error messages name a link type."""
    name = SUPPORTED_LINKTYPES.get(linktype) or OTHER_LINKTYPES.get(linktype)
    if name is None and 147 <= linktype <= 162:
        name = f"USER{linktype - 147}"
    return f"{linktype} ({name or 'unknown'})"


def unsupported_text(linktype: int) -> str:
    return f"link type {linktype_name(linktype)} is not supported"


ETH_IPV4: Final = 0x0800
ETH_IPV6: Final = 0x86DD
_VLAN_TYPES: Final = frozenset({0x8100, 0x88A8, 0x9100})  # 802.1Q, 802.1ad (QinQ), old QinQ
_MPLS_TYPES: Final = frozenset({0x8847, 0x8848})  # unicast, multicast
_PPPOE_SESSION: Final = 0x8864  # RFC 2516: a 6-byte header, then PPP's protocol field
_MAX_TAGS: Final = 8  # VLAN tags or MPLS labels followed before giving up on a frame
# Address families a NULL/LOOP header names for IP: AF_INET everywhere, AF_INET6 as Linux,
# NetBSD/OpenBSD, FreeBSD and Darwin number it (libpcap's print-null.c lists the same).
_AF_INET: Final = 2
_AF_INET6: Final = frozenset({10, 24, 28, 30})
_PPP_IPV4: Final = 0x0021
_PPP_IPV6: Final = 0x0057
_CHDLC_ADDRS: Final = frozenset({0x0F, 0x8F})  # Cisco HDLC unicast/broadcast address bytes
_NFULA_IFINDEX_INDEV: Final = 4
_NFULA_IFINDEX_OUTDEV: Final = 5
_NFULA_PAYLOAD: Final = 9
_U32: Final = struct.Struct("!I")
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
        self.order = "<"  # the container's byte order: NFLOG's TLV headers are written in it
        self.by_linktype: dict[int, LinkDecoder] = {
            LINKTYPE_NULL: self.null,
            LINKTYPE_ETHERNET: self.ethernet,
            LINKTYPE_PPP: self.ppp,
            LINKTYPE_RAW_BSD: self.raw,
            LINKTYPE_RAW_OPENBSD: self.raw,
            LINKTYPE_PPP_HDLC: self.ppp,
            LINKTYPE_RAW: self.raw,
            LINKTYPE_LOOP: self.loop,
            LINKTYPE_IPV4: self.raw,
            LINKTYPE_IPV6: self.raw,
            LINKTYPE_NFLOG: self.nflog,
            LINKTYPE_LINUX_SLL: self.sll,
            LINKTYPE_LINUX_SLL2: self.sll2,
        }

    def describe(self, linktypes: list[int]) -> None:
        """The capture's interfaces are known: tell the tracker what it can see."""
        self.sink.single = len(linktypes) <= 1 and not ALL_INTERFACE_LINKTYPES & set(linktypes)

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
        """Ethernet II, with 802.1Q/802.1ad tags (QinQ) and MPLS label stacks."""
        if end - o < 14:
            self.skip("shorter than its link header")
            return
        (etype,) = _ETH_TYPE.unpack_from(buf, o + 12)
        o += 14
        for _ in range(_MAX_TAGS):
            if etype not in _VLAN_TYPES:
                break
            if end - o < 4:
                self.skip("shorter than its link header")
                return
            (etype,) = _ETH_TYPE.unpack_from(buf, o + 2)
            o += 4
        if etype in _MPLS_TYPES:
            self.mpls(buf, o, end, ts, ifkey, edir)
        elif etype == _PPPOE_SESSION:
            self.ppp(buf, o + 6, end, ts, ifkey, edir)
        else:
            self.l3(buf, o, end, ts, ifkey, edir, -1, etype)

    def mpls(self, buf: Buffer, o: int, end: int, ts: int, ifkey: int, edir: Direction) -> None:
        """An MPLS label stack (RFC 3032): pop to the bottom label, then IP by its version."""
        for _ in range(_MAX_TAGS):
            if end - o < 4:
                self.skip("shorter than its MPLS label stack")
                return
            bottom = buf[o + 2] & 1
            o += 4
            if bottom:
                self._ip_by_version(buf, o, end, ts, ifkey, edir)
                return
        self.ignored += 1  # deeper than any stack meshpath expects on a connector

    def null(self, buf: Buffer, o: int, end: int, ts: int, ifkey: int, edir: Direction) -> None:
        """BSD loopback (LINKTYPE_NULL): an address family in the writer's byte order."""
        if end - o < 4:
            self.skip("shorter than its link header")
            return
        family = int.from_bytes(buf[o : o + 4], "little")
        if family & 0xFFFF0000:  # written on a big-endian host (tcpdump swaps the same way)
            family = int.from_bytes(buf[o : o + 4], "big")
        self._af(family, buf, o + 4, end, ts, ifkey, edir)

    def loop(self, buf: Buffer, o: int, end: int, ts: int, ifkey: int, edir: Direction) -> None:
        """OpenBSD loopback (LINKTYPE_LOOP): the address family in network byte order."""
        if end - o < 4:
            self.skip("shorter than its link header")
            return
        self._af(int.from_bytes(buf[o : o + 4], "big"), buf, o + 4, end, ts, ifkey, edir)

    def _af(
        self, family: int, buf: Buffer, o: int, end: int, ts: int, ifkey: int, edir: Direction
    ) -> None:
        if family == _AF_INET or family in _AF_INET6:
            self._ip_by_version(buf, o, end, ts, ifkey, edir)
        else:
            self.ignored += 1

    def ppp(self, buf: Buffer, o: int, end: int, ts: int, ifkey: int, edir: Direction) -> None:
        """PPP (RFC 1661), with or without HDLC-like address/control bytes (RFC 1662),
        protocol field compression, or Cisco HDLC framing (PPP_HDLC captures carry both)."""
        if end < o:
            self.skip("shorter than its link header")
            return
        if end - o >= 4 and buf[o] in _CHDLC_ADDRS:
            (etype,) = _ETH_TYPE.unpack_from(buf, o + 2)
            self.l3(buf, o + 4, end, ts, ifkey, edir, -1, etype)
            return
        if end - o >= 2 and buf[o] == 0xFF and buf[o + 1] == 0x03:
            o += 2
        if end - o >= 1 and buf[o] & 1:  # a compressed one-byte protocol field
            proto, o = buf[o], o + 1
        elif end - o >= 2:
            proto, o = (buf[o] << 8) | buf[o + 1], o + 2
        else:
            self.skip("shorter than its link header")
            return
        if proto == _PPP_IPV4:
            self.ip4(buf, o, end, ts, ifkey, edir, -1)
        elif proto == _PPP_IPV6:
            self.ip6(buf, o, end, ts, ifkey, edir, -1)
        else:
            self.ignored += 1

    def nflog(self, buf: Buffer, o: int, end: int, ts: int, ifkey: int, edir: Direction) -> None:
        """Linux NFLOG (what ``tcpdump -i nflog:N`` writes): TLVs in the writer's byte
        order, interface indexes (big-endian) of where the packet came in and goes out.

        A packet logged in the forward chain has both: it is one sighting coming in on
        one interface and one going out on the other.
        """
        if end - o < 4:
            self.skip("shorter than its link header")
            return
        family, t = buf[o], o + 4
        indev = outdev = 0
        payload: tuple[int, int] | None = None
        tlv = struct.Struct(self.order + "HH")
        while end - t >= 4:
            size, kind = tlv.unpack_from(buf, t)
            if size < 4 or size > end - t:
                break
            kind &= 0x3FFF  # the netlink nesting and byte-order flag bits
            if kind == _NFULA_PAYLOAD:
                payload = (t + 4, t + size)
            elif kind in (_NFULA_IFINDEX_INDEV, _NFULA_IFINDEX_OUTDEV) and size >= 8:
                index = _U32.unpack_from(buf, t + 4)[0]
                indev, outdev = (index, outdev) if kind == _NFULA_IFINDEX_INDEV else (indev, index)
            t += (size + 3) & ~3
        if payload is None or not (family == _AF_INET or family in _AF_INET6):
            self.ignored += 1
            return
        start, stop = payload
        sightings = [(indev, _IN), (outdev, _OUT)] if indev or outdev else [(ifkey, edir)]
        for iface, dirn in sightings:
            if iface:
                self._ip_by_version(buf, start, stop, ts, iface, dirn)

    def _ip_by_version(
        self, buf: Buffer, o: int, end: int, ts: int, iface: int, dirn: Direction
    ) -> None:
        if end <= o:
            self.skip("empty packet")
            return
        version = buf[o] >> 4
        self.l3(buf, o, end, ts, iface, dirn, -1, ETH_IPV6 if version == 6 else ETH_IPV4)

    def raw(self, buf: Buffer, o: int, end: int, ts: int, ifkey: int, edir: Direction) -> None:
        """Raw IP (LINKTYPE_RAW / IPV4 / IPV6, DLT_RAW 12 and 14): the version nibble says which."""
        self._ip_by_version(buf, o, end, ts, ifkey, edir)

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
        if total == 0 and proto == PROTO_TCP:
            # IPv4 BIG TCP (Linux >= 6.3): a GSO segment over 64 KiB has tot_len 0 and is
            # as long as captured; tcpdump reads it the same way ("presumed offload").
            total = end - o
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
        # Payload length 0: a jumbogram (RFC 2675, hop-by-hop jumbo option; IPv6 BIG TCP
        # shows captures one) or an offloaded segment: it is as long as captured.
        ipend = min(o + 40 + plen, end) if plen else end
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
        payload = plen - (t - o - 40) if plen else ipend - t
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
        hlen = (doff >> 4) << 2
        if hlen < 20 or hlen > seglen:
            # tcpdump: "bad hdr length": not a segment a host would have sent or answered
            self.skip("malformed TCP header")
            return
        src = buf[a : a + alen]
        dst = buf[a + alen : a + 2 * alen]
        length = seglen - hlen
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
