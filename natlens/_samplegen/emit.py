"""Emission: sessions drawn from the world's habits, folded into per-minute flow records.

A flow record is one (minute, gateway, source, destination, NAT IP) with its counters,
summed over the sessions that share it, as NAT Gateway writes them. Background sessions
come first, then the planted events, then a little noise (isolated drops, null counters).
"""

from __future__ import annotations

import math
import random
from bisect import bisect_right
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Final, NamedTuple

from natlens._samplegen.draw import geometric, lognormal, poisson, zipf_cumulative
from natlens._samplegen.plan import BEACON_IP, UNAPPROVED_IP, Plan
from natlens._samplegen.world import HOSTNAMES, MIX, Service, World, patch_tuesday_boost, rhythm
from natlens._schema import COUNTER_COLUMNS

__all__ = ["COUNTERS", "Counters", "FlowKey", "Flows", "Session", "emit_flows"]

COUNTERS: Final = COUNTER_COLUMNS
"""The counters a flow record carries, in the flow log's order (natlens's schema)."""


class FlowKey(NamedTuple):
    """What identifies a flow record; keys sort by minute first."""

    minute: int
    gateway: int  # index into World.gateways
    source: str
    destination: str
    nat: str


@dataclass(slots=True)
class Counters:
    """The counters of one flow record, plus what the gateway knows but does not log.

    ``nulls`` names the counters written as ``null`` in the flow log; the true values stay
    here, because the gateway's metrics count them.
    """

    packets_sent: int = 0
    packets_received: int = 0
    packets_sent_dropped: int = 0
    packets_received_dropped: int = 0
    bytes_sent: int = 0
    bytes_received: int = 0
    connections: int = 0  # active in the minute
    new_connections: int = 0
    nulls: frozenset[str] = field(default_factory=frozenset)

    def recorded(self, counter: str) -> int:
        """A counter as the flow log shows it (a null counts as 0)."""
        return 0 if counter in self.nulls else int(getattr(self, counter))

    @property
    def dropped(self) -> int:
        """Packets dropped in both directions (true values)."""
        return self.packets_sent_dropped + self.packets_received_dropped


class Flows:
    """One record per (minute, gateway, source, destination, NAT IP), summed over sessions."""

    def __init__(self, minutes: int) -> None:
        self.minutes = minutes
        self.table: dict[FlowKey, Counters] = {}
        self.protected: set[FlowKey] = set()  # planted records: no noise on them

    def add(
        self,
        key: FlowKey,
        payload_sent: int,
        payload_received: int,
        *,
        connections: int,
        new: int,
        rng: random.Random,
        udp: bool = False,
        dropped: tuple[int, int] = (0, 0),
        protect: bool = False,
    ) -> None:
        """Add one minute of a session: payload bytes become packets and wire bytes.

        TCP payloads travel in segments with 52 bytes of headers and one ACK per two
        segments the other way; UDP datagrams are 76 bytes. Minutes outside the period
        are ignored.
        """
        if not 0 <= key.minute < self.minutes:
            return
        if udp:
            ps = max(1, round(payload_sent / 76))
            pr = max(1, round(payload_received / 76))
            bs, br = ps * 76, pr * 76
        else:
            data_s = _segments(payload_sent, rng)
            data_r = _segments(payload_received, rng)
            ps = data_s + max(1, data_r // 2)
            pr = data_r + max(1, data_s // 2)
            bs = payload_sent + 52 * ps
            br = payload_received + 52 * pr
        row = self.table.get(key)
        if row is None:
            row = self.table[key] = Counters()
        row.packets_sent += ps
        row.packets_received += pr
        row.packets_sent_dropped += dropped[0]
        row.packets_received_dropped += dropped[1]
        row.bytes_sent += bs
        row.bytes_received += br
        row.connections += connections
        row.new_connections += new
        if protect:
            self.protected.add(key)


def _segments(payload: int, rng: random.Random) -> int:
    if payload <= 0:
        return 0
    size = 1_380 if payload > 64_000 else rng.uniform(180, 900)
    return max(1, math.ceil(payload / size))


@dataclass
class Session:
    """One background session: who, to where, when, how much and for how many minutes."""

    minute: int
    vm: int  # index into World.vms
    service: str
    destination: str
    nat: str  # empty: pick an IPv4 public IP of the gateway when emitting
    sent: int
    received: int
    minutes: int  # 0: dropped (no destination fits)


def emit_flows(rng_for: Callable[[str], random.Random], world: World, plan: Plan) -> Flows:
    """Every flow record of the period: background, planted events, noise.

    ``rng_for(purpose)`` gives the generator of each step (``sessions``, ``late``,
    ``background``, ``events``, ``noise``).
    """
    flows = Flows(world.minutes)
    sessions = _background_sessions(rng_for("sessions"), world)
    _settle_late_destinations(rng_for("late"), sessions, world.services, world.minutes - 2880)
    _emit_background(rng_for("background"), flows, sessions, world, plan)
    _emit_events(rng_for("events"), flows, world, plan)
    github = {ip for name, ips in HOSTNAMES.items() if "github" in name for ip in ips}
    _sprinkle_noise(rng_for("noise"), flows, github | {world.vms[plan.github_vm].ipv4})
    return flows


def _background_sessions(rng: random.Random, world: World) -> list[Session]:
    vms, services, start = world.vms, world.services, world.start
    hours = world.days * 24
    local = [start + timedelta(hours=h + 1) for h in range(hours)]
    utc = [start + timedelta(hours=h) for h in range(hours)]
    rhythms = {
        kind: [rhythm(kind, t) for t in local] for kind in ("flat", "office", "customer", "batch")
    }
    # Windows Update: quiet, except after Patch Tuesday (second Tuesday, 18:00 UTC)
    rhythms["patch"] = [patch_tuesday_boost(t) for t in utc]
    cumulative = {
        key: (zipf_cumulative(len(svc.v4)), zipf_cumulative(len(svc.v6)))
        for key, svc in services.items()
    }
    sessions: list[Session] = []
    for index, vm in enumerate(vms):
        gateway = world.gateway_of(vm)
        for demand in MIX[vm.subnet.role]:
            svc = services[demand.service]
            cum4, cum6 = cumulative[demand.service]
            curve = rhythms[demand.rhythm]
            for hour in range(hours):
                for _ in range(poisson(rng, demand.sessions_per_hour * curve[hour])):
                    use6 = bool(vm.ipv6 and svc.v6) and rng.random() < 0.55
                    if use6:
                        dst = svc.v6[bisect_right(cum6, rng.random() * cum6[-1])]
                        nat = gateway.ipv6[0]
                    else:
                        dst = svc.v4[bisect_right(cum4, rng.random() * cum4[-1])]
                        nat = rng.choice(gateway.ipv4)
                    sessions.append(
                        Session(
                            minute=hour * 60 + rng.randrange(60),
                            vm=index,
                            service=demand.service,
                            destination=dst,
                            nat=nat,
                            sent=lognormal(rng, *svc.sent),
                            received=lognormal(rng, *svc.received),
                            minutes=min(geometric(rng, svc.minutes), 90),
                        )
                    )
    return sessions


def _settle_late_destinations(
    rng: random.Random, sessions: list[Session], services: dict[str, Service], late: int
) -> None:
    """Point sessions in the last two days only at destinations already seen before them.

    So the only destination new in the last two days is the planted one.
    """
    first: dict[str, int] = {}
    for session in sessions:
        if session.minute < first.get(session.destination, 1 << 60):
            first[session.destination] = session.minute
    early = {d for d, m in first.items() if m < late}
    for session in sessions:
        if session.minute >= late and session.destination not in early:
            svc = services[session.service]
            same_family = svc.v6 if ":" in session.destination else svc.v4
            choices = [d for d in same_family if d in early]
            if not choices:
                choices = [d for d in svc.v4 if d in early]
                if not choices:
                    session.minutes = 0
                    continue
                session.nat = session.nat if ":" not in session.nat else ""
            session.destination = rng.choice(choices)


def _emit_background(
    rng: random.Random, flows: Flows, sessions: list[Session], world: World, plan: Plan
) -> None:
    vms, services = world.vms, world.services
    snat_gateway = vms[plan.snat_vm].subnet.gateway
    for session in sessions:
        if session.minutes <= 0:
            continue
        vm = vms[session.vm]
        gw = vm.subnet.gateway
        svc = services[session.service]
        nat = session.nat or rng.choice(world.gateways[gw].ipv4)
        src = vm.ipv6 if ":" in session.destination else vm.ipv4
        assert src is not None
        starts_blocked = (
            gw == snat_gateway
            and session.destination == plan.snat_dst
            and plan.snat.start <= session.minute < plan.snat.end
        )
        if starts_blocked:
            continue  # never established: SNAT ports to that destination ran out
        weights = [0.4 + rng.random() for _ in range(session.minutes)]
        total = sum(weights)
        udp = svc.protocol == "UDP"
        for offset, weight in enumerate(weights):
            minute = session.minute + offset
            if (
                session.vm == plan.snat_vm
                and session.destination == plan.snat_dst
                and plan.snat.start <= minute < plan.snat.end
            ):
                continue
            share = weight / total
            flows.add(
                FlowKey(minute, gw, src, session.destination, nat),
                round(session.sent * share),
                round(session.received * share),
                connections=svc.connections,
                new=svc.connections if offset == 0 else 0,
                rng=rng,
                udp=udp,
            )


def _emit_events(rng: random.Random, flows: Flows, world: World, plan: Plan) -> None:
    vms = world.vms
    mb = 1_000_000

    # 1. billing spike: a bulk upload (AzCopy, 16 connections over both NAT IPs)
    vm = vms[plan.billing_vm]
    gw = world.gateway_of(vm)
    for minute in range(*plan.billing):
        ramp = min(1.0, (minute - plan.billing.start + 1) / 6)
        for nat in gw.ipv4:
            sent = round(ramp * lognormal(rng, 165 * mb, 0.12))
            flows.add(
                FlowKey(minute, vm.subnet.gateway, vm.ipv4, plan.billing_dst, nat),
                sent,
                sent // 400,
                connections=8,
                new=8 if minute == plan.billing.start else 0,
                rng=rng,
                protect=True,
            )

    # 2. github.com: one heavy connection, rate limited in bursts
    vm = vms[plan.github_vm]
    gw = world.gateway_of(vm)
    nat = gw.ipv4[0]
    for minute in range(*plan.github):
        in_burst = any(b.start <= minute < b.end for b in plan.github_bursts)
        received = lognormal(rng, (22 if in_burst else 34) * mb, 0.3)
        sent = lognormal(rng, 180_000, 0.3)
        # packets of a bulk download: data segments of 1380 bytes, one ACK per two
        pr = math.ceil(received / 1380)
        dropped = (0, 0)
        if in_burst:
            dropped = (
                max(1, round(pr / 2 * rng.uniform(0.004, 0.015))),
                max(1, round(pr * rng.uniform(0.02, 0.06))),
            )
        flows.add(
            FlowKey(minute, vm.subnet.gateway, vm.ipv4, plan.github_dst, nat),
            sent,
            received,
            connections=1,
            new=1 if minute == plan.github.start else 0,
            rng=rng,
            dropped=dropped,
            protect=True,
        )

    # 3. SNAT exhaustion: a package-mirror job polls one npm address every minute
    vm = vms[plan.snat_vm]
    gw = world.gateway_of(vm)
    for minute in range(*plan.snat_job):
        if plan.snat.start <= minute < plan.snat.end:
            continue
        flows.add(
            FlowKey(minute, vm.subnet.gateway, vm.ipv4, plan.snat_dst, gw.ipv4[0]),
            lognormal(rng, 12_000, 0.4),
            lognormal(rng, 2_500_000, 0.8),
            connections=2,
            new=2,
            rng=rng,
            protect=True,
        )

    # 4. a nightly export to an address nobody approved
    vm = vms[plan.unapproved_vm]
    gw = world.gateway_of(vm)
    for night in plan.unapproved_nights:
        nat = rng.choice(gw.ipv4)
        for minute in range(*night):
            flows.add(
                FlowKey(minute, vm.subnet.gateway, vm.ipv4, UNAPPROVED_IP, nat),
                lognormal(rng, 42 * mb, 0.2),
                lognormal(rng, 150_000, 0.3),
                connections=1,
                new=1 if minute == night.start else 0,
                rng=rng,
                protect=True,
            )

    # 5. a destination never seen before: telemetry to a new vendor after a deploy
    honeycomb = HOSTNAMES["api.honeycomb.io"]
    v4 = [ip for ip in honeycomb if ":" not in ip]
    v6 = [ip for ip in honeycomb if ":" in ip]
    for index in plan.new_vms:
        vm = vms[index]
        gw = world.gateway_of(vm)
        minute = plan.new_start + rng.randrange(3)
        while minute < flows.minutes:
            if vm.ipv6 and rng.random() < 0.5:
                key = FlowKey(minute, vm.subnet.gateway, vm.ipv6, v6[0], gw.ipv6[0])
            else:
                key = FlowKey(
                    minute, vm.subnet.gateway, vm.ipv4, rng.choice(v4), rng.choice(gw.ipv4)
                )
            flows.add(
                key,
                lognormal(rng, 80_000, 0.5),
                lognormal(rng, 3_000, 0.3),
                connections=1,
                new=1,
                rng=rng,
                protect=True,
            )
            minute += 6 + rng.randrange(9)

    # 6. a beacon: every 300 s with a few seconds of jitter, tiny payloads
    vm = vms[plan.beacon_vm]
    gw = world.gateway_of(vm)
    second = plan.beacon_start * 60 + rng.randrange(60)
    while second // 60 < flows.minutes:
        contact = second + rng.randint(-4, 4)
        flows.add(
            FlowKey(contact // 60, vm.subnet.gateway, vm.ipv4, BEACON_IP, gw.ipv4[0]),
            rng.randint(330, 620),
            rng.randint(180, 1300),
            connections=1,
            new=1,
            rng=rng,
            protect=True,
        )
        second += 300


_NULL_PATTERNS: Final = (
    (0.6, frozenset({"packets_sent_dropped", "packets_received_dropped"})),
    (0.85, frozenset(COUNTERS)),
    (1.0, frozenset({"bytes_sent", "bytes_received"})),
)
"""Which counters go null together, with the cumulative share of each pattern."""


def _sprinkle_noise(rng: random.Random, flows: Flows, quiet: set[str]) -> None:
    """A few isolated drops and some null counters on background records.

    No drops touch the addresses in ``quiet`` (the github.com event's VM and GitHub).
    """
    keys = sorted(k for k in flows.table if k not in flows.protected)
    heavy = [
        k
        for k in keys
        if flows.table[k].bytes_received > 5_000_000
        and k.source not in quiet
        and k.destination not in quiet
    ]
    for key in rng.sample(heavy, min(12, len(heavy))):
        flows.table[key].packets_received_dropped += rng.randint(1, 3)
    for key in rng.sample(keys, len(keys) // 250):
        pattern = rng.random()
        flows.table[key].nulls = next(nulls for share, nulls in _NULL_PATTERNS if pattern < share)
