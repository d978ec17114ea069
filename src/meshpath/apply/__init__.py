"""I/O edge of ``meshpath fix``: run plans through a Runner, journaled, locked, rolled back."""

from __future__ import annotations

from meshpath.apply.executor import Applier, InterruptedRun
from meshpath.apply.frr import Frr, StepFailed
from meshpath.apply.journal import DEFAULT_STATE_DIR, Journal, LockHeld, locked
from meshpath.apply.result import ApplyResult

__all__ = [
    "DEFAULT_STATE_DIR",
    "Applier",
    "ApplyResult",
    "Frr",
    "InterruptedRun",
    "Journal",
    "LockHeld",
    "StepFailed",
    "locked",
]
