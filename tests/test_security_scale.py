"""find_beacons and find_exfiltration at scale give exactly what the first versions gave.

The first versions are kept here, verbatim, as the reference: they sorted every active
minute of every candidate pair (beacons) and grouped every record at once, which at a
month of a busy gateway set the summary's peak memory. The rewrites in
``natlens._security`` must return the very same frame (schema, rows, order, every float
bit for bit) on the samples, on random data read in one pass and in several, and on the
edge cases below.
"""

from __future__ import annotations

import datetime as dt
import random
from collections.abc import Callable
from pathlib import Path
from typing import Any

import polars as pl
import pytest
from analysis_frames import at, flow, frame
from polars.testing import assert_frame_equal

import natlens
from natlens import _security
from natlens._typing import FrameLike
from natlens._usage import as_lazy


def _zero(name: str) -> pl.Expr:
    return pl.col(name).fill_null(0)


def reference_beacons(
    flows: FrameLike,
    *,
    min_contacts: int = 8,
    max_bytes_per_contact: float = 50_000,
    min_score: float = 0.5,
) -> pl.DataFrame:
    """natlens.find_beacons as it was before its rewrite for month-sized stores."""
    lazy = as_lazy(flows)
    keys = ["source_ip", "destination_ip"]
    per_minute = lazy.group_by(*keys, pl.col("time").dt.truncate("1m").alias("minute")).agg(
        (_zero("bytes_sent") + _zero("bytes_received")).sum().alias("bytes")
    )
    candidates = (
        per_minute.group_by(keys)
        .agg(active=pl.len(), total=pl.col("bytes").sum())
        .filter(
            (pl.col("active") >= min_contacts)
            & (pl.col("total") / pl.col("active") <= max_bytes_per_contact)
        )
        .select(keys)
    )
    minutes = (
        per_minute.join(candidates, on=keys, how="semi", nulls_equal=True)
        .sort(*keys, "minute")
        .with_columns(
            starts=(
                (pl.col("minute") - pl.col("minute").shift(1)).over(keys) != dt.timedelta(minutes=1)
            ).fill_null(True)
        )
    )
    interval = (pl.col("minute") - pl.col("minute").shift(1)).dt.total_minutes().cast(pl.Float64)
    contacts = (
        minutes.filter("starts")
        .with_columns(interval=interval.over(keys))
        .group_by(keys)
        .agg(
            contacts=pl.len().cast(pl.Int64),
            interval_minutes=pl.col("interval").median(),
            interval_mad=(pl.col("interval") - pl.col("interval").median()).abs().median(),
            first_seen=pl.col("minute").min(),
            last_seen=pl.col("minute").max(),
        )
    )
    volume = minutes.group_by(keys).agg(bytes=pl.col("bytes").sum())
    return (
        contacts.filter(pl.col("contacts") >= min_contacts)
        .join(volume, on=keys)
        .with_columns(
            bytes_per_contact=pl.col("bytes") / pl.col("contacts"),
            regularity=(1.0 - pl.col("interval_mad") / pl.col("interval_minutes")).clip(0.0, 1.0),
        )
        .with_columns(score=pl.col("regularity") * (1.0 - 1.0 / pl.col("contacts")))
        .filter(
            (pl.col("bytes_per_contact") <= max_bytes_per_contact) & (pl.col("score") >= min_score)
        )
        .select(
            *keys,
            "contacts",
            "interval_minutes",
            "interval_mad",
            "regularity",
            "bytes_per_contact",
            "first_seen",
            "last_seen",
            "score",
        )
        .sort(["score", "contacts", *keys], descending=[True, True, False, False])
        .collect()
    )


def reference_exfiltration(
    flows: FrameLike,
    *,
    min_bytes_sent: int = 100_000_000,
    min_upload_ratio: float = 5.0,
    max_sources: int = 1,
    min_minutes: int = 5,
) -> pl.DataFrame:
    """natlens.find_exfiltration as it was before its rewrite for month-sized stores."""
    lazy = as_lazy(flows)
    keys = ["source_ip", "destination_ip"]
    rarity = lazy.group_by("destination_ip").agg(
        destination_sources=pl.col("source_ip").n_unique().cast(pl.Int64)
    )
    return (
        lazy.group_by(keys)
        .agg(
            _zero("bytes_sent").sum().alias("bytes_sent"),
            _zero("bytes_received").sum().alias("bytes_received"),
            pl.col("time").dt.truncate("1m").n_unique().cast(pl.Int64).alias("active_minutes"),
            pl.col("time").min().alias("first_seen"),
            pl.col("time").max().alias("last_seen"),
        )
        .join(rarity, on="destination_ip")
        .with_columns(
            upload_ratio=pl.col("bytes_sent") / pl.max_horizontal(pl.col("bytes_received"), 1)
        )
        .filter(
            (pl.col("bytes_sent") >= min_bytes_sent)
            & (pl.col("upload_ratio") >= min_upload_ratio)
            & (pl.col("destination_sources") <= max_sources)
            & (pl.col("active_minutes") >= min_minutes)
        )
        .select(
            *keys,
            "bytes_sent",
            "bytes_received",
            "upload_ratio",
            "active_minutes",
            "first_seen",
            "last_seen",
            "destination_sources",
        )
        .sort(["bytes_sent", *keys], descending=[True, False, False])
        .collect()
    )


Analysis = Callable[..., pl.DataFrame]
PAIRS: list[tuple[Analysis, Analysis]] = [
    (natlens.find_beacons, reference_beacons),
    (natlens.find_exfiltration, reference_exfiltration),
]
BEACON_OPTIONS: list[dict[str, Any]] = [
    {},
    {"min_contacts": 2, "max_bytes_per_contact": 10**12, "min_score": 0.0},
    {"min_contacts": 1, "max_bytes_per_contact": 10**15, "min_score": -1.0},
    {"min_contacts": 0, "max_bytes_per_contact": 0, "min_score": 0.0},
    {"min_contacts": 30, "max_bytes_per_contact": 2000.5, "min_score": 0.9},
]
EXFILTRATION_OPTIONS: list[dict[str, Any]] = [
    {},
    {"min_bytes_sent": 0, "min_upload_ratio": 0.0, "max_sources": 10**6, "min_minutes": 0},
    {"min_bytes_sent": 10_000, "min_upload_ratio": 1.5, "max_sources": 3, "min_minutes": 2},
    {"min_bytes_sent": 1, "min_upload_ratio": 0.0, "max_sources": 0, "min_minutes": 1},
]
CASES = [
    pytest.param(natlens.find_beacons, reference_beacons, options, id=f"beacons-{i}")
    for i, options in enumerate(BEACON_OPTIONS)
] + [
    pytest.param(natlens.find_exfiltration, reference_exfiltration, options, id=f"exfil-{i}")
    for i, options in enumerate(EXFILTRATION_OPTIONS)
]


def same(found: pl.DataFrame, expected: pl.DataFrame) -> None:
    """Equal schema, rows and order, floats bit for bit."""
    assert_frame_equal(found, expected, check_exact=True)


@pytest.fixture
def in_passes(monkeypatch: pytest.MonkeyPatch) -> Callable[[int], None]:
    """Make the analyses split data of more than ``records`` records into passes."""

    def set_records(records: int) -> None:
        monkeypatch.setattr(_security, "_PASS_RECORDS", records)

    return set_records


def random_flows(seed: int, records: int = 40_000) -> pl.DataFrame:
    """Random records over three days: busy and quiet pairs, IPv4 and IPv6, some beacons.

    Beacons to destinations of their own check in every 5 to 60 minutes with a jitter, a
    missed check-in, or a session of a few minutes; many records share a minute, bytes
    are sometimes missing (null), and several sources reach each of a few destinations.
    """
    rng = random.Random(seed)
    sources = [f"10.0.{i // 250}.{i % 250 + 4}" for i in range(40)] + ["fd00::4", "fd00::5"]
    destinations = [f"198.51.100.{i}" for i in range(30)] + [f"2001:db8::{i:x}" for i in range(20)]
    rows: list[dict[str, object]] = []
    for _ in range(records):
        start = at(rng.randrange(3 * 24 * 60), hours=0) + dt.timedelta(seconds=rng.randrange(60))
        sent = rng.choice([None, rng.randrange(10), rng.randrange(10**4), rng.randrange(10**8)])
        received = rng.choice([None, 0, rng.randrange(10**5), rng.randrange(10**7)])
        source = rng.choice(sources[: rng.choice([3, 42])])
        rows.append(flow(start, source, rng.choice(destinations), sent=sent, received=received))
    for beacon in range(12):
        source = rng.choice(sources)
        destination = rng.choice([f"203.0.113.{beacon}", f"2001:db8:b::{beacon}"])
        every, minute = rng.choice([5, 7, 15, 60]), rng.randrange(60)
        while minute < 3 * 24 * 60:
            for extra in range(rng.choice([1, 1, 1, 2, 3])):
                rows.append(flow(at(minute + extra), source, destination, sent=beacon * 50))
            minute += every + rng.choice([0, 0, 1, -1, every])
    rng.shuffle(rows)
    return frame(*rows)


@pytest.fixture(scope="module")
def random_month() -> pl.DataFrame:
    return pl.concat([random_flows(seed) for seed in (1, 2)])


# -- the reference itself is what the earlier tests and the samples pinned ---------------


def test_reference_finds_the_planted_beacon(
    sample_flows: pl.DataFrame, answer_key: dict[str, Any]
) -> None:
    beacon = next(e for e in answer_key["events"] if e["kind"] == "beacon")
    top = reference_beacons(sample_flows).row(0, named=True)
    assert (top["source_ip"], top["contacts"]) == (beacon["vm_ip"], beacon["numbers"]["contacts"])


# -- the samples -------------------------------------------------------------------------


@pytest.mark.parametrize(("analysis", "reference", "options"), CASES)
def test_samples_as_before(
    sample_flows: pl.DataFrame,
    analysis: Analysis,
    reference: Analysis,
    options: dict[str, Any],
    in_passes: Callable[[int], None],
) -> None:
    expected = reference(sample_flows, **options)
    same(analysis(sample_flows, **options), expected)
    same(analysis(sample_flows.lazy(), **options), expected)
    in_passes(50_000)  # the week's records in several passes
    same(analysis(sample_flows, **options), expected)


# -- random data, in one pass and in many, eager, lazy and from a Parquet store -----------


@pytest.mark.parametrize(("analysis", "reference", "options"), CASES)
def test_random_data_as_before(
    random_month: pl.DataFrame,
    analysis: Analysis,
    reference: Analysis,
    options: dict[str, Any],
    in_passes: Callable[[int], None],
) -> None:
    expected = reference(random_month, **options)
    same(analysis(random_month, **options), expected)
    for records in (10_000, 1):  # several passes, then the most there are
        in_passes(records)
        same(analysis(random_month.lazy(), **options), expected)


def test_random_data_finds_something(random_month: pl.DataFrame) -> None:
    # The equality above compares answers that are not empty.
    assert reference_beacons(random_month).height >= 5
    assert reference_exfiltration(random_month, **EXFILTRATION_OPTIONS[2]).height >= 5


@pytest.mark.parametrize(("analysis", "reference"), PAIRS)
def test_parquet_store_in_passes_as_before(
    random_month: pl.DataFrame,
    analysis: Analysis,
    reference: Analysis,
    tmp_path: Path,
    in_passes: Callable[[int], None],
) -> None:
    natlens.write_parquet(random_month, tmp_path / "store", part="month")
    store = natlens.scan_parquet(tmp_path / "store")
    lenient = {} if analysis is natlens.find_beacons else EXFILTRATION_OPTIONS[2]
    in_passes(15_000)
    assert _security._passes(store) > 1
    same(analysis(store, **lenient), reference(random_month, **lenient))


def test_passes_only_over_data_cheap_to_read_again(
    random_month: pl.DataFrame, tmp_path: Path, in_passes: Callable[[int], None]
) -> None:
    in_passes(15_000)
    expected = -(-random_month.height // 15_000)  # 90,000-odd records, 15,000 a pass
    assert 1 < expected < _security._MAX_PASSES
    assert _security._passes(random_month.lazy()) == expected
    assert _security._passes(random_month.lazy().filter(pl.col("time") < at(0))) == 1
    in_passes(1)
    assert _security._passes(random_month.lazy()) == _security._MAX_PASSES
    lines = tmp_path / "flows.jsonl"
    random_month.head(100).write_ndjson(lines)
    # JSON Lines are decoded again on every read: one pass
    assert _security._passes(pl.scan_ndjson(lines, schema=natlens.FLOW_SCHEMA)) == 1


# -- edge cases --------------------------------------------------------------------------


def every(
    minutes: int, count: int, source: str, destination: str, **kw: Any
) -> list[dict[str, object]]:
    return [flow(at(i * minutes), source, destination, **kw) for i in range(count)]


EDGES: dict[str, pl.DataFrame] = {
    "empty": frame(),
    "one record": frame(flow(at(0), "10.0.0.4", "198.51.100.1", sent=10)),
    "a single source": frame(
        *every(5, 20, "10.0.0.4", "198.51.100.1", sent=10),
        *every(7, 12, "10.0.0.4", "198.51.100.2", sent=10),
        *every(1, 30, "10.0.0.4", "198.51.100.3", sent=10),
    ),
    "ties": frame(
        *every(10, 20, "10.0.0.5", "198.51.100.9", sent=100),
        *every(10, 20, "10.0.0.4", "198.51.100.9", sent=100),
        *every(10, 20, "10.0.0.4", "198.51.100.8", sent=100),
        *every(10, 20, "10.0.0.4", "2001:db8::8", sent=100),
    ),
    "nulls": frame(
        *every(6, 20, "10.0.0.4", "198.51.100.1", sent=None, received=None),
        *every(6, 20, "10.0.0.4", "198.51.100.2", sent=None, received=4),
        flow(None, "10.0.0.4", "198.51.100.2", sent=7),  # type: ignore[arg-type]
        *every(6, 20, None, "198.51.100.3", sent=7),  # type: ignore[arg-type]
        *every(6, 20, "10.0.0.4", None, sent=7),  # type: ignore[arg-type]
        *every(6, 20, "10.0.0.6", "198.51.100.3", sent=10**9, received=None),
        flow(None, "10.0.0.6", "198.51.100.3", sent=10**9),  # type: ignore[arg-type]
    ),
    "a pair seen once among beacons": frame(
        flow(at(3), "10.0.0.4", "198.51.100.1", sent=10**9),
        *every(9, 20, "10.0.0.5", "198.51.100.1", sent=10),
    ),
    "IPv6 and NAT64": frame(
        *every(15, 20, "fd00::4", "2001:db8::1", sent=10**7),
        *every(15, 20, "10.0.0.4", "64:ff9b::cb00:7109", sent=10**7),
        *every(15, 20, "fd00::4", "2001:DB8::1", sent=10**7),
    ),
    "irregular and merged minutes": frame(
        *[
            flow(at(m), "10.0.0.4", "198.51.100.1", sent=10)
            for m in (0, 1, 2, 9, 10, 30, 31, 32, 33)
        ],
        *[flow(at(m, hours=1), "10.0.0.4", "198.51.100.1", sent=10) for m in range(0, 50, 5)],
        *[
            flow(at(seconds / 60), "10.0.0.7", "198.51.100.1", sent=10)
            for seconds in range(0, 3000, 37)
        ],
    ),
}


@pytest.mark.parametrize("name", list(EDGES))
@pytest.mark.parametrize(("analysis", "reference", "options"), CASES)
def test_edge_cases_as_before(
    name: str,
    analysis: Analysis,
    reference: Analysis,
    options: dict[str, Any],
    in_passes: Callable[[int], None],
) -> None:
    flows = EDGES[name]
    expected = reference(flows, **options)
    same(analysis(flows, **options), expected)
    in_passes(1)
    same(analysis(flows.lazy(), **options), expected)
