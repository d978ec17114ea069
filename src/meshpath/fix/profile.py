"""``fix --mode profile`` (pure): the device profile's Split Tunnels edit, as a plan.

The supported fix for the field report, per Cloudflare's Reserved IPs page: in Exclude
mode delete the entries that cover the Cloudflare ranges and add back what they held
outside them (delete 100.64.0.0/10, add back 100.80.0.0/12 and 100.112.0.0/12); in Include
mode add the ranges. https://developers.cloudflare.com/cloudflare-one/networks/routes/reserved-ips/#split-tunnel-configuration

The plan is one step: a :class:`~meshpath.fix.model.ProfileUpdate` with the new list, its
inverse the old list. It does not give the LAN its way back to the connector: the plan
says so when the snapshot shows none (no meshpath NAT, no BGP advertisement).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final

from meshpath.config import Settings
from meshpath.errors import BadInputError
from meshpath.fix.model import Expect, Plan, ProfileEntry, ProfileUpdate, Step
from meshpath.ranges import IPNetwork
from meshpath.state import Snapshot
from meshpath.state.split import carve, missing_includes

_ACCOUNT: Final = re.compile(r"^[0-9a-f]{32}$")
_POLICY: Final = re.compile(r"^[A-Za-z0-9-]{1,64}$")
_BASE: Final = re.compile(r"^https?://[^\s/?#]+(?:/[^\s?#]*)?$")
DESCRIPTION_MAX: Final = 100  # the API's maxLength for a description


@dataclass(frozen=True, slots=True)
class ProfileList:
    """A device profile's Split Tunnels as the API returned them."""

    mode: str  # exclude / include
    entries: tuple[ProfileEntry, ...]


def check_account(account_id: str | None) -> str:
    if account_id is None:
        raise BadInputError("--mode profile needs --account-id ID (32 hex digits)")
    if not _ACCOUNT.match(account_id):
        raise BadInputError(f"--account-id {account_id!r}: expected 32 lowercase hex digits")
    return account_id


def check_policy(policy_id: str | None) -> str | None:
    if policy_id is not None and not _POLICY.match(policy_id):
        raise BadInputError(f"--policy {policy_id!r}: expected a profile id ([A-Za-z0-9-])")
    return policy_id


def check_api_base(api_base: str | None) -> str | None:
    if api_base is not None and not _BASE.match(api_base):
        raise BadInputError(f"--api-base {api_base!r}: expected an http(s):// URL")
    return api_base


def needed_ranges(settings: Settings) -> tuple[IPNetwork, ...]:
    """What a connector's Split Tunnels must carry (Mesh Routes page): the Cloudflare
    source range and the device range."""
    return (settings.ranges.source_v4, settings.ranges.device_v4)


def edit(current: ProfileList, needed: Sequence[IPNetwork]) -> tuple[ProfileEntry, ...]:
    """The new list: the documented edit applied, every other entry kept in place."""
    values = [e.value for e in current.entries if e.address]
    if current.mode == "include":
        adds = missing_includes(values, needed)
        return (*current.entries, *(_added(a, "Cloudflare range (meshpath)") for a in adds))
    deletes, _ = carve(values, needed)
    out: list[ProfileEntry] = []
    for entry in current.entries:
        if entry.address not in deletes:
            out.append(entry)
            continue
        _, pieces = carve([entry.value], needed)
        note = f"part of {entry.value} (meshpath)"
        if entry.description:
            note = f"{entry.description} ({note})"
        out.extend(_added(p, note) for p in pieces)
    return tuple(out)


def _added(address: str, description: str) -> ProfileEntry:
    return ProfileEntry(address=address, description=description[:DESCRIPTION_MAX])


def diff_lines(before: Sequence[ProfileEntry], after: Sequence[ProfileEntry]) -> list[str]:
    """``- entry`` / ``+ entry`` lines: what the edit deletes and adds."""
    old = {e.value for e in before}
    new = {e.value for e in after}
    lines = [f"- {e.value}" for e in before if e.value not in new]
    lines += [f"+ {e.value}  ({e.description})" for e in after if e.value not in old]
    return lines


def lan_way_back(snap: Snapshot, settings: Settings) -> bool:
    """Whether the snapshot shows how LAN replies reach this connector (NAT or BGP)."""
    if snap.nft.view.masquerades:
        return True
    source = str(settings.ranges.source_v4)
    adverts = snap.frr.view.advertised.values()
    return any(source in (routes or ()) for routes in adverts)


def _lan_ip(snap: Snapshot, tunnel: str) -> str:
    return next(
        (a.local for a in snap.addresses if a.family == 4 and a.scope == 0 and a.dev != tunnel),
        "<connector LAN IP>",
    )


def plan_profile(
    snap: Snapshot,
    settings: Settings,
    current: ProfileList,
    *,
    account_id: str,
    policy_id: str | None = None,
    api_base: str | None = None,
) -> Plan:
    """The plan that makes the profile carry the Cloudflare ranges (empty when it does)."""
    needed = needed_ranges(settings)
    after = edit(current, needed)
    ranges = tuple(str(n) for n in needed)
    expect = Expect(
        tunnel=settings.tunnel_interface, ranges=(), route_proto=0, nat=None, warp_covers=ranges
    )
    which = f"profile {policy_id}" if policy_id else "the default profile"
    if after == current.entries:
        done = f"{which}'s Split Tunnels ({current.mode} mode) already carry {', '.join(ranges)}"
        return Plan(mode="profile", steps=(), expect=expect, already=(done,))
    step = Step(
        key=f"profile:{policy_id or 'default'}:{current.mode}",
        description=f"Split Tunnels of {which} ({current.mode} mode): let {', '.join(ranges)} "
        "through the tunnel",
        action=ProfileUpdate(
            account_id=account_id,
            policy_id=policy_id,
            mode=current.mode,
            entries=after,
            before=current.entries,
            api_base=api_base,
        ),
        inverse=ProfileUpdate(
            account_id=account_id,
            policy_id=policy_id,
            mode=current.mode,
            entries=current.entries,
            api_base=api_base,
        ),
        check=f"{current.mode} list keeps {', '.join(ranges)} (or part of it) out of the tunnel",
        detail="\n".join(diff_lines(current.entries, after)),
    )
    notes = [
        "WARP applies the new list when it next fetches its policy (Cloudflare warns this can "
        "lag); `meshpath verify --mode profile` checks that table 65743 routes the ranges.",
    ]
    if not lan_way_back(snap, settings):
        lan = _lan_ip(snap, settings.tunnel_interface)
        notes.append(
            f"the LAN still needs its way back to this connector for {ranges[0]}: a route on "
            f"the LAN router (ip route add {ranges[0]} via {lan}), meshpath fix --mode bgp, "
            "or --mode nat; meshpath sees none"
        )
    return Plan(mode="profile", steps=(step,), expect=expect, notes=tuple(notes))
