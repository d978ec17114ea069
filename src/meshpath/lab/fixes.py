"""The fix steps the lab applies by hand (the field report's fixes, scoped properly).

Each step is a plain function ``(lab) -> None`` registered in :data:`FIXES` by name. They
are deliberately separate and replaceable: the ``fix`` issue swaps them for
``meshpath fix --mode ... --apply`` run inside the connector namespace, and the scenarios'
expectations stay the same.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Final

from meshpath.lab import frr
from meshpath.lab.procs import wait_for
from meshpath.lab.topology import LAN_ADDR, LAN_IF, SOURCE_RANGE, TUN_CONN

if TYPE_CHECKING:
    from meshpath.lab.core import Lab

FixStep = Callable[["Lab"], None]

NAT_TABLE: Final = "lab-nat"


def nat_ruleset() -> str:
    """Masquerade the Cloudflare source range leaving the LAN interface, nothing broader."""
    return (
        f"table inet {NAT_TABLE} {{ chain postrouting {{ "
        "type nat hook postrouting priority srcnat; policy accept; "
        f'oifname "{LAN_IF}" ip saddr {SOURCE_RANGE} masquerade; }}; }}\n'
    )


def tunnel_route_batch() -> str:
    return f"route add {SOURCE_RANGE} dev {TUN_CONN}\n"


def fix_nat_only(lab: Lab) -> None:
    """The field report's temporary fix as written: masquerade, no route."""
    lab.nft("conn", nat_ruleset())


def fix_route(lab: Lab) -> None:
    """A kernel route for the source range through the tunnel (no NAT)."""
    lab.ip_batch("conn", tunnel_route_batch())


def fix_nat(lab: Lab) -> None:
    """Masquerade plus the tunnel route: what actually makes NAT work on a plain kernel."""
    fix_nat_only(lab)
    fix_route(lab)


def fix_bgp(lab: Lab, timeout: float = 20.0) -> None:
    """FRR on the connector owns the two /12s and advertises exactly them to the router.

    Returns once the session is Established and the router's kernel holds both ranges.
    """
    lab.start_frr("conn", frr.connector_config())
    want = {SOURCE_RANGE, "100.96.0.0/12"}
    peer = LAN_ADDR["conn"]
    wait_for(
        "BGP session router<->conn",
        lambda: lab.bgp_peer_state("router", peer) == "Established",
        timeout,
    )
    wait_for(
        "BGP routes in the router's kernel",
        lambda: want <= set(lab.bgp_routes("router")),
        timeout,
    )


FIXES: Final[Mapping[str, FixStep]] = {
    "nat": fix_nat,
    "nat-only": fix_nat_only,
    "route": fix_route,
    "bgp": fix_bgp,
}
