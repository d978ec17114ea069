"""``plan_fix``: the steps that take a snapshot to a fixed connector (pure).

A plan is ``diff(current, desired)`` (:func:`plan_from`): the desired state comes first
(:mod:`meshpath.fix.desired`), and a step is planned only for a part of it the current
state does not hold yet, so a plan made after a successful apply is empty ("nothing to
do"). Inverses are computed from the same snapshot: they restore exactly what was there
before (an absent nft table is deleted, a changed one restored; routes meshpath added are
deleted; FRR lines meshpath added are stripped, the user's kept; files put back byte for
byte).
"""

from __future__ import annotations

import json
from pathlib import PurePosixPath

from meshpath.config import Settings
from meshpath.fix import frrfit
from meshpath.fix.desired import Desired, DesiredFile, desired_state
from meshpath.fix.desired import fix_ranges as fix_ranges
from meshpath.fix.desired import frr_has_staticd as frr_has_staticd
from meshpath.fix.desired import has_kernel_route as has_kernel_route
from meshpath.fix.desired import route_specs as route_specs
from meshpath.fix.desired import tunnel_has_v6 as tunnel_has_v6
from meshpath.fix.model import (
    PROTO_MESHPATH,
    Expect,
    FileState,
    FixOptions,
    FrrReload,
    Mode,
    NftFile,
    Plan,
    PostCheck,
    RemoveFile,
    Run,
    Step,
    WaitBgp,
    WaitNatDrain,
    WriteFile,
)
from meshpath.render import frr as frr_render
from meshpath.render import nft as nft_render
from meshpath.render import systemd
from meshpath.state import Snapshot
from meshpath.state.model import PROTO_FRR_STATIC

NFT_PROBE = ("nft", "list", "table", "inet", "meshpath")
FRR_PROBE = ("vtysh", "-c", "show running-config")
# How long --replace-nat waits for masqueraded connections to end before deleting the
# table anyway (a long-lived connection would otherwise hold the migration forever).
NAT_DRAIN_TIMEOUT = 10.0

Part = tuple[list[Step], list[str]]  # the steps a part of the desired state needs, and
# what of it was found already in place


def plan_fix(snapshot: Snapshot, settings: Settings, mode: Mode, options: FixOptions) -> Plan:
    """The plan for ``mode`` on the host ``snapshot`` describes."""
    return plan_from(snapshot, desired_state(snapshot, settings, mode, options), options)


def plan_from(current: Snapshot, desired: Desired, options: FixOptions) -> Plan:
    """``diff(current, desired)``: a step for each part of ``desired`` that ``current``
    lacks, in the order that keeps the path working (NAT first; routes before their
    persistence; staticd's routes before meshpath's kernel routes go; NAT removed last,
    after the peer has the routes). ``options`` holds the persistence files as they are."""
    parts = [
        _nat_add(current, desired),
        _frr(current, desired),
        _kernel_routes(current, desired),
        _handover(current, desired),
        _files(desired, options),
    ]
    steps = [s for part, _ in parts for s in part]
    already = [a for _, found in parts for a in found]
    if desired.peer is not None and steps:
        steps.append(_wait_step(desired.peer, desired.ranges, desired.bgp_timeout))
    steps += _nat_removal(current, desired)
    return Plan(
        mode=desired.mode,
        steps=tuple(steps),
        expect=desired.expect(),
        already=tuple(already),
        notes=desired.notes,
    )


# -- nft -------------------------------------------------------------------------------
def _nat_add(snap: Snapshot, desired: Desired) -> Part:
    if not desired.nat:
        return [], []
    want = frozenset(desired.nat)
    have = snap.nft.view.masquerades
    if have == want:
        sources = ", ".join(m.source for m in desired.nat)
        return [], [f"nft table inet meshpath masquerades {sources}"]
    text = nft_render.render_replace(want)
    step = Step(
        key="nft:inet meshpath",
        description="masquerade the Cloudflare source range leaving the LAN (table inet meshpath)",
        action=NftFile(text=text),
        inverse=_nft_restore(snap),
        check="table inet meshpath absent" if have is None else "table inet meshpath differs",
        probe=NFT_PROBE,
        detail=text,
    )
    return [step], []


def _nft_restore(snap: Snapshot) -> NftFile:
    old = nft_render.restore_json(snap.nft.view)
    if old is None:
        return NftFile(text=nft_render.render_delete())
    return NftFile(text=json.dumps(old), json=True)


def _nat_removal(snap: Snapshot, desired: Desired) -> list[Step]:
    """Remove meshpath's NAT only after the peer accepted the routes, in three moves so no
    connection open meanwhile breaks: empty the nat chain (new connections go without NAT;
    the chain keeps the NAT hooks, so open masqueraded ones keep their translation); the
    caller's round-trip checks (a failure rolls back and NAT stays); wait until the
    masqueraded connections ended; only then delete the table (and with it the hooks)."""
    have = snap.nft.view.masquerades
    if desired.nat != () or have is None:
        return []
    restore = _nft_restore(snap)
    steps = [
        Step(
            key="nft:empty inet meshpath",
            description="stop masquerading new connections (the nat chain stays for open ones)",
            action=NftFile(text=nft_render.render_empty()),
            inverse=restore,
            check="table inet meshpath masquerades",
            probe=NFT_PROBE,
        )
    ]
    steps += [
        Step(
            key=f"check:{name}",
            description=f"check without NAT: {name}",
            action=PostCheck(name=name),
            inverse=None,
            check="NAT is removed only when this passes",
        )
        for name in desired.post_checks
    ]
    steps.append(
        Step(
            key="wait:nat-drain",
            description="wait for the connections still masqueraded to end",
            action=WaitNatDrain(
                sources=tuple(sorted({m.source for m in have})), timeout=NAT_DRAIN_TIMEOUT
            ),
            inverse=None,
            check="deleting the last nat chain breaks the connections it translates",
        )
    )
    steps.append(
        Step(
            key="nft:remove inet meshpath",
            description="remove meshpath's NAT (table inet meshpath): BGP carries the return path",
            action=NftFile(text=nft_render.render_delete()),
            inverse=restore,
            check="table inet meshpath present",
            probe=NFT_PROBE,
        )
    )
    return steps


# -- kernel routes ---------------------------------------------------------------------
def _route_probe(spec: systemd.RouteSpec) -> tuple[str, ...]:
    return ("ip", "route", "show", spec.dst, "table", "main")


def _kernel_routes(snap: Snapshot, desired: Desired) -> Part:
    steps, already = [], []
    tunnel = desired.tunnel
    for spec in desired.kernel_routes:
        if has_kernel_route(snap, spec):
            already.append(f"route {spec.dst} dev {tunnel} proto {spec.proto}")
            continue
        steps.append(
            Step(
                key=f"route:{spec.dst}",
                description=f"route {spec.dst} via {tunnel} (main table, proto {spec.proto})",
                action=Run(argv=spec.argv("replace")),
                inverse=Run(argv=spec.argv("del")),
                check=f"no route {spec.dst} dev {tunnel} proto {spec.proto} in table main",
                probe=_route_probe(spec),
            )
        )
    return steps, already


def _handover(snap: Snapshot, desired: Desired) -> Part:
    """Delete meshpath's own kernel routes (nat mode's) once staticd holds the same
    prefixes: zebra prefers a kernel route (distance 0) to a static one, so while ours
    exists staticd's route is never selected, installed or redistributed."""
    steps = [
        Step(
            key=f"route-handover:{spec.dst}",
            description=f"hand {spec.dst} over to staticd: delete meshpath's kernel route",
            action=Run(argv=spec.argv("del")),
            inverse=Run(argv=spec.argv("replace")),
            check=f"route {spec.dst} proto {spec.proto} present (shadows staticd's)",
            probe=_route_probe(spec),
        )
        for spec in desired.absent_routes
        if has_kernel_route(snap, spec)
    ]
    return steps, []


# -- FRR -------------------------------------------------------------------------------
def _frr(snap: Snapshot, desired: Desired) -> Part:
    intent = desired.frr
    if intent is None:
        return [], []
    running = snap.frr.config.text
    if intent.bgp:
        why = f"advertised to {intent.peer} through prefix-list {frr_render.PREFIX_LIST}"
        seen = f"FRR config for peer {intent.peer} (AS {intent.asn})"
    else:
        why = "FRR staticd owns the routes (persistent, re-added on link up)"
        seen = f"FRR static routes {', '.join(intent.statics)}"
    if frrfit.is_applied(running, intent):
        return [], [seen]
    desired_text = frr_render.merge_text(running, intent)
    what = "router bgp and " if intent.bgp else ""
    step = Step(
        key="frr:meshpath",
        description=f"FRR: {what}static routes {', '.join(intent.statics)} "
        f"via {intent.tunnel}; {why}",
        action=FrrReload(intent=intent),
        inverse=FrrReload(intent=intent, remove=True),
        check="meshpath's FRR lines missing from the running config",
        probe=FRR_PROBE,
        detail=frr_render.diff(running, desired_text),  # against the real running config
    )
    return [step], []


def _wait_step(peer: str, prefixes: tuple[str, ...], timeout: float) -> Step:
    return Step(
        key=f"wait:{peer}",
        description=f"wait (<= {timeout:g}s) for the session with {peer} and exactly "
        f"{', '.join(prefixes)} advertised",
        action=WaitBgp(peer=peer, prefixes=prefixes, timeout=timeout),
        inverse=None,
        check="session and advertisement are confirmed after every FRR change",
    )


# -- persistence files ---------------------------------------------------------------------
def _files(desired: Desired, options: FixOptions) -> Part:
    steps, already = [], []
    absent = set(options.absent_dirs)
    for want in desired.files:
        current = options.existing_files.get(want.path)
        if _same_file(current, want):
            already.append(f"file /{want.path}")
            continue
        created = _created_dirs(want.path, absent)
        absent -= set(created)  # made by this step: a later step finds them
        steps.append(_file_step(want, current, created))
    return steps, already


def _same_file(current: FileState | None, want: DesiredFile) -> bool:
    if current is None:
        return False
    if want.link is not None:
        return current.link == want.link
    return current.link is None and current.data == want.content.encode()


def _created_dirs(path: str, absent: set[str]) -> tuple[str, ...]:
    """The parents of ``path`` that writing it creates, deepest first: the undo removes
    exactly these (when empty), never a directory that was there before."""
    parents = [str(p) for p in PurePosixPath(path).parents if str(p) != "."]
    return tuple(p for p in parents if p in absent)


def _file_step(want: DesiredFile, current: FileState | None, dirs: tuple[str, ...]) -> Step:
    target = want.link
    return Step(
        key=f"file:{want.path}",
        description=f"{'link' if target else 'write'} /{want.path}"
        + (f" -> {target}" if target else ""),
        action=WriteFile(path=want.path, content=want.content, link=target),
        inverse=_restore(want.path, current, dirs),
        check="file absent" if current is None else "file differs",
        detail=want.content,
    )


def _restore(path: str, before: FileState | None, dirs: tuple[str, ...]) -> WriteFile | RemoveFile:
    """The undo of writing ``path``: remove it (and the directories made for it), or put
    the user's file or symlink back exactly: bytes, mode, owner, symlink-ness."""
    if before is None:
        return RemoveFile(path=path, dirs=dirs)
    owner = (before.uid, before.gid)
    if before.link is not None:
        return WriteFile(path=path, link=before.link, owner=owner)
    try:
        text, data = before.data.decode("utf-8"), None
    except UnicodeDecodeError:
        text, data = "", before.data
    return WriteFile(path=path, content=text, data=data, mode=before.mode, owner=owner)


def expect_for(mode: Mode, settings: Settings, peer: str | None = None) -> Expect:
    """What verify checks when no journal says (``verify --mode``)."""
    ranges = (str(settings.ranges.source_v4),)
    proto = PROTO_MESHPATH if mode == "nat" else PROTO_FRR_STATIC
    return Expect(
        tunnel=settings.tunnel_interface,
        ranges=ranges,
        route_proto=proto,
        nat=True if mode == "nat" else None,
        peer=peer,
        advertised=ranges if peer else (),
    )
