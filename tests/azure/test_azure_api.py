"""The live-source API: lazily served from natlens, light to import, examples that run."""

from __future__ import annotations

import doctest
import subprocess
import sys

import natlens
import natlens.azure
from natlens.azure import _blob, _kql, _loganalytics, _metrics


def test_azure_names_are_served_lazily_from_natlens() -> None:
    azure_names = {k for k, v in natlens._LAZY.items() if v == "natlens.azure"}
    assert azure_names <= set(natlens.__all__)
    assert azure_names <= set(natlens.azure.__all__)
    for name in azure_names:
        assert getattr(natlens, name) is getattr(natlens.azure, name)


def test_import_natlens_pulls_no_azure_sdk() -> None:
    code = (
        "import sys, natlens; "
        "print(sorted(m for m in sys.modules if m == 'azure' or m.startswith('azure.')))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_docstring_examples_run() -> None:
    for module in (_kql, _loganalytics, _metrics, _blob):
        result = doctest.testmod(module, optionflags=doctest.ELLIPSIS)
        assert result.failed == 0, module.__name__
    assert doctest.testmod(_kql).attempted >= 8
