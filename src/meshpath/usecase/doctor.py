"""`doctor.run`: diagnose a host, live (held to the kernel's own answers) or from a snapshot."""

from __future__ import annotations

from dataclasses import dataclass
from functools import partial

from meshpath.checks.diagnose import diagnose
from meshpath.checks.kernel import cross_check
from meshpath.checks.report import Report
from meshpath.checks.targets import Target
from meshpath.collect.kernel_route import route_get
from meshpath.config import Settings
from meshpath.state import Snapshot
from meshpath.usecase.host import Host


@dataclass(frozen=True, slots=True)
class Diagnosis:
    snapshot: Snapshot
    report: Report


def run(
    host: Host | None,
    settings: Settings,
    targets: tuple[Target, ...] = (),
    worker_ip: str | None = None,
    *,
    saved: Snapshot | None = None,
) -> Diagnosis:
    """Diagnose ``saved`` (offline: the model alone) or, without it, a fresh snapshot of
    ``host`` whose simulated flows the live kernel's `ip route get` cross-checks."""
    if saved is not None:
        return Diagnosis(saved, diagnose(saved, settings, targets, worker_ip))
    if host is None:
        raise ValueError("doctor.run needs a host or a saved snapshot")
    snap = host.snapshot()
    live = partial(cross_check, route_get(host.runner))
    return Diagnosis(snap, diagnose(snap, settings, targets, worker_ip, kernel_check=live))
