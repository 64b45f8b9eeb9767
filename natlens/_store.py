"""A local Parquet store of flow logs: convert once, query many times.

Layout: ``<directory>/date=YYYY-MM-DD/<part>.parquet``, one folder per UTC day, rows sorted
by time inside each file so row-group statistics let a time filter skip most of a file.
A *part* is named by the caller (a blob's name, say): writing a part again replaces it in
every day it touches, so re-importing a grown blob never duplicates a record. Each file is
written to a temporary name and renamed into place, so a reader or an interrupted writer
never sees half a file.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import os
import re
import uuid
from pathlib import Path

import polars as pl

from natlens._schema import FLOW_SCHEMA
from natlens._time import TimeLike, time_filter, time_range

__all__ = ["scan_parquet", "write_parquet"]

_PART = re.compile(r"^[A-Za-z0-9._-]{1,120}$")


def _part_name(part: str | None) -> str:
    if part is None:
        return uuid.uuid4().hex
    if _PART.match(part):
        return part
    # Blob names and paths: a stable, file-system-safe name derived from the text.
    return hashlib.sha256(part.encode()).hexdigest()[:32]


def write_parquet(
    flows: pl.DataFrame | pl.LazyFrame,
    directory: str | os.PathLike[str],
    *,
    part: str | None = None,
) -> list[Path]:
    """Write flows into the Parquet store at ``directory``, partitioned by UTC day.

    Parameters
    ----------
    flows
        Frame in :data:`natlens.FLOW_SCHEMA`, eager or lazy.
    directory
        The store; created if missing.
    part
        A name for this piece of data (e.g. the blob it came from). Writing the same
        ``part`` again replaces its rows in every day; without one, rows are appended.

    Returns
    -------
    list of Path
        The files written.

    Examples
    --------
    >>> import natlens, tempfile
    >>> flows = natlens.scan_flowlogs(natlens.sample_data().flowlogs)
    >>> store = tempfile.mkdtemp()
    >>> files = natlens.write_parquet(flows, store)
    >>> natlens.scan_parquet(store).select(pl.len()).collect().item() > 200_000
    True
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
    written: list[Path] = []
    days: set[str] = set()
    for (day,), chunk in data.sort("time").partition_by("_date", as_dict=True).items():
        assert isinstance(day, dt.date)
        folder = root / f"date={day.isoformat()}"
        folder.mkdir(exist_ok=True)
        target = folder / f"{name}.parquet"
        temporary = folder / f".{name}.{uuid.uuid4().hex}.tmp"
        chunk.drop("_date").write_parquet(
            temporary, compression="zstd", statistics=True, row_group_size=262_144
        )
        os.replace(temporary, target)
        written.append(target)
        days.add(folder.name)
    if part is not None:
        # Rows of this part that moved out of a day (none usually) must not linger there.
        for stale in root.glob(f"date=*/{name}.parquet"):
            if stale.parent.name not in days:
                stale.unlink()
    return written


def scan_parquet(
    directory: str | os.PathLike[str],
    *,
    start: TimeLike | None = None,
    end: TimeLike | None = None,
) -> pl.LazyFrame:
    """Scan the Parquet store at ``directory`` as a LazyFrame in :data:`natlens.FLOW_SCHEMA`.

    ``start``/``end`` keep ``start <= time < end`` and open only the days in range.

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
    folders = sorted(p for p in root.glob("date=*") if p.is_dir())
    files: list[Path] = []
    for folder in folders:
        try:
            day = dt.date.fromisoformat(folder.name.removeprefix("date="))
        except ValueError:
            continue
        if lo is not None and day < lo.date():
            continue
        if hi is not None and dt.datetime(day.year, day.month, day.day, tzinfo=dt.UTC) >= hi:
            continue
        files.extend(sorted(folder.glob("*.parquet")))
    if not files:
        return pl.LazyFrame(schema=FLOW_SCHEMA)
    frame = pl.scan_parquet(files, hive_partitioning=False).select(FLOW_SCHEMA.names())
    window = time_filter(lo, hi)
    return frame if window is None else frame.filter(window)
