"""The wheel `make dist` builds installs into a fresh venv and carries every data file.

The README tells users to install from the repository (`make dist`, `pipx install dist/*.whl`
or `pipx install .`); this is that path, offline: the wheel is built with the dev venv's
setuptools, installed without dependencies into a new venv, and the third-party packages are
borrowed from the dev venv through a path file (so nothing is downloaded).
"""

from __future__ import annotations

import json
import shutil
import site
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


def _tracked_data_files() -> set[str]:
    out = subprocess.run(
        ["git", "ls-files", "src/meshpath"], cwd=REPO, capture_output=True, text=True, check=False
    )
    if out.returncode != 0:
        pytest.skip("not a git checkout: cannot list the package's tracked files")
    return {
        f.removeprefix("src/")
        for f in out.stdout.split()
        if not f.endswith(".py") and Path(REPO / f).is_file()
    }


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    # Build from a copy of the tracked files: what a clone has, and no build/ left behind in
    # the checkout (a stale build/lib would hide a missing package-data entry).
    src = tmp_path_factory.mktemp("src")
    listed = subprocess.run(["git", "ls-files", "-z"], cwd=REPO, capture_output=True, check=False)
    if listed.returncode != 0:
        pytest.skip("not a git checkout: cannot list the tracked files")
    for name in filter(None, listed.stdout.decode().split("\0")):
        if (REPO / name).is_file():
            (src / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(REPO / name, src / name)
    out = tmp_path_factory.mktemp("dist")
    argv = [sys.executable, "-m", "build", "--wheel", "--no-isolation", "--outdir", str(out)]
    subprocess.run([*argv, str(src)], check=True, capture_output=True, cwd=src)
    (built,) = out.glob("meshpath-*.whl")
    return built


def test_wheel_holds_every_data_file(wheel: Path) -> None:
    names = set(zipfile.ZipFile(wheel).namelist())
    missing = _tracked_data_files() - names
    assert not missing, f"not in the wheel: {sorted(missing)}"


def test_wheel_runs_in_a_fresh_venv(wheel: Path, tmp_path: Path) -> None:
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    py = venv / "bin" / "python"
    purelib = subprocess.run(
        [str(py), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    # Install the wheel with the dev venv's pip into the fresh one, dependencies excluded.
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "install",
            "-q",
            "--no-deps",
            "--no-index",
            "--target",
            purelib,
            str(wheel),
        ],
        check=True,
        capture_output=True,
    )
    # Dependencies from the dev venv, appended after the fresh site dir (a .pth adds a path
    # but does not run the dev venv's own .pth files, so its editable meshpath stays out).
    (Path(purelib) / "deps.pth").write_text("\n".join(site.getsitepackages()) + "\n")
    where = subprocess.run(
        [str(py), "-c", "import meshpath; print(meshpath.__file__)"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert where.startswith(purelib), where
    done = subprocess.run(
        [str(py), "-m", "meshpath", "ranges", "--json"], capture_output=True, text=True, check=False
    )
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["schema"] == "meshpath/ranges/1"
