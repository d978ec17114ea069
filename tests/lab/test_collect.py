"""The collector against a real namespace shaped like a WARP connector.

Everything asserted here was put into the kernel/nftables by the fixture; routes and rules
are also cross-checked against iproute2's own ``ip -j`` view of the same namespace.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from meshpath.cli import main
from meshpath.collect import collect_snapshot
from meshpath.state import (
    SCHEMA_VERSION,
    BaseChain,
    Ipv4Conf,
    PortRange,
    Route,
    Rule,
    Snapshot,
    codec,
)
from tests import iproute_json, snapshot_keys
from tests.conftest import needs_root, sh

pytestmark = [needs_root, pytest.mark.root]

SETUP = """\
tuntap add dev CloudflareWARP mode tun
link set CloudflareWARP up mtu 1280
addr add 100.96.0.5/32 dev CloudflareWARP
link add eth0 type veth peer name lan0 netns {peer}
link set eth0 up
addr add 10.0.1.2/24 dev eth0
addr add 2001:db8:1::2/64 dev eth0 nodad
route add default via 10.0.1.1 dev eth0
route add 100.96.0.0/12 dev CloudflareWARP
route add 0.0.0.0/1 dev CloudflareWARP table 65743
route add 128.0.0.0/1 dev CloudflareWARP table 65743
route add throw 10.0.0.0/8 table 65743
route add blackhole 100.64.0.0/10 table 65743
route add 2001:db8:9::/48 via 2001:db8:1::1 dev eth0 table 65743
rule add not fwmark 0x100cf lookup 65743 pref 32765
rule add ipproto tcp sport 1000-2000 dport 3000 uidrange 100-199 lookup main suppress_prefixlength 0 pref 100
"""  # noqa: E501 - one ip command per line reads best
NFT = (
    "add table inet t; "
    "add chain inet t post { type nat hook postrouting priority srcnat; policy accept; }; "
    'add rule inet t post oifname "eth0" ip saddr 100.64.0.0/12 masquerade'
)


@pytest.fixture
def connector(make_netns: Callable[[], str]) -> str:
    ns, peer = make_netns(), make_netns()
    _batch(ns, SETUP.format(peer=peer))
    sh(["ip", "link", "set", "lan0", "up"], netns=peer)
    sh(["nft", NFT], netns=ns)
    sh(["sysctl", "-qw", "net.ipv4.conf.eth0.rp_filter=2", "net.ipv4.ip_forward=1"], netns=ns)
    return ns


def _batch(ns: str, text: str) -> None:
    proc = subprocess.run(
        ["ip", "-n", ns, "-batch", "-"], input=text, capture_output=True, text=True, check=False
    )
    assert proc.returncode == 0, proc.stderr


def test_collects_the_connector_exactly(connector: str) -> None:
    snap = collect_snapshot(netns=connector)
    assert snap.netns == connector and snap.schema_version == SCHEMA_VERSION
    tun = snap.link("CloudflareWARP")
    assert tun is not None
    assert (tun.kind, tun.mtu, tun.carrier, tun.operstate) == ("tun", 1280, False, "DOWN")
    eth0 = snap.link("eth0")
    assert eth0 is not None and (eth0.kind, eth0.carrier, eth0.operstate) == ("veth", True, "UP")
    assert {(a.dev, a.family, a.local, a.prefixlen) for a in snap.addresses} >= {
        ("CloudflareWARP", 4, "100.96.0.5", 32),
        ("eth0", 4, "10.0.1.2", 24),
        ("eth0", 6, "2001:db8:1::2", 64),
    }
    assert_routes(snap)
    assert_rules(snap)
    assert_nft_and_sysctls(snap)


def assert_routes(snap: Snapshot) -> None:
    warp = set(snap.routes_in(65743))
    assert warp == {
        Route(table=65743, family=4, dst="0.0.0.0/1", dev="CloudflareWARP", scope=253,
              flags=("linkdown",)),
        Route(table=65743, family=4, dst="128.0.0.0/1", dev="CloudflareWARP", scope=253,
              flags=("linkdown",)),
        Route(table=65743, family=4, dst="10.0.0.0/8", type="throw"),
        Route(table=65743, family=4, dst="100.64.0.0/10", type="blackhole"),
        Route(table=65743, family=6, dst="2001:db8:9::/48", gateway="2001:db8:1::1", dev="eth0",
              metric=1024),
    }  # fmt: skip
    main_v4 = {r.dst: r for r in snap.routes_in(254) if r.family == 4}
    assert main_v4["0.0.0.0/0"] == Route(table=254, family=4, dst="0.0.0.0/0",
                                         gateway="10.0.1.1", dev="eth0")  # fmt: skip
    assert main_v4["10.0.1.0/24"] == Route(table=254, family=4, dst="10.0.1.0/24", dev="eth0",
                                           protocol=2, scope=253, prefsrc="10.0.1.2")  # fmt: skip
    local = {r.dst: r for r in snap.routes_in(255)}
    assert local["100.96.0.5/32"].type == "local" and local["100.96.0.5/32"].dev == "CloudflareWARP"


def assert_rules(snap: Snapshot) -> None:
    by_pref = {(r.family, r.priority): r for r in snap.rules}
    assert by_pref[(4, 32765)] == Rule(family=4, priority=32765, table=65743, invert=True,
                                       fwmark=0x100CF, fwmask=0xFFFFFFFF)  # fmt: skip
    assert by_pref[(4, 100)] == Rule(
        family=4, priority=100, table=254, ipproto=6, sport=PortRange(start=1000, end=2000),
        dport=PortRange(start=3000, end=3000), uidrange=PortRange(start=100, end=199),
        suppress_prefixlength=0,
    )  # fmt: skip
    assert [r.priority for r in snap.rules if r.family == 4] == [0, 100, 32765, 32766, 32767]


def assert_nft_and_sysctls(snap: Snapshot) -> None:
    assert snap.nft.available and snap.nft.error is None
    assert snap.nft.base_chains == (
        BaseChain(family="inet", table="t", name="post", type="nat", hook="postrouting",
                  priority=100, policy="accept"),
    )  # fmt: skip
    assert snap.nft.ruleset is not None
    rules = [i["rule"] for i in snap.nft.ruleset["nftables"] if "rule" in i]
    assert rules[0]["chain"] == "post" and {"masquerade": None} in rules[0]["expr"]
    assert snap.sysctls.ipv4["eth0"].rp_filter == 2
    assert snap.sysctls.ipv4["CloudflareWARP"] == Ipv4Conf(forwarding=1, rp_filter=0)
    assert snap.sysctls.ip_forward
    assert snap.sysctls.ipv6["eth0"].disable_ipv6 == 0
    assert snap.frr.running is False and snap.warp.available is False
    assert snap.tools["nft"] is True


def test_routes_and_rules_match_iproute2(connector: str) -> None:
    snap = collect_snapshot(netns=connector)
    for family in (4, 6):
        shown = json.loads(sh(["ip", f"-{family}", "-j", "route", "show", "table", "all"],
                              netns=connector))  # fmt: skip
        theirs = {iproute_json.route_key(r, family) for r in shown}
        ours = {snapshot_keys.route_key(r) for r in snap.routes if r.family == family}
        assert ours == theirs
        rules = json.loads(sh(["ip", f"-{family}", "-j", "rule", "show"], netns=connector))
        assert [iproute_json.rule_key(r) for r in rules] == [
            snapshot_keys.rule_key(r) for r in snap.rules if r.family == family
        ]


def test_cli_json_snapshot(connector: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--json", "snapshot", "--netns", connector]) == 0
    data = json.loads(capsys.readouterr().out)
    assert any(link["name"] == "CloudflareWARP" and link["kind"] == "tun" for link in data["links"])
    assert {r["dst"] for r in data["routes"] if r["table"] == 65743} >= {"0.0.0.0/1", "128.0.0.0/1"}
    assert any(r["fwmark"] == 0x100CF and r["invert"] for r in data["rules"])


def test_snapshot_round_trips_through_file(connector: str, tmp_path: Path) -> None:
    snap = collect_snapshot(netns=connector)
    assert codec.loads(codec.dumps(snap)) == snap
    path = tmp_path / "conn.json"
    assert main(["snapshot", "--netns", connector, "-o", str(path)]) == 0
    saved = codec.load(path)
    assert saved.netns == connector and saved.routes_in(65743)
    assert codec.loads(codec.dumps(saved, indent=2)) == saved


@pytest.fixture
def frr_in(connector: str) -> Iterator[str]:
    """zebra + staticd for the connector namespace in FRR's pathspace (-N NS), with one
    static route; killed and their directory removed at teardown."""
    rundir = Path("/var/run/frr") / connector
    rundir.mkdir(parents=True, exist_ok=True)
    shutil.chown(rundir, "frr", "frr")
    conf = {"zebra": "hostname conn\n", "staticd": "ip route 100.64.0.0/12 CloudflareWARP\n"}
    try:
        for daemon, text in conf.items():
            path = rundir / f"{daemon}.conf"
            path.write_text(text)
            path.chmod(0o644)
            sh([f"/usr/lib/frr/{daemon}", "-d", "-N", connector, "-f", str(path),
                "-i", str(rundir / f"{daemon}.pid"), "--vty_socket", str(rundir)],
               netns=connector)  # fmt: skip
        yield connector
    finally:
        pids = []
        for pidfile in rundir.glob("*.pid"):
            with contextlib.suppress(ValueError, OSError):
                pids.append(int(pidfile.read_text().strip()))
                os.kill(pids[-1], signal.SIGTERM)
        deadline = time.monotonic() + 5
        while any(Path(f"/proc/{pid}").exists() for pid in pids) and time.monotonic() < deadline:
            time.sleep(0.05)
        shutil.rmtree(rundir, ignore_errors=True)


def test_collects_frr_in_its_namespace(frr_in: str) -> None:
    deadline = time.monotonic() + 15
    while True:
        snap = collect_snapshot(netns=frr_in)
        routes = snap.frr.ip_route or {}
        if "100.64.0.0/12" in routes or time.monotonic() > deadline:
            break
        time.sleep(0.1)
    assert snap.frr.available and snap.frr.running, snap.frr
    assert {"staticd", "zebra"} <= set(snap.frr.daemons)
    assert routes["100.64.0.0/12"][0]["protocol"] == "static"
    assert snap.frr.running_config is not None
    assert "ip route 100.64.0.0/12 CloudflareWARP" in snap.frr.running_config
    assert snap.frr.bgp_summary is None  # bgpd is not running: not asked
