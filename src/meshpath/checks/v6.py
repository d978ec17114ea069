"""IPv6-only checks: what a dual-stack connector gets wrong that IPv4 has no word for.

The v6 Worker flows themselves (forwarding, the return route for the v6 source range, nft
drops, ``fib saddr . iif oif missing drop``) are judged by the simulator like the v4 ones
(checks.flows); these are the host's configuration around them:

* MP125 — a device that forwards ignores Router Advertisements unless ``accept_ra=2``: the
  default route it learned from them (proto ra) expires and is not renewed.
* MP126 — ICMPv6 packet-too-big dropped by nftables: IPv6 routers never fragment, so
  path-MTU discovery through the 1280-byte tunnel depends on that message; without it large
  responses stall after the handshake.
* MP127 — a tunnel MTU below 1280, IPv6's minimum link MTU (RFC 8200): IPv6 cannot run.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Final

from meshpath.checks.context import CheckContext
from meshpath.checks.finding import Finding, Severity
from meshpath.checks.targets import default_targets
from meshpath.sim.netfilter import DROP, ICMPV6, NfPacket, Ruleset, netfilter_verdict

IPV6_MIN_MTU: Final = 1280
PROTO_RA: Final = 9  # RTPROT_RA
PACKET_TOO_BIG: Final = 2


def _global_v6(ctx: CheckContext, dev: str) -> str | None:
    return next(
        (
            a.local
            for a in ctx.snapshot.addresses_of(dev)
            if a.family == 6 and a.scope == 0 and not a.local.lower().startswith("fe80")
        ),
        None,
    )


def check_accept_ra(ctx: CheckContext) -> Iterator[Finding]:
    """MP125: forwarding on, accept_ra=1, and a default route that came from an RA."""
    conf = ctx.snapshot.sysctls.ipv6
    for route in ctx.snapshot.routes:
        if route.family != 6 or route.dst != "::/0" or route.protocol != PROTO_RA:
            continue
        dev = route.dev or ""
        dev_conf = conf.get(dev)
        if dev_conf is None or not dev_conf.forwarding or dev_conf.accept_ra != 1:
            continue
        yield Finding(
            "MP125",
            Severity.WARNING,
            f"{dev} forwards IPv6 and ignores Router Advertisements: its default route expires",
            evidence=(
                f"net.ipv6.conf.{dev}.forwarding = 1",
                f"net.ipv6.conf.{dev}.accept_ra = 1",
                f"default via {route.gateway} dev {dev} proto ra",
            ),
            why=(
                "A device that forwards acts as a router and, with accept_ra=1, no longer "
                "accepts Router Advertisements; the default route learned from them is not "
                "renewed, and IPv6 replies lose their way when it expires."
            ),
            fix_commands=(f"sysctl -w net.ipv6.conf.{dev}.accept_ra=2",),
        )


def check_tunnel_mtu6(ctx: CheckContext) -> Iterator[Finding]:
    """MP127: IPv6 needs a link MTU of at least 1280."""
    link = ctx.tunnel_link
    if link is None or link.mtu >= IPV6_MIN_MTU or not ctx.tunnel_has_v6:
        return
    yield Finding(
        "MP127",
        Severity.ERROR,
        f"{ctx.tunnel} has MTU {link.mtu}, below IPv6's minimum of {IPV6_MIN_MTU}",
        evidence=(f"ip link show {ctx.tunnel}: mtu {link.mtu}",),
        why="IPv6 requires every link to carry 1280-byte packets (RFC 8200, section 5).",
        fix_commands=(f"ip link set {ctx.tunnel} mtu {IPV6_MIN_MTU}",),
    )


def check_icmpv6_ptb(ctx: CheckContext) -> Iterator[Finding]:
    """MP126: would nftables drop an ICMPv6 packet-too-big on the Worker's path?"""
    lan = ctx.lan_interfaces[0] if ctx.lan_interfaces else None
    if not ctx.snapshot.nft.available or lan is None or not ctx.tunnel_has_v6:
        return  # cheap tests first: the targets walk every route of the table
    targets = [t for t in default_targets(ctx.snapshot, ctx.tunnel) if ":" in t.address]
    if not targets:
        return
    ruleset = Ruleset.parse(ctx.snapshot.nft.ruleset)
    target, worker = targets[0].address, ctx.settings.ranges.worker_probe_v6()
    own = _global_v6(ctx, lan)
    cases: list[tuple[str, str, str, str, str | None, str]] = [
        ("forward", f"from the LAN ({target}) to the Worker", target, worker, lan, ctx.tunnel),
        ("forward", f"from the tunnel to the LAN ({target})", worker, target, ctx.tunnel, lan),
    ]
    if own is not None:
        cases.append(("output", f"this host's own, to {target}", own, target, None, lan))
    dropped = [
        f"{hook}: packet-too-big {what}: {result.reason}"
        for hook, what, src, dst, iif, oif in cases
        if (result := netfilter_verdict(ruleset, hook, _ptb(src, dst, iif, oif), _no_addr))
        and result.verdict == DROP
    ]
    if not dropped:
        return
    yield Finding(
        "MP126",
        Severity.WARNING,
        "nftables drops ICMPv6 packet-too-big: path-MTU discovery through the tunnel fails",
        evidence=tuple(dropped),
        why=(
            f"IPv6 routers never fragment; a packet larger than {ctx.tunnel}'s MTU (1280, "
            "IPv6's minimum) is answered with ICMPv6 packet-too-big, and the sender shrinks "
            "its packets only if that message arrives. Dropped, the handshake works but large "
            "responses stall (RFC 4890: never filter packet-too-big)."
        ),
        fix_commands=("nft insert rule inet filter forward icmpv6 type packet-too-big accept",),
    )


def _ptb(src: str, dst: str, iif: str | None, oif: str | None) -> NfPacket:
    return NfPacket(src, dst, ICMPV6, 0, 0, iif=iif, oif=oif, ct_state="related",
                    icmp_type=PACKET_TOO_BIG)  # fmt: skip


def _no_addr(dev: str) -> str | None:
    return None  # ICMP errors are not NATed by these hooks' masquerade


CHECKS = (check_accept_ra, check_tunnel_mtu6, check_icmpv6_ptb)
