"""The private service: an HTTP server that logs and echoes each client's source address.

Run as ``python -m meshpath.lab.service --bind 10.0.1.50 --port 3000 --log FILE``
(``--bind6 fd00:1::50``: the same service on an IPv6 address too, one log). Every
request appends one JSON line ``{"client": ip, "port": n, "path": p, "time": t}`` to the
log (what the upstream's access log shows in the field report) and answers with a JSON
body naming the service and the client address it saw. A path starting ``/delay/MS/``
answers after MS milliseconds (at most 3000): a request kept in flight, so tests can
change the path under open connections.
"""

from __future__ import annotations

import argparse
import json
import re
import socket
import socketserver
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, Final

DELAY: Final = re.compile(r"/delay/(\d{1,5})(?:/|$)")
MAX_DELAY_MS: Final = 3000


def delay_of(path: str) -> float:
    """Seconds to hold the answer for ``path`` (``/delay/MS/...``), capped; 0 otherwise."""
    m = DELAY.match(path)
    return min(int(m.group(1)), MAX_DELAY_MS) / 1000 if m else 0.0


class _Handler(BaseHTTPRequestHandler):
    server: _Server

    def do_GET(self) -> None:  # noqa: N802 - http.server's naming
        client, port = self.client_address[0], self.client_address[1]
        entry = {"client": client, "port": port, "path": self.path, "time": time.time()}
        time.sleep(delay_of(self.path))  # the connection stays open meanwhile
        self.server.record(entry)
        body = json.dumps({"service": self.server.name, **entry}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
        """Silence stderr access logging; the JSON log is the record."""


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, bind: tuple[str, int], name: str, log: Path) -> None:
        super().__init__(bind, _Handler)
        self.name = name
        self.log = log
        self.lock = threading.Lock()

    def server_bind(self) -> None:
        """Bind without HTTPServer's ``getfqdn`` of the address: a reverse DNS lookup the
        lab cannot answer (its queries die on the LAN router; ~5 s for an IPv6 address)."""
        socketserver.TCPServer.server_bind(self)
        self.server_name, self.server_port = str(self.server_address[0]), self.server_address[1]

    def record(self, entry: dict[str, Any]) -> None:
        with self.lock, self.log.open("a") as fh:
            fh.write(json.dumps(entry) + "\n")


class _Server6(_Server):
    address_family = socket.AF_INET6

    def server_bind(self) -> None:
        # IPv6 only: IPv4 clients are the other server's, and would show as ::ffff:a.b.c.d.
        self.socket.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
        super().server_bind()


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="meshpath.lab.service", description=__doc__)
    p.add_argument("--bind", default="10.0.1.50")
    p.add_argument("--bind6", default=None, help="also listen on this IPv6 address")
    p.add_argument("--port", type=int, default=3000)
    p.add_argument("--name", default="svc")
    p.add_argument("--log", type=Path, required=True)
    p.add_argument("--ready", type=Path, help="file created once the socket listens")
    args = p.parse_args(argv)
    server = _Server((args.bind, args.port), args.name, args.log)
    if args.bind6:
        server6 = _Server6((args.bind6, args.port), args.name, args.log)
        server6.lock = server.lock  # one log, one writer at a time
        threading.Thread(target=server6.serve_forever, daemon=True).start()
    args.log.touch()
    if args.ready:
        args.ready.touch()
    server.serve_forever()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
