"""The JSON Schemas of every command's ``--json`` output, one file per document kind.

Each document carries ``"schema": "meshpath/<name>/<version>"`` as its first key, so a
consumer (a script, the Ansible modules, a dashboard) can tell what it reads and refuse a
version it does not know. A change that removes or retypes a field bumps the version and
adds a new file; adding an optional field does not. ``meshpath snapshot --json`` prints the
snapshot itself, whose own ``schema_version`` plays that role (its schema is generated from
the model: :func:`snapshot_schema`).
"""

from __future__ import annotations

import json
from importlib import resources
from typing import Any, Final

# name -> current version; a test checks that a file exists for each and that real outputs
# validate against it.
VERSIONS: Final = {
    "ranges": 1,
    "doctor": 1,
    "route-get": 1,
    "flow": 1,
    "trace": 1,
    "fix-plan": 1,
    "fix-result": 1,
    "verify": 1,
    "lab-up": 1,
    "lab-status": 1,
    "lab-run": 1,
    "lab-down": 1,
    "lab-demo": 1,
    "lab-exec": 1,
    "lab-call": 1,
    "worker-check": 1,
    "explain": 1,
    "explain-list": 1,
    "lab-warp-reconnect": 1,
    "lab-warp-status": 1,
    "watch-unit": 1,
    "watch-evaluation": 1,
    "watch-event": 1,
    "fleet-facts": 1,
    "fleet-check": 1,
}


def schema_id(name: str) -> str:
    return f"meshpath/{name}/{VERSIONS[name]}"


def tagged(name: str, data: dict[str, Any]) -> dict[str, Any]:
    """``data`` with its schema id as the first key."""
    return {"schema": schema_id(name), **data}


def load(name: str) -> dict[str, Any]:
    """The JSON Schema document for ``name`` at its current version."""
    text = resources.files(__package__).joinpath(f"{name}.v{VERSIONS[name]}.json").read_text()
    schema: dict[str, Any] = json.loads(text)
    return schema


# Parts of documents that are a model type dumped as is: their schema is generated from the
# type (msgspec), so it cannot drift from the code. `python -m meshpath.schemas` rewrites those
# parts in the files; a test fails when a file is not what regeneration gives.
# name -> {property: "module:Type"}, or {"": "module:Type"} when the whole document is one.
MODEL_PARTS: Final = {
    "fix-plan": {"plan": "meshpath.fix.model:Plan"},
    "fix-result": {"plan": "meshpath.fix.model:Plan"},
    "verify": {"expect": "meshpath.fix.model:Expect"},
    "route-get": {"": "meshpath.sim:Decision"},
    "flow": {"flows": "meshpath.sim.flow:FlowResult[]"},
}


def _model_type(spec: str) -> Any:
    import importlib

    many = spec.endswith("[]")
    module, _, attr = spec.removesuffix("[]").partition(":")
    kind = getattr(importlib.import_module(module), attr)
    return list[kind] if many else kind  # type: ignore[valid-type]


def regenerate(name: str, schema: dict[str, Any]) -> dict[str, Any]:
    """``schema`` with its model parts replaced by the schemas generated from the types."""
    import msgspec

    parts = MODEL_PARTS.get(name, {})
    if not parts:
        return schema
    kinds = [_model_type(spec) for spec in parts.values()]
    generated, defs = msgspec.json.schema_components(kinds, ref_template="#/$defs/{name}")
    out = {k: v for k, v in schema.items() if k != "$defs"}
    for prop, part in zip(parts, generated, strict=True):
        if prop == "":
            out["allOf"] = [part]
        else:
            out["properties"] = {**out["properties"], prop: part}
    out["$defs"] = dict(sorted(defs.items()))
    normal: dict[str, Any] = json.loads(json.dumps(out))  # tuples -> lists, as in the file
    return normal


def snapshot_schema() -> dict[str, Any]:
    """The snapshot's JSON Schema, generated from the model (never out of date)."""
    import msgspec

    from meshpath.state.model import Snapshot

    return msgspec.json.schema(Snapshot)
