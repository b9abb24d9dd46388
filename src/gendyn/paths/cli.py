"""``gendyn paths``: the paper-000 stages (path similarity); logic in :mod:`gendyn.paths.stage`.

    gendyn paths compute RUN_DIR OUT.nc                one run -> analysis/paths/{run}.nc
    gendyn paths summary RUN.nc [RUN.nc ...] OUT.nc    one experiment -> analysis/paths/summary.nc

Options of every stage: see :mod:`gendyn.cliutil` (``--settings`` is ``analyses.paths`` as JSON;
``summary`` reads ``ratio_layer``). Figures: ``gendyn figures paths run OUT_DIR --input
paths=RUN.nc`` and ``gendyn figures paths experiment OUT_DIR --input summary=summary.nc``.
"""

from __future__ import annotations

from typing import Any

from gendyn.cliutil import add_stage

__all__ = ["register"]


def register(subparsers: Any) -> None:
    """Add ``gendyn paths {compute,summary}`` to the top-level parser."""
    p = subparsers.add_parser("paths", help="paper 000 path measures: compute, summary")
    sub = p.add_subparsers(dest="action", required=True)
    add_stage(sub, "compute", "one run: cross-path/self similarity, overlap, ranks, early/mid ratio",
              section="paths", stage="gendyn.paths.stage:compute", measure="paths", inputs=("run",))  # fmt: skip
    add_stage(sub, "summary", "one experiment: early/mid ratio and final accuracies per run",
              section="paths", stage="gendyn.paths.stage:summary", measure="paths", inputs=("analyses",))  # fmt: skip
