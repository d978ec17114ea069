"""Which leg of a multipath route the kernel takes, when that can be known.

The kernel's steps (net/ipv4/fib_semantics.c, net/ipv4/route.c, net/core/flow_dissector.c):

* :func:`upper_bounds` — ``fib_rebalance``: each usable leg gets the bound
  ``DIV_ROUND_CLOSEST(cumulative weight << 31, total weight) - 1``; a dead leg (or a
  linkdown one where ``ignore_routes_with_linkdown`` is set) gets -1 and is never taken.
* :func:`multipath_hash` — ``fib_multipath_hash``: policy 0 hashes the source and
  destination addresses, policy 1 the ports and protocol too, in a ``struct flow_keys``
  made symmetric (``__flow_hash_consistentify``) and hashed with SipHash-2-4 keyed by
  ``net.ipv4.fib_multipath_hash_seed`` (``fib_multipath_hash_construct_key``), shifted
  right by one.
* :func:`select_leg` — ``fib_select_multipath``: the first leg whose bound the hash does
  not exceed; a locally generated packet with a source address prefers a leg whose own
  source address is that one (a score: source match 2, within the hash 1).

The seed is random per boot unless the sysctl is set (it exists since Linux 6.11), so with
no seed only the set of legs is known: :func:`predict` says so by returning None.
"""

from __future__ import annotations

import struct
from collections.abc import Sequence
from typing import Final, NamedTuple

_M64: Final = (1 << 64) - 1
_FLOW_KEYS_HASHED: Final = 48  # bytes of struct flow_keys hashed for IPv4 (basic .. addrs)
# For IPv6: the 36 bytes before the addresses, both 16-byte addresses, and the struct's
# tail padding (sizeof(struct flow_keys) is 80, aligned for siphash; flow_keys_hash_length).
_FLOW_KEYS_HASHED6: Final = 72
_PROTO_AT: Final = 2  # flow_dissector_key_basic.ip_proto
_PORTS_AT: Final = 28  # flow_dissector_key_ports, from the start of the hashed bytes
_ADDRS_AT: Final = 36  # flow_dissector_key_addrs.v4addrs
HASHABLE_POLICIES: Final = (0, 1)


class LegInput(NamedTuple):
    """One leg as the selection sees it."""

    usable: bool
    weight: int
    saddr: int  # the leg's own source address (its device's address), 0 if none


def upper_bounds(legs: Sequence[LegInput]) -> list[int]:
    """``fib_rebalance``: the hash bound of each leg (-1: never taken)."""
    total = sum(leg.weight for leg in legs if leg.usable)
    bounds, acc = [], 0
    for leg in legs:
        if not leg.usable or not total:
            bounds.append(-1)
            continue
        acc += leg.weight
        bounds.append(((acc << 31) + total // 2) // total - 1)
    return bounds


def _rotl(x: int, b: int) -> int:
    return ((x << b) | (x >> (64 - b))) & _M64


def siphash24(k0: int, k1: int, data: bytes) -> int:
    """SipHash-2-4 (the kernel's ``siphash()``), 64 bits."""
    v = [k0 ^ 0x736F6D6570736575, k1 ^ 0x646F72616E646F6D,
         k0 ^ 0x6C7967656E657261, k1 ^ 0x7465646279746573]  # fmt: skip

    def rounds(n: int) -> None:
        for _ in range(n):
            v[0] = (v[0] + v[1]) & _M64
            v[1] = _rotl(v[1], 13) ^ v[0]
            v[0] = _rotl(v[0], 32)
            v[2] = (v[2] + v[3]) & _M64
            v[3] = _rotl(v[3], 16) ^ v[2]
            v[0] = (v[0] + v[3]) & _M64
            v[3] = _rotl(v[3], 21) ^ v[0]
            v[2] = (v[2] + v[1]) & _M64
            v[1] = _rotl(v[1], 17) ^ v[2]
            v[2] = _rotl(v[2], 32)

    end = len(data) - len(data) % 8
    for i in range(0, end, 8):
        (m,) = struct.unpack_from("<Q", data, i)
        v[3] ^= m
        rounds(2)
        v[0] ^= m
    last = (len(data) & 0xFF) << 56 | int.from_bytes(data[end:], "little")
    v[3] ^= last
    rounds(2)
    v[0] ^= last
    v[2] ^= 0xFF
    rounds(4)
    return v[0] ^ v[1] ^ v[2] ^ v[3]


def multipath_hash(
    seed: int, policy: int, saddr: int, daddr: int, proto: int = 0, sport: int = 0, dport: int = 0
) -> int:
    """``fib_multipath_hash`` for policy 0 or 1 (addresses as host integers)."""
    # The kernel compares the big-endian words as they sit in memory, read little-endian.
    src = int.from_bytes(saddr.to_bytes(4, "big"), "little")
    dst = int.from_bytes(daddr.to_bytes(4, "big"), "little")
    if dst < src:
        src, dst = dst, src
    keys = _flow_keys(_FLOW_KEYS_HASHED, policy, proto if policy == 1 else 0, sport, dport)
    struct.pack_into("<II", keys, _ADDRS_AT, src, dst)
    return _keyed_hash(seed, keys)


def multipath_hash6(
    seed: int, policy: int, saddr: int, daddr: int, proto: int = 0, sport: int = 0, dport: int = 0
) -> int:
    """``rt6_multipath_hash`` without a packet (``ip -6 route get``): policy 0 hashes the
    addresses, the flow label (0 here) *and the protocol* (unlike IPv4's policy 0), policy 1
    the ports too; the same keyed SipHash as IPv4 over the IPv6 ``struct flow_keys`` (36
    bytes, the two 16-byte addresses, 4 bytes of padding), made symmetric by comparing the
    addresses as bytes (memcmp) and the ports as IPv4 does."""
    if daddr < saddr:
        saddr, daddr = daddr, saddr
    keys = _flow_keys(_FLOW_KEYS_HASHED6, policy, proto, sport, dport)
    keys[_ADDRS_AT : _ADDRS_AT + 16] = saddr.to_bytes(16, "big")
    keys[_ADDRS_AT + 16 : _ADDRS_AT + 32] = daddr.to_bytes(16, "big")
    return _keyed_hash(seed, keys)


def _flow_keys(size: int, policy: int, proto: int, sport: int, dport: int) -> bytearray:
    """The hashed part of ``struct flow_keys`` but the addresses: the protocol, and with
    policy 1 the ports, ordered as ``__flow_hash_consistentify`` orders them (compared as
    the big-endian halfwords sit in memory, read little-endian)."""
    keys = bytearray(size)
    keys[_PROTO_AT] = proto & 0xFF
    if policy == 1:
        psrc, pdst = (int.from_bytes(p.to_bytes(2, "big"), "little") for p in (sport, dport))
        struct.pack_into("<HH", keys, _PORTS_AT, min(psrc, pdst), max(psrc, pdst))
    return keys


def _keyed_hash(seed: int, keys: bytearray) -> int:
    """``fib_multipath_hash_from_keys``: SipHash keyed by the seed twice, 32 bits, never 0,
    shifted right by one."""
    key = (seed << 32) | seed
    value = siphash24(key, key, bytes(keys)) & 0xFFFFFFFF
    return (value or 1) >> 1


def select_leg(legs: Sequence[LegInput], value: int, saddr: int = 0) -> int | None:
    """``fib_select_multipath``: the index of the leg taken for hash ``value``."""
    best, score = None, -1
    for i, (leg, bound) in enumerate(zip(legs, upper_bounds(legs), strict=True)):
        if bound == -1:
            continue
        leg_score = (2 if saddr and leg.saddr == saddr else 0) + (value <= bound)
        if leg_score > score:
            best, score = i, leg_score
            if leg_score == 3 or (not saddr and leg_score == 1):
                return i
    return best


def predict(
    legs: Sequence[LegInput],
    seed: int | None,
    policy: int,
    flow: tuple[int, int, int, int, int],
    saddr_pref: int = 0,
) -> int | None:
    """The leg the kernel takes for ``flow`` (saddr, daddr, proto, sport, dport), or None
    when that cannot be known (no seed, or a hash policy not modelled)."""
    if not seed or policy not in HASHABLE_POLICIES:
        return None
    saddr, daddr, proto, sport, dport = flow
    return select_leg(legs, multipath_hash(seed, policy, saddr, daddr, proto, sport, dport),
                      saddr_pref)  # fmt: skip
