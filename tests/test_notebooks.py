"""Every notebook runs top to bottom on the samples (nbclient, the project's kernel, no
network) and finds the planted answers of ``answer_key.json``.

Each notebook ends with a "What we found" cell printing a JSON ``findings`` object built
from natlens calls; the tests compare it with the answer key.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import re
import sys
from pathlib import Path
from typing import Any

import nbformat
import pytest
from nbclient import NotebookClient

NOTEBOOKS = Path(__file__).resolve().parent.parent / "notebooks"
ALL = sorted(p for p in NOTEBOOKS.rglob("*.ipynb") if ".ipynb_checkpoints" not in p.parts)
MAIN = [
    "01-troubleshoot-outbound.ipynb",
    "02-usage-analytics.ipynb",
    "03-billing-spike.ipynb",
    "04-security-audit.ipynb",
]


def _id(path: Path) -> str:
    return str(path.relative_to(NOTEBOOKS))


def test_the_notebooks_are_all_there() -> None:
    names = {_id(p) for p in ALL}
    assert set(MAIN) <= names
    assert {"00-start-here.ipynb", "workshop/exercises.ipynb", "workshop/solutions.ipynb"} <= names


def test_the_start_page_links_every_notebook() -> None:
    nb = nbformat.read(NOTEBOOKS / "00-start-here.ipynb", as_version=4)
    assert [c.cell_type for c in nb.cells] == ["markdown"], "an index to read, nothing to run"
    links = re.findall(r"\]\(([^)\s]+)\)", nb.cells[0].source)
    others = {_id(p) for p in ALL} - {"00-start-here.ipynb"}
    assert sorted(links) == sorted(others), "each notebook and the workshop, once"
    for link in links:
        assert (NOTEBOOKS / link).is_file(), link


@pytest.mark.parametrize("path", ALL, ids=_id)
def test_stored_without_outputs(path: Path) -> None:
    nb = nbformat.read(path, as_version=4)
    nbformat.validate(nb)
    for index, cell in enumerate(nb.cells):
        if cell.cell_type == "code":
            assert cell.outputs == [], f"{_id(path)} cell {index} has stored outputs"
            assert cell.execution_count is None, f"{_id(path)} cell {index} has a count"


IPV4 = re.compile(r"\b\d{1,3}(?:\.\d{1,3}){3}\b")
DATE = re.compile(r"\b20\d\d-\d\d-\d\d")
NAMED = re.compile(r"github\.com|npmjs|vm-[a-z]+-\d|Storage\.WestEurope|Fabrikam")


@pytest.mark.parametrize("name", MAIN)
def test_one_cell_switches_to_your_data(name: str) -> None:
    nb = nbformat.read(NOTEBOOKS / name, as_version=4)
    code = [c for c in nb.cells if c.cell_type == "code"]
    (data,) = [c for c in code if "YOUR DATA" in c.source]
    # Samples by default; a folder, a sync cache or Log Analytics by changing one value.
    assert 'DATA = "samples"' in data.source
    assert 'DATA = "log-analytics"' in data.source
    assert "LIVE AZURE DATA" in data.source
    # One library call chooses; the cell does not read each source itself.
    assert "natlens.read_data(\n    DATA," in data.source
    for loader in ("read_flowlogs(", "read_log_analytics(", "sample_data(", "read_metrics("):
        assert loader not in data.source, f"{name}: {loader} in the data cell, not read_data"
    below = nb.cells[nb.cells.index(data) + 1 :]
    for cell in code:
        if cell is not data:
            for loader in ("read_data(", "read_log_analytics", "sample_data(", "samples."):
                assert loader not in cell.source, f"{name}: {loader} outside the data cell"
    # Nothing further down names the sample week's addresses, dates, hosts or VMs: they
    # follow from the data cell or from the data (verdicts are computed, not typed).
    for cell in below:
        text = cell.source
        if cell.cell_type == "code" and '"notebook":' in text:
            continue  # the findings the tests compare with the answer key
        for pattern in (IPV4, DATE, NAMED):
            found = pattern.findall(text)
            assert not found, f"{name}: {found} in {cell.cell_type} cell {text[:80]!r}"


@pytest.mark.parametrize("path", ALL, ids=_id)
def test_cites_the_projects_or_microsofts_docs(path: Path) -> None:
    text = path.read_text()
    assert "domain.md" not in text, "a file that is not in the project"


def _run(path: Path, workdir: Path, monkeypatch: pytest.MonkeyPatch) -> nbformat.NotebookNode:
    """Execute a notebook with the interpreter running the tests as its kernel."""
    bindir = str(Path(sys.executable).parent)
    monkeypatch.setenv("PATH", bindir + os.pathsep + os.environ.get("PATH", ""))
    nb = nbformat.read(path, as_version=4)
    # Widget state is not stored, as JupyterLab saves a notebook by default.
    client = NotebookClient(
        nb,
        timeout=240,
        kernel_name="python3",
        store_widget_state=False,
        resources={"metadata": {"path": str(workdir)}},
    )
    client.execute()
    executed: nbformat.NotebookNode = nb
    return executed


def _findings(nb: nbformat.NotebookNode, name: str) -> dict[str, Any]:
    errors = [
        f"{o.ename}: {o.evalue}"
        for c in nb.cells
        if c.cell_type == "code"
        for o in c.outputs
        if o.output_type == "error"
    ]
    assert not errors, f"{name}: {errors}"
    for cell in reversed(nb.cells):
        for output in cell.get("outputs", []):
            if output.output_type == "stream" and '"notebook"' in output.text:
                found: dict[str, Any] = json.loads(output.text)
                return found
    raise AssertionError(f"{name}: no findings printed")


STATIC = ("image/svg+xml", "image/png")
WIDGET = "application/vnd.jupyter.widget-view+json"


def _exported(nb: nbformat.NotebookNode, name: str) -> str:
    """Export an executed notebook to HTML as it is shared; check it reads without widgets."""
    from nbconvert import HTMLExporter

    body, _ = HTMLExporter().from_notebook_node(nb)  # type: ignore[no-untyped-call]
    assert len(body) < 1_000_000, f"{name}: exported HTML is {len(body):,} bytes"
    assert "JupyterChart object at" not in body
    for index, cell in enumerate(nb.cells):
        if cell.cell_type != "code":
            continue
        shown = [o.get("data", {}) for o in cell.outputs if o.get("data")]
        for data in shown:
            # Every live widget carries a static rendering a browser shows without it.
            if WIDGET in data:
                assert any(k in data for k in (*STATIC, "text/html")), f"{name} cell {index}"
        if re.search(r"^nc\.chart_\w+\(", cell.source, re.MULTILINE):
            assert any(k in data for data in shown for k in STATIC), f"{name} cell {index}"
    charts = sum(1 for c in nb.cells if re.search(r"^nc\.chart_", c.source, re.MULTILINE))
    pictures = len(re.findall(r"class=\"jp-Rendered(?:SVG|Image) jp-OutputArea-output", body))
    assert pictures >= charts, f"{name}: {pictures} pictures for {charts} charts"
    return body


@pytest.fixture(scope="module")
def events(answer_key: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {e["kind"]: e for e in answer_key["events"]}


def test_01_troubleshoot_outbound(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, events: dict[str, dict[str, Any]]
) -> None:
    nb = _run(NOTEBOOKS / MAIN[0], tmp_path, monkeypatch)
    found = _findings(nb, MAIN[0])
    _exported(nb, MAIN[0])
    github = events["github_dropped_packets"]
    assert found["github_verdict"] == "rate_limited"
    assert found["github_drops_vm"] == github["vm_ip"]
    assert found["github_drops_destination"] == github["destination_ips"][0]
    assert found["github_records_with_drops"] == github["numbers"]["records_with_drops"]
    assert found["github_packets_received_dropped"] == github["numbers"]["packets_received_dropped"]
    assert found["github_packets_sent_dropped"] == github["numbers"]["packets_sent_dropped"]
    assert found["npm_verdict"] == "snat_exhaustion"
    assert found["widget_verdict"] == "rate_limited"
    # The widgets and charts were displayed as widget views.
    views = [
        o
        for c in nb.cells
        for o in c.get("outputs", [])
        if "application/vnd.jupyter.widget-view+json" in o.get("data", {})
    ]
    assert len(views) >= 5


def test_02_usage_analytics(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    events: dict[str, dict[str, Any]],
    answer_key: dict[str, Any],
) -> None:
    nb = _run(NOTEBOOKS / MAIN[1], tmp_path, monkeypatch)
    found = _findings(nb, MAIN[1])
    body = _exported(nb, MAIN[1])
    # Tables read in units, not 118616767058 or 0.189142.
    assert re.search(r"<td>[\d.]+ GB</td>", body)
    assert re.search(r"<td>[\d.]+ %</td>", body)
    spike = events["billing_spike"]
    assert found["top_vm"] == spike["vm_name"]
    assert found["top_vm_ip"] == spike["vm_ip"]
    assert found["top_destination_service_tag"] == spike["destination_label"]
    public = sorted(ip for g in answer_key["dataset"]["gateways"] for ip in g["public_ips"])
    assert found["nat_ips"] == public
    assert found["busiest_day"] == spike["start"][:10]
    assert found["days"] == answer_key["dataset"]["days"]


def test_03_billing_spike(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, events: dict[str, dict[str, Any]]
) -> None:
    nb = _run(NOTEBOOKS / MAIN[2], tmp_path, monkeypatch)
    found = _findings(nb, MAIN[2])
    _exported(nb, MAIN[2])
    spike = events["billing_spike"]
    assert found["spike_day"] == spike["start"][:10]
    # The largest spike is the whole upload as one event: the hours it touches.
    hour = dt.timedelta(hours=1)
    start, end = (dt.datetime.fromisoformat(spike[k]) for k in ("start", "end"))
    event_start, event_end = (
        dt.datetime.fromisoformat(found[k]) for k in ("spike_start", "spike_end")
    )
    assert event_start <= start < event_start + hour
    assert event_end - hour < end <= event_end
    assert found["extra_cost"] == pytest.approx(
        spike["numbers"]["cost_usd_at_0_045_per_gb"], rel=0.02
    )
    # The notebook calls the library for the events; it does not find runs of hours itself.
    code = "\n".join(c.source for c in nb.cells if c.cell_type == "code")
    assert "natlens.find_spikes(" in code
    assert "cum_sum" not in code
    assert "shift(" not in code
    assert found["peak_hour"] == spike["numbers"]["peak_hour"]
    assert found["peak_hour_gb"] == pytest.approx(spike["numbers"]["peak_hour_org_gb"], abs=0.1)
    assert found["culprit_vm"] == spike["vm_name"]
    assert found["culprit_ip"] == spike["vm_ip"]
    assert found["destination_ip"] == spike["destination_ips"][0]
    assert found["destination_label"] == spike["destination_label"]
    assert found["delta_cost"] == pytest.approx(
        spike["numbers"]["cost_usd_at_0_045_per_gb"], abs=0.05
    )


def test_04_security_audit(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    events: dict[str, dict[str, Any]],
    answer_key: dict[str, Any],
) -> None:
    # The export goes to a new temporary folder, never next to the notebook.
    (tmp_path / "tmp").mkdir()
    monkeypatch.setenv("TMPDIR", str(tmp_path / "tmp"))
    workdir = tmp_path / "work"
    workdir.mkdir()
    nb = _run(NOTEBOOKS / MAIN[3], workdir, monkeypatch)
    found = _findings(nb, MAIN[3])
    _exported(nb, MAIN[3])
    assert found["unapproved_destinations"] == sorted(answer_key["unapproved_destinations"])
    assert found["new_destinations"] == sorted(answer_key["new_destinations_last_two_days"])
    beacon, upload = events["beacon"], events["unapproved_destination"]
    assert found["beacon_vm"] == beacon["vm_name"]
    assert found["beacon_destination"] == beacon["destination_ips"][0]
    assert found["beacon_interval_minutes"] == beacon["numbers"]["median_gap_minutes"]
    assert found["exfiltration_vm"] == upload["vm_name"]
    assert found["exfiltration_destination"] == upload["destination_ips"][0]
    assert list(workdir.iterdir()) == [], "the notebook wrote next to itself"
    (out,) = (tmp_path / "tmp").glob("natlens-audit-*")
    said = [o.text for c in nb.cells for o in c.get("outputs", []) if o.get("name") == "stdout"]
    assert any(t.startswith(f"audit written to {out}:") for t in said), "it says where"
    report = out / "audit-report.html"
    assert found["report_written"]
    text = report.read_text()
    assert "<svg" in text
    assert "<script" not in text
    assert (out / "allowlist-violations.csv").exists()


@pytest.mark.parametrize(
    ("name", "verdict"),
    [("solutions", "correct"), ("exercises", "not answered yet")],
)
def test_workshop(name: str, verdict: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = NOTEBOOKS / "workshop" / f"{name}.ipynb"
    found = _findings(_run(path, tmp_path, monkeypatch), name)
    assert found["notebook"] == f"workshop-{name}"
    assert len(found["results"]) >= 6
    assert set(found["results"].values()) == {verdict}, found["results"]


def _check_cell(name: str) -> str:
    nb = nbformat.read(NOTEBOOKS / "workshop" / f"{name}.ipynb", as_version=4)
    return str(nb.cells[-1].source)


@pytest.mark.parametrize("name", ["exercises", "solutions"])
def test_workshop_does_not_show_the_answers(name: str, answer_key: dict[str, Any]) -> None:
    text = (NOTEBOOKS / "workshop" / f"{name}.ipynb").read_text()
    assert "answer_key" not in text
    check = _check_cell(name)
    events = {e["kind"]: e for e in answer_key["events"]}
    for answer in (
        events["billing_spike"]["vm_name"],
        events["beacon"]["vm_name"],
        events["github_dropped_packets"]["vm_ip"],
        "snat_exhaustion",
        *answer_key["unapproved_destinations"],
    ):
        assert answer not in check, f"{answer!r} in plain view"


def test_workshop_check_gives_hints(
    answer_key: dict[str, Any], capsys: pytest.CaptureFixture[str]
) -> None:
    # Run the check cell alone: one right answer, one wrong, the rest unanswered.
    events = {e["kind"]: e for e in answer_key["events"]}
    namespace: dict[str, Any] = {
        "json": json,
        "NOTEBOOK": "workshop-exercises",
        "answer_top_vm": events["billing_spike"]["vm_name"].upper(),
        "answer_beacon_vm": "vm-nobody-01",
    }
    exec(_check_cell("exercises"), namespace)
    shown = json.loads(capsys.readouterr().out)
    assert shown["results"]["answer_top_vm"] == "correct"
    assert shown["results"]["answer_beacon_vm"] == "not quite"
    assert "find_beacons" in shown["hints"]["answer_beacon_vm"]
    assert shown["results"]["answer_npm_verdict"] == "not answered yet"
    assert set(shown["hints"]) == {"answer_beacon_vm"}
