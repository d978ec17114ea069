"""tcpdump's ``-n`` text output, as people paste it into tickets, turned into packets.

Accepted: with or without timestamps (``-tttt`` dates too), ``-i any`` lines with an
interface and a direction (``eth0  Out IP …``), Linux cooked v1 lines with a direction
only, plain lines, ``Flags [S.]`` and the abbreviated ``[S.]``, IPv4 and IPv6, ICMP
destination-unreachable lines, and trailing ``# comments``. Lines that are not packets
(tcpdump's banners, blank lines) are counted and skipped.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Final

from meshpath.errors import CaptureError
from meshpath.trace.packet import (
    ACK,
    CWR,
    ECE,
    FIN,
    PKTTYPE_OUTGOING,
    PROTO_ICMP,
    PROTO_ICMP6,
    PROTO_TCP,
    PSH,
    RST,
    SYN,
    URG,
    Direction,
    Inner,
    Packet,
)

TEXT_IFACE_BASE: Final = 1 << 40
_PKTTYPES: Final = {"In": 0, "B": 1, "M": 2, "P": 3, "Out": PKTTYPE_OUTGOING}
_FLAGS: Final = {"S": SYN, "F": FIN, "P": PSH, "R": RST, "U": URG, "E": ECE, "W": CWR, ".": ACK}

_LINE: Final = re.compile(
    r"""^\s*
    (?:(?:\d{4}-\d\d-\d\d\s+)?(?P<time>\d\d:\d\d:\d\d(?:\.\d+)?)\s+)?
    (?:(?P<ifname>ifindex\s\d+|\S+)\s+(?=(?:In|Out|B|M|P)\s))?
    (?:(?P<dir>In|Out|B|M|P)\s+)?
    (?P<fam>IP6?)\s+(?P<rest>.*)$""",
    re.X,
)
_TCP: Final = re.compile(
    r"(?P<src>\S+)\.(?P<sport>\d+) > (?P<dst>\S+)\.(?P<dport>\d+): "
    r"(?:Flags )?\[(?P<flags>[^\]]*)\](?P<tail>.*)"
)
_ICMP: Final = re.compile(r"(?P<src>\S+) > (?P<dst>\S+): (?P<word>ICMP6?),? (?P<what>.*)")
# Numbers of at most 20 digits (u64): a longer run is no number tcpdump printed, and int()
# refuses strings past 4,300 digits.
_SEQ: Final = re.compile(r"\bseq (\d{1,20})(?::(\d{1,20}))?\b")
_ACK: Final = re.compile(r"\back (\d{1,20})\b")
_WIN: Final = re.compile(r"\bwin (\d{1,20})\b")
_LEN: Final = re.compile(r"\blength (\d{1,20})\b")
_PORT_UNREACH: Final = re.compile(r"(\S+) tcp port (\d+) unreachable")
_HOST_UNREACH: Final = re.compile(r"\b(net|host) (\S+) unreachable")
_ADDR6_PORT: Final = re.compile(r"([0-9a-fA-F:.]+) tcp port (\d+)")
_ADDR6_ANY: Final = re.compile(r"unreachable[ a-z]*? ([0-9a-fA-F:]*:[0-9a-fA-F:.]+)")


@dataclass(slots=True)
class TextCapture:
    """Packets parsed from text, the interface names they used, and what was skipped."""

    packets: list[Packet] = field(default_factory=list)
    names: dict[int, str] = field(default_factory=dict)
    other_lines: int = 0
    _keys: dict[str, int] = field(default_factory=dict)

    def iface_key(self, name: str | None) -> int:
        if name is None:
            return -1
        key = self._keys.get(name)
        if key is None:
            key = TEXT_IFACE_BASE + len(self._keys)
            self._keys[name] = key
            self.names[key] = name
        return key


def looks_like_text(head: bytes) -> bool:
    """Text if it decodes as UTF-8 and holds no NUL or other control bytes but whitespace."""
    sample = head[:4096]
    if not sample or b"\0" in sample:
        return False
    try:
        text = sample.decode("utf-8")
    except UnicodeDecodeError:
        text = sample[:-4].decode("utf-8", "replace") if len(sample) == 4096 else ""
    return bool(text) and all(ch.isprintable() or ch in "\t\r\n" for ch in text)


def parse_text(lines: Iterable[str], name: str) -> TextCapture:
    """Parse tcpdump text; raise CaptureError when not one line is a packet."""
    capture = TextCapture()
    for line in lines:
        pkt = parse_line(line.split("#", 1)[0].rstrip(), capture)
        if pkt is None:
            capture.other_lines += 1
        else:
            capture.packets.append(pkt)
    if not capture.packets:
        raise CaptureError(
            f"{name}: no tcpdump lines found (expected lines like "
            "'eth0  In  IP 100.64.12.189.9025 > 10.0.1.50.3000: Flags [S], seq 1, ...')"
        )
    return capture


def iter_lines(data: bytes) -> Iterator[str]:
    return iter(data.decode("utf-8", "replace").splitlines())


def parse_line(line: str, capture: TextCapture) -> Packet | None:
    m = _LINE.match(line)
    if m is None:
        return None
    word = m["dir"]
    pkttype = _PKTTYPES[word] if word else -1
    if word is None:
        dirn = Direction.UNKNOWN
    else:
        dirn = Direction.OUT if pkttype == PKTTYPE_OUTGOING else Direction.IN
    head = _Head(_time_ns(m["time"]), capture.iface_key(m["ifname"]), dirn, pkttype)
    rest = m["rest"]
    tcp = _TCP.match(rest)
    icmp = None if tcp is not None else _ICMP.match(rest)
    if tcp is not None:
        pkt = _tcp_packet(head, tcp)
    else:
        pkt = _icmp_packet(head, icmp) if icmp is not None else None
    return pkt._replace(line=line.strip()) if pkt is not None else None


@dataclass(frozen=True, slots=True)
class _Head:
    ts: int
    iface: int
    dirn: Direction
    pkttype: int


def _time_ns(text: str | None) -> int:
    if not text:
        return -1
    hms, _, frac = text.partition(".")
    h, m, s = (int(x) for x in hms.split(":"))
    return ((h * 60 + m) * 60 + s) * 1_000_000_000 + int((frac + "000000000")[:9])


def _addr(text: str) -> bytes | None:
    try:
        return ipaddress.ip_address(text).packed
    except ValueError:
        return None


def _port(text: str) -> int:
    """A TCP port, or -1 when the digits name none (a line with one is not a packet)."""
    return int(text) if len(text) <= 5 and int(text) <= 0xFFFF else -1


def _num(pattern: re.Pattern[str], text: str) -> int:
    m = pattern.search(text)
    return int(m.group(1)) & 0xFFFFFFFF if m else 0


def _tcp_packet(head: _Head, m: re.Match[str]) -> Packet | None:
    src, dst = _addr(m["src"]), _addr(m["dst"])
    sport, dport = _port(m["sport"]), _port(m["dport"])
    if src is None or dst is None or len(src) != len(dst) or sport < 0 or dport < 0:
        return None
    flags = 0 if m["flags"] == "none" else sum(_FLAGS.get(ch, 0) for ch in set(m["flags"]))
    tail = m["tail"]
    seq = _SEQ.search(tail)
    length = int(seq.group(2)) - int(seq.group(1)) if seq and seq.group(2) else _num(_LEN, tail)
    return Packet(
        head.ts, head.iface, head.dirn, head.pkttype, src, dst, PROTO_TCP,
        sport, dport, flags, _num(_SEQ, tail), _num(_ACK, tail),
        _num(_WIN, tail), max(length, 0) & 0xFFFFFFFF,
    )  # fmt: skip


def _icmp_packet(head: _Head, m: re.Match[str]) -> Packet | None:
    src, dst = _addr(m["src"]), _addr(m["dst"])
    if src is None or dst is None or len(src) != len(dst):
        return None
    v6 = m["word"] == "ICMP6"
    found = _icmp_target(m["what"], v6)
    if found is None:
        return None
    target, port, code = found
    if len(target) != len(src):
        return None
    # Text does not quote the original source port: -1 asks the tracker to match loosely.
    inner = Inner(dst, target, PROTO_TCP, -1, port, 0)
    return Packet(
        head.ts, head.iface, head.dirn, head.pkttype, src, dst,
        PROTO_ICMP6 if v6 else PROTO_ICMP, 0, 0, 0, 0, 0, 0, _num(_LEN, m["what"]),
        1 if v6 else 3, code, inner,
    )  # fmt: skip


def _icmp_target(what: str, v6: bool) -> tuple[bytes, int, int] | None:
    """(unreachable address, port or -1, ICMP code) from the text of an ICMP error."""
    if "unreachable" not in what:
        return None
    port = _PORT_UNREACH.search(what) or (_ADDR6_PORT.search(what) if v6 else None)
    if port is not None:
        addr, number = _addr(port.group(1)), _port(port.group(2))
        return (addr, number, 4 if v6 else 3) if addr and number >= 0 else None
    host = None if v6 else _HOST_UNREACH.search(what)
    if host is not None:
        addr = _addr(host.group(2))
        return (addr, -1, 0 if host.group(1) == "net" else 1) if addr else None
    any6 = _ADDR6_ANY.search(what) if v6 else None
    addr = _addr(any6.group(1)) if any6 else None
    return (addr, -1, 3) if addr else None
