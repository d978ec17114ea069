"""Which ``.network`` file systemd-networkd applies to the tunnel (pure).

Read the way systemd reads them (systemd.syntax(7), systemd.network(5), net-condition.c):
sections in brackets; ``#`` and ``;`` start comment lines (only at the start of a line:
a ``#`` later in a line is part of the value); a trailing backslash joins the next line;
``Name=`` in ``[Match]`` is a whitespace-separated list of fnmatch(3) globs, a leading
``!`` inverts the whole assignment, assignments add up and an empty one resets the list.
The first file (in systemd's order) that matches an interface is the one applied.

meshpath only puts its drop-in on a file when it can tell that file applies to the
tunnel and to nothing else: its ``Name=`` globs match the tunnel, no other link of the
host, and it has no other ``[Match]`` condition (Type=, Driver=, Host=, ...) that meshpath
cannot judge. Anything else is a note, and the routes are kept by a systemd unit instead.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class NetworkMatch:
    """The ``[Match]`` section of a ``.network`` file, as systemd-networkd keeps it."""

    names: tuple[str, ...] = ()  # globs, each prefixed with "!" when inverted
    others: tuple[str, ...] = ()  # other conditions that are set (keys)

    def names_match(self, ifname: str) -> bool:
        """net_condition_test_strv: no pattern passes; an inverted match fails; with
        any positive pattern, one must match."""
        positive = False
        matched = False
        for pattern in self.names:
            inverted = pattern.startswith("!")
            hit = glob_match(pattern[1:] if inverted else pattern, ifname)
            if inverted and hit:
                return False
            positive = positive or not inverted
            matched = matched or (hit and not inverted)
        return matched if positive else True

    def names_it(self, ifname: str) -> bool:
        """Whether a positive ``Name=`` glob picks ``ifname`` (not only a catch-all)."""
        return self.names_match(ifname) and any(not p.startswith("!") for p in self.names)


def logical_lines(text: str) -> Iterator[str]:
    """Lines as systemd's parser sees them: comments dropped, continuations joined."""
    pending = ""
    for raw in re.split(r"\r\n|\r|\n", text.removeprefix("\ufeff")):
        if raw.strip().startswith(("#", ";")):
            continue  # a comment inside a continuation is skipped, the line goes on
        if _continues(raw):
            pending += raw[:-1] + " "
            continue
        joined, pending = (pending + raw).strip(), ""
        if joined:
            yield joined
    if pending.strip():
        yield pending.strip()


def _continues(line: str) -> bool:
    """A line ends in an unescaped backslash (``\\\\`` at the end is a literal one)."""
    tail = len(line) - len(line.rstrip("\\"))
    return tail % 2 == 1


def parse_match(text: str) -> NetworkMatch:
    """The effective ``[Match]`` conditions of a ``.network`` file's text."""
    names: list[str] = []
    others: dict[str, bool] = {}
    section = None
    for line in logical_lines(text):
        if line.startswith("[") and line.endswith("]"):
            section = line[1:-1]
            continue
        key, sep, value = line.partition("=")
        if section != "Match" or not sep:
            continue
        key, value = key.strip(), value.strip()
        if key == "Name":
            names = _assign_names(names, value)
        else:
            others[key] = bool(value)  # an empty assignment resets the condition
    return NetworkMatch(tuple(names), tuple(k for k, on in others.items() if on))


def _assign_names(names: list[str], value: str) -> list[str]:
    if not value:
        return []
    inverted = value.startswith("!")
    words = (value[1:] if inverted else value).split()
    return names + [f"!{w}" if inverted else w for w in words]


def glob_match(pattern: str, name: str) -> bool:
    """fnmatch(3) without flags: ``*``, ``?``, ``[...]`` (``!`` or ``^`` negates) and
    ``\\`` quoting the next character."""
    return re.fullmatch(_glob_regex(pattern), name, flags=re.DOTALL) is not None


def _glob_regex(pattern: str) -> str:
    out: list[str] = []
    i = 0
    while i < len(pattern):
        char = pattern[i]
        if char == "\\" and i + 1 < len(pattern):
            out.append(re.escape(pattern[i + 1]))
            i += 2
            continue
        if char == "[":
            bracket, i = _bracket(pattern, i)
            out.append(bracket)
            continue
        out.append({"*": ".*", "?": "."}.get(char, re.escape(char)))
        i += 1
    return "".join(out)


def _bracket(pattern: str, start: int) -> tuple[str, int]:
    """A bracket expression at ``start`` as a regex class; an unclosed '[' is literal."""
    i = start + 1
    negate = i < len(pattern) and pattern[i] in "!^"
    i += negate
    members: list[str] = []
    first = True
    while i < len(pattern) and (pattern[i] != "]" or first):
        members.append(pattern[i])
        first = False
        i += 1
    if i >= len(pattern):
        return re.escape("["), start + 1
    body = "".join("\\" + c if c in "\\^[]" else c for c in members)
    return f"[{'^' if negate else ''}{body}]", i + 1


def choose(
    files: Sequence[tuple[str, str]], tunnel: str, other_links: Sequence[str]
) -> tuple[str | None, tuple[str, ...]]:
    """The file (name) to put meshpath's drop-in on, and notes; ``files`` are (name, text)
    in systemd's order (the same name in a higher-priority directory already won, masked
    files already dropped)."""
    for name, text in files:
        match = parse_match(text)
        if not match.names and match.others:
            continue  # chosen by type, driver, host...: written for other interfaces
        if not match.names_match(tunnel):
            continue
        reason = _unusable(match, tunnel, other_links)
        if reason is None:
            return name, ()
        return None, (
            f"{name} applies to {tunnel} but {reason}: meshpath keeps the routes with a "
            "systemd unit instead of a drop-in there",
        )
    return None, ()


def _unusable(match: NetworkMatch, tunnel: str, other_links: Sequence[str]) -> str | None:
    if match.others:
        return f"it also matches on {', '.join(k + '=' for k in match.others)}"
    if not match.names_it(tunnel):
        return "it matches every interface"
    shared = [link for link in other_links if link != tunnel and match.names_match(link)]
    if shared:
        return f"it also matches {', '.join(shared[:3])}"
    return None
