"""Connections the kernel's NAT still translates, read from ``/proc/net/nf_conntrack`` (pure).

A line looks like (one line; the original direction's tuple first, then the reply's)::

    ipv4 2 tcp 6 431999 ESTABLISHED src=100.64.12.189 dst=10.0.1.50 sport=41234
    dport=3000 src=10.0.1.50 dst=10.0.1.2 sport=3000 dport=41234 [ASSURED] mark=0 use=2

A connection is source-translated (masqueraded) when the reply goes to another address
than the original source. Why it matters: the NAT hooks are unregistered with the last nat
chain, and a translated connection still open then loses its translation mid-flow.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable
from typing import Final

# TCP states after which no packet of the connection needs the translation any more.
CLOSED_TCP: Final = frozenset({"TIME_WAIT", "CLOSE"})


def _tuples(tokens: Iterable[str]) -> list[dict[str, str]]:
    """The original and reply tuples: each ``src=`` starts a new one."""
    out: list[dict[str, str]] = []
    for tok in tokens:
        key, sep, value = tok.partition("=")
        if not sep or key not in ("src", "dst", "sport", "dport"):
            continue
        if key == "src":
            out.append({})
        if out:
            out[-1][key] = value
    return out


def _in(addr: str, nets: list[ipaddress.IPv4Network | ipaddress.IPv6Network]) -> bool:
    try:
        ip = ipaddress.ip_address(addr)
    except ValueError:
        return False
    return any(ip.version == n.version and ip in n for n in nets)


def open_translated(text: str, sources: Iterable[str]) -> list[str]:
    """Open TCP connections from ``sources`` (prefixes) whose source is translated, one
    line each (``100.64.12.189:41234 -> 10.0.1.50:3000 ESTABLISHED as 10.0.1.2``).

    Only TCP: a Worker's connection through Mesh is TCP, and a UDP entry has no state that
    says it is finished (it would hold a wait for its whole timeout)."""
    nets = [ipaddress.ip_network(s, strict=False) for s in sources]
    found = []
    for line in text.splitlines():
        tokens = line.split()
        if len(tokens) < 6 or tokens[2] != "tcp" or tokens[5] in CLOSED_TCP:
            continue
        tuples = _tuples(tokens[6:])
        if len(tuples) < 2:
            continue
        orig, reply = tuples[0], tuples[1]
        src = orig.get("src", "")
        if reply.get("dst") == src or not _in(src, nets):
            continue
        found.append(
            f"{src}:{orig.get('sport')} -> {orig.get('dst')}:{orig.get('dport')} "
            f"{tokens[5]} as {reply.get('dst')}"
        )
    return found
