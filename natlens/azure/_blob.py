"""Flow-log blobs from a storage account into a local cache that only ever grows by the new bytes.

Cache layout (``cache_dir``)::

    blobs/<blob name>      a mirror of each blob, complete lines only (names made
                           safe and unique on every file system, see _mirror_path)
    manifest.jsonl         one JSON line per blob: etag, sizes, last-modified
    parquet/               the natlens Parquet store (one part per blob)
    partial/               whole downloads in flight (emptied by the next sync)

A sync lists only the prefixes the time range needs: the gateway folders
(``resourceId=/SUBSCRIPTIONS/<SUB>/RESOURCEGROUPS/<RG>/PROVIDERS/MICROSOFT.NETWORK/
NATGATEWAYS/<NAME>/``, walked with a delimiter) and, under each, one ``y=/m=/d=/h=``
prefix per hour. A blob seen before is skipped when its etag is unchanged. An append
blob's etag changes with every append, so a changed etag alone cannot tell growth from
a blob deleted and written anew: an append blob that is longer is fetched from a little
before the mirrored length on (one range request), and its new bytes are appended only
when the overlap still matches the mirror; anything else is fetched whole. A torn last
line (the current hour's blob is still being written) is not mirrored: the next sync
fetches it again from its first byte, complete.

Every step is ordered so that a sync killed at any point leaves the cache consistent:
whole downloads go to a temporary file renamed into place, the mirror is cut back to
the manifest's length before it is appended to, the blob's Parquet part is replaced
whole, and the manifest line is written last. The next sync neither duplicates nor
loses a record. A blob that cannot be downloaded or read is reported and left for the
next sync; the other blobs go on.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import threading
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import IO, Any
from urllib.parse import urlsplit

from natlens._files import LoadReport, Problem
from natlens._schema import empty_flows
from natlens._typing import PathLike, Targets, TimeLike
from natlens.azure._kql import range_bounds

__all__ = ["FLOW_CONTAINER", "SyncReport", "sync_blobs"]

FLOW_CONTAINER = "insights-logs-natgatewayflowlogsv1"
"""The container Azure Monitor writes NAT gateway flow logs into."""

_ROOT = "resourceId=/SUBSCRIPTIONS/"
_GATEWAYS = "PROVIDERS/MICROSOFT.NETWORK/NATGATEWAYS/"
_TAIL_WINDOW = 64 * 1024
_OVERLAP = 4096  # bytes fetched again before a grown blob's new bytes, to check it
_LAYOUT = 2  # mirror naming: 1 = blob names as paths, 2 = _mirror_path
_SHOWN = 10  # items listed per section of the summary
_STORAGE_SCOPE = "https://storage.azure.com/.default"


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
    problems
        What could not be kept, as :class:`natlens.Problem` values whose ``file`` is
        the blob name: each bad record (with its line; the rest of the blob is stored)
        and each blob that could not be stored at all (line ``None``).
    failed
        Blobs not stored by this run (download or read failed); the next sync tries
        them again.
    deleted
        Blobs of the listed hours that the cache holds but the container no longer
        has. Their records stay in the cache; each is reported once.

    Examples
    --------
    >>> from natlens import Problem
    >>> report = SyncReport("acct.blob.core.windows.net/logs", blobs_seen=2, blobs_new=2)
    >>> report.problems.append(Problem("a/PT1H.json", 7, "time 'infinity' is not a time"))
    >>> print(report)  # doctest: +NORMALIZE_WHITESPACE
    acct.blob.core.windows.net/logs: 0 gateway(s), 2 blob(s) in range: 2 new, 0 grown,
    0 replaced, 0 unchanged; 0 bytes downloaded, 0 records written
    1 bad record(s) skipped (the rest of each blob is stored):
      a/PT1H.json:7: time 'infinity' is not a time
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
    problems: list[Problem] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)
    deleted: list[str] = field(default_factory=list)

    def __str__(self) -> str:
        lines = [
            f"{self.source}: {len(self.gateways)} gateway(s), {self.blobs_seen} blob(s) in range: "
            f"{self.blobs_new} new, {self.blobs_grown} grown, {self.blobs_replaced} replaced, "
            f"{self.blobs_unchanged} unchanged; {self.bytes_downloaded:,} bytes downloaded, "
            f"{self.records:,} records written"
            + (
                f", {self.bytes_pending:,} bytes of torn lines pending"
                if self.bytes_pending
                else ""
            )
        ]
        failed = set(self.failed)
        bad = [p for p in self.problems if p.file not in failed or p.line is not None]
        lost = [p for p in self.problems if p.file in failed and p.line is None]
        if bad:
            lines.append(f"{len(bad):,} bad record(s) skipped (the rest of each blob is stored):")
            lines.extend(_listed([str(p) for p in bad], "report.problems"))
        if self.failed:
            lines.append(f"{len(self.failed):,} blob(s) not stored (tried again next run):")
            lines.extend(_listed([str(p) for p in lost], "report.failed"))
        if self.deleted:
            lines.append(f"{len(self.deleted):,} deleted upstream (kept in the cache):")
            lines.extend(_listed(self.deleted, "report.deleted"))
        return "\n".join(lines)


def _listed(items: Sequence[str], where: str) -> list[str]:
    shown = [f"  {item}" for item in items[:_SHOWN]]
    if len(items) > _SHOWN:
        shown.append(f"  ... and {len(items) - _SHOWN:,} more (see {where})")
    return shown


@dataclass(frozen=True)
class _Entry:
    etag: str
    blob_size: int
    size: int
    last_modified: str
    blob_type: str
    created: str = ""
    deleted: str = ""  # when the sync found it gone upstream


def _retry_policy(retry_total: int, backoff: int) -> Any:
    from azure.core.exceptions import ClientAuthenticationError
    from azure.storage.blob import ExponentialRetry

    class _Retry(ExponentialRetry):
        """Exponential retry that waits what a ``Retry-After`` header asks, when there is one.

        A credential that cannot sign in is not asked again: it will not change its mind,
        and asking again costs minutes.
        """

        def increment(self, settings: dict[str, Any], request: Any, *args: Any, **kw: Any) -> bool:
            if isinstance(kw.get("error"), ClientAuthenticationError):
                return False
            return bool(super().increment(settings, request, *args, **kw))

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


class _Quiet(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return False


@contextmanager
def _identity_quiet() -> Iterator[None]:
    """Hold back azure-identity's own report of a failed sign-in (natlens says it once).

    Only loggers the application left alone are touched, and only for the duration.
    """
    names = [
        name
        for name in ("azure.identity._credentials.chained", "azure.identity._internal.decorators")
        if logging.getLogger(name).level == logging.NOTSET
    ]
    quiet = _Quiet()
    for name in names:
        logging.getLogger(name).addFilter(quiet)
    try:
        yield
    finally:
        for name in names:
            logging.getLogger(name).removeFilter(quiet)


def _check_credential(credential: Any, account: str) -> None:
    """Ask a token credential for a storage token once, up front.

    Without this, a machine with no Azure sign-in learns it only after every request's
    retries (minutes), with azure-identity's long report printed each time.
    """
    if not callable(getattr(credential, "get_token", None)):
        return  # a SAS, an account key: checked by the service itself
    from azure.core.exceptions import ClientAuthenticationError

    try:
        with _identity_quiet():
            credential.get_token(_STORAGE_SCOPE)
    except ClientAuthenticationError as err:
        reason = (str(err).strip().splitlines() or [type(err).__name__])[0]
        raise RuntimeError(
            f"no Azure credential could sign in to {account} ({reason}). Sign in with "
            "`az login` (or a managed identity, or AZURE_CLIENT_ID/AZURE_TENANT_ID/"
            "AZURE_CLIENT_SECRET), or give a SAS URL (account_url, --account-url "
            "'https://<account>.blob.core.windows.net/?<SAS>'), or a connection string "
            "(connection_string, --connection-string or AZURE_STORAGE_CONNECTION_STRING)"
        ) from None


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
        _check_credential(credential, urlsplit(account_url).netloc or account_url)
        service = BlobServiceClient(account_url, credential=credential, retry_policy=policy)
    else:
        raise ValueError("pass account_url (with a credential or a SAS) or connection_string")
    parts = urlsplit(service.url)
    label = f"{parts.netloc}{parts.path.rstrip('/')}/{container}"
    return service.get_container_client(container), label


def _names(values: Targets | None, argument: str) -> list[str] | None:
    """One name or many as a list (None: no filter); an empty filter is an error."""
    if values is None:
        return None
    names = [values] if isinstance(values, str) else list(values)
    if not names:
        raise ValueError(f"{argument} is empty; pass None for no filter")
    return names


def _hours(start: datetime, end: datetime) -> list[datetime]:
    """Hour folders that can hold records timed in ``[start, end)``.

    Records are filed by receive time, a few minutes after their own time: the hour after
    the range is listed too.
    """
    first = start.replace(minute=0, second=0, microsecond=0)
    last = (end - timedelta(microseconds=1)).replace(minute=0, second=0, microsecond=0)
    hours = []
    hour = first
    while hour <= last + timedelta(hours=1):
        hours.append(hour)
        hour += timedelta(hours=1)
    return hours


def _hour_prefix(name: str) -> str | None:
    """The ``.../h=HH/`` listing prefix a blob name lies under, if it has one."""
    at = name.find("/h=")
    if at < 0:
        return None
    end = name.find("/", at + 1)
    return None if end < 0 else name[: end + 1]


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
    return sorted(p for p in found_gateways if _wanted(p, gateways, None))


def _wanted(
    prefix: str, gateways: Sequence[str] | None, subscriptions: Sequence[str] | None
) -> bool:
    """Whether a gateway folder ``resourceId=/SUBSCRIPTIONS/.../NATGATEWAYS/<NAME>/`` is kept."""
    rid = prefix[len("resourceId=") :].strip("/").upper()
    if subscriptions is not None:
        sub = rid.split("/")[1] if rid.count("/") >= 1 else ""
        if sub not in {s.strip().upper() for s in subscriptions}:
            return False
    if gateways is None:
        return True
    wanted = {g.strip().strip("/").upper() for g in gateways}
    return rid in wanted or rid.rsplit("/", 1)[-1] in wanted


def _gateway_of(name: str) -> str | None:
    """The gateway folder a blob name lies in, if it has one."""
    at = name.find(_GATEWAYS)
    end = name.find("/", at + len(_GATEWAYS)) if at >= 0 else -1
    return name[: end + 1] if name.startswith(_ROOT) and end >= 0 else None


class _Manifest:
    """``manifest.jsonl``: a journal of blob entries, last line per name wins.

    A first line ``{"layout": N}`` says how mirror files are named; a manifest without
    one comes from natlens versions that used the blob names as paths (layout 1).
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self.entries: dict[str, _Entry] = {}
        self.lock = threading.Lock()
        self.layout = _LAYOUT if not path.exists() else 1
        if path.exists():
            with path.open("rb") as handle:
                for line in handle:
                    try:
                        item = json.loads(line)
                        if "layout" in item and "name" not in item:
                            self.layout = int(item["layout"])
                            continue
                        self.entries[item["name"]] = _Entry(
                            etag=item["etag"],
                            blob_size=int(item["blob_size"]),
                            size=int(item["size"]),
                            last_modified=item["last_modified"],
                            blob_type=item["blob_type"],
                            created=item.get("created", ""),
                            deleted=item.get("deleted", ""),
                        )
                    except (ValueError, KeyError, TypeError, AttributeError):
                        # A line torn by a kill: its blob is fetched again.
                        continue
        self.journal: IO[bytes] | None = None

    def __enter__(self) -> _Manifest:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def record(self, name: str, entry: _Entry) -> None:
        line = json.dumps({"name": name, **entry.__dict__}, separators=(",", ":")) + "\n"
        with self.lock:
            if self.journal is None:
                new = not self.path.exists()
                self.journal = self.path.open("ab")
                if new:
                    self.journal.write(json.dumps({"layout": self.layout}).encode() + b"\n")
            self.journal.write(line.encode())
            self.journal.flush()
            self.entries[name] = entry

    def close(self) -> None:
        with self.lock:
            if self.journal is not None:
                self.journal.close()
                self.journal = None

    def compact(self) -> None:
        self.close()
        with self.lock:
            temporary = self.path.with_name(self.path.name + ".tmp")
            with temporary.open("w") as handle:
                handle.write(json.dumps({"layout": self.layout}) + "\n")
                for name in sorted(self.entries):
                    entry = self.entries[name]
                    handle.write(json.dumps({"name": name, **entry.__dict__}) + "\n")
            os.replace(temporary, self.path)


# Characters kept as they are in mirror names; every other one is %-escaped (so "~",
# which marks files, and "%" itself never appear unescaped).
_SAFE = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_.=,+@")
_RESERVED = frozenset(
    ["CON", "PRN", "AUX", "NUL", "CONIN$", "CONOUT$"]
    + [f"{device}{n}" for device in ("COM", "LPT") for n in [*"123456789", "¹", "²", "³"]]
)


def _escape(text: str) -> str:
    """One name segment, safe on Windows, macOS and Linux, and reversible.

    Every character outside ``_SAFE`` becomes ``%XX`` (its UTF-8 bytes); a segment
    that Windows would alter or refuse (empty, dots only, a trailing dot, a device name
    such as ``CON`` or ``con.json``) has its first or last character escaped as well.
    """
    out = "".join(c if c in _SAFE else "".join(f"%{b:02X}" for b in c.encode()) for c in text)
    if not out:
        return "%"  # an empty segment ("a//b"): a lone "%" arises from nothing else
    if out.strip(".") == "" or out.split(".", 1)[0].upper() in _RESERVED:
        out = f"%{ord(out[0]):02X}{out[1:]}"
    if out.endswith("."):
        out = out[:-1] + "%2E"
    return out


def _mirror_path(root: Path, name: str) -> Path:
    """Where blob ``name`` is mirrored under ``root``: distinct for distinct names.

    Folders are the name's ``/``-separated segments, escaped (:func:`_escape`). The
    file is ``<stem>~<hash><suffixes>`` from the last segment, where ``<hash>`` is 16
    hex digits of the SHA-256 of the whole name: files never take a folder's place
    (folders hold no ``~``), and names that differ only in case stay apart on the
    case-insensitive file systems of Windows and macOS.

    Examples
    --------
    >>> from pathlib import PurePosixPath
    >>> path = _mirror_path(Path("blobs"), "resourceId=/SUBSCRIPTIONS/S/y=2025/PT1H.json")
    >>> PurePosixPath(path).parent.as_posix(), path.name.split("~")[0], path.suffix
    ('blobs/resourceId=/SUBSCRIPTIONS/S/y=2025', 'PT1H', '.json')
    >>> _mirror_path(Path("b"), "x") != _mirror_path(Path("b"), "X")
    True
    """
    *folders, last = name.split("/")
    stem, dot, suffixes = last.partition(".")
    digest = hashlib.sha256(name.encode()).hexdigest()[:16]
    file = f"{_escape(stem) if stem else ''}~{digest}" + (f".{_escape(suffixes)}" if dot else "")
    if dot and not suffixes:
        file = file[:-1] + "%2E"  # "x." : the dot kept, escaped (no trailing dot)
    return root.joinpath(*[_escape(f) for f in folders], file)


def _layout1_path(root: Path, name: str) -> Path | None:
    """Where natlens versions before layout 2 mirrored ``name`` (None: nowhere)."""
    parts = name.split("/")
    if not parts or any(p in ("", ".", "..") for p in parts):
        return None
    return root.joinpath(*parts)


def _migrate(manifest: _Manifest, mirror: Path) -> None:
    """Move a layout-1 mirror's files to their layout-2 names (once per cache)."""
    for name in manifest.entries:
        old = _layout1_path(mirror, name)
        if old is not None and old.is_file():
            new = _mirror_path(mirror, name)
            new.parent.mkdir(parents=True, exist_ok=True)
            os.replace(old, new)
    manifest.layout = _LAYOUT
    manifest.compact()


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
            except RecursionError:
                return end  # too deep to be a record: the loader reports it
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


@dataclass
class _Done:
    kind: str  # what was really done: a "grown" blob whose overlap differs is "replaced"
    downloaded: int
    pending: int
    records: int
    problems: list[Problem]


def sync_blobs(
    cache_dir: PathLike,
    start: TimeLike,
    end: TimeLike | None = None,
    *,
    account_url: str | None = None,
    connection_string: str | None = None,
    credential: Any = None,
    container: str = FLOW_CONTAINER,
    gateways: Targets | None = None,
    subscriptions: str | Sequence[str] | None = None,
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

    A bad record (a time that is not a time, a counter out of range, a line that is not
    JSON) costs that record: it is listed in :attr:`SyncReport.problems` with its blob
    and line, and the rest of the blob is stored. A blob that cannot be downloaded or
    read is listed in :attr:`SyncReport.failed` and tried again by the next sync; the
    other blobs go on. Blobs the cache holds that are gone from the listed hours are
    listed in :attr:`SyncReport.deleted` (their records stay in the cache).

    Parameters
    ----------
    cache_dir
        The cache; created if missing. One sync at a time per cache.
    start, end
        The range of record times (naive is UTC); ``end`` defaults to now. Blobs are
        filed by receive time, so the hour after ``end`` is listed too, and the store
        keeps every record of the blobs fetched (filter when scanning).
    account_url
        ``https://<account>.blob.core.windows.net`` (a SAS may be in its query string).
    connection_string
        A storage connection string, instead of ``account_url``.
    credential
        For ``account_url``: an azure-identity credential, a SAS token string or an
        ``azure.core.credentials.AzureNamedKeyCredential``; default
        ``DefaultAzureCredential()`` unless the URL carries a SAS. A token credential
        is asked for a token once before anything is listed, so a machine without an
        Azure sign-in fails within seconds.
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

    Raises
    ------
    RuntimeError
        Another sync holds the cache, or no credential could sign in (the message says
        what to do: ``az login``, a SAS URL or a connection string).
    ValueError
        A bad argument.

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
        print(report)  # counts, then any bad records, failed and deleted blobs
        flows = natlens.scan_parquet("~/.cache/natlens/prod/parquet")
    """
    from filelock import FileLock, Timeout
    from tqdm.auto import tqdm

    import natlens

    low, high = range_bounds(start, datetime.now(UTC) if end is None else end)
    gateways = _names(gateways, "gateways")
    subscriptions = _names(subscriptions, "subscriptions")
    if max_workers < 1:
        raise ValueError(f"max_workers={max_workers} must be at least 1")
    root = Path(cache_dir).expanduser()
    client, label = _container(
        account_url=account_url,
        connection_string=connection_string,
        credential=credential,
        container=container,
        retry_total=retry_total,
        retry_backoff=retry_backoff,
    )
    root.mkdir(parents=True, exist_ok=True)
    report = SyncReport(source=label)
    lock = FileLock(root / ".sync.lock", timeout=0)
    try:
        held = lock.acquire()
    except Timeout:
        raise RuntimeError(f"another natlens sync is using the cache {root}") from None
    with held, _Manifest(root / "manifest.jsonl") as manifest:
        mirror = root / "blobs"
        store = root / "parquet"
        partial = root / "partial"
        shutil.rmtree(partial, ignore_errors=True)  # downloads a killed sync left
        if manifest.layout != _LAYOUT:
            _migrate(manifest, mirror)
        with client, ThreadPoolExecutor(max_workers=max_workers) as pool:
            prefixes = _gateway_prefixes(client, gateways, subscriptions, pool)
            report.gateways = [p[len("resourceId=") :].rstrip("/") for p in prefixes]
            # Gateways the cache knows whose folder is gone: listed too, so that their
            # deleted blobs are noticed.
            known = {_gateway_of(name) for name in manifest.entries} - {None, *prefixes}
            prefixes += sorted(
                g for g in known if g is not None and _wanted(g, gateways, subscriptions)
            )
            hour_prefixes = [
                f"{g}y={h:%Y}/m={h:%m}/d={h:%d}/h={h:%H}/"
                for g in prefixes
                for h in _hours(low, high)
            ]
            report.prefixes_listed = len(hour_prefixes)
            listed = [
                blob
                for found in pool.map(
                    lambda p: list(client.list_blobs(name_starts_with=p)), hour_prefixes
                )
                for blob in found
            ]
            jobs = _plan(listed, manifest, report, set(hour_prefixes))
            bar = tqdm(
                total=sum(j.size - j.offset for j in jobs),
                unit="B",
                unit_scale=True,
                desc=f"sync {len(jobs)} blob(s)",
                disable=None if progress is None else not progress,
            )
            counts = threading.Lock()

            def run(job: _Job) -> None:
                try:
                    done = _fetch(
                        client=client,
                        job=job,
                        manifest=manifest,
                        mirror=mirror,
                        partial=partial,
                        store=store,
                        natlens=natlens,
                    )
                except _BlobFailed as failure:
                    with counts:
                        report.failed.append(job.name)
                        report.problems.append(Problem(job.name, None, str(failure)))
                        bar.update(job.size - job.offset)
                    return
                with counts:
                    if done.kind != job.kind:  # a "grown" blob that was in fact replaced
                        report.blobs_grown -= 1
                        report.blobs_replaced += 1
                    report.bytes_downloaded += done.downloaded
                    report.bytes_pending += done.pending
                    report.records += done.records
                    report.problems.extend(done.problems)
                    bar.update(job.size - job.offset)

            try:
                for _ in pool.map(run, jobs):
                    pass
            finally:
                bar.close()
        report.failed.sort()
        report.problems.sort(key=lambda p: (p.file, p.line or 0))
        manifest.compact()
    return report


def _etag(value: str | None) -> str:
    """The etag without the quotes some answers wrap it in."""
    return (value or "").strip().strip('"')


def _compressed(name: str) -> bool:
    """A gzip blob (e.g. a copied ``PT1H.json.gz``): whole or nothing, never appended to."""
    return name.endswith(".gz")


def _when(value: datetime | None) -> str:
    return value.astimezone(UTC).isoformat() if value is not None else ""


def _plan(
    listed: Sequence[Any], manifest: _Manifest, report: SyncReport, hour_prefixes: set[str]
) -> list[_Job]:
    jobs: list[_Job] = []
    names = set()
    for blob in listed:
        names.add(blob.name)
        report.blobs_seen += 1
        blob_type = str(getattr(blob.blob_type, "value", blob.blob_type))
        modified = _when(blob.last_modified)
        created = _when(getattr(blob, "creation_time", None))
        known = manifest.entries.get(blob.name)
        args = (blob.name, _etag(blob.etag), int(blob.size), modified, blob_type, created)
        if known is None:
            report.blobs_new += 1
            jobs.append(_Job(*args, offset=0, kind="new"))
        elif known.etag == _etag(blob.etag) and known.blob_size == blob.size and not known.deleted:
            report.blobs_unchanged += 1
        elif (
            blob_type == "AppendBlob"
            and known.blob_type == "AppendBlob"
            and not known.deleted
            and not _compressed(blob.name)
            and blob.size >= known.size > 0
            and known.created == created  # same-second recreations: the overlap check
        ):
            report.blobs_grown += 1
            jobs.append(_Job(*args, offset=known.size, kind="grown"))
        else:
            report.blobs_replaced += 1
            jobs.append(_Job(*args, offset=0, kind="replaced"))
    now = datetime.now(UTC).isoformat()
    for name, entry in list(manifest.entries.items()):
        if not entry.deleted and name not in names and _hour_prefix(name) in hour_prefixes:
            report.deleted.append(name)
            manifest.record(name, _Entry(**{**entry.__dict__, "deleted": now}))
    report.deleted.sort()
    return jobs


class _BlobFailed(Exception):
    """One blob could not be stored; the message says which step and why."""


def _first_line(error: BaseException) -> str:
    text = str(error).strip()
    return f"{type(error).__name__}: {text.splitlines()[0]}" if text else type(error).__name__


def _lines_before(path: Path, offset: int) -> int:
    """Line breaks in the first ``offset`` bytes of ``path``."""
    count = 0
    with path.open("rb") as handle:
        while offset > 0:
            chunk = handle.read(min(offset, 1 << 20))
            if not chunk:
                break
            count += chunk.count(b"\n")
            offset -= len(chunk)
    return count


def _fetch(
    *,
    client: Any,
    job: _Job,
    manifest: _Manifest,
    mirror: Path,
    partial: Path,
    store: Path,
    natlens: Any,
) -> _Done:
    """Download one blob's new bytes, rewrite its Parquet part, then record it."""
    from polars.exceptions import PanicException

    path = _mirror_path(mirror, job.name)
    try:
        got, kept, etag, blob_size, kind = _download(client, job, path, partial)
    except (Exception, PanicException) as err:
        raise _BlobFailed(f"could not be downloaded: {_first_line(err)}") from err
    seen_lines = _lines_before(path, job.offset) if kind == "grown" else 0
    load = LoadReport()
    try:
        flows = natlens.read_flowlogs(path, report=load) if kept else empty_flows()
        natlens.write_parquet(flows, store, part=job.name)
    except (Exception, PanicException) as err:
        raise _BlobFailed(f"could not be read: {_first_line(err)}") from err
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
    problems = [
        Problem(job.name, p.line, p.reason)
        for p in load.problems
        if p.line is None or p.line > seen_lines  # earlier lines were reported before
    ]
    return _Done(kind, got, blob_size - kept, flows.height, problems)


def _download(client: Any, job: _Job, path: Path, partial: Path) -> tuple[int, int, str, int, str]:
    """Bring the mirror of ``job`` up to date: (downloaded, kept, etag, blob size, kind)."""
    if job.offset and path.is_file() and path.stat().st_size >= job.offset:
        overlap = min(job.offset, _OVERLAP)
        with path.open("r+b") as handle:
            handle.truncate(job.offset)  # drop bytes a killed run appended unrecorded
            handle.seek(job.offset - overlap)
            mirrored = handle.read(overlap)
            stream = client.download_blob(
                job.name, offset=job.offset - overlap, length=job.size - job.offset + overlap
            )
            head = stream.read(overlap)
            if head == mirrored:
                handle.seek(job.offset)
                got = overlap + stream.readinto(handle)
                handle.flush()
                kept = _complete_length(handle, job.offset)
                handle.truncate(kept)
                return got, kept, job.etag, job.size, "grown"
        # Not the blob mirrored: deleted and written anew (same name, same second).
        replaced = _download(client, _Job(**{**job.__dict__, "offset": 0}), path, partial)
        return replaced[0] + overlap, *replaced[1:4], "replaced"
    partial.mkdir(parents=True, exist_ok=True)
    temporary = partial / (hashlib.sha256(job.name.encode()).hexdigest() + ".download")
    with temporary.open("w+b") as handle:
        stream = client.download_blob(job.name)
        got = stream.readinto(handle)
        handle.flush()
        kept = handle.tell() if _compressed(job.name) else _complete_length(handle, 0)
        handle.truncate(kept)
    path.parent.mkdir(parents=True, exist_ok=True)
    os.replace(temporary, path)
    return got, kept, _etag(stream.properties.etag), int(stream.size), job.kind
