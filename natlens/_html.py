"""HTML tables for the report and the widgets: plain, escaped text, no optional dependency.

It sits below the widget layer so ``natlens report`` (which needs only the ``charts``
extra) and the ipywidgets views render a frame the same way.
"""

from __future__ import annotations

import html
from datetime import datetime

import polars as pl

__all__ = ["frame_to_html"]


def frame_to_html(frame: pl.DataFrame, *, max_rows: int = 20, caption: str = "") -> str:
    """Render a small frame as an HTML table (escaped), for widgets and reports.

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
    """
    head = "".join(f"<th>{html.escape(c)}</th>" for c in frame.columns)
    body = []
    for row in frame.head(max_rows).iter_rows():
        cells = "".join(f"<td>{html.escape(_cell_text(v))}</td>" for v in row)
        body.append(f"<tr>{cells}</tr>")
    more = (
        f"<tr><td colspan={len(frame.columns)}>... {frame.height - max_rows} more rows</td></tr>"
        if frame.height > max_rows
        else ""
    )
    cap = f"<caption>{html.escape(caption)}</caption>" if caption else ""
    return (
        '<div style="overflow-x:auto;max-width:100%">'
        f'<table class="natlens-table" style="white-space:nowrap">{cap}'
        f"<thead><tr>{head}</tr></thead><tbody>{''.join(body)}{more}</tbody></table></div>"
    )


def _cell_text(value: object) -> str:
    """A cell as text: thousands separators, two decimals, times to the minute, None empty."""
    if value is None:
        return ""
    if isinstance(value, float):
        return f"{value:,.2f}"
    if isinstance(value, int) and not isinstance(value, bool):
        return f"{value:,}"
    if isinstance(value, datetime):
        return value.strftime("%Y-%m-%d %H:%M")
    return str(value)
