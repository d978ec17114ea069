"""Persistence for kernel routes without FRR: a systemd unit or a networkd drop-in (pure).

WARP recreates ``CloudflareWARP`` on every reconnect, which flushes routes through it.
The unit is wanted by the interface's device unit, so systemd re-runs it each time the
interface appears (and at boot); the networkd drop-in does the same for a host whose
tunnel is managed by systemd-networkd. Both use meshpath's route protocol number so the
routes stay recognisable as meshpath's.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final

UNIT_NAME: Final = "meshpath-routes.service"


@dataclass(frozen=True, slots=True)
class RouteSpec:
    """One kernel route meshpath owns (main table)."""

    dst: str
    dev: str
    proto: int
    metric: int

    def argv(self, verb: str = "replace") -> tuple[str, ...]:
        family = "-6" if ":" in self.dst else "-4"
        return (
            "ip", family, "route", verb, self.dst, "dev", self.dev,
            "proto", str(self.proto), "metric", str(self.metric), "table", "main",
        )  # fmt: skip


def device_unit(dev: str) -> str:
    """systemd's device unit name for a network interface."""
    return f"sys-subsystem-net-devices-{dev}.device"


def unit_path(dev: str) -> tuple[str, str]:
    """(unit file, enable symlink) paths relative to the root."""
    base = "etc/systemd/system"
    return f"{base}/{UNIT_NAME}", f"{base}/{device_unit(dev)}.wants/{UNIT_NAME}"


def render_unit(routes: Sequence[RouteSpec]) -> str:
    dev = routes[0].dev
    execs = "\n".join(f"ExecStart=/sbin/{_cmd(r)}" for r in routes)
    # '-': a route already gone with the interface is not a failure.
    stops = "\n".join(f"ExecStop=-/sbin/{_cmd(r, 'del')}" for r in routes)
    return (
        "# meshpath: re-adds the Cloudflare return routes whenever the tunnel appears\n"
        "[Unit]\n"
        f"Description=meshpath routes via {dev}\n"
        f"BindsTo={device_unit(dev)}\n"
        f"After={device_unit(dev)}\n"
        "\n[Service]\nType=oneshot\nRemainAfterExit=yes\n"
        f"{execs}\n{stops}\n"
        f"\n[Install]\nWantedBy={device_unit(dev)}\n"
    )


def _cmd(route: RouteSpec, verb: str = "replace") -> str:
    return " ".join(route.argv(verb))


def dropin_path(network_file: str) -> str:
    """The drop-in directory of the ``.network`` file that matches the tunnel."""
    return f"etc/systemd/network/{network_file}.d/meshpath.conf"


def render_dropin(routes: Sequence[RouteSpec]) -> str:
    sections = [
        f"[Route]\nDestination={r.dst}\nProtocol={r.proto}\nMetric={r.metric}\n" for r in routes
    ]
    return "# meshpath: Cloudflare return routes via the tunnel\n" + "\n".join(sections)
