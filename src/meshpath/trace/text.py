"""tcpdump's ``-n`` text output, as people paste it into tickets, turned into packets.

Accepted: with or without timestamps (``-tttt`` dates, ``-tt`` epoch seconds, ``-ttt``
deltas, negative ones too), ``-i any`` lines with an interface and a direction
(``eth0  Out IP …``), Linux cooked v1 lines with a direction only, plain lines,
``Flags [S.]`` and the abbreviated ``[S.]``, IPv4 and IPv6 (extension headers too:
``IP6 a > b: DSTOPT 36951 > 80: Flags [S]``), ICMP destination-unreachable lines, and
trailing ``# comments``; tcpdump's ``-v``/``-vv`` (a record's IP header on one line, its
TCP on the next), ``-e`` (link headers, VLAN tags), ``-#`` (packet numbers); lines quoted
with ``> `` as mail and tickets quote them; UTF-8 with a byte-order mark and UTF-16 (what
a Windows shell writes). ``-q`` lines carry no TCP flags: they are counted, and a capture
of nothing else is refused with that reason. Lines that are not packets (tcpdump's
banners, blank lines) are counted and skipped.
"""

from __future__ import annotations

import ipaddress
import itertools
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

_QUOTE: Final = re.compile(r"^\s*(?:>[ \t]?)+")  # "> " as mail and tickets quote a line
_NUMBER: Final = re.compile(r"^\s*\d+ {2}(?=\S)")  # -#: "%5u  " before the record
_LINE: Final = re.compile(
    r"""^\s*
    (?:(?P<time>-?(?:\d{4}-\d\d-\d\d\s+)?\d\d:\d\d:\d\d(?:\.\d+)?|\d+\.\d{6,9})\s+)?
    (?:(?P<ifname>ifindex\s\d+|\S+)\s+(?=(?:In|Out|B|M|P)\s))?
    (?:(?P<dir>In|Out|B|M|P)\s+)?
    (?:PPPoE\s+\[ses\s0x[0-9a-fA-F]+\]\s+)?
    (?:(?P<fam>IP6?)\s+(?!\(0x)|(?P<link>.+))
    (?P<rest>.*)$""",
    re.X,
)
# -e: the link header ends where tcpdump names the network protocol, for each link type
# meshpath reads: "ethertype IPv4 (0x0800), [length N: ]" (the last one, after VLAN tags),
# "AF IPv4 (2), length N: " (NULL/LOOP), "IP (0x0021), length N: " (PPP), "family IPv4
# (2), length N: " (NFLOG), "ip: " (raw IP). "ifindex N" names an interface the reading
# host did not know ("?").
_LINK_END: Final = re.compile(
    r"(?:ethertype IPv[46] \(0x[0-9a-fA-F]{4}\), (?:length \d+: )?"
    r"|\b(?:AF|family) IPv[46] \(\d+\), length \d+: "
    r"|\bIP(?:V?6)? \(0x00(?:21|57)\), length \d+: "
    r"|(?:^|\s)ip: )"
)
_IFINDEX: Final = re.compile(r"\bifindex (\d+)\b")
_TCP: Final = re.compile(
    r"(?P<src>\S+)\.(?P<sport>\d+) > (?P<dst>\S+)\.(?P<dport>\d+): "
    r"(?:Flags )?\[(?P<flags>[^\]]*)\](?P<tail>.*)"
)
# IPv6 with extension headers: addresses, then the headers tcpdump names, then the ports.
_TCP_EXT: Final = re.compile(
    r"(?P<src>[0-9a-fA-F:.]+) > (?P<dst>[0-9a-fA-F:.]+): "
    r"(?:HBH|DSTOPT|RT6|srcrt|frag)\b[^>]*?\s(?P<sport>\d+) > (?P<dport>\d+): "
    r"(?:Flags )?\[(?P<flags>[^\]]*)\](?P<tail>.*)"
)
_QUIET: Final = re.compile(r"\S+\.\d+ > \S+\.\d+: tcp \d+\s*$")
_ICMP: Final = re.compile(
    r"(?P<src>\S+) > (?P<dst>\S+): (?:\[[^\]]*\] )?(?P<word>ICMP6?),? (?P<what>.*)"
)  # -v puts "[bad icmp6 cksum ...]" before the word
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
    quiet_lines: int = 0  # tcpdump -q: a TCP packet whose flags were not printed
    has_interfaces: bool = False  # lines name an interface or a direction (-i any)
    deltas: bool = False  # -ttt: each time is the gap since the line before
    _keys: dict[str, int] = field(default_factory=dict)
    _pending: _Head | None = None  # -v: a record's IP header line, waiting for its TCP line

    def iface_key(self, name: str | None) -> int:
        if name is None:
            return -1
        key = self._keys.get(name)
        if key is None:
            key = TEXT_IFACE_BASE + len(self._keys)
            self._keys[name] = key
            self.names[key] = name
        return key


_BOMS: Final = (
    (b"\xef\xbb\xbf", "utf-8"),
    (b"\xff\xfe", "utf-16-le"),
    (b"\xfe\xff", "utf-16-be"),
)


def _decode(data: bytes) -> str:
    """UTF-8, or what its byte-order mark says (a Windows shell redirect writes UTF-16)."""
    for bom, codec in _BOMS:
        if data.startswith(bom):
            return data[len(bom) :].decode(codec, "replace")
    return data.decode("utf-8", "replace")


def looks_like_text(head: bytes) -> bool:
    """Text if it decodes (UTF-8, or UTF-16 with its byte-order mark) and holds no NUL or
    other control bytes but whitespace."""
    sample = head[:4096]
    if any(sample.startswith(bom) for bom, _ in _BOMS[1:]):
        sample = _decode(sample[: len(sample) & ~1]).encode("utf-8")
    elif sample.startswith(_BOMS[0][0]):
        sample = sample[3:]
    if not sample or b"\0" in sample:
        return False
    try:
        text = sample.decode("utf-8")
    except UnicodeDecodeError:
        text = sample[:-4].decode("utf-8", "replace") if len(sample) >= 4000 else ""
    return bool(text) and all(ch.isprintable() or ch in "\t\r\n" for ch in text)


def parse_text(lines: Iterable[str], name: str) -> TextCapture:
    """Parse tcpdump text; raise CaptureError when not one line is a packet."""
    capture = TextCapture()
    for line in lines:
        quiet = capture.quiet_lines
        pkt = parse_line(line.split("#", 1)[0].rstrip(), capture)
        if pkt is not None:
            capture.packets.append(pkt)
        elif capture.quiet_lines == quiet and capture._pending is None:
            capture.other_lines += 1
    if not capture.packets:
        raise CaptureError(_nothing_found(name, capture))
    if capture.deltas or _looks_like_deltas(capture.packets):
        capture.packets = _accumulate(capture.packets)
    return capture


def _looks_like_deltas(packets: list[Packet]) -> bool:
    """-ttt without a negative gap: the first time is zero and the times do not grow."""
    times = [p.ts_ns for p in packets if p.ts_ns != -1]
    return len(times) > 1 and times[0] == 0 and any(b < a for a, b in itertools.pairwise(times))


def _nothing_found(name: str, capture: TextCapture) -> str:
    if capture.quiet_lines:
        return (
            f"{name}: {capture.quiet_lines} tcpdump -q lines, which print no TCP flags: "
            "run tcpdump again without -q (e.g. tcpdump -n -r FILE)"
        )
    return (
        f"{name}: no tcpdump lines found (expected lines like "
        "'eth0  In  IP 100.64.12.189.9025 > 10.0.1.50.3000: Flags [S], seq 1, ...')"
    )


def _accumulate(packets: list[Packet]) -> list[Packet]:
    """-ttt times are gaps since the line before (negative when out of order): sum them."""
    out, now = [], 0
    for pkt in packets:
        if pkt.ts_ns != -1:
            now += pkt.ts_ns
        out.append(pkt._replace(ts_ns=now if pkt.ts_ns != -1 else -1))
    return out


def iter_lines(data: bytes) -> Iterator[str]:
    return iter(_decode(data).splitlines())


def parse_line(line: str, capture: TextCapture) -> Packet | None:
    line = _QUOTE.sub("", line)
    pending, capture._pending = capture._pending, None
    if pending is not None and line[:1].isspace():
        return _body(pending, line.strip(), line, capture)  # -v: the record's second line
    if line.startswith("\t"):
        return None  # -v: the packet an ICMP error quotes, never a packet of its own
    m = _LINE.match(_NUMBER.sub("", line, count=1))
    if m is None:
        return None
    head, rest = _head(m, capture)
    if head is None:
        return None
    if rest.startswith("("):  # -v: "(tos 0x0, ttl 64, ...)" before the addresses
        rest = _after_parens(rest)
        if not rest:
            capture._pending = head
            return None
    return _body(head, rest, line, capture)


def _head(m: re.Match[str], capture: TextCapture) -> tuple[_Head | None, str]:
    """The line's time, interface and direction; and the text after its link header."""
    word, ifname, rest = m["dir"], m["ifname"], m["rest"]
    if m["link"] is not None:  # -e: "... ethertype IPv4 (0x0800), length 78: <body>"
        found = list(_LINK_END.finditer(m["link"]))
        if not found:
            return None, ""
        rest = m["link"][found[-1].end() :]
        index = _IFINDEX.search(m["link"][: found[-1].start()])
        if index is not None and ifname in (None, "?"):
            ifname = f"ifindex {index.group(1)}"
    pkttype = _PKTTYPES[word] if word else -1
    if word is None:
        dirn = Direction.UNKNOWN
    else:
        dirn = Direction.OUT if pkttype == PKTTYPE_OUTGOING else Direction.IN
        capture.has_interfaces = True
    if ifname is not None:
        capture.has_interfaces = True
    ts = _time_ns(m["time"])
    if m["time"] and m["time"].startswith("-"):
        capture.deltas = True  # only -ttt prints a negative time
    return _Head(ts, capture.iface_key(ifname), dirn, pkttype), rest


def _after_parens(text: str) -> str:
    """The text after a leading balanced ``(...)`` group (-v's IP header details)."""
    depth = 0
    for i, ch in enumerate(text):
        depth += (ch == "(") - (ch == ")")
        if depth == 0:
            return text[i + 1 :].strip()
    return ""


def _body(head: _Head, rest: str, line: str, capture: TextCapture) -> Packet | None:
    tcp = _TCP.match(rest) or _TCP_EXT.match(rest)
    icmp = None if tcp is not None else _ICMP.match(rest)
    if tcp is not None:
        pkt = _tcp_packet(head, tcp)
    elif icmp is not None:
        pkt = _icmp_packet(head, icmp)
    else:
        capture.quiet_lines += bool(_QUIET.match(rest))
        return None
    return pkt._replace(line=line.strip()) if pkt is not None else None


@dataclass(frozen=True, slots=True)
class _Head:
    ts: int
    iface: int
    dirn: Direction
    pkttype: int


def _time_ns(text: str | None) -> int:
    """Nanoseconds of the day (or since the epoch with -tt; signed with -ttt); -1: none."""
    if not text:
        return -1
    sign = -1 if text.startswith("-") else 1
    whole, _, frac = text.lstrip("-").split()[-1].partition(".")
    seconds = 0
    for part in whole.split(":"):
        seconds = seconds * 60 + int(part)
    return sign * (seconds * 1_000_000_000 + int((frac + "000000000")[:9]))


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
    if "bad hdr length" in m["tail"]:
        return None  # tcpdump found the TCP header malformed (the pcap reader skips it too)
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
