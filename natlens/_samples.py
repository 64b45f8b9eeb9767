"""Deterministic, seeded sample data: a realistic week of NAT gateway flow logs and side files.

The shipped ``data/samples/`` is exactly what :func:`generate_samples` writes with its
defaults; a test regenerates it and compares, so the sample data never drifts from this
code. Only the standard library is used, so importing this module costs nothing.

The world: the organisation *Fabrikam* with two StandardV2 NAT gateways in West Europe
(``natgw-prod-weu`` with two IPv4 public IPs, ``natgw-eng-weu`` with one; both also have
an IPv6 public IP) and VMs in six subnets. Each VM runs a role (web, payments, data,
build, dev, corp) that sets which destinations it talks to, how much, and on which daily
and weekly rhythm. Six events are planted on top and written down in the answer key.
"""

from __future__ import annotations

import gzip
import ipaddress
import json
import math
import os
import random
import shutil
import statistics
import textwrap
import uuid
from bisect import bisect_right
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from itertools import accumulate, pairwise
from pathlib import Path
from typing import Any, Final

__all__ = [
    "DEFAULT_SEED",
    "DEFAULT_START",
    "SampleData",
    "SampleSummary",
    "generate_samples",
    "sample_data",
]

DEFAULT_SEED: Final = 20261109
"""Seed of the shipped sample week."""

DEFAULT_START: Final = datetime(2026, 11, 9, tzinfo=UTC)
"""First day of the shipped sample week (a Monday, 00:00 UTC)."""

CONTAINER: Final = "insights-logs-natgatewayflowlogsv1"
CATEGORY: Final = "NatGatewayFlowlogsV1"
PRICE_PER_GB: Final = 0.045
"""List price per GB processed used for the example costs in the answer key (USD)."""

MIN_DAYS: Final = 3
MAX_DAYS: Final = 366
MIN_VMS: Final = 20
MAX_VMS: Final = 1000

_SAMPLES_DIR = Path(__file__).resolve().parent.parent / "data" / "samples"
_FILES = {
    "inventory": "inventory.csv",
    "allowlist": "allowlist.txt",
    "service_tags": "service_tags.json",
    "hostnames": "hostnames.json",
    "metrics": "metrics.csv.gz",
    "answer_key": "answer_key.json",
    "answer_key_md": "ANSWER_KEY.md",
    "readme": "README.md",
}


# ---------------------------------------------------------------------------
# Public values
# ---------------------------------------------------------------------------


@dataclass(frozen=True)
class SampleData:
    """Where the sample files are.

    Attributes
    ----------
    root
        The sample directory (``data/samples`` in the repository).
    flowlogs
        The flow-log tree (holds ``insights-logs-natgatewayflowlogsv1/resourceId=/...``).
    inventory, allowlist, service_tags, hostnames
        The side files: ``inventory.csv``, ``allowlist.txt``, ``service_tags.json``,
        ``hostnames.json``.
    metrics
        Gateway metrics at 1-minute grain, ``metrics.csv.gz`` (read with
        :func:`natlens.read_metrics`).
    answer_key, answer_key_md
        The planted events, machine-readable (JSON) and for trainers (Markdown).
    """

    root: Path
    flowlogs: Path
    inventory: Path
    allowlist: Path
    service_tags: Path
    hostnames: Path
    metrics: Path
    answer_key: Path
    answer_key_md: Path


@dataclass(frozen=True)
class SampleSummary:
    """What :func:`generate_samples` wrote.

    Attributes
    ----------
    directory, seed, start, days, vms
        Where, and the arguments that fully determine the output.
    records, blobs
        Flow records written, and the number of hourly ``PT1H.json.gz`` blobs.
    metrics_rows
        Rows of ``metrics.csv.gz``.
    events
        Kinds of the planted events, in answer-key order.
    bytes_written
        Total size of the files written.
    """

    directory: Path
    seed: int
    start: datetime
    days: int
    vms: int
    records: int
    blobs: int
    metrics_rows: int
    events: tuple[str, ...]
    bytes_written: int


def sample_data(directory: str | os.PathLike[str] | None = None) -> SampleData:
    """Return the paths of the sample data.

    Parameters
    ----------
    directory
        A directory written by :func:`generate_samples`; by default the repository's
        ``data/samples`` next to the package.

    Raises
    ------
    FileNotFoundError
        If the directory or one of its files is missing (the samples ship with the
        source repository, not with the wheel; ``natlens samples --out DIR`` makes them).

    Examples
    --------
    >>> samples = sample_data()
    >>> samples.inventory.name, samples.flowlogs.is_dir()
    ('inventory.csv', True)
    """
    root = Path(directory) if directory is not None else _SAMPLES_DIR
    data = SampleData(
        root=root,
        flowlogs=root / "flowlogs",
        inventory=root / _FILES["inventory"],
        allowlist=root / _FILES["allowlist"],
        service_tags=root / _FILES["service_tags"],
        hostnames=root / _FILES["hostnames"],
        metrics=root / _FILES["metrics"],
        answer_key=root / _FILES["answer_key"],
        answer_key_md=root / _FILES["answer_key_md"],
    )
    missing = [
        str(path)
        for path in (
            data.flowlogs / CONTAINER,
            data.inventory,
            data.allowlist,
            data.service_tags,
            data.hostnames,
            data.metrics,
            data.answer_key,
        )
        if not path.exists()
    ]
    if missing:
        raise FileNotFoundError(
            f"natlens sample data not found in {root} (missing: {', '.join(missing)}). "
            "The samples ship with the source repository (data/samples); "
            "make a copy anywhere with `natlens samples --out DIR`."
        )
    return data


# ---------------------------------------------------------------------------
# The world: gateways, subnets, VMs, destinations
# ---------------------------------------------------------------------------


@dataclass(frozen=True)
class _Gateway:
    subscription: str
    resource_group: str
    name: str
    ipv4: tuple[str, ...]
    ipv6: tuple[str, ...]

    @property
    def resource_id(self) -> str:
        """The id as flow logs spell it (upper case)."""
        return self.arm_id.upper()

    @property
    def arm_id(self) -> str:
        """The id as the metrics API spells it (ARM casing)."""
        return (
            f"/subscriptions/{self.subscription}/resourceGroups/{self.resource_group}"
            f"/providers/Microsoft.Network/natGateways/{self.name}"
        )


@dataclass(frozen=True)
class _Subnet:
    name: str
    team: str
    role: str
    gateway: int
    prefix4: str
    prefix6: str | None
    share: float
    vm_prefix: str


@dataclass(frozen=True)
class _Vm:
    name: str
    subnet: _Subnet
    ipv4: str
    ipv6: str | None


_SUBNETS: Final = (
    _Subnet("snet-web", "web", "web", 0, "10.10.1.0/24", "fd00:10:10:1::/64", 0.22, "vm-web"),
    _Subnet("snet-payments", "payments", "payments", 0, "10.10.2.0/24", None, 0.14, "vm-pay"),
    _Subnet("snet-data", "data", "data", 0, "10.10.3.0/24", None, 0.12, "vm-data"),
    _Subnet("snet-build", "platform", "build", 1, "10.20.1.0/24", None, 0.16, "vm-build"),
    _Subnet(
        "snet-dev", "engineering", "dev", 1, "10.20.2.0/24", "fd00:10:20:2::/64", 0.24, "vm-dev"
    ),
    _Subnet("snet-corp", "it", "corp", 1, "10.20.3.0/24", None, 0.12, "vm-corp"),
)

# Hostnames the allowlist names, with the addresses they resolve to. The addresses of
# github.com, api.stripe.com and the package registries are the services' published
# ones; the SaaS addresses are illustrative.
_HOSTNAMES: Final[dict[str, tuple[str, ...]]] = {
    "github.com": ("140.82.121.3", "140.82.121.4", "140.82.112.3", "140.82.113.3", "140.82.114.4"),
    "api.github.com": ("140.82.121.5", "140.82.112.5", "140.82.113.6"),
    "codeload.github.com": ("140.82.121.10", "140.82.112.9"),
    "objects.githubusercontent.com": (
        "185.199.108.133",
        "185.199.109.133",
        "185.199.110.133",
        "185.199.111.133",
    ),
    "ghcr.io": ("140.82.121.33", "140.82.113.34"),
    "pypi.org": (
        "151.101.0.223",
        "151.101.64.223",
        "151.101.128.223",
        "151.101.192.223",
        "2a04:4e42::223",
        "2a04:4e42:200::223",
        "2a04:4e42:400::223",
        "2a04:4e42:600::223",
    ),
    "files.pythonhosted.org": (
        "151.101.1.63",
        "151.101.65.63",
        "151.101.129.63",
        "151.101.193.63",
        "2a04:4e42:8c::223",
        "2a04:4e42:48c::223",
    ),
    "registry.npmjs.org": tuple(f"104.16.{i}.34" for i in range(12)),
    "security.ubuntu.com": ("91.189.91.81", "91.189.91.82", "185.125.190.36", "185.125.190.39"),
    "azure.archive.ubuntu.com": ("20.61.22.44", "51.144.10.236"),
    "ntp.ubuntu.com": ("185.125.190.56", "185.125.190.57", "185.125.190.58"),
    "time.windows.com": ("168.61.215.74",),
    "packages.microsoft.com": ("13.90.21.104",),
    "download.windowsupdate.com": ("23.200.86.9", "23.200.86.42", "95.101.24.66"),
    "api.stripe.com": ("54.187.174.169", "54.187.205.235", "54.187.216.72"),
    "api.sendgrid.com": ("167.89.118.52", "167.89.115.120"),
    "hooks.slack.com": ("3.66.121.8", "52.29.238.212"),
    "events.pagerduty.com": ("44.242.69.192", "52.89.71.166"),
    "fabrikam.atlassian.net": ("104.192.142.18", "104.192.142.19"),
    "api.honeycomb.io": ("52.30.148.10", "34.249.67.219", "2a05:d018:1d9c:6a00::10"),
}

# Service Tags: (name, region, regionId, systemService, prefixes). Regional tags are
# contained in their global tag and in AzureCloud.<region>; AzureCloud holds them all.
_TAG_SPECS: Final[tuple[tuple[str, str, int, str, tuple[str, ...]], ...]] = (
    (
        "Storage.WestEurope",
        "westeurope",
        18,
        "AzureStorage",
        (
            "20.38.108.0/23",
            "20.60.26.0/23",
            "20.150.8.0/23",
            "52.239.140.0/22",
            "2603:1020:206:1::/64",
        ),
    ),
    (
        "Storage.NorthEurope",
        "northeurope",
        17,
        "AzureStorage",
        ("20.38.102.0/23", "20.60.204.0/23", "52.239.136.0/22", "2603:1020:5:1::/64"),
    ),
    (
        "AzureMonitor.WestEurope",
        "westeurope",
        18,
        "AzureMonitor",
        ("20.61.99.64/26", "51.144.56.96/27", "2603:1020:206:3::/64"),
    ),
    (
        "AzureKeyVault.WestEurope",
        "westeurope",
        18,
        "AzureKeyVault",
        ("20.61.103.224/29", "52.236.189.80/28", "2603:1020:206:4::/64"),
    ),
    (
        "AzureContainerRegistry.WestEurope",
        "westeurope",
        18,
        "AzureContainerRegistry",
        ("20.61.97.128/25", "51.124.83.64/26"),
    ),
    (
        "MicrosoftContainerRegistry.WestEurope",
        "westeurope",
        18,
        "MicrosoftContainerRegistry",
        ("13.69.64.88/29", "20.61.99.128/25"),
    ),
    (
        "AzureActiveDirectory",
        "",
        0,
        "AzureAD",
        ("20.190.128.0/18", "40.126.0.0/18", "2603:1006:2000::/48", "2603:1007:200::/48"),
    ),
    ("AzureUpdateDelivery", "", 0, "AzureUpdateDelivery", ("20.42.65.80/29", "20.49.103.0/28")),
)
_GLOBAL_OF: Final = {
    "Storage.WestEurope": "Storage",
    "Storage.NorthEurope": "Storage",
    "AzureMonitor.WestEurope": "AzureMonitor",
    "AzureKeyVault.WestEurope": "AzureKeyVault",
    "AzureContainerRegistry.WestEurope": "AzureContainerRegistry",
    "MicrosoftContainerRegistry.WestEurope": "MicrosoftContainerRegistry",
}
_GLOBAL_EXTRA: Final = {
    "Storage": ("52.239.148.0/22", "20.60.0.0/24"),
    "AzureMonitor": ("20.50.65.80/28", "2603:1030:403:4::/64"),
    "AzureKeyVault": ("20.42.64.32/28",),
    "AzureContainerRegistry": ("20.42.66.0/24",),
    "MicrosoftContainerRegistry": ("13.70.72.64/29",),
}
_REGION_EXTRA: Final = {
    "westeurope": (
        "13.69.0.0/17",
        "20.61.0.0/16",
        "51.124.0.0/16",
        "51.144.0.0/16",
        "52.236.0.0/17",
        "2603:1020:200::/40",
    ),
    "northeurope": ("13.74.0.0/16", "20.38.96.0/21", "2603:1020::/40"),
}
_REGION_NAMES: Final = {"westeurope": "WestEurope", "northeurope": "NorthEurope"}
_AZURECLOUD_EXTRA: Final = ("13.64.0.0/11", "168.61.0.0/16", "2603:1030::/32")
_SYSTEM_SERVICE: Final = {
    "Storage": "AzureStorage",
    "AzureMonitor": "AzureMonitor",
    "AzureKeyVault": "AzureKeyVault",
    "AzureContainerRegistry": "AzureContainerRegistry",
    "MicrosoftContainerRegistry": "MicrosoftContainerRegistry",
}

# Public ranges approved wholesale in the allowlist; the long tail of destinations
# (CDN-fronted APIs and SaaS) lives in them and in AzureCloud.WestEurope.
_CDN_RANGES: Final = ("151.101.0.0/16", "104.16.0.0/13", "172.64.0.0/13", "2a04:4e42::/32")

# The two planted destinations nobody approved (documentation ranges, RFC 5737).
_UNAPPROVED_IP: Final = "203.0.113.45"
_BEACON_IP: Final = "198.51.100.23"


@dataclass(frozen=True)
class _Service:
    """A kind of destination and the shape of one session to it."""

    key: str
    label: str
    protocol: str
    v4: tuple[str, ...]
    v6: tuple[str, ...]
    sent: tuple[float, float]  # median bytes per session, log-sigma
    received: tuple[float, float]
    minutes: float  # mean session length
    connections: int


@dataclass(frozen=True)
class _World:
    """Everything fixed before traffic is drawn."""

    start: datetime
    days: int
    gateways: tuple[_Gateway, ...]
    services: dict[str, _Service]
    vms: list[_Vm]


# role -> (service, sessions per hour at full activity, rhythm)
_MIX: Final[dict[str, tuple[tuple[str, float, str], ...]]] = {
    "web": (
        ("monitor", 5.0, "flat"),
        ("aad", 0.9, "customer"),
        ("storage_we", 1.6, "customer"),
        ("keyvault", 0.4, "customer"),
        ("sendgrid", 0.5, "customer"),
        ("slack", 0.05, "office"),
        ("pagerduty", 0.02, "flat"),
        ("ubuntu", 0.1, "flat"),
        ("ntp", 0.2, "flat"),
        ("longtail", 1.4, "customer"),
        ("acr", 0.04, "office"),
        ("github", 0.04, "office"),
    ),
    "payments": (
        ("monitor", 5.0, "flat"),
        ("aad", 1.2, "customer"),
        ("stripe", 9.0, "customer"),
        ("keyvault", 1.2, "customer"),
        ("storage_we", 0.8, "customer"),
        ("storage_ne", 0.1, "flat"),
        ("sendgrid", 0.8, "customer"),
        ("pagerduty", 0.02, "flat"),
        ("ubuntu", 0.1, "flat"),
        ("ntp", 0.2, "flat"),
        ("acr", 0.04, "office"),
    ),
    "data": (
        ("monitor", 5.0, "flat"),
        ("aad", 0.6, "office"),
        ("storage_we", 2.0, "office"),
        ("storage_batch", 3.0, "batch"),
        ("storage_ne", 1.2, "batch"),
        ("pypi", 0.4, "office"),
        ("github", 0.2, "office"),
        ("ubuntu", 0.1, "flat"),
        ("ntp", 0.2, "flat"),
        ("longtail", 0.2, "office"),
    ),
    "build": (
        ("monitor", 5.0, "flat"),
        ("aad", 0.5, "office"),
        ("github", 3.5, "office"),
        ("npm", 2.5, "office"),
        ("pypi", 1.6, "office"),
        ("acr", 1.2, "office"),
        ("mcr", 0.6, "office"),
        ("storage_we", 1.0, "office"),
        ("slack", 0.6, "office"),
        ("atlassian", 0.4, "office"),
        ("ubuntu", 0.12, "flat"),
        ("ntp", 0.2, "flat"),
        ("packages_ms", 0.1, "office"),
        ("longtail", 0.4, "office"),
    ),
    "dev": (
        ("monitor", 5.0, "flat"),
        ("aad", 1.5, "office"),
        ("github", 1.4, "office"),
        ("npm", 0.9, "office"),
        ("pypi", 0.9, "office"),
        ("atlassian", 0.9, "office"),
        ("slack", 0.3, "office"),
        ("storage_we", 0.4, "office"),
        ("longtail", 3.0, "office"),
        ("ubuntu", 0.1, "flat"),
        ("ntp", 0.2, "flat"),
        ("packages_ms", 0.05, "office"),
        ("mcr", 0.2, "office"),
    ),
    "corp": (
        ("monitor", 5.0, "flat"),
        ("aad", 2.0, "office"),
        ("winupdate", 0.12, "patch"),
        ("wu_meta", 0.5, "flat"),
        ("timewin", 0.4, "flat"),
        ("storage_backup", 2.5, "batch"),
        ("longtail", 0.2, "office"),
    ),
}

# Activity by local hour (CET, UTC+1 in November), weekday and weekend.
# fmt: off
_OFFICE = (
    0.06, 0.05, 0.05, 0.05, 0.05, 0.06, 0.12, 0.35, 0.75, 1.0, 1.0, 1.0,
    0.8, 0.95, 1.0, 1.0, 0.9, 0.6, 0.35, 0.25, 0.2, 0.14, 0.1, 0.08,
)
_CUSTOMER = (
    0.35, 0.25, 0.2, 0.18, 0.18, 0.22, 0.35, 0.55, 0.7, 0.8, 0.85, 0.9,
    0.95, 0.9, 0.85, 0.85, 0.85, 0.9, 0.95, 1.0, 1.0, 0.9, 0.7, 0.5,
)
_BATCH = (0.1, 0.6, 1.0, 1.0, 0.8, 0.3, *(0.03,) * 18)
# fmt: on


def _rhythm(kind: str, local: datetime) -> float:
    """Activity factor of a rhythm at one local hour."""
    weekend = local.weekday() >= 5
    hour = local.hour
    if kind == "flat":
        return 1.0
    if kind == "office":
        return 0.04 + 0.12 * _OFFICE[hour] if weekend else _OFFICE[hour]
    if kind == "customer":
        return 0.85 * _CUSTOMER[(hour - 1) % 24] if weekend else _CUSTOMER[hour]
    if kind == "batch":
        return _BATCH[hour] * (0.6 if weekend else 1.0)
    raise ValueError(f"unknown rhythm {kind!r}")


def _patch_tuesday_boost(when: datetime) -> float:
    """Windows Update demand multiplier: high for 14 hours after a Patch Tuesday release."""
    day = when.date()
    for back in (0, 1):
        d = day - timedelta(days=back)
        if d.weekday() == 1 and 8 <= d.day <= 14:
            release = datetime(d.year, d.month, d.day, 18, tzinfo=UTC)
            if release <= when < release + timedelta(hours=14):
                return 6.0
    return 1.0


def _hosts(prefix: str, rng: random.Random, count: int, avoid: Iterable[str] = ()) -> list[str]:
    """``count`` distinct host addresses drawn from ``prefix`` (deterministic under ``rng``)."""
    network = ipaddress.ip_network(prefix)
    blocked = [ipaddress.ip_network(p) for p in avoid]
    chosen: list[str] = []
    seen: set[str] = set()
    span = min(network.num_addresses - 2, 2**32)
    while len(chosen) < count:
        if network.version == 4:
            offset = 1 + rng.randrange(span)
        else:
            offset = rng.choice((1, 4, 5, 16, 32)) + 256 * rng.randrange(64) * rng.randrange(2)
        address = network.network_address + offset
        text = str(address)
        if text in seen or any(address in b for b in blocked if b.version == address.version):
            continue
        seen.add(text)
        chosen.append(text)
    return chosen


def _tag_prefixes() -> dict[str, tuple[str, ...]]:
    """Every Service Tag of the excerpt with its prefixes (AzureCloud contains all)."""
    tags: dict[str, list[str]] = {}
    for name, region, _region_id, _service, prefixes in _TAG_SPECS:
        tags[name] = list(prefixes)
        parent = _GLOBAL_OF.get(name)
        if parent:
            tags.setdefault(parent, []).extend(prefixes)
        if region:
            tags.setdefault(f"AzureCloud.{_REGION_NAMES[region]}", []).extend(prefixes)
    for name, extra in _GLOBAL_EXTRA.items():
        tags[name].extend(extra)
    for region, extra in _REGION_EXTRA.items():
        tags[f"AzureCloud.{_REGION_NAMES[region]}"].extend(extra)
    everything = [prefix for group in tags.values() for prefix in group]
    tags["AzureCloud"] = everything + list(_AZURECLOUD_EXTRA)
    return {name: tuple(_sorted_prefixes(set(p))) for name, p in tags.items()}


def _sorted_prefixes(prefixes: Iterable[str]) -> list[str]:
    networks = [ipaddress.ip_network(p) for p in prefixes]
    networks.sort(key=lambda n: (n.version, n.network_address, n.prefixlen))
    return [str(n) for n in networks]


def _build_services(rng: random.Random) -> dict[str, _Service]:
    tags = _tag_prefixes()
    h = _HOSTNAMES

    def v4(*names: str) -> tuple[str, ...]:
        return tuple(ip for n in names for ip in h[n] if ":" not in ip)

    def v6(*names: str) -> tuple[str, ...]:
        return tuple(ip for n in names for ip in h[n] if ":" in ip)

    def from_tag(tag: str, n4: int, n6: int) -> tuple[tuple[str, ...], tuple[str, ...]]:
        p4 = [p for p in tags[tag] if ":" not in p]
        p6 = [p for p in tags[tag] if ":" in p]
        a4 = [ip for i in range(n4) for ip in _hosts(p4[i % len(p4)], rng, 1)]
        a6 = [ip for i in range(n6) for ip in _hosts(p6[i % len(p6)], rng, 1)] if p6 else []
        return tuple(dict.fromkeys(a4)), tuple(dict.fromkeys(a6))

    storage_we = from_tag("Storage.WestEurope", 36, 8)
    storage_ne = from_tag("Storage.NorthEurope", 8, 2)
    monitor = from_tag("AzureMonitor.WestEurope", 6, 2)
    keyvault = from_tag("AzureKeyVault.WestEurope", 4, 1)
    acr = from_tag("AzureContainerRegistry.WestEurope", 4, 0)
    mcr = from_tag("MicrosoftContainerRegistry.WestEurope", 4, 0)
    aad = from_tag("AzureActiveDirectory", 10, 3)
    wu_meta = from_tag("AzureUpdateDelivery", 3, 0)

    specific = [p for n, *_rest, ps in _TAG_SPECS for p in ps]
    named = [ip for ips in _HOSTNAMES.values() for ip in ips]
    avoid = specific + [f"{ip}/32" if ":" not in ip else f"{ip}/128" for ip in named]
    tail4: list[str] = []
    for prefix, count in (
        ("104.16.0.0/13", 70),
        ("172.64.0.0/13", 50),
        ("151.101.0.0/16", 40),
        ("20.61.0.0/16", 30),
        ("51.144.0.0/16", 20),
        ("52.236.0.0/17", 15),
        ("13.69.0.0/17", 15),
    ):
        tail4.extend(_hosts(prefix, rng, count, avoid))
    tail6 = _hosts("2a04:4e42::/32", rng, 16, avoid) + _hosts("2603:1020:200::/40", rng, 10, avoid)
    rng.shuffle(tail4)
    rng.shuffle(tail6)

    github = v4("github.com", "api.github.com", "codeload.github.com")
    github += v4("objects.githubusercontent.com", "ghcr.io")
    addresses: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
        "monitor": monitor,
        "aad": aad,
        "storage_we": storage_we,
        "storage_batch": storage_we,
        "storage_backup": storage_we,
        "storage_ne": storage_ne,
        "keyvault": keyvault,
        "acr": acr,
        "mcr": mcr,
        "wu_meta": wu_meta,
        "github": (github, ()),
        "npm": (v4("registry.npmjs.org"), ()),
        "pypi": (
            v4("pypi.org", "files.pythonhosted.org"),
            v6("pypi.org", "files.pythonhosted.org"),
        ),
        "ubuntu": (v4("azure.archive.ubuntu.com", "security.ubuntu.com"), ()),
        "packages_ms": (v4("packages.microsoft.com"), ()),
        "winupdate": (v4("download.windowsupdate.com"), ()),
        "ntp": (v4("ntp.ubuntu.com"), ()),
        "timewin": (v4("time.windows.com"), ()),
        "stripe": (v4("api.stripe.com"), ()),
        "sendgrid": (v4("api.sendgrid.com"), ()),
        "slack": (v4("hooks.slack.com"), ()),
        "pagerduty": (v4("events.pagerduty.com"), ()),
        "atlassian": (v4("fabrikam.atlassian.net"), ()),
        "longtail": (tuple(tail4), tuple(tail6)),
        "honeycomb": (v4("api.honeycomb.io"), v6("api.honeycomb.io")),
    }
    k, m = 1_000.0, 1_000_000.0
    # key: label, protocol, (median bytes sent, sigma), (median received, sigma),
    # mean session minutes, connections
    shapes: dict[str, tuple[str, str, tuple[float, float], tuple[float, float], float, int]]
    # fmt: off
    shapes = {
        "monitor":        ("AzureMonitor", "TCP", (40 * k, 0.6), (4 * k, 0.4), 1, 1),
        "aad":            ("AzureActiveDirectory", "TCP", (3 * k, 0.3), (9 * k, 0.4), 1, 1),
        "storage_we":     ("Storage.WestEurope", "TCP", (60 * k, 1.5), (1.5 * m, 1.6), 1.5, 2),
        "storage_batch":  ("Storage.WestEurope", "TCP", (30 * m, 0.9), (8 * m, 1.2), 10, 8),
        "storage_backup": ("Storage.WestEurope", "TCP", (25 * m, 0.9), (1 * m, 0.5), 8, 4),
        "storage_ne":     ("Storage.NorthEurope", "TCP", (20 * m, 1.0), (2 * m, 0.5), 8, 4),
        "keyvault":       ("AzureKeyVault.WestEurope", "TCP", (3 * k, 0.3), (8 * k, 0.4), 1, 1),
        "acr":     ("AzureContainerRegistry.WestEurope", "TCP", (30 * k, 0.5), (30 * m, 1.0), 3, 4),
        "mcr":            ("MicrosoftContainerRegistry", "TCP", (30 * k, 0.5), (40 * m, 1.0), 3, 4),
        "wu_meta":        ("AzureUpdateDelivery", "TCP", (20 * k, 0.4), (60 * k, 0.5), 1, 1),
        "github":         ("github.com", "TCP", (40 * k, 0.8), (4 * m, 1.4), 2, 2),
        "npm":            ("registry.npmjs.org", "TCP", (30 * k, 0.6), (6 * m, 1.3), 2, 4),
        "pypi":           ("pypi.org", "TCP", (20 * k, 0.6), (5 * m, 1.4), 2, 3),
        "ubuntu":         ("ubuntu.com", "TCP", (20 * k, 0.5), (6 * m, 1.5), 2, 2),
        "packages_ms":    ("packages.microsoft.com", "TCP", (10 * k, 0.4), (5 * m, 1.0), 1.5, 2),
        "winupdate": ("download.windowsupdate.com", "TCP", (200 * k, 0.5), (60 * m, 1.0), 8, 4),
        "ntp":            ("ntp.ubuntu.com", "UDP", (76, 0.0), (76, 0.0), 1, 1),
        "timewin":        ("time.windows.com", "UDP", (76, 0.0), (76, 0.0), 1, 1),
        "stripe":         ("api.stripe.com", "TCP", (4 * k, 0.5), (7 * k, 0.5), 1.5, 1),
        "sendgrid":       ("api.sendgrid.com", "TCP", (25 * k, 0.8), (3 * k, 0.3), 1, 1),
        "slack":          ("hooks.slack.com", "TCP", (3 * k, 0.4), (2 * k, 0.3), 1, 1),
        "pagerduty":      ("events.pagerduty.com", "TCP", (2 * k, 0.3), (2 * k, 0.3), 1, 1),
        "atlassian":      ("fabrikam.atlassian.net", "TCP", (20 * k, 0.8), (400 * k, 1.0), 2, 2),
        "longtail":       ("long tail (CDN, SaaS)", "TCP", (15 * k, 1.2), (120 * k, 1.5), 1.8, 1),
        "honeycomb":      ("api.honeycomb.io", "TCP", (80 * k, 0.5), (3 * k, 0.3), 1, 1),
    }
    # fmt: on
    return {
        key: _Service(key, label, proto, *addresses[key], sent, received, minutes, conns)
        for key, (label, proto, sent, received, minutes, conns) in shapes.items()
    }


def _build_gateways(rng: random.Random) -> tuple[_Gateway, _Gateway]:
    def subscription() -> str:
        return str(uuid.UUID(int=rng.getrandbits(128), version=4))

    prod = _Gateway(
        subscription(),
        "rg-network-prod",
        "natgw-prod-weu",
        ("20.61.15.40", "20.61.15.41"),
        ("2603:1020:203:4::28",),
    )
    eng = _Gateway(
        subscription(),
        "rg-network-eng",
        "natgw-eng-weu",
        ("51.124.20.7",),
        ("2603:1020:203:9::1c",),
    )
    return prod, eng


def _build_vms(count: int) -> list[_Vm]:
    raw = [sub.share * count for sub in _SUBNETS]
    sizes = [max(1, math.floor(r)) for r in raw]
    order = sorted(range(len(raw)), key=lambda i: raw[i] - math.floor(raw[i]), reverse=True)
    for i in order:
        if sum(sizes) >= count:
            break
        sizes[i] += 1
    while sum(sizes) > count:
        sizes[sizes.index(max(sizes))] -= 1
    vms: list[_Vm] = []
    for sub, size in zip(_SUBNETS, sizes, strict=True):
        net4 = ipaddress.ip_network(sub.prefix4)
        net6 = ipaddress.ip_network(sub.prefix6) if sub.prefix6 else None
        for i in range(size):
            ip6 = str(net6.network_address + 4 + i) if net6 is not None else None
            vms.append(
                _Vm(f"{sub.vm_prefix}-{i + 1:02d}", sub, str(net4.network_address + 4 + i), ip6)
            )
    return vms


# ---------------------------------------------------------------------------
# Random helpers (stdlib only, so the output is the same wherever it runs)
# ---------------------------------------------------------------------------


def _poisson(rng: random.Random, lam: float) -> int:
    if lam <= 0:
        return 0
    if lam > 30:
        return max(0, round(rng.gauss(lam, math.sqrt(lam))))
    limit = math.exp(-lam)
    k, p = 0, rng.random()
    while p > limit:
        k += 1
        p *= rng.random()
    return k


def _geometric(rng: random.Random, mean: float) -> int:
    if mean <= 1:
        return 1
    u = 1.0 - rng.random()
    return 1 + int(math.log(u) / math.log(1.0 - 1.0 / mean))


def _lognormal(rng: random.Random, median: float, sigma: float) -> int:
    if sigma <= 0:
        return round(median)
    return max(1, round(median * math.exp(rng.gauss(0.0, sigma))))


def _zipf_cumulative(n: int, skew: float = 1.1) -> list[float]:
    return list(accumulate(1.0 / (i + 1) ** skew for i in range(n)))


# ---------------------------------------------------------------------------
# Flows
# ---------------------------------------------------------------------------

# flow key: (minute, gateway, source, destination, nat ip)
_Key = tuple[int, int, str, str, str]
# counters: packets sent/received, dropped sent/received, bytes sent/received,
# active connections, new connections
_P_SENT, _P_RECV, _D_SENT, _D_RECV, _B_SENT, _B_RECV, _CONNS, _NEW = range(8)


class _Flows:
    """One record per (minute, gateway, source, destination, NAT IP), summed over sessions."""

    def __init__(self, minutes: int) -> None:
        self.minutes = minutes
        self.table: dict[_Key, list[int]] = {}
        self.protected: set[_Key] = set()

    def add(
        self,
        key: _Key,
        payload_sent: int,
        payload_received: int,
        *,
        connections: int,
        new: int,
        rng: random.Random,
        udp: bool = False,
        dropped: tuple[int, int] = (0, 0),
        protect: bool = False,
    ) -> None:
        if not 0 <= key[0] < self.minutes:
            return
        if udp:
            ps = max(1, round(payload_sent / 76))
            pr = max(1, round(payload_received / 76))
            bs, br = ps * 76, pr * 76
        else:
            data_s = _segments(payload_sent, rng)
            data_r = _segments(payload_received, rng)
            ps = data_s + max(1, data_r // 2)
            pr = data_r + max(1, data_s // 2)
            bs = payload_sent + 52 * ps
            br = payload_received + 52 * pr
        row = self.table.get(key)
        if row is None:
            row = self.table[key] = [0] * 8
        row[_P_SENT] += ps
        row[_P_RECV] += pr
        row[_D_SENT] += dropped[0]
        row[_D_RECV] += dropped[1]
        row[_B_SENT] += bs
        row[_B_RECV] += br
        row[_CONNS] += connections
        row[_NEW] += new
        if protect:
            self.protected.add(key)


def _segments(payload: int, rng: random.Random) -> int:
    if payload <= 0:
        return 0
    size = 1_380 if payload > 64_000 else rng.uniform(180, 900)
    return max(1, math.ceil(payload / size))


@dataclass
class _Session:
    minute: int
    vm: int
    service: str
    destination: str
    nat: str
    sent: int
    received: int
    minutes: int


@dataclass(frozen=True)
class _Plan:
    """Where and when the planted events happen (all minutes count from the start)."""

    billing_vm: int
    billing_dst: str
    billing_start: int
    billing_end: int
    github_vm: int
    github_dst: str
    github_start: int
    github_end: int
    github_bursts: tuple[tuple[int, int], ...]
    snat_vm: int
    snat_dst: str
    snat_start: int
    snat_end: int
    snat_job: tuple[int, int]
    unapproved_vm: int
    unapproved_nights: tuple[tuple[int, int], ...]
    new_vms: tuple[int, ...]
    new_start: int
    beacon_vm: int
    beacon_start: int


def _plan(rng: random.Random, vms: list[_Vm], services: dict[str, _Service], days: int) -> _Plan:
    def pick(role: str, exclude: Sequence[int] = ()) -> int:
        pool = [i for i, vm in enumerate(vms) if vm.subnet.role == role and i not in exclude]
        return rng.choice(pool)

    def at(day: int, hour: int, minute: int) -> int:
        return day * 1440 + hour * 60 + minute

    long_week = days >= 5
    billing_start = at(1, 13, 12 + rng.randrange(16))
    billing_end = billing_start + 300 + rng.randrange(40)

    github_day = 3 if long_week else days - 1
    github_start, github_end = at(github_day, 7, rng.randrange(20)), at(github_day, 19, 0)
    bursts: list[tuple[int, int]] = []
    slot = (github_end - github_start) // 6
    for i in range(6):
        length = 8 + rng.randrange(15)
        begin = github_start + i * slot + rng.randrange(10, slot - length - 10)
        bursts.append((begin, begin + length))

    snat_day = 2 if long_week else 1
    snat_start = at(snat_day, 10, 3 + rng.randrange(10))
    snat_end = snat_start + 35 + rng.randrange(20)
    snat_vm = pick("build")
    github_vm = pick("build", exclude=(snat_vm,))

    first_night = 2 if long_week else 0
    nights = []
    for day in range(first_night, days):
        begin = at(day, 2, 15 + rng.randrange(25))
        nights.append((begin, begin + 6 + rng.randrange(9)))

    web = [i for i, vm in enumerate(vms) if vm.subnet.role == "web" and vm.ipv6]
    new_vms = tuple(sorted(rng.sample(web, min(3, len(web)))))

    return _Plan(
        billing_vm=pick("data"),
        billing_dst=rng.choice(services["storage_we"].v4[:12]),
        billing_start=billing_start,
        billing_end=billing_end,
        github_vm=github_vm,
        github_dst=rng.choice(_HOSTNAMES["github.com"]),
        github_start=github_start,
        github_end=github_end,
        github_bursts=tuple(bursts),
        snat_vm=snat_vm,
        snat_dst=rng.choice(services["npm"].v4),
        snat_start=snat_start,
        snat_end=snat_end,
        snat_job=(at(snat_day, 7, 0), at(snat_day, 18, 30)),
        unapproved_vm=pick("payments"),
        unapproved_nights=tuple(nights),
        new_vms=new_vms,
        new_start=at(days - 2, 9, 30 + rng.randrange(20)),
        beacon_vm=pick("corp"),
        beacon_start=at(1 if long_week else 0, 3, 10 + rng.randrange(20)),
    )


def _background_sessions(rng: random.Random, world: _World) -> list[_Session]:
    vms, gateways, services = world.vms, world.gateways, world.services
    start, days = world.start, world.days
    hours = days * 24
    local = [start + timedelta(hours=h + 1) for h in range(hours)]
    utc = [start + timedelta(hours=h) for h in range(hours)]
    rhythms = {
        kind: [_rhythm(kind, t) for t in local] for kind in ("flat", "office", "customer", "batch")
    }
    # Windows Update: quiet, except after Patch Tuesday (second Tuesday, 18:00 UTC)
    rhythms["patch"] = [_patch_tuesday_boost(t) for t in utc]
    cumulative = {
        key: (_zipf_cumulative(len(svc.v4)), _zipf_cumulative(len(svc.v6)))
        for key, svc in services.items()
    }
    sessions: list[_Session] = []
    for index, vm in enumerate(vms):
        gateway = gateways[vm.subnet.gateway]
        # Each VM has its own favourites: rotate the popularity order per VM a little.
        for key, rate, kind in _MIX[vm.subnet.role]:
            svc = services[key]
            cum4, cum6 = cumulative[key]
            curve = rhythms[kind]
            for hour in range(hours):
                for _ in range(_poisson(rng, rate * curve[hour])):
                    use6 = bool(vm.ipv6 and svc.v6) and rng.random() < 0.55
                    if use6:
                        dst = svc.v6[bisect_right(cum6, rng.random() * cum6[-1])]
                        nat = gateway.ipv6[0]
                    else:
                        dst = svc.v4[bisect_right(cum4, rng.random() * cum4[-1])]
                        nat = rng.choice(gateway.ipv4)
                    sessions.append(
                        _Session(
                            minute=hour * 60 + rng.randrange(60),
                            vm=index,
                            service=key,
                            destination=dst,
                            nat=nat,
                            sent=_lognormal(rng, *svc.sent),
                            received=_lognormal(rng, *svc.received),
                            minutes=min(_geometric(rng, svc.minutes), 90),
                        )
                    )
    return sessions


def _settle_late_destinations(
    rng: random.Random, sessions: list[_Session], services: dict[str, _Service], late: int
) -> None:
    """Point sessions in the last two days only at destinations already seen before them.

    So the only destination new in the last two days is the planted one.
    """
    first: dict[str, int] = {}
    for session in sessions:
        if session.minute < first.get(session.destination, 1 << 60):
            first[session.destination] = session.minute
    early = {d for d, m in first.items() if m < late}
    for session in sessions:
        if session.minute >= late and session.destination not in early:
            svc = services[session.service]
            same_family = svc.v6 if ":" in session.destination else svc.v4
            choices = [d for d in same_family if d in early]
            if not choices:
                choices = [d for d in svc.v4 if d in early]
                if not choices:
                    session.minutes = 0
                    continue
                session.nat = session.nat if ":" not in session.nat else ""
            session.destination = rng.choice(choices)


def _emit_background(
    rng: random.Random, flows: _Flows, sessions: list[_Session], world: _World, plan: _Plan
) -> None:
    vms, gateways, services = world.vms, world.gateways, world.services
    snat_gateway = vms[plan.snat_vm].subnet.gateway
    for session in sessions:
        if session.minutes <= 0:
            continue
        vm = vms[session.vm]
        gw = vm.subnet.gateway
        svc = services[session.service]
        nat = session.nat or rng.choice(gateways[gw].ipv4)
        src = vm.ipv6 if ":" in session.destination else vm.ipv4
        assert src is not None
        starts_blocked = (
            gw == snat_gateway
            and session.destination == plan.snat_dst
            and plan.snat_start <= session.minute < plan.snat_end
        )
        if starts_blocked:
            continue  # never established: SNAT ports to that destination ran out
        weights = [0.4 + rng.random() for _ in range(session.minutes)]
        total = sum(weights)
        udp = svc.protocol == "UDP"
        for offset, weight in enumerate(weights):
            minute = session.minute + offset
            if (
                session.vm == plan.snat_vm
                and session.destination == plan.snat_dst
                and plan.snat_start <= minute < plan.snat_end
            ):
                continue
            share = weight / total
            flows.add(
                (minute, gw, src, session.destination, nat),
                round(session.sent * share),
                round(session.received * share),
                connections=svc.connections,
                new=svc.connections if offset == 0 else 0,
                rng=rng,
                udp=udp,
            )


def _emit_events(
    rng: random.Random, flows: _Flows, vms: list[_Vm], gateways: Sequence[_Gateway], plan: _Plan
) -> None:
    mb = 1_000_000

    # 1. billing spike: a bulk upload (AzCopy, 16 connections over both NAT IPs)
    vm = vms[plan.billing_vm]
    gw = gateways[vm.subnet.gateway]
    for minute in range(plan.billing_start, plan.billing_end):
        ramp = min(1.0, (minute - plan.billing_start + 1) / 6)
        for nat in gw.ipv4:
            sent = round(ramp * _lognormal(rng, 165 * mb, 0.12))
            flows.add(
                (minute, vm.subnet.gateway, vm.ipv4, plan.billing_dst, nat),
                sent,
                sent // 400,
                connections=8,
                new=8 if minute == plan.billing_start else 0,
                rng=rng,
                protect=True,
            )

    # 2. github.com: one heavy connection, rate limited in bursts
    vm = vms[plan.github_vm]
    gw = gateways[vm.subnet.gateway]
    nat = gw.ipv4[0]
    for minute in range(plan.github_start, plan.github_end):
        in_burst = any(b <= minute < e for b, e in plan.github_bursts)
        received = _lognormal(rng, (22 if in_burst else 34) * mb, 0.3)
        sent = _lognormal(rng, 180_000, 0.3)
        # packets of a bulk download: data segments of 1380 bytes, one ACK per two
        pr = math.ceil(received / 1380)
        dropped = (0, 0)
        if in_burst:
            dropped = (
                max(1, round(pr / 2 * rng.uniform(0.004, 0.015))),
                max(1, round(pr * rng.uniform(0.02, 0.06))),
            )
        flows.add(
            (minute, vm.subnet.gateway, vm.ipv4, plan.github_dst, nat),
            sent,
            received,
            connections=1,
            new=1 if minute == plan.github_start else 0,
            rng=rng,
            dropped=dropped,
            protect=True,
        )

    # 3. SNAT exhaustion: a package-mirror job polls one npm address every minute
    vm = vms[plan.snat_vm]
    gw = gateways[vm.subnet.gateway]
    for minute in range(*plan.snat_job):
        if plan.snat_start <= minute < plan.snat_end:
            continue
        flows.add(
            (minute, vm.subnet.gateway, vm.ipv4, plan.snat_dst, gw.ipv4[0]),
            _lognormal(rng, 12_000, 0.4),
            _lognormal(rng, 2_500_000, 0.8),
            connections=2,
            new=2,
            rng=rng,
            protect=True,
        )

    # 4. a nightly export to an address nobody approved
    vm = vms[plan.unapproved_vm]
    gw = gateways[vm.subnet.gateway]
    for begin, end in plan.unapproved_nights:
        nat = rng.choice(gw.ipv4)
        for minute in range(begin, end):
            flows.add(
                (minute, vm.subnet.gateway, vm.ipv4, _UNAPPROVED_IP, nat),
                _lognormal(rng, 42 * mb, 0.2),
                _lognormal(rng, 150_000, 0.3),
                connections=1,
                new=1 if minute == begin else 0,
                rng=rng,
                protect=True,
            )

    # 5. a destination never seen before: telemetry to a new vendor after a deploy
    honeycomb = _HOSTNAMES["api.honeycomb.io"]
    v4 = [ip for ip in honeycomb if ":" not in ip]
    v6 = [ip for ip in honeycomb if ":" in ip]
    for index in plan.new_vms:
        vm = vms[index]
        gw = gateways[vm.subnet.gateway]
        minute = plan.new_start + rng.randrange(3)
        while minute < flows.minutes:
            if vm.ipv6 and rng.random() < 0.5:
                key = (minute, vm.subnet.gateway, vm.ipv6, v6[0], gw.ipv6[0])
            else:
                key = (minute, vm.subnet.gateway, vm.ipv4, rng.choice(v4), rng.choice(gw.ipv4))
            flows.add(
                key,
                _lognormal(rng, 80_000, 0.5),
                _lognormal(rng, 3_000, 0.3),
                connections=1,
                new=1,
                rng=rng,
                protect=True,
            )
            minute += 6 + rng.randrange(9)

    # 6. a beacon: every 300 s with a few seconds of jitter, tiny payloads
    vm = vms[plan.beacon_vm]
    gw = gateways[vm.subnet.gateway]
    second = plan.beacon_start * 60 + rng.randrange(60)
    while second // 60 < flows.minutes:
        contact = second + rng.randint(-4, 4)
        flows.add(
            (contact // 60, vm.subnet.gateway, vm.ipv4, _BEACON_IP, gw.ipv4[0]),
            rng.randint(330, 620),
            rng.randint(180, 1300),
            connections=1,
            new=1,
            rng=rng,
            protect=True,
        )
        second += 300


def _sprinkle_noise(rng: random.Random, flows: _Flows, quiet: set[str]) -> None:
    """A few isolated drops and some null counters on background records.

    No drops touch the addresses in ``quiet`` (the github.com event's VM and GitHub).
    """
    keys = sorted(k for k in flows.table if k not in flows.protected)
    heavy = [
        k
        for k in keys
        if flows.table[k][_B_RECV] > 5_000_000 and k[2] not in quiet and k[3] not in quiet
    ]
    for key in rng.sample(heavy, min(12, len(heavy))):
        row = flows.table[key]
        row[_D_RECV] += rng.randint(1, 3)
    for key in rng.sample(keys, len(keys) // 250):
        row = flows.table[key]
        pattern = rng.random()
        # -1 marks a null counter (the true value stays for the metrics)
        if pattern < 0.6:
            row.extend((_D_SENT, _D_RECV))
        elif pattern < 0.85:
            row.extend((_P_SENT, _P_RECV, _D_SENT, _D_RECV, _B_SENT, _B_RECV))
        else:
            row.extend((_B_SENT, _B_RECV))


# ---------------------------------------------------------------------------
# Writers
# ---------------------------------------------------------------------------

_COUNTER_NAMES = (
    ("PacketsSent", _P_SENT),
    ("PacketsReceived", _P_RECV),
    ("PacketsSentDropped", _D_SENT),
    ("PacketsReceivedDropped", _D_RECV),
    ("BytesSent", _B_SENT),
    ("BytesReceived", _B_RECV),
)


def _gzip(text: str) -> bytes:
    return gzip.compress(text.encode("utf-8"), compresslevel=9, mtime=0)


def _write(path: Path, data: bytes) -> int:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return len(data)


def _blob_path(root: Path, gateway: _Gateway, hour: datetime) -> Path:
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


def _write_flowlogs(
    root: Path, rng: random.Random, flows: _Flows, world: _World
) -> tuple[int, int, int]:
    """Write one gzip blob per gateway per hour, records filed by receive time."""
    gateways, start = world.gateways, world.start
    hours = flows.minutes // 60
    blobs: dict[tuple[int, int], list[tuple[_Key, list[int]]]] = defaultdict(list)
    for key in sorted(flows.table):
        minute = key[0]
        hour = minute // 60
        # Records reach storage 20-70 s after their window: a few from the last minute
        # of an hour are filed in the next hour's blob.
        if minute % 60 == 59 and hour + 1 < hours and rng.random() < 0.2:
            hour += 1
        blobs[(key[1], hour)].append((key, flows.table[key]))
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
                nulls = set(row[8:])
                props = [
                    f'"SourceIp": "{key[2]}"',
                    f'"DestinationIp": "{key[3]}"',
                    f'"NatGatewayIp": "{key[4]}"',
                ]
                props.extend(
                    f'"{name}": {"null" if i in nulls else row[i]}' for name, i in _COUNTER_NAMES
                )
                lines.append(f'{{"time": "{times[key[0]]}{envelope}{", ".join(props)}}}}}\n')
            records += len(lines)
            path = _blob_path(root, gateway, start + timedelta(hours=hour))
            written += _write(path, _gzip("".join(lines)))
    return records, len(gateways) * hours, written


def _format_value(value: float) -> str:
    if float(value).is_integer():
        return str(int(value))
    return f"{value:.2f}".rstrip("0").rstrip(".")


def _write_metrics(
    path: Path, rng: random.Random, flows: _Flows, world: _World, plan: _Plan
) -> tuple[int, int, dict[str, Any]]:
    """Gateway metrics at 1-minute grain, derived from the true (pre-null) flow counters."""
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
        minute, g = key[0], key[1]
        udp = 1 if key[3] in udp_ips else 0
        bytes_out[g][udp][minute] += row[_B_SENT]
        bytes_in[g][udp][minute] += row[_B_RECV]
        conns[g][udp][minute] += row[_CONNS]
        new[g][udp][minute] += row[_NEW]
        drops[g][minute] += row[_D_SENT] + row[_D_RECV]
    idle = [3 * sum(1 for vm in vms if vm.subnet.gateway == g) for g in range(g_count)]

    snat_g = vms[plan.snat_vm].subnet.gateway
    storm_start = plan.snat_start - 12
    failed: dict[int, int] = {}
    storm: dict[int, int] = {}
    for minute in range(storm_start, plan.snat_end + 6):
        ramp = min(1.0, (minute - storm_start + 1) / 10)
        storm[minute] = round(ramp * rng.uniform(3_500, 6_500))
        if plan.snat_start <= minute < plan.snat_end:
            failed[minute] = round(rng.uniform(140, 420) + 0.12 * storm[minute])
    dip = {plan.snat_start + 7 + rng.randrange(10): round(rng.uniform(96.0, 98.5), 2)}
    healthy_blips = {m: round(rng.uniform(99.5, 99.95), 2) for m in rng.sample(range(n), n // 400)}

    lines = ["time,resource_id,metric,protocol,direction,connection_state,value\n"]
    protocols = ("TCP", "UDP")  # index 0 and 1 of the per-protocol arrays
    for minute in range(n):
        t = (start + timedelta(minutes=minute)).strftime("%Y-%m-%dT%H:%M:00Z")
        for g, gateway in enumerate(gateways):
            rid = gateway.arm_id
            avail = 100.0
            if g == snat_g and minute in dip:
                avail = dip[minute]
            elif minute in healthy_blips and (minute + g) % 3:
                avail = healthy_blips[minute]
            extra_attempts = storm.get(minute, 0) if g == snat_g else 0
            extra_failed = failed.get(minute, 0) if g == snat_g else 0
            drop = drops[g][minute] + _poisson(rng, 0.4)
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
    written = _write(path, _gzip("".join(lines)))
    facts = {
        "failed": failed,
        "storm": storm,
        "availability_min": min(dip.values()),
        "dip_minute": next(iter(dip)),
    }
    return len(lines) - 1, written, facts


# ---------------------------------------------------------------------------
# Side files
# ---------------------------------------------------------------------------


def _service_tags_json() -> str:
    tags = _tag_prefixes()
    meta = {name: (region, rid, service) for name, region, rid, service, _p in _TAG_SPECS}
    values = []
    for name in sorted(tags):
        if name in meta:
            region, region_id, service = meta[name]
        elif name.startswith("AzureCloud."):
            region = name.split(".", 1)[1].lower()
            region_id = 18 if region == "westeurope" else 17
            service = ""
        else:
            region, region_id, service = "", 0, _SYSTEM_SERVICE.get(name, "")
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


_ALLOWLIST_HEAD = """\
# Fabrikam egress allowlist: destinations approved for traffic through the NAT gateways
# natgw-prod-weu and natgw-eng-weu. One entry per line: a CIDR (IPv4 or IPv6), an Azure
# Service Tag name (prefixes in service_tags.json) or a hostname (addresses in
# hostnames.json). Reviewed 2026-11-02 by the cloud platform team.
"""


def _allowlist_text() -> str:
    sections = [
        (
            "Azure platform services, by Service Tag",
            [
                "AzureActiveDirectory",
                "AzureMonitor",
                "Storage.WestEurope",
                "Storage.NorthEurope",
                "AzureKeyVault.WestEurope",
                "AzureContainerRegistry.WestEurope",
                "MicrosoftContainerRegistry",
                "AzureUpdateDelivery",
            ],
        ),
        (
            "SaaS and partners hosted in our region: broad, review due 2027-01",
            ["AzureCloud.WestEurope"],
        ),
        (
            "Source code and packages",
            [
                "github.com",
                "api.github.com",
                "codeload.github.com",
                "objects.githubusercontent.com",
                "ghcr.io",
                "pypi.org",
                "files.pythonhosted.org",
                "registry.npmjs.org",
                "packages.microsoft.com",
            ],
        ),
        (
            "Operating system updates and time",
            [
                "azure.archive.ubuntu.com",
                "security.ubuntu.com",
                "ntp.ubuntu.com",
                "download.windowsupdate.com",
                "time.windows.com",
            ],
        ),
        (
            "SaaS vendors (contracts on file)",
            [
                "api.stripe.com",
                "api.sendgrid.com",
                "hooks.slack.com",
                "events.pagerduty.com",
                "fabrikam.atlassian.net",
                "api.honeycomb.io  # observability pilot, approved 2026-10-28",
            ],
        ),
        (
            "CDN ranges in front of package registries and SaaS (published ranges)",
            [
                "151.101.0.0/16  # Fastly",
                "2a04:4e42::/32  # Fastly IPv6",
                "104.16.0.0/13  # Cloudflare",
                "172.64.0.0/13  # Cloudflare",
            ],
        ),
    ]
    parts = [_ALLOWLIST_HEAD]
    for title, entries in sections:
        parts.append(f"\n# {title}\n")
        parts.extend(f"{entry}\n" for entry in entries)
    return "".join(parts)


def _inventory_csv(vms: list[_Vm]) -> str:
    lines = ["ip,vm_name,subnet,team\n"]
    for vm in vms:
        lines.append(f"{vm.ipv4},{vm.name},{vm.subnet.name},{vm.subnet.team}\n")
        if vm.ipv6:
            lines.append(f"{vm.ipv6},{vm.name},{vm.subnet.name},{vm.subnet.team}\n")
    return "".join(lines)


# ---------------------------------------------------------------------------
# Answer key
# ---------------------------------------------------------------------------


def _iso(start: datetime, minute: int) -> str:
    return (start + timedelta(minutes=minute)).strftime("%Y-%m-%dT%H:%M:00Z")


def _approved(ip: str, allow: list[str], tags: dict[str, tuple[str, ...]]) -> bool:
    address = ipaddress.ip_address(ip)
    for entry in allow:
        if "/" in entry:
            prefixes: Sequence[str] = (entry,)
        elif entry in tags:
            prefixes = tags[entry]
        else:
            prefixes = [f"{a}/{32 if ':' not in a else 128}" for a in _HOSTNAMES.get(entry, ())]
        for prefix in prefixes:
            network = ipaddress.ip_network(prefix)
            if network.version == address.version and address in network:
                return True
    return False


def _recorded(row: list[int], index: int) -> int:
    """A counter as the flow log shows it (null counts as 0 here)."""
    return 0 if index in row[8:] else row[index]


def _answer_key(
    flows: _Flows, world: _World, plan: _Plan, metrics: dict[str, Any], *, seed: int, records: int
) -> dict[str, Any]:
    vms, gateways, start, days = world.vms, world.gateways, world.start, world.days
    by_ip = {vm.ipv4: vm for vm in vms} | {vm.ipv6: vm for vm in vms if vm.ipv6}
    table = flows.table
    gb = 1e9

    def vm_facts(index: int) -> dict[str, Any]:
        vm = vms[index]
        gw = gateways[vm.subnet.gateway]
        return {
            "vm_name": vm.name,
            "vm_ip": vm.ipv4,
            "subnet": vm.subnet.name,
            "team": vm.subnet.team,
            "resource_id": gw.resource_id,
            "gateway": gw.name,
        }

    def rows(src: str | None = None, dst: str | None = None) -> list[tuple[_Key, list[int]]]:
        return sorted(
            (k, r)
            for k, r in table.items()
            if (src is None or k[2] == src) and (dst is None or k[3] == dst)
        )

    hourly: dict[int, int] = defaultdict(int)
    for key, row in table.items():
        hourly[key[0] // 60] += _recorded(row, _B_SENT) + _recorded(row, _B_RECV)
    usual_hour = statistics.median(hourly[h] for h in range(days * 24))

    events: list[dict[str, Any]] = []

    # 1. billing spike
    vm = vms[plan.billing_vm]
    spike = rows(vm.ipv4, plan.billing_dst)
    spike = [(k, r) for k, r in spike if plan.billing_start <= k[0] < plan.billing_end]
    sent = sum(_recorded(r, _B_SENT) for _, r in spike)
    received = sum(_recorded(r, _B_RECV) for _, r in spike)
    minutes = plan.billing_end - plan.billing_start
    spike_hours = {k[0] // 60 for k, _ in spike}
    peak_hour = max(spike_hours, key=lambda h: hourly[h])
    events.append(
        {
            "id": 1,
            "kind": "billing_spike",
            "title": "Bulk upload to one Azure Storage account",
            **vm_facts(plan.billing_vm),
            "destination_ips": [plan.billing_dst],
            "hostname": None,
            "destination_label": "Storage.WestEurope",
            "nat_gateway_ips": sorted({k[4] for k, _ in spike}),
            "start": _iso(start, plan.billing_start),
            "end": _iso(start, plan.billing_end),
            "numbers": {
                "minutes": minutes,
                "records": len(spike),
                "bytes_sent": sent,
                "bytes_received": received,
                "gb_sent": round(sent / gb, 1),
                "gb_per_hour": round(sent / gb / (minutes / 60), 1),
                "org_median_hourly_gb": round(usual_hour / gb, 2),
                "times_usual_hour": round(sent / (minutes / 60) / usual_hour, 1),
                "peak_hour": _iso(start, peak_hour * 60),
                "peak_hour_org_gb": round(hourly[peak_hour] / gb, 1),
                "cost_usd_at_0_045_per_gb": round((sent + received) / gb * PRICE_PER_GB, 2),
            },
        }
    )

    # 2. github.com drops
    vm = vms[plan.github_vm]
    conn = rows(vm.ipv4, plan.github_dst)
    conn_day = [(k, r) for k, r in conn if plan.github_start <= k[0] < plan.github_end]
    dropped = [(k, r) for k, r in conn if r[_D_SENT] + r[_D_RECV] > 0]
    bursts = []
    for begin, end in plan.github_bursts:
        inside = [r for k, r in dropped if begin <= k[0] < end]
        bursts.append(
            {
                "start": _iso(start, begin),
                "end": _iso(start, end),
                "minutes": end - begin,
                "packets_sent_dropped": sum(r[_D_SENT] for r in inside),
                "packets_received_dropped": sum(r[_D_RECV] for r in inside),
            }
        )
    burst_rows = [r for k, r in dropped]
    github_ips = set(_HOSTNAMES["github.com"])
    others = [
        (k, r)
        for k, r in table.items()
        if k[3] in github_ips and k[2] != vm.ipv4 and _recorded(r, _D_RECV) > 0
    ]
    noise = [
        (k, r)
        for k, r in table.items()
        if not (k[2] == vm.ipv4 and k[3] == plan.github_dst)
        and (_recorded(r, _D_SENT) + _recorded(r, _D_RECV)) > 0
    ]
    events.append(
        {
            "id": 2,
            "kind": "github_dropped_packets",
            "title": "Intermittent github.com problem: one heavy connection rate limited",
            **vm_facts(plan.github_vm),
            "destination_ips": [plan.github_dst],
            "hostname": "github.com",
            "destination_label": "github.com",
            "nat_gateway_ips": sorted({k[4] for k, _ in conn_day}),
            "start": _iso(start, plan.github_bursts[0][0]),
            "end": _iso(start, plan.github_bursts[-1][1]),
            "numbers": {
                "connection_start": _iso(start, plan.github_start),
                "connection_end": _iso(start, plan.github_end),
                "connection_records": len(conn_day),
                "connection_gb_received": round(sum(r[_B_RECV] for _, r in conn_day) / gb, 1),
                "records_with_drops": len(dropped),
                "packets_sent_dropped": sum(r[_D_SENT] for r in burst_rows),
                "packets_received_dropped": sum(r[_D_RECV] for r in burst_rows),
                "received_drop_percent_in_bursts": round(
                    100
                    * sum(r[_D_RECV] for r in burst_rows)
                    / (sum(r[_P_RECV] for r in burst_rows) + sum(r[_D_RECV] for r in burst_rows)),
                    1,
                ),
                "bursts": bursts,
                "other_vms_to_github_records_with_drops": len(others),
                "background_records_with_drops_elsewhere": len(noise),
                "background_packets_dropped_elsewhere": sum(
                    _recorded(r, _D_SENT) + _recorded(r, _D_RECV) for _, r in noise
                ),
            },
        }
    )

    # 3. SNAT exhaustion
    vm = vms[plan.snat_vm]
    job = [
        (k, r)
        for k, r in rows(vm.ipv4, plan.snat_dst)
        if plan.snat_job[0] <= k[0] < plan.snat_job[1]
    ]
    before = [k for k, _ in job if k[0] < plan.snat_start]
    after = [k for k, _ in job if k[0] >= plan.snat_end]
    failed = metrics["failed"]
    gw = gateways[vm.subnet.gateway]
    events.append(
        {
            "id": 3,
            "kind": "snat_exhaustion",
            "title": "SNAT port exhaustion: connections fail, flows vanish",
            **vm_facts(plan.snat_vm),
            "destination_ips": [plan.snat_dst],
            "hostname": "registry.npmjs.org",
            "destination_label": "registry.npmjs.org",
            "nat_gateway_ips": list(gw.ipv4),
            "start": _iso(start, plan.snat_start),
            "end": _iso(start, plan.snat_end),
            "numbers": {
                "minutes_with_failed": len(failed),
                "snat_failed_total": sum(failed.values()),
                "snat_failed_peak_per_minute": max(failed.values()),
                "snat_attempted_storm_peak_per_minute": max(metrics["storm"].values()),
                "datapath_availability_min": metrics["availability_min"],
                "datapath_availability_dip_at": _iso(start, metrics["dip_minute"]),
                "job_start": _iso(start, plan.snat_job[0]),
                "job_end": _iso(start, plan.snat_job[1]),
                "vm_records_before": len(before),
                "vm_records_during": sum(
                    1 for k, _ in job if plan.snat_start <= k[0] < plan.snat_end
                ),
                "vm_records_after": len(after),
                "last_record_before": _iso(start, max(k[0] for k in before)),
                "first_record_after": _iso(start, min(k[0] for k in after)),
            },
        }
    )

    # 4. unapproved destination
    vm = vms[plan.unapproved_vm]
    talk = rows(dst=_UNAPPROVED_IP)
    events.append(
        {
            "id": 4,
            "kind": "unapproved_destination",
            "title": "Nightly upload to a destination that is not on the allowlist",
            **vm_facts(plan.unapproved_vm),
            "destination_ips": [_UNAPPROVED_IP],
            "hostname": None,
            "destination_label": None,
            "nat_gateway_ips": sorted({k[4] for k, _ in talk}),
            "start": _iso(start, talk[0][0][0]),
            "end": _iso(start, talk[-1][0][0] + 1),
            "numbers": {
                "nights": len(plan.unapproved_nights),
                "records": len(talk),
                "bytes_sent": sum(r[_B_SENT] for _, r in talk),
                "gb_sent": round(sum(r[_B_SENT] for _, r in talk) / gb, 2),
                "bytes_received": sum(r[_B_RECV] for _, r in talk),
                "sessions": [
                    {"start": _iso(start, b), "end": _iso(start, e)}
                    for b, e in plan.unapproved_nights
                ],
                "source_vms": sorted({by_ip[k[2]].name for k, _ in talk}),
            },
        }
    )

    # 5. new destination
    new_ips = set(_HOSTNAMES["api.honeycomb.io"])
    fresh = sorted((k, r) for k, r in table.items() if k[3] in new_ips)
    events.append(
        {
            "id": 5,
            "kind": "new_destination",
            "title": "A destination never seen before the last two days",
            "vm_name": [vms[i].name for i in plan.new_vms],
            "vm_ip": [vms[i].ipv4 for i in plan.new_vms],
            "subnet": vms[plan.new_vms[0]].subnet.name,
            "team": vms[plan.new_vms[0]].subnet.team,
            "resource_id": gateways[vms[plan.new_vms[0]].subnet.gateway].resource_id,
            "gateway": gateways[vms[plan.new_vms[0]].subnet.gateway].name,
            "destination_ips": sorted({k[3] for k, _ in fresh}),
            "hostname": "api.honeycomb.io",
            "destination_label": "api.honeycomb.io",
            "nat_gateway_ips": sorted({k[4] for k, _ in fresh}),
            "start": _iso(start, fresh[0][0][0]),
            "end": _iso(start, fresh[-1][0][0] + 1),
            "numbers": {
                "first_seen": _iso(start, fresh[0][0][0]),
                "records": len(fresh),
                "source_ips": sorted({k[2] for k, _ in fresh}),
                "bytes_sent": sum(r[_B_SENT] for _, r in fresh),
                "approved_by_allowlist": True,
            },
        }
    )

    # 6. beacon
    vm = vms[plan.beacon_vm]
    beat = rows(vm.ipv4, _BEACON_IP)
    gaps = [b[0][0] - a[0][0] for a, b in pairwise(beat)]
    events.append(
        {
            "id": 6,
            "kind": "beacon",
            "title": "Beacon: small contacts every five minutes for days",
            **vm_facts(plan.beacon_vm),
            "destination_ips": [_BEACON_IP],
            "hostname": None,
            "destination_label": None,
            "nat_gateway_ips": sorted({k[4] for k, _ in beat}),
            "start": _iso(start, beat[0][0][0]),
            "end": _iso(start, beat[-1][0][0] + 1),
            "numbers": {
                "contacts": len(beat),
                "period_seconds": 300,
                "jitter_seconds": 4,
                "median_gap_minutes": statistics.median(gaps),
                "gaps_of_4_to_6_minutes_percent": round(
                    100 * sum(1 for g in gaps if 4 <= g <= 6) / len(gaps), 1
                ),
                "bytes_sent_per_contact_median": statistics.median(r[_B_SENT] for _, r in beat),
                "bytes_received_per_contact_median": statistics.median(r[_B_RECV] for _, r in beat),
                "bytes_total": sum(r[_B_SENT] + r[_B_RECV] for _, r in beat),
                "days_active": round((beat[-1][0][0] - beat[0][0][0]) / 1440, 1),
            },
        }
    )

    allow = [
        line.split("#", 1)[0].strip()
        for line in _allowlist_text().splitlines()
        if line.split("#", 1)[0].strip()
    ]
    tags = _tag_prefixes()
    destinations = sorted({k[3] for k in table}, key=lambda ip: ipaddress.ip_address(ip).packed)
    unapproved = [ip for ip in destinations if not _approved(ip, allow, tags)]
    late = (days - 2) * 1440
    first: dict[str, int] = {}
    for key in table:
        if key[0] < first.get(key[3], 1 << 60):
            first[key[3]] = key[0]
    null_records = sum(1 for r in table.values() if len(r) > 8)
    v6_records = sum(1 for k in table if ":" in k[2])

    return {
        "dataset": {
            "organisation": "Fabrikam",
            "seed": seed,
            "start": _iso(start, 0),
            "end": _iso(start, days * 1440),
            "days": days,
            "vms": len(vms),
            "records": records,
            "ipv6_records": v6_records,
            "records_with_null_counters": null_records,
            "destinations": len(destinations),
            "last_two_days_start": _iso(start, late),
            "org_median_hourly_bytes": round(usual_hour),
            "price_per_gb_usd": PRICE_PER_GB,
            "gateways": [
                {
                    "name": gw.name,
                    "resource_id": gw.resource_id,
                    "subscription": gw.subscription,
                    "resource_group": gw.resource_group,
                    "public_ips": list(gw.ipv4 + gw.ipv6),
                    "vms": sum(1 for vm in vms if gateways[vm.subnet.gateway] is gw),
                }
                for gw in gateways
            ],
        },
        "events": events,
        "unapproved_destinations": unapproved,
        "new_destinations_last_two_days": sorted(
            (ip for ip, m in first.items() if m >= late),
            key=lambda ip: ipaddress.ip_address(ip).packed,
        ),
    }


def _answer_key_md(key: dict[str, Any]) -> str:
    ds = key["dataset"]
    ev = {e["kind"]: e for e in key["events"]}
    b, g, s = ev["billing_spike"], ev["github_dropped_packets"], ev["snat_exhaustion"]
    u, n, c = ev["unapproved_destination"], ev["new_destination"], ev["beacon"]
    bn, gn, sn, un, nn, cn = (e["numbers"] for e in (b, g, s, u, n, c))
    price = ds["price_per_gb_usd"]

    def day(text: str) -> str:
        return text[:10]

    def hm(text: str) -> str:
        return text[11:16]

    def code(values: Sequence[str]) -> str:
        return ", ".join(f"`{v}`" for v in values)

    def para(*sentences: str) -> str:
        return textwrap.fill(
            " ".join(sentences), width=96, break_long_words=False, break_on_hyphens=False
        )

    gateways = "\n".join(
        f"| `{gw['name']}` | {', '.join(gw['public_ips'])} | {gw['vms']} |" for gw in ds["gateways"]
    )
    bursts = "\n".join(
        f"| {hm(x['start'])}-{hm(x['end'])} | {x['minutes']} | {x['packets_sent_dropped']:,} "
        f"| {x['packets_received_dropped']:,} |"
        for x in gn["bursts"]
    )
    nights = ", ".join(f"{day(x['start'])[5:]} {hm(x['start'])}" for x in un["sessions"])
    sections = [
        "# Sample week: answer key for trainers",
        para(
            f"The flow logs in `data/samples/` cover {ds['start']} to {ds['end']} ({ds['days']}",
            f"days) of the organisation *{ds['organisation']}*: {ds['vms']} VMs behind two",
            f"StandardV2 NAT gateways, {ds['records']:,} records ({ds['ipv6_records']:,} from",
            f"IPv6 sources, {ds['records_with_null_counters']:,} with null counters) and",
            f"{ds['destinations']} distinct destinations. All of it is made by `natlens samples",
            f"--out DIR --seed {ds['seed']}` (`natlens/_samples.py`); the numbers below are",
            "computed from the generated data and `tests/test_samples.py` checks them.",
        ),
        "| gateway | public IPs | VMs |\n|---|---|---|\n" + gateways,
        para(
            f"The organisation's median hour moves {ds['org_median_hourly_bytes'] / 1e9:.2f} GB",
            f"(both directions). Example costs use {price} USD per GB processed; the real",
            "price depends on region and currency.",
        ),
        "Load the data once:",
        "```python\nimport natlens\n\nsamples = natlens.sample_data()\n"
        "flows = natlens.read_flowlogs(samples.flowlogs)\n"
        "metrics = natlens.read_metrics(samples.metrics)\n```",
        "## 1. Billing spike: a bulk upload to Azure Storage",
        para(
            f"`{b['vm_name']}` ({b['vm_ip']}, team {b['team']}) starts uploading to the storage",
            f"address `{b['destination_ips'][0]}` (Storage.WestEurope) at {hm(b['start'])} UTC on",
            f"{day(b['start'])} and stops at {hm(b['end'])}: {bn['gb_sent']} GB in",
            f"{bn['minutes']} minutes through both public IPs of `{b['gateway']}`, about",
            f"{bn['gb_per_hour']} GB per hour, {bn['times_usual_hour']}x the organisation's",
            f"median hour. The peak hour ({hm(bn['peak_hour'])} UTC) moved",
            f"{bn['peak_hour_org_gb']} GB in all. At {price} USD/GB the upload costs about",
            f"{bn['cost_usd_at_0_045_per_gb']} USD in data processing alone.",
        ),
        para(
            "How to find it: bytes per hour over the week show one afternoon far above the",
            "rest (`natlens.find_spikes(flows)`); within it, bytes by source and destination",
            "point at one VM and one address (`natlens.explain_spike`), which the Service Tags",
            "file labels Storage.WestEurope (`natlens.label_destinations`). ByteCount (Out) in",
            "the metrics shows the same plateau.",
        ),
        "## 2. Intermittent github.com problem: one heavy connection rate limited",
        para(
            f"On {day(gn['connection_start'])} `{g['vm_name']}` ({g['vm_ip']}) holds one heavy",
            f"download from github.com (`{g['destination_ips'][0]}`) from",
            f"{hm(gn['connection_start'])} to {hm(gn['connection_end'])} UTC",
            f"({gn['connection_gb_received']} GB). In {len(gn['bursts'])} bursts the gateway",
            f"drops packets on that connection: {gn['records_with_drops']} records with",
            "PacketsSentDropped or PacketsReceivedDropped above zero,",
            f"{gn['packets_received_dropped']:,} received and {gn['packets_sent_dropped']:,}",
            f"sent packets dropped, about {gn['received_drop_percent_in_bursts']}% of the",
            "received packets during the bursts. Other VMs reaching github.com see no drops.",
            f"Elsewhere in the week only {gn['background_records_with_drops_elsewhere']}",
            f"isolated records show a drop ({gn['background_packets_dropped_elsewhere']}",
            "packets in all): background noise.",
        ),
        "| bursts (UTC) | minutes | sent dropped | received dropped |\n|---|---|---|---|\n"
        + bursts,
        para(
            "How to find it: follow the troubleshooting path (`natlens.diagnose(flows,",
            f'source="{g["vm_ip"]}", destination="github.com", metrics=metrics,',
            "resolver=natlens.read_hostnames(samples.hostnames))`). DatapathAvailability is",
            "healthy; flows from the VM to github.com exist; records with dropped counters above",
            "zero single out one source and destination (`natlens.dropped_packets(flows)`).",
            "PacketDropCount in the metrics rises in the same minutes. The remedy: spread the",
            "transfer over more connections, or add public IPs.",
        ),
        f"## 3. SNAT exhaustion on {s['gateway']}",
        para(
            f"On {day(s['start'])} from {hm(s['start'])} to {hm(s['end'])} UTC",
            f"({sn['minutes_with_failed']} minutes) SNATConnectionCount with connection_state",
            f"Failed is above zero on `{s['gateway']}` (one IPv4 public IP):",
            f"{sn['snat_failed_total']:,} failed connection attempts, at most",
            f"{sn['snat_failed_peak_per_minute']:,} per minute, while a CI storm pushes",
            f"Attempted to about {sn['snat_attempted_storm_peak_per_minute']:,} per minute.",
            f"DatapathAvailability dips once to {sn['datapath_availability_min']}%",
            f"({hm(sn['datapath_availability_dip_at'])}) and is 100% otherwise: the gateway is",
            "healthy, it is out of ports.",
        ),
        para(
            f"In the flow log, `{s['vm_name']}` ({s['vm_ip']}) runs a package-mirror job that",
            f"reaches registry.npmjs.org (`{s['destination_ips'][0]}`) every minute from",
            f"{hm(sn['job_start'])} to {hm(sn['job_end'])}; its records stop after",
            f"{hm(sn['last_record_before'])} and come back at {hm(sn['first_record_after'])}",
            f"({sn['vm_records_during']} records in the window, {sn['vm_records_before']} before",
            f"and {sn['vm_records_after']} after). New connections from the whole gateway to",
            "that address are missing in the window; connections opened before it go on.",
        ),
        para(
            "How to find it: flows present before and after and none in between are",
            "connections that were never established, which the flow log cannot show and the",
            "metrics can (`natlens.diagnose(flows, source=..., destination=...,",
            "metrics=metrics)`, or SNATConnectionCount by connection_state for that day). The",
            "remedy: more public IPs on the gateway, or connection reuse in the job.",
        ),
        "## 4. A VM talking to an unapproved destination",
        para(
            f"`{u['vm_name']}` ({u['vm_ip']}, team {u['team']}) uploads to",
            f"`{u['destination_ips'][0]}` every night ({un['nights']} sessions, starting",
            f"{nights} UTC): {un['gb_sent']} GB in {un['records']} records. The address is in",
            "no Service Tag, no allowlisted CIDR and behind no allowlisted hostname, and no",
            "other VM talks to it.",
        ),
        para(
            "How to find it: check every destination against the allowlist (CIDRs, Service",
            "Tags through service_tags.json, hostnames through hostnames.json:",
            "`natlens.check_allowlist(flows, samples.allowlist,",
            "service_tags=samples.service_tags, resolver=natlens.read_hostnames(",
            "samples.hostnames))`). What is left unapproved is",
            f"{code(key['unapproved_destinations'])}: this upload and the beacon of event 6.",
            "`natlens.find_exfiltration(flows)` also points at the upload.",
        ),
        "## 5. A destination never seen before the last two days",
        para(
            f"`{n['hostname']}` ({code(n['destination_ips'])}) first appears at",
            f"{hm(nn['first_seen'])} UTC on {day(nn['first_seen'])}, after a deploy of",
            f"{code(n['vm_name'])} (team {n['team']}): {nn['records']} records until the end of",
            "the week, over IPv4 and IPv6. Every other destination of the week was seen before",
            f"{day(ds['last_two_days_start'])}. It is on the allowlist (an approved pilot): a",
            "change to notice, not a violation.",
        ),
        para(
            "How to find it: first-seen time per destination, keeping those first seen in the",
            "last two days (`natlens.new_destinations(flows,",
            f'baseline="{day(ds["last_two_days_start"])}")`).',
        ),
        "## 6. A beacon",
        para(
            f"`{c['vm_name']}` ({c['vm_ip']}, team {c['team']}) contacts",
            f"`{c['destination_ips'][0]}` every {cn['period_seconds']} seconds (a few seconds of",
            f"jitter) from {day(c['start'])} {hm(c['start'])} UTC to the end of the week:",
            f"{cn['contacts']:,} records over {cn['days_active']} days, a median of",
            f"{cn['bytes_sent_per_contact_median']} bytes sent and",
            f"{cn['bytes_received_per_contact_median']} received per contact. In the flow log",
            f"the median gap between records is {cn['median_gap_minutes']} minutes and",
            f"{cn['gaps_of_4_to_6_minutes_percent']}% of the gaps are 4 to 6 minutes.",
        ),
        para(
            "How to find it: the times between records per source and destination; a pair with",
            "many records, a tiny spread of gaps and tiny byte counts is a beacon",
            "(`natlens.find_beacons(flows)`). The destination is not on the allowlist either.",
        ),
    ]
    return "\n\n".join(sections) + "\n"


_README = """\
# Sample data

One realistic week of Azure NAT Gateway flow logs (`NatGatewayFlowlogsV1`) of the fictitious
organisation Fabrikam, with everything needed to analyse them offline. Written by
`natlens samples --out DIR` (code: `natlens/_samples.py`); do not edit by hand, the tests compare
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


# ---------------------------------------------------------------------------
# Entry point
# ---------------------------------------------------------------------------


def _check_arguments(seed: int, start: datetime, days: int, vms: int) -> datetime:
    if isinstance(seed, bool) or not isinstance(seed, int):
        raise TypeError(f"seed must be an int, got {seed!r}")
    for name, value, low, high in (
        ("days", days, MIN_DAYS, MAX_DAYS),
        ("vms", vms, MIN_VMS, MAX_VMS),
    ):
        if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
            raise ValueError(f"{name} must be an integer from {low} to {high}, got {value!r}")
    if not isinstance(start, datetime):
        raise TypeError(f"start must be a datetime, got {start!r}")
    if start.tzinfo is None:
        start = start.replace(tzinfo=UTC)
    start = start.astimezone(UTC)
    if (start.hour, start.minute, start.second, start.microsecond) != (0, 0, 0, 0):
        raise ValueError(f"start must be midnight UTC, got {start.isoformat()}")
    return start


def _outputs(root: Path) -> list[Path]:
    return [root / "flowlogs" / CONTAINER] + [root / name for name in _FILES.values()]


def generate_samples(
    directory: str | os.PathLike[str],
    *,
    seed: int = DEFAULT_SEED,
    start: datetime = DEFAULT_START,
    days: int = 7,
    vms: int = 100,
    overwrite: bool = False,
) -> SampleSummary:
    """Write a sample data set: flow logs, metrics, side files and an answer key.

    The output depends only on the arguments: the same arguments give the same files
    (gzip members carry no time stamp). The defaults write the shipped week.

    Parameters
    ----------
    directory
        Where to write; created if needed.
    seed
        Seed of the random choices.
    start
        First day, midnight UTC (a naive datetime is taken as UTC).
    days
        Number of days, 3 to 366. The planted events need at least three.
    vms
        Number of VMs, 20 to 1000, spread over six subnets.
    overwrite
        Replace the sample files of an earlier run in ``directory``. Other files are
        left alone.

    Returns
    -------
    SampleSummary
        Counts of what was written.

    Raises
    ------
    FileExistsError
        If ``directory`` already holds sample files and ``overwrite`` is false.
    ValueError
        For out-of-range arguments.

    Examples
    --------
    >>> import tempfile
    >>> with tempfile.TemporaryDirectory() as tmp:
    ...     summary = generate_samples(tmp, days=3, vms=20)
    >>> summary.blobs, summary.records > 10_000
    (144, True)
    """
    start = _check_arguments(seed, start, days, vms)
    root = Path(directory)
    existing = [p for p in _outputs(root) if p.exists()]
    if existing and not overwrite:
        raise FileExistsError(
            f"{root} already holds sample data ({existing[0]}); pass overwrite=True "
            "(natlens samples --force) to replace it"
        )
    for path in existing:
        if path.is_dir():
            shutil.rmtree(path)
        else:
            path.unlink()

    def rng(purpose: str) -> random.Random:
        return random.Random(f"natlens-samples:{seed}:{purpose}")

    gateways = _build_gateways(rng("gateways"))
    services = _build_services(rng("services"))
    machines = _build_vms(vms)
    plan = _plan(rng("plan"), machines, services, days)
    flows = _Flows(days * 1440)

    world = _World(start, days, gateways, services, machines)
    sessions = _background_sessions(rng("sessions"), world)
    _settle_late_destinations(rng("late"), sessions, services, (days - 2) * 1440)
    _emit_background(rng("background"), flows, sessions, world, plan)
    _emit_events(rng("events"), flows, machines, gateways, plan)
    github = {ip for name, ips in _HOSTNAMES.items() if "github" in name for ip in ips}
    _sprinkle_noise(rng("noise"), flows, github | {machines[plan.github_vm].ipv4})

    records, blobs, written = _write_flowlogs(root, rng("filing"), flows, world)
    metrics_rows, metrics_bytes, facts = _write_metrics(
        root / _FILES["metrics"], rng("metrics"), flows, world, plan
    )
    written += metrics_bytes
    key = _answer_key(flows, world, plan, facts, seed=seed, records=records)
    hostnames = {name: list(ips) for name, ips in _HOSTNAMES.items()}
    texts = {
        "inventory": _inventory_csv(machines),
        "allowlist": _allowlist_text(),
        "service_tags": _service_tags_json(),
        "hostnames": json.dumps(hostnames, indent=2) + "\n",
        "answer_key": json.dumps(key, indent=2) + "\n",
        "answer_key_md": _answer_key_md(key),
        "readme": _README,
    }
    for name, text in texts.items():
        written += _write(root / _FILES[name], text.encode("utf-8"))
    return SampleSummary(
        directory=root,
        seed=seed,
        start=start,
        days=days,
        vms=vms,
        records=records,
        blobs=blobs,
        metrics_rows=metrics_rows,
        events=tuple(e["kind"] for e in key["events"]),
        bytes_written=written,
    )
