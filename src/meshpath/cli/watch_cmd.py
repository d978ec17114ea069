"""`meshpath watch`: the path's health, continuously, as Prometheus metrics (and a keeper).

The options live here; the work in :mod:`meshpath.cli.watch_run`, imported only when the
command runs (prometheus_client alone takes ~80 ms to import: no other command pays it).
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from meshpath.cli import numbers

DEFAULT_LISTEN = "127.0.0.1:9847"


def register(app: typer.Typer) -> None:
    app.command("watch")(watch)


def watch(
    ctx: typer.Context,
    netns: Annotated[
        str | None, typer.Option("--netns", help="Watch this network namespace.")
    ] = None,
    listen: Annotated[
        str, typer.Option("--listen", help="Metrics on ADDRESS:PORT ('none': no listener).")
    ] = DEFAULT_LISTEN,
    target: Annotated[
        list[str] | None,
        typer.Option("--target", help="Worker target IP:PORT (repeatable). Default: each LAN."),
    ] = None,
    heal: Annotated[
        bool, typer.Option("--heal", help="Put back what the newest applied fix owns.")
    ] = False,
    textfile: Annotated[
        Path | None,
        typer.Option("--textfile", help="Also write DIR/meshpath.prom (node_exporter)."),
    ] = None,
    interval: Annotated[
        float,
        typer.Option(
            "--interval",
            help="Seconds between FRR (BGP) polls.",
            metavar="S",
            parser=numbers.seconds("--interval", numbers.WATCH_SECONDS_MAX),
        ),
    ] = 10.0,
    refresh: Annotated[
        float,
        typer.Option(
            "--refresh",
            help="Re-evaluate at least this often (seconds).",
            metavar="S",
            parser=numbers.seconds("--refresh", numbers.WATCH_SECONDS_MAX),
        ),
    ] = 300.0,
    heal_calm: Annotated[
        float,
        typer.Option(
            "--heal-calm",
            help="A drift back within this many seconds of a heal "
            "waits with exponential back-off (1 s to 5 min).",
            metavar="S",
            parser=numbers.seconds("--heal-calm", numbers.WATCH_SECONDS_MAX, zero=True),
        ),
    ] = 60.0,  # fmt: skip
    root: Annotated[
        Path, typer.Option("--root", help="Root for the journal and --install-unit (tests).")
    ] = Path("/"),
    state_dir: Annotated[
        Path | None,
        typer.Option("--state-dir", help="Journal dir (default ROOT/var/lib/meshpath)."),
    ] = None,
    once: Annotated[
        bool, typer.Option("--once", help="Evaluate once, print the metrics, exit 0/1.")
    ] = False,
    snapshot: Annotated[
        Path | None, typer.Option("--snapshot", help="With --once: a saved snapshot.")
    ] = None,
    install_unit: Annotated[
        bool, typer.Option("--install-unit", help="Write meshpath-watch.service under --root.")
    ] = False,
) -> int:
    """Watch the path: react to kernel, nftables and FRR changes; serve Prometheus metrics."""
    from meshpath.cli import watch_run

    return watch_run.run(
        ctx,
        watch_run.Options(
            netns=netns,
            listen=listen,
            target=tuple(target or ()),
            heal=heal,
            textfile=textfile,
            interval=interval,
            refresh=refresh,
            heal_calm=heal_calm,
            root=root,
            state_dir=state_dir,
            once=once,
            snapshot=snapshot,
            install_unit=install_unit,
        ),
    )
