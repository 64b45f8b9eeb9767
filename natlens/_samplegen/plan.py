"""The plan: where and when the six planted events happen.

1. a billing spike (a bulk upload to one Azure Storage address),
2. one heavy github.com connection rate limited in bursts (dropped packets),
3. SNAT port exhaustion on the build subnet's gateway (failed connections, vanished flows),
4. a nightly upload to an address nobody approved,
5. a destination never seen before the last two days,
6. a beacon every five minutes.

All times count minutes from the start of the period. The metrics side of event 3 (the
connection storm, the failed attempts, the availability dip) is drawn here too, so the
writers only write.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final, NamedTuple

from natlens._samplegen.world import HOSTNAMES, World

__all__ = [
    "BEACON_IP",
    "UNAPPROVED_IP",
    "MetricEvents",
    "Plan",
    "Window",
    "draw_metric_events",
    "make_plan",
]

UNAPPROVED_IP: Final = "203.0.113.45"
"""Where the nightly upload goes (RFC 5737 documentation range, on no allowlist)."""

BEACON_IP: Final = "198.51.100.23"
"""Where the beacon calls (RFC 5737 documentation range, on no allowlist)."""


class Window(NamedTuple):
    """A half-open span of minutes from the start of the period."""

    start: int
    end: int


@dataclass(frozen=True)
class Plan:
    """Where and when the planted events happen (VMs are indexes into ``World.vms``)."""

    billing_vm: int
    billing_dst: str
    billing: Window
    github_vm: int
    github_dst: str
    github: Window
    github_bursts: tuple[Window, ...]
    snat_vm: int
    snat_dst: str
    snat: Window
    snat_job: Window
    unapproved_vm: int
    unapproved_nights: tuple[Window, ...]
    new_vms: tuple[int, ...]
    new_start: int
    beacon_vm: int
    beacon_start: int


@dataclass(frozen=True)
class MetricEvents:
    """What event 3 and the gateway's health show only in the metrics, by minute."""

    storm: dict[int, int]  # extra SNAT connection attempts of the CI storm
    failed: dict[int, int]  # failed SNAT connections
    dip: dict[int, float]  # the one DatapathAvailability dip, during the exhaustion
    healthy_blips: dict[int, float]  # availability a hair under 100 %, harmless

    @property
    def availability_min(self) -> float:
        """The lowest DatapathAvailability of the dip."""
        return min(self.dip.values())

    @property
    def dip_minute(self) -> int:
        """When the dip happens."""
        return next(iter(self.dip))


def make_plan(rng: random.Random, world: World) -> Plan:
    """Pick the VMs, destinations and times of the planted events.

    With five days or more the events spread over the week (the github.com problem on
    day 4, the SNAT exhaustion on day 3); shorter periods pack them into the first days.
    """
    vms, services, days = world.vms, world.services, world.days

    def pick(role: str, exclude: Sequence[int] = ()) -> int:
        pool = [i for i, vm in enumerate(vms) if vm.subnet.role == role and i not in exclude]
        return rng.choice(pool)

    def at(day: int, hour: int, minute: int) -> int:
        return day * 1440 + hour * 60 + minute

    long_week = days >= 5
    billing_start = at(1, 13, 12 + rng.randrange(16))
    billing_end = billing_start + 300 + rng.randrange(40)

    github_day = 3 if long_week else days - 1
    github_start, github_end = at(github_day, 7, rng.randrange(20)), at(github_day, 19, 0)
    bursts: list[Window] = []
    slot = (github_end - github_start) // 6
    for i in range(6):
        length = 8 + rng.randrange(15)
        begin = github_start + i * slot + rng.randrange(10, slot - length - 10)
        bursts.append(Window(begin, begin + length))

    snat_day = 2 if long_week else 1
    snat_start = at(snat_day, 10, 3 + rng.randrange(10))
    snat_end = snat_start + 35 + rng.randrange(20)
    snat_vm = pick("build")
    github_vm = pick("build", exclude=(snat_vm,))

    first_night = 2 if long_week else 0
    nights = []
    for day in range(first_night, days):
        begin = at(day, 2, 15 + rng.randrange(25))
        nights.append(Window(begin, begin + 6 + rng.randrange(9)))

    web = [i for i, vm in enumerate(vms) if vm.subnet.role == "web" and vm.ipv6]
    new_vms = tuple(sorted(rng.sample(web, min(3, len(web)))))

    return Plan(
        billing_vm=pick("data"),
        billing_dst=rng.choice(services["storage_we"].v4[:12]),
        billing=Window(billing_start, billing_end),
        github_vm=github_vm,
        github_dst=rng.choice(HOSTNAMES["github.com"]),
        github=Window(github_start, github_end),
        github_bursts=tuple(bursts),
        snat_vm=snat_vm,
        snat_dst=rng.choice(services["npm"].v4),
        snat=Window(snat_start, snat_end),
        snat_job=Window(at(snat_day, 7, 0), at(snat_day, 18, 30)),
        unapproved_vm=pick("payments"),
        unapproved_nights=tuple(nights),
        new_vms=new_vms,
        new_start=at(days - 2, 9, 30 + rng.randrange(20)),
        beacon_vm=pick("corp"),
        beacon_start=at(1 if long_week else 0, 3, 10 + rng.randrange(20)),
    )


def draw_metric_events(rng: random.Random, plan: Plan, minutes: int) -> MetricEvents:
    """The CI storm and failed SNAT connections of event 3, the dip, the harmless blips.

    The storm starts 12 minutes before the exhaustion and ramps up over 10 minutes;
    connections fail only inside the exhaustion window.
    """
    storm_start = plan.snat.start - 12
    failed: dict[int, int] = {}
    storm: dict[int, int] = {}
    for minute in range(storm_start, plan.snat.end + 6):
        ramp = min(1.0, (minute - storm_start + 1) / 10)
        storm[minute] = round(ramp * rng.uniform(3_500, 6_500))
        if plan.snat.start <= minute < plan.snat.end:
            failed[minute] = round(rng.uniform(140, 420) + 0.12 * storm[minute])
    dip = {plan.snat.start + 7 + rng.randrange(10): round(rng.uniform(96.0, 98.5), 2)}
    blips = {
        m: round(rng.uniform(99.5, 99.95), 2) for m in rng.sample(range(minutes), minutes // 400)
    }
    return MetricEvents(storm=storm, failed=failed, dip=dip, healthy_blips=blips)
