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
    "METRICS",
    "FrameLike",
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
