"""``gendyn lc``: local complexity dynamics, region maps, robustness and figures (paper 001).

    gendyn lc compute RUN_DIR OUT.nc     LC at checkpoints on train/test/random points, every radius
    gendyn lc regions RUN_DIR OUT.nc     exact 2-D region maps (anchor plane) + local-plane counts
    gendyn lc robust  RUN_DIR OUT.nc     PGD robust accuracy at checkpoints
    gendyn lc plot {dynamics,layers,sweep,regions,regions-vs-lc,robust} ...

Every stage reads its settings from ``--settings JSON`` (the experiment's ``analyses.lc``
mapping, as the workflow passes it; defaults from the schema's ``$defs/analysis_lc``), and
single options can be overridden by flags (``--radii 0.1 1``). Outputs are netCDF files
written atomically by :func:`gendyn.store.write_netcdf`; their layout is in docs/measures.
"""

from __future__ import annotations

import argparse
import json
import logging
import math
from pathlib import Path
from typing import Any

__all__ = ["register", "resolve_settings", "select_records", "lc_points"]

logger = logging.getLogger(__name__)

SPLITS = ("train", "test", "random")


# --------------------------------------------------------------------------- settings


def resolve_settings(text: str | None = None, **overrides: Any) -> dict[str, Any]:
    """The ``analyses.lc`` settings with schema defaults filled in, validated.

    Parameters
    ----------
    text : str, optional
        JSON of an ``analyses.lc`` mapping (null or empty: all defaults).
    **overrides
        Top-level keys (``radii=[0.1]``) or nested ones with ``__`` (``regions__n_records=4``);
        None values are ignored.
    """
    from gendyn.config import ConfigError, _check, _fill_defaults, _sub_schema

    raw = json.loads(text) if text else {}
    if raw is None:
        raw = {}
    if not isinstance(raw, dict):
        raise ConfigError(f"--settings: expected a JSON mapping (analyses.lc), got {type(raw).__name__}")
    for key, value in overrides.items():
        if value is None:
            continue
        section, _, sub = key.partition("__")
        if sub:
            raw.setdefault(section, {})[sub] = value
        else:
            raw[key] = value
    node = _sub_schema("analysis_lc")
    _check(raw, node, "analyses.lc", "--settings")
    return _fill_defaults(node, raw)


def _device(name: str) -> str:
    import torch

    if name == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if name == "cuda" and not torch.cuda.is_available():
        raise ValueError("analyses.lc.device: 'cuda' requested but CUDA is not available; use 'auto' or 'cpu'")
    return name


def select_records(steps: Any, n_records: int | None) -> Any:
    """At most ``n_records`` checkpoint steps, log-spaced in step + 1 (first and last always kept).

    Parameters
    ----------
    steps : (K,) int array of available checkpoint steps (sorted)
    n_records : int or None (None: all)

    Returns
    -------
    (R,) int64 array, a sorted subset of ``steps``.
    """
    import numpy as np

    steps = np.unique(np.asarray(steps, dtype=np.int64))
    if n_records is None or len(steps) <= n_records:
        return steps
    targets = np.logspace(math.log10(steps[0] + 1), math.log10(steps[-1] + 1), int(n_records)) - 1
    pos = np.searchsorted(steps, targets).clip(0, len(steps) - 1)
    left = (pos - 1).clip(0)
    nearest = np.where(np.abs(steps[left] - targets) <= np.abs(steps[pos] - targets), left, pos)
    return np.unique(np.concatenate([[steps[0], steps[-1]], steps[nearest]]))


def _run_info(run_dir: Path) -> tuple[dict[str, Any], dict[str, Any]]:
    from gendyn import store
    from gendyn.api import run_config

    attrs = store.check_run_file(run_dir / store.RUN_FILE)
    return attrs, run_config(run_dir)


def _seed(value: int | None, run_seed: int, purpose: str) -> int:
    from gendyn.train import derive_seed

    return int(value) if value is not None else derive_seed(run_seed, purpose)


def _data_range(split: Any, batch: int = 5000) -> tuple[float, float]:
    import numpy as np

    lo, hi = math.inf, -math.inf
    for i in range(0, len(split), batch):
        xb = split.get(np.arange(i, min(i + batch, len(split))))[0]
        lo, hi = min(lo, float(xb.min())), max(hi, float(xb.max()))
    return lo, hi


def lc_points(data: Any, settings: dict[str, Any], seed: int) -> dict[str, tuple[Any, Any, Any]]:
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
    import numpy as np
    import torch

    from gendyn.train import derive_seed

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
    lo, hi = (float(rr[0]), float(rr[1])) if rr is not None else _data_range(data.train)
    n_rand = int(settings["n_random"])
    gen = torch.Generator().manual_seed(derive_seed(seed, "lc-points-random"))
    xr = lo + (hi - lo) * torch.rand((n_rand, *data.input_shape), generator=gen, dtype=torch.float64)
    out["random"] = (xr.to(torch.float32), np.full(n_rand, -1, dtype=np.int64), np.full(n_rand, -1, dtype=np.int64))
    return out


def _load_data(cfg: dict[str, Any]) -> Any:
    from gendyn.data import load_data

    return load_data(cfg["data"])


def _set_threads(threads: int) -> None:
    import torch

    if threads and threads > 0:
        torch.set_num_threads(int(threads))


def _progress(it: Any, desc: str, total: int | None = None) -> Any:
    import sys

    from tqdm import tqdm

    return tqdm(it, desc=desc, total=total, unit="record", disable=not sys.stderr.isatty())


# --------------------------------------------------------------------------- compute


def cmd_compute(args: argparse.Namespace) -> int:
    import numpy as np
    import torch
    import xarray as xr

    import gendyn
    from gendyn import store
    from gendyn.lc import local_complexity, orthonormal_directions

    s = resolve_settings(
        args.settings,
        radii=args.radii,
        n_directions=args.n_directions,
        seed=args.seed,
        count_sites=args.count_sites,
        n_train=args.n_train,
        n_test=args.n_test,
        n_random=args.n_random,
        n_records=args.n_records,
        device=args.device,
    )
    _set_threads(args.threads)
    run_dir = Path(args.run_dir)
    attrs, cfg = _run_info(run_dir)
    run_seed = int(cfg["training"]["seed"])
    dir_seed = _seed(s["seed"], run_seed, "lc-directions")
    pts_seed = _seed(s["points_seed"], run_seed, "lc-points")
    steps = select_records(store.checkpoint_steps(run_dir / store.CHECKPOINT_FILE), s["n_records"])
    data = _load_data(cfg)
    points = lc_points(data, s, pts_seed)
    x_all = torch.cat([points[sp][0] for sp in SPLITS])
    sizes = [len(points[sp][0]) for sp in SPLITS]
    n_max = max(sizes)
    radii = [float(r) for r in s["radii"]]
    directions = orthonormal_directions(data.input_shape, int(s["n_directions"]), dir_seed)
    device = _device(s["device"])
    budget = int(args.mem_budget_mb) * 2**20
    logger.info(
        "lc compute %s: %d records, points %s, radii %s, P=%d, count_sites=%s, device %s",
        run_dir, len(steps), dict(zip(SPLITS, sizes)), radii, s["n_directions"], s["count_sites"], device,
    )  # fmt: skip
    lc = None
    layer_coords: dict[str, Any] = {}
    for r, step in enumerate(_progress(steps, "lc", len(steps))):
        model = gendyn.load_model(run_dir, int(step), device=device)
        out = local_complexity(
            model,
            x_all,
            radii,
            directions=directions,
            count_sites=s["count_sites"],
            include_center=s["include_center"],
            max_batch=int(s["max_batch"]),
            mem_budget_bytes=budget,
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
    metrics = xr.open_dataset(run_dir / store.RUN_FILE, group="metrics", engine="h5netcdf").load()
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
    if "epoch" in metrics:
        ds = ds.assign_coords(epoch=("record", metrics["epoch"].sel(step=steps).values))
    for name in ("train_acc", "test_acc", "train_loss", "test_loss"):
        if name in metrics:
            ds[name] = ("record", metrics[name].sel(step=steps).values.astype(np.float64))
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
    lo_hi = s["random_range"]
    ds.attrs.update(
        experiment=str(attrs.get("experiment", "")),
        run=str(attrs.get("run", "")),
        n_directions=int(s["n_directions"]),
        direction_seed=int(dir_seed),
        points_seed=int(pts_seed),
        count_sites=s["count_sites"],
        include_center=int(s["include_center"]),
        random_range=json.dumps(lo_hi),
        model_dtype=str(attrs.get("dtype", "")),
        definition="paper 001 local complexity: shared seeded Haar-orthonormal directions V (P x d), vertices "
        "x ± r v_p, unit counted when the vertices disagree on [z > 0]; model in eval mode",
        settings=json.dumps(s, sort_keys=True),
    )
    store.write_netcdf(ds, args.out, measure="lc", encoding={"lc": {"compression": "gzip", "compression_opts": 4}})
    logger.info("wrote %s", args.out)
    return 0


# --------------------------------------------------------------------------- regions


def _anchor_points(data: Any, seed: int, classes: list[int] | None) -> tuple[Any, Any, Any]:
    """Three training images of different classes (seeded choice)."""
    import numpy as np

    from gendyn.train import derive_seed

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
    import gendyn
    from gendyn.lc import region_map

    _set_threads(threads)
    model = gendyn.load_model(run_dir, int(step))
    return region_map(model, plane, decision_boundary=decision_boundary)


def _local_job(run_dir: str, step: int, planes: list[Any], x: Any, directions: Any, radius: float, threads: int) -> Any:
    """Exact local-plane region counts and LC at the same points for one record (Fig. 12)."""
    import gendyn
    from gendyn.lc import local_complexity, region_count

    _set_threads(threads)
    model = gendyn.load_model(run_dir, int(step))
    counts = [region_count(model, p) for p in planes]
    lc = local_complexity(model, x, radius, directions=directions).sum("layer").values
    return counts, lc


def cmd_regions(args: argparse.Namespace) -> int:
    import dask
    import numpy as np
    import xarray as xr

    from gendyn import store
    from gendyn.lc import anchor_plane, local_plane, orthonormal_directions
    from gendyn.parallel import dask_context

    s = resolve_settings(args.settings, regions__n_records=args.n_records, regions__local_points=args.local_points)
    rs = s["regions"]
    _set_threads(args.threads)
    run_dir = Path(args.run_dir)
    attrs, cfg = _run_info(run_dir)
    run_seed = int(cfg["training"]["seed"])
    ckpt_steps = store.checkpoint_steps(run_dir / store.CHECKPOINT_FILE)
    steps = select_records(ckpt_steps, rs["n_records"])
    data = _load_data(cfg)
    x3, idx3, y3 = _anchor_points(data, _seed(rs["anchor_seed"], run_seed, "lc-anchors"), rs["anchor_classes"])
    plane = anchor_plane(x3[0], x3[1], x3[2], enlarge=float(rs["enlarge"]))
    per_job_threads = 1 if args.threads > 1 else args.threads
    jobs = [dask.delayed(_region_job)(str(run_dir), int(st), plane, bool(rs["decision_boundary"]), per_job_threads) for st in steps]

    n_local = int(rs["local_points"])
    local_radius = float(rs["local_radius"]) if rs["local_radius"] is not None else float(max(s["radii"]))
    local_steps = select_records(ckpt_steps, rs["local_n_records"]) if n_local else np.zeros(0, dtype=np.int64)
    local_jobs = []
    if n_local:
        dir_seed = _seed(s["seed"], run_seed, "lc-directions")
        directions = orthonormal_directions(data.input_shape, max(2, int(s["n_directions"])), dir_seed)
        pts = lc_points(data, {**s, "n_train": n_local, "n_test": 0, "n_random": 0}, _seed(s["points_seed"], run_seed, "lc-points"))
        x_loc, idx_loc = pts["train"][0], pts["train"][1]
        planes = [local_plane(x_loc[i], directions, local_radius) for i in range(len(x_loc))]
        local_jobs = [
            dask.delayed(_local_job)(str(run_dir), int(st), planes, x_loc, directions, local_radius, per_job_threads)
            for st in local_steps
        ]
    logger.info(
        "lc regions %s: %d anchor maps (steps %s), %d local points x %d records, %d threads",
        run_dir, len(steps), steps.tolist(), n_local, len(local_steps), args.threads,
    )  # fmt: skip
    with dask_context(args.scheduler, args.threads):
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
    )
    if n_local:
        counts = np.array([c for c, _ in local], dtype=np.int64)
        lcs = np.array([lc for _, lc in local], dtype=np.float64)
        ds["local_n_regions"] = (("local_record", "local_point"), counts, {"description": "exact region count on the local plane (square [-1,1]^2 of r v_1, r v_2)"})
        ds["local_lc"] = (("local_record", "local_point"), lcs, {"description": "LC (sum over layers) at the same points and radius"})
        ds = ds.assign_coords(local_step=("local_record", local_steps.astype(np.int64)), local_point_index=("local_point", idx_loc))
    ds.attrs.update(
        experiment=str(attrs.get("experiment", "")),
        run=str(attrs.get("run", "")),
        plane="anchor: x(u,v) = x1 + u (x2 - x1) + v (x3 - x1), triangle enlarged by 'enlarge' about its centroid",
        enlarge=float(rs["enlarge"]),
        local_radius=local_radius,
        n_directions=int(s["n_directions"]),
        method="exact polygon splitting in float64 (ReLU zero lines, max-pool argmax cells), paper 001 Fig. 1 / Fig. 12",
        settings=json.dumps(s, sort_keys=True),
    )
    store.write_netcdf(ds, args.out, measure="regions")
    logger.info("wrote %s", args.out)
    return 0


# --------------------------------------------------------------------------- robust


def cmd_robust(args: argparse.Namespace) -> int:
    import numpy as np
    import xarray as xr

    import gendyn
    from gendyn import store
    from gendyn.lc import robust_accuracy
    from gendyn.train import derive_seed

    s = resolve_settings(
        args.settings, robust__eps=args.eps, robust__alpha=args.alpha, robust__steps=args.steps, robust__n_points=args.n_points
    )
    rb = s["robust"]
    _set_threads(args.threads)
    run_dir = Path(args.run_dir)
    attrs, cfg = _run_info(run_dir)
    steps = select_records(store.checkpoint_steps(run_dir / store.CHECKPOINT_FILE), rb["n_records"])
    data = _load_data(cfg)
    rng = np.random.default_rng(derive_seed(int(cfg["training"]["seed"]), "lc-robust-points"))
    n = min(int(rb["n_points"]), len(data.test))
    idx = np.sort(rng.choice(len(data.test), size=n, replace=False))
    x, y = data.test.get(idx)
    lo, hi = (float(rb["clamp"][0]), float(rb["clamp"][1])) if rb["clamp"] is not None else _data_range(data.train)
    device = _device(s["device"])
    clean, robust = [], []
    for step in _progress(steps, "robust", len(steps)):
        model = gendyn.load_model(run_dir, int(step), device=device)
        _, c, r = robust_accuracy(
            model, x, y, eps=float(rb["eps"]), alpha=float(rb["alpha"]), steps=int(rb["steps"]), lo=lo, hi=hi,
            batch_size=int(rb["batch_size"]), device=device,
        )  # fmt: skip
        clean.append(c)
        robust.append(r)
    c_arr = np.array(clean, dtype=np.int8)
    r_arr = np.array(robust, dtype=np.int8)
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
        experiment=str(attrs.get("experiment", "")),
        run=str(attrs.get("run", "")),
        attack="PGD l-infinity, cross-entropy on logits, no random start, projection and clamp each step",
        eps=float(rb["eps"]),
        alpha=float(rb["alpha"]),
        steps=int(rb["steps"]),
        clamp_lo=lo,
        clamp_hi=hi,
        points="seeded subset of the test split",
        settings=json.dumps(s, sort_keys=True),
    )
    store.write_netcdf(ds, args.out, measure="robust")
    logger.info("wrote %s", args.out)
    return 0


# --------------------------------------------------------------------------- plots


def _fig_settings(args: argparse.Namespace) -> dict[str, Any]:
    over = {k: getattr(args, k, None) for k in ("radius", "band", "max_region_panels")}
    s = resolve_settings(args.settings, **{f"figures__{k}": v for k, v in over.items()})
    f = dict(s["figures"])
    if getattr(args, "splits", None):
        f["splits"] = list(args.splits)
    return f


def _open(path: str) -> Any:
    from gendyn import store

    return store.open_analysis(path).load()


def cmd_plot(args: argparse.Namespace) -> int:
    from gendyn.figures import lc as figs
    from gendyn.figures import save_figure

    f = _fig_settings(args)
    kind = args.figure
    if kind == "dynamics":
        fig = figs.lc_dynamics(_open(args.lc), radius=f["radius"], band=f["band"], splits=f["splits"], acc_splits=f["acc_splits"])
    elif kind == "layers":
        fig = figs.lc_layers(_open(args.lc), radius=f["radius"], splits=f["splits"])
    elif kind == "sweep":
        runs = _sweep_inputs(args.lc, args.runs_table)
        fig = figs.lc_sweep(runs, radii=f["sweep_radii"], splits=f["splits"], acc_splits=f["acc_splits"], band=f["band"], title=args.title or "")
    elif kind == "regions":
        fig = figs.region_maps(_open(args.regions), max_panels=f["max_region_panels"])
    elif kind == "regions-vs-lc":
        fig = figs.regions_vs_lc(_open(args.regions))
    elif kind == "robust":
        fig = figs.robustness(_open(args.robust), _open(args.lc), radius=f["radius"])
    else:  # pragma: no cover - argparse restricts the choices
        raise ValueError(kind)
    save_figure(fig, Path(args.prefix), dpi=int(args.dpi))
    return 0


def _sweep_inputs(paths: list[str], table: str | None) -> dict[str, Any]:
    """{label: [lc datasets]} in the order given: runs labelled by their swept values in
    runs.csv; runs that differ only in ``training.seed`` share a label (pooled in the figure)."""
    import pandas as pd

    rows: dict[str, str] = {}
    if table:
        df = pd.read_csv(table)
        cols = [c for c in df.columns if c not in ("run", "training.seed")]
        for _, row in df.iterrows():
            rows[str(row["run"])] = ", ".join(f"{c.split('.')[-1]}={row[c]}" for c in cols) or "all seeds"
    out: dict[str, Any] = {}
    for p in paths:
        ds = _open(p)
        run = str(ds.attrs.get("run") or Path(p).stem)
        out.setdefault(rows.get(run, run), []).append(ds)
    return out


# --------------------------------------------------------------------------- parser


def register(subparsers: Any) -> None:
    """Add ``gendyn lc ...`` to the top-level parser."""
    from gendyn.parallel import add_dask_arguments

    p = subparsers.add_parser("lc", help="local complexity (paper 001): compute, regions, robust, plot")
    sub = p.add_subparsers(dest="lc_command", required=True)

    def common(s: argparse.ArgumentParser) -> None:
        s.add_argument("run_dir", help="run directory (run.h5 + checkpoints.h5)")
        s.add_argument("out", help="output netCDF (analysis/{lc,regions,robust}/{run}.nc)")
        s.add_argument("--settings", default=None, help="JSON of experiments.<name>.analyses.lc (defaults from the schema)")
        add_dask_arguments(s)

    s = sub.add_parser("compute", help="LC at checkpoints on train/test/random points for every radius")
    common(s)
    s.add_argument("--radii", type=float, nargs="+", default=None)
    s.add_argument("--n-directions", type=int, default=None)
    s.add_argument("--seed", type=int, default=None, help="direction seed (default: derived from training.seed)")
    s.add_argument("--count-sites", choices=["relu", "linear"], default=None)
    s.add_argument("--n-train", type=int, default=None)
    s.add_argument("--n-test", type=int, default=None)
    s.add_argument("--n-random", type=int, default=None)
    s.add_argument("--n-records", type=int, default=None, help="at most this many log-spaced checkpoints")
    s.add_argument("--device", choices=["auto", "cpu", "cuda"], default=None)
    s.set_defaults(func=cmd_compute)

    s = sub.add_parser("regions", help="exact 2-D region maps on the anchor plane (+ local-plane counts)")
    common(s)
    s.add_argument("--n-records", type=int, default=None)
    s.add_argument("--local-points", type=int, default=None)
    s.set_defaults(func=cmd_regions)

    s = sub.add_parser("robust", help="PGD robust accuracy at checkpoints")
    common(s)
    s.add_argument("--eps", type=float, default=None)
    s.add_argument("--alpha", type=float, default=None)
    s.add_argument("--steps", type=int, default=None)
    s.add_argument("--n-points", type=int, default=None)
    s.set_defaults(func=cmd_robust)

    s = sub.add_parser("plot", help="figures (PDF + PNG)")
    psub = s.add_subparsers(dest="figure", required=True)

    def fig_opts(q: argparse.ArgumentParser) -> None:
        q.add_argument("prefix", help="output path without extension")
        q.add_argument("--settings", default=None, help="JSON of analyses.lc (its 'figures' block is used)")
        q.add_argument("--radius", type=float, default=None)
        q.add_argument("--band", type=float, default=None)
        q.add_argument("--dpi", type=int, default=150, help="PNG resolution (default 150)")
        q.add_argument("--splits", nargs="+", choices=list(SPLITS), default=None)
        q.set_defaults(func=cmd_plot)

    q = psub.add_parser("dynamics", help="LC of train/test/random points and accuracy vs step (Fig. 2, 9)")
    q.add_argument("lc")
    fig_opts(q)
    q = psub.add_parser("layers", help="layer-wise LC vs step (Fig. 13-14)")
    q.add_argument("lc")
    fig_opts(q)
    q = psub.add_parser("sweep", help="LC dynamics of every run of an experiment (Fig. 3-8, 10, 11)")
    q.add_argument("lc", nargs="+", help="analysis/lc/{run}.nc of the runs, in order")
    q.add_argument("--runs-table", default=None, help="runs.csv (labels from the swept values)")
    q.add_argument("--title", default=None)
    fig_opts(q)
    q = psub.add_parser("regions", help="exact region maps on the anchor plane (Fig. 1)")
    q.add_argument("regions")
    q.add_argument("--max-region-panels", type=int, default=None)
    fig_opts(q)
    q = psub.add_parser("regions-vs-lc", help="exact local-plane region count vs LC over steps (Fig. 12)")
    q.add_argument("regions")
    fig_opts(q)
    q = psub.add_parser("robust", help="robust accuracy and LC vs step (R1)")
    q.add_argument("robust")
    q.add_argument("lc")
    fig_opts(q)
