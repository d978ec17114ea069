"""Values are parsed into their types before anything uses them (issue 10 items 5 and 18).

Every refusal is exit 2 with one line naming the input; nothing here touches the host:
plans come from saved snapshots, commands go to a RecordedRunner, and the one path that
would reach the host (``verify``) is replaced by a tripwire.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from meshpath.apply.frr import Frr
from meshpath.cli import main
from meshpath.collect.frr import query_frr
from meshpath.errors import BadInputError
from meshpath.runner import RecordedRunner
from meshpath.state import codec
from meshpath.values import HostPort, parse_asn, parse_hostport, parse_peer, parse_u32
from tests.builders import broken_connector
from tests.fix_builders import with_frr

USER_FRR = "frr version 8.4.4\nhostname conn\n!\nip route 198.51.100.0/24 CloudflareWARP\n!\nend\n"
INJECTED_PEER = "10.0.1.1\nconfigure terminal\nip route 203.0.113.0/24 Null0"
# Targets the audit saw accepted by one of the three old parsers, and their relatives.
BAD_TARGETS = (
    ":+80",
    "10.0.1.50:+80",
    "10.0.1.50:8_0",
    "10.0.1.50:\u0668\u0660",  # Arabic-Indic "80"
    "10.0.1.50:\uff18\uff10",  # fullwidth "80"
    "\u0661\u0660.0.1.50:80",
    "[10.0.1.50]:80",
    "[::1",
    "[::1]:80:80",
    "::1:80",
    "10.0.1.50: 80",
    " 10.0.1.50:80",
    "10.0.1.50:80 ",
    "10.0.1.50:0",
    "10.0.1.50:65536",
    "10.0.1.050:80",
    "[fe80::1%eth0]:80",
    "host:80",
    "",
)


def one_line_exit_2(capsys: pytest.CaptureFixture[str], argv: list[str], needle: str = "") -> str:
    code = main(argv)
    err = capsys.readouterr().err
    assert code == 2, (argv, code, err)
    assert err.strip().count("\n") == 0 and "Traceback" not in err, err
    assert needle in err, err
    return err


@pytest.fixture
def snap_file(tmp_path: Path) -> Path:
    path = tmp_path / "conn.json"
    codec.save(with_frr(broken_connector(), USER_FRR), path)
    return path


# -- the one target parser --------------------------------------------------------------
def test_target_forms() -> None:
    assert str(parse_hostport("10.0.1.50:3000")) == "10.0.1.50:3000"
    assert str(parse_hostport("[fd00::50]:443")) == "[fd00::50]:443"
    assert parse_hostport("10.0.1.50", default_port=80).port == 80
    assert parse_hostport("[fd00::50]", default_port=80) == parse_hostport("[fd00::50]:80")
    with pytest.raises(BadInputError, match="expected IP:PORT"):
        parse_hostport("10.0.1.50")


@pytest.mark.parametrize("target", BAD_TARGETS)
def test_bad_targets_are_refused_by_every_command(
    target: str, snap_file: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    capture = tmp_path / "empty.pcap"
    capture.write_bytes(b"")
    snap = ["--snapshot", str(snap_file)]
    for argv in (
        ["doctor", *snap, "--target", target],
        ["fix", "--mode", "nat", *snap, "--root", str(tmp_path), "--target", target],
        ["flow", target, *snap],
        ["trace", str(capture), "--target", target],
    ):
        one_line_exit_2(capsys, argv, "IP:PORT")


def test_each_command_keeps_its_default_target(
    snap_file: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """doctor still fills in port 80 for a bare address; flow and trace want the port."""
    assert main(["--json", "doctor", "--snapshot", str(snap_file), "--target", "10.0.1.50"]) == 1
    assert '"10.0.1.50:80"' in capsys.readouterr().out
    one_line_exit_2(capsys, ["flow", "10.0.1.50", "--snapshot", str(snap_file)], "IP:PORT")


# -- numbers ----------------------------------------------------------------------------
@pytest.mark.parametrize(
    "mark", ["1_000", "+1", " 1", "010", "0x", "0x1_0", "\u0661", "4294967296"]
)
def test_bad_marks_are_refused(
    mark: str, snap_file: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    one_line_exit_2(
        capsys, ["route", "get", "1.1.1.1", "--mark", mark, "--snapshot", str(snap_file)], "--mark"
    )


def test_marks_as_ip_prints_them() -> None:
    assert parse_u32("0x100cf", "--mark") == 0x100CF
    assert parse_u32("0", "--mark") == 0
    assert parse_u32("4294967295", "--mark") == 2**32 - 1


@pytest.mark.parametrize(
    "asn", ["65_001", "+65001", "\u0666\u0665\u0660\u0660\u0661", "0", "4294967296", "1.65536", "x"]
)
def test_bad_asns_are_refused(
    asn: str, snap_file: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = ["fix", "--mode", "bgp", "--snapshot", str(snap_file), "--root", str(tmp_path),
            "--peer", "10.0.1.1", "--asn", asn]  # fmt: skip
    one_line_exit_2(capsys, argv, "AS number")


def test_asdot_is_an_asn(
    snap_file: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert parse_asn("1.10") == 65546 and parse_asn("4294967295") == 2**32 - 1
    argv = ["fix", "--mode", "bgp", "--snapshot", str(snap_file), "--root", str(tmp_path),
            "--peer", "10.0.1.1", "--asn", "1.10"]  # fmt: skip
    assert main(argv) == 0
    assert "router bgp 65546" in capsys.readouterr().out


def test_bad_peer_asn_is_refused(
    snap_file: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    arabic = "\u0666\u0665\u0660\u0660\u0660"  # 65000 in Arabic-Indic digits
    argv = ["fix", "--mode", "bgp", "--snapshot", str(snap_file), "--root", str(tmp_path),
            "--peer", "10.0.1.1", "--asn", "65001", "--peer-asn", arabic]  # fmt: skip
    one_line_exit_2(capsys, argv, "--peer-asn")


# -- peers: nothing unparsed reaches vtysh ---------------------------------------------------
@pytest.mark.parametrize(
    "peer", [INJECTED_PEER, "10.0.1.1 ", "fe80::1%eth0", "0.0.0.0", "224.0.0.5", "127.0.0.1", "x"]
)
def test_verify_peer_is_parsed_before_anything_runs(
    peer: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """Issue 10 item 5: `verify --peer` went into `vtysh -c` unparsed."""

    def tripwire(*_args: Any, **_kw: Any) -> None:
        raise AssertionError("verify ran with an unparsed peer")

    monkeypatch.setattr("meshpath.usecase.verify.run", tripwire)
    argv = ["verify", "--mode", "bgp", "--peer", peer, "--root", str(tmp_path)]
    one_line_exit_2(capsys, argv, "--peer")


def test_frr_never_sends_an_unparsed_peer_to_vtysh() -> None:
    runner = RecordedRunner(programs=frozenset({"vtysh"}))
    with pytest.raises(BadInputError):
        Frr(runner, None).advertised(INJECTED_PEER)
    assert runner.calls == []
    assert parse_peer("10.0.1.1") == "10.0.1.1"


def test_the_collector_queries_only_peers_that_are_one_word() -> None:
    """A peer key from FRR's own JSON is not trusted either (vtysh runs each line)."""
    import json

    summary = {"ipv4Unicast": {"peers": {"10.0.1.1": {}, "eth0": {}, INJECTED_PEER: {}}}}
    runner = RecordedRunner(programs=frozenset({"vtysh"}))
    runner.answer(["vtysh", "-c", "show bgp summary json"], json.dumps(summary))
    state = query_frr(runner, lambda c: ["vtysh", "-c", c], ("bgpd",))
    asked = [c[-1] for c in runner.calls if "advertised-routes" in c[-1]]
    assert asked == [
        "show ip bgp neighbors 10.0.1.1 advertised-routes json",
        "show ip bgp neighbors eth0 advertised-routes json",
    ]
    assert all("\n" not in c[-1] for c in runner.calls)
    assert state.error is not None and "not queried" in state.error


# -- interfaces ------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("lan", "needle"), [("CloudflareWARP", "is the tunnel"), ("lo", "loopback")]
)
def test_lan_interface_cannot_be_the_tunnel_or_loopback(
    lan: str, needle: str, snap_file: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    for mode in ("nat", "route"):
        argv = ["fix", "--mode", mode, "--snapshot", str(snap_file), "--root", str(tmp_path),
                "--lan-if", lan]  # fmt: skip
        one_line_exit_2(capsys, argv, needle)


@pytest.mark.parametrize("lan", ["eth9", "a b", "x" * 16, 'x"accept#'])
def test_bad_lan_names_are_refused(
    lan: str, snap_file: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = ["fix", "--mode", "nat", "--snapshot", str(snap_file), "--root", str(tmp_path),
            "--lan-if", lan]  # fmt: skip
    one_line_exit_2(capsys, argv, "LAN interface")


def test_flow_with_a_tunnel_that_does_not_exist_is_bad_input(
    snap_file: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = ["flow", "10.0.1.50:3000", "--snapshot", str(snap_file), "--tunnel", "nosuch"]
    one_line_exit_2(capsys, argv, "--tunnel 'nosuch' does not exist")


@pytest.mark.parametrize("action", ["--rollback", "--resume"])
def test_fix_in_a_namespace_that_does_not_exist_is_bad_input(
    action: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = ["fix", action, "--netns", "mp-no-such-netns", "--root", str(tmp_path)]
    one_line_exit_2(capsys, argv, "mp-no-such-netns")
    assert list(tmp_path.iterdir()) == []  # no lock, no journal dir


def test_a_config_tunnel_name_the_kernel_refuses_is_a_config_error(
    tmp_path: Path, snap_file: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = tmp_path / "meshpath.toml"
    config.write_text('[connector]\ntunnel_interface = "Cloudflare WARP"\n')
    argv = ["--config", str(config), "doctor", "--snapshot", str(snap_file)]
    one_line_exit_2(capsys, argv, "tunnel_interface 'Cloudflare WARP'")


def test_host_port_is_a_value() -> None:
    hp = parse_hostport("[2001:db8::5]:443")
    assert isinstance(hp, HostPort) and hp.address.version == 6 and hp.port == 443
