"""`meshpath snapshot`: collect the host state (or a namespace's) and save or print it."""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from meshpath.cli.context import app_context
from meshpath.collect import collect_snapshot
from meshpath.errors import BadInputError
from meshpath.state import Snapshot, codec


def register(app: typer.Typer) -> None:
    app.command("snapshot")(snapshot)


def snapshot(
    ctx: typer.Context,
    output: Annotated[Path | None, typer.Option("-o", "--output", help="Write to FILE.")] = None,
    netns: Annotated[
        str | None, typer.Option("--netns", help="Collect inside this network namespace.")
    ] = None,
    frr_vty_dir: Annotated[
        Path | None,
        typer.Option("--frr-vty-dir", help="FRR's vty socket dir, if not /var/run/frr[/NS]."),
    ] = None,
    input_file: Annotated[
        Path | None,
        typer.Option("--input", help="Load and validate a saved snapshot instead of collecting."),
    ] = None,
) -> None:
    """Collect links, addresses, all routing tables, rules, nftables, sysctls, FRR and WARP."""
    actx = app_context(ctx)
    if input_file is not None and netns is not None:
        raise BadInputError("--input and --netns exclude each other: a saved snapshot was taken")
    with actx.progress("collecting links, addresses, routes, rules, nftables, FRR"):
        snap = (
            codec.load(input_file)
            if input_file is not None
            else collect_snapshot(netns=netns, frr_vty_dir=frr_vty_dir)
        )
    if output is not None:
        codec.save(snap, output)
    if actx.json_output:
        actx.console.out(codec.dumps(snap, indent=2).decode(), highlight=False)
        return
    actx.console.print(format_summary(snap))
    if output is not None:
        actx.say(f"saved to {output}")


def format_summary(snap: Snapshot) -> Table:
    """A one-screen overview of a snapshot."""
    where = f"netns {snap.netns}" if snap.netns else "host"
    table = Table(title=f"{snap.hostname} ({where}), kernel {snap.kernel}, {snap.taken_at}")
    table.add_column("part")
    table.add_column("content")
    links = ", ".join(f"{link.name}({link.kind or 'dev'},{link.operstate})" for link in snap.links)
    table.add_row("links", links)
    per_table = Counter(route.table for route in snap.routes)
    table.add_row("routes", ", ".join(f"table {t}: {n}" for t, n in sorted(per_table.items())))
    table.add_row("rules", str(len(snap.rules)))
    nft_tables = (
        sorted({f"{c.family} {c.table}" for c in snap.nft.base_chains})
        if snap.nft.available
        else ["nft not available"]
    )
    table.add_row("nftables", ", ".join(nft_tables) or "empty")
    table.add_row("ip_forward", "on" if snap.sysctls.ip_forward else "off")
    table.add_row("frr", "running" if snap.frr.running else "not running")
    table.add_row("warp", snap.warp.status or ("absent" if not snap.warp.available else "?"))
    return table
