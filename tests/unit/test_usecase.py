"""The use-case layer (issue 17 items 2 and 3): a Host value, fix.session's dry run and
apply with per-step results, the kernel cross-check as a pure check, post-checks as
plug-ins, and a CLI that only parses and renders."""

from __future__ import annotations

import ast
import typing
from pathlib import Path

import jsonschema
import pytest

from meshpath import schemas
from meshpath.apply.result import ApplyResult
from meshpath.checks.diagnose import context_for
from meshpath.checks.flows import simulate_targets
from meshpath.checks.kernel import KernelAnswer, cross_check
from meshpath.checks.targets import default_targets
from meshpath.config import Settings
from meshpath.errors import BadInputError, EnvironmentProblem
from meshpath.fix import Action, FixOptions
from meshpath.usecase import Host, postchecks
from meshpath.usecase import fix as use
from tests.builders import broken_connector
from tests.fake_host import FakeHost

SRC = Path(__file__).resolve().parents[2] / "src" / "meshpath"
S = Settings()


def fake_host(tmp_path: Path, fake: FakeHost) -> Host:
    return Host(
        runner=fake,
        root=tmp_path / "root",
        state_dir=tmp_path / "state",
        collector=lambda _runner, _netns: fake.snapshot(),
    )


def passing(monkeypatch: pytest.MonkeyPatch, ok: bool = True) -> None:
    monkeypatch.setattr(use, "post_check", lambda *_a: lambda: (ok, "stub verify"))


# -- fix.session -----------------------------------------------------------------------
def test_a_dry_run_returns_the_same_result_type_with_nothing_changed(tmp_path: Path) -> None:
    fake = FakeHost()
    done = use.session(fake_host(tmp_path, fake), S, use.FixRequest("nat", FixOptions()))
    result = done.result
    assert isinstance(result, ApplyResult) and result.status == "planned" and result.ok
    assert result.steps and all(s.status == "planned" and not s.changed for s in result.steps)
    assert [s.key for s in result.steps] == [s.key for s in done.proposal.plan.steps]
    assert result.changed == () and result.journal is None
    assert not fake.routes and not fake.nft_table  # the kernel is untouched
    assert not any(c[0] in ("nft", "ip") and "add" in c for c in fake.calls)
    assert not (tmp_path / "state").exists()  # no lock, no journal


def test_an_apply_reports_each_step_changed_then_a_second_run_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    passing(monkeypatch)
    fake = FakeHost()
    host = fake_host(tmp_path, fake)
    request = use.FixRequest("nat", FixOptions(), apply=True)
    result = use.session(host, S, request).result
    assert result.status == "applied", result
    changing = [s for s in result.steps if s.changed]
    assert changing and all(s.status == "done" and not s.failed for s in result.steps)
    assert {s.description for s in changing} <= set(result.changed)
    assert fake.nft_table
    again = use.session(host, S, request).result
    assert again.status == "nothing-to-do" and not any(s.changed for s in again.steps)


def test_a_failed_apply_names_the_failed_step_and_the_undone_ones(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    passing(monkeypatch, ok=False)  # the post-apply verify fails: everything is undone
    fake = FakeHost()
    result = use.session(
        fake_host(tmp_path, fake), S, use.FixRequest("nat", FixOptions(), apply=True)
    ).result
    assert result.status == "failed" and result.failed_step == "post-check"
    assert result.failed and "stub verify" in (result.error or "")
    undone = [s for s in result.steps if s.status == "undone"]
    assert undone and not any(s.changed for s in result.steps)
    assert not fake.nft_table and not fake.routes
    doc = schemas.tagged("fix-result", {"result": result.to_dict()})
    jsonschema.validate(doc, schemas.load("fix-result"), cls=jsonschema.Draft202012Validator)
    with pytest.raises(jsonschema.ValidationError):  # the step shape is pinned
        doc["result"]["steps"][0]["status"] = "maybe"
        jsonschema.validate(doc, schemas.load("fix-result"), cls=jsonschema.Draft202012Validator)


# -- actions describe themselves -----------------------------------------------------------
def test_every_action_describes_itself() -> None:
    for kind in typing.get_args(Action):
        assert "describe" in vars(kind), f"{kind.__name__} has no describe()"


def test_the_cli_does_not_match_on_action_type_names() -> None:
    for path in (SRC / "cli").glob("*.py"):
        assert "type(action).__name__" not in path.read_text(), path


# -- the kernel cross-check: a pure check ------------------------------------------------
def test_the_kernel_wins_a_disagreement_about_the_reply() -> None:
    snap = broken_connector()
    ctx = context_for(snap, S)
    flows = simulate_targets(ctx, default_targets(snap, S.tunnel_interface), None)
    assert flows and flows[0].status == "misrouted"

    def ask(dst: str, *, src: str | None = None, iif: str | None = None) -> KernelAnswer:
        # The kernel says the reply goes back through the tunnel (the model said eth0).
        dev = S.tunnel_interface if dst == flows[0].worker_ip else "eth0"
        return KernelAnswer(("ip", "-j", "route", "get", dst), type="unicast", dev=dev)

    checked, disagreements = cross_check(ask, ctx, flows[:1])
    assert checked[0].source == "kernel" and checked[0].status == "delivered"
    assert disagreements and disagreements[0].model == flows[0].egress


# -- post-checks are plug-ins ---------------------------------------------------------------
def test_the_lab_worker_post_check_is_a_registered_plugin() -> None:
    with pytest.raises(BadInputError, match="lab instance"):
        postchecks.load(postchecks.LAB_WORKER, "../x")
    assert callable(postchecks.load(postchecks.LAB_WORKER, "ab12"))
    with pytest.raises(EnvironmentProblem, match="no post-check"):
        postchecks.load("no-such-check", "x")


def _imports(path: Path) -> set[str]:
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module:
            found.add(node.module)
        elif isinstance(node, ast.Import):
            found |= {a.name for a in node.names}
    return found


@pytest.mark.parametrize(
    "module",
    ["cli/fix_cmd.py", "cli/verify_cmd.py", "cli/common.py", "cli/fix_render.py",
     *(f"usecase/{p.name}" for p in (SRC / "usecase").glob("*.py"))],
)  # fmt: skip
def test_fix_and_verify_do_not_import_the_lab(module: str) -> None:
    lab = [
        m for m in _imports(SRC / module) if m == "meshpath.lab" or m.startswith("meshpath.lab.")
    ]
    assert lab == [], f"{module} imports {lab}"


# -- the CLI only parses and renders ---------------------------------------------------------
@pytest.mark.parametrize("path", sorted((SRC / "cli").glob("*.py")), ids=lambda p: p.name)
def test_every_cli_module_is_under_200_lines(path: Path) -> None:
    assert len(path.read_text().splitlines()) < 200
