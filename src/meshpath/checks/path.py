"""Findings from the simulated (and kernel-checked) Worker flows: why a request fails.

The simulator says *what* happens to the Worker's SYN and the service's reply; this module
turns each outcome into a finding with a stable ID and explains it in plain words.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass

from meshpath.checks import warp
from meshpath.checks.context import CheckContext
from meshpath.checks.finding import Finding, Severity
from meshpath.checks.targets import Target


@dataclass(frozen=True, slots=True)
class PathOutcome:
    """One Worker flow through the connector, as the model (or the kernel) sees it.

    ``status``: delivered (the reply goes back into the tunnel), misrouted (it leaves by
    another interface), dropped, or unknown. ``stage`` is where it went wrong (request or
    reply); ``cause`` a kind (no-return-route, rp_filter, forwarding, netfilter, route-type,
    no-route, unknown) and ``detail`` the exact rule/route/chain that shows it.
    """

    target: Target
    worker_ip: str
    status: str
    stage: str | None = None
    cause: str | None = None
    detail: str = ""
    egress: str | None = None  # where the reply leaves (the tunnel when delivered)
    request_dev: str | None = None  # where the Worker's SYN leaves toward the target
    hops: tuple[str, ...] = ()
    seen_source: str | None = None
    source: str = "model"  # "model" or "kernel" (when the model could not decide)
    model_detail: str | None = None  # what the model could not evaluate, if anything

    @property
    def ok(self) -> bool:
        return self.status == "delivered"

    def as_dict(self) -> dict[str, object]:
        return {
            "target": str(self.target),
            "worker_ip": self.worker_ip,
            "status": self.status,
            "stage": self.stage,
            "cause": self.cause,
            "detail": self.detail,
            "egress": self.egress,
            "request_dev": self.request_dev,
            "hops": list(self.hops),
            "seen_source": self.seen_source,
            "decided_by": self.source,
        }


HANDSHAKE = (
    "This is what `handshake timeout` means: the Mesh session is healthy and the Worker's "
    "SYN reaches your service, but the connector never puts the reply back into the tunnel."
)


def route_fix_commands(ctx: CheckContext, worker_ip: str | None = None) -> tuple[str, ...]:
    source = ctx.settings.ranges.source_for(worker_ip or ctx.settings.ranges.worker_probe())
    ip = "ip -6" if source.version == 6 else "ip"
    return (
        "meshpath fix --mode route          # host-side, persistent (FRR staticd or a unit)",
        f"{ip} route add {source} dev {ctx.tunnel}   # immediate, lost on reboot",
    )


def flow_findings(ctx: CheckContext, flow: PathOutcome) -> Iterator[Finding]:
    """The finding that explains one failed flow (nothing for a delivered one)."""
    if flow.model_detail is not None:
        yield _unknown(ctx, flow, (*flow.hops, flow.model_detail))
    if flow.ok:
        return
    evidence = (*flow.hops, flow.detail) if flow.detail else flow.hops
    builder = _BUILDERS.get(flow.cause or "", _unknown)
    yield builder(ctx, flow, evidence)


def _misrouted(ctx: CheckContext, flow: PathOutcome, evidence: tuple[str, ...]) -> Finding:
    """MP101, saying which root cause it is: the device profile's Split Tunnels (WARP's
    table leaves the range out) or the host (WARP's table is not what misroutes it)."""
    source = ctx.settings.ranges.source_for(flow.worker_ip)
    egress = flow.egress or "another interface"
    ex = warp.exclusion(ctx, f"source_v{source.version}")
    story = (
        f"Workers reach {flow.target} from {flow.worker_ip}. The service answers, but this "
        f"host sends the answer out {flow.egress} (its default route) instead of back into "
        f"{ctx.tunnel}, and the LAN gateway drops it. "
    )
    if ex is None:
        title = f"no route for the Cloudflare source range {source} via {ctx.tunnel}: "
        title += f"replies to Workers leave by {egress} (a host-side routing problem)"
        why = story + "WARP's Split Tunnels are not what leaves it out here. " + HANDSHAKE
        fixes, mode = route_fix_commands(ctx, flow.worker_ip), "route"
    else:
        title = f"no route for the Cloudflare source range {source} via {ctx.tunnel}: the "
        title += f"Split Tunnels keep it out ({ex.entry}), so replies to Workers leave by {egress}"
        why = (
            story + "Root cause: the device profile's Split Tunnels; the supported fix is "
            f"to {ex.profile_edit()}. " + warp.HOST_WARNING + ". " + HANDSHAKE
        )
        evidence = (*evidence, *ex.evidence)
        fixes = (*warp.profile_fix_commands(ex), *route_fix_commands(ctx, flow.worker_ip))
        mode = "profile"
    return Finding(
        "MP101",
        Severity.ERROR,
        title,
        evidence=evidence,
        why=why,
        fix_mode=mode,
        fix_commands=fixes,
        target=str(flow.target),
    )


_Builder = Callable[[CheckContext, PathOutcome, tuple[str, ...]], Finding]


def _dropped(fid: str, title: str, why: str, fix: tuple[str, ...] = ()) -> _Builder:
    def build(ctx: CheckContext, flow: PathOutcome, evidence: tuple[str, ...]) -> Finding:
        return Finding(
            fid,
            Severity.ERROR,
            f"{title} ({flow.stage or 'request'} to {flow.target})",
            evidence=evidence,
            why=why,
            fix_commands=fix,
            target=str(flow.target),
        )

    return build


def _unknown(ctx: CheckContext, flow: PathOutcome, evidence: tuple[str, ...]) -> Finding:
    return Finding(
        "MP199",
        Severity.WARNING,
        f"the model cannot evaluate part of the path to {flow.target}",
        evidence=evidence,
        why=(
            "meshpath only trusts what it can evaluate; the kernel's own answer "
            "(ip route get) is used for the verdict where it was available."
        ),
        target=str(flow.target),
    )


_BUILDERS: dict[str, _Builder] = {
    "no-return-route": _misrouted,
    "rp_filter": _dropped(
        "MP130",
        "reverse-path filter drops the Worker's traffic",
        "rp_filter in strict mode drops a packet whose source is not routed back out the "
        "interface it came in on; without a route for the Worker range via the tunnel the "
        "SYN itself looks spoofed.",
        ("meshpath fix --mode route", "sysctl -w net.ipv4.conf.all.rp_filter=2  # loose"),
    ),
    "forwarding": _dropped(
        "MP120",
        "the kernel does not forward the Worker's traffic",
        "Forwarding is off for the interface the packet came in on.",
        ("sysctl -w net.ipv4.ip_forward=1",),
    ),
    "netfilter": _dropped(
        "MP140",
        "a firewall chain drops the Worker's traffic",
        "A netfilter rule or chain policy (for example Docker's FORWARD policy DROP) throws "
        "the packet away before it reaches the LAN or the tunnel.",
        ("nft insert rule ... iifname CloudflareWARP oifname <lan> accept  # or docker-user",),
    ),
    "forwarding6": _dropped(
        "MP124",
        "the kernel does not forward the Worker's IPv6 traffic",
        "IPv6 forwarding is gated by net.ipv6.conf.all.forwarding alone (ip6_forward); a "
        "device's own forwarding does not open it.",
        ("sysctl -w net.ipv6.conf.all.forwarding=1",),
    ),
    "route-type": _dropped(
        "MP141",
        "a blackhole/unreachable/prohibit route or rule drops the Worker's traffic",
        "The routing decision for this packet is to discard it.",
    ),
    "no-route": _dropped(
        "MP142",
        "no route to the target",
        "The connector has no route to the service's address, so the SYN cannot be forwarded.",
    ),
    "martian": _dropped(
        "MP143",
        "the kernel treats the packet as martian",
        "The source or destination address is not acceptable for forwarding.",
    ),
}


def check_lan_return(ctx: CheckContext, has_nat: bool) -> Iterator[Finding]:
    """MP103: the LAN needs a way back to the Worker range: NAT, a static route, or BGP."""
    source = ctx.settings.ranges.source_v4
    advertised = any(
        str(source) in (routes or ()) for routes in ctx.snapshot.frr.view.advertised.values()
    )
    if has_nat or advertised:
        return
    lan_ip = next(
        (
            a.local
            for dev in ctx.lan_interfaces
            for a in ctx.snapshot.addresses_of(dev)
            if a.family == 4
        ),
        "<connector LAN IP>",
    )
    yield Finding(
        "MP103",
        Severity.WARNING,
        f"meshpath sees no return path from the LAN to {source} (no NAT, no BGP advertisement)",
        evidence=(f"no masquerade for {source}", f"no BGP advertisement of {source}"),
        why=(
            f"Your LAN hosts (or their gateway) must send replies for {source} to this "
            f"connector ({lan_ip}). If the gateway does not know that, replies never arrive: "
            + HANDSHAKE
        ),
        fix_mode="bgp",
        fix_commands=(
            "meshpath fix --mode bgp --peer ROUTER --asn ASN   # advertise it to the router",
            f"on the router: ip route add {source} via {lan_ip}",
        ),
    )
