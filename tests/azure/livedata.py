"""Synthetic data and helpers shared by the live-source tests (fixtures are in conftest)."""

from __future__ import annotations

import random
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import polars as pl
from loopback import Table

from natlens import FLOW_SCHEMA, METRICS_SCHEMA

JS = Path(__file__).resolve().parent.parent / "js"
START = datetime(2025, 11, 4, 0, 0, tzinfo=UTC)
HOURS = 36

SUBS = ("11111111-1111-1111-1111-111111111111", "22222222-2222-2222-2222-222222222222")
GATEWAYS = (
    f"/SUBSCRIPTIONS/{SUBS[0].upper()}/RESOURCEGROUPS/RG-NET/PROVIDERS/MICROSOFT.NETWORK/NATGATEWAYS/NG-WEU-1",
    f"/SUBSCRIPTIONS/{SUBS[0].upper()}/RESOURCEGROUPS/RG-NET/PROVIDERS/MICROSOFT.NETWORK/NATGATEWAYS/NG-WEU-2",
    f"/SUBSCRIPTIONS/{SUBS[1].upper()}/RESOURCEGROUPS/RG-APP/PROVIDERS/MICROSOFT.NETWORK/NATGATEWAYS/NG-APP",
)
NAT_IPS = ("203.0.113.10", "203.0.113.11", "198.51.100.7")
SOURCES = ("10.0.0.4", "10.0.0.5", "10.0.1.10", "10.0.2.20", "2001:db8::10", "10.0.3.7")
DESTINATIONS = (
    "20.60.1.10",
    "13.107.42.14",
    "140.82.121.4",
    "52.239.148.1",
    "2620:1ec:c11::200",
    "8.8.8.8",
    "104.16.0.1",
    "151.101.1.69",
)

LA_TYPES = {
    "TenantId": "string",
    "TimeGenerated": "datetime",
    "SourceIp": "string",
    "DestinationIp": "string",
    "NatGatewayIp": "string",
    "PacketsSent": "long",
    "PacketsReceived": "long",
    "PacketsSentDropped": "long",
    "PacketsReceivedDropped": "long",
    "BytesSent": "long",
    "BytesReceived": "long",
    "SourceSystem": "string",
    "Type": "string",
    "_ResourceId": "string",
    "_SubscriptionId": "string",
    "_BilledSize": "real",
    "_IsBillable": "string",
}
# The other spelling seen in Microsoft's pages.
LA_TYPES_ALT = {
    {"SourceIp": "SourceIP", "DestinationIp": "DestinationIP", "NatGatewayIp": "NatGatewayIP"}.get(
        k, {"PacketsSent": "packetsSent", "_ResourceId": "_resourceId"}.get(k, k)
    ): v
    for k, v in LA_TYPES.items()
}


def make_flows(seed: int = 7, hours: int = HOURS) -> pl.DataFrame:
    """Deterministic flow records in FLOW_SCHEMA: ~10 per minute over three gateways."""
    rng = random.Random(seed)
    rows: list[dict[str, Any]] = []
    for minute in range(hours * 60):
        t = START + timedelta(minutes=minute)
        seen: set[tuple[str, str, str]] = set()
        for _ in range(rng.randint(6, 14)):
            g = rng.randrange(len(GATEWAYS))
            key = (rng.choice(SOURCES), rng.choice(DESTINATIONS), NAT_IPS[g])
            if key in seen:
                continue
            seen.add(key)
            sent = rng.randint(1, 400)
            dropped = rng.choice([0, 0, 0, rng.randint(1, 9)])
            rows.append(
                {
                    "time": t,
                    "source_ip": key[0],
                    "destination_ip": key[1],
                    "nat_gateway_ip": key[2],
                    "packets_sent": sent,
                    "packets_received": None if rng.random() < 0.02 else sent + rng.randint(0, 50),
                    "packets_sent_dropped": dropped,
                    "packets_received_dropped": 0,
                    "bytes_sent": sent * rng.randint(60, 1400),
                    "bytes_received": sent * rng.randint(60, 1400),
                    "resource_id": GATEWAYS[g],
                }
            )
    return pl.DataFrame(rows, schema=FLOW_SCHEMA)


def la_table(flows: pl.DataFrame, types: dict[str, str], name: str) -> Table:
    """The flows as a workspace holds them: its column names, lower-case ids, upper IPv6."""
    names = [k for k in types if k not in ("TenantId", "SourceSystem", "Type")]
    names = [n for n in names if not n.startswith(("_Sub", "_Bil", "_IsB"))]
    rename = dict(zip(FLOW_SCHEMA.names(), names, strict=True))
    frame = flows.rename(rename).with_columns(
        pl.col(rename["source_ip"]).str.to_uppercase(),
        pl.col(rename["resource_id"]).str.to_lowercase(),
        pl.lit("00000000-0000-0000-0000-00000000aaaa").alias("TenantId"),
        pl.lit("Azure").alias("SourceSystem"),
        pl.lit(name).alias("Type"),
        pl.col(rename["resource_id"]).str.split("/").list.get(2).alias("_SubscriptionId"),
        pl.lit(310.0).alias("_BilledSize"),
        pl.lit("True").alias("_IsBillable"),
    )
    return Table(name, types, frame.select(list(types)))


def kql_schema(types: dict[str, str]) -> str:
    return "(" + ", ".join(f"{k}:{v}" for k, v in types.items()) + ")"


class StaticToken:
    """A TokenCredential handing out a fixed bearer token (the loopback checks it is sent)."""

    token = "loopback-test-token"

    def get_token(self, *scopes: str, **kwargs: Any) -> Any:
        from azure.core.credentials import AccessToken

        return AccessToken(self.token, int(time.time()) + 3600)


def make_metrics(hours: int = 3) -> pl.DataFrame:
    """Deterministic gateway metrics for the three gateways, in METRICS_SCHEMA."""
    rng = random.Random(11)
    rows: list[tuple[Any, ...]] = []
    for minute in range(hours * 60):
        t = START + timedelta(minutes=minute)
        for rid in GATEWAYS:
            rows.append(
                (t, rid, "DatapathAvailability", None, None, None, rng.choice([100.0, 99.5]))
            )
            rows.append((t, rid, "PacketDropCount", None, None, None, float(rng.randint(0, 3))))
            for proto in ("6", "17"):
                rows.append(
                    (t, rid, "TotalConnectionCount", proto, None, None, float(rng.randint(0, 90)))
                )
                for state in ("Attempted", "Failed"):
                    value = float(rng.randint(0, 50) if state == "Attempted" else rng.randint(0, 1))
                    rows.append((t, rid, "SNATConnectionCount", proto, None, state, value))
                for direction in ("In", "Out"):
                    value = float(rng.randint(0, 10**6))
                    rows.append((t, rid, "ByteCount", proto, direction, None, value))
                    rows.append((t, rid, "PacketCount", proto, direction, None, value // 700))
    return pl.DataFrame(rows, schema=METRICS_SCHEMA, orient="row")
