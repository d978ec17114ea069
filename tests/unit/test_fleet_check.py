"""meshpath fleet facts|check: replicas advertising with equal preference (MP401).

The recorded facts (tests/data/fleet, ``python -m tests.data.fleet.record``) are both
connectors of the lab's ``ha`` scenario (primary and standby: the router saw AS paths of 1
and 7) and of ``ha-equal`` (both fixed without a role: 1 and 1, the Worker times out).
"""

from __future__ import annotations

import io
import json
from pathlib import Path

import msgspec
import pytest

from meshpath.checks.fleet import Advertisement, ads_from_doc, advertisements, check_fleet
from meshpath.cli import main
from meshpath.config import Settings
from meshpath.errors import BadInputError
from meshpath.state import codec
from meshpath.state.model import Snapshot

DATA = Path(__file__).parent.parent / "data"
FLEET = DATA / "fleet"
RANGES = Settings().ranges
BGP_SNAPSHOT = codec.load(DATA / "snapshots" / "bgp.json")
CF = ("100.64.0.0/12", "100.96.0.0/12")


def recorded(scenario: str) -> list[Advertisement]:
    ads: list[Advertisement] = []
    for node in ("conn", "connb"):
        path = FLEET / f"{scenario}-{node}.json"
        ads += ads_from_doc(json.loads(path.read_text()), str(path))
    return ads


def test_primary_and_standby_are_clean() -> None:
    ads = recorded("ha")
    assert {a.host: a.as_path_length for a in ads} == {"conn": 1, "connb": 7}
    assert check_fleet(ads) == ()


def test_equal_preference_is_one_finding_naming_both_replicas_and_the_fix() -> None:
    (finding,) = check_fleet(recorded("ha-equal"))
    assert finding.id == "MP401" and finding.severity == "error"
    assert "100.64.0.0/12, 100.96.0.0/12 to 10.0.1.1" in finding.title
    assert "(conn, connb)" in finding.title
    assert finding.evidence == (
        "conn: AS path length 1, local-pref -, MED -",
        "connb: AS path length 1, local-pref -, MED -",
    )
    assert "handshake timeout" in finding.why
    assert any("--role primary" in c for c in finding.fix_commands)
    assert any("--role standby" in c for c in finding.fix_commands)


def _ad(host: str, length: int = 1, lp: int | None = None, med: int | None = None) -> Advertisement:
    return Advertisement(host, "10.0.1.1", CF, length, lp, med)


@pytest.mark.parametrize(
    ("fleet", "tied"),
    [
        # two standbys tie, but below a unique primary: the router's choice is clear
        ((_ad("a"), _ad("b", 7), _ad("c", 7)), None),
        ((_ad("a"), _ad("b", med=10)), None),  # lower MED wins
        ((_ad("a", 3, lp=200), _ad("b")), None),  # local preference before path length
        ((_ad("a", lp=100), _ad("b")), ("a", "b")),  # 100 is FRR's default: equal
        ((_ad("a", 7), _ad("b", 7), _ad("c", 9)), ("a", "b")),  # two standbys, no primary
        ((_ad("a"),), None),  # one connector: nothing to compare
    ],
)
def test_only_a_tie_at_the_best_preference_is_a_finding(
    fleet: tuple[Advertisement, ...], tied: tuple[str, ...] | None
) -> None:
    findings = check_fleet(fleet)
    if tied is None:
        assert findings == ()
    else:
        (finding,) = findings
        assert f"({', '.join(tied)})" in finding.title


def test_different_peers_are_different_lans() -> None:
    other = Advertisement("b", "10.9.9.1", CF, 1)
    assert check_fleet((_ad("a"), other)) == ()


STANDBY_CONFIG = """\
router bgp 65001
 neighbor 10.0.1.1 remote-as 65000
 address-family ipv4 unicast
  redistribute static route-map MESHPATH-OUT
  neighbor 10.0.1.1 route-map MESHPATH-IN in
  neighbor 10.0.1.1 route-map USER-OUT out
 exit-address-family
exit
ip prefix-list MESHPATH-CF seq 10 permit 100.64.0.0/12
ip prefix-list MESHPATH-CF seq 20 permit 100.96.0.0/12
ip prefix-list OTHER seq 10 permit 192.0.2.0/24
route-map MESHPATH-OUT permit 10
 match ip address prefix-list MESHPATH-CF
 set as-path prepend 65001 65001 65001
exit
route-map USER-OUT permit 5
 match ip address prefix-list OTHER
 set metric 999
exit
route-map USER-OUT deny 7
exit
route-map USER-OUT permit 10
 set as-path prepend 65001
 set metric 50
 set local-preference 300
exit
"""


def _with_config(text: str) -> Snapshot:
    frr = msgspec.structs.replace(BGP_SNAPSHOT.frr, running_config=text)
    return msgspec.structs.replace(BGP_SNAPSHOT, frr=frr)


def test_attributes_come_from_the_redistribute_and_the_out_route_maps() -> None:
    (ad,) = advertisements(_with_config(STANDBY_CONFIG), RANGES, "connb")
    # 1 (its AS) + 3 (redistribute) + 1 (out, the first permit entry that lets it through);
    # local-preference 300 is not sent to an external peer
    assert ad == Advertisement("connb", "10.0.1.1", CF, 5, None, 50)


def test_local_preference_counts_only_towards_an_internal_peer() -> None:
    ebgp = STANDBY_CONFIG  # remote-as 65000 under router bgp 65001: external
    assert advertisements(_with_config(ebgp), RANGES, "x")[0].local_pref is None
    for remote in ("internal", "65001"):
        text = STANDBY_CONFIG.replace("remote-as 65000", f"remote-as {remote}")
        assert advertisements(_with_config(text), RANGES, "x")[0].local_pref == 300


def test_the_recorded_bgp_connector_advertises_exactly_the_ranges() -> None:
    # its canary 198.51.100.0/24 is not a Cloudflare range: not judged even if it were sent
    (ad,) = advertisements(BGP_SNAPSHOT, RANGES, "conn")
    assert ad == Advertisement("conn", "10.0.1.1", CF, 1)
    plain = _with_config("")  # no running config: nothing prepended
    assert advertisements(plain, RANGES, "x")[0].as_path_length == 1


def _cli(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out = capsys.readouterr()
    return code, out.out, out.err.strip()


def test_cli_check_exit_codes(capsys: pytest.CaptureFixture[str]) -> None:
    ha = [str(FLEET / f"ha-{n}.json") for n in ("conn", "connb")]
    equal = [str(FLEET / f"ha-equal-{n}.json") for n in ("conn", "connb")]
    code, out, _ = _cli(capsys, "fleet", "check", *ha)
    assert code == 0 and "FLEET OK" in out
    code, out, _ = _cli(capsys, "fleet", "check", *equal)
    assert code == 1 and "MP401" in out and "FLEET BROKEN" in out


def test_cli_check_reads_a_list_from_stdin(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    docs = [json.loads((FLEET / f"ha-equal-{n}.json").read_text()) for n in ("conn", "connb")]
    stdin = io.TextIOWrapper(io.BytesIO(json.dumps(docs).encode()))
    monkeypatch.setattr("sys.stdin", stdin)
    code, out, _ = _cli(capsys, "fleet", "check", "-", "--json")
    assert code == 1 and json.loads(out)["findings"][0]["id"] == "MP401"


def _facts(tmp_path: Path, name: str, doc: object) -> str:
    path = tmp_path / name
    path.write_text(json.dumps(doc))
    return str(path)


GOOD = {"schema": "meshpath/fleet-facts/1", "host": "a", "advertisements": []}


@pytest.mark.parametrize(
    ("doc", "said"),
    [
        ({"schema": "meshpath/fleet-facts/2", "host": "a", "advertisements": []}, "expected"),
        ([1], "expected a snapshot or a meshpath/fleet-facts/1"),
        ({**GOOD, "host": ""}, "'host'"),
        ({**GOOD, "advertisements": [{"peer": "p"}]}, "'peer' and 'prefixes'"),
        (
            {**GOOD, "advertisements": [{"peer": "p", "prefixes": [], "as_path_length": True}]},
            "as_path_length must be a whole number",
        ),
        (
            {
                **GOOD,
                "advertisements": [{"peer": "p", "prefixes": [], "as_path_length": 1, "med": -1}],
            },
            "med must be a whole number",
        ),  # fmt: skip
    ],
)
def test_bad_input_is_one_line_and_exit_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], doc: object, said: str
) -> None:
    path = _facts(tmp_path, "facts.json", doc)
    code, out, err = _cli(capsys, "fleet", "check", path)
    assert code == 2 and out == ""
    assert said in err and path in err and "\n" not in err and "Traceback" not in err


def test_a_name_given_twice_and_unreadable_inputs_are_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    a = _facts(tmp_path, "a.json", GOOD)
    b = _facts(tmp_path, "b.json", GOOD)
    code, _out, err = _cli(capsys, "fleet", "check", a, b)
    assert code == 2 and "named twice" in err and "--name" in err
    for bad in (str(tmp_path / "missing.json"), str(tmp_path)):
        code, _out, err = _cli(capsys, "fleet", "check", bad)
        assert code == 2 and bad in err and "\n" not in err
    (tmp_path / "text").write_text("not json")
    code, _out, err = _cli(capsys, "fleet", "check", str(tmp_path / "text"))
    assert code == 2 and "not JSON" in err


def test_facts_refuses_an_empty_name_and_netns_with_snapshot(
    capsys: pytest.CaptureFixture[str],
) -> None:
    snap = str(DATA / "snapshots" / "bgp.json")
    code, _out, err = _cli(capsys, "fleet", "facts", "--snapshot", snap, "--name", " ")
    assert code == 2 and "--name" in err
    code, _out, err = _cli(capsys, "fleet", "facts", "--snapshot", snap, "--netns", "x")
    assert code == 2 and "exclude each other" in err


def test_bad_attribute_in_a_document_names_the_source() -> None:
    with pytest.raises(BadInputError, match="f.json: a: an advertisement is not an object"):
        ads_from_doc({"host": "a", "advertisements": [3]}, "f.json")
