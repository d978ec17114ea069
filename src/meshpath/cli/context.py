"""What every command receives: settings, output mode, and where to print."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import typer
from rich.console import Console, RenderableType

from meshpath.config import Settings
from meshpath.schemas import tagged


def error_console() -> Console:
    return Console(stderr=True, soft_wrap=True)


def configure_logging(verbosity: int) -> None:
    """-v shows meshpath's INFO log on stderr, -vv DEBUG; --quiet only errors."""
    level = {-1: logging.ERROR, 0: logging.WARNING, 1: logging.INFO}.get(verbosity, logging.DEBUG)
    logger = logging.getLogger("meshpath")
    logger.setLevel(level)
    if not logger.handlers:
        handler = logging.StreamHandler()
        handler.setFormatter(logging.Formatter("meshpath: %(message)s"))
        logger.addHandler(handler)


@dataclass(slots=True)
class AppContext:
    """Global options, resolved once in the root callback."""

    settings: Settings
    json_output: bool = False
    debug: bool = False
    # -1 --quiet, 0 normal, 1+ --verbose (repeatable).
    verbosity: int = 0
    console: Console = field(default_factory=lambda: Console(soft_wrap=True))

    @property
    def quiet(self) -> bool:
        return self.verbosity < 0

    def say(self, message: str) -> None:
        """A human progress or status line: never with --json or --quiet (stdout stays data)."""
        if not (self.json_output or self.quiet):
            self.console.print(message, markup=False, highlight=False)

    @contextmanager
    def progress(self, label: str) -> Iterator[Any]:
        """A spinner on stderr for work that can take more than a second.

        Shown only on a terminal and never with --quiet; --json output stays clean because the
        spinner goes to stderr. Yields an object with ``update(label)``.
        """
        stderr = error_console()
        if self.quiet or not stderr.is_terminal:
            yield _NoProgress()
            return
        with stderr.status(label) as status:
            yield status

    def emit(
        self, data: dict[str, Any], human: RenderableType | None = None, *, schema: str
    ) -> None:
        """Print ``data`` as JSON (tagged with its ``schema``, see :mod:`meshpath.schemas`)
        with --json, else the human renderable (or the data)."""
        if self.json_output or human is None:
            doc = tagged(schema, data)
            self.console.out(json.dumps(doc, indent=2, sort_keys=False), highlight=False)
        else:
            self.console.print(human)


def app_context(ctx: typer.Context) -> AppContext:
    obj = ctx.find_root().obj
    if not isinstance(obj, AppContext):  # only when a command is invoked without the root
        raise RuntimeError("meshpath CLI context missing")
    return obj


class _NoProgress:
    def update(self, _label: str) -> None:
        """Nothing shown: --quiet, or stderr is not a terminal."""
