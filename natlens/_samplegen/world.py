"""The world: the organisation Fabrikam, its gateways, VMs, habits and destinations.

Everything here is fixed before any traffic is drawn. Fabrikam runs two StandardV2 NAT
gateways in West Europe (``natgw-prod-weu`` with two IPv4 public IPs, ``natgw-eng-weu``
with one; both also have an IPv6 public IP) and VMs in six subnets. Each VM runs a role
(web, payments, data, build, dev, corp) that sets which destinations it talks to, how
much, and on which daily and weekly rhythm.
"""

from __future__ import annotations

import ipaddress
import math
import random
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Final, NamedTuple

__all__ = [
    "ALLOWLIST",
    "HOSTNAMES",
    "MIX",
    "TAG_SPECS",
    "AllowEntry",
    "Demand",
    "Gateway",
    "Service",
    "Subnet",
    "TagSpec",
    "Vm",
    "World",
    "build_world",
    "hosts",
    "patch_tuesday_boost",
    "rhythm",
    "system_service",
    "tag_prefixes",
]


@dataclass(frozen=True)
class Gateway:
    """A StandardV2 NAT gateway and its public IPs."""

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
class Subnet:
    """A subnet: its team, the role of its VMs and the gateway (index) it leaves through."""

    name: str
    team: str
    role: str
    gateway: int
    prefix4: str
    prefix6: str | None
    share: float  # of the VMs
    vm_prefix: str


@dataclass(frozen=True)
class Vm:
    """A VM and its private addresses."""

    name: str
    subnet: Subnet
    ipv4: str
    ipv6: str | None


@dataclass(frozen=True)
class Service:
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
class World:
    """Everything fixed before traffic is drawn."""

    start: datetime
    days: int
    gateways: tuple[Gateway, ...]
    services: dict[str, Service]
    vms: list[Vm]

    @property
    def minutes(self) -> int:
        """Length of the period in minutes."""
        return self.days * 1440

    def gateway_of(self, vm: Vm) -> Gateway:
        """The gateway a VM's traffic leaves through."""
        return self.gateways[vm.subnet.gateway]


class TagSpec(NamedTuple):
    """One Service Tag of the excerpt (regional tags name their region)."""

    name: str
    region: str
    region_id: int
    system_service: str
    prefixes: tuple[str, ...]


class Demand(NamedTuple):
    """How often a role opens sessions to a service, and on which rhythm."""

    service: str
    sessions_per_hour: float  # at full activity
    rhythm: str


class AllowEntry(NamedTuple):
    """One approved destination: a CIDR, a Service Tag name or a hostname."""

    value: str
    note: str = ""


class _Shape(NamedTuple):
    label: str
    protocol: str
    sent: tuple[float, float]
    received: tuple[float, float]
    minutes: float
    connections: int


SUBNETS: Final = (
    Subnet("snet-web", "web", "web", 0, "10.10.1.0/24", "fd00:10:10:1::/64", 0.22, "vm-web"),
    Subnet("snet-payments", "payments", "payments", 0, "10.10.2.0/24", None, 0.14, "vm-pay"),
    Subnet("snet-data", "data", "data", 0, "10.10.3.0/24", None, 0.12, "vm-data"),
    Subnet("snet-build", "platform", "build", 1, "10.20.1.0/24", None, 0.16, "vm-build"),
    Subnet(
        "snet-dev", "engineering", "dev", 1, "10.20.2.0/24", "fd00:10:20:2::/64", 0.24, "vm-dev"
    ),
    Subnet("snet-corp", "it", "corp", 1, "10.20.3.0/24", None, 0.12, "vm-corp"),
)

HOSTNAMES: Final[dict[str, tuple[str, ...]]] = {
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
"""Hostnames the allowlist names, with the addresses they resolve to.

The addresses of github.com, api.stripe.com and the package registries are the services'
published ones; the SaaS addresses are illustrative.
"""

TAG_SPECS: Final = (
    TagSpec(
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
    TagSpec(
        "Storage.NorthEurope",
        "northeurope",
        17,
        "AzureStorage",
        ("20.38.102.0/23", "20.60.204.0/23", "52.239.136.0/22", "2603:1020:5:1::/64"),
    ),
    TagSpec(
        "AzureMonitor.WestEurope",
        "westeurope",
        18,
        "AzureMonitor",
        ("20.61.99.64/26", "51.144.56.96/27", "2603:1020:206:3::/64"),
    ),
    TagSpec(
        "AzureKeyVault.WestEurope",
        "westeurope",
        18,
        "AzureKeyVault",
        ("20.61.103.224/29", "52.236.189.80/28", "2603:1020:206:4::/64"),
    ),
    TagSpec(
        "AzureContainerRegistry.WestEurope",
        "westeurope",
        18,
        "AzureContainerRegistry",
        ("20.61.97.128/25", "51.124.83.64/26"),
    ),
    TagSpec(
        "MicrosoftContainerRegistry.WestEurope",
        "westeurope",
        18,
        "MicrosoftContainerRegistry",
        ("13.69.64.88/29", "20.61.99.128/25"),
    ),
    TagSpec(
        "AzureActiveDirectory",
        "",
        0,
        "AzureAD",
        ("20.190.128.0/18", "40.126.0.0/18", "2603:1006:2000::/48", "2603:1007:200::/48"),
    ),
    TagSpec(
        "AzureUpdateDelivery", "", 0, "AzureUpdateDelivery", ("20.42.65.80/29", "20.49.103.0/28")
    ),
)
"""The Service Tags of the excerpt with their own prefixes.

Regional tags are contained in their global tag and in ``AzureCloud.<region>``;
``AzureCloud`` holds them all (:func:`tag_prefixes`).
"""

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

ALLOWLIST: Final[tuple[tuple[str, tuple[AllowEntry, ...]], ...]] = (
    (
        "Azure platform services, by Service Tag",
        (
            AllowEntry("AzureActiveDirectory"),
            AllowEntry("AzureMonitor"),
            AllowEntry("Storage.WestEurope"),
            AllowEntry("Storage.NorthEurope"),
            AllowEntry("AzureKeyVault.WestEurope"),
            AllowEntry("AzureContainerRegistry.WestEurope"),
            AllowEntry("MicrosoftContainerRegistry"),
            AllowEntry("AzureUpdateDelivery"),
        ),
    ),
    (
        "SaaS and partners hosted in our region: broad, review due 2027-01",
        (AllowEntry("AzureCloud.WestEurope"),),
    ),
    (
        "Source code and packages",
        (
            AllowEntry("github.com"),
            AllowEntry("api.github.com"),
            AllowEntry("codeload.github.com"),
            AllowEntry("objects.githubusercontent.com"),
            AllowEntry("ghcr.io"),
            AllowEntry("pypi.org"),
            AllowEntry("files.pythonhosted.org"),
            AllowEntry("registry.npmjs.org"),
            AllowEntry("packages.microsoft.com"),
        ),
    ),
    (
        "Operating system updates and time",
        (
            AllowEntry("azure.archive.ubuntu.com"),
            AllowEntry("security.ubuntu.com"),
            AllowEntry("ntp.ubuntu.com"),
            AllowEntry("download.windowsupdate.com"),
            AllowEntry("time.windows.com"),
        ),
    ),
    (
        "SaaS vendors (contracts on file)",
        (
            AllowEntry("api.stripe.com"),
            AllowEntry("api.sendgrid.com"),
            AllowEntry("hooks.slack.com"),
            AllowEntry("events.pagerduty.com"),
            AllowEntry("fabrikam.atlassian.net"),
            AllowEntry("api.honeycomb.io", "observability pilot, approved 2026-10-28"),
        ),
    ),
    (
        "CDN ranges in front of package registries and SaaS (published ranges)",
        (
            AllowEntry("151.101.0.0/16", "Fastly"),
            AllowEntry("2a04:4e42::/32", "Fastly IPv6"),
            AllowEntry("104.16.0.0/13", "Cloudflare"),
            AllowEntry("172.64.0.0/13", "Cloudflare"),
        ),
    ),
)
"""Fabrikam's egress allowlist, by section (the long tail of destinations lives in the CDN
ranges and in AzureCloud.WestEurope)."""

# fmt: off
MIX: Final[dict[str, tuple[Demand, ...]]] = {
    "web": (
        Demand("monitor", 5.0, "flat"), Demand("aad", 0.9, "customer"),
        Demand("storage_we", 1.6, "customer"), Demand("keyvault", 0.4, "customer"),
        Demand("sendgrid", 0.5, "customer"), Demand("slack", 0.05, "office"),
        Demand("pagerduty", 0.02, "flat"), Demand("ubuntu", 0.1, "flat"),
        Demand("ntp", 0.2, "flat"), Demand("longtail", 1.4, "customer"),
        Demand("acr", 0.04, "office"), Demand("github", 0.04, "office"),
    ),
    "payments": (
        Demand("monitor", 5.0, "flat"), Demand("aad", 1.2, "customer"),
        Demand("stripe", 9.0, "customer"), Demand("keyvault", 1.2, "customer"),
        Demand("storage_we", 0.8, "customer"), Demand("storage_ne", 0.1, "flat"),
        Demand("sendgrid", 0.8, "customer"), Demand("pagerduty", 0.02, "flat"),
        Demand("ubuntu", 0.1, "flat"), Demand("ntp", 0.2, "flat"),
        Demand("acr", 0.04, "office"),
    ),
    "data": (
        Demand("monitor", 5.0, "flat"), Demand("aad", 0.6, "office"),
        Demand("storage_we", 2.0, "office"), Demand("storage_batch", 3.0, "batch"),
        Demand("storage_ne", 1.2, "batch"), Demand("pypi", 0.4, "office"),
        Demand("github", 0.2, "office"), Demand("ubuntu", 0.1, "flat"),
        Demand("ntp", 0.2, "flat"), Demand("longtail", 0.2, "office"),
    ),
    "build": (
        Demand("monitor", 5.0, "flat"), Demand("aad", 0.5, "office"),
        Demand("github", 3.5, "office"), Demand("npm", 2.5, "office"),
        Demand("pypi", 1.6, "office"), Demand("acr", 1.2, "office"),
        Demand("mcr", 0.6, "office"), Demand("storage_we", 1.0, "office"),
        Demand("slack", 0.6, "office"), Demand("atlassian", 0.4, "office"),
        Demand("ubuntu", 0.12, "flat"), Demand("ntp", 0.2, "flat"),
        Demand("packages_ms", 0.1, "office"), Demand("longtail", 0.4, "office"),
    ),
    "dev": (
        Demand("monitor", 5.0, "flat"), Demand("aad", 1.5, "office"),
        Demand("github", 1.4, "office"), Demand("npm", 0.9, "office"),
        Demand("pypi", 0.9, "office"), Demand("atlassian", 0.9, "office"),
        Demand("slack", 0.3, "office"), Demand("storage_we", 0.4, "office"),
        Demand("longtail", 3.0, "office"), Demand("ubuntu", 0.1, "flat"),
        Demand("ntp", 0.2, "flat"), Demand("packages_ms", 0.05, "office"),
        Demand("mcr", 0.2, "office"),
    ),
    "corp": (
        Demand("monitor", 5.0, "flat"), Demand("aad", 2.0, "office"),
        Demand("winupdate", 0.12, "patch"), Demand("wu_meta", 0.5, "flat"),
        Demand("timewin", 0.4, "flat"), Demand("storage_backup", 2.5, "batch"),
        Demand("longtail", 0.2, "office"),
    ),
}
"""What each role talks to: the services, in the order their sessions are drawn."""

# Activity by local hour (CET, UTC+1 in November), weekday and weekend.
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


def rhythm(kind: str, local: datetime) -> float:
    """Activity factor of a rhythm (``flat``, ``office``, ``customer``, ``batch``) at a local hour.

    Examples
    --------
    >>> monday_10h = datetime(2026, 11, 9, 10)
    >>> rhythm("office", monday_10h), rhythm("batch", monday_10h)
    (1.0, 0.03)
    """
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


def patch_tuesday_boost(when: datetime) -> float:
    """Windows Update demand multiplier (the ``patch`` rhythm) at a UTC time.

    High for 14 hours after a Patch Tuesday release (second Tuesday, 18:00 UTC).

    Examples
    --------
    >>> patch_tuesday_boost(datetime(2026, 11, 10, 20, tzinfo=UTC))
    6.0
    >>> patch_tuesday_boost(datetime(2026, 11, 11, 8, tzinfo=UTC))
    1.0
    """
    day = when.date()
    for back in (0, 1):
        d = day - timedelta(days=back)
        if d.weekday() == 1 and 8 <= d.day <= 14:
            release = datetime(d.year, d.month, d.day, 18, tzinfo=UTC)
            if release <= when < release + timedelta(hours=14):
                return 6.0
    return 1.0


def hosts(prefix: str, rng: random.Random, count: int, avoid: Iterable[str] = ()) -> list[str]:
    """``count`` distinct host addresses drawn from ``prefix`` (deterministic under ``rng``).

    Examples
    --------
    >>> addresses = hosts("192.0.2.0/24", random.Random(1), 3, avoid=["192.0.2.0/25"])
    >>> len(set(addresses)), all(int(a.rsplit(".", 1)[1]) >= 128 for a in addresses)
    (3, True)
    """
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


def tag_prefixes() -> dict[str, tuple[str, ...]]:
    """Every Service Tag of the excerpt with its prefixes (``AzureCloud`` contains all).

    Examples
    --------
    >>> tags = tag_prefixes()
    >>> "20.38.108.0/23" in tags["Storage"], "20.38.108.0/23" in tags["AzureCloud"]
    (True, True)
    """
    tags: dict[str, list[str]] = {}
    for spec in TAG_SPECS:
        tags[spec.name] = list(spec.prefixes)
        parent = _GLOBAL_OF.get(spec.name)
        if parent:
            tags.setdefault(parent, []).extend(spec.prefixes)
        if spec.region:
            tags.setdefault(f"AzureCloud.{_REGION_NAMES[spec.region]}", []).extend(spec.prefixes)
    for name, extra in _GLOBAL_EXTRA.items():
        tags[name].extend(extra)
    for region, extra in _REGION_EXTRA.items():
        tags[f"AzureCloud.{_REGION_NAMES[region]}"].extend(extra)
    everything = [prefix for group in tags.values() for prefix in group]
    tags["AzureCloud"] = everything + list(_AZURECLOUD_EXTRA)
    return {name: tuple(_sorted_prefixes(set(p))) for name, p in tags.items()}


def system_service(tag: str) -> str:
    """The ``systemService`` Azure gives a global tag (empty when it has none).

    Examples
    --------
    >>> system_service("Storage"), system_service("AzureCloud")
    ('AzureStorage', '')
    """
    return _SYSTEM_SERVICE.get(tag, "")


def _sorted_prefixes(prefixes: Iterable[str]) -> list[str]:
    networks = [ipaddress.ip_network(p) for p in prefixes]
    networks.sort(key=lambda n: (n.version, n.network_address, n.prefixlen))
    return [str(n) for n in networks]


def build_world(
    rng_for: Callable[[str], random.Random], start: datetime, days: int, vms: int
) -> World:
    """Fabrikam with ``vms`` VMs over ``days`` days from ``start``.

    ``rng_for(purpose)`` gives the generator of one concern (``gateways``, ``services``).
    """
    return World(
        start=start,
        days=days,
        gateways=_build_gateways(rng_for("gateways")),
        services=_build_services(rng_for("services")),
        vms=_build_vms(vms),
    )


def _build_services(rng: random.Random) -> dict[str, Service]:
    tags = tag_prefixes()
    h = HOSTNAMES

    def v4(*names: str) -> tuple[str, ...]:
        return tuple(ip for n in names for ip in h[n] if ":" not in ip)

    def v6(*names: str) -> tuple[str, ...]:
        return tuple(ip for n in names for ip in h[n] if ":" in ip)

    def from_tag(tag: str, n4: int, n6: int) -> tuple[tuple[str, ...], tuple[str, ...]]:
        p4 = [p for p in tags[tag] if ":" not in p]
        p6 = [p for p in tags[tag] if ":" in p]
        a4 = [ip for i in range(n4) for ip in hosts(p4[i % len(p4)], rng, 1)]
        a6 = [ip for i in range(n6) for ip in hosts(p6[i % len(p6)], rng, 1)] if p6 else []
        return tuple(dict.fromkeys(a4)), tuple(dict.fromkeys(a6))

    storage_we = from_tag("Storage.WestEurope", 36, 8)
    storage_ne = from_tag("Storage.NorthEurope", 8, 2)
    monitor = from_tag("AzureMonitor.WestEurope", 6, 2)
    keyvault = from_tag("AzureKeyVault.WestEurope", 4, 1)
    acr = from_tag("AzureContainerRegistry.WestEurope", 4, 0)
    mcr = from_tag("MicrosoftContainerRegistry.WestEurope", 4, 0)
    aad = from_tag("AzureActiveDirectory", 10, 3)
    wu_meta = from_tag("AzureUpdateDelivery", 3, 0)

    specific = [p for spec in TAG_SPECS for p in spec.prefixes]
    named = [ip for ips in HOSTNAMES.values() for ip in ips]
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
        tail4.extend(hosts(prefix, rng, count, avoid))
    tail6 = hosts("2a04:4e42::/32", rng, 16, avoid) + hosts("2603:1020:200::/40", rng, 10, avoid)
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
    # fmt: off
    # key: label, protocol, (median bytes sent, sigma), (median received, sigma),
    # mean session minutes, connections
    s = _Shape
    shapes: dict[str, _Shape] = {
        "monitor":        s("AzureMonitor", "TCP", (40 * k, 0.6), (4 * k, 0.4), 1, 1),
        "aad":            s("AzureActiveDirectory", "TCP", (3 * k, 0.3), (9 * k, 0.4), 1, 1),
        "storage_we":     s("Storage.WestEurope", "TCP", (60 * k, 1.5), (1.5 * m, 1.6), 1.5, 2),
        "storage_batch":  s("Storage.WestEurope", "TCP", (30 * m, 0.9), (8 * m, 1.2), 10, 8),
        "storage_backup": s("Storage.WestEurope", "TCP", (25 * m, 0.9), (1 * m, 0.5), 8, 4),
        "storage_ne":     s("Storage.NorthEurope", "TCP", (20 * m, 1.0), (2 * m, 0.5), 8, 4),
        "keyvault":       s("AzureKeyVault.WestEurope", "TCP", (3 * k, 0.3), (8 * k, 0.4), 1, 1),
        "acr": s("AzureContainerRegistry.WestEurope", "TCP", (30 * k, 0.5), (30 * m, 1.0), 3, 4),
        "mcr": s("MicrosoftContainerRegistry", "TCP", (30 * k, 0.5), (40 * m, 1.0), 3, 4),
        "wu_meta":        s("AzureUpdateDelivery", "TCP", (20 * k, 0.4), (60 * k, 0.5), 1, 1),
        "github":         s("github.com", "TCP", (40 * k, 0.8), (4 * m, 1.4), 2, 2),
        "npm":            s("registry.npmjs.org", "TCP", (30 * k, 0.6), (6 * m, 1.3), 2, 4),
        "pypi":           s("pypi.org", "TCP", (20 * k, 0.6), (5 * m, 1.4), 2, 3),
        "ubuntu":         s("ubuntu.com", "TCP", (20 * k, 0.5), (6 * m, 1.5), 2, 2),
        "packages_ms":    s("packages.microsoft.com", "TCP", (10 * k, 0.4), (5 * m, 1.0), 1.5, 2),
        "winupdate": s("download.windowsupdate.com", "TCP", (200 * k, 0.5), (60 * m, 1.0), 8, 4),
        "ntp":            s("ntp.ubuntu.com", "UDP", (76, 0.0), (76, 0.0), 1, 1),
        "timewin":        s("time.windows.com", "UDP", (76, 0.0), (76, 0.0), 1, 1),
        "stripe":         s("api.stripe.com", "TCP", (4 * k, 0.5), (7 * k, 0.5), 1.5, 1),
        "sendgrid":       s("api.sendgrid.com", "TCP", (25 * k, 0.8), (3 * k, 0.3), 1, 1),
        "slack":          s("hooks.slack.com", "TCP", (3 * k, 0.4), (2 * k, 0.3), 1, 1),
        "pagerduty":      s("events.pagerduty.com", "TCP", (2 * k, 0.3), (2 * k, 0.3), 1, 1),
        "atlassian":      s("fabrikam.atlassian.net", "TCP", (20 * k, 0.8), (400 * k, 1.0), 2, 2),
        "longtail":       s("long tail (CDN, SaaS)", "TCP", (15 * k, 1.2), (120 * k, 1.5), 1.8, 1),
        "honeycomb":      s("api.honeycomb.io", "TCP", (80 * k, 0.5), (3 * k, 0.3), 1, 1),
    }
    # fmt: on
    return {
        key: Service(
            key=key,
            label=shape.label,
            protocol=shape.protocol,
            v4=addresses[key][0],
            v6=addresses[key][1],
            sent=shape.sent,
            received=shape.received,
            minutes=shape.minutes,
            connections=shape.connections,
        )
        for key, shape in shapes.items()
    }


def _build_gateways(rng: random.Random) -> tuple[Gateway, Gateway]:
    def subscription() -> str:
        return str(uuid.UUID(int=rng.getrandbits(128), version=4))

    prod = Gateway(
        subscription(),
        "rg-network-prod",
        "natgw-prod-weu",
        ("20.61.15.40", "20.61.15.41"),
        ("2603:1020:203:4::28",),
    )
    eng = Gateway(
        subscription(),
        "rg-network-eng",
        "natgw-eng-weu",
        ("51.124.20.7",),
        ("2603:1020:203:9::1c",),
    )
    return prod, eng


def _build_vms(count: int) -> list[Vm]:
    raw = [sub.share * count for sub in SUBNETS]
    sizes = [max(1, math.floor(r)) for r in raw]
    order = sorted(range(len(raw)), key=lambda i: raw[i] - math.floor(raw[i]), reverse=True)
    for i in order:
        if sum(sizes) >= count:
            break
        sizes[i] += 1
    while sum(sizes) > count:
        sizes[sizes.index(max(sizes))] -= 1
    vms: list[Vm] = []
    for sub, size in zip(SUBNETS, sizes, strict=True):
        net4 = ipaddress.ip_network(sub.prefix4)
        net6 = ipaddress.ip_network(sub.prefix6) if sub.prefix6 else None
        for i in range(size):
            ip6 = str(net6.network_address + 4 + i) if net6 is not None else None
            vms.append(
                Vm(f"{sub.vm_prefix}-{i + 1:02d}", sub, str(net4.network_address + 4 + i), ip6)
            )
    return vms
