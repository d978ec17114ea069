"""`meshpath lab …`: the namespace lab (up, status, exec, run, down, demo)."""

from __future__ import annotations

import subprocess
from pathlib import Path
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
from meshpath.lab.scenarios import ALL_NAMES
from meshpath.lab.state import RUN_ROOT, known_instances, read_state
from meshpath.lab.topology import check_instance
from meshpath.lab.worker.app import (
    USER_WORKER_LOG,
    WORKER_LOG,
    has_user_worker,
    worker_address,
)
from meshpath.lab.worker.user import user_app
from meshpath.runner import netns_argv

if TYPE_CHECKING:
    from meshpath.lab.watch import Watch

lab_app = typer.Typer(
    help="A network-namespace lab of the whole Worker -> Mesh -> Connector -> LAN path.",
    no_args_is_help=True,
)


def instance_option(value: str | None) -> str | None:
    """Validate --instance as it is parsed: a bad id is exit 2 before anything runs."""
    return None if value is None else check_instance(value)


Instance = Annotated[
    str | None,
    typer.Option(
        "--instance",
        "-i",
        callback=instance_option,
        help="Lab instance id (default: the only one).",
    ),
]


warp_app = typer.Typer(help="The lab's WARP client (the emulator on the connector).")
lab_app.add_typer(warp_app, name="warp")


def register(app: typer.Typer) -> None:
    app.add_typer(lab_app, name="lab")


@warp_app.command("reconnect")
def warp_reconnect(ctx: typer.Context, instance: Instance = None) -> None:
    """Delete and re-create CloudflareWARP, as a WARP reconnect does; WARP re-installs its
    state on the new device (routes that others put on the old one are gone)."""
    actx = app_context(ctx)
    preflight()
    lab = Lab.attach(instance, run_root=RUN_ROOT)
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
    lab = Lab.attach(instance, run_root=RUN_ROOT)
    state = lab.warp_status()
    entries = ", ".join(e.get("address") or e.get("host", "") for e in state.get("entries", []))
    line = (
        f"{state.get('status')}; {state.get('mode')} mode: {entries}; "
        f"ifindex {state.get('ifindex')}, generation {state.get('generation')}"
    )
    actx.emit(state, Text(line), schema="lab-warp-status")


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
    with terminate_as_interrupt():
        lab = Lab.create(instance, run_root=RUN_ROOT)
        lab.user_worker = app
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
    status["worker"] = _worker_info(lab)
    human: list[RenderableType] = [format_status([status]), _format_worker(status["worker"])]
    if watcher is not None:
        status["watch"] = _watch_info(lab, watcher)
        human.append(format_watch(status["watch"]))
    actx.emit(status, Group(*human), schema="lab-up")


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


def _worker_info(lab: Lab) -> dict[str, str]:
    user = lab.user_worker is not None
    url = f"http://{worker_address(user)}/"
    return {
        "worker": lab.user_worker.label if lab.user_worker else "the lab's Worker",
        "url": url,
        "call": f"meshpath lab call -i {lab.instance} /",
        "curl": f"meshpath lab exec -i {lab.instance} edge -- curl -s {url}",
        "log": str(lab.run_dir / (USER_WORKER_LOG if user else WORKER_LOG)),
    }


def _format_worker(info: dict[str, str]) -> Text:
    return Text(
        f"Worker: {info['worker']}, in workerd at {info['url']} (inside the edge namespace)\n"
        f"  call it:  {info['call']}\n"
        f"       or:  {info['curl']}\n"
        f"  its log (wrangler tail): {info['log']}"
    )


@lab_app.command("call")
def call(
    ctx: typer.Context,
    path: Annotated[str, typer.Argument(help="Path to request from the Worker.")] = "/",
    instance: Instance = None,
    timeout: Annotated[float, typer.Option("--timeout", help="Seconds to wait.")] = 15.0,
    lab_worker: Annotated[
        bool, typer.Option("--lab-worker", help="The lab's Worker, not yours (--worker).")
    ] = False,
) -> None:
    """Call the Worker (yours, if the lab runs one; else the lab's) and show what it logged."""
    actx = app_context(ctx)
    preflight()
    if not path.startswith("/") or not 0 < timeout <= 600:
        raise BadInputError(f"path {path!r} must start with '/', timeout be 0-600 s")
    lab = Lab.attach(instance, run_root=RUN_ROOT)
    user = has_user_worker(lab.run_dir) and not lab_worker
    before = len(lab.worker_log(user=user))
    result = lab.worker_call(path, timeout, user=user)
    logged = lab.worker_log(user=user)[before:]
    data = {"status": result.status, "body": result.body, "log": logged}
    human = Text("\n".join([f"{result.status} {result.body}", *(f"log: {ln}" for ln in logged)]))
    actx.emit(data, human, schema="lab-call")
    if not 200 <= result.status < 400:
        raise typer.Exit(1)


@lab_app.command("status")
def status(ctx: typer.Context, instance: Instance = None) -> None:
    """Show running labs: namespaces, their processes, scenario and fix."""
    actx = app_context(ctx)
    names = [instance] if instance is not None else sorted(known_instances(RUN_ROOT))
    found = [Lab(n, RUN_ROOT).status() for n in names if read_state(RUN_ROOT, n) is not None]
    actx.emit({"labs": found}, format_status(found), schema="lab-status")


@lab_app.command("exec")
def exec_(
    ctx: typer.Context,
    node: Annotated[str, typer.Argument(help="edge, conn, router, svc, ts or lan.")],
    command: Annotated[list[str], typer.Argument(help="The command (after --).")],
    instance: Instance = None,
) -> None:
    """Run a command inside a lab node: `meshpath lab exec conn -- ip route`.

    With --json the command's output is captured and returned with its exit status.
    """
    actx = app_context(ctx)
    preflight()
    lab = Lab.attach(instance, run_root=RUN_ROOT)
    argv = netns_argv(lab.ns(node), command)
    # On the connector, WARP's warp-cli stand-in is on PATH (as on a real connector).
    env = lab.meshpath_env() if node == "conn" else None
    if not actx.json_output:
        raise typer.Exit(subprocess.call(argv, env=env))  # noqa: S603 - argv list
    done = subprocess.run(  # noqa: S603 - argv list
        argv, capture_output=True, text=True, errors="replace", check=False, env=env
    )
    data = {
        "node": node,
        "namespace": lab.ns(node),
        "argv": list(command),
        "returncode": done.returncode,
        "stdout": done.stdout,
        "stderr": done.stderr,
    }
    actx.emit(data, schema="lab-exec")
    raise typer.Exit(done.returncode)


@lab_app.command("run")
def run(
    ctx: typer.Context,
    scenario: Annotated[str, typer.Argument(help=f"'all' or one of: {', '.join(SCENARIO_NAMES)}.")],
    instance: Instance = None,
) -> None:
    """Run scenarios in a fresh lab and check each expected outcome (exit 1 on a failure).

    'all' is every scenario but reconnect (run it by name: it re-applies all four fixes)."""
    actx = app_context(ctx)
    names = list(ALL_NAMES) if scenario == "all" else [get_scenario(scenario).name]

    def show(result: ScenarioResult) -> None:
        if not actx.json_output:
            actx.console.print(format_result(result))

    with terminate_as_interrupt(), actx.console.status("running lab scenarios"):
        results = run_many(names, instance, show)
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
