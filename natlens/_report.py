"""``natlens report``: one self-contained HTML file of usage, spikes, drops and compliance.

Charts are rendered to inline SVG by vl-convert, so the file has no scripts and no CDN
links: it opens offline in any browser and can be attached to a ticket.
"""

from __future__ import annotations

import argparse
import html
import io
import os
import sys
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import polars as pl

from natlens._html import frame_to_html

__all__ = ["render_report", "run_report", "write_report"]

Source = str | os.PathLike[str] | Sequence[str | os.PathLike[str]]
Resolver = Mapping[str, Sequence[str]] | Callable[[str], Sequence[str]]

_CSS = """
body {font-family: system-ui, -apple-system, "Segoe UI", sans-serif; margin: 24px auto;
  max-width: 1100px; color: #222}
h1 {font-size: 24px} h2 {border-bottom: 2px solid #4c78a8; padding-bottom: 4px; margin-top: 36px}
.natlens-table {border-collapse: collapse; font-size: 13px; margin: 8px 0}
.natlens-table caption {font-weight: bold; text-align: left; padding: 4px 0}
.natlens-table th, .natlens-table td {border-bottom: 1px solid #ddd; padding: 3px 10px;
  text-align: left}
.natlens-table th {background: #f3f6fa}
.note {color: #555} .problem {color: #c62828; font-weight: bold} .ok {color: #2e7d32}
.chart {margin: 12px 0} .meta td {padding: 2px 12px 2px 0}
"""


def _svg(chart: Any) -> str:
    buffer = io.StringIO()
    chart.save(buffer, format="svg")
    return f'<div class="chart">{buffer.getvalue()}</div>'


def _table(frame: pl.DataFrame, caption: str, max_rows: int = 15) -> str:
    return frame_to_html(frame, max_rows=max_rows, caption=caption)


def _gb(column: str = "bytes") -> pl.Expr:
    return (pl.col(column) / 1e9).round(3).alias(f"{column.replace('bytes', 'GB')}")


def _load(source: pl.DataFrame | pl.LazyFrame | Source) -> pl.DataFrame:
    from natlens._files import read_flowlogs

    if isinstance(source, pl.LazyFrame):
        return source.collect()
    if isinstance(source, pl.DataFrame):
        return source
    return read_flowlogs(source)


def render_report(
    flows: pl.DataFrame | pl.LazyFrame | Source,
    *,
    inventory: pl.DataFrame | str | os.PathLike[str] | None = None,
    allowlist: Sequence[str] | str | os.PathLike[str] | None = None,
    service_tags: pl.DataFrame | str | os.PathLike[str] | None = None,
    resolver: Resolver | None = None,
    price_per_gb: float = 0.045,
    currency: str = "USD",
    title: str | None = None,
) -> str:
    """Build the report's HTML text (see :func:`write_report`)."""
    import natlens
    import natlens.charts as nc

    frame = _load(flows)
    if frame.is_empty():
        raise ValueError("report: the source holds no flow records")
    inv = natlens.read_inventory(inventory) if inventory is not None else None
    tags = (
        natlens.read_service_tags(service_tags)
        if isinstance(service_tags, str | os.PathLike)
        else service_tags
    )
    allowed = (
        natlens.read_allowlist(allowlist)
        if isinstance(allowlist, str | os.PathLike)
        else (list(allowlist) if allowlist is not None else None)
    )
    # The allowlist check first: a bad allowlist fails before any chart is drawn.
    violations = (
        natlens.check_allowlist(frame, allowed, service_tags=tags, resolver=resolver)
        if allowed is not None
        else None
    )
    first, last = frame.get_column("time").min(), frame.get_column("time").max()
    if not isinstance(first, datetime) or not isinstance(last, datetime):
        raise ValueError("report: the flow records have no times")
    span = last - first
    every = "1h" if span > timedelta(hours=12) else "5m"

    def label_sources(table: pl.DataFrame) -> pl.DataFrame:
        if inv is None:
            return table
        return natlens.label_sources(table, inventory=inv).select("vm_name", *table.columns)

    parts: list[str] = []
    heading = title or "NAT gateway flow-log report"
    gateways = sorted(frame.get_column("resource_id").drop_nulls().unique().to_list())
    totals = frame.select(
        pl.col("bytes_sent").sum(), pl.col("bytes_received").sum(), pl.len().alias("records")
    ).row(0, named=True)
    parts.append(f"<h1>{html.escape(heading)}</h1>")
    parts.append(
        '<table class="meta">'
        f"<tr><td>Period (UTC)</td><td>{first:%Y-%m-%d %H:%M} to {last:%Y-%m-%d %H:%M}</td></tr>"
        f"<tr><td>Flow records</td><td>{totals['records']:,}</td></tr>"
        f"<tr><td>Traffic</td><td>{(totals['bytes_sent'] or 0) / 1e9:,.2f} GB sent, "
        f"{(totals['bytes_received'] or 0) / 1e9:,.2f} GB received</td></tr>"
        f"<tr><td>Gateways</td><td>{'<br>'.join(html.escape(g) for g in gateways)}</td></tr>"
        f"<tr><td>Generated</td><td>{datetime.now(UTC):%Y-%m-%d %H:%M} UTC by natlens "
        f"{html.escape(natlens.__version__)}</td></tr></table>"
    )

    # -- usage --
    parts.append("<h2>Usage</h2>")
    parts.append(_svg(nc.chart_traffic_over_time(frame, every=every, n=6, inventory=inv)))
    talkers = natlens.top_talkers(frame, n=10, by="bytes")
    parts.append(_svg(nc.chart_top(talkers, inventory=inv)))
    parts.append(
        _table(
            label_sources(talkers).select(
                *(["vm_name"] if inv is not None else []),
                "source_ip",
                _gb(),
                "records",
                "destinations",
                (pl.col("share") * 100).round(1).alias("share_%"),
            ),
            "Top sources",
        )
    )
    destinations = natlens.top_destinations(frame, n=10, by="bytes")
    if tags is not None:
        destinations = natlens.label_destinations(destinations, service_tags=tags)
    parts.append(
        _table(
            destinations.select(
                "destination_ip",
                *(["service_tag"] if "service_tag" in destinations.columns else []),
                _gb(),
                "records",
                "sources",
            ),
            "Top destinations",
        )
    )
    usage = natlens.nat_ip_usage(frame)
    parts.append(
        _table(
            usage.select(
                pl.col("resource_id").str.split("/").list.last().alias("gateway"),
                "nat_gateway_ip",
                _gb(),
                "records",
                (pl.col("share") * 100).round(1).alias("share_%"),
                pl.col("imbalance").round(2),
            ),
            "NAT public IP utilisation",
        )
    )
    parts.append(_svg(nc.chart_heatmap(frame)))

    # -- spikes and cost --
    parts.append("<h2>Spikes and cost</h2>")
    per_day = natlens.cost(frame, price_per_gb=price_per_gb, currency=currency, every="1d")
    parts.append(_svg(nc.chart_cost_breakdown(per_day)))
    total_cost = float(per_day.get_column("cost").sum())
    parts.append(
        f"<p>Data processing at {price_per_gb} {html.escape(currency)}/GB: "
        f"<b>{total_cost:,.2f} {html.escape(currency)}</b> for the period.</p>"
    )
    span_days = span.total_seconds() / 86400
    if span_days >= 2:
        from natlens._billing import find_spikes, score_traffic

        hours = score_traffic(frame, every="1h")
        spikes = find_spikes(frame, every="1h", price_per_gb=price_per_gb, currency=currency)
        parts.append(_svg(nc.chart_spike(hours, events=spikes)))
        if spikes.is_empty():
            parts.append('<p class="ok">No hour far above its usual level.</p>')
        else:
            when = "%Y-%m-%d %H:%M"
            parts.append(
                _table(
                    spikes.select(
                        pl.col("start").dt.strftime(when).alias("from (UTC)"),
                        pl.col("end").dt.strftime(when).alias("to (UTC)"),
                        pl.col("buckets").alias("hours"),
                        pl.col("peak").dt.strftime(when).alias("peak hour (UTC)"),
                        (pl.col("peak_actual") / 1e9).round(2).alias("peak_GB"),
                        (pl.col("peak_expected") / 1e9).round(2).alias("usual_GB_at_peak"),
                        (pl.col("extra_bytes") / 1e9).round(2).alias("extra_GB"),
                        pl.col("extra_cost").round(2).alias(f"extra_{currency}"),
                    ),
                    "Spikes: runs of hours far above their usual level, largest extra volume first",
                )
            )
            event = spikes.row(0, named=True)
            explained = natlens.explain_spike(
                frame, event, price_per_gb=price_per_gb, currency=currency, n=10
            )
            if tags is not None:
                explained = natlens.label_destinations(explained, service_tags=tags)
            parts.append(
                _table(
                    label_sources(explained).select(
                        *(["vm_name"] if inv is not None else []),
                        "source_ip",
                        "destination_ip",
                        *(["service_tag"] if "service_tag" in explained.columns else []),
                        (pl.col("delta_bytes") / 1e9).round(3).alias("extra_GB"),
                        pl.col("delta_cost").round(3).alias(f"extra_{currency}"),
                    ),
                    f"What the largest spike, {event['start']:{when}} to "
                    f"{event['end']:{when}} UTC, carried beyond the usual",
                )
            )
    else:
        parts.append('<p class="note">Spike detection needs at least two days of data.</p>')

    # -- drops --
    parts.append("<h2>Dropped packets</h2>")
    drops = natlens.dropped_packets(frame)
    if drops.is_empty():
        parts.append('<p class="ok">No packets dropped on established connections.</p>')
    else:
        parts.append(
            "<p>Packets dropped on <i>established</i> connections: the gateway rate limits a "
            "single heavy connection. Spread the traffic over more connections or add public "
            "IPs.</p>"
        )
        parts.append(_svg(nc.chart_drops_over_time(frame, every=every, inventory=inv)))
        parts.append(
            _table(
                label_sources(drops).select(
                    *(["vm_name"] if inv is not None else []),
                    "source_ip",
                    "destination_ip",
                    "packets_dropped",
                    (pl.col("drop_rate") * 100).round(2).alias("drop_%"),
                    "drop_minutes",
                    "first_drop",
                    "last_drop",
                ),
                "Pairs with dropped packets",
            )
        )

    # -- compliance --
    parts.append("<h2>Compliance</h2>")
    if violations is None:
        parts.append('<p class="note">No allowlist given: compliance not checked.</p>')
    elif violations.is_empty():
        parts.append('<p class="ok">Every destination is on the allowlist.</p>')
    else:
        parts.append(
            f'<p class="problem">{violations.height} source/destination pair(s) reach '
            "destinations not on the allowlist.</p>"
        )
        parts.append(_svg(nc.chart_allowlist_violations(violations, inventory=inv)))
        parts.append(
            _table(
                label_sources(violations).select(
                    *(["vm_name"] if inv is not None else []),
                    "source_ip",
                    "destination_ip",
                    "first_seen",
                    "last_seen",
                    "records",
                    _gb(),
                ),
                "Destinations not on the allowlist",
            )
        )
    beacons = natlens.find_beacons(frame).head(5)
    if not beacons.is_empty():
        parts.append(
            _table(
                label_sources(beacons).select(
                    *(["vm_name"] if inv is not None else []),
                    "source_ip",
                    "destination_ip",
                    "contacts",
                    "interval_minutes",
                    pl.col("bytes_per_contact").round(0),
                    pl.col("score").round(2),
                ),
                "Beacon candidates (regular, tiny contacts)",
            )
        )
    exfiltration = natlens.find_exfiltration(frame)
    if not exfiltration.is_empty():
        parts.append(
            _table(
                label_sources(exfiltration).select(
                    *(["vm_name"] if inv is not None else []),
                    "source_ip",
                    "destination_ip",
                    _gb("bytes_sent"),
                    pl.col("upload_ratio").round(1),
                    "active_minutes",
                    "first_seen",
                    "last_seen",
                ),
                "Bulk uploads to a destination no other VM uses",
            )
        )
    if span_days >= 3:
        new = natlens.new_destinations(frame, baseline=last - timedelta(days=2))
        parts.append(
            _table(
                new.select("destination_ip", "first_seen", "records", _gb(), "sources"),
                "Destinations first seen in the last two days",
            )
            if not new.is_empty()
            else '<p class="ok">No destination first seen in the last two days.</p>'
        )
    return (
        "<!DOCTYPE html>\n<html lang='en'><head><meta charset='utf-8'>"
        f"<title>{html.escape(heading)}</title><style>{_CSS}</style></head><body>"
        + "\n".join(parts)
        + "</body></html>\n"
    )


def write_report(
    flows: pl.DataFrame | pl.LazyFrame | Source,
    path: str | os.PathLike[str],
    *,
    inventory: pl.DataFrame | str | os.PathLike[str] | None = None,
    allowlist: Sequence[str] | str | os.PathLike[str] | None = None,
    service_tags: pl.DataFrame | str | os.PathLike[str] | None = None,
    resolver: Resolver | None = None,
    price_per_gb: float = 0.045,
    currency: str = "USD",
    title: str | None = None,
) -> Path:
    """Write a self-contained HTML report of usage, spikes, drops and compliance.

    The charts are inline SVG and the file has no scripts or links: it opens offline.

    Parameters
    ----------
    flows
        Flow records, or any source :func:`natlens.read_flowlogs` reads.
    path
        The HTML file to write.
    inventory
        :func:`natlens.read_inventory` output or its file: VM names in the tables.
    allowlist
        Allowlist entries or file (:func:`natlens.read_allowlist`); ``None`` skips the
        compliance check.
    service_tags, resolver
        For allowlist entries that are Service Tag names or host names, and to label
        destinations.
    price_per_gb, currency
        Data processing price.

    Returns
    -------
    Path
        ``path``.

    Examples
    --------
    >>> import tempfile, natlens
    >>> samples = natlens.sample_data()
    >>> with tempfile.TemporaryDirectory() as tmp:
    ...     out = write_report(samples.flowlogs, f"{tmp}/report.html", inventory=samples.inventory)
    ...     "<svg" in out.read_text() and "<script" not in out.read_text()
    True
    """
    target = Path(path)
    text = render_report(
        flows,
        inventory=inventory,
        allowlist=allowlist,
        service_tags=service_tags,
        resolver=resolver,
        price_per_gb=price_per_gb,
        currency=currency,
        title=title,
    )
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(text, encoding="utf-8")
    return target


def run_report(args: argparse.Namespace) -> int:
    """The ``natlens report`` command: parse-free shell over :func:`write_report`."""
    import natlens

    sources = list(args.source)
    resolver = natlens.read_hostnames(args.hostnames) if args.hostnames else None
    try:
        out = write_report(
            sources if len(sources) > 1 else sources[0],
            args.output,
            inventory=args.inventory,
            allowlist=args.allowlist,
            service_tags=args.service_tags,
            resolver=resolver,
            price_per_gb=args.price_per_gb,
            currency=args.currency,
            title=args.title,
        )
    except (ValueError, OSError, natlens.FlowLogError) as exc:
        print(f"natlens report: {exc}", file=sys.stderr)
        return 2
    print(f"natlens report: wrote {out} ({out.stat().st_size:,} bytes)")
    return 0
