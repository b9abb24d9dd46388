"""``gendyn memorization``: the paper-003 experiment table; logic in :mod:`gendyn.memorization.stage`.

    gendyn memorization summary EXP_DIR OUT.nc [--csv OUT.csv]   epochs to threshold per run

Options: see :mod:`gendyn.cliutil` (``--settings`` is ``analyses.memorization`` as JSON;
the stage reads ``threshold_metric``, ``threshold``, ``patience``, ``interpolate``,
``last_epochs``). ``EXP_DIR`` is ``results/{experiment}`` (``runs.csv`` and
``runs/{run}/run.h5``). Figures: ``gendyn figures memorization experiment OUT_DIR
--input run=... --input runs_table=... --input summary=...``.
"""

from __future__ import annotations

import argparse
import logging
from pathlib import Path
from typing import Any

from gendyn.cliutil import add_stage

__all__ = ["register"]

logger = logging.getLogger(__name__)


def register(subparsers: Any) -> None:
    """Add ``gendyn memorization ...`` to the top-level parser."""
    p = subparsers.add_parser("memorization", help="paper 003: epochs-to-threshold table of an experiment")
    sub = p.add_subparsers(dest="action", required=True)
    s = add_stage(sub, "summary", "experiment table: epochs to threshold and final values per run",
                  section="memorization", stage="gendyn.memorization.stage:summary", measure="memorization",
                  inputs=("experiment",), after=_write_csv)  # fmt: skip
    s.add_argument("--csv", default=None, help="also write the table as CSV")


def _write_csv(args: argparse.Namespace, ds: Any) -> None:
    """``--csv``: the summary as a table beside the netCDF file."""
    if args.csv:
        from gendyn import store
        from gendyn.memorization.stage import summary_csv

        store.atomic_write_text(Path(args.csv), summary_csv(ds))
        logger.info("wrote %s", args.csv)
