"""natlens: read, analyse and chart Azure NAT Gateway flow logs.

``import natlens`` stays light: polars and the loaders. Charts live in
:mod:`natlens.charts` (altair), dashboards in :mod:`natlens.widgets` (ipywidgets) and
the live Azure sources in :mod:`natlens.azure`; the Azure entry points are also
reachable from here, imported on first use.
"""

from __future__ import annotations

import importlib
from typing import Any

from natlens._schema import COUNTER_COLUMNS, FLOW_SCHEMA, METRICS_SCHEMA, canonical_ip

# -- loaders and store (issue 2) --
from natlens._files import (
    FlowLogError,
    FlowLogWarning,
    LoadReport,
    Problem,
    read_flowlogs,
    scan_flowlogs,
)
from natlens._store import scan_parquet, write_parquet

# -- analyses (issue 3) --

__version__ = "0.1.0"

# Names served from optional, heavier modules, imported on first access.
_LAZY: dict[str, str] = {
    # -- azure (issue 5) --
}

__all__ = [
    "COUNTER_COLUMNS",
    "FLOW_SCHEMA",
    "METRICS_SCHEMA",
    "FlowLogError",
    "FlowLogWarning",
    "LoadReport",
    "Problem",
    "canonical_ip",
    "read_flowlogs",
    "scan_flowlogs",
    "scan_parquet",
    "write_parquet",
]


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'natlens' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY))
