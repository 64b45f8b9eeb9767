"""Flow records from a Log Analytics workspace, with the filters and the rollup run in KQL.

The range is cut into spans that stay under the query API's limits (500,000 rows,
~100 MiB per answer), queried concurrently (at most five, the per-user limit); a span
whose answer comes back partial or at the row cap is split in two and asked again (see
``natlens.azure._engine``). Throttling (429 with ``Retry-After``) is waited out by the
Azure SDK's retry policy.

A table on the Basic plan is queried within that plan's limits (Microsoft's "Query
data in a Basic and Auxiliary table" and "Azure Monitor service limits" pages): through
the workspace's ``/search`` API, never ``/query`` nor a resource's context; two
concurrent queries per user; the time range in the request, not in the KQL; only the
last 30 days. Such queries are billed per GB of the table's data in the range, whatever
the filters. ``plan="auto"`` (the default) finds the plan from the service's answer
(it refuses ``/query`` on a Basic table); ``plan="basic"`` says it up front.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

import polars as pl

from natlens._schema import FLOW_SCHEMA
from natlens._typing import TimeLike
from natlens.azure._engine import Answer, QueryError, Service, Window, fetch
from natlens.azure._options import QueryOptions

if TYPE_CHECKING:
    from azure.core.credentials import TokenCredential

__all__ = [
    "LogAnalyticsError",
    "read_log_analytics",
    "read_log_analytics_resource",
    "scan_log_analytics",
    "scan_log_analytics_resource",
]

MAX_CONCURRENCY = 5
"""Concurrent queries per user Log Analytics answers (429 beyond)."""
BASIC_CONCURRENCY = 2
"""Concurrent queries per user on a Basic-plan table."""
BASIC_LOOKBACK = timedelta(days=30)
"""How far back a Basic-plan table answers queries (older records need a search job)."""
_SEARCH_JOBS = "https://learn.microsoft.com/azure/azure-monitor/logs/search-jobs"


class LogAnalyticsError(QueryError):
    """A Log Analytics query failed, or a span's full answer could not be obtained."""


class _BasicPlanError(LogAnalyticsError):
    """The table is on the Basic plan and the read cannot be done on it."""

    final = True


def _refused_as_basic(err: Any) -> bool:
    """Whether the service refused a query because its table is on the Basic plan."""
    text = f"{err} {getattr(err, 'message', '')}"
    return "UnsupportedApiQueryValidationError" in text or "Basic Logs" in text


def _basic_resource_error(target: str) -> LogAnalyticsError:
    return _BasicPlanError(
        f"the flow-log table is on the Basic plan, which cannot be queried in a resource's "
        f"context ({target}): use read_log_analytics(<workspace id>, ..., "
        "options=QueryOptions(plan='basic')) with the workspace that holds the table"
    )


def _search_timespan(window: Window | None) -> str:
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


def _client(credential: TokenCredential | None, endpoint: str | None) -> Any:
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


class _LogAnalytics(Service):
    """A workspace's (or a resource's) query API, ``/search`` for a Basic-plan table."""

    label = "Log Analytics"
    error = LogAnalyticsError
    concurrency_limit = MAX_CONCURRENCY
    limit_note = ": Log Analytics answers 429 beyond five concurrent queries per user"

    def __init__(
        self,
        client: Any,
        target: str,
        *,
        resource: bool,
        endpoint: str | None,
        options: QueryOptions,
    ) -> None:
        self.client = client
        self.target = target
        self.resource = resource
        self.server_timeout = options.server_timeout
        self.plan: str = options.plan  # "auto" turns "basic" when the service says so
        self.https: dict[str, Any] = {}
        if endpoint is not None and endpoint.startswith("http://"):
            self.https["enforce_https"] = False
        self.base = (endpoint or "https://api.loganalytics.io").rstrip("/")

    @property
    def basic(self) -> bool:
        return self.plan == "basic"

    def default_concurrency(self) -> int:
        return BASIC_CONCURRENCY if self.basic else 4

    def check(self, start: datetime, concurrency: int) -> None:
        if self.basic:
            _check_basic(start, concurrency, ValueError)  # before anything is billed

    def settle(self, start: datetime, concurrency: int) -> int:
        if not self.basic:
            return concurrency
        # Found from the service's answer: stay within the plan's limits.
        _check_basic(start, BASIC_CONCURRENCY, LogAnalyticsError)
        return min(concurrency, BASIC_CONCURRENCY)

    def search(self, query: str, window: Window | None) -> Answer:
        """A Basic-plan table's query: ``/search``, through the client's own pipeline."""
        from urllib.parse import quote

        from azure.core.exceptions import HttpResponseError
        from azure.core.rest import HttpRequest

        request = HttpRequest(
            "POST",
            f"{self.base}/v1/workspaces/{quote(self.target, safe='')}/search",
            params={"timespan": _search_timespan(window)},
            json={"query": query},
            headers={"Prefer": f"wait={self.server_timeout}"},
        )
        response = self.client.send_request(request, **self.https)
        try:
            response.raise_for_status()
            body = response.json()
        except (HttpResponseError, ValueError) as err:
            where = "" if window is None else f" for window {window}"
            raise LogAnalyticsError(
                f"Log Analytics query (Basic plan) on {self.target}{where} failed: "
                f"{_search_error(response, err)}"
            ) from None
        error = body.get("error")
        if error:
            return Answer([], [], partial=f"partial answer: {_error_message(error)}")
        tables = body.get("tables") or []
        if not tables:
            return Answer([], [])
        return Answer(
            [str(c["name"]) for c in tables[0]["columns"]],
            [list(row) for row in tables[0]["rows"]],
        )

    def run(self, query: str, window: Window | None) -> Answer:
        from azure.core.exceptions import HttpResponseError
        from azure.monitor.query import LogsQueryStatus

        if self.basic:
            if self.resource:
                raise _basic_resource_error(self.target)
            return self.search(query, window)
        call = self.client.query_resource if self.resource else self.client.query_workspace
        timespan = None if window is None else (window.start, window.end)
        try:
            result = call(
                self.target,
                query,
                timespan=timespan,
                server_timeout=self.server_timeout,
                **self.https,
            )
        except HttpResponseError as err:
            if self.plan == "auto" and _refused_as_basic(err):
                if self.resource:
                    raise _basic_resource_error(self.target) from None
                self.plan = "basic"
                return self.search(query, window)
            where = "" if window is None else f" for window {window}"
            raise LogAnalyticsError(
                f"Log Analytics query on {self.target}{where} failed: {_error_text(err)}"
            ) from None
        if result.status != LogsQueryStatus.SUCCESS:
            error = result.partial_error
            reason = f"{getattr(error, 'code', '')} {getattr(error, 'message', '')}".strip()
            return Answer([], [], partial=f"partial answer: {reason}")
        if not result.tables:
            return Answer([], [])
        table = result.tables[0]
        return Answer(list(table.columns), [list(row) for row in table.rows])


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


def _service(
    target: str,
    *,
    resource: bool,
    options: QueryOptions,
    credential: TokenCredential | None,
    endpoint: str | None,
) -> _LogAnalytics:
    return _LogAnalytics(
        _client(credential, endpoint),
        target,
        resource=resource,
        endpoint=endpoint,
        options=options,
    )


def read_log_analytics(
    workspace_id: str,
    start: TimeLike,
    end: TimeLike,
    *,
    options: QueryOptions | None = None,
    credential: TokenCredential | None = None,
    endpoint: str | None = None,
) -> pl.DataFrame:
    """Read NAT gateway flow records from a Log Analytics workspace.

    Returns a frame with exactly :data:`natlens.FLOW_SCHEMA`, sorted by time, so every
    natlens analysis takes it. The filters and the rollup run in KQL on the server; the
    range is queried in spans, concurrently, and a span whose answer is partial or
    capped is split and asked again, never kept truncated.

    Parameters
    ----------
    workspace_id
        The workspace id (a GUID, from the workspace's Properties).
    start, end
        The range (naive is UTC); ``start`` included, ``end`` excluded.
    options
        Filters, rollup, table, query span, concurrency, row cap, timeout, progress and
        the table's plan (:class:`natlens.azure.QueryOptions`); default: every record,
        raw, the plan found from the service's answer.
    credential
        An azure-identity credential; default ``DefaultAzureCredential()``.
    endpoint
        The query endpoint, default ``https://api.loganalytics.io``.

    Raises
    ------
    LogAnalyticsError
        If a query fails, or a span's answer is partial even at one grain.
    ValueError
        A bad bound, or what a Basic-plan table cannot answer (said before asking).

    Examples
    --------
    Sum a month per hour on the server (needs an Azure login)::

        import natlens
        from natlens.azure import QueryOptions

        hourly = natlens.read_log_analytics(
            "00000000-0000-0000-0000-000000000000",
            "2025-10-01",
            "2025-11-01",
            options=QueryOptions(rollup="1h", gateways="ng-weu-1"),
        )
    """
    options = QueryOptions() if options is None else options
    service = _service(
        workspace_id, resource=False, options=options, credential=credential, endpoint=endpoint
    )
    return fetch(service, start, end, options)


def read_log_analytics_resource(
    resource_id: str,
    start: TimeLike,
    end: TimeLike,
    *,
    options: QueryOptions | None = None,
    credential: TokenCredential | None = None,
    endpoint: str | None = None,
) -> pl.DataFrame:
    """Read flow records in the context of one Azure resource (e.g. the NAT gateway).

    Same as :func:`read_log_analytics`, but the query runs on the resource's logs
    (``/v1/{resource_id}/query``): no workspace id needed, only read access to the
    resource. A Basic-plan table cannot be read this way.

    Parameters
    ----------
    resource_id
        The ARM id of the resource, e.g. the NAT gateway's.
    start, end
        The range (naive is UTC); ``start`` included, ``end`` excluded.
    options
        As in :func:`read_log_analytics`; ``plan="basic"`` is refused.
    credential
        An azure-identity credential; default ``DefaultAzureCredential()``.
    endpoint
        The query endpoint, default ``https://api.loganalytics.io``.

    Raises
    ------
    LogAnalyticsError
        If a query fails, a span's answer is partial even at one grain, or the table
        turns out to be on the Basic plan.
    ValueError
        A bad bound, or ``plan="basic"``.

    Examples
    --------
    ::

        flows = natlens.read_log_analytics_resource(
            "/subscriptions/.../resourceGroups/rg/providers/Microsoft.Network/natGateways/ng",
            "2025-11-04",
            "2025-11-05",
        )
    """
    options = QueryOptions() if options is None else options
    if options.plan == "basic":
        raise ValueError(
            "plan='basic': a Basic-plan table cannot be queried in a resource's context; "
            "use read_log_analytics(<workspace id>, ..., options=QueryOptions(plan='basic')) "
            "with the workspace that holds the table"
        )
    service = _service(
        resource_id, resource=True, options=options, credential=credential, endpoint=endpoint
    )
    return fetch(service, start, end, options)


def scan_log_analytics(
    workspace_id: str,
    start: TimeLike,
    end: TimeLike,
    *,
    options: QueryOptions | None = None,
    credential: TokenCredential | None = None,
    endpoint: str | None = None,
) -> pl.LazyFrame:
    """Lazy form of :func:`read_log_analytics`: the queries run when the frame is collected.

    The arguments are those of :func:`read_log_analytics` (the options are checked
    now, the service asked at ``collect()``). Each ``collect()`` queries again;
    collect once and keep the frame (or write it with ``natlens.write_parquet``) to
    reuse it.

    Examples
    --------
    ::

        lazy = natlens.scan_log_analytics(workspace, start, end, options=QueryOptions(rollup="15m"))
        top = lazy.group_by("destination_ip").agg(pl.col("bytes_sent").sum()).collect()
    """
    options = QueryOptions() if options is None else options
    return pl.defer(
        lambda: read_log_analytics(
            workspace_id, start, end, options=options, credential=credential, endpoint=endpoint
        ),
        schema=FLOW_SCHEMA,
    )


def scan_log_analytics_resource(
    resource_id: str,
    start: TimeLike,
    end: TimeLike,
    *,
    options: QueryOptions | None = None,
    credential: TokenCredential | None = None,
    endpoint: str | None = None,
) -> pl.LazyFrame:
    """Lazy form of :func:`read_log_analytics_resource`, with the same arguments.

    Examples
    --------
    ::

        lazy = natlens.scan_log_analytics_resource(
            gateway_id, start, end, options=QueryOptions(rollup="1h")
        )
    """
    options = QueryOptions() if options is None else options
    return pl.defer(
        lambda: read_log_analytics_resource(
            resource_id, start, end, options=options, credential=credential, endpoint=endpoint
        ),
        schema=FLOW_SCHEMA,
    )
