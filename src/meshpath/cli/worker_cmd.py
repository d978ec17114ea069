"""`meshpath worker check [PATH]`: the Worker's wrangler config and source, as findings."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Group, RenderableType
from rich.text import Text

from meshpath.checks.finding import Finding, Severity
from meshpath.cli.context import app_context
from meshpath.errors import EXIT_FINDINGS, EXIT_OK
from meshpath.worker import check_worker, load_project
from meshpath.worker.checks import WorkerReport

worker_app = typer.Typer(
    help="The Worker's side: its wrangler config and source (Workers VPC bindings).",
    no_args_is_help=True,
)
_STYLE = {Severity.ERROR: "bold red", Severity.WARNING: "yellow", Severity.INFO: "cyan"}


def register(app: typer.Typer) -> None:
    app.add_typer(worker_app, name="worker")


@worker_app.command("check")
def check(
    ctx: typer.Context,
    path: Annotated[
        Path,
        typer.Argument(help="Worker directory or wrangler.json/.jsonc/.toml (default: .)."),
    ] = Path("."),
) -> None:
    """Check vpc_networks / vpc_services bindings and how the code uses them (MP3xx)."""
    actx = app_context(ctx)
    report = check_worker(load_project(path))
    actx.emit(report.as_dict(), format_worker_report(report), schema="worker-check")
    raise typer.Exit(EXIT_OK if report.ok else EXIT_FINDINGS)


def format_worker_report(report: WorkerReport) -> RenderableType:
    cfg = report.project.config
    head = f"meshpath worker check: {cfg.file} ({cfg.name or 'unnamed Worker'})"
    parts: list[RenderableType] = [Text(head, style="bold")]
    for b in cfg.vpc:
        target = b.network_id or b.tunnel_id or b.service_id or "-"
        parts.append(Text(f"  {b.where}: {b.binding} -> {target}", style="dim"))
    parts += [_finding(f) for f in report.findings]
    verdict = "WORKER OK" if report.ok else "WORKER CONFIG BROKEN"
    counts = _counts(report.findings)
    parts.append(Text(f"{verdict} ({counts})", style="bold green" if report.ok else "bold red"))
    return Group(*parts)


def _counts(findings: tuple[Finding, ...]) -> str:
    sev = [f.severity for f in findings]
    return ", ".join(f"{sev.count(s)} {s.value}" for s in Severity) if sev else "no findings"


def _finding(finding: Finding) -> RenderableType:
    head = Text()
    head.append(f"{finding.id} ", style="bold")
    head.append(f"{finding.severity.value:<7} ", style=_STYLE[finding.severity])
    head.append(finding.title)
    lines: list[RenderableType] = [head]
    lines += [Text(f"    evidence: {e}", style="dim") for e in finding.evidence]
    if finding.why:
        lines.append(Text(f"    why: {finding.why}"))
    lines += [Text(f"    fix: {c}", style="green") for c in finding.fix_commands]
    return Group(*lines)
