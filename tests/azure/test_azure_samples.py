"""The shipped samples through the live paths: blobs via Azurite, metrics via MetricsClient."""

from __future__ import annotations

import gzip
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import polars as pl

# The fixtures (Azurite, the loopback service, the KQL analyzer) come from a module: a
# conftest.py here would clash with tests/conftest.py under --doctest-modules.
from livefixtures import *  # noqa: F403
from loopback import LoopbackServer

import natlens
from natlens.azure import read_gateway_metrics, sync_blobs

SAMPLES = Path(__file__).resolve().parents[2] / "data" / "samples"
FLOWLOGS = SAMPLES / "flowlogs" / "insights-logs-natgatewayflowlogsv1"
DAY = datetime(2026, 11, 11, tzinfo=UTC)
KEYS = list(natlens.FLOW_SCHEMA.names())
ORDER = ["time", "resource_id", "metric", "protocol", "direction", "connection_state"]


def test_a_day_of_shipped_flow_logs_syncs_to_the_same_records(
    container: Any, azurite: Any, tmp_path: Path
) -> None:
    # In the container the blobs are plain PT1H.json append blobs, as Azure writes them.
    day_files = []
    for path in sorted(FLOWLOGS.rglob("PT1H.json.gz")):
        name = path.relative_to(FLOWLOGS).as_posix().removesuffix(".gz")
        client = container.get_blob_client(name)
        client.create_append_blob()
        client.append_block(gzip.decompress(path.read_bytes()))
        if "/y=2026/m=11/d=11/" in name or "/y=2026/m=11/d=12/h=00/" in name:
            day_files.append(path)
    cache = tmp_path / "cache"
    report = sync_blobs(
        cache,
        DAY,
        DAY + timedelta(days=1),
        connection_string=azurite.connection_string,
        container=container.container_name,
        progress=False,
    )
    assert report.blobs_new == len(day_files) == 2 * 25
    got = natlens.scan_parquet(cache / "parquet").collect().sort(KEYS, nulls_last=True)
    expected = natlens.read_flowlogs(day_files).sort(KEYS, nulls_last=True)
    assert got.height > 10_000
    assert got.equals(expected)


def test_shipped_metrics_come_back_through_the_metrics_api(
    loopback: LoopbackServer, credential: Any
) -> None:
    shipped = natlens.read_metrics(SAMPLES / "metrics.csv.gz")
    # The service names protocols by number, as the documentation says.
    loopback.state.metrics = shipped.with_columns(
        pl.col("protocol").replace({"TCP": "6", "UDP": "17"})
    )
    start, end = DAY + timedelta(hours=8), DAY + timedelta(hours=14)
    gateways = shipped["resource_id"].unique().sort().to_list()
    got = read_gateway_metrics(
        gateways, start, end, endpoint=loopback.endpoint, credential=credential
    )
    expected = shipped.filter(pl.col("time").is_between(start, end, closed="left"))
    assert got.height == expected.height > 0
    assert got.sort(ORDER).equals(expected.sort(ORDER))
