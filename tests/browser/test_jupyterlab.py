"""Real-browser check: JupyterLab, started as ``natlens lab`` starts it, opens on the start
page with no news prompt, and headless Chromium runs the troubleshooting notebook, whose
widgets and charts render.

It drives a Chromium already on this machine: ``$NATLENS_CHROMIUM``, ``/usr/bin/chromium``
(Debian's), or ``chromium``, ``chromium-browser`` or ``google-chrome`` on PATH. Without one
it skips, unless ``CI`` is set: then it installs Debian's chromium when root on Debian
(``apt-get install -y chromium``) and fails when it cannot::

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

from natlens._lab import START_PAGE, _running_as_root, lab_command, lab_environment

pytestmark = [pytest.mark.browser, pytest.mark.timeout(480)]

REPO = Path(__file__).resolve().parents[2]
DEBIAN_CHROMIUM = "/usr/bin/chromium"
NOTEBOOK = "01-troubleshoot-outbound.ipynb"
BROWSER_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
# Screenshots and timing land here (look at them after a run).
ARTIFACTS = Path(
    os.environ.get("NATLENS_BROWSER_ARTIFACTS", Path(tempfile.gettempdir()) / "natlens-browser")
)


def find_chromium() -> str | None:
    """The Chromium to drive: ``$NATLENS_CHROMIUM``, Debian's, or one on PATH; else None."""
    chosen = os.environ.get("NATLENS_CHROMIUM")
    if chosen:
        if not Path(chosen).is_file():
            pytest.fail(f"NATLENS_CHROMIUM={chosen}: no such file")
        return chosen
    if Path(DEBIAN_CHROMIUM).is_file():
        return DEBIAN_CHROMIUM
    for name in ("chromium", "chromium-browser", "google-chrome"):
        found = shutil.which(name)
        if found:
            return found
    return None


def chromium() -> str:
    """A Chromium executable, installing Debian's under CI (browsers cannot be downloaded
    here: Playwright drives the distribution's build); skip without one outside CI."""
    found = find_chromium()
    if found:
        return found
    if not os.environ.get("CI"):
        pytest.skip(
            "no Chromium found: set NATLENS_CHROMIUM=/path/to/chromium (or CI=1 to install "
            "Debian's) to run the browser test"
        )
    apt = shutil.which("apt-get")
    if apt is None or not _running_as_root():
        pytest.fail("CI is set but no Chromium was found: install one or set NATLENS_CHROMIUM")
    env = os.environ | {"DEBIAN_FRONTEND": "noninteractive"}
    for command in ([apt, "update"], [apt, "install", "-y", "chromium"]):
        subprocess.run(command, check=True, env=env, stdout=subprocess.DEVNULL)
    found = find_chromium()
    if found is None:
        pytest.fail(f"apt-get installed chromium but {DEBIAN_CHROMIUM} is still missing")
    return found


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@pytest.fixture(scope="module")
def browser_path() -> str:
    return chromium()


@pytest.fixture(scope="module")
def lab(browser_path: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Path]]:
    """JupyterLab as ``natlens lab`` runs it (same command line and Jupyter config), on a
    copy of notebooks/ with fresh user settings, yielding its base URL (with token)."""
    root = tmp_path_factory.mktemp("lab")
    shutil.copytree(REPO / "notebooks", root / "notebooks")
    port, token = _free_port(), secrets.token_hex(16)
    command = lab_command(
        root / "notebooks",
        port=port,
        no_browser=True,
        allow_root=_running_as_root(),
        strip_on_save=True,
        extra=[
            "--ip=127.0.0.1",
            f"--IdentityProvider.token={token}",
            "--LabApp.expose_app_in_browser=True",
        ],
    )
    (root / "tmp").mkdir()
    # Fresh user settings: a news setting saved earlier must not hide the prompt from the test.
    # (Workspaces stay where they are: with an empty JUPYTERLAB_WORKSPACES_DIR, Run All Cells
    # ran nothing in JupyterLab 4.6; the notebook test opens a workspace of its own, reset.)
    env = lab_environment(
        os.environ | {"TMPDIR": str(root / "tmp"), "JUPYTERLAB_SETTINGS_DIR": str(root / "set")}
    )
    log = (root / "lab.log").open("w")
    server = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, cwd=root, env=env)
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
        shutil.rmtree(env["JUPYTER_CONFIG_PATH"].split(os.pathsep)[0], ignore_errors=True)


def test_lab_opens_on_the_start_page_without_a_news_prompt(
    lab: tuple[str, Path], browser_path: str
) -> None:
    from playwright.sync_api import sync_playwright

    url, _ = lab
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    home = url.replace("/lab/tree/{path}", "/")  # the server's default URL, as a browser opens it
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=browser_path, args=BROWSER_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 1000})
            page.goto(home, wait_until="domcontentloaded")
            page.wait_for_function(
                f"""() => window.jupyterapp?.shell?.currentWidget?.context?.path
                    === {START_PAGE!r}""",
                timeout=90_000,
            )
            page.locator(".jp-RenderedMarkdown h1", has_text="natlens · start here").wait_for(
                timeout=30_000
            )
            # The news prompt appears as soon as the app is restored: give it time to show.
            page.wait_for_timeout(3000)
            page.screenshot(path=str(ARTIFACTS / "00-start-here.png"))
            toasts = page.locator(".Toastify__toast").all_inner_texts()
            assert not [t for t in toasts if "news" in t.lower()], toasts
            # Every notebook and the workshop is one click away.
            links = page.locator(".jp-RenderedMarkdown a[href*='/files/']").evaluate_all(
                "links => links.map(a => new URL(a.href).pathname.split('/files/')[1])"
            )
            assert links == [
                "01-troubleshoot-outbound.ipynb",
                "02-usage-analytics.ipynb",
                "03-billing-spike.ipynb",
                "04-security-audit.ipynb",
                "workshop/exercises.ipynb",
                "workshop/solutions.ipynb",
            ]
            page.locator(".jp-RenderedMarkdown a", has_text="02 · Usage analytics").click()
            page.wait_for_function(
                """() => window.jupyterapp.shell.currentWidget?.context?.path
                    === '02-usage-analytics.ipynb'""",
                timeout=30_000,
            )
        finally:
            browser.close()


def test_troubleshooting_notebook_renders_widgets_and_charts(
    lab: tuple[str, Path], browser_path: str
) -> None:
    from playwright.sync_api import sync_playwright

    url, root = lab
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    started = time.monotonic()
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=browser_path, args=BROWSER_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 1000})
            console: list[str] = []
            page.on("console", lambda m: console.append(f"{m.type}: {m.text}"))
            # A workspace of its own, reset: only this notebook open, whatever ran before.
            fresh = url.replace("/lab/tree/", "/lab/workspaces/run/tree/") + "&reset"
            page.goto(fresh.format(path=NOTEBOOK), wait_until="domcontentloaded")
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


def test_without_a_chromium_it_skips_saying_how_unless_ci(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setattr(sys.modules[__name__], "DEBIAN_CHROMIUM", str(tmp_path / "chromium"))
    monkeypatch.setenv("PATH", str(tmp_path))
    monkeypatch.delenv("NATLENS_CHROMIUM", raising=False)
    monkeypatch.delenv("CI", raising=False)
    assert find_chromium() is None
    with pytest.raises(pytest.skip.Exception, match="set NATLENS_CHROMIUM=") as skipped:
        chromium()
    assert "\n" not in str(skipped.value)
    monkeypatch.setenv("NATLENS_CHROMIUM", str(tmp_path / "nowhere"))
    with pytest.raises(pytest.fail.Exception, match=r"NATLENS_CHROMIUM=.*: no such file"):
        find_chromium()
    monkeypatch.delenv("NATLENS_CHROMIUM")
    monkeypatch.setenv("CI", "1")
    monkeypatch.setattr(sys.modules[__name__], "_running_as_root", lambda: False)
    with pytest.raises(pytest.fail.Exception, match="CI is set but no Chromium was found"):
        chromium()
    (tmp_path / "google-chrome").write_text("")
    (tmp_path / "google-chrome").chmod(0o755)
    assert find_chromium() == str(tmp_path / "google-chrome")
