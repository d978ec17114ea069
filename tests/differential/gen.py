"""Random but plausible routing states and queries, as `ip -batch` text, and the kernel's answers.

A state is a few veth pairs and a tun (no carrier: its routes are ``linkdown``), addresses,
a few hundred routes over several tables (unicast/gateway/throw/blackhole/unreachable/
prohibit, metrics, weighted multipath), rules (from/to/iif/fwmark/not/goto/nop/actions/
suppress_prefixlength), per-device forwarding, rp_filter, src_valid_mark, accept_local and
ignore_routes_with_linkdown, and the multipath hash's policy and seed (set or random).
Queries include multicast destinations, 0.0.0.0, and the uid/ipproto/port/oif/tos
selectors. Everything is drawn from one ``random.Random(seed)``.
"""

from __future__ import annotations

import json
import random
import re
from collections.abc import Callable
from dataclasses import dataclass, field

VETH = (("va0", "vb0"), ("va1", "vb1"), ("va2", "vb2"))
TUN = "tn0"
DEVICES = ("va0", "vb0", "va1", "vb1", "va2", "vb2", TUN)
ADDRS = {
    "va0": "10.0.0.1/24",
    "vb0": "10.4.0.1/24",
    "va1": "10.1.0.1/24",
    "vb1": "10.5.0.1/24",
    "va2": "10.2.0.1/24",
    "vb2": "10.6.0.1/24",
    TUN: "10.3.0.1/24",
}
TABLES = ("main", "100", "101", "102")
MARKS = (0, 0x1, 0x100CF, 0x2A, 0xFF00)
TOS = (0x4, 0x8, 0x10)
ANCHORS = ("20.0.0.0", "20.1.0.0", "30.0.0.0", "100.64.0.0", "100.96.0.0", "172.16.0.0")


@dataclass
class State:
    seed: int
    setup: list[str] = field(default_factory=list)  # ip -batch lines
    sysctls: list[str] = field(default_factory=list)  # key=value for sysctl -w
    queries: list[str] = field(default_factory=list)  # "route get ..." lines


def _ip(rng: random.Random) -> str:
    """An address near the anchors, in a connected subnet, or anywhere."""
    pick = rng.random()
    if pick < 0.55:
        base = [int(x) for x in rng.choice(ANCHORS).split(".")]
        base[1] += rng.choice((0, 0, 1, 2))
        return f"{base[0]}.{base[1]}.{rng.choice((0, 1, 2, 128))}.{rng.randrange(256)}"
    if pick < 0.85:
        return f"10.{rng.randrange(7)}.0.{rng.choice((1, 2, 3, 7, 255))}"
    return f"{rng.randrange(1, 224)}.{rng.randrange(256)}.{rng.randrange(256)}.{rng.randrange(256)}"


def _prefix(rng: random.Random) -> str:
    plen = rng.choice((8, 9, 10, 12, 15, 16, 17, 20, 23, 24, 25, 28, 30, 32))
    a, b, c, d = (int(x) for x in _ip(rng).split("."))
    value = (a << 24) | (b << 16) | (c << 8) | d
    value &= ((1 << 32) - (1 << (32 - plen))) & 0xFFFFFFFF
    net = ".".join(str((value >> s) & 255) for s in (24, 16, 8, 0))
    return f"{net}/{plen}"


def _route(rng: random.Random, defaults: set[str]) -> str:
    table = rng.choice(TABLES)
    dst = _prefix(rng)
    if rng.random() < 0.04 and table not in defaults:
        defaults.add(table)
        dst = "default"
    metric = f" metric {rng.choice((10, 20, 30))}" if rng.random() < 0.3 else ""
    if rng.random() < 0.06:
        metric += f" tos {rng.choice(TOS):#x}"  # iproute2 reads a dsfield as hex
    kind = rng.random()
    if kind < 0.08:
        return f"route add throw {dst} table {table}{metric}"
    if kind < 0.14:
        return f"route add blackhole {dst} table {table}{metric}"
    if kind < 0.19:
        return f"route add unreachable {dst} table {table}{metric}"
    if kind < 0.23:
        return f"route add prohibit {dst} table {table}{metric}"
    if kind < 0.25:  # a hand-made local route: fib_has_custom_local_routes
        return f"route add local {dst} dev {rng.choice(DEVICES)} table {table}{metric}"
    if kind < 0.31:
        return f"route add {dst} table {table}{metric} {_legs(rng)}"
    dev = rng.choice(DEVICES)
    if kind < 0.6:
        subnet = ADDRS[dev].split(".")[1]
        gateway = f"10.{subnet}.0.{rng.choice((2, 3))}"
        return f"route add {dst} via {gateway} dev {dev} table {table}{metric}"
    return f"route add {dst} dev {dev} table {table}{metric}"


def _legs(rng: random.Random) -> str:
    """Two or three weighted nexthops on different devices (a multi-WAN default)."""
    devs = rng.sample(DEVICES, rng.choice((2, 2, 3)))
    parts = []
    for dev in devs:
        subnet = ADDRS[dev].split(".")[1]
        parts.append(f"nexthop via 10.{subnet}.0.{rng.choice((2, 3))} dev {dev} "
                     f"weight {rng.randrange(1, 5)}")  # fmt: skip
    return " ".join(parts)


@dataclass(frozen=True)
class Family:
    """What the two families' states differ in; everything else is drawn the same way (and
    in the same order) by :func:`build` for both."""

    addr_line: Callable[[str], str]  # dev -> `addr add ...`
    route: Callable[[random.Random, set[str]], str]
    prefix: Callable[[random.Random], str]
    lookups: tuple[str, ...]  # tables a rule may look up
    suppress: tuple[int, ...]  # suppress_prefixlength values
    sysctls: Callable[[random.Random], list[str]]
    query: Callable[[random.Random], str]
    tos: bool = True  # rules may select on tos (v6 rules: dsfield, not drawn)


def rule_line(rng: random.Random, prio: int, prios: list[int], family: Family) -> str:
    parts = [f"rule add pref {prio}", *selectors(rng, family)]
    action = rng.random()
    later = [p for p in prios if p > prio]
    if action < 0.08 and later:
        parts.append(f"goto {rng.choice(later)}")
    elif action < 0.12:
        parts.append("nop")
    elif action < 0.16:
        parts.append(rng.choice(("blackhole", "unreachable", "prohibit")))
    else:
        parts.append(f"lookup {rng.choice(family.lookups)}")
        if rng.random() < 0.25:
            parts.append(f"suppress_prefixlength {rng.choice(family.suppress)}")
    return " ".join(parts)


def _port_range(rng: random.Random) -> str:
    low = rng.choice((0, 22, 1000))
    return f"{rng.choice(('sport', 'dport'))} {low}-{low + rng.choice((0, 100))}"


def _fwmark(rng: random.Random) -> str:
    mark = rng.choice(MARKS[1:])
    return f"fwmark {mark:#x}" + (f"/{0xFF:#x}" if rng.random() < 0.3 else "")


Selector = Callable[[random.Random, Family], str]
# (probability, selector text) for `ip rule add`, drawn in this order.
SELECTORS: tuple[tuple[float, Selector], ...] = (
    (0.15, lambda rng, f: "not"),
    (0.3, lambda rng, f: f"from {f.prefix(rng)}"),
    (0.3, lambda rng, f: f"to {f.prefix(rng)}"),
    (0.3, lambda rng, f: f"iif {rng.choice((*DEVICES, 'lo'))}"),
    (0.08, lambda rng, f: f"oif {rng.choice(DEVICES)}"),
    (0.06, lambda rng, f: f"tos {rng.choice(TOS):#x}"),
    (0.12, lambda rng, f: f"ipproto {rng.choice(('tcp', 'udp'))}"),
    (0.12, lambda rng, f: _port_range(rng)),
    (0.08, lambda rng, f: f"uidrange {rng.choice(('0-0', '1000-2000'))}"),
    (0.3, lambda rng, f: _fwmark(rng)),
)
_TOS_SELECTOR = 5


def selectors(rng: random.Random, family: Family) -> list[str]:
    offered = [s for i, s in enumerate(SELECTORS) if family.tos or i != _TOS_SELECTOR]
    return [make(rng, family) for chance, make in offered if rng.random() < chance]


def build(seed: int, queries: int, family: Family) -> State:
    """A state of ``family``: the links (vb2 stays down so va2 has no carrier: its routes
    are linkdown, as tn0's are), addresses, routes, rules, sysctls and queries."""
    rng = random.Random(seed)
    st = State(seed)
    for a, b in VETH:
        st.setup.append(f"link add {a} type veth peer name {b}")
    st.setup.append(f"tuntap add dev {TUN} mode tun")
    for dev in DEVICES:
        st.setup.append(family.addr_line(dev))
        if dev != "vb2":
            st.setup.append(f"link set {dev} up")
    defaults: set[str] = set()
    routes = [family.route(rng, defaults) for _ in range(rng.randrange(150, 350))]
    if rng.random() > 0.12:  # a few states keep the default rules only
        prios = sorted(rng.sample(range(1, 32000), rng.randrange(1, 14)))
        st.setup.extend(rule_line(rng, p, prios, family) for p in prios)
    # A gateway is resolved when its route is added (fib_check_nh_v4_gw; IPv6 wants it
    # reachable), through the rules and the link/host-scope routes of that moment: add
    # those first, gateway routes last, so the final state explains every gateway.
    st.setup.extend(sorted(routes, key=lambda line: " via " in line))
    st.sysctls = family.sysctls(rng)
    st.queries = [family.query(rng) for _ in range(queries)]
    return st


def build_state(seed: int, queries: int) -> State:
    return build(seed, queries, V4)


def _sysctls(rng: random.Random) -> list[str]:
    out = [f"net.ipv4.conf.all.rp_filter={rng.choice((0, 0, 1, 2))}"]
    out.append(f"net.ipv4.conf.all.src_valid_mark={int(rng.random() < 0.2)}")
    # a known seed in most states (the leg is then predicted), a random one in the rest
    seed = rng.randrange(1, 1 << 32) if rng.random() < 0.75 else 0
    out.append(f"net.ipv4.fib_multipath_hash_seed={seed}")
    out.append(f"net.ipv4.fib_multipath_hash_policy={rng.choice((0, 0, 1))}")
    for dev in DEVICES:
        out.append(f"net.ipv4.conf.{dev}.forwarding={int(rng.random() < 0.75)}")
        out.append(f"net.ipv4.conf.{dev}.rp_filter={rng.choice((0, 1, 2))}")
        out.append(f"net.ipv4.conf.{dev}.src_valid_mark={int(rng.random() < 0.2)}")
        out.append(f"net.ipv4.conf.{dev}.accept_local={int(rng.random() < 0.1)}")
        out.append(f"net.ipv4.conf.{dev}.ignore_routes_with_linkdown={int(rng.random() < 0.4)}")
    return out


def _dst(rng: random.Random) -> str:
    pick = rng.random()
    if pick < 0.04:
        return "224.0.0.1"  # all hosts: joined on every device
    if pick < 0.07:
        return f"239.{rng.randrange(256)}.{rng.randrange(256)}.{rng.randrange(1, 255)}"
    if pick < 0.08:
        return "0.0.0.0"
    return _ip(rng)


def _query(rng: random.Random) -> str:
    dst = _dst(rng)
    mark = rng.choice(MARKS)
    tail = f" mark {mark}" if mark else ""
    if rng.random() < 0.15:
        tail += f" tos {rng.choice((*TOS, 0x14, 0x30)):#x}"
    if rng.random() < 0.25:
        tail += f" ipproto {rng.choice(('tcp', 'udp'))}"
        tail += f" sport {rng.choice((0, 22, 50, 1000, 1050))}"
        tail += f" dport {rng.choice((0, 22, 50, 1000, 1050))}"
    if rng.random() < 0.75:
        return f"route get {dst} from {_ip(rng)} iif {rng.choice(DEVICES)}{tail}"
    if rng.random() < 0.15:
        tail += f" oif {rng.choice(DEVICES)}"
    if rng.random() < 0.15:
        tail += f" uid {rng.choice((0, 1000, 1500, 3000))}"
    src = ""
    if rng.random() < 0.3:
        src = f" from {rng.choice((_ip(rng), ADDRS[rng.choice(DEVICES)].split('/')[0]))}"
    return f"route get {dst}{src}{tail}"


# -- the kernel's answers -------------------------------------------------------------------

ERRNO_TEXT = {
    "Network is unreachable": "ENETUNREACH",
    "No route to host": "EHOSTUNREACH",
    "Permission denied": "EACCES",
    "Invalid argument": "EINVAL",
    "No such device": "ENODEV",
}
_FAILED = re.compile(r"^Command failed .*:(\d+)$")
_ANSWER = re.compile(r"^RTNETLINK answers: (.*)$")


@dataclass(frozen=True)
class Answer:
    """The comparable part of one `ip route get` answer (or of a simulated Decision)."""

    error: str | None
    kind: str | None = None  # unicast / local / broadcast
    dev: str | None = None
    gateway: str | None = None
    table: int | None = None


def parse_batch(stdout: str, stderr: str, count: int) -> list[Answer]:
    """Align `ip -j -force -batch` output: errors carry their line number on stderr, every
    successful line prints one JSON array on stdout, in order."""
    errors: dict[int, str] = {}
    last = "?"
    for line in stderr.splitlines():
        if m := _ANSWER.match(line):
            last = ERRNO_TEXT.get(m.group(1).strip(), m.group(1).strip())
        elif m := _FAILED.match(line):
            errors[int(m.group(1))] = last
            last = "?"
    oks = iter(line for line in stdout.splitlines() if line.strip())
    answers = []
    for n in range(1, count + 1):
        if n in errors:
            answers.append(Answer(errors[n]))
            continue
        (route,) = json.loads(next(oks))
        answers.append(_kernel_answer(route))
    return answers


def _kernel_answer(route: dict[str, object]) -> Answer:
    table = str(route.get("table", "main"))
    tid = {"main": 254, "local": 255, "default": 253}.get(table)
    return Answer(
        None,
        kind=str(route.get("type", "unicast")),
        dev=str(route["dev"]),
        gateway=str(route["gateway"]) if "gateway" in route else None,
        table=tid if tid is not None else int(table),
    )


V4 = Family(
    addr_line=lambda dev: f"addr add {ADDRS[dev]} dev {dev}",
    route=_route,
    prefix=_prefix,
    lookups=(*TABLES, "103"),
    suppress=(0, 8, 16, 24),
    sysctls=_sysctls,
    query=_query,
)
