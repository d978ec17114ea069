"""Netfilter as nftables runs it: base chains of one hook, in priority order, over a packet.

The ruleset is ``nft -j list ruleset`` (libnftables-json(5)) as the Snapshot keeps it. Each
``ip``/``inet`` base chain on the hook runs in priority order (``nf_hook_slow``): a rule's
``match`` expressions are a conjunction; ``accept`` ends that chain (the next base chain
still runs), ``drop``/``reject`` end the hook; ``jump``/``goto``/``return``/``continue`` walk
regular chains; the chain's policy applies at its end. ``nat`` chains see only a
connection's first packet (conntrack), where ``masquerade``/``snat``/``dnat`` rewrite it.

An IPv6 packet runs the ``ip6`` and ``inet`` base chains (an IPv4 one ``ip`` and ``inet``);
``ip``-protocol matches never match it (nft's implied ``meta nfproto`` dependency), and
``ip6`` ones never match an IPv4 packet. IPv6 has no ``rp_filter``: its reverse-path filter
is ``fib saddr . iif oif missing drop``, evaluated through the caller's ``fib`` lookup
(``nft_fib6_eval``: the source looked up through the ingress device only).

Anything this model cannot evaluate (an expression it does not know, a verdict map, an
IPv4 ``fib``, ``ct status``...) makes the verdict ``unknown`` naming the rule — never a
silent guess.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any, Final

import msgspec

from meshpath.errors import BadInputError
from meshpath.sim.addr import MASKS, ip_to_int
from meshpath.sim.addr6 import MASKS6, ip6_to_int, is_v6
from meshpath.sim.values import TCP, UDP, KernelStep
from meshpath.state.nft import BaseChain, NftRule, NftView, parse_ruleset

ACCEPT: Final = "accept"
DROP: Final = "drop"
UNKNOWN: Final = "unknown"
ICMPV6: Final = 58
PROTO_NAMES: Final = {"tcp": TCP, "udp": UDP, "icmp": 1, "icmpv6": ICMPV6, "ipv6-icmp": ICMPV6}
# ICMPv6 types by the names nft lists them with (RFC 4443).
ICMPV6_TYPES: Final = {
    "destination-unreachable": 1, "packet-too-big": 2, "time-exceeded": 3,
    "parameter-problem": 4, "echo-request": 128, "echo-reply": 129,
    "nd-router-solicit": 133, "nd-router-advert": 134, "nd-neighbor-solicit": 135,
    "nd-neighbor-advert": 136,
}  # fmt: skip
_NOOP_STATEMENTS: Final = frozenset({"counter", "log", "comment", "notrack"})
_MAX_DEPTH: Final = 16


@dataclass
class NfPacket:
    """The fields netfilter matches on, mutable while NAT rewrites it along a hook."""

    src: str
    dst: str
    proto: int
    sport: int
    dport: int
    iif: str | None
    oif: str | None
    mark: int = 0
    ct_state: str = "new"  # new | established (conntrack's view of this packet)
    nat: list[tuple[str, str]] = field(default_factory=list)  # (snat|masquerade|dnat, address)
    icmp_type: int | None = None  # ICMPv6 type when proto is 58
    # The reverse-path lookup `fib saddr . iif oif` needs (IPv6 only): the egress device of
    # the packet's source looked up through its ingress device, None when there is none.
    fib_oif: Any = None

    @property
    def v6(self) -> bool:
        return is_v6(self.dst)


class HookResult(msgspec.Struct, frozen=True, gc=False):
    """The verdict of one hook: accept, drop (also reject) or unknown, with its steps."""

    hook: str
    verdict: str
    reason: str
    steps: tuple[KernelStep, ...] = ()


class _Unknown(Exception):
    """An expression or statement the model cannot evaluate."""


@dataclass
class Ruleset:
    """The ruleset indexed: base chains per hook, rules per chain, set elements."""

    base: dict[str, list[BaseChain]] = field(default_factory=dict)
    rules: dict[tuple[str, str, str], list[NftRule]] = field(default_factory=dict)
    sets: dict[tuple[str, str, str], tuple[Any, ...]] = field(default_factory=dict)

    @classmethod
    def parse(cls, ruleset: dict[str, Any] | None) -> Ruleset:
        """From an ``nft -j list ruleset`` document (see :meth:`of`)."""
        return cls.of(parse_ruleset(ruleset))

    @classmethod
    def of(cls, view: NftView) -> Ruleset:
        """From a snapshot's typed ruleset (``snapshot.nft.view``)."""
        self = cls()
        for chain in view.base_chains:
            if chain.family in ("ip", "ip6", "inet"):
                self.base.setdefault(chain.hook, []).append(chain)
        for rule in view.rules:
            self.rules.setdefault((rule.family, rule.table, rule.chain), []).append(rule)
        for s in view.sets:
            self.sets[(s.family, s.table, s.name)] = s.elements
        for chains in self.base.values():
            chains.sort(key=lambda c: c.priority)
        return self


def netfilter_verdict(ruleset: Ruleset, hook: str, pkt: NfPacket, addr_of: Any) -> HookResult:
    """Run every base chain of the packet's family on ``hook`` in priority order
    (``nf_hook_slow``).

    ``addr_of(dev)`` gives a device's primary address of the packet's family, for
    ``masquerade``.
    """
    steps: list[KernelStep] = []
    skip = "ip" if pkt.v6 else "ip6"
    for chain in ruleset.base.get(hook, ()):
        if chain.family == skip:
            continue
        name = f"{chain.family} {chain.table} {chain.name}"
        if chain.type == "nat" and pkt.ct_state != "new":
            steps.append(
                KernelStep("netfilter", name, "nat chain: only a connection's first packet")
            )
            continue
        verdict, why = _run_base(ruleset, chain, pkt, addr_of, steps)
        if verdict != ACCEPT:
            return HookResult(hook, verdict, f"{name}: {why}", tuple(steps))
    return HookResult(hook, ACCEPT, "accepted", tuple(steps))


def _run_base(
    ruleset: Ruleset, chain: BaseChain, pkt: NfPacket, addr_of: Any, steps: list[KernelStep]
) -> tuple[str, str]:
    key = (chain.family, chain.table, chain.name)
    try:
        verdict, why = _run_chain(ruleset, key, pkt, addr_of, steps, 0)
    except _Unknown as exc:
        steps.append(KernelStep("netfilter", " ".join(key), f"unknown: {exc}"))
        return UNKNOWN, str(exc)
    if verdict in ("end", "return"):
        policy = chain.policy
        steps.append(KernelStep("netfilter", " ".join(key), f"policy {policy}"))
        return (DROP if policy == DROP else ACCEPT), f"policy {policy}"
    return (DROP if verdict in (DROP, "reject") else ACCEPT), why


def _run_chain(
    ruleset: Ruleset,
    key: tuple[str, str, str],
    pkt: NfPacket,
    addr_of: Any,
    steps: list[KernelStep],
    depth: int,
) -> tuple[str, str]:
    """Rules of one chain in order: (verdict, why); verdict "end" when it falls off."""
    if depth > _MAX_DEPTH:
        raise _Unknown(f"chain {key[2]}: jumps nested deeper than {_MAX_DEPTH}")
    for rule in ruleset.rules.get(key, ()):
        where = f"{key[0]} {key[1]} {key[2]} handle {rule.handle}"
        result = _run_rule(ruleset, rule, pkt, addr_of, where)
        if result is None:
            continue
        verdict, target = result
        steps.append(KernelStep("netfilter", where, f"matched: {verdict} {target or ''}".strip()))
        if verdict in ("jump", "goto"):
            sub, why = _run_chain(ruleset, (key[0], key[1], target), pkt, addr_of, steps, depth + 1)
            if sub not in ("end", "return"):
                return sub, why
            if verdict == "goto":
                return "end", why
            continue
        if verdict == "continue":
            continue
        return verdict, f"rule {where}"
    return "end", "end of chain"


def _run_rule(
    ruleset: Ruleset, rule: NftRule, pkt: NfPacket, addr_of: Any, where: str
) -> tuple[str, str] | None:
    """A rule's expressions left to right: None if a match fails or no verdict is reached."""
    for expr in rule.expr:
        (name, body), *_ = expr.items()
        try:
            if name == "match":
                if not _match(ruleset, body, pkt, rule):
                    return None
                continue
            outcome = _statement(name, body, pkt, addr_of)
        except _Unknown as exc:
            raise _Unknown(f"{where}: {exc} in {json.dumps(expr, sort_keys=True)}") from None
        if outcome is not None:
            return outcome
    return None


def _statement(name: str, body: Any, pkt: NfPacket, addr_of: Any) -> tuple[str, str] | None:
    if name in _NOOP_STATEMENTS:
        return None
    if name in ("accept", "drop", "reject", "return", "continue"):
        return name, ""
    if name in ("jump", "goto"):
        return name, str(body["target"])
    if name in ("masquerade", "snat", "dnat"):
        return _nat(name, body, pkt, addr_of)
    if name == "mangle" and body.get("key") == {"meta": {"key": "mark"}}:
        if not isinstance(body.get("value"), int):
            raise _Unknown("meta mark set to a non-constant")
        pkt.mark = body["value"]
        return None
    raise _Unknown(f"statement {name!r} not modelled")


def _nat(kind: str, body: Any, pkt: NfPacket, addr_of: Any) -> tuple[str, str]:
    """masquerade/snat rewrite the source (postrouting); dnat the destination (prerouting)."""
    body = body or {}
    if kind == "masquerade":
        addr = addr_of(pkt.oif) if pkt.oif else None
        if addr is None:
            raise _Unknown(f"masquerade: no IPv{6 if pkt.v6 else 4} address on {pkt.oif}")
    else:
        addr = body.get("addr")
        if not isinstance(addr, str):
            raise _Unknown(f"{kind} to a non-constant address")
        _v4(addr)  # an IPv4 hook rewrites to an IPv4 address, nothing else
    if kind == "dnat":
        pkt.dst = addr
        if isinstance(body.get("port"), int):
            pkt.dport = body["port"]
    else:
        pkt.src = addr
    pkt.nat.append((kind, addr))
    return ACCEPT, f"{kind} to {addr}"


def _match(ruleset: Ruleset, body: dict[str, Any], pkt: NfPacket, rule: NftRule) -> bool:
    value = _left(body["left"], pkt)
    if value is None:
        return False  # an implied dependency failed (tcp dport on a udp packet)
    elements = _elements(ruleset, body["right"], rule)
    op = body.get("op", "==")
    if op in ("==", "in"):
        return any(_element_matches(value, e) for e in elements)
    if op == "!=":
        return not any(_element_matches(value, e) for e in elements)
    if op in ("<", ">", "<=", ">=") and isinstance(value, int) and len(elements) == 1:
        other = elements[0]
        if isinstance(other, int):
            return bool({"<": value < other, ">": value > other, "<=": value <= other,
                         ">=": value >= other}[op])  # fmt: skip
    raise _Unknown(f"operator {op!r}")


def _left(left: Any, pkt: NfPacket) -> Any:
    """The packet field an expression names; None when its protocol is not the packet's."""
    if "meta" in left:
        return _meta(left["meta"]["key"], pkt)
    if "payload" in left:
        return _payload(left["payload"], pkt)
    if "ct" in left and left["ct"].get("key") == "state" and "dir" not in left["ct"]:
        return frozenset({pkt.ct_state})
    if "fib" in left:
        return _fib(left["fib"], pkt)
    raise _Unknown(f"expression {next(iter(left), '?')!r} not modelled")


def _meta(key: str, pkt: NfPacket) -> Any:
    values = {
        "iifname": pkt.iif,
        "oifname": pkt.oif,
        "iif": pkt.iif,
        "oif": pkt.oif,
        "l4proto": pkt.proto,
        "mark": pkt.mark,
        "nfproto": "ipv6" if pkt.v6 else "ipv4",
        "protocol": "ip6" if pkt.v6 else "ip",
    }
    if key not in values:
        raise _Unknown(f"meta {key} not modelled")
    return values[key]


def _fib(fib: dict[str, Any], pkt: NfPacket) -> Any:
    """``fib saddr . iif oif``: the interface the source is routed back out of, through
    the ingress device only; "missing" (false) when none. IPv6 only (IPv4 hosts use
    rp_filter); anything else is not modelled."""
    flags = sorted(fib.get("flags") or ())
    if not pkt.v6 or fib.get("result") not in ("oif", "oifname") or flags != ["iif", "saddr"]:
        raise _Unknown(f"fib {' . '.join(flags)} {fib.get('result')} not modelled")
    if pkt.fib_oif is None or pkt.iif is None:
        raise _Unknown("fib: no reverse lookup available for this packet")
    found = pkt.fib_oif(pkt)
    return found if found is not None else False


def _payload(payload: dict[str, Any], pkt: NfPacket) -> Any:
    proto, fieldname = payload.get("protocol"), payload.get("field")
    if proto in ("ip", "ip6") and (proto == "ip6") != pkt.v6:
        return None  # the implied `meta nfproto` dependency fails
    if fieldname in ("saddr", "daddr") and proto in ("ip", "ip6"):
        text = pkt.src if fieldname == "saddr" else pkt.dst
        return ("addr6", ip6_to_int(text)) if pkt.v6 else ("addr", ip_to_int(text))
    if (proto, fieldname) in (("ip", "protocol"), ("ip6", "nexthdr")):
        return pkt.proto
    if proto == "icmpv6" and fieldname == "type":
        return pkt.icmp_type if pkt.proto == ICMPV6 else None
    if proto in PROTO_NAMES and fieldname in ("sport", "dport"):
        if PROTO_NAMES[proto] != pkt.proto:
            return None
        return pkt.sport if fieldname == "sport" else pkt.dport
    raise _Unknown(f"payload {proto} {fieldname} not modelled")


def _elements(ruleset: Ruleset, right: Any, rule: NftRule) -> list[Any]:
    if isinstance(right, str) and right.startswith("@"):
        key = (rule.family, rule.table, right[1:])
        if key not in ruleset.sets:
            raise _Unknown(f"set {right} not found")
        return list(ruleset.sets[key])
    if isinstance(right, dict) and "set" in right:
        return list(right["set"])
    if isinstance(right, list):
        return list(right)
    return [right]


def _named_number_matches(value: int, elem: str) -> bool:
    """A number written by name in the ruleset: a protocol (``tcp``) or an ICMPv6 type."""
    if elem in PROTO_NAMES:
        return PROTO_NAMES[elem] == value
    if elem in ICMPV6_TYPES:
        return ICMPV6_TYPES[elem] == value
    raise _Unknown(f"value {elem!r} for a number")


def _element_matches(value: Any, elem: Any) -> bool:
    if isinstance(value, frozenset):  # ct state: a flag set
        return isinstance(elem, str) and elem in value
    if isinstance(value, tuple):  # ("addr", int) or ("addr6", int)
        return (
            _addr6_matches(value[1], elem) if value[0] == "addr6" else _addr_matches(value[1], elem)
        )
    if isinstance(value, bool) or isinstance(elem, bool):  # fib ... missing: false
        return value is elem or (elem is True and isinstance(value, str))
    if isinstance(elem, dict) and "range" in elem:
        low, high = elem["range"]
        if not (isinstance(low, int) and isinstance(high, int)):
            raise _Unknown(f"range {low!r}-{high!r} of a number")
        return isinstance(value, int) and low <= value <= high
    if isinstance(value, int) and isinstance(elem, str):
        return _named_number_matches(value, elem)
    if isinstance(value, str) and isinstance(elem, str):
        return _string_matches(value, elem)
    if isinstance(elem, dict):
        raise _Unknown(f"element {next(iter(elem))!r} not modelled")
    return bool(value == elem)


def _string_matches(value: str, elem: str) -> bool:
    """nft's string match as ``nft -j`` lists it: a trailing ``*`` is a prefix match
    (``"eth*"``), a trailing ``\\*`` a literal star; nothing else is a wildcard."""
    if elem.endswith("\\*"):
        return value == elem[:-2] + "*"
    if elem.endswith("*"):
        return value.startswith(elem[:-1])
    return value == elem


def _addr_matches(addr: int, elem: Any) -> bool:
    if isinstance(elem, str):
        return addr == _v4(elem)
    if isinstance(elem, dict) and "prefix" in elem:
        plen = elem["prefix"]["len"]
        if not (isinstance(plen, int) and 0 <= plen <= 32):
            raise _Unknown(f"prefix length {plen!r} for an IPv4 address")
        return (addr & MASKS[plen]) == (_v4(elem["prefix"]["addr"]) & MASKS[plen])
    if isinstance(elem, dict) and "range" in elem:
        low, high = elem["range"]
        return _v4(low) <= addr <= _v4(high)
    raise _Unknown(f"address element {elem!r} not modelled")


def _v4(value: Any) -> int:
    """An IPv4 element as a number; anything else (an IPv6 set element, a name) is a
    value this model cannot compare with an IPv4 packet."""
    if not isinstance(value, str):
        raise _Unknown(f"address {value!r} is no IPv4 address")
    try:
        return ip_to_int(value)
    except BadInputError:
        raise _Unknown(f"address {value!r} is no IPv4 address") from None


def _addr6_matches(addr: int, elem: Any) -> bool:
    if isinstance(elem, str):
        return ":" in elem and addr == ip6_to_int(elem)
    if isinstance(elem, dict) and "prefix" in elem:
        plen = int(elem["prefix"]["len"])
        net = elem["prefix"]["addr"]
        return ":" in net and (addr & MASKS6[plen]) == (ip6_to_int(net) & MASKS6[plen])
    if isinstance(elem, dict) and "range" in elem:
        low, high = elem["range"]
        return ip6_to_int(low) <= addr <= ip6_to_int(high)
    raise _Unknown(f"address element {elem!r} not modelled")
