"""Billing analyses on hand-computed frames (issue 3)."""

from __future__ import annotations

import datetime as dt
import itertools
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


def test_score_traffic_respects_daily_rhythm() -> None:
    spike_time = at(days=9, hours=3)  # Wednesday 03:00, normally quiet
    flows = frame(*rhythm(), flow(spike_time, "10.0.0.9", "20.38.1.1", sent=50_000, received=100))
    buckets = natlens.score_traffic(flows)
    assert buckets.height == 24 * 14
    assert buckets.get_column("time").is_sorted()
    spike = buckets.filter("is_spike")
    assert spike.height == 1
    row = spike.row(0, named=True)
    assert row["time"] == spike_time
    assert row["actual"] == 50_200
    assert row["expected"] == 100.0  # the other quiet weekday nights, not the global mean
    assert row["baseline"] == "same kind of day"
    assert row["spread"] == pytest.approx(10.0)  # no deviation: 10% of expected
    assert row["score"] == pytest.approx((50_200 - 100) / 10.0)
    # the busy office hours are the rhythm, never a spike
    assert natlens.score_traffic(frame(*rhythm())).get_column("is_spike").sum() == 0
    assert natlens.find_spikes(frame(*rhythm()), **PRICE).height == 0


def test_score_traffic_uses_same_weekday_with_enough_weeks() -> None:
    buckets = natlens.score_traffic(frame(*rhythm(28)))
    assert set(buckets.get_column("baseline")) == {"same weekday"}
    with pytest.raises(ValueError, match="every: '7h' must divide a day"):
        natlens.score_traffic(frame(*rhythm(2)), every="7h")
    with pytest.raises(ValueError, match="every: 'soon' is not a duration"):
        natlens.find_spikes(frame(*rhythm(2)), every="soon", **PRICE)
    with pytest.raises(ValueError, match="metric: 'octets' is not one of"):
        natlens.find_spikes(frame(*rhythm(2)), metric="octets", **PRICE)  # type: ignore[arg-type]


def upload(start: dt.datetime, hours: list[int], sent: int) -> list[dict[str, object]]:
    """One VM pushing ``sent`` bytes in each of the given hours after ``start``."""
    return [
        flow(start + dt.timedelta(hours=h, minutes=12), "10.0.0.9", "20.38.1.1", sent=sent)
        for h in hours
    ]


def test_find_spikes_joins_neighbouring_hours_into_one_event() -> None:
    # Wednesday 03:00-06:00, normally quiet: 10 kB, then 50 kB (the peak), then 20 kB;
    # Thursday 04:00 alone: 30 kB. Two events, the longer one first (more extra bytes).
    wednesday, thursday = at(days=9), at(days=10)
    flows = frame(
        *rhythm(),
        *upload(wednesday, [3], 10_000),
        *upload(wednesday, [4], 50_000),
        *upload(wednesday, [5], 20_000),
        *upload(thursday, [4], 30_000),
    )
    events = natlens.find_spikes(flows, price_per_gb=2.0, currency="EUR")
    assert events.columns == [
        "start",
        "end",
        "buckets",
        "peak",
        "peak_actual",
        "peak_expected",
        "actual",
        "expected",
        "extra",
        "max_score",
        "extra_bytes",
        "extra_cost",
        "currency",
    ]
    assert events.height == 2
    first, second = events.rows(named=True)
    assert (first["start"], first["end"], first["buckets"]) == (
        wednesday + dt.timedelta(hours=3),
        wednesday + dt.timedelta(hours=6),
        3,
    )
    assert first["peak"] == wednesday + dt.timedelta(hours=4)
    assert (first["peak_actual"], first["peak_expected"]) == (50_100, 100.0)
    assert first["actual"] == 80_300
    assert first["expected"] == 300.0
    assert first["extra"] == first["extra_bytes"] == 80_000.0
    assert first["extra_cost"] == pytest.approx(80_000 / 1e9 * 2.0)
    assert first["currency"] == "EUR"
    assert (second["start"], second["buckets"], second["extra"]) == (
        thursday + dt.timedelta(hours=4),
        1,
        30_000.0,
    )
    assert natlens.find_spikes(flows, n=1, **PRICE).height == 1


def test_find_spikes_ranks_by_extra_volume_not_score() -> None:
    # A short sharp spike scores higher; the long plateau carries more extra bytes.
    flows = frame(
        *rhythm(),
        *upload(at(days=9), [2], 40_000),
        *upload(at(days=10), list(range(1, 7)), 10_000),
    )
    events = natlens.find_spikes(flows, **PRICE)
    assert events.get_column("buckets").to_list() == [6, 1]
    assert events.item(0, "max_score") < events.item(1, "max_score")


def test_find_spikes_a_quiet_bucket_splits_events() -> None:
    flows = frame(*rhythm(), *upload(at(days=9), [2, 4], 40_000))
    events = natlens.find_spikes(flows, **PRICE)
    assert events.get_column("buckets").to_list() == [1, 1]
    assert sorted(events.get_column("start").dt.hour().to_list()) == [2, 4]


def test_find_spikes_prices_billed_bytes_whatever_the_metric() -> None:
    # Found on packets, priced on the bytes both ways beyond their usual level.
    heavy = [
        flow(
            at(days=9, hours=3, minutes=m),
            "10.0.0.9",
            sent=10**6,
            received=10**6,
            packets_sent=500,
        )
        for m in range(3)
    ]
    flows = frame(*rhythm(), *heavy)
    events = natlens.find_spikes(flows, metric="packets", **PRICE)
    event = events.row(0, named=True)
    assert event["extra"] == 3 * 501.0  # packets beyond the usual 2 per hour
    assert event["extra_bytes"] == 6 * 10**6
    assert event["extra_cost"] == pytest.approx(6e6 / 1e9 * 0.045)


def test_find_spikes_empty_and_bad_arguments() -> None:
    empty = natlens.find_spikes(frame(), **PRICE)
    assert empty.height == 0
    assert empty.schema["start"] == natlens.FLOW_SCHEMA["time"]
    assert natlens.score_traffic(frame()).height == 0
    with pytest.raises(ValueError, match="price_per_gb: must not be negative"):
        natlens.find_spikes(frame(*rhythm(2)), price_per_gb=-1, currency="USD")
    with pytest.raises(ValueError, match="n: expected a positive integer"):
        natlens.find_spikes(frame(*rhythm(2)), n=0, **PRICE)


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
    with pytest.raises(ValueError, match="baseline: the data holds no other day"):
        natlens.explain_spike(flows, (at(0), at(days=2)), **PRICE)
    with pytest.raises(ValueError, match=r"window: a mapping needs 'start' and 'end'"):
        natlens.explain_spike(flows, {"start": at(0)}, **PRICE)


def test_explain_spike_explains_a_whole_event() -> None:
    # A three-hour upload explained as one window, longer than a day works too.
    flows = frame(*rhythm(), *upload(at(days=9), [3, 4, 5], 10**9))
    event = natlens.find_spikes(flows, **PRICE).row(0, named=True)
    explained = natlens.explain_spike(flows, event, **PRICE)
    top = explained.row(0, named=True)
    assert (top["source_ip"], top["bytes"], top["expected_bytes"]) == ("10.0.0.9", 3 * 10**9, 0)
    assert top["delta_cost"] == pytest.approx(3 * 0.045)
    usual = explained.filter(pl.col("source_ip") == "10.0.0.4").row(0, named=True)
    assert usual["expected_bytes"] == pytest.approx(300.0)  # three quiet weekday hours
    two_days = natlens.explain_spike(flows, (at(days=9), at(days=11)), **PRICE)
    assert two_days.item(0, "delta_bytes") == pytest.approx(3 * 10**9, rel=1e-6)


# -- the planted billing spike of the sample week ------------------------------------------


def test_planted_billing_spike_is_one_event_ranked_first(
    sample_flows: pl.DataFrame, answer_key: dict[str, Any]
) -> None:
    spike = next(e for e in answer_key["events"] if e["kind"] == "billing_spike")
    numbers = spike["numbers"]
    start = dt.datetime.fromisoformat(spike["start"])
    end = dt.datetime.fromisoformat(spike["end"])
    price = Price(price_per_gb=answer_key["dataset"]["price_per_gb_usd"], currency="USD")
    events = natlens.find_spikes(sample_flows, every="1h", **price)
    top = events.row(0, named=True)
    # The hours that hold the upload, no more, no less: 13:12-18:42 -> 13:00-19:00.
    hour = dt.timedelta(hours=1)
    assert top["start"] <= start < top["start"] + hour
    assert top["end"] - hour < end <= top["end"]
    assert top["buckets"] == (top["end"] - top["start"]) // hour
    assert top["peak"] == dt.datetime.fromisoformat(numbers["peak_hour"])
    assert top["peak_actual"] / 1e9 == pytest.approx(numbers["peak_hour_org_gb"], abs=0.05)
    # ONE event: no other event touches the upload's window.
    overlapping = events.filter((pl.col("start") < end) & (pl.col("end") > start))
    assert overlapping.height == 1
    # Its extra volume is the upload (within the noise of the usual level) and costs as much.
    upload = (numbers["bytes_sent"] + numbers["bytes_received"]) / 1e9
    assert top["extra_bytes"] / 1e9 == pytest.approx(upload, rel=0.02)
    assert top["extra_cost"] == pytest.approx(numbers["cost_usd_at_0_045_per_gb"], rel=0.02)
    assert top["extra"] == events.get_column("extra").max()
    # Explaining the event explains the whole window: one VM, one address.
    explained = natlens.explain_spike(sample_flows, top, n=1, **price)
    culprit = explained.row(0, named=True)
    assert culprit["source_ip"] == spike["vm_ip"]
    assert [culprit["destination_ip"]] == spike["destination_ips"]
    assert culprit["bytes_sent"] == numbers["bytes_sent"]
    assert culprit["delta_cost"] == pytest.approx(numbers["cost_usd_at_0_045_per_gb"], abs=0.01)
    # The chart's buckets are the same analysis: the event's hours are its spike hours.
    buckets = natlens.score_traffic(sample_flows, every="1h")
    inside = buckets.filter((pl.col("time") >= top["start"]) & (pl.col("time") < top["end"]))
    assert inside.get_column("is_spike").all()
    assert inside.get_column("excess").sum() == pytest.approx(top["extra"])


def test_triage_prints_the_planted_spike_as_one_event(
    capsys: pytest.CaptureFixture[str], sample_flows: pl.DataFrame, answer_key: dict[str, Any]
) -> None:
    from natlens._cli import main

    assert main(["triage"]) == 0
    out = capsys.readouterr().out
    spike = next(e for e in answer_key["events"] if e["kind"] == "billing_spike")
    events = natlens.find_spikes(sample_flows, price_per_gb=0.045, currency="USD")
    section = out.split("\n  Spikes: runs of hours far above their usual level")[1].splitlines()
    assert "largest extra volume first (UTC)" in section[0]
    header, first = section[1].split(), section[2].split()
    assert " ".join(header) == (
        "from to hours peak hour peak traffic usual at peak extra traffic extra cost"
    )
    start = dt.datetime.fromisoformat(spike["start"]).replace(minute=0)
    peak = dt.datetime.fromisoformat(spike["numbers"]["peak_hour"])
    # start date, start time, end date, end time, hours, peak date, peak time, ...
    assert " ".join(first[:2]) == f"{start:%Y-%m-%d %H:%M}"
    assert " ".join(first[5:7]) == f"{peak:%Y-%m-%d %H:%M}"
    assert first[4] == str(events.item(0, "buckets"))
    assert " ".join(first[7:9]) == f"{spike['numbers']['peak_hour_org_gb']} GB"
    assert " ".join(first[-2:]) == f"{events.item(0, 'extra_cost'):.2f} USD"
    table = list(itertools.takewhile(str.strip, section[1:]))
    assert len(table) == 1 + events.height  # one line per event, not per hour
