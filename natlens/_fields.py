"""The many spellings of the flow-log fields, mapped to FLOW_SCHEMA names."""

from __future__ import annotations

import re
from collections.abc import Iterable

import polars as pl

__all__ = [
    "canonical_field",
    "field_map",
    "gateway_name",
    "gateway_name_expr",
    "resource_id_from_path",
    "spellings",
]

# Lower-case spelling -> canonical column: every documented spelling (``SourceIp`` and
# ``SourceIP``, ``packetsSent``, ``_ResourceId``, ``TimeGenerated``...) and natlens's own
# column names, in any case. Nothing looser: the fast JSON path (DuckDB, keys matched in
# any case) and the careful path must recognise exactly the same fields.
_SPELLINGS: dict[str, str] = {
    "time": "time",
    "timegenerated": "time",
    "sourceip": "source_ip",
    "destinationip": "destination_ip",
    "natgatewayip": "nat_gateway_ip",
    "packetssent": "packets_sent",
    "packetsreceived": "packets_received",
    "packetssentdropped": "packets_sent_dropped",
    "packetsreceiveddropped": "packets_received_dropped",
    "bytessent": "bytes_sent",
    "bytesreceived": "bytes_received",
    "resourceid": "resource_id",
    "_resourceid": "resource_id",
}
_SPELLINGS |= {column: column for column in set(_SPELLINGS.values())}

_SUFFIX = re.compile(r"\s*\[[^\]]*\]\s*$")  # the portal's " [UTC]" header suffix


def spellings() -> frozenset[str]:
    """Every field spelling :func:`canonical_field` knows, in lower case (no suffixes).

    Examples
    --------
    >>> {"sourceip", "timegenerated", "bytes_sent"} <= spellings()
    True
    """
    return frozenset(_SPELLINGS)


def canonical_field(name: str) -> str | None:
    """Return the FLOW_SCHEMA column a source field name means, or None.

    Examples
    --------
    >>> canonical_field("TimeGenerated [UTC]")
    'time'
    >>> canonical_field("_resourceId")
    'resource_id'
    >>> canonical_field("PACKETS_SENT"), canonical_field("packetsSent")
    ('packets_sent', 'packets_sent')
    >>> canonical_field("SourceSystem") is None, canonical_field("Packets Sent") is None
    (True, True)
    """
    return _SPELLINGS.get(_SUFFIX.sub("", name).lower())


def field_map(names: Iterable[str]) -> dict[str, str]:
    """Map canonical column -> the source's spelling, for the names a source really has.

    When a source carries two spellings of one field (``time`` and ``TimeGenerated``
    both), the first one wins, as written by the source.
    """
    found: dict[str, str] = {}
    for name in names:
        column = canonical_field(name)
        if column is not None and column not in found:
            found[column] = name
    return found


_RESOURCE_IN_PATH = re.compile(
    r"resourceId=(/SUBSCRIPTIONS/[^/]+/RESOURCEGROUPS/[^/]+/PROVIDERS/MICROSOFT\.NETWORK/NATGATEWAYS/[^/]+)",
    re.IGNORECASE,
)


def resource_id_from_path(path: str) -> str | None:
    """The NAT gateway's ARM id in a storage-account blob path, upper case, or None.

    Examples
    --------
    >>> resource_id_from_path(
    ...     "resourceId=/SUBSCRIPTIONS/S1/RESOURCEGROUPS/RG/PROVIDERS/"
    ...     "MICROSOFT.NETWORK/NATGATEWAYS/ng-1/y=2026/m=11/d=09/h=10/m=00/PT1H.json"
    ... )
    '/SUBSCRIPTIONS/S1/RESOURCEGROUPS/RG/PROVIDERS/MICROSOFT.NETWORK/NATGATEWAYS/NG-1'
    """
    match = _RESOURCE_IN_PATH.search(path.replace("\\", "/"))
    return match.group(1).upper() if match else None


def gateway_name(resource_id: str) -> str:
    """The gateway's name: the last part of its resource id, in lower case.

    Examples
    --------
    >>> gateway_name("/SUBSCRIPTIONS/S/RESOURCEGROUPS/RG/PROVIDERS/X/NATGATEWAYS/NATGW-ENG")
    'natgw-eng'
    """
    return resource_id.rstrip("/").rsplit("/", 1)[-1].lower()


def gateway_name_expr(resource_id: pl.Expr) -> pl.Expr:
    """:func:`gateway_name` as a polars expression, for a column of resource ids.

    Examples
    --------
    >>> ids = pl.DataFrame({"resource_id": ["/S/NATGATEWAYS/NATGW-ENG/", None]})
    >>> ids.select(gateway_name_expr(pl.col("resource_id"))).to_series().to_list()
    ['natgw-eng', None]
    """
    return resource_id.str.strip_chars_end("/").str.split("/").list.last().str.to_lowercase()


_HOUR_IN_PATH = re.compile(r"/y=(\d{4})/m=(\d{2})/d=(\d{2})/h=(\d{2})/")


def hour_from_path(path: str) -> tuple[int, int, int, int] | None:
    """The (year, month, day, hour) a storage-account blob is filed under, or None.

    ``m=`` stands twice in the layout (month, then minute): the first one is the month.

    Examples
    --------
    >>> hour_from_path("x/y=2026/m=11/d=09/h=10/m=00/PT1H.json")
    (2026, 11, 9, 10)
    """
    match = _HOUR_IN_PATH.search(path.replace("\\", "/"))
    if match is None:
        return None
    year, month, day, hour = (int(g) for g in match.groups())
    return year, month, day, hour
