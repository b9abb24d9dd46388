"""LC stages: a run's checkpoints → ``analysis/{lc,regions,robust}/{run}.nc`` (paper 001).

Each function takes a run (directory or :class:`gendyn.stage.RunSource`) and the resolved
``analyses.lc`` settings (:func:`gendyn.config.stage_settings`) and returns an
``xarray.Dataset``; writing it is the caller's job (:func:`gendyn.store.write_netcdf`). The
layout of the outputs is documented in ``docs/measures.md``.

    compute   LC at checkpoints on fixed train/test/random points, every radius
    regions   exact 2-D region maps on the plane through three training images (Fig. 1) and
              exact local-plane region counts against LC (Fig. 12)
    robust    PGD robust accuracy at checkpoints (R1)
"""

from __future__ import annotations

import json
import logging
import math
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from gendyn.parallel import AnalysisJob
from gendyn.stage import RunSource

if TYPE_CHECKING:
    import xarray as xr

    from gendyn.data import Data

__all__ = ["SPLITS", "compute", "regions", "robust", "estimate", "lc_points", "data_range"]

logger = logging.getLogger(__name__)

#: Point sets of the LC analysis, in stored order.
SPLITS = ("train", "test", "random")


def _source(run: RunSource | Path | str) -> RunSource:
    return run if isinstance(run, RunSource) else RunSource(run)


def data_range(split: Any, batch: int = 5000) -> tuple[float, float]:
    """Minimum and maximum input value of a data split (as the model sees it), in batches."""
    lo, hi = math.inf, -math.inf
    for i in range(0, len(split), batch):
        xb = split.get(np.arange(i, min(i + batch, len(split))))[0]
        lo, hi = min(lo, float(xb.min())), max(hi, float(xb.max()))
    return lo, hi


def lc_points(data: Data, settings: Mapping[str, Any], seed: int) -> dict[str, tuple[Any, Any, Any]]:
    """The fixed LC points of a run: seeded train/test subsets and uniform random inputs.

    Parameters
    ----------
    data : gendyn.data.Data
    settings : resolved ``analyses.lc``
    seed : int
        Points seed (each split gets its own generator derived from it).

    Returns
    -------
    {split: (x (n, *input_shape) float32 tensor, index (n,) int64 (-1 for random), label (n,) int64)}
        ``random``: U[lo, hi]^d with [lo, hi] = ``random_range`` or the min/max of the
        preprocessed training set (paper 001: [0, 1] for MNIST, the normalised box for CIFAR).
    """
    import torch

    from gendyn.runtime import derive_seed

    out: dict[str, tuple[Any, Any, Any]] = {}
    for split in ("train", "test"):
        ds = getattr(data, split)
        want = settings[f"n_{split}"]
        n = len(ds) if want is None else min(int(want), len(ds))
        if want is not None and want > len(ds):
            logger.warning("analyses.lc.n_%s=%d exceeds the %d %s images; using all", split, want, len(ds), split)
        rng = np.random.default_rng(derive_seed(seed, f"lc-points-{split}"))
        idx = np.sort(rng.choice(len(ds), size=n, replace=False)) if n < len(ds) else np.arange(len(ds))
        x, y = ds.get(idx) if n else (torch.zeros((0, *data.input_shape)), torch.zeros(0, dtype=torch.int64))
        out[split] = (x, idx.astype(np.int64), y.numpy().astype(np.int64))
    rr = settings["random_range"]
    lo, hi = (float(rr[0]), float(rr[1])) if rr is not None else data_range(data.train)
    n_rand = int(settings["n_random"])
    gen = torch.Generator().manual_seed(derive_seed(seed, "lc-points-random"))
    xr_ = lo + (hi - lo) * torch.rand((n_rand, *data.input_shape), generator=gen, dtype=torch.float64)
    out["random"] = (xr_.to(torch.float32), np.full(n_rand, -1, dtype=np.int64), np.full(n_rand, -1, dtype=np.int64))
    return out


# --------------------------------------------------------------------------- compute


def compute(run: RunSource | Path | str, settings: Mapping[str, Any], *, job: AnalysisJob | None = None) -> xr.Dataset:
    """LC at the run's checkpoints on train/test/random points, for every radius.

    Returns
    -------
    Dataset with ``lc`` (record, split, radius, point, layer) and its means; see docs/measures.md.
    """
    import torch
    import xarray as xr

    from gendyn.lc.complexity import local_complexity, orthonormal_directions
    from gendyn.runtime import progress, resolve_device

    src = _source(run)
    s = dict(settings)
    job = job or AnalysisJob.create()
    dir_seed = src.derive_seed(s["seed"], "lc-directions")
    pts_seed = src.derive_seed(s["points_seed"], "lc-points")
    steps = src.select_records(s["n_records"])
    data = src.data
    points = lc_points(data, s, pts_seed)
    x_all = torch.cat([points[sp][0] for sp in SPLITS])
    sizes = [len(points[sp][0]) for sp in SPLITS]
    n_max = max(sizes)
    radii = [float(r) for r in s["radii"]]
    directions = orthonormal_directions(data.input_shape, int(s["n_directions"]), dir_seed)
    device = resolve_device(s["device"], key="analyses.lc.device")
    logger.info(
        "lc compute %s: %d records, points %s, radii %s, P=%d, count_sites=%s, device %s",
        src.run_dir, len(steps), dict(zip(SPLITS, sizes)), radii, s["n_directions"], s["count_sites"], device,
    )  # fmt: skip
    lc = None
    layer_coords: dict[str, Any] = {}
    for r, step in enumerate(progress(steps, "lc", total=len(steps))):
        model = src.model(int(step), device=device)
        out = local_complexity(
            model,
            x_all,
            radii,
            directions=directions,
            count_sites=s["count_sites"],
            include_center=s["include_center"],
            max_batch=int(s["max_batch"]),
            mem_budget_bytes=job.mem_budget_bytes,
            device=device,
        )
        if lc is None:
            lc = np.full((len(steps), len(SPLITS), len(radii), n_max, out.sizes["layer"]), np.nan, dtype=np.float32)
            layer_coords = {
                "layer": out["layer"].values,
                "module": ("layer", out["module"].values.astype(str)),
                "n_units": ("layer", out["n_units"].values),
            }
        vals = out.values  # (radius, point_all, layer)
        lo = 0
        for k, n in enumerate(sizes):
            lc[r, k, :, :n] = vals[:, lo : lo + n]
            lo += n
        logger.debug("step %d: mean LC %s", step, np.nanmean(lc[r].sum(-1), axis=-1).tolist())
    assert lc is not None
    index = np.full((len(SPLITS), n_max), -1, dtype=np.int64)
    label = np.full((len(SPLITS), n_max), -1, dtype=np.int64)
    for k, sp in enumerate(SPLITS):
        index[k, : sizes[k]] = points[sp][1]
        label[k, : sizes[k]] = points[sp][2]
    ds = xr.Dataset(
        {
            "lc": (
                ("record", "split", "radius", "point", "layer"),
                lc,
                {
                    "long_name": "local complexity per layer",
                    "units": "count",
                    "description": "LC_l(x): units of layer l whose pre-activation changes sign among the 2P vertices "
                    "x ± r v_p (paper 001, Sec. 3.2); NaN pads splits with fewer points. LC(x) = sum over layer; "
                    "LC_l / n_units is the fraction of the layer's units.",
                },
            ),
            "point_index": (("split", "point"), index, {"description": "index in the split (data.train/test); -1 random/padding"}),
            "point_label": (("split", "point"), label, {"description": "label (after label noise); -1 random/padding"}),
            "n_points": (("split",), np.array(sizes, dtype=np.int64)),
        },
        coords={
            "record": np.arange(len(steps)),
            "step": ("record", steps.astype(np.int64)),
            "split": list(SPLITS),
            "radius": radii,
            "point": np.arange(n_max),
            **layer_coords,
        },
    )
    metrics = src.metrics
    if "epoch" in metrics:
        ds = ds.assign_coords(epoch=("record", metrics["epoch"].sel(step=steps).values))
    for name, values in src.metrics_at(steps).items():
        ds[name] = ("record", values)
    total = ds["lc"].sum("layer", skipna=False)
    ds["lc_mean"] = total.mean("point", skipna=True)
    ds["lc_std"] = total.std("point", skipna=True)
    ds["lc_layer_mean"] = ds["lc"].mean("point", skipna=True)
    ds["lc_layer_fraction_mean"] = (ds["lc"] / ds["n_units"]).mean("point", skipna=True)
    for name, desc in (
        ("lc_mean", "mean over points of LC = sum over layers"),
        ("lc_std", "standard deviation over points of LC"),
        ("lc_layer_mean", "mean over points of LC_l"),
        ("lc_layer_fraction_mean", "mean over points of LC_l / n_units"),
    ):
        ds[name].attrs["description"] = desc
    ds.attrs.update(
        **src.identity(),
        n_directions=int(s["n_directions"]),
        direction_seed=int(dir_seed),
        points_seed=int(pts_seed),
        count_sites=s["count_sites"],
        include_center=int(s["include_center"]),
        random_range=json.dumps(s["random_range"]),
        model_dtype=str(src.attrs.get("dtype", "")),
        definition="paper 001 local complexity: shared seeded Haar-orthonormal directions V (P x d), vertices "
        "x ± r v_p, unit counted when the vertices disagree on [z > 0]; model in eval mode",
        settings=json.dumps(s, sort_keys=True),
    )
    return ds


# --------------------------------------------------------------------------- regions


def _anchor_points(data: Data, seed: int, classes: list[int] | None) -> tuple[Any, Any, Any]:
    """Three training images of different classes (seeded choice)."""
    from gendyn.runtime import derive_seed

    labels = data.train.labels.numpy()
    rng = np.random.default_rng(derive_seed(seed, "lc-anchors"))
    present = np.unique(labels)
    if classes is None:
        if len(present) < 3:
            raise ValueError(f"region maps: the training set has {len(present)} classes; the anchor plane needs 3")
        classes = [int(c) for c in rng.choice(present, size=3, replace=False)]
    idx = []
    for c in classes:
        pool = np.flatnonzero(labels == c)
        if not len(pool):
            raise ValueError(f"analyses.lc.regions.anchor_classes: class {c} has no training image; classes: {present.tolist()}")
        idx.append(int(rng.choice(pool)))
    x, y = data.train.get(np.array(idx))
    return x, np.array(idx, dtype=np.int64), y.numpy().astype(np.int64)


def _region_job(run_dir: str, step: int, plane: Any, decision_boundary: bool, threads: int) -> Any:
    """One record's anchor-plane region map (module-level so dask can ship it)."""
    from gendyn.api import load_model
    from gendyn.lc.regions import region_map
    from gendyn.runtime import set_threads

    set_threads(threads)
    return region_map(load_model(run_dir, int(step)), plane, decision_boundary=decision_boundary)


def _local_job(run_dir: str, step: int, planes: list[Any], x: Any, directions: Any, radius: float, threads: int) -> Any:
    """Exact local-plane region counts and LC at the same points for one record (Fig. 12)."""
    from gendyn.api import load_model
    from gendyn.lc.complexity import local_complexity
    from gendyn.lc.regions import region_count
    from gendyn.runtime import set_threads

    set_threads(threads)
    model = load_model(run_dir, int(step))
    counts = [region_count(model, p) for p in planes]
    lc = local_complexity(model, x, radius, directions=directions).sum("layer").values
    return counts, lc


def lc_phase_steps(lc: xr.Dataset, radius: float | None = None) -> dict[str, int]:
    """The phases of a run's LC curve (mean LC of the train points): paper 001, Figs. 1-2.

    ``init`` (first record), ``minimum`` (lowest LC among records up to the geometric middle of
    training, i.e. step <= sqrt(final step): the first descent), ``peak`` (highest LC after that
    minimum: the ascent) and ``end`` (last record). ``radius``: the stored radius nearest to it,
    None = the largest (:func:`gendyn.lc.figures.shown_radius`).

    Returns
    -------
    {phase: step}
    """
    from gendyn.lc.figures import shown_radius

    r = shown_radius(lc, radius)
    curve = lc["lc_mean"].sel(split="train", radius=r).values.astype(float)
    steps = lc["step"].values.astype(np.int64)
    early = np.flatnonzero(steps <= math.sqrt(max(int(steps[-1]), 1)))
    i_min = int(early[np.nanargmin(curve[early])]) if len(early) else 0
    i_peak = i_min + int(np.nanargmax(curve[i_min:]))
    return {"init": int(steps[0]), "minimum": int(steps[i_min]), "peak": int(steps[i_peak]), "end": int(steps[-1])}


def regions(
    run: RunSource | Path | str,
    settings: Mapping[str, Any],
    *,
    job: AnalysisJob | None = None,
    lc: xr.Dataset | Path | str | None = None,
) -> xr.Dataset:
    """Exact region maps on the anchor plane, and local-plane region counts against LC.

    The anchor-plane maps are taken at ``regions.n_records`` log-spaced checkpoints, or with
    ``regions.at: lc_phases`` at the phases of the run's LC curve (:func:`lc_phase_steps`; ``lc``
    is the run's ``analysis/lc/{run}.nc``). The records are independent dask tasks (run on the
    job's scheduler).
    """
    import dask
    import xarray as xr

    from gendyn.lc.complexity import orthonormal_directions
    from gendyn.lc.regions import anchor_plane, local_plane

    src = _source(run)
    s = dict(settings)
    rs = s["regions"]
    job = job or AnalysisJob.create()
    phases: dict[str, int] = {}
    if rs["at"] == "lc_phases":
        if lc is None:
            raise ValueError(
                f"{src.run_dir}: analyses.lc.regions.at is 'lc_phases', which chooses the checkpoints from the run's "
                "LC curve; give the LC analysis of this run (gendyn lc regions ... --lc analysis/lc/{run}.nc)"
            )
        if not isinstance(lc, xr.Dataset):
            from gendyn import store

            lc = store.open_analysis(lc).load()
        phases = lc_phase_steps(lc, rs["phase_radius"])
        steps = np.unique(np.array(list(phases.values()), dtype=np.int64))
        missing = sorted(set(steps.tolist()) - set(src.checkpoint_steps.tolist()))
        if missing:
            raise ValueError(f"{src.checkpoint_file}: no checkpoint at LC phase step(s) {missing}; recompute the LC analysis")
    else:
        steps = src.select_records(rs["n_records"])
    data = src.data
    x3, idx3, y3 = _anchor_points(data, src.derive_seed(rs["anchor_seed"], "lc-anchors"), rs["anchor_classes"])
    plane = anchor_plane(x3[0], x3[1], x3[2], enlarge=float(rs["enlarge"]))
    per_job_threads = 1 if job.threads > 1 else job.threads
    run_dir = str(src.run_dir)
    jobs = [dask.delayed(_region_job)(run_dir, int(st), plane, bool(rs["decision_boundary"]), per_job_threads) for st in steps]

    n_local = int(rs["local_points"])
    local_radius = float(rs["local_radius"]) if rs["local_radius"] is not None else float(max(s["radii"]))
    local_steps = src.select_records(rs["local_n_records"]) if n_local else np.zeros(0, dtype=np.int64)
    local_jobs = []
    if n_local:
        directions = orthonormal_directions(data.input_shape, max(2, int(s["n_directions"])), src.derive_seed(s["seed"], "lc-directions"))
        pts = lc_points(data, {**s, "n_train": n_local, "n_test": 0, "n_random": 0}, src.derive_seed(s["points_seed"], "lc-points"))
        x_loc, idx_loc = pts["train"][0], pts["train"][1]
        planes = [local_plane(x_loc[i], directions, local_radius) for i in range(len(x_loc))]
        local_jobs = [
            dask.delayed(_local_job)(run_dir, int(st), planes, x_loc, directions, local_radius, per_job_threads)
            for st in local_steps
        ]
    logger.info(
        "lc regions %s: %d anchor maps (steps %s), %d local points x %d records, %d threads",
        src.run_dir, len(steps), steps.tolist(), n_local, len(local_steps), job.threads,
    )  # fmt: skip
    maps, local = dask.compute(jobs, local_jobs)

    verts, starts, sizes, rec_of, pats, cls = [], [], [], [], [], []
    segs, seg_rec = [], []
    off = 0
    for r, rm in enumerate(maps):
        for poly, pat, c in zip(rm.polygons, rm.patterns, rm.classes):
            verts.append(poly)
            starts.append(off)
            sizes.append(len(poly))
            off += len(poly)
            rec_of.append(r)
            pats.append(pat)
            cls.append(c)
        segs.append(rm.boundary)
        seg_rec.append(np.full(len(rm.boundary), r, dtype=np.int64))
    vertex_uv = np.concatenate(verts) if verts else np.zeros((0, 2))
    seg_arr = np.concatenate(segs) if segs else np.zeros((0, 2, 2))
    ds = xr.Dataset(
        {
            "n_regions": ("record", np.array([rm.n_regions for rm in maps], dtype=np.int64), {"description": "exact number of linear regions in the anchor triangle"}),
            "region_record": ("region", np.array(rec_of, dtype=np.int64)),
            "region_start": ("region", np.array(starts, dtype=np.int64), {"description": "first row of the region's polygon in vertex_uv"}),
            "region_size": ("region", np.array(sizes, dtype=np.int64), {"description": "number of polygon vertices"}),
            "region_pattern": ("region", np.array(pats, dtype=np.int64), {"description": "hash of the activation pattern"}),
            "region_class": ("region", np.array(cls, dtype=np.int64), {"description": "predicted class at the region's centroid"}),
            "vertex_uv": (("vertex", "coord"), vertex_uv, {"description": "polygon vertices (u, v) in plane coordinates, counter-clockwise per region"}),
            "segment_record": ("segment", np.concatenate(seg_rec) if seg_rec else np.zeros(0, dtype=np.int64)),
            "segment_uv": (("segment", "end", "coord"), seg_arr, {"description": "decision-boundary segments"}),
            "domain_uv": (("domain_vertex", "coord"), plane.domain),
            "anchor_uv": (("anchor", "coord"), plane.anchors),
            "anchor_index": ("anchor", idx3),
            "anchor_label": ("anchor", y3),
        },
        coords={"record": np.arange(len(steps)), "step": ("record", steps.astype(np.int64)), "coord": ["u", "v"]},
    )  # fmt: skip
    if n_local:
        counts = np.array([c for c, _ in local], dtype=np.int64)
        lcs = np.array([lc for _, lc in local], dtype=np.float64)
        ds["local_n_regions"] = (("local_record", "local_point"), counts, {"description": "exact region count on the local plane (square [-1,1]^2 of r v_1, r v_2)"})
        ds["local_lc"] = (("local_record", "local_point"), lcs, {"description": "LC (sum over layers) at the same points and radius"})
        ds = ds.assign_coords(local_step=("local_record", local_steps.astype(np.int64)), local_point_index=("local_point", idx_loc))
    ds.attrs.update(
        **src.identity(),
        plane="anchor: x(u,v) = x1 + u (x2 - x1) + v (x3 - x1), triangle enlarged by 'enlarge' about its centroid",
        enlarge=float(rs["enlarge"]),
        local_radius=local_radius,
        n_directions=int(s["n_directions"]),
        method="exact polygon splitting in float64 (ReLU zero lines, max-pool argmax cells), paper 001 Fig. 1 / Fig. 12",
        settings=json.dumps(s, sort_keys=True),
    )
    if phases:
        ds = ds.assign_coords(phase=("record", [next(k for k, v in phases.items() if v == st) for st in steps.tolist()]))
        ds.attrs["lc_phases"] = json.dumps(phases)
    return ds


# --------------------------------------------------------------------------- robust


def robust(run: RunSource | Path | str, settings: Mapping[str, Any], *, job: AnalysisJob | None = None) -> xr.Dataset:
    """Clean and PGD-robust accuracy of a seeded test subset at log-spaced checkpoints (R1)."""
    import xarray as xr

    from gendyn.lc.robust import robust_accuracy
    from gendyn.runtime import derive_seed, progress, resolve_device

    src = _source(run)
    s = dict(settings)
    rb = s["robust"]
    steps = src.select_records(rb["n_records"])
    data = src.data
    rng = np.random.default_rng(derive_seed(src.seed, "lc-robust-points"))
    n = min(int(rb["n_points"]), len(data.test))
    idx = np.sort(rng.choice(len(data.test), size=n, replace=False))
    x, y = data.test.get(idx)
    lo, hi = (float(rb["clamp"][0]), float(rb["clamp"][1])) if rb["clamp"] is not None else data_range(data.train)
    device = resolve_device(s["device"], key="analyses.lc.device")
    clean, robust_ = [], []
    for step in progress(steps, "robust", total=len(steps)):
        model = src.model(int(step), device=device)
        _, c, r = robust_accuracy(
            model, x, y, eps=float(rb["eps"]), alpha=float(rb["alpha"]), steps=int(rb["steps"]), lo=lo, hi=hi,
            batch_size=int(rb["batch_size"]), device=device,
        )  # fmt: skip
        clean.append(c)
        robust_.append(r)
    c_arr = np.array(clean, dtype=np.int8)
    r_arr = np.array(robust_, dtype=np.int8)
    ds = xr.Dataset(
        {
            "robust_acc": ("record", r_arr.mean(1).astype(np.float64), {"description": "accuracy under PGD (fraction)"}),
            "clean_acc": ("record", c_arr.mean(1).astype(np.float64), {"description": "accuracy without attack (fraction)"}),
            "correct_robust": (("record", "point"), r_arr),
            "correct_clean": (("record", "point"), c_arr),
            "point_index": ("point", idx.astype(np.int64)),
        },
        coords={"record": np.arange(len(steps)), "step": ("record", steps.astype(np.int64))},
    )
    ds.attrs.update(
        **src.identity(),
        attack="PGD l-infinity, cross-entropy on logits, no random start, projection and clamp each step",
        eps=float(rb["eps"]),
        alpha=float(rb["alpha"]),
        steps=int(rb["steps"]),
        clamp_lo=lo,
        clamp_hi=hi,
        points="seeded subset of the test split",
        settings=json.dumps(s, sort_keys=True),
    )
    return ds


# --------------------------------------------------------------------------- estimate (gendyn plan)

#: Linear regions assumed per anchor-plane map when estimating ``regions`` (not knowable before
#: the run: it is what the stage measures) and polygon vertices per region.
_ASSUMED_REGIONS = 1200
_VERTICES_PER_REGION = 4


def estimate(settings: Mapping[str, Any], runs: Any, *, experiment: Mapping[str, Any], budget_bytes: int) -> list[Any]:
    """Sizes and peak memory of ``lc compute``, ``lc regions`` and ``lc robust`` (``gendyn plan``).

    ``runs`` are the experiment's :class:`gendyn.plan.RunShape`. Records are chosen as the stages
    choose them (:func:`gendyn.stage.select_records` of the checkpoint steps); the vertex chunk of
    ``compute`` is the one :func:`gendyn.lc.complexity.local_complexity` sizes to the budget.
    """
    from gendyn.lc.complexity import _chunk_points
    from gendyn.plan import PROCESS_BYTES, StageEstimate
    from gendyn.stage import select_records
    from gendyn.store import netcdf_nbytes

    s = dict(settings)
    n_rad, p = len(s["radii"]), int(s["n_directions"])
    n_vert = 2 * p + int(s["include_center"])
    sizes = {"compute": 0, "regions": 0, "robust": 0}
    peaks = {"compute": 0, "regions": 0, "robust": 0}
    for r in runs:
        n_lay = len(r.layers) + (1 if s["count_sites"] == "linear" else 0)
        units = r.n_units + (r.data.n_classes if s["count_sites"] == "linear" else 0)
        k = len(select_records(r.checkpoint_steps, s["n_records"]))
        n_tr = r.data.n_train if s["n_train"] is None else min(int(s["n_train"]), r.data.n_train)
        n_te = r.data.n_test if s["n_test"] is None else min(int(s["n_test"]), r.data.n_test)
        n_max = max(n_tr, n_te, int(s["n_random"]))
        v = {"lc": ((k, 3, n_rad, n_max, n_lay), 4), "point_index": ((3, n_max), 8), "point_label": ((3, n_max), 8),
             "n_points": ((3,), 8), "lc_mean": ((k, 3, n_rad), 4), "lc_std": ((k, 3, n_rad), 4),
             "lc_layer_mean": ((k, 3, n_rad, n_lay), 4), "lc_layer_fraction_mean": ((k, 3, n_rad, n_lay), 8)}  # fmt: skip
        for name in ("record", "step", "epoch", "train_acc", "test_acc", "train_loss", "test_loss"):
            v[name] = ((k,), 8)
        for name in ("layer", "module", "n_units"):
            v[name] = ((n_lay,), 8)
        v.update(split=((3,), 8), radius=((n_rad,), 8), point=((n_max,), 8))
        sizes["compute"] += netcdf_nbytes(v, attrs_bytes=2100)
        per_vertex = r.itemsize * (r.input_numel + 3 * units)
        chunk = _chunk_points(n_vert, per_vertex, int(s["max_batch"]), budget_bytes)
        points = n_tr + n_te + int(s["n_random"])
        peaks["compute"] = max(peaks["compute"], PROCESS_BYTES + 2 * r.state_bytes + min(chunk, points) * n_vert * per_vertex
                               + points * r.input_numel * 8)  # fmt: skip
        rg = s["regions"]
        if rg["enabled"]:
            kr = len(select_records(r.checkpoint_steps, rg["n_records"]))
            n_poly = kr * _ASSUMED_REGIONS
            n_loc = int(rg["local_points"])
            kl = len(select_records(r.checkpoint_steps, rg["local_n_records"])) if n_loc else 0
            v = {name: ((n_poly,), 8) for name in ("region_record", "region_start", "region_size", "region_pattern", "region_class")}
            v.update(vertex_uv=((n_poly * _VERTICES_PER_REGION, 2), 8), n_regions=((kr,), 8), record=((kr,), 8), step=((kr,), 8))
            if n_loc:
                v.update(local_n_regions=((kl, n_loc), 8), local_lc=((kl, n_loc), 8), local_step=((kl,), 8))
            sizes["regions"] += netcdf_nbytes(v, attrs_bytes=2400)
            peaks["regions"] = max(peaks["regions"], PROCESS_BYTES + 2 * r.state_bytes + 64 * _ASSUMED_REGIONS * (units + 64))
        rb = s["robust"]
        if rb["enabled"]:
            kb = len(select_records(r.checkpoint_steps, rb["n_records"]))
            n_pts = min(int(rb["n_points"]), r.data.n_test)
            v = {"robust_acc": ((kb,), 8), "clean_acc": ((kb,), 8), "correct_robust": ((kb, n_pts), 1),
                 "correct_clean": ((kb, n_pts), 1), "point_index": ((n_pts,), 8), "record": ((kb,), 8), "step": ((kb,), 8)}  # fmt: skip
            sizes["robust"] += netcdf_nbytes(v, attrs_bytes=1200)
            batch = min(int(rb["batch_size"]), n_pts)
            # a PGD step keeps every activation for the backward pass, plus the input and its gradient
            peaks["robust"] = max(peaks["robust"], PROCESS_BYTES + 2 * r.state_bytes
                                  + batch * r.itemsize * (4 * r.input_numel + 3 * units))  # fmt: skip
    out = [StageEstimate("lc", "compute", len(runs), sizes["compute"], peaks["compute"], budget_bytes)]
    if s["regions"]["enabled"]:
        out.append(StageEstimate("lc", "regions", len(runs), sizes["regions"], peaks["regions"], None,
                                 note=f"assumes {_ASSUMED_REGIONS} linear regions per map; the count is what it measures"))  # fmt: skip
    if s["robust"]["enabled"]:
        out.append(StageEstimate("lc", "robust", len(runs), sizes["robust"], peaks["robust"], None))
    return out
