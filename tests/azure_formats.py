"""Write the landing formats Azure produces besides JSON text, the way Azure writes them.

Test helpers that never go through natlens: Event Hubs Capture Avro files (Capture's own
Avro schema and codecs, its ``{Namespace}/{EventHub}/{PartitionId}/{Year}/.../{Second}.avro``
tree), Log Analytics export-job Parquet (the table's column names and types, hourly
``timestamp=`` folders, ``<guid>.gz.parquet`` blobs), and the resource logs people confuse
with NAT gateway flow logs: NSG flow logs, VNet flow logs, Azure Firewall logs and the
platform-metrics export.

Sources: Microsoft's "Exploring captured Avro files" and "Event Hubs Capture" pages (schema,
path, empty marker files), "Run an export job in Azure Monitor Logs" (May 2026: Parquet,
``workspaceId/<id>/jobId/<id>/timestamp=<yyyy-MM-ddTHH>/<guid>.gz.parquet``), the
NatGatewayFlowlogsV1 table reference (column types), "Virtual network flow logs" and "NSG
flow logs" (record layout and flow tuples).
"""

from __future__ import annotations

import datetime as dt
import io
import json
import uuid
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import fastavro
import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq
from flowlog_formats import envelope

# ----------------------------------------------------------------------- Event Hubs Capture

CAPTURE_SCHEMA: dict[str, Any] = {
    "type": "record",
    "name": "EventData",
    "namespace": "Microsoft.ServiceBus.Messaging",
    "fields": [
        {"name": "SequenceNumber", "type": "long"},
        {"name": "Offset", "type": "string"},
        {"name": "EnqueuedTimeUtc", "type": "string"},
        {
            "name": "SystemProperties",
            "type": {"type": "map", "values": ["long", "double", "string", "bytes"]},
        },
        {
            "name": "Properties",
            "type": {"type": "map", "values": ["long", "double", "string", "bytes"]},
        },
        {"name": "Body", "type": ["null", "bytes"]},
    ],
}
"""The schema Capture writes (``avro-tools getschema`` on a capture file, Microsoft's page)."""


def _dotnet_time(value: dt.datetime) -> str:
    """``EnqueuedTimeUtc`` as Capture writes it: .NET's invariant ``M/d/yyyy h:mm:ss tt``."""
    hour = value.hour % 12 or 12
    suffix = "AM" if value.hour < 12 else "PM"
    clock = f"{hour}:{value.minute:02d}:{value.second:02d}"
    return f"{value.month}/{value.day}/{value.year} {clock} {suffix}"


def capture_event(
    sequence: int, body: bytes | None, enqueued: dt.datetime, offset: int | None = None
) -> dict[str, Any]:
    """One Capture record, with the system properties Event Hubs stamps on it."""
    offset = sequence * 1024 if offset is None else offset
    return {
        "SequenceNumber": sequence,
        "Offset": str(offset),
        "EnqueuedTimeUtc": _dotnet_time(enqueued),
        "SystemProperties": {
            "x-opt-sequence-number": sequence,
            "x-opt-offset": str(offset),
            "x-opt-enqueued-time": int(enqueued.timestamp() * 1000),
        },
        "Properties": {},
        "Body": body,
    }


def records_body(records: Sequence[dict[str, Any]]) -> bytes:
    """An event body as a diagnostic setting sends it: UTF-8 ``{"records": [...]}``."""
    return json.dumps({"records": list(records)}).encode()


def capture_path(
    root: Path,
    when: dt.datetime,
    *,
    namespace: str = "nsp-weu",
    hub: str = "natgw",
    partition: int = 0,
) -> Path:
    """``{Namespace}/{EventHub}/{PartitionId}/{Year}/{Month}/{Day}/{Hour}/{Minute}/{Second}.avro``."""
    return (
        root
        / namespace
        / hub
        / str(partition)
        / f"{when.year:04d}"
        / f"{when.month:02d}"
        / f"{when.day:02d}"
        / f"{when.hour:02d}"
        / f"{when.minute:02d}"
        / f"{when.second:02d}.avro"
    )


def write_capture_file(
    path: Path, events: Iterable[dict[str, Any]], *, codec: str = "deflate"
) -> Path:
    """Write Capture records to one Avro file (``deflate`` is Capture's default codec)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    buffer = io.BytesIO()
    fastavro.writer(buffer, fastavro.parse_schema(CAPTURE_SCHEMA), list(events), codec=codec)
    path.write_bytes(buffer.getvalue())
    return path


def write_capture(
    frame: pl.DataFrame,
    root: Path,
    *,
    partitions: int = 2,
    records_per_event: int = 3,
    codec: str = "deflate",
) -> list[Path]:
    """Capture the flows as a diagnostic setting streaming to Event Hubs would land them.

    Rows are spread round-robin over ``partitions``; each event carries up to
    ``records_per_event`` records; one file per partition and 5-minute capture window.
    Every partition also gets the empty marker file Capture writes for a window without data.
    """
    by_file: dict[Path, list[dict[str, Any]]] = {}
    sequence = dict.fromkeys(range(partitions), 0)
    pending: dict[tuple[int, dt.datetime], list[dict[str, Any]]] = {}
    for index, row in enumerate(frame.iter_rows(named=True)):
        partition = index % partitions
        when = row["time"]
        window = when.replace(minute=when.minute - when.minute % 5, second=0, microsecond=0)
        pending.setdefault((partition, window), []).append(envelope(row))
    for (partition, window), records in sorted(
        pending.items(), key=lambda kv: (kv[0][0], kv[0][1])
    ):
        enqueued = window + dt.timedelta(minutes=3, seconds=12)
        path = capture_path(root, window + dt.timedelta(minutes=5), partition=partition)
        events = by_file.setdefault(path, [])
        for start in range(0, len(records), records_per_event):
            body = records_body(records[start : start + records_per_event])
            events.append(capture_event(sequence[partition], body, enqueued))
            sequence[partition] += 1
    written = [write_capture_file(path, events, codec=codec) for path, events in by_file.items()]
    if written:
        last = max(window for _, window in pending)
        for partition in range(partitions):
            marker = capture_path(root, last + dt.timedelta(minutes=10), partition=partition)
            written.append(write_capture_file(marker, [], codec=codec))
    return written


# ----------------------------------------------------------------------- Log Analytics export job

TENANT = "72f988bf-86f1-41af-91ab-2d7cd011db47"
WORKSPACE = "0b9e3a1c-6f2d-4c8e-9a57-3d1e2f4a5b6c"
SUBSCRIPTION = "11111111-2222-3333-4444-555555555555"

EXPORT_COLUMNS: dict[str, pa.DataType] = {
    "TenantId": pa.string(),
    "TimeGenerated": pa.timestamp("us", tz="UTC"),
    "SourceIP": pa.string(),
    "DestinationIP": pa.string(),
    "NatGatewayIP": pa.string(),
    "PacketsSent": pa.int64(),
    "PacketsReceived": pa.int64(),
    "PacketsSentDropped": pa.int64(),
    "PacketsReceivedDropped": pa.int64(),
    "BytesSent": pa.int64(),
    "BytesReceived": pa.int64(),
    "SourceSystem": pa.string(),
    "Type": pa.string(),
    "_ResourceId": pa.string(),
    "_SubscriptionId": pa.string(),
    "_BilledSize": pa.float64(),
    "_IsBillable": pa.string(),
}
"""The NatGatewayFlowlogsV1 table's columns with the Parquet types of their KQL types."""

_FLOW_OF_COLUMN = {
    "TimeGenerated": "time",
    "SourceIP": "source_ip",
    "DestinationIP": "destination_ip",
    "NatGatewayIP": "nat_gateway_ip",
    "PacketsSent": "packets_sent",
    "PacketsReceived": "packets_received",
    "PacketsSentDropped": "packets_sent_dropped",
    "PacketsReceivedDropped": "packets_received_dropped",
    "BytesSent": "bytes_sent",
    "BytesReceived": "bytes_received",
}


def export_table(
    rows: Sequence[dict[str, Any]], *, time_type: pa.DataType | None = None
) -> pa.Table:
    """An Arrow table of NatGatewayFlowlogsV1 rows (FLOW_SCHEMA dicts) with the table's columns."""
    columns: dict[str, list[Any]] = {name: [] for name in EXPORT_COLUMNS}
    for row in rows:
        for column, flow in _FLOW_OF_COLUMN.items():
            columns[column].append(row[flow])
        resource = row["resource_id"]
        columns["TenantId"].append(WORKSPACE)
        columns["SourceSystem"].append("Azure")
        columns["Type"].append("NatGatewayFlowlogsV1")
        columns["_ResourceId"].append(None if resource is None else resource.lower())
        columns["_SubscriptionId"].append(SUBSCRIPTION)
        columns["_BilledSize"].append(412.0)
        columns["_IsBillable"].append("True")
    schema = pa.schema(
        [
            pa.field(name, time_type if name == "TimeGenerated" and time_type is not None else kind)
            for name, kind in EXPORT_COLUMNS.items()
        ]
    )
    arrays = []
    for field in schema:
        values = columns[field.name]
        if field.name == "TimeGenerated" and field.type.tz is None:
            values = [v.astimezone(dt.UTC).replace(tzinfo=None) for v in values]
        arrays.append(pa.array(values, type=field.type))
    return pa.Table.from_arrays(arrays, schema=schema)


def export_folder(root: Path, hour: dt.datetime, *, job: str, hive: bool = False) -> Path:
    """``workspaceId/<id>/jobId/<id>/timestamp=<yyyy-MM-ddTHH>`` (or the hive-style option)."""
    stamp = (
        f"year={hour:%Y}/month={hour:%m}/day={hour:%d}/hour={hour:%H}"
        if hive
        else f"timestamp={hour:%Y-%m-%dT%H}"
    )
    return root / "workspaceId" / WORKSPACE / "jobId" / job / stamp


def write_export_job(
    frame: pl.DataFrame,
    root: Path,
    *,
    job: str = "aaaa0000-bb11-2222-33cc-444444dddddd",
    hive: bool = False,
    time_type: pa.DataType | None = None,
    files_per_hour: int = 1,
) -> list[Path]:
    """Write the flows as an export job lands them: one folder per hour, gzip Parquet blobs."""
    hours: dict[dt.datetime, list[dict[str, Any]]] = {}
    for row in frame.iter_rows(named=True):
        hours.setdefault(row["time"].replace(minute=0, second=0, microsecond=0), []).append(row)
    written = []
    for hour, rows in sorted(hours.items()):
        folder = export_folder(root, hour, job=job, hive=hive)
        folder.mkdir(parents=True, exist_ok=True)
        size = -(-len(rows) // files_per_hour)
        for start in range(0, len(rows), size):
            path = folder / f"{uuid.uuid4()}.gz.parquet"
            pq.write_table(
                export_table(rows[start : start + size], time_type=time_type),
                path,
                compression="gzip",
            )
            written.append(path)
    return written


# ----------------------------------------------------------------------- other resource logs

NSG = (
    f"/SUBSCRIPTIONS/{SUBSCRIPTION}/RESOURCEGROUPS/RG-NET/PROVIDERS/"
    "MICROSOFT.NETWORK/NETWORKSECURITYGROUPS/NSG-APP"
)
VNET = (
    f"/subscriptions/{SUBSCRIPTION}/resourceGroups/rg-net/providers/"
    "Microsoft.Network/virtualNetworks/vnet-weu"
)
FLOW_LOG = (
    f"/SUBSCRIPTIONS/{SUBSCRIPTION}/RESOURCEGROUPS/NETWORKWATCHERRG/PROVIDERS/MICROSOFT.NETWORK/"
    "NETWORKWATCHERS/NETWORKWATCHER_WESTEUROPE/FLOWLOGS/VNETFLOWLOG"
)
FIREWALL = (
    f"/SUBSCRIPTIONS/{SUBSCRIPTION}/RESOURCEGROUPS/RG-NET/PROVIDERS/"
    "MICROSOFT.NETWORK/AZUREFIREWALLS/FW-HUB"
)


def _iso(value: dt.datetime) -> str:
    return value.strftime("%Y-%m-%dT%H:%M:%S.%f0Z")


def _epoch_ms(value: dt.datetime) -> int:
    return int(value.timestamp() * 1000)


def nsg_flow_records(frame: pl.DataFrame) -> list[dict[str, Any]]:
    """NSG flow log (version 2) records for the VM side of the same flows, one per minute."""
    records = []
    for row in frame.iter_rows(named=True):
        tuple_ = (
            f"{int(row['time'].timestamp())},{row['source_ip']},{row['destination_ip']},"
            f"50123,443,T,O,A,C,{row['packets_sent'] or 0},{row['bytes_sent'] or 0},"
            f"{row['packets_received'] or 0},{row['bytes_received'] or 0}"
        )
        records.append(
            {
                "time": _iso(row["time"]),
                "systemId": "2c002c16-72f3-4dc5-b391-3444c3527434",
                "macAddress": "000D3AF8801A",
                "category": "NetworkSecurityGroupFlowEvent",
                "resourceId": NSG,
                "operationName": "NetworkSecurityGroupFlowEvents",
                "properties": {
                    "Version": 2,
                    "flows": [
                        {
                            "rule": "DefaultRule_AllowInternetOutBound",
                            "flows": [{"mac": "000D3AF8801A", "flowTuples": [tuple_]}],
                        }
                    ],
                },
            }
        )
    return records


def vnet_flow_records(frame: pl.DataFrame) -> list[dict[str, Any]]:
    """VNet flow log (version 4) records: ``flowRecords`` sits beside the envelope fields."""
    records = []
    for row in frame.iter_rows(named=True):
        tuple_ = (
            f"{_epoch_ms(row['time'])},{row['source_ip']},{row['destination_ip']},23956,443,6,O,C,NX,"
            f"{row['packets_sent'] or 0},{row['bytes_sent'] or 0},"
            f"{row['packets_received'] or 0},{row['bytes_received'] or 0}"
        )
        records.append(
            {
                "time": _iso(row["time"]),
                "flowLogVersion": 4,
                "flowLogGUID": "66aa66aa-bb77-cc88-dd99-00ee00ee00ee",
                "macAddress": "00224871C205",
                "category": "FlowLogFlowEvent",
                "flowLogResourceID": FLOW_LOG,
                "targetResourceID": VNET,
                "operationName": "FlowLogFlowEvent",
                "flowRecords": {
                    "flows": [
                        {
                            "aclID": "00aa00aa-bb11-cc22-dd33-44ee44ee44ee",
                            "flowGroups": [
                                {
                                    "rule": "DefaultRule_AllowInternetOutBound",
                                    "flowTuples": [tuple_],
                                }
                            ],
                        }
                    ]
                },
            }
        )
    return records


def write_records_blob(records: Sequence[dict[str, Any]], path: Path) -> Path:
    """A flow-log ``PT1H.json`` block blob: ``{"records":[`` + one record per block + ``]}``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    body = "\r\n,".join(json.dumps(r, separators=(",", ":")) for r in records)
    path.write_text('{"records":[' + body + "\r\n]}", encoding="utf-8")
    return path


def nsg_blob_path(root: Path, hour: dt.datetime) -> Path:
    return root / (
        f"insights-logs-networksecuritygroupflowevent/resourceId={NSG}/y={hour:%Y}/m={hour:%m}/"
        f"d={hour:%d}/h={hour:%H}/m=00/macAddress=000D3AF8801A/PT1H.json"
    )


def vnet_blob_path(root: Path, hour: dt.datetime) -> Path:
    return root / (
        f"insights-logs-flowlogflowevent/flowLogResourceID=/{SUBSCRIPTION.upper()}/"
        f"NETWORKWATCHERRG/NETWORKWATCHER_WESTEUROPE_VNETFLOWLOG/y={hour:%Y}/m={hour:%m}/"
        f"d={hour:%d}/h={hour:%H}/m=00/macAddress=00224871C205/PT1H.json"
    )


def firewall_records(frame: pl.DataFrame) -> list[dict[str, Any]]:
    """Azure Firewall structured network-rule log (``AZFWNetworkRule``): it has SourceIp too."""
    return [
        {
            "time": _iso(row["time"]),
            "resourceId": FIREWALL,
            "category": "AZFWNetworkRule",
            "operationName": "AZFWNetworkRule",
            "properties": {
                "Protocol": "TCP",
                "SourceIp": row["source_ip"],
                "SourcePort": 50123,
                "DestinationIp": row["destination_ip"],
                "DestinationPort": 443,
                "Action": "Allow",
                "Policy": "fw-policy",
                "RuleCollectionGroup": "DefaultNetworkRuleCollectionGroup",
                "RuleCollection": "allow-web",
                "Rule": "https-out",
                "ActionReason": "",
            },
        }
        for row in frame.iter_rows(named=True)
    ]


def metrics_records(frame: pl.DataFrame, resource: str) -> list[dict[str, Any]]:
    """The AllMetrics export of the gateway (container ``insights-metrics-pt1m``)."""
    return [
        {
            "count": 1,
            "total": float(row["bytes_sent"] or 0),
            "minimum": float(row["bytes_sent"] or 0),
            "maximum": float(row["bytes_sent"] or 0),
            "average": float(row["bytes_sent"] or 0),
            "resourceId": resource,
            "time": _iso(row["time"]),
            "metricName": "ByteCount",
            "timeGrain": "PT1M",
        }
        for row in frame.iter_rows(named=True)
    ]


def write_json_lines(records: Sequence[dict[str, Any]], path: Path) -> Path:
    """Resource-log JSON Lines, as a storage account holds most diagnostic categories."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(r) + "\n" for r in records), encoding="utf-8")
    return path
