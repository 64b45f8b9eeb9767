"""The sample-data generator behind ``natlens samples``: a seeded network simulator.

The shipped sample week (``data/samples``, ``natlens.sample_data()``) is exactly what
:func:`generate_samples` writes with its defaults; a test regenerates it and compares, so
the samples never drift from this code. ``import natlens`` does not import this package:
only the ``natlens samples`` command and the tests do. Only the standard library is used,
so the output is the same wherever it runs.

The steps, one module each:

- :mod:`~natlens._samplegen.world`: the organisation, its gateways, VMs, habits and
  destinations;
- :mod:`~natlens._samplegen.plan`: the six planted events;
- :mod:`~natlens._samplegen.emit`: sessions folded into per-minute flow records;
- :mod:`~natlens._samplegen.write`: the storage-account tree, the metrics, the side files;
- :mod:`~natlens._samplegen.answer`: the answer key, as JSON and for trainers.
"""

from __future__ import annotations

import json
import os
import random
import shutil
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Final

from natlens._samplegen.answer import answer_key, answer_key_md
from natlens._samplegen.emit import emit_flows
from natlens._samplegen.plan import draw_metric_events, make_plan
from natlens._samplegen.world import build_world
from natlens._samplegen.write import (
    README,
    allowlist_text,
    hostnames_json,
    inventory_csv,
    service_tags_json,
    write_bytes,
    write_flowlogs,
    write_metrics,
)
from natlens._samples import CONTAINER, SAMPLE_FILES

__all__ = [
    "DEFAULT_SEED",
    "DEFAULT_START",
    "MAX_DAYS",
    "MAX_VMS",
    "MIN_DAYS",
    "MIN_VMS",
    "SampleSummary",
    "generate_samples",
]

DEFAULT_SEED: Final = 20261109
"""Seed of the shipped sample week."""

DEFAULT_START: Final = datetime(2026, 11, 9, tzinfo=UTC)
"""First day of the shipped sample week (a Monday, 00:00 UTC)."""

MIN_DAYS: Final = 3
MAX_DAYS: Final = 366
MIN_VMS: Final = 20
MAX_VMS: Final = 1000


@dataclass(frozen=True)
class SampleSummary:
    """What :func:`generate_samples` wrote.

    Attributes
    ----------
    directory, seed, start, days, vms
        Where, and the arguments that fully determine the output.
    records, blobs
        Flow records written, and the number of hourly ``PT1H.json.gz`` blobs.
    metrics_rows
        Rows of ``metrics.csv.gz``.
    events
        Kinds of the planted events, in answer-key order.
    bytes_written
        Total size of the files written.
    """

    directory: Path
    seed: int
    start: datetime
    days: int
    vms: int
    records: int
    blobs: int
    metrics_rows: int
    events: tuple[str, ...]
    bytes_written: int


def generate_samples(
    directory: str | os.PathLike[str],
    *,
    seed: int = DEFAULT_SEED,
    start: datetime = DEFAULT_START,
    days: int = 7,
    vms: int = 100,
    overwrite: bool = False,
) -> SampleSummary:
    """Write a sample data set: flow logs, metrics, side files and an answer key.

    The output depends only on the arguments: the same arguments give the same files
    (gzip members carry no time stamp). The defaults write the shipped week.

    Parameters
    ----------
    directory
        Where to write; created if needed.
    seed
        Seed of the random choices.
    start
        First day, midnight UTC (a naive datetime is taken as UTC).
    days
        Number of days, 3 to 366. The planted events need at least three.
    vms
        Number of VMs, 20 to 1000, spread over six subnets.
    overwrite
        Replace the sample files of an earlier run in ``directory``. Other files are
        left alone.

    Returns
    -------
    SampleSummary
        Counts of what was written.

    Raises
    ------
    FileExistsError
        If ``directory`` already holds sample files and ``overwrite`` is false.
    ValueError
        For out-of-range arguments.

    Examples
    --------
    >>> import tempfile
    >>> with tempfile.TemporaryDirectory() as tmp:
    ...     summary = generate_samples(tmp, days=3, vms=20)
    >>> summary.blobs, summary.records > 10_000
    (144, True)
    """
    start = _check_arguments(seed, start, days, vms)
    root = Path(directory)
    existing = [p for p in _outputs(root) if p.exists()]
    if existing and not overwrite:
        raise FileExistsError(
            f"{root} already holds sample data ({existing[0]}); pass overwrite=True "
            "(natlens samples --force) to replace it"
        )
    for path in existing:
        if path.is_dir():
            shutil.rmtree(path)
        else:
            path.unlink()

    def rng_for(purpose: str) -> random.Random:
        return random.Random(f"natlens-samples:{seed}:{purpose}")

    world = build_world(rng_for, start, days, vms)
    plan = make_plan(rng_for("plan"), world)
    flows = emit_flows(rng_for, world, plan)

    flowlogs = write_flowlogs(root, rng_for("filing"), flows, world)
    metrics_rng = rng_for("metrics")
    metric_events = draw_metric_events(metrics_rng, plan, world.minutes)
    metrics = write_metrics(
        root / SAMPLE_FILES["metrics"], metrics_rng, flows, world, plan=plan, events=metric_events
    )
    key = answer_key(flows, world, plan, metric_events, seed=seed, records=flowlogs.records)
    texts = {
        "inventory": inventory_csv(world.vms),
        "allowlist": allowlist_text(),
        "service_tags": service_tags_json(),
        "hostnames": hostnames_json(),
        "answer_key": json.dumps(key, indent=2) + "\n",
        "answer_key_md": answer_key_md(key),
        "readme": README,
    }
    written = flowlogs.bytes_written + metrics.bytes_written
    for name, text in texts.items():
        written += write_bytes(root / SAMPLE_FILES[name], text.encode("utf-8"))
    return SampleSummary(
        directory=root,
        seed=seed,
        start=start,
        days=days,
        vms=vms,
        records=flowlogs.records,
        blobs=flowlogs.blobs,
        metrics_rows=metrics.rows,
        events=tuple(e["kind"] for e in key["events"]),
        bytes_written=written,
    )


def _check_arguments(seed: int, start: datetime, days: int, vms: int) -> datetime:
    if isinstance(seed, bool) or not isinstance(seed, int):
        raise TypeError(f"seed must be an int, got {seed!r}")
    for name, value, low, high in (
        ("days", days, MIN_DAYS, MAX_DAYS),
        ("vms", vms, MIN_VMS, MAX_VMS),
    ):
        if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
            raise ValueError(f"{name} must be an integer from {low} to {high}, got {value!r}")
    if not isinstance(start, datetime):
        raise TypeError(f"start must be a datetime, got {start!r}")
    if start.tzinfo is None:
        start = start.replace(tzinfo=UTC)
    start = start.astimezone(UTC)
    if (start.hour, start.minute, start.second, start.microsecond) != (0, 0, 0, 0):
        raise ValueError(f"start must be midnight UTC, got {start.isoformat()}")
    return start


def _outputs(root: Path) -> list[Path]:
    return [root / "flowlogs" / CONTAINER] + [root / name for name in SAMPLE_FILES.values()]
