"""`meshpath lab warp …`: the lab's WARP client (reconnect, status)."""

from __future__ import annotations

import typer
from rich.text import Text

from meshpath.cli import lab_cmd
from meshpath.cli.context import app_context
from meshpath.cli.lab_options import Instance
from meshpath.lab import Lab


def register(lab_app: typer.Typer) -> None:
    lab_app.add_typer(warp_app, name="warp")


warp_app = typer.Typer(help="The lab's WARP client (the emulator on the connector).")


@warp_app.command("reconnect")
def warp_reconnect(ctx: typer.Context, instance: Instance = None) -> None:
    """Delete and re-create CloudflareWARP, as a WARP reconnect does; WARP re-installs its
    state on the new device (routes that others put on the old one are gone)."""
    actx = app_context(ctx)
    lab_cmd.preflight()
    lab = Lab.attach(instance, run_root=lab_cmd.RUN_ROOT)
    before = lab.warp_status().get("ifindex")
    seconds = lab.warp_reconnect()
    after = lab.warp_status()
    data = {"seconds": round(seconds, 3), "ifindex_before": before, "ifindex": after.get("ifindex")}
    text = f"CloudflareWARP re-created (ifindex {before} -> {after.get('ifindex')}); WARP's"
    actx.emit(data, Text(f"{text} state back after {seconds:.2f}s"), schema="lab-warp-reconnect")


@warp_app.command("status")
def warp_status(ctx: typer.Context, instance: Instance = None) -> None:
    """The WARP emulator's state: status, Split Tunnels mode and list, device, generation."""
    actx = app_context(ctx)
    lab = Lab.attach(instance, run_root=lab_cmd.RUN_ROOT)
    state = lab.warp_status()
    entries = ", ".join(e.get("address") or e.get("host", "") for e in state.get("entries", []))
    line = (
        f"{state.get('status')}; {state.get('mode')} mode: {entries}; "
        f"ifindex {state.get('ifindex')}, generation {state.get('generation')}"
    )
    actx.emit(state, Text(line), schema="lab-warp-status")
