"""NAT64, IPv4-mapped text and dual stack (issue 8, part 3), on blobs as Azure writes them.

A StandardV2 gateway translating through the NAT64 well-known prefix ``64:ff9b::/96``
(RFC 6052) logs a destination ``64:ff9b::e01:203``: the IPv4 host 14.1.2.3. These
tests read such records from a storage-account ``PT1H.json`` blob and check that every
place natlens matches addresses (service tags, the allowlist, hostnames, IP and CIDR
filters, the dashboard filter, the troubleshooting path) treats it as that IPv4 host.
"""

from __future__ import annotations

import datetime as dt
import gzip
import ipaddress
import json
from pathlib import Path
from typing import Any

import polars as pl
import pytest
from analysis_frames import at, flow, frame
from hypothesis import given, settings
from hypothesis import strategies as st

import natlens
from natlens._schema import canonical_ip
from natlens.widgets import FilterState

GATEWAY = (
    "/SUBSCRIPTIONS/00000000-0000-0000-0000-000000000000/RESOURCEGROUPS/RG-NET"
    "/PROVIDERS/MICROSOFT.NETWORK/NATGATEWAYS/NATGW-V2"
)
HOUR = dt.datetime(2026, 7, 15, 10, tzinfo=dt.UTC)
NAT_V4, NAT_V6 = "20.61.15.40", "2603:1020:201:10::5"
WKP = ipaddress.IPv6Network("64:ff9b::/96")

# (source, destination as the log spells it, canonical destination, IPv4 host or None)
RECORDS = [
    ("fd00:10::4", "64:ff9b::e01:203", "64:ff9b::14.1.2.3", "14.1.2.3"),
    ("fd00:10::4", "64:FF9B::0E01:0203", "64:ff9b::14.1.2.3", "14.1.2.3"),
    ("fd00:10::5", "64:ff9b::14.1.2.3", "64:ff9b::14.1.2.3", "14.1.2.3"),
    ("fd00:10::5", "64:ff9b::1426:102", "64:ff9b::20.38.1.2", "20.38.1.2"),
    ("fd00:10::6", "64:ff9b::3401:203", "64:ff9b::52.1.2.3", "52.1.2.3"),
    ("fd00:10::6", "64:ff9b::c633:6407", "64:ff9b::198.51.100.7", "198.51.100.7"),
    ("10.0.0.4", "14.1.2.3", "14.1.2.3", "14.1.2.3"),
    ("10.0.0.4", "8.8.8.8", "8.8.8.8", "8.8.8.8"),
    ("fd00:10::4", "2001:db8::10", "2001:db8::10", None),
]

SERVICE_TAGS = {
    "changeNumber": 301,
    "cloud": "Public",
    "values": [
        {
            "name": "AzureCloud",
            "id": "AzureCloud",
            "properties": {
                "changeNumber": 88,
                "region": "",
                "platform": "Azure",
                "systemService": "",
                "addressPrefixes": ["20.0.0.0/8", "2603:1000::/24"],
            },
        },
        {
            "name": "Storage.WestEurope",
            "id": "Storage.WestEurope",
            "properties": {
                "changeNumber": 12,
                "region": "westeurope",
                "platform": "Azure",
                "systemService": "AzureStorage",
                "addressPrefixes": ["20.38.0.0/16", "2603:1020:201::/48"],
            },
        },
    ],
}


def _iso(moment: dt.datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%S.%f0Z")


def _blob_lines() -> list[str]:
    """One storage-account record per entry of RECORDS, each in its own minute."""
    lines = []
    for minute, (source, destination, _, _) in enumerate(RECORDS):
        nat = NAT_V6 if destination == "2001:db8::10" else NAT_V4
        record: dict[str, Any] = {
            "time": _iso(HOUR + dt.timedelta(minutes=minute)),
            "resourceId": GATEWAY,
            "category": "NatGatewayFlowlogsV1",
            "operationName": "NatGatewayFlowLog",
            "properties": {
                "SourceIp": source,
                "DestinationIp": destination,
                "NatGatewayIp": nat,
                "PacketsSent": 12,
                "PacketsReceived": 10,
                "PacketsSentDropped": 0,
                "PacketsReceivedDropped": 0,
                "BytesSent": 1_000 + minute,
                "BytesReceived": 4_000,
            },
        }
        lines.append(json.dumps(record))
    return lines


@pytest.fixture(params=["plain", "gzip"])
def blob(request: pytest.FixtureRequest, tmp_path: Path) -> Path:
    """The hour's blob in the storage account's folder layout, as azcopy downloads it."""
    folder = tmp_path.joinpath(
        "insights-logs-natgatewayflowlogsv1",
        f"resourceId={GATEWAY}",
        "y=2026",
        "m=07",
        "d=15",
        "h=10",
        "m=00",
    )
    folder.mkdir(parents=True)
    data = ("\n".join(_blob_lines()) + "\n").encode()
    path = folder / "PT1H.json"
    path.write_bytes(gzip.compress(data, mtime=0) if request.param == "gzip" else data)
    return tmp_path


@pytest.fixture
def flows(blob: Path) -> pl.DataFrame:
    report = natlens.LoadReport()
    loaded = natlens.scan_flowlogs(blob, report=report, strict=True).collect()
    assert report.ok, report.summary()
    return loaded.sort("time")


def _nat64(flows: pl.DataFrame) -> pl.DataFrame:
    return flows.filter(pl.col("destination_ip").str.starts_with("64:ff9b::"))


# -- canonical text ------------------------------------------------------------------------


def test_blob_destinations_come_back_in_mixed_notation(flows: pl.DataFrame) -> None:
    assert flows.collect_schema() == natlens.FLOW_SCHEMA
    assert flows.get_column("destination_ip").to_list() == [r[2] for r in RECORDS]


@pytest.mark.parametrize(
    ("text", "canonical"),
    [
        ("::ffff:a00:1", "::ffff:10.0.0.1"),
        ("::FFFF:10.0.0.1", "::ffff:10.0.0.1"),
        ("0:0:0:0:0:ffff:c000:0201", "::ffff:192.0.2.1"),
        ("64:ff9b::e01:203", "64:ff9b::14.1.2.3"),
        ("64:FF9B:0:0:0:0:0E01:0203", "64:ff9b::14.1.2.3"),
        ("64:ff9b::", "64:ff9b::0.0.0.0"),
        # not a well-known embedding: hexadecimal as before
        ("::a00:1", "::a00:1"),
        ("64:ff9b:1::e01:203", "64:ff9b:1::e01:203"),
        ("64:ff9b::1:e01:203", "64:ff9b::1:e01:203"),
        ("::fffe:a00:1", "::fffe:a00:1"),
    ],
)
def test_canonical_ip_mixed_notation(text: str, canonical: str) -> None:
    assert canonical_ip(text) == canonical


@settings(max_examples=300, deadline=None)
@given(st.one_of(st.ip_addresses(v=4), st.ip_addresses(v=6), st.ip_addresses(network=WKP)))
def test_canonical_ip_is_the_same_address_and_idempotent(
    address: ipaddress.IPv4Address | ipaddress.IPv6Address,
) -> None:
    for spelling in (str(address), address.exploded.upper()):
        text = canonical_ip(spelling)
        assert ipaddress.ip_address(text) == address
        assert canonical_ip(text) == text
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        assert text == f"::ffff:{address.ipv4_mapped}"
    elif address in WKP:
        assert text == f"64:ff9b::{ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)}"
    else:
        assert text == address.compressed


def test_ipv4_mapped_text_is_canonicalised_by_the_loaders(tmp_path: Path) -> None:
    # the careful path (Event Hubs payload) and the canonicaliser of every loader
    record = json.loads(_blob_lines()[0])
    record["properties"]["DestinationIp"] = "::ffff:c633:6407"
    path = tmp_path / "eventhub.json"
    path.write_text(json.dumps({"records": [record]}))
    loaded = natlens.read_flowlogs(path, strict=True)
    assert loaded.get_column("destination_ip").to_list() == ["::ffff:198.51.100.7"]


# -- matching by the embedded IPv4 host -----------------------------------------------------


def test_service_tags_label_nat64_destinations(flows: pl.DataFrame) -> None:
    labelled = natlens.label_destinations(flows, service_tags=SERVICE_TAGS)
    tags = dict(
        zip(labelled.get_column("destination_ip"), labelled.get_column("service_tag"), strict=True)
    )
    assert tags["64:ff9b::20.38.1.2"] == "Storage.WestEurope"
    assert tags["64:ff9b::14.1.2.3"] is None
    row = labelled.filter(pl.col("destination_ip") == "64:ff9b::20.38.1.2").row(0, named=True)
    assert (row["service_tag_prefix"], row["service_tag_region"]) == ("20.38.0.0/16", "westeurope")


def test_allowlist_allows_nat64_destinations_by_their_ipv4(
    flows: pl.DataFrame, tmp_path: Path
) -> None:
    allowlist = tmp_path / "allowlist.txt"
    allowlist.write_text(
        "# approved egress\n14.1.2.3\nStorage.WestEurope\napi.partner.example  # hostname\n"
        "8.8.8.0/24\n2001:db8::/32\n"
    )
    violations = natlens.check_allowlist(
        flows,
        allowlist,
        service_tags=SERVICE_TAGS,
        resolver={"api.partner.example": ["52.1.2.3"]},
    )
    assert violations.select("source_ip", "destination_ip").rows() == [
        ("fd00:10::6", "64:ff9b::198.51.100.7")
    ]
    # the IPv4 host allowed in any spelling of its NAT64 address
    again = natlens.check_allowlist(
        _nat64(flows), ["64:ff9b::e01:203", "::ffff:20.38.1.2", "52.1.2.3/32", "198.51.100.0/24"]
    )
    assert again.height == 0


def test_ipv4_filters_find_nat64_flows(flows: pl.DataFrame) -> None:
    by_cidr = natlens.find_flows(flows, destinations="14.1.0.0/16")
    assert by_cidr.get_column("destination_ip").to_list() == [
        "64:ff9b::14.1.2.3",
        "64:ff9b::14.1.2.3",
        "64:ff9b::14.1.2.3",
        "14.1.2.3",
    ]
    # a hostname resolving to the IPv4 host finds its NAT64 flows too
    by_host = natlens.find_flows(
        flows, destinations="api.partner.example", resolver={"api.partner.example": ["52.1.2.3"]}
    )
    assert by_host.get_column("source_ip").to_list() == ["fd00:10::6"]
    # and the NAT64 spelling of a host finds its native IPv4 flows
    by_nat64 = natlens.find_flows(flows, destinations="64:ff9b::e01:203", sources="10.0.0.0/8")
    assert by_nat64.get_column("destination_ip").to_list() == ["14.1.2.3"]
    # while the whole NAT64 range is the translated flows only
    translated = natlens.find_flows(flows, destinations="64:ff9b::/96")
    assert translated.height == 6


def test_dashboard_filter_matches_nat64_by_cidr_and_by_tag(flows: pl.DataFrame) -> None:
    by_cidr = FilterState(destinations=("20.38.0.0/16",)).apply(flows)
    assert by_cidr.get_column("destination_ip").to_list() == ["64:ff9b::20.38.1.2"]
    labelled = natlens.label_destinations(flows, service_tags=SERVICE_TAGS)
    labels = {
        ip: tag
        for ip, tag in labelled.select("destination_ip", "service_tag").unique().iter_rows()
        if tag is not None
    }
    by_tag = FilterState(destinations=("Storage.WestEurope",)).apply(flows, labels=labels)
    assert by_tag.get_column("destination_ip").to_list() == ["64:ff9b::20.38.1.2"]


def test_diagnose_finds_the_nat64_connection_of_an_ipv4_host(flows: pl.DataFrame) -> None:
    diagnosis = natlens.diagnose(flows, sources="fd00:10::6", destinations="198.51.100.7")
    assert diagnosis.step("connection").status == "ok"
    assert diagnosis.verdict == "healthy"
    missing = natlens.diagnose(flows, sources="fd00:10::6", destinations="198.51.100.8")
    assert missing.step("connection").status != "ok"
    assert missing.verdict != "healthy"


def test_flow_map_labels_nat64_destinations_by_service_tag(flows: pl.DataFrame) -> None:
    pytest.importorskip("altair")
    from natlens.charts import chart_flow_map

    labelled = natlens.label_destinations(flows, service_tags=SERVICE_TAGS)
    labels = {
        ip: tag
        for ip, tag in labelled.select("destination_ip", "service_tag").unique().iter_rows()
        if tag is not None
    }
    spec = chart_flow_map(flows, labels=labels, n=10).to_dict()
    texts = json.dumps(spec)
    assert "Storage.WestEurope (64:ff9b::20.38.1.2)" in texts
    assert "64:ff9b::14.1.2.3" in texts


# -- dual stack ----------------------------------------------------------------------------


def test_nat_ip_imbalance_compares_each_family_apart() -> None:
    # 6 and 2 records on the IPv4 IPs, 1 on the IPv6 IP: mixing the families would read
    # 2.0 / 0.67 / 0.33 (mean 3); within each family it is 1.5 / 0.5 and 1.0
    flows = frame(
        *[flow(at(m), "fd00::4", "64:ff9b::14.1.2.3", nat="20.1.1.1") for m in range(6)],
        *[flow(at(m), nat="20.1.1.2") for m in range(2)],
        flow(at(0), "fd00::4", "2001:db8::1", "2603:1020::28"),
    )
    usage = natlens.nat_ip_usage(flows)
    assert usage.select("nat_gateway_ip", "ip_version", "share", "imbalance").rows() == [
        ("20.1.1.1", 4, 0.75, 1.5),
        ("20.1.1.2", 4, 0.25, 0.5),
        ("2603:1020::28", 6, 1.0, 1.0),
    ]
    text = natlens.triage(natlens.summarize(flows))
    table = text.split("\n  NAT public IPs (share: ", 1)[1].splitlines()
    assert "of the same family" in table[0]
    rows = [line.split() for line in table[2:5]]
    assert [[r[1], r[2], r[-1]] for r in rows] == [
        ["20.1.1.1", "IPv4", "75.0%"],
        ["20.1.1.2", "IPv4", "25.0%"],
        ["2603:1020::28", "IPv6", "100.0%"],
    ]


def test_nat_ip_usage_of_the_blob_puts_nat64_on_the_ipv4_ip(flows: pl.DataFrame) -> None:
    usage = natlens.nat_ip_usage(flows)
    assert usage.select("nat_gateway_ip", "ip_version", "records", "imbalance").rows() == [
        (NAT_V4, 4, 8, 1.0),
        (NAT_V6, 6, 1, 1.0),
    ]
