"""nat_ip_usage, top_destinations, top_talkers at scale: exactly what the first versions gave.

The first versions are kept here, verbatim, as the reference. The first nat_ip_usage
joined two aggregations of the same records in one query: polars then cached the scan
they shared, every record's columns in memory at once (2.7 GB over a 20M-record month
store). The rewrites in ``natlens._usage`` must return the very same frame (schema, rows,
order, every float bit for bit) on the samples, on random data eager, lazy and from a
Parquet store, and on the edge cases below.
"""

from __future__ import annotations

import datetime as dt
import random
from collections.abc import Callable
from pathlib import Path
from typing import Any

import polars as pl
import pytest
from analysis_frames import GW, at, flow, frame
from polars.testing import assert_frame_equal

import natlens
from natlens._typing import FrameLike
from natlens._usage import TOTAL_COLUMNS, as_lazy, check_metric, rescannable, summarise


def reference_nat_ip_usage(flows: FrameLike) -> pl.DataFrame:
    """natlens.nat_ip_usage as it was before its rewrite for month-sized stores."""
    lazy = as_lazy(flows)
    keys = ["resource_id", "nat_gateway_ip"]
    peak = (
        lazy.group_by(*keys, pl.col("time").dt.truncate("1m"))
        .agg(n=pl.len())
        .group_by(keys)
        .agg(peak_records_per_minute=pl.col("n").max().cast(pl.Int64))
    )
    usage = summarise(
        lazy,
        keys,
        pl.struct("source_ip", "destination_ip").hash().n_unique().cast(pl.Int64).alias("flows"),
        pl.col("source_ip").n_unique().cast(pl.Int64).alias("sources"),
        pl.col("destination_ip").n_unique().cast(pl.Int64).alias("destinations"),
    )
    family = ["resource_id", "ip_version"]
    return (
        usage.join(peak, on=keys, how="left", nulls_equal=True)
        .with_columns(
            ip_version=pl.when(pl.col("nat_gateway_ip").str.contains(":", literal=True))
            .then(pl.lit(6, pl.UInt8))
            .otherwise(pl.lit(4, pl.UInt8))
        )
        .with_columns(
            share=pl.col("records") / pl.col("records").sum().over(family),
            imbalance=pl.col("records") / pl.col("records").mean().over(family),
        )
        .sort([*family, "records", "nat_gateway_ip"], descending=[False, False, True, False])
        .select("resource_id", "nat_gateway_ip", "ip_version", pl.exclude(*keys, "ip_version"))
        .collect()
    )


def reference_top(
    flows: FrameLike, key: str, other: str, n: int | None, metric: str
) -> pl.DataFrame:
    """natlens.top_talkers and top_destinations (the first ``_top``) before the rewrite."""
    counted = f"{other.split('_', 1)[0]}s"
    by = check_metric(metric)
    lazy = as_lazy(flows)
    ranked = (
        summarise(lazy, [key])
        .with_columns(
            share=pl.when(pl.col(by).sum() > 0).then(pl.col(by) / pl.col(by).sum()).otherwise(0.0)
        )
        .sort([by, key], descending=[True, False], nulls_last=True)
    )
    top = (ranked.head(n) if n is not None else ranked).collect()
    kept = lazy if n is None else lazy.filter(pl.col(key).is_in(top.get_column(key).implode()))
    distinct = (
        kept.group_by(key).agg(pl.col(other).drop_nulls().n_unique().cast(pl.Int64).alias(counted))
    ).collect()
    return (
        top.join(distinct, on=key, how="left", nulls_equal=True, maintain_order="left")
        .with_columns(pl.col(counted).fill_null(0))
        .select(key, *TOTAL_COLUMNS, counted, "share")
    )


Analysis = Callable[..., pl.DataFrame]
TOP_OPTIONS: list[dict[str, Any]] = [
    {},
    {"metric": "bytes", "n": 3},
    {"metric": "records", "n": None},
    {"metric": "packets_dropped", "n": 1},
    {"metric": "bytes_received", "n": 1000},
]


def reference_top_destinations(
    flows: FrameLike, *, metric: str = "bytes_sent", n: int | None = 10
) -> pl.DataFrame:
    return reference_top(flows, "destination_ip", "source_ip", n, metric)


def reference_top_talkers(
    flows: FrameLike, *, metric: str = "bytes_sent", n: int | None = 10
) -> pl.DataFrame:
    return reference_top(flows, "source_ip", "destination_ip", n, metric)


CASES = (
    [pytest.param(natlens.nat_ip_usage, reference_nat_ip_usage, {}, id="nat_ip_usage")]
    + [
        pytest.param(natlens.top_destinations, reference_top_destinations, options, id=f"dst-{i}")
        for i, options in enumerate(TOP_OPTIONS)
    ]
    + [
        pytest.param(natlens.top_talkers, reference_top_talkers, options, id=f"src-{i}")
        for i, options in enumerate(TOP_OPTIONS)
    ]
)


def same(found: pl.DataFrame, expected: pl.DataFrame) -> None:
    """Equal schema, rows and order, floats bit for bit."""
    assert_frame_equal(found, expected, check_exact=True)


NAT_IPS = ["20.1.1.1", "20.1.1.2", "20.1.1.3", "2603:1020:203:4::28", "2603:1020:203:4::29"]
GATEWAYS = [GW, GW.replace("GW1", "GW2"), GW.replace("GW1", "GW3")]


def random_flows(seed: int, records: int = 40_000) -> pl.DataFrame:
    """Random records over three days on three gateways with IPv4 and IPv6 NAT IPs.

    Counters, addresses and times are sometimes missing (null); many records share a
    minute, a source, a destination or a NAT IP, so totals, distinct counts and peaks
    all have ties and repeats.
    """
    rng = random.Random(seed)
    sources: list[str | None] = [f"10.0.{i // 250}.{i % 250 + 4}" for i in range(60)]
    sources += ["fd00::4", None]
    destinations: list[str | None] = [f"198.51.100.{i}" for i in range(40)]
    destinations += [f"2001:db8::{i:x}" for i in range(20)] + ["64:ff9b::cb00:7109", None]
    rows: list[dict[str, object]] = []
    for _ in range(records):
        minute = rng.randrange(3 * 24 * 60)
        time = (
            at(minute) + dt.timedelta(seconds=rng.randrange(60)) if rng.random() > 0.001 else None
        )
        nat = rng.choice(NAT_IPS[: rng.choice([2, 5])]) if rng.random() > 0.001 else None
        gateway = rng.choice(GATEWAYS) if rng.random() > 0.001 else None
        rows.append(
            flow(
                time,  # type: ignore[arg-type]
                rng.choice(sources),  # type: ignore[arg-type]
                rng.choice(destinations),  # type: ignore[arg-type]
                nat,  # type: ignore[arg-type]
                sent=rng.choice([None, rng.randrange(10), rng.randrange(10**8)]),
                received=rng.choice([None, 0, rng.randrange(10**7)]),
                packets_sent=rng.choice([None, rng.randrange(1000)]),
                packets_received=rng.randrange(1000),
                sent_dropped=rng.choice([None, 0, 0, rng.randrange(50)]),
                received_dropped=rng.choice([0, rng.randrange(50)]),
                gateway=gateway,  # type: ignore[arg-type]
            )
        )
    rng.shuffle(rows)
    return frame(*rows)


@pytest.fixture(scope="module")
def random_month() -> pl.DataFrame:
    return pl.concat([random_flows(seed) for seed in (1, 2)])


# -- the reference itself is what the earlier tests pinned ------------------------------


def test_reference_matches_the_documented_sample(sample_flows: pl.DataFrame) -> None:
    usage = reference_nat_ip_usage(sample_flows).select(
        "nat_gateway_ip", "ip_version", pl.col("share").round(3)
    )
    assert usage.head(2).rows() == [("20.61.15.40", 4, 0.501), ("20.61.15.41", 4, 0.499)]


def test_random_data_has_every_case(random_month: pl.DataFrame) -> None:
    # The equalities below compare answers with several gateways, both IP versions and
    # missing keys, not a single row.
    usage = reference_nat_ip_usage(random_month)
    assert usage.height > 10
    assert set(usage.get_column("ip_version")) == {4, 6}
    assert usage.get_column("resource_id").null_count() > 0
    assert usage.get_column("nat_gateway_ip").null_count() > 0
    assert reference_top_destinations(random_month, n=None).height > 50
    # a missing destination among those kept: its totals count, its sources do not
    kept = reference_top_destinations(random_month, n=1000)
    assert kept.filter(pl.col("destination_ip").is_null()).get_column("sources").to_list() == [0]


# -- the samples, random data eager, lazy and from a Parquet store -----------------------


@pytest.mark.parametrize(("analysis", "reference", "options"), CASES)
def test_samples_as_before(
    sample_flows: pl.DataFrame, analysis: Analysis, reference: Analysis, options: dict[str, Any]
) -> None:
    expected = reference(sample_flows, **options)
    same(analysis(sample_flows, **options), expected)
    same(analysis(sample_flows.lazy(), **options), expected)


@pytest.mark.parametrize(("analysis", "reference", "options"), CASES)
def test_random_data_as_before(
    random_month: pl.DataFrame, analysis: Analysis, reference: Analysis, options: dict[str, Any]
) -> None:
    expected = reference(random_month, **options)
    same(analysis(random_month, **options), expected)
    same(analysis(random_month.lazy(), **options), expected)


@pytest.mark.parametrize(("analysis", "reference", "options"), CASES)
def test_parquet_store_as_before(
    random_month: pl.DataFrame,
    analysis: Analysis,
    reference: Analysis,
    options: dict[str, Any],
    tmp_path: Path,
) -> None:
    # A store files records by day: those without a time are left out of it.
    natlens.write_parquet(random_month.drop_nulls("time"), tmp_path / "store", part="day")
    store = natlens.scan_parquet(tmp_path / "store")
    same(analysis(store, **options), reference(store, **options))


# -- edge cases --------------------------------------------------------------------------


def every(minutes: int, count: int, nat: str, **kw: Any) -> list[dict[str, object]]:
    return [
        flow(at(i * minutes), f"10.0.0.{i % 3 + 4}", f"198.51.100.{i % 7}", nat, **kw)
        for i in range(count)
    ]


EDGES: dict[str, pl.DataFrame] = {
    "empty": frame(),
    "one record": frame(flow(at(0), "10.0.0.4", "198.51.100.1", "20.1.1.1", sent=10)),
    "IPv4 and IPv6 NAT IPs of one gateway": frame(
        *every(1, 30, "20.1.1.1", sent=10),
        *every(2, 20, "20.1.1.2", sent=10),
        *every(5, 12, "2603:1020:203:4::28", sent=10),
        *every(5, 4, "2603:1020:203:4::29", sent=10),
        flow(at(0), "fd00::4", "2001:db8::1", "2603:1020:203:4::28"),
        flow(at(0), "10.0.0.4", "64:ff9b::cb00:7109", "20.1.1.1"),
    ),
    "several gateways": frame(
        *every(1, 10, "20.1.1.1", gateway=GATEWAYS[1]),
        *every(1, 10, "20.1.1.1", gateway=GATEWAYS[0]),
        *every(3, 6, "20.2.2.2", gateway=GATEWAYS[2]),
        *every(3, 9, "20.2.2.3", gateway=GATEWAYS[2]),
    ),
    "nulls": frame(
        *every(6, 8, "20.1.1.1", sent=None, received=None, packets_sent=None),
        flow(None, "10.0.0.4", "198.51.100.2", "20.1.1.1", sent=7),  # type: ignore[arg-type]
        flow(at(0), None, "198.51.100.2", "20.1.1.1", sent=7),  # type: ignore[arg-type]
        flow(at(0), "10.0.0.4", None, "20.1.1.2", sent=7),  # type: ignore[arg-type]
        flow(at(0), None, None, "20.1.1.2", sent=7),  # type: ignore[arg-type]
        flow(at(1), "10.0.0.4", "198.51.100.2", None, sent=7),  # type: ignore[arg-type]
        flow(at(1), "10.0.0.4", "198.51.100.2", "20.1.1.1", gateway=None),  # type: ignore[arg-type]
        flow(at(1), "10.0.0.4", "198.51.100.2", None, gateway=None),  # type: ignore[arg-type]
    ),
    "ties": frame(
        *every(10, 20, "20.1.1.3", sent=100),
        *every(10, 20, "20.1.1.1", sent=100),
        *every(10, 20, "20.1.1.2", sent=100),
        *every(10, 20, "2603:1020:203:4::29", sent=100),
        *every(10, 20, "2603:1020:203:4::28", sent=100),
    ),
}


@pytest.mark.parametrize("name", list(EDGES))
@pytest.mark.parametrize(("analysis", "reference", "options"), CASES)
def test_edge_cases_as_before(
    name: str, analysis: Analysis, reference: Analysis, options: dict[str, Any]
) -> None:
    flows = EDGES[name]
    expected = reference(flows, **options)
    same(analysis(flows, **options), expected)
    same(analysis(flows.lazy(), **options), expected)


@pytest.mark.parametrize(("analysis", "reference", "options"), CASES)
def test_json_lines_scan_as_before(
    random_month: pl.DataFrame,
    analysis: Analysis,
    reference: Analysis,
    options: dict[str, Any],
    tmp_path: Path,
) -> None:
    # A scan that decodes every record each time it is read is queried once, as before.
    lines = tmp_path / "flows.jsonl"
    random_month.write_ndjson(lines)
    scan = pl.scan_ndjson(lines, schema=natlens.FLOW_SCHEMA)
    assert not rescannable(scan)
    same(analysis(scan, **options), reference(random_month, **options))
