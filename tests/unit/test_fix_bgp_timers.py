"""Issue 18 item 2: the bgp fix's session starts when frr-reload.py is done, not ~4 s later.

FRR 8.4 holds a neighbour created during a config transaction in Idle for what is left of
the route-map delay timer (render/frr.py, RMAP_DELAY has the source references), and a new
update subgroup announces only after its coalesce time. meshpath sets both short, in the
bgpd it configures alone, and only there; the lab (tests/lab/test_fix_lab.py) and
bench/bgp.py measure the effect.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import msgspec

from meshpath.apply import Applier
from meshpath.config import Settings
from meshpath.fix import FixOptions, FrrReload, frrfit, plan_fix
from meshpath.fix.model import Plan
from meshpath.render import frr
from meshpath.runner import Completed
from tests.builders import broken_connector
from tests.fix_builders import data_text, with_frr

BGP = FixOptions(peer="10.0.1.1", asn=65001, peer_asn="65000", also_device_range=True)
FRESH = "frr version 8.4.4\nhostname conn\n!\nip route 198.51.100.0/24 CloudflareWARP\n!\nend\n"


def _frr_step(running: str) -> FrrReload:
    plan = plan_fix(with_frr(broken_connector(), running), Settings(), "bgp", BGP)
    action = plan.steps[0].action
    assert isinstance(action, FrrReload)
    return action


def test_a_fresh_bgpd_gets_the_short_route_map_delay_before_meshpaths_route_maps() -> None:
    intent = _frr_step(FRESH).intent
    assert intent.bgp_created and intent.rmap_delay
    lines = frr.render_blocks(frr.merge(FRESH, intent)).splitlines()
    # frr-reload.py applies lines in this order: the timer must be short before
    # MESHPATH-OUT is created, or the 5 s timer that creation starts is already running.
    at = lines.index(frr.RMAP_DELAY)
    assert at < min(i for i, ln in enumerate(lines) if ln.startswith(("ip prefix", "route-map")))
    assert f" coalesce-time {frr.COALESCE_MS}" in lines


def test_a_users_router_bgp_keeps_its_own_timers() -> None:
    user = data_text("fix_frr_user.conf")
    intent = _frr_step(user).intent
    assert not intent.bgp_created and not intent.rmap_delay
    text = frr.render_blocks(frr.merge(user, intent))
    assert "delay-timer" not in text and "coalesce-time" not in text


def test_a_users_delay_timer_is_kept_and_survives_the_rollback() -> None:
    user = FRESH.replace("!\nend", "bgp route-map delay-timer 10\n!\nend")
    intent = _frr_step(user).intent
    assert intent.bgp_created and not intent.rmap_delay
    merged = frr.merge(user, intent)
    assert ("bgp route-map delay-timer 10",) in merged and (frr.RMAP_DELAY,) not in merged
    back = frr.strip_owned(merged, intent, intent.owned_statics)
    assert frr.line_keys(back) == frr.line_keys(frr.parse_blocks(user))


def test_rollback_of_a_fresh_bgp_removes_the_delay_line_too() -> None:
    intent = _frr_step(FRESH).intent
    running = frr.render_blocks(frr.merge(FRESH, intent))
    assert frrfit.is_applied(running, intent)
    back = frr.strip_owned(frr.parse_blocks(running), intent, intent.owned_statics)
    assert frr.line_keys(back) == frr.line_keys(frr.parse_blocks(FRESH))


def test_the_journaled_intent_round_trips_with_the_delay_flag() -> None:
    action = _frr_step(FRESH)
    again = msgspec.json.decode(msgspec.json.encode(action), type=FrrReload)
    assert again.intent.rmap_delay


@dataclass
class FakeFrr:
    """vtysh and frr-reload.py for one bgpd: --reload installs the file it is given."""

    running: str
    calls: list[tuple[str, ...]] = field(default_factory=list)
    after_test: str | None = None  # the running config once the first --test has run

    def run(
        self,
        argv: Sequence[str],
        *,
        check: bool = True,
        input_text: str | None = None,
        timeout: float | None = 60.0,
    ) -> Completed:
        self.calls.append(tuple(argv))
        if list(argv[:3]) == ["vtysh", "-c", "show running-config"]:
            return Completed(tuple(argv), 0, self.running, "")
        if argv[1:2] == ["--test"] and self.after_test is not None:
            self.running, self.after_test = self.after_test, None
        if argv[1:2] == ["--reload"]:
            self.running = Path(argv[-1]).read_text()
        return Completed(tuple(argv), 0, "", "")

    def has(self, program: str) -> bool:
        return True

    def tests(self) -> int:
        return sum(1 for c in self.calls if c[1:2] == ("--test",))


def _reload_only(running: str) -> Plan:
    plan = plan_fix(with_frr(broken_connector(), running), Settings(), "bgp", BGP)
    return msgspec.structs.replace(plan, steps=plan.steps[:1])


def test_the_config_checked_before_applying_is_not_checked_again(tmp_path: Path) -> None:
    runner = FakeFrr(FRESH)
    result = Applier(runner, tmp_path / "state", root=tmp_path).apply(_reload_only(FRESH))
    assert result.status == "applied", result.error
    assert runner.tests() == 1  # the preflight's; the step reloads the same text


def test_a_config_that_moved_since_the_preflight_is_checked_again(tmp_path: Path) -> None:
    moved = FRESH.replace("!\nend", "ip route 192.0.2.0/24 CloudflareWARP\n!\nend")
    runner = FakeFrr(FRESH, after_test=moved)
    result = Applier(runner, tmp_path / "state", root=tmp_path).apply(_reload_only(FRESH))
    assert result.status == "applied", result.error
    assert runner.tests() == 2
    assert "ip route 192.0.2.0/24 CloudflareWARP" in runner.running  # the user's, kept
