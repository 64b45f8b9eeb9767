"""One call for the data a notebook works on: flows, metrics and the side files.

:func:`read_data` reads the shipped samples, a folder of downloaded flow logs, a
``natlens sync`` cache or a Log Analytics workspace, with the gateway metrics and the
side files (inventory, hostnames, Service Tags, allowlist), and returns them as one
:class:`FlowData` value. It composes the public readers (:func:`natlens.sample_data`,
:func:`natlens.read_flowlogs`, :func:`natlens.read_metrics`, the side-file readers and,
imported only when asked for, :func:`natlens.read_log_analytics` and
:func:`natlens.read_gateway_metrics`); it reads nothing they do not.

(The module is not called ``_data``: the wheel ships the samples in ``natlens/_data/``.)
"""

from __future__ import annotations

import dataclasses
import difflib
import glob
import importlib
import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

import polars as pl

from natlens._enrich import (
    INVENTORY_COLUMNS,
    SERVICE_TAGS_SCHEMA,
    read_allowlist,
    read_hostnames,
    read_inventory,
    read_service_tags,
)
from natlens._files import LoadReport, read_flowlogs, scan_flowlogs
from natlens._metrics import read_metrics
from natlens._samples import SampleData, sample_data
from natlens._schema import METRICS_SCHEMA
from natlens._time import time_filter, time_range
from natlens._troubleshoot import find_flows
from natlens._typing import FrameLike, Inventory, PathLike, Resolver, Source, Targets, TimeLike

if TYPE_CHECKING:
    from azure.core.credentials import TokenCredential

    from natlens.azure import QueryOptions

__all__ = ["CHOICES", "LIVE_SPAN", "FlowData", "read_data"]

CHOICES: Final = ("samples", "log-analytics")
"""The words :func:`read_data` takes instead of a path."""

LIVE_SPAN: Final = timedelta(days=1)
"""What ``read_data("log-analytics")`` reads without ``start``/``end``: the last day."""

_AZURE_EXTRA = "pip install 'natlens[azure]'"
_WHEN = "%Y-%m-%d %H:%M"


@dataclass(frozen=True, eq=False)
class FlowData:
    """Flow records and what goes with them, as :func:`read_data` read them.

    Attributes
    ----------
    source
        Where the flows came from, in words (the samples' folder, your paths, the
        Log Analytics workspace).
    flows
        The flow records, exactly :data:`natlens.FLOW_SCHEMA`.
    metrics
        Gateway metrics in :data:`natlens.METRICS_SCHEMA`, or None where there are none
        (diagnose then says health was not checked).
    inventory
        IP -> VM name, subnet, team (:func:`natlens.read_inventory`); no rows when none
        was given, so VM names are null.
    resolver
        Hostname -> IPs (:func:`natlens.read_hostnames`, or the function given); empty
        when none was given, so no hostname is known.
    service_tags
        Azure Service Tags (:func:`natlens.read_service_tags`); no rows when none was
        given, so no destination gets a tag.
    allowlist
        The approved destinations (:func:`natlens.read_allowlist`), or None when none
        was given: an allowlist is a policy, and no policy is not an empty one.
    report
        What reading files kept and skipped (:class:`natlens.LoadReport`); None for
        Log Analytics.

    Examples
    --------
    >>> import natlens
    >>> data = natlens.read_data("samples", start="2026-11-09", end="2026-11-10")
    >>> data.flows.height, data.metrics.height, data.inventory.height, len(data.allowlist)
    (32909, 34560, 146, 33)
    >>> f"{data.first:%Y-%m-%d %H:%M} to {data.last:%H:%M}"
    '2026-11-09 00:00 to 23:59'
    """

    source: str
    flows: pl.DataFrame
    metrics: pl.DataFrame | None
    inventory: pl.DataFrame
    resolver: Resolver
    service_tags: pl.DataFrame
    allowlist: tuple[str, ...] | None
    report: LoadReport | None

    @property
    def first(self) -> datetime | None:
        """The time of the first flow record (UTC), None without records."""
        value = self.flows.get_column("time").min()
        return value if isinstance(value, datetime) else None

    @property
    def last(self) -> datetime | None:
        """The time of the last flow record (UTC), None without records."""
        value = self.flows.get_column("time").max()
        return value if isinstance(value, datetime) else None

    def summary(self) -> str:
        """Two lines: the records and their time span, then what came with them.

        Examples
        --------
        >>> import natlens
        >>> data = natlens.read_data(
        ...     natlens.sample_data().flowlogs, start="2026-11-09", end="2026-11-09T01:00"
        ... )
        >>> print(data.summary())  # doctest: +ELLIPSIS
        1,077 flow records from 2026-11-09 00:00 to 2026-11-09 00:59 UTC (.../flowlogs)
        metrics: none; inventory: none; hostnames: none; service tags: none; allowlist: none
        """
        first, last = self.first, self.last
        records = f"{self.flows.height:,} flow records"
        span = (
            f" from {first:{_WHEN}} to {last:{_WHEN}} UTC"
            if first is not None and last is not None
            else ""
        )
        head = f"{records}{span} ({self.source})"
        problems = self.report.problems if self.report is not None else []
        if problems:
            head += f"; skipped {len(problems):,} bad records (see .report)"
        resolver = self.resolver
        parts = [
            _count("metrics", None if self.metrics is None else self.metrics.height, "row"),
            _count("inventory", self.inventory.height or None, "IP"),
            "hostnames: a lookup function"
            if not isinstance(resolver, Mapping)
            else _count("hostnames", len(resolver) or None, "host"),
            _count("service tags", self.service_tags.height or None, "prefix", "prefixes"),
            _count(
                "allowlist",
                None if self.allowlist is None else len(self.allowlist),
                "entry",
                "entries",
            ),
        ]
        return head + "\n" + "; ".join(parts)

    def __str__(self) -> str:
        return self.summary()

    def __repr__(self) -> str:
        metrics = "None" if self.metrics is None else f"<{self.metrics.height:,} rows>"
        return (
            f"FlowData(source={self.source!r}, flows=<{self.flows.height:,} records>, "
            f"metrics={metrics}, inventory=<{self.inventory.height:,} rows>, "
            f"service_tags=<{self.service_tags.height:,} rows>, "
            f"allowlist={None if self.allowlist is None else len(self.allowlist)})"
        )


def _count(name: str, count: int | None, one: str, many: str | None = None) -> str:
    """``name: none`` for None, else the count with its unit (``1 IP``, ``146 IPs``)."""
    if count is None:
        return f"{name}: none"
    return f"{name}: {count:,} {one if count == 1 else many or one + 's'}"


def read_data(
    source: Source = "samples",
    *,
    start: TimeLike | None = None,
    end: TimeLike | None = None,
    gateways: Targets | None = None,
    metrics: FrameLike | PathLike | None = None,
    inventory: Inventory | None = None,
    resolver: Resolver | PathLike | None = None,
    service_tags: pl.DataFrame | PathLike | Mapping[str, Any] | None = None,
    allowlist: PathLike | Sequence[str] | None = None,
    workspace_id: str | None = None,
    options: QueryOptions | None = None,
    endpoint: str | None = None,
    credential: TokenCredential | None = None,
    progress: bool | None = None,
) -> FlowData:
    """Read flow logs, their gateway metrics and the side files in one call.

    What the notebooks' **YOUR DATA** cell calls: one value switches them from the
    shipped samples to your own data.

    Parameters
    ----------
    source
        Where the flow logs are: ``"samples"``, the week that ships with natlens, with
        its metrics and side files (offline); a folder of downloaded flow logs, a file,
        a glob or a list of them (anything :func:`natlens.read_flowlogs` reads; ``~`` is
        expanded); a ``natlens sync`` cache folder (read from its Parquet store, once);
        or ``"log-analytics"``, live from the workspace's ``NatGatewayFlowlogsV1``
        through :func:`natlens.read_log_analytics` (needs the ``azure`` extra,
        ``workspace_id`` and a login). The two words are choices, not folder names:
        pass ``Path("samples")`` or ``"./samples"`` for a folder of that name.
    start, end
        Keep records with ``start <= time < end`` (naive is UTC). For Log Analytics the
        default is the last day (:data:`LIVE_SPAN` up to now); otherwise everything.
    gateways
        Keep only these NAT gateways (resource ids or names), in every source; for Log
        Analytics the filter runs on the server.
    metrics
        Gateway metrics: a file (:func:`natlens.read_metrics`), a frame, or the region's
        Azure Monitor endpoint (``"https://westeurope.metrics.monitor.azure.com"``) to
        read them live (:func:`natlens.read_gateway_metrics`) for the ``gateways`` given
        as resource ids, else for the gateways in the flows. Default: the samples'
        metrics with ``"samples"``, none otherwise. Cut to ``start``/``end``.
    inventory, resolver, service_tags, allowlist
        The side files, each a path or the value its reader takes
        (:func:`natlens.read_inventory`, :func:`natlens.read_hostnames` or a lookup
        function, :func:`natlens.read_service_tags`, :func:`natlens.read_allowlist`).
        Default: the samples' own with ``"samples"``; otherwise none (see
        :class:`FlowData` for what none means for each). A value given replaces the
        samples' own.
    workspace_id
        The Log Analytics workspace id (a GUID, from the workspace's Properties); read
        only with ``"log-analytics"``.
    options
        Log Analytics query options (:class:`natlens.azure.QueryOptions`: rollup, plan,
        concurrency...); ``gateways`` and ``progress`` given here are added to them.
    endpoint
        The Log Analytics query endpoint; default Azure's public one.
    credential
        An azure-identity credential for Log Analytics and live metrics; default
        ``DefaultAzureCredential()`` (e.g. your ``az login``).
    progress
        Show a progress bar. Default: for a folder, a file or a cache, yes; for the
        samples, only above 256 MB; for Log Analytics, as ``options`` say.

    Returns
    -------
    FlowData
        ``flows``, ``metrics``, ``inventory``, ``resolver``, ``service_tags``,
        ``allowlist`` and the load ``report``; ``print`` it for the time span.

    Raises
    ------
    FileNotFoundError
        A ``source`` or side file that does not exist (the message names the argument
        and the full path).
    ValueError
        An unknown choice (``"sample"``), ``"log-analytics"`` without ``workspace_id``,
        or another bad argument, named.
    ImportError
        Log Analytics or live metrics without the ``azure`` extra (the message says
        what to install).

    Examples
    --------
    >>> import natlens
    >>> data = natlens.read_data("samples")
    >>> print(data)  # doctest: +ELLIPSIS, +NORMALIZE_WHITESPACE
    214,334 flow records from 2026-11-09 00:00 to 2026-11-15 23:59 UTC (the shipped samples, ...)
    metrics: 241,920 rows; inventory: 146 IPs; hostnames: 20 hosts;
    service tags: 123 prefixes; allowlist: 33 entries

    Your own data (the folder and the side files are yours)::

        data = natlens.read_data("~/Downloads/flowlogs", inventory="inventory.csv")
        data = natlens.read_data(
            "log-analytics",
            workspace_id="00000000-0000-0000-0000-000000000000",
            gateways="/subscriptions/.../natGateways/ng-weu-1",
            metrics="https://westeurope.metrics.monitor.azure.com",
        )
    """
    low, high = time_range(start, end)
    choice = _choice(source)
    sides = _Sides(
        metrics=metrics,
        inventory=inventory,
        resolver=resolver,
        service_tags=service_tags,
        allowlist=allowlist,
    )
    # Files that are not there fail now, before a long read or a billed query.
    sides.check()
    report: LoadReport | None = None
    if choice == "log-analytics":
        flows, low, high = _read_log_analytics(
            low,
            high,
            gateways=gateways,
            workspace_id=workspace_id,
            options=options,
            endpoint=endpoint,
            credential=credential,
            progress=progress,
        )
        origin = f"Log Analytics workspace {workspace_id}"
    elif choice == "samples":
        samples = sample_data()
        origin = f"the shipped samples, {samples.root}"
        report = LoadReport()
        flows = _read_files(
            samples.flowlogs, low, high, gateways=gateways, report=report, progress=progress
        )
        sides = sides.or_samples(samples)
    else:
        origin = _describe(source)
        report = LoadReport()
        progress = True if progress is None else progress
        flows = _read_files(
            _paths(source), low, high, gateways=gateways, report=report, progress=progress
        )
    live = sides.metrics if _is_url(sides.metrics) else None
    read = _read_sides(dataclasses.replace(sides, metrics=None) if live else sides, low, high)
    return FlowData(
        source=origin,
        flows=flows,
        metrics=read.metrics
        if live is None
        else _live_metrics(str(live), flows, low, high, gateways=gateways, credential=credential),
        inventory=_empty_inventory() if read.inventory is None else read.inventory,
        resolver={} if read.resolver is None else read.resolver,
        service_tags=SERVICE_TAGS_SCHEMA.to_frame()
        if read.service_tags is None
        else read.service_tags,
        allowlist=read.allowlist,
        report=report,
    )


# --------------------------------------------------------------------------- the source


def _choice(source: object) -> str | None:
    """``"samples"``, ``"log-analytics"``, or None for paths (checked to exist)."""
    if isinstance(source, str) and source in CHOICES:
        return source
    items = [source] if isinstance(source, str | os.PathLike) else source
    if not isinstance(items, Sequence) or isinstance(items, bytes) or not items:
        raise TypeError(
            f"source: expected {' or '.join(map(repr, CHOICES))}, a path or a list of "
            f"paths, got {source!r}"
        )
    for item in items:
        if not isinstance(item, str | os.PathLike):
            raise TypeError(f"source: expected a path, got {item!r}")
        text = os.fspath(item)
        path = Path(text).expanduser()
        if path.exists() or glob.has_magic(text):
            continue  # read_flowlogs reports a glob that matches nothing
        close = difflib.get_close_matches(text.lower(), CHOICES, n=1, cutoff=0.6)
        if isinstance(item, str) and close:
            raise ValueError(
                f"source: unknown choice {text!r}: did you mean {close[0]!r}? "
                f"(the choices are {', '.join(map(repr, CHOICES))}, or a path)"
            )
        raise FileNotFoundError(
            f"source: no such file or folder: {text!r} ({path.absolute()}); "
            f"or choose one of {', '.join(map(repr, CHOICES))}"
        )
    return None


def _paths(source: Source) -> Source:
    """``source`` with ``~`` expanded, as read_flowlogs takes it."""
    if isinstance(source, str | os.PathLike):
        return os.path.expanduser(os.fspath(source))
    return [os.path.expanduser(os.fspath(item)) for item in source]


def _describe(source: Source) -> str:
    items = [source] if isinstance(source, str | os.PathLike) else source
    return ", ".join(os.fspath(item) for item in items)


def _read_files(
    paths: Source,
    low: datetime | None,
    high: datetime | None,
    *,
    gateways: Targets | None,
    report: LoadReport,
    progress: bool | None,
) -> pl.DataFrame:
    if gateways is None:
        return read_flowlogs(paths, start=low, end=high, report=report, progress=progress)
    lazy = scan_flowlogs(paths, start=low, end=high, report=report, progress=progress)
    return find_flows(lazy, gateways=gateways)


def _read_log_analytics(
    low: datetime | None,
    high: datetime | None,
    *,
    gateways: Targets | None,
    workspace_id: str | None,
    options: QueryOptions | None,
    endpoint: str | None,
    credential: TokenCredential | None,
    progress: bool | None,
) -> tuple[pl.DataFrame, datetime, datetime]:
    if not isinstance(workspace_id, str) or not workspace_id.strip():
        raise ValueError(
            "workspace_id: source='log-analytics' needs the workspace id (a GUID, from "
            f"the workspace's Properties), got {workspace_id!r}"
        )
    _need_azure("azure.monitor.query", "source='log-analytics'")
    from natlens.azure import QueryOptions, read_log_analytics

    if options is None:
        options = QueryOptions()
    elif not isinstance(options, QueryOptions):
        raise TypeError(
            f"options: expected natlens.azure.QueryOptions, got {type(options).__name__}"
        )
    if gateways is not None:
        if options.gateways is not None:
            raise ValueError("gateways: given twice, as gateways= and in options; keep one")
        options = dataclasses.replace(options, gateways=gateways)
    if progress is not None:
        options = dataclasses.replace(options, progress=progress)
    high = datetime.now(UTC) if high is None else high
    low = high - LIVE_SPAN if low is None else low
    if high <= low:
        raise ValueError(f"start: {low.isoformat()} is not before now ({high.isoformat()})")
    flows = read_log_analytics(
        workspace_id.strip(),
        low,
        high,
        options=options,
        credential=credential,
        endpoint=endpoint,
    )
    return flows, low, high


def _need_azure(module: str, what: str) -> None:
    """Fail up front, saying what to install, when the azure extra is missing."""
    try:
        importlib.import_module(module)
        importlib.import_module("azure.identity")
    except ImportError:
        raise ImportError(f"{what} needs the azure extra: {_AZURE_EXTRA}") from None


# --------------------------------------------------------------------------- what comes with it


@dataclass(frozen=True)
class _Sides:
    """The inputs that go with the flows, as given: a path or a value each, or None.

    The one place that says which side files there are and which of them the samples
    bring: :func:`read_data` and the command line's ``triage``/``report`` both read
    them through :func:`_read_sides`.
    """

    metrics: FrameLike | PathLike | None = None
    inventory: Inventory | None = None
    resolver: Resolver | PathLike | None = None
    service_tags: pl.DataFrame | PathLike | Mapping[str, Any] | None = None
    allowlist: PathLike | Sequence[str] | None = None

    def or_samples(self, samples: SampleData) -> _Sides:
        """These, with the samples' own file for each one not given."""
        return _Sides(
            metrics=samples.metrics if self.metrics is None else self.metrics,
            inventory=samples.inventory if self.inventory is None else self.inventory,
            resolver=samples.hostnames if self.resolver is None else self.resolver,
            service_tags=samples.service_tags if self.service_tags is None else self.service_tags,
            allowlist=samples.allowlist if self.allowlist is None else self.allowlist,
        )

    def check(self) -> None:
        """Fail now, naming the argument, for a side file that is not there."""
        for side in dataclasses.fields(self):
            value = getattr(self, side.name)
            if isinstance(value, str | os.PathLike) and not _is_url(value):
                _existing(value, side.name)


@dataclass(frozen=True)
class _ReadSides:
    """The side inputs read by their readers; None where none was given."""

    metrics: pl.DataFrame | None
    inventory: pl.DataFrame | None
    resolver: Resolver | None
    service_tags: pl.DataFrame | None
    allowlist: tuple[str, ...] | None


def _read_sides(
    sides: _Sides, low: datetime | None = None, high: datetime | None = None
) -> _ReadSides:
    """Each side input read by its reader (a file's own reader says when it is missing).

    Metrics are cut to ``[low, high)``; an Azure Monitor endpoint is not read here (it
    needs the flows' gateways): :func:`read_data` reads it after the flows.
    """
    allowlist = _read_side(sides.allowlist, read_allowlist)
    return _ReadSides(
        metrics=_metrics(sides.metrics, low, high),
        inventory=_read_side(sides.inventory, read_inventory),
        resolver=_resolver(sides.resolver),
        service_tags=_read_side(sides.service_tags, _service_tags),
        allowlist=None if allowlist is None else tuple(allowlist),
    )


def _metrics(
    metrics: FrameLike | PathLike | None,
    low: datetime | None,
    high: datetime | None,
) -> pl.DataFrame | None:
    if metrics is None:
        return None
    if isinstance(metrics, pl.DataFrame | pl.LazyFrame):
        frame = metrics.lazy().collect()
        missing = [name for name in METRICS_SCHEMA.names() if name not in frame.columns]
        if missing:
            raise ValueError(f"metrics: missing column(s) {missing}; expected METRICS_SCHEMA")
    elif isinstance(metrics, str | os.PathLike):
        frame = read_metrics(_expanded(metrics))
    else:
        raise TypeError(
            "metrics: expected a file, a frame or a metrics endpoint URL, "
            f"got {type(metrics).__name__}"
        )
    window = time_filter(low, high)
    return frame if window is None else frame.filter(window)


def _live_metrics(
    endpoint: str,
    flows: pl.DataFrame,
    low: datetime | None,
    high: datetime | None,
    *,
    gateways: Targets | None,
    credential: TokenCredential | None,
) -> pl.DataFrame:
    _need_azure("azure.monitor.querymetrics", "metrics from an Azure Monitor endpoint")
    from natlens.azure import read_gateway_metrics

    given = [] if gateways is None else [gateways] if isinstance(gateways, str) else list(gateways)
    ids = [g for g in given if g.strip().lower().startswith("/subscriptions/")]
    if len(ids) < len(given) or not ids:
        # Gateway names (or none): the gateways the flows went through.
        ids = flows.get_column("resource_id").drop_nulls().unique().sort().to_list()
    if not ids:
        raise ValueError(
            "metrics: no NAT gateway to ask for metrics: no flow records, and no gateways= "
            "resource id (/subscriptions/<sub>/resourceGroups/<rg>/providers/"
            "Microsoft.Network/natGateways/<name>)"
        )
    # Without a window, the flows' span (they are not empty: their gateways were taken).
    first, last = flows.get_column("time").min(), flows.get_column("time").max()
    if low is None:
        low = first if isinstance(first, datetime) else None
    if high is None:
        high = last + timedelta(minutes=1) if isinstance(last, datetime) else None
    if low is None or high is None:
        raise ValueError("metrics: no time window: give start= and end=, or flows to span")
    return read_gateway_metrics(ids, low, high, endpoint=endpoint, credential=credential)


def _is_url(value: object) -> bool:
    return isinstance(value, str) and value.startswith(("https://", "http://"))


def _existing(path: PathLike, argument: str) -> Path:
    file = Path(os.fspath(path)).expanduser()
    if not file.is_file():
        raise FileNotFoundError(
            f"{argument}: no such file: {os.fspath(path)!r} ({file.absolute()})"
        )
    return file


def _expanded(path: PathLike) -> Path:
    return Path(os.fspath(path)).expanduser()


def _read_side(value: Any, reader: Callable[[Any], Any]) -> Any:
    """A side file (``~`` expanded) or value read by its reader; None when none is given."""
    if value is None:
        return None
    return reader(_expanded(value) if isinstance(value, str | os.PathLike) else value)


def _service_tags(value: pl.DataFrame | PathLike | Mapping[str, Any]) -> pl.DataFrame:
    """A Service Tags frame as given (checked), or read from its file or JSON."""
    if not isinstance(value, pl.DataFrame):
        return read_service_tags(value)
    missing = sorted({"tag", "prefix"} - set(value.columns))
    if missing:
        raise ValueError(f"service_tags: missing column(s) {missing} (see read_service_tags)")
    return value


def _empty_inventory() -> pl.DataFrame:
    return pl.DataFrame(schema=dict.fromkeys(INVENTORY_COLUMNS, pl.String))


def _resolver(value: Resolver | PathLike | None) -> Resolver | None:
    if value is None:
        return None
    if isinstance(value, str | os.PathLike):
        return read_hostnames(_expanded(value))
    if isinstance(value, Mapping):
        return read_hostnames(value)
    if callable(value):
        return value
    raise TypeError(
        "resolver: expected a hostnames file, a mapping host -> IPs or a function, "
        f"got {type(value).__name__}"
    )
