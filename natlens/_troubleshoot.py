"""Troubleshooting: find the flows of a connection, their drops, and walk the documented path.

The path (``docs/domain.md``): gateway health from DatapathAvailability, flow logs
present, flows between source and destination (none: the connection was never
established, look at SNAT failures, NSGs, routes, DNS), then dropped packets (a single
connection being rate limited).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Literal

import polars as pl

from natlens._fields import gateway_name
from natlens._health import (
    AVAILABILITY_THRESHOLD,
    _gateway_filter,
    _metrics_rows,
    _snat_failed_minutes,
    gateway_health,
    percent_text,
)
from natlens._ip import longest_prefix_match, resolve_targets
from natlens._schema import METRICS_SCHEMA
from natlens._time import time_filter, time_range
from natlens._typing import FrameLike, Resolver, Targets, TimeLike
from natlens._usage import as_lazy

__all__ = [
    "Diagnosis",
    "DiagnosisStep",
    "diagnose",
    "dropped_packets",
    "find_flows",
]

Status = Literal["ok", "problem", "unknown"]


def _in_window(lazy: pl.LazyFrame, start: TimeLike | None, end: TimeLike | None) -> pl.LazyFrame:
    window = time_filter(*time_range(start, end))
    return lazy if window is None else lazy.filter(window)


def _match(
    lazy: pl.LazyFrame,
    column: str,
    targets: Targets | None,
    *,
    argument: str,
    resolver: Resolver | None,
) -> pl.LazyFrame:
    """Keep the rows whose ``column`` lies in any of ``targets`` (IPs, CIDRs, hostnames)."""
    if targets is None:
        return lazy
    prefixes = resolve_targets(targets, argument=argument, resolver=resolver)
    matched = longest_prefix_match(lazy, prefixes, column=column).select(column)
    return lazy.join(matched, on=column, how="semi")


def _select(
    flows: FrameLike,
    *,
    sources: Targets | None,
    destinations: Targets | None,
    nat_ips: Targets | None = None,
    gateways: Targets | None = None,
    start: TimeLike | None,
    end: TimeLike | None,
    resolver: Resolver | None,
) -> pl.LazyFrame:
    lazy = _in_window(as_lazy(flows), start, end)
    if gateways is not None:
        lazy = lazy.filter(_gateway_filter(gateways))
    lazy = _match(lazy, "source_ip", sources, argument="sources", resolver=resolver)
    lazy = _match(lazy, "destination_ip", destinations, argument="destinations", resolver=resolver)
    return _match(lazy, "nat_gateway_ip", nat_ips, argument="nat_ips", resolver=None)


def find_flows(
    flows: FrameLike,
    *,
    sources: Targets | None = None,
    destinations: Targets | None = None,
    nat_ips: Targets | None = None,
    gateways: Targets | None = None,
    start: TimeLike | None = None,
    end: TimeLike | None = None,
    resolver: Resolver | None = None,
) -> pl.DataFrame:
    """The flow records between sources and destinations, through NAT IPs and gateways.

    Parameters
    ----------
    flows
        Flow records in FLOW_SCHEMA.
    sources, destinations
        An IP, a CIDR (IPv4 or IPv6), a hostname, or a list mixing them; ``None`` for any.
        A NAT64 address (``64:ff9b::14.1.2.3``) is its IPv4 host: ``14.1.0.0/16`` or a
        hostname resolving to 14.1.2.3 finds it (see :func:`natlens.label_destinations`).
    nat_ips
        NAT public IP(s) or CIDR(s); ``None`` for any.
    gateways
        NAT gateway resource id(s) (case-insensitive) or gateway name(s); ``None`` for any.
    start, end
        Time window ``[start, end)`` (datetime, date or ISO text; naive is UTC).
    resolver
        How hostnames become IPs: a mapping ``host -> [ips]`` (e.g.
        ``natlens.read_hostnames(path)``) or a function. Nothing is looked up otherwise.

    Returns
    -------
    pl.DataFrame
        The matching records in FLOW_SCHEMA, sorted by time, source, destination.

    Raises
    ------
    ValueError
        For an invalid IP or CIDR, or a hostname the resolver does not know.

    Examples
    --------
    >>> import natlens
    >>> samples = natlens.sample_data()
    >>> flows = natlens.read_flowlogs(samples.flowlogs)
    >>> found = find_flows(
    ...     flows,
    ...     sources="10.20.1.0/24",
    ...     destinations="github.com",
    ...     resolver=natlens.read_hostnames(samples.hostnames),
    ...     start="2026-11-12T08:28",
    ...     end="2026-11-12T08:30",
    ... )
    >>> row = found.row(0, named=True)
    >>> str(row["time"]), row["source_ip"], row["packets_received_dropped"]
    ('2026-11-12 08:28:00+00:00', '10.20.1.13', 538)
    """
    lazy = _select(
        flows,
        sources=sources,
        destinations=destinations,
        nat_ips=nat_ips,
        gateways=gateways,
        start=start,
        end=end,
        resolver=resolver,
    )
    return lazy.sort("time", "source_ip", "destination_ip", "nat_gateway_ip").collect()


def _zero(name: str) -> pl.Expr:
    return pl.col(name).fill_null(0)


def dropped_packets(
    flows: FrameLike,
    *,
    sources: Targets | None = None,
    destinations: Targets | None = None,
    start: TimeLike | None = None,
    end: TimeLike | None = None,
    resolver: Resolver | None = None,
) -> pl.DataFrame:
    """Per source/destination pair with drops: dropped packets each way, drop rate, when.

    The flow log's ``*Dropped`` counters count packets the gateway dropped on an
    established connection (rate limiting of a single heavy connection).

    Parameters
    ----------
    flows
        Flow records in FLOW_SCHEMA.
    sources, destinations
        IP, CIDR, hostname or a list (see :func:`find_flows`); ``None`` for any.
    start, end
        Time window ``[start, end)`` (datetime, date or ISO text; naive is UTC).
    resolver
        Hostname lookup, see :func:`find_flows`.

    Returns
    -------
    pl.DataFrame
        ``source_ip, destination_ip, packets_sent, packets_received,
        packets_sent_dropped, packets_received_dropped, packets_dropped, drop_rate``
        (dropped over all packets of the pair), ``first_drop``, ``last_drop``,
        ``drop_minutes`` (how many minutes had drops) and ``minutes`` (their list).
        Only pairs with drops; most dropped first.

    Examples
    --------
    >>> import natlens
    >>> flows = natlens.read_flowlogs(natlens.sample_data().flowlogs)
    >>> worst = dropped_packets(flows).row(0, named=True)
    >>> worst["source_ip"], worst["destination_ip"], worst["drop_minutes"]
    ('10.20.1.13', '140.82.121.4', 103)
    """
    lazy = _select(
        flows,
        sources=sources,
        destinations=destinations,
        start=start,
        end=end,
        resolver=resolver,
    )
    dropped = _zero("packets_sent_dropped") + _zero("packets_received_dropped")
    minute = pl.col("time").dt.truncate("1m")
    drop_minutes = minute.filter(dropped > 0).unique().sort()
    pairs = ["source_ip", "destination_ip"]
    # Drops are rare: find the pairs that have any first, then total only those.
    with_drops = lazy.filter(dropped > 0).select(pairs).unique()
    return (
        lazy.join(with_drops, on=pairs, how="semi", nulls_equal=True)
        .group_by(pairs)
        .agg(
            _zero("packets_sent").sum().alias("packets_sent"),
            _zero("packets_received").sum().alias("packets_received"),
            _zero("packets_sent_dropped").sum().alias("packets_sent_dropped"),
            _zero("packets_received_dropped").sum().alias("packets_received_dropped"),
            dropped.sum().alias("packets_dropped"),
            pl.col("time").filter(dropped > 0).min().alias("first_drop"),
            pl.col("time").filter(dropped > 0).max().alias("last_drop"),
            drop_minutes.len().cast(pl.Int64).alias("drop_minutes"),
            drop_minutes.alias("minutes"),
        )
        .filter(pl.col("packets_dropped") > 0)
        .with_columns(
            drop_rate=pl.col("packets_dropped")
            / (pl.col("packets_sent") + pl.col("packets_received") + pl.col("packets_dropped"))
        )
        .select(
            "source_ip",
            "destination_ip",
            "packets_sent",
            "packets_received",
            "packets_sent_dropped",
            "packets_received_dropped",
            "packets_dropped",
            "drop_rate",
            "first_drop",
            "last_drop",
            "drop_minutes",
            "minutes",
        )
        .sort(["packets_dropped", "source_ip", "destination_ip"], descending=[True, False, False])
        .collect()
    )


@dataclass(frozen=True)
class DiagnosisStep:
    """One step of the troubleshooting path: its verdict and the evidence behind it."""

    name: str
    status: Status
    finding: str
    evidence: pl.DataFrame = field(default_factory=pl.DataFrame, compare=False, repr=False)


VERDICTS = (
    "gateway_unhealthy",
    "no_flow_logs",
    "unknown_source",
    "unknown_destination",
    "never_established",
    "snat_exhaustion",
    "rate_limited",
    "healthy",
)


@dataclass(frozen=True)
class Diagnosis:
    """The outcome of :func:`diagnose`: a verdict, a one-line summary and every step.

    ``verdict`` is one of ``gateway_unhealthy``, ``no_flow_logs``, ``unknown_source``,
    ``unknown_destination`` (an address or name with no record at all in the window,
    from or to anything: nothing can be said about its connections),
    ``never_established``, ``snat_exhaustion``, ``rate_limited`` or ``healthy``: the
    first problem met along the path.
    """

    verdict: str
    summary: str
    steps: tuple[DiagnosisStep, ...]

    def to_frame(self) -> pl.DataFrame:
        """The steps as a table: ``step, status, finding``."""
        return pl.DataFrame(
            {
                "step": [s.name for s in self.steps],
                "status": [s.status for s in self.steps],
                "finding": [s.finding for s in self.steps],
            },
            schema={"step": pl.String, "status": pl.String, "finding": pl.String},
        )

    def step(self, name: str) -> DiagnosisStep:
        """The step called ``name`` (``health``, ``flow_logs``, ``connection``, ``drops``)."""
        for step in self.steps:
            if step.name == name:
                return step
        raise KeyError(f"no step {name!r}; steps are {[s.name for s in self.steps]}")

    def __str__(self) -> str:
        lines = [f"{self.verdict}: {self.summary}"]
        lines += [f"  [{s.status}] {s.name}: {s.finding}" for s in self.steps]
        return "\n".join(lines)

    def _repr_markdown_(self) -> str:
        """How Jupyter shows a diagnosis: the verdict, then one table row per step."""
        rows = [f"| {s.name} | {s.status} | {s.finding.replace('|', '/')} |" for s in self.steps]
        table = "\n".join(["| step | status | finding |", "|---|---|---|", *rows])
        return f"**{self.verdict}**: {self.summary}\n\n{table}\n"


def _fmt(moment: object) -> str:
    return moment.strftime("%Y-%m-%d %H:%M") if isinstance(moment, datetime) else "?"


def _health_step(health: pl.DataFrame | None, gateways: list[str]) -> DiagnosisStep:
    """Step 1, read from :func:`natlens.gateway_health`'s frame, which is its evidence.

    ``health`` is gateway_health for ``gateways`` (the gateways of the diagnosed traffic;
    every gateway in the metrics when empty) and the window. The step reads its
    availability columns, naming each gateway when there are several; its SNAT failure
    columns are the connection step's concern.
    """
    if health is None:
        return DiagnosisStep("health", "unknown", "no metrics given: gateway health not checked")
    measured = {rid.strip("/") for rid in health.get_column("resource_id")}
    absent = [g for g in gateways if g.strip("/") not in measured]
    if health.is_empty() and not absent:
        return DiagnosisStep(
            "health", "unknown", "no gateway metrics in the window: gateway health not checked"
        )
    several = health.height + len(absent) > 1
    threshold = f"{AVAILABILITY_THRESHOLD:g}%"
    below: list[str] = []
    others: list[str] = []
    unchecked = False
    for row in health.iter_rows(named=True):
        name = f"{gateway_name(row['resource_id'])}: " if several else ""
        lowest = row["availability_lowest"]
        if lowest is None:
            others.append(f"{name}no DatapathAvailability metric in the window")
            unchecked = True
            continue
        worst = f"lowest {percent_text(lowest)} from {_fmt(row['availability_lowest_at'])}"
        windows = row["availability_windows_below"]
        if windows:
            below.append(
                f"{name}DatapathAvailability below {threshold} in {windows} 15-minute "
                f"window(s), {worst}"
            )
        else:
            others.append(f"{name}DatapathAvailability stayed at or above {threshold} ({worst})")
    for gateway in absent:
        others.append(f"{gateway_name(gateway)}: not in the metrics given; health not checked")
        unchecked = True
    if below:
        degraded = "the gateway itself is" if len(below) == 1 else "these gateways are"
        finding = f"{'; '.join(below)}: {degraded} degraded; check Azure Resource Health"
        return DiagnosisStep("health", "problem", "; ".join([finding, *others]), health)
    return DiagnosisStep("health", "unknown" if unchecked else "ok", "; ".join(others), health)


def _episodes(minutes: pl.DataFrame, gap: str = "5m") -> pl.DataFrame:
    """Merge minute rows ``time, value`` into episodes ``start, end, total`` split by ``gap``."""
    return (
        minutes.sort("time")
        .with_columns(
            episode=(pl.col("time").diff() > pl.duration(minutes=int(gap.rstrip("m"))))
            .fill_null(True)
            .cum_sum()
        )
        .group_by("episode")
        .agg(
            start=pl.col("time").min(),
            end=pl.col("time").max() + timedelta(minutes=1),
            total=pl.col("value").sum(),
        )
        .sort("start")
        .drop("episode")
    )


def _snat_failures(metrics: pl.DataFrame | None, gateways: list[str]) -> pl.DataFrame:
    """Episodes ``start, end, total`` of SNAT failures on ``gateways`` (all when empty).

    The failed connections per minute are :func:`natlens.gateway_health`'s, summed over
    the gateways.
    """
    if metrics is None:
        return pl.DataFrame(
            schema={
                "start": METRICS_SCHEMA["time"],
                "end": METRICS_SCHEMA["time"],
                "total": pl.Float64,
            }
        )
    minutes = _snat_failed_minutes(metrics)
    if gateways:
        minutes = minutes.filter(_gateway_filter(gateways))
    per_minute = (
        minutes.filter(pl.col("value") > 0).group_by("time").agg(value=pl.col("value").sum())
    )
    return _episodes(per_minute)


def diagnose(
    flows: FrameLike,
    *,
    sources: Targets | None = None,
    destinations: Targets | None = None,
    metrics: FrameLike | None = None,
    start: TimeLike | None = None,
    end: TimeLike | None = None,
    resolver: Resolver | None = None,
) -> Diagnosis:
    """Walk the NAT gateway troubleshooting path for sources and destinations.

    1. ``health``: DatapathAvailability averaged over 15 minutes stays at or above 90%,
       read from :func:`natlens.gateway_health` for the gateways of the traffic and the
       window (its frame is the step's evidence).
    2. ``flow_logs``: the log holds records in the window at all.
    3. ``connection``: flows from source to destination exist. A source (or
       destination) with no record at all in the window is unknown to this log
       (``unknown_source``/``unknown_destination``: check the address, the time range,
       whether the VM's subnet uses this gateway). A known source with no flows to the
       destination: the connection is never established (SNAT Failed in the metrics
       means port exhaustion; otherwise check NSGs, routes, DNS). Flows that vanish
       while SNATConnectionCount Failed is above zero: SNAT exhaustion episodes.
    4. ``drops``: ``PacketsSentDropped``/``PacketsReceivedDropped`` above zero: a single
       connection is rate limited; spread the traffic over more connections or add
       public IPs.

    Parameters
    ----------
    flows
        Flow records in FLOW_SCHEMA.
    sources, destinations
        IP, CIDR, hostname or a list (see :func:`find_flows`); ``None`` for any.
    metrics
        Gateway metrics in ``natlens.METRICS_SCHEMA`` (``natlens.read_metrics``), every
        row naming its gateway, or ``None`` (health and SNAT failures then stay unknown).
    start, end
        The window to look at, ``[start, end)``.
    resolver
        Hostname lookup, see :func:`find_flows`.

    Returns
    -------
    Diagnosis
        ``verdict``, ``summary`` and the ``steps`` with their evidence frames.

    Raises
    ------
    ValueError
        For an invalid IP, CIDR, hostname or time (named), metrics without a
        METRICS_SCHEMA column, or a metrics row in the window with no ``resource_id``.

    Examples
    --------
    >>> import natlens
    >>> samples = natlens.sample_data()
    >>> result = diagnose(
    ...     natlens.read_flowlogs(samples.flowlogs),
    ...     sources="10.20.1.14",
    ...     destinations="registry.npmjs.org",
    ...     metrics=natlens.read_metrics(samples.metrics),
    ...     resolver=natlens.read_hostnames(samples.hostnames),
    ... )
    >>> result.verdict
    'snat_exhaustion'
    >>> result.to_frame().select("step", "status").rows()
    [('health', 'ok'), ('flow_logs', 'ok'), ('connection', 'problem'), ('drops', 'ok')]
    >>> diagnose(natlens.read_flowlogs(samples.flowlogs), sources="10.99.99.99").verdict
    'unknown_source'
    """
    window = _in_window(as_lazy(flows), start, end)
    metric_rows = _metrics_rows(metrics, start, end) if metrics is not None else None

    pair = _select(
        window,
        sources=sources,
        destinations=destinations,
        start=None,
        end=None,
        resolver=resolver,
    ).collect()
    by_source = _match(window, "source_ip", sources, argument="sources", resolver=resolver)
    gateway_frame = pair if pair.height else by_source.select("resource_id").unique().collect()
    gateways = sorted(
        g.upper() for g in gateway_frame.get_column("resource_id").unique().drop_nulls().to_list()
    )
    overview = window.select(
        records=pl.len(), first=pl.col("time").min(), last=pl.col("time").max()
    ).collect()

    health = (
        gateway_health(metric_rows, gateways=gateways or None, start=start, end=end)
        if metric_rows is not None
        else None
    )
    steps = [_health_step(health, gateways)]
    records = int(overview.item(0, "records"))
    if records == 0:
        steps.append(
            DiagnosisStep(
                "flow_logs",
                "problem",
                "no flow-log records at all in the window: check that a diagnostic setting "
                "sends category NatGatewayFlowlogsV1 (StandardV2 gateways only; the first "
                "logs can take up to 90 minutes)",
            )
        )
    else:
        steps.append(
            DiagnosisStep(
                "flow_logs",
                "ok",
                f"{records:,} records from {_fmt(overview.item(0, 'first'))} to "
                f"{_fmt(overview.item(0, 'last'))}",
                overview,
            )
        )
    snat = _snat_failures(metric_rows, gateways)
    absent = (
        _absent_endpoint(
            as_lazy(flows),
            window,
            sources=sources,
            destinations=destinations,
            resolver=resolver,
            snat=snat,
        )
        if records and pair.is_empty()
        else None
    )
    connection, cause = absent or _connection_step(pair, snat, metric_rows is not None, records > 0)
    steps.append(connection)
    drops = dropped_packets(pair) if pair.height else dropped_packets(pair.clear())
    if drops.height:
        total = int(drops.get_column("packets_dropped").sum())
        minutes = int(drops.get_column("drop_minutes").sum())
        rate = total / max(
            1,
            int((drops.get_column("packets_sent") + drops.get_column("packets_received")).sum())
            + total,
        )
        steps.append(
            DiagnosisStep(
                "drops",
                "problem",
                f"{total:,} packets dropped on established connections in {minutes} minute(s) "
                f"({rate:.1%} of the pair's packets) from {_fmt(drops.item(0, 'first_drop'))}: a "
                "single connection is being rate limited; spread the traffic over more "
                "connections or add public IPs to the gateway",
                drops,
            )
        )
    elif pair.height:
        steps.append(DiagnosisStep("drops", "ok", "no dropped packets on these flows"))
    else:
        steps.append(DiagnosisStep("drops", "unknown", "no flows, so no drop counters to read"))
    return _conclude(steps, cause)


CONTEXT = timedelta(hours=1)
"""How far around a SNAT failure episode the pair's usual activity is measured."""
MIN_EXPECTED_MINUTES = 5.0
"""Active minutes the pair should have had in an episode before its absence is telling."""


def _episode_activity(pair: pl.DataFrame, snat: pl.DataFrame) -> pl.DataFrame:
    """Per SNAT failure episode: the pair's active minutes inside it and the expected count.

    The expectation is the pair's share of active minutes in the hour before and the
    hour after the episode, times the episode's length.
    """
    active = pair.select(minute=pl.col("time").dt.truncate("1m")).unique()
    episodes = snat.with_row_index("episode").with_columns(
        minutes=(pl.col("end") - pl.col("start")).dt.total_minutes()
    )
    inside = (
        active.join_where(
            episodes, pl.col("minute") >= pl.col("start"), pl.col("minute") < pl.col("end")
        )
        .group_by("episode")
        .agg(pair_minutes=pl.len())
    )
    around = (
        active.join_where(
            episodes,
            pl.col("minute") >= pl.col("start") - CONTEXT,
            pl.col("minute") < pl.col("end") + CONTEXT,
            (pl.col("minute") < pl.col("start")) | (pl.col("minute") >= pl.col("end")),
        )
        .group_by("episode")
        .agg(context_minutes=pl.len())
    )
    context_length = 2 * CONTEXT / timedelta(minutes=1)
    return (
        episodes.join(inside, on="episode", how="left")
        .join(around, on="episode", how="left")
        .with_columns(
            pl.col("pair_minutes", "context_minutes").fill_null(0).cast(pl.Int64),
        )
        .with_columns(
            expected_minutes=pl.col("context_minutes") / context_length * pl.col("minutes")
        )
        .sort("start")
        .select("start", "end", "minutes", "total", "pair_minutes", "expected_minutes")
    )


def _shown(targets: Targets) -> str:
    return repr(targets) if isinstance(targets, str) else repr(list(targets))


def _absent_endpoint(
    flows: pl.LazyFrame,
    window: pl.LazyFrame,
    *,
    sources: Targets | None,
    destinations: Targets | None,
    resolver: Resolver | None,
    snat: pl.DataFrame,
) -> tuple[DiagnosisStep, str] | None:
    """The connection step when the source or destination has no record in the window.

    Such an address is unknown to this log, which is another answer than "this pair
    has no flows while the source talks to others" (the SNAT/NSG/route path): the
    address may be wrong, the window too narrow, or the traffic may not pass this
    gateway. The evidence is what the log does hold, per gateway.
    """
    for role, column, targets in (
        ("source", "source_ip", sources),
        ("destination", "destination_ip", destinations),
    ):
        if targets is None:
            continue
        seen = _match(window, column, targets, argument=f"{role}s", resolver=resolver)
        if seen.select(pl.len()).collect().item():
            continue
        log = window.select(records=pl.len(), first=pl.col("time").min(), last=pl.col("time").max())
        held = log.collect().row(0, named=True)
        finding = (
            f"no record {'from' if role == 'source' else 'to'} {role} {_shown(targets)} "
            f"{'to any destination' if role == 'source' else 'from any source'} in the flow "
            f"log ({held['records']:,} records from {_fmt(held['first'])} to "
            f"{_fmt(held['last'])}): this {role} is unknown here, so nothing can be said "
            "about its connections. "
        )
        if role == "source":
            finding += (
                "Check the IP (the VM's private IP), the time range, and whether this VM's "
                "subnet uses this NAT gateway (only traffic through the gateway is logged)"
            )
        else:
            finding += (
                "Check the IP or host name (and what it resolves to), the time range, and "
                "whether traffic to it takes another path (a private or service endpoint, "
                "or a route that bypasses the gateway)"
            )
        outside = (
            _match(flows, column, targets, argument=f"{role}s", resolver=resolver)
            .select(records=pl.len(), first=pl.col("time").min(), last=pl.col("time").max())
            .collect()
            .row(0, named=True)
        )
        if outside["records"]:
            finding += (
                f"; it has {outside['records']:,} records outside the window, from "
                f"{_fmt(outside['first'])} to {_fmt(outside['last'])}: widen the time range"
            )
        if role == "destination" and snat.height:
            failed = float(snat.get_column("total").sum())
            finding += (
                f"; SNATConnectionCount Failed = {failed:,.0f} on the source's gateway from "
                f"{_fmt(snat.item(0, 'start'))}: if the destination is right and new, its "
                "connections may be failing for want of SNAT ports"
            )
        evidence = (
            window.group_by("resource_id")
            .agg(
                sources=pl.col("source_ip").n_unique().cast(pl.Int64),
                destinations=pl.col("destination_ip").n_unique().cast(pl.Int64),
                records=pl.len().cast(pl.Int64),
                first=pl.col("time").min(),
                last=pl.col("time").max(),
            )
            .sort("resource_id", nulls_last=True)
            .collect()
        )
        return DiagnosisStep("connection", "problem", finding, evidence), f"unknown_{role}"
    return None


def _connection_step(
    pair: pl.DataFrame, snat: pl.DataFrame, have_metrics: bool, have_logs: bool
) -> tuple[DiagnosisStep, str]:
    """The connection step and, when it is a problem, its verdict."""
    failed = float(snat.get_column("total").sum()) if snat.height else 0.0
    if pair.is_empty():
        if not have_logs:
            return DiagnosisStep(
                "connection", "unknown", "no flow logs to look for the connection in"
            ), ""
        causes = (
            f"SNATConnectionCount Failed = {failed:,.0f} (from {_fmt(snat.item(0, 'start'))}): "
            "SNAT port exhaustion; add public IPs or reuse connections"
            if failed
            else (
                "no SNAT failures in the metrics; check NSG rules, the route table (a "
                "0.0.0.0/0 route to an appliance bypasses the gateway) and DNS"
                if have_metrics
                else "check SNATConnectionCount (Failed), NSG rules, routes and DNS"
            )
        )
        finding = (
            f"no flows from source to destination: the connection is never established; {causes}"
        )
        verdict = "snat_exhaustion" if failed else "never_established"
        return DiagnosisStep("connection", "problem", finding, snat), verdict
    first, last = pair.get_column("time").min(), pair.get_column("time").max()
    if failed:
        # Do the pair's flows vanish while connection attempts fail? Compare its active
        # minutes in each failure episode with its activity in the hour around it.
        episodes = _episode_activity(pair, snat)
        vanished = episodes.filter(
            (pl.col("expected_minutes") >= MIN_EXPECTED_MINUTES)
            & (pl.col("pair_minutes") <= pl.col("expected_minutes") / 2)
        )
        if vanished.height:
            first_bad = vanished.row(0, named=True)
            finding = (
                f"SNATConnectionCount Failed = {failed:,.0f} in {snat.height} episode(s); "
                f"from {_fmt(first_bad['start'])} to {_fmt(first_bad['end'])} the pair had "
                f"flows in {first_bad['pair_minutes']} of {first_bad['minutes']} minutes "
                f"(about {first_bad['expected_minutes']:.0f} expected from the hour around): "
                "new connections fail on SNAT port exhaustion; add public IPs to the "
                "gateway, reuse connections or shorten the idle timeout"
            )
            return DiagnosisStep("connection", "problem", finding, episodes), "snat_exhaustion"
    note = (
        f"; SNATConnectionCount Failed = {failed:,.0f} on the gateway in {snat.height} "
        "episode(s), but this pair's flows did not clearly vanish then"
        if failed
        else ""
    )
    return DiagnosisStep(
        "connection",
        "ok",
        f"{pair.height:,} records from source to destination between {_fmt(first)} and "
        f"{_fmt(last)}: the connection is established{note}",
        pair,
    ), ""


_ORDER = {"health": 0, "flow_logs": 1, "connection": 2, "drops": 3}


def _conclude(steps: list[DiagnosisStep], cause: str) -> Diagnosis:
    problems = [s for s in steps if s.status == "problem"]
    if not problems:
        summary = (
            "no problem found along the path: gateway, flow logs, connection and drops look healthy"
        )
        return Diagnosis("healthy", summary, tuple(steps))
    first = min(problems, key=lambda s: _ORDER[s.name])
    if first.name == "health":
        verdict = "gateway_unhealthy"
    elif first.name == "flow_logs":
        verdict = "no_flow_logs"
    elif first.name == "connection":
        verdict = cause
    else:
        verdict = "rate_limited"
    others = [s.name for s in problems if s is not first]
    summary = first.finding + (f" (also a problem: {', '.join(others)})" if others else "")
    return Diagnosis(verdict, summary, tuple(steps))
