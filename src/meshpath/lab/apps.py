"""The lab's applications: the service, Mesh's edge and workerd; calling them (I/O edge)."""

from __future__ import annotations

import json
import socket
import sys
from typing import Any

from meshpath.collect.netns import inside_netns
from meshpath.lab import client, topology
from meshpath.lab.base import LabBase
from meshpath.lab.procs import wait_for
from meshpath.lab.scenarios import Scenario, WorkerResult
from meshpath.lab.worker.app import start_edge, worker_address, worker_listens, worker_log_lines


class Apps(LabBase):
    """The private service (svc, ts), Mesh's edge and the Workers (edge)."""

    def _start_apps(self, scn: Scenario) -> None:
        py = [sys.executable, "-m"]
        ready = []
        log = str(self.run_dir / "service.log")
        svc_ready = self.run_dir / "service.ready"
        argv = [*py, "meshpath.lab.service", "--bind6", topology.SERVICE_IP6]
        self._spawn("service", "svc", [*argv, "--log", log, "--ready", str(svc_ready)])
        ready.append(svc_ready)
        ready.append(start_edge(self))
        if scn.tailnet:
            ts_ready = self.run_dir / "tailnet.ready"
            argv = [*py, "meshpath.lab.service", "--bind", topology.TAILNET_NODE, "--name", "ts"]
            argv += ["--log", str(self.run_dir / "tailnet.log"), "--ready", str(ts_ready)]
            self._spawn("tailnet-service", "ts", argv)
            ready.append(ts_ready)
        for path in ready:
            wait_for(path.stem, self._ready_probe(path), 10.0)
        self._raise_if_died()
        wait_for("workerd", self._worker_answers, 10.0)
        self._raise_if_died()

    def _worker_answers(self) -> bool:
        """Each workerd accepts connections on its address in edge (or something died)."""
        if self._any_died():
            return True
        with inside_netns(self.ns("edge")):
            try:
                for address in worker_listens(self):
                    socket.create_connection(address, timeout=0.2).close()
            except OSError:
                return False
        return True

    def worker_call(
        self, path: str = "/mesh/", timeout: float = 15.0, *, user: bool = False
    ) -> WorkerResult:
        """Call the Worker in workerd (inside edge) like ``curl https://<worker>/<path>``;
        ``user``: the user's Worker (``lab up --worker``) instead of the lab's."""
        return self.http_get("edge", f"http://{worker_address(user)}{path}", timeout)

    def http_get(self, node: str, url: str, timeout: float = 5.0) -> WorkerResult:
        """An HTTP GET from inside ``node`` (any URL); same shape as :meth:`worker_call`."""
        with inside_netns(self.ns(node)):
            status, body = client.get(url, timeout)
        return WorkerResult(status, body, _client_of(body))

    def worker_log(self, *, user: bool = False) -> list[str]:
        """workerd's log of the Worker, like ``wrangler tail``: ``handler failed: ...``."""
        return worker_log_lines(self.run_dir, user)

    def service_log(self) -> list[dict[str, Any]]:
        """One entry per request the service received: client, port, path, time."""
        path = self.run_dir / "service.log"
        if not path.exists():
            return []
        return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]

    def clear_service_log(self) -> None:
        """Forget what the service logged so far (it appends, so truncating is safe)."""
        path = self.run_dir / "service.log"
        if path.exists():
            path.write_text("")


def _client_of(body: str) -> str | None:
    try:
        data = json.loads(body)
    except ValueError:
        return None
    return str(data["client"]) if isinstance(data, dict) and "client" in data else None
