"""Flow-log blobs from a storage account into a local cache that only ever grows by the new bytes.

Cache layout (``cache_dir``)::

    blobs/<blob name>      a mirror of each blob, complete lines only
    manifest.jsonl         one JSON line per blob: etag, sizes, last-modified
    parquet/               the natlens Parquet store (one part per blob)

A sync lists only the prefixes the time range needs: the gateway folders
(``resourceId=/SUBSCRIPTIONS/<SUB>/RESOURCEGROUPS/<RG>/PROVIDERS/MICROSOFT.NETWORK/
NATGATEWAYS/<NAME>/``, walked with a delimiter) and, under each, one ``y=/m=/d=/h=``
prefix per hour. A blob seen before is skipped when its etag is unchanged; an append
blob that grew is fetched from the mirrored length on (a range request), anything else
is fetched whole. A torn last line (the current hour's blob is still being written) is
not mirrored: the next sync fetches it again from its first byte, complete.

Every step is ordered so that a sync killed at any point leaves the cache consistent:
whole downloads go to a temporary file renamed into place, the mirror is cut back to
the manifest's length before it is appended to, the blob's Parquet part is replaced
whole, and the manifest line is written last. The next sync neither duplicates nor
loses a record.
"""

from __future__ import annotations

import fcntl
import json
import os
import threading
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path, PurePosixPath
from typing import IO, Any
from urllib.parse import urlsplit

from natlens._schema import empty_flows

__all__ = ["FLOW_CONTAINER", "SyncReport", "sync_blobs"]

FLOW_CONTAINER = "insights-logs-natgatewayflowlogsv1"
"""The container Azure Monitor writes NAT gateway flow logs into."""

_ROOT = "resourceId=/SUBSCRIPTIONS/"
_GATEWAYS = "PROVIDERS/MICROSOFT.NETWORK/NATGATEWAYS/"
_TAIL_WINDOW = 64 * 1024


@dataclass
class SyncReport:
    """What one :func:`sync_blobs` run did. Holds no credential.

    Attributes
    ----------
    source
        ``<account host>/<container>``.
    gateways
        Gateway folders that matched the filters.
    prefixes_listed
        Hour prefixes listed.
    blobs_seen, blobs_new, blobs_grown, blobs_replaced, blobs_unchanged
        Blobs found in range, and what was done with each.
    bytes_downloaded
        Bytes transferred.
    bytes_pending
        Bytes of torn last lines left for the next sync.
    records
        Records in the Parquet parts written by this run.
    """

    source: str
    gateways: list[str] = field(default_factory=list)
    prefixes_listed: int = 0
    blobs_seen: int = 0
    blobs_new: int = 0
    blobs_grown: int = 0
    blobs_replaced: int = 0
    blobs_unchanged: int = 0
    bytes_downloaded: int = 0
    bytes_pending: int = 0
    records: int = 0

    def __str__(self) -> str:
        return (
            f"{self.source}: {len(self.gateways)} gateway(s), {self.blobs_seen} blob(s) in range: "
            f"{self.blobs_new} new, {self.blobs_grown} grown, {self.blobs_replaced} replaced, "
            f"{self.blobs_unchanged} unchanged; {self.bytes_downloaded:,} bytes downloaded, "
            f"{self.records:,} records written"
            + (
                f", {self.bytes_pending:,} bytes of torn lines pending"
                if self.bytes_pending
                else ""
            )
        )


@dataclass(frozen=True)
class _Entry:
    etag: str
    blob_size: int
    size: int
    last_modified: str
    blob_type: str
    created: str = ""


def _retry_policy(retry_total: int, backoff: int) -> Any:
    from azure.storage.blob import ExponentialRetry

    class _Retry(ExponentialRetry):
        """Exponential retry that waits what a ``Retry-After`` header asks, when there is one."""

        def sleep(self, settings: dict[str, Any], transport: Any) -> None:
            history = settings.get("history") or []
            response = getattr(history[-1], "http_response", None) if history else None
            after = None
            if response is not None:
                header = response.headers.get("Retry-After")
                if header is not None:
                    try:
                        after = min(float(header), 120.0)
                    except ValueError:
                        after = None
            wait = after if after is not None else self.get_backoff_time(settings)
            if wait and wait > 0:
                transport.sleep(wait)

    return _Retry(
        initial_backoff=backoff,
        increment_base=2,
        retry_total=retry_total,
        random_jitter_range=min(backoff, 1),
    )


def _container(
    *,
    account_url: str | None,
    connection_string: str | None,
    credential: Any,
    container: str,
    retry_total: int,
    retry_backoff: int,
) -> tuple[Any, str]:
    try:
        from azure.storage.blob import BlobServiceClient
    except ImportError as err:  # pragma: no cover - depends on the environment
        raise ImportError(
            "Blob Storage needs the azure extra: pip install 'natlens[azure]'"
        ) from err
    policy = _retry_policy(retry_total, retry_backoff)
    if connection_string is not None and account_url is not None:
        raise ValueError("pass account_url or connection_string, not both")
    if connection_string is not None:
        try:
            service = BlobServiceClient.from_connection_string(
                connection_string, retry_policy=policy
            )
        except ValueError:
            # The SDK's message may quote the string: say what is wrong without it.
            raise ValueError("connection_string is not a valid storage connection string") from None
    elif account_url is not None:
        if credential is None and "sig=" not in (urlsplit(account_url).query or ""):
            from azure.identity import DefaultAzureCredential

            credential = DefaultAzureCredential()
        service = BlobServiceClient(account_url, credential=credential, retry_policy=policy)
    else:
        raise ValueError("pass account_url (with a credential or a SAS) or connection_string")
    parts = urlsplit(service.url)
    label = f"{parts.netloc}{parts.path.rstrip('/')}/{container}"
    return service.get_container_client(container), label


def _hours(since: datetime, until: datetime) -> list[datetime]:
    """Hour folders that can hold records timed in ``[since, until)``.

    Records are filed by receive time, a few minutes after their own time: the hour after
    the range is listed too.
    """
    first = since.replace(minute=0, second=0, microsecond=0)
    last = (until - timedelta(microseconds=1)).replace(minute=0, second=0, microsecond=0)
    hours = []
    hour = first
    while hour <= last + timedelta(hours=1):
        hours.append(hour)
        hour += timedelta(hours=1)
    return hours


def _walk(client: Any, prefix: str) -> list[str]:
    return [item.name for item in client.walk_blobs(name_starts_with=prefix, delimiter="/")]


def _gateway_prefixes(
    client: Any,
    gateways: Sequence[str] | None,
    subscriptions: Sequence[str] | None,
    pool: ThreadPoolExecutor,
) -> list[str]:
    subs = [p for p in _walk(client, _ROOT) if p.endswith("/")]
    if subscriptions is not None:
        wanted_subs = {s.strip().upper() for s in subscriptions}
        subs = [p for p in subs if p[len(_ROOT) :].rstrip("/").upper() in wanted_subs]
    groups = [
        p
        for found in pool.map(lambda s: _walk(client, s + "RESOURCEGROUPS/"), subs)
        for p in found
        if p.endswith("/")
    ]
    found_gateways = [
        p
        for found in pool.map(lambda g: _walk(client, g + _GATEWAYS), groups)
        for p in found
        if p.endswith("/")
    ]
    if gateways is None:
        return sorted(found_gateways)
    wanted = {g.strip().strip("/").upper() for g in gateways}
    out = []
    for prefix in found_gateways:
        rid = prefix[len("resourceId=") :].rstrip("/").upper()
        name = rid.rsplit("/", 1)[-1]
        if rid.lstrip("/") in wanted or name in wanted:
            out.append(prefix)
    return sorted(out)


class _Manifest:
    """``manifest.jsonl``: a journal of blob entries, last line per name wins."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.entries: dict[str, _Entry] = {}
        self.lock = threading.Lock()
        if path.exists():
            with path.open("rb") as handle:
                for line in handle:
                    try:
                        item = json.loads(line)
                        self.entries[item["name"]] = _Entry(
                            etag=item["etag"],
                            blob_size=int(item["blob_size"]),
                            size=int(item["size"]),
                            last_modified=item["last_modified"],
                            blob_type=item["blob_type"],
                            created=item.get("created", ""),
                        )
                    except (ValueError, KeyError, TypeError):
                        # A line torn by a kill: its blob is fetched again.
                        continue
        self.journal: IO[bytes] | None = None

    def record(self, name: str, entry: _Entry) -> None:
        line = json.dumps({"name": name, **entry.__dict__}, separators=(",", ":")) + "\n"
        with self.lock:
            if self.journal is None:
                self.journal = self.path.open("ab")
            self.journal.write(line.encode())
            self.journal.flush()
            self.entries[name] = entry

    def compact(self) -> None:
        with self.lock:
            if self.journal is not None:
                self.journal.close()
                self.journal = None
            temporary = self.path.with_name(self.path.name + ".tmp")
            with temporary.open("w") as handle:
                for name in sorted(self.entries):
                    entry = self.entries[name]
                    handle.write(json.dumps({"name": name, **entry.__dict__}) + "\n")
            os.replace(temporary, self.path)


def _mirror_path(root: Path, name: str) -> Path:
    parts = PurePosixPath(name).parts
    if not parts or any(p in ("", ".", "..") for p in parts) or name.startswith("/"):
        raise ValueError(f"blob name {name!r} cannot be mirrored safely")
    return root.joinpath(*parts)


def _complete_length(handle: IO[bytes], start: int) -> int:
    """Length of ``handle`` up to its last complete JSON line, never below ``start``."""
    end = handle.seek(0, os.SEEK_END)
    window = _TAIL_WINDOW
    while True:
        lo = max(start, end - window)
        handle.seek(lo)
        data = handle.read(end - lo)
        cut = data.rfind(b"\n")
        if cut >= 0 or lo == start:
            tail = data[cut + 1 :]
            if not tail.strip():
                return end
            try:
                json.loads(tail)
            except ValueError:
                return lo + cut + 1  # a torn line: keep it for the next sync
            return end
        window *= 4


@dataclass
class _Job:
    name: str
    etag: str
    size: int
    last_modified: str
    blob_type: str
    created: str
    offset: int  # 0: whole blob; > 0: append from here
    kind: str  # "new", "grown", "replaced"


def sync_blobs(
    cache_dir: str | os.PathLike[str],
    since: datetime,
    until: datetime | None = None,
    *,
    account_url: str | None = None,
    connection_string: str | None = None,
    credential: Any = None,
    container: str = FLOW_CONTAINER,
    gateways: Sequence[str] | None = None,
    subscriptions: Sequence[str] | None = None,
    max_workers: int = 8,
    retry_total: int = 8,
    retry_backoff: int = 2,
    progress: bool | None = None,
) -> SyncReport:
    """Bring the flow-log blobs of a time range into a local cache and Parquet store.

    Lists only the gateway folders and hour prefixes the range needs, downloads in
    parallel only blobs that are new or changed (an append blob that grew: only its new
    bytes), mirrors them under ``cache_dir/blobs`` and writes each blob's records to the
    Parquet store ``cache_dir/parquet`` (read it with ``natlens.scan_parquet``). Safe to
    interrupt: the next run neither duplicates nor loses a record.

    Parameters
    ----------
    cache_dir
        The cache; created if missing. One sync at a time per cache.
    since, until
        Timezone-aware range of record times; ``until`` defaults to now. Blobs are
        filed by receive time, so the hour after ``until`` is listed too, and the store
        keeps every record of the blobs fetched (filter when scanning).
    account_url
        ``https://<account>.blob.core.windows.net`` (a SAS may be in its query string).
    connection_string
        A storage connection string, instead of ``account_url``.
    credential
        For ``account_url``: an azure-identity credential, a SAS token string or an
        ``azure.core.credentials.AzureNamedKeyCredential``; default
        ``DefaultAzureCredential()`` unless the URL carries a SAS.
    container
        The flow-log container.
    gateways
        NAT gateway names or resource ids to keep; default all.
    subscriptions
        Subscription ids to keep; default all.
    max_workers
        Parallel listings and downloads.
    retry_total, retry_backoff
        Retries of a failed or throttled request, and the first back-off in seconds (a
        ``Retry-After`` header is obeyed instead when the service sends one).
    progress
        Show a tqdm progress bar of the bytes; None: only on a terminal or notebook.

    Returns
    -------
    SyncReport

    Examples
    --------
    ::

        from datetime import datetime, timedelta, UTC
        import natlens

        report = natlens.sync_blobs(
            "~/.cache/natlens/prod",
            datetime.now(UTC) - timedelta(days=1),
            account_url="https://mylogs.blob.core.windows.net",
            gateways=["ng-weu-1"],
        )
        flows = natlens.scan_parquet("~/.cache/natlens/prod/parquet")
    """
    from tqdm.auto import tqdm

    import natlens

    if until is None:
        until = datetime.now(UTC)
    for argument, value in (("since", since), ("until", until)):
        if not isinstance(value, datetime) or value.tzinfo is None:
            raise ValueError(f"{argument} must be a timezone-aware datetime, got {value!r}")
    since, until = since.astimezone(UTC), until.astimezone(UTC)
    if until <= since:
        raise ValueError(f"until ({until.isoformat()}) must be after since ({since.isoformat()})")
    if max_workers < 1:
        raise ValueError(f"max_workers={max_workers} must be at least 1")
    root = Path(cache_dir).expanduser()
    root.mkdir(parents=True, exist_ok=True)
    client, label = _container(
        account_url=account_url,
        connection_string=connection_string,
        credential=credential,
        container=container,
        retry_total=retry_total,
        retry_backoff=retry_backoff,
    )
    report = SyncReport(source=label)
    lock_file = (root / ".sync.lock").open("w")
    try:
        fcntl.flock(lock_file, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        lock_file.close()
        raise RuntimeError(f"another natlens sync is using the cache {root}") from None
    try:
        manifest = _Manifest(root / "manifest.jsonl")
        mirror = root / "blobs"
        store = root / "parquet"
        with client, ThreadPoolExecutor(max_workers=max_workers) as pool:
            prefixes = _gateway_prefixes(client, gateways, subscriptions, pool)
            report.gateways = [p[len("resourceId=") :].rstrip("/") for p in prefixes]
            hour_prefixes = [
                f"{g}y={h:%Y}/m={h:%m}/d={h:%d}/h={h:%H}/"
                for g in prefixes
                for h in _hours(since, until)
            ]
            report.prefixes_listed = len(hour_prefixes)
            listed = [
                blob
                for found in pool.map(
                    lambda p: list(client.list_blobs(name_starts_with=p)), hour_prefixes
                )
                for blob in found
            ]
            jobs = _plan(listed, manifest, report)
            bar = tqdm(
                total=sum(j.size - j.offset for j in jobs),
                unit="B",
                unit_scale=True,
                desc=f"sync {len(jobs)} blob(s)",
                disable=None if progress is None else not progress,
            )
            counts = threading.Lock()

            def run(job: _Job) -> None:
                got, pending, records = _fetch(
                    client=client,
                    job=job,
                    manifest=manifest,
                    mirror=mirror,
                    store=store,
                    natlens=natlens,
                )
                with counts:
                    report.bytes_downloaded += got
                    report.bytes_pending += pending
                    report.records += records
                    bar.update(job.size - job.offset)

            try:
                for _ in pool.map(run, jobs):
                    pass
            finally:
                bar.close()
        manifest.compact()
    finally:
        fcntl.flock(lock_file, fcntl.LOCK_UN)
        lock_file.close()
    return report


def _etag(value: str | None) -> str:
    """The etag without the quotes some answers wrap it in."""
    return (value or "").strip().strip('"')


def _compressed(name: str) -> bool:
    """A gzip blob (e.g. a copied ``PT1H.json.gz``): whole or nothing, never appended to."""
    return name.endswith(".gz")


def _when(value: datetime | None) -> str:
    return value.astimezone(UTC).isoformat() if value is not None else ""


def _plan(listed: Sequence[Any], manifest: _Manifest, report: SyncReport) -> list[_Job]:
    jobs: list[_Job] = []
    for blob in listed:
        report.blobs_seen += 1
        blob_type = str(getattr(blob.blob_type, "value", blob.blob_type))
        modified = _when(blob.last_modified)
        created = _when(getattr(blob, "creation_time", None))
        known = manifest.entries.get(blob.name)
        args = (blob.name, _etag(blob.etag), int(blob.size), modified, blob_type, created)
        if known is None:
            report.blobs_new += 1
            jobs.append(_Job(*args, offset=0, kind="new"))
        elif known.etag == _etag(blob.etag) and known.blob_size == blob.size:
            report.blobs_unchanged += 1
        elif (
            blob_type == "AppendBlob"
            and known.blob_type == "AppendBlob"
            and not _compressed(blob.name)
            and blob.size >= known.size
            and known.created == created  # the same blob, not one deleted and written anew
        ):
            report.blobs_grown += 1
            jobs.append(_Job(*args, offset=known.size, kind="grown"))
        else:
            report.blobs_replaced += 1
            jobs.append(_Job(*args, offset=0, kind="replaced"))
    return jobs


def _fetch(
    *,
    client: Any,
    job: _Job,
    manifest: _Manifest,
    mirror: Path,
    store: Path,
    natlens: Any,
) -> tuple[int, int, int]:
    """Download one blob's new bytes, rewrite its Parquet part, then record it."""
    path = _mirror_path(mirror, job.name)
    path.parent.mkdir(parents=True, exist_ok=True)
    got = 0
    if job.offset and path.exists() and path.stat().st_size >= job.offset:
        with path.open("r+b") as handle:
            handle.truncate(job.offset)  # drop bytes a killed run appended unrecorded
            handle.seek(job.offset)
            if job.size > job.offset:
                stream = client.download_blob(
                    job.name, offset=job.offset, length=job.size - job.offset
                )
                got = stream.readinto(handle)
            handle.flush()
            kept = _complete_length(handle, job.offset)
            handle.truncate(kept)
        etag, blob_size = job.etag, job.size
    else:
        temporary = path.with_name(path.name + ".download")
        with temporary.open("w+b") as handle:
            stream = client.download_blob(job.name)
            got = stream.readinto(handle)
            handle.flush()
            kept = handle.tell() if _compressed(job.name) else _complete_length(handle, 0)
            handle.truncate(kept)
        etag, blob_size = _etag(stream.properties.etag), int(stream.size)
        os.replace(temporary, path)
    records = 0
    if kept:
        flows = natlens.read_flowlogs(path)
        records = flows.height
    else:
        flows = empty_flows()
    natlens.write_parquet(flows, store, part=job.name)
    manifest.record(
        job.name,
        _Entry(
            etag=etag,
            blob_size=blob_size,
            size=kept,
            last_modified=job.last_modified,
            blob_type=job.blob_type,
            created=job.created,
        ),
    )
    return got, blob_size - kept, records


def _parse_when(text: str, argument: str, now: datetime) -> datetime:
    span = text.strip().lower()
    if span and span[:-1].isdigit() and span[-1] in "mhd":
        unit = {"m": "minutes", "h": "hours", "d": "days"}[span[-1]]
        return now - timedelta(**{unit: int(span[:-1])})
    try:
        value = datetime.fromisoformat(text.strip())
    except ValueError:
        raise ValueError(
            f"{argument} {text!r} is neither an ISO time (2025-11-04T10:00) nor a span (6h, 7d)"
        ) from None
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value


def run_sync(args: Any) -> int:
    """The ``natlens sync`` command: parse the arguments, sync, print the report."""
    import sys

    now = datetime.now(UTC)
    connection_string = args.connection_string
    try:
        since = _parse_when(args.since, "--since", now)
        until = None if args.until is None else _parse_when(args.until, "--until", now)
        if connection_string is None and args.account_url is None:
            connection_string = os.environ.get("AZURE_STORAGE_CONNECTION_STRING") or None
            if connection_string is None:
                raise ValueError(
                    "pass --account-url or --connection-string "
                    "(or set AZURE_STORAGE_CONNECTION_STRING)"
                )
        report = sync_blobs(
            args.cache,
            since,
            until,
            account_url=args.account_url,
            connection_string=connection_string,
            container=args.container,
            gateways=args.gateway,
            subscriptions=args.subscription,
            max_workers=args.workers,
            progress=False if args.no_progress else None,
        )
    except (ValueError, RuntimeError, OSError) as exc:
        print(f"natlens sync: {exc}", file=sys.stderr)
        return 2
    except Exception as exc:
        from azure.core.exceptions import AzureError

        if not isinstance(exc, AzureError):
            raise
        # The SDK's message names the request, never the key or the SAS signature.
        message = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        print(f"natlens sync: {type(exc).__name__}: {message}", file=sys.stderr)
        return 1
    print(report)
    return 0
