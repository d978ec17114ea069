"""`meshpath fix --mode profile`: the device profile's Split Tunnels through Cloudflare's API.

Validates the options, reads the profile (apply/profile.py), plans (fix/profile.py), and
hands the plan to the same Applier, journal and rollback as every other mode
(:func:`session`, the profile's :func:`meshpath.usecase.fix.session`).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

from meshpath.apply import Applier, ApplyResult
from meshpath.apply.profile import DEFAULT_TIMEOUT, ProfileApi, ProfileApiError, sdk_api
from meshpath.config import Settings
from meshpath.errors import BadInputError
from meshpath.fix.model import Expect, Plan
from meshpath.fix.profile import check_account, check_api_base, check_policy, plan_profile
from meshpath.state import Snapshot
from meshpath.usecase import verify
from meshpath.usecase.fix import Events, FixOutcome, Proposal, interrupted, make_applier
from meshpath.usecase.host import Host
from meshpath.usecase.verify import RoundTrip


@dataclass(frozen=True, slots=True)
class ProfileOptions:
    account_id: str | None
    policy_id: str | None = None
    api_base: str | None = None
    api_timeout: float = DEFAULT_TIMEOUT
    wait_warp: float = 0.0


def check_options(opts: ProfileOptions) -> ProfileOptions:
    """Every option checked before anything is read or changed (exit 2)."""
    if not 0 < opts.api_timeout <= 300:
        raise BadInputError(f"--api-timeout {opts.api_timeout:g}: expected 0 < seconds <= 300")
    if not 0 <= opts.wait_warp <= 600:
        raise BadInputError(f"--wait-warp {opts.wait_warp:g}: expected 0 <= seconds <= 600")
    return ProfileOptions(
        account_id=check_account(opts.account_id),
        policy_id=check_policy(opts.policy_id),
        api_base=check_api_base(opts.api_base),
        api_timeout=opts.api_timeout,
        wait_warp=opts.wait_warp,
    )


def session(
    host: Host,
    settings: Settings,
    opts: ProfileOptions,
    *,
    apply: bool = False,
    saved: Snapshot | None = None,
    round_trip: RoundTrip | None = None,
    show: Callable[[Proposal], None] = lambda _p: None,
    on_event: Events = lambda _m: None,
) -> FixOutcome:
    """Plan from the API's list (a dry run: result "planned"), or plan and apply it."""
    opts = check_options(opts)
    if apply and saved is not None:
        raise BadInputError("--snapshot plans from a file; it cannot be combined with --apply")
    plan, api = make_plan(host, settings, opts, saved)
    proposal = Proposal(plan, interrupted(host.state_dir))
    if not apply:
        return FixOutcome(proposal, ApplyResult.planned(plan))
    show(proposal)
    applier = make_applier(host, plan.expect, round_trip, on_event)
    applier.post_check = wait_for_warp(host, plan.expect, opts.wait_warp, round_trip)
    result = prepare(applier, api, opts).apply(plan)
    raise_api_refusal(result)
    return FixOutcome(proposal, result)


def make_plan(
    host: Host, settings: Settings, opts: ProfileOptions, saved: Snapshot | None
) -> tuple[Plan, ProfileApi]:
    snap = saved if saved is not None else host.snapshot()
    api = sdk_api(opts.api_base, host.netns, opts.api_timeout)
    current = api.read(str(opts.account_id), opts.policy_id)
    plan = plan_profile(
        snap,
        settings,
        current,
        account_id=str(opts.account_id),
        policy_id=opts.policy_id,
        api_base=opts.api_base,
    )
    return plan, api


def prepare(applier: Applier, api: ProfileApi, opts: ProfileOptions) -> Applier:
    """The applier with this run's API client (same token) for the step and its undo."""
    token, timeout = api.token, api.timeout

    def factory(base: str | None, ns: str | None) -> ProfileApi:
        return ProfileApi(token=token, api_base=base, netns=ns, timeout=timeout)

    applier.profile_api = factory
    return applier


def wait_for_warp(
    host: Host, expect: Expect, seconds: float, trip: RoundTrip | None
) -> Callable[[], tuple[bool, str]] | None:
    """The post-check: table 65743 routes the ranges (polled for ``seconds``, as WARP picks
    the profile up when it next fetches it), then the lab's round trip if asked. None when
    not asked to wait: the kernel's side is then `meshpath verify --mode profile`'s job."""
    if seconds <= 0 and trip is None:
        return None

    def check() -> tuple[bool, str]:
        deadline = time.monotonic() + seconds
        while True:
            results = verify.run(host, expect)
            bad = [f"{c.name}: {c.detail}" for c in results if not c.ok]
            if not bad or time.monotonic() >= deadline:
                break
            time.sleep(0.2)
        if not bad and trip is not None:
            ok, detail = trip(expect)
            bad = [] if ok else [f"worker round trip: {detail}"]
        return (not bad, "; ".join(bad) or "WARP's table 65743 routes the ranges")

    return check


def raise_api_refusal(result: ApplyResult) -> None:
    """The API refused the write itself (401/403/5xx, malformed, timeout): nothing changed,
    so it is an environment error like a refused read (exit 3), not a failed fix (exit 1)."""
    error = result.error or ""
    if result.status == "failed" and error.startswith("Cloudflare API"):
        raise ProfileApiError(f"{error}; nothing changed")
