"""A small rtnetlink dumper: one NETLINK_ROUTE socket, dump requests, message framing.

Why raw netlink and not ``ip -j`` or pyroute2: measured on 1M routes (bench/README.md),
``ip -j route show table all`` + ``json.loads`` costs seconds and hundreds of MiB, pyroute2
far more; reading the kernel's own messages with ``struct`` is both faster and leaner.

This module only frames bytes (request out, messages in); what a message *means* lives in
:mod:`meshpath.collect.rtnl_parse`, which is pure and fed recorded bytes by the unit tests.
"""

from __future__ import annotations

import socket
import struct
from collections.abc import Iterator
from typing import Final

from meshpath.collect.rtnl_parse import NetlinkError, RouteParser, netlink_error

__all__ = ["NetlinkError", "RtnlSocket", "dump_request", "messages", "split_messages"]

NETLINK_ROUTE: Final = 0
NLMSG_ERROR: Final = 2
NLMSG_DONE: Final = 3
NLM_F_REQUEST: Final = 0x1
NLM_F_DUMP: Final = 0x300  # NLM_F_ROOT | NLM_F_MATCH

RTM_GETLINK: Final = 18
RTM_GETADDR: Final = 22
RTM_GETROUTE: Final = 26
RTM_GETRULE: Final = 34

_NLMSGHDR = struct.Struct("=IHHII")  # len, type, flags, seq, pid
_HDR_UNPACK = struct.Struct("=IH").unpack_from  # len, type: all the framing needs
# Per-request family headers: ifinfomsg (16 bytes), ifaddrmsg (8), rtmsg (12), fib_rule_hdr (12).
_REQUEST_HEADER_LEN: Final = {RTM_GETLINK: 16, RTM_GETADDR: 8, RTM_GETROUTE: 12, RTM_GETRULE: 12}
_RECV_SIZE: Final = 1 << 20  # the kernel fills up to ~32 KiB per read when the buffer allows


Message = tuple[bytes, int, int, int]  # (buffer, nlmsg_type, payload start, message end)


def dump_request(msg_type: int, family: int, seq: int) -> bytes:
    """The bytes of an rtnetlink dump request for ``family`` (AF_INET, AF_INET6, AF_UNSPEC)."""
    body = bytes([family]) + bytes(_REQUEST_HEADER_LEN[msg_type] - 1)
    header = _NLMSGHDR.pack(16 + len(body), msg_type, NLM_F_REQUEST | NLM_F_DUMP, seq, 0)
    return header + body


def split_messages(buf: bytes) -> Iterator[tuple[int, int, int]]:
    """(type, payload start, end) of each netlink message in one received buffer."""
    off = 0
    size = len(buf)
    unpack = _HDR_UNPACK
    while off + 16 <= size:
        length, mtype = unpack(buf, off)
        if length < 16:
            raise NetlinkError(f"malformed netlink message (length {length}) at offset {off}")
        yield mtype, off + 16, off + length
        off += (length + 3) & ~3


class RtnlSocket:
    """A NETLINK_ROUTE socket. Open it inside the namespace you want to read: it stays there."""

    def __init__(self) -> None:
        self._sock = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, NETLINK_ROUTE)
        self._sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 20)
        self._sock.bind((0, 0))
        self._seq = 0

    def __enter__(self) -> RtnlSocket:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self._sock.close()

    def dump_raw(self, msg_type: int, family: int) -> Iterator[bytes]:
        """Every buffer the kernel sends for one dump, up to and including NLMSG_DONE."""
        self._seq += 1
        self._sock.send(dump_request(msg_type, family, self._seq))
        recv = self._sock.recv
        while True:
            buf = recv(_RECV_SIZE)
            yield buf
            if _ends_dump(buf):
                return

    def dump_routes(self, family: int, parser: RouteParser) -> None:
        """One route dump straight into ``parser`` (the hot path: no per-message framing)."""
        self._seq += 1
        self._sock.send(dump_request(RTM_GETROUTE, family, self._seq))
        recv = self._sock.recv
        feed = parser.feed
        while not feed(recv(_RECV_SIZE)):
            pass

    def dump(self, msg_type: int, family: int) -> Iterator[Message]:
        """Each data message of one dump, framed; an NLMSG_ERROR raises NetlinkError."""
        self._seq += 1
        self._sock.send(dump_request(msg_type, family, self._seq))
        recv = self._sock.recv
        while True:
            buf = recv(_RECV_SIZE)
            for mtype, start, end in split_messages(buf):
                if mtype == NLMSG_DONE:
                    return
                if mtype == NLMSG_ERROR:
                    raise netlink_error(buf, start)
                yield buf, mtype, start, end


def messages(buf: bytes) -> Iterator[Message]:
    """The data messages of one buffer, raising on NLMSG_ERROR and skipping NLMSG_DONE."""
    for mtype, start, end in split_messages(buf):
        if mtype == NLMSG_ERROR:
            raise netlink_error(buf, start)
        if mtype != NLMSG_DONE:
            yield buf, mtype, start, end


def _ends_dump(buf: bytes) -> bool:
    # NLMSG_DONE (or an error) is always the last message of the last buffer of a dump.
    last = None
    for mtype, _start, _end in split_messages(buf):
        last = mtype
    return last in (NLMSG_DONE, NLMSG_ERROR) or last is None
