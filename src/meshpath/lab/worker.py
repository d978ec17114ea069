"""The Worker emulator: what a Worker calling ``env.MESH.fetch()`` experiences.

``python -m meshpath.lab.worker serve`` runs in the edge namespace:

* ``GET /health`` -> 200 ``ok`` without touching the tunnel (the report's first symptom);
* ``GET /mesh/<path>`` -> an HTTP request to the private service (default
  ``10.0.1.50:3000/<path>``) from the Cloudflare source address (default 100.64.12.189),
  through the tunnel. When no SYN-ACK arrives within the connect timeout it answers
  500 ``handshake timeout``, as Mesh does; otherwise the upstream's status and body.

``python -m meshpath.lab.worker get URL`` is the matching one-shot client: it prints
``{"status": n, "body": "..."}`` (status 0 when the request itself failed), so the lab
can call the Worker from inside the edge namespace.
"""

from __future__ import annotations

import argparse
import http.client
import json
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any


def fetch_upstream(
    host: str, port: int, path: str, source: str, connect_timeout: float, read_timeout: float
) -> tuple[int, bytes]:
    """One request to the service from ``source``; Mesh-like errors as (status, body)."""
    conn = http.client.HTTPConnection(
        host, port, timeout=connect_timeout, source_address=(source, 0)
    )
    try:
        try:
            conn.connect()
        except TimeoutError:
            return 500, b"handshake timeout"
        except ConnectionRefusedError:
            return 502, b"connection refused"
        except OSError as exc:
            return 502, f"connect failed: {exc.strerror or exc}".encode()
        assert conn.sock is not None
        conn.sock.settimeout(read_timeout)
        try:
            conn.request("GET", path)
            resp = conn.getresponse()
            return resp.status, resp.read()
        except (TimeoutError, OSError):
            return 504, b"upstream timeout"
    finally:
        conn.close()


class _Handler(BaseHTTPRequestHandler):
    server: _Worker

    def do_GET(self) -> None:  # noqa: N802 - http.server's naming
        if self.path == "/health":
            self._reply(200, b"ok")
        elif self.path.startswith("/mesh/"):
            w = self.server
            upstream_path = "/" + self.path[len("/mesh/") :]
            status, body = fetch_upstream(
                w.service[0], w.service[1], upstream_path, w.source, w.connect_timeout, 5.0
            )
            self._reply(status, body)
        else:
            self._reply(404, b"not found")

    def _reply(self, status: int, body: bytes) -> None:
        self.send_response(status)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
        """Silence stderr access logging."""


class _Worker(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(
        self, listen: tuple[str, int], service: tuple[str, int], source: str, timeout: float
    ) -> None:
        super().__init__(listen, _Handler)
        self.service = service
        self.source = source
        self.connect_timeout = timeout


def _hostport(text: str) -> tuple[str, int]:
    host, _, port = text.rpartition(":")
    return host, int(port)


def get(url: str, timeout: float) -> dict[str, object]:
    """The one-shot client: GET ``url`` and return status and body (status 0 on failure)."""
    rest = url.removeprefix("http://")
    hostport, _, path = rest.partition("/")
    host, port = _hostport(hostport)
    conn = http.client.HTTPConnection(host, port, timeout=timeout)
    try:
        conn.request("GET", "/" + path)
        resp = conn.getresponse()
        return {"status": resp.status, "body": resp.read().decode(errors="replace")}
    except (OSError, http.client.HTTPException) as exc:
        return {"status": 0, "body": f"{type(exc).__name__}: {exc}"}
    finally:
        conn.close()


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="meshpath.lab.worker", description=__doc__)
    sub = p.add_subparsers(dest="cmd", required=True)
    s = sub.add_parser("serve")
    s.add_argument("--listen", default="127.0.0.1:8787")
    s.add_argument("--service", default="10.0.1.50:3000")
    s.add_argument("--source", default="100.64.12.189")
    s.add_argument("--connect-timeout", type=float, default=2.5)
    s.add_argument("--ready", type=Path)
    g = sub.add_parser("get")
    g.add_argument("url")
    g.add_argument("--timeout", type=float, default=15.0)
    args = p.parse_args(argv)
    if args.cmd == "get":
        sys.stdout.write(json.dumps(get(args.url, args.timeout)) + "\n")
        return 0
    server = _Worker(
        _hostport(args.listen), _hostport(args.service), args.source, args.connect_timeout
    )
    if args.ready:
        args.ready.touch()
    server.serve_forever()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
