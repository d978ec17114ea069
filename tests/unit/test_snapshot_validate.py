"""A snapshot's values are checked once at load (state.validate): each crash the audit
found (issue 10, items 12 and 14) is now a one-line SnapshotError naming the field."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import msgspec
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from meshpath.cli import main
from meshpath.errors import SnapshotError
from meshpath.nesting import too_deep
from meshpath.sim import FlowKey, route_get
from meshpath.sim.fib import Fib
from meshpath.state import Rule, codec
from meshpath.state.validate import check_snapshot
from tests.builders import broken_connector, with_rules

SNAPSHOTS = Path(__file__).parent.parent / "data" / "snapshots"
Doc = dict[str, Any]


def _doc(name: str) -> Doc:
    doc: Doc = json.loads((SNAPSHOTS / f"{name}.json").read_text())
    return doc


def _run(tmp_path: Path, doc: Doc, *argv: str) -> tuple[int, str]:
    path = tmp_path / "snap.json"
    path.write_text(json.dumps(doc))
    code = main(
        [*argv, "--snapshot", str(path), *(["--root", str(tmp_path)] if argv[0] == "fix" else [])]
    )
    return code, str(path)


def _one_error_line(capsys: pytest.CaptureFixture[str]) -> str:
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("meshpath: error: snapshot "), err
    return err


def _rule(doc: Doc, **values: Any) -> Doc:
    rule = {**doc["rules"][0], "table": None, **values}
    doc["rules"].append(rule)
    return doc


def _masquerade_right(doc: Doc, value: Any) -> Doc:
    rule = doc["nft"]["ruleset"]["nftables"][12]["rule"]
    rule["expr"][1]["match"]["right"] = value
    return doc


def _peer_info(doc: Doc, value: Any) -> Doc:
    doc["frr"]["bgp_summary"]["ipv4Unicast"]["peers"]["10.0.1.1"] = value
    return doc


def _item(doc: Doc, index: int, value: Any) -> Doc:
    doc["nft"]["ruleset"]["nftables"][index] = value
    return doc


def _running(doc: Doc, old: str, new: str) -> Doc:
    doc["frr"]["running_config"] = doc["frr"]["running_config"].replace(old, new)
    return doc


Mutation = Callable[[Doc], Doc]
# (snapshot, command, mutation, the field the error must name): each crashed before.
CASES: list[tuple[str, tuple[str, ...], Mutation, str]] = [
    # item 12 (see also test_goto_the_kernel_refuses_is_refused_at_load)
    ("broken", ("doctor",), lambda d: _rule(d, priority=100, action="goto", goto=50), "goto"),
    # item 14: fix planner
    ("nat", ("fix", "--mode", "nat"),  # check_no_lan_overlap: ip_interface ValueError
     lambda d: d["addresses"][2].update(prefixlen=99) or d, "$.addresses[2].prefixlen"),
    ("nat", ("fix", "--mode", "nat"),  # render/nft masquerades_in: ip_network ValueError
     lambda d: _masquerade_right(d, "garbage"), "expr[1].match.right"),
    ("nat", ("fix", "--mode", "nat"),
     lambda d: _masquerade_right(d, {"prefix": {"addr": "100.64.0.0", "len": "12"}}), ".len"),
    ("bgp", ("fix", "--mode", "bgp", "--peer", "10.0.1.1", "--asn", "65001"),  # bgp_asn_of
     lambda d: _running(d, "router bgp 65001", "router bgp x"), "running_config (line"),
    # item 14: doctor
    ("broken", ("doctor",), lambda d: _item(d, 3, {"chain": True}), "nftables[3].chain"),
    ("broken", ("doctor",), lambda d: _item(d, 3, {"rule": {"family": "ip"}}), ".table"),
    ("nat", ("doctor",), lambda d: _masquerade_right(d, {"prefix": {"addr": "::1", "len": 8}}),
     ".prefix.addr"),
    ("bgp", ("doctor",), lambda d: _peer_info(d, "Established"), "peers['10.0.1.1']"),
    ("bgp", ("doctor",), lambda d: d["frr"]["bgp_advertised"]["10.0.1.1"].update(
        advertisedRoutes={"not-a-prefix": {}}) or d, "advertisedRoutes['not-a-prefix']"),
    ("broken", ("doctor",), lambda d: d["routes"][0].update(dst="10.0.0.0/40") or d,
     "$.routes[0].dst"),
    ("broken", ("doctor",), lambda d: d["routes"][0].update(table=-1) or d, "$.routes[0].table"),
    ("broken", ("doctor",), lambda d: d["links"][1].update(index=-5) or d, "$.links[1].index"),
    ("broken", ("doctor",), lambda d: d["links"][1].update(name="a/b") or d, "$.links[1].name"),
]  # fmt: skip


@pytest.mark.parametrize(("name", "argv", "mutate", "field"), CASES)
def test_meaningless_value_is_one_line_exit_2_naming_the_field(
    name: str,
    argv: tuple[str, ...],
    mutate: Mutation,
    field: str,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    code, path = _run(tmp_path, mutate(_doc(name)), *argv)
    err = _one_error_line(capsys)
    assert code == 2 and path in err and field in err, err


def test_backward_goto_names_the_rule(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    doc = _rule(_doc("broken"), priority=100, action="goto", goto=50)
    _run(tmp_path, doc, "doctor")
    err = _one_error_line(capsys)
    index = len(doc["rules"]) - 1
    assert f"$.rules[{index}].goto" in err and "goto 50 from priority 100" in err


@pytest.mark.parametrize(
    ("values", "why"),
    [
        ({"priority": 100, "action": "goto", "goto": 0}, "backward or self goto"),  # rule 0 exists
        ({"priority": 100, "action": "goto", "goto": 100}, "backward or self goto"),
        ({"priority": 100, "action": "goto"}, "without a goto target"),
        ({"priority": 100, "action": "lookup", "table": 254, "goto": 200}, "whose action is"),
    ],
)
def test_goto_the_kernel_refuses_is_refused_at_load(values: dict[str, Any], why: str) -> None:
    # `ip rule add pref 100 goto 50` (or goto 100): "Backward goto not supported". The
    # model used to accept them, and a walk reaching such a rule looped until MemoryError.
    doc = _rule(_doc("broken"), **values)
    with pytest.raises(SnapshotError, match=why) as info:
        codec.loads(json.dumps(doc), source="snapshot x.json")
    assert f"$.rules[{len(doc['rules']) - 1}].goto" in str(info.value)


def test_model_refuses_a_backward_goto_built_in_code() -> None:
    # No codec involved (a hypothetical snapshot, as fix/predict makes them): the Fib
    # itself refuses what would make fib_lookup's walk loop forever.
    snap = with_rules(broken_connector(), Rule(family=4, priority=100, action="goto", goto=100))
    with pytest.raises(SnapshotError, match="backward or self goto"):
        Fib.from_snapshot(snap)


def test_forward_goto_still_walks() -> None:
    snap = with_rules(
        broken_connector(),
        Rule(family=4, priority=100, action="goto", goto=200),
        Rule(family=4, priority=200, table=254),
    )
    assert route_get(snap, FlowKey(dst="10.0.1.50")).dev == "eth0"
    assert Fib(snap).rules  # built


def test_recorded_snapshots_pass_unchanged() -> None:
    for path in sorted(SNAPSHOTS.glob("*.json")):
        snap = codec.load(path)
        assert check_snapshot(snap) is snap


@pytest.mark.parametrize("depth", [1_000, 100_000])
def test_deep_json_is_refused_before_decoding(
    depth: int, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    doc = _doc("broken")
    text = json.dumps(doc).replace(
        '"ruleset": {', '"ruleset": {"x": ' + "[" * depth + "]" * depth + ", ", 1
    )
    path = tmp_path / "deep.json"
    path.write_text(text)
    assert main(["doctor", "--snapshot", str(path)]) == 2
    assert "nested deeper than 64 levels" in _one_error_line(capsys)


def test_deep_toml_config_is_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "meshpath.toml"
    path.write_text("x = " + "[" * 5000 + "1" + "]" * 5000 + "\n")
    assert main(["--config", str(path), "ranges"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "nested deeper than 16 levels" in err


def test_toml_brackets_in_strings_and_comments_do_not_count(tmp_path: Path) -> None:
    text = (
        "a = \"[[[[[[[[[[[[[[[[[[[[\" # {{{{{{{{{{{{{{{{{{{{{{{{\nb = '''\n[[[[[[[[[[[[[[[[[['''\n"
    )
    assert not too_deep(text, 1, "toml")
    assert too_deep("x = [[1]]", 1, "toml") and not too_deep("x = [[1]]", 2, "toml")


# -- the nesting pre-scan agrees with a real parse -------------------------------------------
def _depth(value: Any) -> int:
    if isinstance(value, dict):
        return 1 + max((_depth(v) for v in value.values()), default=0)
    if isinstance(value, list):
        return 1 + max((_depth(v) for v in value), default=0)
    return 0


_TRICKY = st.text(alphabet='[]{}"\\ab\n', max_size=8)
_JSON = st.recursive(
    st.one_of(st.none(), st.integers(), _TRICKY),
    lambda inner: st.one_of(
        st.lists(inner, max_size=3), st.dictionaries(_TRICKY, inner, max_size=3)
    ),
    max_leaves=30,
)


@settings(max_examples=300, deadline=None)
@given(_JSON)
def test_too_deep_matches_the_parsed_depth(value: Any) -> None:
    text = json.dumps(value, ensure_ascii=bool(_depth(value) % 2))
    depth = _depth(value)
    assert not too_deep(text, depth)
    assert too_deep(text, depth - 1) == (depth > 0)
    assert too_deep(msgspec.json.encode(value), max(depth - 1, 0)) == (depth > 0)
