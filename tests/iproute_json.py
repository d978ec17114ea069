"""Reading ``ip -j`` output independently of meshpath's netlink parser, for cross-checks.

iproute2 names what the kernel numbers (tables, protocols, scopes, ipproto) and abbreviates
prefixes (``default``, host routes without ``/32``); these helpers undo that so tests can
compare iproute2's view with the snapshot's field by field.
"""

from __future__ import annotations

import socket
from typing import Any

TABLES = {"local": 255, "main": 254, "default": 253}
PROTOCOLS = {"kernel": 2, "boot": 3, "static": 4, "openr": 99}
SCOPES = {"global": 0, "universe": 0, "link": 253, "host": 254}


def number(value: Any, names: dict[str, int]) -> int:
    if isinstance(value, int):
        return value
    return names[value] if value in names else int(value, 0)


def cidr(dst: str, family: int) -> str:
    if dst == "default":
        return "0.0.0.0/0" if family == 4 else "::/0"
    if "/" in dst:
        return dst
    return f"{dst}/{32 if family == 4 else 128}"


def route_key(r: dict[str, Any], family: int) -> tuple[Any, ...]:
    """(table, dst, type, dev, gateway, metric) as the brief's cross-check compares them."""
    return (
        number(r.get("table", "main"), TABLES),
        cidr(r["dst"], family),
        r.get("type", "unicast"),
        r.get("dev"),
        r.get("gateway") or r.get("via", {}).get("host"),
        r.get("metric", 0),
    )


def route_detail(r: dict[str, Any], family: int) -> tuple[Any, ...]:
    """Everything else ip prints that the snapshot keeps."""
    mtu = next((m["mtu"] for m in r.get("metrics", []) if "mtu" in m), None)
    legs = tuple(
        (h.get("gateway"), h.get("dev"), h.get("weight", 1), tuple(h.get("flags", ())))
        for h in r.get("nexthops", ())
    )
    return (
        *route_key(r, family),
        number(r.get("protocol", "boot"), PROTOCOLS),
        number(r.get("scope", "global"), SCOPES),
        r.get("prefsrc"),
        tuple(r.get("flags", ())),
        legs,
        mtu,
    )


def _prefix(r: dict[str, Any], key: str) -> str | None:
    value = r.get(key, "all")
    if value == "all":
        return None
    length = r.get(f"{key}len")
    return f"{value}/{length}" if length is not None else value


def _ports(r: dict[str, Any], key: str) -> tuple[int, int] | None:
    if key in r:
        return (r[key], r[key])
    if f"{key}_start" in r:
        return (r[f"{key}_start"], r[f"{key}_end"])
    return None


def _action(r: dict[str, Any]) -> str:
    if "goto" in r:
        return "goto"
    if "nop" in r:
        return "nop"
    return str(r.get("action", "lookup"))


def rule_key(r: dict[str, Any]) -> tuple[Any, ...]:
    """A rule as ip -j shows it, with numbers where the kernel has numbers."""
    proto = r.get("ipproto")
    uid = (r["uid_start"], r["uid_end"]) if "uid_start" in r else None
    return (
        r["priority"],
        _action(r),
        number(r["table"], TABLES) if "table" in r else None,
        r.get("goto"),
        "not" in r,
        _prefix(r, "src"),
        _prefix(r, "dst"),
        r.get("iif"),
        r.get("oif"),
        int(r["fwmark"], 16) if "fwmark" in r else None,
        int(r.get("fwmask", "0xffffffff"), 16) if "fwmark" in r else None,
        int(r.get("tos", "0"), 16),
        socket.getprotobyname(proto) if proto else None,
        _ports(r, "sport"),
        _ports(r, "dport"),
        uid,
        r.get("suppress_prefixlen"),
        int(r["suppress_ifgroup"], 0) if "suppress_ifgroup" in r else None,
        "l3mdev" in r,
    )
