"""Flow records from an Azure Data Explorer (Kusto) cluster, with the same KQL as Log Analytics.

For estates beyond a workspace's retention or its per-user limits, the flow-log table can
live in a cluster; natlens sends it the same filtered, windowed, rolled-up queries.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

import polars as pl

from natlens._schema import FLOW_SCHEMA
from natlens.azure._loganalytics import (
    MAX_ROWS,
    DataExplorerError,
    _Answer,
    _fetch,
    _Runner,
    _Window,
)

__all__ = ["read_data_explorer", "scan_data_explorer"]

_CONCURRENCY = 16


def _runner(connection: Any, database: str) -> tuple[_Runner, Any]:
    from azure.kusto.data import KustoClient
    from azure.kusto.data.exceptions import KustoMultiApiError, KustoServiceError

    client = KustoClient(connection)

    def run(query: str, window: _Window | None) -> _Answer:
        where = "" if window is None else f" for window {window}"
        try:
            response = client.execute(database, query)
        except KustoMultiApiError as err:
            # Errors inside the result (e.g. E_QUERY_RESULT_SET_TOO_LARGE): rows are missing.
            messages = [
                e.description or e.message or e.code or "error" for e in err.get_api_errors()
            ] or [str(err)]
            return _Answer([], [], partial="partial answer: " + "; ".join(messages))
        except KustoServiceError as err:
            first = str(err).splitlines()[0] if str(err) else type(err).__name__
            raise DataExplorerError(f"query on {database}{where} failed: {first}") from None
        if not response.primary_results:
            return _Answer([], [])
        table = response.primary_results[0]
        return _Answer([c.column_name for c in table.columns], [list(r) for r in table.raw_rows])

    return run, client


def read_data_explorer(
    cluster: str,
    database: str,
    start: datetime,
    end: datetime,
    *,
    credential: Any = None,
    connection: Any = None,
    sources: Sequence[str] | str | None = None,
    destinations: Sequence[str] | str | None = None,
    nat_ips: Sequence[str] | str | None = None,
    gateways: Sequence[str] | str | None = None,
    rollup: str | timedelta | None = None,
    table: str | None = None,
    window: timedelta | None = None,
    max_concurrency: int = 4,
    max_rows: int = MAX_ROWS,
    progress: bool | None = None,
) -> pl.DataFrame:
    """Read NAT gateway flow records from an Azure Data Explorer database.

    The same queries as :func:`natlens.read_log_analytics` (filters and rollup in KQL,
    windows split when an answer is truncated, the table's spelling discovered), sent
    with azure-kusto-data. Returns exactly :data:`natlens.FLOW_SCHEMA`.

    Parameters
    ----------
    cluster
        The cluster URL, e.g. ``https://mycluster.westeurope.kusto.windows.net``.
    database
        The database holding the flow-log table.
    start, end
        Timezone-aware bounds; ``start`` included, ``end`` excluded.
    credential
        An azure-identity credential; default ``DefaultAzureCredential()``.
    connection
        A ready ``KustoConnectionStringBuilder`` instead of ``cluster``/``credential``.
    sources, destinations, nat_ips, gateways, rollup, table, window
        As in :func:`natlens.read_log_analytics`.
    max_concurrency
        Queries in flight at once, 1 to 16.
    max_rows
        The row cap of one answer (the cluster's default truncation is 500,000).
    progress
        Show a tqdm progress bar; None: only on a terminal or notebook.

    Raises
    ------
    DataExplorerError
        If a query fails, or a window's answer is truncated even at one grain.

    Examples
    --------
    ::

        daily = natlens.read_data_explorer(
            "https://mycluster.westeurope.kusto.windows.net",
            "netlogs",
            datetime(2025, 1, 1, tzinfo=UTC),
            datetime(2025, 7, 1, tzinfo=UTC),
            rollup="1d",
        )
    """
    try:
        from azure.kusto.data import KustoConnectionStringBuilder
    except ImportError as err:  # pragma: no cover - depends on the environment
        raise ImportError("Data Explorer needs the extra: pip install 'natlens[azure]'") from err
    if connection is None:
        if credential is None:
            from azure.identity import DefaultAzureCredential

            credential = DefaultAzureCredential()
        connection = KustoConnectionStringBuilder.with_azure_token_credential(cluster, credential)
    run, client = _runner(connection, database)
    with client:
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
            error=DataExplorerError,
            label="Data Explorer",
            concurrency_limit=_CONCURRENCY,
        )


def scan_data_explorer(
    cluster: str, database: str, start: datetime, end: datetime, **options: Any
) -> pl.LazyFrame:
    """Lazy form of :func:`read_data_explorer`: the queries run when the frame is collected.

    Examples
    --------
    ::

        lazy = natlens.scan_data_explorer(cluster, "netlogs", start, end, rollup="1h")
    """
    return pl.defer(
        lambda: read_data_explorer(cluster, database, start, end, **options),
        schema=FLOW_SCHEMA,
    )
