"""Loaders an auditor can trust: every bad value is caught on every path, no fault loses data.

Each bad value is written into files the way Azure writes them, then read through the
fast JSON Lines path (DuckDB) and the careful one (Python): both keep exactly the good
records and report each bad one with its file, line and reason.
"""

from __future__ import annotations

import datetime as dt
import gzip
import ipaddress
import json
import os
import shutil
import subprocess
import sys
import tempfile
import warnings
import zlib
from collections.abc import Callable
from pathlib import Path

import polars as pl
import pytest
from flowlog_formats import WRITERS, write_pt1h
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from polars.testing import assert_frame_equal

import natlens
from natlens import _files

GATEWAY = (
    "/SUBSCRIPTIONS/11111111-2222-3333-4444-555555555555/RESOURCEGROUPS/RG-NET/PROVIDERS/"
    "MICROSOFT.NETWORK/NATGATEWAYS/NG-WEU-1"
)
BLOB = f"resourceId={GATEWAY}/y=2026/m=11/d=09/h=10/m=00/PT1H.json"

# Every test here runs with each JSON Lines reader: the exact one and DuckDB's text read.
pytestmark = pytest.mark.usefixtures("json_reader")


def t(minute: int) -> dt.datetime:
    return dt.datetime(2026, 11, 9, 10, minute, tzinfo=dt.UTC)


def frame(n: int) -> pl.DataFrame:
    rows = [
        (
            t(i % 60),
            f"10.0.{i // 200}.{i % 200 + 1}",
            f"20.60.{i % 7}.{i % 250 + 1}",
            "52.1.1.1",
            *(i + 1, 2 * i + 1, 0, i % 3, 1400 * (i + 1), 1300 * (i + 1)),
            GATEWAY,
        )
        for i in range(n)
    ]
    return pl.DataFrame(rows, schema=natlens.FLOW_SCHEMA, orient="row")


CLEAN = frame(6)


def sort(flows: pl.DataFrame) -> pl.DataFrame:
    return flows.sort(flows.columns, nulls_last=True)


def without(flows: pl.DataFrame, index: int) -> pl.DataFrame:
    return flows.filter(pl.int_range(pl.len()) != index)


def read(path: Path) -> tuple[pl.DataFrame, natlens.LoadReport]:
    report = natlens.LoadReport()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", natlens.FlowLogWarning)
        flows = natlens.read_flowlogs(path, report=report)
    return flows, report


def careful(path: Path) -> tuple[pl.DataFrame, list[natlens.Problem]]:
    """The careful (Python) path on the same file, whatever the fast path would do."""
    plan = _files._sniff(path)
    assert plan is not None
    return _files._careful(plan)


def no_careful_path(monkeypatch: pytest.MonkeyPatch) -> None:
    """Fail the test if a whole file falls back to the careful path."""

    def refuse(plan: object) -> object:
        raise AssertionError(f"the careful path read the whole file {plan}")

    monkeypatch.setattr(_files, "_careful", refuse)


def set_properties(**values: object) -> Callable[[dict[str, object]], object]:
    """An edit of a record's ``properties``."""

    def edit(record: dict[str, object]) -> None:
        props = record["properties"]
        assert isinstance(props, dict)
        props.update(values)

    return edit


def rewrite_line(path: Path, index: int, edit: Callable[[dict[str, object]], object]) -> None:
    lines = path.read_text().splitlines()
    record = json.loads(lines[index])
    edit(record)
    lines[index] = json.dumps(record)
    path.write_text("\n".join(lines) + "\n")


# --------------------------------------------------------------------------- one bad value

BAD_VALUES: list[tuple[str, object, str]] = [
    ("SourceIp", "hello", "source_ip is not an IP address: 'hello'"),
    ("SourceIp", "", "missing source_ip"),
    ("DestinationIp", "999.1.1.1", "destination_ip is not an IP address: '999.1.1.1'"),
    ("NatGatewayIp", "010.000.000.001", "nat_gateway_ip is not an IP address"),
    ("PacketsSent", 1.5, "packets_sent is not a whole number: '1.5'"),
    ("PacketsSent", True, "packets_sent is not a number: 'true'"),
    ("BytesSent", "lots", "bytes_sent is not a number: 'lots'"),
    ("BytesSent", 2**63, "bytes_sent is too large for a counter"),
    ("BytesReceived", 2**64 + 1, "bytes_received is too large for a counter"),
    ("PacketsReceived", -4, "packets_received is negative"),
    ("PacketsReceived", {"nested": 1}, "packets_received is not a number"),
    ("time", "epoch", "unparseable timestamp 'epoch'"),
    ("time", "infinity", "unparseable timestamp 'infinity'"),
    ("time", "0001-01-01T00:00:00Z", "time out of range"),
    ("time", "10000-01-01T00:00:00Z", "unparseable timestamp"),
    ("time", "2026-11-09T10:01:60Z", "unparseable timestamp"),
    ("time", 1762682460, "unparseable timestamp '1762682460'"),
]


@pytest.mark.parametrize("gz", [False, True], ids=["plain", "gzip"])
@pytest.mark.parametrize(("key", "value", "reason"), BAD_VALUES)
def test_a_bad_value_costs_its_line_on_the_fast_path(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    *,
    gz: bool,
    key: str,
    value: object,
    reason: str,
) -> None:
    path = write_pt1h(CLEAN, tmp_path / "PT1H.json")

    def damage(record: dict[str, object]) -> None:
        target = record if key == "time" else record["properties"]
        assert isinstance(target, dict)
        target[key] = value

    rewrite_line(path, 2, damage)
    if gz:
        path.write_bytes(gzip.compress(path.read_bytes()))
    fast_path_only = monkeypatch.context()
    with fast_path_only as patch:
        no_careful_path(patch)
        flows, report = read(path)
    assert_frame_equal(sort(flows), sort(without(CLEAN, 2)))
    assert [(p.file, p.line) for p in report.problems] == [(str(path), 3)]
    assert reason in report.problems[0].reason
    # The careful path agrees, record for record and reason for reason.
    slow, problems = careful(path)
    assert_frame_equal(sort(slow), sort(flows))
    assert [(p.line, p.reason) for p in problems] == [(3, report.problems[0].reason)]
    with pytest.raises(natlens.FlowLogError, match=r"PT1H\.json:3: ") as info:
        natlens.read_flowlogs(path, strict=True)
    assert info.value.line == 3
    assert info.value.file == str(path)


def test_a_lazy_count_counts_what_a_full_read_keeps(tmp_path: Path) -> None:
    path = write_pt1h(CLEAN, tmp_path / "PT1H.json")
    rewrite_line(path, 1, set_properties(BytesSent=2**63))
    with pytest.warns(natlens.FlowLogWarning):
        count = natlens.scan_flowlogs(path).select(pl.len()).collect().item()
    assert count == CLEAN.height - 1


def test_padded_ip_text_is_trimmed_on_both_paths(tmp_path: Path) -> None:
    """Decided: surrounding spaces are trimmed (as canonical_ip does); leading zeros refused."""
    path = write_pt1h(CLEAN, tmp_path / "PT1H.json")
    rewrite_line(path, 0, set_properties(SourceIp=" 10.0.0.1 "))
    flows, report = read(path)
    assert report.ok
    assert "10.0.0.1" in flows.get_column("source_ip").to_list()
    assert careful(path)[0].get_column("source_ip").to_list() == sorted(
        flows.get_column("source_ip").to_list(), key=flows.get_column("source_ip").to_list().index
    )


def test_exact_counters_are_kept_exactly(tmp_path: Path) -> None:
    path = write_pt1h(CLEAN, tmp_path / "PT1H.json")
    big = 2**63 - 1
    rewrite_line(path, 0, set_properties(BytesSent=big, PacketsSent="1,024"))
    flows, report = read(path)
    assert report.ok
    row = flows.filter(pl.col("bytes_sent") == big)
    assert row.height == 1
    assert row.item(0, "packets_sent") == 1024


# --------------------------------------------------------------------------- spellings


def test_every_documented_spelling_on_every_line(tmp_path: Path) -> None:
    path = write_pt1h(CLEAN, tmp_path / "PT1H.json")

    # Line 1 lacks PacketsSentDropped; later lines spell fields as other pages do.
    def drop(record: dict[str, object]) -> None:
        props = record["properties"]
        assert isinstance(props, dict)
        del props["PacketsSentDropped"]

    rewrite_line(path, 0, drop)

    def respell(record: dict[str, object]) -> None:
        props = record["properties"]
        assert isinstance(props, dict)
        props["packetsSent"] = props.pop("PacketsSent")
        props["SourceIP"] = props.pop("SourceIp")
        props["DestinationIP"] = props.pop("DestinationIp")
        record["_resourceId"] = record.pop("resourceId")

    rewrite_line(path, 3, respell)
    rewrite_line(path, 4, lambda r: r.update(TimeGenerated=r.pop("time")))
    flows, report = read(path)
    assert report.ok, report.problems
    expected = CLEAN.with_columns(
        packets_sent_dropped=pl.when(pl.int_range(pl.len()) == 0)
        .then(None)
        .otherwise(pl.col("packets_sent_dropped"))
    )
    assert_frame_equal(sort(flows), sort(expected))


def test_a_counter_spelled_otherwise_on_a_later_line_is_not_lost(tmp_path: Path) -> None:
    path = write_pt1h(CLEAN, tmp_path / "PT1H.json")

    def respell(record: dict[str, object]) -> None:
        props = record["properties"]
        assert isinstance(props, dict)
        props["packetsSent"] = props.pop("PacketsSent")

    rewrite_line(path, 4, respell)
    flows, report = read(path)
    assert report.ok, report.problems
    assert_frame_equal(sort(flows), sort(CLEAN))


# --------------------------------------------------------------------------- shapes


def test_deeply_nested_lines_are_bad_records_not_crashes(tmp_path: Path) -> None:
    path = write_pt1h(CLEAN, tmp_path / "PT1H.json")
    lines = path.read_text().splitlines()
    lines[1] = "[" * 100_000 + "]" * 100_000
    lines[3] = '{"a":' * 100_000 + "1" + "}" * 100_000
    path.write_text("\n".join(lines) + "\n")
    flows, report = read(path)
    assert flows.height == CLEAN.height - 2
    assert [p.line for p in report.problems] == [2, 4]
    assert all("nested too deeply" in p.reason for p in report.problems)


def test_a_deeply_nested_first_line_is_a_bad_record(tmp_path: Path) -> None:
    path = write_pt1h(CLEAN, tmp_path / "PT1H.json")
    path.write_text("[" * 100_000 + "]" * 100_000 + "\n" + path.read_text())
    flows, report = read(path)
    assert flows.height == CLEAN.height
    assert [p.line for p in report.problems] == [1]


def test_csv_rows_with_extra_or_missing_fields_are_bad_records(tmp_path: Path) -> None:
    path = WRITERS["portal.csv"](CLEAN, tmp_path / "export.csv")
    lines = path.read_text(encoding="utf-8-sig").splitlines()
    lines[2] += ",surplus"  # row 2 of the data: one field too many
    lines[4] = lines[4].rsplit(",", 2)[0]  # row 4: two fields short
    path.write_text("\n".join(lines) + "\n")
    flows, report = read(path)
    assert_frame_equal(sort(flows), sort(CLEAN.filter(~pl.int_range(pl.len()).is_in([1, 3]))))
    assert [(p.line, p.reason) for p in report.problems] == [
        (3, "14 fields where the header has 13"),
        (5, "11 fields where the header has 13"),
    ]


def test_a_short_query_api_row_is_a_bad_record(tmp_path: Path) -> None:
    names = ["TimeGenerated", "SourceIP", "DestinationIP", "NatGatewayIP", "BytesSent"]
    rows = [
        ["2026-11-09T10:01:00Z", "10.0.0.1", "20.0.0.1", "52.0.0.1", 10],
        ["2026-11-09T10:02:00Z", "10.0.0.2", "20.0.0.1"],
        ["2026-11-09T10:03:00Z", "10.0.0.3", "20.0.0.1", "52.0.0.1", 30, "extra"],
    ]
    document = {
        "tables": [{"name": "PrimaryResult", "columns": [{"name": n} for n in names], "rows": rows}]
    }
    path = tmp_path / "query.json"
    path.write_text(json.dumps(document, indent=2))
    flows, report = read(path)
    assert flows.get_column("source_ip").to_list() == ["10.0.0.1"]
    assert [p.reason for p in report.problems] == [
        "record 2: 3 values where the table has 5 columns",
        "record 3: 6 values where the table has 5 columns",
    ]


# --------------------------------------------------------------------------- faults


def test_a_flipped_byte_in_gzip_keeps_every_line_before_the_damage(tmp_path: Path) -> None:
    clean = frame(2000)
    path = write_pt1h(clean, tmp_path / "PT1H.json.gz", gz=True)
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    path.write_bytes(bytes(data))
    with pytest.raises((zlib.error, OSError)):  # the damage is real: gzip refuses the file
        gzip.decompress(bytes(data))
    flows, report = read(path)
    kept = flows.height
    assert 500 < kept < 2000
    assert_frame_equal(flows, clean.head(kept))  # a prefix, in order, nothing altered
    assert [(p.line, p.reason.split(" (")[0]) for p in report.problems] == [
        (kept + 1, "damaged gzip data")
    ]
    with pytest.raises(natlens.FlowLogError, match="damaged gzip data"):
        natlens.read_flowlogs(path, strict=True)


def test_a_truncated_gzip_file_keeps_its_complete_lines(tmp_path: Path) -> None:
    path = write_pt1h(frame(500), tmp_path / "PT1H.json.gz", gz=True)
    path.write_bytes(path.read_bytes()[:-200])
    flows, report = read(path)
    assert 400 < flows.height < 500
    assert_frame_equal(flows, frame(500).head(flows.height))
    assert any("truncated" in p.reason for p in report.problems)


def test_a_torn_last_line_costs_that_line_on_the_fast_path(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    clean = frame(300)
    path = write_pt1h(clean, tmp_path / BLOB)
    path.write_bytes(path.read_bytes()[:-25])
    no_careful_path(monkeypatch)
    flows, report = read(path)
    assert_frame_equal(flows, clean.head(299))
    assert [(p.line, p.reason) for p in report.problems] == [
        (300, "incomplete last line (the blob may still be being written)")
    ]


def test_a_torn_last_line_after_blank_lines_has_its_own_number(tmp_path: Path) -> None:
    path = write_pt1h(CLEAN, tmp_path / "PT1H.json")
    lines = path.read_text().splitlines()
    path.write_text("\n".join([lines[0], "", "  ", *lines[1:]])[:-30])
    flows, report = read(path)
    assert_frame_equal(flows, CLEAN.head(CLEAN.height - 1))
    assert [(p.line, p.reason.split(" (")[0]) for p in report.problems] == [
        (CLEAN.height + 2, "incomplete last line")
    ]


def test_lines_are_numbered_right_around_blank_lines(tmp_path: Path) -> None:
    path = write_pt1h(CLEAN, tmp_path / "PT1H.json")
    lines = path.read_text().splitlines()
    lines[3] = lines[3].replace('"SourceIp": "', '"SourceIp": "x')
    path.write_text("\n".join(["", *lines[:2], "   ", "\r", *lines[2:]]) + "\n")
    flows, report = read(path)
    assert flows.height == CLEAN.height - 1
    assert [p.line for p in report.problems] == [7]


def test_batches_of_files_name_the_right_file_and_line(tmp_path: Path) -> None:
    paths = [write_pt1h(frame(20), tmp_path / f"h={h:02d}" / "PT1H.json") for h in range(5)]
    rewrite_line(paths[3], 7, set_properties(NatGatewayIp="52.1.1"))
    rewrite_line(paths[1], 4, lambda r: r.pop("time"))
    flows, report = read(tmp_path)
    assert flows.height == 5 * 20 - 2
    assert [(p.file, p.line) for p in report.problems] == [(str(paths[1]), 5), (str(paths[3]), 8)]


def record_queries(monkeypatch: pytest.MonkeyPatch) -> list[dict[str, object]]:
    """The keywords of every DuckDB query the fast path builds, in order (the exact reader,
    which would read these files first, is set aside)."""
    monkeypatch.setattr(_files, "_scan", None)
    queries: list[dict[str, object]] = []
    real_query = _files._fast_query

    def spy(plans: list[object], **how: object) -> str:
        queries.append(how)
        return real_query(plans, **how)  # type: ignore[arg-type]

    monkeypatch.setattr(_files, "_fast_query", spy)
    return queries


def test_a_line_that_is_not_json_in_a_whole_file_costs_that_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Whole files are first read without DuckDB's ignore_errors; a bad line reads them again."""
    paths = [write_pt1h(frame(20), tmp_path / f"h={h:02d}" / "PT1H.json") for h in range(3)]
    lines = paths[1].read_text().splitlines()
    lines[6] = '{"time": "2026-11-09T10:06:00Z", "properties": {"SourceIp": '
    paths[1].write_text("\n".join(lines) + "\n")
    queries = record_queries(monkeypatch)
    no_careful_path(monkeypatch)
    flows, report = read(tmp_path)
    assert flows.height == 3 * 20 - 1
    assert [(p.file, p.line) for p in report.problems] == [(str(paths[1]), 7)]
    assert [query["lenient"] for query in queries] == [False, True]


def test_only_a_torn_batch_is_read_leniently(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    whole = write_pt1h(frame(20), tmp_path / "h=01" / "PT1H.json")
    torn = write_pt1h(frame(20), tmp_path / "h=02" / "PT1H.json")
    torn.write_bytes(torn.read_bytes()[:-10])
    assert _files._ends_whole(_files._sniff(whole))  # type: ignore[arg-type]
    assert not _files._ends_whole(_files._sniff(torn))  # type: ignore[arg-type]
    queries = record_queries(monkeypatch)
    flows, report = read(tmp_path)
    assert flows.height == 39
    assert [(p.file, p.line) for p in report.problems] == [(str(torn), 20)]
    assert [query["lenient"] for query in queries] == [True]


def test_a_line_of_another_gateway_keeps_its_own_id(tmp_path: Path) -> None:
    """Rows are filled with the path's gateway only where they have no id of their own."""
    other = GATEWAY.replace("NG-WEU-1", "NG-WEU-2")
    path = write_pt1h(CLEAN, tmp_path / BLOB)
    rewrite_line(path, 2, lambda r: r.update(resourceId=other.lower()))
    rewrite_line(path, 4, lambda r: r.pop("resourceId"))
    flows, report = read(path)
    assert report.ok, report.problems
    assert flows.get_column("resource_id").to_list() == [
        GATEWAY,
        GATEWAY,
        other,
        GATEWAY,
        GATEWAY,
        GATEWAY,
    ]


def test_a_sync_cache_is_read_once(tmp_path: Path) -> None:
    """The blob mirror and the Parquet store of `natlens sync` hold the same records."""
    cache = tmp_path / "cache"
    flows = frame(40)
    write_pt1h(flows, cache / "blobs" / BLOB)
    natlens.write_parquet(flows, cache / "parquet", part=BLOB)
    (cache / "manifest.jsonl").write_text(json.dumps({"name": BLOB}) + "\n")
    assert natlens.read_flowlogs(cache).height == flows.height
    assert natlens.read_flowlogs(tmp_path).height == flows.height
    assert natlens.summarize(cache).records == flows.height  # what natlens triage shows


def test_pipes_and_broken_links_are_reported_not_skipped(tmp_path: Path) -> None:
    logs = tmp_path / "logs"
    write_pt1h(CLEAN, logs / "a" / "PT1H.json")
    os.mkfifo(logs / "a" / "PT1H-live.json")  # reading it would block forever
    (logs / "b").mkdir()
    (logs / "b" / "PT1H.json").symlink_to(tmp_path / "gone.json")
    flows, report = read(logs)
    assert flows.height == CLEAN.height
    assert sorted((Path(p.file).name, p.reason) for p in report.problems) == [
        ("PT1H-live.json", "not a regular file (a pipe, socket or device)"),
        ("PT1H.json", "broken symbolic link"),
    ]
    with pytest.raises(natlens.FlowLogError, match=r"broken symbolic link|not a regular file"):
        natlens.read_flowlogs(logs, strict=True)


_UNREADABLE_CHECK = """
import json, sys, warnings
import natlens
report = natlens.LoadReport()
with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    flows = natlens.read_flowlogs(sys.argv[1], report=report)
try:
    natlens.read_flowlogs(sys.argv[1], strict=True)
    strict = "no error"
except natlens.FlowLogError as exc:
    strict = type(exc).__name__
print(json.dumps({"rows": flows.height, "strict": strict,
                  "problems": [[p.file, p.reason] for p in report.problems]}))
"""


def _python_for_nobody() -> tuple[str, dict[str, str]]:
    """An interpreter the user nobody may run, importing natlens and this environment."""
    try:
        import pwd

        pwd.getpwnam("nobody")
    except KeyError:
        pytest.skip("running as root and there is no user 'nobody' to drop to")
    paths = [str(Path(natlens.__file__).parents[1]), str(Path(pl.__file__).parents[1])]
    env = {"PYTHONPATH": os.pathsep.join(paths), "HOME": "/tmp", "PATH": os.defpath}
    version = f"python{sys.version_info.major}.{sys.version_info.minor}"
    for python in (sys.executable, shutil.which(version) or "", f"/usr/bin/{version}"):
        if not python:
            continue
        try:
            probe = subprocess.run(
                [python, "-c", "import natlens"],
                user="nobody",
                env=env,
                capture_output=True,
                cwd="/",
                check=False,
            )
        except OSError:  # this interpreter lives where nobody may not go
            continue
        if probe.returncode == 0:
            return python, env
    pytest.skip(f"no {version} interpreter the user nobody can run with natlens")


def test_unreadable_directories_and_files_are_reported(tmp_path: Path) -> None:
    """Permissions only bind a user other than root: as root, the check runs as nobody."""
    base = Path(tempfile.mkdtemp(prefix="natlens-perm-"))
    try:
        base.chmod(0o755)
        logs = base / "logs"
        write_pt1h(CLEAN, logs / "ok" / "PT1H.json")
        write_pt1h(CLEAN, logs / "closed" / "PT1H.json")
        write_pt1h(CLEAN, logs / "ok" / "secret" / "PT1H.json")
        for folder in (logs, logs / "ok", logs / "ok" / "secret", logs / "closed"):
            folder.chmod(0o755)
        (logs / "ok" / "PT1H.json").chmod(0o644)
        (logs / "closed").chmod(0o000)
        (logs / "ok" / "secret" / "PT1H.json").chmod(0o000)
        if os.geteuid() == 0:
            python, env = _python_for_nobody()
            result = subprocess.run(
                [python, "-c", _UNREADABLE_CHECK, str(logs)],
                capture_output=True,
                text=True,
                user="nobody",
                cwd=base,
                env=env,
                check=False,
            )
        else:
            result = subprocess.run(
                [sys.executable, "-c", _UNREADABLE_CHECK, str(logs)],
                capture_output=True,
                text=True,
                check=False,
            )
        assert result.returncode == 0, result.stderr
        seen = json.loads(result.stdout)
        assert seen["rows"] == CLEAN.height
        assert seen["strict"] == "FlowLogError"
        problems = sorted((Path(f).relative_to(logs).as_posix(), r) for f, r in seen["problems"])
        assert problems == [
            ("closed", "cannot read this directory (Permission denied)"),
            ("ok/secret/PT1H.json", "cannot read this file (Permission denied)"),
        ]
    finally:
        for folder in (base / "logs" / "closed",):
            if folder.exists():
                folder.chmod(0o755)
        shutil.rmtree(base)


# --------------------------------------------------------------------------- properties

# A sentinel in a record, replaced in the written file by a bad value's text.
_IP_SENTINEL = "198.51.100.254"
_COUNT_SENTINEL = 987_654_321
_BAD_IPS = ["hello", "999.1.1.1", "010.000.000.001", "10.0.0.1.5", ""]
_BAD_COUNTS = ["1.5", "true", "-1", "9223372036854775808", "1e400"]
_TEXT_FORMATS = sorted(name for name in WRITERS if name != "store")

_V4 = (
    st.integers(min_value=1, max_value=2**32 - 1)
    .map(lambda n: str(ipaddress.IPv4Address(n)))
    .filter(lambda ip: ip != _IP_SENTINEL)
)
_COUNT = st.one_of(st.none(), st.integers(min_value=0, max_value=2**40)).filter(
    lambda n: n != _COUNT_SENTINEL
)
_ROW = st.tuples(
    st.integers(min_value=0, max_value=24 * 60 - 1).map(
        lambda m: dt.datetime(2026, 11, 9, tzinfo=dt.UTC) + dt.timedelta(minutes=m)
    ),
    _V4,
    _V4,
    _V4,
    *[_COUNT] * 6,
    st.just(GATEWAY),
)


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    rows=st.lists(_ROW, min_size=2, max_size=25),
    name=st.sampled_from(_TEXT_FORMATS),
    data=st.data(),
)
def test_one_bad_value_costs_exactly_its_record_in_every_format(
    tmp_path_factory: pytest.TempPathFactory,
    rows: list[tuple[object, ...]],
    name: str,
    data: st.DataObject,
) -> None:
    flows = pl.DataFrame(rows, schema=natlens.FLOW_SCHEMA, orient="row")
    index = data.draw(st.integers(min_value=0, max_value=flows.height - 1), label="record")
    column = data.draw(
        st.sampled_from(["source_ip", "destination_ip", "nat_gateway_ip", "bytes_sent"]),
        label="column",
    )
    ip = column.endswith("_ip")
    bad = data.draw(st.sampled_from(_BAD_IPS if ip else _BAD_COUNTS), label="bad value")
    sentinel: object = _IP_SENTINEL if ip else _COUNT_SENTINEL
    marked = flows.with_columns(
        pl.when(pl.int_range(pl.len()) == index)
        .then(pl.lit(sentinel, dtype=flows.schema[column]))
        .otherwise(pl.col(column))
        .alias(column)
    )
    path = WRITERS[name](marked, tmp_path_factory.mktemp("bad") / name)
    raw = gzip.decompress(path.read_bytes()) if name.endswith(".gz") else path.read_bytes()
    text = raw.decode("utf-8-sig")
    assert text.count(str(sentinel)) == 1
    text = text.replace(str(sentinel), bad)
    encoded = text.encode()
    path.write_bytes(gzip.compress(encoded) if name.endswith(".gz") else encoded)

    expected = sort(without(flows, index))
    got, report = read(path)
    assert_frame_equal(sort(got), expected)
    assert len(report.problems) == 1
    problem = report.problems[0]
    assert column in problem.reason
    slow, problems = careful(path)
    assert_frame_equal(sort(slow), expected)
    assert [(p.line, p.reason) for p in problems] == [(problem.line, problem.reason)]


@pytest.mark.parametrize(
    ("key", "value", "column", "silently"),
    [
        ("PacketsSent", 1.5, "BIGINT", 2),
        ("PacketsSent", True, "BIGINT", 1),
        ("BytesSent", True, "DOUBLE", 1.0),
        ("BytesSent", "0x10", "BIGINT", 16),
        ("time", "epoch", "TIMESTAMPTZ", dt.datetime(1970, 1, 1, tzinfo=dt.UTC)),
    ],
)
def test_duckdb_typed_reads_change_bad_values_which_is_why_the_fast_path_reads_text(
    tmp_path: Path, key: str, value: object, column: str, silently: object
) -> None:
    """The README's reason for reading every value as text; if DuckDB turns strict, this fails
    and a typed (faster) fast path becomes possible."""
    import duckdb

    path = write_pt1h(CLEAN, tmp_path / "PT1H.json")

    def damage(record: dict[str, object]) -> None:
        target = record if key == "time" else record["properties"]
        assert isinstance(target, dict)
        target[key] = value

    rewrite_line(path, 2, damage)
    con = duckdb.connect()
    con.execute("SET TimeZone = 'UTC'")
    typed = f"{key}: '{column}'" if key == "time" else f"properties: 'STRUCT({key} {column})'"
    got = "time" if key == "time" else f"properties.{key}"
    query = (
        f"SELECT {got} FROM read_json(?, format='newline_delimited', columns={{{typed}}}) "
        "LIMIT 1 OFFSET 2"
    )
    assert con.execute(query, [str(path)]).fetchone() == (silently,)
    flows, report = read(path)
    assert [p.line for p in report.problems] == [3], "natlens refuses what DuckDB accepts"
    assert_frame_equal(sort(flows), sort(without(CLEAN, 2)))
