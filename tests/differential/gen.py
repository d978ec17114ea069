"""Random but plausible routing states and queries, as `ip -batch` text, and the kernel's answers.

A state is a few veth pairs and a tun (no carrier: its routes are ``linkdown``), addresses,
a few hundred routes over several tables (unicast/gateway/throw/blackhole/unreachable/
prohibit, metrics), rules (from/to/iif/fwmark/not/goto/nop/actions/suppress_prefixlength),
and per-device forwarding, rp_filter, src_valid_mark, accept_local and
ignore_routes_with_linkdown. Everything is drawn from one ``random.Random(seed)``.
"""

from __future__ import annotations

import json
import random
import re
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
    kind = rng.random()
    if kind < 0.08:
        return f"route add throw {dst} table {table}{metric}"
    if kind < 0.14:
        return f"route add blackhole {dst} table {table}{metric}"
    if kind < 0.19:
        return f"route add unreachable {dst} table {table}{metric}"
    if kind < 0.23:
        return f"route add prohibit {dst} table {table}{metric}"
    dev = rng.choice(DEVICES)
    if kind < 0.6:
        subnet = ADDRS[dev].split(".")[1]
        gateway = f"10.{subnet}.0.{rng.choice((2, 3))}"
        return f"route add {dst} via {gateway} dev {dev} table {table}{metric}"
    return f"route add {dst} dev {dev} table {table}{metric}"


def _rule(rng: random.Random, prio: int, prios: list[int]) -> str:
    parts = [f"rule add pref {prio}"]
    if rng.random() < 0.15:
        parts.append("not")
    if rng.random() < 0.3:
        parts.append(f"from {_prefix(rng)}")
    if rng.random() < 0.3:
        parts.append(f"to {_prefix(rng)}")
    if rng.random() < 0.3:
        parts.append(f"iif {rng.choice((*DEVICES, 'lo'))}")
    if rng.random() < 0.3:
        mark = rng.choice(MARKS[1:])
        parts.append(f"fwmark {mark:#x}" + (f"/{0xFF:#x}" if rng.random() < 0.3 else ""))
    action = rng.random()
    later = [p for p in prios if p > prio]
    if action < 0.08 and later:
        parts.append(f"goto {rng.choice(later)}")
    elif action < 0.12:
        parts.append("nop")
    elif action < 0.16:
        parts.append(rng.choice(("blackhole", "unreachable", "prohibit")))
    else:
        parts.append(f"lookup {rng.choice((*TABLES, '103'))}")
        if rng.random() < 0.25:
            parts.append(f"suppress_prefixlength {rng.choice((0, 8, 16, 24))}")
    return " ".join(parts)


def build_state(seed: int, queries: int) -> State:
    rng = random.Random(seed)
    st = State(seed)
    for a, b in VETH:
        st.setup.append(f"link add {a} type veth peer name {b}")
    st.setup.append(f"tuntap add dev {TUN} mode tun")
    for dev in DEVICES:
        st.setup.append(f"addr add {ADDRS[dev]} dev {dev}")
        # vb2 stays down so va2 has no carrier: its routes are linkdown (as tn0's are).
        if dev != "vb2":
            st.setup.append(f"link set {dev} up")
    defaults: set[str] = set()
    st.setup.extend(_route(rng, defaults) for _ in range(rng.randrange(150, 350)))
    if rng.random() > 0.12:  # a few states keep the default rules only
        prios = sorted(rng.sample(range(1, 32000), rng.randrange(1, 14)))
        st.setup.extend(_rule(rng, p, prios) for p in prios)
    st.sysctls = _sysctls(rng)
    st.queries = [_query(rng) for _ in range(queries)]
    return st


def _sysctls(rng: random.Random) -> list[str]:
    out = [f"net.ipv4.conf.all.rp_filter={rng.choice((0, 0, 1, 2))}"]
    out.append(f"net.ipv4.conf.all.src_valid_mark={int(rng.random() < 0.2)}")
    for dev in DEVICES:
        out.append(f"net.ipv4.conf.{dev}.forwarding={int(rng.random() < 0.75)}")
        out.append(f"net.ipv4.conf.{dev}.rp_filter={rng.choice((0, 1, 2))}")
        out.append(f"net.ipv4.conf.{dev}.src_valid_mark={int(rng.random() < 0.2)}")
        out.append(f"net.ipv4.conf.{dev}.accept_local={int(rng.random() < 0.1)}")
        out.append(f"net.ipv4.conf.{dev}.ignore_routes_with_linkdown={int(rng.random() < 0.4)}")
    return out


def _query(rng: random.Random) -> str:
    dst = _ip(rng)
    mark = rng.choice(MARKS)
    tail = f" mark {mark}" if mark else ""
    if rng.random() < 0.75:
        return f"route get {dst} from {_ip(rng)} iif {rng.choice(DEVICES)}{tail}"
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
