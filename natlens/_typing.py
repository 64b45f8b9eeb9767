"""The types natlens's public functions share, declared once.

Every public function, chart and widget spells its parameters with these names and
types (see ``docs/reference.md``, "Vocabulary"): a frame of flows is a :data:`FrameLike`,
what is measured is a :data:`Metric`, files are a :data:`Source`, a time bound is a
:data:`TimeLike`, a hostname lookup is a :data:`Resolver`, a filter on addresses is
:data:`Targets`.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import date, datetime
from typing import Literal, TypeAlias, get_args

import polars as pl

__all__ = [
    "GROUPS",
    "METRICS",
    "VOCABULARY",
    "FrameLike",
    "Inventory",
    "Labels",
    "Metric",
    "PathLike",
    "Resolver",
    "Source",
    "Targets",
    "TimeLike",
]

FrameLike: TypeAlias = pl.DataFrame | pl.LazyFrame
"""Flow records (or an analysis result), eager or lazy. Analyses run lazily either way."""

PathLike: TypeAlias = str | os.PathLike[str]
"""One file or folder on the local disk."""

Source: TypeAlias = PathLike | Sequence[PathLike]
"""Where flow logs are: a file, a folder (walked), a glob, or a list of these."""

TimeLike: TypeAlias = datetime | date | str
"""A moment: a datetime (naive values are UTC), a date (its midnight UTC) or ISO text."""

Resolver: TypeAlias = Mapping[str, Sequence[str]] | Callable[[str], Iterable[str]]
"""Hostname lookup: a mapping ``host -> [ips]`` or a function ``host -> ips``.

natlens never resolves names itself: the caller decides where names come from
(``read_hostnames``, a DNS function, a CMDB).
"""

Targets: TypeAlias = str | Iterable[str]
"""One value or many for a filter: IPs, CIDRs or (with a resolver) hostnames."""

Metric: TypeAlias = Literal[
    "bytes",
    "bytes_sent",
    "bytes_received",
    "packets",
    "packets_sent",
    "packets_received",
    "packets_dropped",
    "records",
]
"""What is measured: one of the totals every usage analysis reports.

``bytes`` and ``packets`` count both directions, ``packets_dropped`` both drop counters,
``records`` the flow records (one per source, destination and NAT IP per minute).
"""

METRICS: tuple[str, ...] = get_args(Metric)
"""The values of :data:`Metric`, in order."""

GROUPS: tuple[str, ...] = ("source", "destination", "nat_ip", "gateway")
"""What rows are grouped ``by``: one of these (or the FLOW_SCHEMA column it names)."""

Inventory: TypeAlias = pl.DataFrame | PathLike
"""IP -> VM name, subnet, team: a frame from ``read_inventory`` or the path of its CSV."""

Labels: TypeAlias = pl.DataFrame | Mapping[str, str]
"""Destination IP -> label (service tag, hostname): a frame with ``destination_ip`` and
``label`` columns, or a mapping."""

VOCABULARY: dict[str, str] = {
    "flows": "First positional argument: flow records in FLOW_SCHEMA (`FrameLike`).",
    "metric": "What is measured (`Metric`): " + ", ".join(f"`{m}`" for m in METRICS) + ".",
    "by": "What rows are grouped by: "
    + ", ".join(f"`{g}`" for g in GROUPS)
    + " (or the FLOW_SCHEMA column), or `None`.",
    "n": "How many (top-N): an int, or `None` for all.",
    "every": 'Time bucket width, a polars duration such as `"15m"`, `"1h"`, `"1d"`.',
    "start": "Start of the time window, included (`TimeLike`; naive is UTC).",
    "end": "End of the time window, excluded (`TimeLike`; naive is UTC).",
    "sources": "Filter on source (private) IPs: one value or many (`Targets`).",
    "destinations": "Filter on destination IPs: one value or many (`Targets`).",
    "nat_ips": "Filter on NAT public IPs: one value or many (`Targets`).",
    "gateways": "Filter on NAT gateways: resource ids or names, one or many.",
    "inventory": "IP -> VM name, subnet, team: a frame from `read_inventory` or its path.",
    "labels": "Destination IP -> label: a frame (`destination_ip`, `label`) or a mapping.",
    "service_tags": "Azure Service Tags: a frame from `read_service_tags`, its path or JSON.",
    "resolver": "Hostname -> IPs (`Resolver`): a mapping or a function; never looked up.",
    "allowlist": "Allowed destinations: entries (CIDR, IP, tag, hostname) or a file path.",
    "price_per_gb": "Price of a decimal GB (10**9 bytes); always an argument.",
    "currency": 'Currency code shown next to a cost (`"USD"`, `"EUR"`).',
    "title": "Chart title, or `None` for the default.",
}
"""The parameter names every public function shares, each with one meaning.

A public parameter outside this table is an option of one function (documented
there); ``tests/test_api.py`` holds the list of those and fails on any other name.
"""
