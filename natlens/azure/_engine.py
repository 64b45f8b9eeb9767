"""The query engine every KQL reader shares: split the range, query, check, assemble.

The range is cut into spans that stay under the services' limits (500,000 rows, ~100
MiB per answer) and queried concurrently within the service's per-user limit. A span
whose answer comes back partial or at the row cap is split in two and asked again; one
that cannot be split any further raises the service's error naming it, so a truncated
answer is never kept in silence. The answers are assembled into one frame of exactly
:data:`natlens.FLOW_SCHEMA`.

A service (Log Analytics, Data Explorer) says how one query is sent and what it may
refuse; the engine knows nothing else about it.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, ClassVar

import polars as pl

from natlens._schema import COUNTER_COLUMNS, FLOW_SCHEMA, canonicalize, conform, empty_flows
from natlens._typing import TimeLike
from natlens.azure._kql import (
    FLOW_TABLES,
    TableColumns,
    build_flow_query,
    column_map,
    range_bounds,
    schema_query,
)
from natlens.azure._options import QueryOptions

__all__ = ["Answer", "QueryError", "Service", "Window", "fetch"]


class QueryError(RuntimeError):
    """A KQL query failed, or a span's full answer could not be obtained."""

    final: ClassVar[bool] = False
    """True when no other table name can mend it (the table search stops)."""


@dataclass(frozen=True)
class Answer:
    """One query's answer: the first table, or why it is not whole."""

    columns: list[str]
    rows: list[list[Any]]
    partial: str | None = None


@dataclass(frozen=True)
class Window:
    """The time range ``[start, end)`` one query covers."""

    start: datetime
    end: datetime

    def __str__(self) -> str:
        return f"[{self.start.isoformat()}, {self.end.isoformat()})"


class Service(ABC):
    """How one service answers a query, and what it refuses before being asked."""

    label: ClassVar[str]
    """Named on the progress bar."""
    error: ClassVar[type[QueryError]]
    """Raised for a failed query or a span that cannot be fetched whole."""
    concurrency_limit: ClassVar[int]
    """Queries in flight at once the service allows per user."""
    limit_note: ClassVar[str] = ""
    """Why, appended to the message of a ``max_concurrency`` beyond the limit."""

    @abstractmethod
    def run(self, query: str, window: Window | None) -> Answer:
        """Send one query (``window`` None: a schema query); raise :attr:`error` if it fails."""

    def default_concurrency(self) -> int:
        """Queries in flight when ``max_concurrency`` is None."""
        return 4

    def check(self, start: datetime, concurrency: int) -> None:
        """Refuse, before anything is asked (or billed), what the service cannot answer."""
        return None

    def settle(self, start: datetime, concurrency: int) -> int:
        """After the table is found: the concurrency to use (or raise :attr:`error`)."""
        return concurrency

    @property
    def basic(self) -> bool:
        """Whether queries are written for a Basic-plan table (no time filter)."""
        return False


def discover(service: Service, table: str | None) -> TableColumns:
    """The flow-log table's name and columns: ``table``, or the first known name found."""
    tried: list[str] = []
    for name in (table,) if table is not None else FLOW_TABLES:
        try:
            answer = service.run(schema_query(name), None)
        except QueryError as err:
            if err.final:
                raise
            tried.append(f"{name}: {err}")
            continue
        if answer.partial is not None or not answer.rows:
            tried.append(f"{name}: no schema in the answer ({answer.partial or 'empty'})")
            continue
        return column_map(name, [str(row[0]) for row in answer.rows])
    raise service.error("no flow-log table found; tried " + "; ".join(tried))


def to_frame(answer: Answer) -> pl.DataFrame:
    """One answer's rows as canonical flow records (UTC times, canonical IPs)."""
    names, rows = answer.columns, answer.rows
    if not rows:
        return empty_flows()
    frame = pl.DataFrame(rows, schema=names, orient="row", infer_schema_length=None)
    time = frame.get_column("time")
    if time.dtype == pl.String:
        frame = frame.with_columns(pl.col("time").str.to_datetime(time_zone="UTC"))
    elif isinstance(time.dtype, pl.Datetime) and time.dtype.time_zone is None:
        frame = frame.with_columns(pl.col("time").dt.replace_time_zone("UTC"))
    return canonicalize(conform(frame.with_columns(pl.col("time").dt.convert_time_zone("UTC"))))


def split(window: Window, step: timedelta) -> tuple[Window, Window] | None:
    """Halve ``window`` on a multiple of ``step`` from its start, or None if too small."""
    steps = (window.end - window.start) // step
    if steps < 2:
        return None
    middle = window.start + step * (steps // 2)
    return Window(window.start, middle), Window(middle, window.end)


def windows(start: datetime, end: datetime, size: timedelta) -> list[Window]:
    """``[start, end)`` cut into spans of ``size`` (the last one may be shorter)."""
    out: list[Window] = []
    cursor = start
    while cursor < end:
        out.append(Window(cursor, min(cursor + size, end)))
        cursor += size
    return out


def concurrency(service: Service, options: QueryOptions) -> int:
    """``options.max_concurrency`` (or the service's default), checked against its limit."""
    wanted = options.max_concurrency
    if wanted is None:
        return service.default_concurrency()
    if wanted > service.concurrency_limit:
        raise ValueError(
            f"max_concurrency={wanted} must be between 1 and {service.concurrency_limit}"
            + service.limit_note
        )
    return wanted


def fetch(service: Service, start: TimeLike, end: TimeLike, options: QueryOptions) -> pl.DataFrame:
    """Every flow record of ``[start, end)`` the options ask for, from ``service``.

    Raises
    ------
    ValueError
        A bad bound, or a request the service refuses (said before anything is asked).
    QueryError
        The service's error: a failed query, no flow-log table, or a span that cannot be
        fetched whole even at one grain.
    """
    from tqdm.auto import tqdm

    low, high = range_bounds(start, end)
    workers = concurrency(service, options)
    step = options.grain()
    span = options.query_span()
    service.check(low, workers)
    columns = discover(service, options.table)
    workers = service.settle(low, workers)
    basic = service.basic

    def one(w: Window) -> tuple[Window, pl.DataFrame | None, str]:
        answer = service.run(build_flow_query(columns, w.start, w.end, options, basic=basic), w)
        if answer.partial is not None:
            return w, None, answer.partial
        if len(answer.rows) >= options.max_rows:
            return w, None, f"the answer reached the {options.max_rows}-row cap"
        return w, to_frame(answer), ""

    pending = windows(low, high, span)
    frames: list[pl.DataFrame] = []
    progress = options.progress
    bar = tqdm(
        total=len(pending),
        unit="window",
        desc=service.label,
        disable=None if progress is None else not progress,
    )
    try:
        with ThreadPoolExecutor(max_workers=workers) as pool:
            running: set[Future[tuple[Window, pl.DataFrame | None, str]]] = {
                pool.submit(one, w) for w in pending
            }
            while running:
                done, running = wait(running, return_when=FIRST_COMPLETED)
                for future in done:
                    w, frame, reason = future.result()
                    if frame is not None:
                        frames.append(frame)
                        bar.update(1)
                        continue
                    halves = split(w, step)
                    if halves is None:
                        for other in running:
                            other.cancel()
                        raise service.error(
                            f"window {w} cannot be fetched whole ({reason}) and is already "
                            f"one grain ({step}) long; narrow the filters or use a rollup"
                        )
                    bar.total += 1
                    bar.refresh()
                    running |= {pool.submit(one, half) for half in halves}
    finally:
        bar.close()

    flows = pl.concat([empty_flows(), *frames], how="vertical")
    if options.rollup is not None:
        # A bin that straddles two spans comes back once from each: add them up.
        keys = ["time", "source_ip", "destination_ip", "nat_gateway_ip", "resource_id"]
        flows = flows.group_by(keys).agg(pl.col(c).sum() for c in COUNTER_COLUMNS)
        flows = flows.select(FLOW_SCHEMA.names())
    return flows.sort("time", "source_ip", "destination_ip", "nat_gateway_ip", nulls_last=True)
