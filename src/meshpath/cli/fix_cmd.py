"""`meshpath fix` (plan, --apply, --rollback, --resume) and `meshpath verify`."""

from __future__ import annotations

import ipaddress
import os
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any

import msgspec
import typer
from rich.console import Group
from rich.text import Text

from meshpath.apply import Applier, ApplyResult, files
from meshpath.apply import journal as jr
from meshpath.apply.verify import RoundTrip, verify
from meshpath.checks.targets import DEFAULT_PORT
from meshpath.cli import numbers, profile_cmd
from meshpath.cli.context import AppContext, app_context, error_console
from meshpath.cli.lab_cmd import instance_option
from meshpath.collect import collect_snapshot
from meshpath.collect.netns import netns_path
from meshpath.config import Settings
from meshpath.errors import EXIT_ENVIRONMENT, BadInputError, MeshpathError, PrivilegeError
from meshpath.fix import MODES, Expect, FixOptions, Plan, plan_fix, validate
from meshpath.fix.model import WriteFile
from meshpath.fix.plan import expect_for
from meshpath.fix.predict import predict
from meshpath.fix.verify import VerifyCheck
from meshpath.runner import SubprocessRunner
from meshpath.sim import simulate_flow
from meshpath.state import TABLE_MAIN, Snapshot, codec
from meshpath.values import parse_asn, parse_hostport, parse_peer

NetnsOpt = Annotated[str | None, typer.Option("--netns", help="Act inside this network namespace.")]
RootOpt = Annotated[
    Path, typer.Option("--root", help="Root for persistent files (tests: a temp dir).")
]
StateOpt = Annotated[
    Path | None,
    typer.Option("--state-dir", help="Journal and lock dir (default ROOT/var/lib/meshpath)."),
]
LabOpt = Annotated[
    str | None,
    typer.Option(
        "--lab-worker",
        callback=instance_option,
        help="Lab instance: also check a Worker round trip.",
    ),
]


def register(app: typer.Typer) -> None:
    app.command("fix")(fix)
    app.command("verify")(verify_cmd)


def state_dir_of(root: Path, state_dir: Path | None) -> Path:
    return state_dir if state_dir is not None else root / "var/lib/meshpath"


def require_root(what: str) -> None:
    if os.geteuid() != 0:
        raise PrivilegeError(f"{what} needs root (CAP_NET_ADMIN); run it with sudo")


def fix(
    ctx: typer.Context,
    mode: Annotated[str | None, typer.Option("--mode", help="nat, route or bgp.")] = None,
    apply: Annotated[
        bool, typer.Option("--apply", help="Apply the plan (default: show it).")
    ] = False,
    rollback: Annotated[
        bool, typer.Option("--rollback", help="Undo the last applied plan.")
    ] = False,
    resume: Annotated[bool, typer.Option("--resume", help="Finish an interrupted apply.")] = False,
    netns: NetnsOpt = None,
    root: RootOpt = Path("/"),
    state_dir: StateOpt = None,
    lan_if: Annotated[str | None, typer.Option("--lan-if", help="LAN interface.")] = None,
    also_device_range: Annotated[
        bool, typer.Option("--also-device-range", help="Also route device_v4.")
    ] = False,
    peer: Annotated[str | None, typer.Option("--peer", help="BGP peer address.")] = None,
    asn: Annotated[
        str | None, typer.Option("--asn", help="This connector's AS number (65001 or 1.10).")
    ] = None,
    peer_asn: Annotated[
        str, typer.Option("--peer-asn", help="Peer AS number, external or internal.")
    ] = "external",
    role: Annotated[
        str | None,
        typer.Option("--role", help="bgp: primary or standby (the standby prepends its AS path)."),
    ] = None,
    bfd: Annotated[
        bool, typer.Option("--bfd", help="bgp: BFD on the session (bfdd must run).")
    ] = False,
    replace_nat: Annotated[
        bool, typer.Option("--replace-nat", help="Remove meshpath's NAT once BGP works.")
    ] = False,
    bgp_timeout: Annotated[
        float,
        typer.Option(
            "--bgp-timeout",
            help=f"Seconds (0 < N <= {numbers.BGP_TIMEOUT_MAX:g}).",
            metavar="SECONDS",
            parser=numbers.seconds("--bgp-timeout", numbers.BGP_TIMEOUT_MAX),
        ),
    ] = 30.0,
    lab_worker: LabOpt = None,
    snapshot_file: Annotated[
        Path | None, typer.Option("--snapshot", help="Plan from a saved snapshot (no apply).")
    ] = None,
    target: Annotated[
        str | None,
        typer.Option("--target", help="LAN service IP:PORT for the simulator's prediction."),
    ] = None,
    account_id: Annotated[
        str | None, typer.Option("--account-id", help="profile: the Cloudflare account id.")
    ] = None,
    policy: Annotated[
        str | None, typer.Option("--policy", help="profile: device profile id (default: Default).")
    ] = None,
    api_base: Annotated[
        str | None, typer.Option("--api-base", help="profile: API base URL (the lab's emulator).")
    ] = None,
    api_timeout: Annotated[
        float,
        typer.Option(
            "--api-timeout",
            help="profile: seconds per API request.",
            metavar="S",
            parser=numbers.seconds("--api-timeout", numbers.API_TIMEOUT_MAX),
        ),
    ] = 15.0,
    wait_warp: Annotated[
        float,
        typer.Option(
            "--wait-warp",
            help="profile: wait so long for WARP's table.",
            metavar="S",
            parser=numbers.seconds("--wait-warp", numbers.API_TIMEOUT_MAX, zero=True),
        ),
    ] = 0.0,
) -> int:
    """Show (or --apply) the fix for the return path: nat, route, bgp, or profile."""
    actx = app_context(ctx)
    states = state_dir_of(root, state_dir)
    if netns is not None:
        netns_path(netns)  # a namespace that does not exist is bad input, for every action
    if mode == "profile" and not (rollback or resume):
        opts = profile_cmd.ProfileOptions(account_id, policy, api_base, api_timeout, wait_warp)
        return _fix_profile(actx, opts, apply, netns, root, states, lab_worker, snapshot_file)
    if rollback or resume:
        require_root("meshpath fix --rollback/--resume")
        open_ = jr.interrupted(states) if resume and states.exists() else None
        expect = open_.plan.expect if open_ is not None else None
        applier = _applier(actx, states, root, netns, lab_worker, expect)
        result = applier.rollback() if rollback else applier.resume()
        return _emit_result(actx, result, rollback=rollback)
    if mode not in MODES:
        raise BadInputError(f"--mode {mode!r}: expected one of {', '.join(MODES)}, profile")
    if account_id or policy or api_base:
        raise BadInputError("--account-id/--policy/--api-base only apply to --mode profile")
    if apply:
        require_root("meshpath fix --apply")
    if snapshot_file is not None and apply:
        raise BadInputError("--snapshot plans from a file; it cannot be combined with --apply")
    options = FixOptions(
        lan_if=lan_if,
        also_device_range=also_device_range,
        peer=peer,
        asn=parse_asn(asn) if asn is not None else None,
        peer_asn=peer_asn,
        role=role,
        bfd=bfd,
        replace_nat=replace_nat,
        bgp_timeout=bgp_timeout,
        post_checks=_check_names(lab_worker),
    )
    if not apply:
        snap, plan = _make_plan(actx, mode, options, netns, root, snapshot_file)
        forecast = _forecast(actx, snap, plan, lan_if, target)
        _emit_plan(actx, plan, _interrupted(states), forecast=forecast)
        return 0
    # Plan under the lock: a second run cannot plan the change this one is making, it
    # fails at once (LockHeld) or, once this one is done, plans from what it left.
    with jr.locked(states):
        snap, plan = _make_plan(actx, mode, options, netns, root, snapshot_file)
        _refuse_host_files_for_netns(plan, netns, root)
        forecast = _forecast(actx, snap, plan, lan_if, target)
        _emit_plan(actx, plan, _interrupted(states), quiet=actx.json_output, forecast=forecast)
        applier = _applier(actx, states, root, netns, lab_worker, plan.expect)
        lan = validate.lan_interface(snap, actx.settings.tunnel_interface, lan_if)
        applier.checks = {**applier.checks, **_sim_checks(actx.settings, netns, lan, target)}
        result = applier.apply_locked(plan)
    return _emit_result(actx, result, plan)


def _make_plan(
    actx: AppContext,
    mode: str,
    options: FixOptions,
    netns: str | None,
    root: Path,
    snapshot_file: Path | None,
) -> tuple[Snapshot, Plan]:
    """Collect (or load) the host state and plan from it; route mode also reads what its
    persistence files hold now, so the plan's undo can put them back exactly."""
    snap = codec.load(snapshot_file) if snapshot_file is not None else collect_snapshot(netns=netns)
    if mode == "route":
        links = [link.name for link in snap.links]
        host = files.host_files(root, actx.settings.tunnel_interface, links)
        options = msgspec.structs.replace(
            options,
            networkd_file=host.networkd_file,
            existing_files=host.existing,
            absent_dirs=host.absent_dirs,
            notes=host.notes,
        )
    return snap, plan_fix(snap, actx.settings, mode, options)  # type: ignore[arg-type]


def _interrupted(states: Path) -> jr.Journal | None:
    return jr.interrupted(states) if states.exists() else None


def _forecast(
    actx: AppContext, snap: Snapshot, plan: Plan, lan_if: str | None, target: str | None
) -> str | None:
    lan = validate.lan_interface(snap, actx.settings.tunnel_interface, lan_if)
    return prediction(snap, plan, lan, target, actx.settings)


def _fix_profile(
    actx: AppContext,
    opts: profile_cmd.ProfileOptions,
    apply: bool,
    netns: str | None,
    root: Path,
    states: Path,
    lab_worker: str | None,
    snapshot_file: Path | None,
) -> int:
    """--mode profile: plan from the API's list, apply through the same Applier."""
    opts = profile_cmd.check_options(opts)
    if apply:
        require_root("meshpath fix --apply")
        if snapshot_file is not None:
            raise BadInputError("--snapshot plans from a file; it cannot be combined with --apply")
    plan, api = profile_cmd.make_plan(actx, opts, netns, snapshot_file)
    interrupted = profile_cmd.interrupted(states)
    if not apply:
        _emit_plan(actx, plan, interrupted)
        return 0
    _emit_plan(actx, plan, interrupted, quiet=actx.json_output)
    applier = _applier(actx, states, root, netns, lab_worker, plan.expect)
    trip = lab_round_trip(lab_worker) if lab_worker else None
    applier.post_check = profile_cmd.wait_for_warp(netns, plan.expect, opts.wait_warp, trip)
    result = profile_cmd.prepare(applier, api, opts).apply(plan)
    profile_cmd.raise_api_refusal(result)
    return _emit_result(actx, result, plan)


def _refuse_host_files_for_netns(plan: Plan, netns: str | None, root: Path) -> None:
    """A fix aimed at a namespace must not write the host's /etc: a systemd unit there
    would configure the host (the root namespace), not the namespace."""
    writes = any(isinstance(step.action, WriteFile) for step in plan.steps)
    if netns is not None and root == Path("/") and writes:
        raise BadInputError(
            f"--netns {netns}: this plan writes persistence files; give --root DIR for them "
            "(files under / would configure the host, not the namespace)"
        )


LAB_CHECK = "worker round trip"
SIM_CHECK = "simulated Worker flow"


def _check_names(lab_worker: str | None) -> tuple[str, ...]:
    """The check that must pass without NAT before --replace-nat keeps NAT removed: a
    Worker round trip in the lab, else the simulator's verdict on the live host."""
    return (LAB_CHECK,) if lab_worker else (SIM_CHECK,)


def _sim_checks(
    settings: Settings, netns: str | None, lan_if: str, target: str | None
) -> dict[str, Callable[[], tuple[bool, str]]]:
    def check() -> tuple[bool, str]:
        snap = collect_snapshot(netns=netns)
        host, port = _target(snap, lan_if, target)
        if host is None:
            return False, "no LAN target to simulate (pass --target IP:PORT)"
        flow = simulate_flow(
            snap, settings.ranges.worker_probe(), host, port, tunnel=settings.tunnel_interface
        )
        return flow.outcome == "delivered", f"{flow.outcome}: {flow.reason}"

    return {SIM_CHECK: check}


def _applier(
    actx: AppContext,
    states: Path,
    root: Path,
    netns: str | None,
    lab_worker: str | None,
    expect: Expect | None,
) -> Applier:
    runner = SubprocessRunner(netns=netns)
    trip = lab_round_trip(lab_worker) if lab_worker else None
    checks: dict[str, Callable[[], tuple[bool, str]]] = {}
    post: Callable[[], tuple[bool, str]] | None = None
    if trip is not None and expect is not None:
        checks[LAB_CHECK] = lambda: trip(expect)
    if expect is not None:
        post = _post_check(runner, netns, expect, trip)
    return Applier(
        runner=runner,
        state_dir=states,
        root=root,
        netns=netns,
        checks=checks,
        post_check=post,
        on_event=actx.say,  # progress lines (waiting for BGP, ...); none with --json or -q
    )


def _post_check(
    runner: SubprocessRunner, netns: str | None, expect: Expect, trip: RoundTrip | None
) -> Callable[[], tuple[bool, str]]:
    def check() -> tuple[bool, str]:
        results = verify(runner, netns, expect, trip)
        bad = [f"{c.name}: {c.detail}" for c in results if not c.ok]
        return (not bad, "; ".join(bad) or "all checks hold")

    return check


def lab_round_trip(instance: str) -> RoundTrip:
    """A Worker call through the lab; the source the service saw must fit the mode."""

    def trip(expect: Expect) -> tuple[bool, str]:
        from meshpath.lab import Lab  # the lab is optional at run time

        result = Lab.attach(instance).worker_call()
        seen = result.seen_source
        detail = f"status {result.status}, service saw {seen}"
        if result.status != 200 or seen is None:
            return False, detail
        cf = any(
            ipaddress.ip_address(seen) in ipaddress.ip_network(r)
            for r in expect.ranges
            if ":" not in r
        )
        if expect.nat is True:
            return (not cf, f"{detail} (NAT: want the connector's LAN address)")
        if expect.nat is False or expect.route_proto:
            return (cf, f"{detail} (want the Worker's own source)")
        return True, detail

    return trip


# -- output ----------------------------------------------------------------------------
def plan_dict(plan: Plan) -> dict[str, Any]:
    data: dict[str, Any] = msgspec.to_builtins(plan)
    data["empty"] = plan.empty
    return data


def format_plan(plan: Plan, interrupted: jr.Journal | None) -> Group:
    lines: list[Text] = []
    if interrupted is not None:
        lines.append(
            Text(
                f"! an earlier fix (journal #{interrupted.seq}, mode {interrupted.mode}) was "
                "interrupted: run 'meshpath fix --resume' or 'meshpath fix --rollback'",
                style="bold red",
            )
        )
    title = f"meshpath fix --mode {plan.mode}: " + (
        "nothing to do" if plan.empty else f"{len(plan.steps)} step(s)"
    )
    lines.append(Text(title, style="bold"))
    for item in plan.already:
        lines.append(Text(f"  already in place: {item}", style="green"))
    for i, step in enumerate(plan.steps, start=1):
        lines.append(Text(f"{i}. {step.description}", style="bold cyan"))
        lines.append(Text(f"   because: {step.check}"))
        lines.append(Text(f"   does:    {_describe(step.action)}"))
        if step.inverse is not None:
            lines.append(Text(f"   undo:    {_describe(step.inverse)}"))
        if step.detail:
            lines.append(Text("   " + step.detail.rstrip().replace("\n", "\n   "), style="dim"))
    for note in plan.notes:
        lines.append(Text(f"note: {note}", style="yellow"))
    return Group(*lines)


def _describe(action: Any) -> str:
    kind = type(action).__name__
    if kind == "Run":
        return " ".join(action.argv)
    if kind == "NftFile":
        return "nft " + ("-j " if action.json else "") + "-f FILE (checked first with nft -c -f)"
    if kind == "WriteFile":
        return f"write /{action.path}" + (f" -> {action.link}" if action.link else "")
    if kind == "RemoveFile":
        return f"remove /{action.path}"
    if kind == "FrrReload":
        what = "strip meshpath's lines" if action.remove else "merge meshpath's lines"
        return f"{what}; vtysh -C -f FILE; frr-reload.py --test, then --reload FILE"
    if kind == "WaitBgp":
        return f"poll show bgp summary / advertised-routes for {action.peer}"
    if kind == "ProfileUpdate":
        policy = f"/{action.policy_id}" if action.policy_id else ""
        where = f"/accounts/{action.account_id}/devices/policy{policy}/{action.mode}"
        return f"PUT {action.api_base or 'Cloudflare API'}{where} ({len(action.entries)} entries)"
    return f"check {action.name}"


def _emit_plan(
    actx: AppContext,
    plan: Plan,
    interrupted: jr.Journal | None,
    quiet: bool = False,
    forecast: str | None = None,
) -> None:
    if quiet:
        return
    if actx.json_output:
        data = {
            "plan": plan_dict(plan),
            "interrupted": interrupted.seq if interrupted else None,
            "prediction": forecast,
        }
        actx.emit(data, schema="fix-plan")
        return
    actx.console.print(format_plan(plan, interrupted))
    if forecast:
        actx.console.print(Text(f"simulator: {forecast}", style="magenta"))


def prediction(
    snap: Snapshot, plan: Plan, lan_if: str, target: str | None, settings: Settings
) -> str | None:
    """The simulator's verdict on a Worker flow once the plan is applied."""
    host, port = _target(snap, lan_if, target)
    if host is None:
        return "no LAN target to simulate (pass --target IP:PORT)"
    after = predict(snap, plan, lan_if)
    worker = settings.ranges.worker_probe()
    try:
        flow = simulate_flow(after, worker, host, port, tunnel=settings.tunnel_interface)
    except (ValueError, MeshpathError) as exc:
        # The simulator is another component: a gap in it must not block a fix.
        return f"the simulator could not predict this flow: {exc}"
    return f"Worker {worker} -> {host}:{port} after the fix: {flow.outcome} ({flow.reason})"


def _target(snap: Snapshot, lan_if: str, target: str | None) -> tuple[str | None, int]:
    if target is not None:
        parsed = parse_hostport(target, "--target", default_port=DEFAULT_PORT)
        return str(parsed.address), parsed.port
    for route in snap.routes_in(TABLE_MAIN):
        if route.dst == "0.0.0.0/0" and route.dev == lan_if and route.gateway:
            return route.gateway, 443
    return None, 443


def _emit_result(
    actx: AppContext, result: ApplyResult, plan: Plan | None = None, rollback: bool = False
) -> int:
    code = {"applied": 0, "nothing-to-do": 0, "rolled-back": 0, "failed": 1}.get(result.status, 3)
    if result.journal_error is not None:
        code = EXIT_ENVIRONMENT
        error_console().print(
            f"meshpath: error: {result.journal_error}; {_journal_advice(result)}",
            markup=False,
            highlight=False,
        )
    if actx.json_output:
        data: dict[str, Any] = {"result": result.to_dict()}
        if plan is not None:
            data["plan"] = plan_dict(plan)
        actx.emit(data, schema="fix-result")
        return code
    if result.status == "nothing-to-do":
        what = "no applied meshpath fix to roll back" if rollback else "the fix is already in place"
        actx.console.print(f"nothing to do: {what}", markup=False)
    elif result.status == "failed":
        actx.console.print(
            f"FAILED at {result.failed_step}: {result.error}; rolled back "
            f"({len(result.undone)} step(s) undone); the host is as before",
            markup=False,
        )
    elif result.status == "rollback-failed":
        actx.console.print(
            f"FAILED and the rollback failed too at {result.failed_step}: {result.error}; "
            f"journal {result.journal}",
            markup=False,
        )
    else:
        actx.console.print(f"{result.status}; journal {result.journal}", markup=False)
    return code


def _journal_advice(result: ApplyResult) -> str:
    """What to do when the host changed as reported but its journal could not say so."""
    if result.status == "applied":
        return "the fix is applied; run 'meshpath fix --resume' once the state dir is writable"
    if result.status in ("failed", "rolled-back"):
        return (
            "the host was rolled back; run 'meshpath fix --rollback' once the state directory "
            "is writable (it finds nothing left to undo)"
        )
    return "run 'meshpath fix --rollback' once the state directory is writable"


# -- verify ----------------------------------------------------------------------------
def verify_cmd(
    ctx: typer.Context,
    peer: Annotated[str | None, typer.Option("--peer", help="Check this BGP peer.")] = None,
    netns: NetnsOpt = None,
    root: RootOpt = Path("/"),
    state_dir: StateOpt = None,
    mode: Annotated[
        str | None, typer.Option("--mode", help="Expect this mode (default: the journal's).")
    ] = None,
    lab_worker: LabOpt = None,
) -> int:
    """Prove the fix: FRR's, the kernel's and nft's view, and a round trip in the lab."""
    actx = app_context(ctx)
    expect = _expectation(actx.settings, state_dir_of(root, state_dir), netns, mode, peer)
    trip = lab_round_trip(lab_worker) if lab_worker else None
    checks = verify(SubprocessRunner(netns=netns), netns, expect, trip)
    ok = all(c.ok for c in checks)
    data = {
        "ok": ok,
        "expect": msgspec.to_builtins(expect),
        "checks": [c.to_dict() for c in checks],
    }
    actx.emit(data, format_checks(checks, ok), schema="verify")
    return 0 if ok else 1


def _expectation(
    settings: Settings, states: Path, netns: str | None, mode: str | None, peer: str | None
) -> Expect:
    address = parse_peer(peer, "--peer") if peer is not None else None  # it reaches vtysh
    if mode is None:
        journal = jr.last_applied(states, netns) if states.exists() else None
        if journal is None:
            raise BadInputError("no applied meshpath fix found for this host; pass --mode")
        expect = journal.plan.expect
    elif mode == "profile":
        ranges = (str(settings.ranges.source_v4), str(settings.ranges.device_v4))
        expect = Expect(
            tunnel=settings.tunnel_interface, ranges=(), route_proto=0, nat=None, warp_covers=ranges
        )
    elif mode in MODES:
        expect = expect_for(mode, settings, address)  # type: ignore[arg-type]
    else:
        raise BadInputError(f"--mode {mode!r}: expected one of {', '.join(MODES)}, profile")
    if address is not None:
        expect = msgspec.structs.replace(expect, peer=address, advertised=expect.ranges)
    return expect


def format_checks(checks: tuple[VerifyCheck, ...], ok: bool) -> Group:
    lines = [
        Text(f"{'ok  ' if c.ok else 'FAIL'} {c.view:10} {c.name}: {c.detail}",
             style="green" if c.ok else "red")
        for c in checks
    ]  # fmt: skip
    lines.append(Text("verify: all checks hold" if ok else "verify: FAILED", style="bold"))
    return Group(*lines)


def load_snapshot(path: Path) -> Snapshot:
    return codec.load(path)
