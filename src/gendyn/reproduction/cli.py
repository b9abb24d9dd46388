"""``gendyn reproduce``: build the reproduction index from a results folder.

    gendyn reproduce RESULTS_DIR OUT.csv --settings JSON (--declared JSON | --config CONFIG ...)
        [--set KEY=VALUE ...] [--html OUT.html] [--summary-html OUT.html]

``--settings`` is the config's ``reproduction`` section as JSON (schema defaults fill the
rest; ``--set thresholds.lc.ascent=1.5`` changes one key). ``--declared`` is what the
workflow passes: :func:`gendyn.reproduction.declare.declarations` of its config as JSON;
``--config`` computes it from config files (merged in order, as Snakemake merges
``--configfile``s), for results built without the workflow's rule.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

__all__ = ["register"]


def register(subparsers: Any) -> None:
    """Add ``gendyn reproduce`` to the top-level parser."""
    from gendyn.cliutil import add_settings_arguments

    p = subparsers.add_parser(
        "reproduce", help="the reproduction index: every paper figure's claims with their verdicts",
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter,
    )  # fmt: skip
    p.add_argument("results_dir", help="results folder (results_dir of the config)")
    p.add_argument("out", help="output CSV (results/reproduction.csv)")
    add_settings_arguments(p, "reproduction")
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--declared", help="declared figures and runs as JSON (gendyn.reproduction.declare.declarations)")
    src.add_argument("--config", nargs="+", help="workflow config file(s) whose `reproduces` declarations to use")
    p.add_argument("--html", default=None, help="also write the index as an HTML table (every column but the files)")
    p.add_argument("--summary-html", default=None, help="also write the compact HTML table of the report's first page")
    p.set_defaults(func=_run)


def _run(args: argparse.Namespace) -> int:
    import logging

    from gendyn.cliutil import settings_from_args
    from gendyn.config import ConfigError
    from gendyn.reproduction.engine import build_index, write_index

    settings = settings_from_args("reproduction", args)
    if args.declared is not None:
        try:
            declared = json.loads(args.declared)
        except json.JSONDecodeError as e:
            raise ConfigError(f"--declared: not valid JSON ({e})") from None
    else:
        from gendyn.cli import _load_configs
        from gendyn.reproduction.declare import declarations

        declared = declarations(_load_configs(args.config))
    results = Path(args.results_dir)
    if not results.is_dir():
        raise FileNotFoundError(f"{results}: no such results folder")
    rows = build_index(results, declared, settings)
    write_index(rows, Path(args.out), args.html, args.summary_html)
    counts = {v: sum(r["verdict"] == v for r in rows) for v in ("reproduced", "partial", "not reproduced", "not run")}
    logging.getLogger("gendyn").info("wrote %s: %d rows, %s", args.out, len(rows), ", ".join(f"{n} {v}" for v, n in counts.items()))
    return 0
