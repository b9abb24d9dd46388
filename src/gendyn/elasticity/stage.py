"""Elasticity stages: run files (or given weights) → ``analysis/elasticity/...`` (paper 002).

Each function takes the resolved ``analyses.elasticity`` settings
(:func:`gendyn.config.stage_settings`) and returns an ``xarray.Dataset``; writing it is the
caller's job (:func:`gendyn.store.write_netcdf`). The layout of the outputs is documented in
``docs/measures.md``.

    compute      LE between tracked images at every record point of a run
                 → ``analysis/elasticity/{run}.nc``
    histograms   paper Fig. 5: LE between a few classes at a run's final weights or at given
                 (pretrained) weights → ``analysis/elasticity/histograms/{run}.nc``
    he_su        He & Su's (2020) clustering protocol: ripple and kernel similarities at the
                 weights of a binary one-output model → ``analysis/elasticity/he_su.nc``
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from gendyn.parallel import AnalysisJob
from gendyn.stage import RunSource

if TYPE_CHECKING:
    import torch
    import xarray as xr
    from torch import nn

    from gendyn.data import Data

__all__ = ["compute", "histograms", "he_su", "estimate", "pretrained_model", "select_per_class"]

logger = logging.getLogger(__name__)

_PAIR = ("class_i", "class_j")
#: Class-pair and pooled statistics of :func:`gendyn.elasticity.summary.pair_summary`, as stored.
_CLASS_STATS = ("class_mean", "class_median", "n_pairs", "overflow", "n_nan")
_POOLED_STATS = ("within", "between", "ratio", "within_median", "between_median", "ratio_median")

_DESCRIPTIONS = {
    "le": "local elasticity of update image_i on probe image_j (NaN: vanishing step; 1 for the same image)",
    "num": "norm of the change of the probe's logits after the step on image_i",
    "den": "norm of the change of image_i's own logits after its step",
    "rel_change": "den / ||z(x_i)||: how far above rounding the change is",
    "lr_used": "step size used (differs from lr only where the retry rule enlarged it)",
    "class_mean": "mean LE over pairs (update class, probe class), same-image pairs excluded, NaN skipped",
    "class_median": "median LE over pairs (update class, probe class)",
    "hist": "counts of LE in [bin_lo, bin_hi) (last bin closed) per class pair",
    "overflow": "pairs with LE > 1", "n_nan": "pairs with NaN LE", "n_pairs": "pairs per class pair (same image excluded)",
    "within": "mean LE over same-class pairs", "between": "mean LE over different-class pairs",
    "ratio": "within / between (R)", "within_median": "median over same-class pairs",
    "between_median": "median over different-class pairs", "ratio_median": "within_median / between_median",
    "nan_fraction": "fraction of NaN pairs", "cluster_accuracy": "Hungarian-matched accuracy of LE clustering",
    "cluster_ari": "adjusted Rand index of LE clustering",
    "baseline_accuracy": "K-means accuracy on pixels / PCA", "baseline_ari": "K-means ARI on pixels / PCA",
}  # fmt: skip


# --------------------------------------------------------------------------- shared pieces


def _source(run: RunSource | Path | str, data_root: Path | str | None = None) -> RunSource:
    return run if isinstance(run, RunSource) else RunSource(run, data_root=data_root)


def _describe(ds: xr.Dataset) -> None:
    """Set the ``description`` attribute of every known variable of ``ds`` (in place)."""
    for k, v in _DESCRIPTIONS.items():
        if k in ds:
            ds[k].attrs["description"] = v


def _definition(s: Mapping[str, Any]) -> str:
    if s["form"] == "exact":
        return ("LE(x, x') = ||z(x', w+) - z(x', w)|| / ||z(x, w+) - z(x, w)||, w+ = w - lr grad loss(x, y) "
                "(one SGD step on x alone, eval mode); paper 002 Sec. 3")  # fmt: skip
    return ("first-order (NTK) approximation, not the exact LE: ||Theta(x', x) r|| / ||Theta(x, x) r||, "
            "Theta = J J^T, r = dloss/dz(x)")  # fmt: skip


def _torch_dtype(name: str, model_dtype: torch.dtype) -> torch.dtype:
    import torch

    return {"float32": torch.float32, "float64": torch.float64}.get(name, model_dtype)


def _le_kwargs(s: Mapping[str, Any], model_dtype: torch.dtype, mem_budget_bytes: int, lr: float | None = None) -> dict[str, Any]:
    """Keyword arguments of :func:`gendyn.elasticity.engines.local_elasticity` from the settings."""
    retry = s["retry"]
    return {
        "lr": float(lr if lr is not None else s["lr"]),
        "loss": "ce" if s["loss"] == "cross_entropy" else "mse",
        "form": s["form"],
        "reduce": s["reduce"],
        "dtype": _torch_dtype(s["dtype"], model_dtype),
        "mem_budget_bytes": int(mem_budget_bytes),
        "den_eps": s["den_eps"],
        "retry": (float(retry["factor"]), int(retry["max_tries"])) if retry["max_tries"] else None,
        "engine": s["engine"],
        "return_parts": True,
        "progress": True,
    }


def _device(s: Mapping[str, Any]) -> torch.device:
    from gendyn.runtime import resolve_device

    return resolve_device(s["device"], key="analyses.elasticity.device")


def _load_data(cfg: Mapping[str, Any], data_root: Path | str | None) -> Data:
    """A ``data`` config section loaded, ``root`` taken from ``data_root`` when the section has none."""
    from gendyn.data import load_data

    cfg = dict(cfg)
    if cfg.get("root") is None and data_root is not None:
        cfg["root"] = str(data_root)
    return load_data(cfg)


def _baseline_vars(base: Mapping[str, Any]) -> dict[str, tuple[tuple[str, ...], list[float]]]:
    """``baseline_accuracy``/``baseline_ari`` (baseline) of :func:`cluster_baselines`' results."""
    return {
        "baseline_accuracy": (("baseline",), [base[k].accuracy for k in base]),
        "baseline_ari": (("baseline",), [base[k].ari for k in base]),
    }


def select_per_class(labels: Any, n_per_class: int | None, classes: list[int] | None = None) -> np.ndarray:
    """Positions of the first ``n_per_class`` items of each class (in the given order).

    Parameters
    ----------
    labels : (N,) int array
    n_per_class : int or None (None: every item)
    classes : list of int, optional
        Classes kept (default: every label present).

    Returns
    -------
    (n,) int64 array, sorted; classes with fewer items keep what they have (logged).
    """
    labels = np.asarray(labels)
    wanted = sorted(set(labels.tolist())) if classes is None else list(classes)
    keep = []
    for c in wanted:
        pos = np.flatnonzero(labels == c)
        if n_per_class is not None:
            if pos.size < n_per_class:
                logger.warning("class %s has only %d image(s), fewer than n_per_class=%d; using them all", c, pos.size, n_per_class)
            pos = pos[:n_per_class]
        keep.append(pos)
    return np.sort(np.concatenate(keep)) if keep else np.zeros(0, dtype=np.int64)


# --------------------------------------------------------------------------- LE over training


def compute(run: RunSource | Path | str, settings: Mapping[str, Any], *, job: AnalysisJob | None = None) -> xr.Dataset:
    """LE between tracked images at every record point of a run (``analysis/elasticity/{run}.nc``).

    Parameters
    ----------
    run : RunSource or path of the run directory (or its ``run.h5``)
    settings : resolved ``analyses.elasticity``
    job : AnalysisJob, optional
        Its ``mem_budget_bytes`` sizes the engine's batches (default: the schema default).

    Returns
    -------
    Dataset with dims ``record``, ``image_i`` (update samples), ``image_j`` (probes),
    ``class_i``, ``class_j``, ``bin``, ``baseline``. Variables: ``le``, ``num`` (record,
    image_i, image_j) when N, M <= ``max_full``; ``den``, ``rel_change``, ``lr_used`` (record,
    image_i); ``class_mean``, ``class_median``, ``n_pairs``, ``overflow``, ``n_nan`` (record,
    class_i, class_j); ``hist`` (record, class_i, class_j, bin); ``within``, ``between``,
    ``ratio`` and their ``*_median`` twins, ``nan_fraction`` (record); with clustering
    ``cluster_accuracy``, ``cluster_ari`` (record), ``baseline_accuracy``, ``baseline_ari``
    (baseline).
    """
    import xarray as xr

    from gendyn.api import tracked_inputs
    from gendyn.elasticity.clustering import cluster_baselines, cluster_le
    from gendyn.elasticity.common import _same_pairs
    from gendyn.elasticity.engines import local_elasticity
    from gendyn.elasticity.summary import pair_summary

    src = _source(run)
    s = dict(settings)
    job = job or AnalysisJob.create()
    x, y = tracked_inputs(src.run_dir, data_root=src.data_root)
    tracked = src.tracked
    split = tracked["split"].values.astype(str)
    sel_u = np.flatnonzero(split == "train")
    sel_u = sel_u[select_per_class(y.numpy()[sel_u], s["n_per_class"])]
    if s["probes"] == "train":
        sel_p = sel_u
    else:
        sel_p = np.flatnonzero(split == "test")
        sel_p = sel_p[select_per_class(y.numpy()[sel_p], s["n_per_class"])]
    if sel_u.size == 0 or sel_p.size == 0:
        raise ValueError(f"{src.run_file}: no tracked {'train' if sel_u.size == 0 else 'test'} images; "
                         "raise recording.n_tracked_train / n_tracked_test")  # fmt: skip
    cluster = s["cluster"] if s["probes"] == "train" else None
    if s["cluster"] is not None and s["probes"] != "train":
        logger.warning("analyses.elasticity.cluster needs probes: train; clustering skipped")
    steps = src.checkpoint_steps
    if s["records"] == "final":
        steps = steps[-1:]
    epochs = src.metrics["epoch"].sel(step=steps).values
    xu, yu, xp, yp = x[sel_u], y[sel_u], x[sel_p], y[sel_p]
    classes = sorted(set(yu.tolist()) | set(yp.tolist()))
    same = _same_pairs(xu, xp).numpy()
    N, M = len(sel_u), len(sel_p)
    full = N <= s["max_full"] and M <= s["max_full"]
    per: dict[str, list[Any]] = {}
    device = _device(s)
    logger.info("elasticity compute %s: %d records, %d updates x %d probes, device %s", src.run_dir, len(steps), N, M, device)
    for r, step in enumerate(steps):
        model = src.model(int(step), device=device)
        kw = _le_kwargs(s, next(model.parameters()).dtype, job.mem_budget_bytes)
        parts = local_elasticity(model, xu, yu, xp, **kw)
        le = parts.le.double().numpy()
        summ = pair_summary(le, yu.numpy(), yp.numpy(), same, classes=classes, n_bins=s["n_bins"])
        row = {k: v for k, v in summ.items() if k != "bin_edges"}
        row.update(den=parts.den.double().numpy(), rel_change=parts.rel_change.double().numpy(), lr_used=parts.lr.double().numpy(),
                   nan_fraction=np.asarray(np.isnan(le[~same]).mean() if (~same).any() else np.nan))  # fmt: skip
        if full:
            row.update(le=le, num=parts.num.double().numpy())
        if cluster is not None:
            res = cluster_le(le, yu.numpy(), method=cluster["method"], seed=cluster["seed"])
            row.update(cluster_accuracy=np.asarray(res.accuracy), cluster_ari=np.asarray(res.ari))
        for k, v in row.items():
            per.setdefault(k, []).append(v)
        logger.info("record %d/%d (step %d): within %.4g, between %.4g, ratio %.4g, NaN %.3f%s", r + 1, len(steps), step,
                    float(summ["within"]), float(summ["between"]), float(summ["ratio"]), float(row["nan_fraction"]),
                    f", cluster acc {float(row['cluster_accuracy']):.3f}" if cluster is not None else "")  # fmt: skip
    dims = {
        "le": ("record", "image_i", "image_j"), "num": ("record", "image_i", "image_j"),
        "den": ("record", "image_i"), "rel_change": ("record", "image_i"), "lr_used": ("record", "image_i"),
        "hist": ("record", *_PAIR, "bin"), **{k: ("record", *_PAIR) for k in _CLASS_STATS},
    }  # fmt: skip
    data_vars = {k: (dims.get(k, ("record",)), np.stack(v)) for k, v in per.items()}
    edges = np.linspace(0.0, 1.0, s["n_bins"] + 1)
    ds = xr.Dataset(
        data_vars,
        coords={
            "record": np.arange(len(steps)), "step": ("record", steps.astype(np.int64)), "epoch": ("record", epochs),
            "image_i": np.arange(N), "label_i": ("image_i", yu.numpy()), "index_i": ("image_i", tracked["index"].values[sel_u]),
            "tracked_i": ("image_i", sel_u), "split_i": ("image_i", split[sel_u].astype(object)),
            "image_j": np.arange(M), "label_j": ("image_j", yp.numpy()), "index_j": ("image_j", tracked["index"].values[sel_p]),
            "tracked_j": ("image_j", sel_p), "split_j": ("image_j", split[sel_p].astype(object)),
            "class_i": classes, "class_j": classes,
            "bin": np.arange(s["n_bins"]), "bin_lo": ("bin", edges[:-1]), "bin_hi": ("bin", edges[1:]),
        },
    )  # fmt: skip
    if cluster is not None:
        base = cluster_baselines(xu.double().numpy(), yu.numpy(), seed=cluster["seed"], pca_dims=cluster["pca_dims"])
        ds = ds.assign_coords(baseline=list(base))
        ds = ds.assign(_baseline_vars(base))
    _describe(ds)
    ds.attrs.update(
        **src.identity(), definition=_definition(s),
        form=s["form"], reduce=s["reduce"], lr=float(s["lr"]), loss=s["loss"], dtype=s["dtype"], engine=s["engine"],
        probes=s["probes"], n_per_class=-1 if s["n_per_class"] is None else int(s["n_per_class"]),
        den_eps=-1.0 if s["den_eps"] is None else float(s["den_eps"]),
        cluster_method="" if cluster is None else cluster["method"], settings=json.dumps(s, sort_keys=True),
    )  # fmt: skip
    return ds


# --------------------------------------------------------------------------- Fig. 5 histograms


def pretrained_model(model_cfg: Mapping[str, Any], input_shape: tuple[int, ...], n_outputs: int, weights: Path | str,
                     *, key: str = "analyses.elasticity.pretrained.weights") -> nn.Module:  # fmt: skip
    """Build the configured model and load a local state dict (never downloaded); eval mode.

    Accepts a plain state dict (torchvision's ``vgg19-dcbb9e9d.pth``), a checkpoint dict with
    ``state_dict``/``model``, and ``module.``-prefixed keys.

    Raises
    ------
    FileNotFoundError
        The file is missing (names ``key``).
    ValueError
        The file is not a state dict or does not match the model (names the file).
    """
    import torch

    from gendyn.models import build_model

    path = Path(weights)
    if not path.is_file():
        raise FileNotFoundError(
            f"{key}: {str(path)!r} does not exist; give the path of a local state dict (e.g. torchvision's "
            "vgg19-dcbb9e9d.pth, downloaded by you — gendyn never downloads weights)"
        )
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:
        raise ValueError(f"{path}: not a PyTorch state dict ({e}); set {key} to a .pth/.pt file") from e
    for k in ("state_dict", "model"):
        if isinstance(state, dict) and isinstance(state.get(k), dict):
            state = state[k]
    if not isinstance(state, dict):
        raise ValueError(f"{path}: holds a {type(state).__name__}, not a state dict")
    state = {(k[7:] if k.startswith("module.") else k): v for k, v in state.items()}
    model = build_model(model_cfg, tuple(input_shape), int(n_outputs))
    dtype = next(model.parameters()).dtype
    try:
        model.load_state_dict({k: v.to(dtype) if v.is_floating_point() else v for k, v in state.items()}, strict=True)
    except RuntimeError as e:
        raise ValueError(f"{path}: does not match model {model_cfg.get('name')!r} with {n_outputs} outputs: {e}") from None
    logger.info("loaded pretrained weights %s into %s", path, model_cfg.get("name"))
    return model.eval()


def histograms(
    settings: Mapping[str, Any],
    *,
    run: RunSource | Path | str | None = None,
    pretrained: Mapping[str, Any] | None = None,
    job: AnalysisJob | None = None,
    data_root: Path | str | None = None,
) -> xr.Dataset:
    """Paper Fig. 5: LE between ``n_per_class`` images of each of a few classes, one network.

    Parameters
    ----------
    settings : resolved ``analyses.elasticity`` (``histograms`` must be set)
    run : RunSource or path, optional
        A trained run: its final checkpoint and its data.
    pretrained : mapping, optional
        ``{"experiment", "data", "model", "pretrained"}`` of an experiment with given weights
        (``pretrained``: ``analyses.elasticity.pretrained``). Exactly one of ``run`` and
        ``pretrained``.
    job : AnalysisJob, optional
        Its ``mem_budget_bytes`` sizes the engine's batches.
    data_root : path, optional
        Root of on-disk datasets when the data config has none (for a path ``run`` or
        ``pretrained``).

    Returns
    -------
    Dataset with ``le`` (image_i, image_j) when N <= ``max_full``, ``hist`` (class_i, class_j,
    bin), ``overflow``, ``n_nan``, ``n_pairs``, ``class_mean``, ``class_median`` (class_i,
    class_j), ``within``, ``between``, ``ratio`` and their ``*_median`` twins (scalars) and
    ``den``, ``rel_change`` (image_i).
    """
    import torch
    import xarray as xr

    from gendyn.elasticity.engines import local_elasticity
    from gendyn.elasticity.summary import pair_summary

    s = dict(settings)
    h = s["histograms"]
    if h is None:
        raise ValueError("analyses.elasticity.histograms: not set; give at least {} to enable the Fig. 5 histograms")
    if (run is None) == (pretrained is None):
        raise ValueError("elasticity histograms: give exactly one of a run (--run-dir) and pretrained weights (--pretrained)")
    job = job or AnalysisJob.create()
    if run is not None:
        src = _source(run, data_root)
        data = src.data
        model = src.model(device=_device(s))
        output_index = None
        source = str(src.run_dir)
    else:
        assert pretrained is not None
        pre = pretrained["pretrained"]
        data = _load_data(pretrained["data"], data_root)
        n_out = pre.get("n_outputs") or data.n_classes
        model = pretrained_model(pretrained["model"], data.input_shape, n_out, pre["weights"],
                                 key=f"experiments.{pretrained.get('experiment', '<name>')}.analyses.elasticity.pretrained.weights")  # fmt: skip
        model = model.to(_device(s))
        output_index = pre.get("output_index")
        if output_index is not None and len(output_index) != data.n_classes:
            raise ValueError(f"analyses.elasticity.pretrained.output_index: {len(output_index)} entries for {data.n_classes} data classes")
        source = str(pre["weights"])
    split = getattr(data, h["split"])
    labels = split.labels.numpy()
    classes = list(h["classes"]) if h["classes"] is not None else sorted(set(labels.tolist()))
    bad = [c for c in classes if c not in set(labels.tolist())]
    if bad:
        raise ValueError(f"analyses.elasticity.histograms.classes: {bad} not among the labels of the {h['split']} split "
                         f"({sorted(set(labels.tolist()))})")  # fmt: skip
    names = h["class_names"] or [data.classes[c] if c < len(data.classes) else str(c) for c in classes]
    if len(names) != len(classes):
        raise ValueError(f"analyses.elasticity.histograms.class_names: {len(names)} names for {len(classes)} classes")
    rng = np.random.default_rng(np.random.SeedSequence([int(h["seed"]), 2002]))
    pick = []
    for c in classes:
        pos = np.flatnonzero(labels == c)
        n = min(h["n_per_class"], pos.size)
        if n < h["n_per_class"]:
            logger.warning("class %s has only %d images in the %s split", c, pos.size, h["split"])
        pick.append(np.sort(rng.choice(pos, size=n, replace=False)))
    idx = np.concatenate(pick)
    x, y = split.get(idx)
    dtype = next(model.parameters()).dtype
    x = x.to(dtype)
    y_model = y if output_index is None else torch.as_tensor(output_index, dtype=torch.int64)[y]
    kw = _le_kwargs(s, dtype, job.mem_budget_bytes, lr=h["lr"])
    logger.info("elasticity histograms %s: %d images of classes %s, lr %g", source, len(idx), classes, kw["lr"])
    parts = local_elasticity(model, x, y_model, x, **kw)
    le = parts.le.double().numpy()
    same = np.eye(len(idx), dtype=bool)
    summ = pair_summary(le, y.numpy(), y.numpy(), same, classes=classes, n_bins=s["n_bins"])
    ds = xr.Dataset(
        {k: (_PAIR, summ[k]) for k in _CLASS_STATS}
        | {"hist": ((*_PAIR, "bin"), summ["hist"])}
        | {k: ((), summ[k]) for k in _POOLED_STATS}
        | {"den": (("image_i",), parts.den.double().numpy()), "rel_change": (("image_i",), parts.rel_change.double().numpy())},
        coords={"class_i": classes, "class_j": classes, "class_name_i": ("class_i", names), "class_name_j": ("class_j", names),
                "bin": np.arange(s["n_bins"]), "bin_lo": ("bin", summ["bin_edges"][:-1]), "bin_hi": ("bin", summ["bin_edges"][1:]),
                "image_i": np.arange(len(idx)), "label_i": ("image_i", y.numpy()), "index_i": ("image_i", idx)},
    )  # fmt: skip
    if len(idx) <= s["max_full"]:
        ds["le"] = (("image_i", "image_j"), le)
        ds = ds.assign_coords(image_j=np.arange(len(idx)), label_j=("image_j", y.numpy()))
    _describe(ds)
    ds.attrs.update(source=source, split=h["split"], n_per_class=int(h["n_per_class"]), lr=float(kw["lr"]), form=s["form"],
                    reduce=s["reduce"], loss=s["loss"], dtype=str(kw["dtype"]).replace("torch.", ""), definition=_definition(s),
                    nan_fraction=float(np.isnan(le[~same]).mean()), settings=json.dumps(s, sort_keys=True),
                    pretrained=int(run is None))  # fmt: skip
    return ds


# --------------------------------------------------------------------------- He & Su protocol


def he_su(
    settings: Mapping[str, Any],
    experiment: Mapping[str, Any],
    *,
    job: AnalysisJob | None = None,
    data_root: Path | str | None = None,
) -> xr.Dataset:
    """He & Su's (2020) LE clustering of two or more primary classes (``cluster.he_su``).

    ``n_per_class`` seeded training images of each primary class and ``n_auxiliary`` of the
    auxiliary classes; a one-output copy of the experiment's model (seeded initialisation) is
    trained on primary (target 1) vs auxiliary (target 0) images (``theta: trained``;
    :func:`gendyn.elasticity.he_su.he_su_train`), then at these fixed weights
    :func:`gendyn.elasticity.he_su.he_su_similarity` gives the ripple and kernel matrices of the
    primary images (float64). The ripple matrix is clustered with ``cluster.method`` on
    ``(S + S^T) / 2`` (:func:`~gendyn.elasticity.clustering.cluster_le`), the kernel matrix by
    kernel K-means on ``(K + K^T) / 2`` (their ``kernel_clustering``).

    Parameters
    ----------
    settings : resolved ``analyses.elasticity`` (``cluster.he_su`` must be set)
    experiment : mapping
        ``{"data", "model"}`` of the experiment (its ``data.classes`` is ignored: the protocol
        picks its own primary and auxiliary classes).
    job : AnalysisJob, optional
        Its ``mem_budget_bytes`` sizes the engine's batches.
    data_root : path, optional
        Root of on-disk datasets when the data config has none.

    Returns
    -------
    Dataset with ``ripple``, ``kernel``, ``change`` (image_i, image_j; row = updated image),
    ``lr_used``, ``dloss``, ``output`` (image_i), ``cluster_accuracy``, ``cluster_ari`` (form:
    ripple, kernel), ``train_loss`` (scalar; NaN for ``theta: init``) and the K-means baselines
    (baseline).
    """
    import torch
    import xarray as xr
    from sklearn.metrics import adjusted_rand_score

    from gendyn.elasticity.clustering import cluster_baselines, cluster_le, hungarian_accuracy, kernel_kmeans
    from gendyn.elasticity.he_su import he_su_similarity, he_su_train
    from gendyn.models import build_model

    hs = settings["cluster"]["he_su"] if settings.get("cluster") else None
    if hs is None:
        raise ValueError("analyses.elasticity.cluster.he_su: not set")
    job = job or AnalysisJob.create()
    data = _load_data({k: v for k, v in experiment["data"].items() if k != "classes"}, data_root)
    labels = data.train.labels.numpy()
    rng = np.random.default_rng(np.random.SeedSequence([int(hs["seed"]), 4242]))
    prim = [np.sort(rng.choice(np.flatnonzero(labels == c), size=min(hs["n_per_class"], int((labels == c).sum())), replace=False))
            for c in hs["primary"]]  # fmt: skip
    aux_classes = hs["auxiliary"] if hs["auxiliary"] is not None else sorted(set(labels.tolist()) - set(hs["primary"]))
    aux_pool = np.flatnonzero(np.isin(labels, aux_classes))
    aux = np.sort(rng.choice(aux_pool, size=min(hs["n_auxiliary"], aux_pool.size), replace=False))
    idx = np.concatenate(prim)
    xp, yp = data.train.get(idx)
    xa, _ = data.train.get(aux)
    with torch.random.fork_rng(devices=[]):  # the protocol's own model, without touching the caller's RNG
        torch.manual_seed(int(hs["seed"]))
        model = build_model({**experiment["model"], "dtype": "float64"}, data.input_shape, 1)
    train_loss = float("nan")
    if hs["theta"] == "trained":
        tr = hs["train"]
        x_bin = torch.cat([xp, xa]).to(torch.float64)
        t_bin = torch.cat([torch.ones(len(xp)), torch.zeros(len(xa))]).to(torch.float64)
        model, train_loss = he_su_train(model, x_bin, t_bin, loss=hs["loss"], lr=tr["lr"], batch_size=tr["batch_size"],
                                        epochs=tr["epochs"], seed=int(hs["seed"]))  # fmt: skip
        logger.info("He & Su: binary model trained %d epochs on %d primary + %d auxiliary images, final loss %.4g",
                    tr["epochs"], len(xp), len(xa), train_loss)  # fmt: skip
    sim = he_su_similarity(model, xp, loss=hs["loss"], lr=hs["lr"], dtype=torch.float64, mem_budget_bytes=job.mem_budget_bytes)
    c = settings["cluster"]
    y = yp.numpy()
    res_ripple = cluster_le(sim.ripple, y, method=c["method"], seed=c["seed"])
    k_sym = np.nan_to_num((sim.kernel + sim.kernel.T) / 2.0, nan=0.0, posinf=0.0, neginf=0.0)
    pred_k = kernel_kmeans(k_sym, np.unique(y).size, seed=c["seed"])
    acc = [res_ripple.accuracy, hungarian_accuracy(y, pred_k)]
    ari = [res_ripple.ari, float(adjusted_rand_score(y, pred_k))]
    base = cluster_baselines(xp.double().numpy(), y, seed=c["seed"], pca_dims=c["pca_dims"])
    pair = ("image_i", "image_j")
    ds = xr.Dataset(
        {"ripple": (pair, sim.ripple), "kernel": (pair, sim.kernel), "change": (pair, sim.change),
         "lr_used": (("image_i",), sim.lr), "dloss": (("image_i",), sim.dloss), "output": (("image_i",), sim.output),
         "cluster_accuracy": (("form",), acc), "cluster_ari": (("form",), ari), "train_loss": ((), train_loss),
         **_baseline_vars(base)},
        coords={"image_i": np.arange(len(idx)), "image_j": np.arange(len(idx)), "label": ("image_i", y),
                "index": ("image_i", idx), "form": ["ripple", "kernel"], "baseline": list(base)},
        attrs={"protocol": "He & Su (2020), local-elasticity based clustering: binary one-output model, one SGD step per "
                           "primary sample from fixed weights (checked against their released code)",
               "definition": "ripple_ij = |f(x_j, w+_i) - f(x_j, w)| / |f(x_i, w+_i) - f(x_i, w)|; kernel_ij = (f(x_j, w+_i) - "
                             "f(x_j, w)) / (-lr l'(f(x_i, w), 1)); w+_i = w - lr grad loss(f(x_i, w), 1)",
               "primary": list(hs["primary"]), "auxiliary": list(aux_classes), "n_auxiliary": int(len(aux)),
               "lr": float(hs["lr"]), "loss": hs["loss"], "theta": hs["theta"], "seed": int(hs["seed"]),
               "method": c["method"], "kernel_method": "kernel_kmeans", "settings": json.dumps(dict(hs), sort_keys=True)},
    )  # fmt: skip
    _describe(ds)
    for k, v in {
        "ripple": "He & Su relative similarity |df_ij| / |df_ii| (row i: the updated image)",
        "kernel": "He & Su kernelized similarity df_ij / (-lr l'_i), signed (first order: <grad f(x_i), grad f(x_j)>)",
        "change": "f(x_j, w+_i) - f(x_j, w): change of the output on image j after the step on image i",
        "lr_used": "step size of row i (lr unless the retry rule enlarged it)",
        "dloss": "l'_i = d loss / d f at (f(x_i, w), 1)", "output": "f(x_i, w) at the fixed weights",
        "cluster_accuracy": "Hungarian-matched accuracy: ripple clustered by cluster.method, kernel by kernel K-means",
        "cluster_ari": "adjusted Rand index of the same clusterings", "train_loss": "last-epoch loss of the binary model",
    }.items():
        ds[k].attrs["description"] = v
    return ds


# --------------------------------------------------------------------------- estimate (gendyn plan)


def _le_peak(r: Any, n_updates: int, n_probes: int, itemsize: int, budget_bytes: int) -> tuple[int, str]:
    """Peak bytes of one exact-LE computation with the vmap engine's chunking, and a warning."""
    from gendyn.plan import PROCESS_BYTES

    # The vmap engine (gendyn.elasticity.vmap) sizes its update chunk c and probe chunk m to the
    # budget; one update (c = 1) with one probe is its floor, whatever the budget.
    act = 2 * r.n_units + r.data.n_classes + r.input_numel
    c = max(1, min(n_updates, budget_bytes // max(1, 4 * r.n_params * itemsize)))
    m = max(1, min(n_probes, (budget_bytes - 2 * c * r.n_params * itemsize) // max(1, 3 * c * act * itemsize)))
    floor = 4 * r.n_params * itemsize + 3 * act * itemsize
    need = max(floor, min(budget_bytes, 4 * c * r.n_params * itemsize + 3 * c * m * act * itemsize))
    note = ""
    if floor > budget_bytes:
        note = f"one update's parameter copies ({floor / 2**20:.0f} MiB) exceed the budget"
    return PROCESS_BYTES + 2 * r.state_bytes + need, note


def estimate(settings: Mapping[str, Any], runs: Any, *, experiment: Mapping[str, Any], budget_bytes: int) -> list[Any]:
    """Sizes and peak memory of ``elasticity run``, ``histograms`` and ``he_su`` (``gendyn plan``).

    ``runs`` are the experiment's :class:`gendyn.plan.RunShape` (a pretrained experiment: one,
    for its data and model). Update and probe counts follow :func:`select_per_class` on balanced
    classes; memory follows the vmap engine's chunking of :func:`gendyn.elasticity.engines.local_elasticity`.
    """
    from gendyn.plan import PROCESS_BYTES, StageEstimate
    from gendyn.store import netcdf_nbytes

    s = dict(settings)
    bins = int(s["n_bins"])
    out = []
    pretrained = s.get("pretrained") is not None

    def itemsize(r: Any) -> int:
        return {"float32": 4, "float64": 8}.get(s["dtype"], r.itemsize)

    def present(n_draws: int, n_classes: int) -> int:
        """Expected classes among ``n_draws`` seeded random images of ``n_classes`` balanced ones."""
        return max(1, min(n_classes, round(n_classes * (1 - (1 - 1 / max(n_classes, 1)) ** n_draws))))

    def per_class(n_tracked: int, n_classes: int, want: int | None) -> int:
        if want is None:
            return n_tracked
        return min(n_tracked, want * present(n_tracked, n_classes))

    def summary_vars(k: tuple[int, ...], c: int) -> dict[str, tuple[tuple[int, ...], int]]:
        v = {name: ((*k, c, c), 8) for name in ("class_mean", "class_median", "n_pairs", "overflow", "n_nan")}
        v["hist"] = ((*k, c, c, bins), 8)
        v.update({name: (k, 8) for name in ("within", "between", "ratio", "within_median", "between_median", "ratio_median")})
        v.update(class_i=((c,), 8), class_j=((c,), 8), bin=((bins,), 8), bin_lo=((bins,), 8), bin_hi=((bins,), 8))
        return v

    if not pretrained:
        total, peak, notes = 0, 0, ""
        for r in runs:
            n = per_class(r.n_tracked_train, r.data.n_classes, s["n_per_class"])
            m = n if s["probes"] == "train" else per_class(r.n_tracked_test, r.data.n_classes, s["n_per_class"])
            k = 1 if s["records"] == "final" else len(r.checkpoint_steps)
            c = present(max(r.n_tracked_train, r.n_tracked_test if s["probes"] == "test" else 0), r.data.n_classes)
            v = summary_vars((k,), c)
            if n <= s["max_full"] and m <= s["max_full"]:
                v.update(le=((k, n, m), 8), num=((k, n, m), 8))
            v.update({name: ((k, n), 8) for name in ("den", "rel_change", "lr_used")})
            v.update(nan_fraction=((k,), 8), record=((k,), 8), step=((k,), 8), epoch=((k,), 8))
            v.update({name: ((n,), 8) for name in ("image_i", "label_i", "index_i", "tracked_i", "split_i")})
            v.update({name: ((m,), 8) for name in ("image_j", "label_j", "index_j", "tracked_j", "split_j")})
            if s["cluster"] is not None and s["probes"] == "train":
                v.update(cluster_accuracy=((k,), 8), cluster_ari=((k,), 8), baseline=((2,), 8),
                         baseline_accuracy=((2,), 8), baseline_ari=((2,), 8))  # fmt: skip
            total += netcdf_nbytes(v, attrs_bytes=2800)
            p, note = _le_peak(r, n, m, itemsize(r), budget_bytes)
            peak, notes = max(peak, p + 2 * k * n * m * 8), notes or note
        out.append(StageEstimate("elasticity", "run", len(runs), total, peak, budget_bytes, note=notes))
    h = s.get("histograms")
    if h is not None:
        total, peak, notes = 0, 0, ""
        for r in runs:
            split = r.data.n_train if h["split"] == "train" else r.data.n_test
            n_cls = len(h["classes"]) if h["classes"] is not None else r.data.n_classes
            per = max(1, split // max(1, r.data.n_classes))
            n = n_cls * min(int(h["n_per_class"]), per)
            v = summary_vars((), n_cls)
            v.update(den=((n,), 8), rel_change=((n,), 8), image_i=((n,), 8), label_i=((n,), 8), index_i=((n,), 8),
                     class_name_i=((n_cls,), 16), class_name_j=((n_cls,), 16))  # fmt: skip
            if n <= s["max_full"]:
                v.update(le=((n, n), 8), image_j=((n,), 8), label_j=((n,), 8))
            total += netcdf_nbytes(v, attrs_bytes=2100)
            p, note = _le_peak(r, n, n, itemsize(r), budget_bytes)
            peak, notes = max(peak, p + 3 * n * n * 8), notes or note
        n_files = 1 if pretrained else len(runs)
        out.append(StageEstimate("elasticity", "histograms", n_files, total if not pretrained else total // max(1, len(runs)),
                                 peak, budget_bytes, note=notes))  # fmt: skip
    he_su = (s.get("cluster") or {}).get("he_su") if s["probes"] == "train" else None
    if he_su is not None and not pretrained and runs:
        r = runs[0]
        n = len(he_su["primary"]) * int(he_su["n_per_class"])
        # the dataset of he_su(): ripple, kernel and change matrices, per-update vectors, one
        # clustering score per form and per baseline
        v = {"ripple": ((n, n), 8), "kernel": ((n, n), 8), "change": ((n, n), 8), "image_i": ((n,), 8),
             "image_j": ((n,), 8), "label": ((n,), 8), "index": ((n,), 8), "lr_used": ((n,), 8), "dloss": ((n,), 8),
             "output": ((n,), 8), "form": ((2,), 24), "cluster_accuracy": ((2,), 8), "cluster_ari": ((2,), 8),
             "train_loss": ((), 8), "baseline": ((2,), 24), "baseline_accuracy": ((2,), 8),
             "baseline_ari": ((2,), 8)}  # fmt: skip
        peak = PROCESS_BYTES + 4 * r.state_bytes + 8 * n * n * 8
        out.append(StageEstimate("elasticity", "he_su", 1, netcdf_nbytes(v, attrs_bytes=2700), peak, None))
    return out
