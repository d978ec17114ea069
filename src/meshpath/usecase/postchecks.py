"""Named post-checks that plug-ins provide: ``fix``/``verify --lab-worker`` without the
production commands importing the lab.

A plug-in registers a factory under the entry point group ``meshpath.post_checks``
(the lab does, in pyproject.toml: ``lab-worker = "meshpath.lab.postcheck:worker_round_trip"``);
the factory takes the option's value (a lab instance) and returns a :data:`RoundTrip`.
"""

from __future__ import annotations

from collections.abc import Callable
from importlib.metadata import entry_points
from typing import Final, cast

from meshpath.errors import EnvironmentProblem
from meshpath.usecase.verify import RoundTrip

GROUP: Final = "meshpath.post_checks"
LAB_WORKER: Final = "lab-worker"


def load(name: str, argument: str) -> RoundTrip:
    """The post-check ``name`` made for ``argument``; an environment error (exit 3) when no
    installed plug-in provides it."""
    found = entry_points(group=GROUP, name=name)
    if not found:
        raise EnvironmentProblem(
            f"no post-check {name!r} is installed (entry point group {GROUP}); "
            "reinstall meshpath with its lab"
        )
    factory = cast(Callable[[str], RoundTrip], next(iter(found)).load())
    return factory(argument)
