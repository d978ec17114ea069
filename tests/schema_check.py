"""Validate a command's --json document against the schema it names (meshpath.schemas)."""

from __future__ import annotations

from typing import Any

import jsonschema

from meshpath import schemas


def assert_schema(doc: Any) -> None:
    """``doc`` names its schema (``"schema": "meshpath/NAME/V"``) and validates against it."""
    assert isinstance(doc, dict) and "schema" in doc, "no schema id in the document"
    _, name, version = doc["schema"].split("/")
    assert schemas.VERSIONS[name] == int(version), doc["schema"]
    jsonschema.validate(doc, schemas.load(name), cls=jsonschema.Draft202012Validator)
