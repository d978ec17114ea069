"""Checks on the connector host itself: forwarding, the tunnel device, rp_filter, MSS."""

from __future__ import annotations

from collections.abc import Iterator

from meshpath.checks.context import CheckContext
from meshpath.checks.finding import Finding, Severity
from meshpath.checks.nft_view import rules

PERSIST_FORWARD = "echo 'net.ipv4.ip_forward = 1' > /etc/sysctl.d/60-meshpath.conf"


def check_ip_forward(ctx: CheckContext) -> Iterator[Finding]:
    """MP120/MP121: the kernel must forward between CloudflareWARP and the LAN."""
    v4 = ctx.snapshot.sysctls.ipv4.get("all")
    if v4 is not None and not v4.forwarding:
        yield Finding(
            "MP120",
            Severity.ERROR,
            "IPv4 forwarding is off",
            evidence=("net.ipv4.ip_forward = 0",),
            why=(
                "The Worker's packets arrive on the tunnel, but this host refuses to pass "
                "them on to the LAN, so your service never sees the request."
            ),
            fix_commands=("sysctl -w net.ipv4.ip_forward=1", PERSIST_FORWARD),
        )
    v6 = ctx.snapshot.sysctls.ipv6.get("all")
    if v6 is not None and not v6.forwarding and ctx.tunnel_has_v6:
        yield Finding(
            "MP121",
            Severity.WARNING,
            "IPv6 forwarding is off while the tunnel has an IPv6 address",
            evidence=("net.ipv6.conf.all.forwarding = 0",),
            why="Workers reaching IPv6 services through this connector will time out.",
            fix_commands=("sysctl -w net.ipv6.conf.all.forwarding=1",),
        )


def check_ingress_forwarding(ctx: CheckContext) -> Iterator[Finding]:
    """MP122: ip_route_input checks forwarding of the *ingress* device (IN_DEV_FORWARD)."""
    all_conf = ctx.snapshot.sysctls.ipv4.get("all")
    conf = ctx.snapshot.sysctls.ipv4.get(ctx.tunnel)
    if all_conf is None or not all_conf.forwarding or conf is None or conf.forwarding:
        return
    yield Finding(
        "MP122",
        Severity.ERROR,
        f"forwarding is off on {ctx.tunnel}",
        evidence=(f"net.ipv4.conf.{ctx.tunnel}.forwarding = 0",),
        why=(
            "The kernel decides whether to forward by the interface a packet came in on; "
            f"packets from Workers come in on {ctx.tunnel}, so they are not forwarded."
        ),
        fix_commands=(f"sysctl -w net.ipv4.conf.{ctx.tunnel}.forwarding=1",),
    )


def check_tunnel(ctx: CheckContext) -> Iterator[Finding]:
    """MP150: the tunnel device must exist, be up, and have carrier (warp-svc holds it)."""
    link = ctx.tunnel_link
    if link is None:
        state = f"no interface named {ctx.tunnel}"
    elif not link.admin_up:
        state = f"{ctx.tunnel} is administratively down"
    elif not link.carrier:
        state = f"{ctx.tunnel} has no carrier (operstate {link.operstate})"
    else:
        return
    yield Finding(
        "MP150",
        Severity.ERROR,
        f"the WARP tunnel is not usable: {state}",
        evidence=(state,),
        why=(
            "Without a live tunnel interface nothing from Cloudflare reaches this host and "
            "routes through it are dead; a tun has no carrier until warp-svc holds it open."
        ),
        fix_commands=("warp-cli --accept-tos status", "systemctl restart warp-svc"),
    )


def check_src_valid_mark(ctx: CheckContext) -> Iterator[Finding]:
    """MP131: fwmark rules + rp_filter without src_valid_mark validate against the wrong table."""
    sysctls = ctx.snapshot.sysctls.ipv4
    all_conf = sysctls.get("all")
    tun_conf = sysctls.get(ctx.tunnel)
    if all_conf is None:
        return
    rp = max(all_conf.rp_filter, tun_conf.rp_filter if tun_conf else 0)
    valid_mark = all_conf.src_valid_mark or (tun_conf.src_valid_mark if tun_conf else 0)
    marked = [r for r in ctx.snapshot.rules if r.fwmark is not None]
    # Loose mode (2) only asks "is there any route back", which the mark rarely changes;
    # strict mode compares the device, and there the table the mark selects matters.
    if rp == 1 and marked and not valid_mark:
        yield Finding(
            "MP131",
            Severity.WARNING,
            "fwmark policy routing with strict rp_filter but src_valid_mark off",
            evidence=(
                f"rp_filter = {rp} on {ctx.tunnel} (max of all and the interface)",
                f"rule {marked[0].priority}: {'not ' if marked[0].invert else ''}"
                f"fwmark {marked[0].fwmark:#x} lookup {marked[0].table}",
                "net.ipv4.conf.all.src_valid_mark = 0",
            ),
            why=(
                "The reverse-path check looks the source up without the packet's mark, so it "
                "can consult a different routing table than the packet really uses."
            ),
            fix_commands=("sysctl -w net.ipv4.conf.all.src_valid_mark=1",),
        )


def check_mss_clamp(ctx: CheckContext) -> Iterator[Finding]:
    """MP180: a 1280-byte tunnel with 1500-byte LAN needs MSS clamping for forwarded TCP."""
    link = ctx.tunnel_link
    if link is None:
        return
    lan_mtu = max((lk.mtu for lk in ctx.snapshot.links if lk.name in ctx.lan_interfaces), default=0)
    if lan_mtu <= link.mtu or _has_mss_clamp(ctx):
        return
    yield Finding(
        "MP180",
        Severity.WARNING,
        f"tunnel MTU {link.mtu} below LAN MTU {lan_mtu} and no TCP MSS clamping",
        evidence=(f"{ctx.tunnel} mtu {link.mtu}", f"LAN mtu {lan_mtu}", "no 'maxseg' rule"),
        why=(
            "Large replies from the LAN do not fit the tunnel; if the ICMP 'fragmentation "
            "needed' message is lost, big responses stall while small ones work."
        ),
        fix_commands=(
            "nft add rule inet meshpath forward tcp flags syn tcp option maxseg size set rt mtu",
        ),
    )


def _has_mss_clamp(ctx: CheckContext) -> bool:
    for rule in rules(ctx.snapshot):
        text = repr(rule.expr)
        if "maxseg" in text or "TCPMSS" in text:
            return True
    return False


CHECKS = (
    check_ip_forward,
    check_ingress_forwarding,
    check_tunnel,
    check_src_valid_mark,
    check_mss_clamp,
)
