"""The `meshpath` command line (Typer + Rich): thin; the work happens in the library.

Exit codes (documented in the README):
    0  ok / path works
    1  findings: a check failed, the path is broken
    2  usage error or bad input (snapshot, CIDR, config, target, interface, namespace name)
    3  environment problem (not root, missing tool, a command failed)
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import click
import typer

from meshpath import __version__
from meshpath.cli import (
    doctor_cmd,
    explain_cmd,
    fix_cmd,
    fleet_cmd,
    lab_cmd,
    ranges_cmd,
    sim_cmd,
    snapshot_cmd,
    trace_cmd,
    verify_cmd,
    watch_cmd,
    worker_cmd,
)
from meshpath.cli.argv import hoist_global_options
from meshpath.cli.context import AppContext, configure_logging, error_console
from meshpath.config import load_settings
from meshpath.errors import EXIT_BAD_INPUT, MeshpathError

app = typer.Typer(
    name="meshpath",
    help="Make Worker -> Cloudflare Mesh -> WARP Connector -> private network work, and prove it.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    # --install-completion / --show-completion for bash, zsh, fish (README "Shell completion").
    add_completion=True,
)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"meshpath {__version__}")
        raise typer.Exit(0)


@app.callback()
def _root(
    ctx: typer.Context,
    json_output: Annotated[
        bool, typer.Option("--json", help="Machine-readable JSON output.")
    ] = False,
    debug: Annotated[bool, typer.Option("--debug", help="Show tracebacks on errors.")] = False,
    config: Annotated[
        Path | None,
        typer.Option("--config", help="Config file (default /etc/meshpath/meshpath.toml)."),
    ] = None,
    range_override: Annotated[
        list[str] | None,
        typer.Option("--range", help="Override a Cloudflare range: KEY=CIDR (repeatable)."),
    ] = None,
    quiet: Annotated[
        bool, typer.Option("--quiet", "-q", help="Only results and errors: no progress.")
    ] = False,
    verbose: Annotated[
        int, typer.Option("--verbose", "-v", count=True, help="More detail on stderr (-vv).")
    ] = 0,
    version: Annotated[
        bool,
        typer.Option("--version", callback=_version, is_eager=True, help="Print the version."),
    ] = False,
) -> None:
    """Global options may also follow the subcommand: `meshpath doctor --json`."""
    verbosity = -1 if quiet else verbose
    configure_logging(verbosity)
    settings = load_settings(config, range_override or ())
    ctx.obj = AppContext(
        settings=settings, json_output=json_output, debug=debug, verbosity=verbosity
    )


_COMMANDS = (
    snapshot_cmd,
    ranges_cmd,
    lab_cmd,
    trace_cmd,
    sim_cmd,
    doctor_cmd,
    fix_cmd,
    verify_cmd,
    worker_cmd,
    explain_cmd,
    watch_cmd,
    fleet_cmd,
)
for _module in _COMMANDS:
    _module.register(app)


def main(argv: list[str] | None = None) -> int:
    """Run the CLI; map meshpath errors to one line on stderr and an exit code."""
    args = hoist_global_options(sys.argv[1:] if argv is None else argv)
    debug = "--debug" in args[: args.index("--")] if "--" in args else "--debug" in args
    command = typer.main.get_command(app)
    try:
        result = command.main(args=args, prog_name="meshpath", standalone_mode=False)
    except MeshpathError as exc:
        return _fail(exc, exc.exit_code, debug)
    except click.exceptions.Exit as exc:
        return exc.exit_code
    except click.ClickException as exc:  # usage errors: unknown option, not a number, ...
        if debug:
            raise
        ctx = exc.ctx if isinstance(exc, click.UsageError) else None
        hint = f" (see '{ctx.command_path} --help')" if ctx is not None else ""
        return _fail(exc.format_message() + hint, EXIT_BAD_INPUT, debug)
    except click.exceptions.Abort:
        error_console().print("meshpath: interrupted")
        return 130
    except KeyboardInterrupt:
        error_console().print("meshpath: interrupted")
        return 130
    return result if isinstance(result, int) else 0


def _fail(exc: Exception | str, code: int, debug: bool) -> int:
    """One line on stderr, whatever the message holds (a name given with a newline)."""
    if debug and isinstance(exc, Exception):
        raise exc
    text = str(exc).replace("\r", "\\r").replace("\n", "\\n")
    error_console().print(f"meshpath: error: {text}", markup=False, highlight=False)
    return code


def run() -> None:
    """Console-script entry point."""
    sys.exit(main())
