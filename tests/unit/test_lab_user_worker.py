"""A user's Worker project -> what workerd runs in the lab (no namespaces needed)."""

from __future__ import annotations

from pathlib import Path

import pytest

from meshpath.errors import WorkerConfigError
from meshpath.lab.worker.capnp import WorkerSpec
from meshpath.lab.worker.runtime import stage
from meshpath.lab.worker.user import supported_date, user_app

USER_WORKER = Path(__file__).resolve().parents[1] / "data" / "user_worker"


def test_the_test_worker() -> None:
    app = user_app(USER_WORKER)
    spec = app.spec
    assert spec.modules == ("src/index.js", "src/upstream.js")  # main first
    assert spec.mesh_bindings == ("PRIVATE_NET", "BACKUP_NET")
    assert dict(spec.json_bindings) == {"ORDERS_URL": '"http://10.0.1.50:3000"', "RETRIES": "0"}
    assert spec.compatibility_date == "2026-02-01"
    assert app.sources["src/upstream.js"] == USER_WORKER / "src" / "upstream.js"
    assert user_app(USER_WORKER / "wrangler.jsonc").spec == spec  # the file itself works too


def write(root: Path, config: str, files: dict[str, str] | None = None) -> Path:
    (root / "wrangler.toml").write_text(config)
    for rel, text in (files or {"index.js": "export default {};\n"}).items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text(text)
    return root


MESH = '[[vpc_networks]]\nbinding = "MESH"\nnetwork_id = "cf1:network"\n'


@pytest.mark.parametrize(
    ("config", "files", "message"),
    [
        (
            'main = "index.js"\n[[vpc_services]]\nbinding = "API"\nservice_id = "x"\n',
            None,
            "cannot emulate a VPC Service",
        ),
        (
            'main = "index.js"\n[[d1_databases]]\nbinding = "DB"\n',
            None,
            "cannot provide d1_databases",
        ),
        ('main = "src/index.ts"\n', {"src/index.ts": "export default {}"}, "not JavaScript"),
        ('main = "missing.js"\n', None, "not found"),
        ('main = "../outside.js"\n', None, "not found"),
        ('name = "w"\n', None, "no main module"),
        ('main = "index.js"\n' + MESH.replace("MESH", "MY-MESH"), None, "not a JavaScript"),
        ('main = "index.js"\n' + MESH + MESH, None, "used twice"),
        ('main = "index.js"\ncompatibility_date = "soon"\n', None, "not YYYY-MM-DD"),
        ('main = "index.js"\n', {"index.js": "", "lib/a b.js": ""}, "cannot load 'lib/a b.js'"),
    ],
)
def test_refused_with_a_message(
    tmp_path: Path, config: str, files: dict[str, str] | None, message: str
) -> None:
    with pytest.raises(WorkerConfigError, match=message):
        user_app(write(tmp_path, config, files))


def test_env_sections_and_node_modules_are_left_out(tmp_path: Path) -> None:
    config = 'main = "index.js"\n' + MESH + '[[env.prod.kv_namespaces]]\nbinding = "KV"\nid = "1"\n'
    files = {"index.js": "", "node_modules/x/index.js": "", ".wrangler/tmp/a.js": ""}
    app = user_app(write(tmp_path, config, files))
    assert app.spec.modules == ("index.js",) and app.spec.mesh_bindings == ("MESH",)


def test_compatibility_date_never_beyond_workerd() -> None:
    assert supported_date("1.20261117.1") == "2026-11-17"


def test_future_date_is_clamped(tmp_path: Path) -> None:
    app = user_app(write(tmp_path, 'main = "index.js"\ncompatibility_date = "2099-01-01"\n'))
    assert app.spec.compatibility_date == supported_date()


def test_stage_never_writes_outside_its_directory(tmp_path: Path) -> None:
    src = tmp_path / "a.js"
    src.write_text("")
    spec = WorkerSpec(("../../escape.js",), "2026-01-01")
    with pytest.raises(ValueError, match="outside"):
        stage(tmp_path / "stage", spec, {"../../escape.js": src}, ("a:1", "b:2"), 1)
    assert not (tmp_path / "escape.js").exists()


def test_a_dead_workerd_is_named_by_its_whole_last_message() -> None:
    from meshpath.lab.base import _last_message

    log = (
        "workerd starting\n"
        'service worker: Uncaught Error: No such module "hono".\n'
        '  imported from "index.js"'
    )
    assert _last_message(log) == (
        'service worker: Uncaught Error: No such module "hono". | imported from "index.js"'
    )
    assert _last_message("one\ntwo") == "two"
