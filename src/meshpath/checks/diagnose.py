"""The doctor's pure core: snapshot (+ targets) -> Report, without asking any kernel."""

from __future__ import annotations

from collections.abc import Callable

from meshpath.checks.context import CheckContext, lan_interfaces
from meshpath.checks.flows import simulate_targets
from meshpath.checks.path import PathOutcome
from meshpath.checks.report import Disagreement, Report, build_report
from meshpath.checks.targets import Target, choose_targets
from meshpath.config import Settings
from meshpath.errors import SnapshotError
from meshpath.state import Snapshot


def context_for(snapshot: Snapshot, settings: Settings) -> CheckContext:
    return CheckContext(snapshot, settings, lan_interfaces=lan_interfaces(snapshot, settings))


Flows = tuple[PathOutcome, ...]
# The live edge's second opinion: given the simulated flows, the flows as the kernel answers
# them where it disagrees, and the disagreements (see checks.kernel.cross_check).
KernelCheck = Callable[[CheckContext, Flows], tuple[Flows, tuple[Disagreement, ...]]]


def diagnose(
    snapshot: Snapshot,
    settings: Settings,
    targets: tuple[Target, ...] = (),
    worker_ip: str | None = None,
    kernel_check: KernelCheck | None = None,
) -> Report:
    """Simulate the Worker flows to ``targets`` (default: each LAN), hold them to the
    kernel when ``kernel_check`` is given (live), and run every check once.

    Raises SnapshotError when a value in the snapshot is well-typed but meaningless (an
    address that is not one): the codec checks types, the checks parse the values.
    """
    ctx = context_for(snapshot, settings)
    try:
        chosen = choose_targets(snapshot, settings.tunnel_interface, targets)
        flows = simulate_targets(ctx, chosen, worker_ip)
        disagreements: tuple[Disagreement, ...] = ()
        if kernel_check is not None:
            flows, disagreements = kernel_check(ctx, flows)
        return build_report(ctx, flows, disagreements)
    except ValueError as exc:
        raise SnapshotError(f"snapshot: a value the doctor cannot read: {exc}") from exc
