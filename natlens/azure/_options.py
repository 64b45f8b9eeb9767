"""What a live read asks for and how: one frozen value every query reader shares."""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass
from datetime import timedelta
from typing import Literal

from natlens._schema import canonical_ip
from natlens._typing import Targets

__all__ = ["MAX_ROWS", "PLANS", "QueryOptions", "check_name", "ip_spellings", "parse_grain"]

MAX_ROWS = 500_000
"""The row cap of one Log Analytics answer (and Data Explorer's default truncation)."""

MAX_SERVER_TIMEOUT = 600
"""Seconds Log Analytics lets one query run, at most."""

PLANS = ("auto", "analytics", "basic")
"""A Log Analytics table plan: found from the service's answer, or said up front."""

DAY = timedelta(days=1)
_EMBEDDING = (ipaddress.IPv6Network("64:ff9b::/96"), ipaddress.IPv6Network("::ffff:0:0/96"))
"""IPv6 ranges whose last 32 bits are an IPv4 host: NAT64 (RFC 6052) and IPv4-mapped."""


_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_GRAIN = re.compile(r"^\s*(\d+)\s*(d|h|m|min|s)\s*$")
_GRAIN_UNITS = {"d": "days", "h": "hours", "m": "minutes", "min": "minutes", "s": "seconds"}


def check_name(name: str, argument: str) -> str:
    """Return ``name`` if it is a plain KQL name (letters, digits, ``_``), else raise.

    Examples
    --------
    >>> check_name("NatGatewayFlowlogsV1", "table")
    'NatGatewayFlowlogsV1'
    """
    if not isinstance(name, str) or not _NAME.match(name):
        raise ValueError(f"{argument}={name!r} is not a plain KQL name")
    return name


def parse_grain(grain: str | timedelta, argument: str = "rollup") -> timedelta:
    """Parse a time grain such as ``"1h"``, ``"15m"``, ``"1d"`` or a ``timedelta``.

    Raises
    ------
    ValueError
        Naming ``argument`` if ``grain`` is no whole, positive number of minutes.

    Examples
    --------
    >>> parse_grain("15m")
    datetime.timedelta(seconds=900)
    """
    if isinstance(grain, timedelta):
        value = grain
    else:
        match = _GRAIN.match(str(grain))
        if match is None:
            raise ValueError(
                f"{argument}={grain!r} is not a time grain; use e.g. '1m', '15m', '1h', '1d' "
                "or a datetime.timedelta"
            )
        value = timedelta(**{_GRAIN_UNITS[match.group(2)]: int(match.group(1))})
    if value < timedelta(minutes=1) or value % timedelta(minutes=1):
        raise ValueError(f"{argument}={grain!r} must be a positive whole number of minutes")
    return value


def _texts(values: Targets, argument: str) -> tuple[str, ...]:
    if isinstance(values, str):
        out: tuple[str, ...] = (values,)
    else:
        try:
            out = tuple(values)
        except TypeError:
            raise TypeError(
                f"{argument}: expected a str or an iterable of str, got {type(values).__name__}"
            ) from None
    for value in out:
        if not isinstance(value, str):
            raise TypeError(f"{argument}: expected str values, got {value!r}")
    if not out:
        raise ValueError(f"{argument} is empty; pass None for no filter")
    return out


def ip_spellings(value: str, argument: str) -> list[str]:
    """Every text a record may hold for the address ``value``, canonical first.

    Log Analytics compares text, not addresses: a filter sends the canonical text
    (mixed notation for IPv4-mapped and NAT64 addresses), the hexadecimal RFC 5952
    text a service may store instead, and ``value`` as typed. An IPv4 host also
    stands for the IPv6 addresses that embed it, its NAT64 address under the
    well-known prefix ``64:ff9b::/96`` and its IPv4-mapped address (each in both
    spellings), and such an address for its IPv4 host: the records
    :func:`natlens.find_flows` keeps for the same value.

    Raises
    ------
    ValueError
        Naming ``argument`` if ``value`` is not an IP address.

    Examples
    --------
    >>> ip_spellings("14.1.2.3", "destinations")  # doctest: +NORMALIZE_WHITESPACE
    ['14.1.2.3', '64:ff9b::14.1.2.3', '64:ff9b::e01:203', '::ffff:14.1.2.3',
     '::ffff:e01:203']
    >>> ip_spellings("64:FF9B::E01:203", "destinations")[:3]
    ['64:ff9b::14.1.2.3', '64:ff9b::e01:203', '64:FF9B::E01:203']
    >>> ip_spellings("2001:DB8::1", "sources")
    ['2001:db8::1', '2001:DB8::1']
    """
    text = value.strip() if isinstance(value, str) else value
    try:
        address = ipaddress.ip_address(text)
    except ValueError:
        raise ValueError(f"{argument}: {value!r} is not an IP address") from None
    spellings = [canonical_ip(text), address.compressed, text]
    host: ipaddress.IPv4Address | None = None
    if isinstance(address, ipaddress.IPv4Address):
        host = address
    elif any(address in network for network in _EMBEDDING) and address.scope_id is None:
        host = ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
    if host is not None:
        spellings.append(str(host))
        for network in _EMBEDDING:
            embedded = ipaddress.IPv6Address(int(network.network_address) | int(host))
            spellings += [canonical_ip(str(embedded)), embedded.compressed]
    return list(dict.fromkeys(spellings))


@dataclass(frozen=True)
class QueryOptions:
    """What a live read asks the service for, and how it asks: one value, checked once.

    :func:`natlens.read_log_analytics`, :func:`natlens.read_log_analytics_resource`,
    :func:`natlens.read_data_explorer`, their ``scan_*`` forms and
    :func:`natlens.azure.flow_kql` all take it as ``options=``. Every value is checked
    when the options are built, so a typo fails before anything is asked (or billed).
    Build a variant with :func:`dataclasses.replace`.

    Attributes
    ----------
    sources, destinations, nat_ips
        Keep only these IP addresses (filtered in KQL, on the server; any spelling).
        An IPv4 host also matches the IPv6 addresses that embed it (NAT64
        ``64:ff9b::a.b.c.d``, IPv4-mapped ``::ffff:a.b.c.d``), as in
        :func:`natlens.find_flows`.
    gateways
        Keep only these NAT gateways: resource ids, or gateway names.
    rollup
        A grain such as ``"1h"``: the counters are summed on the server per time bin,
        source, destination, NAT IP and gateway. None returns the raw 1-minute records.
    table
        The table's name; default: the first of ``NatGatewayFlowlogsV1`` and
        ``NatGatewayFlowLogsV1`` the service has.
    span
        Time covered by one query (default 1 hour raw, about a day of whole bins with a
        rollup); a multiple of the rollup. An answer that comes back partial or at the
        row cap is split in two and asked again, down to one grain.
    max_concurrency
        Queries in flight at once: Log Analytics 1 to 5 (default 4), on a Basic-plan
        table 1 or 2 (default 2); Data Explorer 1 to 16 (default 4).
    max_rows
        The row cap of one answer (the services' is 500,000): an answer that reaches
        it is split, never kept.
    server_timeout
        Seconds the service may run one query, 1 to 600.
    progress
        Show a tqdm progress bar; None shows it only on a terminal or notebook.
    plan
        The Log Analytics table's plan: ``"auto"`` (found from the service's answer),
        ``"analytics"`` or ``"basic"``. A Basic-plan table is read through the
        workspace's ``/search`` API, at most two queries at once, for the last 30 days
        only, and each query is billed per GB of the table's data in its time range.

    Examples
    --------
    >>> options = QueryOptions(sources="10.0.0.4", rollup="1h")
    >>> options.sources, options.rollup
    (('10.0.0.4',), datetime.timedelta(seconds=3600))
    >>> options.query_span()
    datetime.timedelta(days=1)
    >>> QueryOptions(destinations="8.8.8.8 or 1==1")
    Traceback (most recent call last):
    ...
    ValueError: destinations: '8.8.8.8 or 1==1' is not an IP address
    """

    sources: Targets | None = None
    destinations: Targets | None = None
    nat_ips: Targets | None = None
    gateways: Targets | None = None
    rollup: str | timedelta | None = None
    table: str | None = None
    span: str | timedelta | None = None
    max_concurrency: int | None = None
    max_rows: int = MAX_ROWS
    server_timeout: int = MAX_SERVER_TIMEOUT
    progress: bool | None = None
    plan: Literal["auto", "analytics", "basic"] = "auto"

    def __post_init__(self) -> None:
        for argument in ("sources", "destinations", "nat_ips"):
            values = getattr(self, argument)
            if values is not None:
                texts = _texts(values, argument)
                for value in texts:
                    ip_spellings(value, argument)
                object.__setattr__(self, argument, texts)
        if self.gateways is not None:
            object.__setattr__(self, "gateways", _texts(self.gateways, "gateways"))
        if self.rollup is not None:
            object.__setattr__(self, "rollup", parse_grain(self.rollup, "rollup"))
        if self.span is not None:
            object.__setattr__(self, "span", parse_grain(self.span, "span"))
        if self.table is not None:
            check_name(self.table, "table")
        self.query_span()  # a span that is no multiple of the grain fails here
        for name, number, high in (
            ("max_concurrency", self.max_concurrency, None),
            ("max_rows", self.max_rows, MAX_ROWS),
            ("server_timeout", self.server_timeout, MAX_SERVER_TIMEOUT),
        ):
            if number is None:
                continue
            if isinstance(number, bool) or not isinstance(number, int):
                raise TypeError(f"{name}={number!r} must be an int")
            if number < 1 or (high is not None and number > high):
                bound = f"between 1 and {high}" if high is not None else "at least 1"
                raise ValueError(f"{name}={number} must be {bound}")
        if self.plan not in PLANS:
            raise ValueError(f"plan={self.plan!r} must be one of {', '.join(map(repr, PLANS))}")

    def grain(self) -> timedelta:
        """The time grain: the rollup, or one minute (a raw record's)."""
        return timedelta(minutes=1) if self.rollup is None else parse_grain(self.rollup, "rollup")

    def query_span(self) -> timedelta:
        """Time one query covers: ``span``, or 1 hour raw, or a day of whole bins rolled up.

        Raises
        ------
        ValueError
            If ``span`` is not a whole multiple of the grain.
        """
        step = self.grain()
        if self.span is None:
            return (
                timedelta(hours=1) if self.rollup is None else step * -(-timedelta(days=1) // step)
            )
        span = parse_grain(self.span, "span")
        if span < step or span % step:
            raise ValueError(f"span={span} must be a whole multiple of the grain {step}")
        return span
