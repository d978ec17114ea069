"""``plan_fix``: the steps that take a snapshot to a fixed connector (pure).

Each step is planned only when the snapshot shows it is not yet in place, so a plan made
after a successful apply is empty ("nothing to do"). Inverses are computed from the same
snapshot: they restore exactly what was there before (an absent nft table is deleted, a
changed one restored; routes meshpath added are deleted; FRR lines meshpath added are
stripped, the user's kept).
"""

from __future__ import annotations

import ipaddress
import json
from collections.abc import Sequence
from pathlib import PurePosixPath

from meshpath.config import Settings
from meshpath.fix import validate
from meshpath.fix.model import (
    METRIC_MESHPATH,
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
from meshpath.ranges import IPNetwork
from meshpath.render import frr as frr_render
from meshpath.render import nft as nft_render
from meshpath.render import systemd
from meshpath.state import TABLE_MAIN, Snapshot
from meshpath.state.model import PROTO_FRR_STATIC

NFT_PROBE = ("nft", "list", "table", "inet", "meshpath")
FRR_PROBE = ("vtysh", "-c", "show running-config")
# How long --replace-nat waits for masqueraded connections to end before deleting the
# table anyway (a long-lived connection would otherwise hold the migration forever).
NAT_DRAIN_TIMEOUT = 10.0


def plan_fix(snapshot: Snapshot, settings: Settings, mode: Mode, options: FixOptions) -> Plan:
    """The plan for ``mode`` on the host ``snapshot`` describes."""
    tunnel = settings.tunnel_interface
    validate.check_options(snapshot, mode, options)
    validate.require_link(snapshot, tunnel, "tunnel")
    lan = validate.lan_interface(snapshot, tunnel, options.lan_if)
    ranges = fix_ranges(snapshot, settings, options)
    validate.check_no_lan_overlap(snapshot, tunnel, ranges)
    validate.check_frr(snapshot, mode)
    if mode == "nat":
        return _nat_plan(snapshot, tunnel, lan, ranges)
    if mode == "route":
        return _route_plan(snapshot, tunnel, ranges, options)
    return _bgp_plan(snapshot, tunnel, ranges, options)


def fix_ranges(
    snapshot: Snapshot, settings: Settings, options: FixOptions
) -> tuple[IPNetwork, ...]:
    """source_v4 (+ device_v4 when asked), + source_v6 when the tunnel carries IPv6."""
    r = settings.ranges
    out: list[IPNetwork] = [r.source_v4]
    if options.also_device_range:
        out.append(r.device_v4)
    if tunnel_has_v6(snapshot, settings.tunnel_interface):
        out.append(r.source_v6)
    return tuple(out)


def _names(ranges: Sequence[IPNetwork]) -> tuple[str, ...]:
    return tuple(str(r) for r in ranges)


def tunnel_has_v6(snapshot: Snapshot, tunnel: str) -> bool:
    return any(
        a.family == 6 and not ipaddress.ip_address(a.local).is_link_local
        for a in snapshot.addresses_of(tunnel)
    )


# -- nat -------------------------------------------------------------------------------
def _nat_plan(snap: Snapshot, tunnel: str, lan: str, ranges: Sequence[IPNetwork]) -> Plan:
    nft_render.nft_ifname(lan, "LAN interface")  # refuse a name nft cannot match exactly
    sources = [r for r in ranges if r in (ranges[0],) or r.version == 6]
    want = frozenset(nft_render.Masquerade(lan, str(r)) for r in sources)
    steps: list[Step] = []
    already: list[str] = []
    nft_step = _nat_step(snap, want)
    if nft_step is None:
        already.append(f"nft table inet meshpath masquerades {', '.join(map(str, sources))}")
    else:
        steps.append(nft_step)
    routes, done = _kernel_route_steps(snap, tunnel, ranges)
    notes = (
        "NAT hides the Worker's address from the service; prefer --mode route or bgp.",
        "the route is what brings the de-NATed reply back into the tunnel (NAT alone does not).",
    )
    expect = Expect(
        tunnel=tunnel,
        ranges=_names(ranges),
        route_proto=PROTO_MESHPATH,
        nat=True,
        lan_if=lan,
        nat_sources=_names(sources),
    )
    return Plan(
        mode="nat",
        steps=(*steps, *routes),
        expect=expect,
        already=(*already, *done),
        notes=notes,
    )


def _nat_step(snap: Snapshot, want: frozenset[nft_render.Masquerade]) -> Step | None:
    have = snap.nft.view.masquerades
    if have == want:
        return None
    text = nft_render.render_replace(want)
    return Step(
        key="nft:inet meshpath",
        description="masquerade the Cloudflare source range leaving the LAN (table inet meshpath)",
        action=NftFile(text=text),
        inverse=_nft_restore(snap),
        check="table inet meshpath absent" if have is None else "table inet meshpath differs",
        probe=NFT_PROBE,
        detail=text,
    )


def _nft_restore(snap: Snapshot) -> NftFile:
    old = nft_render.restore_json(snap.nft.view)
    if old is None:
        return NftFile(text=nft_render.render_delete())
    return NftFile(text=json.dumps(old), json=True)


# -- kernel routes ---------------------------------------------------------------------
def route_specs(tunnel: str, ranges: Sequence[IPNetwork]) -> list[systemd.RouteSpec]:
    return [systemd.RouteSpec(str(r), tunnel, PROTO_MESHPATH, METRIC_MESHPATH) for r in ranges]


def has_kernel_route(snap: Snapshot, spec: systemd.RouteSpec) -> bool:
    return any(
        r.dst == spec.dst and r.dev == spec.dev and r.protocol == spec.proto
        for r in snap.routes_in(TABLE_MAIN)
    )


def _kernel_route_steps(
    snap: Snapshot, tunnel: str, ranges: Sequence[IPNetwork]
) -> tuple[list[Step], list[str]]:
    steps, already = [], []
    for spec in route_specs(tunnel, ranges):
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
                probe=("ip", "route", "show", spec.dst, "table", "main"),
            )
        )
    return steps, already


# -- route -----------------------------------------------------------------------------
def frr_has_staticd(snap: Snapshot) -> bool:
    return snap.frr.running and {"zebra", "staticd"} <= set(snap.frr.daemons)


def _route_plan(
    snap: Snapshot, tunnel: str, ranges: Sequence[IPNetwork], options: FixOptions
) -> Plan:
    prefixes = tuple(str(r) for r in ranges)
    if frr_has_staticd(snap):
        frr_render.frr_ifname(tunnel, "tunnel interface")
        intent = _intent(snap, tunnel, prefixes)
        step = _frr_step(
            snap, intent, "FRR staticd owns the routes (persistent, re-added on link up)"
        )
        seen = () if step else (f"FRR static routes {', '.join(prefixes)}",)
        frr_steps = ([step] if step else []) + _takeover_steps(snap, tunnel, prefixes)
        expect = Expect(tunnel=tunnel, ranges=prefixes, route_proto=PROTO_FRR_STATIC, nat=None)
        return Plan(mode="route", steps=tuple(frr_steps), expect=expect, already=seen)
    steps, already = _kernel_route_steps(snap, tunnel, ranges)
    files, present = _persist_steps(route_specs(tunnel, ranges), options)
    keeper = (
        "a systemd-networkd drop-in"
        if options.networkd_file
        else f"systemd unit {systemd.UNIT_NAME} (enabled by its .wants link; "
        "'systemctl daemon-reload' makes systemd see it before the next boot)"
    )
    note = (
        "FRR is not running: the routes are re-added at boot and whenever WARP re-creates "
        f"the tunnel by {keeper}"
    )
    return Plan(
        mode="route",
        steps=(*steps, *files),
        expect=Expect(tunnel=tunnel, ranges=prefixes, route_proto=PROTO_MESHPATH, nat=None),
        already=(*already, *present),
        notes=(note, *options.notes),
    )


def _persist_steps(
    specs: Sequence[systemd.RouteSpec], options: FixOptions
) -> tuple[list[Step], list[str]]:
    wanted: list[tuple[str, str, str | None]]
    if options.networkd_file:
        wanted = [(systemd.dropin_path(options.networkd_file), systemd.render_dropin(specs), None)]
    else:
        unit, link = systemd.unit_path(specs[0].dev)
        wanted = [(unit, systemd.render_unit(specs), None), (link, "", f"/{unit}")]
    steps, already = [], []
    absent = set(options.absent_dirs)
    for path, content, target in wanted:
        current = options.existing_files.get(path)
        if _same_file(current, content, target):
            already.append(f"file /{path}")
            continue
        created = _created_dirs(path, absent)
        absent -= set(created)  # made by this step: a later step finds them
        steps.append(_file_step(path, content, target, current, created))
    return steps, already


def _same_file(current: FileState | None, content: str, target: str | None) -> bool:
    if current is None:
        return False
    if target is not None:
        return current.link == target
    return current.link is None and current.data == content.encode()


def _created_dirs(path: str, absent: set[str]) -> tuple[str, ...]:
    """The parents of ``path`` that writing it creates, deepest first: the undo removes
    exactly these (when empty), never a directory that was there before."""
    parents = [str(p) for p in PurePosixPath(path).parents if str(p) != "."]
    return tuple(p for p in parents if p in absent)


def _file_step(
    path: str, content: str, target: str | None, current: FileState | None, dirs: tuple[str, ...]
) -> Step:
    return Step(
        key=f"file:{path}",
        description=f"{'link' if target else 'write'} /{path}"
        + (f" -> {target}" if target else ""),
        action=WriteFile(path=path, content=content, link=target),
        inverse=_restore(path, current, dirs),
        check="file absent" if current is None else "file differs",
        detail=content,
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


# -- FRR -------------------------------------------------------------------------------
def _intent(
    snap: Snapshot, tunnel: str, statics: tuple[str, ...], **bgp: object
) -> frr_render.FrrIntent:
    running = snap.frr.running_config or ""
    have = frr_render.line_keys(frr_render.parse_blocks(running))
    owned = tuple(p for p in statics if (f"ip route {p} {tunnel}",) not in have)
    intent = frr_render.FrrIntent(tunnel=tunnel, statics=statics, owned_statics=owned, **bgp)  # type: ignore[arg-type]
    return frr_render.compose(running, intent)  # fitted to the user's own router bgp


def _frr_step(snap: Snapshot, intent: frr_render.FrrIntent, why: str) -> Step | None:
    running = snap.frr.running_config or ""
    if frr_render.is_applied(running, intent):
        return None
    desired = frr_render.merge_text(running, intent)
    what = "router bgp and " if intent.bgp else ""
    return Step(
        key="frr:meshpath",
        description=f"FRR: {what}static routes {', '.join(intent.statics)} "
        f"via {intent.tunnel}; {why}",
        action=FrrReload(intent=intent),
        inverse=FrrReload(intent=intent, remove=True),
        check="meshpath's FRR lines missing from the running config",
        probe=FRR_PROBE,
        detail=frr_render.diff(running, desired),  # against the real running config
    )


# -- bgp -------------------------------------------------------------------------------
def _bgp_plan(
    snap: Snapshot, tunnel: str, ranges: Sequence[IPNetwork], options: FixOptions
) -> Plan:
    v4 = tuple(str(r) for r in ranges if r.version == 4)
    frr_render.frr_ifname(tunnel, "tunnel interface")
    peer = validate.check_peer(options.peer, ranges)
    blocks = frr_render.parse_blocks(snap.frr.running_config or "")
    created = frr_render.bgp_asn_of(blocks) is None
    intent = _intent(
        snap,
        tunnel,
        v4,
        advertise=v4,
        asn=validate.check_asn(options.asn),
        peer=peer,
        peer_asn=validate.check_peer_asn(options.peer_asn),
        bgp_created=created,
        role=validate.check_role(options.role),
        bfd=options.bfd,
        # only a bgpd meshpath configures alone: a user's BGP keeps its own timer
        rmap_delay=created and not frr_render.rmap_delay_set(blocks),
    )
    steps: list[Step] = []
    already: list[str] = []
    frr_step = _frr_step(
        snap, intent, f"advertised to {peer} through prefix-list {frr_render.PREFIX_LIST}"
    )
    if frr_step is None:
        already.append(f"FRR config for peer {peer} (AS {options.asn})")
    else:
        steps.append(frr_step)
    steps += _takeover_steps(snap, tunnel, v4)
    if steps:
        steps.append(_wait_step(peer, v4, options.bgp_timeout))
    notes: tuple[str, ...] = ()
    if options.replace_nat:
        steps += _replace_nat_steps(snap, options)
        if not options.post_checks:
            notes = (
                "no round-trip check is available (no lab, no simulator): NAT is removed "
                "once the peer has the routes and the post-apply verify holds",
            )
    expect = Expect(
        tunnel=tunnel,
        ranges=v4,
        route_proto=PROTO_FRR_STATIC,
        nat=False if options.replace_nat else None,
        peer=peer,
        advertised=v4,
    )
    return Plan(mode="bgp", steps=tuple(steps), expect=expect, already=tuple(already), notes=notes)


def _wait_step(peer: str, prefixes: tuple[str, ...], timeout: float) -> Step:
    return Step(
        key=f"wait:{peer}",
        description=f"wait (<= {timeout:g}s) for the session with {peer} and exactly "
        f"{', '.join(prefixes)} advertised",
        action=WaitBgp(peer=peer, prefixes=prefixes, timeout=timeout),
        inverse=None,
        check="session and advertisement are confirmed after every FRR change",
    )


def _takeover_steps(snap: Snapshot, tunnel: str, prefixes: Sequence[str]) -> list[Step]:
    """Delete meshpath's own kernel routes (nat mode's) once staticd holds the same
    prefixes: zebra prefers a kernel route (distance 0) to a static one, so while ours
    exists staticd's route is never selected, installed or redistributed."""
    steps = []
    for spec in route_specs(tunnel, [ipaddress.ip_network(p) for p in prefixes]):
        if has_kernel_route(snap, spec):
            steps.append(
                Step(
                    key=f"route-handover:{spec.dst}",
                    description=f"hand {spec.dst} over to staticd: delete meshpath's kernel route",
                    action=Run(argv=spec.argv("del")),
                    inverse=Run(argv=spec.argv("replace")),
                    check=f"route {spec.dst} proto {spec.proto} present (shadows staticd's)",
                    probe=("ip", "route", "show", spec.dst, "table", "main"),
                )
            )
    return steps


def _replace_nat_steps(snap: Snapshot, options: FixOptions) -> list[Step]:
    """Remove meshpath's NAT only after the peer accepted the routes, in three moves so no
    connection open meanwhile breaks: empty the nat chain (new connections go without NAT;
    the chain keeps the NAT hooks, so open masqueraded ones keep their translation); the
    caller's round-trip checks (a failure rolls back and NAT stays); wait until the
    masqueraded connections ended; only then delete the table (and with it the hooks)."""
    if snap.nft.view.masquerades is None:
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
        for name in options.post_checks
    ]
    sources = tuple(sorted({m.source for m in snap.nft.view.masquerades}))
    steps.append(
        Step(
            key="wait:nat-drain",
            description="wait for the connections still masqueraded to end",
            action=WaitNatDrain(sources=sources, timeout=NAT_DRAIN_TIMEOUT),
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
