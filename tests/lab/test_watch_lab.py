"""The keeper in the lab: it puts back meshpath's route and nft table and nothing else —
not a user's route, not WARP's route, rules or nft table."""

from __future__ import annotations

import json
import time

import pytest

from meshpath.lab import FIXES, Lab
from meshpath.lab.drift import ROUTE, route_present
from meshpath.lab.procs import frr_pathspace
from meshpath.lab.warp import WARP_TABLE
from meshpath.lab.watch import Watch
from tests.conftest import needs_root

pytestmark = [needs_root, pytest.mark.lab, pytest.mark.root]

USER_ROUTE = ["192.168.77.0/24", "via", "10.0.1.1", "dev", "eth0"]
WARP_ROUTE = ["100.96.0.0/12", "dev", "CloudflareWARP", "table", str(WARP_TABLE)]


def shown(lab: Lab, *argv: str) -> str:
    return lab.exec("conn", list(argv), check=True).stdout


def has_route(lab: Lab, spec: list[str]) -> bool:
    table = spec[spec.index("table") + 1] if "table" in spec else "main"
    out = shown(lab, "ip", "-j", "route", "show", spec[0], "table", table)
    return bool(json.loads(out or "[]"))


def settle(watch: Watch, within: float = 15.0) -> None:
    """Let any evaluation (and heal) the last change triggered finish: the evaluation count
    holds still for a second. On a loaded machine one evaluation can take over a second, so
    this waits for quiet instead of assuming it after a fixed sleep."""
    deadline = time.monotonic() + within
    count = watch.value("meshpath_evaluations_total")
    while time.monotonic() < deadline:
        time.sleep(1.0)
        now = watch.value("meshpath_evaluations_total")
        if now == count:
            return
        count = now
    raise AssertionError(f"meshpath watch kept evaluating for {within} s after the change")


def test_only_meshpaths_route_comes_back(lab: Lab) -> None:
    lab.setup("route")
    FIXES["route"](lab)
    lab.exec("conn", ["ip", "route", "add", *USER_ROUTE], check=True)
    rules = shown(lab, "ip", "rule", "show")
    warp_nft = shown(lab, "nft", "list", "table", "inet", "cloudflare-warp")
    watch = Watch.start(lab, heal=True, name="watch-owned")
    try:
        start = time.monotonic()
        for spec in (USER_ROUTE, WARP_ROUTE):
            lab.exec("conn", ["ip", "route", "del", *spec], check=True)
        lab.exec("conn", list(ROUTE.argv("del")), check=True)
        while not route_present(lab):
            assert time.monotonic() - start < 2.0, "meshpath's route did not come back"
            time.sleep(0.01)
        settle(watch)
        assert not has_route(lab, USER_ROUTE), "the keeper re-added a user's route"
        assert not has_route(lab, WARP_ROUTE), "the keeper re-added WARP's route"
        assert shown(lab, "ip", "rule", "show") == rules
        assert shown(lab, "nft", "list", "table", "inet", "cloudflare-warp") == warp_nft
        assert watch.value("meshpath_heals_total", kind="route") == 1.0
        assert watch.value("meshpath_heals_total", kind="nft") == 0.0
        heals = watch.events("heal")
        assert len(heals) == 1 and "100.64.0.0/12" in heals[0]["what"]
    finally:
        assert watch.stop() < 1.0


def test_only_meshpaths_nft_table_comes_back(lab: Lab) -> None:
    lab.setup("nat")
    FIXES["nat"](lab)
    before = shown(lab, "nft", "list", "table", "inet", "meshpath")
    watch = Watch.start(lab, heal=True, name="watch-nft")
    try:
        assert watch.value("meshpath_nat_present") == 1.0
        start = time.monotonic()
        for table in ("cloudflare-warp", "meshpath"):
            lab.exec("conn", ["nft", "delete", "table", "inet", table], check=True)
        took = watch.wait_value("meshpath_heals_total", 1.0, start, 2.0, kind="nft")
        assert took is not None and took < 2.0
        settle(watch)
        tables = shown(lab, "nft", "list", "tables")
        assert "inet meshpath" in tables and "cloudflare-warp" not in tables
        assert shown(lab, "nft", "list", "table", "inet", "meshpath") == before
        assert watch.value("meshpath_nat_present") == 1.0
        assert watch.value("meshpath_heals_total", kind="route") == 0.0
    finally:
        assert watch.stop() < 1.0


def test_without_an_applied_fix_the_keeper_only_watches(lab: Lab) -> None:
    lab.setup("broken")
    watch = Watch.start(lab, heal=True, name="watch-idle")
    try:
        idle = watch.events("keeper")
        assert idle and idle[0]["status"] == "idle" and "watching only" in idle[0]["reason"]
        lab.exec("conn", ["ip", "route", "del", *WARP_ROUTE], check=True)
        settle(watch)
        assert not has_route(lab, WARP_ROUTE)
        assert watch.value("meshpath_path_ok") == 0.0
        assert watch.value("meshpath_heals_total", kind="route") == 0.0
    finally:
        watch.stop()


def test_a_bgp_session_going_down_is_seen_by_the_frr_poll(lab: Lab) -> None:
    lab.setup("bgp")
    FIXES["bgp"](lab)
    watch = Watch.start(lab, False, "watch-bgp", "--interval", "0.5")
    try:
        peer = {"peer": "10.0.1.1"}
        assert watch.value("meshpath_bgp_session_established", **peer) == 1.0
        assert watch.value("meshpath_bgp_advertised_prefixes", **peer) == 2.0
        router = str(frr_pathspace(lab.ns("router")))
        argv = ["vtysh", "--vty_socket", router, "-c", "configure terminal"]
        argv += ["-c", "router bgp 65000", "-c", "neighbor 10.0.1.2 shutdown"]
        start = time.monotonic()
        lab.runner.run(argv)
        took = watch.wait_value("meshpath_bgp_session_established", 0.0, start, 5.0, **peer)
        assert took is not None and took < 3.0
        assert (watch.value("meshpath_changes_total", source="frr") or 0) >= 1
        assert watch.value("meshpath_path_ok") == 0.0  # the LAN lost its return route
    finally:
        watch.stop()
