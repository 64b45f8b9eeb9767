"""Fixtures for the live-source tests: node tools, the loopback service, synthetic data."""

from __future__ import annotations

import fcntl
import hashlib
import json
import random
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import polars as pl
import pytest
from loopback import LoopbackServer, Table

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


@pytest.fixture(scope="session")
def node_tools() -> Path:
    """``tests/js`` with its pinned npm packages installed (``npm ci`` once, under a lock)."""
    if shutil.which("node") is None or shutil.which("npm") is None:
        pytest.fail("node and npm are needed for the Azure tests (Azurite, KQL analyzer)")
    # The lock lives outside the tree: pytest-xdist workers install once, together.
    digest = hashlib.sha1(str(JS).encode()).hexdigest()[:12]
    lock_path = Path(tempfile.gettempdir()) / f"natlens-npm-{digest}.lock"
    with open(lock_path, "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        marker = JS / "node_modules" / ".package-lock.json"
        if not marker.exists():
            subprocess.run(
                ["npm", "ci", "--no-audit", "--no-fund", "--ignore-scripts"],
                cwd=JS,
                check=True,
                capture_output=True,
                timeout=300,
            )
    return JS


@pytest.fixture(scope="session")
def kql_check(node_tools: Path) -> Any:
    """Run KQL texts through Microsoft's analyzer against the flow table (both spellings)."""

    def check(queries: list[str], types: dict[str, str] | None = None) -> list[dict[str, Any]]:
        tables = {
            "NatGatewayFlowlogsV1": kql_schema(types or LA_TYPES),
            "NatGatewayFlowLogsV1": kql_schema(LA_TYPES_ALT),
        }
        done = subprocess.run(
            ["node", str(node_tools / "kql_check.js")],
            input=json.dumps({"tables": tables, "queries": queries}),
            capture_output=True,
            text=True,
            check=True,
            timeout=120,
        )
        results: list[dict[str, Any]] = json.loads(done.stdout)
        return results

    return check


@pytest.fixture(scope="session")
def flows() -> pl.DataFrame:
    return make_flows()


@pytest.fixture(scope="session")
def _server() -> Iterator[LoopbackServer]:
    server = LoopbackServer()
    yield server
    server.close()


@pytest.fixture
def loopback(_server: LoopbackServer, flows: pl.DataFrame) -> LoopbackServer:
    """The loopback service holding the flows in ``NatGatewayFlowlogsV1``, knobs reset."""
    _server.reset()
    _server.state.tables = {
        "NatGatewayFlowlogsV1": la_table(flows, LA_TYPES, "NatGatewayFlowlogsV1")
    }
    return _server


class StaticToken:
    """A TokenCredential handing out a fixed bearer token (the loopback checks it is sent)."""

    token = "loopback-test-token"

    def get_token(self, *scopes: str, **kwargs: Any) -> Any:
        from azure.core.credentials import AccessToken

        return AccessToken(self.token, int(time.time()) + 3600)


@pytest.fixture
def credential() -> StaticToken:
    return StaticToken()


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


@pytest.fixture(scope="session")
def azurite(node_tools: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """A real Azurite blob service, in memory, for the whole session."""
    from blobfaults import Azurite

    server = Azurite(node_tools, tmp_path_factory.mktemp("azurite"))
    yield server
    server.stop()


@pytest.fixture
def container(azurite: Any) -> Iterator[Any]:
    """A fresh container (the flow-log name is per account, so a unique name per test)."""
    import uuid

    from azure.storage.blob import BlobServiceClient

    service = BlobServiceClient.from_connection_string(azurite.connection_string)
    client = service.create_container(f"flowlogs-{uuid.uuid4().hex[:12]}")
    yield client
    client.delete_container()
    service.close()


@pytest.fixture
def proxy(azurite: Any) -> Iterator[Any]:
    """A fault-injecting proxy in front of Azurite."""
    from blobfaults import FaultProxy

    server = FaultProxy(azurite.port)
    yield server
    server.close()
