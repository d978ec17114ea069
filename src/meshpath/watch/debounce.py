"""Debouncing bursts of kernel change events (pure: the caller passes the time).

A WARP reconnect or an ``ip -batch`` produces hundreds of netlink messages in a few
milliseconds; one evaluation should answer them all. An evaluation is due once the events
have been quiet for ``quiet`` seconds, or ``max_wait`` seconds after the first one of a
burst at the latest, so a change that never stops (a flood) is still evaluated twice a
second and a single change is reflected within ``quiet`` plus one evaluation.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

QUIET: Final = 0.1
MAX_WAIT: Final = 0.5


@dataclass(slots=True)
class Debouncer:
    """Pending changes: when the first and the last of them were seen."""

    quiet: float = QUIET
    max_wait: float = MAX_WAIT
    first: float | None = None
    last: float = 0.0

    def event(self, now: float) -> None:
        """Record a change seen at ``now``."""
        if self.first is None:
            self.first = now
        self.last = now

    def deadline(self) -> float | None:
        """When the pending changes are due for evaluation (None: nothing pending)."""
        if self.first is None:
            return None
        return min(self.last + self.quiet, self.first + self.max_wait)

    def due(self, now: float) -> bool:
        deadline = self.deadline()
        return deadline is not None and now >= deadline

    def take(self) -> None:
        """The pending changes are being evaluated: start a new burst."""
        self.first = None
