"""One name, one meaning: the lab's capture holds the trace's Packet (no second Packet
class), and the simulator's FlowResult is the only FlowResult (a trace's classified
connection is a FlowVerdict); a Step is a fix plan's step, a KernelStep the simulator's."""

from __future__ import annotations

import ast
from collections import defaultdict
from pathlib import Path

import meshpath
import meshpath.lab
import meshpath.trace
from meshpath.lab.capture import Sighting, parse_line, parse_lines
from meshpath.trace.packet import SYN, Packet

PACKAGE = Path(meshpath.__file__).parent


def class_homes() -> dict[str, set[str]]:
    homes: dict[str, set[str]] = defaultdict(set)
    for path in PACKAGE.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ClassDef):
                homes[node.name].add(str(path.relative_to(PACKAGE)))
    return homes


def test_flow_result_is_defined_once() -> None:
    assert class_homes()["FlowResult"] == {"sim/flow.py"}
    assert meshpath.trace.FlowVerdict.__module__ == "meshpath.trace.model"


def test_step_is_the_plan_step_and_the_kernel_step_has_its_own_name() -> None:
    # A "step" is one step of a fix plan; one thing the kernel did in the simulator is a
    # KernelStep (the sim's Step until #17 item 3).
    homes = class_homes()
    assert homes["Step"] == {"fix/model.py"}
    assert homes["KernelStep"] == {"sim/values.py"}


def test_packet_is_defined_once_in_lab_and_trace() -> None:
    homes = {h for h in class_homes()["Packet"] if h.startswith(("lab/", "trace/"))}
    assert homes == {"trace/packet.py"}
    assert meshpath.lab.Packet is Packet


def test_a_sighting_is_the_trace_packet_on_a_named_interface() -> None:
    line = (
        "22:34:00.930967 CloudflareWARP In  IP 100.64.12.189.55063 > 10.0.1.50.3000: "
        "Flags [S], seq 1350041185, win 64480, options [mss 1240], length 0"
    )
    seen = parse_line(line)
    assert isinstance(seen, Sighting) and isinstance(seen.packet, Packet)
    assert seen.packet.flags == SYN and seen.packet.seq == 1350041185
    assert seen.describe() == "CloudflareWARP In 100.64.12.189.55063 > 10.0.1.50.3000 [S]"


def test_only_tcp_lines_with_a_direction_are_sightings() -> None:
    text = (
        "eth0 Out IP 10.0.1.50.3000 > 100.64.12.189.9025: Flags [R.], seq 1, ack 2, win 0\n"
        "eth0 In IP 10.0.1.1 > 10.0.1.2: ICMP host 100.64.12.189 unreachable, length 36\n"
        "IP 10.0.1.50.3000 > 100.64.12.189.9025: Flags [S.], seq 1, ack 2, win 0\n"
    )
    assert [s.describe() for s in parse_lines(text)] == [
        "eth0 Out 10.0.1.50.3000 > 100.64.12.189.9025 [R.]"
    ]


def function_homes() -> dict[str, set[str]]:
    homes: dict[str, set[str]] = defaultdict(set)
    for path in PACKAGE.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.FunctionDef):
                homes[node.name].add(str(path.relative_to(PACKAGE)))
    return homes


def test_one_target_parser_and_one_default_target_policy() -> None:
    """#17 item 2: fix, sim and trace each had their own ``--target`` parser, and fix had
    its own default (the LAN gateway on 443)."""
    homes = function_homes()
    assert homes["parse_target"] == {"checks/targets.py"}
    assert homes["_target"] == set() and homes["lan_target"] == set()
    assert homes["choose_targets"] == {"checks/targets.py"}
