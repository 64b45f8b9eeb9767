"""A local Parquet store of flow logs: convert once, query many times.

Layout::

    <directory>/
        .natlens-store.json                         the committed parts (the manifest)
        .natlens-store.lock                         writers take turns on it
        date=YYYY-MM-DD/<part>+<generation>.parquet one file per part and UTC day

Rows are sorted by time inside each file so row-group statistics let a time filter skip
most of a file, and a scan opens only the day folders in its range. A *part* is named by
the caller (a blob's name, say): writing a part again replaces it whole, in every day it
touches, so re-importing a grown blob never duplicates a record.

A part is replaced whole or not at all. The new version is written under a new
*generation* id, every day's file of it, and committed by one atomic rename of the
manifest (``os.replace``, atomic on POSIX and Windows); only then is the version it
replaced *retired*: the manifest keeps it for 15 minutes, and a later write deletes it.
:func:`scan_parquet` reads only the files of the parts the manifest names, so a reader
sees a part's old rows or its new ones, never a mix, whenever a writer is killed. Writers
take a cross-platform file lock (``filelock``) in turn, so two writers of one part leave
exactly one writer's rows. A write that fails deletes its files at once; the next write
deletes what a killed writer left (a generation never committed, temporary files). Files
and the manifest are flushed to disk (``fsync``) before the commit, so a power cut cannot
commit a file that is not there.

Read a store with :func:`scan_parquet` (:func:`is_store` recognises one): globbing its
files can pick up a version that is not, or no longer, committed.

A LazyFrame from :func:`scan_parquet` names the files of the state it was built in. If a
later write replaces a part it covers, collecting it still reads the version it was built
on (a notebook cell, a report drawing its charts, ``natlens sync`` writing meanwhile), as
long as that write is less than 15 minutes old; after that the old files may be gone, and
collecting raises ``FileNotFoundError`` (scan again) rather than mix two versions.

A store written by natlens before the manifest (``date=*/<part>.parquet``, no manifest) is
read as it is, and its next write adopts its files into a manifest.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import hashlib
import json
import os
import re
import time
import uuid
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from typing import NamedTuple

import polars as pl
from filelock import FileLock

from natlens._schema import FLOW_SCHEMA
from natlens._time import time_filter, time_range
from natlens._typing import FrameLike, TimeLike

__all__ = ["is_store", "scan_parquet", "write_parquet"]

MANIFEST = ".natlens-store.json"
_LOCK = ".natlens-store.lock"
# Present while a writer works; found by the next writer, it means one was killed.
_WRITING = ".natlens-store.writing"
_FORMAT = "natlens-parquet-store"
_VERSION = 1

_PART = re.compile(r"^[A-Za-z0-9._-]{1,120}$")
_DAY = re.compile(r"^\d{4}-\d{2}-\d{2}$")
_DAY_FOLDER = re.compile(r"^date=(\d{4}-\d{2}-\d{2})$")
# Files this module writes: generation files and temporary files (never anything else).
_GENERATION_FILE = re.compile(
    r"^(?P<part>[A-Za-z0-9._-]{1,120})\+(?P<generation>[0-9a-f]{32})\.parquet$"
)
_TEMPORARY = re.compile(r"^\..*\.[0-9a-f]{32}\.tmp$")
# Windows refuses to replace or delete a file another process has open: retry briefly.
_RETRIES = 50


# A replaced version stays on disk this long after the write that replaced it, so that a
# LazyFrame scanned before that write still collects what it was built on.
_GRACE_SECONDS = 15 * 60


class _Retired(NamedTuple):
    """A replaced version of a part, kept for :data:`_GRACE_SECONDS` after ``at``.

    Stored in the manifest as ``[name, generation, [day, ...], at]`` (``at``: seconds since
    the epoch, of the write that replaced it).
    """

    name: str
    generation: str
    days: list[str]
    at: float

    def files(self, root: Path) -> Iterator[Path]:
        return _files(root, self.name, _Part(self.generation, self.days))


class _Part(NamedTuple):
    """One committed part: its generation ("" for a file from before the manifest) and days.

    Stored in the manifest as it is, a JSON array ``[generation, [day, ...]]``.
    """

    generation: str
    days: list[str]

    def files(self, root: Path, name: str) -> Iterator[Path]:
        for day in self.days:
            yield _data_file(root, name, self.generation, day)


def _part_name(part: str | None) -> str:
    if part is None:
        return uuid.uuid4().hex
    if _PART.match(part):
        return part
    # Blob names and paths: a stable, file-system-safe name derived from the text.
    return hashlib.sha256(part.encode()).hexdigest()[:32]


def _data_file(root: Path, name: str, generation: str, day: str) -> Path:
    file = f"{name}+{generation}.parquet" if generation else f"{name}.parquet"
    return root / f"date={day}" / file


def _files(root: Path, name: str, part: _Part) -> Iterator[Path]:
    for day in part.days:
        yield _data_file(root, name, part.generation, day)


def is_store(directory: str | os.PathLike[str]) -> bool:
    """Whether ``directory`` is a natlens Parquet store with a manifest.

    A loader walking a folder should read such a directory with :func:`scan_parquet`:
    its files also hold versions that are not (or no longer) committed.

    Examples
    --------
    >>> import tempfile
    >>> store = tempfile.mkdtemp()
    >>> is_store(store)
    False
    >>> _ = write_parquet(pl.DataFrame(schema=FLOW_SCHEMA), store)
    >>> is_store(store)
    True
    """
    return (Path(directory) / MANIFEST).is_file()


# Parsed manifests by file identity, so scanning a large store again (a notebook cell run
# twice) does not parse its manifest again. A commit replaces the file: a new identity.
_PARSED: dict[Path, tuple[tuple[int, int, int], dict[str, _Part], list[_Retired]]] = {}
_PARSED_STORES = 16


def _read_manifest(root: Path) -> dict[str, _Part] | None:
    """The committed parts (a fresh dict), or None when the store has no manifest."""
    state = _read_state(root)
    return None if state is None else state[0]


def _read_state(root: Path) -> tuple[dict[str, _Part], list[_Retired]] | None:
    """The committed parts and the retired versions (fresh), or None without a manifest."""
    path = root / MANIFEST
    for attempt in range(_RETRIES):
        try:
            with path.open("rb") as handle:
                stat = os.fstat(handle.fileno())
                identity = (stat.st_ino, stat.st_mtime_ns, stat.st_size)
                cached = _PARSED.get(path)
                if cached is not None and cached[0] == identity:
                    return dict(cached[1]), list(cached[2])
                text = handle.read()
            break
        except FileNotFoundError:
            return None
        except PermissionError:  # Windows, while a writer replaces it
            if attempt == _RETRIES - 1:
                raise
            time.sleep(0.02)
    try:
        data = json.loads(text)
        if data.get("format") != _FORMAT or data.get("version") != _VERSION:
            raise ValueError(f"format {data.get('format')!r} version {data.get('version')!r}")
        parts = {name: _Part(*entry) for name, entry in data["parts"].items()}
        for name, (generation, days) in parts.items():
            if not (isinstance(generation, str) and isinstance(days, list)):
                raise ValueError(f"part {name!r}: {[generation, days]!r}")
            for day in days:
                if not (isinstance(day, str) and _DAY.match(day)):
                    raise ValueError(f"part {name!r}: day {day!r}")
        retired = [_Retired(*entry) for entry in data.get("retired", [])]
        for entry in retired:
            days_ok = isinstance(entry.days, list) and all(
                isinstance(day, str) and _DAY.match(day) for day in entry.days
            )
            if not (
                isinstance(entry.name, str)
                and isinstance(entry.generation, str)
                and isinstance(entry.at, int | float)
                and days_ok
            ):
                raise ValueError(f"retired version {list(entry)!r}")
    except (ValueError, TypeError, KeyError, AttributeError) as exc:
        raise ValueError(f"{path}: not a natlens Parquet store manifest ({exc})") from None
    if len(_PARSED) >= _PARSED_STORES:
        del _PARSED[next(iter(_PARSED))]
    _PARSED[path] = (identity, parts, retired)
    return dict(parts), list(retired)


def _legacy_parts(root: Path) -> dict[str, _Part]:
    """Parts of a store written before the manifest: ``date=*/<part>.parquet``."""
    days: dict[str, list[str]] = {}
    for folder in sorted(root.glob("date=*")):
        match = _DAY_FOLDER.match(folder.name)
        if match is None or not folder.is_dir():
            continue
        for file in sorted(folder.glob("*.parquet")):
            if _PART.match(file.stem) and "+" not in file.name:
                days.setdefault(file.stem, []).append(match.group(1))
    return {name: _Part("", found) for name, found in days.items()}


def _committed(root: Path) -> dict[str, _Part]:
    parts = _read_manifest(root)
    return _legacy_parts(root) if parts is None else parts


def _fsync(path: Path) -> None:
    """Flush ``path`` (a file, or a directory on POSIX) to disk."""
    if path.is_dir() and os.name != "posix":
        return  # Windows cannot open a directory; its renames are journaled by NTFS
    descriptor = os.open(path, os.O_RDONLY if path.is_dir() else os.O_RDWR)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)


def _replace(source: Path, target: Path) -> None:
    """``os.replace``, retried while Windows reports the target open by a reader."""
    for attempt in range(_RETRIES):
        try:
            os.replace(source, target)
            return
        except PermissionError:
            if attempt == _RETRIES - 1:
                raise
            time.sleep(0.02)


def _write_manifest(
    root: Path, parts: Mapping[str, _Part], retired: Iterable[_Retired] = ()
) -> None:
    """Commit ``parts`` (and the versions kept for readers): write the manifest under a
    temporary name, then rename it in place."""
    data = {"format": _FORMAT, "version": _VERSION, "parts": parts, "retired": list(retired)}
    temporary = root / f"{MANIFEST}.{uuid.uuid4().hex}.tmp"
    text = json.dumps(data, separators=(",", ":"))  # the C encoder: json.dump is not
    with temporary.open("w", encoding="utf-8") as handle:
        handle.write(text)
        handle.flush()
        os.fsync(handle.fileno())
    _replace(temporary, root / MANIFEST)


def _unlink(path: Path) -> bool:
    """Delete ``path``; False when it cannot be deleted now (open by a reader on Windows)."""
    try:
        path.unlink(missing_ok=True)
    except PermissionError:
        return False
    return True


def _delete_superseded(root: Path, files: Iterable[Path]) -> bool:
    """Delete a replaced version's files and the day folders it leaves empty."""
    done = True
    for file in files:
        done = _unlink(file) and done
        with contextlib.suppress(OSError):
            file.parent.rmdir()  # only succeeds when the folder is empty
    return done


def _sweep(root: Path, parts: Mapping[str, _Part], retired: Iterable[_Retired] = ()) -> bool:
    """Delete what killed writers left: uncommitted or replaced generations, temporary files.

    The committed parts and the retired versions still kept for readers stay. Returns
    False when a file could not be deleted now.
    """
    keep = {file for name, entry in parts.items() for file in _files(root, name, entry)}
    keep.update(file for version in retired for file in version.files(root))
    done = True
    for file in root.glob(f"{MANIFEST}.*.tmp"):
        done = _unlink(file) and done
    for folder in root.glob("date=*"):
        if not (_DAY_FOLDER.match(folder.name) and folder.is_dir()):
            continue
        for file in folder.iterdir():
            ours = _GENERATION_FILE.match(file.name) or _TEMPORARY.match(file.name)
            if ours and file not in keep:
                done = _unlink(file) and done
        with contextlib.suppress(OSError):
            folder.rmdir()
    return done


def write_parquet(
    flows: FrameLike,
    directory: str | os.PathLike[str],
    *,
    part: str | None = None,
) -> list[Path]:
    """Write flows into the Parquet store at ``directory``, partitioned by UTC day.

    The write is all or nothing: a reader, or a writer killed half way, never leaves a part
    with some days old and some new. Writers to one store take turns (a file lock).

    Parameters
    ----------
    flows
        Frame in :data:`natlens.FLOW_SCHEMA`, eager or lazy.
    directory
        The store; created if missing.
    part
        A name for this piece of data (e.g. the blob it came from). Writing the same
        ``part`` again replaces all its rows, in every day; without one, rows are appended.

    Returns
    -------
    list of Path
        The files written.

    Raises
    ------
    ValueError
        ``flows`` is not in ``FLOW_SCHEMA``, or the store's manifest is damaged.

    Examples
    --------
    >>> import natlens, tempfile
    >>> flows = natlens.scan_flowlogs(natlens.sample_data().flowlogs)
    >>> store = tempfile.mkdtemp()
    >>> files = natlens.write_parquet(flows, store, part="week")
    >>> natlens.scan_parquet(store).select(pl.len()).collect().item() > 200_000
    True
    >>> files = natlens.write_parquet(flows.head(10), store, part="week")  # replaces it
    >>> natlens.scan_parquet(store).select(pl.len()).collect().item()
    10
    """
    frame = flows.lazy() if isinstance(flows, pl.DataFrame) else flows
    schema = frame.collect_schema()
    if schema != FLOW_SCHEMA:
        raise ValueError(
            "flows: expected natlens.FLOW_SCHEMA, got columns "
            f"{list(schema.items())}; load with natlens.scan_flowlogs"
        )
    root = Path(directory)
    root.mkdir(parents=True, exist_ok=True)
    name = _part_name(part)
    data = frame.with_columns(pl.col("time").dt.date().alias("_date")).collect()
    untimed = data.get_column("time").null_count()
    if untimed:
        raise ValueError(
            f"flows: {untimed:,} record(s) without a time; the store files records by day, "
            "so drop or fill them first (natlens's loaders never keep such a record)"
        )
    chunks = sorted(data.sort("time").partition_by("_date", as_dict=True).items())
    generation = uuid.uuid4().hex
    with FileLock(root / _LOCK):
        writing = root / _WRITING
        state = _read_state(root)
        parts, retired = (_legacy_parts(root), []) if state is None else state
        if writing.exists() or state is None:  # a writer was killed, or a first write
            _sweep(root, parts, retired)
        writing.write_text(generation, encoding="utf-8")
        written: list[Path] = []
        try:
            for (day,), chunk in chunks:
                assert isinstance(day, dt.date)
                target = _data_file(root, name, generation, day.isoformat())
                target.parent.mkdir(exist_ok=True)
                chunk.drop("_date").write_parquet(
                    target, compression="zstd", statistics=True, row_group_size=262_144
                )
                _fsync(target)
                written.append(target)
            for folder in {target.parent for target in written}:
                _fsync(folder)
            old = parts.pop(name, None)
            if written:
                days = [target.parent.name.removeprefix("date=") for target in written]
                parts[name] = _Part(generation, days)
            # The version replaced now is kept for readers; those kept long enough go.
            now = time.time()
            expired = [v for v in retired if now - v.at >= _GRACE_SECONDS]
            kept = [v for v in retired if now - v.at < _GRACE_SECONDS]
            if old is not None:
                kept.append(_Retired(name, old.generation, old.days, now))
            _write_manifest(root, parts, kept)  # the commit
        except BaseException:
            # Not committed (a full disk, an interrupt): take this generation away now,
            # against the manifest as it is on disk, whatever happened to it.
            with contextlib.suppress(OSError, ValueError):
                on_disk = _read_state(root)
                if _sweep(root, *(on_disk or (_legacy_parts(root), []))):
                    writing.unlink()
            raise
        _fsync(root)
        # An expired version that cannot be deleted now (Windows: open by a reader) is
        # swept by the next write.
        if _delete_superseded(root, (f for version in expired for f in version.files(root))):
            writing.unlink()
    return written


def scan_parquet(
    directory: str | os.PathLike[str],
    *,
    start: TimeLike | None = None,
    end: TimeLike | None = None,
) -> pl.LazyFrame:
    """Scan the Parquet store at ``directory`` as a LazyFrame in :data:`natlens.FLOW_SCHEMA`.

    ``start``/``end`` keep ``start <= time < end`` and open only the days in range. Only
    committed parts are read: a write in progress or killed half way is not seen.

    Raises
    ------
    FileNotFoundError
        ``directory`` does not exist.
    ValueError
        The store's manifest is damaged.

    Examples
    --------
    >>> import natlens, tempfile
    >>> store = tempfile.mkdtemp()
    >>> _ = natlens.write_parquet(natlens.scan_flowlogs(natlens.sample_data().flowlogs), store)
    >>> natlens.scan_parquet(store).collect_schema() == natlens.FLOW_SCHEMA
    True
    """
    root = Path(directory)
    if not root.is_dir():
        raise FileNotFoundError(f"no Parquet store at {root}")
    lo, hi = time_range(start, end)
    # Days as ISO text compare like dates: keep first <= day <= last.
    first = lo.date().isoformat() if lo is not None else ""
    last = "9999-99-99"
    if hi is not None:
        last = (hi - dt.timedelta(microseconds=1)).date().isoformat()
    files = [
        _data_file(root, name, generation, day)
        for name, (generation, days) in _committed(root).items()
        for day in days
        if first <= day <= last
    ]
    if not files:
        return pl.LazyFrame(schema=FLOW_SCHEMA)
    frame = pl.scan_parquet(sorted(files), hive_partitioning=False).select(FLOW_SCHEMA.names())
    window = time_filter(lo, hi)
    return frame if window is None else frame.filter(window)
