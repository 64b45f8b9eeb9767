"""The shipped sample week: where its files are.

``natlens.sample_data()`` returns the paths of a realistic week of NAT gateway flow logs
and their side files. The files ship inside the wheel (``natlens/_data/samples``) and sit
in a source checkout under ``data/samples``; both are found. They are made by the
generator in :mod:`natlens._samplegen` (``natlens samples --out DIR``), which this module
does not import: loading the samples costs nothing but a few ``stat`` calls.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Final

__all__ = ["CONTAINER", "SAMPLE_FILES", "SampleData", "sample_data"]

CONTAINER: Final = "insights-logs-natgatewayflowlogsv1"
"""The storage container the flow-log tree sits in, as Azure names it."""

SAMPLE_FILES: Final = {
    "inventory": "inventory.csv",
    "allowlist": "allowlist.txt",
    "service_tags": "service_tags.json",
    "hostnames": "hostnames.json",
    "metrics": "metrics.csv.gz",
    "answer_key": "answer_key.json",
    "answer_key_md": "ANSWER_KEY.md",
    "readme": "README.md",
}
"""The side files of a sample directory, by role (the flow logs are under ``flowlogs/``)."""

_PACKAGE = Path(__file__).resolve().parent
_INSTALLED = _PACKAGE / "_data" / "samples"  # in the wheel (hatch force-include)
_CHECKOUT = _PACKAGE.parent / "data" / "samples"  # in a source checkout or editable install


@dataclass(frozen=True)
class SampleData:
    """Where the sample files are.

    Attributes
    ----------
    root
        The sample directory (``natlens/_data/samples`` in an installed wheel,
        ``data/samples`` in the repository).
    flowlogs
        The flow-log tree (holds ``insights-logs-natgatewayflowlogsv1/resourceId=/...``).
    inventory, allowlist, service_tags, hostnames
        The side files: ``inventory.csv``, ``allowlist.txt``, ``service_tags.json``,
        ``hostnames.json``.
    metrics
        Gateway metrics at 1-minute grain, ``metrics.csv.gz`` (read with
        :func:`natlens.read_metrics`).
    answer_key, answer_key_md
        The planted events, machine-readable (JSON) and for trainers (Markdown).
    """

    root: Path
    flowlogs: Path
    inventory: Path
    allowlist: Path
    service_tags: Path
    hostnames: Path
    metrics: Path
    answer_key: Path
    answer_key_md: Path


def sample_data(directory: str | os.PathLike[str] | None = None) -> SampleData:
    """Return the paths of the sample data.

    Parameters
    ----------
    directory
        A directory written by ``natlens samples --out DIR``; by default the shipped
        week, inside the installed package or in the source checkout's ``data/samples``.

    Raises
    ------
    FileNotFoundError
        If the directory or one of its files is missing; the message names the
        directory and the missing files.

    Examples
    --------
    >>> samples = sample_data()
    >>> samples.inventory.name, samples.flowlogs.is_dir()
    ('inventory.csv', True)
    """
    root = Path(directory) if directory is not None else _shipped_root()
    data = SampleData(
        root=root,
        flowlogs=root / "flowlogs",
        inventory=root / SAMPLE_FILES["inventory"],
        allowlist=root / SAMPLE_FILES["allowlist"],
        service_tags=root / SAMPLE_FILES["service_tags"],
        hostnames=root / SAMPLE_FILES["hostnames"],
        metrics=root / SAMPLE_FILES["metrics"],
        answer_key=root / SAMPLE_FILES["answer_key"],
        answer_key_md=root / SAMPLE_FILES["answer_key_md"],
    )
    missing = [
        str(path)
        for path in (
            data.flowlogs / CONTAINER,
            data.inventory,
            data.allowlist,
            data.service_tags,
            data.hostnames,
            data.metrics,
            data.answer_key,
        )
        if not path.exists()
    ]
    if missing:
        where = (
            f"in {root}"
            if directory is not None
            else f"in the package ({_INSTALLED}) or the source checkout ({_CHECKOUT})"
        )
        raise FileNotFoundError(
            f"natlens sample data not found {where} (missing: {', '.join(missing)}). "
            "The samples ship with the wheel and with the source repository (data/samples); "
            "make a copy anywhere with `natlens samples --out DIR`."
        )
    return data


def _shipped_root() -> Path:
    """The installed copy when there is one, else the source checkout's ``data/samples``."""
    return _INSTALLED if (_INSTALLED / "flowlogs").is_dir() else _CHECKOUT
