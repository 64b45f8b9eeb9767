"""Dashboards for JupyterLab: thin ipywidgets views over the natlens analyses.

- :class:`FilterState` is the whole state of a filter: a small immutable value that
  code and tests set and read (``panel.state = panel.state.replace(metric="packets")``).
  Its :meth:`~FilterState.criteria` are the keyword arguments of
  :func:`natlens.find_flows`, and :meth:`~FilterState.apply` is that call.
- :class:`FilterPanel` edits a :class:`FilterState` (time range, gateways, NAT IPs,
  sources by VM name, destinations as IP/CIDR/label, metric).
- :class:`Dashboard` joins a panel, a traffic chart whose time brush narrows the tables
  (altair's ``JupyterChart`` hands the selection to Python) and the top-N tables of
  :func:`natlens.top_talkers` and :func:`natlens.top_destinations` for the chosen metric.
- :class:`TroubleshootWidget` walks :func:`natlens.diagnose` for a chosen VM and
  destination and shows each step's verdict and evidence.
- :func:`table` shows a frame for people: bytes in B/MB/GB, shares in %, times with
  their zone, long text whole.
- :func:`enable_offline_charts` makes every chart a notebook shows an interactive widget
  (bundled JavaScript, no CDN) that also carries a static SVG picture, so a notebook
  exported to HTML or opened where widget JavaScript cannot run still shows its charts.

Every view displays itself when it is the last expression of a cell, with a static
HTML rendering next to the live widget for the same reason. Its ipywidgets tree is
``obj.widget``. Importing this module needs the ``lab`` extra.
"""

from __future__ import annotations

import abc
import dataclasses
import enum
import html
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any, TypedDict, cast

import altair as alt
import ipywidgets as w
import polars as pl
from altair.utils.mimebundle import spec_to_mimebundle

from natlens import charts
from natlens._enrich import label_sources, read_inventory
from natlens._html import TABLE_CSS, format_bytes, frame_to_html
from natlens._ip import is_address_like, resolve_host
from natlens._time import time_range
from natlens._troubleshoot import Diagnosis, diagnose, find_flows
from natlens._typing import METRICS, FrameLike, Inventory, Labels, Metric, Resolver, TimeLike
from natlens._usage import top_destinations, top_talkers

__all__ = [
    "Criteria",
    "Dashboard",
    "FilterPanel",
    "FilterState",
    "Table",
    "TroubleshootWidget",
    "enable_offline_charts",
    "table",
]

_RENDERER = "natlens"


def _chart_bundle(spec: dict[str, Any], **metadata: Any) -> dict[str, Any]:
    """An altair renderer: the live ``JupyterChart`` widget plus a static SVG of it.

    JupyterLab shows the widget (ranked first); nbconvert, GitHub and any viewer that
    cannot run widget JavaScript show the SVG.
    """
    live = alt.JupyterChart(
        chart=alt.Chart.from_dict(spec), embed_options=metadata.get("embed_options")
    )
    bundle = _bundle_data(live._repr_mimebundle_())
    bundle["text/plain"] = f"natlens chart: {_chart_title(spec)}"
    try:
        static = spec_to_mimebundle(
            spec, format="svg", mode="vega-lite", vegalite_version=alt.VEGALITE_VERSION
        )
    except ValueError as error:
        # The live chart may still draw; say why there is no picture instead of failing.
        first = str(error).strip().splitlines()[-1]
        bundle["text/plain"] += f" (no static picture: vl-convert failed: {first})"
    else:
        bundle.update(static)
    return bundle


def _bundle_data(bundle: object) -> dict[str, Any]:
    """The data part of a ``_repr_mimebundle_`` answer (a dict, or a data, metadata pair)."""
    if isinstance(bundle, tuple):
        bundle = bundle[0]
    return dict(cast("Mapping[str, Any]", bundle or {}))


def _chart_title(spec: Mapping[str, Any]) -> str:
    title = spec.get("title")
    if isinstance(title, Mapping):
        title = title.get("text")
    if isinstance(title, list):
        title = " ".join(str(t) for t in title)
    return str(title) if title else "(untitled)"


alt.renderers.register(_RENDERER, _chart_bundle)


def enable_offline_charts() -> None:
    """Show altair charts in notebooks as live widgets that also carry a static SVG.

    The widget's Vega libraries come from vl-convert instead of a CDN (works offline).
    Each chart's output also holds an ``image/svg+xml`` rendering, which a notebook
    exported to HTML (``jupyter nbconvert``), or opened where widget JavaScript cannot
    run, shows instead of a blank cell. Call it once, at the top of a notebook.

    Examples
    --------
    >>> import polars as pl
    >>> enable_offline_charts()
    >>> chart = alt.Chart(pl.DataFrame({"x": [1]})).mark_point().encode(x="x")
    >>> sorted(chart._repr_mimebundle_())
    ['application/vnd.jupyter.widget-view+json', 'image/svg+xml', 'text/plain']
    >>> _ = alt.renderers.enable("default")
    """
    alt.JupyterChart.enable_offline()
    alt.renderers.enable(_RENDERER)


# -- tables for people ---------------------------------------------------------------------

_METRIC_VALUES = frozenset(
    {
        "value",
        "previous",
        "change",
        "trend",
        "actual",
        "expected",
        "spread",
        "excess",
        "extra",
        "peak_actual",
        "peak_expected",
    }
)
"""Columns holding amounts of the analysed metric (growth, spikes): bytes if it is bytes."""

_FRACTIONS = frozenset({"share", "drop_rate"})
"""Columns holding a fraction of 1, shown as a percentage."""


def _is_bytes(column: str, metric: Metric) -> bool:
    return "bytes" in column or (column in _METRIC_VALUES and metric.startswith("bytes"))


def _percent(value: float) -> str:
    return f"{value:,.1f} %" if abs(value) >= 0.1 or value == 0 else f"{value:.2g} %"


def _cell(column: str, value: object, metric: Metric) -> str:
    """One cell for people: units by column, whole text, times with their zone."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int | float) and _is_bytes(column, metric):
        return format_bytes(float(value))
    if isinstance(value, int | float) and column in _FRACTIONS:
        return _percent(100 * float(value))
    if isinstance(value, int | float) and column.endswith("_pct"):
        return _percent(float(value))
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, float):
        if column.endswith("cost"):
            return f"{value:,.2f}"
        return f"{value:,.0f}" if abs(value) >= 1000 else f"{value:,.3g}"
    if isinstance(value, datetime):
        zone = value.tzname() or "no zone"
        return f"{value:%Y-%m-%d %H:%M} {zone}"
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, list | tuple | pl.Series):
        return ", ".join(_cell(column, v, metric) for v in value)
    return str(value)


@dataclass(frozen=True)
class Table:
    """A frame shown for people (see :func:`table`).

    ``frame`` holds the numbers, ``text`` the cells as shown (its first rows).
    """

    frame: pl.DataFrame
    text: pl.DataFrame
    title: str | None = None

    def to_html(self) -> str:
        """The table as HTML (escaped), in natlens's table style."""
        hidden = self.frame.height - self.text.height
        more = f"<p class='natlens-note'>... {hidden:,} more rows</p>" if hidden > 0 else ""
        body = frame_to_html(self.text, max_rows=max(self.text.height, 1), caption=self.title or "")
        return f"<style>{TABLE_CSS}</style>{body}{more}"

    def _repr_html_(self) -> str:
        return self.to_html()


def table(
    frame: FrameLike,
    *,
    metric: Metric = "bytes",
    n: int | None = 20,
    title: str | None = None,
) -> Table:
    """Show a frame for people: units, whole text, times with their zone.

    Byte columns (``bytes``, ``bytes_sent``, ``delta_bytes`` ...) read ``118.6 GB``,
    shares and rates ``18.9 %``, costs two decimals, times ``2026-11-10 13:00 UTC``,
    lists comma-separated; text is never cut short (the table scrolls sideways).
    The numbers stay in ``Table.frame``.

    Parameters
    ----------
    frame
        Any analysis result.
    metric
        What the unnamed amounts are in (``value``, ``change``, ``trend`` of
        :func:`natlens.growth`; ``actual``, ``expected``, ``extra`` of
        :func:`natlens.find_spikes`): byte units when it is a byte metric.
    n
        Rows shown (``None``: all); a last line says how many more there are.
    title
        Caption above the table.

    Examples
    --------
    >>> from datetime import datetime, UTC
    >>> shown = table(
    ...     pl.DataFrame(
    ...         {
    ...             "source_ip": ["10.10.3.7"],
    ...             "bytes": [118_616_767_058],
    ...             "share": [0.189142],
    ...             "first_seen": [datetime(2026, 11, 10, 13, tzinfo=UTC)],
    ...         }
    ...     )
    ... )
    >>> shown.text.row(0)
    ('10.10.3.7', '118.6 GB', '18.9 %', '2026-11-10 13:00 UTC')
    >>> table(pl.DataFrame({"value": [-1.7314e10]})).text.item()
    '-17.3 GB'
    """
    collected = frame.collect() if isinstance(frame, pl.LazyFrame) else frame
    if metric not in METRICS:
        raise ValueError(f"table: metric must be one of {METRICS}, got {metric!r}")
    if n is not None and (isinstance(n, bool) or not isinstance(n, int) or n < 1):
        raise ValueError(f"table: n must be a positive integer or None, got {n!r}")
    rows = collected.height if n is None else n
    shown = collected.head(rows)
    text = pl.DataFrame(
        {
            column: [_cell(column, value, metric) for value in shown.get_column(column)]
            for column in shown.columns
        },
        schema=dict.fromkeys(shown.columns, pl.String),
    )
    return Table(frame=collected, text=text, title=title)


# -- the filter ------------------------------------------------------------------------------


class Criteria(TypedDict):
    """What a :class:`FilterState` keeps, as the keyword arguments of ``find_flows``."""

    sources: tuple[str, ...] | None
    destinations: tuple[str, ...] | None
    nat_ips: tuple[str, ...] | None
    gateways: tuple[str, ...] | None
    start: datetime | None
    end: datetime | None


_FILTERS = ("sources", "destinations", "nat_ips", "gateways")


class _Keep(enum.Enum):
    """Marks a field :meth:`FilterState.replace` leaves as it is."""

    KEEP = enum.auto()


_KEEP = _Keep.KEEP


@dataclass(frozen=True)
class FilterState:
    """What a dashboard shows: an immutable value, compared and copied freely.

    Parameters
    ----------
    start, end
        Time window, ``start`` included, ``end`` excluded; ``None`` is open. Naive
        datetimes are UTC, as everywhere in natlens.
    sources
        Source (VM private) IPs or CIDRs to keep; empty for all.
    destinations
        Destination IPs, CIDRs, or names: a label such as a service tag (looked up in
        the ``labels`` given to :meth:`apply`) or a hostname (through its ``resolver``).
    nat_ips
        NAT public IPs to keep; empty for all.
    gateways
        NAT gateway resource ids or names; empty for all.
    metric
        What the views measure: ``bytes``, ``packets``, ``packets_dropped``, ``records``...
        (see :data:`natlens.METRICS`).

    Examples
    --------
    >>> state = FilterState(sources=("10.0.0.4",))
    >>> state.replace(metric="packets").metric
    'packets'
    >>> state == FilterState(sources=("10.0.0.4",))
    True
    >>> state.criteria()["sources"], state.criteria()["gateways"]
    (('10.0.0.4',), None)
    """

    start: datetime | None = None
    end: datetime | None = None
    sources: tuple[str, ...] = ()
    destinations: tuple[str, ...] = ()
    nat_ips: tuple[str, ...] = ()
    gateways: tuple[str, ...] = ()
    metric: Metric = "bytes"

    def __post_init__(self) -> None:
        if self.metric not in METRICS:
            raise ValueError(f"FilterState: metric must be one of {METRICS}, got {self.metric!r}")
        for name in _FILTERS:
            value = getattr(self, name)
            if not isinstance(value, tuple) or not all(isinstance(v, str) for v in value):
                raise TypeError(f"FilterState: {name} must be a tuple of strings, got {value!r}")
        try:
            start, end = time_range(self.start, self.end)
        except ValueError as error:
            raise ValueError(f"FilterState: {error}") from None
        object.__setattr__(self, "start", start)
        object.__setattr__(self, "end", end)

    def replace(
        self,
        *,
        start: TimeLike | _Keep | None = _KEEP,
        end: TimeLike | _Keep | None = _KEEP,
        sources: tuple[str, ...] | _Keep = _KEEP,
        destinations: tuple[str, ...] | _Keep = _KEEP,
        nat_ips: tuple[str, ...] | _Keep = _KEEP,
        gateways: tuple[str, ...] | _Keep = _KEEP,
        metric: Metric | _Keep = _KEEP,
    ) -> FilterState:
        """Return a copy with the fields given changed (the others kept)."""
        given = {
            "start": start,
            "end": end,
            "sources": sources,
            "destinations": destinations,
            "nat_ips": nat_ips,
            "gateways": gateways,
            "metric": metric,
        }
        changes: dict[str, Any] = {n: v for n, v in given.items() if v is not _KEEP}
        return dataclasses.replace(self, **changes)

    def criteria(self) -> Criteria:
        """The keyword arguments of :func:`natlens.find_flows` this state stands for.

        An empty filter is ``None`` (anything). ``natlens.find_flows(flows,
        **state.criteria())`` keeps what :meth:`apply` keeps when no destination is a
        label.
        """
        return Criteria(
            sources=self.sources or None,
            destinations=self.destinations or None,
            nat_ips=self.nat_ips or None,
            gateways=self.gateways or None,
            start=self.start,
            end=self.end,
        )

    def apply(
        self,
        flows: FrameLike,
        *,
        labels: Labels | None = None,
        resolver: Resolver | None = None,
    ) -> pl.DataFrame:
        """The flow records this state keeps: :func:`natlens.find_flows` with its criteria.

        A destination that is neither an IP nor a CIDR is a label (``labels``:
        destination IP -> label, e.g. service tags from
        :func:`natlens.label_destinations`) or else a hostname (``resolver``).

        Examples
        --------
        >>> import datetime as dt, natlens
        >>> t = dt.datetime(2026, 11, 10, tzinfo=dt.UTC)
        >>> flows = pl.DataFrame(
        ...     [
        ...         [t, "10.0.0.4", "140.82.112.3", "20.1.1.1", 1, 1, 0, 0, 10, 10, "/A/GW"],
        ...         [t, "10.0.0.4", "20.60.1.1", "20.1.1.1", 1, 1, 0, 0, 10, 10, "/A/GW"],
        ...     ],
        ...     schema=natlens.FLOW_SCHEMA,
        ...     orient="row",
        ... )
        >>> FilterState(destinations=("140.82.112.0/20",)).apply(flows).height
        1
        >>> tagged = FilterState(destinations=("Storage.WestEurope",))
        >>> tagged.apply(flows, labels={"20.60.1.1": "Storage.WestEurope"}).item(
        ...     0, "destination_ip"
        ... )
        '20.60.1.1'
        """
        return find_flows(
            flows,
            **self.criteria(),
            resolver=_destination_resolver(self.destinations, labels, resolver),
        )

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
        if self.gateways:
            parts.append(
                f"gateway {', '.join(g.rstrip('/').rsplit('/', 1)[-1] for g in self.gateways)}"
            )
        for label, values in (
            ("NAT IP", self.nat_ips),
            ("source", self.sources),
            ("destination", self.destinations),
        ):
            if values:
                parts.append(f"{label} {', '.join(values)}")
        return f"{'; '.join(parts) or 'all traffic'}, {self.metric}"


def _label_map(labels: Labels | None) -> dict[str, str]:
    """Destination IP -> label from a mapping or a ``destination_ip``, ``label`` frame."""
    if labels is None:
        return {}
    if isinstance(labels, pl.DataFrame):
        missing = {"destination_ip", "label"} - set(labels.columns)
        if missing:
            raise ValueError(
                f"labels: the frame needs columns destination_ip and label; it has {labels.columns}"
            )
        pairs = labels.select("destination_ip", "label").drop_nulls().unique("destination_ip")
        return dict(pairs.iter_rows())
    if not isinstance(labels, Mapping):
        raise TypeError(f"labels: expected a frame or a mapping, got {type(labels).__name__}")
    return {str(ip): str(label) for ip, label in labels.items() if label is not None}


def _destination_resolver(
    destinations: Iterable[str], labels: Labels | None, resolver: Resolver | None
) -> Resolver | None:
    """A resolver answering labels (label -> its IPs) first, then ``resolver``'s hostnames."""
    names = sorted({d.strip() for d in destinations if d.strip() and not is_address_like(d)})
    if not names:
        return resolver
    if labels is None and resolver is None:
        raise ValueError(
            f"destinations {names} are not IPs or CIDRs; pass labels= (destination IP -> "
            "label, e.g. service tags from natlens.label_destinations) or resolver= "
            "(hostnames) to filter by name"
        )
    by_label: dict[str, list[str]] = {}
    for ip, label in _label_map(labels).items():
        by_label.setdefault(label.strip().lower().rstrip("."), []).append(ip)

    def lookup(name: str) -> list[str]:
        found = by_label.get(name.strip().lower().rstrip("."))
        if found:
            return found
        if resolver is None:
            raise LookupError(f"no destination is labelled {name!r}")
        return resolve_host(name, resolver=resolver, argument="destinations")

    return lookup


# -- the views -------------------------------------------------------------------------------


class _View(abc.ABC):
    """Base for natlens widgets: composition over ipywidgets, displays as ``self.widget``.

    Next to the live widget the display carries a static HTML rendering (``to_html``),
    which exported notebooks and viewers without widget JavaScript show instead.
    """

    widget: Any

    @abc.abstractmethod
    def to_html(self) -> str:
        """What the view shows now, as static HTML."""

    def _repr_mimebundle_(self, **kwargs: Any) -> Any:
        data = _bundle_data(self.widget._repr_mimebundle_(**kwargs))
        data["text/html"] = self.to_html()
        data["text/plain"] = f"natlens {type(self).__name__} (interactive: run the notebook)"
        return data


def _vm_names(inventory: Inventory | None) -> dict[str, str]:
    """IP -> VM name from an inventory frame or file (see :func:`natlens.read_inventory`)."""
    if inventory is None:
        return {}
    frame = read_inventory(inventory)
    return dict(frame.select("ip", "vm_name").drop_nulls().iter_rows())


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
        A frame from :func:`natlens.read_inventory` or the path of its CSV: sources are
        listed by VM name.

    Examples
    --------
    >>> import datetime as dt, natlens
    >>> t = dt.datetime(2025, 11, 4, 10, tzinfo=dt.UTC)
    >>> flows = pl.DataFrame(
    ...     [[t, "10.0.0.4", "1.1.1.1", "20.1.1.1", 1, 1, 0, 0, 10, 10, "/S/NATGATEWAYS/GW"]],
    ...     schema=natlens.FLOW_SCHEMA,
    ...     orient="row",
    ... )
    >>> inventory = pl.DataFrame({"ip": ["10.0.0.4"], "vm_name": ["web-1"]})
    >>> panel = FilterPanel(flows, inventory=inventory)
    >>> panel.state = panel.state.replace(sources=("10.0.0.4",))
    >>> panel.state.sources
    ('10.0.0.4',)
    """

    def __init__(self, flows: FrameLike, *, inventory: Inventory | None = None) -> None:
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

        names = _vm_names(inventory)
        self._gateways = w.SelectMultiple(
            options=[(g.rstrip("/").rsplit("/", 1)[-1], g) for g in distinct("resource_id")],
            description="Gateways",
            rows=3,
        )
        self._nat = w.SelectMultiple(
            options=distinct("nat_gateway_ip"), description="NAT IPs", rows=4
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
            placeholder="IP, CIDR or label (service tag), comma separated",
            continuous_update=False,
        )
        self._metric = w.Dropdown(options=list(METRICS), description="Metric")
        self._error = w.HTML()
        self._callbacks: list[Callable[[FilterState], None]] = []
        self._quiet = False
        self._state = FilterState()
        for control in (
            self._time,
            self._gateways,
            self._nat,
            self._sources,
            self._destinations,
            self._metric,
        ):
            control.observe(self._on_control, names="value")
        self.widget = w.VBox(
            [
                self._time,
                w.HBox([w.VBox([self._metric, self._gateways]), self._nat, self._sources]),
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
            for name, control in (
                ("gateways", self._gateways),
                ("nat_ips", self._nat),
                ("sources", self._sources),
            )
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
            self._gateways.value = value.gateways
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

    def to_html(self) -> str:
        """The filter as one line of text."""
        return f"<p>Filter: {html.escape(self._state.describe())}</p>"

    def _on_control(self, _change: Mapping[str, Any]) -> None:
        if self._quiet:
            return
        lo, hi = self._time.index
        try:
            state = FilterState(
                start=None if lo == 0 else self._grid[lo],
                end=None if hi == len(self._grid) - 1 else self._grid[hi],
                gateways=tuple(self._gateways.value),
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


def _epoch_ms(value: Any) -> datetime:
    """A brushed time from Vega (epoch milliseconds or ISO text) as a UTC datetime."""
    if isinstance(value, int | float):
        return datetime.fromtimestamp(value / 1000, tz=UTC)
    parsed = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def _svg(chart: alt.TopLevelMixin) -> str:
    """A chart as inline SVG (vl-convert), for the static renderings."""
    bundle = spec_to_mimebundle(
        chart.to_dict(), format="svg", mode="vega-lite", vegalite_version=alt.VEGALITE_VERSION
    )
    return str(bundle["image/svg+xml"])


class Dashboard(_View):
    """A filter panel, a traffic chart with a time brush and the top-N tables, linked.

    Changing the filter redraws the chart and the tables; the metric chosen in the
    panel is what the chart shows and what the tables rank by. Brushing a time range
    on the chart narrows the tables to it (``dashboard.selection``).

    Parameters
    ----------
    flows
        Flow records (collected once).
    inventory
        A frame from :func:`natlens.read_inventory` or its path: VM names for sources.
    labels
        Destination IP -> label (service tag, host name), a mapping or a
        ``destination_ip``, ``label`` frame: the destination filter matches labels and
        the destinations table shows them.
    every
        Chart time bucket; ``None`` lets the chart pick one from the span (an hour for a
        week, coarser for months), so any span draws.
    n
        Rows in each top-N table (the chart draws at most 6 series and "other").

    Examples
    --------
    >>> import natlens
    >>> samples = natlens.sample_data()
    >>> flows = natlens.read_flowlogs(samples.flowlogs)
    >>> board = Dashboard(flows, inventory=samples.inventory)
    >>> board.panel.state = board.panel.state.replace(sources=("10.10.3.7",))
    >>> board.talkers.get_column("source_ip").to_list()
    ['10.10.3.7']
    """

    def __init__(
        self,
        flows: FrameLike,
        *,
        inventory: Inventory | None = None,
        labels: Labels | None = None,
        every: str | None = None,
        n: int = 8,
    ) -> None:
        alt.JupyterChart.enable_offline()
        self._flows = flows.collect() if isinstance(flows, pl.LazyFrame) else flows
        self._inventory = None if inventory is None else read_inventory(inventory)
        self._labels = _label_map(labels)
        self._every = every
        self._n = n
        self.panel = FilterPanel(self._flows, inventory=self._inventory)
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
            title=f"{self.panel.state.metric} over time: drag across the chart to narrow "
            "the tables",
        )

    def _on_filter(self, state: FilterState) -> None:
        self._filtered = state.apply(self._flows, labels=self._labels or None)
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
            frame = find_flows(frame, start=self.selection[0], end=self.selection[1])
        metric = self.panel.state.metric
        talkers = top_talkers(frame, metric=metric, n=self._n)
        if self._inventory is not None:
            talkers = label_sources(talkers, inventory=self._inventory)
        destinations = top_destinations(frame, metric=metric, n=self._n)
        if self._labels:
            destinations = destinations.with_columns(
                pl.col("destination_ip")
                .replace_strict(self._labels, default=None, return_dtype=pl.String)
                .alias("label")
            )
        self.talkers, self.destinations = talkers, destinations
        where = (
            f"{self.selection[0]:%Y-%m-%d %H:%M} to {self.selection[1]:%Y-%m-%d %H:%M} UTC"
            if self.selection
            else "the whole filtered range"
        )
        self._summary.value = (
            f"<b>{frame.height:,}</b> flow records; filter: "
            f"{html.escape(self.panel.state.describe())}; tables cover {where}, "
            f"ranked by {metric}"
        )
        columns = [c for c in ("vm_name",) if c in talkers.columns]
        shown_talkers = talkers.select(*columns, "source_ip", metric, "share", "destinations")
        shown_destinations = destinations.select(
            "destination_ip",
            *[c for c in ("label",) if c in destinations.columns],
            metric,
            "share",
            "sources",
        )
        self._tables.value = (
            f"<style>{TABLE_CSS}</style>"
            '<div style="display:flex;flex-wrap:wrap">'
            + table(shown_talkers, metric=metric, n=self._n, title="Top sources").to_html()
            + table(
                shown_destinations, metric=metric, n=self._n, title="Top destinations"
            ).to_html()
            + "</div>"
        )

    def to_html(self) -> str:
        """The summary, the chart (SVG) and the tables as they are now."""
        return (
            f"<div>{self._summary.value}</div>"
            f"<div>{_svg(self._traffic_chart())}</div>{self._tables.value}"
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
    ...     inventory=samples.inventory,
    ... )
    >>> widget.run(sources="10.20.1.13", destinations="140.82.121.4").verdict
    'rate_limited'
    """

    def __init__(
        self,
        flows: FrameLike,
        *,
        metrics: FrameLike | None = None,
        inventory: Inventory | None = None,
        resolver: Resolver | None = None,
    ) -> None:
        self._flows = flows.collect() if isinstance(flows, pl.LazyFrame) else flows
        self._metrics = metrics
        self._resolver = resolver
        vm_names = _vm_names(inventory)
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
        sources: str | None = None,
        destinations: str | None = None,
        start: TimeLike | None = None,
        end: TimeLike | None = None,
    ) -> Diagnosis:
        """Set the controls, run the diagnosis and show it; return the :class:`Diagnosis`.

        ``sources`` is a VM as listed (``vm-build-10 (10.20.1.13)``), an IP or a CIDR;
        ``destinations`` an IP, a CIDR or a hostname. The verdict is
        :func:`natlens.diagnose`'s for the same inputs, whatever they are.
        """
        if sources is not None:
            self._source.value = sources
        if destinations is not None:
            self._destination.value = destinations
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
                sources=source,
                destinations=destination,
                metrics=self._metrics,
                start=start,
                end=end,
                resolver=self._resolver,
            )
        except (ValueError, TypeError) as exc:
            self._verdict.value = (
                f'<style>{TABLE_CSS}</style><span class="natlens-problem">'
                f"{html.escape(str(exc))}</span>"
            )
            raise
        self.diagnosis = result
        self._show(result)
        return result

    def _show(self, result: Diagnosis) -> None:
        css = "natlens-ok" if result.verdict == "healthy" else "natlens-problem"
        self._verdict.value = (
            f"<style>{TABLE_CSS}</style><h4>Verdict: <span class='{css}'>"
            f"{html.escape(result.verdict)}</span></h4><p>{html.escape(result.summary)}</p>"
        )
        children = []
        for step in result.steps:
            body = (
                f"<p class='natlens-{step.status}' style='white-space:normal;max-width:900px'>"
                f"{html.escape(step.finding)}</p>"
            )
            if step.evidence.height:
                body += table(step.evidence, n=12, title="evidence").to_html()
            children.append(w.HTML(body))
        self._steps.children = children
        for index, step in enumerate(result.steps):
            mark = {"ok": "OK", "problem": "PROBLEM"}.get(step.status, step.status.upper())
            self._steps.set_title(index, f"{index + 1}. {step.name}: {mark}")
        problem = next((i for i, s in enumerate(result.steps) if s.status == "problem"), None)
        self._steps.selected_index = problem

    def to_html(self) -> str:
        """The verdict and each step's finding, as they are now."""
        if self.diagnosis is None:
            return f"<div>{self._verdict.value or 'No diagnosis yet: run the notebook.'}</div>"
        steps = "".join(
            f"<li><b>{html.escape(step.name)}</b>: "
            f"<span class='natlens-{step.status}'>{html.escape(step.status)}</span>, "
            f"{html.escape(step.finding)}</li>"
            for step in self.diagnosis.steps
        )
        return f"<div>{self._verdict.value}<ol>{steps}</ol></div>"


def _iso(moment: TimeLike | None) -> str:
    if moment is None:
        return ""
    if isinstance(moment, datetime | date):
        return moment.isoformat()
    return moment
