"""WARP's state on the connector, as pure data and text: what the lab's WARP emulator
(:mod:`meshpath.lab.warpd`) installs into conn from the device profile it fetches.

Modelled on the field report and on the WARP client's documented behaviour:

* a side table (65743) routing through ``CloudflareWARP`` what the Split Tunnels send to
  Cloudflare: in Exclude mode the complement of the exclude list, in Include mode the
  included prefixes (Split Tunnels page,
  https://developers.cloudflare.com/cloudflare-one/team-and-resources/devices/cloudflare-one-client/configure/route-traffic/split-tunnels/);
* ``ip rule`` 32764 ``lookup main suppress_prefixlength 0`` (anything main knows more
  specifically than its default wins, so LAN-bound traffic stays on eth0) and 32765
  ``not fwmark 0x100cf lookup 65743`` (WARP marks its own tunnel packets 0x100cf);
* an ``inet cloudflare-warp`` nft table whose chains only concern the host's own traffic.

The lab's profile is Cloudflare's default Exclude list as the Mesh setup wizard leaves it:
the device range routed through the tunnel ("The Mesh setup wizard updates the default
profile to route the device IP range through Cloudflare", Split Tunnels page), done the way
the WARP-to-WARP page's older recipe does it (delete 100.64.0.0/10, re-add 100.64.0.0/11 and
100.112.0.0/12). That keeps the Cloudflare source range excluded, so a LAN reply to a
Worker, ``ip route get 100.64.12.189 from 10.0.1.50 iif eth0``, takes the main table's
default route out eth0: exactly the field report's trace.

IPv6, the same way: ``ip -6`` rules 32764/32765 and table 65743's IPv6 routes, the
complement of the profile's IPv6 excludes. The Split Tunnels page ("Automatically managed
ranges") says the client keeps ``2606:4700:0cf1::/48`` (device, source and Gateway IPs) in
the tunnel: it "automatically removes them from any exclusions configured in Exclude mode"
and includes them in Include mode. So with a documented client a LAN reply to the Worker's
IPv6 source *does* go back into the tunnel, where the IPv4 one does not. The lab models
that by default (``auto_managed=True``). What the page does not list is the default
profile's IPv6 excludes; the lab assumes the entries Cloudflare's own Terraform export of a
default profile carries (``fe80::/10``, ``fd00::/8``, ``ff01::/16`` ... ``ff05::/16``).
A client that applies a profile excluding all of IPv6 (``::/0``) *literally*
(``auto_managed=False``: what the lab assumes of a client predating the managed ranges; the
docs do not say since when they exist) leaves the IPv6 source range out, and the IPv6
reply takes the main table's default route: the field report's failure, over IPv6.
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


# The default profile's IPv6 excludes (a lab assumption, see the module docstring).
SPLIT_TUNNEL_EXCLUDES6: Final[tuple[str, ...]] = (
    "fe80::/10",
    "fd00::/8",
    "ff01::/16",
    "ff02::/16",
    "ff03::/16",
    "ff04::/16",
    "ff05::/16",
)
# Kept in the tunnel by the client whatever the profile says (Split Tunnels page,
# "Automatically managed ranges").
AUTO_MANAGED6: Final = ipaddress.IPv6Network("2606:4700:cf1::/48")
# Excluding all of IPv6: the profile entry of the v6-broken scenarios.
ALL_V6: Final = "::/0"

# What the Mesh wizard / WARP-to-WARP recipe leaves: the device range no longer excluded.
LAB_EXCLUDES: Final[tuple[str, ...]] = (
    *(
        e
        for x in SPLIT_TUNNEL_EXCLUDES
        for e in (("100.64.0.0/11", "100.112.0.0/12") if x == "100.64.0.0/10" else (x,))
    ),
    *SPLIT_TUNNEL_EXCLUDES6,
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


def tunnel_prefixes(
    max_len: int = 9,
    excludes: Iterable[str] = LAB_EXCLUDES,
    includes: Iterable[str] | None = None,
) -> list[ipaddress.IPv4Network]:
    """Table 65743's IPv4 destinations for a profile: the Include list as given, or the
    complement of the Exclude list cut to /``max_len`` pieces.

    Real installs carry many routes there; cutting the cover keeps the lab's table in the
    hundreds (fast to load) while keeping every verdict identical. Host entries and IPv6
    entries of a list have no IPv4 route.
    """
    if includes is not None:
        return sorted({n for n in (_v4(e) for e in includes) if n is not None})
    nets = [n for n in (_v4(e) for e in excludes) if n is not None]
    out: list[ipaddress.IPv4Network] = []
    for net in _complement(str(n) for n in ipaddress.collapse_addresses(nets)):
        out.extend(net.subnets(new_prefix=max_len) if net.prefixlen < max_len else [net])
    return out


def tunnel_prefixes6(
    excludes: Iterable[str] = LAB_EXCLUDES,
    includes: Iterable[str] | None = None,
    auto_managed: bool = True,
) -> list[ipaddress.IPv6Network]:
    """Table 65743's IPv6 destinations for a profile: the Include list (plus the managed
    /48), or the complement of the Exclude list with the managed /48 carved out of every
    exclusion (``auto_managed=False``: the list applied literally)."""
    if includes is not None:
        nets = {n for n in (_v6(e) for e in includes) if n is not None}
        return sorted(nets | ({AUTO_MANAGED6} if auto_managed else set()))
    excluded = [n for n in (_v6(e) for e in excludes) if n is not None]
    if auto_managed:
        excluded = [p for n in excluded for p in _without(n, AUTO_MANAGED6)]
    remaining = [ipaddress.IPv6Network("::/0")]
    for ex in ipaddress.collapse_addresses(excluded):
        remaining = [p for net in remaining for p in _without(net, ex)]
    return sorted(remaining)


def _without(
    net: ipaddress.IPv6Network, hole: ipaddress.IPv6Network
) -> list[ipaddress.IPv6Network]:
    """``net`` minus ``hole`` as prefixes (``net`` itself when they do not overlap)."""
    if not net.overlaps(hole):
        return [net]
    return list(net.address_exclude(hole)) if hole.subnet_of(net) else []


def _v6(entry: str) -> ipaddress.IPv6Network | None:
    try:
        net = ipaddress.ip_network(entry, strict=False)
    except ValueError:
        return None
    return net if isinstance(net, ipaddress.IPv6Network) else None


def _v4(entry: str) -> ipaddress.IPv4Network | None:
    try:
        net = ipaddress.ip_network(entry, strict=False)
    except ValueError:
        return None
    return net if isinstance(net, ipaddress.IPv4Network) else None


def route_diff(
    current: Iterable[str], desired: Iterable[ipaddress.IPv4Network | ipaddress.IPv6Network]
) -> str:
    """`ip -batch` text taking table 65743 from ``current`` to ``desired`` without a moment
    in which a kept route is missing (``replace`` what stays, ``del`` what goes)."""
    want = {str(n) for n in desired}
    have = set(current)
    lines = [f"route del {d} table {WARP_TABLE}" for d in sorted(have - want)]
    lines += [f"route replace {d} dev {TUN_CONN} table {WARP_TABLE}" for d in sorted(want - have)]
    return "\n".join(lines) + ("\n" if lines else "")


def route_batch(max_len: int = 9) -> str:
    """`ip -batch` text: table 65743 (the lab's profile) and the two WARP rules."""
    lines = [f"route add {n} dev {TUN_CONN} table {WARP_TABLE}" for n in tunnel_prefixes(max_len)]
    lines.append(rule_lines()[0])
    lines.append(rule_lines()[1])
    return "\n".join(lines) + "\n"


def rule_lines(family: int = 4) -> tuple[str, str]:
    """The two WARP rules of ``family`` as `ip -batch` lines (a batch line takes no ``-6``:
    ``from ::/0`` makes a rule IPv6, and matches every IPv6 source as ``all`` does)."""
    src = "from ::/0 " if family == 6 else ""
    return (
        f"rule add pref {RULE_PREFS[0]} {src}lookup main suppress_prefixlength 0",
        f"rule add pref {RULE_PREFS[1]} not {src}fwmark {WARP_FWMARK:#x} lookup {WARP_TABLE}",
    )


def nft_ruleset() -> str:
    """The ``inet cloudflare-warp`` table: filters for the connector's own traffic only."""
    return f"""table inet cloudflare-warp {{}}
delete table inet cloudflare-warp
table inet cloudflare-warp {{
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
