"""Gateway metrics through the real MetricsClient against the loopback batch API."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import polars as pl
import pytest
from livedata import GATEWAYS, START, SUBS, make_metrics

# The fixtures (Azurite, the loopback service, the KQL analyzer) come from a module: a
# conftest.py here would clash with tests/conftest.py under --doctest-modules.
from livefixtures import *  # noqa: F403
from loopback import LoopbackServer

from natlens import METRICS_SCHEMA
from natlens.azure import read_gateway_metrics

ORDER = ["time", "resource_id", "metric", "protocol", "direction", "connection_state"]


@pytest.fixture
def metrics_server(loopback: LoopbackServer) -> LoopbackServer:
    loopback.state.metrics = make_metrics()
    return loopback


def test_metrics_come_back_tidy_in_metrics_schema(
    metrics_server: LoopbackServer, credential: Any
) -> None:
    end = START + timedelta(hours=2)
    # Ids in the case ARM hands them out; the frame keeps them upper case like the flows.
    ids = [g.replace("/SUBSCRIPTIONS/", "/subscriptions/") for g in GATEWAYS]
    got = read_gateway_metrics(
        ids,
        START,
        end,
        endpoint=metrics_server.endpoint,
        credential=credential,
        metrics=[
            "DatapathAvailability",
            "SNATConnectionCount",
            "TotalConnectionCount",
            "PacketDropCount",
            "ByteCount",
        ],
    )
    assert got.schema == METRICS_SCHEMA
    # The API names protocols by number; natlens reads them as read_metrics does.
    expected = (
        make_metrics()
        .filter(pl.col("time") < end, pl.col("metric") != "PacketCount")
        .with_columns(pl.col("protocol").replace({"6": "TCP", "17": "UDP"}))
        .sort(ORDER)
    )
    assert got.sort(ORDER).equals(expected)
    failed = got.filter(metric="SNATConnectionCount", connection_state="Failed")
    assert failed.height == 2 * 120 * 3  # two protocols, 120 minutes, three gateways
    assert set(got["protocol"].drop_nulls()) == {"TCP", "UDP"}
    # One batch request per subscription and metric, each with its own dimension split.
    log = metrics_server.state.log
    assert len(log) == 2 * 5
    assert {e["path"] for e in log} == {f"/subscriptions/{s}/metrics:getBatch" for s in SUBS}
    filters = {e["query"]["metricnames"][0]: e["query"].get("filter", [None])[0] for e in log}
    assert filters == {
        "DatapathAvailability": None,
        "SNATConnectionCount": "Protocol eq '*' and ConnectionState eq '*'",
        "TotalConnectionCount": "Protocol eq '*'",
        "PacketDropCount": None,
        "ByteCount": "Protocol eq '*' and Direction eq '*'",
    }
    aggregations = {e["query"]["metricnames"][0]: e["query"]["aggregation"][0] for e in log}
    assert aggregations["DatapathAvailability"] == "Average"
    assert aggregations["ByteCount"] == "Total"
    assert all(e["query"]["interval"] == ["PT1M"] for e in log)
    assert all(e["authorization"] == f"Bearer {credential.token}" for e in log)


def test_metrics_retry_throttling(metrics_server: LoopbackServer, credential: Any) -> None:
    metrics_server.state.throttle = 1
    got = read_gateway_metrics(
        GATEWAYS[2],
        START,
        START + timedelta(minutes=10),
        endpoint=metrics_server.endpoint,
        credential=credential,
        metrics=["PacketDropCount"],
    )
    assert got.height == 10
    assert [e["status"] for e in metrics_server.state.log] == [429, 200]


def test_metrics_arguments_are_checked(credential: Any) -> None:
    with pytest.raises(ValueError, match="not a NAT gateway resource id"):
        read_gateway_metrics(
            "/subscriptions/x/resourceGroups/rg/providers/Microsoft.Compute/virtualMachines/vm",
            START,
            START + timedelta(hours=1),
            endpoint="http://127.0.0.1:9",
            credential=credential,
        )
    with pytest.raises(ValueError, match="unknown"):
        read_gateway_metrics(
            GATEWAYS[0],
            START,
            START + timedelta(hours=1),
            endpoint="http://127.0.0.1:9",
            credential=credential,
            metrics=["SnatPortsUsed"],
        )
