"""Enrichment: name destinations by Azure Service Tag and sources by the user's inventory.

Also the readers of the small side files users bring along: an inventory CSV, an
allowlist, Azure's Service Tags JSON and a hostname map.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import polars as pl

from natlens._ip import is_address_like, longest_prefix_match, parse_prefixes
from natlens._schema import canonical_ip
from natlens._typing import FrameLike, Inventory, PathLike
from natlens._usage import as_lazy

__all__ = [
    "label_destinations",
    "label_sources",
    "read_allowlist",
    "read_hostnames",
    "read_inventory",
    "read_service_tags",
]

SERVICE_TAGS_SCHEMA = pl.Schema(
    {
        "tag": pl.String(),
        "region": pl.String(),
        "system_service": pl.String(),
        "prefix": pl.String(),
    }
)
INVENTORY_COLUMNS = ("ip", "vm_name", "subnet", "team")


def _load_json(path: PathLike) -> Any:
    text = Path(path).read_text(encoding="utf-8")
    try:
        return json.loads(text)
    except json.JSONDecodeError as error:
        raise ValueError(
            f"{os.fspath(path)}, line {error.lineno}: not valid JSON ({error.msg})"
        ) from None


def read_service_tags(source: PathLike | Mapping[str, Any]) -> pl.DataFrame:
    """Read Azure's Service Tags JSON into one row per (tag, prefix).

    Parameters
    ----------
    source
        Path of the weekly ``ServiceTags_Public_*.json`` file (``values[].name``,
        ``values[].properties.addressPrefixes``), or that document already loaded.

    Returns
    -------
    pl.DataFrame
        Columns ``tag, region, system_service, prefix``, in file order.

    Examples
    --------
    >>> doc = {"values": [{"name": "Storage", "properties": {"addressPrefixes": ["20.38.0.0/16"]}}]}
    >>> read_service_tags(doc).rows()
    [('Storage', None, None, '20.38.0.0/16')]
    """
    where = "service_tags" if isinstance(source, Mapping) else os.fspath(source)
    document = source if isinstance(source, Mapping) else _load_json(source)
    values = document.get("values") if isinstance(document, Mapping) else None
    if not isinstance(values, list):
        raise ValueError(f"{where}: expected Azure Service Tags JSON with a 'values' list")
    rows: dict[str, list[str | None]] = {name: [] for name in SERVICE_TAGS_SCHEMA}
    for index, value in enumerate(values):
        properties = value.get("properties") if isinstance(value, Mapping) else None
        name = value.get("name") if isinstance(value, Mapping) else None
        if not isinstance(name, str) or not isinstance(properties, Mapping):
            raise ValueError(f"{where}: values[{index}] has no 'name' and 'properties'")
        prefixes = properties.get("addressPrefixes") or []
        region = properties.get("region") or None
        service = properties.get("systemService") or None
        for prefix in prefixes:
            rows["tag"].append(name)
            rows["region"].append(region)
            rows["system_service"].append(service)
            rows["prefix"].append(prefix)
    return pl.DataFrame(rows, schema=SERVICE_TAGS_SCHEMA)


def _service_tag_table(service_tags: pl.DataFrame | PathLike | Mapping[str, Any]) -> pl.DataFrame:
    tags = (
        service_tags if isinstance(service_tags, pl.DataFrame) else read_service_tags(service_tags)
    )
    missing = {"tag", "prefix"} - set(tags.columns)
    if missing:
        raise ValueError(f"service_tags: missing column(s) {sorted(missing)}")
    if "region" not in tags.columns:
        tags = tags.with_columns(region=pl.lit(None, pl.String))
    parsed = parse_prefixes(tags.get_column("prefix"), argument="service_tags")
    # Same-length prefixes shared by a broad tag (Storage) and a narrow one
    # (Storage.WestEurope): a regional tag, then the tag with fewer prefixes, is the
    # more specific name.
    size = tags.group_by("tag").agg(_tag_size=pl.len())
    regional = pl.col("region").is_not_null() | pl.col("tag").str.contains(".", literal=True)
    return (
        parsed.hstack(tags.select("tag", "region"))
        .join(size, on="tag", how="left")
        .with_columns(_global=(~regional).cast(pl.Int8))
        .unique(["version", "length", "net_hi", "net_lo", "tag"])
    )


def label_destinations(
    flows: FrameLike,
    *,
    service_tags: pl.DataFrame | PathLike | Mapping[str, Any],
    column: str = "destination_ip",
) -> pl.DataFrame:
    """Add the most specific Azure Service Tag of each destination.

    Tags overlap (``AzureCloud`` contains ``Storage.WestEurope``): each address gets
    the tag of its longest matching prefix; among equal prefixes a regional tag wins,
    then the tag with fewer prefixes. Matching is a hash join per prefix length over
    the distinct addresses.

    Parameters
    ----------
    flows
        Flow records in FLOW_SCHEMA.
    service_tags
        Output of :func:`read_service_tags`, a path to the JSON file, or the loaded JSON.
    column
        The address column to label.

    Returns
    -------
    pl.DataFrame
        ``flows`` in its order plus ``service_tag``, ``service_tag_region`` and
        ``service_tag_prefix`` (null where no tag matches).

    Examples
    --------
    >>> import natlens
    >>> flows = pl.DataFrame(
    ...     {"destination_ip": ["20.38.1.2", "8.8.8.8"]}, schema_overrides={"time": pl.Datetime}
    ... )
    >>> tags = pl.DataFrame(
    ...     {"tag": ["AzureCloud", "Storage"], "prefix": ["20.0.0.0/8", "20.38.0.0/16"]}
    ... )
    >>> label_destinations(flows, service_tags=tags).get_column("service_tag").to_list()
    ['Storage', None]

    On the sample week:

    >>> samples = natlens.sample_data()
    >>> labelled = label_destinations(
    ...     natlens.read_flowlogs(samples.flowlogs), service_tags=samples.service_tags
    ... )
    >>> labelled.filter(pl.col("destination_ip") == "20.60.26.45").item(0, "service_tag")
    'Storage.WestEurope'
    """
    lazy = as_lazy(flows, columns=(column,))
    table = _service_tag_table(service_tags)
    matches = longest_prefix_match(
        lazy, table, column=column, tie_break=("_global", "_tag_size", "tag")
    ).select(
        column,
        service_tag="tag",
        service_tag_region="region",
        service_tag_prefix="prefix",
    )
    return lazy.join(matches, on=column, how="left", maintain_order="left").collect()


def read_inventory(source: PathLike | pl.DataFrame) -> pl.DataFrame:
    """Read a VM inventory CSV ``ip,vm_name,subnet,team`` (extra columns are kept).

    IPs are brought to canonical text so they join with the flow log.

    Raises
    ------
    ValueError
        Naming the file and line of a row whose ``ip`` is not an IP address, or a
        missing ``ip`` column.

    Examples
    --------
    >>> inventory = pl.DataFrame({"ip": [" 2001:DB8::4 "], "vm_name": ["web-1"]})
    >>> read_inventory(inventory).rows()
    [('2001:db8::4', 'web-1', None, None)]
    """
    where = "inventory" if isinstance(source, pl.DataFrame) else os.fspath(source)
    if isinstance(source, pl.DataFrame):
        frame = source
    else:
        frame = pl.read_csv(Path(source), infer_schema=False)
    frame = frame.rename({c: c.strip().lower() for c in frame.columns})
    if "ip" not in frame.columns:
        raise ValueError(f"{where}: no 'ip' column (expected ip,vm_name,subnet,team)")
    canonical: list[str] = []
    for line, value in enumerate(frame.get_column("ip").cast(pl.String).to_list(), start=2):
        try:
            canonical.append(canonical_ip(value or ""))
        except ValueError:
            raise ValueError(f"{where}, line {line}: {value!r} is not an IP address") from None
    frame = frame.with_columns(pl.Series("ip", canonical, dtype=pl.String))
    for name in INVENTORY_COLUMNS[1:]:
        if name not in frame.columns:
            frame = frame.with_columns(pl.lit(None, pl.String).alias(name))
    ordered = [*INVENTORY_COLUMNS, *[c for c in frame.columns if c not in INVENTORY_COLUMNS]]
    return frame.select(ordered).unique("ip", keep="first", maintain_order=True)


def label_sources(
    flows: FrameLike,
    *,
    inventory: Inventory,
    column: str = "source_ip",
) -> pl.DataFrame:
    """Add the inventory's VM name, subnet and team (and any extra columns) per source IP.

    Returns
    -------
    pl.DataFrame
        ``flows`` in its order plus the inventory columns; null for unknown sources.

    Examples
    --------
    >>> flows = pl.DataFrame({"source_ip": ["10.0.0.4", "10.0.0.9"]})
    >>> inventory = pl.DataFrame({"ip": ["10.0.0.4"], "vm_name": ["web-1"], "team": ["shop"]})
    >>> label_sources(flows, inventory=inventory).get_column("vm_name").to_list()
    ['web-1', None]
    """
    table = read_inventory(inventory)
    lazy = as_lazy(flows, columns=(column,))
    clashes = (set(table.columns) - {"ip"}) & set(lazy.collect_schema().names())
    if clashes:
        raise ValueError(f"inventory: column(s) {sorted(clashes)} already exist in flows")
    return lazy.join(
        table.lazy(), left_on=column, right_on="ip", how="left", maintain_order="left"
    ).collect()


def read_allowlist(source: PathLike | Sequence[str]) -> list[str]:
    """Read an allowlist: one CIDR, IP, Service Tag name or hostname per line, ``#`` comments.

    IP and CIDR entries are validated here so a typo points at its line.

    Raises
    ------
    ValueError
        Naming the file and line of an invalid IP or CIDR.

    Examples
    --------
    >>> read_allowlist(["# approved", "10.0.0.0/8", "github.com  # code", "", "Storage"])
    ['10.0.0.0/8', 'github.com', 'Storage']
    """
    file = isinstance(source, str | os.PathLike)
    if isinstance(source, str | os.PathLike):
        where = f"{os.fspath(source)}, line"
        lines = Path(source).read_text(encoding="utf-8").splitlines()
    else:
        where, lines = "allowlist", list(source)
    entries: list[str] = []
    for number, line in enumerate(lines, start=1):
        entry = line.split("#", 1)[0].strip()
        if not entry:
            continue
        if is_address_like(entry):
            try:
                parse_prefixes([entry], argument="allowlist")
            except ValueError:
                place = f"{where} {number}" if file else f"{where}[{number - 1}]"
                raise ValueError(f"{place}: {entry!r} is not a valid IP address or CIDR") from None
        entries.append(entry)
    return entries


def read_hostnames(source: PathLike | Mapping[str, Any]) -> dict[str, list[str]]:
    """Read a hostname map ``{host: [ips]}``, usable as ``resolver=`` anywhere in natlens.

    Raises
    ------
    ValueError
        Naming the file and host whose value is not a list of IP addresses.

    Examples
    --------
    >>> read_hostnames({"GitHub.com": ["140.82.121.4"]})
    {'github.com': ['140.82.121.4']}
    """
    where = "hostnames" if isinstance(source, Mapping) else os.fspath(source)
    document = source if isinstance(source, Mapping) else _load_json(source)
    if not isinstance(document, Mapping):
        raise ValueError(f"{where}: expected a JSON object {{host: [ips]}}")
    result: dict[str, list[str]] = {}
    for host, ips in document.items():
        values = [ips] if isinstance(ips, str) else ips
        if not isinstance(values, list):
            raise ValueError(f"{where}: {host!r} maps to {ips!r}, expected a list of IPs")
        try:
            result[str(host).strip().lower().rstrip(".")] = [canonical_ip(str(v)) for v in values]
        except ValueError:
            raise ValueError(f"{where}: {host!r} maps to {ips!r}, which holds a non-IP") from None
    return result
