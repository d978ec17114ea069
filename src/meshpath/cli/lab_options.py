"""The --instance option of the lab commands."""

from __future__ import annotations

from typing import Annotated

import typer

from meshpath.lab.topology import check_instance


def instance_option(value: str | None) -> str | None:
    """Validate --instance as it is parsed: a bad id is exit 2 before anything runs."""
    return None if value is None else check_instance(value)


Instance = Annotated[
    str | None,
    typer.Option(
        "--instance",
        "-i",
        callback=instance_option,
        help="Lab instance id (default: the only one).",
    ),
]
