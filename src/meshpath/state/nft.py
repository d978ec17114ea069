"""nftables as typed values: the one walk over ``nft -j list ruleset`` (libnftables-json(5)).

:mod:`meshpath.collect.nft` turns nft's text into JSON; :func:`parse_ruleset` turns that JSON
into tables, chains, rules, sets and meshpath's own masquerades. A snapshot keeps the JSON
as evidence (and to restore a table exactly); every reader uses the typed view
(``snapshot.nft.view``), which is derived from it once per value, so a snapshot saved by any
meshpath version reads the same way.

Rule expressions stay libnftables-json values (``{"match": {...}}``): they are the language
the simulator interprets, one expression at a time.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any, Final

from meshpath.errors import BadInputError
from meshpath.state.base import Frozen
from meshpath.values import parse_ifname

# meshpath's own table: the only one a fix writes (WARP's inet cloudflare-warp is never named).
TABLE_FAMILY: Final = "inet"
TABLE_NAME: Final = "meshpath"
CHAIN_NAME: Final = "postrouting"

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


class BaseChain(Frozen, frozen=True):
    """An nftables base chain: where netfilter hooks meshpath's packets."""

    family: str  # ip, ip6, inet, bridge, arp, netdev
    table: str
    name: str
    type: str  # filter, nat, route
    hook: str  # prerouting, input, forward, output, postrouting, ingress
    priority: int
    policy: str = "accept"
    device: str | None = None


@dataclass(frozen=True, slots=True)
class NftTable:
    family: str
    name: str
    handle: int | None = None


@dataclass(frozen=True, slots=True)
class NftChain:
    """A chain; ``base`` says where it hooks, None for a regular chain (reached by jumps)."""

    family: str
    table: str
    name: str
    handle: int | None = None
    base: BaseChain | None = None


@dataclass(frozen=True, slots=True)
class NftSet:
    """A named set; ``elements`` are its values with ``{"elem": {"val": ...}}`` unwrapped."""

    family: str
    table: str
    name: str
    elements: tuple[Any, ...] = ()


@dataclass(frozen=True, slots=True)
class NftRule:
    family: str
    table: str
    chain: str
    handle: int | None
    expr: tuple[Mapping[str, Any], ...]

    @property
    def where(self) -> str:
        return f"{self.family} {self.table} {self.chain} handle {self.handle}"

    def verdict(self) -> str | None:
        """The rule's final statement keyword (accept, drop, masquerade, snat, ...)."""
        for stmt in reversed(self.expr):
            for key in ("accept", "drop", "reject", "masquerade", "snat", "dnat", "jump", "goto"):
                if key in stmt:
                    return key
        return None

    def matches(self) -> Iterator[tuple[str, str, Any]]:
        """(left-key, op, right) for each `match` expression, left flattened to text."""
        for stmt in self.expr:
            match = stmt.get("match")
            if isinstance(match, Mapping):
                yield _left_key(match.get("left")), str(match.get("op", "==")), match.get("right")

    def prefix_of(self, field: str) -> Network | None:
        """The network an `ip saddr`/`ip daddr` (== only) match covers, if any."""
        for left, op, right in self.matches():
            if left.endswith(f" {field}") and op in ("==", "in"):
                net = _network(right)
                if net is not None:
                    return net
        return None

    def text(self) -> str:
        """A readable approximation of the rule, for evidence lines."""
        parts = [_stmt_text(stmt) for stmt in self.expr]
        return " ".join(p for p in parts if p)


@dataclass(frozen=True, slots=True, order=True)
class Masquerade:
    """One masquerade rule in meshpath's table: packets from ``source`` leaving ``oifname``."""

    oifname: str
    source: str  # CIDR, v4 or v6

    @property
    def family(self) -> str:
        return "ip6" if ipaddress.ip_network(self.source).version == 6 else "ip"


@dataclass(frozen=True, slots=True)
class NftView:
    """A ruleset's typed parts, in the order nft listed them."""

    tables: tuple[NftTable, ...] = ()
    chains: tuple[NftChain, ...] = ()
    rules: tuple[NftRule, ...] = ()
    sets: tuple[NftSet, ...] = ()
    # meshpath's masquerades as nft lists them; None when its table does not exist
    masquerades: frozenset[Masquerade] | None = None
    # the items of meshpath's own table, raw: what restoring it exactly needs
    own_items: tuple[Mapping[str, Any], ...] = ()

    @property
    def base_chains(self) -> tuple[BaseChain, ...]:
        return tuple(c.base for c in self.chains if c.base is not None)

    def has_table(self, family: str, name: str) -> bool:
        return any(t.family == family and t.name == name for t in self.tables)

    def rules_of(self, family: str, table: str, chain: str) -> Iterator[NftRule]:
        return (r for r in self.rules if (r.family, r.table, r.chain) == (family, table, chain))


def parse_ruleset(ruleset: Mapping[str, Any] | None) -> NftView:
    """The typed view of an ``nft -j list ruleset`` document (None or junk: empty)."""
    listed = (ruleset or {}).get("nftables")
    items = [i for i in listed if isinstance(i, Mapping)] if isinstance(listed, list) else []
    parts: dict[str, list[Any]] = {"table": [], "chain": [], "rule": [], "set": [], "own": []}
    masquerades: set[Masquerade] = set()
    for item in items:
        kind, body = _kind(item)
        if kind is not None and kind in _PARTS:
            parts[kind].append(_PARTS[kind](body))
        if _owned(kind, body):
            parts["own"].append(item)
            if kind == "rule":
                masquerades.add(_masquerade(body))
    tables = tuple(parts["table"])
    own = any(t.family == TABLE_FAMILY and t.name == TABLE_NAME for t in tables)
    return NftView(
        tables=tables,
        chains=tuple(parts["chain"]),
        rules=tuple(parts["rule"]),
        sets=tuple(parts["set"]),
        masquerades=frozenset(masquerades) if own else None,
        own_items=tuple(parts["own"]),
    )


def masquerades_in(ruleset: Mapping[str, Any] | None) -> frozenset[Masquerade] | None:
    """meshpath's masquerade rules in an ``nft -j list ruleset`` document; None: no table."""
    return parse_ruleset(ruleset).masquerades


def replace_own_table(
    ruleset: Mapping[str, Any] | None, items: list[dict[str, Any]]
) -> dict[str, Any]:
    """``ruleset`` with meshpath's table replaced by ``items`` (none: the table removed),
    as ``nft -j list ruleset`` would list it afterwards."""
    listed = (ruleset or {}).get("nftables")
    kept = [
        item
        for item in (listed if isinstance(listed, list) else [])
        if not (isinstance(item, Mapping) and _owned(*_kind(item)))
    ]
    return {"nftables": kept + items}


def _kind(item: Mapping[str, Any]) -> tuple[str | None, Mapping[str, Any]]:
    for kind in ("table", "chain", "rule", "set", "map"):
        body = item.get(kind)
        if isinstance(body, Mapping):
            return kind, body
    return None, {}


def _s(body: Mapping[str, Any], key: str) -> str:
    return str(body.get(key, ""))


def _owned(kind: str | None, body: Mapping[str, Any]) -> bool:
    if kind is None:
        return False
    name = body.get("name") if kind == "table" else body.get("table")
    return bool(body.get("family") == TABLE_FAMILY and name == TABLE_NAME)


def _table(body: Mapping[str, Any]) -> NftTable:
    return NftTable(_s(body, "family"), _s(body, "name"), body.get("handle"))


def _chain(body: Mapping[str, Any]) -> NftChain:
    return NftChain(
        _s(body, "family"), _s(body, "table"), _s(body, "name"), body.get("handle"),
        base_chain(body),
    )  # fmt: skip


def _rule(body: Mapping[str, Any]) -> NftRule:
    expr = body.get("expr")
    return NftRule(
        family=_s(body, "family"),
        table=_s(body, "table"),
        chain=_s(body, "chain"),
        handle=body.get("handle"),
        expr=tuple(e for e in expr if isinstance(e, Mapping)) if isinstance(expr, list) else (),
    )


def _set(body: Mapping[str, Any]) -> NftSet:
    elem = body.get("elem", ())
    values = elem if isinstance(elem, list) else [elem]
    unwrapped = tuple(
        e["elem"]["val"] if isinstance(e, Mapping) and isinstance(e.get("elem"), Mapping) else e
        for e in values
    )
    return NftSet(_s(body, "family"), _s(body, "table"), _s(body, "name"), unwrapped)


_PARTS: Final = {"table": _table, "chain": _chain, "rule": _rule, "set": _set}


def base_chain(chain: Any) -> BaseChain | None:
    """A BaseChain from one ``{"chain": {...}}`` body; None for a regular chain."""
    if not isinstance(chain, Mapping) or "hook" not in chain:
        return None
    return BaseChain(
        family=_s(chain, "family"),
        table=_s(chain, "table"),
        name=_s(chain, "name"),
        type=str(chain.get("type", "filter")),
        hook=str(chain["hook"]),
        priority=_priority(chain.get("prio", 0)),
        policy=str(chain.get("policy", "accept")),
        device=_device(chain.get("dev")),
    )


# nft -j prints prio as a number; be lenient with a name or {"...": n} from other versions.
_NAMED_PRIORITIES = {"raw": -300, "mangle": -150, "dstnat": -100, "filter": 0, "security": 50,
                     "srcnat": 100}  # fmt: skip


def _priority(value: Any) -> int:
    if isinstance(value, int):
        return value
    if isinstance(value, str):
        return _NAMED_PRIORITIES.get(value, 0)
    return 0


def _device(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, list):
        return ",".join(str(v) for v in value)
    return str(value)


# -- rule expressions as text -------------------------------------------------------------
def _left_key(left: Any) -> str:
    if isinstance(left, Mapping):
        for kind in ("meta", "payload", "ct"):
            inner = left.get(kind)
            if isinstance(inner, Mapping):
                proto = inner.get("protocol")
                key = inner.get("key") or inner.get("field")
                return f"{kind} {proto} {key}" if proto else f"{kind} {key}"
    return str(left)


def _network(right: Any) -> Network | None:
    try:
        if isinstance(right, Mapping) and isinstance(right.get("prefix"), Mapping):
            pre = right["prefix"]
            return ipaddress.ip_network(f"{pre['addr']}/{pre['len']}", strict=False)
        if isinstance(right, str):
            return ipaddress.ip_network(right, strict=False)
    except (KeyError, ValueError):
        return None
    return None


def _stmt_text(stmt: Mapping[str, Any]) -> str:
    match = stmt.get("match")
    if isinstance(match, Mapping):
        right = match.get("right")
        net = _network(right)
        value = str(net) if net is not None else str(right)
        op = match.get("op", "==")
        op_text = "" if op in ("==", "in") else f"{op} "
        return f"{_left_key(match.get('left')).split(' ', 1)[-1]} {op_text}{value}"
    if "counter" in stmt:
        return ""
    return next(iter(stmt), "")


# -- meshpath's masquerades, exactly as nft lists what render/nft.py wrote ------------------
def nft_ifname(name: str, what: str = "interface") -> str:
    """``name`` as the body of an nft quoted string matching exactly that interface.

    It is also how ``nft -j list`` shows the name back. nft's scanner reads a quoted string
    as ``"[^"]*"``, without escapes, so a name with '"' cannot be written at all. A
    trailing '*' makes the string a prefix wildcard (``"eth*"``); ``\\*`` at the end is a
    literal star, but then nft drops every backslash in the string (``xstrunescape``),
    so a name ending in '*' must hold no other backslash. Elsewhere backslashes and every
    other character the kernel allows are taken literally (checked with ``nft -c`` and
    the kernel's own comparison in tests/lab/test_hostile_names.py).
    """
    ifname = parse_ifname(name, what)
    if '"' in ifname:
        raise BadInputError(
            f"{what} {name!r}: nft cannot quote '\"' in an interface name; rename the interface"
        )
    if not ifname.endswith("*"):
        return ifname
    if "\\" in ifname:
        raise BadInputError(
            f"{what} {name!r}: nft cannot match a name ending in '*' that also holds '\\'; "
            "rename the interface"
        )
    return ifname[:-1] + "\\*"


def rule_expr(rule: Masquerade) -> list[dict[str, Any]]:
    """The rule's expressions exactly as ``nft -j list ruleset`` shows what
    :func:`meshpath.render.nft.render_nat_table` wrote (nft 1.0: a full-length prefix is
    a plain address)."""
    net = ipaddress.ip_network(rule.source)
    saddr: Any = str(net.network_address)
    if net.prefixlen != net.max_prefixlen:
        saddr = {"prefix": {"addr": saddr, "len": net.prefixlen}}
    return [
        {"match": {"op": "==", "left": {"meta": {"key": "oifname"}},
                   "right": nft_ifname(rule.oifname)}},
        {"match": {"op": "==", "left": {"payload": {"protocol": rule.family, "field": "saddr"}},
                   "right": saddr}},
        {"masquerade": None},
    ]  # fmt: skip


def _masquerade(rule: Mapping[str, Any]) -> Masquerade:
    """A rule counts only when its expressions are exactly those :func:`rule_expr` expects
    for the interface and source it names: a wildcard name, an extra statement or a missing
    masquerade make it ``Masquerade("?", "unrecognised:HANDLE")``, so the set differs from
    any desired one (the plan rewrites the table, verify fails)."""
    parsed = _parse_masquerade(rule.get("expr"))
    return parsed if parsed else Masquerade("?", f"unrecognised:{rule.get('handle')}")


def _parse_masquerade(expr: Any) -> Masquerade | None:
    """The one Masquerade whose exact expressions ``expr`` are, if any."""
    if not isinstance(expr, list) or len(expr) != 3:
        return None
    try:
        oif = _literal_ifname(expr[0]["match"]["right"])
        src = _prefix(expr[1]["match"]["right"])
        if oif is None or src is None:
            return None
        candidate = Masquerade(oif, src)
        return candidate if rule_expr(candidate) == expr else None
    except (KeyError, TypeError, ValueError, BadInputError):
        return None


def _literal_ifname(right: Any) -> str | None:
    """The interface an nft ``oifname`` string matches exactly; None for a wildcard."""
    if not isinstance(right, str):
        return None
    if right.endswith("\\*"):
        return right[:-2] + "*"
    return None if right.endswith("*") else right


def _prefix(right: Any) -> str | None:
    if isinstance(right, Mapping) and "prefix" in right:
        p = right["prefix"]
        return str(ipaddress.ip_network(f"{p['addr']}/{p['len']}"))
    if isinstance(right, str):
        return str(ipaddress.ip_network(right))
    return None
