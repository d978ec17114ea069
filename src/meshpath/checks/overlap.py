"""Checks on how the connector shares CGNAT space: NAT scope, broad routes, Tailscale."""

from __future__ import annotations

import ipaddress
from collections.abc import Iterator

from meshpath.checks.context import CheckContext, network
from meshpath.checks.finding import Finding, Severity
from meshpath.checks.nft_view import NftRule, rules
from meshpath.ranges import TAILSCALE
from meshpath.state import TABLE_MAIN, TABLE_TAILSCALE, TABLE_WARP

NAT_VERDICTS = ("masquerade", "snat")


def nat_rules(ctx: CheckContext) -> list[NftRule]:
    """Source-NAT rules that rewrite Worker traffic (no saddr match counts: it catches all)."""
    source = ctx.settings.ranges.source_v4
    found = []
    for rule in rules(ctx.snapshot):
        if rule.verdict() not in NAT_VERDICTS:
            continue
        prefix = rule.prefix_of("saddr")
        if prefix is None or (prefix.version == source.version and prefix.overlaps(source)):
            found.append(rule)
    return found


def check_nat(ctx: CheckContext) -> Iterator[Finding]:
    """MP110/MP111: NAT works but hides the Worker's source; a broad NAT rewrites more."""
    source = ctx.settings.ranges.source_v4
    for rule in nat_rules(ctx):
        evidence = (f"nft {rule.where}: {rule.text()}",)
        yield Finding(
            "MP110",
            Severity.WARNING,
            "NAT rewrites Worker traffic: the LAN sees the connector, not the Worker",
            evidence=evidence,
            why=(
                "Requests work, but your service logs and ACLs see this connector's LAN "
                "address instead of the Worker's source IP."
            ),
            fix_mode="bgp",
            fix_commands=("meshpath fix --mode bgp --replace-nat --peer ROUTER --asn ASN",),
        )
        prefix = rule.prefix_of("saddr")
        if prefix is None or (
            prefix.version == source.version and prefix.supernet_of(source) and prefix != source
        ):
            covered = "every source" if prefix is None else str(prefix)
            yield Finding(
                "MP111",
                Severity.WARNING,
                f"NAT rule covers {covered}, more than the Cloudflare source range {source}",
                evidence=evidence,
                why=(
                    "It also rewrites Mesh device IPs and any Tailscale tailnet traffic "
                    "(100.64.0.0/10) leaving that interface."
                ),
                fix_mode="nat",
                fix_commands=("meshpath fix --mode nat",),
            )


def check_broad_routes(ctx: CheckContext) -> Iterator[Finding]:
    """MP112: a tunnel route or rule wider than the Cloudflare ranges swallows neighbours."""
    ranges = ctx.settings.ranges
    mine = (ranges.source_v4, ranges.device_v4, ranges.lb_v4, ranges.gateway_v4)
    for route in ctx.routes_via(ctx.tunnel, TABLE_MAIN):
        net = network(route.dst)
        if net.version != 4 or net.prefixlen == 0:
            continue
        if any(net.supernet_of(r) and net != r for r in mine) and net.overlaps(TAILSCALE.network):
            yield _broad(f"route {route.dst} dev {ctx.tunnel} (table main)", net)
    for rule in ctx.snapshot.rules:
        for word, sel in (("from", rule.src), ("to", rule.dst)):
            if not sel:
                continue
            sel_net = network(sel)
            source = ranges.source_v4
            if (
                sel_net.version == 4
                and sel_net.prefixlen > 0
                and sel_net.supernet_of(source)
                and sel_net != source
            ):
                yield _broad(f"rule {rule.priority}: {word} {sel} lookup {rule.table}", sel_net)


def _broad(evidence: str, net: ipaddress.IPv4Network | ipaddress.IPv6Network) -> Finding:
    return Finding(
        "MP112",
        Severity.WARNING,
        f"{net} through the tunnel is broader than Cloudflare's ranges",
        evidence=(evidence,),
        why=(
            "It also captures addresses that are not Cloudflare's, such as a Tailscale tailnet "
            "(100.64.0.0/10): replies to tailnet hosts would be sent into the WARP tunnel."
        ),
        fix_mode="route",
        fix_commands=("meshpath fix --mode route",),
    )


def check_tailscale(ctx: CheckContext) -> Iterator[Finding]:
    """MP170-MP172: Tailscale's table 52, its rule order and its ts-input drop."""
    snap = ctx.snapshot
    warp_prio = min((r.priority for r in snap.rules if r.table == TABLE_WARP), default=None)
    ts_rules = [r for r in snap.rules if r.table == TABLE_TAILSCALE and r.action == "lookup"]
    ranges = ctx.settings.ranges
    cf = [ranges.source_v4, ranges.device_v4]
    covering = [
        r
        for r in snap.routes_in(TABLE_TAILSCALE)
        if r.family == 4
        and any(network(r.dst).overlaps(c) for c in cf)
        and network(r.dst).prefixlen < 32
    ]
    if ts_rules and covering and (warp_prio is None or ts_rules[0].priority < warp_prio):
        yield Finding(
            "MP170",
            Severity.ERROR,
            f"Tailscale's table 52 is consulted first and routes Cloudflare space to "
            f"{covering[0].dev}",
            evidence=(
                f"rule {ts_rules[0].priority}: lookup 52"
                + (f" (before WARP's rule {warp_prio})" if warp_prio is not None else ""),
                *(f"table 52: {r.dst} dev {r.dev}" for r in covering[:3]),
            ),
            why=(
                "Replies to Workers match Tailscale's CGNAT route before any Cloudflare "
                "route is looked at, so they go into the tailnet instead of the WARP tunnel."
            ),
            fix_mode="route",
            fix_commands=(
                "tailscale set --accept-routes=false  # or narrow the tailnet routes",
                "meshpath fix --mode route  # adds a more specific rule for Cloudflare ranges",
            ),
        )
    yield from _ts_input_drop(ctx)


def _ts_input_drop(ctx: CheckContext) -> Iterator[Finding]:
    for rule in rules(ctx.snapshot):
        if rule.chain != "ts-input" or rule.verdict() != "drop":
            continue
        prefix = rule.prefix_of("saddr")
        if prefix is not None and prefix.overlaps(ctx.settings.ranges.source_v4):
            yield Finding(
                "MP172",
                Severity.WARNING,
                "Tailscale drops CGNAT sources arriving outside tailscale0 (ts-input)",
                evidence=(f"nft {rule.where}: {rule.text()}",),
                why=(
                    "Workers calling a service on the connector host itself come from "
                    f"{ctx.settings.ranges.source_v4} on {ctx.tunnel}, which this rule drops. "
                    "Forwarded traffic to the LAN is not affected."
                ),
                fix_commands=(
                    f"iptables -I ts-input -i {ctx.tunnel} -j ACCEPT  # before Tailscale's drop",
                ),
            )
            return


def check_ranges_in_use(ctx: CheckContext) -> Iterator[Finding]:
    """MP190: the tunnel address should lie in the configured device range."""
    ranges = ctx.settings.ranges
    for addr in ctx.snapshot.addresses_of(ctx.tunnel):
        if addr.family != 4 or addr.scope != 0:
            continue
        ip = ipaddress.ip_address(addr.local)
        if ip not in ranges.device_v4:
            yield Finding(
                "MP190",
                Severity.WARNING,
                f"{ctx.tunnel} address {ip} is outside the configured device range "
                f"{ranges.device_v4}",
                evidence=(
                    f"{ctx.tunnel} inet {addr.local}/{addr.prefixlen}",
                    f"device_v4 = {ranges.device_v4} (from {ctx.settings.source})",
                ),
                why=(
                    "Your account probably moved Cloudflare's ranges; routes and NAT built "
                    "from the defaults would miss the real Worker source addresses."
                ),
                fix_commands=("set [ranges] in /etc/meshpath/meshpath.toml to your account's",),
            )


CHECKS = (check_nat, check_broad_routes, check_tailscale, check_ranges_in_use)
