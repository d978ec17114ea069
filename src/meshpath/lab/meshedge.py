"""Cloudflare's side of Mesh in the lab: the edge proxy behind a ``vpc_networks`` binding.

A Worker's ``env.MESH.fetch(url)`` ends at Cloudflare's edge, which opens a TCP connection
to the URL's host through the WARP tunnel, from the Worker source address (100.64.0.0/12),
and gives up when the handshake does not complete in time. This process is that edge:
``python -m meshpath.lab.meshedge`` runs in the edge namespace, and the lab's workerd binds
it (through the wrapped binding ``mesh-binding.js``) as every ``vpc_networks`` binding.

Protocol (HTTP on ``--listen``, only ever from workerd in the same namespace): the request
carries the destination URL in ``X-Mesh-Target``; method, headers and body are forwarded
to it. The answer is the upstream's response, or, when Mesh could not deliver it, status
502 with ``X-Mesh-Error: <message>``, which the binding throws as ``Error: <message>``:

| what happened (errno)                 | message              |
|---------------------------------------|----------------------|
| no SYN-ACK within ``--connect-timeout`` | ``handshake timeout`` |
| TCP reset to the SYN (ECONNREFUSED)   | ``connection refused`` |
| ICMP host unreachable (EHOSTUNREACH)  | ``no route to host``   |
| ICMP net unreachable (ENETUNREACH)    | ``network unreachable`` |
| reset or close after the handshake    | ``connection reset``   |
| no response within ``--read-timeout`` | ``response timeout``   |

The messages are the ones ``meshpath explain`` knows (a unit test holds them together).
"""

from __future__ import annotations

import argparse
import errno
import http.client
from collections.abc import Iterable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, Final
from urllib.parse import urlsplit

TARGET_HEADER: Final = "X-Mesh-Target"
ERROR_HEADER: Final = "X-Mesh-Error"
HANDSHAKE_TIMEOUT: Final = "handshake timeout"
CONNECTION_REFUSED: Final = "connection refused"
NO_ROUTE: Final = "no route to host"
NET_UNREACHABLE: Final = "network unreachable"
CONNECTION_RESET: Final = "connection reset"
RESPONSE_TIMEOUT: Final = "response timeout"
MESSAGES: Final = (
    HANDSHAKE_TIMEOUT,
    CONNECTION_REFUSED,
    NO_ROUTE,
    NET_UNREACHABLE,
    CONNECTION_RESET,
    RESPONSE_TIMEOUT,
)
_CONNECT_ERRNO: Final = {
    errno.ECONNREFUSED: CONNECTION_REFUSED,
    errno.EHOSTUNREACH: NO_ROUTE,
    errno.ENETUNREACH: NET_UNREACHABLE,
    errno.ECONNRESET: CONNECTION_RESET,
}
# Hop-by-hop headers (RFC 9110 7.6.1) and ours are not forwarded.
_HOP: Final = frozenset(
    {"connection", "keep-alive", "proxy-connection", "te", "trailer", "transfer-encoding",
     "upgrade", "host", "content-length", TARGET_HEADER.lower(), ERROR_HEADER.lower()}
)  # fmt: skip


class MeshError(Exception):
    """Mesh could not deliver the request; ``str()`` is the message the Worker sees."""


def connect_error(exc: OSError) -> str:
    """The Worker-visible message for a failed connect (timeout, reset, ICMP)."""
    if isinstance(exc, TimeoutError):
        return HANDSHAKE_TIMEOUT
    return _CONNECT_ERRNO.get(exc.errno or 0, f"connect failed: {exc.strerror or exc}")


def forward(
    method: str,
    url: str,
    headers: Iterable[tuple[str, str]],
    body: bytes | None,
    source: str,
    timeouts: tuple[float, float],
    source6: str | None = None,
) -> tuple[int, list[tuple[str, str]], bytes]:
    """One request to ``url`` from ``source`` (``source6`` for an IPv6 host; without it
    the kernel picks) over one TCP connection; MeshError if Mesh cannot deliver it.
    ``timeouts`` is (handshake, response)."""
    parts = urlsplit(url)
    if parts.scheme != "http" or not parts.hostname:
        raise MeshError(f"unsupported URL {url!r}: the lab's Mesh speaks http://host[:port]/")
    port = parts.port or 80
    local = source6 if ":" in parts.hostname else source
    conn = http.client.HTTPConnection(
        parts.hostname,
        port,
        timeout=timeouts[0],
        source_address=(local, 0) if local is not None else None,
    )
    try:
        try:
            conn.connect()
        except OSError as exc:
            raise MeshError(connect_error(exc)) from exc
        assert conn.sock is not None
        conn.sock.settimeout(timeouts[1])
        path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        return _exchange(conn, method, path, headers, body)
    finally:
        conn.close()


def _exchange(
    conn: http.client.HTTPConnection,
    method: str,
    path: str,
    headers: Iterable[tuple[str, str]],
    body: bytes | None,
) -> tuple[int, list[tuple[str, str]], bytes]:
    try:
        conn.request(method, path, body=body, headers=dict(headers))
        resp = conn.getresponse()
        data = resp.read()
    except TimeoutError as exc:
        raise MeshError(RESPONSE_TIMEOUT) from exc
    except (OSError, http.client.HTTPException) as exc:
        raise MeshError(CONNECTION_RESET) from exc
    kept = [(k, v) for k, v in resp.getheaders() if k.lower() not in _HOP]
    return resp.status, kept, data


class _Handler(BaseHTTPRequestHandler):
    server: _Edge
    protocol_version = "HTTP/1.1"

    def _handle(self) -> None:
        target = self.headers.get(TARGET_HEADER)
        if not target:
            self._reply(400, [], b"missing " + TARGET_HEADER.encode(), None)
            return
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else None
        headers = [(k, v) for k, v in self.headers.items() if k.lower() not in _HOP]
        edge = self.server
        try:
            status, out_headers, data = forward(
                self.command, target, headers, body, edge.sources[0], edge.timeouts, edge.sources[1]
            )
        except MeshError as exc:
            self._reply(502, [], str(exc).encode(), str(exc))
            return
        self._reply(status, out_headers, data, None)

    do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = do_HEAD = do_OPTIONS = _handle  # noqa: N815

    def _reply(
        self, status: int, headers: list[tuple[str, str]], body: bytes, error: str | None
    ) -> None:
        self.send_response(status)
        for key, value in headers:
            self.send_header(key, value)
        if error is not None:
            self.send_header(ERROR_HEADER, error)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
        """Quiet: workerd's log is the record of what the Worker saw."""


class _Edge(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(
        self, listen: tuple[str, int], sources: tuple[str, str], timeouts: tuple[float, float]
    ):
        super().__init__(listen, _Handler)
        self.sources = sources
        self.timeouts = timeouts


def _hostport(text: str) -> tuple[str, int]:
    host, _, port = text.rpartition(":")
    return host, int(port)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="meshpath.lab.meshedge", description=__doc__)
    p.add_argument("--listen", default="127.0.0.1:8790")
    p.add_argument("--source", default="100.64.12.189")
    p.add_argument("--source6", default="2606:4700:cf1:5000::5")
    p.add_argument("--connect-timeout", type=float, default=2.5)
    p.add_argument("--read-timeout", type=float, default=5.0)
    p.add_argument("--ready", type=Path)
    args = p.parse_args(argv)
    timeouts = (args.connect_timeout, args.read_timeout)
    server = _Edge(_hostport(args.listen), (args.source, args.source6), timeouts)
    if args.ready:
        args.ready.touch()
    server.serve_forever()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
