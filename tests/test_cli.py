"""The command line: a newcomer's first look at the sample week."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from flowlog_formats import write_pt1h
from test_loaders import SMALL

from natlens._cli import main


def test_triage_of_the_samples_names_the_planted_spike(
    capsys: pytest.CaptureFixture[str], answer_key: dict[str, Any]
) -> None:
    assert main(["triage"]) == 0
    out = capsys.readouterr().out
    spike = next(e for e in answer_key["events"] if e["kind"] == "billing_spike")
    talkers = out.split("Top 5 talkers")[1].splitlines()
    assert talkers[2].split()[0] == spike["vm_ip"], "the uploading VM tops the talkers"
    assert f"{answer_key['dataset']['records']:,} records" in out
    spikes = out.split("Traffic spikes")[1]
    assert spike["start"][:10] in spikes


def test_triage_reports_skipped_records(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = write_pt1h(SMALL, tmp_path / "PT1H.json")
    path.write_bytes(path.read_bytes()[:-5])
    assert main(["triage", str(path)]) == 0
    out = capsys.readouterr().out
    assert "3 records" in out
    assert "skipped 1 bad records" in out


def test_triage_names_a_missing_path(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["triage", str(tmp_path / "nowhere")]) == 2
    assert "no such file or directory" in capsys.readouterr().err
