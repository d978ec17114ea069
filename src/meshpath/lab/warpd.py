"""The lab's WARP emulator: a living WARP client on the connector (I/O edge).

Run inside the conn namespace as ``python -m meshpath.lab.warpd --status FILE ...``. Like
``warp-svc`` it keeps the host in line with the device profile:

* every ``--interval`` seconds it fetches the profile's Split Tunnels from the Cloudflare
  API emulator (:mod:`meshpath.lab.cfapi`), the same endpoints the SDK uses. warp-svc
  talks to Cloudflare outside its tunnel; the lab has no such underlay, so this process
  opens its API sockets in the edge namespace (``--api-ns``, setns, as the tunnel emulator
  opens its tuns) and reaches the API on edge's loopback;
* whenever the profile changes, or ``CloudflareWARP`` is a new device (a reconnect: the
  tunnel emulator recreated it), it installs WARP's state: the device addresses, table
  65743 (routes added and removed by difference, so a kept route never disappears), the
  two rules and the ``inet cloudflare-warp`` table (:mod:`meshpath.lab.warp`), each in
  both families (``--literal-v6``: the profile's IPv6 entries applied as written, without
  the ranges the client manages itself);
* it writes its state (status, mode, entries, the ifindex it installed for, a generation
  counter) to ``--status`` atomically, and the lab's ``warp-cli`` stand-in's answers
  (:mod:`meshpath.lab.warpcli`) into ``--status``.d/.

Until the first fetch succeeds it uses the cached profile it was started with
(``--exclude``), as a real client starts from its cached policy.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import time
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path
from types import FrameType
from typing import Any

from meshpath.collect.iproute import host_prefix, ip_json
from meshpath.lab import warp, warpcli
from meshpath.lab.topology import TUN_CONN
from meshpath.lab.tunnel import in_netns

VERSION = "2025.2.600.0"


@dataclass
class Profile:
    mode: str  # exclude / include
    entries: list[dict[str, str]]

    def values(self) -> list[str]:
        return [e.get("address") or e.get("host") or "" for e in self.entries]


@dataclass
class WarpStatus:
    pid: int
    account: str
    policy: str | None
    status: str = "Connecting"
    mode: str = "exclude"
    entries: list[dict[str, str]] = field(default_factory=list)
    ifindex: int | None = None
    generation: int = 0
    installed_at: float = 0.0
    fetch_ok: bool = False
    last_error: str | None = None
    version: str = VERSION


def _prefix(dst: str, family: int) -> str:
    """A route's destination as a prefix (``ip -j`` prints host routes without a length;
    ``default`` for the zero prefix)."""
    if dst == "default":
        return "::/0" if family == 6 else "0.0.0.0/0"
    if family == 6:
        return dst if "/" in dst else f"{dst}/128"
    return host_prefix(dst)


def run(argv: list[str], stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(argv, input=stdin, capture_output=True, text=True, check=False)  # noqa: S603


class Warpd:
    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.token = Path(args.token_file).read_text().strip()
        self.profile = Profile("exclude", [{"address": a} for a in args.exclude])
        self.state = WarpStatus(pid=os.getpid(), account=args.account, policy=args.policy)
        self.installed: tuple[str, list[str], int] | None = None
        self.written: dict[str, Any] | None = None
        self.running = True
        self.api = ThreadPoolExecutor(max_workers=1, thread_name_prefix="api")

    # -- the API ----------------------------------------------------------------------
    def _get(self, kind: str) -> list[dict[str, str]]:
        policy = f"/{self.args.policy}" if self.args.policy else ""
        url = f"{self.args.api}/accounts/{self.args.account}/devices/policy{policy}/{kind}"
        request = urllib.request.Request(url, headers={"Authorization": f"Bearer {self.token}"})
        # In a thread of its own: setns moves only the calling thread, and the main
        # thread must stay in conn, where /proc/PID/ns/net (what the collector's process
        # list reads) places the whole process. Done in the main thread, a snapshot
        # taken during a fetch saw no process in conn (a test lost that race under load).
        data = self.api.submit(self._read, request).result()
        result = data.get("result") or []
        if not data.get("success") or not isinstance(result, list):
            raise ValueError(f"API answer without success: {data.get('errors')}")
        return result

    def _read(self, request: urllib.request.Request) -> dict[str, Any]:
        with in_netns(self.args.api_ns), urllib.request.urlopen(request, timeout=2) as answer:
            data: dict[str, Any] = json.loads(answer.read())
        return data

    def fetch(self) -> None:
        try:
            exclude, include = self._get("exclude"), self._get("include")
        except (OSError, ValueError, urllib.error.URLError) as exc:
            self.state.fetch_ok, self.state.last_error = False, str(exc)
            return
        mode = "include" if include and not exclude else "exclude"
        self.profile = Profile(mode, include if mode == "include" else exclude)
        self.state.fetch_ok, self.state.last_error = True, None

    # -- the host ---------------------------------------------------------------------
    def ifindex(self) -> int | None:
        done = run(["ip", "-j", "link", "show", "dev", TUN_CONN])
        if done.returncode != 0:
            return None
        index = ip_json(done.stdout)[0].get("ifindex")
        return int(index) if index is not None else None

    def install(self, ifindex: int) -> None:
        """WARP's state for the current profile on device ``ifindex``."""
        run(["ip", "addr", "replace", self.args.address, "dev", TUN_CONN])
        run(["ip", "addr", "replace", self.args.address6, "dev", TUN_CONN, "nodad"])
        values, auto = self.profile.values(), not self.args.literal_v6
        if self.profile.mode == "include":
            desired = warp.tunnel_prefixes(includes=values)
            desired6 = warp.tunnel_prefixes6(includes=values, auto_managed=auto)
        else:
            desired = warp.tunnel_prefixes(excludes=values)
            desired6 = warp.tunnel_prefixes6(excludes=values, auto_managed=auto)
        batch = warp.route_diff(self._table(4), desired) + warp.route_diff(self._table(6), desired6)
        batch += self._missing_rules(4) + self._missing_rules(6)
        if batch:
            run(["ip", "-batch", "-"], stdin=batch)
        run(["nft", "-f", "-"], stdin=warp.nft_ruleset())
        self.installed = (self.profile.mode, self.profile.values(), ifindex)
        self.state.ifindex = ifindex
        self.state.generation += 1
        self.state.installed_at = time.time()

    def _table(self, family: int) -> list[str]:
        argv = ["ip", "-j", f"-{family}", "route", "show", "table", str(warp.WARP_TABLE)]
        done = run(argv)
        routes = ip_json(done.stdout) if done.returncode == 0 else []
        return [_prefix(r["dst"], family) for r in routes]

    def _missing_rules(self, family: int) -> str:
        done = run(["ip", "-j", f"-{family}", "rule", "show"])
        prefs = {r.get("priority") for r in ip_json(done.stdout)}
        lines = [
            line
            for pref, line in zip(warp.RULE_PREFS, warp.rule_lines(family), strict=True)
            if pref not in prefs
        ]
        return "".join(f"{line}\n" for line in lines)

    # -- the loop ---------------------------------------------------------------------
    def step(self) -> None:
        self.fetch()
        index = self.ifindex()
        self.state.status = "Connected" if index is not None else "Connecting"
        wanted = (self.profile.mode, self.profile.values(), index)
        if index is not None and wanted != self.installed:
            self.install(index)
        self.state.mode, self.state.entries = self.profile.mode, self.profile.entries
        self.write_status()

    def write_status(self) -> None:
        path = Path(self.args.status)
        data = asdict(self.state)
        if data == self.written:
            return
        # The stand-in's answers first, then the state that others poll for.
        warpcli.write_answers(data, Path(f"{path}.d"))
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(data))
        os.replace(tmp, path)
        self.written = data

    def stop(self, _signum: int, _frame: FrameType | None) -> None:
        self.running = False

    def loop(self) -> None:
        while self.running:
            self.step()
            # Until the API first answers, retry quickly: the lab waits for that fetch.
            time.sleep(self.args.interval if self.state.fetch_ok else 0.05)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="meshpath.lab.warpd", description=__doc__)
    p.add_argument("--api", required=True, help="API base URL, as seen from --api-ns")
    p.add_argument("--api-ns", required=True, help="namespace the API sockets are opened in")
    p.add_argument("--account", required=True)
    p.add_argument("--policy", default=None)
    p.add_argument("--token-file", required=True)
    p.add_argument("--status", required=True)
    p.add_argument("--address", default="100.96.0.5/32")
    p.add_argument("--address6", default="2606:4700:cf1:1000::5/128")
    p.add_argument("--literal-v6", action="store_true", help="no automatically managed ranges")
    p.add_argument("--interval", type=float, default=0.25)
    p.add_argument("--exclude", nargs="*", default=list(warp.LAB_EXCLUDES))
    args = p.parse_args(argv)
    daemon = Warpd(args)
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, daemon.stop)
    daemon.loop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
