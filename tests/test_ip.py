"""Vectorised IP/CIDR arithmetic (natlens._ip) against Python's ipaddress."""

from __future__ import annotations

import doctest
import importlib
import ipaddress
import re

import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from natlens._ip import longest_prefix_match, parse_prefixes, resolve_targets, with_ip_fields

MASK64 = (1 << 64) - 1


def expected(text: str) -> tuple[int | None, int | None, int | None]:
    try:
        address = ipaddress.ip_address(text.strip())
    except ValueError:
        return (None, None, None)
    value = int(address)
    return (address.version, value >> 64, value & MASK64)


def parsed(values: list[str | None]) -> list[tuple[int | None, int | None, int | None]]:
    frame = with_ip_fields(pl.DataFrame({"ip": values}, schema={"ip": pl.String}), "ip")
    return frame.select("version", "hi", "lo").rows()


SPELLINGS = [
    "1.2.3.4",
    "255.255.255.255",
    "0.0.0.0",
    " 10.0.0.4 ",
    "2001:db8::1",
    "2001:DB8:0:0:0:0:0:1",
    "::",
    "::1",
    "1::",
    "::ffff:1.2.3.4",
    "64:ff9b::192.0.2.33",
    "1:2:3:4:5:6:7:8",
    "1:2:3:4:5:6:7::",
    "fe80::1:2:3:4:5",
    # not addresses
    "",
    "bad",
    "01.2.3.4",
    "256.1.1.1",
    "1.2.3",
    "1.2.3.4.5",
    "1:2:3:4:5:6:7:8:9",
    "1::2::3",
    ":1::",
    "1:2:3:4:5:6:7:8::",
    "12345::",
    "g::1",
    "::1.2.3.256",
]


@pytest.mark.parametrize("text", SPELLINGS)
def test_parse_matches_ipaddress(text: str) -> None:
    assert parsed([text]) == [expected(text)]


def test_null_stays_null() -> None:
    assert parsed([None]) == [(None, None, None)]


@settings(max_examples=200, deadline=None)
@given(st.lists(st.one_of(st.ip_addresses(v=4), st.ip_addresses(v=6)), min_size=1, max_size=30))
def test_parse_random_addresses(
    addresses: list[ipaddress.IPv4Address | ipaddress.IPv6Address],
) -> None:
    texts: list[str | None] = [str(a) for a in addresses]
    exploded = [a.exploded.upper() for a in addresses]
    assert parsed(texts) == [expected(str(a)) for a in addresses]
    assert parsed(list(exploded)) == [expected(str(a)) for a in addresses]


def test_parse_prefixes_clears_host_bits_and_keeps_order() -> None:
    table = parse_prefixes(["10.1.2.3/16", "2001:db8::1/32", "192.0.2.7", "::/0"], argument="x")
    assert table.get_column("prefix").to_list() == [
        "10.1.2.3/16",
        "2001:db8::1/32",
        "192.0.2.7",
        "::/0",
    ]
    assert table.get_column("length").to_list() == [16, 32, 32, 0]
    nets = [
        (n.network_address, n.prefixlen)
        for n in map(ipaddress.ip_network, ["10.1.0.0/16", "2001:db8::/32"])
    ]
    first, second = table.rows()[:2]
    assert (first[3] << 64 | first[4]) == int(nets[0][0])
    assert (second[3] << 64 | second[4]) == int(nets[1][0])


@pytest.mark.parametrize(
    "bad",
    ["10.0.0.0/33", "2001:db8::/129", "10.0.0.0/8/8", "10.0.0.300", "10.0.0.0/x", "::g/64", "/8"],
)
def test_parse_prefixes_rejects_with_argument_name(bad: str) -> None:
    with pytest.raises(ValueError, match=re.escape(f"allowed: {bad!r} is not a valid")):
        parse_prefixes(["10.0.0.0/8", bad], argument="allowed")


def test_longest_prefix_wins_over_overlaps() -> None:
    prefixes = parse_prefixes(
        ["20.0.0.0/8", "20.38.0.0/16", "20.38.1.0/24", "2603:1000::/24", "2603:1000:4::/48"],
        argument="tags",
    ).with_columns(tag=pl.Series(["AzureCloud", "Storage", "Storage.West", "AzureCloud", "Sql"]))
    addresses = pl.LazyFrame(
        {
            "ip": [
                "20.38.1.9",
                "20.38.2.1",
                "20.1.1.1",
                "8.8.8.8",
                "2603:1000:4::5",
                "2603:1000:5::1",
                "nope",
            ]
        }
    )
    result = longest_prefix_match(addresses, prefixes, column="ip").collect()
    labels = dict(zip(result.get_column("ip"), result.get_column("tag"), strict=True))
    assert labels == {
        "20.38.1.9": "Storage.West",
        "20.38.2.1": "Storage",
        "20.1.1.1": "AzureCloud",
        "2603:1000:4::5": "Sql",
        "2603:1000:5::1": "AzureCloud",
    }


@settings(max_examples=60, deadline=None)
@given(
    st.lists(st.ip_addresses(v=4), min_size=1, max_size=20),
    st.lists(st.tuples(st.ip_addresses(v=4), st.integers(0, 32)), min_size=1, max_size=15),
)
def test_longest_prefix_match_agrees_with_brute_force(
    addresses: list[ipaddress.IPv4Address], networks: list[tuple[ipaddress.IPv4Address, int]]
) -> None:
    cidrs = [str(ipaddress.ip_network(f"{a}/{n}", strict=False)) for a, n in networks]
    prefixes = parse_prefixes(cidrs, argument="x").with_columns(
        rank=pl.int_range(pl.len(), dtype=pl.Int64)
    )
    result = longest_prefix_match(
        pl.LazyFrame({"ip": [str(a) for a in addresses]}),
        prefixes,
        column="ip",
        tie_break=("rank",),
    ).collect()
    got = dict(zip(result.get_column("ip"), result.get_column("length"), strict=True))
    for address in addresses:
        lengths = [
            ipaddress.ip_network(c).prefixlen for c in cidrs if address in ipaddress.ip_network(c)
        ]
        assert got.get(str(address)) == (max(lengths) if lengths else None)


@settings(max_examples=60, deadline=None)
@given(
    st.lists(st.integers(0, 2**128 - 1), min_size=1, max_size=15),
    st.lists(st.tuples(st.integers(0, 2**128 - 1), st.integers(0, 128)), min_size=1, max_size=15),
)
def test_longest_prefix_match_ipv6_agrees_with_brute_force(
    values: list[int], networks: list[tuple[int, int]]
) -> None:
    # addresses drawn near the networks too, so that deep prefixes do match
    nets = [ipaddress.IPv6Network((value, length), strict=False) for value, length in networks]
    addresses = [ipaddress.IPv6Address(v) for v in values]
    addresses += [
        n.network_address + (v % n.num_addresses) for n, v in zip(nets, values, strict=False)
    ]
    prefixes = parse_prefixes([str(n) for n in nets], argument="x")
    result = longest_prefix_match(
        pl.LazyFrame({"ip": [str(a) for a in addresses]}), prefixes, column="ip"
    ).collect()
    got = dict(zip(result.get_column("ip"), result.get_column("length"), strict=True))
    for address in addresses:
        lengths = [n.prefixlen for n in nets if address in n]
        assert got.get(str(address)) == (max(lengths) if lengths else None)


def test_resolve_targets_mixes_ips_cidrs_and_hostnames() -> None:
    table = resolve_targets(
        ["10.0.0.0/24", "GitHub.com", "2001:db8::1"],
        argument="destination",
        resolver={"github.com": ["140.82.121.4", "140.82.121.3"]},
    )
    assert table.get_column("prefix").to_list() == [
        "10.0.0.0/24",
        "140.82.121.4",
        "140.82.121.3",
        "2001:db8::1",
    ]
    by_function = resolve_targets("api.example", argument="d", resolver=lambda host: ["192.0.2.1"])
    assert by_function.get_column("prefix").to_list() == ["192.0.2.1"]


def test_resolve_targets_errors_are_clear() -> None:
    with pytest.raises(
        ValueError, match=re.escape("destination: 'github.com' is a hostname; pass resolver=")
    ):
        resolve_targets("github.com", argument="destination")
    with pytest.raises(ValueError, match="not in the resolver mapping"):
        resolve_targets("gitlab.com", argument="destination", resolver={"github.com": ["1.1.1.1"]})
    with pytest.raises(ValueError, match=re.escape("source: '10.0.0.999' is not a valid IP")):
        resolve_targets("10.0.0.999", argument="source")
    with pytest.raises(ValueError, match=re.escape("could not resolve 'nowhere.example'")):
        resolve_targets("nowhere.example", argument="d", resolver=lambda host: {}[host])
    with pytest.raises(ValueError, match="neither an IP, a CIDR nor a hostname"):
        resolve_targets("not a host!", argument="source", resolver={})


@pytest.mark.parametrize(
    "module", ["_ip", "_usage", "_troubleshoot", "_billing", "_security", "_enrich"]
)
def test_docstring_examples_run(module: str) -> None:
    loaded = importlib.import_module(f"natlens.{module}")
    result = doctest.testmod(loaded, optionflags=doctest.ELLIPSIS)
    assert result.attempted > 0
    assert result.failed == 0
