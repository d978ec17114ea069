"""Snapshot <-> JSON, exact in both directions, with errors that name the field.

Loading first refuses text nested deeper than any snapshot (:data:`MAX_NESTING`) before a
decoder recurses into it, then reads only ``schema_version`` so that a snapshot written by a
newer meshpath gets a clear "upgrade meshpath" error instead of a confusing field error,
then decodes (types) and checks the values' meaning once (:mod:`meshpath.state.validate`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Final

import msgspec

from meshpath.errors import BadInputError, SnapshotError
from meshpath.fsafe import atomic_write, read_bounded
from meshpath.nesting import too_deep
from meshpath.state.model import MIN_SCHEMA_VERSION, SCHEMA_VERSION, Snapshot
from meshpath.state.validate import check_snapshot

# A collected snapshot nests about ten levels (nft expressions); a thousand overflow the
# decoder's recursion.
MAX_NESTING: Final = 64

# A snapshot of a host with 1M routes is ~305 MiB as `snapshot -o` writes it (measured,
# pretty-printed); 1 GiB leaves room for a full IPv4+IPv6 table and stops /dev/zero.
SNAPSHOT_LIMIT: Final = 1 << 30


class _Version(msgspec.Struct):
    schema_version: int


_ENCODER = msgspec.json.Encoder()
_DECODER = msgspec.json.Decoder(Snapshot)
_VERSION_DECODER = msgspec.json.Decoder(_Version)


def dumps(snapshot: Snapshot, *, indent: int = 0) -> bytes:
    """The snapshot as JSON bytes (``indent`` > 0 pretty-prints)."""
    raw = _ENCODER.encode(snapshot)
    return msgspec.json.format(raw, indent=indent) if indent else raw


def loads(data: bytes | str, *, source: str = "snapshot") -> Snapshot:
    """Parse and validate a snapshot; raise SnapshotError naming ``source`` and the bad field."""
    if too_deep(data, MAX_NESTING):
        raise SnapshotError(f"{source}: nested deeper than {MAX_NESTING} levels; not a snapshot")
    try:
        version = _VERSION_DECODER.decode(data).schema_version
    except msgspec.ValidationError as exc:
        raise SnapshotError(f"{source}: {_field_message(exc)}") from exc
    except msgspec.DecodeError as exc:
        raise SnapshotError(f"{source}: not valid JSON ({exc})") from exc
    if not MIN_SCHEMA_VERSION <= version <= SCHEMA_VERSION:
        newer = "newer" if version > SCHEMA_VERSION else "older"
        raise SnapshotError(
            f"{source}: schema_version {version} is {newer} than this meshpath understands "
            f"({SCHEMA_VERSION}); collect it again with this version"
        )
    try:
        snapshot = _DECODER.decode(data)
    except (msgspec.ValidationError, msgspec.DecodeError) as exc:
        raise SnapshotError(f"{source}: {_field_message(exc)}") from exc
    return check_snapshot(snapshot, source)


def load(path: Path) -> Snapshot:
    """Read a snapshot file (a regular file of at most SNAPSHOT_LIMIT bytes)."""
    try:
        data = read_bounded(path, SNAPSHOT_LIMIT)
    except OSError as exc:
        raise SnapshotError(f"snapshot {path}: cannot read ({exc.strerror})") from exc
    return loads(data, source=f"snapshot {path}")


def save(snapshot: Snapshot, path: Path) -> None:
    """Write a snapshot atomically; a symlink, device, FIFO or directory is refused."""
    try:
        atomic_write(path, dumps(snapshot, indent=2) + b"\n")
    except OSError as exc:
        raise BadInputError(f"cannot write snapshot {path}: {exc.strerror}") from exc


def _field_message(exc: Exception) -> str:
    # msgspec says e.g. "Expected `int`, got `str` - at `$.routes[3].metric`": keep it,
    # it already names the field, but say "field" so it reads for people.
    text = str(exc)
    return text.replace(" - at `$", " - field `$")
