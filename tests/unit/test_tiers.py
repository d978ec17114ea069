"""`make test` runs the suite as two tiers at once: every test folder must be in one."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def _tier(name: str) -> set[str]:
    match = re.search(rf"^{name} := (.+)$", (ROOT / "Makefile").read_text(), re.M)
    assert match, f"{name} missing from the Makefile"
    return set(match.group(1).split())


def test_every_test_folder_is_in_a_tier() -> None:
    folders = {
        f"tests/{d.name}"
        for d in (ROOT / "tests").iterdir()
        if d.is_dir() and any(d.rglob("test_*.py"))
    }
    fast, netns = _tier("TIER_FAST"), _tier("TIER_NETNS")
    assert not fast & netns
    assert folders == fast | netns, f"not run by make test: {sorted(folders - fast - netns)}"
