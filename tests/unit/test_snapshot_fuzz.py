"""Recorded snapshots with well-typed but meaningless values: the doctor and every fix plan
either work or stop with one line (exit 2 naming the snapshot, or 3), never a traceback.

Each example takes a recorded snapshot (tests/data/snapshots), changes one to three values
at random paths to random values *of the same JSON type* (an int for an int, a string
for a string, any JSON inside the raw nft/FRR documents), then runs ``doctor --snapshot``
and ``fix --mode nat|route|bgp --snapshot`` in-process. The codec's types pass such a
snapshot; its meaning is what :mod:`meshpath.state.validate` checks once at load.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
from pathlib import Path
from typing import Any

import msgspec
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from meshpath.cli import main
from meshpath.state import PersistedSysctl, RangeCover, SplitEntry, SplitView, codec

SNAPSHOTS = Path(__file__).parent.parent / "data" / "snapshots"


def _schema2(name: str) -> dict[str, Any]:
    """A recorded (schema 1) snapshot with schema 2's parts filled in: the client's Split
    Tunnels list, WARP's table as a SplitView, persisted sysctls, processes."""
    snap = codec.load(SNAPSHOTS / f"{name}.json")
    entries = tuple(SplitEntry(value=v) for v in ("10.0.0.0/8", "100.64.0.0/10", "x.example"))
    warp = msgspec.structs.replace(
        snap.warp, available=True, status="Connected", split_mode="exclude",
        split_entries=entries, registration="connector", version="2025.1",
    )  # fmt: skip
    view = SplitView(
        table_routes=3, mode="exclude",
        ranges=(RangeCover(key="source_v4", range="100.64.0.0/12", cover="none",
                           gap=("100.64.0.0/10",)),),
    )  # fmt: skip
    persisted = (PersistedSysctl(file="/etc/sysctl.d/99.conf", key="net.ipv4.ip_forward",
                                 value="1"),)  # fmt: skip
    snap = msgspec.structs.replace(
        snap, schema_version=2, warp=warp, warp_split=view, persisted_sysctls=persisted,
        processes=("cloudflared", "warp-svc"),
    )  # fmt: skip
    doc: dict[str, Any] = json.loads(codec.dumps(snap))
    return doc


DOCS = {p.stem: json.loads(p.read_text()) for p in sorted(SNAPSHOTS.glob("*.json"))}
DOCS |= {f"{name}-v2": _schema2(name) for name in ("broken", "nat", "bgp")}
EXAMPLES = int(os.environ.get("MESHPATH_SNAPSHOT_FUZZ", "40"))
# Raw JSON kept from nft/FRR: any JSON value is well-typed there (dict[str, Any]).
FREE_FORM = frozenset({"ruleset", "ip_route", "bgp_summary", "bgp_advertised"})

EDGE_INTS = [0, -1, 1, 31, 32, 33, 128, 129, 255, 256, 65535, 65536, 2**31, 2**32 - 1, 2**32,
             2**63 - 1, -(2**63)]  # fmt: skip
EDGE_STRS = ["", "garbage", "0.0.0.0/0", "10.0.1.0/33", "10.0.1.0/-1", "::/0", "fe80::1",
             "10.0.1.2", "256.1.1.1", "1.2.3", "10.0.0.1/24", "x" * 300, "a/b", "eth0",
             "lo", "CloudflareWARP", "\x00", "ÿ", "router bgp x", "router bgp 99999999999",
             "goto", "throw", "-1", "1e9"]  # fmt: skip
# Keys the nft and FRR readers look up, so random objects reach their code paths.
JSON_KEYS = ["nftables", "chain", "rule", "expr", "match", "left", "right", "meta", "key",
             "payload", "protocol", "field", "family", "table", "name", "hook", "prio", "set",
             "elem", "val", "prefix", "addr", "len", "range", "ipv4Unicast", "peers", "state",
             "advertisedRoutes", "nexthops", "interfaceName", "installed", "jump", "target",
             "masquerade", "snat", "dnat", "mangle", "value", "ct", "op"]  # fmt: skip
Path_ = tuple[str | int, ...]


def _json_values() -> st.SearchStrategy[Any]:
    leaves = st.one_of(
        st.none(),
        st.booleans(),
        st.sampled_from(EDGE_INTS),
        st.integers(),
        st.floats(allow_nan=False, allow_infinity=False),
        st.sampled_from(EDGE_STRS),
        st.text(max_size=12),
    )
    keys = st.sampled_from(JSON_KEYS)
    return st.recursive(
        leaves,
        lambda inner: st.one_of(
            st.lists(inner, max_size=3), st.dictionaries(keys, inner, max_size=3)
        ),
        max_leaves=8,
    )


def _same_type(old: Any) -> st.SearchStrategy[Any]:
    """A value the decoder accepts where ``old`` was (mostly): same JSON type."""
    if isinstance(old, bool):
        return st.just(not old)
    if isinstance(old, int):
        return st.one_of(st.sampled_from(EDGE_INTS), st.integers())
    if isinstance(old, float):
        return st.floats(allow_nan=False)
    if isinstance(old, str):
        return st.one_of(st.sampled_from(EDGE_STRS), st.text(max_size=20))
    if isinstance(old, list):
        return st.sampled_from([[], old + old, old[::-1], old[:1]])
    if old is None:
        return st.one_of(st.sampled_from(EDGE_STRS), st.sampled_from(EDGE_INTS))
    return st.just(old)


def _paths(node: Any, prefix: Path_) -> list[Path_]:
    out = [prefix]
    if isinstance(node, dict):
        for key, value in node.items():
            out += _paths(value, (*prefix, key))
    elif isinstance(node, list):
        for i, value in enumerate(node):
            out += _paths(value, (*prefix, i))
    return out


def _get(doc: Any, path: Path_) -> Any:
    for key in path:
        doc = doc[key]
    return doc


@st.composite
def mutated(draw: st.DrawFn) -> tuple[str, bytes]:
    name = draw(st.sampled_from(sorted(DOCS)))
    doc = json.loads(json.dumps(DOCS[name]))
    for _ in range(draw(st.integers(1, 3))):
        # A section first, then one element of it: a path uniform over the whole file
        # would almost always land in the hundreds of routes.
        top = draw(st.sampled_from([k for k in doc if k != "schema_version"]))
        node: Any = doc[top]
        base: Path_ = (top,)
        if isinstance(node, list) and node:
            i = draw(st.integers(0, len(node) - 1))
            node, base = node[i], (top, i)
        path = draw(st.sampled_from(_paths(node, base)))
        if len(path) < 2:
            continue
        free = any(key in FREE_FORM for key in path[:-1] if isinstance(key, str))
        free = free or path[-1] in FREE_FORM
        value = draw(_json_values() if free else _same_type(_get(doc, path)))
        _get(doc, path[:-1])[path[-1]] = value
    return name, json.dumps(doc).encode()


COMMANDS = (
    ["doctor"],
    ["fix", "--mode", "nat"],
    ["fix", "--mode", "route"],
    ["fix", "--mode", "bgp", "--peer", "10.0.1.1", "--asn", "65001"],
)


def run_cli(argv: list[str]) -> tuple[int, str]:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(argv)
    return code, err.getvalue()


@settings(
    max_examples=EXAMPLES,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(case=mutated())
def test_mutated_snapshot_is_diagnosed_or_refused_in_one_line(case: tuple[str, bytes]) -> None:
    _name, data = case
    with _tmp_dir() as tmp:
        path = tmp / "snap.json"
        path.write_bytes(data)
        for command in COMMANDS:
            argv = [*command, "--snapshot", str(path)]
            if command[0] == "fix":
                argv += ["--root", str(tmp)]  # no /etc/systemd/network, no /var/lib/meshpath
            code, err = run_cli(argv)
            if code in (2, 3):
                assert err.count("\n") == 1 and err.startswith("meshpath: error:"), err
            else:
                assert code in (0, 1), (argv, code, err)
                assert err == "", err


@contextlib.contextmanager
def _tmp_dir() -> Any:
    import tempfile

    with tempfile.TemporaryDirectory(prefix="mp-snapfuzz-") as name:
        yield Path(name)
