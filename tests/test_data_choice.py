"""``natlens.read_data``: the notebooks' YOUR DATA choice as one call.

The samples, a downloaded folder of real-format ``PT1H.json`` blobs, a ``natlens sync``
cache, and Log Analytics through the real client against the loopback query API; what
each brings along (metrics, side files), and the errors a wrong value gets.
"""

from __future__ import annotations

import gzip
import json
import sys
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import polars as pl
import pytest
from polars.testing import assert_frame_equal

import natlens
from natlens._enrich import INVENTORY_COLUMNS, SERVICE_TAGS_SCHEMA
from natlens.azure import read_gateway_metrics

# The loopback Log Analytics service and its data live with the Azure tests.
AZURE_TESTS = Path(__file__).resolve().parent / "azure"
if str(AZURE_TESTS) not in sys.path:
    sys.path.insert(0, str(AZURE_TESTS))

from livedata import GATEWAYS, LA_TYPES, START, StaticToken, la_table, make_flows  # noqa: E402
from loopback import LoopbackServer  # noqa: E402

CONTAINER = "insights-logs-natgatewayflowlogsv1"
ORDER = ["time", "source_ip", "destination_ip", "nat_gateway_ip", "resource_id"]
WORKSPACE = "5a1e9b3c-0000-4000-8000-00000000beef"
HOURS = ("d=09/h=00", "d=09/h=01", "d=10/h=14")  # the last is inside the billing spike


@pytest.fixture(scope="module")
def data() -> natlens.FlowData:
    """``read_data()`` on the samples, once."""
    return natlens.read_data()


def _sample_blobs(samples: natlens.SampleData) -> list[Path]:
    """A few real blobs of each sample gateway (gzip in the samples)."""
    blobs = sorted(
        p for p in samples.flowlogs.rglob("PT1H.json.gz") if any(h in str(p) for h in HOURS)
    )
    assert len(blobs) == 2 * len(HOURS)
    return blobs


def _download(samples: natlens.SampleData, folder: Path) -> list[Path]:
    """The blobs as azcopy downloads them: plain ``PT1H.json`` in the storage tree."""
    written = []
    for blob in _sample_blobs(samples):
        target = folder / blob.relative_to(samples.flowlogs).with_suffix("")
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(gzip.decompress(blob.read_bytes()))
        written.append(target)
    return written


def _span_line(flows: pl.DataFrame) -> str:
    """The line the notebooks printed before read_data."""
    first, last = flows["time"].min(), flows["time"].max()
    assert isinstance(first, datetime)
    assert isinstance(last, datetime)
    return f"{flows.height:,} flow records from {first:%Y-%m-%d %H:%M} to {last:%Y-%m-%d %H:%M} UTC"


# --------------------------------------------------------------------------- the samples


def test_samples_are_the_shipped_week_with_every_side_file(
    data: natlens.FlowData, samples: natlens.SampleData, sample_flows: pl.DataFrame
) -> None:
    assert data.flows.schema == natlens.FLOW_SCHEMA
    assert_frame_equal(data.flows, sample_flows)
    assert data.metrics is not None
    assert data.metrics.schema == natlens.METRICS_SCHEMA
    assert_frame_equal(data.metrics, natlens.read_metrics(samples.metrics))
    assert_frame_equal(data.inventory, natlens.read_inventory(samples.inventory))
    assert data.resolver == natlens.read_hostnames(samples.hostnames)
    assert_frame_equal(data.service_tags, natlens.read_service_tags(samples.service_tags))
    assert data.allowlist == tuple(natlens.read_allowlist(samples.allowlist))
    assert data.report is not None
    assert data.report.ok
    assert data.report.records == sample_flows.height
    assert str(samples.root) in data.source


def test_the_summary_says_the_span_and_what_came_with_it(
    data: natlens.FlowData, sample_flows: pl.DataFrame
) -> None:
    first, second = str(data).splitlines()
    assert first.startswith(_span_line(sample_flows) + " (the shipped samples, ")
    assert data.first == sample_flows["time"].min()
    assert data.last == sample_flows["time"].max()
    assert data.metrics is not None
    assert data.allowlist is not None
    assert isinstance(data.resolver, dict)
    assert second == (
        f"metrics: {data.metrics.height:,} rows; inventory: {data.inventory.height:,} IPs; "
        f"hostnames: {len(data.resolver):,} hosts; "
        f"service tags: {data.service_tags.height:,} prefixes; "
        f"allowlist: {len(data.allowlist):,} entries"
    )
    # The frames are not printed: a value in a notebook reads in one line.
    assert repr(data).startswith("FlowData(source='the shipped samples, ")
    assert f"flows=<{sample_flows.height:,} records>" in repr(data)


def test_a_window_cuts_flows_and_metrics_alike(
    samples: natlens.SampleData, sample_flows: pl.DataFrame
) -> None:
    start, end = datetime(2026, 11, 10, 12, tzinfo=UTC), datetime(2026, 11, 10, 18, tzinfo=UTC)
    cut = natlens.read_data("samples", start="2026-11-10T12:00", end="2026-11-10T18:00")
    in_window = pl.col("time").is_between(start, end, closed="left")
    assert_frame_equal(cut.flows, sample_flows.filter(in_window))
    metrics = natlens.read_metrics(samples.metrics)
    assert cut.metrics is not None
    assert_frame_equal(cut.metrics, metrics.filter(in_window))
    assert cut.first == start
    assert cut.last == end - timedelta(minutes=1)


def test_a_side_file_given_replaces_the_samples_own(tmp_path: Path) -> None:
    allowlist = tmp_path / "allowlist.txt"
    allowlist.write_text("# ours\n10.0.0.0/8\ngithub.com\n")
    data = natlens.read_data(
        "samples",
        start="2026-11-09",
        end="2026-11-09T02:00",
        allowlist=allowlist,
        resolver={"GitHub.com": ["140.82.121.4"]},
    )
    assert data.allowlist == ("10.0.0.0/8", "github.com")
    assert data.resolver == {"github.com": ["140.82.121.4"]}
    assert data.inventory.height > 0  # the samples' own, not given


def test_side_values_in_memory_are_taken_as_they_are() -> None:
    tags = pl.DataFrame({"tag": ["Storage"], "prefix": ["20.60.0.0/16"]})

    def lookup(host: str) -> list[str]:
        return ["140.82.121.4"]

    data = natlens.read_data(
        "samples",
        end="2026-11-09T01:00",
        service_tags=tags,
        resolver=lookup,
        inventory=pl.DataFrame({"ip": ["10.10.3.7"], "vm_name": ["vm-x"]}),
    )
    assert data.service_tags is tags
    assert data.resolver is lookup
    assert data.inventory.columns == [*INVENTORY_COLUMNS]
    assert data.metrics is not None
    assert data.allowlist is not None
    assert str(data).splitlines()[1] == (
        f"metrics: {data.metrics.height:,} rows; inventory: 1 IP; hostnames: a lookup function; "
        f"service tags: 1 prefix; allowlist: {len(data.allowlist):,} entries"
    )
    with pytest.raises(ValueError, match=r"^service_tags: missing column\(s\) \['prefix'\]"):
        natlens.read_data("samples", end="2026-11-09T01:00", service_tags=tags.drop("prefix"))


# --------------------------------------------------------------------------- your files


def test_a_downloaded_folder_is_read_with_a_progress_bar(
    samples: natlens.SampleData, tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    folder = tmp_path / "flowlogs"
    blobs = _download(samples, folder)
    data = natlens.read_data(str(folder))
    assert capfd.readouterr().err.count("natlens: reading") >= 1  # the bar the cells showed
    expected = natlens.read_flowlogs(folder)
    assert_frame_equal(data.flows, expected)
    assert data.flows.height > 0
    assert data.source == str(folder)
    assert data.report is not None
    assert sorted(data.report.files) == sorted(map(str, blobs))
    # Nothing came with it: metrics None, empty lookups, no allowlist (no policy).
    assert data.metrics is None
    assert data.inventory.columns == list(INVENTORY_COLUMNS)
    assert data.inventory.height == 0
    assert data.resolver == {}
    assert data.service_tags.schema == SERVICE_TAGS_SCHEMA
    assert data.service_tags.height == 0
    assert data.allowlist is None
    assert str(data).splitlines()[1] == (
        "metrics: none; inventory: none; hostnames: none; service tags: none; allowlist: none"
    )
    # The analyses take the empty lookups: unknown VMs have no name, no destination a tag.
    talkers = natlens.label_sources(natlens.top_talkers(data.flows, n=3), inventory=data.inventory)
    assert talkers.get_column("vm_name").null_count() == 3
    tagged = natlens.label_destinations(data.flows.head(5), service_tags=data.service_tags)
    assert tagged.get_column("service_tag").null_count() == 5


def test_a_folder_with_your_side_files_and_metrics(
    samples: natlens.SampleData,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    _download(samples, tmp_path / "flowlogs")
    monkeypatch.setenv("HOME", str(tmp_path))  # "~/flowlogs", as the cell's comment writes it
    data = natlens.read_data(
        "~/flowlogs",
        metrics=samples.metrics,
        inventory=str(samples.inventory),
        resolver=samples.hostnames,
        service_tags=samples.service_tags,
        allowlist=samples.allowlist,
        progress=False,
    )
    assert_frame_equal(data.flows, natlens.read_flowlogs(tmp_path / "flowlogs"))
    assert_frame_equal(data.inventory, natlens.read_inventory(samples.inventory))
    assert data.resolver == natlens.read_hostnames(samples.hostnames)
    assert data.allowlist == tuple(natlens.read_allowlist(samples.allowlist))
    # Metrics from a file are all of it: only start/end cut them.
    assert data.metrics is not None
    assert_frame_equal(data.metrics, natlens.read_metrics(samples.metrics))


def test_gateways_filter_a_folder(samples: natlens.SampleData, tmp_path: Path) -> None:
    _download(samples, tmp_path)
    every = natlens.read_flowlogs(tmp_path)
    assert every.get_column("resource_id").n_unique() == 2
    data = natlens.read_data(tmp_path, gateways="natgw-eng-weu", progress=False)
    expected = every.filter(pl.col("resource_id").str.ends_with("/NATGW-ENG-WEU"))
    assert 0 < data.flows.height < every.height
    assert_frame_equal(data.flows.sort(ORDER), expected.sort(ORDER))


def test_a_sync_cache_is_one_source_read_once(samples: natlens.SampleData, tmp_path: Path) -> None:
    """``natlens sync`` keeps each blob twice (mirror and Parquet): the cache is read once."""
    cache = tmp_path / "prod"
    blobs = _download(samples, cache / "blobs" / CONTAINER)
    manifest = []
    for blob in blobs:
        name = str(blob.relative_to(cache / "blobs" / CONTAINER))
        natlens.write_parquet(natlens.read_flowlogs(blob), cache / "parquet", part=name)
        manifest.append(json.dumps({"name": name}))
    (cache / "manifest.jsonl").write_text("\n".join(manifest) + "\n")
    data = natlens.read_data(str(cache), progress=False)
    expected = natlens.read_flowlogs(cache / "blobs")
    assert data.flows.height == expected.height
    assert_frame_equal(data.flows.sort(ORDER), expected.sort(ORDER))


# --------------------------------------------------------------------------- bad values


def _raised_here(error: pytest.ExceptionInfo[BaseException]) -> None:
    """The error comes from read_data's own checks, not from deep inside a library."""
    assert Path(str(error.traceback[-1].path)).name == "_flowdata.py"


def test_a_folder_that_does_not_exist_is_named(tmp_path: Path) -> None:
    missing = tmp_path / "Downloads" / "flowlogs"
    with pytest.raises(FileNotFoundError, match=r"^source: no such file or folder") as error:
        natlens.read_data(str(missing))
    assert str(missing) in str(error.value)
    assert "'samples'" in str(error.value)
    _raised_here(error)
    with pytest.raises(FileNotFoundError, match="source: no such file"):
        natlens.read_data([tmp_path, missing])


@pytest.mark.parametrize(
    ("typo", "meant"),
    [("sample", "samples"), ("Samples ", "samples"), ("loganalytics", "log-analytics")],
)
def test_an_unknown_choice_says_the_choices(typo: str, meant: str) -> None:
    with pytest.raises(
        ValueError, match=rf"^source: unknown choice .* did you mean {meant!r}"
    ) as e:
        natlens.read_data(typo)
    _raised_here(e)


def test_not_a_source_at_all() -> None:
    with pytest.raises(TypeError, match=r"^source: expected 'samples' or 'log-analytics'"):
        natlens.read_data(42)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match=r"^source: expected "):
        natlens.read_data([])


@pytest.mark.parametrize(
    "argument", ["metrics", "inventory", "resolver", "service_tags", "allowlist"]
)
def test_side_files_that_do_not_exist_are_named_before_any_read(
    argument: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    def no_read(*args: Any, **kwargs: Any) -> None:
        raise AssertionError("flows read before the side files were checked")

    monkeypatch.setattr("natlens._flowdata.read_flowlogs", no_read)
    monkeypatch.setattr("natlens._flowdata.scan_flowlogs", no_read)
    given: dict[str, Any] = {argument: "nowhere.csv"}
    with pytest.raises(FileNotFoundError, match=rf"^{argument}: no such file") as error:
        natlens.read_data("samples", **given)
    assert str(Path("nowhere.csv").absolute()) in str(error.value)
    _raised_here(error)


def test_other_bad_arguments_are_named() -> None:
    with pytest.raises(ValueError, match=r"^end: .* is not after start"):
        natlens.read_data("samples", start="2026-11-10", end="2026-11-09")
    with pytest.raises(ValueError, match=r"^workspace_id: source='log-analytics' needs"):
        natlens.read_data("log-analytics")
    with pytest.raises(ValueError, match=r"^metrics: missing column\(s\) \['resource_id'"):
        natlens.read_data(
            "samples",
            end="2026-11-09T01:00",
            metrics=pl.DataFrame({"time": [datetime(2026, 11, 9, tzinfo=UTC)]}),
        )
    with pytest.raises(TypeError, match=r"^resolver: expected a hostnames file"):
        natlens.read_data("samples", end="2026-11-09T01:00", resolver=42)  # type: ignore[arg-type]


@pytest.mark.parametrize("module", ["azure.monitor.query", "azure.identity"])
def test_log_analytics_without_the_azure_extra_says_what_to_install(
    module: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, module, None)  # as if not installed
    with pytest.raises(ImportError, match=r"natlens\[azure\]") as error:
        natlens.read_data("log-analytics", workspace_id=WORKSPACE)
    assert "source='log-analytics' needs the azure extra" in str(error.value)
    _raised_here(error)


def test_live_metrics_without_the_azure_extra_say_what_to_install(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setitem(sys.modules, "azure.monitor.querymetrics", None)
    with pytest.raises(ImportError, match=r"^metrics from an Azure Monitor endpoint needs"):
        natlens.read_data(
            "samples",
            end="2026-11-09T01:00",
            metrics="https://127.0.0.1:9",  # never reached: the import fails first
        )


# --------------------------------------------------------------------------- Log Analytics


@pytest.fixture(scope="module")
def live_flows() -> pl.DataFrame:
    return make_flows(hours=6)


@pytest.fixture(scope="module")
def server(live_flows: pl.DataFrame) -> Iterator[LoopbackServer]:
    from livedata import make_metrics

    loopback = LoopbackServer()  # 127.0.0.1 only
    loopback.state.tables = {
        "NatGatewayFlowlogsV1": la_table(live_flows, LA_TYPES, "NatGatewayFlowlogsV1")
    }
    loopback.state.metrics = make_metrics(hours=6)
    yield loopback
    loopback.close()


def _read_live(server: LoopbackServer, **arguments: Any) -> natlens.FlowData:
    return natlens.read_data(
        "log-analytics",
        workspace_id=WORKSPACE,
        endpoint=server.endpoint,
        credential=StaticToken(),
        progress=False,
        **arguments,
    )


def test_log_analytics_through_the_real_client(
    server: LoopbackServer, live_flows: pl.DataFrame
) -> None:
    server.reset()
    start, end = START + timedelta(hours=1), START + timedelta(hours=4)
    data = _read_live(server, start=start, end=end, gateways="ng-weu-1")
    expected = live_flows.filter(
        pl.col("time").is_between(start, end, closed="left"),
        pl.col("resource_id") == GATEWAYS[0],
    )
    assert data.flows.schema == natlens.FLOW_SCHEMA
    assert data.flows.height == expected.height > 0
    assert_frame_equal(data.flows.sort(ORDER), expected.sort(ORDER))
    # The gateway filter ran on the server, in the workspace's query API.
    queries = [e for e in server.state.log if "getschema" not in e["body"]["query"]]
    assert queries
    assert all(e["path"] == f"/v1/workspaces/{WORKSPACE}/query" for e in queries)
    assert all("ng-weu-1" in e["body"]["query"].lower() for e in queries)
    assert data.source == f"Log Analytics workspace {WORKSPACE}"
    assert data.report is None
    assert data.metrics is None  # none asked for
    assert data.inventory.height == 0


def test_log_analytics_with_live_metrics_for_its_gateways(
    server: LoopbackServer, live_flows: pl.DataFrame
) -> None:
    server.reset()
    start, end = START, START + timedelta(hours=2)
    data = _read_live(server, start=start, end=end, metrics=server.endpoint)
    assert data.metrics is not None
    assert data.metrics.schema == natlens.METRICS_SCHEMA
    # Asked for every gateway the flows went through, over the window.
    asked = {
        rid.upper()
        for e in server.state.log
        if "resourceids" in e["body"]
        for rid in e["body"]["resourceids"]
    }
    assert asked == set(live_flows.get_column("resource_id").unique())
    expected = read_gateway_metrics(
        sorted(asked), start, end, endpoint=server.endpoint, credential=StaticToken()
    )
    keys = ["time", "resource_id", "metric", "protocol", "direction", "connection_state"]
    assert_frame_equal(data.metrics.sort(keys), expected.sort(keys))
    assert data.metrics.get_column("time").min() == start


def test_log_analytics_reads_the_last_day_by_default() -> None:
    """Records 1 to 20 hours old come back; 28 to 34 hours old do not (no edge case)."""
    now = datetime.now(UTC).replace(second=0, microsecond=0)
    flows = make_flows(hours=36)
    shifted = flows.with_columns(pl.col("time") + (now - START - timedelta(hours=35)))
    age = now - pl.col("time")
    inside = shifted.filter(age.is_between(timedelta(hours=1), timedelta(hours=20)))
    outside = shifted.filter(age.is_between(timedelta(hours=28), timedelta(hours=34)))
    loopback = LoopbackServer()
    try:
        loopback.state.tables = {
            "NatGatewayFlowlogsV1": la_table(
                pl.concat([inside, outside]), LA_TYPES, "NatGatewayFlowlogsV1"
            )
        }
        data = _read_live(loopback)
    finally:
        loopback.close()
    assert inside.height > 0
    assert outside.height > 0
    assert_frame_equal(data.flows.sort(ORDER), inside.sort(ORDER))
