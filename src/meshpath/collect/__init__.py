"""I/O edge: the live host (or a named namespace) -> Snapshot.

Kernel tables come over rtnetlink (:mod:`.netlink` frames, :mod:`.rtnl_parse` parses),
sysctls from ``/proc/sys`` — both read *inside* the namespace (:mod:`.netns`). External
programs (nft, vtysh, warp-cli) run through a :class:`~meshpath.runner.Runner`, which for a
namespace prefixes ``ip netns exec``. Missing optional tools are recorded, not errors.
"""

from __future__ import annotations

import os
import socket
from datetime import UTC, datetime
from pathlib import Path

import msgspec

from meshpath.collect.frr import collect_frr
from meshpath.collect.host import processes_in_netns, read_persisted_sysctls
from meshpath.collect.kernel import KernelState, read_kernel
from meshpath.collect.netlink import RtnlSocket
from meshpath.collect.netns import inside_netns
from meshpath.collect.nft import collect_nft
from meshpath.collect.rtnl_parse import NetlinkError
from meshpath.collect.sysctl import read_sysctls
from meshpath.collect.warp import collect_warp
from meshpath.config import DEFAULT_TUNNEL
from meshpath.ranges import DEFAULT_RANGES
from meshpath.runner import Runner, SubprocessRunner
from meshpath.state import SCHEMA_VERSION, Snapshot, Sysctls
from meshpath.state.split import infer_split, split_ranges

__all__ = ["NetlinkError", "collect_kernel", "collect_snapshot"]

TOOLS = ("ip", "nft", "vtysh", "warp-cli", "tcpdump")


def collect_kernel(netns: str | None = None) -> tuple[KernelState, Sysctls]:
    """Links, addresses, routes, rules and sysctls, read inside ``netns`` (or here)."""
    with inside_netns(netns):
        with RtnlSocket() as sock:
            kernel = read_kernel(sock)
        sysctls = read_sysctls(link.name for link in kernel.links)
    return kernel, sysctls


def collect_snapshot(
    netns: str | None = None, runner: Runner | None = None, frr_vty_dir: Path | None = None
) -> Snapshot:
    """Collect a Snapshot of the host, or of the named network namespace.

    ``frr_vty_dir`` points at FRR's vty sockets when its daemons were started with their own
    ``--vty_socket DIR`` (default: ``/var/run/frr/NS``, or ``/var/run/frr`` for the host).

    Raises NetnsError for a missing namespace and PrivilegeError when entering it needs root.
    The hostname is the host's (``ip netns`` does not change the UTS namespace); ``netns``
    records where the network state came from.
    """
    taken_at = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    kernel, sysctls = collect_kernel(netns)
    run = runner if runner is not None else SubprocessRunner(netns=netns)
    snap = Snapshot(
        schema_version=SCHEMA_VERSION,
        taken_at=taken_at,
        hostname=socket.gethostname(),
        kernel=os.uname().release,
        netns=netns,
        links=kernel.links,
        addresses=kernel.addresses,
        routes=kernel.routes,
        rules=kernel.rules,
        nft=collect_nft(run),
        sysctls=sysctls,
        frr=collect_frr(run, netns, frr_vty_dir),
        warp=collect_warp(run),
        tools={tool: run.has(tool) for tool in TOOLS},
        persisted_sysctls=read_persisted_sysctls(),
        processes=processes_in_netns(netns),
    )
    split = infer_split(snap, DEFAULT_TUNNEL, split_ranges(DEFAULT_RANGES))
    return msgspec.structs.replace(snap, warp_split=split)
