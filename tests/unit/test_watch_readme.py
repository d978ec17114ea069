"""The README's sample alert rules: valid for Prometheus, and about metrics that exist."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.unit.test_watch_metrics import FAMILIES

README = Path(__file__).parent.parent.parent / "README.md"


def alert_rules() -> str:
    text = README.read_text()
    blocks = re.findall(r"```yaml\n(.*?)```", text, flags=re.DOTALL)
    rules = [b for b in blocks if "alert: MeshpathWorkerPathBroken" in b]
    assert len(rules) == 1
    return rules[0]


def test_the_rules_name_only_metrics_meshpath_exports() -> None:
    exported = {
        name + ("_total" if kind == "counter" else "") for name, (kind, _) in FAMILIES.items()
    }
    used = set(re.findall(r"\bmeshpath_[a-z_]+", alert_rules()))
    assert used and used <= exported, used - exported


@pytest.mark.skipif(shutil.which("promtool") is None, reason="promtool not installed")
def test_promtool_accepts_the_rules(tmp_path: Path) -> None:
    path = tmp_path / "meshpath.rules.yml"
    path.write_text(alert_rules())
    done = subprocess.run(
        ["promtool", "check", "rules", str(path)], capture_output=True, text=True, check=False
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "SUCCESS: 4 rules found" in done.stdout
