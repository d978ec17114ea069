"""`meshpath watch`: the path's health, continuously, as Prometheus metrics (and a keeper)."""

from __future__ import annotations

import dataclasses
import grp
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Annotated

import typer

from meshpath.checks.targets import Target, parse_target
from meshpath.cli.context import AppContext, app_context
from meshpath.cli.fix_cmd import require_root, state_dir_of
from meshpath.collect.frr import collect_frr
from meshpath.collect.netns import inside_netns, netns_path
from meshpath.errors import EXIT_FINDINGS, EXIT_OK, BadInputError
from meshpath.runner import SubprocessRunner
from meshpath.state import codec
from meshpath.watch import metrics, unit
from meshpath.watch.evaluate import Evaluation, Evaluator, PeerState, peer_states
from meshpath.watch.keeper import Backoff, Keeper
from meshpath.watch.loop import LoopOptions, Watcher
from meshpath.watch.sources import open_sources

DEFAULT_LISTEN = "127.0.0.1:9847"
NO_LISTEN = ("", "none")


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
        float, typer.Option("--interval", help="Seconds between FRR (BGP) polls.")
    ] = 10.0,
    refresh: Annotated[
        float, typer.Option("--refresh", help="Re-evaluate at least this often (seconds).")
    ] = 300.0,
    heal_calm: Annotated[
        float,
        typer.Option(
            "--heal-calm",
            help="A drift back within this many seconds of a heal "
            "waits with exponential back-off (1 s to 5 min).",
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
    actx = app_context(ctx)
    for name, value in (("--interval", interval), ("--refresh", refresh)):
        if not value > 0:
            raise BadInputError(f"{name} {value}: must be a positive number of seconds")
    if heal_calm < 0:
        raise BadInputError(f"--heal-calm {heal_calm}: must be 0 or more seconds")
    targets = tuple(parse_target(t) for t in target or ())
    listener = None if listen.strip().lower() in NO_LISTEN else metrics.parse_listen(listen)
    if textfile is not None and not textfile.is_dir():
        raise BadInputError(f"--textfile {textfile}: not a directory")
    if snapshot is not None and not once:
        raise BadInputError("--snapshot needs --once (a saved snapshot does not change)")
    if netns is not None and not install_unit:
        netns_path(netns)  # exists: a missing namespace is bad input, before anything runs
    if install_unit:
        args = _service_args(netns, listener, targets, heal, textfile, interval, refresh, state_dir)
        return _install(actx, root, args, netns, listener, textfile, state_dir)
    evaluator = Evaluator(actx.settings, SubprocessRunner(netns=netns), netns, targets)
    if once:
        return _once(evaluator, snapshot, textfile)
    require_root("meshpath watch")
    states = state_dir_of(root, state_dir)
    keeper = (
        Keeper(evaluator.runner, states, root, netns, Backoff(calm=heal_calm)) if heal else None
    )
    return _run(evaluator, listener, textfile, keeper, LoopOptions(interval, refresh))


def _once(evaluator: Evaluator, snapshot: Path | None, textfile: Path | None) -> int:
    saved = codec.load(snapshot) if snapshot is not None else None
    evaluation = evaluator()[1] if saved is None else evaluator.offline(saved)
    view = metrics.WatchView(evaluation=evaluation, evaluations=1)
    registry = metrics.new_registry(lambda: view)
    if textfile is not None:
        metrics.write_textfile(textfile, registry)
    sys.stdout.write(metrics.exposition(registry).decode())
    return EXIT_OK if evaluation.ok else EXIT_FINDINGS


def _run(
    evaluator: Evaluator,
    listener: metrics.Listener | None,
    textfile: Path | None,
    keeper: Keeper | None,
    options: LoopOptions,
) -> int:
    netns = evaluator.netns
    sources = open_sources(netns)  # before the first evaluation: no change slips between
    holder: list[Watcher] = []
    registry = metrics.new_registry(lambda: holder[0].view)
    httpd = None
    try:
        if listener is not None:
            with inside_netns(netns):  # the endpoint lives in the watched namespace
                httpd = metrics.serve(listener, registry)
        watcher = Watcher(
            dataclasses.replace(options, journal="JOURNAL_STREAM" in os.environ),
            evaluator,
            sources,
            bgp_probe=_bgp_probe(evaluator),
            keeper=keeper,
            publish=_textfile_writer(textfile, registry, lambda: holder[0]),
            emit=_emit,
        )
        holder.append(watcher)
        started: dict[str, object] = {
            "netns": netns,
            "listen": str(listener) if listener else "none",
            "textfile": str(textfile) if textfile else None,
            "keeper": "on" if keeper else "off",
        }
        return watcher.run(started)
    finally:
        for source in sources:
            source.close()
        if httpd is not None:
            httpd.server_close()


def _bgp_probe(evaluator: Evaluator) -> Callable[[], tuple[PeerState, ...]]:
    return lambda: peer_states(collect_frr(evaluator.runner, evaluator.netns))


def _textfile_writer(
    textfile: Path | None, registry: metrics.Registry, watcher: Callable[[], Watcher]
) -> Callable[[metrics.WatchView], None]:
    def publish(_view: metrics.WatchView) -> None:
        if textfile is None:
            return
        try:
            metrics.write_textfile(textfile, registry)
        except OSError as exc:
            watcher().log("textfile_failed", {"error": str(exc)})

    return publish


def _emit(text: str) -> None:
    sys.stdout.write(text + "\n")
    sys.stdout.flush()


def _service_args(
    netns: str | None,
    listener: metrics.Listener | None,
    targets: tuple[Target, ...],
    heal: bool,
    textfile: Path | None,
    interval: float,
    refresh: float,
    state_dir: Path | None,
) -> list[str]:
    """The watch options the service runs with (paths made absolute)."""
    args = ["--listen", str(listener) if listener else "none"]
    args += ["--netns", netns] if netns else []
    for t in targets:
        args += ["--target", str(t)]
    args += ["--heal"] if heal else []
    args += ["--textfile", str(textfile.resolve())] if textfile else []
    args += ["--interval", f"{interval:g}", "--refresh", f"{refresh:g}"]
    args += ["--state-dir", str(state_dir.resolve())] if state_dir else []
    return args


def _install(
    actx: AppContext,
    root: Path,
    args: list[str],
    netns: str | None,
    listener: metrics.Listener | None,
    textfile: Path | None,
    state_dir: Path | None,
) -> int:
    options = unit.UnitOptions(
        argv=(sys.executable, "-m", "meshpath", "watch", *args),
        state_dir=str(state_dir.resolve()) if state_dir else unit.DEFAULT_STATE_DIR,
        textfile=str(textfile.resolve()) if textfile else None,
        netns=netns,
        loopback_only=listener is None or _loopback(listener.host),
        frr_group=_group("frrvty"),
    )
    path, changed = unit.install_unit(root, unit.render_unit(options))
    data = {"unit": str(path), "changed": changed}
    verb = "wrote" if changed else "unchanged:"
    how = "systemctl daemon-reload && systemctl enable --now meshpath-watch"
    actx.emit(data, f"{verb} {path}\nthen: {how}")
    return EXIT_OK


def _loopback(host: str) -> bool:
    return host == "::1" or host.startswith("127.")


def _group(name: str) -> str | None:
    try:
        grp.getgrnam(name)
    except KeyError:
        return None
    return name


__all__ = ["Evaluation", "register", "watch"]
