"""Generate a storage-account tree of PT1H.json blobs of any size, fast, for benchmarks.

The records follow the documented envelope; the values are random but plausible. This is
for measuring speed and memory, not for analysis (the shipped samples are for that).
"""

from __future__ import annotations

import argparse
import datetime as dt
from pathlib import Path

import polars as pl

GATEWAY = (
    "/SUBSCRIPTIONS/00000000-0000-0000-0000-0000000000B1/RESOURCEGROUPS/RG-BENCH/PROVIDERS/"
    "MICROSOFT.NETWORK/NATGATEWAYS/NG-BENCH-{g}"
)


def _hour_frame(start: dt.datetime, rows: int, seed: int, gateway: int) -> pl.DataFrame:
    minute = pl.int_range(0, rows, eager=True).shuffle(seed) % 60
    src = pl.int_range(0, rows, eager=True).shuffle(seed + 1) % 2000
    dst = (pl.int_range(0, rows, eager=True).shuffle(seed + 2) % 50_000) ** 2 % 65_521
    frame = pl.DataFrame({"minute": minute, "src": src, "dst": dst})
    time = pl.lit(start) + pl.duration(minutes=pl.col("minute"))
    return frame.select(
        time.dt.strftime("%Y-%m-%dT%H:%M:%S.0000000Z").alias("time"),
        pl.concat_str(
            pl.lit("10."),
            pl.col("src") // 1000,
            pl.lit("."),
            (pl.col("src") // 100) % 10,
            pl.lit("."),
            pl.col("src") % 100,
        ).alias("source"),
        pl.concat_str(
            pl.lit("20."),
            pl.col("dst") // 256 % 256,
            pl.lit("."),
            pl.col("dst") % 256,
            pl.lit("."),
            pl.col("minute"),
        ).alias("destination"),
        pl.concat_str(pl.lit(f"52.{gateway}.0."), pl.col("src") % 4).alias("nat"),
        (pl.col("dst") % 97 + 1).alias("ps"),
        (pl.col("dst") % 89 + 1).alias("pr"),
        ((pl.col("dst") % 97 + 1) * 1400).alias("bs"),
        ((pl.col("dst") % 89 + 1) * 1300).alias("br"),
    )


def write_tree(directory: Path, records: int, *, hours: int = 24, gateways: int = 2) -> int:
    """Write about ``records`` records as hourly blobs; return the bytes written."""
    start = dt.datetime(2026, 11, 9, tzinfo=dt.UTC)
    per_blob = max(1, records // (hours * gateways))
    total = 0
    for g in range(gateways):
        rid = GATEWAY.format(g=g)
        for h in range(hours):
            at = start + dt.timedelta(hours=h)
            blob = (
                directory
                / "insights-logs-natgatewayflowlogsv1"
                / f"resourceId={rid}"
                / f"y={at:%Y}/m={at:%m}/d={at:%d}/h={at:%H}/m=00/PT1H.json"
            )
            blob.parent.mkdir(parents=True, exist_ok=True)
            frame = _hour_frame(at, per_blob, seed=g * 1000 + h, gateway=g)
            lines = frame.select(
                pl.concat_str(
                    pl.lit('{"time":"'),
                    "time",
                    pl.lit(f'","resourceId":"{rid}","category":"NatGatewayFlowlogsV1",'),
                    pl.lit('"operationName":"NatGatewayFlowLog","properties":{"SourceIp":"'),
                    "source",
                    pl.lit('","DestinationIp":"'),
                    "destination",
                    pl.lit('","NatGatewayIp":"'),
                    "nat",
                    pl.lit('","PacketsSent":'),
                    "ps",
                    pl.lit(',"PacketsReceived":'),
                    "pr",
                    pl.lit(',"PacketsSentDropped":0,"PacketsReceivedDropped":0,"BytesSent":'),
                    "bs",
                    pl.lit(',"BytesReceived":'),
                    "br",
                    pl.lit("}}"),
                )
            ).to_series()
            text = "\n".join(lines.to_list()) + "\n"
            blob.write_text(text)
            total += len(text)
    return total


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("directory", type=Path)
    parser.add_argument("--records", type=int, default=1_000_000)
    args = parser.parse_args()
    size = write_tree(args.directory, args.records)
    print(f"wrote {size / 1e9:.2f} GB to {args.directory}")


if __name__ == "__main__":
    main()
