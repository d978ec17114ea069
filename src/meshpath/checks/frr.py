"""Checks on FRR when it runs on the connector: static routes, the BGP session, what it sends."""

from __future__ import annotations

from collections.abc import Iterator

from meshpath.checks.context import CheckContext, network
from meshpath.checks.finding import Finding, Severity
from meshpath.state.frr import PeerReset


def check_static_inactive(ctx: CheckContext) -> Iterator[Finding]:
    """MP151: staticd routes via the tunnel that zebra could not install."""
    for route in ctx.snapshot.frr.view.statics:
        if route.installed or ctx.tunnel not in route.interfaces:
            continue
        yield Finding(
            "MP151",
            Severity.ERROR,
            f"FRR static route {route.prefix} via {ctx.tunnel} is not installed",
            evidence=(f"show ip route json: {route.prefix} static, installed=false",),
            why=(
                f"zebra only installs the route while {ctx.tunnel} is up with carrier; "
                "until then Worker replies still leave by the default route."
            ),
            fix_commands=(
                "warp-cli --accept-tos connect",
                "vtysh -c 'show ip route static'",
            ),
        )


def check_bgp_daemon(ctx: CheckContext) -> Iterator[Finding]:
    """MP160: FRR is configured for BGP but bgpd does not answer."""
    frr = ctx.snapshot.frr
    config = frr.running_config or ""
    if frr.running and "router bgp" in config and frr.bgp_summary is None:
        yield Finding(
            "MP160",
            Severity.ERROR,
            "FRR has a BGP configuration but bgpd is not running",
            evidence=(f"running daemons: {', '.join(frr.daemons) or 'none'}",),
            why="Nothing advertises the Cloudflare ranges to the LAN, so the LAN cannot reply.",
            fix_commands=(
                "sed -i 's/^bgpd=no/bgpd=yes/' /etc/frr/daemons",
                "systemctl restart frr",
            ),
        )


def check_bgp_watchdog(ctx: CheckContext) -> Iterator[Finding]:
    """MP165: bgpd carries the way back but nothing restarts it when it dies (watchfrr)."""
    frr, procs = ctx.snapshot.frr, ctx.snapshot.processes
    if procs is None or not frr.running or "bgpd" not in frr.daemons or "watchfrr" in procs:
        return
    yield Finding(
        "MP165",
        Severity.WARNING,
        "bgpd runs without watchfrr: nothing restarts it if it dies",
        evidence=(f"FRR daemons answering: {', '.join(frr.daemons)}; no watchfrr process here",),
        why=(
            "watchfrr (started by FRR's init script, frr.service) restarts a daemon that "
            "dies. Without it a bgpd crash closes the BGP session, the LAN router drops the "
            "way back to the Cloudflare ranges, and every Worker call fails until bgpd is "
            "restarted by hand; with two connectors the crashed one keeps its WARP session, "
            "so Cloudflare keeps sending it flows whose replies go to the other one (the "
            "lab's ha drill: every call failed until bgpd was back)."
        ),
        fix_commands=("systemctl enable --now frr  # frrinit.sh runs the daemons under watchfrr",),
    )


def check_bgp_sessions(ctx: CheckContext) -> Iterator[Finding]:
    """MP161/MP162: every peer Established, and not held by RFC 8212 (state 'Policy')."""
    for bgp in ctx.snapshot.frr.view.peers:
        peer, state = bgp.address, "?" if bgp.state is None else bgp.state
        if not bgp.established:
            yield _not_established(peer, state, ctx.snapshot.frr.view.resets.get(peer))
        elif bgp.policy_blocked:
            yield Finding(
                "MP162",
                Severity.ERROR,
                f"BGP with {peer} is blocked by RFC 8212: no inbound/outbound policy",
                evidence=(f"show bgp summary json: {peer} peerState Policy",),
                why=(
                    "FRR refuses to send or accept eBGP routes without an explicit route-map "
                    "(ebgp-requires-policy), so the session is up but carries nothing."
                ),
                fix_mode="bgp",
                fix_commands=("meshpath fix --mode bgp --peer PEER --asn ASN",),
            )


def _not_established(peer: str, state: str, reset: PeerReset | None) -> Finding:
    """MP161, with why the session last went down when FRR says (an OPEN refused is a
    configuration mismatch that no retry repairs)."""
    evidence = [f"show bgp summary json: {peer} state {state}"]
    why = "The LAN router does not learn that Cloudflare ranges live behind this host."
    if reset is not None:
        evidence.append(f"show bgp neighbors json: {peer} last reset: {reset.describe()}")
    if reset is not None and reset.open_refused:
        why += (
            f" The session cannot come up: {reset.reason or 'an OPEN'} was refused, so this "
            "host and the router disagree on its parameters (the AS numbers: `router bgp` "
            f"and `neighbor {peer} remote-as` here against the router's for this host)."
        )
    return Finding(
        "MP161",
        Severity.ERROR,
        f"BGP session with {peer} is {state}, not Established",
        evidence=tuple(evidence),
        why=why,
        fix_commands=(f"vtysh -c 'show bgp neighbor {peer}'",),
    )


def check_advertised(ctx: CheckContext) -> Iterator[Finding]:
    """MP163/MP164: exactly the Cloudflare ranges are advertised, nothing else; in IPv6
    unicast too, for the peers that family is activated with (the v6 source range)."""
    view, ranges = ctx.snapshot.frr.view, ctx.settings.ranges
    # IPv6 Worker traffic exists only when the tunnel carries IPv6 (the fix's rule too):
    # without it a missing v6 range is no fault, but a leak in that family still is.
    wanted6 = str(ranges.source_v6) if ctx.tunnel_has_v6 else None
    families = (
        (view.advertised, str(ranges.source_v4), view.peers),
        (view.advertised6, wanted6, view.peers6),
    )
    for advertised, wanted, peers in families:
        established = {p.address for p in peers if p.established}
        for peer, sent in advertised.items():
            yield from _advertisement(ctx, peer, set(sent or ()), wanted, peer in established)


def _advertisement(
    ctx: CheckContext, peer: str, routes: set[str], wanted: str | None, established: bool
) -> Iterator[Finding]:
    if wanted is not None and wanted not in routes and established:
        yield Finding(
            "MP163",
            Severity.ERROR,
            f"{wanted} not advertised to {peer}",
            evidence=(f"advertised to {peer}: {', '.join(sorted(routes)) or 'nothing'}",),
            why="The LAN never learns the way back to Workers through this connector.",
            fix_mode="bgp",
            fix_commands=("meshpath fix --mode bgp --peer PEER --asn ASN",),
        )
    extra = sorted(r for r in routes if not _is_cloudflare(ctx, r))
    if extra:
        yield Finding(
            "MP164",
            Severity.WARNING,
            f"{len(extra)} route(s) beyond the Cloudflare ranges advertised to {peer}",
            evidence=tuple(f"advertised to {peer}: {r}" for r in extra[:5]),
            why="A route leak: the LAN may send unrelated traffic to this connector.",
            fix_mode="bgp",
            fix_commands=("meshpath fix --mode bgp  # prefix-list route-map on the neighbour",),
        )


def _is_cloudflare(ctx: CheckContext, prefix: str) -> bool:
    net = network(prefix)
    return any(net == r for _, r in ctx.settings.ranges.items())


CHECKS = (
    check_static_inactive,
    check_bgp_daemon,
    check_bgp_watchdog,
    check_bgp_sessions,
    check_advertised,
)
