"""Plans per mode from hand-built snapshots: steps, inverses, idempotence, bad inputs."""

from __future__ import annotations

import json

import msgspec
import pytest

from meshpath.config import Settings
from meshpath.errors import BadInputError, EnvironmentProblem, MissingToolError
from meshpath.fix import (
    PROTO_MESHPATH,
    FixOptions,
    FrrReload,
    NftFile,
    PostCheck,
    Run,
    WaitBgp,
    WriteFile,
    plan_fix,
)
from meshpath.fix.desired import desired_state
from meshpath.fix.model import FileState, Plan, WaitNatDrain
from meshpath.render import nft as nft_render
from meshpath.render import systemd
from meshpath.state import FrrState, NftState
from meshpath.state.model import PROTO_FRR_STATIC
from tests.builders import broken_connector, link
from tests.fix_builders import (
    bgp_fixed,
    data_text,
    meshpath_route,
    nat_fixed,
    nat_ruleset,
    with_frr,
    with_routes,
)

S = Settings()
BGP = FixOptions(peer="10.0.1.1", asn=65001, peer_asn="65000", also_device_range=True)
USER_FRR = "frr version 8.4.4\nhostname conn\n!\nip route 198.51.100.0/24 CloudflareWARP\n!\nend\n"


def kinds(plan: Plan) -> list[str]:
    return [type(s.action).__name__ for s in plan.steps]


def test_nat_masquerades_only_the_configured_range_out_the_lan_and_adds_the_route() -> None:
    plan = plan_fix(broken_connector(), S, "nat", FixOptions())
    assert kinds(plan) == ["NftFile", "Run"]
    nft = plan.steps[0].action
    assert isinstance(nft, NftFile)
    assert 'oifname "eth0" ip saddr 100.64.0.0/12 masquerade' in nft.text
    assert "100.64.0.0/10" not in nft.text and "cloudflare-warp" not in nft.text
    assert nft.text.index("delete table inet meshpath") < nft.text.index("chain postrouting")
    route = plan.steps[1].action
    assert isinstance(route, Run)
    argv = list(route.argv)
    assert argv[:5] == ["ip", "-4", "route", "replace", "100.64.0.0/12"]
    assert argv[argv.index("proto") + 1] == str(PROTO_MESHPATH)
    assert argv[argv.index("table") + 1] == "main"
    assert plan.expect.nat is True and plan.expect.route_proto == PROTO_MESHPATH


def test_nat_inverse_deletes_an_absent_table_and_the_route() -> None:
    plan = plan_fix(broken_connector(), S, "nat", FixOptions())
    undo_nft, undo_route = (s.inverse for s in plan.steps)
    assert isinstance(undo_nft, NftFile) and not undo_nft.json
    assert undo_nft.text.strip().endswith("delete table inet meshpath")
    assert isinstance(undo_route, Run) and undo_route.argv[3] == "del"


def test_nat_inverse_restores_a_previous_table_exactly() -> None:
    old = nat_ruleset()
    snap = broken_connector(nft=NftState(available=True, ruleset=old))
    # A second LAN interface makes the recorded table (out eth0) differ from the plan's.
    snap = msgspec.structs.replace(snap, links=(*snap.links, link(4, "eth1", "veth")))
    plan = plan_fix(snap, S, "nat", FixOptions(lan_if="eth1"))
    step = plan.steps[0]
    assert step.check == "table inet meshpath differs"
    assert isinstance(step.inverse, NftFile) and step.inverse.json
    restored = json.loads(step.inverse.text)["nftables"]
    assert restored[0] == {"add": {"table": {"family": "inet", "name": "meshpath"}}}
    assert restored[1] == {"delete": {"table": {"family": "inet", "name": "meshpath"}}}
    rules = [o["add"]["rule"] for o in restored if "rule" in o.get("add", {})]
    assert len(rules) == 1 and "handle" not in rules[0]


def test_nat_twice_is_nothing_to_do() -> None:
    plan = plan_fix(nat_fixed(), S, "nat", FixOptions())
    assert plan.empty and plan.steps == ()
    assert len(plan.already) == 2


def test_masquerades_are_read_back_from_recorded_nft_json() -> None:
    assert nft_render.masquerades_in(nat_ruleset()) == frozenset(
        {nft_render.Masquerade("eth0", "100.64.0.0/12")}
    )
    assert nft_render.masquerades_in({"nftables": []}) is None


def test_route_without_frr_writes_a_unit_wanted_by_the_tunnel_device() -> None:
    plan = plan_fix(broken_connector(), S, "route", FixOptions(also_device_range=True))
    assert kinds(plan) == ["Run", "Run", "WriteFile", "WriteFile"]
    unit = plan.steps[2].action
    link = plan.steps[3].action
    assert isinstance(unit, WriteFile) and isinstance(link, WriteFile)
    assert unit.path == "etc/systemd/system/meshpath-routes.service"
    assert "100.96.0.0/12" in unit.content and "table main" in unit.content
    assert link.link == "/" + unit.path
    assert "sys-subsystem-net-devices-CloudflareWARP.device.wants" in link.path
    assert plan.expect.route_proto == PROTO_MESHPATH


def test_route_with_networkd_writes_a_dropin_instead() -> None:
    opts = FixOptions(networkd_file="50-warp.network")
    plan = plan_fix(broken_connector(), S, "route", opts)
    write = plan.steps[-1].action
    assert isinstance(write, WriteFile)
    assert write.path == "etc/systemd/network/50-warp.network.d/meshpath.conf"
    assert f"Protocol={PROTO_MESHPATH}" in write.content


def test_route_without_frr_is_idempotent_given_the_files() -> None:
    specs = [systemd.RouteSpec("100.64.0.0/12", "CloudflareWARP", PROTO_MESHPATH, 64)]
    unit, link = systemd.unit_path("CloudflareWARP")
    files = {
        unit: FileState(data=systemd.render_unit(specs).encode()),
        link: FileState(link=f"/{unit}"),
    }
    snap = with_routes(broken_connector(), meshpath_route())
    assert plan_fix(snap, S, "route", FixOptions(existing_files=files)).empty
    changed = {**files, unit: FileState(data=b"edited by hand\n")}
    plan = plan_fix(snap, S, "route", FixOptions(existing_files=changed))
    assert [s.key for s in plan.steps] == [f"file:{unit}"]
    assert isinstance(plan.steps[0].inverse, WriteFile)
    assert plan.steps[0].inverse.content == "edited by hand\n"


def test_route_with_frr_uses_staticd_and_keeps_the_users_statics() -> None:
    snap = with_frr(broken_connector(), USER_FRR)
    plan = plan_fix(snap, S, "route", FixOptions())
    assert kinds(plan) == ["FrrReload"]
    action = plan.steps[0].action
    assert isinstance(action, FrrReload) and not action.intent.bgp
    assert action.intent.owned_statics == ("100.64.0.0/12",)
    assert "+ip route 100.64.0.0/12 CloudflareWARP" in plan.steps[0].detail
    assert "-ip route 198.51.100.0/24" not in plan.steps[0].detail
    assert plan.expect.route_proto == PROTO_FRR_STATIC


def test_route_with_frr_hands_nats_kernel_route_to_staticd() -> None:
    snap = with_routes(with_frr(broken_connector(), USER_FRR), meshpath_route())
    plan = plan_fix(snap, S, "route", FixOptions())
    assert [s.key for s in plan.steps] == ["frr:meshpath", "route-handover:100.64.0.0/12"]


def test_bgp_plan_reloads_frr_then_waits_for_the_session() -> None:
    snap = with_frr(broken_connector(), USER_FRR)
    plan = plan_fix(snap, S, "bgp", BGP)
    assert kinds(plan) == ["FrrReload", "WaitBgp"]
    wait = plan.steps[1].action
    assert isinstance(wait, WaitBgp)
    assert wait.prefixes == ("100.64.0.0/12", "100.96.0.0/12") and wait.peer == "10.0.1.1"
    frr = plan.steps[0].action
    assert isinstance(frr, FrrReload) and frr.intent.bgp_created
    assert plan.steps[0].inverse == FrrReload(intent=frr.intent, remove=True)
    assert plan.expect.advertised == ("100.64.0.0/12", "100.96.0.0/12")


def test_bgp_on_an_already_fixed_connector_is_nothing_to_do() -> None:
    assert plan_fix(bgp_fixed(), S, "bgp", BGP).empty


def test_bgp_replace_nat_stops_nat_after_the_peer_and_deletes_it_after_the_round_trip() -> None:
    # Issue 18: the table (and with its last nat chain the kernel's NAT hooks) goes only
    # after the round trip without NAT passed and the masqueraded connections ended.
    snap = with_frr(nat_fixed(), USER_FRR)
    opts = msgspec.structs.replace(BGP, replace_nat=True, post_checks=("worker round trip",))
    plan = plan_fix(snap, S, "bgp", opts)
    keys = [s.key for s in plan.steps]
    assert keys == [
        "frr:meshpath",
        "route-handover:100.64.0.0/12",
        "wait:10.0.1.1",
        "nft:empty inet meshpath",
        "check:worker round trip",
        "wait:nat-drain",
        "nft:remove inet meshpath",
    ]
    empty, drain, remove = plan.steps[3], plan.steps[5], plan.steps[6]
    assert isinstance(empty.action, NftFile) and "flush chain" in empty.action.text
    assert "delete" not in empty.action.text
    assert isinstance(remove.inverse, NftFile) and remove.inverse.json
    assert empty.inverse == remove.inverse
    assert isinstance(plan.steps[4].action, PostCheck)
    assert isinstance(drain.action, WaitNatDrain)
    assert drain.action.sources == ("100.64.0.0/12",) and drain.inverse is None
    assert plan.expect.nat is False


def test_bgp_replace_nat_after_everything_is_done_is_empty() -> None:
    opts = msgspec.structs.replace(BGP, replace_nat=True)
    assert plan_fix(bgp_fixed(), S, "bgp", opts).empty


@pytest.mark.parametrize(
    ("settings", "mode", "options", "message"),
    [
        (Settings(tunnel_interface="wg0"), "nat", FixOptions(), "tunnel interface 'wg0'"),
        (S, "nat", FixOptions(lan_if="eth9"), "LAN interface 'eth9'"),
        (
            Settings(ranges=S.ranges.with_overrides({"source_v4": "10.0.0.0/8"})),
            "route",
            FixOptions(),
            "overlaps 10.0.1.0/24",
        ),
        (S, "bgp", msgspec.structs.replace(BGP, asn=0), "--asn 0"),
        (S, "bgp", msgspec.structs.replace(BGP, asn=None), "needs --asn"),
        (S, "bgp", msgspec.structs.replace(BGP, peer="10.0.1.300"), "not an IP address"),
        (S, "bgp", msgspec.structs.replace(BGP, peer="100.64.0.1"), "inside a range"),
        (S, "bgp", msgspec.structs.replace(BGP, peer_asn="sixty"), "--peer-asn"),
        (S, "nat", BGP, "only apply to --mode bgp"),
    ],
)
def test_bad_inputs_raise_bad_input(
    settings: Settings, mode: str, options: FixOptions, message: str
) -> None:
    snap = with_frr(broken_connector(), USER_FRR)
    with pytest.raises(BadInputError, match=message.replace("(", r"\(")):
        plan_fix(snap, settings, mode, options)  # type: ignore[arg-type]


def test_bgp_without_frr_is_an_environment_problem() -> None:
    with pytest.raises(MissingToolError, match="vtysh"):
        plan_fix(broken_connector(), S, "bgp", BGP)
    stopped = broken_connector(frr=FrrState(available=True, running=False))
    with pytest.raises(EnvironmentProblem, match="FRR running"):
        plan_fix(stopped, S, "bgp", BGP)


def test_bgp_with_another_asn_running_is_refused() -> None:
    snap = with_frr(broken_connector(), data_text("fix_frr_user.conf"))
    with pytest.raises(BadInputError, match="router bgp 65001"):
        plan_fix(snap, S, "bgp", msgspec.structs.replace(BGP, asn=65010))


def test_plans_round_trip_through_json() -> None:
    plan = plan_fix(with_frr(nat_fixed(), USER_FRR), S, "bgp", BGP)
    again = msgspec.json.decode(msgspec.json.encode(plan), type=Plan)
    assert again == plan


@pytest.mark.parametrize("mode", ["nat", "route"])
def test_the_predicted_snapshot_needs_no_further_kernel_or_nft_step(mode: str) -> None:
    from meshpath.fix.predict import predict

    snap = broken_connector()
    after = predict(snap, desired_state(snap, S, mode, FixOptions()))  # type: ignore[arg-type]
    again = plan_fix(after, S, mode, FixOptions())  # type: ignore[arg-type]
    assert [s.key for s in again.steps if not s.key.startswith("file:")] == []


def test_prediction_after_bgp_replace_nat_drops_the_nat_table() -> None:
    from meshpath.fix.predict import predict

    snap = with_frr(nat_fixed(), USER_FRR)
    desired = desired_state(snap, S, "bgp", msgspec.structs.replace(BGP, replace_nat=True))
    after = predict(snap, desired)
    assert nft_render.masquerades_in(after.nft.ruleset) is None
    assert {r.dst: r.protocol for r in after.routes if r.dst.endswith("/12")} == {
        "100.64.0.0/12": PROTO_FRR_STATIC,
        "100.96.0.0/12": PROTO_FRR_STATIC,
    }


def test_a_namespace_fix_never_writes_the_hosts_etc() -> None:
    from pathlib import Path

    from meshpath.usecase.fix import refuse_host_files_for_netns as _refuse_host_files_for_netns

    writes = plan_fix(broken_connector(), S, "route", FixOptions())
    with pytest.raises(BadInputError, match="give --root DIR"):
        _refuse_host_files_for_netns(writes, "conn", Path("/"))
    _refuse_host_files_for_netns(writes, "conn", Path("/tmp/lab-root"))  # redirected: fine
    _refuse_host_files_for_netns(writes, None, Path("/"))  # the host itself: fine
    nat = plan_fix(broken_connector(), S, "nat", FixOptions())  # no files: fine
    _refuse_host_files_for_netns(nat, "conn", Path("/"))
