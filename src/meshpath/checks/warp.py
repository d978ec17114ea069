"""The doctor's WARP checks: the Split Tunnels (the documented root cause) and what
Cloudflare's Mesh pages tell users to check that a host snapshot can see.

MP104  the Split Tunnels keep the Cloudflare source range out of the tunnel
MP105  the Split Tunnels keep the device range out of the tunnel
MP123  forwarding is on at runtime but not persisted in a sysctl file
MP144  a forward chain drops by policy and accepts nothing from/to CloudflareWARP
MP152  warp-cli reports WARP not connected        MP153  not registered as a connector
MP191  cloudflared runs next to WARP               MP192  another VPN / mesh client runs
MP193  a DNS server runs on the connector

Sources (Cloudflare's documentation):

* Reserved IPs, "Split Tunnel configuration": in Exclude mode 100.64.0.0/10 is excluded by
  default; delete the reserved ranges from the list "or the associated features will stop
  working"; example: delete 100.64.0.0/10, add back 100.80.0.0/12 and 100.112.0.0/12.
  https://developers.cloudflare.com/cloudflare-one/networks/routes/reserved-ips/
* Mesh "Routes": a node's Split Tunnels must send the Cloudflare source range 100.64.0.0/12
  and the device range 100.96.0.0/12 through Cloudflare.
  https://developers.cloudflare.com/mesh/features/routes/
* Mesh tips / best practices: "The Mesh node's kernel-level integration overrides manual
  routing configurations (`ip route add`, `iptables`)"; cloudflared next to the node needs
  Split Tunnels exclusions; other VPN clients "cause unpredictable behavior"; do not run the
  node on a DNS server; persistent forwarding in /etc/sysctl.d.
  https://developers.cloudflare.com/mesh/best-practices/
* Mesh troubleshooting: warp-cli status, Split Tunnels, forwarding, forward firewall.
  https://developers.cloudflare.com/mesh/troubleshooting/
* WARP Connector guide: ``iptables -A FORWARD -i/-o CloudflareWARP -j ACCEPT`` on hosts
  with iptables. https://developers.cloudflare.com/cloudflare-one/networks/connectors/cloudflare-tunnel/private-net/warp-connector/site-to-site/

Where the docs disagree: the WARP-to-WARP page's older Exclude recipe (re-add 100.64.0.0/11
and 100.112.0.0/12, cloudflare-docs PR #18609) routes the device range but keeps the source
range excluded; the Reserved IPs page's recipe routes both. meshpath computes the edit from
the ranges in force, so it never re-adds a part of the source range.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Final

from meshpath.checks.context import CheckContext
from meshpath.checks.finding import Finding, Severity
from meshpath.state import BaseChain, SplitEntry, SplitView
from meshpath.state.nft import NftRule
from meshpath.state.split import (
    IPNetwork,
    carve,
    cover_for,
    entry_network,
    infer_split,
    missing_includes,
    split_ranges,
)

if TYPE_CHECKING:
    from meshpath.checks.path import PathOutcome

RESERVED_IPS: Final = (
    "https://developers.cloudflare.com/cloudflare-one/networks/routes/reserved-ips/"
)
MESH_TIPS: Final = "https://developers.cloudflare.com/mesh/best-practices/"
FORWARD_FILE: Final = "/etc/sysctl.d/99-zzz-cloudflare-warp-connector.conf"
PERSIST_COMMAND: Final = (
    "printf 'net.ipv4.ip_forward = 1\\nnet.ipv6.conf.all.forwarding = 1\\n"
    f"net.ipv6.conf.all.accept_ra = 2\\n' | sudo tee {FORWARD_FILE} && sudo sysctl --system"
)
HOST_WARNING: Final = (
    "Host-side alternatives (meshpath fix --mode route|nat|bgp) work at once, but WARP "
    "re-applies its own routing and firewall on reconnect: Cloudflare's Mesh tips say its "
    "kernel-level integration overrides manual routing (ip route add, iptables)"
)
# Cloudflare Tunnel's edge, to be excluded when cloudflared runs next to WARP ("Tunnel with
# firewall", required for tunnel operation).
TUNNEL_EDGE: Final = ("198.41.192.0/24", "198.41.200.0/24")
OTHER_VPNS: Final = frozenset(
    {"tailscaled", "openvpn", "zerotier-one", "nebula", "netbird", "wg-quick", "vpnagentd"}
)
DNS_SERVERS: Final = frozenset(
    {"dnsmasq", "named", "unbound", "pihole-FTL", "coredns", "pdns_server"}
)


@dataclass(frozen=True, slots=True)
class Exclusion:
    """Why a Cloudflare range stays out of the tunnel, and the profile edit that fixes it."""

    key: str
    range: str
    mode: str  # exclude / include
    evidence: tuple[str, ...]
    deletes: tuple[str, ...]
    adds: tuple[str, ...]
    from_client: bool  # the entries came from warp-cli, not from table 65743's gap

    @property
    def entry(self) -> str:
        """The entry that keeps the range out, for titles."""
        if self.mode == "include":
            return f"no include entry for {self.range}"
        return f"excluded by {', '.join(self.deletes) or 'an exclude entry'}"

    def profile_edit(self) -> str:
        if self.mode == "include":
            return f"add {', '.join(self.adds)} to the Include list"
        added = f"; add back {', '.join(self.adds)}" if self.adds else ""
        return f"delete {', '.join(self.deletes)} from the Exclude list{added}"


def split_view(ctx: CheckContext) -> SplitView:
    return infer_split(ctx.snapshot, ctx.tunnel, split_ranges(ctx.settings.ranges))


def _needed(ctx: CheckContext, view: SplitView) -> list[IPNetwork]:
    """The ranges a connector needs through the tunnel that are not (fully) there now."""
    ranges = ctx.settings.ranges
    out: list[IPNetwork] = []
    for key, net in (("source_v4", ranges.source_v4), ("device_v4", ranges.device_v4),
                     ("source_v6", ranges.source_v6), ("device_v6", ranges.device_v6)):  # fmt: skip
        cover = cover_for(view, key)
        if cover is None or cover.cover != "full":
            out.append(net)
    return out


def exclusion(ctx: CheckContext, key: str, view: SplitView | None = None) -> Exclusion | None:
    """The Split Tunnels exclusion of range ``key`` (source_v4, device_v4), if any.

    From warp-cli's list when the snapshot has it, else from table 65743: a WARP table that
    routes via the tunnel but leaves the range out is the profile's doing.
    """
    view = view or split_view(ctx)
    cover = cover_for(view, key)
    if cover is None or cover.cover == "full":
        return None
    # Only the ranges of the key's family: a v4 profile edit never adds v6 ranges back.
    needed = [n for n in _needed(ctx, view) if str(n.version) == key[-1]]
    warp = ctx.snapshot.warp
    if warp.split_entries is not None and warp.split_mode in ("exclude", "include"):
        return _from_client(key, cover.range, warp.split_mode, warp.split_entries, needed)
    if view.mode not in ("exclude", "include"):
        return None  # no WARP table at all: a host problem, not the profile
    return _from_table(ctx, key, cover.range, view, cover.gap, needed)


def _from_client(
    key: str, rng: str, mode: str, entries: Sequence[SplitEntry], needed: list[IPNetwork]
) -> Exclusion | None:
    values = [e.value for e in entries]
    net = ipaddress.ip_network(rng)
    if mode == "include":
        adds = missing_includes(values, needed)
        found = (f"warp-cli: Split Tunnels in Include mode, no entry covers {rng}",)
        return Exclusion(key, rng, mode, found, (), tuple(adds), True)
    covering = [v for v in values if (n := entry_network(v)) is not None and n.overlaps(net)]
    if not covering:
        return None  # excluded by something the list does not show (e.g. a managed network)
    deletes, adds = carve(values, needed)
    evidence = tuple(f"warp-cli: Split Tunnels exclude entry {v} covers {rng}" for v in covering)
    return Exclusion(key, rng, mode, evidence, tuple(deletes), tuple(adds), True)


def _from_table(
    ctx: CheckContext,
    key: str,
    rng: str,
    view: SplitView,
    gap: tuple[str, ...],
    needed: list[IPNetwork],
) -> Exclusion:
    head = (
        f"table 65743 (WARP's) routes {view.table_routes} prefix(es) via {ctx.tunnel} "
        f"({view.mode.capitalize()} mode by its coverage) and none covering all of {rng}"
    )
    if view.mode == "include":
        adds = missing_includes([], needed)
        return Exclusion(key, rng, "include", (head,), (), tuple(adds), False)
    deletes, adds = carve(list(gap), needed)
    tail = f"the gap there is {', '.join(gap)}: what an exclude entry {gap[0]} leaves"
    return Exclusion(key, rng, "exclude", (head, tail), tuple(deletes), tuple(adds), False)


def profile_fix_commands(ex: Exclusion) -> tuple[str, ...]:
    return (
        "meshpath fix --mode profile --account-id ACCOUNT [--policy ID]   # the supported "
        "fix: the device profile's Split Tunnels, through Cloudflare's API",
        f"or in the dashboard, device profile > Split Tunnels: {ex.profile_edit()}",
    )


# -- MP104 / MP105 ----------------------------------------------------------------------
def check_split_tunnels(ctx: CheckContext, flows: Sequence[PathOutcome]) -> Iterator[Finding]:
    """MP104 (source range) and MP105 (device range) kept out by the Split Tunnels."""
    view = split_view(ctx)
    misrouted = any(f.cause == "no-return-route" for f in flows)
    src = exclusion(ctx, "source_v4", view)
    if src is not None:
        note = "" if misrouted else " (a host-side route carries it for now)"
        severity = Severity.ERROR if misrouted else Severity.WARNING
        yield _split_finding(ctx, src, "MP104", severity, note)
    dev = exclusion(ctx, "device_v4", view)
    if dev is not None:
        yield _split_finding(ctx, dev, "MP105", Severity.WARNING)


def _split_finding(
    ctx: CheckContext, ex: Exclusion, fid: str, severity: Severity, note: str = ""
) -> Finding:
    what = "Cloudflare source range" if ex.key == "source_v4" else "device range"
    who = (
        "Workers and other Cloudflare services"
        if ex.key == "source_v4"
        else "Mesh devices and nodes"
    )
    return Finding(
        fid,
        severity,
        f"the Split Tunnels keep the {what} {ex.range} out of {ctx.tunnel} ({ex.entry}){note}",
        evidence=ex.evidence,
        why=(
            f"{who} reach this connector from {ex.range}. WARP routes into the tunnel only "
            "what the device profile's Split Tunnels send there; replies to an excluded "
            "range leave by the host's default route instead. Cloudflare's Reserved IPs page: "
            "the reserved ranges must be removed from the Exclude list 'or the associated "
            f"features will stop working' ({RESERVED_IPS}). The fix is the profile: "
            f"{ex.profile_edit()}. " + HOST_WARNING + "."
        ),
        fix_mode="profile",
        fix_commands=(
            *profile_fix_commands(ex),
            "meshpath fix --mode route|nat|bgp   # host-side; WARP may override it",
        ),
    )


# -- MP123: forwarding not persisted --------------------------------------------------------
def check_forwarding_persisted(ctx: CheckContext) -> Iterator[Finding]:
    persisted = ctx.snapshot.persisted_sysctls
    if persisted is None or not ctx.snapshot.sysctls.ip_forward:
        return
    keys = ("net.ipv4.ip_forward", "net.ipv4.conf.all.forwarding")
    setting = [p for p in persisted if p.key in keys]
    if setting and setting[-1].value == "1":
        return
    evidence = [f"{p.file}: {p.key} = {p.value}" for p in setting] or [
        "no file under /etc/sysctl.d, /run/sysctl.d, /usr/lib/sysctl.d or /etc/sysctl.conf "
        "sets net.ipv4.ip_forward"
    ]
    yield Finding(
        "MP123",
        Severity.WARNING,
        "IPv4 forwarding is on now but not persisted: the next boot turns it off",
        evidence=("net.ipv4.ip_forward = 1 (runtime)", *evidence),
        why=(
            "A value set with `sysctl -w` is lost at reboot; the connector then stops "
            "forwarding Worker traffic to the LAN. Cloudflare's Mesh guide persists it in "
            f"{FORWARD_FILE} ({MESH_TIPS}#make-ip-forwarding-persistent)."
        ),
        fix_commands=(PERSIST_COMMAND,),
    )


# -- MP144: forward policy drop without a CloudflareWARP accept ---------------------------
def check_forward_policy(ctx: CheckContext) -> Iterator[Finding]:
    drops = [
        c
        for c in ctx.snapshot.nft.base_chains
        if c.hook == "forward" and c.type == "filter" and c.policy == "drop"
    ]
    for chain in drops:
        if any(_accepts_tunnel(r, ctx.tunnel) for r in _chain_rules(ctx, chain)):
            continue
        yield Finding(
            "MP144",
            Severity.WARNING,
            f"forward chain {chain.family} {chain.table} {chain.name} drops by policy and "
            f"accepts nothing in or out of {ctx.tunnel}",
            evidence=(f"{chain.family} {chain.table} {chain.name}: hook forward policy drop",),
            why=(
                "Forwarded Worker traffic needs an accept on this host; Cloudflare's WARP "
                "Connector guide adds one for each direction on hosts with iptables. Note "
                "that WARP manages its own firewall and may re-order it on reconnect."
            ),
            fix_commands=(
                f"iptables -A FORWARD -i {ctx.tunnel} -j ACCEPT",
                f"iptables -A FORWARD -o {ctx.tunnel} -j ACCEPT",
            ),
        )


def _chain_rules(ctx: CheckContext, chain: BaseChain) -> Iterator[NftRule]:
    return ctx.snapshot.nft.view.rules_of(chain.family, chain.table, chain.name)


def _accepts_tunnel(rule: NftRule, tunnel: str) -> bool:
    if rule.verdict() not in ("accept", "jump", "goto"):
        return False
    return any(
        left.endswith(("iifname", "oifname")) and right == tunnel
        for left, _op, right in rule.matches()
    )


# -- MP152 / MP153: warp-cli's own view -------------------------------------------------------
def check_warp_client(ctx: CheckContext) -> Iterator[Finding]:
    warp = ctx.snapshot.warp
    if not warp.available or warp.status is None:
        return
    if warp.status.lower() != "connected":
        yield Finding(
            "MP152",
            Severity.WARNING,
            f"warp-cli reports WARP {warp.status}",
            evidence=(f"warp-cli status: Status update: {warp.status}",),
            why="A node that is not connected carries no Mesh traffic at all.",
            fix_commands=("warp-cli connect", "journalctl -u warp-svc --since '15 minutes ago'"),
        )
    if warp.registration in ("device", "missing"):
        what = "a regular client device" if warp.registration == "device" else "not registered"
        yield Finding(
            "MP153",
            Severity.WARNING,
            f"this WARP client is {what}, not a Mesh node / WARP Connector",
            evidence=(f"warp-cli registration show: {warp.registration}",),
            why="Only a connector registration forwards traffic for the subnet behind it.",
            fix_commands=(
                "warp-cli registration delete",
                "warp-cli --accept-tos connector new <MESH_NODE_TOKEN>",
            ),
        )


# -- MP191-MP193: what else runs here -------------------------------------------------------
def check_neighbours(ctx: CheckContext) -> Iterator[Finding]:
    procs = set(ctx.snapshot.processes or ())
    if "cloudflared" in procs and not _tunnel_edge_excluded(ctx):
        yield Finding(
            "MP191",
            Severity.WARNING,
            "cloudflared runs next to WARP and its edge is not excluded from the tunnel",
            evidence=("process cloudflared in this network namespace",),
            why=(
                "WARP captures cloudflared's outbound connections; Split Tunnels is the only "
                "supported way to run both (Mesh tips)."
            ),
            fix_commands=tuple(f"Split Tunnels: exclude {net}" for net in TUNNEL_EDGE),
        )
    for name in sorted(procs & OTHER_VPNS):
        yield Finding(
            "MP192",
            Severity.WARNING,
            f"{name} runs next to WARP",
            evidence=(f"process {name} in this network namespace",),
            why="Cloudflare: other VPN or mesh clients compete for routing; unpredictable.",
            fix_commands=(f"systemctl disable --now {name}",),
        )
    for name in sorted(procs & DNS_SERVERS):
        yield Finding(
            "MP193",
            Severity.INFO,
            f"a DNS server ({name}) runs on the connector",
            evidence=(f"process {name} in this network namespace",),
            why="Mesh nodes redirect the host's DNS to Gateway; Cloudflare advises against it.",
        )


def _tunnel_edge_excluded(ctx: CheckContext) -> bool:
    warp = ctx.snapshot.warp
    if warp.split_mode != "exclude" or warp.split_entries is None:
        return False
    values = {e.value for e in warp.split_entries}
    return all(net in values for net in TUNNEL_EDGE)


CHECKS = (check_forwarding_persisted, check_forward_policy, check_warp_client, check_neighbours)
