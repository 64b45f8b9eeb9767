"""Fixtures shared by the whole suite: the shipped sample week, loaded once."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import polars as pl
import pytest
from compiled import require_exact_reader

import natlens


@pytest.fixture(scope="module", params=["exact", "duckdb"])
def json_reader(request: pytest.FixtureRequest) -> Iterator[str]:
    """Each JSON Lines reader in turn, for a whole module: the exact one (natlens/_scan.c)
    and DuckDB's text read, which serves files the exact one declines and machines where
    it was not compiled. Both must keep, convert and report exactly alike."""
    from natlens import _files

    compiled = vars(_files)["_scan"]
    if compiled is None and request.param == "exact":
        require_exact_reader()
    if request.param == "duckdb":
        setattr(_files, "_scan", None)  # noqa: B010 -- a module's compiled part, set aside
    try:
        yield request.param
    finally:
        setattr(_files, "_scan", compiled)  # noqa: B010


@pytest.fixture(scope="session")
def samples() -> natlens.SampleData:
    """Paths of the shipped sample week."""
    return natlens.sample_data()


@pytest.fixture(scope="session")
def sample_flows(samples: natlens.SampleData) -> pl.DataFrame:
    """The shipped sample week of flows, read once per test session."""
    return natlens.read_flowlogs(samples.flowlogs)


@pytest.fixture(scope="session")
def answer_key(samples: natlens.SampleData) -> dict[str, Any]:
    """The planted events, as written for workshop trainers (read-only: tests share it)."""
    key: dict[str, Any] = json.loads(samples.answer_key.read_text())
    return key
