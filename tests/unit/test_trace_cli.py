"""`meshpath trace` end to end on files: output, JSON, exit codes, names, text input."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from meshpath.cli import main
from meshpath.state import codec
from meshpath.trace import analyse
from tests.builders import broken_connector, link
from tests.trace_builders import scenario, sll2_pcap

DATA = Path(__file__).resolve().parents[1] / "data" / "trace"

# The field report's trace, exactly as published (abbreviated flags, a trailing comment).
FIELD_REPORT = """\
CloudflareWARP In  IP 100.64.12.189.9025 > 10.0.1.50.3000: [S], seq 710527279
eth0           Out IP 100.64.12.189.9025 > 10.0.1.50.3000: [S], seq 710527279
eth0           In  IP 10.0.1.50.3000 > 100.64.12.189.9025: [S.], seq 830383984, ack 710527280
eth0           Out IP 10.0.1.50.3000 > 100.64.12.189.9025: [S.], seq 830383984, ack 710527280
CloudflareWARP In  IP 100.64.12.189.9025 > 10.0.1.50.3000: [S], seq 710527279  # retry
"""


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out = capsys.readouterr()
    return code, out.out, out.err


def test_field_report_text_is_return_misrouted(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "ticket.txt"
    path.write_text(FIELD_REPORT)
    code, out, _ = run(capsys, "trace", str(path))
    assert code == 1
    for line in FIELD_REPORT.splitlines():
        assert line.split("#")[0].strip() in out
    assert "verdict: return-misrouted" in out
    assert "left on eth0, not through CloudflareWARP" in out
    assert "retransmissions: SYN 1" in out


def test_field_report_json(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "ticket.txt"
    path.write_text(FIELD_REPORT)
    code, out, _ = run(capsys, "--json", "trace", str(path), "--target", "10.0.1.50:3000")
    data = json.loads(out)
    assert code == 1 and data["broken"]
    (flow,) = data["flows"]
    assert flow["verdict"] == "return-misrouted"
    assert (flow["tunnel_interface"], flow["reply_interface"]) == ("CloudflareWARP", "eth0")
    assert flow["retransmissions"] == {"syn": 1, "synack": 0}
    assert len(flow["evidence"]) == 5


def test_text_with_timestamps_flags_word_and_ipv6() -> None:
    text = (DATA / "ipv6-ok.txt").read_text()
    report = analyse(text.encode())
    (flow,) = report.flows
    assert flow.verdict == "ok"
    assert flow.timing.forward_ms == 0.2 and flow.timing.rtt_ms == 1.0
    assert report.skipped == {"lines that are not packets": 2}


def test_text_icmp_unreachable_and_sll1_direction_only() -> None:
    text = """\
 In IP 100.64.1.2.4000 > 10.0.1.50.3000: Flags [S], seq 1, win 1, length 0
Out IP 100.64.1.2.4000 > 10.0.1.50.3000: Flags [S], seq 1, win 1, length 0
 In IP 10.0.1.1 > 100.64.1.2: ICMP host 10.0.1.50 unreachable, length 68
"""
    (flow,) = analyse(text.encode()).flows
    assert flow.verdict == "icmp-unreachable"


def test_text_refused() -> None:
    text = """\
CloudflareWARP In  IP 100.64.1.2.4000 > 10.0.1.50.3000: Flags [S], seq 1, win 1, length 0
eth0  Out IP 100.64.1.2.4000 > 10.0.1.50.3000: Flags [S], seq 1, win 1, length 0
eth0  In  IP 10.0.1.50.3000 > 100.64.1.2.4000: Flags [R.], seq 0, ack 2, win 0, length 0
"""
    assert analyse(text.encode()).flows[0].verdict == "refused"


def test_ok_capture_exits_zero(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "ok.pcap"
    path.write_bytes(sll2_pcap(scenario("ok")))
    code, out, _ = run(capsys, "trace", str(path))
    assert code == 0 and "verdict: ok" in out and "if5" in out


def test_snapshot_names_sll2_indexes(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    snap = broken_connector()
    snap = type(snap)(**{
        **{f: getattr(snap, f) for f in snap.__struct_fields__},
        "links": (link(5, "CloudflareWARP", "tun"), link(7, "eth0", "veth")),
    })  # fmt: skip
    codec.save(snap, tmp_path / "host.json")
    path = tmp_path / "broken.pcap"
    path.write_bytes(sll2_pcap(scenario("return-misrouted")))
    code, out, _ = run(capsys, "trace", str(path), "--snapshot", str(tmp_path / "host.json"))
    assert code == 1
    assert "CloudflareWARP In  IP 100.64.12.189.9025 > 10.0.1.50.3000: Flags [S]" in out
    assert "eth0  Out IP 10.0.1.50.3000 > 100.64.12.189.9025: Flags [S.]" in out


@pytest.mark.parametrize(
    ("argv", "needle"),
    [
        (["trace"], "give a capture FILE or --live"),
        (["trace", "/nonexistent/x.pcap"], "cannot open"),
        (["trace", "FILE", "--target", "10.0.1.50"], "expected IP:PORT"),
        (["trace", "FILE", "--duration", "0", "--live"], "not both"),
    ],
)
def test_bad_usage_is_one_line_exit_2(
    argv: list[str], needle: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "x.pcap"
    path.write_bytes(b"")
    argv = [str(path) if a == "FILE" else a for a in argv]
    code, _, err = run(capsys, *argv)
    assert code == 2
    assert needle in err and err.strip().count("\n") == 0 and "Traceback" not in err


def test_bad_capture_is_one_line_exit_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "empty.pcap"
    path.write_bytes(b"")
    code, _, err = run(capsys, "trace", str(path))
    assert code == 2 and err.strip() == f"meshpath: error: {path}: the file is empty"


def test_text_from_stdin_with_unnamed_ifindex(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    import io

    text = (
        "ifindex 5 In  IP 100.64.1.2.4000 > 10.0.1.50.3000: Flags [S], seq 1, win 1, length 0\n"
        "ifindex 7 Out IP 100.64.1.2.4000 > 10.0.1.50.3000: Flags [S], seq 1, win 1, length 0\n"
    )
    monkeypatch.setattr("sys.stdin", io.TextIOWrapper(io.BytesIO(text.encode())))
    code, out, _ = run(capsys, "--json", "trace", "-")
    flow = json.loads(out)["flows"][0]
    assert code == 1 and flow["verdict"] == "no-reply"
    assert (flow["tunnel_interface"], flow["lan_interface"]) == ("ifindex 5", "ifindex 7")
