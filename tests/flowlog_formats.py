"""Write FLOW_SCHEMA frames in every format flow logs are found in, as Azure writes them.

Test helpers: each writer follows the format's documented quirks (the portal's CSV
headers and local-style timestamps, the az CLI's all-string JSON, the Event Hubs
wrapper, the storage account's envelope), so reading them back tests the loaders.
"""

from __future__ import annotations

import csv
import datetime as dt
import gzip
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import polars as pl

PROPERTY_NAMES = {
    "source_ip": "SourceIp",
    "destination_ip": "DestinationIp",
    "nat_gateway_ip": "NatGatewayIp",
    "packets_sent": "PacketsSent",
    "packets_received": "PacketsReceived",
    "packets_sent_dropped": "PacketsSentDropped",
    "packets_received_dropped": "PacketsReceivedDropped",
    "bytes_sent": "BytesSent",
    "bytes_received": "BytesReceived",
}
# The other documented spellings of the same fields.
ALTERNATE_NAMES = PROPERTY_NAMES | {
    "source_ip": "SourceIP",
    "destination_ip": "DestinationIP",
    "nat_gateway_ip": "NatGatewayIP",
    "packets_sent": "packetsSent",
}


def _iso(value: dt.datetime) -> str:
    return value.strftime("%Y-%m-%dT%H:%M:%S.%f0Z")


def envelope(row: dict[str, Any], names: dict[str, str] = PROPERTY_NAMES) -> dict[str, Any]:
    """A storage-account / Event Hubs record for one row."""
    record: dict[str, Any] = {"time": _iso(row["time"])}
    if row["resource_id"] is not None:
        record["resourceId"] = row["resource_id"]
    record |= {"category": "NatGatewayFlowlogsV1", "operationName": "NatGatewayFlowLog"}
    record["properties"] = {names[k]: row[k] for k in PROPERTY_NAMES}
    return record


def write_pt1h(
    frame: pl.DataFrame, path: Path, *, gz: bool = False, alternate: bool = False
) -> Path:
    names = ALTERNATE_NAMES if alternate else PROPERTY_NAMES
    text = "".join(json.dumps(envelope(row, names)) + "\n" for row in frame.iter_rows(named=True))
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(gzip.compress(text.encode(), mtime=0) if gz else text.encode())
    return path


def write_eventhubs(frame: pl.DataFrame, path: Path, *, per_line: bool = False) -> Path:
    records = [envelope(row) for row in frame.iter_rows(named=True)]
    if per_line:
        half = len(records) // 2
        text = "\n".join(json.dumps({"records": part}) for part in (records[:half], records[half:]))
    else:
        text = json.dumps({"records": records}, indent=2)
    path.write_text(text)
    return path


def _portal_time(value: dt.datetime) -> str:
    hour = value.hour % 12 or 12
    suffix = "AM" if value.hour < 12 else "PM"
    return (
        f"{value.month}/{value.day}/{value.year}, {hour}:{value.minute:02d}:{value.second:02d}"
        f".{value.microsecond // 1000:03d} {suffix}"
    )


def write_portal_csv(frame: pl.DataFrame, path: Path) -> Path:
    """The Log Analytics portal's 'Export to CSV'."""
    header = ["TenantId", "TimeGenerated [UTC]", *PROPERTY_NAMES.values(), "Type", "_ResourceId"]
    with path.open("w", newline="", encoding="utf-8-sig") as fh:
        writer = csv.writer(fh)
        writer.writerow(header)
        for row in frame.iter_rows(named=True):
            values = ["" if row[k] is None else row[k] for k in PROPERTY_NAMES]
            resource = (row["resource_id"] or "").lower()  # the portal writes it lower case
            writer.writerow(
                ["tenant", _portal_time(row["time"]), *values, "NatGatewayFlowlogsV1", resource]
            )
    return path


def write_az_cli_json(frame: pl.DataFrame, path: Path) -> Path:
    """`az monitor log-analytics query` output: every value a string."""
    rows = []
    for row in frame.iter_rows(named=True):
        item = {
            "TableName": "PrimaryResult",
            "TimeGenerated": row["time"].strftime("%Y-%m-%dT%H:%M:%SZ"),
        }
        item |= {v: (None if row[k] is None else str(row[k])) for k, v in PROPERTY_NAMES.items()}
        item["_ResourceId"] = row["resource_id"]
        rows.append(item)
    path.write_text(json.dumps(rows, indent=2))
    return path


def write_json_rows(frame: pl.DataFrame, path: Path) -> Path:
    """A JSON array of rows with the table's own column names and typed values."""
    rows = []
    for row in frame.iter_rows(named=True):
        item: dict[str, Any] = {"TimeGenerated": row["time"].isoformat()}
        item |= {v: row[k] for k, v in PROPERTY_NAMES.items()}
        item["_ResourceId"] = row["resource_id"]
        rows.append(item)
    path.write_text(json.dumps(rows))
    return path


def write_parquet_store(frame: pl.DataFrame, path: Path) -> Path:
    import natlens

    natlens.write_parquet(frame, path)
    return path


WRITERS: dict[str, Callable[[pl.DataFrame, Path], Path]] = {
    "PT1H.json": write_pt1h,
    "PT1H.json.gz": lambda f, p: write_pt1h(f, p, gz=True),
    "alternate-spelling.json": lambda f, p: write_pt1h(f, p, alternate=True),
    "eventhubs.json": write_eventhubs,
    "eventhubs-lines.json": lambda f, p: write_eventhubs(f, p, per_line=True),
    "portal.csv": write_portal_csv,
    "az-cli.json": write_az_cli_json,
    "rows.json": write_json_rows,
    "store": write_parquet_store,
}
