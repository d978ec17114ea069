from __future__ import annotations

import ipaddress
from pathlib import Path

import pytest

from meshpath.config import load_settings
from meshpath.errors import ConfigError, RangeError
from meshpath.ranges import DEFAULT_RANGES, TAILSCALE, parse_override_flag


def test_defaults_are_cloudflares_documented_ranges() -> None:
    got = {k: str(v) for k, v in DEFAULT_RANGES.items()}
    assert got == {
        "source_v4": "100.64.0.0/12",
        "source_v6": "2606:4700:cf1:5000::/64",
        "device_v4": "100.96.0.0/12",
        "device_v6": "2606:4700:cf1:1000::/64",
        "gateway_v4": "172.64.128.0/20",
        "gateway_v6": "2606:4700:cf1:4000::/64",
        "lb_v4": "100.112.0.0/16",
    }
    DEFAULT_RANGES.check_disjoint()


def test_classify_worker_and_device_addresses() -> None:
    assert DEFAULT_RANGES.classify("100.64.12.189") == "source_v4"
    assert DEFAULT_RANGES.classify("100.96.0.5") == "device_v4"
    assert DEFAULT_RANGES.classify("2606:4700:cf1:5000::1") == "source_v6"
    assert DEFAULT_RANGES.classify("10.0.1.50") is None


def test_tailscale_neighbour_and_its_exception() -> None:
    assert TAILSCALE.contains("100.64.0.5")
    assert TAILSCALE.contains("100.127.255.1")
    assert not TAILSCALE.contains("100.115.92.7")
    assert not TAILSCALE.contains("100.128.0.1")


def test_override_applies() -> None:
    moved = DEFAULT_RANGES.with_overrides({"source_v4": "100.80.0.0/13"})
    assert moved.source_v4 == ipaddress.IPv4Network("100.80.0.0/13")
    assert moved.device_v4 == DEFAULT_RANGES.device_v4


@pytest.mark.parametrize(
    ("key", "cidr", "needle"),
    [
        ("source_v4", "100.64.0.1/12", "not a valid network"),
        ("source_v4", "not-a-cidr", "not a valid network"),
        ("source_v4", "2606:4700::/64", "must be IPv4"),
        ("nonsense", "10.0.0.0/8", "unknown range"),
        ("source_v4", "100.96.0.0/11", "overlaps device_v4"),
    ],
)
def test_bad_overrides_are_clear_errors(key: str, cidr: str, needle: str) -> None:
    with pytest.raises(RangeError, match=needle):
        DEFAULT_RANGES.with_overrides({key: cidr})


def test_range_flag_syntax() -> None:
    assert parse_override_flag("source_v4=100.64.0.0/12") == ("source_v4", "100.64.0.0/12")
    with pytest.raises(RangeError, match="KEY=CIDR"):
        parse_override_flag("100.64.0.0/12")


def test_config_file_then_flags(tmp_path: Path) -> None:
    conf = tmp_path / "meshpath.toml"
    conf.write_text(
        '[ranges]\nsource_v4 = "100.64.0.0/13"\n[connector]\ntunnel_interface = "wgcf"\n'
    )
    settings = load_settings(conf, ["device_v4=100.100.0.0/14"])
    assert str(settings.ranges.source_v4) == "100.64.0.0/13"
    assert str(settings.ranges.device_v4) == "100.100.0.0/14"
    assert settings.tunnel_interface == "wgcf"


def test_config_errors_name_the_file(tmp_path: Path) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text("[ranges\n")
    with pytest.raises(ConfigError, match="bad.toml"):
        load_settings(bad)
    with pytest.raises(ConfigError, match="does not exist"):
        load_settings(tmp_path / "missing.toml")
    typed = tmp_path / "typed.toml"
    typed.write_text("[ranges]\nsource_v4 = 12\n")
    with pytest.raises(ConfigError, match=r"ranges\.source_v4 must be a string"):
        load_settings(typed)


def test_worker_probe_follows_the_source_range() -> None:
    assert DEFAULT_RANGES.worker_probe() == "100.64.12.189"
    moved = DEFAULT_RANGES.with_overrides({"source_v4": "100.80.0.0/13"})
    assert moved.worker_probe() == "100.80.0.1"


@pytest.mark.parametrize("key", ["source_v6", "device_v6", "gateway_v6"])
def test_the_v6_ranges_cloudflare_fixes_cannot_be_overridden(key: str) -> None:
    # Reserved IPs page: every IPv6 row is "Configurable: No".
    with pytest.raises(RangeError, match=f"{key}=.*cannot be overridden"):
        DEFAULT_RANGES.with_overrides({key: "2606:4700:cf1:9000::/64"})
