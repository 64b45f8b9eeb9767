"""Billing: what the gateway's data processing costs, when it spikes, and who caused it.

NAT Gateway bills data processing on bytes in both directions (outbound and the
responses). The price differs by region and currency, so it is always a parameter.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta

import polars as pl

from natlens._time import TimeLike, time_bound
from natlens._usage import (
    TOTAL_COLUMNS,
    _fill_gaps,
    _group_column,
    as_lazy,
    duration,
    summarise,
)

__all__ = ["cost", "explain_spike", "find_spikes"]

BYTES_PER_GB = 1_000_000_000
"""Decimal gigabyte, the unit of Azure's data-processing meter."""

SPIKE_METRICS = ("bytes", "bytes_sent", "bytes_received", "packets", "records")


def _check_price(price_per_gb: float, currency: str) -> None:
    if isinstance(price_per_gb, bool) or not isinstance(price_per_gb, int | float):
        raise ValueError(f"price_per_gb: expected a number, got {price_per_gb!r}")
    if price_per_gb < 0:
        raise ValueError(f"price_per_gb: must not be negative, got {price_per_gb!r}")
    if not isinstance(currency, str) or not currency.strip():
        raise ValueError(f"currency: expected a currency code such as 'USD', got {currency!r}")


def cost(
    flows: pl.DataFrame | pl.LazyFrame,
    *,
    price_per_gb: float,
    currency: str,
    by: str | Sequence[str] | None = None,
    every: str | None = None,
) -> pl.DataFrame:
    """Data-processing cost: bytes in both directions times the price per GB.

    Parameters
    ----------
    flows
        Flow records in FLOW_SCHEMA.
    price_per_gb
        Price per decimal GB (10**9 bytes) in ``currency``; look it up for your region.
    currency
        Currency code shown next to the cost (``"USD"``, ``"EUR"``...).
    by
        Group(s): ``"source"``, ``"destination"``, ``"nat_ip"``, ``"gateway"`` or the
        column names; ``None`` for the total.
    every
        Optional time bucket (``"1h"``, ``"1d"``...): one row per bucket and group.

    Returns
    -------
    pl.DataFrame
        ``[time], [groups], bytes_sent, bytes_received, bytes, gb, cost, currency``;
        by time, then most expensive first.

    Examples
    --------
    >>> import natlens
    >>> from datetime import datetime, UTC
    >>> row = [datetime(2025, 1, 1, tzinfo=UTC), "10.0.0.4", "1.1.1.1", "20.1.1.1"]
    >>> flows = pl.DataFrame(
    ...     [[*row, 1, 1, 0, 0, 3 * 10**9, 10**9, "GW"]], schema=natlens.FLOW_SCHEMA, orient="row"
    ... )
    >>> cost(flows, price_per_gb=0.045, currency="USD").select("gb", "cost").rows()
    [(4.0, 0.18)]
    """
    _check_price(price_per_gb, currency)
    groups = [] if by is None else [by] if isinstance(by, str) else list(by)
    keys = [_group_column(g) for g in groups]
    lazy = as_lazy(flows)
    if every is not None:
        duration(every, "every")
        lazy = lazy.with_columns(pl.col("time").dt.truncate(every))
        keys = ["time", *keys]
    frame = summarise(lazy, keys).select(*keys, "bytes_sent", "bytes_received", "bytes")
    return (
        frame.with_columns(gb=pl.col("bytes") / BYTES_PER_GB)
        .with_columns(
            cost=(pl.col("gb") * price_per_gb).round(6),
            currency=pl.lit(currency.strip()),
        )
        .sort(
            [*(["time"] if every else []), "cost", *[k for k in keys if k != "time"]],
            descending=[*([False] if every else []), True, *[False] * (len(keys) - bool(every))],
        )
        .collect()
    )


def find_spikes(
    flows: pl.DataFrame | pl.LazyFrame,
    *,
    every: str = "1h",
    metric: str = "bytes",
    threshold: float = 5.0,
    min_ratio: float = 2.0,
    min_history: int = 3,
    only_spikes: bool = True,
) -> pl.DataFrame:
    """Time buckets far above what is normal for that time of day and day of week.

    Each bucket is compared with the same time of day on the *other* days: the same
    weekday when at least ``min_history`` of them exist (several weeks of data), else
    the same kind of day (weekday or weekend), else every other day. ``expected`` is
    their median, the spread their median absolute deviation (at least 10% of
    ``expected``), ``score`` the excess in spreads.

    Parameters
    ----------
    flows
        Flow records in FLOW_SCHEMA.
    every
        Bucket width; must divide a day (``"15m"``, ``"1h"``...).
    metric
        ``bytes`` (both directions, what is billed), ``bytes_sent``,
        ``bytes_received``, ``packets`` or ``records``.
    threshold
        Minimum ``score`` of a spike.
    min_ratio
        Minimum ``actual / expected`` of a spike.
    min_history
        Reference days needed at a baseline level before falling back to a broader one.
    only_spikes
        ``False`` returns every bucket (for charts), with the ``is_spike`` flag.

    Returns
    -------
    pl.DataFrame
        ``time, actual, expected, excess, ratio, score, history, baseline, is_spike``;
        spikes by score (highest first), or every bucket by time.

    Examples
    --------
    >>> import natlens
    >>> flows = natlens.read_flowlogs(natlens.sample_data().flowlogs)
    >>> top = find_spikes(flows).row(0, named=True)
    >>> str(top["time"]), top["baseline"], top["actual"] > 5 * top["expected"]
    ('2026-11-10 16:00:00+00:00', 'same kind of day', True)
    """
    if metric not in SPIKE_METRICS:
        raise ValueError(f"metric: {metric!r} is not one of {list(SPIKE_METRICS)}")
    width = duration(every, "every")
    if width <= timedelta(0) or timedelta(days=1) % width:
        raise ValueError(f"every: {every!r} must divide a day evenly")
    lazy = as_lazy(flows)
    buckets = summarise(lazy, [pl.col("time").dt.truncate(every)]).collect()
    buckets = _fill_gaps(buckets, every, (), TOTAL_COLUMNS).select("time", actual=pl.col(metric))
    schema: dict[str, pl.DataType] = {
        "time": buckets.schema["time"],
        "actual": pl.Int64(),
        "expected": pl.Float64(),
        "excess": pl.Float64(),
        "ratio": pl.Float64(),
        "score": pl.Float64(),
        "history": pl.Int64(),
        "baseline": pl.String(),
        "is_spike": pl.Boolean(),
    }
    if buckets.is_empty():
        return pl.DataFrame(schema=schema)
    keyed = buckets.with_columns(
        slot=pl.col("time") - pl.col("time").dt.truncate("1d"),
        weekday=pl.col("time").dt.weekday(),
        weekend=pl.col("time").dt.weekday() >= 6,
        actual=pl.col("actual").cast(pl.Int64),
    )
    pairs = keyed.join(keyed, on="slot", suffix="_ref").filter(pl.col("time") != pl.col("time_ref"))
    levels = {
        "same weekday": pl.col("weekday") == pl.col("weekday_ref"),
        "same kind of day": pl.col("weekend") == pl.col("weekend_ref"),
        "any other day": pl.lit(True),
    }
    stats = []
    for name, condition in levels.items():
        ref = pl.col("actual_ref").filter(condition).cast(pl.Float64)
        stats.append(
            pairs.group_by("time").agg(
                pl.lit(name).alias("baseline"),
                ref.len().alias("history"),
                ref.median().alias("expected"),
                (ref - ref.median()).abs().median().alias("mad"),
            )
        )
    candidates = pl.concat(stats).with_columns(
        rank=pl.col("baseline").replace_strict(
            {name: i for i, name in enumerate(levels)}, return_dtype=pl.Int8
        )
    )
    usable = candidates.filter(pl.col("history") >= min_history)
    fallback = candidates.filter(pl.col("baseline") == "any other day")
    chosen = (
        pl.concat([usable, fallback])
        .sort("time", "rank")
        .group_by("time", maintain_order=True)
        .first()
    )
    spread = pl.max_horizontal(1.4826 * pl.col("mad"), 0.1 * pl.col("expected"), pl.lit(1.0))
    result = (
        keyed.select("time", "actual")
        .join(chosen, on="time", how="left")
        .with_columns(
            history=pl.col("history").fill_null(0).cast(pl.Int64),
            expected=pl.col("expected").fill_null(0.0),
            mad=pl.col("mad").fill_null(0.0),
        )
        .with_columns(
            excess=pl.col("actual") - pl.col("expected"),
            ratio=pl.when(pl.col("expected") > 0).then(pl.col("actual") / pl.col("expected")),
            score=(pl.col("actual") - pl.col("expected")) / spread,
        )
        .with_columns(
            is_spike=(pl.col("history") > 0)
            & (pl.col("score") >= threshold)
            & (pl.col("actual") >= min_ratio * pl.col("expected"))
            & (pl.col("actual") > 0)
        )
        .select(list(schema))
    )
    if only_spikes:
        return result.filter("is_spike").sort(["score", "time"], descending=[True, False])
    return result.sort("time")


Window = TimeLike | tuple[TimeLike, TimeLike]


def _window(window: Window, every: str, argument: str) -> tuple[datetime, datetime]:
    if isinstance(window, tuple):
        if len(window) != 2:
            raise ValueError(f"{argument}: expected (start, end), got {window!r}")
        start = time_bound(window[0], argument=f"{argument}[0]")
        end = time_bound(window[1], argument=f"{argument}[1]")
    else:
        start = time_bound(window, argument=argument)
        end = None if start is None else start + duration(every, "every")
    if start is None or end is None:
        raise ValueError(f"{argument}: a time window is required")
    if end <= start:
        raise ValueError(
            f"{argument}: end {end.isoformat()} is not after start {start.isoformat()}"
        )
    return start, end


def explain_spike(
    flows: pl.DataFrame | pl.LazyFrame,
    window: Window,
    *,
    price_per_gb: float,
    currency: str,
    baseline: Window | Sequence[tuple[TimeLike, TimeLike]] | None = None,
    every: str = "1h",
    n: int | None = 20,
) -> pl.DataFrame:
    """The source/destination pairs behind a spike, ranked by their share of the increase.

    Parameters
    ----------
    flows
        Flow records in FLOW_SCHEMA.
    window
        The spike: ``(start, end)``, or a start (a ``time`` of :func:`find_spikes`)
        lasting ``every``.
    price_per_gb, currency
        Price of a decimal GB, to cost the delta (see :func:`cost`).
    baseline
        What normal looks like: ``None`` (the same clock time on the other days of
        the data of the same kind, weekday or weekend, averaged), one ``(start, end)``
        window or a list of them; their traffic is averaged and scaled to the spike
        window's length.
    every
        Length of ``window`` when only its start is given.
    n
        How many pairs to return (``None``: all).

    Returns
    -------
    pl.DataFrame
        ``source_ip, destination_ip, bytes_sent, bytes_received, bytes`` (in the
        window), ``expected_bytes`` (baseline), ``delta_bytes``, ``share`` (of the
        total increase), ``delta_cost``, ``currency``; largest contribution first.

    Examples
    --------
    >>> import natlens
    >>> explain_spike(
    ...     natlens.FLOW_SCHEMA.to_frame(eager=True),
    ...     ("2025-01-01T10:00", "2025-01-01T11:00"),
    ...     baseline=("2025-01-01T08:00", "2025-01-01T10:00"),
    ...     price_per_gb=0.045,
    ...     currency="USD",
    ... ).height
    0
    """
    _check_price(price_per_gb, currency)
    if n is not None and (isinstance(n, bool) or not isinstance(n, int) or n < 1):
        raise ValueError(f"n: expected a positive integer or None, got {n!r}")
    start, end = _window(window, every, "window")
    length = end - start
    lazy = as_lazy(flows)
    if baseline is None:
        bounds = lazy.select(first=pl.col("time").min(), last=pl.col("time").max()).collect()
        first, last = bounds.item(0, "first"), bounds.item(0, "last")
        if length > timedelta(days=1):
            raise ValueError("baseline: pass baseline= explicitly for a window longer than a day")
        references: list[tuple[datetime, datetime]] = []
        if first is not None:
            for shift in range(-400, 401):
                shifted = (start + timedelta(days=shift), end + timedelta(days=shift))
                overlaps = shifted[0] < end and start < shifted[1]
                if not overlaps and shifted[1] > first and shifted[0] <= last:
                    references.append(shifted)
        if not references:
            raise ValueError(
                "baseline: the data holds no other day to compare with; pass baseline="
            )
        # The weekly rhythm: compare a weekday with weekdays, a weekend with weekends,
        # as find_spikes does, when the data holds at least two such days.
        weekend = start.weekday() >= 5
        alike = [r for r in references if (r[0].weekday() >= 5) == weekend]
        if len(alike) >= 2:
            references = alike
    elif isinstance(baseline, list):
        references = [_window(w, every, f"baseline[{i}]") for i, w in enumerate(baseline)]
    else:
        references = [_window(baseline, every, "baseline")]  # type: ignore[arg-type]
    reference_length = sum((e - s for s, e in references), timedelta(0))
    if reference_length <= timedelta(0):
        raise ValueError("baseline: an empty baseline")
    scale = length / reference_length
    in_reference = pl.any_horizontal(
        [(pl.col("time") >= s) & (pl.col("time") < e) for s, e in references]
    )
    both = (pl.col("bytes_sent").fill_null(0) + pl.col("bytes_received").fill_null(0)).sum()
    keys = ["source_ip", "destination_ip"]
    spike = (
        lazy.filter((pl.col("time") >= start) & (pl.col("time") < end))
        .group_by(keys)
        .agg(
            pl.col("bytes_sent").fill_null(0).sum(),
            pl.col("bytes_received").fill_null(0).sum(),
            both.alias("bytes"),
        )
    )
    normal = lazy.filter(in_reference).group_by(keys).agg(expected_bytes=both * scale)
    result = (
        spike.join(normal, on=keys, how="full", coalesce=True)
        .with_columns(
            pl.col("bytes_sent", "bytes_received", "bytes").fill_null(0),
            pl.col("expected_bytes").fill_null(0.0),
        )
        .with_columns(delta_bytes=pl.col("bytes") - pl.col("expected_bytes"))
        .with_columns(
            share=pl.when(pl.col("delta_bytes").clip(lower_bound=0).sum() > 0).then(
                pl.col("delta_bytes") / pl.col("delta_bytes").clip(lower_bound=0).sum()
            ),
            delta_cost=(pl.col("delta_bytes") / BYTES_PER_GB * price_per_gb).round(6),
            currency=pl.lit(currency.strip()),
        )
        .sort(["delta_bytes", *keys], descending=[True, False, False])
    )
    return (result.head(n) if n is not None else result).collect()
