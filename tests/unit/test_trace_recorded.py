"""Real captures recorded with tcpdump -i any in namespaces (tests/data/trace/record.py)."""

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


@pytest.mark.parametrize("scenario", sorted(EXPECTED))
def test_recorded_capture_classifies(scenario: str) -> None:
    report = trace_file(DATA / f"{scenario}.pcap", iface_names=names(scenario))
    assert report.format == "pcap" and report.skipped == {}
    assert report.verdict_counts == {EXPECTED[scenario]: 1}


def test_recorded_nat_reports_the_connector_as_the_source_the_service_saw() -> None:
    (flow,) = trace_file(DATA / "nat.pcap", iface_names=names("nat")).flows
    assert flow.nat and flow.service_saw is not None
    assert flow.service_saw.address == bytes([10, 0, 1, 2])


def test_recorded_broken_shows_the_field_reports_lines(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    links = tuple(link(i, name, "veth") for i, name in names("broken").items())
    snapshot = msgspec.structs.replace(broken_connector(), links=links)
    codec.save(snapshot, tmp_path / "conn.json")
    code = main(["trace", str(DATA / "broken.pcap"), "--snapshot", str(tmp_path / "conn.json")])
    out = capsys.readouterr().out
    assert code == 1
    for start in (
        "CloudflareWARP In  IP 100.64.12.189.9025 > 10.0.1.50.3000: Flags [S], seq ",
        "eth0  Out IP 100.64.12.189.9025 > 10.0.1.50.3000: Flags [S], seq ",
        "eth0  In  IP 10.0.1.50.3000 > 100.64.12.189.9025: Flags [S.], seq ",
        "eth0  Out IP 10.0.1.50.3000 > 100.64.12.189.9025: Flags [S.], seq ",
    ):
        assert start in out
    assert "verdict: return-misrouted" in out
    # the service retransmits its SYN-ACK and answers the SYN retry: 1 or 2 by timing
    assert re.search(r"retransmissions: SYN 1, SYN-ACK [12];", out)
