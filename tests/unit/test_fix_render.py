"""Golden renders (MESHPATH_UPDATE_GOLDEN=1 rewrites them) and the FRR merge's promises."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from meshpath.errors import BadInputError
from meshpath.fix import frrfit
from meshpath.render import frr, nft, systemd
from tests.fix_builders import data_text

GOLDEN = Path(__file__).parent / "golden"
UPDATE = os.environ.get("MESHPATH_UPDATE_GOLDEN") == "1"
INTENT = frr.FrrIntent(
    tunnel="CloudflareWARP",
    statics=("100.64.0.0/12", "100.96.0.0/12"),
    advertise=("100.64.0.0/12", "100.96.0.0/12"),
    asn=65001,
    peer="10.0.1.1",
    peer_asn="65000",
    bgp_created=False,
    owned_statics=("100.64.0.0/12", "100.96.0.0/12"),
)
SPECS = [
    systemd.RouteSpec("100.64.0.0/12", "CloudflareWARP", 232, 64),
    systemd.RouteSpec("2606:4700:cf1:5000::/64", "CloudflareWARP", 232, 64),
]


def golden(name: str, text: str) -> None:
    path = GOLDEN / name
    if UPDATE:
        path.write_text(text)
    assert path.exists(), f"golden {path} missing: run with MESHPATH_UPDATE_GOLDEN=1"
    assert text == path.read_text(), f"{name} differs from its golden render"


def test_nft_nat_golden() -> None:
    rules = [
        nft.Masquerade("eth0", "2606:4700:cf1:5000::/64"),
        nft.Masquerade("eth0", "100.64.0.0/12"),
    ]
    golden("nft_nat.nft", nft.render_replace(rules))


def test_nft_delete_golden() -> None:
    golden("nft_delete.nft", nft.render_delete())


def test_frr_merged_into_a_users_config_golden() -> None:
    golden(
        "frr_bgp_merged.conf", frr.render_blocks(frr.merge(data_text("fix_frr_user.conf"), INTENT))
    )


def test_frr_fresh_bgp_golden() -> None:
    fresh = frr.FrrIntent(
        **{**_fields(INTENT), "bgp_created": True, "peer_asn": "external", "rmap_delay": True}
    )
    golden("frr_bgp_fresh.conf", frr.render_blocks(frr.merge("hostname conn\n", fresh)))


def test_systemd_unit_golden() -> None:
    golden("meshpath-routes.service", systemd.render_unit(SPECS))


def test_networkd_dropin_golden() -> None:
    golden("networkd-meshpath.conf", systemd.render_dropin(SPECS))


def _fields(intent: frr.FrrIntent) -> dict[str, object]:
    return {f: getattr(intent, f) for f in intent.__dataclass_fields__}


def test_merge_keeps_every_user_line_and_strip_gives_them_back() -> None:
    user = data_text("fix_frr_user.conf")
    user_keys = frr.line_keys(frr.parse_blocks(user))
    merged = frr.merge(user, INTENT)
    merged_keys = frr.line_keys(merged)
    assert user_keys <= merged_keys
    assert frr.line_keys(frr.render_intent(INTENT)) <= merged_keys
    assert frrfit.is_applied(frr.render_blocks(merged), INTENT)
    stripped = frr.strip_owned(merged, INTENT, INTENT.owned_statics)
    assert frr.line_keys(stripped) == user_keys


def test_merge_splices_into_the_users_router_bgp_block() -> None:
    merged = frr.merge(data_text("fix_frr_user.conf"), INTENT)
    bgp = [b for b in merged if b[0] == "router bgp 65001"]
    assert len(bgp) == 1
    text = "\n".join(bgp[0])
    assert "neighbor 10.0.1.9 remote-as 65009" in text
    assert text.count("address-family ipv4 unicast") == 1
    assert "  neighbor 10.0.1.1 route-map MESHPATH-OUT out" in text


def test_strip_leaves_a_users_own_identical_static() -> None:
    user = "ip route 100.64.0.0/12 CloudflareWARP\n"
    intent = frr.FrrIntent(tunnel="CloudflareWARP", statics=("100.64.0.0/12",))
    assert frr.strip_owned(frr.parse_blocks(user), intent, intent.owned_statics) == [
        ("ip route 100.64.0.0/12 CloudflareWARP",)
    ]


def test_a_stale_meshpath_prefix_list_entry_is_not_applied() -> None:
    running = frr.render_blocks(frr.render_intent(INTENT)) + (
        "ip prefix-list MESHPATH-CF seq 30 permit 10.0.0.0/8\n"
    )
    assert not frrfit.is_applied(running, INTENT)
    merged = frr.render_blocks(frr.merge(running, INTENT))
    assert "10.0.0.0/8" not in merged


def test_merge_refuses_a_second_asn() -> None:
    with pytest.raises(BadInputError, match="router bgp 65001"):
        frr.merge(data_text("fix_frr_user.conf"), frr.FrrIntent(**{**_fields(INTENT), "asn": 7}))
