"""`meshpath route get` and `meshpath flow`: the kernel model, from a snapshot or a live host."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import msgspec
import typer
from rich.console import Group
from rich.table import Table
from rich.text import Text

from meshpath.checks.targets import choose_targets, parse_target, worker_for
from meshpath.cli.context import app_context
from meshpath.errors import EXIT_FINDINGS, BadInputError
from meshpath.sim import Decision, Fib, route_get, simulate_flow
from meshpath.sim.flow import DELIVERED, FlowResult, PathResult
from meshpath.sim.routeget import decision_data, ip_route_line, route_get_packet
from meshpath.sim.values import KernelStep
from meshpath.state import Snapshot, codec
from meshpath.values import IfName, given, parse_ifname

route_app = typer.Typer(
    help="Routing decisions as the kernel would take them (with every step).",
    no_args_is_help=True,
)

SnapshotOpt = Annotated[
    Path | None, typer.Option("--snapshot", help="Use a saved snapshot (meshpath snapshot -o).")
]
NetnsOpt = Annotated[str | None, typer.Option("--netns", help="Collect inside this namespace.")]


def register(app: typer.Typer) -> None:
    app.add_typer(route_app, name="route")
    app.command("flow")(flow)


def load_snapshot(snapshot: Path | None, netns: str | None) -> Snapshot:
    """A saved snapshot, or one collected now (from the host or ``netns``)."""
    if snapshot is not None and netns is not None:
        raise BadInputError("give either --snapshot or --netns, not both")
    if snapshot is not None:
        return codec.load(snapshot)
    from meshpath.collect import collect_snapshot  # the I/O edge, only when collecting

    return collect_snapshot(netns=netns)


@route_app.command("get")
def route_get_cmd(
    ctx: typer.Context,
    dst: Annotated[str, typer.Argument(help="Destination address.")],
    src: Annotated[str | None, typer.Option("--from", help="Source address.")] = None,
    iif: Annotated[
        str | None, typer.Option("--iif", help="Ingress device (omit: locally generated).")
    ] = None,
    mark: Annotated[str, typer.Option("--mark", help="fwmark (e.g. 0x100cf).")] = "0",
    oif: Annotated[
        str | None, typer.Option("--oif", help="Egress device a local socket is bound to.")
    ] = None,
    uid: Annotated[
        str | None, typer.Option("--uid", help="User id of a local socket (uidrange rules).")
    ] = None,
    ipproto: Annotated[
        str | None,
        typer.Option("--ipproto", help="tcp, udp, icmp or a number (default: udp; v6 none)."),
    ] = None,
    sport: Annotated[str, typer.Option("--sport", help="Source port.")] = "0",
    dport: Annotated[str, typer.Option("--dport", help="Destination port.")] = "0",
    tos: Annotated[str, typer.Option("--tos", help="TOS/DSCP byte (e.g. 0x10).")] = "0",
    snapshot: SnapshotOpt = None,
    netns: NetnsOpt = None,
) -> None:
    """Like `ip route get DST from SRC iif DEV mark M oif DEV uid U ipproto P sport S
    dport D tos T`, plus every rule, table and check."""
    actx = app_context(ctx)
    packet = route_get_packet(
        dst, src=src, iif=iif, oif=oif, mark=mark, uid=uid, ipproto=ipproto,
        ports=(sport, dport), tos=tos,
    )  # fmt: skip
    decision = route_get(load_snapshot(snapshot, netns), packet)
    actx.emit(decision_data(decision), format_decision(decision), schema="route-get")


def steps_table(steps: tuple[KernelStep, ...], title: str = "steps") -> Table:
    table = Table(title=title, show_lines=False)
    table.add_column("step")
    table.add_column("looked at")
    table.add_column("result")
    for step in steps:
        table.add_row(step.kind, step.detail, step.reason)
    return table


def format_decision(d: Decision) -> Group:
    style = "green" if d.ok else "red"
    return Group(Text(ip_route_line(d), style=style), steps_table(d.steps))


def _tunnel(snap: Snapshot, name: str) -> IfName:
    """The tunnel the Worker's SYN comes in on: a name that exists in the snapshot."""
    tunnel = parse_ifname(name, "--tunnel")
    if snap.link(tunnel) is None:
        known = ", ".join(repr(link.name) for link in snap.links) or "none"
        raise BadInputError(f"--tunnel {name!r} does not exist (interfaces: {known})")
    return tunnel


def flow(
    ctx: typer.Context,
    targets: Annotated[
        list[str] | None,
        typer.Argument(help="TARGET:PORT, any number (default: one in each LAN subnet)."),
    ] = None,
    worker_ip: Annotated[
        str | None, typer.Option("--worker-ip", help="Worker source address (default: in range).")
    ] = None,
    tunnel: Annotated[
        str | None, typer.Option("--tunnel", help="Tunnel interface (default from config).")
    ] = None,
    snapshot: SnapshotOpt = None,
    netns: NetnsOpt = None,
) -> None:
    """Simulate a Worker's connection to each target, SYN in and SYN-ACK back; exit 1 if any
    is not delivered."""
    actx = app_context(ctx)
    named = tuple(parse_target(t, port_required=True) for t in targets or ())
    worker = given(worker_ip, "--worker-ip")
    for t in named:
        if worker is not None and (":" in worker) != (":" in t.address):
            raise BadInputError(f"--worker-ip {worker_ip} and target {t.address} differ in family")
    snap = load_snapshot(snapshot, netns)
    tun = _tunnel(snap, tunnel) if tunnel is not None else actx.settings.tunnel_interface
    chosen = choose_targets(snap, tun, named)
    if not chosen:
        raise BadInputError("no LAN subnet to pick a target from: give TARGET:PORT")
    ranges = actx.settings.ranges
    fib = Fib.from_snapshot(snap)  # one model for every target
    results = [
        simulate_flow(snap, worker_for(t, ranges, worker), t.address, t.port, tunnel=tun, fib=fib)
        for t in chosen
    ]
    data = {"flows": [msgspec.to_builtins(r) for r in results]}
    actx.emit(data, Group(*(format_flow(r) for r in results)), schema="flow")
    if any(r.outcome != DELIVERED for r in results):
        raise typer.Exit(EXIT_FINDINGS)


def format_flow(r: FlowResult) -> Group:
    style = "green" if r.outcome == DELIVERED else "red"
    head = Text(f"{r.worker_ip} -> {r.target}:{r.port}: {r.outcome.upper()}", style=f"bold {style}")
    parts: list[Any] = [head, Text(r.reason)]
    if r.source_seen_by_target:
        parts.append(Text(f"the target sees the source {r.source_seen_by_target}"))
    parts.append(_path_table(r.request))
    if r.reply is not None:
        parts.append(_path_table(r.reply))
    return Group(*parts)


def _path_table(path: PathResult) -> Table:
    title = f"{path.direction}: {path.arrived.src} -> {path.arrived.dst} in {path.arrived.iif}"
    return steps_table(path.hops, f"{title} => {path.status} ({path.reason})")
