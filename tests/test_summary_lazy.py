"""summarize from a Parquet store works lazily and says exactly what it says in memory.

A month of a busy gateway does not fit in memory comfortably, so ``summarize`` keeps a
Parquet scan lazy and lets each section aggregate what it needs; JSON is still read once.
These tests hold the lazy route to the eager one, field by field and section by section,
on the shipped sample week written to a store the way natlens writes one.
"""

from __future__ import annotations

import dataclasses
import re
import warnings
from pathlib import Path
from typing import Any

import polars as pl
import pytest
from flowlog_formats import write_pt1h
from polars.testing import assert_frame_equal

import natlens
import natlens._store as store_module
import natlens._summary as summary_module
from natlens._cli import main as cli_main
from natlens._report import render_report
from natlens._summary import Note, Section, Table, sections
from natlens._usage import rescannable


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory, sample_flows: pl.DataFrame) -> Path:
    """The sample week in a natlens Parquet store, in parts as sync writes (one a gateway)."""
    root = tmp_path_factory.mktemp("lazy") / "store"
    for (gateway,), flows in sample_flows.partition_by("resource_id", as_dict=True).items():
        natlens.write_parquet(flows, root, part=str(gateway).rsplit("/", 1)[-1])
    return root


@pytest.fixture(scope="module")
def side(samples: natlens.SampleData) -> dict[str, Any]:
    """Every side input, so that every section of the summary has rows."""
    return {
        "metrics": natlens.read_metrics(samples.metrics),
        "inventory": samples.inventory,
        "service_tags": samples.service_tags,
        "resolver": natlens.read_hostnames(samples.hostnames),
        "allowlist": samples.allowlist,
        "n": 5,
    }


@pytest.fixture(scope="module")
def eager(sample_flows: pl.DataFrame, side: dict[str, Any]) -> natlens.FlowSummary:
    return natlens.summarize(sample_flows, **side)


@pytest.fixture(scope="module")
def lazy(store: Path, side: dict[str, Any]) -> natlens.FlowSummary:
    return natlens.summarize(natlens.scan_parquet(store), **side)


def _assert_frames_equal(mine: pl.DataFrame, other: pl.DataFrame, what: str) -> None:
    """Exactly equal: values, dtypes, column and row order."""
    try:
        assert_frame_equal(mine, other, check_exact=True)
    except AssertionError as exc:
        raise AssertionError(f"{what}: {exc}") from None


def _assert_same_summary(ours: natlens.FlowSummary, theirs: natlens.FlowSummary) -> None:
    """Every field equal (frames exactly, dtypes and row order included), but the flows."""
    for item in dataclasses.fields(natlens.FlowSummary):
        if item.name in ("flows", "origin"):
            continue
        mine, other = getattr(ours, item.name), getattr(theirs, item.name)
        if isinstance(other, pl.DataFrame):
            assert isinstance(mine, pl.DataFrame), item.name
            _assert_frames_equal(mine, other, item.name)
        else:
            assert mine == other, item.name


def _assert_same_sections(ours: tuple[Section, ...], theirs: tuple[Section, ...]) -> None:
    assert [s.key for s in ours] == [s.key for s in theirs]
    for mine, other in zip(ours, theirs, strict=True):
        assert mine.heading == other.heading
        assert len(mine.parts) == len(other.parts), mine.key
        for part, expected in zip(mine.parts, other.parts, strict=True):
            if isinstance(expected, Table):
                assert isinstance(part, Table), mine.key
                assert part.caption == expected.caption
                _assert_frames_equal(part.frame, expected.frame, part.caption)
            else:
                assert isinstance(part, Note)
                assert part == expected


def test_a_store_scan_says_what_the_records_in_memory_say(
    lazy: natlens.FlowSummary, eager: natlens.FlowSummary
) -> None:
    # every section has something to compare: the planted events are all found
    for found in (eager.spikes, eager.spike_detail, eager.violations, eager.new_destinations):
        assert found is not None
        assert not found.is_empty()
    assert not eager.drops.is_empty()
    assert not eager.beacons.is_empty()
    assert eager.health is not None
    _assert_same_summary(lazy, eager)
    _assert_same_sections(sections(lazy), sections(eager))
    assert natlens.triage(lazy) == natlens.triage(eager)


def test_the_store_is_queried_not_loaded(lazy: natlens.FlowSummary, store: Path) -> None:
    assert isinstance(lazy.flows, pl.LazyFrame)
    assert lazy.flows.collect_schema() == natlens.FLOW_SCHEMA
    plan = lazy.flows.explain()
    assert "Parquet SCAN" in plan
    assert str(store) in plan


def test_the_report_draws_its_charts_from_the_lazy_flows(
    lazy: natlens.FlowSummary, eager: natlens.FlowSummary
) -> None:
    def body(page: str) -> str:
        # The footer holds the time it was written; vl-convert numbers the colour
        # gradients of a process's SVGs in turn (a second render of one summary differs).
        return re.sub(r"gradient_\d+", "gradient", page.split("<footer>", 1)[0])

    assert body(render_report(lazy)) == body(render_report(eager))


def test_a_store_or_sync_cache_folder_takes_the_lazy_route(
    store: Path, sample_flows: pl.DataFrame, tmp_path: Path
) -> None:
    day = sample_flows.filter(pl.col("time").dt.day() == 12)
    cache = tmp_path / "cache"
    natlens.write_parquet(day, cache / "parquet", part="day")
    write_pt1h(day, cache / "blobs" / "PT1H.json")  # the mirror: read from the store only
    (cache / "manifest.jsonl").write_text('{"name": "PT1H.json"}\n')
    for folder, flows in ((store, sample_flows), (cache, day)):
        summary = natlens.summarize(folder, n=3)
        assert isinstance(summary.flows, pl.LazyFrame), folder
        assert summary.origin == str(folder)
        assert summary.problems == ()
        _assert_same_summary(summary, natlens.summarize(flows, n=3))


def test_json_is_read_once_whether_given_as_files_or_as_a_lazy_scan(
    sample_flows: pl.DataFrame, tmp_path: Path
) -> None:
    blob = write_pt1h(sample_flows.head(2_000), tmp_path / "logs" / "PT1H.json")
    with blob.open("a") as out:
        out.write('{"time": "2026-11-12T10:00:00Z", "properties": {"SourceIp": "10.0.0.')
    from_files = natlens.summarize(tmp_path / "logs", n=3)
    assert isinstance(from_files.flows, pl.DataFrame)
    assert [p.line for p in from_files.problems] == [2_001]
    # A lazy JSON scan queried once per section would decode the file (and warn) each time.
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        from_scan = natlens.summarize(natlens.scan_flowlogs(tmp_path / "logs"), n=3)
    assert [type(w.message) for w in caught] == [natlens.FlowLogWarning]
    assert isinstance(from_scan.flows, pl.DataFrame)
    _assert_same_summary(from_scan, dataclasses.replace(from_files, problems=()))


@pytest.mark.parametrize(
    ("scan", "lazy"),
    [
        ("frame", True),
        ("parquet", True),
        ("ipc", True),
        ("parquet+frame", True),
        ("ndjson", False),
        ("csv", False),
        ("natlens-json", False),
        ("parquet+csv", False),
    ],
)
def test_only_parquet_and_ipc_scans_are_queried_again(
    scan: str, lazy: bool, sample_flows: pl.DataFrame, tmp_path: Path
) -> None:
    flows = sample_flows.head(100)
    flows.write_parquet(tmp_path / "f.parquet")
    flows.write_ipc(tmp_path / "f.ipc")
    flows.write_ndjson(tmp_path / "f.ndjson")
    flows.write_csv(tmp_path / "f.csv")
    write_pt1h(flows, tmp_path / "tree" / "PT1H.json")
    scans = {
        "frame": flows.lazy(),
        "parquet": pl.scan_parquet(tmp_path / "f.parquet"),
        "ipc": pl.scan_ipc(tmp_path / "f.ipc"),
        "ndjson": pl.scan_ndjson(tmp_path / "f.ndjson"),
        "csv": pl.scan_csv(tmp_path / "f.csv"),
        "natlens-json": natlens.scan_flowlogs(tmp_path / "tree"),
    }
    plan = pl.concat([scans[part] for part in scan.split("+")], how="vertical_relaxed")
    assert rescannable(plan) is lazy


def test_natlens_triage_on_a_store_takes_the_lazy_route(
    store: Path,
    sample_flows: pl.DataFrame,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    read = summary_module._read
    routes: list[type] = []

    def spy(flows: Any) -> Any:
        frame, origin, problems = read(flows)
        routes.append(type(frame))
        return frame, origin, problems

    monkeypatch.setattr(summary_module, "_read", spy)
    assert cli_main(["triage", str(store)]) == 0
    assert routes == [pl.LazyFrame]
    in_memory = natlens.summarize(sample_flows, n=5)
    expected = natlens.triage(dataclasses.replace(in_memory, origin=str(store)))
    assert capsys.readouterr().out == expected + "\n"


def _replacing(
    monkeypatch: pytest.MonkeyPatch, store: Path, flows: pl.DataFrame, times: int
) -> list[int]:
    """Make the beacon section (late in a summary) rewrite part ``day`` first, ``times`` times,
    as ``natlens sync`` does for the current hour's blob, which keeps growing.

    A store keeps a replaced version for its readers for a grace period; here it is over
    at once, and each rewrite is two writes, so that the files the summary started on are
    gone (what a summary slower than the grace period meets).
    """
    monkeypatch.setattr(store_module, "_GRACE_SECONDS", 0)
    find_beacons = natlens.find_beacons
    writes: list[int] = []

    def replacing(lazy: pl.LazyFrame) -> pl.DataFrame:
        if len(writes) < times:
            natlens.write_parquet(flows, store, part="day")
            natlens.write_parquet(flows.clear(), store, part="another")  # deletes the old
            writes.append(1)
        return find_beacons(lazy)

    monkeypatch.setattr(summary_module, "find_beacons", replacing)
    return writes


def test_a_store_rewritten_while_summarized_is_read_again_from_its_folder(
    sample_flows: pl.DataFrame, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    day = sample_flows.filter(pl.col("time").dt.day() == 12)
    store = tmp_path / "store"
    natlens.write_parquet(day, store, part="day")
    writes = _replacing(monkeypatch, store, day, times=1)
    summary = natlens.summarize(store, n=3)
    assert writes == [1]
    _assert_same_summary(summary, natlens.summarize(day, n=3))


def test_a_store_rewritten_under_a_lazy_scan_within_the_grace_period_is_read_whole(
    sample_flows: pl.DataFrame, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The usual case: the replaced files are still there, so the summary reads the
    version it started on throughout (it was the error below before the grace period)."""
    day = sample_flows.filter(pl.col("time").dt.day() == 12)
    store = tmp_path / "store"
    natlens.write_parquet(day, store, part="day")
    shifted = day.with_columns(pl.col("bytes_sent") + 1)
    find_beacons = natlens.find_beacons

    def replacing(lazy: pl.LazyFrame) -> pl.DataFrame:
        natlens.write_parquet(shifted, store, part="day")
        return find_beacons(lazy)

    monkeypatch.setattr(summary_module, "find_beacons", replacing)
    summary = natlens.summarize(natlens.scan_parquet(store), n=3)
    monkeypatch.setattr(summary_module, "find_beacons", find_beacons)
    _assert_same_summary(summary, natlens.summarize(day, n=3))


def test_a_store_rewritten_under_a_lazy_scan_is_a_clear_error(
    sample_flows: pl.DataFrame, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    day = sample_flows.filter(pl.col("time").dt.day() == 12)
    store = tmp_path / "store"
    natlens.write_parquet(day, store, part="day")
    _replacing(monkeypatch, store, day, times=1)
    with pytest.raises(FileNotFoundError, match=r"^flows: .*day.* left its Parquet store .* "):
        natlens.summarize(natlens.scan_parquet(store), n=3)
    _replacing(monkeypatch, store, day, times=10)
    with pytest.raises(FileNotFoundError, match="3 times in a row"):
        natlens.summarize(store, n=3)
