"""`meshpath worker check`: wrangler configs (JSONC, JSON, TOML) and Worker source -> MP3xx.

Every fixture directory under tests/data/worker/ is one Worker; expected.json lists the
finding IDs each must produce (exactly, in order) and the ones that are malformed (exit 2).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from meshpath.cli import main
from meshpath.errors import WorkerConfigError
from meshpath.worker import check_worker, load_project, parse_config
from meshpath.worker.config import VpcBinding
from meshpath.worker.jsonc import JsoncError, loads
from meshpath.worker.source import (
    SourceFile,
    binding_calls,
    is_private_target,
    private_global_calls,
    strip_js_comments,
)

DATA = Path(__file__).resolve().parents[1] / "data" / "worker"
EXPECTED = json.loads((DATA / "expected.json").read_text())
FINDINGS: dict[str, list[str]] = EXPECTED["findings"]
MALFORMED: list[str] = EXPECTED["malformed"]


def test_there_are_enough_fixtures() -> None:
    assert len(FINDINGS) + len(MALFORMED) >= 12
    assert sorted(p.name for p in DATA.iterdir() if p.is_dir()) == sorted([*FINDINGS, *MALFORMED])
    # every rule is exercised by at least one fixture
    ids = {i for found in FINDINGS.values() for i in found}
    assert ids == {f"MP3{n:02d}" for n in range(1, 15)}


@pytest.mark.parametrize("name", sorted(FINDINGS))
def test_fixture_findings(name: str) -> None:
    report = check_worker(load_project(DATA / name))
    assert [f.id for f in report.findings] == FINDINGS[name]
    assert report.ok == all(f.severity != "error" for f in report.findings)
    for f in report.findings:  # each finding carries what a person needs to act
        assert f.evidence and f.why and f.title


@pytest.mark.parametrize("name", sorted(FINDINGS))
def test_cli_exit_code_and_json(name: str, capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["--json", "worker", "check", str(DATA / name)])
    data = json.loads(capsys.readouterr().out)
    assert [f["id"] for f in data["findings"]] == FINDINGS[name]
    assert code == (0 if data["ok"] else 1)


@pytest.mark.parametrize("name", MALFORMED)
def test_malformed_config_is_one_line_exit_2(name: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["worker", "check", str(DATA / name)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "Traceback" not in err
    assert name in err  # names the file


def test_missing_path_and_empty_dir_exit_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["worker", "check", str(tmp_path / "nope")]) == 2
    assert "does not exist" in capsys.readouterr().err
    assert main(["worker", "check", str(tmp_path)]) == 2
    assert "no wrangler.json, wrangler.jsonc, wrangler.toml" in capsys.readouterr().err


def test_binary_config_exit_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "wrangler.toml").write_bytes(b"\xff\xfe\x00garbage")
    assert main(["worker", "check", str(tmp_path)]) == 2
    assert "not UTF-8" in capsys.readouterr().err


def test_human_output_names_ids_evidence_and_fix(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["worker", "check", str(DATA / "both-ids")]) == 1
    out = capsys.readouterr().out
    assert "MP302" in out and "evidence:" in out and "fix:" in out
    assert "WORKER CONFIG BROKEN" in out


def test_wrangler_search_order(tmp_path: Path) -> None:
    """wrangler.json wins over wrangler.jsonc, which wins over wrangler.toml."""
    (tmp_path / "wrangler.toml").write_text('name = "toml"\n')
    (tmp_path / "wrangler.jsonc").write_text('{ "name": "jsonc" }')
    assert load_project(tmp_path).config.name == "jsonc"
    (tmp_path / "wrangler.json").write_text('{ "name": "json", /* ok */ }')
    assert load_project(tmp_path).config.name == "json"


def test_jsonc_keeps_slashes_in_strings_and_line_numbers() -> None:
    text = '{\n  // c\n  "u": "http://x/*y*/", /* z */\n  "a": [1, 2,],\n}\n'
    assert loads(text) == {"u": "http://x/*y*/", "a": [1, 2]}
    with pytest.raises(JsoncError) as err:
        loads('{\n  // comment\n  "a": 1\n  "b": 2\n}')
    assert err.value.line == 4


def test_jsonc_escaped_quote_and_comma_in_string() -> None:
    assert loads(r'{"a": "x\", ]", }') == {"a": 'x", ]'}


def test_config_reads_env_sections_and_other_bindings() -> None:
    cfg = parse_config(
        """
        name = "w"
        vars = { TOKEN = "x" }
        [[kv_namespaces]]
        binding = "KV"
        id = "1"
        [[durable_objects.bindings]]
        name = "ROOM"
        class_name = "Room"
        [[env.prod.vpc_networks]]
        binding = "MESH"
        network_id = "cf1:network"
        remote = true
        """,
        "wrangler.toml",
    )
    assert cfg.vpc == (
        VpcBinding(
            "vpc_networks",
            "env.prod.vpc_networks[0]",
            "prod",
            "MESH",
            "cf1:network",
            None,
            None,
            True,
        ),
    )
    assert {(o.kind, o.name) for o in cfg.other} == {
        ("vars", "TOKEN"),
        ("kv_namespaces", "KV"),
        ("durable_objects", "ROOM"),
    }
    assert cfg.envs == (None, "prod")


def test_duplicate_across_kinds() -> None:
    cfg = parse_config(
        '{"vpc_networks": [{"binding": "MESH", "network_id": "cf1:network", "remote": true}],'
        ' "kv_namespaces": [{"binding": "MESH", "id": "1"}]}',
        "wrangler.json",
    )
    from meshpath.worker.checks import WorkerProject

    report = check_worker(WorkerProject(cfg, (), True))
    dup = [f for f in report.findings if f.id == "MP307"]
    assert len(dup) == 1 and "kv_namespaces[0]" in dup[0].evidence[-1]


def test_wrong_types_are_bad_input() -> None:
    for text in (
        '["a"]',
        '{"vpc_networks": ["MESH"]}',
        '{"vpc_networks": [{"binding": 1}]}',
        '{"env": []}',
        '{"compatibility_flags": "nodejs_compat"}',
    ):
        with pytest.raises(WorkerConfigError):
            parse_config(text, "wrangler.json")


@pytest.mark.parametrize(
    ("target", "private"),
    [
        ("http://10.0.1.50:3000/", True),
        ("http://172.20.0.1/", True),
        ("https://192.168.1.1", True),
        ("http://100.64.12.189/", True),
        ("http://[fd00::1]:80/", True),
        ("http://db.internal/", True),
        ("http://printer.local", True),
        ("10.0.1.50:5432", True),
        ("https://example.com/", False),
        ("https://1.1.1.1/", False),
        ("http://100.128.0.1/", False),
    ],
)
def test_private_targets(target: str, private: bool) -> None:
    assert is_private_target(target) is private


def test_comment_stripping_keeps_strings_and_lines() -> None:
    code = 'a // x\n"http://y" /* z\n w */ b `//t`'
    out = strip_js_comments(code)
    assert out.count("\n") == 2 and '"http://y"' in out and "`//t`" in out
    assert "x" not in out and "w" not in out


def test_binding_calls_forms() -> None:
    src = (
        SourceFile(
            "a.js",
            'env.MESH.fetch("x");\nthis.env.MESH?.connect("h:1");\nenv["MESH"].fetch(u)\n'
            "NOTMESH.fetch(1); // env.MESH.fetch(2)\n",
        ),
    )
    assert [h.line for h in binding_calls(src, "MESH")] == [1, 2, 3]


def test_binding_fetch_is_not_a_global_fetch() -> None:
    src = (SourceFile("a.js", 'await env.MESH.fetch("http://10.0.1.50:3000/");\n'),)
    assert private_global_calls(src) == ()
    src = (SourceFile("a.js", 'await globalThis.fetch(new Request("http://10.0.1.50/"));\n'),)
    assert [c.target for c in private_global_calls(src)] == ["http://10.0.1.50/"]
