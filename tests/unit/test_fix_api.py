"""The fix/render/apply public API, pinned; and the pure core stays free of I/O imports."""

from __future__ import annotations

import ast
from pathlib import Path

import meshpath.apply
import meshpath.fix

SRC = Path(meshpath.fix.__file__).parent.parent


def test_fix_api_is_pinned() -> None:
    assert sorted(meshpath.fix.__all__) == sorted(
        [
            "METRIC_MESHPATH", "MODES", "PROTO_MESHPATH", "Action", "Expect", "FixOptions",
            "FrrReload", "Mode", "NftFile", "Plan", "PostCheck", "RemoveFile", "Run", "Step",
            "WaitBgp", "WriteFile", "fix_ranges", "plan_fix",
        ]
    )  # fmt: skip
    assert meshpath.fix.PROTO_MESHPATH == 232


def test_apply_api_is_pinned() -> None:
    assert sorted(meshpath.apply.__all__) == sorted(
        [
            "DEFAULT_STATE_DIR", "Applier", "ApplyResult", "Frr", "InterruptedRun", "Journal",
            "LockHeld", "StepFailed", "locked",
        ]
    )  # fmt: skip


def test_plans_and_renderers_import_no_io() -> None:
    forbidden = {"subprocess", "socket", "pyroute2", "fcntl", "meshpath.runner"}
    for package in ("fix", "render"):
        for path in (SRC / package).glob("*.py"):
            tree = ast.parse(path.read_text())
            for node in ast.walk(tree):
                names: list[str] = []
                if isinstance(node, ast.Import):
                    names = [a.name for a in node.names]
                elif isinstance(node, ast.ImportFrom) and node.module:
                    names = [node.module]
                assert not forbidden & set(names), f"{path.name} imports {names}"
