"""`python -m meshpath` runs the CLI."""

from meshpath.cli import run

run()
