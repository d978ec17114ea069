"""The body of `meshpath watch` (see :mod:`meshpath.cli.watch_cmd` for its options)."""

from __future__ import annotations

import dataclasses
import os
import sys
from collections.abc import Callable
from pathlib import Path

import typer

from meshpath.checks.targets import Target, parse_target
from meshpath.cli.common import require_root
from meshpath.cli.context import AppContext, app_context
from meshpath.collect.netns import inside_netns, netns_path
from meshpath.errors import EXIT_FINDINGS, EXIT_OK, BadInputError
from meshpath.runner import SubprocessRunner
from meshpath.state import codec
from meshpath.usecase.host import state_dir_of
from meshpath.watch import metrics, unit
from meshpath.watch.evaluate import Evaluator, PeerState
from meshpath.watch.keeper import Backoff, Keeper
from meshpath.watch.loop import LoopOptions, Watcher
from meshpath.watch.sources import bgp_probe, open_sources

NO_LISTEN = ("", "none")


@dataclasses.dataclass(frozen=True, slots=True)
class Options:
    netns: str | None
    listen: str
    target: tuple[str, ...]
    heal: bool
    textfile: Path | None
    interval: float
    refresh: float
    heal_calm: float
    root: Path
    state_dir: Path | None
    once: bool
    snapshot: Path | None
    install_unit: bool


def run(ctx: typer.Context, o: Options) -> int:
    """Validate everything first (bad input: exit 2, nothing started), then act."""
    actx = app_context(ctx)
    targets, listener = _validate(o)
    if o.install_unit:
        return _install(actx, o, _service_args(o, listener, targets), listener)
    evaluator = Evaluator(actx.settings, SubprocessRunner(netns=o.netns), o.netns, targets)
    if o.once:
        return _once(actx, evaluator, o.snapshot, o.textfile)
    require_root("meshpath watch")
    keeper = None
    if o.heal:
        states = state_dir_of(o.root, o.state_dir)
        keeper = Keeper(evaluator.runner, states, o.root, o.netns, Backoff(calm=o.heal_calm))
    loop = LoopOptions(o.interval, o.refresh, json_lines=actx.json_output)
    return _run(evaluator, listener, o.textfile, keeper, loop)


def _validate(o: Options) -> tuple[tuple[Target, ...], metrics.Listener | None]:
    for name, value in (("--interval", o.interval), ("--refresh", o.refresh)):
        if not value > 0:
            raise BadInputError(f"{name} {value}: must be a positive number of seconds")
    if o.heal_calm < 0:
        raise BadInputError(f"--heal-calm {o.heal_calm}: must be 0 or more seconds")
    targets = tuple(parse_target(t) for t in o.target)
    listener = None if o.listen.strip().lower() in NO_LISTEN else metrics.parse_listen(o.listen)
    if o.textfile is not None and not o.textfile.is_dir():
        raise BadInputError(f"--textfile {o.textfile}: not a directory")
    if o.snapshot is not None and not o.once:
        raise BadInputError("--snapshot needs --once (a saved snapshot does not change)")
    if o.netns is not None and not o.install_unit:
        netns_path(o.netns)  # exists: a missing namespace is bad input, before anything runs
    return targets, listener


def _once(
    actx: AppContext, evaluator: Evaluator, snapshot: Path | None, textfile: Path | None
) -> int:
    saved = codec.load(snapshot) if snapshot is not None else None
    evaluation = evaluator()[1] if saved is None else evaluator.offline(saved)
    view = metrics.WatchView(evaluation=evaluation, evaluations=1)
    registry = metrics.new_registry(lambda: view)
    if textfile is not None:
        metrics.write_textfile(textfile, registry)
    if actx.json_output:  # the evaluation itself; the metrics are the text form
        actx.emit(dataclasses.asdict(evaluation), schema="watch-evaluation")
    else:
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
    return lambda: bgp_probe(evaluator.runner, evaluator.netns)


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
    try:
        sys.stdout.write(text + "\n")
        sys.stdout.flush()
    except OSError:
        pass  # the reader went away (a restarted journald): keep watching and serving metrics


def _service_args(
    o: Options, listener: metrics.Listener | None, targets: tuple[Target, ...]
) -> list[str]:
    """The watch options the service runs with (paths made absolute; no --root)."""
    args = ["--listen", str(listener) if listener else "none"]
    args += ["--netns", o.netns] if o.netns else []
    for t in targets:
        args += ["--target", str(t)]
    args += ["--heal"] if o.heal else []
    args += ["--textfile", str(o.textfile.resolve())] if o.textfile else []
    args += ["--interval", f"{o.interval:g}", "--refresh", f"{o.refresh:g}"]
    args += ["--state-dir", str(o.state_dir.resolve())] if o.state_dir else []
    return args


def _install(
    actx: AppContext, o: Options, args: list[str], listener: metrics.Listener | None
) -> int:
    options = unit.UnitOptions(
        argv=(sys.executable, "-m", "meshpath", "watch", *args),
        state_dir=str(o.state_dir.resolve()) if o.state_dir else unit.DEFAULT_STATE_DIR,
        textfile=str(o.textfile.resolve()) if o.textfile else None,
        netns=o.netns,
        loopback_only=listener is None or unit.loopback(listener.host),
        frr_group=unit.existing_group("frrvty"),
    )
    path, changed = unit.install_unit(o.root, unit.render_unit(options))
    data = {"unit": str(path), "changed": changed}
    verb = "wrote" if changed else "unchanged:"
    how = "systemctl daemon-reload && systemctl enable --now meshpath-watch"
    actx.emit(data, f"{verb} {path}\nthen: {how}", schema="watch-unit")
    return EXIT_OK
