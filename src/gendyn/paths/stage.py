"""Paths stages: a run's recordings → ``analysis/paths/{run}.nc``, runs → ``summary.nc`` (paper 000).

Each function takes its inputs and the resolved ``analyses.paths`` settings
(:func:`gendyn.config.stage_settings`) and returns an ``xarray.Dataset``; writing it is the
caller's job (:func:`gendyn.store.write_netcdf`). The layout of the outputs is documented in
``docs/measures.md``.

    compute   one run: cross-path and self-similarity, the activation variant, overlap vs
              input distance, neighbour ranks and the early/mid ratio per layer
    summary   one experiment: the early/mid ratio at ``ratio_layer`` and final accuracies per run
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from gendyn.parallel import AnalysisJob
from gendyn.stage import NotEnoughRecords, RunSource

if TYPE_CHECKING:
    import xarray as xr

__all__ = ["compute", "summary", "estimate", "resolve_layers", "decay_epochs", "overlap_records"]

logger = logging.getLogger(__name__)

#: Variables whose stored dtype is float32 (full matrices; summaries stay float64).
FLOAT32_VARIABLES = ("cross_path", "act_cross", "overlap")

_DESCRIPTIONS = {
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

_DEFINITION = (
    "S_ij^t = |q^t AND q^(t-lag)| / sqrt(|q^t| |q^(t-lag)|) with q^t = p_i^t AND p_j^t (norm=l2; "
    "jaccard: |q^t AND q^(t-lag)| / |q^t OR q^(t-lag)|); sigma_i^t = S_ii^t; NaN where a denominator is 0; "
    "pairs are i<j among the analysed images; paper 000 Sec. 6-8"
)


def _source(run: RunSource | Path | str) -> RunSource:
    return run if isinstance(run, RunSource) else RunSource(run)


# --------------------------------------------------------------------------- settings → indices


def resolve_layers(spec: Sequence[Any] | None, names: Sequence[str], what: str = "analyses.paths.layers") -> list[str]:
    """Layer names from 1-based indices (negative from the end) or names, in the given order.

    Parameters
    ----------
    spec : sequence of int or str, or None (None: every layer of ``names``)
    names : the model's ReLU sites in forward order
    what : the settings key, for error messages

    Raises
    ------
    KeyError
        For an unknown name or an index outside ``1..len(names)`` (or ``-1..-len(names)``).
    """
    if spec is None:
        return list(names)
    out = []
    for item in spec:
        if isinstance(item, str):
            if item not in names:
                raise KeyError(f"{what}: no layer {item!r}; layers: {list(names)}")
            out.append(item)
        else:
            i = int(item)
            if i == 0 or abs(i) > len(names):
                raise KeyError(
                    f"{what}: layer index {i} outside 1..{len(names)} (or -1..-{len(names)}); layers: {list(names)}"
                )
            out.append(names[i - 1] if i > 0 else names[i])
    return list(dict.fromkeys(out))


def decay_epochs(run_cfg: Mapping[str, Any], steps_per_epoch: int, epoch: Any, lr: Any) -> list[float]:
    """Epochs after which the learning rate decays.

    From ``training.lr_schedule`` (kind ``step``: milestones in epochs or steps); for other
    schedules, the record epochs at which the recorded ``lr`` (``/metrics``, same length as
    ``epoch``) first drops.
    """
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


def overlap_records(overlap_epochs: Sequence[float] | None, epochs: np.ndarray) -> list[int]:
    """Record indices of ``analyses.paths.overlap_epochs`` (None: the final record).

    Raises
    ------
    KeyError
        Naming an epoch without a record and the recorded epochs.
    """
    if overlap_epochs is None:
        return [len(epochs) - 1]
    out = []
    for e in overlap_epochs:
        hit = np.flatnonzero(np.isclose(epochs, float(e), atol=1e-6))
        if not hit.size:
            raise KeyError(
                f"analyses.paths.overlap_epochs: no record at epoch {e}; recorded epochs: "
                f"{np.round(epochs, 4).tolist()[:30]}"
            )
        out.append(int(hit[0]))
    return out


# --------------------------------------------------------------------------- compute


def compute(run: RunSource | Path | str, settings: Mapping[str, Any], *, job: AnalysisJob | None = None) -> xr.Dataset:
    """The ``analysis/paths/{run}.nc`` dataset of one run (paper 000, Secs. 6-8).

    Parameters
    ----------
    run : RunSource or path
        The run directory or its ``run.h5`` (needs ``/masks``; ``/activations`` for the
        activation variant; a checkpoint at every record for ``record_bn: batch``).
    settings : mapping
        Resolved ``analyses.paths`` (``stage_settings("paths", ...)``); ``figures`` is ignored
        and left out of the stored ``settings`` attribute.
    job : AnalysisJob, optional
        Its memory budget sizes the pairwise tiles (default: ``AnalysisJob.create()``).

    Returns
    -------
    Dataset with dims ``record``, ``layer``, ``image``, ``image_i``/``image_j``, ... (see
    docs/measures.md); ``cross_path``, ``act_cross`` and ``overlap`` carry a float32
    storage encoding.
    """
    import xarray as xr

    from gendyn import store
    from gendyn.paths.stats import early_mid_ratio
    from gendyn.paths.streaming import CrossPathOptions, cross_path_dataset

    src = _source(run)
    s = {k: v for k, v in settings.items() if k != "figures"}
    job = job or AnalysisJob.create()
    run_file, attrs = src.run_file, src.attrs
    all_layers = src.layers
    layers = resolve_layers(s["layers"], all_layers)
    tracked = src.tracked
    sel = np.flatnonzero(tracked["split"].values.astype(str) == s["split"])
    if sel.size < 2:
        raise ValueError(
            f"{run_file}: only {sel.size} tracked {s['split']} image(s); pairs need 2 or more "
            f"(raise recording.n_tracked_{s['split']})"
        )
    labels = tracked["label"].values[sel]
    metrics = src.metrics

    try:
        mds = src.group("masks", lazy=True)
    except OSError:
        mds = None
    if mds is None or not mds.data_vars:
        raise store.StoreError(f"{run_file}: no /masks (recording.masks was false); the paths analysis needs masks")
    steps = mds["step"].values
    epochs = mds["epoch"].values
    n_units = {k: int(mds[k].attrs["n_units"]) for k in layers}
    if s["record_bn"] == "batch":
        masks = _batch_stat_masks(src, steps, sel, layers)
    else:
        masks = {k: mds[k].isel(image=sel) for k in layers}
    acts = _activations(src, s, sel, layers)

    ov_recs = overlap_records(s["overlap_epochs"], epochs)
    base_off = 1 if int(s["baseline_base"]) == 1 else 0
    baselines = [int(b) - base_off for b in s["baselines"]]
    if any(b < 0 for b in baselines):
        raise ValueError(f"analyses.paths.baselines: {s['baselines']} with baseline_base 1 must be >= 1")
    lag = int(s["lag"])
    if len(steps) < lag + 1:
        raise NotEnoughRecords(
            f"{run_file}: {len(steps)} record(s) but analyses.paths.lag = {lag}: the paths analysis compares "
            f"record t with t - {lag}, so it needs at least {lag + 1} records"
        )
    options = CrossPathOptions(
        norm=s["norm"],
        lag=lag,
        act=s["act"],
        max_pairwise=int(s["max_pairwise"]),
        hist_bins=int(s["hist_bins"]),
        quantiles=tuple(s["quantiles"]),
        layers_combined=s["layers_combined"],
        overlap=s["overlap"],
        overlap_records=tuple(ov_recs),
        overlap_images=int(s["overlap_images"]),
        n_candidates=int(s["n_candidates"]),
        baselines=tuple(baselines),
        top_k=int(s["top_k"]),
    )
    res = cross_path_dataset(
        masks, n_units, options, labels=labels, activations=acts, mem_budget_bytes=job.mem_budget_bytes,
        progress=lambda msg: logger.info("%s: %s", src.run_dir.name, msg),
    )  # fmt: skip
    names, recs, prev, ov_recs = list(res.layers), list(res.records), list(res.prev_records), list(res.overlap_records)
    m, mo = res.n_pairwise, res.n_overlap
    variables: dict[str, Any] = dict(res.variables)

    # ---- Fig 4: input distances and statistics
    edges = _overlap_vs_distance(variables, src, s, sel[:mo], len(names), len(ov_recs))

    # ---- Fig 7: early/mid ratio per layer
    mean = variables["cross_path_mean"][1]
    spe = int(attrs.get("steps_per_epoch", 1))
    decays = decay_epochs(src.config, spe, metrics["epoch"].values, metrics["lr"].values)
    ratio, early, mid = (np.full(len(names), np.nan) for _ in range(3))
    note = ""
    stage_epochs: dict[str, Any] = {}
    for k in range(len(names)):
        try:
            r = early_mid_ratio(mean[:, k], epochs[recs], decays, stages=s["stages"], run=src.name)
        except ValueError as e:
            note = str(e)
            break
        ratio[k], early[k], mid[k] = r.ratio, r.early, r.mid
        stage_epochs = {"early": list(r.early_epochs), "mid": list(r.mid_epochs)}
    variables["early_mid_ratio"] = (("layer",), ratio)
    variables["early_mean"] = (("layer",), early)
    variables["mid_mean"] = (("layer",), mid)

    # ---- the dataset
    data_vars = {k: xr.Variable(dims, v) for k, (dims, v) in variables.items()}
    coords: dict[str, Any] = {
        "record": ("record", np.asarray(recs, dtype=np.int64)),
        "step": ("record", steps[recs].astype(np.int64)),
        "prev_step": ("record", steps[prev].astype(np.int64)),
        "epoch": ("record", epochs[recs].astype(np.float64)),
        "prev_epoch": ("record", epochs[prev].astype(np.float64)),
        "layer": ("layer", np.array(names, dtype=object)),
        "layer_index": ("layer", np.array([all_layers.index(k) + 1 if k in all_layers else 0 for k in names])),
        "n_units": ("layer", np.array([n_units[k] if k in n_units else sum(n_units.values()) for k in names])),
        "image": ("image", np.arange(len(sel))),
        "tracked_image": ("image", sel.astype(np.int64)),
        "index": ("image", tracked["index"].values[sel].astype(np.int64)),
        "label": ("image", labels.astype(np.int64)),
        "image_i": ("image_i", np.arange(m)),
        "image_j": ("image_j", np.arange(m)),
        "quantile": ("quantile", np.asarray(s["quantiles"], dtype=np.float64)),
    }
    hb = int(s["hist_bins"])
    coords["bin"] = ("bin", np.arange(hb))
    coords["bin_lo"] = ("bin", np.linspace(0.0, 1.0, hb + 1)[:-1])
    coords["bin_hi"] = ("bin", np.linspace(0.0, 1.0, hb + 1)[1:])
    if "act_cross_hist" in variables:
        lo = -1.0 if s["act"] == "pre" else 0.0
        data_vars["act_cross_hist"] = xr.Variable(("record", "layer", "act_bin"), variables["act_cross_hist"][1])
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
            dist_bin=("dist_bin", np.arange(int(s["distance_bins"]))),
            dist_bin_lo=("dist_bin", edges[:-1]),
            dist_bin_hi=("dist_bin", edges[1:]),
        )
    if "nn_rank" in variables:
        coords["baseline"] = ("baseline", np.asarray(baselines, dtype=np.int64))
        coords["candidate"] = ("candidate", np.arange(int(s["n_candidates"])))
    ds = xr.Dataset(data_vars, coords=coords)
    for k, v in _DESCRIPTIONS.items():
        if k in ds:
            ds[k].attrs["description"] = v
    for k in FLOAT32_VARIABLES:
        if k in ds:
            ds[k].encoding["dtype"] = "float32"
    final = metrics.isel(step=-1)
    ds.attrs.update(
        {
            **src.identity(),
            "source": str(run_file),
            "config_hash": str(attrs.get("config_hash", "")),
            "model": str(src.config["model"]["name"]),
            "model_layers": json.dumps(all_layers),
            "data": str(src.config["data"]["name"]),
            "definition": _DEFINITION,
            "norm": s["norm"],
            "lag": lag,
            "overlap": s["overlap"],
            "act": s["act"],
            "activation_variant": int(acts is not None),
            "record_bn": s["record_bn"],
            "split": s["split"],
            "layers_combined": s["layers_combined"],
            "max_pairwise": int(s["max_pairwise"]),
            "overlap_images": int(mo),
            "space": s["space"],
            "n_candidates": int(s["n_candidates"]),
            "baselines_0based": [int(b) for b in baselines] or "",
            "top_k": int(s["top_k"]),
            "hist_bins": hb,
            "decay_epochs": json.dumps(decays),
            "stages": json.dumps(s["stages"]),
            "stage_epochs": json.dumps(stage_epochs),
            "early_mid_note": note,
            "final_step": int(final["step"]),
            "final_epoch": float(final["epoch"]),
            "final_test_acc": float(final["test_acc"]),
            "final_train_acc": float(final["train_acc"]),
            "mem_budget_bytes": int(job.mem_budget_bytes),
            "settings": json.dumps(s, sort_keys=True),
        }
    )
    return ds


def _activations(src: RunSource, s: Mapping[str, Any], sel: np.ndarray, layers: list[str]) -> dict[str, Any] | None:
    """The run's activations of the analysed images (lazy), per ``analyses.paths.activations``."""
    from gendyn import store

    want = s["activations"]
    if want is False or want == "false":
        return None
    try:
        ads = src.group("activations", lazy=True)
        acts = {k: ads[k].isel(image=sel) for k in layers} if ads.data_vars else None
    except OSError:
        acts = None
    if acts is None and want in (True, "true"):
        raise store.StoreError(
            f"{src.run_file}: no /activations, but analyses.paths.activations is true; set recording.activations: true "
            "and retrain, or set analyses.paths.activations: auto"
        )
    if acts is not None and s["record_bn"] == "batch":
        logger.warning("record_bn=batch: the activation variant uses the recorded (eval-mode) activations")
    return acts


def _overlap_vs_distance(
    variables: dict[str, Any],
    src: RunSource,
    s: Mapping[str, Any],
    tracked_pos: np.ndarray,
    n_layers: int,
    n_records: int,
) -> np.ndarray | None:
    """Add Fig 4's input distances and overlap-distance statistics to ``variables``; the distance bin edges."""
    from gendyn.paths.stats import input_distances, overlap_distance_stats

    dist = input_distances(_inputs(src, s["space"], tracked_pos))
    if "overlap" not in variables:
        return None
    ov = variables["overlap"][1]
    st = [
        [overlap_distance_stats(dist, ov[t, k], n_bins=int(s["distance_bins"])) for k in range(n_layers)]
        for t in range(n_records)
    ]
    dims = ("overlap_record", "layer")
    variables["overlap_pearson"] = (dims, np.array([[x["pearson"] for x in row] for row in st]))
    variables["overlap_spearman"] = (dims, np.array([[x["spearman"] for x in row] for row in st]))
    variables["overlap_n_pairs"] = (dims, np.array([[x["n_pairs"] for x in row] for row in st]))
    for key in ("median", "q25", "q75", "count"):
        variables[f"overlap_binned_{key}"] = ((*dims, "dist_bin"), np.array([[x[key] for x in row] for row in st]))
    variables["input_dist"] = (("overlap_image_i", "overlap_image_j"), dist)
    return st[0][0]["bin_edges"]


def _inputs(src: RunSource, space: str, tracked_pos: np.ndarray) -> np.ndarray:
    """(n, d) float64 tracked inputs at tracked positions: as the model sees them, or raw [0, 1] pixels."""
    import torch

    from gendyn.api import tracked_inputs

    if space == "model":
        x, _ = tracked_inputs(src.run_dir, data_root=src.data_root)
        return x[np.asarray(tracked_pos)].reshape(len(tracked_pos), -1).double().numpy()
    data, tracked = src.data, src.tracked
    out = []
    for p in np.asarray(tracked_pos):
        split = getattr(data, str(tracked["split"].values[p]))
        if not hasattr(split, "pixel_values"):
            raise ValueError(
                f"analyses.paths.space: 'raw' needs an in-memory dataset; {src.config['data']['name']} is read from "
                "folders — use space: model"
            )
        out.append(split.pixel_values(torch.tensor([int(tracked["index"].values[p])])))
    return np.concatenate([o.reshape(1, -1).double().numpy() for o in out])


def _batch_stat_masks(src: RunSource, steps: np.ndarray, sel: np.ndarray, layers: list[str]) -> dict[str, np.ndarray]:
    """record_bn=batch: (R, N, ceil(D/8)) masks recomputed from checkpoints with batch statistics of the tracked set."""
    from gendyn import store
    from gendyn.api import tracked_inputs
    from gendyn.paths.masks import batch_stat_masks

    have = set(int(s) for s in src.checkpoint_steps)
    missing = [int(s) for s in steps if int(s) not in have]
    if missing:
        raise store.StoreError(
            f"{src.checkpoint_file}: analyses.paths.record_bn 'batch' needs weights at every record, but "
            f"steps {missing[:10]} have none; set recording.checkpoint_every: 1 (and checkpoints: true) and retrain"
        )
    x, _ = tracked_inputs(src.run_dir, data_root=src.data_root)
    x = x[np.asarray(sel)]
    per: dict[str, list[np.ndarray]] = {k: [] for k in layers}
    for step in steps:
        got = batch_stat_masks(src.model(int(step)), x)
        for k in layers:
            per[k].append(got[k])
    return {k: np.stack(v) for k, v in per.items()}


# --------------------------------------------------------------------------- summary


def summary(
    run_files: Sequence[Path | str], settings: Mapping[str, Any], *, job: AnalysisJob | None = None
) -> xr.Dataset:
    """``summary.nc`` of one experiment: per run, the early/mid ratio at ``ratio_layer`` and final accuracies.

    Parameters
    ----------
    run_files : the experiment's ``analysis/paths/{run}.nc``
    settings : resolved ``analyses.paths``; reads ``ratio_layer`` (1-based model layer or name)
    job : unused (every stage takes one)

    Notes
    -----
    A run that diverged (``on_divergence: record``) and has no ratio (a skipped-run file, or
    too few records for the early or mid stage) is left out and named in the attribute
    ``diverged_runs`` (JSON list); the other runs make the summary.

    Raises
    ------
    KeyError
        If ``ratio_layer`` was not analysed in a run.
    ValueError
        If a run that did not diverge has no early/mid ratio (e.g. its learning rate never
        decays), naming the run.
    """
    import xarray as xr

    from gendyn import store

    ratio_layer = settings["ratio_layer"]
    rows = []
    diverged: list[str] = []
    for f in run_files:
        ds = store.open_analysis(f)
        if store.is_skipped(ds):
            diverged.append(str(ds.attrs.get("run", Path(f).stem)))
            logger.warning("%s: %s; left out of the summary", f, ds.attrs.get(store.SKIPPED_ATTR))
            ds.close()
            continue
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
        if not np.isfinite(val) and store.divergence(ds.attrs) is not None:
            diverged.append(str(ds.attrs.get("run")))
            logger.warning("%s: run %r diverged and has no early/mid ratio; left out of the summary", f, ds.attrs.get("run"))
            ds.close()
            continue
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

    def column(key: str, dtype: Any = None) -> np.ndarray:
        return np.array([r[key] for r in rows], dtype=dtype)

    out = xr.Dataset(
        {key: ("run", column(key)) for key in ("R", "early", "mid", "test_acc", "train_acc")},
        coords={
            "run": ("run", column("run", object)),
            **{key: ("run", column(key, object)) for key in ("experiment", "model", "data", "layer")},
            "layer_index": ("run", column("layer_index")),
            "stage_epochs": ("run", column("stage_epochs", object)),
        },
    )
    out["R"].attrs["description"] = "early/mid ratio of mean cross-path similarity (paper 000, Fig 7)"
    out["test_acc"].attrs["description"] = "final test accuracy (fraction 0-1)"
    out["train_acc"].attrs["description"] = "final train accuracy (fraction 0-1)"
    out.attrs["ratio_layer"] = str(ratio_layer)
    out.attrs["diverged_runs"] = json.dumps(diverged)
    for r in rows:
        logger.info("%s: R = %.4f (layer %s), test_acc = %.4f", r["run"], r["R"], r["layer"], r["test_acc"])
    return out


# --------------------------------------------------------------------------- estimate (gendyn plan)


def _compute_variables(
    s: Mapping[str, Any], n_rec: int, n_img: int, n_lay: int, n_real: int, *, acts: bool, n_ov: int
) -> dict[str, tuple[tuple[int, ...], int]]:
    """(shape, itemsize) of every variable and coordinate :func:`compute` writes (the same dims)."""
    lag = int(s["lag"])
    nr, m = max(0, n_rec - lag), min(int(s["max_pairwise"]), n_img)
    mo, q, hb = min(int(s["overlap_images"]), n_img), len(s["quantiles"]), int(s["hist_bins"])
    nb, nc, db = len(s["baselines"]), int(s["n_candidates"]), int(s["distance_bins"])
    v: dict[str, tuple[tuple[int, ...], int]] = {}
    for prefix in ("cross_path", *(("act_cross",) if acts else ())):
        v[prefix] = ((nr, n_lay, m, m), 4)
        for k in ("mean", "within", "between", "nan_fraction", "n_pairs"):
            v[f"{prefix}_{k}"] = ((nr, n_lay), 8)
        v[f"{prefix}_hist"] = ((nr, n_lay, hb), 8)
        v[f"{prefix}_q"] = ((nr, n_lay, q), 8)
    v.update(self_sim=((nr, n_lay, n_img), 8), self_sim_mean=((nr, n_lay), 8), self_sim_q=((nr, n_lay, q), 8))
    v["n_active"] = ((nr, n_lay, n_img), 8)
    if nb and n_img >= nc + 1:
        v.update(nn_rank=((nr, n_lay, nb, nc), 8), nn_candidate_image=((nb, nc), 8), nn_kendall_tau=((nr, n_lay, nb), 8))
        v.update(nn_n_top1_changes=((n_lay, nb), 8), nn_n_distinct_top=((n_lay, nb), 8), baseline=((nb,), 8), candidate=((nc,), 8))
        if acts:
            v.update(nn_rank_act=((nr, n_lay, nb, nc), 8), nn_act_n_top1_changes=((n_lay, nb), 8), nn_act_n_distinct_top=((n_lay, nb), 8))
    if n_ov:
        v["overlap"] = ((n_ov, n_lay, mo, mo), 4)
        for k in ("pearson", "spearman", "n_pairs"):
            v[f"overlap_{k}"] = ((n_ov, n_lay), 8)
        for k in ("median", "q25", "q75", "count"):
            v[f"overlap_binned_{k}"] = ((n_ov, n_lay, db), 8)
        v["input_dist"] = ((mo, mo), 8)
        for k in ("overlap_record", "overlap_step", "overlap_epoch"):
            v[k] = ((n_ov,), 8)
        for k in ("overlap_image_i", "overlap_image_j"):
            v[k] = ((mo,), 8)
        for k in ("dist_bin", "dist_bin_lo", "dist_bin_hi"):
            v[k] = ((db,), 8)
    for k in ("early_mid_ratio", "early_mean", "mid_mean", "layer", "layer_index", "n_units"):
        v[k] = ((n_lay,), 8)
    for k in ("record", "step", "prev_step", "epoch", "prev_epoch"):
        v[k] = ((nr,), 8)
    for k in ("image", "tracked_image", "index", "label"):
        v[k] = ((n_img,), 8)
    v.update(image_i=((m,), 8), image_j=((m,), 8), quantile=((q,), 8))
    for k in ("bin", "bin_lo", "bin_hi"):
        v[k] = ((hb,), 8)
    if acts:
        for k in ("act_bin", "act_bin_lo", "act_bin_hi"):
            v[k] = ((hb,), 8)
    del n_real
    return v


def estimate(settings: Mapping[str, Any], runs: Sequence[Any], *, experiment: Mapping[str, Any], budget_bytes: int) -> list[Any]:
    """Sizes and peak memory of ``paths compute`` (per run) and ``paths summary`` (``gendyn plan``).

    ``runs`` are the experiment's :class:`gendyn.plan.RunShape`. The peak of ``compute`` is the
    outputs it holds (:func:`gendyn.paths.streaming.reserved_bytes`, refused above half the
    budget) plus the pairwise stage's own plan (:func:`gendyn.paths.gram.plan_blocks`) for the
    widest analysed layer plus that layer's masks when they are read into memory.
    """
    from gendyn.paths.gram import plan_blocks
    from gendyn.paths.streaming import CrossPathOptions, reserved_bytes
    from gendyn.plan import PROCESS_BYTES, StageEstimate
    from gendyn.store import netcdf_nbytes

    s = dict(settings)
    total, peak, fails = 0, 0, ""
    for r in runs:
        names = [lay.name for lay in r.layers]
        layers = resolve_layers(s["layers"], names)
        by_name = {lay.name: lay for lay in r.layers}
        n_img = r.n_tracked_train if s["split"] == "train" else r.n_tracked_test
        n_real = len(layers)
        n_lay = n_real + (1 if s["layers_combined"] == "sum" else 0)
        rec = r.config["recording"]
        acts = bool(rec["activations"]) and s["activations"] not in (False, "false")
        n_ov = 1 if s["overlap_epochs"] is None else len(set(s["overlap_epochs"]))
        variables = _compute_variables(s, r.n_records, n_img, n_lay, n_real, acts=acts, n_ov=n_ov)
        total += netcdf_nbytes(variables, attrs_bytes=4600 + 40 * len(names))
        opts = CrossPathOptions(lag=int(s["lag"]), max_pairwise=int(s["max_pairwise"]), hist_bins=int(s["hist_bins"]),
                                overlap_images=int(s["overlap_images"]))  # fmt: skip
        held = reserved_bytes(n_lay, r.n_records, n_img, opts, n_overlap_records=n_ov, activations=acts)
        if held > budget_bytes // 2 and not fails:
            fails = (
                f"run {r.run}: the stored outputs alone need {held / 2**20:.0f} MiB, more than half the "
                f"{budget_bytes / 2**20:.0f} MiB budget; lower max_pairwise / overlap_images or raise mem_budget_mb"
            )
        widest = max((by_name[k] for k in layers), key=lambda lay: lay.n_units) if layers else None
        work = 0
        if widest is not None and n_img >= 2:
            stage_budget = budget_bytes - held
            try:
                work = plan_blocks(n_img, widest.n_units, mem_budget_bytes=max(stage_budget, 1), lag=int(s["lag"]),
                                   kind="act" if acts else "mask").est_bytes  # fmt: skip
            except MemoryError as e:
                fails = fails or f"run {r.run}: {e}"
            layer_bytes = r.n_records * n_img * (widest.n_units * (np.dtype(rec["activations_dtype"]).itemsize if acts else 1))
            if layer_bytes <= stage_budget // 8:
                work += layer_bytes if acts else layer_bytes // 8
        peak = max(peak, PROCESS_BYTES + held + work)
    out = [StageEstimate("paths", "compute", len(runs), total, peak, budget_bytes, fails=fails)]
    summary_bytes = netcdf_nbytes({k: ((len(runs),), 8) for k in (
        "R", "early", "mid", "test_acc", "train_acc", "run", "experiment", "model", "data", "layer", "layer_index",
        "stage_epochs")}, attrs_bytes=600)  # fmt: skip
    out.append(StageEstimate("paths", "summary", 1, summary_bytes, PROCESS_BYTES + 2**20 * len(runs), None))
    return out
