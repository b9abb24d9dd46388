"""Figures of local elasticity (paper 002): Fig. 5 histograms and the project's LE-over-training views.

Every figure function takes analysis datasets written by the stages of
:mod:`gendyn.elasticity.stage` and returns a ``Figure``; nothing changes matplotlib's global
state. :func:`draw` is the workflow's figure job (every figure its inputs allow);
:func:`dashboard_panel` and :func:`compare_rows` are LE's part of the shared run views.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import gendyn.figures.style  # noqa: F401 - headless backend first
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import xarray as xr
from matplotlib.figure import Figure

from gendyn.figures.style import BETWEEN_COLOR, WITHIN_COLOR

__all__ = [
    "le_over_training",
    "class_matrices",
    "clustering",
    "clustering_table",
    "class_histograms",
    "draw",
    "dashboard_panel",
    "compare_rows",
]

logger = logging.getLogger(__name__)


def _x(ds: xr.Dataset, x_axis: str, log_x: bool) -> tuple[np.ndarray, str]:
    if x_axis == "epoch":
        x = ds["epoch"].values.astype(float)
        label = "epoch"
        if log_x:
            pos = x[x > 0]
            x = x + (pos.min() / 2 if pos.size else 1.0)
            label += " (log; init shifted)"
    else:
        x = ds["step"].values.astype(float)
        label = "optimisation step"
        if log_x:
            x = x + 1
            label += " + 1"
    return x, label


def _form_note(ds: xr.Dataset) -> str:
    form = ds.attrs.get("form", "exact")
    note = f"lr = {ds.attrs.get('lr')}, {form}"
    if form == "kernel":
        note += " (first-order NTK approximation)"
    return note


def le_over_training(
    dss: Sequence[xr.Dataset], labels: Sequence[str], *, x_axis: str = "epoch", log_x: bool = False, title: str = ""
) -> Figure:
    """Within- and between-class LE and their ratio R over training (project extension, after He & Su).

    Left: pooled mean LE over same-class (solid) and different-class (dashed) pairs of tracked
    train images; right: R = within / between for means (solid) and medians (dotted). One
    colour per run.
    """
    fig, (ax_l, ax_r) = plt.subplots(1, 2, figsize=(10.0, 3.8), constrained_layout=True)
    colors = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    xlabel = ""
    for k, (ds, lab) in enumerate(zip(dss, labels)):
        c = colors[k % len(colors)]
        x, xlabel = _x(ds, x_axis, log_x)
        ax_l.plot(x, ds["within"].values, color=c, marker="o", ms=3, label=f"{lab}: within class")
        ax_l.plot(x, ds["between"].values, color=c, marker="s", ms=3, ls="--", label=f"{lab}: between classes")
        ax_r.plot(x, ds["ratio"].values, color=c, marker="o", ms=3, label=f"{lab}: mean")
        ax_r.plot(x, ds["ratio_median"].values, color=c, ls=":", marker=".", label=f"{lab}: median")
    ax_r.axhline(1.0, color="0.4", lw=0.8)
    for ax in (ax_l, ax_r):
        ax.set_xlabel(xlabel)
        if log_x:
            ax.set_xscale("log")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7, frameon=False)
    ax_l.set_ylabel("mean LE(x, x') over pairs")
    ax_r.set_ylabel("R = within / between")
    note = _form_note(dss[0]) if dss else ""
    fig.suptitle(f"{title}  local elasticity over training ({note})".strip(), fontsize=10)
    return fig


def class_matrices(ds: xr.Dataset, *, stat: str = "median", title: str = "") -> Figure:
    """Class-pair LE heatmaps (update class x probe class) at the first and the last record."""
    var = ds[f"class_{stat}"]
    recs = [0, ds.sizes["record"] - 1] if ds.sizes["record"] > 1 else [0]
    vals = var.values[recs]
    finite = vals[np.isfinite(vals)]
    vmax = float(finite.max()) if finite.size else 1.0
    fig, axes = plt.subplots(1, len(recs), figsize=(4.4 * len(recs) + 0.8, 4.0), constrained_layout=True, squeeze=False)
    im = None
    for ax, r in zip(axes[0], recs):
        im = ax.imshow(var.values[r], cmap="viridis", vmin=0.0, vmax=vmax, origin="upper")
        ci, cj = ds["class_i"].values, ds["class_j"].values
        ax.set_xticks(range(len(cj)), [str(c) for c in cj], fontsize=7)
        ax.set_yticks(range(len(ci)), [str(c) for c in ci], fontsize=7)
        ax.set_xlabel("probe class (class_j)")
        ax.set_ylabel("update class (class_i)")
        ax.set_title(f"step {int(ds['step'].values[r])} (epoch {float(ds['epoch'].values[r]):.3g})", fontsize=9)
    if im is not None:
        fig.colorbar(im, ax=axes[0].tolist(), label=f"{stat} LE over pairs")
    fig.suptitle(f"{title}  class-pair {stat} of LE ({_form_note(ds)})".strip(), fontsize=10)
    return fig


def clustering(dss: Sequence[xr.Dataset], labels: Sequence[str], *, x_axis: str = "epoch", title: str = "") -> Figure:
    """LE-clustering accuracy and ARI over training, with K-means baselines on pixels and PCA (dashed)."""
    fig, (ax_a, ax_r) = plt.subplots(1, 2, figsize=(10.0, 3.6), constrained_layout=True)
    colors = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    xlabel = ""
    for k, (ds, lab) in enumerate(zip(dss, labels)):
        if "cluster_accuracy" not in ds:
            continue
        c = colors[k % len(colors)]
        x, xlabel = _x(ds, x_axis, False)
        ax_a.plot(x, ds["cluster_accuracy"].values, color=c, marker="o", ms=3, label=f"{lab}: LE {ds.attrs.get('cluster_method', '')}")
        ax_r.plot(x, ds["cluster_ari"].values, color=c, marker="o", ms=3, label=lab)
        if "baseline" in ds.coords:
            for b, ls in zip(ds["baseline"].values, ("--", ":")):
                ax_a.axhline(float(ds["baseline_accuracy"].sel(baseline=b)), color=c, ls=ls, lw=0.9, label=f"{lab}: K-means {b}")
                ax_r.axhline(float(ds["baseline_ari"].sel(baseline=b)), color=c, ls=ls, lw=0.9)
    ax_a.set_ylabel("clustering accuracy (Hungarian, fraction)")
    ax_r.set_ylabel("adjusted Rand index")
    for ax in (ax_a, ax_r):
        ax.set_xlabel(xlabel)
        ax.grid(alpha=0.3)
    ax_a.set_ylim(0, 1.02)
    ax_a.legend(fontsize=7, frameon=False)
    fig.suptitle(f"{title}  LE clustering of tracked train images".strip(), fontsize=10)
    return fig


def clustering_table(dss: Sequence[xr.Dataset], labels: Sequence[str]) -> pd.DataFrame:
    """The numbers of :func:`clustering`: one row per run and record, baselines as columns."""
    rows = []
    for ds, lab in zip(dss, labels):
        if "cluster_accuracy" not in ds:
            continue
        base = {}
        if "baseline" in ds.coords:
            for b in ds["baseline"].values:
                base[f"kmeans_{b}_accuracy"] = float(ds["baseline_accuracy"].sel(baseline=b))
                base[f"kmeans_{b}_ari"] = float(ds["baseline_ari"].sel(baseline=b))
        for r in range(ds.sizes["record"]):
            rows.append({"run": lab, "step": int(ds["step"].values[r]), "epoch": float(ds["epoch"].values[r]),
                         "le_accuracy": float(ds["cluster_accuracy"].values[r]), "le_ari": float(ds["cluster_ari"].values[r]),
                         **base})  # fmt: skip
    return pd.DataFrame(rows)


def class_histograms(ds: xr.Dataset, *, title: str = "") -> Figure:
    """Paper Fig. 5: one panel per update class, LE histograms of the probe classes on [0, 1].

    Counts per bin of LE(x, x') over pairs with x of the panel's class (same image excluded);
    pairs with LE > 1 are given in the legend as overflow.
    """
    ci = list(ds["class_i"].values)
    names = [str(n) for n in ds["class_name_i"].values] if "class_name_i" in ds.coords else [str(c) for c in ci]
    lo, hi = ds["bin_lo"].values, ds["bin_hi"].values
    edges = np.append(lo, hi[-1])
    fig, axes = plt.subplots(1, len(ci), figsize=(4.2 * len(ci), 3.6), constrained_layout=True, squeeze=False, sharey=True)
    colors = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    for a, ax in enumerate(axes[0]):
        for b, name in enumerate(names):
            counts = ds["hist"].values[a, b]
            over = int(ds["overflow"].values[a, b])
            c = colors[b % len(colors)]
            ax.stairs(counts, edges, color=c, fill=True, alpha=0.35)
            ax.stairs(counts, edges, color=c, lw=1.2, label=f"{name}" + (f" ({over} > 1)" if over else ""))
        ax.set_xlim(0, 1)
        ax.set_xlabel("LE(x, x')")
        ax.set_title(f"Updated with class {names[a]}", fontsize=9)
        ax.legend(fontsize=8, frameon=False, title="probe class", title_fontsize=8)
        ax.grid(alpha=0.3)
    axes[0][0].set_ylabel("number of pairs")
    n = int(ds.attrs.get("n_per_class", 0))
    fig.suptitle(f"{title}  LE histograms ({n} images per class, {_form_note(ds)})".strip(), fontsize=10)
    return fig


# --------------------------------------------------------------------------- figure job and shared views


def _title(job: Any, ds: xr.Dataset, fallback_run: str = "") -> str:
    """``experiment / run`` of a run-scope figure (the job's names, else the dataset's)."""
    exp = job.experiment or str(ds.attrs.get("experiment", ""))
    run = job.run or str(ds.attrs.get("run", "")) or fallback_run
    return f"{exp} / {run}"


def draw(job: Any) -> Iterator[tuple[str, Figure | pd.DataFrame]]:
    """Every LE figure a figure job's inputs allow (a :class:`gendyn.figures.jobs.FigureJob`).

    Run scope: ``classes`` (input ``elasticity``: ``analysis/elasticity/{run}.nc``) and
    ``histograms`` (input ``histograms``: ``analysis/elasticity/histograms/{run}.nc``; the only
    input of an experiment with pretrained weights, run ``pretrained``). Experiment scope
    (input ``elasticity``: every run's file, in run order, labelled by the file stem = run id):
    ``training`` and, when the runs carry clustering results, ``clustering`` with its numbers
    as the table ``clustering`` (``clustering.csv``).
    """
    f = job.measure_settings("elasticity")["figures"]
    if job.scope == "experiment":
        paths = job.many("elasticity")
        dss = [job.open(p) for p in paths]
        labels = [Path(p).stem for p in paths]
        yield "training", le_over_training(dss, labels, x_axis=f["x_axis"], log_x=bool(f["log_x"]), title=job.experiment)
        if any("cluster_accuracy" in ds for ds in dss):
            yield "clustering", clustering(dss, labels, x_axis=f["x_axis"], title=job.experiment)
            yield "clustering", clustering_table(dss, labels)
        return
    if job.has("elasticity"):
        ds = job.open(job.one("elasticity"))
        yield "classes", class_matrices(ds, stat=f["matrix_stat"], title=_title(job, ds))
    if job.has("histograms"):
        ds = job.open(job.one("histograms"))
        yield "histograms", class_histograms(ds, title=_title(job, ds, "pretrained" if ds.attrs.get("pretrained") else ""))


def dashboard_panel(ax: plt.Axes, ds: xr.Dataset, settings: Mapping[str, Any], x_offset: float) -> None:
    """LE's panel of the run dashboard: mean LE over same-class and different-class pairs.

    ``ds`` is ``analysis/elasticity/{run}.nc``; ``x_offset`` is added to the steps (1 on a log
    axis). ``settings`` (the resolved ``analyses.elasticity``) choose nothing here.
    """
    x = np.asarray(ds["step"].values, dtype=float) + x_offset
    for name, color, label in (("within", WITHIN_COLOR, "LE same class"), ("between", BETWEEN_COLOR, "LE different class")):
        if name in ds:
            ax.plot(x, np.asarray(ds[name].values, dtype=float), color=color, marker="o", ms=2, lw=1, label=label)
    ax.axhline(0, color="0.6", lw=0.6)
    ax.set_ylabel("local elasticity")


def compare_rows(ds: xr.Dataset, settings: Mapping[str, Any]) -> dict[str, xr.DataArray]:
    """LE's rows of the sweep comparison: mean LE over same-class and different-class pairs (record, with ``step``)."""
    rows = {"LE, same class": "within", "LE, different class": "between"}
    return {label: ds[name] for label, name in rows.items() if name in ds}
