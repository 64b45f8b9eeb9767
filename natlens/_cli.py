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
    parser.add_argument("extra", nargs=argparse.REMAINDER, help="passed to jupyter lab")
    parser.set_defaults(handler=_run_lab)


def _run_lab(args: argparse.Namespace) -> int:
    from pathlib import Path

    from natlens._lab import run_lab

    extra = [a for a in args.extra if a != "--"]
    folder = Path(args.notebook_dir) if args.notebook_dir else None
    return run_lab(notebook_dir=folder, port=args.port, no_browser=args.no_browser, extra=extra)


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
