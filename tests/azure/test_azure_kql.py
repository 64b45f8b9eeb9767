"""Every KQL text natlens generates passes Microsoft's analyzer; user values stay literals."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from livedata import GATEWAYS, LA_TYPES, LA_TYPES_ALT

# The fixtures (Azurite, the loopback service, the KQL analyzer) come from a module: a
# conftest.py here would clash with tests/conftest.py under --doctest-modules.
from livefixtures import *  # noqa: F403

from natlens.azure import QueryOptions
from natlens.azure._kql import (
    TableColumns,
    build_flow_query,
    column_map,
    flow_kql,
    kql_string,
    parse_grain,
    schema_query,
)

T0 = datetime(2025, 11, 4, 10, 30, tzinfo=UTC)
T1 = datetime(2025, 11, 5, 10, 30, tzinfo=UTC)

HOSTILE = [
    'x" | take 1 //',
    "x') or true //",
    "a\nb\r\tc",
    '\\"; .drop table NatGatewayFlowlogsV1',
    '@"verbatim"',
    "```multi```",
    "NG-ÄÖ-😀-ng",
    "\x00\x1f\x7f",
    "' or 1==1 or '",
]

FLOW_TYPES = [
    ["time", "datetime"],
    ["source_ip", "string"],
    ["destination_ip", "string"],
    ["nat_gateway_ip", "string"],
    ["packets_sent", "long"],
    ["packets_received", "long"],
    ["packets_sent_dropped", "long"],
    ["packets_received_dropped", "long"],
    ["bytes_sent", "long"],
    ["bytes_received", "long"],
    ["resource_id", "string"],
]


def _query(cols: TableColumns, start: Any, end: Any, *, basic: bool = False, **options: Any) -> str:
    return build_flow_query(cols, start, end, QueryOptions(**options), basic=basic)


def _variants(types: dict[str, str], table: str) -> list[str]:
    cols = column_map(table, types)
    queries = []
    for rollup in (None, "1m", "15m", "1h", "1d", timedelta(minutes=90)):
        for filters in (
            {},
            {"sources": ["10.0.0.4", "2001:DB8::10"]},
            {"destinations": "8.8.8.8", "nat_ips": ["203.0.113.10"]},
            {"gateways": [GATEWAYS[0], "ng-app"]},
            {
                "sources": "10.0.0.5",
                "destinations": ["20.60.1.10"],
                "nat_ips": "203.0.113.11",
                "gateways": "NG-WEU-2",
            },
        ):
            queries.append(_query(cols, T0, T1, rollup=rollup, **filters))
    return queries


@pytest.mark.parametrize(
    ("types", "table"),
    [(LA_TYPES, "NatGatewayFlowlogsV1"), (LA_TYPES_ALT, "NatGatewayFlowLogsV1")],
    ids=["documented-spelling", "other-spelling"],
)
def test_every_generated_query_passes_the_analyzer(
    kql_check: Any, types: dict[str, str], table: str
) -> None:
    queries = [*_variants(types, table), schema_query(table)]
    results = kql_check(queries)
    for query, result in zip(queries, results, strict=True):
        assert result["diagnostics"] == [], query
    # Raw and rolled-up queries alike return the FLOW_SCHEMA columns with KQL types.
    for result in results[:-1]:
        assert result["columns"] == FLOW_TYPES
    assert results[-1]["columns"] == [["ColumnName", "string"], ["ColumnType", "string"]]


def test_the_analyzer_catches_a_wrong_spelling(kql_check: Any) -> None:
    """The check has teeth: the other spelling's query fails on the documented table."""
    alt = column_map("NatGatewayFlowlogsV1", LA_TYPES_ALT)
    (result,) = kql_check([_query(alt, T0, T1, sources="10.0.0.4")])
    codes = {d["code"] for d in result["diagnostics"]}
    assert "KS142" in codes  # unknown name


def _literals(gateways: list[str]) -> list[str]:
    """The string literals the gateway filter must hold: ids whole, names as id ends."""
    ids = [g for g in gateways if "/" in g]
    return ids + ["/NATGATEWAYS/" + g.upper() for g in gateways if "/" not in g]


def test_hostile_gateway_names_stay_single_literals(kql_check: Any) -> None:
    cols = column_map("NatGatewayFlowlogsV1", LA_TYPES)
    cases = [[h, "/SUBS/" + h] for h in HOSTILE] + [HOSTILE]
    queries = [_query(cols, T0, T1, gateways=g) for g in cases]
    queries.append(_query(cols, T0, T1, gateways=HOSTILE, rollup="1h"))
    results = kql_check(queries)
    for gateways, result in zip([*cases, HOSTILE], results, strict=True):
        assert result["diagnostics"] == []
        # The only other literal is the bracketed output column name ['time'].
        assert [v for v in result["strings"] if v != "time"] == _literals(gateways)
        assert result["columns"] == FLOW_TYPES


def test_kql_string_round_trips_through_the_analyzer(kql_check: Any) -> None:
    results = kql_check([f"print s = {kql_string(h)}" for h in HOSTILE])
    assert [r["strings"] for r in results] == [[h] for h in HOSTILE]
    assert all(r["diagnostics"] == [] for r in results)


@pytest.mark.parametrize("bad", [*HOSTILE, "10.0.0.256", "", "10.0.0.4/24"])
def test_ip_filters_accept_only_addresses(bad: str) -> None:
    cols = column_map("NatGatewayFlowlogsV1", LA_TYPES)
    with pytest.raises(ValueError, match="sources"):
        _query(cols, T0, T1, sources=["10.0.0.4", bad])
    with pytest.raises(ValueError, match="nat_ips"):
        _query(cols, T0, T1, nat_ips=bad)


def test_bad_arguments_name_themselves() -> None:
    cols = column_map("NatGatewayFlowlogsV1", LA_TYPES)
    with pytest.raises(ValueError, match="rollup='fortnight'"):
        _query(cols, T0, T1, rollup="fortnight")
    with pytest.raises(ValueError, match="rollup='30s'"):
        parse_grain("30s")
    with pytest.raises(ValueError, match=r"end: .* is not after start"):
        build_flow_query(cols, T1, T0)
    with pytest.raises(ValueError, match="start: 'noon' is not an ISO date or time"):
        build_flow_query(cols, "noon", T1)
    with pytest.raises(ValueError, match="gateways is empty"):
        _query(cols, T0, T1, gateways=[])
    with pytest.raises(ValueError, match="lacks the flow-log columns source_ip"):
        column_map("NatGatewayFlowlogsV1", [c for c in LA_TYPES if c != "SourceIp"])
    with pytest.raises(ValueError, match=r"table='T \| take 1' is not a plain KQL name"):
        schema_query("T | take 1")
    with pytest.raises(ValueError, match=r"table='T \| take 1' is not a plain KQL name"):
        QueryOptions(table="T | take 1")


def test_naive_times_are_utc() -> None:
    """As in the local loaders: naive datetimes and ISO text without a zone are UTC."""
    cols = column_map("NatGatewayFlowlogsV1", LA_TYPES)
    aware = build_flow_query(cols, T0, T1)
    assert build_flow_query(cols, T0.replace(tzinfo=None), T1.replace(tzinfo=None)) == aware
    assert build_flow_query(cols, "2025-11-04T10:30", "2025-11-05 10:30") == aware
    assert "datetime(2025-11-04T10:30:00.000000Z)" in aware


def test_flow_kql_defaults_to_the_documented_spelling() -> None:
    text = flow_kql(T0, T1, options=QueryOptions(sources="10.0.0.4", rollup="1h"))
    assert text.splitlines()[0] == "NatGatewayFlowlogsV1"
    assert "sum(BytesSent)" in text
    assert "bin(TimeGenerated, 1h)" in text


def test_random_text_round_trips_through_the_analyzer(kql_check: Any) -> None:
    """Any text, including quotes, backslashes, controls and astral characters."""
    rng = random.Random(20251104)
    alphabet = [
        '"',
        "'",
        "\\",
        "|",
        "/",
        "*",
        "\n",
        "\r",
        "\t",
        "\x00",
        "`",
        "@",
        "é",
        "😀",
        "\u2028",
    ]
    texts = [
        "".join(
            rng.choice(alphabet) if rng.random() < 0.5 else chr(rng.randint(32, 0x2FFF))
            for _ in range(rng.randint(0, 24))
        )
        for _ in range(300)
    ]
    results = kql_check([f"print s = {kql_string(t)}" for t in texts])
    assert [r["strings"] for r in results] == [[t] for t in texts]
    assert all(r["diagnostics"] == [] for r in results)


# Operators Microsoft lists as unsupported on Basic-plan tables ("Query data in a Basic
# and Auxiliary table"): multi-table ones, and user-defined functions.
_NOT_ON_BASIC = {"join", "find", "search", "externaldata", "union", "lookup", "invoke"}


def test_basic_plan_queries_are_single_table_without_a_time_filter(kql_check: Any) -> None:
    from loopback import _split_pipes, tokenize

    cols = column_map("NatGatewayFlowlogsV1", LA_TYPES)
    queries = [
        _query(cols, T0, T1, basic=True),
        _query(cols, T0, T1, basic=True, rollup="15m", sources="10.0.0.4"),
        _query(cols, T0, T1, basic=True, gateways=["NG-APP", GATEWAYS[0]]),
    ]
    results = kql_check(queries)
    for query, result in zip(queries, results, strict=True):
        assert result["diagnostics"] == [], query
        assert result["columns"] == FLOW_TYPES
        stages = _split_pipes(tokenize(query))
        assert stages[0] == [("word", "NatGatewayFlowlogsV1")]
        operators = {stage[0][1] for stage in stages[1:]}
        assert operators <= {"where", "project", "summarize"}
        assert not operators & _NOT_ON_BASIC
        # The range goes in the request: no where on the time column.
        assert not [s for s in stages if s[:2] == [("word", "where"), ("word", "TimeGenerated")]]
    # Same records asked for: the Analytics text differs only by its time filter.
    analytics = build_flow_query(cols, T0, T1)
    assert analytics.splitlines()[1].startswith("| where TimeGenerated >= ")
    assert analytics.splitlines()[:1] + analytics.splitlines()[2:] == queries[0].splitlines()
    # flow_kql writes the Basic text when the options say so.
    assert flow_kql(T0, T1, options=QueryOptions(plan="basic")) == queries[0]
    with pytest.raises(ValueError, match="plan='gold' must be one of 'auto', 'analytics', 'basic'"):
        QueryOptions(plan="gold")  # type: ignore[arg-type]


def test_address_filters_send_every_spelling_a_record_may_hold(kql_check: Any) -> None:
    """Log Analytics compares text: canonical, hexadecimal and typed spellings all travel.

    An IPv4 host also stands for the IPv6 addresses that embed it (NAT64 and
    IPv4-mapped, both spellings each), and such an address for its IPv4 host, as
    ``find_flows`` matches them locally; other IPv6 addresses stand for themselves.
    """
    cols = column_map("NatGatewayFlowlogsV1", LA_TYPES)
    query = _query(
        cols,
        T0,
        T1,
        sources="::FFFF:A00:1",
        destinations=["14.1.2.3", "64:ff9b::e01:203"],
        nat_ips=" 2001:DB8::1 ",
    )
    (result,) = kql_check([query])
    assert result["diagnostics"] == []
    assert result["columns"] == FLOW_TYPES
    embedding_14_1_2_3 = [
        "64:ff9b::14.1.2.3",
        "64:ff9b::e01:203",
        "::ffff:14.1.2.3",
        "::ffff:e01:203",
    ]
    assert [v for v in result["strings"] if v != "time"] == [
        # sources: the mapped address as written, canonical and hex, then its host
        "::ffff:10.0.0.1",
        "::ffff:a00:1",
        "::FFFF:A00:1",
        "10.0.0.1",
        "64:ff9b::10.0.0.1",
        "64:ff9b::a00:1",
        # destinations: the host, then what embeds it (the NAT64 value adds nothing new)
        "14.1.2.3",
        *embedding_14_1_2_3,
        # nat_ips: a plain IPv6 address, canonical and as typed
        "2001:db8::1",
        "2001:DB8::1",
    ]
