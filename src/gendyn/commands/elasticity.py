"""``gendyn elasticity``: the paper-002 LE analysis stages (files <-> :mod:`gendyn.elasticity`).

    gendyn elasticity run RUN_DIR OUT.nc [--settings JSON] [options]
        LE between tracked images at every record point -> analysis/elasticity/{run}.nc
    gendyn elasticity histograms OUT.nc (--run-dir RUN_DIR | --pretrained JSON) [--settings JSON]
        paper Fig. 5: LE between a few classes at the final or pretrained weights
    gendyn elasticity he-su OUT.nc --experiment JSON [--settings JSON]
        He & Su's unsupervised clustering protocol (as read by the spec)
    gendyn elasticity plot {training,classes,clustering,histograms} PREFIX IN.nc [IN.nc ...]

Settings are the keys of ``analyses.elasticity`` in the workflow configuration (schema
``$defs/analysis_elasticity``); ``--settings`` takes them as JSON (defaults fill what is
missing) and single options override them. ``--pretrained`` takes the experiment's
``data``, ``model`` and ``analyses.elasticity.pretrained`` as JSON (what the Snakemake rule
passes); the weights come only from the file it names.
"""

from __future__ import annotations

import argparse
import json
import logging
from pathlib import Path
from typing import Any

__all__ = ["register", "resolve_settings", "select_per_class", "pretrained_model", "compute_run", "compute_histograms", "compute_he_su"]

logger = logging.getLogger(__name__)

PLOTS = ("training", "classes", "clustering", "histograms")


# --------------------------------------------------------------------------- settings


def resolve_settings(settings: dict[str, Any] | None = None, **override: Any) -> dict[str, Any]:
    """``analyses.elasticity`` settings validated against the schema, defaults filled.

    Raises
    ------
    gendyn.config.ConfigError
        Naming the key, the bad value and the allowed values.
    """
    from gendyn.config import validate_section

    merged = dict(settings or {})
    merged.update({k: v for k, v in override.items() if v is not None})
    return validate_section("analysis_elasticity", merged, "analyses.elasticity")


def _torch_dtype(name: str, model_dtype: Any) -> Any:
    import torch

    return {"float32": torch.float32, "float64": torch.float64}.get(name, model_dtype)


def select_per_class(labels: Any, n_per_class: int | None, classes: list[int] | None = None) -> Any:
    """Positions of the first ``n_per_class`` items of each class (in the given order).

    Returns a sorted int64 array; classes with fewer items keep what they have (logged).
    """
    import numpy as np

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


def _le_kwargs(s: dict[str, Any], model_dtype: Any, mem_budget_mb: int, lr: float | None = None) -> dict[str, Any]:
    retry = s["retry"]
    return {
        "lr": float(lr if lr is not None else s["lr"]),
        "loss": "ce" if s["loss"] == "cross_entropy" else "mse",
        "form": s["form"],
        "reduce": s["reduce"],
        "dtype": _torch_dtype(s["dtype"], model_dtype),
        "memory_budget": int(mem_budget_mb) << 20,
        "den_eps": s["den_eps"],
        "retry": (float(retry["factor"]), int(retry["max_tries"])) if retry["max_tries"] else None,
        "engine": s["engine"],
        "return_parts": True,
        "progress": True,
    }


def _device(s: dict[str, Any]) -> Any:
    from gendyn.train import resolve_device

    return resolve_device(s["device"])


def _definition(s: dict[str, Any]) -> str:
    if s["form"] == "exact":
        return ("LE(x, x') = ||z(x', w+) - z(x', w)|| / ||z(x, w+) - z(x, w)||, w+ = w - lr grad loss(x, y) "
                "(one SGD step on x alone, eval mode); paper 002 Sec. 3")  # fmt: skip
    return ("first-order (NTK) approximation, not the exact LE: ||Theta(x', x) r|| / ||Theta(x, x) r||, "
            "Theta = J J^T, r = dloss/dz(x)")  # fmt: skip


# --------------------------------------------------------------------------- LE over training


def compute_run(run_dir: Path, settings: dict[str, Any], *, mem_budget_mb: int = 2048) -> Any:
    """LE between tracked images at every record point of a run (an ``xarray.Dataset``).

    Dims: ``record``, ``image_i`` (update samples), ``image_j`` (probes), ``class_i``,
    ``class_j``, ``bin``, ``baseline``. Variables: ``le``, ``num`` (record, image_i,
    image_j) when N, M <= max_full; ``den``, ``rel_change``, ``lr_used`` (record, image_i);
    ``class_mean``, ``class_median``, ``n_pairs``, ``overflow``, ``n_nan`` (record, class_i,
    class_j); ``hist`` (record, class_i, class_j, bin); ``within``, ``between``, ``ratio``
    and their ``*_median`` twins, ``nan_fraction`` (record); with clustering
    ``cluster_accuracy``, ``cluster_ari`` (record), ``baseline_accuracy``, ``baseline_ari``
    (baseline).
    """
    import numpy as np
    import torch
    import xarray as xr

    import gendyn
    from gendyn import elasticity as el
    from gendyn import store

    s = settings
    run_dir = Path(run_dir)
    attrs = store.check_run_file(run_dir / store.RUN_FILE)
    x, y = gendyn.tracked_inputs(run_dir)
    tracked = xr.open_dataset(run_dir / store.RUN_FILE, group="tracked", engine="h5netcdf").load()
    split = tracked["split"].values.astype(str)
    sel_u = np.flatnonzero(split == "train")
    sel_u = sel_u[select_per_class(y.numpy()[sel_u], s["n_per_class"])]
    if s["probes"] == "train":
        sel_p = sel_u
    else:
        sel_p = np.flatnonzero(split == "test")
        sel_p = sel_p[select_per_class(y.numpy()[sel_p], s["n_per_class"])]
    if sel_u.size == 0 or sel_p.size == 0:
        raise ValueError(f"{run_dir / store.RUN_FILE}: no tracked {'train' if sel_u.size == 0 else 'test'} images; "
                         "raise recording.n_tracked_train / n_tracked_test")  # fmt: skip
    cluster = s["cluster"] if s["probes"] == "train" else None
    if s["cluster"] is not None and s["probes"] != "train":
        logger.warning("analyses.elasticity.cluster needs probes: train; clustering skipped")
    steps = store.checkpoint_steps(run_dir / store.CHECKPOINT_FILE)
    if s["records"] == "final":
        steps = steps[-1:]
    metrics = xr.open_dataset(run_dir / store.RUN_FILE, group="metrics", engine="h5netcdf").load()
    epochs = metrics["epoch"].sel(step=steps).values
    xu, yu, xp, yp = x[sel_u], y[sel_u], x[sel_p], y[sel_p]
    classes = sorted(set(yu.tolist()) | set(yp.tolist()))
    same = el._same_pairs(xu, xp).numpy()
    N, M = len(sel_u), len(sel_p)
    full = N <= s["max_full"] and M <= s["max_full"]
    per: dict[str, list[Any]] = {}
    device = _device(s)
    for r, step in enumerate(steps):
        model = gendyn.load_model(run_dir, int(step), device=device)
        kw = _le_kwargs(s, next(model.parameters()).dtype, mem_budget_mb)
        parts = el.local_elasticity(model, xu, yu, xp, **kw)
        le = parts.le.double().numpy()
        summ = el.pair_summary(le, yu.numpy(), yp.numpy(), same, classes=classes, n_bins=s["n_bins"])
        row = {k: v for k, v in summ.items() if k != "bin_edges"}
        row.update(den=parts.den.double().numpy(), rel_change=parts.rel_change.double().numpy(), lr_used=parts.lr.double().numpy(),
                   nan_fraction=np.asarray(np.isnan(le[~same]).mean() if (~same).any() else np.nan))  # fmt: skip
        if full:
            row.update(le=le, num=parts.num.double().numpy())
        if cluster is not None:
            res = el.cluster_le(le, yu.numpy(), method=cluster["method"], seed=cluster["seed"])
            row.update(cluster_accuracy=np.asarray(res.accuracy), cluster_ari=np.asarray(res.ari))
        for k, v in row.items():
            per.setdefault(k, []).append(v)
        logger.info("record %d/%d (step %d): within %.4g, between %.4g, ratio %.4g, NaN %.3f%s", r + 1, len(steps), step,
                    float(summ["within"]), float(summ["between"]), float(summ["ratio"]), float(row["nan_fraction"]),
                    f", cluster acc {float(row['cluster_accuracy']):.3f}" if cluster is not None else "")  # fmt: skip
    dims = {
        "le": ("record", "image_i", "image_j"), "num": ("record", "image_i", "image_j"),
        "den": ("record", "image_i"), "rel_change": ("record", "image_i"), "lr_used": ("record", "image_i"),
        "class_mean": ("record", "class_i", "class_j"), "class_median": ("record", "class_i", "class_j"),
        "n_pairs": ("record", "class_i", "class_j"), "overflow": ("record", "class_i", "class_j"),
        "n_nan": ("record", "class_i", "class_j"), "hist": ("record", "class_i", "class_j", "bin"),
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
        base = el.cluster_baselines(xu.double().numpy(), yu.numpy(), seed=cluster["seed"], pca_dims=cluster["pca_dims"])
        ds = ds.assign_coords(baseline=list(base))
        ds["baseline_accuracy"] = ("baseline", [base[k].accuracy for k in base])
        ds["baseline_ari"] = ("baseline", [base[k].ari for k in base])
    _describe(ds)
    ds.attrs.update(
        experiment=str(attrs.get("experiment", "")), run=str(attrs.get("run", "")), definition=_definition(s),
        form=s["form"], reduce=s["reduce"], lr=float(s["lr"]), loss=s["loss"], dtype=s["dtype"], engine=s["engine"],
        probes=s["probes"], n_per_class=-1 if s["n_per_class"] is None else int(s["n_per_class"]),
        den_eps=-1.0 if s["den_eps"] is None else float(s["den_eps"]),
        cluster_method="" if cluster is None else cluster["method"], settings=json.dumps(s, sort_keys=True),
    )  # fmt: skip
    return ds


def _describe(ds: Any) -> None:
    text = {
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
    for k, v in text.items():
        if k in ds:
            ds[k].attrs["description"] = v


# --------------------------------------------------------------------------- Fig. 5 histograms


def pretrained_model(model_cfg: dict[str, Any], input_shape: tuple[int, ...], n_outputs: int, weights: Path | str,
                     *, key: str = "analyses.elasticity.pretrained.weights") -> Any:  # fmt: skip
    """Build the configured model and load a local state dict (never downloaded); eval mode.

    Accepts a plain state dict (torchvision's ``vgg19-dcbb9e9d.pth``), a checkpoint dict with
    ``state_dict``/``model``, and ``module.``-prefixed keys. Raises FileNotFoundError naming
    ``key`` when the file is missing and ValueError naming the file on a mismatch.
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


def compute_histograms(settings: dict[str, Any], *, run_dir: Path | None = None, pretrained: dict[str, Any] | None = None,
                       data_root: str | None = None, mem_budget_mb: int = 2048) -> Any:  # fmt: skip
    """Paper Fig. 5: LE between ``n_per_class`` images of each of a few classes, one network.

    The network is the final checkpoint of ``run_dir`` or the ``pretrained`` experiment
    (``{"data", "model", "pretrained"}``). Returns an ``xarray.Dataset`` with ``le`` (image_i,
    image_j) when N <= max_full, ``hist`` (class_i, class_j, bin), ``overflow``, ``n_nan``,
    ``n_pairs``, ``class_mean``, ``class_median`` (class_i, class_j), ``within``,
    ``between``, ``ratio`` and ``den``, ``rel_change`` (image_i).
    """
    import numpy as np
    import torch
    import xarray as xr

    import gendyn
    from gendyn import elasticity as el
    from gendyn.data import load_data

    s = settings
    h = s["histograms"]
    if h is None:
        raise ValueError("analyses.elasticity.histograms: not set; give at least {} to enable the Fig. 5 histograms")
    if run_dir is not None:
        cfg = gendyn.run_config(run_dir)
        data = load_data(cfg["data"], root=data_root)
        model = gendyn.load_model(run_dir)
        output_index = None
        source = str(run_dir)
        model = model.to(_device(s))
    else:
        assert pretrained is not None
        pre = pretrained["pretrained"]
        data_cfg = dict(pretrained["data"])
        if data_cfg.get("root") is None and data_root is not None:
            data_cfg["root"] = data_root
        data = load_data(data_cfg)
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
    kw = _le_kwargs(s, dtype, mem_budget_mb, lr=h["lr"])
    parts = el.local_elasticity(model, x, y_model, x, **kw)
    le = parts.le.double().numpy()
    same = np.eye(len(idx), dtype=bool)
    summ = el.pair_summary(le, y.numpy(), y.numpy(), same, classes=classes, n_bins=s["n_bins"])
    pair = ("class_i", "class_j")
    ds = xr.Dataset(
        {k: (pair, summ[k]) for k in ("class_mean", "class_median", "n_pairs", "overflow", "n_nan")}
        | {"hist": ((*pair, "bin"), summ["hist"])}
        | {k: ((), summ[k]) for k in ("within", "between", "ratio", "within_median", "between_median", "ratio_median")}
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
                    pretrained=int(run_dir is None))  # fmt: skip
    return ds


# --------------------------------------------------------------------------- He & Su protocol


def compute_he_su(settings: dict[str, Any], experiment: dict[str, Any], *, data_root: str | None = None) -> Any:
    """He & Su's unsupervised LE clustering of two primary classes (``cluster.he_su``)."""
    import numpy as np
    import torch
    import xarray as xr

    from gendyn import elasticity as el
    from gendyn.data import load_data
    from gendyn.models import build_model

    hs = settings["cluster"]["he_su"] if settings.get("cluster") else None
    if hs is None:
        raise ValueError("analyses.elasticity.cluster.he_su: not set")
    data_cfg = {k: v for k, v in experiment["data"].items() if k != "classes"}
    if data_cfg.get("root") is None and data_root is not None:
        data_cfg["root"] = data_root
    data = load_data(data_cfg)
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
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(int(hs["seed"]))
        model = build_model(experiment["model"], data.input_shape, 1)
    S = el.he_su_similarity(model, xp, xa, lr=hs["lr"], seed=hs["seed"], dtype=torch.float64)
    le_like = np.abs(S)
    c = settings["cluster"]
    res = el.cluster_le(le_like, yp.numpy(), method=c["method"], seed=c["seed"])
    base = el.cluster_baselines(xp.double().numpy(), yp.numpy(), seed=c["seed"], pca_dims=c["pca_dims"])
    return xr.Dataset(
        {"similarity": (("image_i", "image_j"), S), "cluster_accuracy": ((), res.accuracy), "cluster_ari": ((), res.ari),
         "baseline_accuracy": (("baseline",), [base[k].accuracy for k in base]),
         "baseline_ari": (("baseline",), [base[k].ari for k in base])},
        coords={"image_i": np.arange(len(idx)), "image_j": np.arange(len(idx)), "label": ("image_i", yp.numpy()),
                "baseline": list(base)},
        attrs={"protocol": "he_su (as read by the spec; not verified against He & Su's code)", "primary": list(hs["primary"]),
               "auxiliary": list(aux_classes), "lr": float(hs["lr"]), "seed": int(hs["seed"]), "method": c["method"]},
    )  # fmt: skip


# --------------------------------------------------------------------------- handlers


def _settings_arg(args: argparse.Namespace) -> dict[str, Any]:
    raw = json.loads(args.settings) if args.settings else {}
    over = {k: getattr(args, k, None) for k in ("lr", "form", "reduce", "dtype", "probes", "n_per_class", "records")}
    return resolve_settings(raw, **over)


def _threads(args: argparse.Namespace) -> None:
    import torch

    if getattr(args, "threads", None):
        torch.set_num_threads(int(args.threads))


def cmd_run(args: argparse.Namespace) -> int:
    from gendyn import store

    _threads(args)
    s = _settings_arg(args)
    ds = compute_run(Path(args.run_dir), s, mem_budget_mb=args.mem_budget_mb)
    store.write_netcdf(ds, Path(args.out), measure="elasticity")
    logger.info("wrote %s", args.out)
    return 0


def cmd_histograms(args: argparse.Namespace) -> int:
    from gendyn import store

    _threads(args)
    s = _settings_arg(args)
    if (args.run_dir is None) == (args.pretrained is None):
        raise ValueError("give exactly one of --run-dir and --pretrained")
    pre = json.loads(args.pretrained) if args.pretrained else None
    ds = compute_histograms(s, run_dir=Path(args.run_dir) if args.run_dir else None, pretrained=pre,
                            data_root=args.data_root, mem_budget_mb=args.mem_budget_mb)  # fmt: skip
    store.write_netcdf(ds, Path(args.out), measure="elasticity")
    return 0


def cmd_he_su(args: argparse.Namespace) -> int:
    from gendyn import store

    _threads(args)
    s = _settings_arg(args)
    ds = compute_he_su(s, json.loads(args.experiment), data_root=args.data_root)
    store.write_netcdf(ds, Path(args.out), measure="elasticity")
    return 0


def cmd_plot(args: argparse.Namespace) -> int:
    from gendyn import store
    from gendyn.figures import save_figure
    from gendyn.figures import elasticity as figs

    dss = [store.open_analysis(p).load() for p in args.inputs]
    labels = args.labels or [Path(p).stem for p in args.inputs]
    if args.figure == "training":
        fig = figs.le_over_training(dss, labels, x_axis=args.x_axis, log_x=args.log_x, title=args.title)
    elif args.figure == "classes":
        fig = figs.class_matrices(dss[0], stat=args.stat, title=args.title)
    elif args.figure == "clustering":
        fig = figs.clustering(dss, labels, x_axis=args.x_axis, title=args.title)
        if args.table:
            figs.clustering_table(dss, labels).to_csv(args.table, index=False)
    else:
        fig = figs.class_histograms(dss[0], title=args.title)
    save_figure(fig, Path(args.prefix), dpi=args.dpi)
    return 0


def _common(p: argparse.ArgumentParser) -> None:
    from gendyn.parallel import add_dask_arguments

    p.add_argument("--settings", default=None, help="analyses.elasticity settings as JSON (defaults fill the rest)")
    p.add_argument("--lr", type=float, default=None, help="step size of the single update (overrides settings)")
    p.add_argument("--form", choices=["exact", "kernel"], default=None)
    p.add_argument("--reduce", choices=["l2", "label"], default=None)
    p.add_argument("--dtype", choices=["auto", "float32", "float64"], default=None)
    p.add_argument("--data-root", default=None, help="data root for datasets read from disk")
    add_dask_arguments(p)


def register(subparsers: Any) -> None:
    """Add ``gendyn elasticity ...`` to the CLI."""
    p = subparsers.add_parser("elasticity", help="local elasticity (paper 002): LE over training, Fig. 5 histograms, clustering")
    sub = p.add_subparsers(dest="action", required=True)

    r = sub.add_parser("run", help="LE between tracked images at every record point of a run")
    r.add_argument("run_dir", help="run directory (run.h5 + checkpoints.h5) or its run.h5")
    r.add_argument("out", help="output .nc (analysis/elasticity/{run}.nc)")
    _common(r)
    r.add_argument("--probes", choices=["train", "test"], default=None)
    r.add_argument("--n-per-class", dest="n_per_class", type=int, default=None)
    r.add_argument("--records", choices=["all", "final"], default=None)
    r.set_defaults(func=_dir_fix(cmd_run))

    h = sub.add_parser("histograms", help="paper Fig. 5: LE histograms between classes at final or pretrained weights")
    h.add_argument("out")
    h.add_argument("--run-dir", default=None, help="use this run's final checkpoint")
    h.add_argument("--pretrained", default=None, help="JSON {experiment, data, model, pretrained: {weights, ...}}")
    _common(h)
    h.set_defaults(func=cmd_histograms)

    e = sub.add_parser("he-su", help="He & Su's unsupervised LE clustering protocol")
    e.add_argument("out")
    e.add_argument("--experiment", required=True, help="JSON {data, model} of the experiment")
    _common(e)
    e.set_defaults(func=cmd_he_su)

    pl = sub.add_parser("plot", help="figures (PDF + PNG)")
    pl.add_argument("figure", choices=PLOTS)
    pl.add_argument("prefix", help="output path without extension")
    pl.add_argument("inputs", nargs="+", help="analysis .nc files (training/clustering: one per run)")
    pl.add_argument("--labels", nargs="*", default=None, help="legend label per input (default: file stems)")
    pl.add_argument("--dpi", type=int, default=150)
    pl.add_argument("--x-axis", choices=["step", "epoch"], default="epoch")
    pl.add_argument("--log-x", action="store_true")
    pl.add_argument("--stat", choices=["mean", "median"], default="median")
    pl.add_argument("--title", default="")
    pl.add_argument("--table", default=None, help="clustering: also write the numbers as CSV")
    pl.set_defaults(func=cmd_plot)


def _dir_fix(fn: Any) -> Any:
    """Accept ``run.h5`` for RUN_DIR."""

    def wrapped(args: argparse.Namespace) -> int:
        p = Path(args.run_dir)
        if p.suffix == ".h5":
            args.run_dir = str(p.parent)
        return fn(args)

    return wrapped
