"""The one exception tree of meshpath.

    MeshpathError                     base; carries the CLI exit code
    ├── BadInputError        (exit 2) something the user gave us is wrong
    │   ├── SnapshotError             a snapshot file is malformed or of another schema
    │   ├── RangeError                an invalid or overlapping CIDR / range override
    │   ├── ConfigError               a bad meshpath.toml
    │   ├── NetnsError                a named network namespace does not exist
    │   ├── CaptureError              a pcap/pcapng/tcpdump-text capture meshpath cannot read
    │   └── WorkerConfigError         a wrangler config (or Worker dir) meshpath cannot read
    └── EnvironmentProblem   (exit 3) the host cannot do what was asked
        ├── MissingToolError          a required program (nft, vtysh, FRR) is absent
        ├── PrivilegeError            not root / no CAP_NET_ADMIN
        ├── CommandError              an external command failed (argv, rc, stderr kept)
        ├── NetlinkError              the kernel answered a netlink request with an error
        ├── ApplyError                a fix, rollback or resume could not be carried out
        │   ├── StepFailed            a step ran but its effect is not there (or timed out)
        │   ├── InterruptedRun        an earlier run was killed mid-apply: resume or roll back
        │   ├── LockHeld              another meshpath fix holds the lock
        │   ├── JournalError          the journal or lock cannot be read or written
        │   ├── FileRefused           a persistence path meshpath will not touch
        │   └── ProfileApiError       Cloudflare's API refused or could not answer
        └── LabError                  the lab could not be built or driven
            ├── LabTimeout            something in the lab did not become ready in time
            ├── LabConfigError        a rendered lab config was rejected by the real tool
            ├── LabFixError           meshpath fix / verify failed inside the lab
            └── LabRootError          the lab's run root (or a run dir) cannot be trusted

Library code raises these and never exits; only :mod:`meshpath.cli` maps them to exit
codes. Errors from subprocess or the kernel are translated at the edge with
``raise ... from exc`` so the cause survives for ``--debug``. Every class is defined here;
the modules that raise them re-export them under their old names
(``meshpath.apply.StepFailed``, ``meshpath.lab.procs.LabTimeout``, ...).

Internal exceptions, never seen outside the module that raises them (a test holds this
list to the package): ``meshpath.sim.netfilter._Unknown`` (an expression the model cannot
evaluate, turned into an "unknown" verdict), ``meshpath.watch.loop._Stopped`` (a signal
abandoning an evaluation), ``meshpath.worker.jsonc.JsoncError`` (a ValueError turned into
WorkerConfigError by :mod:`meshpath.worker.config`), ``meshpath.lab.meshedge.MeshError``
(the message the lab's Mesh edge hands to the Worker, inside that emulator process),
``meshpath.state.validate.Problem`` (one meaningless snapshot value, turned into a
SnapshotError naming its field by :func:`meshpath.state.validate.validate`).
"""

from __future__ import annotations

from collections.abc import Sequence

EXIT_OK = 0
EXIT_FINDINGS = 1
EXIT_BAD_INPUT = 2
EXIT_ENVIRONMENT = 3


class MeshpathError(Exception):
    """Base of every error meshpath raises on purpose."""

    exit_code: int = EXIT_ENVIRONMENT


class BadInputError(MeshpathError):
    """Input given by the user is wrong: fix the input, not the host."""

    exit_code = EXIT_BAD_INPUT


class SnapshotError(BadInputError):
    """A snapshot could not be loaded (malformed, wrong field, other schema version)."""


class RangeError(BadInputError):
    """A CIDR or range override is invalid or overlaps another range."""


class ConfigError(BadInputError):
    """The meshpath configuration file is unreadable or wrong."""


class CaptureError(BadInputError):
    """A packet capture is unreadable: wrong magic, truncated header, corrupt record."""


class WorkerConfigError(BadInputError):
    """A Worker's wrangler config is missing, unreadable, malformed or of the wrong shape."""


class EnvironmentProblem(MeshpathError):
    """The host lacks something meshpath needs (a tool, privileges, a namespace)."""

    exit_code = EXIT_ENVIRONMENT


class MissingToolError(EnvironmentProblem):
    """A required external program is not installed."""

    def __init__(self, tool: str, hint: str = "") -> None:
        self.tool = tool
        msg = f"required program {tool!r} not found"
        super().__init__(f"{msg}; {hint}" if hint else msg)


class PrivilegeError(EnvironmentProblem):
    """The operation needs root (CAP_NET_ADMIN)."""


class NetnsError(BadInputError):
    """The user named a network namespace that does not exist (or an invalid name)."""


class CommandError(EnvironmentProblem):
    """An external command exited non-zero."""

    def __init__(self, argv: Sequence[str], returncode: int, stderr: str) -> None:
        self.argv = tuple(argv)
        self.returncode = returncode
        self.stderr = stderr
        last = stderr.strip().splitlines()[-1] if stderr.strip() else "no error output"
        super().__init__(f"command {' '.join(self.argv)!r} failed (exit {returncode}): {last}")


class NetlinkError(EnvironmentProblem):
    """The kernel answered a request with an error (or sent something unparseable)."""


class ApplyError(EnvironmentProblem):
    """A fix, rollback or resume could not be carried out as planned."""


class StepFailed(ApplyError):
    """A step ran but its effect is not there (or a wait timed out)."""


class InterruptedRun(ApplyError):
    """An earlier run was killed mid-apply; the user must resume or roll back."""


class LockHeld(ApplyError):
    """Another meshpath fix holds the lock."""


class JournalError(ApplyError):
    """A journal or the lock under the state directory cannot be read or written."""


class FileRefused(ApplyError):
    """A persistence path meshpath will not touch (outside the root, not a file)."""


class ProfileApiError(ApplyError):
    """Cloudflare's API refused or could not answer (exit 3, nothing changed by us)."""


class LabError(EnvironmentProblem):
    """The lab could not be built, driven or torn down."""


class LabTimeout(LabError):
    """Something in the lab did not become ready in time."""


class LabConfigError(LabError):
    """A rendered lab configuration was rejected by the real tool."""


class LabFixError(LabError):
    """``meshpath fix`` or ``meshpath verify`` failed inside the lab."""


class LabRootError(LabError):
    """The lab's run root (or a run dir in it) is not a directory the lab can trust."""
