"""FRR's running configuration as FRR reads it (pure): lines, top-level blocks, the keys
frr-reload.py compares, the BGP AS. The one reader of a config's text: what is in place
(:attr:`meshpath.state.model.FrrState.config`), what meshpath's fixes compose with
(:mod:`meshpath.fix.frrfit`) and what its renderer edits (:mod:`meshpath.render.frr`) all
go through it.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Final

from meshpath.errors import BadInputError, ConfigError
from meshpath.values import parse_asn as checked_asn

# FRR splits config into lines on '\n' and words on these; str.splitlines()/strip() would
# also cut at characters an interface name may hold (\x1c-\x1f, \x85, \u2028).
_BLANKS: Final = " \t\r"


Block = tuple[str, ...]  # header line, then its indented body (``exit`` not kept)


SEPARATOR: Final = "!"


IPV4_AF: Final = "address-family ipv4 unicast"


IPV6_AF: Final = "address-family ipv6 unicast"


_AF_ALIASES: Final = {
    "address-family ipv4": "address-family ipv4 unicast",
    "address-family ipv6": "address-family ipv6 unicast",
}


_CLOSERS: Final = frozenset({"exit", "exit-vrf"})


# Commands FRR only accepts inside these nodes: at column 0 in a hand-written file they
# still belong to the block that is open (FRR runs a line in the current node first).
_BODY_WORDS: Final = {
    "router bgp": frozenset(
        {"neighbor", "network", "address-family", "exit-address-family", "redistribute",
         "aggregate-address", "maximum-paths", "timers", "distance", "import", "export"}
    ),
    "route-map": frozenset({"match", "set", "on-match", "call", "continue", "description"}),
}  # fmt: skip


@dataclass(frozen=True, slots=True)
class Span:
    """A top-level block in config text: lines ``start`` (its header) to ``end``."""

    start: int
    end: int  # after its last line (its exit line included)
    header: str  # stripped
    exit_at: int | None  # index of its closing exit/exit-vrf line, if it has one


def split_lines(text: str) -> list[str]:
    """Lines as FRR splits them: on '\\n' only (see _BLANKS); no empty line after the last."""
    lines = text.split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    return lines


def config_lines(text: str) -> list[str]:
    """The config's own lines: vtysh's banner ('Building configuration...') dropped."""
    return [
        line.rstrip(_BLANKS)
        for line in split_lines(text)
        if not line.strip(_BLANKS).startswith(("Building configuration", "Current configuration"))
    ]


def _indented(line: str) -> bool:
    return line[:1] in (" ", "\t")


def _attaches(stripped: str, header: str) -> bool:
    """A column-0 line that belongs to the open block (hand-written, unindented)."""
    word = stripped.split()[0]
    return any(header.startswith(kind) and word in words for kind, words in _BODY_WORDS.items())


def spans(lines: Sequence[str]) -> list[Span]:
    """The top-level blocks of ``lines``, as FRR's parser nests them."""
    found: list[Span] = []
    start: int | None = None
    last = 0
    for i, raw in enumerate(lines):
        stripped = raw.strip()
        if not stripped or stripped.startswith(SEPARATOR):
            continue
        if start is not None and not _indented(raw) and stripped in _CLOSERS:
            found.append(Span(start, i + 1, lines[start].strip(), i))
            start = None
            continue
        if _indented(raw) and start is not None:
            last = i
            continue
        if start is not None and _attaches(stripped, lines[start].strip()):
            last = i
            continue
        if start is not None:
            found.append(Span(start, last + 1, lines[start].strip(), None))
        start = None if stripped in ("end", *_CLOSERS) else i
        last = i
    if start is not None:
        found.append(Span(start, last + 1, lines[start].strip(), None))
    return found


def body_of(lines: Sequence[str], span: Span) -> list[str]:
    """A block's body lines (separators and its closing line dropped), each indented."""
    stop = span.exit_at if span.exit_at is not None else span.end
    body = []
    for raw in lines[span.start + 1 : stop]:
        stripped = raw.strip()
        if stripped and not stripped.startswith(SEPARATOR):
            body.append(raw if _indented(raw) else " " + stripped)
    return body


def parse_blocks(text: str) -> list[Block]:
    """Split FRR config text into top-level blocks; ``!``, ``exit`` and banners dropped."""
    lines = config_lines(text)
    return [(lines[sp.start].strip(), *body_of(lines, sp)) for sp in spans(lines)]


def af_of(stripped: str, current: str | None) -> str | None:
    """The address family a body line leaves open after it (FRR's node walk)."""
    if stripped.startswith("address-family "):
        # FRR reads "address-family ipv4" as ipv4 unicast (and prints it so)
        return _AF_ALIASES.get(stripped, stripped)
    if stripped == "exit-address-family":
        return None
    return current


def line_keys(blocks: Iterable[Block]) -> frozenset[tuple[str, ...]]:
    """Every configured line with its context path (what frr-reload compares).

    A line belongs to the address family opened before it until ``exit-address-family``
    or the next ``address-family`` (indentation is not what FRR goes by); ASNs are keyed
    in asplain, so ``router bgp 1.1`` and ``router bgp 65537`` are one block.
    """
    keys: set[tuple[str, ...]] = set()
    for block in blocks:
        header = header_key(block[0].strip())
        keys.add((header,))
        sub: str | None = None
        for line in block[1:]:
            s = " ".join(line.split())
            opened = af_of(s, sub)
            if s.startswith("address-family ") or s == "exit-address-family":
                if opened is not None:
                    keys.add((header, opened))
            elif sub is not None:
                keys.add((header, sub, s))
            else:
                keys.add((header, s))
            sub = opened
    return frozenset(keys)


def header_key(header: str) -> str:
    parts = header.split()
    if parts[:2] == ["router", "bgp"] and len(parts) >= 3:
        asn = parse_asn(parts[2])
        if asn is not None:
            return " ".join(["router", "bgp", str(asn), *parts[3:]])
    return " ".join(parts)


def parse_asn(text: str) -> int | None:
    """An AS number in asplain (``65537``) or asdot (``1.1``, RFC 5396); None otherwise."""
    try:
        return checked_asn(text)
    except BadInputError:
        return None


def bgp_asn_of(blocks: Iterable[Block]) -> int | None:
    """The ASN (asplain) of the default-VRF ``router bgp`` block, if there is one."""
    for block in blocks:
        parts = block[0].split()
        if parts[:2] == ["router", "bgp"] and len(parts) == 3:
            asn = parse_asn(parts[2])
            if asn is None:
                raise ConfigError(f"FRR config: {block[0].strip()!r} names no AS number")
            return asn
    return None


def rmap_delay_set(blocks: Iterable[Block]) -> bool:
    """Whether the config sets bgpd's route-map delay timer (absent: FRR's default)."""
    return any(b[0].startswith("bgp route-map delay-timer") for b in blocks)


@dataclass(frozen=True, slots=True)
class FrrConfig:
    """A running config as FRR reads it: its text, top-level blocks and line keys."""

    text: str
    blocks: tuple[Block, ...]
    keys: frozenset[tuple[str, ...]]

    @classmethod
    def read(cls, text: str | None) -> FrrConfig:
        blocks = tuple(parse_blocks(text or ""))
        return cls(text or "", blocks, line_keys(blocks))

    def has(self, line: str) -> bool:
        """Whether the top-level line (e.g. a static route) is configured."""
        return (line,) in self.keys

    @property
    def bgp_asn(self) -> int | None:
        """The default VRF's ``router bgp`` AS (ConfigError when it names none)."""
        return bgp_asn_of(self.blocks)

    @property
    def rmap_delay_set(self) -> bool:
        return rmap_delay_set(self.blocks)
