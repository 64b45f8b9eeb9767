"""How natlens writes numbers and tables for people: units, text cells, HTML tables, CSS.

One byte formatter (:func:`format_bytes`, decimal units as Azure bills them), one way to
write a cell (:func:`cell_text`) and one table style (:data:`TABLE_CSS`), shared by
triage, the report, the widgets and the charts' tooltips. It needs only polars, so it sits
below every other layer.
"""

from __future__ import annotations

import html
from datetime import datetime

import polars as pl

__all__ = ["TABLE_CSS", "byte_unit", "cell_text", "format_bytes", "frame_to_html", "text_table"]

BYTE_UNITS: tuple[tuple[str, float], ...] = (
    ("B", 1.0),
    ("KB", 1e3),
    ("MB", 1e6),
    ("GB", 1e9),
    ("TB", 1e12),
)
"""Decimal byte units (a GB is 10**9 bytes, as the data processing price counts it)."""

TABLE_CSS = """
.natlens-table {border-collapse: collapse; font-size: 13px; margin: 8px 12px 8px 0}
.natlens-table caption {font-weight: bold; text-align: left; padding: 4px 0;
  white-space: normal}
.natlens-scroll table.natlens-table th, .natlens-scroll table.natlens-table td,
table.natlens-table th, table.natlens-table td {border-bottom: 1px solid #ddd;
  padding: 3px 8px; text-align: left; white-space: nowrap}
.natlens-scroll table.natlens-table td.natlens-prose {white-space: normal;
  min-width: 24em; max-width: 48em}
table.natlens-table th {background: #f3f6fa}
.natlens-ok {color: #2e7d32} .natlens-problem {color: #c62828; font-weight: bold}
.natlens-unknown {color: #8a6d00} .natlens-note {color: #555}
"""
"""The one style sheet of natlens tables and status words (report and widgets).

Its cell rules outrank JupyterLab's (``:not(.jp-RenderedMarkdown).jp-RenderedHTMLCommon
td`` aligns every cell right), so text reads from the left in the notebook as in the report.
"""

_PROSE = 60
"""A cell longer than this with spaces in it is a sentence: it wraps, where ids and numbers
stay on one line."""


def byte_unit(largest: float) -> tuple[str, float]:
    """Pick the decimal byte unit that shows ``largest`` as a readable number.

    Returns the unit's name and its size in bytes.

    Examples
    --------
    >>> byte_unit(3_500_000)
    ('MB', 1000000.0)
    >>> byte_unit(0)
    ('B', 1.0)
    """
    name, size = BYTE_UNITS[0]
    for unit_name, unit_size in BYTE_UNITS:
        if abs(largest) >= unit_size:
            name, size = unit_name, unit_size
    return name, size


def format_bytes(value: float | None) -> str:
    """A byte count for people: ``'512 B'``, ``'942.1 MB'``, ``'118.6 GB'`` (decimal units).

    Examples
    --------
    >>> format_bytes(118_616_767_058), format_bytes(942_100_000), format_bytes(512)
    ('118.6 GB', '942.1 MB', '512 B')
    >>> format_bytes(None)
    ''
    """
    if value is None:
        return ""
    unit, size = byte_unit(value)
    return f"{value:,.0f} B" if size == 1.0 else f"{value / size:,.1f} {unit}"


def cell_text(value: object) -> str:
    """A table cell as text: thousands separators, two decimals, UTC times to the minute.

    Examples
    --------
    >>> cell_text(1234), cell_text(0.5), cell_text(None), cell_text("github.com")
    ('1,234', '0.50', '', 'github.com')
    """
    if value is None:
        return ""
    if isinstance(value, float):
        return f"{value:,.2f}"
    if isinstance(value, int) and not isinstance(value, bool):
        return f"{value:,}"
    if isinstance(value, datetime):
        return value.strftime("%Y-%m-%d %H:%M")
    return str(value)


def _numeric(frame: pl.DataFrame) -> list[bool]:
    """Which columns hold numbers (right-aligned in text), formatted sizes and shares too."""
    flags = []
    for name, dtype in frame.schema.items():
        if dtype.is_numeric():
            flags.append(True)
        elif dtype == pl.String and frame.height:
            values = frame.get_column(name).drop_nulls()
            flags.append(
                values.len() > 0
                and bool(values.str.contains(r"^-?[\d,.]+ ?(B|KB|MB|GB|TB|%)$").all())
            )
        else:
            flags.append(False)
    return flags


def text_table(frame: pl.DataFrame, *, indent: str = "  ") -> list[str]:
    """Lines of a fixed-width text table, cells written by :func:`cell_text`.

    Numbers are aligned right, text left.

    Examples
    --------
    >>> print("\\n".join(text_table(pl.DataFrame({"ip": ["10.0.0.4"], "records": [1234]}))))
      ip        records
      10.0.0.4    1,234
    """
    numeric = _numeric(frame)
    cells = [[cell_text(v) for v in row] for row in frame.iter_rows()]
    widths = [
        max(len(name), *(len(row[i]) for row in cells)) if cells else len(name)
        for i, name in enumerate(frame.columns)
    ]

    def line(values: list[str]) -> str:
        parts = [
            v.rjust(w) if right else v.ljust(w)
            for v, w, right in zip(values, widths, numeric, strict=True)
        ]
        return (indent + "  ".join(parts)).rstrip()

    return [line(list(frame.columns)), *(line(row) for row in cells)]


def frame_to_html(frame: pl.DataFrame, *, max_rows: int = 20, caption: str = "") -> str:
    """Render a small frame as an HTML table (escaped), for widgets and reports.

    Cells are written by :func:`cell_text`.

    Parameters
    ----------
    frame
        The rows to show; only the first ``max_rows`` are rendered.
    max_rows
        How many rows to render; a last row says how many more there are.
    caption
        Table caption, empty for none.

    Returns
    -------
    str
        A ``<table class="natlens-table">`` inside a horizontally scrolling ``<div>``.

    Examples
    --------
    >>> "<td>10.0.0.4</td>" in frame_to_html(pl.DataFrame({"ip": ["10.0.0.4"]}))
    True
    >>> "<td>1,234</td>" in frame_to_html(pl.DataFrame({"bytes": [1234]}))
    True
    >>> "... 2 more rows" in frame_to_html(pl.DataFrame({"n": [1, 2, 3]}), max_rows=1)
    True
    >>> finding = "81,443 packets dropped on established connections in 103 minutes"
    >>> "<td class=natlens-prose>81,443" in frame_to_html(pl.DataFrame({"f": [finding]}))
    True
    """
    head = "".join(f"<th>{html.escape(c)}</th>" for c in frame.columns)
    body = []
    for row in frame.head(max_rows).iter_rows():
        cells = "".join(_td(cell_text(v)) for v in row)
        body.append(f"<tr>{cells}</tr>")
    more = (
        f"<tr><td colspan={len(frame.columns)}>... {frame.height - max_rows} more rows</td></tr>"
        if frame.height > max_rows
        else ""
    )
    cap = f"<caption>{html.escape(caption)}</caption>" if caption else ""
    return (
        '<div class="natlens-scroll" style="overflow-x:auto;max-width:100%">'
        f'<table class="natlens-table" style="white-space:nowrap">{cap}'
        f"<thead><tr>{head}</tr></thead><tbody>{''.join(body)}{more}</tbody></table></div>"
    )


def _td(text: str) -> str:
    """One cell: a sentence (long, with spaces) may wrap; anything else stays whole."""
    prose = len(text) > _PROSE and " " in text
    return f"<td{' class=natlens-prose' if prose else ''}>{html.escape(text)}</td>"
