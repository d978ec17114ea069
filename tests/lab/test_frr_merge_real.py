"""Issue #12, FRR items 7-11 against real FRR: the bgp fix's merge on FRR's own configs.

A namespace with zebra, staticd and bgpd per config (tests/frr_host.py). Each config is
loaded (FRR normalises it), meshpath's merge is planned on the running config
it printed, ``vtysh -C`` and ``frr-reload.py --test`` pass on the desired text, it is
reloaded, meshpath's lines run and every user line is kept, and the rollback gives the
running config back byte for byte. The configs are FRR's topotests (tests/data/real/frr)
and the issue's snapshots; bench/frr_topotests.py runs all 1,410 of them.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import ROOT_OK, ROOT_REASON, needs_root
from tests.frr_host import PEER, FrrHost, frr_host, round_trip
from tests.unit.test_frr_merge_real import USER_MAP

pytestmark = [needs_root, pytest.mark.root]
FRR_DATA = Path(__file__).resolve().parents[1] / "data" / "real" / "frr"


def snapshot_config(name: str) -> str:
    data = json.loads((FRR_DATA / f"{name}.json").read_text())
    return str(data["frr"]["running_config"])


# (name, config text, peer): a new peer (meshpath's own neighbour), or the user's own.
CASES = [
    *[(p.name, p.read_text(), PEER) for p in sorted((FRR_DATA / "topotests").glob("*.conf"))],
    ("bgp_evpn_vxlan_topo1 (its own neighbour)",
     (FRR_DATA / "topotests/bgp_evpn_vxlan_topo1_PE1_bgpd.conf").read_text(), "10.30.30.30"),
    ("snapshot vrf (exit-vrf)", snapshot_config("vrf"), PEER),
    ("snapshot redist (redistribute static)", snapshot_config("redist"), PEER),
    ("snapshot nodefault (a new peer to activate)", snapshot_config("nodefault"), PEER),
    ("redistribute static route-map", USER_MAP, PEER),
]  # fmt: skip


@pytest.fixture()
def host() -> Iterator[FrrHost]:
    """Fresh daemons per config: what one config leaves (interfaces FRR cannot remove for
    links that do not exist) must not decide whether the next one loads."""
    if not ROOT_OK:
        pytest.skip(ROOT_REASON)
    with frr_host() as made:
        yield made


@pytest.mark.parametrize(("name", "text", "peer"), CASES, ids=[c[0] for c in CASES])
def test_merge_checks_applies_and_rolls_back_exactly(
    host: FrrHost, name: str, text: str, peer: str
) -> None:
    result = round_trip(host, name, text, peer)
    assert result.loaded, f"FRR did not take the input itself: {result.problem}"
    assert result.problem is None, result.problem


def test_a_peer_with_the_users_route_map_is_refused_before_anything_changes(
    host: FrrHost,
) -> None:
    text = (FRR_DATA / "topotests/bgp_suppress_fib_r1_bgpd.conf").read_text()
    result = round_trip(host, "bgp_suppress_fib (its own neighbour)", text, "10.0.0.2")
    assert result.loaded
    assert result.problem is not None
    assert "already has 'route-map rmap out'" in result.problem
    assert "MESHPATH" not in host.running()


# IPv6 (#16 item 4): the v6 range's ``ipv6 route``, its own prefix-list and the ipv6 unicast
# family on the same session (or a v6 session), on configs with and without a v6 family.
DUAL = ("100.64.0.0/12", "2606:4700:cf1:5000::/64")
USERS_V6 = """frr version 8.4.4
hostname conn
!
router bgp 65001
 neighbor 10.0.1.1 remote-as 65000
 !
 address-family ipv6 unicast
  network fd00:9::/64
  neighbor 10.0.1.1 activate
 exit-address-family
exit
!
end
"""
V6_CASES = [
    ("no bgp yet, v4 peer", "frr version 8.4.4\nhostname conn\n!\nend\n", PEER),
    ("no bgp yet, v6 peer", "frr version 8.4.4\nhostname conn\n!\nend\n", "fd00:1::1"),
    ("the user's ipv6 family, the user's neighbour", USERS_V6, "10.0.1.1"),
    ("the user's ipv6 family, a new peer", USERS_V6, PEER),
    ("snapshot nodefault (a new peer to activate)", snapshot_config("nodefault"), PEER),
    ("snapshot redist (redistribute static)", snapshot_config("redist"), PEER),
]


@pytest.mark.parametrize(("name", "text", "peer"), V6_CASES, ids=[c[0] for c in V6_CASES])
def test_v6_merge_checks_applies_and_rolls_back_exactly(
    host: FrrHost, name: str, text: str, peer: str
) -> None:
    result = round_trip(host, name, text, peer, statics=DUAL)
    assert result.loaded, f"FRR did not take the input itself: {result.problem}"
    assert result.problem is None, result.problem
