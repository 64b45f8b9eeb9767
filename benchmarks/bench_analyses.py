"""Analysis benchmark: natlens analyses on 10 million records from the Parquet store.

Generates (or reuses) a store of synthetic flows and a Service Tags file of realistic
size (about 50,000 overlapping IPv4 and IPv6 prefixes), then times, in one run:

* ``top_talkers``, ``top_destinations`` and ``traffic_over_time`` on
  ``natlens.scan_parquet(store)``, against a plain polars ``group_by`` on the same files;
* ``label_destinations`` of every record against the Service Tags, against a plain
  polars hash join of every record to a table of the same size on an exact key (the
  least work a labelling can do).

Usage::

    uv run python benchmarks/bench_analyses.py --records 10000000
"""

from __future__ import annotations

import argparse
import datetime as dt
import ipaddress
import json
import random
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import polars as pl

import natlens

START = dt.datetime(2026, 11, 9, tzinfo=dt.UTC)
GATEWAY = (
    "/SUBSCRIPTIONS/00000000-0000-0000-0000-0000000000B1/RESOURCEGROUPS/RG-BENCH/PROVIDERS/"
    "MICROSOFT.NETWORK/NATGATEWAYS/NG-BENCH"
)


def service_tags(prefixes: int, seed: int = 7) -> dict[str, object]:
    """An Azure-format Service Tags document with about ``prefixes`` overlapping prefixes.

    Like the real file: a few broad tags (``AzureCloud.<region>``) of /12-/16 ranges,
    many service tags whose /20-/29 ranges sit inside them, and IPv6 tags of /29-/64;
    regional tags repeat prefixes of their global tag.
    """
    rng = random.Random(seed)
    regions = [f"region{i:02d}" for i in range(60)]
    values: list[dict[str, object]] = []
    broad: list[ipaddress.IPv4Network] = []
    broad6: list[ipaddress.IPv6Network] = []
    for region in regions:
        nets4 = [
            ipaddress.IPv4Network(
                (rng.randrange(20, 223) << 24 | rng.getrandbits(8) << 16, 14), False
            )
            for _ in range(8)
        ]
        nets6 = [
            ipaddress.IPv6Network((0x2603 << 112 | rng.getrandbits(16) << 96, 32), False)
            for _ in range(4)
        ]
        broad += nets4
        broad6 += nets6
        values.append(_tag(f"AzureCloud.{region}", region, [*map(str, nets4), *map(str, nets6)]))
    services = [f"Service{i:03d}" for i in range(150)]
    remaining = prefixes - sum(len(_prefixes(v)) for v in values)
    per_tag = max(4, int(remaining / (len(services) * 3.75)))
    for service in services:
        global_prefixes: list[str] = []
        for region in rng.sample(regions, 3):
            chosen: list[str] = []
            for _ in range(per_tag):
                if rng.random() < 0.8:
                    outer4 = rng.choice(broad)
                    length = rng.randint(20, 29)
                    inner = int(outer4.network_address) + rng.getrandbits(32 - outer4.prefixlen)
                    chosen.append(str(ipaddress.IPv4Network((inner, length), strict=False)))
                else:
                    outer6 = rng.choice(broad6)
                    length = rng.randint(40, 64)
                    inner = int(outer6.network_address) + rng.getrandbits(128 - outer6.prefixlen)
                    chosen.append(str(ipaddress.IPv6Network((inner, length), strict=False)))
            values.append(_tag(f"{service}.{region}", region, chosen))
            global_prefixes += chosen[: per_tag // 4]
        values.append(_tag(service, "", global_prefixes))
    return {"changeNumber": 1, "cloud": "Public", "values": values}


def _tag(name: str, region: str, prefixes: list[str]) -> dict[str, object]:
    properties = {"region": region, "platform": "Azure", "addressPrefixes": prefixes}
    return {"name": name, "id": name, "properties": properties}


def _prefixes(value: dict[str, object]) -> list[str]:
    properties = value["properties"]
    assert isinstance(properties, dict)
    found: list[str] = properties["addressPrefixes"]
    return found


def destination_pool(tags: dict[str, object], size: int, seed: int = 11) -> list[str]:
    """Distinct destinations: two thirds inside tagged prefixes, the rest anywhere."""
    rng = random.Random(seed)
    values = tags["values"]
    assert isinstance(values, list)
    networks = [ipaddress.ip_network(p) for v in values for p in _prefixes(v)]
    pool: set[str] = set()
    while len(pool) < size:
        if rng.random() < 0.67:
            net = rng.choice(networks)
            host = int(net.network_address) + rng.getrandbits(net.max_prefixlen - net.prefixlen)
            pool.add(str(ipaddress.ip_address(host)))
        elif rng.random() < 0.9:
            pool.add(str(ipaddress.IPv4Address(rng.randrange(1 << 24, 223 << 24))))
        else:
            pool.add(str(ipaddress.IPv6Address(0x2A00 << 112 | rng.getrandbits(112))))
    return sorted(pool)


def flows(records: int, destinations: list[str], seed: int = 3) -> pl.DataFrame:
    """``records`` flow records over seven days in FLOW_SCHEMA."""
    sources = [f"10.{i // 250 % 250}.{i % 250}.{4 + i % 200}" for i in range(4000)]
    sources += [f"fd00:10:{i:x}::4" for i in range(400)]
    nat = ["20.61.15.40", "20.61.15.41", "20.61.15.42", "2603:1020:203:4::28"]
    index = pl.int_range(0, records, eager=True)
    frame = pl.DataFrame({"i": index}).with_columns(
        minute=(pl.col("i").shuffle(seed) % (7 * 1440)),
        src=pl.col("i").shuffle(seed + 1) % len(sources),
        dst=(pl.col("i").shuffle(seed + 2) % len(destinations)),
        size=(pl.col("i").shuffle(seed + 3) % 997 + 1),
    )
    src = pl.Series(sources)
    dst = pl.Series(destinations)
    return frame.select(
        time=pl.lit(START) + pl.duration(minutes=pl.col("minute")),
        source_ip=pl.col("src").replace_strict(pl.int_range(len(src), eager=True), src),
        destination_ip=pl.col("dst").replace_strict(pl.int_range(len(dst), eager=True), dst),
        nat_gateway_ip=pl.col("src").replace_strict(
            pl.int_range(len(src), eager=True),
            pl.Series([nat[3] if ":" in s else nat[k % 3] for k, s in enumerate(sources)]),
        ),
        packets_sent=pl.col("size") // 10 + 1,
        packets_received=pl.col("size") // 7 + 1,
        packets_sent_dropped=pl.lit(0, pl.Int64),
        packets_received_dropped=(pl.col("size") == 500).cast(pl.Int64),
        bytes_sent=pl.col("size") * 1400,
        bytes_received=pl.col("size") * 3100,
        resource_id=pl.lit(GATEWAY),
    ).cast(dict(natlens.FLOW_SCHEMA))  # type: ignore[arg-type]


def timed(task: Callable[[], object], repeat: int = 3) -> float:
    """Best wall time of ``repeat`` runs, in seconds."""
    best = float("inf")
    for _ in range(repeat):
        begin = time.perf_counter()
        task()
        best = min(best, time.perf_counter() - begin)
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--records", type=int, default=10_000_000)
    parser.add_argument("--prefixes", type=int, default=50_000)
    parser.add_argument("--destinations", type=int, default=200_000)
    parser.add_argument("--work", type=Path, help="reuse or keep the generated store here")
    args = parser.parse_args()

    work = args.work or Path(tempfile.mkdtemp(prefix="natlens-bench-"))
    store = work / "store"
    tags_path = work / "service_tags.json"
    work.mkdir(parents=True, exist_ok=True)
    begin = time.perf_counter()
    if not tags_path.exists():
        tags_path.write_text(json.dumps(service_tags(args.prefixes)))
    tags = json.loads(tags_path.read_text())
    table = natlens.read_service_tags(tags)
    if not store.exists():
        pool = destination_pool(tags, args.destinations)
        natlens.write_parquet(flows(args.records, pool), store)
    ready = time.perf_counter() - begin
    print(
        f"data: {args.records:,} records in {store} ({table.height:,} Service Tag prefixes, "
        f"{table.get_column('tag').n_unique():,} tags), ready in {ready:.1f} s"
    )

    scan = natlens.scan_parquet(store)
    files = str(store / "**" / "*.parquet")
    rows = scan.select(pl.len()).collect().item()
    distinct = scan.select(pl.col("destination_ip").n_unique()).collect().item()
    print(f"store: {rows:,} rows, {distinct:,} distinct destinations")

    def reference(key: str | pl.Expr) -> Callable[[], object]:
        def task() -> object:
            return (
                pl.scan_parquet(files)
                .group_by(key)
                .agg(pl.col("bytes_sent").sum())
                .sort("bytes_sent", descending=True)
                .head(10)
                .collect()
            )

        return task

    exact = pl.DataFrame(
        {"destination_ip": scan.select(pl.col("destination_ip").unique()).collect().to_series()}
    ).with_columns(tag=pl.lit("x"))
    exact = exact.head(table.height)

    def reference_join() -> object:
        return pl.scan_parquet(files).join(exact.lazy(), on="destination_ip", how="left").collect()

    results: list[tuple[str, float, str, float]] = []
    join = timed(reference_join, repeat=2)
    for name, task, key in (
        ("top_talkers", natlens.top_talkers, "source_ip"),
        ("top_destinations", natlens.top_destinations, "destination_ip"),
        ("traffic_over_time", natlens.traffic_over_time, "time"),
    ):
        group = pl.col("time").dt.truncate("1h") if key == "time" else pl.col(key)
        seconds = timed(lambda task=task: task(natlens.scan_parquet(store)))  # type: ignore[misc]
        results.append((name, seconds, f"group_by {key}", timed(reference(group))))
    label = timed(
        lambda: natlens.label_destinations(natlens.scan_parquet(store), service_tags=table),
        repeat=2,
    )
    results.append(("label_destinations", label, "exact-key join, same rows", join))

    print(
        f"\n{'analysis':<20} {'seconds':>8}   {'polars reference':<24} {'seconds':>8} {'ratio':>6}"
    )
    for name, seconds, against, ref_seconds in results:
        ratio = seconds / ref_seconds
        print(f"{name:<20} {seconds:8.3f}   {against:<24} {ref_seconds:8.3f} {ratio:6.2f}")
    labelled = natlens.label_destinations(natlens.scan_parquet(store), service_tags=table)
    share = 1 - labelled.get_column("service_tag").null_count() / labelled.height
    print(f"\nlabelled {share:.0%} of the records with a Service Tag")


if __name__ == "__main__":
    main()
