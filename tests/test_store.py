"""The Parquet store: convert once, query many; re-writing a part never duplicates."""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import polars as pl
import pytest
from polars.testing import assert_frame_equal
from test_loaders import GATEWAY, flows

import natlens
from natlens import _store


def day_rows(day: int, count: int, source: str = "10.0.1.4") -> list[tuple[object, ...]]:
    start = dt.datetime(2026, 11, day, 23, 50, tzinfo=dt.UTC)
    return [
        (
            start + dt.timedelta(minutes=i),
            source,
            "20.60.1.2",
            "52.1.1.1",
            1,
            1,
            0,
            0,
            100 + i,
            50,
            GATEWAY,
        )
        for i in range(count)
    ]


def test_round_trip_is_exact_and_partitioned_by_day(tmp_path: Path) -> None:
    frame = flows(day_rows(9, 20))  # 23:50 .. 00:09: two days
    written = natlens.write_parquet(frame, tmp_path)
    assert sorted(p.parent.name for p in written) == ["date=2026-11-09", "date=2026-11-10"]
    lazy = natlens.scan_parquet(tmp_path)
    assert lazy.collect_schema() == natlens.FLOW_SCHEMA
    assert_frame_equal(lazy.collect().sort("time"), frame)


def test_rewriting_a_part_replaces_it_everywhere(tmp_path: Path) -> None:
    natlens.write_parquet(flows(day_rows(9, 20)), tmp_path, part="blob/h=23/PT1H.json")
    natlens.write_parquet(flows(day_rows(9, 5)), tmp_path, part="blob/h=23/PT1H.json")
    stored = natlens.scan_parquet(tmp_path).collect()
    assert stored.height == 5, "the grown blob replaced its earlier rows, no duplicates"
    assert natlens.scan_parquet(tmp_path, start="2026-11-10").collect().height == 0, (
        "its rows left the day they moved out of"
    )
    natlens.write_parquet(flows(day_rows(9, 3, source="10.0.1.9")), tmp_path, part="other")
    assert natlens.scan_parquet(tmp_path).collect().height == 8


def test_time_range_reads_only_the_days_needed(tmp_path: Path) -> None:
    natlens.write_parquet(flows(day_rows(9, 20) + day_rows(12, 5)), tmp_path)
    inside = natlens.scan_parquet(tmp_path, start="2026-11-10", end="2026-11-11").collect()
    assert inside.height == 10
    assert inside.get_column("time").dt.date().unique().to_list() == [dt.date(2026, 11, 10)]


def test_the_store_is_a_loader_source_too(tmp_path: Path) -> None:
    frame = flows(day_rows(9, 20))
    natlens.write_parquet(frame, tmp_path)
    assert_frame_equal(natlens.read_flowlogs(tmp_path).sort("time"), frame)


def test_wrong_input_is_named(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=r"flows: expected natlens\.FLOW_SCHEMA"):
        natlens.write_parquet(pl.DataFrame({"a": [1]}), tmp_path)
    with pytest.raises(FileNotFoundError, match="no Parquet store at"):
        natlens.scan_parquet(tmp_path / "missing")
    assert natlens.scan_parquet(tmp_path).collect().height == 0
    # A record without a time has no day to be filed under: named, not a TypeError.
    untimed = flows(day_rows(9, 3)).with_columns(
        time=pl.when(pl.int_range(pl.len()) == 1).then(None).otherwise(pl.col("time"))
    )
    with pytest.raises(ValueError, match=r"flows: 1 record\(s\) without a time"):
        natlens.write_parquet(untimed, tmp_path)
    assert natlens.scan_parquet(tmp_path).collect().height == 0, "nothing half-written"


# -- a part is replaced whole or not at all ------------------------------------------------

# A writer in its own process. After its ``pause_after``-th day file it touches ``paused``
# and waits for ``resume`` (which a test may never create: it kills the writer instead).
WRITER = """
import sys, time
from pathlib import Path

import polars as pl

import natlens

store, part, rows, pause_after, paused, resume = sys.argv[1:7]
frame = pl.read_parquet(rows)
original = pl.DataFrame.write_parquet
calls = 0


def pausing(self, file, *args, **kwargs):
    global calls
    original(self, file, *args, **kwargs)
    calls += 1
    if calls == int(pause_after):
        Path(paused).touch()
        while not Path(resume).exists():
            time.sleep(0.01)


pl.DataFrame.write_parquet = pausing
natlens.write_parquet(frame, store, part=part)
"""


def month_rows(days: range, source: str, count: int = 40) -> pl.DataFrame:
    """``count`` rows a day over ``days`` of November 2026, from ``source``."""
    rows: list[tuple[object, ...]] = [
        (
            dt.datetime(2026, 11, day, 0, 0, tzinfo=dt.UTC) + dt.timedelta(minutes=17 * i),
            source,
            "20.60.1.2",
            "52.1.1.1",
            day,
            i,
            0,
            0,
            1_000 * day + i,
            50,
            GATEWAY,
        )
        for day in days
        for i in range(count)
    ]
    return flows(rows)


RUNNING: list[subprocess.Popen[str]] = []


@pytest.fixture(autouse=True)
def _no_writer_left_running() -> Iterator[None]:
    yield
    while RUNNING:
        process = RUNNING.pop()
        if process.poll() is None:
            process.kill()
        process.wait(timeout=60)
        if process.stderr:
            process.stderr.close()


class Writer:
    """A writer process of ``frame`` into ``store`` that pauses after ``pause_after`` days."""

    def __init__(
        self, store: Path, frame: pl.DataFrame, *, part: str, pause_after: int, name: str
    ) -> None:
        rows = store.parent / f"{name}-rows.parquet"
        frame.write_parquet(rows)
        self.paused = store.parent / f"{name}.paused"
        self.resume = store.parent / f"{name}.resume"
        self.process = subprocess.Popen(
            [
                sys.executable,
                "-c",
                WRITER,
                str(store),
                part,
                str(rows),
                str(pause_after),
                str(self.paused),
                str(self.resume),
            ],
            stderr=subprocess.PIPE,
            text=True,
        )
        RUNNING.append(self.process)

    def wait_until_paused(self) -> None:
        deadline = time.monotonic() + 120
        while not self.paused.exists():
            code = self.process.poll()
            assert code is None, f"the writer ended ({code}) before pausing: {self.stderr()}"
            assert time.monotonic() < deadline, "the writer never paused"
            time.sleep(0.01)

    def stderr(self) -> str:
        return self.process.stderr.read() if self.process.stderr else ""

    def finish(self) -> None:
        self.resume.touch()
        assert self.process.wait(timeout=120) == 0, self.stderr()

    def kill(self) -> None:
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(timeout=60)
        if self.process.stderr:
            self.process.stderr.close()


def past_grace(monkeypatch: pytest.MonkeyPatch) -> None:
    """From now on, every retired version is past its grace: the next write deletes it."""
    monkeypatch.setattr(_store, "_GRACE_SECONDS", 0)


def stored(store: Path) -> pl.DataFrame:
    return natlens.scan_parquet(store).collect().sort("time", "source_ip")


def store_files(store: Path) -> list[str]:
    """Every file under ``store`` but the lock, as relative POSIX paths."""
    return sorted(
        p.relative_to(store).as_posix()
        for p in store.rglob("*")
        if p.is_file() and not p.name.endswith(".lock")
    )


OLD = month_rows(range(1, 31), "10.0.1.4")  # a 30-day part
NEW = month_rows(range(3, 25), "10.0.1.5", count=25)  # its new version: fewer days, other rows


@pytest.mark.skipif(not hasattr(signal, "SIGKILL"), reason="kill -9 is POSIX")
@pytest.mark.parametrize("pause_after", [1, 12, NEW.get_column("time").dt.date().n_unique()])
def test_a_writer_killed_mid_replace_leaves_the_old_part_whole(
    tmp_path: Path, pause_after: int
) -> None:
    store = tmp_path / "store"
    natlens.write_parquet(OLD, store, part="blob-a")
    natlens.write_parquet(month_rows(range(5, 6), "10.0.9.9"), store, part="blob-b")
    before = stored(store)
    committed = store_files(store)

    writer = Writer(store, NEW, part="blob-a", pause_after=pause_after, name="new")
    writer.wait_until_paused()
    assert_frame_equal(stored(store), before), "a reader during the write sees the old part"
    writer.kill()

    assert_frame_equal(stored(store), before), "killed before committing: the old part, whole"
    assert_frame_equal(
        natlens.scan_parquet(store, start="2026-11-01", end="2026-11-04")
        .collect()
        .sort("time", "source_ip"),
        before.filter(pl.col("time") < dt.datetime(2026, 11, 4, tzinfo=dt.UTC)),
    )
    natlens.write_parquet(month_rows(range(5, 6), "10.0.9.8"), store, part="blob-c")
    files = store_files(store)
    assert not [f for f in files if f not in committed and "blob-c" not in f], (
        "the next write deleted what the killed writer left"
    )
    assert stored(store).height == before.height + 40


@pytest.mark.skipif(not hasattr(signal, "SIGKILL"), reason="kill -9 is POSIX")
def test_a_writer_killed_after_committing_leaves_the_new_part_whole(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = tmp_path / "store"
    natlens.write_parquet(OLD, store, part="blob-a")
    code = WRITER.replace(
        "natlens.write_parquet(frame, store, part=part)",
        "import natlens._store as s\n"
        "def stop(*args, **kwargs):\n"
        "    Path(paused).touch()\n"
        "    time.sleep(3600)\n"
        "s._delete_superseded = stop\n"
        "natlens.write_parquet(frame, store, part=part)",
    )
    assert code != WRITER
    rows = tmp_path / "rows.parquet"
    NEW.write_parquet(rows)
    paused = tmp_path / "paused"
    process = subprocess.Popen(
        [sys.executable, "-c", code, str(store), "blob-a", str(rows), "0", str(paused), "-"],
        text=True,
    )
    RUNNING.append(process)
    deadline = time.monotonic() + 120
    while not paused.exists():
        assert process.poll() is None, "the writer ended without committing"
        assert time.monotonic() < deadline, "the writer never committed"
        time.sleep(0.01)
    process.send_signal(signal.SIGKILL)
    process.wait(timeout=60)

    assert_frame_equal(stored(store), NEW.sort("time", "source_ip"))
    past_grace(monkeypatch)
    natlens.write_parquet(month_rows(range(5, 6), "10.0.9.8"), store, part="blob-c")
    days = NEW.get_column("time").dt.date().n_unique()
    assert len([f for f in store_files(store) if f.endswith(".parquet")]) == days + 1, (
        "the replaced version's files are gone after the next write past its grace"
    )


def test_concurrent_writers_of_one_part_leave_one_writers_rows(tmp_path: Path) -> None:
    store = tmp_path / "store"
    natlens.write_parquet(OLD, store, part="blob-a")
    first = month_rows(range(2, 20), "10.0.1.6", count=30)
    second = month_rows(range(10, 28), "10.0.1.7", count=20)
    a = Writer(store, first, part="blob-a", pause_after=5, name="a")
    a.wait_until_paused()
    b = Writer(store, second, part="blob-a", pause_after=0, name="b")
    # Give b the chance to write while a is half way: a serialised b waits for a instead.
    with contextlib.suppress(subprocess.TimeoutExpired):
        b.process.wait(timeout=3)
    a.finish()
    b.finish()
    result = stored(store)
    assert result.equals(first.sort("time", "source_ip")) or result.equals(
        second.sort("time", "source_ip")
    ), f"a mix of two writers: {result.group_by('source_ip').len().rows()}"
    assert not [f for f in store_files(store) if f.endswith(".tmp")]


def test_stale_days_never_linger(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    natlens.write_parquet(OLD, tmp_path, part="blob-a")
    natlens.write_parquet(NEW, tmp_path, part="blob-a")
    assert_frame_equal(stored(tmp_path), NEW.sort("time", "source_ip"))
    past_grace(monkeypatch)
    natlens.write_parquet(NEW.clear(), tmp_path, part="blob-b")  # any write deletes OLD
    days = sorted(p.name for p in tmp_path.glob("date=*") if any(p.iterdir()))
    assert days == [f"date=2026-11-{d:02d}" for d in range(3, 25)]
    natlens.write_parquet(NEW.clear(), tmp_path, part="blob-a")
    assert stored(tmp_path).height == 0, "an empty new version empties the part"
    natlens.write_parquet(NEW.clear(), tmp_path, part="blob-b")
    assert not [f for f in store_files(tmp_path) if f.endswith(".parquet")]
    assert not list(tmp_path.glob("date=*")), "and their day folders"


def test_threads_writing_parts_at_once_lose_none(tmp_path: Path) -> None:
    # natlens sync writes one part per blob from a thread pool.
    frames = {
        f"blob-{i}": month_rows(range(i + 1, i + 4), f"10.0.2.{i}", count=5) for i in range(8)
    }
    with ThreadPoolExecutor(max_workers=8) as pool:
        list(
            pool.map(
                lambda item: natlens.write_parquet(item[1], tmp_path, part=item[0]), frames.items()
            )
        )
    assert_frame_equal(stored(tmp_path), pl.concat(frames.values()).sort("time", "source_ip"))


def write_before_the_manifest(store: Path, frame: pl.DataFrame, part: str) -> None:
    """The layout natlens wrote before the manifest: date=<day>/<part>.parquet."""
    for (day,), chunk in frame.group_by(pl.col("time").dt.date()):
        folder = store / f"date={day}"
        folder.mkdir(parents=True, exist_ok=True)
        chunk.sort("time").write_parquet(folder / f"{part}.parquet")


def test_a_store_from_before_the_manifest_is_read_and_adopted(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    write_before_the_manifest(tmp_path, OLD, "blob-a")
    write_before_the_manifest(tmp_path, month_rows(range(5, 6), "10.0.9.9"), "blob-b")
    assert stored(tmp_path).height == OLD.height + 40
    natlens.write_parquet(NEW, tmp_path, part="blob-a")
    expected = pl.concat([NEW, month_rows(range(5, 6), "10.0.9.9")]).sort("time", "source_ip")
    assert_frame_equal(stored(tmp_path), expected)
    past_grace(monkeypatch)
    natlens.write_parquet(NEW.clear(), tmp_path, part="blob-c")
    assert_frame_equal(stored(tmp_path), expected)
    assert not list(tmp_path.glob("date=*/blob-a.parquet")), "the old layout's files are gone"


def test_a_damaged_manifest_is_named(tmp_path: Path) -> None:
    natlens.write_parquet(OLD, tmp_path, part="blob-a")
    manifest = tmp_path / ".natlens-store.json"
    manifest.write_text('{"format": "natlens-parquet-store", "version": 1, "parts": {"a": 3}}')
    with pytest.raises(ValueError, match=r"\.natlens-store\.json: not a natlens Parquet store"):
        natlens.scan_parquet(tmp_path)
    with pytest.raises(ValueError, match=r"\.natlens-store\.json: not a natlens Parquet store"):
        natlens.write_parquet(NEW, tmp_path, part="blob-a")


def test_a_write_that_fails_half_way_leaves_the_old_part_and_no_files(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    natlens.write_parquet(OLD, tmp_path, part="blob-a")
    before, files = stored(tmp_path), store_files(tmp_path)
    original = pl.DataFrame.write_parquet
    calls = []

    def failing(self: pl.DataFrame, *args: Any, **kwargs: Any) -> None:
        calls.append(1)
        if len(calls) == 5:
            raise OSError(28, "No space left on device")
        original(self, *args, **kwargs)

    monkeypatch.setattr(pl.DataFrame, "write_parquet", failing)
    with pytest.raises(OSError, match="No space left"):
        natlens.write_parquet(NEW, tmp_path, part="blob-a")
    assert_frame_equal(stored(tmp_path), before)
    assert store_files(tmp_path) == files, "the failed generation's files are gone at once"


def test_orphans_of_the_layout_before_the_manifest_are_cleaned(tmp_path: Path) -> None:
    # What a killed writer of earlier natlens versions left: a hidden temporary file.
    write_before_the_manifest(tmp_path, OLD, "blob-a")
    orphan = tmp_path / "date=2026-11-02" / f".blob-a.{'0' * 32}.tmp"
    orphan.write_bytes(b"PAR1")
    natlens.write_parquet(NEW, tmp_path, part="blob-b")
    assert not orphan.exists()
    assert stored(tmp_path).height == OLD.height + NEW.height


def test_a_replaced_version_is_kept_for_the_readers_built_on_it_then_deleted(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A LazyFrame scanned before a write (a notebook cell, the report's charts, natlens
    sync writing meanwhile) still collects what it was built on, for the grace period."""
    natlens.write_parquet(OLD, tmp_path, part="blob-a")
    before = natlens.scan_parquet(tmp_path)
    natlens.write_parquet(NEW, tmp_path, part="blob-a")
    assert_frame_equal(stored(tmp_path), NEW.sort("time", "source_ip"))
    assert_frame_equal(before.collect().sort("time", "source_ip"), OLD.sort("time", "source_ip"))
    natlens.write_parquet(month_rows(range(5, 6), "10.0.9.9"), tmp_path, part="blob-b")
    assert before.collect().height == OLD.height, "another write within the grace keeps it"
    manifest = json.loads((tmp_path / ".natlens-store.json").read_text())
    assert [entry[:2] for entry in manifest["retired"]] == [["blob-a", manifest["retired"][0][1]]]
    past_grace(monkeypatch)
    natlens.write_parquet(month_rows(range(6, 7), "10.0.9.8"), tmp_path, part="blob-c")
    with pytest.raises(FileNotFoundError):
        before.collect()
    manifest = json.loads((tmp_path / ".natlens-store.json").read_text())
    assert manifest["retired"] == []
    on_disk = {f for f in store_files(tmp_path) if f.endswith(".parquet")}
    days = NEW.get_column("time").dt.date().n_unique()
    assert len(on_disk) == days + 2, "the new version and the two other parts, nothing else"
