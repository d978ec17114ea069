"""`meshpath verify`: prove the fix (the work: :mod:`meshpath.usecase.verify`)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import msgspec
import typer

from meshpath.cli import common
from meshpath.cli.common import LabOpt, NetnsOpt, RootOpt, StateOpt
from meshpath.cli.context import app_context
from meshpath.cli.fix_render import format_checks
from meshpath.usecase import verify


def register(app: typer.Typer) -> None:
    app.command("verify")(verify_cmd)


def verify_cmd(
    ctx: typer.Context,
    peer: Annotated[str | None, typer.Option("--peer", help="Check this BGP peer.")] = None,
    netns: NetnsOpt = None,
    root: RootOpt = Path("/"),
    state_dir: StateOpt = None,
    mode: Annotated[
        str | None, typer.Option("--mode", help="Expect this mode (default: the journal's).")
    ] = None,
    lab_worker: LabOpt = None,
) -> int:
    """Prove the fix: FRR's, the kernel's and nft's view, and a round trip in the lab."""
    actx = app_context(ctx)
    host = common.host_for(netns, root, state_dir)
    expect = verify.expectation(actx.settings, host.state_dir, netns, mode, peer)
    checks = verify.run(host, expect, common.round_trip(lab_worker))
    ok = all(c.ok for c in checks)
    data = {
        "ok": ok,
        "expect": msgspec.to_builtins(expect),
        "checks": [c.to_dict() for c in checks],
    }
    actx.emit(data, format_checks(checks, ok), schema="verify")
    return 0 if ok else 1
