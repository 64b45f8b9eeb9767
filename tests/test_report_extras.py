"""``natlens report`` needs only the ``charts`` extra: no ipywidgets, anywidget or IPython."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import natlens

# Packages of the ``lab`` extra (and what they pull in) that a ``charts``-only install lacks.
LAB_ONLY = ("ipywidgets", "anywidget", "IPython", "ipykernel", "jupyterlab", "jupyter_server")

# Installed as ``sitecustomize`` in the child: every import finder answers "not found" for
# those packages, exactly as when they are not installed (``find_spec`` returns None, which
# is what altair checks before it imports anywidget).
BLOCKER = textwrap.dedent(
    f"""
    import sys

    BLOCKED = {LAB_ONLY!r}


    class Hiding:
        def __init__(self, finder):
            self.finder = finder

        def find_spec(self, name, path=None, target=None):
            if name.split(".")[0] in BLOCKED:
                return None
            return self.finder.find_spec(name, path, target)

        def __getattr__(self, attribute):
            return getattr(self.finder, attribute)


    sys.meta_path[:] = [Hiding(finder) for finder in sys.meta_path]
    """
)


def _run_without_lab(
    tmp_path: Path, code: str, *, cwd: Path | None = None
) -> subprocess.CompletedProcess[str]:
    """Run ``python -c code`` where the lab extra's packages cannot be imported."""
    site = tmp_path / "site"
    site.mkdir(exist_ok=True)
    (site / "sitecustomize.py").write_text(BLOCKER, encoding="utf-8")
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(site), *filter(None, [env.get("PYTHONPATH", "")])])
    return subprocess.run(
        [sys.executable, "-c", code],
        env=env,
        cwd=cwd or tmp_path,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


def test_the_blocker_really_blocks(tmp_path: Path) -> None:
    probe = _run_without_lab(
        tmp_path,
        "import importlib\n"
        f"for name in {LAB_ONLY!r}:\n"
        "    try:\n"
        "        importlib.import_module(name)\n"
        "    except ModuleNotFoundError:\n"
        "        pass\n"
        "    else:\n"
        "        raise SystemExit(f'{name} was importable')\n"
        "import natlens.widgets\n",
    )
    assert probe.returncode != 0
    assert "No module named 'ipywidgets'" in probe.stderr, probe.stderr


def test_report_runs_with_only_the_charts_extra(
    tmp_path: Path, samples: natlens.SampleData
) -> None:
    out = tmp_path / "report.html"
    run = _run_without_lab(
        tmp_path,
        "import sys\n"
        "from natlens._cli import main\n"
        f"code = main(['report', {str(samples.flowlogs)!r}, '-o', {str(out)!r},"
        f" '--inventory', {str(samples.inventory)!r},"
        f" '--allowlist', {str(samples.allowlist)!r},"
        f" '--service-tags', {str(samples.service_tags)!r},"
        f" '--hostnames', {str(samples.hostnames)!r}])\n"
        f"lab = sorted(m for m in sys.modules if m.split('.')[0] in {LAB_ONLY!r})\n"
        "assert not lab, lab\n"
        "raise SystemExit(code)\n",
    )
    assert run.returncode == 0, run.stderr
    assert "natlens report: wrote" in run.stdout
    text = out.read_text(encoding="utf-8")
    assert text.startswith("<!DOCTYPE html>")
    assert '<table class="natlens-table"' in text, "the tables are rendered"
    assert "<svg" in text, "the charts are rendered"
