"""I/O edge: the kernel's change notifications, as file descriptors to block on.

Two netlink sockets, opened inside the watched namespace (they stay bound to it):

* ``NETLINK_ROUTE`` joined to the rtnetlink multicast groups for links, addresses, IPv4 and
  IPv6 routes (every table) and policy rules, plus the netconf groups that announce
  ``forwarding`` and ``rp_filter`` changes;
* ``NETLINK_NETFILTER`` joined to ``NFNLGRP_NFTABLES``: every nftables ruleset change (what
  ``nft monitor`` prints), without a subprocess.

FRR announces nothing: :func:`bgp_probe` is the poll's cheap view of its BGP sessions.

The watch loop only needs to know *that* something changed: :meth:`ChangeSocket.drain`
reads what is queued and counts the messages. When a burst overflows the socket buffer the
kernel drops the rest and the next read fails with ENOBUFS; that is counted as one change
and reading goes on (the evaluation re-reads the whole state anyway).
"""

from __future__ import annotations

import errno
import socket
from collections.abc import Iterable
from typing import Final

from meshpath.collect.frr import FRR_RUN_DIR, decode_show, running_daemons, vtysh_argv
from meshpath.collect.netlink import split_messages
from meshpath.collect.netns import inside_netns
from meshpath.errors import EnvironmentProblem, PrivilegeError
from meshpath.runner import Runner
from meshpath.state.model import FrrState
from meshpath.watch.evaluate import PeerState, peer_states

NETLINK_ROUTE: Final = 0
NETLINK_NETFILTER: Final = 12
SOL_NETLINK: Final = 270
NETLINK_ADD_MEMBERSHIP: Final = 1

# rtnetlink multicast groups (linux/rtnetlink.h, enum rtnetlink_groups).
RTNLGRP_LINK: Final = 1
RTNLGRP_IPV4_IFADDR: Final = 5
RTNLGRP_IPV4_ROUTE: Final = 7
RTNLGRP_IPV4_RULE: Final = 8
RTNLGRP_IPV6_IFADDR: Final = 9
RTNLGRP_IPV6_ROUTE: Final = 11
RTNLGRP_IPV6_RULE: Final = 19
RTNLGRP_IPV4_NETCONF: Final = 24
RTNLGRP_IPV6_NETCONF: Final = 25
ROUTE_GROUPS: Final = (
    RTNLGRP_LINK,
    RTNLGRP_IPV4_IFADDR,
    RTNLGRP_IPV4_ROUTE,
    RTNLGRP_IPV4_RULE,
    RTNLGRP_IPV6_IFADDR,
    RTNLGRP_IPV6_ROUTE,
    RTNLGRP_IPV6_RULE,
    RTNLGRP_IPV4_NETCONF,
    RTNLGRP_IPV6_NETCONF,
)
NFNLGRP_NFTABLES: Final = 7  # linux/netfilter/nfnetlink.h
_RECV_SIZE: Final = 1 << 16
_RCVBUF: Final = 1 << 20
_MAX_READS: Final = 256  # per drain: a flood cannot keep the loop from its timers


class ChangeSocket:
    """A netlink socket joined to multicast ``groups`` (created where the caller is)."""

    def __init__(self, name: str, protocol: int, groups: Iterable[int]) -> None:
        self.name = name
        self._sock = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, protocol)
        try:
            self._sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, _RCVBUF)
            self._sock.bind((0, 0))
            for group in groups:
                self._sock.setsockopt(SOL_NETLINK, NETLINK_ADD_MEMBERSHIP, group)
        except OSError as exc:
            self._sock.close()
            if exc.errno == errno.EPERM:
                raise PrivilegeError(
                    f"listening to {name} changes needs root (CAP_NET_ADMIN); run with sudo"
                ) from exc
            raise EnvironmentProblem(f"cannot listen to {name} changes: {exc.strerror}") from exc
        self._sock.setblocking(False)

    def fileno(self) -> int:
        return self._sock.fileno()

    def close(self) -> None:
        self._sock.close()

    def drain(self) -> int:
        """Read what is queued; the number of change messages (an overflow counts one)."""
        seen = 0
        for _ in range(_MAX_READS):
            try:
                buf = self._sock.recv(_RECV_SIZE)
            except BlockingIOError:
                break
            except OSError as exc:
                if exc.errno != errno.ENOBUFS:
                    raise
                seen += 1  # the kernel dropped an unknown number of messages
                continue
            seen += sum(1 for _ in split_messages(buf))
        return seen


def open_sources(netns: str | None) -> tuple[ChangeSocket, ChangeSocket]:
    """The rtnetlink and nftables change sockets of ``netns`` (or of this namespace)."""
    with inside_netns(netns):
        route = ChangeSocket("rtnetlink", NETLINK_ROUTE, ROUTE_GROUPS)
        try:
            nft = ChangeSocket("nftables", NETLINK_NETFILTER, (NFNLGRP_NFTABLES,))
        except BaseException:
            route.close()
            raise
    return route, nft


def bgp_probe(runner: Runner, netns: str | None) -> tuple[PeerState, ...]:
    """The BGP sessions as one ``show bgp summary json`` shows them (state and prefixes
    sent per peer): the FRR poll's cheap view, one vtysh run, none when bgpd is not running.

    The evaluation reads FRR fully (collect_frr); this only detects that something changed.
    """
    directory = FRR_RUN_DIR / netns if netns else FRR_RUN_DIR
    if "bgpd" not in running_daemons(directory):
        return ()
    command = "show bgp summary json"
    done = runner.run(vtysh_argv(netns, command), check=False, timeout=10)
    summary, _problem = decode_show(command, done.stdout) if done.ok else (None, None)
    if summary is None:
        return ()
    return peer_states(FrrState(available=True, running=True, bgp_summary=summary))
