"""The doctor's report: findings, flows, and the verdict line (pure assembly)."""

from __future__ import annotations

from dataclasses import dataclass

from meshpath.checks import frr, host, overlap, v6, warp
from meshpath.checks.context import CheckContext
from meshpath.checks.finding import Finding, Severity
from meshpath.checks.flows import check_device_range
from meshpath.checks.path import HANDSHAKE, PathOutcome, check_lan_return, flow_findings

# When several errors are present, the one earliest here is *the* root cause: a dead
# tunnel explains everything after it; a missing return route explains the timeout.
ROOT_CAUSE_ORDER = (
    "MP150",
    "MP120",
    "MP124",
    "MP122",
    "MP140",
    "MP130",
    "MP141",
    "MP142",
    "MP143",
    "MP170",
    "MP101",
    "MP151",
    "MP160",
    "MP161",
    "MP162",
    "MP163",
)
# The same text a Workers developer gets from the error itself (meshpath.worker.explain).
EXPLAIN_HANDSHAKE = 'meshpath explain "handshake timeout"'
RETURN_PATH_CAUSES = frozenset(
    {"MP101", "MP103", "MP170", "MP151", "MP160", "MP161", "MP162", "MP163"}
)


@dataclass(frozen=True, slots=True)
class Disagreement:
    """The model and the live kernel answered one lookup differently."""

    question: str
    model: str
    kernel: str


@dataclass(frozen=True, slots=True)
class Report:
    findings: tuple[Finding, ...]
    flows: tuple[PathOutcome, ...]
    disagreements: tuple[Disagreement, ...] = ()

    @property
    def root_cause(self) -> Finding | None:
        errors = [f for f in self.findings if f.severity is Severity.ERROR]
        if not errors:
            return None
        rank = {fid: i for i, fid in enumerate(ROOT_CAUSE_ORDER)}
        return min(errors, key=lambda f: rank.get(f.id, len(rank)))

    @property
    def ok(self) -> bool:
        return self.root_cause is None and all(f.ok for f in self.flows)

    @property
    def verdict(self) -> str:
        cause = self.root_cause
        if cause is None and not self.ok:
            failed = next(f for f in self.flows if not f.ok)
            return f"PATH BROKEN: {failed.status} flow to {failed.target}"
        return "PATH OK" if cause is None else f"PATH BROKEN: {cause.title} [{cause.id}]"

    @property
    def explanation(self) -> str | None:
        """Why Workers see `handshake timeout`, when the cause is the return path."""
        cause = self.root_cause
        if cause is None or cause.id not in RETURN_PATH_CAUSES:
            return None
        return f"{HANDSHAKE} More: {EXPLAIN_HANDSHAKE}"

    def as_dict(self) -> dict[str, object]:
        cause = self.root_cause
        return {
            "verdict": self.verdict,
            "ok": self.ok,
            "root_cause": cause.id if cause else None,
            "explanation": self.explanation,
            "flows": [f.as_dict() for f in self.flows],
            "findings": [f.as_dict() for f in self.findings],
            "disagreements": [
                {"question": d.question, "model": d.model, "kernel": d.kernel}
                for d in self.disagreements
            ],
        }


def build_report(
    ctx: CheckContext,
    flows: tuple[PathOutcome, ...],
    disagreements: tuple[Disagreement, ...] = (),
) -> Report:
    """All findings for a host: per-flow causes first, then configuration checks."""
    per_flow = [f for flow in flows for f in flow_findings(ctx, flow)]
    static = [
        *(f for check in host.CHECKS for f in check(ctx)),
        *(f for check in overlap.CHECKS for f in check(ctx)),
        *(f for check in frr.CHECKS for f in check(ctx)),
        *(f for check in v6.CHECKS for f in check(ctx)),
        *warp.check_split_tunnels(ctx, flows),
        *(f for check in warp.CHECKS for f in check(ctx)),
        *check_device_range(ctx),
        *check_lan_return(ctx, has_nat=bool(overlap.nat_rules(ctx))),
    ]
    seen = {f.id for f in per_flow}
    findings = _dedupe_per_flow(per_flow) + [f for f in static if f.id not in seen]
    if disagreements:
        findings.append(_disagreement_finding(disagreements))
    return Report(tuple(findings), flows, disagreements)


def _dedupe_per_flow(findings: list[Finding]) -> list[Finding]:
    """One finding per (id, title): many targets failing the same way is one problem."""
    out: dict[tuple[str, str], Finding] = {}
    for f in findings:
        out.setdefault((f.id, f.title.split(" (")[0]), f)
    return list(out.values())


def _disagreement_finding(disagreements: tuple[Disagreement, ...]) -> Finding:
    return Finding(
        "MP198",
        Severity.WARNING,
        f"the model and the kernel disagree on {len(disagreements)} lookup(s)",
        evidence=tuple(
            f"{d.question}: model {d.model}, kernel {d.kernel}" for d in disagreements[:5]
        ),
        why="The verdict follows the kernel's answer; please report the snapshot upstream.",
    )
