"""Capture Avro, export-job Parquet and other categories, on files written as Azure writes them."""

from __future__ import annotations

import datetime as dt
import json
import warnings
from collections.abc import Callable
from pathlib import Path

import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from azure_formats import (
    capture_event,
    capture_path,
    export_table,
    firewall_records,
    metrics_records,
    nsg_blob_path,
    nsg_flow_records,
    records_body,
    vnet_blob_path,
    vnet_flow_records,
    write_capture,
    write_capture_file,
    write_export_job,
    write_json_lines,
    write_records_blob,
)
from flowlog_formats import envelope, write_pt1h
from polars.testing import assert_frame_equal

import natlens

GATEWAY = (
    "/SUBSCRIPTIONS/11111111-2222-3333-4444-555555555555/RESOURCEGROUPS/RG-NET/PROVIDERS/"
    "MICROSOFT.NETWORK/NATGATEWAYS/NG-WEU-1"
)
HOUR = dt.datetime(2026, 11, 9, 10, tzinfo=dt.UTC)


def t(minute: int, hour: int = 10) -> dt.datetime:
    return dt.datetime(2026, 11, 9, hour, minute, tzinfo=dt.UTC)


FLOWS = pl.DataFrame(
    [
        (t(1), "10.0.1.4", "20.60.1.2", "52.1.1.1", 10, 12, 0, 0, 14_000, 16_000, GATEWAY),
        (t(1), "10.0.1.5", "2603:1020:201:10::2", "52.1.1.2", 3, None, None, 0, 900, None, GATEWAY),
        (t(2), "fd00:10::4", "2001:db8::1", "2001:db8:ffff::1", 1, 1, 0, 0, 60, 60, GATEWAY),
        (t(3), "10.0.1.4", "140.82.112.3", "52.1.1.1", 500, 700, 7, 2, 700_000, 950_000, GATEWAY),
        (t(7), "10.0.1.6", "13.107.42.14", "52.1.1.2", 40, 38, 0, 1, 5_200, 48_000, GATEWAY),
        (t(58), "10.0.1.4", "20.60.1.2", "52.1.1.1", 2, 2, 0, 0, 120, 80, GATEWAY),
        (t(4, 11), "10.0.1.7", "151.101.1.69", "52.1.1.1", 9, 11, 0, 0, 1_100, 9_000, GATEWAY),
        (t(31, 11), "10.0.1.4", "20.60.1.2", "52.1.1.2", 6, 6, 0, 0, 700, 640, GATEWAY),
    ],
    schema=natlens.FLOW_SCHEMA,
    orient="row",
)


def sort(frame: pl.DataFrame) -> pl.DataFrame:
    return frame.sort(frame.columns, nulls_last=True)


@pytest.fixture
def from_pt1h(tmp_path: Path) -> pl.DataFrame:
    """The same flows read from storage-account JSON Lines: what every format must give."""
    blob = tmp_path / "reference" / "PT1H.json"
    write_pt1h(FLOWS, blob)
    return natlens.read_flowlogs(blob)


def read_clean(source: Path) -> tuple[pl.DataFrame, natlens.LoadReport]:
    report = natlens.LoadReport()
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a clean landing tree raises no FlowLogWarning
        frame = natlens.read_flowlogs(source, report=report)
    return frame, report


# --------------------------------------------------------------------------- Event Hubs Capture


@pytest.mark.parametrize("codec", ["deflate", "null"])
def test_capture_tree_reads_as_the_same_records_as_pt1h(
    tmp_path: Path, from_pt1h: pl.DataFrame, codec: str
) -> None:
    files = write_capture(FLOWS, tmp_path / "capture", codec=codec)
    assert all(p.read_bytes()[:4] == b"Obj\x01" for p in files)
    assert (tmp_path / "capture/nsp-weu/natgw/1/2026/11/09/10/05/00.avro").is_file()
    lazy = natlens.scan_flowlogs(tmp_path / "capture")
    assert lazy.collect_schema() == natlens.FLOW_SCHEMA
    frame, report = read_clean(tmp_path / "capture")
    assert frame.schema == natlens.FLOW_SCHEMA
    assert_frame_equal(sort(frame), sort(from_pt1h))
    # Capture's empty marker files (a window without events) are read and are no problem.
    assert sorted(report.files) == sorted(map(str, files))
    assert report.problems == []
    assert report.records == FLOWS.height


def test_capture_queries_push_down_like_any_source(tmp_path: Path) -> None:
    write_capture(FLOWS, tmp_path / "capture")
    lazy = natlens.scan_flowlogs(tmp_path / "capture")
    assert lazy.select(pl.len()).collect().item() == FLOWS.height
    busy = lazy.filter(pl.col("source_ip") == "10.0.1.4").select("bytes_sent").collect()
    assert sorted(busy["bytes_sent"].to_list()) == [120, 700, 14_000, 700_000]
    window = natlens.read_flowlogs(tmp_path / "capture", start=t(0, 11), end=t(0, 12))
    assert window.height == 2


def capture_with(tmp_path: Path, bodies: list[bytes | None]) -> Path:
    events = [capture_event(1000 + i, body, t(5)) for i, body in enumerate(bodies)]
    return write_capture_file(capture_path(tmp_path / "capture", t(5)), events)


def test_a_bad_capture_body_or_record_costs_exactly_itself(tmp_path: Path) -> None:
    rows = [envelope(r) for r in FLOWS.iter_rows(named=True)]
    bad_ip = {**rows[3], "properties": {**rows[3]["properties"], "SourceIp": "999.1.1.1"}}
    path = capture_with(
        tmp_path,
        [
            records_body(rows[0:2]),
            b'{"records": [{"time": "2026-11-09T10:0',  # cut short
            records_body([rows[2], bad_ip, rows[4]]),
            None,
            b"\xff\xfe not text",
            records_body(rows[5:]),
        ],
    )
    report = natlens.LoadReport()
    frame = natlens.read_flowlogs(path, report=report)
    expected = FLOWS.filter(pl.int_range(pl.len()) != 3)
    assert_frame_equal(sort(frame), sort(expected))
    assert [(p.file, p.line, p.reason) for p in report.problems] == [
        (
            str(path),
            None,
            "event 2 (sequence number 1001): body is not valid JSON "
            "(Unterminated string starting at)",
        ),
        (
            str(path),
            None,
            "event 3 (sequence number 1002), record 2: source_ip is not an IP address: '999.1.1.1'",
        ),
        (str(path), None, "event 4 (sequence number 1003): empty body"),
        (str(path), None, "event 5 (sequence number 1004): body is not UTF-8 text"),
    ]
    with pytest.raises(natlens.FlowLogError, match=r"00\.avro: event 2 \(sequence number 1001\)"):
        natlens.read_flowlogs(path, strict=True)


def test_a_damaged_capture_file_keeps_the_blocks_before_the_damage(tmp_path: Path) -> None:
    import io

    import fastavro
    from azure_formats import CAPTURE_SCHEMA

    rows = [envelope(r) for r in FLOWS.iter_rows(named=True)]
    events = [capture_event(i, records_body([row]), t(5)) for i, row in enumerate(rows)]
    buffer = io.BytesIO()
    fastavro.writer(buffer, CAPTURE_SCHEMA, events, codec="deflate", sync_interval=1)
    path = capture_path(tmp_path, t(5))
    path.parent.mkdir(parents=True)
    path.write_bytes(buffer.getvalue()[:-60])  # the upload stopped inside the last block
    report = natlens.LoadReport()
    frame = natlens.read_flowlogs(path, report=report)
    assert_frame_equal(sort(frame), sort(FLOWS.head(len(rows) - 1)))
    [problem] = report.problems
    assert problem.reason.startswith("damaged Avro file after event 7 (sequence number 6)")


def test_an_avro_file_that_is_not_capture_output_is_named(tmp_path: Path) -> None:
    import fastavro

    path = tmp_path / "other.avro"
    schema = {"type": "record", "name": "Row", "fields": [{"name": "x", "type": "long"}]}
    with path.open("wb") as fh:
        fastavro.writer(fh, schema, [{"x": 1}])
    with pytest.raises(natlens.FlowLogError, match="not Event Hubs Capture output") as info:
        natlens.scan_flowlogs(path)
    assert str(path) in str(info.value)


# --------------------------------------------------------------------------- export job


@pytest.mark.parametrize(
    ("hive", "time_type", "files_per_hour"),
    [
        (False, None, 1),  # the default yyyy-MM-ddTHH folders, UTC microseconds
        (True, None, 2),  # year=/month=/day=/hour= folders, several blobs an hour
        (False, pa.timestamp("ms"), 1),  # a writer that leaves the zone implicit (UTC)
        (False, pa.timestamp("ns", tz="UTC"), 1),
    ],
)
def test_export_job_parquet_reads_as_the_same_records_as_pt1h(
    tmp_path: Path,
    from_pt1h: pl.DataFrame,
    hive: bool,
    time_type: pa.DataType | None,
    files_per_hour: int,
) -> None:
    files = write_export_job(
        FLOWS, tmp_path / "export", hive=hive, time_type=time_type, files_per_hour=files_per_hour
    )
    folders = {p.parent.name for p in files}
    assert folders == (
        {"hour=10", "hour=11"} if hive else {"timestamp=2026-11-09T10", "timestamp=2026-11-09T11"}
    )
    assert all(p.name.endswith(".gz.parquet") for p in files)
    assert pq.ParquetFile(files[0]).metadata.row_group(0).column(0).compression == "GZIP"
    assert natlens.scan_flowlogs(tmp_path / "export").collect_schema() == natlens.FLOW_SCHEMA
    frame, report = read_clean(tmp_path / "export")
    assert frame.schema == natlens.FLOW_SCHEMA
    assert_frame_equal(sort(frame), sort(from_pt1h))
    assert report.problems == []
    assert report.records == FLOWS.height


def test_a_bad_value_in_export_parquet_costs_exactly_its_row(tmp_path: Path) -> None:
    rows = list(FLOWS.iter_rows(named=True))
    table = export_table(rows)
    source = table.column("SourceIP").to_pylist()
    source[2] = "hello"
    nat = table.column("NatGatewayIP").to_pylist()
    nat[4] = ""
    when = table.column("TimeGenerated").to_pylist()
    when[6] = None
    for name, values in (("SourceIP", source), ("NatGatewayIP", nat), ("TimeGenerated", when)):
        index = table.schema.get_field_index(name)
        table = table.set_column(index, name, pa.array(values, type=table.schema.field(name).type))
    path = tmp_path / "timestamp=2026-11-09T10" / "0f1e2d3c-aaaa-bbbb-cccc-000000000001.gz.parquet"
    path.parent.mkdir()
    pq.write_table(table, path, compression="gzip")
    report = natlens.LoadReport()
    frame = natlens.read_flowlogs(path, report=report)
    keep = [i for i in range(FLOWS.height) if i not in (2, 4, 6)]
    assert_frame_equal(sort(frame), sort(FLOWS[keep]))
    assert [(p.file, p.line, p.reason) for p in report.problems] == [
        (str(path), 3, "source_ip is not an IP address: 'hello'"),
        (str(path), 5, "missing nat_gateway_ip"),
        (str(path), 7, "missing time"),
    ]
    with pytest.raises(natlens.FlowLogError, match=r"\.gz\.parquet:3: source_ip is not an IP"):
        natlens.read_flowlogs(path, strict=True)


def test_export_parquet_with_text_and_float_columns_is_checked_value_by_value(
    tmp_path: Path,
) -> None:
    """A hand-made export (TimeGenerated as text, a counter as double) obeys the same rules."""
    path = tmp_path / "hand.parquet"
    pl.DataFrame(
        {
            "TimeGenerated": ["2026-11-09T10:01:00Z", "epoch", "2026-11-09T10:02:00Z"],
            "SourceIP": ["10.0.1.4", "10.0.1.5", "10.0.1.6"],
            "DestinationIP": ["20.60.1.2", "20.60.1.2", "20.60.1.2"],
            "NatGatewayIP": ["52.1.1.1", "52.1.1.1", "52.1.1.1"],
            "PacketsSent": [3.0, 4.0, 1.5],
            "_ResourceId": [GATEWAY.lower()] * 3,
        }
    ).write_parquet(path)
    report = natlens.LoadReport()
    frame = natlens.read_flowlogs(path, report=report)
    assert frame.schema == natlens.FLOW_SCHEMA
    assert frame.select("source_ip", "packets_sent", "resource_id").rows() == [
        ("10.0.1.4", 3, GATEWAY)
    ]
    assert [(p.line, p.reason) for p in report.problems] == [
        (2, "unparseable timestamp 'epoch'"),
        (3, "packets_sent is not a whole number: '1.5'"),
    ]


# --------------------------------------------------------------------------- other categories

Writer = Callable[[Path], Path]

FOREIGN: dict[str, tuple[Writer, str]] = {
    "nsg": (
        lambda root: write_records_blob(nsg_flow_records(FLOWS), nsg_blob_path(root, HOUR)),
        "NSG flow log (category NetworkSecurityGroupFlowEvent), not NAT gateway flow logs",
    ),
    "vnet": (
        lambda root: write_records_blob(vnet_flow_records(FLOWS), vnet_blob_path(root, HOUR)),
        "VNet flow log (category FlowLogFlowEvent), not NAT gateway flow logs",
    ),
    "firewall": (
        lambda root: write_json_lines(
            firewall_records(FLOWS), root / "insights-logs-azfwnetworkrule" / "PT1H.json"
        ),
        "Azure Firewall network rule log (category AZFWNetworkRule), not NAT gateway flow logs",
    ),
    "metrics": (
        lambda root: write_json_lines(
            metrics_records(FLOWS, GATEWAY), root / "insights-metrics-pt1m" / "PT1H.json"
        ),
        "platform metrics export (insights-metrics-pt1m), not NAT gateway flow logs",
    ),
    "vnet-event-hubs-body": (
        lambda root: _write(
            root / "eventhubs" / "body.json",
            json.dumps({"records": vnet_flow_records(FLOWS)}, indent=2),
        ),
        "VNet flow log (category FlowLogFlowEvent), not NAT gateway flow logs",
    ),
    "other-table-export": (
        lambda root: _export_of_other_table(root / "export" / "other.gz.parquet"),
        "Log Analytics export of table 'AZFWNetworkRule', not NAT gateway flow logs",
    ),
}


def _write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def _export_of_other_table(path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    pl.DataFrame(
        {
            "TimeGenerated": [t(1)],
            "SourceIp": ["10.0.1.4"],
            "DestinationIp": ["20.60.1.2"],
            "DestinationPort": [443],
            "Action": ["Allow"],
            "Type": ["AZFWNetworkRule"],
        }
    ).write_parquet(path)
    return path


@pytest.mark.parametrize("name", sorted(FOREIGN))
def test_a_file_of_another_category_is_an_error_saying_what_it_is(
    tmp_path: Path, name: str
) -> None:
    write, description = FOREIGN[name]
    path = write(tmp_path / "landing")
    with pytest.raises(natlens.FlowLogError) as info:
        natlens.scan_flowlogs(tmp_path / "landing")
    assert str(info.value) == f"{path}: {description}"
    assert "missing" not in str(info.value)


def test_a_folder_mixing_categories_loads_the_nat_records_and_names_each_other_file_once(
    tmp_path: Path, from_pt1h: pl.DataFrame
) -> None:
    root = tmp_path / "landing"
    write_pt1h(FLOWS, root / "insights-logs-natgatewayflowlogsv1" / "PT1H.json")
    foreign = {str(write(root)): description for write, description in FOREIGN.values()}
    report = natlens.LoadReport()
    frame = natlens.read_flowlogs(root, report=report)
    assert_frame_equal(sort(frame), sort(from_pt1h))
    assert {p.file: p.reason for p in report.problems} == {
        file: f"{description}" for file, description in foreign.items()
    }
    assert len(report.problems) == len(foreign)  # once per file, not once per record
    assert all(p.line is None for p in report.problems)
    with pytest.raises(natlens.FlowLogError, match="not NAT gateway flow logs"):
        natlens.read_flowlogs(root, strict=True)


def test_an_event_hub_fed_by_several_settings_keeps_the_nat_records(
    tmp_path: Path, from_pt1h: pl.DataFrame
) -> None:
    """One hub can receive several categories: the others are counted once per file."""
    nat = [envelope(r) for r in FLOWS.iter_rows(named=True)]
    vnet = vnet_flow_records(FLOWS.head(3))
    nsg = nsg_flow_records(FLOWS.head(1))
    body = _write(tmp_path / "body.json", json.dumps({"records": [*vnet, *nat, *nsg]}))
    events = [
        capture_event(7, records_body([*nat[:4], *vnet]), t(5)),
        capture_event(8, records_body([*nsg, *nat[4:]]), t(5)),
    ]
    capture = write_capture_file(capture_path(tmp_path / "capture", t(5)), events)
    for path in (body, capture):
        report = natlens.LoadReport()
        frame = natlens.read_flowlogs(path, report=report)
        assert_frame_equal(sort(frame), sort(from_pt1h))
        assert sorted(p.reason for p in report.problems) == [
            "1 record of NSG flow log (category NetworkSecurityGroupFlowEvent), "
            "not NAT gateway flow logs: skipped",
            "3 records of VNet flow log (category FlowLogFlowEvent), "
            "not NAT gateway flow logs: skipped",
        ]


def test_a_capture_of_another_category_names_it_once(tmp_path: Path) -> None:
    events = [capture_event(i, records_body(vnet_flow_records(FLOWS)), t(5)) for i in range(3)]
    path = write_capture_file(capture_path(tmp_path, t(5)), events)
    report = natlens.LoadReport()
    frame = natlens.read_flowlogs(path, report=report)
    assert frame.height == 0
    assert [p.reason for p in report.problems] == [
        "VNet flow log (category FlowLogFlowEvent), not NAT gateway flow logs: skipped"
    ]
