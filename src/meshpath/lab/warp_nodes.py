"""WARP in the lab: the Cloudflare API emulator (edge) and the WARP emulator (conn)."""

from __future__ import annotations

import json
import os
import secrets
import signal
import sys
import time
from pathlib import Path
from typing import Any

from meshpath.lab import cfapi, warp, warpcli
from meshpath.lab.procs import wait_for
from meshpath.lab.topology import CF_API_IP, CF_API_PORT, LAB_ACCOUNT
from meshpath.lab.wiring import Wiring


class WarpNodes(Wiring):
    """cfapi, warpd and the warp-cli stand-in; profiles and reconnects (needs the tunnel)."""

    def _start_warp(self) -> None:
        """cfapi in edge serving the lab's profile; warpd in conn installing from it (first
        from its cached profile, as a client starts); the warp-cli stand-in under
        ``<run dir>/bin``. Does not wait: :meth:`_wait_warp` does."""
        token = secrets.token_hex(16)
        token_file = self.run_dir / "cf-token"
        token_file.touch(mode=0o600)
        token_file.write_text(token)
        # The v6-broken scenarios: a profile excluding all of IPv6, applied literally.
        literal6 = self.scenario is not None and self.scenario.v6_excluded
        listed = [*warp.LAB_EXCLUDES, *((warp.ALL_V6,) if literal6 else ())]
        excludes = [{"address": a} for a in listed]
        cfapi.write_state(self.cfapi_state, cfapi.new_state(LAB_ACCOUNT, {token: "edit"}, excludes))
        py = [sys.executable, "-m"]
        argv = [*py, "meshpath.lab.cfapi", "--state", str(self.cfapi_state)]
        ready = ["--port", str(CF_API_PORT), "--ready", str(self.run_dir / "cfapi.ready")]
        self._spawn("cfapi", "edge", [*argv, *ready])
        argv = [*py, "meshpath.lab.warpd", "--api", f"http://127.0.0.1:{CF_API_PORT}/client/v4"]
        argv += ["--api-ns", self.ns("edge"), "--account", LAB_ACCOUNT]
        argv += ["--token-file", str(token_file), "--status", str(self.warp_file)]
        argv += ["--exclude", *listed, *(["--literal-v6"] if literal6 else [])]
        self._spawn("warpd", "conn", argv)
        bin_dir = self.run_dir / "bin"
        bin_dir.mkdir(exist_ok=True)
        stand_in = bin_dir / "warp-cli"
        stand_in.write_text(warpcli.script(Path(f"{self.warp_file}.d")))
        stand_in.chmod(0o755)

    def _wait_warp(self) -> None:
        """Until the API answers and WARP has installed the profile it fetched from it."""
        wait_for("cfapi", self._ready_probe(self.run_dir / "cfapi.ready"), 10.0)
        wait_for("WARP emulator", lambda: self._warp_installed(0) or self._any_died(), 10.0)
        self._raise_if_died()

    @property
    def cfapi_state(self) -> Path:
        return self.run_dir / "cfapi.json"

    @property
    def warp_file(self) -> Path:
        return self.run_dir / "warp.json"

    @property
    def api_base(self) -> str:
        """Cloudflare's API as the connector reaches it (``fix --api-base``)."""
        return f"http://{CF_API_IP}:{CF_API_PORT}/client/v4"

    @property
    def account(self) -> str:
        return LAB_ACCOUNT

    def api_token(self) -> str:
        return (self.run_dir / "cf-token").read_text().strip()

    def meshpath_env(self, token: bool = False) -> dict[str, str]:
        """The environment of a command on the connector: the warp-cli stand-in on PATH,
        and with ``token`` the lab's API token (CLOUDFLARE_API_TOKEN)."""
        env = dict(os.environ)
        env["PATH"] = f"{self.run_dir / 'bin'}:{env.get('PATH', '/usr/sbin:/usr/bin')}"
        if token:
            env["CLOUDFLARE_API_TOKEN"] = self.api_token()
        return env

    def warp_status(self) -> dict[str, Any]:
        """The WARP emulator's state: status, mode, entries, ifindex, generation."""
        try:
            data: dict[str, Any] = json.loads(self.warp_file.read_text())
        except (OSError, ValueError):
            return {}
        return data

    def _warp_installed(self, after: int) -> bool:
        state = self.warp_status()
        return bool(state.get("fetch_ok")) and int(state.get("generation", 0)) > after

    def set_profile(
        self, exclude: list[str] | None = None, include: list[str] | None = None
    ) -> None:
        """Change the lab's default device profile (as an admin in the dashboard would)."""
        data = cfapi.read_state(self.cfapi_state)
        lists = data["profiles"][cfapi.DEFAULT]
        lists["exclude"] = [{"address": a} for a in exclude or []]
        lists["include"] = [{"address": a} for a in include or []]
        cfapi.write_state(self.cfapi_state, data)

    def profile(self) -> dict[str, list[str]]:
        lists = cfapi.read_state(self.cfapi_state)["profiles"][cfapi.DEFAULT]
        return {k: [e.get("address") or e.get("host") for e in v] for k, v in lists.items()}

    def wait_warp(self, generation: int, timeout: float = 5.0) -> float:
        """Wait until WARP installed a generation newer than ``generation``; seconds taken."""
        start = time.monotonic()
        wait_for("WARP to re-install", lambda: self._warp_installed(generation), timeout)
        return time.monotonic() - start

    def warp_reconnect(self, timeout: float = 10.0) -> float:
        """A WARP reconnect: ``CloudflareWARP`` deleted and created again (the tunnel
        emulator reopens its tun), then WARP re-installs its state on the new device.
        Returns the seconds until WARP's state was back."""
        before = self.warp_status()
        tunnel = self.tunnel_status()
        start = time.monotonic()
        os.kill(int(tunnel["pid"]), signal.SIGHUP)
        count = int(tunnel.get("reconnects", 0))
        wait_for("tun re-created", lambda: self.tunnel_status()["reconnects"] > count, timeout)
        old_index = before.get("ifindex")
        wait_for(
            "WARP state on the new device",
            lambda: (
                self._warp_installed(int(before.get("generation", 0)))
                and self.warp_status().get("ifindex") != old_index
            ),
            timeout,
        )
        return time.monotonic() - start
