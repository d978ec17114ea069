"""`python -m meshpath.schemas`: rewrite the generated (model) parts of the schema files."""

from __future__ import annotations

import json
from importlib import resources

from meshpath.schemas import MODEL_PARTS, VERSIONS, load, regenerate


def main() -> None:
    root = resources.files("meshpath.schemas")
    for name in MODEL_PARTS:
        path = root.joinpath(f"{name}.v{VERSIONS[name]}.json")
        text = json.dumps(regenerate(name, load(name)), indent=2) + "\n"
        with resources.as_file(path) as real:
            real.write_text(text)
        print(f"wrote {name}")


if __name__ == "__main__":
    main()
