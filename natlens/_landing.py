"""The landing formats beside JSON text, and the resource logs that are not NAT flow logs.

Event Hubs Capture writes Avro files whose ``Body`` holds the event bytes: for a diagnostic
setting, UTF-8 ``{"records": [...]}`` with the same envelope as a storage-account blob. A
Log Analytics export job writes Parquet with the table's own column names. Both are read
file by file; a bad event, record or row costs exactly itself and is reported with the file
and the event's sequence number, or the row.

Storage accounts and event hubs also hold other categories (NSG flow logs, VNet flow logs,
firewall logs, metrics). A file of another category is named for what it is, once, instead
of failing record by record on a missing ``SourceIp``.
"""

from __future__ import annotations

import json
import re
import zlib
from collections import Counter
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import polars as pl

from natlens._fields import field_map
from natlens._files import FlowLogError, Problem, _parse_count, _records_of
from natlens._schema import (
    _CANONICAL_V4,
    COUNTER_COLUMNS,
    FLOW_SCHEMA,
    IP_COLUMNS,
    canonical_ip,
)
from natlens._time import parse_timestamp

__all__ = [
    "AVRO_MAGIC",
    "ForeignTally",
    "category_kind",
    "head_kind",
    "parquet_kind",
    "read_capture",
    "read_export",
    "record_kind",
]

AVRO_MAGIC = b"Obj\x01"
CAPTURE_FIELDS = frozenset(
    {"SequenceNumber", "Offset", "EnqueuedTimeUtc", "SystemProperties", "Properties", "Body"}
)
"""The fields of Event Hubs Capture's Avro schema (``Microsoft.ServiceBus.Messaging.EventData``)."""

NOT_NAT = "not NAT gateway flow logs"

# Categories seen beside NAT gateway flow logs, by lower-case name.
_KNOWN_CATEGORIES = {
    "networksecuritygroupflowevent": "NSG flow log",
    "flowlogflowevent": "VNet flow log",
    "networksecuritygroupevent": "NSG event log",
    "networksecuritygrouprulecounter": "NSG rule counter log",
    "azfwnetworkrule": "Azure Firewall network rule log",
    "azfwapplicationrule": "Azure Firewall application rule log",
    "azfwnatrule": "Azure Firewall DNAT rule log",
    "azurefirewallnetworkrule": "Azure Firewall network rule log",
    "azurefirewallapplicationrule": "Azure Firewall application rule log",
    "loadbalancerhealthevent": "load balancer health event log",
    "ddosprotectionnotifications": "DDoS protection log",
    "ddosmitigationflowlogs": "DDoS mitigation flow log",
}


def _is_nat(category: str) -> bool:
    return "natgatewayflowlog" in category.lower()


def category_kind(category: str) -> str | None:
    """What a resource-log category is, or None for NAT gateway flow logs.

    Examples
    --------
    >>> category_kind("FlowLogFlowEvent")
    'VNet flow log (category FlowLogFlowEvent), not NAT gateway flow logs'
    >>> category_kind("NatGatewayFlowLogsV1") is None
    True
    >>> category_kind("AppServiceHTTPLogs")
    "resource log of category 'AppServiceHTTPLogs', not NAT gateway flow logs"
    """
    if _is_nat(category):
        return None
    known = _KNOWN_CATEGORIES.get(category.lower())
    if known is not None:
        return f"{known} (category {category}), {NOT_NAT}"
    return f"resource log of category {category!r}, {NOT_NAT}"


_METRICS = "platform metrics export (insights-metrics-pt1m), " + NOT_NAT


def record_kind(record: Mapping[str, Any]) -> str | None:
    """What one record is when it is not a NAT gateway flow-log record, else None.

    Only records that say what they are (a ``category``, or a metric's ``metricName``)
    are named; Log Analytics rows carry no category and are left to the field checks.

    Examples
    --------
    >>> record_kind({"category": "NetworkSecurityGroupFlowEvent", "properties": {}})
    'NSG flow log (category NetworkSecurityGroupFlowEvent), not NAT gateway flow logs'
    >>> record_kind({"category": "NatGatewayFlowlogsV1"}) is None
    True
    """
    category = record.get("category")
    if isinstance(category, str) and category:
        return category_kind(category)
    if "metricName" in record and "timeGrain" in record:
        return _METRICS
    return None


_CATEGORY = re.compile(r'"category"\s*:\s*"([^"\\]{1,200})"', re.IGNORECASE)
_METRIC_NAME = re.compile(r'"metricName"\s*:\s*"', re.IGNORECASE)


def head_kind(text: str) -> str | None:
    """What a JSON file is from its first bytes, when none of it is NAT gateway flow logs.

    Looks at every ``"category"`` in ``text``: a file whose categories are all foreign
    (an NSG or VNet flow-log blob, a firewall log) is named by the most frequent one. A
    file mixing NAT records with others (an event hub fed by several settings) is left to
    the record-by-record check.

    Examples
    --------
    >>> head_kind('{"records":[{"time":"2026-11-09T10:00:00Z","category":"FlowLogFlowEvent"')
    'VNet flow log (category FlowLogFlowEvent), not NAT gateway flow logs'
    >>> head_kind('{"time": "2026-11-09T10:00:00Z", "category": "NatGatewayFlowlogsV1"}') is None
    True
    """
    categories = Counter(_CATEGORY.findall(text))
    if categories:
        if any(_is_nat(c) for c in categories):
            return None
        return category_kind(categories.most_common(1)[0][0])
    if _METRIC_NAME.search(text) and "natgatewayip" not in text.lower():
        return _METRICS
    return None


class ForeignTally:
    """Counts the records of other categories met in one file, to report them once.

    Examples
    --------
    >>> tally = ForeignTally()
    >>> (
    ...     tally.skip({"category": "FlowLogFlowEvent"}),
    ...     tally.skip({"category": "NatGatewayFlowlogsV1"}),
    ... )
    (True, False)
    >>> [p.reason for p in tally.problems("hub.json")]
    ['1 record of VNet flow log (category FlowLogFlowEvent), not NAT gateway flow logs: skipped']
    """

    def __init__(self) -> None:
        self.kinds: Counter[str] = Counter()
        self.records = 0

    def skip(self, record: Mapping[str, Any]) -> bool:
        """Count ``record``; True when it is of another category and must be skipped."""
        self.records += 1
        kind = record_kind(record)
        if kind is None:
            return False
        self.kinds[kind] += 1
        return True

    def problems(self, file: str) -> list[Problem]:
        """One problem per kind met: the whole file, or how many of its records."""
        problems = []
        for kind, count in self.kinds.items():
            if count == self.records:
                problems.append(Problem(file, None, f"{kind}: skipped"))
            else:
                what = "record" if count == 1 else "records"
                problems.append(Problem(file, None, f"{count:,} {what} of {kind}: skipped"))
        return problems


# --------------------------------------------------------------------------- Capture Avro


def capture_schema_error(path: Path) -> str | None:
    """Why ``path`` (an Avro file) is not an Event Hubs Capture file, or None if it is."""
    import fastavro

    try:
        with path.open("rb") as fh:
            schema = fastavro.reader(fh).writer_schema
    except (ValueError, EOFError, OSError, zlib.error) as exc:
        return f"unreadable Avro file ({exc})"
    fields = (
        {f.get("name") for f in schema.get("fields", [])} if isinstance(schema, dict) else set()
    )
    missing = sorted(CAPTURE_FIELDS - fields)
    if missing:
        return f"an Avro file that is not Event Hubs Capture output (no {', '.join(missing)})"
    return None


def _events(path: Path, problems: list[Problem]) -> list[dict[str, Any]]:
    """Every Capture record that decodes; a damaged block is reported, what came before kept."""
    import fastavro

    events: list[dict[str, Any]] = []
    with path.open("rb") as fh:
        try:
            for event in fastavro.reader(fh):
                if isinstance(event, dict):
                    events.append(event)
        except (
            ValueError,
            EOFError,
            OSError,
            IndexError,
            OverflowError,
            KeyError,
            zlib.error,
        ) as exc:
            after = (
                f"after event {len(events)} (sequence number {events[-1].get('SequenceNumber')})"
                if events
                else "before its first event"
            )
            problems.append(
                Problem(str(path), None, f"damaged Avro file {after} ({exc}); read what was intact")
            )
    return events


class _Columns:
    """Records gathered column by column with their raw values, for one vectorised check.

    Field spellings are resolved once per distinct set of keys; values of the wrong JSON
    type are named here, every other check is made by :func:`_checked` on whole columns.
    """

    _TEXT = ("time", *IP_COLUMNS)

    def __init__(self) -> None:
        self.values: dict[str, list[Any]] = {name: [] for name in FLOW_SCHEMA.names()}
        self.where: list[tuple[int, str]] = []  # (event index, "event N (...), record R")
        self.early: list[str | None] = []
        self._spellings: dict[tuple[str, ...], dict[str, str]] = {}

    def _names(self, mapping: Mapping[str, Any]) -> dict[str, str]:
        keys = tuple(mapping)
        names = self._spellings.get(keys)
        if names is None:
            names = self._spellings[keys] = field_map(keys)
        return names

    def add(self, record: Mapping[str, Any], event: int, where: str) -> None:
        values = {c: record[k] for c, k in self._names(record).items()}
        props = record.get("properties")
        if isinstance(props, Mapping):
            values.update({c: props[k] for c, k in self._names(props).items()})
        early: str | None = None
        for name in self._TEXT:
            value = values.get(name)
            if value is not None and not isinstance(value, str):
                early = early or f"{name} is not text: {value!r}"
                value = None
            self.values[name].append(value)
        for name in COUNTER_COLUMNS:
            value = values.get(name)
            if value is not None and type(value) is not int:
                try:
                    value = _parse_count(value, name)
                except ValueError as exc:
                    early, value = early or str(exc), None
            if value is not None and not -(2**63) <= value < 2**63:
                early, value = early or f"{name} is out of range: {value}", None
            self.values[name].append(value)
        resource = values.get("resource_id")
        self.values["resource_id"].append(None if resource is None else str(resource))
        self.where.append((event, where))
        self.early.append(early)

    def checked(self, file: str) -> tuple[pl.DataFrame, list[tuple[int, Problem]]]:
        """The good rows in FLOW_SCHEMA, and each bad one's problem keyed by its event."""
        raw = pl.DataFrame(self.values, schema=FLOW_SCHEMA | dict.fromkeys(self._TEXT, pl.String))
        checked = _checked(raw)
        reason = pl.Series(self.early, dtype=pl.String).fill_null(checked.get_column("__reason"))
        bad = [
            (self.where[i][0], Problem(file, None, f"{self.where[i][1]}: {reason[i]}"))
            for i in reason.is_not_null().arg_true().to_list()
        ]
        return checked.filter(reason.is_null()).select(FLOW_SCHEMA.names()), bad


def read_capture(path: Path) -> tuple[pl.DataFrame, list[Problem]]:
    """Read an Event Hubs Capture Avro file into FLOW_SCHEMA.

    A body that is not UTF-8 JSON, or a record that is not a flow-log record, costs
    that body or record and is reported as ``event N (sequence number S)[, record R]``.
    A file with no events (Capture's marker for a window without data) is no problem.
    """
    file = str(path)
    damage: list[Problem] = []
    problems: list[tuple[int, Problem]] = []
    columns = _Columns()
    foreign = ForeignTally()
    for index, event in enumerate(_events(path, damage), start=1):
        where = f"event {index} (sequence number {event.get('SequenceNumber')})"
        body = event.get("Body")
        if not body:
            problems.append((index, Problem(file, None, f"{where}: empty body")))
            continue
        try:
            document = json.loads(bytes(body).decode("utf-8"))
        except UnicodeDecodeError:
            problems.append((index, Problem(file, None, f"{where}: body is not UTF-8 text")))
            continue
        except json.JSONDecodeError as exc:
            reason = f"{where}: body is not valid JSON ({exc.msg})"
            problems.append((index, Problem(file, None, reason)))
            continue
        except RecursionError:
            problems.append((index, Problem(file, None, f"{where}: body nested too deeply")))
            continue
        records: Iterable[object] = _records_of(document)  # JSON: not always objects
        for number, record in enumerate(records, start=1):
            if not isinstance(record, Mapping):
                reason = f"{where}, record {number}: not a record"
                problems.append((index, Problem(file, None, reason)))
            elif not foreign.skip(record):
                columns.add(record, index, f"{where}, record {number}")
    frame, bad = columns.checked(file)
    ordered = sorted([*problems, *bad], key=lambda item: item[0])
    return frame, [p for _, p in ordered] + damage + foreign.problems(file)


# --------------------------------------------------------------------------- export-job Parquet


_REQUIRED = ("time", *IP_COLUMNS)


def parquet_kind(path: Path, columns: list[str]) -> str | None:
    """``"export"`` for a Log Analytics export of NatGatewayFlowlogsV1, else why not.

    The table's columns are recognised in any documented spelling; another table is named
    from its ``Type`` column.
    """
    if set(_REQUIRED) <= set(field_map(columns)):
        return "export"
    if "Type" in columns:
        table = pl.read_parquet(path, columns=["Type"], n_rows=1)
        if table.height and table.item(0, 0):
            return f"Log Analytics export of table {table.item(0, 0)!r}, {NOT_NAT}"
    return None


def _parsed(values: list[Any], parse: Any) -> dict[Any, Any]:
    """Each distinct value mapped to ``parse(value)``, or to None where it raises ValueError."""
    out: dict[Any, Any] = {}
    for value in values:
        try:
            out[value] = parse(value)
        except ValueError:
            out[value] = None
    return out


def _checked(raw: pl.DataFrame) -> pl.DataFrame:
    """FLOW_SCHEMA columns plus ``__reason``: why the row is bad, null when it is fine.

    ``raw`` holds FLOW_SCHEMA names with the file's own types. Each distinct value that is
    not already of the right type is parsed once, by the same rules as the careful path
    (:func:`canonical_ip`, :func:`parse_timestamp`, whole-number counters); the rest is
    one pass of column expressions.
    """
    raw = raw.with_columns(
        pl.lit(None, dtype=dtype).alias(name)
        for name, dtype in FLOW_SCHEMA.items()
        if name not in raw.columns
    )
    parsed: list[pl.Expr] = []
    reasons: list[pl.Expr] = []
    time = raw.schema["time"]
    if isinstance(time, pl.Datetime):
        utc = (
            pl.col("time").dt.replace_time_zone("UTC")
            if time.time_zone is None
            else (pl.col("time").dt.convert_time_zone("UTC"))
        )
        parsed.append(utc.dt.cast_time_unit("us"))
        reasons.append(pl.when(pl.col("time").is_null()).then(pl.lit("missing time")))
    else:
        text = pl.col("time").cast(pl.String)
        stamps = _parsed(
            raw.get_column("time").cast(pl.String).drop_nulls().unique().to_list(), parse_timestamp
        )
        value = text.replace_strict(stamps, default=None, return_dtype=FLOW_SCHEMA["time"])
        parsed.append(value.alias("time"))
        reasons.append(
            pl.when(text.is_null() | (text.str.strip_chars() == ""))
            .then(pl.lit("missing time"))
            .when(value.is_null())
            .then(pl.format("unparseable timestamp {}", text))
        )
    for name in IP_COLUMNS:
        text = pl.col(name).cast(pl.String)
        # Dotted quads already in canonical form are their own canonical text; only the
        # other distinct spellings (IPv6, odd IPv4, garbage) are parsed in Python.
        spellings = raw.get_column(name).cast(pl.String).drop_nulls().unique()
        odd = spellings.filter(~spellings.str.contains(_CANONICAL_V4)).to_list()
        canonical = _parsed(odd, lambda v: canonical_ip(v) if v.strip() else None)
        value = (
            pl.when(text.str.contains(_CANONICAL_V4))
            .then(text)
            .otherwise(text.replace_strict(canonical, default=None, return_dtype=pl.String))
        )
        parsed.append(value.alias(name))
        reasons.append(
            pl.when(text.is_null() | (text.str.strip_chars() == ""))
            .then(pl.lit(f"missing {name}"))
            .when(value.is_null())
            .then(pl.format(f"{name} is not an IP address: '{{}}'", text))
        )
    for name in COUNTER_COLUMNS:
        column = pl.col(name)
        if raw.schema[name].is_integer():
            value = column.cast(pl.Int64, strict=False)
        else:
            unique = raw.get_column(name).drop_nulls().unique().to_list()
            numbers = _parsed(unique, lambda v, n=name: _parse_count(v, n))
            value = column.replace_strict(numbers, default=None, return_dtype=pl.Int64)
        parsed.append(value.alias(name))
        reasons.append(
            pl.when(column.is_not_null() & value.is_null()).then(
                pl.format(f"{name} is not a whole number in range: {{}}", column)
            )
        )
    parsed.append(pl.col("resource_id").cast(pl.String).str.to_uppercase())
    # The first check that fails is the reason given: time, then IPs, then counters.
    return raw.select(*parsed, pl.coalesce(reasons).alias("__reason")).select(
        *[pl.col(n).cast(t) for n, t in FLOW_SCHEMA.items()], "__reason"
    )


def read_export(path: Path) -> tuple[pl.DataFrame, list[Problem]]:
    """Read a Log Analytics export-job Parquet file of NatGatewayFlowlogsV1 into FLOW_SCHEMA.

    A row with a bad value costs that row and is reported with its 1-based row number in
    the file as ``line``; the file's other rows are kept.
    """
    file = str(path)
    try:
        table = pl.read_parquet(path)
    except (pl.exceptions.PolarsError, OSError) as exc:
        return pl.DataFrame(schema=FLOW_SCHEMA), [
            Problem(file, None, f"unreadable Parquet ({exc})")
        ]
    names = field_map(table.columns)
    raw = table.select([pl.col(source).alias(column) for column, source in names.items()])
    numbered = _checked(raw).with_row_index("__row", offset=1)
    bad = numbered.filter(pl.col("__reason").is_not_null())
    problems = [
        Problem(file, row, reason) for row, reason in bad.select("__row", "__reason").iter_rows()
    ]
    frame = numbered.filter(pl.col("__reason").is_null()).select(FLOW_SCHEMA.names())
    if frame.height == 0 and not problems:
        problems.append(Problem(file, None, "no records"))
    return frame, problems


def load(path: Path, format: str, reason: str | None = None) -> tuple[pl.DataFrame, list[Problem]]:
    """Load one file of a landing ``format`` (``avro``, ``export``, or ``foreign``)."""
    if format == "avro":
        return read_capture(path)
    if format == "export":
        return read_export(path)
    if format == "foreign":
        return pl.DataFrame(schema=FLOW_SCHEMA), [Problem(str(path), None, reason or NOT_NAT)]
    raise FlowLogError(str(path), None, f"no reader for format {format!r}")
