"""``gendyn neurashed``: simulations of the neurashed model (paper 002); logic in :mod:`gendyn.neurashed.stage`.

    gendyn neurashed simulate PHENOMENON OUT.nc [--settings JSON] [--set KEY=VALUE ...]
        [--seeds 0 1 ...] [--threads N]
        PHENOMENON: implicit_regularization (Fig. 3), information_bottleneck (Fig. 4),
        local_elasticity (Sec. 3); one dataset with a ``seed`` dim

``--settings`` is ``neurashed.studies.<study>.<phenomenon>`` as JSON (schema defaults fill the
rest; settings section ``neurashed.<phenomenon>`` of :func:`gendyn.config.stage_settings`).
Figures: ``gendyn figures neurashed experiment OUT_DIR --experiment STUDY
[--input implicit_regularization=...] [--input information_bottleneck=...]
[--input local_elasticity=...]``.
"""

from __future__ import annotations

import argparse
import logging
from pathlib import Path
from typing import Any

from gendyn.cliutil import add_settings_arguments, settings_from_args
from gendyn.neurashed.spec import PHENOMENA

__all__ = ["register"]

logger = logging.getLogger(__name__)


def register(subparsers: Any) -> None:
    """Add ``gendyn neurashed ...`` to the top-level parser."""
    p = subparsers.add_parser("neurashed", help="neurashed simulator (paper 002): Figs. 3-4 and its local elasticity")
    sub = p.add_subparsers(dest="action", required=True)
    s = sub.add_parser("simulate", help="run one phenomenon for several seeds", description="run one phenomenon for several seeds")
    s.add_argument("phenomenon", choices=PHENOMENA)
    s.add_argument("out", help="output netCDF file")
    add_settings_arguments(s, "neurashed.studies.<study>.<phenomenon>")
    s.add_argument("--seeds", type=int, nargs="+", default=[0], help="simulator seeds (neurashed.studies.<study>.seeds)")
    s.add_argument("--threads", type=int, default=1, help="CPU threads of BLAS (resources.analysis.threads)")
    s.set_defaults(func=_cmd_simulate)


def _cmd_simulate(args: argparse.Namespace) -> int:
    from gendyn import store
    from gendyn.neurashed.stage import simulate
    from gendyn.parallel import AnalysisJob, analysis_job

    settings = settings_from_args(f"neurashed.{args.phenomenon}", args)
    with analysis_job(AnalysisJob.create(args.threads)):
        ds = simulate(args.phenomenon, settings, list(args.seeds))
    store.write_netcdf(ds, Path(args.out), measure="neurashed")
    logger.info("wrote %s", args.out)
    return 0
