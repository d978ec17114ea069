"""I/O edge: the live host (or a named namespace) -> Snapshot."""

from __future__ import annotations

from meshpath.runner import Runner
from meshpath.state import Snapshot


def collect_snapshot(netns: str | None = None, runner: Runner | None = None) -> Snapshot:
    """Collect a Snapshot of the host, or of the named network namespace."""
    raise NotImplementedError("collector lands with the foundation issue")
