"""``ip -j`` output decoded in one place: the objects iproute2 printed.

Host state comes from netlink (:mod:`meshpath.collect.netlink`); ``ip -j`` is read where a
question is asked of the kernel in ``ip``'s own words (``ip route get``, a route's presence
after a fix) and by the lab's probes of its namespaces.
"""

from __future__ import annotations

import json
from typing import Any

from meshpath.render.systemd import RouteSpec


def ip_json(text: str, *, strict: bool = True) -> list[dict[str, Any]]:
    """The objects of ``ip -j ...`` output; nothing printed is none.

    ``strict=False`` takes control characters inside strings (interface names may hold
    them). ValueError when the output is not a JSON list.
    """
    value = json.loads(text or "[]", strict=strict)
    if not isinstance(value, list):
        raise ValueError(f"ip -j: expected a JSON list, got {type(value).__name__}")
    return [entry for entry in value if isinstance(entry, dict)]


def host_prefix(dst: str) -> str:
    """``ip -j`` prints host routes without a length: 100.64.0.5 -> 100.64.0.5/32."""
    return dst if "/" in dst else f"{dst}/32"


def route_listed(show_json: str, spec: RouteSpec) -> bool:
    """Whether ``ip -N -j route show DST table main`` output holds ``spec``'s route.

    ValueError when the output cannot be read: the caller cannot tell, and must not
    take that for "absent" (the applier then runs the delete and reports its error).
    """
    return any(
        r.get("dev") == spec.dev
        and str(r.get("protocol")) == str(spec.proto)
        and r.get("metric", 0) == spec.metric
        for r in ip_json(show_json, strict=False)  # ip -j prints control characters raw
    )
