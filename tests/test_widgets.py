"""Widgets driven headlessly: set values, assert the outputs (no browser, no display)."""

from __future__ import annotations

import dataclasses
import datetime as dt
import html
import json
import re
import subprocess
import sys
from typing import Any

import altair as alt
import polars as pl
import pytest

import natlens
import natlens.widgets as nw
from natlens.charts import embedded_rows

UTC = dt.UTC
SPIKE = (dt.datetime(2026, 11, 10, 13, tzinfo=UTC), dt.datetime(2026, 11, 10, 19, tzinfo=UTC))


def _ms(moment: dt.datetime) -> float:
    return moment.timestamp() * 1000


def _brush(board: nw.Dashboard, low: Any, high: Any) -> None:
    """What the browser sends when the user drags across the chart."""
    board.chart._vl_selections = {"brush": {"value": {"time": [low, high]}, "store": []}}


@pytest.fixture(scope="module")
def inventory(samples: natlens.SampleData) -> pl.DataFrame:
    return natlens.read_inventory(samples.inventory)


@pytest.fixture(scope="module")
def metrics(samples: natlens.SampleData) -> pl.DataFrame:
    return natlens.read_metrics(samples.metrics)


# -- FilterState -------------------------------------------------------------------------


def test_filter_state_is_an_immutable_value() -> None:
    state = nw.FilterState(sources=("10.0.0.4",))
    with pytest.raises(dataclasses.FrozenInstanceError):
        state.metric = "packets"  # type: ignore[misc]
    changed = state.replace(metric="packets")
    assert changed.metric == "packets"
    assert state.metric == "bytes"
    assert changed != state
    assert changed.replace(metric="bytes") == state
    assert hash(state) == hash(nw.FilterState(sources=("10.0.0.4",)))


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"metric": "octets"}, "metric must be one of"),
        ({"metric": "drops"}, "metric must be one of"),
        ({"start": SPIKE[1], "end": SPIKE[0]}, "is not after start"),
        ({"sources": "10.0.0.4"}, "sources must be a tuple"),
        ({"gateways": "natgw-eng-weu"}, "gateways must be a tuple"),
    ],
)
def test_filter_state_rejects_bad_values(kwargs: dict[str, Any], message: str) -> None:
    with pytest.raises((ValueError, TypeError), match=message):
        nw.FilterState(**kwargs)


def test_filter_state_naive_times_are_utc() -> None:
    # One rule everywhere in natlens: a naive time is UTC.
    state = nw.FilterState(start=dt.datetime(2026, 11, 10, 13), end=dt.datetime(2026, 11, 10, 19))
    assert (state.start, state.end) == SPIKE
    assert state == nw.FilterState(start=SPIKE[0], end=SPIKE[1])


STATES = [
    nw.FilterState(start=SPIKE[0], end=SPIKE[1]),
    nw.FilterState(sources=("10.20.1.0/24",)),
    nw.FilterState(gateways=("natgw-eng-weu",)),
    nw.FilterState(nat_ips=("51.124.20.7",), destinations=("140.82.112.0/20",)),
    nw.FilterState(sources=("10.20.1.13",), destinations=("140.82.121.4",), metric="packets"),
]


@pytest.mark.parametrize("state", STATES, ids=lambda s: s.describe())
def test_filter_state_is_find_flows_criteria(
    sample_flows: pl.DataFrame, state: nw.FilterState
) -> None:
    # The state turns into find_flows's own keyword arguments, and apply is that call:
    # one matching rule (CIDRs, gateway names) for the dashboard and the analyses.
    criteria = state.criteria()
    assert set(criteria) == {"sources", "destinations", "nat_ips", "gateways", "start", "end"}
    kept = state.apply(sample_flows)
    assert kept.height > 0
    assert kept.equals(natlens.find_flows(sample_flows, **criteria))


def test_filter_state_apply(sample_flows: pl.DataFrame) -> None:
    window = nw.FilterState(start=SPIKE[0], end=SPIKE[1]).apply(sample_flows)
    assert window.get_column("time").min() >= SPIKE[0]  # type: ignore[operator]
    assert window.get_column("time").max() < SPIKE[1]  # type: ignore[operator]
    # A gateway by name or by resource id in any case, as find_flows takes it.
    by_name = nw.FilterState(gateways=("natgw-eng-weu",)).apply(sample_flows)
    assert set(by_name.get_column("nat_gateway_ip").unique()) == {
        "51.124.20.7",
        "2603:1020:203:9::1c",
    }
    rid = by_name.item(0, "resource_id").lower()
    assert nw.FilterState(gateways=(rid,)).apply(sample_flows).equals(by_name)
    # A subnet of sources: the old apply matched sources exactly and found nothing.
    subnet = nw.FilterState(sources=("10.20.1.0/24",)).apply(sample_flows)
    assert {ip.rsplit(".", 1)[0] for ip in subnet.get_column("source_ip")} == {"10.20.1"}
    one = nw.FilterState(sources=("10.20.1.13",), destinations=("140.82.121.4",))
    assert one.apply(sample_flows).height == 770
    # Destinations by label: a mapping or a destination_ip/label frame.
    labels = pl.DataFrame({"destination_ip": ["20.60.26.45"], "label": ["Storage.WestEurope"]})
    for given in (labels, {"20.60.26.45": "Storage.WestEurope"}):
        tagged = nw.FilterState(destinations=("storage.westeurope",)).apply(
            sample_flows, labels=given
        )
        assert tagged.get_column("destination_ip").unique().to_list() == ["20.60.26.45"]
    # A hostname goes through the resolver, as in find_flows.
    hosts = {"github.com": ["140.82.121.4"]}
    github = nw.FilterState(destinations=("github.com",)).apply(sample_flows, resolver=hosts)
    assert github.get_column("destination_ip").unique().to_list() == ["140.82.121.4"]
    with pytest.raises(ValueError, match="pass labels="):
        nw.FilterState(destinations=("Storage.WestEurope",)).apply(sample_flows)
    with pytest.raises(ValueError, match="destination_ip and"):
        nw.FilterState(destinations=("x.y",)).apply(
            sample_flows, labels=pl.DataFrame({"ip": ["1.1.1.1"]})
        )


def test_filter_state_describe() -> None:
    state = nw.FilterState(start=SPIKE[0], sources=("10.10.3.7",), metric="packets")
    assert state.describe() == "2026-11-10 13:00 to ... UTC; source 10.10.3.7, packets"
    gateway = nw.FilterState(gateways=("/SUBSCRIPTIONS/S/NATGATEWAYS/NATGW-ENG-WEU",))
    assert gateway.describe() == "gateway NATGW-ENG-WEU, bytes"


# -- FilterPanel -------------------------------------------------------------------------


def test_filter_panel_state_round_trip(sample_flows: pl.DataFrame) -> None:
    inventory = pl.DataFrame({"ip": ["10.10.3.7"], "vm_name": ["vm-data-04"]})
    panel = nw.FilterPanel(sample_flows, inventory=inventory)
    seen: list[nw.FilterState] = []
    panel.on_change(seen.append)
    assert panel.state == nw.FilterState()
    assert ("vm-data-04 (10.10.3.7)", "10.10.3.7") in panel._sources.options
    wanted = nw.FilterState(
        start=SPIKE[0], end=SPIKE[1], sources=("10.10.3.7",), nat_ips=("20.61.15.40",)
    )
    panel.state = wanted
    assert panel.state == wanted
    assert seen == [wanted]
    assert panel._sources.value == ("10.10.3.7",)
    assert panel._time.value == SPIKE
    # Setting the same state again notifies nobody.
    panel.state = wanted
    assert len(seen) == 1


def test_filter_panel_controls_change_the_state(sample_flows: pl.DataFrame) -> None:
    panel = nw.FilterPanel(sample_flows)
    seen: list[nw.FilterState] = []
    panel.on_change(seen.append)
    panel._metric.value = "packets_dropped"
    panel._destinations.value = "140.82.121.4, 20.60.26.0/24"
    assert panel.state.metric == "packets_dropped"
    assert panel.state.destinations == ("140.82.121.4", "20.60.26.0/24")
    assert len(seen) == 2
    panel._time.index = (24, 48)
    assert panel.state.start == dt.datetime(2026, 11, 10, tzinfo=UTC)
    assert panel.state.end == dt.datetime(2026, 11, 11, tzinfo=UTC)


def test_filter_panel_rejects_unknown_values(sample_flows: pl.DataFrame) -> None:
    panel = nw.FilterPanel(sample_flows)
    with pytest.raises(ValueError, match=r"not present in the flows: \[\('sources', '1.2.3.4'\)\]"):
        panel.state = nw.FilterState(sources=("1.2.3.4",))
    with pytest.raises(TypeError, match="must be a FilterState"):
        panel.state = {"metric": "bytes"}  # type: ignore[assignment]


# -- Dashboard ---------------------------------------------------------------------------


@pytest.fixture
def board(sample_flows: pl.DataFrame, samples: natlens.SampleData) -> nw.Dashboard:
    """A fresh dashboard for each test: no test sees another's filter or brush."""
    return nw.Dashboard(
        sample_flows,
        inventory=samples.inventory,
        labels={"20.60.26.45": "Storage.WestEurope"},
        every="1h",
    )


def test_dashboard_brush_narrows_the_tables(board: nw.Dashboard) -> None:
    whole = board.talkers.row(0, named=True)
    _brush(board, _ms(SPIKE[0]), _ms(SPIKE[1]))
    assert board.selection == SPIKE
    brush = board.chart.selections.brush  # type: ignore[attr-defined]  # named by the chart
    assert brush.value == {"time": [_ms(SPIKE[0]), _ms(SPIKE[1])]}
    inside = board.talkers.row(0, named=True)
    assert inside["source_ip"] == "10.10.3.7"
    assert inside["vm_name"] == "vm-data-04"
    assert inside["bytes"] < whole["bytes"]
    assert inside["share"] > 0.8
    assert board.destinations.row(0, named=True)["label"] == "Storage.WestEurope"
    assert "2026-11-10 13:00 to 2026-11-10 19:00 UTC" in board._summary.value
    assert "vm-data-04" in board._tables.value
    # Vega may send ISO text too; clearing the brush restores the whole range.
    _brush(board, "2026-11-12T08:00:00Z", "2026-11-12T19:00:00Z")
    assert board.selection == (
        dt.datetime(2026, 11, 12, 8, tzinfo=UTC),
        dt.datetime(2026, 11, 12, 19, tzinfo=UTC),
    )
    board.chart._vl_selections = {"brush": {"value": None, "store": []}}
    cleared: object = board.selection  # changed by the assignment above
    assert cleared is None
    assert board.talkers.row(0, named=True) == whole


def test_dashboard_starts_unfiltered(
    board: nw.Dashboard, sample_flows: pl.DataFrame, samples: natlens.SampleData
) -> None:
    # Each test gets its own board: this one sees no filter left by another test.
    assert board.panel.state == nw.FilterState()
    assert board.selection is None
    top = natlens.top_talkers(sample_flows, metric="bytes", n=8)
    assert board.talkers.equals(natlens.label_sources(top, inventory=samples.inventory))


def test_dashboard_metric_reaches_chart_and_tables(
    board: nw.Dashboard, sample_flows: pl.DataFrame
) -> None:
    # The metric toggle ranks the tables too (they ranked by bytes whatever it said).
    board.panel._metric.value = "packets_dropped"
    expected = natlens.top_talkers(sample_flows, metric="packets_dropped", n=8)
    assert (
        board.talkers.get_column("source_ip").to_list()
        == expected.get_column("source_ip").to_list()
    )
    assert board.talkers.row(0, named=True)["source_ip"] == "10.20.1.13"
    assert "<th>packets_dropped</th>" in board._tables.value
    assert "ranked by packets_dropped" in board._summary.value
    spec = board.chart.spec
    assert spec is not None
    assert "dropped" in json.dumps(spec["encoding"]["y"]["title"])


def test_dashboard_filter_redraws_chart_and_tables(board: nw.Dashboard) -> None:
    board.panel.state = nw.FilterState(nat_ips=("51.124.20.7",), metric="packets")
    spec = board.chart.spec
    assert spec is not None
    assert spec["params"][0]["name"] == "brush"
    assert board.talkers.row(0, named=True)["source_ip"] == "10.20.1.13"
    assert "NAT IP 51.124.20.7" in board._summary.value
    board.panel.state = nw.FilterState(destinations=("Storage.WestEurope",))
    assert board.destinations.get_column("destination_ip").to_list() == ["20.60.26.45"]


def test_dashboard_tables_speak_units(board: nw.Dashboard) -> None:
    tables = board._tables.value
    assert re.search(r"<td>[\d.]+ GB</td>", tables), tables[:2000]
    assert re.search(r"<td>[\d.]+ %</td>", tables)
    assert str(board.talkers.item(0, "bytes")) not in tables


def _month(sources: int = 8, days: int = 30) -> pl.DataFrame:
    """Hourly records of ``sources`` VMs over ``days`` days, in FLOW_SCHEMA."""
    start = dt.datetime(2026, 10, 1, tzinfo=UTC)
    hours = [start + dt.timedelta(hours=h) for h in range(days * 24)]
    rows = [
        [
            t,
            f"10.0.0.{s}",
            "140.82.121.4",
            "20.1.1.1",
            10,
            10,
            0,
            0,
            10_000 * (s + 1),
            5_000,
            "/S/NATGATEWAYS/GW",
        ]
        for t in hours
        for s in range(sources)
    ]
    return pl.DataFrame(rows, schema=natlens.FLOW_SCHEMA, orient="row")


def test_dashboard_draws_a_month(samples: natlens.SampleData) -> None:
    # 30 days of 8 VMs: an hourly chart of 6 series and "other" would embed
    # 720 x 7 = 5,040 rows, over the 5,000-row limit; the dashboard lets the chart
    # pick its bucket from the span.
    month = _month()
    board = nw.Dashboard(month)
    assert embedded_rows(board.chart.chart) <= 5000  # type: ignore[arg-type]
    assert board.talkers.height == 8
    board.panel.state = nw.FilterState(metric="records")
    assert board.talkers.item(0, "records") == 720
    _brush(
        board, _ms(dt.datetime(2026, 10, 2, tzinfo=UTC)), _ms(dt.datetime(2026, 10, 3, tzinfo=UTC))
    )
    assert board.talkers.item(0, "records") == 24


def test_dashboard_displays_as_widget_and_static_html(board: nw.Dashboard) -> None:
    bundle = board._repr_mimebundle_()
    assert bundle["application/vnd.jupyter.widget-view+json"]["model_id"] == board.widget.model_id
    # Where widget JavaScript cannot run (nbconvert, GitHub), the HTML shows the same
    # summary, the chart as SVG and the tables.
    static = bundle["text/html"]
    assert "<svg" in static
    assert "Top sources" in static
    assert "vm-data-04" in static
    assert "object at 0x" not in bundle["text/plain"]


# -- charts in notebooks ---------------------------------------------------------------------


def test_charts_display_live_and_static() -> None:
    chart = (
        alt.Chart(pl.DataFrame({"x": [1, 2]})).mark_point().encode(x="x").properties(title="two")
    )
    previous = alt.renderers.active
    try:
        nw.enable_offline_charts()
        bundle = chart._repr_mimebundle_()
    finally:
        alt.renderers.enable(previous)
    assert isinstance(bundle, dict)
    assert "application/vnd.jupyter.widget-view+json" in bundle
    assert bundle["image/svg+xml"].startswith("<svg")
    assert bundle["text/plain"] == "natlens chart: two"


# -- tables for people -------------------------------------------------------------------------


def test_table_speaks_units(sample_flows: pl.DataFrame) -> None:
    talkers = natlens.top_talkers(sample_flows, metric="bytes", n=3)
    shown = nw.table(talkers, title="Top talkers")
    row = shown.text.row(0, named=True)
    assert row["bytes_sent"] == "118.6 GB"  # not 118616767058
    assert row["share"].endswith(" %")
    assert shown.frame is talkers
    daily = nw.table(natlens.growth(sample_flows, period="1d"))
    assert daily.text.item(0, "trend").endswith(" GB")  # not -1.7314e10
    assert daily.text.item(0, "period") == "2026-11-09 00:00 UTC"
    assert nw.table(daily.frame, metric="records").text.item(0, "value").replace(",", "").isdigit()
    html_text = shown.to_html()
    assert "<caption>Top talkers</caption>" in html_text
    assert "more rows" not in html_text


def test_table_keeps_long_text_whole() -> None:
    rid = (
        "/SUBSCRIPTIONS/709F7480-31CF-4E0B/RESOURCEGROUPS/RG-NETWORK/PROVIDERS/"
        "MICROSOFT.NETWORK/NATGATEWAYS/NATGW-CORP-WEU"
    )
    frame = pl.DataFrame({"resource_id": [rid], "source_ips": [["10.0.0.4", "10.0.0.5"]]})
    shown = nw.table(frame).to_html()
    assert rid in shown
    assert "10.0.0.4, 10.0.0.5" in shown
    assert "... 2 more rows" in nw.table(pl.DataFrame({"n": [1, 2, 3]}), n=1).to_html()
    escaped = nw.table(pl.DataFrame({"name": ["<b>x</b>"]})).to_html()
    assert "&lt;b&gt;x&lt;/b&gt;" in escaped
    with pytest.raises(ValueError, match="metric must be one of"):
        nw.table(frame, metric="octets")  # type: ignore[arg-type]


# -- TroubleshootWidget ------------------------------------------------------------------


def test_troubleshoot_widget_steps(
    sample_flows: pl.DataFrame, metrics: pl.DataFrame, inventory: pl.DataFrame
) -> None:
    hosts = {"github.com": ["140.82.121.4", "140.82.121.3"]}
    widget = nw.TroubleshootWidget(
        sample_flows, metrics=metrics, inventory=inventory, resolver=hosts
    )
    assert "vm-build-10 (10.20.1.13)" in widget._source.options
    result = widget.run(sources="10.20.1.13", destinations="github.com")
    assert result.verdict == "rate_limited"
    assert widget.diagnosis is result
    titles = [widget._steps.get_title(i) for i in range(len(result.steps))]
    assert titles == [
        "1. health: OK",
        "2. flow_logs: OK",
        "3. connection: OK",
        "4. drops: PROBLEM",
    ]
    assert widget._steps.selected_index == 3
    assert "rate_limited" in widget._verdict.value
    assert "evidence" in widget._steps.children[3].value
    # The button runs what the controls say: a VM picked by name, or an IP typed.
    widget._source.value = "vm-build-10 (10.20.1.13)"
    widget._destination.value = "github.com"
    widget._button.click()
    assert widget.diagnosis is not None
    assert widget.diagnosis.verdict == "rate_limited"
    widget._source.value = "10.20.1.14"
    widget._destination.value = "104.16.4.34"
    widget._window.value = "2026-11-11T09:00:00Z/2026-11-11T12:00:00Z"
    widget._button.click()
    assert widget.diagnosis is not None
    assert widget.diagnosis.verdict == "snat_exhaustion"
    assert widget._steps.selected_index == 2


# The four inputs of the issue: an absent source, an absent destination, the planted
# github.com rate limiting and the planted SNAT exhaustion (data/samples/ANSWER_KEY.md).
AGREE = [
    ("10.99.99.99", "github.com", None, None, "unknown_source"),
    ("10.20.1.13", "192.0.2.200", None, None, "unknown_destination"),
    ("10.20.1.13", "github.com", None, None, "rate_limited"),
    ("10.20.1.14", "registry.npmjs.org", None, None, "snat_exhaustion"),
    (
        "10.20.1.14",
        "104.16.4.34",
        "2026-11-11T09:00:00Z",
        "2026-11-11T12:00:00Z",
        "snat_exhaustion",
    ),
    ("10.99.99.99", None, "2026-11-11T09:00:00Z", "2026-11-11T12:00:00Z", "unknown_source"),
]


@pytest.mark.parametrize("case", AGREE, ids=[f"{c[0]}->{c[1]}" for c in AGREE])
def test_troubleshoot_widget_agrees_with_diagnose(
    sample_flows: pl.DataFrame,
    metrics: pl.DataFrame,
    inventory: pl.DataFrame,
    samples: natlens.SampleData,
    case: tuple[str, str | None, str | None, str | None, str],
) -> None:
    source, destination, start, end, verdict = case
    hosts = natlens.read_hostnames(samples.hostnames)
    widget = nw.TroubleshootWidget(
        sample_flows, metrics=metrics, inventory=inventory, resolver=hosts
    )
    shown = widget.run(sources=source, destinations=destination, start=start, end=end)
    direct = natlens.diagnose(
        sample_flows,
        sources=source,
        destinations=destination,
        metrics=metrics,
        start=start,
        end=end,
        resolver=hosts,
    )
    assert direct.verdict == verdict
    assert (shown.verdict, shown.summary) == (direct.verdict, direct.summary)
    assert shown.to_frame().equals(direct.to_frame())
    # What the widget shows is that verdict and summary, word for word.
    assert f">{verdict}</span>" in widget._verdict.value
    assert html.escape(direct.summary) in widget._verdict.value


def test_troubleshoot_widget_errors_are_clear(sample_flows: pl.DataFrame) -> None:
    widget = nw.TroubleshootWidget(sample_flows)
    with pytest.raises(ValueError, match=r"sources: '10\.99\.0\.999' is not"):
        widget.run(sources="10.99.0.999")
    assert "10.99.0.999" in widget._verdict.value
    with pytest.raises(ValueError, match="hostname"):
        widget.run(sources="10.20.1.13", destinations="github.com")
    assert "hostname" in widget._verdict.value


def test_layers_import_light() -> None:
    # ``import natlens`` pulls in no chart or widget library; the charts pull no Azure SDK
    # (altair itself imports ipywidgets when installed, for JupyterChart).
    code = (
        "import sys, natlens\n"
        "bad = [m for m in ('altair', 'ipywidgets', 'jupyterlab') if m in sys.modules]\n"
        "assert not bad, bad\n"
        "import natlens.charts\n"
        "assert 'azure' not in sys.modules\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
