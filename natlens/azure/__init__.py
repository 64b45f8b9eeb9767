"""Live Azure sources: Blob Storage with a local cache, Log Analytics, Data Explorer, metrics.

Needs the ``azure`` extra (``pip install 'natlens[azure]'``). Credentials come from
azure-identity (``DefaultAzureCredential`` unless one is passed), a connection string
or a SAS; natlens never prints, logs or caches them. The query readers share one
:class:`QueryOptions` value (filters, rollup, how the range is split and queried).
"""

from __future__ import annotations

from natlens.azure._blob import FLOW_CONTAINER, SyncReport, sync_blobs
from natlens.azure._dataexplorer import DataExplorerError, read_data_explorer, scan_data_explorer
from natlens.azure._kql import flow_kql, kql_string
from natlens.azure._loganalytics import (
    LogAnalyticsError,
    read_log_analytics,
    read_log_analytics_resource,
    scan_log_analytics,
    scan_log_analytics_resource,
)
from natlens.azure._metrics import GATEWAY_METRICS, read_gateway_metrics
from natlens.azure._options import QueryOptions

__all__ = [
    "FLOW_CONTAINER",
    "GATEWAY_METRICS",
    "DataExplorerError",
    "LogAnalyticsError",
    "QueryOptions",
    "SyncReport",
    "flow_kql",
    "kql_string",
    "read_data_explorer",
    "read_gateway_metrics",
    "read_log_analytics",
    "read_log_analytics_resource",
    "scan_data_explorer",
    "scan_log_analytics",
    "scan_log_analytics_resource",
    "sync_blobs",
]
