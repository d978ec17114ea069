"""The one exception tree: every exception class of the package is defined in
meshpath.errors and drawn in its docstring, or is one of the few internal ones the
docstring names; old import paths keep working."""

from __future__ import annotations

import ast
import importlib
import inspect
from pathlib import Path

import pytest

import meshpath
from meshpath import errors

PACKAGE = Path(meshpath.__file__).parent


def exception_classes() -> dict[str, str]:
    """Every class in the package that derives from an exception: name -> module."""
    found: dict[str, str] = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        module = ".".join(("meshpath", *path.relative_to(PACKAGE).with_suffix("").parts))
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ClassDef) and node.bases:
                found[node.name] = module
    out: dict[str, str] = {}
    for name, module in found.items():
        value = getattr(importlib.import_module(module), name, None)
        if inspect.isclass(value) and issubclass(value, BaseException):
            out[name] = module
    return out


def test_every_exception_is_in_the_tree_or_named_internal() -> None:
    doc = errors.__doc__ or ""
    classes = exception_classes()
    assert len(classes) > 20  # the walk found the package's exceptions at all
    for name, module in classes.items():
        if module == "meshpath.errors":
            assert f" {name} " in doc, f"{name} is not drawn in meshpath.errors' docstring"
        else:
            assert f"``{module}.{name}``" in doc, f"{module}.{name} is outside the tree"


def test_the_tree_drawn_is_the_tree_defined() -> None:
    """Each drawn class hangs under the parent the drawing shows (by indentation)."""
    lines = [ln for ln in (errors.__doc__ or "").splitlines() if "── " in ln or "Error " in ln]
    stack: list[tuple[int, str]] = []
    checked = 0
    for line in lines:
        text = line.split("── ")[-1].strip() if "── " in line else line.strip()
        name = text.split()[0]
        depth = line.index(name)
        cls = getattr(errors, name, None)
        if cls is None:
            continue
        while stack and stack[-1][0] >= depth:
            stack.pop()
        if stack:
            assert cls.__bases__ == (getattr(errors, stack[-1][1]),), name
            checked += 1
        stack.append((depth, name))
    defined = [
        c
        for c in vars(errors).values()
        if inspect.isclass(c)
        and issubclass(c, errors.MeshpathError)
        and c.__module__ == errors.__name__
    ]
    assert checked == len(defined) - 1  # all but the root


@pytest.mark.parametrize(
    ("old_home", "name"),
    [
        ("meshpath.lab.procs", "LabTimeout"),
        ("meshpath.lab.fixes", "LabFixError"),
        ("meshpath.lab.core", "LabConfigError"),
        ("meshpath.lab.state", "LabRootError"),
        ("meshpath.apply", "StepFailed"),
        ("meshpath.apply.frr", "StepFailed"),
        ("meshpath.apply", "InterruptedRun"),
        ("meshpath.apply", "LockHeld"),
        ("meshpath.apply.journal", "JournalError"),
        ("meshpath.apply.files", "FileRefused"),
        ("meshpath.apply.profile", "ProfileApiError"),
        ("meshpath.collect", "NetlinkError"),
    ],
)
def test_old_import_paths_name_the_same_class(old_home: str, name: str) -> None:
    assert getattr(importlib.import_module(old_home), name) is getattr(errors, name)


def test_environment_problems_keep_exit_3() -> None:
    for name in ("LabTimeout", "StepFailed", "LockHeld", "NetlinkError", "LabRootError"):
        assert getattr(errors, name).exit_code == errors.EXIT_ENVIRONMENT
