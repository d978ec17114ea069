"""meshpath: make the Worker -> Cloudflare Mesh -> WARP Connector -> LAN path work, and prove it."""

from __future__ import annotations

from typing import Any

__all__ = ["__version__"]


def __getattr__(name: str) -> Any:
    # Read on first use (PEP 562): importlib.metadata costs ~50 ms, and every lab process
    # (six per scenario, issue 18) imports this package without needing the version.
    if name != "__version__":
        raise AttributeError(f"module 'meshpath' has no attribute {name!r}")
    from importlib.metadata import PackageNotFoundError, version

    try:
        found = version("meshpath")
    except PackageNotFoundError:  # running from a source tree without an install
        found = "0.0.0+src"
    globals()["__version__"] = found
    return found
