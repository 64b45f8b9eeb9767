"""``natlens triage``: a :class:`~natlens.FlowSummary` as plain text for a terminal."""

from __future__ import annotations

import textwrap

from natlens._html import text_table
from natlens._summary import FlowSummary, Note, sections

__all__ = ["triage"]

_MARK = {"ok": "ok", "problem": "PROBLEM", "unknown": "unknown", "note": ""}


def triage(summary: FlowSummary, *, width: int = 100) -> str:
    """The summary as text: health first, then usage, spikes and cost, drops, compliance.

    The same sections, rows, rankings and units as the HTML report
    (:func:`natlens.write_report`), from the same :class:`~natlens.FlowSummary`.

    Parameters
    ----------
    summary
        What :func:`natlens.summarize` returned.
    width
        Sentences are wrapped at this many characters (tables are not).

    Examples
    --------
    >>> import natlens
    >>> text = natlens.triage(natlens.summarize(natlens.sample_data().flowlogs, n=3))
    >>> text.splitlines()[0].startswith("natlens triage:")
    True
    >>> "Top 3 sources by traffic (bytes sent + received)" in text
    True
    """
    lines = [f"natlens triage: {summary.origin}"]
    for section in sections(summary):
        lines += ["", f"== {section.heading} =="]
        for part in section.parts:
            if isinstance(part, Note):
                mark = _MARK[part.status]
                text = f"[{mark}] {part.text}" if mark else part.text
                lines += textwrap.wrap(
                    text, width=width, initial_indent="  ", subsequent_indent="    "
                )
            else:
                lines += ["", f"  {part.caption}:", *text_table(part.frame, indent="    ")]
    return "\n".join(lines)
