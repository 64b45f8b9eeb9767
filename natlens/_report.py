"""``natlens report``: a :class:`~natlens.FlowSummary` as one self-contained HTML file.

Charts are rendered to inline SVG by vl-convert, so the file has no scripts and no CDN
links: it opens offline in any browser and can be attached to a ticket. The sections,
notes and tables are the ones :func:`natlens.triage` prints (:func:`natlens._summary.sections`).
"""

from __future__ import annotations

import html
import io
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import polars as pl

from natlens._html import TABLE_CSS, frame_to_html
from natlens._summary import FlowSummary, Note, Section, sections
from natlens._typing import PathLike

__all__ = ["render_report", "write_report"]

_PAGE_CSS = """
body {font-family: system-ui, -apple-system, "Segoe UI", sans-serif; margin: 24px auto;
  max-width: 1100px; color: #222}
h1 {font-size: 24px} h2 {border-bottom: 2px solid #4c78a8; padding-bottom: 4px; margin-top: 36px}
p {margin: 6px 0} .chart {margin: 12px 0} footer {color: #777; margin-top: 36px; font-size: 12px}
"""

Chart = Callable[[FlowSummary], Any]


def _svg(chart: Any) -> str:
    buffer = io.StringIO()
    chart.save(buffer, format="svg")
    return f'<div class="chart">{buffer.getvalue()}</div>'


def _vms(table: pl.DataFrame) -> pl.DataFrame:
    """A summary table without the labels the charts add themselves from the inventory."""
    return table.drop("vm_name", "label", strict=False)


def _health_charts(summary: FlowSummary) -> list[Any]:
    import natlens.charts as nc

    if summary.metrics is None or summary.health is None:
        return []
    charts: list[Any] = []
    if (summary.health.get_column("snat_failed") > 0).any():
        charts.append(
            nc.chart_metrics(
                summary.metrics,
                "SNATConnectionCount",
                connection_state="Failed",
                title="Failed SNAT connections (UTC)",
            )
        )
    charts.append(
        nc.chart_metrics(
            summary.metrics,
            "DatapathAvailability",
            title="Datapath availability, 15-minute average (alert below 90%)",
        )
    )
    return charts


def _usage_charts(summary: FlowSummary) -> list[Any]:
    import natlens.charts as nc

    return [
        nc.chart_traffic_over_time(summary.flows, n=6, inventory=summary.inventory),
        nc.chart_top(
            _vms(summary.talkers),
            metric=summary.metric,
            n=summary.n,
            inventory=summary.inventory,
        ),
    ]


def _spike_charts(summary: FlowSummary) -> list[Any]:
    import natlens.charts as nc
    from natlens._billing import score_traffic

    charts: list[Any] = [nc.chart_cost_breakdown(summary.daily_cost)]
    if summary.spikes is not None:
        hours = score_traffic(summary.flows, every="1h")
        charts.append(nc.chart_spike(hours, events=summary.spikes))
    return charts


def _drop_charts(summary: FlowSummary) -> list[Any]:
    import natlens.charts as nc

    if summary.drops.is_empty():
        return []
    # The chart picks its bucket from the span (5 minutes on a day, an hour on a week).
    return [nc.chart_drops_over_time(summary.flows, inventory=summary.inventory)]


def _compliance_charts(summary: FlowSummary) -> list[Any]:
    import natlens.charts as nc

    if summary.violations is None or summary.violations.is_empty():
        return []
    return [nc.chart_allowlist_violations(_vms(summary.violations), inventory=summary.inventory)]


# Charts drawn at the top of each section (the heatmap closes the usage section).
_CHARTS: dict[str, Chart] = {
    "health": _health_charts,
    "usage": _usage_charts,
    "spikes": _spike_charts,
    "drops": _drop_charts,
    "compliance": _compliance_charts,
}


def _section_html(summary: FlowSummary, section: Section, *, charts: bool) -> list[str]:
    parts = [f"<h2>{html.escape(section.heading)}</h2>"]
    drawn = (
        [_svg(c) for c in _CHARTS[section.key](summary)]
        if charts and section.key in _CHARTS
        else []
    )
    # Notes first (what the section found), then the charts, then the tables.
    for part in section.parts:
        if isinstance(part, Note):
            parts.append(f'<p class="natlens-{part.status}">{html.escape(part.text)}</p>')
    parts += drawn
    for part in section.parts:
        if not isinstance(part, Note):
            parts.append(
                frame_to_html(part.frame, max_rows=part.frame.height, caption=part.caption)
            )
    if charts and section.key == "usage":
        import natlens.charts as nc

        parts.append(_svg(nc.chart_heatmap(summary.flows)))
    return parts


def render_report(summary: FlowSummary, *, title: str | None = None, charts: bool = True) -> str:
    """The report's HTML text (see :func:`write_report`).

    Parameters
    ----------
    summary
        What :func:`natlens.summarize` returned.
    title
        Page title; ``None`` for "NAT gateway flow-log report".
    charts
        Draw the charts (needs the ``charts`` extra); ``False`` renders the text and
        tables only.

    Examples
    --------
    >>> import natlens
    >>> summary = natlens.summarize(natlens.sample_data().flowlogs, n=3)
    >>> page = render_report(summary, charts=False)
    >>> page.index("<h2>Health</h2>") < page.index("<h2>Usage</h2>")
    True
    """
    import natlens

    heading = title or "NAT gateway flow-log report"
    body = [f"<h1>{html.escape(heading)}</h1>"]
    for section in sections(summary):
        if section.key == "overview":
            body += [
                f'<p class="natlens-{p.status}">{html.escape(p.text)}</p>'
                for p in section.parts
                if isinstance(p, Note)
            ]
        else:
            body += _section_html(summary, section, charts=charts)
    body.append(
        f"<footer>Generated {datetime.now(UTC):%Y-%m-%d %H:%M} UTC by natlens "
        f"{html.escape(natlens.__version__)} from {html.escape(summary.origin)}.</footer>"
    )
    return (
        "<!DOCTYPE html>\n<html lang='en'><head><meta charset='utf-8'>"
        f"<title>{html.escape(heading)}</title><style>{_PAGE_CSS}{TABLE_CSS}</style></head>"
        "<body>" + "\n".join(body) + "</body></html>\n"
    )


def write_report(summary: FlowSummary, path: PathLike, *, title: str | None = None) -> Path:
    """Write a :class:`~natlens.FlowSummary` as a self-contained HTML report.

    Health first (gateway metrics, SNAT failures, drops), then usage, spikes and cost,
    dropped packets and compliance: the sections, rows and units :func:`natlens.triage`
    prints, with charts. The charts are inline SVG and the file has no scripts or
    links: it opens offline.

    Parameters
    ----------
    summary
        What :func:`natlens.summarize` returned.
    path
        The HTML file to write (its folder is created).
    title
        Page title; ``None`` for "NAT gateway flow-log report".

    Returns
    -------
    Path
        ``path``.

    Examples
    --------
    >>> import tempfile, natlens
    >>> samples = natlens.sample_data()
    >>> summary = natlens.summarize(samples.flowlogs, inventory=samples.inventory, n=5)
    >>> with tempfile.TemporaryDirectory() as tmp:
    ...     out = write_report(summary, f"{tmp}/report.html")
    ...     "<svg" in out.read_text() and "<script" not in out.read_text()
    True
    """
    text = render_report(summary, title=title)
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(text, encoding="utf-8")
    return target
