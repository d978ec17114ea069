"""FRR configuration for the lab's routers, rendered as text (pure).

Each daemon gets its own file (zebra, staticd, bgpd, and bfdd where BFD runs) because the
lab runs daemons per namespace with explicit paths instead of one integrated ``frr.conf``
under /etc/frr.
The bgp fix follows the field report's design, done carefully: staticd owns the routes,
bgpd redistributes them through a prefix-list route-map (so a later static route never
leaks), and every eBGP session has an explicit inbound policy (RFC 8212). Timers are short
(``timers bgp 1 3``, connect-retry 1 s) so the lab converges in about two seconds.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Final

from meshpath.collect import frr as collect_frr
from meshpath.lab.topology import (
    ASN,
    DEVICE_RANGE,
    LAN_ADDR,
    SOURCE_RANGE,
    TAILNET_NODE,
    TUN_CONN,
)

DAEMONS: Final[tuple[str, ...]] = ("zebra", "staticd", "bgpd")
LEAK_CANARY: Final = "198.51.100.0/24"


@dataclass(frozen=True, slots=True)
class PrefixList:
    name: str
    prefixes: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class RouteMap:
    """A one-entry route-map: permit (optionally matching a prefix-list) or deny all."""

    name: str
    permit: bool = True
    match_prefix_list: str | None = None


@dataclass(frozen=True, slots=True)
class Neighbor:
    address: str
    asn: int
    policy_in: str | None  # None: no route-map (how RFC 8212 blocks a session)
    policy_out: str | None
    bfd: bool = False  # ``neighbor X bfd``: bgpd registers the session with bfdd


@dataclass(frozen=True, slots=True)
class FrrConfig:
    """What one lab router runs: static routes and (optionally) one BGP instance."""

    hostname: str
    router_id: str
    asn: int | None = None
    statics: tuple[tuple[str, str], ...] = ()
    prefix_lists: tuple[PrefixList, ...] = ()
    route_maps: tuple[RouteMap, ...] = ()
    neighbors: tuple[Neighbor, ...] = ()
    redistribute_static: str | None = None
    networks: tuple[str, ...] = ()
    ipv6: bool = False  # the neighbours activated in ``address-family ipv6 unicast`` too
    # bfdd runs too (ha: the router and both connectors), with these configured peers.
    bfdd: bool = False
    bfd_peers: tuple[str, ...] = ()

    @property
    def daemons(self) -> tuple[str, ...]:
        return (*DAEMONS, "bfdd") if self.bfdd else DAEMONS


def render_zebra(cfg: FrrConfig, log_file: str) -> str:
    return f"hostname {cfg.hostname}\nlog file {log_file} informational\n!\n"


def render_staticd(cfg: FrrConfig) -> str:
    lines = [f"hostname {cfg.hostname}"]
    lines += [f"ip route {prefix} {via}" for prefix, via in cfg.statics]
    return "\n".join(lines) + "\n!\n"


def _render_policy(cfg: FrrConfig) -> list[str]:
    lines: list[str] = []
    for plist in cfg.prefix_lists:
        for seq, prefix in enumerate(plist.prefixes, start=1):
            lines.append(f"ip prefix-list {plist.name} seq {seq * 10} permit {prefix}")
    for rmap in cfg.route_maps:
        lines.append(f"route-map {rmap.name} {'permit' if rmap.permit else 'deny'} 10")
        if rmap.match_prefix_list:
            lines.append(f" match ip address prefix-list {rmap.match_prefix_list}")
        lines.append("exit")
    return lines


def _render_neighbors(cfg: FrrConfig) -> tuple[list[str], list[str]]:
    top: list[str] = []
    af: list[str] = []
    for n in cfg.neighbors:
        top += [
            f" neighbor {n.address} remote-as {n.asn}",
            f" neighbor {n.address} timers connect 1",
            f" neighbor {n.address} advertisement-interval 0",
        ]
        if n.bfd:
            top.append(f" neighbor {n.address} bfd")
        af.append(f"  neighbor {n.address} activate")
        if n.policy_in:
            af.append(f"  neighbor {n.address} route-map {n.policy_in} in")
        if n.policy_out:
            af.append(f"  neighbor {n.address} route-map {n.policy_out} out")
    return top, af


def render_bgpd(cfg: FrrConfig) -> str:
    """bgpd's file: policy objects, then ``router bgp`` with its neighbours and sources."""
    lines = [f"hostname {cfg.hostname}", *_render_policy(cfg)]
    if cfg.asn is not None:
        top, af = _render_neighbors(cfg)
        lines += [
            f"router bgp {cfg.asn}",
            f" bgp router-id {cfg.router_id}",
            " no bgp network import-check",
            " timers bgp 1 3",
            *top,
            " address-family ipv4 unicast",
        ]
        if cfg.redistribute_static:
            lines.append(f"  redistribute static route-map {cfg.redistribute_static}")
        lines += [f"  network {net}" for net in cfg.networks]
        lines += [*af, " exit-address-family"]
        if cfg.ipv6:
            # The same neighbours and policies for IPv6 routes, on the same (IPv4) sessions.
            lines += [" address-family ipv6 unicast", *af, " exit-address-family"]
        lines.append("exit")
    return "\n".join(lines) + "\n!\n"


def render_bfdd(cfg: FrrConfig) -> str:
    """bfdd's file: the configured peers (FRR's BFD docs: peers are created in the ``bfd``
    node; ``neighbor X bfd`` in bgpd then follows the session with that peer)."""
    lines = [f"hostname {cfg.hostname}"]
    if cfg.bfd_peers:
        lines += ["bfd", *(f" peer {peer}\n exit" for peer in cfg.bfd_peers), "exit"]
    return "\n".join(lines) + "\n!\n"


def render_all(cfg: FrrConfig, log_file: str) -> dict[str, str]:
    """Daemon name -> config text, for every daemon the lab starts."""
    texts = {
        "zebra": render_zebra(cfg, log_file),
        "staticd": render_staticd(cfg),
        "bgpd": render_bgpd(cfg),
    }
    if cfg.bfdd:
        texts["bfdd"] = render_bfdd(cfg)
    return texts


ALLOW_ALL: Final = RouteMap("ALLOW-ALL")
DENY_ALL: Final = RouteMap("DENY-ALL", permit=False)


def router_config(tailnet: bool, ha: bool = False) -> FrrConfig:
    """The LAN router: accepts what its peers advertise, advertises nothing itself
    (``ha``: the second connector, a replica of the same Mesh node, same AS, is a peer too,
    and the router is ready for BFD with both: bfdd runs with a peer for each connector
    and bgpd follows it; a session comes up once the connector runs ``fix --bfd``, and a
    BFD session that never came up leaves BGP alone)."""
    peers = [Neighbor(LAN_ADDR["conn"], ASN["conn"], "ALLOW-ALL", "DENY-ALL", bfd=ha)]
    if ha:
        peers.append(Neighbor(LAN_ADDR["connb"], ASN["conn"], "ALLOW-ALL", "DENY-ALL", bfd=True))
    if tailnet:
        peers.append(Neighbor(LAN_ADDR["ts"], ASN["ts"], "ALLOW-ALL", "DENY-ALL"))
    return FrrConfig(
        hostname="router",
        router_id=LAN_ADDR["router"],
        asn=ASN["router"],
        route_maps=(ALLOW_ALL, DENY_ALL),
        neighbors=tuple(peers),
        ipv6=True,  # a dual-stack LAN: IPv6 routes from the connectors too
        bfdd=ha,
        bfd_peers=(LAN_ADDR["conn"], LAN_ADDR["connb"]) if ha else (),
    )


def connector_config(canary: bool = True) -> FrrConfig:
    """The bgp fix on the connector: two /12 statics via the tunnel, advertised exactly.

    ``canary`` adds one more static route that the prefix-list must keep to the connector,
    so the lab can prove that nothing but the two ranges leaks to the router.
    """
    statics = [(SOURCE_RANGE, TUN_CONN), (DEVICE_RANGE, TUN_CONN)]
    if canary:
        statics.append((LEAK_CANARY, TUN_CONN))
    return FrrConfig(
        hostname="conn",
        router_id=LAN_ADDR["conn"],
        asn=ASN["conn"],
        statics=tuple(statics),
        prefix_lists=(PrefixList("CF-MESH", (SOURCE_RANGE, DEVICE_RANGE)),),
        route_maps=(RouteMap("CF-MESH-OUT", match_prefix_list="CF-MESH"), ALLOW_ALL),
        neighbors=(Neighbor(LAN_ADDR["router"], ASN["router"], "ALLOW-ALL", "CF-MESH-OUT"),),
        redistribute_static="CF-MESH-OUT",
    )


def connector_base_config() -> FrrConfig:
    """The connector's FRR before ``meshpath fix --mode bgp``: zebra, staticd and bgpd
    running, one unrelated static route (the leak canary), no BGP yet."""
    return FrrConfig(
        hostname="conn",
        router_id=LAN_ADDR["conn"],
        statics=((LEAK_CANARY, TUN_CONN),),
    )


def tailnet_config() -> FrrConfig:
    """A tailnet subnet router: advertises one Tailscale node's /32 (and only that)."""
    return FrrConfig(
        hostname="ts",
        router_id=LAN_ADDR["ts"],
        asn=ASN["ts"],
        prefix_lists=(PrefixList("TAILNET", (f"{TAILNET_NODE}/32",)),),
        route_maps=(RouteMap("TAILNET-OUT", match_prefix_list="TAILNET"), DENY_ALL),
        neighbors=(Neighbor(LAN_ADDR["router"], ASN["router"], "DENY-ALL", "TAILNET-OUT"),),
        networks=(f"{TAILNET_NODE}/32",),
    )


def daemon_argv(daemon: str, conf: str, rundir: str) -> list[str]:
    """argv to start one FRR daemon with every path inside ``rundir`` (run in the node's ns)."""
    # bfdd's control socket defaults to /var/run/frr/bfdd.sock: one per node, not shared.
    bfdctl = ["--bfdctl", f"{rundir}/bfdd.sock"] if daemon == "bfdd" else []
    return [
        f"/usr/lib/frr/{daemon}",
        "-d",
        "-f",
        conf,
        "-i",
        f"{rundir}/{daemon}.pid",
        "-z",
        f"{rundir}/zserv.api",
        "--vty_socket",
        rundir,
        *bfdctl,
    ]


def check_argv(daemon: str, conf: str) -> list[str]:
    """argv of FRR's own config check (``-C``: parse, report, exit)."""
    return [f"/usr/lib/frr/{daemon}", "-C", "-f", conf]


def check_problems(output: str) -> list[str]:
    """The lines of a ``-C`` run that report a problem (FRR exits 0 even then)."""
    return [ln for ln in output.splitlines() if "config line" in ln]


def vtysh_argv(rundir: str, command: str) -> list[str]:
    """vtysh for the lab's daemons, which run with their own ``--vty_socket DIR``."""
    return collect_frr.vtysh_argv(None, command, Path(rundir))
