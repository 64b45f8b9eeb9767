"""Usage analytics on hand-computed frames (issue 3)."""

from __future__ import annotations

from typing import Any

import polars as pl
import pytest
from analysis_frames import GW, at, flow, frame

import natlens

FLOWS = frame(
    flow(at(0), "10.0.0.4", "1.1.1.1", "20.1.1.1", sent=1000, received=500, packets_sent=10),
    flow(at(1), "10.0.0.4", "1.1.1.2", "20.1.1.1", sent=None, received=500, sent_dropped=3),
    flow(at(hours=2), "10.0.0.5", "1.1.1.1", "20.1.1.2", sent=10, received=10),
    flow(at(days=1), "10.0.0.5", "1.1.1.1", "20.1.1.2", sent=30, received=10),
    flow(at(days=1, minutes=1), "10.0.0.6", "2001:db8::9", "20.1.1.2", sent=5, received=None),
)


def test_top_talkers_hand_computed() -> None:
    result = natlens.top_talkers(FLOWS)
    assert result.get_column("source_ip").to_list() == ["10.0.0.4", "10.0.0.5", "10.0.0.6"]
    first = result.row(0, named=True)
    assert first["bytes_sent"] == 1000  # the null counts as zero
    assert first["bytes_received"] == 1000
    assert first["bytes"] == 2000
    assert first["packets_sent"] == 11
    assert first["packets_dropped"] == 3
    assert first["records"] == 2
    assert first["destinations"] == 2
    assert first["share"] == pytest.approx(1000 / 1045)
    assert result.get_column("share").sum() == pytest.approx(1.0)


def test_top_talkers_n_and_metric() -> None:
    by_received = natlens.top_talkers(FLOWS, n=1, metric="bytes_received")
    assert by_received.get_column("source_ip").to_list() == ["10.0.0.4"]
    assert by_received.item(0, "share") == pytest.approx(1000 / 1020)  # share of the metric total
    assert natlens.top_talkers(FLOWS, metric="records", n=None).get_column("records").to_list() == [
        2,
        2,
        1,
    ]
    # ties on the metric fall back to the address, so the order is stable
    assert natlens.top_talkers(FLOWS, metric="records").get_column("source_ip").to_list()[:2] == [
        "10.0.0.4",
        "10.0.0.5",
    ]


def test_top_talkers_by_packets_and_distinct_counts_for_the_kept_rows() -> None:
    by_packets = natlens.top_talkers(FLOWS, metric="packets", n=None)
    assert by_packets.select("source_ip", "packets", "destinations").rows() == [
        ("10.0.0.4", 13, 2),
        ("10.0.0.5", 4, 1),
        ("10.0.0.6", 2, 1),
    ]
    assert natlens.top_talkers(FLOWS, metric="packets", n=2).rows() == by_packets.head(2).rows()


def test_top_destinations_counts_sources() -> None:
    result = natlens.top_destinations(FLOWS.lazy(), metric="bytes")
    assert result.get_column("destination_ip").to_list() == ["1.1.1.1", "1.1.1.2", "2001:db8::9"]
    assert result.row(0, named=True)["sources"] == 2
    assert result.row(0, named=True)["bytes"] == 1560


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [({"metric": "bytez"}, "metric: 'bytez'"), ({"n": 0}, "n: expected")],
)
def test_top_talkers_bad_options(kwargs: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        natlens.top_talkers(FLOWS, **kwargs)  # type: ignore[arg-type]


def test_metric_and_group_are_not_confused() -> None:
    """``by`` groups and ``metric`` measures: swapping them names the right argument."""
    with pytest.raises(ValueError, match=r"metric: 'source' .*group with by='source'"):
        natlens.growth(FLOWS, metric="source")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match=r"by: 'bytes' .*measure it with metric='bytes'"):
        natlens.traffic_over_time(FLOWS, by="bytes")
    with pytest.raises(TypeError, match="unexpected keyword argument 'by'"):
        natlens.top_talkers(FLOWS, by="bytes")  # type: ignore[call-arg]


def test_traffic_over_time_keeps_the_groups_largest_by_the_metric() -> None:
    """The one source that dropped packets keeps its name when ranked by drops."""
    flows = frame(
        flow(at(0), "10.0.0.4", sent=10_000, received=10_000),
        flow(at(1), "10.0.0.5", sent=10, received=10, sent_dropped=7),
    )
    by_bytes = natlens.traffic_over_time(flows, every="1h", by="source", n=1)
    assert by_bytes.get_column("source_ip").to_list() == ["10.0.0.4", "other"]
    by_drops = natlens.traffic_over_time(
        flows, every="1h", by="source", metric="packets_dropped", n=1
    )
    assert by_drops.select("source_ip", "packets_dropped").rows() == [
        ("10.0.0.5", 7),
        ("other", 0),
    ]


def test_bad_frames_are_named() -> None:
    with pytest.raises(ValueError, match="missing column"):
        natlens.top_talkers(pl.DataFrame({"source_ip": ["10.0.0.4"]}))
    with pytest.raises(TypeError, match="flows: expected a polars"):
        natlens.top_talkers([1, 2])  # type: ignore[arg-type]


def test_traffic_over_time_fills_idle_buckets() -> None:
    result = natlens.traffic_over_time(FLOWS, every="1h")
    assert result.height == 25  # 00:00 on day 0 to 00:00 on day 1
    assert result.get_column("time").is_sorted()
    assert result.row(0, named=True)["bytes"] == 2000
    assert result.row(1, named=True)["records"] == 0
    assert result.row(2, named=True)["bytes"] == 20
    assert result.row(24, named=True)["bytes"] == 45
    assert result.get_column("bytes").sum() == 2065


def test_traffic_over_time_top_n_and_other() -> None:
    result = natlens.traffic_over_time(FLOWS, every="1d", by="source", n=1)
    assert result.columns[:2] == ["time", "source_ip"]
    rows = {(r["time"].day, r["source_ip"]): r["bytes"] for r in result.iter_rows(named=True)}
    assert rows == {(2, "10.0.0.4"): 2000, (2, "other"): 20, (3, "10.0.0.4"): 0, (3, "other"): 45}
    by_nat = natlens.traffic_over_time(FLOWS, every="1d", by="nat_ip", n=5)
    assert set(by_nat.get_column("nat_gateway_ip")) == {"20.1.1.1", "20.1.1.2"}
    with pytest.raises(ValueError, match="by: 'vm'"):
        natlens.traffic_over_time(FLOWS, by="vm")


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: natlens.traffic_over_time(FLOWS, every="soon"), "every: 'soon' is not a duration"),
        (lambda: natlens.growth(FLOWS, period="-1d"), "period: '-1d' is not a positive"),
        (
            lambda: natlens.cost(FLOWS, price_per_gb=1, currency="USD", every="zz"),
            "every: 'zz' is not a duration",
        ),
    ],
)
def test_bad_durations_are_named(call: Any, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        call()


def test_nat_ip_usage_imbalance() -> None:
    result = natlens.nat_ip_usage(FLOWS)
    assert result.get_column("nat_gateway_ip").to_list() == ["20.1.1.2", "20.1.1.1"]
    busy = result.row(0, named=True)
    assert busy["resource_id"] == GW
    assert busy["ip_version"] == 4
    assert busy["records"] == 3
    assert busy["flows"] == 2
    assert busy["sources"] == 2
    assert busy["destinations"] == 2
    assert busy["peak_records_per_minute"] == 1
    assert busy["share"] == pytest.approx(3 / 5)
    assert busy["imbalance"] == pytest.approx(3 / 2.5)


def test_growth_day_over_day() -> None:
    result = natlens.growth(FLOWS, period="1d")
    assert result.get_column("value").to_list() == [2020, 45]
    assert result.get_column("previous").to_list() == [None, 2020]
    assert result.get_column("change").to_list() == [None, -1975]
    assert result.get_column("change_pct").to_list()[1] == pytest.approx(-1975 / 2020 * 100)
    assert result.get_column("trend").to_list() == [pytest.approx(-1975.0)] * 2


def test_growth_per_source_fills_missing_periods() -> None:
    result = natlens.growth(FLOWS, period="1d", by="source", metric="records")
    rows = {
        (r["source_ip"], r["period"].day): (r["value"], r["previous"])
        for r in result.iter_rows(named=True)
    }
    assert rows[("10.0.0.4", 3)] == (0, 2)
    assert rows[("10.0.0.6", 2)] == (0, None)
    assert rows[("10.0.0.6", 3)] == (1, 0)
    assert result.filter(pl.col("source_ip") == "10.0.0.6").get_column("change_pct").to_list() == [
        None,
        None,
    ]


def test_empty_input_gives_empty_results() -> None:
    empty = natlens.FLOW_SCHEMA.to_frame(eager=True)
    assert natlens.top_talkers(empty).height == 0
    assert natlens.traffic_over_time(empty).height == 0
    assert natlens.nat_ip_usage(empty).height == 0
    assert natlens.growth(empty).height == 0


def test_nat_ip_usage_compares_each_ip_version_apart() -> None:
    flows = frame(
        *[flow(at(m), nat="20.1.1.1") for m in range(6)],
        *[flow(at(m), nat="20.1.1.2") for m in range(2)],
        flow(at(0), "fd00::4", "2001:db8::1", "2603:1020::28"),
    )
    result = natlens.nat_ip_usage(flows)
    assert result.select("nat_gateway_ip", "ip_version", "share", "imbalance").rows() == [
        ("20.1.1.1", 4, 0.75, 1.5),
        ("20.1.1.2", 4, 0.25, 0.5),
        ("2603:1020::28", 6, 1.0, 1.0),
    ]
    assert result.item(0, "peak_records_per_minute") == 1


# -- the sample week -----------------------------------------------------------------------


def test_sample_week_usage(sample_flows: pl.DataFrame, answer_key: dict[str, Any]) -> None:
    spike = next(e for e in answer_key["events"] if e["kind"] == "billing_spike")
    top = natlens.top_talkers(sample_flows, n=1).row(0, named=True)
    assert top["source_ip"] == spike["vm_ip"]  # the bulk upload dominates the week
    assert top["bytes_sent"] >= spike["numbers"]["bytes_sent"]
    usage = natlens.nat_ip_usage(sample_flows)
    public = {ip for gw in answer_key["dataset"]["gateways"] for ip in gw["public_ips"]}
    assert set(usage.get_column("nat_gateway_ip")) == public
    assert usage.get_column("records").sum() == answer_key["dataset"]["records"]
    daily = natlens.growth(sample_flows, period="1d")
    assert daily.height == answer_key["dataset"]["days"]
    biggest = daily.sort("change_pct", descending=True, nulls_last=True).row(0, named=True)
    assert biggest["period"].date().isoformat() == spike["start"][:10]
    hourly = natlens.traffic_over_time(sample_flows, every="1h", by="source", n=3)
    assert hourly.get_column("time").n_unique() == answer_key["dataset"]["days"] * 24
    assert hourly.get_column("bytes").sum() == natlens.cost(
        sample_flows, price_per_gb=1.0, currency="USD"
    ).item(0, "bytes")
