"""The doctor's rules: pure functions (CheckContext) -> Findings, each with a stable ID.

MP101  no route for the Cloudflare source range via the tunnel (replies misrouted)
MP102  no route for the device range via the tunnel (Mesh devices cannot reach the LAN)
MP103  no return path from the LAN that meshpath can see (no NAT, no BGP advertisement)
MP104  the Split Tunnels keep the Cloudflare source range out of the tunnel (the profile)
MP105  the Split Tunnels keep the device range out of the tunnel
MP110  NAT rewrites Worker traffic (works, hides source IPs)
MP111  NAT rule broader than the source range
MP112  tunnel route or rule broader than Cloudflare's ranges
MP120  IPv4 forwarding off            MP121  IPv6 forwarding off
MP122  forwarding off on the tunnel (ingress) interface
MP123  forwarding on at runtime but not persisted (/etc/sysctl.d)
MP130  rp_filter drops the Worker's SYN or the reply
MP131  fwmark routing with rp_filter but without src_valid_mark
MP140  a netfilter chain drops the Worker's traffic
MP144  a forward chain drops by policy and accepts nothing for the tunnel
MP150  tunnel interface missing / down / no carrier
MP151  FRR static route via the tunnel not installed
MP152  warp-cli: WARP not connected   MP153  not registered as a connector
MP160  bgpd not running            MP161  BGP session not Established
MP162  RFC 8212 blocks the session MP163  Cloudflare range not advertised
MP164  other routes advertised (leak) MP165  bgpd without watchfrr
MP170  Tailscale table 52 ahead of WARP and covering Cloudflare space
MP172  Tailscale ts-input drops CGNAT sources outside tailscale0
MP180  tunnel MTU below LAN MTU without MSS clamping
MP190  Cloudflare ranges in use differ from the configured ones
MP191  cloudflared next to WARP       MP192  another VPN client   MP193  a DNS server here
MP199  the model could not evaluate part of the path (kernel's answer used)
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator

from meshpath.checks import frr, host, overlap, warp
from meshpath.checks.context import CheckContext
from meshpath.checks.finding import Finding, Severity

Check = Callable[[CheckContext], Iterable[Finding]]

STATIC_CHECKS: tuple[Check, ...] = (*host.CHECKS, *overlap.CHECKS, *frr.CHECKS, *warp.CHECKS)


def run_static_checks(ctx: CheckContext) -> tuple[Finding, ...]:
    """Every configuration check that does not need a simulated flow."""
    return tuple(_all(ctx, STATIC_CHECKS))


def _all(ctx: CheckContext, checks: Iterable[Check]) -> Iterator[Finding]:
    for check in checks:
        yield from check(ctx)


__all__ = ["STATIC_CHECKS", "CheckContext", "Finding", "Severity", "run_static_checks"]
