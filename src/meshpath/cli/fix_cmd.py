"""`meshpath fix` (plan, --apply, --rollback, --resume): options in, rendering out; the
work is :mod:`meshpath.usecase.fix` (and :mod:`meshpath.usecase.profile`)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Annotated

import typer

from meshpath.cli import common, numbers
from meshpath.cli.common import LabOpt, NetnsOpt, RootOpt, StateOpt, require_root
from meshpath.cli.context import AppContext, app_context
from meshpath.cli.fix_render import emit_plan, emit_result
from meshpath.collect.netns import netns_path
from meshpath.errors import BadInputError
from meshpath.fix import MODES, FixOptions
from meshpath.state import Snapshot, codec
from meshpath.usecase import Host, profile
from meshpath.usecase import fix as use
from meshpath.usecase.verify import RoundTrip
from meshpath.values import parse_asn

# Test seam: where the fix acts (tests put a fake kernel here).
host_for = common.host_for


def register(app: typer.Typer) -> None:
    app.command("fix")(fix)


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
    nat6: Annotated[
        bool, typer.Option("--nat6", help="nat: masquerade the IPv6 source range too (NAT66).")
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
    if netns is not None:
        netns_path(netns)  # a namespace that does not exist is bad input, for every action
    host = host_for(netns, root, state_dir)
    trip = common.round_trip(lab_worker)
    if rollback or resume:
        return _undo_or_finish(actx, host, trip, rollback)
    if mode == "profile":
        opts = profile.ProfileOptions(account_id, policy, api_base, api_timeout, wait_warp)
        return _profile(actx, host, profile.check_options(opts), apply, snapshot_file, trip)
    if mode not in MODES:
        raise BadInputError(f"--mode {mode!r}: expected one of {', '.join(MODES)}, profile")
    if account_id or policy or api_base:
        raise BadInputError("--account-id/--policy/--api-base only apply to --mode profile")
    if apply:
        require_root("meshpath fix --apply")
    options = FixOptions(
        lan_if=lan_if,
        also_device_range=also_device_range,
        peer=peer,
        asn=parse_asn(asn) if asn is not None else None,
        peer_asn=peer_asn,
        role=role,
        bfd=bfd,
        replace_nat=replace_nat,
        nat6=nat6,
        bgp_timeout=bgp_timeout,
    )
    saved = _load(snapshot_file)
    request = use.FixRequest(mode, options, apply=apply, target=target, saved=saved)
    done = use.session(
        host, actx.settings, request, round_trip=trip, show=_shower(actx), on_event=actx.say
    )
    return _finish(actx, done, apply)


def _undo_or_finish(actx: AppContext, host: Host, trip: RoundTrip | None, rollback: bool) -> int:
    require_root("meshpath fix --rollback/--resume")
    run = use.rollback if rollback else use.resume
    return emit_result(actx, run(host, round_trip=trip, on_event=actx.say), rollback=rollback)


def _profile(
    actx: AppContext,
    host: Host,
    opts: profile.ProfileOptions,
    apply: bool,
    snapshot_file: Path | None,
    trip: RoundTrip | None,
) -> int:
    """--mode profile: plan from the API's list, apply through the same Applier."""
    if apply:
        require_root("meshpath fix --apply")
    done = profile.session(
        host,
        actx.settings,
        opts,
        apply=apply,
        saved=_load(snapshot_file),
        round_trip=trip,
        show=_shower(actx),
        on_event=actx.say,
    )
    return _finish(actx, done, apply)


def _load(snapshot_file: Path | None) -> Snapshot | None:
    return codec.load(snapshot_file) if snapshot_file is not None else None


def _shower(actx: AppContext) -> Callable[[use.Proposal], None]:
    """The plan shown before an apply starts (with --json, it is part of the result)."""
    return lambda proposal: None if actx.json_output else emit_plan(actx, proposal)


def _finish(actx: AppContext, done: use.FixOutcome, apply: bool) -> int:
    if not apply:
        emit_plan(actx, done.proposal, done.result)
        return 0
    return emit_result(actx, done.result, done.proposal.plan)
