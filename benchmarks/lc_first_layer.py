"""Local complexity: how often the split first layer changes a count (not a timing benchmark).

``local_complexity(..., split_first_layer=True)`` (the default) computes the first affine layer at
the vertices as ``fl(W x + b) ± fl(W r v)`` instead of forwarding ``x ± r v``; the two round
differently, so a unit whose pre-activation at the one vertex that sets it apart lies within a few
ulps of 0 can be counted by one and not the other. This script measures it on the runs of an LC
experiment (default ``results/lc_quick``, the ``lc_quick`` experiment of ``make run``), at every
record of its LC analysis, on the points, radii and directions of that analysis (seeds and
settings from ``analysis/lc/{run}.nc``), in the model's dtype (float32 there) and in float64. It
prints, per run and dtype, the number of (record, radius, point, layer) entries whose count
differs between the two paths, whether the stored counts equal either, and — as the scale of
rounding effects — how many differ between float32 and float64 with the same path, and between
the vertex path at ``--threads`` and at ``--other-threads`` threads (BLAS rounds a row
differently with other thread counts and batch sizes, so the float32 counts of the vertex path
were never bitwise fixed either).

    python benchmarks/lc_first_layer.py [--experiment-dir results/lc_quick] [--threads 1] [--other-threads 2]
"""

from __future__ import annotations

import argparse
import json
import logging
from pathlib import Path

import numpy as np
import torch

from gendyn.config import stage_settings
from gendyn.lc.complexity import local_complexity, orthonormal_directions
from gendyn.lc.stage import SPLITS, lc_points
from gendyn.stage import RunSource
from gendyn.store import open_analysis


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--experiment-dir", default="results/lc_quick", type=Path)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--other-threads", type=int, default=2)
    args = ap.parse_args()
    logging.basicConfig(level=logging.WARNING)
    torch.set_num_threads(args.threads)
    files = sorted((args.experiment_dir / "analysis" / "lc").glob("*.nc"))
    if not files:
        raise SystemExit(f"{args.experiment_dir}: no analysis/lc/*.nc; run `make run` first (or give --experiment-dir)")
    total: dict[str, int] = {}
    for nc in files:
        ds = open_analysis(nc).load()
        src = RunSource(args.experiment_dir / "runs" / nc.stem)
        s = stage_settings("lc", json.loads(ds.attrs["settings"]))
        points = lc_points(src.data, s, int(ds.attrs["points_seed"]))
        x = torch.cat([points[sp][0] for sp in SPLITS])
        sizes = [len(points[sp][0]) for sp in SPLITS]
        v = orthonormal_directions(src.data.input_shape, int(ds.attrs["n_directions"]), int(ds.attrs["direction_seed"]))
        radii = [float(r) for r in ds["radius"].values]
        res: dict[tuple[str, bool | str], list[np.ndarray]] = {}
        for step in ds["step"].values:
            model = src.model(int(step))
            for dtype, split, threads in ((torch.float32, True, args.threads), (torch.float32, False, args.threads),
                                          (torch.float64, True, args.threads), (torch.float64, False, args.threads),
                                          (torch.float32, False, args.other_threads)):  # fmt: skip
                torch.set_num_threads(threads)
                lc = local_complexity(model.to(dtype), x.to(dtype), radii, directions=v, count_sites=s["count_sites"],
                                      include_center=s["include_center"], max_batch=int(s["max_batch"]),
                                      split_first_layer=split).values  # (radius, point, layer)  # fmt: skip
                key = (str(dtype).removeprefix("torch."), split) if threads == args.threads else ("float32", "threads")
                res.setdefault(key, []).append(lc)
            torch.set_num_threads(args.threads)
        got = {k: np.stack(v) for k, v in res.items()}  # (record, radius, point_all, layer)
        stored = np.concatenate([ds["lc"].values[:, k, :, :n] for k, n in enumerate(sizes)], axis=2)
        n = stored.size
        for dt in ("float32", "float64"):
            d = got[(dt, True)] != got[(dt, False)]
            print(f"{nc.stem} {dt}: split vs vertices differ in {int(d.sum())} of {n} counts "
                  f"(records with a difference: {int(d.any(axis=(1, 2, 3)).sum())} of {d.shape[0]}; "
                  f"max |diff| {int(np.abs(got[(dt, True)] - got[(dt, False)]).max())})")  # fmt: skip
            total[dt] = total.get(dt, 0) + int(d.sum())
        for split in (True, False):
            d = got[("float32", split)] != got[("float64", split)]
            name = "split" if split else "vertices"
            print(f"{nc.stem} {name}: float32 vs float64 differ in {int(d.sum())} of {n} counts; "
                  f"stored ({ds.attrs['model_dtype']}) counts equal the float32 {name} counts: "
                  f"{bool(np.array_equal(stored, got[('float32', split)]))}")  # fmt: skip
        d = got[("float32", "threads")] != got[("float32", False)]
        print(f"{nc.stem} vertices float32: {args.threads} vs {args.other_threads} threads differ in {int(d.sum())} of {n} counts")
    print("total split-vs-vertices differences: " + ", ".join(f"{k} {v}" for k, v in total.items()))


if __name__ == "__main__":
    main()
