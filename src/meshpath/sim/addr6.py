"""IPv6 addresses as integers, and the address classes ``ipv6_addr_type`` gives the kernel.

Parsed with :mod:`ipaddress` (the pure core imports no socket), memoised: the same few
addresses come back in every query.
"""

from __future__ import annotations

import ipaddress
from functools import lru_cache
from typing import Final

from meshpath.errors import BadInputError

BITS: Final = 128
ALL_ONES: Final = (1 << BITS) - 1
MASKS6: Final = tuple(ALL_ONES ^ ((1 << (BITS - n)) - 1) for n in range(BITS + 1))
LOOPBACK6: Final = 1
_MULTICAST_TOP: Final = 0xFF
_LINKLOCAL_PREFIX: Final = 0xFE80 >> 6  # fe80::/10


def is_v6(text: str) -> bool:
    """An address (or prefix) text of the IPv6 family: the kernel's tools always print a ':'."""
    return ":" in text


@lru_cache(maxsize=1 << 16)
def ip6_to_int(text: str) -> int:
    """IPv6 text -> int; BadInputError naming the text when it is no IPv6 address."""
    try:
        return int(ipaddress.IPv6Address(text))
    except ValueError:
        raise BadInputError(f"{text!r} is not an IPv6 address") from None


def int_to_ip6(value: int) -> str:
    return str(ipaddress.IPv6Address(value))


def parse_prefix6(text: str) -> tuple[int, int]:
    """``addr/n`` (or a bare address, /128) -> (network int, prefix length), host bits cleared."""
    addr, _, plen_text = text.partition("/")
    try:
        plen = BITS if not plen_text else int(plen_text)
    except ValueError:
        raise BadInputError(f"{text!r}: the prefix length is not a number") from None
    if not 0 <= plen <= BITS:
        raise BadInputError(f"{text!r}: prefix length must be 0..128")
    return ip6_to_int(addr) & MASKS6[plen], plen


def is_multicast6(a: int) -> bool:
    """IPV6_ADDR_MULTICAST: ff00::/8."""
    return a >> 120 == _MULTICAST_TOP


def multicast_scope(a: int) -> int:
    """IPV6_ADDR_MC_SCOPE: the 4-bit scope of a multicast address (1 interface-local,
    2 link-local, 5 site-local, 0xe global; 0 is reserved)."""
    return (a >> 112) & 0xF


def is_linklocal6(a: int) -> bool:
    """IPV6_ADDR_LINKLOCAL for unicast: fe80::/10."""
    return a >> 118 == _LINKLOCAL_PREFIX


def need_strict(a: int) -> bool:
    """``rt6_need_strict``: multicast, link-local and loopback destinations are looked up
    only through the flow's device (RT6_LOOKUP_F_IFACE)."""
    return a == LOOPBACK6 or is_multicast6(a) or is_linklocal6(a)
