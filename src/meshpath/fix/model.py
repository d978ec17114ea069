"""Plan values: what a fix does, step by step, as data (frozen msgspec Structs).

A :class:`Plan` is ordered :class:`Step` s. Each step has an :data:`Action` (what it does:
argv, an nft file, a file write, an FRR reload, a wait, a check) and the inverse action
that undoes it, computed when the plan is made from the snapshot. Plans are pure values:
they serialise to the journal as JSON and :mod:`meshpath.apply` runs them.
"""

from __future__ import annotations

from typing import Final, Literal

import msgspec

from meshpath.render.frr import FrrIntent

# Kernel routes meshpath installs carry this protocol number so that they are
# recognisable (``ip route show proto 232``) and never confused with the user's, FRR's
# (186 bgp, 196 staticd) or WARP's. 232 is unassigned in iproute2's rt_protos and FRR's.
PROTO_MESHPATH: Final = 232
# Metric of meshpath's kernel routes: distinct from FRR's staticd (20) and from 0, so an
# ``ip route replace`` of ours never replaces a route someone else added.
METRIC_MESHPATH: Final = 64

Mode = Literal["nat", "route", "bgp", "profile"]
# The host-side modes (plan_fix); "profile" edits the device profile (fix/profile.py).
MODES: Final = ("nat", "route", "bgp")


class _Action(msgspec.Struct, frozen=True, kw_only=True, tag_field="kind"):
    """Base of the actions a step performs; each says what it does (:meth:`describe`)."""

    def describe(self) -> str:
        """One line for the plan's printout: what this action does."""
        raise NotImplementedError


class Run(_Action, frozen=True, tag="run"):
    """Run an argv (through the Runner; inside ``--netns`` when given). Deleting one of
    meshpath's routes that is already gone (WARP re-created its device) counts as done: the
    executor checks the kernel before and after (Executor._run_argv)."""

    argv: tuple[str, ...]

    def describe(self) -> str:
        return " ".join(self.argv)


class NftFile(_Action, frozen=True, tag="nft"):
    """An ``nft -f`` file (``-j`` when ``json``), checked with ``nft -c`` first."""

    text: str
    json: bool = False

    def describe(self) -> str:
        return "nft " + ("-j " if self.json else "") + "-f FILE (checked first with nft -c -f)"


class WriteFile(_Action, frozen=True, tag="write"):
    """Write ``content`` to ``path`` (relative to ``--root``) atomically; ``link`` makes a
    symlink at ``path`` pointing to ``link`` instead.

    An undo that puts a user's file back uses ``data`` (the exact bytes, when they are
    not UTF-8 text) and ``owner`` (uid, gid), so the file returns byte for byte, with its
    mode and owner.
    """

    path: str
    content: str = ""
    mode: int = 0o644
    link: str | None = None
    data: bytes | None = None
    owner: tuple[int, int] | None = None

    def describe(self) -> str:
        return f"write /{self.path}" + (f" -> {self.link}" if self.link else "")


class RemoveFile(_Action, frozen=True, tag="remove"):
    """Remove the file (or symlink) at ``path``, then ``dirs`` (deepest first): the
    directories meshpath created for it, each only while it is empty."""

    path: str
    dirs: tuple[str, ...] = ()

    def describe(self) -> str:
        return f"remove /{self.path}"


class FrrReload(_Action, frozen=True, tag="frr"):
    """Merge (``remove=False``) or strip (``remove=True``) meshpath's FRR lines, with
    ``frr-reload.py --reload`` of the running config so nothing else changes."""

    intent: FrrIntent
    remove: bool = False

    def describe(self) -> str:
        what = "strip meshpath's lines" if self.remove else "merge meshpath's lines"
        return f"{what}; vtysh -C -f FILE; frr-reload.py --test, then --reload FILE"


class WaitBgp(_Action, frozen=True, tag="wait-bgp"):
    """Poll until the session with ``peer`` is Established and exactly ``prefixes`` are
    advertised to it (bounded by ``timeout``)."""

    peer: str
    prefixes: tuple[str, ...]
    timeout: float = 30.0

    def describe(self) -> str:
        return f"poll show bgp summary / advertised-routes for {self.peer}"


class WaitNatDrain(_Action, frozen=True, tag="wait-nat-drain"):
    """Poll the conntrack table until no open TCP connection from ``sources`` is
    masqueraded (bounded by ``timeout``; then the step goes on and names what it cuts).
    Run between emptying meshpath's nat chain and deleting its table: the NAT hooks go
    with the last nat chain, and a connection still masqueraded then breaks."""

    sources: tuple[str, ...]
    timeout: float = 10.0

    def describe(self) -> str:
        froms = ", ".join(self.sources)
        return f"poll /proc/net/nf_conntrack until no masqueraded connection from {froms}"


class PostCheck(_Action, frozen=True, tag="check"):
    """A named check the caller supplies (e.g. a lab Worker round trip); must pass."""

    name: str

    def describe(self) -> str:
        return f"check {self.name}"


class ProfileEntry(msgspec.Struct, frozen=True, kw_only=True, omit_defaults=True):
    """One Split Tunnels entry of a device profile, as Cloudflare's API holds it
    (``address`` or ``host``, and an optional ``description``)."""

    address: str | None = None
    host: str | None = None
    description: str | None = None

    @property
    def value(self) -> str:
        return self.address or self.host or ""


class ProfileUpdate(_Action, frozen=True, tag="profile"):
    """Set a device profile's Split Tunnels list (``PUT .../devices/policy[/ID]/exclude`` or
    ``include``) through Cloudflare's API. ``before`` is what the list held when the plan
    was made: the apply refuses to overwrite a list someone changed since. The API token
    is never part of an action (it comes from ``CLOUDFLARE_API_TOKEN`` when it runs)."""

    account_id: str
    policy_id: str | None  # None: the default profile
    mode: str  # exclude / include
    entries: tuple[ProfileEntry, ...]
    before: tuple[ProfileEntry, ...] | None = None
    api_base: str | None = None  # None: Cloudflare's API

    def describe(self) -> str:
        policy = f"/{self.policy_id}" if self.policy_id else ""
        where = f"/accounts/{self.account_id}/devices/policy{policy}/{self.mode}"
        return f"PUT {self.api_base or 'Cloudflare API'}{where} ({len(self.entries)} entries)"


Action = (
    Run
    | NftFile
    | WriteFile
    | RemoveFile
    | FrrReload
    | WaitBgp
    | WaitNatDrain
    | PostCheck
    | ProfileUpdate
)


class Step(msgspec.Struct, frozen=True, kw_only=True):
    key: str  # stable identity, e.g. "nft:inet meshpath", "route:100.64.0.0/12"
    description: str
    action: Action
    inverse: Action | None  # None: nothing to undo (waits and checks)
    check: str  # why the step is needed: what the snapshot showed
    probe: tuple[str, ...] | None = None  # argv whose output the journal keeps before/after
    detail: str = ""  # the rendered file or config diff, for the printout


class Expect(msgspec.Struct, frozen=True, kw_only=True):
    """What must hold after the plan: what ``meshpath verify`` checks."""

    tunnel: str
    ranges: tuple[str, ...]
    route_proto: int  # PROTO_MESHPATH (kernel routes) or 196 (FRR staticd)
    nat: bool | None  # NAT present (True), absent (False), not judged (None)
    peer: str | None = None
    advertised: tuple[str, ...] = ()
    # nat mode: the exact masquerades (LAN interface, sources) verify looks for; empty in
    # journals written before they were recorded (verify then accepts any exact
    # meshpath masquerade of the ranges).
    lan_if: str | None = None
    nat_sources: tuple[str, ...] = ()
    warp_covers: tuple[str, ...] = ()  # ranges WARP's table 65743 must route via the tunnel


class Plan(msgspec.Struct, frozen=True, kw_only=True):
    mode: Mode
    steps: tuple[Step, ...]
    expect: Expect
    already: tuple[str, ...] = ()  # what was found already in place (skipped)
    notes: tuple[str, ...] = ()

    @property
    def empty(self) -> bool:
        return not any(s.inverse is not None for s in self.steps)


class FileState(msgspec.Struct, frozen=True, kw_only=True):
    """A persistence path as found before the fix: a regular file's bytes, mode and
    owner, or a symlink's target (``link``)."""

    data: bytes = b""
    mode: int = 0o644
    link: str | None = None
    uid: int = 0
    gid: int = 0


class FixOptions(msgspec.Struct, frozen=True, kw_only=True):
    """Everything a plan depends on besides the snapshot and the settings."""

    lan_if: str | None = None
    also_device_range: bool = False
    peer: str | None = None
    asn: int | None = None
    peer_asn: str = "external"
    # Active/standby connectors of one Mesh node (HA replicas): the standby prepends its
    # AS path so the LAN sends replies to the primary, the replica Cloudflare keeps active.
    role: str | None = None  # None: no preference set (what a single connector needs)
    bfd: bool = False  # BFD on the session: the LAN drops a dead primary in < 1 s
    replace_nat: bool = False
    nat6: bool = False  # nat mode: masquerade the IPv6 source range too (NAT66), when asked
    bgp_timeout: float = 30.0
    post_checks: tuple[str, ...] = ()  # names of checks the caller can run (PostCheck)
    networkd_file: str | None = None  # the .network file systemd-networkd applies to the tunnel
    existing_files: dict[str, FileState] = msgspec.field(default_factory=dict)  # by rel path
    absent_dirs: tuple[str, ...] = ()  # directories (rel to root) that do not exist yet
    notes: tuple[str, ...] = ()  # what gathering these options found worth saying
