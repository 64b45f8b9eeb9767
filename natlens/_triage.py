"""A plain-text first look at a set of flow logs: what a terminal can show in one screen."""

from __future__ import annotations

import os

import polars as pl

from natlens._billing import find_spikes
from natlens._files import LoadReport, Source, scan_flowlogs
from natlens._troubleshoot import dropped_packets
from natlens._usage import nat_ip_usage, top_destinations, top_talkers

__all__ = ["triage"]


def _size(value: float) -> str:
    for unit in ("B", "KB", "MB", "GB", "TB"):
        if abs(value) < 1000 or unit == "TB":
            return f"{value:,.0f} {unit}" if unit == "B" else f"{value:,.1f} {unit}"
        value /= 1000
    raise AssertionError("unreachable")


def _table(frame: pl.DataFrame, columns: list[str], sizes: tuple[str, ...] = ()) -> list[str]:
    shown = frame.select(columns).with_columns(
        [pl.col(c).map_elements(_size, return_dtype=pl.String) for c in sizes]
    )
    shown = shown.with_columns(
        pl.col(pl.Float64).round(2),
        pl.col(pl.Datetime).dt.strftime("%Y-%m-%d %H:%M"),
    )
    widths = [max(len(c), *(len(str(v)) for v in shown.get_column(c))) for c in columns]
    lines = ["  " + "  ".join(c.ljust(w) for c, w in zip(columns, widths, strict=True))]
    for row in shown.iter_rows():
        lines.append("  " + "  ".join(str(v).ljust(w) for v, w in zip(row, widths, strict=True)))
    return lines


def triage(
    source: Source | pl.LazyFrame,
    *,
    n: int = 5,
    price_per_gb: float = 0.045,
    currency: str = "USD",
) -> str:
    """A text summary of flow logs: span, gateways, top talkers and destinations, drops, spikes.

    Spikes are events (:func:`natlens.find_spikes`): runs of hours far above the usual
    level, each with its window, peak hour and the extra bytes and cost at
    ``price_per_gb`` (a decimal GB, in ``currency``; look up your region's price).

    Examples
    --------
    >>> import natlens
    >>> text = natlens.triage(natlens.sample_data().flowlogs)
    >>> text.splitlines()[0].startswith("natlens triage:")
    True
    """
    report = LoadReport()
    if isinstance(source, pl.LazyFrame):
        lazy, where = source, "frame"
    else:
        lazy = scan_flowlogs(source, report=report)
        items = [source] if isinstance(source, str | os.PathLike) else list(source)
        where = ", ".join(os.fspath(item) for item in items)
    flows = lazy.collect()
    if flows.height == 0:
        return f"natlens triage: {where}\n  no records"
    overview = flows.select(
        pl.col("time").min().alias("first"),
        pl.col("time").max().alias("last"),
        pl.col("resource_id").n_unique().alias("gateways"),
        pl.col("nat_gateway_ip").n_unique().alias("nat_ips"),
        pl.col("source_ip").n_unique().alias("sources"),
        pl.col("destination_ip").n_unique().alias("destinations"),
        pl.col("bytes_sent").fill_null(0).sum().alias("sent"),
        pl.col("bytes_received").fill_null(0).sum().alias("received"),
    ).row(0, named=True)
    lines = [
        f"natlens triage: {where}",
        f"  {flows.height:,} records from {overview['first']:%Y-%m-%d %H:%M} to "
        f"{overview['last']:%Y-%m-%d %H:%M} UTC",
        f"  {overview['gateways']} gateways, {overview['nat_ips']} NAT public IPs, "
        f"{overview['sources']} sources, {overview['destinations']:,} destinations",
        f"  {_size(overview['sent'])} sent, {_size(overview['received'])} received",
    ]
    if report.problems:
        lines.append(f"  skipped {len(report.problems)} bad records (see natlens.LoadReport)")
    lines += ["", f"Top {n} talkers (by bytes sent):"]
    lines += _table(
        top_talkers(flows, n=n), ["source_ip", "bytes_sent", "destinations"], ("bytes_sent",)
    )
    lines += ["", f"Top {n} destinations (by bytes sent):"]
    lines += _table(
        top_destinations(flows, n=n), ["destination_ip", "bytes_sent", "sources"], ("bytes_sent",)
    )
    lines += [
        "",
        "NAT public IPs (imbalance: records over the mean of the gateway's IPs of the same "
        "family, 1.0 = fair share):",
    ]
    usage = nat_ip_usage(flows).with_columns(
        family=pl.format("IPv{}", pl.col("ip_version")),
    )
    lines += _table(
        usage, ["nat_gateway_ip", "family", "records", "sources", "destinations", "imbalance"]
    )
    drops = dropped_packets(flows)
    lines += ["", f"Dropped packets: {drops.height} source/destination pairs"]
    if drops.height:
        lines += _table(
            drops.head(n),
            [
                "source_ip",
                "destination_ip",
                "packets_dropped",
                "drop_minutes",
                "first_drop",
                "last_drop",
            ],
        )
    spikes = find_spikes(flows, price_per_gb=price_per_gb, currency=currency)
    lines += [
        "",
        f"Traffic spikes (hours of bytes far above the usual for that hour, joined into "
        f"events; extra cost at {price_per_gb:g} {currency.strip()}/GB): {spikes.height} "
        "event(s), times in UTC",
    ]
    if spikes.height:
        shown = spikes.head(n).select(
            "start",
            "end",
            pl.col("buckets").alias("hours"),
            "peak",
            pl.col("peak_actual").alias("peak_bytes"),
            pl.col("peak_expected").alias("usual_at_peak"),
            pl.col("extra_bytes").alias("extra"),
            pl.format("{} {}", pl.col("extra_cost").round(2), pl.col("currency")).alias(
                "extra_cost"
            ),
        )
        lines += _table(
            shown,
            shown.columns,
            ("peak_bytes", "usual_at_peak", "extra"),
        )
    return "\n".join(lines)
