"""meshpath: make the Worker -> Cloudflare Mesh -> WARP Connector -> LAN path work, and prove it."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("meshpath")
except PackageNotFoundError:  # running from a source tree without an install
    __version__ = "0.0.0+src"

__all__ = ["__version__"]
