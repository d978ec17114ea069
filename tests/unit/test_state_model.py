from __future__ import annotations

import json
from pathlib import Path

import msgspec
import pytest

from meshpath.errors import SnapshotError
from meshpath.state import SCHEMA_VERSION, Route, codec
from tests.builders import broken_connector


def test_json_round_trip_is_exact(tmp_path: Path) -> None:
    snap = broken_connector()
    assert codec.loads(codec.dumps(snap)) == snap
    path = tmp_path / "s.json"
    codec.save(snap, path)
    assert codec.load(path) == snap
    # bytes are stable too: encode(decode(encode(x))) == encode(x)
    assert codec.dumps(codec.loads(codec.dumps(snap))) == codec.dumps(snap)


def test_snapshot_is_immutable() -> None:
    snap = broken_connector()
    with pytest.raises(AttributeError):
        snap.hostname = "other"  # type: ignore[misc]


def test_helpers() -> None:
    snap = broken_connector()
    link = snap.link("CloudflareWARP")
    assert link is not None and link.kind == "tun" and link.mtu == 1280
    assert snap.link_by_index(2) is not None
    assert len(snap.routes_in(65743)) == 4
    assert snap.addresses_of("eth0")[0].local == "10.0.1.2"
    assert snap.sysctls.ip_forward


def _doc() -> dict[str, object]:
    return json.loads(codec.dumps(broken_connector()))


def test_wrong_type_names_the_field() -> None:
    doc = _doc()
    doc["routes"][1]["metric"] = "twenty"  # type: ignore[index]
    with pytest.raises(SnapshotError, match=r"\$\.routes\[1\]\.metric"):
        codec.loads(json.dumps(doc))


def test_unknown_field_is_rejected() -> None:
    doc = _doc()
    doc["links"][0]["colour"] = "blue"  # type: ignore[index]
    with pytest.raises(SnapshotError, match="colour"):
        codec.loads(json.dumps(doc))


def test_missing_field_is_named() -> None:
    doc = _doc()
    del doc["hostname"]
    with pytest.raises(SnapshotError, match="hostname"):
        codec.loads(json.dumps(doc))


@pytest.mark.parametrize("version", [SCHEMA_VERSION + 1, 0])
def test_other_schema_version_is_refused(version: int) -> None:
    doc = _doc()
    doc["schema_version"] = version
    with pytest.raises(SnapshotError, match=f"schema_version {version}"):
        codec.loads(json.dumps(doc))


@pytest.mark.parametrize("data", [b"", b"{", b"[]", b'{"schema_version": "1"}', b"\xff\xfe"])
def test_garbage_is_a_snapshot_error(data: bytes) -> None:
    with pytest.raises(SnapshotError):
        codec.loads(data, source="snapshot x.json")


def test_unreadable_file(tmp_path: Path) -> None:
    with pytest.raises(SnapshotError, match="cannot read"):
        codec.load(tmp_path / "nope.json")


def test_route_defaults_are_kernel_defaults() -> None:
    route = msgspec.json.decode(b'{"table":254,"family":4,"dst":"0.0.0.0/0"}', type=Route)
    assert route.type == "unicast" and route.metric == 0 and route.scope == 0
