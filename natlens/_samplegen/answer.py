"""The answer key: every planted event with the numbers computed from the generated records.

``answer_key.json`` is for the tests and the notebooks, ``ANSWER_KEY.md`` for trainers. The
numbers come from the flow records as written (a null counter counts as 0) unless a field
says it is about what the gateway saw.
"""

from __future__ import annotations

import ipaddress
import statistics
import textwrap
from collections import defaultdict
from collections.abc import Sequence
from datetime import datetime, timedelta
from itertools import pairwise
from typing import Any, Final

from natlens._samplegen.emit import Counters, FlowKey, Flows
from natlens._samplegen.plan import BEACON_IP, UNAPPROVED_IP, MetricEvents, Plan
from natlens._samplegen.world import HOSTNAMES, World, tag_prefixes
from natlens._samplegen.write import allowlist_entries

__all__ = ["PRICE_PER_GB", "answer_key", "answer_key_md"]

PRICE_PER_GB: Final = 0.045
"""List price per GB processed used for the example costs in the answer key (USD)."""

_Record = tuple[FlowKey, Counters]


def _iso(start: datetime, minute: int) -> str:
    return (start + timedelta(minutes=minute)).strftime("%Y-%m-%dT%H:%M:00Z")


def _approved(ip: str, allow: list[str], tags: dict[str, tuple[str, ...]]) -> bool:
    address = ipaddress.ip_address(ip)
    for entry in allow:
        if "/" in entry:
            prefixes: Sequence[str] = (entry,)
        elif entry in tags:
            prefixes = tags[entry]
        else:
            prefixes = [f"{a}/{32 if ':' not in a else 128}" for a in HOSTNAMES.get(entry, ())]
        for prefix in prefixes:
            network = ipaddress.ip_network(prefix)
            if network.version == address.version and address in network:
                return True
    return False


def _by_key(record: _Record) -> FlowKey:
    return record[0]


def answer_key(
    flows: Flows, world: World, plan: Plan, metrics: MetricEvents, *, seed: int, records: int
) -> dict[str, Any]:
    """The answer key as written to ``answer_key.json`` (keys in output order)."""
    vms, gateways, start, days = world.vms, world.gateways, world.start, world.days
    by_ip = {vm.ipv4: vm for vm in vms} | {vm.ipv6: vm for vm in vms if vm.ipv6}
    table = flows.table
    gb = 1e9

    def vm_facts(index: int) -> dict[str, Any]:
        vm = vms[index]
        gw = world.gateway_of(vm)
        return {
            "vm_name": vm.name,
            "vm_ip": vm.ipv4,
            "subnet": vm.subnet.name,
            "team": vm.subnet.team,
            "resource_id": gw.resource_id,
            "gateway": gw.name,
        }

    def rows(src: str | None = None, dst: str | None = None) -> list[_Record]:
        return sorted(
            (
                (k, r)
                for k, r in table.items()
                if (src is None or k.source == src) and (dst is None or k.destination == dst)
            ),
            key=_by_key,
        )

    hourly: dict[int, int] = defaultdict(int)
    for key, row in table.items():
        hourly[key.minute // 60] += row.recorded("bytes_sent") + row.recorded("bytes_received")
    usual_hour = statistics.median(hourly[h] for h in range(days * 24))

    events: list[dict[str, Any]] = []

    # 1. billing spike
    vm = vms[plan.billing_vm]
    spike = [
        (k, r)
        for k, r in rows(vm.ipv4, plan.billing_dst)
        if plan.billing.start <= k.minute < plan.billing.end
    ]
    sent = sum(r.recorded("bytes_sent") for _, r in spike)
    received = sum(r.recorded("bytes_received") for _, r in spike)
    minutes = plan.billing.end - plan.billing.start
    spike_hours = {k.minute // 60 for k, _ in spike}
    peak_hour = max(spike_hours, key=lambda h: hourly[h])
    events.append(
        {
            "id": 1,
            "kind": "billing_spike",
            "title": "Bulk upload to one Azure Storage account",
            **vm_facts(plan.billing_vm),
            "destination_ips": [plan.billing_dst],
            "hostname": None,
            "destination_label": "Storage.WestEurope",
            "nat_gateway_ips": sorted({k.nat for k, _ in spike}),
            "start": _iso(start, plan.billing.start),
            "end": _iso(start, plan.billing.end),
            "numbers": {
                "minutes": minutes,
                "records": len(spike),
                "bytes_sent": sent,
                "bytes_received": received,
                "gb_sent": round(sent / gb, 1),
                "gb_per_hour": round(sent / gb / (minutes / 60), 1),
                "org_median_hourly_gb": round(usual_hour / gb, 2),
                "times_usual_hour": round(sent / (minutes / 60) / usual_hour, 1),
                "peak_hour": _iso(start, peak_hour * 60),
                "peak_hour_org_gb": round(hourly[peak_hour] / gb, 1),
                "cost_usd_at_0_045_per_gb": round((sent + received) / gb * PRICE_PER_GB, 2),
            },
        }
    )

    # 2. github.com drops
    vm = vms[plan.github_vm]
    conn = rows(vm.ipv4, plan.github_dst)
    conn_day = [(k, r) for k, r in conn if plan.github.start <= k.minute < plan.github.end]
    dropped = [(k, r) for k, r in conn if r.dropped > 0]
    bursts = []
    for burst in plan.github_bursts:
        inside = [r for k, r in dropped if burst.start <= k.minute < burst.end]
        bursts.append(
            {
                "start": _iso(start, burst.start),
                "end": _iso(start, burst.end),
                "minutes": burst.end - burst.start,
                "packets_sent_dropped": sum(r.packets_sent_dropped for r in inside),
                "packets_received_dropped": sum(r.packets_received_dropped for r in inside),
            }
        )
    burst_rows = [r for _, r in dropped]
    github_ips = set(HOSTNAMES["github.com"])
    others = [
        (k, r)
        for k, r in table.items()
        if k.destination in github_ips
        and k.source != vm.ipv4
        and r.recorded("packets_received_dropped") > 0
    ]
    noise = [
        (k, r)
        for k, r in table.items()
        if not (k.source == vm.ipv4 and k.destination == plan.github_dst) and _recorded_drops(r) > 0
    ]
    received_dropped = sum(r.packets_received_dropped for r in burst_rows)
    events.append(
        {
            "id": 2,
            "kind": "github_dropped_packets",
            "title": "Intermittent github.com problem: one heavy connection rate limited",
            **vm_facts(plan.github_vm),
            "destination_ips": [plan.github_dst],
            "hostname": "github.com",
            "destination_label": "github.com",
            "nat_gateway_ips": sorted({k.nat for k, _ in conn_day}),
            "start": _iso(start, plan.github_bursts[0].start),
            "end": _iso(start, plan.github_bursts[-1].end),
            "numbers": {
                "connection_start": _iso(start, plan.github.start),
                "connection_end": _iso(start, plan.github.end),
                "connection_records": len(conn_day),
                "connection_gb_received": round(sum(r.bytes_received for _, r in conn_day) / gb, 1),
                "records_with_drops": len(dropped),
                "packets_sent_dropped": sum(r.packets_sent_dropped for r in burst_rows),
                "packets_received_dropped": received_dropped,
                "received_drop_percent_in_bursts": round(
                    100
                    * received_dropped
                    / (sum(r.packets_received for r in burst_rows) + received_dropped),
                    1,
                ),
                "bursts": bursts,
                "other_vms_to_github_records_with_drops": len(others),
                "background_records_with_drops_elsewhere": len(noise),
                "background_packets_dropped_elsewhere": sum(_recorded_drops(r) for _, r in noise),
            },
        }
    )

    # 3. SNAT exhaustion
    vm = vms[plan.snat_vm]
    job = [
        (k, r)
        for k, r in rows(vm.ipv4, plan.snat_dst)
        if plan.snat_job.start <= k.minute < plan.snat_job.end
    ]
    before = [k for k, _ in job if k.minute < plan.snat.start]
    after = [k for k, _ in job if k.minute >= plan.snat.end]
    failed = metrics.failed
    gw = world.gateway_of(vm)
    events.append(
        {
            "id": 3,
            "kind": "snat_exhaustion",
            "title": "SNAT port exhaustion: connections fail, flows vanish",
            **vm_facts(plan.snat_vm),
            "destination_ips": [plan.snat_dst],
            "hostname": "registry.npmjs.org",
            "destination_label": "registry.npmjs.org",
            "nat_gateway_ips": list(gw.ipv4),
            "start": _iso(start, plan.snat.start),
            "end": _iso(start, plan.snat.end),
            "numbers": {
                "minutes_with_failed": len(failed),
                "snat_failed_total": sum(failed.values()),
                "snat_failed_peak_per_minute": max(failed.values()),
                "snat_attempted_storm_peak_per_minute": max(metrics.storm.values()),
                "datapath_availability_min": metrics.availability_min,
                "datapath_availability_dip_at": _iso(start, metrics.dip_minute),
                "job_start": _iso(start, plan.snat_job.start),
                "job_end": _iso(start, plan.snat_job.end),
                "vm_records_before": len(before),
                "vm_records_during": sum(
                    1 for k, _ in job if plan.snat.start <= k.minute < plan.snat.end
                ),
                "vm_records_after": len(after),
                "last_record_before": _iso(start, max(k.minute for k in before)),
                "first_record_after": _iso(start, min(k.minute for k in after)),
            },
        }
    )

    # 4. unapproved destination
    talk = rows(dst=UNAPPROVED_IP)
    events.append(
        {
            "id": 4,
            "kind": "unapproved_destination",
            "title": "Nightly upload to a destination that is not on the allowlist",
            **vm_facts(plan.unapproved_vm),
            "destination_ips": [UNAPPROVED_IP],
            "hostname": None,
            "destination_label": None,
            "nat_gateway_ips": sorted({k.nat for k, _ in talk}),
            "start": _iso(start, talk[0][0].minute),
            "end": _iso(start, talk[-1][0].minute + 1),
            "numbers": {
                "nights": len(plan.unapproved_nights),
                "records": len(talk),
                "bytes_sent": sum(r.bytes_sent for _, r in talk),
                "gb_sent": round(sum(r.bytes_sent for _, r in talk) / gb, 2),
                "bytes_received": sum(r.bytes_received for _, r in talk),
                "sessions": [
                    {"start": _iso(start, night.start), "end": _iso(start, night.end)}
                    for night in plan.unapproved_nights
                ],
                "source_vms": sorted({by_ip[k.source].name for k, _ in talk}),
            },
        }
    )

    # 5. new destination
    new_ips = set(HOSTNAMES["api.honeycomb.io"])
    fresh = sorted(((k, r) for k, r in table.items() if k.destination in new_ips), key=_by_key)
    first_new = vms[plan.new_vms[0]]
    events.append(
        {
            "id": 5,
            "kind": "new_destination",
            "title": "A destination never seen before the last two days",
            "vm_name": [vms[i].name for i in plan.new_vms],
            "vm_ip": [vms[i].ipv4 for i in plan.new_vms],
            "subnet": first_new.subnet.name,
            "team": first_new.subnet.team,
            "resource_id": world.gateway_of(first_new).resource_id,
            "gateway": world.gateway_of(first_new).name,
            "destination_ips": sorted({k.destination for k, _ in fresh}),
            "hostname": "api.honeycomb.io",
            "destination_label": "api.honeycomb.io",
            "nat_gateway_ips": sorted({k.nat for k, _ in fresh}),
            "start": _iso(start, fresh[0][0].minute),
            "end": _iso(start, fresh[-1][0].minute + 1),
            "numbers": {
                "first_seen": _iso(start, fresh[0][0].minute),
                "records": len(fresh),
                "source_ips": sorted({k.source for k, _ in fresh}),
                "bytes_sent": sum(r.bytes_sent for _, r in fresh),
                "approved_by_allowlist": True,
            },
        }
    )

    # 6. beacon
    vm = vms[plan.beacon_vm]
    beat = rows(vm.ipv4, BEACON_IP)
    gaps = [b[0].minute - a[0].minute for a, b in pairwise(beat)]
    events.append(
        {
            "id": 6,
            "kind": "beacon",
            "title": "Beacon: small contacts every five minutes for days",
            **vm_facts(plan.beacon_vm),
            "destination_ips": [BEACON_IP],
            "hostname": None,
            "destination_label": None,
            "nat_gateway_ips": sorted({k.nat for k, _ in beat}),
            "start": _iso(start, beat[0][0].minute),
            "end": _iso(start, beat[-1][0].minute + 1),
            "numbers": {
                "contacts": len(beat),
                "period_seconds": 300,
                "jitter_seconds": 4,
                "median_gap_minutes": statistics.median(gaps),
                "gaps_of_4_to_6_minutes_percent": round(
                    100 * sum(1 for g in gaps if 4 <= g <= 6) / len(gaps), 1
                ),
                "bytes_sent_per_contact_median": statistics.median(r.bytes_sent for _, r in beat),
                "bytes_received_per_contact_median": statistics.median(
                    r.bytes_received for _, r in beat
                ),
                "bytes_total": sum(r.bytes_sent + r.bytes_received for _, r in beat),
                "days_active": round((beat[-1][0].minute - beat[0][0].minute) / 1440, 1),
            },
        }
    )

    allow = allowlist_entries()
    tags = tag_prefixes()
    destinations = sorted(
        {k.destination for k in table}, key=lambda ip: ipaddress.ip_address(ip).packed
    )
    unapproved = [ip for ip in destinations if not _approved(ip, allow, tags)]
    late = (days - 2) * 1440
    first: dict[str, int] = {}
    for key in table:
        if key.minute < first.get(key.destination, 1 << 60):
            first[key.destination] = key.minute

    return {
        "dataset": {
            "organisation": "Fabrikam",
            "seed": seed,
            "start": _iso(start, 0),
            "end": _iso(start, days * 1440),
            "days": days,
            "vms": len(vms),
            "records": records,
            "ipv6_records": sum(1 for k in table if ":" in k.source),
            "records_with_null_counters": sum(1 for r in table.values() if r.nulls),
            "destinations": len(destinations),
            "last_two_days_start": _iso(start, late),
            "org_median_hourly_bytes": round(usual_hour),
            "price_per_gb_usd": PRICE_PER_GB,
            "gateways": [
                {
                    "name": gw.name,
                    "resource_id": gw.resource_id,
                    "subscription": gw.subscription,
                    "resource_group": gw.resource_group,
                    "public_ips": list(gw.ipv4 + gw.ipv6),
                    "vms": sum(1 for vm in vms if gateways[vm.subnet.gateway] is gw),
                }
                for gw in gateways
            ],
        },
        "events": events,
        "unapproved_destinations": unapproved,
        "new_destinations_last_two_days": sorted(
            (ip for ip, m in first.items() if m >= late),
            key=lambda ip: ipaddress.ip_address(ip).packed,
        ),
    }


def _recorded_drops(row: Counters) -> int:
    return row.recorded("packets_sent_dropped") + row.recorded("packets_received_dropped")


def answer_key_md(key: dict[str, Any]) -> str:
    """``ANSWER_KEY.md``: the answer key told for trainers, with the natlens call per event."""
    ds = key["dataset"]
    ev = {e["kind"]: e for e in key["events"]}
    b, g, s = ev["billing_spike"], ev["github_dropped_packets"], ev["snat_exhaustion"]
    u, n, c = ev["unapproved_destination"], ev["new_destination"], ev["beacon"]
    bn, gn, sn, un, nn, cn = (e["numbers"] for e in (b, g, s, u, n, c))
    price = ds["price_per_gb_usd"]

    def day(text: str) -> str:
        return text[:10]

    def hm(text: str) -> str:
        return text[11:16]

    def code(values: Sequence[str]) -> str:
        return ", ".join(f"`{v}`" for v in values)

    def para(*sentences: str) -> str:
        return textwrap.fill(
            " ".join(sentences), width=96, break_long_words=False, break_on_hyphens=False
        )

    gateways = "\n".join(
        f"| `{gw['name']}` | {', '.join(gw['public_ips'])} | {gw['vms']} |" for gw in ds["gateways"]
    )
    bursts = "\n".join(
        f"| {hm(x['start'])}-{hm(x['end'])} | {x['minutes']} | {x['packets_sent_dropped']:,} "
        f"| {x['packets_received_dropped']:,} |"
        for x in gn["bursts"]
    )
    nights = ", ".join(f"{day(x['start'])[5:]} {hm(x['start'])}" for x in un["sessions"])
    sections = [
        "# Sample week: answer key for trainers",
        para(
            f"The flow logs in `data/samples/` cover {ds['start']} to {ds['end']} ({ds['days']}",
            f"days) of the organisation *{ds['organisation']}*: {ds['vms']} VMs behind two",
            f"StandardV2 NAT gateways, {ds['records']:,} records ({ds['ipv6_records']:,} from",
            f"IPv6 sources, {ds['records_with_null_counters']:,} with null counters) and",
            f"{ds['destinations']} distinct destinations. All of it is made by `natlens samples",
            f"--out DIR --seed {ds['seed']}` (`natlens/_samplegen/`); the numbers below are",
            "computed from the generated data and `tests/test_samples.py` checks them.",
        ),
        "| gateway | public IPs | VMs |\n|---|---|---|\n" + gateways,
        para(
            f"The organisation's median hour moves {ds['org_median_hourly_bytes'] / 1e9:.2f} GB",
            f"(both directions). Example costs use {price} USD per GB processed; the real",
            "price depends on region and currency.",
        ),
        "Load the data once:",
        "```python\nimport natlens\n\nsamples = natlens.sample_data()\n"
        "flows = natlens.read_flowlogs(samples.flowlogs)\n"
        "metrics = natlens.read_metrics(samples.metrics)\n```",
        "## 1. Billing spike: a bulk upload to Azure Storage",
        para(
            f"`{b['vm_name']}` ({b['vm_ip']}, team {b['team']}) starts uploading to the storage",
            f"address `{b['destination_ips'][0]}` (Storage.WestEurope) at {hm(b['start'])} UTC on",
            f"{day(b['start'])} and stops at {hm(b['end'])}: {bn['gb_sent']} GB in",
            f"{bn['minutes']} minutes through both public IPs of `{b['gateway']}`, about",
            f"{bn['gb_per_hour']} GB per hour, {bn['times_usual_hour']}x the organisation's",
            f"median hour. The peak hour ({hm(bn['peak_hour'])} UTC) moved",
            f"{bn['peak_hour_org_gb']} GB in all. At {price} USD/GB the upload costs about",
            f"{bn['cost_usd_at_0_045_per_gb']} USD in data processing alone.",
        ),
        para(
            "How to find it: bytes per hour over the week show one afternoon far above the",
            "rest as one spike event (`natlens.find_spikes`); within it, bytes by source and",
            "destination point at one VM and one address (`natlens.explain_spike`), which the",
            "Service Tags file labels Storage.WestEurope (`natlens.label_destinations`). ByteCount",
            "(Out) in",
            "the metrics shows the same plateau.",
        ),
        "## 2. Intermittent github.com problem: one heavy connection rate limited",
        para(
            f"On {day(gn['connection_start'])} `{g['vm_name']}` ({g['vm_ip']}) holds one heavy",
            f"download from github.com (`{g['destination_ips'][0]}`) from",
            f"{hm(gn['connection_start'])} to {hm(gn['connection_end'])} UTC",
            f"({gn['connection_gb_received']} GB). In {len(gn['bursts'])} bursts the gateway",
            f"drops packets on that connection: {gn['records_with_drops']} records with",
            "PacketsSentDropped or PacketsReceivedDropped above zero,",
            f"{gn['packets_received_dropped']:,} received and {gn['packets_sent_dropped']:,}",
            f"sent packets dropped, about {gn['received_drop_percent_in_bursts']}% of the",
            "received packets during the bursts. Other VMs reaching github.com see no drops.",
            f"Elsewhere in the week only {gn['background_records_with_drops_elsewhere']}",
            f"isolated records show a drop ({gn['background_packets_dropped_elsewhere']}",
            "packets in all): background noise.",
        ),
        "| bursts (UTC) | minutes | sent dropped | received dropped |\n|---|---|---|---|\n"
        + bursts,
        para(
            "How to find it: follow the troubleshooting path (`natlens.diagnose(flows,",
            f'sources="{g["vm_ip"]}", destinations="github.com", metrics=metrics,',
            "resolver=natlens.read_hostnames(samples.hostnames))`). DatapathAvailability is",
            "healthy; flows from the VM to github.com exist; records with dropped counters above",
            "zero single out one source and destination (`natlens.dropped_packets(flows)`).",
            "PacketDropCount in the metrics rises in the same minutes. The remedy: spread the",
            "transfer over more connections, or add public IPs.",
        ),
        f"## 3. SNAT exhaustion on {s['gateway']}",
        para(
            f"On {day(s['start'])} from {hm(s['start'])} to {hm(s['end'])} UTC",
            f"({sn['minutes_with_failed']} minutes) SNATConnectionCount with connection_state",
            f"Failed is above zero on `{s['gateway']}` (one IPv4 public IP):",
            f"{sn['snat_failed_total']:,} failed connection attempts, at most",
            f"{sn['snat_failed_peak_per_minute']:,} per minute, while a CI storm pushes",
            f"Attempted to about {sn['snat_attempted_storm_peak_per_minute']:,} per minute.",
            f"DatapathAvailability dips once to {sn['datapath_availability_min']}%",
            f"({hm(sn['datapath_availability_dip_at'])}) and is 100% otherwise: the gateway is",
            "healthy, it is out of ports.",
        ),
        para(
            f"In the flow log, `{s['vm_name']}` ({s['vm_ip']}) runs a package-mirror job that",
            f"reaches registry.npmjs.org (`{s['destination_ips'][0]}`) every minute from",
            f"{hm(sn['job_start'])} to {hm(sn['job_end'])}; its records stop after",
            f"{hm(sn['last_record_before'])} and come back at {hm(sn['first_record_after'])}",
            f"({sn['vm_records_during']} records in the window, {sn['vm_records_before']} before",
            f"and {sn['vm_records_after']} after). New connections from the whole gateway to",
            "that address are missing in the window; connections opened before it go on.",
        ),
        para(
            "How to find it: flows present before and after and none in between are",
            "connections that were never established, which the flow log cannot show and the",
            "metrics can (`natlens.diagnose(flows, sources=..., destinations=...,",
            "metrics=metrics)`, or SNATConnectionCount by connection_state for that day). The",
            "remedy: more public IPs on the gateway, or connection reuse in the job.",
        ),
        "## 4. A VM talking to an unapproved destination",
        para(
            f"`{u['vm_name']}` ({u['vm_ip']}, team {u['team']}) uploads to",
            f"`{u['destination_ips'][0]}` every night ({un['nights']} sessions, starting",
            f"{nights} UTC): {un['gb_sent']} GB in {un['records']} records. The address is in",
            "no Service Tag, no allowlisted CIDR and behind no allowlisted hostname, and no",
            "other VM talks to it.",
        ),
        para(
            "How to find it: check every destination against the allowlist (CIDRs, Service",
            "Tags through service_tags.json, hostnames through hostnames.json:",
            "`natlens.check_allowlist(flows, samples.allowlist,",
            "service_tags=samples.service_tags, resolver=natlens.read_hostnames(",
            "samples.hostnames))`). What is left unapproved is",
            f"{code(key['unapproved_destinations'])}: this upload and the beacon of event 6.",
            "`natlens.find_exfiltration(flows)` also points at the upload.",
        ),
        "## 5. A destination never seen before the last two days",
        para(
            f"`{n['hostname']}` ({code(n['destination_ips'])}) first appears at",
            f"{hm(nn['first_seen'])} UTC on {day(nn['first_seen'])}, after a deploy of",
            f"{code(n['vm_name'])} (team {n['team']}): {nn['records']} records until the end of",
            "the week, over IPv4 and IPv6. Every other destination of the week was seen before",
            f"{day(ds['last_two_days_start'])}. It is on the allowlist (an approved pilot): a",
            "change to notice, not a violation.",
        ),
        para(
            "How to find it: first-seen time per destination, keeping those first seen in the",
            "last two days (`natlens.new_destinations(flows,",
            f'baseline="{day(ds["last_two_days_start"])}")`).',
        ),
        "## 6. A beacon",
        para(
            f"`{c['vm_name']}` ({c['vm_ip']}, team {c['team']}) contacts",
            f"`{c['destination_ips'][0]}` every {cn['period_seconds']} seconds (a few seconds of",
            f"jitter) from {day(c['start'])} {hm(c['start'])} UTC to the end of the week:",
            f"{cn['contacts']:,} records over {cn['days_active']} days, a median of",
            f"{cn['bytes_sent_per_contact_median']} bytes sent and",
            f"{cn['bytes_received_per_contact_median']} received per contact. In the flow log",
            f"the median gap between records is {cn['median_gap_minutes']} minutes and",
            f"{cn['gaps_of_4_to_6_minutes_percent']}% of the gaps are 4 to 6 minutes.",
        ),
        para(
            "How to find it: the times between records per source and destination; a pair with",
            "many records, a tiny spread of gaps and tiny byte counts is a beacon",
            "(`natlens.find_beacons(flows)`). The destination is not on the allowlist either.",
        ),
    ]
    return "\n\n".join(sections) + "\n"
