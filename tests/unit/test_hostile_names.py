"""Hostile interface names through every renderer and plan (pure; issue 10 items 4 and 5).

Each name the kernel accepts (tests/hostile_names.py) either renders so that nft and FRR
see exactly that one name, or is refused with a one-line BadInputError naming it. The
real tools' verdict on the same names is tests/lab/test_hostile_names.py.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import msgspec
import pytest

from meshpath.config import Settings
from meshpath.errors import BadInputError
from meshpath.fix import FixOptions, NftFile, frrfit, plan_fix
from meshpath.fix.model import FrrReload, Run
from meshpath.fix.plan import expect_for
from meshpath.fix.verify import nft_checks
from meshpath.render import frr, nft
from meshpath.sim.netfilter import _string_matches
from meshpath.state import NftState, Snapshot
from meshpath.values import parse_ifname
from tests.builders import broken_connector
from tests.fix_builders import with_frr
from tests.hostile_names import ACCEPTED, LAB_SAMPLE, REFUSED, UNREPRESENTABLE

SRC = "100.64.0.0/12"
USER_FRR = "frr version 8.4.4\nhostname conn\n!\nip route 198.51.100.0/24 CloudflareWARP\n!\nend\n"
BGP = FixOptions(peer="10.0.1.1", asn=65001, peer_asn="65000")


def renamed(snap: Snapshot, old: str, new: str) -> Snapshot:
    """``snap`` with interface ``old`` called ``new`` everywhere it is named."""

    def dev(value: str | None) -> str | None:
        return new if value == old else value

    return msgspec.structs.replace(
        snap,
        links=tuple(msgspec.structs.replace(k, name=dev(k.name)) for k in snap.links),
        addresses=tuple(msgspec.structs.replace(a, dev=dev(a.dev)) for a in snap.addresses),
        routes=tuple(msgspec.structs.replace(r, dev=dev(r.dev)) for r in snap.routes),
    )


def assert_refusal(exc: BadInputError, name: str) -> None:
    text = str(exc)
    assert "\n" not in text and repr(name) in text, text


def nft_can_quote(name: str) -> bool:
    """nft's quoted string has no escapes, and '\\*' at the end unescapes every '\\'."""
    return '"' not in name and not (name.endswith("*") and "\\" in name)


def frr_reads_as_interface(name: str) -> bool:
    return frr.frr_ifname_problem(name) is None


def listing(*rules: list[dict[str, Any]]) -> dict[str, Any]:
    """``nft -j list ruleset`` holding meshpath's table with rules of these expressions."""
    where = {"family": "inet", "table": "meshpath"}
    items: list[dict[str, Any]] = [
        {"table": {"family": "inet", "name": "meshpath", "handle": 1}},
        {"chain": {**where, "name": "postrouting", "handle": 1, "type": "nat",
                   "hook": "postrouting", "prio": 100, "policy": "accept"}},
    ]  # fmt: skip
    for handle, expr in enumerate(rules, start=2):
        items.append({"rule": {**where, "chain": "postrouting", "handle": handle, "expr": expr}})
    return {"nftables": items}


# -- the kernel's rules ----------------------------------------------------------------
def test_hostile_name_lists_are_distinct_and_sized_as_the_kernel_counts() -> None:
    assert len(set(ACCEPTED)) == len(ACCEPTED)
    assert set(LAB_SAMPLE) <= set(ACCEPTED)
    assert all(1 <= len(n.encode()) <= 15 for n in ACCEPTED)


@pytest.mark.parametrize("name", ACCEPTED)
def test_names_the_kernel_accepts_are_interface_names(name: str) -> None:
    assert parse_ifname(name) == name


@pytest.mark.parametrize("name", REFUSED + UNREPRESENTABLE)
def test_names_the_kernel_refuses_are_refused_in_one_line(name: str) -> None:
    with pytest.raises(BadInputError) as info:
        parse_ifname(name, "--lan-if")
    assert_refusal(info.value, name)


# -- nft ----------------------------------------------------------------------------------
@pytest.mark.parametrize("name", ACCEPTED)
def test_nft_renders_exactly_the_name_or_refuses_it(name: str) -> None:
    rule = nft.Masquerade(name, SRC)
    if not nft_can_quote(name):
        with pytest.raises(BadInputError) as info:
            nft.render_replace([rule])
        assert_refusal(info.value, name)
        return
    body = nft.nft_ifname(name)
    lines = [ln for ln in nft.render_replace([rule]).split("\n") if "oifname" in ln]
    assert lines == [f'\t\toifname "{body}" ip saddr {SRC} masquerade']
    assert body.count('"') == 0
    # What nft -j lists for it is read back as exactly this rule, and matches only `name`.
    assert nft.masquerades_in(listing(nft.rule_expr(rule))) == {rule}
    assert _string_matches(name, body) and not _string_matches(name + "x", body)


def test_the_audits_injection_is_refused_not_rendered() -> None:
    """Issue 10 item 4: LAN `x"accept#` made `oifname "x" accept` (no masquerade)."""
    snap = renamed(broken_connector(), "eth0", 'x"accept#')
    with pytest.raises(BadInputError, match="nft cannot quote") as info:
        plan_fix(snap, Settings(), "nat", FixOptions())
    assert_refusal(info.value, 'x"accept#')


def test_a_trailing_star_is_written_as_a_literal_star() -> None:
    text = nft.render_nat_table([nft.Masquerade("wan*", SRC)])
    assert 'oifname "wan\\*" ip saddr' in text


def test_verify_does_not_count_the_injected_rule_as_nat() -> None:
    """The installed `oifname "x" accept` has no masquerade: verify must fail."""
    injected = [{"match": {"op": "==", "left": {"meta": {"key": "oifname"}}, "right": "x"}},
                {"accept": None}]  # fmt: skip
    snap = broken_connector(nft=NftState(available=True, ruleset=listing(injected)))
    for expect in (
        expect_for("nat", Settings()),  # verify --mode nat, or a journal without lan_if
        msgspec.structs.replace(
            expect_for("nat", Settings()), lan_if='x"accept#', nat_sources=(SRC,)
        ),
    ):
        (check,) = nft_checks(snap, expect)
        assert check.ok is False, check.detail


def test_verify_wants_the_exact_rule_not_a_wildcard_or_another_interface() -> None:
    want = msgspec.structs.replace(expect_for("nat", Settings()), lan_if="eth0", nat_sources=(SRC,))
    exact = nft.rule_expr(nft.Masquerade("eth0", SRC))
    wildcard = [{**exact[0], "match": {**exact[0]["match"], "right": "eth*"}}, *exact[1:]]
    counted = [*exact[:2], {"counter": {"packets": 0, "bytes": 0}}, exact[2]]
    other = nft.rule_expr(nft.Masquerade("eth1", SRC))
    for expr, ok in ((exact, True), (wildcard, False), (counted, False), (other, False)):
        snap = broken_connector(nft=NftState(available=True, ruleset=listing(expr)))
        (check,) = nft_checks(snap, want)
        assert check.ok is ok, (expr, check.detail)
    both = broken_connector(nft=NftState(available=True, ruleset=listing(exact, other)))
    assert nft_checks(both, want)[0].ok is False  # an extra rule is not what was applied


def test_the_simulator_reads_nft_strings_as_nft_does() -> None:
    assert _string_matches("eth0", "eth*") and not _string_matches("wan0", "eth*")
    assert _string_matches("a*", "a\\*") and not _string_matches("ab", "a\\*")
    assert _string_matches("a[b", "a[*") and not _string_matches("ab", "a[*")  # no glob class
    assert _string_matches("a?b", "a?b") and not _string_matches("axb", "a?b")


# -- FRR ----------------------------------------------------------------------------------
@pytest.mark.parametrize("name", ACCEPTED)
def test_frr_renders_exactly_the_name_or_refuses_it(name: str) -> None:
    intent = frr.FrrIntent(tunnel=name, statics=(SRC,), owned_statics=(SRC,))
    if not frr_reads_as_interface(name):
        with pytest.raises(BadInputError) as info:
            frr.render_intent(intent)
        assert_refusal(info.value, name)
        return
    text = frr.render_blocks(frr.merge(USER_FRR, intent))
    routes = [ln for ln in text.split("\n") if ln.startswith(f"ip route {SRC}")]
    assert [ln.split(" ") for ln in routes] == [["ip", "route", SRC, name]]
    # meshpath reads its own line back from the running config exactly (FRR splits on
    # '\n' and blanks only; splitlines() would cut "a\u2028b" in two).
    assert frrfit.is_applied(text, intent)
    stripped = frr.strip_owned(frr.parse_blocks(text), intent, intent.owned_statics)
    assert frr.render_blocks(stripped) == frr.render_blocks(frr.parse_blocks(USER_FRR))


def test_frr_keywords_and_addresses_are_refused_as_the_tunnel() -> None:
    for name in ("bl", "re", "N", "Null0", "null0x", "Reject", "1.2.3.4", "a'b", "ab?"):
        with pytest.raises(BadInputError, match="rename the interface"):
            frr.frr_ifname(name)
    for name in ("n", "BLACK", "blackholes", "1.2.3", "01.2.3.4", "tag", "10", "a?b", 'a"b'):
        assert frr.frr_ifname(name) == name


def test_a_journal_cannot_inject_into_frr_config() -> None:
    """render_intent parses every value: an intent read from a tampered journal too."""
    good = frr.FrrIntent(
        tunnel="CloudflareWARP", statics=(SRC,), advertise=(SRC,), asn=65001, peer="10.0.1.1"
    )
    bad = [
        dataclasses.replace(good, peer="10.0.1.1 remote-as 1\nip route 0.0.0.0/0 Null0"),
        dataclasses.replace(good, peer_asn="65000\nip route 0.0.0.0/0 Null0"),
        dataclasses.replace(good, tunnel="x\nip route 0.0.0.0/0 Null0"),
        dataclasses.replace(good, statics=("0.0.0.0/0 Null0",)),
        dataclasses.replace(good, advertise=("0.0.0.0/0 le 32",)),
    ]
    assert frr.render_intent(good)
    for intent in bad:
        with pytest.raises(BadInputError):
            frr.render_intent(intent)


# -- every plan ---------------------------------------------------------------------------
def _plan_or_refusal(snap: Snapshot, tunnel: str, mode: str, name: str) -> Any:
    settings = Settings(tunnel_interface=tunnel)
    options = BGP if mode == "bgp" else FixOptions()
    try:
        return plan_fix(snap, settings, mode, options)  # type: ignore[arg-type]
    except BadInputError as exc:
        assert_refusal(exc, name)
        return None


@pytest.mark.parametrize("name", ACCEPTED)
def test_every_plan_takes_the_lan_name_exactly_or_refuses_it(name: str) -> None:
    snap = renamed(broken_connector(), "eth0", name)
    plan = _plan_or_refusal(snap, "CloudflareWARP", "nat", name)
    assert (plan is not None) == nft_can_quote(name)
    if plan is not None:
        (nft_step,) = [s for s in plan.steps if isinstance(s.action, NftFile)]
        assert f'oifname "{nft.nft_ifname(name)}" ip saddr' in nft_step.action.text
        assert plan.expect.lan_if == name


@pytest.mark.parametrize("name", ACCEPTED)
def test_every_plan_takes_the_tunnel_name_exactly_or_refuses_it(name: str) -> None:
    snap = renamed(with_frr(broken_connector(), USER_FRR), "CloudflareWARP", name)
    nat = _plan_or_refusal(snap, name, "nat", name)
    assert nat is not None  # the tunnel only reaches ip(8) argv in nat mode
    for step in nat.steps:
        if isinstance(step.action, Run):
            assert step.action.argv[step.action.argv.index("dev") + 1] == name
    for mode in ("route", "bgp"):
        plan = _plan_or_refusal(snap, name, mode, name)
        assert (plan is not None) == frr_reads_as_interface(name), mode
        if plan is not None:
            (frr_step,) = [s for s in plan.steps if isinstance(s.action, FrrReload)]
            assert frr_step.action.intent.tunnel == name
