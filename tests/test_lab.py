"""``natlens lab`` for real: the command a newcomer types, started as the tests run (root in
CI and containers), answering on 127.0.0.1, opening on the start page, with no news prompt,
and saving notebooks without outputs."""

from __future__ import annotations

import copy
import json
import os
import re
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.error import HTTPError

import nbformat
import pytest

from natlens._cli import main
from natlens._lab import START_PAGE, lab_command, notebooks_dir, strip_outputs

NOTEBOOKS = Path(__file__).resolve().parent.parent / "notebooks"
_MAIN = "from natlens._cli import main; raise SystemExit(main())"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@dataclass(frozen=True)
class Lab:
    base: str
    token: str
    root: Path
    log: Path

    def request(self, path: str, *, method: str = "GET", body: Any = None) -> Any:
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(
            f"{self.base}{path}",
            data=data,
            method=method,
            headers={"Authorization": f"token {self.token}", "Content-Type": "application/json"},
        )
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.read()


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Lab]:
    """``natlens lab`` (the installed command) on a copy of notebooks/, as this user."""
    home = tmp_path_factory.mktemp("lab")
    root = home / "notebooks"
    shutil.copytree(NOTEBOOKS, root, ignore=shutil.ignore_patterns(".ipynb_checkpoints"))
    port, token = _free_port(), secrets.token_hex(16)
    (home / "tmp").mkdir()
    env = dict(
        os.environ,
        TMPDIR=str(home / "tmp"),  # natlens lab's own Jupyter config folder lands here
        JUPYTER_RUNTIME_DIR=str(home / "runtime"),
        JUPYTERLAB_SETTINGS_DIR=str(home / "settings"),
        JUPYTERLAB_WORKSPACES_DIR=str(home / "workspaces"),
    )
    natlens = Path(sys.executable).parent / "natlens"
    command = [str(natlens)] if natlens.exists() else [sys.executable, "-c", _MAIN]
    log = home / "lab.log"
    with log.open("w") as out:
        server = subprocess.Popen(
            [
                *command,
                "lab",
                "--no-browser",
                "--port",
                str(port),
                "--notebook-dir",
                str(root),
                "--",
                f"--IdentityProvider.token={token}",
                "--ip=127.0.0.1",
            ],
            stdout=out,
            stderr=subprocess.STDOUT,
            env=env,
            cwd=home,
        )
    lab = Lab(f"http://127.0.0.1:{port}", token, root, log)
    try:
        deadline = time.monotonic() + 90
        while True:
            try:
                lab.request("/api/status")
                break
            except OSError:
                if server.poll() is not None or time.monotonic() > deadline:
                    pytest.fail(f"natlens lab did not answer on 127.0.0.1:\n{log.read_text()}")
                time.sleep(0.3)
        yield lab
    finally:
        server.send_signal(signal.SIGTERM)
        try:
            server.wait(timeout=15)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()


def test_lab_starts_as_this_user_and_says_why_when_root(lab: Lab) -> None:
    log = lab.log.read_text()
    said = [line for line in log.splitlines() if "--allow-root" in line]
    if os.geteuid() == 0:
        assert said == [
            "natlens lab: running as root (as in a container), so JupyterLab gets --allow-root"
        ]
    else:
        assert said == []
    assert "Running as root is not recommended" not in log


def test_lab_opens_on_the_start_page(lab: Lab) -> None:
    opener = urllib.request.build_opener(_NoRedirect)
    request = urllib.request.Request(f"{lab.base}/?token={lab.token}")
    with pytest.raises(HTTPError) as redirect:
        opener.open(request, timeout=10)
    redirect.value.close()
    assert redirect.value.code in (301, 302)
    location = redirect.value.headers["Location"].split("?")[0]
    assert location == f"/lab/tree/{START_PAGE}"
    page = lab.request(f"/lab/tree/{START_PAGE}").decode()
    config = json.loads(
        re.search(
            r'<script id="jupyter-config-data" type="application/json">(.*?)</script>',
            page,
            flags=re.DOTALL,
        ).group(1)  # type: ignore[union-attr]
    )
    # No news: the server fetches no feed, and the plugin that asks "Would you like to get
    # notified about official Jupyter news?" on first start is not loaded.
    assert config["news"] == {"disabled": True}
    assert "@jupyterlab/apputils-extension:announcements" in config["disabledExtensions"]
    pages = list((lab.root.parent / "tmp").glob("natlens-lab-*/labconfig/page_config.json"))
    assert len(pages) == 1, "natlens lab writes its Jupyter config outside the notebooks"
    listing = json.loads(lab.request("/api/contents"))
    names = {item["name"] for item in listing["content"]}
    assert {START_PAGE, "01-troubleshoot-outbound.ipynb", "workshop"} <= names


def _with_outputs(path: Path) -> dict[str, Any]:
    """The notebook as JupyterLab sends it after a run: outputs, counts, widget state."""
    nb: dict[str, Any] = json.loads(path.read_text())
    for count, cell in enumerate(c for c in nb["cells"] if c["cell_type"] == "code"):
        cell["execution_count"] = count + 1
        cell["outputs"] = [
            {"output_type": "stream", "name": "stdout", "text": "42 GB\n"},
            {
                "output_type": "execute_result",
                "execution_count": count + 1,
                "data": {"text/plain": "a table"},
                "metadata": {},
            },
        ]
        cell["metadata"]["execution"] = {"iopub.status.busy": "2026-11-10T10:00:00Z"}
    nb["metadata"]["widgets"] = {"application/vnd.jupyter.widget-state+json": {"state": {}}}
    return nb


def test_lab_saves_notebooks_without_outputs(lab: Lab) -> None:
    name = "01-troubleshoot-outbound.ipynb"
    stored = json.loads((lab.root / name).read_text())
    ran = _with_outputs(lab.root / name)
    lab.request(
        f"/api/contents/{name}",
        method="PUT",
        body={"type": "notebook", "format": "json", "content": ran},
    )
    on_disk = nbformat.read(lab.root / name, as_version=4)
    nbformat.validate(on_disk)
    code = [c for c in on_disk.cells if c.cell_type == "code"]
    assert code, "the notebook has code cells"
    assert all(c.outputs == [] and c.execution_count is None for c in code)
    assert "widgets" not in on_disk.metadata
    assert [c.source for c in on_disk.cells] == ["".join(c["source"]) for c in stored["cells"]]
    # A plain file saves unchanged.
    lab.request(
        "/api/contents/notes.txt",
        method="PUT",
        body={"type": "file", "format": "text", "content": "outputs: keep me\n"},
    )
    assert (lab.root / "notes.txt").read_text() == "outputs: keep me\n"


def test_strip_outputs_leaves_a_valid_notebook_with_its_sources() -> None:
    ran = _with_outputs(NOTEBOOKS / "04-security-audit.ipynb")
    model = {"type": "notebook", "content": copy.deepcopy(ran)}
    strip_outputs(model, path="04-security-audit.ipynb", contents_manager=None)
    stripped = nbformat.from_dict(model["content"])
    nbformat.validate(stripped)
    assert all(c.get("outputs", []) == [] for c in stripped.cells)
    assert [c.source for c in stripped.cells] == [c["source"] for c in ran["cells"]]
    assert all("execution" not in c.metadata for c in stripped.cells)
    other = {"type": "file", "content": "not a notebook"}
    strip_outputs(other)
    assert other == {"type": "file", "content": "not a notebook"}


def test_lab_command_line() -> None:
    command = lab_command(Path("/nb"), port=8899, no_browser=True, extra=["--ServerApp.x=1"])
    assert command == [
        sys.executable,
        "-m",
        "jupyterlab",
        "--ServerApp.root_dir=/nb",
        "--LabApp.news_url=None",
        "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate",
        "--port=8899",
        "--no-browser",
        "--ServerApp.x=1",
    ]
    full = lab_command(NOTEBOOKS, allow_root=True, strip_on_save=True)
    assert full[6:] == [
        f"--LabApp.default_url=/lab/tree/{START_PAGE}",
        "--ContentsManager.pre_save_hook=natlens._lab.strip_outputs",
        "--allow-root",
    ]
    with pytest.raises(ValueError, match="--port must be between 1 and 65535"):
        lab_command(Path("/nb"), port=70000)


def test_notebooks_dir(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    assert (notebooks_dir() / "01-troubleshoot-outbound.ipynb").exists()
    monkeypatch.setenv("NATLENS_NOTEBOOKS", str(tmp_path / "missing"))
    with pytest.raises(FileNotFoundError, match="set NATLENS_NOTEBOOKS"):
        notebooks_dir()


def test_natlens_lab_without_notebooks_is_a_clear_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["lab", "--notebook-dir", str(tmp_path / "none")]) == 2
    assert f"notebook folder {tmp_path / 'none'} not found" in capsys.readouterr().err
