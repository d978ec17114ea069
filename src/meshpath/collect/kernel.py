"""The kernel's tables over rtnetlink: links, addresses, every route table, policy rules."""

from __future__ import annotations

import socket
from typing import NamedTuple

from meshpath.collect import rtnl_parse
from meshpath.collect.netlink import (
    RTM_GETADDR,
    RTM_GETLINK,
    RTM_GETRULE,
    RtnlSocket,
)
from meshpath.state.model import Address, Link, Route, Rule

FAMILIES = (socket.AF_INET, socket.AF_INET6)


class KernelState(NamedTuple):
    links: tuple[Link, ...]
    addresses: tuple[Address, ...]
    routes: tuple[Route, ...]
    rules: tuple[Rule, ...]


def read_links(sock: RtnlSocket) -> tuple[Link, ...]:
    parsed = [rtnl_parse.parse_link(b, s, e) for b, _t, s, e in sock.dump(RTM_GETLINK, 0)]
    return rtnl_parse.resolve_masters(parsed)


def read_addresses(sock: RtnlSocket, names: dict[int, str]) -> tuple[Address, ...]:
    return tuple(
        rtnl_parse.parse_address(b, s, e, names)
        for family in FAMILIES
        for b, _t, s, e in sock.dump(RTM_GETADDR, family)
    )


def read_routes(sock: RtnlSocket, names: dict[int, str]) -> tuple[Route, ...]:
    """Every route of every table (main, local, default, 65743, ...), IPv4 then IPv6."""
    parser = rtnl_parse.RouteParser(names)
    for family in FAMILIES:
        sock.dump_routes(family, parser)
    return tuple(parser.routes)


def read_rules(sock: RtnlSocket) -> tuple[Rule, ...]:
    return tuple(
        rtnl_parse.parse_rule(b, s, e)
        for family in FAMILIES
        for b, _t, s, e in sock.dump(RTM_GETRULE, family)
    )


def read_kernel(sock: RtnlSocket) -> KernelState:
    links = read_links(sock)
    names = {link.index: link.name for link in links}
    return KernelState(
        links=links,
        addresses=read_addresses(sock, names),
        routes=read_routes(sock, names),
        rules=read_rules(sock),
    )
