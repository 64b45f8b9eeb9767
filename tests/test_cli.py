"""The command line: a newcomer's first look at the sample week."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import polars as pl
import pytest
from flowlog_formats import write_pt1h
from test_loaders import SMALL

import natlens
from natlens._cli import main


def test_triage_of_the_samples_opens_with_health_and_names_the_planted_events(
    capsys: pytest.CaptureFixture[str], answer_key: dict[str, Any]
) -> None:
    # no source: the shipped week with its metrics and side files
    assert main(["triage"]) == 0
    out = capsys.readouterr().out
    assert out.index("== Health ==") < out.index("== Usage ==")
    snat = next(e for e in answer_key["events"] if e["kind"] == "snat_exhaustion")
    health = out.split("== Health ==")[1].split("== Usage ==")[0].replace("\n    ", " ")
    assert (
        f"[PROBLEM] {snat['gateway']}: {snat['numbers']['snat_failed_total']:,} SNAT connection "
        f"failures in {snat['numbers']['minutes_with_failed']} minute(s)"
    ) in health
    spike = next(e for e in answer_key["events"] if e["kind"] == "billing_spike")
    talkers = out.split("Top 5 sources by traffic (bytes sent + received):\n")[1].splitlines()
    assert talkers[1].split()[:2] == [spike["vm_name"], spike["vm_ip"]], "the uploader tops them"
    assert f"{answer_key['dataset']['records']:,} flow records" in out
    spikes = out.split("Spikes: runs of hours")[1]
    assert spike["start"][:10] in spikes
    assert "github.com (140.82.121.4)" in health  # hostnames label destinations


def test_triage_metrics_flag_on_sample_files(
    samples: natlens.SampleData, capsys: pytest.CaptureFixture[str], answer_key: dict[str, Any]
) -> None:
    flowlogs, metrics = str(samples.flowlogs), str(samples.metrics)
    assert main(["triage", flowlogs, "-n", "2"]) == 0
    plain = capsys.readouterr().out
    assert "[unknown] Gateway health not checked: no gateway metrics given" in plain
    assert "Top 2 sources" in plain
    assert main(["triage", flowlogs, "--metrics", metrics, "-n", "2", "--currency", "EUR"]) == 0
    out = capsys.readouterr().out.replace("\n    ", " ")
    snat = next(e for e in answer_key["events"] if e["kind"] == "snat_exhaustion")
    assert f"{snat['numbers']['snat_failed_total']:,} SNAT connection failures" in out
    assert "costs 29.43 EUR at 0.045 EUR/GB" in out


def test_triage_reports_skipped_records_the_command_line_way(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = write_pt1h(SMALL, tmp_path / "PT1H.json")
    path.write_bytes(path.read_bytes()[:-5])
    assert main(["triage", str(path)]) == 0
    captured = capsys.readouterr()
    assert "3 flow records" in captured.out
    assert "Skipped 1 bad record(s), not counted above:" in captured.out
    err = captured.err.splitlines()
    assert err[0] == "natlens triage: skipped 1 bad record(s):"
    assert err[1].startswith(f"  {path}:4: ")  # file and line
    assert "natlens.LoadReport" not in captured.out + captured.err
    problems = tmp_path / "problems.csv"
    assert main(["triage", str(path), "--problems", str(problems)]) == 0
    assert f"all 1 written to {problems}" in capsys.readouterr().err
    rows = pl.read_csv(problems)
    assert rows.columns == ["file", "line", "reason"]
    assert rows.select("file", "line").rows() == [(str(path), 4)]


def test_triage_names_a_missing_path_and_bad_options(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["triage", str(tmp_path / "nowhere")]) == 2
    assert "no such file or directory" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["triage", "-n", "0"])
    assert "argument -n: must be at least 1, got '0'" in capsys.readouterr().err
    assert main(["triage", "--metrics", str(tmp_path / "m.csv")]) == 2
    assert f"natlens triage: metrics file not found: {tmp_path / 'm.csv'}" in (
        capsys.readouterr().err
    )


def test_triage_names_a_missing_side_file_as_missing(
    tmp_path: Path, samples: natlens.SampleData, capsys: pytest.CaptureFixture[str]
) -> None:
    # A missing --allowlist was read as an allowlist of one entry, its path, and
    # refused as "not a valid IP address or CIDR".
    missing = tmp_path / "allowlist.txt"
    assert main(["triage", str(samples.flowlogs), "--allowlist", str(missing)]) == 2
    err = capsys.readouterr().err
    assert "no such file" in err.lower()
    assert str(missing) in err
    assert "not a valid IP" not in err
    # A Service Tag allowed without the tags file: the advice is a command-line option.
    allowlist = tmp_path / "tags.txt"
    allowlist.write_text("AzureActiveDirectory\n")
    assert main(["triage", str(samples.flowlogs), "--allowlist", str(allowlist)]) == 2
    err = capsys.readouterr().err
    assert "pass --service-tags FILE (Azure's Service Tags JSON) to use Service Tag names" in err
    assert "service_tags=" not in err


def test_triage_reads_the_side_files_read_data_chooses_and_passes_the_flows_as_a_path(
    tmp_path: Path,
    samples: natlens.SampleData,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    given: dict[str, Any] = {}

    def summarize(flows: Any, **kwargs: Any) -> None:
        given.update(kwargs, flows=flows)
        raise ValueError("stop here")

    monkeypatch.setattr(natlens, "summarize", summarize)
    inventory = tmp_path / "inventory.csv"
    inventory.write_text("ip,vm_name\n10.10.3.7,my-own-name\n")
    # No source: the samples, with every side file of theirs but the one given.
    assert main(["triage", "--inventory", str(inventory)]) == 2
    assert "stop here" in capsys.readouterr().err
    # Flows go to summarize as the path, unread: summarize decides how to read them.
    assert given["flows"] == samples.flowlogs
    data = natlens.read_data("samples", inventory=inventory, end="2026-11-09T00:01")
    assert given["inventory"].to_dicts() == data.inventory.to_dicts()
    assert given["metrics"].equals(natlens.read_metrics(samples.metrics))
    assert given["resolver"] == data.resolver
    assert given["service_tags"].equals(data.service_tags)
    assert given["allowlist"] == data.allowlist
    # A source given: none of the samples' side files, and no empty stand-ins either
    # (summarize says "not checked" for a missing one, not "none found").
    given.clear()
    assert main(["triage", str(samples.flowlogs)]) == 2
    assert given["flows"] == str(samples.flowlogs)
    assert [
        given[k] for k in ("metrics", "inventory", "resolver", "service_tags", "allowlist")
    ] == [None] * 5


# -- natlens lab: the command line it runs, without starting JupyterLab -----------------------


class _Exec(Exception):
    """Raised instead of replacing the test process with JupyterLab."""

    def __init__(self, command: list[str], env: dict[str, str]) -> None:
        super().__init__(command)
        self.command, self.env = command, env


def _lab(
    argv: list[str], monkeypatch: pytest.MonkeyPatch, *, root: bool
) -> tuple[list[str], dict[str, str]]:
    """Run ``natlens lab ARGV`` up to the point where it would become JupyterLab."""
    import os
    import shutil

    import natlens._lab

    def execve(path: str, command: list[str], env: dict[str, str]) -> None:
        raise _Exec(command, env)

    monkeypatch.setattr(os, "execve", execve)
    monkeypatch.setattr(natlens._lab, "_running_as_root", lambda: root)
    with pytest.raises(_Exec) as ran:
        main(["lab", *argv])
    config = ran.value.env["JUPYTER_CONFIG_PATH"].split(os.pathsep)[0]
    shutil.rmtree(config)
    return ran.value.command, ran.value.env


def test_lab_as_root_passes_allow_root_and_says_why_once(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    command, _ = _lab(["--no-browser"], monkeypatch, root=True)
    assert command.count("--allow-root") == 1
    err = capsys.readouterr().err
    why = [line for line in err.splitlines() if "root" in line]
    assert why == [
        "natlens lab: running as root (as in a container), so JupyterLab gets --allow-root"
    ]


def test_lab_as_a_user_does_not_allow_root(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    command, _ = _lab([], monkeypatch, root=False)
    assert "--allow-root" not in command
    assert "root" not in capsys.readouterr().err


def test_lab_opens_the_start_page_and_strips_outputs_on_save(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    command, env = _lab(["--port", "8123"], monkeypatch, root=False)
    assert "--LabApp.default_url=/lab/tree/00-start-here.ipynb" in command
    assert "--ContentsManager.pre_save_hook=natlens._lab.strip_outputs" in command
    assert "--LabApp.news_url=None" in command
    assert "--port=8123" in command
    assert env["JUPYTER_CONFIG_PATH"], "the config folder that disables the news prompt"


def test_lab_keep_outputs_and_extra_arguments(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    (tmp_path / "mine.ipynb").write_text("{}")
    argv = ["--keep-outputs", "--notebook-dir", str(tmp_path), "--", "--ServerApp.x=1", "--"]
    command, _ = _lab(argv, monkeypatch, root=False)
    assert not any("pre_save_hook" in arg for arg in command)
    # No start page in this folder: JupyterLab's own default page.
    assert not any("default_url" in arg for arg in command)
    assert f"--ServerApp.root_dir={tmp_path}" in command
    assert command[-2:] == ["--ServerApp.x=1", "--"], "only the separating -- is dropped"
