"""Chart helpers, tested on their Vega-Lite specs (``to_dict()``), not on pixels."""

from __future__ import annotations

import datetime as dt
import json
import re
from pathlib import Path
from typing import Any

import altair as alt
import polars as pl
import pytest

import natlens
import natlens.charts as nc
from natlens._usage import TOTAL_COLUMNS as TOTALS

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


def _flows(rows: list[tuple[Any, ...]]) -> pl.DataFrame:
    """Flow records from ``(time, source, destination, bytes_sent, dropped)`` tuples."""
    return pl.DataFrame(
        [
            [t, src, dst, "20.1.1.1", 10, 10, dropped, 0, sent, sent // 2, "/S/NATGATEWAYS/GW"]
            for t, src, dst, sent, dropped in rows
        ],
        schema=natlens.FLOW_SCHEMA,
        orient="row",
    )


def _span_flows(days: int, sources: int = 7, step: dt.timedelta | None = None) -> pl.DataFrame:
    """``sources`` sources each sending once per ``step`` (default an hour) for ``days`` days."""
    step = step or dt.timedelta(hours=1)
    count = int(dt.timedelta(days=days) / step)
    i = pl.int_range(0, count * sources, dtype=pl.Int64, eager=True)
    frame = pl.DataFrame({"i": i})
    return frame.select(
        (pl.lit(START) + pl.duration(seconds=(pl.col("i") // sources) * int(step.total_seconds())))
        .dt.cast_time_unit("us")
        .alias("time"),
        pl.format("10.0.0.{}", pl.col("i") % sources + 1).alias("source_ip"),
        pl.lit("140.82.121.4").alias("destination_ip"),
        pl.lit("20.1.1.1").alias("nat_gateway_ip"),
        pl.lit(10, pl.Int64).alias("packets_sent"),
        pl.lit(10, pl.Int64).alias("packets_received"),
        (pl.col("i") % 97 == 0).cast(pl.Int64).alias("packets_sent_dropped"),
        pl.lit(0, pl.Int64).alias("packets_received_dropped"),
        (pl.col("i") % 1000 + 1000).alias("bytes_sent"),
        pl.lit(500, pl.Int64).alias("bytes_received"),
        pl.lit("/S/NATGATEWAYS/GW").alias("resource_id"),
    ).cast(dict(natlens.FLOW_SCHEMA))  # type: ignore[arg-type]


def _availability(days: int, dip: float) -> pl.DataFrame:
    """One gateway's DatapathAvailability per minute: 100% but one 15-minute dip."""
    minutes = days * 24 * 60
    times = pl.datetime_range(
        START, START + dt.timedelta(minutes=minutes - 1), "1m", eager=True, time_zone="UTC"
    )
    values = [dip if 600 <= k < 615 else 100.0 for k in range(minutes)]
    return pl.DataFrame(
        {
            "time": times,
            "resource_id": "/S/NATGATEWAYS/NATGW-PROD",
            "metric": "DatapathAvailability",
            "protocol": None,
            "direction": None,
            "connection_state": None,
            "value": values,
        },
        schema=natlens.METRICS_SCHEMA,
    )


def _every_chart(
    flows: pl.DataFrame,
    samples: natlens.SampleData,
    inventory: pl.DataFrame,
    labels: pl.DataFrame,
) -> dict[str, alt.TopLevelMixin]:
    """Every chart helper on ``flows``, with names and labels where it takes them."""
    metrics = natlens.read_metrics(samples.metrics)
    violations = natlens.check_allowlist(
        flows,
        allowlist=samples.allowlist,
        service_tags=samples.service_tags,
        resolver=natlens.read_hostnames(samples.hostnames),
    )
    return {
        "traffic": nc.chart_traffic_over_time(flows, n=6, inventory=inventory),
        "heatmap": nc.chart_heatmap(flows),
        "flow_map": nc.chart_flow_map(flows, inventory=inventory, labels=labels),
        "talkers": nc.chart_top(natlens.top_talkers(flows, metric="bytes"), inventory=inventory),
        "destinations": nc.chart_top(
            natlens.top_destinations(flows, metric="bytes"), labels=labels
        ),
        "drops": nc.chart_drops_over_time(flows, inventory=inventory),
        "spike": nc.chart_spike(
            natlens.score_traffic(flows),
            events=natlens.find_spikes(flows, price_per_gb=0.045, currency="USD"),
        ),
        "cost_per_day": nc.chart_cost_breakdown(
            natlens.cost(flows, price_per_gb=0.045, currency="USD", every="1d")
        ),
        "cost_per_source": nc.chart_cost_breakdown(
            natlens.cost(flows, price_per_gb=0.045, currency="USD", by="source"),
            inventory=inventory,
        ),
        "allowlist": nc.chart_allowlist_violations(violations, inventory=inventory),
        "availability": nc.chart_metrics(metrics, "DatapathAvailability"),
        "snat": nc.chart_metrics(metrics, "SNATConnectionCount", connection_state="Failed"),
        "nat_ips": nc.chart_nat_ip_usage(natlens.nat_ip_usage(flows)),
    }


@pytest.fixture(scope="module")
def labels(sample_flows: pl.DataFrame, samples: natlens.SampleData) -> pl.DataFrame:
    """Service tags of the busiest destinations, as a labels frame."""
    top = natlens.top_destinations(sample_flows, n=30, metric="bytes")
    tagged = natlens.label_destinations(top, service_tags=samples.service_tags)
    return tagged.select("destination_ip", label="service_tag").drop_nulls()


@pytest.fixture(scope="module")
def sample_specs(
    sample_flows: pl.DataFrame,
    samples: natlens.SampleData,
    inventory: pl.DataFrame,
    labels: pl.DataFrame,
) -> dict[str, dict[str, Any]]:
    charts = _every_chart(sample_flows, samples, inventory, labels)
    return {name: chart.to_dict() for name, chart in charts.items()}


def test_ten_million_records_embed_a_few_thousand_rows(big_flows: pl.DataFrame) -> None:
    assert big_flows.height == 10_000_000
    for chart in (
        nc.chart_traffic_over_time(big_flows, every="1h", n=5),
        nc.chart_heatmap(big_flows),
        nc.chart_flow_map(big_flows, n=8),
    ):
        spec = chart.to_dict()
        rows = nc.embedded_rows(chart)
        assert 0 < rows <= 3_000
        assert len(json.dumps(spec)) < 1_000_000
    # A week by hour: 7 x 24 buckets, six series (five + other).
    assert nc.embedded_rows(nc.chart_traffic_over_time(big_flows, every="1h", n=5)) <= 7 * 24 * 6


def test_traffic_over_time_top_n_plus_other_with_vm_names(
    sample_flows: pl.DataFrame, samples: natlens.SampleData
) -> None:
    # The inventory as a path: read with read_inventory, like the analyses.
    chart = nc.chart_traffic_over_time(sample_flows, n=3, inventory=samples.inventory)
    spec = chart.to_dict()
    rows = _rows(spec)
    series = {r["series"] for r in rows}
    assert "vm-data-04 (10.10.3.7)" in series
    assert "other" in series
    assert len(series) == 4
    assert spec["mark"]["type"] == "area"
    assert spec["encoding"]["y"]["stack"] == "zero"
    # A week picks the hour, and the axis says so.
    assert spec["encoding"]["y"]["title"] == "traffic per hour (GB)"
    assert any(r["value_text"].endswith(" GB") for r in rows)
    assert all(r["time_text"].endswith(" UTC") for r in rows)
    # The stacked total per hour is the organisation's traffic in that hour.
    peak = max(sum(r["value"] for r in rows if r["time"] == t) for t in {r["time"] for r in rows})
    hourly = natlens.traffic_over_time(sample_flows, every="1h")
    assert peak == pytest.approx(hourly.get_column("bytes").max() / 1e9)  # type: ignore[operator]
    # "other" is drawn grey and comes last in the legend.
    scale = spec["encoding"]["color"]["scale"]
    assert scale["range"][scale["domain"].index("other")] == "#bab0ac"
    assert scale["domain"][-1] == "other"


def test_traffic_over_time_brush_and_metrics(sample_flows: pl.DataFrame) -> None:
    chart = nc.chart_traffic_over_time(sample_flows, by=None, metric="records", brush=True)
    spec = chart.to_dict()
    assert spec["params"][0]["name"] == "brush"
    assert spec["params"][0]["select"]["type"] == "interval"
    assert spec["encoding"]["y"]["title"] == "flow records per hour"
    assert sum(r["value"] for r in _rows(spec)) == sample_flows.height
    # The old chart-only spellings are gone: the shared Metric vocabulary only.
    for old in ("flows", "drops", "octets"):
        with pytest.raises(ValueError, match=r"metric: '\w+' is not one of"):
            nc.chart_traffic_over_time(sample_flows, metric=old)  # type: ignore[arg-type]


def test_traffic_groups_ranked_by_the_metric_drawn() -> None:
    # 10.0.0.1 moves the bytes, 10.0.0.2 the records: the series kept follows the metric.
    rows = [(START, "10.0.0.1", "1.1.1.1", 10**9, 0)]
    rows += [(START + dt.timedelta(minutes=k), "10.0.0.2", "1.1.1.1", 10, 0) for k in range(5)]
    flows = _flows(rows)
    by_bytes = _rows(nc.chart_traffic_over_time(flows, n=1, metric="bytes").to_dict())
    by_records = _rows(nc.chart_traffic_over_time(flows, n=1, metric="records").to_dict())
    assert {r["series"] for r in by_bytes} == {"10.0.0.1", "other"}
    assert {r["series"] for r in by_records} == {"10.0.0.2", "other"}


def test_top_bars_split_by_direction(sample_flows: pl.DataFrame, inventory: pl.DataFrame) -> None:
    table = natlens.top_talkers(sample_flows, n=5, metric="bytes")
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
    table = natlens.top_destinations(sample_flows, n=3, metric="bytes")
    as_mapping = nc.chart_top(table, labels={"20.60.26.45": "Storage.WestEurope"}).to_dict()
    as_frame = nc.chart_top(
        table,
        labels=pl.DataFrame({"destination_ip": ["20.60.26.45"], "label": ["Storage.WestEurope"]}),
    ).to_dict()
    for spec in (as_mapping, as_frame):
        assert spec["encoding"]["y"]["sort"][0] == "Storage.WestEurope (20.60.26.45)"
    spec = nc.chart_top(table, metric="records").to_dict()
    # Re-ranked by the chart's metric, counts written with thousands separators.
    expected = sorted(table.get_column("records").to_list(), reverse=True)
    assert [r["value"] for r in _rows(spec)] == expected
    assert _rows(spec)[0]["value_text"] == f"{expected[0]:,}"
    assert spec["encoding"]["x"]["title"] == "flow records"
    with pytest.raises(ValueError, match=r"labels: the frame has no column\(s\) \['label'\]"):
        nc.chart_top(table, labels=pl.DataFrame({"destination_ip": ["1.1.1.1"], "tag": ["x"]}))


def test_flow_edges_fold_each_side_and_lose_nothing(sample_flows: pl.DataFrame) -> None:
    edges = natlens.flow_edges(sample_flows, n=4)
    assert edges.columns == ["source_ip", "nat_gateway_ip", "destination_ip", *TOTALS]
    sources = set(edges.get_column("source_ip").to_list())
    destinations = set(edges.get_column("destination_ip").to_list())
    assert len(sources - {"other"}) == 4
    assert len(destinations - {"other"}) == 4
    assert set(natlens.top_talkers(sample_flows, n=4, metric="bytes")["source_ip"]) < sources
    totals = sample_flows.select(
        pl.col("bytes_sent").sum(), pl.col("packets_received").sum(), pl.len().alias("records")
    ).row(0)
    assert (
        edges.select(
            pl.col("bytes_sent").sum(), pl.col("packets_received").sum(), pl.col("records").sum()
        ).row(0)
        == totals
    )
    # Every NAT IP keeps its address.
    assert set(edges.get_column("nat_gateway_ip")) == set(sample_flows.get_column("nat_gateway_ip"))
    with pytest.raises(ValueError, match="metric: 'drops'"):
        natlens.flow_edges(sample_flows, metric="drops")  # type: ignore[arg-type]


def test_flow_map_encodes_flow_edges(sample_flows: pl.DataFrame, inventory: pl.DataFrame) -> None:
    chart = nc.chart_flow_map(sample_flows, n=4, inventory=inventory)
    spec = chart.to_dict()
    links = spec["layer"][0]
    data = spec["datasets"]
    nodes = data[spec["layer"][1]["data"]["name"]]
    edges = data[links["data"]["name"]]
    assert {n["column"] for n in nodes} == {0, 1, 2}
    names = {n["label"] for n in nodes}
    assert "vm-data-04 (10.10.3.7)" in names
    assert {"20.61.15.40", "51.124.20.7", "other"} <= names
    # Every link has two ends; what leaves the sources arrives at the destinations, and
    # it is flow_edges' total.
    assert len(edges) % 2 == 0
    left = sum(e["value"] for e in edges if e["x"] == 0)
    right = sum(e["value"] for e in edges if e["x"] == 2)
    assert left == pytest.approx(right)
    total = int(natlens.flow_edges(sample_flows, n=4).get_column("bytes").sum())
    assert left == pytest.approx(total / 1e9)


def test_drops_rank_by_drops_not_bytes() -> None:
    # Two VMs, n=1: the busy one never drops, the quiet one does. The quiet one is the
    # story and must be drawn by name, not as "other".
    rows = [(START + dt.timedelta(minutes=k), "10.0.0.1", "1.1.1.1", 10**9, 0) for k in range(5)]
    rows += [(START + dt.timedelta(minutes=k), "10.0.0.2", "1.1.1.1", 100, 7) for k in range(3)]
    spec = nc.chart_drops_over_time(_flows(rows), n=1).to_dict()
    assert {r["series"] for r in _rows(spec)} == {"10.0.0.2"}
    assert sum(r["dropped"] for r in _rows(spec)) == 21


def test_drops_over_time(sample_flows: pl.DataFrame, inventory: pl.DataFrame) -> None:
    pair = natlens.find_flows(sample_flows, sources="10.20.1.13", destinations="140.82.121.4")
    spec = nc.chart_drops_over_time(pair, every="1h", inventory=inventory).to_dict()
    rows = _rows(spec)
    assert sum(r["dropped"] for r in rows) == 8595 + 72848
    assert {r["series"] for r in rows} == {"vm-build-10 (10.20.1.13)"}
    # Bars span their bucket and stand on the time axis.
    assert spec["encoding"]["x2"]["field"] == "time_end"
    assert spec["mark"]["orient"] == "vertical"
    assert spec["encoding"]["y"]["title"] == "dropped packets per hour"


def test_spike_band_and_annotation(sample_flows: pl.DataFrame) -> None:
    hours = natlens.score_traffic(sample_flows)
    spec = nc.chart_spike(hours).to_dict()
    assert len(spec["layer"]) == 4
    band = spec["layer"][0]
    assert band["mark"]["type"] == "area"
    assert band["encoding"]["y2"]["field"] == "high"
    assert band["encoding"]["y"]["title"] == "traffic per hour (GB)"
    rows = _rows(spec)
    assert all(r["low"] <= r["expected"] <= r["high"] for r in rows if "low" in r)
    notes = [r["note"] for r in rows if "note" in r and r["note"].startswith("spike")]
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
    assert (top["start_text"], top["end_text"]) == ("2026-11-10 13:00 UTC", "2026-11-10 19:00 UTC")
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
    assert (peak["row"], peak["hour"]) == ("Tue 10 Nov 2026", "14")
    # The cells are traffic_over_time's hours.
    hourly = natlens.traffic_over_time(sample_flows, every="1h")
    assert peak["value"] == pytest.approx(hourly.get_column("bytes").max() / 1e9)  # type: ignore[operator]


def test_cost_breakdown_by_group_and_period(
    sample_flows: pl.DataFrame, inventory: pl.DataFrame
) -> None:
    by_source = natlens.cost(sample_flows, price_per_gb=0.045, currency="EUR", by="source")
    spec = nc.chart_cost_breakdown(by_source, n=3, inventory=inventory).to_dict()
    rows = _rows(spec)
    assert len(rows) == 4
    assert rows[-1]["label"].startswith("other (")
    assert sum(r["cost"] for r in rows) == pytest.approx(by_source.get_column("cost").sum())
    assert spec["encoding"]["x"]["title"] == "cost (EUR)"
    per_day = natlens.cost(sample_flows, price_per_gb=0.045, currency="USD", every="1d")
    spec = nc.chart_cost_breakdown(per_day).to_dict()
    assert [r["time_text"][:10] for r in _rows(spec)] == [f"2026-11-{d:02d}" for d in range(9, 16)]
    assert spec["encoding"]["y"]["title"] == "cost per day (USD)"
    both = natlens.cost(sample_flows, price_per_gb=0.045, currency="USD", every="1d", by="source")
    with pytest.raises(ValueError, match="costs has both time and"):
        nc.chart_cost_breakdown(both)


def test_allowlist_violations(
    sample_flows: pl.DataFrame, samples: natlens.SampleData, inventory: pl.DataFrame
) -> None:
    bad = natlens.check_allowlist(
        sample_flows,
        allowlist=samples.allowlist,
        service_tags=samples.service_tags,
        resolver=natlens.read_hostnames(samples.hostnames),
    )
    spec = nc.chart_allowlist_violations(bad, inventory=inventory).to_dict()
    pairs = {r["pair"] for r in _rows(spec)}
    assert pairs == {
        "vm-pay-10 (10.10.2.13) -> 203.0.113.45",
        "vm-corp-04 (10.20.3.7) -> 198.51.100.23",
    }
    rule, volume = spec["layer"]
    assert rule["encoding"]["x2"]["field"] == "last_seen"
    # The traffic is written next to each bar (no unexplained opacity scale).
    assert volume["encoding"]["text"]["field"] == "bytes_text"
    assert {r["bytes_text"] for r in _rows(spec)} == {"1.8 GB", "2.58 MB"}


def test_metrics_chart(samples: natlens.SampleData) -> None:
    metrics = natlens.read_metrics(samples.metrics)
    spec = nc.chart_metrics(metrics, "SNATConnectionCount", connection_state="Failed").to_dict()
    rows = _rows(spec)
    failed = sum(r["value"] for r in rows if "series" in r and r["series"].startswith("natgw-eng"))
    assert failed == 31_478
    assert spec["layer"][0]["encoding"]["y"]["title"] == "SNATConnectionCount (Failed) per hour"
    # The state in any case, as gateway_health reads it.
    lower = nc.chart_metrics(metrics, "SNATConnectionCount", connection_state="failed").to_dict()
    assert sum(r["value"] for r in _rows(lower) if "series" in r) == sum(
        r["value"] for r in rows if "series" in r
    )
    with pytest.raises(ValueError, match=r"no 'Nope' rows .*metrics present: \['ByteCount'"):
        nc.chart_metrics(metrics, "Nope")


def test_availability_dip_is_visible_next_to_the_alert_line() -> None:
    spec = nc.chart_metrics(_availability(days=7, dip=97.0), "DatapathAvailability").to_dict()
    line, rule = spec["layer"]
    domain = line["encoding"]["y"]["scale"]["domain"]
    # Not a 0-100 axis: 97% sits a quarter of the way down from 100, the 90% line near
    # the bottom.
    assert domain == [88.0, 100.0]
    assert (100 - 97) / (domain[1] - domain[0]) == pytest.approx(0.25)
    assert spec["datasets"][rule["data"]["name"]][0]["threshold"] == 90.0
    # In an hourly bucket the line shows the worst 15 minutes, not an hour's average
    # that would dilute the dip to 99.25%.
    assert min(r["value"] for r in _rows(spec) if "series" in r and "value" in r) == 97.0
    assert line["encoding"]["y"]["title"] == "worst 15-min availability per hour (%)"
    # A deeper dip widens the axis to keep it in view.
    deep = nc.chart_metrics(_availability(days=1, dip=61.5), "DatapathAvailability").to_dict()
    assert deep["layer"][0]["encoding"]["y"]["scale"]["domain"] == [59.0, 100.0]


def test_the_availability_tooltip_is_cut_down_like_triage_never_rounded_up() -> None:
    """A window at 89.996% is below the 90% alert line: its tooltip says 89.99%, as triage
    and diagnose do (percent_text), not Vega's rounded 90.00%."""
    spec = nc.chart_metrics(_availability(days=1, dip=89.996), "DatapathAvailability").to_dict()
    line = spec["layer"][0]
    (value,) = [t for t in line["encoding"]["tooltip"] if t["title"] == "DatapathAvailability"]
    assert value["field"] == "value_text"
    shown = {r["value_text"]: r["value"] for r in _rows(spec) if "value_text" in r}
    assert sorted(shown) == ["100.00%", "89.99%"]
    assert shown["89.99%"] == pytest.approx(89.996)


def _minutes(resource_id: str, values: list[float], start: dt.datetime = START) -> pl.DataFrame:
    """DatapathAvailability rows of one gateway, one a minute from ``start``."""
    times = [start + dt.timedelta(minutes=k) for k in range(len(values))]
    return pl.DataFrame(
        {
            "time": times,
            "resource_id": resource_id,
            "metric": "DatapathAvailability",
            "protocol": None,
            "direction": None,
            "connection_state": None,
            "value": values,
        },
        schema=natlens.METRICS_SCHEMA,
    )


_DAY = 24 * 60
_RG = "/SUBSCRIPTIONS/S/RESOURCEGROUPS/{}/PROVIDERS/MICROSOFT.NETWORK/NATGATEWAYS/NATGW-A"


def _agreement_cases() -> dict[str, tuple[pl.DataFrame, dict[str, Any], bool]]:
    """Metrics, chart_metrics keywords, and whether the chart draws every 15-min window."""
    five = [80.0 if 600 <= k < 605 else 100.0 for k in range(_DAY)]
    dip = [80.0 if 600 <= k < 615 else 100.0 for k in range(_DAY)]
    twice = _minutes("/S/NATGATEWAYS/GW", [100.0] * _DAY)
    twice = pl.concat([twice, twice.filter(pl.col("time") == START + dt.timedelta(hours=10))])
    twice = twice.with_columns(
        value=pl.when(pl.col("time") == START + dt.timedelta(hours=10))
        .then(0.0)
        .otherwise(pl.col("value"))
    )
    samples = natlens.read_metrics(natlens.sample_data().metrics)
    return {
        # A day picks 5-minute buckets: a 5-minute dip is not a 15-minute one.
        "five-minute dip in a day": (_minutes("/S/NATGATEWAYS/GW", five), {}, True),
        # Two gateways of one name in two resource groups are two gateways.
        "one name, two resource groups": (
            pl.concat(
                [_minutes(_RG.format("RG1"), dip), _minutes(_RG.format("RG2"), [100.0] * _DAY)]
            ),
            {},
            True,
        ),
        # A minute read twice (overlapping exports) is one minute, not two.
        "a minute read twice": (twice, {}, True),
        "samples, a window cut mid-quarter": (
            samples,
            {"start": "2026-11-11T10:05", "end": "2026-11-11T16:00"},
            True,
        ),
        "samples, the week": (samples, {}, False),
    }


@pytest.mark.parametrize("case", list(_agreement_cases()))
def test_availability_chart_draws_what_gateway_health_counts(case: str) -> None:
    from natlens._health import AVAILABILITY_THRESHOLD

    metrics, window, every_window = _agreement_cases()[case]
    spec = nc.chart_metrics(metrics, "DatapathAvailability", **window).to_dict()
    line, rule = spec["layer"]
    plotted: dict[str, list[float]] = {}
    for row in spec["datasets"][line["data"]["name"]]:
        plotted.setdefault(row["series"], []).append(row["value"])
    (threshold,) = (row["threshold"] for row in spec["datasets"][rule["data"]["name"]])
    health = natlens.gateway_health(metrics, **window)
    assert threshold == AVAILABILITY_THRESHOLD
    assert len(plotted) == health.height, "one line per gateway"
    # The lowest point of each line is the gateway's lowest 15-minute window.
    drawn = sorted(min(values) for values in plotted.values())
    assert drawn == pytest.approx(sorted(health.get_column("availability_lowest")), abs=1e-9)
    if every_window:
        # Each window under the alert line is one gateway_health counts.
        below = sorted(sum(v < threshold for v in values) for values in plotted.values())
        assert below == sorted(health.get_column("availability_windows_below"))


def test_a_minute_read_twice_counts_once() -> None:
    # Minute 10:00 says 0% twice, the other 14 minutes of its quarter 100%.
    (metrics, _, _) = _agreement_cases()["a minute read twice"]
    health = natlens.gateway_health(metrics)
    assert health.item(0, "availability_lowest") == pytest.approx(1400 / 15)
    assert health.item(0, "availability_lowest_at") == START + dt.timedelta(hours=10)


def test_availability_chart_refuses_a_row_without_gateway() -> None:
    metrics = _minutes("/S/NATGATEWAYS/GW", [100.0] * 30)
    metrics = metrics.with_columns(
        resource_id=pl.when(pl.col("time") == START).then(None).otherwise(pl.col("resource_id"))
    )
    with pytest.raises(ValueError, match=r"metrics: 1 row\(s\) name no gateway"):
        natlens.gateway_health(metrics)
    with pytest.raises(ValueError, match=r"metrics: 1 row\(s\) name no gateway"):
        nc.chart_metrics(metrics, "DatapathAvailability")


def test_gateways_of_one_name_are_told_apart_and_no_line_is_alert_red() -> None:
    other_sub = (
        "/SUBSCRIPTIONS/T/RESOURCEGROUPS/RG1/PROVIDERS/MICROSOFT.NETWORK/NATGATEWAYS/NATGW-A"
    )
    metrics = pl.concat(
        [
            _minutes(_RG.format("RG1"), [100.0] * 30),
            _minutes(_RG.format("RG2"), [99.0] * 30),
            _minutes(other_sub, [98.0] * 30),
            _minutes("/S/RG/NATGATEWAYS/NATGW-B", [97.0] * 30),
        ]
    )
    spec = nc.chart_metrics(metrics, "DatapathAvailability").to_dict()
    scale = spec["layer"][0]["encoding"]["color"]["scale"]
    colors = dict(zip(scale["domain"], scale["range"], strict=True))
    assert set(colors) == {
        "natgw-a (rg2)",
        # the same name and group in two subscriptions: the whole id
        _RG.format("RG1"),
        other_sub,
        "natgw-b",
        "alert: below 90% over 15 min",
    }
    alert = colors.pop("alert: below 90% over 15 min")
    assert alert not in colors.values()
    assert len(set(colors.values())) == len(colors)


def test_nat_ip_usage_shows_snat_pressure(sample_flows: pl.DataFrame) -> None:
    usage = natlens.nat_ip_usage(sample_flows)
    spec = nc.chart_nat_ip_usage(usage).to_dict()
    bars, _, rule = spec["layer"]
    rows = {r["nat_gateway_ip"]: r for r in spec["datasets"][bars["data"]["name"]]}
    # Bars are the busiest minute, against the 64,512 SNAT ports of a public IP; a gateway
    # with one IP is not "100%".
    assert bars["encoding"]["x"]["field"] == "peak"
    single = usage.filter(pl.col("nat_gateway_ip") == "51.124.20.7").row(0, named=True)
    assert rows["51.124.20.7"]["peak"] == single["peak_records_per_minute"]
    assert rows["51.124.20.7"]["port_pct"] == pytest.approx(
        100 * single["peak_records_per_minute"] / 64_512
    )
    assert "of the SNAT ports" in rows["51.124.20.7"]["note"]
    assert spec["datasets"][rule["data"]["name"]][0]["limit"] == 64_512
    assert rows["2603:1020:203:4::28"]["ip"] == "2603:1020:203:4::28 (IPv6)"
    assert bars["encoding"]["x"]["scale"]["domain"][1] >= 64_512


def test_charts_refuse_missing_columns_clearly() -> None:
    with pytest.raises(ValueError, match=r"chart_heatmap: the frame has no column\(s\) \['time'\]"):
        nc.chart_heatmap(pl.DataFrame({"x": [1]}))
    with pytest.raises(ValueError, match=r"peak_records_per_minute"):
        nc.chart_nat_ip_usage(pl.DataFrame({"resource_id": ["x"]}))


def test_byte_units() -> None:
    assert nc.byte_unit(999) == ("B", 1.0)
    assert nc.byte_unit(1_000) == ("KB", 1e3)
    assert nc.byte_unit(2.5e12) == ("TB", 1e12)
    frame = pl.DataFrame({"b": [0, 999, 1_500, 2_000_000, 3_250_000_000, 7_000_000_000_000]})
    text = frame.select(nc._human_bytes("b")).to_series().to_list()
    assert text == ["0 B", "999 B", "1.5 KB", "2.0 MB", "3.25 GB", "7.0 TB"]


# -- any span draws --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("days", "step", "bucket"),
    [
        (1, dt.timedelta(minutes=1), "5 minutes"),
        (7, dt.timedelta(hours=1), "hour"),
        (30, dt.timedelta(hours=1), "3 hours"),  # by the hour: 720 x 7 = 5,040 rows
        (365, dt.timedelta(hours=6), "day"),
    ],
)
def test_any_span_draws_and_says_its_bucket(days: int, step: dt.timedelta, bucket: str) -> None:
    flows = _span_flows(days, step=step)
    traffic = nc.chart_traffic_over_time(flows, n=6)
    assert 0 < nc.embedded_rows(traffic) <= nc.MAX_ROWS
    assert traffic.to_dict()["encoding"]["y"]["title"] == f"traffic per {bucket} (KB)"
    drops = nc.chart_drops_over_time(flows, n=6)
    assert 0 < nc.embedded_rows(drops) <= nc.MAX_ROWS
    assert drops.to_dict()["encoding"]["y"]["title"] == f"dropped packets per {bucket}"
    heatmap = nc.chart_heatmap(flows)
    assert 0 < nc.embedded_rows(heatmap) <= nc.MAX_ROWS
    assert heatmap.to_dict()["encoding"]["y"]["title"] == (
        "week (UTC)" if days > 63 else "day (UTC)"
    )
    # An explicit bucket that does not fit is refused with the way out, not drawn wrong.
    if days == 30:
        with pytest.raises(ValueError, match=r"5040 rows .* coarser time bucket"):
            nc.chart_traffic_over_time(flows, n=6, every="1h")


def test_a_month_of_metrics_draws() -> None:
    month = _availability(days=30, dip=97.0)
    both = pl.concat([month, month.with_columns(resource_id=pl.lit("/S/NATGATEWAYS/NATGW-ENG"))])
    chart = nc.chart_metrics(both, "DatapathAvailability")
    assert nc.embedded_rows(chart) <= nc.MAX_ROWS
    spec = chart.to_dict()
    assert spec["layer"][0]["encoding"]["y"]["title"] == "worst 15-min availability per 3 hours (%)"
    assert min(r["value"] for r in _rows(spec) if "series" in r and "value" in r) == 97.0


# -- legible at a glance: rules checked on every chart ----------------------------------


def _time_encodings(spec: dict[str, Any]) -> list[dict[str, Any]]:
    return [
        channel
        for node in _walk(spec)
        for name, channel in node.items()
        if name in ("x", "x2", "y")
        and isinstance(channel, dict)
        and channel.get("type") == "temporal"
    ]


def test_time_axes_are_utc_24_hour_and_never_collide(
    sample_specs: dict[str, dict[str, Any]],
) -> None:
    for name, spec in sample_specs.items():
        for channel in _time_encodings(spec):
            if "axis" not in channel:  # x2: shares the x axis
                continue
            # A UTC scale: a browser in Amsterdam shows the same ticks as the title says.
            assert channel["scale"]["type"] == "utc", name
            axis = channel["axis"]
            assert "%I" not in axis["format"], name
            assert "%p" not in axis["format"], name
            # One tick per day (or coarser) on a week: no "Mon 09 12 PM" pile-up.
            assert axis["tickCount"]["interval"] in ("day", "week", "month"), name
            assert axis["labelOverlap"] is True, name
            assert "UTC" in channel["title"], name
        # Moments in tooltips are text in UTC ("2026-11-10 14:00 UTC"), never a
        # temporal field formatted in the reader's zone.
        for node in _walk(spec):
            for tip in node.get("tooltip", []) if isinstance(node.get("tooltip"), list) else []:
                assert tip.get("type") != "temporal", (name, tip)
        for row in _rows(spec):
            for key, value in row.items():
                if key.endswith("_text") and key.startswith(
                    ("time", "start", "end", "first", "last")
                ):
                    assert re.fullmatch(r"\d{4}-\d\d-\d\d \d\d:\d\d UTC", value), (name, value)


def test_tick_steps_follow_the_span() -> None:
    def ticks(days: float) -> tuple[Any, str]:
        end = START + dt.timedelta(days=days)
        encoding = nc._time_x("time", START, end, width=640).to_dict()
        assert isinstance(encoding, dict)
        return encoding["axis"]["tickCount"], encoding["axis"]["format"]

    # Under a day a tick count (Vega picks round hours); at most 8 ticks on 640 px.
    assert ticks(0.25) == (6, "%H:%M")
    assert ticks(2) == (8, "%d %b %H:%M")
    assert ticks(7) == ({"interval": "day", "step": 1}, "%a %d %b")
    assert ticks(30) == ({"interval": "week", "step": 1}, "%d %b")
    assert ticks(365) == ({"interval": "month", "step": 3}, "%b %Y")


@pytest.mark.parametrize("hours", [0.5, 3, 20, 50])
def test_short_windows_render(samples: natlens.SampleData, tmp_path: Path, hours: float) -> None:
    # The ticks of a window under a day must be ones Vega can draw (it has no "hour"
    # interval): render, do not just build the spec.
    metrics = natlens.read_metrics(samples.metrics)
    start = dt.datetime(2026, 11, 11, 10, tzinfo=dt.UTC)
    chart = nc.chart_metrics(
        metrics, "SNATConnectionCount", start=start, end=start + dt.timedelta(hours=hours)
    )
    assert nc.save_chart(chart, tmp_path / "window.svg").read_text().lstrip().startswith("<svg")


def test_key_labels_are_never_cut(sample_specs: dict[str, dict[str, Any]]) -> None:
    for name, spec in sample_specs.items():
        for node in _walk(spec):
            for channel in ("y", "color"):
                encoding = node.get(channel)
                if not isinstance(encoding, dict) or encoding.get("type") != "nominal":
                    continue
                holder = encoding.get("axis" if channel == "y" else "legend")
                if holder is None and encoding.get("legend", {}) is None:
                    continue
                assert holder is not None, (name, channel)
                assert holder.get("labelLimit") == 0, (name, channel)
    # The labels that were cut before are whole, and carry their key.
    destinations = sample_specs["destinations"]["encoding"]["y"]["sort"]
    assert "AzureContainerRegistry.WestEurope (20.61.97.230)" in destinations
    assert "MicrosoftContainerRegistry.WestEurope (13.69.64.92)" in destinations
    assert (
        "vm-corp-04 (10.20.3.7) -> 198.51.100.23"
        in sample_specs["allowlist"]["layer"][0]["encoding"]["y"]["sort"]
    )


def test_long_names_are_shortened_in_the_middle_with_the_full_text_in_the_tooltip() -> None:
    table = pl.DataFrame({"destination_ip": ["1.2.3.4"], "bytes": [5], "records": [1]})
    long = "VeryLongServiceTagName.WithARegionSuffixThatGoesOnAndOn"
    spec = nc.chart_top(table, metric="records", labels={"1.2.3.4": long}).to_dict()
    row = _rows(spec)[0]
    assert row["full"] == f"{long} (1.2.3.4)"
    assert row["label"].endswith("…tGoesOnAndOn (1.2.3.4)") or "…" in row["label"]
    assert row["label"].startswith("VeryLongServiceTagName")
    assert len(row["label"].removesuffix(" (1.2.3.4)")) == 40
    assert {t["field"] for t in spec["encoding"]["tooltip"]} >= {"full"}


def _explicit_colours(node: Any) -> set[str]:
    """Colours set on marks directly (not through an encoding with a legend)."""
    found: set[str] = set()
    for item in _walk(node):
        mark = item.get("mark")
        if isinstance(mark, dict):
            found.update(mark[k] for k in ("color", "fill") if isinstance(mark.get(k), str))
        for channel in ("color", "fill"):
            encoding = item.get("encoding", {}).get(channel) if "encoding" in item else None
            if isinstance(encoding, dict) and "value" in encoding:
                found.add(encoding["value"])
    return found


def _legend_colours(spec: dict[str, Any]) -> set[str]:
    found: set[str] = set()
    for item in _walk(spec):
        color = item.get("color")
        if isinstance(color, dict) and color.get("legend", {}) is not None:
            scale = color.get("scale", {})
            found.update(scale.get("range", []) if isinstance(scale.get("range"), list) else [])
    return found


def test_every_colour_has_a_legend(sample_specs: dict[str, dict[str, Any]]) -> None:
    for name, spec in sample_specs.items():
        unexplained = _explicit_colours(spec) - _legend_colours(spec)
        # One plain colour needs no legend (the title says what it is); two do.
        assert len(unexplained) <= 1, (name, unexplained)
        for item in _walk(spec):
            color = item.get("color")
            if isinstance(color, dict) and "field" in color:
                assert color.get("legend", {}) is not None, name
    spike = sample_specs["spike"]
    assert {
        "actual",
        "usual level",
        "usual range",
        "spike",
        "spike event",
    } <= {d for item in _walk(spike) for d in item.get("scale", {}).get("domain", [])}
    availability = sample_specs["availability"]
    assert (
        "alert: below 90% over 15 min"
        in availability["layer"][1]["encoding"]["color"]["scale"]["domain"]
    )


def test_units_where_a_person_reads(sample_specs: dict[str, dict[str, Any]]) -> None:
    assert sample_specs["talkers"]["encoding"]["x"]["title"] == "traffic (GB)"
    assert sample_specs["cost_per_source"]["encoding"]["x"]["title"] == "cost (USD)"
    assert sample_specs["availability"]["layer"][0]["encoding"]["y"]["title"].endswith("(%)")
    for name in ("talkers", "destinations", "traffic"):
        texts = [r["value_text"] for r in _rows(sample_specs[name]) if "value_text" in r]
        assert texts, name
        assert all(re.fullmatch(r"[\d.]+ (B|KB|MB|GB|TB)", t) for t in texts), name


def test_every_chart_renders_on_the_sample_week(
    sample_flows: pl.DataFrame,
    samples: natlens.SampleData,
    inventory: pl.DataFrame,
    labels: pl.DataFrame,
    tmp_path: Path,
) -> None:
    charts = _every_chart(sample_flows, samples, inventory, labels)
    for name, chart in charts.items():
        out = nc.save_chart(chart, tmp_path / f"{name}.svg")
        svg = out.read_text()
        assert svg.lstrip().startswith("<svg"), name
        # vl-convert draws a text for every label: none ends in the renderer's ellipsis.
        assert "…</text>" not in svg, name
        assert "...</text>" not in svg, name


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
