"""Issue #12, FRR items 7-11: ``fix --mode bgp`` on real running configs.

The snapshots in tests/data/real/frr carry running configs FRR itself printed (from FRR's
topotests, normalised by real daemons); the hand-written texts below are what FRR also
reads. tests/lab/test_frr_merge_real.py holds the same merge to real FRR daemons.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from meshpath.cli import main
from meshpath.errors import BadInputError
from meshpath.fix import frrfit
from meshpath.render import frr
from meshpath.state import codec

FRR_DATA = Path(__file__).resolve().parents[1] / "data" / "real" / "frr"
NEW_PEER = "10.0.1.1"  # not configured in any of the snapshots
USER_PEER = "10.0.1.9"  # the user's own neighbour in every snapshot


def running(name: str) -> str:
    return codec.load(FRR_DATA / f"{name}.json").frr.running_config or ""


def intent(text: str, peer: str = NEW_PEER, asn: int = 65001) -> frr.FrrIntent:
    have = frr.line_keys(frr.parse_blocks(text))
    statics = ("100.64.0.0/12",)
    base = frr.FrrIntent(
        tunnel="CloudflareWARP",
        statics=statics,
        advertise=statics,
        asn=asn,
        peer=peer,
        bgp_created=frr.bgp_asn_of(frr.parse_blocks(text)) is None,
        owned_statics=tuple(p for p in statics if (f"ip route {p} CloudflareWARP",) not in have),
    )
    return frrfit.compose(text, base)


def plan_json(capsys: pytest.CaptureFixture[str], name: str, *extra: str) -> tuple[int, str]:
    args = ["--json", "fix", "--mode", "bgp", "--snapshot", str(FRR_DATA / f"{name}.json")]
    code = main([*args, *extra])
    out = capsys.readouterr()
    return code, out.out + out.err


def frr_detail(out: str) -> str:
    data = json.loads(out)
    (step,) = [s for s in data["plan"]["steps"] if s["key"] == "frr:meshpath"]
    return str(step["detail"])


def assert_round_trip(text: str, it: frr.FrrIntent) -> str:
    """Every user line kept, meshpath's lines in, and stripping gives the user's back."""
    merged = frr.merge_text(text, it)
    user = frr.line_keys(frr.parse_blocks(text))
    assert user <= frr.line_keys(frr.parse_blocks(merged))
    assert frrfit.is_applied(merged, it)
    assert frr.line_keys(frr.parse_blocks(frr.strip_text(merged, it))) == user
    return merged


def removed_lines(diff: str) -> list[str]:
    return [ln for ln in diff.splitlines() if ln.startswith("-") and not ln.startswith("---")]


# -- item 7: asdot --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "asn"),
    [("65001", 65001), ("1.1", 65537), ("0.1", 1), ("65535.65535", 4294967295), ("1.0", 65536)],
)
def test_parse_asn_reads_asplain_and_asdot(text: str, asn: int) -> None:
    assert frr.parse_asn(text) == asn


@pytest.mark.parametrize(
    "bad", ["", "x", "1.", ".1", "65536.1", "1.65536", "0", "0.0", "4294967296"]
)
def test_parse_asn_refuses_what_is_no_as_number(bad: str) -> None:
    assert frr.parse_asn(bad) is None


def test_asdot_running_config_is_spliced_not_a_traceback(
    capsys: pytest.CaptureFixture[str],
) -> None:
    code, out = plan_json(capsys, "asdot", "--peer", NEW_PEER, "--asn", "65537")
    assert code == 0, out
    detail = frr_detail(out)
    assert "+router bgp" not in detail  # meshpath's lines go into the user's 'router bgp 1.1'
    assert "+ neighbor 10.0.1.1 remote-as external" in detail
    assert removed_lines(detail) == []


def test_asdot_asn_mismatch_is_one_line_exit_2(capsys: pytest.CaptureFixture[str]) -> None:
    code, out = plan_json(capsys, "asdot", "--peer", NEW_PEER, "--asn", "65001")
    assert code == 2
    assert "FRR already runs 'router bgp 1.1' (AS 65537); --asn 65001 must match it" in out
    assert "Traceback" not in out


# -- item 8: exit-vrf, and the diff against the real text -----------------------------


def test_vrf_block_is_kept_verbatim() -> None:
    text = running("vrf")
    merged = assert_round_trip(text, intent(text))
    assert "vrf blue\n ip route 0.0.0.0/0 192.168.50.1\nexit-vrf\n" in merged
    assert "exit\n!\nexit-vrf" not in merged
    assert frr.render_blocks(frr.parse_blocks(text)).count("exit-vrf") == 1


def test_plan_diff_is_against_the_real_running_config(capsys: pytest.CaptureFixture[str]) -> None:
    code, out = plan_json(capsys, "vrf", "--peer", NEW_PEER, "--asn", "65001")
    assert code == 0, out
    detail = frr_detail(out)
    assert removed_lines(detail) == []  # nothing of the user's is rewritten
    real = frr.config_lines(running("vrf"))
    hunks = old_sides(detail)
    assert hunks
    for start, old in hunks:  # each hunk's "before" side is a slice of the real text
        assert real[start : start + len(old)] == old


def old_sides(diff: str) -> list[tuple[int, list[str]]]:
    """(0-based start, the lines of the old side) of each hunk of a unified diff."""
    hunks: list[tuple[int, list[str]]] = []
    for line in diff.splitlines():
        if line.startswith("@@"):
            start = int(line.split()[1].split(",")[0][1:]) - 1
            hunks.append((start, []))
        elif hunks and line[:1] in (" ", "-") and not line.startswith("---"):
            hunks[-1][1].append(line[1:])
    return hunks


# -- item 9: the user's redistribute static ---------------------------------------------


def test_users_plain_redistribute_static_stays_and_comes_back_exactly() -> None:
    text = running("redist")
    it = intent(text)
    assert it.user_redistribute == ""
    merged = assert_round_trip(text, it)
    assert "  redistribute static\n" in merged
    assert "redistribute static route-map MESHPATH-OUT" not in merged
    assert f"  neighbor {NEW_PEER} route-map MESHPATH-OUT out" in merged
    assert frr.strip_text(merged, it) == frr.merge_text(text, frr.FrrIntent("x", ()))


USER_MAP = """\
router bgp 65001
 neighbor 10.0.1.9 remote-as 65009
 !
 address-family ipv4 unicast
  redistribute static route-map USER-STATICS
 exit-address-family
exit
!
ip prefix-list LAB seq 5 permit 192.168.77.0/24
!
route-map USER-STATICS permit 10
 match ip address prefix-list LAB
 set community 65001:7
exit
!
end
"""


def test_users_redistribute_route_map_is_extended_not_replaced() -> None:
    it = intent(USER_MAP)
    assert (it.user_redistribute, it.redist_seq) == ("USER-STATICS", 9)
    merged = assert_round_trip(USER_MAP, it)
    assert "redistribute static route-map USER-STATICS" in merged
    assert "redistribute static route-map MESHPATH-OUT" not in merged
    assert "route-map USER-STATICS permit 9\n match ip address prefix-list MESHPATH-CF\n" in merged
    assert frr.strip_text(merged, it) == frr.merge_text(USER_MAP, frr.FrrIntent("x", ()))


# -- item 10: no bgp default ipv4-unicast -----------------------------------------------


def test_no_default_ipv4_unicast_activates_a_new_peer() -> None:
    text = running("nodefault")
    it = intent(text)
    assert it.activate
    merged = assert_round_trip(text, it)
    family = merged[merged.index(" address-family ipv4 unicast") :]
    assert f"  neighbor {NEW_PEER} activate\n" in family[: family.index("exit-address-family")]


def test_the_users_own_peer_keeps_its_lines_and_gets_back_exactly_them() -> None:
    text = running("nodefault")
    it = intent(text, USER_PEER)
    assert it.user_neighbor and not it.activate  # already activated by the user
    merged = assert_round_trip(text, it)
    assert " neighbor 10.0.1.9 remote-as 65009\n" in merged
    assert "remote-as external" not in merged
    stripped = frr.strip_text(merged, it)
    assert "neighbor 10.0.1.9 activate" in stripped
    assert "MESHPATH" not in stripped


def test_a_peer_with_the_users_own_route_map_is_refused_clearly() -> None:
    text = USER_MAP.replace(
        "  redistribute static", "  neighbor 10.0.1.9 route-map USER-OUT out\n  redistribute static"
    )
    with pytest.raises(BadInputError, match="already has 'route-map USER-OUT out'"):
        intent(text, USER_PEER)


# -- item 11: hand-written configs ---------------------------------------------------------

NO_EXIT_AF = """\
router bgp 65001
 neighbor 10.0.1.9 remote-as 65009
 address-family ipv4 unicast
  network 10.0.1.0/24
 address-family l2vpn evpn
  neighbor 10.0.1.9 activate
  advertise-all-vni
 exit-address-family
"""


def test_family_without_exit_address_family_ends_at_the_next_family() -> None:
    it = intent(NO_EXIT_AF)
    merged = assert_round_trip(NO_EXIT_AF, it)
    ipv4 = merged[merged.index("address-family ipv4") : merged.index("address-family l2vpn")]
    evpn = merged[merged.index("address-family l2vpn") : merged.index("exit-address-family")]
    assert "redistribute static route-map MESHPATH-OUT" in ipv4
    assert "MESHPATH" not in evpn


def test_tab_indented_body_stays_in_its_block() -> None:
    text = "\n".join(
        "\t" * (len(ln) - len(ln.lstrip(" "))) + ln.lstrip(" ") for ln in NO_EXIT_AF.splitlines()
    )
    assert "\tneighbor 10.0.1.9 remote-as 65009" in text
    assert [b[0] for b in frr.parse_blocks(text)] == ["router bgp 65001"]
    merged = assert_round_trip(text, intent(text))
    assert merged.count("router bgp") == 1


def test_unindented_body_lines_belong_to_the_open_block() -> None:
    text = "router bgp 65001\nneighbor 10.0.1.9 remote-as 65009\naddress-family ipv4 unicast\n"
    text += (
        "network 10.0.1.0/24\nexit-address-family\n!\nip prefix-list X seq 5 permit 10.0.0.0/8\n"
    )
    blocks = frr.parse_blocks(text)
    assert [b[0] for b in blocks] == [
        "router bgp 65001",
        "ip prefix-list X seq 5 permit 10.0.0.0/8",
    ]
    merged = assert_round_trip(text, intent(text))
    assert merged.count("address-family ipv4 unicast") == 1


def test_address_family_ipv4_alias_is_ipv4_unicast() -> None:
    text = "router bgp 65001\n address-family ipv4\n  network 10.0.1.0/24\n exit-address-family\n"
    merged = assert_round_trip(text, intent(text))
    assert "address-family ipv4 unicast" not in merged  # spliced into the alias block


# -- the topotests sample, text only (the lab test runs it through FRR) -----------------

TOPOTESTS = sorted((FRR_DATA / "topotests").glob("*.conf"))


@pytest.mark.parametrize("path", TOPOTESTS, ids=lambda p: p.name)
def test_topotests_config_merges_and_strips_back(path: Path) -> None:
    text = path.read_text()
    asn = frr.bgp_asn_of(frr.parse_blocks(text)) or 65001
    assert_round_trip(text, intent(text, "192.0.2.254", asn))
