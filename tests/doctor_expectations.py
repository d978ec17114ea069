"""What the doctor must say about each recorded / live lab state (shared by unit and lab tests).

name -> (verdict starts with, root-cause ID or None, IDs that must be among the findings)
"""

from __future__ import annotations

EXPECT: dict[str, tuple[str, str | None, frozenset[str]]] = {
    "broken": ("PATH BROKEN", "MP101", frozenset({"MP101"})),
    "gateway": ("PATH BROKEN", "MP101", frozenset({"MP101", "MP103"})),
    "route": ("PATH OK", None, frozenset({"MP103"})),
    "nat": ("PATH OK", None, frozenset({"MP110"})),
    "nat-only": ("PATH BROKEN", "MP101", frozenset({"MP101", "MP110"})),
    "bgp": ("PATH OK", None, frozenset()),
    "rp-strict": ("PATH BROKEN", "MP130", frozenset({"MP130", "MP131"})),
    "docker-drop": ("PATH BROKEN", "MP140", frozenset({"MP140"})),
    "no-carrier": ("PATH BROKEN", "MP150", frozenset({"MP150", "MP151"})),
    "rfc8212": ("PATH BROKEN", "MP162", frozenset({"MP162"})),
    "tailscale52": ("PATH BROKEN", "MP170", frozenset({"MP170"})),
}
