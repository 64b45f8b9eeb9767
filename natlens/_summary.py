"""The story of a set of flow logs as one value, rendered as text (triage) and HTML (report).

:func:`summarize` runs the public analyses once and keeps their frames in a
:class:`FlowSummary`; :func:`sections` turns that value into headings, notes and
display tables (sizes and shares already written for people) that
:func:`natlens.triage` prints and :func:`natlens.write_report` renders, so both show the
same rows in the same order with the same units.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Literal

import polars as pl

from natlens._billing import cost, explain_spike, find_spikes
from natlens._enrich import label_destinations, read_inventory, read_service_tags
from natlens._fields import gateway_name
from natlens._files import LoadReport, Problem, scan_flowlogs
from natlens._health import AVAILABILITY_THRESHOLD, gateway_health, percent_text
from natlens._html import format_bytes
from natlens._security import check_allowlist, find_beacons, find_exfiltration, new_destinations
from natlens._troubleshoot import dropped_packets
from natlens._typing import FrameLike, Inventory, Labels, Metric, PathLike, Resolver, Source
from natlens._usage import as_lazy, nat_ip_usage, rescannable, top_destinations, top_talkers

__all__ = ["FlowSummary", "Note", "Section", "Table", "sections", "summarize"]

SPIKE_MIN_SPAN = timedelta(days=2)
"""Spike detection compares each hour with the same hour on other days: two days at least."""

NEW_DESTINATIONS_SPAN = timedelta(days=3)
"""New destinations are those first seen in the last two days, after a day of baseline."""

_WHEN = "%Y-%m-%d %H:%M"

_METRIC_TEXT: dict[str, str] = {
    "bytes": "traffic (bytes sent + received)",
    "bytes_sent": "bytes sent",
    "bytes_received": "bytes received",
    "packets": "packets (sent + received)",
    "packets_sent": "packets sent",
    "packets_received": "packets received",
    "packets_dropped": "dropped packets",
    "records": "flow records",
}


@dataclass(frozen=True, eq=False)
class FlowSummary:
    """What a set of flow logs says, computed once by :func:`summarize`.

    Every frame is the output of one public analysis (named below), labelled with VM
    names (``vm_name``, from the inventory) and destination labels (``label``: a given
    label, else a hostname, else the Service Tag). :func:`natlens.triage` renders it as
    text and :func:`natlens.write_report` as HTML.

    Attributes
    ----------
    origin
        Where the flows came from (the files read, or ``"frame"``).
    start, end
        The first record's minute and the end of the last one (UTC; ``end`` excluded).
    records, source_count, destination_count, nat_ip_count
        How many flow records, sources, destinations and NAT public IPs.
    gateways
        The NAT gateways' resource ids.
    bytes_sent, bytes_received, cost
        Totals of the period; ``cost`` of data processing at ``price_per_gb``
        (:func:`natlens.cost`).
    price_per_gb, currency
        The price the costs use.
    metric, n
        What the top sources and destinations are ranked by, and how many rows each
        table keeps.
    health
        :func:`natlens.gateway_health` per gateway, or ``None`` without metrics.
    talkers, destinations
        :func:`natlens.top_talkers` and :func:`natlens.top_destinations` by ``metric``.
    nat_ips
        :func:`natlens.nat_ip_usage`.
    drops
        :func:`natlens.dropped_packets`: every pair with drops, most first.
    daily_cost
        :func:`natlens.cost` per day.
    spikes, spike_detail
        :func:`natlens.find_spikes` events and :func:`natlens.explain_spike` of the
        largest; ``None`` on less than two days of data.
    violations
        :func:`natlens.check_allowlist`, or ``None`` without an allowlist.
    beacons, exfiltration
        :func:`natlens.find_beacons` and :func:`natlens.find_exfiltration`.
    new_destinations, new_since
        :func:`natlens.new_destinations` since two days before the end (``new_since``);
        ``None`` on less than three days of data.
    problems
        Records that could not be read (when :func:`summarize` read the files).
    flows, metrics, inventory, labels
        The flows, the gateway metrics, the inventory and the destination labels, for
        charts. ``flows`` is what :func:`summarize` analysed: a LazyFrame over the
        Parquet files when it was given a store or a Parquet scan (a chart queries
        only what it draws), else a DataFrame.
    """

    origin: str
    start: datetime
    end: datetime
    records: int
    gateways: tuple[str, ...]
    source_count: int
    destination_count: int
    nat_ip_count: int
    bytes_sent: int
    bytes_received: int
    cost: float
    price_per_gb: float
    currency: str
    metric: Metric
    n: int
    health: pl.DataFrame | None
    talkers: pl.DataFrame
    destinations: pl.DataFrame
    nat_ips: pl.DataFrame
    drops: pl.DataFrame
    daily_cost: pl.DataFrame
    spikes: pl.DataFrame | None
    spike_detail: pl.DataFrame | None
    violations: pl.DataFrame | None
    beacons: pl.DataFrame
    exfiltration: pl.DataFrame
    new_destinations: pl.DataFrame | None
    new_since: datetime | None
    problems: tuple[Problem, ...] = ()
    flows: FrameLike = field(default_factory=pl.DataFrame, repr=False)
    metrics: pl.DataFrame | None = field(default=None, repr=False)
    inventory: pl.DataFrame | None = field(default=None, repr=False)
    labels: Mapping[str, str] = field(default_factory=dict, repr=False)

    @property
    def span(self) -> timedelta:
        """How long the period is."""
        return self.end - self.start


def _read(flows: FrameLike | Source) -> tuple[FrameLike, str, tuple[Problem, ...]]:
    """The flows to summarize, where they came from, and the records that were skipped.

    A DataFrame is taken as given. A LazyFrame, or files that are natlens Parquet stores
    (``natlens sync`` caches included), stays lazy when it only scans Parquet or IPC
    files (see :func:`natlens._usage.rescannable`); anything else is read into memory once.
    """
    if isinstance(flows, pl.DataFrame):
        return flows, "frame", ()
    if isinstance(flows, pl.LazyFrame):
        return (flows if rescannable(flows) else flows.collect()), "frame", ()
    report = LoadReport()
    scan = scan_flowlogs(flows, report=report)
    frame = scan if rescannable(scan) else scan.collect()
    items = [flows] if isinstance(flows, str | os.PathLike) else list(flows)
    return frame, ", ".join(os.fspath(item) for item in items), tuple(report.problems)


def _label_map(
    ips: pl.DataFrame | None,
    labels: Labels | None,
    service_tags: pl.DataFrame | PathLike | Mapping[str, Any] | None,
    resolver: Resolver | None,
) -> dict[str, str]:
    """Destination IP -> label: the given labels, else a hostname, else the Service Tag.

    ``ips`` holds the distinct ``destination_ip`` values, sorted; it is needed (and
    read) only with ``service_tags``.
    """
    mapping: dict[str, str] = {}
    if service_tags is not None and ips is not None:
        tagged = label_destinations(ips, service_tags=service_tags).drop_nulls("service_tag")
        mapping.update(zip(tagged["destination_ip"], tagged["service_tag"], strict=True))
    if isinstance(resolver, Mapping):
        hosts: dict[str, list[str]] = {}
        for host, addresses in resolver.items():
            for address in addresses:
                hosts.setdefault(str(address), []).append(str(host))
        mapping.update({ip: ", ".join(sorted(set(names))) for ip, names in hosts.items()})
    if isinstance(labels, pl.DataFrame):
        missing = {"destination_ip", "label"} - set(labels.columns)
        if missing:
            raise ValueError(f"labels: missing column(s) {sorted(missing)}")
        given = labels.drop_nulls(["destination_ip", "label"])
        mapping.update(zip(given["destination_ip"], given["label"], strict=True))
    elif labels is not None:
        mapping.update({str(k): str(v) for k, v in labels.items()})
    return mapping


def summarize(
    flows: FrameLike | Source,
    *,
    metrics: FrameLike | None = None,
    inventory: Inventory | None = None,
    labels: Labels | None = None,
    service_tags: pl.DataFrame | PathLike | Mapping[str, Any] | None = None,
    resolver: Resolver | None = None,
    allowlist: Sequence[str] | PathLike | None = None,
    price_per_gb: float = 0.045,
    currency: str = "USD",
    metric: Metric = "bytes",
    n: int = 10,
) -> FlowSummary:
    """Run the analyses a first look needs, once, and keep the results as one value.

    Health (from the gateway metrics), volume and cost, the top sources and
    destinations, NAT IP usage, dropped packets, spikes as events, allowlist
    compliance, beacons, bulk uploads and new destinations. Print it with
    :func:`natlens.triage`, write it as HTML with :func:`natlens.write_report`.

    Parameters
    ----------
    flows
        Flow records, or files :func:`natlens.read_flowlogs` reads (bad records are then
        kept in ``problems`` and shown by both renderings). What is given decides how
        they are read. A LazyFrame that scans only Parquet (or IPC) files, such as
        :func:`natlens.scan_parquet` of a store, and a natlens Parquet store or
        ``natlens sync`` cache named by its folder, stay lazy: each section asks for its
        own aggregation and polars reads only the columns it needs, so a month of
        records is summarized without holding them in memory. Anything else read from
        files (``PT1H.json`` trees and the other Azure formats, or a LazyFrame over
        them) is read into memory once: decoding it again for every section would cost
        more than keeping it. A DataFrame is used as it is.
    metrics
        Gateway metrics (:func:`natlens.read_metrics`) for the health section; ``None``
        says health was not checked.
    inventory
        IP -> VM name (:func:`natlens.read_inventory` or its file): a ``vm_name`` column.
    labels
        Destination IP -> label; wins over hostnames and Service Tags.
    service_tags
        Azure Service Tags: destination labels and allowlist tag entries.
    resolver
        Hostname -> IPs for allowlisted hostnames; a mapping also labels its IPs with
        their hostnames (``github.com``).
    allowlist
        Allowed destinations (entries or file); ``None`` skips the compliance check.
    price_per_gb, currency
        Data processing price (per decimal GB) for the costs.
    metric
        What the top sources and destinations are ranked by.
    n
        Rows kept in each table.

    Returns
    -------
    FlowSummary

    Raises
    ------
    ValueError
        If there are no flow records, or an argument is invalid (named).

    Examples
    --------
    >>> import natlens
    >>> samples = natlens.sample_data()
    >>> summary = natlens.summarize(
    ...     samples.flowlogs, metrics=natlens.read_metrics(samples.metrics), n=3
    ... )
    >>> summary.talkers.get_column("source_ip").to_list()
    ['10.10.3.7', '10.20.1.13', '10.20.1.14']
    >>> summary.health.filter(pl.col("status") == "problem").height
    1
    >>> f"{summary.spikes.item(0, 'peak'):%Y-%m-%d %H:%M}"
    '2026-11-10 14:00'

    A Parquet store is summarized without loading it:

    >>> import tempfile
    >>> store = tempfile.mkdtemp()
    >>> _ = natlens.write_parquet(natlens.scan_flowlogs(samples.flowlogs), store)
    >>> stored = natlens.summarize(natlens.scan_parquet(store), n=3)
    >>> type(stored.flows).__name__, stored.talkers.equals(summary.talkers)
    ('LazyFrame', True)
    """
    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        raise ValueError(f"n: expected a positive integer, got {n!r}")
    for attempt in range(1, _ATTEMPTS + 1):
        frame, origin, problems = _read(flows)
        try:
            return _summarize(
                frame,
                origin,
                problems,
                metrics=metrics,
                inventory=inventory,
                labels=labels,
                service_tags=service_tags,
                resolver=resolver,
                allowlist=allowlist,
                price_per_gb=price_per_gb,
                currency=currency,
                metric=metric,
                n=n,
            )
        except FileNotFoundError as exc:
            replaced = None if isinstance(frame, pl.DataFrame) else _replaced_store_file(exc)
            if replaced is None:
                raise
            if isinstance(flows, pl.LazyFrame):
                raise FileNotFoundError(
                    f"flows: {replaced} left its Parquet store while it was summarized (a "
                    "write to the store replaced it): scan the store again and summarize"
                ) from None
            if attempt == _ATTEMPTS:
                raise FileNotFoundError(
                    f"flows: {replaced} left its Parquet store while it was summarized, "
                    f"{_ATTEMPTS} times in a row (writes to the store keep replacing its "
                    "files): summarize when they pause"
                ) from None
    raise AssertionError("unreachable")  # the last attempt returns or raises


_ATTEMPTS = 3
"""Times :func:`summarize` starts again when a write to the store it reads replaces a file."""


def _replaced_store_file(error: FileNotFoundError) -> str | None:
    """The store file (``date=<day>/<name>.parquet``) ``error`` found missing, if any.

    A write to a natlens store keeps the files it replaced (:func:`natlens.write_parquet`
    with a ``part``, as ``natlens sync`` does for a blob that grew) for 15 minutes, and a
    later write deletes them, so a lazy scan listed before that misses them when a later
    section reads. polars shortens the path in its message; the day folder and the file
    name remain.
    """
    found = re.search(r"\(os error 2\): .*?(date=[^/\\\s]+[/\\][^/\\\s]+\.parquet)", str(error))
    return None if found is None else found.group(1)


def _summarize(
    frame: FrameLike,
    origin: str,
    problems: tuple[Problem, ...],
    *,
    metrics: FrameLike | None,
    inventory: Inventory | None,
    labels: Labels | None,
    service_tags: pl.DataFrame | PathLike | Mapping[str, Any] | None,
    resolver: Resolver | None,
    allowlist: Sequence[str] | PathLike | None,
    price_per_gb: float,
    currency: str,
    metric: Metric,
    n: int,
) -> FlowSummary:
    """:func:`summarize` of flows already read (see :func:`_read`)."""
    lazy = as_lazy(frame)
    # The small aggregations summarize needs itself, in one pass over the records.
    queries = [
        lazy.select(
            records=pl.len(),
            first=pl.col("time").min(),
            last=pl.col("time").max(),
            sources=pl.col("source_ip").n_unique(),
            destinations=pl.col("destination_ip").n_unique(),
            nat_ips=pl.col("nat_gateway_ip").n_unique(),
        )
    ]
    if service_tags is not None:
        queries.append(lazy.select(pl.col("destination_ip").unique().sort()))
    totals, *rest = pl.collect_all(queries)
    if totals.item(0, "records") == 0:
        raise ValueError("flows: no flow records to summarize")
    metric_rows = metrics.lazy().collect() if metrics is not None else None
    health = gateway_health(metric_rows) if metric_rows is not None else None
    inv = read_inventory(inventory) if inventory is not None else None
    tags = (
        read_service_tags(service_tags)
        if isinstance(service_tags, str | os.PathLike | Mapping)
        else service_tags
    )
    # The allowlist first: a bad allowlist fails before anything else is computed.
    violations = (
        check_allowlist(lazy, allowlist, service_tags=tags, resolver=resolver)
        if allowlist is not None
        else None
    )
    label_of = _label_map(rest[0] if rest else None, labels, tags, resolver)

    def named(table: pl.DataFrame) -> pl.DataFrame:
        """``vm_name`` after ``source_ip`` and ``label`` after ``destination_ip``."""
        columns = list(table.columns)
        if inv is not None and "source_ip" in columns:
            vms = inv.select(pl.col("ip").alias("source_ip"), "vm_name")
            table = table.join(vms, on="source_ip", how="left", maintain_order="left")
            columns.insert(columns.index("source_ip"), "vm_name")
        if "destination_ip" in columns:
            table = table.with_columns(
                label=pl.col("destination_ip").replace_strict(
                    label_of, default=None, return_dtype=pl.String
                )
            )
            columns.insert(columns.index("destination_ip") + 1, "label")
        return table.select(columns)

    first, last = totals.item(0, "first"), totals.item(0, "last")
    assert isinstance(first, datetime)
    assert isinstance(last, datetime)
    end = last + timedelta(minutes=1)
    by_gateway = cost(lazy, price_per_gb=price_per_gb, currency=currency, by="gateway")
    daily = cost(lazy, price_per_gb=price_per_gb, currency=currency, every="1d")

    spikes = spike_detail = None
    if end - first >= SPIKE_MIN_SPAN:
        spikes = find_spikes(lazy, price_per_gb=price_per_gb, currency=currency)
        if not spikes.is_empty():
            spike_detail = named(
                explain_spike(
                    lazy,
                    spikes.row(0, named=True),
                    price_per_gb=price_per_gb,
                    currency=currency,
                    n=n,
                )
            )
    new = new_since = None
    if end - first >= NEW_DESTINATIONS_SPAN:
        new_since = end - timedelta(days=2)
        new = named(new_destinations(lazy, baseline=new_since).drop("source_ips"))

    return FlowSummary(
        origin=origin,
        start=first,
        end=end,
        records=totals.item(0, "records"),
        gateways=tuple(sorted(by_gateway.get_column("resource_id").drop_nulls())),
        source_count=totals.item(0, "sources"),
        destination_count=totals.item(0, "destinations"),
        nat_ip_count=totals.item(0, "nat_ips"),
        bytes_sent=int(by_gateway.get_column("bytes_sent").sum()),
        bytes_received=int(by_gateway.get_column("bytes_received").sum()),
        cost=float(by_gateway.get_column("cost").sum()),
        price_per_gb=price_per_gb,
        currency=currency.strip(),
        metric=metric,
        n=n,
        health=health,
        talkers=named(top_talkers(lazy, metric=metric, n=n)),
        destinations=named(top_destinations(lazy, metric=metric, n=n)),
        nat_ips=nat_ip_usage(lazy),
        drops=named(dropped_packets(lazy).drop("minutes")),
        daily_cost=daily,
        spikes=spikes,
        spike_detail=spike_detail,
        violations=named(violations) if violations is not None else None,
        beacons=named(find_beacons(lazy)),
        exfiltration=named(find_exfiltration(lazy)),
        new_destinations=new,
        new_since=new_since,
        problems=problems,
        flows=frame,
        metrics=metric_rows,
        inventory=inv,
        labels=label_of,
    )


# -- the rendering model: what both renderings show, in order --------------------------

Status = Literal["ok", "problem", "unknown", "note"]


@dataclass(frozen=True)
class Note:
    """A sentence of a section, with how it reads: ``ok``, ``problem``, ``unknown``, ``note``."""

    status: Status
    text: str


@dataclass(frozen=True)
class Table:
    """A display table: cells are numbers, times or text already written for people."""

    caption: str
    frame: pl.DataFrame


@dataclass(frozen=True)
class Section:
    """One part of the story: a key (for charts), a heading, notes and tables in order."""

    key: str
    heading: str
    parts: tuple[Note | Table, ...]


def _bytes(column: str, name: str) -> pl.Expr:
    return pl.col(column).map_elements(format_bytes, return_dtype=pl.String).alias(name)


def _percent(column: str, name: str, digits: int = 1) -> pl.Expr:
    return pl.format("{}%", (pl.col(column) * 100).round(digits)).alias(name)


def _who(table: pl.DataFrame) -> list[pl.Expr]:
    """VM name (when known) and source IP."""
    shown = [pl.col("vm_name").alias("vm")] if "vm_name" in table.columns else []
    return [*shown, pl.col("source_ip").alias("source")]


def _where(table: pl.DataFrame) -> list[pl.Expr]:
    """Destination IP and its label (when any destination has one)."""
    shown = [pl.col("destination_ip").alias("destination")]
    if "label" in table.columns and table.get_column("label").is_not_null().any():
        shown.append(pl.col("label").fill_null(""))
    return shown


def _endpoint(ip: str, name: str | None) -> str:
    return f"{name} ({ip})" if name else ip


def _health_parts(summary: FlowSummary) -> list[Note | Table]:
    parts: list[Note | Table] = []
    if summary.health is None:
        parts.append(
            Note(
                "unknown",
                "Gateway health not checked: no gateway metrics given (DatapathAvailability, "
                "SNATConnectionCount, PacketDropCount).",
            )
        )
    elif summary.health.is_empty():
        parts.append(Note("unknown", "The gateway metrics hold no gateway."))
    else:
        for row in summary.health.iter_rows(named=True):
            parts.append(_gateway_note(row))
        measured = {g.strip("/").upper() for g in summary.health.get_column("resource_id")}
        parts += [
            Note("unknown", f"{gateway_name(g)}: not in the metrics given; health not checked.")
            for g in summary.gateways
            if g.strip("/").upper() not in measured
        ]
        parts.append(
            Table(
                "Gateway metrics (UTC): the lowest 15-minute DatapathAvailability and the "
                f"windows below {AVAILABILITY_THRESHOLD:g}%; failed SNAT connections, the "
                "minutes with failures, the first and last, the most in a minute; packets "
                "dropped (PacketDropCount)",
                summary.health.select(
                    pl.col("resource_id")
                    .map_elements(gateway_name, return_dtype=pl.String)
                    .alias("gateway"),
                    pl.col("availability_lowest")
                    .map_elements(percent_text, return_dtype=pl.String)
                    .alias("availability"),
                    pl.col("availability_lowest_at").alias("lowest at"),
                    pl.col("availability_windows_below").alias(f"< {AVAILABILITY_THRESHOLD:g}%"),
                    pl.col("snat_failed").cast(pl.Int64).alias("SNAT failed"),
                    pl.col("snat_failed_minutes").alias("minutes"),
                    pl.col("snat_failed_first").alias("first"),
                    pl.col("snat_failed_last").alias("last"),
                    pl.col("snat_failed_peak_per_minute").cast(pl.Int64).alias("most/min"),
                    pl.col("packets_dropped").cast(pl.Int64).alias("dropped"),
                ),
            )
        )
    drops = summary.drops
    if drops.is_empty():
        parts.append(Note("ok", "No packets dropped on established connections (flow log)."))
    else:
        top = drops.row(0, named=True)
        source = _endpoint(top["source_ip"], top.get("vm_name"))
        target = _endpoint(top["destination_ip"], top.get("label"))
        total = int(drops.get_column("packets_dropped").sum())
        parts.append(
            Note(
                "problem",
                f"{total:,} packets dropped on established connections (flow log), on "
                f"{drops.height:,} source/destination pair(s); the most on {source} -> "
                f"{target}: {top['packets_dropped']:,} in {top['drop_minutes']:,} minute(s) "
                f"from {top['first_drop']:{_WHEN}} to {top['last_drop']:{_WHEN}} UTC. A single "
                "heavy connection is rate limited: spread it over more connections or add "
                "public IPs.",
            )
        )
    return parts


def _gateway_note(row: Mapping[str, Any]) -> Note:
    """One sentence per gateway: SNAT failures first (the usual cause), then availability."""
    findings: list[str] = []
    unknown = problem = False
    failed = row["snat_failed"]
    if failed is None:
        findings.append("no SNATConnectionCount metric")
        unknown = True
    elif failed > 0:
        last = row["snat_failed_last"] + timedelta(minutes=1)
        findings.append(
            f"{failed:,.0f} SNAT connection failures in {row['snat_failed_minutes']} minute(s) "
            f"from {row['snat_failed_first']:{_WHEN}} to {last:{_WHEN}} UTC (at most "
            f"{row['snat_failed_peak_per_minute']:,.0f} a minute): new connections were "
            "refused, which the flow log cannot show; add public IPs to the gateway or reuse "
            "connections"
        )
        problem = True
    else:
        findings.append("no SNAT connection failures")
    lowest = row["availability_lowest"]
    if lowest is None:
        findings.append("no DatapathAvailability metric")
        unknown = True
    elif row["availability_windows_below"]:
        findings.append(
            f"DatapathAvailability below {AVAILABILITY_THRESHOLD:g}% in "
            f"{row['availability_windows_below']} 15-minute window(s), lowest "
            f"{percent_text(lowest)} "
            f"from {row['availability_lowest_at']:{_WHEN}} UTC: the gateway itself is "
            "degraded; check Azure Resource Health"
        )
        problem = True
    else:
        findings.append(
            f"DatapathAvailability at or above {AVAILABILITY_THRESHOLD:g}% (worst 15 minutes "
            f"{percent_text(lowest)} from {row['availability_lowest_at']:{_WHEN}} UTC)"
        )
    status: Status = "problem" if problem else "unknown" if unknown else "ok"
    healthy = "healthy: " if status == "ok" else ""
    return Note(status, f"{gateway_name(row['resource_id'])}: {healthy}{'; '.join(findings)}.")


def _span_text(span: timedelta) -> str:
    """``7.0 days`` or ``9 minutes`` / ``5.5 hours`` for shorter spans."""
    if span >= timedelta(days=1):
        return f"{span / timedelta(days=1):,.1f} days"
    if span >= timedelta(hours=2):
        return f"{span / timedelta(hours=1):.1f} hours"
    return f"{span // timedelta(minutes=1)} minutes"


def _overview(summary: FlowSummary) -> list[Note | Table]:
    total = summary.bytes_sent + summary.bytes_received
    gateways = ", ".join(gateway_name(g) for g in summary.gateways)
    parts: list[Note | Table] = [
        Note(
            "note",
            f"Period: {summary.start:{_WHEN}} to {summary.end:{_WHEN}} UTC "
            f"({_span_text(summary.span)}).",
        ),
        Note(
            "note",
            f"{summary.records:,} flow records; {len(summary.gateways)} gateway(s) ({gateways}), "
            f"{summary.nat_ip_count} NAT public IPs, {summary.source_count:,} sources, "
            f"{summary.destination_count:,} destinations.",
        ),
        Note(
            "note",
            f"Traffic: {format_bytes(summary.bytes_sent)} sent, "
            f"{format_bytes(summary.bytes_received)} received; data processing of "
            f"{format_bytes(total)} costs {summary.cost:,.2f} {summary.currency} at "
            f"{summary.price_per_gb:g} {summary.currency}/GB.",
        ),
    ]
    if summary.problems:
        first = "; ".join(str(p) for p in summary.problems[:3])
        more = f" and {len(summary.problems) - 3:,} more" if len(summary.problems) > 3 else ""
        parts.append(
            Note(
                "problem",
                f"Skipped {len(summary.problems):,} bad record(s), not counted above: "
                f"{first}{more}.",
            )
        )
    return parts


def _usage_parts(summary: FlowSummary) -> list[Note | Table]:
    ranked = _METRIC_TEXT[summary.metric]
    talkers, destinations = summary.talkers, summary.destinations
    share = f"share of {ranked.split(' (')[0]}"
    parts: list[Note | Table] = [
        Table(
            f"Top {summary.n} sources by {ranked}",
            talkers.select(
                *_who(talkers),
                _bytes("bytes", "traffic"),
                _bytes("bytes_sent", "sent"),
                _bytes("bytes_received", "received"),
                "records",
                "destinations",
                _percent("share", share),
            ),
        ),
        Table(
            f"Top {summary.n} destinations by {ranked}",
            destinations.select(
                *_where(destinations),
                _bytes("bytes", "traffic"),
                _bytes("bytes_sent", "sent"),
                _bytes("bytes_received", "received"),
                "records",
                "sources",
                _percent("share", share),
            ),
        ),
        Table(
            "NAT public IPs (share: the IP's part of its gateway's records of the same "
            "family; an even spread over k IPs is 1/k each)",
            summary.nat_ips.select(
                pl.col("resource_id")
                .map_elements(gateway_name, return_dtype=pl.String)
                .alias("gateway"),
                pl.col("nat_gateway_ip").alias("NAT IP"),
                pl.format("IPv{}", pl.col("ip_version")).alias("family"),
                _bytes("bytes", "traffic"),
                "records",
                "sources",
                "destinations",
                pl.col("peak_records_per_minute").alias("busiest minute (records)"),
                _percent("share", "share"),
            ),
        ),
    ]
    return parts


def _spike_parts(summary: FlowSummary) -> list[Note | Table]:
    currency = summary.currency
    parts: list[Note | Table] = [
        Note(
            "note",
            f"Data processing at {summary.price_per_gb:g} {currency}/GB: "
            f"{summary.cost:,.2f} {currency} for the period.",
        )
    ]
    if summary.spikes is None:
        parts.append(Note("note", "Spike detection needs at least two days of data."))
        return parts
    if summary.spikes.is_empty():
        parts.append(Note("ok", "No hour far above its usual level."))
        return parts
    spikes = summary.spikes.head(summary.n)
    parts.append(
        Table(
            "Spikes: runs of hours far above their usual level, largest extra volume first (UTC)",
            spikes.select(
                pl.col("start").alias("from"),
                pl.col("end").alias("to"),
                pl.col("buckets").alias("hours"),
                pl.col("peak").alias("peak hour"),
                _bytes("peak_actual", "peak traffic"),
                _bytes("peak_expected", "usual at peak"),
                _bytes("extra_bytes", "extra traffic"),
                pl.format("{} {}", pl.col("extra_cost").round(2), pl.col("currency")).alias(
                    "extra cost"
                ),
            ),
        )
    )
    event = spikes.row(0, named=True)
    detail = summary.spike_detail
    if detail is not None:
        parts.append(
            Table(
                f"What the largest spike, {event['start']:{_WHEN}} to {event['end']:{_WHEN}} "
                "UTC, carried beyond the usual",
                detail.select(
                    *_who(detail),
                    *_where(detail),
                    _bytes("delta_bytes", "extra traffic"),
                    pl.format("{} {}", pl.col("delta_cost").round(2), pl.col("currency")).alias(
                        "extra cost"
                    ),
                ),
            )
        )
    return parts


def _drop_parts(summary: FlowSummary) -> list[Note | Table]:
    drops = summary.drops
    if drops.is_empty():
        return [Note("ok", "No packets dropped on established connections.")]
    return [
        Note(
            "note",
            "Packets dropped on established connections: the gateway rate limits a single "
            "heavy connection. Spread the traffic over more connections or add public IPs.",
        ),
        Table(
            f"Pairs with dropped packets (UTC; {drops.height:,} in all, most first)",
            drops.head(summary.n).select(
                *_who(drops),
                *_where(drops),
                pl.col("packets_dropped").alias("packets dropped"),
                _percent("drop_rate", "drop rate", 2),
                pl.col("drop_minutes").alias("minutes"),
                pl.col("first_drop").alias("first drop"),
                pl.col("last_drop").alias("last drop"),
            ),
        ),
    ]


def _compliance_parts(summary: FlowSummary) -> list[Note | Table]:
    parts: list[Note | Table] = []
    violations = summary.violations
    if violations is None:
        parts.append(Note("note", "No allowlist given: compliance not checked."))
    elif violations.is_empty():
        parts.append(Note("ok", "Every destination is on the allowlist."))
    else:
        parts.append(
            Note(
                "problem",
                f"{violations.height} source/destination pair(s) reach destinations not on "
                "the allowlist.",
            )
        )
        parts.append(
            Table(
                "Destinations not on the allowlist (UTC)",
                violations.head(summary.n).select(
                    *_who(violations),
                    *_where(violations),
                    pl.col("first_seen").alias("first seen"),
                    pl.col("last_seen").alias("last seen"),
                    "records",
                    _bytes("bytes", "traffic"),
                ),
            )
        )
    beacons = summary.beacons
    if beacons.is_empty():
        parts.append(Note("ok", "No beacon: no pair with regular, tiny contacts."))
    else:
        parts.append(
            Table(
                "Beacon candidates: regular, tiny contacts (score 1 is perfectly regular)",
                beacons.head(summary.n).select(
                    *_who(beacons),
                    *_where(beacons),
                    "contacts",
                    pl.col("interval_minutes").round(1).alias("every (minutes)"),
                    _bytes("bytes_per_contact", "per contact"),
                    pl.col("score").round(2),
                ),
            )
        )
    uploads = summary.exfiltration
    if uploads.is_empty():
        parts.append(Note("ok", "No bulk upload to a destination no other VM uses."))
    else:
        parts.append(
            Table(
                "Bulk uploads to a destination no other VM uses (UTC)",
                uploads.head(summary.n).select(
                    *_who(uploads),
                    *_where(uploads),
                    _bytes("bytes_sent", "sent"),
                    pl.col("upload_ratio").round(1).alias("sent/received"),
                    pl.col("active_minutes").alias("active minutes"),
                    pl.col("first_seen").alias("first seen"),
                    pl.col("last_seen").alias("last seen"),
                ),
            )
        )
    new = summary.new_destinations
    if new is None or summary.new_since is None:
        parts.append(Note("note", "New destinations need at least three days of data."))
    elif new.is_empty():
        parts.append(
            Note("ok", f"No destination first seen since {summary.new_since:{_WHEN}} UTC.")
        )
    else:
        parts.append(
            Table(
                f"Destinations first seen since {summary.new_since:{_WHEN}} UTC "
                f"({new.height:,} in all)",
                new.head(summary.n).select(
                    *_where(new),
                    pl.col("first_seen").alias("first seen"),
                    "records",
                    _bytes("bytes", "traffic"),
                    "sources",
                ),
            )
        )
    return parts


def sections(summary: FlowSummary) -> tuple[Section, ...]:
    """The story in order, health first: what triage prints and the report renders.

    Examples
    --------
    >>> import natlens
    >>> summary = natlens.summarize(natlens.sample_data().flowlogs, n=3)
    >>> [s.key for s in sections(summary)]
    ['overview', 'health', 'usage', 'spikes', 'drops', 'compliance']
    """
    return (
        Section("overview", "Overview", tuple(_overview(summary))),
        Section("health", "Health", tuple(_health_parts(summary))),
        Section("usage", "Usage", tuple(_usage_parts(summary))),
        Section("spikes", "Spikes and cost", tuple(_spike_parts(summary))),
        Section("drops", "Dropped packets", tuple(_drop_parts(summary))),
        Section("compliance", "Compliance", tuple(_compliance_parts(summary))),
    )
