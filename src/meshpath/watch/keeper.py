"""The keeper (``meshpath watch --heal``): puts back what meshpath owns, and nothing else.

What meshpath owns comes from the newest applied journal (the same one ``meshpath fix
--rollback`` would undo): its kernel routes (protocol 232, metric 64, table main, via the
tunnel: from the plan's :class:`~meshpath.fix.model.Expect` when it says protocol 232) and
its nft table ``inet meshpath`` as the journal's nft step wrote it. WARP's table 65743, its
rules and its ``inet cloudflare-warp`` table, FRR's routes and every other route are never
named: the heal steps are rebuilt from those two sources by the same functions the planner
uses, not copied from the journal's argv.

A heal is a plan like any fix (keys ``heal:*``) run by the same :class:`Applier`, so it is
validated, journaled, locked against a concurrent ``meshpath fix`` and rolled back on
failure. Its first step re-checks, under the lock, that the journal it heals is still the
newest applied one (a ``--rollback`` may have finished meanwhile).

Pure: :func:`owned_by`, :func:`find_drift`, :func:`heal_plan`, :class:`Backoff`.
Edge: :class:`Keeper`.
"""

from __future__ import annotations

import dataclasses
import ipaddress
import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from meshpath.apply import Applier, InterruptedRun, LockHeld
from meshpath.apply import journal as jr
from meshpath.errors import MeshpathError
from meshpath.fix.model import PROTO_MESHPATH, NftFile, Plan, PostCheck, Run, Step
from meshpath.fix.plan import NFT_PROBE, has_kernel_route, route_specs
from meshpath.render import nft as nft_render
from meshpath.render.systemd import RouteSpec
from meshpath.runner import Runner
from meshpath.state import Snapshot

NAT_STEP_KEY: Final = "nft:inet meshpath"
GUARD_CHECK: Final = "keeper: the healed journal is still the newest applied fix"
_MASQUERADE = re.compile(r'^\t\toifname "([^"]+)" ip6? saddr (\S+) masquerade$', re.MULTILINE)


# -- what meshpath owns (pure) ---------------------------------------------------------
@dataclass(frozen=True, slots=True)
class Owned:
    """What journal ``seq`` applied and the keeper keeps in place."""

    seq: int
    tunnel: str
    routes: tuple[RouteSpec, ...]
    nat: frozenset[nft_render.Masquerade] | None  # None: the journal wrote no nft table

    @property
    def empty(self) -> bool:
        return not self.routes and self.nat is None


def owned_by(journal: jr.Journal) -> Owned:
    expect = journal.plan.expect
    routes: tuple[RouteSpec, ...] = ()
    if expect.route_proto == PROTO_MESHPATH:
        nets = [ipaddress.ip_network(r) for r in expect.ranges]
        routes = tuple(route_specs(expect.tunnel, nets))
    return Owned(journal.seq, expect.tunnel, routes, _nat_of(journal))


def parse_masquerades(text: str) -> frozenset[nft_render.Masquerade]:
    """The masquerades of an ``nft -f`` file :func:`meshpath.render.nft.render_replace` wrote."""
    return frozenset(nft_render.Masquerade(m[1], m[2]) for m in _MASQUERADE.finditer(text))


def _nat_of(journal: jr.Journal) -> frozenset[nft_render.Masquerade] | None:
    """The table the journal's nft step wrote, when it was done and reads back exactly
    (rendering the parsed rules gives the same file: nothing else is in it)."""
    for step, record in zip(journal.plan.steps, journal.steps, strict=True):
        action = step.action
        if step.key != NAT_STEP_KEY or record.state != "done" or not isinstance(action, NftFile):
            continue
        rules = parse_masquerades(action.text)
        if not action.json and rules and nft_render.render_replace(rules) == action.text:
            return rules
    return None


@dataclass(frozen=True, slots=True)
class Drift:
    """What of the owned state is missing now, and why a part cannot be healed yet."""

    routes: tuple[RouteSpec, ...] = ()
    nat: bool = False
    waiting: str | None = None

    @property
    def healable(self) -> bool:
        return bool(self.routes) or self.nat


def find_drift(owned: Owned, snap: Snapshot) -> Drift:
    missing = tuple(spec for spec in owned.routes if not has_kernel_route(snap, spec))
    waiting = None
    link = snap.link(owned.tunnel)
    if missing and (link is None or not link.admin_up):
        # A route via an absent or down device cannot be added: wait for WARP to bring the
        # tunnel back (its link event triggers the next evaluation).
        waiting, missing = f"{owned.tunnel} is {'absent' if link is None else 'down'}", ()
    nat = False
    if owned.nat is not None and snap.nft.ruleset is not None:
        nat = snap.nft.view.masquerades != owned.nat
    return Drift(missing, nat, waiting)


def heal_plan(journal: jr.Journal, owned: Owned, drift: Drift, snap: Snapshot) -> Plan:
    """The heal as a plan: the guard, then each missing route, then the nft table."""
    seq = journal.seq
    steps = [
        Step(
            key=f"{jr.HEAL_KEY_PREFIX}guard",
            description=f"journal #{seq} is still the newest applied fix",
            action=PostCheck(name=GUARD_CHECK),
            inverse=None,
            check="a rollback may have finished since the drift was seen",
        )
    ]
    steps += [_route_step(spec, seq) for spec in drift.routes]
    if drift.nat and owned.nat is not None:
        steps.append(_nat_step(owned.nat, snap, seq))
    return Plan(
        mode=journal.plan.mode,
        steps=tuple(steps),
        expect=journal.plan.expect,
        notes=(f"meshpath watch --heal: re-asserts what journal #{seq} applied",),
    )


def _route_step(spec: RouteSpec, seq: int) -> Step:
    return Step(
        key=f"{jr.HEAL_KEY_PREFIX}route:{spec.dst}",
        description=f"re-add route {spec.dst} via {spec.dev} (main table, proto {spec.proto})",
        action=Run(argv=spec.argv("replace")),
        inverse=Run(argv=spec.argv("del")),
        check=f"journal #{seq} applied it; it is missing from table main",
        probe=("ip", "route", "show", spec.dst, "table", "main"),
    )


def _nat_step(rules: frozenset[nft_render.Masquerade], snap: Snapshot, seq: int) -> Step:
    old = nft_render.restore_json(snap.nft.view)
    undo = (
        NftFile(text=nft_render.render_delete())
        if old is None
        else NftFile(text=json.dumps(old), json=True)
    )
    text = nft_render.render_replace(rules)
    return Step(
        key=f"{jr.HEAL_KEY_PREFIX}{NAT_STEP_KEY}",
        description="re-write table inet meshpath as it was applied",
        action=NftFile(text=text),
        inverse=undo,
        check=f"journal #{seq} applied it; it is missing or differs",
        probe=NFT_PROBE,
        detail=text,
    )


def describe(plan: Plan) -> str:
    """What a heal re-asserts, for its one log line (every step but the guard)."""
    return "; ".join(s.description for s in plan.steps if not isinstance(s.action, PostCheck))


def heal_kinds(plan: Plan) -> dict[str, int]:
    kinds = {"route": 0, "nft": 0}
    for step in plan.steps:
        if isinstance(step.action, Run):
            kinds["route"] += 1
        elif isinstance(step.action, NftFile):
            kinds["nft"] += 1
    return {k: n for k, n in kinds.items() if n}


# -- rate limit (pure) -----------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class Backoff:
    """When the next heal may run.

    The first heal runs at once. A drift that comes back sooner than ``calm`` seconds after
    the last heal (something keeps undoing it), or a heal that failed, doubles the wait
    before the next one, from ``base`` up to ``cap``; a drift after a calm period is healed
    at once again. That bounds a fight with another program to one heal per ``cap``.
    """

    base: float = 1.0
    cap: float = 300.0
    calm: float = 60.0
    delay: float = 0.0
    last: float | None = None
    next_at: float = 0.0

    def allowed(self, now: float) -> bool:
        return now >= self.next_at

    def after(self, now: float, ok: bool) -> Backoff:
        quick = self.last is not None and now - self.last < self.calm
        delay = min(self.cap, max(self.base, self.delay * 2)) if quick or not ok else 0.0
        return dataclasses.replace(self, delay=delay, last=now, next_at=now + delay)


# -- the edge --------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class KeeperOutcome:
    """What the keeper did after one evaluation.

    ``action``: ``ok`` (nothing missing), ``idle`` (nothing to keep: ``detail`` says why),
    ``waiting`` (missing but cannot be healed yet), ``deferred`` (back-off or lock: retry at
    ``retry_at``), ``healed`` or ``failed``.
    """

    action: str
    detail: str = ""
    kinds: dict[str, int] = dataclasses.field(default_factory=dict)
    journal: str | None = None
    source: int | None = None
    retry_at: float | None = None


@dataclass
class Keeper:
    runner: Runner
    state_dir: Path
    root: Path = Path("/")
    netns: str | None = None
    backoff: Backoff = dataclasses.field(default_factory=Backoff)

    def consider(self, snap: Snapshot, now: float) -> KeeperOutcome:
        journal = jr.last_applied(self.state_dir, self.netns) if self.state_dir.is_dir() else None
        if journal is None:
            return KeeperOutcome("idle", "no applied meshpath fix journal: watching only")
        if journal.status != "applied":
            return KeeperOutcome(
                "idle",
                f"journal #{journal.seq} is {journal.status}: finish it with "
                "'meshpath fix --resume' or undo it with 'meshpath fix --rollback'",
            )
        owned = owned_by(journal)
        if owned.empty:
            return KeeperOutcome(
                "idle", f"journal #{journal.seq} ({journal.mode}) owns no kernel route or nft table"
            )
        drift = find_drift(owned, snap)
        if not drift.healable:
            if drift.waiting:
                return KeeperOutcome("waiting", drift.waiting, source=journal.seq)
            return KeeperOutcome("ok", source=journal.seq)
        if not self.backoff.allowed(now):
            return KeeperOutcome(
                "deferred", "back-off", source=journal.seq, retry_at=self.backoff.next_at
            )
        return self._heal(journal, heal_plan(journal, owned, drift, snap), now)

    def _heal(self, journal: jr.Journal, plan: Plan, now: float) -> KeeperOutcome:
        applier = Applier(
            runner=self.runner,
            state_dir=self.state_dir,
            root=self.root,
            netns=self.netns,
            checks={GUARD_CHECK: self._guard(journal.seq)},
        )
        what = describe(plan)
        try:
            result = applier.apply(plan)
        except LockHeld:
            return KeeperOutcome("deferred", "a meshpath fix holds the lock", retry_at=now + 1.0)
        except InterruptedRun as exc:
            return KeeperOutcome("idle", str(exc))
        except MeshpathError as exc:
            self.backoff = self.backoff.after(now, ok=False)
            return KeeperOutcome("failed", f"{what}: {exc}", source=journal.seq)
        self.backoff = self.backoff.after(now, ok=result.ok)
        path = str(result.journal) if result.journal else None
        if not result.ok:
            detail = f"{what}: {result.failed_step}: {result.error}"
            return KeeperOutcome("failed", detail, journal=path, source=journal.seq)
        return KeeperOutcome("healed", what, heal_kinds(plan), path, journal.seq)

    def _guard(self, seq: int) -> Callable[[], tuple[bool, str]]:
        def check() -> tuple[bool, str]:
            newest = newest_fix(self.state_dir, self.netns)
            if newest is not None and newest.seq == seq and newest.status == "applied":
                return True, f"journal #{seq} is the newest applied fix"
            now = "none" if newest is None else f"#{newest.seq} ({newest.status})"
            return False, f"journal #{seq} is no longer the newest applied fix (now {now})"

        return check


def newest_fix(state_dir: Path, netns: str | None) -> jr.Journal | None:
    """The newest journal for ``netns`` that is a fix (not a heal) and not undone."""
    for journal in reversed(jr.load_all(state_dir)):
        if journal.netns != netns or jr.is_heal(journal):
            continue
        if journal.status in ("applied", *jr.OPEN_STATUSES):
            return journal
    return None
