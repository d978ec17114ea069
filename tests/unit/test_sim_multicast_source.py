"""A multicast sent on a bound device without a source: the kernel picks the source first.

``ip_route_output_key_hash_rcu`` sets ``saddr = inet_select_addr(dev_out, 0, scope)`` for
a group on a bound device before the policy lookup, so a rule with a ``from`` selector
matches on it. The differential sweep found the model looking the rules up with 0.0.0.0
(1 query in 108,000: `route get 239.x oif va0` -> kernel table 100, model 254).
"""

from __future__ import annotations

from meshpath.sim import Fib, FlowKey
from meshpath.sim.route import route_packet
from meshpath.state import Route, Rule
from tests.builders import broken_connector, with_routes, with_rules

TABLE = 100


def _fib() -> Fib:
    # eth0 holds 10.0.1.2: a rule for sources in 10.0.0.0/8 sends lookups to table 100.
    snap = with_rules(
        broken_connector(), Rule(family=4, priority=100, src="10.0.0.0/8", table=TABLE)
    )
    return Fib(
        with_routes(
            snap, Route(table=TABLE, family=4, dst="0.0.0.0/0", dev="eth0", gateway="10.0.1.9")
        )
    )


def test_a_group_on_a_bound_device_is_routed_with_the_devices_address_as_source() -> None:
    decision = route_packet(_fib(), FlowKey(dst="239.1.2.3", oif="eth0"))
    assert (decision.outcome, decision.dev, decision.table) == ("multicast", "eth0", TABLE)
    assert decision.prefsrc == "10.0.1.2"
    assert any("source 10.0.1.2 chosen before the lookup" in s.reason for s in decision.steps)


def test_a_given_source_or_no_bound_device_keeps_the_old_walk() -> None:
    fib = _fib()
    # A source outside 10/8: the rule does not match, main answers.
    given = route_packet(fib, FlowKey(dst="239.1.2.3", oif="eth0", src="100.96.0.5"))
    assert given.table != TABLE
    # A unicast destination on a bound device: no source is chosen before the lookup.
    unicast = route_packet(fib, FlowKey(dst="192.0.2.1", oif="eth0"))
    assert unicast.table != TABLE
