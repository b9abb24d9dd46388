"""``gendyn lc``: the local-complexity stages (paper 001); logic in :mod:`gendyn.lc.stage`.

    gendyn lc compute RUN_DIR OUT.nc    LC at checkpoints on train/test/random points, every radius
    gendyn lc regions RUN_DIR OUT.nc [--lc LC.nc]
                                        exact 2-D region maps (anchor plane) + local-plane counts
    gendyn lc robust  RUN_DIR OUT.nc    PGD robust accuracy at checkpoints

Options of every stage: see :mod:`gendyn.cliutil` (``--settings`` is ``analyses.lc`` as JSON).
Figures: ``gendyn figures lc run|experiment OUT_DIR --input lc=... [--input regions=...]``.
"""

from __future__ import annotations

from typing import Any

from gendyn.cliutil import add_stage

__all__ = ["register"]

_ENCODING = {"lc": {"compression": "gzip", "compression_opts": 4}}


def _lc_input(args: Any) -> dict[str, Any]:
    return {"lc": args.lc} if args.lc else {}


def register(subparsers: Any) -> None:
    """Add ``gendyn lc ...`` to the top-level parser."""
    p = subparsers.add_parser("lc", help="local complexity (paper 001): compute, regions, robust")
    sub = p.add_subparsers(dest="action", required=True)
    common = {"section": "lc", "inputs": ("run",)}
    add_stage(sub, "compute", "LC at checkpoints on train/test/random points for every radius",
              stage="gendyn.lc.stage:compute", measure="lc", encoding=_ENCODING, **common)  # fmt: skip
    r = add_stage(sub, "regions", "exact 2-D region maps on the anchor plane (+ local-plane counts)",
                  stage="gendyn.lc.stage:regions", measure="regions", keywords=_lc_input, **common)  # fmt: skip
    r.add_argument("--lc", default=None, help="the run's analysis/lc/{run}.nc (needed with regions.at: lc_phases)")
    add_stage(sub, "robust", "PGD robust accuracy at checkpoints",
              stage="gendyn.lc.stage:robust", measure="robust", **common)  # fmt: skip
