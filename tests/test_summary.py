"""One summary value, two renderings: what triage prints and the report renders agree."""

from __future__ import annotations

import datetime as dt
import html
import re
from collections.abc import Sequence
from typing import Any

import polars as pl
import pytest

import natlens
from natlens._report import render_report
from natlens._summary import sections

UTC = dt.UTC


def _time(text: str) -> dt.datetime:
    return dt.datetime.fromisoformat(text.replace("Z", "+00:00"))


def _event(answer_key: dict[str, Any], kind: str) -> dict[str, Any]:
    return next(e for e in answer_key["events"] if e["kind"] == kind)


@pytest.fixture(scope="module")
def metrics(samples: natlens.SampleData) -> pl.DataFrame:
    return natlens.read_metrics(samples.metrics)


@pytest.fixture(scope="module")
def summary(
    samples: natlens.SampleData, sample_flows: pl.DataFrame, metrics: pl.DataFrame
) -> natlens.FlowSummary:
    return natlens.summarize(
        sample_flows,
        metrics=metrics,
        inventory=samples.inventory,
        service_tags=samples.service_tags,
        resolver=natlens.read_hostnames(samples.hostnames),
        allowlist=samples.allowlist,
        price_per_gb=0.045,
        currency="USD",
        n=5,
    )


# -- the value -------------------------------------------------------------------------------


def test_health_holds_the_planted_snat_exhaustion(
    summary: natlens.FlowSummary, answer_key: dict[str, Any]
) -> None:
    snat = _event(answer_key, "snat_exhaustion")
    assert summary.health is not None
    by_gateway = {r["resource_id"]: r for r in summary.health.iter_rows(named=True)}
    row = by_gateway[snat["resource_id"]]
    assert row["status"] == "problem"
    assert row["snat_failed"] == snat["numbers"]["snat_failed_total"]
    assert row["snat_failed_minutes"] == snat["numbers"]["minutes_with_failed"]
    assert row["snat_failed_peak_per_minute"] == snat["numbers"]["snat_failed_peak_per_minute"]
    assert row["snat_failed_first"] == _time(snat["start"])
    assert row["snat_failed_last"] + dt.timedelta(minutes=1) == _time(snat["end"])
    # a one-minute dip to 97.31% is healthy over 15 minutes, and its window is the worst
    assert row["availability_windows_below"] == 0
    dip = _time(snat["numbers"]["datapath_availability_dip_at"])
    assert (
        row["availability_lowest_at"]
        <= dip
        < row["availability_lowest_at"] + dt.timedelta(minutes=15)
    )
    others = [r for rid, r in by_gateway.items() if rid != snat["resource_id"]]
    assert [r["status"] for r in others] == ["ok"]
    assert [r["snat_failed"] for r in others] == [0]


def test_the_value_holds_what_the_analyses_return(
    summary: natlens.FlowSummary, sample_flows: pl.DataFrame, answer_key: dict[str, Any]
) -> None:
    # ranked by bytes in both directions, as top_talkers says, and the totals are cost's
    expected = natlens.top_talkers(sample_flows, metric="bytes", n=5)
    assert summary.talkers.get_column("source_ip").to_list() == expected["source_ip"].to_list()
    assert summary.talkers.get_column("bytes").to_list() == expected["bytes"].to_list()
    total = natlens.cost(sample_flows, price_per_gb=0.045, currency="USD")
    assert summary.cost == pytest.approx(total.item(0, "cost"))
    assert summary.bytes_sent + summary.bytes_received == total.item(0, "bytes")
    assert summary.records == answer_key["dataset"]["records"]
    assert summary.destination_count == answer_key["dataset"]["destinations"]
    assert summary.start == _time(answer_key["dataset"]["start"])
    assert summary.end == _time(answer_key["dataset"]["end"])
    assert {natlens._fields.gateway_name(g) for g in summary.gateways} == {
        g["name"] for g in answer_key["dataset"]["gateways"]
    }


def test_the_spike_event_comes_first(
    summary: natlens.FlowSummary, answer_key: dict[str, Any]
) -> None:
    spike = _event(answer_key, "billing_spike")
    assert summary.spikes is not None
    first = summary.spikes.row(0, named=True)
    assert first["peak"] == _time(spike["numbers"]["peak_hour"])
    assert first["start"] <= _time(spike["start"]) < _time(spike["end"]) <= first["end"]
    assert summary.spike_detail is not None
    top = summary.spike_detail.row(0, named=True)
    assert (top["vm_name"], top["source_ip"], top["destination_ip"], top["label"]) == (
        spike["vm_name"],
        spike["vm_ip"],
        spike["destination_ips"][0],
        spike["destination_label"],
    )


def test_compliance_drops_and_new_destinations(
    summary: natlens.FlowSummary, answer_key: dict[str, Any]
) -> None:
    assert summary.violations is not None
    assert sorted(summary.violations["destination_ip"]) == answer_key["unapproved_destinations"]
    assert summary.new_destinations is not None
    assert sorted(summary.new_destinations["destination_ip"]) == sorted(
        answer_key["new_destinations_last_two_days"]
    )
    assert set(summary.new_destinations["label"]) == {"api.honeycomb.io"}
    github = _event(answer_key, "github_dropped_packets")
    top = summary.drops.row(0, named=True)
    assert (top["vm_name"], top["destination_ip"], top["label"]) == (
        github["vm_name"],
        github["destination_ips"][0],
        "github.com",
    )
    beacon = _event(answer_key, "beacon")
    assert summary.beacons.row(0, named=True)["destination_ip"] == beacon["destination_ips"][0]


def test_destination_labels_prefer_given_labels_then_hostnames_then_tags(
    samples: natlens.SampleData, sample_flows: pl.DataFrame
) -> None:
    day = sample_flows.filter(pl.col("time").dt.date() == dt.date(2026, 11, 12))
    hosts = {"github.com": ["140.82.121.4"], "blob.example": ["20.60.26.35"]}
    plain = natlens.summarize(day, service_tags=samples.service_tags, resolver=hosts, n=40)
    labels = dict(plain.destinations.select("destination_ip", "label").iter_rows())
    assert labels["140.82.121.4"] == "github.com"  # no tag covers it: the hostname
    assert labels["20.60.26.35"] == "blob.example"  # the hostname wins over Storage.WestEurope
    assert labels["20.38.108.143"] == "Storage.WestEurope"
    given = pl.DataFrame({"destination_ip": ["140.82.121.4"], "label": ["code host"]})
    ours = natlens.summarize(
        day, service_tags=samples.service_tags, resolver=hosts, labels=given, n=40
    )
    assert (
        dict(ours.destinations.select("destination_ip", "label").iter_rows())["140.82.121.4"]
        == "code host"
    )


def test_a_short_window_without_side_inputs_says_what_was_not_checked(
    sample_flows: pl.DataFrame,
) -> None:
    day = sample_flows.filter(pl.col("time").dt.date() == dt.date(2026, 11, 12))
    summary = natlens.summarize(day, n=3)
    assert summary.health is None
    assert summary.spikes is None
    assert summary.violations is None
    assert summary.new_destinations is None
    text = natlens.triage(summary)
    assert "Gateway health not checked: no gateway metrics given" in text
    assert "Spike detection needs at least two days of data." in text
    assert "No allowlist given: compliance not checked." in text
    assert "New destinations need at least three days of data." in text
    # no inventory: no vm column; no labels: no label column
    assert summary.talkers.columns[0] == "source_ip"
    assert "label" not in [
        c
        for s in sections(summary)
        for p in s.parts
        if hasattr(p, "frame")
        for c in p.frame.columns
    ]


def test_summarize_refuses_nothing_and_bad_arguments(sample_flows: pl.DataFrame) -> None:
    with pytest.raises(ValueError, match="no flow records"):
        natlens.summarize(pl.DataFrame(schema=natlens.FLOW_SCHEMA))
    with pytest.raises(ValueError, match="n: expected a positive integer"):
        natlens.summarize(sample_flows.head(10), n=0)
    with pytest.raises(ValueError, match="labels: missing column"):
        natlens.summarize(sample_flows.head(10), labels=pl.DataFrame({"ip": ["1.1.1.1"]}))


# -- gateway_health on frames built by hand ---------------------------------------------


def _metric_rows(rows: Sequence[tuple[str, str, str | None, float]]) -> pl.DataFrame:
    start = dt.datetime(2025, 3, 1, tzinfo=UTC)
    records = [
        {
            "time": start + dt.timedelta(minutes=i // 3),
            "resource_id": f"/SUBSCRIPTIONS/S/RESOURCEGROUPS/RG/PROVIDERS/X/NATGATEWAYS/{gw}",
            "metric": metric,
            "protocol": None,
            "direction": None,
            "connection_state": state,
            "value": value,
        }
        for i, (gw, metric, state, value) in enumerate(rows)
    ]
    return pl.DataFrame(records, schema=natlens.METRICS_SCHEMA)


def test_gateway_health_flags_low_availability_and_keeps_unknown_apart() -> None:
    rows = [("GW-A", "DatapathAvailability", None, 80.0)] * 45  # 15 minutes at 80%
    rows += [("GW-B", "PacketDropCount", None, 5.0)] * 3
    health = natlens.gateway_health(_metric_rows(rows))
    a, b = health.iter_rows(named=True)
    assert a["status"] == "problem"
    assert a["availability_windows_below"] == 1
    assert a["availability_lowest"] == pytest.approx(80.0)
    assert b["status"] == "unknown"
    assert b["availability_lowest"] is None
    assert b["packets_dropped"] == 15.0
    only_b = natlens.gateway_health(_metric_rows(rows), gateways="gw-b")
    assert only_b.get_column("resource_id").str.ends_with("GW-B").to_list() == [True]
    note = natlens.triage(
        natlens.summarize(
            natlens.read_flowlogs(natlens.sample_data().flowlogs).head(50),
            metrics=_metric_rows(rows),
        )
    )
    flat = note.replace("\n    ", " ")
    # no SNAT metric is unknown, but low availability makes the gateway a problem
    assert (
        "[PROBLEM] gw-a: no SNATConnectionCount metric; DatapathAvailability below 90% in 1 "
        in (flat)
    )
    assert "[unknown] gw-b: no SNATConnectionCount metric; no DatapathAvailability metric." in flat
    assert "[unknown] natgw-prod-weu: not in the metrics given; health not checked." in flat


# -- text and HTML agree ----------------------------------------------------------------------


def _text_table(text: str, caption: str) -> list[list[str]]:
    """Rows of the fixed-width table under ``caption`` in triage's text (header first)."""
    lines = text.split(f"  {caption}:\n", 1)[1].splitlines()
    table = []
    for line in lines:
        if not line.startswith("    ") or not line.strip():
            break
        table.append(re.split(r"\s{2,}", line.strip()))
    return table


def _html_table(page: str, caption: str) -> list[list[str]]:
    """Rows of the HTML table captioned ``caption`` (header first)."""
    after = page.split(f"<caption>{html.escape(caption)}</caption>", 1)[1]
    body = after.split("</table>", maxsplit=1)[0]
    header = re.findall(r"<th>(.*?)</th>", body)
    rows = [re.findall(r"<td[^>]*>(.*?)</td>", row) for row in re.findall(r"<tr>(.*?)</tr>", body)]
    return [[html.unescape(c) for c in r] for r in [header, *[r for r in rows if r]]]


def test_text_and_html_show_the_same_rows_in_the_same_units(
    summary: natlens.FlowSummary,
) -> None:
    text = natlens.triage(summary)
    page = render_report(summary, charts=False)
    tables = [p for s in sections(summary) for p in s.parts if hasattr(p, "caption")]
    assert len(tables) >= 8
    for table in tables:
        in_text = _text_table(text, table.caption)
        in_html = _html_table(page, table.caption)
        # empty cells vanish from the text split; compare the non-empty cells
        assert [[c for c in r if c] for r in in_text] == [[c for c in r if c] for r in in_html], (
            table.caption
        )
    talkers = _text_table(text, "Top 5 sources by traffic (bytes sent + received)")
    assert talkers[0][:3] == ["vm", "source", "traffic"]
    assert talkers[1][:3] == ["vm-data-04", "10.10.3.7", "123.7 GB"]
    # health opens both renderings
    assert text.index("== Health ==") < text.index("== Usage ==")
    assert page.index("<h2>Health</h2>") < page.index("<h2>Usage</h2>")
    assert "31,478 SNAT connection failures" in page
    assert "31,478 SNAT connection failures" in text.replace("\n    ", " ")
