"""The lab's Worker runtime without namespaces: workerd's config, the pin, the Mesh edge."""

from __future__ import annotations

import json
import socket
import subprocess
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from meshpath.errors import MissingToolError
from meshpath.lab import meshedge
from meshpath.lab.worker.app import LAB_APP
from meshpath.lab.worker.capnp import WorkerSpec, module_kind, render_config, safe_path
from meshpath.lab.worker.runtime import (
    PACKAGE_DIR,
    bundled_binary,
    find_workerd,
    pinned_version,
    stage,
)
from meshpath.worker.explain import explain

SPEC = WorkerSpec(
    modules=("src/index.js", "src/lib/db.mjs", "data.json"),
    compatibility_date="2026-03-01",
    compatibility_flags=("nodejs_compat",),
    mesh_bindings=("PROD", "STAGING"),
    json_bindings=(("GREETING", json.dumps('say "hi"')),),
)


def test_config_has_one_wrapped_mesh_binding_per_name() -> None:
    text = render_config(SPEC, "127.0.0.1:8787", "127.0.0.1:8790", 2500)
    assert text.count('moduleName = "meshpath:mesh-binding"') == 2
    assert '(name = "PROD", wrapped' in text and '(name = "STAGING", wrapped' in text
    assert '(name = "handshakeTimeoutMs", json = "2500")' in text
    assert 'external = (address = "127.0.0.1:8790", http = ())' in text
    assert 'network = (allow = ["private"])' in text
    # main module first, imported by its path; data modules by their kind
    assert text.index('"src/index.js"') < text.index('"src/lib/db.mjs"')
    assert '(name = "data.json", json = embed "worker/data.json")' in text
    assert 'compatibilityFlags = ["nodejs_compat"]' in text
    assert r'json = "\"say \\\"hi\\\"\""' in text  # quoted once for JSON, once for capnp


def test_module_paths_are_checked() -> None:
    assert module_kind("a.cjs") == "commonJsModule" and module_kind("a.ts") is None
    for bad in ("../x.js", "/etc/x.js", "a b.js", 'a".js', "src/../../x.js"):
        assert not safe_path(bad), bad
    with pytest.raises(ValueError, match="cannot load"):
        render_config(WorkerSpec(("index.ts",), "2026-01-01"), "a:1", "b:2", 1)


def test_the_pin_is_exact_and_locked() -> None:
    version = pinned_version()
    assert version[0].isdigit() and "^" not in version and "~" not in version
    lock = json.loads((PACKAGE_DIR / "package-lock.json").read_text())
    assert lock["packages"]["node_modules/workerd"]["version"] == version
    linux = lock["packages"]["node_modules/@cloudflare/workerd-linux-64"]
    assert linux["version"] == version and linux["integrity"].startswith("sha512-")


def test_find_workerd(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(MissingToolError, match="make setup"):
        find_workerd({"MESHPATH_WORKERD": str(tmp_path / "none")})
    fake = tmp_path / "workerd"
    fake.write_text("#!/bin/sh\n")
    fake.chmod(0o755)
    assert find_workerd({"MESHPATH_WORKERD": str(fake)}) == fake
    assert bundled_binary("/opt/venv", "aarch64") == Path(
        "/opt/venv/workerd/node_modules/@cloudflare/workerd-linux-arm64/bin/workerd"
    )


def test_workerd_accepts_the_staged_config(tmp_path: Path) -> None:
    """Render, then let workerd itself compile it (STYLE 6: the real tool checks)."""
    try:
        binary = find_workerd()
    except MissingToolError as exc:
        pytest.skip(str(exc))
    config = stage(tmp_path / "w", LAB_APP.spec, LAB_APP.sources, ("127.0.0.1:1", "h:2"), 100)
    done = subprocess.run(
        [str(binary), "compile", str(config), "config"], capture_output=True, timeout=30
    )
    assert done.returncode == 0, done.stderr.decode()
    assert (tmp_path / "w" / "worker" / "worker.js").read_text().count("env.MESH.fetch") == 1


def test_every_mesh_message_is_explained() -> None:
    for message in meshedge.MESSAGES:
        entry = explain(f"handler failed: Error: {message}")
        assert message in (entry.key, *entry.matches), message


@pytest.mark.parametrize(
    ("error", "message"),
    [
        (TimeoutError("timed out"), "handshake timeout"),
        (ConnectionRefusedError(111, "refused"), "connection refused"),
        (OSError(113, "No route to host"), "no route to host"),
        (OSError(101, "Network is unreachable"), "network unreachable"),
        (OSError(22, "Invalid argument"), "connect failed: Invalid argument"),
    ],
)
def test_connect_errors(error: OSError, message: str) -> None:
    assert meshedge.connect_error(error) == message


class _Upstream(BaseHTTPRequestHandler):
    def do_POST(self) -> None:  # noqa: N802
        body = self.rfile.read(int(self.headers["Content-Length"]))
        if self.path == "/close":
            self.connection.close()
            return
        reply = json.dumps({"path": self.path, "body": body.decode()}).encode()
        self.send_response(201)
        self.send_header("Content-Length", str(len(reply)))
        self.send_header("X-Up", "1")
        self.end_headers()
        self.wfile.write(reply)

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
        pass


@pytest.fixture
def upstream() -> Iterator[int]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Upstream)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server.server_address[1]
    server.shutdown()
    server.server_close()


def test_forward_over_loopback(upstream: int) -> None:
    url = f"http://127.0.0.1:{upstream}/a?b=1"
    status, headers, body = meshedge.forward(
        "POST", url, [("X-Mesh-Target", url)], b"hi", "127.0.0.1", (1.0, 1.0)
    )
    assert status == 201 and ("X-Up", "1") in headers
    assert json.loads(body) == {"path": "/a?b=1", "body": "hi"}
    with pytest.raises(meshedge.MeshError, match="connection reset"):
        meshedge.forward(
            "POST", f"http://127.0.0.1:{upstream}/close", [], b"x", "127.0.0.1", (1, 1)
        )


def test_forward_refused_and_silent() -> None:
    with socket.socket() as probe:  # a port nobody listens on (bound, not listening)
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
        with pytest.raises(meshedge.MeshError, match="^connection refused$"):
            meshedge.forward("GET", f"http://127.0.0.1:{port}/", [], None, "127.0.0.1", (1, 1))
    with socket.create_server(("127.0.0.1", 0)) as silent:
        port = silent.getsockname()[1]
        with pytest.raises(meshedge.MeshError, match="^response timeout$"):
            meshedge.forward("GET", f"http://127.0.0.1:{port}/", [], None, "127.0.0.1", (1, 0.2))
    with pytest.raises(meshedge.MeshError, match="unsupported URL"):
        meshedge.forward("GET", "https://x/", [], None, "127.0.0.1", (1, 1))


class _Who(BaseHTTPRequestHandler):
    """Answers with the client address it saw (the lab's service does the same)."""

    def do_GET(self) -> None:  # noqa: N802
        reply = self.client_address[0].encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(reply)))
        self.end_headers()
        self.wfile.write(reply)

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
        pass


class _Server6(ThreadingHTTPServer):
    address_family = socket.AF_INET6


def test_forward_to_an_ipv6_host_connects_from_the_ipv6_source() -> None:
    """``http://[::1]:PORT/`` (the binding's form of an IPv6 target) is fetched from
    ``source6``; the IPv4 ``source`` would not even bind to an IPv6 socket."""
    if not socket.has_ipv6:
        pytest.skip("no IPv6 on this host")
    server = _Server6(("::1", 0), _Who)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        url = f"http://[::1]:{server.server_address[1]}/x"
        status, _headers, body = meshedge.forward(
            "GET", url, [], None, "127.0.0.1", (1.0, 1.0), source6="::1"
        )
        assert (status, body) == (200, b"::1")
        with pytest.raises(meshedge.MeshError, match="connect failed"):
            meshedge.forward("GET", url, [], None, "127.0.0.1", (1.0, 1.0), source6="127.0.0.1")
    finally:
        server.shutdown()
        server.server_close()
