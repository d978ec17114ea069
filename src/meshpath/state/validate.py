"""A loaded snapshot's meaning, checked once (the codec's decoder checks its types).

After :func:`check_snapshot` every consumer (simulator, checks, fix planner, renderers,
trace naming) reads a Snapshot without checking again:

* addresses and prefixes parse and belong to their entry's family, prefix lengths are in
  range; device names are names the kernel accepts (``dev_valid_name``);
* numbers lie in the kernel's ranges (ifindex > 0, u32 tables/metrics/marks, u8
  protocols/scopes/TOS, ports 0..65535 with start <= end);
* a rule's ``goto`` points forward, as the kernel insists (``fib_nl2rule``: "Backward
  goto not supported"); a backward or self goto would make the rule walk loop forever;
* the raw JSON kept from ``nft -j`` and FRR has the shapes their readers index into
  (objects where they look keys up, lists where they iterate, strings and numbers where
  they compare); the *values* inside nft expressions stay the simulator's business (an
  expression it cannot evaluate is named in the hop as "unknown").

The first problem found raises SnapshotError naming the field (``$.routes[3].dst``) in the
codec's style. A collected snapshot always passes: every rule here is one the kernel,
nft or FRR already enforce.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Callable, Mapping, Sequence
from functools import lru_cache
from typing import Any, Final

from meshpath.errors import BadInputError, SnapshotError
from meshpath.state.model import (
    ROUTE_TYPES,
    RULE_ACTIONS,
    Address,
    FrrState,
    Link,
    Nexthop,
    NftState,
    PortRange,
    Route,
    Rule,
    Snapshot,
)
from meshpath.values import parse_asn

U8: Final = 0xFF
U16: Final = 0xFFFF
U32: Final = 0xFFFFFFFF
S32_MAX: Final = 0x7FFFFFFF
ASN_MAX: Final = U32
IFNAMSIZ: Final = 16
MAX_PREFIXLEN: Final = {4: 32, 6: 128}
_OCTETS: Final = frozenset(str(i) for i in range(256))
_PLENS4: Final = frozenset(str(i) for i in range(33))
_PLENS: Final = {4: _PLENS4, 6: frozenset(str(i) for i in range(129))}
# dev_valid_name (net/core/dev.c): no '/', ':' or whitespace anywhere in the name.
_BAD_NAME_CHARS: Final = frozenset("/: \t\n\v\f\r\0")


class Problem(Exception):
    """One meaningless value: ``where`` is its path below ``$``, ``what`` the complaint."""

    def __init__(self, where: str, what: str) -> None:
        super().__init__(f"{what} - field `${where}`")
        self.where = where
        self.what = what


def check_snapshot(snap: Snapshot, source: str = "snapshot") -> Snapshot:
    """``snap`` itself when every value means something; else SnapshotError naming it."""
    try:
        _check_links(snap.links)
        _each(snap.addresses, ".addresses", _check_address)
        _each(snap.routes, ".routes", _check_route)
        _each(snap.rules, ".rules", _check_rule)
        _check_sysctl_keys(snap)
        _check_nft(snap.nft)
        _check_frr(snap.frr)
    except Problem as exc:
        raise SnapshotError(f"{source}: {exc}") from None
    return snap


def check_rule_goto(rule: Rule) -> str | None:
    """What the kernel says of this rule's goto (``fib_nl2rule``), None when it is fine."""
    if rule.goto is not None and rule.action != "goto":
        return f"goto {rule.goto} on a rule whose action is {rule.action!r}"
    if rule.action == "goto" and rule.goto is None:
        return "action goto without a goto target"
    if rule.goto is not None and rule.goto <= rule.priority:
        return (
            f"goto {rule.goto} from priority {rule.priority}: the kernel refuses a backward "
            "or self goto (it would loop forever)"
        )
    return None


# -- the typed parts ----------------------------------------------------------------------
def _each(items: Sequence[Any], where: str, check: Callable[[Any], None]) -> None:
    for i, item in enumerate(items):
        try:
            check(item)
        except Problem as exc:
            raise Problem(f"{where}[{i}]{exc.where}", exc.what) from None


def _check_links(links: Sequence[Link]) -> None:
    def check(link: Link) -> None:
        _int(link.index, ".index", 1, S32_MAX)
        _name(link.name, ".name")
        _optional_name(link.master, ".master")
        _int(link.mtu, ".mtu", 0, U32)
        _int(link.group, ".group", 0, U32)

    _each(links, ".links", check)


def _check_address(addr: Address) -> None:
    _name(addr.dev, ".dev")
    _family(addr.family)
    _ip(addr.local, addr.family, ".local")
    _int(addr.prefixlen, ".prefixlen", 0, MAX_PREFIXLEN[addr.family])
    _int(addr.scope, ".scope", 0, U8)
    if addr.peer is not None:
        _ip(addr.peer, addr.family, ".peer")


def _check_route(route: Route) -> None:
    # The hot loop of a million-route snapshot: the common case in one expression, the
    # precise complaint only when it fails.
    if not (
        0 <= route.table <= U32 and 0 <= route.metric <= U32 and route.family in MAX_PREFIXLEN
        and 0 <= route.protocol <= U8 and 0 <= route.scope <= U8 and 0 <= route.tos <= U8
        and route.type in ROUTE_TYPES
    ):  # fmt: skip
        _route_numbers(route)
    if route.family != 4 or not _plain_v4_prefix(route.dst):
        _cidr(route.dst, route.family, ".dst")
    if route.gateway is not None and not _valid_ip(route.gateway):
        raise Problem(".gateway", f"{route.gateway!r} is not an IP address")  # v4 or v6
    if route.dev is not None and not _valid_name(route.dev):
        _name(route.dev, ".dev")
    if route.prefsrc is not None:
        _ip(route.prefsrc, route.family, ".prefsrc")
    if route.nexthops:
        _each(route.nexthops, ".nexthops", _check_nexthop)
    if route.mtu is not None:
        _int(route.mtu, ".mtu", 0, U32)


def _route_numbers(route: Route) -> None:
    _int(route.table, ".table", 0, U32)
    _family(route.family)
    if route.type not in ROUTE_TYPES:
        raise Problem(".type", f"route type {route.type!r} is none of {sorted(ROUTE_TYPES)}")
    for key, high in (("metric", U32), ("protocol", U8), ("scope", U8), ("tos", U8)):
        _int(getattr(route, key), f".{key}", 0, high)


def _check_nexthop(nh: Nexthop) -> None:
    if nh.gateway is not None and not _valid_ip(nh.gateway):
        raise Problem(".gateway", f"{nh.gateway!r} is not an IP address")
    _optional_name(nh.dev, ".dev")
    _int(nh.weight, ".weight", 1, 256)


def _check_rule(rule: Rule) -> None:
    _family(rule.family)
    _int(rule.priority, ".priority", 0, U32)
    if rule.action not in RULE_ACTIONS:
        raise Problem(".action", f"rule action {rule.action!r} is none of {sorted(RULE_ACTIONS)}")
    for key in ("table", "goto", "fwmark", "fwmask", "suppress_ifgroup"):
        value = getattr(rule, key)
        if value is not None:
            _int(value, f".{key}", 0, U32)
    bad_goto = check_rule_goto(rule)
    if bad_goto is not None:
        raise Problem(".goto", bad_goto)
    for key in ("src", "dst"):
        value = getattr(rule, key)
        if value is not None:
            _cidr(value, rule.family, f".{key}")
    _optional_name(rule.iif, ".iif")
    _optional_name(rule.oif, ".oif")
    _int(rule.tos, ".tos", 0, U8)
    _int(rule.protocol, ".protocol", 0, U8)
    if rule.ipproto is not None:
        _int(rule.ipproto, ".ipproto", 0, U8)
    if rule.suppress_prefixlength is not None:
        _int(rule.suppress_prefixlength, ".suppress_prefixlength", 0, S32_MAX)
    for key, top in (("sport", U16), ("dport", U16), ("uidrange", U32)):
        _range(getattr(rule, key), f".{key}", top)


def _range(rng: PortRange | None, where: str, top: int) -> None:
    if rng is None:
        return
    _int(rng.start, f"{where}.start", 0, top)
    _int(rng.end, f"{where}.end", rng.start, top)


def _check_sysctl_keys(snap: Snapshot) -> None:
    for family, confs in (("ipv4", snap.sysctls.ipv4), ("ipv6", snap.sysctls.ipv6)):
        for key in confs:
            if key not in ("all", "default"):
                _name(key, f".sysctls.{family}[{key!r}]")


# -- values -------------------------------------------------------------------------------
def _int(value: int, where: str, low: int, high: int) -> None:
    if not low <= value <= high:
        raise Problem(where, f"{value} is out of range ({low}..{high})")


def _family(family: int) -> None:
    if family not in MAX_PREFIXLEN:
        raise Problem(".family", f"address family {family} is neither 4 nor 6")


def _name(name: str, where: str) -> None:
    if not _valid_name(name):
        raise Problem(where, f"{name!r} is not an interface name the kernel accepts")


@lru_cache(maxsize=1024)
def _valid_name(name: str) -> bool:
    """``dev_valid_name``: 1..15 bytes, not ``.``/``..``, no '/', ':' or whitespace."""
    return (
        bool(name)
        and len(name.encode("utf-8", "surrogateescape")) < IFNAMSIZ
        and name not in (".", "..")
        and _BAD_NAME_CHARS.isdisjoint(name)
    )


def _optional_name(name: str | None, where: str) -> None:
    if name is not None:
        _name(name, where)


def _is_v4(text: str) -> bool:
    parts = text.split(".")
    return len(parts) == 4 and _OCTETS.issuperset(parts)


def _is_v6(text: str) -> bool:
    if ":" not in text or "%" in text or "/" in text:
        return False
    try:
        ipaddress.IPv6Address(text)
    except ValueError:
        return False
    return True


@lru_cache(maxsize=1024)
def _valid_ip(text: str) -> bool:
    """Either family (gateways repeat: cached)."""
    return _is_v4(text) or _is_v6(text)


def _ip(text: str, family: int, where: str) -> None:
    if not (_is_v4(text) if family == 4 else _is_v6(text)):
        raise Problem(where, f"{text!r} is not an IPv{family} address")


def _plain_v4_prefix(text: str) -> bool:
    """``a.b.c.d/n``, in one function (the hot path); :func:`_cidr` says what is wrong."""
    addr, slash, plen = text.partition("/")
    parts = addr.split(".")
    return len(parts) == 4 and _OCTETS.issuperset(parts) and (not slash or plen in _PLENS4)


def _cidr(text: str, family: int, where: str) -> None:
    """``ADDRESS/LEN`` (or a bare address) of ``family``, LEN in 0..32 or 0..128."""
    addr, slash, plen = text.partition("/")
    if slash and plen not in _PLENS[family]:
        raise Problem(where, f"{text!r}: the prefix length is not 0..{MAX_PREFIXLEN[family]}")
    _ip(addr, family, where)


# -- raw JSON kept from nft and FRR ---------------------------------------------------------
def _check_nft(nft: NftState) -> None:
    if nft.ruleset is None:
        return
    items = _list(nft.ruleset.get("nftables", []), ".nft.ruleset.nftables")
    for i, item in enumerate(items):
        where = f".nft.ruleset.nftables[{i}]"
        for kind, body in _obj(item, where).items():
            if kind in _NFT_OBJECTS:
                _NFT_OBJECTS[kind](_obj(body, f"{where}.{kind}"), f"{where}.{kind}")


def _nft_named(body: Mapping[str, Any], where: str, keys: tuple[str, ...]) -> None:
    for key in keys:
        _str(body.get(key), f"{where}.{key}")


def _nft_table(body: Mapping[str, Any], where: str) -> None:
    _nft_named(body, where, ("family", "name"))


def _nft_chain(body: Mapping[str, Any], where: str) -> None:
    _nft_named(body, where, ("family", "table", "name"))
    for key in ("hook", "type", "policy"):
        if key in body:
            _str(body[key], f"{where}.{key}")
    if "prio" in body and not isinstance(body["prio"], int | str):
        raise Problem(f"{where}.prio", "a chain priority is a number or a name")


def _nft_set(body: Mapping[str, Any], where: str) -> None:
    _nft_named(body, where, ("family", "table", "name"))
    for k, elem in enumerate(_list(body.get("elem", []), f"{where}.elem")):
        at = f"{where}.elem[{k}]"
        if isinstance(elem, Mapping) and "elem" in elem:  # {"elem": {"val": ..., "timeout"...}}
            inner = _obj(elem["elem"], f"{at}.elem")
            if "val" not in inner:
                raise Problem(f"{at}.elem", "a set element object has a 'val'")
            _nft_value(inner["val"], f"{at}.elem.val")
        else:
            _nft_value(elem, at)


def _nft_rule(body: Mapping[str, Any], where: str) -> None:
    _nft_named(body, where, ("family", "table", "chain"))
    if "handle" in body and not _is_int(body["handle"]):
        raise Problem(f"{where}.handle", "a rule handle is a number")
    exprs = _list(body.get("expr", []), f"{where}.expr")
    for j, expr in enumerate(exprs):
        at = f"{where}.expr[{j}]"
        statement = _obj(expr, at)
        if not statement:
            raise Problem(at, "an expression names its kind (an object with one key)")
        for name, value in statement.items():
            _nft_statement(name, value, f"{at}.{name}")


def _nft_statement(name: str, body: Any, where: str) -> None:
    """The statements the simulator and the checks open: their bodies' shapes."""
    if name == "match":
        match = _obj(body, where)
        if "left" not in match or "right" not in match:
            raise Problem(where, "a match has a 'left' and a 'right'")
        family = _nft_left(match["left"], f"{where}.left")
        if "op" in match:
            _str(match["op"], f"{where}.op")
        _nft_right(match["right"], f"{where}.right", family)
    elif name in ("jump", "goto"):
        _str(_obj(body, where).get("target"), f"{where}.target")
    elif name == "mangle" or (name in ("snat", "dnat", "masquerade") and body is not None):
        _obj(body, where)


_ADDRESS_PAYLOADS: Final = {"ip": 4, "ip6": 6}


def _nft_left(left: Any, where: str) -> int | None:
    """Check a match's left side; the address family when it is ``ip[6] saddr/daddr``."""
    for key, inner in _obj(left, where).items():
        if key in ("meta", "payload", "ct"):
            for field, value in _obj(inner, f"{where}.{key}").items():
                if field in ("key", "protocol", "field", "dir"):
                    _str(value, f"{where}.{key}.{field}")
        if key == "meta":
            _str(inner.get("key"), f"{where}.meta.key")
    payload = left.get("payload")
    if isinstance(payload, Mapping) and payload.get("field") in ("saddr", "daddr"):
        return _ADDRESS_PAYLOADS.get(payload.get("protocol", ""))
    return None


def _nft_right(right: Any, where: str, family: int | None) -> None:
    """The right side: one value, an anonymous ``{"set": [...]}``/list, or ``@set``."""
    if isinstance(right, str) and right.startswith("@"):
        return
    if isinstance(right, Mapping) and "set" in right:
        items, where = _list(right["set"], f"{where}.set"), f"{where}.set"
    elif isinstance(right, list):
        items = right
    else:
        _nft_value(right, where, family)
        return
    for k, elem in enumerate(items):
        _nft_value(elem, f"{where}[{k}]", family)


def _nft_value(value: Any, where: str, family: int | None = None) -> None:
    """One element: a value, a prefix ``{"addr": str, "len": n}`` or a range
    ``[low, high]``; compared with an address (``family``), each is one of that family."""
    if isinstance(value, Mapping) and "prefix" in value:
        prefix = _obj(value["prefix"], f"{where}.prefix")
        addr = _str(prefix.get("addr"), f"{where}.prefix.addr")
        length = prefix.get("len")
        if not (isinstance(length, int) and 0 <= length <= MAX_PREFIXLEN[family or 6]):
            raise Problem(f"{where}.prefix.len", f"{length!r} is no prefix length")
        if family is not None:
            _ip(addr, family, f"{where}.prefix.addr")
    elif isinstance(value, Mapping) and "range" in value:
        bounds = _list(value["range"], f"{where}.range")
        if len(bounds) != 2:
            raise Problem(f"{where}.range", "a range has two ends")
        for end, bound in zip(("low", "high"), bounds, strict=True):
            if family is not None:
                _ip(_str(bound, f"{where}.range.{end}"), family, f"{where}.range.{end}")
    elif family is not None:
        _ip(_str(value, where), family, where)  # nft -j prints one address as a string


_NFT_OBJECTS: Final[dict[str, Callable[[Mapping[str, Any], str], None]]] = {
    "table": _nft_table,
    "chain": _nft_chain,
    "set": _nft_set,
    "map": _nft_set,
    "rule": _nft_rule,
}


def _check_frr(frr: FrrState) -> None:
    if frr.ip_route is not None:
        _frr_ip_route(frr.ip_route)
    if frr.ipv6_route is not None:
        _frr_ip_route(frr.ipv6_route, "ipv6_route")
    if frr.bgp_summary is not None:
        _frr_summary(frr.bgp_summary)
    if frr.bgp_advertised is not None:
        _frr_advertised(frr.bgp_advertised)
    if frr.bgp_advertised6 is not None:
        _frr_advertised(frr.bgp_advertised6, "bgp_advertised6")
    for peer, info in (frr.bgp_neighbors or {}).items():
        _obj(info, f".frr.bgp_neighbors[{peer!r}]")
    if frr.running_config is not None:
        _frr_running(frr.running_config)


def _frr_ip_route(table: Mapping[str, Any], field: str = "ip_route") -> None:
    """``show ip[v6] route json``: prefix -> [route entry {"protocol", "nexthops": [...]}]."""
    for prefix, entries in table.items():
        where = f".frr.{field}[{prefix!r}]"
        for j, entry in enumerate(_list(entries, where)):
            at = f"{where}[{j}]"
            hops = _obj(entry, at).get("nexthops", [])
            for k, hop in enumerate(_list(hops, f"{at}.nexthops")):
                _obj(hop, f"{at}.nexthops[{k}]")


def _frr_advertised(advertised: Mapping[str, Any], name: str = "bgp_advertised") -> None:
    """peer -> ``show ... neighbors PEER advertised-routes json`` (or None)."""
    for peer, data in advertised.items():
        where = f".frr.{name}[{peer!r}]"
        if data is None:
            continue
        routes = _obj(data, where).get("advertisedRoutes")
        if routes is not None:
            for prefix in _obj(routes, f"{where}.advertisedRoutes"):
                _any_cidr(prefix, f"{where}.advertisedRoutes[{prefix!r}]")


def _frr_summary(summary: Mapping[str, Any]) -> None:
    """``show bgp summary json``: {"ipv4Unicast": {"peers": {peer: {...}}}}."""
    if "ipv4Unicast" not in summary:
        return
    unicast = _obj(summary["ipv4Unicast"], ".frr.bgp_summary.ipv4Unicast")
    if "peers" not in unicast:
        return
    for peer, info in _obj(unicast["peers"], ".frr.bgp_summary.ipv4Unicast.peers").items():
        _obj(info, f".frr.bgp_summary.ipv4Unicast.peers[{peer!r}]")


def _frr_running(config: str) -> None:
    """FRR prints ``router bgp ASN`` with the AS number in asplain (``65537``), or in asdot
    (``1.1``) under ``bgp asnotation dot``: both are read (values.parse_asn), nothing else."""
    for n, line in enumerate(config.splitlines(), start=1):
        parts = line.split()
        if parts[:2] == ["router", "bgp"] and len(parts) >= 3:
            asn = parts[2]
            try:
                parse_asn(asn)
            except BadInputError:
                raise Problem(
                    f".frr.running_config (line {n})", f"{asn[:20]!r} is not an AS number"
                ) from None


def _any_cidr(text: str, where: str) -> None:
    _cidr(text, 6 if ":" in text else 4, where)


def _obj(value: Any, where: str) -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        raise Problem(where, f"expected an object, got {_kind(value)}")
    return value


def _list(value: Any, where: str) -> list[Any]:
    if not isinstance(value, list):
        raise Problem(where, f"expected an array, got {_kind(value)}")
    return value


def _str(value: Any, where: str) -> str:
    if not isinstance(value, str):
        raise Problem(where, f"expected a string, got {_kind(value)}")
    return value


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _kind(value: Any) -> str:
    names = {dict: "an object", list: "an array", str: "a string", bool: "a boolean"}
    if value is None:
        return "null"
    return names.get(type(value), "a number")
