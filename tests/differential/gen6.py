"""Random but plausible IPv6 routing states and queries, as `ip -6 -batch` text.

The IPv6 twin of gen.py: veth pairs and a tun (no carrier: its routes are ``linkdown``;
vb2 stays down so va2 has none either), ULA addresses (``nodad``, and DAD off for the
link-local ones, so nothing changes between the collection and the queries), a few hundred
routes over several tables (unicast/gateway/throw/blackhole/unreachable/prohibit/local,
metrics), rules (from/to/iif/oif/fwmark/uidrange/ipproto/ports/not/goto/nop/actions/
suppress_prefixlength), ``all.forwarding`` (which adds the subnet-router anycast routes)
and per-device ``forwarding`` and ``ignore_routes_with_linkdown``. Queries include
link-local, loopback and (locally generated) multicast destinations, where the kernel
looks up through one device only. Everything is drawn from one ``random.Random(seed)``.
"""

from __future__ import annotations

import ipaddress
import random

from tests.differential.gen import DEVICES, TABLES, Family, State, build

SUBNET = {dev: n for n, dev in enumerate(DEVICES)}  # dev -> N of fd00:N::/64
MARKS = (0, 0x1, 0x100CF, 0x2A, 0xFF00)
ANCHORS = (
    "2001:db8::", "2001:db8:1::", "2606:4700:cf1:5000::", "2606:4700:cf1:1000::",
    "2a00:1450::", "fd00:1::", "fd20::",
)  # fmt: skip
PLENS = (0, 16, 32, 36, 40, 47, 48, 56, 60, 63, 64, 65, 80, 96, 112, 120, 127, 128)


def _addr(dev: str, host: int = 1) -> str:
    return f"fd00:{SUBNET[dev]}::{host:x}"


def _ip(rng: random.Random) -> str:
    """An address near the anchors, in a connected subnet, or anywhere global."""
    pick = rng.random()
    if pick < 0.5:
        base = int(ipaddress.IPv6Address(rng.choice(ANCHORS)))
        base += rng.choice((0, 0, 1, 2)) << 80  # a neighbouring /48
        base += rng.choice((0, 1, 0x100)) << 64  # a neighbouring /64
        return str(ipaddress.IPv6Address(base + rng.choice((0, 1, 5, 0x50, 1 << 40))))
    if pick < 0.85:
        return _addr(rng.choice(DEVICES), rng.choice((1, 2, 3, 7, 0xFFFF)))
    return str(ipaddress.IPv6Address((0x2 << 124) | rng.getrandbits(124)))


def _prefix(rng: random.Random) -> str:
    plen = rng.choice(PLENS[1:])
    return str(ipaddress.IPv6Network(f"{_ip(rng)}/{plen}", strict=False))


def _route(rng: random.Random, defaults: set[str]) -> str:
    table = rng.choice(TABLES)
    dst = _prefix(rng)
    if rng.random() < 0.04 and table not in defaults:
        defaults.add(table)
        dst = "default"
    metric = f" metric {rng.choice((10, 20, 30))}" if rng.random() < 0.3 else ""
    kind = rng.random()
    head = f"route add {{}}{dst} table {table}{metric}"
    if kind < 0.23:
        rtype = rng.choice(("throw", "blackhole", "unreachable", "prohibit"))
        return head.format(f"{rtype} ")
    dev = rng.choice(DEVICES)
    if kind < 0.25:  # a hand-made local route
        return head.format("local ") + f" dev {dev}"
    if kind < 0.31:  # weighted siblings (IPv6 multipath wants a gateway per leg)
        return head.format("") + " " + _legs6(rng)
    if kind < 0.6:
        return head.format("") + f" via {_addr(dev, rng.choice((2, 3)))} dev {dev}"
    return head.format("") + f" dev {dev}"


def _legs6(rng: random.Random) -> str:
    devs = rng.sample(DEVICES, rng.choice((2, 2, 3)))
    return " ".join(f"nexthop via {_addr(dev, rng.choice((2, 3)))} dev {dev} "
                    f"weight {rng.randrange(1, 5)}" for dev in devs)  # fmt: skip


def build_state6(seed: int, queries: int) -> State:
    return build(seed, queries, V6)


def pre_sysctls() -> list[str]:
    """Set before any link exists (new devices copy ``default``): no DAD, no RA/RS noise."""
    return [f"net.ipv6.conf.{w}.{k}=0" for w in ("all", "default")
            for k in ("accept_dad", "accept_ra", "router_solicitations")]  # fmt: skip


def _sysctls(rng: random.Random) -> list[str]:
    # all.forwarding first: writing it copies the value to every device.
    out = [f"net.ipv6.conf.all.forwarding={int(rng.random() < 0.6)}"]
    out.append(f"net.ipv6.conf.all.ignore_routes_with_linkdown={int(rng.random() < 0.2)}")
    for dev in DEVICES:
        out.append(f"net.ipv6.conf.{dev}.forwarding={int(rng.random() < 0.75)}")
        out.append(f"net.ipv6.conf.{dev}.ignore_routes_with_linkdown={int(rng.random() < 0.4)}")
    # The multipath hash: IPv4's seed (a known one in most states), IPv6's own policy.
    seed = rng.randrange(1, 1 << 32) if rng.random() < 0.75 else 0
    out.append(f"net.ipv4.fib_multipath_hash_seed={seed}")
    out.append(f"net.ipv6.fib_multipath_hash_policy={rng.choice((0, 0, 1))}")
    return out


def _dst(rng: random.Random, *, output: bool) -> str:
    special = rng.random()
    if special < 0.04:
        return rng.choice(("fe80::1", "fe80::5:1"))
    if special < 0.06:
        return "::1"
    if output and special < 0.09:
        return rng.choice(("ff02::1", "ff05::2", "ff0e::1"))
    return _ip(rng)


def _query(rng: random.Random) -> str:
    mark = rng.choice(MARKS)
    tail = f" mark {mark}" if mark else ""
    if rng.random() < 0.25:
        tail += f" ipproto {rng.choice(('tcp', 'udp'))}"
        tail += f" sport {rng.choice((0, 22, 50, 1000, 1050))}"
        tail += f" dport {rng.choice((0, 22, 50, 1000, 1050))}"
    if rng.random() < 0.7:
        src = _ip(rng) if rng.random() < 0.95 else "::"
        return f"route get {_dst(rng, output=False)} from {src} iif {rng.choice(DEVICES)}{tail}"
    if rng.random() < 0.2:
        tail += f" oif {rng.choice(DEVICES)}"
    src = ""
    if rng.random() < 0.35:
        src = f" from {rng.choice((_ip(rng), _addr(rng.choice(DEVICES))))}"
    return f"route get {_dst(rng, output=True)}{src}{tail}"


V6 = Family(
    addr_line=lambda dev: f"addr add {_addr(dev)}/64 dev {dev} nodad",
    route=_route,
    prefix=_prefix,
    lookups=(*TABLES, "local", "default", "103"),
    suppress=(0, 32, 48, 64),
    sysctls=_sysctls,
    query=_query,
    tos=False,
)
