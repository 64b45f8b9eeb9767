"""Gateway health from its platform metrics: the first step of every troubleshooting path.

:func:`gateway_health` is the one computation of a gateway's health numbers;
:func:`natlens.diagnose` asks it for its health step and shares its reading of the
metrics (:func:`_metrics_rows`, :func:`_gateway_filter`, :func:`_snat_failed_minutes`),
so a number seen in both can never disagree. :func:`natlens.charts.chart_metrics` draws
the availability windows of :func:`_availability_windows` against
:data:`AVAILABILITY_THRESHOLD`, the numbers gateway_health judges.
"""

from __future__ import annotations

import decimal

import polars as pl

from natlens._schema import METRICS_SCHEMA
from natlens._time import time_filter, time_range
from natlens._typing import FrameLike, Targets, TimeLike

__all__ = ["gateway_health", "percent_text"]

_TIME = METRICS_SCHEMA["time"]

AVAILABILITY_THRESHOLD = 90.0
"""DatapathAvailability (percent) under which, over 15 minutes, the gateway is unhealthy."""

AVAILABILITY_WINDOW = "15m"
"""The windows DatapathAvailability is averaged over (Microsoft's alert rule)."""

HEALTH_SCHEMA = pl.Schema(
    {
        "resource_id": pl.String(),
        "status": pl.String(),
        "availability_lowest": pl.Float64(),
        "availability_lowest_at": _TIME,
        "availability_windows_below": pl.Int64(),
        "snat_failed": pl.Float64(),
        "snat_failed_minutes": pl.Int64(),
        "snat_failed_first": _TIME,
        "snat_failed_last": _TIME,
        "snat_failed_peak_per_minute": pl.Float64(),
        "packets_dropped": pl.Float64(),
    }
)
"""The columns :func:`gateway_health` returns."""


def _metrics_frame(metrics: FrameLike) -> pl.LazyFrame:
    """The metrics' METRICS_SCHEMA columns, lazily, resource ids in upper case.

    Raises
    ------
    TypeError
        If ``metrics`` is not a polars frame.
    ValueError
        If a METRICS_SCHEMA column is missing.
    """
    lazy = metrics.lazy() if isinstance(metrics, pl.DataFrame) else metrics
    if not isinstance(lazy, pl.LazyFrame):
        raise TypeError(f"metrics: expected a polars frame, got {type(metrics).__name__}")
    missing = [c for c in METRICS_SCHEMA.names() if c not in lazy.collect_schema().names()]
    if missing:
        raise ValueError(f"metrics: missing column(s) {missing}; expected natlens.METRICS_SCHEMA")
    return lazy.select(METRICS_SCHEMA.names()).with_columns(
        pl.col("resource_id").str.to_uppercase()
    )


def _metrics_rows(metrics: FrameLike, start: TimeLike | None, end: TimeLike | None) -> pl.DataFrame:
    """The metrics rows of the window ``[start, end)``, collected, each naming its gateway.

    Raises
    ------
    ValueError
        As :func:`_metrics_frame`, for an invalid ``start``/``end``, and for a row in
        the window without a ``resource_id``: health and SNAT failures are per gateway,
        and such a row would be lost or counted for a gateway it may not belong to.
    """
    lazy = _metrics_frame(metrics)
    window = time_filter(*time_range(start, end))
    rows = (lazy if window is None else lazy.filter(window)).collect()
    nameless = rows.filter(pl.col("resource_id").is_null())
    if nameless.height:
        raise ValueError(
            f"metrics: {nameless.height:,} row(s) name no gateway (empty resource_id), the "
            f"first a {nameless.item(0, 'metric')} value at {nameless.item(0, 'time')}; "
            "gateway health and SNAT failures are per gateway: give every row its NAT "
            "gateway's resource id"
        )
    return rows


def _gateway_filter(gateways: Targets) -> pl.Expr:
    """Rows of the given gateways: resource ids, or gateway names (the id's last part).

    Resource ids are compared case-insensitively, as Azure does.

    Raises
    ------
    ValueError
        If ``gateways`` is empty or holds something other than non-blank text.
    """
    names = [gateways] if isinstance(gateways, str) else list(gateways)
    if not names or not all(isinstance(g, str) and g.strip().strip("/") for g in names):
        raise ValueError(
            f"gateways: expected NAT gateway resource ids or names, got {gateways!r}; "
            "pass None for any"
        )
    wanted = [g.strip().strip("/").upper() for g in names]
    rid = pl.col("resource_id").str.strip_chars("/").str.to_uppercase()
    ids = [g for g in wanted if "/" in g]
    bare = [g for g in wanted if "/" not in g]
    return rid.is_in(ids) | rid.str.split("/").list.last().is_in(bare)


def _snat_failed_minutes(frame: pl.DataFrame) -> pl.DataFrame:
    """SNATConnectionCount ``Failed`` per gateway and minute: ``resource_id, time, value``.

    Every dimension value (protocol) of a minute is summed; minutes without a failed
    row are absent, minutes whose rows say 0 are kept with 0.
    """
    return (
        frame.lazy()
        .filter(pl.col("metric") == "SNATConnectionCount")
        .filter(pl.col("connection_state").str.to_lowercase() == "failed")
        .group_by("resource_id", pl.col("time").dt.truncate("1m"))
        .agg(value=pl.col("value").sum())
        .collect()
    )


def _availability_windows(frame: pl.DataFrame) -> pl.DataFrame:
    """DatapathAvailability per gateway and 15-minute window: ``resource_id, time, value``.

    The one computation of the windows :func:`gateway_health` judges and
    :func:`natlens.charts.chart_metrics` draws. A minute is averaged first (a minute
    read twice, from overlapping exports, counts once), then the minutes of each
    quarter hour of the clock that are in ``frame``. Sorted by gateway and time.

    Examples
    --------
    >>> from datetime import datetime, UTC
    >>> rows = pl.DataFrame(
    ...     {
    ...         "resource_id": ["/S/NATGATEWAYS/GW"] * 3,
    ...         "metric": ["DatapathAvailability"] * 3,
    ...         "time": [datetime(2026, 11, 9, 10, m, tzinfo=UTC) for m in (0, 0, 20)],
    ...         "value": [0.0, 0.0, 100.0],
    ...     }
    ... )
    >>> [(f"{t:%H:%M}", v) for t, v in _availability_windows(rows).select("time", "value").rows()]
    [('10:00', 0.0), ('10:15', 100.0)]
    """
    return (
        frame.lazy()
        .filter(pl.col("metric") == "DatapathAvailability")
        .group_by("resource_id", pl.col("time").dt.truncate("1m"))
        .agg(pl.col("value").mean())
        .group_by("resource_id", pl.col("time").dt.truncate(AVAILABILITY_WINDOW))
        .agg(pl.col("value").mean())
        .sort("resource_id", "time")
        .collect()
    )


def percent_text(value: float) -> str:
    """An availability for people: two decimals, cut down, never rounded up.

    A window at 89.996% is below the 90% alert line; ``f"{value:.2f}"`` would print it
    as 90.00%, which reads as not below.

    Examples
    --------
    >>> percent_text(89.996), percent_text(99.82), percent_text(100.0)
    ('89.99%', '99.82%', '100.00%')
    """
    cut = decimal.Decimal(repr(value)).quantize(decimal.Decimal("0.01"), decimal.ROUND_FLOOR)
    return f"{cut}%"


def gateway_health(
    metrics: FrameLike,
    *,
    gateways: Targets | None = None,
    start: TimeLike | None = None,
    end: TimeLike | None = None,
) -> pl.DataFrame:
    """Health of each NAT gateway: datapath availability, SNAT failures and drops.

    The gateway's own view, from its Azure Monitor metrics (:func:`natlens.read_metrics`),
    of what the flow log cannot show: connections that were never established.

    - DatapathAvailability averaged over 15-minute windows (Microsoft's alert rule): the
      lowest window and how many fell below 90%;
    - SNATConnectionCount with connection_state ``Failed``: connection attempts refused
      because the gateway's SNAT ports (64,512 per public IP) or connection limits ran
      out; total, minutes with failures, the first and last of them and the worst minute;
    - PacketDropCount: packets the gateway dropped.

    :func:`natlens.diagnose` reports this frame as the evidence of its health step.

    Parameters
    ----------
    metrics
        Gateway metrics in :data:`natlens.METRICS_SCHEMA`; every row names its gateway.
    gateways
        Gateway resource ids or names (the id's last part) to keep; ``None`` for all.
    start, end
        Time window ``[start, end)`` (datetime, date or ISO text; naive is UTC);
        ``None`` leaves that side open. The 15-minute windows are quarter hours of the
        clock: one cut by ``start`` or ``end`` averages the minutes inside.

    Returns
    -------
    pl.DataFrame
        One row per gateway (``resource_id``) in the metrics of the window, sorted by
        it: ``status`` (``problem`` when a window fell below 90% or a connection failed,
        ``unknown`` without DatapathAvailability, else ``ok``), ``availability_lowest``
        (percent) and the start of that window ``availability_lowest_at``,
        ``availability_windows_below``, ``snat_failed``, ``snat_failed_minutes``,
        ``snat_failed_first``, ``snat_failed_last`` (the start of the last failing
        minute), ``snat_failed_peak_per_minute`` and ``packets_dropped``.
        A metric absent from the data gives nulls.

    Raises
    ------
    ValueError
        If a METRICS_SCHEMA column is missing, a row has no ``resource_id``, or
        ``gateways``, ``start`` or ``end`` is invalid (each named).

    Examples
    --------
    >>> import natlens
    >>> metrics = natlens.read_metrics(natlens.sample_data().metrics)
    >>> health = gateway_health(metrics, gateways="natgw-eng-weu")
    >>> row = health.row(0, named=True)
    >>> row["status"], int(row["snat_failed"]), row["snat_failed_minutes"]
    ('problem', 31478, 35)
    >>> f"{row['snat_failed_first']:%H:%M} {row['availability_lowest']:.1f}"
    '10:07 99.8'
    >>> late = gateway_health(metrics, gateways="natgw-eng-weu", start="2026-11-11T10:30")
    >>> f"{late.item(0, 'snat_failed_first'):%H:%M}", late.item(0, "snat_failed_minutes")
    ('10:30', 12)
    """
    frame = _metrics_rows(metrics, start, end)
    ids = frame.select(pl.col("resource_id").unique())
    if gateways is not None:
        ids = ids.filter(_gateway_filter(gateways))
        frame = frame.filter(pl.col("resource_id").is_in(ids.get_column("resource_id").to_list()))

    availability = (
        _availability_windows(frame)
        .sort("resource_id", "value", "time")
        .group_by("resource_id", maintain_order=True)
        .agg(
            availability_lowest=pl.col("value").first(),
            availability_lowest_at=pl.col("time").first(),
            availability_windows_below=(pl.col("value") < AVAILABILITY_THRESHOLD)
            .sum()
            .cast(pl.Int64),
        )
    )
    failing = pl.col("value") > 0
    snat = (
        _snat_failed_minutes(frame)
        .group_by("resource_id")
        .agg(
            snat_failed=pl.col("value").sum(),
            snat_failed_minutes=failing.sum().cast(pl.Int64),
            snat_failed_first=pl.col("time").filter(failing).min(),
            snat_failed_last=pl.col("time").filter(failing).max(),
            snat_failed_peak_per_minute=pl.col("value").max(),
        )
    )
    drops = (
        frame.filter(pl.col("metric") == "PacketDropCount")
        .group_by("resource_id")
        .agg(packets_dropped=pl.col("value").sum())
    )
    joined = ids
    for part in (availability, snat, drops):
        joined = joined.join(part, on="resource_id", how="left")
    problem = (pl.col("availability_windows_below").fill_null(0) > 0) | (
        pl.col("snat_failed").fill_null(0) > 0
    )
    return (
        joined.with_columns(
            status=pl.when(problem)
            .then(pl.lit("problem"))
            .when(pl.col("availability_lowest").is_null())
            .then(pl.lit("unknown"))
            .otherwise(pl.lit("ok"))
        )
        .sort("resource_id")
        .select(HEALTH_SCHEMA.names())
        .cast(HEALTH_SCHEMA)
    )
