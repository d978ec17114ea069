"""`meshpath fix --mode profile`: the device profile's Split Tunnels through Cloudflare's API.

Thin: validates the options, reads the profile (apply/profile.py), plans (fix/profile.py),
and hands the plan to the same Applier, journal and rollback as every other mode.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from meshpath.apply import Applier, ApplyResult
from meshpath.apply import journal as jr
from meshpath.apply.profile import DEFAULT_TIMEOUT, ProfileApi, ProfileApiError, sdk_api
from meshpath.apply.verify import RoundTrip, verify
from meshpath.cli.context import AppContext
from meshpath.collect import collect_snapshot
from meshpath.errors import BadInputError
from meshpath.fix.model import Expect, Plan
from meshpath.fix.profile import check_account, check_api_base, check_policy, plan_profile
from meshpath.runner import SubprocessRunner
from meshpath.state import codec


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


def make_plan(
    actx: AppContext, opts: ProfileOptions, netns: str | None, snapshot_file: Path | None
) -> tuple[Plan, ProfileApi]:
    snap = codec.load(snapshot_file) if snapshot_file is not None else collect_snapshot(netns)
    api = sdk_api(opts.api_base, netns, opts.api_timeout)
    current = api.read(str(opts.account_id), opts.policy_id)
    plan = plan_profile(
        snap,
        actx.settings,
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
    netns: str | None, expect: Expect, seconds: float, trip: RoundTrip | None
) -> Callable[[], tuple[bool, str]] | None:
    """The post-check: table 65743 routes the ranges (polled for ``seconds``, as WARP picks
    the profile up when it next fetches it), then the lab's round trip if asked. None when
    not asked to wait: the kernel's side is then `meshpath verify --mode profile`'s job."""
    if seconds <= 0 and trip is None:
        return None
    runner = SubprocessRunner(netns=netns)

    def check() -> tuple[bool, str]:
        deadline = time.monotonic() + seconds
        while True:
            results = verify(runner, netns, expect)
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


def interrupted(states: Path) -> jr.Journal | None:
    return jr.interrupted(states) if states.exists() else None
