"""nft, FRR, WARP and sysctl collection through a RecordedRunner / a recorded /proc/sys tree."""

from __future__ import annotations

import json
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest

from meshpath.collect import frr
from meshpath.collect.frr import collect_frr, running_daemons, vtysh_argv
from meshpath.collect.nft import NFT_ARGV, collect_nft, parse_nft
from meshpath.collect.sysctl import read_sysctls
from meshpath.collect.warp import SETTINGS_ARGV, STATUS_ARGV, collect_warp, parse_warp
from meshpath.runner import Completed, RecordedRunner
from meshpath.state import BaseChain, Ipv4Conf, Ipv6Conf

DATA = Path(__file__).parent / "data"


# ------------------------------------------------------------------------------- nftables


def test_nft_absent_is_recorded_not_an_error() -> None:
    state = collect_nft(RecordedRunner())
    assert (state.available, state.ruleset, state.error) == (False, None, None)


def test_nft_failing_keeps_the_error() -> None:
    runner = RecordedRunner(programs=frozenset({"nft"}))
    argv = " ".join(NFT_ARGV)
    runner.answers[argv] = Completed(NFT_ARGV, 1, "", "netlink: Error: Operation not permitted\n")
    state = collect_nft(runner)
    assert state.available and state.ruleset is None
    assert state.error == "nft -j list ruleset: netlink: Error: Operation not permitted"


def test_nft_recorded_ruleset_base_chains() -> None:
    text = (DATA / "nft_ruleset.json").read_text()
    runner = RecordedRunner(programs=frozenset({"nft"}))
    runner.answer(NFT_ARGV, text)
    state = collect_nft(runner)
    assert state.ruleset == json.loads(text)
    assert state.base_chains == (
        BaseChain(family="inet", table="t", name="post", type="nat", hook="postrouting",
                  priority=100, policy="accept"),
        BaseChain(family="inet", table="t", name="filt", type="filter", hook="forward",
                  priority=-5, policy="drop"),
        BaseChain(family="netdev", table="n", name="ing", type="filter", hook="ingress",
                  priority=-500, policy="accept"),
    )  # fmt: skip
    assert runner.calls == [NFT_ARGV]


def test_nft_empty_output_is_an_empty_ruleset() -> None:
    assert parse_nft("").ruleset == {"nftables": []}


def test_nft_garbage_is_an_error_not_a_crash() -> None:
    state = parse_nft("{not json")
    assert state.available and state.error is not None and "not JSON" in state.error


def test_nft_device_and_named_priority() -> None:
    chain = {"family": "netdev", "table": "n", "name": "c", "type": "filter",
             "hook": "ingress", "prio": "dstnat", "dev": ["eth0", "eth1"]}  # fmt: skip
    state = parse_nft(json.dumps({"nftables": [{"chain": chain}]}))
    assert state.base_chains[0].priority == -100
    assert state.base_chains[0].device == "eth0,eth1"


# ------------------------------------------------------------------------------------ FRR


@pytest.fixture
def frr_dir(tmp_path: Path) -> Iterator[Path]:
    """FRR's pathspace dir for namespace "conn" (<tmp>/conn) with a listening zebra.vty and
    bgpd.vty and a stale staticd.vty."""
    listeners = []
    tmp_path = tmp_path / "conn"
    tmp_path.mkdir()
    for daemon in ("zebra", "bgpd"):
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.bind(str(tmp_path / f"{daemon}.vty"))
        sock.listen(4)
        listeners.append(sock)
    stale = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    stale.bind(str(tmp_path / "staticd.vty"))
    stale.close()  # the file stays, nobody listens: a daemon that died
    yield tmp_path
    for sock in listeners:
        sock.close()


def test_vtysh_argv_uses_pathspace_in_a_netns() -> None:
    assert vtysh_argv("conn", "show ip route json") == [
        "vtysh", "-N", "conn", "-c", "show ip route json"
    ]  # fmt: skip
    assert vtysh_argv(None, "show running-config") == ["vtysh", "-c", "show running-config"]


def test_frr_absent() -> None:
    state = collect_frr(RecordedRunner(), "conn")
    assert (state.available, state.running) == (False, False)


def test_frr_installed_not_running(tmp_path: Path) -> None:
    runner = RecordedRunner(programs=frozenset({"vtysh"}))
    state = collect_frr(runner, "conn", vty_dir=tmp_path / "missing")
    assert (state.available, state.running, state.daemons) == (True, False, ())
    assert runner.calls == []


def test_running_daemons_only_counts_listening_sockets(frr_dir: Path) -> None:
    assert running_daemons(frr_dir) == ("bgpd", "zebra")


def test_frr_running_collects_json_and_config(
    frr_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(frr, "FRR_RUN_DIR", frr_dir.parent)  # default: /var/run/frr/<netns>
    runner = RecordedRunner(programs=frozenset({"vtysh"}))
    routes = {"100.64.0.0/12": [{"prefix": "100.64.0.0/12", "protocol": "static"}]}
    bgp = {"ipv4Unicast": {"as": 65001, "peers": {"10.0.1.1": {"state": "Established"}}}}
    runner.answer(vtysh_argv("conn", "show ip route json"), json.dumps(routes))
    runner.answer(vtysh_argv("conn", "show bgp summary json"), json.dumps(bgp))
    runner.answer(vtysh_argv("conn", "show running-config"), "frr version 8.4.4\n!\nend\n")
    sent = {"advertisedRoutes": {"100.64.0.0/12": {}}, "totalPrefixCounter": 1}
    runner.answer(
        vtysh_argv("conn", "show ip bgp neighbors 10.0.1.1 advertised-routes json"),
        json.dumps(sent),
    )
    state = collect_frr(runner, "conn")
    assert state.running and state.daemons == ("bgpd", "zebra")
    assert state.ip_route == routes and state.bgp_summary == bgp
    assert state.bgp_advertised == {"10.0.1.1": sent}
    assert state.running_config == "frr version 8.4.4\n!\nend\n"
    assert state.error is None
    # Every session up: why one went down is not asked (a long document, no use).
    assert vtysh_argv("conn", "show bgp neighbors json") not in [list(c) for c in runner.calls]
    assert state.bgp_neighbors is None

    bgp["ipv4Unicast"]["peers"]["10.0.1.1"]["state"] = "Idle"
    runner.answer(vtysh_argv("conn", "show bgp summary json"), json.dumps(bgp))
    why = {"10.0.1.1": {"lastResetDueTo": "BGP Notification send", "lastResetTimerMsecs": 3000}}
    runner.answer(vtysh_argv("conn", "show bgp neighbors json"), json.dumps(why))
    down = collect_frr(runner, "conn")
    assert down.bgp_neighbors == why
    assert down.view.resets["10.0.1.1"].describe() == "BGP Notification send, 3 s ago"


def test_frr_asks_the_ipv6_advertisement_of_peers_in_that_family(
    frr_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(frr, "FRR_RUN_DIR", frr_dir.parent)
    runner = RecordedRunner(programs=frozenset({"vtysh"}))
    up = {"state": "Established"}
    bgp = {"ipv4Unicast": {"peers": {"10.0.1.1": up}}, "ipv6Unicast": {"peers": {"fd00:1::1": up}}}
    runner.answer(vtysh_argv("conn", "show bgp summary json"), json.dumps(bgp))
    sent6 = {"advertisedRoutes": {"2606:4700:cf1:5000::/64": {}}}
    runner.answer(
        vtysh_argv("conn", "show bgp ipv6 unicast neighbors fd00:1::1 advertised-routes json"),
        json.dumps(sent6),
    )
    state = collect_frr(runner, "conn")
    assert state.bgp_advertised6 == {"fd00:1::1": sent6}
    assert state.view.advertised6 == {"fd00:1::1": frozenset({"2606:4700:cf1:5000::/64"})}
    assert [p.address for p in state.view.peers6] == ["fd00:1::1"]
    assert "fd00:1::1" not in (state.bgp_advertised or {})  # not an IPv4 unicast peer


def test_frr_bad_output_is_kept_as_error(frr_dir: Path) -> None:
    runner = RecordedRunner(programs=frozenset({"vtysh"}))
    runner.answer(vtysh_argv(None, "show ip route json", frr_dir), "% Unknown command\n")
    state = collect_frr(runner, None, vty_dir=frr_dir)
    assert runner.calls[0] == ("vtysh", "--vty_socket", str(frr_dir), "-c", "show ip route json")
    assert state.ip_route is None and state.running
    assert state.error is not None and "show ip route json: not JSON" in state.error
    assert "show running-config" in state.error  # not recorded -> exit 127 -> kept


# ----------------------------------------------------------------------------------- WARP

STATUS = "Status update: Connected\nNetwork: healthy\n"
SETTINGS = "Merged configuration:\n(local)\tMode: WarpConnector\n(local)\tAlways On: true\n"


def test_warp_absent() -> None:
    assert collect_warp(RecordedRunner()).available is False


def test_warp_status_and_mode() -> None:
    runner = RecordedRunner(programs=frozenset({"warp-cli"}))
    runner.answer(STATUS_ARGV, STATUS)
    runner.answer(SETTINGS_ARGV, SETTINGS)
    state = collect_warp(runner)
    assert (state.status, state.mode, state.error) == ("Connected", "WarpConnector", None)
    assert state.raw is not None and "Always On" in state.raw


def test_warp_daemon_down_is_error_text() -> None:
    runner = RecordedRunner(programs=frozenset({"warp-cli"}))
    runner.answers[" ".join(STATUS_ARGV)] = Completed(
        STATUS_ARGV, 1, "", "Error: Unable to connect to the CloudflareWARP daemon\n"
    )
    state = collect_warp(runner)
    assert state.available and state.status is None
    assert state.error == "warp-cli status: Error: Unable to connect to the CloudflareWARP daemon"


def test_warp_lenient_parse() -> None:
    assert parse_warp("Status: Disconnected\nReason: Manual\nMode: warp+doh").mode == "warp+doh"
    assert parse_warp("garbage").status is None


# -------------------------------------------------------------------------------- sysctls


def write_conf(root: Path, family: str, name: str, values: dict[str, int]) -> None:
    directory = root / "net" / family / "conf" / name.replace(".", "/")
    directory.mkdir(parents=True)
    for key, value in values.items():
        (directory / key).write_text(f"{value}\n")


def test_sysctls_from_a_recorded_tree(tmp_path: Path) -> None:
    v4 = {"forwarding": 1, "rp_filter": 2, "src_valid_mark": 1, "accept_local": 0,
          "route_localnet": 0, "log_martians": 1}  # fmt: skip
    write_conf(tmp_path, "ipv4", "all", v4)
    write_conf(tmp_path, "ipv4", "default", {**v4, "rp_filter": 1})
    write_conf(tmp_path, "ipv4", "eth0.10", {**v4, "forwarding": 0})
    write_conf(tmp_path, "ipv6", "all", {"forwarding": 1, "disable_ipv6": 0})
    (tmp_path / "net/ipv4/fwmark_reflect").write_text("1\n")
    (tmp_path / "net/ipv4/tcp_mtu_probing").write_text("2\n")
    got = read_sysctls(["eth0.10", "gone"], root=tmp_path)
    assert got.ipv4 == {
        "all": Ipv4Conf(**v4),
        "default": Ipv4Conf(**{**v4, "rp_filter": 1}),
        "eth0.10": Ipv4Conf(**{**v4, "forwarding": 0}),
    }
    assert got.ipv6 == {"all": Ipv6Conf(forwarding=1, disable_ipv6=0)}
    assert (got.fwmark_reflect, got.tcp_mtu_probing, got.ip_forward) == (1, 2, True)
