"""Chart helpers, tested on their Vega-Lite specs (``to_dict()``), not on pixels."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Any

import altair as alt
import polars as pl
import pytest

import natlens
import natlens.charts as nc

START = dt.datetime(2026, 11, 9, tzinfo=dt.UTC)


def _walk(node: Any) -> list[dict[str, Any]]:
    """Every dict inside a spec."""
    found: list[dict[str, Any]] = []
    if isinstance(node, dict):
        found.append(node)
        for value in node.values():
            found.extend(_walk(value))
    elif isinstance(node, list):
        for value in node:
            found.extend(_walk(value))
    return found


def _rows(spec: dict[str, Any]) -> list[dict[str, Any]]:
    """All embedded data rows of a spec (top-level datasets)."""
    return [row for rows in spec.get("datasets", {}).values() for row in rows]


def _tooltips(spec: dict[str, Any]) -> list[str]:
    titles: list[str] = []
    for node in _walk(spec):
        tooltip = node.get("tooltip")
        if isinstance(tooltip, list):
            titles.extend(t.get("title", t.get("field")) for t in tooltip)
    return titles


@pytest.fixture(scope="module")
def inventory(samples: natlens.SampleData) -> pl.DataFrame:
    return natlens.read_inventory(samples.inventory)


@pytest.fixture(scope="module")
def big_flows() -> pl.DataFrame:
    """Ten million synthetic records over a week: 8,000 sources, ~60,000 destinations."""
    n = 10_000_000
    i = pl.int_range(0, n, dtype=pl.Int64)
    return pl.select(
        (pl.lit(START) + pl.duration(minutes=i // 1000)).dt.cast_time_unit("us").alias("time"),
        pl.format("10.0.{}.{}", (i % 7919) // 250, (i % 250) + 1).alias("source_ip"),
        pl.format("140.82.{}.{}", (i % 104729) // 250 % 250, (i % 13) + 1).alias("destination_ip"),
        pl.format("20.61.15.{}", (i % 3) + 40).alias("nat_gateway_ip"),
        (i % 97).alias("packets_sent"),
        (i % 89).alias("packets_received"),
        ((i % 1000) == 0).cast(pl.Int64).alias("packets_sent_dropped"),
        pl.lit(0, pl.Int64).alias("packets_received_dropped"),
        (i % 100_003).alias("bytes_sent"),
        (i % 50_021).alias("bytes_received"),
        pl.lit("/SUBSCRIPTIONS/S/NATGATEWAYS/GW").alias("resource_id"),
    ).cast(dict(natlens.FLOW_SCHEMA))  # type: ignore[arg-type]


def test_ten_million_records_embed_a_few_thousand_rows(big_flows: pl.DataFrame) -> None:
    assert big_flows.height == 10_000_000
    for chart in (
        nc.chart_traffic_over_time(big_flows, every="1h", n=5),
        nc.chart_heatmap(big_flows),
        nc.chart_flow_map(big_flows, top=8),
    ):
        spec = chart.to_dict()
        rows = nc.embedded_rows(chart)
        assert 0 < rows <= 3_000
        assert len(json.dumps(spec)) < 1_000_000
    # A week by hour: 7 x 24 buckets, six series (five + other).
    assert nc.embedded_rows(nc.chart_traffic_over_time(big_flows, every="1h", n=5)) <= 7 * 24 * 6


def test_traffic_over_time_top_n_plus_other_with_vm_names(
    sample_flows: pl.DataFrame, inventory: pl.DataFrame
) -> None:
    chart = nc.chart_traffic_over_time(sample_flows, n=3, every="1h", inventory=inventory)
    spec = chart.to_dict()
    rows = _rows(spec)
    series = {r["series"] for r in rows}
    assert "vm-data-04 (10.10.3.7)" in series
    assert "other" in series
    assert len(series) == 4
    assert spec["mark"]["type"] == "area"
    assert spec["encoding"]["y"]["stack"] == "zero"
    assert spec["encoding"]["y"]["title"] == "traffic per 1h (GB)"
    assert "time (UTC)" in _tooltips(spec)
    # Tooltips show human units.
    assert any(r["value_text"].endswith(" GB") for r in rows)
    # The stacked total per hour is the organisation's traffic in that hour.
    peak = max(sum(r["value"] for r in rows if r["time"] == t) for t in {r["time"] for r in rows})
    hourly = natlens.traffic_over_time(sample_flows, every="1h")
    assert peak == pytest.approx(hourly.get_column("bytes").max() / 1e9)  # type: ignore[operator]
    # "other" is drawn grey.
    scale = spec["encoding"]["color"]["scale"]
    assert scale["range"][scale["domain"].index("other")] == "#bab0ac"


def test_traffic_over_time_brush_and_metrics(sample_flows: pl.DataFrame) -> None:
    chart = nc.chart_traffic_over_time(sample_flows, by=None, metric="flows", brush=True)
    spec = chart.to_dict()
    assert spec["params"][0]["name"] == "brush"
    assert spec["params"][0]["select"]["type"] == "interval"
    assert spec["encoding"]["y"]["title"] == "flow records per 1h (flow records)"
    assert sum(r["value"] for r in _rows(spec)) == sample_flows.height
    with pytest.raises(ValueError, match="metric must be one of"):
        nc.chart_traffic_over_time(sample_flows, metric="octets")  # type: ignore[arg-type]


def test_top_bars_split_by_direction(sample_flows: pl.DataFrame, inventory: pl.DataFrame) -> None:
    table = natlens.top_talkers(sample_flows, n=5, by="bytes")
    spec = nc.chart_top(table, inventory=inventory).to_dict()
    rows = _rows(spec)
    assert {r["direction"] for r in rows} == {"sent", "received"}
    assert spec["encoding"]["y"]["sort"][0] == "vm-data-04 (10.10.3.7)"
    assert spec["title"] == "Top 5 sources by traffic"
    top = table.row(0, named=True)
    sent = next(r for r in rows if r["label"].endswith("(10.10.3.7)") and r["direction"] == "sent")
    assert sent["value"] == pytest.approx(top["bytes_sent"] / 1e9)
    with pytest.raises(ValueError, match="top_talkers/top_destinations"):
        nc.chart_top(pl.DataFrame({"x": [1]}))


def test_top_destinations_with_labels(sample_flows: pl.DataFrame) -> None:
    table = natlens.top_destinations(sample_flows, n=3, by="bytes")
    spec = nc.chart_top(table, labels={"20.60.26.45": "Storage.WestEurope"}).to_dict()
    assert spec["encoding"]["y"]["sort"][0] == "Storage.WestEurope (20.60.26.45)"
    spec = nc.chart_top(table, metric="flows").to_dict()
    # Re-ranked by the chart's metric.
    expected = sorted(table.get_column("records").to_list(), reverse=True)
    assert [r["value"] for r in _rows(spec)] == expected


def test_flow_map_three_columns(sample_flows: pl.DataFrame, inventory: pl.DataFrame) -> None:
    chart = nc.chart_flow_map(sample_flows, top=4, inventory=inventory)
    spec = chart.to_dict()
    links, labels = spec["layer"]
    data = spec["datasets"]
    nodes = data[labels["data"]["name"]]
    edges = data[links["data"]["name"]]
    columns = {n["column"] for n in nodes}
    assert columns == {0, 1, 2}
    names = {n["label"] for n in nodes}
    assert "vm-data-04 (10.10.3.7)" in names
    assert {"20.61.15.40", "51.124.20.7"} <= names
    # Every edge has two ends; the bytes leaving the sources equal the bytes arriving at
    # the destinations (each flow passes one NAT IP).
    assert len(edges) % 2 == 0
    left = sum(e["value"] for e in edges if e["x"] == 0)
    right = sum(e["value"] for e in edges if e["x"] == 2)
    assert left == pytest.approx(right)


def test_drops_over_time(sample_flows: pl.DataFrame, inventory: pl.DataFrame) -> None:
    pair = natlens.find_flows(sample_flows, source="10.20.1.13", destination="140.82.121.4")
    spec = nc.chart_drops_over_time(pair, every="1h", inventory=inventory).to_dict()
    rows = _rows(spec)
    assert sum(r["dropped"] for r in rows) == 8595 + 72848
    assert {r["series"] for r in rows} == {"vm-build-10 (10.20.1.13)"}
    assert spec["mark"]["color"] == "#e45756"


def test_spike_band_and_annotation(sample_flows: pl.DataFrame) -> None:
    hours = natlens.score_traffic(sample_flows)
    spec = nc.chart_spike(hours).to_dict()
    assert len(spec["layer"]) == 4
    band = spec["layer"][0]
    assert band["mark"]["type"] == "area"
    assert band["encoding"]["y2"]["field"] == "high"
    rows = spec["datasets"][spec["data"]["name"]] if "data" in spec else _rows(spec)
    assert all(r["low"] <= r["expected"] <= r["high"] for r in rows)
    texts = [
        n
        for n in _walk(spec)
        if n.get("mark", {}) == {"type": "text"}
        or (isinstance(n.get("mark"), dict) and n["mark"].get("type") == "text")
    ]
    assert texts
    notes = [r["note"] for r in _rows(spec) if "note" in r and r["note"].startswith("spike")]
    assert notes == ["spike: 27.09 GB, 4.3x usual"]


def test_spike_shades_each_event_window(sample_flows: pl.DataFrame) -> None:
    hours = natlens.score_traffic(sample_flows)
    events = natlens.find_spikes(sample_flows, price_per_gb=0.045, currency="EUR")
    spec = nc.chart_spike(hours, events=events).to_dict()
    assert len(spec["layer"]) == 5
    shade = spec["layer"][0]  # under the band and the lines
    assert shade["mark"]["type"] == "rect"
    assert (shade["encoding"]["x"]["field"], shade["encoding"]["x2"]["field"]) == ("start", "end")
    windows = spec["datasets"][shade["data"]["name"]]
    assert len(windows) == events.height
    top = windows[0]
    assert (top["start"][:16], top["end"][:16]) == ("2026-11-10T13:00", "2026-11-10T19:00")
    assert top["extra_text"] == "117.07 GB"
    assert top["cost_text"] == "5.27 EUR"
    assert {t["title"] for t in shade["encoding"]["tooltip"]} >= {"extra traffic", "extra cost"}
    assert spec["title"].endswith("with spikes shaded")
    with pytest.raises(ValueError, match=r"chart_spike: the frame has no column\(s\) \['end'"):
        nc.chart_spike(hours, events=events.drop("end"))


def test_heatmap_hour_by_day(sample_flows: pl.DataFrame) -> None:
    spec = nc.chart_heatmap(sample_flows).to_dict()
    rows = _rows(spec)
    assert len(rows) == 7 * 24
    peak = max(rows, key=lambda r: r["value"])
    assert (peak["day"], peak["hour"]) == ("2026-11-10", 14)


def test_cost_breakdown_by_group_and_period(
    sample_flows: pl.DataFrame, inventory: pl.DataFrame
) -> None:
    by_source = natlens.cost(sample_flows, price_per_gb=0.045, currency="EUR", by="source_ip")
    spec = nc.chart_cost_breakdown(by_source, n=3, inventory=inventory).to_dict()
    rows = _rows(spec)
    assert len(rows) == 4
    assert rows[-1]["label"].startswith("other (")
    assert sum(r["cost"] for r in rows) == pytest.approx(by_source.get_column("cost").sum())
    assert spec["encoding"]["x"]["title"] == "cost (EUR)"
    per_day = natlens.cost(sample_flows, price_per_gb=0.045, currency="USD", every="1d")
    spec = nc.chart_cost_breakdown(per_day).to_dict()
    assert [r["period"][:10] for r in _rows(spec)] == [f"2026-11-{d:02d}" for d in range(9, 16)]


def test_allowlist_violations(
    sample_flows: pl.DataFrame, samples: natlens.SampleData, inventory: pl.DataFrame
) -> None:
    bad = natlens.check_allowlist(
        sample_flows,
        samples.allowlist,
        service_tags=samples.service_tags,
        resolver=natlens.read_hostnames(samples.hostnames),
    )
    spec = nc.chart_allowlist_violations(bad, inventory=inventory).to_dict()
    pairs = {r["pair"] for r in _rows(spec)}
    assert pairs == {
        "vm-pay-10 (10.10.2.13) -> 203.0.113.45",
        "vm-corp-04 (10.20.3.7) -> 198.51.100.23",
    }
    assert spec["encoding"]["x2"]["field"] == "last_seen"


def test_metrics_chart(samples: natlens.SampleData) -> None:
    metrics = natlens.read_metrics(samples.metrics)
    spec = nc.chart_metrics(metrics, "SNATConnectionCount", connection_state="Failed").to_dict()
    rows = _rows(spec)
    failed = sum(r["value"] for r in rows if "series" in r and r["series"].startswith("natgw-eng"))
    assert failed == 31_478
    with pytest.raises(ValueError, match="no 'Nope' rows"):
        nc.chart_metrics(metrics, "Nope")


def test_nat_ip_usage_shares(sample_flows: pl.DataFrame) -> None:
    spec = nc.chart_nat_ip_usage(natlens.nat_ip_usage(sample_flows)).to_dict()
    rows = {r["nat_gateway_ip"]: r for r in _rows(spec)}
    assert rows["51.124.20.7"]["share"] == 100.0
    assert rows["20.61.15.40"]["share"] + rows["20.61.15.41"]["share"] == pytest.approx(100.0)
    assert rows["2603:1020:203:4::28"]["version"] == "IPv6"
    assert spec["resolve"]["scale"]["y"] == "independent"


def test_charts_refuse_missing_columns_clearly() -> None:
    with pytest.raises(ValueError, match=r"chart_heatmap: the frame has no column\(s\) \['time'\]"):
        nc.chart_heatmap(pl.DataFrame({"x": [1]}))


def test_byte_units() -> None:
    assert nc.byte_unit(999) == ("B", 1.0)
    assert nc.byte_unit(1_000) == ("KB", 1e3)
    assert nc.byte_unit(2.5e12) == ("TB", 1e12)
    frame = pl.DataFrame({"b": [0, 999, 1_500, 2_000_000, 3_250_000_000, 7_000_000_000_000]})
    text = frame.select(nc._human_bytes("b")).to_series().to_list()
    assert text == ["0 B", "999 B", "1.5 KB", "2.0 MB", "3.25 GB", "7.0 TB"]


@pytest.mark.parametrize("suffix", [".png", ".svg", ".html"])
def test_save_offline(sample_flows: pl.DataFrame, tmp_path: Path, suffix: str) -> None:
    chart = nc.chart_heatmap(sample_flows)
    out = nc.save_chart(chart, tmp_path / f"heatmap{suffix}")
    data = out.read_bytes()
    if suffix == ".png":
        assert data.startswith(b"\x89PNG")
    elif suffix == ".svg":
        assert data.lstrip().startswith(b"<svg")
    else:
        text = data.decode()
        assert "cdn.jsdelivr" not in text
        assert "<script src=" not in text
        assert "vegaEmbed" in text
    with pytest.raises(ValueError, match=r"must end in \.png, \.svg or \.html"):
        nc.save_chart(chart, tmp_path / "x.pdf")


def test_charts_never_display_and_stay_below_widgets() -> None:
    import sys

    assert "ipywidgets" not in {m.split(".")[0] for m in nc.__dict__ if isinstance(m, str)}
    source = Path(nc.__file__).read_text()
    assert "ipywidgets" not in source
    assert "display(" not in source
    assert isinstance(nc.chart_heatmap(pl.DataFrame(schema=natlens.FLOW_SCHEMA)), alt.Chart)
    assert "natlens.charts" in sys.modules
