"""`meshpath doctor`: what is wrong on a connector, why, with evidence, and what to do."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Group, RenderableType
from rich.table import Table
from rich.text import Text

from meshpath.checks.finding import Finding, Severity
from meshpath.checks.report import Report
from meshpath.checks.targets import parse_target
from meshpath.cli.context import app_context
from meshpath.errors import EXIT_FINDINGS, EXIT_OK, BadInputError
from meshpath.state import codec
from meshpath.usecase import Host
from meshpath.usecase import doctor as use
from meshpath.values import given


def register(app: typer.Typer) -> None:
    app.command("doctor")(doctor)


def doctor(
    ctx: typer.Context,
    netns: Annotated[
        str | None, typer.Option("--netns", help="Diagnose this network namespace.")
    ] = None,
    snapshot: Annotated[
        Path | None, typer.Option("--snapshot", help="Diagnose a saved snapshot (offline).")
    ] = None,
    target: Annotated[
        list[str] | None,
        typer.Option("--target", help="Worker target IP:PORT (repeatable). Default: each LAN."),
    ] = None,
    worker_ip: Annotated[
        str | None, typer.Option("--worker-ip", help="Worker source IP to simulate.")
    ] = None,
) -> None:
    """Simulate Worker flows both ways, ask the kernel, run every check, give a verdict."""
    actx = app_context(ctx)
    if snapshot is not None and netns is not None:
        raise BadInputError("--snapshot and --netns exclude each other")
    targets = tuple(parse_target(t) for t in target or ())
    worker = given(worker_ip, "--worker-ip")
    saved = codec.load(snapshot) if snapshot is not None else None
    host = Host.local(netns) if saved is None else None
    with actx.progress("collecting the host's network state"):
        found = use.run(host, actx.settings, targets, worker, saved=saved)
    snap, report = found.snapshot, found.report
    actx.emit(
        report.as_dict(), format_report(report, where=netns or snap.hostname), schema="doctor"
    )
    raise typer.Exit(EXIT_OK if report.ok else EXIT_FINDINGS)


_STYLE = {Severity.ERROR: "bold red", Severity.WARNING: "yellow", Severity.INFO: "cyan"}


def format_report(report: Report, where: str) -> RenderableType:
    parts: list[RenderableType] = [Text(f"meshpath doctor: {where}", style="bold")]
    parts.append(_flows_table(report))
    for finding in report.findings:
        parts.append(_finding(finding, report.root_cause is finding))
    verdict_style = "bold green" if report.ok else "bold red"
    parts.append(Text(report.verdict, style=verdict_style))
    if report.explanation:
        parts.append(Text(report.explanation))
    return Group(*parts)


def _flows_table(report: Report) -> Table:
    table = Table(title="Worker flows (simulated)", title_justify="left")
    for col in ("target", "worker", "result", "reply leaves by", "service sees"):
        table.add_column(col, no_wrap=col != "result")
    for flow in report.flows:
        style = "green" if flow.ok else "red"
        table.add_row(
            str(flow.target),
            flow.worker_ip,
            Text(flow.status + (f" ({flow.cause})" if flow.cause else ""), style=style),
            flow.egress or "-",
            flow.seen_source or "-",
        )
    return table


def _finding(finding: Finding, root: bool) -> RenderableType:
    head = Text()
    head.append(f"{finding.id} ", style="bold")
    head.append(f"{finding.severity.value:<7} ", style=_STYLE[finding.severity])
    head.append(finding.title + ("  <- root cause" if root else ""))
    lines: list[RenderableType] = [head]
    lines += [Text(f"    evidence: {e}", style="dim") for e in finding.evidence]
    if finding.why:
        lines.append(Text(f"    why: {finding.why}"))
    lines += [Text(f"    fix: {c}", style="green") for c in finding.fix_commands]
    return Group(*lines)
