"""Chart helpers: one ``chart_*`` function per analysis, each returning an altair chart.

Every number a chart shows comes from a public analysis (:func:`natlens.traffic_over_time`,
:func:`natlens.flow_edges`, :func:`natlens.top_talkers`, :func:`natlens.cost`...): a helper
takes that analysis's tidy frame (or the flows, and calls the analysis itself), keeps the
embedded data small whatever the input size (at most :data:`MAX_ROWS` rows) and encodes
it. Nothing here displays anything: show a chart in a notebook by leaving it as the last
expression of a cell, or write it with :func:`save_chart`.

The charts read at a glance whatever the span of the data: a time chart picks its bucket
from the span (a day by 5 minutes, a week by the hour, a year by the day) and says it in
its axis title; times are 24-hour UTC everywhere, on axes (a UTC scale: a browser in
another zone shows the same ticks) and in tooltips; labels are never cut by the renderer
(long names are shortened in the middle, the full text is in the tooltip); every colour
has a legend.

Importing this module needs the ``charts`` extra (altair, vl-convert).
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, Literal

import altair as alt
import polars as pl

from natlens._enrich import label_sources
from natlens._fields import gateway_name_expr
from natlens._health import (
    AVAILABILITY_THRESHOLD,
    AVAILABILITY_WINDOW,
    _availability_windows,
    _metrics_rows,
    percent_text,
)
from natlens._html import BYTE_UNITS, byte_unit
from natlens._schema import METRICS_SCHEMA
from natlens._typing import FrameLike, Inventory, Labels, Metric, TimeLike
from natlens._usage import (
    OTHER,
    TOTAL_COLUMNS,
    as_lazy,
    check_metric,
    duration,
    flow_edges,
    traffic_over_time,
)

__all__ = [
    "MAX_ROWS",
    "byte_unit",
    "chart_allowlist_violations",
    "chart_cost_breakdown",
    "chart_drops_over_time",
    "chart_flow_map",
    "chart_heatmap",
    "chart_metrics",
    "chart_nat_ip_usage",
    "chart_spike",
    "chart_top",
    "chart_traffic_over_time",
    "embedded_rows",
    "save_chart",
]

MAX_ROWS = 5_000
"""The most data rows a natlens chart embeds (altair's own limit is 5,000)."""

SNAT_PORTS_PER_IP = 64_512
"""SNAT ports of one NAT gateway public IP (Azure's documented limit)."""

_MAX_BUCKETS = 400
"""The most time buckets a chart draws across its width (about 1.6 px each)."""

# The buckets a time chart picks from, finest first: the first that keeps the chart
# under _MAX_BUCKETS buckets and MAX_ROWS rows wins.
_BUCKETS = ("1m", "5m", "15m", "1h", "3h", "6h", "12h", "1d", "1w", "1mo", "3mo", "1y")
_UNIT_WORDS = {
    "s": "second",
    "m": "minute",
    "h": "hour",
    "d": "day",
    "w": "week",
    "mo": "month",
    "y": "year",
}

# Ticks of a time axis: (length of one step, Vega interval, step, label format). The first
# that puts at most one tick per ~90 px wins; every format is 24-hour.
_TICKS: tuple[tuple[timedelta, str, int, str], ...] = (
    (timedelta(minutes=1), "minute", 1, "%H:%M"),
    (timedelta(minutes=5), "minute", 5, "%H:%M"),
    (timedelta(minutes=15), "minute", 15, "%H:%M"),
    (timedelta(minutes=30), "minute", 30, "%H:%M"),
    (timedelta(hours=1), "hour", 1, "%H:%M"),
    (timedelta(hours=3), "hour", 3, "%d %b %H:%M"),
    (timedelta(hours=6), "hour", 6, "%d %b %H:%M"),
    (timedelta(hours=12), "hour", 12, "%d %b %H:%M"),
    (timedelta(days=1), "day", 1, "%a %d %b"),
    (timedelta(days=2), "day", 2, "%d %b"),
    (timedelta(days=7), "week", 1, "%d %b"),
    (timedelta(days=14), "week", 2, "%d %b"),
    (timedelta(days=31), "month", 1, "%b %Y"),
    (timedelta(days=92), "month", 3, "%b %Y"),
    (timedelta(days=366), "year", 1, "%Y"),
)
_TICK_PX = 80

_TIME_TEXT = "%Y-%m-%d %H:%M UTC"
"""How a moment reads in a tooltip: 24-hour, zone stated."""

_NAME_CHARS = 40
"""Names (VM, service tag, gateway) longer than this are shortened in the middle on axes."""

_METRIC_LABEL: dict[str, str] = {
    "bytes": "traffic",
    "bytes_sent": "bytes sent",
    "bytes_received": "bytes received",
    "packets": "packets",
    "packets_sent": "packets sent",
    "packets_received": "packets received",
    "packets_dropped": "dropped packets",
    "records": "flow records",
}

_PALETTE = (
    "#4c78a8", "#f58518", "#e45756", "#72b7b2", "#54a24b",
    "#eeca3b", "#b279a2", "#ff9da6", "#9d755d", "#3b6e8f",
)  # fmt: skip
_GREY = "#bab0ac"
_RED = "#e45756"
_BLUE = "#4c78a8"


def _human_bytes(column: str) -> pl.Expr:
    """A text column such as ``'1.23 GB'`` for a byte-count column, for tooltips."""
    value = pl.col(column).cast(pl.Float64)
    expr: Any = pl.when(value.abs() < 1e3).then(
        value.round(0).cast(pl.Int64).cast(pl.String) + pl.lit(" B")
    )
    for name, size in BYTE_UNITS[1:]:
        expr = expr.when(value.abs() < size * 1e3).then(
            (value / size).round(2).cast(pl.String) + pl.lit(f" {name}")
        )
    tb_name, tb_size = BYTE_UNITS[-1]
    result: pl.Expr = expr.otherwise(
        (value / tb_size).round(2).cast(pl.String) + pl.lit(f" {tb_name}")
    )
    return result


def _thousands(values: Sequence[Any]) -> list[str]:
    """Counts as text with thousands separators (``12,345``)."""
    return [f"{v:,.0f}" if v is not None else "" for v in values]


def _is_bytes(metric: str) -> bool:
    return metric.startswith("bytes")


def _scaled(frame: pl.DataFrame, column: str, metric: str) -> tuple[pl.DataFrame, str]:
    """Add ``value`` (``column`` in a readable unit) and ``value_text`` for tooltips.

    Returns the frame and the unit for the axis title: ``'GB'`` for byte metrics, ``''``
    for counts (the metric's name says what is counted).
    """
    if _is_bytes(metric):
        largest = frame.get_column(column).max() if frame.height else 0
        unit, size = byte_unit(float(largest or 0))  # type: ignore[arg-type]
        return (
            frame.with_columns(
                (pl.col(column).cast(pl.Float64) / size).alias("value"),
                _human_bytes(column).alias("value_text"),
            ),
            unit,
        )
    return (
        frame.with_columns(
            pl.col(column).cast(pl.Float64).alias("value"),
            pl.Series("value_text", _thousands(frame.get_column(column).to_list()), pl.String),
        ),
        "",
    )


def _with_unit(text: str, unit: str) -> str:
    return f"{text} ({unit})" if unit else text


def _collect(frame: FrameLike) -> pl.DataFrame:
    return frame.collect() if isinstance(frame, pl.LazyFrame) else frame


def _require(frame: FrameLike, columns: tuple[str, ...], what: str) -> None:
    if not isinstance(frame, pl.DataFrame | pl.LazyFrame):
        raise TypeError(f"{what}: expected a polars DataFrame, got {type(frame).__name__}")
    names = frame.collect_schema().names()
    missing = [c for c in columns if c not in names]
    if missing:
        raise ValueError(f"{what}: the frame has no column(s) {missing}; it has {names}")


def _guard(frame: pl.DataFrame, what: str, hint: str = "") -> pl.DataFrame:
    if frame.height > MAX_ROWS:
        raise ValueError(
            f"{what}: {frame.height} rows after aggregation is more than a chart should embed "
            f"({MAX_ROWS}); {hint or 'use a coarser time bucket or a smaller n'}"
        )
    return frame


def _short(expr: pl.Expr, limit: int = _NAME_CHARS) -> pl.Expr:
    """``expr`` shortened in the middle to ``limit`` characters (``head…tail``)."""
    head = (limit - 1) * 3 // 5
    tail = limit - 1 - head
    return (
        pl.when(expr.str.len_chars() > limit)
        .then(expr.str.head(head) + pl.lit("…") + expr.str.tail(tail))
        .otherwise(expr)
    )


def _named(names: pl.Expr, key: pl.Expr) -> pl.Expr:
    """``name (key)`` where a name is known, else ``key``; the name shortened if long."""
    return (
        pl.when(names.is_not_null() & (names.str.len_chars() > 0))
        .then(_short(names) + pl.lit(" (") + key + pl.lit(")"))
        .otherwise(key)
    )


def _named_full(names: pl.Expr, key: pl.Expr) -> pl.Expr:
    return (
        pl.when(names.is_not_null() & (names.str.len_chars() > 0))
        .then(names + pl.lit(" (") + key + pl.lit(")"))
        .otherwise(key)
    )


def _vm_names(keys: pl.DataFrame, column: str, inventory: Inventory | None) -> pl.DataFrame:
    """``column`` and ``name``: the inventory's VM name of each key (null where unknown)."""
    distinct = keys.select(pl.col(column).cast(pl.String)).unique(maintain_order=True)
    if inventory is None:
        return distinct.with_columns(pl.lit(None, pl.String).alias("name"))
    labelled = label_sources(distinct, inventory=inventory, column=column)
    return labelled.select(column, pl.col("vm_name").cast(pl.String).alias("name"))


def _label_table(labels: Labels | None) -> pl.DataFrame:
    """``destination_ip``, ``name``: a labels frame or mapping, checked."""
    schema = {"destination_ip": pl.String, "name": pl.String}
    if labels is None:
        return pl.DataFrame(schema=schema)
    if isinstance(labels, pl.DataFrame):
        missing = [c for c in ("destination_ip", "label") if c not in labels.columns]
        if missing:
            raise ValueError(
                f"labels: the frame has no column(s) {missing}; expected destination_ip and "
                f"label (it has {labels.columns})"
            )
        table = labels.select(
            pl.col("destination_ip").cast(pl.String), pl.col("label").cast(pl.String).alias("name")
        )
    elif isinstance(labels, Mapping):
        table = pl.DataFrame(
            {"destination_ip": list(labels.keys()), "name": list(labels.values())}, schema=schema
        )
    else:
        raise TypeError(
            "labels: expected a frame with destination_ip and label columns or a mapping, "
            f"got {type(labels).__name__}"
        )
    return table.drop_nulls("destination_ip").unique("destination_ip", maintain_order=True)


def _key_labels(
    keys: pl.DataFrame, column: str, inventory: Inventory | None, labels: Labels | None
) -> pl.DataFrame:
    """``column``, ``label`` (axis text) and ``full`` (tooltip text) for each key.

    Sources take the inventory's VM name, destinations the ``labels``; gateways their
    name. ``other`` stays ``other``.
    """
    distinct = keys.select(pl.col(column).cast(pl.String)).unique(maintain_order=True)
    if column == "source_ip":
        names = _vm_names(distinct, column, inventory)
    elif column == "destination_ip":
        table = _label_table(labels).rename({"destination_ip": column})
        names = distinct.join(table, on=column, how="left", maintain_order="left")
    elif column == "resource_id":
        names = distinct.with_columns(gateway_name_expr(pl.col(column)).alias("name"))
        return names.select(
            column,
            pl.col("name").alias("label"),
            pl.col(column).alias("full"),
        )
    else:
        names = distinct.with_columns(pl.lit(None, pl.String).alias("name"))
    is_other = pl.col(column) == OTHER
    return names.select(
        column,
        pl.when(is_other)
        .then(pl.col(column))
        .otherwise(_named(pl.col("name"), pl.col(column)))
        .alias("label"),
        pl.when(is_other)
        .then(pl.col(column))
        .otherwise(_named_full(pl.col("name"), pl.col(column)))
        .alias("full"),
    )


def _series_colors(order: Sequence[str], fixed: Mapping[str, str] | None = None) -> alt.Scale:
    """Category colours in ``order``, ``other`` in grey, ``fixed`` names as given.

    A fixed colour (the red of an alert line) is never also a series' colour.
    """
    fixed = fixed or {}
    palette = [color for color in _PALETTE if color not in fixed.values()]
    colors, i = [], 0
    for name in order:
        if name in fixed:
            colors.append(fixed[name])
        elif name == OTHER:
            colors.append(_GREY)
        else:
            colors.append(palette[i % len(palette)])
            i += 1
    return alt.Scale(domain=list(order), range=colors)


def _keyed(chart: alt.Chart, name: str, scale: alt.Scale, title: str | None) -> alt.Chart:
    """``chart`` coloured as the legend entry ``name`` of ``scale`` (a constant category)."""
    keyed: alt.Chart = chart.transform_calculate(legend_key=json.dumps(name)).encode(
        color=alt.Color("legend_key:N", scale=scale, legend=_legend(title))
    )
    return keyed


def _legend(title: str | None) -> alt.Legend:
    """A legend whose labels are never cut."""
    return alt.Legend(title=title, labelLimit=0, symbolLimit=0)


def _key_axis() -> alt.Axis:
    """A category axis whose labels are never cut (names are shortened beforehand)."""
    return alt.Axis(labelLimit=0, title=None)


def embedded_rows(chart: alt.TopLevelMixin) -> int:
    """Count the data rows a chart embeds in its Vega-Lite spec.

    Examples
    --------
    >>> import polars as pl
    >>> embedded_rows(alt.Chart(pl.DataFrame({"x": [1, 2, 3]})).mark_point().encode(x="x"))
    3
    """
    spec = chart.to_dict()
    total = 0
    for rows in spec.get("datasets", {}).values():
        total += len(rows)

    def walk(node: Any) -> None:
        nonlocal total
        if isinstance(node, dict):
            data = node.get("data")
            if isinstance(data, dict) and isinstance(data.get("values"), list):
                total += len(data["values"])
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    walk({k: v for k, v in spec.items() if k != "datasets"})
    return total


def save_chart(chart: alt.TopLevelMixin, path: str | Path, *, scale: float = 1.0) -> Path:
    """Write a chart offline to PNG, SVG or self-contained HTML, chosen by the suffix.

    HTML inlines the Vega libraries (no CDN); PNG and SVG are rendered by vl-convert.

    Examples
    --------
    >>> import tempfile, polars as pl
    >>> chart = alt.Chart(pl.DataFrame({"x": [1, 2]})).mark_point().encode(x="x")
    >>> with tempfile.TemporaryDirectory() as tmp:
    ...     out = save_chart(chart, Path(tmp) / "c.svg")
    ...     out.read_text().startswith("<svg")
    True
    """
    target = Path(path)
    suffix = target.suffix.lower()
    if suffix == ".html":
        chart.save(str(target), inline=True)
    elif suffix == ".png":
        chart.save(str(target), scale_factor=scale)
    elif suffix == ".svg":
        chart.save(str(target))
    else:
        raise ValueError(f"save_chart: {target} must end in .png, .svg or .html")
    return target


# -- time ------------------------------------------------------------------------------


def _every_text(every: str) -> str:
    """``"1h"`` -> ``"hour"``, ``"15m"`` -> ``"15 minutes"``; other durations as given."""
    match = re.fullmatch(r"(\d+)(mo|s|m|h|d|w|y)", every.strip())
    if match is None:
        return every
    count, unit = int(match.group(1)), _UNIT_WORDS[match.group(2)]
    return unit if count == 1 else f"{count} {unit}s"


def _span(frame: FrameLike, column: str = "time") -> tuple[datetime | None, datetime | None]:
    """The first and last moment of ``column`` (None, None when empty)."""
    bounds = frame.lazy().select(
        pl.col(column).min().alias("low"), pl.col(column).max().alias("high")
    )
    low, high = bounds.collect().row(0)
    return low, high


def _pick_every(
    start: datetime | None, end: datetime | None, series: int, every: str | None
) -> str:
    """The time bucket of a chart: ``every`` when given, else the finest that fits.

    Fits means at most :data:`_MAX_BUCKETS` buckets across the span and at most
    :data:`MAX_ROWS` rows for ``series`` series.
    """
    if every is not None:
        duration(every, "every")
        return every
    if start is None or end is None:
        return "1h"
    span = end - start
    for candidate in _BUCKETS:
        buckets = math.floor(span / duration(candidate, "every")) + 2
        if buckets <= _MAX_BUCKETS and buckets * max(series, 1) <= MAX_ROWS:
            return candidate
    return _BUCKETS[-1]


def _ms(moment: datetime) -> float:
    """Milliseconds since the epoch, as Vega-Lite's scale domains take them."""
    return moment.timestamp() * 1000.0


def _time_x(
    field: str,
    start: datetime | None,
    end: datetime | None,
    *,
    width: int,
    title: str | None = "time (UTC)",
    domain: bool = False,
) -> alt.X:
    """A UTC time axis with 24-hour labels that never collide.

    The tick step is chosen from the span so that labels are at least ~90 px apart;
    ``domain`` pins the axis to ``start``-``end``.
    """
    interval, step, fmt, ticks = "day", 1, "%d %b", 2
    if start is not None and end is not None:
        span = max(end - start, timedelta(minutes=1))
        room = max(width // _TICK_PX, 2)
        for length, name, every, label in _TICKS:
            if span / length <= room:
                interval, step, fmt = name, every, label
                ticks = max(math.floor(span / length), 2)
                break
        else:
            interval, step, fmt = "year", max(math.ceil(span / timedelta(days=366) / room), 1), "%Y"
        if span > timedelta(days=1) and fmt in ("%H:%M",):
            fmt = "%d %b %H:%M"
    # Vega's runtime knows day, week, month and year intervals by these names but not
    # minute and hour (it spells them "minutes", which Vega-Lite's schema refuses): under
    # a day, a tick count lets Vega pick round minutes or hours itself.
    tick_count: Any = (
        ticks
        if interval in ("minute", "hour")
        else alt.TimeIntervalStep(interval=interval, step=step)  # type: ignore[arg-type]
    )
    scale = alt.Scale(type="utc")
    if domain and start is not None and end is not None:
        scale = alt.Scale(type="utc", domain=[_ms(start), _ms(end)], nice=False)
    return alt.X(
        f"{field}:T",
        title=title,
        scale=scale,
        axis=alt.Axis(
            format=fmt,
            tickCount=tick_count,
            labelOverlap=True,
            labelAngle=0,
            labelFlush=True,
        ),
    )


def _as_utc(frame: pl.DataFrame, *columns: str) -> pl.DataFrame:
    """``columns`` as UTC datetimes (naive values are UTC, other zones converted)."""
    fixed = []
    for column in columns:
        dtype = frame.schema[column]
        if not isinstance(dtype, pl.Datetime):
            raise ValueError(f"{column}: expected a datetime column, got {dtype}")
        if dtype.time_zone is None:
            fixed.append(pl.col(column).dt.replace_time_zone("UTC"))
        else:
            fixed.append(pl.col(column).dt.convert_time_zone("UTC"))
    return frame.with_columns(fixed) if fixed else frame


def _time_text(column: str, alias: str | None = None) -> pl.Expr:
    """A UTC moment (see :func:`_as_utc`) as tooltip text: ``2026-11-10 14:00 UTC``."""
    return pl.col(column).dt.strftime(_TIME_TEXT).alias(alias or f"{column}_text")


# -- charts over flows -----------------------------------------------------------------


def _series(
    data: pl.DataFrame, metric: str, inventory: Inventory | None, labels: Labels | None = None
) -> tuple[pl.DataFrame, list[str], str]:
    """Add ``series`` (the group's label) to a :func:`traffic_over_time` frame.

    Returns the frame, the series in legend order (largest ``metric`` first, ``other``
    last) and the legend title.
    """
    key = next((c for c in data.columns if c not in TOTAL_COLUMNS and c != "time"), None)
    if key is None:
        return data.with_columns(pl.lit("all traffic").alias("series")), ["all traffic"], ""
    totals = (
        data.group_by(key)
        .agg(pl.col(metric).sum())
        .sort([pl.col(key) == OTHER, metric, key], descending=[False, True, False])
    )
    names = _key_labels(totals.select(key), key, inventory, labels)
    data = data.join(names.select(key, series="label"), on=key, how="left")
    order = totals.join(names, on=key, how="left", maintain_order="left")
    legend = {"source_ip": "source", "destination_ip": "destination", "nat_gateway_ip": "NAT IP"}
    return data, order.get_column("label").to_list(), legend.get(key, "gateway")


def chart_traffic_over_time(
    flows: FrameLike,
    *,
    by: str | None = "source",
    metric: Metric = "bytes",
    n: int = 5,
    every: str | None = None,
    inventory: Inventory | None = None,
    title: str | None = None,
    brush: bool = False,
) -> alt.Chart:
    """Stacked area over time: the ``n`` largest groups by ``metric`` plus "other".

    The numbers are :func:`natlens.traffic_over_time`'s.

    Parameters
    ----------
    flows
        Flow records (:data:`natlens.FLOW_SCHEMA`).
    by
        ``"source"``, ``"destination"``, ``"nat_ip"``, ``"gateway"`` or ``None`` (one
        series).
    metric
        What is measured and ranks the groups (:data:`natlens._typing.Metric`).
    n
        Groups kept by name; the rest add up as ``other``.
    every
        Time bucket, a polars duration such as ``"5m"``, ``"1h"``, ``"1d"``; ``None``
        picks it from the span (a day by 5 minutes, a week by the hour, a month by 3
        hours, a year by the day), so any span stays under :data:`MAX_ROWS` rows. The
        y axis says the bucket.
    inventory
        :func:`natlens.read_inventory`'s frame or the path of the inventory CSV:
        sources are labelled ``vm-name (ip)``.
    title
        Chart title; a default says what is drawn.
    brush
        Add an interval selection named ``brush`` on the time axis (linked views).

    Examples
    --------
    >>> import natlens, natlens.charts as nc
    >>> samples = natlens.sample_data()
    >>> flows = natlens.read_flowlogs(samples.flowlogs)
    >>> chart = nc.chart_traffic_over_time(flows, n=3)
    >>> chart.to_dict()["encoding"]["y"]["title"]
    'traffic per hour (GB)'
    >>> nc.embedded_rows(chart) <= 7 * 24 * 4
    True
    """
    check_metric(metric)
    start, end = _span(as_lazy(flows, columns=("time",)))
    every = _pick_every(start, end, (n + 1) if by is not None else 1, every)
    data = traffic_over_time(flows, every=every, by=by, metric=metric, n=n)
    data, order, legend = _series(data, metric, inventory)
    data = _guard(data.select("time", "series", metric), "chart_traffic_over_time")
    data, unit = _scaled(_as_utc(data, "time"), metric, metric)
    what = _METRIC_LABEL[metric]
    bucket = _every_text(every)
    last = end + duration(every, "every") if end is not None else None
    chart: alt.Chart = (
        alt.Chart(data.select("time", _time_text("time"), "series", "value", "value_text"))
        .mark_area(interpolate="step-after")
        .encode(
            x=_time_x("time", start, last, width=640),
            y=alt.Y("value:Q", stack="zero", title=_with_unit(f"{what} per {bucket}", unit)),
            color=alt.Color(
                "series:N",
                sort=order,
                title=legend or None,
                scale=_series_colors(order),
                legend=_legend(legend or what),
            ),
            order=alt.Order("series:N"),
            tooltip=[
                alt.Tooltip("time_text:N", title=f"{bucket} from"),
                alt.Tooltip("series:N", title=legend or "series"),
                alt.Tooltip("value_text:N", title=what),
            ],
        )
        .properties(
            title=title
            or f"{what.capitalize()} per {bucket}" + (f" by {legend}" if legend else ""),
            width=640,
            height=260,
        )
    )
    if brush:
        brushed: alt.Chart = chart.add_params(alt.selection_interval(encodings=["x"], name="brush"))
        return brushed
    return chart


def chart_heatmap(
    flows: FrameLike, *, metric: Metric = "bytes", title: str | None = None
) -> alt.Chart:
    """Hour-of-day x day heatmap, to see the daily rhythm and odd hours.

    The cells are :func:`natlens.traffic_over_time`'s hours. Over more than nine weeks a
    row is a week (each cell the sum of that hour over the week's days), so a year is
    52 rows, not 365.

    Examples
    --------
    >>> import natlens
    >>> flows = natlens.read_flowlogs(natlens.sample_data().flowlogs)
    >>> spec = chart_heatmap(flows).to_dict()
    >>> spec["mark"]["type"], spec["encoding"]["y"]["title"]
    ('rect', 'day (UTC)')
    """
    check_metric(metric)
    _require(flows, ("time",), "chart_heatmap")
    hours = _as_utc(traffic_over_time(flows, every="1h", metric=metric), "time")
    start, end = (hours.get_column("time").min(), hours.get_column("time").max())
    weekly = start is not None and end is not None and end - start > timedelta(days=63)  # type: ignore[operator]
    row = pl.col("time").dt.truncate("1w" if weekly else "1d")
    data = (
        hours.group_by(row.alias("row"), pl.col("time").dt.hour().alias("hour"))
        .agg(pl.col(metric).sum())
        .sort("row", "hour")
    )
    data = _guard(data, "chart_heatmap")
    data, unit = _scaled(data, metric, metric)
    what = _METRIC_LABEL[metric]
    label = "week of %a %d %b %Y" if weekly else "%a %d %b %Y"
    data = data.select(
        pl.col("row").dt.strftime(label).alias("row"),
        pl.col("hour").cast(pl.String).str.zfill(2).alias("hour"),
        "value",
        "value_text",
    )
    rows = data.get_column("row").unique(maintain_order=True).to_list()
    chart: alt.Chart = (
        alt.Chart(data)
        .mark_rect()
        .encode(
            x=alt.X("hour:O", title="hour of day (UTC, 00-23)", axis=alt.Axis(labelAngle=0)),
            y=alt.Y(
                "row:O",
                title="week (UTC)" if weekly else "day (UTC)",
                sort=rows,
                axis=alt.Axis(labelLimit=0),
            ),
            color=alt.Color(
                "value:Q",
                title=_with_unit(f"{what} per hour", unit),
                scale=alt.Scale(scheme="blues"),
                legend=_legend(_with_unit(f"{what} per hour", unit)),
            ),
            tooltip=[
                alt.Tooltip("row:O", title="week" if weekly else "day"),
                alt.Tooltip("hour:O", title="hour (UTC)"),
                alt.Tooltip("value_text:N", title=what),
            ],
        )
        .properties(
            title=title or f"{what.capitalize()} by hour of day",
            width=520,
            height=alt.Step(14 if len(rows) > 14 else 20),
        )
    )
    return chart


def chart_flow_map(
    flows: FrameLike,
    *,
    metric: Metric = "bytes",
    n: int = 8,
    inventory: Inventory | None = None,
    labels: Labels | None = None,
    title: str | None = None,
) -> alt.LayerChart:
    """Source -> NAT IP -> destination picture: who leaves through which public IP to where.

    Three columns of nodes joined by links whose width is the ``metric``; the numbers
    are :func:`natlens.flow_edges`'s (the ``n`` largest sources and destinations, the
    rest folded into ``other``).

    Parameters
    ----------
    inventory
        :func:`natlens.read_inventory`'s frame or the inventory CSV's path: sources are
        named ``vm-name (ip)``.
    labels
        Destination IP -> label (for example its service tag): a frame with
        ``destination_ip`` and ``label`` columns, or a mapping.

    Examples
    --------
    >>> import natlens
    >>> flows = natlens.read_flowlogs(natlens.sample_data().flowlogs)
    >>> chart = chart_flow_map(flows, n=4, labels={"20.60.26.45": "Storage.WestEurope"})
    >>> len(chart.layer)
    3
    """
    check_metric(metric)
    edges = flow_edges(flows, metric=metric, n=n)
    hops = (("source_ip", "nat_gateway_ip", 0), ("nat_gateway_ip", "destination_ip", 1))
    links = pl.concat(
        [
            edges.group_by(src, dst)
            .agg(pl.col(metric).sum().alias("total"))
            .select(
                pl.col(src).alias("from"),
                pl.col(dst).alias("to"),
                "total",
                pl.lit(col, pl.Int64).alias("from_col"),
            )
            for src, dst, col in hops
        ]
    ).filter(pl.col("total") > 0)
    # Nodes: one column at a time, largest on top, ``other`` at the bottom.
    node_frames = []
    for col, column in enumerate(("source_ip", "nat_gateway_ip", "destination_ip")):
        totals = (
            edges.group_by(column)
            .agg(pl.col(metric).sum().alias("total"))
            .filter(pl.col("total") > 0)
            .sort([pl.col(column) == OTHER, "total", column], descending=[False, True, False])
        )
        named = _key_labels(totals.select(column), column, inventory, labels)
        count = max(totals.height, 1)
        node_frames.append(
            totals.join(named, on=column, how="left", maintain_order="left").select(
                pl.lit(col, pl.Int64).alias("column"),
                pl.col(column).alias("key"),
                ((pl.int_range(pl.len()) + 0.5) / count).alias("y"),
                "label",
                "full",
                "total",
            )
        )
    nodes = pl.concat(node_frames)
    ends = []
    for side, col_expr, key in (
        ("a", pl.col("from_col"), "from"),
        ("b", pl.col("from_col") + 1, "to"),
    ):
        ends.append(
            links.with_row_index("edge")
            .with_columns(col_expr.alias("column"))
            .join(
                nodes.select("column", "key", "y"),
                left_on=["column", key],
                right_on=["column", "key"],
            )
            .select(
                pl.col("edge").cast(pl.Int64),
                pl.col("column").alias("x"),
                "y",
                "total",
                (pl.col("from") + pl.lit(" -> ") + pl.col("to")).alias("link"),
                pl.lit(side).alias("end"),
            )
        )
    edge_frame = _guard(pl.concat(ends).sort("edge", "end"), "chart_flow_map")
    largest = float(edge_frame.get_column("total").max() or 0) if edge_frame.height else 0.0  # type: ignore[arg-type]
    edge_frame, unit = _scaled(edge_frame, "total", metric)
    nodes, _ = _scaled(nodes, "total", metric)
    what = _METRIC_LABEL[metric]

    # Room for the labels: sources right-aligned left of their nodes, destinations
    # left-aligned right of theirs (about 6.5 px a character at 11 px).
    def longest(col: int) -> int:
        texts = nodes.filter(pl.col("column") == col).get_column("label").to_list()
        return max((len(t) for t in texts), default=4)

    left_px, right_px = longest(0) * 6.5 + 14, longest(2) * 6.5 + 14
    width = max(720, int(left_px + right_px + 2 * 170))
    unit_px = (width - left_px - right_px) / 2
    x_scale = alt.Scale(domain=[-left_px / unit_px, 2 + right_px / unit_px], nice=False)
    rows = int(nodes.group_by("column").len().get_column("len").max() or 1)  # type: ignore[arg-type]
    y_scale = alt.Scale(domain=[1, 0], nice=False)
    top = largest / byte_unit(largest)[1] if _is_bytes(metric) else largest
    links_layer = (
        alt.Chart(edge_frame.select("edge", "x", "y", "value", "value_text", "link"))
        .mark_line(opacity=0.45, color=_BLUE)
        .encode(
            x=alt.X(
                "x:Q",
                scale=x_scale,
                axis=alt.Axis(
                    values=[0, 1, 2],
                    labelExpr="['source', 'NAT public IP', 'destination'][datum.value]",
                    title=None,
                    grid=False,
                    domain=False,
                    ticks=False,
                    labelFontWeight="bold",
                ),
            ),
            y=alt.Y("y:Q", axis=None, scale=y_scale),
            detail="edge:N",
            strokeWidth=alt.StrokeWidth(
                "value:Q",
                scale=alt.Scale(range=[1, 18], domain=[0, top or 1]),
                legend=_legend(_with_unit(what, unit)),
            ),
            tooltip=[alt.Tooltip("link:N", title="link"), alt.Tooltip("value_text:N", title=what)],
        )
    )
    node_data = nodes.select("column", "y", "label", "full", "value_text")
    tooltip = [alt.Tooltip("full:N", title="node"), alt.Tooltip("value_text:N", title=what)]
    points = (
        alt.Chart(node_data)
        .mark_circle(size=60, color=_BLUE, opacity=1)
        .encode(x=alt.X("column:Q"), y="y:Q", tooltip=tooltip)
    )
    texts = [
        alt.Chart(node_data)
        .transform_filter(f"datum.column == {col}")
        .mark_text(fontSize=11, align=align, dx=dx, dy=dy, fontWeight="bold")
        .encode(x="column:Q", y="y:Q", text="label:N", tooltip=tooltip)
        for col, align, dx, dy in _NODE_TEXT
    ]
    layered: alt.LayerChart = alt.LayerChart(
        layer=[links_layer, points, alt.layer(*texts)]
    ).properties(
        title=title or f"Who leaves through which NAT IP to where ({what})",
        width=width,
        height=max(220, 34 * rows),
    )
    return layered


def chart_top(
    table: pl.DataFrame,
    *,
    metric: Metric = "bytes",
    n: int = 10,
    inventory: Inventory | None = None,
    labels: Labels | None = None,
    title: str | None = None,
) -> alt.Chart:
    """Horizontal bars of a top-N table: :func:`natlens.top_talkers` or
    :func:`natlens.top_destinations` output.

    ``bytes`` bars are split into sent and received.

    Parameters
    ----------
    table
        One row per ``source_ip`` or ``destination_ip`` (or ``nat_gateway_ip``) with
        the analyses' totals.
    metric
        The total drawn (and the order of the bars).
    n
        Bars drawn.
    inventory
        :func:`natlens.read_inventory`'s frame or its path: sources are named.
    labels
        Destination IP -> label (a frame with ``destination_ip`` and ``label``, or a
        mapping): destinations are named.

    Examples
    --------
    >>> import natlens
    >>> flows = natlens.read_flowlogs(natlens.sample_data().flowlogs)
    >>> chart = chart_top(natlens.top_talkers(flows, n=5))
    >>> chart.to_dict()["mark"]["type"]
    'bar'
    """
    check_metric(metric)
    _require(table, (), "chart_top")
    key = next(
        (c for c in ("source_ip", "destination_ip", "nat_gateway_ip") if c in table.columns), None
    )
    if key is None:
        raise ValueError(
            "chart_top: expected a top_talkers/top_destinations table with a source_ip, "
            f"destination_ip or nat_gateway_ip column; it has {table.columns}"
        )
    _require(table, (metric,), "chart_top")
    ranked = table.sort([metric, key], descending=[True, False], nulls_last=True).head(n)
    names = _key_labels(ranked.select(key), key, inventory, labels)
    ranked = ranked.join(names, on=key, how="left", maintain_order="left")
    order = ranked.get_column("label").to_list()
    what = _METRIC_LABEL[metric]
    noun = {"source_ip": "source", "destination_ip": "destination"}.get(key, "NAT IP")
    if metric == "bytes" and {"bytes_sent", "bytes_received"} <= set(ranked.columns):
        long = ranked.unpivot(
            index=["label", "full", metric],
            on=["bytes_sent", "bytes_received"],
            variable_name="direction",
            value_name="part",
        ).with_columns(pl.col("direction").str.replace("bytes_", ""))
        unit, size = byte_unit(float(long.get_column(metric).max() or 0))  # type: ignore[arg-type]
        data = long.select(
            "label",
            "full",
            "direction",
            (pl.col("part") / size).alias("value"),
            _human_bytes("part").alias("value_text"),
            _human_bytes(metric).alias("total_text"),
        )
        color: Any = alt.Color(
            "direction:N",
            title="direction",
            scale=alt.Scale(domain=["sent", "received"], range=[_BLUE, "#f58518"]),
            legend=_legend("direction"),
        )
        tooltip = [
            alt.Tooltip("full:N", title=noun),
            alt.Tooltip("direction:N"),
            alt.Tooltip("value_text:N", title=what),
            alt.Tooltip("total_text:N", title="total"),
        ]
    else:
        data, unit = _scaled(ranked, metric, metric)
        data = data.select("label", "full", "value", "value_text")
        color = alt.value(_BLUE)
        tooltip = [alt.Tooltip("full:N", title=noun), alt.Tooltip("value_text:N", title=what)]
    chart: alt.Chart = (
        alt.Chart(data)
        .mark_bar()
        .encode(
            y=alt.Y("label:N", sort=order, title=None, axis=_key_axis()),
            x=alt.X("value:Q", title=_with_unit(what, unit), stack="zero"),
            color=color,
            tooltip=tooltip,
        )
        .properties(title=title or f"Top {len(order)} {noun}s by {what}", width=520)
    )
    return chart


def chart_drops_over_time(
    flows: FrameLike,
    *,
    every: str | None = None,
    by: str | None = "source",
    n: int = 5,
    inventory: Inventory | None = None,
    title: str | None = None,
) -> alt.Chart:
    """Dropped packets (sent + received, on established connections) over time.

    The numbers are :func:`natlens.traffic_over_time`'s with ``metric="packets_dropped"``:
    the ``n`` groups that dropped most keep their name. Narrow ``flows`` first (for
    example with :func:`natlens.find_flows`) to look at one VM and destination. Only
    buckets with drops are drawn, on an axis spanning the whole of ``flows``.

    Parameters
    ----------
    every
        Time bucket; ``None`` picks it from the span (see
        :func:`chart_traffic_over_time`).

    Examples
    --------
    >>> import natlens
    >>> flows = natlens.read_flowlogs(natlens.sample_data().flowlogs)
    >>> chart = chart_drops_over_time(flows)
    >>> chart.to_dict()["encoding"]["y"]["title"]
    'dropped packets per hour'
    """
    start, end = _span(as_lazy(flows, columns=("time",)))
    every = _pick_every(start, end, (n + 1) if by is not None else 1, every)
    data = traffic_over_time(flows, every=every, by=by, metric="packets_dropped", n=n)
    data = data.filter(pl.col("packets_dropped") > 0)
    data, order, legend = _series(data, "packets_dropped", inventory)
    data = _guard(_as_utc(data, "time"), "chart_drops_over_time")
    bucket = _every_text(every)
    step = duration(every, "every")
    last = end + step if end is not None else None
    chart: alt.Chart = (
        alt.Chart(
            data.select(
                "time",
                pl.col("time").dt.offset_by(every).alias("time_end"),
                _time_text("time"),
                "series",
                pl.col("packets_dropped").alias("dropped"),
                (pl.col("packets_dropped") / pl.col("packets").clip(lower_bound=1) * 100)
                .round(2)
                .alias("drop_pct"),
            )
        )
        .mark_bar(orient="vertical")
        .encode(
            x=_time_x("time", start, last, width=640, domain=True),
            x2="time_end:T",
            y=alt.Y("dropped:Q", title=f"dropped packets per {bucket}", stack="zero"),
            color=alt.Color(
                "series:N",
                sort=order,
                scale=_series_colors(order),
                legend=_legend(legend or "dropped packets"),
            ),
            tooltip=[
                alt.Tooltip("time_text:N", title=f"{bucket} from"),
                alt.Tooltip("series:N", title=legend or "series"),
                alt.Tooltip("dropped:Q", title="dropped packets", format=","),
                alt.Tooltip("drop_pct:Q", title="% of packets", format=".2f"),
            ],
        )
        .properties(
            title=title or "Packets dropped by the gateway on established connections",
            width=640,
            height=220,
        )
    )
    return chart


_NODE_TEXT: tuple[tuple[int, Literal["left", "center", "right"], int, int], ...] = (
    (0, "right", -8, 0),
    (1, "center", 0, -10),
    (2, "left", 8, 0),
)
"""Flow map labels: sources left of their node, NAT IPs above, destinations right."""

_SPIKE_LEGEND = {
    "actual": "#333333",
    "usual level": _BLUE,
    "usual range": "#9ecae9",
    "spike": _RED,
    "spike event": "#f4b6b6",
}


def chart_spike(
    buckets: pl.DataFrame,
    *,
    events: pl.DataFrame | None = None,
    metric: Metric = "bytes",
    title: str | None = None,
) -> alt.LayerChart:
    """Traffic against its usual level: the baseline band, the actual line, spikes marked.

    Parameters
    ----------
    buckets
        :func:`natlens.score_traffic` output (every bucket): ``time, actual,
        expected, spread, excess, score, ratio, is_spike``. The band spans
        ``expected`` plus or minus the spread the score was measured in.
    events
        :func:`natlens.find_spikes` output (``start, end, extra_bytes, extra_cost,
        currency``...): each event's window is shaded, with its extra volume and
        cost in the tooltip. ``None`` shades nothing.
    metric
        What ``buckets`` measured, for the axis title.
    title
        Chart title; a default says what is drawn.

    Examples
    --------
    >>> import natlens
    >>> flows = natlens.read_flowlogs(natlens.sample_data().flowlogs)
    >>> chart = chart_spike(natlens.score_traffic(flows))
    >>> len(chart.layer)
    4
    >>> events = natlens.find_spikes(flows, price_per_gb=0.045, currency="USD")
    >>> len(chart_spike(natlens.score_traffic(flows), events=events).layer)
    5
    """
    check_metric(metric)
    _require(buckets, ("time", "actual", "expected", "is_spike"), "chart_spike")
    data = _as_utc(buckets.sort("time"), "time")
    spread = (
        pl.col("spread")
        if "spread" in data.columns
        else pl.when(pl.col("score").abs() > 0)
        .then((pl.col("excess") / pl.col("score")).abs())
        .otherwise(pl.col("expected") * 0.1)
        if {"excess", "score"} <= set(data.columns)
        else pl.col("expected") * 0.1
    )
    data = _guard(
        data.with_columns(
            (pl.col("expected") - spread).clip(lower_bound=0).alias("low"),
            (pl.col("expected") + spread).alias("high"),
        ),
        "chart_spike",
        'score fewer buckets, for example natlens.score_traffic(flows, every="1d")',
    )
    largest = float(data.get_column("actual").max() or 0) if data.height else 0.0  # type: ignore[arg-type]
    unit, size = byte_unit(largest) if _is_bytes(metric) else ("", 1.0)
    ratio = pl.col("ratio") if "ratio" in data.columns else pl.col("actual") / pl.col("expected")
    every = None
    if data.height > 1:
        every = data.get_column("time").diff().drop_nulls().min()
    data = data.select(
        "time",
        _time_text("time"),
        "is_spike",
        (pl.col("actual") / size).alias("actual"),
        (pl.col("expected") / size).alias("expected"),
        (pl.col("low") / size).alias("low"),
        (pl.col("high") / size).alias("high"),
        ratio.round(1).alias("ratio"),
        (
            _human_bytes("actual")
            if _is_bytes(metric)
            else pl.Series(_thousands(data.get_column("actual").to_list()), dtype=pl.String)
        ).alias("actual_text"),
    )
    what = _METRIC_LABEL[metric]
    per = f" per {_every_text(_duration_text(every))}" if isinstance(every, timedelta) else ""
    start, end = _span(data)
    x = _time_x("time", start, end, width=680)
    legend = alt.Scale(domain=list(_SPIKE_LEGEND), range=list(_SPIKE_LEGEND.values()))

    base = alt.Chart(data)
    band = _keyed(
        base.mark_area(opacity=0.5).encode(
            x=x, y=alt.Y("low:Q", title=_with_unit(f"{what}{per}", unit)), y2="high:Q"
        ),
        "usual range",
        legend,
        None,
    )
    expected = _keyed(
        base.mark_line(strokeDash=[4, 3]).encode(x=x, y="expected:Q"), "usual level", legend, None
    )
    actual = _keyed(
        base.mark_line().encode(
            x=x,
            y="actual:Q",
            tooltip=[
                alt.Tooltip("time_text:N", title="from"),
                alt.Tooltip("actual_text:N", title=what),
                alt.Tooltip("ratio:Q", title="x usual"),
            ],
        ),
        "actual",
        legend,
        None,
    )
    spikes = data.filter(pl.col("is_spike"))
    top = spikes.sort("actual", descending=True).head(1)
    marks = _keyed(
        alt.Chart(spikes.with_columns((pl.col("ratio").cast(pl.String) + "x usual").alias("note")))
        .mark_point(filled=True, size=70, opacity=1)
        .encode(
            x=x,
            y="actual:Q",
            tooltip=[
                alt.Tooltip("time_text:N", title="spike from"),
                alt.Tooltip("actual_text:N", title=what),
                alt.Tooltip("note:N", title="ratio"),
            ],
        ),
        "spike",
        legend,
        None,
    )
    note = _keyed(
        alt.Chart(
            top.with_columns(
                (
                    pl.lit("spike: ")
                    + pl.col("actual_text")
                    + pl.lit(", ")
                    + pl.col("ratio").cast(pl.String)
                    + pl.lit("x usual")
                ).alias("note")
            )
        )
        .mark_text(align="left", dx=8, dy=-8, fontWeight="bold")
        .encode(x=x, y="actual:Q", text="note:N"),
        "spike",
        legend,
        None,
    )
    layers: list[Any] = [band, expected, actual, marks + note]
    if events is not None:
        _require(events, ("start", "end", "extra_bytes", "extra_cost", "currency"), "chart_spike")
        shaded = _as_utc(events, "start", "end").select(
            "start",
            "end",
            _time_text("start"),
            _time_text("end"),
            _human_bytes("extra_bytes").alias("extra_text"),
            (
                pl.col("extra_cost").round(2).cast(pl.String) + pl.lit(" ") + pl.col("currency")
            ).alias("cost_text"),
        )
        window = _keyed(
            alt.Chart(_guard(shaded, "chart_spike"))
            .mark_rect(opacity=0.5)
            .encode(
                x=_time_x("start", start, end, width=680),
                x2="end:T",
                tooltip=[
                    alt.Tooltip("start_text:N", title="spike from"),
                    alt.Tooltip("end_text:N", title="to"),
                    alt.Tooltip("extra_text:N", title="extra traffic"),
                    alt.Tooltip("cost_text:N", title="extra cost"),
                ],
            ),
            "spike event",
            legend,
            None,
        )
        layers.insert(0, window)
    layered: alt.LayerChart = alt.LayerChart(layer=layers).properties(
        title=title
        or f"{what.capitalize()} against the usual level (band) with spikes "
        + ("shaded" if events is not None else "marked"),
        width=680,
        height=260,
    )
    return layered


def _duration_text(step: timedelta) -> str:
    """A bucket length as a polars duration (``3600 s`` -> ``"1h"``)."""
    seconds = int(step.total_seconds())
    for unit, size in (("d", 86_400), ("h", 3_600), ("m", 60)):
        if seconds % size == 0:
            return f"{seconds // size}{unit}"
    return f"{seconds}s"


_COST_KEYS = ("source_ip", "destination_ip", "nat_gateway_ip", "resource_id")


def chart_cost_breakdown(
    costs: pl.DataFrame,
    *,
    n: int = 10,
    inventory: Inventory | None = None,
    title: str | None = None,
) -> alt.Chart:
    """Data processing cost: bars per group, or per period when ``costs`` has ``time``.

    Parameters
    ----------
    costs
        :func:`natlens.cost` output (``by=`` a group or ``every=`` a period, not both),
        or :func:`natlens.explain_spike` output (``delta_cost`` per source/destination).
    n
        Groups drawn by name; the rest add up in one ``other (k)`` bar.
    inventory
        :func:`natlens.read_inventory`'s frame or its path: sources are named.

    Examples
    --------
    >>> import natlens
    >>> flows = natlens.read_flowlogs(natlens.sample_data().flowlogs)
    >>> table = natlens.cost(flows, price_per_gb=0.045, currency="USD", by="source")
    >>> chart_cost_breakdown(table, n=5).to_dict()["mark"]["type"]
    'bar'
    """
    value = "delta_cost" if "delta_cost" in costs.columns else "cost"
    _require(costs, (value, "currency"), "chart_cost_breakdown")
    currency = str(costs.get_column("currency").drop_nulls().first() or "") if costs.height else ""
    what = "extra cost" if value == "delta_cost" else "cost"
    keys = [c for c in _COST_KEYS if c in costs.columns]
    if "time" in costs.columns:
        if keys:
            raise ValueError(
                f"chart_cost_breakdown: costs has both time and {keys}; draw one: "
                "natlens.cost(..., every=...) per period or natlens.cost(..., by=...) per group"
            )
        return _cost_per_period(costs, value, what, currency, title)
    if not keys:
        data = costs.with_columns(pl.lit("total").alias("label"), pl.lit("total").alias("full"))
    else:
        data = costs
        for key in keys:
            names = _key_labels(data.select(key), key, inventory, None)
            data = data.join(
                names.rename({"label": f"{key}_label", "full": f"{key}_full"}),
                on=key,
                how="left",
                maintain_order="left",
            )
        data = data.with_columns(
            pl.concat_str(
                [pl.col(f"{k}_label").fill_null("?") for k in keys], separator=" -> "
            ).alias("label"),
            pl.concat_str(
                [pl.col(f"{k}_full").fill_null("?") for k in keys], separator=" -> "
            ).alias("full"),
        )
    ranked = data.sort(value, descending=True).select("label", "full", value, "bytes")
    if ranked.height > n:
        rest = ranked.slice(n)
        other = f"{OTHER} ({rest.height})"
        ranked = pl.concat(
            [
                ranked.head(n),
                pl.DataFrame(
                    {
                        "label": [other],
                        "full": [f"{rest.height} more"],
                        value: [rest.get_column(value).sum()],
                        "bytes": [rest.get_column("bytes").sum()],
                    },
                    schema={
                        "label": pl.String,
                        "full": pl.String,
                        value: pl.Float64,
                        "bytes": pl.Int64,
                    },
                ),
            ],
            how="vertical_relaxed",
        )
    ranked = ranked.select(
        "label",
        "full",
        pl.col(value).alias("cost"),
        _human_bytes("bytes").alias("bytes_text"),
        pl.col(value).round(2).cast(pl.String).alias("cost_text"),
    ).with_columns(pl.col("cost_text") + pl.lit(f" {currency}"))
    order = ranked.get_column("label").to_list()
    chart: alt.Chart = (
        alt.Chart(ranked)
        .mark_bar(color="#54a24b")
        .encode(
            y=alt.Y("label:N", sort=order, title=None, axis=_key_axis()),
            x=alt.X("cost:Q", title=_with_unit(what, currency)),
            tooltip=[
                alt.Tooltip("full:N", title=" -> ".join(_COST_NOUNS[k] for k in keys) or "total"),
                alt.Tooltip("bytes_text:N", title="bytes processed"),
                alt.Tooltip("cost_text:N", title=what),
            ],
        )
        .properties(title=title or f"Data processing {what} breakdown", width=520)
    )
    return chart


_COST_NOUNS = {
    "source_ip": "source",
    "destination_ip": "destination",
    "nat_gateway_ip": "NAT IP",
    "resource_id": "gateway",
}


def _cost_per_period(
    costs: pl.DataFrame, value: str, what: str, currency: str, title: str | None
) -> alt.Chart:
    data = _guard(_as_utc(costs.sort("time"), "time"), "chart_cost_breakdown")
    step = data.get_column("time").diff().drop_nulls().min() if data.height > 1 else None
    period = _duration_text(step) if isinstance(step, timedelta) else "1d"
    gb = pl.col("gb") if "gb" in data.columns else pl.col("bytes") / 1e9
    frame = data.select(
        "time",
        pl.col("time").dt.offset_by(period).alias("time_end"),
        _time_text("time"),
        pl.col(value).alias("cost"),
        (pl.col(value).round(2).cast(pl.String) + pl.lit(f" {currency}")).alias("cost_text"),
        (gb.round(2).cast(pl.String) + pl.lit(" GB")).alias("gb_text"),
    )
    start, _ = _span(frame)
    _, end = _span(frame, "time_end")
    bucket = _every_text(period)
    chart: alt.Chart = (
        alt.Chart(frame)
        .mark_bar(color="#54a24b", stroke="white", strokeWidth=1, orient="vertical")
        .encode(
            x=_time_x("time", start, end, width=560, domain=True),
            x2="time_end:T",
            y=alt.Y("cost:Q", title=_with_unit(f"{what} per {bucket}", currency)),
            tooltip=[
                alt.Tooltip("time_text:N", title=f"{bucket} from"),
                alt.Tooltip("gb_text:N", title="processed"),
                alt.Tooltip("cost_text:N", title=what),
            ],
        )
        .properties(title=title or f"Data processing {what} per {bucket}", width=560)
    )
    return chart


def chart_allowlist_violations(
    violations: pl.DataFrame,
    *,
    inventory: Inventory | None = None,
    title: str | None = None,
) -> alt.LayerChart:
    """When each unapproved (source, destination) pair was active, with its traffic.

    Parameters
    ----------
    violations
        :func:`natlens.check_allowlist` output: ``source_ip, destination_ip,
        first_seen, last_seen, records, bytes``.
    inventory
        :func:`natlens.read_inventory`'s frame or its path: sources are named.

    Examples
    --------
    >>> import natlens
    >>> samples = natlens.sample_data()
    >>> flows = natlens.read_flowlogs(samples.flowlogs)
    >>> bad = natlens.check_allowlist(
    ...     flows,
    ...     allowlist=samples.allowlist,
    ...     service_tags=samples.service_tags,
    ...     resolver=natlens.read_hostnames(samples.hostnames),
    ... )
    >>> [layer["mark"]["type"] for layer in chart_allowlist_violations(bad).to_dict()["layer"]]
    ['rule', 'text']
    """
    _require(
        violations,
        ("source_ip", "destination_ip", "first_seen", "last_seen", "records", "bytes"),
        "chart_allowlist_violations",
    )
    data = _guard(
        _as_utc(violations.sort("bytes", descending=True), "first_seen", "last_seen"),
        "chart_allowlist_violations",
    )
    names = _key_labels(data.select("source_ip"), "source_ip", inventory, None)
    data = data.join(names, on="source_ip", how="left", maintain_order="left").select(
        (pl.col("label") + pl.lit(" -> ") + pl.col("destination_ip")).alias("pair"),
        (pl.col("full") + pl.lit(" -> ") + pl.col("destination_ip")).alias("full"),
        "first_seen",
        "last_seen",
        _time_text("first_seen"),
        _time_text("last_seen"),
        pl.Series("records_text", _thousands(data.get_column("records").to_list()), pl.String),
        _human_bytes("bytes").alias("bytes_text"),
    )
    order = data.get_column("pair").to_list()
    start, _ = _span(data, "first_seen")
    _, end = _span(data, "last_seen")
    if start is not None and end is not None:
        end = end + max(end - start, timedelta(hours=1)) * 0.15  # room for the volume text
    x = _time_x("first_seen", start, end, width=560, title="active (UTC)", domain=True)
    tooltip = [
        alt.Tooltip("full:N", title="source -> destination"),
        alt.Tooltip("first_seen_text:N", title="first seen"),
        alt.Tooltip("last_seen_text:N", title="last seen"),
        alt.Tooltip("records_text:N", title="records"),
        alt.Tooltip("bytes_text:N", title="traffic"),
    ]
    y = alt.Y("pair:N", sort=order, title=None, axis=_key_axis())
    base = alt.Chart(data)
    bars = base.mark_rule(strokeWidth=8, color=_RED).encode(
        y=y, x=x, x2="last_seen:T", tooltip=tooltip
    )
    volume = base.mark_text(align="left", dx=6, fontSize=11).encode(
        y=y, x="last_seen:T", text="bytes_text:N", tooltip=tooltip
    )
    layered: alt.LayerChart = alt.LayerChart(layer=[bars, volume]).properties(
        title=title or f"Traffic to destinations not on the allowlist ({data.height} pairs)",
        width=560,
    )
    return layered


_AVAILABILITY = "DatapathAvailability"
_ALERT_KEY = f"alert: below {AVAILABILITY_THRESHOLD:g}% over 15 min"


def chart_metrics(
    metrics: FrameLike,
    name: str,
    *,
    every: str | None = None,
    connection_state: str | None = None,
    start: TimeLike | None = None,
    end: TimeLike | None = None,
    title: str | None = None,
) -> alt.LayerChart:
    """A gateway platform metric over time, one line per gateway (and dimension value).

    ``DatapathAvailability`` is drawn as the 15-minute averages its alert is defined on,
    the windows :func:`natlens.gateway_health` judges, next to its alert line (90%):
    a window under the line is one that ``gateway_health`` counts. A bucket finer
    than 15 minutes draws every window; in a coarser one the line shows the worst
    window, so a dip is never averaged away. Its axis spans from just under the lowest
    value (or the alert line) to 100%, so a dip to 97% is plain next to the line. The
    other metrics are summed per bucket.

    Parameters
    ----------
    metrics
        :data:`natlens.METRICS_SCHEMA` rows (:func:`natlens.read_metrics`); every row
        names its gateway.
    name
        The metric's REST name, for example ``SNATConnectionCount``.
    every
        Time bucket; ``None`` picks it from the span (see
        :func:`chart_traffic_over_time`).
    connection_state
        For ``SNATConnectionCount``: ``Attempted`` or ``Failed``, in any case
        (``None``: both lines).
    start, end
        Time window, ``start <= time < end`` (naive times are UTC).

    Raises
    ------
    ValueError
        If a METRICS_SCHEMA column is missing, the selection has no rows of ``name``,
        or a row of it names no gateway (as :func:`natlens.gateway_health` does).

    Examples
    --------
    >>> import natlens
    >>> metrics = natlens.read_metrics(natlens.sample_data().metrics)
    >>> chart = chart_metrics(metrics, "SNATConnectionCount", connection_state="Failed")
    >>> chart.to_dict()["layer"][0]["encoding"]["y"]["title"]
    'SNATConnectionCount (Failed) per hour'
    >>> day = chart_metrics(metrics, "DatapathAvailability", start="2026-11-11", end="2026-11-12")
    >>> day.to_dict()["layer"][0]["encoding"]["y"]["title"]
    'availability per 15 minutes (%)'
    """
    _require(metrics, tuple(METRICS_SCHEMA.names()), "metrics")
    lazy = metrics.lazy().filter(pl.col("metric") == name)
    if connection_state is not None:
        state_is = pl.col("connection_state").str.to_lowercase() == connection_state.lower()
        lazy = lazy.filter(state_is)
    # The rows gateway_health reads: the window's, resource ids in upper case, each
    # naming its gateway.
    rows = _metrics_rows(lazy, start, end)
    if rows.is_empty():
        known = metrics.lazy().select(pl.col("metric").unique().sort()).collect().to_series()
        raise ValueError(
            f"chart_metrics: no {name!r} rows in the metrics for this selection "
            f"(metrics present: {known.to_list()})"
        )
    average = name == _AVAILABILITY
    if average:
        points = _availability_windows(rows).with_columns(
            pl.lit(None, pl.String).alias("connection_state")
        )
    else:
        points = rows.group_by(
            "resource_id", "connection_state", pl.col("time").dt.truncate("1m")
        ).agg(pl.col("value").sum())
    points = _as_utc(points.join(_gateway_series(points), on="resource_id"), "time")
    points = points.with_columns(
        pl.when(pl.col("connection_state").is_not_null())
        .then(pl.col("gateway") + pl.lit(" ") + pl.col("connection_state"))
        .otherwise(pl.col("gateway"))
        .alias("series")
    )
    first, last = _span(points)
    series = points.get_column("series").n_unique()
    every = _pick_every(first, last, series, every)
    if average and duration(every, "every") <= duration(AVAILABILITY_WINDOW, ""):
        every = AVAILABILITY_WINDOW
    bucket = _every_text(every)
    if average:
        data = points.group_by(pl.col("time").dt.truncate(every), "series").agg(
            pl.col("value").min()
        )
        what = (
            f"availability per {bucket} (%)"
            if every == AVAILABILITY_WINDOW
            else f"worst 15-min availability per {bucket} (%)"
        )
    else:
        data = points.group_by(pl.col("time").dt.truncate(every), "series").agg(
            pl.col("value").sum().round(0)
        )
        state = f" ({connection_state})" if connection_state else ""
        what = f"{name}{state} per {bucket}"
    data = _guard(data.sort("time", "series"), "chart_metrics")
    order = sorted(data.get_column("series").unique().to_list())
    keys = [*order, _ALERT_KEY] if average else order
    colors = _series_colors(keys, {_ALERT_KEY: _RED})
    data = data.with_columns(_time_text("time"))
    value_tip = alt.Tooltip("value:Q", title=name, format=",")
    if average:  # cut down like triage and diagnose: 89.996% is not 90.00%
        texts = [percent_text(v) for v in data.get_column("value").to_list()]
        data = data.with_columns(pl.Series("value_text", texts, dtype=pl.String))
        value_tip = alt.Tooltip("value_text:N", title=name)
    y_scale = alt.Scale()
    if average:
        lowest = float(data.get_column("value").min() or 100.0)  # type: ignore[arg-type]
        floor = max(0.0, math.floor(min(lowest, AVAILABILITY_THRESHOLD) - 2))
        y_scale = alt.Scale(domain=[floor, 100.0], zero=False, nice=False)
    end_time = last + duration(every, "every") if last is not None else None
    line = (
        alt.Chart(data)
        .mark_line(interpolate="step-after")
        .encode(
            x=_time_x("time", first, end_time, width=640),
            y=alt.Y("value:Q", title=what, scale=y_scale),
            color=alt.Color("series:N", scale=colors, legend=_legend("gateway")),
            tooltip=[
                alt.Tooltip("time_text:N", title=f"{bucket} from"),
                alt.Tooltip("series:N", title="gateway"),
                value_tip,
            ],
        )
    )
    layers: list[Any] = [line]
    if average:
        layers.append(
            alt.Chart(pl.DataFrame({"threshold": [AVAILABILITY_THRESHOLD], "series": [_ALERT_KEY]}))
            .mark_rule(strokeDash=[4, 3])
            .encode(
                y=alt.Y("threshold:Q", scale=y_scale),
                color=alt.Color("series:N", scale=colors, legend=_legend("gateway")),
            )
        )
    layered: alt.LayerChart = alt.LayerChart(layer=layers).properties(
        title=title or name + (f" ({connection_state})" if connection_state else ""),
        width=640,
        height=240,
    )
    return layered


def _gateway_series(points: pl.DataFrame) -> pl.DataFrame:
    """``resource_id``, ``gateway``: each gateway's name, told apart where names repeat.

    Two gateways of one name stay two lines: ``natgw-a (rg-1)`` with the resource group,
    or the whole resource id where that repeats too (two subscriptions).
    """
    name = pl.col("gateway")
    group = pl.col("resource_id").str.extract(r"(?i)/resourcegroups/([^/]+)/").str.to_lowercase()
    with_group = pl.when(group.is_not_null()).then(pl.format("{} ({})", name, group))
    return (
        points.select(pl.col("resource_id").unique().sort())
        .with_columns(gateway_name_expr(pl.col("resource_id")).alias("gateway"))
        .with_columns(
            pl.when(name.is_duplicated())
            .then(with_group.otherwise(pl.col("resource_id")))
            .otherwise(name)
            .alias("gateway")
        )
        .with_columns(
            pl.when(name.is_duplicated())
            .then(pl.col("resource_id"))
            .otherwise(name)
            .alias("gateway")
        )
    )


def chart_nat_ip_usage(usage: pl.DataFrame, *, title: str | None = None) -> alt.LayerChart:
    """SNAT pressure per NAT public IP: its busiest minute against the SNAT port limit.

    Each flow record (one source, destination and NAT IP in a minute) holds at least one
    of the IP's :data:`SNAT_PORTS_PER_IP` (64,512) SNAT ports, so the bars show the
    peak flows per minute (:func:`natlens.nat_ip_usage`'s ``peak_records_per_minute``)
    next to that limit; the label gives the share of the limit and the IP's share of
    its gateway's records (``imbalance`` 1.0 is a fair share).

    Parameters
    ----------
    usage
        :func:`natlens.nat_ip_usage` output.

    Examples
    --------
    >>> import natlens
    >>> flows = natlens.read_flowlogs(natlens.sample_data().flowlogs)
    >>> chart = chart_nat_ip_usage(natlens.nat_ip_usage(flows))
    >>> [layer["mark"]["type"] for layer in chart.to_dict()["layer"]]
    ['bar', 'text', 'rule']
    """
    _require(
        usage,
        (
            "resource_id",
            "nat_gateway_ip",
            "ip_version",
            "records",
            "share",
            "imbalance",
            "peak_records_per_minute",
        ),
        "chart_nat_ip_usage",
    )
    peak = pl.col("peak_records_per_minute")
    data = _guard(usage, "chart_nat_ip_usage").select(
        gateway_name_expr(pl.col("resource_id")).alias("gateway"),
        "nat_gateway_ip",
        pl.format("{} (IPv{})", "nat_gateway_ip", "ip_version").alias("ip"),
        peak.alias("peak"),
        pl.lit(1, pl.Int64).alias("floor"),
        (peak / SNAT_PORTS_PER_IP * 100).alias("port_pct"),
        (pl.col("share") * 100).round(1).alias("share"),
        pl.col("imbalance").round(2),
        pl.Series("records_text", _thousands(usage.get_column("records").to_list()), pl.String),
    )
    data = data.with_columns(
        pl.format(
            "{} a minute = {}% of the SNAT ports; {}% of the gateway's records",
            pl.Series(_thousands(data.get_column("peak").to_list()), dtype=pl.String),
            pl.col("port_pct").round(2),
            pl.col("share"),
        ).alias("note")
    )
    order = data.get_column("ip").to_list()
    gateways = data.get_column("gateway").unique(maintain_order=True).to_list()
    largest = float(data.get_column("peak").max() or 0) if data.height else 0.0  # type: ignore[arg-type]
    # A log scale: 15 and 30 flows a minute differ visibly, and the limit stays in view.
    top = 10 ** math.ceil(math.log10(max(float(SNAT_PORTS_PER_IP), largest) * 1.5))
    x_scale = alt.Scale(type="log", domain=[1, top], nice=False)
    y = alt.Y("ip:N", sort=order, title=None, axis=_key_axis())
    tooltip = [
        alt.Tooltip("gateway:N"),
        alt.Tooltip("ip:N", title="NAT IP"),
        alt.Tooltip("peak:Q", title="peak flows per minute", format=","),
        alt.Tooltip("port_pct:Q", title="% of 64,512 SNAT ports", format=".2f"),
        alt.Tooltip("records_text:N", title="records"),
        alt.Tooltip("share:Q", title="% of the gateway's records"),
        alt.Tooltip("imbalance:Q", title="imbalance (1.0 = fair)"),
    ]
    limit_key = "SNAT port limit (64,512 per IP)"
    colors = _series_colors([*gateways, limit_key], {limit_key: _RED})
    base = alt.Chart(data)
    bars = base.mark_bar().encode(
        y=y,
        x=alt.X(
            "peak:Q",
            title="peak flows per minute, log scale (each holds at least one SNAT port)",
            scale=x_scale,
            axis=alt.Axis(format=",", values=[10**k for k in range(round(math.log10(top)) + 1)]),
        ),
        x2="floor:Q",
        color=alt.Color("gateway:N", scale=colors, legend=_legend("gateway")),
        tooltip=tooltip,
    )
    notes = base.mark_text(align="left", dx=6, fontSize=11).encode(
        y=y, x="peak:Q", text="note:N", tooltip=tooltip
    )
    limit = pl.DataFrame({"limit": [SNAT_PORTS_PER_IP], "gateway": [limit_key]})
    rule = (
        alt.Chart(limit)
        .mark_rule(strokeDash=[4, 3])
        .encode(x="limit:Q", color=alt.Color("gateway:N", scale=colors, legend=_legend("gateway")))
    )
    layered: alt.LayerChart = alt.LayerChart(layer=[bars, notes, rule]).properties(
        title=title or "SNAT pressure per NAT public IP",
        width=560,
    )
    return layered
