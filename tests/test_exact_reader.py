"""The exact JSON Lines reader (natlens/_scan.c): it reads exactly, or it declines.

Storage-account ``PT1H.json`` blobs are read first by a compiled reader that is typed and
strict at once. These tests hold it to one promise: on any file, what natlens returns
(the frame, every problem with its file, line and reason) is what DuckDB's text read
and the careful Python path return. Files it reads itself are compared with the DuckDB
path; files it must decline are shown to be declined and then read as before.
"""

from __future__ import annotations

import datetime as dt
import gzip
import ipaddress
import json
import re
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import polars as pl
import pytest
from flowlog_formats import envelope
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from polars.testing import assert_frame_equal

import natlens
from natlens import _files
from natlens._schema import COUNTER_COLUMNS, IP_COLUMNS, canonical_ip

try:
    from natlens import _scan
except ImportError:  # natlens installed without a C compiler
    from compiled import require_exact_reader

    require_exact_reader()

GATEWAY = (
    "/SUBSCRIPTIONS/11111111-2222-3333-4444-555555555555/RESOURCEGROUPS/RG-NET/PROVIDERS/"
    "MICROSOFT.NETWORK/NATGATEWAYS/NG-WEU-1"
)
BLOB = f"resourceId={GATEWAY}/y=2026/m=11/d=09/h=10/m=00/PT1H.json"
# The spellings the reader is handed, in its order: time, resource id, IPs, counters.
KEYS = ("time", "resourceId", *(_files._FAST_FIELDS[n] for n in (*IP_COLUMNS, *COUNTER_COLUMNS)))


def flows(n: int) -> pl.DataFrame:
    rows = [
        (
            dt.datetime(2026, 11, 9, 10, i % 60, i % 7, 1000 * i, tzinfo=dt.UTC),
            f"10.{i // 250}.{i % 3}.{i % 250 + 1}",
            f"20.60.1{i % 10}.{200 + i % 50}",
            f"52.1.1.{i % 2}",
            *(i + 1, 2 * i, 0, i % 2, 1400 * (i + 1), 900 * i),
            GATEWAY,
        )
        for i in range(n)
    ]
    return pl.DataFrame(rows, schema=natlens.FLOW_SCHEMA, orient="row")


def lines(n: int = 12) -> list[str]:
    """A storage-account blob's lines, as Azure writes them (compact JSON)."""
    return [
        json.dumps(envelope(row), separators=(",", ":")) for row in flows(n).iter_rows(named=True)
    ]


def write(root: Path, text: str | bytes, *, gz: bool = False) -> Path:
    path = root / (BLOB + (".gz" if gz else ""))
    path.parent.mkdir(parents=True, exist_ok=True)
    data = text.encode() if isinstance(text, str) else text
    path.write_bytes(gzip.compress(data, mtime=0) if gz else data)
    return path


def load(path: Path) -> tuple[pl.DataFrame, list[tuple[str, int | None, str]]]:
    report = natlens.LoadReport()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", natlens.FlowLogWarning)
        frame = natlens.read_flowlogs(path, report=report)
    return frame, [(p.file, p.line, p.reason) for p in report.problems]


def by_duckdb(path: Path) -> tuple[pl.DataFrame, list[tuple[str, int | None, str]]]:
    """The same read without the exact reader: DuckDB's text read, or the careful path."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(_files, "_scan", None)
        return load(path)


def exact(
    path: Path, threads: int = 1
) -> tuple[pl.DataFrame, list[tuple[str, int | None, str]]] | None:
    """What the exact reader makes of the file alone; None when it declines."""
    plan = _files._sniff(path)
    assert plan is not None
    read = _files._exact(plan, threads)
    if read is None:
        return None
    return read[0], [(p.file, p.line, p.reason) for p in read[1]]


def assert_same(
    got: tuple[pl.DataFrame, list[tuple[str, int | None, str]]],
    want: tuple[pl.DataFrame, list[tuple[str, int | None, str]]],
) -> None:
    assert got[1] == want[1]
    assert got[0].schema == natlens.FLOW_SCHEMA
    assert_frame_equal(got[0], want[0])


def spy_windows(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """The length of every window the exact reader is handed, as it goes."""
    windows: list[int] = []
    real = _files._windows

    def spy(stream: Any, size: int, ring: int = 1) -> Any:
        for window in real(stream, size, ring):
            windows.append(len(window))
            yield window

    monkeypatch.setattr(_files, "_windows", spy)
    return windows


def no_duckdb(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(*_: object, **__: object) -> None:
        raise AssertionError("the exact reader should have read this")

    monkeypatch.setattr(_files, "_fast", refuse)
    monkeypatch.setattr(_files, "_careful", refuse)


# --------------------------------------------------------------------------- read exactly


def test_the_shipped_week_is_read_by_the_exact_reader_alone(
    samples: natlens.SampleData, monkeypatch: pytest.MonkeyPatch
) -> None:
    want = by_duckdb(samples.flowlogs)
    no_duckdb(monkeypatch)
    got = load(samples.flowlogs)
    assert got[0].height == 214_334
    assert_same(got, want)


@pytest.mark.parametrize("gz", [False, True])
def test_a_clean_blob_is_read_exactly_in_one_window(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, gz: bool
) -> None:
    path = write(tmp_path, "\n".join(lines(400)) + "\n", gz=gz)
    want = by_duckdb(path)
    no_duckdb(monkeypatch)
    windows = spy_windows(monkeypatch)
    got = load(path)
    assert_same(got, want)
    assert_frame_equal(got[0], flows(400))
    # one window, gzip too (sized by the gzip trailer: each window is checked on its own,
    # and the shipped week once took 10x as long in windows the compressed size)
    assert windows == [len(gzip.decompress(path.read_bytes())) if gz else path.stat().st_size]


# Lines the exact reader reads, leaving the values to natlens's rules: the verdicts (kept,
# converted, refused with a reason) must be the DuckDB path's and the careful path's.
def _set(key: str, value: object) -> Callable[[dict[str, Any]], None]:
    def change(record: dict[str, Any]) -> None:
        where = record if key in ("time", "resourceId") else record["properties"]
        where[key] = value

    return change


def _drop(key: str) -> Callable[[dict[str, Any]], None]:
    def change(record: dict[str, Any]) -> None:
        (record if key in record else record["properties"]).pop(key)

    return change


READ: dict[str, Callable[[dict[str, Any]], None]] = {
    "ip not an ip": _set("SourceIp", "hello"),
    "ip empty": _set("DestinationIp", ""),
    "ip padded": _set("SourceIp", " 10.0.0.9 "),
    "ip leading zeros": _set("NatGatewayIp", "010.000.000.001"),
    "ip 256": _set("DestinationIp", "20.60.1.256"),
    "ipv6 upper case": _set("DestinationIp", "2001:DB8::1"),
    "ipv4-mapped": _set("SourceIp", "::ffff:a00:1"),
    "nat64": _set("DestinationIp", "64:ff9b::1401:203"),
    "time epoch": _set("time", "epoch"),
    "time infinity": _set("time", "infinity"),
    "time 1999": _set("time", "1999-12-31T23:59:00Z"),
    "time 2100": _set("time", "2100-01-01T00:00:00.0000000Z"),
    "time other spelling": _set("time", "2026-11-09 10:05:00"),
    "time with offset": _set("time", "2026-11-09T11:05:00+01:00"),
    "time no such day": _set("time", "2026-02-29T10:00:00Z"),
    "time hour 24": _set("time", "2026-11-09T24:00:00Z"),
    "time nine digits": _set("time", "2026-11-09T10:05:00.123456789Z"),
    "time leap day": _set("time", "2028-02-29T23:59:59.9999999Z"),
    "time empty": _set("time", ""),
    "counter null": _set("BytesSent", None),
    "counter missing": _drop("PacketsSentDropped"),
    "counter largest": _set("BytesReceived", 2**63 - 1),
    "resource lower case": _set("resourceId", GATEWAY.lower()),
    "resource blank": _set("resourceId", "  "),
    "resource null": _set("resourceId", None),
    "resource missing": _drop("resourceId"),
    "resource another gateway": _set("resourceId", GATEWAY[:-1] + "9"),
    "unknown nested value": lambda r: r.update(extra={"a": [1, {"b": None}], "c": -1.5e3}),
}


@pytest.mark.parametrize("change", list(READ), ids=list(READ))
def test_values_the_exact_reader_reads_get_natlens_verdicts(tmp_path: Path, change: str) -> None:
    records = [json.loads(line) for line in lines()]
    READ[change](records[4])
    path = write(tmp_path, "".join(json.dumps(r) + "\n" for r in records))
    got = exact(path)
    assert got is not None, "the exact reader should read this file"
    want = by_duckdb(path)
    assert_same(got, want)
    plan = _files._sniff(path)
    assert plan is not None
    careful, problems = _files._careful(plan)
    assert [(p.file, p.line, p.reason) for p in problems] == want[1]
    assert_frame_equal(careful, want[0])


LAYOUT: dict[str, Callable[[list[str]], str]] = {
    "crlf": lambda ls: "".join(line + "\r\n" for line in ls),
    "byte order mark": lambda ls: "\ufeff" + "\n".join(ls) + "\n",
    "no final newline": "\n".join,
    "trailing blank lines": lambda ls: "\n".join(ls) + "\n\n  \n",
    "spaces between tokens": lambda ls: (
        "\n".join(
            json.dumps(json.loads(line), indent=None, separators=(" , ", " : ")) for line in ls
        )
        + "\n"
    ),
    "torn last line": lambda ls: "\n".join(ls) + "\n" + ls[0][:57],
    "torn last line after crlf": lambda ls: "\r\n".join(ls) + "\r\n" + ls[0][:-1],
}


def test_the_first_records_spelling_of_the_category_is_the_one_read(tmp_path: Path) -> None:
    """Azure's documented category is NatGatewayFlowlogsV1; a blob that spells it otherwise
    throughout (natlens takes any "natgatewayflowlog" category) is read exactly too."""
    text = [line.replace("NatGatewayFlowlogsV1", "NatGatewayFlowLogsV1") for line in lines()]
    path = write(tmp_path, "\n".join(text) + "\n")
    got = exact(path)
    assert got is not None
    assert_same(got, by_duckdb(path))
    assert got[0].height == 12


@pytest.mark.parametrize("layout", list(LAYOUT), ids=list(LAYOUT))
def test_layouts_azure_and_editors_write_are_read_exactly(tmp_path: Path, layout: str) -> None:
    path = write(tmp_path, LAYOUT[layout](lines()))
    got = exact(path)
    assert got is not None
    assert_same(got, by_duckdb(path))


def test_a_torn_last_line_is_numbered_and_reported(tmp_path: Path) -> None:
    path = write(tmp_path, "\n".join(lines()) + "\n" + lines()[0][:80])
    got = exact(path)
    assert got is not None
    assert got[0].height == 12
    assert got[1] == [(str(path), 13, "incomplete last line (the blob may still be being written)")]


def test_a_blob_of_blank_lines_costs_memory_by_its_records_not_its_lines(tmp_path: Path) -> None:
    """Room for rows is set by the newlines and by the shortest record that fits: 8 MB of
    newlines after one record must not ask for 8M rows of buffers (1.2 GB)."""
    import tracemalloc

    path = write(tmp_path, lines(1)[0] + "\n" * 8_000_000)
    tracemalloc.start()
    try:
        got = exact(path)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert got is not None
    assert got[0].height == 1
    assert peak < 100e6


# --------------------------------------------------------------------------- or decline


def _text(old: str, new: str) -> Callable[[str], str]:
    def change(line: str) -> str:
        assert old in line
        return line.replace(old, new, 1)

    return change


DECLINED: dict[str, Callable[[str], str]] = {
    "counter 1.5": _text('"PacketsSent":5', '"PacketsSent":1.5'),
    "counter true": _text('"PacketsSent":5', '"PacketsSent":true'),
    "counter as text": _text('"PacketsSent":5', '"PacketsSent":"5"'),
    "counter negative": _text('"PacketsSent":5', '"PacketsSent":-5'),
    "counter exponent": _text('"PacketsSent":5', '"PacketsSent":5e0'),
    "counter 5.0": _text('"PacketsSent":5', '"PacketsSent":5.0'),
    "counter 2**63": _text('"BytesSent":7000', f'"BytesSent":{2**63}'),
    "counter leading zero": _text('"PacketsSent":5', '"PacketsSent":05'),
    "counter object": _text('"PacketsSent":5', '"PacketsSent":{"n":5}'),
    "respelt counter": _text('"PacketsSent"', '"packetsSent"'),
    "respelt ip": _text('"SourceIp"', '"SourceIP"'),
    "natlens's own name": _text('"SourceIp"', '"source_ip"'),
    "portal suffix": _text('"category"', '"time [UTC]":"x","category"'),
    "time twice": _text('"category"', '"TimeGenerated":"2026-11-09T10:04:00Z","category"'),
    "field at the top as well": _text('"category"', '"SourceIp":"10.9.9.9","category"'),
    "time inside properties": _text('"properties":{', '"properties":{"time":"x",'),
    "missing ip": _text('"SourceIp":"10.0.1.5",', ""),
    "missing time": _text('"time":"2026-11-09T10:04:04.0040000Z",', ""),
    "ip as a number": _text('"SourceIp":"10.0.1.5"', '"SourceIp":167837957'),
    "ip null": _text('"SourceIp":"10.0.1.5"', '"SourceIp":null'),
    "time as a number": _text('"time":"2026-11-09T10:04:04.0040000Z"', '"time":1762682644'),
    "another category": _text("NatGatewayFlowlogsV1", "FlowLogFlowEvent"),
    "a metrics record": _text('"category"', '"metricName":"ByteCount","category"'),
    "escape in a string": _text('"SourceIp":"10.0.1.5"', '"SourceIp":"10.0.1.\\u0035"'),
    "escape in a key": _text('"SourceIp"', '"Source\\u0049p"'),
    "escape in an unknown value": _text("NatGatewayFlowLog", "NatGateway\\nFlowLog"),
    "byte outside ascii": _text("NatGatewayFlowLog", "NatGatewayFlöwLog"),
    "duplicate key": _text('"PacketsSent":5', '"PacketsSent":5,"PacketsSent":6'),
    "properties twice": _text('"properties":{', '"properties":{},"properties":{'),
    "properties not an object": lambda line: (
        line[: line.index('"properties"')] + '"properties":[1]}'
    ),
    "deep nesting": _text('"category"', '"deep":' + "[" * 70 + "]" * 70 + ',"category"'),
    "not json": lambda line: line[:40],
    "an array": lambda _: "[1, 2]",
    "trailing garbage": lambda line: line + "x",
    "blank line": lambda line: "\n" + line,
}


@pytest.mark.parametrize("change", list(DECLINED), ids=list(DECLINED))
def test_what_the_exact_reader_does_not_read_exactly_it_declines(
    tmp_path: Path, change: str
) -> None:
    text = lines()
    text[4] = DECLINED[change](text[4])
    path = write(tmp_path, "\n".join(text) + "\n")
    assert exact(path) is None
    # and natlens reads it as before: the exact reader changes nothing
    assert_same(load(path), by_duckdb(path))


@pytest.mark.parametrize("where", [4, 11], ids=["a middle line", "a torn last line"])
def test_a_record_of_another_category_in_a_nat_blob_is_skipped_on_every_path(
    tmp_path: Path, where: int
) -> None:
    """Found by the damage property: a record with NAT fields but another category. The
    careful path skips and reports it (as it does any foreign record); DuckDB's read kept
    it as a flow, and the exact reader, sending a torn last line to the careful path,
    skipped it. All three skip it now."""
    text = lines()
    text[where] = text[where].replace("NatGatewayFlowlogsV1", "FlowLogFlowEvent")
    path = write(tmp_path, "\n".join(text) + ("" if where == 11 else "\n"))
    want: tuple[pl.DataFrame, list[tuple[str, int | None, str]]] = (
        flows(12).filter(pl.int_range(pl.len()) != where),
        [
            (
                str(path),
                None,
                "1 record of VNet flow log (category FlowLogFlowEvent), "
                "not NAT gateway flow logs: skipped",
            )
        ],
    )
    assert_same(load(path), want)
    assert_same(by_duckdb(path), want)
    plan = _files._sniff(path)
    assert plan is not None
    careful, problems = _files._careful(plan)
    assert_same((careful, [(p.file, p.line, p.reason) for p in problems]), want)


def test_a_first_line_the_csv_sniffer_chokes_on_is_named(tmp_path: Path) -> None:
    """Found by the damage property: a stray carriage return on line 1 made the format
    sniffer raise the csv module's own error, a traceback from inside a library."""
    text = lines()
    text[0] = "0\r" + text[0]
    path = write(tmp_path, "\n".join(text) + "\n")
    with pytest.raises(natlens.FlowLogError, match=re.escape(str(path))):
        natlens.read_flowlogs(path)


def test_a_damaged_gzip_blob_is_declined_and_its_intact_lines_kept(tmp_path: Path) -> None:
    data = bytearray(gzip.compress(("\n".join(lines(400)) + "\n").encode(), mtime=0))
    data[len(data) // 2] ^= 0xFF
    gz = tmp_path / (BLOB + ".gz")
    gz.parent.mkdir(parents=True)
    gz.write_bytes(bytes(data))
    assert exact(gz) is None
    got = load(gz)
    assert 0 < got[0].height < 400
    assert got[1]


# --------------------------------------------------------------------------- windows


@pytest.mark.parametrize(("gz", "threads"), [(False, 1), (True, 1), (False, 2), (True, 3)])
def test_a_blob_larger_than_a_window_is_read_in_windows_alike(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, gz: bool, threads: int
) -> None:
    text = lines(60)
    text[0] = "\ufeff" + text[0]  # a byte-order mark, which only the first window has
    text[7] = text[7].replace("2026-11-09T10:07:00.0070000Z", "2026-11-09 10:07:00")  # Python's
    text[40] = text[40].replace('"SourceIp":"10.0.1.41"', '"SourceIp":"nope"')
    text[33] = text[33].replace('"category"', '"note":"' + "x" * 2000 + '","category"')
    path = write(tmp_path, "\n".join(text) + "\n" + text[0][:90], gz=gz)
    want = by_duckdb(path)
    monkeypatch.setattr(_files, "_EXACT_WINDOW", 1500)  # a few lines; line 34 is longer
    monkeypatch.setattr(_files, "_KEPT_WINDOW", 1000)
    windows = spy_windows(monkeypatch)
    got = exact(path, threads)
    assert got is not None
    assert len(windows) >= 15  # three lines or so at a time
    assert max(windows) > 2000  # the long line grew the window
    assert_same(got, want)
    assert [line for _, line, _ in got[1]] == [41, 61]


# --------------------------------------------------------------------------- the rules in C


def scan_line(time: str = "2026-11-09T10:00:00Z", ip: str = "10.0.0.1") -> Any:
    record = envelope(flows(1).row(0, named=True))
    record["time"] = time
    record["properties"]["SourceIp"] = ip
    data = json.dumps(record).encode()
    return _scan.scan(data, KEYS, _files._EXACT_KNOWN, "NatGatewayFlowlogsV1", None, True)


times = st.builds(
    "{:04d}-{:02d}-{:02d}T{:02d}:{:02d}:{:02d}{}{}".format,
    st.integers(1998, 2101),
    st.integers(0, 13),
    st.integers(0, 32),
    st.integers(0, 24),
    st.integers(0, 60),
    st.integers(0, 60),
    st.one_of(st.just(""), st.text("0123456789", min_size=0, max_size=11).map(".{}".format)),
    st.sampled_from(["Z", "", "z", "+00:00", "Z "]),
)


@settings(max_examples=400, suppress_health_check=[HealthCheck.too_slow])
@given(times)
def test_a_time_the_reader_parses_is_the_time_natlens_parses(text: str) -> None:
    got = scan_line(time=text)
    assert got is not None  # a time is text: always read, parsed or left to Python
    odd_times = got[5]
    if odd_times:
        return  # left to natlens's Python rules, which every other test holds to
    (parsed,) = pl.Series("t", [int.from_bytes(got[4], "little", signed=True)], pl.Int64).cast(
        pl.Datetime("us", "UTC")
    )
    checked, reasons = _files._checked_time(pl.Series([text]))
    assert reasons is None or reasons[0] is None
    assert checked[0] == parsed


def _spellings(address: ipaddress.IPv4Address | ipaddress.IPv6Address) -> list[str]:
    text = str(address)
    spelt = [text, address.exploded, text.upper(), canonical_ip(text)]
    if address.version == 6:
        groups = address.exploded.split(":")
        spelt.append(":".join(g.lstrip("0") or "0" for g in groups))  # no "::"
        spelt.append(":".join(groups[:4]) + "::" + ":".join(g.lstrip("0") for g in groups[5:]))
    return spelt


ip_texts = (
    st.text("0123456789.", max_size=17)
    | st.text("0123456789abcdefABCDEF:.", max_size=41)
    | st.builds("{}.{}.{}.{}".format, *[st.integers(0, 300).map(str) | st.just("00")] * 4)
    | st.ip_addresses().flatmap(lambda a: st.sampled_from(_spellings(a)))
    | st.sampled_from(["::", "::1", "1::", "::ffff:a00:1", "::ffff:10.0.0.1", "64:ff9b::e01:203"])
    | st.integers(0, 2**128 - 1).map(lambda n: str(ipaddress.IPv6Address(n)))
    | st.integers(0, 2**32 - 1).map(lambda n: str(ipaddress.IPv6Address((0xFFFF << 32) | n)))
    | st.integers(0, 2**32 - 1).map(lambda n: str(ipaddress.IPv6Address((0x64FF9B << 96) | n)))
)


@settings(max_examples=1500)
@given(ip_texts)
def test_the_reader_calls_an_ip_canonical_exactly_when_natlens_does(text: str) -> None:
    """IPv4 and IPv6: whenever the reader takes an IP's text as it is, canonical_ip agrees;
    and it takes every canonical IPv4 and hexadecimal IPv6 text natlens writes."""
    got = scan_line(ip=text)
    assert got is not None
    taken = not got[6][0]
    try:
        canonical = canonical_ip(text) == text
    except ValueError:
        canonical = False
    mixed = "." in text and ":" in text  # natlens's mixed notation: Python's to check
    assert taken == (canonical and not mixed)


# --------------------------------------------------------------------------- anything else


def _outcome(read: Callable[[Path], Any], path: Path) -> Any:
    """What a read gives: its frame and problems, or the error it raises (type, message)."""
    try:
        return read(path)
    except (ValueError, OSError) as exc:
        return type(exc).__name__, str(exc)


def _damage(data: st.DataObject, root: Path) -> Path:
    """A blob of eight lines with one to three random edits, plain or gzip, maybe torn."""
    text = lines(8)
    for _ in range(data.draw(st.integers(1, 3), label="edits")):
        k = data.draw(st.integers(0, len(text) - 1), label="line")
        at = data.draw(st.integers(0, len(text[k])), label="at")
        cut = data.draw(st.integers(0, 8), label="cut")
        put = data.draw(st.text('{}[]",:0123456789.eE-+ tfnaxu\\\t\r\nü\x00', max_size=6))
        text[k] = text[k][:at] + put + text[k][at + cut :]
    torn = data.draw(st.booleans(), label="torn")
    return write(root, "\n".join(text) + ("" if torn else "\n"), gz=data.draw(st.booleans()))


def _same_outcome(path: Path) -> None:
    got, want = _outcome(load, path), _outcome(by_duckdb, path)
    if isinstance(want[0], str) or isinstance(got[0], str):
        assert got == want
    else:
        assert_same(got, want)


_ANY_DAMAGE: dict[str, Any] = {
    "deadline": None,
    "suppress_health_check": [HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
}


@settings(max_examples=150, **_ANY_DAMAGE)
@given(st.data())
def test_any_damage_is_read_exactly_or_declined(
    tmp_path_factory: pytest.TempPathFactory, data: st.DataObject
) -> None:
    """Random edits of a blob: whatever the exact reader makes of it, natlens ends up with
    what DuckDB's read gives (the frame, each problem, or the same error)."""
    _same_outcome(_damage(data, tmp_path_factory.mktemp("damage")))


@pytest.mark.slow
@settings(max_examples=3000, **_ANY_DAMAGE)
@given(st.data())
def test_any_damage_soak(tmp_path_factory: pytest.TempPathFactory, data: st.DataObject) -> None:
    """The same, at length (opt in with ``-m slow``). Before a change to _scan.c, also run it
    with the reader compiled with ``-fsanitize=address,undefined`` (see _scan.c)."""
    _same_outcome(_damage(data, tmp_path_factory.mktemp("damage")))
