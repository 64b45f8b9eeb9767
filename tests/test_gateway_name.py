"""One rule for a gateway's name, in Python text and in a polars expression."""

from __future__ import annotations

import polars as pl
import pytest

import natlens.charts as nc
from natlens._fields import gateway_name, gateway_name_expr

# (resource id as a source spells it, the name natlens shows)
IDS = [
    (
        "/SUBSCRIPTIONS/0000/RESOURCEGROUPS/RG-NET/PROVIDERS/MICROSOFT.NETWORK/NATGATEWAYS/NATGW-ENG",
        "natgw-eng",
    ),
    # Log Analytics' _ResourceId is lower case; ARM ids as users paste them are mixed.
    (
        "/subscriptions/0000/resourcegroups/rg-net/providers/microsoft.network/natgateways/ng-1",
        "ng-1",
    ),
    ("/subscriptions/0000/resourceGroups/RG/providers/Microsoft.Network/natGateways/Ng_2", "ng_2"),
    # A trailing slash (an id joined from a path) does not make the name empty.
    ("/S/NATGATEWAYS/GW-1/", "gw-1"),
    ("/S/NATGATEWAYS/GW-1//", "gw-1"),
    ("natgw-bare", "natgw-bare"),
    ("", ""),
]


@pytest.mark.parametrize(("resource_id", "name"), IDS)
def test_text_and_expression_agree(resource_id: str, name: str) -> None:
    assert gateway_name(resource_id) == name
    frame = pl.DataFrame({"resource_id": [resource_id]}, schema={"resource_id": pl.String})
    assert frame.select(gateway_name_expr(pl.col("resource_id"))).item() == name


def test_expression_keeps_a_missing_id_missing() -> None:
    frame = pl.DataFrame(
        {"resource_id": [None, "/S/NATGATEWAYS/GW"]}, schema={"resource_id": pl.String}
    )
    assert frame.select(gateway_name_expr(pl.col("resource_id"))).to_series().to_list() == [
        None,
        "gw",
    ]


def test_charts_name_gateways_by_the_same_rule() -> None:
    # A trailing slash used to name the gateway "" on the NAT IP chart.
    usage = pl.DataFrame(
        {
            "resource_id": ["/S/NATGATEWAYS/NATGW-ENG/"],
            "nat_gateway_ip": ["20.1.1.1"],
            "ip_version": [4],
            "records": [10],
            "share": [1.0],
            "imbalance": [1.0],
            "peak_records_per_minute": [3],
        }
    )
    spec = nc.chart_nat_ip_usage(usage).to_dict()
    bars = spec["datasets"][spec["layer"][0]["data"]["name"]]
    assert [row["gateway"] for row in bars] == ["natgw-eng"]
