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

from gendyn.figures.style import (
    BETWEEN_COLOR,
    GROUP_PALETTE,
    NEUTRAL_COLOR,
    WITHIN_COLOR,
    XAxis,
    figure_legend,
    legend_outside,
    marker_kw,
)

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
    note = f"step size η = {ds.attrs.get('lr')}, {form} LE"
    if form == "kernel":
        note += " (first-order NTK approximation)"
    return note


def _pca_dims(ds: xr.Dataset) -> Any:
    """Dimensions of the PCA baseline (from the analysis' settings attribute)."""
    import json

    try:
        return json.loads(ds.attrs.get("settings", "{}"))["cluster"]["pca_dims"]
    except (KeyError, TypeError, ValueError):
        return "?"


def _run_colors(labels: Sequence[str]) -> list[str]:
    """One colour per run; a single run takes the neutral colour (colour encodes nothing then)."""
    if len(labels) == 1:
        return [NEUTRAL_COLOR]
    return [GROUP_PALETTE[k % len(GROUP_PALETTE)] for k in range(len(labels))]


def le_over_training(
    dss: Sequence[xr.Dataset], labels: Sequence[str], *, x_axis: str = "epoch", log_x: bool = False, title: str = ""
) -> Figure:
    """Within- and between-class LE and their ratio R over training (project extension, after He & Su).

    Left: pooled mean LE over same-class (orange) and different-class (sky blue) pairs of
    tracked train images, one line style per run; right: R = within / between for means (solid)
    and medians (dotted), one colour per run.
    """
    from matplotlib.lines import Line2D

    fig, (ax_l, ax_r) = plt.subplots(1, 2, figsize=(11.0, 3.8), constrained_layout=True)
    styles = ("-", "--", ":", "-.")
    colors = _run_colors(labels)
    xlabel = ""
    for k, (ds, lab) in enumerate(zip(dss, labels)):
        x, xlabel = _x(ds, x_axis, log_x)
        mk = marker_kw(len(x))
        ls = styles[k % len(styles)]
        ax_l.plot(x, ds["within"].values, color=WITHIN_COLOR, ls=ls, **mk)
        ax_l.plot(x, ds["between"].values, color=BETWEEN_COLOR, ls=ls, **mk)
        ax_r.plot(x, ds["ratio"].values, color=colors[k], ls="-", **mk)
        ax_r.plot(x, ds["ratio_median"].values, color=colors[k], ls=":", **marker_kw(len(x), marker="s"))
    ax_r.axhline(1.0, color="0.4", lw=0.8)
    for ax in (ax_l, ax_r):
        ax.set_xlabel(xlabel)
        if log_x:
            ax.set_xscale("log")
        ax.grid(alpha=0.3)
    ax_l.set_ylabel("mean LE(x, x') over pairs")
    ax_r.set_ylabel("R = within / between")
    left = [Line2D([], [], color=WITHIN_COLOR, lw=1.5), Line2D([], [], color=BETWEEN_COLOR, lw=1.5)]
    left_l = ["same class (within)", "different classes (between)"]
    if len(labels) > 1:
        left += [Line2D([], [], color="0.3", ls=styles[k % len(styles)]) for k in range(len(labels))]
        left_l += [f"run {lab}" for lab in labels]
    legend_outside(ax_l, left, left_l)
    right = [Line2D([], [], color="0.3", ls="-", marker="o", ms=3), Line2D([], [], color="0.3", ls=":", marker="s", ms=3)]
    right_l = ["R of the means", "R of the medians"]
    if len(labels) > 1:
        right += [Line2D([], [], color=c, lw=2) for c in colors]
        right_l += [f"run {lab}" for lab in labels]
    legend_outside(ax_r, right, right_l)
    note = _form_note(dss[0]) if dss else ""
    fig.suptitle(f"{title}: local elasticity over training ({note})".strip(": "), fontsize=10)
    return fig


def relative_to_margins(m: np.ndarray) -> np.ndarray:
    """``m_ij * mean(m) / (rowmean_i * colmean_j)`` of a (C, C) matrix (NaN-aware): 1 where an entry
    is what its row and column means predict, > 1 above it."""
    m = np.asarray(m, dtype=float)
    with np.errstate(all="ignore"):
        row = np.nanmean(m, axis=1, keepdims=True)
        col = np.nanmean(m, axis=0, keepdims=True)
        return m * np.nanmean(m) / (row * col)


def class_matrices(ds: xr.Dataset, *, stat: str = "median", title: str = "") -> Figure:
    """Class-pair LE heatmaps (update class x probe class) at the first and the last record.

    Raw class-pair LE is dominated by probe classes whose logits move under any update and by
    update classes whose step moves every logit. Each entry is therefore divided by what its
    row and its column predict alone, ``A_ij * mean(A) / (mean_j A_ij * mean_i A_ij)``: 1 =
    no preference, > 1 = an update of class i moves probes of class j more than its class and
    theirs explain. Local elasticity shows as a red diagonal. The raw matrices are
    ``class_<stat>`` of the analysis.
    """
    from matplotlib.colors import TwoSlopeNorm

    var = ds[f"class_{stat}"]
    recs = [0, ds.sizes["record"] - 1] if ds.sizes["record"] > 1 else [0]
    mats = []
    for r in recs:
        m = np.asarray(var.values[r], dtype=float)
        mats.append(relative_to_margins(m))
    vals = np.concatenate([m[np.isfinite(m)] for m in mats]) if mats else np.array([1.0])
    lo = float(min(vals.min(), 0.99)) if vals.size else 0.5
    hi = float(max(vals.max(), 1.01)) if vals.size else 1.5
    norm = TwoSlopeNorm(vcenter=1.0, vmin=lo, vmax=hi)
    fig, axes = plt.subplots(1, len(recs), figsize=(4.4 * len(recs) + 1.0, 4.1), constrained_layout=True, squeeze=False)
    im = None
    for ax, r, m in zip(axes[0], recs, mats):
        im = ax.imshow(m, cmap="RdBu_r", norm=norm, origin="upper")
        ci, cj = ds["class_i"].values, ds["class_j"].values
        ax.set_xticks(range(len(cj)), [str(c) for c in cj], fontsize=7)
        ax.set_yticks(range(len(ci)), [str(c) for c in ci], fontsize=7)
        for k in range(min(len(ci), len(cj))):
            ax.add_patch(plt.Rectangle((k - 0.5, k - 0.5), 1, 1, fill=False, ec="0.15", lw=0.8))
        d = np.diag(m)
        off = m[~np.eye(*m.shape, dtype=bool)]
        ax.set_xlabel("probe class (of x')")
        ax.set_ylabel("update class (of x)")
        ax.set_title(f"step {int(ds['step'].values[r])} (epoch {float(ds['epoch'].values[r]):.3g}): diagonal "
                     f"{np.nanmean(d):.2f}, off-diagonal {np.nanmean(off):.2f}", fontsize=8)  # fmt: skip
    if im is not None:
        fig.colorbar(im, ax=axes[0].tolist(), label=f"{stat} LE relative to its row and column means")
    fig.suptitle(f"{title}: class-pair {stat} of LE relative to the update- and probe-class means ({_form_note(ds)})".strip(": "),
                 fontsize=10)  # fmt: skip
    return fig


def clustering(dss: Sequence[xr.Dataset], labels: Sequence[str], *, x_axis: str = "epoch", title: str = "") -> Figure:
    """LE-clustering accuracy and ARI over training, with K-means baselines on pixels and PCA.

    The baselines do not depend on training: horizontal lines (grey dashed: pixels; black
    dotted: PCA), their values in the legend, so that equal baselines stay visible.
    """
    from matplotlib.lines import Line2D

    fig, (ax_a, ax_r) = plt.subplots(1, 2, figsize=(11.0, 3.6), constrained_layout=True)
    colors = _run_colors(labels)
    xlabel = ""
    handles: list[Any] = []
    names: list[str] = []
    base_style = {"pixels": ("0.55", "--", 2.2), "pca": ("k", ":", 1.2)}
    for k, (ds, lab) in enumerate(zip(dss, labels)):
        if "cluster_accuracy" not in ds:
            continue
        c = colors[k]
        x, xlabel = _x(ds, x_axis, False)
        mk = marker_kw(len(x))
        ax_a.plot(x, ds["cluster_accuracy"].values, color=c, **mk)
        ax_r.plot(x, ds["cluster_ari"].values, color=c, **mk)
        who = f"run {lab}: " if len(labels) > 1 else ""
        handles.append(Line2D([], [], color=c, marker="o", ms=3))
        names.append(f"{who}LE, {ds.attrs.get('cluster_method', '')} clustering")
        if "baseline" in ds.coords:
            for b in ds["baseline"].values:
                col, ls, lw = base_style.get(str(b), ("0.3", "-.", 1.0))
                acc = float(ds["baseline_accuracy"].sel(baseline=b))
                ari = float(ds["baseline_ari"].sel(baseline=b))
                ax_a.axhline(acc, color=col, ls=ls, lw=lw)
                ax_r.axhline(ari, color=col, ls=ls, lw=lw)
                what = {"pixels": "pixels", "pca": f"{_pca_dims(ds)}-d PCA"}.get(str(b), str(b))
                handles.append(Line2D([], [], color=col, ls=ls, lw=lw))
                names.append(f"{who}K-means on {what}: accuracy {acc:.2f}, ARI {ari:.2f}")
    ax_a.set_ylabel("clustering accuracy (Hungarian, fraction)")
    ax_r.set_ylabel("adjusted Rand index")
    for ax in (ax_a, ax_r):
        ax.set_xlabel(xlabel)
        ax.grid(alpha=0.3)
    ax_a.set_ylim(0, 1.02)
    figure_legend(fig, handles, names, side="bottom", ncol=2)
    fig.suptitle(f"{title}: LE clustering of the tracked training images".strip(": "), fontsize=10)
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
    pairs with LE > 1 are an overflow bin right of the axis break (hatched, one bar per probe
    class, its count written above it).
    """
    ci = list(ds["class_i"].values)
    names = [str(n) for n in ds["class_name_i"].values] if "class_name_i" in ds.coords else [str(c) for c in ci]
    lo, hi = ds["bin_lo"].values, ds["bin_hi"].values
    edges = np.append(lo, hi[-1])
    w = float(np.median(np.diff(edges)))
    gap = 2 * w
    over_x0 = float(edges[-1]) + gap
    colors = GROUP_PALETTE
    fig, axes = plt.subplots(1, len(ci), figsize=(4.2 * len(ci), 3.8), constrained_layout=True, squeeze=False, sharey=True)
    over_all = ds["overflow"].values
    top = max(float(ds["hist"].values.max()), float(over_all.max()) if over_all.size else 0.0)
    for a, ax in enumerate(axes[0]):
        for b, name in enumerate(names):
            counts = ds["hist"].values[a, b]
            over = int(over_all[a, b])
            c = colors[b % len(colors)]
            ax.stairs(counts, edges, color=c, fill=True, alpha=0.3)
            ax.stairs(counts, edges, color=c, lw=1.3, label=name)
            xb = over_x0 + b * w * 1.5
            ax.bar(xb, over, width=w * 1.5, align="edge", color=c, alpha=0.45, hatch="///", edgecolor=c, lw=0.8)
            ax.text(xb + 0.75 * w, over + 0.01 * top, str(over), ha="center", va="bottom", fontsize=6, color=c, rotation=90)
        end = over_x0 + len(names) * w * 1.5
        ax.axvline(float(edges[-1]) + gap / 2, color="0.5", lw=0.8, ls=(0, (2, 2)))
        ax.set_xlim(0, end + w)
        ticks = [0, 0.2, 0.4, 0.6, 0.8, 1.0]
        ax.set_xticks(ticks + [over_x0 + len(names) * w * 0.75], [f"{t:g}" for t in ticks] + ["> 1"])
        ax.set_ylim(0, 1.12 * top)
        ax.set_xlabel("LE(x, x')")
        ax.set_title(f"update x of class {names[a]}", fontsize=9)
        ax.grid(alpha=0.3)
    axes[0][0].set_ylabel(f"number of pairs per bin (width {w:g})")
    handles, labels = axes[0][0].get_legend_handles_labels()
    from matplotlib.patches import Patch

    handles.append(Patch(facecolor="0.8", hatch="///", edgecolor="0.4"))
    labels.append("overflow: LE > 1 (count above the bar)")
    figure_legend(fig, handles, labels, side="right", title="probe x' of class", title_fontsize=8)
    n = int(ds.attrs.get("n_per_class", 0))
    fig.suptitle(f"{title}: LE histograms ({n} images per class, {_form_note(ds)})".strip(": "), fontsize=10)
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


def dashboard_panel(ax: plt.Axes, ds: xr.Dataset, settings: Mapping[str, Any], xa: XAxis) -> None:
    """LE's panel of the run dashboard: mean LE over same-class and different-class pairs.

    ``ds`` is ``analysis/elasticity/{run}.nc``; ``xa`` the dashboard's x axis. ``settings``
    (the resolved ``analyses.elasticity``) choose nothing here.
    """
    x = xa.values(ds)
    for name, color, label in (("within", WITHIN_COLOR, "LE, same class"), ("between", BETWEEN_COLOR, "LE, different class")):
        if name in ds:
            ax.plot(x, np.asarray(ds[name].values, dtype=float), color=color, lw=1.1, label=label, **marker_kw(len(x), size=2.5))
    ax.set_ylabel("local elasticity\n(mean over pairs)")


def compare_rows(ds: xr.Dataset, settings: Mapping[str, Any]) -> dict[str, xr.DataArray]:
    """LE's rows of the sweep comparison: mean LE over same-class and different-class pairs (record, with ``step``)."""
    rows = {"LE, same class\n(mean over pairs)": "within", "LE, different class\n(mean over pairs)": "between"}
    return {label: ds[name] for label, name in rows.items() if name in ds}
