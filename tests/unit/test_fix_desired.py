"""#17 item 3: a plan is diff(current, desired). The desired state comes first (a typed
value), the plan, the simulator's prediction and verify's expectation all derive from it,
and the readers of what is in place live in state/ (FRR's config) and fix/frrfit.py (how
meshpath's lines meet it), not in render/."""

from __future__ import annotations

import ast
from collections import defaultdict
from pathlib import Path

import msgspec
import pytest

import meshpath
from meshpath.config import Settings
from meshpath.fix import FixOptions, plan_fix
from meshpath.fix.desired import Desired, desired_state
from meshpath.fix.plan import plan_from
from meshpath.fix.predict import predict
from meshpath.render import nft as nft_render
from meshpath.state.frrconf import FrrConfig
from tests.builders import broken_connector
from tests.fix_builders import bgp_fixed, data_text, nat_fixed, with_frr

S = Settings()
PACKAGE = Path(meshpath.__file__).parent
BGP = FixOptions(peer="10.0.1.1", asn=65001, peer_asn="65000", also_device_range=True)


def function_homes() -> dict[str, set[str]]:
    homes: dict[str, set[str]] = defaultdict(set)
    for path in PACKAGE.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.FunctionDef):
                homes[node.name].add(str(path.relative_to(PACKAGE)))
    return homes


def test_the_readers_of_what_is_in_place_left_render() -> None:
    homes = function_homes()
    for name in ("parse_blocks", "line_keys", "spans", "config_lines", "bgp_asn_of"):
        assert homes[name] == {"state/frrconf.py"}, name
    for name in ("compose", "is_applied"):
        assert homes[name] == {"fix/frrfit.py"}, name
    assert not any(h.startswith("render/") for h in homes["desired_state"] | homes["predict"])


CASES = [
    ("nat", broken_connector(), FixOptions()),
    ("route", broken_connector(), FixOptions()),
    ("route", with_frr(broken_connector(), data_text("fix_frr_bgp_applied.conf")), FixOptions()),
    ("bgp", with_frr(nat_fixed(), "frr version 8.4.4\n!\nend\n"), BGP),
    ("bgp", with_frr(nat_fixed(), "frr version 8.4.4\n!\nend\n"),
     msgspec.structs.replace(BGP, replace_nat=True)),
]  # fmt: skip


@pytest.mark.parametrize(("mode", "snap", "options"), CASES)
def test_plan_and_expectation_derive_from_the_one_desired_state(
    mode: str, snap: meshpath.state.Snapshot, options: FixOptions
) -> None:
    desired = desired_state(snap, S, mode, options)  # type: ignore[arg-type]
    assert isinstance(desired, Desired) and desired.mode == mode
    plan = plan_from(snap, desired, options)
    assert plan == plan_fix(snap, S, mode, options)  # type: ignore[arg-type]
    assert plan.expect == desired.expect()
    # the prediction is the desired state written into the snapshot: routes and NAT as wanted
    after = predict(snap, desired)
    assert {r.dst: r.protocol for r in after.routes if r.dst in desired.ranges} == dict.fromkeys(
        desired.ranges, desired.route_proto
    )
    if desired.nat is not None:
        want = frozenset(desired.nat) or None
        assert nft_render.masquerades_in(after.nft.ruleset) == want


def test_a_state_that_holds_the_desired_parts_gets_no_step_for_them() -> None:
    snap = nat_fixed()  # NAT and the route in place
    desired = desired_state(snap, S, "nat", FixOptions())
    plan = plan_from(snap, desired, FixOptions())
    assert plan.steps == () and plan.empty
    assert plan.already == (
        "nft table inet meshpath masquerades 100.64.0.0/12",
        "route 100.64.0.0/12 dev CloudflareWARP proto 232",
    )


def test_only_the_missing_part_is_planned() -> None:
    # staticd's routes and BGP in place, but meshpath's nat-mode kernel route still there
    snap = bgp_fixed()
    desired = desired_state(snap, S, "bgp", BGP)
    plan = plan_from(snap, desired, BGP)
    assert [s.key for s in plan.steps] == []
    with_kernel_route = msgspec.structs.replace(
        snap, routes=(*snap.routes, *nat_fixed().routes_in(254)[-1:])
    )
    plan = plan_from(with_kernel_route, desired, BGP)
    assert [s.key for s in plan.steps] == ["route-handover:100.64.0.0/12", "wait:10.0.1.1"]


def test_the_snapshot_reads_its_frr_config_once_into_a_typed_value() -> None:
    snap = with_frr(broken_connector(), data_text("fix_frr_bgp_applied.conf"))
    config = snap.frr.config
    assert isinstance(config, FrrConfig) and config is snap.frr.config  # cached
    assert config.has("ip route 100.64.0.0/12 CloudflareWARP")
    assert config.bgp_asn == 65001
    assert FrrConfig.read(None).blocks == () and FrrConfig.read(None).bgp_asn is None
