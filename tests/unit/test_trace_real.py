"""Issue #12, trace items 1-6: real captures and the text people paste, one test per item.

The expected verdicts of the public captures in tests/data/real were read from the
packets with tcpdump (``tcpdump -n -r FILE``), see EXPECTED; bench/real_captures.py runs
the same comparison over a few thousand public captures.
"""

from __future__ import annotations

import ipaddress
import json
from collections.abc import Callable
from pathlib import Path

import pytest

from meshpath.cli import main
from meshpath.errors import CaptureError
from meshpath.trace import Endpoint, analyse
from meshpath.trace import writer as w
from meshpath.trace.decode import (
    LINKTYPE_ETHERNET,
    LINKTYPE_LOOP,
    LINKTYPE_NFLOG,
    LINKTYPE_NULL,
    LINKTYPE_PPP,
    LINKTYPE_PPP_HDLC,
    LINKTYPE_RAW,
    LINKTYPE_RAW_BSD,
    LINKTYPE_RAW_OPENBSD,
)
from meshpath.trace.packet import ACK, FIN, Direction
from meshpath.trace.render import explain, format_report, report_data
from tests.trace_builders import ISN, SISN, T0, V4, V6, Step, frames, scenario, sll2_pcap

REAL = Path(__file__).resolve().parents[1] / "data" / "real"
Net = ipaddress.IPv4Network | ipaddress.IPv6Network


def nets(*cidrs: str) -> list[Net]:
    return [ipaddress.ip_network(c) for c in cidrs]


def counts(path: Path, *sources: str) -> dict[str, int]:
    return dict(analyse(path.read_bytes(), name=path.name, sources=nets(*sources)).verdict_counts)


# file -> (sources, verdict counts), read from the packets with `tcpdump -n -r FILE`:
EXPECTED: dict[str, tuple[tuple[str, ...], dict[str, int]]] = {
    # three independent handshakes from .2, .3, .4 to 10.0.0.1:135 (same port, ISN 100),
    # each answered by a SYN-ACK: one ok per client, never one flow with "NAT" legs.
    "captures/zeek--testing_btest_Traces_dce-rpc_bind-ack-no-inband-null.pcap": (
        ("10.0.0.0/24",),
        {"ok": 3},
    ),
    # nmap SYN scan from .71, 17 SYNs: SYN-ACK for ports 58109, 58117, 58775 (ok); a reset
    # from the target for 58024, 58100, 58113, 58588, 58604, 58680 (refused); nothing
    # back for the other 8 (no-reply: one interface cannot say "not forwarded").
    "captures/zeek--testing_btest_Traces_nmap-vsn.pcap": (
        ("192.168.1.71/32",),
        {"ok": 3, "refused": 6, "no-reply": 8},
    ),
    # NULL (BSD loopback) link type: SYN 62014 > 21, SYN-ACK back.
    "captures/sv--tests_detect-ftp_ftp-mode-02_input.pcap": (("127.0.0.1/32",), {"ok": 1}),
    # the same packets as pcapng: the same verdict.
    "captures/derived--ftp-mode-02.null.pcapng": (("127.0.0.1/32",), {"ok": 1}),
    # SYN 50802 > 10443, its SYN-ACK stamped 5 h *earlier* (broken clock), then the ACK.
    "captures/sv--tests_bug-1450-04_tls_DER-incomplete-header.pcap": (
        ("127.0.0.1/32",),
        {"ok": 1},
    ),
    # PPPoE session frames: SYN 10.100.0.0.57013 > 142.250.179.131.80, SYN-ACK back.
    "captures/sv--tests_bug-4810_pppoe-session-http.pcap": (("10.100.0.0/32",), {"ok": 1}),
    # NFLOG: four UDP DNS answers, no TCP at all.
    "captures/tcpdump--tests_nflog.pcap": (("0.0.0.0/0",), {"no-syn": 1}),
    # text: five FTP logins from 192.168.56.1, each SYN answered by a SYN-ACK.
    "text/ftp_bruteforce.e.txt": (("192.168.56.1/32",), {"ok": 5}),
    "text/ftp_bruteforce.v.txt": (("192.168.56.1/32",), {"ok": 5}),
    "text/ftp_bruteforce.n.bom.txt": (("192.168.56.1/32",), {"ok": 5}),
    # four HTTP connections over IPv6 with DSTOPT, frag, HBH and RT6 headers, each
    # answered; the first SYN-ACK is stored before its SYN.
    "text/ipv6-http-atomic-frag.n.txt": (("2001:db8:1::2/128",), {"ok": 4}),
    "text/dce-rpc.hash.txt": (("10.0.0.0/24",), {"ok": 3}),
    "text/dce-rpc.vv.txt": (("10.0.0.0/24",), {"ok": 3}),
    "text/dce-rpc.n.quoted.txt": (("10.0.0.0/24",), {"ok": 3}),
    "text/dce-rpc.n.utf16.txt": (("10.0.0.0/24",), {"ok": 3}),
    # -ttt: the SYN-ACK's gap is negative (-05:07:21.995528); it still answers the SYN.
    "text/tls-1450.ttt.txt": (("127.0.0.1/32",), {"ok": 1}),
    "text/pppoe.n.txt": (("10.100.0.0/32",), {"ok": 1}),
}
REFUSED = {"text/dce-rpc.q.txt": "tcpdump -q lines, which print no TCP flags"}


def test_every_real_input_has_an_expectation() -> None:
    files = {str(p.relative_to(REAL)) for d in ("captures", "text") for p in (REAL / d).iterdir()}
    assert files == set(EXPECTED) | set(REFUSED)


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_real_input_gives_the_verdicts_its_packets_show(name: str) -> None:
    sources, want = EXPECTED[name]
    assert counts(REAL / name, *sources) == want


# -- item 1: NAT legs are the same connection, seen leaving on another interface ----------


def test_unrelated_syns_with_the_same_isn_are_not_nat_legs() -> None:
    report = analyse(
        (
            REAL / "captures/zeek--testing_btest_Traces_dce-rpc_bind-ack-no-inband-null.pcap"
        ).read_bytes(),
        sources=nets("10.0.0.2/32"),
    )
    (flow,) = report.flows
    assert not flow.nat and flow.service_saw is None
    assert "NAT" not in explain(flow, {})


def _syn(src: str, sport: int) -> bytes:
    return w.syn(src, V4.server, sport, V4.sport, ISN)


def test_a_nat_leg_must_leave_on_another_interface_after_the_syn_came_in() -> None:
    other = Step("tun", Direction.IN, _syn("100.64.7.7", 5555))  # same dst, port, ISN
    early = Step("eth", Direction.OUT, _syn(V4.connector, 40001))  # "leaves" before it came
    steps = [early, *scenario("ok")[:1], other]
    report = analyse(sll2_pcap(steps), max_examples=10)
    assert report.verdict_counts == {"not-forwarded": 2}
    assert not any(f.nat for f in report.flows)
    # the real NAT leg (after, on eth0) is still found
    (flow,) = analyse(sll2_pcap(scenario("ok-nat"))).flows
    assert flow.nat and flow.service_saw == Endpoint(bytes([10, 0, 1, 2]), 40001)


# -- item 2: what a capture of one interface can show ------------------------------------


def _one_interface(steps: list[Step], side: str = "tun") -> bytes:
    """A capture of one interface (tcpdump -i CloudflareWARP): raw IP, no direction."""
    return w.pcap(LINKTYPE_RAW, [(ts, s.packet) for ts, s in frames(steps) if s.side == side])


def test_reset_on_a_single_interface_capture_is_refused() -> None:
    report = analyse(_one_interface(scenario("refused")))
    assert report.single and report.verdict_counts == {"refused": 1}


def test_unanswered_syn_on_one_interface_is_no_reply_and_says_what_it_cannot_show() -> None:
    report = analyse(_one_interface(scenario("not-forwarded")))
    (flow,) = report.flows
    assert flow.verdict == "no-reply" and flow.single
    assert "cannot tell whether the connector forwarded the SYN" in explain(flow, {})
    text = format_report(report, "100.64.0.0/12").plain
    assert "the capture recorded one interface" in text
    data = report_data(report, "")
    assert data["vantage"] == "one-interface" and data["flows"][0]["single"]


def test_lan_side_capture_of_one_interface_sees_the_misrouted_reply() -> None:
    """pcapng of eth0 alone with directions: SYN out, SYN-ACK in and out again."""
    steps = [s for s in scenario("return-misrouted") if s.side == "eth"]
    data = w.pcapng(
        [w.NgInterface(LINKTYPE_ETHERNET, "eth0")],
        [(0, ts, w.ethernet(s.packet), s.direction) for ts, s in frames(steps)],
    )
    (flow,) = analyse(data).flows
    assert flow.verdict == "return-misrouted" and flow.tunnel_iface is None
    assert report_data(analyse(data), "")["flows"][0]["tunnel_interface"] == "not in the capture"


def test_any_interface_capture_keeps_not_forwarded() -> None:
    assert analyse(sll2_pcap(scenario("not-forwarded"))).verdict_counts == {"not-forwarded": 1}


# -- item 3: link types, the same in pcap and pcapng -------------------------------------

Framer = Callable[[Step], bytes]
LINKS: dict[str, tuple[int, Framer]] = {
    "null-le": (LINKTYPE_NULL, lambda s: w.null(s.packet)),
    "null-be": (LINKTYPE_NULL, lambda s: w.null(s.packet, big_endian=True)),
    "loop": (LINKTYPE_LOOP, lambda s: w.null(s.packet, loop=True)),
    "raw-12": (LINKTYPE_RAW_BSD, lambda s: s.packet),
    "raw-14": (LINKTYPE_RAW_OPENBSD, lambda s: s.packet),
    "ppp": (LINKTYPE_PPP, lambda s: w.ppp(s.packet)),
    "ppp-bare-pfc": (LINKTYPE_PPP, lambda s: w.ppp(s.packet, hdlc=False, compressed=True)),
    "ppp-hdlc": (LINKTYPE_PPP_HDLC, lambda s: w.ppp(s.packet)),
    "qinq": (LINKTYPE_ETHERNET, lambda s: w.ethernet(s.packet, tags=(200, 2001))),
    "mpls": (LINKTYPE_ETHERNET, lambda s: w.ethernet(s.packet, labels=2)),
}


@pytest.mark.parametrize("link", sorted(LINKS))
@pytest.mark.parametrize("family", ["v4", "v6"])
def test_link_types_read_alike_in_pcap_and_pcapng(link: str, family: str) -> None:
    linktype, frame = LINKS[link]
    steps = [s for s in scenario("refused", V4 if family == "v4" else V6) if s.side == "tun"]
    timed = frames(steps)
    pcap = w.pcap(linktype, [(ts, frame(s)) for ts, s in timed], big_endian=link == "null-be")
    ng = w.pcapng(
        [w.NgInterface(linktype, "x")],
        [(0, ts, frame(s), Direction.UNKNOWN) for ts, s in timed],
        big_endian=link == "null-be",
    )
    for data in (pcap, ng):
        report = analyse(data)
        assert report.verdict_counts == {"refused": 1}, link
        assert report.skipped == {}


def _nflog_capture(big_endian: bool) -> bytes:
    """nflog in the forward chain: each packet with the interface it came in and left on."""
    tun, eth = 5, 7
    records = []
    for ts, s in frames(scenario("return-misrouted")):
        if s.side == "tun" and s.direction == Direction.IN:
            records.append((ts, w.nflog(s.packet, indev=tun, outdev=eth, big_endian=big_endian)))
        elif s.side == "eth" and s.direction == Direction.IN:
            records.append((ts, w.nflog(s.packet, indev=eth, outdev=eth, big_endian=big_endian)))
    return w.pcap(LINKTYPE_NFLOG, records, big_endian=big_endian)


@pytest.mark.parametrize("big_endian", [False, True])
def test_nflog_forward_chain_names_in_and_out_interfaces(big_endian: bool) -> None:
    report = analyse(_nflog_capture(big_endian), iface_names={5: "CloudflareWARP", 7: "eth0"})
    (flow,) = report.flows
    assert flow.verdict == "return-misrouted" and not report.single
    assert (flow.tunnel_iface, flow.reply_iface) == (5, 7)


def test_unsupported_link_type_is_named_the_same_in_pcap_and_pcapng() -> None:
    frame = b"\x00" * 40
    for data in (
        w.pcap(127, [(0, frame)]),
        w.pcapng([w.NgInterface(127, "wlan0mon")], [(0, 0, frame, Direction.UNKNOWN)]),
    ):
        with pytest.raises(CaptureError, match=r"link type 127 \(IEEE802_11_RADIOTAP\) is not"):
            analyse(data, name="cap")


def test_pcapng_with_one_readable_interface_notes_the_other() -> None:
    syn = scenario("not-forwarded")[0].packet
    data = w.pcapng(
        [w.NgInterface(LINKTYPE_RAW, "tun0"), w.NgInterface(127, "wlan0mon")],
        [(0, T0, syn, Direction.IN), (1, T0 + 1, b"\0" * 40, Direction.IN)],
    )
    report = analyse(data)
    assert report.skipped == {"link type 127 (IEEE802_11_RADIOTAP) is not supported": 1}
    assert report.verdict_counts == {"not-forwarded": 1}


# -- item 4: tcpdump text forms ----------------------------------------------------------


def test_quiet_text_is_refused_with_its_reason() -> None:
    with pytest.raises(CaptureError, match="tcpdump -q lines, which print no TCP flags"):
        analyse((REAL / "text/dce-rpc.q.txt").read_bytes(), name="q")


def test_text_matches_the_pcap_it_was_printed_from() -> None:
    pcap = REAL / "captures/zeek--testing_btest_Traces_dce-rpc_bind-ack-no-inband-null.pcap"
    want = counts(pcap, "10.0.0.0/24")
    for form in ("hash", "vv", "n.quoted", "n.utf16"):
        assert counts(REAL / f"text/dce-rpc.{form}.txt", "10.0.0.0/24") == want, form


def test_minus_e_text_of_any_interface_capture_keeps_ifindex_and_direction() -> None:
    text = (
        "20:26:40.000000 ?     In  ifindex 5 ethertype IPv4 (0x0800), length 60: "
        "100.64.12.189.9025 > 10.0.1.50.3000: Flags [S], seq 710527279, win 64240, length 0\n"
        "20:26:40.001000 ?     Out ifindex 7 02:00:00:00:00:01 ethertype IPv4 (0x0800), "
        "length 60: 100.64.12.189.9025 > 10.0.1.50.3000: Flags [S], seq 710527279, win 64240, "
        "length 0\n"
    )
    report = analyse(text.encode())
    assert report.verdict_counts == {"no-reply": 1} and not report.single
    assert sorted(report.iface_names.values()) == ["ifindex 5", "ifindex 7"]


def test_v_record_quoted_by_an_icmp_error_is_not_a_packet() -> None:
    text = (
        "20:26:40.000000 IP (tos 0x0, ttl 64, id 1, offset 0, flags [DF], proto TCP (6), "
        "length 40)\n"
        "    100.64.12.189.9025 > 10.0.1.50.3000: Flags [S], cksum 0x0 (incorrect), seq 1, "
        "win 1, length 0\n"
        "20:26:40.002000 IP (tos 0x0, ttl 64, id 1, offset 0, flags [DF], proto ICMP (1), "
        "length 56)\n"
        "    10.0.1.1 > 100.64.12.189: ICMP host 10.0.1.50 unreachable, length 36\n"
        "\tIP (tos 0x0, ttl 64, id 1, offset 0, flags [DF], proto TCP (6), length 40)\n"
        "    100.64.12.189.9025 > 10.0.1.50.3000: Flags [S], seq 1, win 1, length 0\n"
    )
    report = analyse(text.encode())
    assert report.verdict_counts == {"icmp-unreachable": 1}
    assert report.flows[0].syn_retransmissions == 0


# -- item 5: QinQ, MPLS (see LINKS), BIG TCP, IPv6 jumbograms ----------------------------


def test_ipv4_big_tcp_segment_is_read_not_malformed() -> None:
    """The last GSO segment of a response, FIN set, tot_len 0 as BIG TCP captures it."""
    last = w.tcp(V4.server, V4.client, V4.sport, V4.cport, FIN | ACK, SISN + 1, ISN + 1, b"x" * 99)
    steps = [*scenario("ok"), Step("eth", Direction.IN, w.big_tcp_ipv4(last))]
    report = analyse(sll2_pcap(steps))
    assert report.skipped == {} and report.verdict_counts == {"ok": 1}
    assert report.flows[0].evidence[-1].length == 99


def test_ipv6_jumbogram_is_read() -> None:
    steps = scenario("ok", V6)
    steps[0] = Step("tun", Direction.IN, w.jumbo_ipv6(steps[0].packet))
    report = analyse(sll2_pcap(steps))
    assert report.skipped == {} and report.verdict_counts == {"ok": 1}


# -- item 6: trace --source ---------------------------------------------------------------


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out = capsys.readouterr()
    return code, out.out, out.err


def test_source_classifies_any_client_without_changing_the_ranges(
    capsys: pytest.CaptureFixture[str],
) -> None:
    nmap = str(REAL / "captures/zeek--testing_btest_Traces_nmap-vsn.pcap")
    code, out, _ = run(capsys, "--json", "trace", nmap, "--source", "0.0.0.0/0")
    data = json.loads(out)
    assert code == 1 and data["verdict_counts"] == {"ok": 3, "refused": 6, "no-reply": 8}
    assert data["sources"] == ["0.0.0.0/0"]
    code, _, err = run(capsys, "--range", "source_v4=0.0.0.0/0", "trace", nmap)
    assert code == 2 and "overlaps" in err  # the catalogue itself still refuses it


def test_source_follows_connections_to_cloudflare_destinations() -> None:
    steps = scenario("ok")  # 100.64.12.189 -> 10.0.1.50; now a client *to* the device range
    to_device = [Step(s.side, s.direction, w.tcp(*_swap_server(s.packet))) for s in steps]
    data = sll2_pcap(to_device)
    assert analyse(data).verdict_counts == {"no-syn": 1}
    assert analyse(data, sources=nets("10.0.0.0/8")).verdict_counts == {"ok": 1}


def _swap_server(packet: bytes) -> tuple[str, str, int, int, int, int, int]:
    """The same segment between 10.0.9.9 (client) and 100.96.0.5 (a device address)."""
    sport, dport = int.from_bytes(packet[20:22]), int.from_bytes(packet[22:24])
    seq, ack = int.from_bytes(packet[24:28]), int.from_bytes(packet[28:32])
    flags = packet[33]
    forward = packet[12:16] == ipaddress.ip_address(V4.client).packed
    src, dst = ("10.0.9.9", "100.96.0.5") if forward else ("100.96.0.5", "10.0.9.9")
    return src, dst, sport, dport, flags, seq, ack


@pytest.mark.parametrize("bad", ["10.0.0.1/8", "nonsense", "10.0.0.0/33"])
def test_bad_source_is_exit_2(capsys: pytest.CaptureFixture[str], bad: str) -> None:
    pcap = str(REAL / "captures/zeek--testing_btest_Traces_nmap-vsn.pcap")
    code, _, err = run(capsys, "trace", pcap, "--source", bad)
    assert code == 2 and err.count("\n") == 1 and "--source" in err


def test_report_names_the_given_sources_when_nothing_matches(
    capsys: pytest.CaptureFixture[str],
) -> None:
    pcap = str(REAL / "captures/zeek--testing_btest_Traces_nmap-vsn.pcap")
    code, out, _ = run(capsys, "trace", pcap, "--source", "192.0.2.0/24")
    assert code == 1 and "no SYN from the given sources (192.0.2.0/24)" in out


def test_adopting_a_packet_that_starts_another_flow_keeps_the_orphans_consistent() -> None:
    """Found by bench/fuzz_trace.py: SYN-ACKs kept before their SYN, adopted by one flow
    while following one of them starts (and adopts for) another."""
    data = bytes.fromhex(
        "d4c3b2a1020004000000000000000000000004001401000000a5186a000000003c0000003c00000008000000"
        "00000005fffe0000000000000000000045000028000140004006000064400cbd0000013223410bb82a59c92f"
        "000000005002faf00000000000a5186ae80300003c0000003c00000008000000000000070001040602000000"
        "0001000045000028000140004006000000400cbd0a00013223410bb82a59c92f000000005002faf000000000"
        "00a5186ad00700003c0000003c00000008000000000000070001000602000000000100004500002800014000"
        "400600000a00013264400cbd0bb82341317ea7702a59c9305012faf00000000000a5186ab80b00003c000000"
        "3c00000008000000000000070001040602000000000100004500002800014000400600000a00013264400cbd"
        "0bb82341317ea7702a59c9305012faf0000000000000186aa00f00003c0000003c0000000800000000000005"
        "fffe0000000000000000000045000028000140004006000064400cbd0a00013223410bb82a59c92f00000000"
        "5002faf000000000"
    )
    report = analyse(data)
    assert report.verdict_counts == {"not-forwarded": 1, "return-misrouted": 1}
