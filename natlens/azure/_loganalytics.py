"""Flow records from a Log Analytics workspace, with the filters and the rollup run in KQL.

The range is cut into time windows that stay under the query API's limits (500,000
rows, ~100 MiB per answer). Windows run concurrently (at most five, the per-user
limit). A window whose answer comes back partial or at the row cap is split in two and
asked again; one that cannot be split any further raises :class:`LogAnalyticsError`
naming it, so a truncated answer is never kept in silence. Throttling (429 with
``Retry-After``) is waited out by the Azure SDK's retry policy.

A table on the Basic plan is queried within that plan's limits (Microsoft's "Query
data in a Basic and Auxiliary table" and "Azure Monitor service limits" pages): through
the workspace's ``/search`` API, never ``/query`` nor a resource's context; two
concurrent queries per user; the time range in the request, not in the KQL; only the
last 30 days. Such queries are billed per GB of the table's data in the range, whatever
the filters. ``plan="auto"`` (the default) finds the plan from the service's answer
(it refuses ``/query`` on a Basic table); ``plan="basic"`` says it up front.
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
BASIC_CONCURRENCY = 2
"""Concurrent queries per user on a Basic-plan table."""
BASIC_LOOKBACK = timedelta(days=30)
"""How far back a Basic-plan table answers queries (older records need a search job)."""
PLANS = ("auto", "analytics", "basic")
_SEARCH_JOBS = "https://learn.microsoft.com/azure/azure-monitor/logs/search-jobs"


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


class _Plan:
    """The table plan a read works with: given, or found from the service's answers."""

    def __init__(self, plan: str) -> None:
        if plan not in PLANS:
            raise ValueError(f"plan={plan!r} must be one of {', '.join(map(repr, PLANS))}")
        self.plan = plan

    @property
    def basic(self) -> bool:
        return self.plan == "basic"


def _refused_as_basic(err: Any) -> bool:
    """Whether the service refused a query because its table is on the Basic plan."""
    text = f"{err} {getattr(err, 'message', '')}"
    return "UnsupportedApiQueryValidationError" in text or "Basic Logs" in text


class _BasicPlanError(LogAnalyticsError):
    """The table is on the Basic plan and the read cannot be done on it."""


def _basic_resource_error(target: str) -> LogAnalyticsError:
    return _BasicPlanError(
        f"the flow-log table is on the Basic plan, which cannot be queried in a resource's "
        f"context ({target}): use read_log_analytics(<workspace id>, ..., plan='basic') "
        "with the workspace that holds the table"
    )


def _search_timespan(window: _Window | None) -> str:
    """The request's timespan for ``/search``: the window, or the last day for a schema.

    The service's timespan bounds are not documented as end-exclusive, so the window
    ends one microsecond early: a record exactly on a window boundary is read once.
    """
    if window is None:
        end = datetime.now(UTC)  # a schema: the last day
        start = end - timedelta(days=1)
    else:
        start, end = window.start, window.end - timedelta(microseconds=1)
    # "Z", not "+00:00": a "+" in a query string reads as a space.
    return f"{start:%Y-%m-%dT%H:%M:%S.%fZ}/{end:%Y-%m-%dT%H:%M:%S.%fZ}"


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
    plan: _Plan,
) -> _Runner:
    extra: dict[str, Any] = {"server_timeout": server_timeout}
    https: dict[str, Any] = {}
    if endpoint is not None and endpoint.startswith("http://"):
        https["enforce_https"] = False
    call = client.query_resource if resource else client.query_workspace
    base = (endpoint or "https://api.loganalytics.io").rstrip("/")

    def search(query: str, window: _Window | None) -> _Answer:
        """A Basic-plan table's query: ``/search``, through the client's own pipeline."""
        from urllib.parse import quote

        from azure.core.exceptions import HttpResponseError
        from azure.core.rest import HttpRequest

        request = HttpRequest(
            "POST",
            f"{base}/v1/workspaces/{quote(target, safe='')}/search",
            params={"timespan": _search_timespan(window)},
            json={"query": query},
            headers={"Prefer": f"wait={server_timeout}"},
        )
        response = client.send_request(request, **https)
        try:
            response.raise_for_status()
            body = response.json()
        except (HttpResponseError, ValueError) as err:
            where = "" if window is None else f" for window {window}"
            raise LogAnalyticsError(
                f"Log Analytics query (Basic plan) on {target}{where} failed: "
                f"{_search_error(response, err)}"
            ) from None
        error = body.get("error")
        if error:
            return _Answer([], [], partial=f"partial answer: {_error_message(error)}")
        tables = body.get("tables") or []
        if not tables:
            return _Answer([], [])
        return _Answer(
            [str(c["name"]) for c in tables[0]["columns"]],
            [list(row) for row in tables[0]["rows"]],
        )

    def run(query: str, window: _Window | None) -> _Answer:
        from azure.core.exceptions import HttpResponseError
        from azure.monitor.query import LogsQueryStatus

        if plan.basic:
            if resource:
                raise _basic_resource_error(target)
            return search(query, window)
        timespan = None if window is None else (window.start, window.end)
        try:
            result = call(target, query, timespan=timespan, **extra, **https)
        except HttpResponseError as err:
            if plan.plan == "auto" and _refused_as_basic(err):
                if resource:
                    raise _basic_resource_error(target) from None
                plan.plan = "basic"
                return search(query, window)
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


def _error_message(error: Any) -> str:
    """The innermost message of a Log Analytics ``error`` member."""
    if not isinstance(error, dict):
        return str(error)
    inner = error.get("innererror") or (error.get("details") or [None])[0]
    if isinstance(inner, dict) and inner.get("message"):
        return f"{inner.get('code', '')} {_error_message(inner)}".strip()
    return f"{error.get('code', '')} {error.get('message', '')}".strip()


def _search_error(response: Any, err: Exception) -> str:
    try:
        return _error_message(response.json().get("error"))
    except (ValueError, AttributeError):
        return f"HTTP {getattr(response, 'status_code', '?')}: {err}"


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
        except _BasicPlanError:
            raise
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
    plan: _Plan | None = None,
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
    if plan is not None and plan.basic:
        _check_basic(start, max_concurrency, ValueError)  # before anything is billed

    columns = _discover(run, table, error)
    basic = plan is not None and plan.basic
    if basic:
        # Found from the service's answer: stay within the plan's limits.
        _check_basic(start, BASIC_CONCURRENCY, error)
        max_concurrency = min(max_concurrency, BASIC_CONCURRENCY)

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
            plan="basic" if basic else "analytics",
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


def _check_basic(start: datetime, max_concurrency: int, error: type[Exception]) -> None:
    """Refuse what a Basic-plan table cannot answer, before asking."""
    if max_concurrency > BASIC_CONCURRENCY:
        raise error(
            f"max_concurrency={max_concurrency}: a Basic-plan table allows "
            f"{BASIC_CONCURRENCY} concurrent queries per user"
        )
    oldest = datetime.now(UTC) - BASIC_LOOKBACK
    if start < oldest:
        raise error(
            f"start {start.isoformat()} is more than {BASIC_LOOKBACK.days} days ago: a "
            f"Basic-plan table answers queries on its last {BASIC_LOOKBACK.days} days only "
            f"(from {oldest.isoformat(timespec='seconds')}); older records need a search "
            f"job ({_SEARCH_JOBS}) or a restore"
        )


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
        Queries in flight at once, 1 to 5 (default 4); on a Basic-plan table 1 or 2
        (default 2).
    max_rows
        The row cap of one answer (the service's is 500,000).
    server_timeout
        Seconds the service may run one query (at most 600).
    endpoint
        The query endpoint, default ``https://api.loganalytics.io``.
    progress
        Show a tqdm progress bar; None shows it only on a terminal or notebook.
    plan
        The table's plan: ``"auto"`` (found from the service's answer), ``"analytics"``
        or ``"basic"``. A Basic-plan table is read through the workspace's ``/search``
        API, at most two queries at once, for the last 30 days only, and each query is
        billed per GB of the table's data in its time window.
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
    max_concurrency: int | None = None,
    max_rows: int = MAX_ROWS,
    server_timeout: int = 600,
    endpoint: str | None = None,
    progress: bool | None = None,
    plan: str = "auto",
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
    state = _Plan(plan)
    run = _runner(
        _client(credential, endpoint),
        workspace_id,
        resource=False,
        endpoint=endpoint,
        server_timeout=server_timeout,
        plan=state,
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
        max_concurrency=(BASIC_CONCURRENCY if state.basic else 4)
        if max_concurrency is None
        else max_concurrency,
        max_rows=max_rows,
        progress=progress,
        plan=state,
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
    max_concurrency: int | None = None,
    max_rows: int = MAX_ROWS,
    server_timeout: int = 600,
    endpoint: str | None = None,
    progress: bool | None = None,
    plan: str = "auto",
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
    state = _Plan(plan)
    if state.basic:
        raise ValueError(
            "plan='basic': a Basic-plan table cannot be queried in a resource's context; "
            "use read_log_analytics(<workspace id>, ..., plan='basic') with the workspace "
            "that holds the table"
        )
    run = _runner(
        _client(credential, endpoint),
        resource_id,
        resource=True,
        endpoint=endpoint,
        server_timeout=server_timeout,
        plan=state,
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
        max_concurrency=(BASIC_CONCURRENCY if state.basic else 4)
        if max_concurrency is None
        else max_concurrency,
        max_rows=max_rows,
        progress=progress,
        plan=state,
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
