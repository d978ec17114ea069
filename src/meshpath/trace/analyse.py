"""From capture bytes to a :class:`TraceReport`: pcap, pcapng or tcpdump text, by content.

Pure: the caller hands over the bytes (an ``mmap`` for files of any size, see
:func:`meshpath.trace.files.trace_file`); nothing here opens files or runs programs.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Mapping

from meshpath.errors import BadInputError, CaptureError
from meshpath.ranges import DEFAULT_RANGES, CloudflareRanges
from meshpath.trace.container import CaptureInfo, sniff_format, walk
from meshpath.trace.decode import IDB_BASE, Buffer, Decoder
from meshpath.trace.flows import Network, Tracker
from meshpath.trace.model import NO_SYN, Endpoint, TraceReport
from meshpath.trace.text import TextCapture, iter_lines, looks_like_text, parse_text


def parse_sources(texts: list[str]) -> list[Network]:
    """``--source CIDR`` values (host bits set are refused, as for ``--range``)."""
    nets: list[Network] = []
    for text in texts:
        try:
            nets.append(ipaddress.ip_network(text.strip(), strict=True))
        except ValueError as exc:
            raise BadInputError(
                f"--source {text!r}: expected a network like 100.64.0.0/12 or 0.0.0.0/0 ({exc})"
            ) from exc
    return nets


def analyse(
    data: Buffer,
    *,
    name: str = "capture",
    ranges: CloudflareRanges = DEFAULT_RANGES,
    target: Endpoint | None = None,
    max_examples: int = 10,
    iface_names: Mapping[int, str] | None = None,
    sources: Iterable[Network] | None = None,
) -> TraceReport:
    """Read a capture (format detected from its content) and classify its flows.

    ``iface_names`` maps kernel ifindexes (SLL2 captures) to names, from a snapshot or
    the live host; the capture's own names (pcapng ``if_name``, text) come on top.
    ``sources`` replaces the Cloudflare source ranges as the clients whose connections
    are followed (``trace --source``); the range catalogue itself is not changed.
    """
    if len(data) == 0:
        raise CaptureError(f"{name}: the file is empty")
    tracker = Tracker(ranges, target, max_examples, sources)
    head = bytes(data[:4096])
    if sniff_format(head) != "other":
        decoder = Decoder(tracker)
        info = walk(data, decoder, name)
        packets, skipped = decoder.packets, dict(decoder.skipped)
        names = _idb_names(info)
    elif looks_like_text(head):
        text = parse_text(iter_lines(bytes(data)), name)
        tracker.single = not text.has_interfaces
        for pkt in text.packets:
            tracker.packet(pkt)
        info = CaptureInfo("tcpdump-text", records=len(text.packets))
        packets, skipped = len(text.packets), _text_skips(text)
        names = text.names
    else:
        raise CaptureError(
            f"{name}: not a pcap, pcapng or tcpdump text capture (starts {head[:4].hex()})"
        )
    tracker.finish()
    all_names = {**dict(iface_names or {}), **names}
    return _report(name, info, packets, skipped, tracker, target, all_names)


def _idb_names(info: CaptureInfo) -> dict[int, str]:
    return {IDB_BASE + i: idb.name for i, idb in enumerate(info.interfaces) if idb.name}


def _text_skips(text: TextCapture) -> dict[str, int]:
    skips = {"lines that are not packets": text.other_lines} if text.other_lines else {}
    if text.quiet_lines:
        skips["tcpdump -q lines (they print no TCP flags)"] = text.quiet_lines
    return skips


def _report(
    name: str,
    info: CaptureInfo,
    packets: int,
    skipped: dict[str, int],
    tracker: Tracker,
    target: Endpoint | None,
    names: dict[int, str],
) -> TraceReport:
    counts = dict(tracker.verdicts)
    if not counts:
        counts[NO_SYN] = 1
    flows = tuple(sorted(tracker.examples, key=lambda f: f.timing.first_seen_ns))
    return TraceReport(
        source=name,
        format=info.format,
        packets=packets,
        flows=flows,
        verdict_counts=counts,
        skipped=skipped,
        target=target,
        iface_names=names,
        truncated=info.truncated,
        single=tracker.single,
    )
