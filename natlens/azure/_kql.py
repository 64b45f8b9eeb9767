"""KQL text natlens sends to Log Analytics and Azure Data Explorer.

Every value that comes from a user ends up in a KQL string literal built by
:func:`kql_string` (or a datetime/timespan literal built from a parsed value), never
pasted in as text. Column names come from the table's own schema
(:func:`column_map`), because KQL names are case-sensitive and Microsoft spells some
of them two ways.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from natlens._fields import field_map
from natlens._schema import COUNTER_COLUMNS, FLOW_SCHEMA, canonical_ip

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

_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


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


def _utc(value: datetime, argument: str) -> datetime:
    if not isinstance(value, datetime):
        raise TypeError(f"{argument} must be a datetime, got {type(value).__name__}")
    if value.tzinfo is None:
        raise ValueError(f"{argument} must be timezone-aware (UTC), got naive {value.isoformat()}")
    return value.astimezone(UTC)


def kql_datetime(value: datetime, argument: str = "time") -> str:
    """Return a KQL ``datetime(...)`` literal for a timezone-aware ``value``.

    Examples
    --------
    >>> from datetime import datetime, UTC
    >>> kql_datetime(datetime(2025, 11, 4, 10, 1, tzinfo=UTC))
    'datetime(2025-11-04T10:01:00.000000Z)'
    """
    return "datetime(" + _utc(value, argument).strftime("%Y-%m-%dT%H:%M:%S.%fZ") + ")"


_GRAIN = re.compile(r"^\s*(\d+)\s*(d|h|m|min|s)\s*$")
_GRAIN_UNITS = {"d": "days", "h": "hours", "m": "minutes", "min": "minutes", "s": "seconds"}


def parse_grain(grain: str | timedelta, argument: str = "rollup") -> timedelta:
    """Parse a time grain such as ``"1h"``, ``"15m"``, ``"1d"`` or a ``timedelta``.

    Examples
    --------
    >>> parse_grain("15m")
    datetime.timedelta(seconds=900)
    """
    if isinstance(grain, timedelta):
        value = grain
    else:
        match = _GRAIN.match(str(grain))
        if match is None:
            raise ValueError(
                f"{argument}={grain!r} is not a time grain; use e.g. '1m', '15m', '1h', '1d' "
                "or a datetime.timedelta"
            )
        value = timedelta(**{_GRAIN_UNITS[match.group(2)]: int(match.group(1))})
    if value < timedelta(minutes=1) or value % timedelta(minutes=1):
        raise ValueError(f"{argument}={grain!r} must be a positive whole number of minutes")
    return value


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
        for name in (self.table, *self.columns.values()):
            if not _NAME.match(name):
                raise ValueError(f"{name!r} is not a plain KQL name")


def schema_query(table: str = FLOW_TABLES[0]) -> str:
    """KQL that lists the real column names and types of ``table``.

    Examples
    --------
    >>> schema_query()
    'NatGatewayFlowlogsV1 | getschema | project ColumnName, ColumnType'
    """
    if not _NAME.match(table):
        raise ValueError(f"table={table!r} is not a plain KQL table name")
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


def _ip_values(values: Sequence[str] | str, argument: str) -> list[str]:
    if isinstance(values, str):
        values = [values]
    out: list[str] = []
    for value in values:
        try:
            canonical = canonical_ip(value)
        except (ValueError, AttributeError):
            raise ValueError(f"{argument}: {value!r} is not an IP address") from None
        out.extend(dict.fromkeys([canonical, value.strip()]))
    if not out:
        raise ValueError(f"{argument} is empty; pass None for no filter")
    return out


def _in(column: str, values: Sequence[str]) -> str:
    return f"| where {column} in~ ({', '.join(kql_string(v) for v in values)})"


def build_flow_query(
    columns: TableColumns,
    start: datetime,
    end: datetime,
    *,
    sources: Sequence[str] | str | None = None,
    destinations: Sequence[str] | str | None = None,
    nat_ips: Sequence[str] | str | None = None,
    gateways: Sequence[str] | str | None = None,
    rollup: str | timedelta | None = None,
    plan: str = "analytics",
) -> str:
    """Build the KQL for the flow records in ``[start, end)``, filtered on the server.

    Without ``rollup`` the query returns one row per record; with a grain it returns
    the counters summed per time bin, source, destination, NAT IP and gateway. Either
    way the result columns are named and ordered like :data:`natlens.FLOW_SCHEMA`.

    Parameters
    ----------
    columns
        The table's real spelling, from :func:`column_map`.
    start, end
        Timezone-aware bounds; ``start`` is included, ``end`` excluded.
    sources, destinations, nat_ips
        IP addresses to keep (any spelling; compared case-insensitively).
    gateways
        NAT gateway resource ids, or gateway names (matched against the id's end).
    rollup
        A time grain such as ``"1h"`` (see :func:`parse_grain`), or None for raw rows.
    plan
        The table's plan. ``"basic"``: the query holds no time filter, as Microsoft
        requires for Basic-plan tables; the range travels as the request's timespan.

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
    ...     sources=["10.0.0.4"],
    ...     rollup="1h",
    ... )
    >>> print(q.splitlines()[2])
    | where SourceIp in~ ("10.0.0.4")
    """
    c = columns.columns
    t0, t1 = _utc(start, "start"), _utc(end, "end")
    if t1 <= t0:
        raise ValueError(f"end ({t1.isoformat()}) must be after start ({t0.isoformat()})")
    if plan not in ("analytics", "basic"):
        raise ValueError(f"plan={plan!r} must be 'analytics' or 'basic'")
    lines = [columns.table]
    if plan == "analytics":
        lines.append(
            f"| where {c['time']} >= {kql_datetime(t0)} and {c['time']} < {kql_datetime(t1)}"
        )
    for argument, name, values in (
        ("sources", "source_ip", sources),
        ("destinations", "destination_ip", destinations),
        ("nat_ips", "nat_gateway_ip", nat_ips),
    ):
        if values is not None:
            lines.append(_in(c[name], _ip_values(values, argument)))
    if gateways is not None:
        names = [gateways] if isinstance(gateways, str) else list(gateways)
        if not names:
            raise ValueError("gateways is empty; pass None for no filter")
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
    if rollup is None:
        projected = [f"{time} = {c['time']}"]
        projected += [f"{k} = {c[k]}" for k in keys]
        projected += [f"{k} = {c[k]}" for k in COUNTER_COLUMNS]
        projected.append(f"resource_id = {c['resource_id']}")
        lines.append("| project " + ", ".join(projected))
    else:
        grain = kql_timespan(parse_grain(rollup))
        sums = ", ".join(f"{k} = sum({c[k]})" for k in COUNTER_COLUMNS)
        by = [f"{time} = bin({c['time']}, {grain})"]
        by += [f"{k} = {c[k]}" for k in keys]
        by.append(f"resource_id = {c['resource_id']}")
        lines.append(f"| summarize {sums} by {', '.join(by)}")
        order = [time, *keys, *COUNTER_COLUMNS, "resource_id"]
        lines.append("| project " + ", ".join(order))
    return "\n".join(lines)


def flow_kql(
    start: datetime,
    end: datetime,
    *,
    table: str = FLOW_TABLES[0],
    schema: Iterable[str] | None = None,
    sources: Sequence[str] | str | None = None,
    destinations: Sequence[str] | str | None = None,
    nat_ips: Sequence[str] | str | None = None,
    gateways: Sequence[str] | str | None = None,
    rollup: str | timedelta | None = None,
    plan: str = "analytics",
) -> str:
    """The KQL natlens runs for a range, for Azure Data Explorer or the portal.

    The same text :func:`natlens.read_log_analytics` sends per window; its result has
    the columns of :data:`natlens.FLOW_SCHEMA`. Run it on an Azure Data Explorer cluster
    holding the table with azure-kusto-data (see ``docs/azure.md``).

    Parameters
    ----------
    start, end
        Timezone-aware bounds; ``start`` included, ``end`` excluded.
    table
        The table's name.
    schema
        The table's column names (``T | getschema``); default the documented spelling.
    sources, destinations, nat_ips, gateways, rollup
        As in :func:`natlens.read_log_analytics`.
    plan
        ``"basic"`` for a Basic-plan table: no time filter in the text (give the range
        as the query's time range instead).

    Examples
    --------
    >>> from datetime import datetime, UTC
    >>> print(
    ...     flow_kql(
    ...         datetime(2025, 11, 4, tzinfo=UTC),
    ...         datetime(2025, 11, 5, tzinfo=UTC),
    ...         nat_ips="203.0.113.10",
    ...         rollup="1h",
    ...     ).splitlines()[2]
    ... )
    | where NatGatewayIp in~ ("203.0.113.10")
    """
    names = list(DOCUMENTED_COLUMNS) if schema is None else list(schema)
    return build_flow_query(
        column_map(table, names),
        start,
        end,
        sources=sources,
        destinations=destinations,
        nat_ips=nat_ips,
        gateways=gateways,
        rollup=rollup,
        plan=plan,
    )
