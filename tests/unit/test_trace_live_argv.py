"""The live-capture edge as data: argv, exit-code handling, interface names (no root)."""

from __future__ import annotations

from pathlib import Path

import pytest

from meshpath.cli.trace_cmd import target_endpoint as parse_target
from meshpath.errors import BadInputError, CommandError, MissingToolError
from meshpath.runner import RecordedRunner
from meshpath.trace.live import capture, capture_argv, capture_filter, link_names

PATH = Path("/tmp/x.pcap")


def test_argv_is_bounded_sll2_any_and_filtered() -> None:
    argv = capture_argv(PATH, 5, parse_target("10.0.1.50:3000"))
    assert argv[:7] == ["timeout", "--foreground", "-k", "5", "-s", "INT", "5"]
    assert argv[7:12] == ["tcpdump", "-i", "any", "-y", "LINUX_SLL2"]
    assert argv[-1] == "(tcp and host 10.0.1.50 and port 3000) or icmp or icmp6"
    assert capture_filter(None) == "tcp or icmp or icmp6"


@pytest.mark.parametrize("seconds", [0, -1, 4000])
def test_duration_is_bounded(seconds: float) -> None:
    with pytest.raises(BadInputError, match="--duration"):
        capture_argv(PATH, seconds, None)


@pytest.mark.parametrize(("rc", "fails"), [(0, False), (124, False), (1, True)])
def test_timeout_exit_is_success(rc: int, fails: bool) -> None:
    runner = RecordedRunner(programs=frozenset({"timeout", "tcpdump"}))
    runner.answer(capture_argv(PATH, 2, None), returncode=rc)
    if fails:
        with pytest.raises(CommandError):
            capture(runner, PATH, 2, None)
    else:
        capture(runner, PATH, 2, None)
    assert runner.calls == [tuple(capture_argv(PATH, 2, None))]


def test_missing_tcpdump() -> None:
    with pytest.raises(MissingToolError, match="tcpdump"):
        capture(RecordedRunner(programs=frozenset({"timeout"})), PATH, 2, None)


def test_link_names_from_ip_link() -> None:
    runner = RecordedRunner()
    runner.answer(
        ["ip", "-o", "link", "show"],
        "1: lo: <LOOPBACK,UP> mtu 65536 qdisc noqueue\n"
        "2: CloudflareWARP: <POINTOPOINT,UP> mtu 1280\n"
        "3: eth0@if4: <BROADCAST,UP> mtu 1500\n",
    )
    assert link_names(runner) == {1: "lo", 2: "CloudflareWARP", 3: "eth0"}
