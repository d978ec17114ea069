"""`meshpath lab …`: the namespace lab (up, status, exec, run, down, demo)."""

from __future__ import annotations

import subprocess
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Group, RenderableType
from rich.panel import Panel
from rich.table import Table
from rich.text import Text

from meshpath.cli.context import AppContext, app_context
from meshpath.errors import BadInputError
from meshpath.lab import (
    FIXES,
    SCENARIO_NAMES,
    Lab,
    ScenarioResult,
    clean_leftovers,
    get_scenario,
    preflight,
    remove_lab,
    run_many,
)
from meshpath.lab.core import terminate_as_interrupt
from meshpath.lab.demo import DemoStep, run_demo
from meshpath.lab.state import RUN_ROOT, known_instances, read_state
from meshpath.runner import netns_argv

if TYPE_CHECKING:
    from meshpath.lab.watch import Watch

lab_app = typer.Typer(
    help="A network-namespace lab of the whole Worker -> Mesh -> Connector -> LAN path.",
    no_args_is_help=True,
)
Instance = Annotated[
    str | None, typer.Option("--instance", "-i", help="Lab instance id (default: the only one).")
]


def register(app: typer.Typer) -> None:
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
    with terminate_as_interrupt():
        lab = Lab.create(instance)
        try:
            with actx.console.status(f"bringing up lab {lab.instance} ({scn.name})"):
                lab.setup(scn)
                if scn.fix and not no_fix:
                    FIXES[scn.fix](lab)
                    lab.mark_fixed(scn.fix)
                watcher = _start_watch(lab, heal) if watch else None
        except BaseException:
            lab.down()
            raise
        lab.detach()
    status = lab.status()
    if watcher is None:
        actx.emit(status, format_status([status]))
        return
    where = _watch_info(lab, watcher)
    actx.emit({**status, "watch": where}, Group(format_status([status]), format_watch(where)))


def _start_watch(lab: Lab, heal: bool) -> Watch:
    from meshpath.lab.watch import Watch  # meshpath watch's imports, only when asked for

    return Watch.start(lab, heal=heal)


def _watch_info(lab: Lab, watcher: Watch) -> dict[str, str]:
    from meshpath.lab.watch import WATCH_LISTEN
    from meshpath.watch.metrics import TEXTFILE_NAME

    return {
        "namespace": lab.ns("conn"),
        "url": f"http://{WATCH_LISTEN}/metrics",
        "textfile": str(watcher.textfile / TEXTFILE_NAME),
        "log": str(watcher.log),
    }


def format_watch(where: dict[str, str]) -> Text:
    return Text(
        f"meshpath watch runs in {where['namespace']}: metrics {where['url']} (inside that "
        f"namespace only); textfile {where['textfile']}; log {where['log']}\n"
        f'  meshpath lab exec conn -- python3 -c "import urllib.request as u; '
        f"print(u.urlopen('{where['url']}').read().decode())\""
    )


@lab_app.command("status")
def status(ctx: typer.Context, instance: Instance = None) -> None:
    """Show running labs: namespaces, their processes, scenario and fix."""
    actx = app_context(ctx)
    names = [instance] if instance else sorted(known_instances(RUN_ROOT))
    found = [Lab(n).status() for n in names if read_state(RUN_ROOT, n) is not None]
    actx.emit({"labs": found}, format_status(found))


@lab_app.command("exec")
def exec_(
    node: Annotated[str, typer.Argument(help="edge, conn, router, svc, ts or lan.")],
    command: Annotated[list[str], typer.Argument(help="The command (after --).")],
    instance: Instance = None,
) -> None:
    """Run a command inside a lab node: `meshpath lab exec conn -- ip route`."""
    preflight()
    lab = Lab.attach(instance)
    rc = subprocess.call(netns_argv(lab.ns(node), command))  # noqa: S603 - argv list
    raise typer.Exit(rc)


@lab_app.command("run")
def run(
    ctx: typer.Context,
    scenario: Annotated[str, typer.Argument(help=f"'all' or one of: {', '.join(SCENARIO_NAMES)}.")],
    instance: Instance = None,
) -> None:
    """Run scenarios in a fresh lab and check each expected outcome (exit 1 on a failure)."""
    actx = app_context(ctx)
    names = list(SCENARIO_NAMES) if scenario == "all" else [get_scenario(scenario).name]

    def show(result: ScenarioResult) -> None:
        if not actx.json_output:
            actx.console.print(format_result(result))

    with terminate_as_interrupt(), actx.console.status("running lab scenarios"):
        results = run_many(names, instance, show)
    if actx.json_output:
        actx.emit([r.to_dict() for r in results])
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
    if instance:
        remove_lab(instance)
        removed.append(instance)
    removed += clean_leftovers(everything=instance is None)
    actx.emit({"removed": removed}, Text(f"removed: {', '.join(removed) or 'nothing'}"))


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
    actx.emit({"steps": data}, Text("lab torn down; every step checked", style="bold green"))
    if not all(s.ok for s in steps):
        raise typer.Exit(1)


def _show_step(actx: AppContext, step: DemoStep) -> None:
    if not actx.json_output:
        actx.console.print(format_step(step), soft_wrap=False)  # panels must fold long lines


def format_step(step: DemoStep) -> Panel:
    mark = "[green]✓[/green]" if step.ok else "[red]✗[/red]"
    body = Text("\n".join(step.lines), overflow="fold") if step.lines else Text("")
    return Panel(body, title=f"{mark} {step.title} ({step.seconds:.1f}s)", title_align="left")


def format_result(result: ScenarioResult) -> RenderableType:
    table = Table(show_header=False, box=None, padding=(0, 1))
    for check in result.checks:
        table.add_row(
            "[green]ok[/green]" if check.ok else "[red]FAIL[/red]", check.name, check.detail
        )
    verdict = "[green]passed[/green]" if result.passed else "[red]FAILED[/red]"
    t = result.timings
    head = Text.from_markup(
        f"[bold]{result.name}[/bold] {verdict}  (setup {t['setup']}s, fix {t['fix']}s, "
        + (f"drill {t['drill']}s, " if "drill" in t else "")
        + f"call {t['observe']}s)"
    )
    return Group(head, table)


def format_summary(results: list[ScenarioResult]) -> Table:
    table = Table(title="lab scenarios")
    for col in ("scenario", "result", "worker", "service saw", "seconds"):
        table.add_column(col)
    for r in results:
        total = round(sum(r.timings.values()), 1)
        table.add_row(
            r.name,
            "passed" if r.passed else "FAILED",
            f"{r.worker.status} {r.worker.body[:24] if r.worker.status != 200 else ''}".strip(),
            r.worker.seen_source or "-",
            str(total),
        )
    return table


def format_status(labs: list[dict[str, object]]) -> RenderableType:
    if not labs:
        return Text("no lab is running")
    table = Table(title="labs")
    for col in ("instance", "scenario", "fix", "owner", "namespaces (pids)"):
        table.add_column(col)
    for lab in labs:
        spaces = lab["namespaces"]
        assert isinstance(spaces, dict)
        nss = "\n".join(f"{ns} ({len(pids)})" for ns, pids in spaces.items())
        owner = lab["owner_pid"]
        table.add_row(
            str(lab["instance"]),
            str(lab["scenario"]),
            str(lab["fixed"] or "-"),
            "detached" if owner is None else f"pid {owner}",
            nss or "(none)",
        )
    return table
