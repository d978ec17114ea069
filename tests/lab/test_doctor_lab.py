"""The doctor against the live lab connector: real kernel, real nft, real FRR."""

from __future__ import annotations

import json

import pytest

from meshpath.cli import main
from meshpath.lab import FIXES, Lab
from meshpath.lab.procs import wait_for
from tests.conftest import needs_root
from tests.data.snapshots.record import prepare
from tests.doctor_expectations import EXPECT
from tests.schema_check import assert_schema

pytestmark = [needs_root, pytest.mark.lab]


@pytest.mark.parametrize("name", sorted(EXPECT))
def test_doctor_live(lab: Lab, name: str, capsys: pytest.CaptureFixture[str]) -> None:
    prepare(lab, name)
    code = main(["--json", "doctor", "--netns", lab.ns("conn"), "--target", "10.0.1.50:3000"])
    report = json.loads(capsys.readouterr().out)
    assert_schema(report)
    verdict, root, must = EXPECT[name]
    assert report["verdict"].startswith(verdict), report
    assert report["root_cause"] == root
    assert must <= {f["id"] for f in report["findings"]}
    assert report["disagreements"] == []  # the model agrees with the kernel here
    assert code == (0 if verdict == "PATH OK" else 1)


def test_missing_namespace_is_bad_input(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["doctor", "--netns", "mplab-no-such-ns"]) == 2
    assert "mplab-no-such-ns" in capsys.readouterr().err


def test_unknown_rule_falls_back_to_the_kernel(
    lab: Lab, capsys: pytest.CaptureFixture[str]
) -> None:
    """A rule the model cannot evaluate is named, and the kernel's routing decides."""
    lab.setup("broken")
    lab.nft(
        "conn",
        "table inet odd { chain odd_forward { type filter hook forward priority 10; "
        "policy accept; meta cpu 0 counter; }; }\n",
    )
    code = main(["--json", "doctor", "--netns", lab.ns("conn"), "--target", "10.0.1.50:3000"])
    report = json.loads(capsys.readouterr().out)
    unknown = next(f for f in report["findings"] if f["id"] == "MP199")
    assert any("cpu" in line for line in unknown["evidence"]), unknown
    assert report["flows"][0]["decided_by"] == "kernel"
    assert report["root_cause"] == "MP101" and code == 1


def _v6_flow(report: dict[str, object]) -> dict[str, object]:
    flows = report["flows"]
    assert isinstance(flows, list)
    return next(f for f in flows if str(f["worker_ip"]).startswith("2606:4700:cf1:5000:"))


def test_doctor_names_the_missing_ipv6_route_then_path_ok_for_both_families(
    lab: Lab, capsys: pytest.CaptureFixture[str]
) -> None:
    """The dual-stack lab: broken (the profile keeps IPv6 out of WARP's table) has an
    MP101 for the IPv6 source range with the reply's route as evidence; after the route
    fix, both families' flows are delivered and the verdict is PATH OK."""
    lab.setup("broken")
    args = ["--json", "doctor", "--netns", lab.ns("conn")]
    args += ["--target", "10.0.1.50:3000", "--target", "[fd00:1::50]:3000"]
    assert main(args) == 1
    report = json.loads(capsys.readouterr().out)
    v6 = [
        f
        for f in report["findings"]
        if f["id"] == "MP101" and "2606:4700:cf1:5000::/64" in f["title"]
    ]
    assert v6, [f["title"] for f in report["findings"]]
    evidence = " | ".join(v6[0]["evidence"])
    assert "reply [fd00:1::50]:3000 > [2606:4700:cf1:5000::5]" in evidence, evidence
    assert "route ::/0 (table 254, rule 32766) dev eth0" in evidence, evidence
    assert _v6_flow(report)["status"] != "delivered"
    lab.setup("route")
    FIXES["route"](lab)
    assert main(args) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["verdict"] == "PATH OK", report["verdict"]
    assert {f["status"] for f in report["flows"]} == {"delivered"}
    assert _v6_flow(report)["egress"] == "CloudflareWARP"
    assert report["disagreements"] == []  # the model agrees with the kernel, IPv6 too


def test_an_ipv6_source_range_filtered_out_of_bgp_is_named(
    lab: Lab, capsys: pytest.CaptureFixture[str]
) -> None:
    """The bgp fix advertises the v6 source range in IPv6 unicast; a prefix-list edit that
    drops it is an MP163 for that family, read from FRR's own advertisement."""
    prepare(lab, "bgp")
    conf = ["conf t", "no ipv6 prefix-list MESHPATH-CF6 seq 10", "end", "clear bgp ipv6 * soft out"]
    lab.exec("conn", ["vtysh", "-N", lab.ns("conn"), *(a for c in conf for a in ("-c", c))])
    args = ["--json", "doctor", "--netns", lab.ns("conn"), "--target", "10.0.1.50:3000"]
    wait_for(
        "the v6 source range withdrawn",
        lambda: (
            "2606:4700:cf1:5000::/64"
            not in lab.vtysh(
                "conn", "show bgp ipv6 unicast neighbors 10.0.1.1 advertised-routes json"
            )
        ),
        10.0,
    )
    assert main(args) == 1
    report = json.loads(capsys.readouterr().out)
    titles = [f["title"] for f in report["findings"] if f["id"] == "MP163"]
    assert titles == ["2606:4700:cf1:5000::/64 not advertised to 10.0.1.1"], report["findings"]
