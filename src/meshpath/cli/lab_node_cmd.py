"""`meshpath lab call` and `meshpath lab exec`: talk to a node of a running lab."""

from __future__ import annotations

import subprocess
from typing import Annotated

import typer
from rich.text import Text

from meshpath.cli import lab_cmd
from meshpath.cli.context import app_context
from meshpath.cli.lab_options import Instance
from meshpath.errors import BadInputError
from meshpath.lab import Lab
from meshpath.lab.worker.app import has_user_worker
from meshpath.runner import netns_argv

node_app = typer.Typer()


def register(lab_app: typer.Typer) -> None:
    lab_app.registered_commands += node_app.registered_commands


@node_app.command("call")
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
    lab_cmd.preflight()
    if not path.startswith("/") or not 0 < timeout <= 600:
        raise BadInputError(f"path {path!r} must start with '/', timeout be 0-600 s")
    lab = Lab.attach(instance, run_root=lab_cmd.RUN_ROOT)
    user = has_user_worker(lab.run_dir) and not lab_worker
    before = len(lab.worker_log(user=user))
    result = lab.worker_call(path, timeout, user=user)
    logged = lab.worker_log(user=user)[before:]
    data = {"status": result.status, "body": result.body, "log": logged}
    human = Text("\n".join([f"{result.status} {result.body}", *(f"log: {ln}" for ln in logged)]))
    actx.emit(data, human, schema="lab-call")
    if not 200 <= result.status < 400:
        raise typer.Exit(1)


@node_app.command("exec")
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
    lab_cmd.preflight()
    lab = Lab.attach(instance, run_root=lab_cmd.RUN_ROOT)
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
