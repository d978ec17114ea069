"""The desired state of a fix (pure): what the host must hold once mode M is in place.

:func:`desired_state` computes it from the snapshot (which interfaces exist, whether the
tunnel carries IPv6, whether FRR's staticd runs, what the user's FRR config already has),
the settings and the options; nothing in it says *how* to get there. Three things derive
from the one value:

* the plan: ``diff(current, desired)`` (:func:`meshpath.fix.plan.plan_from`),
* the simulator's prediction: the snapshot with the desired state in place
  (:func:`meshpath.fix.predict.predict`),
* what ``meshpath verify`` checks afterwards (:meth:`Desired.expect`, kept in the journal).
"""

from __future__ import annotations

import ipaddress
from collections.abc import Sequence
from dataclasses import dataclass

from meshpath.config import Settings
from meshpath.errors import BadInputError
from meshpath.fix import frrfit, validate
from meshpath.fix.model import METRIC_MESHPATH, PROTO_MESHPATH, Expect, FixOptions, Mode
from meshpath.ranges import IPNetwork
from meshpath.render import frr as frr_render
from meshpath.render import nft as nft_render
from meshpath.render import systemd
from meshpath.state import TABLE_MAIN, Snapshot
from meshpath.state.model import PROTO_FRR_STATIC


@dataclass(frozen=True, slots=True)
class DesiredFile:
    """A persistence file (relative to ``--root``): its content, or a symlink's target."""

    path: str
    content: str
    link: str | None = None


@dataclass(frozen=True, slots=True)
class Desired:
    """What must hold after the fix; every field is a fact about the host, none a step."""

    mode: Mode
    tunnel: str
    ranges: tuple[str, ...]  # routed via the tunnel (main table)
    route_proto: int  # who carries them: PROTO_MESHPATH (kernel) or PROTO_FRR_STATIC
    kernel_routes: tuple[systemd.RouteSpec, ...] = ()  # meshpath's kernel routes present
    # meshpath's kernel routes absent: staticd holds the prefixes (zebra prefers a kernel
    # route, distance 0, so while ours exists staticd's is never selected or advertised)
    absent_routes: tuple[systemd.RouteSpec, ...] = ()
    # meshpath's masquerades in table inet meshpath, in order; () the table absent; None:
    # not judged (the mode leaves NAT as it is)
    nat: tuple[nft_render.Masquerade, ...] | None = None
    lan_if: str | None = None
    frr: frr_render.FrrIntent | None = None
    files: tuple[DesiredFile, ...] = ()
    bgp_timeout: float = 30.0
    post_checks: tuple[str, ...] = ()  # must pass once NAT is gone (--replace-nat)
    notes: tuple[str, ...] = ()

    @property
    def peer(self) -> str | None:
        return self.frr.peer if self.frr is not None and self.frr.bgp else None

    def expect(self) -> Expect:
        """What verify checks: the same facts, in the journal's terms."""
        nat = None if self.nat is None else bool(self.nat)
        return Expect(
            tunnel=self.tunnel,
            ranges=self.ranges,
            route_proto=self.route_proto,
            nat=nat,
            peer=self.peer,
            advertised=self.ranges if self.peer else (),
            lan_if=self.lan_if if nat else None,
            nat_sources=tuple(m.source for m in self.nat or ()),
        )


def desired_state(
    snapshot: Snapshot, settings: Settings, mode: Mode, options: FixOptions
) -> Desired:
    """The desired state for ``mode`` on the host ``snapshot`` describes; BadInputError for
    options the host cannot take (before anything is planned)."""
    tunnel = settings.tunnel_interface
    validate.check_options(snapshot, mode, options)
    validate.require_link(snapshot, tunnel, "tunnel")
    lan = validate.lan_interface(snapshot, tunnel, options.lan_if)
    ranges = fix_ranges(snapshot, settings, options)
    validate.check_no_lan_overlap(snapshot, tunnel, ranges)
    validate.check_frr(snapshot, mode)
    if mode == "nat":
        return _nat(tunnel, lan, ranges, options.nat6)
    if mode == "route":
        return _route(snapshot, tunnel, ranges, options)
    return _bgp(snapshot, tunnel, ranges, options)


def fix_ranges(
    snapshot: Snapshot, settings: Settings, options: FixOptions
) -> tuple[IPNetwork, ...]:
    """source_v4 (+ device_v4 when asked), + source_v6 (+ device_v6) when the tunnel
    carries IPv6 (an address that is not link-local)."""
    r = settings.ranges
    out: list[IPNetwork] = [r.source_v4]
    if options.also_device_range:
        out.append(r.device_v4)
    if tunnel_has_v6(snapshot, settings.tunnel_interface):
        out.append(r.source_v6)
        if options.also_device_range:
            out.append(r.device_v6)
    elif options.nat6:
        raise BadInputError(
            f"--nat6: {settings.tunnel_interface} has no IPv6 address, so no IPv6 Worker "
            "traffic comes from it to masquerade"
        )
    return tuple(out)


def tunnel_has_v6(snapshot: Snapshot, tunnel: str) -> bool:
    return any(
        a.family == 6 and not ipaddress.ip_address(a.local).is_link_local
        for a in snapshot.addresses_of(tunnel)
    )


def route_specs(tunnel: str, ranges: Sequence[IPNetwork]) -> list[systemd.RouteSpec]:
    return [systemd.RouteSpec(str(r), tunnel, PROTO_MESHPATH, METRIC_MESHPATH) for r in ranges]


def has_kernel_route(snap: Snapshot, spec: systemd.RouteSpec) -> bool:
    return any(
        r.dst == spec.dst and r.dev == spec.dev and r.protocol == spec.proto
        for r in snap.routes_in(TABLE_MAIN)
    )


def frr_has_staticd(snap: Snapshot) -> bool:
    return snap.frr.running and {"zebra", "staticd"} <= set(snap.frr.daemons)


def _names(ranges: Sequence[IPNetwork]) -> tuple[str, ...]:
    return tuple(str(r) for r in ranges)


# -- nat -------------------------------------------------------------------------------
NAT_NOTES = (
    "NAT hides the Worker's address from the service; prefer --mode route or bgp.",
    "the route is what brings the de-NATed reply back into the tunnel (NAT alone does not).",
)


def _nat(tunnel: str, lan: str, ranges: Sequence[IPNetwork], nat6: bool) -> Desired:
    nft_render.nft_ifname(lan, "LAN interface")  # refuse a name nft cannot match exactly
    # The source range of each family; IPv6 only when asked (--nat6): a v6 LAN is usually
    # routed end to end, and NAT66 hides the Worker's address for nothing.
    sources = [ranges[0], *([r for r in ranges if r.version == 6][:1] if nat6 else [])]
    return Desired(
        mode="nat",
        tunnel=tunnel,
        ranges=_names(ranges),
        route_proto=PROTO_MESHPATH,
        kernel_routes=tuple(route_specs(tunnel, ranges)),
        nat=tuple(nft_render.Masquerade(lan, str(r)) for r in sources),
        lan_if=lan,
        notes=NAT_NOTES,
    )


# -- route -----------------------------------------------------------------------------
def _route(
    snap: Snapshot, tunnel: str, ranges: Sequence[IPNetwork], options: FixOptions
) -> Desired:
    prefixes = _names(ranges)
    if frr_has_staticd(snap):
        frr_render.frr_ifname(tunnel, "tunnel interface")
        return Desired(
            mode="route",
            tunnel=tunnel,
            ranges=prefixes,
            route_proto=PROTO_FRR_STATIC,
            absent_routes=tuple(route_specs(tunnel, ranges)),
            frr=_intent(snap, tunnel, prefixes),
        )
    specs = route_specs(tunnel, ranges)
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
    return Desired(
        mode="route",
        tunnel=tunnel,
        ranges=prefixes,
        route_proto=PROTO_MESHPATH,
        kernel_routes=tuple(specs),
        files=_persist_files(specs, options),
        notes=(note, *options.notes),
    )


def _persist_files(
    specs: Sequence[systemd.RouteSpec], options: FixOptions
) -> tuple[DesiredFile, ...]:
    """What keeps the routes across reboots and tunnel re-creation: a networkd drop-in
    for the tunnel's .network file, else meshpath's unit and its .wants link."""
    if options.networkd_file:
        path = systemd.dropin_path(options.networkd_file)
        return (DesiredFile(path, systemd.render_dropin(specs)),)
    unit, link = systemd.unit_path(specs[0].dev)
    return (DesiredFile(unit, systemd.render_unit(specs)), DesiredFile(link, "", f"/{unit}"))


# -- FRR -------------------------------------------------------------------------------
def _intent(
    snap: Snapshot, tunnel: str, statics: tuple[str, ...], **bgp: object
) -> frr_render.FrrIntent:
    config = snap.frr.config
    owned = tuple(p for p in statics if not config.has(frr_render.static_line(p, tunnel)))
    intent = frr_render.FrrIntent(tunnel=tunnel, statics=statics, owned_statics=owned, **bgp)  # type: ignore[arg-type]
    return frrfit.compose(config.text, intent)  # fitted to the user's own router bgp


# -- bgp -------------------------------------------------------------------------------
def _bgp(snap: Snapshot, tunnel: str, ranges: Sequence[IPNetwork], options: FixOptions) -> Desired:
    # Both families on the one session: the v6 ranges (when the tunnel carries IPv6) in
    # the ipv6 unicast family, with their own prefix-list (render/frr.py).
    prefixes = _names(ranges)
    frr_render.frr_ifname(tunnel, "tunnel interface")
    peer = validate.check_peer(options.peer, ranges)
    config = snap.frr.config
    created = config.bgp_asn is None
    intent = _intent(
        snap,
        tunnel,
        prefixes,
        advertise=prefixes,
        asn=validate.check_asn(options.asn),
        peer=peer,
        peer_asn=validate.check_peer_asn(options.peer_asn),
        bgp_created=created,
        role=validate.check_role(options.role),
        bfd=options.bfd,
        # only a bgpd meshpath configures alone: a user's BGP keeps its own timer
        rmap_delay=created and not config.rmap_delay_set,
    )
    notes: tuple[str, ...] = ()
    if options.replace_nat and not options.post_checks:
        notes = (
            "no round-trip check is available (no lab, no simulator): NAT is removed "
            "once the peer has the routes and the post-apply verify holds",
        )
    return Desired(
        mode="bgp",
        tunnel=tunnel,
        ranges=prefixes,
        route_proto=PROTO_FRR_STATIC,
        absent_routes=tuple(route_specs(tunnel, ranges)),
        nat=() if options.replace_nat else None,
        frr=intent,
        bgp_timeout=options.bgp_timeout,
        post_checks=options.post_checks,
        notes=notes,
    )
