"""KQL text natlens sends to Log Analytics and Azure Data Explorer.

Every value that comes from a user ends up in a KQL string literal built by
:func:`kql_string` (or a datetime/timespan literal built from a parsed value), never
pasted in as text. Column names come from the table's own schema
(:func:`column_map`), because KQL names are case-sensitive and Microsoft spells some
of them two ways.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta

from natlens._fields import field_map
from natlens._schema import COUNTER_COLUMNS, FLOW_SCHEMA
from natlens._time import time_bound, time_range
from natlens._typing import Targets, TimeLike
from natlens.azure._options import QueryOptions, check_name, ip_spellings, parse_grain

__all__ = [
    "FLOW_TABLES",
    "TableColumns",
    "build_flow_query",
    "column_map",
    "flow_kql",
    "kql_datetime",
    "kql_string",
    "kql_timespan",
    "parse_grain",
    "range_bounds",
    "schema_query",
]

FLOW_TABLES: tuple[str, ...] = ("NatGatewayFlowlogsV1", "NatGatewayFlowLogsV1")
"""Table names Microsoft uses for the flow log, the documented spelling first."""

# The table's columns as Microsoft documents them; a workspace may spell some otherwise
# (natlens._fields knows every spelling), which column_map discovers.
DOCUMENTED_COLUMNS: tuple[str, ...] = (
    "TimeGenerated",
    "SourceIp",
    "DestinationIp",
    "NatGatewayIp",
    "PacketsSent",
    "PacketsReceived",
    "PacketsSentDropped",
    "PacketsReceivedDropped",
    "BytesSent",
    "BytesReceived",
    "_ResourceId",
)


def kql_string(value: str) -> str:
    """Return ``value`` as a KQL string literal that cannot end early.

    Backslash and double quote are escaped, and every character outside printable
    ASCII is written as a ``\\u`` escape of four hex digits, so quotes, pipes, newlines
    and comment markers in ``value`` stay inside the literal.

    Examples
    --------
    >>> kql_string("10.0.0.4")
    '"10.0.0.4"'
    >>> print(kql_string('x" | take 1 //'))
    "x\\" | take 1 //"
    >>> print(kql_string("a\\nb"))
    "a\\u000ab"
    """
    if not isinstance(value, str):
        raise TypeError(f"a KQL string literal needs str, got {type(value).__name__}")
    out = ['"']
    for char in value:
        code = ord(char)
        if char in ('"', "\\"):
            out.append("\\" + char)
        elif 0x20 <= code <= 0x7E:
            out.append(char)
        elif code <= 0xFFFF:
            out.append(f"\\u{code:04x}")
        else:
            code -= 0x10000
            out.append(f"\\u{0xD800 + (code >> 10):04x}\\u{0xDC00 + (code & 0x3FF):04x}")
    out.append('"')
    return "".join(out)


def kql_datetime(value: TimeLike, argument: str = "time") -> str:
    """Return a KQL ``datetime(...)`` literal for ``value`` (a naive value is UTC).

    Examples
    --------
    >>> from datetime import datetime, UTC
    >>> kql_datetime(datetime(2025, 11, 4, 10, 1, tzinfo=UTC))
    'datetime(2025-11-04T10:01:00.000000Z)'
    >>> kql_datetime("2025-11-04T10:01")
    'datetime(2025-11-04T10:01:00.000000Z)'
    """
    moment = time_bound(value, argument=argument)
    if moment is None:
        raise ValueError(f"{argument}: a time is needed, got None")
    return "datetime(" + moment.strftime("%Y-%m-%dT%H:%M:%S.%fZ") + ")"


def kql_timespan(value: timedelta) -> str:
    """Return a KQL timespan literal (``1m``, ``15m``, ``1h``, ``1d``) for whole minutes.

    Examples
    --------
    >>> from datetime import timedelta
    >>> kql_timespan(timedelta(hours=1)), kql_timespan(timedelta(minutes=90))
    ('1h', '90m')
    """
    minutes = parse_grain(value) // timedelta(minutes=1)
    if minutes % 1440 == 0:
        return f"{minutes // 1440}d"
    if minutes % 60 == 0:
        return f"{minutes // 60}h"
    return f"{minutes}m"


@dataclass(frozen=True)
class TableColumns:
    """Where each natlens column lives in a workspace's flow-log table.

    Build it with :func:`column_map` from the table's ``getschema`` answer.
    """

    table: str
    columns: Mapping[str, str]

    def __post_init__(self) -> None:
        check_name(self.table, "table")
        for name in self.columns.values():
            check_name(name, "column")


def schema_query(table: str = FLOW_TABLES[0]) -> str:
    """KQL that lists the real column names and types of ``table``.

    Examples
    --------
    >>> schema_query()
    'NatGatewayFlowlogsV1 | getschema | project ColumnName, ColumnType'
    """
    check_name(table, "table")
    return f"{table} | getschema | project ColumnName, ColumnType"


def column_map(table: str, schema: Iterable[str]) -> TableColumns:
    """Match the columns a table really has to natlens columns.

    Parameters
    ----------
    table
        The table's name as the workspace spells it.
    schema
        The table's column names (the ``ColumnName`` of ``getschema``).

    Raises
    ------
    ValueError
        If a column natlens needs is missing under every known spelling.

    Examples
    --------
    >>> cols = column_map(
    ...     "NatGatewayFlowlogsV1",
    ...     [
    ...         "TimeGenerated",
    ...         "SourceIP",
    ...         "DestinationIp",
    ...         "NatGatewayIp",
    ...         "PacketsSent",
    ...         "PacketsReceived",
    ...         "PacketsSentDropped",
    ...         "PacketsReceivedDropped",
    ...         "BytesSent",
    ...         "BytesReceived",
    ...         "_ResourceId",
    ...     ],
    ... )
    >>> cols.columns["source_ip"]
    'SourceIP'
    """
    present = list(schema)
    found = field_map(present)
    missing = [name for name in FLOW_SCHEMA.names() if name not in found]
    if missing:
        raise ValueError(
            f"table {table} lacks the flow-log columns {', '.join(missing)}; "
            f"it has {', '.join(sorted(present)) or 'no columns'}"
        )
    mapping = {name: found[name] for name in FLOW_SCHEMA.names()}
    return TableColumns(table, mapping)


def _ip_values(values: Targets, argument: str) -> list[str]:
    given = [values] if isinstance(values, str) else list(values)
    out = [text for value in given for text in ip_spellings(value, argument)]
    return list(dict.fromkeys(out))


def _in(column: str, values: Iterable[str]) -> str:
    return f"| where {column} in~ ({', '.join(kql_string(v) for v in values)})"


def range_bounds(start: TimeLike, end: TimeLike) -> tuple[datetime, datetime]:
    """``start`` and ``end`` as UTC datetimes, both given and in order (naive is UTC)."""
    low, high = time_range(start, end)
    if low is None or high is None:
        missing = "start" if low is None else "end"
        raise ValueError(f"{missing}: a time is needed, got None")
    return low, high


def build_flow_query(
    columns: TableColumns,
    start: TimeLike,
    end: TimeLike,
    options: QueryOptions | None = None,
    *,
    basic: bool = False,
) -> str:
    """Build the KQL for the flow records in ``[start, end)``, filtered on the server.

    Without a ``rollup`` the query returns one row per record; with a grain it returns
    the counters summed per time bin, source, destination, NAT IP and gateway. Either
    way the result columns are named and ordered like :data:`natlens.FLOW_SCHEMA`.

    Parameters
    ----------
    columns
        The table's real spelling, from :func:`column_map`.
    start, end
        Bounds (naive is UTC); ``start`` is included, ``end`` excluded.
    options
        The filters and the rollup (:class:`QueryOptions`); default none.
    basic
        The table is on the Basic plan: the query holds no time filter, as Microsoft
        requires; the range travels as the request's timespan.

    Examples
    --------
    >>> from datetime import datetime, UTC
    >>> cols = column_map(
    ...     "NatGatewayFlowlogsV1",
    ...     [
    ...         "TimeGenerated",
    ...         "SourceIp",
    ...         "DestinationIp",
    ...         "NatGatewayIp",
    ...         "PacketsSent",
    ...         "PacketsReceived",
    ...         "PacketsSentDropped",
    ...         "PacketsReceivedDropped",
    ...         "BytesSent",
    ...         "BytesReceived",
    ...         "_ResourceId",
    ...     ],
    ... )
    >>> q = build_flow_query(
    ...     cols,
    ...     datetime(2025, 11, 4, tzinfo=UTC),
    ...     datetime(2025, 11, 5, tzinfo=UTC),
    ...     QueryOptions(sources=["2001:DB8::10"], rollup="1h"),
    ... )
    >>> print(q.splitlines()[2])
    | where SourceIp in~ ("2001:db8::10", "2001:DB8::10")
    """
    options = QueryOptions() if options is None else options
    c = columns.columns
    t0, t1 = range_bounds(start, end)
    lines = [columns.table]
    if not basic:
        lines.append(
            f"| where {c['time']} >= {kql_datetime(t0)} and {c['time']} < {kql_datetime(t1)}"
        )
    for argument, name, values in (
        ("sources", "source_ip", options.sources),
        ("destinations", "destination_ip", options.destinations),
        ("nat_ips", "nat_gateway_ip", options.nat_ips),
    ):
        if values is not None:
            lines.append(_in(c[name], _ip_values(values, argument)))
    if options.gateways is not None:
        gateways = options.gateways
        names = [gateways] if isinstance(gateways, str) else list(gateways)
        ids = [g for g in names if "/" in g]
        bare = [g for g in names if "/" not in g]
        tests = []
        if ids:
            tests.append(f"{c['resource_id']} in~ ({', '.join(kql_string(g) for g in ids)})")
        tests.extend(
            f"{c['resource_id']} endswith {kql_string('/NATGATEWAYS/' + g.upper())}" for g in bare
        )
        lines.append("| where " + " or ".join(tests))
    keys = ("source_ip", "destination_ip", "nat_gateway_ip")
    time = "['time']"  # a keyword in KQL: bracketed to name a column
    if options.rollup is None:
        projected = [f"{time} = {c['time']}"]
        projected += [f"{k} = {c[k]}" for k in keys]
        projected += [f"{k} = {c[k]}" for k in COUNTER_COLUMNS]
        projected.append(f"resource_id = {c['resource_id']}")
        lines.append("| project " + ", ".join(projected))
    else:
        grain = kql_timespan(options.grain())
        sums = ", ".join(f"{k} = sum({c[k]})" for k in COUNTER_COLUMNS)
        by = [f"{time} = bin({c['time']}, {grain})"]
        by += [f"{k} = {c[k]}" for k in keys]
        by.append(f"resource_id = {c['resource_id']}")
        lines.append(f"| summarize {sums} by {', '.join(by)}")
        order = [time, *keys, *COUNTER_COLUMNS, "resource_id"]
        lines.append("| project " + ", ".join(order))
    return "\n".join(lines)


def flow_kql(
    start: TimeLike,
    end: TimeLike,
    *,
    options: QueryOptions | None = None,
    schema: Iterable[str] | None = None,
) -> str:
    """The KQL natlens runs for a range, for Azure Data Explorer or the portal.

    The same text :func:`natlens.read_log_analytics` sends per query; its result has
    the columns of :data:`natlens.FLOW_SCHEMA`. Run it on an Azure Data Explorer cluster
    holding the table with azure-kusto-data (see ``docs/azure.md``).

    Parameters
    ----------
    start, end
        Bounds of the range (naive is UTC); ``start`` included, ``end`` excluded.
    options
        Filters, rollup, the table's name (default ``NatGatewayFlowlogsV1``) and plan
        (:class:`QueryOptions`). With ``plan="basic"`` the text holds no time filter:
        give the range as the query's time range instead.
    schema
        The table's column names (``T | getschema``); default the documented spelling.

    Examples
    --------
    >>> from datetime import datetime, UTC
    >>> print(
    ...     flow_kql(
    ...         datetime(2025, 11, 4, tzinfo=UTC),
    ...         datetime(2025, 11, 5, tzinfo=UTC),
    ...         options=QueryOptions(gateways="ng-weu-1", rollup="1h"),
    ...     ).splitlines()[2]
    ... )
    | where _ResourceId endswith "/NATGATEWAYS/NG-WEU-1"
    """
    options = QueryOptions() if options is None else options
    names = list(DOCUMENTED_COLUMNS) if schema is None else list(schema)
    table = FLOW_TABLES[0] if options.table is None else options.table
    return build_flow_query(
        column_map(table, names), start, end, options, basic=options.plan == "basic"
    )
