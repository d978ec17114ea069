"""Real captures recorded with tcpdump -i any in namespaces (tests/data/trace/record.py).

``<scenario>.pcap``: the minimal three-namespace connector (tests/trace_netlab.py);
``lab-<scenario>.pcap``: the lab proper (tun relay, Worker, FRR), each scenario
with its fix step applied, captured by the lab itself on the connector.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import msgspec
import pytest

from meshpath.cli import main
from meshpath.state import codec
from meshpath.trace.files import trace_file
from tests.builders import broken_connector, link
from tests.trace_netlab import EXPECTED

DATA = Path(__file__).resolve().parents[1] / "data" / "trace"
NAMES = json.loads((DATA / "names.json").read_text())


def names(scenario: str) -> dict[int, str]:
    return {int(index): name for index, name in NAMES[scenario].items()}


LAB_EXPECTED = {
    "lab-broken": ("return-misrouted", False),
    "lab-gateway": ("no-reply", False),
    "lab-nat": ("ok", True),
    "lab-route": ("ok", False),
    "lab-bgp": ("ok", False),
    # masquerade alone: the reply is de-NATed, then still leaves by the default route
    "lab-nat-only": ("return-misrouted", True),
    "lab-tailscale-overlap": ("ok", False),
    # the dual-stack lab's IPv6 calls: the Worker at 2606:4700:cf1:5000::5, the service at
    # fd00:1::50 (broken: WARP's profile keeps IPv6 out of its table; route: fixed)
    "lab-broken6": ("return-misrouted", False),
    "lab-route6": ("ok", False),
}


@pytest.mark.parametrize("scenario", sorted(LAB_EXPECTED))
def test_lab_capture_classifies(scenario: str) -> None:
    verdict, nat = LAB_EXPECTED[scenario]
    report = trace_file(DATA / f"{scenario}.pcap", iface_names=names(scenario))
    assert report.verdict_counts == {verdict: 1} and report.skipped == {}
    (flow,) = report.flows
    assert flow.nat == nat
    assert report.iface_names[flow.tunnel_iface or 0] == "CloudflareWARP"
    if verdict != "no-reply":
        assert report.iface_names[flow.reply_iface or 0] == (
            "CloudflareWARP" if verdict == "ok" else "eth0"
        )


@pytest.mark.parametrize("scenario", sorted(EXPECTED))
def test_recorded_capture_classifies(scenario: str) -> None:
    report = trace_file(DATA / f"{scenario}.pcap", iface_names=names(scenario))
    assert report.format == "pcap" and report.skipped == {}
    assert report.verdict_counts == {EXPECTED[scenario]: 1}


def test_recorded_nat_reports_the_connector_as_the_source_the_service_saw() -> None:
    (flow,) = trace_file(DATA / "nat.pcap", iface_names=names("nat")).flows
    assert flow.nat and flow.service_saw is not None
    assert flow.service_saw.address == bytes([10, 0, 1, 2])


@pytest.mark.parametrize("scenario", ["broken", "lab-broken"])
def test_recorded_broken_shows_the_field_reports_lines(
    scenario: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    links = tuple(link(i, name, "veth") for i, name in names(scenario).items())
    snapshot = msgspec.structs.replace(broken_connector(), links=links)
    codec.save(snapshot, tmp_path / "conn.json")
    capture = str(DATA / f"{scenario}.pcap")
    code = main(["trace", capture, "--snapshot", str(tmp_path / "conn.json")])
    out = capsys.readouterr().out
    assert code == 1
    client = r"100\.64\.12\.189\.\d+"
    for pattern in (
        rf"CloudflareWARP In  IP {client} > 10\.0\.1\.50\.3000: Flags \[S\], seq \d+",
        rf"eth0  Out IP {client} > 10\.0\.1\.50\.3000: Flags \[S\], seq \d+",
        rf"eth0  In  IP 10\.0\.1\.50\.3000 > {client}: Flags \[S\.\], seq \d+, ack \d+",
        rf"eth0  Out IP 10\.0\.1\.50\.3000 > {client}: Flags \[S\.\], seq \d+, ack \d+",
    ):
        assert re.search(pattern, out), pattern
    assert "verdict: return-misrouted" in out
    # the Worker retries its SYN, the service its SYN-ACK: counts depend on the timeouts
    assert re.search(r"retransmissions: SYN [12], SYN-ACK [123];", out)


def test_recorded_broken6_names_the_ipv6_failure(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The lab's own capture of the Worker's IPv6 call: the report's lines, IPv6 addresses
    in tcpdump's form, and the verdict naming the missing route for the IPv6 source."""
    links = tuple(link(i, name, "veth") for i, name in names("lab-broken6").items())
    snapshot = msgspec.structs.replace(broken_connector(), links=links)
    codec.save(snapshot, tmp_path / "conn.json")
    capture = str(DATA / "lab-broken6.pcap")
    code = main(["trace", capture, "--snapshot", str(tmp_path / "conn.json")])
    out = capsys.readouterr().out
    assert code == 1
    client, service = r"2606:4700:cf1:5000::5\.\d+", r"fd00:1::50\.3000"
    for pattern in (
        rf"CloudflareWARP In  IP6 {client} > {service}: Flags \[S\], seq \d+",
        rf"eth0  Out IP6 {client} > {service}: Flags \[S\], seq \d+",
        rf"eth0  In  IP6 {service} > {client}: Flags \[S\.\], seq \d+, ack \d+",
        rf"eth0  Out IP6 {service} > {client}: Flags \[S\.\], seq \d+, ack \d+",
    ):
        assert re.search(pattern, out), pattern
    assert "verdict: return-misrouted" in out
    assert "no route for 2606:4700:cf1:5000::5 via the tunnel" in out
