"""Billing: what the gateway's data processing costs, when it spikes, and who caused it.

NAT Gateway bills data processing on bytes in both directions (outbound and the
responses). The price differs by region and currency, so it is always a parameter.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any

import polars as pl

from natlens._time import time_bound
from natlens._typing import FrameLike, Metric, TimeLike
from natlens._usage import (
    TOTAL_COLUMNS,
    _fill_gaps,
    as_lazy,
    check_metric,
    duration,
    group_column,
    summarise,
)

__all__ = ["cost", "explain_spike", "find_spikes", "score_traffic"]

BYTES_PER_GB = 1_000_000_000
"""Decimal gigabyte, the unit of Azure's data-processing meter."""


def _check_price(price_per_gb: float, currency: str) -> None:
    if isinstance(price_per_gb, bool) or not isinstance(price_per_gb, int | float):
        raise ValueError(f"price_per_gb: expected a number, got {price_per_gb!r}")
    if price_per_gb < 0:
        raise ValueError(f"price_per_gb: must not be negative, got {price_per_gb!r}")
    if not isinstance(currency, str) or not currency.strip():
        raise ValueError(f"currency: expected a currency code such as 'USD', got {currency!r}")


def cost(
    flows: FrameLike,
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
    keys = [group_column(g) for g in groups]
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


def _check_scoring(every: str, metric: str) -> timedelta:
    check_metric(metric)
    width = duration(every, "every")
    if width <= timedelta(0) or timedelta(days=1) % width:
        raise ValueError(f"every: {every!r} must divide a day evenly")
    return width


_LEVELS = ("same weekday", "same kind of day", "any other day")
"""Reference days of a bucket, narrowest first (see :func:`score_traffic`)."""


def _usual(buckets: pl.DataFrame, columns: Sequence[str], min_history: int) -> pl.DataFrame:
    """Per bucket: the reference level used, its size, and each column's median and MAD.

    ``buckets`` holds ``time`` and ``columns``; the result ``time, baseline, history``
    and ``expected_<column>``, ``mad_<column>`` for each column (null without history).
    """
    keyed = buckets.with_columns(
        slot=pl.col("time") - pl.col("time").dt.truncate("1d"),
        weekday=pl.col("time").dt.weekday(),
        weekend=pl.col("time").dt.weekday() >= 6,
    )
    pairs = keyed.join(keyed, on="slot", suffix="_ref").filter(pl.col("time") != pl.col("time_ref"))
    conditions = {
        "same weekday": pl.col("weekday") == pl.col("weekday_ref"),
        "same kind of day": pl.col("weekend") == pl.col("weekend_ref"),
        "any other day": pl.lit(True),
    }
    stats = []
    for name in _LEVELS:
        condition = conditions[name]
        aggregations = [
            pl.lit(name).alias("baseline"),
            pl.col("time_ref").filter(condition).len().alias("history"),
        ]
        for column in columns:
            ref = pl.col(f"{column}_ref").filter(condition).cast(pl.Float64)
            aggregations += [
                ref.median().alias(f"expected_{column}"),
                (ref - ref.median()).abs().median().alias(f"mad_{column}"),
            ]
        stats.append(pairs.group_by("time").agg(aggregations))
    candidates = pl.concat(stats).with_columns(
        rank=pl.col("baseline").replace_strict(
            {name: i for i, name in enumerate(_LEVELS)}, return_dtype=pl.Int8
        )
    )
    usable = candidates.filter(pl.col("history") >= min_history)
    fallback = candidates.filter(pl.col("baseline") == _LEVELS[-1])
    return (
        pl.concat([usable, fallback])
        .sort("time", "rank")
        .group_by("time", maintain_order=True)
        .first()
        .drop("rank")
    )


def _spread(expected: pl.Expr, mad: pl.Expr) -> pl.Expr:
    """The unit a score is measured in: the scaled MAD, at least 10% of ``expected``."""
    return pl.max_horizontal(1.4826 * mad, 0.1 * expected, pl.lit(1.0))


def _scored(
    flows: FrameLike,
    *,
    every: str,
    metric: str,
    threshold: float,
    min_ratio: float,
    min_history: int,
) -> pl.DataFrame:
    """Every bucket scored on ``metric``, with the billed bytes and their usual level too."""
    _check_scoring(every, metric)
    columns = list(dict.fromkeys([metric, "bytes"]))
    lazy = as_lazy(flows)
    totals = summarise(lazy, [pl.col("time").dt.truncate(every)]).collect()
    totals = _fill_gaps(totals, every, (), TOTAL_COLUMNS).select(
        "time", *[pl.col(c).cast(pl.Int64) for c in columns]
    )
    schema: dict[str, pl.DataType] = {
        "time": totals.schema["time"],
        "actual": pl.Int64(),
        "expected": pl.Float64(),
        "spread": pl.Float64(),
        "excess": pl.Float64(),
        "ratio": pl.Float64(),
        "score": pl.Float64(),
        "history": pl.Int64(),
        "baseline": pl.String(),
        "is_spike": pl.Boolean(),
        "billed_bytes": pl.Int64(),
        "expected_bytes": pl.Float64(),
    }
    if totals.is_empty():
        return pl.DataFrame(schema=schema)
    usual = _usual(totals, columns, min_history)
    expected = pl.col(f"expected_{metric}").fill_null(0.0)
    return (
        totals.join(usual, on="time", how="left")
        .with_columns(
            actual=pl.col(metric),
            expected=expected,
            spread=_spread(expected, pl.col(f"mad_{metric}").fill_null(0.0)),
            history=pl.col("history").fill_null(0).cast(pl.Int64),
            billed_bytes=pl.col("bytes"),
            expected_bytes=pl.col("expected_bytes").fill_null(0.0),
        )
        .with_columns(
            excess=pl.col("actual") - pl.col("expected"),
            ratio=pl.when(pl.col("expected") > 0).then(pl.col("actual") / pl.col("expected")),
            score=(pl.col("actual") - pl.col("expected")) / pl.col("spread"),
        )
        .with_columns(
            is_spike=(pl.col("history") > 0)
            & (pl.col("score") >= threshold)
            & (pl.col("actual") >= min_ratio * pl.col("expected"))
            & (pl.col("actual") > 0)
        )
        .select(list(schema))
        .sort("time")
    )


def score_traffic(
    flows: FrameLike,
    *,
    every: str = "1h",
    metric: Metric = "bytes",
    threshold: float = 5.0,
    min_ratio: float = 2.0,
    min_history: int = 3,
) -> pl.DataFrame:
    """Every time bucket against what is normal for that time of day and day of week.

    Each bucket is compared with the same time of day on the *other* days: the same
    weekday when at least ``min_history`` of them exist (several weeks of data), else
    the same kind of day (weekday or weekend), else every other day. ``expected`` is
    their median, ``spread`` their median absolute deviation scaled to a standard
    deviation (at least 10% of ``expected``), ``score`` the excess in spreads. A
    bucket is a spike when its score reaches ``threshold`` and it is at least
    ``min_ratio`` times ``expected``; :func:`find_spikes` joins neighbouring spike
    buckets into events.

    Parameters
    ----------
    flows
        Flow records in FLOW_SCHEMA.
    every
        Bucket width; must divide a day (``"15m"``, ``"1h"``...).
    metric
        What is scored: ``bytes`` (both directions, what is billed), ``bytes_sent``,
        ``bytes_received``, ``packets``, ``packets_sent``, ``packets_received``,
        ``packets_dropped`` or ``records``.
    threshold
        Minimum ``score`` of a spike.
    min_ratio
        Minimum ``actual / expected`` of a spike.
    min_history
        Reference days needed at a baseline level before falling back to a broader one.

    Returns
    -------
    pl.DataFrame
        ``time, actual, expected, spread, excess, ratio, score, history`` (reference
        days), ``baseline`` (which days), ``is_spike``; one row per bucket (empty
        buckets count as 0), by time.

    Examples
    --------
    >>> import natlens
    >>> flows = natlens.read_flowlogs(natlens.sample_data().flowlogs)
    >>> hours = score_traffic(flows)
    >>> hours.height, int(hours.get_column("is_spike").sum())
    (168, 9)
    """
    return _scored(
        flows,
        every=every,
        metric=metric,
        threshold=threshold,
        min_ratio=min_ratio,
        min_history=min_history,
    ).drop("billed_bytes", "expected_bytes")


def find_spikes(
    flows: FrameLike,
    *,
    price_per_gb: float,
    currency: str,
    every: str = "1h",
    metric: Metric = "bytes",
    threshold: float = 5.0,
    min_ratio: float = 2.0,
    min_history: int = 3,
    n: int | None = None,
) -> pl.DataFrame:
    """Spikes as events: runs of neighbouring buckets far above their usual level.

    The buckets are scored by :func:`score_traffic`; consecutive spike buckets form
    one event (a six-hour upload is one spike, not six). Each event is priced on
    the bytes it carried beyond the usual level, in both directions (what the
    gateway bills), whatever ``metric`` found it.

    Parameters
    ----------
    flows
        Flow records in FLOW_SCHEMA.
    price_per_gb, currency
        Price of a decimal GB, to cost the extra bytes (see :func:`cost`).
    every, metric, threshold, min_ratio, min_history
        How buckets are scored, see :func:`score_traffic`.
    n
        How many events to return (``None``: all).

    Returns
    -------
    pl.DataFrame
        ``start, end`` (the window, end exclusive), ``buckets`` (how many),
        ``peak`` (the bucket with the most ``metric``), ``peak_actual``,
        ``peak_expected``, ``actual`` and ``expected`` (summed over the window),
        ``extra`` (``actual - expected``, in ``metric``), ``max_score``,
        ``extra_bytes`` (billed bytes beyond the usual), ``extra_cost``,
        ``currency``; the largest ``extra`` first.

    Examples
    --------
    >>> import natlens
    >>> flows = natlens.read_flowlogs(natlens.sample_data().flowlogs)
    >>> top = find_spikes(flows, price_per_gb=0.045, currency="USD").row(0, named=True)
    >>> f"{top['start']:%d %H:%M} to {top['end']:%d %H:%M}, peak {top['peak']:%H:%M}"
    '10 13:00 to 10 19:00, peak 14:00'
    >>> top["buckets"], round(top["extra_bytes"] / 1e9, 1), round(top["extra_cost"], 2)
    (6, 117.1, 5.27)
    """
    _check_price(price_per_gb, currency)
    if n is not None and (isinstance(n, bool) or not isinstance(n, int) or n < 1):
        raise ValueError(f"n: expected a positive integer or None, got {n!r}")
    width = _check_scoring(every, metric)
    scored = _scored(
        flows,
        every=every,
        metric=metric,
        threshold=threshold,
        min_ratio=min_ratio,
        min_history=min_history,
    )
    spikes = scored.filter("is_spike").with_columns(
        event=(pl.col("time").diff() != width).fill_null(True).cum_sum()
    )
    peak = pl.col("actual").arg_max()
    events = (
        spikes.group_by("event")
        .agg(
            start=pl.col("time").min(),
            end=pl.col("time").max() + width,
            buckets=pl.len().cast(pl.Int64),
            peak=pl.col("time").get(peak),
            peak_actual=pl.col("actual").get(peak),
            peak_expected=pl.col("expected").get(peak),
            actual=pl.col("actual").sum(),
            expected=pl.col("expected").sum(),
            extra=pl.col("excess").sum(),
            max_score=pl.col("score").max(),
            extra_bytes=(pl.col("billed_bytes") - pl.col("expected_bytes")).sum(),
        )
        .with_columns(
            extra_cost=(pl.col("extra_bytes") / BYTES_PER_GB * price_per_gb).round(6),
            currency=pl.lit(currency.strip(), dtype=pl.String),
        )
        .sort(["extra", "start"], descending=[True, False])
        .drop("event")
    )
    return events.head(n) if n is not None else events


Window = TimeLike | tuple[TimeLike, TimeLike] | Mapping[str, Any]
"""A time window: ``(start, end)``, a start lasting ``every``, or a mapping with
``start`` and ``end`` (a row of :func:`find_spikes`, ``events.row(0, named=True)``)."""


def _window(window: Window, every: str, argument: str) -> tuple[datetime, datetime]:
    if isinstance(window, Mapping):
        missing = [key for key in ("start", "end") if key not in window]
        if missing:
            raise ValueError(
                f"{argument}: a mapping needs 'start' and 'end' (a row of find_spikes); "
                f"missing {missing}"
            )
        window = (window["start"], window["end"])
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
    flows: FrameLike,
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
        The spike: an event of :func:`find_spikes` (a row as a mapping with
        ``start`` and ``end``), ``(start, end)``, or a start lasting ``every``.
    price_per_gb, currency
        Price of a decimal GB, to cost the delta (see :func:`cost`).
    baseline
        What normal looks like: ``None`` (the same clock times on the other days of
        the data, shifted by whole days so they do not overlap the window, of the
        same kind, weekday or weekend, when at least two exist; averaged), one
        ``(start, end)`` window or a list of them; their traffic is averaged and
        scaled to the spike window's length.
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
    The whole window of the sample week's largest spike, as one event:

    >>> import natlens
    >>> flows = natlens.read_flowlogs(natlens.sample_data().flowlogs)
    >>> price = {"price_per_gb": 0.045, "currency": "USD"}
    >>> event = natlens.find_spikes(flows, **price).row(0, named=True)
    >>> top = explain_spike(flows, event, **price).row(0, named=True)
    >>> top["source_ip"], top["destination_ip"], round(top["delta_cost"], 2)
    ('10.10.3.7', '20.60.26.45', 5.23)

    Any window against explicit baseline windows:

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
