"""The simulator's public API is pinned, and the package stays pure (no I/O imports)."""

from __future__ import annotations

import ast
from pathlib import Path

import meshpath.sim as sim
from meshpath.sim import Fib, FlowKey, route_get, values
from meshpath.state import Route
from tests.builders import broken_connector, with_routes

SIM_DIR = Path(sim.__file__).parent


def test_exported_members() -> None:
    assert sorted(sim.__all__) == [
        "Decision", "Fib", "FlowKey", "FlowResult", "HookResult", "KernelStep", "NfPacket",
        "PathResult", "Ruleset", "check_rp_filter", "match_rule", "netfilter_verdict",
        "route_get", "route_input", "route_many", "route_output", "simulate_flow",
    ]  # fmt: skip


PURE_SOCKET = {"inet_pton", "AF_INET"}


def test_no_io_imports() -> None:
    banned = {"subprocess", "socket", "pyroute2", "os", "meshpath.collect", "meshpath.runner"}
    for path in SIM_DIR.glob("*.py"):
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            names = []
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module:
                # socket's address parser is pure (text -> bytes): sim/addr.py parses with it
                pure = node.module == "socket" and {a.name for a in node.names} <= PURE_SOCKET
                names = [] if pure else [node.module]
            assert not [n for n in names if n.split(".")[0] in banned or n in banned], path


def test_hypothetical_change_is_a_new_snapshot() -> None:
    snap = broken_connector()
    reply = FlowKey(dst="100.64.12.189", src="10.0.1.50", iif="eth0")
    fixed = with_routes(snap, Route(table=254, family=4, dst="100.64.0.0/12", dev="CloudflareWARP"))
    assert route_get(snap, reply).dev == "eth0"
    assert route_get(fixed, reply).dev == "CloudflareWARP"
    assert Fib.from_snapshot(snap).snapshot is not Fib.from_snapshot(fixed).snapshot
    assert route_get(snap, reply).outcome == values.FORWARD  # the original is untouched


def test_broadcast_input_checks_the_source_against_zero() -> None:
    snap = with_routes(
        broken_connector(),
        Route(table=255, family=4, dst="10.0.1.255/32", type="broadcast", dev="eth0",
              protocol=2, scope=253, prefsrc="10.0.1.2"),
    )  # fmt: skip
    d = route_get(snap, FlowKey(dst="10.0.1.255", src="10.0.1.50", iif="eth0"))
    assert (d.outcome, d.dev) == (values.BROADCAST, "lo")


def test_no_module_level_mutable_state() -> None:
    # The Fib owns every memo (issue 17 item 4): a module-level container must be a Final
    # constant, and no library module switches the garbage collector.
    containers = (ast.List, ast.Dict, ast.Set, ast.ListComp, ast.DictComp, ast.SetComp)
    for path in SIM_DIR.glob("*.py"):
        for node in ast.parse(path.read_text()).body:
            if isinstance(node, ast.AnnAssign) and isinstance(node.value, containers):
                assert "Final" in ast.unparse(node.annotation), (path.name, node.lineno)
            names = [t.id for t in getattr(node, "targets", ()) if isinstance(t, ast.Name)]
            if (
                names != ["__all__"]
                and isinstance(node, ast.Assign)
                and isinstance(node.value, containers)
            ):
                raise AssertionError(f"{path.name}:{node.lineno}: mutable module-level value")
    for path in SIM_DIR.parent.rglob("*.py"):
        text = path.read_text()
        assert "import gc" not in text and "gc.disable" not in text, path
