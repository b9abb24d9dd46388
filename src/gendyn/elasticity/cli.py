"""``gendyn elasticity``: the local-elasticity stages (paper 002); logic in :mod:`gendyn.elasticity.stage`.

    gendyn elasticity run RUN_DIR OUT.nc
        LE between tracked images at every record point -> analysis/elasticity/{run}.nc
    gendyn elasticity histograms OUT.nc (--run-dir RUN_DIR | --pretrained JSON)
        paper Fig. 5: LE between a few classes at a run's final or at pretrained weights
    gendyn elasticity he-su OUT.nc --experiment JSON
        He & Su's (2020) clustering protocol: ripple and kernel similarities of a binary model

Options of every stage: see :mod:`gendyn.cliutil` (``--settings`` is ``analyses.elasticity``
as JSON, ``--set KEY=VALUE`` overrides one key, ``--threads``, ``--mem-budget-mb``,
``--scheduler``, ``--data-root``). ``--pretrained`` takes ``{"experiment", "data", "model",
"pretrained"}`` (the experiment's ``data``, ``model`` and ``analyses.elasticity.pretrained``)
as JSON; the weights come only from the file it names. ``--experiment`` takes ``{"data",
"model"}``. Figures: ``gendyn figures elasticity run|experiment OUT_DIR --input
elasticity=... [--input histograms=...]``.
"""

from __future__ import annotations

import argparse
import json
from typing import Any

from gendyn.cliutil import add_stage

__all__ = ["register"]

_COMMON = {"section": "elasticity", "measure": "elasticity"}


def _histogram_inputs(args: argparse.Namespace) -> dict[str, Any]:
    """A run's final weights (``--run-dir``) or given weights (``--pretrained``)."""
    from gendyn.stage import RunSource

    if args.run_dir is not None:
        return {"run": RunSource(args.run_dir, data_root=args.data_root), "data_root": args.data_root}
    return {"pretrained": json.loads(args.pretrained), "data_root": args.data_root}


def _he_su_inputs(args: argparse.Namespace) -> dict[str, Any]:
    return {"experiment": json.loads(args.experiment), "data_root": args.data_root}


def register(subparsers: Any) -> None:
    """Add ``gendyn elasticity ...`` to the top-level parser."""
    p = subparsers.add_parser("elasticity", help="local elasticity (paper 002): LE over training, Fig. 5 histograms, clustering")
    sub = p.add_subparsers(dest="action", required=True)
    add_stage(sub, "run", "LE between tracked images at every record point of a run",
              stage="gendyn.elasticity.stage:compute", inputs=("run",), **_COMMON)  # fmt: skip

    h = add_stage(sub, "histograms", "paper Fig. 5: LE histograms between classes at final or pretrained weights",
                  stage="gendyn.elasticity.stage:histograms", inputs=(), keywords=_histogram_inputs, **_COMMON)  # fmt: skip
    src = h.add_mutually_exclusive_group(required=True)
    src.add_argument("--run-dir", default=None, help="use this run's final checkpoint (run directory or its run.h5)")
    src.add_argument("--pretrained", default=None, help="JSON {experiment, data, model, pretrained: {weights, ...}}")

    e = add_stage(sub, "he-su", "He & Su's (2020) LE clustering protocol (ripple and kernel forms)",
                  stage="gendyn.elasticity.stage:he_su", inputs=(), keywords=_he_su_inputs, **_COMMON)  # fmt: skip
    e.add_argument("--experiment", required=True, help="JSON {data, model} of the experiment")
