"""Re-record the connector snapshots the doctor's unit tests read (needs root).

    .venv/bin/python tests/data/snapshots/record.py [NAME ...]

Each fixture is the `conn` namespace of a lab scenario after its fix step, optionally
bent into a known-bad state (rp_filter strict, a Docker-like FORWARD DROP, a tunnel
without carrier, a BGP session held by RFC 8212, a Tailscale-like table 52). The lab is
torn down afterwards, also on failure.
"""

from __future__ import annotations

import dataclasses
import os
import signal
import sys
from collections.abc import Callable
from pathlib import Path

from meshpath.collect import collect_snapshot
from meshpath.lab import FIXES, Lab
from meshpath.lab import frr as lab_frr
from meshpath.lab.procs import wait_for
from meshpath.state import codec

HERE = Path(__file__).parent
Bend = Callable[[Lab], None]


def rp_strict(lab: Lab) -> None:
    # The kernel uses max(all, interface): strict needs both at most 1 and one of them 1.
    names = ("all", "default", "eth0", "CloudflareWARP")
    pairs = [f"net.ipv4.conf.{n}.rp_filter=1" for n in names]
    lab.exec("conn", ["sysctl", "-qw", *pairs], check=True)


def docker_drop(lab: Lab) -> None:
    lab.nft(
        "conn",
        "table ip filter { chain FORWARD { type filter hook forward priority 0; "
        "policy drop; }; chain DOCKER-USER { }; }\n",
    )


def no_carrier(lab: Lab) -> None:
    """warp-svc gone: the tun is still configured but nobody holds it (no carrier)."""
    os.kill(int(lab.tunnel_status()["pid"]), signal.SIGTERM)
    wait_for(
        "CloudflareWARP to vanish",
        lambda: not lab.exec("conn", ["ip", "link", "show", "CloudflareWARP"]).ok,
        5.0,
    )
    lab.ip_batch(
        "conn",
        "tuntap add dev CloudflareWARP mode tun\n"
        "addr add 100.96.0.5/32 dev CloudflareWARP\n"
        "link set CloudflareWARP mtu 1280 up\n",
    )
    lab.start_frr("conn", lab_frr.connector_config(canary=False))


def rfc8212(lab: Lab) -> None:
    """bgp on the connector without any route-map: FRR holds the session in 'Policy'."""
    cfg = lab_frr.connector_config(canary=False)
    bare = tuple(dataclasses.replace(n, policy_in=None, policy_out=None) for n in cfg.neighbors)
    lab.start_frr("conn", dataclasses.replace(cfg, neighbors=bare))
    wait_for("session up", lambda: lab.bgp_peer_state("router", "10.0.1.2") == "Established", 20.0)


def tailscale52(lab: Lab) -> None:
    lab.ip_batch(
        "conn",
        "tuntap add dev tailscale0 mode tun\n"
        "link set tailscale0 up\n"
        "route add 100.64.0.0/10 dev tailscale0 table 52\n"
        "rule add pref 5270 lookup 52\n",
    )


# name -> (scenario, apply its fix?, bend)
FIXTURES: dict[str, tuple[str, bool, Bend | None]] = {
    "broken": ("broken", False, None),
    "gateway": ("gateway", False, None),
    "route": ("route", True, None),
    "nat": ("nat", True, None),
    "nat-only": ("nat-only", True, None),
    "bgp": ("bgp", True, None),
    "rp-strict": ("broken", False, rp_strict),
    "docker-drop": ("route", True, docker_drop),
    "no-carrier": ("gateway", False, no_carrier),
    "rfc8212": ("gateway", False, rfc8212),
    "tailscale52": ("route", True, tailscale52),
    # The dual-stack lab (ULA LAN, the Worker's IPv6 source; broken's profile keeps IPv6
    # out of WARP's table): the same scenarios, recorded with both families.
    "broken-dual": ("broken", False, None),
    "route-dual": ("route", True, None),
}


def prepare(lab: Lab, name: str) -> None:
    """Bring ``lab`` into the state fixture ``name`` records (also used by live tests)."""
    scenario, fix, bend = FIXTURES[name]
    lab.setup(scenario)
    if fix:
        FIXES[scenario](lab)
    if bend is not None:
        bend(lab)


def record(lab: Lab, name: str) -> Path:
    prepare(lab, name)
    snap = collect_snapshot(netns=lab.ns("conn"))
    # The dual-stack ones are recorded with today's schema; the directory above holds the
    # schema-1 fixtures the codec must keep loading (tests/unit/test_warp_collect.py).
    path = (HERE / "dual" if name.endswith("-dual") else HERE) / f"{name}.json"
    codec.save(snap, path)
    return path


def main(names: list[str]) -> int:
    with Lab.create() as lab:
        for name in names or list(FIXTURES):
            print(f"recorded {record(lab, name)}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
