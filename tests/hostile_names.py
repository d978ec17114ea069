"""Interface names as a hostile or unlucky user can make them, by character class.

The kernel takes any 1..15 bytes except '/', ':', NUL and whitespace (its isspace(), which
counts 0xa0), and not '.', '..', 'all' or 'default' (checked on kernel 6.18 with
``ip link add name``). ACCEPTED are names the kernel takes; REFUSED names it does not.
Shared by the pure sweep (tests/unit/test_hostile_names.py) and the namespace test
(tests/lab/test_hostile_names.py).
"""

from __future__ import annotations

from typing import Final

# Every printable ASCII character the kernel accepts that means something to a shell, nft,
# FRR's CLI, systemd or a config parser, in the middle, at the end and at the start.
SPECIAL: Final = "\"';$`{}#\\*=-.@~!?&|<>()[],+^"
ACCEPTED: Final[tuple[str, ...]] = (
    'x"accept#',  # the audit's nft injection: `oifname "x" accept` and a comment
    "x;accept",
    "x}accept{",
    *(f"a{c}b" for c in SPECIAL),
    *(f"ab{c}" for c in SPECIAL),
    *(f"{c}ab" for c in "-#!.*\"'$"),
    "*",  # nft: an all-wildcard string unless escaped
    "a\\*",  # nft: '\*' at the end drops every backslash
    "--help",  # an option to every tool that takes it as argv
    "-a;$'{}#=@~!\\é",  # 15 bytes of most classes at once
    '-a;${}#=@~!\\"é',  # and without the ' that FRR's staticd dies on
    "abcdefghijklmno",  # 15 bytes: the longest name
    "éééééééa",  # 15 bytes of UTF-8
    "ünï-cödé",
    "a\x01b",  # control characters: the kernel takes them
    "a\x1bb",
    "a\x7fb",
    "a\x1cb",  # characters Python's splitlines() and strip() take for line breaks/blanks
    "a\x85b",
    "a\u2028b",
    "tag",  # FRR: words of the static route command
    "vrf",
    "10",
    "n",  # FRR: case-sensitive keyword prefixes ("N" is Null0, "n" is not)
    "N",
    "Null0",
    "null0x",  # staticd: anything starting with null0, any case, is Null0
    "bl",
    "BLACK",
    "re",
    "Reject",  # staticd refuses blackhole/reject in any case as an interface
    "blackholes",
    "1.2.3.4",  # FRR: a gateway address, not an interface
    "1.2.3",
    "01.2.3.4",
)
REFUSED: Final[tuple[str, ...]] = (
    "",
    ".",
    "..",
    "all",
    "default",
    "a/b",
    "a:b",
    "a b",
    "a\tb",
    "a\nb",
    "a\rb",
    "a\vb",
    "a\fb",
    "a\xa0b",  # UTF-8 c2 a0: the kernel's isspace(0xa0)
    "à",  # UTF-8 c3 a0, the same byte
    "abcdefghijklmnop",  # 16 bytes
    "ééééééééa",  # 17 bytes of UTF-8
    "a%b",  # the kernel's name template (eth%d)
)
# What the collector makes of a name that is not UTF-8 (decoded with replacement) and what
# os.fsdecode makes of one (a surrogate): meshpath cannot name either exactly.
UNREPRESENTABLE: Final[tuple[str, ...]] = ("a\ufffdb", "a\udcffb")
# One or two of each class for the namespace test, which spends about two seconds a name
# (MESHPATH_HOSTILE_NAMES=all runs it over every name of ACCEPTED).
LAB_SAMPLE: Final[tuple[str, ...]] = (
    'x"accept#',
    "x;accept",
    'a"b',
    "a'b",
    "a;b",
    "a$b",
    "a#b",
    "a\\b",
    "a*b",
    "a?b",
    "ab*",
    "ab\\",
    "ab?",
    "-ab",
    "#ab",
    "!ab",
    "*",
    "a\\*",
    "--help",
    "-a;$'{}#=@~!\\é",
    '-a;${}#=@~!\\"é',
    "abcdefghijklmno",
    "éééééééa",
    "a\x01b",
    "a\u2028b",
    "N",
    "n",
    "null0x",
    "Reject",
    "1.2.3.4",
    "1.2.3",
)
