"""Troubleshooting analyses on hand-computed frames (issue 3)."""

from __future__ import annotations

import datetime as dt
import re
from typing import Any

import polars as pl
import pytest
from analysis_frames import GW, at, flow, frame, metrics

import natlens

GITHUB = {"github.com": ["140.82.121.4", "140.82.121.3"]}

FLOWS = frame(
    flow(at(0), "10.0.0.4", "140.82.121.4", sent=100, received=900),
    flow(
        at(1), "10.0.0.4", "140.82.121.3", sent=100, received=900, packets_sent=50, sent_dropped=5
    ),
    flow(at(1.5), "10.0.0.4", "140.82.121.3", packets_sent=50, received_dropped=5),
    flow(
        at(3), "10.0.0.4", "140.82.121.3", packets_sent=10, packets_received=30, received_dropped=10
    ),
    flow(at(2), "10.0.1.7", "2606:50c0:8000::154", sent=5, received=5),
    flow(at(4), "10.0.0.5", "1.1.1.1", sent=5, received=5),
)


def test_find_flows_by_ip_cidr_hostname_and_window() -> None:
    by_ip = natlens.find_flows(FLOWS, sources="10.0.0.4", destinations="140.82.121.4")
    assert by_ip.height == 1
    assert by_ip.schema == natlens.FLOW_SCHEMA
    by_cidr = natlens.find_flows(FLOWS, sources="10.0.0.0/24", destinations="140.82.120.0/22")
    assert by_cidr.height == 4
    assert by_cidr.get_column("time").is_sorted()
    by_host = natlens.find_flows(FLOWS, destinations="GitHub.com", resolver=GITHUB)
    assert by_host.height == 4
    by_function = natlens.find_flows(FLOWS, destinations="github.com", resolver=lambda h: GITHUB[h])
    assert by_function.height == 4
    windowed = natlens.find_flows(FLOWS, start=at(1), end=at(3))
    assert windowed.get_column("time").to_list() == [at(1), at(1.5), at(2)]
    v6 = natlens.find_flows(FLOWS, sources=["10.0.1.0/24"], destinations="2606:50c0::/32")
    assert v6.get_column("destination_ip").to_list() == ["2606:50c0:8000::154"]
    naive = natlens.find_flows(FLOWS, start="2026-11-02T00:03", end=dt.datetime(2026, 11, 2, 0, 4))
    assert naive.height == 1


def test_find_flows_bad_input_is_a_clear_error() -> None:
    with pytest.raises(ValueError, match=re.escape("sources: '10.0.0.256' is not a valid IP")):
        natlens.find_flows(FLOWS, sources="10.0.0.256")
    with pytest.raises(ValueError, match="destinations: '2001:db8::/200' is not a valid"):
        natlens.find_flows(FLOWS, destinations="2001:db8::/200")
    with pytest.raises(ValueError, match="pass resolver="):
        natlens.find_flows(FLOWS, destinations="github.com")
    with pytest.raises(ValueError, match="start: 'yesterday' is not an ISO"):
        natlens.find_flows(FLOWS, start="yesterday")
    with pytest.raises(ValueError, match=r"end: .* is not after start"):
        natlens.find_flows(FLOWS, start=at(5), end=at(1))


def test_find_flows_by_nat_ip_and_gateway() -> None:
    """The four filters of the vocabulary, each one value or many, combine with AND."""
    gw2 = GW.replace("/GW1", "/GW2")
    flows = frame(
        flow(at(0), "10.0.0.4", "1.1.1.1", "20.1.1.1"),
        flow(at(1), "10.0.0.4", "1.1.1.1", "20.1.1.2"),
        flow(at(2), "10.0.0.5", "1.1.1.1", "20.2.2.2", gateway=gw2),
    )
    assert natlens.find_flows(flows, nat_ips="20.1.1.2").height == 1
    assert natlens.find_flows(flows, nat_ips=["20.1.1.1", "20.2.2.0/24"]).height == 2
    # a resource id in any case, or the gateway's name
    assert natlens.find_flows(flows, gateways=GW.lower()).height == 2
    assert natlens.find_flows(flows, gateways="gw2").get_column("source_ip").to_list() == [
        "10.0.0.5"
    ]
    assert natlens.find_flows(flows, gateways=["GW1", gw2]).height == 3
    assert natlens.find_flows(flows, gateways="GW1", nat_ips="20.2.2.2").height == 0
    assert natlens.find_flows(flows, gateways="GW").height == 0  # names match whole
    with pytest.raises(ValueError, match="gateways: expected NAT gateway resource ids"):
        natlens.find_flows(flows, gateways=[])


def test_dropped_packets_hand_computed() -> None:
    result = natlens.dropped_packets(FLOWS)
    assert result.height == 1
    row = result.row(0, named=True)
    assert (row["source_ip"], row["destination_ip"]) == ("10.0.0.4", "140.82.121.3")
    assert row["packets_sent"] == 110
    assert row["packets_received"] == 32
    assert row["packets_sent_dropped"] == 5
    assert row["packets_received_dropped"] == 15
    assert row["packets_dropped"] == 20
    assert row["drop_rate"] == pytest.approx(20 / 162)
    assert row["first_drop"] == at(1)
    assert row["last_drop"] == at(3)
    assert row["drop_minutes"] == 2  # 00:01 (twice) and 00:03
    assert row["minutes"] == [at(1), at(3)]
    assert natlens.dropped_packets(FLOWS, sources="10.0.0.5").height == 0


def healthy_metrics(
    minutes: int = 10, availability: float = 100.0
) -> list[tuple[dt.datetime, str, str | None, float]]:
    return [(at(m), "DatapathAvailability", None, availability) for m in range(minutes)]


def test_diagnose_rate_limited_when_drops() -> None:
    result = natlens.diagnose(
        FLOWS,
        sources="10.0.0.4",
        destinations="github.com",
        resolver=GITHUB,
        metrics=metrics(*healthy_metrics()),
    )
    assert result.verdict == "rate_limited"
    assert [s.status for s in result.steps] == ["ok", "ok", "ok", "problem"]
    assert "rate limited" in result.summary
    assert result.step("drops").evidence.height == 1
    table = result.to_frame()
    assert table.columns == ["step", "status", "finding"]
    assert table.height == 4
    assert "rate_limited" in str(result)
    assert "DataFrame" not in repr(result)  # evidence frames stay out of the repr
    markdown = result._repr_markdown_()
    assert markdown.startswith("**rate_limited**")
    assert "| drops | problem |" in markdown


def test_diagnose_healthy() -> None:
    result = natlens.diagnose(
        FLOWS, sources="10.0.0.5", destinations="1.1.1.1", metrics=metrics(*healthy_metrics())
    )
    assert result.verdict == "healthy"
    assert result.step("health").status == "ok"
    assert result.step("connection").evidence.height == 1


def test_diagnose_never_established_without_and_with_snat_failures() -> None:
    # 10.0.0.4 talks to others, 1.1.1.1 is reached by 10.0.0.5: this pair alone has no flows.
    plain = natlens.diagnose(
        FLOWS, sources="10.0.0.4", destinations="1.1.1.1", metrics=metrics(*healthy_metrics())
    )
    assert plain.verdict == "never_established"
    assert "NSG" in plain.step("connection").finding
    snat = metrics(*healthy_metrics(), (at(2), "SNATConnectionCount", "Failed", 40.0))
    failing = natlens.diagnose(FLOWS, sources="10.0.0.4", destinations="1.1.1.1", metrics=snat)
    assert failing.verdict == "snat_exhaustion"
    assert failing.step("connection").evidence.get_column("total").to_list() == [40.0]


SNAT_FAILING = metrics(*healthy_metrics(), (at(2), "SNATConnectionCount", "Failed", 40.0))


def test_diagnose_unknown_source_is_its_own_verdict() -> None:
    # The gateway fails SNAT connections, but 10.9.9.9 is in no record: that says nothing
    # about 10.9.9.9's connections, so no SNAT verdict.
    result = natlens.diagnose(
        FLOWS, sources="10.9.9.9", destinations="github.com", resolver=GITHUB, metrics=SNAT_FAILING
    )
    assert result.verdict == "unknown_source"
    assert result.verdict in natlens._troubleshoot.VERDICTS
    connection = result.step("connection")
    assert connection.status == "problem"
    assert result.summary == connection.finding
    assert connection.finding.startswith("no record from source '10.9.9.9' to any destination")
    for advice in ("Check the IP", "the time range", "subnet uses this NAT gateway"):
        assert advice in connection.finding
    assert "SNAT" not in result.summary
    assert "widen" not in result.summary  # not in the data outside the window either
    assert connection.evidence.select("sources", "destinations", "records").rows() == [(3, 4, 6)]
    assert result.step("drops").status == "unknown"
    # A CIDR or a list that matches nobody is unknown too; a source alone as well.
    nobody = natlens.diagnose(FLOWS, sources=["10.9.0.0/16", "10.8.0.1"])
    assert nobody.verdict == "unknown_source"
    assert "source ['10.9.0.0/16', '10.8.0.1']" in nobody.summary


def test_diagnose_unknown_destination_is_its_own_verdict() -> None:
    result = natlens.diagnose(
        FLOWS, sources="10.0.0.4", destinations="8.8.8.8", metrics=metrics(*healthy_metrics())
    )
    assert result.verdict == "unknown_destination"
    finding = result.step("connection").finding
    assert finding.startswith("no record to destination '8.8.8.8' from any source")
    assert "another path" in finding
    assert "SNAT" not in finding
    # With SNAT failures on the source's gateway, the finding says they may be why.
    failing = natlens.diagnose(
        FLOWS, sources="10.0.0.4", destinations="8.8.8.8", metrics=SNAT_FAILING
    )
    assert failing.verdict == "unknown_destination"
    assert "SNATConnectionCount Failed = 40 on the source's gateway" in failing.summary
    # Both unknown: the source is named first, it is the first thing to check.
    both = natlens.diagnose(FLOWS, sources="10.9.9.9", destinations="8.8.8.8")
    assert both.verdict == "unknown_source"


def test_diagnose_unknown_in_the_window_but_present_outside() -> None:
    # 10.0.0.5 only appears at minute 4: a window before it says so, and to widen it.
    result = natlens.diagnose(
        FLOWS, sources="10.0.0.5", destinations="1.1.1.1", start=at(0), end=at(3)
    )
    assert result.verdict == "unknown_source"
    assert "it has 1 records outside the window, from 2026-11-02 00:04" in result.summary
    assert "widen the time range" in result.summary
    late = natlens.diagnose(FLOWS, sources="10.0.0.4", destinations="1.1.1.1", end=at(3))
    assert late.verdict == "unknown_destination"
    assert "outside the window" in late.summary


def test_diagnose_snat_episode_while_flows_exist() -> None:
    # a job active every minute for three hours, silent while SNAT attempts fail
    steady = frame(
        *[flow(at(m), "10.0.0.8", "151.101.1.1", sent=10) for m in range(180) if not 60 <= m < 70]
    )
    snat = metrics(
        *healthy_metrics(180),
        (at(60), "SNATConnectionCount", "Failed", 10.0),
        (at(64), "SNATConnectionCount", "Failed", 5.0),
        (at(69), "SNATConnectionCount", "Failed", 1.0),
        (at(64), "SNATConnectionCount", "Attempted", 500.0),
    )
    result = natlens.diagnose(steady, sources="10.0.0.8", destinations="151.101.1.1", metrics=snat)
    assert result.verdict == "snat_exhaustion"
    episodes = result.step("connection").evidence
    assert episodes.rows() == [(at(60), at(70), 10, 16.0, 0, 10.0)]
    assert "flows in 0 of 10 minutes (about 10 expected" in result.summary
    # the same failures while the pair keeps flowing: noted, not the cause
    busy = pl.concat(
        [steady, frame(*[flow(at(m), "10.0.0.8", "151.101.1.1") for m in range(60, 70)])]
    )
    healthy = natlens.diagnose(busy, sources="10.0.0.8", metrics=snat)
    assert healthy.verdict == "healthy"
    assert "did not clearly vanish" in healthy.step("connection").finding
    # a pair that is rarely active around the episode says nothing either way
    rare = frame(flow(at(0), "10.0.0.8", "151.101.1.1"), flow(at(170), "10.0.0.8", "151.101.1.1"))
    assert natlens.diagnose(rare, sources="10.0.0.8", metrics=snat).verdict == "healthy"


def test_diagnose_unhealthy_gateway_comes_first() -> None:
    low = metrics(*[(at(m), "DatapathAvailability", None, 50.0) for m in range(20)])
    result = natlens.diagnose(FLOWS, sources="10.0.0.4", destinations="140.82.121.3", metrics=low)
    assert result.verdict == "gateway_unhealthy"
    assert "also a problem: drops" in result.summary


def test_diagnose_without_metrics_or_logs() -> None:
    unknown = natlens.diagnose(FLOWS, sources="10.0.0.5", destinations="1.1.1.1")
    assert unknown.step("health").status == "unknown"
    assert unknown.verdict == "healthy"
    empty = natlens.diagnose(natlens.FLOW_SCHEMA.to_frame(eager=True), sources="10.0.0.5")
    assert empty.verdict == "no_flow_logs"
    with pytest.raises(ValueError, match="metrics: missing column"):
        natlens.diagnose(FLOWS, metrics=pl.DataFrame({"time": [at(0)]}))
    with pytest.raises(KeyError, match="no step 'dns'"):
        unknown.step("dns")


# -- the planted events of the sample week -------------------------------------------------


@pytest.fixture(scope="module")
def sample_metrics(samples: natlens.SampleData) -> pl.DataFrame:
    return natlens.read_metrics(samples.metrics)


def event(answer_key: dict[str, Any], kind: str) -> dict[str, Any]:
    found: dict[str, Any] = next(e for e in answer_key["events"] if e["kind"] == kind)
    return found


def test_planted_github_drops_are_rate_limiting(
    sample_flows: pl.DataFrame,
    sample_metrics: pl.DataFrame,
    answer_key: dict[str, Any],
    samples: natlens.SampleData,
) -> None:
    github = event(answer_key, "github_dropped_packets")
    hosts = natlens.read_hostnames(samples.hostnames)
    week = natlens.diagnose(
        sample_flows,
        sources=github["vm_ip"],
        destinations=github["hostname"],
        resolver=hosts,
        metrics=sample_metrics,
    )
    assert week.verdict == "rate_limited"
    assert week.step("health").status == "ok"
    assert week.step("connection").status == "ok"
    drops = week.step("drops").evidence
    assert drops.get_column("destination_ip").to_list() == github["destination_ips"]
    numbers = github["numbers"]
    assert drops.item(0, "packets_received_dropped") == numbers["packets_received_dropped"]
    assert drops.item(0, "packets_sent_dropped") == numbers["packets_sent_dropped"]
    assert drops.item(0, "drop_minutes") == numbers["records_with_drops"]
    day = natlens.diagnose(
        sample_flows,
        sources=github["vm_ip"],
        destinations=github["destination_ips"],
        metrics=sample_metrics,
        start=github["start"][:10],
        end=github["end"],
    )
    assert day.verdict == "rate_limited"


def test_planted_snat_exhaustion(
    sample_flows: pl.DataFrame,
    sample_metrics: pl.DataFrame,
    answer_key: dict[str, Any],
    samples: natlens.SampleData,
) -> None:
    snat = event(answer_key, "snat_exhaustion")
    hosts = natlens.read_hostnames(samples.hostnames)
    for destination in (snat["hostname"], snat["destination_ips"]):
        result = natlens.diagnose(
            sample_flows,
            sources=snat["vm_ip"],
            destinations=destination,
            resolver=hosts,
            metrics=sample_metrics,
        )
        assert result.verdict == "snat_exhaustion"
        assert result.step("health").status == "ok"  # availability dips, but stays above 90%
        episodes = result.step("connection").evidence
        assert episodes.height == 1
        start = dt.datetime.fromisoformat(snat["start"])
        end = dt.datetime.fromisoformat(snat["end"])
        assert (episodes.item(0, "start"), episodes.item(0, "end")) == (start, end)
        assert episodes.item(0, "total") == snat["numbers"]["snat_failed_total"]
    direct = natlens.find_flows(
        sample_flows,
        sources=snat["vm_ip"],
        destinations=snat["destination_ips"],
        start=snat["start"],
        end=snat["end"],
    )
    assert direct.height == snat["numbers"]["vm_records_during"]


def test_sample_week_unknown_source_is_not_snat_exhaustion(
    sample_flows: pl.DataFrame, sample_metrics: pl.DataFrame, samples: natlens.SampleData
) -> None:
    # The example: a source that never appears used to read "SNAT port exhaustion".
    result = natlens.diagnose(
        sample_flows,
        sources="10.99.99.99",
        destinations="github.com",
        metrics=sample_metrics,
        resolver=natlens.read_hostnames(samples.hostnames),
    )
    assert result.verdict == "unknown_source"
    assert "SNAT" not in result.summary
    gateways = result.step("connection").evidence
    assert gateways.get_column("sources").sum() == sample_flows.get_column("source_ip").n_unique()


def test_planted_github_drops_in_dropped_packets(
    sample_flows: pl.DataFrame, answer_key: dict[str, Any]
) -> None:
    github = event(answer_key, "github_dropped_packets")
    top = natlens.dropped_packets(sample_flows).row(0, named=True)
    assert (top["source_ip"], [top["destination_ip"]]) == (
        github["vm_ip"],
        github["destination_ips"],
    )
    assert top["drop_minutes"] == github["numbers"]["records_with_drops"]
