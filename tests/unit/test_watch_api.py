"""meshpath.watch's public API, pinned; prometheus_client stays inside meshpath.watch.metrics;
the pure parts import no I/O."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import meshpath.watch

SRC = Path(meshpath.watch.__file__).parent.parent


def imports(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
    return names


def test_watch_api_is_pinned() -> None:
    assert sorted(meshpath.watch.__all__) == sorted(
        [
            "Backoff", "Debouncer", "Evaluation", "Evaluator", "Keeper", "KeeperOutcome",
            "LoopOptions", "UnitOptions", "WatchView", "Watcher", "find_drift", "heal_plan",
            "install_unit", "new_registry", "open_sources", "owned_by", "parse_listen",
            "render_unit", "serve", "summarise", "write_textfile",
        ]
    )  # fmt: skip


def test_only_the_metrics_module_imports_prometheus_client() -> None:
    users = sorted(
        str(path.relative_to(SRC))
        for path in SRC.rglob("*.py")
        if any(n.split(".")[0] == "prometheus_client" for n in imports(path))
    )
    assert users == ["watch/metrics.py"]


def test_the_pure_parts_import_no_io() -> None:
    forbidden = {"subprocess", "socket", "selectors", "meshpath.runner", "meshpath.collect"}
    for name in ("debounce.py", "events.py"):
        assert not forbidden & imports(SRC / "watch" / name), name


def test_other_commands_do_not_pay_for_prometheus_client() -> None:
    code = (
        "import sys, meshpath.cli, meshpath.lab.worker; print('prometheus_client' in sys.modules)"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "False"
