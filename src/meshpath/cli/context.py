"""What every command receives: settings, output mode, and where to print."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

import typer
from rich.console import Console, RenderableType

from meshpath.config import Settings


def error_console() -> Console:
    return Console(stderr=True, soft_wrap=True)


@dataclass(slots=True)
class AppContext:
    """Global options, resolved once in the root callback."""

    settings: Settings
    json_output: bool = False
    debug: bool = False
    console: Console = field(default_factory=lambda: Console(soft_wrap=True))

    def emit(self, data: Any, human: RenderableType | None = None) -> None:
        """Print ``data`` as JSON with --json, else the human renderable (or the data)."""
        if self.json_output or human is None:
            self.console.out(json.dumps(data, indent=2, sort_keys=False), highlight=False)
        else:
            self.console.print(human)


def app_context(ctx: typer.Context) -> AppContext:
    obj = ctx.find_root().obj
    if not isinstance(obj, AppContext):  # only when a command is invoked without the root
        raise RuntimeError("meshpath CLI context missing")
    return obj
