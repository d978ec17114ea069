"""fix --mode bgp --role primary|standby and --bfd: the FRR lines, idempotence, bad input."""

from __future__ import annotations

import msgspec
import pytest

from meshpath.config import Settings
from meshpath.errors import BadInputError
from meshpath.fix import FixOptions, FrrReload, frrfit, plan_fix
from meshpath.render import frr
from tests.fix_builders import bgp_fixed

S = Settings()
BGP = FixOptions(peer="10.0.1.1", asn=65001, peer_asn="65000", also_device_range=True)
PREPEND = " set as-path prepend 65001 65001 65001"


def _frr_action(options: FixOptions) -> FrrReload:
    plan = plan_fix(bgp_fixed(), S, "bgp", options)
    action = plan.steps[0].action
    assert isinstance(action, FrrReload)
    return action


def test_standby_prepends_its_as_path_in_meshpaths_route_map() -> None:
    action = _frr_action(msgspec.structs.replace(BGP, role="standby"))
    assert action.intent.role == "standby"
    text = frr.render_blocks(frr.render_intent(action.intent))
    head = "route-map MESHPATH-OUT permit 10\n match ip address prefix-list MESHPATH-CF\n"
    assert f"{head}{PREPEND}\n" in text


def test_a_fixed_primary_is_already_done_and_standby_on_it_replaces_the_route_map() -> None:
    # bgp_fixed has meshpath's lines without a preference: primary adds nothing to them
    assert plan_fix(bgp_fixed(), S, "bgp", msgspec.structs.replace(BGP, role="primary")).empty
    plan = plan_fix(bgp_fixed(), S, "bgp", msgspec.structs.replace(BGP, role="standby"))
    assert PREPEND.strip() in plan.steps[0].detail


def test_a_standby_line_left_in_frr_is_stale_for_a_primary() -> None:
    standby = frr.FrrIntent(
        tunnel="CloudflareWARP", statics=("100.64.0.0/12",), advertise=("100.64.0.0/12",),
        asn=65001, peer="10.0.1.1", role="standby",
    )  # fmt: skip
    running = frr.render_blocks(frr.render_intent(standby))
    assert frrfit.is_applied(running, standby)
    primary = frr.FrrIntent(**{**_fields(standby), "role": "primary"})
    assert not frrfit.is_applied(running, primary)
    merged = frr.render_blocks(frr.merge(running, primary))
    assert "as-path prepend" not in merged


def test_bfd_adds_the_neighbor_line() -> None:
    action = _frr_action(msgspec.structs.replace(BGP, bfd=True))
    text = frr.render_blocks(frr.render_intent(action.intent))
    assert " neighbor 10.0.1.1 bfd\n" in text


@pytest.mark.parametrize(
    ("mode", "options", "message"),
    [
        ("bgp", msgspec.structs.replace(BGP, role="backup"), "--role 'backup'"),
        ("route", FixOptions(role="standby"), "only apply to --mode bgp"),
        ("nat", FixOptions(bfd=True), "only apply to --mode bgp"),
    ],
)
def test_bad_role_or_bgp_options_elsewhere_are_bad_input(
    mode: str, options: FixOptions, message: str
) -> None:
    with pytest.raises(BadInputError, match=message):
        plan_fix(bgp_fixed(), S, mode, options)  # type: ignore[arg-type]


def _fields(intent: frr.FrrIntent) -> dict[str, object]:
    return {f: getattr(intent, f) for f in intent.__dataclass_fields__}
