"""``gendyn diff``: the command (``register`` for the gendyn CLI, ``main`` on its own)."""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path
from typing import Any


from gendyn.diff.common import (
    DEFAULT_IGNORED_ATTRS,
    DEFAULT_INCLUDE,
    FILE,
    format_difference,
)
from gendyn.diff.trees import _diff_pair, _diff_trees


def add_arguments(p: argparse.ArgumentParser) -> None:
    """The ``diff`` subcommand's arguments, on parser ``p``."""
    p.add_argument("a", metavar="A", help="first results tree (or file)")
    p.add_argument("b", metavar="B", help="second results tree (or file)")
    p.add_argument(
        "--ignore-attr",
        metavar="NAME",
        action="append",
        default=[],
        help="also ignore this attribute name (fnmatch pattern; repeatable)",
    )
    p.add_argument(
        "--no-default-ignores",
        action="store_true",
        help="compare the version/time/host attributes ignored by default: " + ", ".join(DEFAULT_IGNORED_ATTRS),
    )
    p.add_argument("--rtol", type=float, default=0.0, metavar="X", help="relative tolerance for floats (default 0)")
    p.add_argument("--atol", type=float, default=0.0, metavar="X", help="absolute tolerance for floats (default 0)")
    p.add_argument(
        "--max-lines",
        type=int,
        default=200,
        metavar="N",
        help="print at most N differences (default 200; negative: all); the summary counts all",
    )
    p.add_argument(
        "--results-only",
        action="store_true",
        help="consider only result files (run.h5, checkpoints.h5, *.nc, *.csv, *.yaml), also for presence: "
        "figures, logs and reports may differ",
    )
    p.add_argument("--json", action="store_true", help="print the differences as a JSON list")


def register(subparsers: Any) -> None:
    """Add ``gendyn diff`` to the ``gendyn`` command line's subparsers."""
    p = subparsers.add_parser(
        "diff",
        help="compare two results trees dataset by dataset (exit 1 when they differ)",
        description="Compare two results trees (or two files): HDF5/netCDF dataset by dataset, "
        "csv/yaml line by line; figures and logs only for presence. Exit status 0: same, 1: different, "
        "2: usage error.",
    )
    add_arguments(p)
    p.set_defaults(func=cmd_diff)


def cmd_diff(args: argparse.Namespace) -> int:
    """Run ``gendyn diff``; returns the exit status (0 same, 1 different, 2 usage error)."""
    a, b = Path(args.a), Path(args.b)
    for label, p in (("A", a), ("B", b)):
        if not p.exists():
            print(f"gendyn diff: error: {label}: no such directory: {p}", file=sys.stderr)
            return 2
    if a.is_dir() != b.is_dir():
        print(f"gendyn diff: error: {a} and {b} must both be directories or both be files", file=sys.stderr)
        return 2
    if not (args.rtol >= 0 and args.atol >= 0):
        print("gendyn diff: error: --rtol and --atol must be >= 0", file=sys.stderr)
        return 2
    ignore = ([] if args.no_default_ignores else list(DEFAULT_IGNORED_ATTRS)) + list(args.ignore_attr)
    if a.is_dir():
        diffs, n_compared = _diff_trees(
            a, b, ignore_attrs=ignore, rtol=args.rtol, atol=args.atol, include=DEFAULT_INCLUDE,
            results_only=args.results_only,
        )  # fmt: skip
    else:
        diffs = _diff_pair(a, b, a.name, ignore_attrs=ignore, rtol=args.rtol, atol=args.atol)
        n_compared = 1
    only_a = sum(d.kind == "only_in_a" and d.where == FILE for d in diffs)
    only_b = sum(d.kind == "only_in_b" and d.where == FILE for d in diffs)
    n_differ = len({d.path for d in diffs if not (d.where == FILE and d.kind in ("only_in_a", "only_in_b"))})
    summary = f"{n_compared} file(s) compared, {n_differ} differ, {only_a} only in A, {only_b} only in B"
    status = 1 if diffs else 0
    try:
        if args.json:
            json.dump([d.to_dict() for d in diffs], sys.stdout, indent=1)
            sys.stdout.write("\n")
            sys.stdout.flush()
            print(summary, file=sys.stderr)
        else:
            limit = args.max_lines if args.max_lines >= 0 else len(diffs)
            for d in diffs[:limit]:
                print(format_difference(d))
            if len(diffs) > limit:
                print(f"... {len(diffs) - limit} more difference(s) not shown (--max-lines {args.max_lines})")
            print(summary)
            sys.stdout.flush()
    except BrokenPipeError:  # `gendyn diff A B | head`: the reader has gone, the status stands
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    return status


def main(argv: list[str] | None = None) -> int:
    """``gendyn diff`` on its own: parse ``argv`` (default ``sys.argv[1:]``) and run it.

    Returns
    -------
    int
        0 when the two trees agree, 1 when they differ, 2 on a usage error.
    """
    parser = argparse.ArgumentParser(prog="gendyn diff", description="Compare two results trees (or two files).")
    add_arguments(parser)
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # argparse's usage error (2) or --help (0)
        return int(exc.code) if isinstance(exc.code, int) else 2
    return cmd_diff(args)
