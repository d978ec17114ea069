"""nftables text for meshpath's own table ``inet meshpath`` (pure).

The file is atomic and touches nothing else: ``nft -f`` runs it as one transaction, and
it first declares the table (a no-op when it exists), deletes it, then recreates it, so
a re-apply replaces meshpath's rules exactly and never adds duplicates. WARP's
``inet cloudflare-warp`` table is never named.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Mapping
from typing import Any

# What nft lists back for these rules (and reading it) lives in meshpath.state.nft; the
# names stay importable from here for the renderers' callers.
from meshpath.state.nft import (
    CHAIN_NAME,
    TABLE_FAMILY,
    TABLE_NAME,
    Masquerade,
    NftView,
    masquerades_in,
    nft_ifname,
    parse_ruleset,
    rule_expr,
)

__all__ = [
    "CHAIN_NAME",
    "TABLE_FAMILY",
    "TABLE_NAME",
    "Masquerade",
    "masquerades_in",
    "nft_ifname",
    "render_delete",
    "render_empty",
    "render_nat_table",
    "render_replace",
    "restore_json",
    "rule_expr",
]


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


def render_empty() -> str:
    """An ``nft -f`` file emptying meshpath's nat chain but keeping it: new connections are
    no longer masqueraded, while the chain keeps the kernel's NAT hooks registered, so the
    connections already masqueraded keep their translation until they end (deleting the
    last nat chain unregisters the hooks and breaks them mid-flow)."""
    return f"flush chain {TABLE_FAMILY} {TABLE_NAME} {CHAIN_NAME}\n"


def restore_json(ruleset: NftView | Mapping[str, Any] | None) -> dict[str, Any] | None:
    """An ``nft -j -f`` document restoring meshpath's table as ``ruleset`` held it.

    None when the table was absent (the inverse is then :func:`render_delete`).
    """
    view = ruleset if isinstance(ruleset, NftView) else parse_ruleset(ruleset)
    if not view.own_items:
        return None
    table = {"family": TABLE_FAMILY, "name": TABLE_NAME}
    objects: list[dict[str, Any]] = [
        {"add": {"table": table}},
        {"delete": {"table": table}},
    ]
    for item in view.own_items:
        kind, body = next(iter(item.items()))
        clean = {k: v for k, v in body.items() if k != "handle"}
        objects.append({"add": {kind: clean}})
    return {"nftables": objects}
