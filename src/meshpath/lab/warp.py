"""What a fresh WARP Connector install leaves on the host, as text the lab loads into conn.

Pure. Modelled on the field report and on the WARP client's documented defaults:

* a side table (65743) routing "the internet" through ``CloudflareWARP``: the complement of
  the default split-tunnel exclude list (so it holds no route for the LAN nor for
  100.64.0.0/10), plus the device range 100.96.0.0/12 the connector needs as a Mesh member;
* ``ip rule`` 32764 ``lookup main suppress_prefixlength 0`` (anything main knows more
  specifically than its default wins, so LAN-bound traffic stays on eth0) and 32765
  ``not fwmark 0x100cf lookup 65743`` (WARP marks its own tunnel packets 0x100cf);
* an ``inet cloudflare-warp`` nft table whose chains only concern the host's own traffic.

The resulting verdict for a LAN reply to a Worker,
``ip route get 100.64.12.189 from 10.0.1.50 iif eth0``, is the main table's default route
out eth0: exactly the field report's trace.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable
from typing import Final

from meshpath.lab.topology import DEVICE_RANGE, TUN_CONN

WARP_TABLE: Final = 65743
WARP_FWMARK: Final = 0x100CF
RULE_PREFS: Final = (32764, 32765)

# The WARP client's default split-tunnel "exclude" list (IPv4).
SPLIT_TUNNEL_EXCLUDES: Final[tuple[str, ...]] = (
    "0.0.0.0/8",
    "10.0.0.0/8",
    "100.64.0.0/10",
    "127.0.0.0/8",
    "169.254.0.0/16",
    "172.16.0.0/12",
    "192.0.0.0/24",
    "192.168.0.0/16",
    "224.0.0.0/24",
    "240.0.0.0/4",
    "255.255.255.255/32",
)


def _complement(excludes: Iterable[str]) -> list[ipaddress.IPv4Network]:
    """The prefixes of 0.0.0.0/0 not covered by ``excludes`` (minimal cover)."""
    remaining = [ipaddress.IPv4Network("0.0.0.0/0")]
    for text in excludes:
        ex = ipaddress.IPv4Network(text)
        nxt: list[ipaddress.IPv4Network] = []
        for net in remaining:
            if net.overlaps(ex):
                nxt.extend(net.address_exclude(ex) if ex.subnet_of(net) else [])
            else:
                nxt.append(net)
        remaining = nxt
    return sorted(remaining)


def tunnel_prefixes(max_len: int = 9) -> list[ipaddress.IPv4Network]:
    """Table 65743's destinations: the split-tunnel complement, cut to /``max_len`` pieces.

    Real installs carry many routes there; cutting the cover keeps the lab's table in the
    hundreds (fast to load) while keeping every verdict identical.
    """
    out: list[ipaddress.IPv4Network] = []
    for net in _complement(SPLIT_TUNNEL_EXCLUDES):
        out.extend(net.subnets(new_prefix=max_len) if net.prefixlen < max_len else [net])
    out.append(ipaddress.IPv4Network(DEVICE_RANGE))
    return out


def route_batch(max_len: int = 9) -> str:
    """`ip -batch` text: table 65743 and the two WARP rules."""
    lines = [f"route add {n} dev {TUN_CONN} table {WARP_TABLE}" for n in tunnel_prefixes(max_len)]
    lines.append(f"rule add pref {RULE_PREFS[0]} lookup main suppress_prefixlength 0")
    lines.append(f"rule add pref {RULE_PREFS[1]} not fwmark {WARP_FWMARK:#x} lookup {WARP_TABLE}")
    return "\n".join(lines) + "\n"


def nft_ruleset() -> str:
    """The ``inet cloudflare-warp`` table: filters for the connector's own traffic only."""
    return f"""table inet cloudflare-warp {{
  chain input {{
    type filter hook input priority filter; policy accept;
    iifname "lo" accept;
    ct state established,related accept;
    iifname "{TUN_CONN}" ip saddr {DEVICE_RANGE} accept;
  }}
  chain output {{
    type filter hook output priority filter; policy accept;
    oifname "lo" accept;
    meta mark {WARP_FWMARK:#x} accept;
    oifname "{TUN_CONN}" accept;
  }}
}}
"""
