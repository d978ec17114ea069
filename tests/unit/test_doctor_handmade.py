"""The doctor end to end (simulator + checks) on small hand-made connector snapshots."""

from __future__ import annotations

from typing import Any

import msgspec

from meshpath.checks.diagnose import diagnose
from meshpath.checks.targets import Target, default_targets
from meshpath.config import Settings
from meshpath.state import Address, NftState, Route, Snapshot
from tests.builders import broken_connector, conf

TARGET = (Target("10.0.1.50", 3000),)
ROUTE = Route(table=254, family=4, dst="100.64.0.0/12", dev="CloudflareWARP")


def fixed(snap: Snapshot) -> Snapshot:
    return msgspec.structs.replace(snap, routes=(*snap.routes, ROUTE))


def root(snap: Snapshot) -> str | None:
    cause = diagnose(snap, Settings(), TARGET).root_cause
    return cause.id if cause else None


def test_field_report_and_its_route_fix() -> None:
    assert root(broken_connector()) == "MP101"
    report = diagnose(fixed(broken_connector()), Settings(), TARGET)
    assert report.ok and report.flows[0].seen_source == "100.64.12.189"


def test_forwarding_off_is_the_root_cause() -> None:
    snap = fixed(broken_connector())
    ipv4 = {name: conf(forwarding=0) for name in snap.sysctls.ipv4}
    snap = msgspec.structs.replace(snap, sysctls=msgspec.structs.replace(snap.sysctls, ipv4=ipv4))
    assert root(snap) == "MP120"


def forward_chain(policy: str, *rules: list[dict[str, Any]]) -> dict[str, Any]:
    items: list[dict[str, Any]] = [
        {"table": {"family": "ip", "name": "filter", "handle": 1}},
        {
            "chain": {
                "family": "ip",
                "table": "filter",
                "name": "FORWARD",
                "handle": 1,
                "type": "filter",
                "hook": "forward",
                "prio": 0,
                "policy": policy,
            }
        },
    ]
    items += [
        {
            "rule": {
                "family": "ip",
                "table": "filter",
                "chain": "FORWARD",
                "handle": i + 2,
                "expr": expr,
            }
        }
        for i, expr in enumerate(rules)
    ]
    return {"nftables": items}


def test_docker_like_forward_policy_drop() -> None:
    snap = fixed(broken_connector(nft=NftState(available=True, ruleset=forward_chain("drop"))))
    report = diagnose(snap, Settings(), TARGET)
    assert report.root_cause is not None and report.root_cause.id == "MP140"
    assert any("FORWARD" in e for e in report.root_cause.evidence)


def test_forward_drop_with_an_accept_for_the_tunnel_passes() -> None:
    accept = [
        {"match": {"op": "==", "left": {"meta": {"key": "iifname"}}, "right": "CloudflareWARP"}},
        {"accept": None},
    ]
    back = [
        {"match": {"op": "==", "left": {"meta": {"key": "oifname"}}, "right": "CloudflareWARP"}},
        {"accept": None},
    ]
    snap = fixed(
        broken_connector(nft=NftState(available=True, ruleset=forward_chain("drop", accept, back)))
    )
    assert diagnose(snap, Settings(), TARGET).ok


def test_subnet_whose_hosts_are_all_the_connectors_gives_no_default_target() -> None:
    # A /30 with both host addresses on this connector: no host left to simulate a Worker
    # call to (next() on the empty generator raised StopIteration through the doctor).
    snap = broken_connector()
    p2p = Route(table=254, family=4, dst="192.0.2.0/30", dev="eth0", scope=253, protocol=2)
    addresses = (
        *snap.addresses,
        Address(dev="eth0", family=4, local="192.0.2.1", prefixlen=30),
        Address(dev="eth0", family=4, local="192.0.2.2", prefixlen=30),
    )
    snap = msgspec.structs.replace(snap, routes=(*snap.routes, p2p), addresses=addresses)
    targets = default_targets(snap, "CloudflareWARP")
    assert not any(t.address.startswith("192.0.2.") for t in targets)
    assert targets  # the other LAN subnets still give theirs
    assert diagnose(snap, Settings()).flows
