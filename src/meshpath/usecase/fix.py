"""`fix.session`: plan a fix from the host's state (a dry run), or plan and apply it under
the journal's lock; `rollback` and `resume` of an earlier run.

    session(host, settings, request)
        [lock] -> snapshot (live or saved) -> plan -> prediction -> show(proposal)
               -> Applier(post-checks) -> apply -> FixOutcome(proposal, result)

A dry run returns the same :class:`FixOutcome`, its result "planned" with nothing changed.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Final

import msgspec

from meshpath.apply import Applier, ApplyResult, files
from meshpath.apply import journal as jr
from meshpath.checks.targets import Target, choose_targets, parse_target, worker_for
from meshpath.config import Settings
from meshpath.errors import BadInputError, MeshpathError
from meshpath.fix import Expect, FixOptions, Plan
from meshpath.fix.desired import Desired, desired_state
from meshpath.fix.model import WriteFile
from meshpath.fix.plan import plan_from
from meshpath.fix.predict import predict
from meshpath.sim import simulate_flow
from meshpath.state import Snapshot
from meshpath.usecase import verify
from meshpath.usecase.host import Host
from meshpath.usecase.verify import CheckFn, RoundTrip

# The check that must pass without NAT before --replace-nat keeps NAT removed: a Worker
# round trip when a post-check plug-in gives one (the lab), else the simulator's verdict.
LAB_CHECK: Final = "worker round trip"
SIM_CHECK: Final = "simulated Worker flow"
NO_TARGET: Final = "no LAN target to simulate (pass --target IP:PORT)"

Events = Callable[[str], None]


def _quiet(_message: str) -> None:
    """No progress lines."""


@dataclass(frozen=True, slots=True)
class FixRequest:
    """What to fix and how (the parsed options of `meshpath fix`)."""

    mode: str
    options: FixOptions
    apply: bool = False
    target: str | None = None  # the LAN service IP:PORT the simulator predicts a flow to
    saved: Snapshot | None = None  # plan from this saved snapshot (never applied)


@dataclass(frozen=True, slots=True)
class Proposal:
    """The plan as shown before anything changes."""

    plan: Plan
    interrupted: jr.Journal | None
    forecast: str | None = None


@dataclass(frozen=True, slots=True)
class FixOutcome:
    proposal: Proposal
    result: ApplyResult


def session(
    host: Host,
    settings: Settings,
    request: FixRequest,
    *,
    round_trip: RoundTrip | None = None,
    show: Callable[[Proposal], None] = lambda _p: None,
    on_event: Events = _quiet,
) -> FixOutcome:
    """Plan (``request.apply`` False: a dry run, the result "planned") or plan and apply.

    An apply plans under the lock: a second run cannot plan the change this one is making,
    it fails at once (LockHeld) or, once this one is done, plans from what it left.
    ``show`` gets the proposal before the apply starts (it can take a while).
    """
    if request.saved is not None and request.apply:
        raise BadInputError("--snapshot plans from a file; it cannot be combined with --apply")
    options = msgspec.structs.replace(request.options, post_checks=check_names(round_trip))
    lock = jr.locked(host.state_dir) if request.apply else contextlib.nullcontext()
    with lock:
        snap, desired, plan = make_plan(host, settings, request.mode, options, request.saved)
        forecast = prediction(snap, desired, request.target, settings)
        proposal = Proposal(plan, interrupted(host.state_dir), forecast)
        if not request.apply:
            return FixOutcome(proposal, ApplyResult.planned(plan))
        refuse_host_files_for_netns(plan, host.netns, host.root)
        show(proposal)
        applier = make_applier(host, plan.expect, round_trip, on_event)
        applier.checks = {**applier.checks, **sim_check(host, settings, request.target)}
        return FixOutcome(proposal, applier.apply_locked(plan))


def rollback(
    host: Host, *, round_trip: RoundTrip | None = None, on_event: Events = _quiet
) -> ApplyResult:
    """Undo the newest applied (or interrupted) fix."""
    return make_applier(host, None, round_trip, on_event).rollback()


def resume(
    host: Host, *, round_trip: RoundTrip | None = None, on_event: Events = _quiet
) -> ApplyResult:
    """Finish an interrupted fix, checked afterwards against what its plan expects."""
    open_ = interrupted(host.state_dir)
    expect = open_.plan.expect if open_ is not None else None
    return make_applier(host, expect, round_trip, on_event).resume()


def interrupted(states: Path) -> jr.Journal | None:
    return jr.interrupted(states) if states.exists() else None


def make_plan(
    host: Host, settings: Settings, mode: str, options: FixOptions, saved: Snapshot | None
) -> tuple[Snapshot, Desired, Plan]:
    """Collect (or take the saved) host state, compute the desired state and plan the
    difference; route mode also reads what its persistence files hold now, so the plan's
    undo can put them back exactly."""
    snap = saved if saved is not None else host.snapshot()
    if mode == "route":
        links = [link.name for link in snap.links]
        found = files.host_files(host.root, settings.tunnel_interface, links)
        options = msgspec.structs.replace(
            options,
            networkd_file=found.networkd_file,
            existing_files=found.existing,
            absent_dirs=found.absent_dirs,
            notes=found.notes,
        )
    desired = desired_state(snap, settings, mode, options)  # type: ignore[arg-type]
    return snap, desired, plan_from(snap, desired, options)


def refuse_host_files_for_netns(plan: Plan, netns: str | None, root: Path) -> None:
    """A fix aimed at a namespace must not write the host's /etc: a systemd unit there
    would configure the host (the root namespace), not the namespace."""
    writes = any(isinstance(step.action, WriteFile) for step in plan.steps)
    if netns is not None and root == Path("/") and writes:
        raise BadInputError(
            f"--netns {netns}: this plan writes persistence files; give --root DIR for them "
            "(files under / would configure the host, not the namespace)"
        )


def check_names(round_trip: RoundTrip | None) -> tuple[str, ...]:
    return (LAB_CHECK,) if round_trip is not None else (SIM_CHECK,)


# -- the simulator's view ------------------------------------------------------------------
def fix_targets(snap: Snapshot, settings: Settings, target: str | None) -> tuple[Target, ...]:
    """``--target``, else the one default-target policy (checks.targets.choose_targets)."""
    given = (parse_target(target, "--target"),) if target is not None else ()
    return choose_targets(snap, settings.tunnel_interface, given)


def prediction(
    snap: Snapshot, desired: Desired, target: str | None, settings: Settings
) -> str | None:
    """The simulator's verdict on a Worker flow to each target once ``desired`` holds (the
    state the plan was diffed from)."""
    targets = fix_targets(snap, settings, target)
    if not targets:
        return NO_TARGET
    after = predict(snap, desired)
    return "\n".join(_forecast(after, t, settings) for t in targets)


def _forecast(after: Snapshot, target: Target, settings: Settings) -> str:
    worker = worker_for(target, settings.ranges)
    try:
        flow = simulate_flow(
            after, worker, target.address, target.port, tunnel=settings.tunnel_interface
        )
    except (ValueError, MeshpathError) as exc:
        # The simulator is another component: a gap in it must not block a fix.
        return f"the simulator could not predict this flow: {exc}"
    return f"Worker {worker} -> {target.endpoint} after the fix: {flow.outcome} ({flow.reason})"


def sim_check(host: Host, settings: Settings, target: str | None) -> dict[str, CheckFn]:
    """The simulator's verdict on the live host once more, as the named check: every
    target's flow delivered."""

    def check() -> tuple[bool, str]:
        snap = host.snapshot()
        targets = fix_targets(snap, settings, target)
        if not targets:
            return False, NO_TARGET
        flows = [
            (t, simulate_flow(snap, worker_for(t, settings.ranges), t.address, t.port,
                              tunnel=settings.tunnel_interface))
            for t in targets
        ]  # fmt: skip
        ok = all(f.outcome == "delivered" for _, f in flows)
        return ok, "; ".join(f"{t.endpoint}: {f.outcome}: {f.reason}" for t, f in flows)

    return {SIM_CHECK: check}


# -- the applier ---------------------------------------------------------------------------
def make_applier(
    host: Host, expect: Expect | None, round_trip: RoundTrip | None, on_event: Events
) -> Applier:
    """The Applier for ``host``: the round trip as a named check, and ``verify`` of what the
    plan expects as the post-check."""
    checks: dict[str, CheckFn] = {}
    post: CheckFn | None = None
    if round_trip is not None and expect is not None:
        trip, want = round_trip, expect
        checks[LAB_CHECK] = lambda: trip(want)
    if expect is not None:
        post = post_check(host, expect, round_trip)
    return Applier(
        runner=host.runner,
        state_dir=host.state_dir,
        root=host.root,
        netns=host.netns,
        checks=checks,
        post_check=post,
        on_event=on_event,
    )


def post_check(host: Host, expect: Expect, round_trip: RoundTrip | None) -> CheckFn:
    """The post-apply verify (tests swap it for a pass)."""
    return verify.as_check(host, expect, round_trip)
