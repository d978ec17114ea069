"""`meshpath fleet facts|check`: several connectors' BGP advertisements judged together.

``fleet facts`` runs on each connector (or reads its snapshot) and prints the compact
document ``fleet check`` takes; the Ansible module ``meshpath_facts`` returns it as
``ansible_facts.meshpath.fleet``. ``fleet check`` reads those documents (or whole
snapshots, or a JSON list of documents, ``-`` for stdin) and reports MP401.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated, Any, Final

import typer
from rich.console import Group, RenderableType
from rich.text import Text

from meshpath.checks.finding import Finding
from meshpath.checks.fleet import (
    Advertisement,
    ads_from_doc,
    advertisements,
    check_fleet,
    facts_doc,
)
from meshpath.cli.context import app_context
from meshpath.errors import EXIT_FINDINGS, EXIT_OK, BadInputError
from meshpath.fsafe import read_bounded, read_stream
from meshpath.ranges import CloudflareRanges
from meshpath.schemas import schema_id
from meshpath.state import codec
from meshpath.usecase import Host

fleet_app = typer.Typer(
    help="Several connectors together: replicas advertising with equal preference (MP401).",
    no_args_is_help=True,
)
INPUT_LIMIT: Final = codec.SNAPSHOT_LIMIT


def register(app: typer.Typer) -> None:
    app.add_typer(fleet_app, name="fleet")


@fleet_app.command("facts")
def facts(
    ctx: typer.Context,
    netns: Annotated[
        str | None, typer.Option("--netns", help="Read this network namespace.")
    ] = None,
    snapshot: Annotated[
        Path | None, typer.Option("--snapshot", help="Read a saved snapshot (offline).")
    ] = None,
    name: Annotated[
        str | None,
        typer.Option("--name", help="This connector's name (default: hostname[/netns])."),
    ] = None,
) -> None:
    """What this connector advertises to its BGP peers: the input of `fleet check`."""
    actx = app_context(ctx)
    if snapshot is not None and netns is not None:
        raise BadInputError("--snapshot and --netns exclude each other")
    if name is not None and not name.strip():
        raise BadInputError("--name: expected a connector name, got an empty one")
    snap = codec.load(snapshot) if snapshot is not None else None
    if snap is None:
        with actx.progress("collecting the host's network state"):
            snap = Host.local(netns).snapshot()
    host = name or _label(snap.hostname, snap.netns)
    doc = facts_doc(host, advertisements(snap, actx.settings.ranges, host))
    actx.emit(doc, _format_facts(doc), schema="fleet-facts")


@fleet_app.command("check")
def check(
    ctx: typer.Context,
    inputs: Annotated[
        list[str],
        typer.Argument(help="Fleet facts, snapshots or a JSON list of facts; - for stdin."),
    ],
) -> None:
    """Replicas that send a Cloudflare range to the same peer with equal preference."""
    actx = app_context(ctx)
    fleet = _load_all(inputs, actx.settings.ranges)
    findings = check_fleet(ad for _host, ads in fleet for ad in ads)
    hosts = [host for host, _ads in fleet]
    connectors = [facts_doc(host, ads) for host, ads in fleet]
    data = {
        "ok": not findings,
        "connectors": connectors,
        "findings": [f.as_dict() for f in findings],
    }
    actx.emit(data, _format_check(hosts, findings), schema="fleet-check")
    raise typer.Exit(EXIT_FINDINGS if findings else EXIT_OK)


# -- reading the inputs (I/O edge) ------------------------------------------------------
Connector = tuple[str, tuple[Advertisement, ...]]  # name, what it advertises


def _load_all(inputs: list[str], ranges: CloudflareRanges) -> list[Connector]:
    """Every connector in the inputs; a name given twice is refused (its facts would mix)."""
    out: list[Connector] = []
    owner: dict[str, str] = {}
    for where in inputs:
        for host, ads in _load(where, ranges):
            if owner.setdefault(host, where) != where or any(h == host for h, _ in out):
                raise BadInputError(
                    f"{where}: connector {host!r} is named twice (also in {owner[host]}); "
                    "give each its own name (meshpath fleet facts --name)"
                )
            out.append((host, ads))
    return out


def _load(where: str, ranges: CloudflareRanges) -> list[Connector]:
    data = _read(where)
    try:
        doc = json.loads(data)
    except (ValueError, RecursionError) as exc:
        raise BadInputError(f"{where}: not JSON ({exc})") from exc
    if isinstance(doc, list):
        return [_from_doc(item, f"{where}[{i}]") for i, item in enumerate(doc)]
    if isinstance(doc, dict) and "schema_version" in doc:
        snap = codec.loads(data, source=f"snapshot {where}")
        host = _label(snap.hostname, snap.netns)
        return [(host, advertisements(snap, ranges, host))]
    return [_from_doc(doc, where)]


def _from_doc(doc: Any, where: str) -> Connector:
    want = schema_id("fleet-facts")
    if not isinstance(doc, dict) or doc.get("schema") != want:
        got = doc.get("schema") if isinstance(doc, dict) else type(doc).__name__
        raise BadInputError(f"{where}: expected a snapshot or a {want} document, got {got!r}")
    return str(doc["host"]), ads_from_doc(doc, where)


def _read(where: str) -> bytes:
    """A regular file (a FIFO or device is refused, never blocked on) or stdin, bounded."""
    try:
        if where == "-":
            return read_stream(sys.stdin.buffer, INPUT_LIMIT)
        return read_bounded(Path(where), INPUT_LIMIT)
    except OSError as exc:
        raise BadInputError(f"{where}: cannot read ({exc.strerror or exc})") from exc


def _label(hostname: str, netns: str | None) -> str:
    return f"{hostname}/{netns}" if netns else hostname


# -- output ----------------------------------------------------------------------------
def _format_facts(doc: dict[str, Any]) -> RenderableType:
    lines: list[RenderableType] = [Text(f"meshpath fleet facts: {doc['host']}", style="bold")]
    for ad in doc["advertisements"]:
        lp = "-" if ad["local_pref"] is None else ad["local_pref"]
        med = "-" if ad["med"] is None else ad["med"]
        lines.append(
            Text(
                f"  to {ad['peer']}: {', '.join(ad['prefixes'])}  AS path length "
                f"{ad['as_path_length']}, local-pref {lp}, MED {med}"
            )
        )
    if not doc["advertisements"]:
        lines.append(Text("  no Cloudflare range advertised over BGP", style="dim"))
    return Group(*lines)


def _format_check(hosts: list[str], findings: tuple[Finding, ...]) -> RenderableType:
    parts: list[RenderableType] = [Text(f"meshpath fleet check: {', '.join(hosts)}", style="bold")]
    for f in findings:
        parts.append(Text(f"{f.id} {f.severity.value:<7} {f.title}", style="bold red"))
        parts += [Text(f"    evidence: {e}", style="dim") for e in f.evidence]
        parts.append(Text(f"    why: {f.why}"))
        parts += [Text(f"    fix: {c}", style="green") for c in f.fix_commands]
    verdict = "FLEET OK" if not findings else f"FLEET BROKEN ({len(findings)} finding(s))"
    parts.append(Text(verdict, style="bold green" if not findings else "bold red"))
    return Group(*parts)
