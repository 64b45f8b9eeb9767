"""Usage analytics: who talks most, to whom, when, through which NAT IP, and how it grows."""

from __future__ import annotations

import re
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Literal

import polars as pl

from natlens._schema import FLOW_SCHEMA
from natlens._typing import GROUPS, METRICS, FrameLike, Metric

__all__ = [
    "as_lazy",
    "growth",
    "nat_ip_usage",
    "top_destinations",
    "top_talkers",
    "traffic_over_time",
]

GROUP_ALIASES = {
    "source": "source_ip",
    "source_ip": "source_ip",
    "destination": "destination_ip",
    "destination_ip": "destination_ip",
    "nat_ip": "nat_gateway_ip",
    "nat_gateway_ip": "nat_gateway_ip",
    "gateway": "resource_id",
    "resource_id": "resource_id",
}
OTHER = "other"


_RESCANNABLE = frozenset({"Parquet", "Ipc"})
"""Scans polars reads columns and row groups of, cheaply, each time a query asks."""


def rescannable(flows: pl.LazyFrame) -> bool:
    """Whether every scan under ``flows`` is of Parquet or IPC files (or a frame in memory).

    Such a plan can be queried again and again (once per section, once per pass): polars
    reads only the columns (and, for a time window, the row groups) each query needs. Any
    other scan (JSON Lines, CSV, natlens's own readers of the Azure formats) decodes every
    record each time it is queried, so it is read once instead.

    Examples
    --------
    >>> rescannable(pl.LazyFrame({"a": [1]}))
    True
    """
    kinds = set(re.findall(r"^\s*(\S+) SCAN\b", flows.explain(optimized=False), re.MULTILINE))
    return kinds <= _RESCANNABLE


def as_lazy(flows: FrameLike, *, columns: Sequence[str] | None = None) -> pl.LazyFrame:
    """``flows`` as a LazyFrame, checked to hold ``columns`` (default: all of FLOW_SCHEMA).

    Raises
    ------
    TypeError
        If ``flows`` is not a polars frame.
    ValueError
        Naming the missing columns.
    """
    if isinstance(flows, pl.DataFrame):
        lazy = flows.lazy()
    elif isinstance(flows, pl.LazyFrame):
        lazy = flows
    else:
        raise TypeError(
            "flows: expected a polars DataFrame or LazyFrame in FLOW_SCHEMA, "
            f"got {type(flows).__name__}"
        )
    needed = FLOW_SCHEMA.names() if columns is None else list(columns)
    present = set(lazy.collect_schema().names())
    missing = [c for c in needed if c not in present]
    if missing:
        raise ValueError(f"flows: missing column(s) {missing}; expected natlens.FLOW_SCHEMA")
    return lazy


_BASE_COLUMNS = (
    "bytes_sent",
    "bytes_received",
    "packets_sent",
    "packets_received",
    "packets_sent_dropped",
    "packets_received_dropped",
)

TOTAL_COLUMNS = (
    "bytes_sent",
    "bytes_received",
    "bytes",
    "packets_sent",
    "packets_received",
    "packets",
    "packets_dropped",
    "records",
)
"""The totals every usage aggregation reports, in order."""


def summarise(
    lazy: pl.LazyFrame, keys: Sequence[str | pl.Expr] = (), *extra: pl.Expr
) -> pl.LazyFrame:
    """Group ``lazy`` by ``keys`` into :data:`TOTAL_COLUMNS` plus ``extra`` aggregations.

    Only the raw counters are summed per row (a sum skips nulls: they count as zero);
    the two-way totals are added after the aggregation, on the small result.
    """
    base = [pl.col(c).sum().alias(c) for c in _BASE_COLUMNS]
    base.append(pl.len().cast(pl.Int64).alias("records"))
    grouped = lazy.group_by(*keys).agg(*base, *extra) if keys else lazy.select(*base, *extra)
    names = [k if isinstance(k, str) else k.meta.output_name() for k in keys]
    return grouped.with_columns(
        bytes=pl.col("bytes_sent") + pl.col("bytes_received"),
        packets=pl.col("packets_sent") + pl.col("packets_received"),
        packets_dropped=pl.col("packets_sent_dropped") + pl.col("packets_received_dropped"),
    ).select(*names, *TOTAL_COLUMNS, *[e.meta.output_name() for e in extra])


def duration(every: str, argument: str) -> timedelta:
    """The length of a polars duration such as ``"15m"``, ``"1h"`` or ``"1d"``.

    Raises
    ------
    ValueError
        Naming ``argument`` when ``every`` is no duration.
    """
    origin = datetime(2000, 1, 1)
    try:
        shifted = pl.select(pl.lit(origin).dt.offset_by(every)).item()
    except (pl.exceptions.PolarsError, TypeError):
        raise ValueError(f"{argument}: {every!r} is not a duration such as '1h'") from None
    if not isinstance(shifted, datetime) or shifted <= origin:
        raise ValueError(f"{argument}: {every!r} is not a positive duration such as '1h'")
    return shifted - origin


def check_metric(metric: str) -> str:
    """``metric`` itself when it is one of :data:`natlens._typing.METRICS`.

    Raises
    ------
    ValueError
        Naming the argument and the metrics there are.
    """
    if metric not in METRICS:
        hint = f" (group with by={metric!r})" if metric in GROUP_ALIASES else ""
        raise ValueError(f"metric: {metric!r} is not one of {list(METRICS)}{hint}")
    return metric


def group_column(by: str) -> str:
    """The FLOW_SCHEMA column a ``by`` value names (``"source"`` -> ``source_ip``).

    Raises
    ------
    ValueError
        Naming the argument and the groups there are.
    """
    column = GROUP_ALIASES.get(by) if isinstance(by, str) else None
    if column is None:
        hint = f" (measure it with metric={by!r})" if by in METRICS else ""
        raise ValueError(f"by: {by!r} is not one of {list(GROUPS)} or their columns{hint}")
    return column


def _check_n(n: int | None) -> None:
    if n is not None and (isinstance(n, bool) or not isinstance(n, int) or n < 1):
        raise ValueError(f"n: expected a positive integer or None, got {n!r}")


_TWO_WAY = {
    "bytes": ("bytes_sent", "bytes_received"),
    "packets": ("packets_sent", "packets_received"),
    "packets_dropped": ("packets_sent_dropped", "packets_received_dropped"),
}
"""The metrics :func:`summarise` adds from two raw counters after the aggregation."""


def _metric_only(lazy: pl.LazyFrame, key: str, metric: str) -> pl.LazyFrame:
    """``key`` and ``metric`` per ``key``, computed as :func:`summarise` computes it.

    Only what ranks the groups: summing every counter of every group costs a third more
    time and twice the memory when all but the few groups kept are thrown away.
    """
    if metric == "records":
        return lazy.group_by(key).agg(pl.len().cast(pl.Int64).alias("records"))
    parts = _TWO_WAY.get(metric, (metric,))
    grouped = lazy.group_by(key).agg(pl.col(c).sum() for c in parts)
    return grouped.select(key, pl.sum_horizontal(parts).alias(metric))


def _top(flows: FrameLike, key: str, other: str, n: int | None, metric: str) -> pl.DataFrame:
    _check_n(n)
    by = check_metric(metric)
    lazy = as_lazy(flows)
    counted = f"{other.split('_', 1)[0]}s"
    count = pl.col(other).drop_nulls().n_unique().cast(pl.Int64).alias(counted)
    share = pl.when(pl.col(by).sum() > 0).then(pl.col(by) / pl.col(by).sum()).otherwise(0.0)
    if n is None:
        top = (
            summarise(lazy, [key])
            .with_columns(share=share)
            .sort([by, key], descending=[True, False], nulls_last=True)
            .collect()
        )
        distinct = lazy.group_by(key).agg(count).collect()
        top = top.join(distinct, on=key, how="left", nulls_equal=True, maintain_order="left")
    else:
        # The n leaders by the metric alone, then their totals and distinct counterparts
        # in a second, filtered pass: far cheaper than every total and a distinct count
        # in every one of (maybe) hundreds of thousands of groups.
        leaders = (
            _metric_only(lazy, key, by)
            .with_columns(share=share)
            .sort([by, key], descending=[True, False], nulls_last=True)
            .head(n)
            .collect()
        )
        kept = pl.col(key).is_in(leaders.get_column(key).implode())
        if leaders.get_column(key).has_nulls():
            # A missing key is a group of its own: its totals count, but it has no
            # counterparts (is_in matches no missing key).
            kept = kept | pl.col(key).is_null()
            count = pl.when(pl.col(key).is_not_null().any()).then(count)
        totals = summarise(lazy.filter(kept), [key], count).collect()
        top = leaders.select(key, "share").join(
            totals, on=key, how="left", nulls_equal=True, maintain_order="left"
        )
    return top.with_columns(pl.col(counted).fill_null(0)).select(
        key, *TOTAL_COLUMNS, counted, "share"
    )


def top_talkers(
    flows: FrameLike, *, metric: Metric = "bytes_sent", n: int | None = 10
) -> pl.DataFrame:
    """The sources (private IPs) moving the most traffic.

    Parameters
    ----------
    flows
        Flow records in FLOW_SCHEMA.
    metric
        What they are ranked by: ``bytes``, ``bytes_sent``, ``bytes_received``,
        ``packets``, ``packets_sent``, ``packets_received``, ``packets_dropped`` or
        ``records``.
    n
        How many to return (``None``: all).

    Returns
    -------
    pl.DataFrame
        One row per ``source_ip``: byte and packet totals each way, ``records``,
        distinct ``destinations`` and ``share`` of the ``metric`` total over all sources;
        largest first.

    Examples
    --------
    >>> import natlens
    >>> flows = natlens.read_flowlogs(natlens.sample_data().flowlogs)
    >>> top = top_talkers(flows, n=3)
    >>> top.get_column("source_ip").to_list()
    ['10.10.3.7', '10.10.3.13', '10.10.3.5']
    >>> round(top.item(0, "share"), 2)
    0.53
    """
    return _top(flows, "source_ip", "destination_ip", n, metric)


def top_destinations(
    flows: FrameLike, *, metric: Metric = "bytes_sent", n: int | None = 10
) -> pl.DataFrame:
    """The internet destinations receiving the most traffic; see :func:`top_talkers`.

    Returns
    -------
    pl.DataFrame
        One row per ``destination_ip`` with the totals, distinct ``sources`` and ``share``.

    Examples
    --------
    >>> from datetime import datetime, UTC
    >>> import natlens
    >>> t = datetime(2025, 1, 1, tzinfo=UTC)
    >>> flows = pl.DataFrame(
    ...     [
    ...         [t, "10.0.0.4", "140.82.121.4", "20.1.1.1", 9, 20, 0, 0, 900, 20000, "GW"],
    ...         [t, "10.0.0.5", "140.82.121.4", "20.1.1.1", 1, 2, 0, 0, 100, 2000, "GW"],
    ...         [t, "10.0.0.5", "1.1.1.1", "20.1.1.1", 1, 1, 0, 0, 80, 120, "GW"],
    ...     ],
    ...     schema=natlens.FLOW_SCHEMA,
    ...     orient="row",
    ... )
    >>> top_destinations(flows, metric="bytes").select("destination_ip", "bytes", "sources").rows()
    [('140.82.121.4', 23000, 2), ('1.1.1.1', 200, 1)]
    """
    return _top(flows, "destination_ip", "source_ip", n, metric)


def _full_range(frame: pl.DataFrame, every: str, column: str = "time") -> pl.Series:
    if frame.is_empty():
        return pl.Series(column, [], dtype=FLOW_SCHEMA["time"])
    return pl.datetime_range(  # type: ignore[return-value]
        frame.get_column(column).min(),  # type: ignore[arg-type]
        frame.get_column(column).max(),  # type: ignore[arg-type]
        every,
        eager=True,
        time_zone="UTC",
    ).alias(column)


def _fill_gaps(
    frame: pl.DataFrame, every: str, keys: Sequence[str], values: Sequence[str]
) -> pl.DataFrame:
    """Add zero rows for every missing (time bucket, key) in the frame's time range."""
    grid = _full_range(frame, every).to_frame()
    if keys:
        grid = grid.join(frame.select(keys).unique(), how="cross")
    return (
        grid.join(frame, on=["time", *keys], how="left")
        .with_columns(pl.col(v).fill_null(0) for v in values)
        .select(frame.columns)
    )


def traffic_over_time(
    flows: FrameLike,
    *,
    every: str = "1h",
    by: str | None = None,
    metric: Metric = "bytes",
    n: int = 5,
) -> pl.DataFrame:
    """Totals per time bucket, optionally split by source, destination, NAT IP or gateway.

    Parameters
    ----------
    flows
        Flow records in FLOW_SCHEMA.
    every
        Bucket width, a polars duration (``"1m"``, ``"15m"``, ``"1h"``, ``"1d"``).
    by
        ``None``, ``"source"``, ``"destination"``, ``"nat_ip"`` or ``"gateway"`` (or the
        column names). The ``n`` largest by ``metric`` keep their name; the rest add
        up as ``"other"``.
    metric
        What decides which groups keep their name (see :func:`top_talkers`); every
        total is reported either way.
    n
        Groups kept by name when ``by`` is set.

    Returns
    -------
    pl.DataFrame
        ``time`` (bucket start, every bucket of the range, zeros where idle), the group
        column if any, and the totals; sorted by time then group.

    Examples
    --------
    >>> from datetime import datetime, UTC
    >>> import natlens
    >>> row = ["10.0.0.4", "140.82.121.4", "20.1.1.1", 1, 1, 0, 0, 100, 50, "GW"]
    >>> flows = pl.DataFrame(
    ...     [
    ...         [datetime(2025, 1, 1, 0, 5, tzinfo=UTC), *row],
    ...         [datetime(2025, 1, 1, 2, 0, tzinfo=UTC), *row],
    ...     ],
    ...     schema=natlens.FLOW_SCHEMA,
    ...     orient="row",
    ... )
    >>> traffic_over_time(flows, every="1h").get_column("bytes").to_list()
    [150, 0, 150]
    """
    _check_n(n)
    check_metric(metric)
    duration(every, "every")
    lazy = as_lazy(flows)
    bucket = pl.col("time").dt.truncate(every).alias("time")
    if by is None:
        frame = summarise(lazy, [bucket]).collect()
        return _fill_gaps(frame, every, (), TOTAL_COLUMNS).sort("time")
    column = group_column(by)
    keep = (
        summarise(lazy, [column])
        .sort([metric, "records", column], descending=[True, True, False], nulls_last=True)
        .head(n)
        .select(column)
    )
    label = pl.when(pl.col(column).is_in(keep.collect().get_column(column).implode())).then(
        pl.col(column)
    )
    frame = (
        lazy.with_columns(label.otherwise(pl.lit(OTHER)).alias(column))
        .pipe(summarise, [bucket, column])
        .collect()
    )
    return _fill_gaps(frame, every, (column,), TOTAL_COLUMNS).sort(
        ["time", pl.col(column) == OTHER, column]
    )


def nat_ip_usage(flows: FrameLike) -> pl.DataFrame:
    """How evenly a gateway spreads its traffic over its public (NAT) IPs.

    Returns
    -------
    pl.DataFrame
        One row per ``resource_id, nat_gateway_ip`` with its ``ip_version``: the
        totals, distinct ``flows`` (source/destination pairs), ``sources``,
        ``destinations``, the busiest minute (``peak_records_per_minute``), ``share``
        of the records of the gateway's IPs of that version and ``imbalance`` (records
        over their mean: 1.0 is even, 2.0 twice the fair share). A flow leaves through
        a public IP of its destination's family (IPv4 destinations, NAT64 ones such as
        ``64:ff9b::14.1.2.3`` included, through the IPv4 IPs; IPv6 through the IPv6
        IPs), so each version is compared apart: on a dual-stack gateway an IPv6 IP is
        never measured against IPv4 traffic. Sorted by gateway, version, then records
        descending.

    Examples
    --------
    >>> import natlens
    >>> flows = natlens.read_flowlogs(natlens.sample_data().flowlogs)
    >>> usage = nat_ip_usage(flows).select("nat_gateway_ip", "ip_version", pl.col("share").round(3))
    >>> usage.head(2).rows()
    [('20.61.15.40', 4, 0.501), ('20.61.15.41', 4, 0.499)]
    """
    lazy = as_lazy(flows)
    keys = ["resource_id", "nat_gateway_ip"]
    # The totals come from the per-minute counts the peak needs anyway: the records are
    # grouped once for both.
    totals = (
        summarise(lazy, [*keys, pl.col("time").dt.truncate("1m")])
        .group_by(keys)
        .agg(
            *[pl.col(c).sum() for c in TOTAL_COLUMNS],
            peak_records_per_minute=pl.col("records").max(),
        )
    )
    distinct = lazy.group_by(keys).agg(
        # distinct pairs through a 64-bit hash: ~2x faster, collisions negligible
        pl.struct("source_ip", "destination_ip").hash().n_unique().cast(pl.Int64).alias("flows"),
        pl.col("source_ip").n_unique().cast(pl.Int64).alias("sources"),
        pl.col("destination_ip").n_unique().cast(pl.Int64).alias("destinations"),
    )
    if rescannable(lazy):
        # One after the other: collected together, polars would cache the scan they
        # share, every record's columns in memory at once (over a month's Parquet store,
        # 2.7 GB instead of 0.6 GB, and slower).
        totals, distinct = totals.collect().lazy(), distinct.collect().lazy()
    # IPv4 (and NAT64) flows leave through the IPv4 IPs, IPv6 flows through the IPv6
    # IPs: compare like with like.
    family = ["resource_id", "ip_version"]
    return (
        totals.join(distinct, on=keys, how="left", nulls_equal=True)
        .with_columns(
            ip_version=pl.when(pl.col("nat_gateway_ip").str.contains(":", literal=True))
            .then(pl.lit(6, pl.UInt8))
            .otherwise(pl.lit(4, pl.UInt8))
        )
        .with_columns(
            share=pl.col("records") / pl.col("records").sum().over(family),
            imbalance=pl.col("records") / pl.col("records").mean().over(family),
        )
        .sort([*family, "records", "nat_gateway_ip"], descending=[False, False, True, False])
        .select(
            *keys,
            "ip_version",
            *TOTAL_COLUMNS,
            "flows",
            "sources",
            "destinations",
            "peak_records_per_minute",
            "share",
            "imbalance",
        )
        .collect()
    )


def growth(
    flows: FrameLike,
    *,
    period: Literal["1d", "1w"] | str = "1d",
    by: str | None = None,
    metric: Metric = "bytes",
) -> pl.DataFrame:
    """Period-over-period growth (day over day with ``"1d"``, week over week with ``"1w"``).

    Parameters
    ----------
    flows
        Flow records in FLOW_SCHEMA.
    period
        A polars duration; every period of the range is present (zero when idle).
    by
        ``None`` for the total, or ``"source"``/``"destination"`` (any group of
        :func:`traffic_over_time`) for one series per entity.
    metric
        What grows: ``bytes``, ``bytes_sent``, ``records``, ... (see :func:`top_talkers`).

    Returns
    -------
    pl.DataFrame
        ``period`` (start), the group column if any, ``value``, ``previous``,
        ``change``, ``change_pct`` (null when the previous period was zero), and per
        series ``trend`` (least-squares slope, units per period) and ``trend_pct``
        (slope over the series mean). Sorted by group then period.

    Examples
    --------
    >>> from datetime import datetime, UTC
    >>> import natlens
    >>> rows = [
    ...     [datetime(2025, 1, day, tzinfo=UTC), "10.0.0.4", "1.1.1.1", "20.1.1.1"]
    ...     + [1, 1, 0, 0, sent, 0, "GW"]
    ...     for day, sent in [(1, 100), (2, 150), (3, 300)]
    ... ]
    >>> flows = pl.DataFrame(rows, schema=natlens.FLOW_SCHEMA, orient="row")
    >>> growth(flows).select("value", "change_pct", "trend").rows()
    [(100, None, 100.0), (150, 50.0, 100.0), (300, 100.0, 100.0)]
    """
    check_metric(metric)
    duration(period, "period")
    lazy = as_lazy(flows)
    keys = [] if by is None else [group_column(by)]
    bucket = pl.col("time").dt.truncate(period).alias("time")
    aggregated = summarise(lazy, [bucket, *keys]).collect()
    filled = _fill_gaps(aggregated, period, keys, TOTAL_COLUMNS).rename({"time": "period"})
    over = keys or None
    index = pl.col("period").rank("dense").cast(pl.Float64)
    value = pl.col("value").cast(pl.Float64)

    def windowed(expr: pl.Expr) -> pl.Expr:
        return expr.over(over) if over else expr

    slope = windowed(
        ((index - windowed(index.mean())) * (value - windowed(value.mean()))).sum()
    ) / (windowed(((index - windowed(index.mean())) ** 2).sum()))
    return (
        filled.select("period", *keys, value=pl.col(metric))
        .sort([*keys, "period"])
        .with_columns(previous=windowed(pl.col("value").shift(1)))
        .with_columns(change=pl.col("value") - pl.col("previous"))
        .with_columns(
            change_pct=pl.when(pl.col("previous") > 0).then(
                100.0 * pl.col("change") / pl.col("previous")
            ),
            trend=pl.when(windowed(pl.len()) > 1).then(slope).otherwise(0.0),
        )
        .with_columns(
            trend_pct=pl.when(windowed(value.mean()) > 0).then(
                100.0 * pl.col("trend") / windowed(value.mean())
            )
        )
    )


def flow_edges(flows: FrameLike, *, metric: Metric = "bytes", n: int | None = 8) -> pl.DataFrame:
    """Who leaves through which NAT IP to where: one row per source, NAT IP and destination.

    The ``n`` largest sources and the ``n`` largest destinations by ``metric`` keep their
    address; the others are folded into ``"other"`` on their own side (a small source
    talking to a top destination is ``other -> nat IP -> destination``). Every NAT IP
    keeps its address (a gateway has at most 16). Nothing is dropped: the totals of the
    rows add up to the totals of ``flows``.

    Parameters
    ----------
    flows
        Flow records in FLOW_SCHEMA.
    metric
        What ranks the sources and destinations (see :func:`top_talkers`); every total
        is reported either way.
    n
        Sources and destinations kept by address (``None``: all).

    Returns
    -------
    pl.DataFrame
        ``source_ip``, ``nat_gateway_ip``, ``destination_ip`` and the totals
        (``bytes_sent`` ... ``records``), largest ``metric`` first.

    Examples
    --------
    >>> from datetime import datetime, UTC
    >>> import natlens
    >>> t = datetime(2025, 1, 1, tzinfo=UTC)
    >>> flows = pl.DataFrame(
    ...     [
    ...         [t, "10.0.0.4", "140.82.121.4", "20.1.1.1", 9, 20, 0, 0, 900, 20000, "GW"],
    ...         [t, "10.0.0.5", "140.82.121.4", "20.1.1.2", 1, 2, 0, 0, 100, 2000, "GW"],
    ...         [t, "10.0.0.5", "1.1.1.1", "20.1.1.1", 1, 1, 0, 0, 80, 120, "GW"],
    ...     ],
    ...     schema=natlens.FLOW_SCHEMA,
    ...     orient="row",
    ... )
    >>> edges = flow_edges(flows, n=1)
    >>> for row in edges.select("source_ip", "nat_gateway_ip", "destination_ip", "bytes").rows():
    ...     print(*row)
    10.0.0.4 20.1.1.1 140.82.121.4 20900
    other 20.1.1.2 140.82.121.4 2100
    other 20.1.1.1 other 200
    """
    _check_n(n)
    check_metric(metric)
    lazy = as_lazy(flows)

    def folded(column: str) -> pl.Expr:
        if n is None:
            return pl.col(column)
        leaders = (
            summarise(lazy, [column])
            .sort([metric, column], descending=[True, False], nulls_last=True)
            .head(n)
            .select(column)
            .collect()
            .get_column(column)
        )
        kept = pl.col(column).is_in(leaders.implode())
        return pl.when(kept).then(pl.col(column)).otherwise(pl.lit(OTHER)).alias(column)

    keys = ["source_ip", "nat_gateway_ip", "destination_ip"]
    return (
        lazy.with_columns(folded("source_ip"), folded("destination_ip"))
        .pipe(summarise, keys)
        .sort([metric, *keys], descending=[True, False, False, False], nulls_last=True)
        .collect()
    )
