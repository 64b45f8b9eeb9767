"""natlens: read, analyse and chart Azure NAT Gateway flow logs.

``import natlens`` stays light: polars and the loaders. Charts live in
:mod:`natlens.charts` (altair), dashboards in :mod:`natlens.widgets` (ipywidgets) and
the live Azure sources in :mod:`natlens.azure`; the Azure readers are also reachable
from here, imported on first use. ``__all__`` is the whole public surface (every name
is in ``docs/reference.md``); everything else lives in private modules.
"""

# -- loaders and store --
from natlens._files import (
    FlowLogError,
    FlowLogWarning,
    LoadReport,
    Problem,
    read_flowlogs,
    scan_flowlogs,
)
from natlens._flowdata import FlowData, read_data
from natlens._metrics import read_metrics
from natlens._samples import SampleData, sample_data
from natlens._schema import FLOW_SCHEMA, METRICS_SCHEMA
from natlens._store import scan_parquet, write_parquet
from natlens._triage import triage

# isort: split
# -- analyses --
from natlens._billing import cost, explain_spike, find_spikes, score_traffic
from natlens._enrich import (
    label_destinations,
    label_sources,
    read_allowlist,
    read_hostnames,
    read_inventory,
    read_service_tags,
)
from natlens._security import check_allowlist, find_beacons, find_exfiltration, new_destinations
from natlens._troubleshoot import Diagnosis, diagnose, dropped_packets, find_flows
from natlens._usage import (
    flow_edges,
    growth,
    nat_ip_usage,
    top_destinations,
    top_talkers,
    traffic_over_time,
)

# isort: split
# -- the summary triage prints and the report renders --
from natlens._health import gateway_health
from natlens._report import write_report
from natlens._summary import FlowSummary, summarize

__version__ = "0.1.0"

# The Azure readers, served from natlens.azure (the Azure SDKs) on first access.
_LAZY: dict[str, str] = {
    "read_data_explorer": "natlens.azure",
    "read_gateway_metrics": "natlens.azure",
    "read_log_analytics": "natlens.azure",
    "read_log_analytics_resource": "natlens.azure",
    "scan_data_explorer": "natlens.azure",
    "scan_log_analytics": "natlens.azure",
    "scan_log_analytics_resource": "natlens.azure",
    "sync_blobs": "natlens.azure",
}

__all__ = [
    "FLOW_SCHEMA",
    "METRICS_SCHEMA",
    "Diagnosis",
    "FlowData",
    "FlowLogError",
    "FlowLogWarning",
    "FlowSummary",
    "LoadReport",
    "Problem",
    "SampleData",
    "check_allowlist",
    "cost",
    "diagnose",
    "dropped_packets",
    "explain_spike",
    "find_beacons",
    "find_exfiltration",
    "find_flows",
    "find_spikes",
    "flow_edges",
    "gateway_health",
    "growth",
    "label_destinations",
    "label_sources",
    "nat_ip_usage",
    "new_destinations",
    "read_allowlist",
    "read_data",
    "read_data_explorer",
    "read_flowlogs",
    "read_gateway_metrics",
    "read_hostnames",
    "read_inventory",
    "read_log_analytics",
    "read_log_analytics_resource",
    "read_metrics",
    "read_service_tags",
    "sample_data",
    "scan_data_explorer",
    "scan_flowlogs",
    "scan_log_analytics",
    "scan_log_analytics_resource",
    "scan_parquet",
    "score_traffic",
    "summarize",
    "sync_blobs",
    "top_destinations",
    "top_talkers",
    "traffic_over_time",
    "triage",
    "write_parquet",
    "write_report",
]


def __getattr__(name: str) -> object:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'natlens' has no attribute {name!r}")
    import importlib

    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(__all__)
