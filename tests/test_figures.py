"""Every figure type of every figure set, drawn from small synthetic results, checked as a reader would.

The results are written as files shaped like a real results tree (``run.h5`` with ``/metrics``,
``analysis/<measure>/<run>.nc``, ``runs.csv``, neurashed simulations) and drawn by each set's
``draw(job)``, the workflow's figure job, in run and experiment scope. Each figure is then
checked (:func:`figure_problems`): no empty axes, every legend inside the figure, no line that
is NaN everywhere, no title, label, tick label or legend entry that is a raw config key, and
PDF + PNG written. ``test_the_checks_catch_a_broken_figure`` shows that the checks can fail.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import xarray as xr

import gendyn.figures.style  # noqa: F401 - headless backend first
import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

# --------------------------------------------------------------------------- the checks


@lru_cache(maxsize=1)
def config_keys() -> frozenset[str]:
    """Every dotted key of the config schema (``model.depth``) and every snake_case property name."""
    from gendyn.config import schema

    root = schema()
    defs = root["$defs"]
    out: set[str] = set()

    def walk(node: Any, prefix: str, depth: int) -> None:
        if depth > 8 or not isinstance(node, dict):
            return
        if "$ref" in node:
            walk(defs[node["$ref"].split("/")[-1]], prefix, depth + 1)
        for key, sub in (node.get("properties") or {}).items():
            dotted = f"{prefix}.{key}" if prefix else key
            out.add(dotted)
            if "_" in key:
                out.add(key)
            walk(sub, dotted, depth + 1)
        if isinstance(node.get("additionalProperties"), dict):
            walk(node["additionalProperties"], prefix, depth + 1)

    walk(defs["experiment"], "", 0)
    for name in defs:
        walk(defs[name], "", 0)
    return frozenset(k for k in out if "." in k or "_" in k)


def _texts(fig: Figure) -> Iterator[tuple[str, str]]:
    """(where, text) of every text a reader sees: titles, axis and tick labels, legends, annotations."""
    if fig._suptitle is not None:  # noqa: SLF001
        yield "suptitle", fig._suptitle.get_text()  # noqa: SLF001
    legends = list(fig.legends)
    for ax in fig.axes:
        if not ax.get_visible():
            continue
        for where, t in (("title", ax.get_title()), ("xlabel", ax.get_xlabel()), ("ylabel", ax.get_ylabel())):
            yield where, t
        for lab in ax.get_xticklabels() + ax.get_yticklabels():
            yield "tick", lab.get_text()
        for t in ax.texts:
            yield "text", t.get_text()
        if ax.get_legend() is not None:
            legends.append(ax.get_legend())
    for leg in legends:
        yield "legend title", leg.get_title().get_text()
        for t in leg.get_texts():
            yield "legend", t.get_text()


def _is_config_key(text: str) -> bool:
    keys = config_keys()
    parts = {text.strip()}
    for piece in re.split(r"[\n,;:=()]", text):
        parts.add(piece.strip())
        parts.update(w.strip() for w in piece.split())
    return any(p in keys for p in parts if p)


def _axes_has_data(ax: Any) -> bool:
    for line in ax.get_lines():
        y = np.asarray(line.get_ydata(), dtype=float)
        if y.size and np.isfinite(y).any():
            return True
    if ax.collections or ax.images or ax.patches:
        return any(
            (hasattr(c, "get_paths") and len(c.get_paths())) or (hasattr(c, "get_array") and c.get_array() is not None)
            for c in ax.collections
        ) or bool(ax.images) or bool(ax.patches)
    return False


def figure_problems(fig: Figure) -> list[str]:
    """What a reader would object to, as sentences (empty = none)."""
    problems: list[str] = []
    fig.set_dpi(40)  # layout is in inches: a coarse raster checks the same and draws faster
    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()
    fb = fig.bbox
    twins = {}
    for ax in fig.axes:
        for other in ax.get_shared_x_axes().get_siblings(ax):
            if other is not ax and other.bbox.bounds == ax.bbox.bounds:
                twins.setdefault(id(ax), []).append(other)
    for k, ax in enumerate(fig.axes):
        if not ax.get_visible() or not ax.axison:
            continue  # a legend panel or an axes turned off
        if getattr(ax, "_colorbar", None) is not None or ax.get_label() == "<colorbar>":
            continue
        if not _axes_has_data(ax) and not any(_axes_has_data(t) for t in twins.get(id(ax), [])):
            problems.append(f"axes {k} ({ax.get_title() or ax.get_ylabel()!r}) shows nothing")
        for line in ax.get_lines():
            y = np.asarray(line.get_ydata(), dtype=float)
            x = np.asarray(line.get_xdata(), dtype=float) if np.ndim(line.get_xdata()) else np.array([0.0])
            if y.size and not (np.isfinite(y).any() and np.isfinite(x).any()):
                problems.append(f"axes {k}: line {line.get_label()!r} is NaN everywhere")
    legends = list(fig.legends) + [ax.get_legend() for ax in fig.axes if ax.get_legend() is not None]
    for leg in legends:
        bb = leg.get_window_extent(renderer)
        if bb.x0 < fb.x0 - 1 or bb.y0 < fb.y0 - 1 or bb.x1 > fb.x1 + 1 or bb.y1 > fb.y1 + 1:
            problems.append(f"legend {[t.get_text() for t in leg.get_texts()][:3]} reaches outside the figure")
    for where, text in _texts(fig):
        if text and _is_config_key(text):
            problems.append(f"{where} {text!r} shows a config key")
    return problems


# --------------------------------------------------------------------------- synthetic results

R_EPOCHS = 8
SPE = 10  # steps per epoch


def _schedule(kind: str) -> str:
    return json.dumps({"kind": kind, "every": 1, "freq": None, "include_final": True, "include_init": True, "n": 50,
                       "steps": []})  # fmt: skip


def write_run(path: Path, experiment: str, run: str, *, rng: np.random.Generator, objective: str | None = None,
              data: str = "mnist5k", kind: str = "epoch", seed: int = 0) -> Path:  # fmt: skip
    """A ``run.h5`` with ``/metrics`` and the root attributes the figures read."""
    import h5py

    from gendyn import store

    if kind == "lc":
        steps = np.unique(np.round(np.logspace(0, 3, 25)).astype(int))
        steps = np.concatenate([[0], steps])
    else:
        steps = np.arange(0, (R_EPOCHS + 1) * SPE, SPE)
    n = len(steps)
    t = np.linspace(0, 1, n)
    epoch = steps / SPE
    m = {
        "epoch": epoch,
        "lr": np.where(epoch < R_EPOCHS * 0.6, 0.05, 0.005),
        "train_loss": 2.3 * np.exp(-4 * t) + 0.01,
        "test_loss": 2.3 * np.exp(-3 * t) + 0.1,
        "train_acc": 0.1 + 0.85 * (1 - np.exp(-5 * t)),
        "test_acc": 0.1 + 0.75 * (1 - np.exp(-5 * t)),
        "batch_loss": np.concatenate([[np.nan], 2.0 * np.exp(-4 * t[1:]) + 0.02]),
        "grad_norm": np.concatenate([[np.nan], 1 + rng.random(n - 1)]),
        "gradnorm_fc1": np.concatenate([[np.nan], 0.5 + rng.random(n - 1)]),
        "gradnorm_out": np.concatenate([[np.nan], 0.2 + rng.random(n - 1)]),
    }
    attrs: dict[str, Any] = {}
    if objective is not None:
        sign = -1.0 if objective == "J_prime" else 1.0
        m.update(
            heldout_acc=0.1 + 0.4 * (1 - np.exp(-5 * t)),
            test_acc=0.1 + sign * 0.05 * t + rng.normal(0, 0.01, n),
            batch_loss=np.concatenate([[np.nan], sign * 0.8 * t[1:]]),
            split_coef=np.full(n, -1.0 if objective == "J_prime" else 0.0),
            gradnorm_first_weight=np.concatenate([[np.nan], 0.1 * np.exp(-3 * t[1:]) + 1e-3]),
            gradnorm_first_weight_mean=np.concatenate([[np.nan], 0.12 * np.exp(-3 * t[1:]) + 1e-3]),
        )
        m["gap"] = m["train_acc"] - m["test_acc"]
        attrs["objective"] = objective
        attrs["first_weight"] = "fc1.weight"
    ds = xr.Dataset({k: ("step", np.asarray(v, dtype=float)) for k, v in m.items()}, coords={"step": steps})
    path.parent.mkdir(parents=True, exist_ok=True)
    ds.to_netcdf(path, group="metrics", engine="h5netcdf", mode="w")
    cfg = {"data": {"name": data}, "training": {"seed": seed, "objective": {"name": objective, "k": 0.11} if objective else None},
           "recording": {"schedule": {"kind": kind}}}  # fmt: skip
    attrs.update(
        gendyn_format=store.FORMAT, status="complete", experiment=experiment, run=run, config=json.dumps(cfg),
        record_schedule=_schedule(kind), steps_per_epoch=SPE, n_classes=10, seed=seed, layers='["relu1", "relu2"]',
        record_steps=steps, diverged=0,
    )  # fmt: skip
    with h5py.File(path, "a") as f:
        for k, v in attrs.items():
            f.attrs[k] = v
    return path


def _write(ds: xr.Dataset, path: Path, measure: str) -> Path:
    from gendyn import store

    path.parent.mkdir(parents=True, exist_ok=True)
    return store.write_netcdf(ds, path, measure=measure)


def paths_ds(rng: np.random.Generator, experiment: str, run: str, *, records: int = 6) -> xr.Dataset:
    """``analysis/paths/{run}.nc`` in small: 3 layers, 40 images, 20 neighbour candidates."""
    layers = ["relu1", "relu2", "relu3"]
    nr, nl, nb, ni, no, nc = records, 3, 100, 40, 30, 20
    edges = np.linspace(0, 1, nb + 1)
    hist = np.zeros((nr, nl, nb), dtype=np.int64)
    act = np.zeros_like(hist)
    for r in range(nr):
        for k in range(nl):
            hist[r, k] = np.histogram(rng.beta(2 + 3 * r, 2, 500), edges)[0]
            act[r, k] = np.histogram(rng.beta(3 + 3 * r, 2, 500), edges)[0]
    mean = np.array([[0.5 + 0.08 * r] * nl for r in range(nr)])
    dist = rng.uniform(2, 14, (no, no))
    dist = (dist + dist.T) / 2
    np.fill_diagonal(dist, 0)
    ov = (60 - 3 * dist + rng.normal(0, 5, (no, no))).round()
    ov = np.stack([np.stack([(ov + ov.T) / 2] * nl)])
    dbin = np.linspace(2, 14, 11)
    med = np.stack([[60 - 3 * (dbin[:-1] + 0.6)] * nl])
    ranks = np.stack([[[rng.permutation(nc) for _ in range(3)] for _ in range(nl)] for _ in range(nr)])
    epochs = np.arange(1, nr + 1, dtype=float)
    return xr.Dataset(
        {
            "cross_path_hist": (("record", "layer", "bin"), hist),
            "cross_path_mean": (("record", "layer"), mean),
            "cross_path_within": (("record", "layer"), mean + 0.05),
            "cross_path_between": (("record", "layer"), mean - 0.02),
            "act_cross_hist": (("record", "layer", "act_bin"), act),
            "act_cross_mean": (("record", "layer"), mean + 0.1),
            "self_sim": (("record", "layer", "image"), np.clip(rng.beta(8, 2, (nr, nl, ni)) + 0.02 * epochs[:, None, None], 0, 1)),
            "self_sim_mean": (("record", "layer"), mean + 0.2),
            "overlap": (("overlap_record", "layer", "overlap_image_i", "overlap_image_j"), ov),
            "input_dist": (("overlap_image_i", "overlap_image_j"), dist),
            "overlap_binned_median": (("overlap_record", "layer", "dist_bin"), med),
            "overlap_binned_q25": (("overlap_record", "layer", "dist_bin"), med - 3),
            "overlap_binned_q75": (("overlap_record", "layer", "dist_bin"), med + 3),
            "overlap_pearson": (("overlap_record", "layer"), np.full((1, nl), -0.6)),
            "overlap_spearman": (("overlap_record", "layer"), np.full((1, nl), -0.55)),
            "nn_rank": (("record", "layer", "baseline", "candidate"), ranks),
            "nn_rank_act": (("record", "layer", "baseline", "candidate"), ranks[::-1].copy()),
            "nn_candidate_image": (("baseline", "candidate"), np.stack([np.arange(nc) + 20 * b for b in range(3)])),
        },
        coords={
            "record": np.arange(1, nr + 1), "step": ("record", (epochs * SPE).astype(int)), "epoch": ("record", epochs),
            "layer": layers, "layer_index": ("layer", [1, 2, 3]), "n_units": ("layer", [32, 32, 32]),
            "bin": np.arange(nb), "bin_lo": ("bin", edges[:-1]), "bin_hi": ("bin", edges[1:]),
            "act_bin": np.arange(nb), "act_bin_lo": ("act_bin", edges[:-1]), "act_bin_hi": ("act_bin", edges[1:]),
            "image": np.arange(ni), "overlap_record": [nr], "overlap_step": ("overlap_record", [nr * SPE]),
            "overlap_epoch": ("overlap_record", [float(nr)]), "overlap_image_i": np.arange(no),
            "overlap_image_j": np.arange(no), "dist_bin": np.arange(10), "dist_bin_lo": ("dist_bin", dbin[:-1]),
            "dist_bin_hi": ("dist_bin", dbin[1:]), "baseline": [5, 10, 15], "candidate": np.arange(nc),
        },  # fmt: skip
        attrs={"experiment": experiment, "run": run, "norm": "l2", "act": "post", "split": "train", "overlap": "count",
               "space": "model", "top_k": 6, "decay_epochs": "[3]", "model_layers": json.dumps(layers)},  # fmt: skip
    )


def paths_summary(runs: list[str], experiment: str, rng: np.random.Generator) -> xr.Dataset:
    n = len(runs)
    return xr.Dataset(
        {"R": ("run", rng.uniform(0.75, 0.9, n)), "early": ("run", rng.uniform(0.6, 0.7, n)),
         "mid": ("run", rng.uniform(0.8, 0.9, n)), "test_acc": ("run", rng.uniform(0.8, 0.95, n)),
         "train_acc": ("run", rng.uniform(0.9, 1.0, n))},
        coords={"run": ("run", np.array(runs, dtype=object)), "experiment": ("run", np.array([experiment] * n, dtype=object)),
                "model": ("run", np.array(["mlp"] * n, dtype=object)), "data": ("run", np.array(["mnist5k"] * n, dtype=object)),
                "layer": ("run", np.array(["relu2"] * n, dtype=object)), "layer_index": ("run", np.full(n, 2))},
    )  # fmt: skip


def lc_ds(rng: np.random.Generator, experiment: str, run: str, steps: np.ndarray) -> xr.Dataset:
    nr, npt = len(steps), 30
    base = 10 + 5 * np.cos(np.log1p(steps) / 2)
    lc = rng.poisson(np.broadcast_to(base[:, None, None, None, None], (nr, 3, 2, npt, 2))).astype(np.float32)
    lc[:, :, 0] //= 5
    t = np.linspace(0, 1, nr)
    return xr.Dataset(
        {
            "lc": (("record", "split", "radius", "point", "layer"), lc),
            "n_points": ("split", [npt, npt, npt]),
            "train_acc": ("record", 0.1 + 0.9 * t), "test_acc": ("record", 0.1 + 0.8 * t),
            "train_loss": ("record", 0.1 * np.exp(-3 * t)), "test_loss": ("record", 0.1 * np.exp(-2 * t)),
            "lc_mean": (("record", "split", "radius"), lc.sum(-1).mean(-1)),
            "lc_std": (("record", "split", "radius"), lc.sum(-1).std(-1)),
        },
        coords={"record": np.arange(nr), "step": ("record", steps), "epoch": ("record", steps / SPE),
                "split": ["train", "test", "random"], "radius": [0.1, 1.0], "point": np.arange(npt),
                "layer": ["relu1", "relu2"], "n_units": ("layer", [64, 64])},
        attrs={"experiment": experiment, "run": run, "n_directions": 10},
    )  # fmt: skip


def regions_ds(experiment: str, run: str) -> xr.Dataset:
    dom = np.array([[-0.2, -0.2], [1.4, -0.2], [-0.2, 1.4]])
    polys, cls, rec = [], [], []
    for r in range(4):  # each record: the triangle cut into 2 + r slabs
        cuts = np.linspace(-0.2, 1.4, 3 + r)
        for k in range(len(cuts) - 1):
            a, b = cuts[k], cuts[k + 1]
            polys.append(np.array([[a, -0.2], [b, -0.2], [b, 1.2 - b], [a, 1.2 - a]]))
            cls.append((k + r) % 3)
            rec.append(r)
    sizes = [len(p) for p in polys]
    starts = np.concatenate([[0], np.cumsum(sizes)[:-1]])
    verts = np.concatenate(polys)
    segs = np.array([[[0.5, -0.2], [0.5, 0.7]], [[0.2, -0.2], [0.2, 1.0]]] * 4)
    return xr.Dataset(
        {"n_regions": ("record", [2, 3, 4, 5]), "region_record": ("region", rec), "region_start": ("region", starts),
         "region_size": ("region", sizes), "region_class": ("region", cls), "vertex_uv": (("vertex", "uv"), verts),
         "segment_uv": (("segment", "end", "uv"), segs), "segment_record": ("segment", np.repeat(np.arange(4), 2)),
         "domain_uv": (("corner", "uv"), dom), "anchor_uv": (("anchor", "uv"), np.array([[0, 0], [1, 0], [0, 1.0]])),
         "anchor_label": ("anchor", [1, 3, 6]),
         "local_n_regions": (("local_record", "local_point"), np.array([[40, 50], [10, 12], [20, 25], [45, 48]])),
         "local_lc": (("local_record", "local_point"), np.array([[15, 16], [5, 6], [9, 10], [14, 15]]))},
        coords={"record": np.arange(4), "step": ("record", [0, 10, 100, 1000]), "local_record": np.arange(4),
                "local_step": ("local_record", [0, 10, 100, 1000]), "local_point": [0, 1]},
        attrs={"experiment": experiment, "run": run, "local_radius": 1.0},
    )  # fmt: skip


def robust_ds() -> xr.Dataset:
    return xr.Dataset({"robust_acc": ("record", [0.0, 0.1, 0.3, 0.2]), "clean_acc": ("record", [0.1, 0.6, 0.9, 0.9])},
                      coords={"record": np.arange(4), "step": ("record", [0, 10, 100, 1000])},
                      attrs={"eps": 0.1, "steps": 10})  # fmt: skip


def elasticity_ds(rng: np.random.Generator, experiment: str, run: str) -> xr.Dataset:
    nr, nc = 4, 3
    m = rng.uniform(0.3, 0.7, (nr, nc, nc)) + 0.2 * np.eye(nc)
    return xr.Dataset(
        {"within": ("record", [0.55, 0.6, 0.7, 0.7]), "between": ("record", [0.5, 0.52, 0.55, 0.52]),
         "ratio": ("record", [1.1, 1.15, 1.27, 1.35]), "ratio_median": ("record", [1.1, 1.16, 1.3, 1.36]),
         "class_mean": (("record", "class_i", "class_j"), m), "class_median": (("record", "class_i", "class_j"), m * 0.9),
         "cluster_accuracy": ("record", [0.5, 0.55, 0.6, 0.66]), "cluster_ari": ("record", [0.3, 0.35, 0.4, 0.5]),
         "baseline_accuracy": ("baseline", [0.56, 0.56]), "baseline_ari": ("baseline", [0.33, 0.33])},
        coords={"record": np.arange(nr), "step": ("record", [0, 10, 40, 80]), "epoch": ("record", [0.0, 1.0, 4.0, 8.0]),
                "class_i": np.arange(nc), "class_j": np.arange(nc), "baseline": ["pixels", "pca"]},
        attrs={"experiment": experiment, "run": run, "form": "exact", "lr": 0.01, "cluster_method": "spectral",
               "settings": json.dumps({"cluster": {"pca_dims": 50}})},
    )  # fmt: skip


def histograms_ds(rng: np.random.Generator, experiment: str, run: str) -> xr.Dataset:
    nb = 50
    edges = np.linspace(0, 1, nb + 1)
    hist = np.stack([[np.histogram(rng.beta(2 + 2 * (i == j), 3, 400), edges)[0] for j in range(3)] for i in range(3)])
    return xr.Dataset(
        {"hist": (("class_i", "class_j", "bin"), hist), "overflow": (("class_i", "class_j"), rng.integers(0, 200, (3, 3)))},
        coords={"class_i": [0, 4, 9], "class_name_i": ("class_i", ["digit 0", "digit 4", "digit 9"]),
                "class_j": [0, 4, 9], "class_name_j": ("class_j", ["digit 0", "digit 4", "digit 9"]),
                "bin": np.arange(nb), "bin_lo": ("bin", edges[:-1]), "bin_hi": ("bin", edges[1:])},
        attrs={"experiment": experiment, "run": run, "n_per_class": 40, "form": "exact", "lr": 0.01},
    )  # fmt: skip


def neurashed_files(root: Path, rng: np.random.Generator) -> dict[str, Path]:
    from gendyn.neurashed.graphs import builtin_graph

    nodes3 = [n for lev in builtin_graph("fig3").levels for n in lev]
    nr, ns = 11, 2
    steps = np.arange(nr) * 20
    share = np.stack([[0.3 + 0.7 * (1 - np.exp(-np.arange(nr) / 3)), np.full(nr, 0.3)] for _ in range(ns)])
    ir = xr.Dataset(
        {"lam": (("seed", "batch", "record", "node"), rng.uniform(0, 1, (ns, 2, nr, len(nodes3)))),
         "shared_share": (("seed", "batch", "record"), share + rng.normal(0, 0.01, share.shape)),
         "participation": (("seed", "batch", "record"), 5 - 3 * share)},
        coords={"seed": np.arange(ns), "batch": ["small", "large"], "record": np.arange(nr), "step": ("record", steps),
                "node": nodes3}, attrs={"a": 1.02, "b": 0.995},
    )  # fmt: skip
    x = np.linspace(0, 1, nr)
    mi_x = np.stack([np.stack([3 - 2 * x, 2 * np.sin(np.pi * x) + x * (1 - x) + x], axis=-1) for _ in range(ns)])
    mi_y = np.stack([np.stack([np.ones(nr), np.minimum(1, 2 * x)], axis=-1) for _ in range(ns)])
    ib = xr.Dataset({"mi_x": (("seed", "record", "level"), mi_x), "mi_y": (("seed", "record", "level"), mi_y)},
                    coords={"seed": np.arange(ns), "record": np.arange(nr), "step": ("record", steps * 10), "level": [1, 2]},
                    attrs={"sigma": 0.02})  # fmt: skip
    le = xr.Dataset({"le": (("seed", "probe"), np.array([[1.0, 0.9, 0.05, 0.0], [1.0, 0.8, 0.02, 0.0]]))},
                    coords={"seed": np.arange(ns), "probe": ["1a", "1b", "2", "3"]}, attrs={"update": "1a", "steps": 500})  # fmt: skip
    return {"implicit_regularization": _write(ir, root / "implicit_regularization.nc", "neurashed"),
            "information_bottleneck": _write(ib, root / "information_bottleneck.nc", "neurashed"),
            "local_elasticity": _write(le, root / "local_elasticity.nc", "neurashed")}  # fmt: skip


def memorization_summary(table: pd.DataFrame) -> xr.Dataset:
    n = len(table)
    t = np.array([5.0 if o == "J" else np.nan for o in table["training.objective.name"]])
    c = np.where(np.isnan(t), float(R_EPOCHS), np.nan)
    return xr.Dataset(
        {"epochs_to_threshold": ("run", t), "censored_at": ("run", c)},
        coords={"run": table["run"].tolist(), "training.objective.name": ("run", table["training.objective.name"].tolist()),
                "training.seed": ("run", table["training.seed"].tolist()), "objective": ("run", table["training.objective.name"].tolist())},
        attrs={"threshold_metric": "train_acc", "tau": 0.9, "patience": 1, "interpolate": 0, "experiment": "mem"},
    )  # fmt: skip


@pytest.fixture(scope="module")
def results(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """A small results tree: a swept experiment with every per-run analysis, an LC experiment on a
    log-spaced schedule, two memorization experiments (one compared with the other) and a
    neurashed study."""
    root = tmp_path_factory.mktemp("results")
    rng = np.random.default_rng(0)
    out: dict[str, Any] = {"root": root}
    # `sweep`: model.width x data.train_subset x training.seed, paths + LC + LE on every run
    rows = [{"run": f"w{w}_n{n}_s{s}", "model.width": w, "data.train_subset": n, "training.seed": s}
            for w in (32, 128) for n in (1000, 4000) for s in (0, 1)]  # fmt: skip
    table = pd.DataFrame(rows)
    exp = root / "sweep"
    exp.mkdir()
    table.to_csv(exp / "runs.csv", index=False)
    runs, paths, lcs, les = {}, {}, {}, {}
    for r in table["run"]:
        runs[r] = write_run(exp / "runs" / r / "run.h5", "sweep", r, rng=rng)
        paths[r] = _write(paths_ds(rng, "sweep", r), exp / "analysis" / "paths" / f"{r}.nc", "paths")
        lcs[r] = _write(lc_ds(rng, "sweep", r, np.arange(0, (R_EPOCHS + 1) * SPE, SPE)), exp / "analysis" / "lc" / f"{r}.nc", "lc")
        les[r] = _write(elasticity_ds(rng, "sweep", r), exp / "analysis" / "elasticity" / f"{r}.nc", "elasticity")
    summary = _write(paths_summary(list(table["run"]), "sweep", rng), exp / "analysis" / "paths" / "summary.nc", "paths")
    hist = _write(histograms_ds(rng, "sweep", "w32_n1000_s0"), exp / "analysis" / "elasticity" / "histograms" / "w32_n1000_s0.nc", "elasticity")
    out["sweep"] = {"dir": exp, "table": exp / "runs.csv", "runs": runs, "paths": paths, "lc": lcs, "elasticity": les,
                    "summary": summary, "histograms": hist}  # fmt: skip
    # `lcx`: two runs on the paper's log-spaced schedule, regions and robustness
    exp = root / "lcx"
    exp.mkdir()
    pd.DataFrame([{"run": "a1", "model.init_scale": 1}, {"run": "a8", "model.init_scale": 8}]).to_csv(exp / "runs.csv", index=False)
    lrun, llc = {}, {}
    for r in ("a1", "a8"):
        lrun[r] = write_run(exp / "runs" / r / "run.h5", "lcx", r, rng=rng, kind="lc")
        steps = xr.open_dataset(lrun[r], group="metrics", engine="h5netcdf")["step"].values
        llc[r] = _write(lc_ds(rng, "lcx", r, steps), exp / "analysis" / "lc" / f"{r}.nc", "lc")
    out["lcx"] = {"dir": exp, "table": exp / "runs.csv", "runs": lrun, "lc": llc,
                  "regions": _write(regions_ds("lcx", "a1"), exp / "analysis" / "regions" / "a1.nc", "lc"),
                  "robust": _write(robust_ds(), exp / "analysis" / "robust" / "a1.nc", "lc")}  # fmt: skip
    # `mem`: J, J', J0 x 2 seeds; `noise`: J0 on noise, compared with mem's J0 runs
    mrows = [{"run": f"{o}_s{s}", "training.objective.name": o, "training.seed": s} for o in ("J", "J_prime", "J0") for s in (0, 1)]
    mtable = pd.DataFrame(mrows)
    exp = root / "mem"
    exp.mkdir()
    mtable.to_csv(exp / "runs.csv", index=False)
    mruns = {r["run"]: write_run(exp / "runs" / r["run"] / "run.h5", "mem", r["run"], rng=rng,
                                 objective=r["training.objective.name"], seed=r["training.seed"]) for r in mrows}  # fmt: skip
    msum = _write(memorization_summary(mtable), exp / "analysis" / "memorization" / "summary.nc", "memorization")
    ntable = pd.DataFrame([{"run": f"s{s}", "training.seed": s} for s in (0, 1)])
    nexp = root / "noise"
    nexp.mkdir()
    ntable.to_csv(nexp / "runs.csv", index=False)
    nruns = {r: write_run(nexp / "runs" / r / "run.h5", "noise", r, rng=rng, objective="J0", data="gaussian_noise")
             for r in ntable["run"]}  # fmt: skip
    nsum = memorization_summary(ntable.assign(**{"training.objective.name": "J0"})).drop_vars("training.objective.name")
    nsum = _write(nsum, nexp / "analysis" / "memorization" / "summary.nc", "memorization")
    out["mem"] = {"table": exp / "runs.csv", "runs": mruns, "summary": msum}
    out["noise"] = {"table": nexp / "runs.csv", "runs": nruns, "summary": nsum}
    out["neurashed"] = neurashed_files(root / "neurashed", rng)
    return out


# --------------------------------------------------------------------------- the jobs, as the workflow builds them


def _job(figure_set: str, scope: str, inputs: dict[str, Any], settings: dict[str, Any] | None = None,
         experiment: str = "", run: str = "") -> Any:  # fmt: skip
    from gendyn.figures.jobs import FigureJob

    roles = {k: tuple(Path(p) for p in (v if isinstance(v, (list, tuple)) else [v])) for k, v in inputs.items()}
    view = {"dpi": 40, "x_axis": "auto", "log_x": "auto", "dashboard": True}
    return FigureJob(figure_set, scope, experiment=experiment, run=run, inputs=roles,
                     settings={"view": view, **(settings or {})})  # fmt: skip


def jobs(res: dict[str, Any]) -> list[tuple[str, Any]]:
    """(id, FigureJob) of every figure job of the synthetic tree."""
    sw, lx, mem, noise = res["sweep"], res["lcx"], res["mem"], res["noise"]
    r0 = "w32_n1000_s0"
    lc_fig = {"lc": {"figures": {"radius": 1.0, "sweep_radii": [0.1, 1.0]}}}
    out = [
        ("views run", _job("views", "run", {"run": sw["runs"][r0], "paths": sw["paths"][r0], "lc": sw["lc"][r0],
                                            "elasticity": sw["elasticity"][r0]}, lc_fig, "sweep", r0)),
        ("views run (memorization)", _job("views", "run", {"run": mem["runs"]["J_prime_s0"]}, {}, "mem", "J_prime_s0")),
        ("views run (log schedule)", _job("views", "run", {"run": lx["runs"]["a1"], "lc": lx["lc"]["a1"]}, lc_fig, "lcx", "a1")),
        ("views experiment", _job("views", "experiment", {"runs_table": sw["table"], "run": list(sw["runs"].values()),
                                                          "paths": list(sw["paths"].values()), "lc": list(sw["lc"].values()),
                                                          "elasticity": list(sw["elasticity"].values())}, lc_fig, "sweep")),
        ("views experiment (memorization)", _job("views", "experiment", {"runs_table": mem["table"], "run": list(mem["runs"].values())},
                                                 {}, "mem")),
        ("paths run", _job("paths", "run", {"paths": sw["paths"][r0]}, {}, "sweep", r0)),
        ("paths experiment", _job("paths", "experiment", {"summary": sw["summary"], "runs_table": sw["table"]}, {}, "sweep")),
        ("lc run", _job("lc", "run", {"lc": lx["lc"]["a1"], "run": lx["runs"]["a1"], "regions": lx["regions"],
                                      "robust": lx["robust"]}, lc_fig, "lcx", "a1")),
        ("lc run (epoch schedule)", _job("lc", "run", {"lc": sw["lc"][r0], "run": sw["runs"][r0]}, lc_fig, "sweep", r0)),
        ("lc experiment", _job("lc", "experiment", {"lc": list(lx["lc"].values()), "run": list(lx["runs"].values()),
                                                    "runs_table": lx["table"]}, lc_fig, "lcx")),
        ("lc experiment (seeds)", _job("lc", "experiment", {"lc": list(sw["lc"].values()), "runs_table": sw["table"]}, lc_fig, "sweep")),
        ("elasticity run", _job("elasticity", "run", {"elasticity": sw["elasticity"][r0], "histograms": sw["histograms"]}, {},
                                "sweep", r0)),
        ("elasticity experiment", _job("elasticity", "experiment", {"elasticity": list(sw["elasticity"].values())[:2]}, {}, "sweep")),
        ("memorization experiment", _job("memorization", "experiment",
                                         {"runs_table": mem["table"], "run": list(mem["runs"].values()), "summary": mem["summary"]},
                                         {"memorization": {"figures": ["curves", "threshold", "gradnorm", "gap", "basins"]}}, "mem")),
        ("memorization experiment (compared)", _job("memorization", "experiment",
                                                    {"runs_table": noise["table"], "run": list(noise["runs"].values()),
                                                     "summary": noise["summary"], "compare_run": list(mem["runs"].values())},
                                                    {"memorization": {"figures": ["curves", "threshold"]}}, "noise")),
        ("neurashed experiment", _job("neurashed", "experiment", res["neurashed"], {}, "study")),
    ]  # fmt: skip
    return out


def _module(figure_set: str) -> Any:
    from gendyn.figures.jobs import _module as module

    return module(figure_set)


@pytest.fixture(scope="module")
def drawn(results: dict[str, Any], tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """Every figure of every job: {(job id, figure name): (problems, png, pdf)}."""
    from gendyn.figures import save_figure

    out_root = tmp_path_factory.mktemp("figures")
    got: dict[tuple[str, str], Any] = {}
    for k, (jid, job) in enumerate(jobs(results)):
        for name, obj in _module(job.figure_set).draw(job):
            if not isinstance(obj, Figure):
                continue
            problems = figure_problems(obj)
            pdf, png = save_figure(obj, out_root / f"{k}" / name, dpi=40)
            got[(jid, name)] = (problems, png, pdf)
    return got


def test_every_registered_figure_type_is_drawn(drawn: dict[str, Any]) -> None:
    from gendyn import registry

    names = {(job.split()[0], name) for job, name in drawn}
    for m in [registry.figure_set("views"), *registry.measures()]:
        for info in m.figures:
            if info.name.endswith("*"):
                assert any(s == m.name and n.startswith(info.name[:-1]) for s, n in names), (m.name, info.name)
            else:
                assert (m.name, info.name) in names, f"{m.name}.{info.name} was not drawn"


def test_every_figure_reads_without_a_question(drawn: dict[str, Any]) -> None:
    bad = {f"{job}: {name}": problems for (job, name), (problems, _, _) in drawn.items() if problems}
    assert not bad, "\n".join(f"{k}: {v}" for k, v in bad.items())


def test_every_figure_is_written_as_pdf_and_png(drawn: dict[str, Any]) -> None:
    for (job, name), (_, png, pdf) in drawn.items():
        assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n", (job, name)
        assert pdf.read_bytes()[:5] == b"%PDF-", (job, name)


def test_seeds_are_pooled_not_coloured(results: dict[str, Any]) -> None:
    """Runs that differ only in their seed are one curve with a band, and no comparison by seed exists."""
    job = dict(jobs(results))["views experiment"]
    figs = dict(_module("views").draw(job))
    assert "compare_training.seed" not in figs
    fig = figs["compare_model.width"]
    acc = fig.axes[0]
    # 2 widths x 2 training-set sizes = 4 curves (not 8), each with a min-max band
    assert len([ln for ln in acc.get_lines() if len(ln.get_xdata()) > 2]) == 4
    assert len(acc.collections) == 4
    legend = [t.get_text() for leg in fig.legends + [a.get_legend() for a in fig.axes if a.get_legend()] for t in leg.get_texts()]
    assert any("2 seeds" in t and "min-max" in t for t in legend), legend
    for f in figs.values():
        plt.close(f)


# --------------------------------------------------------------------------- the checks can fail


def test_the_checks_catch_a_broken_figure() -> None:
    fig, (a, b, c) = plt.subplots(1, 3, figsize=(6, 2))
    a.plot([0, 1], [np.nan, np.nan], label="model.depth = 2")
    b.set_title("")  # nothing drawn at all
    c.plot([0, 1], [0, 1], label="ok")
    c.legend(loc="upper left", bbox_to_anchor=(2.5, 1.0))  # far outside the figure
    a.legend()
    a.set_ylabel("train_subset")
    problems = figure_problems(fig)
    plt.close(fig)
    joined = "\n".join(problems)
    assert "NaN everywhere" in joined
    assert "axes 1" in joined and "shows nothing" in joined
    assert "outside the figure" in joined
    assert "'model.depth = 2'" in joined and "'train_subset'" in joined


def test_a_good_figure_passes_the_checks() -> None:
    from gendyn.figures.style import legend_outside

    fig, ax = plt.subplots(figsize=(5, 3), constrained_layout=True)
    ax.plot([0, 1, 2], [1, 2, np.nan], label="depth 2")
    ax.set_xlabel("epoch")
    legend_outside(ax)
    assert figure_problems(fig) == []
    plt.close(fig)


# --------------------------------------------------------------------------- style rules


def test_style_rules() -> None:
    from gendyn.figures import style

    assert style.log_ok([1e-3, 1]) and not style.log_ok([1.6, 2.4]) and not style.log_ok([-0.7, 2.3, 100])
    assert style.marker_kw(5)["marker"] == "o" and style.marker_kw(200)["marker"] is None
    assert style.readable_key("model.init_scale") == "init. scale α"
    assert style.readable_key("data.some_new_key") == "some new key"
    assert style.readable_value("training.objective.name", "J_prime") == "J′"
    assert style.assignment_label({"model.depth": 2, "training.objective.name": "J0"}) == "depth 2, J⁰"
    colors = style.group_colors(["a", "b"])
    assert len(set(colors.values())) == 2 and "#F0E442" not in colors.values()  # no yellow on white
    seq = style.group_colors([1, 2, 3, 4])
    assert len(set(map(str, seq.values()))) == 4
    # the x axis: epochs for epoch-scheduled runs and when steps per epoch differ
    ep = {"record_schedule": '{"kind": "epoch"}', "steps_per_epoch": 10}
    assert style.x_axis_for({"x_axis": "auto"}, ep).epoch
    lg = {"record_schedule": '{"kind": "lc"}', "steps_per_epoch": 10}
    assert not style.x_axis_for({"x_axis": "auto"}, lg).epoch and style.x_axis_for({"log_x": "auto"}, lg).log
    assert style.x_axis_for({"x_axis": "auto"}, [lg, {**lg, "steps_per_epoch": 40}]).epoch
