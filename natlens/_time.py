"""Time arguments: one reading of ``start``/``end`` for every loader and analysis."""

from __future__ import annotations

from datetime import UTC, date, datetime

import polars as pl

from natlens._typing import TimeLike

__all__ = ["parse_timestamp", "time_bound", "time_filter", "time_range"]


# The Log Analytics portal's "Export to CSV" writes local-style times like these.
_PORTAL_TIME = ("%m/%d/%Y, %I:%M:%S.%f %p", "%m/%d/%Y, %I:%M:%S %p", "%m/%d/%Y %I:%M:%S %p")


def parse_timestamp(text: str) -> datetime:
    """A UTC datetime from ISO 8601 text or the portal's export style; naive text is UTC.

    Raises
    ------
    ValueError
        ``unparseable timestamp '...'``.

    Examples
    --------
    >>> parse_timestamp("11/4/2025, 10:01:00.000 AM").isoformat()
    '2025-11-04T10:01:00+00:00'
    >>> parse_timestamp("2025-11-04T10:01:00.0000000Z").isoformat()
    '2025-11-04T10:01:00+00:00'
    """
    value = text.strip()
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        for fmt in _PORTAL_TIME:
            try:
                parsed = datetime.strptime(value, fmt)
                break
            except ValueError:
                continue
        else:
            raise ValueError(f"unparseable timestamp {text!r}") from None
    return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)


def time_bound(value: TimeLike | None, *, argument: str) -> datetime | None:
    """A UTC datetime from a datetime, a date or ISO text; naive values are taken as UTC.

    Raises
    ------
    ValueError
        Naming ``argument`` when ``value`` is no time.

    Examples
    --------
    >>> time_bound("2025-11-04T10:00", argument="start")
    datetime.datetime(2025, 11, 4, 10, 0, tzinfo=datetime.timezone.utc)
    """
    if value is None:
        return None
    if isinstance(value, str):
        try:
            return parse_timestamp(value)
        except ValueError:
            raise ValueError(f"{argument}: {value!r} is not an ISO date or time") from None
    if isinstance(value, datetime):
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
    if isinstance(value, date):
        return datetime(value.year, value.month, value.day, tzinfo=UTC)
    raise ValueError(f"{argument}: expected a datetime, date or ISO text, got {value!r}")


def time_range(
    start: TimeLike | None, end: TimeLike | None
) -> tuple[datetime | None, datetime | None]:
    """``start`` and ``end`` as UTC datetimes, checked to be in order.

    Examples
    --------
    >>> time_range("2026-11-09", None)[0].isoformat()
    '2026-11-09T00:00:00+00:00'
    """
    low, high = time_bound(start, argument="start"), time_bound(end, argument="end")
    if low is not None and high is not None and high <= low:
        raise ValueError(f"end: {high.isoformat()} is not after start {low.isoformat()}")
    return low, high


def time_filter(low: datetime | None, high: datetime | None) -> pl.Expr | None:
    """``low <= time < high`` as a polars predicate, or None when unbounded."""
    conditions = []
    if low is not None:
        conditions.append(pl.col("time") >= low)
    if high is not None:
        conditions.append(pl.col("time") < high)
    return pl.all_horizontal(conditions) if conditions else None
