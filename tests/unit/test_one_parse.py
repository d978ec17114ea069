"""Each tool's output is parsed once, at the edge (issue #17 item 1).

The package is read as source (``ast``): JSON is decoded only in ``collect/`` and in the
places listed in ALLOWED below, each with its reason and its exact number of sites (a new
decode in an allowed file fails too, and so does a stale entry); vtysh's argv is built only
in ``collect/frr.py``; FRR's JSON keys are read only in ``state/frr.py`` and the nft
document's top level only in ``state/nft.py``/``collect/nft.py``.
"""

from __future__ import annotations

import ast
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Final

import pytest

import meshpath

PACKAGE: Final = Path(meshpath.__file__).parent
EDGE: Final = "collect/"  # the I/O edge that decodes tools' output

DECODERS: Final = frozenset(
    {"json.loads", "json.load", "json.JSONDecoder", "msgspec.json.decode",
     "msgspec.json.Decoder"}
)  # fmt: skip

# file -> (sites, reason). Files of meshpath's own formats or of HTTP bodies, not tools' output.
ALLOWED: Final = {
    "state/codec.py": (2, "the snapshot codec (meshpath's own versioned format)"),
    "apply/journal.py": (1, "the fix journal (meshpath's own file)"),
    "schemas/__init__.py": (2, "the --json schema files shipped in the package"),
    "worker/jsonc.py": (1, "the user's wrangler.jsonc (configuration, not a tool's output)"),
    "lab/state.py": (1, "the lab's own state file"),
    "lab/worker/runtime.py": (1, "the lab Worker's package.json, shipped in the package"),
    "lab/apps.py": (2, "the service's own log and its HTTP body"),
    "lab/warp_nodes.py": (1, "the WARP emulator's state file (the lab's own)"),
    "lab/wiring.py": (1, "the tunnel emulator's status file (the lab's own)"),
    "lab/ha.py": (
        3,
        "the replica tunnel emulators' status files (the lab's own) and meshpath's own "
        "fleet facts document",
    ),
    "cli/fleet_cmd.py": (1, "fleet facts documents and snapshots (meshpath's own formats)"),
    "lab/warpcli.py": (1, "the emulated warp-cli's status file (the lab's own)"),
    "lab/cfapi.py": (2, "the API emulator's state file and its HTTP request bodies"),
    "lab/warpd.py": (1, "the API emulator's HTTP answer"),
    "lab/run.py": (1, "the service's HTTP body"),
}

# FRR's JSON keys: read in state/frr.py only (collect/frr.py decodes, state/frr.py walks).
FRR_KEYS: Final = frozenset(
    {"ipv4Unicast", "peers", "advertisedRoutes", "peerState", "pfxSnt", "pfxRcd", "peerId",
     "interfaceName", "nexthops"}
)  # fmt: skip
FRR_WALKER: Final = "state/frr.py"
# A loaded snapshot's raw JSON is checked for the shapes its readers index into, once, before
# any typed view reads it: the one other reader of FRR's keys and nft's document.
VALIDATOR: Final = "state/validate.py"
NFT_WALKERS: Final = frozenset({"state/nft.py", "collect/nft.py", VALIDATOR})
VTYSH_BUILDERS: Final = {
    "collect/frr.py": "the one vtysh argv builder (vtysh_base, vtysh_argv)",
    "fix/plan.py": "FRR_PROBE: a plan's probe as data; the executor runs it through "
    "collect.frr.vtysh_base",
}


def _modules(root: Path) -> Iterator[tuple[str, ast.Module]]:
    for path in sorted(root.rglob("*.py")):
        yield path.relative_to(root).as_posix(), ast.parse(path.read_text(), str(path))


def _dotted(node: ast.expr) -> str:
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        return f"{_dotted(node.value)}.{node.attr}"
    return "?"


def decode_sites(tree: ast.Module) -> int:
    """Calls of a JSON decoder, and decoders imported by name (``from json import loads``)."""
    calls = sum(
        1
        for node in ast.walk(tree)
        if isinstance(node, ast.Call) and _dotted(node.func) in DECODERS
    )
    imported = sum(
        1
        for node in ast.walk(tree)
        if isinstance(node, ast.ImportFrom)
        for alias in node.names
        if f"{node.module}.{alias.name}" in DECODERS
    )
    return calls + imported


def vtysh_argvs(tree: ast.Module) -> int:
    """List/tuple displays whose first element is the string "vtysh": an argv being built."""
    return sum(
        1
        for node in ast.walk(tree)
        if isinstance(node, ast.List | ast.Tuple)
        and node.elts
        and isinstance(node.elts[0], ast.Constant)
        and node.elts[0].value == "vtysh"
    )


def key_reads(tree: ast.Module, keys: frozenset[str]) -> set[str]:
    """Constant keys read with ``x[KEY]`` or ``x.get(KEY)``."""
    found = set()
    for node in ast.walk(tree):
        key = None
        if isinstance(node, ast.Subscript) and isinstance(node.ctx, ast.Load):
            key = node.slice
        elif isinstance(node, ast.Call) and _dotted(node.func).endswith(".get") and node.args:
            key = node.args[0]
        if isinstance(key, ast.Constant) and key.value in keys:
            found.add(str(key.value))
    return found


def decode_problems(root: Path) -> list[str]:
    seen = Counter({name: decode_sites(tree) for name, tree in _modules(root)})
    problems = [
        f"{name}: {count} JSON decode(s) outside {EDGE}; parse the tool's output in "
        f"{EDGE} (or list a file of meshpath's own format in ALLOWED with its reason)"
        for name, count in sorted(seen.items())
        if count and not name.startswith(EDGE) and name not in ALLOWED
    ]
    problems += [
        f"{name}: {seen[name]} JSON decode(s), ALLOWED says {sites} ({reason})"
        for name, (sites, reason) in ALLOWED.items()
        if seen[name] != sites
    ]
    return problems


def test_json_is_decoded_only_at_the_edge_and_in_listed_files() -> None:
    assert decode_problems(PACKAGE) == []


def test_vtysh_argv_is_built_in_one_place() -> None:
    builders = {name for name, tree in _modules(PACKAGE) if vtysh_argvs(tree)}
    assert builders == set(VTYSH_BUILDERS)


def test_frr_json_is_walked_only_in_state_frr() -> None:
    readers = {
        name: sorted(keys)
        for name, tree in _modules(PACKAGE)
        if (keys := key_reads(tree, FRR_KEYS)) and name not in (FRR_WALKER, VALIDATOR)
    }
    assert readers == {}


def test_nft_document_is_walked_only_in_state_nft() -> None:
    readers = {
        name
        for name, tree in _modules(PACKAGE)
        if key_reads(tree, frozenset({"nftables"})) and name not in NFT_WALKERS
    }
    assert readers == set()


@pytest.mark.parametrize(
    ("source", "sites"),
    [
        ("import json\njson.loads(x)\n", 1),
        ("from json import loads\nloads(x)\n", 1),
        ("import msgspec\nmsgspec.json.decode(b, type=T)\nmsgspec.json.Decoder(T)\n", 2),
        ("import json\njson.dumps(x)\n", 0),
    ],
)
def test_decode_sites_counts_each_form(source: str, sites: int) -> None:
    assert decode_sites(ast.parse(source)) == sites


def test_a_new_decode_is_caught(tmp_path: Path) -> None:
    """The guard itself: a tool's output decoded in checks/ (or once more in an allowed
    file) is reported, naming the file."""
    (tmp_path / "checks").mkdir()
    (tmp_path / "checks" / "frr.py").write_text("import json\nx = json.loads(text)\n")
    (tmp_path / "lab").mkdir()
    (tmp_path / "lab" / "run.py").write_text("import json\njson.loads(a)\njson.loads(b)\n")
    problems = decode_problems(tmp_path)
    assert any(p.startswith("checks/frr.py: 1 JSON decode") for p in problems)
    assert any(p.startswith("lab/run.py: 2 JSON decode(s), ALLOWED says 1") for p in problems)
    argv = ast.parse('argv = ["vtysh", "-c", "show bgp summary json"]')
    assert vtysh_argvs(argv) == 1
    walk = ast.parse('state = summary["ipv4Unicast"]["peers"].get("10.0.0.1")')
    assert key_reads(walk, FRR_KEYS) == {"ipv4Unicast", "peers"}
