"""diagnose's health step is :func:`natlens.gateway_health`'s answer, not a second computation.

Each case feeds both the same metrics and window and checks that the step's evidence is
exactly what ``gateway_health`` returns and that its finding quotes those numbers. The
metrics are CSV text as :func:`natlens.read_metrics` reads it: Azure's mixed-case resource
ids, ``Z`` times, empty dimensions, gaps and a 5-minute grain where a case needs them.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import polars as pl
import pytest
from analysis_frames import at, flow, frame
from polars.testing import assert_frame_equal

import natlens
from natlens._health import percent_text

_ARM = "/subscriptions/s/resourceGroups/rg/providers/Microsoft.Network/natGateways/"
GW1, GW2 = _ARM + "gw1", _ARM + "gw2"
HEADER = "time,resource_id,metric,protocol,direction,connection_state,value\n"

# Two subnets, one gateway each; both talk to 1.1.1.1 for the first hour.
FLOWS = frame(
    *[flow(at(m), "10.0.0.4", "1.1.1.1", gateway=GW1.upper()) for m in range(0, 60, 5)],
    *[flow(at(m), "10.0.1.4", "1.1.1.1", gateway=GW2.upper()) for m in range(0, 60, 5)],
)


def _row(minute: float, gateway: str, metric: str, value: float, state: str = "") -> str:
    time = at(minute).strftime("%Y-%m-%dT%H:%M:%SZ")
    protocol = "6" if metric == "SNATConnectionCount" else ""
    return f"{time},{gateway},{metric},{protocol},,{state},{value:g}\n"


def availability(gateway: str, values: dict[int, float]) -> list[str]:
    """DatapathAvailability rows, ``{minute: percent}``."""
    return [_row(m, gateway, "DatapathAvailability", v) for m, v in sorted(values.items())]


def read(tmp_path: Path, lines: Sequence[str]) -> pl.DataFrame:
    """The metrics as a CSV file, read by natlens.read_metrics."""
    path = tmp_path / "metrics.csv"
    path.write_text(HEADER + "".join(lines), encoding="utf-8")
    return natlens.read_metrics(path)


def agree(metrics: pl.DataFrame, gateways: list[str], **window: Any) -> natlens.Diagnosis:
    """Diagnose the sources of ``gateways`` and check the health step against gateway_health."""
    sources = ["10.0.0.4" if g == GW1 else "10.0.1.4" for g in gateways]
    result = natlens.diagnose(FLOWS, sources=sources, metrics=metrics, **window)
    health = natlens.gateway_health(metrics, gateways=gateways, **window)
    step = result.step("health")
    below = health.filter(pl.col("availability_windows_below") > 0)
    unchecked = health.height < len(gateways) or health["availability_lowest"].has_nulls()
    assert step.status == ("problem" if below.height else "unknown" if unchecked else "ok")
    for row in health.filter(pl.col("availability_lowest").is_not_null()).iter_rows(named=True):
        lowest, when = row["availability_lowest"], row["availability_lowest_at"]
        assert f"lowest {percent_text(lowest)} from {when:%Y-%m-%d %H:%M}" in step.finding
    for row in below.iter_rows(named=True):
        assert f"in {row['availability_windows_below']} 15-minute window(s)" in step.finding
    assert_frame_equal(step.evidence, health)
    return result


def test_a_gateway_without_availability_samples_is_unknown_in_both(tmp_path: Path) -> None:
    # gw2 reports drops but no DatapathAvailability: gateway_health cannot judge it, so
    # neither may diagnose (it used to read "ok" from gw1's samples alone).
    metrics = read(
        tmp_path,
        [
            *availability(GW1, dict.fromkeys(range(60), 100.0)),
            *[_row(m, GW2, "PacketDropCount", 3) for m in range(60)],
        ],
    )
    result = agree(metrics, [GW1, GW2])
    health = result.step("health")
    assert health.status == "unknown"
    assert "gw2: no DatapathAvailability metric in the window" in health.finding
    assert "gw1: DatapathAvailability stayed at or above 90%" in health.finding
    assert result.verdict == "healthy"  # unknown is not a problem


def test_windows_below_are_counted_per_gateway(tmp_path: Path) -> None:
    # gw1 dips in two quarter hours (85% then 60%), gw2 in one: three windows in all, but
    # no gateway had three, and gw1's lowest window is its second, not its first.
    gw1 = dict.fromkeys(range(60), 100.0) | dict.fromkeys(range(15), 85.0)
    gw1 |= dict.fromkeys(range(30, 45), 60.0)
    gw2 = dict.fromkeys(range(60), 100.0) | dict.fromkeys(range(45, 60), 70.0)
    metrics = read(tmp_path, [*availability(GW1, gw1), *availability(GW2, gw2)])
    result = agree(metrics, [GW1, GW2])
    assert result.verdict == "gateway_unhealthy"
    finding = result.step("health").finding
    assert "in 3 15-minute window(s)" not in finding
    assert "gw1: DatapathAvailability below 90% in 2 15-minute window(s), lowest 60.00% from " in (
        finding
    )
    assert "2026-11-02 00:30" in finding


def test_a_window_just_below_the_threshold_is_not_worded_as_90(tmp_path: Path) -> None:
    # 1-minute averages of 89.4% and 90.5%: the quarter hour averages 89.96%, below 90%.
    dip = {m: 89.4 if m % 2 else 90.5 for m in range(15)}
    dip[14] = 90.1
    metrics = read(tmp_path, availability(GW1, dip | dict.fromkeys(range(15, 60), 100.0)))
    result = agree(metrics, [GW1])
    finding = result.step("health").finding
    assert result.step("health").status == "problem"
    assert "lowest 89.96%" in finding
    assert "90.0%)" not in finding  # "below 90% ... (lowest 90.0%)" said two things


def test_a_gap_and_a_5_minute_grain_give_the_same_numbers(tmp_path: Path) -> None:
    # read_gateway_metrics(interval=5 minutes): three samples a quarter hour; 00:15 to
    # 00:30 is missing altogether.
    gw1 = {0: 100.0, 5: 100.0, 10: 100.0, 30: 70.0, 35: 95.0, 40: 100.0, 45: 99.0, 50: 100.0}
    gw2 = dict.fromkeys(range(0, 60, 5), 99.5)
    metrics = read(tmp_path, [*availability(GW1, gw1), *availability(GW2, gw2)])
    result = agree(metrics, [GW1, GW2])
    health = result.step("health")
    assert health.status == "problem"
    assert "gw1: DatapathAvailability below 90% in 1 15-minute window(s), lowest 88.33% " in (
        health.finding
    )


def test_the_window_edges_cut_both_alike(tmp_path: Path) -> None:
    # A window starting at 00:10 keeps 00:10-00:14 of the first quarter hour: its
    # average is the lowest (60%), while the whole hour's first window averages 86.7%.
    gw1 = dict.fromkeys(range(60), 100.0) | dict.fromkeys(range(10, 15), 60.0)
    metrics = read(tmp_path, availability(GW1, gw1))
    window = {"start": "2026-11-02T00:10", "end": "2026-11-02T00:50"}
    cut = agree(metrics, [GW1], **window)
    assert cut.step("health").evidence.item(0, "availability_lowest") == pytest.approx(60.0)
    whole = agree(metrics, [GW1])
    assert whole.step("health").evidence.item(0, "availability_lowest") == pytest.approx(
        (10 * 100 + 5 * 60) / 15
    )


def test_a_gateway_absent_from_the_metrics_is_named(tmp_path: Path) -> None:
    metrics = read(tmp_path, availability(GW1, dict.fromkeys(range(60), 100.0)))
    result = agree(metrics, [GW1, GW2])
    health = result.step("health")
    assert health.status == "unknown"
    assert "gw2: not in the metrics" in health.finding


def test_metrics_without_a_gateway_are_refused_by_both(tmp_path: Path) -> None:
    # An empty resource_id cell: the rows belong to no gateway. gateway_health dropped
    # them in silence while diagnose counted them for every gateway.
    metrics = read(
        tmp_path,
        [
            *availability(GW1, dict.fromkeys(range(30), 100.0)),
            *availability("", dict.fromkeys(range(30, 60), 50.0)),
        ],
    )
    message = r"metrics: 30 row\(s\) name no gateway \(empty resource_id\)"
    with pytest.raises(ValueError, match=message):
        natlens.gateway_health(metrics)
    with pytest.raises(ValueError, match=message):
        natlens.diagnose(FLOWS, sources="10.0.0.4", metrics=metrics)


# -- the shipped sample week ----------------------------------------------------------------


def test_sample_week_snat_exhaustion_window(
    sample_flows: pl.DataFrame, samples: natlens.SampleData, answer_key: dict[str, Any]
) -> None:
    """The planted SNAT exhaustion from 10:10: health and SNAT are gateway_health's numbers."""
    snat = next(e for e in answer_key["events"] if e["kind"] == "snat_exhaustion")
    metrics = natlens.read_metrics(samples.metrics)
    start, end = "2026-11-11T10:10", "2026-11-11T12:00"
    result = natlens.diagnose(
        sample_flows,
        sources=snat["vm_ip"],
        destinations=snat["destination_ips"],
        metrics=metrics,
        start=start,
        end=end,
    )
    health = natlens.gateway_health(metrics, gateways=snat["gateway"], start=start, end=end)
    assert_frame_equal(result.step("health").evidence, health)
    row = health.row(0, named=True)
    # The quarter hour from 10:00 is cut at 10:10 and holds the 97.31% dip at 10:14.
    dip = metrics.filter(
        pl.col("metric") == "DatapathAvailability",
        pl.col("resource_id") == snat["resource_id"],
        pl.col("time").is_between(
            dt.datetime(2026, 11, 11, 10, 10, tzinfo=dt.UTC),
            dt.datetime(2026, 11, 11, 10, 14, tzinfo=dt.UTC),
        ),
    )
    assert row["availability_lowest"] == pytest.approx(dip.get_column("value").mean())
    assert f"lowest {row['availability_lowest']:.2f}% from 2026-11-11 10:00" in (
        result.step("health").finding
    )
    whole = natlens.gateway_health(metrics, gateways=snat["gateway"]).row(0, named=True)
    assert whole["availability_lowest"] > row["availability_lowest"]
    # The connection step's SNAT failures are gateway_health's, minute for minute.
    assert result.verdict == "snat_exhaustion"
    episodes = result.step("connection").evidence
    assert episodes.get_column("total").sum() == row["snat_failed"]
    assert episodes.item(0, "start") == row["snat_failed_first"]
    assert episodes.item(-1, "end") == row["snat_failed_last"] + dt.timedelta(minutes=1)


def test_a_window_just_below_the_line_never_reads_as_on_it(tmp_path: Path) -> None:
    # A quarter hour averaging 89.996%: below 90%, so never printed as 90.00%.
    minutes = dict.fromkeys(range(60), 100.0) | dict.fromkeys(range(15), 89.996)
    metrics = read(tmp_path, availability(GW1, minutes))
    step = agree(metrics, [GW1]).step("health")
    assert step.status == "problem"
    assert "lowest 89.99% from " in step.finding
    assert "90.00%" not in step.finding
    summary = natlens.summarize(FLOWS.filter(pl.col("resource_id") == GW1.upper()), metrics=metrics)
    text = natlens.triage(summary)
    assert "lowest 89.99% from" in text
    assert "90.00%" not in text
