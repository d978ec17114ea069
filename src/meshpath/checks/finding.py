"""What a check reports: a Finding with a stable ID, evidence, the why, and the fix."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum


class Severity(StrEnum):
    """How bad a finding is. ``ERROR`` findings break the Worker path."""

    ERROR = "error"
    WARNING = "warning"
    INFO = "info"


@dataclass(frozen=True, slots=True)
class Finding:
    """One thing the doctor found, with everything a person needs to act on it.

    ``evidence`` holds the exact route/rule/sysctl/nft rule or simulated hop that shows it;
    ``why`` explains in plain words what it does to a Worker's request; ``fix_mode`` names
    the `meshpath fix --mode` that repairs it (if any) and ``fix_commands`` the manual way.
    """

    id: str
    severity: Severity
    title: str
    evidence: tuple[str, ...] = ()
    why: str = ""
    fix_mode: str | None = None
    fix_commands: tuple[str, ...] = ()
    target: str | None = None  # the Worker target the finding is about, when per-flow
    extra: tuple[tuple[str, str], ...] = field(default=())

    def as_dict(self) -> dict[str, object]:
        return {
            "id": self.id,
            "severity": str(self.severity),
            "title": self.title,
            "evidence": list(self.evidence),
            "why": self.why,
            "fix_mode": self.fix_mode,
            "fix_commands": list(self.fix_commands),
            "target": self.target,
        }
