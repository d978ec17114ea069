"""`meshpath route get` and `meshpath flow`: the kernel model, from a snapshot or a live host."""

from __future__ import annotations

import ipaddress
from pathlib import Path
from typing import Annotated, Any, Final

import msgspec
import typer
from rich.console import Group
from rich.table import Table
from rich.text import Text

from meshpath.cli.context import app_context
from meshpath.errors import EXIT_FINDINGS, BadInputError
from meshpath.sim import Decision, Packet, route_get, simulate_flow
from meshpath.sim.fib import table_name
from meshpath.sim.flow import DELIVERED, FlowResult, PathResult
from meshpath.sim.values import LEG_BY_HASH, LEG_BY_UNKNOWN, Leg, Step
from meshpath.state import Snapshot, codec

route_app = typer.Typer(
    help="Routing decisions as the kernel would take them (with every step).",
    no_args_is_help=True,
)
FIELD_REPORT_WORKER = "100.64.12.189"
ERRNO_TEXT = {
    "ENETUNREACH": "Network is unreachable",
    "EHOSTUNREACH": "No route to host",
    "EACCES": "Permission denied",
    "EINVAL": "Invalid argument",
}

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


def _mark(text: str) -> int:
    try:
        mark = int(text, 0)
    except ValueError:
        raise BadInputError(f"--mark {text!r}: expected a number like 0x100cf") from None
    if not 0 <= mark < 2**32:
        raise BadInputError(f"--mark {text!r}: a fwmark is 32 bits (0 to 0xffffffff)")
    return mark


IPPROTO: Final = {"tcp": 6, "udp": 17, "icmp": 1, "sctp": 132, "dccp": 33}


def _number(flag: str, text: str, top: int, example: str) -> int:
    try:
        value = int(text, 0)
    except ValueError:
        raise BadInputError(f"{flag} {text!r}: expected a number like {example}") from None
    if not 0 <= value <= top:
        raise BadInputError(f"{flag} {text!r}: expected 0 to {top}")
    return value


def _ipproto(text: str) -> int:
    if text.lower() in IPPROTO:
        return IPPROTO[text.lower()]
    return _number("--ipproto", text, 255, "tcp, udp or 6")


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
        str, typer.Option("--ipproto", help="tcp, udp, icmp or a number (default udp).")
    ] = "udp",
    sport: Annotated[str, typer.Option("--sport", help="Source port.")] = "0",
    dport: Annotated[str, typer.Option("--dport", help="Destination port.")] = "0",
    tos: Annotated[str, typer.Option("--tos", help="TOS/DSCP byte (e.g. 0x10).")] = "0",
    snapshot: SnapshotOpt = None,
    netns: NetnsOpt = None,
) -> None:
    """Like `ip route get DST from SRC iif DEV mark M oif DEV uid U ipproto P sport S
    dport D tos T`, plus every rule, table and check."""
    actx = app_context(ctx)
    if oif is not None and iif is not None:
        raise BadInputError(
            "--oif is for locally generated packets; with --iif the kernel ignores it"
        )
    if uid is not None and iif is not None:
        raise BadInputError("--uid is for locally generated packets (a forwarded one has uid 0)")
    packet = Packet(
        dst=dst, src=src, iif=iif, oif=oif, mark=_mark(mark),
        uid=None if uid is None else _number("--uid", uid, 2**32 - 1, "1000"),
        proto=_ipproto(ipproto), sport=_number("--sport", sport, 65535, "443"),
        dport=_number("--dport", dport, 65535, "443"), tos=_number("--tos", tos, 255, "0x10"),
    )  # fmt: skip
    decision = route_get(load_snapshot(snapshot, netns), packet)
    actx.emit(decision_data(decision), format_decision(decision), schema="route-get")


def decision_data(decision: Decision) -> dict[str, Any]:
    """The JSON: the Decision; with a multipath leg that cannot be known, no one leg as
    the answer (``dev``/``gateway`` null, every leg in ``legs``)."""
    data: dict[str, Any] = msgspec.to_builtins(decision)
    if decision.leg_by == LEG_BY_UNKNOWN:
        data["dev"] = data["gateway"] = None
    return data


def ip_route_line(d: Decision) -> str:
    """The decision the way `ip route get` prints it (or its error)."""
    if d.error is not None:
        return f"{d.outcome}: {d.error} ({ERRNO_TEXT.get(d.error, d.error)})"
    p = d.packet
    parts = [] if d.outcome in ("forward", "output") else [d.outcome]
    parts.append(p.dst)
    if p.src:
        parts.append(f"from {p.src}")
    parts.append(_egress_text(d))
    if d.table is not None and d.table != 254:
        parts.append(f"table {table_name(d.table)}")
    if d.prefsrc and not p.src:
        parts.append(f"src {d.prefsrc}")
    if p.mark:
        parts.append(f"mark {p.mark:#x}")
    if p.uid is not None:
        parts.append(f"uid {p.uid}")
    if p.iif:
        parts.append(f"iif {p.iif}")
    if d.leg_by == LEG_BY_HASH:
        parts.append(f"(multipath: this leg of {len(d.legs)}, by the kernel's hash)")
    return " ".join(parts)


def _egress_text(d: Decision) -> str:
    if d.leg_by == LEG_BY_UNKNOWN:
        legs = " | ".join(_leg_text(leg) for leg in d.legs)
        return f"one of [{legs}] (multipath: the kernel's hash seed is random)"
    return f"via {d.gateway} dev {d.dev}" if d.gateway else f"dev {d.dev}"


def _leg_text(leg: Leg) -> str:
    via = f"via {leg.gateway} " if leg.gateway else ""
    return f"{via}dev {leg.dev} weight {leg.weight}"


def steps_table(steps: tuple[Step, ...], title: str = "steps") -> Table:
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


def _target(text: str) -> tuple[str, int]:
    host, sep, port = text.rpartition(":")
    try:
        ipaddress.IPv4Address(host)
        value = int(port)
    except ValueError:
        raise BadInputError(f"target {text!r}: expected IPV4:PORT, e.g. 10.0.1.50:3000") from None
    if not sep or not 0 < value < 65536:
        raise BadInputError(f"target {text!r}: expected IPV4:PORT, e.g. 10.0.1.50:3000")
    return host, value


def flow(
    ctx: typer.Context,
    targets: Annotated[list[str], typer.Argument(help="TARGET:PORT, one or more.")],
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
    parsed = [_target(t) for t in targets]
    source = actx.settings.ranges.source_v4
    worker = worker_ip or (
        FIELD_REPORT_WORKER
        if ipaddress.IPv4Address(FIELD_REPORT_WORKER) in source
        else str(next(source.hosts()))
    )
    snap = load_snapshot(snapshot, netns)
    tun = tunnel or actx.settings.tunnel_interface
    results = [simulate_flow(snap, worker, host, port, tunnel=tun) for host, port in parsed]
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
