"""`meshpath worker check`: the Worker side of the path, as findings MP3xx (pure).

Each rule takes the parsed wrangler config and the Worker's source and returns
:class:`~meshpath.checks.finding.Finding` values, the doctor's own type: a stable ID, the
evidence (the config entry or the source line), why it breaks the Worker's request, and
the fix. The facts come from Cloudflare's Workers VPC documentation:

* VPC Networks (developers.cloudflare.com/workers-vpc/configuration/vpc-networks/): a
  binding names either a Cloudflare Tunnel (``tunnel_id``: the tunnel's UUID) or a network
  (``network_id``: ``"cf1:network"`` is Cloudflare Mesh, the account's default virtual
  network; changelog 2026-10-28: ``"cf1:vnet:<UUID>"`` selects another virtual network).
  "The remote flag must be set to true to enable remote bindings during local
  development" (wrangler has no local emulation of Workers VPC). At runtime "the URL you
  pass to fetch() ... determines the destination"; VPC Networks also expose connect().
* VPC Services (.../vpc-services/): a binding names one ``service_id``; its fetch() goes
  to the host and port registered for that service, whatever the URL says.

| ID    | finding |
|-------|---------|
| MP301 | a vpc_networks entry with neither network_id nor tunnel_id |
| MP302 | a vpc_networks entry with both network_id and tunnel_id |
| MP303 | network_id is neither ``cf1:network`` nor ``cf1:vnet:<uuid>`` |
| MP304 | tunnel_id is not a UUID |
| MP305 | ``remote: true`` missing (``wrangler dev`` cannot reach the network) |
| MP306 | the binding name is missing or not a JavaScript identifier |
| MP307 | two bindings of one Worker share a name |
| MP308 | a VPC binding the source never refers to |
| MP309 | a VPC binding the source refers to but never calls ``.fetch``/``.connect`` on |
| MP310 | a global fetch()/connect() to a private address: it bypasses the binding |
| MP311 | ``env.X.fetch()`` where X is no binding of the Worker |
| MP312 | a vpc_services entry without service_id |
| MP313 | no Workers VPC binding at all |
| MP314 | the Worker's source (``main``) was not found: source checks skipped |
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Final

from meshpath.checks.finding import Finding, Severity
from meshpath.worker.config import VpcBinding, WranglerConfig
from meshpath.worker.source import (
    Hit,
    SourceFile,
    binding_calls,
    binding_references,
    called_env_names,
    private_global_calls,
)

MESH_NETWORK: Final = "cf1:network"
_UUID = r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}"
UUID_RE: Final = re.compile(rf"^{_UUID}$")
VNET_RE: Final = re.compile(rf"^cf1:vnet:{_UUID}$")
JS_IDENTIFIER: Final = re.compile(r"^[A-Za-z_$][A-Za-z0-9_$]*$")
# Reserved words cannot be used as `env.NAME` shorthand in destructuring and confuse readers.
_RESERVED_WORDS = """break case catch class const continue debugger default delete do else
export extends false finally for function if import in instanceof new null return super switch
this throw true try typeof var void while with yield let static enum await"""
JS_RESERVED: Final = frozenset(_RESERVED_WORDS.split())
DOCS_NETWORKS: Final = "https://developers.cloudflare.com/workers-vpc/configuration/vpc-networks/"
DOCS_SERVICES: Final = "https://developers.cloudflare.com/workers-vpc/configuration/vpc-services/"


@dataclass(frozen=True, slots=True)
class WorkerProject:
    """A Worker as meshpath sees it: its config, and the source files that were found."""

    config: WranglerConfig
    sources: tuple[SourceFile, ...]
    main_found: bool


def _entry(b: VpcBinding, file: str) -> str:
    shown = {k: v for k, v in b.as_dict().items() if k not in ("kind", "where", "env")}
    fields = ", ".join(f"{k}={v!r}" for k, v in shown.items() if v is not None)
    return f"{file}: {b.where}: {fields}"


def _label(b: VpcBinding) -> str:
    return b.binding or b.where


def check_network_target(project: WorkerProject) -> list[Finding]:
    """MP301-MP304: each vpc_networks entry names exactly one valid tunnel or network."""
    out: list[Finding] = []
    file = project.config.file
    for b in project.config.vpc:
        if b.kind != "vpc_networks":
            continue
        ev = (_entry(b, file),)
        if b.network_id is None and b.tunnel_id is None:
            out.append(_neither(b, ev))
        elif b.network_id is not None and b.tunnel_id is not None:
            out.append(_both(b, ev))
        elif b.network_id is not None and not _valid_network_id(b.network_id):
            out.append(_bad_network(b, ev))
        elif b.tunnel_id is not None and not UUID_RE.match(b.tunnel_id):
            out.append(_bad_tunnel(b, ev))
    return out


def _valid_network_id(value: str) -> bool:
    return value == MESH_NETWORK or VNET_RE.match(value) is not None


def _neither(b: VpcBinding, ev: tuple[str, ...]) -> Finding:
    return Finding(
        "MP301",
        Severity.ERROR,
        f"{b.where} ({_label(b)}) names no network: neither network_id nor tunnel_id",
        evidence=ev,
        why="A VPC Network binding must say where its requests go: a Cloudflare Tunnel "
        "(tunnel_id) or a network (network_id). Without either, wrangler cannot deploy it.",
        fix_commands=(
            f'"network_id": "{MESH_NETWORK}"   # through Cloudflare Mesh (WARP Connector)',
            '"tunnel_id": "<tunnel UUID>"      # or through one cloudflared tunnel',
            f"docs: {DOCS_NETWORKS}",
        ),
    )


def _both(b: VpcBinding, ev: tuple[str, ...]) -> Finding:
    return Finding(
        "MP302",
        Severity.ERROR,
        f"{b.where} ({_label(b)}) names both network_id and tunnel_id",
        evidence=ev,
        why="A VPC Network binding goes through one Cloudflare Tunnel or through a network "
        "(Mesh); the two are alternatives. Keep the one that reaches your service: for a "
        "WARP Connector (Mesh) that is network_id.",
        fix_commands=(
            f'keep "network_id": "{MESH_NETWORK}" and delete "tunnel_id" (Mesh)',
            'or keep "tunnel_id" and delete "network_id" (one cloudflared tunnel)',
        ),
    )


def _bad_network(b: VpcBinding, ev: tuple[str, ...]) -> Finding:
    return Finding(
        "MP303",
        Severity.ERROR,
        f"{b.where} ({_label(b)}): network_id {b.network_id!r} is not "
        f"{MESH_NETWORK!r} or 'cf1:vnet:<uuid>'",
        evidence=ev,
        why=f"Cloudflare documents two values: {MESH_NETWORK!r} (the account's default "
        "virtual network: Mesh nodes, devices, tunnel routes) and 'cf1:vnet:<UUID>' (one "
        "virtual network by its ID). Anything else does not select a network.",
        fix_commands=(
            f'"network_id": "{MESH_NETWORK}"',
            "cloudflared tunnel vnet list   # the UUID for cf1:vnet:<UUID>",
        ),
    )


def _bad_tunnel(b: VpcBinding, ev: tuple[str, ...]) -> Finding:
    return Finding(
        "MP304",
        Severity.ERROR,
        f"{b.where} ({_label(b)}): tunnel_id {b.tunnel_id!r} is not a UUID",
        evidence=ev,
        why="tunnel_id references a Cloudflare Tunnel by its UUID (the tunnel's ID, not its "
        "name). A WARP Connector is not a cloudflared tunnel: bind Mesh with network_id.",
        fix_commands=(
            "cloudflared tunnel list   # the ID column",
            f'"network_id": "{MESH_NETWORK}"   # for a WARP Connector (Mesh)',
        ),
    )


def check_remote(project: WorkerProject) -> list[Finding]:
    """MP305: ``remote: true`` on every VPC binding."""
    return [
        Finding(
            "MP305",
            Severity.WARNING,
            f'{b.where} ({_label(b)}) lacks "remote": true',
            evidence=(_entry(b, project.config.file),),
            why="Workers VPC has no local emulation: with remote true, `wrangler dev` sends "
            "the binding's requests to your real network; without it the binding does not "
            "work in local development (the deployed Worker is not affected).",
            fix_commands=('"remote": true',),
        )
        for b in project.config.vpc
        if b.remote is not True
    ]


def check_names(project: WorkerProject) -> list[Finding]:
    """MP306: binding names usable as ``env.NAME``; MP307: no name twice in one Worker."""
    out: list[Finding] = []
    file = project.config.file
    for b in project.config.vpc:
        if b.binding is None or not _usable_name(b.binding):
            out.append(_bad_name(b, file))
    for env in project.config.envs:
        out += _duplicates(project.config, env)
    return out


def _usable_name(name: str) -> bool:
    return JS_IDENTIFIER.match(name) is not None and name not in JS_RESERVED


def _bad_name(b: VpcBinding, file: str) -> Finding:
    what = "has no binding name" if b.binding is None else f"{b.binding!r} is no JS identifier"
    return Finding(
        "MP306",
        Severity.ERROR,
        f"{b.where}: {what}",
        evidence=(_entry(b, file),),
        why="The binding name becomes a property of `env` in the Worker: it must be a "
        "JavaScript identifier (letters, digits, _ and $, not starting with a digit) to be "
        "written env.NAME.fetch(...).",
        fix_commands=('"binding": "MESH"',),
    )


def _duplicates(config: WranglerConfig, env: str | None) -> list[Finding]:
    places: dict[str, list[str]] = defaultdict(list)
    for b in config.bindings(env):
        if b.binding is not None:
            places[b.binding].append(b.where)
    for o in config.other:
        if o.env == env and o.name in places:
            places[o.name].append(o.where)
    return [
        Finding(
            "MP307",
            Severity.ERROR,
            f"binding name {name!r} is used {len(wheres)} times"
            + (f" in env {env}" if env else ""),
            evidence=tuple(f"{config.file}: {w}" for w in wheres),
            why="Each binding is one property of `env`; two bindings with one name collide "
            "(wrangler refuses the config, or one silently replaces the other).",
            fix_commands=("give each binding its own name, e.g. MESH and MESH_STAGING",),
        )
        for name, wheres in places.items()
        if len(wheres) > 1
    ]


def check_usage(project: WorkerProject) -> list[Finding]:
    """MP308/MP309: every VPC binding is called as ``env.NAME.fetch``/``.connect``."""
    if not project.sources:
        return []
    out: list[Finding] = []
    # An invalid name (MP306) cannot be written env.NAME: nothing to look for.
    names = {b.binding: b for b in project.config.vpc if b.binding and _usable_name(b.binding)}
    for name, b in names.items():
        if binding_calls(project.sources, name):
            continue
        refs = binding_references(project.sources, name)
        out.append(_referenced_only(b, refs) if refs else _unused(b, project))
    return out


def _unused(b: VpcBinding, project: WorkerProject) -> Finding:
    files = ", ".join(s.path for s in project.sources[:5])
    return Finding(
        "MP308",
        Severity.WARNING,
        f"binding {b.binding} is never used in the source",
        evidence=(f"{project.config.file}: {b.where}", f"searched: {files}"),
        why=f"The Worker never calls env.{b.binding}.fetch(...): requests to the private "
        "network must go through the binding. A renamed binding, or code that still uses "
        "the global fetch, leaves it unused.",
        fix_commands=(f'const res = await env.{b.binding}.fetch("http://10.0.1.50:3000/");',),
    )


def _referenced_only(b: VpcBinding, refs: Iterable[Hit]) -> Finding:
    return Finding(
        "MP309",
        Severity.INFO,
        f"binding {b.binding} is referenced but never called as env.{b.binding}.fetch(...)",
        evidence=tuple(r.describe() for r in refs)[:5],
        why="The binding is handed on (to a helper or a variable); meshpath does not follow "
        "it there. Make sure that code calls .fetch() or .connect() on the binding itself.",
    )


def check_private_fetch(project: WorkerProject) -> list[Finding]:
    """MP310: a global fetch/connect aimed at a private address bypasses every binding."""
    binding = next((b.binding for b in project.config.vpc if b.binding), "MESH")
    return [
        Finding(
            "MP310",
            Severity.ERROR,
            f"global {c.call}() to the private address {c.target} bypasses the VPC binding",
            evidence=(c.hit.describe(),),
            why="The global fetch() and connect() go to the public Internet; only a Workers "
            "VPC binding reaches a private network (workerd itself refuses it: 'connecting "
            "to ... is not allowed'). The request never enters Mesh.",
            fix_commands=(f"env.{binding}.{c.call}({c.target!r})",),
        )
        for c in private_global_calls(project.sources)
    ]


def check_undeclared(project: WorkerProject) -> list[Finding]:
    """MP311: ``env.X.fetch()`` where no binding is called X."""
    declared = {b.binding for b in project.config.vpc} | {o.name for o in project.config.other}
    return [
        Finding(
            "MP311",
            Severity.ERROR,
            f"env.{name} is called but no binding is named {name}",
            evidence=(hit.describe(), f"{project.config.file}: no binding {name!r}"),
            why=f"env.{name} is undefined at run time, so the call throws TypeError: Cannot "
            "read properties of undefined (reading 'fetch'). A binding renamed in the config "
            "but not in the code does this.",
            fix_commands=(f'"binding": "{name}"   # in the vpc_networks entry',),
        )
        for name, hit in called_env_names(project.sources).items()
        if name not in declared
    ]


def check_services(project: WorkerProject) -> list[Finding]:
    """MP312: each vpc_services entry names its service."""
    return [
        Finding(
            "MP312",
            Severity.ERROR,
            f"{b.where} ({_label(b)}) has no service_id",
            evidence=(_entry(b, project.config.file),),
            why="A VPC Service binding reaches one registered host and port, named by its "
            "service_id; without it the binding reaches nothing.",
            fix_commands=("npx wrangler vpc service list   # the service's ID", DOCS_SERVICES),
        )
        for b in project.config.vpc
        if b.kind == "vpc_services" and not b.service_id
    ]


def check_has_binding(project: WorkerProject) -> list[Finding]:
    """MP313: the Worker has no Workers VPC binding at all."""
    if project.config.vpc:
        return []
    return [
        Finding(
            "MP313",
            Severity.INFO,
            "no vpc_networks or vpc_services binding: this Worker cannot reach a private network",
            evidence=(f"{project.config.file}: no vpc_networks / vpc_services",),
            why="Workers reach private networks only through a Workers VPC binding.",
            fix_commands=(
                f'"vpc_networks": [{{ "binding": "MESH", "network_id": "{MESH_NETWORK}", '
                '"remote": true }]',
            ),
        )
    ]


def check_source_found(project: WorkerProject) -> list[Finding]:
    """MP314: the source checks need the Worker's code."""
    if project.main_found:
        return []
    main = project.config.main
    what = f"main {main!r} not found" if main else "no main in the config"
    return [
        Finding(
            "MP314",
            Severity.WARNING,
            f"the Worker's source was not found ({what}); source checks "
            + ("ran on the other files" if project.sources else "skipped"),
            evidence=(f"{project.config.file}: main = {main!r}",),
            why="MP308-MP311 read the Worker's code.",
            fix_commands=('"main": "src/index.js"',),
        )
    ]


CHECKS: Final[tuple[Callable[[WorkerProject], list[Finding]], ...]] = (
    check_source_found,
    check_has_binding,
    check_network_target,
    check_services,
    check_names,
    check_remote,
    check_private_fetch,
    check_undeclared,
    check_usage,
)


@dataclass(frozen=True, slots=True)
class WorkerReport:
    """All findings for one Worker; ``ok`` when none is an error."""

    project: WorkerProject
    findings: tuple[Finding, ...]

    @property
    def ok(self) -> bool:
        return not any(f.severity is Severity.ERROR for f in self.findings)

    def as_dict(self) -> dict[str, object]:
        cfg = self.project.config
        return {
            "config": cfg.file,
            "format": cfg.format,
            "name": cfg.name,
            "main": cfg.main,
            "ok": self.ok,
            "bindings": [b.as_dict() for b in cfg.vpc],
            "sources": [s.path for s in self.project.sources],
            "findings": [f.as_dict() for f in self.findings],
        }


def check_worker(project: WorkerProject) -> WorkerReport:
    """Every MP3xx rule over ``project``, findings ordered by ID (stable within one)."""
    found = [f for check in CHECKS for f in check(project)]
    return WorkerReport(project, tuple(sorted(found, key=lambda f: f.id)))
