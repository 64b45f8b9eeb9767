"""Flow records from an Azure Data Explorer (Kusto) cluster, with the same KQL as Log Analytics.

For estates beyond a workspace's retention or its per-user limits, the flow-log table can
live in a cluster; natlens sends it the same filtered, spanned, rolled-up queries through
the same engine (``natlens.azure._engine``).
"""

from __future__ import annotations

from datetime import timedelta
from typing import TYPE_CHECKING

import polars as pl

from natlens._schema import FLOW_SCHEMA
from natlens._typing import TimeLike
from natlens.azure._engine import Answer, QueryError, Service, Window, fetch
from natlens.azure._options import QueryOptions

if TYPE_CHECKING:
    from azure.core.credentials import TokenCredential
    from azure.kusto.data import KustoClient, KustoConnectionStringBuilder

__all__ = ["DataExplorerError", "read_data_explorer", "scan_data_explorer"]

MAX_CONCURRENCY = 16


class DataExplorerError(QueryError):
    """An Azure Data Explorer query failed, or a span's full answer could not be obtained."""


class _DataExplorer(Service):
    """A cluster's database, through azure-kusto-data."""

    label = "Data Explorer"
    error = DataExplorerError
    concurrency_limit = MAX_CONCURRENCY

    def __init__(self, client: KustoClient, database: str, options: QueryOptions) -> None:
        from azure.kusto.data import ClientRequestProperties

        self.client = client
        self.database = database
        self.properties = ClientRequestProperties()  # type: ignore[no-untyped-call]
        self.properties.set_option(
            ClientRequestProperties.request_timeout_option_name,
            timedelta(seconds=options.server_timeout),
        )

    def run(self, query: str, window: Window | None) -> Answer:
        from azure.kusto.data.exceptions import KustoMultiApiError, KustoServiceError

        where = "" if window is None else f" for window {window}"
        try:
            response = self.client.execute(self.database, query, self.properties)
        except KustoMultiApiError as err:
            # Errors inside the result (e.g. E_QUERY_RESULT_SET_TOO_LARGE): rows are missing.
            messages = [
                e.description or e.message or e.code or "error" for e in err.get_api_errors()
            ] or [str(err)]
            return Answer([], [], partial="partial answer: " + "; ".join(messages))
        except KustoServiceError as err:
            first = str(err).splitlines()[0] if str(err) else type(err).__name__
            raise DataExplorerError(f"query on {self.database}{where} failed: {first}") from None
        if not response.primary_results:
            return Answer([], [])
        table = response.primary_results[0]
        return Answer([c.column_name for c in table.columns], [list(r) for r in table.raw_rows])


def read_data_explorer(
    cluster: str,
    database: str,
    start: TimeLike,
    end: TimeLike,
    *,
    options: QueryOptions | None = None,
    credential: TokenCredential | None = None,
    connection: KustoConnectionStringBuilder | None = None,
) -> pl.DataFrame:
    """Read NAT gateway flow records from an Azure Data Explorer database.

    The same queries as :func:`natlens.read_log_analytics` (filters and rollup in KQL,
    spans split when an answer is truncated, the table's spelling discovered), sent
    with azure-kusto-data. Returns exactly :data:`natlens.FLOW_SCHEMA`.

    Parameters
    ----------
    cluster
        The cluster URL, e.g. ``https://mycluster.westeurope.kusto.windows.net``.
    database
        The database holding the flow-log table.
    start, end
        The range (naive is UTC); ``start`` included, ``end`` excluded.
    options
        Filters, rollup, table, query span, concurrency (1 to 16), row cap (the
        cluster's default truncation is 500,000), server timeout and progress
        (:class:`natlens.azure.QueryOptions`). ``plan`` is Log Analytics's: only
        ``"auto"`` or ``"analytics"`` here.
    credential
        An azure-identity credential; default ``DefaultAzureCredential()``.
    connection
        A ready ``KustoConnectionStringBuilder`` instead of ``cluster``/``credential``.

    Raises
    ------
    DataExplorerError
        If a query fails, or a span's answer is truncated even at one grain.
    ValueError
        A bad bound, or ``plan="basic"``.

    Examples
    --------
    ::

        daily = natlens.read_data_explorer(
            "https://mycluster.westeurope.kusto.windows.net",
            "netlogs",
            "2025-01-01",
            "2025-07-01",
            options=QueryOptions(rollup="1d"),
        )
    """
    options = QueryOptions() if options is None else options
    if options.plan == "basic":
        raise ValueError(
            "plan='basic' is a Log Analytics table plan; a Data Explorer table has none "
            "(leave plan at 'auto')"
        )
    try:
        from azure.kusto.data import KustoClient, KustoConnectionStringBuilder
    except ImportError as err:  # pragma: no cover - depends on the environment
        raise ImportError("Data Explorer needs the extra: pip install 'natlens[azure]'") from err
    if connection is None:
        if credential is None:
            from azure.identity import DefaultAzureCredential

            credential = DefaultAzureCredential()
        connection = KustoConnectionStringBuilder.with_azure_token_credential(cluster, credential)
    with KustoClient(connection) as client:
        return fetch(_DataExplorer(client, database, options), start, end, options)


def scan_data_explorer(
    cluster: str,
    database: str,
    start: TimeLike,
    end: TimeLike,
    *,
    options: QueryOptions | None = None,
    credential: TokenCredential | None = None,
    connection: KustoConnectionStringBuilder | None = None,
) -> pl.LazyFrame:
    """Lazy form of :func:`read_data_explorer`: the queries run when the frame is collected.

    The arguments are those of :func:`read_data_explorer`; each ``collect()`` queries
    again.

    Examples
    --------
    ::

        lazy = natlens.scan_data_explorer(
            cluster, "netlogs", start, end, options=QueryOptions(rollup="1h")
        )
    """
    options = QueryOptions() if options is None else options
    return pl.defer(
        lambda: read_data_explorer(
            cluster,
            database,
            start,
            end,
            options=options,
            credential=credential,
            connection=connection,
        ),
        schema=FLOW_SCHEMA,
    )
