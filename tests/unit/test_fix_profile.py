"""fix --mode profile's pure plan: the documented Split Tunnels edit, computed."""

from __future__ import annotations

import msgspec
import pytest

from meshpath.config import Settings
from meshpath.errors import BadInputError
from meshpath.fix.model import ProfileEntry, ProfileUpdate
from meshpath.fix.profile import (
    ProfileList,
    check_account,
    check_api_base,
    check_policy,
    diff_lines,
    edit,
    needed_ranges,
    plan_profile,
)
from meshpath.state import NftState
from tests.builders import broken_connector

ACCOUNT = "0123456789abcdef0123456789abcdef"
NEEDED = needed_ranges(Settings())


def entries(*values: str) -> tuple[ProfileEntry, ...]:
    return tuple(ProfileEntry(address=v) for v in values)


def test_the_reserved_ips_example() -> None:
    """Delete 100.64.0.0/10, add back 100.80.0.0/12 and 100.112.0.0/12; keep the rest."""
    current = ProfileList("exclude", (*entries("10.0.0.0/8", "100.64.0.0/10", "192.168.0.0/16"),
                                      ProfileEntry(host="*.example.com")))  # fmt: skip
    after = edit(current, NEEDED)
    assert [e.value for e in after] == [
        "10.0.0.0/8", "100.80.0.0/12", "100.112.0.0/12", "192.168.0.0/16", "*.example.com",
    ]  # fmt: skip
    assert after[1].description == "part of 100.64.0.0/10 (meshpath)"
    assert diff_lines(current.entries, after) == [
        "- 100.64.0.0/10",
        "+ 100.80.0.0/12  (part of 100.64.0.0/10 (meshpath))",
        "+ 100.112.0.0/12  (part of 100.64.0.0/10 (meshpath))",
    ]


def test_old_recipe_list_and_a_nested_entry() -> None:
    current = ProfileList("exclude", entries("100.64.0.0/11", "100.112.0.0/12", "100.65.0.0/16"))
    after = [e.value for e in edit(current, NEEDED)]
    assert after == ["100.80.0.0/12", "100.112.0.0/12"]


def test_description_kept_and_capped() -> None:
    long = "x" * 95
    current = ProfileList("exclude", (ProfileEntry(address="100.64.0.0/10", description=long),))
    after = edit(current, NEEDED)
    assert all(len(e.description or "") <= 100 for e in after)
    assert (after[0].description or "").startswith("xxx")


def test_include_mode_adds_the_ranges() -> None:
    current = ProfileList("include", entries("100.96.0.0/12", "10.0.1.0/24"))
    after = edit(current, NEEDED)
    assert [e.value for e in after] == ["100.96.0.0/12", "10.0.1.0/24", "100.64.0.0/12"]


def test_plan_step_and_inverse() -> None:
    current = ProfileList("exclude", entries("10.0.0.0/8", "100.64.0.0/10"))
    plan = plan_profile(broken_connector(), Settings(), current, account_id=ACCOUNT,
                        policy_id="p-1", api_base="http://203.0.113.10:8443/client/v4")  # fmt: skip
    assert plan.mode == "profile" and len(plan.steps) == 1 and not plan.empty
    step = plan.steps[0]
    assert isinstance(step.action, ProfileUpdate) and isinstance(step.inverse, ProfileUpdate)
    assert step.action.before == current.entries and step.inverse.entries == current.entries
    assert step.action.policy_id == "p-1" and step.key == "profile:p-1:exclude"
    assert plan.expect.warp_covers == ("100.64.0.0/12", "100.96.0.0/12")
    assert any("the LAN still needs its way back" in n for n in plan.notes)
    assert "ip route add 100.64.0.0/12 via 10.0.1.2" in " ".join(plan.notes)
    # No secret in the plan: it is what the journal stores.
    assert "token" not in msgspec.json.encode(plan).decode().lower()


def test_plan_is_empty_when_the_profile_carries_the_ranges() -> None:
    current = ProfileList("exclude", entries("10.0.0.0/8", "100.80.0.0/12", "100.112.0.0/12"))
    plan = plan_profile(broken_connector(), Settings(), current, account_id=ACCOUNT)
    assert plan.empty and plan.steps == () and "already carry" in plan.already[0]


def test_no_lan_note_when_nat_brings_it_back() -> None:
    masq = {"family": "inet", "table": "meshpath", "chain": "postrouting", "handle": 3,
            "expr": [{"match": {"op": "==", "left": {"meta": {"key": "oifname"}},
                                "right": "eth0"}},
                     {"match": {"op": "==", "left": {"payload": {"protocol": "ip",
                                                                 "field": "saddr"}},
                                "right": {"prefix": {"addr": "100.64.0.0", "len": 12}}}},
                     {"masquerade": None}]}  # fmt: skip
    table = {"table": {"family": "inet", "name": "meshpath", "handle": 1}}
    nft = NftState(available=True, ruleset={"nftables": [table, {"rule": masq}]})
    snap = msgspec.structs.replace(broken_connector(), nft=nft)
    current = ProfileList("exclude", entries("100.64.0.0/10"))
    plan = plan_profile(snap, Settings(), current, account_id=ACCOUNT)
    assert not any("way back" in n for n in plan.notes)


@pytest.mark.parametrize(
    "call",
    [
        lambda: check_account(None),
        lambda: check_account("0123"),
        lambda: check_account("0123456789ABCDEF0123456789ABCDEF"),
        lambda: check_policy("../etc"),
        lambda: check_api_base("ftp://x"),
        lambda: check_api_base("http://a b"),
    ],
)
def test_bad_options_are_bad_input(call: object) -> None:
    with pytest.raises(BadInputError):
        call()  # type: ignore[operator]


def test_good_options_pass() -> None:
    assert check_account(ACCOUNT) == ACCOUNT
    assert check_policy(None) is None and check_policy("f1c9e2d0-aa11") == "f1c9e2d0-aa11"
    assert check_api_base("http://203.0.113.10:8443/client/v4")


def test_profile_options_with_another_mode_are_bad_input(
    capsys: pytest.CaptureFixture[str],
) -> None:
    from meshpath.cli import main

    code = main(["fix", "--mode", "nat", "--account-id", ACCOUNT, "--snapshot", "/nonexistent"])
    assert code == 2 and "only apply to --mode profile" in capsys.readouterr().err
