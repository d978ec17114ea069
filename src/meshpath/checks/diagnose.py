"""The doctor's pure core: snapshot (+ targets) -> Report, without asking any kernel."""

from __future__ import annotations

from meshpath.checks.context import CheckContext, lan_interfaces
from meshpath.checks.flows import simulate_targets
from meshpath.checks.report import Report, build_report
from meshpath.checks.targets import Target, default_targets
from meshpath.config import Settings
from meshpath.errors import SnapshotError
from meshpath.state import Snapshot


def context_for(snapshot: Snapshot, settings: Settings) -> CheckContext:
    return CheckContext(snapshot, settings, lan_interfaces=lan_interfaces(snapshot, settings))


def diagnose(
    snapshot: Snapshot,
    settings: Settings,
    targets: tuple[Target, ...] = (),
    worker_ip: str | None = None,
) -> Report:
    """Simulate the Worker flows to ``targets`` (default: each LAN) and run every check.

    Raises SnapshotError when a value in the snapshot is well-typed but meaningless (an
    address that is not one): the codec checks types, the checks parse the values.
    """
    ctx = context_for(snapshot, settings)
    try:
        chosen = targets or default_targets(snapshot, settings.tunnel_interface)
        return build_report(ctx, simulate_targets(ctx, chosen, worker_ip))
    except ValueError as exc:
        raise SnapshotError(f"snapshot: a value the doctor cannot read: {exc}") from exc
