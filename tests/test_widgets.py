"""Widgets driven headlessly: set values, assert the outputs (no browser, no display)."""

from __future__ import annotations

import dataclasses
import datetime as dt
import html
import subprocess
import sys
from typing import Any

import polars as pl
import pytest

import natlens
import natlens.widgets as nw

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
        ({"start": dt.datetime(2026, 11, 10)}, "start must be timezone-aware"),
        ({"start": SPIKE[1], "end": SPIKE[0]}, "is not after start"),
        ({"sources": "10.0.0.4"}, "sources must be a tuple"),
    ],
)
def test_filter_state_rejects_bad_values(kwargs: dict[str, Any], message: str) -> None:
    with pytest.raises((ValueError, TypeError), match=message):
        nw.FilterState(**kwargs)


def test_filter_state_apply(sample_flows: pl.DataFrame) -> None:
    window = nw.FilterState(start=SPIKE[0], end=SPIKE[1]).apply(sample_flows).collect()
    assert window.get_column("time").min() >= SPIKE[0]  # type: ignore[operator]
    assert window.get_column("time").max() < SPIKE[1]  # type: ignore[operator]
    gateway = "/subscriptions/7497934f-c206-4d1a-a3b5-f2a6616401ac/resourcegroups/rg-network-eng/providers/microsoft.network/natgateways/natgw-eng-weu"  # noqa: E501
    eng = nw.FilterState(gateway=gateway).apply(sample_flows).collect()
    assert set(eng.get_column("nat_gateway_ip").unique()) == {"51.124.20.7", "2603:1020:203:9::1c"}
    github = nw.FilterState(destinations=("140.82.112.0/20",)).apply(sample_flows).collect()
    assert set(github.get_column("destination_ip").unique()) >= {"140.82.121.4"}
    assert all(d.startswith("140.82.") for d in github.get_column("destination_ip").unique())
    one = nw.FilterState(sources=("10.20.1.13",), destinations=("140.82.121.4",))
    assert one.apply(sample_flows).collect().height == 770
    tagged = nw.FilterState(destinations=("storage.westeurope",)).apply(
        sample_flows, destination_labels={"20.60.26.45": "Storage.WestEurope"}
    )
    assert tagged.collect().get_column("destination_ip").unique().to_list() == ["20.60.26.45"]
    with pytest.raises(ValueError, match="pass destination_labels"):
        nw.FilterState(destinations=("Storage.WestEurope",)).apply(sample_flows)


def test_filter_state_describe() -> None:
    state = nw.FilterState(start=SPIKE[0], sources=("10.10.3.7",), metric="packets")
    assert state.describe() == "2026-11-10 13:00 to ... UTC; source 10.10.3.7, packets"


# -- FilterPanel -------------------------------------------------------------------------


def test_filter_panel_state_round_trip(sample_flows: pl.DataFrame) -> None:
    panel = nw.FilterPanel(sample_flows, inventory={"10.10.3.7": "vm-data-04"})
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
    panel._metric.value = "drops"
    panel._destinations.value = "140.82.121.4, 20.60.26.0/24"
    assert panel.state.metric == "drops"
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


@pytest.fixture(scope="module")
def board(sample_flows: pl.DataFrame, inventory: pl.DataFrame) -> nw.Dashboard:
    return nw.Dashboard(
        sample_flows, inventory=inventory, destination_labels={"20.60.26.45": "Storage.WestEurope"}
    )


def test_dashboard_brush_narrows_the_tables(board: nw.Dashboard) -> None:
    board.panel.state = nw.FilterState()
    whole = board.talkers.row(0, named=True)
    _brush(board, _ms(SPIKE[0]), _ms(SPIKE[1]))
    assert board.selection == SPIKE
    brush = board.chart.selections.brush  # type: ignore[attr-defined]  # named by the chart
    assert brush.value == {"time": [_ms(SPIKE[0]), _ms(SPIKE[1])]}
    inside = board.talkers.row(0, named=True)
    assert inside["source_ip"] == "10.10.3.7"
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


def test_dashboard_filter_redraws_chart_and_tables(board: nw.Dashboard) -> None:
    board.panel.state = nw.FilterState(nat_ips=("51.124.20.7",), metric="packets")
    spec = board.chart.spec
    assert spec is not None
    assert spec["encoding"]["y"]["title"].startswith("packets per 1h")
    assert spec["params"][0]["name"] == "brush"
    assert board.talkers.row(0, named=True)["source_ip"] == "10.20.1.13"
    assert "NAT IP 51.124.20.7" in board._summary.value
    board.panel.state = nw.FilterState(destinations=("Storage.WestEurope",))
    assert board.destinations.get_column("destination_ip").to_list() == ["20.60.26.45"]
    board.panel.state = nw.FilterState()


def test_dashboard_displays_as_its_widget(board: nw.Dashboard) -> None:
    bundle = board._repr_mimebundle_()
    data = bundle[0] if isinstance(bundle, tuple) else bundle
    assert data["application/vnd.jupyter.widget-view+json"]["model_id"] == board.widget.model_id


# -- TroubleshootWidget ------------------------------------------------------------------


def test_troubleshoot_widget_steps(
    sample_flows: pl.DataFrame, metrics: pl.DataFrame, inventory: pl.DataFrame
) -> None:
    hosts = {"github.com": ["140.82.121.4", "140.82.121.3"]}
    widget = nw.TroubleshootWidget(
        sample_flows, metrics=metrics, inventory=inventory, resolver=hosts
    )
    assert "vm-build-10 (10.20.1.13)" in widget._source.options
    result = widget.run(source="10.20.1.13", destination="github.com")
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
    shown = widget.run(source=source, destination=destination, start=start, end=end)
    direct = natlens.diagnose(
        sample_flows,
        source=source,
        destination=destination,
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
    with pytest.raises(ValueError, match=r"source: '10\.99\.0\.999' is not"):
        widget.run(source="10.99.0.999")
    assert "10.99.0.999" in widget._verdict.value
    with pytest.raises(ValueError, match="hostname"):
        widget.run(source="10.20.1.13", destination="github.com")
    assert "hostname" in widget._verdict.value


def test_frame_to_html_escapes() -> None:
    text = nw.frame_to_html(pl.DataFrame({"name": ["<b>x</b>"], "n": [1234567]}), max_rows=1)
    assert "&lt;b&gt;x&lt;/b&gt;" in text
    assert "<td>1,234,567</td>" in text
    more = nw.frame_to_html(pl.DataFrame({"n": [1, 2, 3]}), max_rows=1)
    assert "2 more rows" in more


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
