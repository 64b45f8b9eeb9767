"""Flow records from a Log Analytics workspace, with the filters and the rollup run in KQL.

The range is cut into time windows that stay under the query API's limits (500,000
rows, ~100 MiB per answer). Windows run concurrently (at most five, the per-user
limit). A window whose answer comes back partial or at the row cap is split in two and
asked again; one that cannot be split any further raises :class:`LogAnalyticsError`
naming it, so a truncated answer is never kept in silence. Throttling (429 with
``Retry-After``) is waited out by the Azure SDK's retry policy.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import polars as pl

from natlens._schema import COUNTER_COLUMNS, FLOW_SCHEMA, canonicalize, conform, empty_flows
from natlens.azure._kql import (
    FLOW_TABLES,
    TableColumns,
    build_flow_query,
    column_map,
    parse_grain,
    schema_query,
)

__all__ = [
    "LogAnalyticsError",
    "read_log_analytics",
    "read_log_analytics_resource",
    "scan_log_analytics",
    "scan_log_analytics_resource",
]

MAX_ROWS = 500_000
MAX_CONCURRENCY = 5


class _QueryError(RuntimeError):
    """A KQL query failed, or a window's full answer could not be obtained."""


class LogAnalyticsError(_QueryError):
    """A Log Analytics query failed, or a window's full answer could not be obtained."""


class DataExplorerError(_QueryError):
    """An Azure Data Explorer query failed, or a window's full answer could not be obtained."""


@dataclass(frozen=True)
class _Answer:
    """One query's answer: the first table, or why it is not whole."""

    columns: list[str]
    rows: list[list[Any]]
    partial: str | None = None


@dataclass(frozen=True)
class _Window:
    start: datetime
    end: datetime

    def __str__(self) -> str:
        return f"[{self.start.isoformat()}, {self.end.isoformat()})"


# (query, window or None) -> the answer; raises a _QueryError when the query fails.
_Runner = Callable[[str, "_Window | None"], _Answer]


def _client(credential: Any, endpoint: str | None) -> Any:
    try:
        from azure.monitor.query import LogsQueryClient
    except ImportError as err:  # pragma: no cover - depends on the environment
        raise ImportError(
            "Log Analytics needs the azure extra: pip install 'natlens[azure]'"
        ) from err
    if credential is None:
        from azure.identity import DefaultAzureCredential

        credential = DefaultAzureCredential()
    kwargs: dict[str, Any] = {}
    if endpoint is not None:
        kwargs["endpoint"] = endpoint.rstrip("/")
    return LogsQueryClient(credential, **kwargs)


def _runner(
    client: Any,
    target: str,
    *,
    resource: bool,
    endpoint: str | None,
    server_timeout: int,
) -> _Runner:
    extra: dict[str, Any] = {"server_timeout": server_timeout}
    if endpoint is not None and endpoint.startswith("http://"):
        extra["enforce_https"] = False
    call = client.query_resource if resource else client.query_workspace

    def run(query: str, window: _Window | None) -> _Answer:
        from azure.core.exceptions import HttpResponseError
        from azure.monitor.query import LogsQueryStatus

        timespan = None if window is None else (window.start, window.end)
        try:
            result = call(target, query, timespan=timespan, **extra)
        except HttpResponseError as err:
            where = "" if window is None else f" for window {window}"
            raise LogAnalyticsError(
                f"Log Analytics query on {target}{where} failed: {_error_text(err)}"
            ) from None
        if result.status != LogsQueryStatus.SUCCESS:
            error = result.partial_error
            reason = f"{getattr(error, 'code', '')} {getattr(error, 'message', '')}".strip()
            return _Answer([], [], partial=f"partial answer: {reason}")
        if not result.tables:
            return _Answer([], [])
        table = result.tables[0]
        return _Answer(list(table.columns), [list(row) for row in table.rows])

    return run


def _error_text(err: Any) -> str:
    model = getattr(err, "model", None)
    code = getattr(model, "code", None) or getattr(err, "status_code", None) or ""
    message = getattr(model, "message", None) or getattr(err, "message", None) or str(err)
    return f"{code} {message}".strip()


def _discover(run: _Runner, table: str | None, error: type[_QueryError]) -> TableColumns:
    tried: list[str] = []
    for name in (table,) if table is not None else FLOW_TABLES:
        try:
            answer = run(schema_query(name), None)
        except _QueryError as err:
            tried.append(f"{name}: {err}")
            continue
        if answer.partial is not None or not answer.rows:
            tried.append(f"{name}: no schema in the answer ({answer.partial or 'empty'})")
            continue
        return column_map(name, [str(row[0]) for row in answer.rows])
    raise error("no flow-log table found; tried " + "; ".join(tried))


def _to_frame(answer: _Answer) -> pl.DataFrame:
    names, rows = answer.columns, answer.rows
    if not rows:
        return empty_flows()
    frame = pl.DataFrame(rows, schema=names, orient="row", infer_schema_length=None)
    time = frame.get_column("time")
    if time.dtype == pl.String:
        frame = frame.with_columns(pl.col("time").str.to_datetime(time_zone="UTC"))
    elif isinstance(time.dtype, pl.Datetime) and time.dtype.time_zone is None:
        frame = frame.with_columns(pl.col("time").dt.replace_time_zone("UTC"))
    return canonicalize(conform(frame.with_columns(pl.col("time").dt.convert_time_zone("UTC"))))


def _split(window: _Window, step: timedelta) -> tuple[_Window, _Window] | None:
    """Halve ``window`` on a multiple of ``step`` from its start, or None if too small."""
    steps = (window.end - window.start) // step
    if steps < 2:
        return None
    middle = window.start + step * (steps // 2)
    return _Window(window.start, middle), _Window(middle, window.end)


def _windows(start: datetime, end: datetime, size: timedelta) -> list[_Window]:
    out: list[_Window] = []
    cursor = start
    while cursor < end:
        out.append(_Window(cursor, min(cursor + size, end)))
        cursor += size
    return out


def _fetch(
    run: _Runner,
    start: datetime,
    end: datetime,
    *,
    table: str | None,
    sources: Sequence[str] | str | None,
    destinations: Sequence[str] | str | None,
    nat_ips: Sequence[str] | str | None,
    gateways: Sequence[str] | str | None,
    rollup: str | timedelta | None,
    window: timedelta | None,
    max_concurrency: int,
    max_rows: int,
    progress: bool | None,
    error: type[_QueryError] = LogAnalyticsError,
    label: str = "Log Analytics",
    concurrency_limit: int = MAX_CONCURRENCY,
) -> pl.DataFrame:
    from tqdm.auto import tqdm

    for argument, value in (("start", start), ("end", end)):
        if not isinstance(value, datetime) or value.tzinfo is None:
            raise ValueError(f"{argument} must be a timezone-aware datetime, got {value!r}")
    start, end = start.astimezone(UTC), end.astimezone(UTC)
    if end <= start:
        raise ValueError(f"end ({end.isoformat()}) must be after start ({start.isoformat()})")
    if not 1 <= max_concurrency <= concurrency_limit:
        raise ValueError(
            f"max_concurrency={max_concurrency} must be between 1 and {concurrency_limit}"
            + (
                ": Log Analytics answers 429 beyond five concurrent queries per user"
                if concurrency_limit == MAX_CONCURRENCY
                else ""
            )
        )
    if not 1 <= max_rows <= MAX_ROWS:
        raise ValueError(f"max_rows={max_rows} must be between 1 and {MAX_ROWS}")
    step = timedelta(minutes=1) if rollup is None else parse_grain(rollup)
    if window is None:
        # Raw: an hour. Rolled up: about a day, in whole bins.
        window = timedelta(hours=1) if rollup is None else step * -(-timedelta(days=1) // step)
    if window < step or window % step:
        raise ValueError(f"window={window} must be a whole multiple of the grain {step}")

    columns = _discover(run, table, error)

    def query(w: _Window) -> str:
        return build_flow_query(
            columns,
            w.start,
            w.end,
            sources=sources,
            destinations=destinations,
            nat_ips=nat_ips,
            gateways=gateways,
            rollup=rollup,
        )

    pending = _windows(start, end, window)
    frames: list[pl.DataFrame] = []
    lock = threading.Lock()
    bar = tqdm(
        total=len(pending),
        unit="window",
        desc=label,
        disable=None if progress is None else not progress,
    )

    def one(w: _Window) -> tuple[_Window, pl.DataFrame | None, str]:
        answer = run(query(w), w)
        if answer.partial is not None:
            return w, None, answer.partial
        if len(answer.rows) >= max_rows:
            return w, None, f"the answer reached the {max_rows}-row cap"
        return w, _to_frame(answer), ""

    try:
        with ThreadPoolExecutor(max_workers=max_concurrency) as pool:
            running: set[Future[tuple[_Window, pl.DataFrame | None, str]]] = {
                pool.submit(one, w) for w in pending
            }
            while running:
                done, running = wait(running, return_when=FIRST_COMPLETED)
                for future in done:
                    w, frame, reason = future.result()
                    if frame is not None:
                        with lock:
                            frames.append(frame)
                        bar.update(1)
                        continue
                    halves = _split(w, step)
                    if halves is None:
                        for other in running:
                            other.cancel()
                        raise error(
                            f"window {w} cannot be fetched whole ({reason}) and is already "
                            f"one grain ({step}) long; narrow the filters or use a rollup"
                        )
                    bar.total += 1
                    bar.refresh()
                    running |= {pool.submit(one, half) for half in halves}
    finally:
        bar.close()

    flows = pl.concat([empty_flows(), *frames], how="vertical")
    if rollup is not None:
        # A bin that straddles two windows comes back once from each: add them up.
        keys = ["time", "source_ip", "destination_ip", "nat_gateway_ip", "resource_id"]
        flows = flows.group_by(keys).agg(pl.col(c).sum() for c in COUNTER_COLUMNS)
        flows = flows.select(FLOW_SCHEMA.names())
    return flows.sort("time", "source_ip", "destination_ip", "nat_gateway_ip", nulls_last=True)


_DOC_PARAMETERS = """
    start, end
        Timezone-aware bounds of the range; ``start`` included, ``end`` excluded.
    credential
        An azure-identity credential; default ``DefaultAzureCredential()``.
    sources, destinations, nat_ips
        Keep only these IP addresses (filtered in KQL, on the server).
    gateways
        Keep only these NAT gateways: resource ids, or gateway names.
    rollup
        A grain such as ``"1h"``: the counters are summed on the server per time bin,
        source, destination, NAT IP and gateway. None returns the raw 1-minute records.
    table
        The table's name; default: the first of ``NatGatewayFlowlogsV1`` and
        ``NatGatewayFlowLogsV1`` the workspace has.
    window
        Length of one query's time window (default 1 hour raw, 1 day with a rollup).
    max_concurrency
        Queries in flight at once, 1 to 5.
    max_rows
        The row cap of one answer (the service's is 500,000).
    server_timeout
        Seconds the service may run one query (at most 600).
    endpoint
        The query endpoint, default ``https://api.loganalytics.io``.
    progress
        Show a tqdm progress bar; None shows it only on a terminal or notebook.
"""


def read_log_analytics(
    workspace_id: str,
    start: datetime,
    end: datetime,
    *,
    credential: Any = None,
    sources: Sequence[str] | str | None = None,
    destinations: Sequence[str] | str | None = None,
    nat_ips: Sequence[str] | str | None = None,
    gateways: Sequence[str] | str | None = None,
    rollup: str | timedelta | None = None,
    table: str | None = None,
    window: timedelta | None = None,
    max_concurrency: int = 4,
    max_rows: int = MAX_ROWS,
    server_timeout: int = 600,
    endpoint: str | None = None,
    progress: bool | None = None,
) -> pl.DataFrame:
    """Read NAT gateway flow records from a Log Analytics workspace.

    Returns a frame with exactly :data:`natlens.FLOW_SCHEMA`, sorted by time, so every
    natlens analysis takes it. See the module notes for windows, limits and retries.

    Parameters
    ----------
    workspace_id
        The workspace id (a GUID, from the workspace's Properties).
    {parameters}
    Raises
    ------
    LogAnalyticsError
        If a query fails, or a window's answer is partial even at one grain.

    Examples
    --------
    Sum a month per hour on the server (needs an Azure login)::

        import natlens
        from datetime import datetime, UTC

        hourly = natlens.read_log_analytics(
            "00000000-0000-0000-0000-000000000000",
            datetime(2025, 10, 1, tzinfo=UTC),
            datetime(2025, 11, 1, tzinfo=UTC),
            rollup="1h",
        )
    """
    run = _runner(
        _client(credential, endpoint),
        workspace_id,
        resource=False,
        endpoint=endpoint,
        server_timeout=server_timeout,
    )
    return _fetch(
        run,
        start,
        end,
        table=table,
        sources=sources,
        destinations=destinations,
        nat_ips=nat_ips,
        gateways=gateways,
        rollup=rollup,
        window=window,
        max_concurrency=max_concurrency,
        max_rows=max_rows,
        progress=progress,
    )


def read_log_analytics_resource(
    resource_id: str,
    start: datetime,
    end: datetime,
    *,
    credential: Any = None,
    sources: Sequence[str] | str | None = None,
    destinations: Sequence[str] | str | None = None,
    nat_ips: Sequence[str] | str | None = None,
    gateways: Sequence[str] | str | None = None,
    rollup: str | timedelta | None = None,
    table: str | None = None,
    window: timedelta | None = None,
    max_concurrency: int = 4,
    max_rows: int = MAX_ROWS,
    server_timeout: int = 600,
    endpoint: str | None = None,
    progress: bool | None = None,
) -> pl.DataFrame:
    """Read flow records in the context of one Azure resource (e.g. the NAT gateway).

    Same as :func:`read_log_analytics`, but the query runs on the resource's logs
    (``/v1/{{resource_id}}/query``): no workspace id needed, only read access to the
    resource.

    Parameters
    ----------
    resource_id
        The ARM id of the resource, e.g. the NAT gateway's.
    {parameters}
    Examples
    --------
    ::

        flows = natlens.read_log_analytics_resource(
            "/subscriptions/.../resourceGroups/rg/providers/Microsoft.Network/natGateways/ng",
            datetime(2025, 11, 4, tzinfo=UTC),
            datetime(2025, 11, 5, tzinfo=UTC),
        )
    """
    run = _runner(
        _client(credential, endpoint),
        resource_id,
        resource=True,
        endpoint=endpoint,
        server_timeout=server_timeout,
    )
    return _fetch(
        run,
        start,
        end,
        table=table,
        sources=sources,
        destinations=destinations,
        nat_ips=nat_ips,
        gateways=gateways,
        rollup=rollup,
        window=window,
        max_concurrency=max_concurrency,
        max_rows=max_rows,
        progress=progress,
    )


def scan_log_analytics(
    workspace_id: str, start: datetime, end: datetime, **options: Any
) -> pl.LazyFrame:
    """Lazy form of :func:`read_log_analytics`: the queries run when the frame is collected.

    Each ``collect()`` queries again; collect once and keep the frame (or write it with
    ``natlens.write_parquet``) to reuse it. Options are those of
    :func:`read_log_analytics`.

    Examples
    --------
    ::

        lazy = natlens.scan_log_analytics(workspace, start, end, rollup="15m")
        top = lazy.group_by("destination_ip").agg(pl.col("bytes_sent").sum()).collect()
    """
    return pl.defer(
        lambda: read_log_analytics(workspace_id, start, end, **options),
        schema=FLOW_SCHEMA,
    )


def scan_log_analytics_resource(
    resource_id: str, start: datetime, end: datetime, **options: Any
) -> pl.LazyFrame:
    """Lazy form of :func:`read_log_analytics_resource`.

    Examples
    --------
    ::

        lazy = natlens.scan_log_analytics_resource(gateway_id, start, end, rollup="1h")
    """
    return pl.defer(
        lambda: read_log_analytics_resource(resource_id, start, end, **options),
        schema=FLOW_SCHEMA,
    )


for _function in (read_log_analytics, read_log_analytics_resource):
    if _function.__doc__:
        _function.__doc__ = _function.__doc__.format(parameters=_DOC_PARAMETERS.strip())
