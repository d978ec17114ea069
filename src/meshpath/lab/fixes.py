"""The fix steps of the lab's scenarios.

Each step is a plain function ``(lab) -> None`` registered in :data:`FIXES` by name. The
``nat``, ``route``, ``bgp`` and ``profile`` steps run the real thing, ``meshpath fix --mode M
--apply`` against the connector namespace (``profile`` against the lab's Cloudflare API
emulator, with the lab's token in ``CLOUDFLARE_API_TOKEN``; ``--netns``; persistence files and
the journal under the lab's run dir, never the host's /etc or /var/lib), and then
``meshpath verify`` with a Worker round trip; a non-zero exit of either raises
:class:`LabFixError` with its output.
``nat-only`` stays hand-written: it is the field report's incomplete fix, which meshpath
never applies.
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Final

from meshpath.errors import LabFixError as LabFixError  # re-exported: its old home
from meshpath.lab import frr
from meshpath.lab.procs import wait_for
from meshpath.lab.topology import (
    ASN,
    DEVICE_RANGE,
    LAN_ADDR,
    LAN_ADDR6,
    LAN_IF,
    SOURCE_RANGE,
    SOURCE_RANGE6,
)

if TYPE_CHECKING:
    from meshpath.lab.core import Lab

FixStep = Callable[["Lab"], None]

NAT_TABLE: Final = "lab-nat"
BGP_ARGS: Final = (
    "--peer", LAN_ADDR["router"], "--asn", str(ASN["conn"]),
    "--peer-asn", str(ASN["router"]), "--also-device-range", "--bgp-timeout", "20",
)  # fmt: skip


def nat_ruleset() -> str:
    """The field report's masquerade, scoped to the source range (used by ``nat-only``)."""
    return (
        f"table inet {NAT_TABLE} {{ chain postrouting {{ "
        "type nat hook postrouting priority srcnat; policy accept; "
        f'oifname "{LAN_IF}" ip saddr {SOURCE_RANGE} masquerade; }}; }}\n'
    )


def fix_root(lab: Lab) -> Path:
    """Where meshpath writes the connector's persistent files and journal in the lab."""
    return lab.run_dir / "conn-root"


def meshpath_argv(lab: Lab, *args: str) -> list[str]:
    """``meshpath ARGS --netns <conn> --root <run dir>/conn-root`` as an argv."""
    where = ["--netns", lab.ns("conn"), "--root", str(fix_root(lab))]
    return [sys.executable, "-m", "meshpath", *args, *where]


def run_meshpath(
    lab: Lab, args: Sequence[str], env: Mapping[str, str] | None = None, timeout: float = 90.0
) -> subprocess.CompletedProcess[str]:
    """Run the meshpath CLI against the connector (the warp-cli stand-in on PATH, the lab's
    API token in the environment); returns the finished process."""
    return subprocess.run(  # noqa: S603 - argv list
        meshpath_argv(lab, *args),
        capture_output=True,
        text=True,
        timeout=timeout,
        env=dict(env) if env is not None else lab.meshpath_env(token=True),
        check=False,
    )


def _must(done: subprocess.CompletedProcess[str], what: str) -> None:
    if done.returncode != 0:
        out = (done.stdout + done.stderr).strip().splitlines()
        raise LabFixError(f"lab: {what} exited {done.returncode}: {' | '.join(out[-6:])}")


def meshpath_fix(lab: Lab, mode: str, *extra: str) -> None:
    """``meshpath fix --mode MODE --apply`` on conn, then ``meshpath verify`` with a
    Worker round trip (``--lab-worker``)."""
    args = ["fix", "--mode", mode, "--apply", "--lab-worker", lab.instance, *extra]
    _must(run_meshpath(lab, args), f"meshpath fix --mode {mode}")
    _must(run_meshpath(lab, ["verify", "--lab-worker", lab.instance]), "meshpath verify")


def fix_nat_only(lab: Lab) -> None:
    """The field report's temporary fix as written: masquerade, no route."""
    lab.nft("conn", nat_ruleset())


def fix_route(lab: Lab) -> None:
    """The source range via the tunnel, no NAT: ``meshpath fix --mode route``."""
    meshpath_fix(lab, "route")


def fix_nat(lab: Lab) -> None:
    """Masquerade plus the tunnel route: ``meshpath fix --mode nat``."""
    meshpath_fix(lab, "nat")


def start_conn_frr(lab: Lab) -> None:
    """FRR on the connector as a user might run it before meshpath: one unrelated static
    route (the leak canary) that meshpath must keep and must never advertise."""
    lab.start_frr("conn", frr.connector_base_config())


def fix_bgp(lab: Lab, timeout: float = 20.0) -> None:
    """FRR on the connector owns the two /12s and advertises exactly them to the router,
    configured by ``meshpath fix --mode bgp`` (with the IPv6 source range in its ipv6
    unicast family: the tunnel carries IPv6); returns once the router's kernel has all."""
    start_conn_frr(lab)
    meshpath_fix(lab, "bgp", *BGP_ARGS)
    want = {SOURCE_RANGE, DEVICE_RANGE}
    wait_for(
        "BGP routes in the router's kernel",
        lambda: (
            want <= set(lab.bgp_routes("router")) and SOURCE_RANGE6 in lab.bgp_routes("router", 6)
        ),
        timeout,
    )


def profile_args(lab: Lab) -> tuple[str, ...]:
    return ("--account-id", lab.account, "--api-base", lab.api_base, "--wait-warp", "5")


def fix_profile(lab: Lab) -> None:
    """The supported fix: first the default profile's failure (a 500), then
    ``meshpath fix --mode profile`` against the API emulator; WARP re-installs 65743."""
    before = lab.worker_call()
    if before.status != 500:
        raise LabFixError(f"lab: the lab's default profile should give a 500, got {before.status}")
    meshpath_fix(lab, "profile", *profile_args(lab))


def rollback(lab: Lab) -> None:
    _must(run_meshpath(lab, ["fix", "--rollback"]), "meshpath fix --rollback")


def fix_reconnect(lab: Lab) -> None:
    """Each fix in turn: apply (with its verify round trip), WARP reconnect, a Worker call,
    rollback; bgp last and kept for the scenario's final call. Results in lab.reconnects."""
    from meshpath.lab.scenarios import ReconnectResult

    steps: tuple[tuple[str, FixStep], ...] = (
        ("nat", fix_nat),
        ("route", fix_route),
        ("profile", lambda lab: meshpath_fix(lab, "profile", *profile_args(lab))),
        ("bgp", fix_bgp),
    )
    for mode, apply in steps:
        if mode == "bgp":  # BGP carries the way back now: a kernel static would shadow it
            text = f"route del {SOURCE_RANGE} via {LAN_ADDR['conn']}\n"
            text += f"route del {SOURCE_RANGE6} via {LAN_ADDR6['conn']}\n"
            lab.ip_batch("router", text)
        apply(lab)
        seconds = lab.warp_reconnect()
        after = lab.worker_call()
        lab.reconnects.append(ReconnectResult(mode, after.status, after.seen_source, seconds))
        if mode != "bgp":
            rollback(lab)
    lab.clear_service_log()  # the scenario's own call is judged on its own


def fix_ha(lab: Lab) -> None:
    """Two connectors, primary and standby (lab/ha.py)."""
    from meshpath.lab import ha

    ha.fix_ha(lab)


def fix_ha_equal(lab: Lab) -> None:
    """Two connectors without a role, the standby's path the router's older (lab/ha.py)."""
    from meshpath.lab import ha

    ha.fix_ha_equal(lab)


FIXES: Final[Mapping[str, FixStep]] = {
    "nat": fix_nat,
    "nat-only": fix_nat_only,
    "route": fix_route,
    "bgp": fix_bgp,
    "profile": fix_profile,
    "reconnect": fix_reconnect,
    "ha": fix_ha,
    "ha-equal": fix_ha_equal,
}
