"""Broken captures: a one-line CaptureError or a counted skip, never a traceback."""

from __future__ import annotations

import struct
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from meshpath.cli import main
from meshpath.errors import BadInputError, CaptureError
from meshpath.trace import analyse
from meshpath.trace import writer as w
from meshpath.trace.decode import LINKTYPE_LINUX_SLL2, LINKTYPE_RAW
from meshpath.trace.packet import MAX_TS_NS, Direction, time_text
from tests.trace_builders import pcapng_per_interface, scenario, sll2_pcap

GOOD = sll2_pcap(scenario("return-misrouted"))
GOOD_NG = pcapng_per_interface(scenario("return-misrouted"))


def one_line_error(data: bytes) -> str:
    with pytest.raises(CaptureError) as info:
        analyse(data, name="cap")
    message = str(info.value)
    assert "\n" not in message and message.startswith("cap: ")
    return message


def test_zero_length() -> None:
    assert "empty" in one_line_error(b"")


def test_wrong_magic() -> None:
    assert "not a pcap, pcapng or tcpdump text" in one_line_error(b"\x01\x02\x03\x04" + GOOD[4:])


def test_truncated_file_header() -> None:
    assert "cut short" in one_line_error(GOOD[:20])


def test_unsupported_linktype() -> None:
    data = w.pcap(147, [(0, b"x" * 40)])
    assert "link type 147 (USER0) is not supported" in one_line_error(data)


@pytest.mark.parametrize("cut", [1, 7, 15, 30])
def test_truncated_last_record_is_a_noted_skip(cut: int) -> None:
    report = analyse(GOOD[:-cut])
    assert report.truncated
    assert sum(report.skipped.values()) == 1
    assert report.verdict_counts == {"return-misrouted": 1}


def test_truncated_pcapng_block_is_a_noted_skip() -> None:
    report = analyse(GOOD_NG[:-10])
    assert report.truncated and "block cut off at the end of the file" in report.skipped


def test_huge_snaplen_in_header_is_harmless() -> None:
    data = GOOD[:16] + struct.pack("<I", 0xFFFFFFFF) + GOOD[20:]
    assert analyse(data).verdict_counts == {"return-misrouted": 1}


def test_record_claiming_more_than_any_snaplen_is_corrupt() -> None:
    data = GOOD[:24] + struct.pack("<IIII", 0, 0, 10_000_000, 10_000_000) + bytes(10_000_000)
    assert "claims 10000000 bytes" in one_line_error(data)


def test_packet_shorter_than_its_headers_is_counted() -> None:
    short_ip = w.sll2(w.syn("100.64.0.1", "10.0.1.50", 1, 2, 3)[:30], 5)
    short_link = b"\x08\x00\x00"
    bad_ihl = w.sll2(b"\x4f" + w.syn("100.64.0.1", "10.0.1.50", 1, 2, 3)[1:30], 5)
    report = analyse(w.pcap(LINKTYPE_LINUX_SLL2, [(0, short_ip), (1, short_link), (2, bad_ihl)]))
    assert report.skipped == {
        "shorter than its TCP header": 1,
        "shorter than its link header": 1,
        "malformed IPv4 header": 1,
    }
    assert report.packets == 3


def test_pcapng_bad_block_length() -> None:
    data = bytearray(GOOD_NG)
    first_idb = 28  # after the 28-byte section header
    data[first_idb + 4 : first_idb + 8] = struct.pack("<I", 13)
    assert "bad length 13" in one_line_error(bytes(data))


def test_pcapng_unknown_blocks_and_simple_packets() -> None:
    syn = w.syn("100.64.0.1", "10.0.1.50", 1000, 3000, 7)
    body = struct.pack("<I", len(syn)) + syn + bytes((-len(syn)) % 4)
    spb = struct.pack("<II", 3, len(body) + 12) + body + struct.pack("<I", len(body) + 12)
    # Two interfaces: a capture of one cannot say "not-forwarded" (issue #12 item 2).
    interfaces = [w.NgInterface(LINKTYPE_RAW, "tun0"), w.NgInterface(LINKTYPE_RAW, "eth0")]
    ng = w.pcapng(interfaces, [(0, 5, syn, Direction.IN)])
    report = analyse(ng + w.unknown_block() + spb)
    assert report.verdict_counts == {"not-forwarded": 1}
    assert report.flows[0].syn_retransmissions == 1
    assert report.skipped == {}


def test_text_without_packets() -> None:
    assert "no tcpdump lines found" in one_line_error(b"hello\nworld\n")


def _mutations() -> st.SearchStrategy[bytes]:
    """Valid captures with bytes flipped, cut, or extended; plus pure noise."""
    base = st.sampled_from([GOOD, GOOD_NG, sll2_pcap(scenario("ok-nat"))])

    def flip(data: bytes, pos: int, value: int) -> bytes:
        pos %= len(data)
        return data[:pos] + bytes([value]) + data[pos + 1 :]

    flipped = st.builds(flip, base, st.integers(0, 10_000), st.integers(0, 255))
    multi = st.builds(
        lambda d, edits: _apply(d, edits),
        base,
        st.lists(st.tuples(st.integers(0, 10_000), st.integers(0, 255)), max_size=8),
    )
    cut = st.builds(lambda d, n: d[: n % (len(d) + 1)], base, st.integers(0, 10_000))
    return st.one_of(flipped, multi, cut, st.binary(max_size=300))


def _apply(data: bytes, edits: list[tuple[int, int]]) -> bytes:
    buf = bytearray(data)
    for pos, value in edits:
        buf[pos % len(buf)] = value
    return bytes(buf)


FUZZ_EXAMPLES = 600


@settings(
    max_examples=FUZZ_EXAMPLES,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
    database=None,
)
@given(_mutations())
def test_fuzz_reader_never_raises_anything_else(data: bytes) -> None:
    try:
        report = analyse(data, name="fuzz")
    except BadInputError as exc:
        assert "\n" not in str(exc)
        return
    assert report.packets >= 0


# -- values a reader accepted but the renderer could not print (issue 10, item 16) ------
def _trace_cli(path: Path, capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    code = main(["trace", str(path)])
    out = capsys.readouterr()
    return code, out.out, out.err


@pytest.mark.parametrize("tsresol", [0, 1, 0x80])
def test_pcapng_timestamp_past_year_9999_is_unknown_not_a_crash(
    tsresol: int, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # if_tsresol 0 is whole seconds: a 64-bit count of them overflowed datetime in time_text.
    syn = w.syn("100.64.0.1", "10.0.1.50", 1000, 3000, 7)
    units = 2**64 - 1
    # Two interfaces: a capture of one cannot say "not-forwarded" (issue #12 item 2).
    interfaces = [w.NgInterface(LINKTYPE_RAW, "tun0", tsresol=tsresol),
                  w.NgInterface(LINKTYPE_RAW, "eth0", tsresol=tsresol)]  # fmt: skip
    ng = w.pcapng(interfaces, [(0, units * 1000, syn, Direction.IN)])
    path = tmp_path / "far.pcapng"
    path.write_bytes(ng)
    code, out, err = _trace_cli(path, capsys)
    assert code == 1 and err == ""
    assert "not-forwarded" in out


def test_time_text_prints_the_latest_time_a_reader_keeps() -> None:
    assert time_text(MAX_TS_NS) == "23:59:59.000000"


@pytest.mark.parametrize(
    "line",
    [
        "tun0 In IP 100.64.0.1.99999999999999999999 > 10.0.1.50.3000: Flags [S], seq 1, length 0",
        "tun0 In IP 100.64.0.1.1000 > 10.0.1.50.65536: Flags [S], seq 1, length 0",
        "eth0 In IP 10.0.1.1 > 100.64.0.1: ICMP 10.0.1.50 tcp port 9999999 unreachable, length 68",
    ],
)
def test_text_port_out_of_range_is_not_a_packet(
    line: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "ticket.txt"
    path.write_text(line + "\n")
    code, out, err = _trace_cli(path, capsys)
    assert code == 2 and out == ""
    assert err.count("\n") == 1 and "no tcpdump lines found" in err


def test_text_numbers_longer_than_any_counter_are_ignored(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # int() refuses strings past 4,300 digits: a pasted line must not make it try.
    digits = "9" * 5000
    line = f"tun0 In IP 100.64.0.1.1000 > 10.0.1.50.3000: Flags [S], seq {digits}, win {digits}"
    path = tmp_path / "ticket.txt"
    path.write_text(line + "\n")
    code, out, err = _trace_cli(path, capsys)
    assert code == 1 and err == "" and "not-forwarded" in out
