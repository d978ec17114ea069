"""``ip -j`` decoded in collect/iproute.py: the applier's "is the route still there?"."""

from __future__ import annotations

import pytest

from meshpath.collect.iproute import host_prefix, ip_json, route_listed
from meshpath.render.systemd import RouteSpec

SPEC = RouteSpec("100.64.0.0/12", "a\x01b", 232, 64)


def test_route_listed_reads_names_with_control_characters() -> None:
    """ip -j prints a name's control characters raw; the route is still found."""
    shown = '[{"dst":"100.64.0.0/12","dev":"a\x01b","protocol":"232","metric":64}]'
    assert route_listed(shown, SPEC)
    assert not route_listed('[{"dev":"a\x01b","protocol":"232","metric":10}]', SPEC)
    assert not route_listed("", SPEC)


def test_unreadable_output_is_not_taken_for_absent() -> None:
    """The applier deletes a route when it cannot tell (a ValueError), never skips it as
    'already absent' (that left hostile-name routes behind after a rollback)."""
    with pytest.raises(ValueError):
        route_listed("RTNETLINK garbage", SPEC)
    with pytest.raises(ValueError):
        ip_json('{"dst": "x"}')


def test_host_routes_get_their_length() -> None:
    assert [
        host_prefix(r["dst"]) for r in ip_json('[{"dst":"10.0.0.1"},{"dst":"10.1.0.0/16"}]')
    ] == [
        "10.0.0.1/32",
        "10.1.0.0/16",
    ]
