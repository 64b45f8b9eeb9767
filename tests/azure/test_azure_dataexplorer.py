"""Azure Data Explorer: the same KQL through the real KustoClient against the loopback v2 API."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import polars as pl
import pytest
from livedata import START, StaticToken

# The fixtures (Azurite, the loopback service, the KQL analyzer) come from a module: a
# conftest.py here would clash with tests/conftest.py under --doctest-modules.
from livefixtures import *  # noqa: F403
from loopback import LoopbackServer

from natlens import FLOW_SCHEMA
from natlens._schema import COUNTER_COLUMNS
from natlens.azure import DataExplorerError, QueryOptions, read_data_explorer, scan_data_explorer

END = START + timedelta(hours=12)
KEYS = ["time", "source_ip", "destination_ip", "nat_gateway_ip", "resource_id"]


def _connection(server: LoopbackServer) -> Any:
    from azure.kusto.data import KustoConnectionStringBuilder

    return KustoConnectionStringBuilder.with_token_provider(
        server.endpoint, lambda: StaticToken.token
    )


def _read(
    server: LoopbackServer, start: Any = START, end: Any = END, **options: Any
) -> pl.DataFrame:
    return read_data_explorer(
        server.endpoint,
        "netlogs",
        start,
        end,
        options=QueryOptions(progress=False, **options),
        connection=_connection(server),
    )


def test_rollup_from_data_explorer_matches_the_records(
    loopback: LoopbackServer, flows: pl.DataFrame
) -> None:
    got = _read(loopback, rollup="1h", sources=["10.0.0.4", "10.0.1.10"], span=timedelta(hours=6))
    expected = (
        flows.filter(pl.col("time") < END, pl.col("source_ip").is_in(["10.0.0.4", "10.0.1.10"]))
        .group_by(pl.col("time").dt.truncate("1h"), *KEYS[1:])
        .agg(pl.col(c).sum() for c in COUNTER_COLUMNS)
        .select(FLOW_SCHEMA.names())
    )
    assert got.schema == FLOW_SCHEMA
    assert got.sort(KEYS).equals(expected.sort(KEYS))
    log = loopback.state.log
    assert {e["path"] for e in log} == {"/v2/rest/query"}
    assert {e["body"]["db"] for e in log} == {"netlogs"}
    assert all(e["authorization"] == f"Bearer {StaticToken.token}" for e in log)
    # The options' server timeout (default 600 s) travels as the request's servertimeout.
    assert all('"servertimeout": "0:10:00"' in e["properties"] for e in log)


def test_a_truncated_answer_is_split_not_kept(
    loopback: LoopbackServer, flows: pl.DataFrame
) -> None:
    loopback.state.max_rows = 1_500
    got = _read(loopback, span=timedelta(hours=12))
    expected = flows.filter(pl.col("time") < END)
    assert got.sort(KEYS).equals(expected.sort(KEYS))
    assert any(e["rows"] == 1_500 for e in loopback.state.log if "rows" in e)


def test_a_window_that_stays_truncated_raises(loopback: LoopbackServer) -> None:
    loopback.state.max_rows = 2
    with pytest.raises(DataExplorerError, match=r"window \[.*\) cannot be fetched whole"):
        _read(loopback, end=START + timedelta(minutes=2))


def test_missing_table_and_lazy_scan(loopback: LoopbackServer, flows: pl.DataFrame) -> None:
    lazy = scan_data_explorer(
        loopback.endpoint,
        "netlogs",
        START,
        START + timedelta(hours=1),
        options=QueryOptions(progress=False),
        connection=_connection(loopback),
    )
    assert lazy.collect_schema() == FLOW_SCHEMA
    assert loopback.state.log == []
    assert lazy.collect().height == flows.filter(pl.col("time") < START + timedelta(hours=1)).height
    loopback.state.tables = {}
    with pytest.raises(DataExplorerError, match="no flow-log table found"):
        _read(loopback)


def test_options_data_explorer_cannot_honour_are_refused(loopback: LoopbackServer) -> None:
    """plan is a Log Analytics table plan; concurrency has Data Explorer's own limit."""
    with pytest.raises(ValueError, match="plan='basic' is a Log Analytics table plan"):
        _read(loopback, plan="basic")
    with pytest.raises(ValueError, match="max_concurrency=17 must be between 1 and 16"):
        _read(loopback, max_concurrency=17)
    assert loopback.state.log == []
    # 16 is within the cluster's limit, beyond Log Analytics's five.
    got = _read(loopback, end=START + timedelta(minutes=30), max_concurrency=16)
    assert got.height > 0
