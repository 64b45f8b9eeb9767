"""NAT gateway platform metrics from Azure Monitor, as a tidy METRICS_SCHEMA frame."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import timedelta
from typing import TYPE_CHECKING, Any

import polars as pl

from natlens._schema import METRICS_SCHEMA, PROTOCOL_NAMES
from natlens._typing import TimeLike
from natlens.azure._kql import range_bounds

if TYPE_CHECKING:
    from azure.core.credentials import TokenCredential

__all__ = ["GATEWAY_METRICS", "read_gateway_metrics"]

_NAMESPACE = "Microsoft.Network/natGateways"

# REST name -> (aggregation, dimensions split into series).
GATEWAY_METRICS: dict[str, tuple[str, tuple[str, ...]]] = {
    "DatapathAvailability": ("Average", ()),
    "SNATConnectionCount": ("Total", ("Protocol", "ConnectionState")),
    "TotalConnectionCount": ("Total", ("Protocol",)),
    "PacketDropCount": ("Total", ()),
    "ByteCount": ("Total", ("Protocol", "Direction")),
    "PacketCount": ("Total", ("Protocol", "Direction")),
}
"""The NAT gateway metrics natlens reads: documented aggregation and dimensions."""

_DEFAULT = (
    "DatapathAvailability",
    "SNATConnectionCount",
    "TotalConnectionCount",
    "PacketDropCount",
    "ByteCount",
)
_COLUMNS = {"Protocol": "protocol", "Direction": "direction", "ConnectionState": "connection_state"}
_MARK = "/providers/microsoft.insights/metrics/"


def _subscription(resource_id: str) -> str:
    parts = resource_id.strip("/").split("/")
    if (
        len(parts) < 8
        or parts[0].lower() != "subscriptions"
        or "natgateways" not in (p.lower() for p in parts)
    ):
        raise ValueError(
            f"{resource_id!r} is not a NAT gateway resource id "
            "(/subscriptions/<sub>/resourceGroups/<rg>/providers/Microsoft.Network/natGateways/<name>)"
        )
    return parts[1].lower()


def _arm_id(resource_id: str) -> str:
    """The id with ``/subscriptions/`` in lower case, as the metrics SDK requires."""
    parts = resource_id.strip().strip("/").split("/")
    return "/" + "/".join(["subscriptions", *parts[1:]])


def read_gateway_metrics(
    resource_ids: Sequence[str] | str,
    start: TimeLike,
    end: TimeLike,
    *,
    endpoint: str,
    credential: TokenCredential | None = None,
    metrics: Sequence[str] = _DEFAULT,
    interval: timedelta = timedelta(minutes=1),
) -> pl.DataFrame:
    """Read NAT gateway metrics for one or more gateways as a tidy frame.

    One row per time, gateway, metric and dimension value, exactly
    :data:`natlens.METRICS_SCHEMA` (the shape of the shipped ``metrics.csv.gz`` as
    :func:`natlens.read_metrics` reads it: upper-case ids, protocols ``TCP``/``UDP``), so
    ``diagnose`` and the notebooks take it.

    Parameters
    ----------
    resource_ids
        NAT gateway ARM ids; gateways in one region (one metrics endpoint). Ids of
        several subscriptions are batched per subscription.
    start, end
        The range (naive is UTC); ``start`` included, ``end`` excluded.
    endpoint
        The region's metrics endpoint, e.g. ``https://westeurope.metrics.monitor.azure.com``.
    credential
        An azure-identity credential; default ``DefaultAzureCredential()``.
    metrics
        REST names among :data:`GATEWAY_METRICS`; default all but PacketCount.
    interval
        The time grain, default one minute.

    Examples
    --------
    ::

        m = natlens.read_gateway_metrics(
            gateway_id,
            "2025-11-04",
            "2025-11-05",
            endpoint="https://westeurope.metrics.monitor.azure.com",
        )
        m.filter(metric="SNATConnectionCount", connection_state="Failed")
    """
    try:
        from azure.monitor.querymetrics import MetricsClient
    except ImportError as err:  # pragma: no cover - depends on the environment
        raise ImportError("metrics need the azure extra: pip install 'natlens[azure]'") from err
    ids = [resource_ids] if isinstance(resource_ids, str) else list(resource_ids)
    if not ids:
        raise ValueError("resource_ids is empty")
    low, high = range_bounds(start, end)
    unknown = [m for m in metrics if m not in GATEWAY_METRICS]
    if unknown:
        raise ValueError(f"metrics: unknown {unknown}; known: {sorted(GATEWAY_METRICS)}")
    by_subscription: dict[str, list[str]] = {}
    for rid in ids:
        by_subscription.setdefault(_subscription(rid), []).append(_arm_id(rid))
    if credential is None:
        from azure.identity import DefaultAzureCredential

        credential = DefaultAzureCredential()
    extra: dict[str, Any] = {}
    if endpoint.startswith("http://"):
        extra["enforce_https"] = False
    client = MetricsClient(endpoint.rstrip("/"), credential)
    rows: list[tuple[Any, ...]] = []
    with client:
        for group in by_subscription.values():
            for name in metrics:
                aggregation, dimensions = GATEWAY_METRICS[name]
                results = client.query_resources(
                    resource_ids=group,
                    metric_namespace=_NAMESPACE,
                    metric_names=[name],
                    timespan=(low, high),
                    granularity=interval,
                    aggregations=[aggregation],
                    filter=" and ".join(f"{d} eq '*'" for d in dimensions) or None,
                    **extra,
                )
                for position, result in enumerate(results):
                    for metric in result.metrics:
                        rid = _resource_of(metric.id) or group[position]
                        for series in metric.timeseries:
                            dims = {
                                _COLUMNS[k]: v
                                for k, v in series.metadata_values.items()
                                if k in _COLUMNS
                            }
                            for point in series.data:
                                amount = point.average if aggregation == "Average" else point.total
                                rows.append(
                                    (
                                        point.timestamp,
                                        rid.upper(),
                                        metric.name,
                                        PROTOCOL_NAMES.get(
                                            dims.get("protocol") or "", dims.get("protocol")
                                        ),
                                        dims.get("direction"),
                                        dims.get("connection_state"),
                                        amount,
                                    )
                                )
    frame = pl.DataFrame(
        rows,
        schema=METRICS_SCHEMA,
        orient="row",
        strict=False,
    )
    return frame.sort("time", "resource_id", "metric", "protocol", "direction", "connection_state")


def _resource_of(metric_id: str | None) -> str | None:
    if not metric_id:
        return None
    cut = metric_id.lower().find(_MARK)
    return metric_id[:cut] if cut > 0 else None
