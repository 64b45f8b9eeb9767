"""The shipped sample week: made by the generator, realistic, and holding every planted event.

The flow records are read here with plain polars over the raw gzip JSON Lines, so these
tests do not lean on the loaders they help to test; one test checks the loader agrees.
"""

from __future__ import annotations

import dataclasses
import gzip
import hashlib
import io
import ipaddress
import json
import re
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import polars as pl
import pytest

import natlens
from natlens import _samples
from natlens._cli import main
from natlens._samplegen import SampleSummary, generate_samples
from natlens._schema import canonical_ip

WEEK_START = datetime(2026, 11, 9, tzinfo=UTC)
WEEK_END = WEEK_START + timedelta(days=7)
BLOB = re.compile(
    r"^flowlogs/insights-logs-natgatewayflowlogsv1/resourceId=(?P<rid>/SUBSCRIPTIONS/[0-9A-F-]{36}"
    r"/RESOURCEGROUPS/[A-Z0-9-]+/PROVIDERS/MICROSOFT\.NETWORK/NATGATEWAYS/[A-Z0-9-]+)"
    r"/y=(?P<y>\d{4})/m=(?P<mo>\d\d)/d=(?P<d>\d\d)/h=(?P<h>\d\d)/m=00/PT1H\.json\.gz$"
)
COUNTERS = {
    "PacketsSent": "packets_sent",
    "PacketsReceived": "packets_received",
    "PacketsSentDropped": "packets_sent_dropped",
    "PacketsReceivedDropped": "packets_received_dropped",
    "BytesSent": "bytes_sent",
    "BytesReceived": "bytes_received",
}
RAW_SCHEMA = {
    "time": pl.String(),
    "resourceId": pl.String(),
    "category": pl.String(),
    "operationName": pl.String(),
    "properties": pl.Struct(
        {"SourceIp": pl.String(), "DestinationIp": pl.String(), "NatGatewayIp": pl.String()}
        | {name: pl.Int64() for name in COUNTERS}
    ),
}


def _digest(root: Path) -> dict[str, str]:
    """Relative path -> hash of the content (of the uncompressed content for .gz files)."""
    out = {}
    for path in sorted(p for p in root.rglob("*") if p.is_file()):
        data = path.read_bytes()
        if path.suffix == ".gz":
            data = gzip.decompress(data)
        out[path.relative_to(root).as_posix()] = hashlib.sha256(data).hexdigest()
    return out


def _read_raw(root: Path) -> pl.DataFrame:
    """Every record of the flow-log tree, with the blob it was filed in."""
    chunks, blobs = [], []
    for path in sorted(root.rglob("PT1H.json.gz")):
        text = gzip.decompress(path.read_bytes())
        chunks.append(text)
        blobs.extend([path.relative_to(root.parent).as_posix()] * text.count(b"\n"))
    frame = pl.read_ndjson(io.BytesIO(b"".join(chunks)), schema=RAW_SCHEMA)
    return (
        frame.unnest("properties")
        .rename(
            {
                "SourceIp": "source_ip",
                "DestinationIp": "destination_ip",
                "NatGatewayIp": "nat_gateway_ip",
                "resourceId": "resource_id",
                "time": "time_text",
            }
            | COUNTERS
        )
        .with_columns(
            time=pl.col("time_text").str.to_datetime("%Y-%m-%dT%H:%M:%S%.fZ", time_zone="UTC"),
            blob=pl.Series(blobs),
        )
    )


@pytest.fixture(scope="module")
def raw(samples: natlens.SampleData) -> pl.DataFrame:
    return _read_raw(samples.flowlogs)


@pytest.fixture(scope="module")
def events(answer_key: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {event["kind"]: event for event in answer_key["events"]}


@pytest.fixture(scope="module")
def metrics(samples: natlens.SampleData) -> pl.DataFrame:
    return natlens.read_metrics(samples.metrics)


@pytest.fixture(scope="module")
def inventory(samples: natlens.SampleData) -> pl.DataFrame:
    return pl.read_csv(samples.inventory)


@pytest.fixture(scope="module")
def hostnames(samples: natlens.SampleData) -> dict[str, list[str]]:
    data: dict[str, list[str]] = json.loads(samples.hostnames.read_text())
    return data


def _utc(text: str) -> datetime:
    return datetime.strptime(text, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)


def _pair(raw: pl.DataFrame, source: str, destination: str) -> pl.DataFrame:
    return raw.filter(
        (pl.col("source_ip") == source) & (pl.col("destination_ip") == destination)
    ).sort("time")


# -- the shipped files are the generator's output -------------------------------------


@pytest.fixture(scope="module")
def regenerated(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, SampleSummary]:
    out = tmp_path_factory.mktemp("regenerated")
    summary = generate_samples(out)
    return out, summary


def test_shipped_samples_are_exactly_what_the_generator_writes(
    samples: natlens.SampleData, regenerated: tuple[Path, SampleSummary]
) -> None:
    shipped, fresh = _digest(samples.root), _digest(regenerated[0])
    assert shipped.keys() == fresh.keys()
    changed = [name for name in shipped if shipped[name] != fresh[name]]
    assert changed == [], f"hand-edited or stale sample files: {changed[:5]}"


def test_generation_summary_and_speed_of_the_shipped_week(
    regenerated: tuple[Path, SampleSummary], raw: pl.DataFrame
) -> None:
    summary = regenerated[1]
    assert summary.records == raw.height
    assert summary.blobs == 2 * 7 * 24
    assert summary.metrics_rows == 7 * 1440 * 2 * 12
    assert summary.events == (
        "billing_spike",
        "github_dropped_packets",
        "snat_exhaustion",
        "unapproved_destination",
        "new_destination",
        "beacon",
    )


def test_gzip_members_carry_no_time_stamp_or_file_name(samples: natlens.SampleData) -> None:
    files = [*samples.flowlogs.rglob("*.gz"), samples.metrics]
    for path in files:
        head = path.read_bytes()[:10]
        assert head[:3] == b"\x1f\x8b\x08", path
        assert head[3] == 0, f"{path}: gzip flags set (file name or comment stored)"
        assert head[4:8] == b"\0\0\0\0", f"{path}: gzip time stamp is not zero"


# -- layout, size, envelope -------------------------------------------------------------


def test_storage_tree_has_one_blob_per_gateway_per_hour(samples: natlens.SampleData) -> None:
    blobs = sorted(p.relative_to(samples.root).as_posix() for p in samples.flowlogs.rglob("*.gz"))
    assert len(blobs) == 2 * 7 * 24
    matches = [BLOB.match(b) for b in blobs]
    assert all(matches), [b for b, m in zip(blobs, matches, strict=True) if not m][:3]
    hours_by_gateway: dict[str, set[datetime]] = {}
    for m in matches:
        assert m is not None
        hour = datetime(int(m["y"]), int(m["mo"]), int(m["d"]), int(m["h"]), tzinfo=UTC)
        hours_by_gateway.setdefault(m["rid"], set()).add(hour)
    assert len(hours_by_gateway) == 2
    week = {WEEK_START + timedelta(hours=h) for h in range(7 * 24)}
    assert all(hours == week for hours in hours_by_gateway.values())


def test_sizes_fit_in_git_and_the_week_has_enough_records(
    samples: natlens.SampleData, raw: pl.DataFrame
) -> None:
    total = sum(p.stat().st_size for p in samples.root.rglob("*") if p.is_file())
    assert raw.height >= 200_000
    assert total < 12_000_000
    assert samples.metrics.stat().st_size < 3_000_000


def test_records_have_the_resource_log_envelope(raw: pl.DataFrame) -> None:
    assert raw.get_column("category").unique().to_list() == ["NatGatewayFlowlogsV1"]
    assert raw.get_column("operationName").null_count() == 0
    assert (
        raw.get_column("time_text").str.contains(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:00\.0000000Z$").all()
    )
    assert raw.get_column("time").min() == WEEK_START
    assert raw.get_column("time").max() == WEEK_END - timedelta(minutes=1)
    ids = raw.select("resource_id", pl.col("blob").str.extract(r"resourceId=(.*)/y=", 1))
    assert ids.filter(pl.col("resource_id") != pl.col("blob")).height == 0
    for column in ("source_ip", "destination_ip", "nat_gateway_ip"):
        values = raw.get_column(column).unique().to_list()
        assert all(canonical_ip(v) == v for v in values)
    key = ["time", "resource_id", "source_ip", "destination_ip", "nat_gateway_ip"]
    assert raw.select(key).is_duplicated().sum() == 0, "one record per tuple per minute"


def test_records_are_filed_by_receive_time(raw: pl.DataFrame) -> None:
    blob_hour = raw.select(
        pl.col("time").dt.truncate("1h").alias("hour"),
        pl.col("blob")
        .str.extract(r"y=\d{4}/m=\d\d/d=\d\d/h=\d\d", 0)
        .add(":00")
        .str.to_datetime("y=%Y/m=%m/d=%d/h=%H:%M", time_zone="UTC")
        .alias("filed"),
        pl.col("time").dt.minute().alias("minute"),
    )
    late = blob_hour.filter(pl.col("filed") != pl.col("hour"))
    assert 0 < late.height < raw.height // 100, "a few records land in the next hour's blob"
    assert late.filter(
        (pl.col("filed") - pl.col("hour") != timedelta(hours=1)) | (pl.col("minute") != 59)
    ).is_empty()


# -- realism ----------------------------------------------------------------------------


def test_the_week_has_a_daily_and_weekly_rhythm(raw: pl.DataFrame) -> None:
    hourly = raw.group_by(pl.col("time").dt.truncate("1h")).len().sort("time")
    hourly = hourly.with_columns(
        hour=pl.col("time").dt.hour(), weekend=pl.col("time").dt.weekday() >= 6
    )
    weekday = hourly.filter(~pl.col("weekend"))
    office = weekday.filter(pl.col("hour").is_between(8, 15)).get_column("len").mean()
    night = weekday.filter(pl.col("hour").is_between(0, 4)).get_column("len").mean()
    saturday = hourly.filter(pl.col("weekend") & pl.col("hour").is_between(8, 15))
    assert isinstance(office, float)
    assert isinstance(night, float)
    assert office > 1.4 * night
    assert saturday.select(pl.col("len").mean()).item() < 0.75 * office


def test_destinations_are_heavy_tailed(raw: pl.DataFrame) -> None:
    by_destination = (
        raw.group_by("destination_ip")
        .agg(records=pl.len(), bytes=pl.col("bytes_sent") + pl.col("bytes_received"))
        .with_columns(pl.col("bytes").list.sum())
        .sort("records", descending=True)
    )
    assert by_destination.height > 300
    top10, total, rare = by_destination.select(
        pl.col("records").head(10).sum(),
        pl.col("records").sum().alias("total"),
        (pl.col("records") <= 20).sum().alias("rare"),
    ).row(0)
    assert top10 > 0.3 * total
    assert rare > 100, "a long tail of rarely seen destinations"


def test_some_ipv6_and_some_null_counters(raw: pl.DataFrame) -> None:
    v6 = raw.filter(pl.col("source_ip").str.contains(":"))
    assert 0.03 * raw.height < v6.height < 0.3 * raw.height
    assert v6.get_column("destination_ip").str.contains(":").all()
    assert v6.get_column("nat_gateway_ip").str.contains(":").all()
    nulls = raw.filter(pl.any_horizontal(pl.col(list(COUNTERS.values())).is_null()))
    assert 0 < nulls.height < 0.01 * raw.height
    assert nulls.filter(pl.col("bytes_sent").is_null()).height > 0
    assert nulls.filter(pl.col("bytes_sent").is_not_null()).height > 0


def test_two_gateways_their_public_ips_and_about_a_hundred_vms(
    raw: pl.DataFrame, answer_key: dict[str, Any], inventory: pl.DataFrame
) -> None:
    per_gateway = raw.group_by("resource_id").agg(
        pl.col("nat_gateway_ip").filter(~pl.col("nat_gateway_ip").str.contains(":")).unique()
    )
    counts = sorted(len(ips) for ips in per_gateway.get_column("nat_gateway_ip").to_list())
    assert counts == [1, 2]
    gateways = {gw["resource_id"]: gw for gw in answer_key["dataset"]["gateways"]}
    assert set(per_gateway.get_column("resource_id")) == set(gateways)
    for rid, ips in per_gateway.iter_rows():
        assert set(ips) <= set(gateways[rid]["public_ips"])
    assert inventory.get_column("vm_name").n_unique() == 100
    assert inventory.get_column("subnet").n_unique() >= 3
    assert inventory.get_column("team").n_unique() >= 3


# -- side files -------------------------------------------------------------------------


def test_inventory_covers_every_source_ip(raw: pl.DataFrame, inventory: pl.DataFrame) -> None:
    assert inventory.columns == ["ip", "vm_name", "subnet", "team"]
    assert inventory.get_column("ip").is_unique().all()
    sources = set(raw.get_column("source_ip").unique())
    assert sources <= set(inventory.get_column("ip"))
    assert all(ipaddress.ip_address(ip).is_private for ip in inventory.get_column("ip"))
    assert natlens.read_inventory(natlens.sample_data().inventory).height == inventory.height


def _tags(samples: natlens.SampleData) -> dict[str, list[str]]:
    data = json.loads(samples.service_tags.read_text())
    assert {"changeNumber", "cloud", "values"} <= data.keys()
    tags = {}
    for value in data["values"]:
        props = value["properties"]
        expected = {"changeNumber", "region", "regionId", "platform", "systemService"}
        assert expected | {"addressPrefixes", "networkFeatures"} <= props.keys()
        assert value["id"] == value["name"]
        tags[value["name"]] = props["addressPrefixes"]
    return tags


def _networks(prefixes: list[str]) -> list[ipaddress.IPv4Network | ipaddress.IPv6Network]:
    return [ipaddress.ip_network(p) for p in prefixes]


def test_service_tags_overlap_like_azure_and_cover_ipv4_and_ipv6(
    samples: natlens.SampleData,
) -> None:
    tags = _tags(samples)
    cloud = _networks(tags["AzureCloud"])
    for name, prefixes in tags.items():
        for net in _networks(prefixes):
            assert any(
                net.version == big.version and net.subnet_of(big)  # type: ignore[arg-type]
                for big in cloud
            ), (name, net)
    storage = _networks(tags["Storage.WestEurope"])
    assert {n.version for n in storage} == {4, 6}
    assert natlens.read_service_tags(samples.service_tags).height > 0


def test_allowlist_names_only_known_tags_and_hostnames(
    samples: natlens.SampleData, hostnames: dict[str, list[str]]
) -> None:
    tags = _tags(samples)
    entries = natlens.read_allowlist(samples.allowlist)
    kinds = {"cidr": 0, "tag": 0, "host": 0}
    for entry in entries:
        if "/" in entry:
            ipaddress.ip_network(entry)
            kinds["cidr"] += 1
        elif entry in tags:
            kinds["tag"] += 1
        else:
            assert entry in hostnames, f"allowlisted hostname {entry} has no addresses"
            kinds["host"] += 1
    assert all(kinds.values()), kinds
    assert any(":" in e for e in entries if "/" in e), "an IPv6 CIDR"
    for name, ips in natlens.read_hostnames(samples.hostnames).items():
        assert ips == [canonical_ip(ip) for ip in hostnames[name]]


def _approved(samples: natlens.SampleData, hostnames: dict[str, list[str]]) -> list[Any]:
    tags = _tags(samples)
    networks = []
    for entry in natlens.read_allowlist(samples.allowlist):
        if "/" in entry:
            networks.append(ipaddress.ip_network(entry))
        elif entry in tags:
            networks.extend(_networks(tags[entry]))
        else:
            networks.extend(ipaddress.ip_network(ip) for ip in hostnames[entry])
    return networks


def test_most_traffic_complies_and_the_rest_is_in_the_answer_key(
    samples: natlens.SampleData,
    raw: pl.DataFrame,
    hostnames: dict[str, list[str]],
    answer_key: dict[str, Any],
    events: dict[str, dict[str, Any]],
) -> None:
    networks = _approved(samples, hostnames)

    def approved(ip: str) -> bool:
        address = ipaddress.ip_address(ip)
        return any(address.version == n.version and address in n for n in networks)

    destinations = raw.get_column("destination_ip").unique().to_list()
    unapproved = sorted(ip for ip in destinations if not approved(ip))
    assert unapproved == sorted(answer_key["unapproved_destinations"])
    expected = [
        *events["unapproved_destination"]["destination_ips"],
        *events["beacon"]["destination_ips"],
    ]
    assert sorted(expected) == unapproved
    bad = raw.filter(pl.col("destination_ip").is_in(unapproved))
    assert bad.height < 0.02 * raw.height


# -- the planted events -----------------------------------------------------------------


def test_billing_spike(
    raw: pl.DataFrame, events: dict[str, dict[str, Any]], answer_key: dict[str, Any]
) -> None:
    event = events["billing_spike"]
    start, end = _utc(event["start"]), _utc(event["end"])
    upload = _pair(raw, event["vm_ip"], event["destination_ips"][0])
    during = upload.filter(pl.col("time").is_between(start, end, closed="left"))
    numbers = event["numbers"]
    assert during.get_column("bytes_sent").sum() == numbers["bytes_sent"]
    assert during.height == numbers["records"]
    assert set(during.get_column("nat_gateway_ip")) == set(event["nat_gateway_ips"])
    assert during.get_column("time").n_unique() == numbers["minutes"]
    assert numbers["minutes"] == (end - start) / timedelta(minutes=1)
    before = upload.filter(pl.col("time") < start).get_column("bytes_sent").sum()
    assert before < 0.01 * numbers["bytes_sent"]
    assert 2 <= (end - start).total_seconds() / 3600 <= 8
    assert numbers["gb_sent"] > 30

    hourly = raw.group_by(pl.col("time").dt.truncate("1h")).agg(
        total=pl.col("bytes_sent").fill_null(0) + pl.col("bytes_received").fill_null(0)
    )
    hourly = hourly.with_columns(pl.col("total").list.sum())
    median = hourly.get_column("total").median()
    assert isinstance(median, float)
    assert median == pytest.approx(answer_key["dataset"]["org_median_hourly_bytes"], abs=1)
    assert numbers["times_usual_hour"] >= 4
    spike_rate = numbers["bytes_sent"] / ((end - start).total_seconds() / 3600)
    assert spike_rate > 4 * median
    storage = _tags(natlens.sample_data())["Storage.WestEurope"]
    address = ipaddress.ip_address(event["destination_ips"][0])
    assert any(address in n for n in _networks(storage) if n.version == address.version)


def test_github_dropped_packets(
    raw: pl.DataFrame, events: dict[str, dict[str, Any]], hostnames: dict[str, list[str]]
) -> None:
    event = events["github_dropped_packets"]
    numbers = event["numbers"]
    dst = event["destination_ips"][0]
    assert dst in hostnames["github.com"]
    conn = _pair(raw, event["vm_ip"], dst)
    dropped = conn.filter(
        (pl.col("packets_sent_dropped") > 0) | (pl.col("packets_received_dropped") > 0)
    )
    assert dropped.height == numbers["records_with_drops"] > 20
    assert (
        dropped.get_column("packets_received_dropped").sum() == numbers["packets_received_dropped"]
    )
    assert dropped.get_column("packets_sent_dropped").sum() == numbers["packets_sent_dropped"]
    assert dropped.get_column("time").dt.date().n_unique() == 1, "bursts over one day"
    bursts = [(_utc(b["start"]), _utc(b["end"])) for b in numbers["bursts"]]
    assert len(bursts) >= 3
    in_burst = pl.any_horizontal(
        *(pl.col("time").is_between(b, e, closed="left") for b, e in bursts)
    )
    assert dropped.filter(~in_burst).is_empty(), "drops only inside the listed bursts"
    assert dropped.height == sum(b["minutes"] for b in numbers["bursts"]), "every burst minute"
    day = conn.filter(
        pl.col("time").is_between(
            _utc(numbers["connection_start"]), _utc(numbers["connection_end"]), closed="left"
        )
    )
    assert day.height == numbers["connection_records"]
    assert day.filter(~in_burst).get_column("packets_received_dropped").sum() == 0
    assert day.select(pl.col("bytes_received").median()).item() > 10_000_000
    # the drops single out this connection: elsewhere only scattered noise
    others = raw.filter(
        ((pl.col("packets_sent_dropped") > 0) | (pl.col("packets_received_dropped") > 0))
        & ~((pl.col("source_ip") == event["vm_ip"]) & (pl.col("destination_ip") == dst))
    )
    assert others.height == numbers["background_records_with_drops_elsewhere"] < 30
    drops = pl.col("packets_sent_dropped") + pl.col("packets_received_dropped")
    assert others.select(drops.max()).item() <= 3
    assert numbers["other_vms_to_github_records_with_drops"] == 0


def test_snat_exhaustion_in_metrics_with_vanishing_flows(
    raw: pl.DataFrame, metrics: pl.DataFrame, events: dict[str, dict[str, Any]]
) -> None:
    event = events["snat_exhaustion"]
    numbers = event["numbers"]
    start, end = _utc(event["start"]), _utc(event["end"])
    assert 30 <= (end - start).total_seconds() / 60 <= 60
    failed = metrics.filter(
        (pl.col("metric") == "SNATConnectionCount")
        & (pl.col("connection_state") == "Failed")
        & (pl.col("value") > 0)
    )
    assert set(failed.get_column("resource_id")) == {event["resource_id"]}
    assert failed.get_column("time").min() == start
    assert failed.get_column("time").max() == end - timedelta(minutes=1)
    assert failed.height == numbers["minutes_with_failed"] == (end - start).total_seconds() / 60
    assert failed.get_column("value").sum() == numbers["snat_failed_total"]

    availability = metrics.filter(pl.col("metric") == "DatapathAvailability")
    lowest = availability.select(pl.col("value").min()).item()
    assert lowest > 90
    assert lowest == numbers["datapath_availability_min"]

    job = _pair(raw, event["vm_ip"], event["destination_ips"][0])
    minutes = set(job.get_column("time"))
    window = {start + timedelta(minutes=i) for i in range(int((end - start).seconds / 60))}
    assert not minutes & window, "the VM's flows to the destination vanish in the window"
    for i in range(1, 11):
        assert start - timedelta(minutes=i) in minutes
        assert end + timedelta(minutes=i - 1) in minutes
    assert job.filter(pl.col("time") < start).height >= numbers["vm_records_before"]
    new_in_window = raw.filter(
        (pl.col("destination_ip") == event["destination_ips"][0])
        & (pl.col("resource_id") == event["resource_id"])
        & pl.col("time").is_between(start, end, closed="left")
    )
    assert event["vm_ip"] not in set(new_in_window.get_column("source_ip"))


def test_unapproved_destination(raw: pl.DataFrame, events: dict[str, dict[str, Any]]) -> None:
    event = events["unapproved_destination"]
    talk = raw.filter(pl.col("destination_ip") == event["destination_ips"][0])
    assert set(talk.get_column("source_ip")) == {event["vm_ip"]}
    assert talk.height == event["numbers"]["records"]
    assert talk.get_column("bytes_sent").sum() == event["numbers"]["bytes_sent"]
    assert talk.get_column("time").dt.date().n_unique() == event["numbers"]["nights"] >= 3
    assert talk.get_column("time").min() == _utc(event["start"])


def test_new_destination_in_the_last_two_days(
    raw: pl.DataFrame,
    events: dict[str, dict[str, Any]],
    answer_key: dict[str, Any],
    hostnames: dict[str, list[str]],
) -> None:
    event = events["new_destination"]
    first = raw.group_by("destination_ip").agg(pl.col("time").min())
    late = first.filter(pl.col("time") >= WEEK_END - timedelta(days=2))
    new = sorted(late.get_column("destination_ip"))
    assert (
        new
        == sorted(event["destination_ips"])
        == sorted(answer_key["new_destinations_last_two_days"])
    )
    assert set(new) <= set(hostnames[event["hostname"]])
    assert late.get_column("time").min() == _utc(event["numbers"]["first_seen"])
    rows = raw.filter(pl.col("destination_ip").is_in(new))
    assert rows.height == event["numbers"]["records"] > 100
    assert sorted(rows.get_column("source_ip").unique()) == event["numbers"]["source_ips"]


def test_beacon(raw: pl.DataFrame, events: dict[str, dict[str, Any]]) -> None:
    event = events["beacon"]
    numbers = event["numbers"]
    talk = raw.filter(pl.col("destination_ip") == event["destination_ips"][0]).sort("time")
    assert set(talk.get_column("source_ip")) == {event["vm_ip"]}, "one VM, a rare destination"
    assert talk.height == numbers["contacts"]
    gap = pl.col("time").diff().dt.total_minutes()
    median_gap, regular, span, most_sent, most_received = talk.select(
        gap.median().alias("median_gap"),
        gap.drop_nulls().is_between(4, 6).mean().alias("regular"),
        (pl.col("time").max() - pl.col("time").min()).alias("span"),
        pl.col("bytes_sent").max(),
        pl.col("bytes_received").max(),
    ).row(0)
    assert median_gap == 5
    assert regular > 0.95
    assert span > timedelta(days=4)
    assert most_sent < 2_000
    assert most_received < 2_000


# -- metrics ----------------------------------------------------------------------------


def test_metrics_follow_the_schema_and_the_grid(metrics: pl.DataFrame, raw: pl.DataFrame) -> None:
    assert metrics.schema == natlens.METRICS_SCHEMA
    assert metrics.get_column("time").n_unique() == 7 * 1440
    assert set(metrics.get_column("resource_id")) == set(raw.get_column("resource_id"))
    shape = metrics.group_by("metric", "protocol", "direction", "connection_state").len()
    assert shape.height == 12
    assert set(shape.get_column("len")) == {7 * 1440 * 2}
    assert set(metrics.get_column("metric")) == {
        "DatapathAvailability",
        "SNATConnectionCount",
        "TotalConnectionCount",
        "PacketDropCount",
        "ByteCount",
    }
    assert set(metrics.get_column("protocol").drop_nulls()) == {"TCP", "UDP"}


def test_byte_count_tracks_the_flow_bytes(metrics: pl.DataFrame, raw: pl.DataFrame) -> None:
    flow = raw.group_by("time", "resource_id").agg(
        flow_out=pl.col("bytes_sent").sum(),
        flow_in=pl.col("bytes_received").sum(),
        flow_drops=(pl.col("packets_sent_dropped") + pl.col("packets_received_dropped")).sum(),
    )
    bytes_ = (
        metrics.filter(pl.col("metric") == "ByteCount")
        .group_by("time", "resource_id")
        .agg(
            metric_out=pl.col("value").filter(pl.col("direction") == "Out").sum(),
            metric_in=pl.col("value").filter(pl.col("direction") == "In").sum(),
        )
    )
    drops = metrics.filter(pl.col("metric") == "PacketDropCount").select(
        "time", "resource_id", metric_drops="value"
    )
    joined = (
        bytes_.join(drops, on=["time", "resource_id"])
        .join(flow, on=["time", "resource_id"], how="left")
        .fill_null(0)
    )
    assert joined.height == 2 * 7 * 1440
    # metrics count what the flow log shows, plus the bytes of records with null counters
    assert (joined["metric_out"] >= joined["flow_out"]).all()
    assert (joined["metric_in"] >= joined["flow_in"]).all()
    exact = (pl.col("metric_out") == pl.col("flow_out")) & (
        pl.col("metric_in") == pl.col("flow_in")
    )
    assert joined.select(exact.mean()).item() > 0.8
    total = joined.select(pl.col("metric_out", "flow_out").sum()).row(0)
    assert total[1] == pytest.approx(total[0], rel=0.01)
    assert (joined["metric_drops"] >= joined["flow_drops"]).all()


# -- generating other data sets ---------------------------------------------------------


def test_a_smaller_set_has_every_event_and_depends_only_on_the_seed(tmp_path: Path) -> None:
    first = generate_samples(tmp_path / "a", days=3, vms=20, seed=7)
    again = generate_samples(tmp_path / "b", days=3, vms=20, seed=7)
    other = generate_samples(tmp_path / "c", days=3, vms=20, seed=8)
    assert _digest(tmp_path / "a") == _digest(tmp_path / "b")
    assert _digest(tmp_path / "a") != _digest(tmp_path / "c")
    assert first == dataclasses.replace(again, directory=first.directory)
    assert other.records != first.records
    assert first.blobs == 2 * 3 * 24
    raw = _read_raw(tmp_path / "a" / "flowlogs")
    assert raw.height == first.records
    key = json.loads((tmp_path / "a" / "answer_key.json").read_text())
    assert [e["kind"] for e in key["events"]] == list(first.events)
    for event in key["events"]:
        ips = event["destination_ips"]
        assert raw.filter(pl.col("destination_ip").is_in(ips)).height > 0, event["kind"]
    assert len(pl.read_csv(tmp_path / "a" / "inventory.csv").get_column("vm_name").unique()) == 20
    data = natlens.sample_data(tmp_path / "a")
    assert natlens.read_metrics(data.metrics).height == first.metrics_rows


def test_generate_samples_refuses_to_overwrite_unless_asked(tmp_path: Path) -> None:
    generate_samples(tmp_path, days=4, vms=20)
    (tmp_path / "notes.txt").write_text("mine")
    with pytest.raises(FileExistsError, match="overwrite=True"):
        generate_samples(tmp_path, days=3, vms=20)
    summary = generate_samples(tmp_path, days=3, vms=20, overwrite=True)
    assert len(list(tmp_path.rglob("PT1H.json.gz"))) == summary.blobs == 2 * 3 * 24
    assert (tmp_path / "notes.txt").read_text() == "mine"


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"days": 2}, ValueError, "days must be"),
        ({"days": 400}, ValueError, "days must be"),
        ({"vms": 5}, ValueError, "vms must be"),
        ({"start": datetime(2026, 11, 9, 6, tzinfo=UTC)}, ValueError, "midnight"),
        ({"seed": "x"}, TypeError, "seed"),
    ],
)
def test_generate_samples_checks_its_arguments(
    tmp_path: Path, kwargs: dict[str, Any], error: type[Exception], match: str
) -> None:
    with pytest.raises(error, match=match):
        generate_samples(tmp_path, **kwargs)
    assert not any(tmp_path.iterdir())


def test_a_naive_start_is_utc(tmp_path: Path) -> None:
    summary = generate_samples(tmp_path, start=datetime(2027, 1, 4), days=3, vms=20)
    assert summary.start == datetime(2027, 1, 4, tzinfo=UTC)
    blobs = [p.as_posix() for p in (tmp_path / "flowlogs").rglob("PT1H.json.gz")]
    assert len(blobs) == summary.blobs
    assert sum("/y=2027/m=01/d=04/h=00/m=00/" in b for b in blobs) == 2
    assert sum("/y=2027/m=01/d=06/h=23/m=00/" in b for b in blobs) == 2


def test_sample_data_paths_and_a_clear_error_when_missing(tmp_path: Path) -> None:
    data = natlens.sample_data()
    for field in dataclasses.fields(data):
        assert getattr(data, field.name).exists(), field.name
    with pytest.raises(dataclasses.FrozenInstanceError):
        data.root = tmp_path  # type: ignore[misc]
    with pytest.raises(FileNotFoundError, match=r"natlens samples --out") as info:
        natlens.sample_data(tmp_path)
    assert str(tmp_path) in str(info.value)


def test_sample_data_prefers_the_installed_copy_and_names_both_places_when_neither_is_there(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    regenerated: tuple[Path, SampleSummary],
) -> None:
    assert natlens.sample_data().root == Path(__file__).resolve().parent.parent / "data" / "samples"
    monkeypatch.setattr(_samples, "_INSTALLED", regenerated[0])
    assert natlens.sample_data().root == regenerated[0]
    monkeypatch.setattr(_samples, "_INSTALLED", tmp_path / "wheel")
    monkeypatch.setattr(_samples, "_CHECKOUT", tmp_path / "checkout")
    with pytest.raises(FileNotFoundError, match=r"natlens samples --out") as info:
        natlens.sample_data()
    assert str(tmp_path / "wheel") in str(info.value)
    assert str(tmp_path / "checkout") in str(info.value)


def test_import_natlens_does_not_import_the_generator() -> None:
    code = (
        "import sys, natlens; natlens.sample_data(); "
        "print(sorted(name for name, module in list(sys.modules.items()) "
        "if name.startswith('natlens') and "
        "(name.startswith('natlens._samplegen') or hasattr(module, 'generate_samples'))))"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=120
    )
    assert done.stdout.strip() == "[]"
    code = "import sys; from natlens._cli import main; print('natlens._samplegen' in sys.modules)"
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=120
    )
    assert done.stdout.strip() == "False", "the CLI imports the generator only to run `samples`"


def test_cli_writes_samples(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "s"
    assert main(["samples", "--out", str(out), "--days", "3", "--vms", "20", "--seed", "3"]) == 0
    assert "planted: billing_spike" in capsys.readouterr().out
    assert natlens.sample_data(out).metrics.exists()
    assert main(["samples", "--out", str(out), "--days", "3", "--vms", "20"]) == 2
    assert "--force" in capsys.readouterr().err
    assert main(["samples", "--out", str(out), "--start", "9 Nov"]) == 2
    assert "YYYY-MM-DD" in capsys.readouterr().err
    assert main(["samples", "--out", str(tmp_path / "t"), "--vms", "3"]) == 2
    assert "vms must be" in capsys.readouterr().err


# -- the loader agrees with the raw reading ------------------------------------------------


def test_read_flowlogs_reads_the_samples_as_the_raw_json_says(
    raw: pl.DataFrame, sample_flows: pl.DataFrame
) -> None:
    columns = list(natlens.FLOW_SCHEMA.names())
    expected = raw.select(columns).sort(columns)
    assert sample_flows.schema == natlens.FLOW_SCHEMA
    assert sample_flows.sort(columns).equals(expected)


def test_the_natlens_calls_in_the_answer_key_find_each_event(
    samples: natlens.SampleData,
    sample_flows: pl.DataFrame,
    metrics: pl.DataFrame,
    events: dict[str, dict[str, Any]],
    answer_key: dict[str, Any],
) -> None:
    flows = sample_flows
    resolver = natlens.read_hostnames(samples.hostnames)
    billing = events["billing_spike"]
    spike = natlens.find_spikes(flows, price_per_gb=0.045, currency="USD").row(0, named=True)
    # the first event (ranked by extra volume) spans the planted upload's hours
    assert spike["start"] <= _utc(billing["start"])
    assert _utc(billing["end"]) <= spike["end"]
    top = natlens.explain_spike(flows, spike, price_per_gb=0.045, currency="USD").row(0, named=True)
    assert (top["source_ip"], top["destination_ip"]) == (
        billing["vm_ip"],
        billing["destination_ips"][0],
    )
    github = events["github_dropped_packets"]
    verdict = natlens.diagnose(
        flows,
        sources=github["vm_ip"],
        destinations="github.com",
        metrics=metrics,
        resolver=resolver,
    ).verdict
    assert verdict == "rate_limited"
    snat = events["snat_exhaustion"]
    verdict = natlens.diagnose(
        flows, sources=snat["vm_ip"], destinations=snat["destination_ips"][0], metrics=metrics
    ).verdict
    assert verdict == "snat_exhaustion"
    unapproved = natlens.check_allowlist(
        flows, samples.allowlist, service_tags=samples.service_tags, resolver=resolver
    )
    assert sorted(unapproved.get_column("destination_ip").unique()) == sorted(
        answer_key["unapproved_destinations"]
    )
    exfiltration = natlens.find_exfiltration(flows)
    assert events["unapproved_destination"]["destination_ips"][0] in set(
        exfiltration.get_column("destination_ip")
    )
    new = natlens.new_destinations(
        flows, baseline=answer_key["dataset"]["last_two_days_start"][:10]
    )
    assert sorted(new.get_column("destination_ip")) == sorted(
        events["new_destination"]["destination_ips"]
    )
    beacon = natlens.find_beacons(flows).row(0, named=True)
    assert (beacon["source_ip"], beacon["destination_ip"]) == (
        events["beacon"]["vm_ip"],
        events["beacon"]["destination_ips"][0],
    )


# -- read_metrics -----------------------------------------------------------------------

CSV = (
    "time,resource_id,metric,protocol,direction,connection_state,value\n"
    "2026-11-09T10:00:00Z,/subscriptions/s/resourceGroups/rg/providers/Microsoft.Network/"
    "natGateways/gw,ByteCount,6,Out,,1200\n"
    "2026-11-09T10:01:00+01:00,/subscriptions/s/resourceGroups/rg/providers/Microsoft.Network/"
    "natGateways/gw,DatapathAvailability,,,,99.5\n"
)


def test_read_metrics_csv_gzip_and_parquet_agree(tmp_path: Path) -> None:
    plain = tmp_path / "m.csv"
    plain.write_text(CSV)
    packed = tmp_path / "metrics.bin"  # the format comes from the content
    packed.write_bytes(gzip.compress(CSV.encode()))
    frame = natlens.read_metrics(plain)
    assert frame.schema == natlens.METRICS_SCHEMA
    assert frame.rows() == [
        (
            datetime(2026, 11, 9, 10, tzinfo=UTC),
            "/SUBSCRIPTIONS/S/RESOURCEGROUPS/RG/PROVIDERS/MICROSOFT.NETWORK/NATGATEWAYS/GW",
            "ByteCount",
            "TCP",
            "Out",
            None,
            1200.0,
        ),
        (
            datetime(2026, 11, 9, 9, 1, tzinfo=UTC),
            "/SUBSCRIPTIONS/S/RESOURCEGROUPS/RG/PROVIDERS/MICROSOFT.NETWORK/NATGATEWAYS/GW",
            "DatapathAvailability",
            None,
            None,
            None,
            99.5,
        ),
    ]
    assert natlens.read_metrics(packed).equals(frame)
    parquet = tmp_path / "m.parquet"
    frame.write_parquet(parquet)
    assert natlens.read_metrics(parquet).equals(frame)
    naive = tmp_path / "naive.parquet"
    frame.with_columns(pl.col("time").dt.replace_time_zone(None)).drop("direction").write_parquet(
        naive
    )
    assert natlens.read_metrics(naive).equals(frame.with_columns(direction=pl.lit(None, pl.String)))


def test_read_metrics_names_the_file_for_bad_input(
    tmp_path: Path, samples: natlens.SampleData
) -> None:
    with pytest.raises(FileNotFoundError, match=r"nothing\.csv"):
        natlens.read_metrics(tmp_path / "nothing.csv")
    blob = next(samples.flowlogs.rglob("PT1H.json.gz"))
    with pytest.raises(ValueError, match=r"PT1H\.json\.gz.*missing column"):
        natlens.read_metrics(blob)
    cases = {
        "empty.csv": (b"", "empty file"),
        "time.csv": (CSV.replace("2026-11-09T10:01:00+01:00", "yesterday").encode(), "line 3"),
        "value.csv": (CSV.replace(",1200", ",lots").encode(), r"line 2: value 'lots'"),
        "binary.csv": (bytes(range(256)) * 4, "binary"),
        "broken.gz": (gzip.compress(CSV.encode())[:30], "broken gzip"),
        "broken.parquet": (b"PAR1" + b"\0" * 40, "unreadable Parquet"),
    }
    for name, (content, message) in cases.items():
        path = tmp_path / name
        path.write_bytes(content)
        with pytest.raises(ValueError, match=message) as info:
            natlens.read_metrics(path)
        assert name in str(info.value)
    wrong = tmp_path / "wrong.parquet"
    pl.DataFrame({"a": [1]}).write_parquet(wrong)
    with pytest.raises(ValueError, match=r"wrong\.parquet.*missing column\(s\) time"):
        natlens.read_metrics(wrong)
