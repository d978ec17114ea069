"""#16 item 4 over a real BGP session: meshpath's bgp config with the IPv6 family brings the
v6 source range into the LAN router's kernel, next to the v4 range, on a v4 session or a v6
one; meshpath's own wait for the session (apply/frr.py ``Frr.wait``) sees both families;
the rollback withdraws both.

Two namespaces of this test's own (tests/frr_host.py), linked by a veth created inside
them: the connector (AS 65001, ``CloudflareWARP`` a veth with carrier, so staticd's routes
via it are active) and the LAN router (AS 65000). Nothing touches the root namespace.
"""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator

import pytest

from meshpath.fix import frrfit
from meshpath.lab.procs import wait_for
from meshpath.render import frr
from meshpath.runner import netns_argv
from meshpath.state.frr import learned_from
from tests.conftest import ROOT_OK, ROOT_REASON, needs_root
from tests.frr_host import FrrHost, frr_host

pytestmark = [needs_root, pytest.mark.root]
V4, V6 = "100.64.0.0/12", "2606:4700:cf1:5000::/64"
CONN = {4: "10.0.1.2", 6: "fd00:1::2"}
ROUTER = {4: "10.0.1.1", 6: "fd00:1::1"}
EMPTY = "frr version 8.4.4\n!\nend\n"


def _ip(ns: str, *args: str) -> None:
    subprocess.run(["ip", "-n", ns, *args], check=True, capture_output=True)  # noqa: S603


def _wire(conn: FrrHost, router: FrrHost) -> None:
    _ip(conn.ns, "link", "add", "eth0", "type", "veth", "peer", "name", "eth0", "netns", router.ns)
    _ip(conn.ns, "link", "add", "CloudflareWARP", "type", "veth", "peer", "name", "warp-end")
    for ns, addrs in ((conn.ns, CONN), (router.ns, ROUTER)):
        _ip(ns, "addr", "add", f"{addrs[4]}/24", "dev", "eth0")
        _ip(ns, "addr", "add", f"{addrs[6]}/64", "dev", "eth0", "nodad")
        _ip(ns, "link", "set", "eth0", "up")
    for dev in ("CloudflareWARP", "warp-end"):
        _ip(conn.ns, "link", "set", dev, "up")


@pytest.fixture()
def pair() -> Iterator[tuple[FrrHost, FrrHost]]:
    if not ROOT_OK:
        pytest.skip(ROOT_REASON)
    with frr_host() as conn, frr_host() as router:
        _wire(conn, router)
        yield conn, router


def router_config(family: int) -> str:
    peer = CONN[family]
    return (
        "frr version 8.4.4\n!\nrouter bgp 65000\n no bgp ebgp-requires-policy\n"
        f" neighbor {peer} remote-as 65001\n !\n address-family ipv6 unicast\n"
        f"  neighbor {peer} activate\n exit-address-family\nexit\n!\nend\n"
    )


def kernel_route(host: FrrHost, prefix: str) -> str:
    family = "-6" if ":" in prefix else "-4"
    argv = netns_argv(host.ns, ["ip", family, "route", "show", prefix])
    return subprocess.run(argv, check=True, capture_output=True, text=True).stdout.strip()  # noqa: S603


def learned(router: FrrHost, peer: str) -> frozenset[str]:
    got: frozenset[str] = frozenset()
    for family in ("ipv4", "ipv6"):
        table = json.loads(router.frr.runner.run(
            ["vtysh", "-N", router.ns, "-c", f"show bgp {family} unicast json"]
        ).stdout)  # fmt: skip
        got |= learned_from(table, peer)
    return got


@pytest.mark.parametrize("family", [4, 6], ids=["v4 session", "v6 session"])
def test_both_ranges_reach_the_routers_kernel_and_go_again_on_rollback(
    pair: tuple[FrrHost, FrrHost], family: int
) -> None:
    conn, router = pair
    router.load(router_config(family))
    intent = frr.FrrIntent(
        tunnel="CloudflareWARP", statics=(V4, V6), advertise=(V4, V6), asn=65001,
        peer=ROUTER[family], peer_asn="65000", bgp_created=True, owned_statics=(V4, V6),
        rmap_delay=True,
    )  # fmt: skip
    applied = conn.load(frr.merge_text(conn.running(), intent))
    assert frrfit.is_applied(applied, intent)
    # meshpath's own wait: Established, and exactly both ranges advertised
    said = conn.frr.wait(ROUTER[family], (V4, V6), timeout=30)
    assert "Established" in said
    both = {V4, V6}
    wait_for(
        "both ranges in the router's BGP table", lambda: learned(router, CONN[family]) == both, 15
    )
    # "" is no route yet: None keeps wait_for polling
    v6 = wait_for(
        "the v6 range in the router's kernel", lambda: kernel_route(router, V6) or None, 15
    )
    assert "proto bgp" in v6 and "dev eth0" in v6
    assert "proto bgp" in wait_for("the v4 range", lambda: kernel_route(router, V4) or None, 15)
    # rollback: meshpath's lines stripped, both ranges withdrawn
    conn.load(frr.strip_text(applied, intent))
    wait_for("withdrawn", lambda: not kernel_route(router, V6) and not kernel_route(router, V4), 15)
    assert "MESHPATH" not in conn.running()
