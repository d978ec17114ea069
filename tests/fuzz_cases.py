"""The CLI fuzz catalogue: every command that takes a file or a name, with malformed input.

Shared by ``tests/unit/test_fuzz_cli.py`` (a sample, in-process) and ``bench/fuzz_cli.py``
(the full sweep, one forked child per case). Each :class:`Case` is one argv whose right
answer is a one-line error, exit 2 (bad input) or 3 (environment), within seconds.

Safety by construction (:func:`assert_safe` checks every case): doctor, fix, snapshot,
route get, flow and verify only ever see ``--snapshot FILE`` or a ``--netns`` that does
not exist; fix never ``--apply``, and its ``--root``/``--state-dir`` are the sandbox; lab
commands only get instance names the lab must refuse; every path is inside the sandbox
(or a device that is only read). :class:`Guard` then blocks, in the process that runs a
case, anything that would still change the host: a write, rename or removal outside the
sandbox, a signal, a command that is not a read-only query.
"""

from __future__ import annotations

import builtins
import io
import json
import os
import re
import shlex
import shutil
import subprocess
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

from meshpath.trace import writer as w
from meshpath.trace.decode import LINKTYPE_RAW
from meshpath.trace.packet import Direction
from tests.trace_builders import scenario, sll2_pcap

SNAPSHOTS: Final = Path(__file__).parent / "data" / "snapshots"
NO_NETNS: Final = "mpfuzz-nosuch"  # checked absent before a sweep
VALID_INSTANCE: Final = re.compile(r"[a-z0-9]{1,8}")


# -- the malformed values ---------------------------------------------------------------
# Names: for --netns, lab --instance, --lan-if, --tunnel, --iif, --lab-worker.
NAMES: Final = {
    "empty": "",
    "space": " ",
    "long300": "x" * 300,
    "dotdot": "../..",
    "abs": "/etc",
    "slash": "a/b",
    "dot": ".",
    "dash": "-rf",
    "nftquote": 'x"accept#',
    "shell": "$(id)",
    "blank-inside": "a b",
    "unicode": "é\u202e",
    "tab": "\t",
    "newline": "a\nb",
    "star": "*",
    "upper": "LAB",
    "traversal": "../../tmp/mpfuzz",
}
NUMBERS: Final = {
    "negative": "-1",
    "nan": "nan",
    "inf": "inf",
    "underscore": "1_000",
    "hex-bad": "0x",
    "huge": "9" * 30,
    "arabic-digits": "١٢",
    "empty": "",
    "exp": "1e3",
    "plus": "+5",
    "words": "abc",
}
TARGETS: Final = {
    "plus-port": ":+80",
    "underscore": "8_0",
    "fullwidth-port": "10.0.1.50:８０",
    "bracket-v4": "[10.0.1.50]:80",
    "open-bracket": "[::1",
    "port0": "10.0.1.50:0",
    "port65536": "10.0.1.50:65536",
    "empty": "",
    "words": "x:y",
    "negative": "10.0.1.50:-1",
    "huge-port": "10.0.1.50:" + "9" * 30,
    "two-colons": "10.0.1.50:1:2",
    "bare-v6-colon": "[::1]:",
    "space-port": "10.0.1.50: 80",
}
ADDRESSES: Final = {
    "empty": "",
    "words": "x",
    "five-octets": "1.2.3.4.5",
    "octet256": "256.0.0.1",
    "cidr": "10.0.1.0/24",
    "newline": "10.0.1.1\nip route 1.2.3.0/24 blackhole",
    "space": "10.0.1.1 ",
    "leading-zero": "010.0.1.1",
}
RANGES: Final = {
    "no-equals": "x",
    "no-cidr": "source_v4=",
    "plen33": "source_v4=10.0.0.0/33",
    "unknown-key": "nosuch=1.0.0.0/8",
    "wrong-family": "source_v4=::/0",
    "only-equals": "=",
    "host-bits": "source_v4=100.64.0.1/12",
    "v4-as-v6": "source_v6=100.64.0.0/12",
    "overlap": "source_v4=100.96.0.0/11",
}
MODES: Final = {"empty": "", "upper": "NAT", "words": "x", "trailing-space": "nat "}


# -- the malformed files ------------------------------------------------------------------
def _broken() -> dict[str, Any]:
    doc: dict[str, Any] = json.loads((SNAPSHOTS / "broken.json").read_text())
    return doc


def _snapshot_variants() -> dict[str, bytes]:
    """Snapshots that decode but mean nothing (items 12 and 14)."""

    def edit(change: Callable[[dict[str, Any]], object]) -> bytes:
        doc = _broken()
        change(doc)
        return json.dumps(doc).encode()

    def goto(doc: dict[str, Any]) -> None:
        doc["rules"].append({**doc["rules"][0], "priority": 100, "action": "goto", "goto": 0})

    deep = "[" * 100_000 + "]" * 100_000
    return {
        "schema99": edit(lambda d: d.update(schema_version=99)),
        "backward-goto": edit(goto),
        "bad-dst": edit(lambda d: d["routes"][0].update(dst="10.0.0.0/40")),
        "bad-prefixlen": edit(lambda d: d["addresses"][1].update(prefixlen=99)),
        "negative-ifindex": edit(lambda d: d["links"][1].update(index=-3)),
        "nft-shape": edit(lambda d: d["nft"]["ruleset"]["nftables"].append({"chain": True})),
        "frr-shape": edit(lambda d: d["frr"].update(bgp_summary={"ipv4Unicast": []})),
        "deep-json": json.dumps(_broken())
        .replace('"ruleset": {', f'"ruleset": {{"x": {deep}, ', 1)
        .encode(),
        "wrong-type": edit(lambda d: d.update(routes="none")),
    }


def _captures() -> dict[str, bytes]:
    good = sll2_pcap(scenario("return-misrouted"))
    syn = w.syn("100.64.0.1", "10.0.1.50", 1000, 3000, 7)
    far = w.pcapng(
        [w.NgInterface(LINKTYPE_RAW, "tun0", tsresol=0)],
        [(0, (2**64 - 1) * 1000, syn, Direction.IN)],
    )
    big_port = "tun0 In IP 100.64.0.1.99999999999 > 10.0.1.50.3000: Flags [S], seq 1\n"
    return {
        "pcap-truncated": good[:20],
        "pcap-garbage": good[:4] + bytes(range(256)) * 4,
        "pcap-huge-record": good[:24] + b"\xff\xff\xff\x7f" * 4 + b"x" * 64,
        "pcapng-tsresol-overflow": far,
        "text-big-port": big_port.encode(),
        "text-no-packets": b"hello\nworld\n",
    }


def _configs() -> dict[str, bytes]:
    return {
        "toml-truncated": b'[ranges\nsource_v4 = "100.64',
        "toml-garbage": b"= = =\n",
        "toml-deep": b"x = " + b"[" * 5000 + b"1" + b"]" * 5000 + b"\n",
        "toml-ranges-int": b"ranges = 5\n",
        "toml-range-int": b"[ranges]\nsource_v4 = 5\n",
        "toml-range-words": b'[ranges]\nsource_v4 = "x"\n',
        "toml-tunnel-empty": b'[connector]\ntunnel_interface = ""\n',
        "toml-unknown-key": b'[ranges]\nnosuch = "1.0.0.0/8"\n',
    }


def _generic() -> dict[str, bytes]:
    """Contents wrong for every kind of file."""
    good = (SNAPSHOTS / "broken.json").read_bytes()
    return {
        "empty": b"",
        "nul": bytes(4096),
        "unicode": "ÿ\u202e😀 garbage\n".encode() + b"\xff\xfe\xfd",
        "truncated-json": good[: len(good) // 2],
        "garbage-json": b'{"schema_version": 1, ' + b"\x01junk" * 100,
        "json-array": b"[1, 2, 3]",
        "json-null": b"null",
        "json-string": b'"x"',
    }


HUGE_BYTES: Final = 48 * 1024 * 1024


def make_inputs(sandbox: Path) -> dict[str, str]:
    """Create every input file under ``sandbox``; kind -> path (as the CLI gets it)."""
    files = sandbox / "in"
    files.mkdir(parents=True, exist_ok=True)
    paths: dict[str, str] = {}
    contents = {**_generic(), **_snapshot_variants(), **_captures(), **_configs()}
    for kind, data in contents.items():
        path = files / kind
        path.write_bytes(data)
        paths[kind] = str(path)
    with (files / "huge").open("wb") as fh:
        fh.truncate(HUGE_BYTES)  # sparse: 48 MiB of NULs without the disk
    paths["huge"] = str(files / "huge")
    fifo = files / "fifo"
    if not fifo.exists():
        os.mkfifo(fifo)
    paths["fifo"] = str(fifo)
    (files / "dir").mkdir(exist_ok=True)
    paths["dir"] = str(files / "dir")
    for a, b in (("loop", "loop2"), ("loop2", "loop")):
        if not (files / a).is_symlink():
            (files / a).symlink_to(files / b)
    paths["symlink-loop"] = str(files / "loop")
    if not (files / "dangling").is_symlink():
        (files / "dangling").symlink_to(files / "nowhere")
    paths["dangling"] = str(files / "dangling")
    paths["missing"] = str(files / "missing.json")
    paths["devzero"] = "/dev/zero"
    good = files / "good.json"
    shutil.copyfile(SNAPSHOTS / "broken.json", good)
    paths["good-snapshot"] = str(good)
    shutil.copyfile(SNAPSHOTS / "bgp.json", files / "bgp.json")
    paths["bgp"] = str(files / "bgp.json")
    garbage = sandbox / "state-garbage" / "journals"
    garbage.mkdir(parents=True, exist_ok=True)
    (garbage / "0001-nat.json").write_bytes(b'{"seq": 1, "status": "applied", "plan": 7}')
    paths["state:garbage-journal"] = str(sandbox / "state-garbage")
    (sandbox / "state-file").mkdir(exist_ok=True)
    (sandbox / "state-file" / "journals").write_bytes(b"not a directory")
    paths["state:journal-dir-file"] = str(sandbox / "state-file")
    capture = files / "good.pcap"
    capture.write_bytes(sll2_pcap(scenario("return-misrouted")))
    paths["good-capture"] = str(capture)
    return paths


# Captures a reader may read (what it cannot use is noted) rather than refuse.
READABLE_CAPTURES: Final = frozenset({"pcapng-tsresol-overflow", "pcap-huge-record"})
GENERIC_FILES: Final = (
    "empty",
    "nul",
    "unicode",
    "truncated-json",
    "garbage-json",
    "json-array",
    "json-null",
    "json-string",
    "huge",
    "fifo",
    "dir",
    "symlink-loop",
    "dangling",
    "missing",
    "devzero",
)
SNAPSHOT_FILES: Final = (*GENERIC_FILES, *_snapshot_variants())
CAPTURE_FILES: Final = (*GENERIC_FILES, *_captures())
# An empty file is a valid TOML config (all defaults): not malformed there.
CONFIG_FILES: Final = (*(k for k in GENERIC_FILES if k != "empty"), *_configs())


# -- the cases --------------------------------------------------------------------------
@dataclass(frozen=True)
class Case:
    """One CLI run. ``stdin``: a path whose content is fed on standard input.

    ``may_succeed``: the input is odd but readable, so a result (exit 0/1) is as right as
    a one-line refusal (a pcapng time past year 9999 is "unknown", a record cut off at
    the end of the file is a noted skip).
    """

    id: str
    argv: tuple[str, ...]
    stdin: str | None = None
    may_succeed: bool = False


def catalogue(paths: dict[str, str], sandbox: Path) -> list[Case]:
    """Every case, each once plain and once with ``--json`` (another output path)."""
    base = [
        *_file_cases(paths, sandbox),
        *_name_cases(paths, sandbox),
        *_value_cases(paths, sandbox),
    ]
    shared = str(sandbox / "state")
    out = []
    for n, case in enumerate(base):
        for suffix, prefix in (("", ()), ("+json", ("--json",))):
            # A state dir of its own: cases running side by side must not meet on its lock.
            own = str(sandbox / "state" / f"{n}{suffix}")
            argv = tuple(own if a == shared else a for a in (*prefix, *case.argv))
            out.append(Case(case.id + suffix, argv, case.stdin, case.may_succeed))
    ids = [c.id for c in out]
    assert len(ids) == len(set(ids)), "case ids must be unique"
    return out


def _fix(sandbox: Path, *argv: str) -> tuple[str, ...]:
    return ("fix", *argv, "--root", str(sandbox / "root"), "--state-dir", str(sandbox / "state"))


Argv = Callable[[str], tuple[str, ...]]
GET: Final = ("route", "get", "10.0.1.50")
FLOW: Final = ("flow", "10.0.1.50:3000")


def _file_cases(paths: dict[str, str], sandbox: Path) -> Iterator[Case]:
    good, cap = paths["good-snapshot"], paths["good-capture"]
    bgp = ("--mode", "bgp", "--peer", "10.0.1.1", "--asn", "65001")
    snapshot_users: dict[str, Argv] = {
        "doctor": lambda f: ("doctor", "--snapshot", f),
        "fix-nat": lambda f: _fix(sandbox, "--mode", "nat", "--snapshot", f),
        "fix-route": lambda f: _fix(sandbox, "--mode", "route", "--snapshot", f),
        "fix-bgp": lambda f: _fix(sandbox, *bgp, "--snapshot", f),
        "route-get": lambda f: (*GET, "--snapshot", f),
        "flow": lambda f: (*FLOW, "--snapshot", f),
        "snapshot-input": lambda f: ("snapshot", "--input", f),
        "trace-snapshot": lambda f: ("trace", cap, "--snapshot", f),
    }
    for user, argv in snapshot_users.items():
        for kind in SNAPSHOT_FILES:
            yield Case(f"{user}/--snapshot/{kind}", argv(paths[kind]))
    for kind in CAPTURE_FILES:
        odd = kind in READABLE_CAPTURES
        yield Case(f"trace/FILE/{kind}", ("trace", paths[kind]), may_succeed=odd)
    for kind in ("empty", "nul", "garbage-json", "devzero", "text-big-port"):
        yield Case(f"trace/stdin/{kind}", ("trace", "-"), stdin=paths[kind])
    for kind in CONFIG_FILES:
        config = ("--config", paths[kind])
        yield Case(f"ranges/--config/{kind}", (*config, "ranges"))
        yield Case(f"doctor/--config/{kind}", (*config, "doctor", "--snapshot", good))
    outputs = {
        "empty": "",
        "dir": paths["dir"],
        "missing-dir": str(sandbox / "no" / "x.json"),
        "symlink-loop": paths["symlink-loop"],
    }
    for kind, out in outputs.items():
        yield Case(f"snapshot/-o/{kind}", ("snapshot", "--input", good, "-o", out))
    yield from _state_dir_cases(paths, sandbox)


def _state_dir_cases(paths: dict[str, str], sandbox: Path) -> Iterator[Case]:
    """The journal is read by a plan (an interrupted fix?) and by verify without --mode. A
    plan only peeks there, so a state dir it cannot use may be passed over."""
    good, root = paths["good-snapshot"], str(sandbox / "root")
    for kind in ("garbage-journal", "journal-dir-file", "good-snapshot", "symlink-loop", "devzero"):
        state = paths.get("state:" + kind) or paths[kind]
        plan = ("fix", "--mode", "nat", "--snapshot", good, "--root", root, "--state-dir", state)
        yield Case(f"fix-nat/--state-dir/{kind}", plan, may_succeed=kind != "garbage-journal")
        check = ("verify", "--netns", NO_NETNS, "--root", root, "--state-dir", state)
        yield Case(f"verify/--state-dir/{kind}", check)


def _name_cases(paths: dict[str, str], sandbox: Path) -> Iterator[Case]:
    snap, cap = ("--snapshot", paths["good-snapshot"]), paths["good-capture"]
    dirs = ("--root", str(sandbox / "root"), "--state-dir", str(sandbox / "state"))
    netns_users: dict[str, Argv] = {
        "snapshot": lambda n: ("snapshot", "--netns", n, "-o", str(sandbox / "out.json")),
        "doctor": lambda n: ("doctor", "--netns", n),
        "route-get": lambda n: (*GET, "--netns", n),
        "flow": lambda n: (*FLOW, "--netns", n),
        "fix-nat": lambda n: _fix(sandbox, "--mode", "nat", "--netns", n),
        "fix-rollback": lambda n: _fix(sandbox, "--rollback", "--netns", n),
        "verify": lambda n: ("verify", "--mode", "nat", "--netns", n, *dirs),
        "trace-file": lambda n: ("trace", cap, "--netns", n),
        "trace-live": lambda n: ("trace", "--live", "--duration", "1", "--netns", n),
    }
    for user, argv in netns_users.items():
        for kind, name in {**NAMES, "nosuch": NO_NETNS}.items():
            yield Case(f"{user}/--netns/{kind}", argv(name))
    lab_users: dict[str, Argv] = {
        "lab-up": lambda i: ("lab", "up", "--instance", i),
        "lab-status": lambda i: ("lab", "status", "--instance", i),
        "lab-exec": lambda i: ("lab", "exec", "--instance", i, "conn", "--", "true"),
        "lab-run": lambda i: ("lab", "run", "broken", "--instance", i),
        "lab-down": lambda i: ("lab", "down", "--instance", i),
        "lab-demo": lambda i: ("lab", "demo", "--instance", i),
    }
    for user, argv in lab_users.items():
        for kind, name in NAMES.items():
            yield Case(f"{user}/--instance/{kind}", argv(name))
    devices: dict[str, Argv] = {
        "fix-nat/--lan-if": lambda n: _fix(sandbox, "--mode", "nat", *snap, "--lan-if", n),
        "flow/--tunnel": lambda n: (*FLOW, *snap, "--tunnel", n),
        "route-get/--iif": lambda n: (*GET, *snap, "--iif", n),
        "verify/--lab-worker": lambda n: ("verify", "--mode", "nat", "--netns", NO_NETNS,
                                          "--lab-worker", n),
    }  # fmt: skip
    # lo and the tunnel are real interfaces: wrong only as the LAN interface.
    lan_only = {"loopback": "lo", "tunnel": "CloudflareWARP"}
    for user, argv in devices.items():
        extra = {**(lan_only if user == "fix-nat/--lan-if" else {}), "absent": "nosuch0"}
        for kind, name in {**NAMES, **extra}.items():
            yield Case(f"{user}/{kind}", argv(name))


# A sign, and for a float an exponent, is ordinary number syntax: taking it is as right.
SIGNED: Final = frozenset({"plus"})
FLOAT_SYNTAX: Final = frozenset({"plus", "exp"})


def _value_cases(paths: dict[str, str], sandbox: Path) -> Iterator[Case]:
    snap, cap = ("--snapshot", paths["good-snapshot"]), paths["good-capture"]
    # FRR runs in the bgp snapshot: a bgp plan gets past "FRR not running" to the numbers.
    bgp = ("--mode", "bgp", "--peer", "10.0.1.1", "--asn", "65001", "--snapshot", paths["bgp"])
    numbers: dict[str, tuple[Argv, frozenset[str]]] = {
        "route-get/--mark": (lambda v: (*GET, *snap, "--mark", v), SIGNED),
        "fix-bgp/--asn": (lambda v: _fix(sandbox, *bgp, "--asn", v), SIGNED),
        "fix-bgp/--peer-asn": (lambda v: _fix(sandbox, *bgp, "--peer-asn", v), SIGNED),
        "fix-bgp/--bgp-timeout": (lambda v: _fix(sandbox, *bgp, "--bgp-timeout", v), FLOAT_SYNTAX),
        "trace-live/--duration": (lambda v: ("trace", "--live", "--netns", NO_NETNS,
                                             "--duration", v), FLOAT_SYNTAX),
        "trace/--max-flows": (lambda v: ("trace", cap, "--max-flows", v), SIGNED),
    }  # fmt: skip
    for user, (argv, fine) in numbers.items():
        for kind, value in NUMBERS.items():
            yield Case(f"{user}/{kind}", argv(value), may_succeed=kind in fine)
    targets: dict[str, Argv] = {
        "doctor/--target": lambda t: ("doctor", *snap, "--target", t),
        "fix-nat/--target": lambda t: _fix(sandbox, "--mode", "nat", *snap, "--target", t),
        "trace/--target": lambda t: ("trace", cap, "--target", t),
        "flow/TARGET": lambda t: ("flow", t, *snap),
    }
    for user, argv in targets.items():
        for kind, target in TARGETS.items():
            yield Case(f"{user}/{kind}", argv(target))
    addresses: dict[str, Argv] = {
        "doctor/--worker-ip": lambda a: ("doctor", *snap, "--worker-ip", a),
        "flow/--worker-ip": lambda a: (*FLOW, *snap, "--worker-ip", a),
        "route-get/DST": lambda a: ("route", "get", a, *snap),
        "route-get/--from": lambda a: (*GET, *snap, "--from", a),
        "fix-bgp/--peer": lambda a: _fix(sandbox, *bgp, "--peer", a),
        "verify/--peer": lambda a: ("verify", "--mode", "bgp", "--netns", NO_NETNS, "--peer", a),
    }
    for user, argv in addresses.items():
        for kind, address in ADDRESSES.items():
            yield Case(f"{user}/{kind}", argv(address))
    for kind, value in RANGES.items():
        yield Case(f"ranges/--range/{kind}", ("--range", value, "ranges"))
        yield Case(f"doctor/--range/{kind}", ("--range", value, "doctor", *snap))
    for kind, mode in MODES.items():
        yield Case(f"fix/--mode/{kind}", _fix(sandbox, "--mode", mode, *snap))
        yield Case(f"verify/--mode/{kind}", ("verify", "--mode", mode, "--netns", NO_NETNS))


# -- safety -----------------------------------------------------------------------------
_LIVE_COMMANDS: Final = ("doctor", "fix", "snapshot", "route", "flow", "verify")


def assert_safe(case: Case, sandbox: Path) -> None:
    """Refuse a case that could reach the host if the code under test had no checks."""
    argv = [a for a in case.argv if a != "--json"]
    text = shlex.join(argv)
    assert "--apply" not in argv and "--resume" not in argv, text
    command = next((a for a in argv if a in (*_LIVE_COMMANDS, "trace", "lab")), None)
    netns = argv[argv.index("--netns") + 1] if "--netns" in argv else None
    assert netns is None or not _netns_exists(netns), text
    if command in _LIVE_COMMANDS and "--input" not in argv:
        assert "--snapshot" in argv or netns is not None, text
    if command == "fix":
        for opt in ("--root", "--state-dir"):
            assert opt in argv, text
    if "--live" in argv:
        assert netns is not None, text
    if command == "lab":
        instance = argv[argv.index("--instance") + 1]
        assert not VALID_INSTANCE.fullmatch(instance), text


def _netns_exists(name: str) -> bool:
    try:
        return name in os.listdir("/run/netns")
    except FileNotFoundError:
        return False


class GuardViolation(BaseException):  # noqa: N818 - not an error the code may catch and go on
    """The code under test tried to change the host; the case stops here."""


_READ_ONLY_IP: Final = frozenset({"show", "list", "get", "pids", "identify", "-j", "-json"})
_MUTATING_WORDS: Final = frozenset(
    {
        "add",
        "del",
        "delete",
        "set",
        "replace",
        "change",
        "flush",
        "append",
        "prepend",
        "attach",
        "exec",
    }
)


def read_only(argv: list[str]) -> bool:
    """Commands the guard lets through: queries that change nothing."""
    if not argv:
        return False
    prog = os.path.basename(argv[0])
    if prog == "ip" and argv[1:3] == ["netns", "exec"] and len(argv) > 4:
        return read_only(argv[4:])
    if prog == "ip":
        words = set(argv[1:])
        return bool(words & _READ_ONLY_IP) and not (words & _MUTATING_WORDS)
    if prog == "nft":
        return "list" in argv and not ({"-f", "add", "delete", "flush"} & set(argv))
    if prog == "vtysh":
        commands = [argv[i + 1] for i, a in enumerate(argv[:-1]) if a == "-c"]
        return bool(commands) and all(c.startswith("show ") for c in commands)
    return prog == "warp-cli" and "status" in argv


class Guard:
    """Patches the primitives that change a host; installed in the process running cases."""

    def __init__(self, sandbox: Path, report: Path | None = None) -> None:
        self.sandbox = sandbox.resolve()
        self.report = report
        self._saved: list[tuple[Any, str, Any]] = []
        self._original_open = builtins.open

    def violation(self, what: str) -> GuardViolation:
        if self.report is not None:
            with self._original_open(self.report, "a") as fh:
                fh.write(what + "\n")
        return GuardViolation(f"GUARD: the code tried to {what}")

    def inside(self, path: Any) -> bool:
        if isinstance(path, int):
            return True  # an fd the process already holds
        text = os.fsdecode(path)
        if text in ("/dev/null", "/dev/stdout", "/dev/stderr"):
            return True
        real = Path(os.path.realpath(os.path.abspath(text)))
        return real == self.sandbox or self.sandbox in real.parents

    def install(self) -> None:
        for name in (
            "unlink",
            "remove",
            "rmdir",
            "mkdir",
            "makedirs",
            "chmod",
            "chown",
            "truncate",
        ):
            self._patch_path_op(os, name)
        for name in ("rename", "replace", "symlink", "link"):
            self._patch_two_path_op(os, name)
        self._patch_path_op(shutil, "rmtree")
        self._patch_open()
        self._patch(os, "kill", self._signal(os.kill))
        self._patch(os, "killpg", self._refuse("send a signal to a group"))
        self._patch_popen()

    def uninstall(self) -> None:
        for owner, name, original in reversed(self._saved):
            setattr(owner, name, original)
        self._saved.clear()

    def _patch(self, owner: Any, name: str, replacement: Any) -> None:
        self._saved.append((owner, name, getattr(owner, name)))
        setattr(owner, name, replacement)

    def _signal(self, original: Callable[[int, int], None]) -> Callable[[int, int], None]:
        def kill(pid: int, sig: int) -> None:
            if sig != 0:  # signal 0 only asks whether the process exists
                raise self.violation(f"send signal {sig} to {pid}")
            original(pid, sig)

        return kill

    def _refuse(self, what: str) -> Callable[..., Any]:
        def refuse(*args: Any, **kwargs: Any) -> Any:
            raise self.violation(f"{what} {args!r}")

        return refuse

    def _patch_path_op(self, owner: Any, name: str) -> None:
        original = getattr(owner, name)

        def guarded(path: Any, *args: Any, **kwargs: Any) -> Any:
            if not self.inside(path):
                raise self.violation(f"{name} {os.fsdecode(path)!r}")
            return original(path, *args, **kwargs)

        self._patch(owner, name, guarded)

    def _patch_two_path_op(self, owner: Any, name: str) -> None:
        original = getattr(owner, name)

        def guarded(src: Any, dst: Any, *args: Any, **kwargs: Any) -> Any:
            if not self.inside(dst) or (name != "symlink" and not self.inside(src)):
                raise self.violation(f"{name} {os.fsdecode(src)!r} -> {os.fsdecode(dst)!r}")
            return original(src, dst, *args, **kwargs)

        self._patch(owner, name, guarded)

    def _patch_open(self) -> None:
        original_open, original_os_open = builtins.open, os.open
        writing = os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_TRUNC | os.O_APPEND

        def guarded_open(file: Any, mode: str = "r", *args: Any, **kwargs: Any) -> Any:
            if any(c in mode for c in "wax+") and not self.inside(file):
                raise self.violation(f"open {file!r} for writing")
            return original_open(file, mode, *args, **kwargs)

        def guarded_os_open(path: Any, flags: int, *args: Any, **kwargs: Any) -> Any:
            if flags & writing and not self.inside(path):
                raise self.violation(f"open {os.fsdecode(path)!r} for writing")
            return original_os_open(path, flags, *args, **kwargs)

        self._patch(builtins, "open", guarded_open)
        self._patch(io, "open", guarded_open)
        self._patch(os, "open", guarded_os_open)

    def _patch_popen(self) -> None:
        original = subprocess.Popen.__init__
        guard = self

        def guarded_init(popen: Any, args: Any, *rest: Any, **kwargs: Any) -> None:
            argv = [os.fsdecode(a) for a in ([args] if isinstance(args, str | bytes) else args)]
            if kwargs.get("shell") or not read_only(argv):
                raise guard.violation(f"run {shlex.join(argv)!r}")
            original(popen, args, *rest, **kwargs)

        self._patch(subprocess.Popen, "__init__", guarded_init)
