"""The host-state model: everything meshpath needs to know about one connector host.

A :class:`Snapshot` is an immutable value (msgspec frozen Structs) that is collected from
a live host (see :mod:`meshpath.collect`), saved as JSON, shared, and diagnosed anywhere.
Field values follow the kernel's own vocabulary (numbers where the kernel has numbers:
table ids, protocols, scopes) so that the simulator never has to guess a name's meaning.

The JSON form is versioned by ``schema_version``; see :mod:`meshpath.state.codec`.
Version 2 added WARP's split-tunnel view (:class:`WarpState` fields, :class:`SplitView`),
the forwarding sysctls persisted on disk and the processes in the namespace; a version-1
snapshot still loads (those parts are then None: not collected, so never judged).
"""

from __future__ import annotations

from functools import cached_property
from typing import Any, Final

import msgspec

from meshpath.state.base import Frozen as _Frozen
from meshpath.state.frr import FrrView, frr_view
from meshpath.state.frrconf import FrrConfig
from meshpath.state.nft import BaseChain, NftView, parse_ruleset

SCHEMA_VERSION: Final = 2
# The oldest schema this meshpath still reads (every later field has a default).
MIN_SCHEMA_VERSION: Final = 1

# Well-known routing table ids (include/uapi/linux/rtnetlink.h) and WARP's / Tailscale's.
TABLE_DEFAULT: Final = 253
TABLE_MAIN: Final = 254
TABLE_LOCAL: Final = 255
TABLE_WARP: Final = 65743
TABLE_TAILSCALE: Final = 52

# Route scopes (rtnetlink.h rt_scope_t).
SCOPE_UNIVERSE: Final = 0
SCOPE_LINK: Final = 253
SCOPE_HOST: Final = 254

# Route protocols that matter to meshpath (rtnetlink.h; 196 is FRR's staticd, rt_protos.d).
PROTO_KERNEL: Final = 2
PROTO_BOOT: Final = 3
PROTO_STATIC: Final = 4
PROTO_FRR_STATIC: Final = 196
PROTO_FRR_BGP: Final = 186

# Route types, as ip-route(8) names them, indexed by their number (rtnetlink.h RTN_*).
ROUTE_TYPE_NAMES: Final = (
    "unspec", "unicast", "local", "broadcast", "anycast", "multicast",
    "blackhole", "unreachable", "prohibit", "throw", "nat", "xresolve",
)  # fmt: skip
ROUTE_TYPES: Final = frozenset(ROUTE_TYPE_NAMES[1:])
# Rule actions, as ip-rule(8) names them (fib_rules.h FR_ACT_*).
RULE_ACTIONS: Final = frozenset({"lookup", "goto", "nop", "blackhole", "unreachable", "prohibit"})


class Link(_Frozen, frozen=True, gc=False):
    """A network interface (``ip link``)."""

    index: int
    name: str
    kind: str  # IFLA_INFO_KIND ("tun", "veth", "bridge", ...) or "" for a plain device
    flags: tuple[str, ...]  # IFF_* names: UP, LOWER_UP, NOARP, POINTOPOINT, ...
    operstate: str  # UP, DOWN, UNKNOWN, LOWERLAYERDOWN, ...
    carrier: bool
    mtu: int
    master: str | None = None
    address: str | None = None  # link-layer address, if any
    group: int = 0

    @property
    def admin_up(self) -> bool:
        return "UP" in self.flags


class Address(_Frozen, frozen=True, gc=False):
    """An interface address (``ip addr``)."""

    dev: str
    family: int  # 4 or 6
    local: str
    prefixlen: int
    scope: int = SCOPE_UNIVERSE
    peer: str | None = None  # point-to-point peer, when set


class Nexthop(_Frozen, frozen=True, gc=False):
    """One leg of a multipath route."""

    gateway: str | None = None
    dev: str | None = None
    weight: int = 1
    flags: tuple[str, ...] = ()


class Route(_Frozen, frozen=True, gc=False):
    """One route in one table (``ip route show table all``).

    ``dst`` is always a CIDR (``0.0.0.0/0`` for default). ``metric`` is the kernel's
    priority (0 when unset). ``protocol`` and ``scope`` are the kernel's numbers.
    """

    table: int
    family: int
    dst: str
    type: str = "unicast"
    gateway: str | None = None
    dev: str | None = None
    metric: int = 0
    protocol: int = PROTO_BOOT
    scope: int = SCOPE_UNIVERSE
    prefsrc: str | None = None
    tos: int = 0
    flags: tuple[str, ...] = ()  # linkdown, onlink, dead, ...
    nexthops: tuple[Nexthop, ...] = ()  # multipath legs (then gateway/dev are None)
    mtu: int | None = None


class PortRange(_Frozen, frozen=True, gc=False):
    start: int
    end: int


class Rule(_Frozen, frozen=True, gc=False):
    """One policy routing rule (``ip rule``); selectors None/False when absent."""

    family: int
    priority: int
    action: str = "lookup"
    table: int | None = None
    goto: int | None = None
    invert: bool = False  # "not"
    src: str | None = None  # CIDR
    dst: str | None = None  # CIDR
    iif: str | None = None
    oif: str | None = None
    fwmark: int | None = None
    fwmask: int | None = None
    tos: int = 0
    ipproto: int | None = None
    sport: PortRange | None = None
    dport: PortRange | None = None
    uidrange: PortRange | None = None
    l3mdev: bool = False
    suppress_prefixlength: int | None = None
    suppress_ifgroup: int | None = None
    protocol: int = 0


class NftState(_Frozen, frozen=True, dict=True):
    """The nftables ruleset as ``nft -j list ruleset`` gives it, kept raw as evidence, plus
    its base chains; readers use :attr:`view` (typed, see :mod:`meshpath.state.nft`)."""

    available: bool
    ruleset: dict[str, Any] | None = None  # {"nftables": [...]} exactly as nft printed it
    base_chains: tuple[BaseChain, ...] = ()
    error: str | None = None

    @cached_property
    def view(self) -> NftView:
        """Tables, chains, rules, sets and meshpath's masquerades (derived once)."""
        return parse_ruleset(self.ruleset)


class Ipv4Conf(_Frozen, frozen=True):
    """``net.ipv4.conf.<name>.*`` for one of all/default/<interface>."""

    forwarding: int
    rp_filter: int
    src_valid_mark: int = 0
    accept_local: int = 0
    route_localnet: int = 0
    log_martians: int = 0
    send_redirects: int = 1  # fib_validate_source skips its shortcut when forwarding back out
    ignore_routes_with_linkdown: int = 0  # fib_table_lookup then skips linkdown nexthops


class Ipv6Conf(_Frozen, frozen=True):
    """``net.ipv6.conf.<name>.*`` for one of all/default/<interface>."""

    forwarding: int
    disable_ipv6: int = 0
    # fib6 skips linkdown nexthops when set for all or the device (ip6_ignore_linkdown).
    ignore_routes_with_linkdown: int = 0
    # 1 accepts Router Advertisements only while the device does not forward; 2 always.
    accept_ra: int = 1


class Sysctls(_Frozen, frozen=True):
    """The sysctls on the forwarding path, keyed by all/default/<interface>."""

    ipv4: dict[str, Ipv4Conf]
    ipv6: dict[str, Ipv6Conf] = msgspec.field(default_factory=dict)
    fwmark_reflect: int = 0
    tcp_mtu_probing: int = 0
    # How the kernel spreads flows over a multipath route's legs (net.ipv4.fib_multipath_*).
    # The seed is None where the kernel has no such sysctl (before 6.11) and 0 where it is
    # unset: both mean a random per-boot seed, so which leg a flow takes cannot be known.
    fib_multipath_hash_policy: int = 0
    fib_multipath_hash_seed: int | None = None
    fib_multipath_use_neigh: int = 0
    fib6_multipath_hash_policy: int = 0  # net.ipv6.fib_multipath_hash_policy (same seed)

    @property
    def ip_forward(self) -> bool:
        conf = self.ipv4.get("all")
        return bool(conf and conf.forwarding)


class FrrState(_Frozen, frozen=True, dict=True):
    """FRR's view, when vtysh exists: raw JSON of its show commands (evidence) plus the
    running config; readers use :attr:`view` (typed, see :mod:`meshpath.state.frr`)."""

    available: bool
    running: bool = False
    daemons: tuple[str, ...] = ()
    ip_route: dict[str, Any] | None = None  # show ip route json
    ipv6_route: dict[str, Any] | None = None  # show ipv6 route json (when it has statics)
    bgp_summary: dict[str, Any] | None = None  # show bgp summary json
    running_config: str | None = None
    # peer -> `show ip bgp neighbors PEER advertised-routes json`
    bgp_advertised: dict[str, Any] | None = None
    error: str | None = None
    # show bgp neighbors json, asked only when a session is not Established: why it went down
    bgp_neighbors: dict[str, Any] | None = None
    # peer -> `show bgp ipv6 unicast neighbors PEER advertised-routes json`, for the peers
    # the IPv6 unicast family is activated with (None: none, or an older snapshot)
    bgp_advertised6: dict[str, Any] | None = None

    @cached_property
    def view(self) -> FrrView:
        """BGP peers, what each is sent, staticd's routes (derived once)."""
        return frr_view(
            self.bgp_summary,
            self.bgp_advertised,
            self.ip_route,
            self.ipv6_route,
            self.bgp_neighbors,
            self.bgp_advertised6,
        )

    @cached_property
    def config(self) -> FrrConfig:
        """The running config's blocks and line keys (parsed once; empty without one)."""
        return FrrConfig.read(self.running_config)


class SplitEntry(_Frozen, frozen=True, gc=False):
    """One Split Tunnels entry as the client lists it: an address (CIDR) or a host."""

    value: str
    note: str | None = None  # e.g. "CLI exclude", "zoom": the client's annotation


class WarpState(_Frozen, frozen=True):
    """What ``warp-cli`` reports, when it is installed (schema 2 added the split tunnels,
    the registration and the version)."""

    available: bool
    status: str | None = None
    mode: str | None = None
    raw: str | None = None
    error: str | None = None
    split_mode: str | None = None  # "exclude" / "include", as the client lists them
    split_entries: tuple[SplitEntry, ...] | None = None  # None: not listed
    registration: str | None = None  # "connector", "device", "missing", or None (unknown)
    version: str | None = None


class RangeCover(_Frozen, frozen=True, gc=False):
    """How table 65743 treats one Cloudflare range (see :mod:`meshpath.state.split`)."""

    key: str  # source_v4, device_v4, source_v6, device_v6
    range: str
    cover: str  # "full", "partial", "none"
    gap: tuple[str, ...] = ()  # the uncovered space around the range, as CIDRs


class SplitView(_Frozen, frozen=True):
    """What WARP's table 65743 says about the Split Tunnels, inferred (no warp-cli needed)."""

    table_routes: int  # routes via the tunnel in table 65743 (both families)
    mode: str  # "exclude", "include", "empty" (no table 65743 routes via the tunnel)
    ranges: tuple[RangeCover, ...] = ()


class PersistedSysctl(_Frozen, frozen=True, gc=False):
    """A forwarding sysctl set in a file that is applied at boot (``/etc/sysctl.d`` ...)."""

    file: str
    key: str
    value: str


class Snapshot(_Frozen, frozen=True):
    """The whole host state at one moment."""

    schema_version: int
    taken_at: str  # ISO 8601, UTC
    hostname: str
    kernel: str
    netns: str | None
    links: tuple[Link, ...]
    addresses: tuple[Address, ...]
    routes: tuple[Route, ...]
    rules: tuple[Rule, ...]
    nft: NftState
    sysctls: Sysctls
    frr: FrrState
    warp: WarpState
    tools: dict[str, bool] = msgspec.field(default_factory=dict)  # program -> present
    # schema 2 (None in a version-1 snapshot: not collected, never judged)
    warp_split: SplitView | None = None
    persisted_sysctls: tuple[PersistedSysctl, ...] | None = None
    processes: tuple[str, ...] | None = None  # process names (comm) in this namespace

    def link(self, name: str) -> Link | None:
        return next((link for link in self.links if link.name == name), None)

    def link_by_index(self, index: int) -> Link | None:
        return next((link for link in self.links if link.index == index), None)

    def routes_in(self, table: int) -> tuple[Route, ...]:
        return tuple(r for r in self.routes if r.table == table)

    def addresses_of(self, dev: str) -> tuple[Address, ...]:
        return tuple(a for a in self.addresses if a.dev == dev)
