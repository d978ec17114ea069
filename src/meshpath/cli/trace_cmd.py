"""`meshpath trace`: read a capture (or take one live) and name what went wrong."""

from __future__ import annotations

import tempfile
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Annotated

import typer

from meshpath.checks.targets import parse_target
from meshpath.cli import numbers
from meshpath.cli.context import AppContext, app_context
from meshpath.collect.netns import netns_path
from meshpath.errors import EXIT_FINDINGS, BadInputError
from meshpath.fsafe import remove_inside
from meshpath.runner import SubprocessRunner
from meshpath.state import codec
from meshpath.trace.analyse import parse_sources
from meshpath.trace.files import trace_file
from meshpath.trace.flows import Network
from meshpath.trace.live import MAX_DURATION, capture, link_names
from meshpath.trace.model import Endpoint, TraceReport
from meshpath.trace.render import format_report, report_data


def register(app: typer.Typer) -> None:
    app.command("trace")(trace)


def trace(
    ctx: typer.Context,
    capture_file: Annotated[
        Path | None,
        typer.Argument(
            metavar="FILE",
            help="pcap, pcapng or tcpdump -n text ('-' = stdin); omit with --live.",
        ),
    ] = None,
    target: Annotated[
        str | None, typer.Option("--target", help="Only flows toward IP:PORT.")
    ] = None,
    snapshot: Annotated[
        Path | None,
        typer.Option("--snapshot", help="Name SLL2 interface indexes from this snapshot."),
    ] = None,
    live: Annotated[
        bool, typer.Option("--live", help="Capture with tcpdump -i any first.")
    ] = False,
    netns: Annotated[
        str | None,
        typer.Option("--netns", help="Capture in / name interfaces from this namespace."),
    ] = None,
    duration: Annotated[
        float,
        typer.Option(
            "--duration",
            help="Seconds to capture with --live.",
            metavar="SECONDS",
            # 0 parses: `trace FILE --live --duration 0` is a usage error first; a live
            # capture refuses 0 seconds itself (trace.live.capture_argv).
            parser=numbers.seconds("--duration", MAX_DURATION, zero=True),
        ),
    ] = 10.0,
    write: Annotated[
        Path | None, typer.Option("--write", "-w", help="Keep the live capture in FILE.")
    ] = None,
    max_flows: Annotated[
        int,
        typer.Option(
            "--max-flows",
            help="Flows shown per verdict (the rest counted).",
            metavar="N",
            parser=numbers.integer("--max-flows", 0, numbers.MAX_FLOWS_MAX),
        ),
    ] = 10,
    source: Annotated[
        list[str] | None,
        typer.Option(
            "--source",
            metavar="CIDR",
            help="Follow connections from these clients instead of the Cloudflare source "
            "range (repeatable; 0.0.0.0/0 = any); the ranges themselves stay as they are.",
        ),
    ] = None,
) -> None:
    """Classify each TCP flow from the Cloudflare source range: ok, return-misrouted, ..."""
    actx = app_context(ctx)
    goal = target_endpoint(target) if target is not None else None
    sources = parse_sources(source) if source else None
    if live == (capture_file is not None):
        raise BadInputError("give a capture FILE or --live (not both, not neither)")
    names = _names(snapshot, netns, live)
    read = partial(
        trace_file,
        ranges=actx.settings.ranges,
        target=goal,
        max_examples=max_flows,
        iface_names=names,
        sources=sources,
    )
    if live:
        report = _live(netns, duration, goal, write, read)
    else:
        assert capture_file is not None  # noqa: S101 - checked above
        report = read(capture_file)
    _emit(actx, report, sources)
    if report.broken:
        raise typer.Exit(EXIT_FINDINGS)


def _names(snapshot: Path | None, netns: str | None, live: bool) -> dict[int, str]:
    if snapshot is not None:
        return {link.index: link.name for link in codec.load(snapshot).links}
    if netns is not None:
        netns_path(netns)  # a namespace that does not exist is bad input (exit 2), as elsewhere
    if netns is not None or live:
        return link_names(SubprocessRunner(netns=netns))
    return {}


def _live(
    netns: str | None,
    duration: float,
    goal: Endpoint | None,
    write: Path | None,
    read: Callable[[Path], TraceReport],
) -> TraceReport:
    workdir = Path(tempfile.mkdtemp(prefix="meshpath-trace-"))
    try:
        path = write if write is not None else workdir / "live.pcap"
        capture(SubprocessRunner(netns=netns), path, duration, goal)
        return read(path)
    finally:
        remove_inside(workdir.parent, workdir.name)


def _emit(actx: AppContext, report: TraceReport, sources: list[Network] | None) -> None:
    nets = sources if sources is not None else actx.settings.ranges.source_ranges()
    ranges_text = ", ".join(str(net) for net in nets)
    who = "the given sources" if sources is not None else "the Cloudflare source range"
    data = report_data(report, ranges_text, who=who)
    data["sources"] = [str(net) for net in sources] if sources is not None else None
    actx.emit(data, format_report(report, ranges_text, who=who), schema="trace")


def target_endpoint(text: str) -> Endpoint:
    """``--target IP:PORT``: the one target parser, the port required (a capture is
    filtered by the exact endpoint)."""
    parsed = parse_target(text, "--target", port_required=True)
    return Endpoint.of(parsed.address, parsed.port)
