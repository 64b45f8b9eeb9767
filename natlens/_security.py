"""Security and compliance: allowlist violations, new destinations, beacons, exfiltration."""

from __future__ import annotations

import os
import re
from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any

import polars as pl

from natlens._enrich import read_allowlist, read_service_tags
from natlens._ip import (
    is_address_like,
    longest_prefix_match,
    parse_prefixes,
    resolve_host,
)
from natlens._time import time_bound
from natlens._typing import FrameLike, PathLike, Resolver, TimeLike
from natlens._usage import as_lazy, rescannable

__all__ = ["check_allowlist", "find_beacons", "find_exfiltration", "new_destinations"]


def _zero(name: str) -> pl.Expr:
    return pl.col(name).fill_null(0)


def _traffic() -> list[pl.Expr]:
    return [
        pl.col("time").min().alias("first_seen"),
        pl.col("time").max().alias("last_seen"),
        pl.len().cast(pl.Int64).alias("records"),
        _zero("bytes_sent").sum().alias("bytes_sent"),
        _zero("bytes_received").sum().alias("bytes_received"),
        (_zero("bytes_sent") + _zero("bytes_received")).sum().alias("bytes"),
    ]


def _allowed_prefixes(
    allowlist: PathLike | Sequence[str],
    service_tags: pl.DataFrame | PathLike | Mapping[str, Any] | None,
    resolver: Resolver | None,
) -> pl.DataFrame:
    if isinstance(allowlist, str) and not os.path.isfile(allowlist):
        entries = read_allowlist([allowlist])
    else:
        entries = read_allowlist(allowlist)
    tags: pl.DataFrame | None = None
    if service_tags is not None:
        tags = (
            service_tags
            if isinstance(service_tags, pl.DataFrame)
            else read_service_tags(service_tags)
        )
    tag_names = (
        {}
        if tags is None
        else {t.lower(): t for t in tags.get_column("tag").unique().to_list() if t is not None}
    )
    values: list[str] = []
    for entry in entries:
        if is_address_like(entry):
            values.append(entry)
        elif entry.lower() in tag_names and tags is not None:
            name = tag_names[entry.lower()]
            values.extend(tags.filter(pl.col("tag") == name).get_column("prefix").to_list())
        elif "." in entry and not re.fullmatch(r"[A-Za-z0-9]+\.[A-Z][A-Za-z0-9]*", entry):
            values.extend(resolve_host(entry, resolver=resolver, argument="allowlist"))
        else:
            hint = "" if tags is not None else "; pass service_tags= to use Service Tag names"
            raise ValueError(f"allowlist: {entry!r} is not a known Service Tag{hint}")
    return parse_prefixes(values, argument="allowlist")


def check_allowlist(
    flows: FrameLike,
    allowlist: PathLike | Sequence[str],
    *,
    service_tags: pl.DataFrame | PathLike | Mapping[str, Any] | None = None,
    resolver: Resolver | None = None,
) -> pl.DataFrame:
    """Traffic to destinations outside an allowlist, grouped by source and destination.

    Parameters
    ----------
    flows
        Flow records in FLOW_SCHEMA.
    allowlist
        Entries (CIDRs and IPs, IPv4 or IPv6; Service Tag names; hostnames), or the
        path of an allowlist file (see :func:`natlens.read_allowlist`). A NAT64
        destination (``64:ff9b::14.1.2.3``) is allowed by the entries allowing its IPv4
        host (``14.1.2.3``, ``14.1.0.0/16``, a tag or hostname covering it).
    service_tags
        Azure Service Tags (:func:`natlens.read_service_tags`, its path or JSON) to
        expand tag names such as ``Storage.WestEurope``.
    resolver
        Hostname lookup: mapping ``host -> [ips]`` or a function (see
        :func:`natlens.find_flows`).

    Returns
    -------
    pl.DataFrame
        ``source_ip, destination_ip, first_seen, last_seen, records, bytes_sent,
        bytes_received, bytes``; most bytes first.

    Raises
    ------
    ValueError
        For an invalid CIDR, an unknown tag name or a hostname the resolver lacks.

    Examples
    --------
    >>> import natlens
    >>> from datetime import datetime, UTC
    >>> row = [datetime(2025, 1, 1, tzinfo=UTC), "10.0.0.4", "203.0.113.9", "20.1.1.1"]
    >>> flows = pl.DataFrame(
    ...     [[*row, 1, 1, 0, 0, 500, 20, "GW"]], schema=natlens.FLOW_SCHEMA, orient="row"
    ... )
    >>> check_allowlist(flows, ["140.82.112.0/20", "2603:1000::/24"]).select(
    ...     "destination_ip", "bytes"
    ... ).rows()
    [('203.0.113.9', 520)]

    On the sample week, with its allowlist, Service Tags and hostname map:

    >>> samples = natlens.sample_data()
    >>> check_allowlist(
    ...     natlens.read_flowlogs(samples.flowlogs),
    ...     samples.allowlist,
    ...     service_tags=samples.service_tags,
    ...     resolver=natlens.read_hostnames(samples.hostnames),
    ... ).select("source_ip", "destination_ip", "records").rows()
    [('10.10.2.13', '203.0.113.45', 42), ('10.20.3.7', '198.51.100.23', 1689)]
    """
    prefixes = _allowed_prefixes(allowlist, service_tags, resolver)
    lazy = as_lazy(flows)
    permitted = longest_prefix_match(lazy, prefixes, column="destination_ip").select(
        "destination_ip"
    )
    return (
        lazy.join(permitted, on="destination_ip", how="anti")
        .group_by("source_ip", "destination_ip")
        .agg(*_traffic())
        .sort(["bytes", "source_ip", "destination_ip"], descending=[True, False, False])
        .collect()
    )


_UNITS = {"d": "days", "h": "hours", "m": "minutes", "w": "weeks"}


def _cutoff(lazy: pl.LazyFrame, baseline: TimeLike | timedelta) -> datetime | None:
    """The end of the baseline; ``None`` for data without records.

    Raises
    ------
    ValueError
        When the baseline does not end inside the data: ending after the last record
        it leaves nothing to call new, ending at or before the first it holds nothing
        to compare with. Either would answer "no new destinations" or "all of them"
        without saying why.
    """
    length: timedelta | None = None
    if isinstance(baseline, timedelta) or (
        isinstance(baseline, str) and re.fullmatch(r"\s*\d+\s*[dhmw]\s*", baseline)
    ):
        if isinstance(baseline, str):
            amount, unit = int(baseline.strip()[:-1]), baseline.strip()[-1]
            length = timedelta(**{_UNITS[unit]: amount})
        else:
            length = baseline
        if length <= timedelta(0):
            raise ValueError(f"baseline: expected a positive length, got {baseline!r}")
    else:
        cutoff = time_bound(baseline, argument="baseline")
    span = lazy.select(first=pl.col("time").min(), last=pl.col("time").max()).collect()
    first, last = span.item(0, "first"), span.item(0, "last")
    if first is None:
        return None
    if length is not None:
        cutoff = first + length
    if cutoff is None:
        raise ValueError("baseline: a time or a length is required")
    shown = str(baseline) if isinstance(baseline, timedelta) else repr(str(baseline))
    when = "%Y-%m-%d %H:%M"
    spans = (
        f"(the data spans {first:{when}} to {last:{when}} UTC, "
        f"{(last - first) / timedelta(days=1):.2f} days)"
    )
    if cutoff > last:
        raise ValueError(
            f"baseline: {shown} ends at {cutoff:{when}} UTC, after the data's last record "
            f"{spans}: nothing is left to compare with it; pass a shorter baseline or more data"
        )
    if cutoff <= first:
        raise ValueError(
            f"baseline: {shown} ends at {cutoff:{when}} UTC, at or before the data's first "
            f"record {spans}: there is no baseline to compare with; pass a later time"
        )
    return cutoff


def new_destinations(flows: FrameLike, *, baseline: TimeLike | timedelta) -> pl.DataFrame:
    """Destinations never contacted during a baseline period and seen after it.

    Parameters
    ----------
    flows
        Flow records in FLOW_SCHEMA.
    baseline
        End of the baseline: a time (datetime, date, ISO text), or a length from the
        first record (``timedelta`` or ``"5d"``, ``"12h"``, ``"2w"``). It must end
        inside the data: after its first record and no later than its last.

    Returns
    -------
    pl.DataFrame
        ``destination_ip, first_seen, last_seen, records, bytes_sent, bytes_received,
        bytes, sources`` (count) and ``source_ips`` (sorted list); by first seen.

    Raises
    ------
    ValueError
        For a baseline that ends outside the data (a ``"5d"`` baseline on three days
        of records would otherwise find nothing new, silently).

    Examples
    --------
    >>> import natlens
    >>> flows = natlens.read_flowlogs(natlens.sample_data().flowlogs)
    >>> new_destinations(flows, baseline="5d").get_column("destination_ip").to_list()
    ['2a05:d018:1d9c:6a00::10', '34.249.67.219', '52.30.148.10']
    """
    lazy = as_lazy(flows)
    cutoff = _cutoff(lazy, baseline)
    empty = (
        lazy.clear()
        .group_by("destination_ip")
        .agg(
            *_traffic(),
            pl.col("source_ip").n_unique().cast(pl.Int64).alias("sources"),
            pl.col("source_ip").unique().sort().alias("source_ips"),
        )
    )
    if cutoff is None:
        return empty.collect()
    seen_before = lazy.filter(pl.col("time") < cutoff).select("destination_ip").unique()
    return (
        lazy.filter(pl.col("time") >= cutoff)
        .join(seen_before, on="destination_ip", how="anti", nulls_equal=True)
        .group_by("destination_ip")
        .agg(
            *_traffic(),
            pl.col("source_ip").n_unique().cast(pl.Int64).alias("sources"),
            pl.col("source_ip").unique().sort().alias("source_ips"),
        )
        .sort("first_seen", "destination_ip")
        .collect()
    )


_PASS_RECORDS = 5_000_000
"""Records per pass of the pair analyses (see :func:`_parts`)."""
_MAX_PASSES = 8
"""Most passes: each reads the columns it needs again."""


def _passes(lazy: pl.LazyFrame) -> int:
    """How many passes the pair analyses make over ``lazy``.

    One per :data:`_PASS_RECORDS` records (at most :data:`_MAX_PASSES`) when every scan
    under ``lazy`` is of Parquet or IPC files or a frame in memory, which a pass reads
    again cheaply; one for any other scan (JSON Lines, CSV, the Azure formats), which
    decodes every record each time it is read.
    """
    if not rescannable(lazy):
        return 1
    records: int = lazy.select(pl.len()).collect().item()
    return max(1, min(_MAX_PASSES, -(-records // _PASS_RECORDS)))


def _parts(lazy: pl.LazyFrame, key: str) -> list[pl.LazyFrame]:
    """``lazy`` split by the hash of ``key`` into :func:`_passes` disjoint parts.

    An analysis whose every group falls in one part (a pair, by its source) runs on the
    parts one after another and concatenates: its groups, and its peak memory, are a
    part's rather than the whole data's.
    """
    passes = _passes(lazy)
    if passes == 1:
        return [lazy]
    return [lazy.filter(pl.col(key).hash() % passes == part) for part in range(passes)]


def find_beacons(
    flows: FrameLike,
    *,
    min_contacts: int = 8,
    max_bytes_per_contact: float = 50_000,
    min_score: float = 0.5,
) -> pl.DataFrame:
    """Regular, periodic contact carrying little data: the pattern of malware check-ins.

    A contact is a run of consecutive active minutes between a source and a
    destination. ``regularity`` is ``1 - dispersion`` of the intervals between contact
    starts, where the dispersion is the median absolute deviation over the median
    (robust to a missed or extra check-in), floored at 0. ``score`` multiplies it with
    ``1 - 1/contacts`` so long series outrank short coincidences.

    Parameters
    ----------
    flows
        Flow records in FLOW_SCHEMA.
    min_contacts
        Fewest contacts considered.
    max_bytes_per_contact
        Largest mean bytes (both ways) per contact of a beacon.
    min_score
        Lowest score returned.

    Returns
    -------
    pl.DataFrame
        ``source_ip, destination_ip, contacts, interval_minutes`` (median),
        ``interval_mad``, ``regularity``, ``bytes_per_contact``, ``first_seen``,
        ``last_seen``, ``score``; most beacon-like first.

    Notes
    -----
    Over a large Parquet store the pairs are analysed in a few passes, each over the
    sources whose hash falls in it, so that memory holds one pass's pairs; the answer is
    the same.

    Examples
    --------
    >>> import natlens
    >>> flows = natlens.read_flowlogs(natlens.sample_data().flowlogs)
    >>> find_beacons(flows).select("source_ip", "destination_ip", "interval_minutes").row(0)
    ('10.20.3.7', '198.51.100.23', 5.0)
    """
    keys = ["source_ip", "destination_ip"]
    lazy = as_lazy(flows)
    found = [
        _beacons(part, min_contacts, max_bytes_per_contact, min_score)
        for part in _parts(lazy, "source_ip")
    ]
    return pl.concat(found).sort(
        ["score", "contacts", *keys], descending=[True, True, False, False]
    )


def _beacons(
    lazy: pl.LazyFrame, min_contacts: int, max_bytes_per_contact: float, min_score: float
) -> pl.DataFrame:
    """:func:`find_beacons` of the pairs in ``lazy``, unsorted.

    Each pair is one group holding its distinct active minutes, so no record is sorted
    or windowed: contact starts and the intervals between them are list operations.
    A pair with a missing address is no pair (it was dropped by a join before).
    """
    keys = ["source_ip", "destination_ip"]
    active = pl.col("minutes").list.len()
    minute = pl.element().sort()
    starts = pl.col("minutes").list.eval(
        minute.filter((minute.diff() != timedelta(minutes=1)).fill_null(True))
    )
    intervals = pl.col("starts").list.eval(pl.element().diff().dt.total_minutes().cast(pl.Float64))
    return (
        lazy.filter(pl.col("source_ip").is_not_null() & pl.col("destination_ip").is_not_null())
        .group_by(keys)
        .agg(
            minutes=pl.col("time").dt.truncate("1m").unique(),
            bytes=(_zero("bytes_sent") + _zero("bytes_received")).sum(),
        )
        # Cheap filters first: a pair needs min_contacts active minutes, and since
        # contacts never outnumber active minutes, bytes per active minute bounds bytes
        # per contact.
        .filter((active >= min_contacts) & (pl.col("bytes") / active <= max_bytes_per_contact))
        .select(*keys, "bytes", starts=starts)
        .with_columns(contacts=pl.col("starts").list.len().cast(pl.Int64))
        .filter(pl.col("contacts") >= min_contacts)
        .with_columns(
            intervals.alias("intervals"),
            first_seen=pl.col("starts").list.min(),
            last_seen=pl.col("starts").list.max(),
        )
        .with_columns(
            interval_minutes=pl.col("intervals").list.eval(pl.element().median()).list.first(),
            interval_mad=pl.col("intervals")
            .list.eval((pl.element() - pl.element().median()).abs().median())
            .list.first(),
        )
        .with_columns(
            bytes_per_contact=pl.col("bytes") / pl.col("contacts"),
            regularity=(1.0 - pl.col("interval_mad") / pl.col("interval_minutes")).clip(0.0, 1.0),
        )
        .with_columns(score=pl.col("regularity") * (1.0 - 1.0 / pl.col("contacts")))
        .filter(
            (pl.col("bytes_per_contact") <= max_bytes_per_contact) & (pl.col("score") >= min_score)
        )
        .select(
            *keys,
            "contacts",
            "interval_minutes",
            "interval_mad",
            "regularity",
            "bytes_per_contact",
            "first_seen",
            "last_seen",
            "score",
        )
        .collect()
    )


def find_exfiltration(
    flows: FrameLike,
    *,
    min_bytes_sent: int = 100_000_000,
    min_upload_ratio: float = 5.0,
    max_sources: int = 1,
    min_minutes: int = 5,
) -> pl.DataFrame:
    """Sustained upload-heavy traffic to a rare destination.

    Parameters
    ----------
    flows
        Flow records in FLOW_SCHEMA.
    min_bytes_sent
        Least bytes uploaded by the pair.
    min_upload_ratio
        Least ``bytes_sent / bytes_received``.
    max_sources
        A destination is rare when at most this many sources ever contact it.
    min_minutes
        Least active minutes (sustained, not one burst).

    Returns
    -------
    pl.DataFrame
        ``source_ip, destination_ip, bytes_sent, bytes_received, upload_ratio,
        active_minutes, first_seen, last_seen, destination_sources``; most uploaded first.

    Notes
    -----
    Over a large Parquet store the destinations are analysed in a few passes, each over
    those whose hash falls in it (with all their sources); the answer is the same.

    Examples
    --------
    >>> from datetime import datetime, timedelta, UTC
    >>> import natlens
    >>> t = datetime(2025, 1, 1, 2, tzinfo=UTC)
    >>> rows = [
    ...     [t + timedelta(minutes=m), "10.0.0.4", "203.0.113.9", "20.1.1.1"]
    ...     + [9000, 100, 0, 0, 30_000_000, 90_000, "GW"]
    ...     for m in range(10)
    ... ]
    >>> flows = pl.DataFrame(rows, schema=natlens.FLOW_SCHEMA, orient="row")
    >>> find_exfiltration(flows).select("destination_ip", "upload_ratio", "active_minutes").rows()
    [('203.0.113.9', 333.3333333333333, 10)]
    """
    keys = ["source_ip", "destination_ip"]
    lazy = as_lazy(flows)
    found = [
        _exfiltration(part, min_bytes_sent, min_upload_ratio, max_sources, min_minutes)
        for part in _parts(lazy, "destination_ip")
    ]
    return pl.concat(found).sort(["bytes_sent", *keys], descending=[True, False, False])


def _exfiltration(
    lazy: pl.LazyFrame,
    min_bytes_sent: int,
    min_upload_ratio: float,
    max_sources: int,
    min_minutes: int,
) -> pl.DataFrame:
    """:func:`find_exfiltration` of the destinations in ``lazy`` (all their sources), unsorted.

    A destination's sources are counted from its pairs (a missing source counts as one,
    as ``n_unique`` counts it) instead of grouping every record a second time; a missing
    destination is no destination (it was dropped by a join before).
    """
    keys = ["source_ip", "destination_ip"]
    return (
        lazy.filter(pl.col("destination_ip").is_not_null())
        .group_by(keys)
        .agg(
            _zero("bytes_sent").sum().alias("bytes_sent"),
            _zero("bytes_received").sum().alias("bytes_received"),
            pl.col("time").dt.truncate("1m").n_unique().cast(pl.Int64).alias("active_minutes"),
            pl.col("time").min().alias("first_seen"),
            pl.col("time").max().alias("last_seen"),
        )
        .with_columns(
            destination_sources=pl.len().over("destination_ip").cast(pl.Int64),
            upload_ratio=pl.col("bytes_sent") / pl.max_horizontal(pl.col("bytes_received"), 1),
        )
        .filter(
            (pl.col("bytes_sent") >= min_bytes_sent)
            & (pl.col("upload_ratio") >= min_upload_ratio)
            & (pl.col("destination_sources") <= max_sources)
            & (pl.col("active_minutes") >= min_minutes)
        )
        .select(
            *keys,
            "bytes_sent",
            "bytes_received",
            "upload_ratio",
            "active_minutes",
            "first_seen",
            "last_seen",
            "destination_sources",
        )
        .collect()
    )
