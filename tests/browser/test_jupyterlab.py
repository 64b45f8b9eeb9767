"""Real-browser check: JupyterLab serves the troubleshooting notebook, headless Chromium
runs it, and its widgets and charts render.

Needs Debian's chromium at /usr/bin/chromium; run as root on Debian, the test installs it
itself (``apt-get install -y chromium``), as CI does::

    uv run pytest -m browser tests/browser -q

Screenshots and the run time go to ``$NATLENS_BROWSER_ARTIFACTS`` (default
``/tmp/natlens-browser``).
"""

from __future__ import annotations

import os
import secrets
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

pytestmark = [pytest.mark.browser, pytest.mark.timeout(480)]

REPO = Path(__file__).resolve().parents[2]
CHROMIUM = os.environ.get("NATLENS_CHROMIUM", "/usr/bin/chromium")
NOTEBOOK = "01-troubleshoot-outbound.ipynb"
# Screenshots and timing land here (look at them after a run).
ARTIFACTS = Path(
    os.environ.get("NATLENS_BROWSER_ARTIFACTS", Path(tempfile.gettempdir()) / "natlens-browser")
)


def _ensure_chromium() -> None:
    """Install Debian's chromium when it is missing and this user can (browsers cannot be
    downloaded here: Playwright drives the distribution's build)."""
    if Path(CHROMIUM).exists():
        return
    apt = shutil.which("apt-get")
    if apt is None or os.geteuid() != 0:
        pytest.fail(
            f"{CHROMIUM} not found: install Debian's chromium (apt-get install -y chromium)"
        )
    env = os.environ | {"DEBIAN_FRONTEND": "noninteractive"}
    for command in ([apt, "update"], [apt, "install", "-y", "chromium"]):
        subprocess.run(command, check=True, env=env, stdout=subprocess.DEVNULL)
    if not Path(CHROMIUM).exists():
        pytest.fail(f"apt-get installed chromium but {CHROMIUM} is still missing")


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Path]]:
    """A JupyterLab server on a copy of notebooks/, yielding its base URL (with token)."""
    _ensure_chromium()
    root = tmp_path_factory.mktemp("lab")
    shutil.copytree(REPO / "notebooks", root / "notebooks")
    port, token = _free_port(), secrets.token_hex(16)
    log = (root / "lab.log").open("w")
    server = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "jupyterlab",
            "--no-browser",
            f"--port={port}",
            "--ip=127.0.0.1",
            f"--IdentityProvider.token={token}",
            f"--ServerApp.root_dir={root / 'notebooks'}",
            "--LabApp.expose_app_in_browser=True",
            "--LabApp.news_url=",
            "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate",
            *(["--allow-root"] if os.geteuid() == 0 else []),
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
        cwd=root,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                with urllib.request.urlopen(f"{base}/api/status?token={token}", timeout=2):
                    break
            except OSError:
                if server.poll() is not None or time.monotonic() > deadline:
                    pytest.fail(f"JupyterLab did not start:\n{(root / 'lab.log').read_text()}")
                time.sleep(0.3)
        yield f"{base}/lab/tree/{{path}}?token={token}", root
    finally:
        server.terminate()
        try:
            server.wait(timeout=15)
        except subprocess.TimeoutExpired:
            server.kill()
        log.close()


def test_troubleshooting_notebook_renders_widgets_and_charts(lab: tuple[str, Path]) -> None:
    from playwright.sync_api import sync_playwright

    url, root = lab
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    started = time.monotonic()
    with sync_playwright() as pw:
        browser = pw.chromium.launch(
            executable_path=CHROMIUM,
            args=[
                "--no-sandbox",
                "--disable-gpu",
                "--disable-dev-shm-usage",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--no-first-run",
            ],
        )
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 1000})
            console: list[str] = []
            page.on("console", lambda m: console.append(f"{m.type}: {m.text}"))
            page.goto(url.format(path=NOTEBOOK), wait_until="domcontentloaded")
            page.wait_for_function(
                "() => window.jupyterapp && document.querySelector('.jp-Notebook')",
                timeout=90_000,
            )
            # Wait for the kernel, then run every cell as a user would (Run > Run All Cells).
            page.wait_for_function(
                """() => {
                    const nb = window.jupyterapp.shell.currentWidget;
                    return nb?.sessionContext?.session?.kernel?.status === 'idle';
                }""",
                timeout=90_000,
            )
            page.evaluate("() => { window.jupyterapp.commands.execute('notebook:run-all-cells'); }")
            # Every code cell of the notebook model has run and the kernel is idle again.
            page.wait_for_function(
                """() => {
                    const nb = window.jupyterapp.shell.currentWidget;
                    const code = nb.content.widgets.filter(c => c.model.type === 'code');
                    return code.length > 0
                        && code.every(c => c.model.executionCount !== null)
                        && nb.sessionContext.session.kernel.status === 'idle';
                }""",
                timeout=300_000,
                polling=500,
            )
            page.wait_for_selector(".vega-embed canvas, .vega-embed svg.marks", timeout=60_000)
            page.wait_for_timeout(1500)
            page.screenshot(path=str(ARTIFACTS / "01-troubleshoot-outbound.png"), full_page=False)
            text = page.inner_text(".jp-Notebook")
            errors = page.locator(
                ".jp-OutputArea-output[data-mime-type='application/vnd.jupyter.stderr']"
            )
            traceback = page.locator(
                ".jp-RenderedText[data-mime-type='application/vnd.jupyter.error']"
            )
            assert "Error displaying widget" not in text, text[-2000:]
            assert traceback.count() == 0, traceback.first.inner_text()
            assert errors.count() == 0 or "Traceback" not in errors.first.inner_text()
            widgets = page.locator(
                ".jp-OutputArea-output .widget-vbox, .jp-OutputArea-output .widget-box"
            )
            assert widgets.count() > 0, "no ipywidgets rendered"
            charts = page.locator(".vega-embed canvas, .vega-embed svg.marks")
            assert charts.count() > 0, "no Vega chart rendered"
            # The troubleshooting widget rendered its steps, and the dashboard its chart.
            doctor = page.locator(".jp-Cell", has_text="nw.TroubleshootWidget(").first
            doctor.scroll_into_view_if_needed()
            page.wait_for_selector("text=4. drops: PROBLEM", timeout=30_000)
            page.wait_for_timeout(500)
            doctor.screenshot(path=str(ARTIFACTS / "01-troubleshoot-widget.png"))
            board = page.locator(".jp-Cell", has_text="nw.Dashboard(").first
            board.scroll_into_view_if_needed()
            board.locator(".vega-embed canvas, .vega-embed svg.marks").first.wait_for(
                timeout=30_000
            )
            page.wait_for_timeout(500)
            page.screenshot(path=str(ARTIFACTS / "01-dashboard.png"))
            assert "Error displaying widget" not in page.inner_text(".jp-Notebook")
        except Exception:
            page.screenshot(path=str(ARTIFACTS / "failure.png"))
            log = (root / "lab.log").read_text()[-3000:]
            print(f"screenshot: {ARTIFACTS / 'failure.png'}\nconsole: {console[-20:]}\n{log}")
            raise
        finally:
            browser.close()
    elapsed = time.monotonic() - started
    (ARTIFACTS / "timing.txt").write_text(f"browser run: {elapsed:.1f} s\n")
    assert (root / "notebooks" / NOTEBOOK).exists()
