"""`--claim-dir` (tests/conftest.py): each module runs in exactly one of the pytest runs."""

from __future__ import annotations

from pathlib import Path

from tests.conftest import claim


def test_the_first_claim_wins_and_each_module_is_claimed_apart(tmp_path: Path) -> None:
    assert claim(tmp_path, "tests/lab/test_a.py") is True
    assert claim(tmp_path, "tests/lab/test_a.py") is False
    assert claim(tmp_path, "tests/lab/test_b.py") is True
    assert len(list(tmp_path.iterdir())) == 2
