"""pcap and pcapng containers: walk the records of a buffer and hand each frame on.

Pure on bytes: the caller passes ``bytes`` or an ``mmap`` (slices of both are bytes), so a
capture of any size is read in place and never copied whole. Formats:

* pcap (libpcap ``savefile.c``): magic ``a1b2c3d4`` (microseconds) or ``a1b23c4d``
  (nanoseconds), either byte order; link type in the header's low 16 bits.
* pcapng (IETF draft-ietf-opsawg-pcapng): Section Header Blocks in either byte order,
  Interface Description Blocks (link type, ``if_name``, ``if_tsresol``), Enhanced Packet
  Blocks (``epb_flags`` gives the direction), Simple Packet Blocks, the obsolete Packet
  Block; every other block type is skipped by its length.

A record that claims more bytes than remain (a capture cut off mid-write) ends the walk
with a noted skip; a header that cannot be a capture raises :class:`CaptureError`.
"""

from __future__ import annotations

import mmap
import struct
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Final

from meshpath.errors import CaptureError
from meshpath.trace.decode import (
    IDB_BASE,
    LINKTYPE_ETHERNET,
    LINKTYPE_IPV4,
    LINKTYPE_LINUX_SLL,
    LINKTYPE_LINUX_SLL2,
    LINKTYPE_LOOP,
    LINKTYPE_NULL,
    LINKTYPE_RAW,
    LINKTYPE_RAW_BSD,
    LINKTYPE_RAW_OPENBSD,
    SUPPORTED_LINKTYPES,
    Buffer,
    Decoder,
    unsupported_text,
)
from meshpath.trace.packet import MAX_TS_NS, Direction

PCAP_MAGIC_US: Final = 0xA1B2C3D4
PCAP_MAGIC_NS: Final = 0xA1B23C4D
PCAPNG_SHB: Final = 0x0A0D0D0A
PCAPNG_BOM: Final = 0x1A2B3C4D
_IDB: Final = 0x00000001
_PB: Final = 0x00000002
_SPB: Final = 0x00000003
_EPB: Final = 0x00000006
# libpcap's MAXIMUM_SNAPLEN: no real record is larger, so a bigger caplen means corruption.
MAX_RECORD: Final = 262_144
_OPT_END: Final = 0
_IF_NAME: Final = 2
_IF_TSRESOL: Final = 9
_EPB_FLAGS: Final = 2


@dataclass(slots=True)
class Interface:
    """One pcapng Interface Description Block (or the single interface of a pcap)."""

    linktype: int
    snaplen: int
    name: str | None = None
    ts_mul: int = 1000  # timestamp units -> ns: units * ts_mul // ts_div
    ts_div: int = 1


@dataclass(slots=True)
class CaptureInfo:
    """What the container said about itself."""

    format: str = ""
    interfaces: list[Interface] = field(default_factory=list)
    records: int = 0
    truncated: bool = False


def sniff_format(head: bytes) -> str:
    """``pcap``, ``pcapng`` or ``other`` from the first four bytes."""
    if len(head) < 4:
        return "other"
    le, be = struct.unpack("<I", head[:4])[0], struct.unpack(">I", head[:4])[0]
    if PCAP_MAGIC_US in (le, be) or PCAP_MAGIC_NS in (le, be):
        return "pcap"
    if le == PCAPNG_SHB:
        return "pcapng"
    return "other"


def walk(buf: Buffer, decoder: Decoder, name: str) -> CaptureInfo:
    """Walk every record of ``buf`` (pcap or pcapng) into ``decoder``."""
    kind = sniff_format(bytes(buf[:4]))
    if kind == "pcap":
        return walk_pcap(buf, decoder, name)
    if kind == "pcapng":
        return walk_pcapng(buf, decoder, name)
    raise CaptureError(f"{name}: not a pcap or pcapng file (magic {bytes(buf[:4]).hex()})")


# -- pcap ------------------------------------------------------------------------------


def _pcap_header(buf: Buffer, name: str) -> tuple[str, int, int, int]:
    if len(buf) < 24:
        raise CaptureError(f"{name}: pcap file header cut short ({len(buf)} of 24 bytes)")
    (magic,) = struct.unpack_from("<I", buf, 0)
    order = "<" if magic in (PCAP_MAGIC_US, PCAP_MAGIC_NS) else ">"
    (magic,) = struct.unpack_from(order + "I", buf, 0)
    snaplen, network = struct.unpack_from(order + "II", buf, 16)
    linktype = network & 0xFFFF  # upper bits: FCS length flags (pcap-savefile(5))
    mul = 1 if magic == PCAP_MAGIC_NS else 1000
    return order, snaplen, linktype, mul


# Where IPv4 starts and where the link header says "IPv4" (-1: raw IP, check the version).
_FAST_LINKS: Final = {
    LINKTYPE_LINUX_SLL2: (20, 0),
    LINKTYPE_LINUX_SLL: (16, 14),
    LINKTYPE_ETHERNET: (14, 12),
    LINKTYPE_RAW: (0, -1),
    LINKTYPE_RAW_BSD: (0, -1),
    LINKTYPE_RAW_OPENBSD: (0, -1),
    LINKTYPE_IPV4: (0, -1),
    LINKTYPE_NULL: (4, -1),
    LINKTYPE_LOOP: (4, -1),
}
_RELEASE_EVERY: Final = 64 << 20  # drop mapped pages behind the cursor every 64 MiB


def walk_pcap(buf: Buffer, decoder: Decoder, name: str) -> CaptureInfo:
    order, snaplen, linktype, mul = _pcap_header(buf, name)
    if linktype not in decoder.by_linktype:
        raise CaptureError(f"{name}: {unsupported_text(linktype)} ({_supported()})")
    decoder.order = order
    decoder.describe([linktype])
    info = CaptureInfo("pcap", [Interface(linktype, snaplen, None, mul)])
    off, count = _pcap_records(buf, decoder, name, order, snaplen, linktype, mul)
    if off < len(buf):
        info.truncated = True
        decoder.skip("record cut off at the end of the file")
    info.records = count
    decoder.packets += count
    return info


def _pcap_records(  # noqa: C901 - the hot loop stays one function: a call per packet costs ~10%
    buf: Buffer, decoder: Decoder, name: str, order: str, snaplen: int, linktype: int, mul: int
) -> tuple[int, int]:
    """Walk the records; return (where the walk stopped, records read).

    Plain IPv4 TCP segments without SYN/FIN/RST are handled inline (flow lookup and a
    counter); every other frame goes to the decoder's link handler, which does it all.
    """
    handler = decoder.by_linktype[linktype]
    l2len, etype_at = _FAST_LINKS.get(linktype, (-1, -1))
    fast = l2len >= 0
    legs, ignored = decoder.legs, 0
    unpack = struct.Struct(order + "IIII").unpack_from
    limit = max(snaplen, MAX_RECORD)
    release = getattr(buf, "madvise", None)
    released = 0
    off, n, count, base, unknown = 24, len(buf), 0, IDB_BASE, Direction.UNKNOWN
    while off + 16 <= n:
        sec, frac, caplen, _origlen = unpack(buf, off)
        rec = off + 16
        if caplen > n - rec:
            break
        if caplen > limit:
            raise CaptureError(
                f"{name}: record {count + 1} at byte {off} claims {caplen} bytes "
                f"(snaplen {snaplen}); the file is corrupt"
            )
        count += 1
        off = end = rec + caplen
        if fast:
            o = rec + l2len
            # IPv4 without options or fragment offset, TCP, a full header, no SYN/FIN/RST
            if (
                end - o >= 40
                and (etype_at < 0 or (buf[rec + etype_at] == 8 and buf[rec + etype_at + 1] == 0))
                and buf[o] == 0x45
                and buf[o + 9] == 6
                and not (buf[o + 6] & 0x1F or buf[o + 7])
                and not buf[o + 33] & 0x07
            ):
                flow = legs.get(buf[o + 12 : o + 24])
                if flow is None:
                    ignored += 1
                    continue
                if not flow.want_ack:
                    flow.data_packets += 1
                    continue
        handler(buf, rec, end, sec * 1_000_000_000 + frac * mul, base, unknown)
        if release is not None and off - released > _RELEASE_EVERY:
            released = _release(release, released, off)
    decoder.ignored += ignored
    return off, count


def _release(madvise: Callable[[int, int, int], None], start: int, upto: int) -> int:
    """MADV_DONTNEED on pages already read: the page cache keeps them, our RSS does not."""
    upto -= upto % mmap.PAGESIZE
    madvise(mmap.MADV_DONTNEED, start, upto - start)
    return upto


def _supported() -> str:
    return "supported: " + ", ".join(f"{k} {v}" for k, v in sorted(SUPPORTED_LINKTYPES.items()))


def _refuse_unreadable(decoder: Decoder, name: str) -> None:
    """A pcapng none of whose packets has a readable link type fails as a pcap would."""
    unreadable = [r for r in decoder.skipped if r.endswith(" is not supported")]
    if unreadable and sum(decoder.skipped[r] for r in unreadable) == decoder.packets:
        raise CaptureError(f"{name}: {unreadable[0]} ({_supported()})")


# -- pcapng ----------------------------------------------------------------------------


@dataclass(slots=True)
class _Section:
    order: str
    interfaces: list[Interface] = field(default_factory=list)


def walk_pcapng(buf: Buffer, decoder: Decoder, name: str) -> CaptureInfo:
    info = CaptureInfo("pcapng")
    section: _Section | None = None
    off, n = 0, len(buf)
    while off + 12 <= n:
        btype, blen = _block_head(buf, off, section)
        if btype == PCAPNG_SHB:
            section = _read_shb(buf, off, name)
            decoder.order = section.order
            btype, blen = _block_head(buf, off, section)
        if section is None:
            raise CaptureError(f"{name}: pcapng file does not start with a section header")
        if blen < 12 or blen % 4:
            raise CaptureError(f"{name}: pcapng block at byte {off} has bad length {blen}")
        if blen > n - off:
            info.truncated = True
            decoder.skip("block cut off at the end of the file")
            break
        _dispatch(buf, off, btype, blen, section, info, decoder)
        off += blen
    if 0 < n - off < 12:
        info.truncated = True
        decoder.skip("block header cut off at the end of the file")
    _refuse_unreadable(decoder, name)
    return info


def _block_head(buf: Buffer, off: int, section: _Section | None) -> tuple[int, int]:
    order = section.order if section else "<"
    btype, blen = struct.unpack_from(order + "II", buf, off)
    return int(btype), int(blen)


def _read_shb(buf: Buffer, off: int, name: str) -> _Section:
    if len(buf) - off < 28:
        raise CaptureError(f"{name}: pcapng section header at byte {off} cut short")
    (bom,) = struct.unpack_from("<I", buf, off + 8)
    if bom == PCAPNG_BOM:
        return _Section("<")
    if bom == 0x4D3C2B1A:
        return _Section(">")
    raise CaptureError(f"{name}: pcapng section header at byte {off} has a bad byte-order magic")


def _dispatch(
    buf: Buffer,
    off: int,
    btype: int,
    blen: int,
    section: _Section,
    info: CaptureInfo,
    decoder: Decoder,
) -> None:
    if btype == _EPB:
        _epb(buf, off, blen, section, decoder)
    elif btype == _IDB:
        idb = _read_idb(buf, off, blen, section.order)
        section.interfaces.append(idb)
        info.interfaces.append(idb)
        decoder.describe([i.linktype for i in info.interfaces])
    elif btype == _SPB:
        _spb(buf, off, blen, section, decoder)
    elif btype == _PB:
        _pb(buf, off, blen, section, decoder)
    else:
        return
    info.records += btype != _IDB


def _read_idb(buf: Buffer, off: int, blen: int, order: str) -> Interface:
    if blen < 20:
        return Interface(-1, 0)
    linktype, snaplen = struct.unpack_from(order + "H2xI", buf, off + 8)
    idb = Interface(int(linktype), int(snaplen))
    for code, start, size in _options(buf, off + 16, off + blen - 4, order):
        if code == _IF_NAME:
            idb.name = bytes(buf[start : start + size]).split(b"\0")[0].decode("utf-8", "replace")
        elif code == _IF_TSRESOL and size >= 1:
            idb.ts_mul, idb.ts_div = _tsresol(buf[start])
    return idb


def _tsresol(value: int) -> tuple[int, int]:
    """if_tsresol: high bit clear = 10^-n seconds, set = 2^-n seconds; as ns mul/div."""
    exp = value & 0x7F
    if value & 0x80:
        return 1_000_000_000, 1 << min(exp, 120)
    if exp <= 9:
        return 10 ** (9 - exp), 1
    return 1, 10 ** min(exp - 9, 60)


def _options(buf: Buffer, o: int, end: int, order: str) -> list[tuple[int, int, int]]:
    """(code, value offset, value length) of each option up to opt_endofopt."""
    found: list[tuple[int, int, int]] = []
    while end - o >= 4:
        code, size = struct.unpack_from(order + "HH", buf, o)
        if code == _OPT_END or size > end - o - 4:
            break
        found.append((int(code), o + 4, int(size)))
        o += 4 + ((size + 3) & ~3)
    return found


def _frame(
    buf: Buffer,
    off: int,
    caplen: int,
    end: int,
    ifid: int,
    ts_units: int,
    edir: Direction,
    section: _Section,
    decoder: Decoder,
) -> None:
    decoder.packets += 1
    if ifid >= len(section.interfaces):
        decoder.skip("packet for an interface never described")
        return
    idb = section.interfaces[ifid]
    handler = decoder.by_linktype.get(idb.linktype)
    if handler is None:
        decoder.skip(unsupported_text(idb.linktype))
        return
    if caplen > end - off:
        decoder.skip("packet longer than its block")
        return
    ts = ts_units * idb.ts_mul // idb.ts_div if ts_units >= 0 else -1
    if ts > MAX_TS_NS:
        # A 64-bit count of units (if_tsresol 0 is whole seconds) can name a time past
        # year 9999: no clock wrote that, so the time is unknown.
        ts = -1
    handler(buf, off, off + caplen, ts, IDB_BASE + ifid, edir)


def _epb(buf: Buffer, off: int, blen: int, section: _Section, decoder: Decoder) -> None:
    if blen < 32:
        decoder.skip("enhanced packet block too short")
        return
    ifid, hi, lo, caplen, _orig = struct.unpack_from(section.order + "IIIII", buf, off + 8)
    data = off + 28
    edir = Direction.UNKNOWN
    opts = data + ((caplen + 3) & ~3)
    if opts < off + blen - 4:
        edir = _epb_direction(buf, opts, off + blen - 4, section.order)
    _frame(buf, data, caplen, off + blen - 4, ifid, (hi << 32) | lo, edir, section, decoder)


def _epb_direction(buf: Buffer, o: int, end: int, order: str) -> Direction:
    for code, start, size in _options(buf, o, end, order):
        if code == _EPB_FLAGS and size == 4:
            (flags,) = struct.unpack_from(order + "I", buf, start)
            bits = flags & 3
            return Direction.IN if bits == 1 else Direction.OUT if bits == 2 else Direction.UNKNOWN
    return Direction.UNKNOWN


def _spb(buf: Buffer, off: int, blen: int, section: _Section, decoder: Decoder) -> None:
    (origlen,) = struct.unpack_from(section.order + "I", buf, off + 8)
    snaplen = section.interfaces[0].snaplen if section.interfaces else 0
    caplen = min(origlen, blen - 16, snaplen or origlen)
    _frame(buf, off + 12, caplen, off + blen - 4, 0, -1, Direction.UNKNOWN, section, decoder)


def _pb(buf: Buffer, off: int, blen: int, section: _Section, decoder: Decoder) -> None:
    if blen < 32:
        decoder.skip("packet block too short")
        return
    ifid, _drops, hi, lo, caplen = struct.unpack_from(section.order + "HHIII", buf, off + 8)
    unknown = Direction.UNKNOWN
    _frame(buf, off + 28, caplen, off + blen - 4, ifid, (hi << 32) | lo, unknown, section, decoder)
