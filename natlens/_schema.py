"""The canonical flow-log schema, declared once, and the canonical spelling of its values."""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Mapping

import polars as pl

__all__ = [
    "COUNTER_COLUMNS",
    "FLOW_SCHEMA",
    "IP_COLUMNS",
    "METRICS_SCHEMA",
    "PROTOCOL_NAMES",
    "canonical_ip",
    "canonicalize",
    "empty_flows",
]

UTC_TIME = pl.Datetime("us", "UTC")

FLOW_SCHEMA: pl.Schema = pl.Schema(
    {
        "time": UTC_TIME,
        "source_ip": pl.String(),
        "destination_ip": pl.String(),
        "nat_gateway_ip": pl.String(),
        "packets_sent": pl.Int64(),
        "packets_received": pl.Int64(),
        "packets_sent_dropped": pl.Int64(),
        "packets_received_dropped": pl.Int64(),
        "bytes_sent": pl.Int64(),
        "bytes_received": pl.Int64(),
        "resource_id": pl.String(),
    }
)
"""Every natlens loader returns exactly these columns, in this order.

``time`` is the start of the 1-minute window in UTC. Counters are ``Int64`` and keep
the source's nulls. IP text is canonical (see :func:`canonical_ip`) and ``resource_id``
is upper case, so one address or one gateway always groups as one.
"""

IP_COLUMNS: tuple[str, ...] = ("source_ip", "destination_ip", "nat_gateway_ip")
COUNTER_COLUMNS: tuple[str, ...] = (
    "packets_sent",
    "packets_received",
    "packets_sent_dropped",
    "packets_received_dropped",
    "bytes_sent",
    "bytes_received",
)

METRICS_SCHEMA: pl.Schema = pl.Schema(
    {
        "time": UTC_TIME,
        "resource_id": pl.String(),
        "metric": pl.String(),
        "protocol": pl.String(),
        "direction": pl.String(),
        "connection_state": pl.String(),
        "value": pl.Float64(),
    }
)
"""Gateway platform metrics in tidy form: one row per minute, metric and dimension values.

``metric`` is the REST name (``DatapathAvailability``, ``SNATConnectionCount``,
``TotalConnectionCount``, ``PacketDropCount``, ``ByteCount``, ``PacketCount``); the
dimension columns are null where a metric has no such dimension. ``value`` holds the
metric's documented aggregation (Average for DatapathAvailability, Total otherwise).
"""


PROTOCOL_NAMES: dict[str, str] = {"6": "TCP", "17": "UDP", "tcp": "TCP", "udp": "UDP"}
"""The metrics' Protocol dimension, documented with IANA numbers (6 TCP, 17 UDP), as names."""


# IPv6 ranges whose last 32 bits are an IPv4 address, known from the prefix alone, and
# the RFC 5952 text of their first 96 bits: IPv4-mapped (RFC 4291) and the NAT64
# well-known prefix (RFC 6052), the one StandardV2 NAT gateways translate through.
_MIXED_NOTATION: tuple[tuple[ipaddress.IPv6Network, str], ...] = (
    (ipaddress.IPv6Network("::ffff:0:0/96"), "::ffff:"),
    (ipaddress.IPv6Network("64:ff9b::/96"), "64:ff9b::"),
)


def canonical_ip(text: str) -> str:
    """Return the canonical text of an IP address.

    IPv4 as a dotted quad, IPv6 in RFC 5952 form (compressed, lower case). An IPv6
    address that embeds an IPv4 address under a well-known prefix is written in RFC
    5952 section 5 mixed notation, its last 32 bits as a dotted quad: IPv4-mapped
    addresses (``::ffff:0:0/96``) as ``::ffff:10.0.0.1``, and NAT64 addresses of the
    well-known prefix ``64:ff9b::/96`` as ``64:ff9b::14.1.2.3``. Section 5 recommends
    mixed notation exactly when a well-known prefix shows that the low 32 bits are an
    IPv4 address, and RFC 6052 section 2.4 writes its well-known-prefix examples that
    way (``64:ff9b::192.0.2.33``), so a NAT64 destination reads as the IPv4 host it is.
    Other IPv6 text, including the deprecated IPv4-compatible form (which would spell
    ``::1`` as ``::0.0.0.1``) and network-specific NAT64 prefixes (not recognisable
    from the address alone), stays in hexadecimal. Python's own ``str`` of an address
    differs by version here (3.13 writes mapped addresses mixed, 3.11 does not); this
    function does not.

    Raises
    ------
    ValueError
        If ``text`` is not an IP address.

    Examples
    --------
    >>> canonical_ip("2001:DB8:0:0::1")
    '2001:db8::1'
    >>> canonical_ip(" 10.0.0.4 ")
    '10.0.0.4'
    >>> canonical_ip("::ffff:a00:1")
    '::ffff:10.0.0.1'
    >>> canonical_ip("64:FF9B::0E01:0203")
    '64:ff9b::14.1.2.3'
    """
    address = ipaddress.ip_address(text.strip())
    if isinstance(address, ipaddress.IPv6Address) and address.scope_id is None:
        for network, head in _MIXED_NOTATION:
            if address in network:
                return head + str(ipaddress.IPv4Address(int(address) & 0xFFFFFFFF))
    return str(address)


def _canonical_ip_map(values: Iterable[str | None]) -> dict[str, str]:
    """Map each non-canonical spelling among ``values`` to its canonical text."""
    mapping: dict[str, str] = {}
    for value in values:
        if value is None:
            continue
        try:
            canonical = canonical_ip(value)
        except ValueError:
            continue
        if canonical != value:
            mapping[value] = canonical
    return mapping


# IPv4 text that is already canonical: no leading zeros, no spaces. Anything else
# (IPv6, padded, upper-case hex) goes through ``ipaddress`` once per distinct value.
_CANONICAL_V4 = r"^(?:(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)\.){3}(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)$"


def canonicalize(frame: pl.DataFrame, *, trusted_ipv4: bool = False) -> pl.DataFrame:
    """Bring the IP and resource-id text of a FLOW_SCHEMA frame to canonical form.

    Only distinct values that are not already canonical are parsed in Python, so the
    cost follows the number of distinct odd spellings, not the number of rows. With
    ``trusted_ipv4`` only IPv6 text (a ``:``) is looked at: Azure writes IPv4 canonically.
    Columns the frame does not have are left alone.
    """
    replacements: list[pl.Expr] = []
    for column in IP_COLUMNS:
        if column not in frame.columns:
            continue
        series = frame.get_column(column)
        if trusted_ipv4:
            suspect = series.str.contains(":", literal=True)
        else:
            suspect = series.is_not_null() & ~series.str.contains(_CANONICAL_V4)
        odd = series.filter(suspect).unique()
        if odd.len():
            mapping = _canonical_ip_map(odd.to_list())
            if mapping:
                replacements.append(pl.col(column).replace(mapping))
    if "resource_id" in frame.columns:
        rid = frame.get_column("resource_id")
        # A blob holds one gateway: compare with the first value before hashing them all.
        rid = (
            rid.head(1)
            if rid.len() and rid.first() is not None and (rid == rid.first()).all()
            else rid.unique()
        )
        if (rid.is_not_null() & (rid != rid.str.to_uppercase())).any():
            replacements.append(pl.col("resource_id").str.to_uppercase())
    return frame.with_columns(replacements) if replacements else frame


def empty_flows() -> pl.DataFrame:
    """An empty frame with exactly :data:`FLOW_SCHEMA`."""
    return pl.DataFrame(schema=FLOW_SCHEMA)


def conform(frame: pl.DataFrame, *, defaults: Mapping[str, object] | None = None) -> pl.DataFrame:
    """Select and cast ``frame`` to FLOW_SCHEMA, adding missing columns as nulls."""
    defaults = defaults or {}
    exprs = []
    for name, dtype in FLOW_SCHEMA.items():
        if name in frame.columns:
            exprs.append(pl.col(name).cast(dtype, strict=False))
        else:
            exprs.append(pl.lit(defaults.get(name), dtype=dtype).alias(name))
    return frame.select(exprs)
