"""``gendyn paths``: the paper-000 analysis stages (files <-> :mod:`gendyn.paths`).

    gendyn paths compute RUN_DIR OUT.nc [--settings JSON] [options]   one run -> analysis/paths/{run}.nc
    gendyn paths summary OUT.nc RUN.nc [RUN.nc ...] [--ratio-layer L] per experiment -> summary.nc
    gendyn paths plot FIGURE PREFIX IN.nc [IN.nc ...] [options]       figures (PDF + PNG)

Settings are the keys of ``analyses.paths`` in the workflow configuration (schema
``$defs/analysis_paths``); ``--settings`` takes them as JSON (defaults fill what is
missing) and single options override them.
"""

from __future__ import annotations

import argparse
import json
import logging
from pathlib import Path
from typing import Any

__all__ = ["register", "resolve_settings", "resolve_layers", "decay_epochs", "compute_run", "summarise"]

logger = logging.getLogger(__name__)

FIGURES = ("cross-path", "self-sim", "overlap", "ranks", "act-ranks", "ratio")


# --------------------------------------------------------------------------- settings


def resolve_settings(settings: dict[str, Any] | None = None, **override: Any) -> dict[str, Any]:
    """``analyses.paths`` settings validated against the schema, defaults filled.

    Raises
    ------
    gendyn.config.ConfigError
        Naming the key, the bad value and the allowed values.
    """
    from gendyn.config import validate_section

    merged = dict(settings or {})
    merged.update({k: v for k, v in override.items() if v is not None})
    return validate_section("analysis_paths", merged, "analyses.paths")


def resolve_layers(spec: list[Any] | None, names: list[str], what: str = "analyses.paths.layers") -> list[str]:
    """Layer names from 1-based indices (negative from the end) or names, in the given order."""
    if spec is None:
        return list(names)
    out = []
    for item in spec:
        if isinstance(item, str):
            if item not in names:
                raise KeyError(f"{what}: no layer {item!r}; layers: {names}")
            out.append(item)
        else:
            i = int(item)
            if i == 0 or abs(i) > len(names):
                raise KeyError(f"{what}: layer index {i} outside 1..{len(names)} (or -1..-{len(names)}); layers: {names}")
            out.append(names[i - 1] if i > 0 else names[i])
    return list(dict.fromkeys(out))


def decay_epochs(run_cfg: dict[str, Any], steps_per_epoch: int, epoch: Any, lr: Any) -> list[float]:
    """Epochs after which the learning rate decays.

    From ``training.lr_schedule`` (kind ``step``: milestones in epochs or steps); for other
    schedules, the record epochs at which the recorded ``lr`` first drops.
    """
    import numpy as np

    sched = run_cfg["training"].get("lr_schedule") or {}
    if sched.get("kind") == "step":
        ms = [float(m) for m in sched.get("milestones", [])]
        if sched.get("unit", "epoch") == "step":
            ms = [m / steps_per_epoch for m in ms]
        return sorted(ms) if float(sched.get("gamma", 0.1)) < 1 else []
    if sched.get("kind", "constant") == "constant":
        return []
    lr = np.asarray(lr, dtype=float)
    ep = np.asarray(epoch, dtype=float)
    drops = np.flatnonzero(lr[1:] < lr[:-1] * (1 - 1e-9)) + 1
    return [float(ep[i]) for i in drops]


# --------------------------------------------------------------------------- compute


def compute_run(
    run_dir: Path,
    settings: dict[str, Any],
    *,
    mem_budget_bytes: int,
    data_root: str | None = None,
) -> Any:
    """The ``analysis/paths/{run}.nc`` dataset of one run (see docs/measures.md)."""
    import numpy as np
    import xarray as xr

    import gendyn
    from gendyn import paths, store

    run_dir = Path(run_dir)
    run_file = run_dir / store.RUN_FILE if run_dir.is_dir() else run_dir
    run_dir = run_file.parent
    attrs = store.check_run_file(run_file)
    cfg = gendyn.run_config(run_dir)
    all_layers = json.loads(attrs["layers"])
    layers = resolve_layers(settings["layers"], all_layers)
    tracked = xr.open_dataset(run_file, group="tracked", engine="h5netcdf").load()
    split = tracked["split"].values.astype(str)
    sel = np.flatnonzero(split == settings["split"])
    if sel.size < 2:
        raise ValueError(
            f"{run_file}: only {sel.size} tracked {settings['split']} image(s); pairs need 2 or more "
            f"(raise recording.n_tracked_{settings['split']})"
        )
    labels = tracked["label"].values[sel]
    metrics = xr.open_dataset(run_file, group="metrics", engine="h5netcdf").load()

    try:
        mds = xr.open_dataset(run_file, group="masks", engine="h5netcdf", chunks={})
    except OSError:
        mds = None
    if mds is None or not mds.data_vars:
        raise store.StoreError(f"{run_file}: no /masks (recording.masks was false); the paths analysis needs masks")
    steps = mds["step"].values
    epochs = mds["epoch"].values
    n_units = {k: int(mds[k].attrs["n_units"]) for k in layers}

    if settings["record_bn"] == "batch":
        masks = _batch_stat_masks(run_dir, steps, sel, layers, data_root)
    else:
        masks = {k: mds[k].isel(image=sel) for k in layers}

    acts = None
    want = settings["activations"]
    if want is not False and want != "false":
        try:
            ads = xr.open_dataset(run_file, group="activations", engine="h5netcdf", chunks={})
            acts = {k: ads[k].isel(image=sel) for k in layers} if ads.data_vars else None
        except OSError:
            acts = None
        if acts is None and want in (True, "true"):
            raise store.StoreError(
                f"{run_file}: no /activations, but analyses.paths.activations is true; set recording.activations: true "
                "and retrain, or set analyses.paths.activations: auto"
            )
        if acts is not None and settings["record_bn"] == "batch":
            logger.warning("record_bn=batch: the activation variant uses the recorded (eval-mode) activations")

    if settings["overlap_epochs"] is None:
        ov_recs = [len(steps) - 1]
    else:
        ov_recs = []
        for e in settings["overlap_epochs"]:
            hit = np.flatnonzero(np.isclose(epochs, float(e), atol=1e-6))
            if not hit.size:
                raise KeyError(
                    f"analyses.paths.overlap_epochs: no record at epoch {e}; recorded epochs: "
                    f"{np.round(epochs, 4).tolist()[:30]}"
                )
            ov_recs.append(int(hit[0]))
    base_off = 1 if int(settings["baseline_base"]) == 1 else 0
    baselines = [int(b) - base_off for b in settings["baselines"]]
    if any(b < 0 for b in baselines):
        raise ValueError(f"analyses.paths.baselines: {settings['baselines']} with baseline_base 1 must be >= 1")

    res = paths.cross_path_dataset(
        masks,
        n_units,
        labels=labels,
        activations=acts,
        norm=settings["norm"],
        lag=int(settings["lag"]),
        act=settings["act"],
        max_pairwise=int(settings["max_pairwise"]),
        hist_bins=int(settings["hist_bins"]),
        quantiles=settings["quantiles"],
        layers_combined=settings["layers_combined"],
        overlap=settings["overlap"],
        overlap_records=ov_recs,
        overlap_images=int(settings["overlap_images"]),
        n_candidates=int(settings["n_candidates"]),
        baselines=baselines,
        top_k=int(settings["top_k"]),
        mem_budget_bytes=mem_budget_bytes,
        progress=lambda msg: logger.info("%s: %s", run_dir.name, msg),
    )
    names = res.pop("_names")
    recs = res.pop("_records")
    ov_recs = res.pop("_overlap_records")
    m, mo = res.pop("_m"), res.pop("_mo")
    lag = int(settings["lag"])

    # ---- Fig 4: input distances and statistics
    x_in = _inputs(run_dir, settings["space"], sel[:mo], data_root)
    dist = paths.input_distances(x_in)
    if "overlap" in res:
        ov = res["overlap"][1]
        st = [[paths.overlap_distance_stats(dist, ov[t, k], n_bins=int(settings["distance_bins"])) for k in range(len(names))]
              for t in range(len(ov_recs))]
        res["overlap_pearson"] = (("overlap_record", "layer"), np.array([[s["pearson"] for s in row] for row in st]))
        res["overlap_spearman"] = (("overlap_record", "layer"), np.array([[s["spearman"] for s in row] for row in st]))
        res["overlap_n_pairs"] = (("overlap_record", "layer"), np.array([[s["n_pairs"] for s in row] for row in st]))
        for key in ("median", "q25", "q75", "count"):
            res[f"overlap_binned_{key}"] = (
                ("overlap_record", "layer", "dist_bin"),
                np.array([[s[key] for s in row] for row in st]),
            )
        edges = st[0][0]["bin_edges"]
        res["input_dist"] = (("overlap_image_i", "overlap_image_j"), dist)

    # ---- Fig 7: early/mid ratio per layer
    mean = res["cross_path_mean"][1]
    ep_rec = epochs[recs]
    spe = int(attrs.get("steps_per_epoch", 1))
    decays = decay_epochs(cfg, spe, metrics["epoch"].values, metrics["lr"].values)
    ratio = np.full(len(names), np.nan)
    early = np.full(len(names), np.nan)
    mid = np.full(len(names), np.nan)
    note = ""
    stage_epochs: dict[str, Any] = {}
    for k in range(len(names)):
        try:
            r = paths.early_mid_ratio(mean[:, k], ep_rec, decays, stages=settings["stages"], run=str(attrs.get("run", run_dir.name)))
        except ValueError as e:
            note = str(e)
            break
        ratio[k], early[k], mid[k] = r.ratio, r.early, r.mid
        stage_epochs = {"early": list(r.early_epochs), "mid": list(r.mid_epochs)}
    res["early_mid_ratio"] = (("layer",), ratio)
    res["early_mean"] = (("layer",), early)
    res["mid_mean"] = (("layer",), mid)

    # ---- the dataset
    data_vars = {k: xr.Variable(dims, v) for k, (dims, v) in res.items()}
    coords: dict[str, Any] = {
        "record": ("record", np.asarray(recs, dtype=np.int64)),
        "step": ("record", steps[recs].astype(np.int64)),
        "prev_step": ("record", steps[[r - lag for r in recs]].astype(np.int64)),
        "epoch": ("record", epochs[recs].astype(np.float64)),
        "prev_epoch": ("record", epochs[[r - lag for r in recs]].astype(np.float64)),
        "layer": ("layer", np.array(names, dtype=object)),
        "layer_index": ("layer", np.array([all_layers.index(k) + 1 if k in all_layers else 0 for k in names])),
        "n_units": ("layer", np.array([n_units[k] if k in n_units else sum(n_units.values()) for k in names])),
        "image": ("image", np.arange(len(sel))),
        "tracked_image": ("image", sel.astype(np.int64)),
        "index": ("image", tracked["index"].values[sel].astype(np.int64)),
        "label": ("image", labels.astype(np.int64)),
        "image_i": ("image_i", np.arange(m)),
        "image_j": ("image_j", np.arange(m)),
        "quantile": ("quantile", np.asarray(settings["quantiles"], dtype=np.float64)),
    }
    hb = int(settings["hist_bins"])
    coords["bin"] = ("bin", np.arange(hb))
    coords["bin_lo"] = ("bin", np.linspace(0.0, 1.0, hb + 1)[:-1])
    coords["bin_hi"] = ("bin", np.linspace(0.0, 1.0, hb + 1)[1:])
    if "act_cross_hist" in res:
        lo = -1.0 if settings["act"] == "pre" else 0.0
        data_vars["act_cross_hist"] = xr.Variable(("record", "layer", "act_bin"), res["act_cross_hist"][1])
        coords["act_bin"] = ("act_bin", np.arange(hb))
        coords["act_bin_lo"] = ("act_bin", np.linspace(lo, 1.0, hb + 1)[:-1])
        coords["act_bin_hi"] = ("act_bin", np.linspace(lo, 1.0, hb + 1)[1:])
    if ov_recs:
        coords.update(
            overlap_record=("overlap_record", np.asarray(ov_recs, dtype=np.int64)),
            overlap_step=("overlap_record", steps[ov_recs].astype(np.int64)),
            overlap_epoch=("overlap_record", epochs[ov_recs].astype(np.float64)),
            overlap_image_i=("overlap_image_i", np.arange(mo)),
            overlap_image_j=("overlap_image_j", np.arange(mo)),
            dist_bin=("dist_bin", np.arange(int(settings["distance_bins"]))),
            dist_bin_lo=("dist_bin", edges[:-1]),
            dist_bin_hi=("dist_bin", edges[1:]),
        )
    if "nn_rank" in res:
        coords["baseline"] = ("baseline", np.asarray(baselines, dtype=np.int64))
        coords["candidate"] = ("candidate", np.arange(int(settings["n_candidates"])))
    ds = xr.Dataset(data_vars, coords=coords)
    _describe(ds, settings)
    final = metrics.isel(step=-1)
    ds.attrs.update(
        {
            "experiment": str(attrs.get("experiment", "")),
            "run": str(attrs.get("run", run_dir.name)),
            "source": str(run_file),
            "config_hash": str(attrs.get("config_hash", "")),
            "model": str(cfg["model"]["name"]),
            "model_layers": json.dumps(all_layers),
            "data": str(cfg["data"]["name"]),
            "definition": (
                "S_ij^t = |q^t AND q^(t-lag)| / sqrt(|q^t| |q^(t-lag)|) with q^t = p_i^t AND p_j^t (norm=l2; "
                "jaccard: |q^t AND q^(t-lag)| / |q^t OR q^(t-lag)|); sigma_i^t = S_ii^t; NaN where a denominator is 0; "
                "pairs are i<j among the analysed images; paper 000 Sec. 6-8"
            ),
            "norm": settings["norm"],
            "lag": lag,
            "overlap": settings["overlap"],
            "act": settings["act"],
            "activation_variant": int(acts is not None),
            "record_bn": settings["record_bn"],
            "split": settings["split"],
            "layers_combined": settings["layers_combined"],
            "max_pairwise": int(settings["max_pairwise"]),
            "overlap_images": int(mo),
            "space": settings["space"],
            "n_candidates": int(settings["n_candidates"]),
            "baselines_0based": [int(b) for b in baselines] or "",
            "top_k": int(settings["top_k"]),
            "hist_bins": hb,
            "decay_epochs": json.dumps(decays),
            "stages": json.dumps(settings["stages"]),
            "stage_epochs": json.dumps(stage_epochs),
            "early_mid_note": note,
            "final_step": int(final["step"]),
            "final_epoch": float(final["epoch"]),
            "final_test_acc": float(final["test_acc"]),
            "final_train_acc": float(final["train_acc"]),
            "mem_budget_bytes": int(mem_budget_bytes),
            "settings": json.dumps(settings, sort_keys=True),
        }
    )
    return ds


def _describe(ds: Any, settings: dict[str, Any]) -> None:
    desc = {
        "cross_path": "cross-path similarity S_ij between record and record-lag, first max_pairwise images (Fig 1-3, 16)",
        "cross_path_mean": "mean of S over pairs i<j of all analysed images (NaN excluded)",
        "cross_path_within": "mean of S over same-label pairs i<j",
        "cross_path_between": "mean of S over different-label pairs i<j",
        "cross_path_nan_fraction": "fraction of pairs i<j with a zero denominator (NaN)",
        "cross_path_n_pairs": "pairs i<j with a defined S",
        "cross_path_hist": "histogram of S over pairs i<j (bins bin_lo..bin_hi)",
        "cross_path_q": "quantiles of S over pairs i<j (from the histogram, resolution 1/hist_bins)",
        "self_sim": "self-similarity sigma_i = cosine of p_i^t and p_i^(t-lag) (Fig 5)",
        "self_sim_mean": "mean of sigma over images (NaN excluded)",
        "self_sim_q": "quantiles of sigma over images",
        "n_active": "|p_i^t|: active units per image",
        "act_cross": "activation cross similarity A_ij (Fig 1 right), first max_pairwise images",
        "act_cross_mean": "mean of A over pairs i<j",
        "overlap": "path overlap O_ij = p_i.p_j (overlap=count) or its cosine, first overlap_images images (Fig 4)",
        "input_dist": "||x_i - x_j||_2 of the inputs (space attr), first overlap_images images",
        "overlap_pearson": "Pearson r of (distance, overlap) over pairs i<j",
        "overlap_spearman": "Spearman rho of (distance, overlap) over pairs i<j",
        "nn_rank": "rank of candidate by overlap with the baseline image (0 = nearest; ties to the lower position) (Fig 6)",
        "nn_rank_act": "rank of candidate by activation cosine cos(a_i, a_j) with the baseline (App. E); -1 = undefined",
        "nn_candidate_image": "image position of each candidate slot",
        "nn_n_top1_changes": "records whose nearest neighbour differs from the previous record's",
        "nn_n_distinct_top": "distinct candidates in the top-k over all records",
        "nn_kendall_tau": "Kendall tau between the rankings of consecutive records",
        "early_mid_ratio": "mean S over early-stage records / mean S over mid-stage records (Fig 7)",
        "early_mean": "mean over early-stage records of cross_path_mean",
        "mid_mean": "mean over mid-stage records of cross_path_mean",
    }
    for k, v in desc.items():
        if k in ds:
            ds[k].attrs["description"] = v


def _inputs(run_dir: Path, space: str, tracked_pos: Any, data_root: str | None) -> Any:
    """Tracked inputs at tracked positions: as the model sees them, or raw [0, 1] pixels."""
    import numpy as np
    import xarray as xr

    import gendyn
    from gendyn import store
    from gendyn.data import load_data

    if space == "model":
        x, _ = gendyn.tracked_inputs(run_dir, data_root=data_root)
        return x[np.asarray(tracked_pos)].reshape(len(tracked_pos), -1).double().numpy()
    cfg = gendyn.run_config(run_dir)
    data = load_data(cfg["data"], root=Path(data_root) if data_root else None)
    tracked = xr.open_dataset(run_dir / store.RUN_FILE, group="tracked", engine="h5netcdf").load()
    out = []
    for p in np.asarray(tracked_pos):
        split = getattr(data, str(tracked["split"].values[p]))
        if not hasattr(split, "pixel_values"):
            raise ValueError(
                f"analyses.paths.space: 'raw' needs an in-memory dataset; {cfg['data']['name']} is read from folders — "
                "use space: model"
            )
        import torch

        out.append(split.pixel_values(torch.tensor([int(tracked["index"].values[p])])))
    return np.concatenate([o.reshape(1, -1).double().numpy() for o in out])


def _batch_stat_masks(run_dir: Path, steps: Any, sel: Any, layers: list[str], data_root: str | None) -> dict[str, Any]:
    """record_bn=batch: masks recomputed from checkpoints with batch statistics of the tracked set."""
    import numpy as np

    import gendyn
    from gendyn import paths, store

    have = set(int(s) for s in store.checkpoint_steps(run_dir / store.CHECKPOINT_FILE))
    missing = [int(s) for s in steps if int(s) not in have]
    if missing:
        raise store.StoreError(
            f"{run_dir / store.CHECKPOINT_FILE}: analyses.paths.record_bn 'batch' needs weights at every record, but "
            f"steps {missing[:10]} have none; set recording.checkpoint_every: 1 (and checkpoints: true) and retrain"
        )
    x, _ = gendyn.tracked_inputs(run_dir, data_root=data_root)
    x = x[np.asarray(sel)]
    per: dict[str, list[np.ndarray]] = {k: [] for k in layers}
    for s in steps:
        model = gendyn.load_model(run_dir, step=int(s))
        got = paths.batch_stat_masks(model, x)
        for k in layers:
            per[k].append(got[k])
    return {k: np.stack(v) for k, v in per.items()}


# --------------------------------------------------------------------------- summary


def summarise(run_files: list[Path], ratio_layer: Any) -> Any:
    """``summary.nc``: per run, the early/mid ratio at ``ratio_layer`` and final accuracies."""
    import numpy as np
    import xarray as xr

    from gendyn import store

    rows = []
    for f in run_files:
        ds = store.open_analysis(f)
        names = [str(v) for v in ds["layer"].values]
        if isinstance(ratio_layer, str) and ratio_layer in names:
            lay = ratio_layer
        else:
            model_layers = json.loads(ds.attrs.get("model_layers", json.dumps(names)))
            lay = resolve_layers([ratio_layer], model_layers, what="analyses.paths.ratio_layer")[0]
            if lay not in names:
                raise KeyError(
                    f"{f}: analyses.paths.ratio_layer {ratio_layer!r} is layer {lay!r}, which was not analysed "
                    f"(analysed layers: {names}); add it to analyses.paths.layers"
                )
        note = str(ds.attrs.get("early_mid_note", ""))
        val = float(ds["early_mid_ratio"].sel(layer=lay))
        if not np.isfinite(val):
            raise ValueError(
                f"{f}: run {ds.attrs.get('run')!r} has no early/mid ratio at layer {lay!r}: "
                f"{note or 'the early or mid stage mean is undefined'}"
            )
        rows.append(
            dict(
                run=str(ds.attrs.get("run")),
                experiment=str(ds.attrs.get("experiment")),
                model=str(ds.attrs.get("model", "")),
                data=str(ds.attrs.get("data", "")),
                layer=lay,
                layer_index=int(ds["layer_index"].sel(layer=lay)),
                R=val,
                early=float(ds["early_mean"].sel(layer=lay)),
                mid=float(ds["mid_mean"].sel(layer=lay)),
                test_acc=float(ds.attrs["final_test_acc"]),
                train_acc=float(ds.attrs["final_train_acc"]),
                stage_epochs=str(ds.attrs.get("stage_epochs", "")),
            )
        )
        ds.close()
    run = [r["run"] for r in rows]
    out = xr.Dataset(
        {
            "R": ("run", np.array([r["R"] for r in rows])),
            "early": ("run", np.array([r["early"] for r in rows])),
            "mid": ("run", np.array([r["mid"] for r in rows])),
            "test_acc": ("run", np.array([r["test_acc"] for r in rows])),
            "train_acc": ("run", np.array([r["train_acc"] for r in rows])),
        },
        coords={
            "run": ("run", np.array(run, dtype=object)),
            "experiment": ("run", np.array([r["experiment"] for r in rows], dtype=object)),
            "model": ("run", np.array([r["model"] for r in rows], dtype=object)),
            "data": ("run", np.array([r["data"] for r in rows], dtype=object)),
            "layer": ("run", np.array([r["layer"] for r in rows], dtype=object)),
            "layer_index": ("run", np.array([r["layer_index"] for r in rows])),
            "stage_epochs": ("run", np.array([r["stage_epochs"] for r in rows], dtype=object)),
        },
    )
    out["R"].attrs["description"] = "early/mid ratio of mean cross-path similarity (paper 000, Fig 7)"
    out["test_acc"].attrs["description"] = "final test accuracy (fraction 0-1)"
    out["train_acc"].attrs["description"] = "final train accuracy (fraction 0-1)"
    out.attrs["ratio_layer"] = str(ratio_layer)
    return out


# --------------------------------------------------------------------------- handlers


def _budget(args: argparse.Namespace) -> int:
    return int(args.mem_budget_mb) << 20


def cmd_compute(args: argparse.Namespace) -> int:
    from threadpoolctl import threadpool_limits

    from gendyn import store
    from gendyn.parallel import dask_context

    settings = resolve_settings(
        json.loads(args.settings) if args.settings else None,
        split=args.split,
        norm=args.norm,
        lag=args.lag,
        max_pairwise=args.max_pairwise,
        layers=_parse_layers(args.layers),
        record_bn=args.record_bn,
    )
    settings.pop("figures", None)
    logger.info("paths compute %s: settings %s", args.run_dir, json.dumps(settings, sort_keys=True))
    import torch

    torch.set_num_threads(max(1, args.threads))
    with dask_context(args.scheduler, args.threads), threadpool_limits(limits=max(1, args.threads)):
        ds = compute_run(Path(args.run_dir), settings, mem_budget_bytes=_budget(args), data_root=args.data_root)
    encoding = {k: {"dtype": "float32"} for k in ("cross_path", "act_cross", "overlap") if k in ds}
    store.write_netcdf(ds, Path(args.out), measure="paths", encoding=encoding)
    logger.info("wrote %s", args.out)
    return 0


def cmd_summary(args: argparse.Namespace) -> int:
    from gendyn import store

    ratio_layer: Any = args.ratio_layer
    if ratio_layer is None:
        ratio_layer = resolve_settings(json.loads(args.settings) if args.settings else None)["ratio_layer"]
    else:
        try:
            ratio_layer = int(ratio_layer)
        except ValueError:
            pass
    ds = summarise([Path(f) for f in args.run_files], ratio_layer)
    store.write_netcdf(ds, Path(args.out), measure="paths")
    for r in range(ds.sizes["run"]):
        logger.info(
            "%s: R = %.4f (layer %s), test_acc = %.4f", str(ds["run"].values[r]), float(ds["R"][r]),
            str(ds["layer"].values[r]), float(ds["test_acc"][r]),
        )
    return 0


def cmd_plot(args: argparse.Namespace) -> int:
    from gendyn import store
    from gendyn.figures import paths as figs
    from gendyn.figures import save_figure

    layers = _parse_layers(args.layers) or [1, 2, -1]
    if args.figure == "ratio":
        sums = [store.open_analysis(f).load() for f in args.inputs]
        fig = figs.early_mid_figure(sums, generalization=args.generalization, title=args.title)
    else:
        if len(args.inputs) != 1:
            raise ValueError(f"gendyn paths plot {args.figure}: give one analysis file, got {len(args.inputs)}")
        ds = store.open_analysis(args.inputs[0]).load()
        title = args.title or f"{ds.attrs.get('experiment', '')} / {ds.attrs.get('run', '')}"
        if args.figure == "cross-path":
            fig = figs.cross_path_figure(ds, layers=layers, style=args.style, title=title)
        elif args.figure == "self-sim":
            fig = figs.self_similarity_figure(ds, layers=layers, style=args.style, title=title)
        elif args.figure == "overlap":
            fig = figs.overlap_distance_figure(ds, layers=layers, max_points=args.max_points, title=title)
        elif args.figure == "ranks":
            rank_layer = _parse_layers([args.rank_layer])[0] if args.rank_layer is not None else 2
            fig = figs.neighbour_rank_figure(ds, layer=rank_layer, title=title)
        else:
            fig = figs.activation_rank_figure(ds, layers=layers, title=title)
    save_figure(fig, Path(args.prefix), dpi=args.dpi)
    return 0


def _parse_layers(items: list[str] | None) -> list[Any] | None:
    if not items:
        return None
    out: list[Any] = []
    for it in items:
        for part in str(it).split(","):
            part = part.strip()
            if not part:
                continue
            try:
                out.append(int(part))
            except ValueError:
                out.append(part)
    return out


def register(subparsers: Any) -> None:
    """Add ``gendyn paths {compute,summary,plot}``."""
    from gendyn.parallel import add_dask_arguments

    p = subparsers.add_parser("paths", help="paper 000 path measures: compute, summary, plot")
    sub = p.add_subparsers(dest="action", required=True)

    c = sub.add_parser("compute", help="one run: cross-path/self similarity, overlap, ranks, early/mid ratio -> .nc")
    c.add_argument("run_dir", help="run directory or its run.h5")
    c.add_argument("out", help="output netCDF (analysis/paths/{run}.nc)")
    c.add_argument("--settings", default=None, help="analyses.paths settings as JSON (defaults fill the rest)")
    c.add_argument("--split", choices=["train", "test"], default=None)
    c.add_argument("--norm", choices=["l2", "jaccard"], default=None)
    c.add_argument("--lag", type=int, default=None)
    c.add_argument("--max-pairwise", type=int, default=None)
    c.add_argument("--layers", nargs="+", default=None, help="1-based indices (negative from the end) or names")
    c.add_argument("--record-bn", choices=["eval", "batch"], default=None)
    c.add_argument("--data-root", default=None, help="data root for reloading the tracked inputs (Fig 4 distances)")
    add_dask_arguments(c)
    c.set_defaults(func=cmd_compute)

    s = sub.add_parser("summary", help="one experiment: early/mid ratio and final accuracies per run -> summary.nc")
    s.add_argument("out")
    s.add_argument("run_files", nargs="+", help="analysis/paths/{run}.nc of every run")
    s.add_argument("--ratio-layer", default=None, help="1-based layer index or name (default: settings ratio_layer)")
    s.add_argument("--settings", default=None, help="analyses.paths settings as JSON")
    s.set_defaults(func=cmd_summary)

    f = sub.add_parser("plot", help="figures of paper 000 (PDF + PNG)")
    f.add_argument("figure", choices=FIGURES, help=(
        "cross-path: Figs 1-3, 16; self-sim: Fig 5; overlap: Fig 4; ranks: Fig 6; act-ranks: App. E; "
        "ratio: Fig 7 (inputs are summary.nc files)"))
    f.add_argument("prefix", help="output path without extension")
    f.add_argument("inputs", nargs="+", help="analysis/paths/{run}.nc (or summary.nc files for 'ratio')")
    f.add_argument("--layers", nargs="+", default=None)
    f.add_argument("--rank-layer", default=None)
    f.add_argument("--style", choices=["bands", "hist2d"], default="bands")
    f.add_argument("--max-points", type=int, default=20000)
    f.add_argument("--generalization", choices=["test_acc", "test_error", "gap"], default="test_acc")
    f.add_argument("--title", default="")
    f.add_argument("--dpi", type=int, default=150)
    f.set_defaults(func=cmd_plot)
