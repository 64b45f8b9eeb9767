"""One set of value rules for every loader: the same bad value gets the same verdict everywhere.

The same records, one bad value each, written as Azure writes them: storage-account
``PT1H.json`` (the fast DuckDB path and the careful Python path), Event Hubs Capture Avro
and a Log Analytics export-job Parquet file. Each format must keep the same good records
and give each bad one the same reason, in its own kind of place (line, event, row).
Also the loader's loose ends: Parquet damage found only when the pages are read, a
deeply nested first line, and counter spellings only ``canonical_field`` knows.
"""

from __future__ import annotations

import datetime as dt
import json
import re
import warnings
from pathlib import Path
from typing import Any

import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from azure_formats import capture_event, capture_path, records_body, write_capture_file
from flowlog_formats import envelope, write_pt1h
from polars.testing import assert_frame_equal

import natlens
from natlens import _files
from natlens._fields import canonical_field

GATEWAY = (
    "/SUBSCRIPTIONS/11111111-2222-3333-4444-555555555555/RESOURCEGROUPS/RG-NET/PROVIDERS/"
    "MICROSOFT.NETWORK/NATGATEWAYS/NG-WEU-1"
)
BLOB = f"resourceId={GATEWAY}/y=2026/m=11/d=09/h=10/m=00/PT1H.json"
COLUMN = {  # storage-account property name -> the export job's column name
    "time": "TimeGenerated",
    "SourceIp": "SourceIP",
    "DestinationIp": "DestinationIP",
    "NatGatewayIp": "NatGatewayIP",
    "PacketsSent": "PacketsSent",
    "PacketsReceived": "PacketsReceived",
    "PacketsSentDropped": "PacketsSentDropped",
    "PacketsReceivedDropped": "PacketsReceivedDropped",
    "BytesSent": "BytesSent",
    "BytesReceived": "BytesReceived",
}

# One bad value per record (the padded IP is good: trimmed in every format).
VALUES: list[tuple[str, object]] = [
    ("SourceIp", "hello"),
    ("SourceIp", ""),
    ("SourceIp", " 10.0.0.9 "),
    ("DestinationIp", "999.1.1.1"),
    ("NatGatewayIp", "010.000.000.001"),
    ("PacketsSent", 1.5),
    ("PacketsSent", True),
    ("BytesSent", "lots"),
    ("BytesSent", 2**63),
    ("PacketsReceived", -4),
    ("PacketsReceived", {"nested": 1}),
    ("BytesReceived", "1e400"),
    ("time", "epoch"),
    ("time", "infinity"),
    ("time", "1999-12-31T23:59:00Z"),
    ("time", 1762682460),
]

# Every test here runs with each JSON Lines reader: the exact one and DuckDB's text read.
pytestmark = pytest.mark.usefixtures("json_reader")


def flows(n: int) -> pl.DataFrame:
    rows = [
        (
            dt.datetime(2026, 11, 9, 10, i, tzinfo=dt.UTC),
            f"10.0.1.{i + 1}",
            f"20.60.1.{i + 1}",
            "52.1.1.1",
            *(i + 1, 2 * i, 0, i % 2, 1400 * (i + 1), 900 * i),
            GATEWAY,
        )
        for i in range(n)
    ]
    return pl.DataFrame(rows, schema=natlens.FLOW_SCHEMA, orient="row")


CLEAN = flows(len(VALUES) + 2)  # the first and the last record stay good


def records() -> list[dict[str, Any]]:
    """Storage-account records, record i + 1 with bad value i."""
    out = [envelope(row) for row in CLEAN.iter_rows(named=True)]
    for index, (key, value) in enumerate(VALUES, start=1):
        if key == "time":
            out[index]["time"] = value
        else:
            out[index]["properties"][key] = value
    return out


def as_text(value: object) -> str | None:
    """A JSON value as a hand-made export's text column holds it."""
    if value is None or isinstance(value, str):
        return value
    return json.dumps(value, separators=(",", ":"))


def write_export(path: Path, rows: list[dict[str, Any]]) -> Path:
    """The records as an export job's Parquet, every column text (a hand-made export)."""
    columns: dict[str, list[str | None]] = {name: [] for name in [*COLUMN.values(), "_ResourceId"]}
    for record in rows:
        for key, name in COLUMN.items():
            value = record["time"] if key == "time" else record["properties"][key]
            columns[name].append(as_text(value))
        columns["_ResourceId"].append(record["resourceId"].lower())
    path.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(pa.table(columns), path, compression="gzip")
    return path


def read(path: Path) -> tuple[pl.DataFrame, natlens.LoadReport]:
    report = natlens.LoadReport()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", natlens.FlowLogWarning)
        frame = natlens.read_flowlogs(path, report=report)
    return frame, report


def sort(frame: pl.DataFrame) -> pl.DataFrame:
    return frame.sort(frame.columns, nulls_last=True)


def test_the_same_bad_values_get_the_same_reasons_in_every_format(tmp_path: Path) -> None:
    rows = records()
    blob = tmp_path / "storage" / BLOB
    blob.parent.mkdir(parents=True)
    blob.write_text("".join(json.dumps(r) + "\n" for r in rows))
    events = [
        capture_event(500 + i, records_body([r]), dt.datetime(2026, 11, 9, 10, 5))
        for i, r in enumerate(rows)
    ]
    avro = write_capture_file(
        capture_path(tmp_path / "capture", dt.datetime(2026, 11, 9, 10, 5)), events
    )
    export = write_export(tmp_path / "export" / "timestamp=2026-11-09T10" / "a.gz.parquet", rows)

    fast, fast_report = read(blob)
    plan = _files._sniff(blob)
    assert plan is not None
    careful, careful_problems = _files._careful(plan)
    capture, capture_report = read(avro)
    parquet, parquet_report = read(export)

    # Lines, rows and events count from 1 and record 0 is good: VALUES[i] is on line i + 2.
    by_line = {p.line or 0: p.reason for p in fast_report.problems}
    assert {p.line or 0: p.reason for p in careful_problems} == by_line
    assert {p.line or 0: p.reason for p in parquet_report.problems} == by_line
    event = re.compile(r"^event (\d+) \(sequence number (\d+)\), record 1: (.*)$")
    by_event: dict[int, str] = {}
    for problem in capture_report.problems:
        match = event.match(problem.reason)
        assert match, problem.reason
        assert int(match[2]) == 499 + int(match[1])  # Capture's own sequence numbers
        by_event[int(match[1])] = match[3]
    assert by_event == by_line
    # Every bad value is refused, the padded IP kept, each with a reason naming the value.
    padded = 1 + [v for _, v in VALUES].index(" 10.0.0.9 ")  # its record
    assert sorted(by_line) == [i + 2 for i in range(len(VALUES)) if i + 1 != padded]
    assert by_line[2] == "source_ip is not an IP address: 'hello'"
    assert by_line[7] == "packets_sent is not a whole number: '1.5'"
    assert (
        by_line[10]
        == "bytes_sent is too large for a counter (2**63 or more): '9223372036854775808'"
    )
    keep = [0, padded, len(VALUES) + 1]
    expected = CLEAN[keep].with_columns(
        pl.when(pl.int_range(pl.len()) == 1)
        .then(pl.lit("10.0.0.9"))
        .otherwise("source_ip")
        .alias("source_ip")
    )
    for frame in (fast, careful, capture, parquet):
        assert frame.schema == natlens.FLOW_SCHEMA
        assert_frame_equal(sort(frame), sort(expected))


@pytest.mark.parametrize(
    ("values", "arrow", "reason"),
    [
        ([3.0, 1.5], pa.float64(), "packets_sent is not a whole number: '1.5'"),
        (
            [3, 2**63],
            pa.uint64(),
            "packets_sent is too large for a counter (2**63 or more): '9223372036854775808'",
        ),
        ([3, -4], pa.int64(), "packets_sent is negative: '-4'"),
        ([True, True], pa.bool_(), "packets_sent is not a number: 'true'"),
    ],
)
def test_a_typed_export_column_gets_the_reason_its_json_value_gets(
    tmp_path: Path, values: list[object], arrow: pa.DataType, reason: str
) -> None:
    """A counter column typed double, uint64 or bool in Parquet: the same words as in JSON."""
    rows = [envelope(row) for row in CLEAN.head(2).iter_rows(named=True)]
    path = write_export(tmp_path / "e.parquet", rows)
    table = pq.read_table(path)
    table = table.set_column(
        table.schema.get_field_index("PacketsSent"), "PacketsSent", pa.array(values, arrow)
    )
    pq.write_table(table, path)
    frame, report = read(path)
    bad = [line for line, value in enumerate(values, start=1) if value != 3]
    assert [(p.line, p.reason) for p in report.problems] == [(line, reason) for line in bad]
    assert frame.height == 2 - len(bad)
    blob = tmp_path / "storage" / BLOB
    blob.parent.mkdir(parents=True)
    for record, value in zip(rows, values, strict=True):
        record["properties"]["PacketsSent"] = value
    blob.write_text("".join(json.dumps(r) + "\n" for r in rows))
    _, json_report = read(blob)
    assert [(p.line, p.reason) for p in json_report.problems] == [
        (p.line, p.reason) for p in report.problems
    ]


# --------------------------------------------------------------------------- loose ends


def _respelled(tmp_path: Path, spellings: list[str]) -> Path:
    """A PT1H.json blob whose lines 2, 3... spell a counter as given."""
    blob = tmp_path / BLOB
    write_pt1h(CLEAN, blob)
    lines = blob.read_text().splitlines()
    for index, spelling in enumerate(spellings, start=2):
        record = json.loads(lines[index])
        props = record["properties"]
        documented = "BytesReceived" if spelling.lower().startswith("bytes") else "PacketsSent"
        props[spelling] = props.pop(documented)
        lines[index] = json.dumps(record)
    blob.write_text("\n".join(lines) + "\n")
    return blob


def _both_paths(blob: Path) -> tuple[pl.DataFrame, pl.DataFrame]:
    fast, report = read(blob)
    plan = _files._sniff(blob)
    assert plan is not None
    assert plan.envelope is not None  # the fast path's plan
    careful, problems = _files._careful(plan)
    assert report.problems == problems == []
    return sort(fast), sort(careful)


def test_every_spelling_canonical_field_knows_is_read_on_both_paths(tmp_path: Path) -> None:
    """Documented spellings and natlens's own names, in any case, on a later line."""
    spellings = ["Packets_Sent", "PACKETS_SENT", "packetsSent", "bytes_Received"]
    assert all(canonical_field(s) is not None for s in spellings)
    fast, careful = _both_paths(_respelled(tmp_path, spellings))
    assert_frame_equal(fast, sort(CLEAN))
    assert_frame_equal(careful, sort(CLEAN))


def test_a_spelling_natlens_does_not_know_is_the_same_on_both_paths(tmp_path: Path) -> None:
    """``Packets Sent`` is no field of the record: both paths leave that counter null."""
    spellings = ["Packets Sent", "Packet_sSent"]
    assert all(canonical_field(s) is None for s in spellings)
    fast, careful = _both_paths(_respelled(tmp_path, spellings))
    assert_frame_equal(fast, careful)
    assert fast.get_column("packets_sent").null_count() == 2


def test_a_deeply_nested_first_line_is_sniffed_as_json_lines_for_the_careful_path(
    tmp_path: Path,
) -> None:
    blob = tmp_path / BLOB
    write_pt1h(CLEAN, blob)
    deep = '{"records": ' + "[" * 100_000 + "]" * 100_000 + "}"
    blob.write_text(deep + "\n" + blob.read_text())
    plan = _files._sniff(blob)
    assert plan is not None
    assert plan.format == "jsonl"
    frame, report = read(blob)
    assert_frame_equal(frame, CLEAN)
    assert [(p.line, p.reason) for p in report.problems] == [
        (1, "not valid JSON (nested too deeply)")
    ]
    with pytest.raises(natlens.FlowLogError, match=r"PT1H\.json:1: not valid JSON"):
        natlens.read_flowlogs(blob, strict=True)


def _natlens_parquet(path: Path) -> bytes:
    CLEAN.write_parquet(path, compression="uncompressed", statistics=False)
    return path.read_bytes()


def test_a_truncated_parquet_file_is_named(tmp_path: Path) -> None:
    path = tmp_path / "flows.parquet"
    raw = _natlens_parquet(path)
    path.write_bytes(raw[: len(raw) // 2])  # a copy stopped half way: no footer
    with pytest.raises(natlens.FlowLogError, match=r"flows\.parquet: unreadable Parquet"):
        natlens.scan_flowlogs(path)


def test_parquet_damage_found_when_the_pages_are_read_names_the_file(tmp_path: Path) -> None:
    path = tmp_path / "flows.parquet"
    raw = bytearray(_natlens_parquet(path))
    page = raw.index(b"20.60.1.1")  # inside a data page; the footer stays intact
    raw[page - 40 : page + 200] = b"\xab" * 240
    path.write_bytes(bytes(raw))
    lazy = natlens.scan_flowlogs(path)  # the footer is fine: nothing to say yet
    assert lazy.collect_schema() == natlens.FLOW_SCHEMA
    with pytest.raises(natlens.FlowLogError, match=r"flows\.parquet: damaged Parquet") as info:
        lazy.collect()
    assert str(path) in str(info.value)


def test_parquet_with_the_flow_columns_in_other_types_is_checked_value_by_value(
    tmp_path: Path,
) -> None:
    """A ``time`` column of text (and a counter of doubles) is parsed, not a cast error."""
    path = tmp_path / "flows.parquet"
    CLEAN.with_columns(
        pl.col("time").dt.strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
        pl.col("bytes_sent").cast(pl.Float64),
    ).with_columns(
        pl.when(pl.int_range(pl.len()) == 3).then(pl.lit("epoch")).otherwise("time").alias("time")
    ).write_parquet(path)
    frame, report = read(path)
    assert frame.schema == natlens.FLOW_SCHEMA
    assert_frame_equal(frame, CLEAN.filter(pl.int_range(pl.len()) != 3))
    assert [(p.file, p.line, p.reason) for p in report.problems] == [
        (str(path), 4, "unparseable timestamp 'epoch'")
    ]
    with pytest.warns(natlens.FlowLogWarning, match="unparseable timestamp 'epoch'"):
        latest = natlens.scan_flowlogs(path).select(pl.col("time").max()).collect()
    assert latest.item() == CLEAN.get_column("time").max()
