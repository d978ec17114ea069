"""meshpath's configuration: `/etc/meshpath/meshpath.toml` or `--config FILE`.

    [ranges]                 # Cloudflare ranges, when the account moved them
    source_v4 = "100.64.0.0/12"
    device_v4 = "100.96.0.0/12"

    [connector]
    tunnel_interface = "CloudflareWARP"

Flags given on the command line win over the file; the file wins over the defaults.
"""

from __future__ import annotations

import tomllib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

from meshpath.errors import ConfigError
from meshpath.fsafe import read_bounded
from meshpath.nesting import too_deep
from meshpath.ranges import DEFAULT_RANGES, CloudflareRanges, parse_override_flag
from meshpath.values import ifname_problem

DEFAULT_CONFIG_PATH: Final = Path("/etc/meshpath/meshpath.toml")
DEFAULT_TUNNEL: Final = "CloudflareWARP"
CONFIG_LIMIT: Final = 4 << 20  # a real config is a few hundred bytes
MAX_NESTING: Final = 16  # meshpath.toml nests two levels ([ranges], [connector])


@dataclass(frozen=True, slots=True)
class Settings:
    """Everything commands need from configuration."""

    ranges: CloudflareRanges = DEFAULT_RANGES
    tunnel_interface: str = DEFAULT_TUNNEL
    source: str = "defaults"


def load_settings(path: Path | None, range_flags: Sequence[str] = ()) -> Settings:
    """Defaults, then the config file (explicit path must exist), then ``--range`` flags."""
    data: Mapping[str, Any] = {}
    source = "defaults"
    chosen = path if path is not None else DEFAULT_CONFIG_PATH
    if path is not None or chosen.exists():
        data = _read_toml(chosen)
        source = str(chosen)
    file_ranges = _table(data, "ranges", chosen)
    connector = _table(data, "connector", chosen)
    overrides = {str(k): _text(v, f"ranges.{k}", chosen) for k, v in file_ranges.items()}
    for flag in range_flags:
        key, value = parse_override_flag(flag)
        overrides[key] = value
    if range_flags:
        source = f"{source} + --range flags"
    ranges = DEFAULT_RANGES.with_overrides(overrides) if overrides else DEFAULT_RANGES
    tunnel = _text(connector.get("tunnel_interface", DEFAULT_TUNNEL), "tunnel_interface", chosen)
    problem = ifname_problem(tunnel)
    if problem is not None:
        raise ConfigError(f"config file {chosen}: tunnel_interface {tunnel!r} {problem}")
    return Settings(ranges=ranges, tunnel_interface=tunnel, source=source)


def _read_toml(path: Path) -> Mapping[str, Any]:
    try:
        data = read_bounded(path, CONFIG_LIMIT)
    except FileNotFoundError as exc:
        raise ConfigError(f"config file {path} does not exist") from exc
    except OSError as exc:
        raise ConfigError(f"config file {path}: cannot read ({exc.strerror})") from exc
    if too_deep(data, MAX_NESTING, "toml"):
        # tomllib recurses per level: refuse before it overflows the stack.
        raise ConfigError(f"config file {path}: nested deeper than {MAX_NESTING} levels")
    try:
        return tomllib.loads(data.decode())
    except (UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise ConfigError(f"config file {path} is not valid TOML: {exc}") from exc


def _table(data: Mapping[str, Any], name: str, path: Path) -> Mapping[str, Any]:
    value = data.get(name, {})
    if not isinstance(value, dict):
        raise ConfigError(f"config file {path}: [{name}] must be a table")
    return value


def _text(value: object, name: str, path: Path) -> str:
    if not isinstance(value, str):
        raise ConfigError(f"config file {path}: {name} must be a string, got {value!r}")
    return value
