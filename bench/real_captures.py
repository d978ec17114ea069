"""Sweep of the capture reader over real captures: no crash, no wrong verdict, text = pcap.

    .venv/bin/python bench/real_captures.py DIR [DIR ...] [--show-wrong 20]

For every pcap/pcapng under the given directories (public test data: tcpdump's tests/,
``tests/data/real``, ...), with ``--source 0.0.0.0/0`` and ``::/0`` (every client):

1. **read**: meshpath reads it, or refuses it with a one-line error (an unsupported link
   type, a corrupt file); anything else is a crash and is listed.
2. **verdicts**: each flow's verdict is held to an oracle that never uses meshpath's code:
   ``tcpdump -n -tt -e -r FILE`` printed by tcpdump itself, read with a few regexes here.
   A connection is a SYN (its 4-tuple and ISN) that came in (or whose direction is not
   recorded; not a SYN answering a SYN, not tunnelled inside GRE/Geneve/VXLAN, whose
   inner packets meshpath does not open); the oracle's class is *answered* (a SYN-ACK
   acknowledging that ISN came back), *refused* (a reset came back and no SYN-ACK),
   *icmp* (an ICMP unreachable about the server came back to the client) or
   *unanswered*. meshpath's verdicts map onto
   the same classes (ok, return-misrouted, reply-dropped: answered; refused; icmp-
   unreachable; no-reply, not-forwarded: unanswered). A mismatch is a wrong verdict.
3. **text**: the same capture's ``tcpdump -n`` text, and its ``-v``, ``-e``, ``-#``,
   ``-ttt`` and ``-tt`` forms, read by meshpath give the same verdict counts as the pcap.

Prints a table of counts; the numbers in bench/README.md come from it.
"""

from __future__ import annotations

import argparse
import ipaddress
import re
import subprocess
import sys
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from meshpath.errors import BadInputError
from meshpath.trace import analyse
from meshpath.trace.model import TraceReport
from meshpath.trace.packet import addr_text

EVERYONE = [ipaddress.ip_network("0.0.0.0/0"), ipaddress.ip_network("::/0")]
CLASS = {
    "ok": "answered",
    "return-misrouted": "answered",
    "reply-dropped": "answered",
    "refused": "refused",
    "icmp-unreachable": "icmp",
    "no-reply": "unanswered",
    "not-forwarded": "unanswered",
}
TEXT_FORMS = {"n": ["-n"], "v": ["-n", "-v"], "e": ["-n", "-e"], "#": ["-n", "-#"],
              "ttt": ["-n", "-ttt"], "tt": ["-n", "-tt"]}  # fmt: skip

# The oracle's reading of tcpdump -n -tt lines (its own regexes, not meshpath's).
_HEAD = re.compile(
    r"^(?P<t>\d+\.\d+)\s+(?:(?P<if>\S+)\s+(?=(?:In|Out|B|M|P)\s))?(?:(?P<dir>In|Out|B|M|P)\s+)?"
)
_PORTS4 = re.compile(
    r"(\d+\.\d+\.\d+\.\d+)\.(\d+) > (\d+\.\d+\.\d+\.\d+)\.(\d+): Flags \[([^\]]*)\]"
)
_PORTS6 = re.compile(
    r"([0-9a-f:]+)\.(\d+) > ([0-9a-f:]+)\.(\d+): Flags \[([^\]]*)\]"
    r"|([0-9a-f:]+) > ([0-9a-f:]+): (?:HBH|DSTOPT|RT6|frag)\b[^>]*?\s(\d+) > (\d+): "
    r"Flags \[([^\]]*)\]"
)
# Tunnelled packets: meshpath follows the outer packets only (a connector's tunnel is
# WireGuard/MASQUE, encrypted); the inner TCP tcpdump prints is not the oracle's either.
_ENCAPSULATED = ("GREv", "Geneve", "VXLAN", "IP-in-IP", "ERSPAN", "ip-proto-4 ")
_SEQ = re.compile(r"\bseq (\d+)")
_ACK = re.compile(r"\back (\d+)")
_LEN = re.compile(r"\], length (\d+)|, length (\d+)")
_UNREACH = re.compile(r"^.*? (\S+) > (\S+): ICMP6?,? .*?unreachable")


@dataclass
class Conn:
    data: int = 0  # bytes the SYN carried (TCP Fast Open)
    answered: bool = False
    refused: bool = False
    icmp: bool = False

    def cls(self) -> str:
        if self.answered:
            return "answered"
        if self.refused:
            return "refused"
        return "icmp" if self.icmp else "unanswered"


@dataclass
class Totals:
    files: int = 0
    read: int = 0
    refused: Counter[str] = field(default_factory=Counter)
    crashes: list[str] = field(default_factory=list)
    flows: int = 0
    agree: int = 0
    missed: list[str] = field(default_factory=list)
    wrong: list[str] = field(default_factory=list)
    text_files: Counter[str] = field(default_factory=Counter)
    text_agree: Counter[str] = field(default_factory=Counter)
    text_differ: list[str] = field(default_factory=list)


def tcpdump(path: Path, flags: list[str]) -> str:
    run = subprocess.run(  # noqa: S603 - argv list, no shell
        ["tcpdump", *flags, "-r", str(path)], capture_output=True, timeout=120, check=False
    )
    return run.stdout.decode("utf-8", "replace")


def _tcp(line: str) -> tuple[str, int, str, int, str] | None:
    m = _PORTS4.search(line) or _PORTS6.search(line)
    if m is None:
        return None
    g = m.groups()
    if len(g) > 5 and g[5] is not None:  # IPv6 with extension headers: addresses first
        return _norm(g[5]), int(g[7]), _norm(g[6]), int(g[8]), g[9]
    return _norm(g[0]), int(g[1]), _norm(g[2]), int(g[3]), g[4]


def _norm(addr: str) -> str:
    try:
        return str(ipaddress.ip_address(addr))
    except ValueError:
        return addr


def oracle(text: str) -> dict[tuple[str, int, str, int, int], Conn]:
    """Connections and what came back for each, from tcpdump's own text.

    Order-independent: a SYN-ACK acknowledging the SYN's sequence number answers it
    wherever the capture stored it (merged captures reorder packets, timestamps too).
    """
    lines = [
        (m["dir"], line)
        for line in text.splitlines()
        if (m := _HEAD.match(line)) and not any(word in line for word in _ENCAPSULATED)
    ]
    conns: dict[tuple[str, int, str, int, int], Conn] = {}
    by_pair: dict[tuple[str, int, str, int], list[int]] = {}
    replies = []
    for dirn, line in lines:
        tcp = _tcp(line)
        if tcp is None:
            continue
        a, ap, b, bp, flags = tcp
        seq = _SEQ.search(line)
        # A SYN answering a SYN (split handshake, simultaneous open) is not a connection.
        answering = (b, bp, a, ap) in by_pair
        if "S" in flags and "." not in flags and seq and dirn in (None, "In") and not answering:
            size = _LEN.search(line)
            data = int(size[1] or size[2]) if size else 0
            conns.setdefault((a, ap, b, bp, int(seq[1])), Conn(data))
            by_pair.setdefault((a, ap, b, bp), []).append(int(seq[1]))
        else:
            replies.append((tcp, line))
    for (a, ap, b, bp, flags), line in replies:
        for start in by_pair.get((b, bp, a, ap), []):
            _reply(conns[(b, bp, a, ap, start)], start, flags, line)
    for _dirn, line in lines:
        m = _UNREACH.match(line)
        if m:
            for (a, _ap, b, _bp, _i), conn in conns.items():
                if _norm(m[2]) == a and b in line.split(":", 3)[-1]:
                    conn.icmp = True
    return conns


def _reply(conn: Conn, start: int, flags: str, line: str) -> None:
    ack = _ACK.search(line)
    gap = (int(ack[1]) - start - 1) & 0xFFFFFFFF if ack else -1
    # ack = ISN + 1, or more when the SYN carried data (TCP Fast Open, RFC 7413)
    if "S" in flags and "." in flags and 0 <= gap <= conn.data:
        conn.answered = True
    elif "R" in flags and (gap == 0 or ack is None):
        conn.refused = True


def meshpath_flows(report: TraceReport) -> dict[tuple[str, int, str, int, int], str]:
    out = {}
    for flow in report.flows:
        syn = next((p for p in flow.evidence if p.is_syn), None)
        if syn is None:
            continue
        key = (addr_text(flow.client.address), flow.client.port,
               addr_text(flow.server.address), flow.server.port, syn.seq)  # fmt: skip
        out[key] = flow.verdict
    return out


def check_file(path: Path, totals: Totals, show: int) -> None:
    totals.files += 1
    data = path.read_bytes()
    try:
        report = analyse(data, name=path.name, sources=EVERYONE, max_examples=10**6)
    except BadInputError as exc:
        totals.refused[str(exc).split(": ", 1)[1].split(" (")[0][:60]] += 1
        return
    except Exception as exc:  # noqa: BLE001 - a crash is what this sweep looks for
        totals.crashes.append(f"{path}: {type(exc).__name__}: {exc}")
        return
    totals.read += 1
    truth = oracle(tcpdump(path, ["-n", "-tt", "-e"]))
    mine = meshpath_flows(report)
    for key, verdict in mine.items():
        totals.flows += 1
        want = truth.get(key)
        if want is not None and CLASS[verdict] == want.cls():
            totals.agree += 1
        else:
            totals.wrong.append(f"{path.name}: {key} meshpath {verdict}, tcpdump "
                                f"{want.cls() if want else 'no such connection'}")  # fmt: skip
    for key in truth.keys() - mine.keys():
        totals.missed.append(f"{path.name}: {key} ({truth[key].cls()})")
    if mine:
        check_text(path, report, totals)


def check_text(path: Path, report: TraceReport, totals: Totals) -> None:
    for form, flags in TEXT_FORMS.items():
        text = tcpdump(path, flags)
        totals.text_files[form] += 1
        try:
            other = analyse(text.encode(), name=f"{path.name}.{form}", sources=EVERYONE)
        except BadInputError as exc:
            totals.text_differ.append(f"{path.name} -{form}: {exc}")
            continue
        if other.verdict_counts == report.verdict_counts:
            totals.text_agree[form] += 1
        else:
            totals.text_differ.append(
                f"{path.name} -{form}: pcap {report.verdict_counts} text {other.verdict_counts}"
            )


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("dirs", nargs="+", type=Path)
    parser.add_argument("--show-wrong", type=int, default=20)
    args = parser.parse_args()
    files = sorted(
        p for d in args.dirs for p in d.rglob("*") if p.suffix in (".pcap", ".pcapng", ".cap")
    )
    totals = Totals()
    start = time.perf_counter()
    for path in files:
        check_file(path, totals, args.show_wrong)
    took = time.perf_counter() - start
    print(f"{totals.files} captures in {took:.0f} s: {totals.read} read, "
          f"{sum(totals.refused.values())} refused with a one-line error, "
          f"{len(totals.crashes)} crashes")  # fmt: skip
    for reason, n in totals.refused.most_common():
        print(f"  refused {n}: {reason}")
    for crash in totals.crashes:
        print(f"  CRASH {crash}")
    print(f"flows: {totals.flows}, verdict agrees with tcpdump's packets: {totals.agree}")
    for line in totals.wrong[: args.show_wrong]:
        print(f"  WRONG {line}")
    print(f"connections tcpdump shows that meshpath did not follow: {len(totals.missed)}")
    for line in totals.missed[: args.show_wrong]:
        print(f"  MISSED {line}")
    for form in TEXT_FORMS:
        print(f"text -{form}: {totals.text_agree[form]} of {totals.text_files[form]} files "
              "give the pcap's verdict counts")  # fmt: skip
    for line in totals.text_differ[: args.show_wrong]:
        print(f"  DIFFERS {line}")
    return 1 if totals.crashes or totals.wrong else 0


if __name__ == "__main__":
    sys.exit(main())
