"""Hand-built snapshots for unit tests: the field report's connector and variations."""

from __future__ import annotations

from typing import Any

import msgspec

from meshpath.state import (
    SCHEMA_VERSION,
    TABLE_LOCAL,
    TABLE_MAIN,
    TABLE_WARP,
    Address,
    BaseChain,
    FrrState,
    Ipv4Conf,
    Ipv6Conf,
    Link,
    NftState,
    Route,
    Rule,
    Snapshot,
    Sysctls,
    WarpState,
)


def link(index: int, name: str, kind: str = "", *, up: bool = True, mtu: int = 1500) -> Link:
    flags = ("UP", "LOWER_UP") if up else ()
    return Link(
        index=index,
        name=name,
        kind=kind,
        flags=flags,
        operstate="UP" if up else "DOWN",
        carrier=up,
        mtu=mtu,
    )


def conf(forwarding: int = 1, rp_filter: int = 0, **kw: int) -> Ipv4Conf:
    return Ipv4Conf(forwarding=forwarding, rp_filter=rp_filter, **kw)


def broken_connector(**changes: Any) -> Snapshot:
    """The connector of the field report: fresh WARP, no route for 100.64.0.0/12, no NAT."""
    snap = Snapshot(
        schema_version=SCHEMA_VERSION,
        taken_at="2026-11-25T00:00:00Z",
        hostname="conn",
        kernel="6.18.0",
        netns=None,
        links=(
            link(1, "lo", "", mtu=65536),
            link(2, "eth0", "veth"),
            link(3, "CloudflareWARP", "tun", mtu=1280),
        ),
        addresses=(
            Address(dev="lo", family=4, local="127.0.0.1", prefixlen=8, scope=254),
            Address(dev="eth0", family=4, local="10.0.1.2", prefixlen=24),
            Address(dev="CloudflareWARP", family=4, local="100.96.0.5", prefixlen=32),
        ),
        routes=(
            Route(table=TABLE_MAIN, family=4, dst="0.0.0.0/0", gateway="10.0.1.1", dev="eth0"),
            Route(
                table=TABLE_MAIN,
                family=4,
                dst="10.0.1.0/24",
                dev="eth0",
                protocol=2,
                scope=253,
                prefsrc="10.0.1.2",
            ),
            Route(table=TABLE_MAIN, family=4, dst="100.96.0.0/12", dev="CloudflareWARP"),
            Route(table=TABLE_WARP, family=4, dst="0.0.0.0/1", dev="CloudflareWARP"),
            Route(table=TABLE_WARP, family=4, dst="128.0.0.0/1", dev="CloudflareWARP"),
            # WARP's split-tunnel excludes: no tunnel route for the LAN or for 100.64.0.0/10
            # (the lab leaves holes; throw routes give the same verdicts).
            Route(table=TABLE_WARP, family=4, dst="10.0.0.0/8", type="throw"),
            Route(table=TABLE_WARP, family=4, dst="100.64.0.0/10", type="throw"),
            Route(
                table=TABLE_LOCAL,
                family=4,
                dst="10.0.1.2/32",
                type="local",
                dev="eth0",
                protocol=2,
                scope=254,
                prefsrc="10.0.1.2",
            ),
            Route(
                table=TABLE_LOCAL,
                family=4,
                dst="100.96.0.5/32",
                type="local",
                dev="CloudflareWARP",
                protocol=2,
                scope=254,
                prefsrc="100.96.0.5",
            ),
            Route(
                table=TABLE_LOCAL,
                family=4,
                dst="127.0.0.0/8",
                type="local",
                dev="lo",
                protocol=2,
                scope=254,
                prefsrc="127.0.0.1",
            ),
        ),
        rules=(
            Rule(family=4, priority=0, table=TABLE_LOCAL),
            Rule(family=4, priority=32764, table=TABLE_MAIN, suppress_prefixlength=0),
            Rule(
                family=4,
                priority=32765,
                table=TABLE_WARP,
                invert=True,
                fwmark=0x100CF,
                fwmask=0xFFFFFFFF,
            ),
            Rule(family=4, priority=32766, table=TABLE_MAIN),
            Rule(family=4, priority=32767, table=253),
        ),
        nft=NftState(
            available=True,
            ruleset={"nftables": [{"metainfo": {"json_schema_version": 1}}]},
            base_chains=(
                BaseChain(
                    family="inet",
                    table="cloudflare-warp",
                    name="input",
                    type="filter",
                    hook="input",
                    priority=0,
                ),
            ),
        ),
        sysctls=Sysctls(
            ipv4={
                "all": conf(),
                "default": conf(),
                "eth0": conf(),
                "CloudflareWARP": conf(),
                "lo": conf(),
            },
            ipv6={"all": Ipv6Conf(forwarding=0)},
        ),
        frr=FrrState(available=False),
        warp=WarpState(available=True, status="Connected", mode="warp-connector"),
        tools={"nft": True, "vtysh": False, "warp-cli": True},
    )
    return msgspec.structs.replace(snap, **changes) if changes else snap


def with_routes(snap: Snapshot, *routes: Route) -> Snapshot:
    """``snap`` plus ``routes`` (a hypothetical change, as a fix would predict it)."""
    return msgspec.structs.replace(snap, routes=snap.routes + routes)


def with_rules(snap: Snapshot, *rules: Rule) -> Snapshot:
    return msgspec.structs.replace(snap, rules=snap.rules + rules)


def with_conf(snap: Snapshot, dev: str, **values: int) -> Snapshot:
    """``snap`` with net.ipv4.conf.<dev>.<key>=<value> changed."""
    ipv4 = dict(snap.sysctls.ipv4)
    ipv4[dev] = msgspec.structs.replace(ipv4.get(dev, conf()), **values)
    return msgspec.structs.replace(snap, sysctls=msgspec.structs.replace(snap.sysctls, ipv4=ipv4))


def nft_chain(
    hook: str,
    rules: list[list[dict[str, Any]]],
    *,
    chain_type: str = "filter",
    policy: str = "accept",
    priority: int = 0,
    table: str = "t",
    name: str | None = None,
) -> list[dict[str, Any]]:
    """`nft -j` items for one inet base chain and its rules (expr lists)."""
    name = name or hook
    items: list[dict[str, Any]] = [
        {
            "chain": {
                "family": "inet", "table": table, "name": name, "handle": 1, "type": chain_type,
                "hook": hook, "prio": priority, "policy": policy,
            }
        }
    ]  # fmt: skip
    for handle, expr in enumerate(rules, start=2):
        items.append(
            {"rule": {"family": "inet", "table": table, "chain": name, "handle": handle,
                      "expr": expr}}
        )  # fmt: skip
    return items


def with_nft(snap: Snapshot, *items: dict[str, Any]) -> Snapshot:
    ruleset = {"nftables": [{"metainfo": {"json_schema_version": 1}}, *items]}
    return msgspec.structs.replace(snap, nft=NftState(available=True, ruleset=ruleset))


def masquerade_lan(
    oif: str = "eth0", src: str = "100.64.0.0", plen: int = 10
) -> list[dict[str, Any]]:
    """The field report's NAT: postrouting masquerade of the Worker range leaving ``oif``."""
    return nft_chain(
        "postrouting",
        [[
            {"match": {"op": "==", "left": {"meta": {"key": "oifname"}}, "right": oif}},
            {"match": {"op": "==", "left": {"payload": {"protocol": "ip", "field": "saddr"}},
                       "right": {"prefix": {"addr": src, "len": plen}}}},
            {"masquerade": None},
        ]],
        chain_type="nat",
        priority=100,
        table="nat",
    )  # fmt: skip


# -- IPv6: the same connector, dual-stack -------------------------------------------------

LAN6 = "fd00:1::/64"
CONN6 = "fd00:1::2"
SVC6 = "fd00:1::50"
WORKER6 = "2606:4700:cf1:5000::5"


def v6conf(forwarding: int = 1, **kw: int) -> Ipv6Conf:
    return Ipv6Conf(forwarding=forwarding, **kw)


def dual_stack_connector(**changes: Any) -> Snapshot:
    """:func:`broken_connector` with a ULA LAN (fd00:1::/64) and WARP's v6 side: the device
    address, table 65743's two halves of the v6 space, WARP's rules for IPv6 too, and no
    route for the v6 source range via the tunnel (the field report, over IPv6)."""
    snap = broken_connector()
    v6_routes = (
        Route(table=TABLE_MAIN, family=6, dst="::/0", gateway="fd00:1::1", dev="eth0",
              metric=1024),
        Route(table=TABLE_MAIN, family=6, dst=LAN6, dev="eth0", protocol=2, metric=256),
        Route(table=TABLE_MAIN, family=6, dst="2606:4700:cf1:1000::/64", dev="CloudflareWARP",
              metric=1024),
        Route(table=TABLE_WARP, family=6, dst="::/1", dev="CloudflareWARP", metric=1024),
        Route(table=TABLE_WARP, family=6, dst="8000::/1", dev="CloudflareWARP", metric=1024),
        Route(table=TABLE_WARP, family=6, dst="fd00::/8", type="throw", dev="lo", metric=1024),
        Route(table=TABLE_WARP, family=6, dst="2606:4700:cf1:5000::/64", type="throw",
              dev="lo", metric=1024),
        Route(table=TABLE_LOCAL, family=6, dst="fd00:1::2/128", type="local", dev="eth0",
              protocol=2),
        Route(table=TABLE_LOCAL, family=6, dst="2606:4700:cf1:1000::5/128", type="local",
              dev="CloudflareWARP", protocol=2),
        Route(table=TABLE_LOCAL, family=6, dst="::1/128", type="local", dev="lo", protocol=2),
    )  # fmt: skip
    v6_rules = tuple(
        msgspec.structs.replace(r, family=6) for r in snap.rules if r.priority != 32767
    )
    v6_addrs = (
        Address(dev="eth0", family=6, local=CONN6, prefixlen=64),
        Address(dev="CloudflareWARP", family=6, local="2606:4700:cf1:1000::5", prefixlen=128),
        Address(dev="lo", family=6, local="::1", prefixlen=128, scope=254),
    )
    sysctls = msgspec.structs.replace(
        snap.sysctls,
        ipv6={name: v6conf() for name in ("all", "default", "eth0", "CloudflareWARP", "lo")},
    )
    snap = msgspec.structs.replace(
        snap,
        addresses=snap.addresses + v6_addrs,
        routes=snap.routes + v6_routes,
        rules=snap.rules + v6_rules,
        sysctls=sysctls,
    )
    return msgspec.structs.replace(snap, **changes) if changes else snap


def with_v6conf(snap: Snapshot, dev: str, **values: int) -> Snapshot:
    """``snap`` with net.ipv6.conf.<dev>.<key>=<value> changed."""
    ipv6 = dict(snap.sysctls.ipv6)
    ipv6[dev] = msgspec.structs.replace(ipv6.get(dev, v6conf()), **values)
    return msgspec.structs.replace(snap, sysctls=msgspec.structs.replace(snap.sysctls, ipv6=ipv6))
