"""Security analyses on hand-computed frames (issue 3)."""

from __future__ import annotations

import datetime as dt
import re
from pathlib import Path
from typing import Any

import polars as pl
import pytest
from analysis_frames import at, flow, frame

import natlens

TAGS = {
    "values": [
        {
            "name": "Storage.WestEurope",
            "properties": {"addressPrefixes": ["20.38.0.0/16", "2603:1020:200::/46"]},
        },
    ]
}
HOSTS = {"github.com": ["140.82.121.4"]}

FLOWS = frame(
    flow(at(0), "10.0.0.4", "140.82.121.4", sent=10, received=10),
    flow(at(1), "10.0.0.4", "20.38.5.5", sent=20, received=20),
    flow(at(2), "10.0.0.4", "2603:1020:200::9", sent=1, received=1),
    flow(at(3), "10.0.0.4", "203.0.113.9", sent=500, received=20),
    flow(at(9), "10.0.0.5", "203.0.113.9", sent=5, received=5),
    flow(at(4), "10.0.0.5", "2001:db8::66", sent=7, received=None),
    flow(at(5), "10.0.0.5", "192.0.2.1", sent=1, received=1),
)


def test_check_allowlist_mixes_cidrs_tags_and_hostnames(tmp_path: Path) -> None:
    allowlist = tmp_path / "allowlist.txt"
    allowlist.write_text("# egress\ngithub.com\nstorage.westeurope\n192.0.2.0/24\n")
    violations = natlens.check_allowlist(FLOWS, allowlist, service_tags=TAGS, resolver=HOSTS)
    assert violations.select("source_ip", "destination_ip", "bytes").rows() == [
        ("10.0.0.4", "203.0.113.9", 520),
        ("10.0.0.5", "203.0.113.9", 10),
        ("10.0.0.5", "2001:db8::66", 7),
    ]
    first = violations.row(0, named=True)
    assert (first["first_seen"], first["last_seen"], first["records"]) == (at(3), at(3), 1)
    everything = natlens.check_allowlist(FLOWS, ["0.0.0.0/0", "::/0"])
    assert everything.height == 0
    single = natlens.check_allowlist(FLOWS.lazy(), "2001:db8::/32")
    assert "2001:db8::66" not in single.get_column("destination_ip").to_list()
    assert single.height == 6


def test_check_allowlist_errors() -> None:
    with pytest.raises(
        ValueError,
        match=re.escape("'Storage.WestEurope' is not a known Service Tag; pass service_tags="),
    ):
        natlens.check_allowlist(FLOWS, ["Storage.WestEurope"])
    with pytest.raises(ValueError, match=re.escape("allowlist[0]: '10.0.0.0/64' is not a valid")):
        natlens.check_allowlist(FLOWS, ["10.0.0.0/64"])
    with pytest.raises(ValueError, match="pass resolver="):
        natlens.check_allowlist(FLOWS, ["github.com"])


def test_new_destinations_after_baseline() -> None:
    new = natlens.new_destinations(FLOWS, baseline="4m")
    assert new.get_column("destination_ip").to_list() == ["2001:db8::66", "192.0.2.1"]
    # the baseline ends at the cutoff, exclusive: 203.0.113.9, first seen at 00:03, is new
    assert natlens.new_destinations(FLOWS, baseline=at(3)).get_column(
        "destination_ip"
    ).to_list() == [
        "203.0.113.9",
        "2001:db8::66",
        "192.0.2.1",
    ]
    row = natlens.new_destinations(FLOWS, baseline=at(3)).row(0, named=True)
    assert row["sources"] == 2
    assert row["source_ips"] == ["10.0.0.4", "10.0.0.5"]
    assert (row["first_seen"], row["last_seen"], row["bytes"]) == (at(3), at(9), 530)
    with pytest.raises(ValueError, match="baseline: 'last week' is not an ISO"):
        natlens.new_destinations(FLOWS, baseline="last week")


def test_new_destinations_baseline_must_end_inside_the_data() -> None:
    # Three days of data: a five-day baseline leaves nothing after it to call new.
    three_days = frame(
        flow(at(0), "10.0.0.4", "140.82.121.4"),
        flow(at(days=2, hours=23), "10.0.0.4", "192.0.2.1"),
    )
    message = (
        r"baseline: '5d' ends at 2026-11-07 00:00 UTC, after the data's last record "
        r"\(the data spans 2026-11-02 00:00 to 2026-11-04 23:00 UTC, 2\.96 days\)"
    )
    with pytest.raises(ValueError, match=message):
        natlens.new_destinations(three_days, baseline="5d")
    with pytest.raises(
        ValueError, match=r"baseline: '2026-11-10' ends at 2026-11-10 00:00 UTC, after"
    ):
        natlens.new_destinations(three_days, baseline="2026-11-10")
    with pytest.raises(
        ValueError, match=r"ends at 2026-11-01 00:00 UTC, at or before the data's first"
    ):
        natlens.new_destinations(three_days, baseline=dt.date(2026, 11, 1))
    # A baseline ending at the last record still leaves that record to look at.
    assert natlens.new_destinations(three_days, baseline=at(days=2, hours=23)).height == 1
    assert natlens.new_destinations(three_days, baseline="2d").height == 1
    # No data, nothing new (and nothing to compare with): an empty answer, no error.
    assert natlens.new_destinations(frame(), baseline="5d").height == 0


def beacon_rows(
    every: int = 15, count: int = 40, jitter: tuple[int, ...] = (0,)
) -> list[dict[str, object]]:
    rows = []
    for i in range(count):
        minute = i * every + jitter[i % len(jitter)]
        rows.append(flow(at(minute), "10.0.0.66", "198.51.100.7", sent=300, received=200))
    return rows


def test_find_beacons_scores_regularity() -> None:
    noise = [
        flow(at(m), "10.0.0.4", "140.82.121.4", sent=5000, received=90_000)
        for m in (0, 1, 2, 7, 30, 31, 95, 300)
    ]
    slow_download = [
        flow(at(m * 15), "10.0.0.5", "151.101.1.1", sent=10**6, received=10**8) for m in range(40)
    ]
    beacons = natlens.find_beacons(frame(*beacon_rows(jitter=(0, 1, -1)), *noise, *slow_download))
    assert beacons.get_column("source_ip").to_list() == ["10.0.0.66"]
    beacon = beacons.row(0, named=True)
    assert beacon["contacts"] == 40
    assert 14.0 <= beacon["interval_minutes"] <= 16.0
    assert beacon["bytes_per_contact"] == 500.0
    assert 0.8 < beacon["score"] <= 1.0
    exact = natlens.find_beacons(frame(*beacon_rows()))
    assert exact.item(0, "regularity") == 1.0
    assert exact.item(0, "score") == pytest.approx(1 - 1 / 40)


def test_find_beacons_merges_consecutive_minutes() -> None:
    # one long session of 60 consecutive minutes is one contact, not a beacon
    session = [flow(at(m), "10.0.0.7", "198.51.100.8", sent=10) for m in range(60)]
    assert natlens.find_beacons(frame(*session)).height == 0


def test_find_exfiltration_upload_heavy_rare_destination() -> None:
    upload = [
        flow(at(m), "10.0.0.4", "203.0.113.50", sent=50_000_000, received=100_000)
        for m in range(10)
    ]
    popular = [
        flow(at(m), source, "20.38.5.5", sent=50_000_000, received=1000)
        for m in range(10)
        for source in ("10.0.0.5", "10.0.0.6")
    ]
    burst = [flow(at(0), "10.0.0.7", "203.0.113.60", sent=900_000_000, received=10)]
    found = natlens.find_exfiltration(frame(*upload, *popular, *burst))
    assert found.select("source_ip", "destination_ip").rows() == [("10.0.0.4", "203.0.113.50")]
    row = found.row(0, named=True)
    assert row["bytes_sent"] == 500_000_000
    assert row["upload_ratio"] == 500.0
    assert row["active_minutes"] == 10
    assert row["destination_sources"] == 1
    lenient = natlens.find_exfiltration(
        frame(*upload, *popular, *burst), max_sources=2, min_minutes=1
    )
    assert lenient.height == 4


# -- the planted events of the sample week -------------------------------------------------


def planted(answer_key: dict[str, Any], kind: str) -> dict[str, Any]:
    found: dict[str, Any] = next(e for e in answer_key["events"] if e["kind"] == kind)
    return found


def test_planted_unapproved_destinations(
    sample_flows: pl.DataFrame, samples: natlens.SampleData, answer_key: dict[str, Any]
) -> None:
    violations = natlens.check_allowlist(
        sample_flows,
        samples.allowlist,
        service_tags=samples.service_tags,
        resolver=natlens.read_hostnames(samples.hostnames),
    )
    assert sorted(set(violations.get_column("destination_ip"))) == sorted(
        answer_key["unapproved_destinations"]
    )
    upload = planted(answer_key, "unapproved_destination")
    top = violations.row(0, named=True)  # ranked by bytes: the nightly upload first
    assert (top["source_ip"], [top["destination_ip"]]) == (
        upload["vm_ip"],
        upload["destination_ips"],
    )
    assert top["records"] == upload["numbers"]["records"]
    assert top["bytes_sent"] == upload["numbers"]["bytes_sent"]


def test_planted_new_destination(sample_flows: pl.DataFrame, answer_key: dict[str, Any]) -> None:
    days = answer_key["dataset"]["days"]
    new = natlens.new_destinations(sample_flows, baseline=f"{days - 2}d")
    assert sorted(new.get_column("destination_ip")) == sorted(
        answer_key["new_destinations_last_two_days"]
    )
    honeycomb = planted(answer_key, "new_destination")
    assert new.get_column("first_seen").min() == dt.datetime.fromisoformat(
        honeycomb["numbers"]["first_seen"]
    )
    sources = set().union(*new.get_column("source_ips").to_list())
    assert set(honeycomb["numbers"]["source_ips"]) == sources


def test_planted_beacon(sample_flows: pl.DataFrame, answer_key: dict[str, Any]) -> None:
    beacon = planted(answer_key, "beacon")
    top = natlens.find_beacons(sample_flows).row(0, named=True)
    assert (top["source_ip"], [top["destination_ip"]]) == (
        beacon["vm_ip"],
        beacon["destination_ips"],
    )
    assert top["contacts"] == beacon["numbers"]["contacts"]
    assert top["interval_minutes"] == beacon["numbers"]["median_gap_minutes"]
    assert top["score"] > 0.9


def test_planted_upload_is_the_exfiltration_candidate(
    sample_flows: pl.DataFrame, answer_key: dict[str, Any]
) -> None:
    upload = planted(answer_key, "unapproved_destination")
    found = natlens.find_exfiltration(sample_flows)
    assert found.select("source_ip", "destination_ip").rows()[0] == (
        upload["vm_ip"],
        upload["destination_ips"][0],
    )
    assert found.item(0, "bytes_sent") == upload["numbers"]["bytes_sent"]
