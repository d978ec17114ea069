"""The keeper: what meshpath owns (from the newest applied journal), what it heals, and how
often; run through the real Applier with a runner that spawns nothing."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import msgspec
import pytest

from meshpath.apply import Applier
from meshpath.apply import journal as jr
from meshpath.config import Settings
from meshpath.errors import CommandError
from meshpath.fix import FixOptions, NftFile, Run, plan_fix
from meshpath.fix.model import Plan
from meshpath.render import nft as nft_render
from meshpath.runner import Completed
from meshpath.state import TABLE_WARP, NftState, Route, Snapshot
from meshpath.state.model import PROTO_FRR_STATIC
from meshpath.watch.keeper import (
    GUARD_CHECK,
    Backoff,
    Keeper,
    find_drift,
    heal_plan,
    owned_by,
    parse_masquerades,
)
from tests.builders import broken_connector, link
from tests.fix_builders import meshpath_route, nat_fixed, with_routes

S = Settings()
USER_ROUTE = Route(table=254, family=4, dst="192.168.77.0/24", gateway="10.0.1.1", dev="eth0")
WARP_ROUTE = Route(table=TABLE_WARP, family=4, dst="100.96.0.0/12", dev="CloudflareWARP")


@dataclass
class OkRunner:
    """Answers every command with success and records it (nothing is spawned)."""

    calls: list[tuple[str, ...]] = field(default_factory=list)
    fail: str | None = None  # a word that makes a command fail

    def run(
        self,
        argv: Sequence[str],
        *,
        check: bool = True,
        input_text: str | None = None,
        timeout: float | None = 60.0,
    ) -> Completed:
        self.calls.append(tuple(argv))
        bad = self.fail is not None and self.fail in argv
        if bad and check:
            raise CommandError(argv, 1, "failed")
        return Completed(tuple(argv), 1 if bad else 0, "", "failed" if bad else "")

    def has(self, program: str) -> bool:
        return True


@dataclass
class RoutedRunner(OkRunner):
    """OkRunner whose kernel has meshpath's route: the rollback's presence check finds it."""

    def run(
        self,
        argv: Sequence[str],
        *,
        check: bool = True,
        input_text: str | None = None,
        timeout: float | None = 60.0,
    ) -> Completed:
        done = super().run(argv, check=check, input_text=input_text, timeout=timeout)
        if "show" in argv and "route" in argv:
            route = {
                "dst": "100.64.0.0/12",
                "dev": "CloudflareWARP",
                "protocol": "232",
                "metric": 64,
            }
            return Completed(tuple(argv), 0, json.dumps([route]), "")
        return done


def applied(state: Path, snap: Snapshot, mode: str, **options: object) -> jr.Journal:
    """Apply ``mode``'s plan for ``snap`` (nothing spawned): the journal it leaves."""
    plan = plan_fix(snap, S, mode, FixOptions(**options))  # type: ignore[arg-type]
    result = Applier(OkRunner(), state).apply(plan)
    assert result.status == "applied", result
    journal = jr.last_applied(state, None)
    assert journal is not None
    return journal


def drifted(snap: Snapshot, *gone: Route, nft: NftState | None = None) -> Snapshot:
    routes = tuple(r for r in snap.routes if r not in gone)
    return msgspec.structs.replace(snap, routes=routes, nft=nft or snap.nft)


# -- ownership ---------------------------------------------------------------------------
def test_nat_journal_owns_its_route_and_its_table(tmp_path: Path) -> None:
    owned = owned_by(applied(tmp_path, broken_connector(), "nat"))
    assert [r.argv("replace") for r in owned.routes] == [meshpath_argv("replace", "100.64.0.0/12")]
    assert owned.nat == {nft_render.Masquerade("eth0", "100.64.0.0/12")}


def test_route_journal_without_frr_owns_the_kernel_route_only(tmp_path: Path) -> None:
    owned = owned_by(applied(tmp_path, broken_connector(), "route"))
    assert [r.dst for r in owned.routes] == ["100.64.0.0/12"]
    assert owned.nat is None


def test_a_bgp_journal_owns_nothing_the_kernel_keeps(tmp_path: Path) -> None:
    # FRR's staticd owns those routes (proto 196) and re-adds them itself.
    journal = applied(tmp_path, broken_connector(), "nat")
    bgp = msgspec.structs.replace(
        journal.plan,
        mode="bgp",
        expect=msgspec.structs.replace(journal.plan.expect, route_proto=PROTO_FRR_STATIC),
        steps=(),
    )
    owned = owned_by(msgspec.structs.replace(journal, plan=bgp, steps=()))
    assert owned.empty


def test_masquerades_read_back_exactly_what_the_renderer_wrote() -> None:
    rules = {
        nft_render.Masquerade("eth0", "100.64.0.0/12"),
        nft_render.Masquerade("eth1", "2606:4700:cf1:5000::/64"),
    }
    assert parse_masquerades(nft_render.render_replace(rules)) == rules


def test_an_nft_step_that_does_not_read_back_is_not_owned(tmp_path: Path) -> None:
    journal = applied(tmp_path, broken_connector(), "nat")
    step = journal.plan.steps[0]
    assert isinstance(step.action, NftFile)
    extra = step.action.text + "table inet cloudflare-warp {}\n"  # a hand-edited journal
    plan = msgspec.structs.replace(
        journal.plan,
        steps=(msgspec.structs.replace(step, action=NftFile(text=extra)), *journal.plan.steps[1:]),
    )
    assert owned_by(msgspec.structs.replace(journal, plan=plan)).nat is None


# -- drift and the heal plan -----------------------------------------------------------
def meshpath_argv(verb: str, dst: str) -> tuple[str, ...]:
    return (
        "ip", "-4", "route", verb, dst, "dev", "CloudflareWARP",
        "proto", "232", "metric", "64", "table", "main",
    )  # fmt: skip


def test_nothing_missing_is_no_drift(tmp_path: Path) -> None:
    owned = owned_by(applied(tmp_path, broken_connector(), "nat"))
    assert not find_drift(owned, nat_fixed()).healable


def test_the_heal_plan_names_only_meshpaths_route_and_table(tmp_path: Path) -> None:
    journal = applied(tmp_path, broken_connector(), "nat")
    owned = owned_by(journal)
    base = with_routes(nat_fixed(), USER_ROUTE, WARP_ROUTE)
    # The user's route, WARP's route and meshpath's are all gone, and so are the nft tables.
    snap = drifted(
        base, USER_ROUTE, WARP_ROUTE, meshpath_route(), nft=NftState(available=True, ruleset={})
    )
    plan = heal_plan(journal, owned, find_drift(owned, snap), snap)
    assert jr.is_heal(jr.new_journal(tmp_path, plan, None, Path("/")))
    runs = [s.action.argv for s in plan.steps if isinstance(s.action, Run)]
    assert runs == [meshpath_argv("replace", "100.64.0.0/12")]
    nfts = [s.action.text for s in plan.steps if isinstance(s.action, NftFile)]
    assert nfts == [nft_render.render_replace(owned.nat or ())]
    text = msgspec.json.encode(plan).decode()
    assert "65743" not in text and "cloudflare-warp" not in text and "192.168.77" not in text


def test_a_route_via_an_absent_tunnel_waits_for_it(tmp_path: Path) -> None:
    owned = owned_by(applied(tmp_path, broken_connector(), "route"))
    snap = drifted(broken_connector())
    gone = msgspec.structs.replace(
        snap, links=tuple(x for x in snap.links if x.name != "CloudflareWARP")
    )
    down = msgspec.structs.replace(
        snap,
        links=(
            *(x for x in snap.links if x.name != "CloudflareWARP"),
            link(3, "CloudflareWARP", up=False),
        ),
    )
    assert find_drift(owned, gone).waiting == "CloudflareWARP is absent"
    assert find_drift(owned, down).waiting == "CloudflareWARP is down"
    assert not find_drift(owned, gone).healable


# -- the keeper through the Applier ----------------------------------------------------
def test_no_applied_journal_only_watches(tmp_path: Path) -> None:
    runner = OkRunner()
    outcome = Keeper(runner, tmp_path).consider(broken_connector(), 0.0)
    assert outcome.action == "idle" and "watching only" in outcome.detail
    assert runner.calls == []


def test_a_heal_is_journaled_and_only_touches_what_is_owned(tmp_path: Path) -> None:
    applied(tmp_path, broken_connector(), "nat")
    runner = OkRunner()
    snap = drifted(with_routes(nat_fixed(), USER_ROUTE), USER_ROUTE, meshpath_route())
    outcome = Keeper(runner, tmp_path).consider(snap, 0.0)
    assert outcome.action == "healed", outcome
    assert outcome.kinds == {"route": 1} and outcome.source == 1
    changes = [c for c in runner.calls if c[:3] in (("ip", "-4", "route"),)]
    assert changes == [meshpath_argv("replace", "100.64.0.0/12")]
    heal = jr.load_all(tmp_path)[-1]
    assert heal.status == "applied" and jr.is_heal(heal)
    assert [s.key for s in heal.steps] == ["heal:guard", "heal:route:100.64.0.0/12"]


def test_rollback_after_a_heal_undoes_the_fix_not_the_heal(tmp_path: Path) -> None:
    """Regression: the heal journal is newer, but --rollback must undo the fix itself."""
    applied(tmp_path, broken_connector(), "nat")
    snap = drifted(nat_fixed(), meshpath_route())
    assert Keeper(OkRunner(), tmp_path).consider(snap, 0.0).action == "healed"
    newest = jr.last_applied(tmp_path, None)
    assert newest is not None and newest.seq == 1
    runner = RoutedRunner()
    result = Applier(runner, tmp_path).rollback()
    assert result.status == "rolled-back"
    assert meshpath_argv("del", "100.64.0.0/12") in runner.calls
    assert jr.last_applied(tmp_path, None) is None
    assert Keeper(OkRunner(), tmp_path).consider(snap, 1.0).action == "idle"


def test_the_guard_refuses_a_heal_once_the_fix_was_rolled_back(tmp_path: Path) -> None:
    applied(tmp_path, broken_connector(), "nat")
    journal = jr.last_applied(tmp_path, None)
    assert journal is not None
    keeper = Keeper(OkRunner(), tmp_path)
    plan = heal_plan(
        journal,
        owned_by(journal),
        find_drift(owned_by(journal), drifted(nat_fixed(), meshpath_route())),
        nat_fixed(),
    )
    jr.write(tmp_path, journal.with_status("rolled-back"))  # a rollback finished meanwhile
    runner = OkRunner()
    result = Applier(runner, tmp_path, checks={GUARD_CHECK: keeper._guard(journal.seq)}).apply(plan)
    assert result.status == "failed" and "no longer the newest" in (result.error or "")
    assert not any(c[:3] == ("ip", "-4", "route") for c in runner.calls)


def test_an_interrupted_fix_is_left_to_the_user(tmp_path: Path) -> None:
    journal = applied(tmp_path, broken_connector(), "nat")
    jr.write(tmp_path, journal.with_status("in-progress"))
    runner = OkRunner()
    outcome = Keeper(runner, tmp_path).consider(drifted(nat_fixed(), meshpath_route()), 0.0)
    assert outcome.action == "idle" and "--resume" in outcome.detail
    assert runner.calls == []


def test_a_failed_heal_is_reported_and_backs_off(tmp_path: Path) -> None:
    applied(tmp_path, broken_connector(), "nat")
    keeper = Keeper(OkRunner(fail="replace"), tmp_path)
    snap = drifted(nat_fixed(), meshpath_route())
    assert keeper.consider(snap, 0.0).action == "failed"
    deferred = keeper.consider(snap, 0.5)
    assert deferred.action == "deferred" and deferred.retry_at == pytest.approx(1.0)


# -- back-off --------------------------------------------------------------------------
def test_backoff_first_heal_at_once_then_doubling_while_drift_recurs() -> None:
    b = Backoff(base=1.0, cap=8.0, calm=60.0)
    times = []
    now = 0.0
    for _ in range(6):
        assert b.allowed(now)
        times.append(now)
        b = b.after(now, ok=True)
        now = b.next_at
    assert times == [0.0, 0.0, 1.0, 3.0, 7.0, 15.0]  # waits 0, 1, 2, 4, 8 (cap), 8


def test_backoff_resets_after_a_calm_period() -> None:
    b = Backoff(base=1.0, cap=300.0, calm=10.0).after(0.0, ok=True).after(1.0, ok=True)
    assert b.delay == 1.0
    b = b.after(100.0, ok=True)
    assert b.delay == 0.0 and b.allowed(100.0)


def test_a_failure_always_backs_off() -> None:
    b = Backoff(base=2.0, calm=0.0).after(0.0, ok=False)
    assert not b.allowed(1.9) and b.allowed(2.0)


def test_plans_of_heals_serialise_like_any_plan(tmp_path: Path) -> None:
    journal = applied(tmp_path, broken_connector(), "nat")
    owned = owned_by(journal)
    snap = drifted(nat_fixed(), meshpath_route(), nft=NftState(available=True, ruleset={}))
    plan = heal_plan(journal, owned, find_drift(owned, snap), snap)
    assert msgspec.json.decode(msgspec.json.encode(plan), type=Plan) == plan
