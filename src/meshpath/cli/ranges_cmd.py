"""`meshpath ranges`: the Cloudflare ranges in force and their CGNAT neighbours."""

from __future__ import annotations

import typer
from rich.table import Table

from meshpath.cli.context import app_context
from meshpath.config import Settings
from meshpath.ranges import DEFAULT_RANGES, NEIGHBOURS, RANGE_INFO


def register(app: typer.Typer) -> None:
    app.command("ranges")(ranges)


def ranges(ctx: typer.Context) -> None:
    """Show Cloudflare's reserved ranges (with overrides) and who else uses that space."""
    actx = app_context(ctx)
    actx.emit(ranges_data(actx.settings), format_ranges(actx.settings), schema="ranges")


def ranges_data(settings: Settings) -> dict[str, object]:
    current = dict(settings.ranges.items())
    defaults = dict(DEFAULT_RANGES.items())
    return {
        "source": settings.source,
        "ranges": [
            {
                "key": info.key,
                "cidr": str(current[info.key]),
                "default": str(defaults[info.key]),
                "purpose": info.purpose,
            }
            for info in RANGE_INFO
        ],
        "neighbours": [
            {
                "name": n.name,
                "cidr": str(n.network),
                "excluded": [str(e) for e in n.excluded],
                "note": n.note,
            }
            for n in NEIGHBOURS
        ],
    }


def format_ranges(settings: Settings) -> Table:
    current = dict(settings.ranges.items())
    defaults = dict(DEFAULT_RANGES.items())
    table = Table(title=f"Cloudflare ranges (from {settings.source})")
    for col in ("key", "cidr", "purpose"):
        table.add_column(col)
    for info in RANGE_INFO:
        cidr, default = current[info.key], defaults[info.key]
        mark = "" if cidr == default else f" (default {default})"
        table.add_row(info.key, f"{cidr}{mark}", info.purpose)
    for n in NEIGHBOURS:
        excl = ", ".join(str(e) for e in n.excluded)
        table.add_row(f"[dim]{n.name}[/dim]", f"{n.network} except {excl}", n.note)
    return table
