"""#16 item 4 on a real kernel and nft: the nat (--nat6) and route fixes of a dual-stack
connector, applied with the CLI in a namespace of this test's own, checked by the apply's
own post-verify and by the kernel, then rolled back to exactly nothing.

The namespace: eth0 (10.0.1.2/24 and fd00:1::2/64, a veth to a second namespace, default
route via 10.0.1.1) and ``CloudflareWARP`` (a veth with carrier, 100.96.0.5/32 and the v6
device address). Files go under ``tmp_path`` (``--root``); nothing touches the root
namespace.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import needs_root, sh

pytestmark = [needs_root, pytest.mark.root]
V6 = "2606:4700:cf1:5000::/64"


def connector(make_netns: Callable[[], str]) -> str:
    ns, peer = make_netns(), make_netns()
    sh(["ip", "link", "add", "eth0", "type", "veth", "peer", "name", "eth0", "netns", peer], ns)
    sh(["ip", "link", "add", "CloudflareWARP", "type", "veth", "peer", "name", "warp-end"], ns)
    for argv in (
        ["ip", "addr", "add", "10.0.1.2/24", "dev", "eth0"],
        ["ip", "addr", "add", "fd00:1::2/64", "dev", "eth0", "nodad"],
        ["ip", "addr", "add", "100.96.0.5/32", "dev", "CloudflareWARP"],
        ["ip", "addr", "add", "2606:4700:cf1:1000::5/128", "dev", "CloudflareWARP", "nodad"],
        ["ip", "link", "set", "eth0", "up"],
        ["ip", "link", "set", "warp-end", "up"],
        ["ip", "link", "set", "CloudflareWARP", "up"],
        ["ip", "route", "add", "default", "via", "10.0.1.1"],
    ):
        sh(argv, ns)
    sh(["ip", "link", "set", "eth0", "up"], peer)
    return ns


def mp(ns: str, root: Path, *args: str) -> tuple[int, Any, str]:
    argv = [sys.executable, "-m", "meshpath", "--json", *args, "--netns", ns, "--root", str(root)]
    done = subprocess.run(argv, capture_output=True, text=True, check=False)  # noqa: S603
    return done.returncode, json.loads(done.stdout) if done.stdout.strip() else None, done.stderr


def routes6(ns: str) -> str:
    return sh(["ip", "-6", "route", "show", V6], ns).strip()


def test_nat6_masquerades_and_routes_both_families_then_rolls_back(
    make_netns: Callable[[], str], tmp_path: Path
) -> None:
    ns = connector(make_netns)
    code, data, err = mp(ns, tmp_path, "fix", "--mode", "nat", "--nat6", "--apply")
    assert code == 0 and data["result"]["status"] == "applied", (data, err)
    table = sh(["nft", "list", "table", "inet", "meshpath"], ns)
    assert 'oifname "eth0" ip saddr 100.64.0.0/12 masquerade' in table
    assert f'oifname "eth0" ip6 saddr {V6} masquerade' in table
    assert "proto 232" in routes6(ns) and "dev CloudflareWARP" in routes6(ns)
    code, data, err = mp(ns, tmp_path, "verify")
    assert code == 0, (data, err)
    assert {c["name"] for c in data["checks"]} >= {f"route {V6}", "meshpath NAT"}
    code, data, err = mp(ns, tmp_path, "fix", "--rollback")
    assert code == 0, (data, err)
    assert routes6(ns) == ""
    assert "meshpath" not in sh(["nft", "list", "tables"], ns)


def test_nat_without_nat6_leaves_ipv6_unmasqueraded_but_routed(
    make_netns: Callable[[], str], tmp_path: Path
) -> None:
    ns = connector(make_netns)
    code, data, err = mp(ns, tmp_path, "fix", "--mode", "nat", "--apply")
    assert code == 0, (data, err)
    assert "ip6 saddr" not in sh(["nft", "list", "table", "inet", "meshpath"], ns)
    assert "proto 232" in routes6(ns)
    assert mp(ns, tmp_path, "fix", "--rollback")[0] == 0


def test_route_mode_persists_the_v6_route_and_rolls_back(
    make_netns: Callable[[], str], tmp_path: Path
) -> None:
    ns = connector(make_netns)
    code, data, err = mp(ns, tmp_path, "fix", "--mode", "route", "--apply")
    assert code == 0 and data["result"]["status"] == "applied", (data, err)
    assert "proto 232" in routes6(ns)
    unit = next((tmp_path / "etc/systemd/system").glob("meshpath-routes*.service")).read_text()
    assert f"ip -6 route replace {V6} dev CloudflareWARP proto 232" in unit
    code, data, err = mp(ns, tmp_path, "fix", "--mode", "route")
    assert code == 0 and data["plan"]["steps"] == [], data  # nothing left to do
    assert mp(ns, tmp_path, "fix", "--rollback")[0] == 0
    assert routes6(ns) == ""
    assert not list((tmp_path / "etc/systemd/system").glob("meshpath-routes*"))
