"""IPv4 addresses as integers, and the address classes the kernel's martian checks use.

Parsing with ``str.split`` and ``int`` is about ten times faster than :mod:`ipaddress`
(FACTS.md), which matters when a Fib is built from a million routes; libc's
``inet_pton`` (through :mod:`socket`) is twice as fast again, and as strict: four decimal
octets 0..255, no leading zeros, nothing around them.
"""

from __future__ import annotations

from socket import AF_INET, inet_pton  # pure: text -> bytes, no I/O
from typing import Final

from meshpath.errors import BadInputError

MASKS: Final = tuple(((1 << 32) - (1 << (32 - n))) & 0xFFFFFFFF for n in range(33))
LIMITED_BROADCAST: Final = 0xFFFFFFFF
# Octet text -> value: a dict lookup is faster than int() and validates 0..255 on the way.
OCTETS: Final = {str(i): i for i in range(256)}


_PTON: Final = inet_pton
_AF_INET: Final = AF_INET
_FROM_BYTES: Final = int.from_bytes


def ip_to_int(text: str) -> int:
    """Dotted quad -> int; BadInputError naming the text when it is no IPv4 address."""
    try:
        return _FROM_BYTES(_PTON(_AF_INET, text), "big")
    except (OSError, ValueError, TypeError):  # ValueError: an embedded NUL
        raise BadInputError(f"{text!r} is not an IPv4 address (expected a.b.c.d)") from None


def ip_pair_to_int(dst: str, src: str) -> tuple[int, int]:
    """Both addresses of a query at once (every query parses two: one call, not two)."""
    try:
        return _FROM_BYTES(_PTON(_AF_INET, dst), "big"), _FROM_BYTES(_PTON(_AF_INET, src), "big")
    except (OSError, ValueError, TypeError):
        return ip_to_int(dst), ip_to_int(src)  # raises the error naming the bad one


def int_to_ip(value: int) -> str:
    return f"{value >> 24}.{(value >> 16) & 255}.{(value >> 8) & 255}.{value & 255}"


def parse_prefix(text: str) -> tuple[int, int]:
    """``a.b.c.d/n`` (or a bare address, /32) -> (network int, prefix length), host bits cleared."""
    addr, _, plen_text = text.partition("/")
    plen = 32 if not plen_text else int(plen_text)
    if not 0 <= plen <= 32:
        raise BadInputError(f"{text!r}: prefix length must be 0..32")
    return ip_to_int(addr) & MASKS[plen], plen


def is_multicast(a: int) -> bool:
    """ipv4_is_multicast: 224.0.0.0/4."""
    return (a & 0xF0000000) == 0xE0000000


def is_lbcast(a: int) -> bool:
    """ipv4_is_lbcast: the limited broadcast 255.255.255.255."""
    return a == LIMITED_BROADCAST


def is_zeronet(a: int) -> bool:
    """ipv4_is_zeronet: 0.0.0.0/8."""
    return (a & 0xFF000000) == 0


def is_loopback(a: int) -> bool:
    """ipv4_is_loopback: 127.0.0.0/8."""
    return (a & 0xFF000000) == 0x7F000000


def is_local_multicast(a: int) -> bool:
    """ipv4_is_local_multicast: 224.0.0.0/24."""
    return (a & 0xFFFFFF00) == 0xE0000000
