"""``natlens lab``: JupyterLab on the natlens notebooks, with the samples ready."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

__all__ = ["lab_command", "notebooks_dir", "run_lab"]

_REPO_ROOT = Path(__file__).resolve().parent.parent


def notebooks_dir() -> Path:
    """Return the folder holding the natlens notebooks.

    ``NATLENS_NOTEBOOKS`` overrides it; otherwise it is ``notebooks/`` next to the
    package (a source checkout, where the notebooks and ``data/samples`` live).

    Raises
    ------
    FileNotFoundError
        If the folder does not exist.

    Examples
    --------
    >>> notebooks_dir().name
    'notebooks'
    """
    override = os.environ.get("NATLENS_NOTEBOOKS")
    folder = Path(override) if override else _REPO_ROOT / "notebooks"
    if not folder.is_dir():
        raise FileNotFoundError(
            f"natlens lab: notebook folder {folder} not found; "
            "run from a natlens checkout or set NATLENS_NOTEBOOKS"
        )
    return folder


def lab_command(
    notebook_dir: Path,
    *,
    port: int | None = None,
    no_browser: bool = False,
    extra: Sequence[str] = (),
) -> list[str]:
    """Build the ``jupyter lab`` command line that ``natlens lab`` runs.

    The kernel is the interpreter running natlens, so the notebooks import the same
    natlens and its dependencies.

    Examples
    --------
    >>> cmd = lab_command(Path("notebooks"), port=8899, no_browser=True)
    >>> cmd[1:3]
    ['-m', 'jupyterlab']
    >>> "--port=8899" in cmd and "--no-browser" in cmd
    True
    """
    command = [
        sys.executable,
        "-m",
        "jupyterlab",
        f"--ServerApp.root_dir={notebook_dir}",
        # natlens works offline: no news feed to fetch, no update check to run.
        "--LabApp.news_url=None",
        "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate",
    ]
    if port is not None:
        if not 0 < port < 65536:
            raise ValueError(f"natlens lab: --port must be between 1 and 65535, got {port}")
        command.append(f"--port={port}")
    if no_browser:
        command.append("--no-browser")
    command.extend(extra)
    return command


def run_lab(
    *,
    notebook_dir: Path | None = None,
    port: int | None = None,
    no_browser: bool = False,
    extra: Sequence[str] = (),
) -> int:
    """Start JupyterLab on the notebooks; return its exit code.

    On POSIX the process becomes JupyterLab (``exec``), so it never returns there.
    """
    try:
        import jupyterlab  # noqa: F401
    except ImportError:
        print(
            "natlens lab needs JupyterLab: pip install 'natlens[lab]'",
            file=sys.stderr,
        )
        return 2
    try:
        folder = notebook_dir if notebook_dir is not None else notebooks_dir()
    except FileNotFoundError as exc:
        print(exc, file=sys.stderr)
        return 2
    if not folder.is_dir():
        print(f"natlens lab: notebook folder {folder} not found", file=sys.stderr)
        return 2
    from natlens._samples import sample_data

    try:
        sample_data()  # the notebooks read the shipped sample week: say so now if it is missing
    except FileNotFoundError as exc:
        print(f"natlens lab: {exc}", file=sys.stderr)
        return 2
    command = lab_command(folder, port=port, no_browser=no_browser, extra=extra)
    if os.name == "posix":
        # Become JupyterLab: signals (Ctrl+C, SIGTERM from a supervisor) reach it directly.
        sys.stdout.flush()
        sys.stderr.flush()
        os.execv(command[0], command)
    try:
        return subprocess.call(command)
    except KeyboardInterrupt:
        return 130
