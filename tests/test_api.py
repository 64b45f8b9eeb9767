"""The public surface: small, explicit, one vocabulary, documented, and light to import."""

from __future__ import annotations

import ast
import importlib
import importlib.util
import inspect
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

import natlens
from natlens._typing import GROUPS, METRICS, VOCABULARY

ROOT = Path(__file__).resolve().parent.parent
PUBLIC_MODULES = ("natlens", "natlens.charts", "natlens.widgets", "natlens.azure")

PUBLIC = [
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
"""Everything ``import natlens`` offers: what a user calls, catches or holds."""

OPTIONS = frozenset(
    {
        # loaders and the store: `source` is where data is read from, `path` where it goes
        "source",
        "path",
        "directory",
        "strict",
        "report",
        "progress",
        "part",
        # analyses, each option of one function
        "period",
        "baseline",
        "window",
        "column",
        "threshold",
        "min_ratio",
        "min_history",
        "min_contacts",
        "max_bytes_per_contact",
        "min_score",
        "min_bytes_sent",
        "min_upload_ratio",
        "max_sources",
        "min_minutes",
        "metrics",
        # charts and widgets: the analysis result a chart encodes, display options
        "table",
        "costs",
        "violations",
        "usage",
        "buckets",
        "events",
        "edges",
        "chart",
        "scale",
        "brush",
        "connection_state",
        "largest",
        "frame",
        "max_rows",
        "caption",
        "callback",
        "changes",
        "summary",
        "width",
        "limit",
        "name",
        # azure: where the logs are, how to reach them, how to split the queries
        "workspace_id",
        "resource_id",
        "resource_ids",
        "cluster",
        "database",
        "credential",
        "connection",
        "connection_string",
        "account_url",
        "container",
        "cache_dir",
        "subscriptions",
        "endpoint",
        "rollup",
        "plan",
        "options",  # the query readers' one typed QueryOptions value
        "span",  # the time one query covers (window means a spike window)
        "schema",
        "server_timeout",
        "max_concurrency",
        "max_workers",
        "retry_total",
        "retry_backoff",
        "interval",
        "value",
    }
)
"""Parameter names outside :data:`natlens._typing.VOCABULARY`, each an option of its own."""

ALLOWED = frozenset(VOCABULARY) | OPTIONS

RESULTS = frozenset(
    {
        "Diagnosis",
        "FlowLogError",
        "FlowLogWarning",
        "FlowSummary",
        "LoadReport",
        "Problem",
        "SampleData",
        "SyncReport",
        "Table",
    }
)
"""Values natlens returns or raises: their fields are named for what they hold (a user
reads them, never passes them), so only their methods are checked."""


def _functions(module: ModuleType) -> Iterator[tuple[str, Callable[..., Any]]]:
    """Every public function, class (its constructor) and method of ``module``."""
    for name in module.__all__:
        obj = getattr(module, name)
        where = f"{module.__name__}.{name}"
        if inspect.isclass(obj):
            if name not in RESULTS:
                yield where, obj
            for attribute, value in vars(obj).items():
                function = getattr(value, "__func__", value)
                if not attribute.startswith("_") and inspect.isfunction(function):
                    yield f"{where}.{attribute}", function
        elif callable(obj):
            yield where, obj


def _parameters() -> Iterator[tuple[str, int, inspect.Parameter]]:
    for module_name in PUBLIC_MODULES:
        module = importlib.import_module(module_name)
        for where, function in _functions(module):
            try:
                signature = inspect.signature(function)
            except (TypeError, ValueError):  # a builtin without a signature
                continue
            named = [p for p in signature.parameters.values() if p.name not in ("self", "cls")]
            for index, parameter in enumerate(named):
                if not parameter.name.startswith("_"):
                    yield where, index, parameter


def vocabulary_problems() -> list[str]:
    """Every public parameter that breaks the vocabulary, as ``function(parameter): why``."""
    problems = []
    for where, index, p in _parameters():
        default = p.default
        annotation = str(p.annotation)
        if p.name not in ALLOWED:
            problems.append(f"{where}({p.name}): not in the vocabulary")
        elif p.name == "source" and index != 0:
            problems.append(f"{where}({p.name}): a source is the first argument")
        elif p.name == "by" and default is not None and default not in (*GROUPS, p.empty):
            problems.append(f"{where}(by={default!r}): by groups; measure with metric=")
        elif p.name == "metric" and isinstance(default, str) and default not in METRICS:
            problems.append(f"{where}(metric={default!r}): not one of METRICS")
        elif p.name == "n" and not (default in (None, p.empty) or isinstance(default, int)):
            problems.append(f"{where}(n={default!r}): n counts")
        if "DataFrame | pl.LazyFrame" in annotation or "DataFrame | LazyFrame" in annotation:
            problems.append(f"{where}({p.name}): write FrameLike, not {annotation!r}")
        if p.kind is p.VAR_KEYWORD:
            problems.append(f"{where}(**{p.name}): a typed keyword or options value instead")
    return problems


def test_every_public_parameter_speaks_the_vocabulary() -> None:
    assert vocabulary_problems() == []


def test_the_vocabulary_check_catches_what_it_is_for(monkeypatch: pytest.MonkeyPatch) -> None:
    """The check names the function and the parameter of each kind of slip."""

    def top_talkers(flows: Any, *, by: str = "bytes_sent", top: int = 5) -> None:
        """A ranking column called ``by`` and a count called ``top``."""

    def find(flows: Any, source: str, **options: Any) -> None:
        """A singular filter and untyped options."""

    monkeypatch.setattr(natlens, "top_talkers", top_talkers)
    monkeypatch.setattr(natlens, "find_flows", find)
    problems = vocabulary_problems()
    assert "natlens.top_talkers(by='bytes_sent'): by groups; measure with metric=" in problems
    assert "natlens.top_talkers(top): not in the vocabulary" in problems
    assert "natlens.find_flows(source): a source is the first argument" in problems
    assert "natlens.find_flows(**options): a typed keyword or options value instead" in problems


def test_public_surface_is_exactly_the_declared_list() -> None:
    assert natlens.__all__ == PUBLIC
    assert dir(natlens) == sorted(PUBLIC)
    missing = [name for name in PUBLIC if not hasattr(natlens, name)]
    assert missing == []
    with pytest.raises(AttributeError, match="no attribute 'canonical_ip'"):
        natlens.__getattr__("canonical_ip")


def test_shared_types_are_declared_once() -> None:
    """``FrameLike``, ``Source``... are assigned in ``_typing`` only, never redeclared."""
    shared = {"FrameLike", "PathLike", "Source", "TimeLike", "Resolver", "Targets", "Metric"}
    shared |= {"Inventory", "Labels", "METRICS", "RANK_METRICS", "SPIKE_METRICS"}
    found = []
    for path in sorted((ROOT / "natlens").rglob("*.py")):
        if path.name == "_typing.py":
            continue
        for node in ast.parse(path.read_text(encoding="utf-8")).body:
            targets: list[ast.expr] = [node.target] if isinstance(node, ast.AnnAssign) else []
            targets += node.targets if isinstance(node, ast.Assign) else []
            names = {t.id for t in targets if isinstance(t, ast.Name)}
            found += [f"{path.relative_to(ROOT)}:{node.lineno} {n}" for n in names & shared]
    assert found == []


def test_import_natlens_stays_light() -> None:
    """``import natlens`` pulls no chart, widget, lab or Azure library; charts no Azure SDK.

    (altair itself imports ipywidgets when it is installed, for JupyterChart.)
    """
    heavy = ["altair", "ipywidgets", "IPython", "jupyterlab", "azure", "vl_convert", "anywidget"]
    code = (
        "import sys, natlens\n"
        "def loaded(names):\n"
        "    found = [k.split('.')[0] for k in sys.modules]\n"
        "    return [m for m in names if m in found]\n"
        f"print(loaded({heavy!r}))\n"
        "import natlens.charts\n"
        "print(loaded(['azure']))\n"
    )
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert run.stdout.split() == ["[]", "[]"]


def _reference_module() -> ModuleType:
    spec = importlib.util.spec_from_file_location("natlens_reference", ROOT / "docs/reference.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_reference_page_is_current() -> None:
    """``docs/reference.md`` is what ``docs/reference.py`` writes from today's docstrings."""
    fresh = _reference_module().render()
    committed = (ROOT / "docs" / "reference.md").read_text(encoding="utf-8")
    assert committed == fresh, (
        "docs/reference.md is stale: run `uv run --locked python docs/reference.py`"
    )


def test_reference_page_covers_every_public_name_and_the_vocabulary() -> None:
    text = _reference_module().render()
    for module_name in PUBLIC_MODULES:
        module = importlib.import_module(module_name)
        for name in module.__all__:
            assert f"`{module_name}.{name}" in text, f"{module_name}.{name} undocumented"
    for name in VOCABULARY:
        assert f"| `{name}` |" in text
