"""The lab's post-check for ``meshpath fix/verify --lab-worker INSTANCE``: a Worker round trip.

Registered as the ``lab-worker`` entry point of ``meshpath.post_checks`` (see
:mod:`meshpath.usecase.postchecks`), so the production commands never import the lab.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Callable

from meshpath.fix.model import Expect
from meshpath.lab.topology import check_instance


def worker_round_trip(instance: str) -> Callable[[Expect], tuple[bool, str]]:
    """A Worker call through the lab; the source the service saw must fit the mode.
    A bad instance id is refused here, when the option is parsed (exit 2)."""
    check_instance(instance)

    def trip(expect: Expect) -> tuple[bool, str]:
        from meshpath.lab import Lab  # loaded only when the check runs

        result = Lab.attach(instance).worker_call()
        seen = result.seen_source
        detail = f"status {result.status}, service saw {seen}"
        if result.status != 200 or seen is None:
            return False, detail
        cf = any(
            ipaddress.ip_address(seen) in ipaddress.ip_network(r)
            for r in expect.ranges
            if ":" not in r
        )
        if expect.nat is True:
            return (not cf, f"{detail} (NAT: want the connector's LAN address)")
        if expect.nat is False or expect.route_proto:
            return (cf, f"{detail} (want the Worker's own source)")
        return True, detail

    return trip
