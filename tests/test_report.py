"""The two jobs of the command line for people: ``natlens report`` and ``natlens lab``."""

from __future__ import annotations

import datetime as dt
import json
import os
import re
import secrets
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Any

import polars as pl
import pytest

import natlens
from natlens._cli import main
from natlens._lab import lab_command, notebooks_dir

# -- natlens report ----------------------------------------------------------------------


@pytest.fixture(scope="module")
def full_report(samples: natlens.SampleData, tmp_path_factory: pytest.TempPathFactory) -> str:
    out = tmp_path_factory.mktemp("report") / "report.html"
    code = main(
        [
            "report",
            str(samples.flowlogs),
            "-o",
            str(out),
            "--inventory",
            str(samples.inventory),
            "--allowlist",
            str(samples.allowlist),
            "--service-tags",
            str(samples.service_tags),
            "--hostnames",
            str(samples.hostnames),
            "--price-per-gb",
            "0.045",
            "--title",
            "Fabrikam <week>",
        ]
    )
    assert code == 0
    return out.read_text(encoding="utf-8")


def test_report_is_self_contained(full_report: str) -> None:
    assert full_report.startswith("<!DOCTYPE html>")
    assert "<script" not in full_report
    assert "<link" not in full_report
    # The only URLs are the SVG namespaces, never a CDN.
    urls = set(re.findall(r"https?://[^\s\"'<>)]+", full_report))
    assert urls <= {"http://www.w3.org/2000/svg", "http://www.w3.org/1999/xlink"}, urls
    assert full_report.count("<svg") == 7
    assert "<title>Fabrikam &lt;week&gt;</title>" in full_report


def test_report_sections_show_the_planted_events(
    full_report: str,
) -> None:
    for heading in ("Usage", "Spikes and cost", "Dropped packets", "Compliance"):
        assert f"<h2>{heading}</h2>" in full_report
    # Usage and spike: the bulk upload by vm-data-04 to Storage.WestEurope.
    assert "<td>vm-data-04</td><td>10.10.3.7</td>" in full_report
    assert "<td>20.60.26.45</td><td>Storage.WestEurope</td>" in full_report
    assert "2026-11-10 14:00" in full_report
    # Drops: the github.com connection of vm-build-10.
    assert "<td>vm-build-10</td><td>10.20.1.13</td><td>140.82.121.4</td><td>81,443</td>" in (
        full_report
    )
    # Compliance: the two unapproved destinations, the beacon, the exfiltration.
    assert "2 source/destination pair(s) reach destinations not on the allowlist" in full_report
    for ip in ("203.0.113.45", "198.51.100.23", "34.249.67.219"):
        assert f"<td>{ip}</td>" in full_report
    assert "<td>vm-corp-04</td><td>10.20.3.7</td><td>198.51.100.23</td><td>1,689</td>" in (
        full_report
    )


def test_report_shows_spikes_as_events_from_find_spikes(
    full_report: str, sample_flows: pl.DataFrame, answer_key: dict[str, Any]
) -> None:
    spike = next(e for e in answer_key["events"] if e["kind"] == "billing_spike")
    section = full_report.split("<h2>Spikes and cost</h2>")[1].split("<h2>", maxsplit=1)[0]
    table = section.split("<caption>Spikes: runs of hours")[1].split("</table>")[0]
    rows = re.findall(r"<tr><td>(.*?)</td></tr>", table)
    events = natlens.find_spikes(sample_flows, price_per_gb=0.045, currency="USD")
    assert len(rows) == events.height  # one row per event, not per hour
    cells = rows[0].split("</td><td>")
    # The planted upload (13:12-18:42) is the first row: one event over the hours it
    # touches (13:00-19:00), its peak hour.
    start = dt.datetime.fromisoformat(spike["start"]).replace(minute=0)
    end = dt.datetime.fromisoformat(spike["end"]).replace(minute=0) + dt.timedelta(hours=1)
    peak = dt.datetime.fromisoformat(spike["numbers"]["peak_hour"])
    when = "%Y-%m-%d %H:%M"
    hours = str((end - start) // dt.timedelta(hours=1))
    assert cells[:4] == [f"{start:{when}}", f"{end:{when}}", hours, f"{peak:{when}}"]
    assert float(cells[4]) == pytest.approx(spike["numbers"]["peak_hour_org_gb"], abs=0.05)
    assert float(cells[7]) == pytest.approx(events.item(0, "extra_cost"), abs=0.005)
    # The whole event window is explained, not just its peak hour.
    assert f"What the largest spike, {start:{when}} to {end:{when}} UTC" in section
    explained = section.split("carried beyond the usual</caption>")[1]
    first = re.search(r"<tbody><tr><td>(.*?)</td></tr>", explained)
    assert first is not None
    assert first.group(1).split("</td><td>")[:4] == [
        spike["vm_name"],
        spike["vm_ip"],
        spike["destination_ips"][0],
        spike["destination_label"],
    ]
    # The chart shades the event windows.
    assert section.count("<svg") == 2


def test_report_cost_matches_the_analysis(full_report: str, sample_flows: pl.DataFrame) -> None:
    total = re.search(r"<b>([\d,.]+) USD</b> for the period", full_report)
    assert total is not None
    expected = natlens.cost(sample_flows, price_per_gb=0.045, currency="USD").item(0, "cost")
    assert float(total.group(1).replace(",", "")) == pytest.approx(expected, abs=0.01)


def test_report_without_allowlist_on_a_short_window(
    sample_flows: pl.DataFrame, tmp_path: Path
) -> None:
    day = sample_flows.filter(pl.col("time").dt.date() == pl.date(2026, 11, 12))
    out = natlens.write_report(day, tmp_path / "sub" / "day.html")
    text = out.read_text()
    assert "No allowlist given: compliance not checked." in text
    assert "Spike detection needs at least two days of data." in text
    assert "<td>140.82.121.4</td>" in text


def test_report_errors_name_the_problem(
    samples: natlens.SampleData, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    missing = tmp_path / "nope"
    assert main(["report", str(missing), "-o", str(tmp_path / "r.html")]) == 2
    assert str(missing) in capsys.readouterr().err
    code = main(
        [
            "report",
            str(samples.flowlogs),
            "-o",
            str(tmp_path / "r.html"),
            "--allowlist",
            str(samples.allowlist),
            "--service-tags",
            str(samples.service_tags),
        ]
    )
    assert code == 2
    err = capsys.readouterr().err
    assert "natlens report:" in err
    assert "github.com" in err
    assert "resolver" in err
    assert not (tmp_path / "r.html").exists()
    with pytest.raises(ValueError, match="no flow records"):
        natlens.write_report(pl.DataFrame(schema=natlens.FLOW_SCHEMA), tmp_path / "e.html")


# -- natlens lab -------------------------------------------------------------------------


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


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def test_natlens_lab_serves_the_notebooks(tmp_path: Path) -> None:
    port, token = _free_port(), secrets.token_hex(8)
    extra = ["--", f"--IdentityProvider.token={token}", "--ip=127.0.0.1"]
    if os.geteuid() == 0:
        extra.append("--allow-root")
    env = dict(os.environ, JUPYTER_RUNTIME_DIR=str(tmp_path / "runtime"))
    lab = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "from natlens._cli import main; raise SystemExit(main())",
            "lab",
            "--no-browser",
            "--port",
            str(port),
            *extra,
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env=env,
    )
    try:
        deadline = time.monotonic() + 60
        url = f"http://127.0.0.1:{port}/api/contents?token={token}"
        while True:
            try:
                with urllib.request.urlopen(url, timeout=2) as response:
                    listing = json.load(response)
                break
            except OSError:
                assert lab.poll() is None, "natlens lab exited early"
                assert time.monotonic() < deadline, "JupyterLab did not answer within 60 s"
                time.sleep(0.3)
        names = {item["name"] for item in listing["content"]}
        assert {"01-troubleshoot-outbound.ipynb", "workshop"} <= names
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/lab?token={token}", timeout=5) as r:
            assert b"JupyterLab" in r.read()
    finally:
        lab.send_signal(signal.SIGTERM)
        try:
            lab.wait(timeout=15)
        except subprocess.TimeoutExpired:
            lab.kill()
            lab.wait()
