"""Netfilter as nftables runs it: base chains of one hook, in priority order, over a packet.

The ruleset is ``nft -j list ruleset`` (libnftables-json(5)) as the Snapshot keeps it. Each
``ip``/``inet`` base chain on the hook runs in priority order (``nf_hook_slow``): a rule's
``match`` expressions are a conjunction; ``accept`` ends that chain (the next base chain
still runs), ``drop``/``reject`` end the hook; ``jump``/``goto``/``return``/``continue`` walk
regular chains; the chain's policy applies at its end. ``nat`` chains see only a
connection's first packet (conntrack), where ``masquerade``/``snat``/``dnat`` rewrite it.

Anything this model cannot evaluate (an expression it does not know, a verdict map, ``fib``,
``ct status``...) makes the verdict ``unknown`` naming the rule — never a silent guess.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any, Final

import msgspec

from meshpath.sim.addr import MASKS, ip_to_int
from meshpath.sim.values import TCP, UDP, Step
from meshpath.state.nft import BaseChain, NftRule, NftView, parse_ruleset

ACCEPT: Final = "accept"
DROP: Final = "drop"
UNKNOWN: Final = "unknown"
PROTO_NAMES: Final = {"tcp": TCP, "udp": UDP, "icmp": 1}
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


class HookResult(msgspec.Struct, frozen=True, gc=False):
    """The verdict of one hook: accept, drop (also reject) or unknown, with its steps."""

    hook: str
    verdict: str
    reason: str
    steps: tuple[Step, ...] = ()


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
            if chain.family in ("ip", "inet"):
                self.base.setdefault(chain.hook, []).append(chain)
        for rule in view.rules:
            self.rules.setdefault((rule.family, rule.table, rule.chain), []).append(rule)
        for s in view.sets:
            self.sets[(s.family, s.table, s.name)] = s.elements
        for chains in self.base.values():
            chains.sort(key=lambda c: c.priority)
        return self


def netfilter_verdict(ruleset: Ruleset, hook: str, pkt: NfPacket, addr_of: Any) -> HookResult:
    """Run every IPv4 base chain on ``hook`` in priority order (``nf_hook_slow``).

    ``addr_of(dev)`` gives a device's primary address, for ``masquerade``.
    """
    steps: list[Step] = []
    for chain in ruleset.base.get(hook, ()):
        name = f"{chain.family} {chain.table} {chain.name}"
        if chain.type == "nat" and pkt.ct_state != "new":
            steps.append(Step("netfilter", name, "nat chain: only a connection's first packet"))
            continue
        verdict, why = _run_base(ruleset, chain, pkt, addr_of, steps)
        if verdict != ACCEPT:
            return HookResult(hook, verdict, f"{name}: {why}", tuple(steps))
    return HookResult(hook, ACCEPT, "accepted", tuple(steps))


def _run_base(
    ruleset: Ruleset, chain: BaseChain, pkt: NfPacket, addr_of: Any, steps: list[Step]
) -> tuple[str, str]:
    key = (chain.family, chain.table, chain.name)
    try:
        verdict, why = _run_chain(ruleset, key, pkt, addr_of, steps, 0)
    except _Unknown as exc:
        steps.append(Step("netfilter", " ".join(key), f"unknown: {exc}"))
        return UNKNOWN, str(exc)
    if verdict in ("end", "return"):
        policy = chain.policy
        steps.append(Step("netfilter", " ".join(key), f"policy {policy}"))
        return (DROP if policy == DROP else ACCEPT), f"policy {policy}"
    return (DROP if verdict in (DROP, "reject") else ACCEPT), why


def _run_chain(
    ruleset: Ruleset,
    key: tuple[str, str, str],
    pkt: NfPacket,
    addr_of: Any,
    steps: list[Step],
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
        steps.append(Step("netfilter", where, f"matched: {verdict} {target or ''}".strip()))
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
            raise _Unknown(f"masquerade: no IPv4 address on {pkt.oif}")
    else:
        addr = body.get("addr")
        if not isinstance(addr, str):
            raise _Unknown(f"{kind} to a non-constant address")
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
    raise _Unknown(f"expression {next(iter(left), '?')!r} not modelled")


def _meta(key: str, pkt: NfPacket) -> Any:
    values = {
        "iifname": pkt.iif,
        "oifname": pkt.oif,
        "iif": pkt.iif,
        "oif": pkt.oif,
        "l4proto": pkt.proto,
        "mark": pkt.mark,
        "nfproto": "ipv4",
        "protocol": "ip",
    }
    if key not in values:
        raise _Unknown(f"meta {key} not modelled")
    return values[key]


def _payload(payload: dict[str, Any], pkt: NfPacket) -> Any:
    proto, fieldname = payload.get("protocol"), payload.get("field")
    if proto == "ip" and fieldname in ("saddr", "daddr"):
        return ("addr", ip_to_int(pkt.src if fieldname == "saddr" else pkt.dst))
    if proto == "ip" and fieldname == "protocol":
        return pkt.proto
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


def _element_matches(value: Any, elem: Any) -> bool:
    if isinstance(value, frozenset):  # ct state: a flag set
        return elem in value
    if isinstance(value, tuple):  # ("addr", int)
        return _addr_matches(value[1], elem)
    if isinstance(elem, dict) and "range" in elem:
        low, high = elem["range"]
        return isinstance(value, int) and int(low) <= value <= int(high)
    if isinstance(value, int) and isinstance(elem, str):
        if elem in PROTO_NAMES:
            return PROTO_NAMES[elem] == value
        raise _Unknown(f"value {elem!r} for a number")
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
        return addr == ip_to_int(elem)
    if isinstance(elem, dict) and "prefix" in elem:
        plen = int(elem["prefix"]["len"])
        return (addr & MASKS[plen]) == (ip_to_int(elem["prefix"]["addr"]) & MASKS[plen])
    if isinstance(elem, dict) and "range" in elem:
        low, high = elem["range"]
        return ip_to_int(low) <= addr <= ip_to_int(high)
    raise _Unknown(f"address element {elem!r} not modelled")
