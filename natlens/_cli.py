"""The ``natlens`` command line: one sub-command per job, each a thin shell over the library."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence

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


def _add_report(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = sub.add_parser(
        "report",
        help="write a self-contained offline HTML report of usage, spikes, drops, compliance",
        description="Write a self-contained HTML report (charts inline, no CDN) of a flow-log "
        "source: usage, spikes, drops and allowlist compliance.",
    )
    parser.add_argument("source", nargs="+", help="flow-log file(s), folder or glob")
    parser.add_argument("-o", "--output", default="report.html", help="HTML file to write")
    parser.add_argument("--inventory", default=None, help="CSV/JSON inventory: IP -> VM name")
    parser.add_argument("--allowlist", default=None, help="text file of allowed IPs/CIDRs")
    parser.add_argument(
        "--price-per-gb", type=float, default=0.045, help="data processing price per GB"
    )
    parser.add_argument("--currency", default="USD", help="currency of --price-per-gb")
    parser.add_argument(
        "--service-tags", default=None, help="Azure Service Tags JSON (labels, allowlist tags)"
    )
    parser.add_argument(
        "--hostnames", default=None, help="JSON host name -> IPs, for allowlisted host names"
    )
    parser.add_argument("--title", default=None, help="report title")
    parser.set_defaults(handler=_run_report)


def _run_report(args: argparse.Namespace) -> int:
    from natlens._report import run_report

    return run_report(args)


_COMMANDS.extend([_add_lab, _add_report])


def _add_triage(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = sub.add_parser(
        "triage",
        help="print a one-screen summary of flow logs (the shipped samples by default)",
        description="Read flow logs and print their span, top talkers and destinations, "
        "NAT IP usage, dropped packets and traffic spikes.",
    )
    parser.add_argument(
        "source",
        nargs="*",
        help="files, directories or globs of flow logs (default: the shipped sample week)",
    )
    parser.add_argument("-n", type=int, default=5, help="rows per table (default 5)")
    parser.set_defaults(handler=_run_triage)


def _run_triage(args: argparse.Namespace) -> int:
    import warnings

    import natlens
    from natlens._triage import triage

    source = args.source or [natlens.sample_data().flowlogs]
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", natlens.FlowLogWarning)  # triage reports the count
            print(triage(source, n=args.n))
    except (FileNotFoundError, natlens.FlowLogError, ValueError) as exc:
        print(f"natlens triage: {exc}", file=sys.stderr)
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
        "--since",
        default="24h",
        help="start: ISO time (UTC if no zone) or a span back from now like 6h, 7d (default 24h)",
    )
    parser.add_argument("--until", default=None, help="end: ISO time (default: now)")
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
    from natlens.azure._blob import run_sync

    return run_sync(args)


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
