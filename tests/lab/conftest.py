"""The lab as a fixture: one lab instance per test module, always torn down.

Other test modules use it the same way::

    def test_something(lab: Lab) -> None:
        lab.setup("broken")
        lab.exec("conn", ["meshpath", "doctor"])
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from meshpath.lab import Lab
from tests.conftest import ROOT_OK, ROOT_REASON


@pytest.fixture(scope="module")
def lab() -> Iterator[Lab]:
    """A fresh lab owned by this test process; down at the end of the module, whatever happens."""
    if not ROOT_OK:
        pytest.skip(ROOT_REASON)
    with Lab.create() as made:
        yield made
