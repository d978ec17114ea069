"""Issue #12, model items 12-14, held to the kernel's own answers on recorded hosts.

tests/data/real/model/*.json are multi-WAN hosts built in a namespace (record.py): a
weighted multipath default over wan1/wan2, a LAN, rules on uid, ipproto/dport and tos,
and the multipath hash seed set (31337; policy 1 with 271828) or random (0); with every
query ``ip -j route get`` answered there.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import msgspec
import pytest

from meshpath.cli import main
from meshpath.sim import Fib, FlowKey
from meshpath.sim.multipath import LegInput, select_leg, siphash24, upper_bounds
from meshpath.sim.route import route_packet
from meshpath.sim.values import LEG_BY_HASH, LEG_BY_UNKNOWN
from meshpath.state import Snapshot, codec

MODEL = Path(__file__).resolve().parents[1] / "data" / "real" / "model"
HOSTS = ("multiwan-seed", "multiwan-l4", "multiwan-random")
PROTO = {"tcp": 6, "udp": 17}


def host(name: str) -> tuple[Snapshot, list[tuple[str, Any]]]:
    doc = json.loads((MODEL / f"{name}.json").read_text())
    snap = codec.loads(json.dumps(doc["snapshot"]))
    return snap, [(q, a) for q, a in doc["answers"]]


def packet_of(query: str) -> FlowKey:
    words = query.split()
    opts = dict(zip(words[3::2], words[4::2], strict=True))
    return FlowKey(
        dst=words[2], src=opts.get("from"), iif=opts.get("iif"), oif=opts.get("oif"),
        tos=int(opts.get("tos", "0"), 16), proto=PROTO[opts.get("ipproto", "udp")],
        sport=int(opts.get("sport", "0")), dport=int(opts.get("dport", "0")),
        uid=int(opts["uid"]) if "uid" in opts else None,
    )  # fmt: skip


ERRNO = {"Invalid argument": "EINVAL", "No route to host": "EHOSTUNREACH"}


def agrees(fib: Fib, query: str, kernel: Any) -> bool:
    d = route_packet(fib, packet_of(query))
    if isinstance(kernel, str):
        return d.error == ERRNO[kernel]
    if d.error is not None or d.outcome.replace("forward", "unicast").replace(
        "output", "unicast"
    ) != kernel.get("type", "unicast"):
        return False
    gateways = {(leg.dev, leg.gateway) for leg in d.legs}
    if d.leg_by == LEG_BY_UNKNOWN:  # any leg may be it: the kernel's must be one of them
        return (kernel["dev"], kernel.get("gateway")) in gateways
    return (d.dev, d.gateway) == (kernel["dev"], kernel.get("gateway"))


@pytest.mark.parametrize("name", HOSTS)
def test_every_recorded_query_agrees_with_the_kernel(name: str) -> None:
    snap, answers = host(name)
    fib = Fib(snap)
    wrong = [q for q, a in answers if not agrees(fib, q, a)]
    assert wrong == [], wrong[:5]


def test_multipath_with_a_known_seed_names_the_kernels_leg() -> None:
    snap, answers = host("multiwan-seed")
    assert snap.sysctls.fib_multipath_hash_seed == 31337
    fib = Fib(snap)
    picked = [
        route_packet(fib, packet_of(q))
        for q, a in answers
        if isinstance(a, dict) and "table" not in a and a["dev"] in ("wan1", "wan2")
        and " oif " not in q and " uid " not in q and "tcp" not in q
    ]  # fmt: skip
    assert {d.leg_by for d in picked} == {LEG_BY_HASH}
    assert {d.dev for d in picked} == {"wan1", "wan2"}  # both legs taken, by the hash
    assert all(len(d.legs) == 2 for d in picked)


def test_multipath_with_a_random_seed_is_never_one_leg_as_the_answer(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    snap, _ = host("multiwan-random")
    path = tmp_path / "host.json"
    path.write_bytes(codec.dumps(snap))
    assert main(["--json", "route", "get", "8.8.8.8", "--snapshot", str(path)]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["leg_by"] == "unknown" and data["dev"] is None and data["gateway"] is None
    assert [(leg["dev"], leg["weight"]) for leg in data["legs"]] == [("wan1", 1), ("wan2", 3)]
    assert main(["route", "get", "8.8.8.8", "--snapshot", str(path)]) == 0
    text = capsys.readouterr().out
    assert "one of [via 198.51.100.1 dev wan1 weight 1 | via 203.0.113.1 dev wan2 weight 3]" in text


def test_source_address_prefers_its_own_leg() -> None:
    fib = Fib(host("multiwan-seed")[0])
    for src, dev in (("203.0.113.2", "wan2"), ("198.51.100.2", "wan1")):
        d = route_packet(fib, FlowKey(dst="8.8.8.8", src=src))
        assert (d.dev, d.leg_by) == (dev, LEG_BY_HASH)


def test_siphash_matches_the_reference_vector() -> None:
    key = bytes(range(16))
    k0, k1 = int.from_bytes(key[:8], "little"), int.from_bytes(key[8:], "little")
    assert siphash24(k0, k1, bytes(range(15))) == 0xA129CA6149BE45E5


def test_upper_bounds_and_selection_follow_fib_rebalance() -> None:
    legs = [LegInput(True, 1, 0), LegInput(False, 5, 0), LegInput(True, 3, 0)]
    assert upper_bounds(legs) == [(1 << 31) // 4 - 1, -1, (1 << 31) - 1]
    assert select_leg(legs, 0) == 0
    assert select_leg(legs, (1 << 31) // 4) == 2


# -- item 13: multicast and 0.0.0.0 -------------------------------------------------------


def test_all_hosts_group_arriving_is_delivered_like_the_kernel_says() -> None:
    fib = Fib(host("multiwan-seed")[0])
    d = route_packet(fib, FlowKey(dst="224.0.0.1", src="192.168.1.7", iif="lan"))
    assert (d.outcome, d.dev, d.error) == ("multicast", "lo", None)
    other = route_packet(fib, FlowKey(dst="239.1.2.3", src="192.168.1.7", iif="lan"))
    assert other.error == "EINVAL"
    assert "not joined" in other.steps[-1].reason


def test_route_get_zero_is_local_from_loopback() -> None:
    fib = Fib(host("multiwan-seed")[0])
    d = route_packet(fib, FlowKey(dst="0.0.0.0"))
    assert (d.outcome, d.dev, d.prefsrc) == ("local", "lo", "127.0.0.1")


# -- item 14: the selectors on the CLI ------------------------------------------------------


@pytest.mark.parametrize(
    ("argv", "dev", "table"),
    [
        (["9.9.9.9", "--uid", "1500"], "wan2", 100),
        (["9.9.9.9", "--uid", "2500"], "wan1", None),
        (["9.9.9.9", "--ipproto", "tcp", "--dport", "443"], "wan1", 101),
        (["10.9.1.1", "--tos", "0x10"], "lan", 102),
        (["9.9.9.9", "--oif", "lan"], "lan", None),
        (["8.8.8.8", "--ipproto", "udp", "--sport", "40000", "--dport", "53"], None, None),
    ],
)
def test_route_get_selectors_on_the_cli(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, argv: list[str], dev: str | None,
    table: int | None,
) -> None:  # fmt: skip
    snap, answers = host("multiwan-seed")
    path = tmp_path / "host.json"
    path.write_bytes(codec.dumps(snap))
    assert main(["--json", "route", "get", *argv, "--snapshot", str(path)]) == 0
    data = json.loads(capsys.readouterr().out)
    if dev is not None:
        assert data["dev"] == dev
        assert (data["table"] if data["table"] != 254 else None) == table
    packet = msgspec.convert(data["packet"], FlowKey)
    assert packet.proto in (6, 17)


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--uid", "x"], "--uid 'x'"),
        (["--ipproto", "300"], "--ipproto '300'"),
        (["--dport", "70000"], "--dport '70000'"),
        (["--tos", "0x100"], "--tos '0x100'"),
        (["--oif", "eth9"], "oif 'eth9': no such interface"),
        (["--oif", "lan", "--iif", "lan"], "--oif is for locally generated packets"),
    ],
)
def test_bad_selectors_are_one_line_exit_2(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, argv: list[str], message: str
) -> None:
    path = tmp_path / "host.json"
    path.write_bytes(codec.dumps(host("multiwan-seed")[0]))
    code = main(["route", "get", "9.9.9.9", *argv, "--snapshot", str(path)])
    err = capsys.readouterr().err
    assert code == 2 and message in err and err.count("\n") == 1
