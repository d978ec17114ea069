"""The workerd configuration the lab runs a Worker with, rendered as Cap'n Proto text (pure).

Written against workerd's own schema (src/workerd/server/workerd.capnp in
github.com/cloudflare/workerd): a ``Config`` with ``services``, ``sockets`` and
``extensions``; a ``Worker`` with ``modules`` (the first is the main module),
``compatibilityDate``/``compatibilityFlags`` and ``bindings``. Each Mesh binding is a
``wrapped`` binding: the internal extension module ``meshpath:mesh-binding`` receives the
inner bindings and returns the object the Worker sees as ``env.NAME``:

    edge                  service -> external server: the lab's Mesh edge (meshedge.py)
    network               service -> network (allow = ["private"]): for connect()
    handshakeTimeoutMs    json: the emulated TCP handshake timeout

The main Worker keeps workerd's default global outbound (``internet``: public addresses
only), so a global ``fetch()`` to a private address fails as it does on Cloudflare.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Final

MESH_MODULE: Final = "meshpath:mesh-binding"
MESH_MODULE_FILE: Final = "meshpath/mesh-binding.js"
WORKER_DIR: Final = "worker"  # the Worker's modules, under the config's directory
EDGE_SERVICE: Final = "mesh-edge"
NETWORK_SERVICE: Final = "private-network"
_SAFE_PATH: Final = re.compile(r"^(?!/)(?!.*\.\.)[A-Za-z0-9_.@+/-]+$")
_MODULE_KIND: Final = {".js": "esModule", ".mjs": "esModule", ".cjs": "commonJsModule"}
_MODULE_KIND_DATA: Final = {".json": "json", ".txt": "text", ".html": "text"}


@dataclass(frozen=True, slots=True)
class WorkerSpec:
    """What workerd needs to run one Worker in the lab.

    ``modules``: module paths relative to the Worker's root, the main module first (the
    name a module is imported by is its path, so ``./lib.js`` next to ``src/index.js`` is
    ``src/lib.js``). ``mesh_bindings``: names bound to the lab's Mesh. ``text_bindings``:
    plain ``vars`` as (name, JSON text).
    """

    modules: tuple[str, ...]
    compatibility_date: str
    compatibility_flags: tuple[str, ...] = ()
    mesh_bindings: tuple[str, ...] = ("MESH",)
    json_bindings: tuple[tuple[str, str], ...] = ()


def module_kind(path: str) -> str | None:
    """workerd's module type for ``path`` (None: not a module workerd can load as is)."""
    suffix = path[path.rfind(".") :] if "." in path else ""
    return _MODULE_KIND.get(suffix) or _MODULE_KIND_DATA.get(suffix)


def safe_path(path: str) -> bool:
    """A relative path without ``..`` and of characters that need no quoting anywhere."""
    return _SAFE_PATH.match(path) is not None


def quote(text: str) -> str:
    """A Cap'n Proto text literal (JSON's escapes are a subset capnp accepts)."""
    return json.dumps(text, ensure_ascii=True)


def render_config(spec: WorkerSpec, listen: str, edge: str, handshake_timeout_ms: int) -> str:
    """The whole ``config.capnp`` for ``spec``: the Worker on ``listen``, Mesh via ``edge``."""
    services = [
        f"(name = {quote('worker')}, worker = .worker)",
        f"(name = {quote(EDGE_SERVICE)}, external = (address = {quote(edge)}, http = ()))",
        f'(name = {quote(NETWORK_SERVICE)}, network = (allow = ["private"]))',
    ]
    socket = f'(name = "http", address = {quote(listen)}, http = (), service = "worker")'
    extension = (
        f"(modules = [(name = {quote(MESH_MODULE)}, "
        f"esModule = embed {quote(MESH_MODULE_FILE)}, internal = true)])"
    )
    return (
        'using Workerd = import "/workerd/workerd.capnp";\n\n'
        "const config :Workerd.Config = (\n"
        f"  services = [\n    {_join(services, 4)}\n  ],\n"
        f"  sockets = [{socket}],\n"
        f"  extensions = [{extension}],\n"
        ");\n\n"
        f"const worker :Workerd.Worker = {_worker(spec, handshake_timeout_ms)};\n"
    )


def _worker(spec: WorkerSpec, timeout_ms: int) -> str:
    modules = [_module(m) for m in spec.modules]
    bindings = [_mesh_binding(name, timeout_ms) for name in spec.mesh_bindings]
    bindings += [f"(name = {quote(n)}, json = {quote(v)})" for n, v in spec.json_bindings]
    flags = ", ".join(quote(f) for f in spec.compatibility_flags)
    return (
        "(\n"
        f"  modules = [\n    {_join(modules, 4)}\n  ],\n"
        f"  compatibilityDate = {quote(spec.compatibility_date)},\n"
        f"  compatibilityFlags = [{flags}],\n"
        f"  bindings = [\n    {_join(bindings, 4)}\n  ],\n"
        ")"
    )


def _module(path: str) -> str:
    kind = module_kind(path)
    if kind is None or not safe_path(path):
        raise ValueError(f"workerd cannot load {path!r} as a module")
    return f"(name = {quote(path)}, {kind} = embed {quote(f'{WORKER_DIR}/{path}')})"


def _mesh_binding(name: str, timeout_ms: int) -> str:
    inner = ", ".join(
        (
            f'(name = "edge", service = {quote(EDGE_SERVICE)})',
            f'(name = "network", service = {quote(NETWORK_SERVICE)})',
            f'(name = "handshakeTimeoutMs", json = {quote(str(timeout_ms))})',
        )
    )
    return (
        f"(name = {quote(name)}, wrapped = (moduleName = {quote(MESH_MODULE)}, "
        f"innerBindings = [{inner}]))"
    )


def _join(items: list[str], indent: int) -> str:
    return (",\n" + " " * indent).join(items)
