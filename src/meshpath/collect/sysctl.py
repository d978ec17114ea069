"""The forwarding-path sysctls, read from ``/proc/sys`` (inside the namespace being collected).

``/proc/sys/net`` shows the namespace of the task that opens the file, so these reads must
run inside :func:`meshpath.collect.netns.inside_netns`. ``root`` is a parameter so the unit
tests can point the reader at a recorded tree.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from meshpath.state.model import Ipv4Conf, Ipv6Conf, Sysctls

PROC_SYS = Path("/proc/sys")
IPV4_KEYS = ("forwarding", "rp_filter", "src_valid_mark", "accept_local", "route_localnet",
             "log_martians", "send_redirects", "ignore_routes_with_linkdown")  # fmt: skip
IPV6_KEYS = ("forwarding", "disable_ipv6", "ignore_routes_with_linkdown", "accept_ra")


def _read_int(path: Path) -> int | None:
    try:
        text = path.read_text().strip()
    except OSError:
        return None
    try:
        return int(text)
    except ValueError:
        return None


def _conf_dir(root: Path, family: str, name: str) -> Path:
    # /proc/sys spells a '.' in an interface name as '/' (sysctl(8) does the same swap).
    return root / "net" / family / "conf" / name.replace(".", "/")


def _values(directory: Path, keys: Iterable[str]) -> dict[str, int] | None:
    values = {key: _read_int(directory / key) for key in keys}
    if values.get("forwarding") is None:
        return None  # no such interface (or IPv6 absent there)
    return {key: value for key, value in values.items() if value is not None}


def read_sysctls(link_names: Iterable[str], root: Path = PROC_SYS) -> Sysctls:
    """net.ipv4/ipv6.conf.{all,default,<link>}.* plus fwmark_reflect, tcp_mtu_probing and
    the multipath hash's policy, seed and use_neigh."""
    names = ["all", "default", *link_names]
    ipv4: dict[str, Ipv4Conf] = {}
    ipv6: dict[str, Ipv6Conf] = {}
    for name in names:
        v4 = _values(_conf_dir(root, "ipv4", name), IPV4_KEYS)
        if v4 is not None and "rp_filter" in v4:
            ipv4[name] = Ipv4Conf(**v4)
        v6 = _values(_conf_dir(root, "ipv6", name), IPV6_KEYS)
        if v6 is not None:
            ipv6[name] = Ipv6Conf(**v6)
    return Sysctls(
        ipv4=ipv4,
        ipv6=ipv6,
        fwmark_reflect=_read_int(root / "net/ipv4/fwmark_reflect") or 0,
        tcp_mtu_probing=_read_int(root / "net/ipv4/tcp_mtu_probing") or 0,
        fib_multipath_hash_policy=_read_int(root / "net/ipv4/fib_multipath_hash_policy") or 0,
        fib_multipath_hash_seed=_read_int(root / "net/ipv4/fib_multipath_hash_seed"),
        fib_multipath_use_neigh=_read_int(root / "net/ipv4/fib_multipath_use_neigh") or 0,
        fib6_multipath_hash_policy=_read_int(root / "net/ipv6/fib_multipath_hash_policy") or 0,
    )
