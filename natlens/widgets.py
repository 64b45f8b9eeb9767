"""Dashboards for JupyterLab: thin ipywidgets views over the natlens analyses.

- :class:`FilterState` is the whole state of a filter: a small immutable value that
  code and tests set and read (``panel.state = panel.state.replace(metric="packets")``).
- :class:`FilterPanel` edits a :class:`FilterState` (time range, gateway, NAT IP,
  sources by VM name, destinations as IP/CIDR/service tag, metric).
- :class:`Dashboard` joins a panel, a traffic chart whose time brush narrows the tables
  (altair's ``JupyterChart`` hands the selection to Python) and the top-N tables.
- :class:`TroubleshootWidget` walks the troubleshooting path for a chosen VM and
  destination and shows each step's verdict and evidence.

Long loads show progress: ``natlens.read_flowlogs(..., progress=True)`` draws a
progress bar widget in JupyterLab.

Each object shows itself when it is the last expression of a cell; its ipywidgets tree
is ``obj.widget``. Importing this module needs the ``lab`` extra.
"""

from __future__ import annotations

import dataclasses
import html
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

import altair as alt
import ipywidgets as w
import polars as pl

from natlens import charts
from natlens._html import frame_to_html
from natlens._ip import is_address_like, longest_prefix_match, resolve_targets
from natlens._time import time_filter
from natlens._troubleshoot import Diagnosis, diagnose
from natlens._usage import top_destinations, top_talkers

__all__ = [
    "Dashboard",
    "FilterPanel",
    "FilterState",
    "TroubleshootWidget",
    "enable_offline_charts",
    "frame_to_html",
]

Metric = Literal["bytes", "packets", "drops", "flows"]
_METRICS: tuple[Metric, ...] = ("bytes", "packets", "drops", "flows")


def enable_offline_charts() -> None:
    """Render altair charts in notebooks with bundled JavaScript: no CDN, works offline.

    Charts then display as interactive ``JupyterChart`` widgets whose Vega libraries
    come from vl-convert instead of a CDN.
    """
    alt.renderers.enable("jupyter", offline=True)


@dataclass(frozen=True)
class FilterState:
    """What a dashboard shows: an immutable value, compared and copied freely.

    Parameters
    ----------
    start, end
        UTC time window, ``start`` inclusive, ``end`` exclusive; ``None`` is open.
    gateway
        A NAT gateway resource id (case-insensitive); ``None`` for all.
    nat_ips
        NAT public IPs to keep; empty for all.
    sources
        Source (VM private) IPs to keep; empty for all.
    destinations
        Destination IPs, CIDRs (``140.82.112.0/20``) or labels such as a service tag
        (matched against the ``destination_labels`` given to :meth:`apply`).
    metric
        ``bytes``, ``packets``, ``drops`` or ``flows``.

    Examples
    --------
    >>> state = FilterState(sources=("10.0.0.4",))
    >>> state.replace(metric="packets").metric
    'packets'
    >>> state == FilterState(sources=("10.0.0.4",))
    True
    """

    start: datetime | None = None
    end: datetime | None = None
    gateway: str | None = None
    nat_ips: tuple[str, ...] = ()
    sources: tuple[str, ...] = ()
    destinations: tuple[str, ...] = ()
    metric: Metric = "bytes"

    def __post_init__(self) -> None:
        if self.metric not in _METRICS:
            raise ValueError(f"FilterState: metric must be one of {_METRICS}, got {self.metric!r}")
        for name in ("start", "end"):
            value = getattr(self, name)
            if value is not None and value.tzinfo is None:
                raise ValueError(f"FilterState: {name} must be timezone-aware (UTC), got {value}")
        if self.start is not None and self.end is not None and self.end <= self.start:
            raise ValueError(f"FilterState: end {self.end} is not after start {self.start}")
        for name in ("nat_ips", "sources", "destinations"):
            value = getattr(self, name)
            if isinstance(value, str) or not isinstance(value, tuple):
                raise TypeError(f"FilterState: {name} must be a tuple of strings, got {value!r}")

    def replace(self, **changes: Any) -> FilterState:
        """Return a copy with some fields changed."""
        return dataclasses.replace(self, **changes)

    def apply(
        self,
        flows: pl.DataFrame | pl.LazyFrame,
        *,
        destination_labels: Mapping[str, str] | None = None,
    ) -> pl.LazyFrame:
        """Filter flow records to this state.

        ``destination_labels`` maps destination IPs to labels (for example service tags
        from :func:`natlens.label_destinations`); a destination entry that is neither an
        IP nor a CIDR is looked up there.

        Examples
        --------
        >>> import datetime as dt, polars as pl
        >>> flows = pl.DataFrame(
        ...     {"destination_ip": ["140.82.112.3", "20.60.1.1"], "source_ip": ["10.0.0.4"] * 2}
        ... )
        >>> FilterState(destinations=("140.82.112.0/20",)).apply(flows).collect().height
        1
        """
        window = time_filter(self.start, self.end)
        lazy = flows.lazy() if window is None else flows.lazy().filter(window)
        if self.gateway:
            lazy = lazy.filter(pl.col("resource_id").str.to_uppercase() == self.gateway.upper())
        if self.nat_ips:
            lazy = lazy.filter(pl.col("nat_gateway_ip").is_in(self.nat_ips))
        if self.sources:
            lazy = lazy.filter(pl.col("source_ip").is_in(self.sources))
        if self.destinations:
            lazy = lazy.join(
                _wanted_destinations(lazy, self.destinations, destination_labels),
                on="destination_ip",
                how="semi",
            )
        return lazy

    def describe(self) -> str:
        """One line saying what the filter keeps, for titles and logs.

        Examples
        --------
        >>> FilterState().describe()
        'all traffic, bytes'
        """
        parts: list[str] = []
        if self.start or self.end:
            fmt = "%Y-%m-%d %H:%M"
            start = self.start.strftime(fmt) if self.start else "..."
            end = self.end.strftime(fmt) if self.end else "..."
            parts.append(f"{start} to {end} UTC")
        if self.gateway:
            parts.append(f"gateway {self.gateway.rsplit('/', 1)[-1]}")
        for label, values in (
            ("NAT IP", self.nat_ips),
            ("source", self.sources),
            ("destination", self.destinations),
        ):
            if values:
                parts.append(f"{label} {', '.join(values)}")
        return f"{'; '.join(parts) or 'all traffic'}, {self.metric}"


def _wanted_destinations(
    flows: pl.LazyFrame, entries: Iterable[str], labels: Mapping[str, str] | None
) -> pl.LazyFrame:
    """The destination IPs of ``flows`` named by ``entries``: IPs, CIDRs or labels.

    IPs and CIDRs go through the analyses' vectorised prefix match; any other entry is a
    label (a service tag, say) looked up in ``labels`` (destination IP -> label).
    """
    texts = [entry.strip() for entry in entries if entry.strip()]
    addresses = [text for text in texts if is_address_like(text)]
    names = {text.lower() for text in texts if not is_address_like(text)}
    if names and labels is None:
        raise ValueError(
            f"destinations {sorted(names)} are not IPs or CIDRs; pass destination_labels "
            "(for example from natlens.label_destinations) to filter by service tag"
        )
    labelled = [ip for ip, label in (labels or {}).items() if label and label.lower() in names]
    parts = [pl.LazyFrame({"destination_ip": labelled}, schema={"destination_ip": pl.String})]
    if addresses:
        prefixes = resolve_targets(addresses, argument="destinations")
        matched = longest_prefix_match(flows, prefixes, column="destination_ip")
        parts.append(matched.select("destination_ip"))
    return pl.concat(parts, how="vertical")


class _View:
    """Base for natlens widgets: composition over ipywidgets, displays as ``self.widget``."""

    widget: Any

    def _repr_mimebundle_(self, **kwargs: Any) -> Any:
        return self.widget._repr_mimebundle_(**kwargs)


def _time_grid(first: datetime, last: datetime, max_steps: int = 240) -> list[datetime]:
    """Slider stops covering [first, last], on round steps, at most about ``max_steps``."""
    span = max((last - first).total_seconds(), 60.0)
    for minutes in (1, 5, 10, 15, 30, 60, 120, 180, 360, 720, 1440, 10080):
        if span / (minutes * 60) <= max_steps:
            break
    step = timedelta(minutes=minutes)
    epoch = datetime(2000, 1, 1, tzinfo=UTC)
    start = epoch + ((first - epoch) // step) * step
    grid = [start]
    while grid[-1] <= last:
        grid.append(grid[-1] + step)
    return grid


class FilterPanel(_View):
    """A filter panel over a flow-log frame; its state is a :class:`FilterState`.

    Parameters
    ----------
    flows
        The flow records the panel filters; its options (time range, gateways, NAT IPs,
        sources) come from them.
    inventory
        IP to VM name, so sources are listed by name.

    Examples
    --------
    >>> import datetime as dt, polars as pl, natlens
    >>> t = dt.datetime(2025, 11, 4, 10, tzinfo=dt.UTC)
    >>> flows = pl.DataFrame(
    ...     {"time": [t], "source_ip": ["10.0.0.4"], "nat_gateway_ip": ["20.1.1.1"]},
    ...     schema_overrides={"time": natlens.FLOW_SCHEMA["time"]},
    ... ).with_columns(resource_id=pl.lit("/SUBSCRIPTIONS/S/NATGATEWAYS/GW"))
    >>> panel = FilterPanel(flows, inventory={"10.0.0.4": "web-1"})
    >>> panel.state = panel.state.replace(sources=("10.0.0.4",))
    >>> panel.state.sources
    ('10.0.0.4',)
    """

    def __init__(
        self,
        flows: pl.DataFrame | pl.LazyFrame,
        *,
        inventory: Mapping[str, str] | None = None,
    ) -> None:
        lazy = flows.lazy()
        bounds = lazy.select(
            pl.col("time").min().alias("first"), pl.col("time").max().alias("last")
        ).collect()
        first, last = bounds.row(0)
        now = datetime.now(UTC).replace(second=0, microsecond=0)
        self._grid = _time_grid(first or now, last or now)
        fmt = "%Y-%m-%d %H:%M"
        self._time = w.SelectionRangeSlider(
            options=[(t.strftime(fmt), t) for t in self._grid],
            index=(0, len(self._grid) - 1),
            description="Time (UTC)",
            continuous_update=False,
            layout=w.Layout(width="95%"),
            style={"description_width": "initial"},
        )

        def distinct(column: str) -> list[str]:
            values = lazy.select(pl.col(column).unique().sort()).collect().get_column(column)
            return [v for v in values.to_list() if v is not None]

        names = dict(inventory or {})
        self._gateway = w.Dropdown(
            options=[("all gateways", None)]
            + [(g.rsplit("/", 1)[-1], g) for g in distinct("resource_id")],
            description="Gateway",
        )
        self._nat = w.SelectMultiple(
            options=distinct("nat_gateway_ip"), description="NAT IP", rows=4
        )
        self._sources = w.SelectMultiple(
            options=[
                (f"{names[ip]} ({ip})" if ip in names else ip, ip) for ip in distinct("source_ip")
            ],
            description="Sources",
            rows=6,
        )
        self._destinations = w.Text(
            description="Destinations",
            placeholder="IP, CIDR or service tag, comma separated",
            continuous_update=False,
        )
        self._metric = w.ToggleButtons(options=list(_METRICS), description="Metric")
        self._error = w.HTML()
        self._callbacks: list[Callable[[FilterState], None]] = []
        self._quiet = False
        self._state = FilterState()
        for control in (
            self._time,
            self._gateway,
            self._nat,
            self._sources,
            self._destinations,
            self._metric,
        ):
            control.observe(self._on_control, names="value")
        self.widget = w.VBox(
            [
                self._time,
                w.HBox([w.VBox([self._gateway, self._metric]), self._nat, self._sources]),
                self._destinations,
                self._error,
            ]
        )

    @property
    def state(self) -> FilterState:
        """The current filter, as an immutable value."""
        return self._state

    @state.setter
    def state(self, value: FilterState) -> None:
        if not isinstance(value, FilterState):
            raise TypeError(f"FilterPanel.state must be a FilterState, got {type(value).__name__}")
        unknown = [
            (name, v)
            for name, control in (("nat_ips", self._nat), ("sources", self._sources))
            for v in getattr(value, name)
            if v not in _option_values(control)
        ]
        if unknown:
            raise ValueError(f"FilterPanel: values not present in the flows: {unknown}")
        self._quiet = True
        try:
            lo = 0 if value.start is None else _snap(self._grid, value.start, down=True)
            hi = (
                len(self._grid) - 1
                if value.end is None
                else _snap(self._grid, value.end, down=False)
            )
            self._time.index = (lo, hi)
            self._gateway.value = value.gateway
            self._nat.value = value.nat_ips
            self._sources.value = value.sources
            self._destinations.value = ", ".join(value.destinations)
            self._metric.value = value.metric
        finally:
            self._quiet = False
        self._set(value)

    def on_change(self, callback: Callable[[FilterState], None]) -> None:
        """Call ``callback(state)`` whenever the filter changes."""
        self._callbacks.append(callback)

    def _on_control(self, _change: Mapping[str, Any]) -> None:
        if self._quiet:
            return
        lo, hi = self._time.index
        start = None if lo == 0 else self._grid[lo]
        end = None if hi == len(self._grid) - 1 else self._grid[hi]
        try:
            state = FilterState(
                start=start,
                end=end,
                gateway=self._gateway.value,
                nat_ips=tuple(self._nat.value),
                sources=tuple(self._sources.value),
                destinations=tuple(
                    d.strip() for d in self._destinations.value.split(",") if d.strip()
                ),
                metric=self._metric.value,
            )
        except ValueError as exc:
            self._error.value = f'<span style="color:#b00">{html.escape(str(exc))}</span>'
            return
        self._set(state)

    def _set(self, state: FilterState) -> None:
        self._error.value = ""
        if state == self._state:
            return
        self._state = state
        for callback in self._callbacks:
            callback(state)


def _option_values(control: Any) -> set[Any]:
    return {o[1] if isinstance(o, tuple) else o for o in control.options}


def _snap(grid: Sequence[datetime], moment: datetime, *, down: bool) -> int:
    """Index of the slider stop at or before (``down``) / at or after ``moment``."""
    if down:
        return max(0, max((i for i, t in enumerate(grid) if t <= moment), default=0))
    return min((i for i, t in enumerate(grid) if t >= moment), default=len(grid) - 1)


_TABLE_CSS = """<style>
.natlens-table {border-collapse: collapse; font-size: 12px; margin: 4px 12px 4px 0}
.natlens-table caption {font-weight: bold; text-align: left; padding: 2px 0}
.natlens-table th, .natlens-table td {border-bottom: 1px solid #ddd; padding: 2px 8px;
  text-align: left}
.natlens-ok {color: #2e7d32} .natlens-problem {color: #c62828} .natlens-unknown {color: #8a6d00}
</style>"""


def _epoch_ms(value: Any) -> datetime:
    """A brushed time from Vega (epoch milliseconds or ISO text) as a UTC datetime."""
    if isinstance(value, int | float):
        return datetime.fromtimestamp(value / 1000, tz=UTC)
    parsed = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


class Dashboard(_View):
    """A filter panel, a traffic chart with a time brush and the top-N tables, linked.

    Changing the filter redraws the chart and the tables; brushing a time range on the
    chart narrows the tables to it (``dashboard.selection``).

    Parameters
    ----------
    flows
        Flow records (collected once).
    inventory
        :func:`natlens.read_inventory` output or a mapping IP -> VM name.
    destination_labels
        Destination IP -> label (service tag, host name): used by the destination filter
        and shown in the destinations table.
    every
        Chart time step.
    n
        Rows in each top-N table and series in the chart.

    Examples
    --------
    >>> import natlens
    >>> samples = natlens.sample_data()
    >>> flows = natlens.read_flowlogs(samples.flowlogs)
    >>> board = Dashboard(flows, inventory=natlens.read_inventory(samples.inventory))
    >>> board.panel.state = board.panel.state.replace(sources=("10.10.3.7",))
    >>> board.talkers.get_column("source_ip").to_list()
    ['10.10.3.7']
    """

    def __init__(
        self,
        flows: pl.DataFrame | pl.LazyFrame,
        *,
        inventory: Mapping[str, str] | pl.DataFrame | None = None,
        destination_labels: Mapping[str, str] | None = None,
        every: str = "1h",
        n: int = 8,
    ) -> None:
        alt.JupyterChart.enable_offline()
        self._flows = flows.collect() if isinstance(flows, pl.LazyFrame) else flows
        self._inventory = inventory
        names = charts._names(inventory)
        self._vm_names: dict[str, str] = (
            dict(names.unique("ip").iter_rows()) if names is not None else {}
        )
        self._labels = dict(destination_labels or {})
        self._every = every
        self._n = n
        self.panel = FilterPanel(self._flows, inventory=self._vm_names)
        self._filtered = self._flows
        self.selection: tuple[datetime, datetime] | None = None
        self.talkers = pl.DataFrame()
        self.destinations = pl.DataFrame()
        self.chart = alt.JupyterChart(self._traffic_chart())
        self.chart.observe(self._on_brush, names="_vl_selections")
        self._summary = w.HTML()
        self._tables = w.HTML()
        self.widget = w.VBox([self.panel.widget, self._summary, self.chart, self._tables])
        self.panel.on_change(self._on_filter)
        self._refresh_tables()

    def _traffic_chart(self) -> alt.Chart:
        return charts.chart_traffic_over_time(
            self._filtered,
            metric=self.panel.state.metric,
            every=self._every,
            n=min(self._n, 6),
            inventory=self._inventory,
            brush=True,
            title=f"Traffic per {self._every}: drag across the chart to narrow the tables",
        )

    def _on_filter(self, state: FilterState) -> None:
        self._filtered = state.apply(self._flows, destination_labels=self._labels).collect()
        self.selection = None
        self.chart.chart = self._traffic_chart()
        self._refresh_tables()

    def _on_brush(self, change: Mapping[str, Any]) -> None:
        brush = (change["new"] or {}).get("brush") or {}
        value = brush.get("value") or {}
        bounds = value.get("time") if isinstance(value, dict) else None
        if bounds and len(bounds) == 2:
            low, high = sorted(_epoch_ms(b) for b in bounds)
            self.selection = (low, high)
        else:
            self.selection = None
        self._refresh_tables()

    def _refresh_tables(self) -> None:
        frame = self._filtered
        if self.selection is not None:
            low, high = self.selection
            frame = frame.filter(pl.col("time").is_between(low, high, closed="left"))
        self.talkers = top_talkers(frame, n=self._n, by="bytes")
        destinations = top_destinations(frame, n=self._n, by="bytes")
        if self._labels:
            destinations = destinations.with_columns(
                pl.col("destination_ip")
                .replace_strict(self._labels, default=None, return_dtype=pl.String)
                .alias("label")
            )
        self.destinations = destinations
        talkers = self.talkers.with_columns(
            pl.col("source_ip")
            .replace_strict(self._vm_names, default=None, return_dtype=pl.String)
            .alias("vm")
        )
        where = (
            f"{self.selection[0]:%Y-%m-%d %H:%M} to {self.selection[1]:%Y-%m-%d %H:%M} UTC"
            if self.selection
            else "the whole filtered range"
        )
        self._summary.value = (
            f"<b>{frame.height:,}</b> flow records; filter: "
            f"{html.escape(self.panel.state.describe())}; tables cover {where}"
        )
        gb = (pl.col("bytes") / 1e9).round(3).alias("GB")
        self._tables.value = (
            _TABLE_CSS
            + '<div style="display:flex;flex-wrap:wrap">'
            + frame_to_html(
                talkers.select("vm", "source_ip", gb, "records", "destinations"),
                caption="Top sources",
            )
            + frame_to_html(
                destinations.select(
                    "destination_ip",
                    *(["label"] if "label" in destinations.columns else []),
                    gb,
                    "records",
                    "sources",
                ),
                caption="Top destinations",
            )
            + "</div>"
        )


class TroubleshootWidget(_View):
    """Walk the troubleshooting path for a chosen VM and destination.

    Pick a VM (by name when an inventory is given) or type an IP or CIDR, and a
    destination (IP, CIDR or host name with a ``resolver``), press *Diagnose*: each
    step of :func:`natlens.diagnose` shows its verdict and evidence. The widget never
    judges by itself: its verdict is ``diagnose``'s for the same inputs.

    Examples
    --------
    >>> import natlens
    >>> samples = natlens.sample_data()
    >>> widget = TroubleshootWidget(
    ...     natlens.read_flowlogs(samples.flowlogs),
    ...     metrics=natlens.read_metrics(samples.metrics),
    ...     inventory=natlens.read_inventory(samples.inventory),
    ... )
    >>> widget.run(source="10.20.1.13", destination="140.82.121.4").verdict
    'rate_limited'
    """

    def __init__(
        self,
        flows: pl.DataFrame | pl.LazyFrame,
        *,
        metrics: pl.DataFrame | pl.LazyFrame | None = None,
        inventory: Mapping[str, str] | pl.DataFrame | None = None,
        resolver: Mapping[str, Sequence[str]] | Callable[[str], Sequence[str]] | None = None,
    ) -> None:
        self._flows = flows.collect() if isinstance(flows, pl.LazyFrame) else flows
        self._metrics = metrics
        self._resolver = resolver
        names = charts._names(inventory)
        vm_names = dict(names.unique("ip").iter_rows()) if names is not None else {}
        sources = (
            self._flows.select(pl.col("source_ip").unique().sort())
            .get_column("source_ip")
            .drop_nulls()
            .to_list()
        )
        # Suggestions name the VMs of the log; any IP, CIDR or host name may be typed,
        # and diagnose() answers for it (an address the log does not hold included).
        self._source_ips = {
            f"{vm_names[ip]} ({ip})" if ip in vm_names else ip: ip for ip in sources
        }
        self._source = w.Combobox(
            options=sorted(self._source_ips),
            ensure_option=False,
            description="VM",
            placeholder="VM, IP or CIDR",
        )
        self._destination = w.Text(
            description="Destination", placeholder="IP, CIDR or host name (github.com)"
        )
        self._window = w.Text(
            description="Window",
            placeholder="optional: 2026-11-11T09:00Z/2026-11-11T12:00Z",
        )
        self._button = w.Button(description="Diagnose", button_style="primary", icon="stethoscope")
        self._button.on_click(lambda _button: self._run_from_controls())
        self._verdict = w.HTML()
        self._steps = w.Accordion()
        self.diagnosis: Diagnosis | None = None
        self.widget = w.VBox(
            [
                w.HBox([self._source, self._destination]),
                w.HBox([self._window, self._button]),
                self._verdict,
                self._steps,
            ]
        )

    def run(
        self,
        *,
        source: str | None = None,
        destination: str | None = None,
        start: str | datetime | None = None,
        end: str | datetime | None = None,
    ) -> Diagnosis:
        """Set the controls, run the diagnosis and show it; return the :class:`Diagnosis`.

        The verdict is :func:`natlens.diagnose`'s for the same inputs, whatever they are.
        """
        if source is not None:
            self._source.value = source
        if destination is not None:
            self._destination.value = destination
        if start is not None or end is not None:
            self._window.value = f"{_iso(start)}/{_iso(end)}"
        return self._run_from_controls()

    def _run_from_controls(self) -> Diagnosis:
        typed = self._source.value.strip()
        source = self._source_ips.get(typed, typed) or None
        destination = self._destination.value.strip() or None
        start: str | None = None
        end: str | None = None
        if self._window.value.strip():
            start_text, _, end_text = self._window.value.strip().partition("/")
            start, end = start_text.strip() or None, end_text.strip() or None
        try:
            result = diagnose(
                self._flows,
                source=source,
                destination=destination,
                metrics=self._metrics,
                start=start,
                end=end,
                resolver=self._resolver,
            )
        except (ValueError, TypeError) as exc:
            self._verdict.value = (
                f'<span class="natlens-problem">{html.escape(str(exc))}</span>{_TABLE_CSS}'
            )
            raise
        self.diagnosis = result
        self._show(result)
        return result

    def _show(self, result: Diagnosis) -> None:
        css = "natlens-ok" if result.verdict == "healthy" else "natlens-problem"
        self._verdict.value = (
            f"{_TABLE_CSS}<h4>Verdict: <span class='{css}'>{html.escape(result.verdict)}</span>"
            f"</h4><p>{html.escape(result.summary)}</p>"
        )
        children = []
        for step in result.steps:
            body = (
                f"<p class='natlens-{step.status}' style='white-space:normal;max-width:900px'>"
                f"{html.escape(step.finding)}</p>"
            )
            if step.evidence.height:
                body += frame_to_html(step.evidence, max_rows=12, caption="evidence")
            children.append(w.HTML(body))
        self._steps.children = children
        for index, step in enumerate(result.steps):
            mark = {"ok": "OK", "problem": "PROBLEM"}.get(step.status, step.status.upper())
            self._steps.set_title(index, f"{index + 1}. {step.name}: {mark}")
        problem = next((i for i, s in enumerate(result.steps) if s.status == "problem"), None)
        self._steps.selected_index = problem


def _iso(moment: str | datetime | None) -> str:
    if moment is None:
        return ""
    return moment.isoformat() if isinstance(moment, datetime) else moment
