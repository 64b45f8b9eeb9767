"""Vectorised IP/CIDR arithmetic (natlens._ip) against Python's ipaddress."""

from __future__ import annotations

import ipaddress
import re

import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from natlens._ip import (
    embedded_ipv4,
    longest_prefix_match,
    parse_prefixes,
    resolve_targets,
    with_ip_fields,
)

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


NAT64_PREFIX = ipaddress.IPv6Network("64:ff9b::/96")


def embedded_by_hand(address: ipaddress.IPv4Address | ipaddress.IPv6Address) -> int | None:
    """The IPv4 host of a NAT64 (RFC 6052 section 2.2, /96: bits 96-127) or mapped address."""
    if address.version == 4:
        return None
    assert isinstance(address, ipaddress.IPv6Address)
    if address.ipv4_mapped is not None:
        return int(address.ipv4_mapped)
    if address in NAT64_PREFIX:
        return int(address) & 0xFFFFFFFF
    return None


def v4_hosts() -> st.SearchStrategy[ipaddress.IPv4Address]:
    # a few fixed hosts as well, so that drawn prefixes and addresses meet often
    fixed = ["14.1.2.3", "14.1.2.200", "10.0.0.1", "0.0.0.0", "255.255.255.255"]
    return st.one_of(
        st.sampled_from([ipaddress.IPv4Address(a) for a in fixed]), st.ip_addresses(v=4)
    )


def spelled(host: ipaddress.IPv4Address, head: str, style: int) -> str:
    """``head`` + host, in mixed, hexadecimal, or upper-case fully written notation."""
    address = ipaddress.IPv6Address(f"{head}{host}")
    return [f"{head}{host}", address.compressed, address.exploded.upper()][style]


@st.composite
def embedding_addresses(draw: st.DrawFn) -> str:
    """Text of an IPv4, NAT64, IPv4-mapped or other IPv6 address, in any spelling."""
    kind = draw(st.sampled_from(["v4", "nat64", "mapped", "v6", "near"]))
    host = draw(v4_hosts())
    style = draw(st.integers(0, 2))
    if kind == "v4":
        return str(host)
    if kind in ("nat64", "mapped"):
        return spelled(host, "64:ff9b::" if kind == "nat64" else "::ffff:", style)
    if kind == "near":  # just outside the ranges: ::fffe:a.b.c.d, 64:ff9b:0:0:0:1:a.b.c.d
        return draw(st.sampled_from([f"::fffe:{host}", f"64:ff9b::1:{host}", f"::{host}"]))
    return str(draw(st.ip_addresses(v=6)))


@settings(max_examples=200, deadline=None)
@given(st.lists(embedding_addresses(), min_size=1, max_size=20))
def test_embedded_ipv4_agrees_with_ipaddress(texts: list[str]) -> None:
    frame = with_ip_fields(pl.DataFrame({"ip": texts}), "ip")
    got = frame.select(embedded_ipv4()).to_series().to_list()
    assert got == [embedded_by_hand(ipaddress.ip_address(t)) for t in texts]


@st.composite
def embedding_networks(draw: st.DrawFn) -> str:
    """IPv4 networks, and IPv6 networks in, around and outside the embedding ranges."""
    host = draw(v4_hosts())
    kind = draw(st.sampled_from(["v4", "nat64", "mapped", "v6"]))
    if kind == "v4":
        return str(ipaddress.ip_network(f"{host}/{draw(st.integers(0, 32))}", strict=False))
    if kind == "v6":
        address = draw(st.ip_addresses(v=6))
        return str(ipaddress.ip_network(f"{address}/{draw(st.integers(0, 128))}", strict=False))
    head = "64:ff9b::" if kind == "nat64" else "::ffff:"
    length = draw(st.integers(0, 128))
    return str(ipaddress.ip_network(f"{head}{host}/{length}", strict=False))


def match_ranks(text: str, network: str) -> list[int]:
    """How specifically ``network`` matches the address ``text`` (empty: not at all).

    As written: the prefix length. By the embedded IPv4 host: an IPv4 prefix of length n
    ranks 96 + n for a NAT64/mapped address; an IPv6 prefix deeper than /96 in an
    embedding range stands for the IPv4 prefix of length - 96.
    """
    address = ipaddress.ip_address(text)
    net = ipaddress.ip_network(network)
    ranks = [net.prefixlen] if net.version == address.version and address in net else []
    host = embedded_by_hand(address) if address.version == 6 else int(address)
    net_host = None
    if net.version == 6 and net.prefixlen > 96:
        net_host = embedded_by_hand(net.network_address)
    as_v4 = (
        net
        if net.version == 4
        else ipaddress.IPv4Network((net_host, net.prefixlen - 96))
        if net_host is not None
        else None
    )
    if host is not None and as_v4 is not None and ipaddress.IPv4Address(host) in as_v4:
        ranks.append(as_v4.prefixlen + (96 if address.version == 6 else 0))
    return ranks


@settings(max_examples=150, deadline=None)
@given(
    st.lists(embedding_addresses(), min_size=1, max_size=15),
    st.lists(embedding_networks(), min_size=1, max_size=12),
)
def test_longest_prefix_match_by_embedded_ipv4_agrees_with_brute_force(
    texts: list[str], networks: list[str]
) -> None:
    prefixes = parse_prefixes(networks, argument="x")
    result = longest_prefix_match(pl.LazyFrame({"ip": texts}), prefixes, column="ip").collect()
    got = dict(zip(result.get_column("ip"), result.get_column("prefix"), strict=True))
    for text in texts:
        best = max((r for n in networks for r in match_ranks(text, n)), default=None)
        if best is None:
            assert text not in got
        else:
            # ties between an IPv4 and an IPv6 spelling of the same network may go either way
            assert best in match_ranks(text, got[text]), (text, got[text], best)


def test_nat64_address_matches_ipv4_prefixes_and_keeps_its_own() -> None:
    prefixes = parse_prefixes(
        ["14.0.0.0/8", "14.1.0.0/16", "64:ff9b::/96", "64:ff9b::14.1.2.0/120", "64::/16"],
        argument="x",
    )
    texts = [
        "64:ff9b::e01:203",  # 14.1.2.3: /120 as written beats 14.1.0.0/16 (rank 112)
        "64:FF9B::0E01:0903",  # 14.1.9.3: 14.1.0.0/16 beats 64:ff9b::/96
        "64:ff9b::8.8.8.8",  # only the NAT64 range itself
        "14.1.2.77",  # native IPv4 host inside 64:ff9b::14.1.2.0/120
        "::ffff:14.9.9.9",  # mapped: 14.0.0.0/8
        "64:ff9b:1::e01:203",  # a network-specific prefix: not NAT64 well-known, plain IPv6
        "8.8.8.8",  # 64:ff9b::/96 does not stand for every IPv4 host
    ]
    result = longest_prefix_match(pl.LazyFrame({"ip": texts}), prefixes, column="ip").collect()
    got = dict(zip(result.get_column("ip"), result.get_column("prefix"), strict=True))
    assert got == {
        "64:ff9b::e01:203": "64:ff9b::14.1.2.0/120",
        "64:FF9B::0E01:0903": "14.1.0.0/16",
        "64:ff9b::8.8.8.8": "64:ff9b::/96",
        "14.1.2.77": "64:ff9b::14.1.2.0/120",
        "::ffff:14.9.9.9": "14.0.0.0/8",
        "64:ff9b:1::e01:203": "64::/16",
    }
