"""The landing formats beside JSON text, and the resource logs that are not NAT flow logs.

Event Hubs Capture writes Avro files whose ``Body`` holds the event bytes: for a diagnostic
setting, UTF-8 ``{"records": [...]}`` with the same envelope as a storage-account blob. A
Log Analytics export job writes Parquet with the table's own column names. Both are read
file by file; a bad event, record or row costs exactly itself and is reported with the file
and the event's sequence number, or the row. Their values go through the same checks as
JSON Lines (:func:`natlens._files._validated`): one bad value, one verdict, one reason,
whatever the format.

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
from natlens._files import (
    FlowLogError,
    Problem,
    _JsonNumber,
    _Normaliser,
    _records_of,
    _validated,
)
from natlens._schema import FLOW_SCHEMA, IP_COLUMNS

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

    def problems(self, file: str, *, whole: bool = True) -> list[Problem]:
        """One problem per kind met: the whole file, or how many of its records.

        ``whole=False``: only some of the file's records were counted (lines read again
        after a fast read), so the file is never said to be all of one kind.
        """
        problems = []
        for kind, count in self.kinds.items():
            if whole and count == self.records:
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


def read_capture(path: Path) -> tuple[pl.DataFrame, list[Problem]]:
    """Read an Event Hubs Capture Avro file into FLOW_SCHEMA.

    A body that is not UTF-8 JSON, or a record that is not a flow-log record, costs
    that body or record and is reported as ``event N (sequence number S)[, record R]``.
    A file with no events (Capture's marker for a window without data) is no problem.
    """
    file = str(path)
    damage: list[Problem] = []
    problems: list[tuple[int, Problem]] = []
    rows = _Normaliser(None)  # each record's row number stands in for its line
    places: list[tuple[int, str]] = []  # per row: (event index, "event N (...), record R")
    foreign = ForeignTally()
    for index, event in enumerate(_events(path, damage), start=1):
        where = f"event {index} (sequence number {event.get('SequenceNumber')})"
        body = event.get("Body")
        if not body:
            problems.append((index, Problem(file, None, f"{where}: empty body")))
            continue
        try:
            # Numbers keep their own text, as on the JSON Lines paths (never a float).
            document = json.loads(
                bytes(body).decode("utf-8"), parse_float=_JsonNumber, parse_constant=_JsonNumber
            )
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
                rows.add(record, len(places) + 1)
                places.append((index, f"{where}, record {number}"))
    frame, bad = rows.checked(file)
    for problem in bad:
        assert problem.line is not None
        at, place = places[problem.line - 1]
        problems.append((at, Problem(file, None, f"{place}: {problem.reason}")))
    ordered = sorted(problems, key=lambda item: item[0])
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


def _raw(values: pl.Series) -> pl.Series:
    """A Parquet column as text, as a JSON reader hands a value to :func:`_validated`.

    Datetimes stay as they are; numbers become their digits, so that a bad one (negative,
    2**63 or more, not whole) gets the reason it gets in JSON, word for word.
    """
    dtype = values.dtype
    if isinstance(dtype, pl.Datetime) or dtype == pl.String:
        return values
    if dtype.is_nested() or dtype in (pl.Binary, pl.Object):
        text = [
            None if v is None else json.dumps(v, separators=(",", ":"), default=str)
            for v in values.to_list()
        ]
        return pl.Series(values.name, text, dtype=pl.String)
    return values.cast(pl.String)


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
    raw = pl.DataFrame(
        [_raw(table.get_column(source)).alias(column) for column, source in names.items()]
    ).with_row_index("line", offset=1)
    frame, problems = _validated(raw, file)
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
