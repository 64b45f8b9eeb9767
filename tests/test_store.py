"""The Parquet store: convert once, query many; re-writing a part never duplicates."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import polars as pl
import pytest
from polars.testing import assert_frame_equal
from test_loaders import GATEWAY, flows

import natlens


def day_rows(day: int, count: int, source: str = "10.0.1.4") -> list[tuple[object, ...]]:
    start = dt.datetime(2026, 11, day, 23, 50, tzinfo=dt.UTC)
    return [
        (
            start + dt.timedelta(minutes=i),
            source,
            "20.60.1.2",
            "52.1.1.1",
            1,
            1,
            0,
            0,
            100 + i,
            50,
            GATEWAY,
        )
        for i in range(count)
    ]


def test_round_trip_is_exact_and_partitioned_by_day(tmp_path: Path) -> None:
    frame = flows(day_rows(9, 20))  # 23:50 .. 00:09: two days
    written = natlens.write_parquet(frame, tmp_path)
    assert sorted(p.parent.name for p in written) == ["date=2026-11-09", "date=2026-11-10"]
    lazy = natlens.scan_parquet(tmp_path)
    assert lazy.collect_schema() == natlens.FLOW_SCHEMA
    assert_frame_equal(lazy.collect().sort("time"), frame)


def test_rewriting_a_part_replaces_it_everywhere(tmp_path: Path) -> None:
    natlens.write_parquet(flows(day_rows(9, 20)), tmp_path, part="blob/h=23/PT1H.json")
    natlens.write_parquet(flows(day_rows(9, 5)), tmp_path, part="blob/h=23/PT1H.json")
    stored = natlens.scan_parquet(tmp_path).collect()
    assert stored.height == 5, "the grown blob replaced its earlier rows, no duplicates"
    assert not list(tmp_path.glob("date=2026-11-10/*.parquet")), (
        "its rows left the day they moved out of"
    )
    natlens.write_parquet(flows(day_rows(9, 3, source="10.0.1.9")), tmp_path, part="other")
    assert natlens.scan_parquet(tmp_path).collect().height == 8


def test_time_range_reads_only_the_days_needed(tmp_path: Path) -> None:
    natlens.write_parquet(flows(day_rows(9, 20) + day_rows(12, 5)), tmp_path)
    inside = natlens.scan_parquet(tmp_path, start="2026-11-10", end="2026-11-11").collect()
    assert inside.height == 10
    assert inside.get_column("time").dt.date().unique().to_list() == [dt.date(2026, 11, 10)]


def test_the_store_is_a_loader_source_too(tmp_path: Path) -> None:
    frame = flows(day_rows(9, 20))
    natlens.write_parquet(frame, tmp_path)
    assert_frame_equal(natlens.read_flowlogs(tmp_path).sort("time"), frame)


def test_wrong_input_is_named(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=r"flows: expected natlens\.FLOW_SCHEMA"):
        natlens.write_parquet(pl.DataFrame({"a": [1]}), tmp_path)
    with pytest.raises(FileNotFoundError, match="no Parquet store at"):
        natlens.scan_parquet(tmp_path / "missing")
    assert natlens.scan_parquet(tmp_path).collect().height == 0
