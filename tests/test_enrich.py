"""Enrichment and side-file readers on hand-made inputs (issue 3)."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import polars as pl
import pytest
from analysis_frames import at, flow, frame

import natlens

TAGS = {
    "changeNumber": 1,
    "cloud": "Public",
    "values": [
        {
            "name": "AzureCloud",
            "id": "AzureCloud",
            "properties": {"region": "", "addressPrefixes": ["20.0.0.0/8", "2603:1000::/24"]},
        },
        {
            "name": "Storage",
            "id": "Storage",
            "properties": {"addressPrefixes": ["20.38.0.0/16", "20.60.0.0/16"]},
        },
        {
            "name": "Storage.WestEurope",
            "id": "Storage.WestEurope",
            "properties": {
                "region": "westeurope",
                "systemService": "AzureStorage",
                "addressPrefixes": ["20.38.0.0/16", "2603:1000:4::/48"],
            },
        },
    ],
}

FLOWS = frame(
    flow(at(0), "10.0.0.4", "20.38.1.2"),
    flow(at(1), "10.0.0.5", "20.60.0.1"),
    flow(at(2), "10.0.0.4", "20.1.1.1"),
    flow(at(3), "10.0.0.9", "2603:1000:4::10"),
    flow(at(4), "10.0.0.9", "2603:1000:9::1"),
    flow(at(5), "10.0.0.4", "140.82.121.4"),
)


def test_read_service_tags(tmp_path: Path) -> None:
    path = tmp_path / "ServiceTags_Public.json"
    path.write_text(json.dumps(TAGS))
    table = natlens.read_service_tags(path)
    assert table.columns == ["tag", "region", "system_service", "prefix"]
    assert table.height == 6
    assert table.filter(pl.col("tag") == "Storage.WestEurope").get_column("region").to_list() == [
        "westeurope",
        "westeurope",
    ]
    assert table.row(0, named=True)["region"] is None  # "" means no region


def test_read_service_tags_errors(tmp_path: Path) -> None:
    broken = tmp_path / "tags.json"
    broken.write_text('{"values": [\n  {"name": "X",}\n]}')
    with pytest.raises(ValueError, match=re.escape(f"{broken}, line 2: not valid JSON")):
        natlens.read_service_tags(broken)
    with pytest.raises(ValueError, match="'values' list"):
        natlens.read_service_tags({"value": []})


def test_label_destinations_most_specific_tag() -> None:
    labelled = natlens.label_destinations(FLOWS, service_tags=TAGS)
    assert labelled.columns == [
        *natlens.FLOW_SCHEMA.names(),
        "service_tag",
        "service_tag_region",
        "service_tag_prefix",
    ]
    assert (
        labelled.get_column("destination_ip").to_list()
        == FLOWS.get_column("destination_ip").to_list()
    )
    assert labelled.get_column("service_tag").to_list() == [
        "Storage.WestEurope",  # same /16 as Storage: the regional tag wins
        "Storage",
        "AzureCloud",
        "Storage.WestEurope",
        "AzureCloud",
        None,
    ]
    assert labelled.get_column("service_tag_prefix").to_list()[3] == "2603:1000:4::/48"


def test_label_destinations_nat64_keeps_the_tag_tie_break() -> None:
    # NAT64 destinations (64:ff9b::/96) carry the IPv4 host in their last 32 bits: they get
    # that host's tag, with the same tie-break as the host itself (regional tag first)
    flows = frame(
        flow(at(0), destination="64:ff9b::20.38.1.2"),
        flow(at(1), destination="64:ff9b::1401:101"),  # 20.1.1.1, as hexadecimal
        flow(at(2), destination="20.38.1.2"),
        flow(at(3), destination="64:ff9b::8.8.8.8"),
    )
    labelled = natlens.label_destinations(flows, service_tags=TAGS)
    assert labelled.select("service_tag", "service_tag_prefix").rows() == [
        ("Storage.WestEurope", "20.38.0.0/16"),
        ("AzureCloud", "20.0.0.0/8"),
        ("Storage.WestEurope", "20.38.0.0/16"),
        (None, None),
    ]


def test_label_destinations_bad_prefix_is_named() -> None:
    bad = {"values": [{"name": "X", "properties": {"addressPrefixes": ["20.0.0.0/40"]}}]}
    with pytest.raises(ValueError, match=re.escape("service_tags: '20.0.0.0/40' is not a valid")):
        natlens.label_destinations(FLOWS, service_tags=bad)


def test_inventory_and_label_sources(tmp_path: Path) -> None:
    path = tmp_path / "inventory.csv"
    path.write_text(
        "ip,vm_name,subnet,team\n10.0.0.4,web-1,frontend,shop\n10.0.0.5 ,batch-1,jobs,data\n"
    )
    inventory = natlens.read_inventory(path)
    assert inventory.rows() == [
        ("10.0.0.4", "web-1", "frontend", "shop"),
        ("10.0.0.5", "batch-1", "jobs", "data"),
    ]
    labelled = natlens.label_sources(FLOWS.lazy(), inventory=path)
    assert labelled.get_column("vm_name").to_list() == [
        "web-1",
        "batch-1",
        "web-1",
        None,
        None,
        "web-1",
    ]
    assert labelled.get_column("team").to_list()[1] == "data"


def test_inventory_errors_name_file_and_line(tmp_path: Path) -> None:
    path = tmp_path / "inventory.csv"
    path.write_text("ip,vm_name\n10.0.0.4,a\n10.0.0.400,b\n")
    with pytest.raises(ValueError, match=re.escape(f"{path}, line 3: '10.0.0.400' is not an IP")):
        natlens.read_inventory(path)
    with pytest.raises(ValueError, match="no 'ip' column"):
        natlens.read_inventory(pl.DataFrame({"address": ["10.0.0.4"]}))


def test_read_allowlist(tmp_path: Path) -> None:
    path = tmp_path / "allowlist.txt"
    path.write_text(
        "# approved egress\n140.82.112.0/20\n\nStorage.WestEurope  # backups\n"
        "2603:1000::/24\ngithub.com\n"
    )
    assert natlens.read_allowlist(path) == [
        "140.82.112.0/20",
        "Storage.WestEurope",
        "2603:1000::/24",
        "github.com",
    ]
    path.write_text("10.0.0.0/8\n10.0.0.0/99\n")
    with pytest.raises(ValueError, match=re.escape(f"{path}, line 2: '10.0.0.0/99'")):
        natlens.read_allowlist(path)


def test_read_hostnames(tmp_path: Path) -> None:
    path = tmp_path / "hostnames.json"
    path.write_text(json.dumps({"GitHub.com.": ["140.82.121.4", "2606:50C0::1"]}))
    assert natlens.read_hostnames(path) == {"github.com": ["140.82.121.4", "2606:50c0::1"]}
    with pytest.raises(ValueError, match="holds a non-IP"):
        natlens.read_hostnames({"a.example": ["not-an-ip"]})
    # DNS64 answers (synthesised NAT64 AAAA records) come back in mixed notation
    synthesised = {"legacy.example": ["64:FF9B::8C52:7904", "::ffff:8c52:7904"]}
    assert natlens.read_hostnames(synthesised) == {
        "legacy.example": ["64:ff9b::140.82.121.4", "::ffff:140.82.121.4"]
    }


# -- the sample week -----------------------------------------------------------------------


def test_sample_labels(
    sample_flows: pl.DataFrame, samples: natlens.SampleData, answer_key: dict[str, Any]
) -> None:
    labelled = natlens.label_destinations(sample_flows, service_tags=samples.service_tags)
    assert labelled.height == sample_flows.height
    spike = next(e for e in answer_key["events"] if e["kind"] == "billing_spike")
    tags = labelled.filter(pl.col("destination_ip").is_in(spike["destination_ips"])).get_column(
        "service_tag"
    )
    assert set(tags) == {spike["destination_label"]}
    with_vm = natlens.label_sources(sample_flows, inventory=samples.inventory)
    assert with_vm.get_column("vm_name").null_count() == 0  # every source is in the inventory
    beacon = next(e for e in answer_key["events"] if e["kind"] == "beacon")
    names = with_vm.filter(pl.col("source_ip") == beacon["vm_ip"]).get_column("vm_name").unique()
    assert names.to_list() == [beacon["vm_name"]]
