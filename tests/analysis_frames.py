"""Small FLOW_SCHEMA frames for the analysis tests (issue 3), built row by row."""

from __future__ import annotations

import datetime as dt

import polars as pl

import natlens

T0 = dt.datetime(2026, 11, 2, tzinfo=dt.UTC)  # a Monday
GW = "/SUBSCRIPTIONS/S/RESOURCEGROUPS/RG/PROVIDERS/MICROSOFT.NETWORK/NATGATEWAYS/GW1"


def at(minutes: float = 0, *, hours: float = 0, days: float = 0) -> dt.datetime:
    """T0 plus an offset."""
    return T0 + dt.timedelta(minutes=minutes, hours=hours, days=days)


def flow(
    time: dt.datetime,
    source: str = "10.0.0.4",
    destination: str = "140.82.121.4",
    nat: str = "20.1.1.1",
    *,
    sent: int | None = 0,
    received: int | None = 0,
    packets_sent: int | None = 1,
    packets_received: int | None = 1,
    sent_dropped: int | None = 0,
    received_dropped: int | None = 0,
    gateway: str = GW,
) -> dict[str, object]:
    """One flow record as a dict in FLOW_SCHEMA order."""
    return {
        "time": time,
        "source_ip": source,
        "destination_ip": destination,
        "nat_gateway_ip": nat,
        "packets_sent": packets_sent,
        "packets_received": packets_received,
        "packets_sent_dropped": sent_dropped,
        "packets_received_dropped": received_dropped,
        "bytes_sent": sent,
        "bytes_received": received,
        "resource_id": gateway,
    }


def frame(*rows: dict[str, object]) -> pl.DataFrame:
    """A FLOW_SCHEMA frame of ``rows``."""
    return pl.DataFrame(list(rows), schema=natlens.FLOW_SCHEMA)


def metrics(*rows: tuple[dt.datetime, str, str | None, float]) -> pl.DataFrame:
    """A METRICS_SCHEMA frame of ``(time, metric, connection_state, value)`` rows."""
    return pl.DataFrame(
        [
            {
                "time": time,
                "resource_id": GW,
                "metric": metric,
                "protocol": "6" if metric == "SNATConnectionCount" else None,
                "direction": None,
                "connection_state": state,
                "value": value,
            }
            for time, metric, state, value in rows
        ],
        schema=natlens.METRICS_SCHEMA,
    )
