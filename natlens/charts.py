"""Chart helpers: one ``chart_*`` function per analysis, each returning an altair chart.

Every helper takes a polars frame (flow records or an analysis result), aggregates it
in polars so the embedded data stays small whatever the input size (at most
:data:`MAX_ROWS` rows), and returns an ``alt.Chart`` (or a layered/concatenated chart).
Nothing here displays anything: show a chart in a notebook by leaving it as the last
expression of a cell, or write it with :func:`save_chart`.

Importing this module needs the ``charts`` extra (altair, vl-convert).
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from pathlib import Path
from typing import Any, Literal

import altair as alt
import polars as pl

from natlens._schema import FLOW_SCHEMA
from natlens._usage import TOTAL_COLUMNS as _TOTALS

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

Metric = Literal["bytes", "packets", "drops", "flows"]
Inventory = Mapping[str, str] | pl.DataFrame | None

# The column of the analyses' totals that each chart metric reads.
_METRIC_COLUMN: dict[str, str] = {
    "bytes": "bytes",
    "packets": "packets",
    "drops": "packets_dropped",
    "flows": "records",
}

_UNITS: tuple[tuple[str, float], ...] = (
    ("B", 1.0),
    ("KB", 1e3),
    ("MB", 1e6),
    ("GB", 1e9),
    ("TB", 1e12),
)

_METRIC_EXPR: dict[str, pl.Expr] = {
    "bytes": pl.col("bytes_sent").fill_null(0) + pl.col("bytes_received").fill_null(0),
    "packets": pl.col("packets_sent").fill_null(0) + pl.col("packets_received").fill_null(0),
    "drops": pl.col("packets_sent_dropped").fill_null(0)
    + pl.col("packets_received_dropped").fill_null(0),
    "flows": pl.lit(1, dtype=pl.Int64),
}
_METRIC_LABEL = {
    "bytes": "traffic",
    "packets": "packets",
    "drops": "dropped packets",
    "flows": "flow records",
}


def byte_unit(largest: float) -> tuple[str, float]:
    """Pick the decimal byte unit that shows ``largest`` as a readable number.

    Returns the unit's name and its size in bytes.

    Examples
    --------
    >>> byte_unit(3_500_000)
    ('MB', 1000000.0)
    >>> byte_unit(0)
    ('B', 1.0)
    """
    name, size = _UNITS[0]
    for unit_name, unit_size in _UNITS:
        if abs(largest) >= unit_size:
            name, size = unit_name, unit_size
    return name, size


def _human_bytes(column: str) -> pl.Expr:
    """A text column such as ``'1.23 GB'`` for a byte-count column, for tooltips."""
    value = pl.col(column).cast(pl.Float64)
    expr: Any = pl.when(value.abs() < 1e3).then(
        value.round(0).cast(pl.Int64).cast(pl.String) + pl.lit(" B")
    )
    for name, size in _UNITS[1:]:
        expr = expr.when(value.abs() < size * 1e3).then(
            (value / size).round(2).cast(pl.String) + pl.lit(f" {name}")
        )
    tb_name, tb_size = _UNITS[-1]
    result: pl.Expr = expr.otherwise(
        (value / tb_size).round(2).cast(pl.String) + pl.lit(f" {tb_name}")
    )
    return result


def _scaled(frame: pl.DataFrame, column: str, metric: str) -> tuple[pl.DataFrame, str]:
    """Add ``value`` (``column`` in a readable unit) and ``value_text`` for tooltips.

    Returns the frame and the axis title's unit (``'MB'``, ``'packets'``...).
    """
    if metric == "bytes":
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
            pl.col(column).cast(pl.String).alias("value_text"),
        ),
        _METRIC_LABEL[metric],
    )


def _check_metric(metric: str) -> None:
    if metric not in _METRIC_EXPR:
        raise ValueError(f"metric must be one of {sorted(_METRIC_EXPR)}, got {metric!r}")


def _collect(frame: pl.DataFrame | pl.LazyFrame) -> pl.DataFrame:
    return frame.collect() if isinstance(frame, pl.LazyFrame) else frame


def _require(frame: pl.DataFrame | pl.LazyFrame, columns: tuple[str, ...], what: str) -> None:
    names = frame.collect_schema().names()
    missing = [c for c in columns if c not in names]
    if missing:
        raise ValueError(f"{what}: the frame has no column(s) {missing}; it has {names}")


def _is_flows(frame: pl.DataFrame | pl.LazyFrame) -> bool:
    names = set(frame.collect_schema().names())
    return set(FLOW_SCHEMA.names()) <= names


def _names(inventory: Mapping[str, str] | pl.DataFrame | None) -> pl.DataFrame | None:
    """Normalise an inventory to a two-column frame ``ip``, ``name``."""
    if inventory is None:
        return None
    if isinstance(inventory, pl.DataFrame):
        cols = inventory.columns
        ip = next((c for c in ("ip", "source_ip", "private_ip", "address") if c in cols), None)
        name = next((c for c in ("vm", "vm_name", "name", "label") if c in cols), None)
        if ip is None or name is None:
            raise ValueError(
                f"inventory needs an IP column (ip/source_ip) and a name column (vm/name); "
                f"it has {cols}"
            )
        return inventory.select(pl.col(ip).cast(pl.String).alias("ip"), pl.col(name).alias("name"))
    return pl.DataFrame(
        {"ip": list(inventory.keys()), "name": list(inventory.values())},
        schema={"ip": pl.String, "name": pl.String},
    )


def _label(
    frame: pl.DataFrame, column: str, inventory: Mapping[str, str] | pl.DataFrame | None
) -> pl.DataFrame:
    """Add ``<column>_label``: the VM name where the inventory knows it, else the IP."""
    names = _names(inventory)
    label = f"{column}_label"
    if names is None:
        return frame.with_columns(pl.col(column).cast(pl.String).alias(label))
    joined = frame.join(
        names.unique("ip").rename({"ip": column, "name": "_name"}),
        on=column,
        how="left",
        maintain_order="left",
    )
    return joined.with_columns(
        pl.when(pl.col("_name").is_not_null())
        .then(pl.col("_name") + pl.lit(" (") + pl.col(column) + pl.lit(")"))
        .otherwise(pl.col(column))
        .alias(label)
    ).drop("_name")


def _guard(frame: pl.DataFrame, what: str) -> pl.DataFrame:
    if frame.height > MAX_ROWS:
        raise ValueError(
            f"{what}: {frame.height} rows after aggregation is more than a chart should embed "
            f"({MAX_ROWS}); use a coarser time step or a smaller top-N"
        )
    return frame


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


def _time_axis_format(start: datetime | None, end: datetime | None) -> str:
    if start is None or end is None or (end - start).total_seconds() <= 2 * 86400:
        return "%H:%M"
    return "%b %d %H:%M"


def chart_traffic_over_time(
    flows: pl.DataFrame | pl.LazyFrame,
    *,
    by: str | None = "source",
    metric: Metric = "bytes",
    n: int = 5,
    every: str = "1h",
    inventory: Inventory = None,
    title: str | None = None,
    brush: bool = False,
) -> alt.Chart:
    """Stacked area of traffic over time: the ``n`` busiest groups plus "other".

    The numbers come from :func:`natlens.traffic_over_time`.

    Parameters
    ----------
    flows
        Flow records (:data:`natlens.FLOW_SCHEMA`).
    by
        ``"source"``, ``"destination"``, ``"nat_ip"``, ``"gateway"`` or ``None`` (one
        series).
    metric
        ``bytes`` (both directions), ``packets``, ``drops`` or ``flows`` (records).
    n
        Groups kept by name; the rest add up as ``other``.
    every
        Time step, a polars duration such as ``"5m"``, ``"1h"``, ``"1d"``.
    inventory
        IP to VM name (a mapping, or :func:`natlens.read_inventory`'s frame): sources
        are labelled ``name (ip)``.
    brush
        Add an interval selection named ``brush`` on the time axis (linked views).

    Examples
    --------
    >>> import natlens, natlens.charts as nc
    >>> samples = natlens.sample_data()
    >>> flows = natlens.read_flowlogs(samples.flowlogs)
    >>> chart = nc.chart_traffic_over_time(flows, n=3, every="1h")
    >>> nc.embedded_rows(chart) <= 7 * 24 * 4
    True
    """
    from natlens._usage import traffic_over_time

    _check_metric(metric)
    column = _METRIC_COLUMN[metric]
    data = traffic_over_time(flows, every=every, by=by, n=n)
    key = next((c for c in data.columns if c not in _TOTALS and c != "time"), None)
    if key is None:
        data = data.with_columns(pl.lit("all traffic").alias("series"))
        order = ["all traffic"]
        legend = "traffic"
    else:
        labelled = _label(
            data.select(key).unique(maintain_order=True),
            key,
            inventory if key == "source_ip" else None,
        )
        data = data.join(labelled, on=key, how="left").rename({f"{key}_label": "series"})
        order = labelled.get_column(f"{key}_label").to_list()
        legend = key.replace("_", " ")
    data = _guard(data.select("time", "series", column), "chart_traffic_over_time")
    data, unit = _scaled(data, column, metric)
    start = data.get_column("time").min() if data.height else None
    end = data.get_column("time").max() if data.height else None
    what = _METRIC_LABEL[metric]
    chart: alt.Chart = (
        alt.Chart(data.select("time", "series", "value", "value_text"))
        .mark_area(interpolate="step-after")
        .encode(
            x=alt.X(
                "time:T",
                title="time (UTC)",
                axis=alt.Axis(format=_time_axis_format(start, end)),  # type: ignore[arg-type]
            ),
            y=alt.Y("value:Q", stack="zero", title=f"{what} per {every} ({unit})"),
            color=alt.Color("series:N", sort=order, title=legend, scale=_series_colors(order)),
            order=alt.Order("series:N"),
            tooltip=[
                alt.Tooltip("time:T", title="time (UTC)", format="%Y-%m-%d %H:%M"),
                alt.Tooltip("series:N", title=legend),
                alt.Tooltip("value_text:N", title=what),
            ],
        )
        .properties(
            title=title or f"{what.capitalize()} per {every}" + (f" by {legend}" if key else ""),
            width=640,
            height=260,
        )
    )
    if brush:
        brushed: alt.Chart = chart.add_params(alt.selection_interval(encodings=["x"], name="brush"))
        return brushed
    return chart


def _series_colors(order: list[str]) -> alt.Scale:
    """Category colours with ``other`` in grey."""
    palette = [
        "#4c78a8", "#f58518", "#e45756", "#72b7b2", "#54a24b",
        "#eeca3b", "#b279a2", "#ff9da6", "#9d755d", "#3b6e8f",
    ]  # fmt: skip
    colors, i = [], 0
    for name in order:
        if name == "other":
            colors.append("#bab0ac")
        else:
            colors.append(palette[i % len(palette)])
            i += 1
    return alt.Scale(domain=order, range=colors)


def chart_heatmap(
    flows: pl.DataFrame | pl.LazyFrame,
    *,
    metric: Metric = "bytes",
    title: str | None = None,
) -> alt.Chart:
    """Hour-of-day x day heatmap of traffic, to see daily rhythm and odd hours.

    Examples
    --------
    >>> import datetime as dt, polars as pl, natlens
    >>> flows = pl.DataFrame(
    ...     {"time": [dt.datetime(2025, 11, 4, 10, tzinfo=dt.UTC)], "bytes_sent": [5]},
    ... ).with_columns(bytes_received=pl.lit(0))
    >>> chart_heatmap(flows).to_dict()["mark"]["type"]
    'rect'
    """
    _check_metric(metric)
    _require(flows, ("time",), "chart_heatmap")
    data = (
        flows.lazy()
        .with_columns(_METRIC_EXPR[metric].alias("_m"))
        .group_by(
            pl.col("time").dt.date().alias("day"),
            pl.col("time").dt.hour().alias("hour"),
        )
        .agg(pl.col("_m").sum().alias("total"))
        .sort("day", "hour")
        .collect()
    )
    data = _guard(data, "chart_heatmap")
    data, unit = _scaled(data, "total", metric)
    what = _METRIC_LABEL[metric]
    chart: alt.Chart = (
        alt.Chart(data.with_columns(pl.col("day").cast(pl.String)))
        .mark_rect()
        .encode(
            x=alt.X("hour:O", title="hour of day (UTC)"),
            y=alt.Y("day:O", title="day"),
            color=alt.Color("value:Q", title=f"{what} ({unit})", scale=alt.Scale(scheme="blues")),
            tooltip=[
                alt.Tooltip("day:O", title="day"),
                alt.Tooltip("hour:O", title="hour (UTC)"),
                alt.Tooltip("value_text:N", title=what),
            ],
        )
        .properties(title=title or f"{what.capitalize()} by hour of day", width=480)
    )
    return chart


def chart_flow_map(
    flows: pl.DataFrame | pl.LazyFrame,
    *,
    metric: Metric = "bytes",
    top: int = 8,
    inventory: Inventory = None,
    destination_labels: Mapping[str, str] | None = None,
    title: str | None = None,
) -> alt.LayerChart:
    """Source -> NAT IP -> destination picture: who leaves through which public IP to where.

    Three columns of nodes joined by links whose width is the traffic. The ``top``
    sources and destinations are drawn; the rest are folded into ``other``.

    Parameters
    ----------
    inventory
        IP to VM name for the sources.
    destination_labels
        Destination IP to a label (for example a service tag from
        :func:`natlens.label_destinations`).

    Examples
    --------
    >>> import datetime as dt, polars as pl, natlens
    >>> t = dt.datetime(2025, 11, 4, 10, tzinfo=dt.UTC)
    >>> flows = pl.DataFrame(
    ...     {
    ...         "time": [t, t],
    ...         "source_ip": ["10.0.0.4", "10.0.0.5"],
    ...         "destination_ip": ["140.82.112.3", "20.60.1.1"],
    ...         "nat_gateway_ip": ["20.1.1.1", "20.1.1.1"],
    ...         "bytes_sent": [10, 20],
    ...         "bytes_received": [100, 0],
    ...     }
    ... )
    >>> len(chart_flow_map(flows, inventory={"10.0.0.4": "web-1"}).layer)
    2
    """
    _check_metric(metric)
    _require(flows, ("source_ip", "destination_ip", "nat_gateway_ip"), "chart_flow_map")
    lazy = flows.lazy().with_columns(_METRIC_EXPR[metric].alias("_m"))

    def leaders(column: str, n: int) -> list[str]:
        ranked = (
            lazy.group_by(column)
            .agg(pl.col("_m").sum())
            .sort(["_m", column], descending=[True, False])
            .head(n)
            .collect()
        )
        return [v for v in ranked.get_column(column).to_list() if v is not None]

    sources = leaders("source_ip", top)
    destinations = leaders("destination_ip", top)
    nat_ips = leaders("nat_gateway_ip", 16)
    folded = lazy.select(
        pl.when(pl.col("source_ip").is_in(sources))
        .then(pl.col("source_ip"))
        .otherwise(pl.lit("other"))
        .alias("source_ip"),
        pl.when(pl.col("nat_gateway_ip").is_in(nat_ips))
        .then(pl.col("nat_gateway_ip"))
        .otherwise(pl.lit("other"))
        .alias("nat_gateway_ip"),
        pl.when(pl.col("destination_ip").is_in(destinations))
        .then(pl.col("destination_ip"))
        .otherwise(pl.lit("other"))
        .alias("destination_ip"),
        "_m",
    )
    left = (
        folded.group_by("source_ip", "nat_gateway_ip")
        .agg(pl.col("_m").sum().alias("total"))
        .collect()
        .rename({"source_ip": "from", "nat_gateway_ip": "to"})
        .with_columns(from_col=pl.lit(0), to_col=pl.lit(1))
    )
    right = (
        folded.group_by("nat_gateway_ip", "destination_ip")
        .agg(pl.col("_m").sum().alias("total"))
        .collect()
        .rename({"nat_gateway_ip": "from", "destination_ip": "to"})
        .with_columns(from_col=pl.lit(1), to_col=pl.lit(2))
    )

    # Node labels and vertical positions, one column at a time, busiest on top.
    src_names = _label(pl.DataFrame({"source_ip": [*sources, "other"]}), "source_ip", inventory)
    src_label = dict(src_names.iter_rows())
    dst_label = {d: (destination_labels or {}).get(d, d) for d in destinations}
    dst_label = {d: (f"{lab} ({d})" if lab != d else d) for d, lab in dst_label.items()} | {
        "other": "other"
    }
    nodes_rows: list[dict[str, Any]] = []
    position: dict[tuple[int, str], float] = {}
    for col, keys, labels in (
        (0, [*sources, "other"], src_label),
        (1, [*nat_ips, "other"], {}),
        (2, [*destinations, "other"], dst_label),
    ):
        edges = left if col < 2 else right
        key_col = "from" if col == 0 else "to"
        if col == 1:
            used = set(left.get_column("to").to_list())
        else:
            used = set(edges.get_column(key_col).to_list())
        present = [k for k in keys if k in used]
        for rank, key in enumerate(present):
            y = (rank + 0.5) / max(len(present), 1)
            position[(col, key)] = y
            nodes_rows.append({"column": col, "y": y, "label": labels.get(key, key), "key": key})
    edges = pl.concat([left, right])
    edges = edges.filter(pl.col("total") > 0) if edges.height else edges
    largest = float(edges.get_column("total").max() or 0) if edges.height else 0.0  # type: ignore[arg-type]
    edge_rows: list[dict[str, Any]] = []
    for i, (frm, to, total, from_col, to_col) in enumerate(
        edges.select("from", "to", "total", "from_col", "to_col").iter_rows()
    ):
        for x, key in ((from_col, frm), (to_col, to)):
            edge_rows.append(
                {
                    "edge": i,
                    "x": x,
                    "y": position.get((x, key), 0.0),
                    "total": total,
                    "link": f"{frm} -> {to}",
                }
            )
    edge_frame = pl.DataFrame(
        edge_rows,
        schema={
            "edge": pl.Int64,
            "x": pl.Int64,
            "y": pl.Float64,
            "total": pl.Int64,
            "link": pl.String,
        },
    )
    edge_frame = _guard(edge_frame, "chart_flow_map")
    edge_frame, unit = _scaled(edge_frame, "total", metric)
    what = _METRIC_LABEL[metric]
    links = (
        alt.Chart(edge_frame.select("edge", "x", "y", "value", "value_text", "link"))
        .mark_line(opacity=0.45, color="#4c78a8")
        .encode(
            x=alt.X(
                "x:Q",
                axis=alt.Axis(
                    values=[0, 1, 2],
                    labelExpr="['source', 'NAT public IP', 'destination'][datum.value]",
                    title=None,
                    grid=False,
                ),
                scale=alt.Scale(domain=[-0.35, 2.35]),
            ),
            y=alt.Y("y:Q", axis=None, scale=alt.Scale(domain=[1, 0])),
            detail="edge:N",
            strokeWidth=alt.StrokeWidth(
                "value:Q",
                scale=alt.Scale(
                    range=[1, 18],
                    domain=[
                        0,
                        largest / byte_unit(largest)[1] if metric == "bytes" else largest or 1,
                    ],
                ),
                legend=alt.Legend(title=f"{what} ({unit})"),
            ),
            tooltip=[alt.Tooltip("link:N", title="link"), alt.Tooltip("value_text:N", title=what)],
        )
    )
    labels = (
        alt.Chart(
            pl.DataFrame(
                nodes_rows,
                schema={"column": pl.Int64, "y": pl.Float64, "label": pl.String, "key": pl.String},
            )
        )
        .mark_text(fontSize=11, fontWeight="bold")
        .encode(
            x="column:Q",
            y="y:Q",
            text="label:N",
            tooltip=[alt.Tooltip("label:N", title="node")],
        )
    )
    layered: alt.LayerChart = alt.LayerChart(layer=[links, labels]).properties(
        title=title or f"Who leaves through which NAT IP to where ({what})",
        width=720,
        height=max(220, 34 * (top + 1)),
    )
    return layered


def chart_top(
    table: pl.DataFrame,
    *,
    metric: Metric = "bytes",
    n: int = 10,
    inventory: Inventory = None,
    labels: Mapping[str, str] | None = None,
    title: str | None = None,
) -> alt.Chart:
    """Horizontal bars of a top-N table: :func:`natlens.top_talkers` or
    :func:`natlens.top_destinations` output.

    Bytes bars are split into sent and received.

    Parameters
    ----------
    table
        One row per ``source_ip`` or ``destination_ip`` (or ``nat_gateway_ip``) with
        the analyses' totals.
    inventory
        IP to VM name, for sources.
    labels
        Key to a label (for example destination IP to service tag).

    Examples
    --------
    >>> import natlens
    >>> flows = natlens.read_flowlogs(natlens.sample_data().flowlogs)
    >>> chart = chart_top(natlens.top_talkers(flows, n=5))
    >>> chart.to_dict()["mark"]["type"]
    'bar'
    """
    _check_metric(metric)
    key = next(
        (c for c in ("source_ip", "destination_ip", "nat_gateway_ip") if c in table.columns), None
    )
    if key is None:
        raise ValueError(
            "chart_top: expected a top_talkers/top_destinations table with a source_ip, "
            f"destination_ip or nat_gateway_ip column; it has {table.columns}"
        )
    column = _METRIC_COLUMN[metric]
    _require(table, (column,), "chart_top")
    ranked = table.sort([column, key], descending=[True, False]).head(n)
    ranked = _label(ranked, key, inventory if key == "source_ip" else None)
    if labels:
        ranked = ranked.with_columns(
            pl.col(key).replace_strict(labels, default=None, return_dtype=pl.String).alias("_tag")
        ).with_columns(
            pl.when(pl.col("_tag").is_not_null())
            .then(pl.col("_tag") + pl.lit(" (") + pl.col(key) + pl.lit(")"))
            .otherwise(pl.col(f"{key}_label"))
            .alias(f"{key}_label")
        )
    order = ranked.get_column(f"{key}_label").to_list()
    what = _METRIC_LABEL[metric]
    noun = key.replace("_ip", "").replace("_", " ")
    if metric == "bytes" and {"bytes_sent", "bytes_received"} <= set(ranked.columns):
        long = ranked.unpivot(
            index=[f"{key}_label", column],
            on=["bytes_sent", "bytes_received"],
            variable_name="direction",
            value_name="part",
        ).with_columns(pl.col("direction").str.replace("bytes_", ""))
        unit, size = byte_unit(float(long.get_column(column).max() or 0))  # type: ignore[arg-type]
        long = long.with_columns(
            (pl.col("part") / size).alias("value"),
            _human_bytes("part").alias("value_text"),
            _human_bytes(column).alias("total_text"),
        ).rename({f"{key}_label": "label"})
        color = alt.Color(
            "direction:N",
            title="direction",
            scale=alt.Scale(domain=["sent", "received"], range=["#4c78a8", "#f58518"]),
        )
        tooltip = [
            alt.Tooltip("label:N", title=noun),
            alt.Tooltip("direction:N"),
            alt.Tooltip("value_text:N", title=what),
            alt.Tooltip("total_text:N", title="total"),
        ]
        data = long.select("label", "direction", "value", "value_text", "total_text")
    else:
        data, unit = _scaled(ranked.rename({f"{key}_label": "label"}), column, metric)
        data = data.select("label", "value", "value_text")
        color = alt.value("#4c78a8")  # type: ignore[assignment]
        tooltip = [alt.Tooltip("label:N", title=noun), alt.Tooltip("value_text:N", title=what)]
    chart: alt.Chart = (
        alt.Chart(data)
        .mark_bar()
        .encode(
            y=alt.Y("label:N", sort=order, title=None),
            x=alt.X("value:Q", title=f"{what} ({unit})", stack="zero"),
            color=color,
            tooltip=tooltip,
        )
        .properties(title=title or f"Top {len(order)} {noun}s by {what}", width=520)
    )
    return chart


def chart_drops_over_time(
    flows: pl.DataFrame | pl.LazyFrame,
    *,
    every: str = "10m",
    by: str | None = "source",
    n: int = 5,
    inventory: Inventory = None,
    title: str | None = None,
) -> alt.Chart:
    """Dropped packets (sent + received, on established connections) over time.

    Narrow ``flows`` first (for example with :func:`natlens.find_flows`) to look at one
    VM and destination. Only buckets with drops are drawn, so the chart stays small.

    Examples
    --------
    >>> import natlens
    >>> flows = natlens.read_flowlogs(natlens.sample_data().flowlogs)
    >>> chart = chart_drops_over_time(flows, every="1h")
    >>> chart.to_dict()["mark"]["type"]
    'bar'
    """
    from natlens._usage import traffic_over_time

    data = traffic_over_time(flows, every=every, by=by, n=n).filter(pl.col("packets_dropped") > 0)
    key = next((c for c in data.columns if c not in _TOTALS and c != "time"), None)
    if key is None:
        data = data.with_columns(pl.lit("all").alias("series"))
        order = ["all"]
    else:
        labelled = _label(
            data.select(key).unique().sort(key), key, inventory if key == "source_ip" else None
        )
        data = data.join(labelled, on=key, how="left").rename({f"{key}_label": "series"})
        order = labelled.get_column(f"{key}_label").to_list()
    data = _guard(data, "chart_drops_over_time")
    legend = key.replace("_", " ") if key else "traffic"
    chart: alt.Chart = (
        alt.Chart(
            data.select(
                "time",
                "series",
                pl.col("packets_dropped").alias("dropped"),
                pl.col("packets").alias("packets"),
                (pl.col("packets_dropped") / pl.col("packets").clip(lower_bound=1) * 100)
                .round(2)
                .alias("drop_pct"),
            )
        )
        .mark_bar(color="#e45756")
        .encode(
            x=alt.X("time:T", title="time (UTC)"),
            y=alt.Y("dropped:Q", title=f"dropped packets per {every}", stack="zero"),
            color=alt.Color("series:N", sort=order, title=legend, scale=_series_colors(order)),
            tooltip=[
                alt.Tooltip("time:T", title="time (UTC)", format="%Y-%m-%d %H:%M"),
                alt.Tooltip("series:N", title=legend),
                alt.Tooltip("dropped:Q", title="dropped packets", format=","),
                alt.Tooltip("drop_pct:Q", title="% of packets"),
            ],
        )
        .properties(
            title=title or "Packets dropped by the gateway on established connections",
            width=640,
            height=220,
        )
    )
    return chart


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
    _check_metric(metric)
    _require(buckets, ("time", "actual", "expected", "is_spike"), "chart_spike")
    data = buckets.sort("time")
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
    )
    largest = float(data.get_column("actual").max() or 0) if data.height else 0.0  # type: ignore[arg-type]
    unit, size = byte_unit(largest) if metric == "bytes" else (_METRIC_LABEL[metric], 1.0)
    ratio = pl.col("ratio") if "ratio" in data.columns else pl.col("actual") / pl.col("expected")
    data = data.select(
        "time",
        "is_spike",
        (pl.col("actual") / size).alias("actual"),
        (pl.col("expected") / size).alias("expected"),
        (pl.col("low") / size).alias("low"),
        (pl.col("high") / size).alias("high"),
        ratio.round(1).alias("ratio"),
        (_human_bytes("actual") if metric == "bytes" else pl.col("actual").cast(pl.String)).alias(
            "actual_text"
        ),
    )
    what = _METRIC_LABEL[metric]
    x = alt.X("time:T", title="time (UTC)")
    base = alt.Chart(data)
    band = base.mark_area(opacity=0.3, color="#9ecae9").encode(
        x=x, y=alt.Y("low:Q", title=f"{what} ({unit})"), y2="high:Q"
    )
    expected = base.mark_line(color="#4c78a8", strokeDash=[4, 3]).encode(x=x, y="expected:Q")
    actual = base.mark_line(color="#333333").encode(
        x=x,
        y="actual:Q",
        tooltip=[
            alt.Tooltip("time:T", title="time (UTC)", format="%Y-%m-%d %H:%M"),
            alt.Tooltip("actual_text:N", title=what),
            alt.Tooltip("ratio:Q", title="x usual"),
        ],
    )
    spikes = data.filter(pl.col("is_spike"))
    top = spikes.sort("actual", descending=True).head(1)
    marks = (
        alt.Chart(spikes.with_columns((pl.col("ratio").cast(pl.String) + "x usual").alias("note")))
        .mark_point(color="#e45756", filled=True, size=70)
        .encode(
            x=x,
            y="actual:Q",
            tooltip=[
                alt.Tooltip("time:T", title="spike (UTC)", format="%Y-%m-%d %H:%M"),
                alt.Tooltip("actual_text:N", title=what),
                alt.Tooltip("note:N", title="ratio"),
            ],
        )
    )
    note = (
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
        .mark_text(align="left", dx=8, dy=-8, color="#e45756", fontWeight="bold")
        .encode(x=x, y="actual:Q", text="note:N")
    )
    layers: list[Any] = [band, expected, actual, marks + note]
    if events is not None:
        _require(events, ("start", "end", "extra_bytes", "extra_cost", "currency"), "chart_spike")
        shaded = events.select(
            "start",
            "end",
            _human_bytes("extra_bytes").alias("extra_text"),
            (
                pl.col("extra_cost").round(2).cast(pl.String) + pl.lit(" ") + pl.col("currency")
            ).alias("cost_text"),
        )
        window = (
            alt.Chart(_guard(shaded, "chart_spike"))
            .mark_rect(color="#e45756", opacity=0.12)
            .encode(
                x=alt.X("start:T", title="time (UTC)"),
                x2="end:T",
                tooltip=[
                    alt.Tooltip("start:T", title="spike from (UTC)", format="%Y-%m-%d %H:%M"),
                    alt.Tooltip("end:T", title="to (UTC)", format="%Y-%m-%d %H:%M"),
                    alt.Tooltip("extra_text:N", title="extra traffic"),
                    alt.Tooltip("cost_text:N", title="extra cost"),
                ],
            )
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


def chart_cost_breakdown(
    costs: pl.DataFrame,
    *,
    n: int = 10,
    inventory: Inventory = None,
    title: str | None = None,
) -> alt.Chart:
    """Data processing cost: bars per group, or per period when ``costs`` has ``time``.

    Parameters
    ----------
    costs
        :func:`natlens.cost` output (``by=`` a column or ``every=`` a period), or
        :func:`natlens.explain_spike` output (``delta_cost`` per source/destination).

    Examples
    --------
    >>> import natlens
    >>> flows = natlens.read_flowlogs(natlens.sample_data().flowlogs)
    >>> table = natlens.cost(flows, price_per_gb=0.045, currency="USD", by="source_ip")
    >>> chart_cost_breakdown(table, n=5).to_dict()["mark"]["type"]
    'bar'
    """
    value = "delta_cost" if "delta_cost" in costs.columns else "cost"
    _require(costs, (value, "currency"), "chart_cost_breakdown")
    currency = str(costs.get_column("currency").drop_nulls().first() or "") if costs.height else ""
    what = "extra cost" if value == "delta_cost" else "cost"
    if "time" in costs.columns:
        data = _guard(costs.sort("time"), "chart_cost_breakdown")
        gb = pl.col("gb") if "gb" in data.columns else pl.col("bytes") / 1e9
        periods: alt.Chart = (
            alt.Chart(
                data.select(
                    pl.col("time").dt.strftime("%Y-%m-%d %H:%M").alias("period"),
                    pl.col(value).alias("cost"),
                    gb.alias("gb"),
                )
            )
            .mark_bar()
            .encode(
                x=alt.X(
                    "period:O",
                    title="period start (UTC)",
                    axis=alt.Axis(labelAngle=-40, labelLimit=200),
                ),
                y=alt.Y("cost:Q", title=f"{what} ({currency})"),
                tooltip=[
                    alt.Tooltip("period:O", title="period (UTC)"),
                    alt.Tooltip("gb:Q", title="GB processed", format=",.2f"),
                    alt.Tooltip("cost:Q", title=f"{what} ({currency})", format=",.2f"),
                ],
            )
            .properties(title=title or f"Data processing {what} per period", width=560)
        )
        return periods
    keys = [
        c
        for c in ("source_ip", "destination_ip", "nat_gateway_ip", "resource_id")
        if c in costs.columns
    ]
    if not keys:
        data = costs.with_columns(pl.lit("total").alias("label"))
    else:
        data = costs
        if "source_ip" in keys:
            data = _label(data, "source_ip", inventory).with_columns(
                pl.col("source_ip_label").alias("source_ip")
            )
        data = data.with_columns(
            pl.concat_str([pl.col(k).fill_null("?") for k in keys], separator=" -> ").alias("label")
        )
    ranked = data.sort(value, descending=True)
    if ranked.height > n:
        rest = ranked.slice(n)
        ranked = pl.concat(
            [
                ranked.head(n).select("label", value, "bytes"),
                pl.DataFrame(
                    {
                        "label": [f"other ({rest.height})"],
                        value: [rest.get_column(value).sum()],
                        "bytes": [rest.get_column("bytes").sum()],
                    },
                    schema={"label": pl.String, value: pl.Float64, "bytes": pl.Int64},
                ),
            ],
            how="vertical_relaxed",
        )
    ranked = ranked.select(
        "label", pl.col(value).alias("cost"), _human_bytes("bytes").alias("bytes_text")
    )
    order = ranked.get_column("label").to_list()
    chart: alt.Chart = (
        alt.Chart(ranked)
        .mark_bar(color="#54a24b")
        .encode(
            y=alt.Y("label:N", sort=order, title=None),
            x=alt.X("cost:Q", title=f"{what} ({currency})"),
            tooltip=[
                alt.Tooltip("label:N", title=" -> ".join(keys) or "total"),
                alt.Tooltip("bytes_text:N", title="bytes processed"),
                alt.Tooltip("cost:Q", title=f"{what} ({currency})", format=",.2f"),
            ],
        )
        .properties(title=title or f"Data processing {what} breakdown", width=520)
    )
    return chart


def chart_allowlist_violations(
    violations: pl.DataFrame,
    *,
    inventory: Inventory = None,
    title: str | None = None,
) -> alt.Chart:
    """When each unapproved (source, destination) pair was active, sized by its bytes.

    Parameters
    ----------
    violations
        :func:`natlens.check_allowlist` output: ``source_ip, destination_ip,
        first_seen, last_seen, records, bytes``.

    Examples
    --------
    >>> import natlens
    >>> samples = natlens.sample_data()
    >>> flows = natlens.read_flowlogs(samples.flowlogs)
    >>> bad = natlens.check_allowlist(
    ...     flows,
    ...     samples.allowlist,
    ...     service_tags=samples.service_tags,
    ...     resolver=natlens.read_hostnames(samples.hostnames),
    ... )
    >>> chart_allowlist_violations(bad).to_dict()["mark"]["type"]
    'rule'
    """
    _require(
        violations,
        ("source_ip", "destination_ip", "first_seen", "last_seen", "records", "bytes"),
        "chart_allowlist_violations",
    )
    data = _guard(violations.sort("bytes", descending=True), "chart_allowlist_violations")
    data = _label(data, "source_ip", inventory).with_columns(
        (pl.col("source_ip_label") + pl.lit(" -> ") + pl.col("destination_ip")).alias("pair"),
        _human_bytes("bytes").alias("bytes_text"),
    )
    order = data.get_column("pair").to_list()
    chart: alt.Chart = (
        alt.Chart(data.select("pair", "first_seen", "last_seen", "records", "bytes", "bytes_text"))
        .mark_rule(strokeWidth=8, color="#e45756")
        .encode(
            y=alt.Y("pair:N", sort=order, title=None),
            x=alt.X("first_seen:T", title="active (UTC)"),
            x2="last_seen:T",
            opacity=alt.Opacity("bytes:Q", legend=None, scale=alt.Scale(range=[0.5, 1.0])),
            tooltip=[
                alt.Tooltip("pair:N", title="source -> destination"),
                alt.Tooltip("first_seen:T", title="first seen (UTC)", format="%Y-%m-%d %H:%M"),
                alt.Tooltip("last_seen:T", title="last seen (UTC)", format="%Y-%m-%d %H:%M"),
                alt.Tooltip("records:Q", format=","),
                alt.Tooltip("bytes_text:N", title="traffic"),
            ],
        )
        .properties(
            title=title or f"Traffic to destinations not on the allowlist ({data.height} pairs)",
            width=560,
        )
    )
    return chart


def chart_metrics(
    metrics: pl.DataFrame | pl.LazyFrame,
    metric: str,
    *,
    every: str = "15m",
    connection_state: str | None = None,
    start: datetime | None = None,
    end: datetime | None = None,
    title: str | None = None,
) -> alt.LayerChart:
    """A gateway platform metric over time, one line per gateway (and dimension value).

    ``DatapathAvailability`` is averaged per step, with the 90% alert line drawn; the
    other metrics are summed per step.

    Parameters
    ----------
    metrics
        :data:`natlens.METRICS_SCHEMA` rows (:func:`natlens.read_metrics`).
    metric
        The REST name, for example ``SNATConnectionCount``.
    connection_state
        For ``SNATConnectionCount``: ``Attempted`` or ``Failed`` (``None``: both lines).

    Examples
    --------
    >>> import natlens
    >>> metrics = natlens.read_metrics(natlens.sample_data().metrics)
    >>> chart = chart_metrics(metrics, "SNATConnectionCount", connection_state="Failed")
    >>> len(chart.layer)
    2
    """
    _require(metrics, ("time", "resource_id", "metric", "connection_state", "value"), "metrics")
    lazy = metrics.lazy().filter(pl.col("metric") == metric)
    if connection_state is not None:
        lazy = lazy.filter(pl.col("connection_state") == connection_state)
    if start is not None:
        lazy = lazy.filter(pl.col("time") >= start)
    if end is not None:
        lazy = lazy.filter(pl.col("time") < end)
    average = metric == "DatapathAvailability"
    per_minute = lazy.group_by("time", "resource_id", "connection_state").agg(
        pl.col("value").mean() if average else pl.col("value").sum()
    )
    data = (
        per_minute.group_by(
            pl.col("time").dt.truncate(every),
            pl.col("resource_id").str.split("/").list.last().str.to_lowercase().alias("gateway"),
            "connection_state",
        )
        .agg(pl.col("value").mean() if average else pl.col("value").sum())
        .with_columns(
            pl.when(pl.col("connection_state").is_not_null())
            .then(pl.col("gateway") + pl.lit(" ") + pl.col("connection_state"))
            .otherwise(pl.col("gateway"))
            .alias("series")
        )
        .sort("time", "series")
        .collect()
    )
    if data.is_empty():
        raise ValueError(f"chart_metrics: no {metric!r} rows in the metrics for this selection")
    data = _guard(data.select("time", "series", "value"), "chart_metrics")
    unit = "%" if average else f"per {every}"
    line = (
        alt.Chart(data)
        .mark_line(interpolate="step-after")
        .encode(
            x=alt.X("time:T", title="time (UTC)"),
            y=alt.Y("value:Q", title=f"{metric} ({unit})"),
            color=alt.Color("series:N", title="gateway"),
            tooltip=[
                alt.Tooltip("time:T", title="time (UTC)", format="%Y-%m-%d %H:%M"),
                alt.Tooltip("series:N", title="gateway"),
                alt.Tooltip("value:Q", title=metric, format=",.2f"),
            ],
        )
    )
    threshold = 90.0 if average else 0.0
    rule = (
        alt.Chart(pl.DataFrame({"threshold": [threshold]}))
        .mark_rule(color="#e45756", strokeDash=[4, 3])
        .encode(y="threshold:Q")
    )
    layered: alt.LayerChart = alt.LayerChart(layer=[line, rule]).properties(
        title=title or f"{metric}" + (f" ({connection_state})" if connection_state else ""),
        width=640,
        height=200,
    )
    return layered


def chart_nat_ip_usage(usage: pl.DataFrame, *, title: str | None = None) -> alt.Chart:
    """Each NAT public IP's share of its gateway's records, IPv4 and IPv6 apart.

    Parameters
    ----------
    usage
        :func:`natlens.nat_ip_usage` output. A bar far above the others (``imbalance``
        well over 1.0) is an IP carrying more than its fair share of connections.

    Examples
    --------
    >>> import natlens
    >>> flows = natlens.read_flowlogs(natlens.sample_data().flowlogs)
    >>> chart_nat_ip_usage(natlens.nat_ip_usage(flows)).to_dict()["mark"]["type"]
    'bar'
    """
    _require(
        usage,
        ("resource_id", "nat_gateway_ip", "ip_version", "records", "share", "imbalance"),
        "chart_nat_ip_usage",
    )
    data = _guard(usage, "chart_nat_ip_usage").select(
        pl.col("resource_id").str.split("/").list.last().str.to_lowercase().alias("gateway"),
        "nat_gateway_ip",
        ("IPv" + pl.col("ip_version").cast(pl.String)).alias("version"),
        "records",
        (pl.col("share") * 100).round(1).alias("share"),
        pl.col("imbalance").round(2),
        _human_bytes("bytes").alias("bytes_text") if "bytes" in usage.columns else pl.lit(""),
    )
    chart: alt.Chart = (
        alt.Chart(data)
        .mark_bar()
        .encode(
            y=alt.Y("nat_gateway_ip:N", title=None, sort=None),
            x=alt.X(
                "share:Q",
                title="share of the gateway's records (%)",
                scale=alt.Scale(domain=[0, 100]),
            ),
            color=alt.Color("gateway:N", title="gateway"),
            row=alt.Row("version:N", title=None),
            tooltip=[
                alt.Tooltip("gateway:N"),
                alt.Tooltip("nat_gateway_ip:N", title="NAT IP"),
                alt.Tooltip("records:Q", format=","),
                alt.Tooltip("share:Q", title="share (%)"),
                alt.Tooltip("imbalance:Q", title="imbalance (1.0 = fair)"),
            ],
        )
        .properties(title=title or "NAT public IP utilisation", width=420)
        .resolve_scale(y="independent")
    )
    return chart
