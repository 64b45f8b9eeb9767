"""Billing analyses on hand-computed frames (issue 3)."""

from __future__ import annotations

import datetime as dt
from typing import Any, TypedDict

import polars as pl
import pytest
from analysis_frames import at, flow, frame

import natlens


class Price(TypedDict):
    price_per_gb: float
    currency: str


PRICE: Price = {"price_per_gb": 0.045, "currency": "USD"}


def test_cost_counts_both_directions() -> None:
    flows = frame(
        flow(at(0), "10.0.0.4", sent=3 * 10**9, received=10**9),
        flow(at(0), "10.0.0.5", sent=None, received=10**9),
        flow(at(hours=25), "10.0.0.5", sent=10**9, received=None),
    )
    total = natlens.cost(flows, **PRICE)
    assert total.rows() == [(4 * 10**9, 2 * 10**9, 6 * 10**9, 6.0, pytest.approx(0.27), "USD")]
    per_source = natlens.cost(flows, by="source", price_per_gb=2.0, currency="EUR")
    assert per_source.select("source_ip", "cost", "currency").rows() == [
        ("10.0.0.4", 8.0, "EUR"),
        ("10.0.0.5", 4.0, "EUR"),
    ]
    daily = natlens.cost(flows, every="1d", by=["source"], **PRICE)
    assert daily.select(pl.col("time").dt.day(), "source_ip", "gb").rows() == [
        (2, "10.0.0.4", 4.0),
        (2, "10.0.0.5", 1.0),
        (3, "10.0.0.5", 1.0),
    ]


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"price_per_gb": -1, "currency": "USD"}, "price_per_gb: must not be negative"),
        ({"price_per_gb": "0.045", "currency": "USD"}, "price_per_gb: expected a number"),
        ({"price_per_gb": 0.045, "currency": ""}, "currency: expected"),
    ],
)
def test_cost_bad_price(kwargs: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        natlens.cost(frame(flow(at(0))), **kwargs)  # type: ignore[arg-type]


def rhythm(days: int = 14) -> list[dict[str, object]]:
    """Office-hours traffic: 1000 bytes/hour 08-18 on weekdays, 100 otherwise."""
    rows = []
    for hour in range(24 * days):
        time = at(hours=hour)
        busy = 8 <= time.hour < 18 and time.weekday() < 5
        rows.append(flow(time, sent=900 if busy else 90, received=100 if busy else 10))
    return rows


def test_find_spikes_respects_daily_rhythm() -> None:
    spike_time = at(days=9, hours=3)  # Wednesday 03:00, normally quiet
    flows = frame(*rhythm(), flow(spike_time, "10.0.0.9", "20.38.1.1", sent=50_000, received=100))
    spikes = natlens.find_spikes(flows)
    assert spikes.height == 1
    spike = spikes.row(0, named=True)
    assert spike["time"] == spike_time
    assert spike["actual"] == 50_200
    assert spike["expected"] == 100.0  # the other quiet weekday nights, not the global mean
    assert spike["baseline"] == "same kind of day"
    assert spike["score"] > 100
    # the busy office hours are the rhythm, never a spike
    assert natlens.find_spikes(frame(*rhythm())).height == 0
    everything = natlens.find_spikes(flows, only_spikes=False)
    assert everything.height == 24 * 14
    assert everything.get_column("is_spike").sum() == 1


def test_find_spikes_uses_same_weekday_with_enough_weeks() -> None:
    spikes = natlens.find_spikes(frame(*rhythm(28)), only_spikes=False)
    assert set(spikes.get_column("baseline")) == {"same weekday"}
    with pytest.raises(ValueError, match="every: '7h' must divide a day"):
        natlens.find_spikes(frame(*rhythm(2)), every="7h")
    with pytest.raises(ValueError, match="every: 'soon' is not a duration"):
        natlens.find_spikes(frame(*rhythm(2)), every="soon")


def test_explain_spike_ranks_the_pairs_behind_the_increase() -> None:
    spike_time = at(days=9, hours=3)
    flows = frame(
        *rhythm(),
        flow(spike_time, "10.0.0.9", "20.38.1.1", sent=2 * 10**9, received=10**6),
        flow(spike_time, "10.0.0.7", "20.38.1.1", sent=10**6),
    )
    explained = natlens.explain_spike(flows, spike_time, **PRICE)
    top = explained.row(0, named=True)
    assert (top["source_ip"], top["destination_ip"]) == ("10.0.0.9", "20.38.1.1")
    assert top["bytes"] == 2 * 10**9 + 10**6
    assert top["expected_bytes"] == 0.0
    assert top["delta_cost"] == pytest.approx(2.001 * 0.045)
    usual = explained.filter(pl.col("source_ip") == "10.0.0.4").row(0, named=True)
    assert usual["bytes"] == 100
    assert usual["expected_bytes"] == pytest.approx(100.0)  # same hour on the other weekdays
    assert explained.get_column("share").sum() == pytest.approx(1.0)
    explicit = natlens.explain_spike(
        flows,
        (spike_time, at(days=9, hours=4)),
        baseline=(at(days=9), at(days=9, hours=2)),
        **PRICE,
    )
    assert explicit.filter(pl.col("source_ip") == "10.0.0.4").item(0, "expected_bytes") == 100.0


def test_explain_spike_compares_weekdays_with_weekdays() -> None:
    # Wednesday 10:00 is office hours: 1000 bytes on weekdays, 100 at weekends
    wednesday = at(days=9, hours=10)
    explained = natlens.explain_spike(frame(*rhythm()), wednesday, **PRICE)
    assert explained.item(0, "expected_bytes") == pytest.approx(1000.0)
    saturday = at(days=5, hours=10)
    assert natlens.explain_spike(frame(*rhythm()), saturday, **PRICE).item(
        0, "expected_bytes"
    ) == pytest.approx(100.0)


def test_explain_spike_bad_window() -> None:
    flows = frame(*rhythm(2))
    with pytest.raises(ValueError, match=r"window: end .* is not after start"):
        natlens.explain_spike(flows, (at(5), at(1)), **PRICE)
    with pytest.raises(ValueError, match="baseline: pass baseline= explicitly"):
        natlens.explain_spike(flows, (at(0), at(days=2)), **PRICE)


# -- the planted billing spike of the sample week ------------------------------------------


def test_planted_billing_spike(sample_flows: pl.DataFrame, answer_key: dict[str, Any]) -> None:
    spike = next(e for e in answer_key["events"] if e["kind"] == "billing_spike")
    start = dt.datetime.fromisoformat(spike["start"])
    end = dt.datetime.fromisoformat(spike["end"])
    spikes = natlens.find_spikes(sample_flows, every="1h")
    top = spikes.row(0, named=True)
    assert start.replace(minute=0) <= top["time"] < end
    # every hour the upload fills completely stands out
    inside = spikes.filter((pl.col("time") >= start) & (pl.col("time") < end)).height
    assert inside >= (end - start).total_seconds() // 3600 - 1
    explained = natlens.explain_spike(
        sample_flows,
        top["time"],
        price_per_gb=answer_key["dataset"]["price_per_gb_usd"],
        currency="USD",
    )
    culprit = explained.row(0, named=True)
    assert culprit["source_ip"] == spike["vm_ip"]
    assert [culprit["destination_ip"]] == spike["destination_ips"]
    assert culprit["share"] > 0.5
    whole = natlens.explain_spike(
        sample_flows,
        (start, end),
        baseline=[(start - dt.timedelta(days=d), end - dt.timedelta(days=d)) for d in (1, -1, -2)],
        price_per_gb=answer_key["dataset"]["price_per_gb_usd"],
        currency="USD",
        n=1,
    )
    numbers = spike["numbers"]
    assert whole.item(0, "bytes_sent") == numbers["bytes_sent"]
    upload = natlens.cost(
        natlens.find_flows(
            sample_flows,
            source=spike["vm_ip"],
            destination=spike["destination_ips"],
            start=start,
            end=end,
        ),
        price_per_gb=answer_key["dataset"]["price_per_gb_usd"],
        currency="USD",
    )
    assert upload.item(0, "cost") == pytest.approx(numbers["cost_usd_at_0_045_per_gb"], abs=0.01)
