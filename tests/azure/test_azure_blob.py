"""Blob Storage sync against a real Azurite: prefixes, growth, torn lines, faults, kills."""

from __future__ import annotations

import gzip
import os
import random
import signal
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import polars as pl
import pytest
from blobfaults import ACCOUNT, KEY, blob_name, file_blobs
from livedata import GATEWAYS, START, make_flows

# The fixtures (Azurite, the loopback service, the KQL analyzer) come from a module: a
# conftest.py here would clash with tests/conftest.py under --doctest-modules.
from livefixtures import *  # noqa: F403

import natlens
from natlens._cli import main
from natlens.azure import sync_blobs

KEYS = [*natlens.FLOW_SCHEMA.names()]


@pytest.fixture(scope="module")
def blobs() -> dict[tuple[str, str], tuple[bytes, pl.DataFrame]]:
    return file_blobs(make_flows(seed=3, hours=6))


def _upload(container: Any, items: dict[tuple[str, str], tuple[bytes, pl.DataFrame]]) -> None:
    for (rid, hour), (data, _) in items.items():
        client = container.get_blob_client(blob_name(rid, hour))
        client.create_append_blob()
        client.append_block(data)


def _hour(h: int) -> str:
    t = START + timedelta(hours=h)
    return f"y={t:%Y}/m={t:%m}/d={t:%d}/h={t:%H}/m=00"


def _mirrored(cache: Path, name: str) -> Path:
    """The mirror file of blob ``name``."""
    from natlens.azure._blob import _mirror_path

    return _mirror_path(cache / "blobs", name)


def _store(cache: Path) -> pl.DataFrame:
    return natlens.scan_parquet(cache / "parquet").collect().sort(KEYS, nulls_last=True)


def _expected(
    items: dict[tuple[str, str], tuple[bytes, pl.DataFrame]], keys: list[tuple[str, str]]
) -> pl.DataFrame:
    frames = [items[k][1] for k in keys if k in items]
    return pl.concat(frames).sort(KEYS, nulls_last=True)


def _sync(cache: Path, conn: str, **options: Any) -> Any:
    start = options.pop("start", START)
    end = options.pop("end", START + timedelta(hours=6))
    options.setdefault("retry_backoff", 0)
    return sync_blobs(
        cache,
        start,
        end,
        connection_string=conn,
        container=options.pop("container_name"),
        progress=False,
        **options,
    )


def test_sync_lists_only_the_prefixes_the_range_needs(
    container: Any, proxy: Any, blobs: Any, tmp_path: Path
) -> None:
    _upload(container, blobs)
    # Noise the sync must never list: another category's folders, an old day.
    container.upload_blob("resourceId=/SUBSCRIPTIONS/X/other.json", b"{}")
    old = GATEWAYS[0] + "/y=2024/m=01/d=01/h=00/m=00/PT1H.json"
    container.get_blob_client("resourceId=" + old).upload_blob(b"")
    cache = tmp_path / "cache"
    report = _sync(
        cache,
        proxy.connection_string,
        container_name=container.container_name,
        start=START + timedelta(hours=1, minutes=20),
        end=START + timedelta(hours=3),
    )
    # Hours 1 and 2 hold the range, hour 3 the records received late.
    wanted = [(g, _hour(h)) for g in GATEWAYS for h in (1, 2, 3)]
    assert _store(cache).equals(_expected(blobs, wanted))
    assert report.blobs_new == report.blobs_seen == 9
    assert report.prefixes_listed == 9
    assert sorted(report.gateways) == sorted(GATEWAYS)
    lists = [
        parse_qs(urlsplit(e["path"]).query) for e in proxy.faults.log if "comp=list" in e["path"]
    ]
    prefixes = [q["prefix"][0] for q in lists]
    assert all(p.startswith("resourceId=/SUBSCRIPTIONS/") for p in prefixes)
    walks = [q["prefix"][0] for q in lists if "delimiter" in q]
    # subscriptions; groups of each (X has none); gateways of each group
    assert len(walks) == 1 + 3 + 2
    hours = sorted(p for q in lists if "delimiter" not in q for p in q["prefix"])
    assert hours == sorted(f"resourceId={g}/{_hour(h)[:-4]}" for g in GATEWAYS for h in (1, 2, 3))
    assert "3 gateway(s), 9 blob(s) in range: 9 new, 0 grown" in str(report)

    # Nothing changed: nothing is downloaded again.
    before = len(proxy.faults.log)
    again = _sync(
        cache,
        proxy.connection_string,
        container_name=container.container_name,
        start=START + timedelta(hours=1, minutes=20),
        end=START + timedelta(hours=3),
    )
    assert again.blobs_unchanged == 9
    assert again.bytes_downloaded == 0
    assert not [e for e in proxy.faults.log[before:] if e["path"].split("?")[0].endswith(".json")]
    assert _store(cache).equals(_expected(blobs, wanted))


def test_gateway_filter(container: Any, blobs: Any, azurite: Any, tmp_path: Path) -> None:
    _upload(container, blobs)
    cache = tmp_path / "cache"
    report = _sync(
        cache,
        azurite.connection_string,
        container_name=container.container_name,
        gateways=["ng-app", GATEWAYS[0].lower()],
    )
    assert report.gateways == sorted([GATEWAYS[0], GATEWAYS[2]])
    wanted = [(g, _hour(h)) for g in (GATEWAYS[0], GATEWAYS[2]) for h in range(7)]
    assert _store(cache).equals(_expected(blobs, wanted))


def test_a_growing_blob_downloads_only_new_bytes_and_a_torn_line_is_not_lost(
    container: Any, proxy: Any, blobs: Any, tmp_path: Path
) -> None:
    key = (GATEWAYS[1], _hour(2))
    data, records = blobs[key]
    lines = data.splitlines(keepends=True)
    first, torn = b"".join(lines[:10]), lines[10][:37]
    client = container.get_blob_client(blob_name(*key))
    client.create_append_blob()
    client.append_block(first + torn)
    cache = tmp_path / "cache"
    options = {
        "container_name": container.container_name,
        "start": START + timedelta(hours=2),
        "end": START + timedelta(hours=2, minutes=30),
    }
    report = _sync(cache, proxy.connection_string, **options)
    assert report.bytes_pending == len(torn)
    assert _store(cache).equals(records[:10].sort(KEYS, nulls_last=True))
    mirrored = _mirrored(cache, blob_name(*key)).read_bytes()
    assert mirrored == first

    # The writer finishes the line and appends more.
    client.append_block(lines[10][37:] + b"".join(lines[11:25]))
    start = len(proxy.faults.log)
    grown = _sync(cache, proxy.connection_string, **options)
    assert (grown.blobs_grown, grown.blobs_new, grown.bytes_pending) == (1, 0, 0)
    gets = [e for e in proxy.faults.log[start:] if e["method"] == "GET" and ".json" in e["path"]]
    # One range request: the new bytes and, before them, the mirror's last bytes again
    # (4 KiB at most) to check that the blob is still the one mirrored.
    overlap = min(len(first), 4096)
    assert [g["range"] for g in gets] == [
        f"bytes={len(first) - overlap}-{len(b''.join(lines[:25])) - 1}"
    ]
    assert grown.bytes_downloaded == overlap + len(b"".join(lines[10:25]))
    assert _store(cache).equals(records[:25].sort(KEYS, nulls_last=True))
    assert _mirrored(cache, blob_name(*key)).read_bytes() == b"".join(lines[:25])


def test_a_blob_written_anew_is_fetched_whole(
    container: Any, azurite: Any, blobs: Any, tmp_path: Path
) -> None:
    key = (GATEWAYS[0], _hour(3))
    data, records = blobs[key]
    lines = data.splitlines(keepends=True)
    client = container.get_blob_client(blob_name(*key))
    client.create_append_blob()
    client.append_block(b"".join(lines[:5]))
    cache = tmp_path / "cache"
    options = {
        "container_name": container.container_name,
        "start": START + timedelta(hours=3),
        "end": START + timedelta(hours=3, minutes=10),
    }
    _sync(cache, azurite.connection_string, **options)
    # Deleted and written again, longer, with other records: not an append.
    client.delete_blob()
    time.sleep(1.1)  # creation times have a one-second grain
    client.create_append_blob()
    client.append_block(b"".join(lines[5:20]))
    report = _sync(cache, azurite.connection_string, **options)
    assert (report.blobs_replaced, report.blobs_grown) == (1, 0)
    assert _store(cache).equals(records[5:20].sort(KEYS, nulls_last=True))


def test_a_gzip_blob_is_mirrored_whole(
    container: Any, azurite: Any, blobs: Any, tmp_path: Path
) -> None:
    key = (GATEWAYS[2], _hour(5))
    data, records = blobs[key]
    packed = gzip.compress(data)
    container.upload_blob(blob_name(*key) + ".gz", packed)  # a block blob, gzip
    cache = tmp_path / "cache"
    options = {
        "container_name": container.container_name,
        "start": START + timedelta(hours=5),
        "end": START + timedelta(hours=5, minutes=10),
    }
    report = _sync(cache, azurite.connection_string, **options)
    assert (report.blobs_new, report.bytes_pending) == (1, 0)
    assert _mirrored(cache, blob_name(*key) + ".gz").read_bytes() == packed
    assert _store(cache).equals(records.sort(KEYS, nulls_last=True))


def test_transient_errors_and_throttling_are_retried(
    container: Any, proxy: Any, blobs: Any, tmp_path: Path
) -> None:
    items = {k: v for k, v in blobs.items() if k[1] in (_hour(0), _hour(1))}
    _upload(container, items)

    def rule(n: int, method: str, path: str) -> tuple[Any, float] | None:
        if n % 3 == 1:
            return (503, 1) if n % 2 else (500, 0)
        return None

    proxy.faults.rule = rule
    cache = tmp_path / "cache"
    report = _sync(
        cache,
        proxy.connection_string,
        container_name=container.container_name,
        end=START + timedelta(minutes=50),
        max_workers=2,
    )
    assert report.blobs_new == len(items)
    assert _store(cache).equals(_expected(items, list(items)))
    log = proxy.faults.log
    assert {e.get("status") for e in log} >= {500, 503, 200}
    # A 503 with Retry-After: 1 is retried after a second, not at once.
    waits = [
        later["at"] - e["at"]
        for e in log
        if e.get("status") == 503
        for later in log[e["n"] + 1 :]
        if later["path"] == e["path"] and later["method"] == e["method"]
    ]
    assert waits
    assert min(waits) >= 0.9


def _run_cli(cache: Path, conn: str, container: str, *extra: str) -> subprocess.Popen[bytes]:
    env = {**os.environ, "AZURE_STORAGE_CONNECTION_STRING": conn}
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "natlens._cli",
            "sync",
            "--cache",
            str(cache),
            "--container",
            container,
            "--start",
            START.isoformat(),
            "--end",
            (START + timedelta(hours=6)).isoformat(),
            "--no-progress",
            *extra,
        ],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )


def test_a_killed_sync_leaves_the_cache_consistent(
    container: Any, proxy: Any, azurite: Any, blobs: Any, tmp_path: Path
) -> None:
    half = {k: (v[0][: len(v[0]) // 2], v[1]) for k, v in blobs.items()}
    _upload(container, half)
    cache = tmp_path / "cache"
    name = container.container_name

    # 1. Killed while a body is half transferred.
    proxy.faults.rule = lambda n, method, path: (
        ("stall", 30) if method == "GET" and ".json" in path and n > 12 else None
    )
    process = _run_cli(cache, proxy.connection_string, name, "--workers", "2")
    assert proxy.faults.stalled.wait(60), process.communicate()
    time.sleep(0.2)
    process.send_signal(signal.SIGKILL)
    process.communicate()

    # 2. The blobs grow (a torn line each), then more syncs are killed at random moments.
    for (rid, hour), (data, _) in blobs.items():
        container.get_blob_client(blob_name(rid, hour)).append_block(data[len(data) // 2 :])
    proxy.faults.stalled.clear()
    proxy.faults.rule = lambda n, method, path: ("stall", 0.05) if method == "GET" else None
    rng = random.Random(5)
    for _ in range(3):
        process = _run_cli(cache, proxy.connection_string, name, "--workers", "3")
        time.sleep(rng.uniform(1.0, 2.5))
        process.send_signal(signal.SIGKILL)
        process.communicate()

    # 3. A sync left to finish: every record exactly once.
    report = _sync(cache, azurite.connection_string, container_name=name)
    assert report.bytes_pending == 0
    assert _store(cache).equals(_expected(blobs, list(blobs)))
    for (rid, hour), (data, _) in blobs.items():
        assert _mirrored(cache, blob_name(rid, hour)).read_bytes() == data
    again = _sync(cache, azurite.connection_string, container_name=name)
    assert again.blobs_unchanged == len(blobs)


def test_cli_sync_and_credentials_stay_out_of_the_cache(
    container: Any, azurite: Any, blobs: Any, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    items = {k: v for k, v in blobs.items() if k[1] == _hour(4)}
    _upload(container, items)
    cache = tmp_path / "cache"
    code = main(
        [
            "sync",
            "--cache",
            str(cache),
            "--connection-string",
            azurite.connection_string,
            "--container",
            container.container_name,
            "--start",
            (START + timedelta(hours=4)).isoformat(),
            "--end",
            "2025-11-04T04:30",
            "--gateway",
            "NG-WEU-2",
            "--no-progress",
        ]
    )
    out, err = capsys.readouterr()
    assert code == 0, err
    assert "1 gateway(s), 1 blob(s) in range: 1 new" in out
    expected = _expected(items, [(GATEWAYS[1], _hour(4))])
    got = natlens.scan_parquet(cache / "parquet").collect().sort(KEYS, nulls_last=True)
    assert got.equals(expected)
    secrets = (KEY, KEY[:20], "AccountKey", "SharedKey")
    for path in cache.rglob("*"):
        if path.is_file():
            text = path.read_bytes()
            assert not any(s.encode() in text for s in secrets), path
    assert not any(s in out + err for s in secrets)

    code = main(["sync", "--cache", str(cache), "--start", "yesterday", "--no-progress"])
    out, err = capsys.readouterr()
    assert code == 2
    assert "--start 'yesterday' is neither an ISO time" in err

    missing = ["sync", "--cache", str(cache), "--container", "no-such-container"]
    code = main([*missing, "--connection-string", azurite.connection_string, "--no-progress"])
    _, err = capsys.readouterr()
    assert code == 1
    assert "ResourceNotFoundError" in err
    assert "container does not exist" in err
    assert KEY not in err


def test_sync_with_a_sas_url_keeps_the_signature_out(
    container: Any, azurite: Any, blobs: Any, tmp_path: Path
) -> None:
    from azure.storage.blob import ContainerSasPermissions, generate_container_sas

    items = {k: v for k, v in blobs.items() if k[1] == _hour(0)}
    _upload(container, items)
    sas = generate_container_sas(
        ACCOUNT,
        container.container_name,
        account_key=KEY,
        permission=ContainerSasPermissions(read=True, list=True),
        expiry=datetime.now(UTC) + timedelta(hours=1),
    )
    signature = parse_qs(sas)["sig"][0]
    cache = tmp_path / "cache"
    report = sync_blobs(
        cache,
        START,
        START + timedelta(minutes=30),
        account_url=f"http://127.0.0.1:{azurite.port}/{ACCOUNT}?{sas}",
        container=container.container_name,
        progress=False,
    )
    assert report.blobs_new == len(items)
    assert _store(cache).equals(_expected(items, list(items)))
    assert signature not in str(report)
    assert signature not in repr(report)
    for path in cache.rglob("*"):
        if path.is_file():
            assert signature.encode() not in path.read_bytes(), path


def test_cli_sync_needs_a_credential(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("AZURE_STORAGE_CONNECTION_STRING", raising=False)
    code = main(["sync", "--cache", str(tmp_path), "--no-progress"])
    _, err = capsys.readouterr()
    assert code == 2
    assert "pass --account-url or --connection-string" in err


def test_cli_sync_parses_times_at_the_edge(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """--start/--end: spans back from now (30m, 6h, 2d) or ISO times, naive ones UTC;
    sync_blobs receives typed keywords, never the parsed arguments."""
    import natlens.azure

    calls: list[dict[str, Any]] = []

    def fake(cache_dir: Any, start: Any, end: Any = None, **options: Any) -> Any:
        calls.append({"cache_dir": cache_dir, "start": start, "end": end, **options})
        return natlens.azure.SyncReport(source="fake")

    monkeypatch.setattr(natlens.azure, "sync_blobs", fake)
    base = ["sync", "--cache", str(tmp_path), "--connection-string", "c", "--no-progress"]
    before = datetime.now(UTC)
    assert main([*base, "--start", "2d", "--end", "30m", "--gateway", "ng-1"]) == 0
    after = datetime.now(UTC)
    call = calls.pop()
    assert before - timedelta(days=2) <= call["start"] <= after - timedelta(days=2)
    assert call["end"] - call["start"] == timedelta(days=2) - timedelta(minutes=30)
    assert call["gateways"] == ["ng-1"]
    assert call["connection_string"] == "c"
    assert main([*base, "--start", "2025-11-04T10:00"]) == 0
    call = calls.pop()
    assert call["start"] == datetime(2025, 11, 4, 10, tzinfo=UTC)
    assert call["end"] is None  # sync_blobs's own default: now
    assert main([*base, "--start", "6h", "--end", "tomorrow"]) == 2
    assert "--end 'tomorrow' is neither an ISO time" in capsys.readouterr().err
    assert calls == []


def test_sync_arguments_are_checked(tmp_path: Path, azurite: Any) -> None:
    with pytest.raises(ValueError, match="start: 'yesterday' is not an ISO date or time"):
        sync_blobs(tmp_path, "yesterday", connection_string=azurite.connection_string)
    with pytest.raises(ValueError, match=r"end: .* is not after start"):
        sync_blobs(tmp_path, START, START, connection_string=azurite.connection_string)
    with pytest.raises(ValueError, match="gateways is empty"):
        sync_blobs(tmp_path, START, gateways=[], connection_string=azurite.connection_string)
    with pytest.raises(ValueError, match=r"pass account_url \(with a credential or a SAS\)"):
        sync_blobs(tmp_path, START)
    with pytest.raises(ValueError, match="not a valid storage connection string") as info:
        sync_blobs(tmp_path, START, connection_string="AccountKey=" + KEY)
    assert KEY not in str(info.value)


# --------------------------------------------------------------------------- trust (issue 8)


def _poisoned(data: bytes) -> tuple[bytes, list[int], list[int]]:
    """``data`` with three poison records put in place of good ones.

    Returns the blob, the 1-based line numbers of the poison and the indexes of the
    records that stay good.
    """
    import json

    lines = data.splitlines(keepends=True)
    infinite = json.loads(lines[3])
    infinite["time"] = "infinity"
    huge = json.loads(lines[7])
    huge["properties"]["BytesSent"] = 2**63
    deep = "[" * 50_000 + "]" * 50_000
    poison = {3: json.dumps(infinite), 7: json.dumps(huge), 11: deep}
    out = [(poison[i] + "\n").encode() if i in poison else line for i, line in enumerate(lines)]
    kept = [i for i in range(len(lines)) if i not in poison]
    return b"".join(out), [i + 1 for i in sorted(poison)], kept


def test_a_poison_record_costs_that_record_and_the_sync_goes_on(
    container: Any, azurite: Any, blobs: Any, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bad_key, good_key = (GATEWAYS[0], _hour(1)), (GATEWAYS[1], _hour(1))
    data, records = blobs[bad_key]
    poisoned, bad_lines, kept = _poisoned(data)
    lines = data.splitlines(keepends=True)
    client = container.get_blob_client(blob_name(*bad_key))
    client.create_append_blob()
    client.append_block(poisoned)
    _upload(container, {good_key: blobs[good_key]})
    cache = tmp_path / "cache"
    options = {
        "container_name": container.container_name,
        "start": START + timedelta(hours=1),
        "end": START + timedelta(hours=1, minutes=30),
    }
    report = _sync(cache, azurite.connection_string, **options)
    assert report.blobs_new == 2
    assert report.failed == [], report.problems
    assert [(p.file, p.line) for p in report.problems] == [
        (blob_name(*bad_key), line) for line in bad_lines
    ]
    assert all(p.reason for p in report.problems)
    expected = pl.concat([records[kept], blobs[good_key][1]]).sort(KEYS, nulls_last=True)
    assert _store(cache).equals(expected)
    assert report.records == expected.height
    assert f"{blob_name(*bad_key)}:{bad_lines[0]}:" in str(report)
    assert "3 bad record(s) skipped" in str(report)

    # The next runs succeed: the blob is unchanged and not read again.
    again = _sync(cache, azurite.connection_string, **options)
    assert (again.blobs_unchanged, again.problems, again.failed) == (2, [], [])

    # It grows: the new records are stored, only new bad lines are reported.
    client.append_block(b"".join(lines[len(lines) - 3 :]))
    grown = _sync(cache, azurite.connection_string, **options)
    assert grown.blobs_grown == 1
    assert grown.problems == []
    more = pl.concat([expected, records[len(lines) - 3 :]]).sort(KEYS, nulls_last=True)
    assert _store(cache).equals(more)

    # The command line says the same and exits 0 (every good record is stored).
    fresh = tmp_path / "fresh"
    code = main(
        [
            "sync",
            "--cache",
            str(fresh),
            "--connection-string",
            azurite.connection_string,
            "--container",
            container.container_name,
            "--start",
            options["start"].isoformat(),
            "--end",
            options["end"].isoformat(),
            "--no-progress",
        ]
    )
    out, err = capsys.readouterr()
    assert code == 0, err
    assert f"{blob_name(*bad_key)}:{bad_lines[1]}:" in out
    assert "Traceback" not in err


def test_a_blob_that_cannot_be_read_does_not_stop_the_run(
    container: Any,
    azurite: Any,
    blobs: Any,
    tmp_path: Path,
    *,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    items = {k: v for k, v in blobs.items() if k[1] == _hour(2)}
    _upload(container, items)
    broken = blob_name(GATEWAYS[2], _hour(2))
    real = natlens.read_flowlogs

    def read(source: Any, **options: Any) -> pl.DataFrame:
        if Path(source).parent.name == "m=00" and "NG-APP" in str(source):
            raise RuntimeError("the disk said no")
        return real(source, **options)

    monkeypatch.setattr(natlens, "read_flowlogs", read)
    cache = tmp_path / "cache"
    options = {
        "container_name": container.container_name,
        "start": START + timedelta(hours=2),
        "end": START + timedelta(hours=2, minutes=30),
    }
    report = _sync(cache, azurite.connection_string, **options)
    assert report.failed == [broken]
    assert [(p.file, p.line) for p in report.problems] == [(broken, None)]
    assert "the disk said no" in report.problems[0].reason
    stored = [k for k in items if k[0] != GATEWAYS[2]]
    assert _store(cache).equals(_expected(items, stored))
    assert "1 blob(s) not stored (tried again next run)" in str(report)

    # The next run tries the failed blob again; once it reads, it is stored.
    monkeypatch.setattr(natlens, "read_flowlogs", real)
    again = _sync(cache, azurite.connection_string, **options)
    assert again.failed == []
    assert _store(cache).equals(_expected(items, list(items)))

    # The command line exits 1 when a blob could not be stored, after the summary.
    monkeypatch.setattr(natlens, "read_flowlogs", read)
    container.get_blob_client(broken).append_block(b"\n")
    code = main(
        [
            "sync",
            "--cache",
            str(cache),
            "--connection-string",
            azurite.connection_string,
            "--container",
            container.container_name,
            "--start",
            options["start"].isoformat(),
            "--end",
            options["end"].isoformat(),
            "--no-progress",
        ]
    )
    out, _ = capsys.readouterr()
    assert code == 1
    assert f"{broken}: could not be read: RuntimeError: the disk said no" in out


def test_a_blob_replaced_within_the_same_second_is_fetched_whole(
    container: Any, azurite: Any, blobs: Any, tmp_path: Path
) -> None:
    key = (GATEWAYS[2], _hour(3))
    data, records = blobs[key]
    lines = data.splitlines(keepends=True)
    half = len(lines) // 2
    client = container.get_blob_client(blob_name(*key))
    cache = tmp_path / "cache"
    options = {
        "container_name": container.container_name,
        "start": START + timedelta(hours=3),
        "end": START + timedelta(hours=3, minutes=10),
    }
    for _ in range(10):
        client.create_append_blob()
        client.append_block(b"".join(lines[:half]))
        created = client.get_blob_properties().creation_time
        _sync(cache, azurite.connection_string, **options)
        # Deleted and written anew, longer, with other records, in the same second.
        client.delete_blob()
        client.create_append_blob()
        client.append_block(b"".join(lines[half:]) + b"".join(lines[:half]))
        if client.get_blob_properties().creation_time == created:
            break
        client.delete_blob()
        cache = tmp_path / f"cache-{_}"
    else:
        pytest.fail("could not recreate a blob within one second")
    report = _sync(cache, azurite.connection_string, **options)
    assert (report.blobs_replaced, report.blobs_grown) == (1, 0)
    assert _store(cache).equals(
        pl.concat([records[half:], records[:half]]).sort(KEYS, nulls_last=True)
    )
    mirrored = (cache / "blobs").rglob("PT1H*.json")
    assert [p.read_bytes() for p in mirrored] == [client.download_blob().readall()]
    assert _sync(cache, azurite.connection_string, **options).blobs_unchanged == 1


def test_blob_names_that_nest_or_extend_each_other_are_mirrored_apart(
    container: Any, azurite: Any, blobs: Any, tmp_path: Path
) -> None:
    key = (GATEWAYS[0], _hour(4))
    data, records = blobs[key]
    lines = data.splitlines(keepends=True)
    base = blob_name(*key)
    parts = {
        base: b"".join(lines[:10]),
        base + ".download": b"".join(lines[10:20]),
        base + "/child.json": b"".join(lines[20:30]),
        base + ".tmp": b"".join(lines[30:40]),
    }
    for name, content in parts.items():
        client = container.get_blob_client(name)
        client.create_append_blob()
        client.append_block(content)
    cache = tmp_path / "cache"
    options = {
        "container_name": container.container_name,
        "start": START + timedelta(hours=4),
        "end": START + timedelta(hours=4, minutes=10),
    }
    report = _sync(cache, azurite.connection_string, **options)
    assert (report.blobs_new, report.failed, report.problems) == (4, [], [])
    assert _store(cache).equals(records[:40].sort(KEYS, nulls_last=True))
    for name in parts:
        container.get_blob_client(name).append_block(b"".join(lines[40:42]))
    grown = _sync(cache, azurite.connection_string, **options)
    assert (grown.blobs_grown, grown.failed) == (4, [])
    expected = pl.concat([records[:40], *[records[40:42]] * 4]).sort(KEYS, nulls_last=True)
    assert _store(cache).equals(expected)
    mirrored = sorted(p.read_bytes() for p in (cache / "blobs").rglob("*") if p.is_file())
    assert mirrored == sorted(c + b"".join(lines[40:42]) for c in parts.values())
    assert _sync(cache, azurite.connection_string, **options).blobs_unchanged == 4


def test_mirror_paths_never_collide() -> None:
    from natlens.azure._blob import _mirror_path

    names = [
        "a/PT1H.json",
        "a/PT1H.json.download",
        "a/PT1H.json/child.json",
        "a/pt1h.json",
        "A/PT1H.json",
        "a//PT1H.json",
        "a/./PT1H.json",
        "a/../PT1H.json",
        "a/CON",
        "a/con.json",
        "a/trailing.",
        "a/trailing ",
        "a/what?.json",
        "a/per%41cent",
        "a/perAcent",
        "a/tilde~x.json",
        "/leading",
        "a/",
        "a/x:y",
    ]
    root = Path("cache")
    paths = [_mirror_path(root, name) for name in names]
    # Apart even on a case-insensitive file system (Windows, macOS) ...
    folded = [str(p).casefold() for p in paths]
    assert len(set(folded)) == len(names)
    # ... and no file lies where another needs a folder.
    folders = {str(parent).casefold() for p in paths for parent in p.parents}
    assert not folders & set(folded)
    for path in paths:
        assert path.is_relative_to(root)
        assert all(part not in (".", "..", "") for part in path.parts)
        assert not any(c in part for part in path.parts for c in '<>:"|?*\\')
    # Readable where names are ordinary: the flow-log tree keeps its folders and suffix.
    flow = blob_name(GATEWAYS[0], _hour(1))
    mirrored = _mirror_path(root, flow)
    assert mirrored.parent == root.joinpath(*flow.split("/")[:-1])
    assert mirrored.name.startswith("PT1H")
    assert mirrored.name.endswith(".json")


def test_a_blob_deleted_upstream_is_reported_and_kept(
    container: Any, azurite: Any, blobs: Any, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    items = {k: v for k, v in blobs.items() if k[1] == _hour(5)}
    _upload(container, items)
    cache = tmp_path / "cache"
    options = {
        "container_name": container.container_name,
        "start": START + timedelta(hours=5),
        "end": START + timedelta(hours=5, minutes=30),
    }
    _sync(cache, azurite.connection_string, **options)
    gone = blob_name(GATEWAYS[1], _hour(5))
    container.get_blob_client(gone).delete_blob()
    report = _sync(cache, azurite.connection_string, **options)
    assert report.deleted == [gone]
    assert f"1 deleted upstream (kept in the cache):\n  {gone}" in str(report)
    # The cache keeps its records; the next run does not say it again.
    assert _store(cache).equals(_expected(items, list(items)))
    assert _sync(cache, azurite.connection_string, **options).deleted == []


# Loaded into the sync's process: every connection or name lookup that would leave this
# machine is refused before a packet is sent, and written down for the test to see.
_NETWORK_GUARD = """
import ipaddress, os, sys

_LOG = os.environ["NATLENS_NETWORK_LOG"]


def _local(host):
    if isinstance(host, bytes):
        host = host.decode()
    host = str(host).split("%")[0]
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _guard(event, args):
    if event == "socket.connect" and isinstance(args[1], tuple):
        host = args[1][0]
    elif event == "socket.getaddrinfo" and args[0] is not None:
        host = args[0]
    else:
        return
    if not _local(host):
        with open(_LOG, "a") as log:
            log.write(f"{event} {host}\\n")
        raise OSError(f"the test refuses {event} to {host}")


sys.addaudithook(_guard)
"""


def test_sync_without_a_credential_fails_at_once_and_says_what_to_do(tmp_path: Path) -> None:
    from blobfaults import free_port

    guard = tmp_path / "guard"
    guard.mkdir()
    (guard / "sitecustomize.py").write_text(_NETWORK_GUARD)
    network_log = tmp_path / "network.log"
    port = free_port()  # nothing listens there
    home = tmp_path / "home"
    home.mkdir()
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("AZURE_", "IDENTITY_", "MSI_", "IMDS_"))
    }
    env.update(
        HOME=str(home),
        PATH=str(tmp_path / "no-tools"),  # no az, azd or pwsh to ask
        PYTHONPATH=str(guard),
        NATLENS_NETWORK_LOG=str(network_log),
        # Managed identity (IMDS, pod identity) and the Entra authority: a closed local port.
        AZURE_POD_IDENTITY_AUTHORITY_HOST=f"http://127.0.0.1:{port}",
        AZURE_AUTHORITY_HOST=f"https://127.0.0.1:{port}",
    )
    started = time.monotonic()
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "natlens._cli",
            "sync",
            "--cache",
            str(tmp_path / "cache"),
            "--account-url",
            f"https://127.0.0.1:{port}/{ACCOUNT}",
            "--start",
            START.isoformat(),
            "--end",
            (START + timedelta(hours=1)).isoformat(),
            "--no-progress",
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    elapsed = time.monotonic() - started
    assert not network_log.exists(), network_log.read_text()
    assert done.returncode == 2, done.stderr
    assert elapsed < 20, elapsed
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    message = lines[0]
    assert message.startswith("natlens sync: no Azure credential")
    for advice in ("az login", "SAS", "--connection-string", "AZURE_STORAGE_CONNECTION_STRING"):
        assert advice in message
    assert "Traceback" not in done.stderr
    assert not (tmp_path / "cache" / "manifest.jsonl").exists()


def test_a_refused_credential_is_not_retried(tmp_path: Path) -> None:
    from azure.core.exceptions import ClientAuthenticationError
    from blobfaults import free_port

    class Refused:
        calls = 0

        def get_token(self, *scopes: str, **options: Any) -> Any:
            Refused.calls += 1
            raise ClientAuthenticationError("token refused")

    started = time.monotonic()
    with pytest.raises(RuntimeError, match="no Azure credential") as info:
        sync_blobs(
            tmp_path,
            START,
            START + timedelta(hours=1),
            account_url=f"https://127.0.0.1:{free_port()}/{ACCOUNT}",
            credential=Refused(),
            retry_backoff=1,
            progress=False,
        )
    assert time.monotonic() - started < 5
    assert Refused.calls == 1
    assert "token refused" in str(info.value)


def test_a_cache_from_the_earlier_layout_is_moved_not_fetched_again(
    container: Any, azurite: Any, blobs: Any, tmp_path: Path
) -> None:
    import json

    key = (GATEWAYS[1], _hour(0))
    data, records = blobs[key]
    lines = data.splitlines(keepends=True)
    client = container.get_blob_client(blob_name(*key))
    client.create_append_blob()
    client.append_block(b"".join(lines[:10]))
    cache = tmp_path / "cache"
    options = {
        "container_name": container.container_name,
        "start": START,
        "end": START + timedelta(minutes=30),
    }
    _sync(cache, azurite.connection_string, **options)
    # Make it a cache of the earlier layout: blob names as paths, no layout line.
    old = cache / "blobs" / blob_name(*key)
    _mirrored(cache, blob_name(*key)).rename(old)
    manifest = cache / "manifest.jsonl"
    entries = [line for line in manifest.read_text().splitlines() if '"name"' in line]
    manifest.write_text("".join(line + "\n" for line in entries))

    client.append_block(b"".join(lines[10:20]))
    report = _sync(cache, azurite.connection_string, **options)
    assert (report.blobs_grown, report.blobs_replaced) == (1, 0)
    assert report.bytes_downloaded < len(b"".join(lines[:20]))
    assert not old.exists()
    assert _mirrored(cache, blob_name(*key)).read_bytes() == b"".join(lines[:20])
    assert json.loads(manifest.read_text().splitlines()[0]) == {"layout": 2}
    assert _store(cache).equals(records[:20].sort(KEYS, nulls_last=True))


def test_retries_stop_at_a_refused_sign_in() -> None:
    from azure.core.exceptions import ClientAuthenticationError, ServiceRequestError

    from natlens.azure._blob import _retry_policy

    policy = _retry_policy(8, 2)

    def settings() -> dict[str, Any]:
        return {
            "total": 8,
            "connect": 8,
            "read": 8,
            "status": 8,
            "history": [],
            "retry_secondary": False,
            "count": 0,
            "body_position": None,
            "mode": None,
        }

    request = type("Request", (), {"method": "GET", "body": None})()
    assert not policy.increment(settings(), request, error=ClientAuthenticationError("no"))
    assert policy.increment(settings(), request, error=ServiceRequestError("reset"))
