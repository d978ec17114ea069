"""Every verdict from hand-made captures, in every container and link type meshpath reads."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from meshpath.cli.trace_cmd import target_endpoint as parse_target
from meshpath.trace import Endpoint, TraceReport, analyse
from meshpath.trace.decode import IDB_BASE
from meshpath.trace.packet import addr_text
from meshpath.trace.render import explain, format_report, line_name, report_data
from tests.trace_builders import (
    ETH_INDEX,
    TUN_INDEX,
    V4,
    V6,
    Step,
    pcapng_per_interface,
    pcapng_sll2,
    scenario,
    sll2_pcap,
    sll_pcap,
)

KINDS = [
    "ok",
    "return-misrouted",
    "reply-dropped",
    "no-reply",
    "not-forwarded",
    "refused",
    "icmp-unreachable",
    "no-syn",
]
NAMES = {TUN_INDEX: "CloudflareWARP", ETH_INDEX: "eth0"}

Encoder = Callable[[list[Step]], bytes]
ENCODERS: dict[str, Encoder] = {
    "pcap-sll2": sll2_pcap,
    "pcap-sll2-be-ns": lambda s: sll2_pcap(s, big_endian=True, nanos=True),
    "pcap-sll": sll_pcap,
    "pcapng-sll2": pcapng_sll2,
    "pcapng-sll2-be": lambda s: pcapng_sll2(s, big_endian=True),
    "pcapng-eth+raw": pcapng_per_interface,
    "pcapng-eth+raw-be": lambda s: pcapng_per_interface(s, big_endian=True),
}


def verdict_of(report: TraceReport) -> str:
    assert len(report.verdict_counts) == 1, report.verdict_counts
    return next(iter(report.verdict_counts))


@pytest.mark.parametrize("encoding", sorted(ENCODERS))
@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("family", ["v4", "v6"])
def test_each_verdict_in_each_encoding(encoding: str, kind: str, family: str) -> None:
    data = ENCODERS[encoding](scenario(kind, V4 if family == "v4" else V6))
    report = analyse(data, name=f"{kind}.{encoding}", iface_names=NAMES)
    assert verdict_of(report) == kind
    assert report.broken == (kind != "ok")
    assert report.skipped == {}
    if kind != "no-syn":
        (flow,) = report.flows
        assert addr_text(flow.client.address) == (V4 if family == "v4" else V6).client


def test_nat_leg_is_matched_and_reported() -> None:
    report = analyse(sll2_pcap(scenario("ok-nat")), iface_names=NAMES)
    (flow,) = report.flows
    assert flow.verdict == "ok" and flow.nat
    assert flow.service_saw == Endpoint(bytes([10, 0, 1, 2]), 40001)
    assert "the service saw 10.0.1.2:40001 (NAT)" in explain(flow, NAMES)


def test_ok_without_nat_reports_the_real_source() -> None:
    (flow,) = analyse(sll2_pcap(scenario("ok")), iface_names=NAMES).flows
    assert not flow.nat and flow.service_saw == flow.client
    assert "100.64.12.189:9025 (the real source, no NAT)" in explain(flow, NAMES)


def test_misrouted_names_interfaces_and_counts_retransmissions() -> None:
    report = analyse(sll2_pcap(scenario("return-misrouted")), iface_names=NAMES)
    (flow,) = report.flows
    assert (flow.tunnel_iface, flow.lan_iface, flow.reply_iface) == (TUN_INDEX, ETH_INDEX, 7)
    assert flow.syn_retransmissions == 1
    assert flow.timing.forward_ms == 1.0 and flow.timing.rtt_ms == 1.0
    text = format_report(report, "100.64.0.0/12").plain
    assert (
        "CloudflareWARP In  IP 100.64.12.189.9025 > 10.0.1.50.3000: Flags [S], seq 710527279"
        in text
    )
    assert (
        "eth0  Out IP 10.0.1.50.3000 > 100.64.12.189.9025: Flags [S.], seq 830383984, ack 710527280"
        in text
    )
    assert "left on eth0, not through CloudflareWARP" in text


def test_sll2_without_names_classifies_and_shows_indexes() -> None:
    report = analyse(sll2_pcap(scenario("return-misrouted")))
    (flow,) = report.flows
    assert flow.verdict == "return-misrouted"
    assert line_name(TUN_INDEX, report.iface_names) == "if5"
    assert "if7   Out IP 10.0.1.50.3000" in format_report(report, "").plain


def test_pcapng_interface_names_come_from_the_file() -> None:
    report = analyse(pcapng_per_interface(scenario("return-misrouted")))
    assert report.iface_names == {IDB_BASE: "CloudflareWARP", IDB_BASE + 1: "eth0"}
    assert report_data(report, "")["flows"][0]["reply_interface"] == "eth0"


def test_sll_v1_tells_tun_from_ethernet_by_hardware_type() -> None:
    report = analyse(sll_pcap(scenario("return-misrouted")))
    data = report_data(report, "")["flows"][0]
    assert data["tunnel_interface"] == "a tun device"
    assert data["reply_interface"] == "an Ethernet device"
    assert " Out IP 100.64.12.189.9025 > " in data["evidence"][1]


@pytest.mark.parametrize("kind", ["ok", "return-misrouted", "no-reply", "not-forwarded"])
def test_direction_inferred_when_pcapng_has_no_epb_flags(kind: str) -> None:
    report = analyse(pcapng_per_interface(scenario(kind), directions=False))
    assert verdict_of(report) == kind
    assert any("inferred" in note for note in report.flows[0].notes)


def test_target_filter_and_no_syn_for_another_target() -> None:
    data = sll2_pcap(scenario("ok"))
    assert verdict_of(analyse(data, target=parse_target("10.0.1.50:3000"))) == "ok"
    other = analyse(data, target=parse_target("10.0.1.51:3000"))
    assert verdict_of(other) == "no-syn" and other.broken and other.flows == ()


def test_parse_target_forms_and_errors() -> None:
    assert parse_target("[fd00:1::50]:443") == Endpoint(
        bytes.fromhex("fd000001000000000000000000000050"), 443
    )
    for bad in ("10.0.1.50", "10.0.1.50:0", "host:80", "10.0.1.50:99999"):
        with pytest.raises(Exception, match="expected IP:PORT"):
            parse_target(bad)


def test_port_reuse_starts_a_new_flow() -> None:
    first = scenario("not-forwarded")
    again = scenario("ok")
    import meshpath.trace.writer as w

    reused = Step("tun", first[0].direction, w.syn("100.64.12.189", "10.0.1.50", 9025, 3000, 5))
    report = analyse(sll2_pcap([*first, reused, *again[1:2]]))
    assert sum(report.verdict_counts.values()) == 2


def test_many_flows_are_folded_with_examples_capped() -> None:
    import meshpath.trace.writer as w

    steps: list[Step] = []
    for port in range(1000, 1600):
        syn = w.syn("100.64.0.9", "10.0.1.50", port, 3000, port)
        rst = w.tcp("10.0.1.50", "100.64.0.9", 3000, port, 0x14, 0, port + 1)
        steps += [
            Step("tun", syn and scenario("ok")[0].direction, syn),
            Step("eth", scenario("ok")[1].direction, syn),
            Step("eth", scenario("ok")[2].direction, rst),
        ]
    report = analyse(sll2_pcap(steps), max_examples=3)
    assert report.verdict_counts == {"refused": 600}
    assert len(report.flows) == 3
    assert "(showing 3)" in format_report(report, "").plain


def test_frames_for_another_host_are_not_part_of_the_path() -> None:
    import meshpath.trace.writer as w
    from meshpath.trace.decode import LINKTYPE_LINUX_SLL2

    steps = scenario("no-reply")
    stray = w.sll2(w.synack("10.0.1.50", "100.64.12.189", 3000, 9025, 1, 710527280), 7, 3)
    frames = [
        (i, w.sll2(s.packet, 5 if s.side == "tun" else 7, 0 if s.direction == 0 else 4))
        for i, s in enumerate(steps)
    ]
    report = analyse(w.pcap(LINKTYPE_LINUX_SLL2, [*frames, (99, stray)]))
    assert report.verdict_counts == {"no-reply": 1}


def test_public_api_is_pinned() -> None:
    import meshpath.trace as trace

    # parse_target left (#17 item 2): the one target parser is checks.targets.parse_target
    assert sorted(trace.__all__) == sorted(
        ["VERDICTS", "Endpoint", "FlowVerdict", "TraceReport", "analyse"]
    )
    assert trace.VERDICTS == (
        "ok", "return-misrouted", "reply-dropped", "no-reply", "refused",
        "icmp-unreachable", "not-forwarded", "no-syn",
    )  # fmt: skip
