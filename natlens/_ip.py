"""Vectorised IP and CIDR arithmetic on polars columns.

An address becomes three integer columns: ``version`` (4 or 6), ``hi`` and ``lo``
(the upper and lower 64 bits; an IPv4 address lives in ``lo``). Parsing is a polars
expression, so millions of addresses are converted without a Python loop per row.

Prefix matching (:func:`longest_prefix_match`) masks each address once per prefix length
present in the prefix table and hash-joins on the masked network, then keeps the longest
match: overlapping prefixes (AzureCloud containing Storage.WestEurope) resolve to the
most specific one.

NAT64 (RFC 6052 well-known prefix ``64:ff9b::/96``) and IPv4-mapped (``::ffff:0:0/96``)
addresses stand for the IPv4 host in their last 32 bits (:func:`embedded_ipv4`): they
match the IPv4 prefixes containing that host as well as the IPv6 prefixes containing
them as written, and an IPv6 prefix longer than /96 inside those ranges names the same
IPv4 hosts as its IPv4 counterpart.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from typing import TypeVar, cast

import polars as pl

from natlens._typing import Resolver, Targets

__all__ = [
    "IP_FIELDS",
    "embedded_ipv4",
    "is_address_like",
    "longest_prefix_match",
    "parse_prefixes",
    "resolve_targets",
    "with_ip_fields",
]

IP_FIELDS = ("version", "hi", "lo")


_U64 = pl.UInt64()
_FULL64 = (1 << 64) - 1
_V4 = re.compile(r"^\d{1,3}(?:\.\d{1,3}){3}$")
_V4_TAIL = r"(\d{1,3}\.\d{1,3}\.\d{1,3}\.\d{1,3})$"
_HEX_GROUP = r"^[0-9a-f]{1,4}$"
_GROUP_WEIGHT = {i: 1 << (16 * (3 - i % 4)) for i in range(8)}
_LOW32 = (1 << 32) - 1
# (hi, upper half of lo) of the /96 ranges whose last 32 bits are an IPv4 address:
# the NAT64 well-known prefix 64:ff9b::/96 (RFC 6052) and IPv4-mapped ::ffff:0:0/96.
_EMBEDDING_PREFIXES = ((0x0064_FF9B_0000_0000, 0), (0, 0xFFFF))
_EMBEDDED_RANK = 96
"""An IPv4 prefix of length n, matched through an embedded address, ranks as /96+n."""


def embedded_ipv4(
    version: pl.Expr | str = "version", hi: pl.Expr | str = "hi", lo: pl.Expr | str = "lo"
) -> pl.Expr:
    """The IPv4 host an IPv6 address stands for, as an integer; null for any other address.

    NAT64 addresses of the well-known prefix ``64:ff9b::/96`` (RFC 6052: a StandardV2
    NAT gateway writes ``64:ff9b::14.1.2.3`` for the IPv4 host 14.1.2.3) and
    IPv4-mapped addresses (``::ffff:0:0/96``) carry it in their last 32 bits.
    Works on the columns :func:`with_ip_fields` adds.

    Examples
    --------
    >>> import polars as pl
    >>> frame = pl.DataFrame({"ip": ["64:ff9b::e01:203", "::ffff:10.0.0.1", "2001:db8::1"]})
    >>> with_ip_fields(frame, "ip").select(v4=embedded_ipv4()).to_series().to_list()
    [234947075, 167772161, None]
    """
    version, hi, lo = (pl.col(c) if isinstance(c, str) else c for c in (version, hi, lo))
    upper = lo // (1 << 32)
    embedded = pl.lit(False)
    for prefix_hi, prefix_upper in _EMBEDDING_PREFIXES:
        embedded = embedded | ((hi == prefix_hi) & (upper == prefix_upper))
    return pl.when((version == 6) & embedded).then(lo & pl.lit(_LOW32, _U64))


def _v4_value(octets: pl.Expr, text: pl.Expr) -> tuple[pl.Expr, pl.Expr]:
    """Integer value of split dotted-quad text and whether the text is a valid IPv4 address."""
    valid = (
        text.str.contains(r"^\d{1,3}(?:\.\d{1,3}){3}$")
        & (octets.list.max() <= 255)
        # leading zeros are ambiguous (octal to some tools): Python's ipaddress refuses them
        & ~text.str.contains(r"(?:^|\.)0\d")
    )
    value = (
        octets.list.get(0, null_on_oob=True) * (1 << 24)
        + octets.list.get(1, null_on_oob=True) * (1 << 16)
        + octets.list.get(2, null_on_oob=True) * (1 << 8)
        + octets.list.get(3, null_on_oob=True)
    )
    return value, valid


def _octets(text: pl.Expr) -> pl.Expr:
    return text.str.split(".").list.eval(pl.element().str.to_integer(strict=False).cast(_U64))


def _groups(text: pl.Expr) -> pl.Expr:
    return text.str.split(":").list.eval(pl.element().filter(pl.element() != ""))


def _group_sum(groups: pl.Expr, *, tail: bool, upper: bool) -> pl.Expr:
    """Sum of 16-bit groups weighted by their position among the 8 groups of an IPv6 address."""
    index = pl.int_range(pl.len(), dtype=pl.Int64)
    position = index + (8 - pl.len()).cast(pl.Int64) if tail else index
    weight = position.replace_strict(_GROUP_WEIGHT, return_dtype=_U64, default=0)
    in_half = position < 4 if upper else position >= 4
    value = pl.element().str.to_integer(base=16, strict=False).cast(_U64)
    return groups.list.eval(
        pl.when(in_half).then(value * weight).otherwise(0).cast(_U64)
    ).list.sum()


Frame = TypeVar("Frame", pl.DataFrame, pl.LazyFrame)


def with_ip_fields(frame: Frame, column: str) -> Frame:
    """Add ``version`` (4, 6; null where the text is no IP), ``hi`` and ``lo`` for ``column``.

    Accepts IPv4 dotted quads and every IPv6 spelling (compressed, upper case, embedded
    IPv4 tail); surrounding spaces are ignored. Pure polars expressions, no Python per row.

    Examples
    --------
    >>> import polars as pl
    >>> frame = pl.DataFrame({"ip": ["10.0.0.1", "2001:db8::1", "nope"]})
    >>> with_ip_fields(frame, "ip").drop("ip").rows()
    [(4, 0, 167772161), (6, 2306139568115548160, 1), (None, None, None)]
    """
    text, tail4, v6 = pl.col("_t"), pl.col("_tail4"), pl.col("_v6")
    halves, head, tail = pl.col("_halves"), pl.col("_head"), pl.col("_tail")
    v4_value, v4_valid = _v4_value(pl.col("_oct"), text)
    tail_value, tail_valid = _v4_value(pl.col("_toct"), tail4)
    n_groups = head.list.len() + tail.list.len()
    v6_valid = (
        text.str.contains(":")
        & (halves.list.len() <= 2)
        & pl.when(halves.list.len() == 2).then(n_groups <= 7).otherwise(n_groups == 8)
        & ~v6.str.contains(r"(?:^:[^:])|(?:[^:]:$)|:::")
        & head.list.eval(pl.element().str.contains(_HEX_GROUP)).list.all()
        & tail.list.eval(pl.element().str.contains(_HEX_GROUP)).list.all()
        & (tail4.is_null() | tail_valid.fill_null(False))
    )
    is_v4, is_v6 = pl.col("_is4"), pl.col("_is6")
    hi = _group_sum(head, tail=False, upper=True) + _group_sum(tail, tail=True, upper=True)
    lo = (
        _group_sum(head, tail=False, upper=False)
        + _group_sum(tail, tail=True, upper=False)
        + tail_value.fill_null(0)
    )
    temporary = [
        "_t",
        "_tail4",
        "_v6",
        "_oct",
        "_toct",
        "_halves",
        "_head",
        "_tail",
        "_is4",
        "_is6",
    ]
    return (
        frame.with_columns(_t=pl.col(column).str.strip_chars().str.to_lowercase())
        .with_columns(_tail4=text.str.extract(_V4_TAIL))
        .with_columns(
            _v6=pl.when(tail4.is_not_null())
            .then(text.str.replace(_V4_TAIL, "0:0"))
            .otherwise(text),
            _oct=_octets(text),
            _toct=_octets(tail4),
        )
        .with_columns(_halves=v6.str.split("::"))
        .with_columns(
            _head=_groups(halves.list.first()),
            _tail=_groups(
                pl.when(halves.list.len() == 2)
                .then(halves.list.get(1, null_on_oob=True))
                .otherwise(pl.lit(""))
            ),
        )
        .with_columns(_is4=v4_valid.fill_null(False))
        .with_columns(_is6=~is_v4 & v6_valid.fill_null(False))
        .with_columns(
            version=pl.when(is_v4).then(pl.lit(4, pl.UInt8)).when(is_v6).then(pl.lit(6, pl.UInt8)),
            hi=pl.when(is_v4).then(pl.lit(0, _U64)).when(is_v6).then(hi),
            lo=pl.when(is_v4).then(v4_value).when(is_v6).then(lo),
        )
        .drop(temporary)
    )


def is_address_like(text: str) -> bool:
    """Whether ``text`` is meant as an IP or CIDR (rather than a hostname or tag name)."""
    stripped = text.strip()
    return ":" in stripped or "/" in stripped or bool(re.fullmatch(r"[\d.]+", stripped))


def parse_prefixes(values: Iterable[str], *, argument: str) -> pl.DataFrame:
    """Parse IPs and CIDRs into ``prefix, version, length, net_hi, net_lo`` (vectorised).

    A bare address is a full-length prefix. Host bits set below the prefix length are
    cleared, as ``ipaddress.ip_network(strict=False)`` does.

    Raises
    ------
    ValueError
        Naming ``argument`` and the first value that is no IP or CIDR.

    Examples
    --------
    >>> parse_prefixes(["10.0.0.0/8", "2001:db8::/32"], argument="allowed").select(
    ...     "version", "length"
    ... ).rows()
    [(4, 8), (6, 32)]
    """
    raw = pl.Series("prefix", list(values), dtype=pl.String)
    frame = (
        raw.to_frame()
        .with_columns(
            address=pl.col("prefix").str.split("/").list.first(),
            length_text=pl.col("prefix")
            .str.split("/")
            .list.get(1, null_on_oob=True)
            .str.strip_chars(),
            n_slashes=pl.col("prefix").str.count_matches("/"),
        )
        .pipe(with_ip_fields, "address")
        .with_columns(
            length=pl.when(pl.col("length_text").is_null())
            .then(pl.when(pl.col("version") == 4).then(32).otherwise(128))
            .otherwise(pl.col("length_text").str.to_integer(strict=False))
            .cast(pl.Int16)
        )
    )
    max_length = pl.when(pl.col("version") == 4).then(32).otherwise(128)
    bad = frame.filter(
        pl.col("prefix").is_null()
        | pl.col("version").is_null()
        | (pl.col("n_slashes") > 1)
        | pl.col("length").is_null()
        | ~pl.col("length_text").fill_null("0").str.contains(r"^\d{1,3}$")
        | (pl.col("length") < 0)
        | (pl.col("length") > max_length)
    )
    if bad.height:
        value = bad.item(0, "prefix")
        raise ValueError(f"{argument}: {value!r} is not a valid IP address or CIDR prefix")
    v4 = pl.col("version") == 4
    length = pl.col("length")
    mask_hi = (
        pl.when(v4)
        .then(pl.lit(_FULL64, _U64))
        .otherwise(length.replace_strict(_HI6, return_dtype=_U64))
    )
    mask_lo = (
        pl.when(v4)
        .then(length.replace_strict(_LO4, default=0, return_dtype=_U64))
        .otherwise(length.replace_strict(_LO6, return_dtype=_U64))
    )
    return frame.select(
        "prefix", "version", "length", net_hi=pl.col("hi") & mask_hi, net_lo=pl.col("lo") & mask_lo
    )


def _masks(version: int, length: int) -> tuple[int, int]:
    """The (hi, lo) masks that keep the first ``length`` bits of an address."""
    if version == 4:
        return _FULL64, ((1 << 32) - (1 << (32 - length))) if length else 0
    if length <= 64:
        return (_FULL64 ^ ((1 << (64 - length)) - 1)) & _FULL64, 0
    return _FULL64, (_FULL64 ^ ((1 << (128 - length)) - 1)) & _FULL64


_HI6 = {n: _masks(6, n)[0] for n in range(129)}
_LO6 = {n: _masks(6, n)[1] for n in range(129)}
_LO4 = {n: _masks(4, n)[1] for n in range(33)}


def longest_prefix_match(
    addresses: pl.LazyFrame,
    prefixes: pl.DataFrame,
    *,
    column: str,
    tie_break: Sequence[str] = (),
) -> pl.LazyFrame:
    """The most specific row of ``prefixes`` containing each distinct address of ``column``.

    ``prefixes`` comes from :func:`parse_prefixes` plus any payload columns; when several
    prefixes of the same length match, the first by ``tie_break`` (ascending) wins.
    Returns one row per matched address: ``column`` and the prefix columns.

    A NAT64 or IPv4-mapped address (see :func:`embedded_ipv4`) is also matched by its
    IPv4 host: an IPv4 prefix of length n containing the host counts as the IPv6
    prefix of length 96 + n it corresponds to, so it beats ``64:ff9b::/96`` and loses
    to nothing shorter. An IPv6 prefix longer than /96 inside those ranges
    (``64:ff9b::14.1.2.0/120``) also matches the IPv4 hosts it names; ``64:ff9b::/96``
    itself matches the NAT64 addresses only, not every IPv4 host.

    Examples
    --------
    >>> import polars as pl
    >>> prefixes = parse_prefixes(["14.1.0.0/16", "64:ff9b::/96"], argument="x")
    >>> flows = pl.LazyFrame({"ip": ["64:ff9b::14.1.2.3", "64:ff9b::8.8.8.8", "14.1.9.9"]})
    >>> matched = longest_prefix_match(flows, prefixes, column="ip").collect()
    >>> dict(sorted(matched.select("ip", "prefix").rows()))  # doctest: +NORMALIZE_WHITESPACE
    {'14.1.9.9': '14.1.0.0/16', '64:ff9b::14.1.2.3': '14.1.0.0/16',
     '64:ff9b::8.8.8.8': '64:ff9b::/96'}
    """
    distinct = (
        addresses.select(pl.col(column).unique())
        .drop_nulls()
        .pipe(with_ip_fields, column)
        .drop_nulls("version")
        .with_columns(_v4=embedded_ipv4())
        .collect()
    )
    payload = [c for c in prefixes.columns if c not in (column, "version")]
    keys = ["_kv", "_klen", "_khi", "_klo"]
    native = prefixes.with_columns(
        _kv=pl.col("version"), _klen=pl.col("length"), _khi=pl.col("net_hi"), _klo=pl.col("net_lo")
    )
    # An IPv6 prefix deeper than /96 in a NAT64 or mapped range is also an IPv4 prefix.
    as_v4 = native.filter(
        embedded_ipv4("version", "net_hi", "net_lo").is_not_null() & (pl.col("length") > 96)
    ).with_columns(
        _kv=pl.lit(4, native.schema["version"]),
        _klen=(pl.col("length") - _EMBEDDED_RANK).cast(native.schema["length"]),
        _khi=pl.lit(0, _U64),
        _klo=pl.col("net_lo") & pl.lit(_LOW32, _U64),
    )
    # One row per network: among equal prefixes the tie-break winner, so each join is 1:1.
    best = (
        pl.concat([native, as_v4], how="vertical")
        .sort([*keys, *tie_break])
        .unique(keys, keep="first", maintain_order=True)
    )
    parts: list[pl.DataFrame] = []
    for (version, length), group in sorted(
        best.partition_by(["_kv", "_klen"], as_dict=True).items()
    ):
        mask_hi, mask_lo = _masks(int(version), int(length))
        networks = group.drop("version", "_kv", "_klen")
        keyed = distinct.filter(pl.col("version") == version).select(
            column,
            _khi=pl.col("hi") & pl.lit(mask_hi, _U64),
            _klo=pl.col("lo") & pl.lit(mask_lo, _U64),
            _rank=pl.lit(int(length), pl.Int32),
            _kv=pl.lit(int(version), pl.Int32),
        )
        if version == 4:
            embedded = distinct.filter(pl.col("_v4").is_not_null()).select(
                column,
                _khi=pl.lit(0, _U64),
                _klo=pl.col("_v4") & pl.lit(mask_lo, _U64),
                _rank=pl.lit(int(length) + _EMBEDDED_RANK, pl.Int32),
                _kv=pl.lit(4, pl.Int32),
            )
            keyed = pl.concat([keyed, embedded], how="vertical")
        parts.append(keyed.join(networks, on=["_khi", "_klo"], how="inner"))
    if not parts:
        empty = prefixes.clear().with_columns(pl.lit(None, pl.String).alias(column))
        return empty.lazy().select(column, *payload)
    matched = pl.concat(parts, how="vertical")
    order = [column, "_rank", *tie_break, "_kv"]
    return (
        matched.lazy()
        .sort(order, descending=[False, True, *[False] * len(tie_break), False])
        .group_by(column, maintain_order=True)
        .first()
        .select(column, *payload)
    )


def resolve_targets(
    targets: Targets,
    *,
    argument: str,
    resolver: Resolver | None = None,
) -> pl.DataFrame:
    """Turn IPs, CIDRs and hostnames into a prefix table (see :func:`parse_prefixes`).

    Hostnames are looked up through ``resolver``: a mapping ``host -> [ips]`` or a
    callable ``host -> iterable of ips``. Nothing touches the network by itself.

    Raises
    ------
    ValueError
        For an invalid IP or CIDR, or a hostname the resolver cannot answer.
    """
    items = [targets] if isinstance(targets, str) else list(targets)
    values: list[str] = []
    for item in items:
        if not isinstance(item, str):
            raise ValueError(f"{argument}: expected an IP, CIDR or hostname, got {item!r}")
        if is_address_like(item):
            values.append(item.strip())
        else:
            values.extend(resolve_host(item, resolver=resolver, argument=argument))
    return parse_prefixes(values, argument=argument)


def resolve_host(host: str, *, resolver: Resolver | None, argument: str) -> list[str]:
    """The addresses of ``host`` according to ``resolver`` (mapping or callable)."""
    name = host.strip().lower().rstrip(".")
    if not re.fullmatch(r"[a-z0-9_*]([a-z0-9_.*-]*[a-z0-9_])?", name):
        raise ValueError(f"{argument}: {host!r} is neither an IP, a CIDR nor a hostname")
    if resolver is None:
        raise ValueError(
            f"{argument}: {host!r} is a hostname; pass resolver= (a mapping host -> IPs, "
            "e.g. natlens.read_hostnames(path), or a function) to look it up"
        )
    found: Iterable[str] | str
    if isinstance(resolver, Mapping):
        lookup = {str(k).strip().lower().rstrip("."): v for k, v in resolver.items()}
        if name not in lookup:
            raise ValueError(f"{argument}: hostname {host!r} is not in the resolver mapping")
        found = lookup[name]
    elif callable(resolver):
        try:
            found = resolver(host)
        except (OSError, LookupError) as error:  # socket.gaierror, KeyError of a dict lookup
            raise ValueError(f"{argument}: could not resolve {host!r} ({error!r})") from None
    else:
        raise ValueError(
            f"resolver: expected a mapping or a callable, got {type(resolver).__name__}"
        )
    if isinstance(found, str):
        found = [found]
    addresses = [str(a).strip() for a in cast("Iterable[object]", found)]
    if not addresses:
        raise ValueError(f"{argument}: hostname {host!r} resolved to no address")
    return addresses
