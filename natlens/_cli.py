"""The ``natlens`` command line: one sub-command per job, each a thin shell over the library."""

from __future__ import annotations

import argparse
import os
import re
import sys
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from natlens._summary import FlowSummary

Handler = Callable[[argparse.Namespace], int]


def _build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="natlens",
        description="Read, analyse and chart Azure NAT Gateway flow logs.",
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for add in _COMMANDS:
        add(sub)
    return parser


# Each entry adds one sub-command and sets ``handler`` on it.
_COMMANDS: list[Callable[[argparse._SubParsersAction[argparse.ArgumentParser]], None]] = []


def _add_lab(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = sub.add_parser(
        "lab",
        help="open JupyterLab on the natlens notebooks, samples ready",
        description="Open JupyterLab on the natlens notebooks with the sample data ready. "
        "Arguments after -- go to jupyter lab unchanged.",
    )
    parser.add_argument("--port", type=int, default=None, help="port for JupyterLab")
    parser.add_argument("--no-browser", action="store_true", help="do not open a browser")
    parser.add_argument("--notebook-dir", default=None, help="folder to open (default: notebooks/)")
    parser.add_argument(
        "--keep-outputs",
        action="store_true",
        help="save notebooks with their outputs (by default they are saved without, "
        "so running the shipped notebooks leaves the repository clean)",
    )
    parser.add_argument("extra", nargs=argparse.REMAINDER, help="passed to jupyter lab")
    parser.set_defaults(handler=_run_lab)


def _run_lab(args: argparse.Namespace) -> int:
    from pathlib import Path

    from natlens._lab import run_lab

    extra = args.extra[1:] if args.extra[:1] == ["--"] else args.extra
    folder = Path(args.notebook_dir) if args.notebook_dir else None
    return run_lab(
        notebook_dir=folder,
        port=args.port,
        no_browser=args.no_browser,
        keep_outputs=args.keep_outputs,
        extra=extra,
    )


def _price(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if not value >= 0:
        raise argparse.ArgumentTypeError(f"must be a number of at least 0, got {text!r}")
    return value


def _rows(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {text!r}")
    return value


def _add_summary_options(parser: argparse.ArgumentParser, *, rows: int) -> None:
    """The inputs ``triage`` and ``report`` share: what :func:`natlens.summarize` takes."""
    parser.add_argument(
        "source",
        nargs="*",
        help="flow-log files, folders or globs "
        "(default: the shipped sample week with its metrics and side files)",
    )
    parser.add_argument(
        "--metrics",
        default=None,
        metavar="FILE",
        help="gateway metrics (CSV, CSV.gz or Parquet, e.g. the samples' metrics.csv.gz): "
        "health first, with datapath availability and SNAT connection failures",
    )
    parser.add_argument(
        "--inventory", default=None, metavar="FILE", help="inventory CSV ip,vm_name,...: VM names"
    )
    parser.add_argument(
        "--allowlist",
        default=None,
        metavar="FILE",
        help="allowed destinations, one IP, CIDR, Service Tag or hostname per line",
    )
    parser.add_argument(
        "--service-tags",
        default=None,
        metavar="FILE",
        help="Azure Service Tags JSON: destination labels and allowlist tags",
    )
    parser.add_argument(
        "--hostnames",
        default=None,
        metavar="FILE",
        help="JSON object host -> [IPs]: destination labels and allowlisted hostnames",
    )
    parser.add_argument(
        "--price-per-gb",
        type=_price,
        default=0.045,
        help="data processing price per GB (default 0.045; look up your region's)",
    )
    parser.add_argument("--currency", default="USD", help="currency of --price-per-gb (USD)")
    parser.add_argument("-n", type=_rows, default=rows, help=f"rows per table (default {rows})")
    parser.add_argument(
        "--problems",
        default=None,
        metavar="FILE.csv",
        help="write the records that could not be read (file, line, reason) to this CSV",
    )


# What the library says to Python callers, and what a command-line user types instead.
_CLI_WORDS = (
    (
        re.compile(r"pass resolver= \(.*?\) to look it up"),
        "pass --hostnames FILE (a JSON object host -> [IPs]) to look it up",
    ),
    (re.compile(r"not in the resolver mapping"), "not in the --hostnames file"),
    (
        re.compile(r"pass service_tags= to use"),
        "pass --service-tags FILE (Azure's Service Tags JSON) to use",
    ),
)


def _cli_words(message: str) -> str:
    """A library message with its Python advice turned into command-line options."""
    for pattern, words in _CLI_WORDS:
        message = pattern.sub(words, message)
    return message


def _summarize(args: argparse.Namespace, command: str) -> FlowSummary:
    """Read what the options name and summarize it; problems go to stderr and --problems.

    The side files are chosen and read as :func:`natlens.read_data` does (no source:
    the samples, with their own side files where none is named); the flows go to
    :func:`natlens.summarize` as paths, read there.
    """
    import natlens
    from natlens._flowdata import _read_sides, _Sides

    sides = _Sides(
        metrics=args.metrics,
        inventory=args.inventory,
        resolver=args.hostnames,
        service_tags=args.service_tags,
        allowlist=args.allowlist,
    )
    source: list[str | os.PathLike[str]] = list(args.source)
    if not source:
        samples = natlens.sample_data()
        source = [samples.flowlogs]
        sides = sides.or_samples(samples)
    read = _read_sides(sides)
    summary = natlens.summarize(
        source[0] if len(source) == 1 else source,
        metrics=read.metrics,
        inventory=read.inventory,
        service_tags=read.service_tags,
        resolver=read.resolver,
        allowlist=read.allowlist,
        price_per_gb=args.price_per_gb,
        currency=args.currency,
        n=args.n,
    )
    if summary.problems:
        count = len(summary.problems)
        lines = [f"natlens {command}: skipped {count:,} bad record(s):"]
        lines += [f"  {p}" for p in summary.problems[:5]]
        if args.problems:
            lines.append(f"  all {count:,} written to {args.problems}")
        elif count > 5:
            lines.append(f"  ... and {count - 5:,} more; --problems FILE.csv writes them all")
        print("\n".join(lines), file=sys.stderr)
    if args.problems:
        import polars as pl

        rows = [(p.file, p.line, p.reason) for p in summary.problems]
        pl.DataFrame(
            rows, schema={"file": pl.String, "line": pl.Int64, "reason": pl.String}, orient="row"
        ).write_csv(args.problems)
    return summary


def _add_report(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = sub.add_parser(
        "report",
        help="write a self-contained offline HTML report: health, usage, spikes, drops, compliance",
        description="Write a self-contained HTML report (charts inline, no CDN) of flow logs: "
        "gateway health (with --metrics), usage, spikes and cost, dropped packets and "
        "allowlist compliance. The same story natlens triage prints, with charts.",
    )
    _add_summary_options(parser, rows=10)
    parser.add_argument("-o", "--output", default="report.html", help="HTML file to write")
    parser.add_argument("--title", default=None, help="report title")
    parser.set_defaults(handler=_run_report)


def _run_report(args: argparse.Namespace) -> int:
    import natlens
    from natlens._report import write_report

    try:
        summary = _summarize(args, "report")
        out = write_report(summary, args.output, title=args.title)
    except (ValueError, OSError, natlens.FlowLogError) as exc:
        print(f"natlens report: {_cli_words(str(exc))}", file=sys.stderr)
        return 2
    print(f"natlens report: wrote {out} ({out.stat().st_size:,} bytes)")
    return 0


_COMMANDS.extend([_add_lab, _add_report])


def _add_triage(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = sub.add_parser(
        "triage",
        help="print a summary of flow logs, health first (the shipped samples by default)",
        description="Read flow logs and print what they say, health first: gateway health "
        "(with --metrics), volume and cost, top sources and destinations, NAT IP usage, "
        "spikes, dropped packets and compliance. The same story natlens report writes as HTML.",
    )
    _add_summary_options(parser, rows=5)
    parser.set_defaults(handler=_run_triage)


def _run_triage(args: argparse.Namespace) -> int:
    import natlens

    try:
        print(natlens.triage(_summarize(args, "triage")))
    except (OSError, natlens.FlowLogError, ValueError) as exc:
        print(f"natlens triage: {_cli_words(str(exc))}", file=sys.stderr)
        return 2
    return 0


_COMMANDS.append(_add_triage)


def _add_samples(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = sub.add_parser(
        "samples",
        help="write the sample data (flow logs, metrics, side files, answer key) to a folder",
        description="Generate a deterministic sample data set: flow logs in the storage-account "
        "layout, gateway metrics, inventory, allowlist, Service Tags, hostnames and an answer "
        "key of the planted events. The defaults reproduce the shipped data/samples.",
    )
    parser.add_argument("--out", required=True, metavar="DIR", help="folder to write")
    parser.add_argument("--seed", type=int, default=None, help="random seed (default: shipped)")
    parser.add_argument("--days", type=int, default=7, help="number of days (default 7)")
    parser.add_argument("--vms", type=int, default=100, help="number of VMs (default 100)")
    parser.add_argument(
        "--start", default=None, help="first day, YYYY-MM-DD, UTC (default: 2026-11-09)"
    )
    parser.add_argument("--force", action="store_true", help="replace earlier sample files")
    parser.set_defaults(handler=_run_samples)


def _run_samples(args: argparse.Namespace) -> int:
    from datetime import UTC, datetime

    from natlens._samplegen import DEFAULT_SEED, DEFAULT_START, generate_samples

    try:
        start = DEFAULT_START
        if args.start is not None:
            try:
                start = datetime.strptime(args.start, "%Y-%m-%d").replace(tzinfo=UTC)
            except ValueError:
                raise ValueError(f"--start must be a date YYYY-MM-DD, got {args.start!r}") from None
        summary = generate_samples(
            args.out,
            seed=DEFAULT_SEED if args.seed is None else args.seed,
            start=start,
            days=args.days,
            vms=args.vms,
            overwrite=args.force,
        )
    except (ValueError, FileExistsError, OSError) as exc:
        print(f"natlens samples: {exc}", file=sys.stderr)
        return 2
    print(
        f"wrote {summary.records:,} flow records in {summary.blobs} blobs, "
        f"{summary.metrics_rows:,} metric rows and the side files to {summary.directory} "
        f"({summary.bytes_written / 1e6:.1f} MB); planted: {', '.join(summary.events)}"
    )
    return 0


_COMMANDS.append(_add_samples)


def _add_sync(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = sub.add_parser(
        "sync",
        help="download flow-log blobs of a time range into a local cache and Parquet store",
        description="Bring the flow-log container's blobs for a time range into a local cache "
        "(a mirror, a manifest and a Parquet store read by natlens.scan_parquet). Only new or "
        "grown blobs are downloaded; an interrupted sync is safe to run again. Bad records "
        "are listed with their blob and line and the rest is stored. Point analyses at "
        "DIR/parquet. Credentials: "
        "--connection-string, or the AZURE_STORAGE_CONNECTION_STRING environment variable, or "
        "--account-url with a SAS in its query string or an Azure login "
        "(DefaultAzureCredential, checked once before anything is listed). They are never "
        "printed or cached. Exit status: 0 all blobs stored, 1 a blob not stored or the "
        "service refused, 2 bad arguments or no credential.",
    )
    parser.add_argument("--cache", required=True, metavar="DIR", help="the local cache folder")
    parser.add_argument("--account-url", default=None, help="https://<account>.blob.core...")
    parser.add_argument(
        "--connection-string",
        default=None,
        help="storage connection string (prefer the AZURE_STORAGE_CONNECTION_STRING variable)",
    )
    parser.add_argument(
        "--container", default="insights-logs-natgatewayflowlogsv1", help="flow-log container"
    )
    parser.add_argument(
        "--start",
        default="24h",
        help="first record time: ISO time (UTC if no zone) or a span back from now like 6h, "
        "7d (default 24h)",
    )
    parser.add_argument(
        "--end",
        default=None,
        help="end of the range, excluded: ISO time or a span back from now (default: now)",
    )
    parser.add_argument(
        "--gateway",
        action="append",
        default=None,
        help="NAT gateway name or resource id to keep (repeatable; default all)",
    )
    parser.add_argument(
        "--subscription", action="append", default=None, help="subscription id (repeatable)"
    )
    parser.add_argument("--workers", type=int, default=8, help="parallel downloads (default 8)")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    parser.set_defaults(handler=_run_sync)


def _run_sync(args: argparse.Namespace) -> int:
    """Sync, print the report: 0 all blobs stored, 1 a blob not stored or refused, 2 bad input."""
    from datetime import UTC, datetime, timedelta

    from natlens._time import parse_timestamp
    from natlens.azure import sync_blobs

    def moment(text: str, flag: str) -> datetime:
        """ISO time (UTC if no zone) or a span back from now (30m, 6h, 7d)."""
        span = text.strip().lower()
        if span[:-1].isdigit() and span[-1:] in ("m", "h", "d"):
            unit = {"m": "minutes", "h": "hours", "d": "days"}[span[-1]]
            return now - timedelta(**{unit: int(span[:-1])})
        try:
            return parse_timestamp(text)
        except ValueError:
            raise ValueError(
                f"{flag} {text!r} is neither an ISO time (2025-11-04T10:00) nor a span (6h, 7d)"
            ) from None

    now = datetime.now(UTC)
    connection_string = args.connection_string
    try:
        start = moment(args.start, "--start")
        end = None if args.end is None else moment(args.end, "--end")
        if connection_string is None and args.account_url is None:
            connection_string = os.environ.get("AZURE_STORAGE_CONNECTION_STRING") or None
            if connection_string is None:
                raise ValueError(
                    "pass --account-url or --connection-string "
                    "(or set AZURE_STORAGE_CONNECTION_STRING)"
                )
        report = sync_blobs(
            args.cache,
            start,
            end,
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
    return 1 if report.failed else 0


_COMMANDS.append(_add_sync)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the ``natlens`` command line and return its exit code."""
    parser = _build_parser()
    args = parser.parse_args(argv)
    handler: Handler = args.handler
    try:
        return handler(args)
    except KeyboardInterrupt:
        print("natlens: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    raise SystemExit(main())
