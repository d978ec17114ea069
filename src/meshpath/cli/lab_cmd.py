"""`meshpath lab …`: the namespace lab (up, status, exec, run, down, demo)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Group, RenderableType
from rich.text import Text

from meshpath.cli.context import AppContext, app_context
from meshpath.cli.lab_options import Instance
from meshpath.cli.lab_render import (
    format_result,
    format_status,
    format_step,
    format_summary,
    format_watch,
    format_worker,
)
from meshpath.errors import BadInputError
from meshpath.lab import (
    SCENARIO_NAMES,
    Lab,
    ScenarioResult,
    clean_leftovers,
    get_scenario,
    remove_lab,
    run_many,
)
from meshpath.lab import (
    preflight as preflight,  # re-exported: the lab subcommands (and tests) look it up here
)
from meshpath.lab.core import terminate_as_interrupt
from meshpath.lab.demo import DemoStep, run_demo
from meshpath.lab.parallel import default_jobs
from meshpath.lab.scenarios import ALL_NAMES
from meshpath.lab.state import RUN_ROOT as RUN_ROOT
from meshpath.lab.state import known_instances, read_state
from meshpath.lab.up import UpOptions, bring_up
from meshpath.lab.worker.user import user_app

# Each job is a whole lab (7 namespaces, workerd, FRR): more than this is a typo.
MAX_JOBS = 16

lab_app = typer.Typer(
    help="A network-namespace lab of the whole Worker -> Mesh -> Connector -> LAN path.",
    no_args_is_help=True,
)


def register(app: typer.Typer) -> None:
    from meshpath.cli import lab_node_cmd, lab_warp_cmd  # they use this module's names

    lab_node_cmd.register(lab_app)
    lab_warp_cmd.register(lab_app)
    app.add_typer(lab_app, name="lab")


@lab_app.command("up")
def up(
    ctx: typer.Context,
    scenario: Annotated[
        str, typer.Argument(help=f"One of: {', '.join(SCENARIO_NAMES)}.")
    ] = "broken",
    instance: Instance = None,
    no_fix: Annotated[
        bool, typer.Option("--no-fix", help="Leave out the scenario's fix step.")
    ] = False,
    worker: Annotated[
        Path | None,
        typer.Option(
            "--worker",
            help="Also run your Worker (dir with wrangler.json/.jsonc/.toml) in workerd: each "
            "vpc_networks binding is the lab's Mesh.",
        ),
    ] = None,
    watch: Annotated[
        bool, typer.Option("--watch", help="Run meshpath watch in the connector namespace.")
    ] = False,
    heal: Annotated[bool, typer.Option("--heal", help="With --watch: run the keeper.")] = False,
) -> None:
    """Bring a lab up for SCENARIO (with its fix step) and leave it running."""
    actx = app_context(ctx)
    scn = get_scenario(scenario)
    if heal and not watch:
        raise BadInputError("--heal runs the keeper of meshpath watch: add --watch")
    app = user_app(worker) if worker is not None else None  # bad input fails before building
    options = UpOptions(instance, RUN_ROOT, app, no_fix=no_fix, watch=watch, heal=heal)
    with actx.console.status(f"bringing up a lab ({scn.name})"):
        status = bring_up(scn, options)
    human: list[RenderableType] = [format_status([status]), format_worker(status["worker"])]
    if "watch" in status:
        human.append(format_watch(status["watch"]))
    actx.emit(status, Group(*human), schema="lab-up")


@lab_app.command("status")
def status(ctx: typer.Context, instance: Instance = None) -> None:
    """Show running labs: namespaces, their processes, scenario and fix."""
    actx = app_context(ctx)
    names = [instance] if instance is not None else sorted(known_instances(RUN_ROOT))
    found = [Lab(n, RUN_ROOT).status() for n in names if read_state(RUN_ROOT, n) is not None]
    actx.emit({"labs": found}, format_status(found), schema="lab-status")


@lab_app.command("run")
def run(
    ctx: typer.Context,
    scenario: Annotated[str, typer.Argument(help=f"'all' or one of: {', '.join(SCENARIO_NAMES)}.")],
    instance: Instance = None,
    jobs: Annotated[
        int | None,
        typer.Option(
            "--jobs",
            "-j",
            help="Scenarios at once, each in a lab of its own (default: the CPU count, "
            "at least 2); 1 runs them one after another in one lab.",
        ),
    ] = None,
) -> None:
    """Run scenarios in a fresh lab and check each expected outcome (exit 1 on a failure).

    'all' is every scenario but reconnect, ha and ha-equal (run them by name)."""
    actx = app_context(ctx)
    names = list(ALL_NAMES) if scenario == "all" else [get_scenario(scenario).name]
    if jobs is not None and not 1 <= jobs <= MAX_JOBS:
        raise BadInputError(f"--jobs {jobs}: expected 1 to {MAX_JOBS}")
    workers = jobs if jobs is not None else default_jobs(len(names))

    def show(result: ScenarioResult) -> None:
        if not actx.json_output:
            actx.console.print(format_result(result))

    with terminate_as_interrupt(), actx.console.status("running lab scenarios"):
        results = run_many(names, instance, show, jobs=workers)
    if actx.json_output:
        actx.emit({"results": [r.to_dict() for r in results]}, schema="lab-run")
    else:
        actx.console.print(format_summary(results))
    if not all(r.passed for r in results):
        raise typer.Exit(1)


@lab_app.command("down")
def down(ctx: typer.Context, instance: Instance = None) -> None:
    """Tear a lab down (default: every lab no live process owns) and remove leftovers."""
    actx = app_context(ctx)
    preflight()
    removed = []
    if instance is not None:
        remove_lab(instance, RUN_ROOT)
        removed.append(instance)
    removed += clean_leftovers(RUN_ROOT, everything=instance is None)
    actx.emit(
        {"removed": removed},
        Text(f"removed: {', '.join(removed) or 'nothing'}"),
        schema="lab-down",
    )


@lab_app.command("demo")
def demo(ctx: typer.Context, instance: Instance = None) -> None:
    """The field report in two minutes: the failure, the bgp fix, the proof."""
    actx = app_context(ctx)
    steps: list[DemoStep] = []
    with terminate_as_interrupt(), actx.console.status("starting") as spinner:
        steps = run_demo(
            lambda step: _show_step(actx, step),
            lambda label: spinner.update(label),
            instance,
        )
    data = [
        {"title": s.title, "ok": s.ok, "lines": list(s.lines), "seconds": s.seconds} for s in steps
    ]
    done = Text("lab torn down; every step checked", style="bold green")
    actx.emit({"steps": data}, done, schema="lab-demo")
    if not all(s.ok for s in steps):
        raise typer.Exit(1)


def _show_step(actx: AppContext, step: DemoStep) -> None:
    if not actx.json_output:
        actx.console.print(format_step(step), soft_wrap=False)  # panels must fold long lines
