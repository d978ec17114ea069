"""Two connectors: HA replicas of one Mesh node in the lab (I/O edge on :class:`Lab`).

What Cloudflare documents (Mesh "High availability" page): replicas of a node share its
identity and advertise the same routes; **one replica is active at a time**, the others are
passive standbys; when the active one disconnects, Cloudflare promotes a standby. What
the lab assumes beyond that (not documented): the first replica (``conn``) is active
whenever its session is up (it takes the role back when it returns); a flow stays on the
replica it started through, so a reply that comes back through the *other* replica's
session is dropped (the edge emulator pins each connection to the tunnel its SYN left by,
with a conntrack mark). The LAN therefore has to send replies to the active replica: the
bgp fix with ``--role primary`` on ``conn`` and ``--role standby`` (AS path prepended) on
``connb``.

    edge: cfedge  ══ tunnel ══ conn  CloudflareWARP 100.96.0.5   eth0 10.0.1.2 (primary)
          cfedgeb ══ tunnel ══ connb CloudflareWARP 100.96.0.6   eth0 10.0.1.4 (standby)
    edge routes the LAN via cfedge (metric 0), else via cfedgeb (metric 100): the active
    replica is the one whose session is up, conn first.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Final

from meshpath.collect.iproute import ip_json
from meshpath.lab import frr, topology
from meshpath.lab.fixes import LabFixError, fix_root
from meshpath.lab.procs import LabTimeout, wait_for
from meshpath.lab.scenarios import Check
from meshpath.lab.topology import (
    ASN,
    DEVICE_RANGE,
    LAN_ADDR,
    LAN_PREFIX,
    SOURCE_RANGE,
    TUN_CONN,
    TUN_EDGE,
    WORKER_SOURCE,
)
from meshpath.state import frr as frr_state

if TYPE_CHECKING:
    from meshpath.lab.core import Lab

TUN_EDGE_B: Final = "cfedgeb"
CONNB_DEVICE_IP: Final = "100.96.0.6"
STANDBY_METRIC: Final = 100
PIN_TABLE: Final = "mesh-replicas"
# The edge device of each replica's session, and its conntrack mark.
EDGE_DEVS: Final = {"conn": (TUN_EDGE, 1), "connb": (TUN_EDGE_B, 2)}
ROLES: Final = {"conn": "primary", "connb": "standby"}
RANGES: Final = frozenset({SOURCE_RANGE, DEVICE_RANGE})


def pin_ruleset() -> str:
    """nft in edge: a connection is marked with the session its first packet left by, and a
    packet of it arriving through another session is dropped (the lab's reading of 'one
    replica is active': the standby's session does not carry the active one's flows)."""
    marks = "; ".join(
        f'ct state new oifname "{dev}" ct mark set {mark}' for dev, mark in EDGE_DEVS.values()
    )
    drops = "; ".join(
        f'iifname "{dev}" ct mark != {mark} ct mark != 0 counter drop'
        for dev, mark in EDGE_DEVS.values()
    )
    return (
        f"table inet {PIN_TABLE} {{ "
        f"chain out {{ type filter hook output priority 0; policy accept; {marks}; }}; "
        f"chain in {{ type filter hook input priority 0; policy accept; {drops}; }}; }}\n"
    )


def edge_routes(node: str, verb: str = "replace") -> str:
    """`ip -batch` text in edge: the LAN and the device range through ``node``'s session."""
    dev, _mark = EDGE_DEVS[node]
    metric = "" if node == "conn" else f" metric {STANDBY_METRIC}"
    return "".join(
        f"route {verb} {dst} dev {dev} src {WORKER_SOURCE}{metric}\n"
        for dst in (LAN_PREFIX, DEVICE_RANGE)
    )


def tunnel_argv(lab: Lab, node: str) -> list[str]:
    dev, _mark = EDGE_DEVS[node]
    argv = [sys.executable, "-m", "meshpath.lab.tunnel", "--edge-ns", lab.ns("edge")]
    argv += ["--conn-ns", lab.ns(node), "--edge-dev", dev, "--status", str(status_file(lab, node))]
    return argv


def status_file(lab: Lab, node: str) -> Path:
    return lab.run_dir / ("tunnel.json" if node == "conn" else f"tunnel-{node}.json")


def start_session(lab: Lab, node: str) -> None:
    """(Re)open ``node``'s WARP session: the tunnel emulator, the device address (warpd
    does it on conn), and the edge's routes through it."""
    path = status_file(lab, node)
    path.unlink(missing_ok=True)
    name = "tunnel" if node == "conn" else f"tunnel-{node}"
    child = lab.spawn(name, "edge", tunnel_argv(lab, node))
    wait_for(f"tunnel to {node}", lambda: child.poll() is None and path.exists(), 10.0)
    wait_for(f"carrier in {node}", lambda: _lower_up(lab, node, TUN_CONN), 5.0)
    if node == "connb":
        lab.ip_batch("connb", f"addr replace {CONNB_DEVICE_IP}/32 dev {TUN_CONN}\n")
    lab.ip_batch("edge", edge_routes(node))


def stop_session(lab: Lab, node: str) -> None:
    """The replica disconnects: its tunnel emulator ends, both tuns vanish (the edge's
    routes through it and the connector's routes via CloudflareWARP go with them)."""
    pid = int(json.loads(status_file(lab, node).read_text())["pid"])
    os.kill(pid, signal.SIGTERM)
    wait_for(f"{node}'s tunnel gone", lambda: not _has_link(lab, node, TUN_CONN), 5.0)


def _has_link(lab: Lab, node: str, dev: str) -> bool:
    return lab.exec(node, ["ip", "link", "show", "dev", dev]).ok


def _lower_up(lab: Lab, node: str, dev: str) -> bool:
    done = lab.exec(node, ["ip", "-j", "link", "show", "dev", dev])
    return done.ok and "LOWER_UP" in ip_json(done.stdout)[0].get("flags", [])


def start_replica(lab: Lab) -> None:
    """connb's session and FRR, the Worker source on edge's loopback (so it outlives a
    session), and the edge's flow pinning."""
    lab.ip_batch("edge", f"addr add {WORKER_SOURCE}/32 dev lo\n")
    start_session(lab, "connb")
    lab.nft("edge", pin_ruleset())
    for node in topology.CONNECTORS:
        lab.start_frr(node, connector_base(node))


def connector_base(node: str) -> frr.FrrConfig:
    """A connector's FRR before meshpath: zebra, staticd, bgpd and bfdd running, no BGP yet
    (bfdd so that ``fix --bfd`` can bring up a session with the router)."""
    return frr.FrrConfig(hostname=node, router_id=LAN_ADDR[node], bfdd=True)


def bgp_args(node: str, role: str | None, bfd: bool = False) -> list[str]:
    args = ["--peer", LAN_ADDR["router"], "--asn", str(ASN["conn"])]
    args += ["--peer-asn", str(ASN["router"]), "--also-device-range", "--bgp-timeout", "20"]
    if role is not None:
        args += ["--role", role]
    return [*args, "--bfd"] if bfd else args


def meshpath_on(
    lab: Lab, node: str, args: Sequence[str], timeout: float = 90.0
) -> subprocess.CompletedProcess[str]:
    """``meshpath ARGS --netns <node> --root <run dir>/<node>-root`` (conn: the lab's usual
    root, so ``meshpath fix --rollback`` there finds the same journal)."""
    root = fix_root(lab) if node == "conn" else lab.run_dir / f"{node}-root"
    argv = [sys.executable, "-m", "meshpath", *args, "--netns", lab.ns(node), "--root", str(root)]
    return subprocess.run(  # noqa: S603 - argv list
        argv, capture_output=True, text=True, timeout=timeout, env=lab.meshpath_env(), check=False
    )


def fleet_facts(lab: Lab, node: str) -> dict[str, object]:
    """``meshpath fleet facts --json`` in ``node``, named after the node."""
    argv = [sys.executable, "-m", "meshpath", "fleet", "facts", "--json", "--name", node]
    argv += ["--netns", lab.ns(node)]
    done = subprocess.run(  # noqa: S603 - argv list
        argv, capture_output=True, text=True, timeout=60, env=lab.meshpath_env(), check=False
    )
    if done.returncode != 0:
        raise LabFixError(f"lab: meshpath fleet facts in {node} exited {done.returncode}: "
                          f"{done.stderr.strip()[-300:]}")  # fmt: skip
    facts: dict[str, object] = json.loads(done.stdout)
    return facts


def fix_replica(lab: Lab, node: str, role: str | None, bfd: bool = False) -> None:
    args = ["fix", "--mode", "bgp", "--apply", *bgp_args(node, role, bfd)]
    done = meshpath_on(lab, node, args)
    if done.returncode != 0:
        out = (done.stdout + done.stderr).strip().splitlines()
        raise LabFixError(f"lab: meshpath fix on {node} exited {done.returncode}: {out[-6:]}")


def fix_ha(lab: Lab) -> None:
    """The ``ha`` fix step: connb joins; conn fixed as primary, connb as standby; returns
    once the router has both replicas' paths and routes the ranges via the primary."""
    start_replica(lab)
    for node in topology.CONNECTORS:
        fix_replica(lab, node, ROLES[node])
    wait_router(lab, LAN_ADDR["conn"])


def fix_ha_equal(lab: Lab) -> None:
    """Both replicas fixed without a role, the standby first: its path is the router's
    older one, and FRR keeps the older of two equal eBGP paths."""
    start_replica(lab)
    fix_replica(lab, "connb", None)
    wait_router(lab, LAN_ADDR["connb"])
    fix_replica(lab, "conn", None)
    wait_for("both paths at the router", lambda: len(router_paths(lab)) == 2, 20.0)


def wait_router(lab: Lab, gateway: str, timeout: float = 20.0) -> float:
    """Until the router's kernel routes both ranges via ``gateway``; seconds taken."""
    start = time.monotonic()
    wait_for(f"router via {gateway}", lambda: router_via(lab) == gateway, timeout)
    return time.monotonic() - start


def router_via(lab: Lab) -> str | None:
    """The gateway of the router's BGP route for both ranges (None: none, or they differ)."""
    routes = lab.bgp_routes("router")
    gateways = {routes.get(r) for r in RANGES}
    return gateways.pop() if len(gateways) == 1 else None


def router_paths(lab: Lab) -> dict[str, int]:
    """The router's BGP paths for the source range: peer -> AS path length."""
    return frr_state.path_lengths(
        lab.vtysh_json("router", f"show bgp ipv4 unicast {SOURCE_RANGE} json")
    )


# -- the drill: failover, then the primary back -----------------------------------------
def drill(lab: Lab) -> tuple[Check, ...]:
    """Both paths at the router, the standby's longer; the primary's session killed: the
    Worker's calls move to the standby; the session back: they move back."""
    paths = router_paths(lab)
    # MESHPATH-OUT prepends on redistribution and again towards the peer: the router sees
    # the standby's path as 1 + 2 x 3 ASes long, the primary's as 1.
    a, b = paths.get(LAN_ADDR["conn"]), paths.get(LAN_ADDR["connb"])
    checks = [
        Check("replica paths", a is not None and b is not None and b > a,
              f"router's paths for {SOURCE_RANGE}: {paths}; want connb's longer"),
    ]  # fmt: skip
    stop_session(lab, "conn")
    seconds = wait_router(lab, LAN_ADDR["connb"])
    why = calls_via(lab, "connb")
    checks.append(
        Check("failover to connb", why is None, why or f"router via connb in {seconds:.2f}s")
    )
    start_session(lab, "conn")
    seconds = wait_router(lab, LAN_ADDR["conn"])
    why = calls_via(lab, "conn")
    checks.append(
        Check("primary back", why is None, why or f"router via conn again in {seconds:.2f}s")
    )
    lab.clear_service_log()  # the scenario's own call is judged on its own
    return tuple(checks)


def calls_via(lab: Lab, node: str) -> str | None:
    """Why a Worker call did not get 200 with the real source through ``node``'s tunnel;
    None when it did."""
    before = carried(lab, node)
    result = lab.worker_call()
    if result.status != 200 or result.seen_source != WORKER_SOURCE:
        return f"the call got {result.status}, the service saw {result.seen_source}"
    # The tunnel emulator writes its counters at most every 100 ms, after the packets it
    # relayed: the call can return before the file shows them (a race CI once lost).
    try:
        wait_for(f"{node}'s tunnel counters", lambda: carried(lab, node) > before, 2.0)
    except LabTimeout:
        return f"{node}'s tunnel did not carry the call"
    return None


def carried(lab: Lab, node: str) -> int:
    try:
        data = json.loads(status_file(lab, node).read_text())
    except (OSError, ValueError):
        return 0
    return int(data.get("edge_to_conn", 0))
