"""The loaders: every format reads back to exactly FLOW_SCHEMA, and bad input is reported."""

from __future__ import annotations

import datetime as dt
import gzip
import ipaddress
import json
import warnings
from pathlib import Path

import polars as pl
import pytest
from flowlog_formats import WRITERS, write_pt1h
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from polars.testing import assert_frame_equal

import natlens
from natlens._schema import canonical_ip

GATEWAY = (
    "/SUBSCRIPTIONS/11111111-2222-3333-4444-555555555555/RESOURCEGROUPS/RG-NET/PROVIDERS/"
    "MICROSOFT.NETWORK/NATGATEWAYS/NG-WEU-1"
)
BLOB = f"resourceId={GATEWAY}/y=2026/m=11/d=09/h=10/m=00/PT1H.json"  # as azcopy lays it out

# Every test here runs with each JSON Lines reader: the exact one and DuckDB's text read.
pytestmark = pytest.mark.usefixtures("json_reader")


def flows(rows: list[tuple[object, ...]]) -> pl.DataFrame:
    return pl.DataFrame(rows, schema=natlens.FLOW_SCHEMA, orient="row")


def t(minute: int, hour: int = 10) -> dt.datetime:
    return dt.datetime(2026, 11, 9, hour, minute, tzinfo=dt.UTC)


SMALL = flows(
    [
        (t(1), "10.0.1.4", "20.60.1.2", "52.1.1.1", 10, 12, 0, 0, 14_000, 16_000, GATEWAY),
        (t(1), "10.0.1.5", "2603:1020:201:10::2", "52.1.1.2", 3, None, None, 0, 900, None, GATEWAY),
        (t(2), "fd00:10::4", "2001:db8::1", "2001:db8:ffff::1", 1, 1, 0, 0, 60, 60, GATEWAY),
        (t(3), "10.0.1.4", "140.82.112.3", "52.1.1.1", 500, 700, 7, 2, 700_000, 950_000, GATEWAY),
    ]
)


def sort(frame: pl.DataFrame) -> pl.DataFrame:
    return frame.sort(frame.columns, nulls_last=True)


# --------------------------------------------------------------------------- formats


@pytest.mark.parametrize("name", sorted(WRITERS))
def test_every_format_reads_back_identical(tmp_path: Path, name: str) -> None:
    path = WRITERS[name](SMALL, tmp_path / name)
    lazy = natlens.scan_flowlogs(path)
    assert lazy.collect_schema() == natlens.FLOW_SCHEMA
    assert_frame_equal(sort(lazy.collect()), sort(SMALL))


def test_directory_of_mixed_formats_is_walked(tmp_path: Path) -> None:
    folder = tmp_path / "exports"
    folder.mkdir()
    for name, write in WRITERS.items():
        if name != "store":
            write(SMALL, folder / name)
    (folder / "notes.txt").write_text("not a log, not picked up")
    frame = natlens.read_flowlogs(tmp_path / "exports")
    assert frame.height == SMALL.height * (len(WRITERS) - 1)


def test_ip_text_and_gateway_case_are_canonical(tmp_path: Path) -> None:
    odd = SMALL.with_columns(
        pl.col("destination_ip").replace({"2001:db8::1": "2001:DB8:0:0:0:0:0:1"}),
        pl.col("resource_id").str.to_lowercase(),
    )
    path = write_pt1h(odd, tmp_path / "PT1H.json")
    assert_frame_equal(sort(natlens.read_flowlogs(path)), sort(SMALL))


def test_numeric_strings_become_numbers_and_nulls_stay_null(tmp_path: Path) -> None:
    record = {
        "time": "2026-11-09T10:01:00.0000000Z",
        "resourceId": GATEWAY,
        "properties": {
            "SourceIp": "10.0.1.4",
            "DestinationIp": "20.60.1.2",
            "NatGatewayIp": "52.1.1.1",
            "PacketsSent": "10",
            "PacketsReceived": None,
            "BytesSent": "14000",
        },
    }
    path = tmp_path / "PT1H.json"
    path.write_text(json.dumps(record) + "\n")
    row = natlens.read_flowlogs(path).row(0, named=True)
    assert (row["packets_sent"], row["bytes_sent"]) == (10, 14_000)
    assert row["packets_received"] is None
    assert row["bytes_received"] is None


def test_resource_id_comes_from_the_blob_path_when_the_envelope_lacks_it(tmp_path: Path) -> None:
    path = write_pt1h(SMALL.with_columns(resource_id=None), tmp_path / BLOB)
    assert natlens.read_flowlogs(path).get_column("resource_id").unique().to_list() == [GATEWAY]


def test_gzip_is_recognised_by_content_not_name(tmp_path: Path) -> None:
    path = write_pt1h(SMALL, tmp_path / "PT1H.json", gz=False)
    hidden = tmp_path / "download.json"
    hidden.write_bytes(gzip.compress(path.read_bytes()))
    assert natlens.read_flowlogs(hidden).height == SMALL.height


def test_mixed_spellings_in_one_file_are_all_kept(tmp_path: Path) -> None:
    a = write_pt1h(SMALL.head(2), tmp_path / "a.json")
    b = write_pt1h(SMALL.tail(2), tmp_path / "b.json", alternate=True)
    mixed = tmp_path / "mixed" / "PT1H.json"
    mixed.parent.mkdir()
    mixed.write_text(a.read_text() + b.read_text())
    assert_frame_equal(sort(natlens.read_flowlogs(mixed)), sort(SMALL))


def test_time_range_filters_records_and_skips_blobs(tmp_path: Path) -> None:
    write_pt1h(SMALL, tmp_path / BLOB)
    late_blob = BLOB.replace("h=10", "h=20")
    write_pt1h(SMALL.with_columns(pl.col("time") + dt.timedelta(hours=10)), tmp_path / late_blob)
    report = natlens.LoadReport()
    frame = natlens.read_flowlogs(tmp_path, start=t(2), end="2026-11-09T12:00", report=report)
    assert frame.get_column("time").to_list() == [t(2), t(3)]
    assert len(report.files) == 1, "the 20:00 blob is filed long after the range and not opened"


def test_start_after_end_is_a_clear_error(tmp_path: Path) -> None:
    path = write_pt1h(SMALL, tmp_path / "PT1H.json")
    with pytest.raises(ValueError, match=r"end: .* is not after start"):
        natlens.scan_flowlogs(path, start="2026-11-10", end="2026-11-09")
    with pytest.raises(ValueError, match="start: 'soon' is not an ISO date or time"):
        natlens.scan_flowlogs(path, start="soon")


# --------------------------------------------------------------------------- bad input


def test_torn_last_line_is_skipped_and_reported(tmp_path: Path) -> None:
    path = write_pt1h(SMALL, tmp_path / "PT1H.json")
    path.write_bytes(path.read_bytes()[:-40])  # the blob is still being appended to
    with pytest.warns(natlens.FlowLogWarning, match="skipped 1 bad records") as caught:
        frame = natlens.read_flowlogs(path)
    assert frame.height == SMALL.height - 1
    report = caught[0].message.report  # type: ignore[union-attr]
    assert report.records == SMALL.height - 1
    problem = report.problems[0]
    assert (problem.file, problem.line) == (str(path), 4)
    assert "incomplete last line" in problem.reason
    assert report.to_frame().row(0) == (str(path), 4, problem.reason)


def test_a_report_given_is_told_instead_of_a_warning(tmp_path: Path) -> None:
    """Whoever passes a LoadReport reads the problems there: no warning repeats them."""
    path = write_pt1h(SMALL, tmp_path / "PT1H.json")
    path.write_bytes(path.read_bytes()[:-40])
    report = natlens.LoadReport()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        frame = natlens.read_flowlogs(path, report=report)
        lazy = natlens.scan_flowlogs(path, report=report).select(pl.len()).collect()
    assert frame.height == lazy.item() == SMALL.height - 1
    assert [(p.file, p.line) for p in report.problems] == [(str(path), 4)]


def test_strict_raises_naming_file_and_line(tmp_path: Path) -> None:
    path = write_pt1h(SMALL, tmp_path / "PT1H.json")
    lines = path.read_text().splitlines()
    lines[1] = lines[1].replace('"time": "2026-11-09T10:01:00.0000000Z"', '"time": "yesterday"')
    path.write_text("\n".join(lines) + "\n")
    with pytest.raises(
        natlens.FlowLogError, match=r"PT1H.json:2: unparseable timestamp 'yesterday'"
    ):
        natlens.read_flowlogs(path, strict=True)


@pytest.mark.parametrize(
    ("damage", "reason"),
    [
        (lambda line: "{this is not json", "not valid JSON"),
        (lambda line: line.replace('"SourceIp": "10.0.1.5", ', ""), "missing source_ip"),
        (
            lambda line: line.replace('"PacketsSent": 3', '"PacketsSent": "many"'),
            "packets_sent is not",
        ),
        (
            lambda line: line.replace("2026-11-09T10:01", "2026-13-09T10:01"),
            "unparseable timestamp",
        ),
    ],
)
def test_a_bad_line_costs_that_line_only(tmp_path: Path, damage: object, reason: str) -> None:
    path = write_pt1h(SMALL, tmp_path / "PT1H.json")
    lines = path.read_text().splitlines()
    assert callable(damage)
    lines[1] = damage(lines[1])
    path.write_text("\n".join(lines) + "\n")
    report = natlens.LoadReport()
    frame = natlens.read_flowlogs(path, report=report)
    assert_frame_equal(sort(frame), sort(SMALL.filter(pl.int_range(pl.len()) != 1)))
    assert [(p.line, reason in p.reason) for p in report.problems] == [(2, True)]


def test_exports_edited_by_hand_are_checked_for_ip_syntax(tmp_path: Path) -> None:
    path = WRITERS["portal.csv"](SMALL, tmp_path / "export.csv")
    path.write_text(path.read_text(encoding="utf-8-sig").replace("10.0.1.5,", "10.0.1.500,"))
    report = natlens.LoadReport()
    frame = natlens.read_flowlogs(path, report=report)
    assert frame.height == SMALL.height - 1
    assert [(p.line, p.reason) for p in report.problems] == [
        (3, "source_ip is not an IP address: '10.0.1.500'")
    ]


def test_empty_file_is_reported_not_fatal(tmp_path: Path) -> None:
    write_pt1h(SMALL, tmp_path / "logs" / "a" / "PT1H.json")
    (tmp_path / "logs" / "b").mkdir()
    (tmp_path / "logs" / "b" / "PT1H.json").write_text("")
    report = natlens.LoadReport()
    frame = natlens.read_flowlogs(tmp_path / "logs", report=report)
    assert frame.height == SMALL.height
    assert [p.reason for p in report.problems] == ["empty file"]
    with pytest.raises(natlens.FlowLogError, match="empty file"):
        natlens.read_flowlogs(tmp_path / "logs", strict=True)


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ('{"time": "2026-11-09T10:00:00Z", "category": "AzureFirewallNetworkRule"}\n', "category"),
        ('{"name": "Storage.WestEurope", "values": []}\n', "no SourceIp"),
        ("hello,world\n1,2\n", "not NAT gateway flow logs"),
    ],
)
def test_a_file_that_is_not_flow_logs_is_an_error_naming_it(
    tmp_path: Path, content: str, message: str
) -> None:
    path = tmp_path / "other.json"
    path.write_text(content)
    with pytest.raises(natlens.FlowLogError, match=message) as info:
        natlens.scan_flowlogs(path)
    assert str(path) in str(info.value)


def test_missing_paths_are_named(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match=r"no such file or directory: .*nowhere"):
        natlens.scan_flowlogs(tmp_path / "nowhere")
    with pytest.raises(FileNotFoundError, match="no files match"):
        natlens.scan_flowlogs(str(tmp_path / "*.json"))
    (tmp_path / "empty").mkdir()
    with pytest.raises(FileNotFoundError, match="no flow-log files"):
        natlens.scan_flowlogs(tmp_path / "empty")


def test_clean_input_raises_no_warning(tmp_path: Path) -> None:
    path = write_pt1h(SMALL, tmp_path / "PT1H.json")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        natlens.read_flowlogs(path)


def test_report_starts_afresh_on_each_collect(tmp_path: Path) -> None:
    path = write_pt1h(SMALL, tmp_path / "PT1H.json")
    path.write_bytes(path.read_bytes()[:-10])
    report = natlens.LoadReport()
    lazy = natlens.scan_flowlogs(path, report=report)
    for _ in range(2):
        lazy.collect()
        assert (len(report.files), report.records, len(report.problems)) == (1, 3, 1)


# --------------------------------------------------------------------------- properties

_MINUTES = st.integers(min_value=0, max_value=3 * 24 * 60 - 1)
_V4 = st.integers(min_value=1, max_value=2**32 - 1).map(lambda n: str(ipaddress.IPv4Address(n)))
# Canonical text as natlens writes it (RFC 5952; IPv4-mapped and NAT64 in mixed notation).
_V6 = st.integers(min_value=1, max_value=2**128 - 1).map(
    lambda n: canonical_ip(str(ipaddress.IPv6Address(n)))
)
_IP = st.one_of(_V4, _V6)
_COUNT = st.one_of(st.none(), st.integers(min_value=0, max_value=2**40))
_ROW = st.tuples(
    _MINUTES.map(lambda m: dt.datetime(2026, 11, 9, tzinfo=dt.UTC) + dt.timedelta(minutes=m)),
    _IP,
    _IP,
    _IP,
    *[_COUNT] * 6,
    st.sampled_from([GATEWAY, GATEWAY.replace("NG-WEU-1", "NG-WEU-2")]),
)
_FRAMES = st.lists(_ROW, min_size=1, max_size=30).map(flows)


@settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(frame=_FRAMES, name=st.sampled_from(sorted(WRITERS)))
def test_any_records_in_any_format_read_back_identical(
    tmp_path_factory: pytest.TempPathFactory, frame: pl.DataFrame, name: str
) -> None:
    folder = tmp_path_factory.mktemp("prop")
    path = WRITERS[name](frame, folder / name)
    assert_frame_equal(sort(natlens.read_flowlogs(path)), sort(frame))


@settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(frame=_FRAMES, data=st.data())
def test_a_corrupted_line_costs_exactly_that_line(
    tmp_path_factory: pytest.TempPathFactory, frame: pl.DataFrame, data: st.DataObject
) -> None:
    path = write_pt1h(frame, tmp_path_factory.mktemp("corrupt") / "PT1H.json")
    lines = path.read_text().splitlines()
    index = data.draw(st.integers(min_value=0, max_value=len(lines) - 1), label="line")
    cut = data.draw(st.integers(min_value=1, max_value=len(lines[index]) - 1), label="cut")
    lines[index] = lines[index][:cut]  # a torn or garbled line: never valid JSON
    path.write_text("\n".join(lines) + "\n")
    report = natlens.LoadReport()
    got = natlens.read_flowlogs(path, report=report)
    kept = frame.filter(pl.int_range(pl.len()) != index)
    assert_frame_equal(sort(got), sort(kept))
    assert [p.line for p in report.problems] == [index + 1]


# --------------------------------------------------------------------------- projection


def test_projection_and_predicates_give_what_a_full_read_gives(tmp_path: Path) -> None:
    path = write_pt1h(SMALL.with_columns(resource_id=None), tmp_path / BLOB)
    full = natlens.read_flowlogs(path)
    lazy = natlens.scan_flowlogs(path)
    query = lazy.filter(pl.col("packets_sent") > 5).select("source_ip", "resource_id")
    expected = full.filter(pl.col("packets_sent") > 5).select("source_ip", "resource_id")
    assert_frame_equal(sort(query.collect()), sort(expected))
    narrow = lazy.select("bytes_sent").collect()
    assert_frame_equal(sort(narrow), sort(full.select("bytes_sent")))


def test_a_record_missing_a_required_field_is_skipped_whatever_the_query(tmp_path: Path) -> None:
    path = write_pt1h(SMALL, tmp_path / "PT1H.json")
    lines = path.read_text().splitlines()
    lines[2] = lines[2].replace('"NatGatewayIp"', '"Unrelated"')
    path.write_text("\n".join(lines) + "\n")
    report = natlens.LoadReport()
    total = natlens.scan_flowlogs(path, report=report).select(pl.col("bytes_sent").sum()).collect()
    assert total.item() == SMALL.filter(pl.int_range(pl.len()) != 2).get_column("bytes_sent").sum()
    assert [(p.line, p.reason) for p in report.problems] == [(3, "missing nat_gateway_ip")]
