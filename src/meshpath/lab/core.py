"""The :class:`Lab`: builds, observes and tears down one lab instance (I/O edge)."""

from __future__ import annotations

import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from types import FrameType, TracebackType
from typing import Any, Generic, TypeVar, overload

from meshpath.collect.frr import decode_show
from meshpath.collect.iproute import host_prefix, ip_json
from meshpath.collect.netns import inside_netns
from meshpath.errors import BadInputError, EnvironmentProblem, MissingToolError, PrivilegeError
from meshpath.fsafe import atomic_write, clear_inside, ensure_dir, remove_inside
from meshpath.lab import cfapi, client, frr, topology, warp, warpcli
from meshpath.lab.capture import Packet, parse_lines
from meshpath.lab.procs import (
    LabTimeout,
    delete_namespaces,
    frr_pathspace,
    kill_in_namespaces,
    lab_namespaces,
    netns_pids,
    spawn,
    wait_for,
)
from meshpath.lab.scenarios import ReconnectResult, Scenario, WorkerResult, get_scenario
from meshpath.lab.state import (
    RUN_ROOT,
    LabRootError,
    LabState,
    check_run_root,
    is_stale,
    known_instances,
    new_state,
    pid_alive,
    read_state,
    run_dir,
    write_state,
)
from meshpath.lab.topology import CF_API_IP, CF_API_PORT, LAB_ACCOUNT, check_instance
from meshpath.lab.worker.app import (
    WorkerApp,
    start_edge,
    worker_address,
    worker_listens,
    worker_log_lines,
)
from meshpath.lab.worker.runtime import find_workerd
from meshpath.runner import Completed, SubprocessRunner, netns_argv
from meshpath.state import frr as frr_state

T = TypeVar("T")
REQUIRED_TOOLS = ("ip", "nft", "tcpdump", "sysctl", "vtysh")
FRR_BINARIES = tuple(f"/usr/lib/frr/{d}" for d in frr.DAEMONS)


def preflight() -> None:
    """Root and every tool the lab runs; one clear error (exit 3) otherwise."""
    if os.geteuid() != 0:
        raise PrivilegeError("the lab needs root (CAP_NET_ADMIN) to create network namespaces")
    for tool in REQUIRED_TOOLS:
        if shutil.which(tool) is None:
            raise MissingToolError(tool, "install iproute2, nftables, tcpdump, procps and frr")
    for binary in FRR_BINARIES:
        if not os.access(binary, os.X_OK):
            raise MissingToolError(binary, "install FRR (apt-get install frr)")
    if not os.path.exists("/dev/net/tun"):
        raise MissingToolError("/dev/net/tun", "the kernel's tun driver is needed")
    find_workerd()


@dataclass(frozen=True, slots=True)
class CaptureResult(Generic[T]):
    """A capture taken around a call: parsed TCP packets, tcpdump's text, the pcap file."""

    packets: tuple[Packet, ...]
    text: str
    pcap: Path
    value: T


def remove_lab(instance: str, run_root: Path = RUN_ROOT) -> None:
    """Kill every process in lab ``instance``'s namespaces, delete them, drop its run dir.

    ``instance`` must be a valid id (BadInputError otherwise, before anything happens);
    only ``run_root/instance`` is removed, never through a symlink (LabRootError).
    """
    check_instance(instance)
    namespaces = lab_namespaces(instance)
    kill_in_namespaces(namespaces)
    delete_namespaces(namespaces)
    remove_run_dir(run_root, instance)


def remove_run_dir(run_root: Path, instance: str, keep: tuple[str, ...] | None = None) -> None:
    """Remove lab ``instance``'s run dir (or, with ``keep``, every entry but those)."""
    try:
        if not check_run_root(run_root):
            return
        if keep is None:
            remove_inside(run_root, check_instance(instance))
        else:
            clear_inside(run_root, check_instance(instance), keep=keep)
    except OSError as exc:
        raise LabRootError(f"lab: not removing {exc.filename}: {exc.strerror}") from exc


def clean_leftovers(run_root: Path = RUN_ROOT, everything: bool = False) -> list[str]:
    """Remove labs whose owner died (or that have no state); ``everything``: also detached ones.

    Labs owned by a live process (another test run, ``lab run``) are never touched.
    """
    check_run_root(run_root)  # a linked or foreign run root is an error, not "no labs"
    instances = {i for ns in lab_namespaces() if (i := topology.instance_of(ns)) is not None}
    instances |= known_instances(run_root)
    removed = []
    for instance in sorted(instances):
        state = read_state(run_root, instance)
        detached = state is not None and state.owner_pid is None
        if is_stale(state) or (everything and detached):
            remove_lab(instance, run_root)
            removed.append(instance)
    return removed


class Lab:
    """One lab instance. Use :meth:`create` (new, owned) or :meth:`attach` (existing)."""

    def __init__(self, instance: str, run_root: Path = RUN_ROOT) -> None:
        self.instance = check_instance(instance)
        self.run_root = run_root
        self.run_dir = run_root / instance
        self.runner = SubprocessRunner()
        self.scenario: Scenario | None = None
        # How long Mesh waits for a SYN-ACK before the Worker sees "handshake timeout".
        self.connect_timeout = 2.5
        self.response_timeout = 5.0  # ... and for the response, once connected
        # A user's Worker run beside the lab's own (`lab up --worker DIR`), set before setup.
        self.user_worker: WorkerApp | None = None
        self.reconnects: list[ReconnectResult] = []  # filled by the reconnect scenario
        self._children: list[subprocess.Popen[bytes]] = []
        self._named: dict[str, subprocess.Popen[bytes]] = {}
        self._state = read_state(run_root, instance) or new_state(run_root, instance, None)

    # -- life cycle -------------------------------------------------------------------
    @classmethod
    def create(cls, instance: str | None = None, *, run_root: Path = RUN_ROOT) -> Lab:
        """A new lab owned by this process (nothing built yet: call :meth:`setup`).

        Checks root and tools first and removes leftovers of killed runs.
        """
        if instance is not None:
            check_instance(instance)  # bad input first, before any environment check
        preflight()
        clean_leftovers(run_root)
        name = instance if instance is not None else _free_instance(run_root)
        owner = (read_state(run_root, name) or new_state(run_root, name, None)).owner_pid
        if owner is not None and owner != os.getpid() and pid_alive(owner):
            raise BadInputError(f"lab instance {name!r} is in use by pid {owner}")
        if lab_namespaces(name) or os.path.lexists(run_root / name):
            remove_lab(name, run_root)
        lab = cls(name, run_root)
        lab._save(new_state(run_root, name, os.getpid()))
        return lab

    @classmethod
    def attach(cls, instance: str | None = None, *, run_root: Path = RUN_ROOT) -> Lab:
        """An existing lab: ``instance``, or the only one there is."""
        if instance is None:
            found = sorted(known_instances(run_root))
            if len(found) != 1:
                what = "no lab is running" if not found else f"several labs: {', '.join(found)}"
                raise BadInputError(f"{what}; pass --instance (start one with 'meshpath lab up')")
            instance = found[0]
        if read_state(run_root, check_instance(instance)) is None:
            raise BadInputError(f"no lab instance {instance!r} (see 'meshpath lab status')")
        lab = cls(instance, run_root)
        name = lab._state.scenario
        lab.scenario = get_scenario(name) if name else None
        return lab

    def __enter__(self) -> Lab:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.down()

    def detach(self) -> None:
        """Leave the lab running after this process ends (what ``lab up`` does)."""
        self._save(self._replace(owner_pid=None))
        for child in self._children:
            # The process now belongs to the lab, not to us: teardown finds it through
            # `ip netns pids`. Marking it settled stops Popen warning that it still runs.
            if child.poll() is None:
                child.returncode = 0
        self._children.clear()
        self._named.clear()

    def down(self) -> None:
        """Stop every process, delete every namespace and the run dir. Idempotent."""
        self._clear()
        remove_run_dir(self.run_root, self.instance)

    def _clear(self) -> None:
        """Stop processes, delete namespaces and every run file except the state file
        (which keeps the lab marked as owned while it is rebuilt)."""
        # The state file lists namespaces; only this lab's own names count (a state file
        # is data: a name in it must never become a path outside the lab).
        recorded = {n for n in self._state.namespaces if topology.instance_of(n) == self.instance}
        namespaces = sorted(recorded | set(lab_namespaces(self.instance)))
        kill_in_namespaces(namespaces, self._children)
        delete_namespaces(namespaces)
        self._children.clear()
        self._named.clear()
        remove_run_dir(self.run_root, self.instance, keep=("state.json",))

    def state(self) -> LabState:
        return self._state

    def _replace(self, **changes: Any) -> LabState:
        data = {f: getattr(self._state, f) for f in self._state.__struct_fields__}
        data.update(changes)
        return LabState(**data)

    def _save(self, state: LabState) -> None:
        self._state = state
        write_state(self.run_root, state)

    # -- names and commands -----------------------------------------------------------
    def ns(self, node: str) -> str:
        """The namespace name of ``node`` (edge, conn, router, svc, ts, lan)."""
        if node not in topology.NODES:
            raise BadInputError(f"unknown lab node {node!r}; expected one of {topology.NODES}")
        return topology.ns_name(self.instance, node)

    def exec(
        self, node: str, argv: Sequence[str], *, check: bool = False, timeout: float = 30.0
    ) -> Completed:
        """Run ``argv`` inside ``node``'s namespace."""
        return self.runner.run(netns_argv(self.ns(node), argv), check=check, timeout=timeout)

    def ip_batch(self, node: str, text: str) -> None:
        self.runner.run(["ip", "-n", self.ns(node), "-batch", "-"], input_text=text)

    def nft(self, node: str, ruleset: str) -> None:
        self.runner.run(netns_argv(self.ns(node), ["nft", "-f", "-"]), input_text=ruleset)

    def vtysh(self, node: str, command: str) -> str:
        return self.runner.run(frr.vtysh_argv(str(self._frr_dir(node)), command)).stdout

    def vtysh_json(self, node: str, command: str) -> dict[str, Any]:
        value, _problem = decode_show(command, self.vtysh(node, command) or "{}")
        return value or {}

    # -- building ---------------------------------------------------------------------
    def setup(self, scenario: str | Scenario) -> None:
        """Build the lab for ``scenario`` from scratch (an existing build is torn down)."""
        scn = get_scenario(scenario) if isinstance(scenario, str) else scenario
        self._clear()
        run_dir(self.run_root, self.instance)
        nodes = topology.nodes_for(scn.tailnet)
        names = tuple(self.ns(n) for n in nodes)
        self._save(self._replace(namespaces=names, scenario=scn.name, fixed=None, pids={}))
        self.scenario = scn
        self.reconnects = []
        for name in names:
            self.runner.run(["ip", "netns", "add", name])
        for node in nodes:
            self._sysctls(node)
        self._start_tunnel()
        self._wire(scn, nodes)
        self._start_warp()  # started first, waited for last: the start-ups overlap
        self._start_apps(scn)
        self._wait_warp()
        self._start_frr_base(scn)
        self._save(self._replace(pids={k: c.pid for k, c in self._named.items()}))

    def _sysctls(self, node: str) -> None:
        pairs = [f"{k}={v}" for k, v in topology.sysctls_for(node).items()]
        self.exec(node, ["sysctl", "-q", "-w", *pairs], check=True)

    def _spawn(self, name: str, node: str, argv: Sequence[str]) -> subprocess.Popen[bytes]:
        child = spawn(self.ns(node), argv, self.run_dir / f"{name}.log")
        self._children.append(child)
        self._named[name] = child
        return child

    def _start_tunnel(self) -> None:
        status = self.run_dir / "tunnel.json"
        argv = [sys.executable, "-m", "meshpath.lab.tunnel", "--edge-ns", self.ns("edge")]
        argv += ["--conn-ns", self.ns("conn"), "--status", str(status)]
        child = self._spawn("tunnel", "edge", argv)
        wait_for("tunnel emulator", lambda: child.poll() is None and status.exists(), 10.0)
        for node, dev in (("edge", topology.TUN_EDGE), ("conn", topology.TUN_CONN)):
            wait_for(f"carrier on {dev}", self._lower_up_probe(node, dev), 5.0)

    def _lower_up_probe(self, node: str, dev: str) -> Callable[[], bool]:
        return lambda: self._lower_up(node, dev)

    def _lower_up(self, node: str, dev: str) -> bool:
        done = self.exec(node, ["ip", "-j", "link", "show", "dev", dev])
        return done.ok and "LOWER_UP" in ip_json(done.stdout)[0].get("flags", [])

    def _wire(self, scn: Scenario, nodes: Sequence[str]) -> None:
        hosts = [n for n in topology.HOSTS if n in nodes]
        self.ip_batch("lan", topology.lan_batch(self.instance, hosts))
        for host in hosts:
            self.ip_batch(host, topology.host_batch(host))
        self.ip_batch("edge", topology.edge_batch())
        via = topology.LAN_ADDR["conn"]
        if scn.lan == "broken":
            # Cloudflare's docs advise LAN hosts to route the CGNAT range to the connector.
            self.ip_batch("svc", f"route add {topology.CGNAT} via {via} dev eth0\n")
        elif scn.lan == "router":
            # The Mesh Routes page's return route, on the LAN router (svc's gateway).
            self.ip_batch("router", f"route add {topology.SOURCE_RANGE} via {via} dev eth0\n")

    # -- WARP: the Cloudflare API emulator (edge) and the WARP emulator (conn) ---------
    def _start_warp(self) -> None:
        """cfapi in edge serving the lab's profile; warpd in conn installing from it (first
        from its cached profile, as a client starts); the warp-cli stand-in under
        ``<run dir>/bin``. Does not wait: :meth:`_wait_warp` does."""
        token = secrets.token_hex(16)
        token_file = self.run_dir / "cf-token"
        token_file.touch(mode=0o600)
        token_file.write_text(token)
        excludes = [{"address": a} for a in warp.LAB_EXCLUDES]
        cfapi.write_state(self.cfapi_state, cfapi.new_state(LAB_ACCOUNT, {token: "edit"}, excludes))
        py = [sys.executable, "-m"]
        argv = [*py, "meshpath.lab.cfapi", "--state", str(self.cfapi_state)]
        ready = ["--port", str(CF_API_PORT), "--ready", str(self.run_dir / "cfapi.ready")]
        self._spawn("cfapi", "edge", [*argv, *ready])
        argv = [*py, "meshpath.lab.warpd", "--api", f"http://127.0.0.1:{CF_API_PORT}/client/v4"]
        argv += ["--api-ns", self.ns("edge"), "--account", LAB_ACCOUNT]
        argv += ["--token-file", str(token_file), "--status", str(self.warp_file)]
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

    def _start_apps(self, scn: Scenario) -> None:
        py = [sys.executable, "-m"]
        ready = []
        log = str(self.run_dir / "service.log")
        svc_ready = self.run_dir / "service.ready"
        self._spawn(
            "service", "svc", [*py, "meshpath.lab.service", "--log", log, "--ready", str(svc_ready)]
        )
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

    def _ready_probe(self, path: Path) -> Callable[[], bool]:
        return lambda: path.exists() or self._any_died()

    def _any_died(self) -> bool:
        return any(c.poll() is not None for c in self._children)

    def _raise_if_died(self) -> None:
        for name, child in self._named.items():
            if child.poll() is not None:
                log = (self.run_dir / f"{name}.log").read_text(errors="replace").strip()
                last = _last_message(log) if log else "no output"
                raise LabTimeout(f"lab: {name} exited ({child.returncode}): {last}")

    # -- FRR --------------------------------------------------------------------------
    def _frr_dir(self, node: str) -> Path:
        return frr_pathspace(self.ns(node))

    def start_frr(self, node: str, cfg: frr.FrrConfig) -> None:
        """Render ``cfg``, start zebra, staticd and bgpd in ``node``, wait until they answer."""
        d = self._frr_dir(node)
        # The dir belongs to the frr user: never follow a link planted in it (as root).
        ensure_dir(d, 0o755, owner=("frr", "frr"))
        for daemon, text in frr.render_all(cfg, str(d / "frr.log")).items():
            conf = d / f"{daemon}.conf"
            atomic_write(conf, text.encode(), mode=0o644)
            self.check_frr_config(node, daemon, conf)
            self.exec(node, frr.daemon_argv(daemon, str(conf), str(d)), check=True)
        wait_for(f"FRR in {node}", lambda: self._frr_answers(node), 10.0)

    def check_frr_config(self, node: str, daemon: str, conf: Path) -> None:
        """FRR's own parser on a rendered file; LabConfigError naming the bad lines.

        Run inside ``node``: a daemon's ``-C`` still starts up far enough to open netlink
        (zebra) or a BGP listener (bgpd), which must never happen in the root namespace.
        """
        done = self.exec(node, frr.check_argv(daemon, str(conf)))
        problems = frr.check_problems(done.stdout + done.stderr)
        if not done.ok or problems:
            detail = "; ".join(problems) or done.stderr.strip()
            raise LabConfigError(f"lab: FRR rejects {conf}: {detail}")

    def _frr_answers(self, node: str) -> bool:
        argv = frr.vtysh_argv(str(self._frr_dir(node)), "show bgp summary json")
        done = self.runner.run(argv, check=False)
        return done.ok and done.stdout.strip().startswith("{")

    def _start_frr_base(self, scn: Scenario) -> None:
        self.start_frr("router", frr.router_config(scn.tailnet))
        if scn.tailnet:
            self.start_frr("ts", frr.tailnet_config())
            node = f"{topology.TAILNET_NODE}/32"
            wait_for("tailnet route on the router", lambda: node in self.bgp_routes("router"), 15.0)

    def bgp_routes(self, node: str) -> dict[str, str]:
        """Kernel routes installed by BGP in ``node``: prefix -> gateway."""
        return self._kernel_routes(node, "bgp")

    def frr_statics(self, node: str) -> frozenset[str]:
        """Kernel routes installed by FRR staticd in ``node`` (protocol 196, not 'static')."""
        return frozenset(self._kernel_routes(node, "196"))

    def _kernel_routes(self, node: str, proto: str) -> dict[str, str]:
        done = self.exec(node, ["ip", "-j", "-4", "route", "show", "proto", proto])
        if not done.ok or not done.stdout.strip():
            return {}
        return {host_prefix(r["dst"]): r.get("gateway", "") for r in ip_json(done.stdout)}

    def bgp_peer_state(self, node: str, peer: str) -> str | None:
        peers = frr_state.bgp_peers(self.vtysh_json(node, "show bgp summary json"))
        return next((p.state for p in peers if p.address == peer), None)

    def bgp_learned(self, node: str, peer: str) -> frozenset[str]:
        """Prefixes in ``node``'s BGP table with a path from ``peer``."""
        return frr_state.learned_from(self.vtysh_json(node, "show bgp ipv4 unicast json"), peer)

    # -- observing --------------------------------------------------------------------
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

    def tunnel_status(self) -> dict[str, Any]:
        """The tunnel emulator's counters: edge_to_conn, conn_to_edge, dropped, paused."""
        data: dict[str, Any] = json.loads((self.run_dir / "tunnel.json").read_text())
        return data

    def pause_tunnel(self, paused: bool = True) -> None:
        """Emulate a tunnel outage (``paused=False`` ends it); returns once it took effect."""
        pid = int(self.tunnel_status()["pid"])
        os.kill(pid, signal.SIGUSR1 if paused else signal.SIGUSR2)
        wait_for("tunnel pause", lambda: self.tunnel_status()["paused"] == paused, 3.0)

    def route_get(self, node: str, dest: str) -> dict[str, Any]:
        done = self.exec(node, ["ip", "-j", "route", "get", dest], check=True)
        return ip_json(done.stdout)[0]

    @overload
    def capture(
        self, node: str, action: Callable[[], T], *, bpf: str = ..., name: str = ...
    ) -> CaptureResult[T]: ...

    @overload
    def capture(
        self, node: str, action: Sequence[str], *, bpf: str = ..., name: str = ...
    ) -> CaptureResult[Completed]: ...

    def capture(
        self,
        node: str,
        action: Callable[[], T] | Sequence[str],
        *,
        bpf: str = "tcp port 3000",
        name: str = "capture",
    ) -> CaptureResult[T] | CaptureResult[Completed]:
        """Run tcpdump on every interface of ``node`` while ``action`` runs (a callable, or
        an argv run inside ``node``); returns the packets and the pcap path."""
        pcap = self.run_dir / f"{name}.pcap"
        out, err = self.run_dir / f"{name}.txt", self.run_dir / f"{name}.err"
        argv = ["tcpdump", "-i", "any", "-n", "-l", "-U", "--immediate-mode", "-Z", "root"]
        argv += ["--print", "-w", str(pcap)]
        with out.open("wb") as fo, err.open("wb") as fe:
            proc = subprocess.Popen(  # noqa: S603 - argv list
                netns_argv(self.ns(node), [*argv, bpf]),
                stdout=fo,
                stderr=fe,
                start_new_session=True,
            )
        self._children.append(proc)
        try:
            wait_for("tcpdump", lambda: "listening on" in err.read_text() or proc.poll(), 10.0)
            value: Any = action() if callable(action) else self.exec(node, action)
        finally:
            _settle(out)
            proc.send_signal(signal.SIGINT)
            proc.wait(timeout=10)
        text = out.read_text(errors="replace")
        return CaptureResult(parse_lines(text), text, pcap, value)

    def status(self) -> dict[str, Any]:
        """What exists of this lab right now: namespaces, processes, scenario."""
        live = lab_namespaces(self.instance)
        return {
            "instance": self.instance,
            "scenario": self._state.scenario,
            "fixed": self._state.fixed,
            "owner_pid": self._state.owner_pid,
            "run_dir": str(self.run_dir),
            "namespaces": {ns: sorted(netns_pids([ns])) for ns in live},
        }

    def mark_fixed(self, fix: str) -> None:
        self._save(self._replace(fixed=fix))


class LabConfigError(EnvironmentProblem):
    """A rendered lab configuration was rejected by the real tool."""


def _free_instance(run_root: Path) -> str:
    """A random 4-hex-digit instance id no lab uses (short: it is in every ns name)."""
    taken = known_instances(run_root) | {
        i for ns in lab_namespaces() if (i := topology.instance_of(ns)) is not None
    }
    while (name := secrets.token_hex(2)) in taken:
        pass
    return name


def _settle(path: Path, quiet: float = 0.15, limit: float = 1.0) -> None:
    """Wait until tcpdump's output has stopped growing for ``quiet`` seconds (at most
    ``limit``), so the last packets of a call are printed before tcpdump is stopped."""
    end = time.monotonic() + limit
    size, since = -1, time.monotonic()
    while time.monotonic() < end:
        now_size = path.stat().st_size
        if now_size != size:
            size, since = now_size, time.monotonic()
        elif time.monotonic() - since >= quiet:
            return
        time.sleep(0.02)


def _last_message(log: str) -> str:
    """The last message of a log: its last line, with the indented lines before it folded
    in (workerd: 'Uncaught Error: No such module "hono". | imported from "index.js"')."""
    lines = log.splitlines()
    start = len(lines) - 1
    while start > 0 and lines[start][:1].isspace():
        start -= 1
    return " | ".join(ln.strip() for ln in lines[start:])


def _client_of(body: str) -> str | None:
    try:
        data = json.loads(body)
    except ValueError:
        return None
    return str(data["client"]) if isinstance(data, dict) and "client" in data else None


@contextmanager
def terminate_as_interrupt() -> Iterator[None]:
    """Within the block SIGTERM and SIGINT raise KeyboardInterrupt, so teardown in
    ``finally`` runs (SIGINT too when the parent shell started us with it ignored)."""

    def handler(signum: int, frame: FrameType | None) -> None:
        raise KeyboardInterrupt

    previous = {sig: signal.signal(sig, handler) for sig in (signal.SIGTERM, signal.SIGINT)}
    try:
        yield
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)


def elapsed(start: float) -> float:
    return round(time.monotonic() - start, 2)
