"""A Cloudflare API emulator for the lab: device-profile Split Tunnels, nothing else.

Serves exactly what the official SDK calls for ``fix --mode profile``
(``client.zero_trust.devices.policies.{default,custom}.{excludes,includes}.{get,update}``)::

    GET|PUT /client/v4/accounts/{account}/devices/policy/exclude|include
    GET|PUT /client/v4/accounts/{account}/devices/policy/{policy}/exclude|include

Answers use Cloudflare's v4 envelope ``{"success", "errors", "messages", "result"}`` with
``result`` a list of ``{"address"|"host", "description"}`` (the SDK's
``SplitTunnelExclude``/``SplitTunnelInclude`` and its ``SinglePage``). Authentication is a
Bearer token: unknown -> 401 (code 10000), a read-only token on PUT -> 403, unknown account
or profile -> 404 (code 7003), an invalid body -> 400.

The profiles live in a JSON state file (written atomically on every PUT) that the lab and
the tests may also edit; its ``fault`` key makes the next answers fail on purpose:
``{"status": 500}`` (or any code), ``"malformed"`` (200 with a body that is not JSON) or
``{"hang": SECONDS}``. Tokens come from the state file, never from the command line, and
the request log holds method, path and status only (no headers, no token).

Run: ``python -m meshpath.lab.cfapi --state FILE --port N [--bind ADDR] [--ready FILE]``.
"""

from __future__ import annotations

import argparse
import ipaddress
import json
import os
import re
import sys
import threading
import time
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, Final

API_PREFIX: Final = "/client/v4"
_PATH: Final = re.compile(
    r"^/accounts/(?P<account>[0-9a-f]{32})/devices/policy"
    r"(?:/(?P<policy>[A-Za-z0-9-]{1,64}))?/(?P<kind>exclude|include)$"
)
DEFAULT: Final = "default"
_LOCK = threading.Lock()


def new_state(
    account: str, tokens: dict[str, str], exclude: list[dict[str, str]]
) -> dict[str, Any]:
    """A state file's content: one account, its tokens ("edit"/"read") and profiles."""
    return {
        "account": account,
        "tokens": tokens,
        "profiles": {DEFAULT: {"exclude": exclude, "include": []}},
        "fault": None,
    }


def read_state(path: Path) -> dict[str, Any]:
    with _LOCK:
        data: dict[str, Any] = json.loads(path.read_text())
    return data


def write_state(path: Path, data: dict[str, Any]) -> None:
    with _LOCK:
        tmp = path.with_name(f".{path.name}.{os.getpid()}.{threading.get_ident()}.tmp")
        tmp.write_text(json.dumps(data, indent=1))
        os.replace(tmp, path)


def envelope(result: Any, errors: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    return {"success": not errors, "errors": errors or [], "messages": [], "result": result}


def error(code: int, message: str) -> dict[str, Any]:
    return envelope(None, [{"code": code, "message": message}])


def check_body(body: Any) -> str | None:
    """Why a PUT body is not a list of Split Tunnels entries (None when it is)."""
    if not isinstance(body, list):
        return "the body must be a JSON array of split tunnel entries"
    for item in body:
        if not isinstance(item, dict) or ("address" in item) == ("host" in item):
            return "each entry needs exactly one of address or host"
        if set(item) - {"address", "host", "description"}:
            return f"unknown field in {item}"
        if len(str(item.get("description", ""))) > 100:
            return "description longer than 100 characters"
        if "address" in item:
            try:
                ipaddress.ip_network(str(item["address"]), strict=False)
            except ValueError:
                return f"{item['address']!r} is not a CIDR"
    return None


Answer = tuple[int, dict[str, Any], bool]


def answer(state: dict[str, Any], method: str, path: str, token: str | None, body: Any) -> Answer:
    """(status, JSON body, state changed) for one request; pure apart from ``state``."""
    role = state["tokens"].get(token or "")
    if role is None:
        return 401, error(10000, "Authentication error"), False
    route = _PATH.match(path[len(API_PREFIX) :] if path.startswith(API_PREFIX) else "")
    if route is None or route["account"] != state["account"]:
        text = f"Could not route to {path}, perhaps your object identifier is invalid?"
        return 404, error(7003, text), False
    profile = state["profiles"].get(route["policy"] or DEFAULT)
    if profile is None:
        return 404, error(2035, "Device settings policy not found"), False
    kind = route["kind"]
    if method == "GET":
        return 200, envelope(profile.get(kind) or []), False
    if role != "edit":
        return 403, error(10000, "Authentication error: this token may not edit devices"), False
    problem = check_body(body)
    if problem is not None:
        return 400, error(1001, f"Invalid request: {problem}"), False
    profile[kind] = body
    other = "include" if kind == "exclude" else "exclude"
    if body:  # a profile holds one list: setting one empties the other (the mode switches)
        profile[other] = []
    return 200, envelope(body), True


def _stderr(line: str) -> None:
    sys.stderr.write(line + "\n")


class Handler(BaseHTTPRequestHandler):
    server_version = "meshpath-cfapi/1"
    state_path: Path = Path("state.json")
    log_line: Callable[[str], None] = staticmethod(_stderr)

    def do_GET(self) -> None:  # noqa: N802 - http.server's naming
        self._serve(None)

    def do_PUT(self) -> None:  # noqa: N802
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        try:
            body = json.loads(raw or b"null")
        except ValueError:
            self._send(400, error(1001, "Invalid request: the body is not JSON"))
            return
        self._serve(body)

    def _serve(self, body: Any) -> None:
        state = read_state(self.state_path)
        if self._fault(state.get("fault")):
            return
        auth = self.headers.get("Authorization", "")
        token = auth[7:] if auth.startswith("Bearer ") else None
        status, data, changed = answer(state, self.command, self.path, token, body)
        if changed:
            write_state(self.state_path, state)
        self._send(status, data)

    def _fault(self, fault: Any) -> bool:
        if fault == "malformed":
            self._send_raw(200, b"<html>this is not the API</html>")
            return True
        if isinstance(fault, dict) and "hang" in fault:
            time.sleep(float(fault["hang"]))
            self._send(504, error(0, "gateway timeout"))
            return True
        if isinstance(fault, dict) and "status" in fault:
            code = int(fault["status"])
            self._send(code, error(code, f"injected HTTP {code}"))
            return True
        return False

    def _send(self, status: int, data: dict[str, Any]) -> None:
        self._send_raw(status, json.dumps(data).encode())

    def _send_raw(self, status: int, raw: bytes) -> None:
        try:
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(raw)))
            self.end_headers()
            self.wfile.write(raw)
        except (BrokenPipeError, ConnectionResetError):  # the client gave up (a timeout test)
            pass

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - base signature
        # Method, path and status only: never headers (the token is one).
        self.log_line(f"cfapi {self.command} {self.path} {args[1] if len(args) > 1 else ''}")


def make_server(
    state: Path, bind: str, port: int, log: Callable[[str], None] = _stderr
) -> ThreadingHTTPServer:
    """The server (not yet serving); ``log`` receives one line per request."""
    handler = type("BoundHandler", (Handler,), {"state_path": state, "log_line": staticmethod(log)})
    server = ThreadingHTTPServer((bind, port), handler)
    server.daemon_threads = True
    return server


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="meshpath.lab.cfapi", description=__doc__)
    p.add_argument("--state", type=Path, required=True)
    p.add_argument("--bind", default="0.0.0.0")
    p.add_argument("--port", type=int, default=8443)
    p.add_argument("--ready", type=Path)
    args = p.parse_args(argv)
    server = make_server(args.state, args.bind, args.port)
    if args.ready is not None:
        args.ready.write_text(str(server.server_address[1]))
    server.serve_forever()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
