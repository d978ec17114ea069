"""A Worker's wrangler configuration: the parts meshpath reads, as immutable values (pure).

Formats (wrangler picks the first that exists: ``wrangler.json``, ``wrangler.jsonc``,
``wrangler.toml``; both JSON names are read as JSONC, comments and trailing commas
allowed). The Workers VPC bindings, from Cloudflare's docs
(developers.cloudflare.com/workers-vpc/configuration/vpc-networks/ and
.../vpc-services/)::

    "vpc_networks": [                       # any host the URL names, through Mesh/Tunnel
      { "binding": "MESH", "network_id": "cf1:network", "remote": true },
      { "binding": "PROD", "network_id": "cf1:vnet:<uuid>", "remote": true },
      { "binding": "VPC",  "tunnel_id": "<tunnel uuid>",  "remote": true }
    ],
    "vpc_services": [                       # one pre-registered host and port
      { "binding": "API", "service_id": "<service id>", "remote": true }
    ]

Bindings are not inherited by ``env.<name>`` sections, so each environment's own lists are
read too. A value of the wrong type (a list where an object belongs, a number for a
binding name) is a :class:`~meshpath.errors.WorkerConfigError`: wrangler itself refuses
such a file, and nothing below can reason about it.
"""

from __future__ import annotations

import json
import tomllib
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any, Final, Literal

from meshpath.errors import WorkerConfigError
from meshpath.worker import jsonc

# wrangler's own search order (findWranglerConfig in workers-sdk).
CONFIG_NAMES: Final = ("wrangler.json", "wrangler.jsonc", "wrangler.toml")
VPC_KINDS: Final = ("vpc_networks", "vpc_services")
VpcKind = Literal["vpc_networks", "vpc_services"]
ConfigFormat = Literal["json", "jsonc", "toml"]
_VPC_FIELDS: Final = {
    "vpc_networks": ("binding", "network_id", "tunnel_id", "remote"),
    "vpc_services": ("binding", "service_id", "remote"),
}


@dataclass(frozen=True, slots=True)
class VpcBinding:
    """One ``vpc_networks`` or ``vpc_services`` entry, exactly as written (None: absent)."""

    kind: VpcKind
    where: str  # e.g. "vpc_networks[0]" or "env.staging.vpc_services[1]"
    env: str | None
    binding: str | None
    network_id: str | None = None
    tunnel_id: str | None = None
    service_id: str | None = None
    remote: bool | None = None

    def as_dict(self) -> dict[str, object]:
        data: dict[str, object] = {"kind": self.kind, "where": self.where, "env": self.env}
        data["binding"] = self.binding
        for key in _VPC_FIELDS[self.kind][1:]:
            data[key] = getattr(self, key)
        return data


@dataclass(frozen=True, slots=True)
class OtherBinding:
    """A binding of another kind (KV, service, vars, ...): its name and where it is."""

    kind: str  # the top-level key: "kv_namespaces", "services", "vars", ...
    where: str
    env: str | None
    name: str


@dataclass(frozen=True, slots=True)
class WranglerConfig:
    """What meshpath reads of a wrangler config."""

    file: str
    format: ConfigFormat
    name: str | None
    main: str | None
    compatibility_date: str | None
    compatibility_flags: tuple[str, ...]
    vpc: tuple[VpcBinding, ...]
    other: tuple[OtherBinding, ...]
    vars: tuple[tuple[str, str], ...] = ()  # top-level vars: name -> the value as JSON text

    def bindings(self, env: str | None = None) -> tuple[VpcBinding, ...]:
        """The VPC bindings of one section (None: the top level)."""
        return tuple(b for b in self.vpc if b.env == env)

    @property
    def envs(self) -> tuple[str | None, ...]:
        seen: dict[str | None, None] = {None: None}
        for env in (*(b.env for b in self.vpc), *(o.env for o in self.other)):
            seen.setdefault(env, None)
        return tuple(seen)


def config_format(filename: str) -> ConfigFormat:
    if filename.endswith(".toml"):
        return "toml"
    return "jsonc" if filename.endswith(".jsonc") else "json"


def parse_config(text: str, file: str) -> WranglerConfig:
    """Parse wrangler config ``text`` read from ``file`` (its name picks the format)."""
    fmt = config_format(file)
    data = _parse_text(text, file, fmt)
    if not isinstance(data, dict):
        raise WorkerConfigError(f"{file}: the top level must be an object/table")
    vpc: list[VpcBinding] = []
    other: list[OtherBinding] = []
    for env, section, prefix in _sections(data, file):
        vpc += _vpc_entries(section, env, prefix, file)
        other += _other_bindings(section, env, prefix)
    flags = data.get("compatibility_flags", [])
    if not isinstance(flags, list) or not all(isinstance(f, str) for f in flags):
        raise WorkerConfigError(f"{file}: compatibility_flags must be a list of strings")
    return WranglerConfig(
        file=file,
        format=fmt,
        name=_opt_str(data, "name", file, ""),
        main=_opt_str(data, "main", file, ""),
        compatibility_date=_opt_str(data, "compatibility_date", file, ""),
        compatibility_flags=tuple(flags),
        vpc=tuple(vpc),
        other=tuple(other),
        vars=_vars(data, file),
    )


def _vars(data: Mapping[str, Any], file: str) -> tuple[tuple[str, str], ...]:
    values = data.get("vars", {})
    if not isinstance(values, dict):
        raise WorkerConfigError(f"{file}: vars must be an object/table")
    return tuple((str(k), json.dumps(v)) for k, v in values.items())


def _parse_text(text: str, file: str, fmt: ConfigFormat) -> Any:
    try:
        return tomllib.loads(text) if fmt == "toml" else jsonc.loads(text)
    except (tomllib.TOMLDecodeError, jsonc.JsoncError) as exc:
        kind = "TOML" if fmt == "toml" else "JSON (comments and trailing commas allowed)"
        raise WorkerConfigError(f"{file} is not valid {kind}: {exc}") from exc


def _sections(
    data: Mapping[str, Any], file: str
) -> Iterator[tuple[str | None, Mapping[str, Any], str]]:
    """The top level, then each ``env.<name>`` section, with the path prefix to name them."""
    yield None, data, ""
    envs = data.get("env", {})
    if not isinstance(envs, dict):
        raise WorkerConfigError(f"{file}: env must be an object/table of environments")
    for name, section in envs.items():
        if not isinstance(section, dict):
            raise WorkerConfigError(f"{file}: env.{name} must be an object/table")
        yield str(name), section, f"env.{name}."


def _vpc_entries(
    section: Mapping[str, Any], env: str | None, prefix: str, file: str
) -> list[VpcBinding]:
    out: list[VpcBinding] = []
    for kind in VPC_KINDS:
        entries = section.get(kind, [])
        if not isinstance(entries, list):
            raise WorkerConfigError(f"{file}: {prefix}{kind} must be a list of objects")
        for i, entry in enumerate(entries):
            where = f"{prefix}{kind}[{i}]"
            if not isinstance(entry, dict):
                raise WorkerConfigError(f"{file}: {where} must be an object, got {entry!r}")
            out.append(_vpc_binding(kind, where, env, entry, file))
    return out


def _vpc_binding(
    kind: VpcKind, where: str, env: str | None, entry: Mapping[str, Any], file: str
) -> VpcBinding:
    remote = entry.get("remote")
    if remote is not None and not isinstance(remote, bool):
        raise WorkerConfigError(f"{file}: {where}.remote must be true or false, got {remote!r}")
    fields = {key: _opt_str(entry, key, file, f"{where}.") for key in _VPC_FIELDS[kind][:-1]}
    return VpcBinding(kind=kind, where=where, env=env, remote=remote, **fields)


def _opt_str(data: Mapping[str, Any], key: str, file: str, prefix: str) -> str | None:
    value = data.get(key)
    if value is not None and not isinstance(value, str):
        raise WorkerConfigError(f"{file}: {prefix}{key} must be a string, got {value!r}")
    return value


def _other_bindings(section: Mapping[str, Any], env: str | None, prefix: str) -> list[OtherBinding]:
    """Every other named binding: any object's ``binding`` string, Durable Object ``name``s
    and ``vars`` keys (used for duplicate names and for telling workerd what is needed)."""
    out: list[OtherBinding] = []
    for key, value in section.items():
        if key in ("env", *VPC_KINDS):
            continue
        if key == "vars" and isinstance(value, dict):
            out += [OtherBinding("vars", f"{prefix}vars.{k}", env, str(k)) for k in value]
            continue
        for where, name in _binding_names(value, f"{prefix}{key}", key == "durable_objects"):
            out.append(OtherBinding(key, where, env, name))
    return out


def _binding_names(value: Any, where: str, durable: bool) -> Iterator[tuple[str, str]]:
    if isinstance(value, dict):
        name = value.get("binding", value.get("name") if durable else None)
        if isinstance(name, str):
            yield where, name
        for key, inner in value.items():
            if isinstance(inner, dict | list):
                yield from _binding_names(inner, f"{where}.{key}", durable)
    elif isinstance(value, list):
        for i, item in enumerate(value):
            yield from _binding_names(item, f"{where}[{i}]", durable)
