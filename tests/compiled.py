"""Whether natlens's compiled part, the exact JSON Lines reader, was built for these tests."""

from __future__ import annotations

import os

import pytest


def require_exact_reader() -> None:
    """Fail under CI, skip elsewhere, when natlens was installed without its compiled reader
    (no C compiler: natlens then reads through DuckDB alone, with the same results)."""
    reason = "natlens._scan was not compiled (no C compiler when natlens was installed)"
    if os.environ.get("CI"):
        pytest.fail(reason)
    pytest.skip(reason, allow_module_level=True)
