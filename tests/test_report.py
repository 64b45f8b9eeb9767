"""The two jobs of the command line for people: ``natlens report`` and ``natlens lab``."""

from __future__ import annotations

import datetime as dt
import re
from pathlib import Path
from typing import Any

import polars as pl
import pytest

import natlens
from natlens._cli import main
from natlens._report import render_report

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
            "--metrics",
            str(samples.metrics),
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


def test_report_without_a_source_is_the_sample_week_with_its_side_files(
    full_report: str, tmp_path: Path
) -> None:
    """``natlens report`` alone, like ``natlens triage``: the samples, metrics and side files."""
    out = tmp_path / "r.html"
    assert main(["report", "-o", str(out), "--title", "Fabrikam <week>"]) == 0
    page = out.read_text(encoding="utf-8")
    for heading in ("Health", "Compliance"):
        assert _section(page, heading) == _section(full_report, heading)


def _section(page: str, heading: str) -> str:
    """The section under ``heading``, up to the next one or the page's footer (its time)."""
    body = page.split(f"<h2>{heading}</h2>")[1]
    return body.split("<h2>", maxsplit=1)[0].split("<footer>", maxsplit=1)[0]


def _rows(section: str, caption: str) -> list[list[str]]:
    table = section.split(f"<caption>{caption}")[1].split("</table>", maxsplit=1)[0]
    return [
        re.findall(r"<td[^>]*>(.*?)</td>", row) for row in re.findall(r"<tr>(<td.*?)</tr>", table)
    ]


def test_report_is_self_contained(full_report: str) -> None:
    assert full_report.startswith("<!DOCTYPE html>")
    assert "<script" not in full_report
    assert "<link" not in full_report
    # The only URLs are the SVG namespaces, never a CDN.
    urls = set(re.findall(r"https?://[^\s\"'<>)]+", full_report))
    assert urls <= {"http://www.w3.org/2000/svg", "http://www.w3.org/1999/xlink"}, urls
    # health (SNAT failures, availability), usage (traffic, top sources, heatmap), cost,
    # spikes, drops, allowlist violations
    assert full_report.count("<svg") == 9
    assert "<title>Fabrikam &lt;week&gt;</title>" in full_report
    assert full_report.count("<style>") == 1


def test_report_opens_with_health_and_the_planted_snat_exhaustion(
    full_report: str, answer_key: dict[str, Any]
) -> None:
    headings = re.findall(r"<h2>(.*?)</h2>", full_report)
    assert headings == ["Health", "Usage", "Spikes and cost", "Dropped packets", "Compliance"]
    snat = next(e for e in answer_key["events"] if e["kind"] == "snat_exhaustion")
    health = _section(full_report, "Health")
    numbers = snat["numbers"]
    start, end = (dt.datetime.fromisoformat(snat[k]) for k in ("start", "end"))
    when = "%Y-%m-%d %H:%M"
    sentence = (
        f"{snat['gateway']}: {numbers['snat_failed_total']:,} SNAT connection failures in "
        f"{numbers['minutes_with_failed']} minute(s) from {start:{when}} to {end:{when}} UTC"
    )
    assert f'<p class="natlens-problem">{sentence}' in health
    assert "Failed SNAT connections (UTC)" in health  # its chart
    gateways = {row[0]: row for row in _rows(health, "Gateway metrics")}
    assert gateways[snat["gateway"]][4] == f"{numbers['snat_failed_total']:,}"
    # the flow log's drops are part of health too, named by VM and hostname
    assert "the most on vm-build-10 (10.20.1.13) -&gt; github.com (140.82.121.4)" in health


def test_report_sections_show_the_planted_events(full_report: str) -> None:
    usage = _section(full_report, "Usage")
    # Usage and spike: the bulk upload by vm-data-04 to Storage.WestEurope, ranked by
    # bytes both ways, sizes in readable units.
    assert "Top 10 sources by traffic (bytes sent + received)" in usage
    first = _rows(usage, "Top 10 sources")[0]
    assert first[:3] == ["vm-data-04", "10.10.3.7", "123.7 GB"]
    destinations = {r[0]: r[1] for r in _rows(usage, "Top 10 destinations")}
    assert destinations["20.60.26.45"] == "Storage.WestEurope"
    assert destinations["140.82.121.4"] == "github.com"  # --hostnames labels destinations
    # Drops: the github.com connection of vm-build-10.
    drops = _rows(_section(full_report, "Dropped packets"), "Pairs with dropped packets")
    assert drops[0][:5] == ["vm-build-10", "10.20.1.13", "140.82.121.4", "github.com", "81,443"]
    # Compliance: the two unapproved destinations, the beacon, the exfiltration, the new one.
    compliance = _section(full_report, "Compliance")
    assert "2 source/destination pair(s) reach destinations not on the allowlist" in compliance
    for ip in ("203.0.113.45", "198.51.100.23", "34.249.67.219"):
        assert f"<td>{ip}</td>" in compliance
    beacon = _rows(compliance, "Beacon candidates")[0]
    assert beacon[:4] == ["vm-corp-04", "10.20.3.7", "198.51.100.23", ""]
    assert beacon[4] == "1,689"
    new = _rows(compliance, "Destinations first seen since 2026-11-14 00:00 UTC")
    assert {r[1] for r in new} == {"api.honeycomb.io"}


def test_report_shows_spikes_as_events_from_find_spikes(
    full_report: str, sample_flows: pl.DataFrame, answer_key: dict[str, Any]
) -> None:
    spike = next(e for e in answer_key["events"] if e["kind"] == "billing_spike")
    section = _section(full_report, "Spikes and cost")
    rows = _rows(section, "Spikes: runs of hours")
    events = natlens.find_spikes(sample_flows, price_per_gb=0.045, currency="USD")
    assert len(rows) == events.height  # one row per event, not per hour
    cells = rows[0]
    # The planted upload (13:12-18:42) is the first row: one event over the hours it
    # touches (13:00-19:00), its peak hour.
    start = dt.datetime.fromisoformat(spike["start"]).replace(minute=0)
    end = dt.datetime.fromisoformat(spike["end"]).replace(minute=0) + dt.timedelta(hours=1)
    peak = dt.datetime.fromisoformat(spike["numbers"]["peak_hour"])
    when = "%Y-%m-%d %H:%M"
    hours = str((end - start) // dt.timedelta(hours=1))
    assert cells[:4] == [f"{start:{when}}", f"{end:{when}}", hours, f"{peak:{when}}"]
    assert cells[4] == f"{spike['numbers']['peak_hour_org_gb']:.1f} GB"
    assert cells[7] == f"{events.item(0, 'extra_cost'):.2f} USD"
    # The whole event window is explained, not just its peak hour.
    explained = _rows(section, f"What the largest spike, {start:{when}} to {end:{when}} UTC")
    assert explained[0][:4] == [
        spike["vm_name"],
        spike["vm_ip"],
        spike["destination_ips"][0],
        spike["destination_label"],
    ]
    # The cost chart and the chart that shades the event windows.
    assert section.count("<svg") == 2


def test_report_cost_matches_the_analysis(full_report: str, sample_flows: pl.DataFrame) -> None:
    total = re.search(r"Data processing at 0.045 USD/GB: ([\d,.]+) USD for the period", full_report)
    assert total is not None
    expected = natlens.cost(sample_flows, price_per_gb=0.045, currency="USD").item(0, "cost")
    assert float(total.group(1).replace(",", "")) == pytest.approx(expected, abs=0.005)


def test_report_without_side_inputs_says_what_was_not_checked(
    sample_flows: pl.DataFrame, tmp_path: Path
) -> None:
    days = sample_flows.filter(pl.col("time") < dt.datetime(2026, 11, 11, tzinfo=dt.UTC))
    out = natlens.write_report(natlens.summarize(days), tmp_path / "sub" / "days.html")
    text = out.read_text()
    assert '<p class="natlens-unknown">Gateway health not checked: no gateway metrics' in text
    assert "No allowlist given: compliance not checked." in text
    assert "New destinations need at least three days of data." in text
    assert "<td>140.82.121.4</td><td>35.9" not in text  # no labels without side inputs
    day = sample_flows.filter(pl.col("time").dt.date() == pl.date(2026, 11, 12))
    page = render_report(natlens.summarize(day), charts=False)
    assert "Spike detection needs at least two days of data." in page
    assert "<td>140.82.121.4</td>" in page


def test_report_errors_speak_command_line(
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
    assert err.startswith("natlens report: ")
    assert "'github.com' is a hostname; pass --hostnames FILE" in err
    assert "resolver" not in err
    assert "natlens.read_hostnames" not in err
    assert not (tmp_path / "r.html").exists()
    with pytest.raises(SystemExit):
        main(["report", str(samples.flowlogs), "--price-per-gb", "-1"])
    assert "--price-per-gb: must be a number of at least 0, got '-1'" in capsys.readouterr().err
    with pytest.raises(ValueError, match="no flow records"):
        natlens.summarize(pl.DataFrame(schema=natlens.FLOW_SCHEMA))
