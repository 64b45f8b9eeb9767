"""Log Analytics end to end: the real LogsQueryClient against the loopback query API."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import polars as pl
import pytest
from livedata import GATEWAYS, LA_TYPES, LA_TYPES_ALT, START, la_table

# The fixtures (Azurite, the loopback service, the KQL analyzer) come from a module: a
# conftest.py here would clash with tests/conftest.py under --doctest-modules.
from livefixtures import *  # noqa: F403
from loopback import LoopbackServer

from natlens import FLOW_SCHEMA
from natlens._schema import COUNTER_COLUMNS, canonical_ip
from natlens.azure import (
    LogAnalyticsError,
    QueryOptions,
    read_log_analytics,
    read_log_analytics_resource,
    scan_log_analytics,
)

WORKSPACE = "5a1e9b3c-0000-4000-8000-00000000beef"
END = START + timedelta(hours=36)
ORDER = ["time", "source_ip", "destination_ip", "nat_gateway_ip"]


def _read(
    server: LoopbackServer,
    credential: Any,
    start: Any = START,
    end: Any = END,
    **options: Any,
) -> pl.DataFrame:
    return read_log_analytics(
        WORKSPACE,
        start,
        end,
        options=QueryOptions(progress=False, **options),
        credential=credential,
        endpoint=server.endpoint,
    )


def _same(actual: pl.DataFrame, expected: pl.DataFrame) -> None:
    assert actual.schema == FLOW_SCHEMA
    keys = [*ORDER, "resource_id"]
    assert actual.sort(keys).equals(expected.sort(keys)), (actual.height, expected.height)


def _queries(server: LoopbackServer) -> list[dict[str, Any]]:
    return [e for e in server.state.log if "getschema" not in e["body"].get("query", "")]


def test_raw_read_returns_every_record_in_flow_schema(
    loopback: LoopbackServer, credential: Any, flows: pl.DataFrame
) -> None:
    start, end = START + timedelta(hours=2, minutes=17), START + timedelta(hours=20, minutes=3)
    got = _read(loopback, credential, start=start, end=end, span=timedelta(hours=6))
    _same(got, flows.filter(pl.col("time").is_between(start, end, closed="left")))
    # IPv6 came back upper case and the ids lower case: canonical again.
    assert "2001:db8::10" in got["source_ip"].to_list()
    assert set(got["resource_id"].unique()) <= set(GATEWAYS)
    sent = _queries(loopback)
    assert len(sent) == 3  # windows of 6 hours over 17h46m
    assert all(e["authorization"] == f"Bearer {credential.token}" for e in loopback.state.log)
    assert all("wait=600" in (e["prefer"] or "") for e in sent)
    assert got["time"].is_sorted()


def test_filters_run_on_the_server(
    loopback: LoopbackServer, credential: Any, flows: pl.DataFrame
) -> None:
    got = _read(
        loopback,
        credential,
        sources=["10.0.0.4", "2001:DB8:0::10"],
        destinations=["8.8.8.8", "20.60.1.10", "2620:1ec:c11::200"],
        gateways=["ng-weu-1", GATEWAYS[2].lower()],
        span=timedelta(hours=12),
    )
    expected = flows.filter(
        pl.col("source_ip").is_in(["10.0.0.4", "2001:db8::10"]),
        pl.col("destination_ip").is_in(["8.8.8.8", "20.60.1.10", "2620:1ec:c11::200"]),
        pl.col("resource_id").is_in([GATEWAYS[0], GATEWAYS[2]]),
    )
    assert expected.height > 100
    _same(got, expected)
    # Only the matching rows travelled.
    assert sum(e["rows"] for e in _queries(loopback)) == expected.height
    by_nat = _read(loopback, credential, nat_ips="198.51.100.7", span=timedelta(hours=36))
    _same(by_nat, flows.filter(pl.col("nat_gateway_ip") == "198.51.100.7"))


@pytest.mark.parametrize("grain", ["1h", "15m", "1d", "7m"])
def test_rollup_is_summed_on_the_server_into_flow_schema(
    loopback: LoopbackServer, credential: Any, flows: pl.DataFrame, grain: str
) -> None:
    # A start off the grain and short windows: bins straddle windows and are added up.
    start = START + timedelta(minutes=50)
    # 7m: an odd grain, default windows (whole bins, about a day).
    span = {"1h": timedelta(hours=5), "15m": timedelta(hours=3), "1d": timedelta(days=1)}
    got = _read(loopback, credential, start=start, rollup=grain, span=span.get(grain))
    every = grain
    expected = (
        flows.filter(pl.col("time") >= start)
        .group_by(
            pl.col("time").dt.truncate(every),
            "source_ip",
            "destination_ip",
            "nat_gateway_ip",
            "resource_id",
        )
        .agg(pl.col(c).sum() for c in COUNTER_COLUMNS)
        .select(FLOW_SCHEMA.names())
    )
    _same(got, expected)
    travelled = sum(e["rows"] for e in _queries(loopback))
    assert travelled < flows.filter(pl.col("time") >= start).height
    if grain in ("1h", "1d"):
        assert travelled < flows.height / 2
    assert got["bytes_sent"].sum() == flows.filter(pl.col("time") >= start)["bytes_sent"].sum()


def test_a_window_at_the_row_cap_is_split_not_truncated(
    loopback: LoopbackServer, credential: Any, flows: pl.DataFrame
) -> None:
    loopback.state.max_rows = 4_000
    got = _read(loopback, credential, span=timedelta(hours=36), max_rows=4_000)
    _same(got, flows)
    answers = _queries(loopback)
    assert any(e["rows"] == 4_000 for e in answers)  # capped answers were seen and dropped
    kept = [e for e in answers if e["rows"] < 4_000]
    assert sum(e["rows"] for e in kept) == flows.height


def test_a_partial_answer_is_retried_in_halves(
    loopback: LoopbackServer, credential: Any, flows: pl.DataFrame
) -> None:
    whole = (
        "TimeGenerated >= datetime(2025-11-04T00:00:00.000000Z) "
        "and TimeGenerated < datetime(2025-11-05T00:00:00.000000Z)"
    )
    loopback.state.partial_when = lambda query: whole in query
    got = _read(loopback, credential, span=timedelta(days=1))
    _same(got, flows)
    assert sum(whole in e["body"]["query"] for e in loopback.state.log) == 1


def test_a_window_that_cannot_be_split_raises_naming_it(
    loopback: LoopbackServer, credential: Any
) -> None:
    loopback.state.partial_when = lambda query: "getschema" not in query
    with pytest.raises(
        LogAnalyticsError,
        match=r"window \[2025-11-04T00:0\d:00\+00:00, 2025-11-04T00:0\d:00\+00:00\) "
        r"cannot be fetched whole \(partial answer: PartialError",
    ):
        _read(loopback, credential, end=START + timedelta(minutes=4))
    assert len(_queries(loopback)) >= 3


def test_throttling_waits_for_retry_after(
    loopback: LoopbackServer, credential: Any, flows: pl.DataFrame
) -> None:
    loopback.state.throttle = 2
    loopback.state.retry_after = 1
    end = START + timedelta(hours=1)
    got = _read(loopback, credential, end=end, max_concurrency=1)
    _same(got, flows.filter(pl.col("time") < end))
    log = loopback.state.log
    assert [e["status"] for e in log[:3]] == [429, 429, 200]
    assert log[1]["at"] - log[0]["at"] >= 0.95
    assert log[2]["at"] - log[1]["at"] >= 0.95


def test_concurrency_stays_within_the_per_user_limit(
    loopback: LoopbackServer, credential: Any, flows: pl.DataFrame
) -> None:
    loopback.state.delay = 0.15
    loopback.state.max_concurrent = 3
    got = _read(loopback, credential, span=timedelta(hours=2), max_concurrency=3)
    _same(got, flows)
    assert loopback.state.peak_in_flight == 3
    assert all(e["status"] == 200 for e in loopback.state.log)
    with pytest.raises(ValueError, match="max_concurrency=6"):
        _read(loopback, credential, max_concurrency=6)


def test_the_other_column_spelling_is_discovered(
    loopback: LoopbackServer, credential: Any, flows: pl.DataFrame
) -> None:
    loopback.state.tables = {
        "NatGatewayFlowLogsV1": la_table(flows, LA_TYPES_ALT, "NatGatewayFlowLogsV1")
    }
    end = START + timedelta(hours=3)
    got = _read(loopback, credential, end=end, sources="10.0.0.5", rollup="1h")
    assert got.height > 0
    assert set(got["source_ip"]) == {"10.0.0.5"}
    queries = [e["body"]["query"] for e in loopback.state.log]
    assert queries[0].startswith("NatGatewayFlowlogsV1 | getschema")  # answered 400
    assert queries[1].startswith("NatGatewayFlowLogsV1 | getschema")
    assert "SourceIP in~" in queries[2]


def test_no_flow_table_is_a_clear_error(loopback: LoopbackServer, credential: Any) -> None:
    loopback.state.tables = {}
    with pytest.raises(LogAnalyticsError, match=r"no flow-log table found.*NatGatewayFlowLogsV1"):
        _read(loopback, credential)


def test_hostile_values_reach_the_server_as_values(
    loopback: LoopbackServer, credential: Any
) -> None:
    hostile = ['NG-WEU-1" or 1==1 //', "x\n| take 100000", "' or '1'=='1"]
    got = _read(loopback, credential, gateways=hostile, end=START + timedelta(hours=1))
    assert got.height == 0
    with pytest.raises(ValueError, match="destinations"):
        _read(loopback, credential, destinations=['8.8.8.8" or true //'])


def test_resource_variant_queries_the_gateway(
    loopback: LoopbackServer, credential: Any, flows: pl.DataFrame
) -> None:
    rid = GATEWAYS[1].lower()
    end = START + timedelta(hours=2)
    got = read_log_analytics_resource(
        rid,
        START,
        end,
        options=QueryOptions(gateways=rid, progress=False),
        credential=credential,
        endpoint=loopback.endpoint,
    )
    _same(got, flows.filter(pl.col("time") < end, pl.col("resource_id") == GATEWAYS[1]))
    assert {e["path"] for e in loopback.state.log} == {f"/v1{rid}/query"}


def test_scan_queries_only_when_collected(
    loopback: LoopbackServer, credential: Any, flows: pl.DataFrame
) -> None:
    end = START + timedelta(hours=1)
    lazy = scan_log_analytics(
        WORKSPACE,
        START,
        end,
        options=QueryOptions(progress=False),
        credential=credential,
        endpoint=loopback.endpoint,
    )
    assert lazy.collect_schema() == FLOW_SCHEMA
    assert loopback.state.log == []
    top = lazy.group_by("destination_ip").agg(pl.col("bytes_sent").sum()).collect()
    expected = (
        flows.filter(pl.col("time") < end)
        .group_by("destination_ip")
        .agg(pl.col("bytes_sent").sum())
    )
    assert top.sort("destination_ip").equals(expected.sort("destination_ip"))


def test_bad_arguments_are_named(loopback: LoopbackServer, credential: Any) -> None:
    with pytest.raises(ValueError, match="start: 'yesterday' is not an ISO date or time"):
        _read(loopback, credential, start="yesterday")
    with pytest.raises(ValueError, match=r"span=1:30:00 must be a whole multiple of the grain"):
        _read(loopback, credential, rollup="1h", span=timedelta(minutes=90))
    with pytest.raises(ValueError, match=r"end: .* is not after start"):
        _read(loopback, credential, end=START)
    with pytest.raises(ValueError, match=r"sources: '10\.0\.0\.300' is not an IP address"):
        _read(loopback, credential, sources=["10.0.0.4", "10.0.0.300"])
    with pytest.raises(ValueError, match="max_rows=500001 must be between 1 and 500000"):
        _read(loopback, credential, max_rows=500_001)
    assert loopback.state.log == []


def test_naive_and_text_times_are_utc(loopback: LoopbackServer, credential: Any) -> None:
    """As in the local loaders: a naive datetime, a date or ISO text without zone is UTC."""
    end = START + timedelta(minutes=3)
    aware = _read(loopback, credential, end=end)
    assert aware.height > 0
    naive = _read(loopback, credential, start=START.replace(tzinfo=None), end=end)
    text = _read(loopback, credential, start="2025-11-04", end="2025-11-04T00:03")
    assert naive.equals(aware)
    assert text.equals(aware)
    bounds = (
        "TimeGenerated >= datetime(2025-11-04T00:00:00.000000Z) "
        "and TimeGenerated < datetime(2025-11-04T00:03:00.000000Z)"
    )
    sent = _queries(loopback)
    assert len(sent) == 3
    assert all(bounds in e["body"]["query"] for e in sent)


def test_timestamps_are_utc(loopback: LoopbackServer, credential: Any) -> None:
    got = _read(loopback, credential, end=START + timedelta(minutes=5))
    assert got["time"].min() == START
    assert got["time"].max() == START + timedelta(minutes=4)
    assert got["time"].dtype == pl.Datetime("us", "UTC")
    assert START.tzinfo is UTC


@pytest.mark.slow
def test_the_real_500000_row_cap_is_split_around(loopback: LoopbackServer, credential: Any) -> None:
    """At the service's own numbers: 600,000 records in two hours, one window."""
    n = 600_000
    big = pl.select(
        (pl.lit(START) + pl.duration(minutes=pl.int_range(n) % 120)).alias("time"),
        pl.format("10.1.{}.{}", (pl.int_range(n) // 250) % 250, pl.int_range(n) % 250).alias(
            "source_ip"
        ),
        pl.format("20.{}.0.1", pl.int_range(n) % 200).alias("destination_ip"),
        pl.lit("203.0.113.10").alias("nat_gateway_ip"),
        *(pl.int_range(n).cast(pl.Int64).alias(c) for c in COUNTER_COLUMNS),
        pl.lit(GATEWAYS[0]).alias("resource_id"),
    ).cast(FLOW_SCHEMA)
    loopback.state.tables = {
        "NatGatewayFlowlogsV1": la_table(big, LA_TYPES, "NatGatewayFlowlogsV1")
    }
    got = _read(loopback, credential, end=START + timedelta(hours=2), span=timedelta(hours=2))
    assert got.height == n
    assert got["bytes_sent"].sum() == big["bytes_sent"].sum()
    rows = [e["rows"] for e in _queries(loopback)]
    assert rows[0] == 500_000  # the whole window: capped, dropped, split
    assert sorted(rows[1:]) == [300_000, 300_000]


# --------------------------------------------------------------------------- Basic plan


def _basic(server: LoopbackServer, flows: pl.DataFrame) -> tuple[datetime, pl.DataFrame]:
    """The flows, moved to ten days ago, in a Basic-plan table; returns their new start."""
    now = datetime.now(UTC).replace(minute=0, second=0, microsecond=0)
    start = now - timedelta(days=10)
    recent = flows.with_columns(pl.col("time") + (start - START))
    table = la_table(recent, LA_TYPES, "NatGatewayFlowlogsV1")
    table.plan = "basic"
    server.state.tables = {"NatGatewayFlowlogsV1": table}
    return start, recent


def _searches(server: LoopbackServer) -> list[dict[str, Any]]:
    return [e for e in server.state.log if e["path"].endswith("/search")]


def test_a_basic_table_is_found_and_read_within_its_limits(
    loopback: LoopbackServer, credential: Any, flows: pl.DataFrame
) -> None:
    start, recent = _basic(loopback, flows)
    loopback.state.delay = 0.05  # long enough for queries to overlap
    end = start + timedelta(hours=12)
    got = _read(loopback, credential, start=start, end=end)
    _same(got, recent.filter(pl.col("time").is_between(start, end, closed="left")))
    log = loopback.state.log
    # One refused /query (the schema probe) told natlens the plan; the rest is /search.
    assert [e["path"].rsplit("/", 1)[-1] for e in log[:2]] == ["query", "search"]
    assert log[0]["status"] == 400
    searches = _searches(loopback)
    assert len(searches) == len(log) - 1
    assert loopback.state.peak_in_flight_search == 2
    windows = [e["query"]["timespan"][0] for e in searches[1:]]
    assert len(windows) == 12  # hour windows, the range in the request
    assert all("where TimeGenerated" not in e["body"]["query"] for e in searches)
    assert all(e["authorization"] == f"Bearer {credential.token}" for e in searches)
    assert all(e["prefer"] == "wait=600" for e in searches)

    # Rolled up on the server, the same way.
    hourly = _read(loopback, credential, start=start, end=end, rollup="1h", plan="basic")
    expected = (
        recent.filter(pl.col("time").is_between(start, end, closed="left"))
        .with_columns(pl.col("time").dt.truncate("1h"))
        .group_by([*ORDER, "resource_id"])
        .agg(pl.col(c).sum() for c in COUNTER_COLUMNS)
        .select(FLOW_SCHEMA.names())
    )
    _same(hourly, expected)


def test_basic_plan_limits_are_said_before_anything_is_billed(
    loopback: LoopbackServer, credential: Any, flows: pl.DataFrame
) -> None:
    start, _ = _basic(loopback, flows)
    with pytest.raises(ValueError, match="allows 2 concurrent queries per user"):
        _read(loopback, credential, start=start, end=start + timedelta(hours=1),
              plan="basic", max_concurrency=3)  # fmt: skip
    old = datetime.now(UTC) - timedelta(days=45)
    with pytest.raises(ValueError, match=r"last 30 days only.*search job"):
        _read(loopback, credential, start=old, end=old + timedelta(hours=1), plan="basic")
    assert loopback.state.log == []
    with pytest.raises(ValueError, match="plan="):
        _read(loopback, credential, plan="premium")

    # Found from the service's answer: refused after the one schema probe, no search.
    with pytest.raises(LogAnalyticsError, match="last 30 days only"):
        _read(loopback, credential, start=old, end=old + timedelta(hours=1))
    assert [e["path"].rsplit("/", 1)[-1] for e in loopback.state.log] == ["query", "search"]
    assert "getschema" in loopback.state.log[-1]["body"]["query"]


def test_a_basic_table_in_a_resource_context_is_a_clear_error(
    loopback: LoopbackServer, credential: Any, flows: pl.DataFrame
) -> None:
    start, _ = _basic(loopback, flows)
    reach = {"credential": credential, "endpoint": loopback.endpoint}
    end = start + timedelta(hours=1)
    basic = QueryOptions(plan="basic", progress=False)
    with pytest.raises(ValueError, match=r"plan='basic'.*read_log_analytics\(<workspace id>"):
        read_log_analytics_resource(GATEWAYS[0], start, end, options=basic, **reach)
    assert loopback.state.log == []
    with pytest.raises(LogAnalyticsError, match=r"Basic plan.*resource's context.*plan='basic'"):
        read_log_analytics_resource(
            GATEWAYS[0], start, end, options=QueryOptions(progress=False), **reach
        )
    assert len(loopback.state.log) == 1  # the refused schema probe, nothing else


def test_an_ipv4_destination_finds_its_nat64_records_on_the_server(
    loopback: LoopbackServer, credential: Any, flows: pl.DataFrame
) -> None:
    """A workspace stores addresses as the gateway wrote them (NAT64 in hex here).

    The server compares text, so the filter on the IPv4 host sends the spellings of
    the addresses that embed it too: the server keeps what ``find_flows`` keeps
    locally, and the records come back in canonical mixed notation.
    """
    from natlens import find_flows

    first = flows.filter(pl.col("time") < START + timedelta(minutes=10)).head(7)
    written = [
        "64:ff9b::e01:203",
        "64:FF9B::14.1.2.3",
        "14.1.2.3",
        "::ffff:e01:203",
        "8.8.8.8",
        "14.1.2.4",
        "2001:db8::e01:203",
    ]
    stored = first.with_columns(pl.Series("destination_ip", written))
    loopback.state.tables = {
        "NatGatewayFlowlogsV1": la_table(stored, LA_TYPES, "NatGatewayFlowlogsV1")
    }
    end = START + timedelta(minutes=10)
    local = stored.with_columns(pl.col("destination_ip").map_elements(canonical_ip, pl.String))
    for value in ("14.1.2.3", "64:ff9b::e01:204"):
        got = _read(loopback, credential, end=end, destinations=value)
        expected = find_flows(local, destinations=value)
        assert got.height > 0
        _same(got, expected)
    got = _read(loopback, credential, end=end, destinations="14.1.2.3")
    assert sorted(got["destination_ip"].to_list()) == [
        "14.1.2.3",
        "64:ff9b::14.1.2.3",
        "64:ff9b::14.1.2.3",
        "::ffff:14.1.2.3",
    ]
