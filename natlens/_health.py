"""Gateway health from its platform metrics: the first step of every troubleshooting path."""

from __future__ import annotations

import polars as pl

from natlens._schema import METRICS_SCHEMA
from natlens._troubleshoot import AVAILABILITY_THRESHOLD, _gateway_filter, _metrics_frame
from natlens._typing import FrameLike, Targets

__all__ = ["gateway_health"]

_TIME = METRICS_SCHEMA["time"]

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


def gateway_health(metrics: FrameLike, *, gateways: Targets | None = None) -> pl.DataFrame:
    """Health of each NAT gateway: datapath availability, SNAT failures and drops.

    The gateway's own view, from its Azure Monitor metrics (:func:`natlens.read_metrics`),
    of what the flow log cannot show: connections that were never established.

    - DatapathAvailability averaged over 15-minute windows (Microsoft's alert rule): the
      lowest window and how many fell below 90%;
    - SNATConnectionCount with connection_state ``Failed``: connection attempts refused
      because the gateway's SNAT ports (64,512 per public IP) or connection limits ran
      out; total, minutes with failures, the first and last of them and the worst minute;
    - PacketDropCount: packets the gateway dropped.

    Parameters
    ----------
    metrics
        Gateway metrics in :data:`natlens.METRICS_SCHEMA`.
    gateways
        Gateway resource ids or names (the id's last part) to keep; ``None`` for all.

    Returns
    -------
    pl.DataFrame
        One row per gateway (``resource_id``) in the metrics, sorted by it: ``status``
        (``problem`` when a window fell below 90% or a connection failed, ``unknown``
        without DatapathAvailability, else ``ok``), ``availability_lowest`` (percent)
        and the start of that window ``availability_lowest_at``,
        ``availability_windows_below``, ``snat_failed``, ``snat_failed_minutes``,
        ``snat_failed_first``, ``snat_failed_last`` (the start of the last failing
        minute), ``snat_failed_peak_per_minute`` and ``packets_dropped``.
        A metric absent from the data gives nulls.

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
    """
    frame = _metrics_frame(metrics)
    assert frame is not None  # metrics is a frame, never None here
    if gateways is not None:
        frame = frame.filter(_gateway_filter(gateways))
    ids = frame.select(pl.col("resource_id").drop_nulls().unique().sort())

    availability = (
        frame.filter(pl.col("metric") == "DatapathAvailability")
        .drop_nulls("resource_id")
        .sort("time")
        .group_by_dynamic("time", every="15m", group_by="resource_id")
        .agg(value=pl.col("value").mean())
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
    failed_minutes = (
        frame.filter(
            (pl.col("metric") == "SNATConnectionCount")
            & (pl.col("connection_state").str.to_lowercase() == "failed")
        )
        .group_by("resource_id", pl.col("time").dt.truncate("1m"))
        .agg(value=pl.col("value").sum())
    )
    snat = failed_minutes.group_by("resource_id").agg(
        snat_failed=pl.col("value").sum(),
        snat_failed_minutes=(pl.col("value") > 0).sum().cast(pl.Int64),
        snat_failed_first=pl.col("time").filter(pl.col("value") > 0).min(),
        snat_failed_last=pl.col("time").filter(pl.col("value") > 0).max(),
        snat_failed_peak_per_minute=pl.col("value").max(),
    )
    drops = (
        frame.filter(pl.col("metric") == "PacketDropCount")
        .group_by("resource_id")
        .agg(packets_dropped=pl.col("value").sum())
    )
    joined = ids
    for part in (availability, snat, drops):
        joined = joined.join(part, on="resource_id", how="left", nulls_equal=True)
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
        .select(HEALTH_SCHEMA.names())
        .cast(HEALTH_SCHEMA)
    )
