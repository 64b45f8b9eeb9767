"""Read gateway platform metrics saved on disk into :data:`natlens.METRICS_SCHEMA`."""

from __future__ import annotations

import gzip
import io
import zlib
from pathlib import Path

import polars as pl

from natlens._schema import METRICS_SCHEMA, PROTOCOL_NAMES
from natlens._typing import PathLike

__all__ = ["read_metrics"]

_REQUIRED = ("time", "resource_id", "metric", "value")
_DIMENSIONS = ("protocol", "direction", "connection_state")


def read_metrics(source: PathLike) -> pl.DataFrame:
    """Read gateway metrics from a CSV, gzip-compressed CSV or Parquet file.

    The file holds the columns of :data:`natlens.METRICS_SCHEMA` (``time``,
    ``resource_id``, ``metric``, ``protocol``, ``direction``, ``connection_state``,
    ``value``); the format is recognised from the content, not the extension. Times
    are read as UTC (text with ``Z`` or an offset, or naive UTC), ``resource_id`` is
    brought to upper case as in the flow logs, an empty dimension is null and the
    protocols ``6``/``17`` read as ``TCP``/``UDP``.

    Parameters
    ----------
    source
        The metrics file.

    Returns
    -------
    polars.DataFrame
        Exactly :data:`natlens.METRICS_SCHEMA`, rows in file order.

    Raises
    ------
    FileNotFoundError
        If ``source`` does not exist.
    ValueError
        If the file is not a metrics table (missing columns, unreadable content) or a
        time or value cannot be parsed; the message names the file and line.

    Examples
    --------
    >>> import natlens
    >>> metrics = natlens.read_metrics(natlens.sample_data().metrics)
    >>> metrics.schema == natlens.METRICS_SCHEMA
    True
    >>> sorted(metrics.get_column("metric").unique())[:2]
    ['ByteCount', 'DatapathAvailability']
    """
    file = Path(source)
    if not file.is_file():
        raise FileNotFoundError(f"metrics file not found: {file}")
    raw = file.read_bytes()
    if raw[:4] == b"PAR1":
        try:
            frame = pl.read_parquet(io.BytesIO(raw))
        except Exception as error:  # polars raises several kinds for corrupt files
            raise ValueError(f"{file}: unreadable Parquet file ({error})") from None
        return _conform(frame, file, text_source=False)
    if raw[:2] == b"\x1f\x8b":
        try:
            raw = gzip.decompress(raw)
        except (OSError, EOFError, zlib.error) as error:
            raise ValueError(f"{file}: broken gzip data ({error})") from None
    if not raw.strip():
        raise ValueError(f"{file}: empty file, expected a metrics table with columns {_header()}")
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise ValueError(
            f"{file}: not a metrics table (binary content); expected CSV or Parquet with "
            f"columns {_header()}"
        ) from None
    try:
        frame = pl.read_csv(io.StringIO(text), infer_schema=False)
    except pl.exceptions.PolarsError as error:
        raise ValueError(f"{file}: not a readable CSV metrics table ({error})") from None
    return _conform(frame, file, text_source=True)


def _header() -> str:
    return ",".join(METRICS_SCHEMA.names())


def _conform(frame: pl.DataFrame, file: Path, *, text_source: bool) -> pl.DataFrame:
    frame = frame.rename({c: c.strip().lower() for c in frame.columns})
    missing = [c for c in _REQUIRED if c not in frame.columns]
    if missing:
        found = ", ".join(frame.columns[:8]) or "none"
        raise ValueError(
            f"{file}: not a metrics table: missing column(s) {', '.join(missing)} "
            f"(found: {found}); expected {_header()}"
        )
    # line of row i in a CSV with a header is i + 2; in Parquet report the row
    first_line = 2 if text_source else 0
    where = "line" if text_source else "row"

    time = _parse_time(frame.get_column("time"))
    bad = time.is_null() & frame.get_column("time").is_not_null()
    if bad.any():
        row = int(bad.arg_true()[0])
        value = frame.get_column("time")[row]
        raise ValueError(f"{file}, {where} {row + first_line}: unparseable time {value!r}")

    values = frame.get_column("value")
    parsed = values.cast(pl.Float64, strict=False)
    if values.dtype == pl.String:
        present = values.is_not_null() & (values.str.strip_chars() != "")
    else:
        present = values.is_not_null()
    bad = parsed.is_null() & present
    if bad.any():
        row = int(bad.arg_true()[0])
        raise ValueError(
            f"{file}, {where} {row + first_line}: value {values[row]!r} is not a number"
        )

    columns: dict[str, pl.Series] = {
        "time": time,
        "resource_id": _text(frame.get_column("resource_id")).str.to_uppercase(),
        "metric": _text(frame.get_column("metric")),
    }
    for name in _DIMENSIONS:
        if name in frame.columns:
            columns[name] = _text(frame.get_column(name))
        else:
            columns[name] = pl.Series(name, [None] * frame.height, dtype=pl.String)
    columns["protocol"] = columns["protocol"].replace(PROTOCOL_NAMES)
    columns["value"] = parsed
    return pl.DataFrame([columns[n].alias(n) for n in METRICS_SCHEMA.names()]).cast(METRICS_SCHEMA)


def _text(series: pl.Series) -> pl.Series:
    """String values, stripped, with empty text as null."""
    name = series.name
    return (
        series.to_frame()
        .select(pl.col(name).cast(pl.String).str.strip_chars().replace("", None))
        .to_series()
    )


def _parse_time(series: pl.Series) -> pl.Series:
    if isinstance(series.dtype, pl.Datetime):
        if series.dtype.time_zone is None:
            return series.dt.replace_time_zone("UTC").dt.cast_time_unit("us")
        return series.dt.convert_time_zone("UTC").dt.cast_time_unit("us")
    text = series.cast(pl.String).str.strip_chars()
    return text.str.to_datetime(time_unit="us", time_zone="UTC", strict=False)
