"""Fixtures shared by the whole suite: the shipped sample week, loaded once."""

from __future__ import annotations

import json
from typing import Any

import polars as pl
import pytest

import natlens


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
