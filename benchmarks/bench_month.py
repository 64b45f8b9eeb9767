"""Month benchmark: ``natlens.summarize`` on a month of a busy gateway, from its Parquet store.

Generates (or reuses, under ``benchmarks/.data/``) a natlens Parquet store of one busy
NAT gateway over 30 days, then measures, each in a fresh process so that peak memory is
its own:

* ``summarize`` -- ``natlens.summarize(natlens.scan_parquet(store))``: every section of
  ``natlens triage`` (totals, cost, top sources and destinations, NAT IP usage, dropped
  packets, spikes, beacons, bulk uploads, new destinations);
* ``triage``    -- the command line, ``natlens triage STORE``, in its own process;
* ``reference`` -- the same top-talkers, top-destinations and traffic-over-time
  aggregations written as plain polars lazy queries on the same files, collected together;
* ``collect``   -- every record collected into one DataFrame: the memory the summary
  needed before it worked lazily, which its peak is compared with;
* ``eager``     -- with ``--eager``: that old route, collect and then summarize;
* ``sections``  -- with ``--sections``: each analysis of the summary timed on its own.

The default size, 20 million records (about 460 a minute), runs in about four minutes on
two cores; a month at 1,500 records a minute is ``--records 64800000`` (two minutes to
generate, ten to run). Measured here at 20M records: summarize 25 s (49 CPU s) with a
peak of 2.1 GB, 4.7 times the reference's 5.3 s (every record in memory: 2.5 GB; the old
collect-then-summarize route 32 s, 5.8 GB); ``--sections``: ``find_beacons`` 5.7 s,
``nat_ip_usage`` 4.8 s, ``find_exfiltration`` 3.9 s, the rest under 2.3 s each. Before
the pair analyses ran in passes and nat_ip_usage's two queries one after the other (same
results): 37 s and 4.0 GB at 20M, 139 s and 8.9 GB at 64M.

The records are random but shaped like a real gateway's: a few thousand VMs, a long tail
of destinations whose popularity falls off as a power law, pairs that stay active minute
after minute, a daily and weekly rhythm, and a few planted events (an upload spike to a
destination no other VM uses, a beacon, rate-limited connections, destinations first
seen on the last two days), so every section of the summary has something to find.

Usage::

    uv run python benchmarks/bench_month.py                       # 20M records
    uv run python benchmarks/bench_month.py --records 64800000    # 1,500 a minute
    uv run python benchmarks/bench_month.py --sections --eager    # where the time goes
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import resource
import shutil
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

import natlens
from natlens._store import is_store

HERE = Path(__file__).resolve().parent
START = dt.datetime(2026, 10, 5, tzinfo=dt.UTC)  # a Monday
DAYS = 30
GATEWAY = (
    "/SUBSCRIPTIONS/00000000-0000-0000-0000-0000000000B2/RESOURCEGROUPS/RG-PROD/PROVIDERS/"
    "MICROSOFT.NETWORK/NATGATEWAYS/NG-BUSY"
)
NAT_IPS = ("20.61.15.40", "20.61.15.41", "20.61.15.42", "20.61.15.43")
NAT_IPV6 = "2603:1020:203:4::28"
PAIRS = 250_000
"""Source/destination pairs drawn (fewer remain once repeats are dropped)."""


# -- the data ----------------------------------------------------------------------------


class _Pool:
    """Who talks to whom: the pairs, their activity per minute and their typical size."""

    def __init__(self, records_per_minute: float, seed: int = 5) -> None:
        rng = np.random.default_rng(seed)
        v4_sources = [f"10.{20 + i // 250}.{i // 50 % 5}.{4 + i % 50}" for i in range(3000)]
        v6_sources = [f"fd00:10:{i:x}::4" for i in range(100)]
        v4_targets, v6_targets = _destinations(rng, 400_000)
        # Busy VMs and popular destinations: both ends of a pair fall off as power laws.
        six = rng.random(PAIRS) < 0.03
        src = np.where(
            six,
            np.array(v6_sources)[(len(v6_sources) * rng.random(PAIRS) ** 2).astype(np.int64)],
            np.array(v4_sources)[(len(v4_sources) * rng.random(PAIRS) ** 2).astype(np.int64)],
        )
        dst = np.where(
            six,
            v6_targets[(len(v6_targets) * rng.random(PAIRS) ** 3).astype(np.int64)],
            v4_targets[(len(v4_targets) * rng.random(PAIRS) ** 3).astype(np.int64)],
        )
        _, first = np.unique(np.char.add(np.char.add(src, ">"), dst), return_index=True)
        keep = np.sort(first)
        self.src, self.dst = pl.Series(src[keep]), pl.Series(dst[keep])
        self.six = six[keep]
        pairs = len(keep)
        # Activity: the share of minutes a pair is active; the head is always on.
        weight = 1.0 / (np.arange(pairs) + 20.0) ** 0.85
        rng.shuffle(weight)
        self.activity = weight * records_per_minute / weight.sum()
        for _ in range(20):  # saturated pairs give their excess to the rest
            excess = np.clip(self.activity - 1.0, 0, None).sum()
            self.activity = np.minimum(self.activity, 1.0)
            if excess < 1e-6:
                break
            free = self.activity < 1.0
            self.activity[free] *= 1 + excess / self.activity[free].sum()
        self.size = np.exp(rng.normal(9.0, 2.2, pairs))  # bytes sent a minute, median 8 kB
        self.reply = np.exp(rng.normal(1.2, 1.0, pairs))  # received per byte sent
        self.late = rng.random(pairs) < 0.0004  # destinations first seen on the last two days


def _destinations(rng: np.random.Generator, count: int) -> tuple[np.ndarray, np.ndarray]:
    """Distinct public destinations, IPv4 and (one in 25) IPv6, in random order."""
    values = rng.integers(1 << 24, 223 << 24, count, dtype=np.int64).tolist()
    v4 = sorted({f"{v >> 24}.{v >> 16 & 255}.{v >> 8 & 255}.{v & 255}" for v in values})
    v6 = sorted({f"2a00:{v & 0xFFFF:x}:{v >> 16 & 0xFFFF:x}::{v % 97 + 1:x}" for v in values})
    v6 = v6[: count // 25]
    return rng.permutation(np.array(v4)), rng.permutation(np.array(v6))


def _rhythm(minutes: np.ndarray, day: int) -> np.ndarray:
    """Traffic level by minute of the day: busy office hours, quiet nights and weekends."""
    hour = minutes / 60.0
    office = np.exp(-(((hour - 13.0) / 4.0) ** 2))
    weekend = (START + dt.timedelta(days=day)).weekday() >= 5
    return (0.45 + 1.1 * office) * (0.6 if weekend else 1.0)


def day_frame(pool: _Pool, day: int, seed: int) -> pl.DataFrame:
    """One day of flow records in FLOW_SCHEMA: one per active pair, NAT IP and minute."""
    rng = np.random.default_rng(seed)
    late = day >= DAYS - 2
    pieces: list[pl.DataFrame] = []
    for hour in range(24):
        minutes = np.arange(hour * 60, hour * 60 + 60)
        level = _rhythm(minutes, day)
        draws = rng.random((60, len(pool.activity)), dtype=np.float32)
        active = draws < (pool.activity[None, :] * level[:, None]).astype(np.float32)
        if not late:
            active &= ~pool.late[None, :]
        minute_of, pair = np.nonzero(active)
        count = len(pair)
        sent = (pool.size[pair] * rng.lognormal(0.0, 0.7, count)).astype(np.int64) + 60
        received = (sent * pool.reply[pair]).astype(np.int64) + 40
        dropped = (rng.random(count) < 0.0008) * rng.integers(1, 40, count)
        nat = np.where(pool.six[pair], len(NAT_IPS), rng.integers(0, len(NAT_IPS), count))
        pieces.append(
            pl.DataFrame(
                {
                    "minute": minutes[minute_of],
                    "source_ip": pool.src.gather(pair),
                    "destination_ip": pool.dst.gather(pair),
                    "nat_gateway_ip": pl.Series([*NAT_IPS, NAT_IPV6]).gather(nat),
                    "packets_sent": sent // 1200 + 1,
                    "packets_received": received // 1300 + 1,
                    "packets_sent_dropped": dropped,
                    "packets_received_dropped": np.zeros(count, dtype=np.int64),
                    "bytes_sent": sent,
                    "bytes_received": received,
                }
            )
        )
    frame = pl.concat([*pieces, _planted(day)], how="diagonal_relaxed")
    origin = START + dt.timedelta(days=day)
    return frame.select(
        time=pl.lit(origin) + pl.duration(minutes=pl.col("minute")),
        **{name: pl.col(name) for name in natlens.FLOW_SCHEMA.names()[1:-1]},
        resource_id=pl.lit(GATEWAY),
    ).cast(dict(natlens.FLOW_SCHEMA))  # type: ignore[arg-type]


def _planted(day: int) -> pl.DataFrame:
    """A beacon every 5 minutes all month; on day 17, a 3-hour upload to a lone destination."""
    beacon = np.arange(0, 1440, 5)
    frames = [
        pl.DataFrame(
            {
                "minute": beacon,
                "source_ip": "10.20.3.7",
                "destination_ip": "198.51.100.23",
                "nat_gateway_ip": NAT_IPS[0],
                "packets_sent": 3,
                "packets_received": 3,
                "packets_sent_dropped": 0,
                "packets_received_dropped": 0,
                "bytes_sent": 420,
                "bytes_received": 380,
            }
        )
    ]
    if day == 17:
        upload = np.arange(14 * 60, 17 * 60)
        frames.append(
            pl.DataFrame(
                {
                    "minute": upload,
                    "source_ip": "10.20.1.14",
                    "destination_ip": "203.0.113.80",
                    "nat_gateway_ip": NAT_IPS[2],
                    "packets_sent": 2_000_000,
                    "packets_received": 40_000,
                    "packets_sent_dropped": 0,
                    "packets_received_dropped": 0,
                    "bytes_sent": 2_400_000_000,
                    "bytes_received": 3_000_000,
                }
            )
        )
    return pl.concat(frames, how="vertical_relaxed")


def build_store(store: Path, records: int) -> None:
    """Write about ``records`` records over :data:`DAYS` days, one store part per day.

    The store is written beside ``store`` and renamed when complete, so an interrupted
    run leaves nothing a later run would take for a finished store.
    """
    level = np.mean([_rhythm(np.arange(1440), day).mean() for day in range(DAYS)])
    pool = _Pool(records / (DAYS * 1440) / level)
    partial = store.with_name(store.name + ".partial")
    shutil.rmtree(partial, ignore_errors=True)
    for day in range(DAYS):
        frame = day_frame(pool, day, seed=100 + day)
        natlens.write_parquet(frame, partial, part=f"day-{day:02d}")
        print(f"  day {day + 1:2d}/{DAYS}: {frame.height:,} records", flush=True)
    partial.rename(store)


# -- the tasks (each in its own process) -------------------------------------------------


def task_summarize(store: Path) -> object:
    return natlens.summarize(natlens.scan_parquet(store), n=10)


def task_triage(store: Path) -> object:
    return subprocess.run(
        [str(Path(sys.executable).with_name("natlens")), "triage", str(store)],
        check=True,
        capture_output=True,
        text=True,
    ).stdout


def task_reference(store: Path) -> object:
    """Top talkers, top destinations and traffic by hour, as a polars user writes them."""
    flows = pl.scan_parquet(str(store / "**" / "*.parquet"), hive_partitioning=False)
    both = pl.col("bytes_sent") + pl.col("bytes_received")

    def top(key: str, other: str) -> pl.LazyFrame:
        return (
            flows.group_by(key)
            .agg(
                pl.col("bytes_sent").sum(),
                pl.col("bytes_received").sum(),
                both.sum().alias("bytes"),
                pl.len().alias("records"),
                pl.col(other).n_unique().alias("distinct"),
            )
            .sort("bytes", descending=True)
            .head(10)
        )

    hourly = (
        flows.group_by(pl.col("time").dt.truncate("1h"))
        .agg(both.sum().alias("bytes"), pl.len().alias("records"))
        .sort("time")
    )
    return pl.collect_all(
        [top("source_ip", "destination_ip"), top("destination_ip", "source_ip"), hourly]
    )


def task_collect(store: Path) -> object:
    """Every record in memory: what summarize held before it worked lazily."""
    return natlens.scan_parquet(store).collect()


def task_eager(store: Path) -> object:
    """The old route: collect every record, then summarize the DataFrame."""
    return natlens.summarize(natlens.scan_parquet(store).collect(), n=10)


def task_sections(store: Path) -> dict[str, float]:
    """Seconds of each analysis summarize runs, on the same lazy scan, one after the other."""
    from natlens._troubleshoot import dropped_packets

    flows = natlens.scan_parquet(store)
    price, currency = 0.045, "USD"
    end = flows.select(pl.col("time").max()).collect().item() + dt.timedelta(minutes=1)
    spikes = natlens.find_spikes(flows, price_per_gb=price, currency=currency)
    sections: dict[str, Callable[[], object]] = {
        "totals (summarize's own)": lambda: pl.collect_all(
            [
                flows.select(
                    pl.len(),
                    pl.col("source_ip").n_unique(),
                    pl.col("destination_ip").n_unique(),
                    pl.col("nat_gateway_ip").n_unique(),
                )
            ]
        ),
        "cost by gateway and day": lambda: [
            natlens.cost(flows, price_per_gb=price, currency=currency, by="gateway"),
            natlens.cost(flows, price_per_gb=price, currency=currency, every="1d"),
        ],
        "find_spikes": lambda: natlens.find_spikes(flows, price_per_gb=price, currency=currency),
        "explain_spike": lambda: natlens.explain_spike(
            flows, spikes.row(0, named=True), price_per_gb=price, currency=currency, n=10
        ),
        "new_destinations": lambda: natlens.new_destinations(
            flows, baseline=end - dt.timedelta(days=2)
        ),
        "top_talkers": lambda: natlens.top_talkers(flows, metric="bytes", n=10),
        "top_destinations": lambda: natlens.top_destinations(flows, metric="bytes", n=10),
        "nat_ip_usage": lambda: natlens.nat_ip_usage(flows),
        "dropped_packets": lambda: dropped_packets(flows),
        "find_beacons": lambda: natlens.find_beacons(flows),
        "find_exfiltration": lambda: natlens.find_exfiltration(flows),
    }
    seconds: dict[str, float] = {}
    for name, section in sections.items():
        begin = time.perf_counter()
        section()
        seconds[name] = time.perf_counter() - begin
    return seconds


TASKS: dict[str, Callable[[Path], object]] = {
    "reference": task_reference,
    "collect": task_collect,
    "summarize": task_summarize,
    "triage": task_triage,
    "eager": task_eager,
    "sections": task_sections,
}


def _child(name: str, store: Path) -> None:
    def cpu() -> float:
        usage = resource.getrusage(resource.RUSAGE_SELF)
        children = resource.getrusage(resource.RUSAGE_CHILDREN)
        return usage.ru_utime + usage.ru_stime + children.ru_utime + children.ru_stime

    begin, begin_cpu = time.perf_counter(), cpu()
    answer = TASKS[name](store)
    seconds, cpu_seconds = time.perf_counter() - begin, cpu() - begin_cpu
    own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    children = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    result: dict[str, Any] = {
        "seconds": seconds,
        "cpu": cpu_seconds,
        "peak_mb": max(own, children) / 1024,
    }
    if isinstance(answer, dict):
        result["sections"] = answer
    print(json.dumps(result))


def _run_child(name: str, store: Path, repeat: int) -> dict[str, Any]:
    """Run one task in a fresh interpreter ``repeat`` times: best times, highest peak."""
    runs = []
    for _ in range(repeat):
        out = subprocess.run(
            [sys.executable, __file__, "--child", name, str(store)],
            check=True,
            capture_output=True,
            text=True,
        )
        runs.append(json.loads(out.stdout.strip().splitlines()[-1]))
    best: dict[str, Any] = min(runs, key=lambda r: r["seconds"])
    return best | {
        "cpu": min(r["cpu"] for r in runs),
        "peak_mb": max(r["peak_mb"] for r in runs),
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--records", type=int, default=20_000_000, help="about how many records")
    parser.add_argument("--data", type=Path, help="folder for the generated store (kept)")
    parser.add_argument("--repeat", type=int, default=2, help="runs per task (best time kept)")
    parser.add_argument("--no-triage", action="store_true", help="skip the command-line run")
    parser.add_argument(
        "--eager",
        action="store_true",
        help="also time the old route, every record collected first (its peak is about\n"
        "2.5 times the records': 8 GB at the default size)",
    )
    parser.add_argument(
        "--sections", action="store_true", help="also time each analysis on its own"
    )
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args, rest = parser.parse_known_args()
    if args.child:
        _child(args.child, Path(rest[0]))
        return

    store = (args.data or HERE / ".data" / f"month-{args.records}") / "store"
    if not is_store(store):
        print(f"generating about {args.records:,} records in {store} ...", flush=True)
        begin = time.perf_counter()
        build_store(store, args.records)
        print(f"  written in {time.perf_counter() - begin:.0f} s", flush=True)
    shape = (
        natlens.scan_parquet(store)
        .select(
            pl.len(),
            pl.col("source_ip").n_unique(),
            pl.col("destination_ip").n_unique(),
            first=pl.col("time").min(),
            last=pl.col("time").max(),
        )
        .collect()
    )
    rows, sources, destinations, first, last = shape.row(0)
    on_disk = sum(p.stat().st_size for p in store.rglob("*.parquet"))
    print(
        f"{rows:,} records, {sources:,} sources, {destinations:,} destinations, "
        f"{first:%Y-%m-%d} to {last:%Y-%m-%d}; store {on_disk / 1e9:.2f} GB on disk\n",
        flush=True,
    )

    names = ["reference", "summarize"]
    names += [] if args.no_triage else ["triage"]
    names += ["eager"] if args.eager else []
    results: dict[str, dict[str, Any]] = {}
    for name in ["collect", *names]:
        results[name] = result = _run_child(name, store, 1 if name == "collect" else args.repeat)
        print(
            f"{name:>10}: {result['seconds']:7.2f} s  cpu {result['cpu']:7.2f} s  "
            f"peak {result['peak_mb']:7.0f} MB",
            flush=True,
        )
    reference, held = results["reference"], results["collect"]["peak_mb"]
    print(
        f"\nagainst the plain polars reference (target: summarize within 3x) and the "
        f"{held:,.0f} MB\nof a process holding every record (target: well under):"
    )
    for name in names[1:]:
        result = results[name]
        print(
            f"  {name:<10} {result['seconds'] / reference['seconds']:5.2f}x time  "
            f"{result['cpu'] / reference['cpu']:5.2f}x cpu  "
            f"peak {result['peak_mb'] / held:5.2f}x the records' process"
        )
    if args.sections:
        timed = _run_child("sections", store, 1)["sections"]
        print("\nwhere summarize spends its time (each analysis on the scan, seconds):")
        for name, seconds in sorted(timed.items(), key=lambda item: -item[1]):
            print(f"  {name:<26} {seconds:7.2f}")


if __name__ == "__main__":
    os.environ.setdefault("POLARS_MAX_THREADS", str(os.cpu_count() or 2))
    main()
