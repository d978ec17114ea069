"""The values meshpath hands to the kernel, nft, FRR and vtysh, parsed once into their types.

Every name or number that reaches an argv, an nft file, FRR's configuration, a ``vtysh -c``
command or a unit file is parsed here first, from the CLI, a config file, a snapshot or a
journal alike. A value that does not fit is a :class:`~meshpath.errors.BadInputError`
naming the value, what was expected and, where it helps, what to do. The parsers are
strict on purpose: ASCII digits only (``int()`` also takes ``1_000``, ``+80``, ``٨٠``),
one spelling per value, so what is checked is what the tools receive.

Limits that belong to one tool (what nft can quote, what FRR reads as an interface) live
with that tool's renderer (:mod:`meshpath.render.nft`, :mod:`meshpath.render.frr`).
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass
from typing import Final, NewType

from meshpath.errors import BadInputError

IFNAMSIZ: Final = 16  # include/uapi/linux/if.h, with the terminating NUL
ASN_MAX: Final = 4_294_967_295  # RFC 6793: four-octet AS numbers
PORT_MAX: Final = 65_535
U32_MAX: Final = 2**32 - 1

IfName = NewType("IfName", str)
"""An interface name the kernel can hold (``dev_valid_name``): see :func:`parse_ifname`."""

# The kernel's isspace() (lib/ctype.c), which dev_valid_name() refuses: the ASCII
# whitespace and 0xa0, which its Latin-1 table also counts as a space. Checked on the
# UTF-8 bytes, so a character whose encoding holds 0xa0 ('à' is c3 a0) is refused too,
# exactly as the kernel refuses it.
_KERNEL_SPACE: Final = frozenset(b"\t\n\v\f\r \xa0")
_DIGITS: Final = re.compile(r"[0-9]+")
_HEX: Final = re.compile(r"0[xX][0-9a-fA-F]+")
# a.b.c.d[:PORT] or [v6][:PORT]; the address itself is checked by ipaddress afterwards.
_HOST_PORT: Final = re.compile(
    r"(?P<v4>[0-9.]+)(?::(?P<p4>[0-9]+))?|\[(?P<v6>[0-9a-fA-F:.]+)\](?::(?P<p6>[0-9]+))?"
)
TARGET_HELP: Final = "expected IP:PORT, e.g. 10.0.1.50:3000 or [fd00::50]:443"


def ifname_problem(text: str) -> str | None:
    """Why the kernel would refuse ``text`` as an interface name, or cannot hold it
    as meshpath sees it; None when it is a name the kernel accepts (``dev_valid_name``:
    1..15 bytes, no '/', ':' or whitespace, not '.' or '..')."""
    if "\ufffd" in text:
        # The collector decodes names as UTF-8 with replacement: a name with other bytes
        # reaches us changed, and a rule written for the changed name matches nothing.
        return "holds bytes that are not UTF-8; meshpath cannot name it exactly"
    try:
        raw = text.encode("utf-8")
    except UnicodeEncodeError:
        return "is not valid UTF-8"
    if not raw:
        return "is empty"
    if len(raw) >= IFNAMSIZ:
        return f"is {len(raw)} bytes long; an interface name has at most {IFNAMSIZ - 1}"
    if text in (".", "..", "all", "default"):
        # '.', '..': dev_valid_name; 'all', 'default': taken by net.ipv{4,6}.conf (EINVAL)
        return "is not an interface name the kernel allows"
    bad = sorted({chr(b) for b in raw if b in _KERNEL_SPACE or b in b"/:\0%"})
    if bad:
        # '%' is the kernel's name template (eth%d): no interface ever holds one.
        return f"holds {', '.join(map(repr, bad))}, which no interface name can hold"
    return None


def given(text: str | None, what: str) -> str | None:
    """An optional value: None when the option was left out. An empty one is refused: it
    would read as "left out" and quietly give the default instead."""
    if text is not None and not text.strip():
        raise BadInputError(f"{what} {text!r} is empty: give a value or leave {what} out")
    return text


def parse_ifname(text: str, what: str = "interface") -> IfName:
    """``text`` as an :data:`IfName`; BadInputError naming ``what`` otherwise."""
    problem = ifname_problem(text)
    if problem is not None:
        raise BadInputError(f"{what} {text!r} {problem}")
    return IfName(text)


def _decimal(text: str) -> int | None:
    """ASCII decimal digits only (no sign, '_', spaces or other scripts' digits)."""
    return int(text) if _DIGITS.fullmatch(text) else None


def parse_asn(text: str | int, what: str = "--asn") -> int:
    """An AS number, 1..4294967295, as ``65001`` or in asdot ``1.10`` (= 65546)."""
    value = text if isinstance(text, int) else _asn_text(text)
    if value is None or not 1 <= value <= ASN_MAX:
        raise BadInputError(
            f"{what} {_shown(text)}: an AS number is 1..{ASN_MAX} (asdot like 1.10 also works)"
        )
    return value


def _shown(value: str | int) -> str:
    """A value as typed when that is safe on one line, else quoted with its escapes."""
    text = str(value)
    return text if text and text.isprintable() and " " not in text else repr(text)


def _asn_text(text: str) -> int | None:
    high, dot, low = text.partition(".")
    if not dot:
        return _decimal(text)
    hi, lo = _decimal(high), _decimal(low)
    if hi is None or lo is None or hi > 0xFFFF or lo > 0xFFFF:
        return None
    return hi << 16 | lo


def parse_peer_asn(text: str, what: str = "--peer-asn") -> str:
    """``external``, ``internal`` or an AS number (as FRR's ``remote-as`` takes it)."""
    if text in ("external", "internal"):
        return text
    try:
        return str(parse_asn(text, what))
    except BadInputError:
        raise BadInputError(
            f"{what} {text!r}: expected 1..{ASN_MAX}, external or internal"
        ) from None


def parse_peer(text: str, what: str = "--peer") -> str:
    """A BGP peer: one unicast IPv4 or IPv6 address, in its canonical spelling (as FRR
    prints it). A link-local IPv6 peer needs an interface FRR would have to be told
    about, an IPv4-mapped one is an IPv4 peer: both are refused."""
    try:
        plain = text.isascii() and text.strip() == text and "%" not in text  # no zone id
        ip = ipaddress.ip_address(text) if plain else None
    except ValueError:
        ip = None
    if ip is None:
        raise BadInputError(
            f"{what} {text!r} is not an IP address (expected IPv4 or IPv6, e.g. 10.0.1.1)"
        )
    if ip.is_unspecified or ip.is_multicast or ip.is_loopback or ip.is_reserved:
        raise BadInputError(f"{what} {ip}: expected a unicast address on the LAN")
    if isinstance(ip, ipaddress.IPv6Address) and (ip.is_link_local or ip.ipv4_mapped):
        raise BadInputError(f"{what} {ip}: expected a global or ULA IPv6 address (not link-local)")
    return str(ip)


def parse_u32(text: str, what: str) -> int:
    """A 32-bit number as ``1234`` or ``0x100cf`` (what ``ip`` prints)."""
    if _HEX.fullmatch(text):
        value = int(text, 16)
    elif _DIGITS.fullmatch(text) and (text == "0" or not text.startswith("0")):
        # A leading 0 is octal to ip(8)'s strtoul: refuse rather than guess.
        value = int(text)
    else:
        raise BadInputError(f"{what} {text!r}: expected a number like 1234 or 0x100cf")
    if value > U32_MAX:
        raise BadInputError(f"{what} {text!r}: a 32-bit value is 0 to 0xffffffff")
    return value


@dataclass(frozen=True, slots=True)
class HostPort:
    """A TCP endpoint: an address and a port (1..65535)."""

    address: ipaddress.IPv4Address | ipaddress.IPv6Address
    port: int

    def __str__(self) -> str:
        return endpoint(str(self.address), self.port)


def endpoint(address: str, port: int) -> str:
    """``IP:PORT`` as people and :func:`parse_hostport` read it: IPv6 in brackets
    (``fd00:1::50:3000`` would be an address, not an address and a port)."""
    return f"[{address}]:{port}" if ":" in address else f"{address}:{port}"


def parse_hostport(text: str, what: str = "--target", default_port: int | None = None) -> HostPort:
    """``a.b.c.d:PORT`` or ``[v6]:PORT``; with ``default_port`` also ``a.b.c.d`` and ``[v6]``.

    Nothing else: no names, no unbracketed IPv6 (``::1:80`` would be ambiguous), no IPv4 in
    brackets, no zone index, ASCII digits only, port 1..65535.
    """
    m = _HOST_PORT.fullmatch(text) if text.isascii() else None
    if m is None:
        raise BadInputError(f"{what} {text!r}: {TARGET_HELP}")
    port_text = m["p4"] if m["v4"] is not None else m["p6"]
    if port_text is None and default_port is None:
        raise BadInputError(f"{what} {text!r}: {TARGET_HELP}")
    try:
        v4, v6 = m["v4"], m["v6"]
        address = ipaddress.IPv4Address(v4) if v4 is not None else ipaddress.IPv6Address(v6)
    except ValueError:
        raise BadInputError(f"{what} {text!r}: {TARGET_HELP}") from None
    port = int(port_text) if port_text is not None else default_port
    if port is None or not 1 <= port <= PORT_MAX:
        raise BadInputError(f"{what} {text!r}: {TARGET_HELP} (port 1-{PORT_MAX})")
    return HostPort(address, port)
