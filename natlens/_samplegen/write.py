"""Writing: the storage-account tree of flow logs, the gateway metrics and the side files.

Every file is written byte for byte the same for the same input: gzip members carry no
time stamp or file name, JSON is indented and keys keep their order.
"""

from __future__ import annotations

import gzip
import json
import random
from collections import defaultdict
from datetime import datetime, timedelta
from pathlib import Path
from typing import Final, NamedTuple

from natlens._samplegen.draw import poisson
from natlens._samplegen.emit import Counters, FlowKey, Flows
from natlens._samplegen.plan import MetricEvents, Plan
from natlens._samplegen.world import (
    ALLOWLIST,
    HOSTNAMES,
    TAG_SPECS,
    Gateway,
    Vm,
    World,
    system_service,
    tag_prefixes,
)
from natlens._samples import CONTAINER

__all__ = [
    "CATEGORY",
    "README",
    "FlowlogFiles",
    "MetricsFile",
    "allowlist_entries",
    "allowlist_text",
    "hostnames_json",
    "inventory_csv",
    "service_tags_json",
    "write_bytes",
    "write_flowlogs",
    "write_metrics",
]

CATEGORY: Final = "NatGatewayFlowlogsV1"

_JSON_COUNTERS: Final = (
    ("PacketsSent", "packets_sent"),
    ("PacketsReceived", "packets_received"),
    ("PacketsSentDropped", "packets_sent_dropped"),
    ("PacketsReceivedDropped", "packets_received_dropped"),
    ("BytesSent", "bytes_sent"),
    ("BytesReceived", "bytes_received"),
)
"""Counter names in the flow log's ``properties``, and the field of :class:`Counters`."""


class FlowlogFiles(NamedTuple):
    """What :func:`write_flowlogs` wrote."""

    records: int
    blobs: int
    bytes_written: int


class MetricsFile(NamedTuple):
    """What :func:`write_metrics` wrote."""

    rows: int
    bytes_written: int


def _gzip(text: str) -> bytes:
    return gzip.compress(text.encode("utf-8"), compresslevel=9, mtime=0)


def write_bytes(path: Path, data: bytes) -> int:
    """Write ``data`` to ``path`` (parents created); return its size."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return len(data)


def _blob_path(root: Path, gateway: Gateway, hour: datetime) -> Path:
    return (
        root
        / "flowlogs"
        / CONTAINER
        / f"resourceId={gateway.resource_id}"
        / f"y={hour:%Y}"
        / f"m={hour:%m}"
        / f"d={hour:%d}"
        / f"h={hour:%H}"
        / "m=00"
        / "PT1H.json.gz"
    )


def write_flowlogs(root: Path, rng: random.Random, flows: Flows, world: World) -> FlowlogFiles:
    """Write one gzip blob per gateway per hour, records filed by receive time.

    Records reach storage 20-70 s after their window: a fifth of those from the last
    minute of an hour are filed in the next hour's blob. Counters named in
    :attr:`Counters.nulls` are written as ``null``.
    """
    gateways, start = world.gateways, world.start
    hours = flows.minutes // 60
    blobs: dict[tuple[int, int], list[tuple[FlowKey, Counters]]] = defaultdict(list)
    for key in sorted(flows.table):
        hour = key.minute // 60
        if key.minute % 60 == 59 and hour + 1 < hours and rng.random() < 0.2:
            hour += 1
        blobs[(key.gateway, hour)].append((key, flows.table[key]))
    times = [
        (start + timedelta(minutes=m)).strftime("%Y-%m-%dT%H:%M:00.0000000Z")
        for m in range(flows.minutes)
    ]
    written = records = 0
    for g, gateway in enumerate(gateways):
        # the resource-log envelope around the time stamp and the properties
        envelope = (
            f'", "resourceId": "{gateway.resource_id}", '
            f'"category": "{CATEGORY}", "operationName": "{CATEGORY}", "properties": {{'
        )
        for hour in range(hours):
            lines = []
            for key, row in blobs.get((g, hour), []):
                props = [
                    f'"SourceIp": "{key.source}"',
                    f'"DestinationIp": "{key.destination}"',
                    f'"NatGatewayIp": "{key.nat}"',
                ]
                props.extend(
                    f'"{name}": {"null" if field in row.nulls else getattr(row, field)}'
                    for name, field in _JSON_COUNTERS
                )
                lines.append(f'{{"time": "{times[key.minute]}{envelope}{", ".join(props)}}}}}\n')
            records += len(lines)
            path = _blob_path(root, gateway, start + timedelta(hours=hour))
            written += write_bytes(path, _gzip("".join(lines)))
    return FlowlogFiles(records, len(gateways) * hours, written)


def _format_value(value: float) -> str:
    if float(value).is_integer():
        return str(int(value))
    return f"{value:.2f}".rstrip("0").rstrip(".")


def write_metrics(
    path: Path,
    rng: random.Random,
    flows: Flows,
    world: World,
    *,
    plan: Plan,
    events: MetricEvents,
) -> MetricsFile:
    """Gateway metrics at 1-minute grain, derived from the true (pre-null) flow counters.

    Besides the flows: idle connections (3 per VM), the CI storm and failed connections
    of ``events`` on the SNAT event's gateway, the availability dip and blips, and a
    trickle of drops the flow log does not see (``rng`` draws it).
    """
    vms, gateways, services, start = world.vms, world.gateways, world.services, world.start
    udp_ips = {ip for svc in services.values() if svc.protocol == "UDP" for ip in svc.v4}
    n = flows.minutes
    g_count = len(gateways)
    # per gateway, per protocol (0 TCP, 1 UDP): minute arrays
    bytes_out = [[[0] * n for _ in range(2)] for _ in range(g_count)]
    bytes_in = [[[0] * n for _ in range(2)] for _ in range(g_count)]
    conns = [[[0] * n for _ in range(2)] for _ in range(g_count)]
    new = [[[0] * n for _ in range(2)] for _ in range(g_count)]
    drops = [[0] * n for _ in range(g_count)]
    for key, row in flows.table.items():
        minute, g = key.minute, key.gateway
        udp = 1 if key.destination in udp_ips else 0
        bytes_out[g][udp][minute] += row.bytes_sent
        bytes_in[g][udp][minute] += row.bytes_received
        conns[g][udp][minute] += row.connections
        new[g][udp][minute] += row.new_connections
        drops[g][minute] += row.dropped
    idle = [3 * sum(1 for vm in vms if vm.subnet.gateway == g) for g in range(g_count)]
    snat_g = vms[plan.snat_vm].subnet.gateway

    lines = ["time,resource_id,metric,protocol,direction,connection_state,value\n"]
    protocols = ("TCP", "UDP")  # index 0 and 1 of the per-protocol arrays
    for minute in range(n):
        t = (start + timedelta(minutes=minute)).strftime("%Y-%m-%dT%H:%M:00Z")
        for g, gateway in enumerate(gateways):
            rid = gateway.arm_id
            avail = 100.0
            if g == snat_g and minute in events.dip:
                avail = events.dip[minute]
            elif minute in events.healthy_blips and (minute + g) % 3:
                avail = events.healthy_blips[minute]
            extra_attempts = events.storm.get(minute, 0) if g == snat_g else 0
            extra_failed = events.failed.get(minute, 0) if g == snat_g else 0
            drop = drops[g][minute] + poisson(rng, 0.4)
            rows = [f"{t},{rid},DatapathAvailability,,,,{_format_value(avail)}\n"]
            for k, proto in enumerate(protocols):
                attempts = new[g][k][minute] + (extra_attempts if k == 0 else 0)
                fails = extra_failed if k == 0 else 0
                rows.append(f"{t},{rid},SNATConnectionCount,{proto},,Attempted,{attempts}\n")
                rows.append(f"{t},{rid},SNATConnectionCount,{proto},,Failed,{fails}\n")
            for k, proto in enumerate(protocols):
                total = conns[g][k][minute] + (idle[g] if k == 0 else 0)
                total += round(extra_attempts * 0.8) if k == 0 else 0
                rows.append(f"{t},{rid},TotalConnectionCount,{proto},,,{total}\n")
            rows.append(f"{t},{rid},PacketDropCount,,,,{drop}\n")
            for k, proto in enumerate(protocols):
                rows.append(f"{t},{rid},ByteCount,{proto},In,,{bytes_in[g][k][minute]}\n")
                rows.append(f"{t},{rid},ByteCount,{proto},Out,,{bytes_out[g][k][minute]}\n")
            lines.extend(rows)
    return MetricsFile(len(lines) - 1, write_bytes(path, _gzip("".join(lines))))


# -- side files ---------------------------------------------------------------------


def service_tags_json() -> str:
    """The Service Tags excerpt in the layout of Azure's downloadable ``ServiceTags_*.json``."""
    tags = tag_prefixes()
    meta = {spec.name: spec for spec in TAG_SPECS}
    values = []
    for name in sorted(tags):
        if name in meta:
            spec = meta[name]
            region, region_id, service = spec.region, spec.region_id, spec.system_service
        elif name.startswith("AzureCloud."):
            region = name.split(".", 1)[1].lower()
            region_id = 18 if region == "westeurope" else 17
            service = ""
        else:
            region, region_id, service = "", 0, system_service(name)
        values.append(
            {
                "name": name,
                "id": name,
                "properties": {
                    "changeNumber": 7 + len(name) % 5,
                    "region": region,
                    "regionId": region_id,
                    "platform": "Azure",
                    "systemService": service,
                    "addressPrefixes": list(tags[name]),
                    "networkFeatures": ["API", "NSG", "UDR", "FW"],
                },
            }
        )
    return json.dumps({"changeNumber": 342, "cloud": "Public", "values": values}, indent=2) + "\n"


_ALLOWLIST_HEAD: Final = """\
# Fabrikam egress allowlist: destinations approved for traffic through the NAT gateways
# natgw-prod-weu and natgw-eng-weu. One entry per line: a CIDR (IPv4 or IPv6), an Azure
# Service Tag name (prefixes in service_tags.json) or a hostname (addresses in
# hostnames.json). Reviewed 2026-11-02 by the cloud platform team.
"""


def allowlist_text() -> str:
    """``allowlist.txt``: one entry a line, sections and notes as ``#`` comments.

    Examples
    --------
    >>> print(allowlist_text().splitlines()[-1])
    172.64.0.0/13  # Cloudflare
    """
    parts = [_ALLOWLIST_HEAD]
    for title, entries in ALLOWLIST:
        parts.append(f"\n# {title}\n")
        parts.extend(f"{e.value}  # {e.note}\n" if e.note else f"{e.value}\n" for e in entries)
    return "".join(parts)


def allowlist_entries() -> list[str]:
    """The allowlist's entries without their notes, in file order."""
    return [entry.value for _title, entries in ALLOWLIST for entry in entries]


def inventory_csv(vms: list[Vm]) -> str:
    """``inventory.csv``: private IP -> VM name, subnet, team (one row per address)."""
    lines = ["ip,vm_name,subnet,team\n"]
    for vm in vms:
        lines.append(f"{vm.ipv4},{vm.name},{vm.subnet.name},{vm.subnet.team}\n")
        if vm.ipv6:
            lines.append(f"{vm.ipv6},{vm.name},{vm.subnet.name},{vm.subnet.team}\n")
    return "".join(lines)


def hostnames_json() -> str:
    """``hostnames.json``: each allowlisted hostname with the addresses it resolves to."""
    return json.dumps({name: list(ips) for name, ips in HOSTNAMES.items()}, indent=2) + "\n"


README: Final = """\
# Sample data

One realistic week of Azure NAT Gateway flow logs (`NatGatewayFlowlogsV1`) of the fictitious
organisation Fabrikam, with everything needed to analyse them offline. Written by
`natlens samples --out DIR` (code: `natlens/_samplegen/`); do not edit by hand, the tests compare
this directory with a fresh generation.

- `flowlogs/insights-logs-natgatewayflowlogsv1/resourceId=/.../y=/m=/d=/h=/m=00/PT1H.json.gz`:
  the storage-account tree, one gzip JSON Lines blob per gateway per hour, records filed by
  receive time (a few land in the next hour's blob).
- `inventory.csv`: private IP -> VM name, subnet, team.
- `allowlist.txt`: approved destinations (CIDRs, Service Tag names, hostnames).
- `service_tags.json`: an excerpt of Azure's Service Tags file; `hostnames.json`: hostname ->
  addresses for the allowlisted hostnames.
- `metrics.csv.gz`: the gateways' platform metrics at 1-minute grain (`natlens.read_metrics`).
- `answer_key.json`, `ANSWER_KEY.md`: the planted events, for trainers.

Addresses of the two unapproved destinations come from the documentation ranges of RFC 5737;
SaaS addresses are illustrative.
"""
"""``README.md`` of a sample directory."""
