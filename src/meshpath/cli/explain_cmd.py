"""`meshpath explain [ERROR]`: what an error a Worker sees through Mesh means, and what to run."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.console import Group, RenderableType
from rich.text import Text

from meshpath.checks.targets import Target, parse_target
from meshpath.cli.context import app_context
from meshpath.worker.explain import CATALOGUE, Explanation, commands_for, explain


def register(app: typer.Typer) -> None:
    app.command("explain")(explain_cmd)


def explain_cmd(
    ctx: typer.Context,
    error: Annotated[
        str | None,
        typer.Argument(help='The error, e.g. "handshake timeout" or a whole wrangler tail line.'),
    ] = None,
    target: Annotated[
        str | None,
        typer.Option(
            "--target", help="The service the Worker called (IP:PORT): fills the commands."
        ),
    ] = None,
) -> None:
    """Which layer failed, what it means, and the commands to run on the connector."""
    actx = app_context(ctx)
    tgt = parse_target(target) if target else None
    if error is None:
        actx.emit(
            {"entries": [e.as_dict(tgt) for e in CATALOGUE]},
            format_catalogue(),
            schema="explain-list",
        )
        return
    entry = explain(error)
    actx.emit(entry.as_dict(tgt), format_explanation(entry, tgt), schema="explain")


def format_explanation(entry: Explanation, target: Target | None) -> RenderableType:
    lines: list[RenderableType] = [
        Text(f"Error: {entry.key}", style="bold"),
        Text(f"  layer:   {entry.layer}"),
        Text(f"  meaning: {entry.meaning}"),
        Text("  on the connector:"),
        *(Text(f"    {c}", style="green") for c in commands_for(entry, target)),
        Text(f"  source:  {entry.source}", style="dim"),
    ]
    return Group(*lines)


def format_catalogue() -> RenderableType:
    lines: list[RenderableType] = [Text("errors a Worker sees through Mesh:", style="bold")]
    for e in CATALOGUE:
        lines.append(Text(f"  {e.key:<26} {e.layer}"))
    lines.append(Text('meshpath explain "<error>" for what it means and what to run', style="dim"))
    return Group(*lines)
