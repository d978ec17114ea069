"""The meshpath lab: Worker -> Mesh -> WARP Connector -> LAN in network namespaces.

Everything is real (kernel forwarding, nftables, FRR, tcpdump, and Cloudflare's Workers
runtime workerd running the Worker); only Cloudflare's network is emulated by small
processes: :mod:`~meshpath.lab.tunnel` (the WARP session, a tun in each of edge and conn),
:mod:`~meshpath.lab.meshedge` (Mesh's edge behind the Worker's ``env.MESH`` binding, see
:mod:`meshpath.lab.worker`) and :mod:`~meshpath.lab.service` (the private HTTP service that
logs client addresses).
Topology in :mod:`~meshpath.lab.topology`; scenarios in :mod:`~meshpath.lab.scenarios`.

Public API (for tests and other commands)::

    from meshpath.lab import Lab, run_scenario

    with Lab.create(instance=None) as lab:      # root + tools checked; torn down on exit
        #   (runner=...: the Runner every command and process goes through)
        lab.connect_timeout = 2.5               # Mesh's SYN-ACK wait (set before setup)
        lab.setup("broken")                     # any scenario name (or a Scenario); rebuilds
        lab.ns("conn")                          # -> "mplab-<id>-conn"
        lab.exec("conn", ["ip", "route"])       # -> runner.Completed (check=False)
        lab.user_worker = user_app(Path("dir"))  # also run a user's Worker (before setup)
        r = lab.worker_call("/mesh/")           # -> WorkerResult(status, body, seen_source)
        lab.worker_call("/", user=True)         # the user's Worker (on 8788)
        lab.worker_log(user=False)              # workerd's log: ["handler failed: Error: ..."]
        cap = lab.capture("conn", lab.worker_call)   # -> CaptureResult(packets, text, pcap, value)
        #   packets: Sightings (a trace Packet on a named interface: .iface .direction .flags)
        lab.service_log()                       # -> [{"client": ip, "port", "path", "time"}]
        lab.http_get("svc", "http://100.64.0.5:3000/")   # any GET from inside a node
        lab.route_get("router", "100.64.12.189")  # -> the kernel's `ip -j route get` answer
        lab.vtysh("router", "show bgp summary"); lab.vtysh_json(node, "... json")
        lab.bgp_routes("router")                # kernel routes proto bgp: prefix -> gateway
        lab.bgp_learned("router", "10.0.1.2")   # BGP table prefixes learned from a peer
        lab.frr_statics("conn")                 # kernel routes FRR staticd installed
        lab.tunnel_status(); lab.pause_tunnel(True)   # counters; emulate a WARP outage
        lab.start_frr(node, frr.FrrConfig(...)) # render, check with FRR, start, wait
        FIXES["bgp"](lab)                       # meshpath fix --apply on conn, then verify
        result = run_scenario(lab, "bgp")       # -> ScenarioResult(.passed, .checks, ...)

    Lab.attach(instance=None)  # a lab started by `meshpath lab up`
    clean_leftovers()          # remove labs of killed runs (never one a live process owns)

Teardown is guaranteed by the context manager (or ``lab.down()``); anything a killed run
leaves is found by the ``mplab-`` namespace prefix and removed by the next ``Lab.create``,
``meshpath lab up`` or ``meshpath lab down``.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from meshpath.lab.capture import Hop, match_sequence, parse_lines
    from meshpath.lab.core import CaptureResult, Lab, clean_leftovers, preflight, remove_lab
    from meshpath.lab.fixes import FIXES, FixStep
    from meshpath.lab.run import ScenarioResult, run_many, run_scenario
    from meshpath.lab.scenarios import (
        SCENARIO_NAMES,
        SCENARIOS,
        Check,
        Scenario,
        WorkerResult,
        get_scenario,
    )
    from meshpath.trace.packet import Packet  # the one Packet; a capture holds Sightings of it

# The public names, imported on first use (PEP 562): every lab process (the service, the
# tunnel, Mesh's edge, cfapi, warpd: six per scenario) runs a module of this package, and
# importing all of the lab with each cost ~0.2 s of CPU per process (issue 18).
_HOME: dict[str, str] = {
    "Hop": "meshpath.lab.capture",
    "match_sequence": "meshpath.lab.capture",
    "parse_lines": "meshpath.lab.capture",
    "CaptureResult": "meshpath.lab.core",
    "Lab": "meshpath.lab.core",
    "clean_leftovers": "meshpath.lab.core",
    "preflight": "meshpath.lab.core",
    "remove_lab": "meshpath.lab.core",
    "FIXES": "meshpath.lab.fixes",
    "FixStep": "meshpath.lab.fixes",
    "ScenarioResult": "meshpath.lab.run",
    "run_many": "meshpath.lab.run",
    "run_scenario": "meshpath.lab.run",
    "SCENARIO_NAMES": "meshpath.lab.scenarios",
    "SCENARIOS": "meshpath.lab.scenarios",
    "Check": "meshpath.lab.scenarios",
    "Scenario": "meshpath.lab.scenarios",
    "WorkerResult": "meshpath.lab.scenarios",
    "get_scenario": "meshpath.lab.scenarios",
    "Packet": "meshpath.trace.packet",
}


def __getattr__(name: str) -> Any:
    home = _HOME.get(name)
    if home is None:
        raise AttributeError(f"module 'meshpath.lab' has no attribute {name!r}")
    value = getattr(importlib.import_module(home), name)
    globals()[name] = value  # once: later lookups are plain module attributes
    return value


__all__ = [
    "FIXES",
    "SCENARIOS",
    "SCENARIO_NAMES",
    "CaptureResult",
    "Check",
    "FixStep",
    "Hop",
    "Lab",
    "Packet",
    "Scenario",
    "ScenarioResult",
    "WorkerResult",
    "clean_leftovers",
    "get_scenario",
    "match_sequence",
    "parse_lines",
    "preflight",
    "remove_lab",
    "run_many",
    "run_scenario",
]
