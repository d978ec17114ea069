"""Snapshots for the fix tests: the broken connector, after each fix, with FRR."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import msgspec

from meshpath.fix import METRIC_MESHPATH, PROTO_MESHPATH
from meshpath.state import TABLE_MAIN, FrrState, NftState, Route, Snapshot
from meshpath.state.model import PROTO_FRR_STATIC
from tests.builders import broken_connector

DATA = Path(__file__).parent / "unit" / "data"


def data_text(name: str) -> str:
    return (DATA / name).read_text()


def nat_ruleset() -> dict[str, Any]:
    """What ``nft -j list ruleset`` printed after meshpath's nat fix (recorded)."""
    value: dict[str, Any] = json.loads(data_text("fix_nft_nat_applied.json"))
    return value


def meshpath_route(dst: str = "100.64.0.0/12", proto: int = PROTO_MESHPATH) -> Route:
    metric = METRIC_MESHPATH if proto == PROTO_MESHPATH else 20
    return Route(
        table=TABLE_MAIN, family=4, dst=dst, dev="CloudflareWARP", protocol=proto, metric=metric
    )


def with_routes(snap: Snapshot, *routes: Route) -> Snapshot:
    return msgspec.structs.replace(snap, routes=(*snap.routes, *routes))


def nat_fixed() -> Snapshot:
    snap = broken_connector(nft=NftState(available=True, ruleset=nat_ruleset()))
    return with_routes(snap, meshpath_route())


def with_frr(snap: Snapshot, running: str) -> Snapshot:
    frr = FrrState(
        available=True,
        running=True,
        daemons=("bgpd", "staticd", "zebra"),
        running_config=running,
    )
    return msgspec.structs.replace(snap, frr=frr)


def bgp_fixed() -> Snapshot:
    snap = with_frr(broken_connector(), data_text("fix_frr_bgp_applied.conf"))
    return with_routes(
        snap,
        meshpath_route("100.64.0.0/12", PROTO_FRR_STATIC),
        meshpath_route("100.96.0.0/12", PROTO_FRR_STATIC),
    )
