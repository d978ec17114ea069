"""nftables text for meshpath's own table ``inet meshpath`` (pure).

The file is atomic and touches nothing else: ``nft -f`` runs it as one transaction, and
it first declares the table (a no-op when it exists), deletes it, then recreates it, so
a re-apply replaces meshpath's rules exactly and never adds duplicates. WARP's
``inet cloudflare-warp`` table is never named.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Final

from meshpath.errors import BadInputError
from meshpath.values import parse_ifname

TABLE_FAMILY: Final = "inet"
TABLE_NAME: Final = "meshpath"
CHAIN_NAME: Final = "postrouting"


@dataclass(frozen=True, slots=True, order=True)
class Masquerade:
    """One masquerade rule: packets from ``source`` leaving ``oifname``."""

    oifname: str
    source: str  # CIDR, v4 or v6

    @property
    def family(self) -> str:
        return "ip6" if ipaddress.ip_network(self.source).version == 6 else "ip"


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
    :func:`render_nat_table` wrote (nft 1.0: a full-length prefix is a plain address)."""
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


def render_nat_table(rules: Iterable[Masquerade]) -> str:
    """The table body: one nat postrouting chain with the given masquerades, sorted."""
    lines = [
        f"table {TABLE_FAMILY} {TABLE_NAME} {{",
        f"\tchain {CHAIN_NAME} {{",
        "\t\ttype nat hook postrouting priority srcnat; policy accept;",
    ]
    for rule in sorted(set(rules)):
        oif, src = nft_ifname(rule.oifname), ipaddress.ip_network(rule.source)
        lines.append(f'\t\toifname "{oif}" {rule.family} saddr {src} masquerade')
    lines += ["\t}", "}"]
    return "\n".join(lines) + "\n"


def render_replace(rules: Iterable[Masquerade]) -> str:
    """An ``nft -f`` file replacing meshpath's table atomically (one transaction)."""
    return (
        "# meshpath: owns this table only; applied with nft -f as one transaction\n"
        f"table {TABLE_FAMILY} {TABLE_NAME} {{}}\n"
        f"delete table {TABLE_FAMILY} {TABLE_NAME}\n" + render_nat_table(rules)
    )


def render_delete() -> str:
    """An ``nft -f`` file removing meshpath's table (a no-op when it is already gone)."""
    return f"table {TABLE_FAMILY} {TABLE_NAME} {{}}\ndelete table {TABLE_FAMILY} {TABLE_NAME}\n"


def restore_json(ruleset: Mapping[str, Any] | None) -> dict[str, Any] | None:
    """An ``nft -j -f`` document restoring meshpath's table as ``ruleset`` held it.

    None when the table was absent (the inverse is then :func:`render_delete`).
    """
    items = [
        item
        for item in (ruleset or {}).get("nftables", [])
        if isinstance(item, dict) and _in_table(item)
    ]
    if not items:
        return None
    table = {"family": TABLE_FAMILY, "name": TABLE_NAME}
    objects: list[dict[str, Any]] = [
        {"add": {"table": table}},
        {"delete": {"table": table}},
    ]
    for item in items:
        kind, body = next(iter(item.items()))
        clean = {k: v for k, v in body.items() if k != "handle"}
        objects.append({"add": {kind: clean}})
    return {"nftables": objects}


def _in_table(item: Mapping[str, Any]) -> bool:
    for kind in ("table", "chain", "rule", "set", "map"):
        body = item.get(kind)
        if isinstance(body, dict):
            name = body.get("name") if kind == "table" else body.get("table")
            return bool(body.get("family") == TABLE_FAMILY and name == TABLE_NAME)
    return False


def masquerades_in(ruleset: Mapping[str, Any] | None) -> frozenset[Masquerade] | None:
    """meshpath's masquerade rules as ``nft -j list ruleset`` shows them; None: no table.

    A rule counts only when its expressions are exactly those :func:`rule_expr` expects
    for the interface and source it names: a wildcard name, an extra statement or a
    missing masquerade make it ``Masquerade("?", "unrecognised:HANDLE")``, so the set
    differs from any desired one (the plan rewrites the table, verify fails).
    """
    items = [i for i in (ruleset or {}).get("nftables", []) if isinstance(i, dict)]
    if not any(_in_table(i) and "table" in i for i in items):
        return None
    found: set[Masquerade] = set()
    for item in items:
        rule = item.get("rule")
        if isinstance(rule, dict) and _in_table(item):
            parsed = _parse_masquerade(rule.get("expr"))
            found.add(parsed if parsed else Masquerade("?", f"unrecognised:{rule.get('handle')}"))
    return frozenset(found)


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
    if isinstance(right, dict) and "prefix" in right:
        p = right["prefix"]
        return str(ipaddress.ip_network(f"{p['addr']}/{p['len']}"))
    if isinstance(right, str):
        return str(ipaddress.ip_network(right))
    return None
