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


def render_nat_table(rules: Iterable[Masquerade]) -> str:
    """The table body: one nat postrouting chain with the given masquerades, sorted."""
    lines = [
        f"table {TABLE_FAMILY} {TABLE_NAME} {{",
        f"\tchain {CHAIN_NAME} {{",
        "\t\ttype nat hook postrouting priority srcnat; policy accept;",
    ]
    for rule in sorted(set(rules)):
        lines.append(f'\t\toifname "{rule.oifname}" {rule.family} saddr {rule.source} masquerade')
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

    Only rules of the exact shape meshpath writes are recognised; any other rule in the
    table makes the set differ from the desired one, so the table is rewritten.
    """
    items = [i for i in (ruleset or {}).get("nftables", []) if isinstance(i, dict)]
    if not any(_in_table(i) and "table" in i for i in items):
        return None
    found: set[Masquerade] = set()
    for item in items:
        rule = item.get("rule")
        if isinstance(rule, dict) and _in_table(item):
            parsed = _parse_masquerade(rule.get("expr", []))
            found.add(parsed if parsed else Masquerade("?", f"unrecognised:{rule.get('handle')}"))
    return frozenset(found)


def _parse_masquerade(expr: list[Any]) -> Masquerade | None:
    oif: str | None = None
    src: str | None = None
    masq = False
    for e in expr:
        if not isinstance(e, dict):
            return None
        if "masquerade" in e:
            masq = True
        match = e.get("match")
        if isinstance(match, dict) and match.get("op") == "==":
            left, right = match.get("left", {}), match.get("right")
            if left.get("meta", {}).get("key") == "oifname":
                oif = str(right)
            elif left.get("payload", {}).get("field") == "saddr":
                src = _prefix(right)
    return Masquerade(oif, src) if masq and oif and src else None


def _prefix(right: Any) -> str | None:
    if isinstance(right, dict) and "prefix" in right:
        p = right["prefix"]
        return f"{p['addr']}/{p['len']}"
    if isinstance(right, str):
        return str(ipaddress.ip_network(right))
    return None
