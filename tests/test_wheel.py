"""The wheel carries the runtime: the shipped sample week loads from an installed wheel.

The wheel is built once per session with ``uv build`` (hatchling, the project's backend) and
installed with ``uv pip install --no-deps --target`` into a fresh folder; the tests then run
the venv's interpreter with only that folder added to the path, from a directory outside
the repository, so nothing can come from the source checkout.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
from compiled import require_exact_reader

import natlens
from natlens import _files

REPO = Path(__file__).resolve().parent.parent

# Building and installing take a few seconds; a hung build must not hold CI for long.
pytestmark = pytest.mark.timeout(300)


def _uv() -> str:
    uv = os.environ.get("UV") or shutil.which("uv")
    if uv is None:
        pytest.skip("building the wheel needs uv (run the suite with `uv run pytest`)")
    return uv


@pytest.fixture(scope="session")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The wheel of the working tree, built once per session."""
    out = tmp_path_factory.mktemp("dist")
    subprocess.run(
        [_uv(), "build", "--wheel", "--out-dir", str(out), str(REPO)],
        check=True,
        capture_output=True,
        timeout=240,
    )
    (built,) = out.glob("natlens-*.whl")
    return built


@pytest.fixture(scope="session")
def installed(wheel: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A fresh folder holding only the installed wheel (dependencies stay in the venv)."""
    target = tmp_path_factory.mktemp("site")
    command = [_uv(), "pip", "install", "--no-deps", "--python", sys.executable]
    subprocess.run(
        [*command, "--target", str(target), str(wheel)],
        check=True,
        capture_output=True,
        timeout=240,
    )
    return target


def _run(installed: Path, cwd: Path, code: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    env["PYTHONPATH"] = str(installed)
    return subprocess.run(
        [sys.executable, "-c", code],
        check=False,
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=240,
    )


def _digests(files: dict[str, bytes]) -> dict[str, str]:
    return {name: hashlib.sha256(data).hexdigest() for name, data in files.items()}


def test_the_wheel_holds_the_shipped_samples_inside_the_package(wheel: Path) -> None:
    shipped = REPO / "data" / "samples"
    expected = {
        p.relative_to(shipped).as_posix(): p.read_bytes()
        for p in sorted(shipped.rglob("*"))
        if p.is_file()
    }
    prefix = "natlens/_data/samples/"
    with zipfile.ZipFile(wheel) as archive:
        names = archive.namelist()
        packed = {n.removeprefix(prefix): archive.read(n) for n in names if n.startswith(prefix)}
    assert _digests(packed) == _digests(expected)
    assert not [n for n in names if not n.startswith(("natlens/", "natlens-"))], "stray files"
    assert "natlens/_samplegen/__init__.py" in names, "`natlens samples` ships with the wheel"


def test_the_wheel_carries_the_compiled_reader_once(wheel: Path) -> None:
    """The exact JSON Lines reader, compiled by hatch_build.py: not the in-place copy an
    editable install leaves beside the source, nor its C source."""
    if vars(_files)["_scan"] is None:
        require_exact_reader()  # no C compiler here: the wheel was built without it
    with zipfile.ZipFile(wheel) as archive:
        names = archive.namelist()
    compiled = [n for n in names if n.startswith("natlens/_scan.") and not n.endswith(".pyi")]
    assert len(compiled) == 1, compiled
    assert compiled[0].endswith((".so", ".pyd")), compiled


def test_sample_data_and_natlens_samples_work_from_the_installed_wheel(
    installed: Path, tmp_path: Path
) -> None:
    out = tmp_path / "generated"
    code = f"""
import json, sys
import natlens
samples = natlens.sample_data()
facts = {{
    "natlens": natlens.__file__,
    "root": str(samples.root),
    "records": natlens.read_flowlogs(samples.flowlogs).height,
    "metrics": natlens.read_metrics(samples.metrics).height,
    "inventory": natlens.read_inventory(samples.inventory).height,
    "generator_loaded": any(m.startswith("natlens._samplegen") for m in sys.modules),
}}
from natlens import _files
facts["exact_reader"] = _files._scan.__file__ if _files._scan is not None else None
from natlens._cli import main
facts["samples_exit"] = main(["samples", "--out", {str(out)!r}, "--days", "3", "--vms", "20"])
print(json.dumps(facts))
"""
    done = _run(installed, tmp_path, code)
    assert done.returncode == 0, done.stderr
    *_, last = done.stdout.splitlines()
    seen = json.loads(last)
    assert Path(seen["natlens"]).is_relative_to(installed)
    assert Path(seen["root"]) == installed / "natlens" / "_data" / "samples"
    key = json.loads((REPO / "data" / "samples" / "answer_key.json").read_text())
    assert seen["records"] == key["dataset"]["records"] == 214_334
    assert seen["metrics"] == 7 * 1440 * 2 * 12
    assert seen["inventory"] == natlens.read_inventory(natlens.sample_data().inventory).height
    assert seen["generator_loaded"] is False
    if vars(_files)["_scan"] is not None:  # compiled here, so in the wheel too
        assert Path(seen["exact_reader"]).is_relative_to(installed)
    assert seen["samples_exit"] == 0
    assert "planted: billing_spike" in done.stdout
    assert natlens.sample_data(out).answer_key.exists()
