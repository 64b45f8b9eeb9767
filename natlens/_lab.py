"""``natlens lab``: JupyterLab on the natlens notebooks, with the samples ready."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

__all__ = [
    "START_PAGE",
    "lab_command",
    "lab_environment",
    "notebooks_dir",
    "run_lab",
    "strip_outputs",
]

_REPO_ROOT = Path(__file__).resolve().parent.parent

START_PAGE = "00-start-here.ipynb"
"""The index notebook ``natlens lab`` opens first (when the folder has one)."""

# JupyterLab's announcements plugin asks "Would you like to get notified about official Jupyter
# news?" on first start whatever ``LabApp.news_url`` says; disabling the plugin keeps it away.
_QUIET_PAGE_CONFIG = {"disabledExtensions": {"@jupyterlab/apputils-extension:announcements": True}}


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


def strip_outputs(model: dict[str, Any], **context: object) -> None:
    """Clear a notebook's outputs before Jupyter saves it: a ``pre_save_hook``.

    Jupyter calls it as ``hook(model=..., path=..., contents_manager=...)`` with the
    contents model about to be written; this empties every code cell's outputs and
    execution count and drops the saved widget state, in place, so running a notebook
    in ``natlens lab`` never leaves outputs in the (tracked) file. Other files pass
    untouched.

    Parameters
    ----------
    model
        The contents model (``type``, ``content``, ...).
    **context
        ``path`` and ``contents_manager``, unused.

    Examples
    --------
    >>> cell = {
    ...     "cell_type": "code",
    ...     "source": "1 + 1",
    ...     "metadata": {},
    ...     "execution_count": 3,
    ...     "outputs": [{"output_type": "execute_result", "data": {"text/plain": "2"}}],
    ... }
    >>> model = {"type": "notebook", "content": {"cells": [cell], "metadata": {"widgets": {}}}}
    >>> strip_outputs(model, path="x.ipynb")
    >>> cell["outputs"], cell["execution_count"], model["content"]["metadata"]
    ([], None, {})
    """
    content = model.get("content")
    if model.get("type") != "notebook" or not isinstance(content, dict):
        return
    for cell in content.get("cells", []):
        if cell.get("cell_type") == "code":
            cell["outputs"] = []
            cell["execution_count"] = None
        metadata = cell.get("metadata")
        if isinstance(metadata, dict):
            metadata.pop("execution", None)  # run timings JupyterLab may record
    notebook_metadata = content.get("metadata")
    if isinstance(notebook_metadata, dict):
        notebook_metadata.pop("widgets", None)  # the widget state saved with the outputs


def lab_command(
    notebook_dir: Path,
    *,
    port: int | None = None,
    no_browser: bool = False,
    allow_root: bool = False,
    strip_on_save: bool = False,
    extra: Sequence[str] = (),
) -> list[str]:
    """Build the ``jupyter lab`` command line that ``natlens lab`` runs.

    The kernel is the interpreter running natlens, so the notebooks import the same
    natlens and its dependencies. When the folder holds :data:`START_PAGE`, JupyterLab
    opens on it instead of the launcher.

    Parameters
    ----------
    notebook_dir
        The folder JupyterLab serves.
    port
        The port to listen on (JupyterLab picks one when ``None``).
    no_browser
        Do not open a browser.
    allow_root
        Pass ``--allow-root``: JupyterLab refuses to start as root without it.
    strip_on_save
        Save notebooks without outputs (through :func:`strip_outputs`).
    extra
        More ``jupyter lab`` arguments, passed unchanged after natlens's own.

    Raises
    ------
    ValueError
        If ``port`` is not a TCP port number.

    Examples
    --------
    >>> cmd = lab_command(Path("notebooks"), port=8899, no_browser=True)
    >>> cmd[1:3]
    ['-m', 'jupyterlab']
    >>> "--port=8899" in cmd and "--no-browser" in cmd
    True
    >>> "--allow-root" in lab_command(Path("notebooks"), allow_root=True)
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
    if (notebook_dir / START_PAGE).is_file():
        command.append(f"--LabApp.default_url=/lab/tree/{START_PAGE}")
    if strip_on_save:
        command.append("--ContentsManager.pre_save_hook=natlens._lab.strip_outputs")
    if allow_root:
        command.append("--allow-root")
    if port is not None:
        if not 0 < port < 65536:
            raise ValueError(f"natlens lab: --port must be between 1 and 65535, got {port}")
        command.append(f"--port={port}")
    if no_browser:
        command.append("--no-browser")
    command.extend(extra)
    return command


def lab_environment(base: Mapping[str, str]) -> dict[str, str]:
    """Return ``base`` with a Jupyter config folder that keeps the news prompt away.

    The folder is new and private (``tempfile.mkdtemp``) and goes first on
    ``JUPYTER_CONFIG_PATH``; it holds only ``labconfig/page_config.json``, which
    disables JupyterLab's announcements plugin (the "official Jupyter news?" prompt and
    the update check). The user's own Jupyter configuration still applies.

    Examples
    --------
    >>> env = lab_environment({"JUPYTER_CONFIG_PATH": "/etc/mine"})
    >>> first, rest = env["JUPYTER_CONFIG_PATH"].split(os.pathsep)
    >>> rest
    '/etc/mine'
    >>> config = Path(first) / "labconfig" / "page_config.json"
    >>> list(json.loads(config.read_text())["disabledExtensions"])
    ['@jupyterlab/apputils-extension:announcements']
    >>> import shutil
    >>> shutil.rmtree(first)
    """
    folder = Path(tempfile.mkdtemp(prefix="natlens-lab-"))
    (folder / "labconfig").mkdir()
    (folder / "labconfig" / "page_config.json").write_text(json.dumps(_QUIET_PAGE_CONFIG))
    paths = [str(folder)]
    if base.get("JUPYTER_CONFIG_PATH"):
        paths.append(base["JUPYTER_CONFIG_PATH"])
    return {**base, "JUPYTER_CONFIG_PATH": os.pathsep.join(paths)}


def _running_as_root() -> bool:
    """Whether the effective user is root (never on Windows, which has no euid)."""
    return hasattr(os, "geteuid") and os.geteuid() == 0


def run_lab(
    *,
    notebook_dir: Path | None = None,
    port: int | None = None,
    no_browser: bool = False,
    keep_outputs: bool = False,
    extra: Sequence[str] = (),
) -> int:
    """Start JupyterLab on the notebooks; return its exit code.

    Run as root (a container, a dev box, CI), it passes ``--allow-root`` and says so.
    Notebooks are saved without outputs unless ``keep_outputs``. On POSIX the process
    becomes JupyterLab (``exec``), so it never returns there.
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
    as_root = _running_as_root()
    if as_root:
        print(
            "natlens lab: running as root (as in a container), so JupyterLab gets --allow-root",
            file=sys.stderr,
        )
    if not keep_outputs:
        print(
            "natlens lab: notebooks are saved without outputs (--keep-outputs keeps them)",
            file=sys.stderr,
        )
    command = lab_command(
        folder,
        port=port,
        no_browser=no_browser,
        allow_root=as_root,
        strip_on_save=not keep_outputs,
        extra=extra,
    )
    env = lab_environment(os.environ)
    if os.name == "posix":
        # Become JupyterLab: signals (Ctrl+C, SIGTERM from a supervisor) reach it directly.
        sys.stdout.flush()
        sys.stderr.flush()
        os.execve(command[0], command, env)
    config = env["JUPYTER_CONFIG_PATH"].split(os.pathsep)[0]
    try:
        return subprocess.call(command, env=env)
    except KeyboardInterrupt:
        return 130
    finally:
        shutil.rmtree(config, ignore_errors=True)
