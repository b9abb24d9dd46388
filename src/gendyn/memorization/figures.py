"""Figures of paper 003 (memorization via gradient splitting).

One function per figure kind; each takes datasets and returns a ``Figure`` (no global
state). Seeds are aggregated per group: mean line, min-max band. :func:`draw` is the
workflow's figure job (experiment scope).

==================  =====================================================  ===============
function            plots                                                  paper
==================  =====================================================  ===============
accuracy_curves     train / test / held-out accuracy vs epoch per group    Figs. 1a, 2a-d
threshold_plot      epochs to threshold per group (bars or vs a size)      Figs. 1b, 2c
gradnorm_curves     first-layer weight-gradient Frobenius norm, log y      Sec. 4
gap_curves          train minus test accuracy vs epoch                     Fig. S1
basins_schematic    1-D loss with minima a and b, basin ratio (2/3)^n      Fig. 3
==================  =====================================================  ===============
"""

from __future__ import annotations

import json
import logging
import math
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import gendyn.figures.style  # noqa: F401 - headless backend first
import matplotlib.pyplot as plt
import numpy as np
import xarray as xr
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import Patch

from gendyn.figures.style import (
    SEED_BAND,
    assignment_label,
    group_colors,
    legend_outside,
    readable_value,
    seed_band,
)
from gendyn.memorization.summary import basin_ratio_log10, epochs_to_threshold

__all__ = [
    "FIGURES",
    "draw",
    "accuracy_curves",
    "threshold_plot",
    "threshold_profile",
    "gradnorm_curves",
    "gap_curves",
    "basins_schematic",
    "groups",
]

logger = logging.getLogger(__name__)

#: The figures of paper 003 (``analyses.memorization.figures``).
FIGURES = ("curves", "threshold", "gradnorm", "gap", "basins")
#: Basin-ratio dimension n of Fig. 3 ((2/3)^n).
BASINS_N_DIMS = 1000
#: Thresholds of the epochs-to-threshold profile (the configured one is added).
PROFILE_TAUS = (0.5, 0.6, 0.7, 0.8, 0.9, 0.95)

SEED_KEY = "training.seed"
SPLIT_STYLES = {"train": "-", "test": "--", "heldout": ":"}
SPLIT_LABELS = {"train": "train", "test": "test (the objective's)", "heldout": "held-out (real test set)"}

#: A group of runs as the figures draw it: (label, the runs' curves (run, epoch)).
Group = tuple[str, xr.Dataset]


def _swept_keys(ds: xr.Dataset) -> list[str]:
    return [str(c) for c in ds.coords if ds[c].dims == ("run",) and c not in ("run", "objective")]


def _is_number(v: Any) -> bool:
    return isinstance(v, (int, float, np.integer, np.floating)) and not isinstance(v, (bool, np.bool_))


def groups(ds: xr.Dataset, group_by: Sequence[str] | None = None, *, single: str = "all runs") -> list[tuple[str, dict[str, Any], list[Any]]]:
    """Group the runs of ``ds`` (dim ``run``) by swept keys.

    Parameters
    ----------
    ds : Dataset with dim ``run`` and swept parameters as coordinates on ``run``.
    group_by : sequence of str, optional
        Coordinate names; None = every swept coordinate except ``training.seed``.
    single : str
        Label of the one group when no key separates the runs.

    Returns
    -------
    list of (label, {key: value}, [run ids]) in order of first appearance.
    """
    keys = [k for k in _swept_keys(ds) if k != SEED_KEY] if group_by is None else list(group_by)
    missing = [k for k in keys if k not in ds.coords]
    if missing:
        raise KeyError(f"group_by: {missing} are not swept keys of these runs; swept keys: {_swept_keys(ds)}")
    out: dict[tuple[Any, ...], tuple[str, dict[str, Any], list[Any]]] = {}
    for i, rid in enumerate(ds["run"].values):
        vals = tuple(ds[k].values[i].item() if hasattr(ds[k].values[i], "item") else ds[k].values[i] for k in keys)
        if vals not in out:
            label = assignment_label(dict(zip(keys, vals))) or single
            out[vals] = (label, dict(zip(keys, vals)), [])
        out[vals][2].append(rid)
    return list(out.values())


def _sequential(grps: list[tuple[str, dict[str, Any], list[Any]]]) -> bool:
    return len(grps) > 2 and len(grps[0][1]) == 1 and all(_is_number(next(iter(g[1].values()))) for g in grps)


def _drawn_groups(ds: xr.Dataset | None, group_by: Sequence[str] | None, others: Sequence[Group], single: str) -> tuple[list[Group], list[Any]]:
    """The groups a figure draws (this experiment's, then ``others``) and a colour each."""
    out: list[Group] = []
    if ds is not None:
        grps = groups(ds, group_by, single=single)
        out = [(label, ds.sel(run=rids)) for label, _, rids in grps]
        if _sequential(grps) and not others:
            cmap = group_colors([next(iter(g[1].values())) for g in grps])
            return out, [cmap[next(iter(g[1].values()))] for g in grps]
    out += list(others)
    palette = group_colors([label for label, _ in out])
    return out, [palette[label] for label, _ in out]


def _n_seeds(grps: Sequence[Group]) -> int:
    return max((g.sizes["run"] for _, g in grps), default=1)


def _legend(ax: Any, grps: Sequence[Group], colors: Sequence[Any], extra: list[tuple[Any, str]] | None = None) -> None:
    handles: list[Any] = [Line2D([], [], color=c, lw=2) for c in colors]
    labels = [g[0] for g in grps]
    for h, lab in extra or []:
        handles.append(h)
        labels.append(lab)
    n = _n_seeds(grps)
    if n > 1:
        handles.append(Patch(color="0.5", alpha=0.3, lw=0))
        labels.append(f"mean of {n} seeds, band {SEED_BAND}")
    legend_outside(ax, handles, labels, loc="center left", bbox_to_anchor=(1.02, 0.5))


def _epoch_axis(ds: xr.Dataset) -> np.ndarray:
    return np.asarray(ds["epoch"].values, dtype=np.float64)


def accuracy_curves(
    ds: xr.Dataset,
    *,
    group_by: Sequence[str] | None = None,
    splits: Sequence[str] = ("train", "test", "heldout"),
    title: str = "",
    chance: float | None = None,
    k: float | None = None,
    others: Sequence[Group] = (),
    single: str = "all runs",
) -> Figure:
    """Accuracy vs epoch per group (paper 003 Figs. 1a, 2a-2d).

    Parameters
    ----------
    ds : Dataset, dims (``run``, ``epoch``)
        :func:`gendyn.memorization.summary.stack_epochs` of the experiment's runs, with
        ``train_acc``, ``test_acc`` and (``test_source: train_split``) ``heldout_acc``.
    group_by : sequence of str, optional
        Swept keys defining the colours (default: all but ``training.seed``).
    splits : sequence of {"train", "test", "heldout"}
        Curves drawn per group (solid, dashed, dotted).
    chance : float, optional
        Chance accuracy 1/C (grey line).
    k : float, optional
        J0 threshold (dotted red line).
    others : sequence of (label, Dataset)
        Runs of other experiments drawn as further groups on the same axes (e.g. the real
        images beside the noise of Fig. 2a).
    single : str
        Label of this experiment's runs when no swept key separates them.
    """
    grps, colors = _drawn_groups(ds, group_by, others, single)
    fig, ax = plt.subplots(figsize=(8.6, 4.0), constrained_layout=True)
    drawn: list[str] = []
    for (label, sub), color in zip(grps, colors):
        x = _epoch_axis(sub)
        for split in splits:
            var = f"{split}_acc"
            if var not in sub or not np.isfinite(sub[var].values).any():
                continue
            seed_band(ax, x, np.atleast_2d(sub[var].values), color=color, ls=SPLIT_STYLES[split], markers=False)
            if split not in drawn:
                drawn.append(split)
    extra: list[tuple[Any, str]] = [(Line2D([], [], color="k", ls=SPLIT_STYLES[s]), SPLIT_LABELS[s]) for s in drawn]
    if chance is not None:
        ax.axhline(chance, color="0.5", lw=0.8, ls="-.")
        extra.append((Line2D([], [], color="0.5", lw=0.8, ls="-."), f"chance 1/C = {chance:.2g}"))
    if k is not None:
        ax.axhline(k, color="0.2", lw=0.9, ls=(0, (1, 1)))
        extra.append((Line2D([], [], color="0.2", lw=0.9, ls=(0, (1, 1))), f"J⁰ threshold k = {k:g}"))
    _legend(ax, grps, colors, extra)
    x_all = np.concatenate([_epoch_axis(g) for _, g in grps]) if grps else np.array([1.0])
    ax.set_xlabel("epoch")
    ax.set_ylabel("accuracy (fraction)")
    ax.set_ylim(-0.02, 1.02)
    ax.set_xlim(0, float(np.nanmax(x_all)) if x_all.size else 1)
    ax.grid(alpha=0.3)
    ax.set_title(title, fontsize=9)
    return fig


def _metric_curves(sub: xr.Dataset, metric: str) -> xr.DataArray:
    if metric == "gap" and "gap" not in sub:
        return sub["train_acc"] - sub["test_acc"]
    return sub[metric]


def threshold_profile(
    sub: xr.Dataset, metric: str, taus: Sequence[float], *, patience: int = 1, interpolate: bool = False
) -> tuple[np.ndarray, np.ndarray]:
    """Epochs to threshold of every run of ``sub`` (dims run, epoch) at every ``tau``.

    Returns (T, censored): (n_runs, n_taus) float arrays; T is NaN where a run never reached
    tau, ``censored`` its last epoch there (NaN elsewhere).
    """
    cur = _metric_curves(sub, metric)
    t = np.full((sub.sizes["run"], len(taus)), np.nan)
    c = np.full_like(t, np.nan)
    for i in range(sub.sizes["run"]):
        one = cur.isel(run=i)
        one = one.sel(epoch=one["epoch"][np.isfinite(one.values)])
        for j, tau in enumerate(taus):
            r = epochs_to_threshold(one, float(tau), patience=patience, interpolate=interpolate)
            t[i, j] = float(r)
            c[i, j] = float(r.attrs.get("censored_at", np.nan))
    return t, c


def _censored_bar(ax: Any, x: float, top: float, color: Any, text: str) -> None:
    ax.bar(x, top, width=0.6, color="none", edgecolor=color, hatch="///", lw=1.0)
    ax.text(x, top * 0.5, text, ha="center", va="center", fontsize=7, rotation=90, color="0.15",
            bbox={"facecolor": "white", "edgecolor": "none", "pad": 1.0, "alpha": 0.85})  # fmt: skip


def threshold_plot(
    summary: xr.Dataset,
    *,
    curves: xr.Dataset | None = None,
    group_by: Sequence[str] | None = None,
    title: str = "",
    taus: Sequence[float] = PROFILE_TAUS,
    others: Sequence[Group] = (),
    single: str = "all runs",
) -> Figure:
    """Epochs to threshold per group (paper 003 Figs. 1b and 2c right).

    Parameters
    ----------
    summary : Dataset, dim ``run``
        ``analysis/memorization/summary.nc`` (``epochs_to_threshold``, ``censored_at`` and swept
        coordinates; attrs ``threshold_metric``, ``tau``, ``patience``, ``interpolate``).
    curves : Dataset, dims (run, epoch), optional
        The runs' per-epoch curves (:func:`gendyn.memorization.summary.stack_epochs`): adds a
        right panel, the epochs each group needs for a range of thresholds ``taus``.
    group_by : sequence of str, optional
        With exactly one numeric key (e.g. ``data.first_n``) among several, T is drawn against
        it, one line per remaining group; otherwise one bar per group.
    others : sequence of (label, Dataset)
        Runs of other experiments (curves), drawn in the profile panel as further groups.

    Notes
    -----
    Left: bars are the mean over the seeds that reached the threshold, dots single seeds; a
    group no seed of which reached it is a hatched bar up to the last epoch, labelled "not
    reached" (a lower bound), a single censored seed an open triangle there. Right: filled
    markers where every seed reached the threshold, open where some did not (those counted at
    their last epoch: a lower bound); the dotted line is the end of training.
    """
    grps = groups(summary, group_by, single=single)
    t = summary["epochs_to_threshold"]
    cens = summary["censored_at"]
    metric = summary.attrs.get("threshold_metric", "train_acc")
    tau = float(summary.attrs.get("tau", float("nan")))
    keys = list(grps[0][1]) if grps else []
    numeric = [kk for kk in keys if all(_is_number(g[1][kk]) for g in grps)]
    profile = curves is not None
    fig, axes = plt.subplots(1, 2 if profile else 1, figsize=(12.0 if profile else 7.4, 3.9), constrained_layout=True,
                             squeeze=False)  # fmt: skip
    ax = axes[0, 0]
    cens_handle = Line2D([], [], ls="", marker="^", mfc="none", mec="0.3")
    top = float(np.nanmax(np.concatenate([t.values, cens.values, [1.0]])))
    any_cens = False
    handles: list[Any] = []
    labels: list[str] = []
    metric_name = {"train_acc": "train accuracy", "test_acc": "test accuracy", "heldout_acc": "held-out accuracy",
                   "gap": "train - test accuracy"}.get(metric, metric)  # fmt: skip
    if len(numeric) == 1 and len(keys) > 1:
        xkey = numeric[0]
        rest = [kk for kk in keys if kk != xkey]
        lines: dict[tuple[Any, ...], list[tuple[float, list[Any]]]] = {}
        for _, vals, rids in grps:
            lines.setdefault(tuple(vals[kk] for kk in rest), []).append((float(vals[xkey]), rids))
        colors = group_colors([assignment_label(dict(zip(rest, key))) for key in lines])
        for key, pts in lines.items():
            label = assignment_label(dict(zip(rest, key)))
            color = colors[label]
            pts.sort()
            xs, means = [], []
            for xv, rids in pts:
                tv = t.sel(run=rids).values
                cv = cens.sel(run=rids).values
                ax.plot(np.full(np.isfinite(tv).sum(), xv), tv[np.isfinite(tv)], "o", color=color, ms=3, alpha=0.6)
                if np.isfinite(cv).any():
                    any_cens = True
                    ax.plot(np.full(np.isfinite(cv).sum(), xv), cv[np.isfinite(cv)], "^", mfc="none", mec=color)
                xs.append(xv)
                means.append(np.nanmean(tv) if np.isfinite(tv).any() else np.nan)
            ax.plot(xs, means, "-", color=color, lw=1.5, label=label)
        from gendyn.figures.style import readable_key

        ax.set_xlabel(readable_key(xkey))
        handles, labels = ax.get_legend_handles_labels()
    else:
        colors = [c for c in _drawn_groups(summary, group_by, (), single)[1]]
        for i, ((label, _, rids), color) in enumerate(zip(grps, colors)):
            tv = t.sel(run=rids).values
            cv = cens.sel(run=rids).values
            if np.isfinite(tv).any():
                ax.bar(i, np.nanmean(tv), color=color, alpha=0.75, width=0.6)
                ax.plot(np.full(np.isfinite(tv).sum(), i), tv[np.isfinite(tv)], "o", color="k", ms=3)
                if np.isfinite(cv).any():
                    any_cens = True
                    ax.plot(np.full(np.isfinite(cv).sum(), i), cv[np.isfinite(cv)], "^", mfc="none", mec="0.3", ms=7)
            elif np.isfinite(cv).any():
                _censored_bar(ax, i, float(np.nanmax(cv)), color, f"not reached in {np.nanmax(cv):g} epochs")
        ax.set_xticks(range(len(grps)), [g[0] for g in grps], rotation=20 if len(grps) > 4 else 0, fontsize=8)
        ax.set_xlim(-0.6, len(grps) - 0.4)
        if any(np.isfinite(t.sel(run=r).values).any() for _, _, r in grps):
            handles.append(Line2D([], [], ls="", marker="o", color="k", ms=3))
            labels.append("single seed (bar: their mean)")
    if any_cens:
        handles.append(cens_handle)
        labels.append("seed that never reached it (at its last epoch)")
    ax.set_ylabel(f"epochs until {metric_name} ≥ {tau:g}")
    ax.set_ylim(0, 1.12 * top)
    ax.grid(alpha=0.3, axis="y")
    ax.set_title(f"at the configured threshold τ = {tau:g}", fontsize=9)
    if handles:
        legend_outside(ax, handles, labels, side="bottom")
    if profile:
        _profile_panel(axes[0, 1], summary, curves, group_by, taus, others, single, metric_name, tau)
    fig.suptitle(title, fontsize=10)
    return fig


def _profile_panel(ax: Any, summary: xr.Dataset, curves: xr.Dataset, group_by: Sequence[str] | None,
                   taus: Sequence[float], others: Sequence[Group], single: str, metric_name: str, tau: float) -> None:  # fmt: skip
    metric = summary.attrs.get("threshold_metric", "train_acc")
    patience = int(summary.attrs.get("patience", 1))
    interp = bool(int(summary.attrs.get("interpolate", 0)))
    grid = sorted({round(float(v), 6) for v in [*taus, tau] if np.isfinite(v)})
    grps, colors = _drawn_groups(curves, group_by, others, single)
    end = 0.0
    step = 0.008 * (max(grid) - min(grid) if len(grid) > 1 else 1.0)
    for k, ((label, sub), color) in enumerate(zip(grps, colors)):
        tt, cc = threshold_profile(sub, metric, grid, patience=patience, interpolate=interp)
        last = np.where(np.isfinite(cc), cc, np.nan)
        end = max(end, float(np.nanmax(_epoch_axis(sub))))
        lower = np.where(np.isfinite(tt), tt, last)  # censored seeds counted at their last epoch
        all_in = np.isfinite(tt).all(axis=0)
        none_in = ~np.isfinite(tt).any(axis=0)
        mean = np.where(none_in, np.nan, np.nanmean(lower, axis=0))
        g = np.asarray(grid)
        ax.plot(g[~none_in], mean[~none_in], color=color, lw=1.4)
        ax.plot(g[all_in], mean[all_in], "o", color=color, ms=5)
        some = ~all_in & ~none_in
        ax.plot(g[some], mean[some], "o", mfc="white", mec=color, ms=5)
        if tt.shape[0] > 1:
            with np.errstate(all="ignore"):
                lo, hi = np.nanmin(lower, axis=0), np.nanmax(lower, axis=0)
            ax.fill_between(g[~none_in], lo[~none_in], hi[~none_in], color=color, alpha=0.15, lw=0)
        if none_in.any():  # side by side, so that groups that all miss a threshold stay visible
            shift = (k - (len(grps) - 1) / 2) * step
            ax.plot(g[none_in] + shift, np.full(int(none_in.sum()), float(np.nanmax(last))), "^", mfc="none", mec=color, ms=7)
    ax.axhline(end, color="0.4", ls=":", lw=1.0)
    ax.axvline(tau, color="0.6", ls="--", lw=0.8)
    ax.set_xlabel(f"threshold τ on the {metric_name}")
    ax.set_ylabel("epochs until reached")
    ax.set_ylim(0, 1.08 * max(end, 1.0))
    ax.grid(alpha=0.3)
    ax.set_title("for a range of thresholds", fontsize=9)
    handles = [Line2D([], [], color=c, lw=2) for c in colors] + [
        Line2D([], [], ls="", marker="o", color="0.3", ms=5),
        Line2D([], [], ls="", marker="o", mfc="white", mec="0.3", ms=5),
        Line2D([], [], ls="", marker="^", mfc="none", mec="0.3", ms=7),
        Line2D([], [], color="0.4", ls=":"),
        Line2D([], [], color="0.6", ls="--"),
    ]
    labels = [lab for lab, _ in grps] + ["every seed reached it (mean)", "some seeds did not (lower bound)",
                                         "no seed reached it", f"end of training ({end:g} epochs)", f"configured τ = {tau:g}"]  # fmt: skip
    n = _n_seeds(grps)
    if n > 1:
        handles.append(Patch(color="0.5", alpha=0.3, lw=0))
        labels.append(f"{SEED_BAND} over {n} seeds")
    legend_outside(ax, handles, labels)


def gradnorm_curves(
    ds: xr.Dataset, *, group_by: Sequence[str] | None = None, title: str = "", others: Sequence[Group] = (),
    single: str = "all runs",
) -> Figure:  # fmt: skip
    """First-layer weight-gradient Frobenius norm vs epoch, log y (paper 003 Sec. 4).

    Solid: the norm after the last backward of each epoch (``gradnorm_first_weight``, as in
    the author's code); thin dashed: its mean over the epoch's steps.
    """
    grps, colors = _drawn_groups(ds, group_by, others, single)
    fig, ax = plt.subplots(figsize=(8.6, 4.0), constrained_layout=True)
    for (_, sub), color in zip(grps, colors):
        x = _epoch_axis(sub)
        for var, ls, lw in (("gradnorm_first_weight", "-", 1.4), ("gradnorm_first_weight_mean", "--", 0.8)):
            if var in sub:
                y = np.atleast_2d(sub[var].values).astype(float)
                y[y <= 0] = np.nan
                seed_band(ax, x, y, color=color, ls=ls, lw=lw, markers=False)
    extra = [
        (Line2D([], [], color="k", ls="-"), "after the last step of the epoch"),
        (Line2D([], [], color="k", ls="--", lw=0.8), "mean over the epoch's steps"),
    ]
    _legend(ax, grps, colors, extra)
    ax.set_yscale("log")
    ax.set_xlabel("epoch")
    ax.set_ylabel("‖∂loss/∂W₁‖_F (first-layer weight)")
    ax.grid(alpha=0.3, which="major")
    ax.set_title(title, fontsize=9)
    return fig


def gap_curves(
    ds: xr.Dataset, *, group_by: Sequence[str] | None = None, title: str = "", others: Sequence[Group] = (),
    single: str = "all runs",
) -> Figure:  # fmt: skip
    """Train minus test accuracy vs epoch per group (paper 003 Fig. S1)."""
    grps, colors = _drawn_groups(ds, group_by, others, single)
    fig, ax = plt.subplots(figsize=(8.6, 4.0), constrained_layout=True)
    for (_, sub), color in zip(grps, colors):
        gap = sub["gap"] if "gap" in sub else sub["train_acc"] - sub["test_acc"]
        seed_band(ax, _epoch_axis(sub), np.atleast_2d(gap.values), color=color, markers=False)
    _legend(ax, grps, colors)
    ax.axhline(0, color="0.5", lw=0.8)
    ax.set_xlabel("epoch")
    ax.set_ylabel("train − test accuracy")
    ax.set_ylim(-0.25, 1.02)
    ax.grid(alpha=0.3)
    ax.set_title(title, fontsize=9)
    return fig


def basins_schematic(*, n_dims: int = 1000, title: str = "") -> Figure:
    """Paper 003 Fig. 3: two minima of a 1-D loss; b is twice as stable as a.

    Each minimum has a flat, delta-stable bottom (a: width 2, b: width 4) and slopes of
    width m = 1 on both sides, so the basins have sizes 4 and 6: ratio a/b = 2/3 in one
    dimension, (2/3)^n in n dimensions (n = 1000: 1 / 1.23e176).
    """
    xs = [0.0, 1.0, 3.0, 4.0, 5.0, 9.0, 10.0]  # a: slope m, s_a = 2, slope m; b: slope m, s_b = 4, slope m
    ys = [1.0, 0.25, 0.25, 1.0, 0.0, 0.0, 1.0]
    fig, ax = plt.subplots(figsize=(6.0, 3.4), constrained_layout=True)
    ax.plot(xs, ys, color="k", lw=1.8)
    ax.annotate("a", (2.0, 0.25), xytext=(2.0, 0.42), ha="center", fontsize=12)
    ax.annotate("b", (7.0, 0.0), xytext=(7.0, 0.12), ha="center", fontsize=12)
    arrows = (
        (1.0, 3.0, 0.16, "$s_a$"),
        (0.0, 1.0, 0.16, "m"),
        (3.0, 4.0, 0.16, "m"),
        (5.0, 9.0, -0.09, "$s_b$"),
        (4.0, 5.0, -0.09, "m"),
        (9.0, 10.0, -0.09, "m"),
    )
    for x0, x1, y, text in arrows:
        ax.annotate("", (x0, y), (x1, y), arrowprops={"arrowstyle": "<->", "lw": 0.8, "color": "0.3"})
        ax.text((x0 + x1) / 2, y - 0.07, text, ha="center", fontsize=9, color="0.3")
    ax.plot([4.0, 4.0], [-0.25, 1.05], color="0.6", lw=0.8, ls=":")  # the basins' border, below the note
    log_ratio = basin_ratio_log10(n_dims)
    exponent = math.floor(-log_ratio)
    mant = 10 ** (-log_ratio - exponent)
    ax.text(
        0.5,
        0.98,
        f"basin a : basin b = 4 : 6 = 2/3 (1-D)\n"
        f"n dimensions: (2/3)^n; n = {n_dims}: 1 / {mant:.2f}e{exponent}",
        transform=ax.transAxes,
        va="top",
        ha="center",
        fontsize=8,
        bbox={"facecolor": "white", "edgecolor": "0.8", "pad": 3.0},
    )
    ax.set_xlabel("parameter θ")
    ax.set_ylabel("loss J")
    ax.set_ylim(-0.25, 1.55)
    ax.set_xticks([])
    ax.set_yticks([])
    ax.set_title(title or "Fig 3: attractor geometry (schematic)", fontsize=9)
    return fig


# --------------------------------------------------------------------------- figure job


def _data_label(attrs: Mapping[str, Any]) -> str:
    """``Gaussian noise, J⁰``: the data and objective of a run (``run.h5`` root attributes)."""
    cfg = json.loads(attrs.get("config", "{}") or "{}")
    data = readable_value("data.name", cfg.get("data", {}).get("name", ""))
    obj = (cfg.get("training", {}).get("objective") or {}).get("name", "")
    return ", ".join(p for p in (data, readable_value("training.objective.name", obj) if obj else "") if p)


def _others(job: Any, objectives: set[str]) -> list[Group]:
    """Runs of other experiments (role ``compare_run``) with one of ``objectives``, one group per
    (experiment, data, objective), labelled by data and objective, experiment in brackets."""
    from gendyn.memorization.stage import runs_from_files
    from gendyn.memorization.summary import stack_epochs

    by_exp: dict[str, list[Path]] = {}
    for p in job.many("compare_run"):
        by_exp.setdefault(Path(p).parent.parent.parent.name, []).append(Path(p))
    out: list[Group] = []
    for exp, files in by_exp.items():
        runs = runs_from_files(files)
        keep: dict[str, list[str]] = {}
        for rid, name in zip(runs.metrics, runs.objective_names()):
            if name in objectives:
                keep.setdefault(_data_label(runs.attrs[rid]), []).append(rid)
        for label, rids in keep.items():
            out.append((f"{label} ({exp})", stack_epochs({r: runs.metrics[r] for r in rids})))
    return out


def draw(job: Any) -> Iterator[tuple[str, Figure]]:
    """The memorization figures of an experiment (a :class:`gendyn.figures.jobs.FigureJob`).

    Draws exactly the figures listed in ``analyses.memorization.figures``, in that order.
    Inputs by role: ``run`` (every run's ``run.h5``, in run order) and ``runs_table``
    (``runs.csv``) for ``curves``, ``gradnorm`` and ``gap``; ``summary``
    (``analysis/memorization/summary.nc``) for ``threshold`` (with ``run``, also its profile
    over thresholds); ``compare_run`` (optional): runs of the experiments in
    ``figures_compare``, those with one of this experiment's objectives drawn as further
    groups; ``basins`` needs none. Titles are the experiment name (``job.experiment``, else the
    folder holding ``runs.csv``) and ``paper_figure``.

    Raises
    ------
    ValueError
        If a listed figure lacks its input (the message names the role).
    """
    from gendyn.memorization.stage import runs_from_files
    from gendyn.memorization.summary import stack_epochs

    s = job.measure_settings("memorization")
    group_by = s["group_by"]
    name = job.experiment or (job.one("runs_table").parent.name if job.has("runs_table") else "")
    title = name + (f" ({s['paper_figure']})" if s["paper_figure"] else "")
    runs = None
    curves: xr.Dataset | None = None
    others: list[Group] = []
    single = "all runs"
    if job.has("run"):
        runs = runs_from_files(job.many("run"), job.one("runs_table") if job.has("runs_table") else None)
        curves = stack_epochs(runs.metrics, swept=runs.swept)
        labels = {_data_label(a) for a in runs.attrs.values()}
        single = labels.pop() if len(labels) == 1 else single
        if job.has("compare_run"):
            others = _others(job, set(runs.objective_names()))
            if others:
                single = f"{single} ({name})"
    for fig in s["figures"]:
        if fig == "basins":
            yield fig, basins_schematic(n_dims=BASINS_N_DIMS)
            continue
        if fig == "threshold":
            _require(job, fig, "summary")
            yield fig, threshold_plot(job.open(job.one("summary")), curves=curves, group_by=group_by, title=title,
                                      others=others, single=single)  # fmt: skip
            continue
        _require(job, fig, "run")
        assert runs is not None and curves is not None
        if fig == "curves":
            n_classes, ks = runs.n_classes(), runs.j0_thresholds()
            yield fig, accuracy_curves(
                curves,
                group_by=group_by,
                splits=s["curve_splits"],
                title=title,
                chance=1.0 / n_classes.pop() if len(n_classes) == 1 and 0 not in n_classes else None,
                k=ks.pop() if len(ks) == 1 else None,
                others=others,
                single=single,
            )
        elif fig == "gradnorm":
            yield fig, gradnorm_curves(curves, group_by=group_by, title=title, others=others, single=single)
        elif fig == "gap":
            yield fig, gap_curves(curves, group_by=group_by, title=title, others=others, single=single)
        else:  # pragma: no cover - the schema allows only FIGURES
            raise ValueError(f"analyses.memorization.figures: {fig!r} is not one of {', '.join(FIGURES)}")


def _require(job: Any, figure: str, role: str) -> None:
    if not job.has(role):
        raise ValueError(
            f"gendyn figures memorization: figure {figure!r} needs --input {role}=PATH "
            f"(analyses.memorization.figures lists it); inputs: {sorted(job.inputs)}"
        )
