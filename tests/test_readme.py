"""The README's Python examples run, in order, on the shipped samples."""

from __future__ import annotations

import re
import warnings
from pathlib import Path

import polars as pl

README = Path(__file__).resolve().parent.parent / "README.md"


def python_blocks(text: str) -> list[str]:
    return re.findall(r"```python\n(.*?)```", text, flags=re.DOTALL)


def test_readme_opens_with_the_two_commands() -> None:
    commands = re.findall(r"```bash\n(.*?)```", README.read_text(), flags=re.DOTALL)
    assert commands[0].strip() == "pip install uv && uv run natlens lab"
    assert commands[1].strip() == "pip install uv && uv run --locked pytest"
    ci = (README.parent / ".ci" / "run").read_text().splitlines()
    assert commands[1].strip() in ci, ".ci/run calls exactly the README's test command"


def test_readme_examples_run() -> None:
    blocks = python_blocks(README.read_text())
    assert len(blocks) >= 3
    namespace: dict[str, object] = {}
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        for block in blocks:
            exec(compile(block, str(README), "exec"), namespace)
    busiest = namespace["busiest"]
    assert isinstance(busiest, pl.DataFrame)
    assert busiest.row(0)[0] == "10.10.3.7"  # the planted bulk upload
    tuesday = namespace["tuesday"]
    assert isinstance(tuesday, pl.LazyFrame)
    days = tuesday.select(pl.col("time").dt.date().unique()).collect().to_series().to_list()
    assert [d.isoformat() for d in days] == ["2026-11-10"]
    assert "rate" in str(getattr(namespace["verdict"], "verdict", ""))
